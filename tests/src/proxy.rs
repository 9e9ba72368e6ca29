//! A fault-injecting HTTP proxy on 127.0.0.1 in front of moto: added latency,
//! throttling errors in each service's own wire format, bare 503s and
//! dropped connections. Random faults are injected before a request reaches
//! the emulator, so a failed call has not acted. Targeted [`Rule`]s add the
//! rest: a named EC2 error for one action (what moto never answers, such as
//! `VolumeModificationRateExceeded`), and a response lost after the emulator
//! acted (the call happened, the caller never heard).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// Share of requests that fail (0.0 to 1.0).
    pub fail_ratio: f64,
    /// Added to every request before it is forwarded.
    pub latency: Duration,
    /// Seed of the deterministic choice of failing requests.
    pub seed: u64,
    /// Targeted faults, each applied to the first `times` matching requests.
    pub rules: &'static [Rule],
    /// Forward one DynamoDB request at a time. moto applies a DynamoDB `ADD`
    /// as a read and a write without a lock, so concurrent counter updates
    /// that DynamoDB makes atomic can lose one there. Other services' calls
    /// go on beside them (serialising every call made a storm of 50
    /// incidents outlast a test's 3 minutes on a busy machine).
    pub one_at_a_time: bool,
    /// SSM Run Command's own time, which moto does not take (it answers
    /// `Success` at once): a command whose comment is `first-responder
    /// WORD for …` is `InProgress` for this long after its `SendCommand`,
    /// as SSM answers `GetCommandInvocation` while the agent works.
    pub ssm_delays: &'static [(&'static str, Duration)],
    /// What the instance prints for a command whose comment is
    /// `first-responder WORD for …` (moto prints nothing): for `make bench`,
    /// the `lsblk` of a Nitro instance, so its playbooks run as on one.
    pub ssm_outputs: &'static [(&'static str, &'static str)],
}

#[derive(Clone, Copy, Debug)]
pub struct Rule {
    /// The API action, as the request names it (`ModifyVolume`, or for JSON
    /// protocols the `X-Amz-Target` suffix such as `PutItem`), optionally
    /// followed by a space and text the request must hold
    /// (`PutItem #scale_out#web-asg`: one claim among the table's writes).
    pub action: &'static str,
    pub fault: Fault,
    pub times: u64,
}

#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// Answer with this EC2 error code (HTTP 400) instead of forwarding.
    Ec2Error(&'static str),
    /// Answer with this error code in the query protocol's form (STS, IAM,
    /// Auto Scaling): HTTP 403 for `AccessDenied`, 400 otherwise.
    QueryError(&'static str),
    /// Forward, let the emulator act, then close without answering.
    LoseResponse,
    /// Hold the request and never forward it: the caller waits (until its
    /// own timeout, or until the test kills it).
    Hang,
    /// Forward, let the emulator act, then hold the answer back forever.
    ForwardThenHang,
    /// Forward untouched: only counted (`Stats::rule_hits`).
    Count,
}

#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub throttled: AtomicU64,
    pub unavailable: AtomicU64,
    pub dropped: AtomicU64,
    /// Requests each rule applied to, by rule index.
    pub rule_hits: std::sync::Mutex<Vec<u64>>,
    /// Held while a request is upstream, with `one_at_a_time`.
    upstream_busy: std::sync::atomic::AtomicBool,
    /// What each SSM command (by id) prints (`Faults::ssm_outputs`).
    ssm_output: std::sync::Mutex<std::collections::HashMap<String, &'static str>>,
    /// When each delayed SSM command (by id) is done (`Faults::ssm_delays`).
    ssm_done_at: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
    /// When each SNS `Publish` was answered, in order.
    pub publishes: std::sync::Mutex<Vec<std::time::SystemTime>>,
    /// Requests by `service:Operation` (the signing scope's service; for
    /// `make bench`'s cost per incident).
    pub by_operation: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
}

impl Stats {
    pub fn injected(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
            + self.unavailable.load(Ordering::Relaxed)
            + self.dropped.load(Ordering::Relaxed)
    }
}

pub struct FaultProxy {
    pub endpoint: String,
    pub stats: Arc<Stats>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    pub async fn start(upstream: &str, faults: Faults) -> Result<Self> {
        Self::start_routed(upstream, None, faults).await
    }

    /// With CloudWatch's RPC v2 CBOR requests sent to `cloudwatch` (the
    /// bridge to moto's JSON protocol) and everything else to `upstream`,
    /// so clients built from one endpoint (a member account's, made by the
    /// product from the central configuration) reach CloudWatch too.
    pub async fn start_routed(
        upstream: &str,
        cloudwatch: Option<&str>,
        faults: Faults,
    ) -> Result<Self> {
        let upstream = Upstreams {
            default: upstream.trim_start_matches("http://").to_owned(),
            cloudwatch: cloudwatch.map(|c| c.trim_start_matches("http://").to_owned()),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let stats = Arc::new(Stats::default());
        let (st, up) = (stats.clone(), upstream);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (st, up) = (st.clone(), up.clone());
                tokio::spawn(async move {
                    let _ = serve(client, &up, faults, &st).await;
                });
            }
        });
        Ok(Self {
            endpoint,
            stats,
            task,
        })
    }
}

/// splitmix64 of the request number: the same seed fails the same requests.
fn roll(seed: u64, n: u64) -> f64 {
    let mut z = seed.wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

async fn read_request(client: &mut TcpStream) -> Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(Some(buf))
}

/// The service a request is for, from its SigV4 credential scope.
fn service(request: &[u8]) -> String {
    let text = String::from_utf8_lossy(&request[..request.len().min(4096)]).to_ascii_lowercase();
    text.split("credential=")
        .nth(1)
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or_default()
        .to_owned()
}

fn throttle_response(service: &str) -> String {
    let (status, ctype, body) = match service {
        "ec2" => (
            "503 Service Unavailable",
            "text/xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>".to_owned(),
        ),
        "autoscaling" | "sns" | "sts" => (
            "400 Bad Request",
            "text/xml",
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>".to_owned(),
        ),
        _ => (
            "400 Bad Request",
            "application/x-amz-json-1.1",
            "{\"__type\":\"ThrottlingException\",\"message\":\"Rate exceeded\"}".to_owned(),
        ),
    };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Keeps a connection open without answering, until the caller goes away.
async fn hold(mut client: TcpStream) {
    let mut sink = [0u8; 1024];
    while let Ok(n) = client.read(&mut sink).await {
        if n == 0 {
            break;
        }
    }
}

/// The first rule that applies to this request, counted as applied.
fn rule_for(request: &[u8], faults: &Faults, stats: &Stats) -> Option<Fault> {
    let text = String::from_utf8_lossy(request);
    let mut hits = stats.rule_hits.lock().ok()?;
    hits.resize(faults.rules.len(), 0);
    for (i, r) in faults.rules.iter().enumerate() {
        // `OPERATION NEEDLE`: that operation, only when its request holds
        // NEEDLE (one DynamoDB write among many, by its key).
        let (action, needle) = r.action.split_once(' ').unwrap_or((r.action, ""));
        let r = &Rule { action, ..*r };
        if !text.contains(needle) {
            continue;
        }
        let named = text.contains(&format!("Action={}&", r.action))
            || text.ends_with(&format!("Action={}", r.action))
            || text.starts_with(&format!("POST {CBOR_PATH}{} ", r.action))
            || text.lines().any(|l| {
                l.to_ascii_lowercase().starts_with("x-amz-target:")
                    && l.trim_end().ends_with(&format!(".{}", r.action))
            });
        if named && hits[i] < r.times {
            hits[i] += 1;
            return Some(r.fault);
        }
    }
    None
}

fn ec2_error(code: &str) -> String {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{code}</Code><Message>injected by the fault proxy</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>"
    );
    format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn query_error(code: &str) -> String {
    let status = match code {
        "AccessDenied" => "403 Forbidden",
        _ => "400 Bad Request",
    };
    let body = format!(
        "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>injected by the fault proxy</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>"
    );
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Where requests go: CloudWatch's CBOR ones to the bridge, when there is one.
#[derive(Clone)]
struct Upstreams {
    default: String,
    cloudwatch: Option<String>,
}

/// The path of CloudWatch's RPC v2 CBOR requests; the operation follows.
const CBOR_PATH: &str = "/service/GraniteServiceVersion20100801/operation/";

async fn serve(
    mut client: TcpStream,
    upstreams: &Upstreams,
    faults: Faults,
    stats: &Stats,
) -> Result<()> {
    let Some(request) = read_request(&mut client).await? else {
        return Ok(());
    };
    let n = stats.requests.fetch_add(1, Ordering::Relaxed);
    // Parsed once: counted here, acted on after the faults.
    let action = action_of(&request);
    if let Ok(mut ops) = stats.by_operation.lock() {
        let key = format!(
            "{}:{}",
            service(&request),
            action.as_deref().unwrap_or_default()
        );
        *ops.entry(key).or_insert(0) += 1;
    }
    tokio::time::sleep(faults.latency).await;
    let rule = rule_for(&request, &faults, stats);
    match rule {
        Some(Fault::Ec2Error(code)) => {
            client.write_all(ec2_error(code).as_bytes()).await?;
            return Ok(());
        }
        Some(Fault::QueryError(code)) => {
            client.write_all(query_error(code).as_bytes()).await?;
            return Ok(());
        }
        Some(Fault::Hang) => {
            hold(client).await;
            return Ok(());
        }
        _ => {}
    }
    if rule.is_none() && roll(faults.seed, n) < faults.fail_ratio {
        match n % 3 {
            0 => {
                stats.throttled.fetch_add(1, Ordering::Relaxed);
                client
                    .write_all(throttle_response(&service(&request)).as_bytes())
                    .await?;
            }
            1 => {
                stats.unavailable.fetch_add(1, Ordering::Relaxed);
                client
                    .write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await?;
            }
            _ => {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        return Ok(());
    }
    if action.as_deref() == Some("GetCommandInvocation")
        && let Some(answer) = still_running(&request, stats)
    {
        client.write_all(answer.as_bytes()).await?;
        return Ok(());
    }
    // One request per upstream connection; the answer ends at close.
    let text = String::from_utf8_lossy(&request);
    let head_end = text.find("\r\n\r\n").context("no head")? + 4;
    let mut head: Vec<String> = request[..head_end - 4]
        .split(|b| *b == b'\n')
        .map(|l| String::from_utf8_lossy(l).trim_end_matches('\r').to_owned())
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    head.push("Connection: close".into());
    let mut forwarded = head.join("\r\n").into_bytes();
    forwarded.extend_from_slice(b"\r\n\r\n");
    forwarded.extend_from_slice(&request[head_end..]);
    let serialise = faults.one_at_a_time
        && text.lines().any(|l| {
            l.to_ascii_lowercase()
                .starts_with("x-amz-target: dynamodb_")
        });
    if serialise {
        while stats.upstream_busy.swap(true, Ordering::Acquire) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let cbor = text
        .split(' ')
        .nth(1)
        .is_some_and(|p| p.starts_with(CBOR_PATH));
    let upstream = match (&upstreams.cloudwatch, cbor) {
        (Some(c), true) => c.as_str(),
        _ => upstreams.default.as_str(),
    };
    let exchange = async {
        let mut up = TcpStream::connect(upstream).await?;
        up.write_all(&forwarded).await?;
        let mut response = Vec::new();
        up.read_to_end(&mut response).await?;
        anyhow::Ok(response)
    }
    .await;
    if serialise {
        stats.upstream_busy.store(false, Ordering::Release);
    }
    let response = exchange?;
    match rule {
        // The emulator acted; the caller sees the connection close.
        Some(Fault::LoseResponse) => return Ok(()),
        Some(Fault::ForwardThenHang) => {
            hold(client).await;
            return Ok(());
        }
        _ => {}
    }
    match action.as_deref() {
        Some("SendCommand") => delay_command(&request, &response, &faults, stats),
        Some("Publish") => {
            if let Ok(mut p) = stats.publishes.lock() {
                p.push(std::time::SystemTime::now());
            }
        }
        Some("GetCommandInvocation") => {
            if let Some(r) = with_output(&request, &response, stats) {
                client.write_all(r.as_bytes()).await?;
                client.shutdown().await?;
                return Ok(());
            }
        }
        _ => {}
    }
    client.write_all(&response).await?;
    client.shutdown().await?;
    Ok(())
}

/// The API action a request names: the `X-Amz-Target` suffix of a JSON
/// protocol, or the query protocol's `Action=` parameter.
fn action_of(request: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(request);
    let (head, body) = text.split_once("\r\n\r\n")?;
    // RPC v2 CBOR (CloudWatch): the operation is the path's last segment.
    if let Some(op) = head
        .split(' ')
        .nth(1)
        .and_then(|p| p.strip_prefix(CBOR_PATH))
    {
        return Some(op.to_owned());
    }
    if let Some(t) = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("x-amz-target")
            .then(|| v.trim().to_owned())
    }) {
        return t.rsplit('.').next().map(str::to_owned);
    }
    body.split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
        .map(str::to_owned)
}

fn json_body(message: &[u8]) -> Option<serde_json::Value> {
    let at = message.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    serde_json::from_slice(&message[at..]).ok()
}

/// Remembers when a delayed command is done, from its comment's word.
fn delay_command(request: &[u8], response: &[u8], faults: &Faults, stats: &Stats) {
    let (Some(req), Some(resp)) = (json_body(request), json_body(response)) else {
        return;
    };
    let comment = req["Comment"].as_str().unwrap_or_default();
    if let (Some((_, out)), Some(id), Ok(mut m)) = (
        faults
            .ssm_outputs
            .iter()
            .find(|(word, _)| comment.starts_with(&format!("first-responder {word} for"))),
        resp["Command"]["CommandId"].as_str(),
        stats.ssm_output.lock(),
    ) {
        m.insert(id.to_owned(), out);
    }
    let Some((_, delay)) = faults
        .ssm_delays
        .iter()
        .find(|(word, _)| comment.starts_with(&format!("first-responder {word} for")))
    else {
        return;
    };
    if let (Some(id), Ok(mut m)) = (
        resp["Command"]["CommandId"].as_str(),
        stats.ssm_done_at.lock(),
    ) {
        m.insert(id.to_owned(), std::time::Instant::now() + *delay);
    }
}

/// moto's answer for a finished command with what the instance printed in
/// place of its empty output (`Faults::ssm_outputs`).
fn with_output(request: &[u8], response: &[u8], stats: &Stats) -> Option<String> {
    let id = json_body(request)?["CommandId"].as_str()?.to_owned();
    let out = *stats.ssm_output.lock().ok()?.get(&id)?;
    let mut body = json_body(response)?;
    if body["Status"] != "Success" {
        return None;
    }
    body["StandardOutputContent"] = serde_json::Value::String(out.to_owned());
    let body = body.to_string();
    Some(format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ))
}

/// SSM's answer for a delayed command that is not done yet.
fn still_running(request: &[u8], stats: &Stats) -> Option<String> {
    let req = json_body(request)?;
    let id = req["CommandId"].as_str()?;
    let done_at = *stats.ssm_done_at.lock().ok()?.get(id)?;
    if std::time::Instant::now() >= done_at {
        return None;
    }
    let body = serde_json::json!({
        "CommandId": id,
        "InstanceId": req["InstanceId"],
        "DocumentName": "AWS-RunShellScript",
        "Status": "InProgress",
        "StatusDetails": "InProgress",
        "ResponseCode": -1,
        "StandardOutputContent": "",
        "StandardErrorContent": "",
    })
    .to_string();
    Some(format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ))
}
