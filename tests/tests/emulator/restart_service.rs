//! restart_service on the instance stand-in. There is no systemd in the
//! sandbox: `systemctl` and `journalctl` are shims on its PATH
//! (`tests/src/standin/`) that play a unit's behaviour from a state file
//! (active, failed, start-limit-hit, dies N s after a restart, crash-loops
//! under `Restart=on-failure`). The product's script runs for real against
//! them under dash; what is tested is its logic (reset, restart, the watch,
//! NRestarts, the journal) and the outcome it leads to, not systemd itself.

use anyhow::Result;
use first_responder::Mode;
use first_responder::report::ActionReport;
use harness::ssm::{Instance, SsmStandIn, UNIT_STATES};
use harness::{FleetSpec, World, drain, sample_event};

struct Setup {
    w: World,
    _standin: SsmStandIn,
    sandbox: std::sync::Arc<Instance>,
    event: String,
}

/// A memory-pressure incident on an instance whose tag names `app`,
/// watched for `settle` seconds.
async fn setup(settle: u32) -> Result<Setup> {
    let mut w = World::start(FleetSpec::default()).await?;
    let standin = SsmStandIn::start(&w.moto.endpoint).await?;
    let sandbox = standin.add(w.fleet.instance(), Instance::start("")?);
    w.engine.aws.ssm = standin.client(&w.sdk).into();
    let instance = w.fleet.instance().to_owned();
    harness::tag(&w.sdk, &instance, "first-responder:restart-service", "app").await?;
    let pb = &mut w.config.playbooks.memory_pressure.restart_service;
    pb.cooldown_minutes = 1;
    pb.restart_settle_seconds = settle;
    let event = sample_event("memory-pressure-alarm.json", &instance)?;
    Ok(Setup {
        w,
        _standin: standin,
        sandbox,
        event,
    })
}

impl Setup {
    /// The unit behaves as `state` says; the incident runs `hour` hours
    /// after the sample's (a new occurrence, past the cooldown).
    async fn restart(&self, state: &str, journal: &str, hour: u32) -> Result<ActionReport> {
        self.sandbox
            .sh(&format!(
                "echo '{state}' > {UNIT_STATES}/app.service; printf '%s\\n' '{journal}' > {UNIT_STATES}/app.service.journal; rm -f {UNIT_STATES}/app.service.calls"
            ))
            .await?;
        let event = self.event.replace(
            "2026-11-25T02:04:12.152",
            &format!("2026-11-25T{:02}:04:12.152", 2 + hour),
        );
        let r = self.w.handle_text(&event, Mode::Run).await?;
        r.incidents[0]
            .actions
            .iter()
            .find(|a| a.action.as_str() == "restart_service")
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no restart_service in {r:#?}"))
    }

    async fn calls(&self) -> Result<Vec<String>> {
        Ok(self
            .sandbox
            .sh(&format!("cat {UNIT_STATES}/app.service.calls"))
            .await?
            .lines()
            .map(|l| l.split_whitespace().next().unwrap_or_default().to_owned())
            .collect())
    }
}

#[tokio::test]
async fn a_unit_that_stays_up_is_done_and_one_that_dies_after_two_seconds_is_failed() -> Result<()>
{
    let s = setup(4).await?;
    let r = s.restart("active", "", 0).await?;
    assert_eq!(r.status.as_str(), "done", "{r:?}");
    assert_eq!(
        r.detail.as_deref(),
        Some("restarted app.service: active for 4 s without restarting"),
        "{r:?}"
    );
    let log = s
        .sandbox
        .sh(&format!("cat {UNIT_STATES}/app.service.log"))
        .await?;
    assert_eq!(log.lines().count(), 1, "one restart: {log}");
    // The report's email carries the diagnostics the instance printed.
    let inbox = drain(&s.w.sdk, &s.w.fleet.inbox_queue_url).await?;
    let email = harness::the_report(&inbox)?.text()?;
    assert!(email.contains("== top processes by memory =="), "{email}");

    // Up for 2 s after the restart, then failed (Restart=no): not fixed.
    let r = s
        .restart(
            "dies-after 2",
            "app[812]: panic: cannot bind 0.0.0.0:8080",
            1,
        )
        .await?;
    assert_eq!(r.status.as_str(), "failed", "{r:?}");
    // (After 2 s by the watch's half-second polls; 1 on a slow machine.)
    assert!(
        r.reason
            .contains("restarted app.service, but it is failed after "),
        "{r:?}"
    );
    assert!(
        r.reason.contains(
            ": look at it now; its journal ends: \"app[812]: panic: cannot bind 0.0.0.0:8080\""
        ),
        "{r:?}"
    );
    assert!(
        r.output
            .as_deref()
            .unwrap_or_default()
            .contains("== journal =="),
        "{r:?}"
    );

    // Restarted by systemd every second (Restart=on-failure): it looks
    // active whenever asked, but NRestarts grew during the watch.
    let r = s
        .restart("crashloop 1", "app[900]: exited, status=1/FAILURE", 2)
        .await?;
    assert_eq!(r.status.as_str(), "failed", "{r:?}");
    assert!(
        r.reason
            .contains("systemd restarted it again within 4 s (NRestarts 0 -> "),
        "{r:?}"
    );
    assert!(r.reason.contains("it is crashing"), "{r:?}");
    Ok(())
}

#[tokio::test]
async fn a_unit_at_its_start_limit_is_reset_before_the_restart() -> Result<()> {
    let s = setup(1).await?;
    let r = s.restart("start-limit-hit", "", 0).await?;
    assert_eq!(r.status.as_str(), "done", "{r:?}");
    assert_eq!(
        r.detail.as_deref(),
        Some(
            "restarted app.service (its start limit was hit: reset first): active for 1 s without restarting"
        ),
        "{r:?}"
    );
    let calls = s.calls().await?;
    let reset = calls.iter().position(|c| c == "reset-failed");
    let restart = calls.iter().position(|c| c == "restart");
    assert!(reset.is_some() && reset < restart, "{calls:?}");

    // A unit that cannot be restarted at all: failed, with the exit.
    let r = s.restart("missing", "", 1).await?;
    assert_eq!(r.status.as_str(), "failed", "{r:?}");
    assert!(
        r.reason.contains("systemctl restart app.service exited 5"),
        "{r:?}"
    );
    Ok(())
}
