//! notify: the notification through SNS.

use aws_sdk_sns::types::MessageAttributeValue;

use super::Message;
use crate::oncall::PagerEvent;
use crate::oncall::card::{chat_message, pager_event};

use crate::aws::sdk_error;
use super::Clients;
use crate::outcome::Outcome;

/// Publishes one message to the topic (the engine's page, the check's
/// and an approval's answer all go this way).
async fn publish(
    sns: &aws_sdk_sns::Client,
    topic_arn: &str,
    kind: &str,
    incident_id: &str,
    n: &Message,
) -> Outcome {
    let attr = |v: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(v)
            .build()
    };
    let (severity, kind, id) = match (
        attr(n.severity),
        attr(kind),
        attr(incident_id),
    ) {
        (Ok(s), Ok(k), Ok(i)) => (s, k, i),
        _ => return Outcome::failed("could not build the message attributes"),
    };
    let mut request = sns
        .publish()
        .topic_arn(topic_arn)
        .subject(&n.subject)
        .message(&n.body)
        .message_structure("json")
        .message_attributes("severity", severity)
        .message_attributes("kind", kind)
        .message_attributes("incident_id", id);
    if !n.state.is_empty()
        && let Ok(state) = attr(&n.state)
    {
        request = request.message_attributes("state", state);
    }
    let result = request.send().await;
    match result {
        Ok(out) => {
            let id = out.message_id().unwrap_or_default().to_owned();
            Outcome::done(
                format!("published {:?} (message {id})", n.subject),
                vec![id],
            )
        }
        Err(e) => Outcome::failed(format!("Publish to {topic_arn}: {}", sdk_error(&e))),
    }
}

/// What one notification's delivery came to: the topic's publish (the
/// notification's outcome), and a line each for the chat topic and
/// PagerDuty when they are configured (said in the report; neither one's
/// failure holds back the other or the topic). `opened`: a firing page
/// went out (its recovery resolves and threads by this incident).
pub(crate) struct Delivered {
    pub outcome: Outcome,
    pub oncall: Vec<String>,
    pub opened: bool,
}

/// Publishes to the topic, the chat topic and PagerDuty at once.
pub(crate) async fn deliver(
    sns: &aws_sdk_sns::Client,
    pagerduty: &crate::aws::pagerduty::PagerDuty,
    to: &super::OnCall<'_>,
    (topic_arn, kind, incident_id): (&str, &str, &str),
    page: &super::Page<'_>,
) -> Delivered {
    let main = publish(sns, topic_arn, kind, incident_id, page.message);
    let (mut outcome, chat, pager) =
        tokio::join!(main, chat(sns, to, page), send_page(pagerduty, to, page));
    let opened = page.card.pager == PagerEvent::Trigger
        && (outcome.status == crate::report::Status::Done || pager.as_ref().is_some_and(|(_, ok)| *ok));
    let oncall: Vec<String> = chat.into_iter().chain(pager.map(|(l, _)| l)).collect();
    if !oncall.is_empty() {
        outcome.detail = format!("{}; {}", outcome.detail, oncall.join("; "));
    }
    Delivered { outcome, oncall, opened }
}

/// The custom notification, raw (Amazon Q Developer reads the message
/// itself, not a per-protocol structure).
async fn chat(sns: &aws_sdk_sns::Client, to: &super::OnCall<'_>, page: &super::Page<'_>) -> Option<String> {
    let topic = to.chat_topic?;
    let message = chat_message(&page.message.subject, page.severity.as_str(), page.card);
    Some(
        match sns.publish().topic_arn(topic).message(message.to_string()).send().await {
            Ok(out) => format!(
                "chat: published to {topic} (message {})",
                out.message_id().unwrap_or_default()
            ),
            Err(e) => format!("chat: Publish to {topic} failed: {}", sdk_error(&e)),
        },
    )
}

/// The PagerDuty event this notification makes, if any, sent: what came
/// of it, and whether PagerDuty took it.
async fn send_page(
    pagerduty: &crate::aws::pagerduty::PagerDuty,
    to: &super::OnCall<'_>,
    page: &super::Page<'_>,
) -> Option<(String, bool)> {
    let parameter = to.routing_key_parameter?;
    if page.card.pager == PagerEvent::None {
        return None;
    }
    let key = match pagerduty.routing_key(parameter).await {
        Ok(k) => k,
        Err(e) => return Some((format!("PagerDuty: nothing sent: {e}"), false)),
    };
    let event = pager_event(&key, &page.message.subject, page.severity.as_str(), page.card, page.document)?;
    let sent = pagerduty.send(to.events_url, &event).await;
    tracing::info!(incident_id = %page.card.incident_id, ok = sent.ok, attempts = sent.attempts, "pagerduty");
    Some((sent.detail, sent.ok))
}

/// Carries out the step (see `actions::Run`).
pub(crate) async fn run(c: &Clients<'_>, s: &super::Step, cx: &crate::actions::Run<'_>) -> Outcome {
    let _ = (c.sns, s, cx);
    // Sent by the engine after every stage, with the other outcomes.
    Outcome::failed("the notification is sent after the other actions")
}
