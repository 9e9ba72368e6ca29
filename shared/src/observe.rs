//! What the planner needs to know, read from AWS concurrently.

use crate::actions::{ActionName, Need};
use crate::commands;
use crate::config::Config;
use crate::disk::{self, DiskTarget};
use crate::ids::{GroupName, InstanceId, VolumeId};
use crate::incident::{Incident, IncidentKind, PrivateAddress, Resource, Transition};
use crate::plan::{AttachedVolume, GroupState, InstanceHealth, InstanceState, Observed};
use crate::report::Status;

use crate::aws::*;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::Filter;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

/// The IAM actions the observation calls: reads, plus `lsblk` through SSM
/// when a device cannot be traced from the API alone.
pub const PERMISSIONS: &[&str] = &[
    "ec2:DescribeInstances",
    "ec2:DescribeVolumes",
    "ec2:DescribeInstanceStatus",
    "ec2:DescribeVpcs",
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeAutoScalingGroups",
    "ssm:DescribeInstanceInformation",
    "ssm:SendCommand",
    "ssm:GetCommandInvocation",
];

/// An alert's address looked up once, shared by the fleet's reads and the
/// metric's (each awaits its own clone; the calls are made once).
pub type Lookup<'a> = Shared<BoxFuture<'a, Result<(InstanceId, String), String>>>;

impl Aws {
    /// The lookup of the instance behind a firing alert that names only an
    /// address; None for any other alert.
    pub fn lookup<'a>(&'a self, incident: &'a Incident, config: &'a Config) -> Option<Lookup<'a>> {
        match &incident.resource {
            Resource::Address(a) if incident.transition == Transition::Firing => {
                Some(self.resolve(a, &config.vpc_ids).boxed().shared())
            }
            _ => None,
        }
    }

    /// The instance behind an alert's address, from its shared lookup.
    pub(crate) async fn resolved(
        lookup: Option<&Lookup<'_>>,
    ) -> Result<(InstanceId, String), String> {
        match lookup {
            Some(l) => l.clone().await,
            None => Err("the address was not looked up".into()),
        }
    }

    /// Reads the AWS state the planner needs for this incident,
    /// concurrently; the alert's metric is read beside it (see `respond`).
    pub async fn observe_fleet(
        &self,
        incident: &Incident,
        config: &Config,
        lookup: Option<&Lookup<'_>>,
    ) -> Observed {
        self.observe_with(incident, config, lookup, true).await
    }

    /// [`Aws::observe_fleet`] with read permissions only: no SSM command is
    /// sent (a disk's block devices, when the API cannot tell its volume,
    /// stay unread and the planner says so). The backtest reads this way.
    pub async fn observe_read_only(&self, incident: &Incident, config: &Config) -> Observed {
        let lookup = self.lookup(incident, config);
        self.observe_with(incident, config, lookup.as_ref(), false)
            .await
    }

    async fn observe_with(
        &self,
        incident: &Incident,
        config: &Config,
        lookup: Option<&Lookup<'_>>,
        commands: bool,
    ) -> Observed {
        let kind = incident.kind;
        if incident.transition != Transition::Firing || kind == IncidentKind::Unrouted {
            return Observed::nothing();
        }
        let (instance, resolved) = match &incident.resource {
            Resource::Instance(i) => (i.clone(), None),
            Resource::Address(_) => match Self::resolved(lookup).await {
                Ok((i, vpc)) => (i.clone(), Some((i, vpc))),
                Err(why) => {
                    return Observed {
                        resolved: Some(Err(why)),
                        ..Observed::nothing()
                    };
                }
            },
            Resource::Group(g) if config.playbooks.runs(kind, ActionName::ScaleOut) => {
                return Observed {
                    group: self.group_named(g).await,
                    ..Observed::nothing()
                };
            }
            Resource::Group(_) | Resource::None => return Observed::nothing(),
        };
        let needs = |n: Need| config.playbooks.needs(kind, n);
        // A Prometheus ServiceDown is only a failed scrape, and other kinds
        // say nothing of the instance's health: EC2's status checks (and,
        // when configured, SSM's view) decide whether the instance itself is
        // down. Read beside the rest. CloudWatch's status check alarm is
        // EC2's own word.
        let own_word = kind == IncidentKind::ServiceDown && incident.alert.source.is_cloudwatch();
        let read_health = needs(Need::Health) && !own_word;
        let ask_ssm = read_health
            && config
                .playbooks
                .get(kind)
                .is_some_and(|pb| pb.act_when_ssm_unreachable);
        let (volumes, group, me, health, ssm_online) = tokio::join!(
            async {
                match needs(Need::Volumes) {
                    true => self.volumes_of(&instance).await,
                    false => Ok(Vec::new()),
                }
            },
            async {
                match needs(Need::Group) {
                    true => self.group_of(&instance).await,
                    false => Ok(None),
                }
            },
            // Every playbook needs the instance's tags (its opt-in decides
            // evidence, commands and changes): read beside the rest.
            self.instance_state(&instance),
            async {
                match read_health {
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
        let layout = match (&volumes, needs(Need::Layout)) {
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
                    .is_some_and(|s| crate::plan::is_opted_in(&s.tags, &config.settings()));
                if (known && target.fstype.is_some()) || !commands_allowed || !commands {
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
    pub(crate) async fn health(&self, instance: &InstanceId) -> Result<InstanceHealth, String> {
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
    pub(crate) async fn ssm_online(&self, instance: &InstanceId) -> Result<bool, String> {
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
    pub(crate) async fn instance_state(
        &self,
        instance: &InstanceId,
    ) -> Result<Option<InstanceState>, String> {
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
    pub(crate) async fn block_devices(
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

    /// The one instance with this private IP address or DNS name, in the
    /// configured VPCs (`VPC_IDS`), and how it was found. Private addresses
    /// repeat across VPCs: without `VPC_IDS`, an account with more than one
    /// VPC in the region is refused rather than matched anywhere.
    pub(crate) async fn resolve(
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

    pub(crate) async fn volumes_of(
        &self,
        instance: &InstanceId,
    ) -> Result<Vec<AttachedVolume>, String> {
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

    pub(crate) async fn group_of(
        &self,
        instance: &InstanceId,
    ) -> Result<Option<GroupState>, String> {
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

    pub(crate) async fn group_named(&self, name: &GroupName) -> Result<Option<GroupState>, String> {
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

    /// The health an Auto Scaling group holds for an instance.
    pub(crate) async fn health_of(&self, instance: &InstanceId) -> Result<String, String> {
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
}
