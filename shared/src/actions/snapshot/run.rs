//! snapshot: evidence before any change.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_sdk_ec2::types::Filter;
use tokio::time::sleep;

use crate::ids::{InstanceId, VolumeId};
use crate::incident::Incident;

use crate::aws::*;
use super::Clients;
use crate::outcome::Outcome;

/// After a crash (`resume`), the snapshots an earlier delivery took are
/// found by their tags rather than taken again.
pub(crate) async fn snapshot_or_find(
    c: &Clients<'_>,
    incident: &Incident,
    instance: &InstanceId,
    volumes: &[(VolumeId, Option<String>)],
    exclude_boot: bool,
    exclude: &[VolumeId],
    resume: Option<&str>,
) -> Outcome {
    if resume.is_some() {
        let found = find_instance_snapshots(c, &incident.id, instance).await;
        if !found.is_empty() {
            return snapshots_taken(
                volumes,
                &found,
                "taken by an earlier delivery that stopped before recording it (found by their tags)",
            );
        }
    }
    snapshot_instance(c, incident, instance, volumes, exclude_boot, exclude)
        .await
}

/// Every listed volume of the instance at one instant, with one
/// `CreateSnapshots` (crash-consistent across the volumes; IAM scopes it
/// by the instance's opt-in tag). No client token, so no SDK retries:
/// after an error the snapshots are looked up by their tags first.
pub(crate) async fn snapshot_instance(
    c: &Clients<'_>,
    incident: &Incident,
    instance: &InstanceId,
    volumes: &[(VolumeId, Option<String>)],
    exclude_boot: bool,
    exclude: &[VolumeId],
) -> Outcome {
    use aws_sdk_ec2::types::InstanceSpecification;
    let alarm = &incident.alert.alarm_name;
    let description = printable(
        &format!(
            "first-responder evidence for {}: alarm {alarm} on {instance}",
            incident.id
        ),
        255,
    );
    let spec = InstanceSpecification::builder()
        .instance_id(instance.as_str())
        .exclude_boot_volume(exclude_boot)
        .set_exclude_data_volume_ids(
            (!exclude.is_empty()).then(|| exclude.iter().map(|v| v.to_string()).collect()),
        )
        .build();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let result = c
            .ec2
            .create_snapshots()
            .instance_specification(spec.clone())
            .description(description.clone())
            .tag_specifications(snapshot_tags(incident, instance, "evidence", &format!("{} {instance}", incident.id)))
            .customize()
            .config_override(
                aws_sdk_ec2::config::Builder::default().retry_config(RetryConfig::disabled()),
            )
            .send()
            .await;
        let e = match result {
            Ok(out) => {
                let taken: Vec<(String, String)> = out
                    .snapshots()
                    .iter()
                    .filter_map(|s| {
                        Some((s.volume_id()?.to_owned(), s.snapshot_id()?.to_owned()))
                    })
                    .collect();
                return if taken.is_empty() {
                    Outcome::failed("CreateSnapshots answered without a snapshot")
                } else {
                    snapshots_taken(volumes, &taken, "")
                };
            }
            Err(e) => e,
        };
        let found = find_instance_snapshots(c, &incident.id, instance).await;
        if !found.is_empty() {
            return snapshots_taken(
                volumes,
                &found,
                "the answer to CreateSnapshots was lost, the snapshots found by their tags",
            );
        }
        if attempt >= 3 || !transient(&e) {
            return Outcome::failed(format!(
                "CreateSnapshots of {instance}: {} (attempt {attempt})",
                sdk_error(&e)
            ));
        }
        sleep(Duration::from_millis(200 << attempt)).await;
    }
}

/// The evidence snapshots this incident took of this instance:
/// (volume, snapshot) pairs.
pub(crate) async fn find_instance_snapshots(
    c: &Clients<'_>,
    incident_id: &str,
    instance: &InstanceId,
) -> Vec<(String, String)> {
    let filter = |k: &str, v: &str| Filter::builder().name(k).values(v).build();
    let Ok(out) = c
        .ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(filter(&format!("tag:{TAG_INCIDENT}"), incident_id))
        .filters(filter(&format!("tag:{TAG_INSTANCE}"), instance.as_str()))
        .filters(filter(&format!("tag:{TAG_PURPOSE}"), "evidence"))
        .send()
        .await
    else {
        return Vec::new();
    };
    out.snapshots()
        .iter()
        .filter_map(|s| Some((s.volume_id()?.to_owned(), s.snapshot_id()?.to_owned())))
        .collect()
}


/// The evidence snapshots as an outcome: one "snap of vol (device)" per
/// volume, in the plan's order.
pub(crate) fn snapshots_taken(
    volumes: &[(VolumeId, Option<String>)],
    taken: &[(String, String)],
    how: &str,
) -> Outcome {
    let mut parts = Vec::new();
    let mut ids = Vec::new();
    for (v, device) in volumes {
        if let Some((_, snap)) = taken.iter().find(|(vol, _)| vol == v.as_str()) {
            parts.push(format!(
                "{snap} of {v} ({})",
                device.as_deref().unwrap_or("?")
            ));
            ids.push(snap.clone());
        }
    }
    // Volumes attached since the plan was made are snapshotted too.
    for (vol, snap) in taken {
        if !ids.contains(snap) {
            parts.push(format!("{snap} of {vol}"));
            ids.push(snap.clone());
        }
    }
    let mut detail = parts.join(", ");
    if !how.is_empty() {
        detail.push_str(&format!("; {how}"));
    }
    Outcome::done(detail, ids)
}

/// Carries out the step (see `actions::Run`).
pub(crate) async fn run(c: &Clients<'_>, s: &super::Step, cx: &crate::actions::Run<'_>) -> Outcome {
    snapshot_or_find(c, cx.incident, &s.instance, &s.volumes, s.exclude_boot, &s.exclude, cx.resume).await
}
