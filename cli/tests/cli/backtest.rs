//! `first-responder backtest` on a month of history made by
//! tests/backtest/generate.py (five alarms, 210 changes into ALARM, shaped
//! like `describe-alarm-history`; and Alertmanager payloads), against the
//! fleet in moto. The expected counts are worked out by hand from the
//! schedule and the limits (comments below); the run changes nothing.

use std::process::Command;

use anyhow::{Context, Result};
use harness::{FleetSpec, Moto, aws_env, fleet_state, seed};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_first-responder");

fn backtest(moto: &Moto, cloudwatch: &str, args: &[&str]) -> Result<std::process::Output> {
    backtest_with(moto, cloudwatch, args, true)
}

/// With `limits_only`, chronic problems are left out (a playbooks file
/// with `chronic_after` out of reach), so the counts below are the limits'.
fn backtest_with(
    moto: &Moto,
    cloudwatch: &str,
    args: &[&str],
    limits_only: bool,
) -> Result<std::process::Output> {
    let mut cmd = Command::new(BIN);
    cmd.arg("backtest")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in aws_env(&moto.endpoint) {
        cmd.env(k, v);
    }
    cmd.env("AWS_ENDPOINT_URL_CLOUDWATCH", cloudwatch)
        // A small breaker, so that one burst reaches it (below).
        .env("MAX_MUTATIONS_PER_HOUR", "5");
    if limits_only {
        let file = std::env::temp_dir().join(format!("fr-backtest-pb-{}.toml", std::process::id()));
        std::fs::write(
            &file,
            format!(
                "chronic_after = \"10000 in 1h\"\n{}",
                first_responder::playbook::DEFAULT_TEXT
            ),
        )?;
        cmd.env("PLAYBOOKS_FILE", file);
    }
    Ok(cmd.output()?)
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_month_of_history_replays_with_the_counts_the_limits_imply() -> Result<()> {
    let moto = Moto::start()?;
    let sdk = moto.sdk().await;
    let fleet = seed(&sdk, FleetSpec::default()).await?;
    // An instance without the opt-in tag, in no group.
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let image = harness::moto_image(&ec2).await?;
    let batch = ec2
        .run_instances()
        .image_id(image)
        .min_count(1)
        .max_count(1)
        .send()
        .await?
        .instances()
        .first()
        .and_then(|i| i.instance_id())
        .context("no instance")?
        .to_owned();
    let dir = std::env::temp_dir().join(format!("fr-backtest-{}", std::process::id()));
    let made = Command::new("python3")
        .arg(harness::root().join("tests/backtest/generate.py"))
        .arg(&dir)
        .arg(fleet.instance())
        .arg(&batch)
        .output()?;
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let history = dir.join("history.json").display().to_string();
    let alarms = dir.join("alarms.json").display().to_string();
    let am = dir.join("alertmanager.jsonl").display().to_string();
    // The same definitions in CloudWatch, for the run without --alarms.
    let bridge = harness::cloudwatch::CloudWatchBridge::start(&moto.endpoint).await?;
    let cw = bridge.client(&sdk);
    let defs: Value = serde_json::from_str(&std::fs::read_to_string(&alarms)?)?;
    for a in defs["MetricAlarms"].as_array().context("no alarms")? {
        let dims: Vec<(&str, &str)> = a["Dimensions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| {
                (
                    d["Name"].as_str().unwrap_or(""),
                    d["Value"].as_str().unwrap_or(""),
                )
            })
            .collect();
        harness::put_alarm(
            &cw,
            a["AlarmName"].as_str().unwrap_or(""),
            a["Namespace"].as_str().unwrap_or(""),
            a["MetricName"].as_str().unwrap_or(""),
            &dims,
            300,
            a["Threshold"].as_f64().unwrap_or(0.0),
            "OK",
        )
        .await?;
    }
    let before = fleet_state(&sdk).await?;

    let out = backtest(
        &moto,
        &bridge.endpoint,
        &[&history, &am, "--alarms", &alarms, "--json"],
    )?;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: Value = serde_json::from_slice(&out.stdout)?;

    // 210 changes into ALARM (each ALARM -> OK after it and the noise are
    // not replayed) and Alertmanager's 2 occurrences (the repeat is one).
    assert_eq!(j["transitions"], 212, "{j:#}");
    // The 2 Alertmanager alerts have no playbook.
    assert_eq!(j["incidents"], 210);
    assert!(
        j["unroutable"]["NodeClockSkew"]
            .as_str()
            .unwrap_or("")
            .contains("no playbook"),
        "{j:#}"
    );
    let alarm = |name: &str, action: &str| j["alarms"][name]["actions"][action].clone();

    // web-high-cpu: 60, twelve hours apart: every scale-out runs.
    assert_eq!(j["alarms"]["web-high-cpu"]["incidents"], 60);
    let x = alarm("web-high-cpu", "scale_out");
    assert_eq!(
        (
            n(&x["would_run"]),
            x["suppressed"].as_object().map_or(0, |m| m.len())
        ),
        (60, 0),
        "{x}"
    );
    assert_eq!(alarm("web-high-cpu", "snapshot")["would_run"], 60);

    // web-cpu-storm: bursts of 10 two minutes apart. Per burst: the first
    // runs (cooldown 10 min, flap count 1); at +2, +4, +6, +8 the cooldown
    // refuses (the flap guard counts +2 and +4, then is full at 3); from
    // +10 the cooldown is over but the flap guard refuses, 5 times. Times 5.
    let x = alarm("web-cpu-storm", "scale_out");
    assert_eq!(n(&x["would_run"]), 5, "{x}");
    assert_eq!(n(&x["suppressed"]["cooldown"]), 20, "{x}");
    assert_eq!(n(&x["suppressed"]["flap_guard"]), 25, "{x}");
    // Evidence and diagnostics are never held back.
    assert_eq!(alarm("web-cpu-storm", "snapshot")["would_run"], 50);
    assert_eq!(
        alarm("web-cpu-storm", "collect_diagnostics")["would_run"],
        50
    );

    // web-disk-full: bursts of 3 at 12:01-12:03, after web-high-cpu's
    // scale-out at 12:00 (breaker 1 of 5). 12:01: the cleanup (2), the log
    // archive (3) and the volume (4) run; 12:02: the cleanup runs (5), the
    // breaker is full for the archive, the volume's 24 h cooldown refuses it
    // (cooldowns are checked first); 12:03: the breaker refuses the cleanup
    // and the archive, the cooldown the volume. Times 10.
    let x = alarm("web-disk-full", "cleanup_temp");
    assert_eq!(n(&x["would_run"]), 20, "{x}");
    assert_eq!(n(&x["suppressed"]["breaker"]), 10, "{x}");
    let x = alarm("web-disk-full", "archive_logs");
    assert_eq!(n(&x["would_run"]), 10, "{x}");
    assert_eq!(n(&x["suppressed"]["breaker"]), 20, "{x}");
    let x = alarm("web-disk-full", "expand_volume");
    assert_eq!(n(&x["would_run"]), 10, "{x}");
    assert_eq!(n(&x["suppressed"]["cooldown"]), 20, "{x}");

    // web-service-down: replacing the group's instance waits for a person
    // (the shipped playbook), 30 times; the reboot is not for group members.
    let x = alarm("web-service-down", "replace_instance");
    assert_eq!(n(&x["held_for_approval"]), 30, "{x}");
    assert_eq!(n(&x["would_run"]), 0, "{x}");
    assert_eq!(
        n(&alarm("web-service-down", "reboot")["suppressed"]["other"]),
        30
    );
    assert_eq!(alarm("web-service-down", "snapshot")["would_run"], 30);

    // batch-high-cpu: no opt-in tag: no snapshot, no commands; no group.
    let x = alarm("batch-high-cpu", "snapshot");
    assert_eq!(n(&x["suppressed"]["opt_in"]), 40, "{x}");
    assert_eq!(
        n(&alarm("batch-high-cpu", "collect_diagnostics")["suppressed"]["opt_in"]),
        40
    );
    assert_eq!(
        n(&alarm("batch-high-cpu", "scale_out")["suppressed"]["other"]),
        40
    );

    // Overall is the sum.
    let o = &j["actions"];
    assert_eq!(n(&o["scale_out"]["would_run"]), 65);
    assert_eq!(n(&o["scale_out"]["suppressed"]["flap_guard"]), 25);
    assert_eq!(n(&o["snapshot"]["would_run"]), 60 + 50 + 30);
    assert_eq!(n(&o["replace_instance"]["held_for_approval"]), 30);
    // The busiest hour: a storm burst (10) plus nothing else at 06:00.
    assert_eq!(j["busiest_hour"]["transitions"], 10, "{j:#}");
    assert_eq!(j["busiest_hour"]["hour"], "2026-10-30T06:00Z");

    // Without --alarms the definitions come from DescribeAlarms: the same result.
    let out = backtest(&moto, &bridge.endpoint, &[&history, &am, "--json"])?;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(again, j);

    // The text names the alarms, the limits and the busiest hour.
    let out = backtest(
        &moto,
        &bridge.endpoint,
        &[&history, &am, "--alarms", &alarms],
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("backtest: 212 transitions into ALARM/firing from 2026-10-29T00:00:00Z"),
        "{text}"
    );
    assert!(text.contains("alarm web-cpu-storm: 50 transitions, 50 incidents, busiest hour 2026-10-30T06:00Z (10 transitions)"), "{text}");
    assert!(
        text.contains("suppressed cooldown 20, flap_guard 25"),
        "{text}"
    );
    assert!(
        text.contains("could not route:\n  NodeClockSkew: no playbook"),
        "{text}"
    );

    // With the shipped chronic_after (3 in 7d), twice-daily scale-outs of
    // one instance are a chronic problem: the fourth within a week is
    // stopped and counted as such, never run.
    let out = backtest_with(
        &moto,
        &bridge.endpoint,
        &[&history, &am, "--alarms", &alarms, "--json"],
        false,
    )?;
    let c: Value = serde_json::from_slice(&out.stdout)?;
    let x = &c["alarms"]["web-high-cpu"]["actions"]["scale_out"];
    let chronic = n(&x["suppressed"]["chronic"]);
    // Days 0 and 1 (four occurrences, 12 h apart): three run, the fourth is
    // chronic; at most three run in any 7 days after that.
    assert!(chronic >= 4 && n(&x["would_run"]) <= 60 - chronic, "{x}");
    assert_eq!(n(&x["would_run"]) + chronic, 60, "{x}");
    assert_eq!(
        n(&c["actions"]["snapshot"]["would_run"]),
        60 + 50 + 30,
        "evidence is never stopped"
    );

    // Nothing was changed.
    assert_eq!(fleet_state(&sdk).await?, before);
    // Bad input is refused before AWS is asked anything.
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{\"nope\": 1}\n")?;
    let out = backtest(&moto, &bridge.endpoint, &[&bad.display().to_string()])?;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("line 1: neither describe-alarm-history output")
    );
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

/// `backtest --recorded --since 90d` replays what the responder recorded in
/// the state table. The schedule: web-high-cpu into ALARM every 2 days from
/// 88 days ago to 2 days ago (44 times), each back to OK an hour later, and
/// once 100 days ago (outside the 90 days). With the shipped chronic_after
/// (3 in 7d) the replay's own scale-outs decide: at days 0, 2, 4 it runs; at
/// day 6 three runs lie within the week before, so it is stopped (chronic);
/// at day 8 only days 2 and 4 are within it (day 6 did not run), so it runs;
/// days 10 and 12 run likewise; day 14 sees 8, 10, 12 and is stopped. One
/// in every four: 11 of the 44 chronic, 33 run. The evidence runs all 44.
#[tokio::test(flavor = "multi_thread")]
async fn the_recorded_history_replays_a_quarter() -> Result<()> {
    let moto = Moto::start()?;
    let sdk = moto.sdk().await;
    let fleet = seed(
        &sdk,
        FleetSpec {
            max: 100,
            ..FleetSpec::default()
        },
    )
    .await?;
    let st = first_responder::state::StateStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        &fleet.state_table,
    );
    let now = chrono::Utc::now().timestamp();
    let record = |at: i64, old: &'static str, new: &'static str| {
        let ts = chrono::DateTime::from_timestamp(at, 0)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string())
            .unwrap_or_default();
        (ts, at, old, new)
    };
    let mut all = vec![record(now - 100 * 86_400, "OK", "ALARM")];
    for k in 0..44 {
        let at = now - (88 - 2 * k) * 86_400;
        all.push(record(at, "OK", "ALARM"));
        all.push(record(at + 3_600, "ALARM", "OK"));
    }
    for (ts, at, old, new) in &all {
        let t = first_responder::state::track::Transition {
            alarm: "web-high-cpu",
            timestamp: ts,
            at: *at,
            old,
            new,
            reason: "Threshold Crossed: 1 datapoint [95.3] was greater than or equal to the threshold (80.0).",
            value: Some(95.3),
            threshold: Some(80.0),
        };
        st.record_transition(&t, 400)
            .await
            .map_err(anyhow::Error::msg)?;
    }
    // One Alertmanager occurrence, kept as its payload: a transition with no
    // playbook (the sample's rule routes to high_cpu by name, but its
    // instance is an address no VPC here has: planned, nothing to act on).
    let am = std::fs::read_to_string(harness::root().join("events/alertmanager-high-cpu.json"))?;
    st.record_payload("inc-00000000000000aa", now - 86_400, &am, 400)
        .await
        .map_err(anyhow::Error::msg)?;
    let dir = std::env::temp_dir().join(format!("fr-recorded-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let alarms = dir.join("alarms.json");
    std::fs::write(
        &alarms,
        serde_json::json!({"MetricAlarms": [{
            "AlarmName": "web-high-cpu",
            "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:web-high-cpu",
            "Namespace": "AWS/EC2", "MetricName": "CPUUtilization", "Statistic": "Average",
            "Dimensions": [{"Name": "InstanceId", "Value": fleet.instance()}],
            "Period": 300, "EvaluationPeriods": 1, "Threshold": 80.0,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold", "StateValue": "OK"
        }]})
        .to_string(),
    )?;
    let mut cmd = Command::new(BIN);
    cmd.args([
        "backtest",
        "--recorded",
        "--since",
        "90d",
        "--json",
        "--alarms",
    ])
    .arg(&alarms)
    .env_clear()
    .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in aws_env(&moto.endpoint) {
        cmd.env(k, v);
    }
    let out = cmd.env("STATE_TABLE", &fleet.state_table).output()?;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: Value = serde_json::from_slice(&out.stdout)?;
    // 44 alarms into ALARM and the Alertmanager occurrence.
    assert_eq!(j["transitions"], 45, "{j:#}");
    assert_eq!(j["incidents"], 45, "{j:#}");
    assert_eq!(j["alarms"]["HighCPUUsage"]["incidents"], 1, "{j:#}");
    let x = &j["actions"]["scale_out"];
    assert_eq!(n(&x["would_run"]), 33, "{x}");
    assert_eq!(n(&x["suppressed"]["chronic"]), 11, "{x}");
    assert_eq!(n(&j["actions"]["snapshot"]["would_run"]), 44);
    // No files and no --recorded: bad input.
    let none = Command::new(BIN).arg("backtest").output()?;
    assert_eq!(none.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
