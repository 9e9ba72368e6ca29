//! The pure half of kill_process: the PID it picks, the script it sends, the
//! names it accepts and when it decides to act. The script itself runs for
//! real in the instance stand-in (`tests/tests/instance.rs`).

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
