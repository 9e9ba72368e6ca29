//! The instance stand-in: runs a script that first-responder sends through
//! SSM, for real, with `bash`, inside a mount namespace of its own
//! (`unshare --mount --propagation private`) whose /tmp, /var/tmp and
//! /var/log are private tmpfs mounts. It fails closed: before anything runs
//! it checks with `findmnt` that each of those paths is the sandbox's own
//! mount (by its source name) and that the namespace is not the host's,
//! and refuses otherwise (exit [`REFUSED`]). Nothing it runs can touch the
//! host's /tmp, /var/tmp or /var/log. Needs root (as CI is) and util-linux.
//!
//! A run is: seed (make the instance's files), a listing of every file,
//! the script under test, the listing again, then an optional check; the
//! listings are parsed into [`Entry`]s so a test can compare them.

use std::collections::BTreeMap;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Exit status of a sandbox that refused to run anything.
pub const REFUSED: i32 = 97;

/// The directories given private mounts.
pub const PRIVATE: [&str; 3] = ["/tmp", "/var/tmp", "/var/log"];

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

/// A sandbox; `skip_mount` leaves one path unmounted (to prove the refusal).
#[derive(Clone, Debug, Default)]
pub struct Sandbox {
    pub skip_mount: Option<&'static str>,
}

/// Between the sections of the sandbox's output (no file name holds it).
const SECTION: &[u8] = b"\x1e--fr-section--\x1e";

const LISTING: &str = r#"find /tmp /var/tmp /var/log -mindepth 1 -printf '%p\0%y\0%s\0%b\0%T@\0%l\0' ; printf '\036--fr-section--\036'
find /tmp /var/tmp /var/log -type f -exec sha256sum -z {} + 2>/dev/null; printf '\036--fr-section--\036'
for d in /tmp /var/tmp /var/log; do printf '%s\0%s\0' "$d" "$(df -B1 --output=used "$d" | tail -n 1 | tr -d ' ')"; done; printf '\036--fr-section--\036'"#;

impl Sandbox {
    /// Runs `script` (the commands as SSM would get them, one per line)
    /// after `seed`, and `check` after it; all inside the sandbox.
    pub fn run(&self, seed: &str, script: &[String], check: &str) -> Result<Run> {
        let id = format!(
            "fr-sandbox-{}-{}",
            std::process::id(),
            crate::free_port().unwrap_or(0)
        );
        let host_ns = std::fs::read_link("/proc/self/ns/mnt")
            .context("reading this process's mount namespace")?
            .display()
            .to_string();
        let mounts: String = PRIVATE
            .iter()
            .filter(|d| Some(**d) != self.skip_mount)
            .map(|d| {
                let mode = if *d == "/var/log" { "0755" } else { "1777" };
                // noatime: the listings read every file (their digests), which
                // must not make an old file look recently used; seeds set atimes
                // explicitly with touch.
                format!("mount -t tmpfs -o mode={mode},size=64m,noatime \"$SANDBOX_ID\" {d}\n")
            })
            .collect();
        let program = format!(
            r#"set -e
{mounts}
# Fail closed: every private path must be this sandbox's own mount, in a
# mount namespace that is not the host's.
[ "$(readlink /proc/self/ns/mnt)" != "$HOST_NS" ] || {{ echo "sandbox: still in the host's mount namespace: refusing to run" >&2; exit {REFUSED}; }}
for d in /tmp /var/tmp /var/log; do
  # The topmost mount there (a mount over another lists both).
  src=$(findmnt -n -o SOURCE --mountpoint "$d" | tail -n 1)
  [ "$src" = "$SANDBOX_ID" ] || {{ echo "sandbox: $d is not the sandbox's own mount (found '$src'): refusing to run" >&2; exit {REFUSED}; }}
done
set +e
cd /var/tmp
eval "$SEED"
{LISTING}
bash -c "$SCRIPT" > /var/tmp/.sandbox-out 2> /var/tmp/.sandbox-err
status=$?
out=$(base64 -w0 < /var/tmp/.sandbox-out); err=$(base64 -w0 < /var/tmp/.sandbox-err)
rm -f /var/tmp/.sandbox-out /var/tmp/.sandbox-err
{LISTING}
printf '%s\0%s\0%s\0' "$status" "$out" "$err"
eval "$CHECK"
# Processes the seed started (writers holding files open) end with the run.
kill $(jobs -p) 2>/dev/null
wait 2>/dev/null
exit 0
"#
        );
        let out = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "bash", "-c"])
            .arg(&program)
            .env("SANDBOX_ID", &id)
            .env("HOST_NS", &host_ns)
            .env("SEED", seed)
            .env("SCRIPT", script.join("\n"))
            .env("CHECK", check)
            .output()
            .context("running unshare (util-linux) for the instance stand-in")?;
        if out.status.code() == Some(REFUSED) {
            bail!(
                "refused: {}",
                String::from_utf8_lossy(&out.stderr).trim().to_owned()
            );
        }
        if !out.status.success() && out.stdout.is_empty() {
            bail!(
                "the sandbox could not start (root and util-linux's unshare are needed): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        parse(&out.stdout, &out.stderr)
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

fn listing(
    files: &[u8],
    sums: &[u8],
    df: &[u8],
) -> (BTreeMap<String, Entry>, BTreeMap<String, u64>) {
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
    (map, used)
}

fn parse(stdout: &[u8], stderr: &[u8]) -> Result<Run> {
    let s = sections(stdout);
    if s.len() < 7 {
        bail!(
            "the sandbox's output is incomplete ({} sections); stderr: {}",
            s.len(),
            String::from_utf8_lossy(stderr)
        );
    }
    let (before, used_before) = listing(s[0], s[1], s[2]);
    let (after, used_after) = listing(s[3], s[4], s[5]);
    let tail = fields(s[6]);
    let b64 = |x: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(x)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    Ok(Run {
        status: tail.first().and_then(|x| x.parse().ok()).unwrap_or(-1),
        stdout: tail.get(1).map(|x| b64(x)).unwrap_or_default(),
        stderr: tail.get(2).map(|x| b64(x)).unwrap_or_default(),
        check: tail.get(3..).map(|x| x.join("")).unwrap_or_default(),
        before,
        after,
        used_before,
        used_after,
    })
}

/// The value of a `key=value` line the script printed.
pub fn marker<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}
