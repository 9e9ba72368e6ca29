//! The disk-full decisions that need no AWS call: which filesystem the alert
//! is about, which EBS volume is behind it, its new size, and reading what
//! the instance answered (lsblk, df, the scripts' `key=value` lines).

use serde::Deserialize;
use std::collections::BTreeMap;

use crate::ids::VolumeId;
use crate::observed::AttachedVolume;
pub use crate::observed::BlockDev;

mod layout;
pub use layout::{GrowPath, Layout, LvName, grow_path, package_of, parse_layout, partition_number};

/// The filesystem an alert is about, from the CloudWatch agent's dimensions
/// (`path`, `device`, `fstype`) or node-exporter's labels (`mountpoint`,
/// `device`, `fstype`). Event text: compared in Rust, never put in a command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiskTarget {
    pub mount: Option<String>,
    pub device: Option<String>,
    pub fstype: Option<String>,
}

impl DiskTarget {
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Self {
        let get = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| labels.get(*k))
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty() && v.len() <= 256 && !v.chars().any(char::is_control))
        };
        Self {
            mount: get(&["path", "mountpoint"]),
            device: get(&["device"]),
            fstype: get(&["fstype"]),
        }
    }

    pub fn describe(&self) -> String {
        match (&self.mount, &self.device) {
            (Some(m), Some(d)) => format!("{m} ({d})"),
            (Some(m), None) => m.clone(),
            (None, Some(d)) => d.clone(),
            (None, None) => "an unnamed filesystem".into(),
        }
    }
}

/// Filesystems whose growth is automated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filesystem {
    Ext,
    Xfs,
}

impl Filesystem {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ext2" | "ext3" | "ext4" => Some(Self::Ext),
            "xfs" => Some(Self::Xfs),
            _ => None,
        }
    }
}

pub fn parse_lsblk(json: &str) -> Result<Vec<BlockDev>, String> {
    #[derive(Deserialize)]
    struct Out {
        blockdevices: Vec<BlockDev>,
    }
    serde_json::from_str::<Out>(json)
        .map(|o| o.blockdevices)
        .map_err(|e| format!("lsblk output is not what was expected: {e}"))
}

/// The volume behind the alert's filesystem, and how it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub volume: VolumeId,
    /// The Xen device letters (`f` of /dev/sdf, /dev/xvdf) when known.
    pub xen_letters: Option<String>,
    pub how: String,
    pub fstype: Option<String>,
    pub pttype: Option<String>,
    /// Whether the filesystem sits on a partition (else on the whole disk).
    pub partitioned: Option<bool>,
    /// Why the filesystem cannot be grown by growing this volume (LVM, RAID,
    /// encryption, a loop file: the layout between the disk and the mount),
    /// with the advice for that layout; None when it can.
    pub cannot_grow: Option<String>,
    /// What the grow script grows, when the instance's layout was read and
    /// growing this volume can finish it.
    pub grow: Option<GrowPath>,
}

/// Device names as the kernel shows them: `nvme1n1p2`, `xvdf1`, `sdf`.
enum DeviceName {
    Nvme,
    Xen(String),
}

fn device_name(d: &str) -> Option<DeviceName> {
    let base = d.strip_prefix("/dev/").unwrap_or(d);
    if let Some(rest) = base.strip_prefix("nvme") {
        return rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric())
            .then_some(DeviceName::Nvme);
    }
    let rest = base
        .strip_prefix("xvd")
        .or_else(|| base.strip_prefix("sd"))?;
    let letters: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
    let tail = &rest[letters.len()..];
    ((1..=2).contains(&letters.len()) && tail.bytes().all(|b| b.is_ascii_digit()))
        .then_some(DeviceName::Xen(letters))
}

/// The letters of a block-device mapping name (`/dev/sdf` → `f`, `/dev/xvda1` → `a`).
fn mapping_letters(device: &str) -> Option<String> {
    match device_name(device)? {
        DeviceName::Xen(l) => Some(l),
        DeviceName::Nvme => None,
    }
}

fn by_letters<'a>(volumes: &'a [AttachedVolume], letters: &str) -> Option<&'a AttachedVolume> {
    volumes
        .iter()
        .find(|v| v.device.as_deref().and_then(mapping_letters).as_deref() == Some(letters))
}

/// The volume under the alerted filesystem, read from the instance's block
/// devices: None when no disk holds it.
fn from_layout(
    target: &DiskTarget,
    volumes: &[AttachedVolume],
    disks: &[BlockDev],
) -> Option<Result<Resolved, String>> {
    let wanted = |d: &BlockDev| {
        let mounted = target.mount.is_some() && d.mountpoint == target.mount;
        let named = target.mount.is_none()
            && target
                .device
                .as_deref()
                .is_some_and(|x| x.strip_prefix("/dev/").unwrap_or(x) == d.name);
        mounted || named
    };
    for disk in disks {
        let Some(path) = path_to(disk, &wanted) else {
            continue;
        };
        let Some(fs) = path.last() else { continue };
        return Some(on_disk(target, volumes, disk, fs).map(|mut r| {
            r.grow = grow_path(&path, disks);
            if r.grow.is_none() {
                r.cannot_grow = Some(cannot_grow(target, &path, disks));
            }
            r
        }));
    }
    None
}

/// The devices from `disk` down to the first one `wanted` picks.
fn path_to<'a>(
    disk: &'a BlockDev,
    wanted: &impl Fn(&BlockDev) -> bool,
) -> Option<Vec<&'a BlockDev>> {
    if wanted(disk) {
        return Some(vec![disk]);
    }
    disk.children.iter().find_map(|c| {
        let mut rest = path_to(c, wanted)?;
        rest.insert(0, disk);
        Some(rest)
    })
}

/// Why a layout [`grow_path`] refused cannot be grown by growing this
/// volume: a filesystem on the disk, on one partition, or on a logical
/// volume whose group has this one physical volume grows with it; anything
/// else between (a RAID set, an encrypted mapping, a loop file, a volume
/// group over several physical volumes) needs steps of its own, and growing
/// one member helps nothing. Refused, with what a person would do instead.
fn cannot_grow(target: &DiskTarget, path: &[&BlockDev], disks: &[BlockDev]) -> String {
    let kinds: Vec<&str> = path
        .iter()
        .map(|d| d.kind.as_deref().unwrap_or("unknown"))
        .collect();
    let layout = path
        .iter()
        .zip(&kinds)
        .map(|(d, k)| format!("{} ({k})", d.name))
        .collect::<Vec<_>>()
        .join(" -> ");
    let fs = path.last().map(|d| d.name.as_str()).unwrap_or("?");
    // Every disk that holds a device of the same name: a logical volume or
    // a RAID set over several disks appears under each of them.
    let holders = disks
        .iter()
        .filter(|d| path_to(d, &|x: &BlockDev| x.name == fs).is_some())
        .count();
    let advice = if kinds.iter().any(|k| k.starts_with("raid")) {
        "grow every member volume of the RAID set, then `mdadm --grow` and the filesystem"
    } else if kinds.contains(&"crypt") {
        "grow the volume and partition, then `cryptsetup resize` and the filesystem"
    } else if kinds.contains(&"lvm") {
        "the volume group has more than one physical volume: add a volume with `vgextend`, or grow each and `pvresize` them, then `lvextend -r`"
    } else if kinds.contains(&"loop") {
        "it is a loop-mounted file: grow the file and the filesystem in it"
    } else {
        "grow it by hand"
    };
    format!(
        "cannot grow {}: {layout}{}; {advice}",
        target.describe(),
        if holders > 1 {
            format!(", over {holders} disks")
        } else {
            String::new()
        }
    )
}

/// The volume behind `disk`, which holds the filesystem `fs`: by its NVMe
/// serial, else by its Xen name in the block-device mapping.
fn on_disk(
    target: &DiskTarget,
    volumes: &[AttachedVolume],
    disk: &BlockDev,
    fs: &BlockDev,
) -> Result<Resolved, String> {
    let partitioned = Some(fs.name != disk.name);
    if let Some(serial) = disk.serial.as_deref().and_then(|s| s.strip_prefix("vol")) {
        let id = format!("vol-{serial}");
        let v = volumes
            .iter()
            .find(|v| v.id.as_str() == id)
            .ok_or_else(|| {
                format!(
                    "{} has serial vol{serial}, but {id} is not attached to this instance",
                    disk.name
                )
            })?;
        return Ok(Resolved {
            volume: v.id.clone(),
            xen_letters: None,
            how: format!(
                "{} is on NVMe disk {} whose serial is vol{serial}",
                target.describe(),
                disk.name
            ),
            fstype: fs.fstype.clone(),
            pttype: disk.pttype.clone(),
            partitioned,
            cannot_grow: None,
            grow: None,
        });
    }
    if let Some(DeviceName::Xen(l)) = device_name(&disk.name)
        && let Some(v) = by_letters(volumes, &l)
    {
        return Ok(Resolved {
            volume: v.id.clone(),
            xen_letters: Some(l),
            how: format!(
                "{} is on disk {}, block-device mapping {}",
                target.describe(),
                disk.name,
                v.device.as_deref().unwrap_or("?")
            ),
            fstype: fs.fstype.clone(),
            pttype: disk.pttype.clone(),
            partitioned,
            cannot_grow: None,
            grow: None,
        });
    }
    Err(format!(
        "{} is on disk {}, which is neither an EBS NVMe device nor in the block-device mapping (instance store?)",
        target.describe(),
        disk.name
    ))
}

/// Traces the alert's filesystem to an attached EBS volume.
///
/// 1. With the instance's `lsblk` output: the device mounted at the alert's
///    mount point (or named by its device), up to its disk; a Nitro NVMe
///    disk's serial is the volume id without its dash (`vol0abc…`); a Xen
///    disk's name gives the block-device mapping letters.
/// 2. Without it: a Xen device name in the alert (`xvdf1`) is matched to the
///    mapping (`/dev/sdf` and `/dev/xvdf` are the same device); the root
///    mount `/` to the instance's root device. NVMe names are numbered in
///    the order devices appear, so they are never matched by name.
pub fn resolve_volume(
    target: &DiskTarget,
    volumes: &[AttachedVolume],
    root_device: Option<&str>,
    layout: Option<&Result<Vec<BlockDev>, String>>,
) -> Result<Resolved, String> {
    if let Some(Ok(disks)) = layout
        && let Some(found) = from_layout(target, volumes, disks)
    {
        return found;
    }
    let seen = match layout {
        Some(Err(why)) => format!(" (the instance's block devices could not be read: {why})"),
        Some(Ok(_)) => " (lsblk on the instance shows no such mount)".to_owned(),
        None => String::new(),
    };
    match target.device.as_deref().and_then(device_name) {
        Some(DeviceName::Xen(l)) => {
            return by_letters(volumes, &l)
                .map(|v| Resolved {
                    volume: v.id.clone(),
                    xen_letters: Some(l.clone()),
                    how: format!(
                        "device {} is block-device mapping {}",
                        target.device.as_deref().unwrap_or("?"),
                        v.device.as_deref().unwrap_or("?")
                    ),
                    fstype: target.fstype.clone(),
                    pttype: None,
                    partitioned: None,
                    cannot_grow: None,
                    grow: None,
                })
                .ok_or_else(|| {
                    format!("no attached EBS volume is mapped as /dev/sd{l} or /dev/xvd{l}{seen}")
                });
        }
        Some(DeviceName::Nvme) => {
            return Err(format!(
                "{} is an NVMe device: its volume is known only from the device's serial on the instance{seen}",
                target.describe()
            ));
        }
        None => {}
    }
    if target.mount.as_deref() == Some("/")
        && let Some(root) = root_device
        && let Some(v) = volumes.iter().find(|v| v.device.as_deref() == Some(root))
    {
        return Ok(Resolved {
            volume: v.id.clone(),
            xen_letters: mapping_letters(root),
            how: format!("/ is on the root device {root}"),
            fstype: target.fstype.clone(),
            pttype: None,
            partitioned: None,
            cannot_grow: None,
            grow: None,
        });
    }
    Err(format!(
        "cannot tell which EBS volume holds {}{seen}",
        target.describe()
    ))
}

/// The size to grow to: +`percent`, at least +`min_gib`, at most `max_gib`
/// (and 2 TiB on an MBR partition table). Err when it cannot grow.
/// The size (GiB) at which a volume `from` GiB, `usage`% full and growing
/// `percent_per_hour` points of it an hour, would reach `at_percent` only
/// after `days` more days. None when it is not growing.
pub fn growth_size(
    from: i32,
    usage: f64,
    percent_per_hour: f64,
    days: u32,
    at_percent: f64,
) -> Option<i32> {
    if percent_per_hour <= 0.0 || !(1.0..=100.0).contains(&at_percent) {
        return None;
    }
    let used = f64::from(from) * usage / 100.0;
    let growth = f64::from(from) * percent_per_hour / 100.0 * 24.0 * f64::from(days);
    let want = ((used + growth) / (at_percent / 100.0)).ceil();
    (want.is_finite() && want < f64::from(i32::MAX)).then_some(want as i32)
}

pub fn new_size(
    from: i32,
    percent: u32,
    min_gib: i32,
    max_gib: i32,
    mbr: bool,
) -> Result<i32, String> {
    let cap = if mbr { max_gib.min(2048) } else { max_gib };
    if from >= cap {
        return Err(if mbr && from >= 2048 {
            format!(
                "the volume is {from} GiB and its MBR partition table cannot address more than 2048 GiB"
            )
        } else {
            format!(
                "the volume is {from} GiB, at or above the maximum of {max_gib} GiB (disk_full.max_volume_gib)"
            )
        });
    }
    let pct = i64::from(from) * (100 + i64::from(percent)) / 100
        + i64::from((i64::from(from) * i64::from(percent)) % 100 != 0);
    let want = pct.max(i64::from(from) + i64::from(min_gib));
    Ok(i32::try_from(want.min(i64::from(cap))).unwrap_or(cap))
}

/// The use% of the filesystem mounted at `mount` in `df -P` output.
pub fn df_usage(output: &str, mount: &str) -> Option<f64> {
    output.lines().find_map(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        match cols.as_slice() {
            [_, _, _, _, pct, m] if *m == mount => pct.trim_end_matches('%').parse().ok(),
            _ => None,
        }
    })
}

/// The value of a `key=value` line a script printed.
pub fn marker<'a>(output: &'a str, key: &str) -> Option<&'a str> {
    output
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(str::trim)
}

/// Bytes for people: 1.5 GiB, 12.0 MiB, 512 B.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// The mount point holding `dir`: the longest mount point (of the
/// instance's block devices, as `lsblk` reported them) that contains it,
/// `/` when none does. Without the instance's report, the longest of `/`
/// and the alerted mount point, and says it assumed so.
pub fn mount_of(dir: &str, layout: Option<&[BlockDev]>, alerted: &str) -> (String, bool) {
    fn mounts<'a>(devs: &'a [BlockDev], out: &mut Vec<&'a str>) {
        for d in devs {
            if let Some(m) = d.mountpoint.as_deref() {
                out.push(m);
            }
            mounts(&d.children, out);
        }
    }
    let mut all = Vec::new();
    let assumed = match layout {
        Some(devs) => {
            mounts(devs, &mut all);
            false
        }
        // Without the instance's report, the mounts known are / and the one
        // that alerted (it exists, or it would not have alerted).
        None => {
            all.extend(["/", alerted]);
            true
        }
    };
    let best = all
        .into_iter()
        .filter(|m| {
            *m == "/"
                || dir == *m
                || dir
                    .strip_prefix(*m)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
        .max_by_key(|m| m.len())
        .unwrap_or("/");
    (best.to_owned(), assumed)
}

/// Whether cleaning `dirs` can free space on the filesystem mounted at
/// `alerted`: Ok(()) when one of them lives on it, Err(why) otherwise.
pub fn frees_space_on(
    dirs: &[&str],
    alerted: &str,
    layout: Option<&[BlockDev]>,
) -> Result<(), String> {
    let mut on = Vec::new();
    for d in dirs {
        let (m, assumed) = mount_of(d, layout, alerted);
        if m == alerted {
            return Ok(());
        }
        on.push(format!(
            "{d} is on {m}{}",
            if assumed {
                " (assumed: the instance reported no block devices)"
            } else {
                ""
            }
        ));
    }
    Err(format!(
        "{}, not on {alerted}: cleaning there frees nothing on the full filesystem",
        on.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vol(id: &str, dev: &str) -> AttachedVolume {
        AttachedVolume {
            id: VolumeId::parse("t", id).unwrap(),
            device: Some(dev.into()),
            size_gib: Some(100),
            volume_type: Some("gp3".into()),
            tags: BTreeMap::new(),
        }
    }

    fn volumes() -> Vec<AttachedVolume> {
        vec![
            vol("vol-0000000000000000a", "/dev/xvda"),
            vol("vol-0000000000000000b", "/dev/sdf"),
        ]
    }

    fn target(mount: &str, device: &str, fstype: &str) -> DiskTarget {
        DiskTarget {
            mount: Some(mount.into()),
            device: Some(device.into()),
            fstype: Some(fstype.into()),
        }
    }

    // `lsblk -J -o NAME,TYPE,SERIAL,MOUNTPOINT,FSTYPE,PTTYPE` on a Nitro instance.
    const NITRO: &str = r#"{"blockdevices": [
      {"name":"nvme0n1", "type":"disk", "serial":"vol0000000000000000a", "mountpoint":null, "fstype":null, "pttype":"gpt",
        "children": [
          {"name":"nvme0n1p1", "type":"part", "serial":null, "mountpoint":"/", "fstype":"xfs", "pttype":"gpt"},
          {"name":"nvme0n1p128", "type":"part", "serial":null, "mountpoint":"/boot/efi", "fstype":"vfat", "pttype":"gpt"}
        ]},
      {"name":"nvme1n1", "type":"disk", "serial":"vol0000000000000000b", "mountpoint":"/data", "fstype":"ext4", "pttype":null}
    ]}"#;

    #[test]
    fn nvme_devices_are_traced_through_their_serial() {
        let layout = Some(parse_lsblk(NITRO));
        let r = resolve_volume(
            &target("/data", "nvme1n1", "ext4"),
            &volumes(),
            None,
            layout.as_ref(),
        )
        .unwrap();
        assert_eq!(r.volume.as_str(), "vol-0000000000000000b");
        assert_eq!(
            r.how,
            "/data (nvme1n1) is on NVMe disk nvme1n1 whose serial is vol0000000000000000b"
        );
        assert_eq!(
            (r.fstype.as_deref(), r.partitioned),
            (Some("ext4"), Some(false))
        );
        let r = resolve_volume(
            &target("/", "nvme0n1p1", "xfs"),
            &volumes(),
            None,
            layout.as_ref(),
        )
        .unwrap();
        assert_eq!(r.volume.as_str(), "vol-0000000000000000a");
        assert_eq!(
            (r.pttype.as_deref(), r.partitioned),
            (Some("gpt"), Some(true))
        );
        // NVMe numbering is never trusted without the serial.
        let e = resolve_volume(&target("/data", "nvme1n1", "ext4"), &volumes(), None, None)
            .unwrap_err();
        assert!(e.contains("known only from the device's serial"), "{e}");
        let e = resolve_volume(
            &target("/data", "nvme1n1", "ext4"),
            &volumes(),
            None,
            Some(&Err("SSM: not managed".into())),
        )
        .unwrap_err();
        assert!(e.contains("could not be read: SSM: not managed"), "{e}");
        let e = resolve_volume(
            &target("/srv", "nvme2n1", "ext4"),
            &volumes(),
            None,
            layout.as_ref(),
        )
        .unwrap_err();
        assert!(
            e.contains("lsblk on the instance shows no such mount"),
            "{e}"
        );
    }

    #[test]
    fn xen_names_map_to_the_block_device_mapping() {
        for dev in ["xvdf", "xvdf1", "/dev/sdf", "sdf2"] {
            let r = resolve_volume(&target("/data", dev, "ext4"), &volumes(), None, None).unwrap();
            assert_eq!(r.volume.as_str(), "vol-0000000000000000b", "{dev}");
            assert_eq!(r.xen_letters.as_deref(), Some("f"));
        }
        let e =
            resolve_volume(&target("/data", "xvdg", "ext4"), &volumes(), None, None).unwrap_err();
        assert_eq!(
            e,
            "no attached EBS volume is mapped as /dev/sdg or /dev/xvdg"
        );
        let root = DiskTarget {
            mount: Some("/".into()),
            ..DiskTarget::default()
        };
        let r = resolve_volume(&root, &volumes(), Some("/dev/xvda"), None).unwrap();
        assert_eq!(r.volume.as_str(), "vol-0000000000000000a");
        assert!(
            resolve_volume(&DiskTarget::default(), &volumes(), Some("/dev/xvda"), None).is_err()
        );
        // Hostile text is only ever compared.
        let e = resolve_volume(&target("/x", "xvdf;reboot", "ext4"), &volumes(), None, None)
            .unwrap_err();
        assert!(e.starts_with("cannot tell which EBS volume"), "{e}");
    }

    #[test]
    fn new_sizes() {
        assert_eq!(new_size(100, 20, 10, 2048, false), Ok(120));
        assert_eq!(new_size(8, 20, 10, 2048, false), Ok(18));
        assert_eq!(new_size(101, 20, 10, 2048, false), Ok(122)); // 121.2 rounds up
        assert_eq!(new_size(2000, 20, 10, 2048, false), Ok(2048));
        assert!(
            new_size(2048, 20, 10, 2048, false)
                .unwrap_err()
                .contains("maximum of 2048 GiB")
        );
        assert_eq!(new_size(1900, 20, 10, 4096, true), Ok(2048));
        assert!(
            new_size(2048, 20, 10, 4096, true)
                .unwrap_err()
                .contains("MBR")
        );
    }

    #[test]
    fn reads_what_the_instance_printed() {
        let out = "freed_bytes=1048576\nFilesystem 1024-blocks Used Available Capacity Mounted on\n/dev/nvme1n1 103081248 99000000 4081248 97% /data\n/dev/nvme0n1p1 8376300 2000000 6376300 24% /\n";
        assert_eq!(marker(out, "freed_bytes"), Some("1048576"));
        assert_eq!(marker(out, "freed"), None);
        assert_eq!(df_usage(out, "/data"), Some(97.0));
        assert_eq!(df_usage(out, "/"), Some(24.0));
        assert_eq!(df_usage(out, "/srv"), None);
        assert_eq!(human_bytes(1_048_576), "1.0 MiB");
        assert_eq!(human_bytes(10), "10 B");
    }

    #[test]
    fn targets_from_agent_dimensions_and_exporter_labels() {
        let cw = BTreeMap::from([
            ("path".to_owned(), "/data".to_owned()),
            ("device".to_owned(), "nvme1n1".to_owned()),
            ("fstype".to_owned(), "ext4".to_owned()),
        ]);
        assert_eq!(
            DiskTarget::from_labels(&cw),
            target("/data", "nvme1n1", "ext4")
        );
        let prom = BTreeMap::from([
            ("mountpoint".to_owned(), "/".to_owned()),
            ("device".to_owned(), "/dev/xvda1".to_owned()),
            ("fstype".to_owned(), "xfs\n".to_owned()),
        ]);
        let t = DiskTarget::from_labels(&prom);
        assert_eq!(t.mount.as_deref(), Some("/"));
        assert_eq!(t.fstype.as_deref(), Some("xfs"));
    }
}
