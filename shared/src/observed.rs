//! What the executor read from AWS before planning: the planner's and the
//! actions' view of the fleet (below both, so neither imports the other).

use std::collections::BTreeMap;

use crate::ids::{GroupName, InstanceId, VolumeId};
use serde::Deserialize;

#[derive(Clone, Debug, PartialEq)]
pub struct AttachedVolume {
    pub id: VolumeId,
    pub device: Option<String>,
    pub size_gib: Option<i32>,
    pub volume_type: Option<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GroupState {
    pub name: GroupName,
    pub desired: i32,
    pub min: i32,
    pub max: i32,
    pub tags: BTreeMap<String, String>,
    /// The group's suspended processes (`Launch`, `Terminate`,
    /// `ReplaceUnhealthy`, ...): what it will not do whatever we ask.
    pub suspended: Vec<String>,
    /// The incident's instance's lifecycle state in the group (`InService`,
    /// `Standby`, `Warmed:Running`, `Terminating:Wait`, ...), when the group
    /// was found through the instance.
    pub lifecycle: Option<String>,
}

impl GroupState {
    pub fn is_suspended(&self, process: &str) -> bool {
        self.suspended.iter().any(|p| p == process)
    }
}

/// The instance itself, as DescribeInstances shows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InstanceState {
    pub tags: BTreeMap<String, String>,
    pub root_device: Option<String>,
    /// `ebs` or `instance-store`: whether the instance can be stopped.
    pub root_device_type: Option<String>,
    /// running, stopped, ...
    pub state: Option<String>,
}

/// EC2's own view of an instance (`DescribeInstanceStatus` with all
/// instances): its state and the two status checks.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InstanceHealth {
    /// running, stopped, ...
    pub state: Option<String>,
    /// ok, impaired, initializing, insufficient-data, not-applicable
    pub system: Option<String>,
    pub instance: Option<String>,
}

impl InstanceHealth {
    /// Some(why) when EC2 itself says the instance is down: a status check
    /// `impaired`, or a state other than running. `initializing` and
    /// `insufficient-data` are not evidence of anything.
    pub fn impaired(&self) -> Option<String> {
        let state = self.state.as_deref().unwrap_or("unknown");
        if state != "running" {
            return Some(format!("EC2 reports the instance {state}"));
        }
        match (self.system.as_deref(), self.instance.as_deref()) {
            (Some("impaired"), _) => Some("EC2's system status check is impaired".into()),
            (_, Some("impaired")) => Some("EC2's instance status check is impaired".into()),
            _ => None,
        }
    }

    pub fn summary(&self) -> String {
        format!(
            "state {}, system check {}, instance check {}",
            self.state.as_deref().unwrap_or("unknown"),
            self.system.as_deref().unwrap_or("unknown"),
            self.instance.as_deref().unwrap_or("unknown")
        )
    }
}

/// What the executor read from AWS before planning. An `Err` holds why the
/// read failed; the actions depending on it fail with that reason.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    /// The kill switch (`KILL_SWITCH_PARAMETER`): Ok(true) when on. A failed
    /// read is an Err and counts as on: when in doubt, only notify.
    pub kill_switch: Result<bool, String>,
    /// The instance behind a private address (Prometheus `instance` label).
    pub resolved: Option<Result<InstanceId, String>>,
    /// How the address was resolved (which VPC matched), for the report.
    pub resolved_in: Option<String>,
    pub volumes: Result<Vec<AttachedVolume>, String>,
    pub group: Result<Option<GroupState>, String>,
    /// Tags and state of the instance, for the playbooks that act on it.
    pub instance: Result<Option<InstanceState>, String>,
    /// The instance's block devices (the disk preflight through SSM,
    /// `commands::DISK_LAYOUT`), read for a disk incident whenever commands
    /// may run: how the mount is traced to a volume, and what stands between.
    pub layout: Option<Result<Vec<BlockDev>, String>>,
    /// The tools the same preflight found missing (`missing=`).
    pub missing_tools: Vec<String>,
    /// Read with read permissions only (the backtest): no preflight was
    /// sent, so the planner assumes a layout it could grow, and says so.
    pub read_only: bool,
    /// EC2's status checks, read for a Prometheus `ServiceDown`: a scrape
    /// failure alone never reboots or replaces a healthy instance.
    pub health: Option<Result<InstanceHealth, String>>,
    /// Whether SSM reaches the instance (its agent online), read only when
    /// `service_down.act_when_ssm_unreachable` is on.
    pub ssm_online: Option<Result<bool, String>>,
    /// The alert's metric over the window before it fired (see `series`):
    /// None when there is none to read, Err(why) when the read failed.
    pub metric: Option<Result<crate::series::MetricContext, String>>,
    /// The account the incident acts in (None: the deployment's own), which
    /// the playbooks' scopes match.
    pub account: Option<String>,
    /// The track record for demotion and chronic problems (Err: unread).
    pub history: Result<History, String>,
    /// `CHANGE_CALENDARS` at the alert's time (None: none configured).
    pub calendar: Option<Result<Calendar, String>>,
}

/// The change calendars' state (`GetCalendarState`: OPEN only when every
/// one is open).
#[derive(Clone, Debug, PartialEq)]
pub struct Calendar {
    pub names: Vec<String>,
    /// `OPEN` or `CLOSED`.
    pub state: String,
    pub next_transition: Option<String>,
}

/// A pause set with `first-responder pause`, as stored.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Pause {
    pub id: String,
    /// `account`, `group`, `instance` or `all`.
    pub on: String,
    /// The account, group or instance (empty for `all`).
    #[serde(default)]
    pub value: String,
    /// Until when (epoch seconds).
    pub until: i64,
    pub reason: String,
    pub by: String,
    pub set_at: i64,
}

/// A still-firing check after a change, as recorded for demotion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Miss {
    pub at: i64,
    pub incident: String,
}

/// One earlier change of an action on a resource, with its check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PastRun {
    pub at: i64,
    pub incident: String,
    /// `recovered`, `still_firing`, `unknown`; None before the check.
    pub verdict: Option<String>,
}

/// The track record an incident's modes depend on (`state/track.rs`):
/// still-firing checks and restores per scope and action, and the
/// resource's earlier runs per action.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    pub misses: BTreeMap<(String, crate::names::ActionName), Vec<Miss>>,
    /// When a person last restored the action in the scope, and who.
    pub restored: BTreeMap<(String, crate::names::ActionName), (i64, String)>,
    pub runs: BTreeMap<crate::names::ActionName, Vec<PastRun>>,
    /// Pauses set with `first-responder pause` (expired ones too).
    pub pauses: Vec<Pause>,
}

impl Observed {
    /// Every read failed for this reason (the reads ran out of time): the
    /// actions that need them fail with it, the notification goes out.
    pub fn failed(why: &str) -> Self {
        Self {
            kill_switch: Ok(false),
            resolved: Some(Err(why.to_owned())),
            resolved_in: None,
            volumes: Err(why.to_owned()),
            group: Err(why.to_owned()),
            instance: Err(why.to_owned()),
            layout: Some(Err(why.to_owned())),
            missing_tools: Vec::new(),
            read_only: false,
            health: Some(Err(why.to_owned())),
            ssm_online: None,
            metric: None,
            account: None,
            history: Ok(History::default()),
            calendar: None,
        }
    }

    /// For incidents that need no AWS state.
    pub fn nothing() -> Self {
        Self {
            kill_switch: Ok(false),
            resolved: None,
            resolved_in: None,
            volumes: Ok(Vec::new()),
            group: Ok(None),
            instance: Ok(None),
            layout: None,
            missing_tools: Vec::new(),
            read_only: false,
            health: None,
            ssm_online: None,
            metric: None,
            account: None,
            history: Ok(History::default()),
            calendar: None,
        }
    }
}

/// A block device as `lsblk -J` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct BlockDev {
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub serial: Option<String>,
    #[serde(default)]
    pub mountpoint: Option<String>,
    #[serde(default)]
    pub fstype: Option<String>,
    #[serde(default)]
    pub pttype: Option<String>,
    #[serde(default)]
    pub children: Vec<BlockDev>,
}
