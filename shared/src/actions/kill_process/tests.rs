//! The pure half of kill_process: the PID it picks, the script it sends, the
//! names it accepts and when it decides to act. The script itself runs for
//! real in the instance stand-in (`tests/tests/emulator/instance.rs`).

use super::*;

const PS: &str = "== top processes by CPU ==
USER         PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND
app         4242 98.7  1.2 123456  7890 ?        R    01:59   9:59 java -jar app.jar
root           1  0.0  0.1  16800  9000 ?        Ss   Nov25   0:02 /sbin/init
== memory (MiB) ==
";

#[test]
fn the_top_cpu_pid_is_the_first_row_under_the_header() {
    assert_eq!(top_cpu_pid(PS), Some(4242));
    assert_eq!(top_cpu_pid("== top processes by CPU ==\n"), None);
    assert_eq!(top_cpu_pid("nothing"), None);
    // A header that is not ps's: nothing picked rather than a wrong column.
    assert_eq!(
        top_cpu_pid("== top processes by CPU ==\nNAME CPU\njava 99\n"),
        None
    );
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
    let s = script(4242, &allow, 7).join("\n");
    assert!(s.contains("PID=4242\n"), "{s}");
    assert!(s.contains("TICKS=70\n"), "{s}");
    assert!(s.contains("case \"$comm\" in 'java'|'node') ;;"), "{s}");
    // No allow-list: matches nothing (an empty case pattern is an empty name).
    assert!(script(1, &[], 1).join("\n").contains("in '') ;;"));
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
    let ok = build("kill_process", &args(&["--pid=7", "--allow", "java,node"])).unwrap();
    assert!(ok.join("\n").contains("PID=7\n"));
}
