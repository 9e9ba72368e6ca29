//! What a pager reads: the CloudWatch alarm notification's fields beside the
//! JSON document (`https`), and the key it de-duplicates and resolves by.

use super::*;

/// A time as CloudWatch's notifications write it (`2026-11-25T02:04:12.152+0000`).
pub fn cloudwatch_time(t: &str) -> String {
    crate::metrics::parse_time_ms(t)
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(
            || t.to_owned(),
            |d| d.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string(),
        )
}

/// What a CloudWatch alarm notification says, from any alert: PagerDuty's
/// and Opsgenie's CloudWatch integrations open an incident on `ALARM`,
/// de-duplicate by `AlarmName` and resolve it on `OK`.
pub fn pager(plan: &Plan) -> CloudWatchAlarmPayload {
    let a = &plan.incident.alert;
    let mut trigger = CloudWatchAlarmTrigger::default();
    if let Some(m) = &a.metric {
        trigger.metric_name = Some(m.name.clone());
        trigger.namespace = Some(m.namespace.clone());
        trigger.dimensions = m
            .dimensions
            .iter()
            .map(|(k, v)| {
                let mut d = CloudWatchDimension::default();
                d.name = k.clone();
                d.value = v.clone();
                d
            })
            .collect();
    }
    let context = plan.context.as_ref();
    trigger.threshold = a
        .threshold
        .or_else(|| context.and_then(|c| c.threshold))
        .unwrap_or_default();
    trigger.period = context.map_or(0, |c| i64::from(c.period));
    trigger.evaluation_periods = 1;
    let mut p = CloudWatchAlarmPayload::default();
    p.alarm_name = alarm_key(a);
    p.alarm_description = a.description.clone().unwrap_or_default();
    p.aws_account_id = a.account.clone().unwrap_or_default();
    p.new_state_value = a.state.as_str().to_owned();
    p.new_state_reason = a.reason.clone();
    p.state_change_time = cloudwatch_time(&a.state_timestamp);
    p.region = a.region.clone().unwrap_or_default();
    p.alarm_arn = a.alarm_arn.clone().unwrap_or_default();
    p.old_state_value = a
        .previous_state
        .unwrap_or(match a.state {
            AlarmState::Alarm => AlarmState::Ok,
            _ => AlarmState::Alarm,
        })
        .as_str()
        .to_owned();
    p.trigger = trigger;
    p
}

/// The `https` document: the CloudWatch alarm notification's fields, and
/// first-responder's own beside them (their names never meet: CloudWatch's
/// are PascalCase).
pub fn https_document(pager: Option<&CloudWatchAlarmPayload>, document: &Value) -> Value {
    let Some(mut v) = pager.and_then(|p| serde_json::to_value(p).ok()) else {
        return document.clone();
    };
    if let (Some(o), Some(d)) = (v.as_object_mut(), document.as_object()) {
        for (k, x) in d {
            o.entry(k.clone()).or_insert_with(|| x.clone());
        }
    }
    v
}
