//! Text from an event, made safe to show a human: one line, every control,
//! bidirectional-override and zero-width character escaped, cut at a stated
//! length, and quoted so it cannot pass for first-responder's own words
//! (a forged "WHAT FIRST-RESPONDER DID" section, a reordered line).

/// Event text shown in the email is cut at this many characters.
pub const MAX_FIELD_CHARS: usize = 300;
/// A reason or an alarm rule, which run longer.
pub const MAX_LONG_FIELD_CHARS: usize = 1_000;

/// Characters that change how text around them is displayed without being
/// visible themselves: bidi embeddings, overrides and isolates, marks, and
/// zero-width characters.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{00AD}' | '\u{180E}')
}

/// One line: `\n`, `\r`, `\t` and other control, bidi and zero-width
/// characters become visible escapes (`\n`, `\u{202e}`); a backslash is
/// doubled so an escape cannot be faked.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || is_invisible(c) => {
                out.push_str(&format!("\\u{{{:04x}}}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out
}

/// [`escape`]d, cut at `max` characters (saying so), in double quotes.
pub fn quoted(s: &str, max: usize) -> String {
    let e = escape(s);
    let n = e.chars().count();
    if n <= max {
        return format!("\"{}\"", e.replace('"', "\\\""));
    }
    let head: String = e.chars().take(max).collect();
    format!(
        "\"{}\"... [cut: {n} characters, first {max} shown]",
        head.replace('"', "\\\"")
    )
}

/// Text that may hold lines (command output): every line kept, but other
/// control, bidi and zero-width characters escaped.
pub fn escape_keeping_lines(s: &str) -> String {
    s.split('\n')
        .map(|l| escape(l.strip_suffix('\r').unwrap_or(l)).replace("\\t", "\t"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// An address a person may be sent to from a page: `http` or `https`, at
/// most 2,048 characters, nothing that could end a markdown link or an
/// HTML attribute. None: left out (the alert is handled all the same).
pub fn web_url(s: &str) -> Option<String> {
    let s = s.trim();
    let scheme_ok = s.starts_with("https://") || s.starts_with("http://");
    let clean = s.chars().all(|c| {
        c.is_ascii_graphic()
            && !matches!(
                c,
                '"' | '\'' | '<' | '>' | '`' | '(' | ')' | '\\' | '[' | ']' | '{' | '}' | '|' | '^'
            )
    });
    (scheme_ok && clean && s.len() <= 2_048 && s.len() > "https://".len()).then(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_could_forge_a_line_or_reorder_one() {
        assert_eq!(escape("a\nb\r\tc"), "a\\nb\\r\\tc");
        assert_eq!(
            escape("x\u{202e}y\u{200b}z\u{2066}"),
            "x\\u{202e}y\\u{200b}z\\u{2066}"
        );
        assert_eq!(escape("\u{1b}[31m"), "\\u{001b}[31m");
        assert_eq!(escape("a\\nb"), "a\\\\nb");
        assert_eq!(
            escape("plain text, 95.3% é 日本"),
            "plain text, 95.3% é 日本"
        );
        assert_eq!(quoted("say \"hi\"", 50), "\"say \\\"hi\\\"\"");
        let long = "x".repeat(400);
        let q = quoted(&long, 300);
        assert!(q.ends_with("[cut: 400 characters, first 300 shown]"), "{q}");
        assert!(!q.contains('\n'));
        assert_eq!(
            escape_keeping_lines("a\r\nb\u{202e}\n\tc"),
            "a\nb\\u{202e}\n\tc"
        );
    }
}
