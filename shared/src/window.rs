//! The sliding window the state table's counters use (flap guard, breaker),
//! pure, so the backtest simulates the same counts.

/// Events in the sliding window ending now: the current bucket's, plus the
/// previous bucket's in proportion to how much of it the window still covers
/// (`elapsed` seconds into a bucket of `window` seconds).
pub fn sliding_count(previous: i64, current: u32, elapsed: i64, window: i64) -> f64 {
    let covered = 1.0 - (elapsed.clamp(0, window) as f64 / window.max(1) as f64);
    previous.max(0) as f64 * covered + f64::from(current)
}
