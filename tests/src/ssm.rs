//! SSM Run Command for real: a loopback HTTP server (hyper) in front of
//! moto for the SSM API. `SendCommand` is forwarded to moto (which records
//! it and names the command id) *and*, for an instance with a sandbox,
//! executed with its exact commands by `sh` (dash, as on Debian and Ubuntu;
//! [`Shell`]) inside that instance's sandbox;
//! `GetCommandInvocation` for it is answered from the real run, as SSM
//! answers: `InvocationDoesNotExist` at first, `InProgress` while it runs,
//! then `Success` or `Failed` with the exit code, stdout cut at SSM's 24,000
//! characters and stderr at 8,000. Every other call goes to moto unchanged.
//!
//! An instance's sandbox ([`Instance`]) is a mount and a PID namespace of
//! its own (`unshare --mount --pid --fork --mount-proc --propagation
//! private`, held open by a `sleep`, so that `ps` on the instance sees the
//! instance's processes and not the test run's or another instance's) with
//! private tmpfs mounts over /tmp, /var/tmp and /var/log; commands enter it
//! with `nsenter`. Before each command it checks with `findmnt` that every
//! one of those paths is the sandbox's own mount, and refuses to run
//! otherwise (the command then ends `Failed`, saying so). A stand-in
//! `systemctl` on the sandbox's PATH (there is no systemd here) restarts
//! nothing and answers `is-active` from a state file the test sets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// SSM keeps this much of a command's standard output in the API answer.
pub const STDOUT_LIMIT: usize = 24_000;
pub const STDERR_LIMIT: usize = 8_000;

/// Exit status of a command the sandbox refused to run.
pub const REFUSED: i32 = 97;

/// Where the stand-in `systemctl` lives inside a sandbox, and its states.
pub const STANDIN_BIN: &str = "/var/tmp/.instance-standin/bin";
pub const UNIT_STATES: &str = "/var/tmp/.instance-standin/units";
/// Where a sandbox that hides tools links every other program.
const TOOLS_DIR: &str = "/var/tmp/.instance-standin/path";
/// What the LVM shims record, one line a call.
pub const LVM_LOG: &str = "/var/tmp/.instance-standin/lvm.log";

/// The `systemctl` and `journalctl` of the sandbox: shims that play a
/// unit's behaviour from its state file (see the files).
const SYSTEMCTL: &str = include_str!("standin/systemctl.sh");
const JOURNALCTL: &str = include_str!("standin/journalctl.sh");

/// The shell a script runs under. SSM's `AWS-RunShellScript` runs the
/// commands with `sh`: dash on Debian and Ubuntu, bash (in POSIX mode) on
/// Amazon Linux and RHEL. The stand-in runs them with dash unless a test
/// asks for bash; the tests' own snippets (`Instance::sh`) use bash.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Shell {
    #[default]
    Dash,
    Bash,
}

impl Shell {
    pub fn program(self) -> &'static str {
        match self {
            Self::Dash => "dash",
            Self::Bash => "bash",
        }
    }
}

/// An EBS volume of the instance, as a real filesystem on a loop device.
#[derive(Clone, Debug)]
pub struct DataVolume {
    /// The EBS volume it stands for (its NVMe serial is this without the dash).
    pub volume_id: String,
    pub size_gib: u64,
    /// Where it is mounted inside the sandbox: a directory that exists on the
    /// host (`/srv`, or `/var`, whose tmp and log directories it then holds),
    /// since a mount point cannot be made without touching the host's own
    /// root filesystem.
    pub mount: &'static str,
    /// `xfs` or `ext4`.
    pub fstype: &'static str,
    /// The Xen name EC2's block-device mapping gives it (`xvdf`).
    pub xen_name: &'static str,
    /// What stands between the volume and the mount.
    pub layout: DiskLayout,
}

/// How a [`DataVolume`] is laid out, as the instance's `lsblk` describes it
/// (the stand-in answers `lsblk -J` as a Nitro host prints it: this disk is
/// `nvme1n1` with the volume's serial, the root `nvme0n1`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DiskLayout {
    /// The filesystem on the whole disk.
    #[default]
    Whole,
    /// For real: a GPT disk, partition 1 a small xfs decoy mounted at
    /// /mnt, the filesystem on partition 2 at the volume's mount
    /// (`partx -a` makes the partition nodes here without udev).
    Partitioned,
    /// A volume group on this disk alone, its logical volume `vg0-data`
    /// holding the filesystem. This kernel has no device-mapper: the
    /// filesystem is on the loop device, mounted through
    /// `/dev/mapper/vg0-data` (a node of the same device), and `pvresize`
    /// and `lvextend` are recording shims that answer as LVM 2.03 does
    /// (`lvextend -r` grows the filesystem, as its fsadm does).
    Lvm,
    /// `vg0-data` over this disk and a second one (`nvme2n1`): lsblk only.
    LvmOverTwo,
    /// An md RAID1 `md0` over this disk and a second one: lsblk only.
    RaidOverTwo,
}

impl DiskLayout {
    /// The second disk's serial, for the layouts over two.
    const SECOND: &'static str = "vol0ffffffffffffffff";

    /// `lsblk -J -o NAME,TYPE,SERIAL,MOUNTPOINT,FSTYPE,PTTYPE` of a Nitro
    /// host with this volume (the root disk's serial is not known here).
    fn lsblk(self, v: &DataVolume) -> String {
        let serial = v.volume_id.replacen('-', "", 1);
        let dev = |name: &str,
                   kind: &str,
                   serial: Option<&str>,
                   mnt: Option<&str>,
                   fs: Option<&str>,
                   pt: Option<&str>,
                   children: Vec<serde_json::Value>| {
            let mut d = json!({"name": name, "type": kind, "serial": serial, "mountpoint": mnt, "fstype": fs, "pttype": pt});
            if !children.is_empty() {
                d["children"] = json!(children);
            }
            d
        };
        let root = dev(
            "nvme0n1",
            "disk",
            None,
            None,
            None,
            Some("gpt"),
            vec![dev(
                "nvme0n1p1",
                "part",
                None,
                Some("/"),
                Some("xfs"),
                Some("gpt"),
                vec![],
            )],
        );
        let m = Some(v.mount);
        let fs = Some(v.fstype);
        // This disk and a second one, each holding the same `child`.
        let over_two = |member: &str, child: serde_json::Value| -> Vec<serde_json::Value> {
            [("nvme1n1", serial.as_str()), ("nvme2n1", Self::SECOND)]
                .iter()
                .map(|(n, s)| {
                    dev(
                        n,
                        "disk",
                        Some(s),
                        None,
                        Some(member),
                        None,
                        vec![child.clone()],
                    )
                })
                .collect()
        };
        let data = match self {
            Self::Whole => vec![dev("nvme1n1", "disk", Some(&serial), m, fs, None, vec![])],
            Self::Partitioned => vec![dev(
                "nvme1n1",
                "disk",
                Some(&serial),
                None,
                None,
                Some("gpt"),
                vec![
                    dev(
                        "nvme1n1p1",
                        "part",
                        None,
                        Some("/mnt"),
                        Some("xfs"),
                        Some("gpt"),
                        vec![],
                    ),
                    dev("nvme1n1p2", "part", None, m, fs, Some("gpt"), vec![]),
                ],
            )],
            Self::Lvm => vec![dev(
                "nvme1n1",
                "disk",
                Some(&serial),
                None,
                Some("LVM2_member"),
                None,
                vec![dev("vg0-data", "lvm", None, m, fs, None, vec![])],
            )],
            Self::LvmOverTwo => over_two(
                "LVM2_member",
                dev("vg0-data", "lvm", None, m, fs, None, vec![]),
            ),
            Self::RaidOverTwo => over_two(
                "linux_raid_member",
                dev("md0", "raid1", None, m, fs, None, vec![]),
            ),
        };
        let mut all = vec![root];
        all.extend(data);
        json!({ "blockdevices": all }).to_string()
    }

    /// The device node the filesystem is mounted from, in the sandbox.
    fn mounted_from(self, name: &str) -> String {
        match self {
            Self::Whole => format!("/dev/{name}"),
            Self::Partitioned => format!("/dev/{name}p2"),
            Self::Lvm | Self::LvmOverTwo => "/dev/mapper/vg0-data".into(),
            Self::RaidOverTwo => "/dev/md0".into(),
        }
    }
}

/// `lsblk` in a sandbox with a data volume: the layout form answers as the
/// host would (from the file the sandbox wrote), any other goes to the
/// real one (a device named, as the grow script asks).
const LSBLK_SHIM: &str = r#"#!/bin/sh
for a in "$@"; do
  if [ "$a" = -J ] && [ -s /var/tmp/.instance-standin/lsblk.json ]; then cat /var/tmp/.instance-standin/lsblk.json; echo; exit 0; fi
done
exec /usr/bin/lsblk "$@"
"#;

/// Where the stand-in's `systemd-tmpfiles --cat-config` reads the host's
/// configuration (Amazon Linux 2023's unless a test writes another).
pub const TMPFILES_CONF: &str = "/var/tmp/.instance-standin/tmpfiles.conf";

/// `systemd-tmpfiles`: `--cat-config` prints [`TMPFILES_CONF`].
const TMPFILES_SHIM: &str = r#"#!/bin/sh
[ "$1" = --cat-config ] || { echo "systemd-tmpfiles stand-in: only --cat-config" >&2; exit 1; }
cat /var/tmp/.instance-standin/tmpfiles.conf
"#;

/// LVM 2.03's `pvresize`, recording its arguments (no device-mapper here).
const PVRESIZE_SHIM: &str = r#"#!/bin/sh
echo "pvresize $*" >> /var/tmp/.instance-standin/lvm.log
pv=""; for a in "$@"; do case "$a" in -*) ;; *) pv=$a ;; esac; done
[ -b "$pv" ] || { echo "  Failed to find physical volume "$pv"." >&2; exit 5; }
echo "  Physical volume "$pv" changed"
echo "  1 physical volume(s) resized or updated / 0 physical volume(s) not resized"
"#;

/// LVM 2.03's `lvextend`, recording its arguments; `-r` grows the
/// filesystem as fsadm does.
const LVEXTEND_SHIM: &str = r#"#!/bin/sh
echo "lvextend $*" >> /var/tmp/.instance-standin/lvm.log
lv=""; resize=""
for a in "$@"; do case "$a" in -r|--resizefs) resize=1 ;; -*|+*) ;; *) lv=$a ;; esac; done
[ -b "$lv" ] || { echo "  Volume group for "$lv" not found" >&2; exit 5; }
name=${lv##*/}; vg=${name%%-*}; lvn=${name#*-}
echo "  Size of logical volume $vg/$lvn changed."
echo "  Logical volume $vg/$lvn successfully resized."
if [ -n "$resize" ]; then
  mnt=$(findmnt -nro TARGET --source "$lv" | head -n 1)
  case "$(findmnt -nro FSTYPE --source "$lv" | head -n 1)" in
    xfs) xfs_growfs -d "$mnt" >/dev/null || exit 5 ;;
    *) resize2fs "$lv" || exit 5 ;;
  esac
fi
"#;

/// The loop device behind a [`DataVolume`], and its backing file.
struct Loop {
    device: String,
    file: std::path::PathBuf,
    volume: DataVolume,
}

/// One instance's sandbox: a private mount namespace, held by a process.
pub struct Instance {
    holder: std::process::Child,
    /// The host's PID of the sandbox's PID 1 (unshare's child).
    init: u32,
    id: String,
    disk: Option<Loop>,
    /// What SSM's scripts run under ([`Instance::run`]).
    pub shell: Shell,
    /// The PATH scripts run with (without the hidden tools, if any).
    path: String,
}

/// `mkfs` on the loop device, or on its partitions (a GPT table written
/// with sfdisk, the partition nodes made by `partx -a`, as no udev does).
fn make_filesystems(device: &str, v: &DataVolume) -> Result<String> {
    let mkfs = |fstype: &str, dev: &str| match fstype {
        "xfs" => sh_host("mkfs.xfs", &["-q", dev]),
        other => sh_host(&format!("mkfs.{other}"), &["-q", "-F", dev]),
    };
    if v.layout != DiskLayout::Partitioned {
        return mkfs(v.fstype, device);
    }
    use std::io::Write;
    let mut sfdisk = std::process::Command::new("sfdisk")
        .args(["-q", device])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .context("sfdisk (Debian's fdisk; make test installs it)")?;
    // xfs wants at least 300 MiB: partition 1, the decoy, has 320.
    sfdisk
        .stdin
        .take()
        .context("sfdisk stdin")?
        .write_all(b"label: gpt\n,320MiB\n,\n")?;
    if !sfdisk.wait()?.success() {
        bail!("sfdisk could not partition {device}");
    }
    // A loop device used before may still carry its last user's partitions
    // (the kernel keeps them until told): drop them, then add this table's.
    let _ = sh_host("partx", &["-d", device]);
    if let Err(e) = sh_host("partx", &["-a", device]) {
        sh_host("partx", &["-u", device]).with_context(|| format!("after {e}"))?;
    }
    let p2 = format!("{device}p2");
    for _ in 0..50 {
        if std::path::Path::new(&p2).exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    mkfs("xfs", &format!("{device}p1"))?;
    mkfs(v.fstype, &format!("{device}p2"))
}

fn sh_host(cmd: &str, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new(cmd).args(args).output()?;
    if !out.status.success() {
        bail!("{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

impl Instance {
    /// Starts the sandbox and runs `seed` in it (files, held-open writers).
    pub fn start(seed: &str) -> Result<Self> {
        Self::start_with(seed, None)
    }

    /// With a data volume: a sparse backing file of its size, a loop device,
    /// `mkfs`, and inside the sandbox a private /dev (the standard character
    /// devices bound from the host, plus the loop device under its kernel
    /// name, its Xen name and its NVMe serial link in /dev/disk/by-id) and
    /// the filesystem mounted where the volume's mount point says.
    pub fn start_with(seed: &str, volume: Option<DataVolume>) -> Result<Self> {
        Self::start_hiding(seed, volume, &[])
    }

    /// [`Instance::start_with`] on a host without these tools: SSM's
    /// scripts run with a PATH where they are not (every other program of
    /// the standard directories is linked there).
    pub fn start_hiding(seed: &str, volume: Option<DataVolume>, hide: &[&str]) -> Result<Self> {
        use std::io::BufRead;
        let id = format!(
            "fr-instance-{}-{}",
            std::process::id(),
            crate::free_port().unwrap_or(0)
        );
        let disk = match volume {
            None => None,
            Some(v) => {
                let dir = std::env::temp_dir().join("first-responder-volumes");
                std::fs::create_dir_all(&dir)?;
                let file = dir.join(format!("{id}.img"));
                std::fs::File::create(&file)?.set_len(v.size_gib << 30)?;
                let path = file.display().to_string();
                let device = sh_host("losetup", &["-f", "--show", &path])?;
                let made = make_filesystems(&device, &v);
                if let Err(e) = made {
                    let _ = sh_host("losetup", &["-d", &device]);
                    let _ = std::fs::remove_file(&file);
                    return Err(e);
                }
                Some(Loop {
                    device,
                    file,
                    volume: v,
                })
            }
        };
        // /tmp, /var/tmp and /var/log are private tmpfs mounts, except that a
        // data volume mounted at /var holds /var/tmp and /var/log itself (a
        // /var alert then concerns them).
        let on_var = disk.as_ref().is_some_and(|l| l.volume.mount == "/var");
        let mut setup = String::new();
        if let Some(l) = disk.as_ref().filter(|_| on_var) {
            setup.push_str(&format!(
                "mount -o noatime {dev} /var\nmkdir -p /var/tmp /var/log\nchmod 1777 /var/tmp\n",
                dev = l.device
            ));
        }
        let private: &[&str] = if on_var {
            &["/tmp"]
        } else {
            &["/tmp", "/var/tmp", "/var/log"]
        };
        for d in private {
            let mode = if *d == "/var/log" { "0755" } else { "1777" };
            setup.push_str(&format!(
                "mount -t tmpfs -o mode={mode},size=128m,noatime \"$SANDBOX_ID\" {d}\n"
            ));
        }
        if let Some(l) = &disk {
            let name = l.device.trim_start_matches("/dev/");
            let serial = l.volume.volume_id.replacen('-', "", 1);
            setup.push_str(&format!(
                r#"mkdir /var/tmp/.dev && mount -t tmpfs -o mode=0755 "$SANDBOX_ID-dev" /var/tmp/.dev
for n in null zero random urandom tty full; do touch /var/tmp/.dev/$n; mount --bind /dev/$n /var/tmp/.dev/$n; done
read -r maj min < <(stat -c '%t %T' {dev}); maj=$((0x$maj)); min=$((0x$min))
mknod /var/tmp/.dev/{name} b $maj $min; mknod /var/tmp/.dev/{xen} b $maj $min
mkdir -p /var/tmp/.dev/disk/by-id; ln -s ../../{name} /var/tmp/.dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_{serial}
"#,
                dev = l.device,
                xen = l.volume.xen_name,
            ));
            // The nodes the layout's mount goes through.
            setup.push_str(match l.volume.layout {
                DiskLayout::Whole => "",
                DiskLayout::Partitioned => "for p in 1 2; do read -r pmaj pmin < <(stat -c '%t %T' \"${DISK}p$p\"); mknod \"/var/tmp/.dev/${DISK##*/}p$p\" b $((0x$pmaj)) $((0x$pmin)); done\n",
                DiskLayout::Lvm | DiskLayout::LvmOverTwo => "mkdir /var/tmp/.dev/mapper; mknod /var/tmp/.dev/mapper/vg0-data b $maj $min\n",
                DiskLayout::RaidOverTwo => "mknod /var/tmp/.dev/md0 b $maj $min\n",
            });
            setup.push_str("mount --move /var/tmp/.dev /dev\n");
            if !on_var {
                setup.push_str(&format!(
                    "mount -o noatime {from} {mnt}\n",
                    from = l.volume.layout.mounted_from(name),
                    mnt = l.volume.mount
                ));
            }
            if l.volume.layout == DiskLayout::Partitioned {
                setup.push_str(&format!("mount -o noatime /dev/{name}p1 /mnt\n"));
            }
        }
        let program = format!(
            r#"set -e
{setup}
mkdir -p {STANDIN_BIN} {UNIT_STATES}
printf '%s' "$SYSTEMCTL" > {STANDIN_BIN}/systemctl
printf '%s' "$JOURNALCTL" > {STANDIN_BIN}/journalctl
printf '%s' "$LSBLK_SHIM" > {STANDIN_BIN}/lsblk
printf '%s' "$PVRESIZE_SHIM" > {STANDIN_BIN}/pvresize
printf '%s' "$LVEXTEND_SHIM" > {STANDIN_BIN}/lvextend
chmod 0755 {STANDIN_BIN}/systemctl {STANDIN_BIN}/journalctl {STANDIN_BIN}/lsblk {STANDIN_BIN}/pvresize {STANDIN_BIN}/lvextend
if [ -n "$LSBLK_JSON" ]; then printf '%s' "$LSBLK_JSON" > /var/tmp/.instance-standin/lsblk.json; fi
# systemd-tmpfiles as Amazon Linux 2023 configures it (the cleanup's fixed
# PATH starts at /usr/local/sbin, the sandbox's own): a test may rewrite it.
mount -t tmpfs -o mode=0755 "$SANDBOX_ID-sbin" /usr/local/sbin
printf '%s' "$TMPFILES_SHIM" > /usr/local/sbin/systemd-tmpfiles
chmod 0755 /usr/local/sbin/systemd-tmpfiles
printf '%s\n' 'q /tmp 1777 root root 10d' 'q /var/tmp 1777 root root 30d' 'x /tmp/systemd-private-%b-*' 'x /var/tmp/systemd-private-%b-*' > {TMPFILES_CONF}
if [ -n "$HIDE" ]; then
  mkdir -p {TOOLS_DIR}
  for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
    for f in "$d"/*; do
      n=${{f##*/}}
      case " $HIDE " in *" $n "*) continue ;; esac
      [ -e "{TOOLS_DIR}/$n" ] || ln -s "$f" "{TOOLS_DIR}/$n"
    done
  done
fi
set +e
# The seed's files are the instance's, from its /var/tmp; its output (and
# that of the writers it leaves running) is not the holder's "ready" line.
cd /var/tmp && eval "$SEED" </dev/null >/dev/null 2>&1
cd /
echo ready
exec sleep 3600
"#
        );
        use std::os::unix::process::CommandExt;
        let mut holder = std::process::Command::new("unshare")
            // Its own process group, so that the writers the seed leaves
            // running end with it (see Drop), and no output stream of the
            // test is held open by them.
            .process_group(0)
            .args([
                "--mount",
                "--pid",
                "--fork",
                "--mount-proc",
                "--propagation",
                "private",
                "--",
                "bash",
                "-c",
            ])
            .arg(&program)
            .env("SANDBOX_ID", &id)
            .env("SEED", seed)
            .env("SYSTEMCTL", SYSTEMCTL)
            .env("JOURNALCTL", JOURNALCTL)
            .env("LSBLK_SHIM", LSBLK_SHIM)
            .env("TMPFILES_SHIM", TMPFILES_SHIM)
            .env("PVRESIZE_SHIM", PVRESIZE_SHIM)
            .env("LVEXTEND_SHIM", LVEXTEND_SHIM)
            .env(
                "LSBLK_JSON",
                disk.as_ref()
                    .map(|l| l.volume.layout.lsblk(&l.volume))
                    .unwrap_or_default(),
            )
            .env(
                "DISK",
                disk.as_ref().map(|l| l.device.as_str()).unwrap_or_default(),
            )
            .env("HIDE", hide.join(" "))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("starting an instance sandbox (root and util-linux's unshare are needed)")?;
        let out = holder.stdout.take().context("sandbox stdout")?;
        let mut line = String::new();
        std::io::BufReader::new(out).read_line(&mut line)?;
        let host = holder.id();
        let mut me = Self {
            holder,
            init: 0,
            id,
            disk,
            shell: Shell::default(),
            path: if hide.is_empty() {
                format!(
                    "{STANDIN_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
                )
            } else {
                format!("{STANDIN_BIN}:{TOOLS_DIR}")
            },
        };
        if line.trim() != "ready" {
            bail!("the instance sandbox did not start (needs root for mount namespaces)");
        }
        // unshare forked the namespace's PID 1; commands enter through it.
        me.init = std::fs::read_to_string(format!("/proc/{host}/task/{host}/children"))?
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .context("the instance sandbox's first process")?;
        Ok(me)
    }

    /// EBS grew the volume: the backing file grows and the loop device is
    /// told (`losetup -c`), as a real instance's kernel learns the new size.
    pub fn follow(&self, size_gib: u64) -> Result<bool> {
        let Some(l) = &self.disk else {
            return Ok(false);
        };
        let now = std::fs::metadata(&l.file)?.len();
        if size_gib << 30 <= now {
            return Ok(false);
        }
        std::fs::OpenOptions::new()
            .write(true)
            .open(&l.file)?
            .set_len(size_gib << 30)?;
        sh_host("losetup", &["-c", &l.device])?;
        Ok(true)
    }

    /// The loop device and its backing file, for a process that may be
    /// killed before it can detach them itself (the demo cleans up after it).
    pub fn loop_device(&self) -> Option<(String, std::path::PathBuf)> {
        self.disk
            .as_ref()
            .map(|l| (l.device.clone(), l.file.clone()))
    }

    /// The process holding the sandbox; its process group is the sandbox's.
    pub fn holder_pid(&self) -> u32 {
        self.holder.id()
    }

    /// The EBS volume this instance's data disk stands for.
    pub fn volume_id(&self) -> Option<&str> {
        self.disk.as_ref().map(|l| l.volume.volume_id.as_str())
    }

    /// Runs a script (SSM's `commands`, one per line) as SSM would, with
    /// the instance's shell, inside the sandbox. (exit, out, err)
    pub async fn run(&self, script: &str, timeout: Duration) -> (i32, String, String) {
        self.run_in(self.shell, script, timeout).await
    }

    /// Runs a script with `shell` inside the sandbox, after checking that
    /// it is still the sandbox. (exit, out, err)
    pub async fn run_in(
        &self,
        shell: Shell,
        script: &str,
        timeout: Duration,
    ) -> (i32, String, String) {
        // Each path must be on the sandbox's own filesystem: its tmpfs, or
        // the data volume's loop device where that holds it.
        let expected = |d: &str| match &self.disk {
            Some(l) if l.volume.mount == "/var" && d != "/tmp" => l.device.clone(),
            _ => self.id.clone(),
        };
        let mut checks = String::new();
        for d in ["/tmp", "/var/tmp", "/var/log"] {
            checks.push_str(&format!(
                "src=$(findmnt -n -o SOURCE --target {d} | tail -n 1); [ \"$src\" = \"{want}\" ] || {{ echo \"instance stand-in: {d} is not on the sandbox's own filesystem (found '$src'): refusing to run\" >&2; exit {REFUSED}; }}\n",
                want = expected(d)
            ));
        }
        if let Some(l) = &self.disk {
            checks.push_str(&format!(
                "[ \"$(findmnt -n -o SOURCE --mountpoint /dev | tail -n 1)\" = \"{id}-dev\" ] && [ \"$(findmnt -n -o SOURCE --mountpoint {mnt} | tail -n 1)\" = \"{dev}\" ] || {{ echo \"instance stand-in: /dev or {mnt} is not the sandbox's own: refusing to run\" >&2; exit {REFUSED}; }}\n",
                id = self.id,
                mnt = l.volume.mount,
                dev = if l.volume.mount == "/var" {
                    l.device.clone()
                } else {
                    l.volume
                        .layout
                        .mounted_from(l.device.trim_start_matches("/dev/"))
                }
            ));
        }
        let check = format!(
            r#"[ "$(readlink /proc/self/ns/mnt)" != "$HOST_NS" ] || {{ echo "instance stand-in: in the host's mount namespace: refusing to run" >&2; exit {REFUSED}; }}
{checks}cd / && PATH={path} exec {shell} -c "$SCRIPT""#,
            path = self.path,
            shell = shell.program()
        );
        let host_ns = std::fs::read_link("/proc/self/ns/mnt")
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let run = tokio::process::Command::new("nsenter")
            .args(["-t", &self.init.to_string(), "-m", "-p", "--", "bash", "-c"])
            .arg(&check)
            .env("SCRIPT", script)
            .env("HOST_NS", host_ns)
            .kill_on_drop(true)
            .output();
        match tokio::time::timeout(timeout, run).await {
            Ok(Ok(o)) => (
                o.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            ),
            Ok(Err(e)) => (-1, String::new(), format!("nsenter: {e}")),
            Err(_) => (124, String::new(), "timed out".into()),
        }
    }

    /// Runs a shell snippet in the sandbox for the test (seeding, reading).
    pub async fn sh(&self, script: &str) -> Result<String> {
        let (code, out, err) = self
            .run_in(Shell::Bash, script, Duration::from_secs(60))
            .await;
        if code != 0 {
            bail!("in the sandbox, exit {code}: {err}");
        }
        Ok(out)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // The whole group: the holder and whatever the seed left running.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.holder.id())])
            .status();
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        if let Some(l) = &self.disk {
            // The namespace (and its mount) goes with the holder; then the
            // loop device is free to detach.
            if l.volume.layout == DiskLayout::Partitioned {
                let _ = sh_host("partx", &["-d", &l.device]);
            }
            for _ in 0..20 {
                if sh_host("losetup", &["-d", &l.device]).is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = std::fs::remove_file(&l.file);
        }
    }
}

#[derive(Default)]
struct Invocation {
    polls: u32,
    /// (exit code, stdout, stderr) once it ended.
    result: Option<(i32, String, String)>,
}

#[derive(Default)]
struct State {
    instances: HashMap<String, Arc<Instance>>,
    invocations: HashMap<(String, String), Invocation>,
    /// What an instance without a sandbox prints for a command whose
    /// comment is `first-responder WHAT for …`, by (instance, WHAT).
    answers: HashMap<(String, String), String>,
    /// Change calendars by name: (state, next transition).
    calendars: HashMap<String, (String, Option<String>)>,
}

/// The SSM endpoint the SDK is pointed at; moto behind it.
pub struct SsmStandIn {
    pub endpoint: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

/// Before a command runs on an instance with a data volume, the volume's
/// size in the emulator is read and the loop device grown to it.
async fn follow_ebs(ec2: &aws_sdk_ec2::Client, sandbox: &Instance) {
    let Some(vol) = sandbox.volume_id() else {
        return;
    };
    if let Ok(out) = ec2.describe_volumes().volume_ids(vol).send().await
        && let Some(size) = out.volumes().first().and_then(|v| v.size())
    {
        let _ = sandbox.follow(u64::try_from(size).unwrap_or(0));
    }
}

impl Drop for SsmStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Body = Full<Bytes>;

fn cut(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

impl SsmStandIn {
    pub async fn start(moto: &str) -> Result<Self> {
        let ec2 = aws_sdk_ec2::Client::new(&crate::sdk_config(moto).await);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(Mutex::new(State::default()));
        let upstream = moto.trim_end_matches('/').to_owned();
        let client: Client<HttpConnector, Body> =
            Client::builder(TokioExecutor::new()).build_http();
        let st = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (st, up, client, ec2) =
                    (st.clone(), upstream.clone(), client.clone(), ec2.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let (st, up, client, ec2) =
                            (st.clone(), up.clone(), client.clone(), ec2.clone());
                        async move { handle(req, &st, &up, &client, &ec2).await }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(Self {
            endpoint,
            state,
            task,
        })
    }

    /// Gives an instance a sandbox: its commands run there from now on.
    pub fn add(&self, instance_id: &str, sandbox: Instance) -> Arc<Instance> {
        let sandbox = Arc::new(sandbox);
        if let Ok(mut s) = self.state.lock() {
            s.instances.insert(instance_id.to_owned(), sandbox.clone());
        }
        sandbox
    }

    /// What an instance without a sandbox prints for the command whose
    /// comment is `first-responder WHAT for …` (moto prints nothing): the
    /// disk preflight of the fleet's instance, as such a host prints it.
    pub fn answer(&self, instance_id: &str, what: &str, output: &str) {
        if let Ok(mut s) = self.state.lock() {
            s.answers
                .insert((instance_id.to_owned(), what.to_owned()), output.to_owned());
        }
    }

    /// A change calendar (an SSM document of type ChangeCalendar) and its
    /// state for `GetCalendarState`, which moto lacks.
    pub fn set_calendar(&self, name: &str, state: &str, next_transition: Option<&str>) {
        if let Ok(mut s) = self.state.lock() {
            s.calendars.insert(
                name.to_owned(),
                (state.to_owned(), next_transition.map(str::to_owned)),
            );
        }
    }

    /// An SSM client of `sdk`'s configuration, pointed here.
    pub fn client(&self, sdk: &aws_config::SdkConfig) -> aws_sdk_ssm::Client {
        // The responder's own name in the user agent, as its clients carry
        // it: the IAM proof counts these calls as the product's.
        let sdk = first_responder::aws::ours(sdk, first_responder::aws::APP_NAME);
        aws_sdk_ssm::Client::from_conf(
            aws_sdk_ssm::config::Builder::from(&sdk)
                .endpoint_url(&self.endpoint)
                .build(),
        )
    }
}

/// `GetCalendarState` as the API reference describes it (moto lacks it):
/// each of `CalendarNames` a name or a document ARN; an unknown one is
/// `InvalidDocument`; the state is OPEN only when every calendar is open;
/// `AtTime` is echoed (else now); `NextTransitionTime` is the earliest of
/// the calendars' next transitions. Calendars are set by the test, not
/// evaluated from iCalendar content.
fn calendar_state(state: &Arc<Mutex<State>>, input: &Value) -> Response<Body> {
    let Some(names) = input["CalendarNames"].as_array() else {
        return reply(
            400,
            json!({"__type": "ValidationException", "message": "CalendarNames is required"}),
        );
    };
    let Ok(s) = state.lock() else {
        return reply(
            500,
            json!({"__type": "InternalServerError", "message": "lock"}),
        );
    };
    let mut closed = false;
    let mut next: Option<String> = None;
    for n in names.iter().filter_map(Value::as_str) {
        let name = n.rsplit_once("document/").map_or(n, |(_, name)| name);
        let Some((st, nx)) = s.calendars.get(name) else {
            return reply(
                400,
                json!({"__type": "InvalidDocument", "message": format!("Document {name} does not exist")}),
            );
        };
        closed |= st == "CLOSED";
        if let Some(nx) = nx
            && next.as_ref().is_none_or(|x| nx < x)
        {
            next = Some(nx.clone());
        }
    }
    let at = input["AtTime"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| chrono::Utc::now().to_rfc3339());
    let mut out = json!({"State": if closed { "CLOSED" } else { "OPEN" }, "AtTime": at});
    if let Some(nx) = next {
        out["NextTransitionTime"] = json!(nx);
    }
    reply(200, out)
}

fn reply(status: u16, body: Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    r.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    r
}

async fn forward(
    parts: &hyper::http::request::Parts,
    body: Bytes,
    upstream: &str,
    client: &Client<HttpConnector, Body>,
) -> Result<(u16, hyper::HeaderMap, Bytes)> {
    let uri: hyper::Uri = format!(
        "{upstream}{}",
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    )
    .parse()?;
    let mut req = Request::builder().method(parts.method.clone()).uri(uri);
    for (k, v) in &parts.headers {
        if k != hyper::header::HOST {
            req = req.header(k, v);
        }
    }
    let resp = client.request(req.body(Full::new(body))?).await?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await?.to_bytes();
    Ok((status, headers, bytes))
}

async fn handle(
    req: Request<Incoming>,
    state: &Arc<Mutex<State>>,
    upstream: &str,
    client: &Client<HttpConnector, Body>,
    ec2: &aws_sdk_ec2::Client,
) -> Result<Response<Body>, std::convert::Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let input: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if target.ends_with(".GetCalendarState") {
        // moto answers it with an error, but records the call, so the IAM
        // proof evaluates it like every other (tests/iam).
        let _ = forward(&parts, body, upstream, client).await;
        return Ok(calendar_state(state, &input));
    }
    if target.ends_with(".GetCommandInvocation") {
        let key = (
            input["CommandId"].as_str().unwrap_or_default().to_owned(),
            input["InstanceId"].as_str().unwrap_or_default().to_owned(),
        );
        let answer = state.lock().ok().and_then(|mut s| {
            let inv = s.invocations.get_mut(&key)?;
            inv.polls += 1;
            Some(match (&inv.result, inv.polls) {
                // Right after SendCommand SSM does not know the invocation yet.
                (_, 1) => reply(
                    400,
                    json!({"__type": "InvocationDoesNotExist", "message": "invocation not registered yet"}),
                ),
                (None, _) => reply(
                    200,
                    json!({"CommandId": key.0, "InstanceId": key.1, "Status": "InProgress",
                           "StatusDetails": "InProgress", "ResponseCode": -1,
                           "StandardOutputContent": "", "StandardErrorContent": ""}),
                ),
                (Some((code, out, err)), _) => {
                    let status = if *code == 0 { "Success" } else { "Failed" };
                    reply(
                        200,
                        json!({"CommandId": key.0, "InstanceId": key.1, "Status": status,
                               "StatusDetails": status, "ResponseCode": code,
                               "PluginName": "aws:runShellScript", "DocumentName": "AWS-RunShellScript",
                               "StandardOutputContent": cut(out, STDOUT_LIMIT),
                               "StandardErrorContent": cut(err, STDERR_LIMIT)}),
                    )
                }
            })
        });
        if let Some(a) = answer {
            return Ok(a);
        }
    }
    let forwarded = forward(&parts, body, upstream, client).await;
    let (status, headers, bytes) = match forwarded {
        Ok(f) => f,
        Err(e) => {
            return Ok(reply(
                500,
                json!({"__type": "InternalServerError", "message": e.to_string()}),
            ));
        }
    };
    if target.ends_with(".SendCommand") && status == 200 {
        let out: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let command_id = out["Command"]["CommandId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let script = input["Parameters"]["commands"]
            .as_array()
            .map(|c| {
                c.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default();
        let timeout = input["Parameters"]["executionTimeout"][0]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or(3600);
        for id in input["InstanceIds"].as_array().into_iter().flatten() {
            let id = id.as_str().unwrap_or_default().to_owned();
            let sandbox = state
                .lock()
                .ok()
                .and_then(|s| s.instances.get(&id).cloned());
            let what = input["Comment"]
                .as_str()
                .and_then(|c| c.strip_prefix("first-responder "))
                .and_then(|c| c.split(" for ").next())
                .unwrap_or_default()
                .to_owned();
            let Some(sandbox) = sandbox else {
                if let Ok(mut s) = state.lock()
                    && let Some(out) = s.answers.get(&(id.clone(), what)).cloned()
                {
                    s.invocations.insert(
                        (command_id.clone(), id),
                        Invocation {
                            polls: 0,
                            result: Some((0, out, String::new())),
                        },
                    );
                }
                continue;
            };
            let key = (command_id.clone(), id);
            if let Ok(mut s) = state.lock() {
                s.invocations.insert(key.clone(), Invocation::default());
            }
            let (state, script, ec2) = (state.clone(), script.clone(), ec2.clone());
            tokio::spawn(async move {
                follow_ebs(&ec2, &sandbox).await;
                let result = sandbox.run(&script, Duration::from_secs(timeout)).await;
                if let Ok(mut s) = state.lock()
                    && let Some(inv) = s.invocations.get_mut(&key)
                {
                    inv.result = Some(result);
                }
            });
        }
    }
    let mut r = Response::new(Full::new(bytes));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    *r.headers_mut() = headers;
    Ok(r)
}
