//! One entry point for the functions and the CLI: event → incidents →
//! observe → plan → (execute) → report.

#[cfg(feature = "aws")]
use crate::engine::LateMetric;
#[cfg(feature = "aws")]
use futures::FutureExt;
#[cfg(feature = "aws")]
use futures::future::{Either, join_all, select};
use serde_json::Value;
#[cfg(feature = "aws")]
use tracing::{Instrument, info, info_span};

use crate::alert::{parse_each, parse_value};
#[cfg(feature = "aws")]
use crate::config::Config;
#[cfg(feature = "aws")]
use crate::engine::Engine;
#[cfg(feature = "aws")]
use crate::engine::members::Unreachable;
use crate::error::InputError;
#[cfg(feature = "aws")]
use crate::incident::Transition;
use crate::incident::{Incident, Routes};
#[cfg(feature = "aws")]
use crate::plan::{Decision, Observed, plan};
#[cfg(feature = "aws")]
use crate::report::Report;
use std::collections::HashSet;
#[cfg(feature = "aws")]
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Read AWS state and decide; change nothing, send nothing.
    Plan,
    /// Carry the plan out.
    Run,
}

/// The incidents of one event, and the alerts of it that were refused.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub incidents: Vec<Incident>,
    /// Alerts that repeated an occurrence already in the event.
    pub duplicates: usize,
    /// Alerts that could not be handled (parsing or routing), each naming
    /// the field; the others go ahead.
    pub rejected: Vec<InputError>,
}

/// Parses the event into incidents, one per occurrence: duplicates in one
/// payload (an Alertmanager group with the same fingerprint twice) become
/// one. Bad input stops here, before any AWS call. One bad alert of a batch
/// does not drop the good ones: Err only when no alert is usable (then the
/// first alert's error).
pub fn incidents_each(event: Value, routes: &Routes) -> Result<Batch, InputError> {
    let mut seen = HashSet::new();
    let mut batch = Batch {
        incidents: Vec::new(),
        duplicates: 0,
        rejected: Vec::new(),
    };
    for alert in parse_each(event)? {
        match alert.and_then(|a| Incident::routed(a, routes)) {
            Ok(incident) if seen.insert(incident.id.clone()) => batch.incidents.push(incident),
            Ok(_) => batch.duplicates += 1,
            Err(e) => batch.rejected.push(e),
        }
    }
    if batch.incidents.is_empty() && batch.duplicates == 0 {
        return Err(batch
            .rejected
            .into_iter()
            .next()
            .unwrap_or_else(|| InputError::Unsupported("no alerts".into())));
    }
    Ok(batch)
}

/// Strict: the first bad alert fails the whole event.
pub fn incidents(event: Value, routes: &Routes) -> Result<(Vec<Incident>, usize), InputError> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut duplicates = 0;
    for alert in parse_value(event)? {
        let incident = Incident::routed(alert, routes)?;
        if seen.insert(incident.id.clone()) {
            out.push(incident);
        } else {
            duplicates += 1;
        }
    }
    Ok((out, duplicates))
}

#[cfg(feature = "aws")]
pub async fn handle(
    event: Value,
    engine: &Engine,
    config: &Config,
    mode: Mode,
) -> Result<Report, InputError> {
    handle_until(event, engine, config, mode, None).await
}

/// [`handle`] within an invocation that ends at `until` (Lambda's
/// `context.deadline`): the reads and the actions stop
/// `NOTIFY_RESERVE_SECONDS` before it, so the notification always goes out.
#[cfg(feature = "aws")]
pub async fn handle_until(
    event: Value,
    engine: &Engine,
    config: &Config,
    mode: Mode,
    until: Option<Instant>,
) -> Result<Report, InputError> {
    // A held action's approval plans again from the event: its text is
    // kept only when links can be made and some playbook holds an action.
    let text = config
        .approvals_configured()
        .then(|| std::sync::Arc::<str>::from(event.to_string()));
    let mut batch = incidents_each(event, &config.routes)?;
    // The template's AlarmNamePrefix, for every source (EventBridge's rules
    // filter by it already; SNS, alarm actions and the webhook do not).
    if let Some(prefix) = &config.alarm_name_prefix {
        let (kept, outside): (Vec<Incident>, Vec<Incident>) = std::mem::take(&mut batch.incidents)
            .into_iter()
            .partition(|i| i.alert.alarm_name.starts_with(prefix.as_str()));
        batch.incidents = kept;
        batch.rejected.extend(outside.iter().map(|i| {
            InputError::field(
                "alarm name",
                format!(
                    "{} does not start with ALARM_NAME_PREFIX {}: not handled",
                    crate::text::quoted(&i.alert.alarm_name, 120),
                    crate::text::quoted(prefix, 120)
                ),
            )
        }));
    }
    for e in &batch.rejected {
        tracing::warn!(error = %e, "rejected one alert of the event; handling the others");
    }
    // On the heap: the whole response is one large future, and a debug
    // build's frames for it outgrow a thread's stack.
    let mut report = Box::pin(respond_event(
        &batch.incidents,
        batch.duplicates,
        engine,
        config,
        mode,
        until,
        text,
    ))
    .await;
    report.rejected = batch.rejected.iter().map(Into::into).collect();
    Ok(report)
}

/// Observe, plan and (in `Mode::Run`) execute already parsed incidents,
/// concurrently.
#[cfg(feature = "aws")]
pub async fn respond(
    incidents: &[Incident],
    duplicates: usize,
    engine: &Engine,
    config: &Config,
    mode: Mode,
) -> Report {
    respond_event(incidents, duplicates, engine, config, mode, None, None).await
}

/// Why a message's claim was not believed: refused for good (the alarm is
/// not there as it says), or not yet checked (the read failed: a retry may
/// do).
#[cfg(feature = "aws")]
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
#[cfg(feature = "aws")]
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
#[cfg(feature = "aws")]
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

/// [`respond`] within an invocation that ends at `until`, with the text of
/// the event the incidents came from (kept with a held action, for its
/// approval).
#[cfg(feature = "aws")]
pub async fn respond_event(
    incidents: &[Incident],
    duplicates: usize,
    engine: &Engine,
    config: &Config,
    mode: Mode,
    until: Option<Instant>,
    event: Option<std::sync::Arc<str>>,
) -> Report {
    let event = &event;
    let arrived = Instant::now();
    // Everything but the notification and the state writes ends here.
    // The reserve is at most half of what is left (a function configured
    // with a short timeout still gets time to act).
    let hard = until.map(|u| {
        let left = u.saturating_duration_since(Instant::now());
        u.checked_sub(config.notify_reserve.min(left / 2))
            .unwrap_or_else(Instant::now)
    });
    // A dry run leaves no trace in the state table: not the occurrence, not
    // a claim, cooldown or count. A later real delivery then acts in full.
    let untracked;
    let engine = if config.dry_run && engine.state.is_some() {
        untracked = engine.untracked();
        &untracked
    } else {
        engine
    };
    // Read once per event, before anything is decided; no event, no read.
    let kill_switch = match (&config.kill_switch_parameter, incidents.is_empty()) {
        (Some(name), false) => engine.aws.kill_switch(name).await,
        _ => Ok(false),
    };
    let shared = Shared {
        kill_switch: &kill_switch,
        event,
        arrived,
        hard,
    };
    let reports = join_all(incidents.iter().map(|incident| {
        let span =
            info_span!("incident", incident_id = %incident.id, kind = incident.kind.as_str());
        respond_incident(incident, engine, config, mode, &shared)
            .instrument(span)
            .boxed()
    }))
    .await;
    Report {
        incidents: reports,
        duplicates,
        rejected: Vec::new(),
    }
}

/// What every incident of one event shares: the kill switch as read once,
/// the event's text, when it arrived and when the actions must end.
#[cfg(feature = "aws")]
struct Shared<'a> {
    kill_switch: &'a Result<bool, String>,
    event: &'a Option<std::sync::Arc<str>>,
    arrived: Instant,
    hard: Option<Instant>,
}

/// One incident of an event: where it acts, its claim checked, read, planned
/// and (in `Mode::Run`) carried out; then what the check after the fix
/// needs recorded.
#[cfg(feature = "aws")]
async fn respond_incident(
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
        match hard {
            Some(h) => tokio::time::timeout_at(
                h.into(),
                crate::observe::observe_fleet(&engine.aws, incident, config, lookup.as_ref()),
            )
            .await
            .unwrap_or_else(|_| {
                Observed::failed("the reads did not finish before the invocation's deadline")
            }),
            None => {
                crate::observe::observe_fleet(&engine.aws, incident, config, lookup.as_ref()).await
            }
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
    if fixes && mode == Mode::Run && !config.dry_run {
        report
            .notes
            .push(verification_note(verify_after, scheduled));
    }
    report
}

/// Whether a kind's playbook may change something the check after the fix
/// looks at, and after how many minutes that check comes.
#[cfg(feature = "aws")]
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

#[cfg(feature = "aws")]
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
#[cfg(feature = "aws")]
type Claim<'a> =
    futures::future::Shared<futures::future::BoxFuture<'a, Result<Option<String>, NotBelieved>>>;

/// An incident in the place it acts, with its claim being checked.
#[cfg(feature = "aws")]
struct Claimed<'a> {
    incident: &'a Incident,
    engine: &'a Engine,
    config: &'a Config,
    claim: Claim<'a>,
}

/// The check after the fix, sent before any change (beside the reads) so
/// that a crash after the fix cannot lose it: only for a claim that holds,
/// a firing alert and a playbook that may change something.
#[cfg(feature = "aws")]
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
#[cfg(feature = "aws")]
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
#[cfg(feature = "aws")]
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
#[cfg(feature = "aws")]
fn decide(
    incident: &Incident,
    mut observed: Observed,
    shared: &Shared<'_>,
    target: Option<&crate::target::Target>,
    config: &Config,
) -> (crate::plan::Plan, bool) {
    observed.kill_switch = shared.kill_switch.clone();
    let mut p = plan(incident, &observed, config);
    p.event = shared.event.clone();
    p.set_target(target, config);
    for a in &p.actions {
        let decision = match &a.decision {
            Decision::Do(_) => "do",
            Decision::Hold(_) => "hold",
            Decision::Skip(_) => "skip",
            Decision::Fail(_) => "fail",
        };
        info!(incident_id = %incident.id, action = a.name.as_str(), target = %a.target, decision, "decided");
    }
    let fixes = p
        .actions
        .iter()
        .any(|a| crate::verify::is_fix(a.name) && matches!(a.decision, Decision::Do(_)));
    (p, fixes)
}

/// A resolution, recorded for the check after the fix (when checks are
/// scheduled at all): it tells an Alertmanager alert's recovery, and
/// whether a resolve notice already went out.
#[cfg(feature = "aws")]
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
#[cfg(feature = "aws")]
fn verification_note(verify_after: u32, scheduled: Option<Result<String, String>>) -> String {
    match scheduled {
        Some(Ok(id)) => format!(
            "the fix is checked against the alarm in {verify_after} minutes (verification message {id})"
        ),
        Some(Err(e)) => format!("no verification is scheduled: {e}"),
        None => "no verification is scheduled (VERIFY_QUEUE_URL is not set)".into(),
    }
}
