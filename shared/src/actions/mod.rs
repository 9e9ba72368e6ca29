//! The actions, one module each, and the dispatch from a step to its action.

use aws_config::retry::RetryConfig;

use crate::commands;
use crate::config::Config;
use crate::disk::{human_bytes, marker};
use crate::incident::Incident;
use crate::plan::{Diagnostics, HIGH_CPU_DIAGNOSTICS, Step};
use crate::report::{ActionReport, Status};

use crate::aws::*;
use crate::outcome::Outcome;
use expand_volume::intended_size;
use snapshot::snapshots_taken;

pub mod collect_evidence;
pub mod expand_volume;
pub mod notify;
pub mod scale_out;
pub mod snapshot;

impl Aws {
    pub(crate) async fn perform(
        &self,
        step: &Step,
        incident: &Incident,
        config: &Config,
        earlier: &[ActionReport],
        // What an earlier delivery that died meant to do, when it claimed
        // this action first: AWS is checked before anything is repeated.
        resume: Option<&str>,
    ) -> Outcome {
        let id = &incident.id;
        let wait = config.diagnostics_timeout;
        match step {
            Step::Snapshot {
                instance,
                volumes,
                exclude_boot,
                exclude,
            } => {
                if resume.is_some() {
                    let found = self.find_instance_snapshots(&incident.id, instance).await;
                    if !found.is_empty() {
                        return snapshots_taken(
                            volumes,
                            &found,
                            "taken by an earlier delivery that stopped before recording it (found by their tags)",
                        );
                    }
                }
                self.snapshot_instance(incident, instance, volumes, *exclude_boot, exclude)
                    .await
            }
            Step::CollectDiagnostics { instance, set } => {
                let cmds = match set {
                    Diagnostics::Cpu => HIGH_CPU_DIAGNOSTICS,
                    Diagnostics::Memory => commands::MEMORY_DIAGNOSTICS,
                };
                run_command(
                    &self.ssm,
                    instance,
                    cmds.iter().map(|c| (*c).to_owned()).collect(),
                    &format!("first-responder diagnostics for {id}"),
                    wait,
                    self.poll,
                )
                .await
            }
            Step::CollectEvidence { instance, console } => self.evidence(instance, *console).await,
            Step::CleanupTemp { instance, days } => {
                let o = run_command(
                    &self.ssm,
                    instance,
                    commands::cleanup_temp(*days),
                    &format!("first-responder cleanup_temp for {id}"),
                    wait,
                    self.poll,
                )
                .await;
                freed(o, "under /tmp and /var/tmp")
            }
            Step::ArchiveLogs {
                instance,
                days,
                bucket,
            } => {
                let o = run_command(
                    &self.ssm,
                    instance,
                    commands::archive_logs(*days, bucket.as_deref(), instance, id),
                    &format!("first-responder archive_logs for {id}"),
                    wait,
                    self.poll,
                )
                .await;
                freed(o, "by compressing rotated logs under /var/log")
            }
            Step::ExpandVolume(e) => {
                let intended = resume.and_then(intended_size);
                self.expand(e, incident, config, earlier, intended).await
            }
            Step::RestartService { instance, service } => {
                let o = run_command(
                    &self.ssm,
                    instance,
                    commands::restart_service(service),
                    &format!("first-responder restart_service for {id}"),
                    wait,
                    self.poll,
                )
                .await;
                if o.status != Status::Done {
                    return o;
                }
                let mut r = match o.output.as_deref().and_then(|out| marker(out, "active")) {
                    Some("active") => {
                        Outcome::done(format!("restarted {service}: active again"), o.ids.clone())
                    }
                    Some(state) => Outcome::uncertain(format!(
                        "restarted {service}, but it is {state}: look at it now"
                    )),
                    None => Outcome::done(
                        format!(
                            "restart of {service} succeeded; the instance did not report the unit's state"
                        ),
                        o.ids.clone(),
                    ),
                };
                r.ids = o.ids;
                r.output = o.output;
                r
            }
            Step::ReplaceInstance { instance, group } => {
                if resume.is_some()
                    && let Ok(health) = self.health_of(instance).await
                    && health.eq_ignore_ascii_case("unhealthy")
                {
                    return Outcome::done(
                        format!(
                            "{instance} was marked Unhealthy by an earlier delivery that stopped before recording it"
                        ),
                        Vec::new(),
                    );
                }
                let result = self
                    .autoscaling
                    .set_instance_health()
                    .instance_id(instance.as_str())
                    .health_status("Unhealthy")
                    // The service is down already: replace it now.
                    .should_respect_grace_period(false)
                    .send()
                    .await;
                match result {
                    Ok(_) => Outcome::done(
                        format!("{instance} marked Unhealthy: {group} replaces it"),
                        Vec::new(),
                    ),
                    Err(e) => Outcome::failed_call(&format!("SetInstanceHealth of {instance}"), &e),
                }
            }
            Step::Reboot { instance } => {
                // Not idempotent (a repeat reboots again): no SDK retries.
                let rebooted = once(|| {
                    self.ec2
                        .reboot_instances()
                        .instance_ids(instance.as_str())
                        .customize()
                        .config_override(
                            aws_sdk_ec2::config::Builder::default()
                                .retry_config(RetryConfig::disabled()),
                        )
                        .send()
                })
                .await;
                match rebooted {
                    Ok(_) => Outcome::done(format!("reboot of {instance} requested"), Vec::new()),
                    Err(e) => Outcome::failed_call(&format!("RebootInstances of {instance}"), &e),
                }
            }
            Step::ScaleOut {
                group,
                from,
                to,
                max,
            } => {
                if let Some(intended) = resume.and_then(intended_size)
                    && let Ok(Some(g)) = self.group_named(group).await
                    && g.desired >= intended
                {
                    return Outcome::done(
                        format!(
                            "desired capacity of {group} is already {} (an earlier delivery meant {intended} and stopped before recording it)",
                            g.desired
                        ),
                        Vec::new(),
                    );
                }
                self.scale_out(group, *from, *to, *max).await
            }
            Step::Notify { .. } => {
                Outcome::failed("the notification is sent after the other actions")
            }
        }
    }
}

/// A cleanup command's outcome, with the bytes it reported freeing.
pub(crate) fn freed(o: Outcome, where_: &str) -> Outcome {
    if o.status != Status::Done {
        return o;
    }
    let out = o.output.as_deref().unwrap_or_default();
    let bytes = marker(out, "freed_bytes").and_then(|b| b.parse::<u64>().ok());
    let mut detail = match bytes {
        Some(b) => format!("freed {} {where_}", human_bytes(b)),
        None => format!("command ran {where_}; the instance did not report the bytes freed"),
    };
    if let Some(n) = marker(out, "compressed_files") {
        detail.push_str(&format!(" ({n} files compressed)"));
    }
    if let Some(n) = marker(out, "kept_open_files").filter(|n| *n != "0") {
        detail.push_str(&format!(
            "; {n} old files kept because a process holds them open"
        ));
    }
    if marker(out, "open_check").is_some() {
        detail.push_str(
            "; nothing touched: the instance's /proc could not be read to tell which files are open",
        );
    }
    if let Some(url) = marker(out, "shipped") {
        detail.push_str(&format!("; shipped to {url}"));
    }
    if let Some(url) = marker(out, "ship_failed") {
        detail.push_str(&format!(
            "; shipping to {url} FAILED, the compressed files stay on the instance"
        ));
    }
    Outcome { detail, ..o }
}
