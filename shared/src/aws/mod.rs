//! The executor: the only module that calls AWS. It reads what the planner
//! needs ([`Aws::observe`]) and carries out a plan ([`Aws::execute`]).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use tokio::time::sleep;

pub mod fleet;
pub mod pagerduty;
pub mod ssm;

/// The IAM actions of the engine's own components, beside the actions' and
/// the observation's: the kill switch (a parameter, SecureString through
/// its KMS key), the encrypted topic, table and queue (the service's KMS
/// key), and the dead-letter queue Lambda writes for a failed async event.
pub const ENGINE_PERMISSIONS: &[&str] = &[
    "ssm:GetParameter",
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "sqs:SendMessage",
];

pub use crate::outcome::Outcome;
pub use ssm::{collect_diagnostics, run_command};

/// Tag keys put on everything first-responder creates (the audit trail).
pub const TAG_INCIDENT: &str = "first-responder:incident-id";
pub const TAG_ALARM: &str = "first-responder:alarm-name";
pub const TAG_INSTANCE: &str = "first-responder:instance-id";
pub const TAG_CREATED_BY: &str = "created-by";
pub const TAG_PURPOSE: &str = "first-responder:purpose";
pub const CREATED_BY: &str = "first-responder";

/// The tags every snapshot first-responder takes carries (the audit trail,
/// and how a resumed delivery finds a snapshot an earlier one took).
pub(crate) fn snapshot_tags(
    incident: &crate::incident::Incident,
    instance: &crate::ids::InstanceId,
    purpose: &str,
    name: &str,
) -> aws_sdk_ec2::types::TagSpecification {
    use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(printable(v, 256)).build();
    TagSpecification::builder()
        .resource_type(ResourceType::Snapshot)
        .tags(tag(TAG_INCIDENT, &incident.id))
        .tags(tag(TAG_ALARM, &incident.alert.alarm_name))
        .tags(tag(TAG_INSTANCE, instance.as_str()))
        .tags(tag(TAG_CREATED_BY, CREATED_BY))
        .tags(tag(TAG_PURPOSE, purpose))
        .tags(tag("Name", name))
        .build()
}

pub const RUN_SHELL_DOCUMENT: &str = "AWS-RunShellScript";

/// SDK configuration with deliberate timeouts and retries. An incident has a
/// 90 s budget for all its actions: one call gets 5 s an attempt and three
/// attempts with jittered backoff (standard mode), 20 s in all, so a stuck
/// endpoint costs one action, not the incident. Credentials, region and the
/// endpoint (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`) come from the
/// SDK's own environment handling.
/// The app name in the responder's user agent (`app/first-responder`):
/// CloudTrail shows it, so an account's owner can tell its calls apart.
pub const APP_NAME: &str = "first-responder";
/// The webhook's.
pub const WEBHOOK_APP_NAME: &str = "first-responder-webhook";
/// The command-line tool's (`run`, `plan`, …; its ready-made policy is
/// `infra/iam/responder-policy.json`).
pub const CLI_APP_NAME: &str = "first-responder-cli";
/// The backtest's (read-only; `infra/iam/backtest-policy.json`).
pub const BACKTEST_APP_NAME: &str = "first-responder-backtest";

/// The SDK configuration the clients are made from (for the CLI).
pub use aws_config::SdkConfig as Sdk;

/// `sdk` with `name` in its user agent, unless it names an app already.
pub fn ours(sdk: &SdkConfig, name: &'static str) -> SdkConfig {
    match (sdk.app_name(), aws_config::AppName::new(name)) {
        (None, Ok(app)) => sdk.to_builder().app_name(app).build(),
        _ => sdk.clone(),
    }
}

pub fn sdk_config_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(20))
                .build(),
        )
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(200))
                .with_max_backoff(Duration::from_secs(5)),
        )
}

/// The SDK's default HTTPS client (rustls with aws-lc), built at its first
/// request instead of at start. Every service client's construction asks
/// its HTTP client to build a throwaway connector "so that certificates load
/// at client initialization": with a trust store of its own, that parsed the
/// whole CA bundle once per client, most of this binary's cold start (see
/// BENCHMARKS.md). Deferred, the trust store is built once, by the first
/// call, and shared by every client (one connector per timeout setting).
pub fn https_client() -> aws_sdk_ec2::config::SharedHttpClient {
    aws_sdk_ec2::config::SharedHttpClient::new(DeferredHttps::default())
}

#[derive(Debug, Default)]
struct DeferredHttps(std::sync::OnceLock<aws_sdk_ec2::config::SharedHttpClient>);

impl aws_smithy_runtime_api::client::http::HttpClient for DeferredHttps {
    fn http_connector(
        &self,
        settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        self.0
            .get_or_init(|| build_https(trust_roots()))
            .http_connector(settings, components)
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        Some(
            aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata::new(
                "hyper",
                Some(std::borrow::Cow::Borrowed("1.x")),
            ),
        )
    }
}

/// The CA certificates the SDK trusts, as PEM: the file `SSL_CERT_FILE`
/// names when it is set (a proxy or a VPC endpoint with a private CA), else
/// Mozilla's roots compiled into the binary (`webpki-root-certs`), which the
/// AWS endpoints' Amazon Trust Services roots are among. They change with
/// the crate's version, not with the image's CA package.
pub fn trust_roots() -> Vec<u8> {
    if let Some(path) = std::env::var_os("SSL_CERT_FILE") {
        let path = std::path::Path::new(&path);
        match std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|pem| {
                certificates_in(&pem)
                    .and_then(|n| {
                        if n == 0 {
                            Err("no certificate in it".into())
                        } else {
                            Ok(())
                        }
                    })
                    .map(|()| pem)
            }) {
            Ok(pem) => return pem,
            // smithy's trust store panics on a PEM it cannot parse: checked here.
            Err(e) => tracing::warn!(
                path = %path.display(),
                error = %e,
                "SSL_CERT_FILE is not usable: trusting the compiled-in Mozilla roots"
            ),
        }
    }
    compiled_in_roots()
}

/// How many certificates a PEM text holds, or why it cannot be read.
pub fn certificates_in(pem: &[u8]) -> Result<usize, String> {
    use rustls_pki_types::{CertificateDer, pem::PemObject};
    CertificateDer::pem_slice_iter(pem)
        .try_fold(0, |n, c| c.map(|_| n + 1))
        .map_err(|e| format!("not a PEM certificate bundle: {e:?}"))
}

/// Mozilla's roots as PEM. smithy's trust store takes PEM only, so the
/// compiled-in DER certificates are written out once, at the first request.
pub fn compiled_in_roots() -> Vec<u8> {
    use base64::Engine;
    let mut pem = Vec::with_capacity(webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() * 2_000);
    for der in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.extend_from_slice(line);
            pem.push(b'\n');
        }
        pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    pem
}

fn build_https(pem: Vec<u8>) -> aws_sdk_ec2::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
    let store = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(pem);
    let builder = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
    match TlsContext::builder().with_trust_store(store).build() {
        Ok(ctx) => builder.tls_context(ctx).build_https(),
        Err(_) => builder.build_https(),
    }
}

/// Clients for the binaries that need one service only (the webhook).
pub fn ssm_client(sdk: &SdkConfig) -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(sdk)
}

/// An SSM SecureString's value (decrypted), naming the parameter in errors.
pub async fn secure_parameter(ssm: &aws_sdk_ssm::Client, name: &str) -> Result<String, String> {
    let out = ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| format!("reading SSM parameter {name}: {}", sdk_error(&e)))?;
    out.parameter()
        .and_then(|p| p.value())
        .map(str::to_owned)
        .ok_or_else(|| format!("SSM parameter {name} has no value"))
}

pub fn lambda_client(sdk: &SdkConfig) -> aws_sdk_lambda::Client {
    aws_sdk_lambda::Client::new(sdk)
}

/// How `GetCommandInvocation` is polled: doubling from `first` up to `max`.
#[derive(Clone, Copy, Debug)]
pub struct PollSchedule {
    pub first: Duration,
    pub max: Duration,
}

impl Default for PollSchedule {
    fn default() -> Self {
        Self {
            first: Duration::from_millis(500),
            max: Duration::from_secs(5),
        }
    }
}

/// The AWS clients of one account and region, built once per process (and
/// once per member account and region, `engine::members`): nothing else.
/// What the responder keeps beside them (the state table, the member
/// accounts, the approval key) is the engine's (`engine::Engine`).
/// Each client is built on its first use (`Lazy`): an event that calls no
/// service, such as a resolved alarm, builds none.
#[derive(Clone, Debug)]
pub struct Aws {
    pub ec2: Lazy<aws_sdk_ec2::Client>,
    pub ssm: Lazy<aws_sdk_ssm::Client>,
    pub sns: Lazy<aws_sdk_sns::Client>,
    pub autoscaling: Lazy<aws_sdk_autoscaling::Client>,
    /// The metric context's reads (`observe::metric`).
    pub cloudwatch: Lazy<aws_sdk_cloudwatch::Client>,
    /// The verification's delayed message (`verify`).
    pub sqs: Lazy<aws_sdk_sqs::Client>,
    pub poll: PollSchedule,
}

/// An SDK client made on first use, then kept. Building a client costs
/// some 0.2 ms (its config, its runtime plugins); at a cold start the eight
/// were 1.6 ms of the responder's 6.3 ms init, for events that mostly need
/// two or three of them. Derefs to the client, so `aws.ec2.describe_…()`
/// reads as before; a ready client converts with `.into()` (tests).
/// Clones share the one client: the member accounts' SNS and SQS and the
/// approval key's SSM are the central ones, built once.
pub struct Lazy<C> {
    cell: Arc<OnceLock<C>>,
    make: Arc<dyn Fn() -> C + Send + Sync>,
}

impl<C> Lazy<C> {
    /// A client `make` builds from `sdk` when it is first used.
    pub fn new(sdk: &Arc<SdkConfig>, make: fn(&SdkConfig) -> C) -> Self
    where
        C: 'static,
    {
        let sdk = Arc::clone(sdk);
        Self {
            cell: Arc::new(OnceLock::new()),
            make: Arc::new(move || make(&sdk)),
        }
    }
}

impl<C: Clone + Send + Sync + 'static> From<C> for Lazy<C> {
    fn from(client: C) -> Self {
        Self {
            cell: Arc::new(OnceLock::from(client.clone())),
            make: Arc::new(move || client.clone()),
        }
    }
}

impl<C> Clone for Lazy<C> {
    fn clone(&self) -> Self {
        Self {
            cell: Arc::clone(&self.cell),
            make: Arc::clone(&self.make),
        }
    }
}

impl<C> std::ops::Deref for Lazy<C> {
    type Target = C;
    fn deref(&self) -> &C {
        self.cell.get_or_init(|| (self.make)())
    }
}

impl<C> std::fmt::Debug for Lazy<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.cell.get().is_some() {
            "Lazy(built)"
        } else {
            "Lazy(not built yet)"
        })
    }
}

/// An SDK error in one line: the service's code and message when there is
/// one, else the whole error chain (timeouts, connection failures).
pub fn sdk_error<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match (e.code(), e.message()) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_owned(),
        _ => DisplayErrorContext(e).to_string(),
    }
}

pub(crate) fn printable(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .take(max)
        .collect()
}

impl Aws {
    pub fn new(sdk: &SdkConfig) -> Self {
        let sdk = &Arc::new(ours(sdk, APP_NAME));
        Self {
            ec2: Lazy::new(sdk, aws_sdk_ec2::Client::new),
            ssm: Lazy::new(sdk, aws_sdk_ssm::Client::new),
            sns: Lazy::new(sdk, aws_sdk_sns::Client::new),
            autoscaling: Lazy::new(sdk, aws_sdk_autoscaling::Client::new),
            cloudwatch: Lazy::new(sdk, aws_sdk_cloudwatch::Client::new),
            sqs: Lazy::new(sdk, aws_sdk_sqs::Client::new),
            poll: PollSchedule::default(),
        }
    }

    /// Reads the kill switch: on when the parameter holds on/true/1/yes/
    /// notify-only; off when it holds anything else or does not exist.
    pub async fn kill_switch(&self, name: &str) -> Result<bool, String> {
        // Decrypted, so a SecureString works as well as a String.
        let read = self
            .ssm
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await;
        match read {
            Ok(out) => {
                let v = out.parameter().and_then(|p| p.value()).unwrap_or_default();
                Ok(matches!(
                    v.trim().to_ascii_lowercase().as_str(),
                    "on" | "true" | "1" | "yes" | "notify-only"
                ))
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_parameter_not_found()) =>
            {
                Ok(false)
            }
            Err(e) => Err(format!("GetParameter {name}: {}", sdk_error(&e))),
        }
    }
}

pub(crate) type HttpResponse = aws_sdk_ec2::config::http::HttpResponse;

/// AWS answered with a 4xx, or refused the call for the request rate (EC2
/// says `RequestLimitExceeded` with a 503), or the request was never built:
/// the change was surely not made. A timeout, a lost or unreadable answer or
/// another 5xx may hide a change that was made.
pub(crate) fn refused<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    match e {
        SdkError::ConstructionFailure(_) => true,
        SdkError::ServiceError(se) => se.raw().status().is_client_error() || throttled(e),
        _ => false,
    }
}

/// Refused for the request rate: nothing was done, and trying again soon may work.
pub(crate) fn throttled<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    matches!(e, SdkError::ServiceError(_))
        && matches!(
            e.code(),
            Some(
                "RequestLimitExceeded"
                    | "Throttling"
                    | "ThrottlingException"
                    | "TooManyUpdates"
                    | "ThrottledException"
            )
        )
}

/// A call that must not be repeated blindly (the SDK's own retries are off
/// for it): tried again only when AWS refused it for the rate, which proves
/// it did nothing.
pub(crate) async fn once<T, E, F, Fut>(mut call: F) -> Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
{
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match call().await {
            Err(e) if attempt < 3 && throttled(&e) => {
                sleep(Duration::from_millis(200 << attempt)).await;
            }
            other => return other,
        }
    }
}

/// Whether a retry may help: no answer, a timeout, throttling or a 5xx.
pub(crate) fn transient<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(se) => {
            se.raw().status().is_server_error()
                || matches!(
                    se.err().code(),
                    Some(
                        "RequestLimitExceeded"
                            | "Throttling"
                            | "ThrottlingException"
                            | "InternalError"
                            | "ServiceUnavailable"
                            | "Unavailable"
                    )
                )
        }
        _ => false,
    }
}

pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub(crate) fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| t.to_string())
}

/// SDK errors as outcomes (the rest of [`Outcome`] is free of the SDK).
impl Outcome {
    /// Failed with this SDK error: certain when AWS refused the call, else
    /// the change may have been made.
    pub(crate) fn failed_call<E>(what: &str, e: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let text = format!("{what}: {}", sdk_error(e));
        if refused(e) {
            Self::failed(text)
        } else {
            Self::uncertain(text)
        }
    }
}

#[cfg(test)]
mod trust_tests {
    use super::*;

    #[test]
    fn the_compiled_in_roots_are_mozillas_and_include_amazons() {
        let pem = compiled_in_roots();
        let n = certificates_in(&pem).expect("the compiled-in roots parse");
        assert_eq!(n, webpki_root_certs::TLS_SERVER_ROOT_CERTS.len());
        assert!(n > 100, "{n} roots");
        // The AWS endpoints' certificates chain to Amazon Trust Services.
        let amazon = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .filter(|c| c.as_ref().windows(15).any(|w| w == b"Amazon Root CA "))
            .count();
        assert!(amazon >= 4, "{amazon} Amazon roots");
    }

    #[test]
    fn a_bad_bundle_is_named_not_trusted() {
        assert_eq!(certificates_in(b"not pem at all"), Ok(0));
        let broken = b"-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----\n";
        assert!(certificates_in(broken).is_err());
    }
}
