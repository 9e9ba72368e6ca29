//! Links into the AWS console (and a Prometheus alert's own pages) for
//! every notification: pure, from what the plan and the outcomes name.
//! Each console link is for the alarm's own account and region, and says
//! which account, so a person signed into another one sees where to go.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::ids::RegionName;

/// One link: what it opens, and where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub text: String,
    pub href: String,
}

/// The account and region the console links point into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Where {
    pub account: Option<String>,
    pub region: RegionName,
}

impl Where {
    /// `region` must be a region code; an account, twelve digits.
    pub fn new(account: Option<&str>, region: &str) -> Option<Self> {
        let region = RegionName::parse("region", region).ok()?;
        let account = account
            .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_owned);
        Some(Self { account, region })
    }

    /// `https://REGION.console.aws.amazon.com` (or the partition's console).
    fn console(&self) -> String {
        let r = self.region.as_str();
        if r.starts_with("cn-") {
            format!("https://{r}.console.amazonaws.cn")
        } else if r.starts_with("us-gov-") {
            format!("https://{r}.console.amazonaws-us-gov.com")
        } else {
            format!("https://{r}.console.aws.amazon.com")
        }
    }

    /// `(account 111122223333, us-east-1)`: where the link leads.
    fn place(&self) -> String {
        match &self.account {
            Some(a) => format!("(account {a}, {})", self.region),
            None => format!("({})", self.region),
        }
    }

    fn link(&self, what: &str, path: String) -> Link {
        Link {
            text: format!("{what} {}", self.place()),
            href: format!("{}{path}", self.console()),
        }
    }

    pub fn alarm(&self, name: &str) -> Link {
        let r = self.region.as_str();
        self.link(
            &format!("alarm {name}"),
            format!(
                "/cloudwatch/home?region={r}#alarmsV2:alarm/{}",
                encode(name)
            ),
        )
    }

    pub fn instance(&self, id: &str) -> Link {
        let r = self.region.as_str();
        self.link(
            &format!("instance {id}"),
            format!(
                "/ec2/home?region={r}#InstanceDetails:instanceId={}",
                encode(id)
            ),
        )
    }

    pub fn group(&self, name: &str) -> Link {
        let r = self.region.as_str();
        self.link(
            &format!("Auto Scaling group {name}"),
            format!(
                "/ec2/home?region={r}#AutoScalingGroupDetails:id={};view=details",
                encode(name)
            ),
        )
    }

    pub fn snapshot(&self, id: &str) -> Link {
        let r = self.region.as_str();
        self.link(
            &format!("snapshot {id}"),
            format!(
                "/ec2/home?region={r}#SnapshotDetails:snapshotId={}",
                encode(id)
            ),
        )
    }

    pub fn volume(&self, id: &str) -> Link {
        let r = self.region.as_str();
        self.link(
            &format!("volume {id}"),
            format!("/ec2/home?region={r}#VolumeDetails:volumeId={}", encode(id)),
        )
    }

    /// The output of one Run Command invocation on one instance.
    pub fn command(&self, command_id: &str, instance: &str) -> Link {
        let r = self.region.as_str();
        self.link(
            &format!("command output {command_id} on {instance}"),
            format!(
                "/systems-manager/run-command/{}/{}?region={r}",
                encode(command_id),
                encode(instance)
            ),
        )
    }
}

/// All but RFC 3986's unreserved characters.
const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes all but RFC 3986's unreserved characters, as the
/// console's own links encode a name (`encodeURIComponent`, stricter).
pub fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, COMPONENT).to_string()
}

/// A Run Command id: a UUID.
pub fn is_command_id(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

pub use crate::text::web_url;

/// Alertmanager's own "new silence" form for these labels (every label of
/// the alert, as its "Silence" button fills them in): nothing hosted here.
/// The form opens with the matchers filled in; its duration field is set
/// by a person (the page's link says 1 h).
pub fn silence_form(external_url: &str, labels: &BTreeMap<String, String>) -> Option<String> {
    let base = web_url(external_url)?;
    let matchers: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let v = v.replace('\\', "\\\\").replace('"', "\\\"");
            format!("{k}=\"{v}\"")
        })
        .collect();
    let filter = format!("{{{}}}", matchers.join(","));
    Some(format!(
        "{}/#/silences/new?filter={}",
        base.trim_end_matches('/'),
        encode(&filter)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_links_name_the_account_and_region_and_encode_the_name() {
        let w = Where::new(Some("222222222222"), "us-west-2").unwrap();
        let a = w.alarm("web high/cpu");
        assert_eq!(
            a.href,
            "https://us-west-2.console.aws.amazon.com/cloudwatch/home?region=us-west-2#alarmsV2:alarm/web%20high%2Fcpu"
        );
        assert_eq!(
            a.text,
            "alarm web high/cpu (account 222222222222, us-west-2)"
        );
        assert_eq!(
            w.command(
                "0b1c2d3e-0000-4000-8000-000000000001",
                "i-0123456789abcdef0"
            )
            .href,
            "https://us-west-2.console.aws.amazon.com/systems-manager/run-command/0b1c2d3e-0000-4000-8000-000000000001/i-0123456789abcdef0?region=us-west-2"
        );
        let cn = Where::new(None, "cn-north-1").unwrap();
        assert!(
            cn.instance("i-1")
                .href
                .starts_with("https://cn-north-1.console.amazonaws.cn/ec2/")
        );
        assert!(Where::new(Some("1"), "not a region").is_none());
        assert_eq!(Where::new(Some("1"), "eu-west-1").unwrap().account, None);
        assert!(is_command_id("0b1c2d3e-0000-4000-8000-000000000001"));
        assert!(!is_command_id("snap-0123"));
    }

    #[test]
    fn the_silence_form_carries_every_label_as_a_matcher() {
        let labels = BTreeMap::from([
            ("alertname".to_owned(), "HostDiskFull".to_owned()),
            ("instance".to_owned(), "10.0.0.5:9100".to_owned()),
            ("q".to_owned(), "a\"b".to_owned()),
        ]);
        let url = silence_form("http://am.example:9093/", &labels).unwrap();
        assert_eq!(
            url,
            "http://am.example:9093/#/silences/new?filter=%7Balertname%3D%22HostDiskFull%22%2Cinstance%3D%2210.0.0.5%3A9100%22%2Cq%3D%22a%5C%22b%22%7D"
        );
        assert!(silence_form("javascript:alert(1)", &labels).is_none());
        assert!(web_url("https://x.example/a b").is_none());
        assert!(web_url("https://x.example/graph?g0.expr=up)").is_none());
    }
}
