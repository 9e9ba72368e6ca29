//! JSON Schema validation with the `jsonschema` package of the project's
//! virtualenv (pinned in tools/requirements.txt): one `validate.py` kept
//! running per schema, a document a line in, an answer a line out. The
//! schemas live in `tests/schemas/`, each written from its service's
//! documentation (its `description` says which page).

use anyhow::{Context, Result, bail};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Mutex;

/// Amazon Q Developer in chat applications' custom notification.
pub const CHAT: &str = "chat-custom-notification.schema.json";
/// PagerDuty's Events API v2 alert event.
pub const PAGERDUTY: &str = "pagerduty-events-v2.schema.json";

pub struct Validator {
    name: &'static str,
    io: Mutex<(ChildStdin, BufReader<ChildStdout>)>,
    _child: Child,
}

impl Validator {
    pub async fn start(schema: &'static str) -> Result<Self> {
        let root = crate::root();
        let python = crate::moto_server_bin()?.with_file_name("python");
        let mut child = Command::new(&python)
            .arg(root.join("tests/schemas/validate.py"))
            .arg(root.join("tests/schemas").join(schema))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} for {schema}", python.display()))?;
        let stdin = child.stdin.take().context("no stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("no stdout")?);
        Ok(Self {
            name: schema,
            io: Mutex::new((stdin, stdout)),
            _child: child,
        })
    }

    /// Ok, or what the schema says is wrong (at most five errors).
    pub async fn check(&self, doc: &Value) -> Result<std::result::Result<(), String>> {
        let mut io = self.io.lock().await;
        let (stdin, stdout) = &mut *io;
        stdin.write_all(format!("{doc}\n").as_bytes()).await?;
        stdin.flush().await?;
        let mut line = String::new();
        let n = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            stdout.read_line(&mut line),
        )
        .await
        .with_context(|| format!("{}: no answer from the validator", self.name))??;
        if n == 0 {
            bail!(
                "{}: the validator exited (is jsonschema in .venv?)",
                self.name
            );
        }
        let answer: Value = serde_json::from_str(&line)?;
        Ok(if answer["ok"] == Value::Bool(true) {
            Ok(())
        } else {
            Err(answer["errors"].to_string())
        })
    }

    /// Fails the test, naming the document, unless it is valid.
    pub async fn assert_valid(&self, doc: &Value) -> Result<()> {
        if let Err(e) = self.check(doc).await? {
            bail!("not valid against {}: {e}\n{doc:#}", self.name);
        }
        Ok(())
    }
}
