//! Every shell command first-responder sends through SSM Run Command. Fixed
//! text, filled in only with typed values (validated ids, numbers from the
//! configuration): nothing that came from an event reaches a command line.
//! The scripts print `key=value` lines that the executor reads back.

use crate::ids::{InstanceId, ServiceName, VolumeId};

/// SSM keeps only this much of a command's standard output in its answer.
pub const SSM_STDOUT_LIMIT: usize = 24_000;

/// The line added to an output SSM cut (it cuts silently).
pub const SSM_CUT_NOTE: &str =
    "[SSM returns only the first 24000 characters of a command's output: the rest was cut]";

/// A command's output, saying so when SSM cut it.
pub fn with_cut_note(stdout: &str) -> String {
    if stdout.chars().count() >= SSM_STDOUT_LIMIT {
        format!("{stdout}\n{SSM_CUT_NOTE}")
    } else {
        stdout.to_owned()
    }
}

/// High CPU: the `echo` lines are fixed headers so the output reads well on a phone.
pub const HIGH_CPU_DIAGNOSTICS: &[&str] = &[
    "echo '== top processes by CPU =='",
    "ps aux --sort=-%cpu | head -n 15",
    "echo '== memory (MiB) =='",
    "free -m",
    "echo '== disks =='",
    "df -h",
    "echo '== load =='",
    "uptime",
];

/// Memory pressure: processes by memory, free memory, and the kernel's
/// recent OOM-killer lines (journald if present, else the ring buffer).
pub const MEMORY_DIAGNOSTICS: &[&str] = &[
    "echo '== top processes by memory =='",
    "ps aux --sort=-%mem | head -n 15",
    "echo '== memory (MiB) =='",
    "free -m",
    "echo '== recent OOM-killer lines =='",
    "{ journalctl -k --since -2h --no-pager 2>/dev/null || dmesg 2>/dev/null; } | grep -i -E 'out of memory|oom-kill|killed process' | tail -n 20",
    "true",
];

/// The block devices with their EBS serials (NVMe), mount points, filesystems
/// and partition tables, as JSON: how a mount point is traced to a volume.
pub const LSBLK: &[&str] = &["lsblk -J -o NAME,TYPE,SERIAL,MOUNTPOINT,FSTYPE,PTTYPE"];

/// Usage of the real filesystems, for the expansion threshold.
const DF: &str = "df -P -x tmpfs -x devtmpfs -x squashfs -x overlay";

/// The first lines of every script that changes files: a fixed PATH (a
/// root script trusts no inherited one, and `find -execdir` refuses a
/// relative entry), a fresh root-owned working directory that no local
/// user can have prepared (`mktemp -d`: unpredictable name, mode 0700),
/// removed on exit, and the files any process holds open, as
/// `device:inode`, read from /proc (no `fuser` needed; a file name, however
/// odd, never enters the list). `open_check=unavailable` when /proc could not
/// be read: then nothing is touched.
const PREAMBLE: &[&str] = &[
    "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C",
    "work=$(mktemp -d) || { echo 'error=no private working directory'; exit 1; }",
    "trap 'rm -rf -- \"$work\"' EXIT",
    "find /proc/[0-9]*/fd -mindepth 1 -maxdepth 1 -exec stat -L -c '%d:%i' {} + 2>/dev/null | sort -u > \"$work/open\"",
    "if [ ! -s \"$work/open\" ]; then echo 'open_check=unavailable'; fi",
];

/// Deletes regular files under /tmp and /var/tmp that were neither modified
/// nor read for `days` (mtime *and* atime, as systemd-tmpfiles ages them;
/// it also looks at ctime, which cannot be set back to test, so ctime is
/// left out). `find -P` never follows a symlink, `-xdev` stays on each
/// start's filesystem, `-type f -links 1` leaves sockets, pipes, links and
/// hard-linked files alone, `systemd-private-*` (services' private /tmp)
/// is pruned. A file some process holds open is kept: deleting it would
/// free nothing. Each file is checked and deleted by `-execdir` from its
/// own directory, so no path is resolved again after `find` chose it.
/// Prints `freed_bytes=` (the blocks the deleted files held),
/// `deleted_files=`, `kept_open_files=`, then `df -P`.
pub fn cleanup_temp(days: u32) -> Vec<String> {
    let minutes = u64::from(days) * 24 * 60;
    let mut c: Vec<String> = PREAMBLE.iter().map(|l| (*l).to_owned()).collect();
    c.push(format!(
        "if [ -s \"$work/open\" ]; then find /tmp /var/tmp -xdev \\( -path '/tmp/systemd-private-*' -o -path '/var/tmp/systemd-private-*' \\) -prune -o -type f -links 1 -mmin +{minutes} -amin +{minutes} -execdir sh -c 'open=$1; shift; for f do id=$(stat -c %d:%i -- \"$f\") || continue; if grep -qxF -- \"$id\" \"$open\"; then echo kept; continue; fi; bytes=$(($(stat -c \"%b*%B\" -- \"$f\"))); rm -f -- \"$f\" && echo \"freed $bytes\"; done' sh \"$work/open\" {{}} + 2>/dev/null > \"$work/done\"; fi"
    ));
    c.push("awk '$1 == \"freed\" {s += $2; n++} $1 == \"kept\" {k++} END {printf \"freed_bytes=%d\\ndeleted_files=%d\\nkept_open_files=%d\\n\", s, n, k}' \"$work/done\" 2>/dev/null || echo 'freed_bytes=0'".to_owned());
    c.push(DF.to_owned());
    c
}

/// Compresses rotated logs under /var/log not modified for `days`: only
/// rotated names (`.1`, `.12`, `-YYYYMMDD`, `.old`), never a file a process
/// holds open (by inode, from /proc), never a hard-linked one. Each is
/// compressed by `-execdir` from its own directory. With a bucket, each
/// compressed file is shipped with the AWS CLI and removed once shipped,
/// from the same directory. Prints `freed_bytes=`, `compressed_files=`,
/// `kept_open_files=`, then `df -P`.
pub fn archive_logs(
    days: u32,
    bucket: Option<&str>,
    instance: &InstanceId,
    incident_id: &str,
) -> Vec<String> {
    let minutes = u64::from(days) * 24 * 60;
    // The incident id is ours (inc- and hex), the bucket validated config.
    let tag: String = incident_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    let ship = match bucket {
        Some(b) => format!(
            " if aws s3 cp --only-show-errors -- \"$f.gz\" \"s3://{b}/first-responder/{instance}/{tag}$PWD/${{f#./}}.gz\"; then rm -f -- \"$f.gz\"; echo \"shipped $a\"; else echo ship_failed; fi;"
        ),
        None => String::new(),
    };
    let mut c: Vec<String> = PREAMBLE.iter().map(|l| (*l).to_owned()).collect();
    c.push(format!(
        "if [ -s \"$work/open\" ]; then find /var/log -xdev -type f -links 1 -mmin +{minutes} \\( -name '*.[0-9]' -o -name '*.[0-9][0-9]' -o -name '*-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]' -o -name '*.old' \\) -execdir sh -c 'open=$1; shift; for f do id=$(stat -c %d:%i -- \"$f\") || continue; if grep -qxF -- \"$id\" \"$open\"; then echo kept; continue; fi; b=$(($(stat -c \"%b*%B\" -- \"$f\"))); gzip -9 -- \"$f\" || continue; a=$(($(stat -c \"%b*%B\" -- \"$f.gz\"))); echo \"freed $((b - a))\";{ship} done' sh \"$work/open\" {{}} + 2>/dev/null > \"$work/done\"; fi"
    ));
    c.push("awk '$1 == \"freed\" {s += $2; n++} $1 == \"shipped\" {s += $2; sh++} $1 == \"ship_failed\" {f++} $1 == \"kept\" {k++} END {printf \"freed_bytes=%d\\ncompressed_files=%d\\nkept_open_files=%d\\n\", s, n, k; if (sh) printf \"shipped_files=%d\\n\", sh; if (f) printf \"ship_failed_files=%d\\n\", f}' \"$work/done\" 2>/dev/null || echo 'freed_bytes=0'".to_owned());
    if let Some(b) = bucket {
        let url = format!("s3://{b}/first-responder/{instance}/{tag}/");
        c.push(format!(
            "if grep -q '^shipped ' \"$work/done\" 2>/dev/null; then echo 'shipped={url}'; fi; if grep -q '^ship_failed' \"$work/done\" 2>/dev/null; then echo 'ship_failed={url}'; fi"
        ));
    }
    c.push(DF.to_owned());
    c
}

/// Exit codes of [`grow_filesystem`], read back by the executor.
pub const GROW_NO_DEVICE: i32 = 3;
pub const GROW_UNKNOWN_FS: i32 = 4;
pub const GROW_PARTITION_FAILED: i32 = 5;
pub const GROW_NOT_RESIZED: i32 = 6;
pub const GROW_FS_FAILED: i32 = 7;

/// Grows the partition and filesystem on the volume once the kernel sees the
/// new size. The device is found from the volume id (Nitro: the NVMe serial
/// through /dev/disk/by-id) or the block-device mapping's Xen name.
pub fn grow_filesystem(volume: &VolumeId, xen_letters: Option<&str>, to_gib: i32) -> Vec<String> {
    let serial = volume.as_str().replacen('-', "", 1);
    let mut candidates = vec![format!(
        "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_{serial}"
    )];
    // Letters only, checked by the caller's type; still filtered here.
    if let Some(l) = xen_letters.filter(|l| l.bytes().all(|b| b.is_ascii_lowercase())) {
        candidates.push(format!("/dev/xvd{l}"));
        candidates.push(format!("/dev/sd{l}"));
    }
    let bytes = i64::from(to_gib) * 1024 * 1024 * 1024;
    vec![
        "DEV=''".to_owned(),
        // Without Xen letters the list has one candidate (Nitro): still a loop.
        "# shellcheck disable=SC2043 # one candidate on Nitro instances, more on Xen ones".to_owned(),
        format!(
            "for d in {}; do if [ -e \"$d\" ]; then DEV=$(readlink -f \"$d\"); break; fi; done",
            candidates.join(" ")
        ),
        format!(
            "if [ -z \"$DEV\" ]; then echo 'error=no block device for {volume} on this instance'; exit {GROW_NO_DEVICE}; fi"
        ),
        "echo \"device=$DEV\"".to_owned(),
        // The kernel learns the new size a little after `optimizing`.
        format!(
            "i=0; while [ \"$(blockdev --getsize64 \"$DEV\")\" -lt {bytes} ] && [ $i -lt 60 ]; do sleep 1; i=$((i+1)); done"
        ),
        format!(
            "if [ \"$(blockdev --getsize64 \"$DEV\")\" -lt {bytes} ]; then echo 'error=the kernel still sees the old size of the device'; exit {GROW_NOT_RESIZED}; fi"
        ),
        "TARGET=$(lsblk -nrpo NAME,MOUNTPOINT \"$DEV\" | awk '$2 != \"\" {print $1; exit}')"
            .to_owned(),
        format!(
            "if [ -z \"$TARGET\" ]; then echo 'error=nothing on the device is mounted'; exit {GROW_NO_DEVICE}; fi"
        ),
        // lsblk's FSTYPE comes from udev's database, which minimal images and
        // containers lack: findmnt and blkid read the kernel and the disk.
        "MNT=$(lsblk -nro MOUNTPOINT \"$TARGET\" | head -n 1); [ -n \"$MNT\" ] || MNT=$(findmnt -nro TARGET --source \"$TARGET\" | head -n 1)"
            .to_owned(),
        "FS=$(lsblk -nro FSTYPE \"$TARGET\"); [ -n \"$FS\" ] || FS=$(findmnt -nro FSTYPE --source \"$TARGET\" | head -n 1); [ -n \"$FS\" ] || FS=$(blkid -o value -s TYPE \"$TARGET\")"
            .to_owned(),
        "echo \"mount=$MNT\"; echo \"fstype=$FS\"".to_owned(),
        format!(
            "case \"$FS\" in ext2|ext3|ext4|xfs) ;; *) echo \"error=filesystem $FS is not grown automatically\"; exit {GROW_UNKNOWN_FS};; esac"
        ),
        // growpart: 0 grown, 1 nothing to grow (already the full disk).
        format!(
            "if [ \"$TARGET\" != \"$DEV\" ]; then N=$(cat \"/sys/class/block/$(basename \"$TARGET\")/partition\"); growpart \"$DEV\" \"$N\"; rc=$?; if [ $rc -gt 1 ]; then echo \"error=growpart exited $rc\"; exit {GROW_PARTITION_FAILED}; fi; fi"
        ),
        // Online growth can be refused (resize2fs needs CAP_SYS_RESOURCE; an
        // old kernel, a full journal): say what to run by hand.
        format!(
            "case \"$FS\" in xfs) xfs_growfs -d \"$MNT\" || {{ echo \"error=the volume is {to_gib} GiB but the filesystem was not grown: run \\`xfs_growfs -d $MNT\\` by hand\"; exit {GROW_FS_FAILED}; }} ;; *) resize2fs \"$TARGET\" || {{ echo \"error=the volume is {to_gib} GiB but the filesystem was not grown: run \\`resize2fs $TARGET\\` by hand\"; exit {GROW_FS_FAILED}; }} ;; esac"
        ),
        "df -P \"$MNT\"".to_owned(),
    ]
}

/// Restarts a systemd unit and reports whether it came back.
pub fn restart_service(service: &ServiceName) -> Vec<String> {
    vec![
        format!("systemctl restart '{service}'"),
        format!("echo \"active=$(systemctl is-active '{service}')\""),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_hold_only_typed_values() {
        let i = InstanceId::parse("t", "i-0123456789abcdef0").unwrap();
        let v = VolumeId::parse("t", "vol-0123456789abcdef0").unwrap();
        let c = cleanup_temp(7).join("\n");
        assert!(c.contains("-mmin +10080 -amin +10080"), "{c}");
        assert!(c.contains("-xdev"), "{c}");
        assert!(c.contains("-type f -links 1"), "{c}");
        assert!(c.contains("-execdir"), "{c}");
        assert!(
            c.contains("systemd-private-*") && c.contains("-prune"),
            "{c}"
        );
        assert!(!c.contains("find -L") && !c.contains("-follow"), "{c}");
        let a = archive_logs(3, Some("logs-bucket"), &i, "inc-0011223344556677").join("\n");
        assert!(a.contains("-mmin +4320"), "{a}");
        assert!(
            a.contains("s3://logs-bucket/first-responder/i-0123456789abcdef0/inc-0011223344556677"),
            "{a}"
        );
        // No predictable file anywhere: the working directory is mktemp's.
        assert!(!a.contains("/var/tmp/first-responder"), "{a}");
        assert!(a.contains("work=$(mktemp -d)"), "{a}");
        let a = archive_logs(3, None, &i, "inc-0011223344556677").join("\n");
        assert!(!a.contains("s3://"), "{a}");
        let g = grow_filesystem(&v, Some("f"), 120).join("\n");
        assert!(
            g.contains("/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0 /dev/xvdf /dev/sdf"),
            "{g}"
        );
        assert!(g.contains(&(120_i64 << 30).to_string()), "{g}");
        let g = grow_filesystem(&v, Some("f; rm -rf /"), 120).join("\n");
        assert!(!g.contains("rm -rf"), "{g}");
        let s = ServiceName::parse("t", "app.service").unwrap();
        assert_eq!(restart_service(&s)[0], "systemctl restart 'app.service'");
    }
}
