//! The emulator suites, one binary: each module is a playbook or a concern,
//! and every test gets a moto server of its own (`harness::Moto`), so they
//! share nothing but this binary's link. One binary links the SDK once,
//! where 19 linked it 19 times after every change to the library.
//!
//! One module: `cargo nextest run --workspace -E 'binary(emulator) & test(/^high_cpu::/)'`
//! or `cargo test --workspace --test emulator high_cpu::`.
//! `tests/tests/tls.rs` and `tests/tests/xray.rs` stay binaries of their own: they set
//! the process's environment, which `cargo test`'s threads would share.

mod accounts;
mod alert_sources;
mod alertmanager;
mod amp;
mod approval;
mod autonomy;
mod disk_full;
mod disk_layouts;
mod faults;
mod forecast;
mod high_cpu;
mod idempotency;
mod instance;
mod kill_process;
mod limits;
mod memory_pressure;
mod metric_context;
mod oncall;
mod restart_service;
mod scripts;
mod service_down;
mod verify;
mod webhook;
