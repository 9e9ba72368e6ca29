//! The `responder` Lambda function: an alarm event in, an incident report out.
//! Clients and configuration are built once, outside the handler.

use first_responder::{Aws, Config, InputError, Mode, aws::sdk_config_loader, handle, telemetry};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

/// Bad input fails the invocation with its own error type, so an
/// asynchronous delivery ends in the dead-letter queue for a person to read.
#[derive(Debug)]
struct InvalidEvent(InputError);

impl From<InvalidEvent> for Diagnostic {
    fn from(e: InvalidEvent) -> Self {
        Diagnostic {
            error_type: "InvalidEvent".into(),
            error_message: e.0.to_string(),
        }
    }
}

async fn handler(
    event: LambdaEvent<Value>,
    aws: &Aws,
    config: &Config,
) -> Result<Value, InvalidEvent> {
    let report = handle(event.payload, aws, config, Mode::Run)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "rejected event");
            InvalidEvent(e)
        })?;
    Ok(
        serde_json::to_value(report)
            .unwrap_or_else(|e| serde_json::json!({"error": e.to_string()})),
    )
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init(false, "info");
    let config = Config::from_env()?;
    if config.notify_topic_arn.is_none() {
        return Err("NOTIFY_TOPIC_ARN is not set: the responder has nobody to tell".into());
    }
    let aws = Aws::new(&sdk_config_loader().load().await);
    let (aws, config) = (&aws, &config);
    lambda_runtime::run(service_fn(move |event| handler(event, aws, config))).await
}
