//! EBS's modification window: whether a volume may be modified now.

use crate::ids::VolumeId;

/// EBS modifies a volume at most once in this long (the EC2 API reference:
/// "wait at least six hours"; newer pages allow four in a rolling 24 hours,
/// each after the previous one completed: this spacing keeps within both).
pub const MODIFICATION_SPACING: chrono::TimeDelta = chrono::TimeDelta::hours(6);

/// One of the volume's modifications, as `DescribeVolumesModifications`
/// gives it.
#[derive(Clone, Debug, PartialEq)]
pub struct Modification {
    pub target_gib: Option<i32>,
    pub state: ModificationState,
    pub started: chrono::DateTime<chrono::Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModificationState {
    Modifying,
    Optimizing,
    Completed,
    /// A failed modification may be retried at once: it does not count.
    Failed,
}

impl ModificationState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Modifying => "modifying",
            Self::Optimizing => "optimizing",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }
}

/// Whether EBS would take a modification of the volume now.
#[derive(Clone, Debug, PartialEq)]
pub enum Window {
    Open,
    /// Someone (a person, another tool) is growing it now: wait for that
    /// modification and grow the filesystem to its size.
    UnderWay { target_gib: i32, started: chrono::DateTime<chrono::Utc> },
    /// Modified within [`MODIFICATION_SPACING`]: nothing to do until then.
    Closed(String),
}

/// The decision before any change: a volume EBS will not modify is neither
/// snapshotted nor asked (the snapshot would be evidence of nothing done).
pub fn modification_window(
    volume: &VolumeId,
    mods: &[Modification],
    now: chrono::DateTime<chrono::Utc>,
) -> Window {
    let Some(last) = mods
        .iter()
        .filter(|m| m.state != ModificationState::Failed)
        .max_by_key(|m| m.started)
    else {
        return Window::Open;
    };
    let to = last
        .target_gib
        .map_or_else(|| "a new type or performance".to_owned(), |g| format!("{g} GiB"));
    match (last.state, last.target_gib) {
        (ModificationState::Modifying | ModificationState::Optimizing, Some(target_gib)) => {
            return Window::UnderWay { target_gib, started: last.started };
        }
        (ModificationState::Modifying | ModificationState::Optimizing, None) => {
            return Window::Closed(format!(
                "{volume} is being modified now (to {to}, {}, started {}): EBS takes no second modification until it completes; nothing was changed (no snapshot, no request)",
                last.state.as_str(),
                crate::series::rfc3339(last.started)
            ));
        }
        _ => {}
    }
    let again = last.started + MODIFICATION_SPACING;
    if now >= again {
        return Window::Open;
    }
    let ago = (now - last.started).num_minutes().max(0);
    Window::Closed(format!(
        "{volume} was modified {}h{:02} ago ({}, to {to}, {}); EBS allows one modification of a volume every 6 hours, so it can be grown again after {}: nothing was changed (no snapshot, no request). If its filesystem is smaller than the volume, grow it by hand (growpart, then resize2fs or xfs_growfs)",
        ago / 60,
        ago % 60,
        crate::series::rfc3339(last.started),
        last.state.as_str(),
        crate::series::rfc3339(again)
    ))
}
