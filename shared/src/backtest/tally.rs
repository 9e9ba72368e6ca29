//! Each replayed plan through the engine's limits in memory, and the tally
//! per action, per alarm and overall, with its text.

use super::*;

/// How a decided change would have gone: carried out (then through the
/// limits), held for a person, or only observed.
#[derive(Clone, Copy, PartialEq)]
enum Way {
    Run,
    Held,
    Observed,
}

/// Which limit a planner's skip names (the texts are the actions' own).
pub fn limit_of(why: &str) -> &'static str {
    const OPT_IN: &[&str] = &["does not carry the opt-in tag"];
    const BUDGET: &[&str] = &[
        "MaxSize",
        "MAX_DESIRED_CAPACITY",
        "MAX_SNAPSHOTS_PER_INCIDENT",
        "max_volume_gib",
    ];
    if OPT_IN.iter().any(|k| why.contains(k)) {
        "opt_in"
    } else if BUDGET.iter().any(|k| why.contains(k)) {
        "budget"
    } else if why.starts_with("cooldown:") {
        "cooldown"
    } else if why.starts_with("flap guard") {
        "flap_guard"
    } else if why.starts_with("circuit breaker") {
        "breaker"
    } else if why.starts_with("paused: change calendar") {
        "paused_calendar"
    } else if why.starts_with("paused:") {
        "paused"
    } else {
        "other"
    }
}

/// The engine's limits along a timeline, in memory: the same cooldown
/// records and the same bucketed sliding windows (`state::sliding_count`)
/// as the state table, taken in the same order.
#[derive(Default)]
pub struct Limits {
    cooldowns: HashMap<(&'static str, String), i64>,
    windows: HashMap<(String, i64), u32>,
}

impl Limits {
    fn take_cooldown(
        &mut self,
        action: &'static str,
        resource: &str,
        now: i64,
        period: i64,
    ) -> bool {
        let k = (action, resource.to_owned());
        if self.cooldowns.get(&k).is_some_and(|until| *until > now) {
            return false;
        }
        self.cooldowns.insert(k, now + period);
        true
    }

    /// A budget's counter, as the state table keeps it.
    fn take(&mut self, b: &Budget, now: i64) -> bool {
        self.count_in_window(&b.key, now, b.window, b.max)
    }

    /// Gives back one event of `key` counted at `now`.
    fn uncount(&mut self, key: &str, now: i64, window: i64) {
        let start = now - now.rem_euclid(window.max(1));
        if let Some(x) = self.windows.get_mut(&(key.to_owned(), start)) {
            *x = x.saturating_sub(1);
        }
    }

    fn release_cooldown(&mut self, action: &'static str, resource: &str) {
        self.cooldowns.remove(&(action, resource.to_owned()));
    }

    /// As `StateStore::count_in_window`: true when counted (within `max`).
    fn count_in_window(&mut self, key: &str, now: i64, window: i64, max: u32) -> bool {
        let w = window.max(1);
        let start = now - now.rem_euclid(w);
        let current = self.windows.entry((key.to_owned(), start)).or_insert(0);
        if *current >= max {
            return false;
        }
        *current += 1;
        let c = *current;
        let previous = self
            .windows
            .get(&(key.to_owned(), start - w))
            .copied()
            .unwrap_or(0);
        if crate::window::sliding_count(i64::from(previous), c, now - start, w) > f64::from(max) {
            if let Some(x) = self.windows.get_mut(&(key.to_owned(), start)) {
                *x -= 1;
            }
            return false;
        }
        true
    }
}

/// What one replayed incident has in hand while its changes take their limits.
struct Replay<'a> {
    now: i64,
    alarm_key: &'a str,
    params: Option<&'a crate::actions::ActionParams>,
    settings: &'a crate::actions::Settings,
    scope: &'a Scope,
    config: &'a Config,
}

impl Replay<'_> {
    /// A change's limits, as `engine::limits` takes them: the cooldown and
    /// the flap guard (and the breaker, when no other budget applies)
    /// together, then the budgets and the breaker in order; a refused
    /// attempt uses none of them. `flapping`: the flap guard's answer, asked
    /// once per incident.
    fn limits(
        &self,
        step: &crate::plan::Step,
        limits: &mut Limits,
        flapping: &mut Option<bool>,
    ) -> Result<(), &'static str> {
        let (now, config) = (self.now, self.config);
        let cooldown = self.params.and_then(|p| step.cooldown(p, self.settings));
        let cool = cooldown.as_ref().map(|(action, resource, period)| {
            limits.take_cooldown(action, resource, now, period.as_secs() as i64)
        });
        let mut budgets = self.scope.budgets(step, config);
        let ceiling = Budget::breaker(config);
        let early = budgets.is_empty();
        let mut counted: Vec<Budget> = Vec::new();
        let breaker = early.then(|| limits.take(&ceiling, now));
        if breaker == Some(true) {
            counted.push(ceiling.clone());
        }
        let flap = *flapping.get_or_insert_with(|| {
            !limits.count_in_window(
                &format!("flap#{}", self.alarm_key),
                now,
                config.flap_window.as_secs() as i64,
                config.flap_max,
            )
        });
        let refuse = |limits: &mut Limits, counted: &[Budget], release: bool, why: &'static str| {
            for b in counted {
                limits.uncount(&b.key, now, b.window);
            }
            if let (true, Some((action, resource, _)), Some(true)) = (release, &cooldown, cool) {
                limits.release_cooldown(action, resource);
            }
            Err(why)
        };
        if cool == Some(false) {
            refuse(limits, &counted, false, "cooldown")
        } else if flap {
            refuse(limits, &counted, true, "flap_guard")
        } else if breaker == Some(false) {
            refuse(limits, &counted, true, "breaker")
        } else {
            if !early {
                budgets.push(ceiling);
            }
            let mut v = Ok(());
            for b in &budgets {
                if limits.take(b, now) {
                    counted.push(b.clone());
                } else {
                    let name = if b.key == "breaker" {
                        "breaker"
                    } else {
                        "budget"
                    };
                    v = refuse(limits, &counted, true, name);
                    break;
                }
            }
            v
        }
    }
}

impl Tally {
    fn action(&mut self, name: ActionName) -> &mut ActionTally {
        self.actions.entry(name.as_str()).or_default()
    }

    fn hour(&mut self, at: &DateTime<Utc>) {
        *self.hours.entry(at.timestamp() / 3600).or_insert(0) += 1;
        let (h, n) = self
            .hours
            .iter()
            // The earliest of equally busy hours.
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(h, n)| (*h, *n))
            .unwrap_or_default();
        self.busiest_hour = DateTime::from_timestamp(h * 3600, 0).map(|t| BusiestHour {
            hour: t.format("%Y-%m-%dT%H:00Z").to_string(),
            transitions: n,
        });
    }
}

impl Summary {
    /// Counts one transition that could not be planned.
    pub fn unroutable(&mut self, r: &Replayed, why: &str) {
        self.count(r);
        self.unroutable
            .entry(r.alarm.clone())
            .or_insert_with(|| why.to_owned());
    }

    fn count(&mut self, r: &Replayed) {
        for t in [
            &mut self.overall,
            self.alarms.entry(r.alarm.clone()).or_default(),
        ] {
            t.transitions += 1;
            t.hour(&r.at);
        }
        let at = r.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        if self.from.is_none() {
            self.from = Some(at.clone());
        }
        self.to = Some(at);
    }

    /// One planned incident through the limits, at its transition's time,
    /// in the engine's order: a held change waits for a person; a change
    /// takes its cooldown, the breaker and (once per incident) the flap
    /// guard together, and the first that refuses names the limit.
    /// Returns the fixes that would have run (for the chronic count).
    pub fn apply(
        &mut self,
        r: &Replayed,
        plan: &Plan,
        config: &Config,
        limits: &mut Limits,
    ) -> Vec<ActionName> {
        self.count(r);
        let now = r.at.timestamp();
        let mut outcomes: Vec<(ActionName, Result<(), &'static str>, Way)> = Vec::new();
        let mut why_other: Vec<(ActionName, String)> = Vec::new();
        let mut flapping: Option<bool> = None;
        let alarm_key = plan.incident.alert.identity().to_owned();
        let params = config.playbooks.get(plan.incident.kind).map(|p| &p.params);
        let settings = config.settings();
        let scope = Scope::of(plan);
        for a in plan.actions.iter().filter(|a| a.name != ActionName::Notify) {
            let outcome = match &a.decision {
                // Held as chronic: the change was stopped, not waiting.
                Decision::Hold(_)
                    if plan
                        .autonomy
                        .get(&a.name)
                        .is_some_and(|au| au.from == "chronic") =>
                {
                    (a.name, Err("chronic"), Way::Run)
                }
                Decision::Hold(_) => (a.name, Ok(()), Way::Held),
                Decision::Observe(_) => (a.name, Ok(()), Way::Observed),
                Decision::Skip(why) | Decision::Fail(why) => {
                    let limit = limit_of(why);
                    if limit == "other" {
                        why_other.push((a.name, why.clone()));
                    }
                    (a.name, Err(limit), Way::Run)
                }
                Decision::Do(step) if !step.is_mutating() || step.is_evidence() => {
                    (a.name, Ok(()), Way::Run)
                }
                Decision::Do(step) => {
                    let replay = Replay {
                        now,
                        alarm_key: &alarm_key,
                        params,
                        settings: &settings,
                        scope: &scope,
                        config,
                    };
                    (a.name, replay.limits(step, limits, &mut flapping), Way::Run)
                }
            };
            outcomes.push(outcome);
        }
        for t in [
            &mut self.overall,
            self.alarms.entry(r.alarm.clone()).or_default(),
        ] {
            t.incidents += 1;
            for (name, verdict, held) in &outcomes {
                let x = t.action(*name);
                match (verdict, held) {
                    (_, Way::Held) => x.held_for_approval += 1,
                    (_, Way::Observed) => x.observed += 1,
                    (Ok(()), Way::Run) => x.would_run += 1,
                    (Err(limit), Way::Run) => *x.suppressed.entry(limit).or_insert(0) += 1,
                }
            }
            for (name, why) in &why_other {
                let x = t.action(*name);
                if x.other.len() < 5 || x.other.contains_key(why) {
                    *x.other.entry(why.clone()).or_insert(0) += 1;
                }
            }
        }
        outcomes
            .iter()
            .filter(|(name, verdict, way)| name.is_fix() && verdict.is_ok() && *way == Way::Run)
            .map(|(name, _, _)| *name)
            .collect()
    }

    /// Plain text: per alarm and overall.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "backtest: {} transitions into ALARM/firing from {} to {}, {} alarms; nothing was changed",
            self.overall.transitions,
            self.from.as_deref().unwrap_or("-"),
            self.to.as_deref().unwrap_or("-"),
            self.alarms.len()
        );
        let plural = |n: u32, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
        let block = |s: &mut String, name: &str, t: &Tally| {
            let _ = writeln!(
                s,
                "\n{name}: {}, {}{}",
                plural(t.transitions, "transition"),
                plural(t.incidents, "incident"),
                t.busiest_hour
                    .as_ref()
                    .map(|b| format!(
                        ", busiest hour {} ({})",
                        b.hour,
                        plural(b.transitions, "transition")
                    ))
                    .unwrap_or_default()
            );
            for (a, x) in &t.actions {
                let suppressed: Vec<String> = x
                    .suppressed
                    .iter()
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect();
                let _ = writeln!(
                    s,
                    "  {a:<20} would run {:>4}   held for approval {:>4}   observed {:>4}   suppressed {}",
                    x.would_run,
                    x.held_for_approval,
                    x.observed,
                    if suppressed.is_empty() {
                        "-".to_owned()
                    } else {
                        suppressed.join(", ")
                    }
                );
                // What `other` was, in the planner's words (the commonest two).
                let mut why: Vec<(&String, &u32)> = x.other.iter().collect();
                why.sort_by(|a, b| b.1.cmp(a.1));
                for (w, n) in why.into_iter().take(2) {
                    let _ = writeln!(s, "    other ({n}): {}", crate::text::escape(w));
                }
            }
        };
        for (name, t) in &self.alarms {
            block(&mut s, &format!("alarm {name}"), t);
        }
        block(&mut s, "overall", &self.overall);
        if !self.unroutable.is_empty() {
            let _ = writeln!(s, "\ncould not route:");
            for (a, why) in &self.unroutable {
                let _ = writeln!(s, "  {a}: {why}");
            }
        }
        s
    }
}
