//! One-tap approvals (pure part): a held action's links, their signature,
//! and the pages a person sees. A link is a capability: an HMAC-SHA256 over
//! the decision (approve or deny), the incident, the action, its exact
//! target and change, what was already done and the expiry. Anyone holding
//! it may decide, so it carries nothing more than that decision and expires.
//!
//! Served by the `webhook` function (`/approve`, `/deny`): a GET only shows
//! the change and a form (mail scanners fetch every link); the POST hands the
//! decision to the responder, which records it once, reads the target again
//! and carries the action out through the engine (`run.rs`).

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::ConfigError;

#[cfg(feature = "aws")]
pub mod run;

/// Links live this long unless `APPROVAL_TTL_MINUTES` says otherwise.
pub const DEFAULT_TTL_MINUTES: u64 = 60;
/// And never longer than this.
pub const MAX_TTL_MINUTES: u64 = 24 * 60;

/// The signing key: at least 32 bytes, never printed. While a rotation is
/// under way the parameter holds two, `CURRENT PREVIOUS`: links are signed
/// with the current one and accepted under either, so links already sent
/// keep working until the previous key is removed (which revokes them all).
#[derive(Clone)]
pub struct Key {
    current: Vec<u8>,
    previous: Option<Vec<u8>>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        let previous = match (&self.previous, &other.previous) {
            (Some(a), Some(b)) => a.ct_eq(b).into(),
            (None, None) => true,
            _ => false,
        };
        bool::from(self.current.ct_eq(&other.current)) && previous
    }
}

impl Key {
    /// `CURRENT` or `CURRENT PREVIOUS` (whitespace between), each at least
    /// 32 characters. `source` names where it came from in the error
    /// (never the value).
    pub fn new(source: &str, value: &str) -> Result<Self, ConfigError> {
        let parts: Vec<&str> = value.split_whitespace().collect();
        let problem = match parts.as_slice() {
            [] => Some("the approval signing key is empty".to_owned()),
            [_, _, _, ..] => Some(format!(
                "expected the key, or two (the current and the previous) separated by whitespace; found {}",
                parts.len()
            )),
            p => p.iter().find(|k| k.len() < 32).map(|k| {
                format!(
                    "the approval signing key must be at least 32 characters; it has {}",
                    k.len()
                )
            }),
        };
        if let Some(problem) = problem {
            return Err(ConfigError {
                var: source.into(),
                value: "<redacted>".into(),
                problem,
            });
        }
        Ok(Self {
            current: parts[0].as_bytes().to_vec(),
            previous: parts.get(1).map(|p| p.as_bytes().to_vec()),
        })
    }

    /// Whether a previous key is still accepted (a rotation under way).
    pub fn rotating(&self) -> bool {
        self.previous.is_some()
    }
}

/// What the person decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verb {
    Approve,
    Deny,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Deny => "deny",
        }
    }

    /// From the request's path (`/approve`, `/deny`, with any prefix such as
    /// `cargo lambda watch`'s `/lambda-url/webhook`).
    pub fn from_path(path: &str) -> Option<Self> {
        match path.trim_end_matches('/').rsplit('/').next()? {
            "approve" => Some(Self::Approve),
            "deny" => Some(Self::Deny),
            _ => None,
        }
    }
}

/// What a link grants: exactly one change, for one incident, until `expires`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub incident: String,
    pub action: String,
    pub target: String,
    /// The change in words, as the planner decided it
    /// (`add one instance to web-asg (desired 2 -> 3)`): the approval holds
    /// only while a fresh plan decides the same words.
    pub change: String,
    /// What the incident had already done when the link was made.
    pub done: String,
    /// Unix seconds.
    pub expires: i64,
    /// Where the incident acts (`ACCOUNT/REGION`, `Target::place`); empty
    /// with one account. Signed, so a link cannot be replayed elsewhere.
    #[serde(default)]
    pub place: String,
}

/// A decision as the page's form (or the link) carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed {
    pub verb: Verb,
    pub grant: Grant,
    pub sig: String,
}

/// Why a link acts on nothing. The page never says which field was wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The signature does not match (a changed character, a forged link):
    /// 403.
    Tampered,
    /// Past its expiry: 410.
    Expired,
}

impl Refusal {
    pub fn status(self) -> u16 {
        match self {
            Self::Tampered => 403,
            Self::Expired => 410,
        }
    }

    pub fn page(self) -> Page {
        match self {
            Self::Tampered => Page::message(
                403,
                "This link is not valid",
                "Nothing was done. Use the link from the notification exactly as it was sent.",
            ),
            Self::Expired => Page::message(
                410,
                "This link has expired",
                "Nothing was done. The approval window closed; the incident is left for a person to handle.",
            ),
        }
    }
}

const FIELDS: [&str; 9] = [
    "verb", "incident", "action", "target", "change", "done", "expires", "sig", "place",
];

/// The MAC's input: every field length-prefixed, so no two different
/// grants share one (a field cannot spill into the next).
fn message(verb: Verb, g: &Grant) -> Vec<u8> {
    let expires = g.expires.to_string();
    let parts: [&str; 8] = [
        "first-responder approval v1",
        verb.as_str(),
        &g.incident,
        &g.action,
        &g.target,
        &g.change,
        &g.done,
        &expires,
    ];
    let mut m = Vec::new();
    // With a place, the account and region are signed too (a link made
    // before places were signed has none, and still reads).
    let place = (!g.place.is_empty()).then_some(g.place.as_str());
    for p in parts.into_iter().chain(place) {
        m.extend_from_slice(format!("{}:", p.len()).as_bytes());
        m.extend_from_slice(p.as_bytes());
        m.push(b'\n');
    }
    m
}

fn mac(key: &[u8], verb: Verb, g: &Grant) -> Hmac<Sha256> {
    // HMAC takes a key of any length: this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(&message(verb, g));
    mac
}

/// The signature of a decision, hex.
pub fn sign(key: &Key, verb: Verb, g: &Grant) -> String {
    hex::encode(mac(&key.current, verb, g).finalize().into_bytes())
}

impl Signed {
    pub fn new(key: &Key, verb: Verb, grant: Grant) -> Self {
        let sig = sign(key, verb, &grant);
        Self { verb, grant, sig }
    }

    /// The signature first (in constant time), then the expiry: an expired
    /// link with a changed character is tampered.
    pub fn check(&self, key: &Key, now: i64) -> Result<(), Refusal> {
        let Ok(sig) = hex::decode(&self.sig) else {
            return Err(Refusal::Tampered);
        };
        // Both keys are tried every time, so which one signed is not timed.
        let current = mac(&key.current, self.verb, &self.grant).verify_slice(&sig);
        let previous = key
            .previous
            .as_ref()
            .map(|p| mac(p, self.verb, &self.grant).verify_slice(&sig));
        if current.is_err() && !matches!(previous, Some(Ok(()))) {
            return Err(Refusal::Tampered);
        }
        if now >= self.grant.expires {
            return Err(Refusal::Expired);
        }
        Ok(())
    }

    /// Its fields as `application/x-www-form-urlencoded` (without `verb`,
    /// which is the path).
    pub fn query(&self) -> String {
        let g = &self.grant;
        form_urlencoded::Serializer::new(String::new())
            .append_pair("incident", &g.incident)
            .append_pair("action", &g.action)
            .append_pair("target", &g.target)
            .append_pair("change", &g.change)
            .append_pair("done", &g.done)
            .append_pair("expires", &g.expires.to_string())
            .append_pair("sig", &self.sig)
            .extend_pairs((!g.place.is_empty()).then_some(("place", g.place.as_str())))
            .finish()
    }

    /// The link: `base` is the webhook's Function URL (ending in `/`).
    pub fn link(&self, base: &str) -> String {
        format!("{base}{}?{}", self.verb.as_str(), self.query())
    }

    /// Reads a query string or a form body. Anything missing, repeated,
    /// unknown or malformed is [`Refusal::Tampered`]: the page does not say
    /// which.
    pub fn parse(verb: Verb, encoded: &str) -> Result<Self, Refusal> {
        let mut got: [Option<String>; 9] = Default::default();
        for (k, v) in form_urlencoded::parse(encoded.as_bytes()) {
            let i = FIELDS
                .iter()
                .position(|f| *f == k)
                .ok_or(Refusal::Tampered)?;
            if got[i].replace(v.into_owned()).is_some() {
                return Err(Refusal::Tampered);
            }
        }
        let [
            v,
            incident,
            action,
            target,
            change,
            done,
            expires,
            sig,
            place,
        ] = got;
        // `verb` may ride along (the form repeats the path); it must agree.
        if v.is_some_and(|v| v != verb.as_str()) {
            return Err(Refusal::Tampered);
        }
        let need = |f: Option<String>| f.ok_or(Refusal::Tampered);
        Ok(Self {
            verb,
            grant: Grant {
                incident: need(incident)?,
                action: need(action)?,
                target: need(target)?,
                change: need(change)?,
                done: need(done)?,
                expires: need(expires)?.parse().map_err(|_| Refusal::Tampered)?,
                place: place.unwrap_or_default(),
            },
            sig: need(sig)?,
        })
    }
}

/// `&`, `<`, `>`, `"` and `'` as entities: every text of a page goes through
/// it (the change names resources from the event).
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An HTML answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    pub status: u16,
    pub html: String,
}

/// The headers every approval page carries: nothing loads from elsewhere,
/// the form posts only back here, and nothing is cached or referred on.
pub const HEADERS: [(&str, &str); 4] = [
    ("content-type", "text/html; charset=utf-8"),
    (
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    ),
    ("cache-control", "no-store"),
    ("referrer-policy", "no-referrer"),
];

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:40em;margin:2em auto;padding:0 1em;line-height:1.4}dt{font-weight:600}code{background:#eee;padding:0 .2em}button{font-size:1.1em;padding:.5em 1.2em}";

fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><meta name=\"robots\" content=\"noindex\"><title>{}</title><style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n",
        html_escape(title)
    )
}

impl Page {
    /// A result: a heading and one paragraph.
    pub fn message(status: u16, title: &str, message: &str) -> Self {
        Self {
            status,
            html: document(
                title,
                &format!(
                    "<h1>{}</h1>\n<p id=\"result\">{}</p>\n<p>first-responder</p>",
                    html_escape(title),
                    html_escape(message)
                ),
            ),
        }
    }

    /// What a GET of a valid link shows: the change, the incident, what was
    /// already done, the expiry, and one form that carries the same signed
    /// fields; nothing is done until it is posted.
    pub fn confirm(s: &Signed, now: i64) -> Self {
        let g = &s.grant;
        let (verb, heading, button) = match s.verb {
            Verb::Approve => ("approve", "Approve this change?", "Approve"),
            Verb::Deny => ("deny", "Deny this change?", "Deny"),
        };
        let left = (g.expires - now).max(0);
        let expires = chrono::DateTime::from_timestamp(g.expires, 0)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_else(|| g.expires.to_string());
        let hidden: String = [
            ("incident", g.incident.as_str()),
            ("action", g.action.as_str()),
            ("target", g.target.as_str()),
            ("change", g.change.as_str()),
            ("done", g.done.as_str()),
            ("expires", &g.expires.to_string()),
            ("sig", s.sig.as_str()),
            ("place", g.place.as_str()),
        ]
        .iter()
        .filter(|(k, v)| *k != "place" || !v.is_empty())
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{k}\" value=\"{}\">",
                html_escape(v)
            )
        })
        .collect();
        let done = if g.done.is_empty() {
            "nothing yet".to_owned()
        } else {
            g.done.clone()
        };
        let body = format!(
            "<h1>{heading}</h1>\n<p id=\"change\"><code>{change}</code></p>\n<dl>\n<dt>Incident</dt><dd id=\"incident\">{incident}</dd>\n<dt>Action</dt><dd id=\"action\">{action} on {target}</dd>\n<dt>Already done</dt><dd id=\"done\">{done}</dd>\n<dt>Link expires</dt><dd id=\"expires\">{expires} (in {mins} minutes)</dd>\n</dl>\n<form method=\"post\" action=\"{verb}\">{hidden}<button type=\"submit\" id=\"decide\">{button}: {change}</button></form>\n<p>Nothing is done until the button is pressed. The change is made only if the target is still as planned and the kill switch is off.</p>",
            change = html_escape(&g.change),
            incident = html_escape(&g.incident),
            action = html_escape(&g.action),
            target = html_escape(&g.target),
            done = html_escape(&done),
            mins = (left + 59) / 60,
        );
        Self {
            status: 200,
            html: document(&format!("{button}: {}", g.change), &body),
        }
    }
}

/// The responder's event for a posted decision (the webhook invokes it
/// synchronously): the signed fields and who sent them, as far as the
/// request tells.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub first_responder_approval: Decision,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub signed: Signed,
    pub source_ip: String,
    pub user_agent: String,
}

impl Request {
    pub fn from_event(v: &serde_json::Value) -> Option<Self> {
        v.get("first_responder_approval")?;
        serde_json::from_value(v.clone()).ok()
    }
}

/// The state table's key of one held action.
pub fn record_key(incident: &str, action: &str) -> String {
    format!("approval#{incident}#{action}")
}

#[cfg(test)]
mod tests;
