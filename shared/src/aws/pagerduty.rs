//! PagerDuty's Events API v2: one event (`notify::card::pager_event`)
//! sent with the routing key from an SSM SecureString, retried on 429 and
//! 5xx as PagerDuty documents, never for a 400 (the event is wrong).

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

type Https = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Attempts in all (the first and two retries), the waits between them,
/// and each attempt's deadline: at most about 11 s, beside the SNS publish.
pub const ATTEMPTS: u32 = 3;
const BACKOFF: [Duration; 2] = [Duration::from_millis(500), Duration::from_millis(1_000)];
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);

/// The routing key (read once, then kept: a failed read is tried again
/// next time) and the HTTPS client (built at the first event).
pub struct PagerDuty {
    ssm: crate::aws::Lazy<aws_sdk_ssm::Client>,
    key: tokio::sync::OnceCell<String>,
    http: OnceLock<Https>,
}

impl std::fmt::Debug for PagerDuty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PagerDuty { .. }")
    }
}

/// What came of one event: said in the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub ok: bool,
    pub attempts: u32,
    pub detail: String,
}

impl PagerDuty {
    pub fn new(ssm: impl Into<crate::aws::Lazy<aws_sdk_ssm::Client>>) -> Self {
        Self {
            ssm: ssm.into(),
            key: tokio::sync::OnceCell::new(),
            http: OnceLock::new(),
        }
    }

    /// The routing key in `parameter` (a SecureString, decrypted).
    pub async fn routing_key(&self, parameter: &str) -> Result<String, String> {
        self.key
            .get_or_try_init(|| async {
                let key = crate::aws::secure_parameter(&self.ssm, parameter).await?;
                let key = key.trim().to_owned();
                if key.is_empty() || key.len() > 64 || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(format!(
                        "SSM parameter {parameter} does not hold a routing key (an Events API v2 integration key: 32 letters and digits)"
                    ));
                }
                Ok(key)
            })
            .await
            .cloned()
    }

    fn client(&self) -> &Https {
        self.http.get_or_init(|| {
            let connector = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls_config())
                .https_or_http()
                .enable_http1()
                .build();
            Client::builder(TokioExecutor::new()).build(connector)
        })
    }

    /// Sends `event` to `url`, retrying a 429, a 5xx or no answer.
    pub async fn send(&self, url: &str, event: &serde_json::Value) -> Sent {
        let body = Bytes::from(event.to_string());
        let action = event["event_action"].as_str().unwrap_or("event").to_owned();
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            if attempt > 1 {
                tokio::time::sleep(BACKOFF[(attempt - 2) as usize]).await;
            }
            match tokio::time::timeout(ATTEMPT_TIMEOUT, self.post(url, body.clone())).await {
                Ok(Ok((202, answer))) => {
                    let key = serde_json::from_slice::<serde_json::Value>(&answer)
                        .ok()
                        .and_then(|v| v["dedup_key"].as_str().map(str::to_owned))
                        .unwrap_or_default();
                    let retried = if attempt > 1 {
                        format!(" after {attempt} attempts ({last})")
                    } else {
                        String::new()
                    };
                    return Sent {
                        ok: true,
                        attempts: attempt,
                        detail: format!("PagerDuty {action} accepted (dedup_key {key}){retried}"),
                    };
                }
                Ok(Ok((status, answer))) => {
                    last = format!(
                        "HTTP {status}: {}",
                        crate::text::escape(
                            &String::from_utf8_lossy(&answer)
                                .chars()
                                .take(300)
                                .collect::<String>()
                        )
                    );
                    // 400: the event is wrong; sending it again cannot help.
                    if !(status == 429 || status >= 500) {
                        return Sent {
                            ok: false,
                            attempts: attempt,
                            detail: format!("PagerDuty refused the {action}: {last}"),
                        };
                    }
                }
                Ok(Err(e)) => last = e,
                Err(_) => last = format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs()),
            }
        }
        Sent {
            ok: false,
            attempts: ATTEMPTS,
            detail: format!("PagerDuty {action} failed after {ATTEMPTS} attempts: {last}"),
        }
    }

    async fn post(&self, url: &str, body: Bytes) -> Result<(u16, Bytes), String> {
        let request = hyper::Request::post(url)
            .header("content-type", "application/json")
            .header("user-agent", "first-responder")
            .body(Full::new(body))
            .map_err(|e| format!("the request to {url}: {e}"))?;
        let response = self
            .client()
            .request(request)
            .await
            .map_err(|e| format!("POST {url}: {e}"))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("reading PagerDuty's answer: {e}"))?
            .to_bytes();
        Ok((status, body))
    }
}

/// rustls with aws-lc and the roots the SDK trusts (`SSL_CERT_FILE`, else
/// Mozilla's compiled in).
fn tls_config() -> rustls::ClientConfig {
    use rustls_pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    let pem = crate::aws::trust_roots();
    for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
        let _ = roots.add(cert);
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(b) => b.with_root_certificates(roots).with_no_client_auth(),
        // aws-lc's defaults are always valid; the crate's default provider
        // (the same, the only one compiled in) keeps this total.
        Err(_) => rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    }
}
