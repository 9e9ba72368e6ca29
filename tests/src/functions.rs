//! Both functions under `cargo lambda watch`, and plain HTTP to them.

use anyhow::{Context, Result, bail};
use aws_config::SdkConfig;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

/// The parameter the webhook reads its token from, in the tests.
pub const TOKEN_PARAMETER: &str = "/first-responder/webhook-token";

/// The parameter both functions read the approval links' key from, and the
/// key the tests put there (so a test can sign a link of its own, e.g. an
/// expired one).
pub const APPROVAL_KEY_PARAMETER: &str = "/first-responder/approval-key";

pub const APPROVAL_KEY: &str = "approval-test-key-0123456789abcdef0123456789";

/// moto, a seeded fleet, the webhook's token in an SSM SecureString, and both
/// functions under `cargo lambda watch`: the webhook's Lambda client pointed
/// at it, every other AWS call at moto.
pub struct Functions {
    pub moto: Moto,
    pub sdk: SdkConfig,
    pub fleet: Fleet,
    pub watch: Watch,
}

impl Functions {
    /// `extra`: more of the functions' environment (`ROUTES`, ...).
    pub async fn start(token: &str, extra: &[(&str, String)]) -> Result<Self> {
        let moto = Moto::start()?;
        let sdk = moto.sdk().await;
        let fleet = seed(&sdk, FleetSpec::default()).await?;
        // Read once at the functions' start, as in AWS.
        put_secret(&sdk, TOKEN_PARAMETER, token).await?;
        put_secret(&sdk, APPROVAL_KEY_PARAMETER, APPROVAL_KEY).await?;
        let port = free_port()?;
        let mut env = aws_env(&moto.endpoint);
        env.extend([
            (
                "AWS_ENDPOINT_URL_LAMBDA",
                format!("http://127.0.0.1:{port}"),
            ),
            ("NOTIFY_TOPIC_ARN", fleet.topic_arn.clone()),
            ("WEBHOOK_TOKEN_PARAMETER", TOKEN_PARAMETER.to_owned()),
            ("RESPONDER_FUNCTION", "responder".to_owned()),
            ("STATE_TABLE", fleet.state_table.clone()),
            ("DIAGNOSTICS_TIMEOUT_SECONDS", "20".to_owned()),
            // Approval links point back at the webhook as served here.
            ("APPROVAL_KEY_PARAMETER", APPROVAL_KEY_PARAMETER.to_owned()),
            (
                "APPROVAL_BASE_URL",
                format!("http://127.0.0.1:{port}/lambda-url/webhook/"),
            ),
        ]);
        env.extend(extra.iter().cloned());
        let watch = Watch::start(port, &env)?;
        Ok(Self {
            moto,
            sdk,
            fleet,
            watch,
        })
    }
}

/// `cargo lambda watch` serving every function of the workspace on a free
/// 127.0.0.1 port, with the given environment; stopped (whole process group)
/// on drop.
pub struct Watch {
    child: Child,
    pub port: u16,
    /// Where the functions' stdout and stderr go (logs, EMF metric lines).
    pub log: PathBuf,
}

impl Watch {
    pub fn start(port: u16, env: &[(&str, String)]) -> Result<Self> {
        use std::os::unix::process::CommandExt;
        let venv_bin = root().join(".venv/bin");
        if !venv_bin.join("cargo-lambda").exists() {
            bail!(
                "cargo-lambda not found in {}: run `make test`",
                venv_bin.display()
            );
        }
        let path = format!(
            "{}:{}",
            venv_bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let log_path = std::env::temp_dir().join(format!("first-responder-watch-{port}.log"));
        let log = std::fs::File::create(&log_path)?;
        let mut cmd = Command::new("cargo");
        cmd.args([
            "lambda",
            "watch",
            // No reload: a file written into the checkout mid-test would
            // restart the functions and lose the invocation in flight.
            "--ignore-changes",
            // The test build's dependency features: the SDK make test
            // already compiled (tests/deps/Cargo.toml).
            "--features",
            "test-deps",
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            &port.to_string(),
        ])
        .current_dir(root())
        .env("PATH", path)
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .process_group(0);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().context("starting cargo lambda watch")?;
        // The first request may build a function; the port opens before that.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = child.try_wait()? {
                bail!("cargo lambda watch exited: {status}");
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(Self {
                    child,
                    port,
                    log: log_path,
                });
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("cargo lambda watch did not listen on 127.0.0.1:{port}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn function_url(&self, function: &str) -> String {
        format!("/lambda-url/{function}/")
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 client for loopback tests: one request, `Connection: close`.
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").context("no end of headers")?;
    let status: u16 = head.split(' ').nth(1).context("no status")?.parse()?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_owned()
    };
    Ok((status, body))
}

pub(crate) fn dechunk(mut rest: &str) -> Result<String> {
    let mut out = String::new();
    loop {
        let (size, tail) = rest.split_once("\r\n").context("bad chunk")?;
        let n = usize::from_str_radix(size.trim(), 16)?;
        if n == 0 {
            return Ok(out);
        }
        out.push_str(tail.get(..n).context("short chunk")?);
        rest = tail.get(n + 2..).context("short chunk")?;
    }
}
