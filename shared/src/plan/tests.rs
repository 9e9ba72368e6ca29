pub(crate) use super::*;
pub(crate) use crate::actions::{
    archive_logs, cleanup_temp, collect_diagnostics, replace_instance, restart_service, scale_out,
    snapshot,
};
pub(crate) use crate::alert::parse_event;
pub(crate) use crate::config::Config;
pub(crate) use crate::ids::InstanceId;
pub(crate) use crate::ids::VolumeId;
pub(crate) use crate::incident::{Incident, IncidentKind};
pub(crate) use crate::report::Severity;
pub(crate) use std::collections::BTreeMap;

pub(crate) const ALARM: &str = include_str!("../../../events/high-cpu-alarm.json");

pub(crate) fn incident(src: &str) -> Incident {
    Incident::from_alert(parse_event(src.as_bytes()).unwrap().remove(0)).unwrap()
}

pub(crate) fn config() -> Config {
    Config {
        notify_topic_arn: Some("arn:aws:sns:us-east-1:123456789012:oncall".into()),
        ..Config::default()
    }
}

pub(crate) fn opt_in_tags() -> BTreeMap<String, String> {
    BTreeMap::from([("first-responder".to_owned(), "enabled".to_owned())])
}

pub(crate) fn vol(id: &str, dev: &str) -> AttachedVolume {
    AttachedVolume {
        id: VolumeId::parse("t", id).unwrap(),
        device: Some(dev.into()),
        size_gib: Some(8),
        volume_type: Some("gp3".into()),
        tags: opt_in_tags(),
    }
}

pub(crate) fn fleet(desired: i32, max: i32) -> Observed {
    Observed {
        kill_switch: Ok(false),
        resolved: None,
        resolved_in: None,
        volumes: Ok(vec![
            vol("vol-0000000000000000a", "/dev/xvda"),
            vol("vol-0000000000000000b", "/dev/sdf"),
        ]),
        group: Ok(Some(GroupState {
            name: GroupName::parse("t", "web-asg").unwrap(),
            desired,
            min: 1,
            max,
            tags: opt_in_tags(),
            suspended: Vec::new(),
            lifecycle: None,
        })),
        instance: Ok(Some(InstanceState {
            tags: opt_in_tags(),
            root_device: Some("/dev/xvda".into()),
            root_device_type: Some("ebs".into()),
            state: Some("running".into()),
        })),
        layout: None,
        missing_tools: Vec::new(),
        read_only: false,
        health: None,
        ssm_online: None,
        metric: None,
        account: None,
        history: Ok(Default::default()),
        calendar: None,
    }
}

pub(crate) fn summary(p: &Plan) -> Vec<(ActionName, String, String)> {
    p.actions
        .iter()
        .map(|a| {
            let d = match &a.decision {
                Decision::Do(Step::ScaleOut(scale_out::Step { from, to, .. })) => {
                    format!("do {from}->{to}")
                }
                Decision::Do(_) => "do".to_owned(),
                Decision::Hold(_) => "hold".to_owned(),
                Decision::Observe(_) => "observe".to_owned(),
                Decision::Skip(w) => format!("skip: {w}"),
                Decision::Fail(w) => format!("fail: {w}"),
            };
            (a.name, a.target.clone(), d)
        })
        .collect()
}

#[test]
fn high_cpu_over_threshold_does_everything() {
    let p = plan(&incident(ALARM), &fleet(1, 3), &config());
    assert_eq!(p.severity, Severity::Critical);
    assert_eq!(p.group.as_ref().unwrap().as_str(), "web-asg");
    let s = summary(&p);
    use ActionName::*;
    assert_eq!(
        s,
        vec![
            (Snapshot, "i-0123456789abcdef0".into(), "do".into()),
            (
                CollectDiagnostics,
                "i-0123456789abcdef0".into(),
                "do".into()
            ),
            (ScaleOut, "web-asg".into(), "do 1->2".into()),
            (
                Notify,
                "arn:aws:sns:us-east-1:123456789012:oncall".into(),
                "do".into()
            ),
        ]
    );
    assert!(
        p.actions
            .iter()
            .all(|a| a.decision.is_do() && !a.reason.is_empty())
    );
}

impl Decision {
    fn is_do(&self) -> bool {
        matches!(self, Decision::Do(_))
    }
}

pub(crate) fn scale_decision(p: &Plan) -> String {
    summary(p)
        .into_iter()
        .find(|(n, ..)| *n == ActionName::ScaleOut)
        .unwrap()
        .2
}

#[test]
fn without_topic_notify_is_skipped() {
    let p = plan(&incident(ALARM), &fleet(1, 3), &Config::default());
    let last = summary(&p).pop().unwrap();
    assert_eq!(
        last,
        (
            ActionName::Notify,
            "-".into(),
            "skip: NOTIFY_TOPIC_ARN is not set".into()
        )
    );
}

#[test]
fn resolved_only_notifies() {
    let p = plan(
        &incident(include_str!("../../../events/high-cpu-ok.json")),
        &Observed::nothing(),
        &config(),
    );
    assert_eq!(p.severity, Severity::Info);
    assert_eq!(
        summary(&p).iter().map(|a| a.0).collect::<Vec<_>>(),
        vec![ActionName::Notify]
    );
    let quiet = Config {
        notify_on_resolve: false,
        ..config()
    };
    let p = plan(
        &incident(include_str!("../../../events/high-cpu-ok.json")),
        &Observed::nothing(),
        &quiet,
    );
    assert!(p.actions.is_empty());
}

#[test]
fn ignored_transitions_do_nothing() {
    let src = ALARM.replace("\"value\": \"OK\"", "\"value\": \"ALARM\"");
    let p = plan(&incident(&src), &fleet(1, 3), &config());
    assert!(p.actions.is_empty());
    assert!(p.notes[0].contains("already in ALARM"), "{:?}", p.notes);
}

#[test]
fn unrouted_and_instanceless_alarms_only_notify() {
    let net = ALARM.replace("CPUUtilization", "NetworkIn");
    let p = plan(&incident(&net), &Observed::nothing(), &config());
    assert_eq!(p.actions.len(), 1);
    assert!(
        p.notes[0].contains("no playbook for metric AWS/EC2/NetworkIn"),
        "{:?}",
        p.notes
    );
    let no_dim = ALARM.replace(
        "\"InstanceId\": \"i-0123456789abcdef0\"",
        "\"AutoScalingGroupName\": \"web-asg\"",
    );
    // A group-level alarm scales the group itself, without instance evidence.
    let p = plan(
        &incident(&no_dim),
        &Observed {
            volumes: Ok(vec![]),
            ..fleet(1, 3)
        },
        &config(),
    );
    assert!(
        p.notes[0].contains("group-level alarm on web-asg"),
        "{:?}",
        p.notes
    );
    assert_eq!(
        summary(&p).iter().map(|a| a.0).collect::<Vec<_>>(),
        vec![ActionName::ScaleOut, ActionName::Notify]
    );
    assert_eq!(scale_decision(&p), "do 1->2");
    let p = plan(&incident(&no_dim), &Observed::nothing(), &config());
    assert_eq!(
        scale_decision(&p),
        "skip: Auto Scaling group web-asg does not exist"
    );
    // An RDS alarm is not ours: notified, nothing done.
    let rds = ALARM.replace("AWS/EC2", "AWS/RDS").replace(
        "\"InstanceId\": \"i-0123456789abcdef0\"",
        "\"DBInstanceIdentifier\": \"orders-db\"",
    );
    let p = plan(&incident(&rds), &Observed::nothing(), &config());
    assert_eq!(p.actions.len(), 1);
    assert!(
        p.notes[0].contains("no playbook for metric AWS/RDS/CPUUtilization"),
        "{:?}",
        p.notes
    );
}

#[test]
fn only_opted_in_resources_are_changed() {
    let i = incident(ALARM);
    let mut observed = fleet(1, 3);
    // The root volume without a tag of its own: still evidence.
    if let Ok(v) = &mut observed.volumes {
        v[0].tags.clear();
    }
    if let Ok(Some(g)) = &mut observed.group {
        g.tags.insert("first-responder".into(), "disabled".into());
    }
    let p = plan(&i, &observed, &config());
    let s = summary(&p);
    assert_eq!(s[0].2, "do", "every volume of an opted-in instance");
    match &p.actions[0].decision {
        Decision::Do(Step::Snapshot(snapshot::Step { volumes, .. })) => {
            assert_eq!(volumes.len(), 2)
        }
        d => panic!("{d:?}"),
    }
    assert_eq!(s[1].2, "do", "diagnostics on an opted-in instance");
    assert!(
        s[2].2
            .starts_with("skip: group web-asg does not carry the opt-in tag"),
        "{}",
        s[2].2
    );
    // An instance without the tag: no snapshot, no SSM command (its IAM
    // policy allows neither), and nothing changed.
    let mut untagged = fleet(1, 3);
    if let Ok(Some(st)) = &mut untagged.instance {
        st.tags.clear();
    }
    let s = summary(&plan(&i, &untagged, &config()));
    assert!(
        s[0].2
            .starts_with("skip: instance i-0123456789abcdef0 does not carry the opt-in tag"),
        "{}",
        s[0].2
    );
    assert!(
        s[1].2
            .contains("SSM commands are sent to opted-in instances only"),
        "{}",
        s[1].2
    );
    // Another tag, or none at all, when configured so.
    let custom = Config {
        opt_in: Some(("team".into(), "sre".into())),
        ..config()
    };
    assert!(
        summary(&plan(&i, &fleet(1, 3), &custom))[0]
            .2
            .contains("opt-in tag team=sre")
    );
    let off = Config {
        opt_in: None,
        ..config()
    };
    assert!(
        summary(&plan(&i, &observed, &off))
            .iter()
            .all(|a| a.2.starts_with("do"))
    );
}

#[test]
fn an_action_its_playbook_holds_is_planned_in_full_and_held_alone() {
    // high_cpu's scale_out held: the snapshot and diagnostics still go.
    let i = incident(ALARM);
    let mut c = config();
    c.playbooks
        .high_cpu
        .modes
        .insert(ActionName::ScaleOut, crate::autonomy::ActionMode::Approve);
    let p = plan(&i, &fleet(1, 3), &c);
    let s = summary(&p);
    assert_eq!(s[0].2, "do", "snapshot");
    assert_eq!(s[1].2, "do", "diagnostics");
    assert_eq!(s[2].2, "hold", "scale_out");
    let Decision::Hold(step) = &p.actions[2].decision else {
        panic!("not held")
    };
    assert_eq!(
        step.describe(),
        "add one instance to web-asg (desired 1 -> 2)"
    );
    let r = p.to_report();
    assert_eq!(r.actions[2].status, Status::AwaitingApproval);
    assert_eq!(
        serde_json::to_value(&r.actions[2]).unwrap()["status"],
        "awaiting_approval"
    );
    // A read-only action is never held, whatever its table says.
    c.playbooks.high_cpu.modes.insert(
        ActionName::CollectDiagnostics,
        crate::autonomy::ActionMode::Approve,
    );
    assert_eq!(summary(&plan(&i, &fleet(1, 3), &c))[1].2, "do");
    // The kill switch stops a held change too.
    let c = Config {
        kill_switch_parameter: Some("/fr/kill".into()),
        ..c
    };
    let p = plan(
        &i,
        &Observed {
            kill_switch: Ok(true),
            ..fleet(1, 3)
        },
        &c,
    );
    assert_eq!(
        summary(&p)[2].2,
        "skip: kill switch /fr/kill is on: notify only"
    );
}

#[test]
fn the_kill_switch_leaves_only_the_notification() {
    let i = incident(ALARM);
    let c = Config {
        kill_switch_parameter: Some("/fr/kill".into()),
        ..config()
    };
    for (state, why) in [
        (Ok(true), "kill switch /fr/kill is on: notify only"),
        (
            Err("AccessDenied".to_owned()),
            "kill switch /fr/kill could not be read (AccessDenied): notify only",
        ),
    ] {
        let p = plan(
            &i,
            &Observed {
                kill_switch: state,
                ..fleet(1, 3)
            },
            &c,
        );
        let s = summary(&p);
        assert_eq!(s.last().unwrap().2, "do", "the notification still goes out");
        for a in &s[..s.len() - 1] {
            assert_eq!(a.2, format!("skip: {why}"));
        }
        assert!(p.notes.contains(&why.to_owned()));
    }
    // Off, or not configured: business as usual.
    assert_eq!(
        scale_decision(&plan(
            &i,
            &Observed {
                kill_switch: Ok(false),
                ..fleet(1, 3)
            },
            &c
        )),
        "do 1->2"
    );
}

#[test]
fn severity_declared_by_the_alert_wins() {
    let src = ALARM.replace(
        "\"configuration\": {",
        "\"alarmTags\": {\"severity\": \"warning\"},\n    \"configuration\": {",
    );
    let p = plan(&incident(&src), &fleet(1, 3), &config());
    assert_eq!(p.severity, Severity::Warning);
}

#[test]
fn diagnostics_commands_are_fixed_text() {
    // The runbook's commands, and nothing that could carry event text.
    for c in [
        "ps aux --sort=-%cpu | head -n 15",
        "free -m",
        "timeout 10 df -h",
        "uptime",
    ] {
        assert!(HIGH_CPU_DIAGNOSTICS.contains(&c));
    }
    assert!(
        HIGH_CPU_DIAGNOSTICS
            .iter()
            .all(|c| !c.contains('$') && !c.contains('`'))
    );
    // The current-CPU sample: its only expansions are its own variables.
    for c in crate::commands::CPU_SAMPLE {
        let rest = c
            .replace(crate::commands::CPU_SAMPLE_AWK, "")
            .replace("$(cat /proc/[0-9]*/stat 2>/dev/null)", "")
            .replace("\"$a\"", "")
            .replace("\"$b\"", "")
            .replace("$(getconf CLK_TCK 2>/dev/null || echo 100)", "");
        assert!(!rest.contains('$') && !rest.contains('`'), "{c}");
    }
}

pub(crate) const DISK: &str = include_str!("../../../events/disk-full-alarm.json");
pub(crate) const DISK_NVME: &str = include_str!("../../../events/disk-full-nvme-alarm.json");
pub(crate) const MEMORY: &str = include_str!("../../../events/memory-pressure-alarm.json");
pub(crate) const DOWN: &str = include_str!("../../../events/service-down-alarm.json");

/// The fleet of `fleet()`, with the data volume at 100 GiB.
/// The fleet with a 100 GiB data volume, and the instance's preflight as a
/// Xen instance answers it: / on partition 1 of xvda, ext4 on the whole of
/// xvdf (`/dev/sdf`) at /data, every tool present.
pub(crate) fn disk_fleet() -> Observed {
    let mut o = fleet(1, 3);
    if let Ok(v) = &mut o.volumes {
        v[1].size_gib = Some(100);
    }
    o.layout = Some(crate::disk::parse_lsblk(XEN_LAYOUT));
    o
}

pub(crate) const XEN_LAYOUT: &str = r#"{"blockdevices":[{"name":"xvda","type":"disk","pttype":"gpt","children":[{"name":"xvda1","type":"part","mountpoint":"/","fstype":"xfs"}]},{"name":"xvdf","type":"disk","mountpoint":"/data","fstype":"ext4"}]}"#;

pub(crate) fn decision_of(p: &Plan, name: ActionName) -> String {
    summary(p)
        .into_iter()
        .find(|(n, ..)| *n == name)
        .map(|(_, t, d)| format!("{t}: {d}"))
        .unwrap_or_else(|| "absent".into())
}

pub(crate) fn expansion_of(p: &Plan) -> &Expansion {
    p.actions
        .iter()
        .find_map(|a| match &a.decision {
            Decision::Do(Step::ExpandVolume(e)) => Some(&**e),
            _ => None,
        })
        .expect("an expansion")
}

#[test]
fn report_of_a_plan_is_all_planned_or_skipped() {
    let r = plan(&incident(ALARM), &fleet(3, 3), &config()).to_report();
    let statuses: Vec<_> = r.actions.iter().map(|a| a.status).collect();
    use crate::report::Status::*;
    assert_eq!(statuses, vec![Planned, Planned, Skipped, Planned]);
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["kind"], "high_cpu");
    assert_eq!(v["actions"][2]["action"], "scale_out");
    assert_eq!(v["actions"][2]["status"], "skipped");
}

#[test]
fn the_modes_observe_hold_or_act_and_a_chronic_problem_pages_critical() {
    use crate::autonomy::ActionMode;
    use crate::observed::{History, PastRun};
    let i = incident(ALARM);
    let mut c = config();
    c.playbooks
        .high_cpu
        .modes
        .insert(ActionName::ScaleOut, ActionMode::Observe);
    let p = plan(&i, &fleet(1, 3), &c);
    let s = summary(&p);
    assert_eq!(s[0].2, "do", "the snapshot is evidence: never observed");
    assert_eq!(s[2].2, "observe");
    assert_eq!(
        p.actions[2].reason,
        "would add one instance to web-asg (desired 1 -> 2); observe mode in default"
    );
    let r = p.to_report();
    assert_eq!(r.actions[2].status, Status::Observed);
    assert_eq!(r.actions[2].mode.as_deref(), Some("observe"));
    // Three scale-outs of this instance in the week before: chronic, held,
    // critical even though the alarm declares a lower severity.
    let c = config();
    let fired = crate::series::parse_time(&i.alert.state_timestamp)
        .unwrap()
        .timestamp();
    let mut o = fleet(1, 3);
    let runs = (1..=3)
        .map(|d| PastRun {
            at: fired - d * 86_400,
            incident: format!("inc-{d}"),
            verdict: Some("recovered".into()),
        })
        .collect();
    o.history = Ok(History {
        runs: [(ActionName::ScaleOut, runs)].into_iter().collect(),
        ..History::default()
    });
    let mut low = i.clone();
    low.alert.tags.insert("severity".into(), "info".into());
    let p = plan(&low, &o, &c);
    assert_eq!(summary(&p)[2].2, "hold");
    assert_eq!(p.severity, Severity::Critical);
    assert!(
        p.notes[0].starts_with("chronic: scale_out fixed i-"),
        "{:?}",
        p.notes
    );
}
