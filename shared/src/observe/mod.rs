//! What the planner needs to know, read from AWS concurrently.

use crate::actions::{ActionName, Need};
use crate::config::Config;
use crate::ids::InstanceId;
use crate::incident::{Incident, IncidentKind, Resource, Transition};
use crate::plan::Observed;

use crate::aws::{Aws, fleet};

pub mod alarm;
pub mod metric;
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
    "ssm:GetCalendarState",
    "ssm:SendCommand",
    "ssm:GetCommandInvocation",
];

/// An alert's address looked up once, shared by the fleet's reads and the
/// metric's (each awaits its own clone; the calls are made once).
pub type Lookup<'a> = Shared<BoxFuture<'a, Result<(InstanceId, String), String>>>;

/// The lookup of the instance behind a firing alert that names only an
/// address; None for any other alert.
pub fn lookup<'a>(aws: &'a Aws, incident: &'a Incident, config: &'a Config) -> Option<Lookup<'a>> {
    match &incident.resource {
        Resource::Address(a) if incident.transition == Transition::Firing => Some(
            fleet::resolve(&aws.ec2, a, &config.vpc_ids)
                .boxed()
                .shared(),
        ),
        _ => None,
    }
}

/// The instance behind an alert's address, from its shared lookup.
pub(crate) async fn resolved(lookup: Option<&Lookup<'_>>) -> Result<(InstanceId, String), String> {
    match lookup {
        Some(l) => l.clone().await,
        None => Err("the address was not looked up".into()),
    }
}

/// Reads the AWS state the planner needs for this incident,
/// concurrently; the alert's metric is read beside it (see `respond`).
pub async fn observe_fleet(
    aws: &Aws,
    incident: &Incident,
    config: &Config,
    lookup: Option<&Lookup<'_>>,
) -> Observed {
    observe_with(aws, incident, config, lookup, true).await
}

/// [`Aws::observe_fleet`] with read permissions only: no SSM command is
/// sent (a disk's preflight stays unread: the planner assumes a layout it
/// could grow, and says so). The backtest reads this way.
pub async fn observe_read_only(aws: &Aws, incident: &Incident, config: &Config) -> Observed {
    let lookup = lookup(aws, incident, config);
    observe_with(aws, incident, config, lookup.as_ref(), false).await
}

/// The preflight's answer as the planner reads it: the block devices, and
/// the tools found missing.
type LayoutRead = Option<Result<Vec<crate::observed::BlockDev>, String>>;

fn split_layout(read: Option<Result<crate::disk::Layout, String>>) -> (LayoutRead, Vec<String>) {
    match read {
        Some(Ok(l)) => (Some(Ok(l.disks)), l.missing),
        Some(Err(e)) => (Some(Err(e)), Vec::new()),
        None => (None, Vec::new()),
    }
}

/// Commands may run on the instance (its opt-in tag): only then is the
/// preflight asked.
fn commands_allowed(me: Option<&crate::observed::InstanceState>, config: &Config) -> bool {
    me.is_some_and(|s| crate::plan::is_opted_in(&s.tags, &config.settings()))
}

/// The instance an alert is about (and, for an address, how it was found);
/// Err: what is observed when there is no instance to read (a group's
/// state, or nothing).
async fn the_instance(
    aws: &Aws,
    incident: &Incident,
    config: &Config,
    lookup: Option<&Lookup<'_>>,
) -> Result<(InstanceId, Option<(InstanceId, String)>), Observed> {
    match &incident.resource {
        Resource::Instance(i) => Ok((i.clone(), None)),
        Resource::Address(_) => match resolved(lookup).await {
            Ok((i, vpc)) => Ok((i.clone(), Some((i, vpc)))),
            Err(why) => Err(Observed {
                resolved: Some(Err(why)),
                ..Observed::nothing()
            }),
        },
        Resource::Group(g) if config.playbooks.runs(incident.kind, ActionName::ScaleOut) => {
            Err(Observed {
                group: fleet::group_named(&aws.autoscaling, g).await,
                ..Observed::nothing()
            })
        }
        Resource::Group(_) | Resource::None => Err(Observed::nothing()),
    }
}

/// The change calendars at the alert's own time (a backtest judges a
/// freeze as it stood); None when none is configured.
async fn calendar(
    aws: &Aws,
    incident: &Incident,
    config: &Config,
) -> Option<Result<crate::observed::Calendar, String>> {
    if config.change_calendars.is_empty() {
        return None;
    }
    let at = crate::series::parse_time(&incident.alert.state_timestamp).map(crate::series::rfc3339);
    Some(fleet::calendar_state(&aws.ssm, &config.change_calendars, at).await)
}

/// Whether EC2's status checks are read, and SSM's view too. A Prometheus
/// ServiceDown is only a failed scrape, and other kinds say nothing of the
/// instance's health: EC2's status checks (and, when configured, SSM's
/// view) decide whether the instance itself is down. CloudWatch's status
/// check alarm is EC2's own word.
fn health_reads(incident: &Incident, config: &Config) -> (bool, bool) {
    let kind = incident.kind;
    let own_word = kind == IncidentKind::ServiceDown && incident.alert.source.is_cloudwatch();
    let read_health = config.playbooks.needs(kind, Need::Health) && !own_word;
    let ask_ssm = read_health
        && config
            .playbooks
            .get(kind)
            .is_some_and(|pb| pb.act_when_ssm_unreachable);
    (read_health, ask_ssm)
}

async fn observe_with(
    aws: &Aws,
    incident: &Incident,
    config: &Config,
    lookup: Option<&Lookup<'_>>,
    commands: bool,
) -> Observed {
    let kind = incident.kind;
    if incident.transition != Transition::Firing || kind == IncidentKind::Unrouted {
        return Observed::nothing();
    }
    let (instance, resolved) = match the_instance(aws, incident, config, lookup).await {
        Ok(found) => found,
        Err(observed) => return observed,
    };
    let needs = |n: Need| config.playbooks.needs(kind, n);
    let (read_health, ask_ssm) = health_reads(incident, config);
    let calendar = calendar(aws, incident, config);
    let (volumes, group, me, health, ssm_online, calendar) = tokio::join!(
        async {
            match needs(Need::Volumes) {
                true => fleet::volumes_of(&aws.ec2, &instance).await,
                false => Ok(Vec::new()),
            }
        },
        async {
            match needs(Need::Group) {
                true => fleet::group_of(&aws.autoscaling, &instance).await,
                false => Ok(None),
            }
        },
        // Every playbook needs the instance's tags (its opt-in decides
        // evidence, commands and changes): read beside the rest.
        fleet::instance_state(&aws.ec2, &instance),
        async {
            match read_health {
                true => Some(fleet::health(&aws.ec2, &instance).await),
                false => None,
            }
        },
        async {
            match ask_ssm {
                true => Some(fleet::ssm_online(&aws.ssm, &instance).await),
                false => None,
            }
        },
        calendar,
    );
    // The instance's block devices and tools (the disk preflight), whenever
    // commands may run on it: the API alone cannot tell what stands between
    // the volume and the mount (LVM, RAID), nor whether it can be grown.
    let layout = match (&volumes, needs(Need::Layout)) {
        (Ok(_), true) => {
            let me = me.as_ref().ok().and_then(Option::as_ref);
            let ask = commands && commands_allowed(me, config);
            match ask {
                true => Some(
                    fleet::block_devices(
                        &aws.ssm,
                        &instance,
                        &incident.id,
                        config.diagnostics_timeout,
                        aws.poll,
                    )
                    .await,
                ),
                false => None,
            }
        }
        _ => None,
    };
    let (resolved, resolved_in) = match resolved {
        Some((i, vpc)) => (Some(Ok(i)), Some(vpc)),
        None => (None, None),
    };
    let (layout, missing_tools) = split_layout(layout);
    Observed {
        resolved,
        resolved_in,
        volumes,
        group,
        instance: me,
        layout,
        missing_tools,
        read_only: !commands,
        health,
        ssm_online,
        calendar,
        ..Observed::nothing()
    }
}
