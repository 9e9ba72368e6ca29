//! The backtest's reads: the alarms' definitions (DescribeAlarms) and the
//! fleet as it is now (the same reads as `plan`, without SSM commands).
//! Read-only: nothing here writes anything.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::{Definitions, Limits, Replayed, Summary};
use crate::aws::{Aws, sdk_error};
use crate::config::Config;
use crate::incident::IncidentKind;
use crate::plan::{Observed, plan};

/// DescribeAlarms' answer in `describe-alarms` JSON (what `--alarms` takes).
fn alarm_json(a: &aws_sdk_cloudwatch::types::MetricAlarm) -> Value {
    let dims = |d: &[aws_sdk_cloudwatch::types::Dimension]| -> Vec<Value> {
        d.iter()
            .map(|x| json!({"Name": x.name(), "Value": x.value()}))
            .collect()
    };
    let mut v = json!({
        "AlarmName": a.alarm_name(),
        "AlarmArn": a.alarm_arn(),
        "AlarmDescription": a.alarm_description(),
        "Namespace": a.namespace(),
        "MetricName": a.metric_name(),
        "Statistic": a.statistic().map(|s| s.as_str()),
        "Dimensions": dims(a.dimensions()),
        "Period": a.period(),
        "Threshold": a.threshold(),
    });
    if !a.metrics().is_empty() {
        v["Metrics"] = a
            .metrics()
            .iter()
            .map(|q| {
                let mut m = json!({"Id": q.id(), "ReturnData": q.return_data(), "Expression": q.expression()});
                if let Some(ms) = q.metric_stat() {
                    let metric = ms.metric();
                    m["MetricStat"] = json!({
                        "Metric": {
                            "Namespace": metric.and_then(|x| x.namespace()),
                            "MetricName": metric.and_then(|x| x.metric_name()),
                            "Dimensions": dims(metric.map(|x| x.dimensions()).unwrap_or_default()),
                        },
                        "Period": ms.period(),
                        "Stat": ms.stat(),
                    });
                }
                m
            })
            .collect();
    }
    v
}

/// What `first-responder backtest` calls: the observation's reads (never
/// its SSM commands) and DescribeAlarms. `infra/iam/backtest-policy.json`
/// grants exactly these (a unit test compares them).
pub fn permissions() -> Vec<&'static str> {
    let mut p: Vec<&'static str> = crate::observe::PERMISSIONS
        .iter()
        .copied()
        .filter(|a| !matches!(*a, "ssm:SendCommand" | "ssm:GetCommandInvocation"))
        .chain(["cloudwatch:DescribeAlarms"])
        .collect();
    p.sort_unstable();
    p
}

/// The named alarms' definitions, 100 names a call (DescribeAlarms' cap).
pub async fn alarm_definitions(aws: &Aws, names: &[String]) -> Result<Definitions, String> {
    let mut out = Definitions::new();
    for chunk in names.chunks(100) {
        let mut token: Option<String> = None;
        loop {
            let page = aws
                .cloudwatch
                .describe_alarms()
                .set_alarm_names(Some(chunk.to_vec()))
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| format!("DescribeAlarms: {}", sdk_error(&e)))?;
            for a in page.metric_alarms() {
                if let Some(n) = a.alarm_name() {
                    out.insert(n.to_owned(), alarm_json(a));
                }
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
    }
    Ok(out)
}

/// Replays the transitions in time order: each incident planned against
/// the fleet as it is now (read once per resource), then through the
/// limits as the engine would have taken them.
pub async fn backtest(aws: &Aws, replayed: &[Replayed], config: &Config) -> Summary {
    let mut config = config.clone();
    // The playbooks as they would act, not as this run is configured to.
    config.dry_run = false;
    let mut summary = Summary::default();
    let mut limits = Limits::default();
    let mut fleet: HashMap<(IncidentKind, String, bool), Observed> = HashMap::new();
    let mut runs: HashMap<
        String,
        std::collections::BTreeMap<crate::actions::ActionName, Vec<crate::observed::PastRun>>,
    > = HashMap::new();
    for r in replayed {
        let incident = match &r.incident {
            Ok(i) => i,
            Err(why) => {
                summary.unroutable(r, why);
                continue;
            }
        };
        if incident.kind == IncidentKind::Unrouted {
            let what = incident
                .alert
                .metric
                .as_ref()
                .map(|m| format!("no playbook for metric {}/{}", m.namespace, m.name))
                .unwrap_or_else(|| "no playbook for an alarm without a metric".into());
            summary.unroutable(r, &what);
            continue;
        }
        let key = (
            incident.kind,
            incident.resource.describe(),
            incident.alert.source.is_cloudwatch(),
        );
        if !fleet.contains_key(&key) {
            let o = crate::observe::observe_read_only(aws, incident, &config).await;
            fleet.insert(key.clone(), o);
        }
        let mut observed = fleet.get(&key).cloned().unwrap_or_else(Observed::nothing);
        // The change calendars as they stood at this alert, and the fixes
        // the replay has made on this resource so far (chronic problems).
        if !config.change_calendars.is_empty() {
            let at = Some(crate::series::rfc3339(r.at));
            observed.calendar = Some(
                crate::aws::fleet::calendar_state(&aws.ssm, &config.change_calendars, at).await,
            );
        }
        let resource = incident.resource.describe();
        let history = crate::observed::History {
            runs: runs.get(&resource).cloned().unwrap_or_default(),
            ..Default::default()
        };
        observed.history = Ok(history);
        let p = plan(incident, &observed, &config);
        for fixed in summary.apply(r, &p, &config, &mut limits) {
            runs.entry(resource.clone())
                .or_default()
                .entry(fixed)
                .or_default()
                .push(crate::observed::PastRun {
                    at: r.at.timestamp(),
                    incident: incident.id.clone(),
                    verdict: None,
                });
        }
    }
    summary
}
