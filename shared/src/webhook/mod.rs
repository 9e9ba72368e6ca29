//! The `webhook` function's work: authenticate an Alertmanager request, bound
//! and validate it (pure, [`accept`]), then hand each incident to the
//! `responder` with an asynchronous Lambda invoke ([`Webhook::handle`]).
//!
//! Status codes follow Alertmanager's retry rules: it retries 5xx and nothing
//! else, so 5xx is kept for failures a retry can fix (the hand-off), and
//! input that will never succeed gets a 4xx.

#[cfg(feature = "aws")]
use aws_sdk_lambda::primitives::Blob;
#[cfg(feature = "aws")]
use aws_sdk_lambda::types::InvocationType;
#[cfg(feature = "aws")]
use futures::StreamExt;
#[cfg(feature = "aws")]
use serde_json::json;
#[cfg(feature = "aws")]
use tracing::{info, warn};

#[cfg(feature = "aws")]
use crate::aws::sdk_error;
#[cfg(feature = "aws")]
use crate::incident::Routes;

mod accept;
mod token;

pub use accept::{Accepted, ApprovalRoute, Handoff, Reply, Request, accept, approval_route};
#[cfg(feature = "aws")]
use token::read_token;
pub use token::{Binding, Token, permits};
#[cfg(feature = "aws")]
pub use token::{TokenRefresh, load_token};

/// Larger bodies are refused with 413. Lambda's own limit for a
/// synchronous request is 6 MB (the whole event), so this admits anything
/// a Function URL delivers: an Alertmanager group of 10,000 alerts is some
/// 4.7 MB (`make bench` sends one).
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;
/// How long a posted approval waits for the responder before answering 202
/// (the template gives the webhook 30 s).
pub const APPROVAL_WAIT: std::time::Duration = std::time::Duration::from_secs(20);
/// Hand-offs in flight at once (a storm of 1,000 alerts stays within the
/// account's Invoke rate without queueing behind one slow call).
#[cfg(feature = "aws")]
const HANDOFF_CONCURRENCY: usize = 16;

/// The webhook function's state, built once at start.
#[cfg(feature = "aws")]
pub struct Webhook {
    /// The accepted token(s); re-read from SSM now and then (see `refresh`).
    pub token: std::sync::RwLock<Token>,
    /// Where the token is re-read from, so it can be rotated without a
    /// redeploy; `None` for a token from the environment.
    pub refresh: Option<TokenRefresh>,
    pub routes: Routes,
    /// The deployment's own account (`HOME_ACCOUNT_ID`): where an alert
    /// that names none acts, and where an unbound token may act.
    pub home: Option<crate::ids::AccountId>,
    /// Name or ARN of the responder function.
    pub responder: String,
    pub lambda: aws_sdk_lambda::Client,
    /// Refused requests, counted and reported once a window.
    pub refusals: Refusals,
    /// The approval links' key (None: the approval routes answer 404).
    pub approval_key: Option<crate::approval::Key>,
    /// Where the approval key is re-read from (`APPROVAL_KEY_PARAMETER`, at
    /// most every `APPROVAL_KEY_TTL_SECONDS`); None: `approval_key` alone.
    pub approval_refresh: Option<ApprovalRefresh>,
    /// How long a posted decision waits for the responder ([`APPROVAL_WAIT`]).
    pub approval_wait: std::time::Duration,
}

/// The approval key as last read, and the configuration it is read again
/// with.
#[cfg(feature = "aws")]
pub struct ApprovalRefresh {
    pub cell: crate::engine::KeyCell,
    pub config: crate::config::Config,
}

/// Refused requests by status, reported as one metric line and one log line
/// per window, however many arrive: a flood of junk must not become a flood
/// of logs (or of anything else the function pays for).
#[derive(Debug)]
pub struct Refusals {
    /// When the last report went out (None: never), and the counts since.
    counts: std::sync::Mutex<(
        Option<std::time::Instant>,
        std::collections::BTreeMap<u16, u64>,
    )>,
    pub window: std::time::Duration,
}

impl Refusals {
    pub fn new(window: std::time::Duration) -> Self {
        Self {
            counts: std::sync::Mutex::new((None, Default::default())),
            window,
        }
    }

    /// Counts one refusal. The first one, and the first after a window has
    /// passed since the last report, returns the counts to report (this one
    /// included) and starts a new window.
    pub fn note(&self, status: u16, now: std::time::Instant) -> Option<Vec<(u16, u64)>> {
        let mut g = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        *g.1.entry(status).or_insert(0) += 1;
        let due =
            g.0.is_none_or(|last| now.saturating_duration_since(last) >= self.window);
        if due {
            g.0 = Some(now);
            return Some(std::mem::take(&mut g.1).into_iter().collect());
        }
        None
    }
}

#[cfg(feature = "aws")]
impl Webhook {
    /// Re-reads the token from SSM when the interval has passed: at most one
    /// read per interval however many requests arrive. A failed read keeps
    /// the token in use.
    async fn refresh_token(&self) {
        let Some(r) = &self.refresh else { return };
        {
            let mut last = r.last.lock().unwrap_or_else(|p| p.into_inner());
            if last.elapsed() < r.every {
                return;
            }
            *last = std::time::Instant::now();
        }
        match read_token(&r.parameter, &r.ssm).await {
            Ok(t) => {
                let n = t.count();
                *self.token.write().unwrap_or_else(|p| p.into_inner()) = t;
                tracing::debug!(tokens = n, "webhook token re-read");
            }
            Err(e) => {
                warn!(error = %e, "could not re-read the webhook token; keeping the one in use")
            }
        }
    }

    /// A posted decision, carried out by the responder while the person
    /// waits (one attempt: the decision is single-use, and a retry would
    /// find it decided); its page is the answer. A change that takes longer
    /// than `approval_wait` (a volume's growth) goes on in the responder:
    /// the person gets a 202 and the outcome comes as a notification.
    async fn decide(&self, d: &crate::approval::Request) -> Reply {
        use aws_sdk_lambda::config::timeout::TimeoutConfig;
        let payload = match serde_json::to_vec(d) {
            Ok(p) => p,
            Err(e) => return Reply::error(500, e.to_string()),
        };
        let once = aws_sdk_lambda::config::Builder::default()
            .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(std::time::Duration::from_secs(600))
                    .operation_timeout(std::time::Duration::from_secs(600))
                    .build(),
            );
        let invoke = self
            .lambda
            .invoke()
            .function_name(&self.responder)
            .invocation_type(InvocationType::RequestResponse)
            .payload(Blob::new(payload))
            .customize()
            .config_override(once)
            .send();
        // Lambda runs an invocation to its end whether or not its caller
        // still waits.
        let Ok(out) = tokio::time::timeout(self.approval_wait, invoke).await else {
            info!("approval handed to the responder; answering before it finishes");
            return Reply::page(crate::approval::Page::message(
                202,
                "Decided: being carried out",
                "The decision is recorded and the change is under way. What came of it will arrive as a notification.",
            ));
        };
        let failed = |why: String| {
            warn!(error = %why, "approval not carried out by the responder");
            Reply::page(crate::approval::Page::message(
                502,
                "Could not reach the responder",
                "The decision may or may not have been recorded. Open the link again: it says whether it was.",
            ))
        };
        match out {
            Ok(o) if o.function_error().is_none() => {
                match o
                    .payload()
                    .map(|b| serde_json::from_slice::<crate::approval::Page>(b.as_ref()))
                {
                    Some(Ok(p)) => Reply::page(p),
                    Some(Err(e)) => failed(e.to_string()),
                    None => failed("no payload".into()),
                }
            }
            Ok(o) => failed(format!("the responder failed: {:?}", o.function_error())),
            Err(e) => failed(sdk_error(&e)),
        }
    }

    /// Answers one request. 2xx only once every incident is with the
    /// responder (Lambda keeps async events durably), so a crash after the
    /// answer loses nothing.
    /// Counts a refused request; once a window, the EMF line of the counts
    /// and one log line (never the link or the token).
    fn refused(&self, status: u16, reason: &str) {
        if let Some(counts) = self.refusals.note(status, std::time::Instant::now()) {
            let now_ms = chrono::Utc::now().timestamp_millis();
            for (status, n) in &counts {
                println!("{}", crate::metrics::refused_line(*status, *n, now_ms));
            }
            warn!(
                refused = ?counts,
                status,
                reason,
                "refused webhook requests (one line per window; see the RefusedRequests metric)"
            );
        }
    }

    pub async fn handle(&self, req: &Request<'_>) -> Reply {
        // The approval key as the parameter holds it now (a rotation needs
        // no redeploy), else the one read at start.
        let fresh = match &self.approval_refresh {
            Some(r) => r.cell.get(&r.config).await,
            None => None,
        };
        let key = fresh.as_ref().or(self.approval_key.as_ref());
        match approval_route(req, key, crate::aws::unix_now()) {
            Some(ApprovalRoute::Answer(r)) => {
                if r.status >= 400 {
                    let reason = r.html.as_deref().map_or("", |h| {
                        h.split("<h1>")
                            .nth(1)
                            .and_then(|t| t.split("</h1>").next())
                            .unwrap_or("")
                    });
                    self.refused(r.status, &format!("approval route: {reason}"));
                }
                return r;
            }
            Some(ApprovalRoute::Decide(d)) => return self.decide(&d).await,
            None => {}
        }
        self.refresh_token().await;
        let checked = {
            let token = self.token.read().unwrap_or_else(|p| p.into_inner());
            accept(req, &token, &self.routes, self.home.as_ref())
        };
        let accepted = match checked {
            Ok(a) => a,
            Err(reply) => {
                self.refused(reply.status, &reply.body["error"].to_string());
                return reply;
            }
        };
        let results: Vec<Result<(), String>> = futures::stream::iter(&accepted.handoffs)
            .map(|h| async move {
                self.lambda
                    .invoke()
                    .function_name(&self.responder)
                    .invocation_type(InvocationType::Event)
                    .payload(Blob::new(h.payload.clone()))
                    .send()
                    .await
                    .map(|_| info!(incident_id = %h.incident_id, kind = h.kind, "handed to the responder"))
                    .map_err(|e| format!("{}: {}", h.incident_id, sdk_error(&e)))
            })
            .buffer_unordered(HANDOFF_CONCURRENCY)
            .collect()
            .await;
        let failed: Vec<String> = results.into_iter().filter_map(Result::err).collect();
        let ids: Vec<&str> = accepted
            .handoffs
            .iter()
            .map(|h| h.incident_id.as_str())
            .collect();
        if !failed.is_empty() {
            warn!(failed = failed.len(), "hand-off to the responder failed");
            return Reply::error(
                503,
                format!(
                    "could not hand {} of {} incidents to the responder (retry): {}",
                    failed.len(),
                    ids.len(),
                    failed[0]
                ),
            );
        }
        info!(
            alerts = accepted.alerts,
            incidents = ids.len(),
            duplicates = accepted.duplicates,
            rejected = accepted.rejected.len(),
            "accepted webhook request"
        );
        // Each refused alert in the log too, at most a few lines a request.
        for r in accepted.rejected.iter().take(10) {
            warn!(field = %r.field, problem = %r.problem, "rejected one alert; the others were handed off");
        }
        Reply {
            html: None,
            status: 202,
            body: json!({
                "accepted": ids.len(),
                "alerts": accepted.alerts,
                "duplicates": accepted.duplicates,
                "incidents": ids,
                "rejected": accepted.rejected,
            }),
        }
    }
}

#[cfg(test)]
mod tests;
