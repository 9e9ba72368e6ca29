//! Where on-call reads, as data: links into the console and a Prometheus
//! alert's pages, and the card a chat channel and PagerDuty are sent.
//! Pure vocabulary; `notify` fills them from a plan, the notify action
//! sends them.

pub mod card;
pub mod links;

pub use card::{Card, Done, Held, PagerEvent};
pub use links::{Link, Where};
