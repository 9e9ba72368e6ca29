//! The `responder` Lambda function: an alarm event in, an incident report out.
//! Clients and configuration are built once, outside the handler.

use first_responder::respond::handle_until;
use first_responder::{Config, Engine, InputError, Mode, aws::sdk_config_loader, telemetry};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

/// Why an invocation fails. Bad input gets its own error type, so an
/// asynchronous delivery ends in the dead-letter queue for a person to read;
/// a transient failure (the state table unreachable, a duplicate in flight)
/// fails so that Lambda retries, which idempotency makes safe. Everything
/// else, failed actions included, is a handled incident and succeeds.
#[derive(Debug)]
enum Failure {
    InvalidEvent(InputError),
    Transient(String),
}

impl From<Failure> for Diagnostic {
    fn from(e: Failure) -> Self {
        match e {
            Failure::InvalidEvent(e) => Diagnostic {
                error_type: "InvalidEvent".into(),
                error_message: e.to_string(),
            },
            Failure::Transient(m) => Diagnostic {
                error_type: "Transient".into(),
                error_message: m,
            },
        }
    }
}

async fn handler(
    event: LambdaEvent<Value>,
    engine: &Engine,
    config: &Config,
) -> Result<Value, Failure> {
    // A decision posted on an approval page (the webhook waits for the page).
    if let Some(r) = first_responder::approval::Request::from_event(&event.payload) {
        let page = first_responder::approval::run::approve(
            engine,
            &r.first_responder_approval,
            config,
            chrono::Utc::now().timestamp(),
        )
        .await;
        return Ok(serde_json::to_value(page).unwrap_or_default());
    }
    // The delayed check after a fix (VERIFY_QUEUE_URL's messages).
    if let Some(requests) = first_responder::verify::Request::from_sqs_event(&event.payload) {
        return verify(&requests, engine, config).await;
    }
    // The predictive check, every 15 minutes (the template's schedule).
    if first_responder::forecast::is_scheduled_event(&event.payload) {
        let (check, report) = first_responder::forecast::run::scheduled_forecast(
            engine,
            config,
            chrono::Utc::now(),
            Mode::Run,
        )
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "the predictive check could not read CloudWatch");
            Failure::Transient(e)
        })?;
        tracing::info!(
            filesystems = check.filesystems,
            at_risk = check.at_risk.len(),
            "predictive check"
        );
        return Ok(serde_json::json!({ "forecast": check, "report": report }));
    }
    // The invocation's own deadline: the notification must go out before it.
    // Lambda gives it in ms since the epoch; `cargo lambda watch` gives the
    // timeout itself (600000), which would read as long past: a deadline
    // that is not in the future is treated as unknown, and then
    // ACTIONS_DEADLINE_SECONDS alone bounds the actions.
    let left_ms = i64::try_from(event.context.deadline).unwrap_or(i64::MAX) - chrono_now_ms();
    let until = u64::try_from(left_ms)
        .ok()
        .filter(|&ms| ms > 0)
        .map(|ms| std::time::Instant::now() + std::time::Duration::from_millis(ms));
    if until.is_none() {
        tracing::warn!(
            deadline_ms = event.context.deadline,
            "the invocation's deadline is not in the future: bounded by ACTIONS_DEADLINE_SECONDS only"
        );
    }
    let report = handle_until(event.payload, engine, config, Mode::Run, until)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "rejected event");
            Failure::InvalidEvent(e)
        })?;
    // The automation's own metrics, as EMF lines on stdout.
    let now = chrono_now_ms();
    for incident in &report.incidents {
        for line in first_responder::metrics::emf_lines(incident, now) {
            println!("{line}");
        }
    }
    if let Some(e) = report.transient_error() {
        tracing::warn!(error = %e, "transient failure: the delivery will be retried");
        return Err(Failure::Transient(e.to_owned()));
    }
    Ok(
        serde_json::to_value(report)
            .unwrap_or_else(|e| serde_json::json!({"error": e.to_string()})),
    )
}

/// Each incident checked; a check that a retry can fix (the incident still
/// in progress, the table unreachable) fails the batch, so SQS delivers it
/// again after its visibility timeout.
async fn verify(
    requests: &[first_responder::verify::Request],
    engine: &Engine,
    config: &Config,
) -> Result<Value, Failure> {
    let mut out = Vec::new();
    for r in requests {
        let id = &r.first_responder_verify.incident;
        match first_responder::verify::run::verify_request(
            &r.first_responder_verify,
            engine,
            config,
            chrono::Utc::now(),
        )
        .await
        {
            Ok(v) => {
                tracing::info!(incident_id = %id, verdict = v.verdict.as_str(), published = v.published, "verified");
                out.push(v);
            }
            Err(e) => {
                tracing::warn!(incident_id = %id, error = %e, "verification will be retried");
                return Err(Failure::Transient(e));
            }
        }
    }
    Ok(serde_json::json!({ "verifications": out }))
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    // Where the cold start goes, in one line (`make bench` reads it): each
    // phase of the init before the first event, in microseconds.
    let t0 = std::time::Instant::now();
    telemetry::init(false, "info");
    let t_tracing = t0.elapsed();
    let config = Config::from_env()?;
    let t_config = t0.elapsed();
    for w in &config.playbooks.warnings {
        tracing::warn!(warning = %w, "playbooks file");
    }
    if config.notify_topic_arn.is_none() {
        return Err("NOTIFY_TOPIC_ARN is not set: the responder has nobody to tell".into());
    }
    let Some(table) = config.state_table.clone() else {
        return Err(
            "STATE_TABLE is not set: without it a redelivered alarm would act twice".into(),
        );
    };
    let sdk = sdk_config_loader().load().await;
    let t_sdk = t0.elapsed();
    // Acts in the account and region each alert comes from.
    let engine = Engine::new(&sdk)
        .with_state(&sdk, &table)
        .with_members(&sdk);
    let t_clients = t0.elapsed();
    tracing::info!(
        tracing_us = t_tracing.as_micros() as u64,
        config_us = (t_config - t_tracing).as_micros() as u64,
        sdk_config_us = (t_sdk - t_config).as_micros() as u64,
        clients_us = (t_clients - t_sdk).as_micros() as u64,
        "initialised"
    );
    let (engine, config) = (&engine, &config);
    lambda_runtime::run(service_fn(move |event| handler(event, engine, config))).await
}
