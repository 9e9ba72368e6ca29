//! `first-responder trust` over a track record seeded in moto's state table
//! through the responder's own writes (a run, its check, a person's
//! decision), with every count worked out by hand below; and `trust
//! --restore`, recorded with the caller's identity.

use std::process::Command;

use anyhow::{Context, Result};
use first_responder::actions::ActionName;
use first_responder::state::StateStore;
use first_responder::state::track::Run;
use harness::{FleetSpec, Moto, aws_env, seed};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_first-responder");
const DAY: i64 = 86_400;

/// prod observes scale_out; dev lets it run; staging approves expand_volume;
/// everything else as shipped (reboot: approve).
fn playbooks() -> String {
    format!(
        "{}\n[scopes.prod]\naccounts = [\"123456789012\"]\ntags = {{ Environment = \"production\" }}\n[scopes.prod.modes]\nscale_out = \"observe\"\n\n[scopes.dev]\ngroups = [\"dev-*\"]\n[scopes.dev.modes]\nscale_out = \"auto\"\n\n[scopes.staging]\naccounts = [\"999999999999\"]\n[scopes.staging.modes]\nexpand_volume = \"approve\"\n",
        first_responder::playbook::DEFAULT_TEXT
    )
}

fn trust(
    moto: &Moto,
    table: &str,
    file: &std::path::Path,
    args: &[&str],
) -> Result<std::process::Output> {
    let mut cmd = Command::new(BIN);
    cmd.arg("trust")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in aws_env(&moto.endpoint) {
        cmd.env(k, v);
    }
    cmd.env("STATE_TABLE", table).env("PLAYBOOKS_FILE", file);
    Ok(cmd.output()?)
}

struct Seeder<'a> {
    st: &'a StateStore,
    now: i64,
    n: u32,
}

impl Seeder<'_> {
    /// One run `days_ago`, then its check (if any) and a decision (if any).
    async fn run(
        &mut self,
        (scope, action, mode, status): (&str, ActionName, &str, &str),
        days_ago: i64,
        verdict: Option<&str>,
        decision: Option<(&str, i64)>,
    ) -> Result<()> {
        self.n += 1;
        let incident = format!("inc-{:016x}", self.n);
        let at = self.now - days_ago * DAY;
        let run = Run {
            incident: &incident,
            action,
            kind: "high_cpu",
            scope,
            mode,
            status,
            resource: Some("i-0123456789abcdef0"),
            at,
        };
        self.st
            .record_run(&run, 400)
            .await
            .map_err(anyhow::Error::msg)?;
        if let Some((d, after)) = decision {
            self.st
                .record_decision(&incident, action, d, at + after)
                .await
                .map_err(anyhow::Error::msg)?;
            if d == "approved" {
                self.st
                    .record_approved_done(&incident, action, 400)
                    .await
                    .map_err(anyhow::Error::msg)?;
            }
        }
        if let Some(v) = verdict {
            self.st
                .record_verdict(&incident, action, v, at + 600, 400)
                .await
                .map_err(anyhow::Error::msg)?;
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_trust_report_counts_a_seeded_record_and_a_restore_is_recorded() -> Result<()> {
    let moto = Moto::start()?;
    let sdk = moto.sdk().await;
    let fleet = seed(&sdk, FleetSpec::default()).await?;
    let st = StateStore::new(aws_sdk_dynamodb::Client::new(&sdk), &fleet.state_table);
    let now = chrono::Utc::now().timestamp();
    let mut s = Seeder { st: &st, now, n: 0 };
    use ActionName::{ExpandVolume, Reboot, ScaleOut};
    // prod, scale_out observed 10 times in 20 days: 6 recovered by
    // themselves, 4 still firing → 10 runs, recovered_unchanged 6,
    // still_firing 4; half or more recovered alone → "not needed".
    for d in 0..10 {
        let v = if d < 6 { "recovered" } else { "still_firing" };
        s.run(
            ("prod", ScaleOut, "observe", "observed"),
            d * 2 + 1,
            Some(v),
            None,
        )
        .await?;
    }
    // dev, scale_out auto, 3 changes: recovered (20 days ago), still firing
    // 3 and 1 days ago → runs 3, recovered 1, still_firing 2, escalations 2;
    // two still-firing checks in 7 days: demoted (mode now approve),
    // "back to approve".
    s.run(
        ("dev", ScaleOut, "auto", "done"),
        20,
        Some("recovered"),
        None,
    )
    .await?;
    s.run(
        ("dev", ScaleOut, "auto", "done"),
        3,
        Some("still_firing"),
        None,
    )
    .await?;
    s.run(
        ("dev", ScaleOut, "auto", "done"),
        1,
        Some("still_firing"),
        None,
    )
    .await?;
    // staging, expand_volume held 10 times, each approved after 60, 120, …
    // 600 s and carried out, each recovered → runs 10, recovered 10,
    // approved 10, median (300 + 360) / 2 = 330 s; ready for auto.
    for d in 0..10 {
        s.run(
            ("staging", ExpandVolume, "approve", "held"),
            d + 1,
            Some("recovered"),
            Some(("approved", 60 * (d + 1))),
        )
        .await?;
    }
    // staging, reboot held twice: one denied (never run), one approved and
    // run, whose check could not tell → runs 1, unknown 1, approved 1,
    // denied 1; keep approve.
    s.run(
        ("staging", Reboot, "approve", "held"),
        2,
        None,
        Some(("denied", 30)),
    )
    .await?;
    s.run(
        ("staging", Reboot, "approve", "held"),
        1,
        Some("unknown"),
        Some(("approved", 90)),
    )
    .await?;
    // Older than --since 30d: not counted.
    s.run(
        ("dev", ScaleOut, "auto", "done"),
        45,
        Some("still_firing"),
        None,
    )
    .await?;

    let dir = std::env::temp_dir().join(format!("fr-trust-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("playbooks.toml");
    std::fs::write(&file, playbooks())?;
    let out = trust(
        &moto,
        &fleet.state_table,
        &file,
        &["--json", "--since", "30d"],
    )?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout)?;
    let at = |scope: &str, action: &str| r["scopes"][scope]["actions"][action].clone();
    let counts = |v: &Value| -> Vec<u64> {
        [
            "runs",
            "recovered",
            "still_firing",
            "unknown",
            "recovered_unchanged",
            "escalations",
            "approved",
            "denied",
        ]
        .iter()
        .map(|k| v[*k].as_u64().unwrap_or(u64::MAX))
        .collect()
    };
    let prod = at("prod", "scale_out");
    assert_eq!(counts(&prod), [10, 0, 4, 0, 6, 0, 0, 0], "{prod}");
    assert_eq!(prod["mode"], "observe");
    assert_eq!(prod["recommendation"], "not needed", "{prod}");
    let dev = at("dev", "scale_out");
    assert_eq!(counts(&dev), [3, 1, 2, 0, 0, 2, 0, 0], "{dev}");
    assert_eq!(dev["mode"], "approve", "demoted: {dev}");
    assert_eq!(dev["recommendation"], "back to approve", "{dev}");
    let ev = at("staging", "expand_volume");
    assert_eq!(counts(&ev), [10, 10, 0, 0, 0, 0, 10, 0], "{ev}");
    assert_eq!(ev["median_seconds_to_approve"], 330);
    assert_eq!(ev["recommendation"], "ready for auto", "{ev}");
    let rb = at("staging", "reboot");
    assert_eq!(counts(&rb), [1, 0, 0, 1, 0, 0, 1, 1], "{rb}");
    assert_eq!(rb["recommendation"], "keep approve", "{rb}");
    assert_eq!(r["scopes"].as_object().map(|o| o.len()), Some(3));

    // Restored by a person: dev's scale_out is auto again, "keep auto"
    // (the checks before the restore no longer demote it); who is recorded.
    let out = trust(
        &moto,
        &fleet.state_table,
        &file,
        &["--restore", "scale_out", "--scope", "dev"],
    )?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("restored scale_out in scope dev (by arn:aws:"),
        "{said}"
    );
    let h = st.history(None).await.map_err(anyhow::Error::msg)?;
    let (when, by) = h
        .restored
        .get(&("dev".to_owned(), ScaleOut))
        .context("no restore recorded")?;
    assert!(*when >= now && by.starts_with("arn:aws:"), "{when} {by}");
    let out = trust(&moto, &fleet.state_table, &file, &["--json"])?;
    let r: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(r["scopes"]["dev"]["actions"]["scale_out"]["mode"], "auto");
    // Text for a person, the same counts.
    let out = trust(&moto, &fleet.state_table, &file, &[])?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ready for auto"), "{text}");
    // A bad --since is bad input.
    let out = trust(&moto, &fleet.state_table, &file, &["--since", "a month"])?;
    assert_eq!(out.status.code(), Some(2));
    Ok(())
}

/// `pause --group … --for 2h --reason …` stores a pause the responder
/// reads; `pauses --json` lists it in force; `resume` ends it; one target
/// only, and a reason, or it is bad input.
#[tokio::test(flavor = "multi_thread")]
async fn pause_pauses_and_resume_keep_the_pause_in_the_state_table() -> Result<()> {
    let moto = Moto::start()?;
    let sdk = moto.sdk().await;
    let fleet = seed(&sdk, FleetSpec::default()).await?;
    let run = |args: &[&str]| -> Result<std::process::Output> {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in aws_env(&moto.endpoint) {
            cmd.env(k, v);
        }
        Ok(cmd.env("STATE_TABLE", &fleet.state_table).output()?)
    };
    let before = chrono::Utc::now().timestamp();
    let out = run(&[
        "pause",
        "--group",
        &fleet.group,
        "--for",
        "2h",
        "--reason",
        "db migration",
    ])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    let id = said.split_whitespace().next().context("no id")?.to_owned();
    assert!(id.starts_with("p-"), "{said}");
    let st = StateStore::new(aws_sdk_dynamodb::Client::new(&sdk), &fleet.state_table);
    let h = st.history(None).await.map_err(anyhow::Error::msg)?;
    let p = h.pauses.first().context("no pause stored")?;
    assert_eq!(
        (p.on.as_str(), p.value.as_str()),
        ("group", fleet.group.as_str())
    );
    assert!((p.until - before - 7200).abs() <= 5, "{p:?}");
    assert!(p.by.starts_with("arn:aws:"), "{p:?}");
    let out = run(&["pauses", "--json"])?;
    let list: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(list[0]["pause"]["id"], id.as_str());
    assert_eq!(list[0]["in_force"], true);
    let out = run(&["resume", &id])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["pauses", "--json"])?;
    let list: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(list.as_array().map(Vec::len), Some(0));
    assert_eq!(run(&["resume", &id])?.status.code(), Some(2), "gone");
    // Two targets, no reason, a bad duration: bad input, nothing stored.
    for bad in [
        vec![
            "pause", "--group", "g", "--all", "--for", "1h", "--reason", "x",
        ],
        vec!["pause", "--all", "--for", "1h", "--reason", " "],
        vec!["pause", "--all", "--for", "soon", "--reason", "x"],
    ] {
        assert_eq!(run(&bad)?.status.code(), Some(2), "{bad:?}");
    }
    Ok(())
}
