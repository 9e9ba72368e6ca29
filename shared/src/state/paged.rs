//! Which incident an alert's pages opened: `paged#<resolution key>` holds
//! the firing incident's id (PagerDuty's dedup key, the chat thread), so
//! the alert's recovery, a new state change with an id of its own,
//! resolves the same PagerDuty incident and answers in the same thread.

use super::*;

impl StateStore {
    /// Records that `incident` opened a PagerDuty incident for the alert
    /// under `key` (`Incident::resolution_key`).
    pub async fn record_paged(&self, key: &str, incident: &str, now: i64) -> Result<(), String> {
        let pk = format!("paged#{key}");
        self.ddb
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&pk))
            .item("incident", s(incident))
            .item("at", n(now))
            .item("expires_at", n(now + RECORD_TTL.as_secs() as i64))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("PutItem {pk}: {}", sdk_error(&e)))
    }

    /// The dedup key of the PagerDuty incident the alert under `key`
    /// opened, if one is recorded.
    pub async fn paged(&self, key: &str) -> Result<Option<String>, String> {
        let pk = format!("paged#{key}");
        Ok(self
            .get(&pk)
            .await?
            .and_then(|item| item.get("incident")?.as_s().ok().cloned()))
    }
}
