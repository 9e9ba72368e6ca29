//! The engine: carries out a plan stage by stage under the lease, claims,
//! cooldowns, flap guard, breaker and deadline, and records what came of
//! each action. The actions themselves are in `crate::actions`.

use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Either, Shared, join_all, select};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::time::Instant;
use tracing::{Instrument, info_span};

use crate::actions::notify;
use crate::config::Config;
use crate::incident::Incident;
use crate::notify::compose;
use crate::plan::{ActionName, Decision, Plan, PlannedAction, Step};
use crate::report::{ActionReport, IncidentReport, Status};
use crate::state::{Begin, Claim};

use crate::aws::*;
use crate::outcome::Outcome;

mod carry_out;
mod first_page;
mod hold;
mod key;
mod lease;
mod limits;
pub mod members;
mod paged;
mod record;
mod setup;
pub use first_page::{Due, due};
pub use key::{KeyCell, load_key};
pub use lease::Started;
pub(crate) use limits::{FlapCheck, flap_key, flap_note};
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

    /// Carries out a plan for a delivery that [`Engine::begin`] let through
    /// (see [`Timing`]). `metric`: the alert's metric, still being read
    /// (see [`LateMetric`]). The stages run raced against the first page,
    /// then the notification goes out with what came of them.
    pub async fn execute_started(
        &self,
        plan: &Plan,
        config: &Config,
        started: Started,
        now: i64,
        timing: Timing,
        metric: Option<LateMetric<'_>>,
    ) -> IncidentReport {
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
        let incident = plan.incident.clone();
        // The flap guard counts this occurrence once, when its first change
        // is about to be made, in the same round trip as that change's
        // cooldown and the breaker; only a first delivery counts.
        let flap = self.flap_check(&plan, config, now, delivery == "first");
        let scope = Scope::of(&plan);
        let (deadline, invocation) = deadline_of(config, timing.until);
        let clock = Clock {
            deadline,
            invocation,
            now,
            lease: config.actions_deadline + Duration::from_secs(60),
            fresh: delivery == "first",
        };
        let shared = Delivery {
            incident: &incident,
            config,
            flap: &flap,
            scope: &scope,
        };
        let notify: Vec<PlannedAction> = plan
            .actions
            .iter()
            .filter(|a| a.name == ActionName::Notify)
            .cloned()
            .collect();
        // The notification is claimed beside the first stage, not after the last.
        let claim_notify = join_all(notify.iter().map(|a| async {
            match &a.decision {
                Decision::Do(Step::Notify(notify::Step { .. })) => {
                    Some(self.claim(a, &incident.id, now, clock.lease).await)
                }
                _ => None,
            }
        }));
        // The first page (`first_page`), raced against the stages: sent at
        // once for long work, or when the budget runs out on late work.
        let sending = AtomicBool::new(false);
        let first_page = self.first_page(
            &plan,
            config,
            delivery == "first" || delivery == "untracked",
            timing.arrived,
            metric.clone(),
            &sending,
        );
        // Boxed, as the conclusion: each holds every action's future, and a
        // debug build's stack is small for them.
        let stages =
            Box::pin(self.run_stages(&mut plan, &shared, clock, &mut metric, claim_notify));
        let (staged, first_note) = race_first_page(stages, first_page, &sending).await;
        if let Some(n) = first_note {
            plan.note(n);
        }
        let end = Ending {
            delivery,
            notify: &notify,
            metric,
            flap: &flap,
            first_page_sent: sending.load(std::sync::atomic::Ordering::SeqCst),
        };
        Box::pin(self.conclude(plan, config, now, staged, end)).await
    }

    /// Stages in order, the actions of one stage concurrently; a later
    /// stage sees what the earlier ones reported (disk usage after cleanup).
    /// The notification's claims are taken beside the first stage.
    async fn run_stages<F>(
        &self,
        plan: &mut Plan,
        shared: &Delivery<'_, '_>,
        clock: Clock,
        metric: &mut Option<LateMetric<'_>>,
        claim_notify: F,
    ) -> Staged
    where
        F: std::future::Future<Output = Vec<Option<Claimed>>>,
    {
        let mut staged = Staged::default();
        let mut claim_notify = Some(claim_notify);
        for stage in 0..stage_count(plan) {
            // A step that sizes itself by the metric waits for it here (by
            // now it is in: it was read beside the fleet and earlier stages).
            if plan.stage_uses_metric(stage)
                && let Some(m) = metric.take()
            {
                plan.with_metric(m.await);
            }
            let earlier = staged.reports.clone();
            let work: Vec<PlannedAction> = plan
                .actions
                .iter()
                .filter(|a| a.stage == stage && a.name != ActionName::Notify)
                .cloned()
                .collect();
            let stage_work = join_all(
                work.iter()
                    .map(|a| self.carry_out(a, shared, clock, &earlier)),
            );
            let done = match claim_notify.take() {
                Some(c) => {
                    let (claims, done) = tokio::join!(c, stage_work);
                    staged.notify_claims = claims;
                    done
                }
                None => stage_work.await,
            };
            for (r, t, rec) in done {
                staged.reports.push(r);
                staged.transient = staged.transient.take().or(t);
                staged.recording.extend(rec);
            }
        }
        if let Some(c) = claim_notify {
            staged.notify_claims = c.await;
        }
        staged
    }

    /// After the stages: the held actions' links, the metric in the page,
    /// the notification (sent while the last outcomes are written), the flap
    /// count given back if nothing changed, and the incident closed.
    async fn conclude(
        &self,
        mut plan: Plan,
        config: &Config,
        now: i64,
        staged: Staged,
        end: Ending<'_, '_, '_>,
    ) -> IncidentReport {
        let Staged {
            mut reports,
            transient,
            recording,
            notify_claims,
        } = staged;
        // Held actions get their links (and their records) before the
        // notification that carries them.
        let held_notes = self
            .hold_for_approval(&plan, config, &mut reports, now)
            .await;
        for n in held_notes {
            plan.note(n);
        }
        // The page shows the metric.
        if let Some(m) = end.metric {
            plan.with_metric(m.await);
        }
        let publish = self.send_notifications(
            end.notify,
            notify_claims,
            (&plan, config, end.first_page_sent),
            &reports,
        );
        let ((notified, notify_records, t_notify), recorded) =
            tokio::join!(publish, finish_recording(recording));
        let transient = transient.or(recorded).or(t_notify);
        reports.extend(notified);
        self.give_back_flap(&plan, &reports, end.flap, now, config)
            .await;
        let mut report = plan.report_with(reports);
        if let Some(why) = flap_note(end.flap) {
            report.notes.push(why);
        }
        report.delivery = end.delivery;
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
        (plan, config, first_page_sent): (&Plan, &Config, bool),
        reports: &[ActionReport],
    ) -> (Vec<ActionReport>, Vec<Recording>, Option<String>) {
        let id = plan.incident.id.as_str();
        let mut sent = Vec::new();
        let mut out = Vec::new();
        let mut t_notify = None;
        for (a, claim) in notify.iter().zip(claims) {
            let report = match (&a.decision, claim) {
                (Decision::Do(Step::Notify(notify::Step { topic_arn })), Some(Ok(_))) => {
                    let mut n = compose(plan, reports);
                    self.pager_policy((plan, config), &mut n, first_page_sent)
                        .await;
                    let started = Instant::now();
                    let delivered = self
                        .deliver(config, topic_arn, plan.incident.kind.as_str(), id, &n)
                        .instrument(info_span!("action", action = "notify"))
                        .await;
                    if delivered.opened {
                        self.record_paged(plan, config).await;
                    }
                    let outcome = delivered.outcome;
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

/// What the stages leave: the reports, the first transient error, the
/// outcomes still being written, and the notification's claims.
#[derive(Default)]
struct Staged {
    reports: Vec<ActionReport>,
    transient: Option<String>,
    recording: Vec<Recording>,
    notify_claims: Vec<Option<Claimed>>,
}

/// What the end of a delivery needs beside the stages' results.
struct Ending<'a, 'm, 'f> {
    delivery: &'static str,
    notify: &'a [PlannedAction],
    metric: Option<LateMetric<'m>>,
    flap: &'a FlapCheck<'f>,
    /// A first page went out (and opened the PagerDuty incident).
    first_page_sent: bool,
}

/// How many stages the plan's actions (the notification aside) fill.
fn stage_count(plan: &Plan) -> usize {
    plan.actions
        .iter()
        .filter(|a| a.name != ActionName::Notify)
        .map(|a| a.stage)
        .max()
        .map_or(0, |m| m + 1)
}

/// The stages raced against the first page: a page already on its way
/// when the stages end still goes; the page's note, when one went.
async fn race_first_page(
    stages: impl std::future::Future<Output = Staged>,
    page: Option<BoxFuture<'_, String>>,
    sending: &AtomicBool,
) -> (Staged, Option<String>) {
    let Some(page) = page else {
        return (stages.await, None);
    };
    match select(pin!(stages), page).await {
        // Done first: a page already on its way still goes.
        Either::Left((staged, page)) => match sending.load(Ordering::SeqCst) {
            true => (staged, Some(page.await)),
            false => (staged, None),
        },
        Either::Right((note, stages)) => (stages.await, Some(note)),
    }
}
