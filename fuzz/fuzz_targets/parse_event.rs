//! Any bytes through every event parser, routing, the planner and the
//! notification, through the webhook's request check, and as a query or a
//! form through the approval routes (whose answer must never be a
//! decision: nothing here is signed): errors are fine, panics are not.
#![no_main]

use std::sync::LazyLock;

use first_responder::config::Config;
use first_responder::incident::Routes;
use first_responder::notify::{compose, sns_message};
use first_responder::plan::{Observed, plan};
use first_responder::approval::Key;
use first_responder::webhook::{ApprovalRoute, Request, Token, accept, approval_route};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "fuzz-token-0123456789";
static TOKEN: LazyLock<Token> = LazyLock::new(|| match Token::new("fuzz", SECRET) {
    Ok(t) => t,
    Err(e) => panic!("{e}"),
});

static KEY: LazyLock<Key> = LazyLock::new(|| match Key::new("fuzz", "fuzz-approval-key-0123456789abcdef") {
    Ok(k) => k,
    Err(e) => panic!("{e}"),
});

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = first_responder::alert::decode(data)
        && let Ok((incidents, _)) = first_responder::respond::incidents(value, &Routes::new())
    {
        let config = Config {
            notify_topic_arn: Some("arn:aws:sns:us-east-1:123456789012:fuzz".into()),
            ..Config::default()
        };
        for incident in &incidents {
            let p = plan(incident, &Observed::nothing(), &config);
            let n = compose(&p, &[]);
            assert!(n.subject.len() <= 99 && n.subject.bytes().all(|b| b == b' ' || b.is_ascii_graphic()));
            let _ = sns_message(&n);
        }
    }
    if let Ok(body) = std::str::from_utf8(data) {
        let auth = format!("Bearer {SECRET}");
        for base64 in [false, true] {
            let req = Request {
                method: "POST",
                path: "/",
                authorization: Some(&auth),
                body: Some(body),
                base64,
                ..Default::default()
            };
            let _ = accept(&req, &TOKEN, &Routes::new(), None);
            for (method, path) in [("GET", "/approve"), ("POST", "/deny")] {
                let req = Request {
                    method,
                    path,
                    query: Some(body),
                    body: Some(body),
                    base64,
                    ..Default::default()
                };
                let route = approval_route(&req, Some(&KEY), 0);
                assert!(!matches!(route, Some(ApprovalRoute::Decide(_))), "an unsigned request decided");
            }
        }
    }
});
