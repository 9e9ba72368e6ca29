//! A held action's approval in the state table: held once, decided once,
//! for the change it holds, expired when unanswered, and noted on the
//! incident.

use super::*;

impl StateStore {
    /// Keeps a held action for its approval: the event it came from (the
    /// approval plans again from it) and the change approved, `pending`
    /// until `decide_approval`. A redelivery writes it again while it is
    /// still pending; Ok(false) once it was decided.
    pub async fn hold_approval(
        &self,
        pk: &str,
        event: &str,
        change: &str,
        expires: i64,
    ) -> Result<bool, String> {
        let put = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk))
            .item("status", s("pending"))
            .item("event", s(event))
            .item("change", s(change))
            .item("link_expires", n(expires))
            .item("expires_at", n(expires + RECORD_TTL.as_secs() as i64))
            .condition_expression("attribute_not_exists(pk) OR #s = :pending")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":pending", s("pending"));
        Ok(self.put_or_read(pk, put).await?.is_ok())
    }

    /// Decides a held action once: a conditional write from `pending` to
    /// `verb`, with who sent it. The first caller gets the stored event.
    /// Decides a held action once, only for the change it holds (`change`,
    /// the link's words, must equal the stored ones).
    pub async fn decide_approval(
        &self,
        pk: &str,
        verb: &str,
        who: &str,
        now: i64,
        change: &str,
    ) -> Result<Approval, String> {
        let update = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .update_expression("SET #s = :v, decided_by = :w, decided_at = :t")
            .condition_expression("#s = :pending AND #c = :change")
            .expression_attribute_names("#s", "status")
            .expression_attribute_names("#c", "change")
            .expression_attribute_values(":change", s(change))
            .expression_attribute_values(":v", s(verb))
            .expression_attribute_values(":w", s(who))
            .expression_attribute_values(":t", n(now))
            .expression_attribute_values(":pending", s("pending"))
            .return_values(ReturnValue::AllNew);
        if let Some(item) = self.update_if(pk, update).await? {
            return Ok(Approval::Mine {
                event: get_s(&item, "event").unwrap_or_default().to_owned(),
            });
        }
        Ok(match self.get(pk).await? {
            Some(item) if get_s(&item, "status") == Some("pending") => Approval::OtherChange,
            Some(item) if item.contains_key("status") => Approval::Decided {
                status: get_s(&item, "status").unwrap_or_default().to_owned(),
                by: get_s(&item, "decided_by").unwrap_or_default().to_owned(),
                result: get_s(&item, "result").unwrap_or_default().to_owned(),
            },
            _ => Approval::Missing,
        })
    }

    /// Marks a held action's approval expired when it is still pending past
    /// its link's expiry. Its status and expiry afterwards (None: no record).
    pub async fn expire_approval(
        &self,
        pk: &str,
        now: i64,
    ) -> Result<Option<(String, i64)>, String> {
        let update = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .update_expression("SET #s = :expired")
            .condition_expression("#s = :pending AND link_expires <= :now")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":expired", s("expired"))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::AllNew);
        if let Some(item) = self.update_if(pk, update).await? {
            return Ok(Some((
                "expired".into(),
                get_n(&item, "link_expires").unwrap_or(now),
            )));
        }
        Ok(self.get(pk).await?.and_then(|item| {
            Some((
                get_s(&item, "status")?.to_owned(),
                get_n(&item, "link_expires").unwrap_or(0),
            ))
        }))
    }

    /// What came of a decided approval (`done`, `failed`, `refused`, ...).
    pub async fn finish_approval(
        &self,
        pk: &str,
        status: &str,
        result: &str,
    ) -> Result<(), String> {
        self.ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .update_expression("SET #s = :s, #r = :r")
            .expression_attribute_names("#s", "status")
            .expression_attribute_names("#r", "result")
            .expression_attribute_values(":s", s(status))
            .expression_attribute_values(":r", s(result))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("UpdateItem {pk}: {}", sdk_error(&e)))
    }

    /// Puts an approval's decision in the incident's record
    /// (`approval_<action>`), beside its report; nothing when there is no
    /// record (it would look like a delivery under way).
    pub async fn note_on_incident(&self, id: &str, action: &str, text: &str) -> Result<(), String> {
        let pk = format!("incident#{id}");
        let update = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .update_expression("SET #a = :t")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#a", format!("approval_{action}"))
            .expression_attribute_values(":t", s(text));
        self.update_if(&pk, update).await.map(|_| ())
    }
}
