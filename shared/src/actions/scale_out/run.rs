//! scale_out: one more instance in the Auto Scaling group.

use crate::ids::GroupName;

use crate::aws::fleet::group_named;
use super::Clients;
use crate::outcome::Outcome;

/// After a crash (`resume` holds the size meant), the group's desired
/// capacity says whether it was done.
pub(crate) async fn scale_out_resuming(
    c: &Clients<'_>,
    group: &GroupName,
    from: i32,
    to: i32,
    max: i32,
    resume: Option<&str>,
) -> Outcome {
    if let Some(intended) = resume.and_then(crate::actions::intended_size)
        && let Ok(Some(g)) = group_named(c.autoscaling, group).await
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
    scale_out(c, group, from, to, max).await
}

pub(crate) async fn scale_out(
    c: &Clients<'_>,
    group: &GroupName,
    from: i32,
    to: i32,
    max: i32,
) -> Outcome {
    let result = c
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

/// Carries out the step (see `actions::Run`).
pub(crate) async fn run(c: &Clients<'_>, s: &super::Step, cx: &crate::actions::Run<'_>) -> Outcome {
    scale_out_resuming(c, &s.group, s.from, s.to, s.max, cx.resume).await
}
