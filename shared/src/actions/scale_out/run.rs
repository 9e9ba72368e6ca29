//! scale_out: one more instance in the Auto Scaling group.

use crate::ids::GroupName;

use crate::aws::*;
use crate::outcome::Outcome;

impl Aws {
    /// After a crash (`resume` holds the size meant), the group's desired
    /// capacity says whether it was done.
    pub(crate) async fn scale_out_resuming(
        &self,
        group: &GroupName,
        from: i32,
        to: i32,
        max: i32,
        resume: Option<&str>,
    ) -> Outcome {
        if let Some(intended) = resume.and_then(crate::actions::intended_size)
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
        self.scale_out(group, from, to, max).await
    }

    pub(crate) async fn scale_out(
        &self,
        group: &GroupName,
        from: i32,
        to: i32,
        max: i32,
    ) -> Outcome {
        let result = self
            .autoscaling
            .set_desired_capacity()
            .auto_scaling_group_name(group.as_str())
            .desired_capacity(to)
            // Act now: the group's own cooldown is for its policies, not for us.
            .honor_cooldown(false)
            .send()
            .await;
        match result {
            Ok(_) => Outcome::done(
                format!("desired capacity of {group} {from} -> {to} (MaxSize {max})"),
                Vec::new(),
            ),
            Err(e) => Outcome::failed_call(&format!("SetDesiredCapacity of {group} to {to}"), &e),
        }
    }
}

/// Carries out the step (see `actions::Run`).
pub(crate) async fn run(aws: &Aws, s: &super::Step, cx: &crate::actions::Run<'_>) -> Outcome {
    aws.scale_out_resuming(&s.group, s.from, s.to, s.max, cx.resume).await
}
