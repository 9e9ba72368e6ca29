//! The state table: idempotency, cooldowns and the circuit breaker, each a
//! conditional write on one DynamoDB table (`STATE_TABLE`: partition key `pk`
//! of type string, TTL attribute `expires_at`). Every delivery of the same
//! occurrence meets the same records, so each action is done at most once.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use crate::aws::{Lazy, sdk_error};
use crate::report::Status;

/// The IAM actions the state table needs (on that table only).
pub const PERMISSIONS: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
];

/// Records outlive any redelivery (Lambda async keeps events 6 h, EventBridge
/// retries for 24 h, SNS for days).
pub const RECORD_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// An incident's record as the check after the fix reads it.
#[derive(Debug, Clone)]
pub struct IncidentRecord {
    /// `in_progress` or `completed`.
    pub status: String,
    /// The stored report (JSON).
    pub outcome: String,
    /// The checks recorded (their marks, `RequestBody::mark`: `verified`
    /// for the plan's, `verified_<action>` for an approved change's).
    pub marks: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct StateStore {
    ddb: Lazy<aws_sdk_dynamodb::Client>,
    table: String,
}

/// How a delivery finds its incident.
#[derive(Clone, Debug, PartialEq)]
pub enum Begin {
    /// First delivery: do the work.
    Fresh,
    /// An earlier delivery stopped half-way (its lease ran out): finish it,
    /// repeating nothing that was done.
    Resumed,
    /// Already completed: report, do nothing.
    Completed,
    /// Another delivery holds the lease right now.
    Busy { until: i64 },
}

/// What an earlier delivery recorded for an action.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    pub status: Status,
    pub detail: String,
    pub ids: Vec<String>,
}

/// What deciding a held action found.
#[derive(Clone, Debug, PartialEq)]
pub enum Approval {
    /// This request decided it; the event the action came from.
    Mine { event: String },
    /// Pending, but for another change than the link names: nothing done.
    OtherChange,
    /// Decided before (status, by whom, what came of it): nothing again.
    Decided {
        status: String,
        by: String,
        result: String,
    },
    /// No such held action (never written, or gone with its record).
    Missing,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Claim {
    /// This delivery does the action.
    Mine,
    /// Done (or decided) by an earlier delivery.
    Recorded(Recorded),
    /// Another delivery is doing it now.
    Busy,
    /// Claimed by a delivery that stopped before recording what came of it
    /// (its lease ran out); now this delivery's to settle. `intent` is what
    /// that delivery meant to do (e.g. `to=2`), for checking AWS.
    Orphaned { intent: String },
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s<'a>(item: &'a HashMap<String, AttributeValue>, k: &str) -> Option<&'a str> {
    item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn get_n(item: &HashMap<String, AttributeValue>, k: &str) -> Option<i64> {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn status_str(st: Status) -> &'static str {
    st.as_str()
}

fn status_of(v: &str) -> Option<Status> {
    match v {
        "done" => Some(Status::Done),
        "skipped" => Some(Status::Skipped),
        // Failed, but it may have acted: never claimed again.
        "failed" | "uncertain" => Some(Status::Failed),
        _ => None,
    }
}

mod approvals;
mod paged;
pub mod track;
mod windows;

impl StateStore {
    pub fn new(ddb: impl Into<Lazy<aws_sdk_dynamodb::Client>>, table: impl Into<String>) -> Self {
        Self {
            ddb: ddb.into(),
            table: table.into(),
        }
    }

    async fn get(&self, pk: &str) -> Result<Option<HashMap<String, AttributeValue>>, String> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| format!("GetItem {pk}: {}", sdk_error(&e)))?;
        Ok(out.item)
    }

    /// A conditional write: Ok(Ok(output)) when it went through, Ok(Err(item))
    /// with the record that stood in its way when its condition failed.
    async fn put_or_read(
        &self,
        pk: &str,
        put: PutItemFluentBuilder,
    ) -> Result<Result<PutItemOutput, HashMap<String, AttributeValue>>, String> {
        match put.send().await {
            Ok(out) => Ok(Ok(out)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(Err(self.get(pk).await?.unwrap_or_default()))
            }
            Err(e) => Err(format!("PutItem {pk}: {}", sdk_error(&e))),
        }
    }

    /// A conditional update: Ok(Some(the attributes it returned)) when it
    /// went through, Ok(None) when its condition failed.
    async fn update_if(
        &self,
        pk: &str,
        update: UpdateItemFluentBuilder,
    ) -> Result<Option<HashMap<String, AttributeValue>>, String> {
        match update.send().await {
            Ok(out) => Ok(Some(out.attributes.unwrap_or_default())),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(format!("UpdateItem {pk}: {}", sdk_error(&e))),
        }
    }

    /// Takes the incident's lease: a conditional put that succeeds for the
    /// first delivery, or when an earlier one's lease has run out.
    pub async fn begin_incident(
        &self,
        id: &str,
        now: i64,
        lease: Duration,
    ) -> Result<Begin, String> {
        let pk = format!("incident#{id}");
        let lease_until = now + i64::try_from(lease.as_secs()).unwrap_or(i64::MAX / 4);
        let put = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&pk))
            .item("status", s("in_progress"))
            .item("lease_until", n(lease_until))
            .item("started_at", n(now))
            .item("expires_at", n(now + RECORD_TTL.as_secs() as i64))
            .condition_expression(
                "attribute_not_exists(pk) OR (#st = :in_progress AND lease_until < :now)",
            )
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":in_progress", s("in_progress"))
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::AllOld);
        Ok(match self.put_or_read(&pk, put).await? {
            Ok(out) if out.attributes.as_ref().is_some_and(|a| !a.is_empty()) => Begin::Resumed,
            Ok(_) => Begin::Fresh,
            Err(item) => match get_s(&item, "status") {
                Some("completed") => {
                    // Alertmanager re-sends a firing alert with the same
                    // startsAt for as long as it fires: the record must
                    // outlive the alert, so each redelivery extends it. A
                    // failed extension is no reason to act again.
                    if let Err(e) = self.extend(&pk, now).await {
                        tracing::warn!(error = %e, "could not extend the occurrence's record");
                    }
                    Begin::Completed
                }
                _ => Begin::Busy {
                    until: get_n(&item, "lease_until").unwrap_or(now),
                },
            },
        })
    }

    /// Gives the lease back after a failure a retry can fix, so the retry
    /// resumes at once instead of waiting for the lease to run out.
    /// Keeps a record for [`RECORD_TTL`] from now.
    async fn extend(&self, pk: &str, now: i64) -> Result<(), String> {
        self.ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .update_expression("SET expires_at = :exp")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":exp", n(now + RECORD_TTL.as_secs() as i64))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("UpdateItem {pk}: {}", sdk_error(&e)))
    }

    pub async fn release_incident(&self, id: &str) -> Result<(), String> {
        let pk = format!("incident#{id}");
        self.ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .update_expression("SET lease_until = :zero")
            .condition_expression("#st = :in_progress")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":in_progress", s("in_progress"))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("UpdateItem {pk}: {}", sdk_error(&e)))
    }

    pub async fn complete_incident(&self, id: &str, outcome_json: &str) -> Result<(), String> {
        let pk = format!("incident#{id}");
        self.ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .update_expression("SET #st = :completed, outcome = :o")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":completed", s("completed"))
            .expression_attribute_values(":o", s(outcome_json))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("UpdateItem {pk}: {}", sdk_error(&e)))
    }

    /// The incident's record, None when there is none.
    pub async fn incident_record(&self, id: &str) -> Result<Option<IncidentRecord>, String> {
        let pk = format!("incident#{id}");
        Ok(self.get(&pk).await?.map(|item| IncidentRecord {
            status: get_s(&item, "status").unwrap_or_default().to_owned(),
            outcome: get_s(&item, "outcome").unwrap_or_default().to_owned(),
            marks: item
                .iter()
                .filter(|(k, v)| k.starts_with("verified") && v.is_s())
                .map(|(k, _)| k.clone())
                .collect(),
        }))
    }

    /// Records that an alert resolved (its resolved delivery, or the
    /// alarm's OK), under `key`: the firing incident's id for Alertmanager,
    /// `alarm:NAME` for a CloudWatch alarm. `notified`: a resolve notice
    /// went out, so the check after the fix need not send its own; once
    /// set, a later delivery does not unset it.
    pub async fn record_resolution(
        &self,
        key: &str,
        at: i64,
        notified: bool,
    ) -> Result<(), String> {
        let pk = format!("resolved#{key}");
        let mut update = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .expression_attribute_values(":t", n(at))
            .expression_attribute_values(":exp", n(at + RECORD_TTL.as_secs() as i64));
        update = match notified {
            true => update
                .update_expression("SET resolved_at = :t, expires_at = :exp, notified = :yes")
                .expression_attribute_values(":yes", AttributeValue::Bool(true)),
            false => update.update_expression("SET resolved_at = :t, expires_at = :exp"),
        };
        update
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("UpdateItem {pk}: {}", sdk_error(&e)))
    }

    /// The latest resolution under `key`: (when, whether a notice went out).
    pub async fn resolution(&self, key: &str) -> Result<Option<(i64, bool)>, String> {
        let pk = format!("resolved#{key}");
        Ok(self.get(&pk).await?.and_then(|item| {
            let at = get_n(&item, "resolved_at")?;
            let notified = item
                .get("notified")
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false);
            Some((at, notified))
        }))
    }

    /// Records a check's verdict once, under its mark: Ok(true) for the
    /// check that wrote it, Ok(false) when an earlier one had (it
    /// published already).
    pub async fn mark_verified(
        &self,
        id: &str,
        mark: &str,
        verdict: &str,
        summary: &str,
        now: i64,
    ) -> Result<bool, String> {
        let pk = format!("incident#{id}");
        let update = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .expression_attribute_names("#m", mark)
            .expression_attribute_values(":v", s(verdict));
        // The plan's check also keeps when and in a line; an approved
        // change's check, its verdict under its own mark.
        let update = if mark == "verified" {
            update
                .update_expression("SET #m = :v, verified_at = :t, verification = :s")
                .expression_attribute_values(":s", s(summary))
                .expression_attribute_values(":t", n(now))
        } else {
            update.update_expression("SET #m = :v")
        }
        .condition_expression("attribute_exists(pk) AND attribute_not_exists(#m)");
        Ok(self.update_if(&pk, update).await?.is_some())
    }

    /// Claims one action of one incident. A failed action may be claimed
    /// again by a later delivery (a retry is what it needs). A claim whose
    /// delivery died is taken over as [`Claim::Orphaned`], never as `Mine`:
    /// that delivery may have acted, so AWS must be asked first.
    pub async fn claim_action(
        &self,
        incident: &str,
        key: &str,
        now: i64,
        lease: Duration,
        intent: &str,
    ) -> Result<Claim, String> {
        let pk = format!("action#{incident}#{key}");
        let lease_until = now + i64::try_from(lease.as_secs()).unwrap_or(i64::MAX / 4);
        let put = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&pk))
            .item("status", s("in_progress"))
            .item("lease_until", n(lease_until))
            .item("intent", s(intent))
            .item("expires_at", n(now + RECORD_TTL.as_secs() as i64))
            .condition_expression("attribute_not_exists(pk) OR #st = :failed")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":failed", s("failed"));
        let Err(item) = self.put_or_read(&pk, put).await? else {
            return Ok(Claim::Mine);
        };
        let status = get_s(&item, "status");
        if status == Some("in_progress") {
            let old = get_n(&item, "lease_until").unwrap_or(i64::MAX);
            if old >= now {
                return Ok(Claim::Busy);
            }
            // Take it over, unless another delivery just did.
            let taken = self
                .ddb
                .update_item()
                .table_name(&self.table)
                .key("pk", s(&pk))
                .update_expression("SET lease_until = :new")
                .condition_expression("#st = :in_progress AND lease_until = :old")
                .expression_attribute_names("#st", "status")
                .expression_attribute_values(":in_progress", s("in_progress"))
                .expression_attribute_values(":old", n(old))
                .expression_attribute_values(":new", n(lease_until))
                .send()
                .await;
            return match taken {
                Ok(_) => Ok(Claim::Orphaned {
                    intent: get_s(&item, "intent").unwrap_or_default().to_owned(),
                }),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
                {
                    Ok(Claim::Busy)
                }
                Err(e) => Err(format!("UpdateItem {pk}: {}", sdk_error(&e))),
            };
        }
        Ok(match status.and_then(status_of) {
            Some(status) => Claim::Recorded(Recorded {
                status,
                detail: get_s(&item, "detail").unwrap_or_default().to_owned(),
                ids: item
                    .get("ids")
                    .and_then(|v| v.as_ss().ok())
                    .cloned()
                    .unwrap_or_default(),
            }),
            None => Claim::Busy,
        })
    }

    pub async fn finish_action(
        &self,
        incident: &str,
        key: &str,
        status: Status,
        uncertain: bool,
        detail: &str,
        ids: &[String],
    ) -> Result<(), String> {
        let pk = format!("action#{incident}#{key}");
        // A failure that may have acted is stored as `uncertain`: the claim's
        // condition re-takes only `failed`, so no later delivery repeats it.
        let stored = match (status, uncertain) {
            (Status::Failed, true) => "uncertain",
            (st, _) => status_str(st),
        };
        let mut update = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":st", s(stored))
            .expression_attribute_values(":d", s(detail));
        update = if ids.is_empty() {
            update.update_expression("SET #st = :st, detail = :d")
        } else {
            update
                .update_expression("SET #st = :st, detail = :d, ids = :ids")
                .expression_attribute_values(":ids", AttributeValue::Ss(ids.to_vec()))
        };
        update
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("UpdateItem {pk}: {}", sdk_error(&e)))
    }
}

pub use crate::window::sliding_count;

#[cfg(test)]
mod tests {
    use super::sliding_count;

    #[test]
    fn the_window_slides_across_the_bucket_boundary() {
        // 3 changes at the end of the last hour, 30 s into this one: a fourth
        // would make 3 × (1 - 30/3600) + 1 ≈ 3.98 in the last hour.
        assert!(sliding_count(3, 1, 30, 3600) > 3.0);
        // Half an hour on, half of them have left the window.
        assert!((sliding_count(3, 1, 1800, 3600) - 2.5).abs() < 1e-9);
        assert!(sliding_count(3, 1, 1800, 3600) <= 3.0);
        assert_eq!(sliding_count(0, 2, 10, 3600), 2.0);
    }
}
