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
mod run;
#[cfg(feature = "aws")]
pub use run::permissions;

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
    pub would_run: u32,
    pub held_for_approval: u32,
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

/// Which limit a planner's skip names (the texts are the actions' own).
pub fn limit_of(why: &str) -> &'static str {
    const OPT_IN: &[&str] = &["does not carry the opt-in tag"];
    const BUDGET: &[&str] = &[
        "MaxSize",
        "MAX_DESIRED_CAPACITY",
        "MAX_SNAPSHOTS_PER_INCIDENT",
        "max_volume_gib",
    ];
    if OPT_IN.iter().any(|k| why.contains(k)) {
        "opt_in"
    } else if BUDGET.iter().any(|k| why.contains(k)) {
        "budget"
    } else if why.starts_with("cooldown:") {
        "cooldown"
    } else if why.starts_with("flap guard") {
        "flap_guard"
    } else if why.starts_with("circuit breaker") {
        "breaker"
    } else {
        "other"
    }
}

/// The engine's limits along a timeline, in memory: the same cooldown
/// records and the same bucketed sliding windows (`state::sliding_count`)
/// as the state table, taken in the same order.
#[derive(Default)]
pub struct Limits {
    cooldowns: HashMap<(&'static str, String), i64>,
    windows: HashMap<(String, i64), u32>,
}

impl Limits {
    fn take_cooldown(
        &mut self,
        action: &'static str,
        resource: &str,
        now: i64,
        period: i64,
    ) -> bool {
        let k = (action, resource.to_owned());
        if self.cooldowns.get(&k).is_some_and(|until| *until > now) {
            return false;
        }
        self.cooldowns.insert(k, now + period);
        true
    }

    /// A budget's counter, as the state table keeps it.
    fn take(&mut self, b: &Budget, now: i64) -> bool {
        self.count_in_window(&b.key, now, b.window, b.max)
    }

    /// Gives back one event of `key` counted at `now`.
    fn uncount(&mut self, key: &str, now: i64, window: i64) {
        let start = now - now.rem_euclid(window.max(1));
        if let Some(x) = self.windows.get_mut(&(key.to_owned(), start)) {
            *x = x.saturating_sub(1);
        }
    }

    fn release_cooldown(&mut self, action: &'static str, resource: &str) {
        self.cooldowns.remove(&(action, resource.to_owned()));
    }

    /// As `StateStore::count_in_window`: true when counted (within `max`).
    fn count_in_window(&mut self, key: &str, now: i64, window: i64, max: u32) -> bool {
        let w = window.max(1);
        let start = now - now.rem_euclid(w);
        let current = self.windows.entry((key.to_owned(), start)).or_insert(0);
        if *current >= max {
            return false;
        }
        *current += 1;
        let c = *current;
        let previous = self
            .windows
            .get(&(key.to_owned(), start - w))
            .copied()
            .unwrap_or(0);
        if crate::window::sliding_count(i64::from(previous), c, now - start, w) > f64::from(max) {
            if let Some(x) = self.windows.get_mut(&(key.to_owned(), start)) {
                *x -= 1;
            }
            return false;
        }
        true
    }
}

impl Tally {
    fn action(&mut self, name: ActionName) -> &mut ActionTally {
        self.actions.entry(name.as_str()).or_default()
    }

    fn hour(&mut self, at: &DateTime<Utc>) {
        *self.hours.entry(at.timestamp() / 3600).or_insert(0) += 1;
        let (h, n) = self
            .hours
            .iter()
            // The earliest of equally busy hours.
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(h, n)| (*h, *n))
            .unwrap_or_default();
        self.busiest_hour = DateTime::from_timestamp(h * 3600, 0).map(|t| BusiestHour {
            hour: t.format("%Y-%m-%dT%H:00Z").to_string(),
            transitions: n,
        });
    }
}

impl Summary {
    /// Counts one transition that could not be planned.
    pub fn unroutable(&mut self, r: &Replayed, why: &str) {
        self.count(r);
        self.unroutable
            .entry(r.alarm.clone())
            .or_insert_with(|| why.to_owned());
    }

    fn count(&mut self, r: &Replayed) {
        for t in [
            &mut self.overall,
            self.alarms.entry(r.alarm.clone()).or_default(),
        ] {
            t.transitions += 1;
            t.hour(&r.at);
        }
        let at = r.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        if self.from.is_none() {
            self.from = Some(at.clone());
        }
        self.to = Some(at);
    }

    /// One planned incident through the limits, at its transition's time,
    /// in the engine's order: a held change waits for a person; a change
    /// takes its cooldown, the breaker and (once per incident) the flap
    /// guard together, and the first that refuses names the limit.
    pub fn apply(&mut self, r: &Replayed, plan: &Plan, config: &Config, limits: &mut Limits) {
        self.count(r);
        let now = r.at.timestamp();
        let mut outcomes: Vec<(ActionName, Result<(), &'static str>, bool)> = Vec::new();
        let mut why_other: Vec<(ActionName, String)> = Vec::new();
        let mut flapping: Option<bool> = None;
        let alarm_key = plan.incident.alert.identity().to_owned();
        let params = config.playbooks.get(plan.incident.kind).map(|p| &p.params);
        let settings = config.settings();
        let scope = Scope::of(plan);
        for a in plan.actions.iter().filter(|a| a.name != ActionName::Notify) {
            let outcome = match &a.decision {
                Decision::Hold(_) => (a.name, Ok(()), true),
                Decision::Skip(why) | Decision::Fail(why) => {
                    let limit = limit_of(why);
                    if limit == "other" {
                        why_other.push((a.name, why.clone()));
                    }
                    (a.name, Err(limit), false)
                }
                Decision::Do(step) if !step.is_mutating() || step.is_evidence() => {
                    (a.name, Ok(()), false)
                }
                Decision::Do(step) => {
                    // As `engine::limits`: the cooldown and the flap guard
                    // (and the breaker, when no other budget applies)
                    // together, then the budgets and the breaker in order; a
                    // refused attempt uses none of them.
                    let cooldown = params.and_then(|p| step.cooldown(p, &settings));
                    let cool = cooldown.as_ref().map(|(action, resource, period)| {
                        limits.take_cooldown(action, resource, now, period.as_secs() as i64)
                    });
                    let mut budgets = scope.budgets(step, config);
                    let ceiling = Budget::breaker(config);
                    let early = budgets.is_empty();
                    let mut counted: Vec<Budget> = Vec::new();
                    let breaker = early.then(|| limits.take(&ceiling, now));
                    if breaker == Some(true) {
                        counted.push(ceiling.clone());
                    }
                    let flap = *flapping.get_or_insert_with(|| {
                        !limits.count_in_window(
                            &format!("flap#{alarm_key}"),
                            now,
                            config.flap_window.as_secs() as i64,
                            config.flap_max,
                        )
                    });
                    let refuse = |limits: &mut Limits,
                                  counted: &[Budget],
                                  release: bool,
                                  why: &'static str| {
                        for b in counted {
                            limits.uncount(&b.key, now, b.window);
                        }
                        if let (true, Some((action, resource, _)), Some(true)) =
                            (release, &cooldown, cool)
                        {
                            limits.release_cooldown(action, resource);
                        }
                        Err(why)
                    };
                    let verdict = if cool == Some(false) {
                        refuse(limits, &counted, false, "cooldown")
                    } else if flap {
                        refuse(limits, &counted, true, "flap_guard")
                    } else if breaker == Some(false) {
                        refuse(limits, &counted, true, "breaker")
                    } else {
                        if !early {
                            budgets.push(ceiling);
                        }
                        let mut v = Ok(());
                        for b in &budgets {
                            if limits.take(b, now) {
                                counted.push(b.clone());
                            } else {
                                let name = if b.key == "breaker" {
                                    "breaker"
                                } else {
                                    "budget"
                                };
                                v = refuse(limits, &counted, true, name);
                                break;
                            }
                        }
                        v
                    };
                    (a.name, verdict, false)
                }
            };
            outcomes.push(outcome);
        }
        for t in [
            &mut self.overall,
            self.alarms.entry(r.alarm.clone()).or_default(),
        ] {
            t.incidents += 1;
            for (name, verdict, held) in &outcomes {
                let x = t.action(*name);
                match (verdict, held) {
                    (_, true) => x.held_for_approval += 1,
                    (Ok(()), false) => x.would_run += 1,
                    (Err(limit), false) => *x.suppressed.entry(limit).or_insert(0) += 1,
                }
            }
            for (name, why) in &why_other {
                let x = t.action(*name);
                if x.other.len() < 5 || x.other.contains_key(why) {
                    *x.other.entry(why.clone()).or_insert(0) += 1;
                }
            }
        }
    }

    /// Plain text: per alarm and overall.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "backtest: {} transitions into ALARM/firing from {} to {}, {} alarms; nothing was changed",
            self.overall.transitions,
            self.from.as_deref().unwrap_or("-"),
            self.to.as_deref().unwrap_or("-"),
            self.alarms.len()
        );
        let plural = |n: u32, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
        let block = |s: &mut String, name: &str, t: &Tally| {
            let _ = writeln!(
                s,
                "\n{name}: {}, {}{}",
                plural(t.transitions, "transition"),
                plural(t.incidents, "incident"),
                t.busiest_hour
                    .as_ref()
                    .map(|b| format!(
                        ", busiest hour {} ({})",
                        b.hour,
                        plural(b.transitions, "transition")
                    ))
                    .unwrap_or_default()
            );
            for (a, x) in &t.actions {
                let suppressed: Vec<String> = x
                    .suppressed
                    .iter()
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect();
                let _ = writeln!(
                    s,
                    "  {a:<20} would run {:>4}   held for approval {:>4}   suppressed {}",
                    x.would_run,
                    x.held_for_approval,
                    if suppressed.is_empty() {
                        "-".to_owned()
                    } else {
                        suppressed.join(", ")
                    }
                );
                // What `other` was, in the planner's words (the commonest two).
                let mut why: Vec<(&String, &u32)> = x.other.iter().collect();
                why.sort_by(|a, b| b.1.cmp(a.1));
                for (w, n) in why.into_iter().take(2) {
                    let _ = writeln!(s, "    other ({n}): {}", crate::text::escape(w));
                }
            }
        };
        for (name, t) in &self.alarms {
            block(&mut s, &format!("alarm {name}"), t);
        }
        block(&mut s, "overall", &self.overall);
        if !self.unroutable.is_empty() {
            let _ = writeln!(s, "\ncould not route:");
            for (a, why) in &self.unroutable {
                let _ = writeln!(s, "  {a}: {why}");
            }
        }
        s
    }
}

#[cfg(test)]
mod tests;
