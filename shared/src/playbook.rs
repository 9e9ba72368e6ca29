//! Declarative playbooks: which actions each kind of incident runs, in what
//! stages, with what parameters. The default is `infra/playbooks.toml`,
//! embedded at build time; `PLAYBOOKS_FILE` overrides it with a complete copy.
//! Validated once at start; every error names the line.

use std::fmt;
use std::ops::Range;
use std::sync::LazyLock;

use serde::Deserialize;
use toml::Spanned;

use crate::incident::IncidentKind;
use crate::plan::ActionName;

pub const DEFAULT_TEXT: &str = include_str!("../../infra/playbooks.toml");

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
    pub high_cpu: HighCpu,
    pub disk_full: DiskFull,
    pub memory_pressure: MemoryPressure,
    pub service_down: ServiceDown,
    /// Keys of the old layout (parameters directly under the kind), each
    /// with the new key to write: accepted for one release. The functions
    /// log them at start; `check-playbooks` prints them.
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct HighCpu {
    pub stages: Vec<Vec<ActionName>>,
    pub scale_out_at_percent: f64,
    pub next_steps: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DiskFull {
    pub stages: Vec<Vec<ActionName>>,
    pub temp_older_than_days: u32,
    pub logs_older_than_days: u32,
    pub log_archive_bucket: Option<String>,
    pub expand_at_percent: f64,
    pub grow_percent: u32,
    pub grow_min_gib: i32,
    pub max_volume_gib: i32,
    pub expand_cooldown_hours: u32,
    pub modification_wait_seconds: u32,
    pub next_steps: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MemoryPressure {
    pub stages: Vec<Vec<ActionName>>,
    pub service_tag: String,
    pub restart_cooldown_minutes: u32,
    pub next_steps: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ServiceDown {
    pub stages: Vec<Vec<ActionName>>,
    pub replace_cooldown_minutes: u32,
    pub reboot_cooldown_minutes: u32,
    /// A Prometheus scrape failure (`up == 0`) with passing EC2 status
    /// checks also reboots or replaces when SSM cannot reach the instance.
    pub act_when_ssm_unreachable: bool,
    pub next_steps: Vec<String>,
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
    /// The stages of a kind's playbook (none for unrouted alerts).
    pub fn stages(&self, kind: IncidentKind) -> &[Vec<ActionName>] {
        match kind {
            IncidentKind::HighCpu => &self.high_cpu.stages,
            IncidentKind::DiskFull => &self.disk_full.stages,
            IncidentKind::MemoryPressure => &self.memory_pressure.stages,
            IncidentKind::ServiceDown => &self.service_down.stages,
            IncidentKind::Unrouted => &[],
        }
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

    pub fn next_steps(&self, kind: IncidentKind) -> &[String] {
        match kind {
            IncidentKind::HighCpu => &self.high_cpu.next_steps,
            IncidentKind::DiskFull => &self.disk_full.next_steps,
            IncidentKind::MemoryPressure => &self.memory_pressure.next_steps,
            IncidentKind::ServiceDown => &self.service_down.next_steps,
            IncidentKind::Unrouted => &[],
        }
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
        let mut v = Validator {
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        let (h, d, m, sd) = (
            raw.high_cpu,
            raw.disk_full,
            raw.memory_pressure,
            raw.service_down,
        );
        let (so, ct, al, ev) = (
            h.scale_out.unwrap_or_default(),
            d.cleanup_temp.unwrap_or_default(),
            d.archive_logs.unwrap_or_default(),
            d.expand_volume.unwrap_or_default(),
        );
        let (rs, ri, rb) = (
            m.restart_service.unwrap_or_default(),
            sd.replace_instance.unwrap_or_default(),
            sd.reboot.unwrap_or_default(),
        );
        let (hs, ds, ms, ss) = (
            h.stages.span(),
            d.stages.span(),
            m.stages.span(),
            sd.stages.span(),
        );
        let scale_out_at = v.pick(
            &hs,
            "high_cpu.scale_out",
            "at_percent",
            so.at_percent,
            "scale_out_at_percent",
            h.scale_out_at_percent,
        );
        let temp_days = v.pick(
            &ds,
            "disk_full.cleanup_temp",
            "older_than_days",
            ct.older_than_days,
            "temp_older_than_days",
            d.temp_older_than_days,
        );
        let logs_days = v.pick(
            &ds,
            "disk_full.archive_logs",
            "older_than_days",
            al.older_than_days,
            "logs_older_than_days",
            d.logs_older_than_days,
        );
        let bucket = v.pick(
            &ds,
            "disk_full.archive_logs",
            "bucket",
            al.bucket,
            "log_archive_bucket",
            d.log_archive_bucket,
        );
        let expand_at = v.pick(
            &ds,
            "disk_full.expand_volume",
            "at_percent",
            ev.at_percent,
            "expand_at_percent",
            d.expand_at_percent,
        );
        let grow_percent = v.pick(
            &ds,
            "disk_full.expand_volume",
            "grow_percent",
            ev.grow_percent,
            "grow_percent",
            d.grow_percent,
        );
        let grow_min = v.pick(
            &ds,
            "disk_full.expand_volume",
            "grow_min_gib",
            ev.grow_min_gib,
            "grow_min_gib",
            d.grow_min_gib,
        );
        let max_gib = v.pick(
            &ds,
            "disk_full.expand_volume",
            "max_volume_gib",
            ev.max_volume_gib,
            "max_volume_gib",
            d.max_volume_gib,
        );
        let expand_cool = v.pick(
            &ds,
            "disk_full.expand_volume",
            "cooldown_hours",
            ev.cooldown_hours,
            "expand_cooldown_hours",
            d.expand_cooldown_hours,
        );
        let mod_wait = v.pick(
            &ds,
            "disk_full.expand_volume",
            "modification_wait_seconds",
            ev.modification_wait_seconds,
            "modification_wait_seconds",
            d.modification_wait_seconds,
        );
        let service_tag = v.pick(
            &ms,
            "memory_pressure.restart_service",
            "service_tag",
            rs.service_tag,
            "service_tag",
            m.service_tag,
        );
        let restart_cool = v.pick(
            &ms,
            "memory_pressure.restart_service",
            "cooldown_minutes",
            rs.cooldown_minutes,
            "restart_cooldown_minutes",
            m.restart_cooldown_minutes.clone(),
        );
        // The old key set both: the reboot's cooldown was the replacement's.
        let replace_cool = v.pick(
            &ss,
            "service_down.replace_instance",
            "cooldown_minutes",
            ri.cooldown_minutes,
            "replace_cooldown_minutes",
            sd.replace_cooldown_minutes.clone(),
        );
        let reboot_cool = match (rb.cooldown_minutes, sd.replace_cooldown_minutes) {
            (Some(c), _) => Some(c),
            (None, Some(old)) => Some(old),
            (None, None) => {
                v.fail(
                    ss.clone(),
                    "[service_down.reboot] needs cooldown_minutes".into(),
                );
                None
            }
        };
        let playbooks = Self {
            high_cpu: HighCpu {
                stages: v.stages("high_cpu", h.stages),
                scale_out_at_percent: v.percent("high_cpu.scale_out.at_percent", scale_out_at),
                next_steps: v.steps("high_cpu", h.next_steps),
            },
            disk_full: DiskFull {
                stages: v.stages("disk_full", d.stages),
                temp_older_than_days: v.range(
                    "disk_full.cleanup_temp.older_than_days",
                    temp_days,
                    1,
                    3650,
                ),
                logs_older_than_days: v.range(
                    "disk_full.archive_logs.older_than_days",
                    logs_days,
                    1,
                    3650,
                ),
                log_archive_bucket: bucket.and_then(|b| v.bucket(b)),
                expand_at_percent: v.percent("disk_full.expand_volume.at_percent", expand_at),
                grow_percent: v.range("disk_full.expand_volume.grow_percent", grow_percent, 1, 100),
                grow_min_gib: v.gib("disk_full.expand_volume.grow_min_gib", grow_min, 1),
                max_volume_gib: v.gib("disk_full.expand_volume.max_volume_gib", max_gib, 2),
                expand_cooldown_hours: v.range(
                    "disk_full.expand_volume.cooldown_hours",
                    expand_cool,
                    // EBS allows a volume few modifications a day anyway.
                    6,
                    24 * 30,
                ),
                modification_wait_seconds: v.range(
                    "disk_full.expand_volume.modification_wait_seconds",
                    mod_wait,
                    1,
                    600,
                ),
                next_steps: v.steps("disk_full", d.next_steps),
            },
            memory_pressure: MemoryPressure {
                stages: v.stages("memory_pressure", m.stages),
                service_tag: service_tag.map(|t| v.tag_key(t)).unwrap_or_default(),
                restart_cooldown_minutes: v.range(
                    "memory_pressure.restart_service.cooldown_minutes",
                    restart_cool,
                    1,
                    24 * 60,
                ),
                next_steps: v.steps("memory_pressure", m.next_steps),
            },
            service_down: ServiceDown {
                stages: v.stages("service_down", sd.stages),
                replace_cooldown_minutes: v.range(
                    "service_down.replace_instance.cooldown_minutes",
                    replace_cool,
                    1,
                    24 * 60,
                ),
                reboot_cooldown_minutes: v.range(
                    "service_down.reboot.cooldown_minutes",
                    reboot_cool,
                    1,
                    24 * 60,
                ),
                act_when_ssm_unreachable: sd.act_when_ssm_unreachable,
                next_steps: v.steps("service_down", sd.next_steps),
            },
            warnings: Vec::new(),
        };
        let warnings = v
            .warnings
            .iter()
            .map(|(span, message)| at(Some(span.clone()), message.clone()).to_string())
            .collect();
        match v.errors.into_iter().next() {
            Some((span, message)) => Err(at(Some(span), message)),
            None => Ok(Self {
                warnings,
                ..playbooks
            }),
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

struct Validator {
    errors: Vec<(Range<usize>, String)>,
    warnings: Vec<(Range<usize>, String)>,
}

impl Validator {
    fn fail(&mut self, span: Range<usize>, message: String) {
        self.errors.push((span, message));
    }

    /// A parameter from its action's table (`[kind.action] key`), or from
    /// the old layout (`old` directly under the kind) with a warning naming
    /// the new key. Both, or neither: an error.
    fn pick<T>(
        &mut self,
        kind_span: &Range<usize>,
        table: &str,
        key: &str,
        new: Option<Spanned<T>>,
        old_key: &str,
        old: Option<Spanned<T>>,
    ) -> Option<Spanned<T>> {
        let kind = table.split('.').next().unwrap_or(table);
        match (new, old) {
            (Some(n), None) => Some(n),
            (None, Some(o)) => {
                self.warnings.push((
                    o.span(),
                    format!(
                        "{kind}.{old_key} is the old layout, accepted for one release: write `{key} = ...` under [{table}]"
                    ),
                ));
                Some(o)
            }
            (Some(_), Some(o)) => {
                self.fail(
                    o.span(),
                    format!("{kind}.{old_key} is the old spelling of [{table}] {key}, which is also given: keep one"),
                );
                None
            }
            (None, None) => {
                self.fail(kind_span.clone(), format!("[{table}] needs {key}"));
                None
            }
        }
    }

    fn stages<A: Into<ActionName> + Copy>(
        &mut self,
        kind: &str,
        raw: Spanned<Vec<Vec<Spanned<A>>>>,
    ) -> Vec<Vec<ActionName>> {
        let mut seen: Vec<ActionName> = Vec::new();
        let mut out = Vec::new();
        for stage in raw.into_inner() {
            let mut s = Vec::new();
            for a in stage {
                let span = a.span();
                let name: ActionName = (*a.get_ref()).into();
                if seen.contains(&name) {
                    self.fail(span, format!("{kind}.stages lists {} twice", name.as_str()));
                }
                seen.push(name);
                s.push(name);
            }
            if !s.is_empty() {
                out.push(s);
            }
        }
        out
    }

    fn percent(&mut self, field: &str, v: Option<Spanned<f64>>) -> f64 {
        let Some(v) = v else { return 100.0 };
        let x = *v.get_ref();
        if !(x > 0.0 && x <= 100.0) {
            self.fail(
                v.span(),
                format!("{field} is {x}, expected a percentage above 0 and at most 100"),
            );
        }
        x
    }

    fn range(&mut self, field: &str, v: Option<Spanned<i64>>, min: i64, max: i64) -> u32 {
        let Some(v) = v else {
            return u32::try_from(min).unwrap_or_default();
        };
        let x = *v.get_ref();
        if x < min || x > max {
            self.fail(
                v.span(),
                format!("{field} is {x}, expected a whole number from {min} to {max}"),
            );
        }
        u32::try_from(x.clamp(min, max)).unwrap_or_default()
    }

    fn gib(&mut self, field: &str, v: Option<Spanned<i64>>, min: i64) -> i32 {
        // gp2/gp3/io1/io2/st1/sc1 all stop at 16 TiB (io2 Block Express and
        // newer gp3 go further, deliberately not assumed here).
        i32::try_from(self.range(field, v, min, 16_384)).unwrap_or_default()
    }

    fn bucket(&mut self, v: Spanned<String>) -> Option<String> {
        let b = v.get_ref().trim();
        if b.is_empty() {
            return None;
        }
        if !is_bucket_name(b) {
            self.fail(
                v.span(),
                format!(
                    "disk_full.archive_logs.bucket is {b:?}, not an S3 bucket name (3-63 of a-z 0-9 . -)"
                ),
            );
        }
        Some(b.to_owned())
    }

    fn tag_key(&mut self, v: Spanned<String>) -> String {
        let k = v.get_ref().trim();
        if k.is_empty() || k.len() > 128 || k.starts_with("aws:") {
            self.fail(
                v.span(),
                format!(
                    "memory_pressure.restart_service.service_tag is {k:?}: expected a tag key of 1-128 characters, not starting with aws:"
                ),
            );
        }
        k.to_owned()
    }

    fn steps(&mut self, kind: &str, v: Spanned<Vec<String>>) -> Vec<String> {
        if v.get_ref().iter().any(|s| s.trim().is_empty()) {
            self.fail(v.span(), format!("{kind}.next_steps has an empty step"));
        }
        v.into_inner()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    high_cpu: RawHighCpu,
    disk_full: RawDiskFull,
    memory_pressure: RawMemory,
    service_down: RawServiceDown,
}

// Each kind's table: its stages and next steps, and one table per action
// (`[disk_full.expand_volume]`). The old layout's keys directly under the
// kind are still read, with a warning (`Validator::pick`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHighCpu {
    stages: Spanned<Vec<Vec<Spanned<HighCpuAction>>>>,
    next_steps: Spanned<Vec<String>>,
    scale_out: Option<RawScaleOut>,
    scale_out_at_percent: Option<Spanned<f64>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScaleOut {
    at_percent: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDiskFull {
    stages: Spanned<Vec<Vec<Spanned<DiskAction>>>>,
    next_steps: Spanned<Vec<String>>,
    cleanup_temp: Option<RawCleanupTemp>,
    archive_logs: Option<RawArchiveLogs>,
    expand_volume: Option<RawExpandVolume>,
    temp_older_than_days: Option<Spanned<i64>>,
    logs_older_than_days: Option<Spanned<i64>>,
    log_archive_bucket: Option<Spanned<String>>,
    expand_at_percent: Option<Spanned<f64>>,
    grow_percent: Option<Spanned<i64>>,
    grow_min_gib: Option<Spanned<i64>>,
    max_volume_gib: Option<Spanned<i64>>,
    expand_cooldown_hours: Option<Spanned<i64>>,
    modification_wait_seconds: Option<Spanned<i64>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCleanupTemp {
    older_than_days: Option<Spanned<i64>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArchiveLogs {
    older_than_days: Option<Spanned<i64>>,
    /// An S3 bucket name; empty: compress in place only.
    bucket: Option<Spanned<String>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpandVolume {
    at_percent: Option<Spanned<f64>>,
    grow_percent: Option<Spanned<i64>>,
    grow_min_gib: Option<Spanned<i64>>,
    max_volume_gib: Option<Spanned<i64>>,
    cooldown_hours: Option<Spanned<i64>>,
    modification_wait_seconds: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMemory {
    stages: Spanned<Vec<Vec<Spanned<MemoryAction>>>>,
    next_steps: Spanned<Vec<String>>,
    restart_service: Option<RawRestartService>,
    service_tag: Option<Spanned<String>>,
    restart_cooldown_minutes: Option<Spanned<i64>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRestartService {
    service_tag: Option<Spanned<String>>,
    cooldown_minutes: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServiceDown {
    stages: Spanned<Vec<Vec<Spanned<ServiceDownAction>>>>,
    next_steps: Spanned<Vec<String>>,
    #[serde(default)]
    act_when_ssm_unreachable: bool,
    replace_instance: Option<RawCooldown>,
    reboot: Option<RawCooldown>,
    replace_cooldown_minutes: Option<Spanned<i64>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCooldown {
    cooldown_minutes: Option<Spanned<i64>>,
}

// One enum per playbook, so an action that a playbook cannot run is an
// "unknown variant" error at its line, listing the ones it can.
#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum HighCpuAction {
    Snapshot,
    CollectDiagnostics,
    ScaleOut,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum DiskAction {
    CleanupTemp,
    ArchiveLogs,
    ExpandVolume,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum MemoryAction {
    CollectDiagnostics,
    RestartService,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ServiceDownAction {
    Snapshot,
    CollectEvidence,
    ReplaceInstance,
    Reboot,
}

impl From<HighCpuAction> for ActionName {
    fn from(a: HighCpuAction) -> Self {
        match a {
            HighCpuAction::Snapshot => Self::Snapshot,
            HighCpuAction::CollectDiagnostics => Self::CollectDiagnostics,
            HighCpuAction::ScaleOut => Self::ScaleOut,
        }
    }
}

impl From<DiskAction> for ActionName {
    fn from(a: DiskAction) -> Self {
        match a {
            DiskAction::CleanupTemp => Self::CleanupTemp,
            DiskAction::ArchiveLogs => Self::ArchiveLogs,
            DiskAction::ExpandVolume => Self::ExpandVolume,
        }
    }
}

impl From<MemoryAction> for ActionName {
    fn from(a: MemoryAction) -> Self {
        match a {
            MemoryAction::CollectDiagnostics => Self::CollectDiagnostics,
            MemoryAction::RestartService => Self::RestartService,
        }
    }
}

impl From<ServiceDownAction> for ActionName {
    fn from(a: ServiceDownAction) -> Self {
        match a {
            ServiceDownAction::Snapshot => Self::Snapshot,
            ServiceDownAction::CollectEvidence => Self::CollectEvidence,
            ServiceDownAction::ReplaceInstance => Self::ReplaceInstance,
            ServiceDownAction::Reboot => Self::Reboot,
        }
    }
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

/// An S3 bucket name (3-63 of a-z 0-9 . -, alphanumeric at both ends):
/// the only text of the configuration that goes into a script.
pub fn is_bucket_name(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        && b.starts_with(|c: char| c.is_ascii_alphanumeric())
        && b.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !b.contains("..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_file_validates() {
        let p = Playbooks::parse("default", DEFAULT_TEXT).unwrap();
        assert_eq!(
            p.stages(IncidentKind::DiskFull),
            [
                vec![ActionName::CleanupTemp, ActionName::ArchiveLogs],
                vec![ActionName::ExpandVolume]
            ]
        );
        assert_eq!(p.high_cpu.scale_out_at_percent, 90.0);
        assert_eq!(p.disk_full.max_volume_gib, 2048);
        assert_eq!(p.disk_full.log_archive_bucket, None);
        assert_eq!(p.next_steps(IncidentKind::HighCpu).len(), 5);
        assert!(p.runs(IncidentKind::ServiceDown, ActionName::Reboot));
        assert_eq!(
            p.stage_of(IncidentKind::ServiceDown, ActionName::ReplaceInstance),
            1
        );
        assert_eq!(
            p.to_string().lines().next(),
            Some("high_cpu: snapshot + collect_diagnostics + scale_out -> notify")
        );
    }

    fn broken(from: &str, to: &str) -> PlaybookError {
        assert!(DEFAULT_TEXT.contains(from), "{from}");
        Playbooks::parse("p.toml", &DEFAULT_TEXT.replacen(from, to, 1)).unwrap_err()
    }

    fn line_with(needle: &str) -> usize {
        DEFAULT_TEXT
            .lines()
            .position(|l| l.contains(needle))
            .unwrap()
            + 1
    }

    #[test]
    fn errors_name_the_line_and_the_problem() {
        let e = broken(
            r#"stages = [["cleanup_temp", "archive_logs"], ["expand_volume"]]"#,
            r#"stages = [["cleanup_temp", "scale_out"], ["expand_volume"]]"#,
        );
        assert_eq!(e.line, line_with(r#"[["cleanup_temp", "archive_logs"]"#));
        assert!(e.message.contains("unknown variant `scale_out`"), "{e}");
        assert!(e.message.contains("cleanup_temp"), "{e}");
        assert!(e.to_string().starts_with("playbooks file p.toml, line "));

        let e = broken("grow_percent = 20", "grow_percent = 250");
        assert_eq!(e.line, line_with("grow_percent = 20"));
        assert_eq!(
            e.message,
            "disk_full.expand_volume.grow_percent is 250, expected a whole number from 1 to 100"
        );

        let e = broken("at_percent = 95.0", "at_percent = 0.0");
        assert!(e.message.contains("expected a percentage"), "{e}");

        let e = broken("grow_min_gib = 10", "grow_min_gib = 10\ngrow_max = 3");
        assert_eq!(e.line, line_with("grow_min_gib = 10") + 1);
        assert!(e.message.contains("unknown field `grow_max`"), "{e}");

        let e = broken(
            r#"[["collect_diagnostics"], ["restart_service"]]"#,
            r#"[["collect_diagnostics"], ["restart_service", "collect_diagnostics"]]"#,
        );
        assert!(e.message.contains("lists collect_diagnostics twice"), "{e}");

        let e = broken("at_percent = 90.0", "at_percent = \"high\"");
        assert_eq!(e.line, line_with("at_percent = 90.0"));
        assert!(e.message.contains("invalid type"), "{e}");

        let e = broken(r#"bucket = """#, r#"bucket = "Logs_Bucket""#);
        assert!(e.message.contains("not an S3 bucket name"), "{e}");

        let typo = DEFAULT_TEXT.replace("[service_down", "[service_dwon");
        let e = Playbooks::parse("p.toml", &typo).unwrap_err();
        assert!(e.message.contains("service_dwon"), "{e}");

        let e = broken(
            "max_volume_gib = 2048",
            "max_volume_gib = 2048\nmax_volume_gib = 4096",
        );
        assert_eq!(e.line, line_with("max_volume_gib = 2048") + 1);

        let e = Playbooks::parse("p.toml", "[high_cpu\n").unwrap_err();
        assert_eq!(e.line, 1);
    }

    /// The layout before per-action tables: every parameter directly under
    /// its kind. Still read, each key with a warning naming the new one.
    const OLD_LAYOUT: &str = r#"
[high_cpu]
stages = [["snapshot", "collect_diagnostics", "scale_out"]]
scale_out_at_percent = 80.0
next_steps = ["Look."]

[disk_full]
stages = [["cleanup_temp", "archive_logs"], ["expand_volume"]]
temp_older_than_days = 3
logs_older_than_days = 4
log_archive_bucket = "my-logs"
expand_at_percent = 93.0
grow_percent = 25
grow_min_gib = 5
max_volume_gib = 1000
expand_cooldown_hours = 12
modification_wait_seconds = 60
next_steps = ["Look."]

[memory_pressure]
stages = [["collect_diagnostics"], ["restart_service"]]
service_tag = "svc"
restart_cooldown_minutes = 20
next_steps = ["Look."]

[service_down]
stages = [["snapshot", "collect_evidence"], ["replace_instance", "reboot"]]
replace_cooldown_minutes = 10
next_steps = ["Look."]
"#;

    #[test]
    fn the_old_layout_is_read_with_a_warning_naming_the_new_key() {
        let p = Playbooks::parse("old.toml", OLD_LAYOUT).unwrap();
        assert_eq!(p.high_cpu.scale_out_at_percent, 80.0);
        assert_eq!(p.disk_full.temp_older_than_days, 3);
        assert_eq!(p.disk_full.logs_older_than_days, 4);
        assert_eq!(p.disk_full.log_archive_bucket.as_deref(), Some("my-logs"));
        assert_eq!(p.disk_full.expand_at_percent, 93.0);
        assert_eq!(p.disk_full.grow_percent, 25);
        assert_eq!(p.disk_full.grow_min_gib, 5);
        assert_eq!(p.disk_full.max_volume_gib, 1000);
        assert_eq!(p.disk_full.expand_cooldown_hours, 12);
        assert_eq!(p.disk_full.modification_wait_seconds, 60);
        assert_eq!(p.memory_pressure.service_tag, "svc");
        assert_eq!(p.memory_pressure.restart_cooldown_minutes, 20);
        assert_eq!(p.service_down.replace_cooldown_minutes, 10);
        assert_eq!(p.service_down.reboot_cooldown_minutes, 10);
        assert_eq!(p.warnings.len(), 13, "{:#?}", p.warnings);
        assert!(
            p.warnings.iter().any(|w| w
                == "playbooks file old.toml, line 9: disk_full.temp_older_than_days is the old layout, accepted for one release: write `older_than_days = ...` under [disk_full.cleanup_temp]"),
            "{:#?}",
            p.warnings
        );
        assert!(
            p.warnings
                .iter()
                .any(|w| w.contains("write `at_percent = ...` under [disk_full.expand_volume]")),
            "{:#?}",
            p.warnings
        );
        // The new layout warns of nothing.
        assert_eq!(Playbooks::default().warnings, Vec::<String>::new());
    }

    #[test]
    fn a_parameter_given_in_both_layouts_or_in_neither_is_an_error() {
        let both = DEFAULT_TEXT.replacen(
            "[disk_full]\n",
            "[disk_full]\nexpand_at_percent = 90.0\n",
            1,
        );
        let e = Playbooks::parse("p", &both).unwrap_err();
        assert_eq!(
            e.message,
            "disk_full.expand_at_percent is the old spelling of [disk_full.expand_volume] at_percent, which is also given: keep one"
        );
        let neither = DEFAULT_TEXT.replacen("at_percent = 95.0\n", "", 1);
        let e = Playbooks::parse("p", &neither).unwrap_err();
        assert_eq!(e.message, "[disk_full.expand_volume] needs at_percent");
        let e = broken("cooldown_hours = 24", "cooldown_hour = 24");
        assert!(e.message.contains("unknown field `cooldown_hour`"), "{e}");
    }

    #[test]
    fn an_action_left_out_is_off() {
        let text = DEFAULT_TEXT.replacen(
            r#"[["collect_diagnostics"], ["restart_service"]]"#,
            r#"[["collect_diagnostics"]]"#,
            1,
        );
        let p = Playbooks::parse("p", &text).unwrap();
        assert!(!p.runs(IncidentKind::MemoryPressure, ActionName::RestartService));
        assert!(p.runs(IncidentKind::MemoryPressure, ActionName::CollectDiagnostics));
    }

    #[test]
    fn load_names_an_unreadable_file() {
        let e = Playbooks::load(Some("/nonexistent/playbooks.toml")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/playbooks.toml"), "{e}");
        assert!(e.message.contains("cannot be read"), "{e}");
    }
}
