//! A real Alertmanager drives the whole system: `amtool alert add` →
//! Alertmanager (Debian's prometheus-alertmanager, on 127.0.0.1) → its webhook
//! receiver with a bearer token from a file → the `webhook` function under
//! `cargo lambda watch` → the `responder` → moto. Assertions read the
//! emulated account; Alertmanager's own log shows what it sent and retried.

use std::time::Duration;

use anyhow::Result;
use harness::alertmanager::{self, Alertmanager, Receiver};
use harness::prometheus;
use harness::{
    Fleet, Functions, Moto, Watch, desired_capacity, drain, eventually, http_request, snapshots,
};

const TOKEN: &str = "alertmanager-test-token-0123456789";

struct System {
    _moto: Moto,
    sdk: aws_config::SdkConfig,
    fleet: Fleet,
    watch: Watch,
}

/// moto, a seeded fleet, and both functions under `cargo lambda watch`,
/// already built and started (so Alertmanager's first notification does not
/// wait for a compiler).
async fn system() -> Result<System> {
    let Functions {
        moto,
        sdk,
        fleet,
        watch,
    } = Functions::start(TOKEN, &[]).await?;
    let port = watch.port;
    let (s, _) = http_request(port, "GET", &watch.function_url("webhook"), &[], b"")?;
    assert_eq!(s, 401, "the webhook is up, and wants its token");
    http_request(
        port,
        "POST",
        "/2015-03-31/functions/responder/invocations",
        &[("Content-Type", "application/json")],
        b"{}",
    )?;
    Ok(System {
        _moto: moto,
        sdk,
        fleet,
        watch,
    })
}

fn webhook_url(s: &System) -> String {
    format!(
        "http://127.0.0.1:{}{}",
        s.watch.port,
        s.watch.function_url("webhook")
    )
}

fn cpu_labels(fleet: &Fleet) -> Vec<(&'static str, String)> {
    vec![
        ("alertname", "HighCPUUsage".into()),
        // node-exporter's scrape address only, as Prometheus labels it.
        ("instance", format!("{}:9100", fleet.private_ip)),
        ("job", "node-exporter".into()),
        ("severity", "critical".into()),
    ]
}

fn borrowed<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, x)| (*k, x.as_str())).collect()
}

const ANNOTATIONS: [(&str, &str); 3] = [
    ("summary", "High CPU usage detected"),
    (
        "description",
        "CPU usage is above 80% (current value: 95.3%)",
    ),
    ("value", "95.3"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_resolve_and_repeats_through_a_real_alertmanager() -> Result<()> {
    let s = system().await?;
    eprintln!("{}", alertmanager::version()?);
    let url = webhook_url(&s);
    let am = Alertmanager::start(&Receiver {
        url: &url,
        token: TOKEN,
        repeat_interval: "3s",
    })?;
    let labels = cpu_labels(&s.fleet);
    am.add(&borrowed(&labels), &ANNOTATIONS, None)?;

    // Evidence, the scale-out and the notification, read from the account.
    eventually(Duration::from_secs(120), || async {
        let snaps = snapshots(&s.sdk).await?.len();
        let desired = desired_capacity(&s.sdk, &s.fleet.group).await?;
        Ok((snaps == 2 && desired == 2).then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\nalertmanager log:\n{}", am.logs()))?;
    let snaps = snapshots(&s.sdk).await?;
    let incident = snaps[0].tags["first-responder:incident-id"].clone();
    assert!(incident.starts_with("inc-"));
    assert!(
        snaps
            .iter()
            .all(|x| x.tags["first-responder:incident-id"] == incident)
    );
    assert!(
        snaps
            .iter()
            .all(|x| x.tags["first-responder:instance-id"] == s.fleet.instance())
    );
    let first = eventually(Duration::from_secs(30), || async {
        let got = drain(&s.sdk, &s.fleet.inbox_queue_url).await?;
        Ok((!got.is_empty()).then_some(got))
    })
    .await?;
    assert_eq!(first.len(), 1);
    let subject = first[0].subject.clone().unwrap_or_default();
    assert!(subject.starts_with("[ALARM] High CPU 95.3%"), "{subject}");
    assert_eq!(first[0].attribute("incident_id"), Some(incident.as_str()));

    // Alertmanager repeats the group (repeat_interval 3 s): delivered, and
    // nothing is done again.
    eventually(Duration::from_secs(60), || async {
        Ok((am.count("Notify success") >= 2).then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\nalertmanager log:\n{}", am.logs()))?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(snapshots(&s.sdk).await?.len(), 2);
    assert_eq!(desired_capacity(&s.sdk, &s.fleet.group).await?, 2);
    assert!(drain(&s.sdk, &s.fleet.inbox_queue_url).await?.is_empty());

    // Resolved in Alertmanager: the recovery notice, and no remediation.
    let now = chrono::Utc::now() - chrono::Duration::seconds(1);
    am.add(
        &borrowed(&labels),
        &ANNOTATIONS,
        Some(&now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    )?;
    let resolved = eventually(Duration::from_secs(60), || async {
        let got = drain(&s.sdk, &s.fleet.inbox_queue_url).await?;
        Ok((!got.is_empty()).then_some(got))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\nalertmanager log:\n{}", am.logs()))?;
    let subject = resolved[0].subject.clone().unwrap_or_default();
    assert!(
        subject.starts_with("[OK] Resolved: HighCPUUsage"),
        "{subject}"
    );
    assert_eq!(snapshots(&s.sdk).await?.len(), 2);
    assert_eq!(desired_capacity(&s.sdk, &s.fleet.group).await?, 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_gets_401_and_alertmanager_does_not_retry_it() -> Result<()> {
    let s = system().await?;
    let url = webhook_url(&s);
    let am = Alertmanager::start(&Receiver {
        url: &url,
        token: "not-the-token-0000000000000000",
        repeat_interval: "1h",
    })?;
    am.add(&borrowed(&cpu_labels(&s.fleet)), &ANNOTATIONS, None)?;
    eventually(Duration::from_secs(60), || async {
        Ok((am.count("Notify for alerts failed") >= 1).then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\nalertmanager log:\n{}", am.logs()))?;
    let log = am.logs();
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Notify for alerts failed"))
        .collect();
    for line in &failed {
        assert!(line.contains("401"), "{line}");
        assert!(
            line.contains("unrecoverable error after 1 attempts"),
            "a 4xx is not retried: {line}"
        );
    }
    assert!(!log.contains("will retry later"), "{log}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(snapshots(&s.sdk).await?.is_empty());
    assert_eq!(desired_capacity(&s.sdk, &s.fleet.group).await?, 1);
    assert!(drain(&s.sdk, &s.fleet.inbox_queue_url).await?.is_empty());
    Ok(())
}

/// The whole chain as users run it: Debian's Prometheus scrapes Debian's
/// node exporter (on 127.0.0.1; the `instance` label rewritten by
/// `relabel_configs` to the seeded instance's address, which nothing
/// contacts) and evaluates the shipped rules, their `for` shortened; the
/// exporter stops, `ServiceDown` fires for it, and Prometheus → Alertmanager
/// → webhook → responder → the emulated account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_scrape_target_pages_through_prometheus_and_alertmanager() -> Result<()> {
    let s = system().await?;
    let url = webhook_url(&s);
    let am = Alertmanager::start(&Receiver {
        url: &url,
        token: TOKEN,
        repeat_interval: "1h",
    })?;
    let shipped =
        std::fs::read_to_string(harness::root().join("infra/prometheus/alert_rules.yml"))?;
    let rules = prometheus::quick_rules(&shipped)?;
    let mut target = prometheus::node_exporter()?;
    let address = format!("{}:9100", s.fleet.private_ip);
    let prom = prometheus::prometheus(&rules, target.port, &address, am.port)?;
    // Scraped and up first, so what follows is the target going down.
    let up = format!(
        "/api/v1/query?query=up%7Binstance%3D%22{}%22%7D",
        address.replace(':', "%3A")
    );
    eventually(Duration::from_secs(30), || async {
        let (status, body) = http_request(prom.port, "GET", &up, &[], b"")?;
        Ok(
            (status == 200 && body.contains(r#""value":["#) && body.contains(r#","1"]"#))
                .then_some(()),
        )
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\nprometheus log:\n{}", prom.logs()))?;
    let stopped = std::time::Instant::now();
    target.stop();
    // The ServiceDown notification, read from the account (a busy machine
    // may also fire HighCPUUsage: only ServiceDown is looked for).
    let down = eventually(Duration::from_secs(120), || async {
        let got = drain(&s.sdk, &s.fleet.inbox_queue_url).await?;
        Ok(got
            .into_iter()
            .find(|m| m.document().is_ok_and(|d| d["kind"] == "service_down")))
    })
    .await
    .map_err(|e| {
        anyhow::anyhow!(
            "{e}\nprometheus log:\n{}\nalertmanager log:\n{}",
            prom.logs(),
            am.logs()
        )
    })?;
    eprintln!(
        "ServiceDown reached the inbox {:?} after the target stopped",
        stopped.elapsed()
    );
    let doc = down.document()?;
    assert_eq!(doc["source"], "alertmanager");
    assert_eq!(doc["alarm"]["name"], "ServiceDown");
    assert_eq!(doc["instance"], s.fleet.instance());
    assert_eq!(
        doc["alarm"]["metric"]["dimensions"]["instance"],
        address.as_str()
    );
    assert_eq!(doc["alarm"]["metric"]["dimensions"]["job"], "node-exporter");
    // A failed scrape is not a dead instance: EC2 says it is fine, so
    // nothing is replaced or rebooted, and the page says why.
    let actions = doc["actions"].as_array().cloned().unwrap_or_default();
    let replace = actions
        .iter()
        .find(|a| a["action"] == "replace_instance")
        .ok_or_else(|| anyhow::anyhow!("no replace_instance in {doc:#}"))?;
    assert_eq!(replace["status"], "skipped", "{replace:#}");
    assert_eq!(desired_capacity(&s.sdk, &s.fleet.group).await?, 1);
    Ok(())
}
