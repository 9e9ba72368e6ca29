//! Disk layouts in the instance stand-in, from a disk alarm: what growing
//! one EBS volume can finish is grown (the partition that holds the alerted
//! mount, for real; a volume group on this volume alone, through LVM's
//! recording shims), what it cannot is refused at planning with no change
//! in the emulated account, and so is a host without the tools it needs.

use std::sync::Arc;

use anyhow::{Context, Result};
use first_responder::Mode;
use harness::ssm::{DataVolume, DiskLayout, Instance, LVM_LOG, SsmStandIn};
use harness::{FleetSpec, World, sample_event, snapshots, volume_modifications, volume_size};

/// A world whose instance has a 20 GiB xfs data volume at /srv, 19 GiB of it
/// used, laid out as asked, on a host without the `hide` tools.
async fn disk_world(
    layout: DiskLayout,
    hide: &[&str],
) -> Result<(World, SsmStandIn, Arc<Instance>)> {
    let mut w = World::start(FleetSpec::default()).await?;
    let standin = SsmStandIn::start(&w.moto.endpoint).await?;
    let volume = DataVolume {
        volume_id: w.fleet.data_volume.clone(),
        size_gib: 20,
        mount: "/srv",
        fstype: "xfs",
        xen_name: "xvdf",
        layout,
    };
    let sandbox = standin.add(
        w.fleet.instance(),
        Instance::start_hiding("fallocate -l 19G /srv/big-dataset", Some(volume), hide)?,
    );
    w.engine.aws.ssm = standin.client(&w.sdk).into();
    Ok((w, standin, sandbox))
}

fn srv_alarm(w: &World) -> Result<String> {
    Ok(sample_event("disk-full-alarm.json", w.fleet.instance())?
        .replace("\"path\": \"/data\"", "\"path\": \"/srv\"")
        .replace("\"fstype\": \"ext4\"", "\"fstype\": \"xfs\""))
}

fn expand(r: &first_responder::Report) -> &first_responder::report::ActionReport {
    r.incidents[0]
        .actions
        .iter()
        .find(|a| a.action.as_str() == "expand_volume")
        .unwrap_or_else(|| panic!("no expand_volume in {r:#?}"))
}

/// Bytes of the filesystem mounted at `mount` in the sandbox.
async fn size_of(sandbox: &Instance, mount: &str) -> Result<u64> {
    let out = sandbox
        .sh(&format!("df -P -B1 {mount} | awk 'NR == 2 {{print $2}}'"))
        .await?;
    out.trim()
        .parse()
        .with_context(|| format!("df {mount}: {out:?}"))
}

/// Nothing was done to the volume but one snapshot for evidence: no
/// modification, no snapshot before one.
async fn untouched(w: &World) -> Result<()> {
    assert!(
        volume_modifications(&w.sdk, &w.fleet.data_volume)
            .await?
            .is_empty()
    );
    assert_eq!(volume_size(&w.sdk, &w.fleet.data_volume).await?, 20);
    let purposes: Vec<String> = snapshots(&w.sdk)
        .await?
        .iter()
        .filter(|s| s.volume == w.fleet.data_volume)
        .filter_map(|s| s.tags.get("first-responder:purpose").cloned())
        .collect();
    assert_eq!(purposes, ["evidence: not expanded"], "{purposes:?}");
    Ok(())
}

/// GPT, partition 1 a mounted decoy, the alerted /srv on partition 2: the
/// second partition is the one grown (growpart and xfs_growfs for real).
#[tokio::test]
async fn the_partition_holding_the_alerted_mount_is_the_one_grown() -> Result<()> {
    let (w, _standin, sandbox) = disk_world(DiskLayout::Partitioned, &[]).await?;
    let (srv, decoy) = (
        size_of(&sandbox, "/srv").await?,
        size_of(&sandbox, "/mnt").await?,
    );
    let r = w.handle_text(&srv_alarm(&w)?, Mode::Run).await?;
    let e = expand(&r);
    assert_eq!(e.status.as_str(), "done", "{e:#?}");
    assert!(
        e.reason.contains("then partition 2 and its filesystem"),
        "{}",
        e.reason
    );
    let out = e.output.as_deref().unwrap_or_default();
    assert!(
        out.contains("mount=/srv") && out.contains("fstype=xfs"),
        "{out}"
    );
    assert!(
        out.contains("CHANGED: partition=2"),
        "growpart's own answer: {out}"
    );
    let grown = size_of(&sandbox, "/srv").await?;
    assert!(grown > srv + (9 << 30), "/srv {srv} -> {grown}");
    assert_eq!(
        size_of(&sandbox, "/mnt").await?,
        decoy,
        "the decoy was grown"
    );
    assert_eq!(volume_size(&w.sdk, &w.fleet.data_volume).await?, 30);
    Ok(())
}

/// A volume group on this volume alone: the volume, then exactly
/// `pvresize` on the grown device and `lvextend -r` on the alerted logical
/// volume (LVM's shims: this kernel has no device-mapper), whose `-r`
/// grows the filesystem.
#[tokio::test]
async fn a_volume_group_on_one_volume_is_grown_through_lvm() -> Result<()> {
    let (w, _standin, sandbox) = disk_world(DiskLayout::Lvm, &[]).await?;
    let before = size_of(&sandbox, "/srv").await?;
    let r = w.handle_text(&srv_alarm(&w)?, Mode::Run).await?;
    let e = expand(&r);
    assert_eq!(e.status.as_str(), "done", "{e:#?}");
    assert!(e.reason.contains("logical volume vg0-data"), "{}", e.reason);
    let (device, _) = sandbox.loop_device().context("a loop device")?;
    let log = sandbox.sh(&format!("cat {LVM_LOG}")).await?;
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        [
            format!("pvresize {device}"),
            "lvextend -r -l +100%FREE /dev/mapper/vg0-data".to_owned()
        ],
        "{log}"
    );
    let out = e.output.as_deref().unwrap_or_default();
    assert!(
        out.contains("Logical volume vg0/data successfully resized"),
        "{out}"
    );
    let after = size_of(&sandbox, "/srv").await?;
    assert!(after > before + (9 << 30), "/srv {before} -> {after}");
    Ok(())
}

/// A volume group over two EBS volumes and an md RAID over two, as such
/// hosts' lsblk prints them: refused at planning, nothing changed.
#[tokio::test]
async fn layouts_over_two_volumes_are_refused_at_planning() -> Result<()> {
    for (layout, says) in [
        (
            DiskLayout::LvmOverTwo,
            "cannot grow /srv (xvdf): nvme1n1 (disk) -> vg0-data (lvm), over 2 disks; the volume group has more than one physical volume",
        ),
        (
            DiskLayout::RaidOverTwo,
            "cannot grow /srv (xvdf): nvme1n1 (disk) -> md0 (raid1), over 2 disks; grow every member volume of the RAID set",
        ),
    ] {
        let (w, _standin, _sandbox) = disk_world(layout, &[]).await?;
        let r = w.handle_text(&srv_alarm(&w)?, Mode::Run).await?;
        let e = expand(&r);
        assert_eq!(e.status.as_str(), "skipped", "{e:#?}");
        assert!(e.reason.contains(says), "{layout:?}: {}", e.reason);
        untouched(&w).await?;
    }
    Ok(())
}

/// A host without growpart: the preflight says so (`missing=growpart`) and
/// the grow is refused before any change, naming the package.
#[tokio::test]
async fn a_host_without_growpart_refuses_before_any_change() -> Result<()> {
    let (w, _standin, _sandbox) = disk_world(DiskLayout::Partitioned, &["growpart"]).await?;
    let r = w.handle_text(&srv_alarm(&w)?, Mode::Run).await?;
    let e = expand(&r);
    assert_eq!(e.status.as_str(), "skipped", "{e:#?}");
    assert!(
        e.reason.contains("the instance lacks growpart")
            && e.reason.contains("cloud-utils-growpart on Amazon Linux and RHEL, cloud-guest-utils on Debian and Ubuntu"),
        "{}",
        e.reason
    );
    untouched(&w).await
}
