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
use base64::Engine;
#[cfg(feature = "aws")]
use futures::StreamExt;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
#[cfg(feature = "aws")]
use tracing::{info, warn};

use crate::alert::{decode_at_most, parse_webhook_each, shapes_of};
#[cfg(feature = "aws")]
use crate::aws::sdk_error;
use crate::error::ConfigError;
use crate::incident::{Incident, Routes};
use crate::report::Rejected;

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

/// The shared bearer token: one, or two while a rotation is under way (the
/// new and the previous), each with the accounts its alerts may name.
/// Compared in constant time; never printed.
pub struct Token(Vec<(Vec<u8>, Binding)>);

/// The accounts a token's alerts may name in their `account_id` label
/// (`TOKEN@ACCOUNT,ACCOUNT` in the token's parameter). None: bound to no
/// account, so it acts only in the deployment's own.
pub type Binding = Option<Vec<crate::ids::AccountId>>;

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// One or two tokens separated by whitespace (`NEW` or `NEW PREVIOUS`):
    /// rotating is writing `NEW OLD` to the parameter, moving Alertmanager
    /// to NEW, then writing `NEW` alone. Each as [`Token::new`] requires.
    pub fn rotating(source: &str, value: &str) -> Result<Self, ConfigError> {
        let parts: Vec<&str> = value.split_whitespace().collect();
        if parts.is_empty() || parts.len() > 2 {
            return Err(ConfigError {
                var: source.into(),
                value: "<redacted>".into(),
                problem: format!(
                    "expected one token, or two (the new and the previous) separated by whitespace; found {}",
                    parts.len()
                ),
            });
        }
        let mut all = Vec::new();
        for p in parts {
            all.extend(Self::new(source, p)?.0);
        }
        Ok(Self(all))
    }

    /// How many tokens are accepted (2 during a rotation).
    pub fn count(&self) -> usize {
        self.0.len()
    }

    /// At least 16 characters, no whitespace or `@` inside; then, after an
    /// `@`, the accounts its alerts may name, comma-separated
    /// (`TOKEN@111111111111,222222222222`).
    pub fn new(source: &str, value: &str) -> Result<Self, ConfigError> {
        let (v, accounts) = match value.trim().split_once('@') {
            Some((t, a)) => (t, Some(a)),
            None => (value.trim(), None),
        };
        let binding =
            match accounts {
                None => None,
                Some(list) => {
                    let mut ids = Vec::new();
                    for a in list.split(',') {
                        ids.push(crate::ids::AccountId::parse("account", a.trim()).map_err(
                            |e| ConfigError {
                                var: source.into(),
                                value: "<redacted>".into(),
                                problem: format!("after the token's `@`: {e}"),
                            },
                        )?);
                    }
                    Some(ids)
                }
            };
        let problem = if v.len() < 16 {
            Some("the token must be at least 16 characters")
        } else if v.chars().any(char::is_whitespace) {
            Some("the token must not contain whitespace")
        } else {
            None
        };
        match problem {
            Some(p) => Err(ConfigError {
                var: source.into(),
                value: "<redacted>".into(),
                problem: p.into(),
            }),
            None => Ok(Self(vec![(v.as_bytes().to_vec(), binding)])),
        }
    }

    pub fn matches(&self, presented: &[u8]) -> bool {
        self.binding(presented).is_some()
    }

    /// The accounts of the token presented, when it is one of ours.
    pub fn binding(&self, presented: &[u8]) -> Option<&Binding> {
        use subtle::ConditionallySelectable;
        // Lengths differ → false at once; the length of the token is not the
        // secret. Every token is compared, so which one matched is not timed.
        let mut found = subtle::Choice::from(0u8);
        let mut index = 0u64;
        for (i, (t, _)) in self.0.iter().enumerate() {
            let eq = t.ct_eq(presented);
            index = u64::conditional_select(&index, &(i as u64), eq);
            found |= eq;
        }
        let index = usize::try_from(index).ok()?;
        if bool::from(found) {
            self.0.get(index).map(|(_, b)| b)
        } else {
            None
        }
    }
}

/// An HTTP answer: status and a JSON body, or for the approval routes an
/// HTML page (`html`, served with [`crate::approval::HEADERS`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub html: Option<String>,
}

impl Reply {
    fn error(status: u16, reason: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({ "error": reason.into() }),
            html: None,
        }
    }

    fn page(p: crate::approval::Page) -> Self {
        Self {
            status: p.status,
            body: Value::Null,
            html: Some(p.html),
        }
    }
}

/// One incident for the responder: an Alertmanager payload built from
/// scratch with exactly the validated fields of this incident's one alert,
/// so nothing of the request that was not checked reaches the responder.
#[derive(Clone, Debug, PartialEq)]
pub struct Handoff {
    pub incident_id: String,
    pub kind: &'static str,
    pub payload: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Accepted {
    pub alerts: usize,
    pub duplicates: usize,
    pub handoffs: Vec<Handoff>,
    /// Alerts that could not be handled, each with the field and value at
    /// fault; the others were handed off.
    pub rejected: Vec<Rejected>,
}

/// The request as the function sees it.
#[derive(Default)]
pub struct Request<'a> {
    pub method: &'a str,
    /// `/`, or `/approve` and `/deny` for the approval pages.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub authorization: Option<&'a str>,
    pub body: Option<&'a str>,
    pub base64: bool,
    /// Who sent it, as far as the request tells (recorded with a decision).
    pub source_ip: &'a str,
    pub user_agent: &'a str,
}

/// What an approval route does with a request (pure): answer at once (the
/// page of a GET, a refusal), or hand the posted decision to the responder.
#[derive(Debug, PartialEq)]
pub enum ApprovalRoute {
    Answer(Reply),
    Decide(crate::approval::Request),
}

/// The approval routes (`/approve`, `/deny`): None for any other path. They
/// answer without the bearer token: the signature is their credential. A GET
/// (or HEAD) never acts: it shows the change and a form. Only a POST of that
/// form decides.
pub fn approval_route(
    req: &Request<'_>,
    key: Option<&crate::approval::Key>,
    now: i64,
) -> Option<ApprovalRoute> {
    use crate::approval::{Page, Signed, Verb};
    let verb = Verb::from_path(req.path)?;
    let answer = |p: Page| Some(ApprovalRoute::Answer(Reply::page(p)));
    let Some(key) = key else {
        return answer(Page::message(
            404,
            "Approvals are not configured",
            "This deployment has no approval key: nothing was done.",
        ));
    };
    let method = req.method.to_ascii_uppercase();
    let encoded = match method.as_str() {
        "GET" | "HEAD" => req.query.unwrap_or_default().to_owned(),
        "POST" => {
            let raw = req.body.unwrap_or_default();
            if raw.len() > 16 * 1024 {
                return answer(Page::message(413, "Too large", "Nothing was done."));
            }
            if req.base64 {
                match base64::engine::general_purpose::STANDARD.decode(raw.trim()) {
                    Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                    Err(_) => return answer(crate::approval::Refusal::Tampered.page()),
                }
            } else {
                raw.to_owned()
            }
        }
        _ => {
            return answer(Page::message(
                405,
                "Method not allowed",
                "Open the link, then press the button on the page.",
            ));
        }
    };
    let signed = match Signed::parse(verb, &encoded).and_then(|s| s.check(key, now).map(|()| s)) {
        Ok(s) => s,
        Err(r) => return answer(r.page()),
    };
    if method != "POST" {
        return answer(Page::confirm(&signed, now));
    }
    Some(ApprovalRoute::Decide(crate::approval::Request {
        first_responder_approval: crate::approval::Decision {
            signed,
            source_ip: req.source_ip.chars().take(64).collect(),
            user_agent: req.user_agent.chars().take(200).collect(),
        },
    }))
}

/// Authenticates, bounds, decodes and validates. Pure: no I/O.
/// Whether a token bound to `binding` may act where an alert's
/// `account_id` label says (`named`; none: the deployment's own, `home`).
pub fn permits(
    binding: &Binding,
    home: Option<&crate::ids::AccountId>,
    named: Option<&str>,
) -> Result<(), String> {
    let home_text = home.map_or_else(
        || "not known: HOME_ACCOUNT_ID is not set".to_owned(),
        ToString::to_string,
    );
    match (binding, named) {
        (None, None) => Ok(()),
        (None, Some(a)) if home.is_some_and(|h| h.as_str() == a) => Ok(()),
        (None, Some(a)) => Err(format!(
            "the alert names account {}, and this token is bound to no account, so it acts only in the home account ({home_text}): refused",
            crate::text::quoted(a, 40)
        )),
        (Some(list), named) => {
            let Some(a) = named.or(home.map(crate::ids::AccountId::as_str)) else {
                return Err(format!(
                    "the alert names no account_id, and the home account is {home_text}: refused"
                ));
            };
            if list.iter().any(|b| b.as_str() == a) {
                return Ok(());
            }
            let bound: Vec<&str> = list.iter().map(crate::ids::AccountId::as_str).collect();
            Err(format!(
                "the alert names account {}, and this token may act only in {}: refused",
                crate::text::quoted(a, 40),
                bound.join(", ")
            ))
        }
    }
}

pub fn accept(
    req: &Request<'_>,
    token: &Token,
    routes: &Routes,
    home: Option<&crate::ids::AccountId>,
) -> Result<Accepted, Reply> {
    let presented = req.authorization.and_then(|h| {
        let (scheme, rest) = h.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    });
    let Some(binding) = presented.and_then(|t| token.binding(t.as_bytes())) else {
        return Err(Reply::error(401, "missing or wrong bearer token"));
    };
    if !req.method.eq_ignore_ascii_case("POST") {
        return Err(Reply::error(
            405,
            format!(
                "method {} not allowed: POST an Alertmanager or Grafana webhook payload",
                req.method
            ),
        ));
    }
    let raw = req.body.unwrap_or_default();
    let too_large = || Reply::error(413, format!("body larger than {MAX_BODY_BYTES} bytes"));
    let bytes = if req.base64 {
        if raw.len() > MAX_BODY_BYTES.div_ceil(3) * 4 + 4 {
            return Err(too_large());
        }
        base64::engine::general_purpose::STANDARD
            .decode(raw.trim())
            .map_err(|e| Reply::error(400, format!("body is marked base64 but is not: {e}")))?
    } else {
        raw.as_bytes().to_vec()
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(too_large());
    }
    let bad = |e: &dyn std::fmt::Display| Reply::error(400, e.to_string());
    let value = decode_at_most(&bytes, MAX_BODY_BYTES).map_err(|e| bad(&e))?;
    // An Alertmanager payload and nothing else: one that also carries the
    // key of another event shape is refused whole.
    let shapes = shapes_of(&value);
    if shapes.iter().any(|k| *k != "alerts") {
        return Err(bad(&format!(
            "not an Alertmanager or Grafana webhook payload (`version` and `alerts` only): it carries {}",
            shapes
                .iter()
                .filter(|k| **k != "alerts")
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let (flavor, alerts) = parse_webhook_each(value).map_err(|e| bad(&e))?;
    let count = alerts.len();
    let mut seen = std::collections::HashSet::new();
    let mut handoffs = Vec::new();
    let mut rejected = Vec::new();
    let mut duplicates = 0;
    let mut unbound = 0;
    for (i, parsed) in alerts.into_iter().enumerate() {
        let (alert, validated) = match parsed {
            Ok(p) => p,
            Err(e) => {
                rejected.push(Rejected::from(&e));
                continue;
            }
        };
        // The labels may name only an account this token is bound to.
        if let Err(why) = permits(binding, home, alert.account.as_deref()) {
            unbound += 1;
            rejected.push(Rejected {
                field: format!("alerts[{i}].labels.account_id"),
                problem: why,
            });
            continue;
        }
        let incident = match Incident::routed(alert, routes) {
            Ok(i) => i,
            Err(e) => {
                rejected.push(Rejected::from(&e));
                continue;
            }
        };
        if !seen.insert(incident.id.clone()) {
            duplicates += 1;
            continue;
        }
        // Built from scratch: the envelope fields the responder reads and
        // the one validated alert. Linear in the payload.
        let one = json!({
            "version": flavor.version(),
            "status": validated.status,
            "alerts": [validated],
        });
        handoffs.push(Handoff {
            incident_id: incident.id,
            kind: incident.kind.as_str(),
            payload: serde_json::to_vec(&one).map_err(|e| Reply::error(500, e.to_string()))?,
        });
    }
    if handoffs.is_empty() && duplicates == 0 {
        let first = rejected.first().map_or_else(
            || "no alerts".to_owned(),
            |r| format!("field `{}`: {}", r.field, r.problem),
        );
        return Err(Reply {
            html: None,
            // Every alert named an account the token may not act in.
            status: if unbound == rejected.len() { 403 } else { 400 },
            body: json!({
                "error": if rejected.len() > 1 {
                    format!("none of the {count} alerts is usable; the first: {first}")
                } else {
                    first
                },
                "rejected": rejected,
            }),
        });
    }
    Ok(Accepted {
        alerts: count,
        duplicates,
        handoffs,
        rejected,
    })
}

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

/// The SSM parameter holding the token, read again at most every `every`.
#[cfg(feature = "aws")]
pub struct ApprovalRefresh {
    pub cell: crate::approval::KeyCell,
    pub config: crate::config::Config,
}

#[cfg(feature = "aws")]
pub struct TokenRefresh {
    pub parameter: String,
    pub ssm: aws_sdk_ssm::Client,
    pub every: std::time::Duration,
    pub last: std::sync::Mutex<std::time::Instant>,
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

/// The token: `WEBHOOK_TOKEN` (local runs) or the SSM SecureString named by
/// `WEBHOOK_TOKEN_PARAMETER` (AWS); either may hold the new and the previous
/// token during a rotation.
#[cfg(feature = "aws")]
pub async fn load_token(
    env_token: Option<String>,
    parameter: Option<String>,
    ssm: &aws_sdk_ssm::Client,
) -> Result<Token, String> {
    if let Some(t) = env_token.filter(|t| !t.is_empty()) {
        return Token::rotating("WEBHOOK_TOKEN", &t).map_err(|e| e.to_string());
    }
    let Some(name) = parameter.filter(|p| !p.is_empty()) else {
        return Err(
            "set WEBHOOK_TOKEN_PARAMETER (an SSM SecureString parameter) or WEBHOOK_TOKEN".into(),
        );
    };
    read_token(&name, ssm).await
}

#[cfg(feature = "aws")]
async fn read_token(name: &str, ssm: &aws_sdk_ssm::Client) -> Result<Token, String> {
    let value = crate::aws::secure_parameter(ssm, name).await?;
    Token::rotating(&format!("SSM parameter {name}"), &value).map_err(|e| e.to_string())
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
