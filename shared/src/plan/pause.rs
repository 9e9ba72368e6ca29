//! A maintenance pause set on the resource itself: the tag
//! `first-responder:paused-until` = an RFC 3339 time on the instance or its
//! Auto Scaling group. Until then every change is skipped with the reason
//! (no budget is taken for a skipped step); the evidence and the
//! diagnostics still run. Pure: the tags come from the observation, and
//! "now" is the alert's own time, so a backtest judges a pause as it stood.

use chrono::{DateTime, Utc};

use crate::actions::{ActionName, Decision};
use crate::observed::Observed;

use super::Plan;

/// The tag that pauses changes to the instance or group carrying it.
pub const PAUSED_UNTIL_TAG: &str = "first-responder:paused-until";

/// Why changes are paused, if they are: the first of the instance's and the
/// group's tags still in force at `now`. A value that is not an RFC 3339
/// time pauses too (whoever set it meant a pause), and says so.
pub fn paused(observed: &Observed, now: Option<DateTime<Utc>>) -> Option<String> {
    tagged(observed, now)
}

/// Every source in turn: a change calendar CLOSED (or unreadable), a pause
/// set with `first-responder pause` for the incident's account, group,
/// instance or everything, then the tag.
pub fn paused_by_any(
    observed: &Observed,
    now: Option<DateTime<Utc>>,
    on: &On<'_>,
) -> Option<String> {
    calendar(observed)
        .or_else(|| commanded(observed, now, on))
        .or_else(|| tagged(observed, now))
}

/// What a `first-responder pause` can name.
#[derive(Clone, Copy, Debug, Default)]
pub struct On<'a> {
    pub account: Option<&'a str>,
    pub alias: Option<&'a str>,
    pub group: Option<&'a str>,
    pub instance: Option<&'a str>,
}

fn calendar(observed: &Observed) -> Option<String> {
    match observed.calendar.as_ref()? {
        Ok(c) if c.state == "OPEN" => None,
        Ok(c) => Some(format!(
            "paused: change calendar {} is {}, until {}",
            c.names.join(", "),
            c.state,
            c.next_transition.as_deref().unwrap_or("it opens")
        )),
        // When in doubt, no change: as SSM Automation refuses to run.
        Err(why) => Some(format!(
            "paused: the change calendar could not be read ({why}), so no change is made"
        )),
    }
}

fn commanded(observed: &Observed, now: Option<DateTime<Utc>>, on: &On<'_>) -> Option<String> {
    let h = observed.history.as_ref().ok()?;
    let now = now.map(|t| t.timestamp());
    h.pauses
        .iter()
        .filter(|p| now.is_none_or(|n| n < p.until))
        .find(|p| match p.on.as_str() {
            "all" => true,
            "account" => on.account == Some(p.value.as_str()) || on.alias == Some(p.value.as_str()),
            "group" => on.group == Some(p.value.as_str()),
            "instance" => on.instance == Some(p.value.as_str()),
            _ => false,
        })
        .map(|p| {
            let until = DateTime::from_timestamp(p.until, 0)
                .map(crate::series::rfc3339)
                .unwrap_or_default();
            let what = match p.on.as_str() {
                "all" => "everything".to_owned(),
                other => format!("{other} {}", p.value),
            };
            format!(
                "paused: first-responder pause {} on {what} by {}, {}, until {until}",
                p.id,
                p.by,
                crate::text::quoted(&p.reason, 200)
            )
        })
}

fn tagged(observed: &Observed, now: Option<DateTime<Utc>>) -> Option<String> {
    let instance = observed
        .instance
        .as_ref()
        .ok()
        .and_then(|i| i.as_ref())
        .map(|i| ("the instance", &i.tags));
    let group = observed
        .group
        .as_ref()
        .ok()
        .and_then(|g| g.as_ref())
        .map(|g| ("its Auto Scaling group", &g.tags));
    instance.into_iter().chain(group).find_map(|(on, tags)| {
        let value = tags.get(PAUSED_UNTIL_TAG)?;
        let shown = crate::text::quoted(value, 64);
        match DateTime::parse_from_rfc3339(value.trim()) {
            Ok(until) => {
                let until = until.with_timezone(&Utc);
                // No time to judge by: the pause holds.
                (now.is_none_or(|n| n < until)).then(|| {
                    format!(
                        "paused: tag {PAUSED_UNTIL_TAG} on {on}, until {}",
                        crate::series::rfc3339(until)
                    )
                })
            }
            Err(_) => Some(format!(
                "paused: tag {PAUSED_UNTIL_TAG} on {on} is {shown}, not an RFC 3339 time: treated as a pause until it is removed or corrected"
            )),
        }
    })
}

/// Every change (a step that would alter the fleet, carried out or held;
/// not the evidence snapshot) becomes a skip with the pause's reason; one
/// note, first, says so.
pub(super) fn apply(p: &mut Plan, observed: &Observed, config: &crate::config::Config) {
    let now = crate::series::parse_time(&p.incident.alert.state_timestamp);
    let account = observed
        .account
        .as_deref()
        .or(config.home_account.as_ref().map(|a| a.as_str()));
    let instance = p.instance.as_ref().map(|i| i.to_string());
    let group = p.group.as_ref().map(|g| g.to_string());
    let on = On {
        account,
        alias: account.and_then(|a| config.account_aliases.get(a).map(String::as_str)),
        group: group.as_deref(),
        instance: instance.as_deref(),
    };
    let Some(why) = paused_by_any(observed, now, &on) else {
        return;
    };
    let mut any = false;
    for a in &mut p.actions {
        // A snapshot creates a resource, but it is the evidence: it runs.
        let mutating = match &a.decision {
            Decision::Do(s) | Decision::Hold(s) | Decision::Observe(s) => {
                s.is_mutating() && a.name != ActionName::Snapshot
            }
            _ => false,
        };
        if mutating {
            a.decision = Decision::Skip(why.clone());
            any = true;
        }
    }
    if any {
        p.notes.insert(
            0,
            format!("{why}: no change was made; the evidence and diagnostics were still taken"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::plan;
    use crate::plan::tests::{ALARM, config, decision_of, fleet, incident};

    fn tagged(on_group: bool, value: &str) -> Observed {
        let mut o = fleet(1, 3);
        let tags = match on_group {
            true => o
                .group
                .as_mut()
                .ok()
                .and_then(|g| g.as_mut())
                .map(|g| &mut g.tags),
            false => o
                .instance
                .as_mut()
                .ok()
                .and_then(|i| i.as_mut())
                .map(|i| &mut i.tags),
        };
        if let Some(t) = tags {
            t.insert(PAUSED_UNTIL_TAG.into(), value.into());
        }
        o
    }

    #[test]
    fn a_pause_in_force_skips_the_changes_and_keeps_the_evidence() {
        // The sample alarm fired at 2026-11-25T02:04:12.
        for on_group in [true, false] {
            let p = plan(
                &incident(ALARM),
                &tagged(on_group, "2026-11-25T06:00:00Z"),
                &config(),
            );
            let scale = decision_of(&p, ActionName::ScaleOut);
            assert!(
                scale.contains("skip: paused: tag first-responder:paused-until on"),
                "{scale}"
            );
            assert!(scale.contains("until 2026-11-25T06:00:00Z"), "{scale}");
            assert!(
                decision_of(&p, ActionName::Snapshot).ends_with("do"),
                "{p:?}"
            );
            assert!(
                decision_of(&p, ActionName::CollectDiagnostics).ends_with("do"),
                "{p:?}"
            );
            assert!(p.notes[0].starts_with("paused: "), "{:?}", p.notes);
        }
        // Expired by the alarm's time: no pause.
        let p = plan(
            &incident(ALARM),
            &tagged(true, "2026-11-25T02:00:00Z"),
            &config(),
        );
        assert!(
            decision_of(&p, ActionName::ScaleOut).contains("do 1->2"),
            "{p:?}"
        );
        // Not a time: a pause, said so.
        let p = plan(&incident(ALARM), &tagged(false, "tomorrow"), &config());
        let scale = decision_of(&p, ActionName::ScaleOut);
        assert!(
            scale.contains("not an RFC 3339 time: treated as a pause"),
            "{scale}"
        );
    }
}
