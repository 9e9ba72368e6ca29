//! PagerDuty's Events API v2 on a loopback port: each `POST /v2/enqueue`
//! is checked against the JSON Schema written from PagerDuty's reference
//! (`tests/schemas/pagerduty-events-v2.schema.json`) and answered as
//! PagerDuty answers: 202 `{"status":"success","message":"Event
//! processed","dedup_key":…}`, 400 `{"status":"invalid event",…}` for an
//! event the schema refuses; and, on demand, 429 (throttled) or 500 for the
//! next requests, so the responder's retries are tested.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::schema::{PAGERDUTY, Validator};

/// One request as it arrived, what the schema said, and the answer.
#[derive(Clone, Debug)]
pub struct Received {
    pub event: Value,
    pub invalid: Option<String>,
    pub status: u16,
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    script: VecDeque<u16>,
}

pub struct PagerDutyStandIn {
    /// `PAGERDUTY_EVENTS_URL`.
    pub url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PagerDutyStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PagerDutyStandIn {
    pub async fn start() -> Result<Self> {
        let validator = Arc::new(Validator::start(PAGERDUTY).await?);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/v2/enqueue", listener.local_addr()?);
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (st, v) = (st.clone(), validator.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let (st, v) = (st.clone(), v.clone());
                        async move { handle(req, &st, &v).await }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(Self { url, state, task })
    }

    /// The next requests are answered with these statuses (429, 500, …),
    /// whatever they hold; then 202 again.
    pub fn answer_next(&self, statuses: &[u16]) {
        if let Ok(mut s) = self.state.lock() {
            s.script.extend(statuses);
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state
            .lock()
            .map(|s| s.received.clone())
            .unwrap_or_default()
    }

    /// Forgets what was received.
    pub fn clear(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.received.clear();
        }
    }
}

async fn handle(
    req: Request<Incoming>,
    state: &Mutex<State>,
    validator: &Validator,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let ok_path = req.method() == hyper::Method::POST && req.uri().path() == "/v2/enqueue";
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let invalid = if !ok_path {
        Some("not POST /v2/enqueue".to_owned())
    } else {
        match validator.check(&event).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(e) => Some(format!("the validator failed: {e}")),
        }
    };
    let scripted = state.lock().ok().and_then(|mut s| s.script.pop_front());
    let (status, answer) = match (scripted, &invalid) {
        (Some(429), _) => (
            429,
            json!({"status": "throttle event", "message": "Requests for this service are arriving too quickly. Please retry later."}),
        ),
        (Some(s), _) => (s, json!({"status": "error", "message": "internal error"})),
        (None, Some(e)) => (
            400,
            json!({"status": "invalid event", "message": "Event object is invalid", "errors": [e]}),
        ),
        (None, None) => (
            202,
            json!({
                "status": "success",
                "message": "Event processed",
                "dedup_key": event["dedup_key"].as_str().map_or_else(|| "generated-by-standin".to_owned(), str::to_owned),
            }),
        ),
    };
    if let Ok(mut s) = state.lock() {
        s.received.push(Received {
            event,
            invalid,
            status,
        });
    }
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(answer.to_string())))
        .unwrap_or_default())
}
