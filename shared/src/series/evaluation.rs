//! How a CloudWatch alarm judged its datapoints, so that the page shows the
//! breach the alarm saw: the periods it evaluated (aligned to its own
//! evaluation, which CloudWatch aligns to the minute, not to the period),
//! M of N (`DatapointsToAlarm` of `EvaluationPeriods`), missing data as the
//! alarm treats it (`TreatMissingData`), and an anomaly band's edges.
//! Pure: the alarm's configuration and its `StateReasonData` come in as data.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Comparison, Point, parse_time};

/// `TreatMissingData`; CloudWatch's default is `missing`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TreatMissing {
    #[default]
    Missing,
    Ignore,
    Breaching,
    NotBreaching,
}

impl TreatMissing {
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("breaching") => Self::Breaching,
            Some("notBreaching") => Self::NotBreaching,
            Some("ignore") => Self::Ignore,
            _ => Self::Missing,
        }
    }
}

/// An anomaly-detection band at the alarm's evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Band {
    pub lower: f64,
    pub upper: f64,
}

/// Which edge of the band an anomaly-detection alarm watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BandSide {
    Outside,
    Above,
    Below,
}

impl BandSide {
    /// The band comparisons of `ComparisonOperator`; None for a threshold.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "LessThanLowerOrGreaterThanUpperThreshold" => Some(Self::Outside),
            "GreaterThanUpperThreshold" => Some(Self::Above),
            "LessThanLowerThreshold" => Some(Self::Below),
            _ => None,
        }
    }
}

/// What a datapoint is compared with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Limit {
    Threshold(f64, Comparison),
    Band(Band, BandSide),
}

impl Limit {
    pub fn breaches(&self, v: f64) -> bool {
        match *self {
            Self::Threshold(t, c) => c.breaches(v, t),
            Self::Band(b, BandSide::Outside) => v < b.lower || v > b.upper,
            Self::Band(b, BandSide::Above) => v > b.upper,
            Self::Band(b, BandSide::Below) => v < b.lower,
        }
    }
}

/// The alarm's evaluation that changed its state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    /// The end of the last period the alarm evaluated (exclusive).
    pub end: DateTime<Utc>,
    /// `EvaluationPeriods` (N).
    pub periods: u32,
    /// `DatapointsToAlarm` (M; N when the alarm sets none).
    pub to_alarm: u32,
    pub missing: TreatMissing,
    /// Where the alarm's evaluation range began, when its reason data says
    /// (`startDate`).
    pub range_start: Option<DateTime<Utc>>,
}

/// The parts of an alarm's `StateReasonData` (a JSON string CloudWatch
/// writes) that place its evaluation in time and give an anomaly band.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReasonData {
    #[serde(default)]
    start_date: Option<String>,
    #[serde(default)]
    recent_datapoints: Vec<f64>,
    #[serde(default)]
    evaluated_datapoints: Vec<EvaluatedPoint>,
    #[serde(default)]
    recent_lower_thresholds: Vec<f64>,
    #[serde(default)]
    recent_upper_thresholds: Vec<f64>,
}

#[derive(Debug, Deserialize)]
struct EvaluatedPoint {
    timestamp: String,
}

impl ReasonData {
    /// None when it is not CloudWatch's JSON.
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_str(s).ok()
    }

    /// The end of the last evaluated period: after the newest evaluated
    /// datapoint, else `startDate` plus the periods it lists.
    pub fn end(&self, period: u32, periods: u32) -> Option<DateTime<Utc>> {
        let p = chrono::Duration::seconds(i64::from(period.max(1)));
        if let Some(last) = self
            .evaluated_datapoints
            .iter()
            .filter_map(|d| parse_time(&d.timestamp))
            .max()
        {
            return Some(last + p);
        }
        let start = parse_time(self.start_date.as_deref()?)?;
        let n = u32::try_from(self.recent_datapoints.len())
            .unwrap_or(periods)
            .max(periods)
            .max(1);
        Some(start + p * i32::try_from(n).unwrap_or(1))
    }

    /// `startDate`: where the evaluation range began.
    pub fn start(&self) -> Option<DateTime<Utc>> {
        parse_time(self.start_date.as_deref()?)
    }

    /// The band at the newest evaluated datapoint, for an anomaly alarm.
    pub fn band(&self) -> Option<Band> {
        let lower = *self.recent_lower_thresholds.last()?;
        let upper = *self.recent_upper_thresholds.last()?;
        (lower.is_finite() && upper.is_finite() && lower <= upper).then_some(Band { lower, upper })
    }
}

/// The end of the evaluation when the reason data does not say: CloudWatch
/// evaluates at the minute, over the periods that ended by then.
pub fn minute_floor(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp().div_euclid(60) * 60, 0).unwrap_or(t)
}

/// The first breaching datapoint of the periods that fired the alarm (and
/// of any unbroken run of breaching periods just before it), as CloudWatch
/// counts them: with N real datapoints in the evaluation range,
/// the newest N; with fewer, the last N periods, each missing one filled as
/// `TreatMissingData` says (`missing` and `ignore`: left out). None unless
/// M of them breach. The evaluation range starts where the alarm's reason
/// data says; without it, 2N periods back (AWS says only that it is longer
/// than N).
pub fn breach_started(
    points: &[Point],
    period: u32,
    e: &Evaluation,
    limit: &Limit,
) -> Option<DateTime<Utc>> {
    let p = chrono::Duration::seconds(i64::from(period.max(1)));
    let n = e.periods.max(1);
    let m = e.to_alarm.clamp(1, n);
    let range_start = e
        .range_start
        .unwrap_or_else(|| e.end - p * i32::try_from(2 * n).unwrap_or(i32::MAX));
    let mut real: Vec<&Point> = points
        .iter()
        .filter(|x| x.at < e.end && x.at >= range_start)
        .collect();
    real.sort_by_key(|x| std::cmp::Reverse(x.at));
    let evaluated: Vec<(DateTime<Utc>, bool)> = if real.len() >= n as usize {
        real.iter()
            .take(n as usize)
            .map(|x| (x.at, limit.breaches(x.value)))
            .collect()
    } else {
        (1..=n)
            .filter_map(|k| {
                let slot = e.end - p * i32::try_from(k).unwrap_or(1);
                match real.iter().find(|x| x.at >= slot && x.at < slot + p) {
                    Some(x) => Some((x.at, limit.breaches(x.value))),
                    None => match e.missing {
                        TreatMissing::Breaching => Some((slot, true)),
                        TreatMissing::NotBreaching => Some((slot, false)),
                        TreatMissing::Missing | TreatMissing::Ignore => None,
                    },
                }
            })
            .collect()
    };
    let breaching: Vec<DateTime<Utc>> = evaluated
        .iter()
        .filter(|(_, b)| *b)
        .map(|(t, _)| *t)
        .collect();
    let first = (breaching.len() >= m as usize)
        .then(|| breaching.into_iter().min())
        .flatten()?;
    // An unbroken run of breaching periods just before it breached too (the
    // alarm saw them late, or not at all): the breach began there.
    let mut start = first;
    while let Some(x) = points.iter().find(|x| x.at == start - p) {
        if !limit.breaches(x.value) {
            break;
        }
        start = x.at;
    }
    Some(start)
}

/// Whether the newest datapoint is more than two periods older than the
/// end of the evaluation: the alarm judged an old value, or none.
pub fn is_stale(latest: DateTime<Utc>, period: u32, end: DateTime<Utc>) -> bool {
    end - latest > chrono::Duration::seconds(2 * i64::from(period.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 1, 0, 0).unwrap() + chrono::Duration::minutes(min)
    }

    fn pts(values: &[(i64, f64)]) -> Vec<Point> {
        values
            .iter()
            .map(|(m, v)| Point {
                at: at(*m),
                value: *v,
            })
            .collect()
    }

    fn eval(n: u32, m: u32, missing: TreatMissing) -> Evaluation {
        // Periods of 5 minutes, aligned to :04 as the alarm evaluated at :04.
        Evaluation {
            end: at(64),
            periods: n,
            to_alarm: m,
            missing,
            range_start: None,
        }
    }

    const OVER_80: Limit = Limit::Threshold(80.0, Comparison::GreaterThanOrEqual);

    #[test]
    fn m_of_n_starts_at_the_first_breaching_datapoint_of_the_window_that_fired() {
        // 3 of 5: the window is 39..59; 44 breaches, 49 does not, 54 and 59 do.
        let p = pts(&[
            (34, 90.0),
            (39, 10.0),
            (44, 85.0),
            (49, 20.0),
            (54, 95.0),
            (59, 99.0),
        ]);
        let e = eval(5, 3, TreatMissing::Missing);
        assert_eq!(breach_started(&p, 300, &e, &OVER_80), Some(at(44)));
        // The old rule (the trailing run) would have said 54.
        // 34 breaches too, but 39 between them does not: the breach is 44's.
        // Only 2 of 5 breach: the window did not fire.
        let p2 = pts(&[(39, 10.0), (44, 15.0), (49, 20.0), (54, 95.0), (59, 99.0)]);
        assert_eq!(breach_started(&p2, 300, &e, &OVER_80), None);
        // Datapoints after the evaluation do not count.
        let mut p3 = p2.clone();
        p3.push(Point {
            at: at(64),
            value: 99.0,
        });
        assert_eq!(breach_started(&p3, 300, &e, &OVER_80), None);
    }

    #[test]
    fn a_breach_that_began_before_the_window_began_there() {
        // 1 of 1, but breaching without a break since 44.
        let p = pts(&[(39, 10.0), (44, 85.0), (49, 90.0), (54, 95.0), (59, 99.0)]);
        let e = eval(1, 1, TreatMissing::Missing);
        assert_eq!(breach_started(&p, 300, &e, &OVER_80), Some(at(44)));
    }

    #[test]
    fn missing_datapoints_count_as_the_alarm_treats_them() {
        // 2 of 3 with only one real datapoint in the range.
        let p = pts(&[(59, 95.0)]);
        let breaching = eval(3, 2, TreatMissing::Breaching);
        assert_eq!(breach_started(&p, 300, &breaching, &OVER_80), Some(at(49)));
        for missing in [
            TreatMissing::NotBreaching,
            TreatMissing::Missing,
            TreatMissing::Ignore,
        ] {
            assert_eq!(
                breach_started(&p, 300, &eval(3, 2, missing), &OVER_80),
                None,
                "{missing:?}"
            );
        }
        // Enough real datapoints further back: those are evaluated, and
        // missing-data treatment does not apply.
        let p = pts(&[(39, 90.0), (44, 91.0), (59, 95.0)]);
        assert_eq!(breach_started(&p, 300, &breaching, &OVER_80), Some(at(39)));
    }

    #[test]
    fn an_anomaly_band_is_read_from_the_reason_data_and_judged_by_its_side() {
        let r = ReasonData::parse(
            r#"{"version":"1.0","queryDate":"2026-11-25T02:04:12.148+0000","startDate":"2026-11-25T01:59:00.000+0000","period":300,"recentDatapoints":[96.4],"recentLowerThresholds":[12.0],"recentUpperThresholds":[71.2]}"#,
        )
        .unwrap();
        let band = r.band().unwrap();
        assert_eq!((band.lower, band.upper), (12.0, 71.2));
        assert_eq!(r.end(300, 1), Some(at(64)));
        assert!(Limit::Band(band, BandSide::Outside).breaches(5.0));
        assert!(!Limit::Band(band, BandSide::Above).breaches(5.0));
        assert!(Limit::Band(band, BandSide::Above).breaches(96.4));
        assert_eq!(BandSide::parse("GreaterThanThreshold"), None);
    }

    #[test]
    fn the_end_follows_the_evaluated_datapoints_and_staleness_is_two_periods() {
        let r = ReasonData::parse(
            r#"{"startDate":"2026-11-25T01:29:00.000+0000","period":3600,"recentDatapoints":[5.0],"evaluatedDatapoints":[{"timestamp":"2026-11-25T01:29:00.000+0000","value":5.0}]}"#,
        )
        .unwrap();
        assert_eq!(r.end(3600, 1), Some(at(89)));
        assert!(ReasonData::parse("not json").is_none());
        assert!(!is_stale(at(54), 300, at(64)));
        assert!(is_stale(at(53), 300, at(64)));
        assert_eq!(minute_floor(at(4) + chrono::Duration::seconds(12)), at(4));
    }
}
