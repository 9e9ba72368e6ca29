//! The `first-responder` binary against moto, one test binary (it links the
//! SDK once): its commands, the backtest, bad input, and a crash between
//! its steps.

mod backtest;
mod bad_input;
mod cli;
mod crash;
mod trust;
