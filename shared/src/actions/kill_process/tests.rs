//! The pure half of kill_process: the PID it picks, the script it sends, the
//! names it accepts and when it decides to act. The script itself runs for
//! real in the instance stand-in (`tests/tests/emulator/instance.rs`).

use super::*;

const DIAGNOSTICS: &str = "== processes by current CPU (two /proc samples 1 s apart) ==
PID START %CPU UNIT COMM
4242 1234567 98.0 app.service java
77 5000 1.0 - bash
== top processes by CPU (ps: averaged over the life of each process) ==
USER         PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND
root           1  99.0  0.1  16800  9000 ?        Ss   Nov25   0:02 /sbin/init
== memory (MiB) ==
";

#[test]
fn the_candidate_is_the_top_row_by_current_cpu_with_its_start_time() {
    // ps's lifetime average put PID 1 first; the sample never lists it.
    assert_eq!(
        top_cpu_process(DIAGNOSTICS),
        Some(Candidate {
            pid: 4242,
            start: 1_234_567,
            cpu_percent: 98.0,
            unit: "app.service".into(),
            comm: "java".into(),
        })
    );
    let header = "== processes by current CPU (two /proc samples 1 s apart) ==\nPID START %CPU UNIT COMM\n";
    assert_eq!(top_cpu_process(header), None);
    assert_eq!(top_cpu_process("nothing"), None);
    // PID 1, or a row without a start time: no candidate at all.
    assert_eq!(top_cpu_process(&format!("{header}1 1 99.0 - init\n")), None);
    assert_eq!(top_cpu_process(&format!("{header}4242 x 99.0 - java\n")), None);
    assert!(is_system_service("sshd.service"));
    assert!(is_system_service("getty@tty1.service"));
    assert!(!is_system_service("app.service"));
    assert!(!is_system_service("-"));
}

#[test]
fn only_kernel_process_names_are_accepted() {
    for ok in ["java", "node", "python3.11", "stress-ng", "php-fpm8.2", "g++"] {
        assert!(ProcessName::parse("t", ok).is_ok(), "{ok}");
    }
    for bad in ["", "a b", "x;rm", "$(id)", "'q'", "averyveryverylongname", "a*"] {
        assert!(ProcessName::parse("t", bad).is_err(), "{bad:?}");
    }
}

#[test]
fn the_script_holds_only_typed_values() {
    let allow = [
        ProcessName::parse("t", "java").unwrap(),
        ProcessName::parse("t", "node").unwrap(),
    ];
    let c = top_cpu_process(DIAGNOSTICS).unwrap();
    let s = script(&c, &allow, 7).join("\n");
    assert!(s.contains("PID=4242\nSTART=1234567\n"), "{s}");
    assert!(s.contains("TICKS=70\n"), "{s}");
    assert!(s.contains("case \"$comm\" in 'java'|'node') ;;"), "{s}");
    assert!(s.contains("'sshd.service'|"), "{s}");
    assert!(s.contains("|'getty@'*'.service'|"), "{s}");
    // No allow-list: matches nothing (an empty case pattern is an empty name).
    assert!(script(&c, &[], 1).join("\n").contains("in '') ;;"));
}

/// Its decision, through the planner: observed state and playbook in,
/// decision out.
#[test]
fn it_acts_only_when_listed_after_the_diagnostics_allowed_and_opted_in() {
    use crate::plan::tests::{ALARM, config, fleet, incident, summary};
    use crate::plan::{ActionName, plan};
    type Setup = fn(&mut crate::config::Config, &mut crate::observed::Observed);
    let cases: &[(&str, Setup, &str)] = &[
        ("not listed: off", |_, _| {}, "absent"),
        (
            "listed, allow empty",
            |c, _| c.playbooks.high_cpu.stages.push(vec![ActionName::KillProcess]),
            "skip: [high_cpu.kill_process] allow names no process",
        ),
        (
            "listed beside the diagnostics, not after",
            |c, _| {
                c.playbooks.high_cpu.stages[0].push(ActionName::KillProcess);
                c.playbooks.high_cpu.kill_process.allow =
                    vec![ProcessName::parse("t", "java").unwrap()];
            },
            "skip: kill_process picks the process from collect_diagnostics' output",
        ),
        (
            "after the diagnostics, allowed, opted-in instance",
            |c, _| {
                c.playbooks.high_cpu.stages.push(vec![ActionName::KillProcess]);
                c.playbooks.high_cpu.kill_process.allow =
                    vec![ProcessName::parse("t", "java").unwrap()];
            },
            "do",
        ),
        (
            "an instance without the opt-in tag",
            |c, o| {
                c.playbooks.high_cpu.stages.push(vec![ActionName::KillProcess]);
                c.playbooks.high_cpu.kill_process.allow =
                    vec![ProcessName::parse("t", "java").unwrap()];
                if let Ok(Some(s)) = &mut o.instance {
                    s.tags.clear();
                }
            },
            "skip: instance i-0123456789abcdef0 does not carry the opt-in tag",
        ),
    ];
    for (what, setup, want) in cases {
        let mut c = config();
        c.opt_in = Some(("first-responder".into(), "enabled".into()));
        let mut o = fleet(1, 4);
        setup(&mut c, &mut o);
        let p = plan(&incident(ALARM), &o, &c);
        let got = summary(&p)
            .into_iter()
            .find(|(n, ..)| *n == ActionName::KillProcess)
            .map(|(_, _, d)| d)
            .unwrap_or_else(|| "absent".into());
        assert!(got.starts_with(want), "{what}: {got}");
        if *want == "do" {
            let a = p
                .actions
                .iter()
                .find(|a| a.name == ActionName::KillProcess)
                .unwrap();
            assert_eq!(a.stage, 1, "{what}");
            assert!(a.reason.contains("if it is java"), "{what}: {}", a.reason);
        }
    }
}

/// `first-responder script kill_process` refuses what the responder would.
#[test]
fn its_printed_script_refuses_bad_names_and_numbers() {
    use crate::actions::script::build;
    let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let e = build("kill_process", &args(&["--pid", "1", "--allow", "java;reboot"])).unwrap_err();
    assert!(e.contains("a process name is 1-15 of"), "{e}");
    let e = build("kill_process", &args(&["--pid", "x", "--allow", "java"])).unwrap_err();
    assert!(e.contains("--pid \"x\": expected a whole number"), "{e}");
    let e = build("kill_process", &args(&["--allow", "java"])).unwrap_err();
    assert_eq!(e, "--pid is required");
    let e = build(
        "kill_process",
        &args(&["--pid", "1", "--allow", "java", "--grace-seconds", "0"]),
    )
    .unwrap_err();
    assert!(e.contains("1 to 120"), "{e}");
    let e = build("kill_process", &args(&["--pid", "1", "--allow", "java", "--signal", "9"])).unwrap_err();
    assert!(e.contains("unknown argument --signal"), "{e}");
    let e = build("kill_process", &args(&["--pid=7", "--allow", "java"])).unwrap_err();
    assert!(e.contains("--start is required"), "{e}");
    let ok = build(
        "kill_process",
        &args(&["--pid=7", "--start", "99", "--allow", "java,node"]),
    )
    .unwrap();
    assert!(ok.join("\n").contains("PID=7\nSTART=99\n"));
    let e = build("kill_process", &args(&["--pid", "1", "--start", "1", "--allow", "systemd"])).unwrap_err();
    assert!(e.contains("the init process is never stopped"), "{e}");
}
