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

use crate::alert::{decode, parse_alertmanager_each, shapes_of};
#[cfg(feature = "aws")]
use crate::aws::sdk_error;
use crate::error::ConfigError;
use crate::incident::{Incident, Routes};
use crate::report::Rejected;

/// Larger bodies are refused with 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Hand-offs in flight at once (a storm of 1,000 alerts stays within the
/// account's Invoke rate without queueing behind one slow call).
#[cfg(feature = "aws")]
const HANDOFF_CONCURRENCY: usize = 16;

/// The shared bearer token: one, or two while a rotation is under way (the
/// new and the previous). Compared in constant time; never printed.
pub struct Token(Vec<Vec<u8>>);

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

    /// At least 16 characters, no whitespace inside.
    pub fn new(source: &str, value: &str) -> Result<Self, ConfigError> {
        let v = value.trim();
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
            None => Ok(Self(vec![v.as_bytes().to_vec()])),
        }
    }

    pub fn matches(&self, presented: &[u8]) -> bool {
        // Lengths differ → false at once; the length of the token is not the
        // secret. Every token is compared, so which one matched is not timed.
        self.0
            .iter()
            .fold(subtle::Choice::from(0u8), |any, t| any | t.ct_eq(presented))
            .into()
    }
}

/// An HTTP answer: status and a JSON body.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    fn error(status: u16, reason: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({ "error": reason.into() }),
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
pub struct Request<'a> {
    pub method: &'a str,
    pub authorization: Option<&'a str>,
    pub body: Option<&'a str>,
    pub base64: bool,
}

/// Authenticates, bounds, decodes and validates. Pure: no I/O.
pub fn accept(req: &Request<'_>, token: &Token, routes: &Routes) -> Result<Accepted, Reply> {
    let presented = req.authorization.and_then(|h| {
        let (scheme, rest) = h.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    });
    if !presented.is_some_and(|t| token.matches(t.as_bytes())) {
        return Err(Reply::error(401, "missing or wrong bearer token"));
    }
    if !req.method.eq_ignore_ascii_case("POST") {
        return Err(Reply::error(
            405,
            format!(
                "method {} not allowed: POST an Alertmanager webhook payload",
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
    let value = decode(&bytes).map_err(|e| bad(&e))?;
    // An Alertmanager payload and nothing else: one that also carries the
    // key of another event shape is refused whole.
    let shapes = shapes_of(&value);
    if shapes.iter().any(|k| *k != "alerts") {
        return Err(bad(&format!(
            "not an Alertmanager webhook payload (`version` and `alerts` only): it carries {}",
            shapes
                .iter()
                .filter(|k| **k != "alerts")
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let alerts = parse_alertmanager_each(value).map_err(|e| bad(&e))?;
    let count = alerts.len();
    let mut seen = std::collections::HashSet::new();
    let mut handoffs = Vec::new();
    let mut rejected = Vec::new();
    let mut duplicates = 0;
    for parsed in alerts {
        let (alert, validated) = match parsed {
            Ok(p) => p,
            Err(e) => {
                rejected.push(Rejected::from(&e));
                continue;
            }
        };
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
            "version": "4",
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
            status: 400,
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
    /// Name or ARN of the responder function.
    pub responder: String,
    pub lambda: aws_sdk_lambda::Client,
    /// Refused requests, counted and reported once a window.
    pub refusals: Refusals,
}

/// The SSM parameter holding the token, read again at most every `every`.
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
    let out = ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| format!("reading SSM parameter {name}: {}", sdk_error(&e)))?;
    let value = out
        .parameter()
        .and_then(|p| p.value())
        .ok_or_else(|| format!("SSM parameter {name} has no value"))?;
    Token::rotating(&format!("SSM parameter {name}"), value).map_err(|e| e.to_string())
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

    /// Answers one request. 2xx only once every incident is with the
    /// responder (Lambda keeps async events durably), so a crash after the
    /// answer loses nothing.
    pub async fn handle(&self, req: &Request<'_>) -> Reply {
        self.refresh_token().await;
        let checked = {
            let token = self.token.read().unwrap_or_else(|p| p.into_inner());
            accept(req, &token, &self.routes)
        };
        let accepted = match checked {
            Ok(a) => a,
            Err(reply) => {
                if let Some(counts) = self.refusals.note(reply.status, std::time::Instant::now()) {
                    let now_ms = chrono::Utc::now().timestamp_millis();
                    for (status, n) in &counts {
                        println!("{}", crate::metrics::refused_line(*status, *n, now_ms));
                    }
                    warn!(
                        refused = ?counts,
                        status = reply.status,
                        reason = %reply.body["error"],
                        "refused webhook requests (one line per window; see the RefusedRequests metric)"
                    );
                }
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
mod tests {
    use super::*;

    const TOKEN: &str = "s3cret-token-for-tests-0001";
    const AM: &str = include_str!("../../events/alertmanager-high-cpu.json");

    fn token() -> Token {
        Token::new("t", TOKEN).unwrap()
    }

    fn req<'a>(auth: Option<&'a str>, body: &'a str) -> Request<'a> {
        Request {
            method: "POST",
            authorization: auth,
            body: Some(body),
            base64: false,
        }
    }

    fn status(r: Result<Accepted, Reply>) -> u16 {
        match r {
            Ok(_) => 202,
            Err(reply) => reply.status,
        }
    }

    #[test]
    fn authentication() {
        let good = format!("Bearer {TOKEN}");
        let lower = format!("bearer {TOKEN}");
        let routes = Routes::new();
        assert_eq!(
            status(accept(&req(Some(&good), AM), &token(), &routes)),
            202
        );
        assert_eq!(
            status(accept(&req(Some(&lower), AM), &token(), &routes)),
            202
        );
        for bad in [
            None,
            Some(""),
            Some("Bearer"),
            Some("Bearer "),
            Some(TOKEN),
            Some("Basic czNjcmV0"),
            Some("Bearer s3cret-token-for-tests-0002"),
            Some("Bearer s3cret-token-for-tests-000"),
        ] {
            assert_eq!(
                status(accept(&req(bad, AM), &token(), &routes)),
                401,
                "{bad:?}"
            );
        }
        // Authentication comes first: an unauthenticated huge or broken body is still 401.
        assert_eq!(
            status(accept(
                &req(None, &"x".repeat(MAX_BODY_BYTES + 10)),
                &token(),
                &routes
            )),
            401
        );
        assert_eq!(status(accept(&req(None, "{"), &token(), &routes)), 401);
    }

    #[test]
    fn status_codes() {
        let auth = format!("Bearer {TOKEN}");
        let a = Some(auth.as_str());
        let routes = Routes::new();
        let cases: Vec<(Request<'_>, u16)> = vec![
            (
                Request {
                    method: "GET",
                    ..req(a, AM)
                },
                405,
            ),
            (req(a, "{"), 400),
            (req(a, ""), 400),
            (
                req(a, include_str!("../../events/high-cpu-alarm.json")),
                400,
            ),
            (req(a, r#"{"version":"4","alerts":[]}"#), 400),
        ];
        for (r, want) in cases {
            let body = r
                .body
                .unwrap_or_default()
                .chars()
                .take(40)
                .collect::<String>();
            let got = accept(&r, &token(), &routes);
            assert_eq!(status(got.clone()), want, "{body}");
            if let Err(reply) = got {
                let reason = reply.body["error"].as_str().unwrap().to_owned();
                assert!(!reason.contains('\n') && !reason.is_empty(), "{reason}");
            }
        }
        let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_BODY_BYTES));
        assert_eq!(status(accept(&req(a, &big), &token(), &routes)), 413);
        let big64 = base64::engine::general_purpose::STANDARD.encode(big.as_bytes());
        assert_eq!(
            status(accept(
                &Request {
                    base64: true,
                    ..req(a, &big64)
                },
                &token(),
                &routes
            )),
            413
        );
        assert_eq!(
            status(accept(
                &Request {
                    base64: true,
                    ..req(a, "%%%")
                },
                &token(),
                &routes
            )),
            400
        );
    }

    #[test]
    fn base64_bodies_are_decoded() {
        let auth = format!("Bearer {TOKEN}");
        let b64 = base64::engine::general_purpose::STANDARD.encode(AM.as_bytes());
        let acc = accept(
            &Request {
                base64: true,
                ..req(Some(&auth), &b64)
            },
            &token(),
            &Routes::new(),
        )
        .unwrap();
        assert_eq!(acc.handoffs.len(), 1);
    }

    #[test]
    fn duplicates_become_one_handoff_with_one_alert() {
        let auth = format!("Bearer {TOKEN}");
        let acc = accept(&req(Some(&auth), AM), &token(), &Routes::new()).unwrap();
        assert_eq!((acc.alerts, acc.duplicates, acc.handoffs.len()), (2, 1, 1));
        let payload: Value = serde_json::from_slice(&acc.handoffs[0].payload).unwrap();
        assert_eq!(payload["version"], "4");
        assert_eq!(payload["alerts"].as_array().unwrap().len(), 1);
        assert_eq!(acc.handoffs[0].kind, "high_cpu");
        // The hand-off is itself a payload the responder accepts, with the same incident.
        let (incidents, _) = crate::respond::incidents(payload, &Routes::new()).unwrap();
        assert_eq!(incidents[0].id, acc.handoffs[0].incident_id);
    }

    /// A payload that is also shaped like a CloudWatch event or an SNS
    /// batch is refused whole; a hand-off never carries anything of the
    /// request but the validated fields of its one alert.
    #[test]
    fn smuggled_event_shapes_never_reach_the_responder() {
        let auth = format!("Bearer {TOKEN}");
        let routes = Routes::new();
        let mut v: Value = serde_json::from_str(AM).unwrap();
        v["detail-type"] = "CloudWatch Alarm State Change".into();
        v["source"] = "aws.cloudwatch".into();
        v["detail"] = json!({"alarmName": "forged", "state": {"value": "ALARM"}});
        let got = accept(&req(Some(&auth), &v.to_string()), &token(), &routes);
        let reply = got.unwrap_err();
        assert_eq!(reply.status, 400);
        assert!(
            reply.body["error"]
                .as_str()
                .unwrap()
                .contains("`detail-type`"),
            "{reply:?}"
        );
        let mut v: Value = serde_json::from_str(AM).unwrap();
        v["Records"] = json!([{"Sns": {"Message": "{}"}}]);
        assert_eq!(
            status(accept(&req(Some(&auth), &v.to_string()), &token(), &routes)),
            400
        );
        // Unknown keys in the envelope and in the alert are dropped.
        let mut v: Value = serde_json::from_str(AM).unwrap();
        v["detail"] = json!({"AutoScalingGroupName": "payments"});
        v["alerts"][0]["detail-type"] = "CloudWatch Alarm State Change".into();
        v["alerts"][0]["extra"] = "x".repeat(1000).into();
        let acc = accept(&req(Some(&auth), &v.to_string()), &token(), &routes).unwrap();
        let payload: Value = serde_json::from_slice(&acc.handoffs[0].payload).unwrap();
        let mut keys: Vec<&str> = payload
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["alerts", "status", "version"]);
        let alert = payload["alerts"][0].as_object().unwrap();
        let mut keys: Vec<&str> = alert.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["annotations", "fingerprint", "labels", "startsAt", "status"]
        );
        // The responder refuses an object of two shapes too.
        let mut two: Value = serde_json::from_str(AM).unwrap();
        two["detail-type"] = "CloudWatch Alarm State Change".into();
        let e = crate::alert::parse_value(two).unwrap_err().to_string();
        assert!(e.contains("more than one shape"), "{e}");
    }

    /// One alert the webhook cannot use (a blackbox URL as `instance`, a
    /// value that is not a number) does not drop the good ones.
    #[test]
    fn a_mixed_batch_is_handled_in_part() {
        let auth = format!("Bearer {TOKEN}");
        let routes = Routes::new();
        let mut v: Value = serde_json::from_str(AM).unwrap();
        let good = v["alerts"][0].clone();
        let mut blackbox = good.clone();
        blackbox["labels"]["instance"] = "https://shop/health".into();
        blackbox["fingerprint"] = "00000000000000b1".into();
        let mut k = good.clone();
        k["annotations"]["value"] = "1.5k".into();
        k["fingerprint"] = "00000000000000b2".into();
        v["alerts"] = json!([blackbox, good, k]);
        let acc = accept(&req(Some(&auth), &v.to_string()), &token(), &routes).unwrap();
        assert_eq!(
            (acc.alerts, acc.handoffs.len(), acc.rejected.len()),
            (3, 1, 2)
        );
        assert_eq!(acc.rejected[0].field, "alerts[0].labels.instance");
        assert!(
            acc.rejected[0].problem.contains("https://shop/health"),
            "{:?}",
            acc.rejected
        );
        assert_eq!(acc.rejected[1].field, "alerts[2].annotations.value");
        assert!(
            acc.rejected[1].problem.contains("1.5k"),
            "{:?}",
            acc.rejected
        );
        // Nothing usable: 400, naming every refused alert.
        v["alerts"] = json!([v["alerts"][0].clone(), v["alerts"][2].clone()]);
        let reply = accept(&req(Some(&auth), &v.to_string()), &token(), &routes).unwrap_err();
        assert_eq!(reply.status, 400);
        assert_eq!(reply.body["rejected"].as_array().unwrap().len(), 2);
        // The responder side handles the same batch in part.
        let mut v: Value = serde_json::from_str(AM).unwrap();
        let mut bad = v["alerts"][0].clone();
        bad["annotations"]["value"] = "1.5k".into();
        bad["fingerprint"] = "00000000000000b2".into();
        v["alerts"] = json!([bad, v["alerts"][0].clone()]);
        let batch = crate::respond::incidents_each(v, &routes).unwrap();
        assert_eq!((batch.incidents.len(), batch.rejected.len()), (1, 1));
    }

    #[test]
    fn a_storm_is_deduplicated() {
        let auth = format!("Bearer {TOKEN}");
        let mut v: Value = serde_json::from_str(AM).unwrap();
        let template = v["alerts"][0].clone();
        let alerts: Vec<Value> = (0..1000)
            .map(|i| {
                let mut a = template.clone();
                a["fingerprint"] = format!("{:016x}", i % 50).into();
                a["labels"]["instance"] =
                    format!("10.0.{}.{}:9100", (i % 50) / 250, (i % 50) % 250 + 1).into();
                a
            })
            .collect();
        v["alerts"] = Value::Array(alerts);
        let body = v.to_string();
        let acc = accept(&req(Some(&auth), &body), &token(), &Routes::new()).unwrap();
        assert_eq!(
            (acc.alerts, acc.duplicates, acc.handoffs.len()),
            (1000, 950, 50)
        );
    }

    /// During a rotation both the new and the previous token are accepted.
    #[test]
    fn two_tokens_during_a_rotation() {
        let t = Token::rotating("p", "new-token-0000000000001 old-token-0000000000001").unwrap();
        assert_eq!(t.count(), 2);
        assert!(t.matches(b"new-token-0000000000001"));
        assert!(t.matches(b"old-token-0000000000001"));
        assert!(!t.matches(b"other-token-000000000001"));
        assert!(
            Token::rotating(
                "p",
                "a-token-00000000000001 b-token-00000000000001 c-token-00000000000001"
            )
            .is_err()
        );
        assert!(Token::rotating("p", "  ").is_err());
        let one = Token::rotating("p", "only-token-000000000001\n").unwrap();
        assert_eq!(one.count(), 1);
    }

    /// A flood of refused requests is reported once a window, with counts.
    #[test]
    fn refusals_are_counted_and_reported_once_a_window() {
        use std::time::{Duration, Instant};
        let r = Refusals::new(Duration::from_secs(60));
        let t0 = Instant::now();
        // The first refusal is reported at once.
        assert_eq!(r.note(401, t0), Some(vec![(401, 1)]));
        let mut reported = 0;
        for i in 0..5000u64 {
            if r.note(
                if i % 10 == 0 { 400 } else { 401 },
                t0 + Duration::from_millis(i),
            )
            .is_some()
            {
                reported += 1;
            }
        }
        assert_eq!(reported, 0, "no report inside the window");
        let counts = r.note(401, t0 + Duration::from_secs(61)).unwrap();
        assert_eq!(counts, vec![(400, 500), (401, 4501)]);
        let line: serde_json::Value =
            serde_json::from_str(&crate::metrics::refused_line(401, 4501, 0)).unwrap();
        assert_eq!(line["RefusedRequests"], 4501);
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "RefusedRequests"
        );
    }

    #[test]
    fn token_rules() {
        assert!(Token::new("WEBHOOK_TOKEN", "short").is_err());
        assert!(Token::new("WEBHOOK_TOKEN", "has a space in the middle!").is_err());
        let e = Token::new("WEBHOOK_TOKEN", "short-secret")
            .unwrap_err()
            .to_string();
        assert!(
            !e.contains("short-secret"),
            "the secret must not be printed: {e}"
        );
        assert_eq!(format!("{:?}", token()), "Token(<redacted>)");
    }

    #[cfg(feature = "aws")]
    mod handoff {
        //! The hand-off's request and its error paths, through typed SDK mocks
        //! (cargo lambda watch runs even `Event` invokes synchronously, so
        //! the request type is checked here).
        use super::*;
        use aws_sdk_lambda::Client;
        use aws_sdk_lambda::operation::invoke::{InvokeError, InvokeOutput};
        use aws_sdk_lambda::types::error::TooManyRequestsException;
        use aws_smithy_mocks::{RuleMode, mock, mock_client};

        fn webhook(lambda: Client) -> Webhook {
            Webhook {
                token: std::sync::RwLock::new(token()),
                refresh: None,
                routes: Routes::new(),
                responder: "responder".into(),
                lambda,
                refusals: Refusals::new(std::time::Duration::from_secs(60)),
            }
        }

        fn post() -> String {
            format!("Bearer {TOKEN}")
        }

        #[tokio::test]
        async fn hands_off_with_an_asynchronous_invoke_and_answers_202() {
            let rule = mock!(Client::invoke)
                .match_requests(|r| {
                    r.invocation_type() == Some(&InvocationType::Event)
                        && r.function_name() == Some("responder")
                        && r.payload().is_some_and(|p| {
                            serde_json::from_slice::<Value>(p.as_ref())
                                .is_ok_and(|v| v["alerts"].as_array().is_some_and(|a| a.len() == 1))
                        })
                })
                .then_output(|| InvokeOutput::builder().status_code(202).build());
            let lambda = mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&rule]);
            let auth = post();
            let reply = webhook(lambda).handle(&req(Some(&auth), AM)).await;
            assert_eq!(reply.status, 202, "{:?}", reply.body);
            assert_eq!(rule.num_calls(), 1, "one invoke for two duplicate alerts");
            assert_eq!(reply.body["duplicates"], 1);
        }

        #[tokio::test]
        async fn throttled_hand_off_is_503() {
            let rule = mock!(Client::invoke).then_error(|| {
                InvokeError::TooManyRequestsException(
                    TooManyRequestsException::builder()
                        .message("Rate exceeded")
                        .build(),
                )
            });
            let lambda = mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&rule]);
            let auth = post();
            let reply = webhook(lambda).handle(&req(Some(&auth), AM)).await;
            assert_eq!(reply.status, 503);
            assert!(
                reply.body["error"].as_str().unwrap().contains("(retry)"),
                "{:?}",
                reply.body
            );
        }

        #[tokio::test]
        async fn refused_requests_invoke_nothing() {
            let rule = mock!(Client::invoke)
                .then_output(|| InvokeOutput::builder().status_code(202).build());
            let lambda = mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&rule]);
            let w = webhook(lambda);
            assert_eq!(w.handle(&req(None, AM)).await.status, 401);
            let auth = post();
            assert_eq!(w.handle(&req(Some(&auth), "{}")).await.status, 400);
            assert_eq!(rule.num_calls(), 0);
        }
    }
}
