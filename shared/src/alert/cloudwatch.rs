//! CloudWatch alarms: EventBridge events, alarm actions and SNS messages.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;

use super::*;

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AlarmDetail {
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
pub(crate) struct StateRaw {
    value: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    reason_data: Option<String>,
    timestamp: String,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConfigurationRaw {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    metrics: Vec<MetricRaw>,
    #[serde(default)]
    alarm_rule: Option<String>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MetricRaw {
    #[serde(default)]
    metric_stat: Option<MetricStatRaw>,
}

#[derive(Deserialize, Serialize)]
pub(crate) struct MetricStatRaw {
    metric: MetricIdRaw,
}

#[derive(Deserialize, Serialize)]
pub(crate) struct MetricIdRaw {
    namespace: String,
    name: String,
    #[serde(default)]
    dimensions: BTreeMap<String, String>,
}

pub(crate) const ALARM_DETAIL_TYPE: &str = "CloudWatch Alarm State Change";

pub(crate) fn parse_eventbridge(value: Value) -> Result<Alert, InputError> {
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
pub(crate) fn parse_alarm_action(value: Value) -> Result<Alert, InputError> {
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

pub(crate) fn from_detail(
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
        origin: Origin::Aws,
        tags: detail.alarm_tags.unwrap_or_default(),
        generator_url: None,
        external_url: None,
    })
}

/// The metric that decides routing and the resource: the first `metricStat`
/// entry (single-metric alarms have one; metric-math and anomaly-detection
/// alarms list their inputs as `metricStat` entries beside the expression).
pub(crate) fn first_metric(metrics: Vec<MetricRaw>, prefix: &str) -> Option<MetricRef> {
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
pub(crate) struct SnsAlarmMessage {
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
pub(crate) struct SnsTrigger {
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
pub(crate) struct SnsDimension {
    name: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SnsMetric {
    #[serde(default)]
    metric_stat: Option<SnsMetricStat>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SnsMetricStat {
    metric: SnsMetricId,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SnsMetricId {
    metric_name: String,
    namespace: String,
    #[serde(default)]
    dimensions: Vec<SnsDimension>,
}

pub(crate) fn dimension_map(
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

/// The metric an alarm message's trigger names (its own, or the first
/// `MetricStat` of a metric-math alarm) and its threshold.
fn trigger_metric(
    field: &str,
    trigger: Option<SnsTrigger>,
) -> Result<(Option<MetricRef>, Option<f64>), InputError> {
    Ok(match trigger {
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
                            let f = format!("{field}.Trigger.Metrics[{j}].MetricStat.Metric");
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
    })
}

/// An Alertmanager webhook body delivered through SNS (Amazon Managed
/// Service for Prometheus), its errors named under the message's field.
fn amp_alerts(inner: Value, topic: Option<String>, field: &str) -> Result<Vec<Alert>, InputError> {
    parse_alertmanager(inner)
        .map(|alerts| {
            alerts
                .into_iter()
                .map(|a| Alert {
                    origin: Origin::SnsTopic(topic.clone()),
                    ..a
                })
                .collect()
        })
        .map_err(|e| match e {
            InputError::Field { field: f, problem } => {
                InputError::field(format!("{field}.{f}"), problem)
            }
            other => InputError::field(field, other.to_string()),
        })
}

pub(crate) fn parse_sns(value: Value) -> Result<Vec<Alert>, InputError> {
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
            // Amazon Managed Service for Prometheus delivers its alerts only
            // to SNS: the message is an Alertmanager webhook body, rendered
            // by the shipped template (`infra/amp/`).
            if inner.get("alerts").is_some() {
                return amp_alerts(inner, r.sns.topic_arn.clone(), &field);
            }
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
            let (metric, threshold) = trigger_metric(&field, m.trigger)?;
            let occurrence = format!(
                "{}\n{}",
                m.alarm_arn.as_deref().unwrap_or(&alarm_name),
                m.state_change_time
            );
            Ok(vec![Alert {
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
                origin: Origin::SnsMessage,
                tags: BTreeMap::new(),
                generator_url: None,
                external_url: None,
            }])
        })
        .collect::<Result<Vec<Vec<Alert>>, InputError>>()
        .map(|all| all.into_iter().flatten().collect())
}
