//! The decisions of restart_service, through the planner: observed state in,
//! decision out (fixtures in `plan::tests`).

use crate::plan::tests::*;

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
