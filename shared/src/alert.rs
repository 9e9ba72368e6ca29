//! Parsing of the events that carry an alert into one normalised [`Alert`].
//!
//! Every shape is deserialised through `serde_path_to_error`, so a bad event
//! is rejected with the path of the offending field.

use std::collections::BTreeMap;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::InputError;
use crate::ids::shown;

/// Larger events are refused before parsing (EventBridge caps events at 256 KB,
/// a Lambda async payload at 1 MB).
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmState {
    Ok,
    Alarm,
    InsufficientData,
}

impl AlarmState {
    fn parse(field: &str, value: &str) -> Result<Self, InputError> {
        match value {
            "OK" => Ok(Self::Ok),
            "ALARM" => Ok(Self::Alarm),
            "INSUFFICIENT_DATA" => Ok(Self::InsufficientData),
            other => Err(InputError::field(
                field,
                format!(
                    "{} is not an alarm state (OK, ALARM or INSUFFICIENT_DATA)",
                    shown(other)
                ),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Alarm => "ALARM",
            Self::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertSource {
    /// EventBridge "CloudWatch Alarm State Change".
    EventBridge,
}

/// The metric an alarm watches. `field` is where it sat in the event, so that
/// later validation (of the `InstanceId` dimension, say) names the right path.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricRef {
    pub namespace: String,
    pub name: String,
    pub dimensions: BTreeMap<String, String>,
    #[serde(skip)]
    pub field: String,
}

/// One alert, whatever shape it arrived in.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Alert {
    pub source: AlertSource,
    pub alarm_name: String,
    pub alarm_arn: Option<String>,
    pub state: AlarmState,
    pub previous_state: Option<AlarmState>,
    /// When the alarm entered `state`, as the event gave it.
    pub state_timestamp: String,
    pub reason: String,
    pub description: Option<String>,
    pub metric: Option<MetricRef>,
    /// The triggering value: most recent datapoint of `reasonData`, else the
    /// first number in the reason text.
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub region: Option<String>,
    pub account: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// Parses raw event bytes into alerts.
pub fn parse_event(bytes: &[u8]) -> Result<Vec<Alert>, InputError> {
    parse_value(decode(bytes)?)
}

/// Size check and JSON decoding, before any field is looked at.
pub fn decode(bytes: &[u8]) -> Result<Value, InputError> {
    if bytes.len() > MAX_EVENT_BYTES {
        return Err(InputError::Unsupported(format!(
            "event is {} bytes, more than the {MAX_EVENT_BYTES} accepted",
            bytes.len()
        )));
    }
    serde_json::from_slice(bytes).map_err(|e| InputError::Json(e.to_string()))
}

/// Parses an already decoded event (the Lambda runtime hands us a `Value`).
pub fn parse_value(value: Value) -> Result<Vec<Alert>, InputError> {
    let Some(object) = value.as_object() else {
        return Err(InputError::Unsupported(format!(
            "expected a JSON object, got {}",
            json_kind(&value)
        )));
    };
    if object.contains_key("detail-type") {
        return parse_eventbridge(value).map(|a| vec![a]);
    }
    Err(InputError::Unsupported(
        "not an EventBridge \"CloudWatch Alarm State Change\" event (no `detail-type`)".into(),
    ))
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn deserialize<T: serde::de::DeserializeOwned>(
    value: Value,
    prefix: &str,
) -> Result<T, InputError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = match (prefix.is_empty(), path.as_str()) {
            (true, ".") => "(top level)".to_owned(),
            (true, p) => p.to_owned(),
            (false, ".") => prefix.to_owned(),
            (false, p) => format!("{prefix}.{p}"),
        };
        InputError::field(field, e.into_inner().to_string())
    })
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct AlarmDetail {
    alarm_name: String,
    state: StateRaw,
    #[serde(default)]
    previous_state: Option<StateRaw>,
    #[serde(default)]
    configuration: Option<ConfigurationRaw>,
    #[serde(default)]
    alarm_tags: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct StateRaw {
    value: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    reason_data: Option<String>,
    timestamp: String,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct ConfigurationRaw {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    metrics: Vec<MetricRaw>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct MetricRaw {
    #[serde(default)]
    metric_stat: Option<MetricStatRaw>,
}

#[derive(Deserialize, Serialize)]
struct MetricStatRaw {
    metric: MetricIdRaw,
}

#[derive(Deserialize, Serialize)]
struct MetricIdRaw {
    namespace: String,
    name: String,
    #[serde(default)]
    dimensions: BTreeMap<String, String>,
}

const ALARM_DETAIL_TYPE: &str = "CloudWatch Alarm State Change";

fn parse_eventbridge(value: Value) -> Result<Alert, InputError> {
    // Say "wrong kind of event" before complaining about its fields.
    let text = |k: &str| value.get(k).and_then(Value::as_str).map(ToOwned::to_owned);
    if let (Some(dt), Some(src)) = (text("detail-type"), text("source"))
        && (dt != ALARM_DETAIL_TYPE || src != "aws.cloudwatch")
    {
        return Err(InputError::field(
            "detail-type",
            format!(
                "{} from source {} is not a CloudWatch alarm state change (expected {ALARM_DETAIL_TYPE:?} from \"aws.cloudwatch\")",
                shown(&dt),
                shown(&src)
            ),
        ));
    }
    let event: EventBridgeEvent<Value> = deserialize(value, "")?;
    let detail: AlarmDetail = deserialize(event.detail, "detail")?;
    let alarm_name = checked_name("detail.alarmName", detail.alarm_name)?;
    let state = AlarmState::parse("detail.state.value", &detail.state.value)?;
    let previous_state = detail
        .previous_state
        .as_ref()
        .map(|p| AlarmState::parse("detail.previousState.value", &p.value))
        .transpose()?;
    let (value, threshold) = triggering_value(&detail.state.reason_data, &detail.state.reason);
    let alarm_arn = event
        .resources
        .unwrap_or_default()
        .into_iter()
        .find(|r| r.starts_with("arn:") && r.contains(":alarm:"));
    let (description, metric) = match detail.configuration {
        Some(c) => (c.description, first_metric(c.metrics)),
        None => (None, None),
    };
    Ok(Alert {
        source: AlertSource::EventBridge,
        alarm_name,
        alarm_arn,
        state,
        previous_state,
        state_timestamp: detail.state.timestamp,
        reason: detail.state.reason,
        description,
        metric,
        value,
        threshold,
        region: event.region,
        account: event.account,
        tags: detail.alarm_tags.unwrap_or_default(),
    })
}

fn first_metric(metrics: Vec<MetricRaw>) -> Option<MetricRef> {
    metrics.into_iter().enumerate().find_map(|(i, m)| {
        m.metric_stat.map(|s| MetricRef {
            namespace: s.metric.namespace,
            name: s.metric.name,
            dimensions: s.metric.dimensions,
            field: format!("detail.configuration.metrics[{i}].metricStat.metric"),
        })
    })
}

fn checked_name(field: &str, name: String) -> Result<String, InputError> {
    let len = name.chars().count();
    if len == 0 || len > 255 || name.chars().any(char::is_control) {
        return Err(InputError::field(
            field,
            format!(
                "{} is not an alarm name (1-255 characters, no control characters)",
                shown(&name)
            ),
        ));
    }
    Ok(name)
}

/// The value that tripped the alarm and its threshold. `reasonData` is a JSON
/// string written by CloudWatch; when it is missing or unreadable the reason
/// text ("... datapoints [95.3 (25/11/26 01:59:00)] ...") is the fallback.
pub fn triggering_value(reason_data: &Option<String>, reason: &str) -> (Option<f64>, Option<f64>) {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct ReasonData {
        #[serde(default)]
        recent_datapoints: Vec<f64>,
        #[serde(default)]
        threshold: Option<f64>,
    }
    let parsed = reason_data
        .as_deref()
        .and_then(|s| serde_json::from_str::<ReasonData>(s).ok());
    let threshold = parsed.as_ref().and_then(|d| d.threshold);
    // recentDatapoints is oldest first; the newest is what the alarm saw last.
    let value = parsed
        .and_then(|d| d.recent_datapoints.last().copied())
        .filter(|v| v.is_finite())
        .or_else(|| value_from_reason(reason));
    (value, threshold)
}

fn value_from_reason(reason: &str) -> Option<f64> {
    let start = reason.find('[')? + 1;
    let rest = &reason[start..];
    let end = rest.find([' ', ']', ','])?;
    rest[..end].parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HIGH_CPU: &str = include_str!("../../events/high-cpu-alarm.json");
    const HIGH_CPU_OK: &str = include_str!("../../events/high-cpu-ok.json");

    #[test]
    fn parses_the_sample_high_cpu_alarm() {
        let alerts = parse_event(HIGH_CPU.as_bytes()).unwrap();
        assert_eq!(alerts.len(), 1);
        let a = &alerts[0];
        assert_eq!(a.alarm_name, "web-high-cpu");
        assert_eq!(a.state, AlarmState::Alarm);
        assert_eq!(a.previous_state, Some(AlarmState::Ok));
        assert_eq!(a.value, Some(95.3));
        assert_eq!(a.threshold, Some(80.0));
        assert_eq!(
            a.alarm_arn.as_deref(),
            Some("arn:aws:cloudwatch:us-east-1:123456789012:alarm:web-high-cpu")
        );
        let m = a.metric.as_ref().unwrap();
        assert_eq!(
            (m.namespace.as_str(), m.name.as_str()),
            ("AWS/EC2", "CPUUtilization")
        );
        assert_eq!(m.dimensions["InstanceId"], "i-0123456789abcdef0");
        assert_eq!(a.state_timestamp, "2026-11-25T02:04:12.152+0000");
    }

    #[test]
    fn parses_the_recovery() {
        let a = &parse_event(HIGH_CPU_OK.as_bytes()).unwrap()[0];
        assert_eq!(a.state, AlarmState::Ok);
        assert_eq!(a.previous_state, Some(AlarmState::Alarm));
        assert_eq!(a.value, Some(37.9));
    }

    #[test]
    fn value_comes_from_the_newest_datapoint() {
        let rd = Some(r#"{"recentDatapoints":[91.0,97.5],"threshold":90}"#.to_owned());
        assert_eq!(triggering_value(&rd, ""), (Some(97.5), Some(90.0)));
    }

    #[test]
    fn value_falls_back_to_the_reason_text() {
        let reason = "Threshold Crossed: 1 out of the last 1 datapoints [88.25 (25/11/26 01:59:00)] was greater";
        assert_eq!(triggering_value(&None, reason), (Some(88.25), None));
        assert_eq!(
            triggering_value(&Some("not json".into()), reason).0,
            Some(88.25)
        );
        assert_eq!(triggering_value(&None, "no datapoints here"), (None, None));
        assert_eq!(triggering_value(&None, "[NaN ]"), (None, None));
    }

    fn with(path: &[&str], new: Value) -> Vec<u8> {
        let mut v: Value = serde_json::from_str(HIGH_CPU).unwrap();
        let mut cur = &mut v;
        for p in &path[..path.len() - 1] {
            cur = &mut cur[*p];
        }
        cur[path[path.len() - 1]] = new;
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn errors_name_the_field() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"{not json".to_vec(), "not valid JSON"),
            (b"[]".to_vec(), "expected a JSON object"),
            (b"{}".to_vec(), "no `detail-type`"),
            (
                br#"{"detail-type":"CloudWatch Alarm State Change","source":"aws.cloudwatch"}"#
                    .to_vec(),
                "field `(top level)`: missing field `detail`",
            ),
            (
                br#"{"detail-type":5,"source":"aws.cloudwatch","detail":{}}"#.to_vec(),
                "field `detail-type`",
            ),
            (
                with(
                    &["detail-type"],
                    "EC2 Instance State-change Notification".into(),
                ),
                "detail-type",
            ),
            (with(&["source"], "aws.ec2".into()), "detail-type"),
            (
                with(&["detail", "state", "value"], "FIRING".into()),
                "detail.state.value",
            ),
            (
                with(&["detail", "state", "value"], 7.into()),
                "detail.state.value",
            ),
            (
                with(&["detail", "alarmName"], Value::Null),
                "detail.alarmName",
            ),
            (
                with(&["detail", "alarmName"], "a\nb".into()),
                "detail.alarmName",
            ),
            (
                with(&["detail", "state", "timestamp"], Value::Null),
                "detail.state.timestamp",
            ),
            (
                with(&["detail", "previousState", "value"], "NOPE".into()),
                "detail.previousState.value",
            ),
            (
                with(&["detail", "configuration", "metrics"], "x".into()),
                "detail.configuration.metrics",
            ),
        ];
        for (bytes, needle) in cases {
            let err = parse_event(&bytes).unwrap_err().to_string();
            assert!(err.contains(needle), "expected {needle:?} in {err:?}");
        }
    }

    #[test]
    fn refuses_oversized_events() {
        let big = vec![b' '; MAX_EVENT_BYTES + 1];
        assert!(parse_event(&big).unwrap_err().to_string().contains("bytes"));
    }
}
