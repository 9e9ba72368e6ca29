//! Declarative playbooks: which actions each kind of incident runs, in what
//! stages, with what parameters. The default is `infra/playbooks.toml`,
//! embedded at build time; `PLAYBOOKS_FILE` overrides it with a complete copy.
//! Validated once at start; every error names the line.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::LazyLock;

use serde::Deserialize;
use toml::Spanned;

use crate::actions::{self, ActionName, ActionParams};
use crate::autonomy::{ActionMode, Autonomy, Rate, Scope, Subject};
use crate::incident::IncidentKind;
use crate::params::{Table, Validator};

pub use crate::actions::archive_logs::is_bucket_name;

/// SQS delays a message at most 15 minutes: the longest check delay.
pub const MAX_DELAY_MINUTES: u32 = 15;

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
    /// The predictive check's incidents (`forecast`). A file written before
    /// it existed may leave it out: the embedded one's is used.
    pub disk_filling: Playbook,
    /// `[scopes.NAME]`, in file order: modes by account, tags and group.
    pub scopes: Vec<Scope>,
    /// Still-firing checks in a scope that demote an `auto` action to
    /// `approve` there (`demote_after`, default "2 in 7d").
    pub demote_after: Rate,
    /// Runs of one action on one resource after which the next changes
    /// nothing (`chronic_after`, default "3 in 7d").
    pub chronic_after: Rate,
    /// Keys of the old layout (parameters directly under the kind), each
    /// with the new key to write: accepted for one release. The functions
    /// log them at start; `check-playbooks` prints them.
    pub warnings: Vec<String>,
}

/// One kind's playbook: its stages, its next steps, and the parameters of
/// each action from the action's own table (`[kind.action]`), which it
/// derefs to (`playbook.expand_volume.at_percent`).
#[derive(Clone, Debug, PartialEq)]
pub struct Playbook {
    pub stages: Vec<Vec<ActionName>>,
    pub next_steps: Vec<String>,
    pub params: ActionParams,
    /// The modes the actions' tables set (`mode`, or `approval =
    /// "required"` for `approve`); scopes override them
    /// (`Playbooks::mode_of`).
    pub modes: BTreeMap<ActionName, ActionMode>,
    /// The actions whose tables set `budget_per_hour`: changes an hour each
    /// may make in one account (`crate::budget`).
    pub budgets: BTreeMap<ActionName, u32>,
    /// A Prometheus scrape failure (`up == 0`) with passing EC2 status
    /// checks also reboots or replaces when SSM cannot reach the instance.
    pub act_when_ssm_unreachable: bool,
    /// How long after the fix the delayed check looks at the alarm again
    /// (0 to 15 minutes: SQS's longest delay).
    pub verify_after_minutes: u32,
    /// `disk_filling` only: a filesystem whose fitted line reaches 100%
    /// within this many hours is an incident.
    pub horizon_hours: u32,
}

impl Playbook {
    /// Every action `auto` (tests that exercise a change alone).
    pub fn all_auto(&mut self) {
        for a in ActionName::ALL {
            self.modes.insert(*a, ActionMode::Auto);
        }
    }

    fn empty() -> Self {
        Self {
            stages: Vec::new(),
            next_steps: Vec::new(),
            params: ActionParams::default(),
            modes: BTreeMap::new(),
            budgets: BTreeMap::new(),
            act_when_ssm_unreachable: false,
            verify_after_minutes: DEFAULT_VERIFY_AFTER_MINUTES,
            horizon_hours: DEFAULT_HORIZON_HOURS,
        }
    }
}

impl std::ops::Deref for Playbook {
    type Target = ActionParams;
    fn deref(&self) -> &ActionParams {
        &self.params
    }
}

impl std::ops::DerefMut for Playbook {
    fn deref_mut(&mut self) -> &mut ActionParams {
        &mut self.params
    }
}

static DEFAULT: LazyLock<Playbooks> = LazyLock::new(|| {
    // The embedded file is checked by a unit test; it cannot fail here.
    Playbooks::parse(EMBEDDED, DEFAULT_TEXT)
        .unwrap_or_else(|e| panic!("the embedded playbooks do not validate: {e}"))
});

const EMBEDDED: &str = "(embedded infra/playbooks.toml)";

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
            IncidentKind::DiskFilling => Some(&self.disk_filling),
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

    /// Whether any change may be held for a person: any playbook lists a
    /// fix, which a mode, a scope, a demotion or a chronic problem can hold.
    pub fn holds_any(&self) -> bool {
        [
            &self.high_cpu,
            &self.disk_full,
            &self.memory_pressure,
            &self.service_down,
            &self.disk_filling,
        ]
        .iter()
        .any(|p| p.stages.iter().flatten().any(|a| a.is_fix()))
    }

    /// The mode of `action` in a `kind` incident on `subject`: the first
    /// matching scope naming it, else the kind's table, else the default.
    pub fn mode_of(
        &self,
        kind: IncidentKind,
        action: ActionName,
        subject: &Subject<'_>,
    ) -> Autonomy {
        let table = self.get(kind).and_then(|p| p.modes.get(&action).copied());
        crate::autonomy::resolve(&self.scopes, table, action, subject)
    }

    /// The mode in a named scope (the trust report's): the scope's own, else
    /// the kind's table, else the default.
    pub fn mode_in_scope(
        &self,
        scope: &str,
        kind: Option<IncidentKind>,
        action: ActionName,
    ) -> ActionMode {
        self.scopes
            .iter()
            .find(|s| s.name == scope)
            .and_then(|s| s.modes.get(&action).copied())
            .or_else(|| {
                kind.and_then(|k| self.get(k))
                    .and_then(|p| p.modes.get(&action).copied())
            })
            .unwrap_or_else(|| ActionMode::default_for(action))
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

    pub fn disk_filling_horizon_hours(&self) -> u32 {
        self.disk_filling.horizon_hours
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
            disk_filling: match raw.disk_filling {
                Some(r) => read(&mut v, IncidentKind::DiskFilling, r),
                None if origin == EMBEDDED => {
                    v.fail(
                        0..0,
                        "[disk_filling] is missing from the embedded file".into(),
                    );
                    Playbook::empty()
                }
                None => Self::default().disk_filling,
            },
            scopes: scopes::read(&mut v, raw.scopes),
            demote_after: scopes::rate(
                &mut v,
                "demote_after",
                raw.demote_after,
                crate::autonomy::DEFAULT_DEMOTE_AFTER,
            ),
            chronic_after: scopes::rate(
                &mut v,
                "chronic_after",
                raw.chronic_after,
                crate::autonomy::DEFAULT_CHRONIC_AFTER,
            ),
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
fn read(v: &mut Validator, kind: IncidentKind, mut raw: RawPlaybook) -> Playbook {
    let k = kind.as_str();
    let span = raw.stages.span();
    let mut seen: Vec<ActionName> = Vec::new();
    let mut stages = Vec::new();
    for stage in std::mem::take(raw.stages.get_mut()) {
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
    let steps = Spanned::new(
        raw.next_steps.span(),
        std::mem::take(raw.next_steps.get_mut()),
    );
    let next_steps = v.steps(k, steps);
    old_layout(v, k, &mut raw);
    let (params, modes, budgets) = read_tables(v, k, &seen, &span, &mut raw);
    v.table = Table {
        name: k.to_owned(),
        listed: false,
        span: span.clone(),
    };
    Playbook {
        stages,
        next_steps,
        params,
        modes,
        budgets,
        act_when_ssm_unreachable: raw.act_when_ssm_unreachable,
        verify_after_minutes: v.optional_range(
            "verify_after_minutes",
            raw.verify_after_minutes.take(),
            (0, i64::from(MAX_DELAY_MINUTES)),
            DEFAULT_VERIFY_AFTER_MINUTES,
        ),
        horizon_hours: v.optional_range(
            "horizon_hours",
            raw.horizon_hours.take(),
            (1, 7 * 24),
            DEFAULT_HORIZON_HOURS,
        ),
    }
}

/// How far ahead the predictive check looks (`disk_filling.horizon_hours`).
pub const DEFAULT_HORIZON_HOURS: u32 = 6;

/// The delayed check's default delay.
pub const DEFAULT_VERIFY_AFTER_MINUTES: u32 = 10;

/// `old_layout`'s part for `expand_volume`: its flat keys to its table.
fn old_expand_layout(v: &mut Validator, k: &str, raw: &mut RawPlaybook) {
    let ev = raw.expand_volume.get_or_insert_default();
    let e = format!("{k}.expand_volume");
    ev.at_percent = v.pick(
        &e,
        "at_percent",
        ev.at_percent.take(),
        "expand_at_percent",
        raw.expand_at_percent.take(),
    );
    ev.grow_percent = v.pick(
        &e,
        "grow_percent",
        ev.grow_percent.take(),
        "grow_percent",
        raw.grow_percent.take(),
    );
    ev.grow_min_gib = v.pick(
        &e,
        "grow_min_gib",
        ev.grow_min_gib.take(),
        "grow_min_gib",
        raw.grow_min_gib.take(),
    );
    ev.max_volume_gib = v.pick(
        &e,
        "max_volume_gib",
        ev.max_volume_gib.take(),
        "max_volume_gib",
        raw.max_volume_gib.take(),
    );
    ev.cooldown_hours = v.pick(
        &e,
        "cooldown_hours",
        ev.cooldown_hours.take(),
        "expand_cooldown_hours",
        raw.expand_cooldown_hours.take(),
    );
    ev.modification_wait_seconds = v.pick(
        &e,
        "modification_wait_seconds",
        ev.modification_wait_seconds.take(),
        "modification_wait_seconds",
        raw.modification_wait_seconds.take(),
    );
}

/// The layout before per-action tables: each old key becomes its action's
/// key, with a warning naming it (`Validator::pick`).
fn old_layout(v: &mut Validator, k: &str, raw: &mut RawPlaybook) {
    let t = |a: &str| format!("{k}.{a}");
    let so = raw.scale_out.get_or_insert_default();
    so.at_percent = v.pick(
        &t("scale_out"),
        "at_percent",
        so.at_percent.take(),
        "scale_out_at_percent",
        raw.scale_out_at_percent.take(),
    );
    let ct = raw.cleanup_temp.get_or_insert_default();
    ct.older_than_days = v.pick(
        &t("cleanup_temp"),
        "older_than_days",
        ct.older_than_days.take(),
        "temp_older_than_days",
        raw.temp_older_than_days.take(),
    );
    let al = raw.archive_logs.get_or_insert_default();
    al.older_than_days = v.pick(
        &t("archive_logs"),
        "older_than_days",
        al.older_than_days.take(),
        "logs_older_than_days",
        raw.logs_older_than_days.take(),
    );
    al.bucket = v.pick(
        &t("archive_logs"),
        "bucket",
        al.bucket.take(),
        "log_archive_bucket",
        raw.log_archive_bucket.take(),
    );
    old_expand_layout(v, k, raw);
    let rs = raw.restart_service.get_or_insert_default();
    rs.service_tag = v.pick(
        &t("restart_service"),
        "service_tag",
        rs.service_tag.take(),
        "service_tag",
        raw.service_tag.take(),
    );
    rs.cooldown_minutes = v.pick(
        &t("restart_service"),
        "cooldown_minutes",
        rs.cooldown_minutes.take(),
        "restart_cooldown_minutes",
        raw.restart_cooldown_minutes.take(),
    );
    // The old key set both: the reboot's cooldown was the replacement's.
    let old = raw.replace_cooldown_minutes.take();
    let rb = raw.reboot.get_or_insert_default();
    if rb.cooldown_minutes.is_none() {
        rb.cooldown_minutes = old.clone();
    }
    let ri = raw.replace_instance.get_or_insert_default();
    ri.cooldown_minutes = v.pick(
        &t("replace_instance"),
        "cooldown_minutes",
        ri.cooldown_minutes.take(),
        "replace_cooldown_minutes",
        old,
    );
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    high_cpu: RawPlaybook,
    disk_full: RawPlaybook,
    memory_pressure: RawPlaybook,
    service_down: RawPlaybook,
    disk_filling: Option<RawPlaybook>,
    scopes: Option<BTreeMap<String, Spanned<scopes::RawScope>>>,
    demote_after: Option<Spanned<String>>,
    chronic_after: Option<Spanned<String>>,
}

/// A kind's table, and the reading of its actions' tables: one field and
/// one `Params::read` per action of the registry's list.
macro_rules! raw_playbook {
    ($($(#[$attr:meta])* $module:ident => $variant:ident),+ $(,)?) => {
        /// Any action may be listed in any kind's stages: what it needs
        /// observed comes with it (`ActionName::needs`), and its parameters
        /// from its own table.
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawPlaybook {
            stages: Spanned<Vec<Vec<Spanned<ActionName>>>>,
            next_steps: Spanned<Vec<String>>,
            #[serde(default)]
            act_when_ssm_unreachable: bool,
            verify_after_minutes: Option<Spanned<i64>>,
            horizon_hours: Option<Spanned<i64>>,
            $($module: Option<actions::$module::Raw>,)+
            // The layout before per-action tables (`old_layout`).
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

        /// Each action's table, validated by the action; a listed action's
        /// missing key is an error, an unlisted one keeps its defaults.
        fn read_tables(
            v: &mut Validator,
            k: &str,
            listed: &[ActionName],
            span: &Range<usize>,
            raw: &mut RawPlaybook,
        ) -> (ActionParams, BTreeMap<ActionName, ActionMode>, BTreeMap<ActionName, u32>) {
            let mut modes = BTreeMap::new();
            let mut budgets = BTreeMap::new();
            let params = ActionParams {
                $($module: {
                    v.table = Table {
                        name: format!("{k}.{}", stringify!($module)),
                        listed: listed.contains(&ActionName::$variant),
                        span: span.clone(),
                    };
                    let mut table = raw.$module.take().unwrap_or_default();
                    if let Some(m) = scopes::table_mode(v, table.mode.take(), table.approval.take()) {
                        modes.insert(ActionName::$variant, m);
                    }
                    if let Some(n) = table.budget_per_hour.take() {
                        let n = v.range("budget_per_hour", Some(n), (1, 10_000), 1);
                        budgets.insert(ActionName::$variant, n);
                    }
                    actions::$module::Params::read(table, v)
                },)+
            };
            (params, modes, budgets)
        }
    };
}

crate::names::with_actions!(raw_playbook);

impl fmt::Display for Playbooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for kind in [
            IncidentKind::HighCpu,
            IncidentKind::DiskFull,
            IncidentKind::MemoryPressure,
            IncidentKind::ServiceDown,
            IncidentKind::DiskFilling,
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

mod scopes;

#[cfg(test)]
mod tests;
