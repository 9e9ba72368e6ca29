//! The track record's command-line side: `first-responder trust` (a scan of
//! the recorded runs, counted by `trust::report`) and `trust --restore`
//! (who restored it, from STS).

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;

use super::trust::{RunRecord, TrustReport, report};
use super::{ActionMode, demoted};
use crate::config::Config;
use crate::incident::IncidentKind;
use crate::names::ActionName;
use crate::state::StateStore;

/// A scanned `run#` item as a record; None for one that is not whole.
pub fn record_of(item: &HashMap<String, AttributeValue>) -> Option<RunRecord> {
    let s = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let n = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
    };
    let action = s("action")?;
    Some(RunRecord {
        incident: s("incident")?,
        at: n("at")?,
        scope: s("scope")?,
        action: *ActionName::ALL.iter().find(|a| a.as_str() == action)?,
        mode: ActionMode::parse(&s("mode")?)?,
        status: s("status")?,
        verdict: s("verdict"),
        decision: s("decision"),
        decided_after: n("decided_after"),
    })
}

/// The trust report over the last `since` seconds: each scope's and
/// action's mode now is the playbooks' (for the kind it last ran in),
/// `approve` while demoted.
pub async fn trust(
    st: &StateStore,
    config: &Config,
    since: i64,
    now: i64,
) -> Result<TrustReport, String> {
    let (items, history) = tokio::join!(st.scan_runs(), st.history(None));
    let (items, history) = (items?, history?);
    let mut kinds: BTreeMap<(String, ActionName), (i64, Option<IncidentKind>)> = BTreeMap::new();
    let records: Vec<RunRecord> = items
        .iter()
        .filter_map(|item| {
            let r = record_of(item)?;
            let kind = item
                .get("kind")
                .and_then(|v| v.as_s().ok())
                .and_then(|k| IncidentKind::parse(k));
            let e = kinds
                .entry((r.scope.clone(), r.action))
                .or_insert((r.at, kind));
            if r.at >= e.0 {
                *e = (r.at, kind);
            }
            Some(r)
        })
        .collect();
    let books = &config.playbooks;
    let mode = |scope: &str, action: ActionName| {
        let kind = kinds.get(&(scope.to_owned(), action)).and_then(|(_, k)| *k);
        let m = books.mode_in_scope(scope, kind, action);
        let key = (scope.to_owned(), action);
        let misses = history.misses.get(&key).map_or(&[][..], |m| m.as_slice());
        let restored = history.restored.get(&key).map(|(at, _)| *at);
        let demoted =
            m == ActionMode::Auto && demoted(misses, restored, books.demote_after, now).is_some();
        Some((m, if demoted { ActionMode::Approve } else { m }))
    };
    Ok(report(&records, now - since, now, mode))
}

/// Who is asking, as STS says (the ARN), for the restore's record.
pub async fn caller(sdk: &aws_config::SdkConfig) -> Result<String, String> {
    let sts = aws_sdk_sts::Client::new(sdk);
    let me = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| format!("GetCallerIdentity: {}", crate::aws::sdk_error(&e)))?;
    me.arn()
        .map(str::to_owned)
        .ok_or_else(|| "GetCallerIdentity returned no ARN".to_owned())
}
