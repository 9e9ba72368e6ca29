//! What every page says, in the shape of the places on-call reads: Amazon
//! Q Developer in chat applications' custom notification (Slack, Teams)
//! and a PagerDuty Events API v2 event. Pure: the notify action sends them.

use serde_json::{Value, json};

use super::links::Link;

/// The longest `content.description` sent: Slack renders it as one text
/// block, which holds 3,000 characters; longer is cut, and says so.
pub const MAX_CHAT_DESCRIPTION: usize = 3_000;
/// What the cut description ends with.
pub const CHAT_CUT: &str = "… (full report in email)";
/// PagerDuty's `payload.summary` holds 1,024 characters.
pub const MAX_PAGER_SUMMARY: usize = 1_024;
/// A next step, a keyword: kept short for the card.
const MAX_STEP_CHARS: usize = 300;
const MAX_STEPS: usize = 10;

/// What PagerDuty is told by one notification.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PagerEvent {
    /// Nothing (an approval's answer; a report after a first page).
    #[default]
    None,
    /// Open, or add to, the incident keyed by the incident id.
    Trigger,
    /// Close it.
    Resolve,
}

/// A change held for a person, with its two signed links.
#[derive(Clone, Debug, PartialEq)]
pub struct Held {
    pub action: String,
    pub target: String,
    pub approve: String,
    pub deny: Option<String>,
}

/// One action's outcome, for the card.
#[derive(Clone, Debug, PartialEq)]
pub struct Done {
    pub status: String,
    pub action: String,
    pub target: String,
    pub what: String,
}

/// The parts of a notification the chat card and the pager event are made of.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Card {
    pub incident_id: String,
    /// `disk_full`, `high_cpu`, ...
    pub kind: String,
    /// What fired, the metric's line, what was done: plain text, one item a
    /// line (made inert for markdown where it is shown).
    pub lines: Vec<String>,
    /// What was done, one a line after `lines`: status and action are
    /// first-responder's words (shown as such), target and detail may
    /// quote an event or an instance (made inert).
    pub actions: Vec<Done>,
    pub held: Vec<Held>,
    pub next_steps: Vec<String>,
    /// The account as on-call names it (`111122223333 (prod)`), its id, the region.
    pub account: Option<String>,
    pub account_id: Option<String>,
    pub region: Option<String>,
    /// Instance, group and volume ids.
    pub resources: Vec<String>,
    pub links: Vec<Link>,
    pub pager: PagerEvent,
    /// The key PagerDuty de-duplicates by and the chat thread: the
    /// incident id, or for a recovery notice the id of the incident it
    /// resolves, so its messages land where that one's did.
    pub dedup_key: String,
    /// PagerDuty's `source` (the instance, else the group, else the alarm),
    /// `component`, `group` (the Auto Scaling group).
    pub source: String,
    pub component: Option<String>,
    pub group: Option<String>,
    /// When it fired (RFC 3339).
    pub timestamp: Option<String>,
    /// PagerDuty's severity when it is not the page's: an escalation
    /// (a still-firing check) is `critical` there whatever it was.
    pub pager_severity: Option<&'static str>,
}

/// Text that came from an event or an instance, made inert for markdown:
/// no emphasis, no link, no mention, no HTML or Slack `<…>` sequence; one line.
pub fn inert(s: &str) -> String {
    inert_but(s, &[])
}

/// [`inert`] for a link's text, where parentheses are plain text.
fn inert_text(s: &str) -> String {
    inert_but(s, &['(', ')'])
}

fn inert_but(s: &str, plain: &[char]) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            c if plain.contains(&c) => out.push(c),
            '\\' | '*' | '_' | '~' | '[' | ']' | '(' | ')' | '#' | '|' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '`' => out.push('\''),
            // `<` opens HTML and Slack's `<!here>`, `<url|text>`; alone,
            // `>` is plain.
            '<' => out.push('‹'),
            // No @channel, @here or @someone from an event.
            '@' => out.push('＠'),
            '&' => out.push_str("and"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn cut_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let head: String = s.chars().take(max.saturating_sub(1)).collect();
    format!("{}…", head.trim_end())
}

/// `content.description`: the lines, the held changes' links as markdown
/// links, the console links; cut whole lines first, then with [`CHAT_CUT`].
pub fn chat_description(card: &Card) -> String {
    let mut parts: Vec<String> = card.lines.iter().map(|l| inert(l)).collect();
    parts.extend(card.actions.iter().map(|d| {
        format!(
            "• **{}** `{}` {}: {}",
            d.status.replace(|c: char| !c.is_ascii_alphanumeric(), " "),
            d.action
                .replace(|c: char| !(c.is_ascii_alphanumeric() || c == '_'), ""),
            inert(&d.target),
            inert(&d.what)
        )
    }));
    // Links go first after what happened: what a person acts on must
    // survive the cut.
    let mut links = Vec::new();
    for h in &card.held {
        let mut line = format!(
            "**Awaiting approval:** `{}` {}: [approve]({})",
            h.action
                .replace(|c: char| !(c.is_ascii_alphanumeric() || c == '_'), ""),
            inert(&h.target),
            h.approve
        );
        if let Some(d) = &h.deny {
            line.push_str(&format!(" · [deny]({d})"));
        }
        links.push(line);
    }
    if !card.links.is_empty() {
        let shown: Vec<String> = card
            .links
            .iter()
            .map(|l| format!("[{}]({})", inert_text(&l.text), l.href))
            .collect();
        links.push(format!("**Links:** {}", shown.join(" · ")));
    }
    let tail = links.join("\n");
    let room = MAX_CHAT_DESCRIPTION.saturating_sub(tail.chars().count() + 1);
    let mut body = String::new();
    let mut cut = false;
    for p in parts.drain(..) {
        let extra = p.chars().count() + usize::from(!body.is_empty());
        if body.chars().count() + extra + CHAT_CUT.chars().count() + 1 > room {
            cut = true;
            break;
        }
        if !body.is_empty() {
            body.push('\n');
        }
        body.push_str(&p);
    }
    if cut {
        if !body.is_empty() {
            body.push('\n');
        }
        body.push_str(CHAT_CUT);
    }
    let whole = match (body.is_empty(), tail.is_empty()) {
        (_, true) => body,
        (true, false) => tail,
        (false, false) => format!("{body}\n{tail}"),
    };
    // Held links alone past the limit (many held changes): cut hard.
    if whole.chars().count() > MAX_CHAT_DESCRIPTION {
        let head: String = whole
            .chars()
            .take(MAX_CHAT_DESCRIPTION - CHAT_CUT.chars().count())
            .collect();
        let head = head.rsplit_once('\n').map_or(head.as_str(), |(h, _)| h);
        return format!("{head}\n{CHAT_CUT}");
    }
    whole
}

/// The custom notification Amazon Q Developer in chat applications renders
/// (schema: `tests/schemas/chat-custom-notification.schema.json`). Every
/// message of an incident names it as `threadId`, so they share a thread.
pub fn chat_message(subject: &str, severity: &str, card: &Card) -> Value {
    let mut keywords = vec![card.kind.clone(), severity.to_owned()];
    keywords.extend(card.account.clone());
    keywords.extend(card.region.clone());
    // Ours, not an event's: the kind, severity, the account's configured
    // alias and a checked region.
    let keywords: Vec<String> = keywords.iter().map(|k| cut_chars(k, 75)).collect();
    let steps: Vec<String> = card
        .next_steps
        .iter()
        .take(MAX_STEPS)
        .map(|s| cut_chars(&inert(s), MAX_STEP_CHARS))
        .collect();
    let mut context = serde_json::Map::new();
    context.insert("incident_id".into(), json!(card.incident_id));
    if let Some(a) = &card.account_id {
        context.insert("account".into(), json!(a));
    }
    if let Some(r) = &card.region {
        context.insert("region".into(), json!(r));
    }
    context.insert("severity".into(), json!(severity));
    json!({
        "version": "1.0",
        "source": "custom",
        "id": format!("{}-{}", card.incident_id, short_hash(subject)),
        "content": {
            "textType": "client-markdown",
            "title": cut_chars(&inert(subject), 250),
            "description": chat_description(card),
            "nextSteps": steps,
            "keywords": keywords,
        },
        "metadata": {
            "threadId": card.dedup_key,
            "summary": cut_chars(&inert(subject), 250),
            "eventType": format!("first-responder.{}", card.kind),
            "relatedResources": card.resources,
            "additionalContext": context,
        },
    })
}

/// A short stable suffix, so two messages of one incident have two ids.
fn short_hash(s: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(s.as_bytes())[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A PagerDuty Events API v2 event for `routing_key` (None: this
/// notification tells PagerDuty nothing). `document`: the JSON document,
/// as `custom_details`.
pub fn pager_event(
    routing_key: &str,
    subject: &str,
    severity: &str,
    card: &Card,
    document: &Value,
) -> Option<Value> {
    let links: Vec<Value> = card
        .held
        .iter()
        .flat_map(|h| {
            let mut v = vec![
                json!({"href": h.approve, "text": format!("approve {} {}", h.action, h.target)}),
            ];
            if let Some(d) = &h.deny {
                v.push(json!({"href": d, "text": format!("deny {} {}", h.action, h.target)}));
            }
            v
        })
        .chain(
            card.links
                .iter()
                .map(|l| json!({"href": l.href, "text": l.text})),
        )
        .collect();
    match card.pager {
        PagerEvent::None => None,
        PagerEvent::Resolve => Some(json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": card.dedup_key,
        })),
        PagerEvent::Trigger => {
            let mut payload = json!({
                "summary": cut_chars(subject, MAX_PAGER_SUMMARY),
                "source": card.source,
                "severity": card.pager_severity.unwrap_or(severity),
                "class": card.kind,
                "custom_details": document,
            });
            for (k, v) in [
                ("timestamp", &card.timestamp),
                ("component", &card.component),
                ("group", &card.group),
            ] {
                if let Some(v) = v {
                    payload[k] = json!(v);
                }
            }
            Some(json!({
                "routing_key": routing_key,
                "event_action": "trigger",
                "dedup_key": card.dedup_key,
                "client": "first-responder",
                "payload": payload,
                "links": links,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card() -> Card {
        Card {
            incident_id: "inc-0011223344556677".into(),
            kind: "disk_full".into(),
            lines: vec!["Alarm *web* [x](http://evil) @here <!channel>".into()],
            actions: vec![Done {
                status: "awaiting_approval".into(),
                action: "expand_volume".into(),
                target: "vol-1".into(),
                what: "grow it 20 -> 30 GiB (`rm -rf`)".into(),
            }],
            held: vec![Held {
                action: "expand_volume".into(),
                target: "vol-1".into(),
                approve: "https://a.example/approve?t=1".into(),
                deny: Some("https://a.example/deny?t=1".into()),
            }],
            next_steps: vec!["Look.".into()],
            account: Some("111122223333 (prod)".into()),
            account_id: Some("111122223333".into()),
            region: Some("us-east-1".into()),
            resources: vec!["i-1".into()],
            links: vec![Link {
                text: "alarm web".into(),
                href: "https://us-east-1.console.aws.amazon.com/x".into(),
            }],
            pager: PagerEvent::Trigger,
            dedup_key: "inc-0011223344556677".into(),
            source: "i-1".into(),
            ..Card::default()
        }
    }

    #[test]
    fn event_text_is_inert_and_held_links_are_markdown_links() {
        let m = chat_message("[ALARM] Disk full", "critical", &card());
        let d = m["content"]["description"].as_str().unwrap();
        assert!(
            d.starts_with("Alarm \\*web\\* \\[x\\]\\(http://evil\\) ＠here ‹\\!channel>"),
            "{d}"
        );
        assert!(d.contains(
            "[approve](https://a.example/approve?t=1) · [deny](https://a.example/deny?t=1)"
        ));
        assert!(
            d.contains("\n• **awaiting approval** `expand_volume` vol-1: grow it 20 -> 30 GiB \\('rm -rf'\\)\n"),
            "{d}"
        );
        assert_eq!(m["metadata"]["threadId"], "inc-0011223344556677");
        assert_eq!(m["metadata"]["eventType"], "first-responder.disk_full");
        assert_eq!(m["content"]["keywords"][2], "111122223333 (prod)");
    }

    #[test]
    fn a_long_description_is_cut_and_keeps_the_links() {
        let mut c = card();
        c.lines = (0..400)
            .map(|i| format!("line {i} of the report"))
            .collect();
        let d = chat_description(&c);
        assert!(
            d.chars().count() <= MAX_CHAT_DESCRIPTION,
            "{}",
            d.chars().count()
        );
        assert!(d.contains(CHAT_CUT));
        assert!(d.contains("[approve]("));
        assert!(d.contains("**Links:**"));
    }

    #[test]
    fn the_pager_event_triggers_and_resolves_by_one_key() {
        let doc = json!({"incident_id": "inc-0011223344556677"});
        let t = pager_event("k", &"x".repeat(2_000), "warning", &card(), &doc).unwrap();
        assert_eq!(t["event_action"], "trigger");
        assert_eq!(
            t["payload"]["summary"].as_str().unwrap().chars().count(),
            1_024
        );
        assert_eq!(t["links"][0]["text"], "approve expand_volume vol-1");
        assert_eq!(t["links"].as_array().unwrap().len(), 3);
        let mut c = card();
        c.pager = PagerEvent::Resolve;
        let r = pager_event("k", "s", "info", &c, &doc).unwrap();
        assert_eq!(
            r,
            json!({"routing_key": "k", "event_action": "resolve", "dedup_key": "inc-0011223344556677"})
        );
        c.pager = PagerEvent::None;
        assert!(pager_event("k", "s", "info", &c, &doc).is_none());
    }
}
