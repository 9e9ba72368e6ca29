//! The backtest (pure part): an alarm history as AWS prints it
//! (`aws cloudwatch describe-alarm-history --history-item-type StateUpdate`)
//! and Alertmanager webhook payloads (one per line) become the transitions
//! into ALARM/firing, in time order; each one's plan goes through a
//! simulation of the engine's limits along the timeline (cooldowns, flap
//! guard, breaker: the same buckets and order as the state table), and the
//! tally says what would have run, what would have waited for a person, and
//! what each limit held back. The reads are in `run.rs`; nothing is changed.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::actions::ActionName;
use crate::budget::{Budget, Scope};
use crate::config::Config;
use crate::incident::{Incident, Routes, Transition};
use crate::plan::{Decision, Plan};

#[cfg(feature = "aws")]
pub mod run;
mod tally;
pub use tally::{Limits, limit_of};

/// Why an input could not be read: the file and what is wrong, by field.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{origin}: {problem}")]
pub struct BacktestError {
    pub origin: String,
    pub problem: String,
}

fn bad(origin: &str, problem: impl Into<String>) -> BacktestError {
    BacktestError {
        origin: origin.to_owned(),
        problem: problem.into(),
    }
}

/// An alarm's definition, from `describe-alarms` (`MetricAlarms[]`): what the
/// history does not carry (metric, namespace, dimensions, threshold).
pub type Definitions = BTreeMap<String, Value>;

/// `aws cloudwatch describe-alarms --output json` (or DescribeAlarms' own
/// answer, in the same shape): its metric alarms by name.
pub fn definitions(origin: &str, v: &Value) -> Result<Definitions, BacktestError> {
    let alarms = v
        .get("MetricAlarms")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            bad(
                origin,
                "no `MetricAlarms` array: not describe-alarms output",
            )
        })?;
    let mut out = Definitions::new();
    for (i, a) in alarms.iter().enumerate() {
        let name = a
            .get("AlarmName")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(origin, format!("`MetricAlarms[{i}].AlarmName` is missing")))?;
        out.insert(name.to_owned(), a.clone());
    }
    Ok(out)
}

/// One input file, by its shape.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// `AlarmHistoryItems[]`.
    History(Vec<Value>),
    /// Alertmanager (or Grafana) webhook payloads, one per line.
    Alertmanager(Vec<Value>),
}

/// Reads a file: describe-alarm-history's JSON, or payloads one per line.
pub fn read_input(origin: &str, text: &str) -> Result<Input, BacktestError> {
    if let Ok(v) = serde_json::from_str::<Value>(text)
        && v.get("AlarmHistoryItems").is_some()
    {
        let items = v["AlarmHistoryItems"]
            .as_array()
            .ok_or_else(|| bad(origin, "`AlarmHistoryItems` is not an array"))?;
        return Ok(Input::History(items.clone()));
    }
    let mut payloads = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .map_err(|e| bad(origin, format!("line {}: not JSON: {e}", n + 1)))?;
        if v.get("alerts").is_none() {
            return Err(bad(
                origin,
                format!(
                    "line {}: neither describe-alarm-history output (`AlarmHistoryItems`) nor an Alertmanager payload (`alerts`)",
                    n + 1
                ),
            ));
        }
        payloads.push(v);
    }
    Ok(Input::Alertmanager(payloads))
}

/// The alarm names a history mentions (for DescribeAlarms).
pub fn alarm_names(inputs: &[(String, Input)]) -> Vec<String> {
    let mut names: Vec<String> = inputs
        .iter()
        .filter_map(|(_, i)| match i {
            Input::History(items) => Some(items),
            Input::Alertmanager(_) => None,
        })
        .flatten()
        .filter_map(|h| {
            h.get("AlarmName")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// One transition into ALARM or firing, ready for the planner.
#[derive(Clone, Debug)]
pub struct Replayed {
    pub at: DateTime<Utc>,
    /// The alarm's name (an Alertmanager alert's `alertname`).
    pub alarm: String,
    /// The incident, or why the alert could not become one.
    pub incident: Result<Incident, String>,
}

/// describe-alarm-history prints `2026-11-25T02:04:12.152000+00:00`; the
/// event carries `2026-11-25T02:04:12.152+0000`.
fn event_time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The alarm's configuration as EventBridge's event carries it.
fn configuration(def: &Value) -> Value {
    let dims = |d: Option<&Value>| -> Value {
        let mut m = serde_json::Map::new();
        for x in d.and_then(Value::as_array).into_iter().flatten() {
            if let (Some(k), Some(v)) = (
                x.get("Name").and_then(Value::as_str),
                x.get("Value").and_then(Value::as_str),
            ) {
                m.insert(k.to_owned(), json!(v));
            }
        }
        Value::Object(m)
    };
    let metrics: Vec<Value> = match def.get("Metrics").and_then(Value::as_array) {
        // Metric math: each query as the event gives it.
        Some(queries) => queries
            .iter()
            .map(|q| {
                let mut m = json!({
                    "id": q.get("Id").cloned().unwrap_or(json!("m1")),
                    "returnData": q.get("ReturnData").cloned().unwrap_or(json!(false)),
                });
                if let Some(e) = q.get("Expression") {
                    m["expression"] = e.clone();
                }
                if let Some(ms) = q.get("MetricStat") {
                    m["metricStat"] = json!({
                        "metric": {
                            "namespace": ms["Metric"]["Namespace"],
                            "name": ms["Metric"]["MetricName"],
                            "dimensions": dims(ms["Metric"].get("Dimensions")),
                        },
                        "period": ms.get("Period").cloned().unwrap_or(json!(300)),
                        "stat": ms.get("Stat").cloned().unwrap_or(json!("Average")),
                    });
                }
                m
            })
            .collect(),
        None => vec![json!({
            "id": "m1",
            "metricStat": {
                "metric": {
                    "namespace": def.get("Namespace").cloned().unwrap_or(Value::Null),
                    "name": def.get("MetricName").cloned().unwrap_or(Value::Null),
                    "dimensions": dims(def.get("Dimensions")),
                },
                "period": def.get("Period").cloned().unwrap_or(json!(300)),
                "stat": def.get("Statistic").cloned().unwrap_or(json!("Average")),
            },
            "returnData": true,
        })],
    };
    let mut c = json!({ "metrics": metrics });
    if let Some(d) = def.get("AlarmDescription") {
        c["description"] = d.clone();
    }
    c
}

/// A change into ALARM: when, the alarm, and its event (or why there is none).
type Found = (DateTime<Utc>, String, Result<Value, String>);

/// The EventBridge "CloudWatch Alarm State Change" this history item was:
/// None when it is not a change into ALARM. Err when it cannot be read.
fn history_event(item: &Value, defs: &Definitions) -> Result<Option<Found>, String> {
    let name = item
        .get("AlarmName")
        .and_then(Value::as_str)
        .ok_or("`AlarmName` is missing")?;
    if item.get("HistoryItemType").and_then(Value::as_str) != Some("StateUpdate") {
        return Ok(None);
    }
    let at = item
        .get("Timestamp")
        .and_then(Value::as_str)
        .and_then(parse_time)
        .ok_or_else(|| format!("{name}: `Timestamp` is not a time"))?;
    let data: Value = item
        .get("HistoryData")
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| format!("{name}: `HistoryData` is not JSON"))?;
    let state = |k: &str| {
        data.get(k)
            .and_then(|s| s.get("stateValue"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let (new, old) = (state("newState"), state("oldState"));
    if new != "ALARM" || old == "ALARM" {
        return Ok(None);
    }
    let Some(def) = defs.get(name) else {
        return Ok(Some((
            at,
            name.to_owned(),
            Err("no definition (not in DescribeAlarms or --alarms): its metric is unknown".into()),
        )));
    };
    let arn = def
        .get("AlarmArn")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("arn:aws:cloudwatch:us-east-1:000000000000:alarm:{name}"));
    let parts: Vec<&str> = arn.split(':').collect();
    let (region, account) = match parts.as_slice() {
        [_, _, _, r, a, ..] => (r.to_string(), a.to_string()),
        _ => ("us-east-1".into(), "000000000000".into()),
    };
    let reason_data = |k: &str| {
        data.get(k)
            .and_then(|s| s.get("stateReasonData"))
            .map(Value::to_string)
    };
    let reason = |k: &str| {
        data.get(k)
            .and_then(|s| s.get("stateReason"))
            .cloned()
            .unwrap_or(json!(""))
    };
    let mut state =
        json!({ "value": "ALARM", "reason": reason("newState"), "timestamp": event_time(&at) });
    if let Some(r) = reason_data("newState") {
        state["reasonData"] = json!(r);
    }
    let mut previous =
        json!({ "value": old, "reason": reason("oldState"), "timestamp": event_time(&at) });
    if let Some(r) = reason_data("oldState") {
        previous["reasonData"] = json!(r);
    }
    let event = json!({
        "version": "0",
        "id": format!("backtest-{}", at.timestamp_millis()),
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": account,
        "time": at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "region": region,
        "resources": [arn],
        "detail": {
            "alarmName": name,
            "state": state,
            "previousState": previous,
            "configuration": configuration(def),
        },
    });
    Ok(Some((at, name.to_owned(), Ok(event))))
}

/// Every transition into ALARM/firing of the inputs, in time order, each
/// once (Alertmanager repeats a firing alert every repeat_interval: one
/// occurrence). Items that are not such a transition are left out;
/// unreadable ones are errors.
pub fn transitions(
    inputs: &[(String, Input)],
    defs: &Definitions,
    routes: &Routes,
) -> Result<Vec<Replayed>, BacktestError> {
    let mut out = Vec::new();
    for (origin, input) in inputs {
        match input {
            Input::History(items) => {
                for (i, item) in items.iter().enumerate() {
                    let found = history_event(item, defs)
                        .map_err(|p| bad(origin, format!("AlarmHistoryItems[{i}]: {p}")))?;
                    let Some((at, alarm, event)) = found else {
                        continue;
                    };
                    let incident = event.and_then(|e| {
                        crate::respond::incidents(e, routes)
                            .map_err(|e| e.to_string())
                            .and_then(|(v, _)| {
                                v.into_iter().next().ok_or_else(|| "no alert".into())
                            })
                    });
                    out.push(Replayed {
                        at,
                        alarm,
                        incident,
                    });
                }
            }
            Input::Alertmanager(payloads) => {
                for (n, p) in payloads.iter().enumerate() {
                    let alerts = crate::alert::parse_each(p.clone())
                        .map_err(|e| bad(origin, format!("payload {}: {e}", n + 1)))?;
                    for a in alerts {
                        let Ok(a) = a else { continue };
                        let Some(at) = parse_time(&a.state_timestamp) else {
                            continue;
                        };
                        let alarm = a.alarm_name.clone();
                        let incident = Incident::routed(a, routes).map_err(|e| e.to_string());
                        if matches!(&incident, Ok(i) if i.transition != Transition::Firing) {
                            continue;
                        }
                        out.push(Replayed {
                            at,
                            alarm,
                            incident,
                        });
                    }
                }
            }
        }
    }
    out.sort_by_key(|r| r.at);
    let mut seen = std::collections::HashSet::new();
    out.retain(|r| match &r.incident {
        Ok(i) => seen.insert(i.id.clone()),
        Err(_) => true,
    });
    Ok(out)
}

/// What one action came to over the replay.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ActionTally {
    /// Carried out (`auto`), held for a person (`approve`, a demotion, a
    /// chronic problem) or only observed (`observe`), before the limits.
    pub would_run: u32,
    pub held_for_approval: u32,
    pub observed: u32,
    /// By limit: `cooldown`, `flap_guard`, `breaker`, `opt_in`, `budget`
    /// (a budget: of the account, of the group, the group's share that may
    /// be down at once; or a cap: the group's MaxSize, MAX_DESIRED_CAPACITY,
    /// the snapshot cap, the largest volume), `other` (the planner's other reasons: not
    /// needed, not found).
    pub suppressed: BTreeMap<&'static str, u32>,
    /// The planner's words for `other`, with how often (at most 5 kept).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub other: BTreeMap<String, u32>,
}

/// The tally of one alarm, or of all.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Tally {
    pub transitions: u32,
    pub incidents: u32,
    pub actions: BTreeMap<&'static str, ActionTally>,
    /// The hour (UTC) with the most transitions, and how many.
    pub busiest_hour: Option<BusiestHour>,
    #[serde(skip)]
    hours: BTreeMap<i64, u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BusiestHour {
    pub hour: String,
    pub transitions: u32,
}

/// The whole result (`--json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    #[serde(flatten)]
    pub overall: Tally,
    pub alarms: BTreeMap<String, Tally>,
    /// Alarms whose transitions could not be planned, and why.
    pub unroutable: BTreeMap<String, String>,
    /// The period replayed (RFC 3339).
    pub from: Option<String>,
    pub to: Option<String>,
}

#[cfg(test)]
mod tests;
