//! moto's server on a free loopback port, and the SDK's configuration for it.

use anyhow::{Context, Result, anyhow, bail};
use aws_config::SdkConfig;
use aws_sdk_ec2::config::Credentials;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
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

/// A moto server process, killed on drop.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    pub fn start() -> Result<Self> {
        let bin = moto_server_bin()?;
        let mut last = anyhow!("not started");
        // A port picked free can be taken before moto binds it: retry.
        for _ in 0..3 {
            let port = free_port()?;
            let mut command = Command::new(&bin);
            // With FR_IAM_RECORD_DIR (make test sets it), every request and
            // its answer is recorded, for the IAM evaluation of the
            // product's calls (tests/iam/).
            if let Some(dir) = std::env::var_os("FR_IAM_RECORD_DIR") {
                let python = bin.with_file_name("python");
                command = Command::new(python);
                command.arg(root().join("tests/iam/record_moto.py")).env(
                    "FR_IAM_RECORD",
                    PathBuf::from(dir).join(format!("moto-{}-{port}.jsonl", std::process::id())),
                );
            }
            let mut child = command
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("starting {}", bin.display()))?;
            let endpoint = format!("http://127.0.0.1:{port}");
            match wait_ready(port, &mut child) {
                Ok(()) => return Ok(Self { child, endpoint }),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last = e;
                }
            }
        }
        Err(last)
    }

    pub async fn sdk(&self) -> SdkConfig {
        sdk_config(&self.endpoint).await
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn wait_ready(port: u16, child: &mut Child) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            bail!("moto_server exited early: {status}");
        }
        // Listening, and by this child: tests run in parallel, and another
        // test's server may have been handed the same free port first.
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            if listens_on(child.id(), port) {
                return Ok(());
            }
            if child.try_wait()?.is_some() {
                bail!("127.0.0.1:{port} is another process's; moto_server exited");
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("moto_server did not listen on 127.0.0.1:{port} within 30 s")
}

/// Whether process `pid` holds the socket listening on 127.0.0.1:`port`
/// (from /proc: the socket's inode among the process's descriptors).
pub(crate) fn listens_on(pid: u32, port: u16) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return true; // no /proc: trust the connect
    };
    let local = format!("0100007F:{port:04X}");
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // local_address, state 0A = LISTEN, inode
            (f.get(1) == Some(&local.as_str()) && f.get(3) == Some(&"0A"))
                .then(|| f.get(9).map(|i| format!("socket:[{i}]")))
                .flatten()
        })
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .is_ok_and(|t| inodes.iter().any(|i| t.to_string_lossy() == *i))
    })
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
