//! The scripts first-responder sends through SSM, run for real under dash
//! and bash (SSM runs them with `sh`, which is either) in the instance
//! stand-in (`harness::sandbox`: a private mount namespace with
//! its own /tmp, /var/tmp and /var/log), on realistic and hostile content.
//! What must survive is digested before and compared after.

use std::collections::BTreeSet;

use anyhow::Result;
use first_responder::commands;
use first_responder::disk::marker;
use first_responder::ids::InstanceId;
use harness::sandbox::{Run, Sandbox};
use harness::ssm::{Shell, TMPFILES_CONF};

/// `sh` on Debian and Ubuntu, and on Amazon Linux and RHEL.
const SHELLS: [Shell; 2] = [Shell::Dash, Shell::Bash];

/// Old means neither modified nor read for 30 days (the scripts' age is 7).
const OLD: &str = "touch -d '30 days ago'";

/// What changed between the listings: (gone, added, changed).
fn diff(r: &Run) -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>) {
    let gone = r
        .before
        .keys()
        .filter(|k| !r.after.contains_key(*k))
        .cloned()
        .collect();
    let added = r
        .after
        .keys()
        .filter(|k| !r.before.contains_key(*k))
        .cloned()
        .collect();
    // A directory's mtime moves when an entry goes; its entries are compared.
    let changed = r
        .before
        .iter()
        .filter(|(_, v)| v.kind != "d")
        .filter(|(k, v)| r.after.get(*k).is_some_and(|a| a != *v))
        .map(|(k, _)| k.clone())
        .collect();
    (gone, added, changed)
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Temp files: only regular files neither modified nor read for the age
/// go; symlinks are not followed, other filesystems not entered,
/// systemd-private directories, hard links and open files are kept; the
/// bytes reported are the bytes really freed.
#[tokio::test]
async fn cleanup_temp_deletes_exactly_the_old_unused_files() -> Result<()> {
    for shell in SHELLS {
        cleanup_temp_under(shell).await?;
    }
    Ok(())
}

async fn cleanup_temp_under(shell: Shell) -> Result<()> {
    let seed = format!(
        r#"
mkdir -p /var/log/elsewhere /tmp/sub/deeper /tmp/systemd-private-abc-nginx.service-XyZ/tmp /tmp/other
head -c 300000 /dev/urandom > /tmp/old-big
head -c 5000 /dev/urandom > /var/tmp/old-small
head -c 7000 /dev/urandom > /tmp/sub/deeper/old-nested
head -c 1000 /dev/urandom > '/tmp/old with spaces'
head -c 1000 /dev/urandom > "/tmp/old
with a newline"
head -c 1000 /dev/urandom > /tmp/-old-leading-dash
head -c 1000 /dev/urandom > '/tmp/old*glob?[x]'
head -c 1000 /dev/urandom > /tmp/young
head -c 1000 /dev/urandom > /tmp/old-but-read
head -c 1000 /dev/urandom > /tmp/old-held
head -c 1000 /dev/urandom > /tmp/old-hardlinked
ln /tmp/old-hardlinked /tmp/second-link
head -c 1000 /dev/urandom > /tmp/systemd-private-abc-nginx.service-XyZ/tmp/old-private
head -c 1000 /dev/urandom > /var/log/elsewhere/old-target
ln -s /var/log/elsewhere/old-target /tmp/link-to-outside
ln -s /var/log/elsewhere /tmp/dir-link
mount -t tmpfs -o noatime other-fs /tmp/other
head -c 1000 /dev/urandom > /tmp/other/old-on-another-fs
mkfifo /tmp/old-fifo
{OLD} /tmp/old-big /var/tmp/old-small /tmp/sub/deeper/old-nested '/tmp/old with spaces' "/tmp/old
with a newline" /tmp/-old-leading-dash '/tmp/old*glob?[x]' /tmp/old-but-read /tmp/old-held /tmp/old-hardlinked \
  /tmp/systemd-private-abc-nginx.service-XyZ/tmp/old-private /var/log/elsewhere/old-target /tmp/other/old-on-another-fs /tmp/old-fifo
touch -h -d '30 days ago' /tmp/link-to-outside /tmp/dir-link
# Read recently, though not modified: still in use.
touch -a /tmp/old-but-read
# Held open by a running process.
( exec 3</tmp/old-held; sleep 300 ) &
sleep 0.3
"#
    );
    let r = Sandbox {
        shell,
        ..Sandbox::default()
    }
    .run(&seed, &commands::cleanup_temp(Some(7)), "")
    .await?;
    assert_eq!(r.status, 0, "{shell:?}: {}\n{}", r.stdout, r.stderr);
    let (gone, added, changed) = diff(&r);
    let deleted = set(&[
        "/tmp/old-big",
        "/var/tmp/old-small",
        "/tmp/sub/deeper/old-nested",
        "/tmp/old with spaces",
        "/tmp/old\nwith a newline",
        "/tmp/-old-leading-dash",
        "/tmp/old*glob?[x]",
    ]);
    assert_eq!(gone, deleted, "stdout:\n{}", r.stdout);
    assert!(added.is_empty(), "{added:?}");
    // Everything else, symlink targets and the other filesystem included,
    // is exactly as it was (content digest, size, mtime, link target).
    assert!(changed.is_empty(), "{changed:?}");
    for survivor in [
        "/tmp/young",
        "/tmp/old-but-read",
        "/tmp/old-held",
        "/tmp/old-hardlinked",
        "/tmp/second-link",
        "/tmp/systemd-private-abc-nginx.service-XyZ/tmp/old-private",
        "/var/log/elsewhere/old-target",
        "/tmp/link-to-outside",
        "/tmp/dir-link",
        "/tmp/other/old-on-another-fs",
        "/tmp/old-fifo",
    ] {
        assert!(r.after.contains_key(survivor), "{survivor} was removed");
    }
    // The bytes reported are those the deleted files held, and what df saw.
    let held: u64 = deleted.iter().map(|p| r.before[p].blocks * 512).sum();
    let freed: u64 = marker(&r.stdout, "freed_bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or_default();
    assert_eq!(freed, held, "{}", r.stdout);
    let df_change: u64 = ["/tmp", "/var/tmp"]
        .iter()
        .map(|d| r.used_before[*d].saturating_sub(r.used_after[*d]))
        .sum();
    assert!(
        df_change.abs_diff(freed) <= 4096 * deleted.len() as u64,
        "df says {df_change} bytes were freed, the script {freed}"
    );
    assert_eq!(
        marker(&r.stdout, "deleted_files"),
        Some("7"),
        "{}",
        r.stdout
    );
    assert_eq!(
        marker(&r.stdout, "kept_open_files"),
        Some("1"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("Filesystem"),
        "df -P follows: {}",
        r.stdout
    );
    Ok(())
}

/// A local user who knows the old script's predictable names pre-creates
/// them (the list of files to delete, a symlink where the tar goes): the
/// script never reads or writes through them. Old rotated logs are
/// compressed, the live and the held-open ones are not.
#[tokio::test]
async fn archive_logs_ignores_files_a_local_user_prepared() -> Result<()> {
    let instance = InstanceId::parse("t", "i-0123456789abcdef0")?;
    let tag = "inc-0011223344556677";
    let seed = format!(
        r#"
head -c 2000 /dev/urandom > /var/tmp/victim
mkdir -p /var/log/app
# What the old script would have read or written, prepared by a local user.
printf '/var/tmp/victim\n' > /var/tmp/first-responder-{tag}.list
printf '0 /var/tmp/victim\n' > /var/tmp/first-responder-{tag}.list.files
ln -s /var/tmp/victim /var/tmp/first-responder-{tag}.tar
chmod 0666 /var/tmp/first-responder-{tag}.list /var/tmp/first-responder-{tag}.list.files
# Logs: live, rotated (old and young), already compressed, held open.
seq 1 20000 > /var/log/app/app.log
seq 1 20000 > /var/log/app/app.log.1
seq 1 20000 > /var/log/app/app-20261101
seq 1 20000 > /var/log/app/app.log.old
seq 1 20000 | gzip > /var/log/app/app.log.2.gz
seq 1 20000 > /var/log/app/young.log.1
seq 1 20000 > /var/log/app/held.log.1
{OLD} /var/log/app/app.log.1 /var/log/app/app-20261101 /var/log/app/app.log.old /var/log/app/app.log.2.gz /var/log/app/held.log.1 /var/log/app/app.log
( exec 3>>/var/log/app/held.log.1 4>>/var/log/app/app.log; sleep 300 ) &
sleep 0.3
"#
    );
    for (shell, bucket) in [
        (Shell::Dash, None),
        (Shell::Dash, Some("logs-bucket")),
        (Shell::Bash, None),
        (Shell::Bash, Some("logs-bucket")),
    ] {
        let script = commands::archive_logs(7, bucket, &instance, tag);
        let r = Sandbox {
            shell,
            ..Sandbox::default()
        }
        .run(&seed, &script, "")
        .await?;
        assert_eq!(r.status, 0, "{shell:?}: {}\n{}", r.stdout, r.stderr);
        let (gone, added, changed) = diff(&r);
        let rotated = [
            "/var/log/app/app.log.1",
            "/var/log/app/app-20261101",
            "/var/log/app/app.log.old",
        ];
        assert_eq!(gone, set(&rotated), "{bucket:?}: {}", r.stdout);
        // Without a bucket the compressed files stay; with one, shipping
        // fails here (no AWS CLI, no network) and they stay too.
        let gz: Vec<String> = rotated.iter().map(|f| format!("{f}.gz")).collect();
        let gz: Vec<&str> = gz.iter().map(String::as_str).collect();
        assert_eq!(added, set(&gz), "{bucket:?}");
        // The prepared files, the victim, the live, young, held-open and
        // already compressed logs: untouched.
        assert!(changed.is_empty(), "{bucket:?}: {changed:?}");
        assert_eq!(
            marker(&r.stdout, "compressed_files"),
            Some("3"),
            "{}",
            r.stdout
        );
        assert_eq!(marker(&r.stdout, "kept_open_files"), Some("1"));
        let freed: u64 = marker(&r.stdout, "freed_bytes")
            .and_then(|v| v.parse().ok())
            .unwrap_or_default();
        let expected: u64 = rotated
            .iter()
            .map(|f| r.before[*f].blocks * 512)
            .sum::<u64>()
            - gz.iter().map(|f| r.after[*f].blocks * 512).sum::<u64>();
        assert_eq!(freed, expected, "{}", r.stdout);
        if bucket.is_some() {
            assert!(
                marker(&r.stdout, "ship_failed")
                    .is_some_and(|u| u.starts_with("s3://logs-bucket/")),
                "{}",
                r.stdout
            );
        }
    }
    Ok(())
}

/// The stand-in refuses to run anything when one of its private mounts is
/// missing: a script must never touch the host's own directories.
#[tokio::test]
async fn the_stand_in_refuses_to_run_without_its_own_mounts() -> Result<()> {
    for missing in ["/tmp", "/var/log"] {
        let sandbox = Sandbox {
            skip_mount: Some(missing),
            ..Sandbox::default()
        };
        let err = sandbox
            .run("", &["echo ran".to_owned()], "")
            .await
            .expect_err("it ran without its own mount")
            .to_string();
        assert!(
            err.contains("refused")
                && err.contains(&format!("{missing} is not on the sandbox's own filesystem")),
            "{err}"
        );
    }
    Ok(())
}

/// SSM runs a script with `sh`; the stand-in too, with dash (as Debian and
/// Ubuntu do), so a bash-only construct in a script fails here as it would
/// there, and the same script runs under bash when asked.
#[tokio::test]
async fn the_stand_in_runs_scripts_with_sh_as_ssm_does() -> Result<()> {
    let bashism = ["[[ 1 == 1 ]] && echo bash-only".to_owned()];
    let dash = Sandbox::default().run("", &bashism, "").await?;
    assert_ne!(dash.status, 0, "dash ran [[: {}", dash.stdout);
    let bash = Sandbox {
        shell: Shell::Bash,
        ..Sandbox::default()
    }
    .run("", &bashism, "")
    .await?;
    assert_eq!((bash.status, bash.stdout.trim()), (0, "bash-only"));
    Ok(())
}

/// A compression the command's time cuts off leaves no partial file: the
/// log stays whole, nothing named `.gz.fr-part` is left, and the script
/// says it failed (`error=`), under dash and bash.
#[tokio::test]
async fn a_compression_cut_off_leaves_no_partial_file() -> Result<()> {
    let instance = InstanceId::parse("t", "i-0123456789abcdef0")?;
    // A gzip that writes part of its output and then never finishes (a shim
    // on the sandbox's /usr/local/sbin, first on the script's PATH): the
    // cut-off happens mid-file whatever the machine's load. 6 s are left
    // for the compression (an 11 s budget less the 5 s margin), room for
    // what comes before it on a loaded machine. (A real gzip of a big file
    // cut off after 1 s passed on the tmpfs's 128 MB filling up, and failed
    // when the budget ran out before gzip started.)
    let seed = format!(
        "mkdir -p /var/log/app; head -c 10000000 /dev/urandom > /var/log/app/big.log.1; {OLD} /var/log/app/big.log.1; \
         printf '#!/bin/sh\\nhead -c 1000000 /dev/zero\\nexec sleep 60\\n' > /usr/local/sbin/gzip; chmod 0755 /usr/local/sbin/gzip"
    );
    for shell in SHELLS {
        let script = commands::archive_logs_within(7, None, &instance, "inc-0011223344556677", 11);
        let r = Sandbox {
            shell,
            ..Sandbox::default()
        }
        .run(&seed, &script, "ls -a /var/log/app")
        .await?;
        assert_eq!(r.status, 0, "{shell:?}: {}\n{}", r.stdout, r.stderr);
        let (gone, added, changed) = diff(&r);
        assert!(
            gone.is_empty() && added.is_empty() && changed.is_empty(),
            "{shell:?}: {gone:?} {added:?} {changed:?}"
        );
        assert!(!r.check.contains("fr-part"), "{}", r.check);
        assert_eq!(
            marker(&r.stdout, "compress_failed"),
            Some("1"),
            "{}",
            r.stdout
        );
        assert!(
            marker(&r.stdout, "error").is_some_and(|e| e.contains("could not be compressed")),
            "{}",
            r.stdout
        );
    }
    Ok(())
}

/// The host's own ages: Amazon Linux 2023's `systemd-tmpfiles` (10 days for
/// /tmp, 30 for /var/tmp; a shim on the sandbox's PATH prints its
/// configuration), its exclusions (`x`), snaps' private /tmp; and, with no
/// configuration, 10 and 30 days all the same. The playbook's shorter age
/// applies only where it is shorter.
#[tokio::test]
async fn cleanup_ages_are_the_hosts_own() -> Result<()> {
    let al2023 = "q /tmp 1777 root root 10d\nq /var/tmp 1777 root root 30d\nx /tmp/keep-me\nx /tmp/systemd-private-%b-*";
    let seed = |config: &str| {
        format!(
            r#"
printf '%s\n' '{config}' > {TMPFILES_CONF}
mkdir -p /tmp/keep-me /tmp/snap-private-tmp/snap.amazon-ssm-agent/tmp
for f in /tmp/fifteen /var/tmp/fifteen /var/tmp/forty /tmp/five /tmp/keep-me/old /tmp/snap-private-tmp/snap.amazon-ssm-agent/tmp/old; do head -c 5000 /dev/urandom > "$f"; done
touch -d '15 days ago' /tmp/fifteen /var/tmp/fifteen
touch -d '40 days ago' /var/tmp/forty /tmp/keep-me/old /tmp/snap-private-tmp/snap.amazon-ssm-agent/tmp/old
touch -d '5 days ago' /tmp/five
"#
        )
    };
    // (the host's configuration, the playbook's age, deleted, the ages printed)
    let cases = [
        (
            al2023,
            None,
            vec!["/tmp/fifteen", "/var/tmp/forty"],
            ("14400", "systemd-tmpfiles", "43200"),
        ),
        // No configuration: Amazon Linux's defaults (and nothing excluded).
        (
            "",
            None,
            vec!["/tmp/fifteen", "/var/tmp/forty", "/tmp/keep-me/old"],
            ("14400", "default", "43200"),
        ),
        // The playbook's 3 days, shorter than both.
        (
            al2023,
            Some(3),
            vec![
                "/tmp/fifteen",
                "/tmp/five",
                "/var/tmp/fifteen",
                "/var/tmp/forty",
            ],
            ("4320", "playbook", "4320"),
        ),
    ];
    for (config, days, deleted, (tmp, from, var)) in cases {
        let r = Sandbox::default()
            .run(&seed(config), &commands::cleanup_temp(days), "")
            .await?;
        assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
        let (gone, _, _) = diff(&r);
        assert_eq!(gone, set(&deleted), "{config:?} {days:?}: {}", r.stdout);
        assert_eq!(
            marker(&r.stdout, "age_tmp_minutes"),
            Some(tmp),
            "{}",
            r.stdout
        );
        assert_eq!(
            marker(&r.stdout, "age_tmp_from"),
            Some(from),
            "{}",
            r.stdout
        );
        assert_eq!(
            marker(&r.stdout, "age_var_tmp_minutes"),
            Some(var),
            "{}",
            r.stdout
        );
        assert_eq!(marker(&r.stdout, "error"), None, "{}", r.stdout);
    }
    Ok(())
}
