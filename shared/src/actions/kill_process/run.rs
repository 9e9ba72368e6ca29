//! Picks the PID from the diagnostics' output, sends the script, and reads
//! what the instance answered.

use crate::actions::{ActionName, Run};
use crate::aws::*;
use super::Clients;
use crate::disk::marker;
use crate::outcome::Outcome;
use crate::report::Status;

use super::{BUSY_PERCENT, Step, is_system_service, script, top_cpu_process};

/// Carries out the step (see `actions::Run`).
pub(crate) async fn run(c: &Clients<'_>, s: &Step, cx: &Run<'_>) -> Outcome {
    let diagnostics = cx
        .earlier
        .iter()
        .find(|r| r.action == ActionName::CollectDiagnostics && r.status == Status::Done)
        .and_then(|r| r.output.as_deref());
    let Some(top) = diagnostics.and_then(top_cpu_process) else {
        return Outcome::skipped(
            "collect_diagnostics sampled no process (by current CPU, with its start time) to pick from: nothing stopped",
        );
    };
    let pid = top.pid;
    let shown = crate::text::quoted(&top.comm, 40);
    if top.cpu_percent < BUSY_PERCENT {
        return Outcome::skipped(format!(
            "the top process {pid} ({shown}) used {:.1}% of a CPU over the diagnostics' sample, under {BUSY_PERCENT}%: nothing busy to stop",
            top.cpu_percent
        ));
    }
    if is_system_service(&top.unit) {
        return Outcome::skipped(format!(
            "the top process {pid} ({shown}) runs in {}, a system service: not stopped",
            crate::text::quoted(&top.unit, 80)
        ));
    }
    let o = run_command(
        c.ssm,
        &s.instance,
        script(&top, &s.allow, s.grace_seconds),
        &format!("first-responder kill_process for {}", cx.incident.id),
        // The grace period, SIGKILL's wait, and SSM's own delay.
        cx.settings.diagnostics_timeout + std::time::Duration::from_secs(u64::from(s.grace_seconds) + 5),
        c.poll,
    )
    .await;
    let out = o.output.clone().unwrap_or_default();
    let comm = marker(&out, "comm").unwrap_or("?").to_owned();
    let mut r = if let Some(signal) = marker(&out, "stopped") {
        Outcome::done(
            format!("stopped process {pid} ({comm}) with SIG{signal}"),
            o.ids.clone(),
        )
    } else if let Some(why) = marker(&out, "refused") {
        Outcome::skipped(match why {
            "restarted" => format!(
                "PID {pid} is no longer the process the diagnostics sampled (its start time changed: the PID was reused): not stopped"
            ),
            "pid1" => format!("PID {pid} is the init process: never stopped"),
            "kernel_thread" => format!("process {pid} is a kernel thread: not stopped"),
            "system_service" => format!(
                "process {pid} ({comm}) runs in {}, a system service: not stopped",
                crate::text::quoted(marker(&out, "unit").unwrap_or("?"), 80)
            ),
            _ => format!(
                "the top CPU process {pid} is {comm}, which the allow-list does not name: not stopped"
            ),
        })
    } else if marker(&out, "gone").is_some() {
        Outcome::skipped(format!("process {pid} had already exited: nothing stopped"))
    } else if marker(&out, "error").is_some() {
        Outcome::uncertain(format!(
            "process {pid} ({comm}) is still running after SIGKILL: look at it now"
        ))
    } else {
        return o;
    };
    r.ids = o.ids;
    r.output = o.output;
    r.exit_code = o.exit_code;
    r
}
