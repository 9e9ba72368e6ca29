//! The executor: the only module that calls AWS. It reads what the planner
//! needs ([`Aws::observe`]) and carries out a plan ([`Aws::execute`]).

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification, VolumeModificationState};
use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_ssm::types::CommandInvocationStatus;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared, join_all};
use tokio::time::{Instant, sleep, timeout_at};
use tracing::{Instrument, info, info_span, warn};

use crate::commands;
use crate::config::Config;
use crate::disk::{self, DiskTarget, df_usage, human_bytes, marker};
use crate::ids::{GroupName, InstanceId, VolumeId};
use crate::incident::{Incident, IncidentKind, PrivateAddress, Resource, Transition};
use crate::notify::{Notification, compose, sns_message};
use crate::plan::{
    ActionName, AttachedVolume, Decision, Diagnostics, Expansion, GroupState, HIGH_CPU_DIAGNOSTICS,
    InstanceHealth, InstanceState, Observed, Plan, PlannedAction, Step,
};
use crate::report::{ActionReport, IncidentReport, Status};
use crate::state::{Begin, Claim, StateStore};

/// Tag keys put on everything first-responder creates (the audit trail).
pub const TAG_INCIDENT: &str = "first-responder:incident-id";
pub const TAG_ALARM: &str = "first-responder:alarm-name";
pub const TAG_INSTANCE: &str = "first-responder:instance-id";
pub const TAG_CREATED_BY: &str = "created-by";
pub const TAG_PURPOSE: &str = "first-responder:purpose";
pub const CREATED_BY: &str = "first-responder";

pub const RUN_SHELL_DOCUMENT: &str = "AWS-RunShellScript";

/// SDK configuration with deliberate timeouts and retries. An incident has a
/// 90 s budget for all its actions: one call gets 5 s an attempt and three
/// attempts with jittered backoff (standard mode), 20 s in all, so a stuck
/// endpoint costs one action, not the incident. Credentials, region and the
/// endpoint (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`) come from the
/// SDK's own environment handling.
pub fn sdk_config_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(20))
                .build(),
        )
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(200))
                .with_max_backoff(Duration::from_secs(5)),
        )
}

/// The SDK's default HTTPS client (rustls with aws-lc), trusting one CA
/// bundle file. By default the SDK loads the platform's roots through
/// rustls-native-certs, which reads the bundle *and* every file of the
/// certificate directory: on Debian that is some 140 files and most of this
/// binary's cold start (see BENCHMARKS.md). `SSL_CERT_FILE` wins; then the
/// bundle of Amazon Linux 2023 (Lambda's `provided.al2023`) or of Debian and
/// Ubuntu; with none of them, the platform's roots as before.
pub fn https_client() -> aws_sdk_ec2::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
    let bundle = std::env::var("SSL_CERT_FILE")
        .ok()
        .into_iter()
        .chain(
            [
                "/etc/pki/tls/certs/ca-bundle.crt",
                "/etc/ssl/certs/ca-certificates.crt",
            ]
            .map(String::from),
        )
        .find_map(|p| std::fs::read(p).ok());
    let store = match bundle {
        Some(pem) => TrustStore::empty()
            .with_native_roots(false)
            .with_pem_certificate(pem),
        None => TrustStore::default(),
    };
    let builder = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
    match TlsContext::builder().with_trust_store(store).build() {
        Ok(ctx) => builder.tls_context(ctx).build_https(),
        Err(_) => builder.build_https(),
    }
}

/// Clients for the binaries that need one service only (the webhook).
pub fn ssm_client(sdk: &SdkConfig) -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(sdk)
}

pub fn lambda_client(sdk: &SdkConfig) -> aws_sdk_lambda::Client {
    aws_sdk_lambda::Client::new(sdk)
}

/// How `GetCommandInvocation` is polled: doubling from `first` up to `max`.
#[derive(Clone, Copy, Debug)]
pub struct PollSchedule {
    pub first: Duration,
    pub max: Duration,
}

impl Default for PollSchedule {
    fn default() -> Self {
        Self {
            first: Duration::from_millis(500),
            max: Duration::from_secs(5),
        }
    }
}

/// The AWS clients, built once per process.
#[derive(Clone, Debug)]
pub struct Aws {
    pub ec2: aws_sdk_ec2::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub sns: aws_sdk_sns::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub poll: PollSchedule,
    /// Idempotency, cooldowns, flap guard and breaker; `None` runs untracked.
    pub state: Option<StateStore>,
}

/// Result of one step, before it becomes an [`ActionReport`].
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub status: Status,
    pub detail: String,
    pub ids: Vec<String>,
    pub output: Option<String>,
    /// A command's exit code, when one ran and ended.
    pub exit_code: Option<i32>,
    /// Failed, but the change may have been made (the call timed out or its
    /// answer was lost, the command ran and its result is bad or missing, the
    /// deadline cut it off). Such a failure keeps its cooldown and is never
    /// retried by a later delivery: only a change that surely was not made is.
    pub uncertain: bool,
}

impl Outcome {
    fn done(detail: impl Into<String>, ids: Vec<String>) -> Self {
        Self {
            status: Status::Done,
            detail: detail.into(),
            ids,
            output: None,
            exit_code: None,
            uncertain: false,
        }
    }
    fn skipped(detail: impl Into<String>) -> Self {
        Self {
            status: Status::Skipped,
            detail: detail.into(),
            ids: Vec::new(),
            output: None,
            exit_code: None,
            uncertain: false,
        }
    }
    /// Failed, and the change may have been made (see [`Outcome::uncertain`]).
    fn uncertain(detail: impl Into<String>) -> Self {
        Self {
            uncertain: true,
            ..Self::failed(format!(
                "{}; the change may have been made, so it is not repeated automatically: check it by hand",
                detail.into()
            ))
        }
    }

    /// Failed with this SDK error: certain when AWS refused the call, else
    /// the change may have been made.
    fn failed_call<E>(what: &str, e: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let text = format!("{what}: {}", sdk_error(e));
        if refused(e) {
            Self::failed(text)
        } else {
            Self::uncertain(text)
        }
    }

    fn failed(detail: impl Into<String>) -> Self {
        Self {
            status: Status::Failed,
            detail: detail.into(),
            ids: Vec::new(),
            output: None,
            exit_code: None,
            uncertain: false,
        }
    }
}

/// An SDK error in one line: the service's code and message when there is
/// one, else the whole error chain (timeouts, connection failures).
pub fn sdk_error<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match (e.code(), e.message()) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_owned(),
        _ => DisplayErrorContext(e).to_string(),
    }
}

fn printable(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .take(max)
        .collect()
}

impl Aws {
    pub fn new(sdk: &SdkConfig) -> Self {
        Self {
            ec2: aws_sdk_ec2::Client::new(sdk),
            ssm: aws_sdk_ssm::Client::new(sdk),
            sns: aws_sdk_sns::Client::new(sdk),
            autoscaling: aws_sdk_autoscaling::Client::new(sdk),
            poll: PollSchedule::default(),
            state: None,
        }
    }

    /// The same clients without the state table. A dry run uses it: it must
    /// leave no trace (no lease, claim, cooldown, flap or breaker count), so
    /// a real delivery of the same occurrence later acts in full.
    pub fn untracked(&self) -> Self {
        Self {
            state: None,
            ..self.clone()
        }
    }

    /// With the state table (`STATE_TABLE`) for idempotency and limits.
    pub fn with_state(mut self, sdk: &SdkConfig, table: &str) -> Self {
        self.state = Some(StateStore::new(aws_sdk_dynamodb::Client::new(sdk), table));
        self
    }

    /// Reads the AWS state the planner needs for this incident, concurrently.
    pub async fn observe(&self, incident: &Incident, config: &Config) -> Observed {
        let kind = incident.kind;
        if incident.transition != Transition::Firing || kind == IncidentKind::Unrouted {
            return Observed::nothing();
        }
        let (instance, resolved) = match &incident.resource {
            Resource::Instance(i) => (i.clone(), None),
            Resource::Address(a) => match self.resolve(a, &config.vpc_ids).await {
                Ok((i, vpc)) => (i.clone(), Some((i, vpc))),
                Err(why) => {
                    return Observed {
                        resolved: Some(Err(why)),
                        ..Observed::nothing()
                    };
                }
            },
            Resource::Group(g) if kind == IncidentKind::HighCpu => {
                return Observed {
                    group: self.group_named(g).await,
                    ..Observed::nothing()
                };
            }
            Resource::Group(_) | Resource::None => return Observed::nothing(),
        };
        use IncidentKind::*;
        // A Prometheus ServiceDown is only a failed scrape: EC2's status
        // checks (and, when configured, SSM's view) decide whether the
        // instance itself is down. Read beside the rest.
        let scrape_failure = kind == ServiceDown && !incident.alert.source.is_cloudwatch();
        let ask_ssm = scrape_failure && config.playbooks.service_down.act_when_ssm_unreachable;
        let (volumes, group, me, health, ssm_online) = tokio::join!(
            async {
                match kind {
                    HighCpu | DiskFull | ServiceDown => self.volumes_of(&instance).await,
                    _ => Ok(Vec::new()),
                }
            },
            async {
                match kind {
                    HighCpu | ServiceDown => self.group_of(&instance).await,
                    _ => Ok(None),
                }
            },
            // Every playbook needs the instance's tags (its opt-in decides
            // evidence, commands and changes): read beside the rest.
            self.instance_state(&instance),
            async {
                match scrape_failure {
                    true => Some(self.health(&instance).await),
                    false => None,
                }
            },
            async {
                match ask_ssm {
                    true => Some(self.ssm_online(&instance).await),
                    false => None,
                }
            },
        );
        // The instance's block devices, only when the API alone cannot tell
        // which volume holds the filesystem or what filesystem it is.
        let layout = match (&volumes, kind == DiskFull) {
            (Ok(vols), true) => {
                let labels = incident
                    .alert
                    .metric
                    .as_ref()
                    .map(|m| m.dimensions.clone())
                    .unwrap_or_default();
                let target = DiskTarget::from_labels(&labels);
                let root = me
                    .as_ref()
                    .ok()
                    .and_then(Option::as_ref)
                    .and_then(|s| s.root_device.clone());
                let known = disk::resolve_volume(&target, vols, root.as_deref(), None).is_ok();
                let commands_allowed = me
                    .as_ref()
                    .ok()
                    .and_then(Option::as_ref)
                    .is_some_and(|s| crate::plan::is_opted_in(&s.tags, config));
                if (known && target.fstype.is_some()) || !commands_allowed {
                    // Known from the API alone, or SSM may not run commands
                    // on this instance (the planner says why).
                    None
                } else {
                    Some(self.block_devices(&instance, &incident.id, config).await)
                }
            }
            _ => None,
        };
        let (resolved, resolved_in) = match resolved {
            Some((i, vpc)) => (Some(Ok(i)), Some(vpc)),
            None => (None, None),
        };
        Observed {
            resolved,
            resolved_in,
            volumes,
            group,
            instance: me,
            layout,
            health,
            ssm_online,
            ..Observed::nothing()
        }
    }

    /// EC2's status checks and state for one instance (stopped ones too).
    async fn health(&self, instance: &InstanceId) -> Result<InstanceHealth, String> {
        let out = self
            .ec2
            .describe_instance_status()
            .instance_ids(instance.as_str())
            .include_all_instances(true)
            .send()
            .await
            .map_err(|e| format!("DescribeInstanceStatus: {}", sdk_error(&e)))?;
        let st = out
            .instance_statuses()
            .iter()
            .find(|s| s.instance_id() == Some(instance.as_str()))
            .ok_or_else(|| format!("DescribeInstanceStatus reported nothing for {instance}"))?;
        let check = |s: Option<&aws_sdk_ec2::types::InstanceStatusSummary>| {
            s.and_then(|s| s.status()).map(|x| x.as_str().to_owned())
        };
        Ok(InstanceHealth {
            state: st
                .instance_state()
                .and_then(|s| s.name())
                .map(|n| n.as_str().to_owned()),
            system: check(st.system_status()),
            instance: check(st.instance_status()),
        })
    }

    /// Whether SSM's agent on the instance is online (`DescribeInstanceInformation`).
    async fn ssm_online(&self, instance: &InstanceId) -> Result<bool, String> {
        use aws_sdk_ssm::types::{InstanceInformationStringFilter, PingStatus};
        let filter = InstanceInformationStringFilter::builder()
            .key("InstanceIds")
            .values(instance.as_str())
            .build()
            .map_err(|e| e.to_string())?;
        let out = self
            .ssm
            .describe_instance_information()
            .filters(filter)
            .send()
            .await
            .map_err(|e| format!("DescribeInstanceInformation: {}", sdk_error(&e)))?;
        Ok(out.instance_information_list().iter().any(|i| {
            i.instance_id() == Some(instance.as_str())
                && i.ping_status() == Some(&PingStatus::Online)
        }))
    }

    /// Tags, root device and state of one instance; Ok(None) if it does not exist.
    async fn instance_state(&self, instance: &InstanceId) -> Result<Option<InstanceState>, String> {
        let out = match self
            .ec2
            .describe_instances()
            .instance_ids(instance.as_str())
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.code() == Some("InvalidInstanceID.NotFound") => return Ok(None),
            Err(e) => return Err(format!("DescribeInstances: {}", sdk_error(&e))),
        };
        Ok(out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find(|i| i.instance_id() == Some(instance.as_str()))
            .map(|i| InstanceState {
                tags: i
                    .tags()
                    .iter()
                    .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                    .collect(),
                root_device: i.root_device_name().map(ToOwned::to_owned),
                state: i
                    .state()
                    .and_then(|s| s.name())
                    .map(|n| n.as_str().to_owned()),
            }))
    }

    /// `lsblk` on the instance through SSM (a read).
    async fn block_devices(
        &self,
        instance: &InstanceId,
        incident_id: &str,
        config: &Config,
    ) -> Result<Vec<disk::BlockDev>, String> {
        let o = run_command(
            &self.ssm,
            instance,
            commands::LSBLK.iter().map(|c| (*c).to_owned()).collect(),
            &format!("first-responder block devices for {incident_id}"),
            config.diagnostics_timeout,
            self.poll,
        )
        .await;
        match (o.status, o.output.as_deref().map(str::trim)) {
            (Status::Done, Some(out)) if !out.is_empty() => disk::parse_lsblk(out),
            (Status::Done, _) => Err("lsblk printed nothing".into()),
            _ => Err(o.detail),
        }
    }

    /// Reads the kill switch: on when the parameter holds on/true/1/yes/
    /// notify-only; off when it holds anything else or does not exist.
    pub async fn kill_switch(&self, name: &str) -> Result<bool, String> {
        // Decrypted, so a SecureString works as well as a String.
        let read = self
            .ssm
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await;
        match read {
            Ok(out) => {
                let v = out.parameter().and_then(|p| p.value()).unwrap_or_default();
                Ok(matches!(
                    v.trim().to_ascii_lowercase().as_str(),
                    "on" | "true" | "1" | "yes" | "notify-only"
                ))
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_parameter_not_found()) =>
            {
                Ok(false)
            }
            Err(e) => Err(format!("GetParameter {name}: {}", sdk_error(&e))),
        }
    }

    /// The one instance with this private IP address or DNS name, in the
    /// configured VPCs (`VPC_IDS`), and how it was found. Private addresses
    /// repeat across VPCs: without `VPC_IDS`, an account with more than one
    /// VPC in the region is refused rather than matched anywhere.
    async fn resolve(
        &self,
        address: &PrivateAddress,
        vpc_ids: &[String],
    ) -> Result<(InstanceId, String), String> {
        let (filter, what) = match address {
            PrivateAddress::Ip(ip) => ("private-ip-address", format!("private IP {ip}")),
            PrivateAddress::DnsName(n) => ("private-dns-name", format!("private DNS name {n}")),
        };
        let mut lookup = self
            .ec2
            .describe_instances()
            .filters(
                Filter::builder()
                    .name(filter)
                    .values(address.to_string())
                    .build(),
            )
            .filters(
                Filter::builder()
                    .name("instance-state-name")
                    .values("pending")
                    .values("running")
                    .values("stopping")
                    .values("stopped")
                    .build(),
            );
        if !vpc_ids.is_empty() {
            lookup = lookup.filters(
                Filter::builder()
                    .name("vpc-id")
                    .set_values(Some(vpc_ids.to_vec()))
                    .build(),
            );
        }
        // Without VPC_IDS, the account's VPCs are counted beside the lookup.
        let vpcs = async {
            match vpc_ids.is_empty() {
                true => Some(self.ec2.describe_vpcs().send().await),
                false => None,
            }
        };
        let (out, vpcs) = tokio::join!(lookup.send(), vpcs);
        let scope = if vpc_ids.is_empty() {
            let vpcs = vpcs
                .transpose()
                .map_err(|e| format!("DescribeVpcs: {}", sdk_error(&e)))?;
            let ids: Vec<&str> = vpcs
                .as_ref()
                .map(|v| v.vpcs().iter().filter_map(|x| x.vpc_id()).collect())
                .unwrap_or_default();
            if ids.len() > 1 {
                return Err(format!(
                    "VPC_IDS is not set and this account has {} VPCs in the region ({}): a private address may name a host in any of them; set VPC_IDS to the VPCs Prometheus scrapes",
                    ids.len(),
                    ids.join(", ")
                ));
            }
            "this account's only VPC".to_owned()
        } else {
            format!("VPC_IDS {}", vpc_ids.join(", "))
        };
        let out = out.map_err(|e| format!("DescribeInstances: {}", sdk_error(&e)))?;
        let found: Vec<(&str, &str)> = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter_map(|i| Some((i.instance_id()?, i.vpc_id().unwrap_or("?"))))
            .collect();
        match found.as_slice() {
            [] => Err(format!("no instance in {scope} has {what}")),
            [(one, vpc)] => {
                let id = InstanceId::parse("DescribeInstances.InstanceId", one)
                    .map_err(|e| e.to_string())?;
                Ok((id, format!("{what} in {vpc}, looked up in {scope}")))
            }
            many => Err(format!(
                "{} instances in {scope} have {what} ({}): refusing to guess",
                many.len(),
                many.iter()
                    .map(|(i, v)| format!("{i} in {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    async fn volumes_of(&self, instance: &InstanceId) -> Result<Vec<AttachedVolume>, String> {
        let out = self
            .ec2
            .describe_volumes()
            .filters(
                Filter::builder()
                    .name("attachment.instance-id")
                    .values(instance.as_str())
                    .build(),
            )
            .send()
            .await
            .map_err(|e| format!("DescribeVolumes: {}", sdk_error(&e)))?;
        let mut volumes = Vec::new();
        for v in out.volumes() {
            let Some(id) = v.volume_id() else { continue };
            let id = VolumeId::parse("DescribeVolumes.VolumeId", id).map_err(|e| e.to_string())?;
            let device = v
                .attachments()
                .iter()
                .find(|a| a.instance_id() == Some(instance.as_str()))
                .and_then(|a| a.device())
                .map(ToOwned::to_owned);
            volumes.push(AttachedVolume {
                id,
                device,
                size_gib: v.size(),
                volume_type: v.volume_type().map(|t| t.as_str().to_owned()),
                tags: v
                    .tags()
                    .iter()
                    .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                    .collect(),
            });
        }
        volumes.sort_by(|a, b| a.device.cmp(&b.device).then(a.id.cmp(&b.id)));
        Ok(volumes)
    }

    async fn group_of(&self, instance: &InstanceId) -> Result<Option<GroupState>, String> {
        let out = self
            .autoscaling
            .describe_auto_scaling_instances()
            .instance_ids(instance.as_str())
            .send()
            .await
            .map_err(|e| format!("DescribeAutoScalingInstances: {}", sdk_error(&e)))?;
        let Some(name) = out
            .auto_scaling_instances()
            .iter()
            .find(|i| i.instance_id() == Some(instance.as_str()))
            .and_then(|i| i.auto_scaling_group_name())
        else {
            return Ok(None);
        };
        let name = GroupName::parse("DescribeAutoScalingInstances.AutoScalingGroupName", name)
            .map_err(|e| e.to_string())?;
        self.group_named(&name).await
    }

    async fn group_named(&self, name: &GroupName) -> Result<Option<GroupState>, String> {
        let out = self
            .autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(name.as_str())
            .send()
            .await
            .map_err(|e| format!("DescribeAutoScalingGroups: {}", sdk_error(&e)))?;
        let Some(g) = out
            .auto_scaling_groups()
            .iter()
            .find(|g| g.auto_scaling_group_name() == Some(name.as_str()))
        else {
            return Ok(None);
        };
        match (g.desired_capacity(), g.min_size(), g.max_size()) {
            (Some(desired), Some(min), Some(max)) => Ok(Some(GroupState {
                name: name.clone(),
                desired,
                min,
                max,
                tags: g
                    .tags()
                    .iter()
                    .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                    .collect(),
            })),
            _ => Err(format!(
                "group {name} has no desired/min/max capacity in its description"
            )),
        }
    }

    /// Carries out a plan: independent actions concurrently under the
    /// actions deadline, then the notification with what came of them. With
    /// a state table, each occurrence is taken under a lease and each action
    /// claimed once, so redeliveries repeat nothing.
    pub async fn execute(&self, plan: &Plan, config: &Config) -> IncidentReport {
        // Nothing to do (an ignored transition, a quiet recovery): no call at all.
        if plan.actions.is_empty() {
            let mut r = plan.report_with(Vec::new());
            r.delivery = "nothing to do";
            return r;
        }
        let now = unix_now();
        let started = self.begin(&plan.incident.id, config, now).await;
        self.execute_started(plan, config, started, now, None).await
    }

    /// Takes the occurrence's lease (see [`Started`]). Separate from
    /// [`Aws::execute_started`] so it can overlap the reads of `observe`.
    pub async fn begin(&self, incident_id: &str, config: &Config, now: i64) -> Started {
        let lease = config.actions_deadline + Duration::from_secs(60);
        if config.dry_run {
            return Started::Go("dry run");
        }
        let Some(st) = &self.state else {
            return Started::Go("untracked");
        };
        match st.begin_incident(incident_id, now, lease).await {
            Ok(Begin::Fresh) => Started::Go("first"),
            Ok(Begin::Resumed) => Started::Go("resumed"),
            Ok(Begin::Completed) => Started::Stop {
                delivery: "duplicate",
                why: "this occurrence was handled by an earlier delivery: nothing done again"
                    .into(),
                transient: None,
            },
            Ok(Begin::Busy { until }) => {
                let why = format!(
                    "another delivery holds this occurrence until {}",
                    rfc3339(until)
                );
                Started::Stop {
                    delivery: "busy",
                    transient: Some(format!("{why}; retry later")),
                    why,
                }
            }
            Err(e) => Started::Stop {
                delivery: "untracked",
                why: "the state table could not be read: nothing done".into(),
                transient: Some(e),
            },
        }
    }

    /// Carries out a plan for a delivery that [`Aws::begin`] let through.
    /// `until`: the invocation's own deadline less the reserve for the
    /// notification; the actions stop at it or at `ACTIONS_DEADLINE_SECONDS`,
    /// whichever comes first.
    pub async fn execute_started(
        &self,
        plan: &Plan,
        config: &Config,
        started: Started,
        now: i64,
        until: Option<std::time::Instant>,
    ) -> IncidentReport {
        let lease = config.actions_deadline + Duration::from_secs(60);
        let id = plan.incident.id.as_str();
        let delivery = match started {
            Started::Go(d) => d,
            Started::Stop {
                delivery,
                why,
                transient,
            } => return not_again(plan, delivery, &why, transient),
        };
        if plan.actions.is_empty() {
            // Began, then found nothing to do: close it rather than leave a lease.
            let mut r = plan.report_with(Vec::new());
            r.delivery = "nothing to do";
            if let Some(st) = &self.state {
                let stored = serde_json::to_string(&r).unwrap_or_default();
                if let Err(e) = st.complete_incident(id, &stored).await {
                    r.transient_error = Some(e);
                }
            }
            return r;
        }
        let plan = plan.clone();
        // The flap guard counts this occurrence once, when its first change
        // is about to be made, in the same round trip as that change's
        // cooldown and the breaker; only a first delivery counts.
        let flap = self.flap_check(&plan, config, now, delivery == "first");
        let mut deadline = Instant::now() + config.actions_deadline;
        let mut invocation = false;
        if let Some(u) = until.map(Instant::from_std)
            && u < deadline
        {
            deadline = u;
            invocation = true;
        }
        let (notify, work): (Vec<&PlannedAction>, Vec<&PlannedAction>) = plan
            .actions
            .iter()
            .partition(|a| a.name == ActionName::Notify);
        let mut transient: Option<String> = None;
        let mut reports: Vec<ActionReport> = Vec::new();
        // The notification is claimed beside the first stage, not after the last.
        let claim_notify = join_all(notify.iter().map(|a| async {
            match &a.decision {
                Decision::Do(Step::Notify { .. }) => Some(self.claim(a, id, now, lease).await),
                _ => None,
            }
        }));
        let mut notify_claims = None;
        let mut claim_notify = Some(claim_notify);
        // Each action's outcome is written as soon as it ends, in the
        // background: the stage and the notification do not wait for it, the
        // completion does.
        let mut recording: Vec<Recording> = Vec::new();
        // Stages in order, the actions of one stage concurrently; a later
        // stage sees what the earlier ones reported (disk usage after cleanup).
        let stages = work.iter().map(|a| a.stage).max().map_or(0, |m| m + 1);
        for stage in 0..stages {
            let earlier = reports.clone();
            let stage_work = join_all(work.iter().filter(|a| a.stage == stage).map(|a| {
                let clock = Clock {
                    deadline,
                    invocation,
                    now,
                    lease,
                    fresh: delivery == "first",
                };
                self.carry_out(a, &plan.incident, config, clock, &earlier, &flap)
            }));
            let done = match claim_notify.take() {
                Some(c) => {
                    let (claims, done) = tokio::join!(c, stage_work);
                    notify_claims = Some(claims);
                    done
                }
                None => stage_work.await,
            };
            for (r, t, rec) in done {
                reports.push(r);
                transient = transient.or(t);
                recording.extend(rec);
            }
        }
        let claims = match (notify_claims, claim_notify) {
            (Some(c), _) => c,
            (None, Some(c)) => c.await,
            (None, None) => Vec::new(),
        };
        // The notification goes out while the last stage's outcomes are written.
        let publish = async {
            let mut sent = Vec::new();
            let mut out = Vec::new();
            let mut t_notify = None;
            for (a, claim) in notify.iter().zip(claims) {
                let report = match (&a.decision, claim) {
                    (Decision::Do(Step::Notify { topic_arn }), Some(Ok(_))) => {
                        // An orphaned notification is sent again: a duplicate
                        // message is better than none.
                        let n = compose(&plan, &reports);
                        let started = Instant::now();
                        let outcome = self
                            .publish(topic_arn, &plan.incident, &n)
                            .instrument(info_span!("action", action = "notify"))
                            .await;
                        let r = to_report(a, outcome.clone(), started);
                        sent.extend(self.record_soon(a, id, &outcome));
                        r
                    }
                    (_, Some(Err((early, t)))) => {
                        t_notify = t_notify.or(t);
                        early
                    }
                    _ => decided_without_aws(a),
                };
                log_action(id, &report);
                out.push(report);
            }
            (out, sent, t_notify)
        };
        let ((notified, notify_records, t_notify), recorded) =
            tokio::join!(publish, finish_recording(recording));
        transient = transient.or(recorded).or(t_notify);
        reports.extend(notified);
        let mut report = plan.report_with(reports);
        if let Some(why) = flap_note(&flap) {
            report.notes.push(why);
        }
        report.delivery = delivery;
        // The notification's record and the completion together: if the
        // record is lost, the completion still stops a redelivery.
        let records = finish_recording(notify_records);
        let end = async {
            let st = self.state.as_ref()?;
            let stored = serde_json::to_string(&report).unwrap_or_default();
            Some(match &transient {
                None => st.complete_incident(id, &stored).await,
                Some(_) => st.release_incident(id).await,
            })
        };
        let (recorded, ended) = tokio::join!(records, end);
        transient = transient.or(recorded);
        if let Some(Err(e)) = ended {
            transient = transient.or(Some(e));
        }
        report.transient_error = transient;
        report
    }

    /// One alarm may trigger remediation at most `flap_max` times a window.
    /// Lazy and shared: counted once, by the first change that asks, and
    /// never when no change is made. Some(why) stops the changes.
    fn flap_check<'a>(
        &'a self,
        plan: &Plan,
        config: &'a Config,
        now: i64,
        first: bool,
    ) -> FlapCheck<'a> {
        let alarm = plan
            .incident
            .alert
            .occurrence
            .split('\n')
            .next()
            .unwrap_or_default()
            .to_owned();
        let name = plan.incident.alert.alarm_name.clone();
        async move {
            let st = self.state.as_ref().filter(|_| first)?;
            match st
                .count_in_window(
                    &format!("flap#{alarm}"),
                    now,
                    config.flap_window,
                    config.flap_max,
                )
                .await
            {
                Ok(Ok(_)) => None,
                Ok(Err(max)) => Some(format!(
                    "flap guard: alarm {name} already triggered remediation {max} times within {} s: notify only",
                    config.flap_window.as_secs()
                )),
                Err(e) => Some(format!("flap guard could not be read ({e}): notify only")),
            }
        }
        .boxed()
        .shared()
    }

    /// Claims an action for this delivery. Err holds the report (and any
    /// transient error) when it must not be done here.
    async fn claim(
        &self,
        a: &PlannedAction,
        incident: &str,
        now: i64,
        lease: Duration,
    ) -> Result<Option<String>, (ActionReport, Option<String>)> {
        let Some(st) = &self.state else {
            return Ok(None);
        };
        let intent = match &a.decision {
            Decision::Do(step) => step.intent(),
            _ => String::new(),
        };
        match st
            .claim_action(incident, &action_key(a), now, lease, &intent)
            .await
        {
            Ok(Claim::Mine) => Ok(None),
            Ok(Claim::Orphaned { intent }) => Ok(Some(intent)),
            Ok(Claim::Recorded(rec)) => {
                let mut r = ActionReport::new(a.name, &a.target, rec.status, &a.reason);
                let text = format!("in an earlier delivery: {}", rec.detail);
                if rec.status == Status::Done {
                    r.detail = Some(text)
                } else {
                    r.reason = text
                }
                r.ids = rec.ids;
                Err((r, None))
            }
            // Only a delivery that holds the incident gets here, so another
            // delivery is still inside its lease on this action: leave it.
            Ok(Claim::Busy) => Err((
                ActionReport::new(
                    a.name,
                    &a.target,
                    Status::Failed,
                    "another delivery is still carrying this out: not repeated; check it by hand",
                ),
                None,
            )),
            Err(e) => Err((
                ActionReport::new(
                    a.name,
                    &a.target,
                    Status::Failed,
                    format!("state table: {e}"),
                ),
                Some(e),
            )),
        }
    }

    /// Starts recording what came of an action at once, in the background
    /// (see [`Recording`]).
    fn record_soon(&self, a: &PlannedAction, incident: &str, o: &Outcome) -> Option<Recording> {
        let st = self.state.clone()?;
        let (incident, key) = (incident.to_owned(), action_key(a));
        let o = o.clone();
        let write = async move { record_with(&st, &incident, &key, &o).await };
        Some(tokio::spawn(write.in_current_span()))
    }

    /// Carries out one action: claim, limits, the call. Returns its report,
    /// any transient error, and the outcome still to be recorded (the
    /// caller writes it while the next stage runs).
    async fn carry_out(
        &self,
        a: &PlannedAction,
        incident: &Incident,
        config: &Config,
        clock: Clock,
        earlier: &[ActionReport],
        flap: &FlapCheck<'_>,
    ) -> (ActionReport, Option<String>, Option<Recording>) {
        let Clock {
            deadline,
            invocation,
            now,
            lease,
            fresh,
        } = clock;
        let step = match &a.decision {
            Decision::Do(step) => step,
            _ => {
                let r = decided_without_aws(a);
                log_action(&incident.id, &r);
                return (r, None, None);
            }
        };
        if config.dry_run && step.is_mutating() {
            let r = ActionReport::new(
                a.name,
                &a.target,
                Status::Skipped,
                format!("dry run: would {} ({})", step.describe(), a.reason),
            );
            log_action(&incident.id, &r);
            return (r, None, None);
        }
        let work = |resume: Option<String>| {
            let span = info_span!("action", action = a.name.as_str(), target = %a.target);
            async move {
                let work = self.perform(step, incident, config, earlier, resume.as_deref());
                match timeout_at(deadline, work).instrument(span).await {
                    Ok(o) => o,
                    Err(_) if invocation => Outcome::uncertain(
                        "did not finish before the invocation's deadline, less the time kept for this notification (it may still complete in AWS)",
                    ),
                    Err(_) => Outcome::uncertain(format!(
                        "did not finish within the {} s actions deadline (it may still complete in AWS)",
                        config.actions_deadline.as_secs()
                    )),
                }
            }
        };
        let started = Instant::now();
        let mut cooldown = None;
        let mut transient = None;
        let outcome = if fresh && !step.is_mutating() {
            // A first delivery holds no claim from anyone, and a read-only
            // action is harmless to repeat: claimed while it runs, one round
            // trip less. A claim that fails still fails the delivery.
            let (claim, outcome) =
                tokio::join!(self.claim(a, &incident.id, now, lease), work(None));
            match claim {
                Ok(_) => outcome,
                Err((r, None)) => {
                    log_action(&incident.id, &r);
                    return (r, None, None);
                }
                Err((_, t)) => {
                    transient = t;
                    outcome
                }
            }
        } else {
            let (claim, limited) = if fresh {
                // A first delivery's claim is all but certain (no earlier
                // delivery wrote one): the limits are taken beside it.
                tokio::join!(
                    self.claim(a, &incident.id, now, lease),
                    self.limits(step, config, now, &incident.id, flap, &mut cooldown)
                )
            } else {
                match self.claim(a, &incident.id, now, lease).await {
                    Ok(o) => {
                        let limited = if step.is_mutating() {
                            self.limits(step, config, now, &incident.id, flap, &mut cooldown)
                                .await
                        } else {
                            None
                        };
                        (Ok(o), limited)
                    }
                    Err(e) => (Err(e), None),
                }
            };
            let orphaned = match claim {
                Ok(o) => o,
                Err((r, t)) => {
                    if let (Some(st), Some((action, resource))) = (&self.state, &cooldown) {
                        // Not ours to do after all: the cooldown goes back.
                        let _ = st.release_cooldown(action, resource).await;
                    }
                    log_action(&incident.id, &r);
                    return (r, t, None);
                }
            };
            if orphaned.is_some()
                && matches!(step, Step::RestartService { .. } | Step::Reboot { .. })
            {
                // Nothing in AWS tells whether a restart or reboot happened, and
                // doing either twice is not harmless: recorded so no later
                // delivery repeats it either, and reported for a person.
                let why = "started by an earlier delivery that stopped before recording its outcome: not repeated; check it by hand";
                let r = ActionReport::new(a.name, &a.target, Status::Failed, why);
                log_action(&incident.id, &r);
                let rec = self.record_soon(a, &incident.id, &Outcome::skipped(why));
                return (r, None, rec);
            }
            match limited {
                Some(o) => o,
                None => work(orphaned).await,
            }
        };
        if outcome.status == Status::Failed
            && !outcome.uncertain
            && let (Some(st), Some((action, resource))) = (&self.state, &cooldown)
        {
            // (a rate-limited or refused change is Skipped and keeps it)
            // Failed and surely not made: give the cooldown back so a retry
            // may act. A change that may have been made keeps it.
            let _ = st.release_cooldown(action, resource).await;
        }
        // A read that failed may simply be read again.
        let mut outcome = outcome;
        outcome.uncertain &= step.is_mutating();
        let r = to_report(a, outcome.clone(), started);
        log_action(&incident.id, &r);
        // Without a claim there is nothing to record the outcome against.
        let rec = match transient {
            None => self.record_soon(a, &incident.id, &outcome),
            Some(_) => None,
        };
        (r, transient, rec)
    }

    /// Cooldown, flap guard and circuit breaker. Some(outcome) when a limit stops
    /// the action; `taken` learns the cooldown this action holds.
    async fn limits(
        &self,
        step: &Step,
        config: &Config,
        now: i64,
        owner: &str,
        flap: &FlapCheck<'_>,
        taken: &mut Option<(&'static str, String)>,
    ) -> Option<Outcome> {
        // Without a state table there is nothing to count against. Evidence
        // (a snapshot) changes nothing of the fleet: no cooldown, flap guard
        // or breaker; its own cap per incident is the planner's.
        let st = self.state.as_ref()?;
        if step.is_evidence() {
            return None;
        }
        // The cooldown and the breaker in one round trip. A change its
        // cooldown refuses may then count once against the breaker: the
        // breaker errs on the side of stopping sooner.
        let cooldown = step.cooldown(config);
        let cool = async {
            match &cooldown {
                Some((action, resource, period)) => Some(
                    st.take_cooldown(action, resource, now, *period, owner)
                        .await,
                ),
                None => None,
            }
        };
        let breaker = st.count_in_window(
            "breaker",
            now,
            Duration::from_secs(3600),
            config.max_mutations_per_hour,
        );
        let (cool, breaker, flapping) = tokio::join!(cool, breaker, flap.clone());
        if let (Some((action, resource, _)), Some(result)) = (&cooldown, cool) {
            match result {
                Ok(Ok(())) => *taken = Some((*action, resource.clone())),
                Ok(Err(until)) => {
                    return Some(Outcome::skipped(format!(
                        "cooldown: {action} of {resource} was done recently; not again until {}",
                        rfc3339(until)
                    )));
                }
                Err(e) => return Some(Outcome::failed(format!("state table: {e}"))),
            }
        }
        if let Some(why) = flapping {
            if let Some((action, resource)) = taken.take() {
                let _ = st.release_cooldown(action, &resource).await;
            }
            return Some(Outcome::skipped(why));
        }
        match breaker {
            Ok(Ok(_)) => None,
            Ok(Err(max)) => {
                if let Some((action, resource)) = taken.take() {
                    let _ = st.release_cooldown(action, &resource).await;
                }
                Some(Outcome::skipped(format!(
                    "circuit breaker open: {max} changes in the last hour across all incidents; notify only"
                )))
            }
            Err(e) => Some(Outcome::failed(format!("state table: {e}"))),
        }
    }

    async fn perform(
        &self,
        step: &Step,
        incident: &Incident,
        config: &Config,
        earlier: &[ActionReport],
        // What an earlier delivery that died meant to do, when it claimed
        // this action first: AWS is checked before anything is repeated.
        resume: Option<&str>,
    ) -> Outcome {
        let id = &incident.id;
        let wait = config.diagnostics_timeout;
        match step {
            Step::Snapshot {
                instance,
                volumes,
                exclude_boot,
                exclude,
            } => {
                if resume.is_some() {
                    let found = self.find_instance_snapshots(&incident.id, instance).await;
                    if !found.is_empty() {
                        return snapshots_taken(
                            volumes,
                            &found,
                            "taken by an earlier delivery that stopped before recording it (found by their tags)",
                        );
                    }
                }
                self.snapshot_instance(incident, instance, volumes, *exclude_boot, exclude)
                    .await
            }
            Step::CollectDiagnostics { instance, set } => {
                let cmds = match set {
                    Diagnostics::Cpu => HIGH_CPU_DIAGNOSTICS,
                    Diagnostics::Memory => commands::MEMORY_DIAGNOSTICS,
                };
                run_command(
                    &self.ssm,
                    instance,
                    cmds.iter().map(|c| (*c).to_owned()).collect(),
                    &format!("first-responder diagnostics for {id}"),
                    wait,
                    self.poll,
                )
                .await
            }
            Step::CollectEvidence { instance, console } => self.evidence(instance, *console).await,
            Step::CleanupTemp { instance, days } => {
                let o = run_command(
                    &self.ssm,
                    instance,
                    commands::cleanup_temp(*days),
                    &format!("first-responder cleanup_temp for {id}"),
                    wait,
                    self.poll,
                )
                .await;
                freed(o, "under /tmp and /var/tmp")
            }
            Step::ArchiveLogs {
                instance,
                days,
                bucket,
            } => {
                let o = run_command(
                    &self.ssm,
                    instance,
                    commands::archive_logs(*days, bucket.as_deref(), instance, id),
                    &format!("first-responder archive_logs for {id}"),
                    wait,
                    self.poll,
                )
                .await;
                freed(o, "by compressing rotated logs under /var/log")
            }
            Step::ExpandVolume(e) => {
                let intended = resume.and_then(intended_size);
                self.expand(e, incident, config, earlier, intended).await
            }
            Step::RestartService { instance, service } => {
                let o = run_command(
                    &self.ssm,
                    instance,
                    commands::restart_service(service),
                    &format!("first-responder restart_service for {id}"),
                    wait,
                    self.poll,
                )
                .await;
                if o.status != Status::Done {
                    return o;
                }
                let mut r = match o.output.as_deref().and_then(|out| marker(out, "active")) {
                    Some("active") => {
                        Outcome::done(format!("restarted {service}: active again"), o.ids.clone())
                    }
                    Some(state) => Outcome::uncertain(format!(
                        "restarted {service}, but it is {state}: look at it now"
                    )),
                    None => Outcome::done(
                        format!(
                            "restart of {service} succeeded; the instance did not report the unit's state"
                        ),
                        o.ids.clone(),
                    ),
                };
                r.ids = o.ids;
                r.output = o.output;
                r
            }
            Step::ReplaceInstance { instance, group } => {
                if resume.is_some()
                    && let Ok(health) = self.health_of(instance).await
                    && health.eq_ignore_ascii_case("unhealthy")
                {
                    return Outcome::done(
                        format!(
                            "{instance} was marked Unhealthy by an earlier delivery that stopped before recording it"
                        ),
                        Vec::new(),
                    );
                }
                let result = self
                    .autoscaling
                    .set_instance_health()
                    .instance_id(instance.as_str())
                    .health_status("Unhealthy")
                    // The service is down already: replace it now.
                    .should_respect_grace_period(false)
                    .send()
                    .await;
                match result {
                    Ok(_) => Outcome::done(
                        format!("{instance} marked Unhealthy: {group} replaces it"),
                        Vec::new(),
                    ),
                    Err(e) => Outcome::failed_call(&format!("SetInstanceHealth of {instance}"), &e),
                }
            }
            Step::Reboot { instance } => {
                // Not idempotent (a repeat reboots again): no SDK retries.
                let rebooted = once(|| {
                    self.ec2
                        .reboot_instances()
                        .instance_ids(instance.as_str())
                        .customize()
                        .config_override(
                            aws_sdk_ec2::config::Builder::default()
                                .retry_config(RetryConfig::disabled()),
                        )
                        .send()
                })
                .await;
                match rebooted {
                    Ok(_) => Outcome::done(format!("reboot of {instance} requested"), Vec::new()),
                    Err(e) => Outcome::failed_call(&format!("RebootInstances of {instance}"), &e),
                }
            }
            Step::ScaleOut {
                group,
                from,
                to,
                max,
            } => {
                if let Some(intended) = resume.and_then(intended_size)
                    && let Ok(Some(g)) = self.group_named(group).await
                    && g.desired >= intended
                {
                    return Outcome::done(
                        format!(
                            "desired capacity of {group} is already {} (an earlier delivery meant {intended} and stopped before recording it)",
                            g.desired
                        ),
                        Vec::new(),
                    );
                }
                self.scale_out(group, *from, *to, *max).await
            }
            Step::Notify { .. } => {
                Outcome::failed("the notification is sent after the other actions")
            }
        }
    }

    /// Every listed volume of the instance at one instant, with one
    /// `CreateSnapshots` (crash-consistent across the volumes; IAM scopes it
    /// by the instance's opt-in tag). No client token, so no SDK retries:
    /// after an error the snapshots are looked up by their tags first.
    async fn snapshot_instance(
        &self,
        incident: &Incident,
        instance: &InstanceId,
        volumes: &[(VolumeId, Option<String>)],
        exclude_boot: bool,
        exclude: &[VolumeId],
    ) -> Outcome {
        use aws_sdk_ec2::types::InstanceSpecification;
        let alarm = &incident.alert.alarm_name;
        let tag = |k: &str, v: &str| Tag::builder().key(k).value(printable(v, 256)).build();
        let description = printable(
            &format!(
                "first-responder evidence for {}: alarm {alarm} on {instance}",
                incident.id
            ),
            255,
        );
        let spec = InstanceSpecification::builder()
            .instance_id(instance.as_str())
            .exclude_boot_volume(exclude_boot)
            .set_exclude_data_volume_ids(
                (!exclude.is_empty()).then(|| exclude.iter().map(|v| v.to_string()).collect()),
            )
            .build();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let result = self
                .ec2
                .create_snapshots()
                .instance_specification(spec.clone())
                .description(description.clone())
                .tag_specifications(
                    TagSpecification::builder()
                        .resource_type(ResourceType::Snapshot)
                        .tags(tag(TAG_INCIDENT, &incident.id))
                        .tags(tag(TAG_ALARM, alarm))
                        .tags(tag(TAG_INSTANCE, instance.as_str()))
                        .tags(tag(TAG_CREATED_BY, CREATED_BY))
                        .tags(tag(TAG_PURPOSE, "evidence"))
                        .tags(tag("Name", &format!("{} {instance}", incident.id)))
                        .build(),
                )
                .customize()
                .config_override(
                    aws_sdk_ec2::config::Builder::default().retry_config(RetryConfig::disabled()),
                )
                .send()
                .await;
            let e = match result {
                Ok(out) => {
                    let taken: Vec<(String, String)> = out
                        .snapshots()
                        .iter()
                        .filter_map(|s| {
                            Some((s.volume_id()?.to_owned(), s.snapshot_id()?.to_owned()))
                        })
                        .collect();
                    return if taken.is_empty() {
                        Outcome::failed("CreateSnapshots answered without a snapshot")
                    } else {
                        snapshots_taken(volumes, &taken, "")
                    };
                }
                Err(e) => e,
            };
            let found = self.find_instance_snapshots(&incident.id, instance).await;
            if !found.is_empty() {
                return snapshots_taken(
                    volumes,
                    &found,
                    "the answer to CreateSnapshots was lost, the snapshots found by their tags",
                );
            }
            if attempt >= 3 || !transient(&e) {
                return Outcome::failed(format!(
                    "CreateSnapshots of {instance}: {} (attempt {attempt})",
                    sdk_error(&e)
                ));
            }
            sleep(Duration::from_millis(200 << attempt)).await;
        }
    }

    /// The evidence snapshots this incident took of this instance:
    /// (volume, snapshot) pairs.
    async fn find_instance_snapshots(
        &self,
        incident_id: &str,
        instance: &InstanceId,
    ) -> Vec<(String, String)> {
        let filter = |k: &str, v: &str| Filter::builder().name(k).values(v).build();
        let Ok(out) = self
            .ec2
            .describe_snapshots()
            .owner_ids("self")
            .filters(filter(&format!("tag:{TAG_INCIDENT}"), incident_id))
            .filters(filter(&format!("tag:{TAG_INSTANCE}"), instance.as_str()))
            .filters(filter(&format!("tag:{TAG_PURPOSE}"), "evidence"))
            .send()
            .await
        else {
            return Vec::new();
        };
        out.snapshots()
            .iter()
            .filter_map(|s| Some((s.volume_id()?.to_owned(), s.snapshot_id()?.to_owned())))
            .collect()
    }

    async fn snapshot(
        &self,
        incident: &Incident,
        instance: &InstanceId,
        volume: &VolumeId,
        device: Option<&str>,
        purpose: &str,
    ) -> Outcome {
        let alarm = &incident.alert.alarm_name;
        let tag = |k: &str, v: &str| Tag::builder().key(k).value(printable(v, 256)).build();
        let description = printable(
            &format!(
                "first-responder {purpose} for {}: alarm {alarm} on {instance} ({})",
                incident.id,
                device.unwrap_or("unknown device")
            ),
            255,
        );
        // CreateSnapshot takes no client token: a retry after a lost answer
        // would take a second snapshot. So the SDK does not retry it; this
        // loop does, and looks for the snapshot by its tags first.
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let result = self
                .ec2
                .create_snapshot()
                .volume_id(volume.as_str())
                .description(description.clone())
                .tag_specifications(
                    TagSpecification::builder()
                        .resource_type(ResourceType::Snapshot)
                        .tags(tag(TAG_INCIDENT, &incident.id))
                        .tags(tag(TAG_ALARM, alarm))
                        .tags(tag(TAG_INSTANCE, instance.as_str()))
                        .tags(tag(TAG_CREATED_BY, CREATED_BY))
                        .tags(tag(TAG_PURPOSE, purpose))
                        .tags(tag("Name", &format!("{} {volume}", incident.id)))
                        .build(),
                )
                .customize()
                .config_override(
                    aws_sdk_ec2::config::Builder::default().retry_config(RetryConfig::disabled()),
                )
                .send()
                .await;
            let e = match result {
                Ok(out) => {
                    return match out.snapshot_id() {
                        Some(id) => Outcome::done(
                            format!("{id} of {volume} ({})", device.unwrap_or("?")),
                            vec![id.to_owned()],
                        ),
                        None => Outcome::failed("CreateSnapshot answered without a snapshot id"),
                    };
                }
                Err(e) => e,
            };
            if let Some(id) = self.find_snapshot(&incident.id, volume, purpose).await {
                return Outcome::done(
                    format!(
                        "{id} of {volume} ({}); the answer to CreateSnapshot was lost, the snapshot found by its tags",
                        device.unwrap_or("?")
                    ),
                    vec![id],
                );
            }
            if attempt >= 3 || !transient(&e) {
                return Outcome::failed(format!(
                    "CreateSnapshot of {volume}: {} (attempt {attempt})",
                    sdk_error(&e)
                ));
            }
            sleep(Duration::from_millis(200 << attempt)).await;
        }
    }

    /// Status checks and the latest console output of an instance.
    async fn evidence(&self, instance: &InstanceId, with_console: bool) -> Outcome {
        let (status, console) = tokio::join!(
            self.ec2
                .describe_instance_status()
                .instance_ids(instance.as_str())
                .include_all_instances(true)
                .send(),
            async {
                match with_console {
                    true => Some(
                        self.ec2
                            .get_console_output()
                            .instance_id(instance.as_str())
                            .latest(true)
                            .send()
                            .await,
                    ),
                    false => None,
                }
            },
        );
        let mut text = String::new();
        let mut failures = Vec::new();
        match status {
            Ok(out) => match out.instance_statuses().first() {
                Some(st) => {
                    let state = st
                        .instance_state()
                        .and_then(|s| s.name())
                        .map_or("?", |n| n.as_str());
                    let check = |s: Option<&aws_sdk_ec2::types::InstanceStatusSummary>| {
                        s.and_then(|s| s.status())
                            .map_or("?".to_owned(), |x| x.as_str().to_owned())
                    };
                    text.push_str(&format!(
                        "== status checks ==\nstate {state}; system {}; instance {}\n",
                        check(st.system_status()),
                        check(st.instance_status())
                    ));
                    for ev in st.events() {
                        text.push_str(&format!(
                            "scheduled event: {} {}\n",
                            ev.code().map_or("?", |c| c.as_str()),
                            ev.description().unwrap_or_default()
                        ));
                    }
                }
                None => text.push_str("== status checks ==\nnone reported\n"),
            },
            Err(e) => failures.push(format!("DescribeInstanceStatus: {}", sdk_error(&e))),
        }
        match console {
            None => text.push_str(
                "== console output ==\nnot read: the instance does not carry the opt-in tag, and the IAM policy allows GetConsoleOutput on opted-in instances only\n",
            ),
            Some(Ok(out)) => {
                let raw = out.output().unwrap_or_default();
                let decoded =
                    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, raw.trim())
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_else(|_| raw.to_owned());
                let lines: Vec<&str> = decoded.lines().collect();
                let tail = &lines[lines.len().saturating_sub(40)..];
                text.push_str("== console output (last 40 lines) ==\n");
                for l in tail {
                    text.push_str(&printable(l, 200));
                    text.push('\n');
                }
            }
            Some(Err(e)) => failures.push(format!("GetConsoleOutput: {}", sdk_error(&e))),
        }
        let mut o = if failures.is_empty() {
            Outcome::done("status checks and console output collected", Vec::new())
        } else if text.is_empty() {
            Outcome::failed(failures.join("; "))
        } else {
            Outcome::done(
                format!("partly collected ({})", failures.join("; ")),
                Vec::new(),
            )
        };
        o.output = Some(text);
        o
    }

    /// Snapshot, grow the volume, wait until EBS is optimizing, then grow the
    /// partition and filesystem on the instance. Each stop says what was
    /// done before it, so nothing is half-done without saying so.
    async fn expand(
        &self,
        e: &Expansion,
        incident: &Incident,
        config: &Config,
        earlier: &[ActionReport],
        intended: Option<i32>,
    ) -> Outcome {
        let vol = &e.volume;
        // An earlier delivery that died may have modified the volume already:
        // then only the wait and the filesystem are left to do.
        let resumed = match intended {
            Some(n) if self.modified_to(vol, n).await => Some(n),
            _ => None,
        };
        let (snap_id, usage_text, to) = match resumed {
            Some(n) => {
                let snap = self
                    .find_snapshot(&incident.id, vol, "before expand_volume")
                    .await
                    .unwrap_or_else(|| "?".into());
                (
                    snap,
                    format!("an earlier delivery had already asked EBS for {n} GiB and stopped"),
                    n,
                )
            }
            None => match self
                .expand_start(e, incident, earlier, intended.is_some())
                .await
            {
                Ok((snap, usage, other)) => (snap, usage, other.unwrap_or(e.to_gib)),
                Err(o) => return o,
            },
        };
        let mut ids = vec![snap_id.clone()];
        // 4. Until the new size is usable (optimizing or completed).
        let wait_until = Instant::now() + e.modification_wait;
        let mut delay = self.poll.first;
        let state = loop {
            let read = self
                .ec2
                .describe_volumes_modifications()
                .volume_ids(vol.as_str())
                .send()
                .await;
            let st = match read {
                Ok(out) => out
                    .volumes_modifications()
                    .iter()
                    .filter(|m| m.target_size() == Some(to))
                    .max_by_key(|m| m.start_time().map(|t| t.secs()))
                    .map(|m| {
                        (
                            m.modification_state().cloned(),
                            m.status_message().map(ToOwned::to_owned),
                        )
                    }),
                Err(err) => Some((None, Some(sdk_error(&err)))),
            };
            match st {
                Some((
                    Some(VolumeModificationState::Optimizing | VolumeModificationState::Completed),
                    _,
                )) => {
                    break Ok(());
                }
                Some((Some(VolumeModificationState::Failed), msg)) => {
                    break Err(format!(
                        "the modification of {vol} failed ({}); snapshot {snap_id} was taken",
                        msg.unwrap_or_default()
                    ));
                }
                _ => {}
            }
            if Instant::now() >= wait_until {
                break Err(format!(
                    "{vol} is being modified to {} GiB but was not optimizing within {} s: the filesystem was not grown; grow it by hand once it is (snapshot {snap_id})",
                    to,
                    e.modification_wait.as_secs()
                ));
            }
            sleep(delay.min(wait_until - Instant::now())).await;
            delay = (delay * 2).min(self.poll.max);
        };
        if let Err(why) = state {
            // The volume was (or is being) modified: a change was made.
            let mut o = Outcome::uncertain(why);
            o.ids = ids;
            return o;
        }
        // 5. The partition and filesystem.
        let grown = run_command(
            &self.ssm,
            &e.instance,
            commands::grow_filesystem(vol, e.xen_letters.as_deref(), to),
            &format!("first-responder expand_volume for {}", incident.id),
            // The script waits up to 60 s for the kernel to see the new size.
            config.diagnostics_timeout + Duration::from_secs(60),
            self.poll,
        )
        .await;
        ids.extend(grown.ids.iter().cloned());
        let size_text = if to == e.from_gib {
            format!("{vol} is {to} GiB")
        } else {
            format!("{vol} grown {} -> {to} GiB", e.from_gib)
        };
        let sized = format!(
            "{size_text} ({}; usage was {usage_text}; snapshot {snap_id} first)",
            e.how
        );
        let out = grown.output.clone().unwrap_or_default();
        let mut o = match grown.status {
            Status::Done => {
                let df = e
                    .mount
                    .as_deref()
                    .or_else(|| marker(&out, "mount"))
                    .and_then(|m| df_usage(&out, m).map(|u| format!("{m} is now {u:.0}% used")));
                Outcome::done(
                    match df {
                        Some(d) => format!("{sized}; partition and filesystem grown, {d}"),
                        None => format!(
                            "{sized}; partition and filesystem grown; the instance reported no df output to check"
                        ),
                    },
                    Vec::new(),
                )
            }
            _ => {
                let why = match (grown.exit_code, marker(&out, "error")) {
                    (_, Some(m)) => m.to_owned(),
                    (Some(commands::GROW_UNKNOWN_FS), _) => "unknown filesystem".into(),
                    _ => grown.detail.clone(),
                };
                let text = if why.starts_with("the volume is ") {
                    // The script said what to run by hand.
                    format!("{sized}; {why}")
                } else {
                    format!(
                        "{sized}, but the filesystem was NOT grown: {why}. The space is unusable until someone runs growpart and resize2fs/xfs_growfs by hand"
                    )
                };
                Outcome {
                    uncertain: true,
                    ..Outcome::failed(text)
                }
            }
        };
        o.ids = ids;
        o.output = grown.output;
        o
    }

    /// Steps 1 to 3 of [`Aws::expand`]: the usage check, the snapshot, the
    /// modification. Ok((snapshot id, how the usage was known)).
    async fn expand_start(
        &self,
        e: &Expansion,
        incident: &Incident,
        earlier: &[ActionReport],
        after_crash: bool,
    ) -> Result<(String, String, Option<i32>), Outcome> {
        let vol = &e.volume;
        // 1. Usage after the cleanup: df on the instance, else the alert's value.
        let measured = e.mount.as_deref().and_then(|m| {
            earlier
                .iter()
                .filter_map(|r| r.output.as_deref())
                .filter_map(|o| df_usage(o, m))
                .reduce(f64::min)
        });
        let usage = match (measured, e.alert_usage) {
            (Some(u), _) => (u, format!("{u:.0}% after the cleanup (df on the instance)")),
            (None, Some(u)) => (
                u,
                format!("{u:.1}% as alerted (the instance reported no usage after the cleanup)"),
            ),
            (None, None) => {
                return Err(Outcome::skipped(
                    "usage after the cleanup is unknown and the alert carried no value: not expanding blind",
                ));
            }
        };
        if usage.0 < e.expand_at {
            return Err(Outcome::skipped(format!(
                "usage is {}, below {}%: not expanded",
                usage.1, e.expand_at
            )));
        }
        // 2. The snapshot first (one an earlier delivery took counts).
        let found = if after_crash {
            self.find_snapshot(&incident.id, vol, "before expand_volume")
                .await
        } else {
            None
        };
        let snap_id = match found {
            Some(id) => id,
            None => {
                let snap = self
                    .snapshot(incident, &e.instance, vol, None, "before expand_volume")
                    .await;
                match snap
                    .ids
                    .first()
                    .cloned()
                    .filter(|_| snap.status == Status::Done)
                {
                    Some(id) => id,
                    None => {
                        return Err(Outcome::failed(format!(
                            "snapshot before expanding failed ({}): {vol} was not touched",
                            snap.detail
                        )));
                    }
                }
            }
        };
        // 3. The volume, to an absolute size: a repeat cannot grow it twice,
        // but the SDK does not retry it blindly either (a lost answer is
        // checked against the volume's modifications instead).
        let modified = once(|| {
            self.ec2
                .modify_volume()
                .volume_id(vol.as_str())
                .size(e.to_gib)
                .customize()
                .config_override(
                    aws_sdk_ec2::config::Builder::default().retry_config(RetryConfig::disabled()),
                )
                .send()
        })
        .await;
        let err = match modified {
            Ok(_) => return Ok((snap_id, usage.1, None)),
            Err(err) => err,
        };
        let why = sdk_error(&err);
        if err.code() == Some("IncorrectModificationState") {
            // Someone (or an earlier delivery) is modifying it already: wait
            // for that modification and grow the filesystem to its size.
            if let Some(target) = self.latest_modification(vol).await {
                return Ok((
                    snap_id,
                    format!(
                        "{}; {vol} was already being modified to {target} GiB ({why}): waited for that instead",
                        usage.1
                    ),
                    Some(target),
                ));
            }
        }
        if !refused(&err) && self.modified_to(vol, e.to_gib).await {
            return Ok((
                snap_id,
                format!(
                    "{}; the answer to ModifyVolume was lost ({why}), the modification found on {vol}",
                    usage.1
                ),
                None,
            ));
        }
        let mut o = if err.code() == Some("VolumeModificationRateExceeded") {
            Outcome::skipped(format!(
                "EBS will not modify {vol} again yet ({why}); snapshot {snap_id} was taken, nothing else changed"
            ))
        } else if refused(&err) {
            Outcome::failed(format!(
                "ModifyVolume of {vol} to {} GiB: {why}; snapshot {snap_id} was taken, nothing else changed",
                e.to_gib
            ))
        } else {
            Outcome::uncertain(format!(
                "ModifyVolume of {vol} to {} GiB: {why}; snapshot {snap_id} was taken",
                e.to_gib
            ))
        };
        o.ids = vec![snap_id];
        Err(o)
    }

    /// The target size of the volume's newest modification that is still
    /// under way or done (`modifying`, `optimizing`, `completed`).
    async fn latest_modification(&self, volume: &VolumeId) -> Option<i32> {
        let out = self
            .ec2
            .describe_volumes_modifications()
            .volume_ids(volume.as_str())
            .send()
            .await
            .ok()?;
        out.volumes_modifications()
            .iter()
            .filter(|m| {
                !matches!(
                    m.modification_state(),
                    Some(VolumeModificationState::Failed) | None
                )
            })
            .max_by_key(|m| m.start_time().map(|t| t.secs()))
            .and_then(|m| m.target_size())
    }

    /// Whether a modification of the volume to this size exists.
    async fn modified_to(&self, volume: &VolumeId, size: i32) -> bool {
        self.ec2
            .describe_volumes_modifications()
            .volume_ids(volume.as_str())
            .send()
            .await
            .is_ok_and(|out| {
                out.volumes_modifications()
                    .iter()
                    .any(|m| m.target_size() == Some(size))
            })
    }

    /// A snapshot of this volume that this incident took for this purpose.
    async fn find_snapshot(
        &self,
        incident_id: &str,
        volume: &VolumeId,
        purpose: &str,
    ) -> Option<String> {
        let filter = |k: &str, v: &str| Filter::builder().name(k).values(v).build();
        let out = self
            .ec2
            .describe_snapshots()
            .owner_ids("self")
            .filters(filter(&format!("tag:{TAG_INCIDENT}"), incident_id))
            .filters(filter(&format!("tag:{TAG_PURPOSE}"), purpose))
            .filters(filter("volume-id", volume.as_str()))
            .send()
            .await
            .ok()?;
        out.snapshots()
            .iter()
            .find_map(|s| s.snapshot_id().map(ToOwned::to_owned))
    }

    /// The health an Auto Scaling group holds for an instance.
    async fn health_of(&self, instance: &InstanceId) -> Result<String, String> {
        let out = self
            .autoscaling
            .describe_auto_scaling_instances()
            .instance_ids(instance.as_str())
            .send()
            .await
            .map_err(|e| format!("DescribeAutoScalingInstances: {}", sdk_error(&e)))?;
        out.auto_scaling_instances()
            .first()
            .and_then(|i| i.health_status())
            .map(ToOwned::to_owned)
            .ok_or_else(|| format!("{instance} is in no group"))
    }

    async fn scale_out(&self, group: &GroupName, from: i32, to: i32, max: i32) -> Outcome {
        let result = self
            .autoscaling
            .set_desired_capacity()
            .auto_scaling_group_name(group.as_str())
            .desired_capacity(to)
            // Act now: the group's own cooldown is for its policies, not for us.
            .honor_cooldown(false)
            .send()
            .await;
        match result {
            Ok(_) => Outcome::done(
                format!("desired capacity of {group} {from} -> {to} (MaxSize {max})"),
                Vec::new(),
            ),
            Err(e) => Outcome::failed_call(&format!("SetDesiredCapacity of {group} to {to}"), &e),
        }
    }

    async fn publish(&self, topic_arn: &str, incident: &Incident, n: &Notification) -> Outcome {
        let attr = |v: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
        };
        let (severity, kind, id) = match (
            attr(n.severity.as_str()),
            attr(incident.kind.as_str()),
            attr(&incident.id),
        ) {
            (Ok(s), Ok(k), Ok(i)) => (s, k, i),
            _ => return Outcome::failed("could not build the message attributes"),
        };
        let result = self
            .sns
            .publish()
            .topic_arn(topic_arn)
            .subject(&n.subject)
            .message(sns_message(n))
            .message_structure("json")
            .message_attributes("severity", severity)
            .message_attributes("kind", kind)
            .message_attributes("incident_id", id)
            .send()
            .await;
        match result {
            Ok(out) => {
                let id = out.message_id().unwrap_or_default().to_owned();
                Outcome::done(
                    format!("published {:?} (message {id})", n.subject),
                    vec![id],
                )
            }
            Err(e) => Outcome::failed(format!("Publish to {topic_arn}: {}", sdk_error(&e))),
        }
    }
}

/// The evidence snapshots as an outcome: one "snap of vol (device)" per
/// volume, in the plan's order.
fn snapshots_taken(
    volumes: &[(VolumeId, Option<String>)],
    taken: &[(String, String)],
    how: &str,
) -> Outcome {
    let mut parts = Vec::new();
    let mut ids = Vec::new();
    for (v, device) in volumes {
        if let Some((_, snap)) = taken.iter().find(|(vol, _)| vol == v.as_str()) {
            parts.push(format!(
                "{snap} of {v} ({})",
                device.as_deref().unwrap_or("?")
            ));
            ids.push(snap.clone());
        }
    }
    // Volumes attached since the plan was made are snapshotted too.
    for (vol, snap) in taken {
        if !ids.contains(snap) {
            parts.push(format!("{snap} of {vol}"));
            ids.push(snap.clone());
        }
    }
    let mut detail = parts.join(", ");
    if !how.is_empty() {
        detail.push_str(&format!("; {how}"));
    }
    Outcome::done(detail, ids)
}

/// A cleanup command's outcome, with the bytes it reported freeing.
fn freed(o: Outcome, where_: &str) -> Outcome {
    if o.status != Status::Done {
        return o;
    }
    let out = o.output.as_deref().unwrap_or_default();
    let bytes = marker(out, "freed_bytes").and_then(|b| b.parse::<u64>().ok());
    let mut detail = match bytes {
        Some(b) => format!("freed {} {where_}", human_bytes(b)),
        None => format!("command ran {where_}; the instance did not report the bytes freed"),
    };
    if let Some(n) = marker(out, "compressed_files") {
        detail.push_str(&format!(" ({n} files compressed)"));
    }
    if let Some(n) = marker(out, "kept_open_files").filter(|n| *n != "0") {
        detail.push_str(&format!(
            "; {n} old files kept because a process holds them open"
        ));
    }
    if marker(out, "open_check").is_some() {
        detail.push_str(
            "; nothing touched: the instance's /proc could not be read to tell which files are open",
        );
    }
    if let Some(url) = marker(out, "shipped") {
        detail.push_str(&format!("; shipped to {url}"));
    }
    if let Some(url) = marker(out, "ship_failed") {
        detail.push_str(&format!(
            "; shipping to {url} FAILED, the compressed files stay on the instance"
        ));
    }
    Outcome { detail, ..o }
}

type HttpResponse = aws_sdk_ec2::config::http::HttpResponse;

/// AWS answered with a 4xx, or refused the call for the request rate (EC2
/// says `RequestLimitExceeded` with a 503), or the request was never built:
/// the change was surely not made. A timeout, a lost or unreadable answer or
/// another 5xx may hide a change that was made.
fn refused<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    match e {
        SdkError::ConstructionFailure(_) => true,
        SdkError::ServiceError(se) => se.raw().status().is_client_error() || throttled(e),
        _ => false,
    }
}

/// Refused for the request rate: nothing was done, and trying again soon may work.
fn throttled<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    matches!(e, SdkError::ServiceError(_))
        && matches!(
            e.code(),
            Some(
                "RequestLimitExceeded"
                    | "Throttling"
                    | "ThrottlingException"
                    | "TooManyUpdates"
                    | "ThrottledException"
            )
        )
}

/// A call that must not be repeated blindly (the SDK's own retries are off
/// for it): tried again only when AWS refused it for the rate, which proves
/// it did nothing.
async fn once<T, E, F, Fut>(mut call: F) -> Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
{
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match call().await {
            Err(e) if attempt < 3 && throttled(&e) => {
                sleep(Duration::from_millis(200 << attempt)).await;
            }
            other => return other,
        }
    }
}

/// Whether a retry may help: no answer, a timeout, throttling or a 5xx.
fn transient<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(se) => {
            se.raw().status().is_server_error()
                || matches!(
                    se.err().code(),
                    Some(
                        "RequestLimitExceeded"
                            | "Throttling"
                            | "ThrottlingException"
                            | "InternalError"
                            | "ServiceUnavailable"
                            | "Unavailable"
                    )
                )
        }
        _ => false,
    }
}

/// The size an orphaned claim meant (`to=N`).
fn intended_size(intent: &str) -> Option<i32> {
    intent.strip_prefix("to=")?.parse().ok()
}

/// Whether [`Aws::begin`] let a delivery through.
#[derive(Clone, Debug, PartialEq)]
pub enum Started {
    /// first, resumed or untracked.
    Go(&'static str),
    /// duplicate, busy, or the table unreadable: nothing is done.
    Stop {
        delivery: &'static str,
        why: String,
        transient: Option<String>,
    },
}

/// An action's outcome on its way to the state table: started as soon as
/// the action ends, so a crash during a later, slower action still finds it
/// recorded, and awaited only before the incident is completed.
type Recording = tokio::task::JoinHandle<Option<String>>;

/// Waits for every recording; the first failure, if any.
async fn finish_recording(recording: Vec<Recording>) -> Option<String> {
    join_all(recording)
        .await
        .into_iter()
        .filter_map(|r| match r {
            Ok(failed) => failed,
            Err(e) => Some(format!("recording an outcome: {e}")),
        })
        .next()
}

/// Records what came of an action. Losing this write would leave the
/// outcome unknown to the next delivery, so it is tried three times (each
/// with the SDK's own retries); a failure after that is transient.
async fn record_with(st: &StateStore, incident: &str, key: &str, o: &Outcome) -> Option<String> {
    let mut last = None;
    for attempt in 0..3u32 {
        match st
            .finish_action(incident, key, o.status, o.uncertain, &o.detail, &o.ids)
            .await
        {
            Ok(()) => return None,
            Err(e) => last = Some(e),
        }
        sleep(Duration::from_millis(200 * u64::from(attempt + 1))).await;
    }
    last
}

/// The flap guard's verdict, shared by the actions of one delivery.
type FlapCheck<'a> = Shared<BoxFuture<'a, Option<String>>>;

/// What the flap guard said, if it was asked.
fn flap_note(flap: &FlapCheck<'_>) -> Option<String> {
    flap.peek().cloned().flatten()
}

/// When a delivery started, its lease, and the deadline of its actions.
#[derive(Clone, Copy)]
struct Clock {
    deadline: Instant,
    /// The deadline is the invocation's own (less the notification's reserve).
    invocation: bool,
    now: i64,
    lease: Duration,
    /// A first delivery: no earlier one can have claimed anything.
    fresh: bool,
}

fn action_key(a: &PlannedAction) -> String {
    format!("{}#{}", a.name.as_str(), a.target)
}

pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| t.to_string())
}

/// The report of a delivery that does nothing: every action skipped.
fn not_again(
    plan: &Plan,
    delivery: &'static str,
    why: &str,
    transient: Option<String>,
) -> IncidentReport {
    let actions = plan
        .actions
        .iter()
        .map(|a| ActionReport::new(a.name, &a.target, Status::Skipped, why))
        .collect();
    let mut r = plan.report_with(actions);
    r.delivery = delivery;
    r.notes.push(why.to_owned());
    r.transient_error = transient;
    r
}

fn decided_without_aws(a: &PlannedAction) -> ActionReport {
    match &a.decision {
        Decision::Skip(why) => ActionReport::new(a.name, &a.target, Status::Skipped, why),
        Decision::Fail(why) => ActionReport::new(a.name, &a.target, Status::Failed, why),
        Decision::Do(_) => ActionReport::new(a.name, &a.target, Status::Failed, "not carried out"),
    }
}

fn to_report(a: &PlannedAction, o: Outcome, started: Instant) -> ActionReport {
    let mut r = ActionReport::new(a.name, &a.target, o.status, &a.reason);
    if o.status == Status::Done {
        r.detail = Some(o.detail);
    } else {
        r.reason = o.detail;
    }
    r.ids = o.ids;
    r.output = o.output;
    let elapsed = started.elapsed();
    r.duration_ms = Some(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
    r.started_at = chrono::TimeDelta::from_std(elapsed)
        .ok()
        .map(|d| (chrono::Utc::now() - d).to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    r
}

fn log_action(incident_id: &str, r: &ActionReport) {
    // Actions that ran are X-Ray subsegments too (when the invocation is traced).
    if let Some(ms) = r.duration_ms {
        let end = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
        let annotations = std::collections::BTreeMap::from([
            ("incident_id", incident_id.to_owned()),
            ("target", r.target.clone()),
            ("status", r.status.as_str().to_owned()),
        ]);
        crate::xray::record_action(
            r.action.as_str(),
            end - ms as f64 / 1e3,
            end,
            &annotations,
            r.status == Status::Failed,
        );
    }
    let text = r.detail.as_deref().unwrap_or(&r.reason);
    if r.status == Status::Failed {
        warn!(incident_id, action = r.action.as_str(), target = %r.target, status = r.status.as_str(), ids = ?r.ids, duration_ms = r.duration_ms, "{text}");
    } else {
        info!(incident_id, action = r.action.as_str(), target = %r.target, status = r.status.as_str(), ids = ?r.ids, duration_ms = r.duration_ms, "{text}");
    }
}

/// Runs the fixed high-CPU diagnostics (see [`run_command`]).
pub async fn collect_diagnostics(
    ssm: &aws_sdk_ssm::Client,
    instance: &InstanceId,
    incident_id: &str,
    wait: Duration,
    poll: PollSchedule,
) -> Outcome {
    run_command(
        ssm,
        instance,
        HIGH_CPU_DIAGNOSTICS
            .iter()
            .map(|c| (*c).to_owned())
            .collect(),
        &format!("first-responder diagnostics for {incident_id}"),
        wait,
        poll,
    )
    .await
}

/// Runs fixed commands (from [`commands`]) on the instance through SSM Run
/// Command and waits for the output, at most `wait`. Nothing from the event
/// reaches them: the instance id is validated and passed as an API parameter.
pub async fn run_command(
    ssm: &aws_sdk_ssm::Client,
    instance: &InstanceId,
    commands: Vec<String>,
    comment: &str,
    wait: Duration,
    poll: PollSchedule,
) -> Outcome {
    let deadline = Instant::now() + wait;
    // SendCommand is not idempotent (a repeat runs the script twice): no
    // SDK retries, only a retry of a call refused for the rate.
    let sent = once(|| {
        ssm.send_command()
            .instance_ids(instance.as_str())
            .document_name(RUN_SHELL_DOCUMENT)
            .parameters("commands", commands.clone())
            // The command stops on the instance when we stop waiting for it.
            .parameters("executionTimeout", vec![wait.as_secs().max(1).to_string()])
            // Delivery timeout; SSM's minimum is 30 s.
            .timeout_seconds(i32::try_from(wait.as_secs().max(30)).unwrap_or(30))
            // SSM's limit for a comment is 100 characters.
            .comment(comment.chars().take(100).collect::<String>())
            .customize()
            .config_override(
                aws_sdk_ssm::config::Builder::default().retry_config(RetryConfig::disabled()),
            )
            .send()
    })
    .await;
    let command_id = match sent {
        Ok(out) => match out.command().and_then(|c| c.command_id()) {
            Some(id) => id.to_owned(),
            None => return Outcome::failed("SendCommand answered without a command id"),
        },
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_invalid_instance_id()) =>
        {
            return Outcome::skipped(format!(
                "{instance} is not managed by SSM or its agent is offline ({})",
                sdk_error(&e)
            ));
        }
        Err(e) => return Outcome::failed_call("SendCommand", &e),
    };
    // From here on the command was sent: whatever goes wrong, it may have run.
    let ids = vec![command_id.clone()];
    let mut delay = poll.first;
    let mut last = String::from("not yet registered");
    loop {
        let now = Instant::now();
        if now >= deadline {
            let mut o = Outcome::uncertain(format!(
                "no result from command {command_id} within {} s (last status: {last})",
                wait.as_secs()
            ));
            o.ids = ids;
            return o;
        }
        sleep(delay.min(deadline - now)).await;
        delay = (delay * 2).min(poll.max);
        let result = ssm
            .get_command_invocation()
            .command_id(&command_id)
            .instance_id(instance.as_str())
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            // Right after SendCommand the invocation is not registered yet.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_invocation_does_not_exist()) =>
            {
                continue;
            }
            Err(e) => {
                let mut o = Outcome::uncertain(format!(
                    "GetCommandInvocation of {command_id}: {}",
                    sdk_error(&e)
                ));
                o.ids = ids;
                return o;
            }
        };
        match out.status() {
            Some(CommandInvocationStatus::Success) => {
                let mut o = Outcome::done(format!("command {command_id} succeeded"), ids);
                o.output = Some(crate::commands::with_cut_note(
                    out.standard_output_content().unwrap_or_default(),
                ));
                o.exit_code = Some(out.response_code());
                return o;
            }
            Some(
                CommandInvocationStatus::Pending
                | CommandInvocationStatus::InProgress
                | CommandInvocationStatus::Delayed,
            )
            | None => {
                last = out
                    .status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_else(|| "unknown".into());
            }
            Some(other) => {
                let stderr = out.standard_error_content().unwrap_or_default();
                let mut o = Outcome::uncertain(format!(
                    "command {command_id} ended {} (exit code {}){}",
                    other.as_str(),
                    out.response_code(),
                    if stderr.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", printable(stderr.trim(), 500))
                    }
                ));
                o.ids = ids;
                o.output = out
                    .standard_output_content()
                    .map(crate::commands::with_cut_note);
                o.exit_code = Some(out.response_code());
                return o;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Error sequences moto cannot produce, through typed SDK mocks.
    use super::*;
    use aws_sdk_ssm::Client;
    use aws_sdk_ssm::operation::get_command_invocation::{
        GetCommandInvocationError, GetCommandInvocationOutput,
    };
    use aws_sdk_ssm::operation::send_command::{SendCommandError, SendCommandOutput};
    use aws_sdk_ssm::types::Command;
    use aws_sdk_ssm::types::error::{InvalidInstanceId, InvocationDoesNotExist};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    fn instance() -> InstanceId {
        InstanceId::parse("t", "i-0123456789abcdef0").unwrap()
    }

    fn sent() -> aws_smithy_mocks::Rule {
        mock!(Client::send_command)
            .match_requests(|r| {
                r.document_name() == Some(RUN_SHELL_DOCUMENT)
                    && r.instance_ids() == ["i-0123456789abcdef0"]
                    && r.parameters()
                        .and_then(|p| p.get("commands"))
                        .map(|c| c.iter().map(String::as_str).collect::<Vec<_>>())
                        == Some(HIGH_CPU_DIAGNOSTICS.to_vec())
            })
            .then_output(|| {
                SendCommandOutput::builder()
                    .command(Command::builder().command_id("cmd-1").build())
                    .build()
            })
    }

    fn invocation(status: CommandInvocationStatus, stdout: &str) -> GetCommandInvocationOutput {
        GetCommandInvocationOutput::builder()
            .status(status)
            .standard_output_content(stdout)
            .response_code(0)
            .build()
    }

    const FAST: PollSchedule = PollSchedule {
        first: Duration::from_millis(10),
        max: Duration::from_millis(40),
    };

    #[tokio::test(start_paused = true)]
    async fn polls_through_invocation_does_not_exist_until_success() {
        let poll = mock!(Client::get_command_invocation)
            .sequence()
            .error(|| {
                GetCommandInvocationError::InvocationDoesNotExist(
                    InvocationDoesNotExist::builder().build(),
                )
            })
            .times(2)
            .output(|| invocation(CommandInvocationStatus::InProgress, ""))
            .output(|| invocation(CommandInvocationStatus::Success, "top: java"))
            .build();
        let ssm = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&sent(), &poll]);
        let o =
            collect_diagnostics(&ssm, &instance(), "inc-1", Duration::from_secs(60), FAST).await;
        assert_eq!(o.status, Status::Done, "{o:?}");
        assert_eq!(o.output.as_deref(), Some("top: java"));
        assert_eq!(o.ids, vec!["cmd-1"]);
        assert_eq!(poll.num_calls(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn output_cut_by_ssm_says_so() {
        let long = "x".repeat(crate::commands::SSM_STDOUT_LIMIT);
        let poll = mock!(Client::get_command_invocation)
            .then_output(move || invocation(CommandInvocationStatus::Success, &long));
        let ssm = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&sent(), &poll]);
        let o =
            collect_diagnostics(&ssm, &instance(), "inc-1", Duration::from_secs(60), FAST).await;
        let out = o.output.unwrap_or_default();
        assert!(
            out.ends_with("the rest was cut]"),
            "{}",
            &out[out.len() - 200..]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn unmanaged_instance_is_skipped_with_the_reason() {
        let send = mock!(Client::send_command).then_error(|| {
            SendCommandError::InvalidInstanceId(
                InvalidInstanceId::builder()
                    .message("Instances not in a valid state")
                    .build(),
            )
        });
        let ssm = mock_client!(aws_sdk_ssm, [&send]);
        let o =
            collect_diagnostics(&ssm, &instance(), "inc-1", Duration::from_secs(60), FAST).await;
        assert_eq!(o.status, Status::Skipped);
        assert!(o.detail.contains("not managed by SSM"), "{}", o.detail);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_at_the_deadline() {
        let poll = mock!(Client::get_command_invocation)
            .then_output(|| invocation(CommandInvocationStatus::InProgress, ""));
        let ssm = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&sent(), &poll]);
        let started = Instant::now();
        let o = collect_diagnostics(&ssm, &instance(), "inc-1", Duration::from_secs(3), FAST).await;
        assert_eq!(o.status, Status::Failed);
        assert!(
            o.detail.contains("within 3 s (last status: InProgress)"),
            "{}",
            o.detail
        );
        assert_eq!(o.ids, vec!["cmd-1"]);
        assert!(started.elapsed() <= Duration::from_millis(3100));
    }

    #[tokio::test(start_paused = true)]
    async fn failed_command_reports_status_and_stderr() {
        let poll = mock!(Client::get_command_invocation).then_output(|| {
            GetCommandInvocationOutput::builder()
                .status(CommandInvocationStatus::Failed)
                .response_code(127)
                .standard_error_content("ps: not found\n")
                .build()
        });
        let ssm = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&sent(), &poll]);
        let o =
            collect_diagnostics(&ssm, &instance(), "inc-1", Duration::from_secs(60), FAST).await;
        assert_eq!(o.status, Status::Failed);
        assert!(
            o.detail
                .contains("ended Failed (exit code 127): ps: not found"),
            "{}",
            o.detail
        );
    }
}
