//! A held action's record and its approval links (the page carries them).

use super::Engine;
use crate::actions::ActionName;
use crate::approval::{Grant, Signed, Verb, record_key};
use crate::config::Config;
use crate::plan::{Plan, PlannedAction};
use crate::report::{ActionReport, Status};

/// The largest event kept with a held action (DynamoDB's item limit is
/// 400 KB, and the record holds more than the event).
const MAX_EVENT_KEPT: usize = 350 * 1024;

/// The incident's actions that were done, for the page ("already done").
fn done_so_far(reports: &[ActionReport]) -> String {
    reports
        .iter()
        .filter(|r| r.status == Status::Done && r.action != ActionName::Notify)
        .map(|r| r.action.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Engine {
    /// Each held action of the plan: its record in the state table (the
    /// event, the change, pending) and its two links in its report. Without
    /// a key, a base URL, a state table or the event, the actions stay held
    /// without links and one note says why.
    pub(crate) async fn hold_for_approval(
        &self,
        plan: &Plan,
        config: &Config,
        reports: &mut [ActionReport],
        now: i64,
    ) -> Vec<String> {
        let held: Vec<(&PlannedAction, String)> = plan
            .actions
            .iter()
            .filter_map(|a| match &a.decision {
                crate::plan::Decision::Hold(step) => Some((a, step.describe())),
                _ => None,
            })
            .collect();
        if held.is_empty() || config.dry_run {
            return Vec::new();
        }
        let key = self.approval_key.get(config).await;
        let why_not = match (&key, &config.approval_base_url, &self.state, &plan.event) {
            (None, ..) => Some("no signing key (APPROVAL_KEY_PARAMETER)"),
            (_, None, ..) => Some("APPROVAL_BASE_URL is not set"),
            (_, _, None, _) => Some("no state table to record the decision in"),
            (.., None) => Some("the alert's event is not at hand to plan again from"),
            _ => None,
        };
        let (Some(key), Some(base), Some(st), Some(event)) =
            (&key, &config.approval_base_url, &self.state, &plan.event)
        else {
            let why = why_not.unwrap_or_default();
            return vec![format!(
                "held for approval without links: {why}; approve by hand by carrying out the held change"
            )];
        };
        // A state-table item holds at most 400 KB (a large SNS batch).
        if event.len() > MAX_EVENT_KEPT {
            return vec![format!(
                "held for approval without links: the event ({} bytes) is too large to keep for planning again; approve by hand by carrying out the held change",
                event.len()
            )];
        }
        let done = done_so_far(reports);
        let expires = now + config.approval_ttl.as_secs() as i64;
        let mut notes = Vec::new();
        for (a, change) in held {
            let grant = Grant {
                incident: plan.incident.id.clone(),
                action: a.name.as_str().to_owned(),
                target: a.target.clone(),
                change,
                done: done.clone(),
                expires,
                place: plan
                    .target
                    .as_ref()
                    .map(crate::target::Target::place)
                    .unwrap_or_default(),
            };
            let pk = record_key(&grant.incident, &grant.action);
            match st.hold_approval(&pk, event, &grant.change, expires).await {
                Ok(true) => {
                    if let Some(r) = reports
                        .iter_mut()
                        .find(|r| r.action == a.name && r.status == Status::AwaitingApproval)
                    {
                        r.approve_url =
                            Some(Signed::new(key, Verb::Approve, grant.clone()).link(base));
                        r.deny_url = Some(Signed::new(key, Verb::Deny, grant).link(base));
                    }
                }
                Ok(false) => notes.push(format!(
                    "{} was already decided by an earlier delivery's link: no new link",
                    a.name.as_str()
                )),
                Err(e) => notes.push(format!(
                    "{} is held without links: its record could not be written ({e})",
                    a.name.as_str()
                )),
            }
        }
        if let Some(t) = chrono::DateTime::from_timestamp(expires, 0) {
            notes.push(format!(
                "approval links expire at {}",
                t.format("%Y-%m-%d %H:%M UTC")
            ));
        }
        notes
    }
}
