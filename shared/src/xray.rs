//! One X-Ray subsegment per action. With active tracing, Lambda traces each
//! invocation and the Rust runtime puts its trace header in
//! `_X_AMZN_TRACE_ID`; the SDK already forwards that header on every AWS call.
//! This adds the actions themselves as subsegments of the invocation, sent as
//! UDP segment documents to the X-Ray daemon (`AWS_XRAY_DAEMON_ADDRESS`), which
//! Lambda runs beside the function. Without both variables nothing is sent.
//! (No maintained X-Ray client exists for Rust; the document format is small.)

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::net::UdpSocket;

use serde_json::json;

/// The parts of an `X-Amzn-Trace-Id` header a subsegment needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceHeader {
    pub root: String,
    pub parent: String,
    pub sampled: bool,
}

/// `Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1`
pub fn parse_header(h: &str) -> Option<TraceHeader> {
    let mut root = None;
    let mut parent = None;
    let mut sampled = false;
    for part in h.split(';') {
        match part.trim().split_once('=') {
            Some(("Root", v)) if v.starts_with("1-") && v.len() <= 64 => root = Some(v),
            Some(("Parent", v)) if v.len() == 16 && v.bytes().all(|b| b.is_ascii_hexdigit()) => {
                parent = Some(v)
            }
            Some(("Sampled", v)) => sampled = v == "1",
            _ => {}
        }
    }
    Some(TraceHeader {
        root: root?.to_owned(),
        parent: parent?.to_owned(),
        sampled,
    })
}

/// A subsegment document, header line included, ready for the daemon.
pub fn subsegment(
    trace: &TraceHeader,
    id: u64,
    name: &str,
    start: f64,
    end: f64,
    annotations: &BTreeMap<&str, String>,
    error: bool,
) -> String {
    let doc = json!({
        "name": name,
        "id": format!("{id:016x}"),
        "trace_id": trace.root,
        "parent_id": trace.parent,
        "type": "subsegment",
        "start_time": start,
        "end_time": end,
        "error": error,
        "annotations": annotations,
    });
    format!("{{\"format\":\"json\",\"version\":1}}\n{doc}")
}

/// Sends one action's subsegment, if this invocation is traced and sampled.
/// Best effort: tracing never fails an action.
pub fn record_action(
    name: &str,
    start: f64,
    end: f64,
    annotations: &BTreeMap<&str, String>,
    error: bool,
) {
    let (Ok(header), Ok(daemon)) = (
        std::env::var("_X_AMZN_TRACE_ID"),
        std::env::var("AWS_XRAY_DAEMON_ADDRESS"),
    ) else {
        return;
    };
    let Some(trace) = parse_header(&header).filter(|t| t.sampled) else {
        return;
    };
    // The daemon address may list a UDP and a TCP address: "udp:host:port tcp:...".
    let udp = daemon
        .split_whitespace()
        .find_map(|a| a.strip_prefix("udp:"))
        .unwrap_or(daemon.as_str())
        .to_owned();
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write(name.as_bytes());
    h.write_u64(end.to_bits());
    let doc = subsegment(&trace, h.finish(), name, start, end, annotations, error);
    let bind = if udp.starts_with("127.") {
        "127.0.0.1:0"
    } else {
        "0.0.0.0:0"
    };
    if let Ok(sock) = UdpSocket::bind(bind) {
        let _ = sock.send_to(doc.as_bytes(), udp.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_documents() {
        let t = parse_header(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        )
        .unwrap();
        assert!(t.sampled);
        assert_eq!(t.parent, "53995c3f42cd8ad8");
        assert!(parse_header("Root=1-5759e988-bd862e3fe1be46a994272793").is_none());
        assert!(
            !parse_header("Root=1-a-b;Parent=53995c3f42cd8ad8;Sampled=0")
                .unwrap()
                .sampled
        );
        let ann = BTreeMap::from([("incident_id", "inc-1".to_owned())]);
        let d = subsegment(&t, 255, "snapshot", 1.5, 2.0, &ann, false);
        let (head, body) = d.split_once('\n').unwrap();
        assert_eq!(head, r#"{"format":"json","version":1}"#);
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["id"], "00000000000000ff");
        assert_eq!(v["trace_id"], "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(v["parent_id"], "53995c3f42cd8ad8");
        assert_eq!(v["annotations"]["incident_id"], "inc-1");
        assert_eq!(v["type"], "subsegment");
    }
}
