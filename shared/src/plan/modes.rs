//! Each change's mode (`crate::autonomy`), applied to the plan: `auto`
//! carries it out, `approve` holds it for a person, `observe` only says what
//! it would have done. An `auto` change whose checks kept failing in its
//! scope is held (demoted), and one that already fixed the same resource
//! `chronic_after` times is held with a critical page (chronic). Pure: the
//! track record comes from the observation, "now" is the alert's time.

use crate::actions::{ActionName, Decision};
use crate::autonomy::{self, ActionMode, Subject};
use crate::config::Config;
use crate::observed::{History, Observed};

use super::Plan;

/// What the scopes are matched against, from the observation.
fn subject<'a>(observed: &'a Observed, config: &'a Config) -> Subject<'a> {
    let account = observed
        .account
        .as_deref()
        .or(config.home_account.as_ref().map(|a| a.as_str()));
    let instance = observed.instance.as_ref().ok().and_then(|i| i.as_ref());
    let group = observed.group.as_ref().ok().and_then(|g| g.as_ref());
    Subject {
        account,
        alias: account.and_then(|a| config.account_aliases.get(a).map(String::as_str)),
        instance_tags: instance.map(|i| &i.tags),
        group_tags: group.map(|g| &g.tags),
        group: group.map(|g| g.name.as_str()),
    }
}

/// The resource an action's runs are counted on: the instance, else the
/// group (a group-level alarm).
pub fn resource_of(p: &Plan) -> Option<String> {
    p.instance
        .as_ref()
        .map(|i| i.to_string())
        .or_else(|| p.group.as_ref().map(|g| g.to_string()))
}

pub(super) fn apply(p: &mut Plan, observed: &Observed, config: &Config) {
    let kind = p.incident.kind;
    let now =
        crate::series::parse_time(&p.incident.alert.state_timestamp).map_or(0, |t| t.timestamp());
    let subject = subject(observed, config);
    let empty = History::default();
    let history = match &observed.history {
        Ok(h) => h,
        Err(why) => {
            p.note(format!(
                "the track record could not be read ({why}): not checked for demotion or a chronic problem"
            ));
            &empty
        }
    };
    let resource = resource_of(p);
    let books = &config.playbooks;
    let mut notes = Vec::new();
    let mut chronic_notes = Vec::new();
    for a in &mut p.actions {
        let step = match &a.decision {
            Decision::Do(s) if s.is_mutating() && a.name.is_fix() => s.clone(),
            _ => continue,
        };
        let mut au = books.mode_of(kind, a.name, &subject);
        let key = (au.scope.clone(), a.name);
        if au.mode == ActionMode::Auto {
            let misses = history.misses.get(&key).map_or(&[][..], |m| m.as_slice());
            let restored = history.restored.get(&key).map(|(at, _)| *at);
            if let Some(why) = autonomy::demoted(misses, restored, books.demote_after, now) {
                au.mode = ActionMode::Approve;
                au.from = "demoted".into();
                notes.push(format!(
                    "demoted: {action} acts as approve in scope {scope}: {why} (demote_after {rate}); a person restores it with `first-responder trust --restore {action} --scope {scope}`",
                    action = a.name.as_str(),
                    scope = au.scope,
                    rate = books.demote_after,
                ));
            }
        }
        if au.mode != ActionMode::Observe
            && let Some(runs) = history.runs.get(&a.name)
            && let Some(earlier) = autonomy::chronic(runs, &p.incident.id, books.chronic_after, now)
        {
            au.mode = ActionMode::Approve;
            au.from = "chronic".into();
            chronic_notes.push(chronic_note(
                a.name,
                resource.as_deref().unwrap_or("the resource"),
                &earlier,
                books.chronic_after,
            ));
        }
        a.decision = match au.mode {
            ActionMode::Auto => Decision::Do(step),
            ActionMode::Approve => Decision::Hold(step),
            ActionMode::Observe => {
                a.reason = format!("would {}; observe mode in {}", step.describe(), au.scope);
                Decision::Observe(step)
            }
        };
        p.autonomy.insert(a.name, au);
    }
    for n in chronic_notes.into_iter().rev() {
        p.notes.insert(0, n);
    }
    p.notes.extend(notes);
}

/// "chronic: expand_volume fixed i-… 3 times in 7 days (…); the cause is
/// elsewhere", with each earlier incident and its check.
fn chronic_note(
    action: ActionName,
    resource: &str,
    earlier: &[&crate::observed::PastRun],
    rate: autonomy::Rate,
) -> String {
    let times: Vec<String> = earlier
        .iter()
        .map(|r| {
            let at = chrono::DateTime::from_timestamp(r.at, 0)
                .map(crate::series::rfc3339)
                .unwrap_or_default();
            format!(
                "{at} incident {} ({})",
                r.incident,
                r.verdict
                    .as_deref()
                    .map_or("not checked yet".to_owned(), |v| format!(
                        "check: {}",
                        v.replace('_', " ")
                    ))
            )
        })
        .collect();
    format!(
        "chronic: {} fixed {resource} {} times in {} ({}); the cause is elsewhere: nothing was changed this time, the change is held for a person (chronic_after {rate})",
        action.as_str(),
        earlier.len(),
        rate.window_text(),
        times.join("; ")
    )
}
