//! The real Prometheus Alertmanager (Debian's `prometheus-alertmanager`) on
//! 127.0.0.1, clustering off, with one webhook receiver pointing at the
//! `webhook` function under `cargo lambda watch`, and `amtool` to raise and
//! resolve alerts. Stopped on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::free_port;

pub const BINARY: &str = "prometheus-alertmanager";

pub struct Alertmanager {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
    pub log: PathBuf,
}

/// How the receiver is set up.
pub struct Receiver<'a> {
    /// The webhook's Function URL, served locally.
    pub url: &'a str,
    /// Written to a file the receiver reads (`credentials_file`).
    pub token: &'a str,
    pub repeat_interval: &'a str,
}

/// `alertmanager, version 0.25.0 (...)` as the installed binary reports it.
pub fn version() -> Result<String> {
    let out = Command::new(BINARY).arg("--version").output()?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    text.lines()
        .next()
        .map(ToOwned::to_owned)
        .context("no version line")
}

fn installed() -> Result<()> {
    if Command::new(BINARY).arg("--version").output().is_err() {
        bail!(
            "{BINARY} is not installed: run `make test` (it installs Debian's prometheus-alertmanager)"
        );
    }
    Ok(())
}

/// Checks the binary is there; a free port and a directory of its own.
fn place() -> Result<(u16, PathBuf)> {
    installed()?;
    let port = free_port()?;
    let dir = std::env::temp_dir().join(format!("first-responder-am-{port}"));
    std::fs::create_dir_all(&dir)?;
    Ok((port, dir))
}

impl Alertmanager {
    pub fn start(receiver: &Receiver) -> Result<Self> {
        let (port, dir) = place()?;
        let token_file = dir.join("token");
        std::fs::write(&token_file, receiver.token)?;
        let config = format!(
            r#"route:
  receiver: first-responder
  group_by: [alertname, instance]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: {repeat}
receivers:
  - name: first-responder
    webhook_configs:
      - url: "{url}"
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials_file: "{token}"
"#,
            repeat = receiver.repeat_interval,
            url = receiver.url,
            token = token_file.display()
        );
        let config_file = dir.join("alertmanager.yml");
        std::fs::write(&config_file, config)?;
        Self::spawn(port, dir, &config_file)
    }

    /// With a configuration file written elsewhere (the AMP definition's,
    /// made local by `infra/amp/check.py --local`).
    pub fn start_with_config(config_file: &std::path::Path) -> Result<Self> {
        let (port, dir) = place()?;
        Self::spawn(port, dir, config_file)
    }

    fn spawn(port: u16, dir: PathBuf, config_file: &std::path::Path) -> Result<Self> {
        let log = dir.join("alertmanager.log");
        let out = std::fs::File::create(&log)?;
        let child = Command::new(BINARY)
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // An empty address turns clustering (gossip on 0.0.0.0:9094) off.
            .arg("--cluster.listen-address=")
            .arg("--log.level=debug")
            .stdout(Stdio::from(out.try_clone()?))
            .stderr(Stdio::from(out))
            .spawn()
            .context("starting prometheus-alertmanager")?;
        let mut am = Self {
            child,
            port,
            dir,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = am.child.try_wait()? {
                bail!("alertmanager exited ({status}):\n{}", am.logs());
            }
            if Instant::now() > deadline {
                bail!(
                    "alertmanager did not listen on 127.0.0.1:{port}:\n{}",
                    am.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(am)
    }

    /// Posts alerts to its API (`/api/v2/alerts`), as Prometheus (or AMP's
    /// ruler) does: any label or annotation text, quotes and line breaks
    /// included, which `amtool` refuses.
    pub fn post(&self, alerts: &serde_json::Value) -> Result<()> {
        let body = alerts.to_string();
        let (status, reply) = crate::http_request(
            self.port,
            "POST",
            "/api/v2/alerts",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )?;
        if status != 200 {
            bail!("alertmanager answered {status}: {reply}");
        }
        Ok(())
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `amtool alert add` with these labels and annotations; `end` resolves it.
    pub fn add(
        &self,
        labels: &[(&str, &str)],
        annotations: &[(&str, &str)],
        end: Option<&str>,
    ) -> Result<()> {
        let mut cmd = Command::new("amtool");
        cmd.args([
            "alert",
            "add",
            &format!("--alertmanager.url={}", self.url()),
        ]);
        for (k, v) in labels {
            cmd.arg(format!("{k}={v}"));
        }
        for (k, v) in annotations {
            cmd.arg(format!("--annotation={k}={v}"));
        }
        if let Some(e) = end {
            cmd.arg(format!("--end={e}"));
        }
        let out = cmd.output().context("running amtool")?;
        if !out.status.success() {
            bail!("amtool failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Log lines of the webhook notifier with this message.
    pub fn count(&self, message: &str) -> usize {
        self.logs()
            .lines()
            .filter(|l| l.contains(message) && l.contains("first-responder"))
            .count()
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
