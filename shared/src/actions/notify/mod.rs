//! notify: the notification through SNS, after every stage.

use super::Recovery;
use serde::Deserialize;
use toml::Spanned;
use super::ActionStep;
use crate::ids::InstanceId;
use crate::observed::Observed;
use super::context::{Settings, Context};

#[cfg(feature = "aws")]
mod run;
#[cfg(feature = "aws")]
pub(crate) use run::{Delivered, deliver, run};

/// Where on-call reads besides the topic (the configuration's `OnCall`).
pub struct OnCall<'a> {
    pub chat_topic: Option<&'a str>,
    pub routing_key_parameter: Option<&'a str>,
    pub events_url: &'a str,
}

/// One notification as it is sent: the topic's message, and the card,
/// severity and JSON document the chat topic and PagerDuty are sent.
pub struct Page<'a> {
    pub message: &'a Message,
    pub severity: crate::report::Severity,
    pub card: &'a crate::oncall::Card,
    pub document: &'a serde_json::Value,
}

pub const RECOVERY: Recovery = Recovery::Idempotent("sent again: a duplicate message is better than none, and it names its incident");

crate::actions::clients::permissions! {
    sns: [Publish],
}

/// What its decision reads beyond the instance (see `Need`).
pub const NEEDS: &[super::Need] = &[];

/// The scripts it sends through SSM, for `first-responder script`.
pub const SCRIPTS: &[super::script::Script] = &[];

/// No parameters: its table (`[kind.notify]`) may be left out, or empty.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Params;

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    /// `required`: held for a person's approval (read by the playbook).
    pub approval: Option<Spanned<String>>,
    /// `observe`, `approve` or `auto` (read by the playbook; `approval =
    /// "required"` is `approve`).
    pub mode: Option<Spanned<String>>,
    /// Changes an hour it may make (per account; read by the playbook).
    pub budget_per_hour: Option<Spanned<i64>>,
}

impl Params {
    pub fn read(_: Raw, _: &mut crate::params::Validator) -> Self {
        Self
    }
}

/// The notification is not listed in stages: the planner adds it after
/// every stage (`plan::plan`), so there is nothing to decide here.
pub(crate) fn decide(_: &mut Context<'_>, _: &InstanceId, _: &Observed, _: &Settings) {}

#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub topic_arn: String,
}

impl ActionStep for Step {
    fn describe(&self) -> String {
        format!("publish the notification to {}", self.topic_arn)
    }
    fn is_mutating(&self) -> bool {
        false
    }
}

/// What is published: the subject, the SNS JSON message (one text per
/// protocol, `MessageStructure=json`) and the severity and state
/// attributes. The planner and `notify::compose` write it; this action only
/// delivers it.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub subject: String,
    pub body: String,
    pub severity: &'static str,
    /// The notification's `NewStateValue` (`ALARM`, `OK`): a pager's
    /// subscription takes `critical` pages and every `OK`, which resolves
    /// the incident a page opened.
    pub state: String,
}

