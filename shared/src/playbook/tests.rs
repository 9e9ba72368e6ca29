use super::*;

#[test]
fn the_embedded_file_validates() {
    let p = Playbooks::parse("default", DEFAULT_TEXT).unwrap();
    assert_eq!(
        p.stages(IncidentKind::DiskFull),
        [
            vec![ActionName::CleanupTemp, ActionName::ArchiveLogs],
            vec![ActionName::ExpandVolume]
        ]
    );
    assert_eq!(p.high_cpu.scale_out.at_percent, 90.0);
    assert_eq!(p.disk_full.expand_volume.max_volume_gib, 2048);
    assert_eq!(p.disk_full.archive_logs.bucket, None);
    assert_eq!(p.next_steps(IncidentKind::HighCpu).len(), 5);
    assert!(p.runs(IncidentKind::ServiceDown, ActionName::Reboot));
    assert_eq!(
        p.stage_of(IncidentKind::ServiceDown, ActionName::ReplaceInstance),
        1
    );
    assert_eq!(
        p.to_string().lines().next(),
        Some("high_cpu: snapshot + collect_diagnostics + scale_out -> notify")
    );
}

#[test]
fn reboot_and_replace_are_held_for_approval_and_a_bad_value_is_an_error() {
    let p = Playbooks::parse("default", DEFAULT_TEXT).unwrap();
    let mode = |p: &Playbooks, k, a| p.mode_of(k, a, &Default::default()).mode;
    assert_eq!(
        mode(&p, IncidentKind::ServiceDown, ActionName::Reboot),
        ActionMode::Approve
    );
    assert_eq!(
        mode(&p, IncidentKind::ServiceDown, ActionName::ReplaceInstance),
        ActionMode::Approve
    );
    assert_eq!(
        mode(&p, IncidentKind::HighCpu, ActionName::ScaleOut),
        ActionMode::Auto
    );
    assert!(p.holds_any());
    let auto = DEFAULT_TEXT.replace("approval = \"required\"", "approval = \"auto\"");
    let auto = Playbooks::parse("p.toml", &auto).unwrap();
    assert_eq!(
        mode(&auto, IncidentKind::ServiceDown, ActionName::Reboot),
        ActionMode::Auto
    );
    // Left out, a reboot is approved by a person (the shipped default).
    let unset = DEFAULT_TEXT.replace("approval = \"required\"", "");
    let unset = Playbooks::parse("p.toml", &unset).unwrap();
    assert_eq!(
        mode(&unset, IncidentKind::ServiceDown, ActionName::Reboot),
        ActionMode::Approve
    );
    assert_eq!(
        mode(&unset, IncidentKind::DiskFull, ActionName::ExpandVolume),
        ActionMode::Auto
    );
    let e = broken(
        "[high_cpu.scale_out]\n",
        "[high_cpu.scale_out]\napproval = \"maybe\"\n",
    );
    assert_eq!(e.line, line_with("[high_cpu.scale_out]") + 1);
    assert!(
        e.message.contains(
            "high_cpu.scale_out.approval is \"maybe\": expected \"required\" or \"auto\""
        ),
        "{e}"
    );
}

#[test]
fn an_action_may_have_its_own_budget() {
    let text = DEFAULT_TEXT.replacen(
        "[high_cpu.scale_out]\n",
        "[high_cpu.scale_out]\nbudget_per_hour = 4\n",
        1,
    );
    let p = Playbooks::parse("p.toml", &text).unwrap();
    assert_eq!(p.high_cpu.budgets.get(&ActionName::ScaleOut), Some(&4));
    assert!(p.disk_full.budgets.is_empty());
    let e = broken(
        "[high_cpu.scale_out]\n",
        "[high_cpu.scale_out]\nbudget_per_hour = 0\n",
    );
    assert!(e.message.contains("budget_per_hour"), "{e}");
}

fn broken(from: &str, to: &str) -> PlaybookError {
    assert!(DEFAULT_TEXT.contains(from), "{from}");
    Playbooks::parse("p.toml", &DEFAULT_TEXT.replacen(from, to, 1)).unwrap_err()
}

fn line_with(needle: &str) -> usize {
    DEFAULT_TEXT
        .lines()
        .position(|l| l.contains(needle))
        .unwrap()
        + 1
}

#[test]
fn errors_name_the_line_and_the_problem() {
    let e = broken(
        r#"stages = [["cleanup_temp", "archive_logs"], ["expand_volume"]]"#,
        r#"stages = [["cleanup_temp", "scale_up"], ["expand_volume"]]"#,
    );
    assert_eq!(e.line, line_with(r#"[["cleanup_temp", "archive_logs"]"#));
    assert!(e.message.contains("unknown variant `scale_up`"), "{e}");
    assert!(
        e.message.contains("cleanup_temp") && e.message.contains("scale_out"),
        "{e}"
    );
    assert!(e.to_string().starts_with("playbooks file p.toml, line "));
    // The notification always goes last: it is not listed.
    let e = broken(
        r#"stages = [["cleanup_temp", "archive_logs"], ["expand_volume"]]"#,
        r#"stages = [["cleanup_temp", "archive_logs"], ["expand_volume", "notify"]]"#,
    );
    assert!(e.message.contains("unknown variant `notify`"), "{e}");

    let e = broken("grow_percent = 20", "grow_percent = 250");
    assert_eq!(e.line, line_with("grow_percent = 20"));
    assert_eq!(
        e.message,
        "disk_full.expand_volume.grow_percent is 250, expected a whole number from 1 to 100"
    );

    let e = broken("at_percent = 95.0", "at_percent = 0.0");
    assert!(e.message.contains("expected a percentage"), "{e}");

    let e = broken("grow_min_gib = 10", "grow_min_gib = 10\ngrow_max = 3");
    assert_eq!(e.line, line_with("grow_min_gib = 10") + 1);
    assert!(e.message.contains("unknown field `grow_max`"), "{e}");

    let e = broken(
        r#"[["collect_diagnostics"], ["restart_service"]]"#,
        r#"[["collect_diagnostics"], ["restart_service", "collect_diagnostics"]]"#,
    );
    assert!(e.message.contains("lists collect_diagnostics twice"), "{e}");

    let e = broken("at_percent = 90.0", "at_percent = \"high\"");
    assert_eq!(e.line, line_with("at_percent = 90.0"));
    assert!(e.message.contains("invalid type"), "{e}");

    let e = broken(r#"bucket = """#, r#"bucket = "Logs_Bucket""#);
    assert!(e.message.contains("not an S3 bucket name"), "{e}");

    let typo = DEFAULT_TEXT.replace("[service_down", "[service_dwon");
    let e = Playbooks::parse("p.toml", &typo).unwrap_err();
    assert!(e.message.contains("service_dwon"), "{e}");

    let e = broken(
        "max_volume_gib = 2048",
        "max_volume_gib = 2048\nmax_volume_gib = 4096",
    );
    assert_eq!(e.line, line_with("max_volume_gib = 2048") + 1);

    let e = Playbooks::parse("p.toml", "[high_cpu\n").unwrap_err();
    assert_eq!(e.line, 1);
}

/// The layout before per-action tables: every parameter directly under
/// its kind. Still read, each key with a warning naming the new one.
const OLD_LAYOUT: &str = r#"
[high_cpu]
stages = [["snapshot", "collect_diagnostics", "scale_out"]]
scale_out_at_percent = 80.0
next_steps = ["Look."]

[disk_full]
stages = [["cleanup_temp", "archive_logs"], ["expand_volume"]]
temp_older_than_days = 3
logs_older_than_days = 4
log_archive_bucket = "my-logs"
expand_at_percent = 93.0
grow_percent = 25
grow_min_gib = 5
max_volume_gib = 1000
expand_cooldown_hours = 12
modification_wait_seconds = 60
next_steps = ["Look."]

[memory_pressure]
stages = [["collect_diagnostics"], ["restart_service"]]
service_tag = "svc"
restart_cooldown_minutes = 20
next_steps = ["Look."]

[service_down]
stages = [["snapshot", "collect_evidence"], ["replace_instance", "reboot"]]
replace_cooldown_minutes = 10
next_steps = ["Look."]
"#;

#[test]
fn the_old_layout_is_read_with_a_warning_naming_the_new_key() {
    let p = Playbooks::parse("old.toml", OLD_LAYOUT).unwrap();
    assert_eq!(p.high_cpu.scale_out.at_percent, 80.0);
    assert_eq!(p.disk_full.cleanup_temp.older_than_days, Some(3));
    assert_eq!(p.disk_full.archive_logs.older_than_days, 4);
    assert_eq!(p.disk_full.archive_logs.bucket.as_deref(), Some("my-logs"));
    assert_eq!(p.disk_full.expand_volume.at_percent, 93.0);
    assert_eq!(p.disk_full.expand_volume.grow_percent, 25);
    assert_eq!(p.disk_full.expand_volume.grow_min_gib, 5);
    assert_eq!(p.disk_full.expand_volume.max_volume_gib, 1000);
    assert_eq!(p.disk_full.expand_volume.cooldown_hours, 12);
    assert_eq!(p.disk_full.expand_volume.modification_wait_seconds, 60);
    assert_eq!(p.memory_pressure.restart_service.service_tag, "svc");
    assert_eq!(p.memory_pressure.restart_service.cooldown_minutes, 20);
    assert_eq!(p.service_down.replace_instance.cooldown_minutes, 10);
    assert_eq!(p.service_down.reboot.cooldown_minutes, 10);
    assert_eq!(p.warnings.len(), 13, "{:#?}", p.warnings);
    assert!(
        p.warnings.iter().any(|w| w
            == "playbooks file old.toml, line 9: disk_full.temp_older_than_days is the old layout, accepted for one release: write `older_than_days = ...` under [disk_full.cleanup_temp]"),
        "{:#?}",
        p.warnings
    );
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains("write `at_percent = ...` under [disk_full.expand_volume]")),
        "{:#?}",
        p.warnings
    );
    // The new layout warns of nothing.
    assert_eq!(Playbooks::default().warnings, Vec::<String>::new());
}

#[test]
fn a_parameter_given_in_both_layouts_or_in_neither_is_an_error() {
    let both = DEFAULT_TEXT.replacen(
        "[disk_full]\n",
        "[disk_full]\nexpand_at_percent = 90.0\n",
        1,
    );
    let e = Playbooks::parse("p", &both).unwrap_err();
    assert_eq!(
        e.message,
        "disk_full.expand_at_percent is the old spelling of [disk_full.expand_volume] at_percent, which is also given: keep one"
    );
    let neither = DEFAULT_TEXT.replacen("at_percent = 95.0\n", "", 1);
    let e = Playbooks::parse("p", &neither).unwrap_err();
    assert_eq!(e.message, "[disk_full.expand_volume] needs at_percent");
    let e = broken("cooldown_hours = 24", "cooldown_hour = 24");
    assert!(e.message.contains("unknown field `cooldown_hour`"), "{e}");
}

/// Which kinds run which action is the playbooks file's to say: listing
/// another action in a kind takes its table there, and nothing in the code.
#[test]
fn any_kind_may_list_any_action_with_its_table() {
    let listed = DEFAULT_TEXT.replacen(
        r#"stages = [["cleanup_temp", "archive_logs"], ["expand_volume"]]"#,
        r#"stages = [["cleanup_temp", "archive_logs", "scale_out"], ["expand_volume"]]"#,
        1,
    );
    let e = Playbooks::parse("p.toml", &listed).unwrap_err();
    assert_eq!(e.message, "[disk_full.scale_out] needs at_percent");
    assert_eq!(
        e.line,
        line_with(r#"stages = [["cleanup_temp", "archive_logs"]"#)
    );
    let with_table = listed.replacen(
        "[disk_full.cleanup_temp]",
        "[disk_full.scale_out]\nat_percent = 97.0\n\n[disk_full.cleanup_temp]",
        1,
    );
    let p = Playbooks::parse("p.toml", &with_table).unwrap();
    assert!(p.runs(IncidentKind::DiskFull, ActionName::ScaleOut));
    assert_eq!(p.disk_full.scale_out.at_percent, 97.0);
    // high_cpu's own threshold is untouched.
    assert_eq!(p.high_cpu.scale_out.at_percent, 90.0);
}

#[test]
fn an_action_left_out_is_off() {
    let text = DEFAULT_TEXT.replacen(
        r#"[["collect_diagnostics"], ["restart_service"]]"#,
        r#"[["collect_diagnostics"]]"#,
        1,
    );
    let p = Playbooks::parse("p", &text).unwrap();
    assert!(!p.runs(IncidentKind::MemoryPressure, ActionName::RestartService));
    assert!(p.runs(IncidentKind::MemoryPressure, ActionName::CollectDiagnostics));
}

#[test]
fn load_names_an_unreadable_file() {
    let e = Playbooks::load(Some("/nonexistent/playbooks.toml")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/playbooks.toml"), "{e}");
    assert!(e.message.contains("cannot be read"), "{e}");
}

#[test]
fn scopes_are_read_in_file_order_and_validated_with_their_line() {
    let text = format!(
        "demote_after = \"3 in 2d\"\n{DEFAULT_TEXT}\n[scopes.zeta]\naccounts = [\"prod\"]\n[scopes.zeta.modes]\nscale_out = \"observe\"\n\n[scopes.alpha]\ngroups = [\"web-*\"]\n[scopes.alpha.modes]\nexpand_volume = \"approve\"\n"
    );
    let p = Playbooks::parse("p.toml", &text).unwrap();
    let names: Vec<&str> = p.scopes.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["zeta", "alpha"], "file order, not name order");
    assert_eq!(p.demote_after.to_string(), "3 in 2d");
    assert_eq!(p.chronic_after, crate::autonomy::DEFAULT_CHRONIC_AFTER);
    let modes = p.modes_text();
    assert!(
        modes.contains("scope zeta: high_cpu.scale_out observe"),
        "{modes}"
    );
    assert!(modes.contains("disk_full.expand_volume approve"), "{modes}");
    assert!(
        modes.contains("scope default: high_cpu.scale_out auto"),
        "{modes}"
    );
    assert!(modes.contains("service_down.reboot approve"), "{modes}");
    // A mode for something that changes nothing, an unknown mode, an
    // unknown action, the reserved name, mode and approval at odds: each
    // an error at its line.
    let bad = |extra: &str| {
        Playbooks::parse("p.toml", &format!("{DEFAULT_TEXT}\n{extra}"))
            .unwrap_err()
            .to_string()
    };
    let e = bad("[scopes.x.modes]\nsnapshot = \"observe\"\n");
    assert!(
        e.contains("snapshot changes nothing, so it has no mode"),
        "{e}"
    );
    let e = bad("[scopes.x.modes]\nscale_out = \"sometimes\"\n");
    assert!(
        e.contains("expected \"observe\", \"approve\" or \"auto\""),
        "{e}"
    );
    assert!(
        e.contains(&format!("line {}", DEFAULT_TEXT.lines().count() + 3)),
        "{e}"
    );
    let e = bad("[scopes.x.modes]\nscale_up = \"auto\"\n");
    assert!(e.contains("names \"scale_up\": not an action"), "{e}");
    let e = bad("[scopes.default]\naccounts = [\"1\"]\n");
    assert!(e.contains("the name is taken"), "{e}");
    let e = bad("[scopes.x]\ncolour = \"red\"\n");
    assert!(e.contains("unknown field"), "{e}");
    let e = broken(
        "approval = \"required\"",
        "approval = \"required\"\nmode = \"auto\"",
    );
    assert!(
        e.message.contains("sets mode = \"auto\" and approval"),
        "{e}"
    );
    let e = Playbooks::parse(
        "p.toml",
        &format!("chronic_after = \"often\"\n{DEFAULT_TEXT}"),
    )
    .unwrap_err();
    assert_eq!(e.line, 1, "{e}");
    // `mode` in an action's table.
    let observe = broken_ok(
        "[high_cpu.scale_out]\n",
        "[high_cpu.scale_out]\nmode = \"observe\"\n",
    );
    assert_eq!(
        observe.high_cpu.modes.get(&ActionName::ScaleOut),
        Some(&ActionMode::Observe)
    );
}

fn broken_ok(from: &str, to: &str) -> Playbooks {
    Playbooks::parse("p.toml", &DEFAULT_TEXT.replacen(from, to, 1)).unwrap()
}
