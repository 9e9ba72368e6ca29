//! Debian's real Prometheus and node exporter on 127.0.0.1, for the live
//! chain: the node exporter is the scraped target, Prometheus evaluates the
//! shipped rules (their `for` shortened by [`quick_rules`], never by editing
//! the shipped file) and sends to a real Alertmanager. Stopped on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::free_port;

/// A server process listening on a loopback port, killed on drop.
pub struct Server {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    pub log: PathBuf,
}

impl Server {
    fn spawn(name: &str, bin: &str, port: u16, args: &[String]) -> Result<Self> {
        if Command::new(bin).arg("--version").output().is_err() {
            bail!("{bin} is not installed: run `make test` (it installs Debian's {bin})");
        }
        let dir = std::env::temp_dir().join(format!("first-responder-{name}-{port}"));
        std::fs::create_dir_all(&dir)?;
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log)?;
        let child = Command::new(bin)
            .args(args)
            .current_dir(&dir)
            .stdout(Stdio::from(out.try_clone()?))
            .stderr(Stdio::from(out))
            .spawn()
            .with_context(|| format!("starting {bin}"))?;
        let mut s = Self {
            child: Some(child),
            port,
            dir,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(c) = s.child.as_mut()
                && let Some(status) = c.try_wait()?
            {
                bail!("{bin} exited ({status}):\n{}", s.logs());
            }
            if Instant::now() > deadline {
                bail!("{bin} did not listen on 127.0.0.1:{port}:\n{}", s.logs());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(s)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops it now (a scraped target going down).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Debian's `prometheus-node-exporter`, listening on 127.0.0.1 only.
pub fn node_exporter() -> Result<Server> {
    let port = free_port()?;
    Server::spawn(
        "node-exporter",
        "prometheus-node-exporter",
        port,
        &[format!("--web.listen-address=127.0.0.1:{port}")],
    )
}

/// The shipped rule file with every `for` and the group's interval at one
/// second, so a test sees in seconds what takes minutes in production.
/// Fails if the file no longer has what it rewrites.
pub fn quick_rules(shipped: &str) -> Result<String> {
    let mut out = String::with_capacity(shipped.len());
    let mut rewritten = 0;
    for line in shipped.lines() {
        let t = line.trim_start();
        let indent = &line[..line.len() - t.len()];
        if t.starts_with("for: ") {
            out.push_str(&format!("{indent}for: 1s\n"));
            rewritten += 1;
        } else if t.starts_with("interval: ") {
            out.push_str(&format!("{indent}interval: 1s\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if rewritten == 0 {
        bail!("the shipped rules have no `for:` to shorten");
    }
    Ok(out)
}

/// Debian's `prometheus`: scrapes `target` (a loopback port) every second as
/// job `node-exporter`, its `instance` label rewritten to `instance_label`
/// (the seeded instance's private address, which is never contacted),
/// evaluates `rules` every second and sends alerts to the Alertmanager on
/// `alertmanager_port`.
pub fn prometheus(
    rules: &str,
    target: u16,
    instance_label: &str,
    alertmanager_port: u16,
) -> Result<Server> {
    let port = free_port()?;
    // The server's own directory (removed with it).
    let dir = std::env::temp_dir().join(format!("first-responder-prometheus-{port}"));
    std::fs::create_dir_all(&dir)?;
    let rules_file = dir.join("alert_rules.yml");
    std::fs::write(&rules_file, rules)?;
    let config = format!(
        r#"global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: ["{rules}"]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:{alertmanager_port}"]
scrape_configs:
  - job_name: node-exporter
    static_configs:
      - targets: ["127.0.0.1:{target}"]
    relabel_configs:
      - target_label: instance
        replacement: "{instance_label}"
"#,
        rules = rules_file.display(),
    );
    let config_file = dir.join("prometheus.yml");
    std::fs::write(&config_file, config)?;
    check_config(&config_file)?;
    Server::spawn(
        "prometheus",
        "prometheus",
        port,
        &[
            format!("--config.file={}", config_file.display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ],
    )
}

fn check_config(path: &Path) -> Result<()> {
    let out = Command::new("promtool")
        .args(["check", "config"])
        .arg(path)
        .output()
        .context("running promtool")?;
    if !out.status.success() {
        bail!(
            "promtool check config: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
