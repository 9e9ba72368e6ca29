//! The decisions of snapshot, through the planner: observed state in,
//! decision out (fixtures in `plan::tests`).

use crate::plan::tests::*;

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
