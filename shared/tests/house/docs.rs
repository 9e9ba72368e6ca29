//! The documentation cannot drift from the code: `docs/configuration.md`
//! lists exactly the settings the functions and the CLI read, and every
//! relative link in the repository's Markdown resolves (the file, and the
//! heading an anchor names, as GitHub makes anchors).

use crate::common;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace above shared/")
        .to_path_buf()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The settings named in the first column of the configuration tables.
fn documented() -> BTreeSet<String> {
    let text = read(&root().join("docs/configuration.md"));
    let mut out = BTreeSet::new();
    for line in text.lines().filter(|l| l.starts_with("| ")) {
        let first = line.split('|').nth(1).unwrap_or_default();
        for name in first.split('`').skip(1).step_by(2) {
            if is_setting(name) {
                out.insert(name.to_owned());
            }
        }
    }
    out
}

fn is_setting(name: &str) -> bool {
    name.len() > 2
        && name.starts_with(|c: char| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Every name the code reads from the environment: what `Config` asks its
/// lookup for (run, so a name built at run time counts too), and the
/// literal names of `env::var`/`var_os` and `get("…")` in the sources of
/// the library, the functions and the CLI.
fn read_by_code() -> BTreeSet<String> {
    let asked = RefCell::new(BTreeSet::new());
    let _ = first_responder::Config::from_lookup(|name| {
        asked.borrow_mut().insert(name.to_owned());
        None
    });
    let mut out = asked.into_inner();
    let files: Vec<PathBuf> = ["shared/src", "functions", "cli/src"]
        .iter()
        .flat_map(|dir| common::rust_files(&root().join(dir)))
        .collect();
    for f in files.iter().filter(|f| !f.ends_with("tests.rs")) {
        let text = read(f);
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for pat in ["env::var(\"", "env::var_os(\"", "get(\""] {
            for (i, _) in code.match_indices(pat) {
                let name: String = code[i + pat.len()..]
                    .chars()
                    .take_while(|c| *c != '"')
                    .collect();
                if is_setting(&name) {
                    out.insert(name);
                }
            }
        }
    }
    out
}

/// Set by Lambda itself, not by whoever deploys: not settings.
const SET_BY_LAMBDA: &[&str] = &["_X_AMZN_TRACE_ID", "AWS_XRAY_DAEMON_ADDRESS"];
/// Read by a library on the code's behalf (`tracing_subscriber::EnvFilter`).
const READ_BY_LIBRARIES: &[&str] = &["RUST_LOG"];

#[test]
fn every_setting_the_code_reads_is_documented_and_every_documented_one_is_read() {
    let documented = documented();
    let read: BTreeSet<String> = read_by_code()
        .into_iter()
        .filter(|n| !SET_BY_LAMBDA.contains(&n.as_str()))
        .collect();
    assert!(
        read.len() >= 40,
        "the scan found too few settings to be right: {read:?}"
    );
    let missing: Vec<_> = read.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "read by the code, not in docs/configuration.md: {missing:?}"
    );
    let stale: Vec<_> = documented
        .iter()
        .filter(|n| !read.contains(*n) && !READ_BY_LIBRARIES.contains(&n.as_str()))
        .collect();
    assert!(
        stale.is_empty(),
        "in docs/configuration.md, read by nothing: {stale:?}"
    );
}

/// The repository's Markdown: the top level and `docs/`, `infra/`, `tests/`.
fn markdown() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in [".", "docs", "infra", "tests", "bench"] {
        let Ok(entries) = std::fs::read_dir(root().join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "md") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces
/// to hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            out.insert(slug(line.trim_start_matches('#')));
        }
    }
    out
}

/// `[text](target)` outside code fences and code spans.
fn links(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join("");
        for (i, _) in prose.match_indices("](") {
            let target: String = prose[i + 2..].chars().take_while(|c| *c != ')').collect();
            out.push(target);
        }
    }
    out
}

#[test]
fn every_relative_link_in_the_markdown_resolves() {
    let files = markdown();
    assert!(files.iter().any(|f| f.ends_with("docs/configuration.md")));
    let mut broken = Vec::new();
    let mut checked = 0;
    for f in &files {
        let text = read(f);
        for target in links(&text) {
            if target.starts_with("http://")
                || target.starts_with("https://")
                || target.starts_with("mailto:")
            {
                continue;
            }
            checked += 1;
            let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let file = match path {
                "" => f.clone(),
                p => f.parent().unwrap_or(Path::new(".")).join(p),
            };
            if !file.exists() {
                broken.push(format!("{}: {target} (no such file)", f.display()));
                continue;
            }
            if !anchor.is_empty() && !anchors(&read(&file)).contains(anchor) {
                broken.push(format!("{}: {target} (no such heading)", f.display()));
            }
        }
    }
    assert!(checked >= 20, "too few links found to be right: {checked}");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_readme_is_a_front_door() {
    let text = read(&root().join("README.md"));
    let lines = text.lines().count();
    assert!(
        lines <= 250,
        "README.md has {lines} lines; the rest belongs in docs/"
    );
    // The two commands come first, as a fresh machine runs them.
    let commands: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("```sh"))
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .collect();
    assert_eq!(commands.len(), 2, "{commands:?}");
    assert!(commands[0].starts_with("make demo"), "{commands:?}");
    assert!(commands[1].starts_with("make test"), "{commands:?}");
    assert!(text.contains("```mermaid"), "the flow's diagram");
    for doc in [
        "deploy",
        "configuration",
        "playbooks",
        "accounts",
        "approvals",
        "backtest",
        "testing",
        "security",
    ] {
        assert!(
            text.contains(&format!("(docs/{doc}.md)")),
            "README links docs/{doc}.md"
        );
    }
}
