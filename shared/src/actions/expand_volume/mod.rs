//! expand_volume: grow the EBS volume, then its partition and filesystem.

use crate::ids::{InstanceId, VolumeId};
// The decision still reads the plan being built (see ARCHITECTURE.md).
use crate::disk::{DiskTarget, Filesystem, new_size, resolve_volume};
use std::time::Duration;

use super::Recovery;
use super::script::Script;
use super::ActionName;
use super::ActionStep;
use crate::params::Validator;
use serde::Deserialize;
use toml::Spanned;
use super::context::{disk_usage, Decision, opted_in, instance_opted_in, disk_target, Settings, Context};
use crate::observed::{Observed, InstanceState};

mod evidence;
#[cfg(feature = "aws")]
mod run;
mod window;
pub use window::{MODIFICATION_SPACING, Modification, ModificationState, Window, modification_window};
#[cfg(test)]
mod tests;
#[cfg(feature = "aws")]
pub(crate) use run::run;

pub const RECOVERY: Recovery = Recovery::Verifiable("the volume's latest modification is read against the size the claim meant");

crate::actions::clients::permissions! {
    ec2: [CreateSnapshot, CreateTags, DescribeSnapshots, ModifyVolume, DescribeVolumesModifications],
    ssm: [SendCommand, GetCommandInvocation],
}

/// What its decision reads beyond the instance (see `Need`).
pub const NEEDS: &[super::Need] = &[super::Need::Volumes, super::Need::Layout];

/// The scripts it sends through SSM, for `first-responder script`.
pub const SCRIPTS: &[super::script::Script] = &[
    Script {
        name: "grow_filesystem",
        usage: "--volume-id vol-... --to-gib N [--xen-letters f] [--partition N] [--lv VG-LV]",
        example: &["--volume-id", "vol-0123456789abcdef0", "--to-gib", "30", "--xen-letters", "f", "--partition", "2"],
        build: |a| {
            let v = VolumeId::parse("--volume-id", a.required("--volume-id")?)
                .map_err(|e| e.to_string())?;
            let xen = a.get("--xen-letters");
            if let Some(l) = xen
                && !((1..=2).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_lowercase()))
            {
                return Err(format!("--xen-letters {l:?}: one or two lowercase letters"));
            }
            let to_gib: i32 = a.number("--to-gib", None)?;
            if !(1..=65536).contains(&to_gib) {
                return Err(format!("--to-gib {to_gib}: 1 to 65536"));
            }
            let partition = match a.get("--partition") {
                Some(_) => Some(a.number::<u32>("--partition", None)?),
                None => None,
            };
            if partition == Some(0) {
                return Err("--partition 0: partitions are numbered from 1".into());
            }
            let path = match (a.get("--lv"), partition) {
                (Some(lv), partition) => crate::disk::GrowPath::Lvm {
                    partition,
                    lv: crate::disk::LvName::parse(lv)
                        .ok_or_else(|| format!("--lv {lv:?}: a device-mapper name such as vg0-data"))?,
                },
                (None, Some(n)) => crate::disk::GrowPath::Partition(n),
                (None, None) => crate::disk::GrowPath::Disk,
            };
            Ok(crate::commands::grow_filesystem(&v, xen, to_gib, &path))
        },
    },
    Script {
        name: "disk_layout",
        usage: "",
        example: &[],
        build: |_| Ok(crate::commands::DISK_LAYOUT.iter().map(|c| (*c).to_owned()).collect()),
    },
];

/// `[kind.expand_volume]`
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// Expand only when usage (after the cleanup) is at or above this.
    pub at_percent: f64,
    /// New size: +grow_percent, at least +grow_min_gib, never above max_volume_gib.
    pub grow_percent: u32,
    pub grow_min_gib: i32,
    pub max_volume_gib: i32,
    /// No second expansion of the same volume within this many hours.
    pub cooldown_hours: u32,
    /// How long to wait for the modification to reach `optimizing`.
    pub modification_wait_seconds: u32,
    /// When the disk's metric shows it growing, size the volume to hold
    /// this many days more at that rate (below `at_percent`), if that is
    /// more than the +grow_percent rule; 0 turns it off.
    pub growth_days: u32,
    /// A size from the forecast is never more than this many times the
    /// rule's: a volume cannot be shrunk, so a rate read wrongly must not
    /// become a bill for good.
    pub max_growth_factor: f64,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            at_percent: 95.0,
            grow_percent: 20,
            grow_min_gib: 10,
            max_volume_gib: 2048,
            cooldown_hours: 24,
            modification_wait_seconds: 120,
            growth_days: 2,
            max_growth_factor: 2.0,
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
    pub at_percent: Option<Spanned<f64>>,
    pub grow_percent: Option<Spanned<i64>>,
    pub grow_min_gib: Option<Spanned<i64>>,
    pub max_volume_gib: Option<Spanned<i64>>,
    pub cooldown_hours: Option<Spanned<i64>>,
    pub modification_wait_seconds: Option<Spanned<i64>>,
    pub growth_days: Option<Spanned<i64>>,
    pub max_growth_factor: Option<Spanned<f64>>,
}

impl Params {
    pub fn read(raw: Raw, v: &mut Validator) -> Self {
        let d = Self::default();
        Self {
            at_percent: v.percent("at_percent", raw.at_percent, d.at_percent),
            grow_percent: v.range("grow_percent", raw.grow_percent, (1, 100), d.grow_percent),
            grow_min_gib: v.gib("grow_min_gib", raw.grow_min_gib, 1, d.grow_min_gib),
            max_volume_gib: v.gib("max_volume_gib", raw.max_volume_gib, 2, d.max_volume_gib),
            // EBS allows a volume few modifications a day anyway.
            cooldown_hours: v.range("cooldown_hours", raw.cooldown_hours, (6, 24 * 30), d.cooldown_hours),
            modification_wait_seconds: v.range(
                "modification_wait_seconds",
                raw.modification_wait_seconds,
                (1, 600),
                d.modification_wait_seconds,
            ),
            growth_days: v.optional_range("growth_days", raw.growth_days, (0, 30), d.growth_days),
            max_growth_factor: v.optional_factor(
                "max_growth_factor",
                raw.max_growth_factor,
                (1.0, 10.0),
                d.max_growth_factor,
            ),
        }
    }
}

/// Sizing for growth at the metric's fitted rate (`growth_days`).
#[derive(Clone, Debug, PartialEq)]
pub struct Growth {
    pub days: u32,
    /// `max_volume_gib` (2 TiB on an MBR disk).
    pub cap_gib: i32,
    /// `max_growth_factor`.
    pub factor: f64,
    /// The rate it was sized for (the low end of the forecast's range),
    /// when the forecast made it larger.
    pub rate: Option<f64>,
    /// The limit that cut the size from the forecast short, if one did.
    pub bound: Option<Bound>,
}

/// What cut a size from the forecast short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// `max_growth_factor` times the rule's size.
    GrowthFactor,
    /// `max_volume_gib` (or 2 TiB on an MBR disk).
    MaxVolume,
}

/// Everything the executor needs to grow one volume and its filesystem.
#[derive(Clone, Debug, PartialEq)]
pub struct Expansion {
    pub instance: InstanceId,
    pub volume: VolumeId,
    /// Block-device mapping letters (`f` of /dev/sdf), for Xen instances.
    pub xen_letters: Option<String>,
    /// What holds the alerted filesystem on the volume, from the preflight.
    pub grow: crate::disk::GrowPath,
    pub from_gib: i32,
    pub to_gib: i32,
    /// What the +20% rule gives, before any growth at the forecast rate.
    pub rule_gib: i32,
    pub growth: Growth,
    /// The alerted filesystem, in words.
    pub subject: String,
    /// The alert's mount point: read in `df` output, never put in a command.
    pub mount: Option<String>,
    /// Expand only when usage after the cleanup is at or above this.
    pub expand_at: f64,
    /// The usage the alert reported, for when the instance reports none.
    pub alert_usage: Option<f64>,
    pub modification_wait: Duration,
    /// How the volume was traced from the mount point.
    pub how: String,
    /// Refused at planning (a layout or a host this volume's growth cannot
    /// finish): only a snapshot for evidence is taken, before the person
    /// acts by hand, and nothing else ([`evidence::refused`]).
    pub refused: Option<String>,
}

/// The expand_volume decision: (target, decision, reason).
pub(crate) fn expansion(
    instance: &InstanceId,
    target: &DiskTarget,
    observed: &Observed,
    config: &Settings,
    params: Option<&Params>,
    me: &Result<InstanceState, Decision>,
    usage: Option<f64>,
) -> (String, Decision, String) {
    let default = Params::default();
    let pb = params.unwrap_or(&default);
    let subject = target.describe();
    let skip = |why: String| (subject.clone(), Decision::Skip(why), String::new());
    let fail = |why: String| (subject.clone(), Decision::Fail(why), String::new());
    if let Some(u) = usage
        && u < pb.at_percent
    {
        return skip(format!(
            "usage {u:.1}% is below {}% (disk_full.expand_at_percent): cleanup only",
            pb.at_percent
        ));
    }
    let volumes = match &observed.volumes {
        Ok(v) => v,
        Err(why) => return fail(format!("could not list the volumes of {instance}: {why}")),
    };
    let root = me
        .as_ref()
        .ok()
        .and_then(|s| s.root_device.clone())
        .or_else(|| match &observed.instance {
            Ok(Some(s)) => s.root_device.clone(),
            _ => None,
        });
    let r = match resolve_volume(target, volumes, root.as_deref(), observed.layout.as_ref()) {
        Ok(r) => r,
        Err(why) => return fail(format!("{why}: not expanded; find the volume by hand")),
    };
    let Some(v) = volumes.iter().find(|v| v.id == r.volume) else {
        return fail(format!("{} is not attached to {instance}", r.volume));
    };
    let subject = v.id.to_string();
    let skip = |why: String| (subject.clone(), Decision::Skip(why), String::new());
    // Refused before anything is changed (its own pre-change snapshot
    // included): growing this volume would not grow the filesystem.
    if let Some(why) = &r.cannot_grow {
        return evidence::refused(instance, v, target, me, why);
    }
    match r.fstype.as_deref().or(target.fstype.as_deref()) {
        None => {
            return skip(format!(
                "the filesystem type on {} is unknown: not grown automatically (ext2/3/4 and xfs are)",
                v.id
            ));
        }
        Some(fs) if Filesystem::parse(fs).is_none() => {
            return skip(format!(
                "filesystem {fs} on {} is not grown automatically (ext2/3/4 and xfs are)",
                v.id
            ));
        }
        Some(_) => {}
    }
    if let Err(d) = me {
        return (subject, d.clone(), String::new());
    }
    if let Err(why) = opted_in(&format!("volume {}", v.id), &v.tags, config) {
        return skip(why);
    }
    // The preflight: without it nothing says the partition and filesystem
    // can be grown once the volume is, so the volume is not touched.
    let grow = match (&r.grow, &observed.layout) {
        (Some(g), _) => g.clone(),
        // A backtest sends no command: what the volume holds is assumed
        // growable (the reason says so).
        (None, None) if observed.read_only => crate::disk::GrowPath::Disk,
        (None, Some(Ok(_))) => {
            return skip(format!(
                "the instance's block devices show nothing mounted at {}: not expanded",
                target.describe()
            ));
        }
        (None, Some(Err(why))) => {
            return skip(format!(
                "the instance's block devices and tools could not be read ({why}): not expanded, since its partition and filesystem could not be grown after"
            ));
        }
        (None, None) => {
            return skip(
                "the instance's block devices and tools were not read: not expanded, since its partition and filesystem could not be grown after".into(),
            );
        }
    };
    let fstype = r.fstype.as_deref().or(target.fstype.as_deref());
    let lacking: Vec<&str> = grow
        .tools(fstype)
        .into_iter()
        .filter(|t| observed.missing_tools.iter().any(|m| m == t))
        .collect();
    if !lacking.is_empty() {
        let advice: Vec<String> = lacking
            .iter()
            .map(|t| format!("{t}: install {}", crate::disk::package_of(t)))
            .collect();
        let why = format!(
            "cannot grow {}: the instance lacks {} ({})",
            target.describe(),
            lacking.join(" and "),
            advice.join("; ")
        );
        return evidence::refused(instance, v, target, me, &why);
    }
    if v.volume_type.as_deref() == Some("standard") {
        return skip(format!(
            "{} is a magnetic (standard) volume, which cannot be modified",
            v.id
        ));
    }
    let Some(from) = v.size_gib else {
        return (
            subject.clone(),
            Decision::Fail(format!("DescribeVolumes gave no size for {}", v.id)),
            String::new(),
        );
    };
    let mbr = r.pttype.as_deref() == Some("dos") && r.partitioned != Some(false);
    let to = match new_size(
        from,
        pb.grow_percent,
        pb.grow_min_gib,
        pb.max_volume_gib,
        mbr,
    ) {
        Ok(to) => to,
        Err(why) => return skip(why),
    };
    let cap = if mbr { pb.max_volume_gib.min(2048) } else { pb.max_volume_gib };
    let e = Expansion {
        instance: instance.clone(),
        volume: v.id.clone(),
        xen_letters: r.xen_letters.clone(),
        grow,
        from_gib: from,
        to_gib: to,
        rule_gib: to,
        growth: Growth {
            days: pb.growth_days,
            cap_gib: cap,
            factor: pb.max_growth_factor,
            rate: None,
            bound: None,
        },
        subject: target.describe(),
        mount: target.mount.clone(),
        expand_at: pb.at_percent,
        alert_usage: usage,
        modification_wait: Duration::from_secs(u64::from(pb.modification_wait_seconds)),
        refused: None,
        how: match (&r.grow, observed.read_only) {
            (None, true) => format!("{}; the instance's layout is not read in a backtest: assumed growable", r.how),
            _ => r.how,
        },
    };
    let reason = e.reason();
    (subject, Decision::Do(super::Step::ExpandVolume(Box::new(e))), reason)
}

impl Expansion {
    /// Sizes the volume for the metric's forecast: room for `growth_days`
    /// more at the fitted rate when the +20% rule gives less, never above
    /// the maximum. Without a growing forecast, the rule. The same answer
    /// however often it is asked (the planner may not have had the metric
    /// yet; the engine asks again once it has).
    pub fn size_for(&mut self, forecast: Option<&crate::series::Forecast>) {
        self.to_gib = self.rule_gib;
        self.growth.rate = None;
        self.growth.bound = None;
        // The low end of the range: a noisy series sizes by the rule.
        if let (Some(f), Some(u)) = (forecast, self.alert_usage)
            && f.full_at.is_some()
            && self.growth.days > 0
            && let Some(g) = crate::disk::growth_size(
                self.from_gib,
                u,
                f.low_percent_per_hour,
                self.growth.days,
                self.expand_at,
            )
            .filter(|g| *g > self.rule_gib)
        {
            let by_factor = (f64::from(self.rule_gib) * self.growth.factor).floor();
            let by_factor = if by_factor < f64::from(self.growth.cap_gib) {
                by_factor as i32
            } else {
                self.growth.cap_gib
            };
            (self.to_gib, self.growth.bound) = if g <= by_factor {
                (g, None)
            } else if by_factor < self.growth.cap_gib {
                (by_factor, Some(Bound::GrowthFactor))
            } else {
                (self.growth.cap_gib, Some(Bound::MaxVolume))
            };
            self.growth.rate = Some(f.low_percent_per_hour);
        }
    }

    /// Why, in the plan's words.
    pub fn reason(&self) -> String {
        let sized = match self.growth.rate {
            Some(rate) => format!(
                "; sized for {} days more at {rate:.2} percentage points an hour (the low end of the forecast's range){}",
                self.growth.days,
                match self.growth.bound {
                    Some(Bound::GrowthFactor) => format!(
                        ", capped at {} GiB (max_growth_factor: {} x the rule's {} GiB)",
                        self.to_gib, self.growth.factor, self.rule_gib
                    ),
                    Some(Bound::MaxVolume) =>
                        format!(", capped at {} GiB (max_volume_gib)", self.growth.cap_gib),
                    None => String::new(),
                }
            ),
            None => String::new(),
        };
        format!(
            "{} is at or above {}%: snapshot {}, grow it {} -> {} GiB{sized}, then {} ({})",
            self.subject,
            self.expand_at,
            self.volume,
            self.from_gib,
            self.to_gib,
            self.grow.describe(),
            self.how
        )
    }
}

/// Only after the cleanup, and only when usage is still at or above
/// `at_percent`: the volume behind the alerted mount point. Sized by the
/// +20% rule here; the metric's forecast, which may come later than the
/// fleet's state, sizes it again ([`Expansion::size_for`]).
pub(crate) fn decide(p: &mut Context<'_>, instance: &InstanceId, observed: &Observed, config: &Settings) {
    let target = disk_target(p.incident);
    let me = instance_opted_in(instance, observed, config);
    let usage = disk_usage(p.incident);
    let params = p.playbook(config).map(|pb| &pb.expand_volume);
    let (target_name, decision, reason) = expansion(
        instance,
        &target,
        observed,
        config,
        params,
        &me,
        usage,
    );
    p.push(config, ActionName::ExpandVolume, target_name, reason, decision);
}

/// Everything the executor needs to grow one volume and its filesystem.
pub type Step = Box<Expansion>;

impl ActionStep for Expansion {
    /// ModifyVolume, the wait until the volume is optimizing (most of a
    /// minute), then growpart and the filesystem's resize through SSM.
    fn typical(&self) -> std::time::Duration {
        match self.refused {
            Some(_) => std::time::Duration::from_secs(2),
            None => std::time::Duration::from_secs(60),
        }
    }
    fn describe(&self) -> String {
        match &self.refused {
            Some(_) => format!("snapshot {} for evidence; it is not grown", self.volume),
            None => format!(
                "grow {} from {} to {} GiB, then its partition and filesystem",
                self.volume, self.from_gib, self.to_gib
            ),
        }
    }
    fn is_mutating(&self) -> bool {
        true
    }
    /// A refusal's snapshot changes nothing of the fleet: no breaker, flap
    /// guard or cooldown counts it.
    fn is_evidence(&self) -> bool {
        self.refused.is_some()
    }
    fn intent(&self) -> String {
        match &self.refused {
            Some(_) => "evidence".into(),
            None => format!("to={}", self.to_gib),
        }
    }
    fn uses_metric(&self) -> bool {
        self.refused.is_none()
    }
    fn with_forecast(&mut self, forecast: Option<&crate::series::Forecast>) -> Option<String> {
        if self.refused.is_some() {
            return None;
        }
        self.size_for(forecast);
        Some(self.reason())
    }
    fn cooldown(&self, pb: &crate::actions::ActionParams, _: &Settings) -> Option<(String, Duration)> {
        self.refused.is_none().then(|| {
            (
                self.volume.to_string(),
                Duration::from_secs(u64::from(pb.expand_volume.cooldown_hours) * 3600),
            )
        })
    }
}

impl ActionStep for Box<Expansion> {
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn typical(&self) -> std::time::Duration {
        (**self).typical()
    }
    fn is_mutating(&self) -> bool {
        true
    }
    fn is_evidence(&self) -> bool {
        (**self).is_evidence()
    }
    fn intent(&self) -> String {
        (**self).intent()
    }
    fn uses_metric(&self) -> bool {
        (**self).uses_metric()
    }
    fn with_forecast(&mut self, forecast: Option<&crate::series::Forecast>) -> Option<String> {
        (**self).with_forecast(forecast)
    }
    fn cooldown(&self, pb: &crate::actions::ActionParams, c: &Settings) -> Option<(String, Duration)> {
        (**self).cooldown(pb, c)
    }
}
