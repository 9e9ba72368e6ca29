//! The scripts the actions send through SSM, by name, as
//! `first-responder script NAME --key VALUE ...` prints them: each action
//! lists its own (`SCRIPTS`), built by the same functions the responder
//! uses, from arguments validated as the responder validates its inputs.

/// One script an action sends.
pub struct Script {
    pub name: &'static str,
    /// Its arguments, as `--list` shows them.
    pub usage: &'static str,
    /// Arguments that build it, for `--list`'s readers and the tests (which
    /// print every script with them and run shellcheck on it).
    pub example: &'static [&'static str],
    pub build: fn(&Args) -> Result<Vec<String>, String>,
}

/// `--key value` arguments, each key at most once, each allowed by the
/// script (`Args::parse` with the script's usage).
#[derive(Debug, Default)]
pub struct Args(Vec<(String, String)>);

impl Args {
    /// Reads `--key value` pairs (or `--key=value`); only keys the usage
    /// names are accepted.
    pub fn parse(usage: &str, args: &[String]) -> Result<Self, String> {
        let known: Vec<&str> = usage
            .split(|c: char| c.is_whitespace() || c == '[' || c == ']')
            .filter(|w| w.starts_with("--"))
            .collect();
        let mut out = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let (key, value) = match a.split_once('=') {
                Some((k, v)) if k.starts_with("--") => (k.to_owned(), v.to_owned()),
                _ if a.starts_with("--") => {
                    let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
                    (a.clone(), v.clone())
                }
                _ => return Err(format!("unexpected argument {a:?}: give --key value")),
            };
            if !known.contains(&key.as_str()) {
                return Err(format!(
                    "unknown argument {key}; this script takes: {}",
                    if usage.is_empty() { "nothing" } else { usage }
                ));
            }
            if out.iter().any(|(k, _)| *k == key) {
                return Err(format!("{key} given twice"));
            }
            out.push((key, value));
        }
        Ok(Self(out))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn required(&self, key: &str) -> Result<&str, String> {
        self.get(key).ok_or_else(|| format!("{key} is required"))
    }

    /// A number, or `default` when not given.
    pub fn number<T: std::str::FromStr>(&self, key: &str, default: Option<T>) -> Result<T, String> {
        match (self.get(key), default) {
            (Some(v), _) => v
                .parse()
                .map_err(|_| format!("{key} {v:?}: expected a whole number")),
            (None, Some(d)) => Ok(d),
            (None, None) => Err(format!("{key} is required")),
        }
    }
}

/// Every script of every action, in the registry's order.
pub fn all() -> impl Iterator<Item = &'static Script> {
    super::ActionName::ALL.iter().flat_map(|a| a.scripts())
}

/// The script of that name, built from these arguments.
pub fn build(name: &str, args: &[String]) -> Result<Vec<String>, String> {
    let s = all().find(|s| s.name == name).ok_or_else(|| {
        format!(
            "no script {name:?}; there are: {}",
            all().map(|s| s.name).collect::<Vec<_>>().join(", ")
        )
    })?;
    (s.build)(&Args::parse(s.usage, args)?)
}
