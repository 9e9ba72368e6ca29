//! The layers of `shared/src` (ARCHITECTURE.md, "Layers"), read from the
//! sources. Every `crate::` path outside a file's test module is an import,
//! grouped ones (`use crate::{a::X, b::{c, d}}`) included. A module may
//! import from its own layer or below, never above, and the imports form no
//! cycle. A module is a top-level one (`plan`, `engine`), or the AWS side of
//! a pure one where it is listed apart (`verify::run`): its parent must not
//! import it back (no `pub use run::…`).

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// From the bottom up. Adding a module means placing it here.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "vocabulary",
        &[
            "ids",
            "text",
            "error",
            "window",
            "params",
            "commands",
            "names",
            "telemetry",
            "xray",
            "outcome",
            "alert",
            "incident",
            "observed",
            "disk",
            "series",
            "report",
            "oncall",
            "metrics",
        ],
    ),
    ("the clients", &["aws"]),
    ("the actions and the state table", &["actions", "state"]),
    (
        "configuration",
        &["approval", "autonomy", "playbook", "target", "config"],
    ),
    (
        "the pipeline",
        &["observe", "plan", "budget", "notify", "verify", "forecast"],
    ),
    ("the engine", &["engine"]),
    (
        "entry points",
        &[
            "respond",
            "webhook",
            "backtest",
            "backtest::run",
            "verify::run",
            "forecast::run",
            "approval::run",
            "autonomy::run",
        ],
    ),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, ms)| ms.contains(&module))
}

/// A module listed apart from its parent (`x::run`).
fn split(top: &str) -> Option<String> {
    let name = format!("{top}::run");
    layer_of(&name).map(|_| name)
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The module a file belongs to; None for `lib.rs`.
fn module_of(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(src()).ok()?;
    let parts: Vec<String> = rel
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let top = parts.first()?.clone();
    if top == "lib" {
        return None;
    }
    match (parts.get(1).map(String::as_str), split(&top)) {
        (Some("run"), Some(s)) => Some(s),
        _ => Some(top),
    }
}

/// A file's code without its test module and comments.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read source");
    let body = text
        .split("#[cfg(test)]\nmod tests {")
        .next()
        .unwrap_or_default()
        .to_owned();
    body.lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The modules one `use` tree item (`a::b::C`, `a::{…}`) names: its first
/// segment, or `x::run` where that is listed apart and the item reaches it.
fn named(item: &str) -> Vec<String> {
    let item = item.trim();
    let top: String = item
        .chars()
        .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
        .collect();
    if top.is_empty() || top == "self" {
        return Vec::new();
    }
    let rest = item[top.len()..]
        .trim_start()
        .strip_prefix("::")
        .unwrap_or("");
    let Some(apart) = split(&top) else {
        return vec![top];
    };
    let reaches_run = |s: &str| s == "run" || s.starts_with("run::");
    let inner: Vec<&str> = match rest.strip_prefix('{') {
        Some(g) => items(g.trim_end_matches('}'))
            .into_iter()
            .map(str::trim)
            .collect(),
        None => vec![rest.trim()],
    };
    let mut out = Vec::new();
    for i in inner {
        out.push(if reaches_run(i) {
            apart.clone()
        } else {
            top.clone()
        });
    }
    out.dedup();
    out
}

/// Splits a brace group's text at its top-level commas.
fn items(group: &str) -> Vec<&str> {
    let (mut depth, mut start, mut out) = (0, 0, Vec::new());
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&group[start..]);
    out
}

/// The `use` tree at the start of `rest`: a path, and the brace group
/// that may end it (balanced).
fn tree(rest: &str) -> &str {
    let path = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(rest.len());
    if !rest[path..].starts_with('{') {
        return &rest[..path];
    }
    let mut depth = 0;
    for (i, c) in rest[path..].char_indices() {
        depth += match c {
            '{' => 1,
            '}' => -1,
            _ => 0,
        };
        if depth == 0 {
            return &rest[..path + i + 1];
        }
    }
    rest
}

/// The modules a piece of code names through `crate::`.
fn imports_in(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let t = tree(&code[i + 7..]);
        match t.strip_prefix('{') {
            Some(group) => out.extend(
                items(group.trim_end_matches('}'))
                    .into_iter()
                    .flat_map(named),
            ),
            None => out.extend(named(t)),
        }
    }
    out
}

/// Each module's imports of other modules, with the files that make them.
fn graph() -> Graph {
    let all: Vec<PathBuf> = common::rust_files(&src())
        .into_iter()
        .filter(|p| !p.ends_with("tests.rs"))
        .collect();
    let mut g = Graph::new();
    for f in &all {
        let Some(m) = module_of(f) else { continue };
        let code = code(f);
        let mut names = imports_in(&code);
        // The parent of a module listed apart must not reach into it.
        if let Some(apart) = split(&m)
            && !m.contains("::")
            && (code.contains("use run::") || code.contains("run::{"))
        {
            names.insert(apart);
        }
        let rel = f.strip_prefix(src()).unwrap_or(f).display().to_string();
        let edges = g.entry(m.clone()).or_default();
        for n in names.into_iter().filter(|n| *n != m) {
            edges.entry(n).or_default().insert(rel.clone());
        }
    }
    g
}

#[test]
fn every_module_has_a_layer() {
    let mut missing = Vec::new();
    for e in std::fs::read_dir(src()).expect("read shared/src") {
        let p = e.expect("dir entry").path();
        let name = p.file_stem().map(|s| s.to_string_lossy().into_owned());
        match name.as_deref() {
            Some("lib") | None => {}
            Some(n) if layer_of(n).is_none() => missing.push(n.to_owned()),
            Some(_) => {}
        }
    }
    assert!(
        missing.is_empty(),
        "not in LAYERS (shared/tests/house/layers.rs) nor ARCHITECTURE.md: {missing:?}"
    );
}

#[test]
fn no_module_imports_from_a_layer_above_its_own() {
    let g = graph();
    assert!(g.len() > 30, "found only {:?}", g.keys());
    let mut wrong = Vec::new();
    for (from, edges) in &g {
        let Some(lf) = layer_of(from) else { continue };
        for (to, files) in edges {
            let Some(lt) = layer_of(to) else {
                wrong.push(format!("{from} imports {to}, which has no layer"));
                continue;
            };
            if lt > lf {
                wrong.push(format!(
                    "{from} ({}) imports {to} ({}), above it: {files:?}",
                    LAYERS[lf].0, LAYERS[lt].0
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

/// A cycle among the modules, as the path that closes it; depth-first,
/// keeping the path: a module met again on it closes a cycle.
fn find_cycle(g: &Graph) -> Option<Vec<String>> {
    fn visit(
        m: &str,
        g: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == m) {
            let mut cycle = path[i..].to_vec();
            cycle.push(m.to_owned());
            return Some(cycle);
        }
        if !done.insert(m.to_owned()) {
            return None;
        }
        path.push(m.to_owned());
        for next in g.get(m).into_iter().flat_map(BTreeMap::keys) {
            if let Some(c) = visit(next, g, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    g.keys()
        .find_map(|m| visit(m, g, &mut Vec::new(), &mut done))
}

#[test]
fn the_imports_form_no_cycle() {
    let g = graph();
    if let Some(cycle) = find_cycle(&g) {
        let hops: Vec<String> = cycle
            .windows(2)
            .map(|w| format!("{} -> {} {:?}", w[0], w[1], g[&w[0]][&w[1]]))
            .collect();
        panic!("an import cycle: {}\n{hops:#?}", cycle.join(" -> "));
    }
}

#[test]
fn the_reader_sees_grouped_and_nested_imports() {
    let code = "use crate::{alert::Alert, verify::{self, run::check}, ids};\nlet x = crate::plan::plan(a);\nuse crate::verify::run::verify;";
    let got = imports_in(code);
    let want: BTreeSet<String> = ["alert", "verify", "ids", "plan", "verify::run"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(got, want);
    assert!(imports_in("use crate::verify::{is_fix, run::verify};").contains("verify::run"));
    assert!(!imports_in("use crate::verify::run_length;").contains("verify::run"));
    // A cycle is found and named; a chain is not one (made-up graphs).
    let made = |edges: &[(&str, &str)]| {
        let mut g = Graph::new();
        for (a, b) in edges {
            g.entry((*a).into())
                .or_default()
                .insert((*b).into(), BTreeSet::new());
        }
        g
    };
    assert_eq!(
        find_cycle(&made(&[("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")])),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(
        find_cycle(&made(&[("a", "b"), ("b", "c"), ("a", "c")])),
        None
    );
}
