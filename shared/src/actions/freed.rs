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
    if let Some(ages) = ages(out) {
        detail.push_str(&format!(" ({ages})"));
    }
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
    if let Some(n) = marker(out, "not_compressed_in_time") {
        detail.push_str(&format!(
            "; {n} rotated logs left as they were: the command's time ran out"
        ));
    }
    // The script said something failed: never a plain "freed 0 B".
    if let Some(e) = marker(out, "error") {
        let why = format!("{detail}; but {e}");
        let failed = match bytes {
            Some(b) if b > 0 => Outcome::uncertain(why),
            _ => Outcome::failed(why),
        };
        return Outcome {
            status: failed.status,
            detail: failed.detail,
            uncertain: failed.uncertain,
            ..o
        };
    }
    Outcome { detail, ..o }
}

/// The ages the cleanup applied, and where each came from, in words.
fn ages(out: &str) -> Option<String> {
    let age = |m: &str| match m.parse::<i64>() {
        Ok(m) if m < 0 => "never (the host does not age it)".to_owned(),
        Ok(m) if m % 1440 == 0 => format!("{} days", m / 1440),
        Ok(m) => format!("{:.1} hours", m as f64 / 60.0),
        Err(_) => "?".to_owned(),
    };
    let from = |f: &str| match f {
        "systemd-tmpfiles" => "the host's systemd-tmpfiles",
        "playbook" => "the playbook's older_than_days",
        _ => "the default",
    };
    let tmp = marker(out, "age_tmp_minutes")?;
    let var = marker(out, "age_var_tmp_minutes")?;
    let (tf, vf) = (
        marker(out, "age_tmp_from").unwrap_or("default"),
        marker(out, "age_var_tmp_from").unwrap_or("default"),
    );
    Some(if tf == vf {
        format!(
            "ages: /tmp {}, /var/tmp {}, from {}",
            age(tmp),
            age(var),
            from(tf)
        )
    } else {
        format!(
            "ages: /tmp {} from {}, /var/tmp {} from {}",
            age(tmp),
            from(tf),
            age(var),
            from(vf)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ran(out: &str) -> Outcome {
        Outcome {
            output: Some(out.to_owned()),
            ..Outcome::done("command c-1 succeeded", vec!["c-1".into()])
        }
    }

    #[test]
    fn a_script_that_reports_an_error_is_never_a_plain_freed() {
        let o = freed(
            ran(
                "freed_bytes=0\ncompressed_files=0\nkept_open_files=0\ncompress_failed=1\nerror=1 rotated logs could not be compressed\n",
            ),
            "by compressing",
        );
        assert_eq!(o.status, Status::Failed);
        assert!(!o.uncertain);
        assert!(
            o.detail
                .ends_with("; but 1 rotated logs could not be compressed"),
            "{}",
            o.detail
        );
        let o = freed(
            ran(
                "freed_bytes=4096\ndeleted_files=1\nkept_open_files=0\nerror=find exited 1 (some files could not be read or removed)\n",
            ),
            "under /tmp",
        );
        assert_eq!((o.status, o.uncertain), (Status::Failed, true));
        assert!(
            o.detail
                .starts_with("freed 4.0 KiB under /tmp; but find exited 1"),
            "{}",
            o.detail
        );
        assert_eq!(o.ids, ["c-1"]);
        let o = freed(
            ran("freed_bytes=4096\ndeleted_files=1\nkept_open_files=0\n"),
            "under /tmp",
        );
        assert_eq!(
            (o.status, o.detail.as_str()),
            (Status::Done, "freed 4.0 KiB under /tmp")
        );
        let o = freed(
            ran(
                "age_tmp_minutes=14400\nage_tmp_from=systemd-tmpfiles\nage_var_tmp_minutes=43200\nage_var_tmp_from=systemd-tmpfiles\nfreed_bytes=4096\n",
            ),
            "under /tmp and /var/tmp",
        );
        assert_eq!(
            o.detail,
            "freed 4.0 KiB under /tmp and /var/tmp (ages: /tmp 10 days, /var/tmp 30 days, from the host's systemd-tmpfiles)"
        );
        let o = freed(
            ran(
                "age_tmp_minutes=4320\nage_tmp_from=playbook\nage_var_tmp_minutes=-1\nage_var_tmp_from=systemd-tmpfiles\nfreed_bytes=0\n",
            ),
            "under /tmp and /var/tmp",
        );
        assert!(
            o.detail.ends_with("(ages: /tmp 3 days from the playbook's older_than_days, /var/tmp never (the host does not age it) from the host's systemd-tmpfiles)"),
            "{}",
            o.detail
        );
    }
}
