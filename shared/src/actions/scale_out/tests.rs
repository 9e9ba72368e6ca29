//! The decisions of scale_out, through the planner: observed state in,
//! decision out (fixtures in `plan::tests`).

use crate::plan::tests::*;

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
        &incident(include_str!("../../../../events/high-cpu-alarm-moderate.json")),
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
        &incident(include_str!("../../../../events/high-cpu-alarm-moderate.json")),
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
fn a_group_that_launches_nothing_is_not_scaled() {
    let mut observed = fleet(1, 3);
    if let Ok(Some(g)) = &mut observed.group {
        g.suspended = vec!["AZRebalance".into(), "Launch".into()];
    }
    assert_eq!(
        scale_decision(&plan(&incident(ALARM), &observed, &config())),
        "skip: group web-asg has its Launch process suspended: a larger desired capacity would launch nothing"
    );
}
