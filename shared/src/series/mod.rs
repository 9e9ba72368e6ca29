//! The metric behind an alert, as CloudWatch has it: what the page shows
//! (a sparkline, minimum, maximum, latest, the threshold, when the breach
//! began) and, for a disk, a forecast a person can check (`fit.rs`: a robust
//! fit, sudden rises left out; "full" is when the low end of its range
//! reaches 100%).
//!
//! Pure: the reads are in `read.rs`, which builds the query from the alarm's
//! own configuration (`DescribeAlarms`), never from event text.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;

#[cfg(test)]
pub(crate) mod cases;
pub mod evaluation;
mod fit;
pub use evaluation::{Band, Evaluation, Limit};
pub use fit::{FLAT_PERCENT_PER_HOUR, STEP_FACTOR, STEP_FLOOR_POINTS, forecast};

/// The IAM actions of the reads. GetMetricData and ListMetrics (an
/// Alertmanager disk alert's agent metric) have no resource-level
/// permission (granted on `*`); DescribeAlarms is granted on this account's
/// and region's alarms.
pub const PERMISSIONS: &[&str] = &[
    "cloudwatch:DescribeAlarms",
    "cloudwatch:GetMetricData",
    "cloudwatch:ListMetrics",
];

/// How far back the page looks from the alarm's state change, at least.
pub const WINDOW_SECONDS: i64 = 3 * 3600;

/// The fewest periods the page shows: an alarm of 1 hour or 1 day gets
/// a graph too, not one datapoint.
pub const WINDOW_PERIODS: i64 = 12;

/// How far back the page looks for a metric of this period.
pub fn page_window(period: u32) -> i64 {
    WINDOW_SECONDS.max(WINDOW_PERIODS * i64::from(period.max(1)))
}

/// How far back a disk's forecast looks: a day, so that a step or a burst
/// in the last hours is seen against the steady rate before it.
pub const FORECAST_WINDOW_SECONDS: i64 = 24 * 3600;

/// The longest window a metric of this period can be read over, up to
/// [`FORECAST_WINDOW_SECONDS`]: CloudWatch keeps datapoints of periods
/// under a minute (high resolution) for 3 hours only.
pub fn forecast_window(period: u32) -> i64 {
    if period < 60 {
        WINDOW_SECONDS
    } else {
        FORECAST_WINDOW_SECONDS
    }
}

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

/// An alarm's time: RFC 3339 (Alertmanager) or CloudWatch's
/// `2026-11-25T02:04:12.152+0000` (no colon in the offset).
pub fn parse_time(t: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t)
        .or_else(|_| DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|d| d.with_timezone(&Utc))
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
    /// An anomaly-detection alarm's band at its evaluation, in place of
    /// a threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub band: Option<Band>,
    /// For an alarm, the first breaching datapoint of the periods that
    /// fired it (M of N, missing data as the alarm treats it); otherwise
    /// the first of the breach still going on at the end of the window
    /// (RFC 3339). None when there is no breach.
    pub breach_started: Option<String>,
    /// The newest datapoint's time (RFC 3339).
    pub latest_at: String,
    /// The newest datapoint is more than two periods older than the end of
    /// the window (the alarm's evaluation): the alarm judged old data.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
    /// How far back the page looks ([`page_window`]).
    pub window_seconds: i64,
    /// The metric's dimensions, for a single metric (which filesystem of
    /// which instance); absent for metric math.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub dimensions: BTreeMap<String, String>,
    /// CloudWatch's unit of the series (`Percent`, `Bytes`, …) when the
    /// alarm or the query gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// A disk's longer history ([`forecast_window`]), oldest first, for its
    /// forecast; empty when only the page's window was read.
    #[serde(skip)]
    pub history: Vec<Point>,
}

/// Where the metric is heading (`forecast` in the report's JSON), fitted
/// by [`forecast`] (`fit.rs`: steps excluded, Theil–Sen, a 95% range).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Forecast {
    /// The fitted slope, in percentage points an hour.
    pub percent_per_hour: f64,
    /// The 95% range of the slope. The date and any sizing use the low end.
    pub low_percent_per_hour: f64,
    pub high_percent_per_hour: f64,
    /// The steps taken out before the fit: the first datapoint after each
    /// rise too sudden to be a rate (RFC 3339).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps_excluded: Vec<String>,
    /// The first datapoint fitted (RFC 3339): a disk's forecast reads up
    /// to a day back ([`forecast_window`]), the page shows the last hours.
    pub fitted_from: String,
    /// When the low end of the range reaches 100% (RFC 3339); None when it
    /// is not growing.
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
    let last = *points.last()?;
    let latest = last.value;
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
        band: None,
        breach_started,
        latest_at: rfc3339(last.at),
        stale: false,
        window_seconds: page_window(period),
        dimensions: BTreeMap::new(),
        unit: None,
        history: Vec::new(),
    })
}

/// Whether a metric's name or expression says it is a percentage
/// (`disk_used_percent`, `LogicalDisk % Free Space`, `CPUUtilization`, or
/// metric math of the shape `100 * a / b`).
fn named_as_percent(label: &str) -> bool {
    let l = label.to_ascii_lowercase();
    l.contains("percent")
        || l.contains('%')
        || l.contains("utilization")
        || l.contains("_pct")
        || (l.contains("100") && l.contains('/'))
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

impl Forecast {
    /// "; 1 step left out (at ...)" when the fit excluded any.
    fn steps_note(&self) -> String {
        match self.steps_excluded.as_slice() {
            [] => String::new(),
            [one] => format!("; one sudden rise left out of the rate (at {one})"),
            many => format!(
                "; {} sudden rises left out of the rate (the last at {})",
                many.len(),
                many[many.len() - 1]
            ),
        }
    }

    /// "full in about 14 h at the current rate (2.0%/h)" or "not growing".
    pub fn describe(&self, now: DateTime<Utc>) -> String {
        match self.full_at_time {
            None if self.percent_per_hour >= FLAT_PERCENT_PER_HOUR => format!(
                "not growing steadily ({:+.2} percentage points an hour, but as little as {:+.2}: too noisy to forecast){}",
                self.percent_per_hour,
                self.low_percent_per_hour,
                self.steps_note()
            ),
            None => format!(
                "not growing ({:+.2} percentage points an hour){}",
                self.percent_per_hour,
                self.steps_note()
            ),
            Some(t) => {
                let h = (t - now).num_minutes() as f64 / 60.0;
                let when = if h < 1.0 {
                    "within the hour".to_owned()
                } else {
                    format!("in about {h:.0} h")
                };
                format!(
                    "full {when} at the current rate ({:.2} percentage points an hour, at least {:.2}; the slower line reaches 100% at {}){}",
                    self.percent_per_hour,
                    self.low_percent_per_hour,
                    rfc3339(t),
                    self.steps_note()
                )
            }
        }
    }
}

impl MetricContext {
    /// Whether the series is a percentage, as the disk's forecast needs: the
    /// unit CloudWatch gives (`Percent`), or, without one, a name or
    /// expression that says so; and every value within 0 to 100. Err: why
    /// not, for the page (a volume is then sized by the rule alone).
    pub fn as_percent(&self) -> Result<(), String> {
        match self.unit.as_deref() {
            Some("Percent") => {}
            Some(u) if u != "None" => {
                return Err(format!(
                    "no forecast: {} is in {u}, not a percentage",
                    self.metric
                ));
            }
            _ if !named_as_percent(&self.metric) => {
                return Err(format!(
                    "no forecast: {} gives no unit and its name does not say it is a percentage",
                    self.metric
                ));
            }
            _ => {}
        }
        if self.min < 0.0 || self.max > 100.0 {
            return Err(format!(
                "no forecast: {} runs from {} to {}, not a percentage",
                self.metric,
                figure(self.min),
                figure(self.max)
            ));
        }
        Ok(())
    }

    /// Puts the alarm's own judgement in: the window ends at its
    /// evaluation, the breach is the one that fired it, an old newest
    /// datapoint is stale.
    pub fn judged(mut self, e: &Evaluation, limit: Option<&Limit>) -> Self {
        self.datapoints.retain(|p| p.at < e.end);
        if let Some(last) = self.datapoints.last().copied() {
            self.latest = last.value;
            self.latest_at = rfc3339(last.at);
            let (min, max) = self
                .datapoints
                .iter()
                .fold((f64::MAX, f64::MIN), |(lo, hi), p| {
                    (lo.min(p.value), hi.max(p.value))
                });
            (self.min, self.max) = (min, max);
            self.stale = evaluation::is_stale(last.at, self.period, e.end);
        }
        if let Some(Limit::Band(b, _)) = limit {
            self.band = Some(*b);
        }
        self.breach_started = limit
            .and_then(|l| evaluation::breach_started(&self.datapoints, self.period, e, l))
            .map(rfc3339);
        self
    }

    /// The lines the page shows, after the sparkline.
    pub fn lines(&self) -> Vec<String> {
        let w = self.window_seconds;
        let span = if w >= 2 * 86400 && w % 86400 == 0 {
            format!("last {} d", w / 86400)
        } else {
            format!("last {} h", w / 3600)
        };
        let mut out = self.graph(&span);
        if self.stale {
            out.push(format!(
                "stale: the newest datapoint is from {}, more than two periods before the alarm's evaluation",
                self.latest_at
            ));
        }
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
                match (self.threshold, self.band) {
                    (Some(t), _) => format!(" | threshold {}", figure(t)),
                    (None, Some(b)) =>
                        format!(" | band {} to {}", figure(b.lower), figure(b.upper)),
                    (None, None) => String::new(),
                }
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
