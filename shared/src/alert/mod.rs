//! Parsing of the events that carry an alert into one normalised [`Alert`].
//!
//! Every shape is deserialised through `serde_path_to_error`, so a bad event
//! is rejected with the path of the offending field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::InputError;
use crate::ids::shown;

mod alertmanager;
mod cloudwatch;

pub use alertmanager::*;
use cloudwatch::*;

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
    pub(crate) fn parse(field: &str, value: &str) -> Result<Self, InputError> {
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
    /// A CloudWatch alarm published to SNS, delivered to Lambda by SNS.
    Sns,
    /// A CloudWatch alarm invoking the function as its alarm action.
    AlarmAction,
    /// A Prometheus Alertmanager webhook (payload version 4).
    Alertmanager,
    /// first-responder's own predictive check (`forecast`).
    Forecast,
}

impl AlertSource {
    /// CloudWatch alarms carry dimensions; Prometheus alerts carry labels.
    pub fn is_cloudwatch(self) -> bool {
        matches!(self, Self::EventBridge | Self::Sns | Self::AlarmAction)
    }
}

/// Who set an alert's account and region, which decides whether they are
/// believed (`crate::target`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// AWS set them: EventBridge's `account`/`region`, an alarm action's
    /// ARN; or the alert names none (the deployment's own).
    Aws,
    /// The body of an SNS message (a CloudWatch alarm's `AWSAccountId` and
    /// `AlarmArn`): anyone who may publish to the topic writes it, so it is
    /// believed only once the alarm has been read there in the state the
    /// message claims.
    SnsMessage,
    /// An Alertmanager body delivered by SNS (Amazon Managed Prometheus):
    /// the record's `TopicArn`, which SNS sets, decides; the labels may name
    /// another account only through a topic listed in `FORWARDING_TOPIC_ARNS`.
    SnsTopic(Option<String>),
    /// An Alertmanager or Grafana payload's `account_id`/`region` labels:
    /// the webhook let them through only for a token bound to that account
    /// (`WEBHOOK_TOKEN_ACCOUNTS`); the CLI's operator names them.
    Labels,
}

/// The metric an alarm watches. `field` is where its dimensions (or labels)
/// sat in the event, so later validation names the right path.
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
    /// A composite alarm's rule (it has no metric).
    pub alarm_rule: Option<String>,
    /// Identifies this occurrence of the alert: the alarm ARN (or name) and
    /// state-change time, or Alertmanager's fingerprint, `startsAt` and status.
    pub occurrence: String,
    /// The triggering value: most recent datapoint of `reasonData`, else the
    /// first number in the reason text.
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    /// The account and region the alert names, and who set them
    /// ([`Origin`]): believed only as `crate::target` decides.
    pub region: Option<String>,
    pub account: Option<String>,
    pub origin: Origin,
    /// Alarm tags (CloudWatch, with tag propagation) or labels (Prometheus).
    pub tags: BTreeMap<String, String>,
    /// A Prometheus alert's `generatorURL` and its Alertmanager's
    /// `externalURL` (checked by `notify::links::web_url`; a bad one is
    /// left out, never a reason to refuse the alert).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generator_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
}

impl Alert {
    /// The alert itself, without this occurrence's time: the alarm's ARN
    /// (or name), or Alertmanager's fingerprint. What the flap guard counts.
    pub fn identity(&self) -> &str {
        self.occurrence.split('\n').next().unwrap_or_default()
    }
}

/// Parses raw event bytes into alerts.
pub fn parse_event(bytes: &[u8]) -> Result<Vec<Alert>, InputError> {
    parse_value(decode(bytes)?)
}

/// Size check and JSON decoding, before any field is looked at.
pub fn decode(bytes: &[u8]) -> Result<Value, InputError> {
    decode_at_most(bytes, MAX_EVENT_BYTES)
}

/// [`decode`] with another bound: the webhook's body may be as large as a
/// Function URL request (`webhook::MAX_BODY_BYTES`).
pub fn decode_at_most(bytes: &[u8], max: usize) -> Result<Value, InputError> {
    if bytes.len() > max {
        return Err(InputError::Unsupported(format!(
            "event is {} bytes, more than the {max} accepted",
            bytes.len()
        )));
    }
    serde_json::from_slice(bytes).map_err(|e| InputError::Json(e.to_string()))
}

/// The key that marks each event shape. An event carries exactly one.
const SHAPE_KEYS: [&str; 5] = [
    "detail-type",
    "Records",
    "alarmData",
    "requestContext",
    "alerts",
];

/// Parses an already decoded event (the Lambda runtime hands us a `Value`).
/// Strict: the first bad alert fails the whole event. [`parse_each`] keeps
/// the good alerts of a batch.
pub fn parse_value(value: Value) -> Result<Vec<Alert>, InputError> {
    parse_each(value)?.into_iter().collect()
}

/// Parses an event into one result per alert. Err: the event as a whole is
/// unusable (not JSON, no known shape, a broken envelope). A batch
/// (Alertmanager, also inside a Function URL request) gives one result per
/// alert, so one bad alert does not drop the good ones.
pub fn parse_each(value: Value) -> Result<Vec<Result<Alert, InputError>>, InputError> {
    let is_batch = value
        .as_object()
        .is_some_and(|o| o.contains_key("alerts") || o.contains_key("requestContext"))
        && shape_count(&value) == 1;
    if !is_batch {
        return parse_shape(value).map(|alerts| alerts.into_iter().map(Ok).collect());
    }
    if value.get("requestContext").is_some() {
        return parse_function_url_each(value);
    }
    Ok(parse_alertmanager_each(value)?
        .into_iter()
        .map(|r| r.map(|(a, _)| a))
        .collect())
}

fn shape_count(value: &Value) -> usize {
    shapes_of(value).len()
}

/// The keys of event shapes this object carries (`detail-type`, `Records`,
/// `alarmData`, `requestContext`, `alerts`); a valid event has exactly one.
pub fn shapes_of(value: &Value) -> Vec<&'static str> {
    value.as_object().map_or_else(Vec::new, |o| {
        SHAPE_KEYS
            .iter()
            .copied()
            .filter(|k| o.contains_key(*k))
            .collect()
    })
}

fn parse_shape(value: Value) -> Result<Vec<Alert>, InputError> {
    let Some(object) = value.as_object() else {
        return Err(InputError::Unsupported(format!(
            "expected a JSON object, got {}",
            json_kind(&value)
        )));
    };
    // Exactly one shape: an object that looks like two (an Alertmanager
    // payload that also carries `detail-type`, say) is a forgery or a bug,
    // and guessing which one was meant would let one steer the other.
    let shapes: Vec<&str> = SHAPE_KEYS
        .iter()
        .copied()
        .filter(|k| object.contains_key(*k))
        .collect();
    if shapes.len() > 1 {
        return Err(InputError::Unsupported(format!(
            "the event matches more than one shape ({}): refusing to guess which was meant",
            shapes
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if object.contains_key("detail-type") {
        return parse_eventbridge(value).map(|a| vec![a]);
    }
    if object.contains_key("Records") {
        return parse_sns(value);
    }
    if object.contains_key("alarmData") {
        return parse_alarm_action(value).map(|a| vec![a]);
    }
    if object.contains_key("requestContext") {
        return parse_function_url(value);
    }
    if object.contains_key("alerts") || object.contains_key("version") {
        return parse_alertmanager(value);
    }
    Err(InputError::Unsupported(
        "not an alert: expected an EventBridge alarm state change (`detail-type`), an SNS event \
         (`Records`), an alarm action payload (`alarmData`), an Alertmanager webhook (`alerts`) \
         or a Function URL request carrying one (`requestContext`)"
            .into(),
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
        let problem = e.into_inner().to_string();
        // serde says "missing field `x`" at the parent: name the field itself.
        match problem
            .strip_prefix("missing field `")
            .and_then(|r| r.split_once('`'))
        {
            Some((name, _)) if field == "(top level)" => InputError::field(name, "missing"),
            Some((name, _)) => InputError::field(format!("{field}.{name}"), "missing"),
            None => InputError::field(field, problem),
        }
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
mod tests;

/// The key a pager de-duplicates and resolves by (`AlarmName`): the alarm's
/// name, or for an Alertmanager alert its name and fingerprint, which its
/// firing and resolved deliveries share and no other alert has.
pub fn alarm_key(a: &Alert) -> String {
    match a.source {
        AlertSource::Alertmanager => {
            let fingerprint = a.identity();
            format!("{} [{fingerprint}]", a.alarm_name)
        }
        _ => a.alarm_name.clone(),
    }
}
