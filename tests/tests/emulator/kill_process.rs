//! kill_process for real: the top CPU process in the instance stand-in is a
//! busy `burn` (a copy of bash, so /proc/PID/comm says `burn`), found by the
//! real diagnostics and stopped by the real script, or left alone when the
//! allow-list does not name it. The sandbox's PID namespace keeps other
//! tests' busy processes off its `ps --sort=-%cpu`.

use std::time::Duration;

use anyhow::Result;
use first_responder::actions::ActionName;
use first_responder::actions::kill_process::ProcessName;
use harness::ssm::{Instance, SsmStandIn};
use harness::{FleetSpec, World};

const BURN: &str = "cp /bin/bash /var/tmp/burn";

async fn run_with(
    busy: &str,
    allow: &[&str],
    grace: u32,
) -> Result<(
    first_responder::report::ActionReport,
    std::sync::Arc<Instance>,
    u32,
)> {
    let mut w = World::start(FleetSpec::default()).await?;
    let standin = SsmStandIn::start(&w.moto.endpoint).await?;
    let seed = format!("{BURN}; (/var/tmp/burn -c '{busy}' &) ; sleep 0.1");
    let sandbox = standin.add(w.fleet.instance(), Instance::start(&seed)?);
    w.engine.aws.ssm = standin.client(&w.sdk).into();
    let pb = &mut w.config.playbooks.high_cpu;
    pb.stages.push(vec![ActionName::KillProcess]);
    pb.kill_process.allow = allow
        .iter()
        .map(|n| ProcessName::parse("test", n).map_err(anyhow::Error::msg))
        .collect::<Result<_>>()?;
    pb.kill_process.grace_seconds = grace;
    // Let it earn its place at the top of `ps --sort=-%cpu`.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let pid: u32 = sandbox.sh("pgrep -n -x burn").await?.trim().parse()?;
    let r = w.run_sample("high-cpu-alarm.json").await?;
    let k = r.incidents[0]
        .actions
        .iter()
        .find(|a| a.action == ActionName::KillProcess)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no kill_process in {r:#?}"))?;
    drop(standin);
    Ok((k, sandbox, pid))
}

/// Whether `pid` (as the instance numbers it: the sandbox has its own PID
/// namespace) runs and is not a zombie.
async fn alive(sandbox: &Instance, pid: u32) -> bool {
    sandbox
        .sh(&format!("cat /proc/{pid}/stat 2>/dev/null || true"))
        .await
        .is_ok_and(|s| {
            s.rsplit_once(") ")
                .is_some_and(|(_, rest)| !rest.starts_with('Z'))
        })
}

#[tokio::test]
async fn kill_process_stops_only_an_allowed_top_process() -> Result<()> {
    // Allowed, and it ends on SIGTERM.
    let (k, sandbox, pid) = run_with("while :; do :; done", &["java", "burn"], 5).await?;
    assert_eq!(k.status.as_str(), "done", "{k:?}");
    let detail = k.detail.clone().unwrap_or_default();
    assert_eq!(
        detail,
        format!("stopped process {pid} (burn) with SIGTERM"),
        "{k:?}"
    );
    assert!(!alive(&sandbox, pid).await, "{pid} still runs");

    // Allowed, but it ignores SIGTERM: SIGKILL after the grace period.
    let (k, sandbox, pid) = run_with("trap \"\" TERM; while :; do :; done", &["burn"], 1).await?;
    assert_eq!(k.status.as_str(), "done", "{k:?}");
    assert_eq!(
        k.detail.clone().unwrap_or_default(),
        format!("stopped process {pid} (burn) with SIGKILL"),
        "{k:?}"
    );
    assert!(!alive(&sandbox, pid).await, "{pid} still runs");

    // Not on the allow-list: left running, and the report says what it is.
    let (k, sandbox, pid) = run_with("while :; do :; done", &["java"], 1).await?;
    assert_eq!(k.status.as_str(), "skipped", "{k:?}");
    assert!(
        k.reason.contains(&format!(
            "the top CPU process {pid} is burn, which the allow-list does not name"
        )),
        "{k:?}"
    );
    assert!(alive(&sandbox, pid).await, "{pid} was stopped");
    drop(sandbox);
    Ok(())
}
