//! Where an incident acts (pure), and only where an authenticated source
//! says. AWS sets EventBridge's `account`/`region` and an alarm action's
//! ARN: believed. An SNS message's body (`AWSAccountId`, `AlarmArn`) is
//! written by whoever may publish to the topic: believed only once the alarm
//! has been read there ([`judge`]). Amazon Managed Prometheus through SNS
//! acts in the topic's account and region (the record's `TopicArn`, set by
//! SNS) unless the topic forwards for others (`FORWARDING_TOPIC_ARNS`).
//! Alertmanager's `account_id`/`region` labels reach the responder only
//! through the webhook, which checks them against the token's accounts.
//! An account outside the allow-list is refused before any call is made
//! to it. With `ALLOWED_ORG_ID`, membership of the organization is decided
//! by IAM (the central role's `sts:AssumeRole` carries `aws:ResourceOrgID`),
//! which this code cannot list: `aws::members` assumes the role before any
//! other call and turns IAM's refusal into the incident's.

use std::collections::BTreeMap;

use crate::alert::{AlarmState, Alert, Origin};
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
        format!(
            "arn:{}:iam::{}:role/{role_name}",
            partition(self.region.as_str()),
            self.account
        )
    }

    /// `account ACCOUNT in REGION`, as refusals name it.
    pub fn describe(&self) -> String {
        format!("account {} in {}", self.account, self.region)
    }

    /// How the state table tells resources of the same name apart in
    /// different accounts and regions (`ACCOUNT/REGION`).
    pub fn place(&self) -> String {
        format!("{}/{}", self.account, self.region)
    }
}

fn partition(region: &str) -> &'static str {
    match region {
        r if r.starts_with("cn-") => "aws-cn",
        r if r.starts_with("us-gov-") => "aws-us-gov",
        _ => "aws",
    }
}

/// Where an incident acts, as state keys name it: `ACCOUNT/REGION`, or
/// `home` when the deployment acts in one account.
pub fn place_of(t: Option<&Target>) -> String {
    t.map_or_else(|| "home".to_owned(), Target::place)
}

/// The same as refusals name it: `account ACCOUNT in REGION`, or `this account`.
pub fn described(t: Option<&Target>) -> String {
    t.map_or_else(|| "this account".to_owned(), Target::describe)
}

/// Where an alert acts, and whether its claim must first be checked there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub target: Target,
    /// The account and region came from an SNS message's body: nothing may
    /// act until the alarm has been read there and [`judge`] believes it.
    pub read_alarm: bool,
}

/// The target of an alert, from what authenticated it, checked against the
/// allow-list. `home` is the deployment's own account and region.
pub fn target_of(alert: &Alert, home: &Target, config: &Config) -> Result<Resolved, String> {
    let (account, region, read_alarm) = match &alert.origin {
        Origin::Aws | Origin::Labels => (alert.account.clone(), alert.region.clone(), false),
        Origin::SnsMessage => {
            // The ARN and AWSAccountId are the same message's text: if they
            // disagree, the message was not written by CloudWatch.
            let arn_account = alert.alarm_arn.as_deref().and_then(|a| arn_field(a, 4));
            if let (Some(a), Some(b)) = (arn_account, alert.account.as_deref())
                && a != b
            {
                return Err(format!(
                    "the message says account {b}, its AlarmArn account {a}: refused, nothing changed"
                ));
            }
            let account = alert.account.clone().or(arn_account.map(str::to_owned));
            (account, alert.region.clone(), true)
        }
        Origin::SnsTopic(topic) => {
            let Some(topic) = topic.as_deref() else {
                return Err("the SNS record carries no TopicArn: refused, nothing changed".into());
            };
            if config.forwarding_topics.iter().any(|t| t == topic) {
                (alert.account.clone(), alert.region.clone(), false)
            } else {
                let (ta, tr) = (arn_field(topic, 4), arn_field(topic, 3));
                let (Some(ta), Some(tr)) = (ta, tr) else {
                    return Err(format!(
                        "the SNS record's TopicArn {} is not an ARN: refused",
                        crate::text::quoted(topic, 120)
                    ));
                };
                for (what, named, topic_has) in [
                    ("account", alert.account.as_deref(), ta),
                    ("region", alert.region.as_deref(), tr),
                ] {
                    if let Some(n) = named.filter(|n| *n != topic_has) {
                        return Err(format!(
                            "the labels say {what} {}, the topic {topic} is in {what} {topic_has} and does not forward for others (FORWARDING_TOPIC_ARNS): refused, nothing changed",
                            crate::text::quoted(n, 40)
                        ));
                    }
                }
                (Some(ta.to_owned()), Some(tr.to_owned()), false)
            }
        }
    };
    let target = target_from(account.as_deref(), region.as_deref(), home, config)?;
    Ok(Resolved { target, read_alarm })
}

/// Field `i` of an ARN (3: region, 4: account), when not empty.
fn arn_field(arn: &str, i: usize) -> Option<&str> {
    arn.strip_prefix("arn:")?
        .split(':')
        .nth(i - 1)
        .filter(|f| !f.is_empty())
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
    // With ALLOWED_ORG_ID, any account id passes here: IAM refuses to
    // assume a role outside the organization (`aws:ResourceOrgID` on the
    // central role's sts:AssumeRole), and that refusal refuses the incident
    // before any other call (`aws::members`).
    let allowed = account == home.account
        || config.allowed_accounts.contains(&account)
        || config.allowed_org_id.is_some();
    if !allowed {
        return Err(format!(
            "account {account} is not this deployment's ({}) nor in ALLOWED_ACCOUNTS: refused, no call was made to it",
            home.account
        ));
    }
    // Regions are bounded as accounts are: the member clients are cached
    // per account and region, and IAM allows only the stack's Regions.
    if region != home.region && !config.allowed_regions.contains(&region) {
        return Err(format!(
            "region {region} is not this deployment's ({}) nor in ALLOWED_REGIONS: refused, no call was made to it",
            home.region
        ));
    }
    Ok(Target { account, region })
}

/// An alarm as CloudWatch holds it in the account and region a message
/// named (`DescribeAlarms` there, both alarm types).
#[derive(Clone, Debug, PartialEq)]
pub struct SeenAlarm {
    pub state: AlarmState,
    /// When its state last changed (`StateUpdatedTimestamp`), in ms.
    pub updated_ms: Option<i64>,
    /// A metric alarm's single metric: namespace, name, dimensions.
    pub metric: Option<(String, String, BTreeMap<String, String>)>,
}

/// How far CloudWatch's message time and its `StateUpdatedTimestamp` may
/// differ (the message is written from the same change, in ms).
const SAME_CHANGE_MS: i64 = 1000;

/// Whether an SNS message's claim holds where it says (pure): the alarm is
/// there, in the state the message claims, changed at the time the message
/// claims or later, and (a metric alarm) watching the metric and
/// dimensions the message names. Ok(note): believed, with a note when the
/// alarm has changed since; Err: refused, naming both sides.
pub fn judge(
    alert: &Alert,
    place: &str,
    seen: Option<&SeenAlarm>,
) -> Result<Option<String>, String> {
    let name = crate::text::quoted(&alert.alarm_name, 120);
    let Some(seen) = seen else {
        return Err(format!(
            "the message says {place}, the alarm {name} is not there: refused, nothing changed"
        ));
    };
    let claimed = crate::metrics::parse_time_ms(&alert.state_timestamp);
    let when = |ms: Option<i64>| {
        ms.and_then(chrono::DateTime::from_timestamp_millis)
            .map_or_else(|| "an unknown time".to_owned(), |t| t.to_rfc3339())
    };
    let later = match (claimed, seen.updated_ms) {
        (Some(c), Some(u)) if u + SAME_CHANGE_MS < c => {
            return Err(format!(
                "the message says the alarm {name} changed at {}, the alarm in {place} last changed at {}: refused, nothing changed",
                when(Some(c)),
                when(Some(u))
            ));
        }
        (Some(c), Some(u)) => u > c + SAME_CHANGE_MS,
        _ => {
            return Err(format!(
                "the time of the message ({}) or of the alarm in {place} cannot be compared: refused, nothing changed",
                crate::text::quoted(&alert.state_timestamp, 40)
            ));
        }
    };
    if seen.state != alert.state {
        return Err(format!(
            "the message says the alarm {name} is {}, the alarm in {place} is {} since {}: refused, nothing changed",
            alert.state.as_str(),
            seen.state.as_str(),
            when(seen.updated_ms)
        ));
    }
    if let (Some(claimed), Some(actual)) = (&alert.metric, &seen.metric) {
        let named = (&claimed.namespace, &claimed.name, &claimed.dimensions);
        if named != (&actual.0, &actual.1, &actual.2) {
            return Err(format!(
                "the message says the alarm {name} watches {}, the alarm in {place} watches {}: refused, nothing changed",
                metric_text(&claimed.namespace, &claimed.name, &claimed.dimensions),
                metric_text(&actual.0, &actual.1, &actual.2)
            ));
        }
    }
    Ok(later.then(|| {
        format!(
            "the alarm {name} in {place} was updated after the message (at {}); it is still {}",
            when(seen.updated_ms),
            seen.state.as_str()
        )
    }))
}

fn metric_text(ns: &str, name: &str, dims: &BTreeMap<String, String>) -> String {
    let d: Vec<String> = dims.iter().map(|(k, v)| format!("{k}={v}")).collect();
    crate::text::quoted(&format!("{ns}/{name} {}", d.join(",")), 200)
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
            allowed_regions: vec![RegionName::parse("r", "us-west-2").unwrap()],
            ..Config::default()
        };
        let t = target_of(&alert(Some("222222222222"), Some("us-west-2")), &home(), &c)
            .unwrap()
            .target;
        assert_eq!(
            (t.account.as_str(), t.region.as_str()),
            ("222222222222", "us-west-2")
        );
        assert_eq!(t.role_arn("fr"), "arn:aws:iam::222222222222:role/fr");
        assert_eq!(
            target_of(&alert(None, None), &home(), &c).unwrap().target,
            home()
        );
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
        // A region outside ALLOWED_REGIONS is refused like an account.
        let e =
            target_of(&alert(Some("222222222222"), Some("eu-west-1")), &home(), &c).unwrap_err();
        assert!(
            e.contains(
                "region eu-west-1 is not this deployment's (us-east-1) nor in ALLOWED_REGIONS"
            ),
            "{e}"
        );
    }

    fn sns(account: &str, arn_account: &str, region: &str) -> Alert {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../events/sns-high-cpu-alarm.json"
        ))
        .unwrap()
        .replace(
            "\\\"AWSAccountId\\\": \\\"123456789012\\\"",
            &format!("\\\"AWSAccountId\\\": \\\"{account}\\\""),
        )
        .replace(
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:",
            &format!("arn:aws:cloudwatch:{region}:{arn_account}:alarm:"),
        );
        crate::alert::parse_event(text.as_bytes())
            .unwrap()
            .remove(0)
    }

    fn allowing_b() -> Config {
        Config {
            allowed_accounts: vec![AccountId::parse("a", "222222222222").unwrap()],
            allowed_regions: vec![RegionName::parse("r", "us-west-2").unwrap()],
            ..Config::default()
        }
    }

    #[test]
    fn an_sns_message_names_where_but_is_read_there_first() {
        let a = sns("222222222222", "222222222222", "us-west-2");
        assert_eq!(a.origin, Origin::SnsMessage);
        let r = target_of(&a, &home(), &allowing_b()).unwrap();
        assert!(r.read_alarm, "the body of a message is checked there");
        assert_eq!(r.target.place(), "222222222222/us-west-2");
        // The home account's own topic is no exception.
        let r = target_of(
            &sns("111111111111", "111111111111", "us-east-1"),
            &home(),
            &allowing_b(),
        );
        assert!(r.unwrap().read_alarm);
        // The ARN and AWSAccountId of one message disagree: not CloudWatch's.
        let e = target_of(
            &sns("222222222222", "111111111111", "us-east-1"),
            &home(),
            &allowing_b(),
        )
        .unwrap_err();
        assert!(
            e.contains("the message says account 222222222222, its AlarmArn account 111111111111"),
            "{e}"
        );
        // Events AWS wrote are believed as they are.
        let eb = alert(Some("222222222222"), Some("us-west-2"));
        assert!(!target_of(&eb, &home(), &allowing_b()).unwrap().read_alarm);
    }

    fn seen(state: AlarmState, at: &str) -> SeenAlarm {
        SeenAlarm {
            state,
            updated_ms: crate::metrics::parse_time_ms(at),
            metric: Some((
                "AWS/EC2".into(),
                "CPUUtilization".into(),
                [("InstanceId".to_owned(), "i-0123456789abcdef0".to_owned())].into(),
            )),
        }
    }

    #[test]
    fn a_claim_is_believed_only_as_the_alarm_there_stands() {
        let a = sns("222222222222", "222222222222", "us-west-2");
        let t = &target_of(&a, &home(), &allowing_b())
            .unwrap()
            .target
            .describe();
        let at = "2026-11-25T02:04:12.152+0000";
        // Not there: refused, naming both sides.
        let e = judge(&a, t, None).unwrap_err();
        assert_eq!(
            e,
            "the message says account 222222222222 in us-west-2, the alarm \"web-high-cpu\" is not there: refused, nothing changed"
        );
        // There, in that state, changed then: believed without a note.
        assert_eq!(judge(&a, t, Some(&seen(AlarmState::Alarm, at))), Ok(None));
        // Changed since, still in that state: believed, and said.
        let note = judge(
            &a,
            t,
            Some(&seen(AlarmState::Alarm, "2026-11-25T02:09:12.000+0000")),
        )
        .unwrap()
        .unwrap();
        assert!(note.contains("was updated after the message"), "{note}");
        // In another state: refused.
        let e = judge(
            &a,
            t,
            Some(&seen(AlarmState::Ok, "2026-11-25T02:09:12.000+0000")),
        )
        .unwrap_err();
        assert!(e.contains("the message says the alarm \"web-high-cpu\" is ALARM, the alarm in account 222222222222 in us-west-2 is OK since"), "{e}");
        // Last changed before the message claims: the claimed change never happened.
        let e = judge(
            &a,
            t,
            Some(&seen(AlarmState::Alarm, "2026-11-24T00:00:00.000+0000")),
        )
        .unwrap_err();
        assert!(
            e.contains("last changed at 2026-11-24T00:00:00+00:00"),
            "{e}"
        );
        // A real alarm of that name, watching another instance.
        let mut other = seen(AlarmState::Alarm, at);
        other
            .metric
            .as_mut()
            .unwrap()
            .2
            .insert("InstanceId".into(), "i-0fedcba9876543210".into());
        let e = judge(&a, t, Some(&other)).unwrap_err();
        assert!(e.contains("watches \"AWS/EC2/CPUUtilization InstanceId=i-0123456789abcdef0\", the alarm in account 222222222222 in us-west-2 watches \"AWS/EC2/CPUUtilization InstanceId=i-0fedcba9876543210\""), "{e}");
    }

    #[test]
    fn prometheus_through_sns_acts_where_the_topic_is() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../events/sns-amp-high-cpu.json"
        ))
        .unwrap();
        let mut a = crate::alert::parse_event(text.as_bytes())
            .unwrap()
            .remove(0);
        let Origin::SnsTopic(Some(topic)) = a.origin.clone() else {
            panic!("{:?}", a.origin)
        };
        let topic_account = topic.split(':').nth(4).unwrap().to_owned();
        // No labels: the topic's account and region.
        a.account = None;
        a.region = None;
        let mut c = allowing_b();
        c.allowed_accounts
            .push(AccountId::parse("a", &topic_account).unwrap());
        let r = target_of(&a, &home(), &c).unwrap();
        assert_eq!(r.target.account.as_str(), topic_account);
        assert!(!r.read_alarm);
        // Labels naming another account: refused, both sides named.
        a.account = Some("222222222222".into());
        let e = target_of(&a, &home(), &c).unwrap_err();
        assert!(e.contains(&format!("the labels say account \"222222222222\", the topic {topic} is in account {topic_account}")), "{e}");
        // Unless that topic forwards for others.
        let fwd = Config {
            forwarding_topics: vec![topic.clone()],
            ..allowing_b()
        };
        assert_eq!(
            target_of(&a, &home(), &fwd)
                .unwrap()
                .target
                .account
                .as_str(),
            "222222222222"
        );
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
