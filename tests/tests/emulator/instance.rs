//! The instance half for real: SSM Run Command answered by the stand-in
//! (`harness::ssm`), which records each command in moto and runs it with
//! bash in the instance's sandbox. The notifications carry what the
//! instance really printed.

use anyhow::{Context, Result};
use first_responder::Mode;
use harness::ssm::{Instance, SsmStandIn};
use harness::{FleetSpec, World, drain, sample_event, ssm_commands};

async fn world_with_instance(seed: &str) -> Result<(World, SsmStandIn, std::sync::Arc<Instance>)> {
    let mut w = World::start(FleetSpec::default()).await?;
    let standin = SsmStandIn::start(&w.moto.endpoint).await?;
    let sandbox = standin.add(w.fleet.instance(), Instance::start(seed)?);
    w.engine.aws.ssm = standin.client(&w.sdk).into();
    Ok((w, standin, sandbox))
}

fn action<'a>(
    r: &'a first_responder::Report,
    name: &str,
) -> &'a first_responder::report::ActionReport {
    r.incidents[0]
        .actions
        .iter()
        .find(|a| a.action.as_str() == name)
        .unwrap_or_else(|| panic!("no {name} in {r:#?}"))
}

/// High CPU: the diagnostics are the sandbox's real `ps`, `free`, `df` and
/// `uptime`, in the report and in the email.
#[tokio::test]
async fn high_cpu_diagnostics_are_what_the_instance_printed() -> Result<()> {
    let (w, _standin, _sandbox) = world_with_instance("").await?;
    let r = w.run_sample("high-cpu-alarm.json").await?;
    let diag = action(&r, "collect_diagnostics");
    assert_eq!(diag.status.as_str(), "done", "{diag:?}");
    let out = diag.output.as_deref().unwrap_or_default();
    for needle in [
        "== top processes by CPU (ps: averaged over the life of each process) ==",
        "PID",
        "%CPU",
        "== memory (MiB) ==",
        "Mem:",
        "== disks ==",
        "Filesystem",
        "== load ==",
        "load average",
    ] {
        assert!(out.contains(needle), "{needle:?} not in:\n{out}");
    }
    // The command is also on record in moto, with exactly those commands.
    let cmds = ssm_commands(&w.sdk).await?;
    assert_eq!(cmds.len(), 1);
    let inbox = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    let text = inbox[0].text()?;
    // The email keeps the head of long output (ps lists this host's own
    // processes, with long command lines) and says when it trimmed.
    assert!(
        text.contains("== top processes by CPU") && text.contains("%CPU"),
        "{text}"
    );
    assert!(
        text.contains("load average") || text.contains("more characters trimmed"),
        "{text}"
    );
    assert!(!text.contains("(the command printed nothing)"), "{text}");
    Ok(())
}

/// Disk full on /: the cleanup runs on the instance through SSM and reports
/// the bytes it really freed.
#[tokio::test]
async fn cleanup_reports_what_it_freed_on_the_instance() -> Result<()> {
    let seed = "head -c 3000000 /dev/urandom > /tmp/old-dump; head -c 1000 /dev/urandom > /tmp/young; touch -d '30 days ago' /tmp/old-dump";
    let (w, _standin, sandbox) = world_with_instance(seed).await?;
    let text = sample_event("disk-full-alarm.json", w.fleet.instance())?
        .replace("\"path\": \"/data\"", "\"path\": \"/\"");
    let r = w.handle_text(&text, Mode::Run).await?;
    let cleanup = action(&r, "cleanup_temp");
    assert_eq!(cleanup.status.as_str(), "done", "{cleanup:?}");
    let detail = cleanup.detail.as_deref().unwrap_or_default();
    assert!(detail.starts_with("freed 2.9 MiB"), "{detail}");
    let left = sandbox.sh("ls /tmp").await?;
    assert!(
        !left.contains("old-dump") && left.contains("young"),
        "{left}"
    );
    let out = cleanup.output.as_deref().context("no output")?;
    assert!(out.contains("deleted_files=1"), "{out}");
    Ok(())
}

/// Disk full on a real xfs filesystem (a loop device in the sandbox, 97%
/// used): the volume is snapshotted and modified in the emulator, the loop
/// device follows EBS to the new size, `xfs_growfs` runs on the instance,
/// and `df` there shows the new size, which the report states.
#[tokio::test]
async fn disk_full_grows_a_real_xfs_filesystem() -> Result<()> {
    use harness::ssm::{DataVolume, DiskLayout};
    let mut w = World::start(FleetSpec::default()).await?;
    let standin = SsmStandIn::start(&w.moto.endpoint).await?;
    let volume = DataVolume {
        volume_id: w.fleet.data_volume.clone(),
        size_gib: 20,
        mount: "/srv",
        fstype: "xfs",
        xen_name: "xvdf",
        layout: DiskLayout::Whole,
    };
    let sandbox = standin.add(
        w.fleet.instance(),
        Instance::start_with("fallocate -l 19G /srv/big-dataset", Some(volume))?,
    );
    w.engine.aws.ssm = standin.client(&w.sdk).into();
    let before = sandbox.sh("df -P /srv | tail -n 1").await?;
    let text = sample_event("disk-full-alarm.json", w.fleet.instance())?
        .replace("\"path\": \"/data\"", "\"path\": \"/srv\"")
        .replace("\"fstype\": \"ext4\"", "\"fstype\": \"xfs\"");
    let r = w.handle_text(&text, Mode::Run).await?;
    let expand = action(&r, "expand_volume");
    assert_eq!(expand.status.as_str(), "done", "{expand:?}");
    let detail = expand.detail.as_deref().unwrap_or_default();
    assert!(detail.contains("grown 20 -> 30 GiB"), "{detail}");
    assert!(
        detail.contains("partition and filesystem grown, /srv is now"),
        "{detail}"
    );
    let out = expand.output.as_deref().unwrap_or_default();
    assert!(
        out.contains("fstype=xfs") && out.contains("mount=/srv"),
        "{out}"
    );
    // df on the instance: the filesystem is 30 GiB now (it was 20).
    let after = sandbox.sh("df -P -B1G /srv | tail -n 1").await?;
    let size: u64 = after
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        (29..=30).contains(&size),
        "before: {before}; after: {after}"
    );
    assert_eq!(
        harness::volume_size(&w.sdk, &w.fleet.data_volume).await?,
        30
    );
    Ok(())
}

/// The same on ext4. Online `resize2fs` of a mounted ext4 needs
/// CAP_SYS_RESOURCE, which some sandboxes (this machine kind's) lack: then the
/// action ends `failed` with the volume's new size and what to run by hand;
/// where the kernel allows it, the filesystem is grown. The test finds out
/// which case it is in rather than assuming.
#[tokio::test]
async fn disk_full_on_ext4_grows_or_says_what_to_run_by_hand() -> Result<()> {
    use harness::ssm::{DataVolume, DiskLayout};
    let mut w = World::start(FleetSpec::default()).await?;
    let standin = SsmStandIn::start(&w.moto.endpoint).await?;
    let volume = DataVolume {
        volume_id: w.fleet.data_volume.clone(),
        size_gib: 20,
        mount: "/srv",
        fstype: "ext4",
        xen_name: "xvdf",
        layout: DiskLayout::Whole,
    };
    let sandbox = standin.add(
        w.fleet.instance(),
        Instance::start_with("fallocate -l 19G /srv/big-dataset", Some(volume))?,
    );
    w.engine.aws.ssm = standin.client(&w.sdk).into();
    let text = sample_event("disk-full-alarm.json", w.fleet.instance())?
        .replace("\"path\": \"/data\"", "\"path\": \"/srv\"");
    let r = w.handle_text(&text, Mode::Run).await?;
    let expand = action(&r, "expand_volume");
    let size_gib = |line: &str| -> u64 {
        line.split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let df = sandbox.sh("df -P -B1G /srv | tail -n 1").await?;
    // EBS grew it either way.
    assert_eq!(
        harness::volume_size(&w.sdk, &w.fleet.data_volume).await?,
        30
    );
    if size_gib(&df) >= 29 {
        assert_eq!(expand.status.as_str(), "done", "{expand:?}");
        println!("ext4 grown online here: {df}");
    } else {
        assert_eq!(expand.status.as_str(), "failed", "{expand:?}; df {df}");
        let why = &expand.reason;
        assert!(
            why.contains(
                "the volume is 30 GiB but the filesystem was not grown: run `resize2fs /dev/loop"
            ),
            "{why}"
        );
        assert!(why.contains("by hand"), "{why}");
        println!("ext4 online growth refused here: {why}");
    }
    Ok(())
}

/// One disk_full incident, end to end on the instance: /var is a real xfs
/// volume 97% full holding /var/tmp and /var/log, with realistic and hostile
/// content. The cleanup deletes exactly the old unused regular files and
/// reports the bytes really freed; the archive compresses exactly the old
/// rotated logs nobody holds open; everything that must survive is
/// unchanged (digest before and after); the volume is still over 95%, so it
/// is snapshotted, modified, the loop device follows, `xfs_growfs` runs and
/// the report states the new usage from the instance's own `df`.
#[tokio::test]
async fn disk_full_on_var_cleans_archives_and_grows_for_real() -> Result<()> {
    use harness::ssm::{DataVolume, DiskLayout};
    let mut w = World::start(FleetSpec::default()).await?;
    let standin = SsmStandIn::start(&w.moto.endpoint).await?;
    let volume = DataVolume {
        volume_id: w.fleet.data_volume.clone(),
        size_gib: 20,
        mount: "/var",
        fstype: "xfs",
        xen_name: "xvdf",
        layout: DiskLayout::Whole,
    };
    let old = "touch -d '30 days ago'";
    let seed = format!(
        r#"
fallocate -l 19G /var/dataset.bin
mkdir -p /var/tmp/sub /var/tmp/systemd-private-abc-nginx.service-XyZ/tmp /var/log/app /var/lib/keep
head -c 400000 /dev/urandom > /var/tmp/old-export
head -c 9000 /dev/urandom > '/var/tmp/sub/old name with spaces'
head -c 9000 /dev/urandom > "/var/tmp/old
newline"
head -c 9000 /dev/urandom > /var/tmp/-old-dash
head -c 9000 /dev/urandom > /var/tmp/young
head -c 9000 /dev/urandom > /var/tmp/old-but-read
head -c 9000 /dev/urandom > /var/tmp/old-held
head -c 9000 /dev/urandom > /var/tmp/systemd-private-abc-nginx.service-XyZ/tmp/old-private
head -c 9000 /dev/urandom > /var/lib/keep/old-state
ln -s /var/lib/keep/old-state /var/tmp/link-out
seq 1 50000 > /var/log/app/app.log
seq 1 50000 > /var/log/app/app.log.1
seq 1 50000 > /var/log/app/app-20261101
seq 1 50000 | gzip > /var/log/app/app.log.2.gz
seq 1 50000 > /var/log/app/held.log.1
seq 1 50000 > /var/log/app/young.log.1
{old} /var/tmp/old-export '/var/tmp/sub/old name with spaces' "/var/tmp/old
newline" /var/tmp/-old-dash /var/tmp/old-but-read /var/tmp/old-held \
  /var/tmp/systemd-private-abc-nginx.service-XyZ/tmp/old-private /var/lib/keep/old-state \
  /var/log/app/app.log.1 /var/log/app/app-20261101 /var/log/app/app.log.2.gz /var/log/app/held.log.1 /var/log/app/app.log
touch -h -d '30 days ago' /var/tmp/link-out
touch -a /var/tmp/old-but-read
( exec 3</var/tmp/old-held 4>>/var/log/app/held.log.1 5>>/var/log/app/app.log; sleep 3600 ) &
sleep 0.3
"#
    );
    let sandbox = standin.add(
        w.fleet.instance(),
        Instance::start_with(&seed, Some(volume))?,
    );
    w.engine.aws.ssm = standin.client(&w.sdk).into();
    // Digest of everything under /var but the dataset: path, type, size, content.
    let digest = "cd /var && find . -path ./dataset.bin -prune -o -print0 | sort -z | while IFS= read -r -d '' f; do printf '%q %s %s %s\\n' \"$f\" \"$(stat -c '%F %s %Y' -- \"$f\")\" \"$( [ -f \"$f\" ] && [ ! -L \"$f\" ] && sha256sum < \"$f\" | cut -c1-16)\" \"$(readlink -- \"$f\")\"; done";
    let before = sandbox.sh(digest).await?;
    let blocks = |list: &str| {
        format!("cd /var && stat -c '%b %B' -- {list} | awk '{{s += $1 * $2}} END {{print s}}'")
    };
    let deleted =
        "tmp/old-export 'tmp/sub/old name with spaces' $'tmp/old\\nnewline' tmp/-old-dash";
    let will_free: u64 = sandbox
        .sh(&blocks(deleted))
        .await?
        .trim()
        .parse()
        .unwrap_or(0);
    let text = sample_event("disk-full-alarm.json", w.fleet.instance())?
        .replace("\"path\": \"/data\"", "\"path\": \"/var\"")
        .replace("\"fstype\": \"ext4\"", "\"fstype\": \"xfs\"");
    let r = w.handle_text(&text, Mode::Run).await?;

    let cleanup = action(&r, "cleanup_temp");
    assert_eq!(cleanup.status.as_str(), "done", "{cleanup:?}");
    let out = cleanup.output.as_deref().unwrap_or_default();
    let freed: u64 = first_responder::disk::marker(out, "freed_bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or_default();
    assert_eq!(freed, will_free, "{out}");
    assert_eq!(
        first_responder::disk::marker(out, "deleted_files"),
        Some("4"),
        "{out}"
    );
    assert_eq!(
        first_responder::disk::marker(out, "kept_open_files"),
        Some("1"),
        "{out}"
    );

    let archive = action(&r, "archive_logs");
    assert_eq!(archive.status.as_str(), "done", "{archive:?}");
    let out = archive.output.as_deref().unwrap_or_default();
    assert_eq!(
        first_responder::disk::marker(out, "compressed_files"),
        Some("2"),
        "{out}"
    );
    assert_eq!(
        first_responder::disk::marker(out, "kept_open_files"),
        Some("1"),
        "{out}"
    );

    // Exactly those changed; the rest is byte for byte as it was.
    let after = sandbox.sh(digest).await?;
    let lines = |t: &str| {
        t.lines()
            .map(str::to_owned)
            .collect::<std::collections::BTreeSet<_>>()
    };
    let (b, a) = (lines(&before), lines(&after));
    let gone: Vec<&String> = b
        .difference(&a)
        .filter(|l| {
            !l.starts_with("./tmp ")
                && !l.starts_with("./log/app ")
                && !l.starts_with("./tmp/sub ")
                && !l.starts_with(". ")
        })
        .collect();
    let new: Vec<&String> = a
        .difference(&b)
        .filter(|l| {
            !l.starts_with("./tmp ")
                && !l.starts_with("./log/app ")
                && !l.starts_with("./tmp/sub ")
                && !l.starts_with(". ")
        })
        .collect();
    let names = |v: &[&String]| {
        v.iter()
            // `%q` escapes the spaces of a name; the type follows it.
            .map(|l| {
                l.split(" regular file ")
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect::<std::collections::BTreeSet<_>>()
    };
    let want = |v: &[&str]| {
        v.iter()
            .map(|s| (*s).to_owned())
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(
        names(&gone),
        want(&[
            "./log/app/app-20261101",
            "./log/app/app.log.1",
            "./tmp/-old-dash",
            "./tmp/old-export",
            "$'./tmp/old\\nnewline'",
            "./tmp/sub/old\\ name\\ with\\ spaces",
        ]),
        "gone:\n{gone:#?}\nnew:\n{new:#?}"
    );
    assert_eq!(
        names(&new),
        want(&["./log/app/app-20261101.gz", "./log/app/app.log.1.gz"]),
        "{new:#?}"
    );

    // Still over 95%: the volume grows, and the instance's df says by how much.
    let expand = action(&r, "expand_volume");
    assert_eq!(expand.status.as_str(), "done", "{expand:?}");
    let detail = expand.detail.as_deref().unwrap_or_default();
    assert!(detail.contains("grown 20 -> 30 GiB"), "{detail}");
    assert!(
        detail.contains("after the cleanup (df on the instance)"),
        "{detail}"
    );
    assert!(
        detail.contains("partition and filesystem grown, /var is now"),
        "{detail}"
    );
    let df = sandbox.sh("df -P -B1G /var | tail -n 1").await?;
    let size: u64 = df
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!((29..=30).contains(&size), "{df}");
    Ok(())
}

/// A command whose output is longer than SSM keeps: the stand-in cuts it at
/// 24,000 characters as SSM does, and the report and the email say so. The
/// seed leaves a busy process with a 30,000-character command line, which
/// `ps aux --sort=-%cpu` prints first.
#[tokio::test]
async fn a_long_output_is_cut_as_ssm_cuts_it_and_says_so() -> Result<()> {
    let seed =
        r#"(exec -a "$(head -c 30000 /dev/zero | tr '\0' x)" bash -c 'while :; do :; done') &"#;
    let (w, _standin, _sandbox) = world_with_instance(seed).await?;
    // Let it earn its place at the top of `ps --sort=-%cpu`.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let r = w.run_sample("high-cpu-alarm.json").await?;
    let diag = action(&r, "collect_diagnostics");
    assert_eq!(diag.status.as_str(), "done", "{diag:?}");
    let out = diag.output.as_deref().unwrap_or_default();
    let note = first_responder::commands::SSM_CUT_NOTE;
    assert!(
        out.ends_with(note),
        "no cut note at the end of {} chars",
        out.len()
    );
    let body = out
        .strip_suffix(note)
        .unwrap_or_default()
        .trim_end_matches('\n');
    assert_eq!(
        body.chars().count(),
        harness::ssm::STDOUT_LIMIT,
        "cut where SSM cuts"
    );
    assert!(
        out.starts_with("== top processes by CPU"),
        "{}",
        &out[..200]
    );
    // Cut before the later sections: the responder does not pretend to have them.
    assert!(!out.contains("== load =="));
    let inbox = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    let email = inbox[0].text()?;
    assert!(email.contains("more characters trimmed"), "{email}");
    assert!(email.contains(note), "{email}");
    Ok(())
}

/// The stand-in refuses to run a command when one of the sandbox's own
/// mounts is gone: the command ends `Failed` (exit 97) saying why, the
/// incident reports it, and nothing ran on the host's directories.
#[tokio::test]
async fn the_ssm_stand_in_refuses_when_a_sandbox_mount_is_missing() -> Result<()> {
    let (w, _standin, sandbox) = world_with_instance("").await?;
    // Inside the sandbox, /var/log's private tmpfs is unmounted: the host's
    // /var/log shows through.
    sandbox.sh("umount /var/log").await?;
    let (code, _, err) = sandbox
        .run(
            "touch /var/log/should-not-exist",
            std::time::Duration::from_secs(10),
        )
        .await;
    assert_eq!(code, 97, "{err}");
    assert!(
        err.contains("/var/log is not on the sandbox's own filesystem")
            && err.contains("refusing to run"),
        "{err}"
    );
    assert!(!std::path::Path::new("/var/log/should-not-exist").exists());

    let r = w.run_sample("high-cpu-alarm.json").await?;
    let diag = action(&r, "collect_diagnostics");
    assert_ne!(diag.status.as_str(), "done", "{diag:?}");
    let said = format!(
        "{} {}",
        diag.reason,
        diag.detail.as_deref().unwrap_or_default()
    );
    assert!(
        said.contains("Failed (exit code 97)") && said.contains("refusing to run"),
        "{said}"
    );
    Ok(())
}
