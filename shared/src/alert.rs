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
    /// A CloudWatch alarm published to SNS, delivered to Lambda by SNS.
    Sns,
    /// A CloudWatch alarm invoking the function as its alarm action.
    AlarmAction,
    /// A Prometheus Alertmanager webhook (payload version 4).
    Alertmanager,
}

impl AlertSource {
    /// CloudWatch alarms carry dimensions; Prometheus alerts carry labels.
    pub fn is_cloudwatch(self) -> bool {
        !matches!(self, Self::Alertmanager)
    }
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
    pub region: Option<String>,
    pub account: Option<String>,
    /// Alarm tags (CloudWatch, with tag propagation) or labels (Prometheus).
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
    #[serde(default)]
    alarm_rule: Option<String>,
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
    let alarm_arn = event
        .resources
        .unwrap_or_default()
        .into_iter()
        .find(|r| r.starts_with("arn:") && r.contains(":alarm:"));
    let detail: AlarmDetail = deserialize(event.detail, "detail")?;
    from_detail(
        detail,
        "detail",
        AlertSource::EventBridge,
        alarm_arn,
        event.region,
        event.account,
    )
}

/// The alarm action payload carries the same detail as EventBridge, under `alarmData`.
fn parse_alarm_action(value: Value) -> Result<Alert, InputError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Payload {
        #[serde(default)]
        alarm_arn: Option<String>,
        #[serde(default)]
        account_id: Option<String>,
        #[serde(default)]
        region: Option<String>,
        alarm_data: Value,
    }
    let p: Payload = deserialize(value, "")?;
    let detail: AlarmDetail = deserialize(p.alarm_data, "alarmData")?;
    from_detail(
        detail,
        "alarmData",
        AlertSource::AlarmAction,
        p.alarm_arn,
        p.region,
        p.account_id,
    )
}

fn from_detail(
    detail: AlarmDetail,
    prefix: &str,
    source: AlertSource,
    alarm_arn: Option<String>,
    region: Option<String>,
    account: Option<String>,
) -> Result<Alert, InputError> {
    let alarm_name = checked_name(&format!("{prefix}.alarmName"), detail.alarm_name)?;
    let state = AlarmState::parse(&format!("{prefix}.state.value"), &detail.state.value)?;
    let previous_state = detail
        .previous_state
        .as_ref()
        .map(|p| AlarmState::parse(&format!("{prefix}.previousState.value"), &p.value))
        .transpose()?;
    let (value, threshold) = triggering_value(&detail.state.reason_data, &detail.state.reason);
    let (description, metric, alarm_rule) = match detail.configuration {
        Some(c) => (c.description, first_metric(c.metrics, prefix), c.alarm_rule),
        None => (None, None, None),
    };
    let occurrence = format!(
        "{}\n{}",
        alarm_arn.as_deref().unwrap_or(&alarm_name),
        detail.state.timestamp
    );
    Ok(Alert {
        source,
        alarm_name,
        alarm_arn,
        state,
        previous_state,
        state_timestamp: detail.state.timestamp,
        reason: detail.state.reason,
        description,
        metric,
        alarm_rule,
        occurrence,
        value,
        threshold,
        region,
        account,
        tags: detail.alarm_tags.unwrap_or_default(),
    })
}

/// The metric that decides routing and the resource: the first `metricStat`
/// entry (single-metric alarms have one; metric-math and anomaly-detection
/// alarms list their inputs as `metricStat` entries beside the expression).
fn first_metric(metrics: Vec<MetricRaw>, prefix: &str) -> Option<MetricRef> {
    metrics.into_iter().enumerate().find_map(|(i, m)| {
        m.metric_stat.map(|s| MetricRef {
            namespace: s.metric.namespace,
            name: s.metric.name,
            dimensions: s.metric.dimensions,
            field: format!("{prefix}.configuration.metrics[{i}].metricStat.metric.dimensions"),
        })
    })
}

/// The JSON CloudWatch publishes to SNS for an alarm.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsAlarmMessage {
    alarm_name: String,
    #[serde(default)]
    alarm_description: Option<String>,
    #[serde(default, rename = "AWSAccountId")]
    aws_account_id: Option<String>,
    new_state_value: String,
    #[serde(default)]
    new_state_reason: String,
    state_change_time: String,
    #[serde(default)]
    alarm_arn: Option<String>,
    #[serde(default)]
    old_state_value: Option<String>,
    #[serde(default)]
    trigger: Option<SnsTrigger>,
    #[serde(default)]
    alarm_rule: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsTrigger {
    #[serde(default)]
    metric_name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    dimensions: Vec<SnsDimension>,
    #[serde(default)]
    threshold: Option<f64>,
    #[serde(default)]
    metrics: Vec<SnsMetric>,
}

#[derive(Deserialize)]
struct SnsDimension {
    name: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsMetric {
    #[serde(default)]
    metric_stat: Option<SnsMetricStat>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsMetricStat {
    metric: SnsMetricId,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsMetricId {
    metric_name: String,
    namespace: String,
    #[serde(default)]
    dimensions: Vec<SnsDimension>,
}

fn dimension_map(
    field: &str,
    dims: Vec<SnsDimension>,
) -> Result<BTreeMap<String, String>, InputError> {
    let mut map = BTreeMap::new();
    for d in dims {
        if map.insert(d.name.clone(), d.value).is_some() {
            return Err(InputError::field(
                field,
                format!("dimension {} appears twice", shown(&d.name)),
            ));
        }
    }
    Ok(map)
}

fn parse_sns(value: Value) -> Result<Vec<Alert>, InputError> {
    #[derive(Deserialize)]
    struct Event {
        #[serde(rename = "Records")]
        records: Vec<Record>,
    }
    #[derive(Deserialize)]
    struct Record {
        #[serde(rename = "Sns")]
        sns: SnsBody,
    }
    #[derive(Deserialize)]
    struct SnsBody {
        #[serde(rename = "Message")]
        message: String,
        #[serde(rename = "TopicArn", default)]
        topic_arn: Option<String>,
    }
    let event: Event = deserialize(value, "")?;
    if event.records.is_empty() {
        return Err(InputError::field("Records", "no records"));
    }
    event
        .records
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let field = format!("Records[{i}].Sns.Message");
            let inner: Value = serde_json::from_str(&r.sns.message).map_err(|e| {
                InputError::field(
                    &field,
                    format!("not a CloudWatch alarm message (not JSON: {e})"),
                )
            })?;
            let m: SnsAlarmMessage = deserialize(inner, &field)?;
            // `Region` in the message is a display name ("US East (N. Virginia)"):
            // the region code comes from the alarm (or topic) ARN.
            let region = m
                .alarm_arn
                .as_deref()
                .or(r.sns.topic_arn.as_deref())
                .and_then(|arn| arn.split(':').nth(3))
                .filter(|r| !r.is_empty())
                .map(ToOwned::to_owned);
            let alarm_name = checked_name(&format!("{field}.AlarmName"), m.alarm_name)?;
            let state = AlarmState::parse(&format!("{field}.NewStateValue"), &m.new_state_value)?;
            let previous_state = m
                .old_state_value
                .as_deref()
                .map(|v| AlarmState::parse(&format!("{field}.OldStateValue"), v))
                .transpose()?;
            let (metric, threshold) = match m.trigger {
                Some(t) => {
                    let threshold = t.threshold;
                    let metric = match (t.metric_name, t.namespace) {
                        (Some(name), Some(namespace)) => Some(MetricRef {
                            namespace,
                            name,
                            dimensions: dimension_map(
                                &format!("{field}.Trigger.Dimensions"),
                                t.dimensions,
                            )?,
                            field: format!("{field}.Trigger.Dimensions"),
                        }),
                        _ => {
                            let mut found = None;
                            for (j, mm) in t.metrics.into_iter().enumerate() {
                                if let Some(ms) = mm.metric_stat {
                                    let f =
                                        format!("{field}.Trigger.Metrics[{j}].MetricStat.Metric");
                                    found = Some(MetricRef {
                                        namespace: ms.metric.namespace,
                                        name: ms.metric.metric_name,
                                        dimensions: dimension_map(
                                            &format!("{f}.Dimensions"),
                                            ms.metric.dimensions,
                                        )?,
                                        field: format!("{f}.Dimensions"),
                                    });
                                    break;
                                }
                            }
                            found
                        }
                    };
                    (metric, threshold)
                }
                None => (None, None),
            };
            let occurrence = format!(
                "{}\n{}",
                m.alarm_arn.as_deref().unwrap_or(&alarm_name),
                m.state_change_time
            );
            Ok(Alert {
                source: AlertSource::Sns,
                alarm_name,
                alarm_arn: m.alarm_arn,
                state,
                previous_state,
                state_timestamp: m.state_change_time,
                value: value_from_reason(&m.new_state_reason),
                reason: m.new_state_reason,
                description: m.alarm_description,
                metric,
                alarm_rule: m.alarm_rule,
                occurrence,
                threshold,
                region,
                account: m.aws_account_id,
                tags: BTreeMap::new(),
            })
        })
        .collect()
}

/// A Function URL request (payload format 2.0), as the `webhook` function
/// receives it: the body is an Alertmanager payload, possibly base64. The
/// bearer token is the webhook's business; the CLI, run by an operator, reads
/// the body only.
fn parse_function_url(value: Value) -> Result<Vec<Alert>, InputError> {
    parse_function_url_each(value)?.into_iter().collect()
}

fn parse_function_url_each(value: Value) -> Result<Vec<Result<Alert, InputError>>, InputError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Request {
        #[serde(default)]
        body: Option<String>,
        #[serde(default)]
        is_base64_encoded: bool,
    }
    let r: Request = deserialize(value, "")?;
    let body = r.body.unwrap_or_default();
    let bytes = if r.is_base64_encoded {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .map_err(|e| InputError::field("body", format!("marked base64 but is not: {e}")))?
    } else {
        body.into_bytes()
    };
    let inner = decode(&bytes).map_err(|e| InputError::field("body", e.to_string()))?;
    let in_body = |e: InputError| match e {
        InputError::Field { field, problem } => InputError::field(format!("body.{field}"), problem),
        other => InputError::field("body", other.to_string()),
    };
    Ok(parse_alertmanager_each(inner)
        .map_err(in_body)?
        .into_iter()
        .map(|r| {
            r.map(|(mut a, _)| {
                // Labels are validated later (routing); their paths start at `body` too.
                if let Some(m) = &mut a.metric {
                    m.field = format!("body.{}", m.field);
                }
                a
            })
            .map_err(in_body)
        })
        .collect())
}

/// At most this many alerts in one webhook payload (a storm is ~1,000).
pub const MAX_ALERTS: usize = 10_000;

/// The envelope of an Alertmanager payload: the alerts stay raw so each
/// is validated on its own.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AmPayload {
    version: String,
    #[serde(default)]
    status: Option<String>,
    alerts: Vec<Value>,
}

/// One Alertmanager alert, exactly the fields the responder reads. The
/// webhook forwards this (re-serialized), never the request it came in.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AmAlert {
    pub status: String,
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub starts_at: String,
    #[serde(default)]
    pub fingerprint: Option<String>,
}

/// Parses an Alertmanager webhook payload (version 4) and nothing else.
/// Strict: the first bad alert fails it.
pub fn parse_alertmanager(value: Value) -> Result<Vec<Alert>, InputError> {
    parse_alertmanager_each(value)?
        .into_iter()
        .map(|r| r.map(|(a, _)| a))
        .collect()
}

/// One alert of a batch: the alert and its validated fields, or why not.
pub type AlertResult = Result<(Alert, AmAlert), InputError>;

/// Parses an Alertmanager payload into one result per alert, each with the
/// validated alert as it may be forwarded. Err: the envelope is unusable.
pub fn parse_alertmanager_each(value: Value) -> Result<Vec<AlertResult>, InputError> {
    if !value.is_object() {
        return Err(InputError::Unsupported(format!(
            "expected a JSON object, got {}",
            json_kind(&value)
        )));
    }
    let p: AmPayload = deserialize(value, "")?;
    if p.version != "4" {
        return Err(InputError::field(
            "version",
            format!(
                "{} is not an Alertmanager webhook payload version this accepts (\"4\")",
                shown(&p.version)
            ),
        ));
    }
    if let Some(s) = &p.status
        && s != "firing"
        && s != "resolved"
    {
        return Err(InputError::field(
            "status",
            format!("{} is not firing or resolved", shown(s)),
        ));
    }
    if p.alerts.is_empty() {
        return Err(InputError::field("alerts", "no alerts"));
    }
    if p.alerts.len() > MAX_ALERTS {
        return Err(InputError::field(
            "alerts",
            format!(
                "{} alerts, more than the {MAX_ALERTS} accepted",
                p.alerts.len()
            ),
        ));
    }
    Ok(p.alerts
        .into_iter()
        .enumerate()
        .map(|(i, raw)| {
            let a: AmAlert = deserialize(raw, &format!("alerts[{i}]"))?;
            am_alert(i, a.clone()).map(|alert| (alert, a))
        })
        .collect())
}

fn am_alert(i: usize, a: AmAlert) -> Result<Alert, InputError> {
    let at = |f: &str| format!("alerts[{i}].{f}");
    let (state, previous_state) = match a.status.as_str() {
        "firing" => (AlarmState::Alarm, None),
        "resolved" => (AlarmState::Ok, Some(AlarmState::Alarm)),
        other => {
            return Err(InputError::field(
                at("status"),
                format!("{} is not firing or resolved", shown(other)),
            ));
        }
    };
    let name = a
        .labels
        .get("alertname")
        .ok_or_else(|| InputError::field(at("labels.alertname"), "missing"))?;
    if !is_prometheus_name(name) {
        return Err(InputError::field(
            at("labels.alertname"),
            format!(
                "{} is not a Prometheus alert name ([A-Za-z_:][A-Za-z0-9_:]*)",
                shown(name)
            ),
        ));
    }
    if chrono::DateTime::parse_from_rfc3339(&a.starts_at).is_err() {
        return Err(InputError::field(
            at("startsAt"),
            format!("{} is not an RFC 3339 time", shown(&a.starts_at)),
        ));
    }
    let fingerprint = match a.fingerprint {
        Some(f) if !f.is_empty() && f.len() <= 32 && f.bytes().all(|b| b.is_ascii_hexdigit()) => f,
        Some(f) => {
            return Err(InputError::field(
                at("fingerprint"),
                format!("{} is not a hex fingerprint", shown(&f)),
            ));
        }
        None => return Err(InputError::field(at("fingerprint"), "missing")),
    };
    let value = match a.annotations.get("value") {
        Some(v) => Some(
            v.trim()
                .trim_end_matches('%')
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| {
                    InputError::field(
                        at("annotations.value"),
                        format!("{} is not a number", shown(v)),
                    )
                })?,
        ),
        None => None,
    };
    let reason = a
        .annotations
        .get("description")
        .or_else(|| a.annotations.get("summary"))
        .cloned()
        .unwrap_or_default();
    Ok(Alert {
        source: AlertSource::Alertmanager,
        alarm_name: name.clone(),
        alarm_arn: None,
        state,
        previous_state,
        // A resolution keeps its alert's startsAt: the status makes it its own occurrence.
        occurrence: format!("{fingerprint}\n{}\n{}", a.starts_at, a.status),
        state_timestamp: a.starts_at,
        reason,
        description: a.annotations.get("summary").cloned(),
        metric: Some(MetricRef {
            namespace: "prometheus".into(),
            name: name.clone(),
            dimensions: a.labels.clone(),
            field: at("labels"),
        }),
        alarm_rule: None,
        value,
        threshold: None,
        region: None,
        account: None,
        tags: a.labels,
    })
}

fn is_prometheus_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
        && s.len() <= 200
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
            (b"{}".to_vec(), "not an alert"),
            (
                br#"{"detail-type":"CloudWatch Alarm State Change","source":"aws.cloudwatch"}"#
                    .to_vec(),
                "field `detail`: missing",
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

    fn one(src: &str) -> Alert {
        let mut v = parse_event(src.as_bytes()).unwrap();
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    #[test]
    fn every_cloudwatch_shape_gives_the_same_alert() {
        let eb = one(HIGH_CPU);
        for (src, source) in [
            (
                include_str!("../../events/sns-high-cpu-alarm.json"),
                AlertSource::Sns,
            ),
            (
                include_str!("../../events/direct-high-cpu-alarm.json"),
                AlertSource::AlarmAction,
            ),
        ] {
            let a = one(src);
            assert_eq!(a.source, source);
            assert_eq!(a.alarm_name, eb.alarm_name);
            assert_eq!(a.alarm_arn, eb.alarm_arn);
            assert_eq!((a.state, a.previous_state), (eb.state, eb.previous_state));
            assert_eq!(a.value, Some(95.3));
            assert_eq!(
                a.occurrence, eb.occurrence,
                "same occurrence, same incident"
            );
            assert_eq!(
                a.region.as_deref(),
                Some("us-east-1"),
                "region code, not the display name"
            );
            let m = a.metric.unwrap();
            assert_eq!(
                (m.namespace.as_str(), m.name.as_str()),
                ("AWS/EC2", "CPUUtilization")
            );
            assert_eq!(m.dimensions["InstanceId"], "i-0123456789abcdef0");
        }
    }

    #[test]
    fn metric_math_and_anomaly_alarms_use_their_metric_stat() {
        let a = one(include_str!("../../events/high-cpu-metric-math.json"));
        let m = a.metric.unwrap();
        assert_eq!(m.name, "CPUUtilization");
        assert_eq!(
            m.field,
            "detail.configuration.metrics[1].metricStat.metric.dimensions"
        );
        let a = one(include_str!("../../events/high-cpu-anomaly.json"));
        assert_eq!(a.metric.unwrap().name, "CPUUtilization");
        assert_eq!(a.value, Some(96.4));
    }

    #[test]
    fn composite_alarm_has_a_rule_and_tags_but_no_metric() {
        let a = one(include_str!("../../events/composite-alarm.json"));
        assert!(a.metric.is_none());
        assert_eq!(
            a.alarm_rule.as_deref(),
            Some("ALARM(web-high-cpu) AND ALARM(web-5xx-rate)")
        );
        assert_eq!(a.tags["severity"], "critical");
    }

    #[test]
    fn alertmanager_payload_gives_one_alert_per_entry() {
        let v = parse_event(include_bytes!("../../events/alertmanager-high-cpu.json")).unwrap();
        assert_eq!(v.len(), 2, "duplicates are removed later, by occurrence");
        let a = &v[0];
        assert_eq!(a.source, AlertSource::Alertmanager);
        assert_eq!(a.alarm_name, "HighCPUUsage");
        assert_eq!(a.state, AlarmState::Alarm);
        assert_eq!(a.value, Some(95.3));
        assert_eq!(a.tags["instance"], "10.0.1.5:9100");
        assert_eq!(a.occurrence, v[1].occurrence);
        let r = one(include_str!(
            "../../events/alertmanager-high-cpu-resolved.json"
        ));
        assert_eq!(
            (r.state, r.previous_state),
            (AlarmState::Ok, Some(AlarmState::Alarm))
        );
    }

    fn am(f: impl Fn(&mut Value)) -> Vec<u8> {
        let mut v: Value =
            serde_json::from_str(include_str!("../../events/alertmanager-high-cpu.json")).unwrap();
        f(&mut v);
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn alertmanager_errors_name_the_field() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (am(|v| v["version"] = "3".into()), "field `version`"),
            (
                am(|v| v["alerts"] = Value::Array(vec![])),
                "field `alerts`: no alerts",
            ),
            (
                am(|v| v["alerts"][1]["status"] = "pending".into()),
                "alerts[1].status",
            ),
            (
                am(|v| v["alerts"][0]["labels"]["alertname"] = "$(reboot)".into()),
                "alerts[0].labels.alertname",
            ),
            (
                am(|v| {
                    v["alerts"][0]["labels"]
                        .as_object_mut()
                        .unwrap()
                        .remove("alertname");
                }),
                "alerts[0].labels.alertname",
            ),
            (
                am(|v| v["alerts"][0]["startsAt"] = "yesterday".into()),
                "alerts[0].startsAt",
            ),
            (
                am(|v| v["alerts"][0]["fingerprint"] = "../../etc".into()),
                "alerts[0].fingerprint",
            ),
            (
                am(|v| v["alerts"][0]["annotations"]["value"] = "lots".into()),
                "alerts[0].annotations.value",
            ),
            (
                am(|v| v["alerts"][0]["labels"]["job"] = 5.into()),
                "alerts[0].labels.job",
            ),
        ];
        for (bytes, needle) in cases {
            let err = parse_event(&bytes).unwrap_err().to_string();
            assert!(err.contains(needle), "expected {needle:?} in {err:?}");
        }
    }

    #[test]
    fn sns_errors_name_the_field() {
        let src: Value =
            serde_json::from_str(include_str!("../../events/sns-high-cpu-alarm.json")).unwrap();
        let mut v = src.clone();
        v["Records"][0]["Sns"]["Message"] = "plain text".into();
        assert!(
            parse_event(&serde_json::to_vec(&v).unwrap())
                .unwrap_err()
                .to_string()
                .contains("Records[0].Sns.Message")
        );
        let mut v = src.clone();
        let mut msg: Value =
            serde_json::from_str(v["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
        msg["NewStateValue"] = "BROKEN".into();
        v["Records"][0]["Sns"]["Message"] = msg.to_string().into();
        assert!(
            parse_event(&serde_json::to_vec(&v).unwrap())
                .unwrap_err()
                .to_string()
                .contains("Records[0].Sns.Message.NewStateValue")
        );
    }

    #[test]
    fn function_url_requests_carry_the_alertmanager_payload() {
        let direct =
            parse_event(include_bytes!("../../events/alertmanager-high-cpu.json")).unwrap();
        for src in [
            include_str!("../../events/function-url-alertmanager.json"),
            include_str!("../../events/function-url-alertmanager-base64.json"),
        ] {
            let got = parse_event(src.as_bytes()).unwrap();
            assert_eq!(got.len(), direct.len());
            for (g, d) in got.iter().zip(&direct) {
                assert_eq!(
                    (g.occurrence.as_str(), g.value, &g.tags),
                    (d.occurrence.as_str(), d.value, &d.tags)
                );
                assert_eq!(
                    g.metric.as_ref().unwrap().field,
                    format!("body.{}", d.metric.as_ref().unwrap().field)
                );
            }
        }
        let mut v: Value =
            serde_json::from_str(include_str!("../../events/function-url-alertmanager.json"))
                .unwrap();
        v["body"] = r#"{"version":"4","alerts":[{"status":"x"}]}"#.into();
        let e = parse_event(&serde_json::to_vec(&v).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("body.alerts[0]"), "{e}");
    }
}
