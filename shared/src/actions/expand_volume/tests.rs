//! The decisions of expand_volume (and the disk cleanups before it), through the planner: observed state in,
//! decision out (fixtures in `plan::tests`).

use crate::plan::tests::*;

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
        "i-0123456789abcdef0: skip: /tmp is on /, /var/tmp is on /, not on /data: cleaning there frees nothing on the full filesystem"
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
    assert_eq!(e.how, "/data (xvdf) is on disk xvdf, block-device mapping /dev/sdf");
    assert_eq!(e.grow, crate::disk::GrowPath::Disk);
    assert_eq!(p.next_steps()[0], "Check disk usage (df -h).");
    // The root filesystem alerting: the cleanup runs there.
    let root = DISK.replace("\"path\": \"/data\"", "\"path\": \"/\"");
    let p = plan(&incident(&root), &disk_fleet(), &config());
    assert!(matches!(
        &p.actions[0].decision,
        Decision::Do(Step::CleanupTemp(cleanup_temp::Step { days: None, .. }))
    ));
    assert!(matches!(
        &p.actions[1].decision,
        Decision::Do(Step::ArchiveLogs(archive_logs::Step { .. }))
    ));
    // Without the instance's report, a /var alert holds /var/tmp and
    // /var/log (they are under it), not /tmp.
    let var_alert = DISK.replace("\"path\": \"/data\"", "\"path\": \"/var\"");
    let unread = Observed {
        layout: None,
        ..disk_fleet()
    };
    let p = plan(&incident(&var_alert), &unread, &config());
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
    // (The instance's layout, without udev, names no filesystem: the
    // alert's is taken.)
    let btrfs = DISK.replace("\"ext4\"", "\"btrfs\"");
    let no_udev = Observed {
        layout: Some(crate::disk::parse_lsblk(&crate::plan::tests::XEN_LAYOUT.replace("\"ext4\"", "null"))),
        ..disk_fleet()
    };
    assert!(
        decision_of(&plan(&incident(&btrfs), &no_udev, &config()), ActionName::ExpandVolume)
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
    let unread = Observed {
        layout: None,
        ..disk_fleet()
    };
    let p = plan(&incident(DISK_NVME), &unread, &config());
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
    let i = incident(include_str!("../../../../events/alertmanager-disk-full.json"));
    assert_eq!(i.kind, IncidentKind::DiskFull);
    assert_eq!(disk_usage(&i), Some(96.5));
}

#[test]
fn the_predictive_check_reports_space_used_as_cloudwatch_does() {
    // Its incidents carry `disk_used_percent`: 85 is 85% used, not 15.
    let mut i = incident(DISK);
    i.alert.source = crate::alert::AlertSource::Forecast;
    i.alert.value = Some(85.0);
    assert_eq!(disk_usage(&i), Some(85.0));
}

fn reason_of(p: &Plan) -> String {
    p.actions
        .iter()
        .find(|a| a.name == ActionName::ExpandVolume)
        .map(|a| a.reason.clone())
        .unwrap_or_default()
}

/// The disk's metric, rising `per_hour` points an hour to 97.2% at the alarm.
fn rising(per_hour: f64) -> crate::series::MetricContext {
    use chrono::TimeZone;
    let end = chrono::Utc.with_ymd_and_hms(2026, 11, 25, 2, 0, 0).unwrap();
    let points = (0..36)
        .map(|i| crate::series::Point {
            at: end - chrono::Duration::minutes(5 * (35 - i)),
            value: 97.2 - per_hour * (35 - i) as f64 / 12.0,
        })
        .collect();
    crate::series::summarize("CWAgent/disk_used_percent".into(), 300, points, Some(90.0), None)
        .unwrap()
}

#[test]
fn a_growing_disk_is_sized_for_days_of_growth_within_the_maximum() {
    // 100 GiB at 97.2%, +2 points an hour: 2 days more below 95% needs
    // (97.2 + 96) / 0.95 = 204 GiB, more than the rule's 120.
    let mut o = disk_fleet();
    o.metric = Some(Ok(rising(2.0)));
    let p = plan(&incident(DISK), &o, &config());
    let f = p.forecast.as_ref().expect("a forecast");
    assert!((f.percent_per_hour - 2.0).abs() < 0.01, "{f:?}");
    assert_eq!(expansion_of(&p).to_gib, 204);
    assert!(
        reason_of(&p).contains(
            "sized for 2 days more at 2.00 percentage points an hour (the low end of the forecast's range)"
        ),
        "{}",
        reason_of(&p)
    );
    // Never above the maximum, and it says so.
    let mut c = config();
    c.playbooks.disk_full.expand_volume.max_volume_gib = 150;
    let p = plan(&incident(DISK), &o, &c);
    assert_eq!(expansion_of(&p).to_gib, 150);
    assert!(
        reason_of(&p).contains("capped at 150 GiB (max_volume_gib)"),
        "{}",
        reason_of(&p)
    );
    // Turned off: the rule alone.
    c.playbooks.disk_full.expand_volume.growth_days = 0;
    c.playbooks.disk_full.expand_volume.max_volume_gib = 2048;
    assert_eq!(expansion_of(&plan(&incident(DISK), &o, &c)).to_gib, 120);
    // Slow growth that the rule already covers: the rule.
    o.metric = Some(Ok(rising(0.1)));
    let p = plan(&incident(DISK), &o, &config());
    assert_eq!(expansion_of(&p).to_gib, 120);
    assert!(!reason_of(&p).contains("sized for"), "{}", reason_of(&p));
    // A flat disk: the rule, and a forecast that says "not growing".
    o.metric = Some(Ok(rising(0.0)));
    let p = plan(&incident(DISK), &o, &config());
    assert_eq!(expansion_of(&p).to_gib, 120);
    assert_eq!(p.forecast.as_ref().and_then(|f| f.full_at.clone()), None);
}

#[test]
fn every_known_series_is_sized_as_stated_and_never_past_twice_the_rule() {
    use chrono::TimeZone;
    let end = chrono::Utc.with_ymd_and_hms(2026, 11, 25, 2, 0, 0).unwrap();
    for c in crate::series::cases::cases(end) {
        let mut o = disk_fleet();
        o.metric = Some(Ok(crate::series::summarize(
            "CWAgent/disk_used_percent".into(),
            300,
            c.points.clone(),
            Some(90.0),
            None,
        )
        .unwrap()));
        let p = plan(&incident(DISK), &o, &config());
        let e = expansion_of(&p);
        assert_eq!(e.rule_gib, 120, "{}", c.name);
        assert_eq!(e.to_gib, c.size_gib, "{}: {}", c.name, reason_of(&p));
        assert!(e.to_gib <= 2 * e.rule_gib, "{}", c.name);
    }
}

#[test]
fn a_size_from_the_forecast_stops_at_the_growth_factor_and_says_so() {
    let mut o = disk_fleet();
    o.metric = Some(Ok(rising(10.0)));
    // 2 days at 10 points an hour would be 608 GiB.
    let p = plan(&incident(DISK), &o, &config());
    assert_eq!(expansion_of(&p).to_gib, 240);
    assert!(
        reason_of(&p).contains("capped at 240 GiB (max_growth_factor: 2 x the rule's 120 GiB)"),
        "{}",
        reason_of(&p)
    );
    // A team that allows more gets more, up to max_volume_gib.
    let mut c = config();
    c.playbooks.disk_full.expand_volume.max_growth_factor = 4.0;
    assert_eq!(expansion_of(&plan(&incident(DISK), &o, &c)).to_gib, 480);
    c.playbooks.disk_full.expand_volume.max_volume_gib = 300;
    let p = plan(&incident(DISK), &o, &c);
    assert_eq!(expansion_of(&p).to_gib, 300);
    assert!(
        reason_of(&p).contains("capped at 300 GiB (max_volume_gib)"),
        "{}",
        reason_of(&p)
    );
}

#[test]
fn the_metric_added_after_planning_gives_the_plan_made_with_it() {
    // The responder plans on the fleet's state and adds the metric when it
    // comes (it must not wait for it): the same plan as with it at once.
    let mut without = disk_fleet();
    without.metric = None;
    for rate in [2.0, 0.1, 0.0] {
        let mut with = disk_fleet();
        with.metric = Some(Ok(rising(rate)));
        let at_once = plan(&incident(DISK), &with, &config());
        let mut later = plan(&incident(DISK), &without, &config());
        assert_eq!(expansion_of(&later).to_gib, 120, "the rule before the metric");
        later.with_metric(with.metric.clone());
        assert_eq!(later, at_once, "at {rate} points an hour");
        // Asked twice, the same answer.
        later.with_metric(with.metric.clone());
        assert_eq!(later, at_once);
    }
    let mut later = plan(&incident(DISK), &without, &config());
    assert!(later.stage_uses_metric(
        later.actions.iter().find(|a| a.name == ActionName::ExpandVolume).map(|a| a.stage).unwrap()
    ));
    assert!(!later.stage_uses_metric(0), "the cleanup does not wait for the metric");
    later.with_metric(Some(Err("no data".into())));
    assert_eq!(expansion_of(&later).to_gib, 120);
    assert!(later.notes.iter().any(|n| n == "metric not shown: no data"), "{:?}", later.notes);
}

#[test]
fn growth_size_is_the_size_that_reaches_the_threshold_after_the_days() {
    use crate::disk::growth_size;
    assert_eq!(growth_size(100, 90.0, 1.0, 1, 95.0), Some(120)); // (90 + 24) / 0.95
    assert_eq!(growth_size(100, 90.0, 0.0, 1, 95.0), None);
    assert_eq!(growth_size(100, 90.0, -1.0, 1, 95.0), None);
    assert_eq!(growth_size(20, 97.2, 2.0, 2, 95.0), Some(41));
}

/// The disk fleet with a third volume (`c`, `/dev/sdg`) and the instance's
/// `lsblk` as given: data volumes `b` and `c` are NVMe disks 1 and 2.
fn laid_out(lsblk: &str) -> Observed {
    let mut o = disk_fleet();
    if let Ok(v) = &mut o.volumes {
        v.push(vol("vol-0000000000000000c", "/dev/sdg"));
    }
    o.layout = Some(crate::disk::parse_lsblk(lsblk));
    o
}

const ROOT_DISK: &str = r#"{"name":"nvme0n1","type":"disk","serial":"vol0000000000000000a","pttype":"gpt","children":[{"name":"nvme0n1p1","type":"part","mountpoint":"/","fstype":"xfs"}]}"#;

fn lsblk(data_disks: &[&str]) -> String {
    format!(
        r#"{{"blockdevices":[{ROOT_DISK},{}]}}"#,
        data_disks.join(",")
    )
}

#[test]
fn a_layout_that_growing_one_volume_cannot_finish_is_refused_before_any_change() {
    // (the layout as lsblk prints it, what the refusal must say)
    let cases = [
        (
            // A volume group over two EBS volumes: the logical volume shows
            // under each.
            lsblk(&[
                r#"{"name":"nvme1n1","type":"disk","serial":"vol0000000000000000b","fstype":"LVM2_member","children":[{"name":"data-vol","type":"lvm","mountpoint":"/data","fstype":"xfs"}]}"#,
                r#"{"name":"nvme2n1","type":"disk","serial":"vol0000000000000000c","fstype":"LVM2_member","children":[{"name":"data-vol","type":"lvm","mountpoint":"/data","fstype":"xfs"}]}"#,
            ]),
            "cannot grow /data (xvdf): nvme1n1 (disk) -> data-vol (lvm), over 2 disks; the volume group has more than one physical volume",
        ),
        (
            lsblk(&[
                r#"{"name":"nvme1n1","type":"disk","serial":"vol0000000000000000b","fstype":"linux_raid_member","children":[{"name":"md0","type":"raid0","mountpoint":"/data","fstype":"ext4"}]}"#,
                r#"{"name":"nvme2n1","type":"disk","serial":"vol0000000000000000c","fstype":"linux_raid_member","children":[{"name":"md0","type":"raid0","mountpoint":"/data","fstype":"ext4"}]}"#,
            ]),
            "cannot grow /data (xvdf): nvme1n1 (disk) -> md0 (raid0), over 2 disks; grow every member volume of the RAID set",
        ),
        (
            // A volume group over this disk and another: the logical volume
            // is on this one alone, but the group has a second physical volume.
            lsblk(&[
                r#"{"name":"nvme1n1","type":"disk","serial":"vol0000000000000000b","fstype":"LVM2_member","children":[{"name":"vg-data","type":"lvm","mountpoint":"/data","fstype":"xfs"}]}"#,
                r#"{"name":"nvme2n1","type":"disk","serial":"vol0000000000000000c","fstype":"LVM2_member","children":[{"name":"vg-logs","type":"lvm","mountpoint":"/logs","fstype":"xfs"}]}"#,
            ]),
            "cannot grow /data (xvdf): nvme1n1 (disk) -> vg-data (lvm); the volume group has more than one physical volume",
        ),
        (
            lsblk(&[
                r#"{"name":"nvme1n1","type":"disk","serial":"vol0000000000000000b","fstype":"crypto_LUKS","children":[{"name":"data","type":"crypt","mountpoint":"/data","fstype":"ext4"}]}"#,
            ]),
            "cannot grow /data (xvdf): nvme1n1 (disk) -> data (crypt); grow the volume and partition, then `cryptsetup resize`",
        ),
    ];
    for (layout, says) in cases {
        let p = plan(&incident(DISK), &laid_out(&layout), &config());
        // Nothing is grown: only the snapshot for evidence, before a person
        // acts by hand.
        let e = expansion_of(&p);
        let why = e.refused.as_deref().unwrap_or_default();
        assert!(why.contains(says) && why.ends_with("; not expanded"), "{why}\nexpected: {says}");
        assert_eq!((e.volume.as_str(), e.to_gib), ("vol-0000000000000000b", e.from_gib));
        assert!(e.is_evidence() && e.cooldown(&Default::default(), &config().settings()).is_none());
        assert_eq!(e.describe(), "snapshot vol-0000000000000000b for evidence; it is not grown");
        assert!(reason_of(&p).contains("only a snapshot of vol-0000000000000000b for evidence"), "{}", reason_of(&p));
    }
}

#[test]
fn the_partition_holding_the_alerted_mount_is_the_one_traced() {
    // Partition 1 a decoy, /data on partition 2.
    let o = laid_out(&lsblk(&[
        r#"{"name":"nvme1n1","type":"disk","serial":"vol0000000000000000b","pttype":"gpt","children":[{"name":"nvme1n1p1","type":"part","mountpoint":"/srv","fstype":"ext4"},{"name":"nvme1n1p2","type":"part","mountpoint":"/data","fstype":"xfs"}]}"#,
    ]));
    let p = plan(&incident(DISK), &o, &config());
    let e = expansion_of(&p);
    assert_eq!(e.volume.as_str(), "vol-0000000000000000b");
    assert_eq!((e.from_gib, e.to_gib), (100, 120));
    // Partition 2 is the one the grow script is told to grow.
    assert_eq!(e.grow, GrowPath::Partition(2));
    assert!(e.reason().contains("then partition 2 and its filesystem"), "{}", e.reason());
}

use crate::disk::{GrowPath, LvName};
use crate::actions::ActionStep;

#[test]
fn a_volume_group_on_this_volume_alone_is_grown_through_lvm() {
    // On the whole disk, and on a partition of it.
    let cases = [
        (
            r#"{"name":"nvme1n1","type":"disk","serial":"vol0000000000000000b","fstype":"LVM2_member","children":[{"name":"vg0-data","type":"lvm","mountpoint":"/data","fstype":"xfs"}]}"#,
            None,
        ),
        (
            r#"{"name":"nvme1n1","type":"disk","serial":"vol0000000000000000b","pttype":"gpt","children":[{"name":"nvme1n1p1","type":"part","fstype":"LVM2_member","children":[{"name":"vg0-data","type":"lvm","mountpoint":"/data","fstype":"xfs"},{"name":"vg0-logs","type":"lvm","mountpoint":"/logs","fstype":"xfs"}]}]}"#,
            Some(1),
        ),
    ];
    for (disk, partition) in cases {
        let p = plan(&incident(DISK), &laid_out(&lsblk(&[disk])), &config());
        let e = expansion_of(&p);
        assert_eq!(
            e.grow,
            GrowPath::Lvm { partition, lv: LvName::parse("vg0-data").expect("a name") }
        );
        assert!(e.reason().contains("logical volume vg0-data with its filesystem (lvextend -r)"));
    }
}

#[test]
fn a_missing_tool_refuses_before_any_change_and_names_the_package() {
    let mut o = laid_out(&lsblk(&[
        r#"{"name":"nvme1n1","type":"disk","serial":"vol0000000000000000b","pttype":"gpt","children":[{"name":"nvme1n1p1","type":"part","mountpoint":"/data","fstype":"xfs"}]}"#,
    ]));
    o.missing_tools = vec!["growpart".into()];
    let p = plan(&incident(DISK), &o, &config());
    let why = expansion_of(&p).refused.clone().unwrap_or_default();
    assert_eq!(
        why,
        "cannot grow /data (xvdf): the instance lacks growpart (growpart: install cloud-utils-growpart on Amazon Linux and RHEL, cloud-guest-utils on Debian and Ubuntu); not expanded"
    );
    // A tool this layout does not need does not refuse it.
    o.missing_tools = vec!["pvresize".into(), "lvextend".into(), "resize2fs".into()];
    assert!(matches!(expansion_of(&plan(&incident(DISK), &o, &config())).grow, GrowPath::Partition(1)));
    // Without the preflight's answer, nothing is changed.
    for (layout, says) in [
        (None, "were not read"),
        (Some(Err("the disk preflight printed nothing".to_owned())), "could not be read (the disk preflight printed nothing)"),
    ] {
        let o = Observed { layout, ..disk_fleet() };
        let d = decision_of(&plan(&incident(DISK), &o, &config()), ActionName::ExpandVolume);
        assert!(d.contains(says) && d.contains("not expanded"), "{d}");
    }
}

mod window {
    use crate::actions::expand_volume::{
        Modification, ModificationState as S, Window, modification_window,
    };
    use crate::ids::VolumeId;
    use chrono::{DateTime, TimeDelta, Utc};

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("a fixed time")
    }

    fn m(gib: i32, state: S, started: &str) -> Modification {
        Modification { target_gib: Some(gib), state, started: at(started) }
    }

    #[test]
    fn ebs_takes_one_modification_every_six_hours() {
        let v = VolumeId::parse("t", "vol-0123456789abcdef0").expect("an id");
        let now = at("2026-12-07T10:00:00Z");
        assert_eq!(modification_window(&v, &[], now), Window::Open);
        // Modified 2 hours ago: closed until 14:00, and nothing is done.
        let two_h = [m(41, S::Completed, "2026-12-07T08:00:00Z")];
        let Window::Closed(why) = modification_window(&v, &two_h, now) else {
            panic!("open 2 hours after a modification");
        };
        assert!(why.contains("modified 2h00 ago (2026-12-07T08:00:00Z, to 41 GiB, completed)"), "{why}");
        assert!(why.contains("grown again after 2026-12-07T14:00:00Z"), "{why}");
        assert!(why.contains("no snapshot, no request"), "{why}");
        // Exactly 6 hours on, and later: open. Only the latest counts.
        let old = [
            m(30, S::Completed, "2026-12-06T01:00:00Z"),
            m(41, S::Completed, "2026-12-07T04:00:00Z"),
        ];
        assert_eq!(modification_window(&v, &old, now), Window::Open);
        assert_eq!(
            modification_window(&v, &two_h, now + TimeDelta::hours(4)),
            Window::Open
        );
        // A failed one may be retried at once.
        let failed = [m(41, S::Failed, "2026-12-07T09:50:00Z")];
        assert_eq!(modification_window(&v, &failed, now), Window::Open);
        let failed_after = [two_h[0].clone(), failed[0].clone()];
        assert!(matches!(modification_window(&v, &failed_after, now), Window::Closed(_)));
    }

    #[test]
    fn a_modification_under_way_is_waited_for() {
        let v = VolumeId::parse("t", "vol-0123456789abcdef0").expect("an id");
        let now = at("2026-12-07T10:00:00Z");
        for state in [S::Modifying, S::Optimizing] {
            let mods = [m(40, state, "2026-12-07T09:59:00Z")];
            assert_eq!(
                modification_window(&v, &mods, now),
                Window::UnderWay { target_gib: 40, started: at("2026-12-07T09:59:00Z") }
            );
        }
        // Under way without a new size (a type change): nothing to wait for.
        let typed = [Modification {
            target_gib: None,
            state: S::Optimizing,
            started: at("2026-12-07T01:00:00Z"),
        }];
        let Window::Closed(why) = modification_window(&v, &typed, now) else {
            panic!("a type change under way left it open");
        };
        assert!(why.contains("being modified now (to a new type or performance, optimizing"), "{why}");
    }
}

#[test]
fn a_metric_that_is_not_a_percentage_is_not_forecast() {
    // The same rise, in bytes (the agent's disk_free, or a unit the alarm
    // gives): no forecast, the rule's size, and the page says why.
    let mut bytes = rising(2.0);
    bytes.metric = "CWAgent/disk_free".into();
    let mut o = disk_fleet();
    o.metric = Some(Ok(bytes.clone()));
    let p = plan(&incident(DISK), &o, &config());
    assert!(p.forecast.is_none());
    assert_eq!(expansion_of(&p).to_gib, 120);
    assert!(
        p.notes.iter().any(|n| n.contains("no forecast: CWAgent/disk_free gives no unit and its name does not say it is a percentage")),
        "{:?}",
        p.notes
    );
    bytes.unit = Some("Bytes".into());
    assert_eq!(
        bytes.as_percent(),
        Err("no forecast: CWAgent/disk_free is in Bytes, not a percentage".into())
    );
    // A percentage by its unit, by its name, or by its expression's shape.
    let mut pct = rising(2.0);
    pct.unit = Some("Percent".into());
    assert_eq!(pct.as_percent(), Ok(()));
    pct.unit = None;
    for name in ["CWAgent/disk_used_percent", "LogicalDisk % Free Space", "100 * (1 - m1 / m2)"] {
        pct.metric = name.into();
        assert_eq!(pct.as_percent(), Ok(()), "{name}");
    }
    // Values past 100 are no percentage, whatever the name says.
    let mut over = rising(2.0);
    over.max = 1.5e9;
    assert!(over.as_percent().is_err_and(|e| e.contains("not a percentage")));
}
