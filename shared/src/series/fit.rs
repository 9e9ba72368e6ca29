//! Where a disk is heading, fitted so that one event cannot pass for a rate.
//!
//! A volume can be grown but never shrunk, so the size a forecast asks for
//! must come from growth the series shows steadily, not from one burst (a
//! log flood, an unpacked archive, a restore). Three choices make it so:
//!
//! - **Steps are excluded.** An interval whose rise is more than
//!   [`STEP_FACTOR`] times what the series' median rate would rise over it
//!   (and at least [`STEP_FLOOR_POINTS`]) is a step: the points after it are
//!   lowered by its height before the fit, so the series reads as if it had
//!   not happened. Falls are kept: space freed (a rotation, a cleanup) is
//!   real, and keeping it can only make the rate smaller.
//! - **The slope is Theil–Sen's**: the median of the slopes between every
//!   pair of points, which a minority of odd points cannot move.
//! - **A confidence range** (Sen's, 95%, from the ranks of those slopes),
//!   and the date "full" is taken from its lower end, so a noisy series
//!   forecasts later (and sizes smaller) than a clean one.

use chrono::{DateTime, Utc};

use super::{Forecast, Point, rfc3339};

/// Below this slope (percentage points an hour) a disk is "not growing":
/// noise on a flat series must not forecast a date.
pub const FLAT_PERCENT_PER_HOUR: f64 = 0.05;

/// A rise over one interval larger than this many times the series' median
/// rate over the same time is a step.
pub const STEP_FACTOR: f64 = 5.0;

/// ... and at least this many percentage points: on a flat series the
/// median rate is zero, and a wobble of a tenth of a point is not a step.
pub const STEP_FLOOR_POINTS: f64 = 1.0;

/// Pairwise slopes grow with the square of the points; above this many,
/// evenly spaced points are fitted (200 points: 19,900 slopes).
pub const MAX_FIT_POINTS: usize = 200;

/// The normal quantile of the 95% range.
const Z_95: f64 = 1.959_964;

/// The fitted line (hours against percent) and when its lower end reaches
/// 100%. Needs three datapoints over at least ten minutes; None otherwise.
pub fn forecast(points: &[Point]) -> Option<Forecast> {
    let mut pts: Vec<Point> = points
        .iter()
        .copied()
        .filter(|p| p.value.is_finite())
        .collect();
    pts.sort_by_key(|p| p.at);
    pts.dedup_by_key(|p| p.at);
    let (first, last) = (*pts.first()?, *pts.last()?);
    if pts.len() < 3 || (last.at - first.at).num_seconds() < 600 {
        return None;
    }
    let hours = |at: DateTime<Utc>| (at - first.at).num_milliseconds() as f64 / 3_600_000.0;
    let (level, steps) = without_steps(&pts);
    let xy: Vec<(f64, f64)> = thin(
        pts.iter()
            .zip(&level)
            .map(|(p, v)| (hours(p.at), *v))
            .collect(),
    );
    let (slope, low, high) = theil_sen(&xy)?;
    // Where the series is now, on the lower line: its intercept through
    // the de-stepped points, lifted by the steps' total so that it ends at
    // the level the disk is really at.
    let lifted: f64 = steps.iter().map(|s| s.rise).sum();
    let mut intercepts: Vec<f64> = xy.iter().map(|(x, y)| y - low * x).collect();
    let now_level = median(&mut intercepts)? + low * hours(last.at) + lifted;
    let full_at_time = if low < FLAT_PERCENT_PER_HOUR {
        None
    } else {
        // Never before the last datapoint: a disk already past 100% on the
        // line is full now.
        let ahead = ((100.0 - now_level) / low).max(0.0);
        let ms = ((hours(last.at) + ahead) * 3_600_000.0).min(1e15) as i64;
        first
            .at
            .checked_add_signed(chrono::Duration::milliseconds(ms))
    };
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    Some(Forecast {
        percent_per_hour: round(slope),
        low_percent_per_hour: round(low),
        high_percent_per_hour: round(high),
        steps_excluded: steps.iter().map(|s| rfc3339(s.at)).collect(),
        fitted_from: rfc3339(first.at),
        full_at: full_at_time.map(rfc3339),
        full_at_time,
    })
}

/// A rise taken out of the series before the fit.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Step {
    /// The first datapoint after the rise.
    at: DateTime<Utc>,
    rise: f64,
}

/// The series with every step's rise taken out of the points after it, and
/// the steps.
fn without_steps(pts: &[Point]) -> (Vec<f64>, Vec<Step>) {
    // Rates, not rises: across a gap in the data a steady disk rises more
    // in one interval, and that is no step.
    let hours = |w: &[Point]| (w[1].at - w[0].at).num_milliseconds() as f64 / 3_600_000.0;
    let mut rates: Vec<f64> = pts
        .windows(2)
        .map(|w| (w[1].value - w[0].value) / hours(w))
        .collect();
    // What the disk would have risen anyway over a step's interval stays in.
    let steady = median(&mut rates).unwrap_or(0.0).max(0.0);
    let mut sizes: Vec<f64> = rates.iter().map(|r| r.abs()).collect();
    let typical = median(&mut sizes).unwrap_or(0.0);
    let mut steps = Vec::new();
    let mut lowered = 0.0;
    let mut level = Vec::with_capacity(pts.len());
    level.push(pts[0].value);
    for w in pts.windows(2) {
        let rise = w[1].value - w[0].value;
        if rise > (typical * STEP_FACTOR * hours(w)).max(STEP_FLOOR_POINTS) {
            let rise = rise - steady * hours(w);
            steps.push(Step { at: w[1].at, rise });
            lowered += rise;
        }
        level.push(w[1].value - lowered);
    }
    (level, steps)
}

/// At most [`MAX_FIT_POINTS`], evenly spaced, the first and last kept.
fn thin(xy: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    if xy.len() <= MAX_FIT_POINTS {
        return xy;
    }
    let n = xy.len();
    (0..MAX_FIT_POINTS)
        .map(|i| xy[i * (n - 1) / (MAX_FIT_POINTS - 1)])
        .collect()
}

/// Theil–Sen's slope and Sen's 95% range: the median of the pairwise slopes,
/// and the slopes at the ranks the normal approximation gives. None when no
/// two points differ in time.
fn theil_sen(xy: &[(f64, f64)]) -> Option<(f64, f64, f64)> {
    let mut slopes: Vec<f64> = Vec::with_capacity(xy.len() * xy.len() / 2);
    for (i, (x0, y0)) in xy.iter().enumerate() {
        for (x1, y1) in &xy[i + 1..] {
            if x1 > x0 {
                slopes.push((y1 - y0) / (x1 - x0));
            }
        }
    }
    if slopes.is_empty() {
        return None;
    }
    slopes.sort_by(f64::total_cmp);
    let slope = median_sorted(&slopes)?;
    let n = xy.len() as f64;
    let pairs = slopes.len() as f64;
    let c = Z_95 * (n * (n - 1.0) * (2.0 * n + 5.0) / 18.0).sqrt();
    let rank = |r: f64| {
        let i = (r.round() as i64 - 1).clamp(0, slopes.len() as i64 - 1);
        slopes[i as usize]
    };
    let low = rank((pairs - c) / 2.0).min(slope);
    let high = rank((pairs + c) / 2.0 + 1.0).max(slope);
    Some((slope, low, high))
}

fn median(v: &mut [f64]) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    median_sorted(v)
}

fn median_sorted(v: &[f64]) -> Option<f64> {
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}
