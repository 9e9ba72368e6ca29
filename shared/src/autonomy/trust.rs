//! The track record (pure): every change carried out and every change
//! observed, with the check's verdict, counted per scope and action, and
//! what the record recommends. `first-responder trust` prints it.
//!
//! The rules (docs/playbooks.md, "Earned autonomy"):
//! - `auto` with `DEMOTE` still-firing checks within 7 days: back to approve.
//! - `approve` with at least 10 changes carried out since the start of the
//!   report, at least 90% of the judged ones recovered, no escalation and no
//!   denial: ready for auto.
//! - `observe` with at least 10 runs: mostly recovered by itself (half or
//!   more) says the change was not needed; else, the alarm kept firing
//!   without the change at least 90% of the judged runs: ready for approve.
//! - otherwise keep the mode, and say which rule is short.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{ActionMode, DEFAULT_DEMOTE_AFTER};
use crate::names::ActionName;

/// Runs needed before a promotion is recommended.
pub const MIN_RUNS: u32 = 10;
/// Share of judged runs recovered that a promotion to auto needs.
pub const MIN_RECOVERED_PERCENT: u32 = 90;

/// One recorded run (`state/track.rs`'s item, as read).
#[derive(Clone, Debug, PartialEq)]
pub struct RunRecord {
    pub incident: String,
    /// When the alert fired (epoch seconds).
    pub at: i64,
    pub scope: String,
    pub action: ActionName,
    pub mode: ActionMode,
    /// `done` (changed), `observed` (would have), `held` (awaiting a
    /// person), `failed`.
    pub status: String,
    /// The check's: `recovered`, `still_firing`, `unknown`.
    pub verdict: Option<String>,
    /// A held change: `approved`, `denied`, `expired`.
    pub decision: Option<String>,
    /// Seconds from the hold to the person's decision.
    pub decided_after: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ActionTrust {
    /// The mode it has now in this scope (after any demotion).
    pub mode: Option<ActionMode>,
    /// Changes carried out and changes observed.
    pub runs: u32,
    /// A change's check: recovered.
    pub recovered: u32,
    /// The check after a change, or an observed run, still firing.
    pub still_firing: u32,
    pub unknown: u32,
    /// Observed: the alarm recovered by itself within the check's delay.
    pub recovered_unchanged: u32,
    /// Still-firing checks after a change (each paged as critical).
    pub escalations: u32,
    pub approved: u32,
    pub denied: u32,
    pub median_seconds_to_approve: Option<i64>,
    pub recommendation: String,
    /// The rule the recommendation follows.
    pub rule: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ScopeTrust {
    pub actions: BTreeMap<ActionName, ActionTrust>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TrustReport {
    /// The report's start (RFC 3339) and its end.
    pub since: String,
    pub until: String,
    pub scopes: BTreeMap<String, ScopeTrust>,
}

/// Counts the records since `since` (epoch seconds) up to `now`; `mode`
/// gives each scope's and action's mode as configured and as it is now
/// (`approve` while demoted).
pub fn report(
    records: &[RunRecord],
    since: i64,
    now: i64,
    mode: impl Fn(&str, ActionName) -> Option<(ActionMode, ActionMode)>,
) -> TrustReport {
    let mut scopes: BTreeMap<String, ScopeTrust> = BTreeMap::new();
    let mut waits: BTreeMap<(String, ActionName), Vec<i64>> = BTreeMap::new();
    let mut recent_misses: BTreeMap<(String, ActionName), u32> = BTreeMap::new();
    for r in records.iter().filter(|r| r.at >= since && r.at <= now) {
        let t = scopes
            .entry(r.scope.clone())
            .or_default()
            .actions
            .entry(r.action)
            .or_default();
        let verdict = r.verdict.as_deref();
        match r.status.as_str() {
            "done" => {
                t.runs += 1;
                match verdict {
                    Some("recovered") => t.recovered += 1,
                    Some("still_firing") => {
                        t.still_firing += 1;
                        t.escalations += 1;
                        if r.at > now - DEFAULT_DEMOTE_AFTER.window_seconds {
                            *recent_misses
                                .entry((r.scope.clone(), r.action))
                                .or_default() += 1;
                        }
                    }
                    _ => t.unknown += 1,
                }
            }
            "observed" => {
                t.runs += 1;
                match verdict {
                    Some("recovered") => t.recovered_unchanged += 1,
                    Some("still_firing") => t.still_firing += 1,
                    _ => t.unknown += 1,
                }
            }
            _ => {}
        }
        match r.decision.as_deref() {
            Some("approved") => {
                t.approved += 1;
                if let Some(s) = r.decided_after {
                    waits
                        .entry((r.scope.clone(), r.action))
                        .or_default()
                        .push(s);
                }
            }
            Some("denied") => t.denied += 1,
            _ => {}
        }
    }
    for (scope, s) in &mut scopes {
        for (action, t) in &mut s.actions {
            let modes = mode(scope, *action);
            t.mode = modes.map(|(_, now)| now);
            t.median_seconds_to_approve = waits
                .get_mut(&(scope.clone(), *action))
                .and_then(|w| median(w));
            let misses = recent_misses
                .get(&(scope.clone(), *action))
                .copied()
                .unwrap_or(0);
            (t.recommendation, t.rule) = recommend(t, modes.map(|(m, _)| m), misses);
        }
    }
    TrustReport {
        since: rfc(since),
        until: rfc(now),
        scopes,
    }
}

fn rfc(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(crate::series::rfc3339)
        .unwrap_or_default()
}

fn median(w: &mut [i64]) -> Option<i64> {
    w.sort_unstable();
    match w.len() {
        0 => None,
        n if n % 2 == 1 => Some(w[n / 2]),
        n => Some((w[n / 2 - 1] + w[n / 2]) / 2),
    }
}

/// The recommendation and its rule, from the counts, the mode as
/// configured, and the still-firing checks of the last 7 days.
fn recommend(
    t: &ActionTrust,
    configured: Option<ActionMode>,
    recent_misses: u32,
) -> (String, String) {
    let judged = t.recovered + t.still_firing;
    let share = |n: u32, of: u32| (of > 0).then(|| n * 100 / of);
    let pair = |a: &str, b: String| (a.to_owned(), b);
    match configured {
        Some(ActionMode::Auto) if recent_misses >= DEFAULT_DEMOTE_AFTER.count => pair(
            "back to approve",
            format!(
                "≥ {} still-firing checks in 7 days → back to approve ({recent_misses})",
                DEFAULT_DEMOTE_AFTER.count
            ),
        ),
        Some(ActionMode::Auto) => pair(
            "keep auto",
            format!(
                "auto stays while fewer than {} still-firing checks in 7 days",
                DEFAULT_DEMOTE_AFTER.count
            ),
        ),
        Some(ActionMode::Approve) => {
            let rule = format!(
                "≥ {MIN_RUNS} runs, ≥ {MIN_RECOVERED_PERCENT}% recovered, no escalation and no denial in the period → ready for auto"
            );
            let ready = t.runs >= MIN_RUNS
                && share(t.recovered, judged).is_some_and(|p| p >= MIN_RECOVERED_PERCENT)
                && t.escalations == 0
                && t.denied == 0;
            match ready {
                true => pair("ready for auto", rule),
                false => pair("keep approve", rule),
            }
        }
        Some(ActionMode::Observe) => {
            let observed = t.recovered_unchanged + t.still_firing;
            if t.runs < MIN_RUNS {
                return pair(
                    "keep observe",
                    format!("≥ {MIN_RUNS} observed runs before any recommendation"),
                );
            }
            if share(t.recovered_unchanged, observed).is_some_and(|p| p >= 50) {
                return pair(
                    "not needed",
                    "half or more of the observed runs recovered by themselves → the change was not needed; look at the alarm".into(),
                );
            }
            match share(t.still_firing, observed).is_some_and(|p| p >= MIN_RECOVERED_PERCENT) {
                true => pair(
                    "ready for approve",
                    format!(
                        "≥ {MIN_RUNS} runs, ≥ {MIN_RECOVERED_PERCENT}% still firing without the change → ready for approve"
                    ),
                ),
                false => pair(
                    "keep observe",
                    format!(
                        "ready for approve only when ≥ {MIN_RECOVERED_PERCENT}% of observed runs still fire without the change"
                    ),
                ),
            }
        }
        None => pair("keep", "the action is no longer listed".into()),
    }
}

/// `--since 30d`, `90d`, `12h` as seconds.
pub fn parse_since(s: &str) -> Result<i64, String> {
    super::Rate::parse(&format!("1 in {s}"))
        .map(|r| r.window_seconds)
        .map_err(|_| {
            format!(
                "--since {}: expected days or hours, as 30d or 12h",
                crate::ids::shown(s)
            )
        })
}
