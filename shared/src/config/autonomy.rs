//! The settings of earned autonomy and maintenance: `CHANGE_CALENDARS`
//! and `HISTORY_TTL_DAYS`.

use super::{Config, err};
use crate::error::ConfigError;

impl Config {
    pub(super) fn read_autonomy(
        &mut self,
        get: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let c = self;
        if let Some(v) = get("CHANGE_CALENDARS").filter(|v| !v.is_empty()) {
            c.change_calendars = v
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect();
            if let Some(bad) = c
                .change_calendars
                .iter()
                .find(|n| n.len() > 2048 || n.contains(char::is_whitespace))
            {
                return Err(err(
                    "CHANGE_CALENDARS",
                    bad,
                    "expected calendar names or ARNs, comma-separated",
                ));
            }
        }
        if let Some(v) = get("HISTORY_TTL_DAYS").filter(|v| !v.is_empty()) {
            c.history_ttl_days = match v.trim().parse::<u32>() {
                Ok(d) if (1..=3650).contains(&d) => d,
                _ => return Err(err("HISTORY_TTL_DAYS", &v, "expected 1 to 3650 days")),
            };
        }
        Ok(())
    }
}
