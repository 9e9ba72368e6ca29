//! kill_process: stop the top CPU process that `collect_diagnostics` found,
//! when its name is on the playbook's allow-list: SIGTERM, then SIGKILL after
//! a grace period. Off unless a playbook lists it (after the diagnostics).

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{ActionName, ActionStep, Recovery};
use super::script::Script;
use crate::ids::InstanceId;
use crate::observed::Observed;
use crate::params::Validator;
use super::context::{Decision, commands_allowed, Settings, Context};

#[cfg(feature = "aws")]
mod run;
#[cfg(feature = "aws")]
pub(crate) use run::run;
#[cfg(test)]
mod tests;

/// A signal cannot be taken back, and after a crash nothing tells whether
/// it was sent (the process may have exited on its own): never repeated.
pub const RECOVERY: Recovery = Recovery::Unverifiable;

crate::actions::clients::permissions! {
    ssm: [SendCommand, GetCommandInvocation],
}

/// What its decision reads beyond the instance (see `Need`).
pub const NEEDS: &[super::Need] = &[];

/// The scripts it sends through SSM, for `first-responder script`.
pub const SCRIPTS: &[super::script::Script] = &[Script {
    name: "kill_process",
    usage: "--pid N --start TICKS --allow NAME[,NAME] [--grace-seconds N]",
    example: &["--pid", "4242", "--start", "1234567", "--allow", "java,node"],
    build: |a| {
        let allow = a
            .required("--allow")?
            .split(',')
            .map(|n| ProcessName::parse("--allow", n))
            .collect::<Result<Vec<_>, _>>()?;
        let grace: u32 = a.number("--grace-seconds", Some(10))?;
        if !(1..=120).contains(&grace) {
            return Err(format!("--grace-seconds {grace}: 1 to 120"));
        }
        let pid: u32 = a.number("--pid", None)?;
        if pid <= 1 {
            return Err(format!("--pid {pid}: the init process is never stopped"));
        }
        let c = Candidate {
            pid,
            start: a.number("--start", None)?,
            cpu_percent: 0.0,
            unit: "-".into(),
            comm: String::new(),
        };
        Ok(script(&c, &allow, grace))
    },
}];

/// A process name as the kernel keeps it (`/proc/PID/comm`): 1-15 of
/// `A-Z a-z 0-9 . _ + -`. Only such names reach the script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessName(String);

impl ProcessName {
    pub fn parse(field: &str, s: &str) -> Result<Self, String> {
        let ok = (1..=15).contains(&s.len())
            && s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "{field} has {s:?}: a process name is 1-15 of A-Z a-z 0-9 . _ + - (as /proc/PID/comm shows it)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `[kind.kill_process]`
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// The process names it may stop; empty: none.
    pub allow: Vec<ProcessName>,
    /// Seconds between SIGTERM and SIGKILL.
    pub grace_seconds: u32,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            grace_seconds: 10,
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    /// `required`: held for a person's approval (read by the playbook).
    pub approval: Option<Spanned<String>>,
    /// `observe`, `approve` or `auto` (read by the playbook; `approval =
    /// "required"` is `approve`).
    pub mode: Option<Spanned<String>>,
    /// Changes an hour it may make (per account; read by the playbook).
    pub budget_per_hour: Option<Spanned<i64>>,
    pub allow: Option<Spanned<Vec<String>>>,
    pub grace_seconds: Option<Spanned<i64>>,
}

impl Params {
    pub fn read(raw: Raw, v: &mut Validator) -> Self {
        let d = Self::default();
        let table = v.table.name.clone();
        let allow = match v.required("allow", raw.allow) {
            None => d.allow,
            Some(list) => {
                let span = list.span();
                let mut out = Vec::new();
                for name in list.into_inner() {
                    match ProcessName::parse(&format!("{table}.allow"), &name) {
                        Ok(n) => out.push(n),
                        Err(e) => v.fail(span.clone(), e),
                    }
                }
                out
            }
        };
        Self {
            allow,
            grace_seconds: v.range("grace_seconds", raw.grace_seconds, (1, 120), d.grace_seconds),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub instance: InstanceId,
    pub allow: Vec<ProcessName>,
    pub grace_seconds: u32,
}

impl ActionStep for Step {
    /// SSM: SIGTERM, and SIGKILL after its grace period.
    fn typical(&self) -> std::time::Duration {
        std::time::Duration::from_secs(5)
    }
    fn describe(&self) -> String {
        format!(
            "stop the top CPU process on {} if it is {} (SIGTERM, SIGKILL after {} s)",
            self.instance,
            names(&self.allow),
            self.grace_seconds
        )
    }
    fn is_mutating(&self) -> bool {
        true
    }
    fn cooldown(&self, _: &crate::actions::ActionParams, _: &Settings) -> Option<(String, Duration)> {
        // One stop per instance within the grace-plus-restart of a service
        // manager: a process that comes straight back is a person's call.
        Some((self.instance.to_string(), Duration::from_secs(15 * 60)))
    }
}

fn names(allow: &[ProcessName]) -> String {
    allow
        .iter()
        .map(ProcessName::as_str)
        .collect::<Vec<_>>()
        .join(" or ")
}

pub(crate) fn decide(p: &mut Context<'_>, instance: &InstanceId, observed: &Observed, config: &Settings) {
    let Some(pb) = p.playbook(config) else {
        return;
    };
    let params = pb.kill_process.clone();
    let kind = p.incident.kind;
    let after_diagnostics = matches!(
        (p.stage_of(ActionName::CollectDiagnostics), p.stage_of(ActionName::KillProcess)),
        (Some(d), Some(k)) if d < k
    );
    let decision = if params.allow.is_empty() {
        Decision::Skip(format!(
            "[{kind}.kill_process] allow names no process: nothing may be stopped"
        ))
    } else if !after_diagnostics {
        Decision::Skip(format!(
            "kill_process picks the process from collect_diagnostics' output: list collect_diagnostics in an earlier stage of {kind}"
        ))
    } else {
        match commands_allowed(instance, observed, config) {
            Ok(()) => Decision::Do(super::Step::KillProcess(Step {
                instance: instance.clone(),
                allow: params.allow.clone(),
                grace_seconds: params.grace_seconds,
            })),
            Err(d) => d,
        }
    };
    p.push(
        config,
        ActionName::KillProcess,
        instance.to_string(),
        format!(
            "the top CPU process, if it is {}: SIGTERM, then SIGKILL after {} s",
            names(&params.allow),
            params.grace_seconds
        ),
        decision,
    );
}

/// The process `kill_process` may stop, as the diagnostics sampled it: its
/// PID (never 1: the sampler leaves PID 1 out, and this type refuses it),
/// its start time (field 22 of `/proc/PID/stat`), which the script checks
/// so that a PID reused since is never hit, and what it used.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub pid: u32,
    pub start: u64,
    pub cpu_percent: f64,
    /// Its systemd service, `-` for none.
    pub unit: String,
    pub comm: String,
}

/// Below this share of one CPU over the sample, the top process is not
/// what keeps the CPU busy (the load moved, or is many small processes).
pub const BUSY_PERCENT: f64 = 10.0;

/// The top row of the diagnostics' current-CPU section
/// ([`crate::commands::CPU_SAMPLE_HEADER`]).
pub fn top_cpu_process(diagnostics: &str) -> Option<Candidate> {
    let mut lines = diagnostics
        .lines()
        .skip_while(|l| l.trim() != crate::commands::CPU_SAMPLE_HEADER)
        .skip(1);
    if lines.next()?.split_whitespace().next() != Some("PID") {
        return None;
    }
    let mut f = lines.next()?.split_whitespace();
    let pid: u32 = f.next()?.parse().ok().filter(|p| *p > 1)?;
    let start: u64 = f.next()?.parse().ok()?;
    let cpu_percent: f64 = f.next()?.parse().ok().filter(|c: &f64| c.is_finite())?;
    let unit = f.next()?.to_owned();
    let comm = f.collect::<Vec<_>>().join(" ");
    Some(Candidate {
        pid,
        start,
        cpu_percent,
        unit,
        comm,
    })
}

/// Whether a unit is one of the system services `restart_service` refuses
/// (`crate::ids::REFUSED_SERVICES`): its processes are not stopped either.
pub fn is_system_service(unit: &str) -> bool {
    unit != "-" && crate::ids::ServiceName::parse("unit", unit).is_err()
}

/// The script, from typed values only: the PID and start time the
/// diagnostics recorded, the allow-list (checked names) and the grace
/// period. It stops the process only if it is still the one sampled (same
/// start time), not PID 1, not a kernel thread, not in a system service,
/// and named on the list; it signals again only that same process.
/// Prints `pid=`, `comm=`, `unit=`, then `stopped=TERM|KILL`,
/// `refused=pid1|restarted|kernel_thread|system_service|not_allowed`,
/// `gone=1` or `error=still_running`.
pub fn script(c: &Candidate, allow: &[ProcessName], grace_seconds: u32) -> Vec<String> {
    let quoted = |names: Vec<String>| {
        let cases = names.join("|");
        if cases.is_empty() { "''".to_owned() } else { cases }
    };
    let cases = quoted(allow.iter().map(|n| format!("'{}'", n.as_str())).collect());
    let system = quoted(
        crate::ids::REFUSED_SERVICES
            .iter()
            .map(|r| match r.strip_suffix('@') {
                Some(t) => format!("'{t}@'*'.service'"),
                None => format!("'{r}.service'"),
            })
            .collect(),
    );
    vec![
        "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C".into(),
        format!("PID={}", c.pid),
        format!("START={}", c.start),
        format!("TICKS={}", u64::from(grace_seconds) * 10),
        "echo \"pid=$PID\"".into(),
        "[ \"$PID\" -gt 1 ] || { echo refused=pid1; exit 0; }".into(),
        // Fields after "PID (comm) ": the state is the 1st, the flags the
        // 7th, the start time the 20th.
        "fields() { sed 's/^.*) //' \"/proc/$PID/stat\" 2>/dev/null; }".into(),
        "started() { s=$(fields) || return 1; set -- $s; [ \"$1\" != Z ] || return 1; echo \"${20}\"; }".into(),
        "start=$(started) || { echo gone=1; exit 0; }".into(),
        "[ \"$start\" = \"$START\" ] || { echo refused=restarted; exit 0; }".into(),
        "s=$(fields); set -- $s 0 0 0 0 0 0 0; [ $(( ($7 / 2097152) % 2 )) -eq 0 ] || { echo refused=kernel_thread; exit 0; }".into(),
        "comm=$(cat \"/proc/$PID/comm\" 2>/dev/null) || { echo gone=1; exit 0; }".into(),
        "echo \"comm=$comm\"".into(),
        "unit=$(sed -n 's|.*/\\([^/]*\\.service\\).*|\\1|p' \"/proc/$PID/cgroup\" 2>/dev/null | tail -n 1)".into(),
        "echo \"unit=${unit:--}\"".into(),
        format!("case \"$unit\" in {system}) echo refused=system_service; exit 0 ;; esac"),
        format!("case \"$comm\" in {cases}) ;; *) echo refused=not_allowed; exit 0 ;; esac"),
        "alive() { [ \"$(started)\" = \"$START\" ]; }".into(),
        "kill -TERM \"$PID\" 2>/dev/null || { echo gone=1; exit 0; }".into(),
        "i=0; while [ \"$i\" -lt \"$TICKS\" ]; do alive || { echo stopped=TERM; exit 0; }; sleep 0.1; i=$((i + 1)); done".into(),
        "alive && kill -KILL \"$PID\" 2>/dev/null".into(),
        "i=0; while [ \"$i\" -lt 50 ]; do alive || { echo stopped=KILL; exit 0; }; sleep 0.1; i=$((i + 1)); done".into(),
        "echo error=still_running; exit 1".into(),
    ]
}
