//! The first page: a short message a person reads while the work goes on.
//! A person paged at 2 a.m. should not wait for a cleanup that takes
//! minutes to learn that something fired and that first-responder is on it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::time::Instant;
use tracing::{Instrument, info_span};

use super::Engine;
use super::LateMetric;
use crate::actions::notify;
use crate::config::Config;
use crate::notify::compose_first;
use crate::plan::{Decision, Plan, Step};
use crate::report::Status;

/// How long a first page sent at once waits for the alert's metric, which
/// is read beside the fleet and is usually in by the time the plan is.
const METRIC_WAIT: Duration = Duration::from_secs(2);

/// When the first page goes out, if at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// The plan's work typically outlasts the budget: as soon as it is made.
    AtOnce,
    /// Only if the work is still going when the budget, counted from the
    /// alert's arrival, is spent (it was slower than planned).
    IfStillRunning,
}

/// Pure: whether a plan gets a first page, and when. None: one message only
/// (turned off, a dry run, a redelivery, which the first delivery paged
/// for, or nothing to do but notify).
pub fn due(plan: &Plan, budget: Option<Duration>, first_delivery: bool) -> Option<Due> {
    let budget = budget?;
    if plan.dry_run || !first_delivery {
        return None;
    }
    let typical = plan.typical_duration();
    if typical.is_zero() {
        return None;
    }
    Some(if typical > budget {
        Due::AtOnce
    } else {
        Due::IfStillRunning
    })
}

impl Engine {
    /// The first page, when one is due (see [`due`]): resolves to the note
    /// the full report carries about it. `sending` is set once its time has
    /// come, so that the caller, done with the work, still lets a page that
    /// is on its way finish instead of cutting it off.
    pub(crate) fn first_page<'f, 'm: 'f>(
        &'f self,
        plan: &Plan,
        config: &'f Config,
        first_delivery: bool,
        arrived: std::time::Instant,
        metric: Option<LateMetric<'m>>,
        sending: &'f AtomicBool,
    ) -> Option<BoxFuture<'f, String>> {
        let budget = config.first_page_budget?;
        let when = due(plan, Some(budget), first_delivery)?;
        let topic = plan.actions.iter().find_map(|a| match &a.decision {
            Decision::Do(Step::Notify(notify::Step { topic_arn })) => Some(topic_arn.clone()),
            _ => None,
        })?;
        let typical = plan.typical_duration();
        let mut plan = plan.clone();
        let arrived = Instant::from_std(arrived);
        let at = match when {
            Due::AtOnce => Instant::now(),
            Due::IfStillRunning => arrived + budget,
        };
        Some(
            async move {
                tokio::time::sleep_until(at).await;
                sending.store(true, Ordering::SeqCst);
                if let Some(m) = metric {
                    match tokio::time::timeout(METRIC_WAIT, m).await {
                        Ok(m) => plan.with_metric(m),
                        Err(_) => plan.note("the metric was still being read".into()),
                    }
                }
                let n = compose_first(&plan, typical);
                let sent = self
                    .deliver(config, &topic, plan.incident.kind.as_str(), &plan.incident.id, &n)
                    .instrument(info_span!("action", action = "first_page"))
                    .await;
                if sent.opened {
                    self.record_paged(&plan, config).await;
                }
                let outcome = sent.outcome;
                let after = arrived.elapsed().as_secs_f64();
                let why = match when {
                    Due::AtOnce => format!(
                        "the work typically takes about {} s, over the {} s budget",
                        typical.as_secs(),
                        budget.as_secs()
                    ),
                    Due::IfStillRunning => format!(
                        "the work was still going after the {} s budget",
                        budget.as_secs()
                    ),
                };
                let note = if outcome.status == Status::Done {
                    let oncall = if sent.oncall.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", sent.oncall.join("; "))
                    };
                    format!("a short first page went out {after:.1} s after the alert arrived: {why}{oncall}")
                } else {
                    format!("the short first page could not be sent ({why}): {}", outcome.detail)
                };
                tracing::info!(incident_id = %plan.incident.id, after_s = after, sent = outcome.status == Status::Done, "first page");
                note
            }
            .boxed(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::{ALARM, config, disk_fleet, fleet, incident, plan};

    const DISK: &str = include_str!("../../../events/disk-full-alarm.json");
    const ROOT_DISK: &str = include_str!("../../../events/disk-full-nvme-alarm.json");
    const OK: &str = include_str!("../../../events/high-cpu-ok.json");
    const TEN: Option<Duration> = Some(Duration::from_secs(10));

    #[test]
    fn long_work_pages_at_once_short_work_only_if_it_runs_late() {
        // The root filesystem: its cleanup and archive (20 s, side by
        // side; without the instance's block devices read, the NVMe root's
        // volume is unknown and the expansion is left to a person): over the
        // budget.
        let unread = crate::observed::Observed {
            layout: None,
            ..disk_fleet()
        };
        let root = plan(&incident(ROOT_DISK), &unread, &config());
        assert_eq!(root.typical_duration(), Duration::from_secs(20));
        assert_eq!(due(&root, TEN, true), Some(Due::AtOnce));
        // A data volume: no /tmp or /var/log on it, so the expansion alone.
        let disk = plan(&incident(DISK), &disk_fleet(), &config());
        assert_eq!(disk.typical_duration(), Duration::from_secs(60));
        assert_eq!(due(&disk, TEN, true), Some(Due::AtOnce));
        // High CPU: a snapshot, the diagnostics (2 s) and the scale-out,
        // side by side: within the budget.
        let cpu = plan(&incident(ALARM), &fleet(1, 3), &config());
        assert_eq!(cpu.typical_duration(), Duration::from_secs(2));
        assert_eq!(due(&cpu, TEN, true), Some(Due::IfStillRunning));
        // With a budget longer than the work, only a late finish pages first.
        assert_eq!(
            due(&disk, Some(Duration::from_secs(900)), true),
            Some(Due::IfStillRunning)
        );
    }

    #[test]
    fn one_message_when_turned_off_dry_run_redelivered_or_nothing_to_do() {
        let disk = plan(&incident(DISK), &disk_fleet(), &config());
        assert_eq!(due(&disk, None, true), None);
        assert_eq!(due(&disk, TEN, false), None);
        let dry = Config {
            dry_run: true,
            ..config()
        };
        assert_eq!(
            due(&plan(&incident(DISK), &disk_fleet(), &dry), TEN, true),
            None
        );
        let ok = plan(&incident(OK), &fleet(1, 3), &config());
        assert_eq!(ok.typical_duration(), Duration::ZERO);
        assert_eq!(due(&ok, Some(Duration::from_secs(1)), true), None);
    }

    #[test]
    fn held_and_skipped_steps_take_no_time() {
        // At MaxSize the scale-out is skipped; the diagnostics still run.
        let cpu = plan(&incident(ALARM), &fleet(3, 3), &config());
        assert_eq!(cpu.typical_duration(), Duration::from_secs(2));
    }
}
