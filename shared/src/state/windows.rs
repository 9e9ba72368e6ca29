//! Records that hold for a time or count within one: cooldowns, holds, and
//! the sliding windows of the flap guard, the budgets and the breaker.

use super::*;

impl StateStore {
    /// Takes a cooldown on (action, resource) for `period`; Err(until) while
    /// an earlier one holds. Survives restarts: it lives in the table.
    /// `resource` is keyed by where it is (`budget::Scope::key_of`); for one
    /// release the key of the release before, the resource's bare `name`,
    /// is read too, so a cooldown taken before an upgrade still holds.
    pub async fn take_cooldown(
        &self,
        action: &str,
        resource: &str,
        name: &str,
        now: i64,
        period: Duration,
        owner: &str,
    ) -> Result<Result<(), i64>, String> {
        let pk = format!("cooldown#{action}#{resource}");
        // The incident that holds a cooldown may take it again: a delivery
        // resuming after a crash is finishing the same change, not a second one.
        let (put, until) = self.window(&pk, now, period, owner, true);
        let legacy = format!("cooldown#{action}#{name}");
        let (taken, old) = tokio::join!(self.put_or_read(&pk, put), self.get(&legacy));
        let held_before = old?.and_then(|item| {
            let until = get_n(&item, "until")?;
            (until >= now && get_s(&item, "owner") != Some(owner)).then_some(until)
        });
        Ok(match (taken?, held_before) {
            (Ok(_), Some(until)) => {
                self.release_cooldown(action, resource, owner).await?;
                Err(until)
            }
            (Ok(_), None) => Ok(()),
            (Err(item), _) => Err(get_n(&item, "until").unwrap_or(until)),
        })
    }

    /// A record that `owner` holds `pk` for `period` from `now`, written
    /// unless an unexpired one stands (or, with `owner_may_renew`, stands
    /// in `owner`'s own name); and when it runs out.
    fn window(
        &self,
        pk: &str,
        now: i64,
        period: Duration,
        owner: &str,
        owner_may_renew: bool,
    ) -> (PutItemFluentBuilder, i64) {
        let until = now + i64::try_from(period.as_secs()).unwrap_or(i64::MAX / 4);
        let put = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk))
            .item("until", n(until))
            .item("owner", s(owner))
            .item("expires_at", n(until + 3600))
            .expression_attribute_names("#u", "until")
            .expression_attribute_values(":now", n(now));
        let put = if owner_may_renew {
            put.condition_expression("attribute_not_exists(pk) OR #u < :now OR #o = :owner")
                .expression_attribute_names("#o", "owner")
                .expression_attribute_values(":owner", s(owner))
        } else {
            put.condition_expression("attribute_not_exists(pk) OR #u < :now")
        };
        (put, until)
    }

    /// Holds `key` for `period` in the name of `owner`, or finds who holds
    /// it: Ok(the holder), `owner` when this call took it. The predictive
    /// check names its incident so: every run within one horizon (and a
    /// redelivery after a crash) raises the same incident.
    pub async fn hold(
        &self,
        key: &str,
        now: i64,
        period: Duration,
        owner: &str,
    ) -> Result<String, String> {
        let pk = format!("hold#{key}");
        let (put, _) = self.window(&pk, now, period, owner, false);
        Ok(match self.put_or_read(&pk, put).await? {
            Ok(_) => owner.to_owned(),
            Err(item) => get_s(&item, "owner").unwrap_or(owner).to_owned(),
        })
    }

    /// Gives a cooldown back after the action failed, so a retry may act;
    /// only `owner`'s own (another incident's cooldown is not ours to end).
    pub async fn release_cooldown(
        &self,
        action: &str,
        resource: &str,
        owner: &str,
    ) -> Result<(), String> {
        let pk = format!("cooldown#{action}#{resource}");
        self.ddb
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .condition_expression("#o = :owner")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await
            .map(|_| ())
            .or_else(|e| match e.as_service_error() {
                Some(x) if x.is_conditional_check_failed_exception() => Ok(()),
                _ => Err(format!("DeleteItem {pk}: {}", sdk_error(&e))),
            })
    }

    /// Counts one event against `max` per sliding `window` (the circuit
    /// breaker, the flap guard). Ok(Ok(n)): counted; Ok(Err(max)): full.
    ///
    /// A sliding window from two fixed buckets, the previous one weighted
    /// by how much of it still lies inside the window: clock-hour buckets
    /// alone let up to twice the limit through across an hour boundary.
    /// The current bucket is incremented conditionally (never past `max`)
    /// while the previous one is read, in the same round trip; if the two
    /// together are over the limit, the increment is taken back.
    /// Gives back one event counted by [`StateStore::count_in_window`] at
    /// `now` (an attempt a later limit refused uses none).
    pub async fn uncount(&self, key: &str, now: i64, window: Duration) -> Result<(), String> {
        let w = i64::try_from(window.as_secs().max(1)).unwrap_or(3600);
        let start = now - now.rem_euclid(w);
        let pk = format!("{key}#{start}");
        self.ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .update_expression("ADD events :minus")
            .condition_expression("events > :zero")
            .expression_attribute_values(":minus", n(-1))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await
            .map(|_| ())
            .or_else(|e| match e.as_service_error() {
                Some(s) if s.is_conditional_check_failed_exception() => Ok(()),
                _ => Err(format!("UpdateItem {pk}: {}", sdk_error(&e))),
            })
    }

    pub async fn count_in_window(
        &self,
        key: &str,
        now: i64,
        window: Duration,
        max: u32,
    ) -> Result<Result<u32, u32>, String> {
        let w = i64::try_from(window.as_secs().max(1)).unwrap_or(3600);
        let start = now - now.rem_euclid(w);
        let pk = format!("{key}#{start}");
        let up = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .update_expression("ADD events :one SET expires_at = :exp")
            .condition_expression("attribute_not_exists(events) OR events < :max")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(i64::from(max)))
            // Kept while it is the previous bucket of the next window.
            .expression_attribute_values(":exp", n(start + 2 * w))
            .return_values(ReturnValue::UpdatedNew)
            .send();
        let previous_pk = format!("{key}#{}", start - w);
        let previous = self.get(&previous_pk);
        let (up, previous) = tokio::join!(up, previous);
        let current = match up {
            Ok(out) => out
                .attributes
                .as_ref()
                .and_then(|a| get_n(a, "events"))
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(1),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                return Ok(Err(max));
            }
            Err(e) => return Err(format!("UpdateItem {pk}: {}", sdk_error(&e))),
        };
        let earlier = previous?
            .as_ref()
            .and_then(|item| get_n(item, "events"))
            .unwrap_or(0);
        if sliding_count(earlier, current, now - start, w) > f64::from(max) {
            // Over the limit with the previous bucket's share: not counted.
            self.ddb
                .update_item()
                .table_name(&self.table)
                .key("pk", s(&pk))
                .update_expression("ADD events :minus")
                .expression_attribute_values(":minus", n(-1))
                .send()
                .await
                .map_err(|e| format!("UpdateItem {pk}: {}", sdk_error(&e)))?;
            return Ok(Err(max));
        }
        Ok(Ok(current))
    }
}
