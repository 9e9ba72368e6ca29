//! The dispatch from a step to its action's execution (each in
//! `actions/<name>/run.rs`).

use crate::config::Config;
use crate::incident::Incident;
use crate::plan::Step;
use crate::report::ActionReport;

use super::expand_volume::intended_size;
use crate::aws::*;
use crate::outcome::Outcome;

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
        match step {
            Step::Snapshot {
                instance,
                volumes,
                exclude_boot,
                exclude,
            } => {
                self.snapshot_or_find(incident, instance, volumes, *exclude_boot, exclude, resume)
                    .await
            }
            Step::CollectDiagnostics { instance, set } => {
                self.collect_diagnostics_on(instance, *set, incident, config)
                    .await
            }
            Step::CollectEvidence { instance, console } => self.evidence(instance, *console).await,
            Step::CleanupTemp { instance, days } => {
                self.cleanup_temp(instance, *days, incident, config).await
            }
            Step::ArchiveLogs {
                instance,
                days,
                bucket,
            } => {
                self.archive_logs(instance, *days, bucket.as_deref(), incident, config)
                    .await
            }
            Step::ExpandVolume(e) => {
                let intended = resume.and_then(intended_size);
                self.expand(e, incident, config, earlier, intended).await
            }
            Step::RestartService { instance, service } => {
                self.restart_service(instance, service, incident, config)
                    .await
            }
            Step::ReplaceInstance { instance, group } => {
                self.replace_instance(instance, group, resume).await
            }
            Step::Reboot { instance } => self.reboot(instance).await,
            Step::ScaleOut {
                group,
                from,
                to,
                max,
            } => {
                self.scale_out_resuming(group, *from, *to, *max, resume)
                    .await
            }
            Step::Notify { .. } => {
                Outcome::failed("the notification is sent after the other actions")
            }
        }
    }
}
