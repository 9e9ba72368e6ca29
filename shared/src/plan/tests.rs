use super::*;
use crate::actions::{
    archive_logs, cleanup_temp, collect_diagnostics, replace_instance, restart_service, scale_out,
    snapshot,
};
use crate::alert::parse_event;
use crate::ids::VolumeId;
use std::collections::BTreeMap;

const ALARM: &str = include_str!("../../../events/high-cpu-alarm.json");

fn incident(src: &str) -> Incident {
    Incident::from_alert(parse_event(src.as_bytes()).unwrap().remove(0)).unwrap()
}

fn config() -> Config {
    Config {
        notify_topic_arn: Some("arn:aws:sns:us-east-1:123456789012:oncall".into()),
        ..Config::default()
    }
}

fn opt_in_tags() -> BTreeMap<String, String> {
    BTreeMap::from([("first-responder".to_owned(), "enabled".to_owned())])
}

fn vol(id: &str, dev: &str) -> AttachedVolume {
    AttachedVolume {
        id: VolumeId::parse("t", id).unwrap(),
        device: Some(dev.into()),
        size_gib: Some(8),
        volume_type: Some("gp3".into()),
        tags: opt_in_tags(),
    }
}

fn fleet(desired: i32, max: i32) -> Observed {
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
        })),
        instance: Ok(Some(InstanceState {
            tags: opt_in_tags(),
            root_device: Some("/dev/xvda".into()),
            state: Some("running".into()),
        })),
        layout: None,
        health: None,
        ssm_online: None,
    }
}

fn summary(p: &Plan) -> Vec<(ActionName, String, String)> {
    p.actions
        .iter()
        .map(|a| {
            let d = match &a.decision {
                Decision::Do(Step::ScaleOut(scale_out::Step { from, to, .. })) => {
                    format!("do {from}->{to}")
                }
                Decision::Do(_) => "do".to_owned(),
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

fn scale_decision(p: &Plan) -> String {
    summary(p)
        .into_iter()
        .find(|(n, ..)| *n == ActionName::ScaleOut)
        .unwrap()
        .2
}

#[test]
fn scale_out_cases() {
    let i = incident(ALARM);
    let c = config();
    let cases: Vec<(Observed, &str)> = vec![
        (
            fleet(3, 3),
            "skip: group web-asg is already at its MaxSize (3)",
        ),
        (
            fleet(4, 3),
            "skip: group web-asg is already at its MaxSize (3)",
        ),
        (fleet(2, 3), "do 2->3"),
        (
            Observed {
                group: Ok(None),
                ..fleet(1, 3)
            },
            "skip: i-0123456789abcdef0 is not in an Auto Scaling group",
        ),
        (
            Observed {
                group: Err("AccessDenied".into()),
                ..fleet(1, 3)
            },
            "fail: could not read the Auto Scaling group: AccessDenied",
        ),
    ];
    for (observed, want) in cases {
        assert_eq!(scale_decision(&plan(&i, &observed, &c)), want);
    }
}

#[test]
fn below_threshold_does_not_scale_and_is_a_warning() {
    let p = plan(
        &incident(include_str!("../../../events/high-cpu-alarm-moderate.json")),
        &fleet(1, 3),
        &config(),
    );
    assert_eq!(
        scale_decision(&p),
        "skip: CPU 85.1% is below the scale-out threshold of 90%"
    );
    assert_eq!(p.severity, Severity::Warning);
    let mut lower = config();
    lower.playbooks.high_cpu.scale_out.at_percent = 85.0;
    let p = plan(
        &incident(include_str!("../../../events/high-cpu-alarm-moderate.json")),
        &fleet(1, 3),
        &lower,
    );
    assert_eq!(scale_decision(&p), "do 1->2");
    assert_eq!(p.severity, Severity::Critical);
}

#[test]
fn threshold_is_inclusive() {
    let src = ALARM.replace("[95.3]", "[90.0]");
    assert_eq!(
        scale_decision(&plan(&incident(&src), &fleet(1, 3), &config())),
        "do 1->2"
    );
}

#[test]
fn no_value_no_scaling() {
    let src = ALARM.replace("[95.3]", "[]").replace("[95.3 (", "[? (");
    assert_eq!(
        scale_decision(&plan(&incident(&src), &fleet(1, 3), &config())),
        "skip: the alert carries no CPU value: not scaling blind"
    );
}

#[test]
fn volume_lookup_cases() {
    let i = incident(ALARM);
    let p = plan(
        &i,
        &Observed {
            volumes: Ok(vec![]),
            ..fleet(1, 3)
        },
        &config(),
    );
    assert_eq!(
        summary(&p)[0],
        (
            ActionName::Snapshot,
            "i-0123456789abcdef0".into(),
            "skip: no EBS volumes attached to i-0123456789abcdef0".into()
        )
    );
    let p = plan(
        &i,
        &Observed {
            volumes: Err("RequestLimitExceeded".into()),
            ..fleet(1, 3)
        },
        &config(),
    );
    assert!(
        summary(&p)[0]
            .2
            .starts_with("fail: could not list the volumes")
    );
    // The other actions still go ahead.
    assert_eq!(scale_decision(&p), "do 1->2");
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

/// Snapshots are evidence with a cap of their own per incident: the
/// root volume first, the rest by device, the remainder named.
#[test]
fn evidence_snapshots_have_their_own_cap() {
    let i = incident(ALARM);
    let mut observed = fleet(1, 3);
    if let Ok(v) = &mut observed.volumes {
        for n in 0..30 {
            v.push(vol(
                &format!("vol-00000000000001{n:03}"),
                &format!("/dev/sd{n:03}"),
            ));
        }
    }
    let c = Config {
        max_snapshots_per_incident: 20,
        ..config()
    };
    let p = plan(&i, &observed, &c);
    match &p.actions[0].decision {
        Decision::Do(Step::Snapshot(snapshot::Step {
            volumes,
            exclude_boot,
            exclude,
            ..
        })) => {
            assert_eq!(volumes.len(), 20);
            assert_eq!(volumes[0].1.as_deref(), Some("/dev/xvda"), "root first");
            assert!(!exclude_boot);
            assert_eq!(exclude.len(), 12);
        }
        d => panic!("{d:?}"),
    }
    assert!(
        p.actions[0]
            .reason
            .contains("12 more left out, over the cap of 20"),
        "{}",
        p.actions[0].reason
    );
}

#[test]
fn the_capacity_cap_holds_below_max_size() {
    let i = incident(ALARM);
    let capped = Config {
        max_desired_capacity: Some(2),
        ..config()
    };
    assert_eq!(scale_decision(&plan(&i, &fleet(1, 5), &capped)), "do 1->2");
    assert_eq!(
        scale_decision(&plan(&i, &fleet(2, 5), &capped)),
        "skip: group web-asg is at the configured cap MAX_DESIRED_CAPACITY=2 (MaxSize 5)"
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
        "df -h",
        "uptime",
    ] {
        assert!(HIGH_CPU_DIAGNOSTICS.contains(&c));
    }
    assert!(
        HIGH_CPU_DIAGNOSTICS
            .iter()
            .all(|c| !c.contains('$') && !c.contains('`'))
    );
}

const DISK: &str = include_str!("../../../events/disk-full-alarm.json");
const DISK_NVME: &str = include_str!("../../../events/disk-full-nvme-alarm.json");
const MEMORY: &str = include_str!("../../../events/memory-pressure-alarm.json");
const DOWN: &str = include_str!("../../../events/service-down-alarm.json");

/// The fleet of `fleet()`, with the data volume at 100 GiB.
fn disk_fleet() -> Observed {
    let mut o = fleet(1, 3);
    if let Ok(v) = &mut o.volumes {
        v[1].size_gib = Some(100);
    }
    o
}

fn decision_of(p: &Plan, name: ActionName) -> String {
    summary(p)
        .into_iter()
        .find(|(n, ..)| *n == name)
        .map(|(_, t, d)| format!("{t}: {d}"))
        .unwrap_or_else(|| "absent".into())
}

fn expansion_of(p: &Plan) -> &Expansion {
    p.actions
        .iter()
        .find_map(|a| match &a.decision {
            Decision::Do(Step::ExpandVolume(e)) => Some(&**e),
            _ => None,
        })
        .expect("an expansion")
}

#[test]
fn disk_full_cleans_up_then_expands_the_right_volume() {
    let p = plan(&incident(DISK), &disk_fleet(), &config());
    assert_eq!(p.severity, Severity::Critical);
    let s: Vec<(ActionName, usize)> = p.actions.iter().map(|a| (a.name, a.stage)).collect();
    use ActionName::*;
    assert_eq!(
        s,
        vec![
            (CleanupTemp, 0),
            (ArchiveLogs, 0),
            (ExpandVolume, 1),
            (Notify, 2)
        ]
    );
    // /data is full; /tmp, /var/tmp and /var/log are on /: cleaning them
    // frees nothing there.
    assert_eq!(
        decision_of(&p, CleanupTemp),
        "i-0123456789abcdef0: skip: /tmp is on / (assumed: the instance reported no block devices), /var/tmp is on / (assumed: the instance reported no block devices), not on /data: cleaning there frees nothing on the full filesystem"
    );
    assert!(
        decision_of(&p, ArchiveLogs).contains("/var/log is on /"),
        "{}",
        decision_of(&p, ArchiveLogs)
    );
    assert!(matches!(p.actions[2].decision, Decision::Do(_)));
    let e = expansion_of(&p);
    assert_eq!(e.volume.as_str(), "vol-0000000000000000b");
    assert_eq!((e.from_gib, e.to_gib), (100, 120));
    assert_eq!(e.xen_letters.as_deref(), Some("f"));
    assert_eq!(e.mount.as_deref(), Some("/data"));
    assert_eq!(e.alert_usage, Some(97.2));
    assert_eq!(e.how, "device xvdf is block-device mapping /dev/sdf");
    assert_eq!(p.next_steps()[0], "Check disk usage (df -h).");
    // The root filesystem alerting: the cleanup runs there.
    let root = DISK.replace("\"path\": \"/data\"", "\"path\": \"/\"");
    let p = plan(&incident(&root), &disk_fleet(), &config());
    assert!(matches!(
        &p.actions[0].decision,
        Decision::Do(Step::CleanupTemp(cleanup_temp::Step { days: 7, .. }))
    ));
    assert!(matches!(
        &p.actions[1].decision,
        Decision::Do(Step::ArchiveLogs(archive_logs::Step { .. }))
    ));
    // Without the instance's report, a /var alert holds /var/tmp and
    // /var/log (they are under it), not /tmp.
    let var_alert = DISK.replace("\"path\": \"/data\"", "\"path\": \"/var\"");
    let p = plan(&incident(&var_alert), &disk_fleet(), &config());
    assert!(matches!(
        &p.actions[0].decision,
        Decision::Do(Step::CleanupTemp(cleanup_temp::Step { .. }))
    ));
    assert!(matches!(
        &p.actions[1].decision,
        Decision::Do(Step::ArchiveLogs(archive_logs::Step { .. }))
    ));
    // What the instance reported decides: /var on its own volume.
    let mut o = disk_fleet();
    o.layout = Some(crate::disk::parse_lsblk(
        r#"{"blockdevices":[{"name":"xvda","type":"disk","children":[{"name":"xvda1","type":"part","mountpoint":"/","fstype":"xfs"}]},{"name":"xvdf","type":"disk","mountpoint":"/var","fstype":"ext4"}]}"#,
    ));
    let var = DISK.replace("\"path\": \"/data\"", "\"path\": \"/var\"");
    let p = plan(&incident(&var), &o, &config());
    assert!(
        matches!(
            &p.actions[0].decision,
            Decision::Do(Step::CleanupTemp(cleanup_temp::Step { .. }))
        ),
        "/var/tmp is on /var"
    );
    assert!(matches!(
        &p.actions[1].decision,
        Decision::Do(Step::ArchiveLogs(archive_logs::Step { .. }))
    ));
    let p = plan(&incident(&root), &o, &config());
    assert!(
        matches!(
            &p.actions[0].decision,
            Decision::Do(Step::CleanupTemp(cleanup_temp::Step { .. }))
        ),
        "/tmp is on /"
    );
    assert_eq!(
        decision_of(&p, ArchiveLogs),
        "i-0123456789abcdef0: skip: /var/log is on /var, not on /: cleaning there frees nothing on the full filesystem"
    );
}

#[test]
fn disk_full_limits_and_refusals() {
    let i = incident(DISK);
    // Below the expansion threshold: cleanup only.
    let low = DISK
        .replace("[97.2", "[91.0")
        .replace("97.2]", "91.0]")
        .replace(":97.2}", ":91.0}");
    let p = plan(&incident(&low), &disk_fleet(), &config());
    assert_eq!(
        decision_of(&p, ActionName::ExpandVolume),
        "/data (xvdf): skip: usage 91.0% is below 95% (disk_full.expand_at_percent): cleanup only"
    );
    assert!(
        decision_of(&p, ActionName::CleanupTemp).contains("not on /data"),
        "{}",
        decision_of(&p, ActionName::CleanupTemp)
    );
    // Capped at the maximum volume size.
    let mut capped = config();
    capped.playbooks.disk_full.expand_volume.max_volume_gib = 110;
    assert_eq!(expansion_of(&plan(&i, &disk_fleet(), &capped)).to_gib, 110);
    capped.playbooks.disk_full.expand_volume.max_volume_gib = 100;
    assert_eq!(
        decision_of(&plan(&i, &disk_fleet(), &capped), ActionName::ExpandVolume),
        "vol-0000000000000000b: skip: the volume is 100 GiB, at or above the maximum of 100 GiB (disk_full.max_volume_gib)"
    );
    // An unknown filesystem is never grown.
    let btrfs = DISK.replace("\"ext4\"", "\"btrfs\"");
    assert!(
        decision_of(&plan(&incident(&btrfs), &disk_fleet(), &config()), ActionName::ExpandVolume)
            .ends_with("skip: filesystem btrfs on vol-0000000000000000b is not grown automatically (ext2/3/4 and xfs are)")
    );
    // Volume without the opt-in tag; instance without it: nothing changes.
    let mut o = disk_fleet();
    if let Ok(v) = &mut o.volumes {
        v[1].tags.clear();
    }
    assert!(
        decision_of(&plan(&i, &o, &config()), ActionName::ExpandVolume)
            .contains("volume vol-0000000000000000b does not carry the opt-in tag")
    );
    let mut o = disk_fleet();
    if let Ok(Some(s)) = &mut o.instance {
        s.tags.clear();
    }
    let p = plan(&i, &o, &config());
    for a in [
        ActionName::CleanupTemp,
        ActionName::ArchiveLogs,
        ActionName::ExpandVolume,
    ] {
        assert!(
            decision_of(&p, a)
                .contains("instance i-0123456789abcdef0 does not carry the opt-in tag"),
            "{a:?}"
        );
    }
    // NVMe without lsblk: refuses to guess; with it: the serial decides.
    let p = plan(&incident(DISK_NVME), &disk_fleet(), &config());
    assert!(
        decision_of(&p, ActionName::ExpandVolume).contains("fail: / (nvme0n1p1) is an NVMe device")
    );
    let mut o = disk_fleet();
    o.layout = Some(crate::disk::parse_lsblk(
        r#"{"blockdevices":[{"name":"nvme0n1","type":"disk","serial":"vol0000000000000000a","pttype":"gpt","children":[{"name":"nvme0n1p1","type":"part","mountpoint":"/","fstype":"xfs"}]}]}"#,
    ));
    let p = plan(&incident(DISK_NVME), &o, &config());
    let e = expansion_of(&p);
    assert_eq!(
        (e.volume.as_str(), e.from_gib, e.to_gib),
        ("vol-0000000000000000a", 8, 18)
    );
    // Dry run and the kill switch leave it planned-but-not-done / skipped.
    let c = Config {
        kill_switch_parameter: Some("/k".into()),
        ..config()
    };
    let p = plan(
        &i,
        &Observed {
            kill_switch: Ok(true),
            ..disk_fleet()
        },
        &c,
    );
    assert!(
        decision_of(&p, ActionName::ExpandVolume)
            .ends_with("skip: kill switch /k is on: notify only")
    );
}

#[test]
fn prometheus_disk_alerts_carry_the_free_percentage() {
    let i = incident(include_str!("../../../events/alertmanager-disk-full.json"));
    assert_eq!(i.kind, IncidentKind::DiskFull);
    assert_eq!(disk_usage(&i), Some(96.5));
}

#[test]
fn memory_pressure_restarts_only_a_tagged_valid_service() {
    let i = incident(MEMORY);
    let tag = "first-responder:restart-service";
    let with = |v: Option<&str>| {
        let mut o = fleet(1, 3);
        if let (Ok(Some(s)), Some(v)) = (&mut o.instance, v) {
            s.tags.insert(tag.into(), v.into());
        }
        o
    };
    let p = plan(&i, &with(Some("app.service")), &config());
    assert_eq!(p.severity, Severity::Warning);
    assert_eq!(
        decision_of(&p, ActionName::CollectDiagnostics),
        "i-0123456789abcdef0: do"
    );
    assert!(matches!(
        &p.actions[0].decision,
        Decision::Do(Step::CollectDiagnostics(collect_diagnostics::Step {
            set: Diagnostics::Memory,
            ..
        }))
    ));
    match &p.actions[1].decision {
        Decision::Do(Step::RestartService(restart_service::Step { service, .. })) => {
            assert_eq!(service.as_str(), "app.service")
        }
        d => panic!("{d:?}"),
    }
    assert_eq!(p.actions[1].stage, 1);
    assert_eq!(
        decision_of(
            &plan(&i, &with(None), &config()),
            ActionName::RestartService
        ),
        format!(
            "i-0123456789abcdef0: skip: i-0123456789abcdef0 carries no {tag} tag naming a service to restart"
        )
    );
    assert!(
        decision_of(
            &plan(&i, &with(Some("app; reboot")), &config()),
            ActionName::RestartService
        )
        .contains("is not a systemd service name")
    );
    // Configuration that leaves restart_service out refuses it.
    let mut c = config();
    c.playbooks.memory_pressure.stages = vec![vec![ActionName::CollectDiagnostics]];
    assert_eq!(
        decision_of(
            &plan(&i, &with(Some("app")), &c),
            ActionName::RestartService
        ),
        "absent"
    );
}

#[test]
fn service_down_replaces_in_a_group_and_reboots_otherwise() {
    let i = incident(DOWN);
    let p = plan(&i, &fleet(1, 3), &config());
    use ActionName::*;
    let s: Vec<(ActionName, usize)> = p.actions.iter().map(|a| (a.name, a.stage)).collect();
    assert_eq!(
        s,
        vec![
            (Snapshot, 0),
            (CollectEvidence, 0),
            (ReplaceInstance, 1),
            (Reboot, 1),
            (Notify, 2)
        ]
    );
    assert!(matches!(
        &p.actions[2].decision,
        Decision::Do(Step::ReplaceInstance(replace_instance::Step { .. }))
    ));
    assert_eq!(
        decision_of(&p, Reboot),
        "i-0123456789abcdef0: skip: i-0123456789abcdef0 is in group web-asg: replaced, not rebooted"
    );
    let alone = Observed {
        group: Ok(None),
        ..fleet(1, 3)
    };
    let p = plan(&i, &alone, &config());
    assert!(decision_of(&p, ReplaceInstance).contains("is in no Auto Scaling group"));
    assert_eq!(decision_of(&p, Reboot), "i-0123456789abcdef0: do");
    let mut stopped = alone.clone();
    if let Ok(Some(s)) = &mut stopped.instance {
        s.state = Some("stopped".into());
    }
    assert!(
        decision_of(&plan(&i, &stopped, &config()), Reboot)
            .contains("is stopped: a reboot cannot bring it back")
    );
    // Not allowed by configuration: neither.
    let mut c = config();
    c.playbooks.service_down.stages = vec![vec![Snapshot, CollectEvidence]];
    let p = plan(&i, &fleet(1, 3), &c);
    assert_eq!(
        (decision_of(&p, ReplaceInstance), decision_of(&p, Reboot)),
        ("absent".into(), "absent".into())
    );
}

/// Prometheus's ServiceDown is a failed scrape: only EC2's own word
/// that the instance is down lets replace or reboot go ahead.
#[test]
fn a_scrape_failure_never_reboots_or_replaces_a_healthy_instance() {
    use ActionName::*;
    let i = incident(include_str!(
        "../../../events/alertmanager-service-down.json"
    ));
    let me = InstanceId::parse("t", "i-0123456789abcdef0").unwrap();
    let health = |state: &str, system: &str, inst: &str| InstanceHealth {
        state: Some(state.into()),
        system: Some(system.into()),
        instance: Some(inst.into()),
    };
    let observed = |h: Option<Result<InstanceHealth, String>>, in_group: bool| Observed {
        resolved: Some(Ok(me.clone())),
        health: h,
        group: if in_group {
            fleet(1, 3).group
        } else {
            Ok(None)
        },
        ..fleet(1, 3)
    };
    let healthy = "skip: EC2 status checks pass: the exporter, not the instance, is down";
    // (health, in a group) -> (replace_instance, reboot)
    type Case<'a> = (
        Option<Result<InstanceHealth, String>>,
        bool,
        &'a str,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            Some(Ok(health("running", "ok", "ok"))),
            true,
            healthy,
            healthy,
        ),
        (
            Some(Ok(health("running", "ok", "ok"))),
            false,
            healthy,
            healthy,
        ),
        (
            Some(Ok(health("running", "initializing", "insufficient-data"))),
            true,
            healthy,
            healthy,
        ),
        (
            Some(Ok(health("running", "ok", "impaired"))),
            true,
            "do",
            "skip: i-0123456789abcdef0 is in group web-asg",
        ),
        (
            Some(Ok(health("running", "impaired", "ok"))),
            false,
            "skip: i-0123456789abcdef0 is in no Auto Scaling group",
            "do",
        ),
        (
            Some(Err("DescribeInstanceStatus: Throttling".into())),
            true,
            "skip: EC2 status checks could not be read (DescribeInstanceStatus: Throttling)",
            "skip: EC2 status checks could not be read",
        ),
        (
            None,
            true,
            "skip: EC2 status checks were not read",
            "skip: EC2 status checks were not read",
        ),
    ];
    for (h, in_group, replace, reboot) in cases {
        let what = format!("{h:?}, in group {in_group}");
        let p = plan(&i, &observed(h, in_group), &config());
        let got = (decision_of(&p, ReplaceInstance), decision_of(&p, Reboot));
        assert!(
            got.0
                .starts_with(&format!("i-0123456789abcdef0: {replace}")),
            "{what}: replace {}",
            got.0
        );
        assert!(
            got.1.starts_with(&format!("i-0123456789abcdef0: {reboot}")),
            "{what}: reboot {}",
            got.1
        );
    }
    // The healthy case says what to look at instead.
    let p = plan(
        &i,
        &observed(Some(Ok(health("running", "ok", "ok"))), true),
        &config(),
    );
    assert!(
        p.notes.iter().any(|n| n.contains("look at the exporter")),
        "{:?}",
        p.notes
    );
    // An impaired instance: the reason says why it acts.
    let p = plan(
        &i,
        &observed(Some(Ok(health("running", "ok", "impaired"))), true),
        &config(),
    );
    let replace = p
        .actions
        .iter()
        .find(|a| a.name == ReplaceInstance)
        .unwrap();
    assert!(
        replace
            .reason
            .starts_with("EC2's instance status check is impaired"),
        "{}",
        replace.reason
    );
    // SSM unreachable as well: acts only when configured to.
    let mut o = observed(Some(Ok(health("running", "ok", "ok"))), false);
    o.ssm_online = Some(Ok(false));
    assert!(decision_of(&plan(&i, &o, &config()), Reboot).contains(healthy));
    let mut c = config();
    c.playbooks.service_down.act_when_ssm_unreachable = true;
    assert_eq!(
        decision_of(&plan(&i, &o, &c), Reboot),
        "i-0123456789abcdef0: do"
    );
    o.ssm_online = Some(Ok(true));
    assert!(decision_of(&plan(&i, &o, &c), Reboot).contains(healthy));
    // CloudWatch's StatusCheckFailed is EC2's own word: acts as before,
    // without reading the checks again.
    let p = plan(&incident(DOWN), &fleet(1, 3), &config());
    assert_eq!(decision_of(&p, ReplaceInstance), "i-0123456789abcdef0: do");
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
