//! A refused expansion: the layout or the host cannot finish what growing
//! the volume starts, so nothing is changed, but the volume is snapshotted
//! for evidence first: a person will now act on it by hand (pvresize,
//! mdadm, installing growpart), and evidence comes before any change.

use std::time::Duration;

use super::{Expansion, Growth};
use crate::actions::context::Decision;
use crate::disk::{DiskTarget, GrowPath};
use crate::ids::InstanceId;
use crate::observed::{AttachedVolume, InstanceState};

/// The decision for a refusal `why`: the evidence snapshot of `v` on an
/// instance commands may act on, else what its state says.
pub(super) fn refused(
    instance: &InstanceId,
    v: &AttachedVolume,
    target: &DiskTarget,
    me: &Result<InstanceState, Decision>,
    why: &str,
) -> (String, Decision, String) {
    if let Err(d) = me {
        return (v.id.to_string(), d.clone(), String::new());
    }
    let size = v.size_gib.unwrap_or(0);
    let e = Expansion {
        instance: instance.clone(),
        volume: v.id.clone(),
        xen_letters: None,
        grow: GrowPath::Disk,
        from_gib: size,
        to_gib: size,
        rule_gib: size,
        growth: Growth {
            days: 0,
            cap_gib: size,
            factor: 1.0,
            rate: None,
            bound: None,
        },
        subject: target.describe(),
        mount: target.mount.clone(),
        expand_at: 100.0,
        alert_usage: None,
        modification_wait: Duration::ZERO,
        how: String::new(),
        refused: Some(format!("{why}; not expanded")),
    };
    (
        v.id.to_string(),
        Decision::Do(super::super::Step::ExpandVolume(Box::new(e))),
        format!("{why}; not expanded: only a snapshot of {} for evidence, before a person acts", v.id),
    )
}
