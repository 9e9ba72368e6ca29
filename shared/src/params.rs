//! Validation of the playbooks file's values, with the span of each so an
//! error names its line. Below the actions: each action validates its own
//! table (`[kind.action]`) with it; the playbook loader collects the errors.

use std::ops::Range;

use toml::Spanned;

/// Where the table being read is, and whether its action is listed (an
/// unlisted action's table may be left out: its defaults are never used).
#[derive(Clone, Debug, Default)]
pub struct Table {
    /// `disk_full.expand_volume`
    pub name: String,
    pub listed: bool,
    /// The kind's stages, for errors about a missing key.
    pub span: Range<usize>,
}

#[derive(Debug, Default)]
pub struct Validator {
    pub errors: Vec<(Range<usize>, String)>,
    pub warnings: Vec<(Range<usize>, String)>,
    pub table: Table,
}

impl Validator {
    pub fn fail(&mut self, span: Range<usize>, message: String) {
        self.errors.push((span, message));
    }

    /// A key of the current table: missing from a listed action's table it
    /// is an error ("[disk_full.expand_volume] needs at_percent").
    pub fn required<T>(&mut self, key: &str, v: Option<Spanned<T>>) -> Option<Spanned<T>> {
        if v.is_none() && self.table.listed {
            let span = self.table.span.clone();
            let name = self.table.name.clone();
            self.fail(span, format!("[{name}] needs {key}"));
        }
        v
    }

    /// A parameter from its action's table (`[kind.action] key`), or from
    /// the old layout (`old_key` directly under the kind) with a warning
    /// naming the new key. Both: an error.
    pub fn pick<T>(
        &mut self,
        table: &str,
        key: &str,
        new: Option<Spanned<T>>,
        old_key: &str,
        old: Option<Spanned<T>>,
    ) -> Option<Spanned<T>> {
        let kind = table.split('.').next().unwrap_or(table);
        match (new, old) {
            (n, None) => n,
            (None, Some(o)) => {
                self.warnings.push((
                    o.span(),
                    format!(
                        "{kind}.{old_key} is the old layout, accepted for one release: write `{key} = ...` under [{table}]"
                    ),
                ));
                Some(o)
            }
            (Some(_), Some(o)) => {
                self.fail(
                    o.span(),
                    format!(
                        "{kind}.{old_key} is the old spelling of [{table}] {key}, which is also given: keep one"
                    ),
                );
                None
            }
        }
    }

    /// The full name of a key of the current table, for messages.
    fn field(&self, key: &str) -> String {
        format!("{}.{key}", self.table.name)
    }

    pub fn percent(&mut self, key: &str, v: Option<Spanned<f64>>, default: f64) -> f64 {
        let Some(v) = self.required(key, v) else {
            return default;
        };
        let x = *v.get_ref();
        if !(x > 0.0 && x <= 100.0) {
            let field = self.field(key);
            self.fail(
                v.span(),
                format!("{field} is {x}, expected a percentage above 0 and at most 100"),
            );
        }
        x
    }

    /// A key added after the playbooks file's layout was fixed: a file
    /// written before it still loads, with the default.
    pub fn optional_range(
        &mut self,
        key: &str,
        v: Option<Spanned<i64>>,
        bounds: (i64, i64),
        default: u32,
    ) -> u32 {
        match v {
            None => default,
            some => self.range(key, some, bounds, default),
        }
    }

    /// A multiplier from `min` to `max`, optional like [`Self::optional_range`].
    pub fn optional_factor(
        &mut self,
        key: &str,
        v: Option<Spanned<f64>>,
        (min, max): (f64, f64),
        default: f64,
    ) -> f64 {
        let Some(v) = v else {
            return default;
        };
        let x = *v.get_ref();
        if !(min..=max).contains(&x) {
            let field = self.field(key);
            self.fail(
                v.span(),
                format!("{field} is {x}, expected a factor from {min} to {max}"),
            );
            return default;
        }
        x
    }

    pub fn range(
        &mut self,
        key: &str,
        v: Option<Spanned<i64>>,
        (min, max): (i64, i64),
        default: u32,
    ) -> u32 {
        let Some(v) = self.required(key, v) else {
            return default;
        };
        let x = *v.get_ref();
        if x < min || x > max {
            let field = self.field(key);
            self.fail(
                v.span(),
                format!("{field} is {x}, expected a whole number from {min} to {max}"),
            );
        }
        u32::try_from(x.clamp(min, max)).unwrap_or_default()
    }

    pub fn gib(&mut self, key: &str, v: Option<Spanned<i64>>, min: i64, default: i32) -> i32 {
        // gp2/gp3/io1/io2/st1/sc1 all stop at 16 TiB (io2 Block Express and
        // newer gp3 go further, deliberately not assumed here).
        let d = u32::try_from(default).unwrap_or_default();
        i32::try_from(self.range(key, v, (min, 16_384), d)).unwrap_or_default()
    }

    pub fn text(&mut self, key: &str, v: Option<Spanned<String>>) -> Option<Spanned<String>> {
        self.required(key, v)
    }

    pub fn steps(&mut self, kind: &str, v: Spanned<Vec<String>>) -> Vec<String> {
        if v.get_ref().iter().any(|s| s.trim().is_empty()) {
            self.fail(v.span(), format!("{kind}.next_steps has an empty step"));
        }
        v.into_inner()
    }
}
