//! Where on-call reads besides the notification topic: a chat channel
//! through Amazon Q Developer in chat applications (`CHAT_TOPIC_ARN`) and
//! PagerDuty's Events API v2 (`PAGERDUTY_ROUTING_KEY_PARAMETER`,
//! `PAGERDUTY_EVENTS_URL`); and `AWS_REGION`, for a home incident's links.

use super::{Config, err, topic_arn};
use crate::error::ConfigError;

/// PagerDuty's endpoint for Events API v2.
pub const DEFAULT_PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnCall {
    /// The topic a chat channel is subscribed to: every message of an
    /// incident in the custom notification schema.
    pub chat_topic_arn: Option<String>,
    /// The SSM SecureString holding the PagerDuty routing key (integration
    /// key of an Events API v2 integration), read at first use.
    pub pagerduty_routing_key_parameter: Option<String>,
    /// Where events are sent (a stand-in in tests).
    pub pagerduty_events_url: String,
}

impl Default for OnCall {
    fn default() -> Self {
        Self {
            chat_topic_arn: None,
            pagerduty_routing_key_parameter: None,
            pagerduty_events_url: DEFAULT_PAGERDUTY_EVENTS_URL.to_owned(),
        }
    }
}

impl Config {
    pub(super) fn read_oncall(
        &mut self,
        get: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let c = self;
        if let Some(v) = get("CHAT_TOPIC_ARN").filter(|v| !v.trim().is_empty()) {
            c.oncall.chat_topic_arn = Some(topic_arn("CHAT_TOPIC_ARN", &v)?);
        }
        if let Some(v) = get("PAGERDUTY_ROUTING_KEY_PARAMETER").filter(|v| !v.trim().is_empty()) {
            let name = v.trim();
            // A parameter name or ARN (SSM's own rules are looser; these
            // are what a name in a policy's Resource can be).
            if name.len() > 2048
                || !name.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'.' | b'-' | b':')
                })
            {
                return Err(err(
                    "PAGERDUTY_ROUTING_KEY_PARAMETER",
                    &v,
                    "expected an SSM parameter name (letters, digits, / _ . -) or ARN",
                ));
            }
            c.oncall.pagerduty_routing_key_parameter = Some(name.to_owned());
        }
        if let Some(v) = get("PAGERDUTY_EVENTS_URL").filter(|v| !v.trim().is_empty()) {
            c.oncall.pagerduty_events_url = crate::text::web_url(&v).ok_or_else(|| {
                err(
                    "PAGERDUTY_EVENTS_URL",
                    &v,
                    "expected an http or https URL (PagerDuty's is the default)",
                )
            })?;
        }
        if let Some(v) = get("AWS_REGION").filter(|v| !v.trim().is_empty()) {
            c.region = crate::ids::RegionName::parse("AWS_REGION", v.trim())
                .ok()
                .map(|r| r.to_string());
        }
        Ok(())
    }
}
