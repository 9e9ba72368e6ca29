//! The decisions of replace_instance and reboot, through the planner: observed state in,
//! decision out (fixtures in `plan::tests`).

use crate::plan::tests::*;

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
        Decision::Hold(Step::ReplaceInstance(replace_instance::Step { .. }))
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
    assert_eq!(decision_of(&p, Reboot), "i-0123456789abcdef0: hold");
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
        "../../../../events/alertmanager-service-down.json"
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
            "hold",
            "skip: i-0123456789abcdef0 is in group web-asg",
        ),
        (
            Some(Ok(health("running", "impaired", "ok"))),
            false,
            "skip: i-0123456789abcdef0 is in no Auto Scaling group",
            "hold",
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
        "i-0123456789abcdef0: hold"
    );
    o.ssm_online = Some(Ok(true));
    assert!(decision_of(&plan(&i, &o, &c), Reboot).contains(healthy));
    // CloudWatch's StatusCheckFailed is EC2's own word: acts as before,
    // without reading the checks again.
    let p = plan(&incident(DOWN), &fleet(1, 3), &config());
    assert_eq!(decision_of(&p, ReplaceInstance), "i-0123456789abcdef0: hold");
}

/// The group would not replace it: a suspended process, or the instance
/// not InService. Replace is skipped with the reason, and the reboot (held
/// for approval) is the remedy left.
#[test]
fn a_group_that_would_not_replace_it_leaves_the_reboot() {
    use ActionName::*;
    let i = incident(DOWN);
    let with = |suspended: &[&str], lifecycle: Option<&str>| {
        let mut o = fleet(1, 3);
        if let Ok(Some(g)) = &mut o.group {
            g.suspended = suspended.iter().map(|s| s.to_string()).collect();
            g.lifecycle = lifecycle.map(str::to_owned);
        }
        plan(&i, &o, &config())
    };
    let p = with(&["ReplaceUnhealthy"], Some("InService"));
    assert_eq!(
        decision_of(&p, ReplaceInstance),
        "i-0123456789abcdef0: skip: group web-asg has its ReplaceUnhealthy process suspended: it would not replace i-0123456789abcdef0"
    );
    assert_eq!(decision_of(&p, Reboot), "i-0123456789abcdef0: hold");
    let p = with(&[], Some("Standby"));
    assert_eq!(
        decision_of(&p, ReplaceInstance),
        "i-0123456789abcdef0: skip: i-0123456789abcdef0 is Standby in group web-asg, not InService: the group does not replace it"
    );
    let p = with(&["AZRebalance"], Some("InService"));
    assert!(
        decision_of(&p, ReplaceInstance).ends_with(": hold"),
        "{}",
        decision_of(&p, ReplaceInstance)
    );
    assert!(decision_of(&p, Reboot).contains("replaced, not rebooted"));
}
