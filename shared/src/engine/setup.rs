//! The engine's own things beside the clients: the state table, the member
//! accounts and the approval key. Built once per process.

use std::sync::Arc;

use aws_config::SdkConfig;

use super::key::KeyCell;
use super::members::Members;
use crate::aws::{APP_NAME, Aws, Lazy, ours};
use crate::config::Config;
use crate::state::StateStore;

/// The responder: the deployment's clients (`aws`) and what the engine
/// keeps beside them. A plan is carried out by its methods (`execute`);
/// the actions get only their declared clients from `aws`.
#[derive(Clone, Debug)]
pub struct Engine {
    /// The clients of the account and region this engine acts in.
    pub aws: Aws,
    /// Idempotency, cooldowns, flap guard and breaker; `None` runs untracked.
    pub state: Option<StateStore>,
    /// The accounts and regions alerts come from (`with_members`); `None`:
    /// everything is done with these clients.
    pub members: Option<Arc<Members>>,
    /// The approval links' key, read from SSM the first time a change is
    /// held or decided (never on the cold start); shared with the member
    /// accounts' engines, whose SSM is another account's.
    pub approval_key: Arc<KeyCell>,
    /// PagerDuty's routing key (read at the first event) and HTTPS client:
    /// the deployment's own, shared like the key.
    pub pagerduty: Arc<crate::aws::pagerduty::PagerDuty>,
}

impl Engine {
    pub fn new(sdk: &SdkConfig) -> Self {
        Self::with_clients(Aws::new(sdk))
    }

    /// An untracked engine over these clients.
    pub fn with_clients(aws: Aws) -> Self {
        let key = KeyCell::new(aws.ssm.clone());
        let pagerduty = crate::aws::pagerduty::PagerDuty::new(aws.ssm.clone());
        Self {
            aws,
            state: None,
            members: None,
            approval_key: Arc::new(key),
            pagerduty: Arc::new(pagerduty),
        }
    }

    /// The same engine without the state table. A dry run uses it: it must
    /// leave no trace (no lease, claim, cooldown, flap or breaker count), so
    /// a real delivery of the same occurrence later acts in full.
    pub fn untracked(&self) -> Self {
        Self {
            state: None,
            ..self.clone()
        }
    }

    /// With the state table (`STATE_TABLE`) for idempotency and limits.
    pub fn with_state(mut self, sdk: &SdkConfig, table: &str) -> Self {
        let sdk = &Arc::new(ours(sdk, APP_NAME));
        self.state = Some(StateStore::new(
            Lazy::new(sdk, aws_sdk_dynamodb::Client::new),
            table,
        ));
        self
    }

    /// Acts in the accounts and regions alerts come from (the functions and
    /// the CLI); without it, everything is done with these clients.
    pub fn with_members(mut self, central: &SdkConfig) -> Self {
        self.members = Some(Arc::new(Members::new(central)));
        self
    }
}

impl Engine {
    /// One notification to the topic, the chat topic and PagerDuty.
    pub(crate) async fn deliver(
        &self,
        config: &Config,
        topic_arn: &str,
        kind: &str,
        incident_id: &str,
        n: &crate::notify::Notification,
    ) -> crate::actions::notify::Delivered {
        let o = &config.oncall;
        let to = crate::actions::notify::OnCall {
            chat_topic: o.chat_topic_arn.as_deref(),
            routing_key_parameter: o.pagerduty_routing_key_parameter.as_deref(),
            events_url: &o.pagerduty_events_url,
        };
        let message = n.message();
        let page = crate::actions::notify::Page {
            message: &message,
            severity: n.severity,
            card: &n.card,
            document: &n.document,
        };
        crate::actions::notify::deliver(
            &self.aws.sns,
            &self.pagerduty,
            &to,
            (topic_arn, kind, incident_id),
            &page,
        )
        .await
    }
}
