//! One incident of an event, from where it acts to its report: the claim
//! of a message checked where it says, the reads, the plan, the engine (or
//! the plan alone), and what the check after the fix needs recorded.

use futures::FutureExt;
use futures::future::{Either, select};
use tracing::info;

use crate::config::Config;
use crate::engine::members::Unreachable;
use crate::engine::{Engine, LateMetric};
use crate::incident::{Incident, Transition};
use crate::plan::{Decision, Observed, plan};
use std::time::Instant;

use super::Mode;

/// Why a message's claim was not believed: refused for good (the alarm is
/// not there as it says), or not yet checked (the read failed: a retry may
/// do).
#[derive(Clone, Debug)]
enum NotBelieved {
    Refused(String),
    Unread(String),
    /// The account it names could not be reached for now.
    Unreached(String),
}

/// Judges an SNS message's claim on the alarm read where it said (Ok(note):
/// believed, with a note when the alarm changed since); Ok(None) at once
/// when nothing needs checking.
async fn claim_check(
    incident: &Incident,
    target: Option<&crate::target::Target>,
    read_alarm: bool,
    alarm: crate::observe::alarm::AlarmRead<'_>,
) -> Result<Option<String>, NotBelieved> {
    if !read_alarm {
        return Ok(None);
    }
    let place = crate::target::described(target);
    let deadline = crate::observe::alarm::CLAIM_DEADLINE;
    let found = match tokio::time::timeout(deadline, alarm).await {
        Ok(Some(Ok(found))) => found,
        Ok(Some(Err(e))) => return Err(NotBelieved::Unread(e)),
        Ok(None) => return Err(NotBelieved::Unread("the alarm was not read".into())),
        Err(_) => {
            return Err(NotBelieved::Unread(format!(
                "CloudWatch did not answer within {} s",
                deadline.as_secs()
            )));
        }
    };
    crate::target::judge(&incident.alert, &place, found.map(|f| f.seen()).as_ref())
        .map_err(NotBelieved::Refused)
}

/// The report of an incident whose claim was not believed: nothing
/// changed, nobody paged (a forged message must not reach on-call with its
/// text), logged and counted (`RefusedEvents`); a read that failed is left
/// for the retry.
fn not_believed(
    incident: &Incident,
    config: &Config,
    why: &NotBelieved,
) -> crate::report::IncidentReport {
    let (text, refused) = match why {
        NotBelieved::Refused(w) => (w.clone(), true),
        NotBelieved::Unread(e) => (
            format!(
                "the alarm could not be read where the message says, so nothing was done yet: {e}"
            ),
            false,
        ),
        NotBelieved::Unreached(e) => (
            format!(
                "the account the alert names could not be reached, so nothing was done yet: {e}"
            ),
            false,
        ),
    };
    tracing::warn!(incident_id = %incident.id, reason = %text, refused, "event not believed");
    let mut p = plan(incident, &Observed::nothing(), config);
    for a in &mut p.actions {
        a.decision = Decision::Fail(text.clone());
        a.reason = String::new();
    }
    p.note(text.clone());
    let mut r = p.to_report();
    r.delivery = if refused { "refused" } else { "untracked" };
    match refused {
        true => r.refused = Some(text),
        false => r.transient_error = Some(text),
    }
    r
}

/// What every incident of one event shares: the kill switch as read once,
/// the event's text, when it arrived and when the actions must end.
pub(super) struct Shared<'a> {
    pub(super) kill_switch: &'a Result<bool, String>,
    pub(super) event: &'a Option<std::sync::Arc<str>>,
    pub(super) arrived: Instant,
    pub(super) hard: Option<Instant>,
}

/// One incident of an event: where it acts, its claim checked, read, planned
/// and (in `Mode::Run`) carried out; then what the check after the fix
/// needs recorded.
pub(super) async fn respond_incident(
    incident: &Incident,
    engine: &Engine,
    config: &Config,
    mode: Mode,
    shared: &Shared<'_>,
) -> crate::report::IncidentReport {
    let Shared { arrived, hard, .. } = *shared;
    // Where the alert lives decides where to act: that account's and
    // region's clients (the topic and the state table stay ours).
    // Refused there: nobody is paged (the alert's text may be anyone's),
    // logged and counted like a claim that does not hold.
    let place = match engine.for_incident(incident, config).await {
        Ok(w) => w,
        Err(e) => return not_believed(incident, config, &e.into()),
    };
    let (engine, target) = (&place.engine, &place.target);
    // An SNS message's account and alarm are believed once the alarm
    // has been read there; that one read also gives the metric.
    let alarm = crate::observe::alarm::alarm_read(&engine.aws, incident, place.read_alarm);
    let claim = claim_check(incident, target.as_ref(), place.read_alarm, alarm.clone())
        .boxed()
        .shared();
    // Nothing but that read is asked of another account before the
    // claim holds; in the deployment's own, the reads overlap it.
    let gate_reads = place.read_alarm && place.member;
    // With something to do, the lease is taken while AWS is read:
    // one round trip less before the first action.
    let may_act = incident.transition == Transition::Firing
        || (incident.transition == Transition::Resolved && config.notify_on_resolve);
    // An address is looked up once, for the fleet's reads and the metric's.
    let lookup = crate::observe::lookup(&engine.aws, incident, config);
    // The reads are bounded too (an `lsblk` over SSM may wait a minute).
    let observe = async {
        if gate_reads && claim.clone().await.is_err() {
            return Observed::nothing();
        }
        let fleet = reads(engine, incident, config, lookup.as_ref());
        match hard {
            Some(h) => tokio::time::timeout_at(h.into(), fleet)
                .await
                .unwrap_or_else(|_| {
                    Observed::failed("the reads did not finish before the invocation's deadline")
                }),
            None => fleet.await,
        }
    };
    // The check after the fix is sent before any change (beside the
    // reads), so that a crash after the fix cannot lose it.
    let (may_fix, verify_after) = check_after_fix(config, incident.kind);
    let claimed = Claimed {
        incident,
        engine,
        config,
        claim: claim.clone(),
    };
    let schedule = schedule_check(&claimed, may_fix, verify_after);
    // The alert's metric is read beside the fleet (under its own
    // short deadline), on its own clock.
    let metric: LateMetric<'_> = async {
        if gate_reads && claim.clone().await.is_err() {
            return None;
        }
        crate::observe::metric::metric_context(
            &engine.aws,
            incident,
            lookup.as_ref(),
            alarm.clone(),
        )
        .await
    }
    .boxed()
    .shared();
    let decide = |observed: Observed| decide(incident, observed, shared, target.as_ref(), config);
    let (mut report, fixes, scheduled) = if mode == Mode::Run && may_act {
        let timing = crate::engine::Timing {
            arrived,
            until: hard,
        };
        // Boxed: the incident's futures are large in a debug build's stack.
        Box::pin(act(&claimed, (observe, schedule), metric, timing, decide)).await
    } else {
        match Box::pin(read_then_plan(&claimed, (observe, metric), mode, decide)).await {
            Ok((r, fixes)) => (r, fixes, None),
            Err(refused) => return refused,
        }
    };
    let place = crate::target::place_of(target.as_ref());
    record_resolution(incident, engine, config, mode, &place, &mut report).await;
    if mode == Mode::Run {
        let event = shared.event.as_deref();
        record_history(engine, incident, config, event, &mut report).await;
    }
    if fixes && mode == Mode::Run && !config.dry_run {
        report
            .notes
            .push(verification_note(verify_after, scheduled));
    }
    report
}

/// The fleet's reads with the track record. Boxed: the reads' futures are
/// large in a debug build's stack.
fn reads<'a: 'b, 'b>(
    engine: &'b Engine,
    incident: &'b Incident,
    config: &'b Config,
    lookup: Option<&'b crate::observe::Lookup<'a>>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Observed> + Send + 'b>> {
    Box::pin(with_history(
        engine,
        incident,
        Box::pin(crate::observe::observe_fleet(
            &engine.aws,
            incident,
            config,
            lookup,
        )),
    ))
}

/// The fleet's reads, with the track record the modes depend on (the
/// demotions, and the resource's earlier runs: `crate::autonomy`), read
/// beside them when the alert names its resource, after them when it
/// names only an address.
async fn with_history(
    engine: &Engine,
    incident: &Incident,
    fleet: impl std::future::Future<Output = Observed>,
) -> Observed {
    let firing = incident.transition == Transition::Firing
        && incident.kind != crate::incident::IncidentKind::Unrouted;
    let read = |resource: Option<String>| async move {
        match &engine.state {
            Some(st) if firing => st.history(resource.as_deref()).await,
            _ => Ok(crate::observed::History::default()),
        }
    };
    let known = match &incident.resource {
        crate::incident::Resource::Instance(i) => Some(i.to_string()),
        crate::incident::Resource::Group(g) => Some(g.to_string()),
        _ => None,
    };
    let (mut o, h) = tokio::join!(fleet, read(known.clone()));
    o.history = match (known, &o.resolved) {
        (None, Some(Ok(i))) => read(Some(i.to_string())).await,
        _ => h,
    };
    o
}

/// What a firing incident leaves in the track record (not a dry run's):
/// its changes, and its alarm's transition into ALARM (not for a message
/// whose claim did not hold: that is no alarm's history).
async fn record_history(
    engine: &Engine,
    incident: &Incident,
    config: &Config,
    event: Option<&str>,
    report: &mut crate::report::IncidentReport,
) {
    if config.dry_run || incident.transition != Transition::Firing {
        // A recovery costs no call: the replay reads only changes into
        // ALARM (and a resolution is recorded for the check apart).
        return;
    }
    // The changes and the transition at once: one round trip after the
    // notification, not one per write.
    let believed = report.refused.is_none() && report.transient_error.is_none();
    let transition = async {
        if believed {
            record_transition(engine, incident, config, event).await;
        }
    };
    tokio::join!(record_runs(engine, config, report), transition);
}

/// A CloudWatch alarm's transition, kept `HISTORY_TTL_DAYS` for `backtest
/// --recorded` (CloudWatch keeps 14 days). A failure is logged only.
async fn record_transition(
    engine: &Engine,
    incident: &Incident,
    config: &Config,
    event: Option<&str>,
) {
    let a = &incident.alert;
    let Some(st) = &engine.state else { return };
    let Some(at) = crate::series::parse_time(&a.state_timestamp) else {
        return;
    };
    // An Alertmanager occurrence: its payload, as the backtest reads it.
    if !a.source.is_cloudwatch() {
        if let Some(payload) = event
            && let Err(e) = st
                .record_payload(
                    &incident.id,
                    at.timestamp(),
                    payload,
                    config.history_ttl_days,
                )
                .await
        {
            tracing::warn!(incident_id = %incident.id, error = %e, "occurrence not recorded");
        }
        return;
    }
    let old = a.previous_state.map_or("INSUFFICIENT_DATA", |s| s.as_str());
    let t = crate::state::track::Transition {
        alarm: &a.alarm_name,
        timestamp: &a.state_timestamp,
        at: at.timestamp(),
        old,
        new: a.state.as_str(),
        reason: &a.reason,
        value: a.value,
        threshold: a.threshold,
    };
    if let Err(e) = st.record_transition(&t, config.history_ttl_days).await {
        tracing::warn!(incident_id = %incident.id, error = %e, "transition not recorded");
    }
}

/// Each change carried out, held or observed, in the track record (its
/// check adds the verdict). A failure to record is a note, not an error:
/// the incident was handled.
async fn record_runs(engine: &Engine, config: &Config, report: &mut crate::report::IncidentReport) {
    let Some(st) = &engine.state else { return };
    let at = crate::series::parse_time(&report.alarm_time)
        .map_or_else(crate::aws::unix_now, |t| t.timestamp());
    let resource = report.instance.clone().or_else(|| report.group.clone());
    let kind = report.kind.as_str();
    let mut runs = Vec::new();
    for a in &report.actions {
        let (Some(mode), Some(scope)) = (&a.mode, &a.scope) else {
            continue;
        };
        let status = match a.status {
            crate::report::Status::Done => "done",
            crate::report::Status::Observed => "observed",
            crate::report::Status::AwaitingApproval => "held",
            crate::report::Status::Failed => "failed",
            _ => continue,
        };
        let run = crate::state::track::Run {
            incident: &report.id,
            action: a.action,
            kind,
            scope,
            mode,
            status,
            resource: resource.as_deref(),
            at,
        };
        runs.push(run);
    }
    let written = futures::future::join_all(
        runs.iter()
            .map(|r| st.record_run(r, config.history_ttl_days)),
    )
    .await;
    if let Some(e) = written.into_iter().find_map(Result::err) {
        tracing::warn!(incident_id = %report.id, error = %e, "track record not written");
        report
            .notes
            .push(format!("the track record was not written: {e}"));
    }
}

/// Whether a kind's playbook may change something the check after the fix
/// looks at, and after how many minutes that check comes.
fn check_after_fix(config: &Config, kind: crate::incident::IncidentKind) -> (bool, u32) {
    let playbook = config.playbooks.get(kind);
    let may_fix = playbook.is_some_and(|pb| {
        pb.stages
            .iter()
            .flatten()
            .any(|a| crate::verify::is_fix(*a))
    });
    (may_fix, playbook.map_or(0, |pb| pb.verify_after_minutes))
}

impl From<Unreachable> for NotBelieved {
    /// Refused there: nobody is paged; not reached: a transient error.
    fn from(e: Unreachable) -> Self {
        match e {
            Unreachable::Refused(w) => Self::Refused(w),
            Unreachable::Failed(e) => Self::Unreached(e),
        }
    }
}

/// The claim of a message, checked once and awaited wherever it matters.
type Claim<'a> =
    futures::future::Shared<futures::future::BoxFuture<'a, Result<Option<String>, NotBelieved>>>;

/// An incident in the place it acts, with its claim being checked.
struct Claimed<'a> {
    incident: &'a Incident,
    engine: &'a Engine,
    config: &'a Config,
    claim: Claim<'a>,
}

/// The check after the fix, sent before any change (beside the reads) so
/// that a crash after the fix cannot lose it: only for a claim that holds,
/// a firing alert and a playbook that may change something.
async fn schedule_check(
    c: &Claimed<'_>,
    may_fix: bool,
    verify_after: u32,
) -> Option<Result<String, String>> {
    let Claimed {
        incident,
        engine,
        config,
        ref claim,
    } = *c;
    if claim.clone().await.is_err() {
        return None;
    }
    match &config.verify_queue_url {
        Some(q) if may_fix && !config.dry_run && incident.transition == Transition::Firing => {
            let delay = std::time::Duration::from_secs(u64::from(verify_after) * 60);
            Some(crate::verify::run::schedule_verification(engine, q, &incident.id, delay).await)
        }
        _ => None,
    }
}

/// Not acting (`Mode::Plan`, or nothing to do): the fleet and the metric
/// read together, then planned (and in `Mode::Run` carried out).
/// Err: the claim did not hold (the report says so).
async fn read_then_plan<O>(
    c: &Claimed<'_>,
    (observe, metric): (O, LateMetric<'_>),
    mode: Mode,
    decide: impl FnOnce(Observed) -> (crate::plan::Plan, bool),
) -> Result<(crate::report::IncidentReport, bool), crate::report::IncidentReport>
where
    O: std::future::Future<Output = Observed>,
{
    let (mut o, m) = tokio::join!(observe, metric);
    if let Err(why) = c.claim.clone().await {
        return Err(not_believed(c.incident, c.config, &why));
    }
    o.metric = m;
    let (mut p, fixes) = decide(o);
    if let Ok(Some(note)) = c.claim.clone().await {
        p.note(note);
    }
    let r = match mode {
        Mode::Plan => p.to_report(),
        Mode::Run => c.engine.execute(&p, c.config).await,
    };
    Ok((r, fixes))
}

/// Acting: planned and started on the fleet's state alone (`reads`: the
/// fleet's, and the check after the fix being scheduled); the engine waits
/// for the metric only where it is used, and the lease is taken beside the
/// reads, only for a claim that holds. The metric keeps being read while
/// the engine works elsewhere; once the incident is done, it is let go.
async fn act<O, S, V>(
    c: &Claimed<'_>,
    reads: (O, S),
    metric: LateMetric<'_>,
    timing: crate::engine::Timing,
    decide: impl FnOnce(Observed) -> (crate::plan::Plan, bool),
) -> (crate::report::IncidentReport, bool, Option<V>)
where
    O: std::future::Future<Output = Observed>,
    S: std::future::Future<Output = Option<V>>,
{
    let Claimed {
        incident,
        engine,
        config,
        ref claim,
    } = *c;
    let (observe, schedule) = reads;
    let act = Box::pin(async {
        let now = crate::aws::unix_now();
        let begin = async {
            claim.clone().await.ok()?;
            Some(engine.begin(&incident.id, config, now).await)
        };
        let (o, s, v) = tokio::join!(observe, begin, schedule);
        // No lease: the claim did not hold.
        let Some(s) = s else {
            let why = claim
                .clone()
                .await
                .err()
                .unwrap_or_else(|| NotBelieved::Unread("the claim was not checked".into()));
            return (not_believed(incident, config, &why), false, None);
        };
        let (mut p, fixes) = decide(o);
        if let Ok(Some(note)) = claim.clone().await {
            p.note(note);
        }
        let r = engine
            .execute_started(&p, config, s, now, timing, Some(metric.clone()))
            .await;
        (r, fixes, v)
    });
    match select(act, metric.clone()).await {
        Either::Left((done, _)) => done,
        Either::Right((_, act)) => act.await,
    }
}

/// The plan for what was read (the kill switch and the event's text with
/// it), each decision logged; and whether it changes something the check
/// after the fix then looks at.
fn decide(
    incident: &Incident,
    mut observed: Observed,
    shared: &Shared<'_>,
    target: Option<&crate::target::Target>,
    config: &Config,
) -> (crate::plan::Plan, bool) {
    observed.kill_switch = shared.kill_switch.clone();
    observed.account = target.map(|t| t.account.as_str().to_owned());
    let mut p = plan(incident, &observed, config);
    p.event = shared.event.clone();
    p.set_target(target, config);
    for a in &p.actions {
        let decision = match &a.decision {
            Decision::Do(_) => "do",
            Decision::Hold(_) => "hold",
            Decision::Observe(_) => "observe",
            Decision::Skip(_) => "skip",
            Decision::Fail(_) => "fail",
        };
        info!(incident_id = %incident.id, action = a.name.as_str(), target = %a.target, decision, "decided");
    }
    let fixes = p.actions.iter().any(|a| {
        crate::verify::is_fix(a.name)
            && matches!(a.decision, Decision::Do(_) | Decision::Observe(_))
    });
    (p, fixes)
}

/// A resolution, recorded for the check after the fix (when checks are
/// scheduled at all): it tells an Alertmanager alert's recovery, and
/// whether a resolve notice already went out.
async fn record_resolution(
    incident: &Incident,
    engine: &Engine,
    config: &Config,
    mode: Mode,
    place: &str,
    report: &mut crate::report::IncidentReport,
) {
    if mode == Mode::Run
        && !config.dry_run
        && config.verify_queue_url.is_some()
        && incident.transition == Transition::Resolved
        && let (Some(st), Some(key)) = (&engine.state, incident.resolution_key(place))
    {
        let notified = report.actions.iter().any(|a| {
            a.action == crate::actions::ActionName::Notify
                && a.status == crate::report::Status::Done
        });
        if let Err(e) = st
            .record_resolution(&key, crate::aws::unix_now(), notified)
            .await
        {
            report.notes.push(format!(
                "the resolution was not recorded for the check after the fix: {e}"
            ));
            report.transient_error = report.transient_error.take().or(Some(e));
        }
    }
}

/// What the report says of the check after a fix.
fn verification_note(verify_after: u32, scheduled: Option<Result<String, String>>) -> String {
    match scheduled {
        Some(Ok(id)) => format!(
            "the fix is checked against the alarm in {verify_after} minutes (verification message {id})"
        ),
        Some(Err(e)) => format!("no verification is scheduled: {e}"),
        None => "no verification is scheduled (VERIFY_QUEUE_URL is not set)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A debug build polls these futures on a 2 MiB test thread, which two
    /// emulator tests overflowed once the engine's and the incident's steps
    /// became functions of their own: an incident's future was 60 KB with
    /// its acting path inline, 21 KB with it boxed (as now). The engine's
    /// (9 KB; its stages and conclusion boxed too) is held to the same bound.
    const MAX_INCIDENT_FUTURE: usize = 32 * 1024;

    #[test]
    fn an_incidents_future_stays_small_enough_for_a_debug_stack() {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        let engine = Engine::new(&sdk);
        let config = Config::default();
        let incident = crate::plan::tests::incident(crate::plan::tests::ALARM);
        let kill = Ok(false);
        let event = None;
        let shared = Shared {
            kill_switch: &kill,
            event: &event,
            arrived: Instant::now(),
            hard: None,
        };
        let f = respond_incident(&incident, &engine, &config, Mode::Run, &shared);
        let size = std::mem::size_of_val(&f);
        assert!(
            size <= MAX_INCIDENT_FUTURE,
            "respond_incident's future: {size} bytes"
        );
        let plan = crate::plan::plan(&incident, &crate::plan::tests::fleet(1, 3), &config);
        let f = engine.execute(&plan, &config);
        let size = std::mem::size_of_val(&f);
        assert!(
            size <= MAX_INCIDENT_FUTURE,
            "the engine's future: {size} bytes"
        );
    }
}
