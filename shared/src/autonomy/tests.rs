use super::*;

#[test]
fn a_rate_reads_days_and_hours_and_refuses_the_rest() {
    assert_eq!(Rate::parse("2 in 7d"), Ok(DEFAULT_DEMOTE_AFTER));
    assert_eq!(
        Rate::parse("3 in 36h").map(|r| (r.count, r.window_seconds, r.window_text())),
        Ok((3, 36 * 3600, "36 hours".to_owned()))
    );
    assert_eq!(DEFAULT_CHRONIC_AFTER.to_string(), "3 in 7d");
    for bad in [
        "",
        "2",
        "two in 7d",
        "2 in 7w",
        "0 in 7d",
        "2 in 0d",
        "2 in d",
    ] {
        assert!(Rate::parse(bad).is_err(), "{bad:?}");
    }
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn scope(name: &str, accounts: &[&str], t: &[(&str, &str)], groups: &[&str]) -> Scope {
    Scope {
        name: name.into(),
        accounts: accounts.iter().map(|a| (*a).to_owned()).collect(),
        tags: tags(t),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        modes: BTreeMap::new(),
    }
}

#[test]
fn a_scope_matches_when_every_key_it_sets_matches() {
    let instance = tags(&[("Environment", "production")]);
    let group = tags(&[("Team", "web")]);
    let s = Subject {
        account: Some("222222222222"),
        alias: Some("prod"),
        instance_tags: Some(&instance),
        group_tags: Some(&group),
        group: Some("web-asg"),
    };
    assert!(scope("a", &["prod"], &[], &[]).matches(&s), "by alias");
    assert!(scope("a", &["222222222222"], &[], &[]).matches(&s), "by id");
    assert!(!scope("a", &["111111111111"], &[], &[]).matches(&s));
    // Tags on the instance or its group; all of them.
    assert!(
        scope(
            "a",
            &[],
            &[("Environment", "production"), ("Team", "web")],
            &[]
        )
        .matches(&s)
    );
    assert!(
        !scope(
            "a",
            &[],
            &[("Environment", "production"), ("Team", "db")],
            &[]
        )
        .matches(&s)
    );
    assert!(scope("a", &[], &[], &["web-*"]).matches(&s));
    assert!(!scope("a", &[], &[], &["db-*"]).matches(&s));
    // A group pattern never matches an instance in no group.
    let alone = Subject { group: None, ..s };
    assert!(!scope("a", &[], &[], &["*"]).matches(&alone));
    // Every key: a right account with a wrong group is no match.
    assert!(!scope("a", &["prod"], &[], &["db-*"]).matches(&s));
    // No key at all: everything.
    assert!(scope("a", &[], &[], &[]).matches(&alone));
}

#[test]
fn the_first_matching_scope_naming_the_action_decides_else_the_table_else_the_default() {
    let mut prod = scope("prod", &["prod"], &[], &[]);
    prod.modes
        .insert(ActionName::ExpandVolume, ActionMode::Approve);
    let mut web = scope("web", &[], &[], &["web-*"]);
    web.modes.insert(ActionName::ScaleOut, ActionMode::Observe);
    web.modes.insert(ActionName::ExpandVolume, ActionMode::Auto);
    let scopes = [prod, web];
    let s = Subject {
        alias: Some("prod"),
        group: Some("web-asg"),
        ..Subject::default()
    };
    let got = |a, table| {
        let r = resolve(&scopes, table, a, &s);
        (r.mode, r.scope, r.from)
    };
    // prod comes first and names expand_volume.
    assert_eq!(
        got(ActionName::ExpandVolume, None),
        (ActionMode::Approve, "prod".into(), "scope prod".into())
    );
    // prod does not name scale_out; web does.
    assert_eq!(
        got(ActionName::ScaleOut, Some(ActionMode::Auto)),
        (ActionMode::Observe, "web".into(), "scope web".into())
    );
    // Neither names reboot: the table, else the default, in the first
    // matching scope.
    assert_eq!(
        got(ActionName::Reboot, Some(ActionMode::Auto)),
        (ActionMode::Auto, "prod".into(), "playbook".into())
    );
    assert_eq!(
        got(ActionName::Reboot, None),
        (ActionMode::Approve, "prod".into(), "default".into())
    );
    let nowhere = Subject::default();
    let r = resolve(&scopes, None, ActionName::CleanupTemp, &nowhere);
    assert_eq!(
        (r.mode, r.scope.as_str()),
        (ActionMode::Auto, DEFAULT_SCOPE)
    );
}

fn miss(at: i64, id: &str) -> Miss {
    Miss {
        at,
        incident: id.into(),
    }
}

#[test]
fn demotion_counts_still_firing_checks_in_the_window_since_the_last_restore() {
    let day = 86_400;
    let now = 100 * day;
    let rate = DEFAULT_DEMOTE_AFTER;
    let two = [miss(now - 6 * day, "inc-a"), miss(now - day, "inc-b")];
    let why = demoted(&two, None, rate, now).expect("demoted");
    assert_eq!(
        why,
        "2 checks said still firing within 7 days (incidents inc-a, inc-b)"
    );
    // One of them older than 7 days: not yet.
    let old = [miss(now - 8 * day, "inc-a"), miss(now - day, "inc-b")];
    assert_eq!(demoted(&old, None, rate, now), None);
    // Restored between them: only the later one counts.
    assert_eq!(demoted(&two, Some(now - 2 * day), rate, now), None);
    // Restored, then two more: demoted again.
    let again = [
        miss(now - 6 * day, "inc-a"),
        miss(now - day, "inc-b"),
        miss(now, "inc-c"),
    ];
    assert!(demoted(&again, Some(now - 2 * day), rate, now).is_some());
}

#[test]
fn a_chronic_problem_is_the_rate_reached_before_this_incident() {
    let day = 86_400;
    let now = 100 * day;
    let run = |days: i64, id: &str| PastRun {
        at: now - days * day,
        incident: id.into(),
        verdict: Some("recovered".into()),
    };
    let three = [run(1, "inc-c"), run(6, "inc-a"), run(3, "inc-b")];
    let found = chronic(&three, "inc-d", DEFAULT_CHRONIC_AFTER, now).expect("chronic");
    let ids: Vec<&str> = found.iter().map(|r| r.incident.as_str()).collect();
    assert_eq!(ids, ["inc-a", "inc-b", "inc-c"], "oldest first");
    // A redelivery of the third's own incident does not count itself.
    assert_eq!(chronic(&three, "inc-c", DEFAULT_CHRONIC_AFTER, now), None);
    // One outside the week: two within, not chronic.
    let spread = [run(1, "inc-c"), run(8, "inc-a"), run(3, "inc-b")];
    assert_eq!(chronic(&spread, "inc-d", DEFAULT_CHRONIC_AFTER, now), None);
}

#[test]
fn since_reads_days_and_hours() {
    assert_eq!(trust::parse_since("30d"), Ok(30 * 86_400));
    assert_eq!(trust::parse_since("12h"), Ok(12 * 3_600));
    assert!(trust::parse_since("a month").is_err());
}
