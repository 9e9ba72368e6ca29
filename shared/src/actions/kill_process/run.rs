//! Picks the PID from the diagnostics' output, sends the script, and reads
//! what the instance answered.

use crate::actions::{ActionName, Run};
use crate::aws::*;
use super::Clients;
use crate::disk::marker;
use crate::outcome::Outcome;
use crate::report::Status;

use super::{Step, script, top_cpu_pid};

/// Carries out the step (see `actions::Run`).
pub(crate) async fn run(c: &Clients<'_>, s: &Step, cx: &Run<'_>) -> Outcome {
    let diagnostics = cx
        .earlier
        .iter()
        .find(|r| r.action == ActionName::CollectDiagnostics && r.status == Status::Done)
        .and_then(|r| r.output.as_deref());
    let Some(pid) = diagnostics.and_then(top_cpu_pid) else {
        return Outcome::skipped(
            "collect_diagnostics reported no process list to pick the top CPU process from: nothing stopped",
        );
    };
    let o = run_command(
        c.ssm,
        &s.instance,
        script(pid, &s.allow, s.grace_seconds),
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
    } else if marker(&out, "refused").is_some() {
        Outcome::skipped(format!(
            "the top CPU process {pid} is {comm}, which the allow-list does not name: not stopped"
        ))
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
