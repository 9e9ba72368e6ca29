//! What an action may call, declared once: `permissions! { ec2: [RebootInstances] }`
//! in its `mod.rs` makes both its `PERMISSIONS` (the IAM actions the
//! template must grant, checked by the registry's tests and the IAM
//! evaluator) and its `Clients` (the SDK clients those permissions cover:
//! all its `run` is given). An action that calls a service it did not
//! declare does not compile; one that calls an undeclared operation of a
//! declared service fails `every_sdk_call_of_an_action_is_among_its_declared_permissions`.

/// The SDK client of a service an action may declare.
#[cfg(feature = "aws")]
macro_rules! client_of {
    (ec2) => {
        aws_sdk_ec2::Client
    };
    (ssm) => {
        aws_sdk_ssm::Client
    };
    (sns) => {
        aws_sdk_sns::Client
    };
    (autoscaling) => {
        aws_sdk_autoscaling::Client
    };
}
#[cfg(feature = "aws")]
pub(crate) use client_of;

/// An action's declared IAM actions, grouped by service (one group each).
macro_rules! permissions {
    ($($service:ident: [$($op:ident),+ $(,)?]),+ $(,)?) => {
        /// The IAM actions it calls (the template grants them; a test checks
        /// both ways); its `Clients` come from the same list.
        pub const PERMISSIONS: &[&str] =
            &[$($(concat!(stringify!($service), ":", stringify!($op))),+),+];

        /// The clients its declared permissions cover, and the SSM polling
        /// schedule: everything its `run` can reach.
        #[cfg(feature = "aws")]
        pub(crate) struct Clients<'a> {
            $(pub $service: &'a $crate::actions::clients::client_of!($service),)+
            #[allow(dead_code)] // read by the actions that send commands
            pub poll: $crate::aws::PollSchedule,
        }

        #[cfg(feature = "aws")]
        impl<'a> Clients<'a> {
            pub(crate) fn of(aws: &'a $crate::aws::Aws) -> Self {
                Self {
                    $($service: &aws.$service,)+
                    poll: aws.poll,
                }
            }
        }
    };
}
pub(crate) use permissions;
