//! moto's server on a free loopback port, and the SDK's configuration for it.

use anyhow::{Context, Result, anyhow, bail};
use aws_config::SdkConfig;
use aws_sdk_ec2::config::Credentials;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::*;

/// The workspace root (where `events/` and `.venv/` live).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub(crate) fn moto_server_bin() -> Result<PathBuf> {
    let path = std::env::var_os("MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv/bin/moto_server"));
    if !path.exists() {
        bail!(
            "{} not found: run `make test`, which installs the pinned moto into .venv",
            path.display()
        );
    }
    Ok(path)
}

pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// An empty moto server of this test's own, forked from a warm parent
/// (`tests/moto_zygote.py`); it exits when this handle is dropped, or when
/// the test's process dies.
pub struct Moto {
    /// Held open for the server's life: the server exits when it closes.
    conn: UnixStream,
    pub endpoint: String,
}

impl Moto {
    /// A server in milliseconds: the zygote, started by the first test that
    /// needs it and shared by every test of the run (one per moto and script
    /// version), forks one. Each server is a process of its own, so tests
    /// share no state; with FR_IAM_RECORD_DIR (make test sets it) every
    /// request and its answer is recorded for the IAM evaluation of the
    /// product's calls (tests/iam/).
    pub fn start() -> Result<Self> {
        let zygote = Zygote::locate()?;
        let record = std::env::var_os("FR_IAM_RECORD_DIR")
            .map(|dir| {
                PathBuf::from(dir).join(format!(
                    "moto-{}-{}.jsonl",
                    std::process::id(),
                    SERVERS.fetch_add(1, Ordering::Relaxed)
                ))
            })
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut spawned: Option<Instant> = None;
        let mut last = anyhow!("not asked");
        let mut refused = 0;
        while Instant::now() < deadline {
            match zygote.fork(&record) {
                Ok(moto) => return Ok(moto),
                // A zygote answered, but no server: its log says why; a
                // second try covers one that was closing for idleness.
                Err(Fork::NoServer(e)) if refused > 0 => {
                    return Err(e.context(format!("see {}", zygote.log.display())));
                }
                Err(Fork::NoServer(e)) => {
                    refused += 1;
                    last = e;
                }
                Err(Fork::NoZygote(e)) => last = e,
            }
            // No zygote answering: start one (several tests may; one keeps
            // the socket, the others exit), again if it died starting.
            if spawned.is_none_or(|t| t.elapsed() > Duration::from_secs(20)) {
                zygote.spawn()?;
                spawned = Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(last.context(format!(
            "no moto server from {} within 60 s (its log: {})",
            zygote.socket.display(),
            zygote.log.display()
        )))
    }

    pub async fn sdk(&self) -> SdkConfig {
        sdk_config(&self.endpoint).await
    }

    /// Dates the volume's latest modification `age` ago and sets its state
    /// (`modifying`, `optimizing`, `completed`, `failed`): moto completes
    /// each at once and dates it now (the route is tests/moto_rules.py's).
    pub fn set_volume_modification(&self, volume: &str, age: Duration, state: &str) -> Result<()> {
        let port: u16 = self
            .endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("no port in {}", self.endpoint))?;
        let body = serde_json::json!({
            "volume": volume,
            "age_seconds": age.as_secs_f64(),
            "state": state,
        })
        .to_string();
        let (status, reply) = crate::http_request(
            port,
            "POST",
            "/_harness/ec2/volume-modification",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )?;
        if status != 200 {
            bail!("the harness's moto answered {status}: {reply}");
        }
        Ok(())
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.conn.shutdown(std::net::Shutdown::Both);
    }
}

/// Why no server came: nothing listening (start a zygote), or a zygote
/// that answered without one.
enum Fork {
    NoZygote(anyhow::Error),
    NoServer(anyhow::Error),
}

static SERVERS: AtomicUsize = AtomicUsize::new(0);

/// Where the warm parent listens, keyed by the Python it runs and the
/// scripts' bytes, so a changed script or moto gets a zygote of its own.
struct Zygote {
    python: PathBuf,
    script: PathBuf,
    socket: PathBuf,
    log: PathBuf,
}

impl Zygote {
    fn locate() -> Result<Self> {
        let python = moto_server_bin()?.with_file_name("python");
        let script = root().join("tests/moto_zygote.py");
        let mut h = std::collections::hash_map::DefaultHasher::new();
        // The venv's directory, not the interpreter it links to: each venv
        // (keyed by its pinned requirements) has its own moto.
        let bin = python.parent().unwrap_or(&python);
        std::fs::canonicalize(bin)
            .with_context(|| format!("{}", bin.display()))?
            .hash(&mut h);
        for f in [
            script.clone(),
            root().join("tests/moto_rules.py"),
            root().join("tests/iam/record_moto.py"),
        ] {
            std::fs::read(&f)
                .with_context(|| format!("reading {}", f.display()))?
                .hash(&mut h);
        }
        let uid = std::fs::metadata("/proc/self")
            .map(|m| m.uid())
            .unwrap_or(0);
        // A Unix socket's path must stay under 108 bytes: not in the checkout.
        let dir = std::env::temp_dir().join(format!("first-responder-moto-{uid}"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let key = format!("{:016x}", h.finish());
        Ok(Self {
            python,
            script,
            socket: dir.join(format!("{key}.sock")),
            log: dir.join(format!("{key}.log")),
        })
    }

    fn fork(&self, record: &str) -> Result<Moto, Fork> {
        let mut conn = UnixStream::connect(&self.socket)
            .with_context(|| format!("connecting to {}", self.socket.display()))
            .map_err(Fork::NoZygote)?;
        let asked = (|| -> Result<String> {
            conn.set_read_timeout(Some(Duration::from_secs(30)))?;
            let request = serde_json::json!({ "record": record });
            conn.write_all(format!("{request}\n").as_bytes())?;
            let mut line = String::new();
            BufReader::new(&conn).read_line(&mut line)?;
            conn.set_read_timeout(None)?;
            Ok(line)
        })();
        let line = asked.map_err(Fork::NoServer)?;
        let port = line
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u16>().ok())
            .ok_or_else(|| anyhow!("the zygote answered {line:?}, not \"PID PORT\""))
            .map_err(Fork::NoServer)?;
        Ok(Moto {
            conn,
            endpoint: format!("http://127.0.0.1:{port}"),
        })
    }

    fn spawn(&self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let mut child = Command::new(&self.python)
            .arg(&self.script)
            .arg(&self.socket)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group: a test killed at its timeout, with its
            // group, leaves the zygote to the others.
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", self.script.display()))?;
        // Reaped when it exits, so it never lingers as a zombie.
        std::thread::spawn(move || child.wait());
        Ok(())
    }
}

/// The product's own SDK configuration (timeouts, retries), pointed at moto.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    first_responder::aws::sdk_config_loader()
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(Credentials::new("test", "test", None, None, "harness"))
        .load()
        .await
}

/// The SDK as another account in `region`: moto maps the credentials
/// `AssumeRole` returns to the role's account, so what is made with them is
/// that account's (and invisible to the default one).
pub async fn sdk_for_account(endpoint: &str, account: &str, region: &str) -> SdkConfig {
    let central = sdk_config(endpoint).await;
    let role = aws_config::sts::AssumeRoleProvider::builder(format!(
        "arn:aws:iam::{account}:role/harness"
    ))
    .session_name("harness")
    .configure(&central)
    .build()
    .await;
    let mut b = central.to_builder();
    b.set_region(Some(aws_config::Region::new(region.to_owned())));
    b.set_credentials_provider(Some(aws_sdk_ec2::config::SharedCredentialsProvider::new(
        role,
    )));
    b.build()
}

/// The environment a process (CLI, `cargo lambda watch`) needs to reach moto,
/// through the SDK's own `AWS_ENDPOINT_URL` support.
pub fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_REGION", REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ]
}
