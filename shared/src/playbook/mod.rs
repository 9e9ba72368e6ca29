//! Declarative playbooks: which actions each kind of incident runs, in what
//! stages, with what parameters. The default is `infra/playbooks.toml`,
//! embedded at build time; `PLAYBOOKS_FILE` overrides it with a complete copy.
//! Validated once at start; every error names the line.

use std::fmt;
use std::ops::Range;
use std::sync::LazyLock;

use serde::Deserialize;
use toml::Spanned;

use crate::actions::{
    ActionName, Diagnostics, archive_logs, cleanup_temp, collect_diagnostics, expand_volume,
    kill_process, reboot, replace_instance, restart_service, scale_out,
};
use crate::incident::IncidentKind;
use crate::params::{Table, Validator};

pub use crate::actions::archive_logs::is_bucket_name;

pub const DEFAULT_TEXT: &str = include_str!("../../../infra/playbooks.toml");

/// A playbook file that cannot be used, with the line that says why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("playbooks file {origin}, line {line}: {message}")]
pub struct PlaybookError {
    pub origin: String,
    pub line: usize,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Playbooks {
    pub high_cpu: Playbook,
    pub disk_full: Playbook,
    pub memory_pressure: Playbook,
    pub service_down: Playbook,
    /// Keys of the old layout (parameters directly under the kind), each
    /// with the new key to write: accepted for one release. The functions
    /// log them at start; `check-playbooks` prints them.
    pub warnings: Vec<String>,
}

/// One kind's playbook: its stages, its next steps, and the parameters of
/// each action from the action's own table (`[kind.action]`); an action not
/// listed keeps its defaults, which nothing reads.
#[derive(Clone, Debug, PartialEq)]
pub struct Playbook {
    pub stages: Vec<Vec<ActionName>>,
    pub next_steps: Vec<String>,
    pub diagnostics: Diagnostics,
    pub scale_out: scale_out::Params,
    pub cleanup_temp: cleanup_temp::Params,
    pub archive_logs: archive_logs::Params,
    pub expand_volume: expand_volume::Params,
    pub restart_service: restart_service::Params,
    pub replace_instance: replace_instance::Params,
    pub reboot: reboot::Params,
    pub kill_process: kill_process::Params,
    /// A Prometheus scrape failure (`up == 0`) with passing EC2 status
    /// checks also reboots or replaces when SSM cannot reach the instance.
    pub act_when_ssm_unreachable: bool,
}

static DEFAULT: LazyLock<Playbooks> = LazyLock::new(|| {
    // The embedded file is checked by a unit test; it cannot fail here.
    Playbooks::parse("(embedded infra/playbooks.toml)", DEFAULT_TEXT)
        .unwrap_or_else(|e| panic!("the embedded playbooks do not validate: {e}"))
});

impl Default for Playbooks {
    fn default() -> Self {
        DEFAULT.clone()
    }
}

impl Playbooks {
    /// A kind's playbook (none for unrouted alerts).
    pub fn get(&self, kind: IncidentKind) -> Option<&Playbook> {
        match kind {
            IncidentKind::HighCpu => Some(&self.high_cpu),
            IncidentKind::DiskFull => Some(&self.disk_full),
            IncidentKind::MemoryPressure => Some(&self.memory_pressure),
            IncidentKind::ServiceDown => Some(&self.service_down),
            IncidentKind::Unrouted => None,
        }
    }

    /// The stages of a kind's playbook (none for unrouted alerts).
    pub fn stages(&self, kind: IncidentKind) -> &[Vec<ActionName>] {
        self.get(kind).map_or(&[], |p| p.stages.as_slice())
    }

    /// Whether the kind's playbook lists this action.
    pub fn runs(&self, kind: IncidentKind, action: ActionName) -> bool {
        self.stages(kind).iter().flatten().any(|a| *a == action)
    }

    /// The stage an action runs in (0-based).
    pub fn stage_of(&self, kind: IncidentKind, action: ActionName) -> usize {
        self.stages(kind)
            .iter()
            .position(|s| s.contains(&action))
            .unwrap_or(0)
    }

    /// What the kind's listed actions need observed.
    pub fn needs(&self, kind: IncidentKind, need: crate::actions::Need) -> bool {
        self.stages(kind)
            .iter()
            .flatten()
            .any(|a| a.needs().contains(&need))
    }

    pub fn next_steps(&self, kind: IncidentKind) -> &[String] {
        self.get(kind).map_or(&[], |p| p.next_steps.as_slice())
    }

    /// Reads and validates a playbook file. `origin` names it in errors.
    pub fn parse(origin: &str, text: &str) -> Result<Self, PlaybookError> {
        let at = |span: Option<Range<usize>>, message: String| PlaybookError {
            origin: origin.to_owned(),
            line: span.map(|s| line_of(text, s.start)).unwrap_or(1),
            message,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            at(
                e.span(),
                e.message().trim().replace('\n', "; ").replace("  ", " "),
            )
        })?;
        let mut v = Validator::default();
        let playbooks = Self {
            high_cpu: read(&mut v, IncidentKind::HighCpu, raw.high_cpu),
            disk_full: read(&mut v, IncidentKind::DiskFull, raw.disk_full),
            memory_pressure: read(&mut v, IncidentKind::MemoryPressure, raw.memory_pressure),
            service_down: read(&mut v, IncidentKind::ServiceDown, raw.service_down),
            warnings: v
                .warnings
                .iter()
                .map(|(span, message)| at(Some(span.clone()), message.clone()).to_string())
                .collect(),
        };
        match v.errors.into_iter().next() {
            Some((span, message)) => Err(at(Some(span), message)),
            None => Ok(playbooks),
        }
    }

    /// Loads `PLAYBOOKS_FILE` if given, else the embedded default.
    pub fn load(path: Option<&str>) -> Result<Self, PlaybookError> {
        match path {
            None => Ok(Self::default()),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| PlaybookError {
                    origin: p.to_owned(),
                    line: 0,
                    message: format!("cannot be read: {e}"),
                })?;
                Self::parse(p, &text)
            }
        }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map(|s| s.bytes().filter(|b| *b == b'\n').count() + 1)
        .unwrap_or(1)
}

/// One kind's table: its stages (each action once), then each action's
/// table, with the old layout's keys moved into them (with a warning).
fn read(v: &mut Validator, kind: IncidentKind, raw: RawPlaybook) -> Playbook {
    let k = kind.as_str();
    let span = raw.stages.span();
    let mut seen: Vec<ActionName> = Vec::new();
    let mut stages = Vec::new();
    for stage in raw.stages.into_inner() {
        let mut s = Vec::new();
        for a in stage {
            let name = *a.get_ref();
            if seen.contains(&name) {
                v.fail(
                    a.span(),
                    format!("{k}.stages lists {} twice", name.as_str()),
                );
            }
            seen.push(name);
            s.push(name);
        }
        if !s.is_empty() {
            stages.push(s);
        }
    }
    let next_steps = v.steps(k, raw.next_steps);
    let enter = |v: &mut Validator, action: ActionName| {
        v.table = Table {
            name: format!("{k}.{}", action.as_str()),
            listed: seen.contains(&action),
            span: span.clone(),
        };
        v.table.name.clone()
    };

    let t = enter(v, ActionName::ScaleOut);
    let mut so = raw.scale_out.unwrap_or_default();
    so.at_percent = v.pick(
        &t,
        "at_percent",
        so.at_percent,
        "scale_out_at_percent",
        raw.scale_out_at_percent,
    );
    let scale_out = scale_out::Params::read(so, v);

    let t = enter(v, ActionName::CleanupTemp);
    let mut ct = raw.cleanup_temp.unwrap_or_default();
    ct.older_than_days = v.pick(
        &t,
        "older_than_days",
        ct.older_than_days,
        "temp_older_than_days",
        raw.temp_older_than_days,
    );
    let cleanup_temp = cleanup_temp::Params::read(ct, v);

    let t = enter(v, ActionName::ArchiveLogs);
    let mut al = raw.archive_logs.unwrap_or_default();
    al.older_than_days = v.pick(
        &t,
        "older_than_days",
        al.older_than_days,
        "logs_older_than_days",
        raw.logs_older_than_days,
    );
    al.bucket = v.pick(
        &t,
        "bucket",
        al.bucket,
        "log_archive_bucket",
        raw.log_archive_bucket,
    );
    let archive_logs = archive_logs::Params::read(al, v);

    let t = enter(v, ActionName::ExpandVolume);
    let mut ev = raw.expand_volume.unwrap_or_default();
    ev.at_percent = v.pick(
        &t,
        "at_percent",
        ev.at_percent,
        "expand_at_percent",
        raw.expand_at_percent,
    );
    ev.grow_percent = v.pick(
        &t,
        "grow_percent",
        ev.grow_percent,
        "grow_percent",
        raw.grow_percent,
    );
    ev.grow_min_gib = v.pick(
        &t,
        "grow_min_gib",
        ev.grow_min_gib,
        "grow_min_gib",
        raw.grow_min_gib,
    );
    ev.max_volume_gib = v.pick(
        &t,
        "max_volume_gib",
        ev.max_volume_gib,
        "max_volume_gib",
        raw.max_volume_gib,
    );
    ev.cooldown_hours = v.pick(
        &t,
        "cooldown_hours",
        ev.cooldown_hours,
        "expand_cooldown_hours",
        raw.expand_cooldown_hours,
    );
    ev.modification_wait_seconds = v.pick(
        &t,
        "modification_wait_seconds",
        ev.modification_wait_seconds,
        "modification_wait_seconds",
        raw.modification_wait_seconds,
    );
    let expand_volume = expand_volume::Params::read(ev, v);

    let t = enter(v, ActionName::RestartService);
    let mut rs = raw.restart_service.unwrap_or_default();
    rs.service_tag = v.pick(
        &t,
        "service_tag",
        rs.service_tag,
        "service_tag",
        raw.service_tag,
    );
    rs.cooldown_minutes = v.pick(
        &t,
        "cooldown_minutes",
        rs.cooldown_minutes,
        "restart_cooldown_minutes",
        raw.restart_cooldown_minutes,
    );
    let restart_service = restart_service::Params::read(rs, v);

    // The old key set both: the reboot's cooldown was the replacement's.
    let t = enter(v, ActionName::ReplaceInstance);
    let mut ri = raw.replace_instance.unwrap_or_default();
    let mut rb = raw.reboot.unwrap_or_default();
    if rb.cooldown_minutes.is_none() {
        rb.cooldown_minutes = raw.replace_cooldown_minutes.clone();
    }
    ri.cooldown_minutes = v.pick(
        &t,
        "cooldown_minutes",
        ri.cooldown_minutes,
        "replace_cooldown_minutes",
        raw.replace_cooldown_minutes,
    );
    let replace_instance = replace_instance::Params::read(ri, v);
    enter(v, ActionName::Reboot);
    let reboot = reboot::Params::read(rb, v);

    enter(v, ActionName::KillProcess);
    let kill_process = kill_process::Params::read(raw.kill_process.unwrap_or_default(), v);

    let diagnostics = raw
        .collect_diagnostics
        .and_then(|d| d.set)
        .unwrap_or_else(|| Diagnostics::for_kind(kind));
    Playbook {
        stages,
        next_steps,
        diagnostics,
        scale_out,
        cleanup_temp,
        archive_logs,
        expand_volume,
        restart_service,
        replace_instance,
        reboot,
        kill_process,
        act_when_ssm_unreachable: raw.act_when_ssm_unreachable,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    high_cpu: RawPlaybook,
    disk_full: RawPlaybook,
    memory_pressure: RawPlaybook,
    service_down: RawPlaybook,
}

/// A kind's table. Any action may be listed in any kind's stages: what it
/// needs observed comes with it (`ActionName::needs`), and its parameters
/// from its own table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlaybook {
    stages: Spanned<Vec<Vec<Spanned<ActionName>>>>,
    next_steps: Spanned<Vec<String>>,
    #[serde(default)]
    act_when_ssm_unreachable: bool,
    collect_diagnostics: Option<collect_diagnostics::Raw>,
    scale_out: Option<scale_out::Raw>,
    cleanup_temp: Option<cleanup_temp::Raw>,
    archive_logs: Option<archive_logs::Raw>,
    expand_volume: Option<expand_volume::Raw>,
    restart_service: Option<restart_service::Raw>,
    replace_instance: Option<replace_instance::Raw>,
    reboot: Option<reboot::Raw>,
    kill_process: Option<kill_process::Raw>,
    // The layout before per-action tables (`Validator::pick`).
    scale_out_at_percent: Option<Spanned<f64>>,
    temp_older_than_days: Option<Spanned<i64>>,
    logs_older_than_days: Option<Spanned<i64>>,
    log_archive_bucket: Option<Spanned<String>>,
    expand_at_percent: Option<Spanned<f64>>,
    grow_percent: Option<Spanned<i64>>,
    grow_min_gib: Option<Spanned<i64>>,
    max_volume_gib: Option<Spanned<i64>>,
    expand_cooldown_hours: Option<Spanned<i64>>,
    modification_wait_seconds: Option<Spanned<i64>>,
    service_tag: Option<Spanned<String>>,
    restart_cooldown_minutes: Option<Spanned<i64>>,
    replace_cooldown_minutes: Option<Spanned<i64>>,
}

impl fmt::Display for Playbooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for kind in [
            IncidentKind::HighCpu,
            IncidentKind::DiskFull,
            IncidentKind::MemoryPressure,
            IncidentKind::ServiceDown,
        ] {
            let stages: Vec<String> = self
                .stages(kind)
                .iter()
                .map(|s| s.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(" + "))
                .collect();
            writeln!(f, "{kind}: {} -> notify", stages.join(" -> "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
