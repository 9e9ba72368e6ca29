//! Earned autonomy, pure: how far each action may go on its own, per scope.
//!
//! - A mode per action (`observe`, `approve`, `auto`): from the first
//!   matching scope of the playbooks file that names the action, else the
//!   kind's action table, else the shipped default ([`ActionMode::default_for`]).
//! - Demotion: an `auto` action whose checks said `still_firing`
//!   `demote_after` times in a scope acts as `approve` there until a person
//!   restores it ([`demoted`]). Never promoted but by a person's edit.
//! - Chronic: an action that already fixed the same resource
//!   `chronic_after` times changes nothing the next time ([`chronic`]).
//! - The track record and its recommendations (`trust.rs`).
//!
//! The reads and writes of the history are in `state/track.rs`; the
//! planner applies the modes (`plan/modes.rs`).

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::names::ActionName;

#[cfg(feature = "aws")]
pub mod run;
pub mod trust;

/// How far an action goes on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionMode {
    /// Plans, takes the evidence, pages what it would have changed.
    Observe,
    /// Plans and holds the change for a person's one-tap approval.
    Approve,
    /// Acts.
    Auto,
}

impl ActionMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "observe" => Some(Self::Observe),
            "approve" => Some(Self::Approve),
            "auto" => Some(Self::Auto),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Observe => "observe",
            Self::Approve => "approve",
            Self::Auto => "auto",
        }
    }

    /// The shipped default: a replacement or a reboot throws state away
    /// and a status check can be wrong, so a person approves those.
    pub fn default_for(a: ActionName) -> Self {
        match a {
            ActionName::Reboot | ActionName::ReplaceInstance => Self::Approve,
            _ => Self::Auto,
        }
    }
}

impl fmt::Display for ActionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// "2 in 7d": a count within a window (`d` days or `h` hours).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub window_seconds: i64,
}

pub const DEFAULT_DEMOTE_AFTER: Rate = Rate {
    count: 2,
    window_seconds: 7 * 86_400,
};

pub const DEFAULT_CHRONIC_AFTER: Rate = Rate {
    count: 3,
    window_seconds: 7 * 86_400,
};

impl Rate {
    /// `"2 in 7d"`, `"3 in 48h"`: Err says what was expected.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "{} is not a rate: expected \"N in Dd\" or \"N in Hh\", as \"2 in 7d\"",
                crate::ids::shown(s)
            )
        };
        let (n, w) = s.split_once(" in ").ok_or_else(bad)?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        let w = w.trim();
        let (digits, unit) = w.split_at(w.len().saturating_sub(1));
        let amount: i64 = digits.parse().map_err(|_| bad())?;
        let unit = match unit {
            "d" => 86_400,
            "h" => 3_600,
            _ => return Err(bad()),
        };
        if count == 0 || !(1..=400 * 24).contains(&amount) {
            return Err(format!(
                "{}: the count must be at least 1 and the window 1h to 400d",
                crate::ids::shown(s)
            ));
        }
        Ok(Self {
            count,
            window_seconds: amount * unit,
        })
    }

    /// "7 days", "48 hours".
    pub fn window_text(&self) -> String {
        match self.window_seconds % 86_400 {
            0 => plural(self.window_seconds / 86_400, "day"),
            _ => plural(self.window_seconds / 3_600, "hour"),
        }
    }
}

fn plural(n: i64, unit: &str) -> String {
    match n {
        1 => format!("1 {unit}"),
        n => format!("{n} {unit}s"),
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.window_seconds % 86_400 {
            0 => write!(f, "{} in {}d", self.count, self.window_seconds / 86_400),
            _ => write!(f, "{} in {}h", self.count, self.window_seconds / 3_600),
        }
    }
}

pub use crate::names::DEFAULT_SCOPE;

/// A `[scopes.NAME]` table: which incidents it covers (every key it sets
/// must match) and the modes it gives.
#[derive(Clone, Debug, PartialEq)]
pub struct Scope {
    pub name: String,
    /// Account ids or `ACCOUNT_ALIASES` names.
    pub accounts: Vec<String>,
    /// Each must be on the instance or on its group.
    pub tags: BTreeMap<String, String>,
    /// Auto Scaling group name patterns (`*`, `?`).
    pub groups: Vec<String>,
    pub modes: BTreeMap<ActionName, ActionMode>,
}

/// What a scope is matched against: where the incident acts and what it
/// acts on, as read.
#[derive(Clone, Copy, Debug, Default)]
pub struct Subject<'a> {
    pub account: Option<&'a str>,
    pub alias: Option<&'a str>,
    pub instance_tags: Option<&'a BTreeMap<String, String>>,
    pub group_tags: Option<&'a BTreeMap<String, String>>,
    pub group: Option<&'a str>,
}

impl Scope {
    pub fn matches(&self, s: &Subject<'_>) -> bool {
        let named = |a: Option<&str>| a.is_some_and(|a| self.accounts.iter().any(|x| x == a));
        let accounts = self.accounts.is_empty() || named(s.account) || named(s.alias);
        let tags = self.tags.iter().all(|(k, v)| {
            [s.instance_tags, s.group_tags]
                .iter()
                .flatten()
                .any(|t| t.get(k) == Some(v))
        });
        let groups = self.groups.is_empty()
            || s.group.is_some_and(|g| {
                self.groups
                    .iter()
                    .any(|p| wildmatch::WildMatch::new(p).matches(g))
            });
        accounts && tags && groups
    }
}

/// An action's mode for one incident, and where it came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Autonomy {
    pub mode: ActionMode,
    /// The scope the action ran in (its track record's): the scope that
    /// gave the mode, else the first that matched, else `default`.
    pub scope: String,
    /// `scope prod`, `playbook`, `default`, `demoted`, `chronic`.
    pub from: String,
}

/// The mode of `action` for `subject`: the first matching scope that names
/// it, else the kind's table (`table`), else the shipped default.
pub fn resolve(
    scopes: &[Scope],
    table: Option<ActionMode>,
    action: ActionName,
    subject: &Subject<'_>,
) -> Autonomy {
    let matching: Vec<&Scope> = scopes.iter().filter(|s| s.matches(subject)).collect();
    if let Some((s, m)) = matching
        .iter()
        .find_map(|s| s.modes.get(&action).map(|m| (s, *m)))
    {
        return Autonomy {
            mode: m,
            scope: s.name.clone(),
            from: format!("scope {}", s.name),
        };
    }
    let scope = matching
        .first()
        .map_or(DEFAULT_SCOPE.to_owned(), |s| s.name.clone());
    match table {
        Some(mode) => Autonomy {
            mode,
            scope,
            from: "playbook".into(),
        },
        None => Autonomy {
            mode: ActionMode::default_for(action),
            scope,
            from: "default".into(),
        },
    }
}

pub use crate::observed::{Miss, PastRun};

/// Why an `auto` action acts as `approve` now, if it does: `rate.count`
/// still-firing checks within the window before `now`, none before the
/// last restore counted.
pub fn demoted(misses: &[Miss], restored_at: Option<i64>, rate: Rate, now: i64) -> Option<String> {
    let counted: Vec<&Miss> = misses
        .iter()
        .filter(|m| m.at > now - rate.window_seconds && m.at <= now)
        .filter(|m| restored_at.is_none_or(|r| m.at > r))
        .collect();
    (counted.len() >= rate.count as usize).then(|| {
        let ids: Vec<&str> = counted.iter().map(|m| m.incident.as_str()).collect();
        format!(
            "{} checks said still firing within {} (incidents {})",
            counted.len(),
            rate.window_text(),
            ids.join(", ")
        )
    })
}

/// The earlier runs that make this occurrence chronic: `rate.count` or
/// more within the window before `now` (this incident's own left out).
pub fn chronic<'a>(
    runs: &'a [PastRun],
    incident: &str,
    rate: Rate,
    now: i64,
) -> Option<Vec<&'a PastRun>> {
    let mut within: Vec<&PastRun> = runs
        .iter()
        .filter(|r| r.incident != incident)
        .filter(|r| r.at > now - rate.window_seconds && r.at <= now)
        .collect();
    within.sort_by_key(|r| r.at);
    (within.len() >= rate.count as usize).then_some(within)
}

#[cfg(test)]
mod tests;
