//! Where an incident acts (pure): the account and region its alert came
//! from (the alarm's ARN, EventBridge's `account`/`region`, the SNS topic's
//! ARN, Alertmanager's `account_id`/`region` labels), else the deployment's
//! own. Nothing else of the event chooses an account, and an account outside
//! the allow-list is refused before any call is made to it.

use crate::alert::Alert;
use crate::config::Config;
use crate::ids::{AccountId, RegionName};

/// An account and a region.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    pub account: AccountId,
    pub region: RegionName,
}

impl Target {
    /// `arn:PARTITION:iam::ACCOUNT:role/NAME` for the member role.
    pub fn role_arn(&self, role_name: &str) -> String {
        let partition = match self.region.as_str() {
            r if r.starts_with("cn-") => "aws-cn",
            r if r.starts_with("us-gov-") => "aws-us-gov",
            _ => "aws",
        };
        format!("arn:{partition}:iam::{}:role/{role_name}", self.account)
    }
}

/// The target of an alert, checked against the allow-list. `home` is the
/// deployment's own account and region.
pub fn target_of(alert: &Alert, home: &Target, config: &Config) -> Result<Target, String> {
    target_from(
        alert.account.as_deref(),
        alert.region.as_deref(),
        home,
        config,
    )
}

/// The same from an account and a region as text (an alert's, or an
/// incident record's), each else the deployment's own.
pub fn target_from(
    account: Option<&str>,
    region: Option<&str>,
    home: &Target,
    config: &Config,
) -> Result<Target, String> {
    let account = match account {
        Some(a) => AccountId::parse("account", a).map_err(|e| e.to_string())?,
        None => home.account.clone(),
    };
    let region = match region {
        Some(r) => RegionName::parse("region", r).map_err(|e| e.to_string())?,
        None => home.region.clone(),
    };
    let allowed = account == home.account
        || config.allowed_accounts.contains(&account)
        || config.allowed_org_id.is_some();
    if !allowed {
        return Err(format!(
            "account {account} is not this deployment's ({}) nor in ALLOWED_ACCOUNTS: refused, no call was made to it",
            home.account
        ));
    }
    Ok(Target { account, region })
}

/// An account as people know it: `222222222222 (prod)` with an alias.
pub fn named(account: &str, config: &Config) -> String {
    match config.account_aliases.get(account) {
        Some(alias) => format!("{account} ({alias})"),
        None => account.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home() -> Target {
        Target {
            account: AccountId::parse("a", "111111111111").unwrap(),
            region: RegionName::parse("r", "us-east-1").unwrap(),
        }
    }

    fn alert(account: Option<&str>, region: Option<&str>) -> Alert {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../events/high-cpu-alarm.json"
        ))
        .unwrap();
        let mut a = crate::alert::parse_event(text.as_bytes())
            .unwrap()
            .remove(0);
        a.account = account.map(str::to_owned);
        a.region = region.map(str::to_owned);
        a
    }

    #[test]
    fn the_alert_names_the_account_and_region_else_home() {
        let c = Config {
            allowed_accounts: vec![AccountId::parse("a", "222222222222").unwrap()],
            ..Config::default()
        };
        let t = target_of(&alert(Some("222222222222"), Some("us-west-2")), &home(), &c).unwrap();
        assert_eq!(
            (t.account.as_str(), t.region.as_str()),
            ("222222222222", "us-west-2")
        );
        assert_eq!(t.role_arn("fr"), "arn:aws:iam::222222222222:role/fr");
        assert_eq!(target_of(&alert(None, None), &home(), &c).unwrap(), home());
        let e = target_of(&alert(Some("333333333333"), None), &home(), &c).unwrap_err();
        assert!(e.contains("account 333333333333 is not this deployment's (111111111111) nor in ALLOWED_ACCOUNTS"), "{e}");
        // An organization: IAM decides which accounts are in it.
        let org = Config {
            allowed_org_id: Some("o-abcdefghij".into()),
            ..Config::default()
        };
        assert!(target_of(&alert(Some("333333333333"), None), &home(), &org).is_ok());
        // Text that is not an account or a region is refused, not used.
        let e = target_of(&alert(Some("2222; x"), None), &home(), &org).unwrap_err();
        assert!(e.contains("not an AWS account id"), "{e}");
        let e = target_of(&alert(None, Some("US East (N. Virginia)")), &home(), &org).unwrap_err();
        assert!(e.contains("not an AWS region code"), "{e}");
    }

    #[test]
    fn accounts_are_named_with_their_alias() {
        let mut c = Config::default();
        c.account_aliases
            .insert("222222222222".into(), "prod".into());
        assert_eq!(named("222222222222", &c), "222222222222 (prod)");
        assert_eq!(named("111111111111", &c), "111111111111");
    }
}
