//! first-responder's library: the incident model, routing, the planner, the
//! AWS executor and the notification. See ARCHITECTURE.md for the flow.

pub mod actions;
pub mod alert;
pub mod approval;
pub mod autonomy;
#[cfg(feature = "aws")]
pub mod aws;
pub mod backtest;
pub mod budget;
pub mod commands;
pub mod config;
pub mod disk;
#[cfg(feature = "aws")]
pub mod engine;
pub mod error;
pub mod forecast;
pub mod ids;
pub mod incident;
pub mod metrics;
pub mod names;
pub mod notify;
#[cfg(feature = "aws")]
pub mod observe;
pub mod observed;
pub mod oncall;
pub mod outcome;
pub mod params;
pub mod plan;
pub mod playbook;
pub mod report;
pub mod respond;
pub mod series;
#[cfg(feature = "aws")]
pub mod state;
pub mod target;
pub mod telemetry;
pub mod text;
pub mod verify;
pub mod webhook;
pub mod window;
pub mod xray;

#[cfg(feature = "aws")]
pub use aws::Aws;
pub use config::Config;
#[cfg(feature = "aws")]
pub use engine::Engine;
pub use error::{ConfigError, InputError};
pub use report::Report;
pub use respond::Mode;
#[cfg(feature = "aws")]
pub use respond::handle;
