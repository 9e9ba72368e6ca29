//! scale_out: one more instance in the Auto Scaling group.

use crate::ids::GroupName;

use crate::aws::*;
use crate::outcome::Outcome;

impl Aws {
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
