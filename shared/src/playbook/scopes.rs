//! The modes: an action table's `mode` (or `approval`), the
//! `[scopes.NAME]` tables and the autonomy rates (`demote_after`,
//! `chronic_after`): read and validated, each error at its line.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::actions::ActionName;
use crate::autonomy::{ActionMode, Rate, Scope};
use crate::params::Validator;

use super::Playbooks;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScope {
    #[serde(default)]
    accounts: Vec<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    modes: BTreeMap<String, Spanned<String>>,
}

/// The scopes in file order (the first that matches and names an action
/// decides its mode).
pub(super) fn read(
    v: &mut Validator,
    raw: Option<BTreeMap<String, Spanned<RawScope>>>,
) -> Vec<Scope> {
    let mut raw: Vec<(String, Spanned<RawScope>)> = raw.unwrap_or_default().into_iter().collect();
    raw.sort_by_key(|(_, s)| s.span().start);
    raw.into_iter()
        .map(|(name, s)| {
            let span = s.span();
            let s = s.into_inner();
            if name == crate::autonomy::DEFAULT_SCOPE {
                v.fail(
                    span.clone(),
                    "scopes.default: the name is taken by incidents no scope matches".into(),
                );
            }
            for a in &s.accounts {
                let alias_like = !a.is_empty() && a.len() <= 64;
                if !alias_like {
                    v.fail(
                        span.clone(),
                        format!(
                            "scopes.{name}.accounts has {}: expected an account id or an ACCOUNT_ALIASES name",
                            crate::ids::shown(a)
                        ),
                    );
                }
            }
            let mut modes = BTreeMap::new();
            for (action, mode) in s.modes {
                let Some(a) = ActionName::ALL.iter().find(|n| n.as_str() == action) else {
                    v.fail(
                        mode.span(),
                        format!(
                            "scopes.{name}.modes names {}: not an action",
                            crate::ids::shown(&action)
                        ),
                    );
                    continue;
                };
                if !a.is_fix() {
                    v.fail(
                        mode.span(),
                        format!(
                            "scopes.{name}.modes.{action}: {action} changes nothing, so it has no mode (evidence and the notification always run)"
                        ),
                    );
                    continue;
                }
                match ActionMode::parse(mode.get_ref()) {
                    Some(m) => {
                        modes.insert(*a, m);
                    }
                    None => v.fail(
                        mode.span(),
                        format!(
                            "scopes.{name}.modes.{action} is {}: expected \"observe\", \"approve\" or \"auto\"",
                            crate::ids::shown(mode.get_ref())
                        ),
                    ),
                }
            }
            Scope {
                name,
                accounts: s.accounts,
                tags: s.tags,
                groups: s.groups,
                modes,
            }
        })
        .collect()
}

/// `demote_after` or `chronic_after`: "N in 7d", else the default.
pub(super) fn rate(
    v: &mut Validator,
    key: &str,
    raw: Option<Spanned<String>>,
    default: Rate,
) -> Rate {
    let Some(raw) = raw else { return default };
    match Rate::parse(raw.get_ref()) {
        Ok(r) => r,
        Err(e) => {
            v.fail(raw.span(), format!("{key}: {e}"));
            default
        }
    }
}

/// An action table's `mode` (`observe`, `approve`, `auto`), or the older
/// `approval` (`required` is `approve`, `auto` is `auto`); both, when they
/// disagree, is an error.
pub(super) fn table_mode(
    v: &mut Validator,
    mode: Option<Spanned<String>>,
    approval: Option<Spanned<String>>,
) -> Option<ActionMode> {
    let table = v.table.name.clone();
    let old = approval.and_then(|a| match a.get_ref().as_str() {
        "required" => Some((a.span(), ActionMode::Approve)),
        "auto" => Some((a.span(), ActionMode::Auto)),
        other => {
            v.fail(
                a.span(),
                format!(
                    "{table}.approval is {}: expected \"required\" or \"auto\"",
                    crate::ids::shown(other)
                ),
            );
            None
        }
    });
    let new = mode.and_then(|m| match ActionMode::parse(m.get_ref()) {
        Some(mode) => Some((m.span(), mode)),
        None => {
            v.fail(
                m.span(),
                format!(
                    "{table}.mode is {}: expected \"observe\", \"approve\" or \"auto\"",
                    crate::ids::shown(m.get_ref())
                ),
            );
            None
        }
    });
    match (new, old) {
        (Some((span, n)), Some((_, o))) if n != o => {
            v.fail(
                span,
                format!("{table} sets mode = \"{n}\" and approval, which says {o}: keep mode"),
            );
            Some(n)
        }
        (Some((_, n)), _) => Some(n),
        (None, o) => o.map(|(_, m)| m),
    }
}

impl Playbooks {
    /// For each scope (then `default`), the mode of each change each kind
    /// lists: what `check-playbooks` prints.
    pub fn modes_text(&self) -> String {
        let mut out = String::new();
        let names = self
            .scopes
            .iter()
            .map(|s| s.name.as_str())
            .chain([crate::autonomy::DEFAULT_SCOPE]);
        for scope in names {
            let mut parts = Vec::new();
            for kind in crate::incident::IncidentKind::ALL {
                for a in self.stages(kind).iter().flatten().filter(|a| a.is_fix()) {
                    let m = self.mode_in_scope(scope, Some(kind), *a);
                    parts.push(format!("{kind}.{} {m}", a.as_str()));
                }
            }
            out.push_str(&format!("scope {scope}: {}\n", parts.join(", ")));
        }
        out
    }
}
