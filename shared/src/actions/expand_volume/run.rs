//! expand_volume: grow the EBS volume, then its partition and filesystem.

use aws_sdk_ec2::error::ProvideErrorMetadata;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_sdk_ec2::types::{Filter, VolumeModificationState};
use tokio::time::{Instant, sleep};

use crate::commands;
use crate::disk::{df_usage, marker};
use crate::ids::{InstanceId, VolumeId};
use crate::incident::Incident;
use crate::report::{ActionReport, Status};

use super::Expansion;
use crate::aws::*;
use super::Clients;
use crate::actions::Settings;
use crate::outcome::Outcome;

/// Snapshot, grow the volume, wait until EBS is optimizing, then grow the
/// partition and filesystem on the instance. Each stop says what was
/// done before it, so nothing is half-done without saying so.
pub(crate) async fn expand(
    c: &Clients<'_>,
    e: &Expansion,
    incident: &Incident,
    config: &Settings,
    earlier: &[ActionReport],
    intended: Option<i32>,
) -> Outcome {
    let vol = &e.volume;
    // An earlier delivery that died may have modified the volume already:
    // then only the wait and the filesystem are left to do.
    let resumed = match intended {
        Some(n) if modified_to(c, vol, n).await => Some(n),
        _ => None,
    };
    let (snap_id, usage_text, to) = match resumed {
        Some(n) => {
            let snap = find_snapshot(c, &incident.id, vol, "before expand_volume")
                .await
                .unwrap_or_else(|| "?".into());
            (
                snap,
                format!("an earlier delivery had already asked EBS for {n} GiB and stopped"),
                n,
            )
        }
        None => match expand_start(c, e, incident, earlier, intended.is_some())
            .await
        {
            Ok((snap, usage, other)) => (snap, usage, other.unwrap_or(e.to_gib)),
            Err(o) => return o,
        },
    };
    let mut ids = vec![snap_id.clone()];
    // 5. Until the new size is usable (optimizing or completed).
    let state = usable(c, vol, to, e.modification_wait, &snap_id).await;
    if let Err(why) = state {
        // The volume was (or is being) modified: a change was made.
        let mut o = Outcome::uncertain(why);
        o.ids = ids;
        return o;
    }
    // 6. The partition and filesystem.
    let grown = run_command(
        c.ssm,
        &e.instance,
        commands::grow_filesystem(vol, e.xen_letters.as_deref(), to, &e.grow),
        &format!("first-responder expand_volume for {}", incident.id),
        // The script waits up to 60 s for the kernel to see the new size.
        config.diagnostics_timeout + Duration::from_secs(60),
        c.poll,
    )
    .await;
    ids.extend(grown.ids.iter().cloned());
    let size_text = if to == e.from_gib {
        format!("{vol} is {to} GiB")
    } else {
        format!("{vol} grown {} -> {to} GiB", e.from_gib)
    };
    let sized = format!(
        "{size_text} ({}; usage was {usage_text}; snapshot {snap_id} first)",
        e.how
    );
    let mut o = grown_outcome(e, &grown, &sized);
    o.ids = ids;
    o.output = grown.output;
    o
}

/// A refusal: the evidence snapshot (one an earlier delivery took counts),
/// and nothing else.
async fn evidence_only(
    c: &Clients<'_>,
    e: &Expansion,
    incident: &Incident,
    why: &str,
    after_crash: bool,
) -> Outcome {
    const PURPOSE: &str = "evidence: not expanded";
    let found = match after_crash {
        true => find_snapshot(c, &incident.id, &e.volume, PURPOSE).await,
        false => None,
    };
    let snap = match found {
        Some(id) => Outcome::done(id.clone(), vec![id]),
        None => snapshot(c, incident, &e.instance, &e.volume, None, PURPOSE).await,
    };
    match (snap.status, snap.ids.first()) {
        (Status::Done, Some(id)) => Outcome {
            ids: snap.ids.clone(),
            ..Outcome::skipped(format!(
                "{why}; snapshot {id} of {} taken for evidence, nothing else changed",
                e.volume
            ))
        },
        _ => Outcome::skipped(format!(
            "{why}; nothing changed, and the snapshot for evidence failed too ({})",
            snap.detail
        )),
    }
}

/// Polls the volume's modification to `to` GiB until EBS says it is usable
/// (optimizing or completed), it failed, or `wait` is over.
async fn usable(
    c: &Clients<'_>,
    vol: &VolumeId,
    to: i32,
    wait: Duration,
    snap_id: &str,
) -> Result<(), String> {
    let wait_until = Instant::now() + wait;
    let mut delay = c.poll.first;
    loop {
        let read = c
            .ec2
            .describe_volumes_modifications()
            .volume_ids(vol.as_str())
            .send()
            .await;
        let st = match read {
            Ok(out) => out
                .volumes_modifications()
                .iter()
                .filter(|m| m.target_size() == Some(to))
                .max_by_key(|m| m.start_time().map(|t| t.secs()))
                .map(|m| {
                    (
                        m.modification_state().cloned(),
                        m.status_message().map(ToOwned::to_owned),
                    )
                }),
            Err(err) => Some((None, Some(sdk_error(&err)))),
        };
        match st {
            Some((
                Some(VolumeModificationState::Optimizing | VolumeModificationState::Completed),
                _,
            )) => {
                break Ok(());
            }
            Some((Some(VolumeModificationState::Failed), msg)) => {
                break Err(format!(
                    "the modification of {vol} failed ({}); snapshot {snap_id} was taken",
                    msg.unwrap_or_default()
                ));
            }
            _ => {}
        }
        if Instant::now() >= wait_until {
            break Err(format!(
                "{vol} is being modified to {} GiB but was not optimizing within {} s: the filesystem was not grown; grow it by hand once it is (snapshot {snap_id})",
                to,
                wait.as_secs()
            ));
        }
        sleep(delay.min(wait_until - Instant::now())).await;
        delay = (delay * 2).min(c.poll.max);
    }
}

/// What came of growing the partition and filesystem, in words (`sized`:
/// what was done to the volume before it).
fn grown_outcome(e: &Expansion, grown: &Outcome, sized: &str) -> Outcome {
    let out = grown.output.clone().unwrap_or_default();
    match grown.status {
        Status::Done if !grew(&out) => {
            let mount = marker(&out, "mount").unwrap_or("the mount");
            let size = marker(&out, "size_after")
                .and_then(|v| v.parse::<u64>().ok())
                .map_or_else(|| "?".to_owned(), crate::disk::human_bytes);
            Outcome::uncertain(format!(
                "{sized}; the grow script ran, but {mount} is still {size}: its filesystem did not grow; check the partition and filesystem by hand"
            ))
        }
        Status::Done => {
            let df = e
                .mount
                .as_deref()
                .or_else(|| marker(&out, "mount"))
                .and_then(|m| df_usage(&out, m).map(|u| format!("{m} is now {u:.0}% used")));
            Outcome::done(
                match df {
                    Some(d) => format!("{sized}; partition and filesystem grown, {d}"),
                    None => format!(
                        "{sized}; partition and filesystem grown; the instance reported no df output to check"
                    ),
                },
                Vec::new(),
            )
        }
        _ => {
            let why = match (grown.exit_code, marker(&out, "error")) {
                (_, Some(m)) => m.to_owned(),
                (Some(commands::GROW_UNKNOWN_FS), _) => "unknown filesystem".into(),
                _ => grown.detail.clone(),
            };
            let text = if why.starts_with("the volume is ") {
                // The script said what to run by hand.
                format!("{sized}; {why}")
            } else {
                format!(
                    "{sized}, but the filesystem was NOT grown: {why}. The space is unusable until someone runs growpart and resize2fs/xfs_growfs by hand"
                )
            };
            Outcome {
                uncertain: true,
                ..Outcome::failed(text)
            }
        }
    }
}

/// Whether the mount grew, by the sizes the grow script printed; an
/// answer without them (no output at all) is judged by df, as before.
fn grew(out: &str) -> bool {
    let size = |k| marker(out, k).and_then(|v| v.parse::<u64>().ok());
    match (size("size_before"), size("size_after")) {
        (Some(b), Some(a)) => a > b,
        _ => true,
    }
}

/// The filesystem's usage after the cleanup, and how it was known: df on
/// the instance, else the alert's value; neither: not expanded blind.
fn usage_after_cleanup(e: &Expansion, earlier: &[ActionReport]) -> Result<(f64, String), Outcome> {
    let measured = e.mount.as_deref().and_then(|m| {
        earlier
            .iter()
            .filter_map(|r| r.output.as_deref())
            .filter_map(|o| df_usage(o, m))
            .reduce(f64::min)
    });
    match (measured, e.alert_usage) {
        (Some(u), _) => Ok((u, format!("{u:.0}% after the cleanup (df on the instance)"))),
        (None, Some(u)) => Ok((
            u,
            format!("{u:.1}% as alerted (the instance reported no usage after the cleanup)"),
        )),
        (None, None) => {
            Err(Outcome::skipped(
                "usage after the cleanup is unknown and the alert carried no value: not expanding blind",
            ))
        }
    }
}

/// The snapshot taken before the volume is touched (one an earlier
/// delivery took counts), or why there is none and nothing was done.
async fn snapshot_first(
    c: &Clients<'_>,
    e: &Expansion,
    incident: &Incident,
    after_crash: bool,
) -> Result<String, Outcome> {
    let vol = &e.volume;
    let found = if after_crash {
        find_snapshot(c, &incident.id, vol, "before expand_volume")
            .await
    } else {
        None
    };
    match found {
        Some(id) => Ok(id),
        None => {
            let snap = snapshot(c, incident, &e.instance, vol, None, "before expand_volume")
                .await;
            match snap
                .ids
                .first()
                .cloned()
                .filter(|_| snap.status == Status::Done)
            {
                Some(id) => Ok(id),
                None => Err(Outcome::failed(format!(
                        "snapshot before expanding failed ({}): {vol} was not touched",
                        snap.detail
                    ))),
            }
        }
    }
}

/// Steps 1 to 4 of [`expand`]: the usage check, EBS's modification
/// window, the snapshot, the modification. Ok((snapshot id, how the usage was known)).
pub(crate) async fn expand_start(
    c: &Clients<'_>,
    e: &Expansion,
    incident: &Incident,
    earlier: &[ActionReport],
    after_crash: bool,
) -> Result<(String, String, Option<i32>), Outcome> {
    let vol = &e.volume;
    // 1. Usage after the cleanup: df on the instance, else the alert's value.
    let usage = usage_after_cleanup(e, earlier)?;
    if usage.0 < e.expand_at {
        return Err(Outcome::skipped(format!(
            "usage is {}, below {}%: not expanded",
            usage.1, e.expand_at
        )));
    }
    // 2. Will EBS take a modification now? Refused: nothing at all, not
    // even the snapshot. Someone else's under way: wait for theirs.
    let theirs = window(c, vol).await?;
    // 3. The snapshot first (one an earlier delivery took counts).
    let snap_id = snapshot_first(c, e, incident, after_crash).await?;
    if let Some((target, started)) = theirs {
        return Ok((
            snap_id,
            format!(
                "{}; {vol} was already being modified to {target} GiB (started {}): waited for that instead",
                usage.1,
                crate::series::rfc3339(started)
            ),
            Some(target),
        ));
    }
    // 4. The volume, to an absolute size: a repeat cannot grow it twice,
    // but the SDK does not retry it blindly either (a lost answer is
    // checked against the volume's modifications instead).
    let modified = once(|| {
        c.ec2
            .modify_volume()
            .volume_id(vol.as_str())
            .size(e.to_gib)
            .customize()
            .config_override(
                aws_sdk_ec2::config::Builder::default().retry_config(RetryConfig::disabled()),
            )
            .send()
    })
    .await;
    let err = match modified {
        Ok(_) => return Ok((snap_id, usage.1, None)),
        Err(err) => err,
    };
    let why = sdk_error(&err);
    if err.code() == Some("IncorrectModificationState") {
        // Someone (or an earlier delivery) is modifying it already: wait
        // for that modification and grow the filesystem to its size.
        if let Some(target) = latest_modification(c, vol).await {
            return Ok((
                snap_id,
                format!(
                    "{}; {vol} was already being modified to {target} GiB ({why}): waited for that instead",
                    usage.1
                ),
                Some(target),
            ));
        }
    }
    if !refused(&err) && modified_to(c, vol, e.to_gib).await {
        return Ok((
            snap_id,
            format!(
                "{}; the answer to ModifyVolume was lost ({why}), the modification found on {vol}",
                usage.1
            ),
            None,
        ));
    }
    let mut o = if err.code() == Some("VolumeModificationRateExceeded") {
        Outcome::skipped(format!(
            "EBS will not modify {vol} again yet ({why}); snapshot {snap_id} was taken, nothing else changed"
        ))
    } else if refused(&err) {
        Outcome::failed(format!(
            "ModifyVolume of {vol} to {} GiB: {why}; snapshot {snap_id} was taken, nothing else changed",
            e.to_gib
        ))
    } else {
        Outcome::uncertain(format!(
            "ModifyVolume of {vol} to {} GiB: {why}; snapshot {snap_id} was taken",
            e.to_gib
        ))
    };
    o.ids = vec![snap_id];
    Err(o)
}

/// EBS's window for the volume: Err(skipped) when closed, the size and
/// start of someone else's modification under way, or None when open (also
/// when it could not be read: ModifyVolume's own refusal is handled).
async fn window(
    c: &Clients<'_>,
    vol: &VolumeId,
) -> Result<Option<(i32, chrono::DateTime<chrono::Utc>)>, Outcome> {
    let window = match modifications(c, vol).await {
        Ok(mods) => super::modification_window(vol, &mods, chrono::Utc::now()),
        Err(_) => super::Window::Open,
    };
    match window {
        super::Window::Closed(why) => Err(Outcome::skipped(why)),
        super::Window::UnderWay { target_gib, started } => Ok(Some((target_gib, started))),
        super::Window::Open => Ok(None),
    }
}

/// The volume's modifications, for [`super::modification_window`].
async fn modifications(
    c: &Clients<'_>,
    volume: &VolumeId,
) -> Result<Vec<super::Modification>, String> {
    use super::ModificationState as S;
    let out = c
        .ec2
        .describe_volumes_modifications()
        .volume_ids(volume.as_str())
        .send()
        .await
        .map_err(|e| sdk_error(&e))?;
    Ok(out
        .volumes_modifications()
        .iter()
        .map(|m| super::Modification {
            target_gib: m.target_size(),
            state: match m.modification_state() {
                Some(VolumeModificationState::Completed) => S::Completed,
                Some(VolumeModificationState::Failed) => S::Failed,
                Some(VolumeModificationState::Optimizing) => S::Optimizing,
                // A state this SDK does not know is taken as under way.
                _ => S::Modifying,
            },
            // Always given; without it, taken as just now (the safe side).
            started: m
                .start_time()
                .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
                .unwrap_or_else(chrono::Utc::now),
        })
        .collect())
}

/// The target size of the volume's newest modification that is still
/// under way or done (`modifying`, `optimizing`, `completed`).
pub(crate) async fn latest_modification(c: &Clients<'_>, volume: &VolumeId) -> Option<i32> {
    modifications(c, volume)
        .await
        .ok()?
        .into_iter()
        .filter(|m| m.state != super::ModificationState::Failed)
        .max_by_key(|m| m.started)
        .and_then(|m| m.target_gib)
}

/// Whether a modification of the volume to this size exists.
pub(crate) async fn modified_to(c: &Clients<'_>, volume: &VolumeId, size: i32) -> bool {
    modifications(c, volume)
        .await
        .is_ok_and(|mods| mods.iter().any(|m| m.target_gib == Some(size)))
}

/// The snapshot before the expansion: that one volume, found again by its
/// tags after a lost answer rather than taken twice.
pub(crate) async fn snapshot(
    c: &Clients<'_>,
    incident: &Incident,
    instance: &InstanceId,
    volume: &VolumeId,
    device: Option<&str>,
    purpose: &str,
) -> Outcome {
    let alarm = &incident.alert.alarm_name;
    let description = printable(
        &format!(
            "first-responder {purpose} for {}: alarm {alarm} on {instance} ({})",
            incident.id,
            device.unwrap_or("unknown device")
        ),
        255,
    );
    // CreateSnapshot takes no client token: a retry after a lost answer
    // would take a second snapshot. So the SDK does not retry it; this
    // loop does, and looks for the snapshot by its tags first.
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let result = c
            .ec2
            .create_snapshot()
            .volume_id(volume.as_str())
            .description(description.clone())
            .tag_specifications(snapshot_tags(incident, instance, purpose, &format!("{} {volume}", incident.id)))
            .customize()
            .config_override(
                aws_sdk_ec2::config::Builder::default().retry_config(RetryConfig::disabled()),
            )
            .send()
            .await;
        let e = match result {
            Ok(out) => {
                return match out.snapshot_id() {
                    Some(id) => Outcome::done(
                        format!("{id} of {volume} ({})", device.unwrap_or("?")),
                        vec![id.to_owned()],
                    ),
                    None => Outcome::failed("CreateSnapshot answered without a snapshot id"),
                };
            }
            Err(e) => e,
        };
        if let Some(id) = find_snapshot(c, &incident.id, volume, purpose).await {
            return Outcome::done(
                format!(
                    "{id} of {volume} ({}); the answer to CreateSnapshot was lost, the snapshot found by its tags",
                    device.unwrap_or("?")
                ),
                vec![id],
            );
        }
        if attempt >= 3 || !transient(&e) {
            return Outcome::failed(format!(
                "CreateSnapshot of {volume}: {} (attempt {attempt})",
                sdk_error(&e)
            ));
        }
        sleep(Duration::from_millis(200 << attempt)).await;
    }
}

/// A snapshot of this volume that this incident took for this purpose.
pub(crate) async fn find_snapshot(
    c: &Clients<'_>,
    incident_id: &str,
    volume: &VolumeId,
    purpose: &str,
) -> Option<String> {
    let filter = |k: &str, v: &str| Filter::builder().name(k).values(v).build();
    let out = c
        .ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(filter(&format!("tag:{TAG_INCIDENT}"), incident_id))
        .filters(filter(&format!("tag:{TAG_PURPOSE}"), purpose))
        .filters(filter("volume-id", volume.as_str()))
        .send()
        .await
        .ok()?;
    out.snapshots()
        .iter()
        .find_map(|s| s.snapshot_id().map(ToOwned::to_owned))
}

/// Carries out the step (see `actions::Run`).
pub(crate) async fn run(c: &Clients<'_>, s: &super::Step, cx: &crate::actions::Run<'_>) -> Outcome {
    if let Some(why) = &s.refused {
        return evidence_only(c, s, cx.incident, why, cx.resume.is_some()).await;
    }
    expand(c, s, cx.incident, cx.settings, cx.earlier, cx.resume.and_then(crate::actions::intended_size)).await
}
