//! Sizes a newcomer can read: no source file of the library, the CLI or the
//! functions over 600 lines, and no function over 100, tests aside (a
//! file's `mod tests { … }` and the `tests.rs` files beside the code).

use crate::common;

use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 600;
const MAX_FN_LINES: usize = 100;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

/// The non-test sources: `shared/src`, `cli/src`, `functions/*/src`.
fn sources() -> Vec<PathBuf> {
    let root = root();
    let mut dirs = vec![root.join("shared/src"), root.join("cli/src")];
    if let Ok(fns) = std::fs::read_dir(root.join("functions")) {
        dirs.extend(
            fns.flatten()
                .map(|f| f.path().join("src"))
                .filter(|p| p.is_dir()),
        );
    }
    dirs.iter()
        .flat_map(|d| common::rust_files(d))
        .filter(|p| !p.ends_with("tests.rs"))
        .collect()
}

/// A file's lines up to its test module.
fn code_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("read source");
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let end = lines
        .windows(2)
        .position(|w| w[0].starts_with("#[cfg(test)]") && w[1].starts_with("mod tests"))
        .unwrap_or(lines.len());
    lines[..end].to_vec()
}

/// Each function's name and length in lines: from its `fn` line to the
/// closing brace at the same indentation (declarations without a body
/// aside).
fn functions(lines: &[String]) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = &lines[i];
        let indent = line.len() - line.trim_start().len();
        let t = line.trim_start();
        let head = t
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub(super) ")
            .trim_start_matches("pub ")
            .trim_start_matches("const ")
            .trim_start_matches("async ");
        let Some(rest) = head.strip_prefix("fn ") else {
            i += 1;
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        // The signature ends at `{` (a body), at `;` (a declaration) or on
        // a line that opens and closes its body.
        let ends = |l: &str| {
            let l = l.trim_end();
            (
                l.ends_with('{'),
                l.ends_with(';') || (l.contains('{') && l.ends_with('}')),
            )
        };
        let Some(j) = (i..lines.len()).find(|&j| ends(&lines[j]) != (false, false)) else {
            break;
        };
        if ends(&lines[j]).1 {
            i = j + 1;
            continue;
        }
        let close = format!("{}}}", " ".repeat(indent));
        let end = (j + 1..lines.len())
            .find(|&k| lines[k] == close)
            .unwrap_or(lines.len() - 1);
        out.push((name, i + 1, end - i + 1));
        i = end + 1;
    }
    out
}

#[test]
fn no_source_file_is_over_600_lines() {
    let files = sources();
    assert!(files.len() > 80, "found only {} files", files.len());
    let long: Vec<String> = files
        .iter()
        .map(|f| (f, code_lines(f).len()))
        .filter(|(_, n)| *n > MAX_FILE_LINES)
        .map(|(f, n)| format!("{}: {n} lines", f.display()))
        .collect();
    assert!(long.is_empty(), "over {MAX_FILE_LINES} lines: {long:#?}");
}

#[test]
fn no_function_is_over_100_lines() {
    let mut long = Vec::new();
    let mut seen = 0;
    for f in sources() {
        for (name, line, n) in functions(&code_lines(&f)) {
            seen += 1;
            if n > MAX_FN_LINES {
                long.push(format!("{}:{line} {name}: {n} lines", f.display()));
            }
        }
    }
    assert!(seen > 500, "found only {seen} functions");
    assert!(long.is_empty(), "over {MAX_FN_LINES} lines: {long:#?}");
}

#[test]
fn the_reader_measures_a_function_from_fn_to_its_brace() {
    let src = "impl X {\n    pub(crate) async fn a(\n        x: u8,\n    ) -> u8 {\n        x\n    }\n    fn decl(&self);\n}\nfn b() {}\nfn c() {\n}\n";
    let lines: Vec<String> = src.lines().map(str::to_owned).collect();
    let got = functions(&lines);
    assert_eq!(
        got,
        vec![("a".into(), 2, 5), ("c".into(), 10, 2)],
        "one-line bodies and declarations are not measured"
    );
}
