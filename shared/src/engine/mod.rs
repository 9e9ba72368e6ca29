//! The engine: carries out a plan stage by stage under the lease, claims,
//! cooldowns, flap guard, breaker and deadline, and records what came of
//! each action. The actions themselves are in `crate::actions`.

use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Either, Shared, join_all, select};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::time::{Instant, timeout_at};
use tracing::{Instrument, info_span};

use crate::actions::notify;
use crate::config::Config;
use crate::incident::Incident;
use crate::notify::compose;
use crate::plan::{ActionName, Decision, Plan, PlannedAction, Step};
use crate::report::{ActionReport, IncidentReport, Status};
use crate::state::{Begin, Claim};

use crate::actions::Recovery;
use crate::aws::*;
use crate::outcome::Outcome;

mod first_page;
mod hold;
mod key;
mod lease;
mod limits;
pub mod members;
mod record;
mod setup;
pub use first_page::{Due, due};
pub use key::{KeyCell, load_key};
pub use lease::Started;
pub(crate) use limits::{FlapCheck, Taken, flap_key, flap_note};
use record::*;
pub use setup::Engine;

pub(crate) use crate::budget::{Budget, Scope};

/// The alert's metric while it is still being read: the responder plans and
/// starts acting on the fleet's state alone, and the engine waits for the
/// metric only where it is used (a step that sizes itself by the forecast,
/// and the page), so the reads never lengthen the critical path. Shared, so
/// that the caller keeps it going while the engine waits elsewhere.
pub type LateMetric<'a> =
    Shared<BoxFuture<'a, Option<Result<crate::series::MetricContext, String>>>>;

/// An incident's clock. `arrived`: when its event came in (the first page's
/// budget counts from it). `until`: the invocation's own deadline less the
/// reserve for the notification; the actions stop at it or at
/// `ACTIONS_DEADLINE_SECONDS`, whichever comes first.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub arrived: std::time::Instant,
    pub until: Option<std::time::Instant>,
}

impl Engine {
    /// Carries out a plan: independent actions concurrently under the
    /// actions deadline, then the notification with what came of them. With
    /// a state table, each occurrence is taken under a lease and each action
    /// claimed once, so redeliveries repeat nothing.
    pub async fn execute(&self, plan: &Plan, config: &Config) -> IncidentReport {
        // Nothing to do (an ignored transition, a quiet recovery): no call at all.
        if plan.actions.is_empty() {
            let mut r = plan.report_with(Vec::new());
            r.delivery = "nothing to do";
            return r;
        }
        let now = unix_now();
        let timing = Timing {
            arrived: std::time::Instant::now(),
            until: None,
        };
        let started = self.begin(&plan.incident.id, config, now).await;
        self.execute_started(plan, config, started, now, timing, None)
            .await
    }

    /// Carries out a plan for a delivery that [`Aws::begin`] let through
    /// (see [`Timing`]). `metric`: the alert's metric, still being read
    /// (see [`LateMetric`]).
    pub async fn execute_started(
        &self,
        plan: &Plan,
        config: &Config,
        started: Started,
        now: i64,
        timing: Timing,
        metric: Option<LateMetric<'_>>,
    ) -> IncidentReport {
        let Timing { arrived, until } = timing;
        let lease = config.actions_deadline + Duration::from_secs(60);
        let id = plan.incident.id.as_str();
        let delivery = match started {
            Started::Go(d) => d,
            Started::Stop {
                delivery,
                why,
                transient,
            } => return not_again(plan, delivery, &why, transient),
        };
        if plan.actions.is_empty() {
            return self.close_empty(plan).await;
        }
        let mut plan = plan.clone();
        let mut metric = metric;
        // The flap guard counts this occurrence once, when its first change
        // is about to be made, in the same round trip as that change's
        // cooldown and the breaker; only a first delivery counts.
        let flap = self.flap_check(&plan, config, now, delivery == "first");
        let scope = Scope::of(&plan);
        let (deadline, invocation) = deadline_of(config, until);
        let notify: Vec<PlannedAction> = plan
            .actions
            .iter()
            .filter(|a| a.name == ActionName::Notify)
            .cloned()
            .collect();
        let mut transient: Option<String> = None;
        let mut reports: Vec<ActionReport> = Vec::new();
        // The notification is claimed beside the first stage, not after the last.
        let claim_notify = join_all(notify.iter().map(|a| async {
            match &a.decision {
                Decision::Do(Step::Notify(notify::Step { .. })) => {
                    Some(self.claim(a, id, now, lease).await)
                }
                _ => None,
            }
        }));
        let mut notify_claims = None;
        let mut claim_notify = Some(claim_notify);
        // Each action's outcome is written as soon as it ends, in the
        // background: the stage and the notification do not wait for it, the
        // completion does.
        let mut recording: Vec<Recording> = Vec::new();
        // Stages in order, the actions of one stage concurrently; a later
        // stage sees what the earlier ones reported (disk usage after cleanup).
        let stages = plan
            .actions
            .iter()
            .filter(|a| a.name != ActionName::Notify)
            .map(|a| a.stage)
            .max()
            .map_or(0, |m| m + 1);
        // The first page (`first_page`), raced against the stages: sent at
        // once for long work, or when the budget runs out on late work.
        let sending = AtomicBool::new(false);
        let first_page = self.first_page(
            &plan,
            config,
            delivery == "first" || delivery == "untracked",
            arrived,
            metric.clone(),
            &sending,
        );
        let run_stages = async {
            for stage in 0..stages {
                // A step that sizes itself by the metric waits for it here (by
                // now it is in: it was read beside the fleet and earlier stages).
                if plan.stage_uses_metric(stage)
                    && let Some(m) = metric.take()
                {
                    plan.with_metric(m.await);
                }
                let earlier = reports.clone();
                let earlier = &earlier;
                let work: Vec<PlannedAction> = plan
                    .actions
                    .iter()
                    .filter(|a| a.stage == stage && a.name != ActionName::Notify)
                    .cloned()
                    .collect();
                let stage_work = join_all(work.iter().map(|a| {
                    let clock = Clock {
                        deadline,
                        invocation,
                        now,
                        lease,
                        fresh: delivery == "first",
                    };
                    let delivery = Delivery {
                        incident: &plan.incident,
                        config,
                        flap: &flap,
                        scope: &scope,
                    };
                    async move { self.carry_out(a, &delivery, clock, earlier).await }
                }));
                let done = match claim_notify.take() {
                    Some(c) => {
                        let (claims, done) = tokio::join!(c, stage_work);
                        notify_claims = Some(claims);
                        done
                    }
                    None => stage_work.await,
                };
                for (r, t, rec) in done {
                    reports.push(r);
                    transient = transient.take().or(t);
                    recording.extend(rec);
                }
            }
        };
        let first_note = match first_page {
            None => {
                run_stages.await;
                None
            }
            Some(page) => match select(pin!(run_stages), page).await {
                // Done first: a page already on its way still goes.
                Either::Left(((), page)) => match sending.load(Ordering::SeqCst) {
                    true => Some(page.await),
                    false => None,
                },
                Either::Right((note, stages)) => {
                    stages.await;
                    Some(note)
                }
            },
        };
        if let Some(n) = first_note {
            plan.note(n);
        }
        // Held actions get their links (and their records) before the
        // notification that carries them.
        let held_notes = self
            .hold_for_approval(&plan, config, &mut reports, now)
            .await;
        for n in held_notes {
            plan.note(n);
        }
        let claims = match (notify_claims, claim_notify) {
            (Some(c), _) => c,
            (None, Some(c)) => c.await,
            (None, None) => Vec::new(),
        };
        // The page shows the metric.
        if let Some(m) = metric.take() {
            plan.with_metric(m.await);
        }
        // The notification goes out while the last stage's outcomes are written.
        let publish = self.send_notifications(&notify, claims, &plan, &reports);
        let ((notified, notify_records, t_notify), recorded) =
            tokio::join!(publish, finish_recording(recording));
        transient = transient.or(recorded).or(t_notify);
        reports.extend(notified);
        self.give_back_flap(&plan, &reports, &flap, now, config)
            .await;
        let mut report = plan.report_with(reports);
        if let Some(why) = flap_note(&flap) {
            report.notes.push(why);
        }
        report.delivery = delivery;
        report.transient_error = self.finish(&report, notify_records, transient).await;
        report
    }

    /// Began, then found nothing to do: closed rather than left leased.
    async fn close_empty(&self, plan: &Plan) -> IncidentReport {
        let mut r = plan.report_with(Vec::new());
        r.delivery = "nothing to do";
        if let Some(st) = &self.state {
            let stored = serde_json::to_string(&r).unwrap_or_default();
            if let Err(e) = st.complete_incident(&plan.incident.id, &stored).await {
                r.transient_error = Some(e);
            }
        }
        r
    }

    /// The notifications, each sent once its claim holds (an orphaned one is
    /// sent again: a duplicate message is better than none): their reports,
    /// their outcomes still being recorded, and any transient error.
    async fn send_notifications(
        &self,
        notify: &[PlannedAction],
        claims: Vec<Option<Claimed>>,
        plan: &Plan,
        reports: &[ActionReport],
    ) -> (Vec<ActionReport>, Vec<Recording>, Option<String>) {
        let id = plan.incident.id.as_str();
        let mut sent = Vec::new();
        let mut out = Vec::new();
        let mut t_notify = None;
        for (a, claim) in notify.iter().zip(claims) {
            let report = match (&a.decision, claim) {
                (Decision::Do(Step::Notify(notify::Step { topic_arn })), Some(Ok(_))) => {
                    let n = compose(plan, reports);
                    let started = Instant::now();
                    let outcome = crate::actions::notify::publish(
                        &self.aws.sns,
                        topic_arn,
                        plan.incident.kind.as_str(),
                        id,
                        &n.message(),
                    )
                    .instrument(info_span!("action", action = "notify"))
                    .await;
                    let r = to_report(a, outcome.clone(), started);
                    sent.extend(self.record_soon(a, id, &outcome));
                    r
                }
                (_, Some(Err((early, t)))) => {
                    t_notify = t_notify.or(t);
                    early
                }
                _ => decided_without_aws(a),
            };
            log_action(id, &report);
            out.push(report);
        }
        (out, sent, t_notify)
    }

    /// The flap guard counted this occurrence for a change, and then no
    /// change was made (a cooldown or a budget refused every one): the count
    /// goes back, so refused attempts never trip the guard.
    async fn give_back_flap(
        &self,
        plan: &Plan,
        reports: &[ActionReport],
        flap: &FlapCheck<'_>,
        now: i64,
        config: &Config,
    ) {
        let changed = reports.iter().any(|r| {
            crate::verify::is_fix(r.action) && matches!(r.status, Status::Done | Status::Failed)
        });
        if matches!(flap.peek(), Some(None))
            && !changed
            && let Some(st) = &self.state
        {
            let _ = st.uncount(&flap_key(plan), now, config.flap_window).await;
        }
    }

    /// The notification's record and the incident's completion together (if
    /// the record is lost, the completion still stops a redelivery); a
    /// delivery with a transient error is released for the retry instead.
    /// The transient error, if any.
    async fn finish(
        &self,
        report: &IncidentReport,
        notify_records: Vec<Recording>,
        transient: Option<String>,
    ) -> Option<String> {
        let id = report.id.as_str();
        let records = finish_recording(notify_records);
        let end = async {
            let st = self.state.as_ref()?;
            let stored = serde_json::to_string(report).unwrap_or_default();
            Some(match &transient {
                None => st.complete_incident(id, &stored).await,
                Some(_) => st.release_incident(id).await,
            })
        };
        let (recorded, ended) = tokio::join!(records, end);
        let mut transient = transient.or(recorded);
        if let Some(Err(e)) = ended {
            transient = transient.or(Some(e));
        }
        transient
    }

    /// Carries out one action: claim, limits, the call. Returns its report,
    /// any transient error, and the outcome still to be recorded (the
    /// caller writes it while the next stage runs).
    pub(crate) async fn carry_out(
        &self,
        a: &PlannedAction,
        delivery: &Delivery<'_, '_>,
        clock: Clock,
        earlier: &[ActionReport],
    ) -> (ActionReport, Option<String>, Option<Recording>) {
        let Delivery {
            incident,
            config,
            flap,
            scope,
        } = *delivery;
        let Clock {
            deadline,
            invocation,
            now,
            lease,
            fresh,
        } = clock;
        let step = match &a.decision {
            Decision::Do(step) => step,
            Decision::Hold(step) if config.dry_run => {
                let r = ActionReport::new(
                    a.name,
                    &a.target,
                    Status::Skipped,
                    format!(
                        "dry run: would {} once a person approved it ({})",
                        step.describe(),
                        a.reason
                    ),
                );
                log_action(&incident.id, &r);
                return (r, None, None);
            }
            _ => {
                let r = decided_without_aws(a);
                log_action(&incident.id, &r);
                return (r, None, None);
            }
        };
        if config.dry_run && step.is_mutating() {
            let r = ActionReport::new(
                a.name,
                &a.target,
                Status::Skipped,
                format!("dry run: would {} ({})", step.describe(), a.reason),
            );
            log_action(&incident.id, &r);
            return (r, None, None);
        }
        let work = |resume: Option<String>| {
            let span = info_span!("action", action = a.name.as_str(), target = %a.target);
            async move {
                let settings = config.settings();
                let cx = crate::actions::Run {
                    incident,
                    settings: &settings,
                    earlier,
                    resume: resume.as_deref(),
                };
                let work = crate::actions::perform(&self.aws, step, &cx);
                match timeout_at(deadline, work).instrument(span).await {
                    Ok(o) => o,
                    Err(_) if invocation => Outcome::uncertain(
                        "did not finish before the invocation's deadline, less the time kept for this notification (it may still complete in AWS)",
                    ),
                    Err(_) => Outcome::uncertain(format!(
                        "did not finish within the {} s actions deadline (it may still complete in AWS)",
                        config.actions_deadline.as_secs()
                    )),
                }
            }
        };
        let started = Instant::now();
        let mut taken = Taken::default();
        let mut transient = None;
        let outcome = if fresh && !step.is_mutating() {
            // A first delivery holds no claim from anyone, and a read-only
            // action is harmless to repeat: claimed while it runs, one round
            // trip less. A claim that fails still fails the delivery.
            let (claim, outcome) =
                tokio::join!(self.claim(a, &incident.id, now, lease), work(None));
            match claim {
                Ok(_) => outcome,
                Err((r, None)) => {
                    log_action(&incident.id, &r);
                    return (r, None, None);
                }
                Err((_, t)) => {
                    transient = t;
                    outcome
                }
            }
        } else {
            let (claim, limited) = if fresh {
                // A first delivery's claim is all but certain (no earlier
                // delivery wrote one): the limits are taken beside it.
                tokio::join!(
                    self.claim(a, &incident.id, now, lease),
                    self.limits(step, config, now, scope, flap, &mut taken)
                )
            } else {
                match self.claim(a, &incident.id, now, lease).await {
                    Ok(o) => {
                        let limited = if step.is_mutating() {
                            self.limits(step, config, now, scope, flap, &mut taken)
                                .await
                        } else {
                            None
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
                    taken
                        .give_back(self.state.as_ref(), now, &incident.id)
                        .await;
                    log_action(&incident.id, &r);
                    return (r, t, None);
                }
            };
            if orphaned.is_some() && a.name.recovery() == Recovery::Unverifiable {
                // Nothing tells whether it happened (a restart, a reboot), and
                // doing it twice is not harmless: recorded so no later
                // delivery repeats it either, and reported for a person.
                let why = "started by an earlier delivery that stopped before recording its outcome: not repeated; check it by hand";
                let r = ActionReport::new(a.name, &a.target, Status::Failed, why);
                taken
                    .give_back(self.state.as_ref(), now, &incident.id)
                    .await;
                log_action(&incident.id, &r);
                let rec = self.record_soon(a, &incident.id, &Outcome::skipped(why));
                return (r, None, rec);
            }
            match limited {
                Some(o) => o,
                None => work(orphaned).await,
            }
        };
        if outcome.status == Status::Failed && !outcome.uncertain {
            // Failed and surely not made: the cooldown and the budgets go
            // back, so a retry may act and nothing counts a change that
            // was not made. A change that may have been made keeps them.
            taken
                .give_back(self.state.as_ref(), now, &incident.id)
                .await;
        }
        // A read that failed may simply be read again.
        let mut outcome = outcome;
        outcome.uncertain &= step.is_mutating();
        let r = to_report(a, outcome.clone(), started);
        log_action(&incident.id, &r);
        // Without a claim there is nothing to record the outcome against.
        let rec = match transient {
            None => self.record_soon(a, &incident.id, &outcome),
            Some(_) => None,
        };
        (r, transient, rec)
    }

    /// Carries out one approved action alone, as any action is: its claim
    /// (under the incident's id), its limits (cooldown and breaker; not the
    /// flap guard, which counts alarms, not a person's decisions), the call,
    /// and its record. Returns its report and any transient error.
    pub(crate) async fn carry_out_approved(
        &self,
        a: &PlannedAction,
        plan: &Plan,
        config: &Config,
        now: i64,
    ) -> (ActionReport, Option<String>) {
        let incident = &plan.incident;
        let scope = Scope::of(plan);
        let clock = Clock {
            deadline: Instant::now() + config.actions_deadline,
            invocation: false,
            now,
            lease: config.actions_deadline + Duration::from_secs(60),
            fresh: false,
        };
        let flap: FlapCheck<'_> = async { None }.boxed().shared();
        let delivery = Delivery {
            incident,
            config,
            flap: &flap,
            scope: &scope,
        };
        let (r, t, rec) = self.carry_out(a, &delivery, clock, &[]).await;
        let recorded = finish_recording(rec.into_iter().collect()).await;
        (r, t.or(recorded))
    }
}

/// An action's claim: held (with the earlier delivery's note, if any), or
/// refused with its report and any transient error (`Aws::claim`).
type Claimed = Result<Option<String>, (ActionReport, Option<String>)>;

/// The actions' deadline: the configured one, or the invocation's own
/// when that comes first (then `true`).
fn deadline_of(config: &Config, until: Option<std::time::Instant>) -> (Instant, bool) {
    let deadline = Instant::now() + config.actions_deadline;
    match until.map(Instant::from_std) {
        Some(u) if u < deadline => (u, true),
        _ => (deadline, false),
    }
}

/// What every action of one delivery shares: the incident, the
/// configuration, the flap guard's answer and the scope its limits count in.
#[derive(Clone, Copy)]
pub(crate) struct Delivery<'a, 'f> {
    incident: &'a Incident,
    config: &'a Config,
    flap: &'a FlapCheck<'f>,
    scope: &'a Scope,
}

/// When a delivery started, its lease, and the deadline of its actions.
#[derive(Clone, Copy)]
pub(crate) struct Clock {
    deadline: Instant,
    /// The deadline is the invocation's own (less the notification's reserve).
    invocation: bool,
    now: i64,
    lease: Duration,
    /// A first delivery: no earlier one can have claimed anything.
    fresh: bool,
}
