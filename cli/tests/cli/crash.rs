//! A real crash half-way: the `first-responder` process is killed (SIGKILL,
//! no clean-up runs) while one of its AWS calls is held by the fault proxy,
//! then the same event is delivered again to a new process. The redelivery
//! must finish what was not done and repeat nothing that was, checking AWS
//! for what the dead process may have done.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use harness::proxy::{Fault, FaultProxy, Faults, Rule};
use harness::ssm::SsmStandIn;
use harness::{
    Fleet, FleetSpec, Moto, aws_env, desired_capacity, drain, eventually, expire_leases,
    sample_event, seed, snapshots, ssm_commands, state_records, volume_modifications, volume_size,
};

const BIN: &str = env!("CARGO_BIN_EXE_first-responder");

/// The responder, its SSM through the stand-in that answers the disk
/// preflight (`ssm`), everything else at `endpoint`.
fn command(endpoint: &str, ssm: &str, fleet: &Fleet, event: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--json", event])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NOTIFY_TOPIC_ARN", &fleet.topic_arn)
        .env("STATE_TABLE", &fleet.state_table)
        .env("DIAGNOSTICS_TIMEOUT_SECONDS", "20");
    for (k, v) in aws_env(endpoint) {
        cmd.env(k, v);
    }
    cmd.env("AWS_ENDPOINT_URL_SSM", ssm);
    cmd
}

fn spawn(endpoint: &str, ssm: &str, fleet: &Fleet, event: &str) -> Result<Child> {
    Ok(command(endpoint, ssm, fleet, event)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?)
}

/// The redelivery: a new process, straight to the emulator.
fn redeliver(moto: &Moto, ssm: &str, fleet: &Fleet, event: &str) -> Result<serde_json::Value> {
    let out = command(&moto.endpoint, ssm, fleet, event).output()?;
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "no JSON report; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn action<'a>(report: &'a serde_json::Value, name: &str, nth: usize) -> &'a serde_json::Value {
    report["incidents"][0]["actions"]
        .as_array()
        .and_then(|a| a.iter().filter(|x| x["action"] == name).nth(nth))
        .unwrap_or(&serde_json::Value::Null)
}

fn text(a: &serde_json::Value) -> String {
    a["detail"]
        .as_str()
        .or(a["reason"].as_str())
        .unwrap_or_default()
        .to_owned()
}

fn hits(proxy: &FaultProxy) -> u64 {
    proxy
        .stats
        .rule_hits
        .lock()
        .map(|h| h.iter().sum())
        .unwrap_or(0)
}

async fn setup(
    rules: &'static [Rule],
) -> Result<(Moto, aws_config::SdkConfig, Fleet, FaultProxy, SsmStandIn)> {
    let moto = Moto::start()?;
    let sdk = moto.sdk().await;
    let fleet = seed(&sdk, FleetSpec::default()).await?;
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Faults {
            rules,
            ..Faults::default()
        },
    )
    .await?;
    // moto's SSM prints nothing: the instance answers the disk preflight
    // as a Xen instance does.
    let ssm = SsmStandIn::start(&moto.endpoint).await?;
    ssm.answer(fleet.instance(), "block devices", harness::XEN_LAYOUT);
    Ok((moto, sdk, fleet, proxy, ssm))
}

fn event_file(name: &str, instance: &str) -> Result<(tempdir::Dir, String)> {
    let dir = tempdir::Dir::new()?;
    let path = dir.0.join(name);
    std::fs::write(&path, sample_event(name, instance)?)?;
    let p = path.display().to_string();
    Ok((dir, p))
}

mod tempdir {
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new() -> std::io::Result<Self> {
            let p = std::env::temp_dir().join(format!(
                "fr-crash-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or_default()
            ));
            std::fs::create_dir_all(&p)?;
            Ok(Self(p))
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_before_the_scale_out_reached_aws_then_completed_by_the_redelivery() -> Result<()> {
    static RULES: [Rule; 1] = [Rule {
        action: "SetDesiredCapacity",
        fault: Fault::Hang,
        times: u64::MAX,
    }];
    let (moto, sdk, fleet, proxy, ssm) = setup(&RULES).await?;
    let (_dir, event) = event_file("high-cpu-alarm.json", fleet.instance())?;
    let mut child = spawn(&proxy.endpoint, &ssm.endpoint, &fleet, &event)?;
    // The snapshots and diagnostics are done and recorded; the scale-out is
    // claimed and held in flight.
    eventually(Duration::from_secs(60), || async {
        let done = state_records(&sdk, &fleet.state_table)
            .await?
            .iter()
            .filter(|(k, v)| k.starts_with("action#") && *v == "done")
            .count();
        Ok((done >= 2 && hits(&proxy) >= 1).then_some(()))
    })
    .await?;
    child.kill()?;
    child.wait()?;
    assert_eq!(snapshots(&sdk).await?.len(), 2);
    assert_eq!(desired_capacity(&sdk, &fleet.group).await?, 1);
    assert!(drain(&sdk, &fleet.inbox_queue_url).await?.is_empty());

    assert!(expire_leases(&sdk, &fleet.state_table).await? >= 1);
    let r = redeliver(&moto, &ssm.endpoint, &fleet, &event)?;
    assert_eq!(r["incidents"][0]["delivery"], "resumed", "{r:#}");
    // One CreateSnapshots took both volumes; recorded as one action.
    let snap = action(&r, "snapshot", 0);
    assert_eq!(snap["status"], "done");
    assert!(text(snap).starts_with("in an earlier delivery"), "{snap}");
    assert_eq!(action(&r, "scale_out", 0)["status"], "done", "{r:#}");
    assert_eq!(action(&r, "notify", 0)["status"], "done");
    // Nothing twice: two snapshots, one command, one step up, one message.
    assert_eq!(snapshots(&sdk).await?.len(), 2);
    assert_eq!(ssm_commands(&sdk).await?.len(), 1);
    assert_eq!(desired_capacity(&sdk, &fleet.group).await?, 2);
    assert_eq!(drain(&sdk, &fleet.inbox_queue_url).await?.len(), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_scale_out_acted_is_not_scaled_again() -> Result<()> {
    static RULES: [Rule; 1] = [Rule {
        action: "SetDesiredCapacity",
        fault: Fault::ForwardThenHang,
        times: u64::MAX,
    }];
    let (moto, sdk, fleet, proxy, ssm) = setup(&RULES).await?;
    let (_dir, event) = event_file("high-cpu-alarm.json", fleet.instance())?;
    let mut child = spawn(&proxy.endpoint, &ssm.endpoint, &fleet, &event)?;
    // AWS acted (desired 1 -> 2); the process never heard back.
    eventually(Duration::from_secs(60), || async {
        let scaled = desired_capacity(&sdk, &fleet.group).await? == 2;
        Ok((scaled && hits(&proxy) >= 1).then_some(()))
    })
    .await?;
    child.kill()?;
    child.wait()?;

    expire_leases(&sdk, &fleet.state_table).await?;
    let r = redeliver(&moto, &ssm.endpoint, &fleet, &event)?;
    assert_eq!(r["incidents"][0]["delivery"], "resumed", "{r:#}");
    let scale = action(&r, "scale_out", 0);
    assert_eq!(scale["status"], "done", "{scale}");
    assert!(
        text(scale).contains("is already 2 (an earlier delivery meant 2"),
        "{scale}"
    );
    assert_eq!(desired_capacity(&sdk, &fleet.group).await?, 2, "not 3");
    assert_eq!(snapshots(&sdk).await?.len(), 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_volume_was_modified_resumes_at_the_filesystem() -> Result<()> {
    static RULES: [Rule; 1] = [Rule {
        action: "ModifyVolume",
        fault: Fault::ForwardThenHang,
        times: u64::MAX,
    }];
    let (moto, sdk, fleet, proxy, ssm) = setup(&RULES).await?;
    let (_dir, event) = event_file("disk-full-alarm.json", fleet.instance())?;
    let mut child = spawn(&proxy.endpoint, &ssm.endpoint, &fleet, &event)?;
    eventually(Duration::from_secs(60), || async {
        let modified = !volume_modifications(&sdk, &fleet.data_volume)
            .await?
            .is_empty();
        Ok((modified && hits(&proxy) >= 1).then_some(()))
    })
    .await?;
    child.kill()?;
    child.wait()?;
    assert_eq!(volume_size(&sdk, &fleet.data_volume).await?, 30);
    let grows = |cmds: &[harness::CommandSeen]| {
        cmds.iter()
            .filter(|c| c.comment.contains("expand_volume"))
            .count()
    };
    assert_eq!(
        grows(&ssm_commands(&sdk).await?),
        0,
        "killed before the filesystem"
    );

    expire_leases(&sdk, &fleet.state_table).await?;
    let r = redeliver(&moto, &ssm.endpoint, &fleet, &event)?;
    let expand = action(&r, "expand_volume", 0);
    assert_eq!(expand["status"], "done", "{r:#}");
    assert!(
        text(expand).contains("an earlier delivery had already asked EBS for 30 GiB"),
        "{expand}"
    );
    // One modification, one snapshot before it, and the filesystem grown once.
    assert_eq!(
        volume_modifications(&sdk, &fleet.data_volume).await?.len(),
        1
    );
    assert_eq!(volume_size(&sdk, &fleet.data_volume).await?, 30);
    let before: Vec<_> = snapshots(&sdk)
        .await?
        .into_iter()
        .filter(|s| {
            s.tags.get("first-responder:purpose").map(String::as_str)
                == Some("before expand_volume")
        })
        .collect();
    assert_eq!(before.len(), 1, "{before:#?}");
    assert_eq!(grows(&ssm_commands(&sdk).await?), 1);
    // /data is full: the temp and log directories live on /, so cleaning
    // them would free nothing there (decided again, the same way).
    for name in ["cleanup_temp", "archive_logs"] {
        assert_eq!(action(&r, name, 0)["status"], "skipped");
        assert!(text(action(&r, name, 0)).contains("not on /data"), "{r:#}");
    }
    Ok(())
}

/// A crash between the fix and the check loses no check: the delayed
/// message was sent before the first change. Until a redelivery completes
/// the incident, the check says it is still being handled and fails (SQS
/// delivers it again later); then `first-responder verify` escalates, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_fix_still_gets_its_verification() -> Result<()> {
    static RULES: [Rule; 1] = [Rule {
        action: "SetDesiredCapacity",
        fault: Fault::ForwardThenHang,
        times: u64::MAX,
    }];
    let (moto, sdk, fleet, proxy, ssm) = setup(&RULES).await?;
    let bridge = harness::cloudwatch::CloudWatchBridge::start(&moto.endpoint).await?;
    let cw = bridge.client(&sdk);
    let dims = [("InstanceId", fleet.instance())];
    harness::put_alarm(
        &cw,
        "web-high-cpu",
        "AWS/EC2",
        "CPUUtilization",
        &dims,
        300,
        80.0,
        "ALARM",
    )
    .await?;
    let queue = harness::create_verify_queue(&sdk).await?;
    let (dir, event) = event_file("high-cpu-alarm.json", fleet.instance())?;
    // Checked at once rather than 10 minutes later (moto keeps the delay).
    let playbooks = dir.0.join("playbooks.toml");
    std::fs::write(
        &playbooks,
        std::fs::read_to_string(harness::root().join("infra/playbooks.toml"))?.replacen(
            "[high_cpu]\n",
            "[high_cpu]\nverify_after_minutes = 0\n",
            1,
        ),
    )?;
    let with_checks = |mut c: Command| {
        c.env("VERIFY_QUEUE_URL", &queue)
            .env("PLAYBOOKS_FILE", &playbooks)
            .env("AWS_ENDPOINT_URL_CLOUDWATCH", &bridge.endpoint);
        c
    };
    let mut child = with_checks(command(&proxy.endpoint, &ssm.endpoint, &fleet, &event))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    // The fix reached AWS (1 -> 2); the process dies before it hears back.
    eventually(Duration::from_secs(60), || async {
        let scaled = desired_capacity(&sdk, &fleet.group).await? == 2;
        Ok((scaled && hits(&proxy) >= 1).then_some(()))
    })
    .await?;
    child.kill()?;
    child.wait()?;
    // The check is in the queue already.
    let ev = harness::take_sqs_event(&sdk, &queue)
        .await?
        .context("the verification message survived the crash")?;
    let reqs = first_responder::verify::Request::from_sqs_event(&ev).context("ours")?;
    let id = reqs[0].first_responder_verify.incident.clone();
    let verify = |json: bool| {
        let mut v = Command::new(BIN);
        v.args(["verify", &id])
            .env_clear()
            .env("NOTIFY_TOPIC_ARN", &fleet.topic_arn)
            .env("STATE_TABLE", &fleet.state_table)
            .env("PLAYBOOKS_FILE", &playbooks)
            .env("AWS_ENDPOINT_URL_CLOUDWATCH", &bridge.endpoint);
        if json {
            v.arg("--json");
        }
        for (k, val) in aws_env(&moto.endpoint) {
            v.env(k, val);
        }
        v.output()
    };
    // Before the redelivery: still being handled, retry later.
    let early = verify(true)?;
    assert_eq!(early.status.code(), Some(1), "{early:?}");
    assert!(
        String::from_utf8_lossy(&early.stderr).contains("is still being handled"),
        "{early:?}"
    );
    expire_leases(&sdk, &fleet.state_table).await?;
    let r = with_checks(command(&moto.endpoint, &ssm.endpoint, &fleet, &event)).output()?;
    let r: serde_json::Value = serde_json::from_slice(&r.stdout)?;
    assert_eq!(r["incidents"][0]["delivery"], "resumed", "{r:#}");
    drain(&sdk, &fleet.pager_queue_url).await?;
    let out = verify(true)?;
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["incident"], id.as_str());
    assert_eq!(v["verdict"], "still_firing", "{v:#}");
    assert!(
        v["checked"].as_str().is_some_and(|c| c.ends_with('Z')),
        "{v:#}"
    );
    assert_eq!(v["published"], true);
    let pager = drain(&sdk, &fleet.pager_queue_url).await?;
    assert_eq!(pager.len(), 1, "one escalation: {pager:#?}");
    assert_eq!(pager[0].attribute("severity"), Some("critical"));
    // Run twice for one incident: published once.
    let again: serde_json::Value = serde_json::from_slice(&verify(true)?.stdout)?;
    assert_eq!(again["published"], false, "{again:#}");
    assert!(drain(&sdk, &fleet.pager_queue_url).await?.is_empty());
    Ok(())
}
