//! One action of a stage: its decision checked against the mode, its claim,
//! its limits, the call under the deadline, and its outcome to record.

use tokio::time::{Instant, timeout_at};
use tracing::{Instrument, info_span};

use super::limits::Taken;
use super::record::{Recording, decided_without_aws, log_action, to_report};
use super::{Clock, Delivery, Engine};
use crate::actions::Recovery;
use crate::outcome::Outcome;
use crate::plan::{Decision, PlannedAction, Step};
use crate::report::{ActionReport, Status};

/// An action's report, any transient error, and its outcome still to be
/// recorded (the caller writes it while the next stage runs).
pub(crate) type Carried = (ActionReport, Option<String>, Option<Recording>);

impl Engine {
    /// Carries out one action: claim, limits, the call.
    pub(crate) async fn carry_out(
        &self,
        a: &PlannedAction,
        delivery: &Delivery<'_, '_>,
        clock: Clock,
        earlier: &[ActionReport],
    ) -> Carried {
        let id = &delivery.incident.id;
        let step = match without_a_call(a, delivery) {
            Ok(step) => step,
            Err(r) => {
                log_action(id, &r);
                return (*r, None, None);
            }
        };
        let started = Instant::now();
        let mut taken = Taken::default();
        // Boxed: a stage holds one such future per action.
        let run = Box::pin(self.claimed_run(a, step, delivery, clock, earlier, &mut taken));
        let (outcome, transient) = match run.await {
            Ok(done) => done,
            Err(stopped) => return stopped,
        };
        if outcome.status == Status::Failed && !outcome.uncertain {
            // Failed and surely not made: the cooldown and the budgets go
            // back, so a retry may act and nothing counts a change that
            // was not made. A change that may have been made keeps them.
            taken.give_back(self.state.as_ref(), clock.now, id).await;
        }
        // A read that failed may simply be read again.
        let mut outcome = outcome;
        outcome.uncertain &= step.is_mutating();
        let r = to_report(a, outcome.clone(), started);
        log_action(id, &r);
        // Without a claim there is nothing to record the outcome against.
        let rec = match transient {
            None => self.record_soon(a, id, &outcome),
            Some(_) => None,
        };
        (r, transient, rec)
    }

    /// The call under its claim and limits: its outcome and any transient
    /// error, or (Err) the report of an action that stopped before it.
    async fn claimed_run(
        &self,
        a: &PlannedAction,
        step: &Step,
        delivery: &Delivery<'_, '_>,
        clock: Clock,
        earlier: &[ActionReport],
        taken: &mut Taken,
    ) -> Result<(Outcome, Option<String>), Carried> {
        let Clock {
            now, lease, fresh, ..
        } = clock;
        let Delivery {
            incident,
            config,
            flap,
            scope,
        } = *delivery;
        let id = &incident.id;
        if fresh && !step.is_mutating() {
            // A first delivery holds no claim from anyone, and a read-only
            // action is harmless to repeat: claimed while it runs, one round
            // trip less. A claim that fails still fails the delivery.
            let (claim, outcome) = tokio::join!(
                self.claim(a, id, now, lease),
                self.call(a, step, delivery, clock, earlier, None)
            );
            return match claim {
                Ok(_) => Ok((outcome, None)),
                Err((r, None)) => {
                    log_action(id, &r);
                    Err((r, None, None))
                }
                Err((_, t)) => Ok((outcome, t)),
            };
        }
        let (claim, limited) = if fresh {
            // A first delivery's claim is all but certain (no earlier
            // delivery wrote one): the limits are taken beside it.
            tokio::join!(
                self.claim(a, id, now, lease),
                self.limits(step, config, now, scope, flap, taken)
            )
        } else {
            match self.claim(a, id, now, lease).await {
                Ok(o) => {
                    let limited = match step.is_mutating() {
                        true => self.limits(step, config, now, scope, flap, taken).await,
                        false => None,
                    };
                    (Ok(o), limited)
                }
                Err(e) => (Err(e), None),
            }
        };
        let orphaned = match claim {
            Ok(o) => o,
            Err((r, t)) => {
                // Not ours to do after all: what the limits took goes back.
                taken.give_back(self.state.as_ref(), now, id).await;
                log_action(id, &r);
                return Err((r, t, None));
            }
        };
        if orphaned.is_some() && a.name.recovery() == Recovery::Unverifiable {
            // Nothing tells whether it happened (a restart, a reboot), and
            // doing it twice is not harmless: recorded so no later
            // delivery repeats it either, and reported for a person.
            let why = "started by an earlier delivery that stopped before recording its outcome: not repeated; check it by hand";
            let r = ActionReport::new(a.name, &a.target, Status::Failed, why);
            taken.give_back(self.state.as_ref(), now, id).await;
            log_action(id, &r);
            let rec = self.record_soon(a, id, &Outcome::skipped(why));
            return Err((r, None, rec));
        }
        Ok(match limited {
            Some(o) => (o, None),
            None => (
                self.call(a, step, delivery, clock, earlier, orphaned).await,
                None,
            ),
        })
    }

    /// The action's own `run`, under the actions' deadline. `resume`: what
    /// an earlier delivery that died meant to do.
    async fn call(
        &self,
        a: &PlannedAction,
        step: &Step,
        delivery: &Delivery<'_, '_>,
        clock: Clock,
        earlier: &[ActionReport],
        resume: Option<String>,
    ) -> Outcome {
        let config = delivery.config;
        let span = info_span!("action", action = a.name.as_str(), target = %a.target);
        let settings = config.settings();
        let cx = crate::actions::Run {
            incident: delivery.incident,
            settings: &settings,
            earlier,
            resume: resume.as_deref(),
        };
        let work = crate::actions::perform(&self.aws, step, &cx);
        match timeout_at(clock.deadline, work).instrument(span).await {
            Ok(o) => o,
            Err(_) if clock.invocation => Outcome::uncertain(
                "did not finish before the invocation's deadline, less the time kept for this notification (it may still complete in AWS)",
            ),
            Err(_) => Outcome::uncertain(format!(
                "did not finish within the {} s actions deadline (it may still complete in AWS)",
                config.actions_deadline.as_secs()
            )),
        }
    }
}

/// The step to carry out, or (Err) the report of a decision that needs no
/// call: skipped, held (a dry run says what it would do once approved), or
/// a change a dry run only describes.
fn without_a_call<'p>(
    a: &'p PlannedAction,
    delivery: &Delivery<'_, '_>,
) -> Result<&'p Step, Box<ActionReport>> {
    let dry_run = delivery.config.dry_run;
    let skipped =
        |why: String| Box::new(ActionReport::new(a.name, &a.target, Status::Skipped, why));
    match &a.decision {
        Decision::Do(step) if dry_run && step.is_mutating() => Err(skipped(format!(
            "dry run: would {} ({})",
            step.describe(),
            a.reason
        ))),
        Decision::Do(step) => Ok(step),
        Decision::Hold(step) if dry_run => Err(skipped(format!(
            "dry run: would {} once a person approved it ({})",
            step.describe(),
            a.reason
        ))),
        _ => Err(Box::new(decided_without_aws(a))),
    }
}
