//! notify: the notification through SNS.

use aws_sdk_sns::types::MessageAttributeValue;

use super::Message;

use crate::aws::sdk_error;
use super::Clients;
use crate::outcome::Outcome;

/// Publishes one message to the topic (the engine's page, the check's
/// and an approval's answer all go this way).
pub(crate) async fn publish(
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

/// Carries out the step (see `actions::Run`).
pub(crate) async fn run(c: &Clients<'_>, s: &super::Step, cx: &crate::actions::Run<'_>) -> Outcome {
    let _ = (c.sns, s, cx);
    // Sent by the engine after every stage, with the other outcomes.
    Outcome::failed("the notification is sent after the other actions")
}
