//! The `first-responder` binary against moto, configured only through the
//! environment (`AWS_ENDPOINT_URL` is the SDK's own variable).

use std::process::{Command, Output};

use anyhow::{Context, Result};
use harness::{
    Fleet, FleetSpec, Moto, aws_env, desired_capacity, drain, sample_event, seed, snapshots,
};

const BIN: &str = env!("CARGO_BIN_EXE_first-responder");

fn run(moto: &Moto, fleet: Option<&Fleet>, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in aws_env(&moto.endpoint) {
        cmd.env(k, v);
    }
    if let Some(f) = fleet {
        cmd.env("NOTIFY_TOPIC_ARN", &f.topic_arn);
    }
    cmd.env("DIAGNOSTICS_TIMEOUT_SECONDS", "20");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.output().expect("run first-responder")
}

fn write_event(dir: &std::path::Path, name: &str, instance: &str) -> Result<String> {
    let path = dir.join(name);
    std::fs::write(&path, sample_event(name, instance)?)?;
    Ok(path.display().to_string())
}

#[tokio::test]
async fn plan_then_run_with_json_and_exit_codes() -> Result<()> {
    let moto = Moto::start()?;
    let sdk = moto.sdk().await;
    let fleet = seed(&sdk, FleetSpec::default()).await?;
    let dir = tempdir()?;
    let event = write_event(&dir, "high-cpu-alarm.json", fleet.instance())?;

    let out = run(&moto, Some(&fleet), &["plan", "--json", &event], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let inc = &v["incidents"][0];
    assert_eq!(inc["kind"], "high_cpu");
    assert!(inc["id"].as_str().unwrap().starts_with("inc-"));
    let actions = inc["actions"].as_array().unwrap();
    let names: Vec<&str> = actions
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["snapshot", "collect_diagnostics", "scale_out", "notify"]
    );
    for a in actions {
        assert_eq!(a["status"], "planned", "{a}");
        assert!(
            a["target"].is_string() && !a["reason"].as_str().unwrap().is_empty(),
            "{a}"
        );
    }
    assert!(
        snapshots(&sdk).await?.is_empty(),
        "plan must change nothing"
    );
    assert_eq!(desired_capacity(&sdk, &fleet.group).await?, 1);

    // Human output names each action and target.
    let out = run(&moto, Some(&fleet), &["plan", &event], &[]);
    let text = String::from_utf8(out.stdout)?;
    assert!(
        text.contains("planned  scale_out") && text.contains("web-asg"),
        "{text}"
    );

    let out = run(&moto, Some(&fleet), &["run", "--json", &event], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    for a in v["incidents"][0]["actions"].as_array().unwrap() {
        assert_eq!(a["status"], "done", "{a}");
    }
    assert_eq!(snapshots(&sdk).await?.len(), 2);
    assert_eq!(desired_capacity(&sdk, &fleet.group).await?, 2);
    assert_eq!(drain(&sdk, &fleet.inbox_queue_url).await?.len(), 1);
    // Logs are JSON lines on stderr carrying the incident id.
    let out = run(
        &moto,
        Some(&fleet),
        &["plan", &event],
        &[("RUST_LOG", "info")],
    );
    let stderr = String::from_utf8(out.stderr)?;
    let line = stderr
        .lines()
        .find(|l| l.contains("decided"))
        .expect("a decision log line");
    let log: serde_json::Value = serde_json::from_str(line)?;
    assert_eq!(log["fields"]["incident_id"], inc["id"]);
    Ok(())
}

#[tokio::test]
async fn bad_input_exits_2_with_one_line_and_changes_nothing() -> Result<()> {
    let moto = Moto::start()?;
    let sdk = moto.sdk().await;
    let fleet = seed(&sdk, FleetSpec::default()).await?;
    let dir = tempdir()?;
    let good = sample_event("high-cpu-alarm.json", fleet.instance())?;
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "not-json.json",
            "{\"detail-type\":".into(),
            "not valid JSON",
        ),
        (
            "state.json",
            good.replace("\"value\": \"ALARM\"", "\"value\": \"FIRING\""),
            "detail.state.value",
        ),
        (
            "id.json",
            good.replace(fleet.instance(), "i-123; rm -rf /"),
            "dimensions.InstanceId",
        ),
        (
            "kind.json",
            good.replace(
                "CloudWatch Alarm State Change",
                "EC2 Spot Instance Interruption Warning",
            ),
            "detail-type",
        ),
    ];
    for (name, body, needle) in cases {
        let path = dir.join(name);
        std::fs::write(&path, body)?;
        for mode in ["plan", "run"] {
            let out = run(&moto, Some(&fleet), &[mode, path.to_str().unwrap()], &[]);
            assert_eq!(out.status.code(), Some(2), "{name} {mode}");
            let err = String::from_utf8(out.stderr)?;
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(
                err.contains(needle) && err.contains(name),
                "{needle:?} not in {err}"
            );
        }
    }
    let out = run(
        &moto,
        Some(&fleet),
        &["plan", "/nonexistent/event.json"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let out = run(
        &moto,
        Some(&fleet),
        &[
            "plan",
            &write_event(&dir, "high-cpu-alarm.json", fleet.instance())?,
        ],
        &[("DIAGNOSTICS_TIMEOUT_SECONDS", "lots")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)?.contains("DIAGNOSTICS_TIMEOUT_SECONDS"));
    // A broken playbooks file stops everything before AWS is touched.
    let broken = dir.join("playbooks.toml");
    std::fs::write(
        &broken,
        first_responder::playbook::DEFAULT_TEXT.replace("grow_percent = 20", "grow_percent = 0"),
    )?;
    let broken = broken.display().to_string();
    let out = run(
        &moto,
        Some(&fleet),
        &[
            "run",
            &write_event(&dir, "disk-full-alarm.json", fleet.instance())?,
        ],
        &[("PLAYBOOKS_FILE", &broken)],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr)?;
    let line = first_responder::playbook::DEFAULT_TEXT
        .lines()
        .position(|l| l == "grow_percent = 20")
        .context("no grow_percent line")?
        + 1;
    assert!(
        err.contains(&format!("playbooks file {broken}, line {line}: disk_full.expand_volume.grow_percent is 0, expected a whole number from 1 to 100")),
        "{err}"
    );
    let out = run(&moto, None, &["check-playbooks", &broken], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)?.contains(&format!("line {line}")));
    let out = run(&moto, None, &["check-playbooks"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8(out.stdout)?
            .contains("disk_full: cleanup_temp + archive_logs -> expand_volume -> notify")
    );
    // The old layout (a parameter directly under its kind) still works, and
    // says which key to write instead.
    let old_layout = dir.join("old.toml");
    let text = first_responder::playbook::DEFAULT_TEXT
        .replacen(
            "[high_cpu.scale_out]\n# Scale out at or above this CPU percentage; also the critical/warning line.\nat_percent = 90.0\n",
            "",
            1,
        )
        .replacen("[high_cpu]\n", "[high_cpu]\nscale_out_at_percent = 90.0\n", 1);
    std::fs::write(&old_layout, text)?;
    let out = run(
        &moto,
        None,
        &["check-playbooks", &old_layout.display().to_string()],
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8(out.stderr)?;
    assert!(
        err.contains("warning: playbooks file")
            && err.contains("high_cpu.scale_out_at_percent is the old layout, accepted for one release: write `at_percent = ...` under [high_cpu.scale_out]"),
        "{err}"
    );
    // Nothing was changed by any of it.
    assert!(snapshots(&sdk).await?.is_empty());
    assert_eq!(desired_capacity(&sdk, &fleet.group).await?, 1);
    assert!(drain(&sdk, &fleet.inbox_queue_url).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_failed_action_exits_1() -> Result<()> {
    let moto = Moto::start()?;
    let sdk = moto.sdk().await;
    let fleet = seed(&sdk, FleetSpec::default()).await?;
    let dir = tempdir()?;
    let event = write_event(&dir, "high-cpu-alarm.json", fleet.instance())?;
    // A topic that does not exist: the publish fails, the rest is done.
    let out = run(
        &moto,
        None,
        &["run", "--json", &event],
        &[(
            "NOTIFY_TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:missing",
        )],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let notify = v["incidents"][0]["actions"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(notify["status"], "failed");
    assert!(
        notify["reason"]
            .as_str()
            .unwrap()
            .contains("Publish to arn:aws:sns:us-east-1:123456789012:missing"),
        "{notify}"
    );
    assert_eq!(desired_capacity(&sdk, &fleet.group).await?, 2);
    Ok(())
}

fn tempdir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir()
        .join("first-responder-cli-tests")
        .join(format!("{}-{}", std::process::id(), harness::free_port()?));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// One bad alert of an Alertmanager group does not drop the good one: the
/// disk alert is handled, the blackbox probe (a URL as `instance`) and the
/// unreadable value are reported under "rejected", exit 0. Nothing usable:
/// exit 2 with the first alert's field. (Two workers: the SSM stand-in
/// serves while the test waits on the process.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_batch_is_handled_in_part() -> Result<()> {
    let moto = Moto::start()?;
    let sdk = moto.sdk().await;
    let fleet = seed(&sdk, FleetSpec::default()).await?;
    let dir = tempdir()?;
    let text = sample_event("alertmanager-disk-full.json", fleet.instance())?
        .replace("10.0.1.5", &fleet.private_ip);
    let mut v: serde_json::Value = serde_json::from_str(&text)?;
    let good = v["alerts"][0].clone();
    let mut blackbox = good.clone();
    blackbox["labels"]["instance"] = "https://shop/health".into();
    blackbox["fingerprint"] = "00000000000000b1".into();
    let mut k = good.clone();
    k["annotations"]["value"] = "1.5k".into();
    k["fingerprint"] = "00000000000000b2".into();
    v["alerts"] = serde_json::json!([blackbox, good, k]);
    let path = dir.join("mixed.json");
    std::fs::write(&path, v.to_string())?;
    // moto's SSM prints nothing: the instance answers the disk preflight.
    let ssm = harness::ssm::SsmStandIn::start(&moto.endpoint).await?;
    ssm.answer(fleet.instance(), "block devices", harness::XEN_LAYOUT);
    let out = run(
        &moto,
        Some(&fleet),
        &["run", "--json", &path.display().to_string()],
        &[("AWS_ENDPOINT_URL_SSM", &ssm.endpoint)],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(r["incidents"].as_array().map(Vec::len), Some(1), "{r}");
    assert_eq!(r["incidents"][0]["kind"], "disk_full");
    let rejected = r["rejected"].as_array().context("no rejected list")?;
    let fields: Vec<&str> = rejected
        .iter()
        .filter_map(|x| x["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        ["alerts[0].labels.instance", "alerts[2].annotations.value"]
    );
    assert!(
        rejected[0]["problem"]
            .as_str()
            .unwrap_or_default()
            .contains("https://shop/health")
    );
    assert!(
        rejected[1]["problem"]
            .as_str()
            .unwrap_or_default()
            .contains("1.5k")
    );
    assert!(stderr.contains("rejected one alert"), "{stderr}");
    // The good alert was acted on: the data volume grew.
    assert_eq!(harness::volume_size(&sdk, &fleet.data_volume).await?, 30);

    // Only bad alerts: exit 2, one line naming the first one's field.
    v["alerts"] = serde_json::json!([v["alerts"][0].clone(), v["alerts"][2].clone()]);
    std::fs::write(&path, v.to_string())?;
    let out = run(
        &moto,
        Some(&fleet),
        &["run", "--json", &path.display().to_string()],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("alerts[0].labels.instance"), "{stderr}");
    Ok(())
}

/// `first-responder script` prints exactly what the responder sends for
/// those typed parameters (the same functions build both), lists them, and
/// refuses what the responder would refuse. Every script passes shellcheck
/// as POSIX sh at `-S warning` (Debian's package, installed by `make test`).
#[test]
fn every_script_is_printed_exactly_and_passes_shellcheck() -> Result<()> {
    use first_responder::commands;
    use first_responder::disk::GrowPath;
    use first_responder::ids::{InstanceId, ServiceName, VolumeId};
    let script = |args: &[&str]| {
        let out = Command::new(BIN)
            .arg("script")
            .args(args)
            .env_clear()
            .output()
            .expect("run first-responder script");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let list = script(&["--list"]);
    assert_eq!(list.0, Some(0));
    let names: Vec<&str> = list
        .1
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    // Every action's scripts, in the registry's order, and at least the
    // ones the runbook's playbooks send.
    let registered: Vec<&str> = first_responder::actions::script::all()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, registered);
    for must in [
        "diagnostics",
        "cleanup_temp",
        "archive_logs",
        "grow_filesystem",
        "disk_layout",
        "restart_service",
    ] {
        assert!(names.contains(&must), "{must} not in {names:?}");
    }
    let i = InstanceId::parse("t", "i-0123456789abcdef0")?;
    let v = VolumeId::parse("t", "vol-0123456789abcdef0")?;
    let cases: Vec<(Vec<&str>, Vec<String>)> = vec![
        (
            vec!["cleanup_temp", "--days", "7"],
            commands::cleanup_temp(Some(7)),
        ),
        (
            vec!["archive_logs", "--days", "7"],
            commands::archive_logs(
                7,
                None,
                &InstanceId::parse("t", "i-00000000")?,
                "inc-0000000000000000",
            ),
        ),
        (
            vec![
                "archive_logs",
                "--days",
                "3",
                "--bucket",
                "logs-bucket",
                "--instance",
                "i-0123456789abcdef0",
                "--incident",
                "inc-0011223344556677",
            ],
            commands::archive_logs(3, Some("logs-bucket"), &i, "inc-0011223344556677"),
        ),
        (
            vec![
                "grow_filesystem",
                "--volume-id",
                "vol-0123456789abcdef0",
                "--to-gib",
                "30",
                "--xen-letters",
                "f",
                "--partition",
                "2",
            ],
            commands::grow_filesystem(&v, Some("f"), 30, &GrowPath::Partition(2)),
        ),
        (
            vec![
                "grow_filesystem",
                "--volume-id",
                "vol-0123456789abcdef0",
                "--to-gib",
                "30",
            ],
            commands::grow_filesystem(&v, None, 30, &GrowPath::Disk),
        ),
        (
            vec![
                "grow_filesystem",
                "--volume-id",
                "vol-0123456789abcdef0",
                "--to-gib",
                "30",
                "--partition",
                "1",
                "--lv",
                "vg0-data",
            ],
            commands::grow_filesystem(
                &v,
                None,
                30,
                &GrowPath::Lvm {
                    partition: Some(1),
                    lv: first_responder::disk::LvName::parse("vg0-data").context("lv")?,
                },
            ),
        ),
        (
            vec!["restart_service", "--service", "app"],
            commands::restart_service(&ServiceName::parse("t", "app")?, 10),
        ),
        (
            vec!["disk_layout"],
            commands::DISK_LAYOUT
                .iter()
                .map(|c| (*c).to_owned())
                .collect(),
        ),
        (
            vec!["diagnostics", "--kind", "high_cpu"],
            commands::HIGH_CPU_DIAGNOSTICS
                .iter()
                .map(|c| (*c).to_owned())
                .collect(),
        ),
        (
            vec!["diagnostics", "--kind", "memory_pressure"],
            commands::MEMORY_DIAGNOSTICS
                .iter()
                .map(|c| (*c).to_owned())
                .collect(),
        ),
    ];
    // Every registered script, with its example arguments: printed as the
    // action builds it, and through shellcheck below.
    let mut cases = cases;
    for s in first_responder::actions::script::all() {
        let args: Vec<String> = s.example.iter().map(|a| (*a).to_owned()).collect();
        let built =
            first_responder::actions::script::build(s.name, &args).map_err(anyhow::Error::msg)?;
        let mut argv = vec![s.name];
        argv.extend(s.example.iter().copied());
        cases.push((argv, built));
    }
    for (args, want) in cases {
        let (code, out, err) = script(&args);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        assert_eq!(out, format!("{}\n", want.join("\n")), "{args:?}");
        // AWS-RunShellScript runs the commands with `sh`: dash on Debian
        // and Ubuntu, so POSIX sh only.
        let mut sc = Command::new("shellcheck")
            .args(["-s", "sh", "-S", "warning", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("shellcheck (Debian's package; make test installs it)")?;
        {
            use std::io::Write;
            sc.stdin
                .take()
                .context("stdin")?
                .write_all(out.as_bytes())?;
        }
        let res = sc.wait_with_output()?;
        assert!(
            res.status.success(),
            "{args:?}:\n{}",
            String::from_utf8_lossy(&res.stdout)
        );
    }
    // Refused as the responder refuses them: exit 2, one line naming the value.
    for (args, says) in [
        (
            vec!["restart_service", "--service", "poweroff.target"],
            "is not a service unit",
        ),
        (vec!["restart_service", "--service", "sshd"], "refused"),
        (
            vec![
                "grow_filesystem",
                "--volume-id",
                "vol-1; reboot",
                "--to-gib",
                "30",
            ],
            "--volume-id",
        ),
        (
            vec![
                "grow_filesystem",
                "--volume-id",
                "vol-0123456789abcdef0",
                "--to-gib",
                "30",
                "--xen-letters",
                "f;x",
            ],
            "--xen-letters",
        ),
        (
            vec![
                "grow_filesystem",
                "--volume-id",
                "vol-0123456789abcdef0",
                "--to-gib",
                "30",
                "--lv",
                "vg0/data;reboot",
            ],
            "--lv",
        ),
        (
            vec![
                "grow_filesystem",
                "--volume-id",
                "vol-0123456789abcdef0",
                "--to-gib",
                "30",
                "--partition",
                "0",
            ],
            "--partition 0",
        ),
        (vec!["diagnostics", "--kind", "disk_full"], "--kind"),
        (
            vec![
                "archive_logs",
                "--days",
                "7",
                "--bucket",
                "Bad_Bucket",
                "--instance",
                "i-0123456789abcdef0",
                "--incident",
                "inc-1",
            ],
            "not an S3 bucket name",
        ),
    ] {
        let (code, _, err) = script(&args);
        assert_eq!(code, Some(2), "{args:?}");
        assert!(
            err.contains(says) && err.lines().count() == 1,
            "{args:?}: {err}"
        );
    }
    Ok(())
}

/// `first-responder forecast --json` and `run --json` with the metric:
/// the contract's fields, read from CloudWatch through the harness's bridge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forecast_and_context_in_the_json() -> Result<()> {
    let moto = Moto::start()?;
    let sdk = moto.sdk().await;
    let fleet = seed(&sdk, FleetSpec::default()).await?;
    let bridge = harness::cloudwatch::CloudWatchBridge::start(&moto.endpoint).await?;
    let cw = bridge.client(&sdk);
    let now = chrono::Utc::now().timestamp() / 300 * 300;
    let end = chrono::DateTime::from_timestamp(now, 0).context("now")?;
    let values: Vec<f64> = (0..36)
        .map(|i| 90.0 - 2.0 * f64::from(35 - i) / 12.0)
        .collect();
    let dims = [
        ("InstanceId", fleet.instance()),
        ("device", "xvdf"),
        ("fstype", "xfs"),
        ("path", "/data"),
    ];
    harness::put_series(
        &cw,
        "CWAgent",
        "disk_used_percent",
        &dims,
        end,
        300,
        &values,
    )
    .await?;
    let extra = [("AWS_ENDPOINT_URL_CLOUDWATCH", bridge.endpoint.as_str())];
    let out = run(&moto, Some(&fleet), &["forecast", "--json"], &extra);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["horizon_hours"], 6);
    assert_eq!(v["filesystems"], 1);
    let r = &v["at_risk"][0];
    assert_eq!(r["instance"], fleet.instance());
    assert_eq!(r["path"], "/data");
    assert_eq!(r["percent_per_hour"], 2.0);
    assert!(
        r["full_at"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{v:#}"
    );
    let text = run(&moto, Some(&fleet), &["forecast"], &extra);
    assert!(
        String::from_utf8_lossy(&text.stdout)
            .contains("1 filesystem(s) read; 1 at risk within 6 h"),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );

    // plan --json: `context` (null here: no alarm of that name) and a note.
    let dir = tempdir()?;
    let event = write_event(&dir, "high-cpu-alarm.json", fleet.instance())?;
    let out = run(&moto, Some(&fleet), &["plan", "--json", &event], &extra);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let inc = &v["incidents"][0];
    assert!(
        inc.get("context").is_some_and(serde_json::Value::is_null),
        "{inc:#}"
    );
    assert!(
        inc["notes"].as_array().is_some_and(|n| n.iter().any(|n| n
            .as_str()
            .is_some_and(|s| s.starts_with("metric not shown")))),
        "{inc:#}"
    );
    Ok(())
}
