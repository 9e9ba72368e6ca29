//! What stands between an EBS volume and the alerted mount point, as the
//! instance's preflight answered it (`commands::DISK_LAYOUT`), and what
//! growing it takes: only layouts that growing this one volume can finish.

use super::BlockDev;

/// What the preflight read: the block devices, and the tools this host's
/// layouts need that it lacks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    pub disks: Vec<BlockDev>,
    pub missing: Vec<String>,
}

/// Reads the preflight's answer: an optional `missing=` line, then lsblk's
/// JSON.
pub fn parse_layout(out: &str) -> Result<Layout, String> {
    let json_at = out
        .find("\n{")
        .map(|i| i + 1)
        .or_else(|| out.starts_with('{').then_some(0))
        .ok_or_else(|| "the instance printed no lsblk JSON".to_owned())?;
    let head = &out[..json_at];
    if let Some(e) = super::marker(head, "error") {
        return Err(format!("the instance's preflight failed: {e}"));
    }
    let missing = super::marker(head, "missing")
        .map(|m| {
            m.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(ToOwned::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok(Layout {
        disks: super::parse_lsblk(&out[json_at..])?,
        missing,
    })
}

/// A device-mapper name as lsblk prints a logical volume (`vg0-data`,
/// `my--vg-root`): LVM's own characters only, so it can name a path in a
/// script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LvName(String);

impl LvName {
    pub fn parse(name: &str) -> Option<Self> {
        let ok = (1..=127).contains(&name.len())
            && !name.starts_with('-')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+_.-".contains(&b));
        ok.then(|| Self(name.to_owned()))
    }

    /// The volume group: before the first single `-` (`--` is an escaped
    /// hyphen in a device-mapper name).
    pub fn volume_group(&self) -> String {
        let b = self.0.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'-' {
                if b.get(i + 1) == Some(&b'-') {
                    i += 2;
                    continue;
                }
                return self.0[..i].replace("--", "-");
            }
            i += 1;
        }
        self.0.replace("--", "-")
    }
}

impl std::fmt::Display for LvName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the grow script grows on the volume's disk, read from the layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrowPath {
    /// The filesystem is on the whole disk.
    Disk,
    /// On this partition (the kernel's number).
    Partition(u32),
    /// On a logical volume whose volume group has this disk (or this
    /// partition of it) as its only physical volume.
    Lvm { partition: Option<u32>, lv: LvName },
}

impl GrowPath {
    pub fn partition(&self) -> Option<u32> {
        match self {
            Self::Disk => None,
            Self::Partition(n) => Some(*n),
            Self::Lvm { partition, .. } => *partition,
        }
    }

    /// The tools growing it takes, for a filesystem of this type.
    pub fn tools(&self, fstype: Option<&str>) -> Vec<&'static str> {
        let mut t = Vec::new();
        if self.partition().is_some() {
            t.push("growpart");
        }
        if matches!(self, Self::Lvm { .. }) {
            t.extend(["pvresize", "lvextend"]);
        }
        match fstype.and_then(super::Filesystem::parse) {
            Some(super::Filesystem::Xfs) => t.push("xfs_growfs"),
            Some(super::Filesystem::Ext) => t.push("resize2fs"),
            None => {}
        }
        t
    }

    /// In the plan's words.
    pub fn describe(&self) -> String {
        match self {
            Self::Disk => "the filesystem on the whole disk".into(),
            Self::Partition(n) => format!("partition {n} and its filesystem"),
            Self::Lvm { partition, lv } => format!(
                "{}the physical volume (pvresize) and logical volume {lv} with its filesystem (lvextend -r)",
                partition.map_or_else(String::new, |n| format!("partition {n}, "))
            ),
        }
    }
}

/// The package that brings a tool, for the advice on a refusal.
pub fn package_of(tool: &str) -> &'static str {
    match tool {
        "growpart" => {
            "cloud-utils-growpart on Amazon Linux and RHEL, cloud-guest-utils on Debian and Ubuntu"
        }
        "xfs_growfs" => "xfsprogs",
        "resize2fs" => "e2fsprogs",
        "pvresize" | "lvextend" => "lvm2",
        _ => "the package that provides it",
    }
}

/// The partition number of `part` on `disk`, from the kernel's names
/// (`nvme1n1p2`, `xvdf2`, `loop3p2`).
pub fn partition_number(disk: &str, part: &str) -> Option<u32> {
    let rest = part.strip_prefix(disk)?;
    let digits = rest
        .strip_prefix('p')
        .filter(|r| !r.is_empty())
        .unwrap_or(rest);
    digits.parse().ok().filter(|n| *n > 0)
}

/// The physical volumes of each logical volume's group, over every disk:
/// (volume group, the device just above a logical volume).
fn physical_volumes(disks: &[BlockDev]) -> Vec<(String, String)> {
    fn walk(d: &BlockDev, out: &mut Vec<(String, String)>) {
        for c in &d.children {
            if c.kind.as_deref() == Some("lvm")
                && let Some(lv) = LvName::parse(&c.name)
            {
                out.push((lv.volume_group(), d.name.clone()));
            }
            walk(c, out);
        }
    }
    let mut out = Vec::new();
    for d in disks {
        walk(d, &mut out);
    }
    out.sort();
    out.dedup();
    out
}

/// The grow path for `path` (disk first, the mounted device last), or None
/// when it is not one this volume alone can finish: a disk, one partition,
/// or a logical volume whose group has this one physical volume.
pub fn grow_path(path: &[&BlockDev], disks: &[BlockDev]) -> Option<GrowPath> {
    let kinds: Vec<&str> = path
        .iter()
        .map(|d| d.kind.as_deref().unwrap_or("unknown"))
        .collect();
    let disk = path.first()?;
    let part = |p: &BlockDev| partition_number(&disk.name, &p.name);
    match (kinds.as_slice(), path) {
        (["disk"], _) => Some(GrowPath::Disk),
        (["disk", "part"], [_, p]) => part(p).map(GrowPath::Partition),
        (["disk", "lvm"] | ["disk", "part", "lvm"], _) => {
            let lv_dev = path.last()?;
            let pv = path.get(path.len() - 2)?;
            let lv = LvName::parse(&lv_dev.name)?;
            let vg = lv.volume_group();
            let only_this_pv = physical_volumes(disks)
                .iter()
                .filter(|(g, _)| *g == vg)
                .all(|(_, p)| *p == pv.name);
            let partition = match kinds.len() {
                3 => Some(part(pv)?),
                _ => None,
            };
            only_this_pv.then_some(GrowPath::Lvm { partition, lv })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(partition_number("nvme1n1", "nvme1n1p2"), Some(2));
        assert_eq!(partition_number("xvdf", "xvdf12"), Some(12));
        assert_eq!(partition_number("loop3", "loop3p2"), Some(2));
        assert_eq!(partition_number("xvdf", "xvdg1"), None);
        let lv = LvName::parse("my--vg-data--lv").expect("a dm name");
        assert_eq!(lv.volume_group(), "my-vg");
        assert_eq!(
            LvName::parse("vg0-root")
                .map(|l| l.volume_group())
                .as_deref(),
            Some("vg0")
        );
        for bad in ["", "-x", "vg0/root", "a b", "x;reboot", "vg$(id)"] {
            assert_eq!(LvName::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_preflight_answer_is_read() {
        let json = r#"{"blockdevices": [{"name": "xvdf", "type": "disk"}]}"#;
        let l = parse_layout(&format!("missing=growpart,xfs_growfs\n{json}\n")).expect("read");
        assert_eq!(l.missing, ["growpart", "xfs_growfs"]);
        assert_eq!(l.disks[0].name, "xvdf");
        let l = parse_layout(json).expect("read");
        assert!(l.missing.is_empty());
        assert!(parse_layout("").is_err());
        assert!(parse_layout("error=lsblk failed\n").is_err());
    }
}
