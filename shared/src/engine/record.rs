//! What came of each action: its report, its log line, and its record in
//! the state table (written in the background while the next stage runs).

use std::time::Duration;

use futures::future::join_all;
use tokio::time::{Instant, sleep};
use tracing::{info, warn};

use crate::plan::{Decision, Plan, PlannedAction};
use crate::report::{ActionReport, IncidentReport, Status};
use crate::state::StateStore;

use crate::outcome::Outcome;

/// An action's outcome on its way to the state table: started as soon as
/// the action ends, so a crash during a later, slower action still finds it
/// recorded, and awaited only before the incident is completed.
pub(crate) type Recording = tokio::task::JoinHandle<Option<String>>;

/// Waits for every recording; the first failure, if any.
pub(crate) async fn finish_recording(recording: Vec<Recording>) -> Option<String> {
    join_all(recording)
        .await
        .into_iter()
        .filter_map(|r| match r {
            Ok(failed) => failed,
            Err(e) => Some(format!("recording an outcome: {e}")),
        })
        .next()
}

/// Records what came of an action. Losing this write would leave the
/// outcome unknown to the next delivery, so it is tried three times (each
/// with the SDK's own retries); a failure after that is transient.
pub(crate) async fn record_with(
    st: &StateStore,
    incident: &str,
    key: &str,
    o: &Outcome,
) -> Option<String> {
    let mut last = None;
    for attempt in 0..3u32 {
        match st
            .finish_action(incident, key, o.status, o.uncertain, &o.detail, &o.ids)
            .await
        {
            Ok(()) => return None,
            Err(e) => last = Some(e),
        }
        sleep(Duration::from_millis(200 * u64::from(attempt + 1))).await;
    }
    last
}

/// The report of a delivery that does nothing: every action skipped.
pub(crate) fn not_again(
    plan: &Plan,
    delivery: &'static str,
    why: &str,
    transient: Option<String>,
) -> IncidentReport {
    let actions = plan
        .actions
        .iter()
        .map(|a| ActionReport::new(a.name, &a.target, Status::Skipped, why))
        .collect();
    let mut r = plan.report_with(actions);
    r.delivery = delivery;
    r.notes.push(why.to_owned());
    r.transient_error = transient;
    r
}

pub(crate) fn decided_without_aws(a: &PlannedAction) -> ActionReport {
    match &a.decision {
        Decision::Skip(why) => ActionReport::new(a.name, &a.target, Status::Skipped, why),
        Decision::Fail(why) => ActionReport::new(a.name, &a.target, Status::Failed, why),
        Decision::Hold(_) => {
            ActionReport::new(a.name, &a.target, Status::AwaitingApproval, &a.reason)
        }
        Decision::Observe(_) => ActionReport::new(a.name, &a.target, Status::Observed, &a.reason),
        Decision::Do(_) => ActionReport::new(a.name, &a.target, Status::Failed, "not carried out"),
    }
}

pub(crate) fn to_report(a: &PlannedAction, o: Outcome, started: Instant) -> ActionReport {
    let mut r = ActionReport::new(a.name, &a.target, o.status, &a.reason);
    if o.status == Status::Done {
        r.detail = Some(o.detail);
    } else {
        r.reason = o.detail;
    }
    r.ids = o.ids;
    r.output = o.output;
    let elapsed = started.elapsed();
    r.duration_ms = Some(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
    r.started_at = chrono::TimeDelta::from_std(elapsed)
        .ok()
        .map(|d| (chrono::Utc::now() - d).to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    r
}

pub(crate) fn log_action(incident_id: &str, r: &ActionReport) {
    // Actions that ran are X-Ray subsegments too (when the invocation is traced).
    if let Some(ms) = r.duration_ms {
        let end = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
        let annotations = std::collections::BTreeMap::from([
            ("incident_id", incident_id.to_owned()),
            ("target", r.target.clone()),
            ("status", r.status.as_str().to_owned()),
        ]);
        crate::xray::record_action(
            r.action.as_str(),
            end - ms as f64 / 1e3,
            end,
            &annotations,
            r.status == Status::Failed,
        );
    }
    let text = r.detail.as_deref().unwrap_or(&r.reason);
    if r.status == Status::Failed {
        warn!(incident_id, action = r.action.as_str(), target = %r.target, status = r.status.as_str(), ids = ?r.ids, duration_ms = r.duration_ms, "{text}");
    } else {
        info!(incident_id, action = r.action.as_str(), target = %r.target, status = r.status.as_str(), ids = ?r.ids, duration_ms = r.duration_ms, "{text}");
    }
}

pub(crate) fn action_key(a: &PlannedAction) -> String {
    format!("{}#{}", a.name.as_str(), a.target)
}
