//! The actions, one module each: its parameters and decision (pure), its
//! execution (`run.rs`, with the `aws` feature), its recovery after a crash
//! and the IAM actions it needs. The registry below is the one list of them.

use std::time::Duration;

use crate::ids::InstanceId;

pub mod clients;
pub mod context;
pub mod script;

pub use collect_diagnostics::Diagnostics;
pub use context::{Context, Decided, Decision, Kind, Settings};
pub use expand_volume::Expansion;

#[cfg(feature = "aws")]
mod freed;
#[cfg(all(test, feature = "aws"))]
mod tests;
#[cfg(feature = "aws")]
pub(crate) use freed::freed;

/// What an action is after a crash of the delivery that started it. Every
/// action states it: there is no default, so a new action left without it
/// does not compile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Changes nothing: simply done again.
    ReadOnly,
    /// Done again safely: the reason says why.
    Idempotent(&'static str),
    /// AWS is read first (how: the text) and the action is repeated only if
    /// it was not done.
    Verifiable(&'static str),
    /// Nothing tells whether it happened and doing it twice is not harmless:
    /// never repeated by a later delivery, reported for a person.
    Unverifiable,
}

/// What an action's decision needs read from AWS beyond the instance itself
/// (always read: its tags decide every opt-in). The observation reads the
/// union of what a kind's listed actions need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// The instance's attached volumes.
    Volumes,
    /// The instance's Auto Scaling group.
    Group,
    /// EC2's status checks (and SSM's view, when configured).
    Health,
    /// The instance's block devices, when the API alone cannot tell which
    /// volume holds the alerted filesystem.
    Layout,
}

/// The registry: each action's module and its name. `ActionName`, its
/// string form, its recovery and its permissions all come from this list.
macro_rules! registry {
    ($($(#[$attr:meta])* $module:ident => $variant:ident),+ $(,)?) => {
        $(pub mod $module;)+

        impl ActionName {
            /// What a later delivery does with it after a crash.
            pub fn recovery(self) -> Recovery {
                match self {
                    $(Self::$variant => $module::RECOVERY),+
                }
            }

            /// Decides this action for the plan being built (pure).
            pub fn decide(
                self,
                p: &mut Context<'_>,
                instance: &InstanceId,
                observed: &crate::observed::Observed,
                config: &Settings,
            ) {
                match self {
                    $(Self::$variant => $module::decide(p, instance, observed, config)),+
                }
            }

            /// The scripts it sends through SSM (`first-responder script`).
            pub fn scripts(self) -> &'static [script::Script] {
                match self {
                    $(Self::$variant => $module::SCRIPTS),+
                }
            }

            /// What its decision needs observed.
            pub fn needs(self) -> &'static [Need] {
                match self {
                    $(Self::$variant => $module::NEEDS),+
                }
            }

            /// The IAM actions it calls.
            pub fn permissions(self) -> &'static [&'static str] {
                match self {
                    $(Self::$variant => $module::PERMISSIONS),+
                }
            }

            /// Its execution's source, for the permissions test.
            #[cfg(test)]
            pub(crate) fn source(self) -> &'static str {
                match self {
                    $(Self::$variant => include_str!(concat!(stringify!($module), "/run.rs"))),+
                }
            }
        }

        /// Every action's parameters for one kind, each from its own table
        /// (`[kind.action]`); an action not listed keeps its defaults.
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct ActionParams {
            $(pub $module: $module::Params),+
        }

        /// A fully specified change (or read) the executor can carry out:
        /// each action's own step type.
        #[derive(Clone, Debug, PartialEq)]
        pub enum Step {
            $($variant($module::Step)),+
        }

        impl Step {
            pub fn name(&self) -> ActionName {
                match self {
                    $(Self::$variant(_) => ActionName::$variant),+
                }
            }

            fn action(&self) -> &dyn ActionStep {
                match self {
                    $(Self::$variant(s) => s),+
                }
            }

            fn action_mut(&mut self) -> &mut dyn ActionStep {
                match self {
                    $(Self::$variant(s) => s),+
                }
            }
        }

        /// Carries out one step: its action's `run`, given only the
        /// clients the action declared.
        #[cfg(feature = "aws")]
        pub(crate) async fn perform(
            aws: &crate::aws::Aws,
            step: &Step,
            cx: &Run<'_>,
        ) -> crate::outcome::Outcome {
            match step {
                $(Step::$variant(s) => $module::run(&$module::Clients::of(aws), s, cx).await),+
            }
        }
    };
}

pub use crate::names::ActionName;
use crate::names::with_actions;

with_actions!(registry);

/// What the engine and the reports ask of a step; each action answers for
/// its own.
pub trait ActionStep {
    /// The change in words, as a verb phrase ("add one instance to web-asg
    /// (desired 1 -> 2)"): what a dry run says it would do.
    fn describe(&self) -> String;

    /// Changes the fleet (as opposed to reading it or telling people). No
    /// default: each action says.
    fn is_mutating(&self) -> bool;

    /// Evidence: creates something (a snapshot) but changes nothing of the
    /// fleet, so the breaker, flap guard and cooldowns do not count it.
    fn is_evidence(&self) -> bool {
        false
    }

    /// What it means to leave behind, recorded with its claim so a later
    /// delivery can check AWS if this one dies half-way (`to=N`).
    fn intent(&self) -> String {
        String::new()
    }

    /// The cooldown it takes with the kind's parameters: (resource, how long).
    fn cooldown(&self, _: &ActionParams, _: &Settings) -> Option<(String, Duration)> {
        None
    }

    /// Takes an instance out of service (a replacement, a reboot): counts
    /// against the share of its group that may be down at once.
    fn takes_instance_down(&self) -> bool {
        false
    }

    /// How long it typically takes, start to result: an API call or two
    /// unless it says otherwise. An SSM command waits for the agent and the
    /// script. The engine sums these along the stages to decide whether a
    /// short first page goes out before the work ends (`FIRST_PAGE_BUDGET_SECONDS`).
    fn typical(&self) -> Duration {
        Duration::from_secs(1)
    }

    /// Its decision reads the alert's metric. The metric is read beside the
    /// fleet but not waited for by the planner (it must not lengthen the
    /// critical path): the engine waits for it before this step's stage and
    /// hands it to [`ActionStep::with_forecast`].
    fn uses_metric(&self) -> bool {
        false
    }

    /// Decides again with the metric's forecast (None: no metric, or not
    /// growing); Some(reason) is the decision's new reason. The same answer
    /// however often it is asked.
    fn with_forecast(&mut self, _: Option<&crate::series::Forecast>) -> Option<String> {
        None
    }
}

impl Step {
    pub fn is_mutating(&self) -> bool {
        self.action().is_mutating()
    }

    pub fn is_evidence(&self) -> bool {
        self.action().is_evidence()
    }

    pub fn describe(&self) -> String {
        self.action().describe()
    }

    pub fn intent(&self) -> String {
        self.action().intent()
    }

    pub fn uses_metric(&self) -> bool {
        self.action().uses_metric()
    }

    pub fn typical(&self) -> Duration {
        self.action().typical()
    }

    pub fn takes_instance_down(&self) -> bool {
        self.action().takes_instance_down()
    }

    pub fn with_forecast(&mut self, forecast: Option<&crate::series::Forecast>) -> Option<String> {
        self.action_mut().with_forecast(forecast)
    }

    /// The cooldown this step takes: (action, resource, how long), with the
    /// parameters of the kind's playbook.
    pub fn cooldown(
        &self,
        params: &ActionParams,
        settings: &Settings,
    ) -> Option<(&'static str, String, Duration)> {
        let (resource, d) = self.action().cooldown(params, settings)?;
        (!d.is_zero()).then_some((self.name().as_str(), resource, d))
    }
}

/// What an action's execution gets beside its step.
pub struct Run<'a> {
    pub incident: &'a crate::incident::Incident,
    pub settings: &'a Settings,
    /// The reports of the earlier stages (the disk usage after the cleanup).
    pub earlier: &'a [crate::report::ActionReport],
    /// What an earlier delivery that died meant to do, when it claimed this
    /// action first: AWS is checked before anything is repeated.
    pub resume: Option<&'a str>,
}

/// The size an orphaned claim meant (`to=N`).
#[cfg(feature = "aws")]
pub(crate) fn intended_size(intent: &str) -> Option<i32> {
    intent.strip_prefix("to=")?.parse().ok()
}
