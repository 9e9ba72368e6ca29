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

/// The diagnostics' current-CPU sample, run for real in the sandbox (dash,
/// as SSM runs it), and what it says of the busy process.
async fn sampled(
    sandbox: &Instance,
) -> Result<(String, first_responder::actions::kill_process::Candidate)> {
    use first_responder::actions::kill_process::top_cpu_process;
    let (code, out, err) = sandbox
        .run(
            &first_responder::commands::high_cpu_diagnostics(true).join("\n"),
            Duration::from_secs(30),
        )
        .await;
    anyhow::ensure!(code == 0, "diagnostics exit {code}: {err}");
    let top = top_cpu_process(&out).ok_or_else(|| anyhow::anyhow!("no candidate in {out}"))?;
    Ok((out, top))
}

/// A PID reused between the diagnostics and the kill (simulated: the start
/// time the diagnostics recorded differs from the process's) is not
/// signalled; PID 1 is never sampled and never signalled; the same script
/// with the recorded start time stops the process.
#[tokio::test]
async fn a_reused_pid_and_pid_1_are_never_signalled() -> Result<()> {
    use first_responder::actions::kill_process::script;
    let seed = format!("{BURN}; (/var/tmp/burn -c 'while :; do :; done' &) ; sleep 0.1");
    let sandbox = Instance::start(&seed)?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let burn: u32 = sandbox.sh("pgrep -n -x burn").await?.trim().parse()?;
    let (out, top) = sampled(&sandbox).await?;
    assert_eq!((top.pid, top.comm.as_str()), (burn, "burn"), "{out}");
    assert!(
        top.cpu_percent >= first_responder::actions::kill_process::BUSY_PERCENT,
        "busy now: {top:?}"
    );
    let real_start: u64 = sandbox
        .sh(&format!(
            "sed 's/^.*) //' /proc/{burn}/stat | cut -d' ' -f20"
        ))
        .await?
        .trim()
        .parse()?;
    assert_eq!(top.start, real_start, "field 22 of /proc/PID/stat");
    // No PID 1 row in the sample, whatever ps says of it.
    let section: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("== processes by current CPU"))
        .skip(2)
        .take_while(|l| !l.starts_with("=="))
        .collect();
    assert!(!section.is_empty(), "{out}");
    assert!(section.iter().all(|l| !l.starts_with("1 ")), "{section:?}");

    let allow = [ProcessName::parse("t", "burn").map_err(anyhow::Error::msg)?];
    let run =
        |c: &first_responder::actions::kill_process::Candidate| script(c, &allow, 1).join("\n");
    // Reused: another process now holds the PID.
    let mut reused = top.clone();
    reused.start += 1;
    let (code, o, _) = sandbox.run(&run(&reused), Duration::from_secs(30)).await;
    assert_eq!(code, 0);
    assert!(o.contains("refused=restarted"), "{o}");
    assert!(alive(&sandbox, burn).await, "the reused PID was signalled");
    // PID 1 (the sandbox's init), even on the allow-list.
    let init_comm = sandbox.sh("cat /proc/1/comm").await?.trim().to_owned();
    let allow1 = [ProcessName::parse("t", &init_comm).map_err(anyhow::Error::msg)?];
    let mut one = top.clone();
    one.pid = 1;
    let (_, o, _) = sandbox
        .run(
            &script(&one, &allow1, 1).join("\n"),
            Duration::from_secs(30),
        )
        .await;
    assert!(o.contains("refused=pid1"), "{o}");
    assert!(alive(&sandbox, 1).await, "PID 1 was signalled");
    // The process the diagnostics sampled: stopped.
    let (_, o, _) = sandbox.run(&run(&top), Duration::from_secs(30)).await;
    assert!(o.contains("stopped=TERM"), "{o}");
    assert!(!alive(&sandbox, burn).await, "{burn} still runs");
    Ok(())
}

/// The sampler's filter on samples as /proc writes them: PID 1 and a
/// kernel thread (PF_KTHREAD in the flags) are left out however busy, a
/// zombie and a PID whose start time changed between the samples too, and
/// the rest are ranked by the CPU they used between the samples. Run by
/// awk inside the sandbox (its /proc holds none of these PIDs, so no unit).
#[tokio::test]
async fn the_sampler_leaves_out_pid_1_kernel_threads_and_reused_pids() -> Result<()> {
    let sandbox = Instance::start("true")?;
    // Fields: pid (comm) state ppid pgrp session tty tpgid flags minflt
    // cminflt majflt cmajflt utime stime cutime cstime prio nice threads
    // itrealvalue starttime.
    let stat = |pid: u32, comm: &str, state: &str, flags: u64, ticks: u64, start: u64| {
        format!(
            "{pid} ({comm}) {state} 1 {pid} {pid} 0 -1 {flags} 0 0 0 0 {ticks} 0 0 0 20 0 1 0 {start} 1 1"
        )
    };
    let first = [
        stat(1, "systemd", "S", 4194560, 100, 1),
        stat(2, "kthreadd", "S", 2129984, 0, 2),
        stat(90, "kworker/0:1 x", "I", 69238880, 100, 90),
        stat(300, "java", "S", 4194560, 1000, 3000),
        stat(301, "zombie", "Z", 4194560, 0, 3001),
        stat(302, "reused", "S", 4194560, 0, 3002),
        stat(303, "my (odd) name", "S", 4194560, 10, 3003),
    ];
    let second = [
        stat(1, "systemd", "R", 4194560, 200, 1),
        stat(2, "kthreadd", "S", 2129984, 0, 2),
        stat(90, "kworker/0:1 x", "R", 69238880, 200, 90),
        stat(300, "java", "R", 4194560, 1090, 3000),
        stat(301, "zombie", "Z", 4194560, 500, 3001),
        stat(302, "reused", "R", 4194560, 500, 4000),
        stat(303, "my (odd) name", "R", 4194560, 30, 3003),
    ];
    let input = format!("{}\n--\n{}\n", first.join("\n"), second.join("\n"));
    let script = format!(
        "cat > /var/tmp/in <<'FR_EOF'\n{input}FR_EOF\nawk -v hz=100 '{}' /var/tmp/in | sort -k3,3nr",
        first_responder::commands::CPU_SAMPLE_AWK
    );
    let (code, out, err) = sandbox.run(&script, Duration::from_secs(30)).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["300 3000 90.0 - java", "303 3003 20.0 - my??odd??name"],
        "{out}"
    );
    Ok(())
}
