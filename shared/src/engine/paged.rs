//! PagerDuty's side of an incident's pages: which event each one makes,
//! and the record that lets the alert's recovery resolve what its firing
//! opened (`state::paged`).

use super::Engine;
use crate::config::Config;
use crate::incident::Transition;
use crate::notify::{Notification, PagerEvent};
use crate::plan::Plan;

impl Engine {
    /// The report's PagerDuty event: a firing incident's report triggers
    /// only when no first page did (or it holds changes whose links a
    /// person needs); a recovery resolves the incident its alarm opened,
    /// by that incident's key (and joins its chat thread), and tells
    /// PagerDuty nothing if none was.
    pub(super) async fn pager_policy(
        &self,
        (plan, config): (&Plan, &Config),
        n: &mut Notification,
        first_page_sent: bool,
    ) {
        match plan.incident.transition {
            Transition::Firing => {
                if first_page_sent && n.card.held.is_empty() {
                    n.card.pager = PagerEvent::None;
                }
            }
            Transition::Resolved if !oncall(config) => n.card.pager = PagerEvent::None,
            Transition::Resolved => match self.opened_by(plan).await {
                Some(key) => n.card.dedup_key = key,
                None => n.card.pager = PagerEvent::None,
            },
            Transition::Ignored(_) => n.card.pager = PagerEvent::None,
        }
    }

    /// The id of the incident whose page opened PagerDuty's for this alert.
    async fn opened_by(&self, plan: &Plan) -> Option<String> {
        let st = self.state.as_ref()?;
        let key = plan
            .incident
            .resolution_key(&crate::target::place_of(plan.target.as_ref()))?;
        match st.paged(&key).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(incident_id = %plan.incident.id, error = %e, "the PagerDuty record could not be read: no resolve sent");
                None
            }
        }
    }

    /// A firing page of this incident went out (to the topic or PagerDuty):
    /// recorded for its recovery.
    pub(super) async fn record_paged(&self, plan: &Plan, config: &Config) {
        if !oncall(config) {
            return;
        }
        let (Some(st), Some(key)) = (
            self.state.as_ref(),
            plan.incident
                .resolution_key(&crate::target::place_of(plan.target.as_ref())),
        ) else {
            return;
        };
        if let Err(e) = st
            .record_paged(&key, &plan.incident.id, crate::aws::unix_now())
            .await
        {
            tracing::warn!(incident_id = %plan.incident.id, error = %e, "the opened incident was not recorded: its recovery will not resolve it");
        }
    }
}

/// A chat channel or PagerDuty is configured: only then is what a firing
/// page opened recorded and read back (a recovery otherwise makes no call).
fn oncall(config: &Config) -> bool {
    config.oncall.chat_topic_arn.is_some()
        || config.oncall.pagerduty_routing_key_parameter.is_some()
}
