use super::*;
use crate::engine::KeyCell;

fn key() -> Key {
    Key::new("test", "0123456789abcdef0123456789abcdef").unwrap()
}

fn grant() -> Grant {
    Grant {
        incident: "inc-0011223344556677".into(),
        action: "replace_instance".into(),
        target: "i-0abc1234def567890".into(),
        change: "mark i-0abc1234def567890 Unhealthy so web-asg replaces it".into(),
        done: "snapshot, collect_evidence".into(),
        expires: 1_800_000_000,
        place: String::new(),
    }
}

#[test]
fn a_signed_link_reads_back_and_checks() {
    let s = Signed::new(&key(), Verb::Approve, grant());
    let link = s.link("http://127.0.0.1:9000/lambda-url/webhook/");
    let (path, query) = link.split_once('?').unwrap();
    assert!(path.ends_with("/approve"));
    assert_eq!(Verb::from_path(path), Some(Verb::Approve));
    let back = Signed::parse(Verb::Approve, query).unwrap();
    assert_eq!(back, s);
    assert_eq!(back.check(&key(), 1_799_999_999), Ok(()));
}

#[test]
fn one_changed_character_anywhere_is_tampered() {
    let s = Signed::new(&key(), Verb::Approve, grant());
    let query = s.query();
    let mut refused = 0;
    for (i, c) in query.char_indices() {
        // Change one character of each value (keys and separators change
        // the shape, which `parse` refuses too).
        let swapped = if c == 'a' { 'b' } else { 'a' };
        let mut q = query.clone();
        q.replace_range(i..i + c.len_utf8(), &swapped.to_string());
        let verdict = Signed::parse(Verb::Approve, &q).and_then(|s| s.check(&key(), 0));
        assert!(verdict.is_err(), "changed at {i}: {q}");
        refused += 1;
    }
    assert_eq!(refused, query.chars().count());
}

#[test]
fn a_deny_link_does_not_approve() {
    let s = Signed::new(&key(), Verb::Deny, grant());
    let as_approve = Signed {
        verb: Verb::Approve,
        ..s.clone()
    };
    assert_eq!(as_approve.check(&key(), 0), Err(Refusal::Tampered));
    assert_eq!(s.check(&key(), 0), Ok(()));
}

#[test]
fn expiry_is_checked_after_the_signature() {
    let s = Signed::new(&key(), Verb::Approve, grant());
    assert_eq!(s.check(&key(), 1_800_000_000), Err(Refusal::Expired));
    let mut later = s.clone();
    later.grant.expires += 3600;
    assert_eq!(later.check(&key(), 1_800_000_000), Err(Refusal::Tampered));
    let other = Key::new("test", "another-key-of-at-least-thirty-two-chars").unwrap();
    assert_eq!(s.check(&other, 0), Err(Refusal::Tampered));
    assert_eq!(Refusal::Tampered.status(), 403);
    assert_eq!(Refusal::Expired.status(), 410);
}

#[test]
fn length_prefixes_keep_fields_apart() {
    let mut a = grant();
    a.target = "x".into();
    a.change = "yz".into();
    let mut b = grant();
    b.target = "xy".into();
    b.change = "z".into();
    assert_ne!(
        sign(&key(), Verb::Approve, &a),
        sign(&key(), Verb::Approve, &b)
    );
}

#[test]
fn missing_repeated_or_unknown_fields_are_refused() {
    let q = Signed::new(&key(), Verb::Approve, grant()).query();
    assert_eq!(
        Signed::parse(Verb::Approve, &format!("{q}&sig=00")),
        Err(Refusal::Tampered)
    );
    assert_eq!(
        Signed::parse(Verb::Approve, &format!("{q}&admin=1")),
        Err(Refusal::Tampered)
    );
    let without: String = q
        .split('&')
        .filter(|p| !p.starts_with("done="))
        .collect::<Vec<_>>()
        .join("&");
    assert_eq!(
        Signed::parse(Verb::Approve, &without),
        Err(Refusal::Tampered)
    );
    assert_eq!(
        Signed::parse(Verb::Approve, &format!("{q}&verb=deny")),
        Err(Refusal::Tampered)
    );
    assert!(Signed::parse(Verb::Approve, &format!("{q}&verb=approve")).is_ok());
}

#[test]
fn short_keys_are_refused_without_printing_them() {
    let e = Key::new("APPROVAL_KEY", "short-secret").unwrap_err();
    assert!(e.to_string().contains("APPROVAL_KEY"));
    assert!(!e.to_string().contains("short-secret"));
    assert_eq!(format!("{:?}", key()), "Key(<redacted>)");
}

#[test]
fn the_confirm_page_escapes_and_carries_the_signed_fields_in_a_post_form() {
    let mut g = grant();
    g.change = "reboot <script>alert(1)</script> \"x\"".into();
    let s = Signed::new(&key(), Verb::Approve, g);
    let p = Page::confirm(&s, 1_800_000_000 - 3000);
    assert_eq!(p.status, 200);
    assert!(!p.html.contains("<script>"));
    assert!(p.html.contains("&lt;script&gt;"));
    assert!(p.html.contains("<form method=\"post\" action=\"approve\">"));
    assert!(
        p.html
            .contains(&format!("name=\"sig\" value=\"{}\"", s.sig))
    );
    assert!(p.html.contains("(in 50 minutes)"));
    assert!(p.html.contains("snapshot, collect_evidence"));
    // What the form posts reads back as the same signed decision.
    let posted = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(p.html.split("<input type=\"hidden\" ").skip(1).map(|i| {
            let name = i
                .split("name=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            let value = i
                .split("value=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            let value = value
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&amp;", "&");
            (name.to_owned(), value)
        }))
        .finish();
    assert_eq!(Signed::parse(Verb::Approve, &posted).unwrap(), s);
}

#[test]
fn the_approval_event_reads_back() {
    let r = Request {
        first_responder_approval: Decision {
            signed: Signed::new(&key(), Verb::Deny, grant()),
            source_ip: "127.0.0.1".into(),
            user_agent: "curl/8".into(),
        },
    };
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(Request::from_event(&v), Some(r));
    assert_eq!(
        Request::from_event(&serde_json::json!({"alerts": []})),
        None
    );
}

const OLD: &str = "old-key-0123456789abcdef0123456789ab";
const NEW: &str = "new-key-0123456789abcdef0123456789ab";

#[test]
fn a_rotation_signs_with_the_current_key_and_accepts_the_previous() {
    let old = Key::new("t", OLD).unwrap();
    let rotating = Key::new("t", &format!("{NEW} {OLD}")).unwrap();
    let done = Key::new("t", NEW).unwrap();
    assert!(rotating.rotating() && !done.rotating());
    let sent_before = Signed::new(&old, Verb::Approve, grant());
    let sent_during = Signed::new(&rotating, Verb::Approve, grant());
    // Signed with the current key: the new one.
    assert_eq!(
        sent_during.sig,
        Signed::new(&done, Verb::Approve, grant()).sig
    );
    // During the rotation a link sent before it still works.
    assert_eq!(sent_before.check(&rotating, 0), Ok(()));
    assert_eq!(sent_during.check(&rotating, 0), Ok(()));
    // Once the previous key is removed, its links are revoked.
    assert_eq!(sent_before.check(&done, 0), Err(Refusal::Tampered));
    assert_eq!(sent_during.check(&done, 0), Ok(()));
    // Three keys, or a short one, are refused without printing them.
    let e = Key::new("p", &format!("{NEW} {OLD} {OLD}")).unwrap_err();
    assert!(
        e.to_string().contains("found 3") && !e.to_string().contains("key-0123"),
        "{e}"
    );
    let e = Key::new("p", &format!("{NEW} short")).unwrap_err();
    assert!(e.to_string().contains("at least 32 characters"), "{e}");
}

/// Both functions re-read the key once it is older than
/// APPROVAL_KEY_TTL_SECONDS: a rotation needs no redeploy, and a key that
/// cannot be read keeps the one in use.
#[cfg(feature = "aws")]
#[tokio::test]
async fn the_key_is_read_again_after_its_ttl() {
    use aws_sdk_ssm::Client;
    use aws_sdk_ssm::operation::get_parameter::GetParameterOutput;
    use aws_sdk_ssm::types::Parameter;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    let value = |v: &'static str| {
        move || {
            GetParameterOutput::builder()
                .parameter(Parameter::builder().value(v).build())
                .build()
        }
    };
    let reads = mock!(Client::get_parameter)
        .sequence()
        .output(value(OLD))
        .output(value(NEW_AND_OLD))
        .error(|| {
            aws_sdk_ssm::operation::get_parameter::GetParameterError::ParameterNotFound(
                aws_sdk_ssm::types::error::ParameterNotFound::builder().build(),
            )
        })
        .build();
    let ssm = mock_client!(aws_sdk_ssm, RuleMode::Sequential, [&reads]);
    let cell = KeyCell::new(ssm);
    let mut config = crate::config::Config {
        approval_key_parameter: Some("/first-responder/approval-key".into()),
        ..Default::default()
    };
    let first = cell.get(&config).await.unwrap();
    // Within the TTL: the same key, no read.
    assert_eq!(cell.get(&config).await.unwrap(), first);
    assert_eq!(reads.num_calls(), 1);
    config.approval_key_ttl = std::time::Duration::ZERO;
    let second = cell.get(&config).await.unwrap();
    assert!(second.rotating() && second != first);
    // The parameter cannot be read: the key in use stays.
    assert_eq!(cell.get(&config).await.unwrap(), second);
    assert_eq!(reads.num_calls(), 3);
}

const NEW_AND_OLD: &str =
    "new-key-0123456789abcdef0123456789ab old-key-0123456789abcdef0123456789ab";
