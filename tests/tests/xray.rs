//! With active tracing, every action the responder carries out is an X-Ray
//! subsegment of the invocation, sent to the daemon's UDP address. Here the
//! "daemon" is a socket on 127.0.0.1. (Its own binary: it sets process-wide
//! environment variables, as Lambda does.)

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::time::Duration;

use anyhow::Result;
use harness::{FleetSpec, World};

#[tokio::test]
async fn each_action_is_a_subsegment_of_the_invocation() -> Result<()> {
    let daemon = UdpSocket::bind("127.0.0.1:0")?;
    daemon.set_read_timeout(Some(Duration::from_secs(5)))?;
    let root = "1-674401a0-0123456789abcdef01234567";
    // SAFETY: this test binary has one test; nothing else reads the environment concurrently.
    unsafe {
        std::env::set_var("AWS_XRAY_DAEMON_ADDRESS", daemon.local_addr()?.to_string());
        std::env::set_var(
            "_X_AMZN_TRACE_ID",
            format!("Root={root};Parent=53995c3f42cd8ad8;Sampled=1"),
        );
    }
    let w = World::start(FleetSpec::default()).await?;
    let r = w.run_sample("high-cpu-alarm.json").await?;
    let incident = r.incidents[0].id.clone();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut buf = [0u8; 65536];
    while let Ok(n) = daemon.recv(&mut buf) {
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let (head, body) = text.split_once('\n').unwrap_or_default();
        assert_eq!(head, r#"{"format":"json","version":1}"#);
        let doc: serde_json::Value = serde_json::from_str(body)?;
        assert_eq!(doc["trace_id"], root);
        assert_eq!(doc["parent_id"], "53995c3f42cd8ad8");
        assert_eq!(doc["annotations"]["incident_id"], incident.as_str());
        assert!(doc["end_time"].as_f64() >= doc["start_time"].as_f64());
        *seen
            .entry(doc["name"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
        if seen.values().sum::<usize>() == 4 {
            break;
        }
    }
    assert_eq!(
        seen,
        BTreeMap::from([
            ("collect_diagnostics".to_owned(), 1),
            ("notify".to_owned(), 1),
            ("scale_out".to_owned(), 1),
            ("snapshot".to_owned(), 1),
        ])
    );
    Ok(())
}
