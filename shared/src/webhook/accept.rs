//! What a request asks for, decided without I/O: the approval routes'
//! answer or decision ([`approval_route`]), and an Alertmanager or Grafana
//! payload authenticated, bounded, decoded and validated into hand-offs
//! ([`accept`]).

use base64::Engine;
use serde_json::{Value, json};

use super::MAX_BODY_BYTES;
use super::token::{Binding, Token, permits};
use crate::alert::{decode_at_most, parse_webhook_each, shapes_of};
use crate::incident::{Incident, Routes};
use crate::report::Rejected;

/// An HTTP answer: status and a JSON body, or for the approval routes an
/// HTML page (`html`, served with [`crate::approval::HEADERS`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub html: Option<String>,
}

impl Reply {
    pub(super) fn error(status: u16, reason: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({ "error": reason.into() }),
            html: None,
        }
    }

    pub(super) fn page(p: crate::approval::Page) -> Self {
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
pub fn accept(
    req: &Request<'_>,
    token: &Token,
    routes: &Routes,
    home: Option<&crate::ids::AccountId>,
) -> Result<Accepted, Reply> {
    let binding = authenticate(req, token)?;
    let value = body_value(req)?;
    let (flavor, alerts) =
        parse_webhook_each(value).map_err(|e| Reply::error(400, e.to_string()))?;
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

/// The bearer token (compared in constant time) and the method: what the
/// token may name, or the refusal.
fn authenticate<'t>(req: &Request<'_>, token: &'t Token) -> Result<&'t Binding, Reply> {
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
    Ok(binding)
}

/// The body, bounded and decoded (base64 too), as JSON of the webhook's
/// shape alone: an object that also carries another event shape's key is
/// refused whole.
fn body_value(req: &Request<'_>) -> Result<serde_json::Value, Reply> {
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
    Ok(value)
}
