//! The metric behind an alert, as CloudWatch has it: what the page shows
//! (a sparkline, minimum, maximum, latest, the threshold, when the breach
//! began) and, for a disk, a forecast a person can check (a least-squares
//! line: "full" is when the fitted line reaches 100%).
//!
//! Pure: the reads are in `read.rs`, which builds the query from the alarm's
//! own configuration (`DescribeAlarms`), never from event text.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;

/// The IAM actions of the reads. GetMetricData and ListMetrics (an
/// Alertmanager disk alert's agent metric) have no resource-level
/// permission (granted on `*`); DescribeAlarms is granted on this account's
/// and region's alarms.
pub const PERMISSIONS: &[&str] = &[
    "cloudwatch:DescribeAlarms",
    "cloudwatch:GetMetricData",
    "cloudwatch:ListMetrics",
];

/// How far back the page looks from the alarm's state change.
pub const WINDOW_SECONDS: i64 = 3 * 3600;

/// The widest sparkline the email draws (one character a bucket).
pub const SPARK_WIDTH: usize = 48;

/// How an alarm compares its metric with its threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Comparison {
    GreaterThanOrEqual,
    GreaterThan,
    LessThan,
    LessThanOrEqual,
}

impl Comparison {
    /// CloudWatch's `ComparisonOperator`; anomaly bands (`...Band`) have no
    /// fixed threshold and give None.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "GreaterThanOrEqualToThreshold" => Some(Self::GreaterThanOrEqual),
            "GreaterThanThreshold" => Some(Self::GreaterThan),
            "LessThanThreshold" => Some(Self::LessThan),
            "LessThanOrEqualToThreshold" => Some(Self::LessThanOrEqual),
            _ => None,
        }
    }

    pub fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::GreaterThanOrEqual => value >= threshold,
            Self::GreaterThan => value > threshold,
            Self::LessThan => value < threshold,
            Self::LessThanOrEqual => value <= threshold,
        }
    }
}

/// One datapoint: its time and value, `[RFC 3339, value]` in JSON.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub at: DateTime<Utc>,
    pub value: f64,
}

impl Serialize for Point {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (rfc3339(self.at), self.value).serialize(s)
    }
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The metric as the page shows it (`context` in the report's JSON).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricContext {
    /// `NAMESPACE/NAME`, or the alarm's expression for metric math.
    pub metric: String,
    /// Seconds per datapoint.
    pub period: u32,
    /// Oldest first.
    pub datapoints: Vec<Point>,
    pub min: f64,
    pub max: f64,
    pub latest: f64,
    pub threshold: Option<f64>,
    /// The first datapoint of the breach that is still going on at the
    /// end of the window (RFC 3339); None when the latest does not breach.
    pub breach_started: Option<String>,
    /// The metric's dimensions, for a single metric (which filesystem of
    /// which instance); absent for metric math.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub dimensions: BTreeMap<String, String>,
}

/// Where the metric is heading (`forecast` in the report's JSON).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Forecast {
    /// The fitted line's slope, in percentage points an hour.
    pub percent_per_hour: f64,
    /// When the fitted line reaches 100% (RFC 3339); None when it is not
    /// growing.
    pub full_at: Option<String>,
    #[serde(skip)]
    pub full_at_time: Option<DateTime<Utc>>,
}

/// The series' figures and the breach, or None for an empty series.
pub fn summarize(
    metric: String,
    period: u32,
    mut points: Vec<Point>,
    threshold: Option<f64>,
    comparison: Option<Comparison>,
) -> Option<MetricContext> {
    points.retain(|p| p.value.is_finite());
    points.sort_by_key(|p| p.at);
    points.dedup_by_key(|p| p.at);
    let latest = points.last()?.value;
    let (min, max) = points.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p.value), hi.max(p.value))
    });
    let breach_started = match (threshold, comparison) {
        (Some(th), Some(c)) => points
            .iter()
            .rev()
            .take_while(|p| c.breaches(p.value, th))
            .last()
            .map(|p| rfc3339(p.at)),
        _ => None,
    };
    Some(MetricContext {
        metric,
        period,
        datapoints: points,
        min,
        max,
        latest,
        threshold,
        breach_started,
        dimensions: BTreeMap::new(),
    })
}

/// One line of `▁▂▃▄▅▆▇█`, at most `width` characters: the series in equal
/// buckets, each drawn at its highest value (a spike is not averaged away),
/// scaled between the series' minimum and maximum.
pub fn sparkline(values: &[f64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if values.is_empty() || width == 0 {
        return String::new();
    }
    let n = values.len().min(width);
    let buckets: Vec<f64> = (0..n)
        .map(|b| {
            let (from, to) = (b * values.len() / n, (b + 1) * values.len() / n);
            values[from..to.max(from + 1)]
                .iter()
                .copied()
                .fold(f64::MIN, f64::max)
        })
        .collect();
    let lo = buckets.iter().copied().fold(f64::MAX, f64::min);
    let hi = buckets.iter().copied().fold(f64::MIN, f64::max);
    buckets
        .iter()
        .map(|v| {
            if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
                BARS[0]
            } else {
                let i = ((v - lo) / (hi - lo) * 7.0).round() as usize;
                BARS[i.min(7)]
            }
        })
        .collect()
}

/// Below this slope (percentage points an hour) a disk is "not growing":
/// noise on a flat series must not forecast a date.
pub const FLAT_PERCENT_PER_HOUR: f64 = 0.05;

/// A least-squares line through the series (hours against percent): its
/// slope, and when it reaches 100%. Needs three datapoints over at least
/// ten minutes; None otherwise.
pub fn forecast(points: &[Point]) -> Option<Forecast> {
    let pts: Vec<&Point> = points.iter().filter(|p| p.value.is_finite()).collect();
    let (first, last) = (pts.first()?, pts.last()?);
    if pts.len() < 3 || (last.at - first.at).num_seconds() < 600 {
        return None;
    }
    let origin = first.at;
    let hours = |p: &Point| (p.at - origin).num_milliseconds() as f64 / 3_600_000.0;
    let n = pts.len() as f64;
    let mean_x = pts.iter().map(|p| hours(p)).sum::<f64>() / n;
    let mean_y = pts.iter().map(|p| p.value).sum::<f64>() / n;
    let sxx: f64 = pts.iter().map(|p| (hours(p) - mean_x).powi(2)).sum();
    let sxy: f64 = pts
        .iter()
        .map(|p| (hours(p) - mean_x) * (p.value - mean_y))
        .sum();
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let intercept = mean_y - slope * mean_x;
    let full_at_time = if slope < FLAT_PERCENT_PER_HOUR {
        None
    } else {
        // Never before the last datapoint: a disk already past 100% on
        // the line is full now.
        let at_hours = ((100.0 - intercept) / slope).max(hours(last));
        let ms = (at_hours * 3_600_000.0).min(1e15) as i64;
        origin.checked_add_signed(chrono::Duration::milliseconds(ms))
    };
    Some(Forecast {
        percent_per_hour: (slope * 1000.0).round() / 1000.0,
        full_at: full_at_time.map(rfc3339),
        full_at_time,
    })
}

impl Forecast {
    /// "full in about 14 h at the current rate (2.0%/h)" or "not growing".
    pub fn describe(&self, now: DateTime<Utc>) -> String {
        match self.full_at_time {
            None => format!(
                "not growing ({:+.2} percentage points an hour)",
                self.percent_per_hour
            ),
            Some(t) => {
                let h = (t - now).num_minutes() as f64 / 60.0;
                let when = if h < 1.0 {
                    "within the hour".to_owned()
                } else {
                    format!("in about {h:.0} h")
                };
                format!(
                    "full {when} at the current rate ({:.2} percentage points an hour; the fitted line reaches 100% at {})",
                    self.percent_per_hour,
                    rfc3339(t)
                )
            }
        }
    }
}

impl MetricContext {
    /// The lines the page shows, after the sparkline.
    pub fn lines(&self) -> Vec<String> {
        let span = format!("last {} h", WINDOW_SECONDS / 3600);
        let mut out = self.graph(&span);
        if let Some(b) = &self.breach_started {
            out.push(format!("breaching since {b}"));
        }
        out
    }

    /// The lines of a later look at the metric (the verification's).
    pub fn lines_since(&self) -> Vec<String> {
        let from = self
            .datapoints
            .first()
            .map(|p| rfc3339(p.at))
            .unwrap_or_default();
        self.graph(&format!("from {from}"))
    }

    /// The sparkline over `span`, then the figures.
    fn graph(&self, span: &str) -> Vec<String> {
        let values: Vec<f64> = self.datapoints.iter().map(|p| p.value).collect();
        vec![
            format!(
                "{} (every {} s, {span}): {}",
                self.metric,
                self.period,
                sparkline(&values, SPARK_WIDTH)
            ),
            format!(
                "min {} | max {} | latest {}{}",
                figure(self.min),
                figure(self.max),
                figure(self.latest),
                self.threshold
                    .map(|t| format!(" | threshold {}", figure(t)))
                    .unwrap_or_default()
            ),
        ]
    }
}

/// A figure as a person reads it: one decimal.
pub fn figure(v: f64) -> String {
    format!("{v:.1}")
}

#[cfg(test)]
mod tests;
