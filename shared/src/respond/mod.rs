//! One entry point for the functions and the CLI: event → incidents →
//! observe → plan → (execute) → report.

#[cfg(feature = "aws")]
use futures::FutureExt;
#[cfg(feature = "aws")]
use futures::future::join_all;
use serde_json::Value;
#[cfg(feature = "aws")]
use tracing::{Instrument, info_span};

use crate::alert::{parse_each, parse_value};
#[cfg(feature = "aws")]
use crate::config::Config;
#[cfg(feature = "aws")]
use crate::engine::Engine;
use crate::error::InputError;
use crate::incident::{Incident, Routes};
#[cfg(feature = "aws")]
use crate::report::Report;
use std::collections::HashSet;

#[cfg(feature = "aws")]
mod incident;
#[cfg(feature = "aws")]
use incident::{Shared, respond_incident};
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
