//! Any bytes through every event parser, routing, the planner and the
//! notification, and through the webhook's request check: errors are
//! fine, panics are not.
#![no_main]

use std::sync::LazyLock;

use first_responder::config::Config;
use first_responder::incident::Routes;
use first_responder::notify::{compose, sns_message};
use first_responder::plan::{Observed, plan};
use first_responder::webhook::{Request, Token, accept};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "fuzz-token-0123456789";
static TOKEN: LazyLock<Token> = LazyLock::new(|| match Token::new("fuzz", SECRET) {
    Ok(t) => t,
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
            let req = Request { method: "POST", authorization: Some(&auth), body: Some(body), base64 };
            let _ = accept(&req, &TOKEN, &Routes::new());
        }
    }
});
