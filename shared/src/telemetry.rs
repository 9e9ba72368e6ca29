//! Logging setup shared by the binaries: JSON lines through `tracing`.

use tracing_subscriber::EnvFilter;

/// JSON logs to stderr (the CLI keeps stdout for its report) or stdout (Lambda).
/// `RUST_LOG` overrides `default_level`.
pub fn init(to_stderr: bool, default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false);
    let _ = if to_stderr {
        builder.with_writer(std::io::stderr).try_init()
    } else {
        builder.try_init()
    };
}
