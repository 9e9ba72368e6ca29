//! Validated identifiers. An id that reaches an AWS call or a notification has
//! been through one of these constructors, so hostile text cannot travel far.

use serde::Serialize;
use std::fmt;

use crate::error::InputError;

/// Shows a value from an event in an error message without letting it break
/// the line or flood the log: control characters escaped, length capped.
pub fn shown(value: &str) -> String {
    const MAX: usize = 80;
    let mut out: String = value.chars().take(MAX).collect();
    if value.chars().count() > MAX {
        out.push('…');
    }
    format!("{out:?}")
}

fn is_ec2_id(value: &str, prefix: &str) -> bool {
    value.strip_prefix(prefix).is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17)
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

macro_rules! ec2_id {
    ($name:ident, $prefix:literal, $what:literal) => {
        #[doc = concat!("An EC2 ", $what, " id: `", $prefix, "` followed by 8 or 17 lower-case hex digits.")]
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates `value`; `field` names where it came from, for the error.
            pub fn parse(field: &str, value: &str) -> Result<Self, InputError> {
                if is_ec2_id(value, $prefix) {
                    Ok(Self(value.to_owned()))
                } else {
                    Err(InputError::field(
                        field,
                        format!(
                            "{} is not an EC2 {} id (expected {}<8 or 17 hex digits>)",
                            shown(value),
                            $what,
                            $prefix
                        ),
                    ))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

ec2_id!(InstanceId, "i-", "instance");
ec2_id!(VolumeId, "vol-", "volume");

/// A systemd service to restart, named by an instance tag. Only a service
/// unit (`NAME` or `NAME.service`): a target, a mount or a socket is not a
/// service, and `systemctl restart poweroff.target` powers the machine off.
/// Held to the characters unit names use (no quotes, spaces, `$` or `/`), so
/// it can sit in a command line quoted and still mean only itself. Stored
/// with its `.service` suffix, so systemd never guesses the type.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ServiceName(String);

/// Services whose restart takes the machine, its login or first-responder's
/// own way onto it down with it: refused whatever the tag says.
pub const REFUSED_SERVICES: &[&str] = &[
    "amazon-ssm-agent",
    "snap.amazon-ssm-agent.amazon-ssm-agent",
    "sshd",
    "ssh",
    "systemd-journald",
    "systemd-logind",
    "systemd-networkd",
    "systemd-resolved",
    "systemd-udevd",
    "systemd-poweroff",
    "systemd-reboot",
    "systemd-halt",
    "systemd-kexec",
    "systemd-soft-reboot",
    "network",
    "NetworkManager",
    "dbus",
    "dbus-broker",
    "polkit",
    "auditd",
    "cloud-init",
    "cloud-final",
    "cloud-config",
    "cloud-init-local",
    "getty@",
    "serial-getty@",
    "emergency",
    "rescue",
];

impl ServiceName {
    pub fn parse(field: &str, value: &str) -> Result<Self, InputError> {
        let chars_ok = (1..=128).contains(&value.len())
            && value
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.@:-".contains(&b))
            && !value.contains("..");
        if !chars_ok {
            return Err(InputError::field(
                field,
                format!(
                    "{} is not a systemd service name (letters, digits and _.@:- only, starting with a letter or digit)",
                    shown(value)
                ),
            ));
        }
        let stem = value.strip_suffix(".service").unwrap_or(value);
        // Any other suffix names another unit type (target, mount, socket,
        // timer, ...): a stem with a dot is refused rather than guessed at.
        if stem.is_empty() || stem.contains('.') {
            return Err(InputError::field(
                field,
                format!(
                    "{} is not a service unit: only NAME or NAME.service is restarted (targets, mounts, sockets and other unit types are refused)",
                    shown(value)
                ),
            ));
        }
        // Template instances (`getty@tty1`) are judged by their template.
        let template = stem.split_once('@').map_or(stem, |(t, _)| t);
        let refused = REFUSED_SERVICES.iter().any(|r| {
            r.strip_suffix('@')
                .map_or(stem == *r, |t| template == t && stem.contains('@'))
        });
        if refused {
            return Err(InputError::field(
                field,
                format!(
                    "{} is a system service whose restart would cut the machine off or shut it down: refused",
                    shown(value)
                ),
            ));
        }
        Ok(Self(format!("{stem}.service")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An Auto Scaling group name as AWS returned it (1–255 characters, no
/// control characters). Only ever passed as an API parameter.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct GroupName(String);

impl GroupName {
    pub fn parse(field: &str, value: &str) -> Result<Self, InputError> {
        let len = value.chars().count();
        if (1..=255).contains(&len) && !value.chars().any(char::is_control) {
            Ok(Self(value.to_owned()))
        } else {
            Err(InputError::field(
                field,
                format!(
                    "{} is not an Auto Scaling group name (1-255 characters, no control characters)",
                    shown(value)
                ),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An AWS account id: exactly 12 digits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct AccountId(String);

impl AccountId {
    pub fn parse(field: &str, value: &str) -> Result<Self, InputError> {
        if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(value.to_owned()))
        } else {
            Err(InputError::field(
                field,
                format!("{} is not an AWS account id (12 digits)", shown(value)),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An AWS region code (`us-west-2`, `us-gov-west-1`, `cn-north-1`): lower-case
/// words joined by `-`, ending in a number; never a display name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RegionName(String);

impl RegionName {
    pub fn parse(field: &str, value: &str) -> Result<Self, InputError> {
        let parts: Vec<&str> = value.split('-').collect();
        let ok = value.len() <= 32
            && parts.len() >= 3
            && parts[..parts.len() - 1]
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
            && parts.last().is_some_and(|n| {
                !n.is_empty() && n.len() <= 2 && n.bytes().all(|b| b.is_ascii_digit())
            });
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(InputError::field(
                field,
                format!(
                    "{} is not an AWS region code (like us-west-2)",
                    shown(value)
                ),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RegionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_and_regions_are_codes_not_text() {
        assert!(AccountId::parse("a", "222222222222").is_ok());
        for bad in [
            "22222222222",
            "2222222222222",
            "22222222222a",
            "",
            "222222222222\n",
        ] {
            assert!(AccountId::parse("a", bad).is_err(), "{bad:?}");
        }
        for good in [
            "us-west-2",
            "us-gov-west-1",
            "cn-north-1",
            "ap-southeast-4",
            "eu-central-1",
        ] {
            assert!(RegionName::parse("r", good).is_ok(), "{good}");
        }
        for bad in [
            "US East (N. Virginia)",
            "us-west",
            "us--west-2",
            "us-west-2a",
            "us-west-2;x",
            "-1",
            "",
        ] {
            let e = RegionName::parse("r", bad).unwrap_err();
            assert!(
                e.to_string().contains("not an AWS region code"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn service_names() {
        for (ok, unit) in [
            ("nginx", "nginx.service"),
            ("nginx.service", "nginx.service"),
            ("app@1.service", "app@1.service"),
            ("my-app_2", "my-app_2.service"),
            ("sshd-keygen", "sshd-keygen.service"),
        ] {
            assert_eq!(ServiceName::parse("t", ok).unwrap().as_str(), unit);
        }
        for bad in [
            "", "-x", "a b", "a;reboot", "a'b", "$(id)", "../x", "a/b", "a..b", "x\n",
        ] {
            let e = ServiceName::parse("tag", bad).unwrap_err().to_string();
            assert!(e.contains("is not a systemd service name"), "{e}");
        }
        // Other unit types: a target can power the machine off.
        for bad in [
            "poweroff.target",
            "reboot.target",
            "multi-user.target",
            "data.mount",
            "docker.socket",
            "app.timer",
            "x.service.service",
        ] {
            let e = ServiceName::parse("tag", bad).unwrap_err().to_string();
            assert!(e.contains("is not a service unit"), "{bad}: {e}");
        }
        // System services: restarting them cuts the machine off or stops it.
        for bad in [
            "systemd-poweroff.service",
            "systemd-reboot",
            "amazon-ssm-agent",
            "amazon-ssm-agent.service",
            "sshd.service",
            "systemd-journald",
            "getty@tty1.service",
            "dbus",
        ] {
            let e = ServiceName::parse("tag", bad).unwrap_err().to_string();
            assert!(e.contains("refused"), "{bad}: {e}");
            assert!(e.starts_with("tag:") || e.contains("tag"), "{e}");
        }
    }

    #[test]
    fn instance_ids() {
        for ok in ["i-0123456789abcdef0", "i-01234567"] {
            assert_eq!(InstanceId::parse("f", ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "i-",
            "i-0123456789ABCDEF0",
            "i-0123456789abcdef0; rm -rf /",
            "i-0123456789abcdefg",
            "vol-0123456789abcdef0",
            "i-012345678",
            "../i-01234567",
            " i-01234567",
        ] {
            let err = InstanceId::parse("detail.x", bad).unwrap_err().to_string();
            assert!(err.contains("detail.x"), "{err}");
            assert!(err.contains("not an EC2 instance id"), "{err}");
        }
    }

    #[test]
    fn volume_ids() {
        assert!(VolumeId::parse("f", "vol-0a1b2c3d4e5f60718").is_ok());
        assert!(VolumeId::parse("f", "i-0a1b2c3d4e5f60718").is_err());
    }

    #[test]
    fn shown_escapes_and_caps() {
        assert_eq!(shown("a\nb"), "\"a\\nb\"");
        assert!(shown(&"x".repeat(500)).chars().count() < 90);
    }

    #[test]
    fn group_names() {
        assert!(GroupName::parse("g", "web-asg").is_ok());
        assert!(GroupName::parse("g", "").is_err());
        assert!(GroupName::parse("g", "a\u{7}b").is_err());
        assert!(GroupName::parse("g", &"a".repeat(256)).is_err());
    }
}
