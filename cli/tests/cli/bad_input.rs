//! The bad-input corpus (tests/corpus/bad, made by tests/corpus/generate.py):
//! every file exits 2 from `first-responder run` with one line naming the
//! field, every Alertmanager-shaped one gets a 4xx from the webhook, and the
//! emulated account is left exactly as it was.

use std::process::Command;

use anyhow::{Context, Result};
use first_responder::incident::Routes;
use first_responder::webhook::{Request, Token, accept};
use harness::{
    FleetSpec, Moto, aws_env, desired_capacity, drain, root, seed, snapshots, ssm_commands,
};

const BIN: &str = env!("CARGO_BIN_EXE_first-responder");

struct Case {
    file: String,
    webhook: bool,
    expect: String,
}

fn corpus() -> Result<Vec<Case>> {
    let dir = root().join("tests/corpus/bad");
    let index = std::fs::read_to_string(dir.join("expected.tsv"))?;
    index
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let mut parts = l.splitn(3, '\t');
            let (Some(file), Some(webhook), Some(expect)) =
                (parts.next(), parts.next(), parts.next())
            else {
                anyhow::bail!("bad index line {l:?}");
            };
            Ok(Case {
                file: dir.join(file).display().to_string(),
                webhook: webhook == "yes",
                expect: expect.to_owned(),
            })
        })
        .collect()
}

#[tokio::test]
async fn every_bad_payload_is_refused_and_nothing_changes() -> Result<()> {
    let moto = Moto::start()?;
    let sdk = moto.sdk().await;
    let fleet = seed(&sdk, FleetSpec::default()).await?;
    let cases = corpus()?;
    assert!(cases.len() >= 50, "the corpus has {} cases", cases.len());

    // One oversized event, made here rather than committed.
    let big = std::env::temp_dir().join(format!(
        "first-responder-oversized-{}.json",
        std::process::id()
    ));
    std::fs::write(
        &big,
        format!("{{\"detail-type\":\"{}\"}}", "x".repeat(1024 * 1024 + 1)),
    )?;
    let mut all: Vec<(String, String)> = cases
        .iter()
        .map(|c| (c.file.clone(), c.expect.clone()))
        .collect();
    all.push((
        big.display().to_string(),
        "more than the 1048576 accepted".into(),
    ));

    for (file, expect) in &all {
        let mut cmd = Command::new(BIN);
        cmd.args(["run", file])
            .env_clear()
            .env("NOTIFY_TOPIC_ARN", &fleet.topic_arn);
        for (k, v) in aws_env(&moto.endpoint) {
            cmd.env(k, v);
        }
        let out = cmd.output().context("running first-responder")?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{file}: {stderr}");
        assert!(
            stderr.contains(expect.as_str()),
            "{file}: expected {expect:?} in {stderr}"
        );
        assert!(out.stdout.is_empty(), "{file}: printed a report");
    }

    let token = Token::new("test", "corpus-test-token-000000")?;
    let auth = "Bearer corpus-test-token-000000";
    let mut webhook_cases = 0;
    for c in cases.iter().filter(|c| c.webhook) {
        let body = std::fs::read_to_string(&c.file)?;
        let reply = accept(
            &Request {
                method: "POST",
                authorization: Some(auth),
                body: Some(&body),
                base64: false,
                path: "/",
                ..Default::default()
            },
            &token,
            &Routes::new(),
            None,
        )
        .err()
        .with_context(|| format!("{} was accepted by the webhook", c.file))?;
        assert_eq!(reply.status, 400, "{}", c.file);
        let reason = reply.body["error"].as_str().unwrap_or_default();
        assert!(
            reason.contains(c.expect.as_str()) && !reason.contains('\n'),
            "{}: {reason}",
            c.file
        );
        webhook_cases += 1;
    }
    assert!(webhook_cases >= 20, "{webhook_cases}");

    // The account is as seeded: nothing created, changed or sent.
    assert!(snapshots(&sdk).await?.is_empty());
    assert!(ssm_commands(&sdk).await?.is_empty());
    assert_eq!(desired_capacity(&sdk, &fleet.group).await?, 1);
    assert!(drain(&sdk, &fleet.inbox_queue_url).await?.is_empty());
    assert!(drain(&sdk, &fleet.pager_queue_url).await?.is_empty());
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    assert!(
        ec2.describe_volumes_modifications()
            .send()
            .await?
            .volumes_modifications()
            .is_empty()
    );
    let _ = std::fs::remove_file(&big);
    println!(
        "{} payloads refused by the CLI, {webhook_cases} by the webhook, 0 changes in the account",
        all.len()
    );
    Ok(())
}
