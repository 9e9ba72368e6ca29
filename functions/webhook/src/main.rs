//! The `webhook` Lambda function, behind a Function URL (payload format 2.0):
//! authenticates Alertmanager's requests and hands each incident to the
//! `responder` asynchronously. Token, routes and clients are built once.

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use aws_lambda_events::http::{HeaderMap, HeaderValue};
use first_responder::webhook::{Refusals, Request, TokenRefresh, Webhook, load_token};
use first_responder::{Config, aws::sdk_config_loader, telemetry};
use lambda_runtime::{LambdaEvent, service_fn};
use std::time::Duration;

async fn handler(
    event: LambdaEvent<LambdaFunctionUrlRequest>,
    webhook: &Webhook,
) -> Result<LambdaFunctionUrlResponse, std::convert::Infallible> {
    let r = &event.payload;
    let http = &r.request_context.http;
    let request = Request {
        method: http.method.as_deref().unwrap_or("POST"),
        path: r.raw_path.as_deref().unwrap_or("/"),
        query: r.raw_query_string.as_deref(),
        authorization: r.headers.get("authorization").and_then(|v| v.to_str().ok()),
        body: r.body.as_deref(),
        base64: r.is_base64_encoded,
        source_ip: http.source_ip.as_deref().unwrap_or("unknown"),
        // The header as sent (`cargo lambda watch` puts its own name in the
        // request context; AWS puts the header's value there).
        user_agent: r
            .headers
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .or(http.user_agent.as_deref())
            .unwrap_or(""),
    };
    let reply = webhook.handle(&request).await;
    let mut headers = HeaderMap::new();
    let mut response = LambdaFunctionUrlResponse::default();
    response.status_code = i64::from(reply.status);
    match reply.html {
        Some(html) => {
            for (k, v) in first_responder::approval::HEADERS {
                headers.insert(k, HeaderValue::from_static(v));
            }
            response.body = Some(html);
        }
        None => {
            headers.insert("content-type", HeaderValue::from_static("application/json"));
            response.body = Some(reply.body.to_string());
        }
    }
    response.headers = headers;
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init(false, "info");
    let config = Config::from_env()?;
    for w in &config.playbooks.warnings {
        tracing::warn!(warning = %w, "playbooks file");
    }
    let responder = std::env::var("RESPONDER_FUNCTION")
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or(
            "RESPONDER_FUNCTION is not set: the webhook has no responder to hand incidents to",
        )?;
    let sdk = first_responder::aws::ours(
        &sdk_config_loader().load().await,
        first_responder::aws::WEBHOOK_APP_NAME,
    );
    let ssm = first_responder::aws::ssm_client(&sdk);
    let env_token = std::env::var("WEBHOOK_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    let parameter = std::env::var("WEBHOOK_TOKEN_PARAMETER")
        .ok()
        .filter(|p| !p.is_empty());
    // The token and the approval key, read at once.
    let (token, approval_key) = tokio::join!(
        load_token(env_token.clone(), parameter.clone(), &ssm),
        first_responder::engine::load_key(&config, &ssm)
    );
    let token = token?;
    // Without the key the approval pages answer 404; the webhook still works.
    let approval_key = approval_key.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "no approval key: the approval pages are off");
        None
    });
    // Re-read the parameter at most this often, so a rotation (new and
    // previous token in the parameter) needs no redeploy.
    let every = match std::env::var("WEBHOOK_TOKEN_REFRESH_SECONDS") {
        Ok(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|s| (1..=3600).contains(s))
            .ok_or_else(|| {
                format!("configuration `WEBHOOK_TOKEN_REFRESH_SECONDS` = {v}: expected 1 to 3600 seconds")
            })?,
        Err(_) => 300,
    };
    let refresh = match (env_token, parameter) {
        (None, Some(parameter)) => Some(TokenRefresh {
            parameter,
            ssm: ssm.clone(),
            every: Duration::from_secs(every),
            last: std::sync::Mutex::new(std::time::Instant::now()),
        }),
        _ => None,
    };
    // The approval key re-read from its parameter (a rotation needs no
    // redeploy; removing a key revokes its links within the TTL).
    let approval_refresh = (config.approval_key.is_none()
        && config.approval_key_parameter.is_some())
    .then(|| first_responder::webhook::ApprovalRefresh {
        cell: first_responder::engine::KeyCell::new(ssm.clone()),
        config: config.clone(),
    });
    let webhook = Webhook {
        token: std::sync::RwLock::new(token),
        refresh,
        routes: config.routes,
        home: config.home_account.clone(),
        responder,
        lambda: first_responder::aws::lambda_client(&sdk),
        refusals: Refusals::new(Duration::from_secs(60)),
        approval_refresh,
        approval_key,
        approval_wait: first_responder::webhook::APPROVAL_WAIT,
    };
    let webhook = &webhook;
    lambda_runtime::run(service_fn(move |event| handler(event, webhook))).await
}
