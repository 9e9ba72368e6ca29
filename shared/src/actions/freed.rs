//! What a cleanup script reported freeing, in words (cleanup_temp and
//! archive_logs share it).

use crate::disk::{human_bytes, marker};
use crate::outcome::Outcome;
use crate::report::Status;

/// A cleanup command's outcome, with the bytes it reported freeing.
pub(crate) fn freed(o: Outcome, where_: &str) -> Outcome {
    if o.status != Status::Done {
        return o;
    }
    let out = o.output.as_deref().unwrap_or_default();
    let bytes = marker(out, "freed_bytes").and_then(|b| b.parse::<u64>().ok());
    let mut detail = match bytes {
        Some(b) => format!("freed {} {where_}", human_bytes(b)),
        None => format!("command ran {where_}; the instance did not report the bytes freed"),
    };
    if let Some(n) = marker(out, "compressed_files") {
        detail.push_str(&format!(" ({n} files compressed)"));
    }
    if let Some(n) = marker(out, "kept_open_files").filter(|n| *n != "0") {
        detail.push_str(&format!(
            "; {n} old files kept because a process holds them open"
        ));
    }
    if marker(out, "open_check").is_some() {
        detail.push_str(
            "; nothing touched: the instance's /proc could not be read to tell which files are open",
        );
    }
    if let Some(url) = marker(out, "shipped") {
        detail.push_str(&format!("; shipped to {url}"));
    }
    if let Some(url) = marker(out, "ship_failed") {
        detail.push_str(&format!(
            "; shipping to {url} FAILED, the compressed files stay on the instance"
        ));
    }
    Outcome { detail, ..o }
}
