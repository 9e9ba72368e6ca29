//! The delivery's lease and each action's claim in the state table: what
//! makes a redelivery repeat nothing.

use super::*;

impl Engine {
    /// Takes the occurrence's lease (see [`Started`]). Separate from
    /// [`Aws::execute_started`] so it can overlap the reads of `observe`.
    pub async fn begin(&self, incident_id: &str, config: &Config, now: i64) -> Started {
        let lease = config.actions_deadline + Duration::from_secs(60);
        if config.dry_run {
            return Started::Go("dry run");
        }
        let Some(st) = &self.state else {
            return Started::Go("untracked");
        };
        match st.begin_incident(incident_id, now, lease).await {
            Ok(Begin::Fresh) => Started::Go("first"),
            Ok(Begin::Resumed) => Started::Go("resumed"),
            Ok(Begin::Completed) => Started::Stop {
                delivery: "duplicate",
                why: "this occurrence was handled by an earlier delivery: nothing done again"
                    .into(),
                transient: None,
            },
            Ok(Begin::Busy { until }) => {
                let why = format!(
                    "another delivery holds this occurrence until {}",
                    rfc3339(until)
                );
                Started::Stop {
                    delivery: "busy",
                    transient: Some(format!("{why}; retry later")),
                    why,
                }
            }
            Err(e) => Started::Stop {
                delivery: "untracked",
                why: "the state table could not be read: nothing done".into(),
                transient: Some(e),
            },
        }
    }

    /// Claims an action for this delivery. Err holds the report (and any
    /// transient error) when it must not be done here.
    pub(crate) async fn claim(
        &self,
        a: &PlannedAction,
        incident: &str,
        now: i64,
        lease: Duration,
    ) -> Result<Option<String>, (ActionReport, Option<String>)> {
        let Some(st) = &self.state else {
            return Ok(None);
        };
        let intent = match &a.decision {
            Decision::Do(step) => step.intent(),
            _ => String::new(),
        };
        match st
            .claim_action(incident, &action_key(a), now, lease, &intent)
            .await
        {
            Ok(Claim::Mine) => Ok(None),
            Ok(Claim::Orphaned { intent }) => Ok(Some(intent)),
            Ok(Claim::Recorded(rec)) => {
                let mut r = ActionReport::new(a.name, &a.target, rec.status, &a.reason);
                let text = format!("in an earlier delivery: {}", rec.detail);
                if rec.status == Status::Done {
                    r.detail = Some(text)
                } else {
                    r.reason = text
                }
                r.ids = rec.ids;
                Err((r, None))
            }
            // Only a delivery that holds the incident gets here, so another
            // delivery is still inside its lease on this action: leave it.
            Ok(Claim::Busy) => Err((
                ActionReport::new(
                    a.name,
                    &a.target,
                    Status::Failed,
                    "another delivery is still carrying this out: not repeated; check it by hand",
                ),
                None,
            )),
            Err(e) => Err((
                ActionReport::new(
                    a.name,
                    &a.target,
                    Status::Failed,
                    format!("state table: {e}"),
                ),
                Some(e),
            )),
        }
    }

    /// Starts recording what came of an action at once, in the background
    /// (see [`Recording`]).
    pub(crate) fn record_soon(
        &self,
        a: &PlannedAction,
        incident: &str,
        o: &Outcome,
    ) -> Option<Recording> {
        let st = self.state.clone()?;
        let (incident, key) = (incident.to_owned(), action_key(a));
        let o = o.clone();
        let write = async move { record_with(&st, &incident, &key, &o).await };
        Some(tokio::spawn(write.in_current_span()))
    }
}

/// Whether [`Aws::begin`] let a delivery through.
#[derive(Clone, Debug, PartialEq)]
pub enum Started {
    /// first, resumed or untracked.
    Go(&'static str),
    /// duplicate, busy, or the table unreadable: nothing is done.
    Stop {
        delivery: &'static str,
        why: String,
        transient: Option<String>,
    },
}
