use chrono::TimeZone;

use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 3, 0, 0).unwrap()
}

fn fs(instance: &str, path: &str, per_hour: f64, last: f64) -> Filesystem {
    Filesystem {
        instance: instance.into(),
        dimensions: vec![
            ("InstanceId".into(), instance.into()),
            ("path".into(), path.into()),
            ("device".into(), "xvdf".into()),
            ("fstype".into(), "xfs".into()),
        ],
        points: (0..36i32)
            .map(|i| Point {
                at: now() - chrono::Duration::minutes(i64::from(5 * (35 - i))),
                value: last - per_hour * f64::from(35 - i) / 12.0,
            })
            .collect(),
    }
}

#[test]
fn only_filesystems_full_within_the_horizon_are_at_risk() {
    let all = [
        // 90% + 2/h: full in 5 h.
        fs("i-0123456789abcdef0", "/data", 2.0, 90.0),
        // 50% + 2/h: full in 25 h, beyond 6.
        fs("i-0123456789abcdef0", "/", 2.0, 50.0),
        // Flat.
        fs("i-0fedcba9876543210", "/data", 0.0, 97.0),
    ];
    let c = at_risk(&all, now(), 6);
    assert_eq!(c.filesystems, 3);
    assert_eq!(c.at_risk.len(), 1, "{c:?}");
    let r = &c.at_risk[0];
    assert_eq!(
        (r.instance.as_str(), r.path.as_str()),
        ("i-0123456789abcdef0", "/data")
    );
    assert_eq!(r.forecast.full_at.as_deref(), Some("2026-11-25T08:00:00Z"));
    let j = serde_json::to_value(&c).unwrap();
    assert_eq!(j["at_risk"][0]["full_at"], "2026-11-25T08:00:00Z");
    assert_eq!(j["at_risk"][0]["percent_per_hour"], 2.0);
    // A longer horizon takes the second one too, soonest first.
    let c = at_risk(&all, now(), 30);
    let paths: Vec<&str> = c.at_risk.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/data", "/"]);
}

#[test]
fn the_incident_is_a_disk_filling_one_about_that_filesystem() {
    let f = fs("i-0123456789abcdef0", "/data", 2.0, 90.0);
    let c = at_risk(std::slice::from_ref(&f), now(), 6);
    let r = &c.at_risk[0];
    let a = incident(r, occurrence(r, now()), now()).unwrap();
    assert_eq!(a.kind, IncidentKind::DiskFilling);
    assert_eq!(a.alert.source, AlertSource::Forecast);
    assert_eq!(
        a.instance().map(|i| i.as_str()),
        Some("i-0123456789abcdef0")
    );
    assert!(
        a.alert
            .reason
            .contains("/data on i-0123456789abcdef0 is 90.0% used and full in about 5 h"),
        "{}",
        a.alert.reason
    );
    assert_eq!(a.alert.metric.as_ref().map(|m| m.dimensions.len()), Some(4));
    // The occurrence names the incident: the same one, the same id.
    let again = incident(
        r,
        occurrence(r, now()),
        now() + chrono::Duration::minutes(15),
    )
    .unwrap();
    assert_eq!(a.id, again.id);
    assert_eq!(hold_key(r), "disk_filling#i-0123456789abcdef0#/data");
    assert!(is_scheduled_event(
        &serde_json::json!({"first_responder_forecast": {}})
    ));
    assert!(!is_scheduled_event(&serde_json::json!({"detail": {}})));
}
