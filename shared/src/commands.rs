//! Every shell command first-responder sends through SSM Run Command. Fixed
//! text, filled in only with typed values (validated ids, numbers from the
//! configuration): nothing that came from an event reaches a command line.
//! The scripts print `key=value` lines that the executor reads back.

use crate::disk::GrowPath;
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

/// The processes by the CPU they use now, from two samples of
/// `/proc/PID/stat` a second apart (`ps`'s %CPU is an average over each
/// process's life): `PID START %CPU UNIT COMM` rows, START the process's
/// start time (field 22, in clock ticks since boot), which with the PID
/// names one process for `kill_process`; UNIT its systemd service from
/// `/proc/PID/cgroup` (`-` for none). PID 1, kernel threads (`PF_KTHREAD`
/// in field 9), zombies and processes not in both samples are left out.
/// Reads the two samples separated by a `--` line; `hz` is `CLK_TCK`. It
/// holds no single quote: it travels inside one.
pub const CPU_SAMPLE_AWK: &str = include_str!("commands/cpu_sample.awk");

/// The header of [`CPU_SAMPLE_AWK`]'s section in the diagnostics.
pub const CPU_SAMPLE_HEADER: &str = "== processes by current CPU (two /proc samples 1 s apart) ==";

/// The current-CPU sample ([`CPU_SAMPLE_AWK`]) as diagnostics lines: run
/// before [`HIGH_CPU_DIAGNOSTICS`] only when `kill_process` follows and
/// picks from it, since its second of sampling delays the page.
pub const CPU_SAMPLE: &[&str] = &[
    "echo '== processes by current CPU (two /proc samples 1 s apart) =='",
    "echo 'PID START %CPU UNIT COMM'",
    "a=$(cat /proc/[0-9]*/stat 2>/dev/null); sleep 1; b=$(cat /proc/[0-9]*/stat 2>/dev/null)",
    concat!(
        "{ printf '%s\\n' \"$a\"; echo --; printf '%s\\n' \"$b\"; } | awk -v hz=\"$(getconf CLK_TCK 2>/dev/null || echo 100)\" '",
        include_str!("commands/cpu_sample.awk"),
        "' | sort -k3,3nr | head -n 10"
    ),
];

/// The high-CPU diagnostics, with the current-CPU sample first when
/// `kill_process` will pick from it.
pub fn high_cpu_diagnostics(sample_cpu: bool) -> Vec<String> {
    let sample: &[&str] = if sample_cpu { CPU_SAMPLE } else { &[] };
    sample
        .iter()
        .chain(HIGH_CPU_DIAGNOSTICS)
        .map(|c| (*c).to_owned())
        .collect()
}

/// High CPU: the `echo` lines are fixed headers so the output reads well on a phone.
pub const HIGH_CPU_DIAGNOSTICS: &[&str] = &[
    "echo '== top processes by CPU (ps: averaged over the life of each process) =='",
    "ps aux --sort=-%cpu | head -n 15",
    "echo '== memory (MiB) =='",
    "free -m",
    "echo '== disks =='",
    // Bounded: a dead NFS or EFS mount hangs df.
    "timeout 10 df -h",
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

/// The preflight of a disk incident, in one command (one round trip): the
/// block devices with their EBS serials (NVMe), mount points, filesystems
/// and partition tables, as JSON (how a mount point is traced to a volume,
/// and what stands between them), after a line `missing=TOOL[,TOOL…]`
/// naming the tools this host's layouts need to grow that it lacks
/// (`growpart` for partitions, `pvresize`/`lvextend` for LVM, `xfs_growfs`
/// and `resize2fs` for the filesystems mounted); no such line when none is
/// missing. Mounts are read from the kernel (`findmnt`, bounded: a dead
/// NFS mount must not hang it), not from udev, which minimal images lack.
/// It reads, and changes nothing: the agent's PATH is the one the grow
/// script will run with, so the tools are looked up where it will find them.
pub const DISK_LAYOUT: &[&str] = &[
    "L=$(lsblk -J -o NAME,TYPE,SERIAL,MOUNTPOINT,FSTYPE,PTTYPE) || { echo 'error=lsblk failed'; exit 1; }",
    "need=''",
    "if printf '%s' \"$L\" | grep -Eq '\"type\": ?\"part\"'; then need=\"$need growpart\"; fi",
    "if printf '%s' \"$L\" | grep -Eq '\"type\": ?\"lvm\"'; then need=\"$need pvresize lvextend\"; fi",
    "if [ -n \"$(timeout 10 findmnt -rn -t xfs -o TARGET)\" ]; then need=\"$need xfs_growfs\"; fi",
    "if [ -n \"$(timeout 10 findmnt -rn -t ext2,ext3,ext4 -o TARGET)\" ]; then need=\"$need resize2fs\"; fi",
    "m=''; for t in $need; do command -v \"$t\" >/dev/null 2>&1 || m=\"$m${m:+,}$t\"; done",
    "if [ -n \"$m\" ]; then echo \"missing=$m\"; fi",
    "printf '%s\\n' \"$L\"",
];

/// Usage of the real filesystems, for the expansion threshold: local ones
/// only, and bounded (a dead NFS or EFS mount hangs `df`).
const DF: &str = "timeout 10 df -P -l -x tmpfs -x devtmpfs -x squashfs -x overlay";

/// How long before SSM's execution timeout a compressing script stops
/// starting work, so a compression is never cut off by SSM.
pub const SCRIPT_MARGIN_SECONDS: u32 = 5;

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

/// The host's own ages for /tmp and /var/tmp, in minutes, as its
/// `systemd-tmpfiles --cat-config` gives them (the first line for a path
/// wins, as systemd applies it; `-` or no line: never aged by the host),
/// else 10 and 30 days (Amazon Linux's); then `max_minutes` (the
/// playbook's shorter age, 0 for none) where it is shorter. Sets `tmp`,
/// `var`, `tmp_from`, `var_from` (-1: never), and the `x`/`X` exclusions
/// under /tmp and /var/tmp as `-o -path PATTERN` arguments in `$@`
/// (specifiers such as `%b` read as `*`: more is kept, never less).
fn tmpfiles_ages(max_minutes: u64) -> Vec<String> {
    vec![
        "cfg=''; if command -v systemd-tmpfiles >/dev/null 2>&1; then cfg=$(timeout 10 systemd-tmpfiles --cat-config 2>/dev/null); fi".to_owned(),
        "tmp=14400; var=43200; tmp_from=default; var_from=default".to_owned(),
        "if [ -n \"$cfg\" ]; then tmp_from=systemd-tmpfiles; var_from=systemd-tmpfiles; ages=$(printf '%s\\n' \"$cfg\" | awk 'function minutes(a, m, n, u, v) { sub(/^~/, \"\", a); if (a == \"\" || a == \"-\") return -1; m = 0; while (match(a, /^[0-9]+[a-z]*/)) { v = substr(a, 1, RLENGTH); a = substr(a, RLENGTH + 1); n = v + 0; u = v; sub(/^[0-9]+/, \"\", u); if (u == \"w\") m += n * 10080; else if (u == \"d\") m += n * 1440; else if (u == \"h\") m += n * 60; else if (u == \"m\" || u == \"min\") m += n; else m += n / 60 } return int(m) } { t = $1; gsub(/[^A-Za-z]/, \"\", t) } t ~ /^[dDeqQvC]$/ && ($2 == \"/tmp\" || $2 == \"/var/tmp\") && !($2 in seen) { seen[$2] = 1; print $2, minutes($6) }'); tmp=$(printf '%s\\n' \"$ages\" | awk '$1 == \"/tmp\" {print $2}'); var=$(printf '%s\\n' \"$ages\" | awk '$1 == \"/var/tmp\" {print $2}'); [ -n \"$tmp\" ] || tmp=-1; [ -n \"$var\" ] || var=-1; fi".to_owned(),
        format!("max={max_minutes}"),
        "if [ \"$max\" -gt 0 ] && { [ \"$tmp\" -lt 0 ] || [ \"$tmp\" -gt \"$max\" ]; }; then tmp=$max; tmp_from=playbook; fi".to_owned(),
        "if [ \"$max\" -gt 0 ] && { [ \"$var\" -lt 0 ] || [ \"$var\" -gt \"$max\" ]; }; then var=$max; var_from=playbook; fi".to_owned(),
        "echo \"age_tmp_minutes=$tmp\"; echo \"age_tmp_from=$tmp_from\"; echo \"age_var_tmp_minutes=$var\"; echo \"age_var_tmp_from=$var_from\"".to_owned(),
        "set -f; IFS=$(printf '\\n_'); IFS=${IFS%_}; set --; for p in $(printf '%s\\n' \"$cfg\" | awk '{ t = $1; gsub(/[^A-Za-z]/, \"\", t) } (t == \"x\" || t == \"X\") && $2 ~ /^\\/(var\\/)?tmp\\// { p = $2; gsub(/%[A-Za-z]/, \"*\", p); print p }'); do set -- \"$@\" -o -path \"$p\"; done; unset IFS; set +f".to_owned(),
    ]
}

/// Deletes regular files under /tmp and /var/tmp that were neither modified
/// nor read for the host's own ages ([`tmpfiles_ages`]: its
/// systemd-tmpfiles configuration, else 10 and 30 days; `max_days`, from
/// the playbook, where shorter), by mtime *and* atime, as systemd-tmpfiles
/// ages them (it also looks at ctime, which cannot be set back to test, so
/// ctime is left out). Never what the host's configuration excludes (`x`,
/// `X`), services' private directories (`systemd-private-*`) or snaps'
/// (`snap-private-tmp`). `find -P` never follows a symlink, `-xdev` stays
/// on each start's filesystem, `-type f -links 1` leaves sockets, pipes,
/// links and hard-linked files alone. A file some process holds open is
/// kept: deleting it would free nothing. Each file is checked and deleted
/// by `-execdir` from its own directory, so no path is resolved again after
/// `find` chose it. Prints the ages and where they came from
/// (`age_tmp_minutes=`, `age_tmp_from=`, …), `freed_bytes=` (the blocks the
/// deleted files held), `deleted_files=`, `kept_open_files=`, `error=` when
/// find failed, then `df -P`.
pub fn cleanup_temp(max_days: Option<u32>) -> Vec<String> {
    let max_minutes = max_days.map_or(0, |d| u64::from(d) * 24 * 60);
    let mut c: Vec<String> = PREAMBLE.iter().map(|l| (*l).to_owned()).collect();
    c.extend(tmpfiles_ages(max_minutes));
    c.push("clean() { dir=$1; age=$2; shift 2; [ \"$age\" -ge 0 ] || return 0; find \"$dir\" -xdev \\( -path '/tmp/systemd-private-*' -o -path '/var/tmp/systemd-private-*' -o -path /tmp/snap-private-tmp -o -path /var/tmp/snap-private-tmp \"$@\" \\) -prune -o -type f -links 1 -mmin +\"$age\" -amin +\"$age\" -execdir sh -c 'open=$1; shift; for f do id=$(stat -c %d:%i -- \"$f\") || continue; if grep -qxF -- \"$id\" \"$open\"; then echo kept; continue; fi; bytes=$(($(stat -c \"%b*%B\" -- \"$f\"))); rm -f -- \"$f\" && echo \"freed $bytes\"; done' sh \"$work/open\" {} +; }".to_owned());
    c.push("if [ -s \"$work/open\" ]; then rc=0; clean /tmp \"$tmp\" \"$@\" 2>/dev/null > \"$work/done\" || rc=$?; clean /var/tmp \"$var\" \"$@\" 2>/dev/null >> \"$work/done\" || rc=$?; echo \"$rc\" > \"$work/rc\"; else : > \"$work/done\"; fi".to_owned());
    c.push(SUMMARY_CLEANUP.to_owned());
    c.push(DF.to_owned());
    c
}

/// The cleanup's figures, or `error=` when find failed or they could not
/// be read (never a bare `freed_bytes=0` for a script that failed).
const SUMMARY_CLEANUP: &str = "awk '$1 == \"freed\" {s += $2; n++} $1 == \"kept\" {k++} END {printf \"freed_bytes=%d\\ndeleted_files=%d\\nkept_open_files=%d\\n\", s, n, k}' \"$work/done\" || { echo 'error=the cleanup left no results to read'; exit 1; }; if [ -s \"$work/rc\" ] && [ \"$(cat \"$work/rc\")\" != 0 ]; then echo \"error=find exited $(cat \"$work/rc\") (some files could not be read or removed)\"; fi";

/// Compresses rotated logs under /var/log not modified for `days`: only
/// rotated names (`.1`, `.12`, `-YYYYMMDD`, `.old`), never a file a process
/// holds open (by inode, from /proc), never a hard-linked one, never over an
/// existing `.gz`. Each is compressed by `-execdir` from its own directory
/// to a temporary name, bounded by what is left of `budget_seconds` (SSM's
/// execution timeout less [`SCRIPT_MARGIN_SECONDS`]), and renamed only
/// when whole: a compression cut off leaves no partial file. With a bucket,
/// each compressed file is shipped with the AWS CLI and removed once
/// shipped. Prints `freed_bytes=`, `compressed_files=`, `kept_open_files=`,
/// counts of what was left (`not_compressed_in_time=`, `compress_failed=`),
/// `error=` when something failed, then `df -P`.
pub fn archive_logs(
    days: u32,
    bucket: Option<&str>,
    instance: &InstanceId,
    incident_id: &str,
) -> Vec<String> {
    archive_logs_within(days, bucket, instance, incident_id, 60)
}

/// [`archive_logs`] for a command SSM stops after `budget_seconds`.
pub fn archive_logs_within(
    days: u32,
    bucket: Option<&str>,
    instance: &InstanceId,
    incident_id: &str,
    budget_seconds: u32,
) -> Vec<String> {
    let minutes = u64::from(days) * 24 * 60;
    let budget = budget_seconds.saturating_sub(SCRIPT_MARGIN_SECONDS).max(1);
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
    c.push(format!("end=$(( $(date +%s) + {budget} ))"));
    // What an earlier run killed mid-compression left (root's, ours).
    c.push("find /var/log -xdev -type f -user root -links 1 -name '*.gz.fr-part' -delete 2>/dev/null || true".to_owned());
    c.push(format!(
        "if [ -s \"$work/open\" ]; then find /var/log -xdev -type f -links 1 -mmin +{minutes} \\( -name '*.[0-9]' -o -name '*.[0-9][0-9]' -o -name '*-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]' -o -name '*.old' \\) -execdir sh -c 'open=$1; end=$2; shift 2; for f do id=$(stat -c %d:%i -- \"$f\") || continue; if grep -qxF -- \"$id\" \"$open\"; then echo kept; continue; fi; if [ -e \"$f.gz\" ]; then echo exists; continue; fi; left=$((end - $(date +%s))); if [ \"$left\" -le 0 ]; then echo late; continue; fi; b=$(($(stat -c \"%b*%B\" -- \"$f\"))); if timeout \"$left\" gzip -9 -c -- \"$f\" > \"$f.gz.fr-part\" && chown --reference=\"$f\" -- \"$f.gz.fr-part\" && chmod --reference=\"$f\" -- \"$f.gz.fr-part\" && touch -r \"$f\" -- \"$f.gz.fr-part\" && mv -f -- \"$f.gz.fr-part\" \"$f.gz\"; then rm -f -- \"$f\"; else rm -f -- \"$f.gz.fr-part\"; echo failed; continue; fi; a=$(($(stat -c \"%b*%B\" -- \"$f.gz\"))); echo \"freed $((b - a))\";{ship} done' sh \"$work/open\" \"$end\" {{}} + 2>/dev/null > \"$work/done\"; echo $? > \"$work/rc\"; else : > \"$work/done\"; fi"
    ));
    c.push("awk '$1 == \"freed\" {s += $2; n++} $1 == \"shipped\" {s += $2; sh++} $1 == \"ship_failed\" {f++} $1 == \"kept\" {k++} $1 == \"late\" {l++} $1 == \"failed\" {x++} END {printf \"freed_bytes=%d\\ncompressed_files=%d\\nkept_open_files=%d\\n\", s, n, k; if (sh) printf \"shipped_files=%d\\n\", sh; if (f) printf \"ship_failed_files=%d\\n\", f; if (l) printf \"not_compressed_in_time=%d\\n\", l; if (x) printf \"compress_failed=%d\\nerror=%d rotated logs could not be compressed\\n\", x, x}' \"$work/done\" || { echo 'error=the archive left no results to read'; exit 1; }; if [ -s \"$work/rc\" ] && [ \"$(cat \"$work/rc\")\" != 0 ]; then echo \"error=find exited $(cat \"$work/rc\") (some logs could not be read)\"; fi".to_owned());
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
pub const GROW_LVM_FAILED: i32 = 8;

/// Grows what holds the alerted filesystem on the volume, once the kernel
/// sees the new size: the partition the plan named (by its number, read
/// from the instance's layout), the LVM physical volume and the logical
/// volume the plan named, then the filesystem mounted from it (found by
/// device with `findmnt`: never the first mounted partition, never a mount
/// point from the alert). The device is found from the volume id (Nitro:
/// the NVMe serial through /dev/disk/by-id) or the block-device mapping's
/// Xen name. Prints `device=`, `target=`, `mount=`, `fstype=`, and the
/// mount's size before and after (`size_before=`, `size_after=`, bytes),
/// then `df -P` of it; `error=` and an exit code on any stop.
pub fn grow_filesystem(
    volume: &VolumeId,
    xen_letters: Option<&str>,
    to_gib: i32,
    path: &GrowPath,
) -> Vec<String> {
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
    let mut c = vec![
        "DEV=''".to_owned(),
        // Without Xen letters the list has one candidate (Nitro): still a loop.
        "# shellcheck disable=SC2043 # one candidate on Nitro instances, more on Xen ones"
            .to_owned(),
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
    ];
    // The partition by its number, as the kernel numbers it (sysfs), among
    // the disk's own partitions.
    match path.partition() {
        Some(n) => c.push(format!(
            "PART=''; for p in $(lsblk -nrpo NAME \"$DEV\"); do if [ \"$(cat \"/sys/class/block/${{p##*/}}/partition\" 2>/dev/null)\" = {n} ]; then PART=$p; break; fi; done; if [ -z \"$PART\" ]; then echo \"error=$DEV has no partition {n}\"; exit {GROW_NO_DEVICE}; fi"
        )),
        None => c.push("PART=$DEV".to_owned()),
    }
    match path {
        GrowPath::Lvm { lv, .. } => c.push(format!("TARGET=/dev/mapper/{lv}")),
        _ => c.push("TARGET=$PART".to_owned()),
    }
    c.extend([
        // From the kernel's mount table (bounded: a dead network mount must
        // not hang it); lsblk's FSTYPE needs udev, which minimal images
        // lack, so blkid reads the disk when findmnt cannot say.
        "MNT=$(timeout 10 findmnt -nro TARGET --source \"$TARGET\" | head -n 1)".to_owned(),
        format!(
            "if [ -z \"$MNT\" ]; then echo \"error=nothing is mounted from $TARGET\"; exit {GROW_NO_DEVICE}; fi"
        ),
        "FS=$(timeout 10 findmnt -nro FSTYPE --source \"$TARGET\" | head -n 1); [ -n \"$FS\" ] || FS=$(blkid -o value -s TYPE \"$TARGET\")".to_owned(),
        "echo \"target=$TARGET\"; echo \"mount=$MNT\"; echo \"fstype=$FS\"".to_owned(),
        format!(
            "case \"$FS\" in ext2|ext3|ext4|xfs) ;; *) echo \"error=filesystem $FS is not grown automatically\"; exit {GROW_UNKNOWN_FS};; esac"
        ),
        "SIZE0=$(timeout 10 df -P -B1 \"$MNT\" | awk 'NR == 2 {print $2}'); echo \"size_before=$SIZE0\"".to_owned(),
    ]);
    // growpart: 0 grown, 1 nothing to grow (already the full disk). Then
    // the kernel is told the new partition size (growpart does on most
    // hosts; partx -u is harmless where it did).
    if let Some(n) = path.partition() {
        c.push(format!(
            "growpart \"$DEV\" {n}; rc=$?; if [ $rc -gt 1 ]; then echo \"error=growpart exited $rc\"; exit {GROW_PARTITION_FAILED}; fi; partx -u \"$DEV\" 2>/dev/null || true"
        ));
    }
    match path {
        GrowPath::Lvm { .. } => {
            c.push(format!(
                "pvresize \"$PART\" || {{ echo \"error=the volume is {to_gib} GiB but pvresize $PART failed: run it, then \\`lvextend -r -l +100%FREE $TARGET\\`, by hand\"; exit {GROW_LVM_FAILED}; }}"
            ));
            // -r grows the filesystem with the logical volume (fsadm).
            c.push(format!(
                "lvextend -r -l +100%FREE \"$TARGET\" || {{ echo \"error=the volume is {to_gib} GiB and its physical volume grown, but lvextend failed: run \\`lvextend -r -l +100%FREE $TARGET\\` by hand\"; exit {GROW_LVM_FAILED}; }}"
            ));
        }
        // Online growth can be refused (resize2fs needs CAP_SYS_RESOURCE; an
        // old kernel, a full journal): say what to run by hand.
        _ => c.push(format!(
            "case \"$FS\" in xfs) xfs_growfs -d \"$MNT\" || {{ echo \"error=the volume is {to_gib} GiB but the filesystem was not grown: run \\`xfs_growfs -d $MNT\\` by hand\"; exit {GROW_FS_FAILED}; }} ;; *) resize2fs \"$TARGET\" || {{ echo \"error=the volume is {to_gib} GiB but the filesystem was not grown: run \\`resize2fs $TARGET\\` by hand\"; exit {GROW_FS_FAILED}; }} ;; esac"
        )),
    }
    c.push("SIZE1=$(timeout 10 df -P -B1 \"$MNT\" | awk 'NR == 2 {print $2}'); echo \"size_after=$SIZE1\"".to_owned());
    c.push("timeout 10 df -P \"$MNT\"".to_owned());
    c
}

/// How many journal lines a failed restart reports.
pub const JOURNAL_LINES: u32 = 20;

/// Restarts a systemd unit and watches it settle: a unit stopped by its
/// start limit (`Result=start-limit-hit`) is reset first (`reset-failed`),
/// or the restart is refused outright; after the restart the unit is
/// watched for `settle_seconds`, and its `NRestarts` read before and after,
/// so that a unit that crashes two seconds later (and perhaps is restarted
/// by systemd) is not reported as fixed. Prints `reset_failed=1`,
/// `restart_exit=`, `active=` (the last state seen), `left_active_at=`
/// (seconds), `nrestarts_before=`, `nrestarts_after=`, and, when it did not
/// stay up, the unit's last journal lines under `== journal ==`.
pub fn restart_service(service: &ServiceName, settle_seconds: u32) -> Vec<String> {
    vec![
        format!("SVC='{service}'"),
        format!("TICKS={}", u64::from(settle_seconds) * 2),
        // `show -p NAME` prints NAME=value on every systemd; `--value`
        // needs 230 (Amazon Linux 2 has 219).
        "if [ \"$(systemctl show -p Result \"$SVC\" 2>/dev/null)\" = Result=start-limit-hit ]; then systemctl reset-failed \"$SVC\" && echo reset_failed=1; fi".into(),
        "systemctl restart \"$SVC\"; rc=$?; echo \"restart_exit=$rc\"".into(),
        "n0=$(systemctl show -p NRestarts \"$SVC\" 2>/dev/null); n0=${n0#NRestarts=}".into(),
        "i=0; state=$(systemctl is-active \"$SVC\")".into(),
        "while [ \"$rc\" -eq 0 ] && [ \"$state\" = active ] && [ \"$i\" -lt \"$TICKS\" ]; do sleep 0.5; i=$((i + 1)); state=$(systemctl is-active \"$SVC\"); done".into(),
        "n1=$(systemctl show -p NRestarts \"$SVC\" 2>/dev/null); n1=${n1#NRestarts=}".into(),
        "echo \"active=$state\"; echo \"nrestarts_before=${n0:-?}\"; echo \"nrestarts_after=${n1:-?}\"".into(),
        "[ \"$state\" = active ] || echo \"left_active_at=$((i / 2))\"".into(),
        format!("if [ \"$rc\" -ne 0 ] || [ \"$state\" != active ] || [ \"$n0\" != \"$n1\" ]; then echo '== journal =='; journalctl -u \"$SVC\" -n {JOURNAL_LINES} --no-pager 2>/dev/null; fi"),
        "exit 0".into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_hold_only_typed_values() {
        let i = InstanceId::parse("t", "i-0123456789abcdef0").unwrap();
        let v = VolumeId::parse("t", "vol-0123456789abcdef0").unwrap();
        let c = cleanup_temp(Some(7)).join("\n");
        assert!(c.contains("-mmin +\"$age\" -amin +\"$age\""), "{c}");
        assert!(c.contains("max=10080"), "{c}");
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
        let g = grow_filesystem(&v, Some("f"), 120, &GrowPath::Partition(2)).join("\n");
        assert!(
            g.contains("/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0 /dev/xvdf /dev/sdf"),
            "{g}"
        );
        assert!(g.contains(&(120_i64 << 30).to_string()), "{g}");
        assert!(
            g.contains("= 2 ]") && g.contains("growpart \"$DEV\" 2"),
            "{g}"
        );
        let lv = crate::disk::LvName::parse("vg0-data").unwrap();
        let g = grow_filesystem(
            &v,
            None,
            120,
            &GrowPath::Lvm {
                partition: None,
                lv,
            },
        )
        .join("\n");
        assert!(
            g.contains("TARGET=/dev/mapper/vg0-data") && !g.contains("growpart"),
            "{g}"
        );
        assert!(
            g.contains("pvresize \"$PART\"") && g.contains("lvextend -r -l +100%FREE \"$TARGET\""),
            "{g}"
        );
        let g = grow_filesystem(&v, Some("f; rm -rf /"), 120, &GrowPath::Disk).join("\n");
        assert!(!g.contains("rm -rf"), "{g}");
        let s = ServiceName::parse("t", "app.service").unwrap();
        assert_eq!(restart_service(&s, 10)[0], "SVC='app.service'");
        assert_eq!(restart_service(&s, 10)[1], "TICKS=20");
    }
}
