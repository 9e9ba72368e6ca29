//! The fleet's reads the planner and the actions share, each over the one
//! client it needs (so an action given only its declared clients can use
//! them): an instance's state and health, its volumes, its group, its
//! block devices, the instance behind a private address.

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::Filter;

use super::{PollSchedule, run_command, sdk_error};
use crate::commands;
use crate::disk;
use crate::ids::{GroupName, InstanceId, VolumeId};
use crate::incident::PrivateAddress;
use crate::observed::{AttachedVolume, GroupState, InstanceHealth, InstanceState};
use crate::report::Status;

/// EC2's status checks and state for one instance (stopped ones too).
pub async fn health(
    ec2: &aws_sdk_ec2::Client,
    instance: &InstanceId,
) -> Result<InstanceHealth, String> {
    let out = ec2
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
pub async fn ssm_online(ssm: &aws_sdk_ssm::Client, instance: &InstanceId) -> Result<bool, String> {
    use aws_sdk_ssm::types::{InstanceInformationStringFilter, PingStatus};
    let filter = InstanceInformationStringFilter::builder()
        .key("InstanceIds")
        .values(instance.as_str())
        .build()
        .map_err(|e| e.to_string())?;
    let out = ssm
        .describe_instance_information()
        .filters(filter)
        .send()
        .await
        .map_err(|e| format!("DescribeInstanceInformation: {}", sdk_error(&e)))?;
    Ok(out.instance_information_list().iter().any(|i| {
        i.instance_id() == Some(instance.as_str()) && i.ping_status() == Some(&PingStatus::Online)
    }))
}

/// The change calendars' state at `at` (ISO 8601): CLOSED when any is.
pub async fn calendar_state(
    ssm: &aws_sdk_ssm::Client,
    names: &[String],
    at: Option<String>,
) -> Result<crate::observed::Calendar, String> {
    let out = ssm
        .get_calendar_state()
        .set_calendar_names(Some(names.to_vec()))
        .set_at_time(at)
        .send()
        .await
        .map_err(|e| format!("GetCalendarState {}: {}", names.join(","), sdk_error(&e)))?;
    Ok(crate::observed::Calendar {
        names: names.to_vec(),
        state: out
            .state()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        next_transition: out.next_transition_time().map(str::to_owned),
    })
}

/// Tags, root device and state of one instance; Ok(None) if it does not exist.
pub async fn instance_state(
    ec2: &aws_sdk_ec2::Client,
    instance: &InstanceId,
) -> Result<Option<InstanceState>, String> {
    let out = match ec2
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
            root_device_type: i.root_device_type().map(|t| t.as_str().to_owned()),
            state: i
                .state()
                .and_then(|s| s.name())
                .map(|n| n.as_str().to_owned()),
        }))
}

/// The disk preflight on the instance through SSM (a read): its block
/// devices and the tools it lacks to grow them.
pub async fn block_devices(
    ssm: &aws_sdk_ssm::Client,
    instance: &InstanceId,
    incident_id: &str,
    timeout: std::time::Duration,
    poll: PollSchedule,
) -> Result<disk::Layout, String> {
    let o = run_command(
        ssm,
        instance,
        commands::DISK_LAYOUT
            .iter()
            .map(|c| (*c).to_owned())
            .collect(),
        &format!("first-responder block devices for {incident_id}"),
        timeout,
        poll,
    )
    .await;
    match (o.status, o.output.as_deref().map(str::trim)) {
        (Status::Done, Some(out)) if !out.is_empty() => disk::parse_layout(out),
        (Status::Done, _) => Err("the disk preflight printed nothing".into()),
        _ => Err(o.detail),
    }
}

/// The one instance with this private IP address or DNS name, in the
/// configured VPCs (`VPC_IDS`), and how it was found. Private addresses
/// repeat across VPCs: without `VPC_IDS`, an account with more than one
/// VPC in the region is refused rather than matched anywhere.
pub async fn resolve(
    ec2: &aws_sdk_ec2::Client,
    address: &PrivateAddress,
    vpc_ids: &[String],
) -> Result<(InstanceId, String), String> {
    let (filter, what) = match address {
        PrivateAddress::Ip(ip) => ("private-ip-address", format!("private IP {ip}")),
        PrivateAddress::DnsName(n) => ("private-dns-name", format!("private DNS name {n}")),
    };
    let mut lookup = ec2
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
            true => Some(ec2.describe_vpcs().send().await),
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

pub async fn volumes_of(
    ec2: &aws_sdk_ec2::Client,
    instance: &InstanceId,
) -> Result<Vec<AttachedVolume>, String> {
    let out = ec2
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

pub async fn group_of(
    autoscaling: &aws_sdk_autoscaling::Client,
    instance: &InstanceId,
) -> Result<Option<GroupState>, String> {
    let Some(member) = group_member(autoscaling, instance).await? else {
        return Ok(None);
    };
    let Some(name) = member.auto_scaling_group_name() else {
        return Ok(None);
    };
    let name = GroupName::parse("DescribeAutoScalingInstances.AutoScalingGroupName", name)
        .map_err(|e| e.to_string())?;
    let lifecycle = member.lifecycle_state().map(ToOwned::to_owned);
    Ok(group_named(autoscaling, &name)
        .await?
        .map(|g| GroupState { lifecycle, ..g }))
}

pub async fn group_named(
    autoscaling: &aws_sdk_autoscaling::Client,
    name: &GroupName,
) -> Result<Option<GroupState>, String> {
    let out = autoscaling
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
            suspended: g
                .suspended_processes()
                .iter()
                .filter_map(|p| p.process_name().map(ToOwned::to_owned))
                .collect(),
            lifecycle: None,
        })),
        _ => Err(format!(
            "group {name} has no desired/min/max capacity in its description"
        )),
    }
}

/// The health an Auto Scaling group holds for an instance.
pub async fn health_of(
    autoscaling: &aws_sdk_autoscaling::Client,
    instance: &InstanceId,
) -> Result<String, String> {
    group_member(autoscaling, instance)
        .await?
        .and_then(|i| i.health_status().map(ToOwned::to_owned))
        .ok_or_else(|| format!("{instance} is in no group"))
}

/// The instance as its Auto Scaling group sees it (`DescribeAutoScalingInstances`);
/// None when it is in no group.
async fn group_member(
    autoscaling: &aws_sdk_autoscaling::Client,
    instance: &InstanceId,
) -> Result<Option<aws_sdk_autoscaling::types::AutoScalingInstanceDetails>, String> {
    let out = autoscaling
        .describe_auto_scaling_instances()
        .instance_ids(instance.as_str())
        .send()
        .await
        .map_err(|e| format!("DescribeAutoScalingInstances: {}", sdk_error(&e)))?;
    Ok(out
        .auto_scaling_instances()
        .iter()
        .find(|i| i.instance_id() == Some(instance.as_str()))
        .cloned())
}
