//! The track record in the state table (`crate::autonomy`), kept for
//! `HISTORY_TTL_DAYS` (400 by default):
//! - `run#<incident>#<action>`: one change carried out, observed or held,
//!   with its scope, mode, resource, the check's verdict and a person's
//!   decision (the trust report scans these);
//! - `history#<resource>`: the resource's runs of each action
//!   (`r|<action>|<incident>` = `<at>|<verdict>`), read for chronic problems;
//! - `autonomy`: still-firing checks of `auto` changes per scope and action
//!   (`miss|<scope>|<action>|<incident>` = at) and restores
//!   (`restored|<scope>|<action>` = `<at>|<by>`), read for demotion.
//!
//! Each write sets one attribute named after its incident, so a redelivery
//! writes the same thing again.

use super::*;
use crate::names::ActionName;
use crate::observed::{History, Miss, PastRun, Pause};

/// One run as the planner decided it, to record.
#[derive(Clone, Debug)]
pub struct Run<'a> {
    pub incident: &'a str,
    pub action: ActionName,
    pub kind: &'a str,
    pub scope: &'a str,
    pub mode: &'a str,
    /// `done`, `observed`, `held`, `failed`.
    pub status: &'a str,
    pub resource: Option<&'a str>,
    /// When the alert fired (epoch seconds).
    pub at: i64,
}

/// An alarm transition as received.
#[derive(Clone, Debug)]
pub struct Transition<'a> {
    pub alarm: &'a str,
    /// As CloudWatch gave it (RFC 3339).
    pub timestamp: &'a str,
    pub at: i64,
    pub old: &'a str,
    pub new: &'a str,
    /// The alarm's reason (cut), and the value and threshold it judged:
    /// what the replay's planner reads.
    pub reason: &'a str,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
}

/// A `run#` item as scanned, its attributes as strings and numbers.
pub type RunItem = HashMap<String, AttributeValue>;

const AUTONOMY: &str = "autonomy";

pub fn run_key(incident: &str, action: ActionName) -> String {
    format!("run#{incident}#{}", action.as_str())
}

fn history_key(resource: &str) -> String {
    format!("history#{resource}")
}

impl StateStore {
    /// Records a run (a redelivery writes the same; a verdict or decision
    /// recorded since is kept).
    pub async fn record_run(&self, r: &Run<'_>, ttl_days: u32) -> Result<(), String> {
        let pk = run_key(r.incident, r.action);
        let expires = r.at + i64::from(ttl_days) * 86_400;
        let u = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .update_expression(
                "SET incident = :i, #a = :a, kind = :k, #sc = :sc, #m = :m, #st = :st, #at = :at, expires_at = :exp, #r = :r",
            )
            .expression_attribute_names("#a", "action")
            .expression_attribute_names("#sc", "scope")
            .expression_attribute_names("#m", "mode")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#at", "at")
            .expression_attribute_names("#r", "resource")
            .expression_attribute_values(":i", s(r.incident))
            .expression_attribute_values(":a", s(r.action.as_str()))
            .expression_attribute_values(":k", s(r.kind))
            .expression_attribute_values(":sc", s(r.scope))
            .expression_attribute_values(":m", s(r.mode))
            .expression_attribute_values(":st", s(r.status))
            .expression_attribute_values(":at", n(r.at))
            .expression_attribute_values(":exp", n(expires))
            .expression_attribute_values(":r", s(r.resource.unwrap_or("-")));
        // The run and the resource's history at once: one round trip.
        let run = async {
            u.send()
                .await
                .map(|_| ())
                .map_err(|e| format!("UpdateItem {pk}: {}", sdk_error(&e)))
        };
        let history = async {
            match (r.status, r.resource) {
                ("done", Some(res)) => {
                    self.history_entry(res, r.action, r.incident, r.at, "-", expires)
                        .await
                }
                _ => Ok(()),
            }
        };
        tokio::try_join!(run, history).map(|_| ())
    }

    async fn history_entry(
        &self,
        resource: &str,
        action: ActionName,
        incident: &str,
        at: i64,
        verdict: &str,
        expires: i64,
    ) -> Result<(), String> {
        let pk = history_key(resource);
        self.ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .update_expression("SET #e = :v, expires_at = :exp")
            .expression_attribute_names("#e", format!("r|{}|{incident}", action.as_str()))
            .expression_attribute_values(":v", s(format!("{at}|{verdict}")))
            .expression_attribute_values(":exp", n(expires))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("UpdateItem {pk}: {}", sdk_error(&e)))
    }

    /// The check's verdict on a recorded run; for a change carried out,
    /// also on the resource's history, and a still-firing `auto` change
    /// counts toward its demotion in its scope.
    pub async fn record_verdict(
        &self,
        incident: &str,
        action: ActionName,
        verdict: &str,
        now: i64,
        ttl_days: u32,
    ) -> Result<(), String> {
        let pk = run_key(incident, action);
        let Some(item) = self.get(&pk).await? else {
            // Recorded before the track record existed: nothing to judge.
            return Ok(());
        };
        self.ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .update_expression("SET verdict = :v, verified_at = :t")
            .expression_attribute_values(":v", s(verdict))
            .expression_attribute_values(":t", n(now))
            .send()
            .await
            .map_err(|e| format!("UpdateItem {pk}: {}", sdk_error(&e)))?;
        let at = get_n(&item, "at").unwrap_or(now);
        let expires = at + i64::from(ttl_days) * 86_400;
        if get_s(&item, "status") != Some("done") {
            return Ok(());
        }
        if let Some(res) = get_s(&item, "resource").filter(|r| *r != "-") {
            self.history_entry(res, action, incident, at, verdict, expires)
                .await?;
        }
        if verdict == "still_firing" && get_s(&item, "mode") == Some("auto") {
            let scope = get_s(&item, "scope").unwrap_or(crate::names::DEFAULT_SCOPE);
            let attr = format!("miss|{scope}|{}|{incident}", action.as_str());
            // At the alert's time, as the planner judges demotions.
            self.set_attr(AUTONOMY, attr, n(at)).await?;
        }
        Ok(())
    }

    /// A person's decision on a held run, and how long after the alert.
    pub async fn record_decision(
        &self,
        incident: &str,
        action: ActionName,
        decision: &str,
        now: i64,
    ) -> Result<(), String> {
        let pk = run_key(incident, action);
        let Some(item) = self.get(&pk).await? else {
            return Ok(());
        };
        let after = now - get_n(&item, "at").unwrap_or(now);
        self.ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .update_expression("SET decision = :d, decided_after = :t")
            .expression_attribute_values(":d", s(decision))
            .expression_attribute_values(":t", n(after.max(0)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("UpdateItem {pk}: {}", sdk_error(&e)))
    }

    /// An approved change carried out: the run is `done` from now on (its
    /// check and the resource's history count it).
    pub async fn record_approved_done(
        &self,
        incident: &str,
        action: ActionName,
        ttl_days: u32,
    ) -> Result<(), String> {
        let pk = run_key(incident, action);
        let Some(item) = self.get(&pk).await? else {
            return Ok(());
        };
        let update = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .update_expression("SET #st = :done")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":done", s("done"));
        self.update_if(&pk, update).await?;
        let at = get_n(&item, "at").unwrap_or_default();
        match get_s(&item, "resource").filter(|r| *r != "-") {
            Some(res) => {
                let expires = at + i64::from(ttl_days) * 86_400;
                self.history_entry(res, action, incident, at, "-", expires)
                    .await
            }
            None => Ok(()),
        }
    }

    /// A person gives an action in a scope back its mode: earlier
    /// still-firing checks no longer count.
    pub async fn restore(
        &self,
        scope: &str,
        action: ActionName,
        by: &str,
        now: i64,
    ) -> Result<(), String> {
        let attr = format!("restored|{scope}|{}", action.as_str());
        self.set_attr(AUTONOMY, attr, s(format!("{now}|{by}")))
            .await
    }

    /// One attribute of one item, set (the `autonomy` item's entries).
    async fn set_attr(&self, pk: &str, name: String, value: AttributeValue) -> Result<(), String> {
        self.ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .update_expression("SET #e = :v")
            .expression_attribute_names("#e", name)
            .expression_attribute_values(":v", value)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("UpdateItem {pk}: {}", sdk_error(&e)))
    }

    /// A maintenance pause (`first-responder pause`), read with the rest
    /// of the `autonomy` item by every incident.
    pub async fn set_pause(&self, p: &Pause) -> Result<(), String> {
        let json = serde_json::to_string(p).map_err(|e| e.to_string())?;
        self.set_attr(AUTONOMY, format!("pause|{}", p.id), s(json))
            .await
    }

    /// Ends a pause now: Ok(false) when there was none with that id.
    pub async fn remove_pause(&self, id: &str) -> Result<bool, String> {
        let update = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", s(AUTONOMY))
            .update_expression("REMOVE #e")
            .condition_expression("attribute_exists(#e)")
            .expression_attribute_names("#e", format!("pause|{id}"));
        Ok(self.update_if(AUTONOMY, update).await?.is_some())
    }

    /// What the planner needs of the record: the demotion counts and
    /// restores, and the resource's earlier runs.
    pub async fn history(&self, resource: Option<&str>) -> Result<History, String> {
        let (autonomy, runs) = tokio::join!(self.get(AUTONOMY), async {
            match resource {
                Some(r) => self.get(&history_key(r)).await,
                None => Ok(None),
            }
        });
        let mut h = History::default();
        for (k, v) in autonomy?.unwrap_or_default() {
            if k.starts_with("pause|") {
                let text = v.as_s().map(String::as_str).unwrap_or_default();
                if let Ok(p) = serde_json::from_str::<Pause>(text) {
                    h.pauses.push(p);
                }
                continue;
            }
            let mut parts = k.splitn(4, '|');
            let (Some(what), Some(scope), Some(action)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Some(action) = ActionName::ALL.iter().find(|a| a.as_str() == action) else {
                continue;
            };
            let key = (scope.to_owned(), *action);
            match (what, parts.next()) {
                ("miss", Some(incident)) => {
                    if let Some(at) = v.as_n().ok().and_then(|t| t.parse().ok()) {
                        h.misses.entry(key).or_default().push(Miss {
                            at,
                            incident: incident.to_owned(),
                        });
                    }
                }
                ("restored", None) => {
                    let text = v.as_s().map(String::as_str).unwrap_or_default();
                    let (at, by) = text.split_once('|').unwrap_or((text, ""));
                    if let Ok(at) = at.parse() {
                        h.restored.insert(key, (at, by.to_owned()));
                    }
                }
                _ => {}
            }
        }
        for (k, v) in runs?.unwrap_or_default() {
            let mut parts = k.splitn(3, '|');
            let (Some("r"), Some(action), Some(incident)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Some(action) = ActionName::ALL.iter().find(|a| a.as_str() == action) else {
                continue;
            };
            let text = v.as_s().map(String::as_str).unwrap_or_default();
            let (at, verdict) = text.split_once('|').unwrap_or((text, "-"));
            if let Ok(at) = at.parse() {
                h.runs.entry(*action).or_default().push(PastRun {
                    at,
                    incident: incident.to_owned(),
                    verdict: (verdict != "-").then(|| verdict.to_owned()),
                });
            }
        }
        Ok(h)
    }

    /// An alarm's transition as the responder received it, kept
    /// `ttl_days` (CloudWatch keeps 14 days of history) for `backtest
    /// --recorded`; a redelivery writes the same item.
    pub async fn record_transition(&self, t: &Transition<'_>, ttl_days: u32) -> Result<(), String> {
        let pk = format!("transition#{}#{}", t.alarm, t.timestamp);
        let reason: String = t.reason.chars().take(512).collect();
        let mut put = self.ddb.put_item();
        for (k, v) in [("value", t.value), ("threshold", t.threshold)] {
            if let Some(v) = v.filter(|v| v.is_finite()) {
                put = put.item(k, AttributeValue::N(v.to_string()));
            }
        }
        put.item("reason", s(reason))
            .table_name(&self.table)
            .item("pk", s(&pk))
            .item("alarm", s(t.alarm))
            .item("ts", s(t.timestamp))
            .item("at", n(t.at))
            .item("old", s(t.old))
            .item("new", s(t.new))
            .item("expires_at", n(t.at + i64::from(ttl_days) * 86_400))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("PutItem {pk}: {}", sdk_error(&e)))
    }

    /// An Alertmanager (or Grafana) occurrence as the responder received
    /// it: its payload, at most 100,000 characters (a larger one is not
    /// kept: Ok(false)).
    pub async fn record_payload(
        &self,
        incident: &str,
        at: i64,
        payload: &str,
        ttl_days: u32,
    ) -> Result<bool, String> {
        if payload.len() > 100_000 {
            return Ok(false);
        }
        let pk = format!("transition#am#{incident}");
        self.ddb
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&pk))
            .item("at", n(at))
            .item("payload", s(payload))
            .item("expires_at", n(at + i64::from(ttl_days) * 86_400))
            .send()
            .await
            .map(|_| true)
            .map_err(|e| format!("PutItem {pk}: {}", sdk_error(&e)))
    }

    /// The recorded transitions since `since` (epoch seconds): the
    /// CloudWatch ones as describe-alarm-history's `AlarmHistoryItems`, the
    /// Alertmanager payloads as received (a scan, from the command line).
    pub async fn recorded_history(
        &self,
        since: i64,
    ) -> Result<(Vec<serde_json::Value>, Vec<serde_json::Value>), String> {
        let items = self.scan_prefix("transition#").await?;
        let recent = || {
            items
                .iter()
                .filter(|i| get_n(i, "at").is_some_and(|at| at >= since))
        };
        let payloads = recent()
            .filter_map(|i| serde_json::from_str(get_s(i, "payload")?).ok())
            .collect();
        let history = recent()
            .filter(|i| get_s(i, "payload").is_none())
            .filter_map(|i| {
                let f = |k: &str| {
                    i.get(k)
                        .and_then(|v| v.as_n().ok())
                        .and_then(|v| v.parse::<f64>().ok())
                };
                let mut reason_data = serde_json::json!({});
                if let Some(v) = f("value") {
                    reason_data["recentDatapoints"] = serde_json::json!([v]);
                }
                if let Some(t) = f("threshold") {
                    reason_data["threshold"] = serde_json::json!(t);
                }
                let data = serde_json::json!({
                    "oldState": {"stateValue": get_s(i, "old")?},
                    "newState": {
                        "stateValue": get_s(i, "new")?,
                        "stateReason": get_s(i, "reason").unwrap_or_default(),
                        "stateReasonData": reason_data,
                    },
                });
                Some(serde_json::json!({
                    "AlarmName": get_s(i, "alarm")?,
                    "Timestamp": get_s(i, "ts")?,
                    "HistoryItemType": "StateUpdate",
                    "HistorySummary": format!("Alarm updated from {} to {}", get_s(i, "old")?, get_s(i, "new")?),
                    "HistoryData": data.to_string(),
                }))
            })
            .collect();
        Ok((history, payloads))
    }

    /// Every recorded run (a scan: the trust report's, from the command
    /// line; the functions never scan).
    pub async fn scan_runs(&self) -> Result<Vec<RunItem>, String> {
        self.scan_prefix("run#").await
    }

    async fn scan_prefix(&self, prefix: &str) -> Result<Vec<RunItem>, String> {
        let mut items = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let out = self
                .ddb
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(pk, :run)")
                .expression_attribute_values(":run", s(prefix))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| format!("Scan {}: {}", self.table, sdk_error(&e)))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }
}
