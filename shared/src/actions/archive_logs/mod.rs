//! archive_logs: compress old rotated logs under /var/log (and ship them to S3 when a bucket is set).

use super::Recovery;
use super::script::Script;
use super::ActionStep;
use super::ActionName;
use crate::ids::InstanceId;
use crate::observed::Observed;
use crate::params::Validator;
use serde::Deserialize;
use toml::Spanned;
use super::context::{on_alerted_filesystem, Settings, Context};

#[cfg(feature = "aws")]
mod run;
#[cfg(feature = "aws")]
pub(crate) use run::run;

pub const RECOVERY: Recovery = Recovery::Idempotent("it compresses only rotated logs not yet compressed and not held open");

crate::actions::clients::permissions! {
    ssm: [SendCommand, GetCommandInvocation],
}

/// What its decision reads beyond the instance (see `Need`).
pub const NEEDS: &[super::Need] = &[super::Need::Volumes, super::Need::Layout];

/// The scripts it sends through SSM, for `first-responder script`.
pub const SCRIPTS: &[super::script::Script] = &[Script {
    name: "archive_logs",
    usage: "--days N [--bucket B --instance I --incident ID]",
    example: &["--days", "7", "--bucket", "logs-bucket", "--instance", "i-0123456789abcdef0", "--incident", "inc-0011223344556677"],
    build: |a| {
        let bucket = a.get("--bucket");
        if let Some(b) = bucket
            && !is_bucket_name(b)
        {
            return Err(format!("--bucket {b:?} is not an S3 bucket name"));
        }
        if bucket.is_some() && (a.get("--instance").is_none() || a.get("--incident").is_none()) {
            return Err("--bucket needs --instance and --incident (the S3 key names them)".into());
        }
        let instance = InstanceId::parse("--instance", a.get("--instance").unwrap_or("i-00000000"))
            .map_err(|e| e.to_string())?;
        Ok(crate::commands::archive_logs(
            a.number("--days", Some(7))?,
            bucket,
            &instance,
            a.get("--incident").unwrap_or("inc-0000000000000000"),
        ))
    },
}];

/// `[kind.archive_logs]`
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// Compress rotated logs older than this many days.
    pub older_than_days: u32,
    /// Ship them to this S3 bucket; None: compress in place only.
    pub bucket: Option<String>,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            older_than_days: 7,
            bucket: None,
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    /// `required`: held for a person's approval (read by the playbook).
    pub approval: Option<Spanned<String>>,
    /// `observe`, `approve` or `auto` (read by the playbook; `approval =
    /// "required"` is `approve`).
    pub mode: Option<Spanned<String>>,
    /// Changes an hour it may make (per account; read by the playbook).
    pub budget_per_hour: Option<Spanned<i64>>,
    pub older_than_days: Option<Spanned<i64>>,
    pub bucket: Option<Spanned<String>>,
}

impl Params {
    pub fn read(raw: Raw, v: &mut Validator) -> Self {
        let d = Self::default();
        let older_than_days = v.range("older_than_days", raw.older_than_days, (1, 3650), d.older_than_days);
        let bucket = v.text("bucket", raw.bucket).and_then(|b| {
            let name = b.get_ref().trim().to_owned();
            if name.is_empty() {
                return None;
            }
            if !is_bucket_name(&name) {
                let table = v.table.name.clone();
                v.fail(
                    b.span(),
                    format!("{table}.bucket is {name:?}, not an S3 bucket name (3-63 of a-z 0-9 . -)"),
                );
            }
            Some(name)
        });
        Self {
            older_than_days,
            bucket,
        }
    }
}

/// An S3 bucket name (3-63 of a-z 0-9 . -, alphanumeric at both ends):
/// the only text of the configuration that goes into a script.
pub fn is_bucket_name(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        && b.starts_with(|c: char| c.is_ascii_alphanumeric())
        && b.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !b.contains("..")
}

pub(crate) fn decide(p: &mut Context<'_>, instance: &InstanceId, observed: &Observed, config: &Settings) {
    let params = p
        .playbook(config)
        .map(|pb| pb.archive_logs.clone())
        .unwrap_or_default();
    let days = params.older_than_days;
    let reason = match &params.bucket {
        Some(b) => format!(
            "compress rotated logs older than {days} days under /var/log and ship them to s3://{b}"
        ),
        None => format!("compress rotated logs older than {days} days under /var/log"),
    };
    let step = super::Step::ArchiveLogs(Step {
        instance: instance.clone(),
        days,
        bucket: params.bucket,
    });
    let decision = on_alerted_filesystem(p, instance, observed, config, step, &["/var/log"]);
    p.push(config, ActionName::ArchiveLogs, instance.to_string(), reason, decision);
}

#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub instance: InstanceId,
    pub days: u32,
    pub bucket: Option<String>,
}

impl ActionStep for Step {
    /// SSM: compressing rotated logs, tens of seconds.
    fn typical(&self) -> std::time::Duration {
        std::time::Duration::from_secs(20)
    }
    fn describe(&self) -> String {
        format!(
            "compress rotated logs older than {} days under /var/log on {}",
            self.days, self.instance
        )
    }
    fn is_mutating(&self) -> bool {
        true
    }
}
