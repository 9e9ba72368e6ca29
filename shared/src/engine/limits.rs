//! The limits a change counts against, taken in the state table: the
//! cooldown, the flap guard, the budgets and the breaker; and what was taken,
//! given back when no change was made.

use super::*;

impl Engine {
    /// One alarm may trigger remediation at most `flap_max` times a window.
    /// Lazy and shared: counted once, by the first change that asks, and
    /// never when no change is made. Some(why) stops the changes.
    pub(crate) fn flap_check<'a>(
        &'a self,
        plan: &Plan,
        config: &'a Config,
        now: i64,
        first: bool,
    ) -> FlapCheck<'a> {
        let key = flap_key(plan);
        let name = plan.incident.alert.alarm_name.clone();
        async move {
            let st = self.state.as_ref().filter(|_| first)?;
            match st
                .count_in_window(
                    &key,
                    now,
                    config.flap_window,
                    config.flap_max,
                )
                .await
            {
                Ok(Ok(_)) => None,
                Ok(Err(max)) => Some(format!(
                    "flap guard: alarm {name} already triggered remediation {max} times within {} s: notify only",
                    config.flap_window.as_secs()
                )),
                Err(e) => Some(format!("flap guard could not be read ({e}): notify only")),
            }
        }
        .boxed()
        .shared()
    }

    /// Cooldown, flap guard, the budgets and the circuit breaker. Some(outcome)
    /// when one stops the action; `taken` learns the cooldown this action
    /// holds. A refused attempt uses none of them: what was counted for it is
    /// given back. The budgets are taken one after another (the account's,
    /// the group's, the group's share, then the breaker, the global ceiling),
    /// each a conditional write, so concurrent incidents never overspend one;
    /// with none configured the breaker is taken beside the cooldown, in the
    /// same round trip.
    pub(crate) async fn limits(
        &self,
        step: &Step,
        config: &Config,
        now: i64,
        scope: &Scope,
        flap: &FlapCheck<'_>,
        taken: &mut Taken,
    ) -> Option<Outcome> {
        // Without a state table there is nothing to count against. Evidence
        // (a snapshot) changes nothing of the fleet: no cooldown, flap guard
        // or breaker; its own cap per incident is the planner's.
        let st = self.state.as_ref()?;
        if step.is_evidence() {
            return None;
        }
        let owner = scope.incident.as_str();
        let cooldown = config
            .playbooks
            .get(scope.kind)
            .and_then(|pb| step.cooldown(&pb.params, &config.settings()));
        let cool = async {
            match &cooldown {
                Some((action, resource, period)) => Some(
                    st.take_cooldown(
                        action,
                        &scope.key_of(resource),
                        resource,
                        now,
                        *period,
                        owner,
                    )
                    .await,
                ),
                None => None,
            }
        };
        let mut budgets = scope.budgets(step, config);
        let ceiling = Budget::breaker(config);
        // No budget of its own: the breaker beside the cooldown.
        let early = budgets.is_empty();
        let breaker = async {
            match early {
                true => Some(take(st, &ceiling, now).await),
                false => None,
            }
        };
        let (cool, breaker, flapping) = tokio::join!(cool, breaker, flap.clone());
        let mut counted: Vec<&Budget> = Vec::new();
        if let Some(Ok(Ok(()))) = &breaker {
            counted.push(&ceiling);
        }
        let refuse = async |counted: &[&Budget], taken: &mut Taken, o: Outcome| {
            taken.budgets.extend(counted.iter().map(|b| (*b).clone()));
            taken.give_back(Some(st), now, owner).await;
            Some(o)
        };
        if let (Some((action, resource, _)), Some(result)) = (&cooldown, cool) {
            match result {
                Ok(Ok(())) => taken.cooldown = Some((*action, scope.key_of(resource))),
                Ok(Err(until)) => {
                    let why = format!(
                        "cooldown: {action} of {resource} was done recently; not again until {}",
                        rfc3339(until)
                    );
                    return refuse(&counted, &mut Taken::default(), Outcome::skipped(why)).await;
                }
                Err(e) => {
                    return refuse(
                        &counted,
                        &mut Taken::default(),
                        Outcome::failed(format!("state table: {e}")),
                    )
                    .await;
                }
            }
        }
        if let Some(why) = flapping {
            return refuse(&counted, taken, Outcome::skipped(why)).await;
        }
        // The breaker taken early: full, or unreadable.
        match breaker {
            Some(Ok(Err(_))) => {
                return refuse(&counted, taken, Outcome::skipped(ceiling.refusal(now))).await;
            }
            Some(Err(e)) => {
                let o = Outcome::failed(format!("state table: {e}"));
                return refuse(&counted, taken, o).await;
            }
            Some(Ok(Ok(()))) => {}
            // Not taken yet: the last of the budgets.
            None => budgets.push(ceiling.clone()),
        }
        if let Err(o) = take_each(st, &budgets, now, &mut counted).await {
            return refuse(&counted, taken, o).await;
        }
        taken.budgets.extend(counted.into_iter().cloned());
        None
    }
}

/// What an action's limits took: its cooldown (the action and the
/// resource's key) and the budgets counted for it.
#[derive(Debug, Default)]
pub(crate) struct Taken {
    cooldown: Option<(&'static str, String)>,
    budgets: Vec<Budget>,
}

impl Taken {
    /// Gives everything back: no change was made, so none is counted and
    /// the cooldown (`owner`'s own) no longer holds.
    pub(super) async fn give_back(
        &mut self,
        st: Option<&crate::state::StateStore>,
        now: i64,
        owner: &str,
    ) {
        let Some(st) = st else { return };
        for b in self.budgets.drain(..) {
            let _ = st.uncount(&b.key, now, b.window()).await;
        }
        if let Some((action, resource)) = self.cooldown.take() {
            let _ = st.release_cooldown(action, &resource, owner).await;
        }
    }
}

/// The budgets in order, each counted once taken; Err: the first that is
/// full (skipped) or cannot be read (failed).
async fn take_each<'b>(
    st: &crate::state::StateStore,
    budgets: &'b [Budget],
    now: i64,
    counted: &mut Vec<&'b Budget>,
) -> Result<(), Outcome> {
    for b in budgets {
        match take(st, b, now).await {
            Ok(Ok(())) => counted.push(b),
            Ok(Err(_)) => return Err(Outcome::skipped(b.refusal(now))),
            Err(e) => return Err(Outcome::failed(format!("state table: {e}"))),
        }
    }
    Ok(())
}

/// Counts one change against a budget: Ok(Err(max)) when it is spent.
async fn take(
    st: &crate::state::StateStore,
    b: &Budget,
    now: i64,
) -> Result<Result<(), u32>, String> {
    st.count_in_window(&b.key, now, b.window(), b.max)
        .await
        .map(|r| r.map(|_| ()))
}

/// The flap guard's verdict, shared by the actions of one delivery.
pub(crate) type FlapCheck<'a> = Shared<BoxFuture<'a, Option<String>>>;

/// The flap guard's counter for the plan's alarm: where the alarm is, then
/// the alarm (an Alertmanager fingerprint or an alarm's name can repeat in
/// another account or region).
pub(crate) fn flap_key(plan: &Plan) -> String {
    format!(
        "flap#{}#{}",
        Scope::of(plan).place,
        plan.incident.alert.identity()
    )
}

/// What the flap guard said, if it was asked.
pub(crate) fn flap_note(flap: &FlapCheck<'_>) -> Option<String> {
    flap.peek().cloned().flatten()
}
