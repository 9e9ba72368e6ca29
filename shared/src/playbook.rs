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
        let mut v = Validator { errors: Vec::new() };
        let playbooks = Self {
            high_cpu: HighCpu {
                stages: v.stages("high_cpu", raw.high_cpu.stages),
                scale_out_at_percent: v.percent(
                    "high_cpu.scale_out_at_percent",
                    raw.high_cpu.scale_out_at_percent,
                ),
                next_steps: v.steps("high_cpu", raw.high_cpu.next_steps),
            },
            disk_full: DiskFull {
                stages: v.stages("disk_full", raw.disk_full.stages),
                temp_older_than_days: v.range(
                    "disk_full.temp_older_than_days",
                    raw.disk_full.temp_older_than_days,
                    1,
                    3650,
                ),
                logs_older_than_days: v.range(
                    "disk_full.logs_older_than_days",
                    raw.disk_full.logs_older_than_days,
                    1,
                    3650,
                ),
                log_archive_bucket: v.bucket(raw.disk_full.log_archive_bucket),
                expand_at_percent: v.percent(
                    "disk_full.expand_at_percent",
                    raw.disk_full.expand_at_percent,
                ),
                grow_percent: v.range("disk_full.grow_percent", raw.disk_full.grow_percent, 1, 100),
                grow_min_gib: v.gib("disk_full.grow_min_gib", raw.disk_full.grow_min_gib, 1),
                max_volume_gib: v.gib("disk_full.max_volume_gib", raw.disk_full.max_volume_gib, 2),
                expand_cooldown_hours: v.range(
                    "disk_full.expand_cooldown_hours",
                    raw.disk_full.expand_cooldown_hours,
                    // EBS allows a volume few modifications a day anyway.
                    6,
                    24 * 30,
                ),
                modification_wait_seconds: v.range(
                    "disk_full.modification_wait_seconds",
                    raw.disk_full.modification_wait_seconds,
                    1,
                    600,
                ),
                next_steps: v.steps("disk_full", raw.disk_full.next_steps),
            },
            memory_pressure: MemoryPressure {
                stages: v.stages("memory_pressure", raw.memory_pressure.stages),
                service_tag: v.tag_key(raw.memory_pressure.service_tag),
                restart_cooldown_minutes: v.range(
                    "memory_pressure.restart_cooldown_minutes",
                    raw.memory_pressure.restart_cooldown_minutes,
                    1,
                    24 * 60,
                ),
                next_steps: v.steps("memory_pressure", raw.memory_pressure.next_steps),
            },
            service_down: ServiceDown {
                stages: v.stages("service_down", raw.service_down.stages),
                replace_cooldown_minutes: v.range(
                    "service_down.replace_cooldown_minutes",
                    raw.service_down.replace_cooldown_minutes,
                    1,
                    24 * 60,
                ),
                act_when_ssm_unreachable: raw.service_down.act_when_ssm_unreachable,
                next_steps: v.steps("service_down", raw.service_down.next_steps),
            },
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

struct Validator {
    errors: Vec<(Range<usize>, String)>,
}

impl Validator {
    fn fail(&mut self, span: Range<usize>, message: String) {
        self.errors.push((span, message));
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

    fn percent(&mut self, field: &str, v: Spanned<f64>) -> f64 {
        let x = *v.get_ref();
        if !(x > 0.0 && x <= 100.0) {
            self.fail(
                v.span(),
                format!("{field} is {x}, expected a percentage above 0 and at most 100"),
            );
        }
        x
    }

    fn range(&mut self, field: &str, v: Spanned<i64>, min: i64, max: i64) -> u32 {
        let x = *v.get_ref();
        if x < min || x > max {
            self.fail(
                v.span(),
                format!("{field} is {x}, expected a whole number from {min} to {max}"),
            );
        }
        u32::try_from(x.clamp(min, max)).unwrap_or_default()
    }

    fn gib(&mut self, field: &str, v: Spanned<i64>, min: i64) -> i32 {
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
                    "disk_full.log_archive_bucket is {b:?}, not an S3 bucket name (3-63 of a-z 0-9 . -)"
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
                    "memory_pressure.service_tag is {k:?}: expected a tag key of 1-128 characters, not starting with aws:"
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHighCpu {
    stages: Spanned<Vec<Vec<Spanned<HighCpuAction>>>>,
    scale_out_at_percent: Spanned<f64>,
    next_steps: Spanned<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDiskFull {
    stages: Spanned<Vec<Vec<Spanned<DiskAction>>>>,
    temp_older_than_days: Spanned<i64>,
    logs_older_than_days: Spanned<i64>,
    log_archive_bucket: Spanned<String>,
    expand_at_percent: Spanned<f64>,
    grow_percent: Spanned<i64>,
    grow_min_gib: Spanned<i64>,
    max_volume_gib: Spanned<i64>,
    expand_cooldown_hours: Spanned<i64>,
    modification_wait_seconds: Spanned<i64>,
    next_steps: Spanned<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMemory {
    stages: Spanned<Vec<Vec<Spanned<MemoryAction>>>>,
    service_tag: Spanned<String>,
    restart_cooldown_minutes: Spanned<i64>,
    next_steps: Spanned<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServiceDown {
    stages: Spanned<Vec<Vec<Spanned<ServiceDownAction>>>>,
    replace_cooldown_minutes: Spanned<i64>,
    #[serde(default)]
    act_when_ssm_unreachable: bool,
    next_steps: Spanned<Vec<String>>,
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
            "disk_full.grow_percent is 250, expected a whole number from 1 to 100"
        );

        let e = broken("expand_at_percent = 95.0", "expand_at_percent = 0.0");
        assert!(e.message.contains("expected a percentage"), "{e}");

        let e = broken("grow_min_gib = 10", "grow_min_gib = 10\ngrow_max = 3");
        assert_eq!(e.line, line_with("grow_min_gib = 10") + 1);
        assert!(e.message.contains("unknown field `grow_max`"), "{e}");

        let e = broken(
            r#"[["collect_diagnostics"], ["restart_service"]]"#,
            r#"[["collect_diagnostics"], ["restart_service", "collect_diagnostics"]]"#,
        );
        assert!(e.message.contains("lists collect_diagnostics twice"), "{e}");

        let e = broken(
            "scale_out_at_percent = 90.0",
            "scale_out_at_percent = \"high\"",
        );
        assert_eq!(e.line, line_with("scale_out_at_percent = 90.0"));
        assert!(e.message.contains("invalid type"), "{e}");

        let e = broken(
            r#"log_archive_bucket = """#,
            r#"log_archive_bucket = "Logs_Bucket""#,
        );
        assert!(e.message.contains("not an S3 bucket name"), "{e}");

        let e = broken("[service_down]", "[service_dwon]");
        assert!(e.message.contains("service_dwon"), "{e}");

        let e = broken(
            "max_volume_gib = 2048",
            "max_volume_gib = 2048\nmax_volume_gib = 4096",
        );
        assert_eq!(e.line, line_with("max_volume_gib = 2048") + 1);

        let e = Playbooks::parse("p.toml", "[high_cpu\n").unwrap_err();
        assert_eq!(e.line, 1);
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
