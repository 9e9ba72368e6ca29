//! The layers of `shared/src` (ARCHITECTURE.md, "Layers and adding an
//! action"), read from the sources: no action imports anything above the
//! actions, and the vocabulary imports neither the actions' folders nor
//! anything above them. A `crate::x` path anywhere in a file (outside its
//! test modules) counts as an import.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Modules above the actions: the configuration and the pipeline.
const ABOVE_ACTIONS: &[&str] = &[
    "playbook", "config", "observe", "plan", "engine", "notify", "respond", "webhook",
];

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read shared/src") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs")
            && p.file_name().is_some_and(|n| n != "tests.rs")
        {
            out.push(p);
        }
    }
}

/// The top-level modules a file names through `crate::`, test modules left out.
fn imports(path: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(path).expect("read source");
    let code = text
        .split("#[cfg(test)]\nmod tests {")
        .next()
        .unwrap_or_default();
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let name: String = code[i + 7..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_action_imports_anything_above_the_actions() {
    let mut all = Vec::new();
    files(&src().join("actions"), &mut all);
    assert!(all.len() > 20, "found only {all:?}");
    let mut wrong = Vec::new();
    for f in &all {
        for m in imports(f) {
            if ABOVE_ACTIONS.contains(&m.as_str()) {
                wrong.push(format!("{} imports crate::{m}", f.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn the_vocabulary_imports_no_action_and_nothing_above() {
    // `report` names `ActionName` (the registry's): that one edge is allowed.
    for (module, allowed_actions) in [
        ("ids", false),
        ("text", false),
        ("error", false),
        ("commands", false),
        ("disk", false),
        ("observed", false),
        ("params", false),
        ("incident", false),
        ("alert", false),
        ("outcome", false),
        ("window", false),
        ("report", true),
    ] {
        let mut paths = Vec::new();
        let file = src().join(format!("{module}.rs"));
        if file.exists() {
            paths.push(file);
        } else {
            files(&src().join(module), &mut paths);
        }
        assert!(!paths.is_empty(), "no source for {module}");
        for p in paths {
            for m in imports(&p) {
                assert!(
                    !ABOVE_ACTIONS.contains(&m.as_str()),
                    "{} imports crate::{m}, which is above it",
                    p.display()
                );
                assert!(
                    m != "actions" || allowed_actions,
                    "{} imports crate::actions",
                    p.display()
                );
            }
        }
    }
}
