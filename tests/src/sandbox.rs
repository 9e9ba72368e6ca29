//! One-shot runs of a script in an instance's sandbox ([`crate::ssm::Instance`],
//! which fails closed: a command runs only after `findmnt` shows that /tmp,
//! /var/tmp and /var/log are the sandbox's own mounts, in a mount namespace
//! that is not the host's). Needs root (as CI is) and util-linux.
//!
//! A run is: seed (make the instance's files), a listing of every file,
//! the script under test, the listing again, then an optional check; the
//! listings are parsed into [`Entry`]s so a test can compare them.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::ssm::{Instance, REFUSED, Shell};

/// One file as the listing saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// `f` regular file, `l` symlink, `d` directory, ...
    pub kind: String,
    pub size: u64,
    /// 512-byte blocks allocated.
    pub blocks: u64,
    pub mtime: String,
    pub link_target: String,
    /// SHA-256 of a regular file's content.
    pub sha256: String,
}

#[derive(Debug)]
pub struct Run {
    /// What the script printed.
    pub stdout: String,
    pub stderr: String,
    /// The script's exit status.
    pub status: i32,
    pub before: BTreeMap<String, Entry>,
    pub after: BTreeMap<String, Entry>,
    /// `df -B1 --output=used` of each private mount, before and after.
    pub used_before: BTreeMap<String, u64>,
    pub used_after: BTreeMap<String, u64>,
    /// What the check printed.
    pub check: String,
}

/// A sandbox; `skip_mount` unmounts one of its private paths after the seed
/// (to prove that nothing then runs).
#[derive(Clone, Debug, Default)]
pub struct Sandbox {
    pub skip_mount: Option<&'static str>,
    /// What the script under test runs under (dash unless asked); the
    /// seed, the listings and the check are the harness's, in bash.
    pub shell: Shell,
}

/// Between the sections of the listing (no file name holds it).
const SECTION: &[u8] = b"\x1e--fr-section--\x1e";

const LISTING: &str = r#"find /tmp /var/tmp /var/log -mindepth 1 -printf '%p\0%y\0%s\0%b\0%T@\0%l\0' ; printf '\036--fr-section--\036'
find /tmp /var/tmp /var/log -type f -exec sha256sum -z {} + 2>/dev/null; printf '\036--fr-section--\036'
for d in /tmp /var/tmp /var/log; do printf '%s\0%s\0' "$d" "$(df -B1 --output=used "$d" | tail -n 1 | tr -d ' ')"; done"#;

const STEP: Duration = Duration::from_secs(120);

impl Sandbox {
    /// Runs `script` (the commands as SSM would get them, one per line)
    /// after `seed`, and `check` after it; each in the instance's sandbox.
    pub async fn run(&self, seed: &str, script: &[String], check: &str) -> Result<Run> {
        let instance = Instance::start(seed)?;
        if let Some(path) = self.skip_mount {
            instance.sh(&format!("umount {path}")).await?;
        }
        let step = |what: &'static str, script: String| {
            let instance = &instance;
            let shell = if what == "script" {
                self.shell
            } else {
                Shell::Bash
            };
            async move {
                let (code, out, err) = instance.run_in(shell, &script, STEP).await;
                if code == REFUSED {
                    bail!("refused: {}", err.trim());
                }
                if what != "script" && code != 0 {
                    bail!("the sandbox's {what} failed (exit {code}): {err}");
                }
                Ok((code, out, err))
            }
        };
        let (_, before, _) = step("listing", LISTING.to_owned()).await?;
        let (status, stdout, stderr) = step("script", script.join("\n")).await?;
        let (_, after, _) = step("listing", LISTING.to_owned()).await?;
        let (_, check, _) = step("check", check.to_owned()).await?;
        let (before, used_before) = listing(before.as_bytes())?;
        let (after, used_after) = listing(after.as_bytes())?;
        Ok(Run {
            stdout,
            stderr,
            status,
            before,
            after,
            used_before,
            used_after,
            check,
        })
    }
}

fn fields(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|b| *b == 0)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect()
}

/// The output's sections, split at [`SECTION`].
fn sections(stdout: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = stdout;
    while let Some(i) = rest.windows(SECTION.len()).position(|w| w == SECTION) {
        out.push(&rest[..i]);
        rest = &rest[i + SECTION.len()..];
    }
    out.push(rest);
    out
}

type Listing = (BTreeMap<String, Entry>, BTreeMap<String, u64>);

fn listing(out: &[u8]) -> Result<Listing> {
    let s = sections(out);
    let [files, sums, df] = s[..] else {
        bail!("the sandbox's listing is incomplete ({} sections)", s.len());
    };
    let mut map = BTreeMap::new();
    let f = fields(files);
    for rec in f.chunks(6) {
        if rec.len() < 6 || rec[0].is_empty() {
            continue;
        }
        map.insert(
            rec[0].clone(),
            Entry {
                kind: rec[1].clone(),
                size: rec[2].parse().unwrap_or(0),
                blocks: rec[3].parse().unwrap_or(0),
                mtime: rec[4].clone(),
                link_target: rec[5].clone(),
                sha256: String::new(),
            },
        );
    }
    // sha256sum -z: "HASH  NAME" each NUL-terminated.
    for line in fields(sums) {
        if let Some((hash, name)) = line.split_once("  ")
            && let Some(e) = map.get_mut(name)
        {
            e.sha256 = hash.to_owned();
        }
    }
    let mut used = BTreeMap::new();
    for pair in fields(df).chunks(2) {
        if let [d, n] = pair {
            used.insert(d.clone(), n.parse().unwrap_or(0));
        }
    }
    Ok((map, used))
}
