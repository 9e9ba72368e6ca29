use super::*;
use base64::Engine;
use serde_json::Value;

const TOKEN: &str = "s3cret-token-for-tests-0001";
const AM: &str = include_str!("../../../events/alertmanager-high-cpu.json");

fn token() -> Token {
    Token::new("t", TOKEN).unwrap()
}

fn req<'a>(auth: Option<&'a str>, body: &'a str) -> Request<'a> {
    Request {
        method: "POST",
        path: "/",
        authorization: auth,
        body: Some(body),
        base64: false,
        ..Default::default()
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
        status(accept(&req(Some(&good), AM), &token(), &routes, None)),
        202
    );
    assert_eq!(
        status(accept(&req(Some(&lower), AM), &token(), &routes, None)),
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
            status(accept(&req(bad, AM), &token(), &routes, None)),
            401,
            "{bad:?}"
        );
    }
    // Authentication comes first: an unauthenticated huge or broken body is still 401.
    assert_eq!(
        status(accept(
            &req(None, &"x".repeat(MAX_BODY_BYTES + 10)),
            &token(),
            &routes,
            None
        )),
        401
    );
    assert_eq!(
        status(accept(&req(None, "{"), &token(), &routes, None)),
        401
    );
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
            req(a, include_str!("../../../events/high-cpu-alarm.json")),
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
        let got = accept(&r, &token(), &routes, None);
        assert_eq!(status(got.clone()), want, "{body}");
        if let Err(reply) = got {
            let reason = reply.body["error"].as_str().unwrap().to_owned();
            assert!(!reason.contains('\n') && !reason.is_empty(), "{reason}");
        }
    }
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_BODY_BYTES));
    assert_eq!(status(accept(&req(a, &big), &token(), &routes, None)), 413);
    let big64 = base64::engine::general_purpose::STANDARD.encode(big.as_bytes());
    assert_eq!(
        status(accept(
            &Request {
                base64: true,
                ..req(a, &big64)
            },
            &token(),
            &routes,
            None
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
            &routes,
            None
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
        None,
    )
    .unwrap();
    assert_eq!(acc.handoffs.len(), 1);
}

#[test]
fn duplicates_become_one_handoff_with_one_alert() {
    let auth = format!("Bearer {TOKEN}");
    let acc = accept(&req(Some(&auth), AM), &token(), &Routes::new(), None).unwrap();
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
    let got = accept(&req(Some(&auth), &v.to_string()), &token(), &routes, None);
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
        status(accept(
            &req(Some(&auth), &v.to_string()),
            &token(),
            &routes,
            None
        )),
        400
    );
    // Unknown keys in the envelope and in the alert are dropped.
    let mut v: Value = serde_json::from_str(AM).unwrap();
    v["detail"] = json!({"AutoScalingGroupName": "payments"});
    v["alerts"][0]["detail-type"] = "CloudWatch Alarm State Change".into();
    v["alerts"][0]["extra"] = "x".repeat(1000).into();
    let acc = accept(&req(Some(&auth), &v.to_string()), &token(), &routes, None).unwrap();
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
    // The rule's page and Alertmanager's address, as checked links.
    assert_eq!(
        keys,
        [
            "annotations",
            "externalURL",
            "fingerprint",
            "generatorURL",
            "labels",
            "startsAt",
            "status"
        ]
    );
    let mut bad = v.clone();
    bad["alerts"][0]["generatorURL"] = "javascript:alert(1)".into();
    bad["externalURL"] = "http://am.example/\"><script>".into();
    let acc = accept(&req(Some(&auth), &bad.to_string()), &token(), &routes, None).unwrap();
    let payload: Value = serde_json::from_slice(&acc.handoffs[0].payload).unwrap();
    assert!(payload["alerts"][0].get("generatorURL").is_none());
    assert!(payload["alerts"][0].get("externalURL").is_none());
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
    let acc = accept(&req(Some(&auth), &v.to_string()), &token(), &routes, None).unwrap();
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
    let reply = accept(&req(Some(&auth), &v.to_string()), &token(), &routes, None).unwrap_err();
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
    let acc = accept(&req(Some(&auth), &body), &token(), &Routes::new(), None).unwrap();
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
            home: None,
            responder: "responder".into(),
            lambda,
            refusals: Refusals::new(std::time::Duration::from_secs(60)),
            approval_key: None,
            approval_refresh: None,
            approval_wait: APPROVAL_WAIT,
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
        let rule =
            mock!(Client::invoke).then_output(|| InvokeOutput::builder().status_code(202).build());
        let lambda = mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&rule]);
        let w = webhook(lambda);
        assert_eq!(w.handle(&req(None, AM)).await.status, 401);
        let auth = post();
        assert_eq!(w.handle(&req(Some(&auth), "{}")).await.status, 400);
        assert_eq!(rule.num_calls(), 0);
    }
}

#[test]
fn a_grafana_payload_is_handed_on_with_its_value_as_an_annotation() {
    let body = include_str!("../../../events/grafana-high-cpu.json");
    let good = format!("Bearer {TOKEN}");
    let mut routes = Routes::new();
    routes.insert(
        "High CPU usage".into(),
        crate::incident::IncidentKind::HighCpu,
    );
    let a = accept(&req(Some(&good), body), &token(), &routes, None).unwrap();
    assert_eq!(a.handoffs.len(), 1);
    assert_eq!(a.handoffs[0].kind, "high_cpu");
    let sent: serde_json::Value = serde_json::from_slice(&a.handoffs[0].payload).unwrap();
    assert_eq!(sent["version"], "1");
    assert_eq!(sent["alerts"][0]["annotations"]["value"], "95.3");
    // Grafana's own fields stay behind; the responder reads the same alert.
    assert!(sent["alerts"][0].get("values").is_none(), "{sent}");
    assert!(sent.get("orgId").is_none(), "{sent}");
    let again = crate::alert::parse_event(&a.handoffs[0].payload).unwrap();
    assert_eq!(
        (again[0].alarm_name.as_str(), again[0].value),
        ("High CPU usage", Some(95.3))
    );
}

mod approvals {
    use super::*;
    use crate::approval::{Grant, Key, Signed, Verb};

    fn key() -> Key {
        Key::new("test", "0123456789abcdef0123456789abcdef").unwrap()
    }

    fn signed(verb: Verb) -> Signed {
        Signed::new(
            &key(),
            verb,
            Grant {
                incident: "inc-0011223344556677".into(),
                action: "reboot".into(),
                target: "i-0abc1234def567890".into(),
                change: "reboot i-0abc1234def567890".into(),
                done: "snapshot".into(),
                expires: 2_000,
                place: String::new(),
            },
        )
    }

    fn route(method: &str, path: &str, query: &str, body: &str, now: i64) -> ApprovalRoute {
        let r = Request {
            method,
            path,
            query: Some(query),
            body: Some(body),
            source_ip: "198.51.100.7",
            user_agent: "Mozilla/5.0",
            ..Default::default()
        };
        approval_route(&r, Some(&key()), now).expect("an approval route")
    }

    fn status(r: &ApprovalRoute) -> u16 {
        match r {
            ApprovalRoute::Answer(r) => r.status,
            ApprovalRoute::Decide(_) => 0,
        }
    }

    #[test]
    fn other_paths_are_not_approval_routes_and_need_the_token() {
        let r = req(None, AM);
        assert_eq!(approval_route(&r, Some(&key()), 0), None);
        assert_eq!(status_of(&r), 401);
    }

    fn status_of(r: &Request<'_>) -> u16 {
        match accept(r, &token(), &Routes::new(), None) {
            Ok(_) => 202,
            Err(e) => e.status,
        }
    }

    #[test]
    fn a_get_shows_the_page_and_never_decides() {
        let s = signed(Verb::Approve);
        for method in ["GET", "HEAD"] {
            let r = route(method, "/lambda-url/webhook/approve", &s.query(), "", 1_000);
            let ApprovalRoute::Answer(reply) = r else {
                panic!("a {method} decided")
            };
            assert_eq!(reply.status, 200);
            let html = reply.html.unwrap();
            assert!(html.contains("reboot i-0abc1234def567890"));
            assert!(html.contains("<form method=\"post\" action=\"approve\">"));
        }
    }

    #[test]
    fn a_post_of_the_form_decides_with_who_sent_it() {
        let s = signed(Verb::Deny);
        let r = route("POST", "/deny", "", &s.query(), 1_000);
        let ApprovalRoute::Decide(d) = r else {
            panic!("not decided: {r:?}")
        };
        assert_eq!(d.first_responder_approval.signed, s);
        assert_eq!(d.first_responder_approval.source_ip, "198.51.100.7");
        assert_eq!(d.first_responder_approval.user_agent, "Mozilla/5.0");
        let b64 = base64::engine::general_purpose::STANDARD.encode(s.query());
        let r = Request {
            method: "POST",
            path: "/deny",
            body: Some(&b64),
            base64: true,
            ..Default::default()
        };
        assert!(matches!(
            approval_route(&r, Some(&key()), 1_000),
            Some(ApprovalRoute::Decide(_))
        ));
    }

    #[test]
    fn tampered_expired_wrong_route_and_methods_are_refused() {
        let s = signed(Verb::Approve);
        let q = s.query().replace("reboot+i-0abc", "reboot+i-0abd");
        assert_eq!(status(&route("POST", "/approve", "", &q, 1_000)), 403);
        assert_eq!(status(&route("GET", "/approve", &q, "", 1_000)), 403);
        assert_eq!(
            status(&route("POST", "/approve", "", &s.query(), 2_000)),
            410
        );
        assert_eq!(
            status(&route("GET", "/approve", &s.query(), "", 2_000)),
            410
        );
        // The approve link's fields posted to /deny: another decision, refused.
        assert_eq!(status(&route("POST", "/deny", "", &s.query(), 1_000)), 403);
        assert_eq!(
            status(&route("PUT", "/approve", "", &s.query(), 1_000)),
            405
        );
        let r = Request {
            method: "GET",
            path: "/approve",
            query: Some(&s.query()),
            ..Default::default()
        };
        match approval_route(&r, None, 1_000) {
            Some(ApprovalRoute::Answer(r)) => assert_eq!(r.status, 404),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_group_of_ten_thousand_alerts_is_accepted_whole() {
    // Some 4.7 MB: past the responder's 1 MiB event bound, within the
    // webhook's (a Function URL request's 6 MB). Each distinct alert once
    // an incident; the repeats are duplicates.
    let mut v: serde_json::Value = serde_json::from_str(AM).unwrap();
    let one = v["alerts"][0].clone();
    let alerts: Vec<serde_json::Value> = (0..10_000)
        .map(|i| {
            let mut a = one.clone();
            let k = i % 1_000;
            a["labels"]["instance"] = format!("10.0.{}.{}:9100", k / 250, k % 250).into();
            a["fingerprint"] = format!("{k:016x}").into();
            a
        })
        .collect();
    v["alerts"] = alerts.into();
    let body = v.to_string();
    assert!(
        body.len() > 4_000_000 && body.len() < MAX_BODY_BYTES,
        "{}",
        body.len()
    );
    let auth = format!("Bearer {TOKEN}");
    let got = accept(&req(Some(&auth), &body), &token(), &Routes::new(), None).expect("accepted");
    assert_eq!(got.alerts, 10_000);
    assert_eq!(got.handoffs.len(), 1_000);
    assert_eq!(got.duplicates, 9_000);
}

#[test]
fn a_token_acts_only_in_the_accounts_it_is_bound_to() {
    use crate::ids::AccountId;
    let home = AccountId::parse("h", "111111111111").unwrap();
    let tokens = Token::rotating(
        "p",
        "token-of-team-a-00001@222222222222 token-bound-to-none-001",
    )
    .unwrap();
    let body = |account: Option<&str>| -> String {
        let mut v: Value = serde_json::from_str(AM).unwrap();
        for a in v["alerts"].as_array_mut().unwrap() {
            match account {
                Some(x) => a["labels"]["account_id"] = json!(x),
                None => {
                    a["labels"].as_object_mut().unwrap().remove("account_id");
                }
            }
        }
        v.to_string()
    };
    let run = |t: &str, account: Option<&str>| {
        let auth = format!("Bearer {t}");
        accept(
            &req(Some(&auth), &body(account)),
            &tokens,
            &Routes::new(),
            Some(&home),
        )
    };
    // Bound to A: acts in A, not in B nor (unlisted) at home.
    assert!(run("token-of-team-a-00001", Some("222222222222")).is_ok());
    let refused = run("token-of-team-a-00001", Some("333333333333")).unwrap_err();
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    let why = refused.body["error"].as_str().unwrap();
    assert!(
        why.contains("the alert names account \"333333333333\", and this token may act only in 222222222222: refused"),
        "{why}"
    );
    assert_eq!(
        refused.body["rejected"][0]["field"],
        "alerts[0].labels.account_id"
    );
    assert_eq!(run("token-of-team-a-00001", None).unwrap_err().status, 403);
    // Bound to none: the home account only.
    assert!(run("token-bound-to-none-001", None).is_ok());
    assert!(run("token-bound-to-none-001", Some("111111111111")).is_ok());
    let refused = run("token-bound-to-none-001", Some("222222222222")).unwrap_err();
    assert_eq!(refused.status, 403);
    assert!(
        refused.body["error"].as_str().unwrap().contains(
            "this token is bound to no account, so it acts only in the home account (111111111111)"
        ),
        "{:?}",
        refused.body
    );
    // A binding that is not an account id stops the start, without the token.
    let e = Token::rotating("p", "token-of-team-a-00001@prod").unwrap_err();
    assert!(e.to_string().contains("after the token's `@`"), "{e}");
    assert!(!e.to_string().contains("team-a"), "{e}");
}

#[test]
fn one_refused_alert_does_not_drop_the_others() {
    use crate::ids::AccountId;
    let home = AccountId::parse("h", "111111111111").unwrap();
    let mut v: Value = serde_json::from_str(AM).unwrap();
    // Two different alerts: one names B, the other nothing.
    let alerts = v["alerts"].as_array_mut().unwrap();
    alerts[0]["labels"]["account_id"] = json!("222222222222");
    alerts[1]["fingerprint"] = json!("0000000000000002");
    alerts[1]["labels"]["instance"] = json!("10.0.9.9:9100");
    let auth = format!("Bearer {TOKEN}");
    let acc = accept(
        &req(Some(&auth), &v.to_string()),
        &token(),
        &Routes::new(),
        Some(&home),
    )
    .unwrap();
    assert_eq!(acc.handoffs.len(), 1);
    assert_eq!(acc.rejected.len(), 1);
    assert_eq!(acc.rejected[0].field, "alerts[0].labels.account_id");
}
