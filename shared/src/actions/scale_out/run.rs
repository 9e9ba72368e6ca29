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
    // SetDesiredCapacity writes a size, not an increment: read the group
    // again right before it, so a group that grew since the plan read it
    // (its own target tracking, a person) is never scaled in by us.
    match group_named(c.autoscaling, group).await {
        Ok(Some(g)) if g.desired >= to => {
            return Outcome::skipped(format!(
                "desired capacity of {group} is already {} (it was {from} when the plan read it): not set to {to}, never lowered",
                g.desired
            ));
        }
        Ok(Some(g)) if g.is_suspended("Launch") => {
            return Outcome::skipped(format!(
                "group {group} has had its Launch process suspended since the plan read it: a larger desired capacity would launch nothing"
            ));
        }
        Ok(Some(_)) => {}
        Ok(None) => return Outcome::failed(format!("group {group} is gone")),
        Err(e) => {
            return Outcome::failed(format!(
                "{e}: not writing a desired capacity without its current one"
            ));
        }
    }
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
