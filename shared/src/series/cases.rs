//! Disk series with known answers, shared by the forecast's tests and the
//! sizing's: three hours at five minutes a point, ending at `end`.

use chrono::{DateTime, Duration, Utc};

use super::Point;

/// (name, the series, its slope, the low end of its range, whether a step
/// is left out, the size for a 100 GiB volume alerted at 97.2% with the
/// shipped settings: the rule's 120 GiB unless the forecast asks for more,
/// and never more than 2 x 120).
pub struct Case {
    pub name: &'static str,
    pub points: Vec<Point>,
    pub slope: f64,
    pub low: f64,
    pub steps: usize,
    pub size_gib: i32,
}

pub fn cases(end: DateTime<Utc>) -> Vec<Case> {
    let mut all = growing(end);
    all.extend(others(end));
    all
}

/// Three hours ending at `end`: a point at each of `minutes` from the
/// start, valued by `f`.
fn series(
    end: DateTime<Utc>,
    minutes: impl Iterator<Item = i64>,
    f: impl Fn(i64) -> f64,
) -> Vec<Point> {
    let start = end - Duration::minutes(175);
    minutes
        .map(|m| Point {
            at: start + Duration::minutes(m),
            value: f(m),
        })
        .collect()
}

fn every5() -> impl Iterator<Item = i64> {
    (0..180).step_by(5)
}

/// A fixed scatter of +-3 points, the same on every run.
fn noise(m: i64) -> f64 {
    ((m * 7919) % 13) as f64 / 2.0 - 3.0
}

fn case(
    name: &'static str,
    points: Vec<Point>,
    slope: f64,
    low: f64,
    steps: usize,
    size_gib: i32,
) -> Case {
    Case {
        name,
        points,
        slope,
        low,
        steps,
        size_gib,
    }
}

/// Flat, steady, stepped and rotated.
fn growing(end: DateTime<Utc>) -> Vec<Case> {
    vec![
        case(
            "flat",
            series(end, every5(), |m| if m % 10 == 0 { 60.1 } else { 59.9 }),
            0.0,
            0.0,
            0,
            120,
        ),
        case(
            "steady",
            series(end, every5(), |m| 60.0 + 2.0 * m as f64 / 60.0),
            2.0,
            2.0,
            0,
            204,
        ),
        // 60% for 90 minutes, then 96% after one step (a restore, an
        // unpacked archive): no rate at all.
        case(
            "one step",
            series(end, every5(), |m| if m < 90 { 60.0 } else { 96.0 }),
            0.0,
            0.0,
            1,
            120,
        ),
        // Logs growing 3 points an hour, rotated every hour: the falls are
        // kept, and what is left is too slow to size for.
        case(
            "log-rotation sawtooth",
            series(end, every5(), |m| 60.0 + 3.0 * (m % 60) as f64 / 60.0),
            0.517,
            0.12,
            0,
            120,
        ),
    ]
}

/// Falling, noisy, sparse, gapped and fast.
fn others(end: DateTime<Utc>) -> Vec<Case> {
    vec![
        case(
            "decreasing",
            series(end, every5(), |m| 80.0 - 5.0 * m as f64 / 60.0),
            -5.0,
            -5.0,
            0,
            120,
        ),
        // 2 points an hour under +-3 of scatter: the same slope, a wide
        // range, sized by its low end (1.33: 170 GiB, not 2.0's 204).
        case(
            "noisy",
            series(end, every5(), |m| 60.0 + 2.0 * m as f64 / 60.0 + noise(m)),
            2.0,
            1.333,
            0,
            170,
        ),
        case(
            "sparse datapoints",
            series(end, [0, 60, 120].into_iter(), |m| {
                60.0 + 2.0 * m as f64 / 60.0
            }),
            2.0,
            2.0,
            0,
            204,
        ),
        // An hour, 90 minutes without data, then 30 minutes: the rise over
        // the gap is the rate's, not a step.
        case(
            "a gap",
            series(end, (0..60).step_by(5).chain((150..180).step_by(5)), |m| {
                60.0 + 2.0 * m as f64 / 60.0
            }),
            2.0,
            2.0,
            0,
            204,
        ),
        // 10 points an hour is steady and real, but 2 days of it would be
        // 608 GiB: max_growth_factor stops it at 2 x 120.
        case(
            "fast",
            series(end, every5(), |m| 67.2 + 10.0 * m as f64 / 60.0),
            10.0,
            10.0,
            0,
            240,
        ),
    ]
}
