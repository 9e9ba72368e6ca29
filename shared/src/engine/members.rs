//! Many accounts and regions: the clients of the account and region an
//! alert came from. Another account is reached through its member role
//! (`sts:AssumeRole` with the external id) in a session named after the
//! incident, so the member account's CloudTrail tells incidents apart; the
//! session's credentials are kept with its clients, per account, region and
//! incident (the incident's check and approval reuse them; the SDK renews
//! them before they expire). The state table, the topic and the queues stay
//! the deployment's own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_config::SdkConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, future};
use aws_sdk_ec2::config::{Region, SharedCredentialsProvider};
use aws_sdk_sts::error::ProvideErrorMetadata;

use super::Engine;
use crate::aws::{Aws, Lazy, sdk_error};
use crate::config::Config;
use crate::ids::{AccountId, RegionName};
use crate::incident::Incident;
use crate::target::{Target, target_from, target_of};

/// Where an incident acts: that account's and region's clients, the
/// target (None with one account), and whether the alert's claim must be
/// read there before anything else is done.
pub struct Where {
    pub engine: Engine,
    pub target: Option<Target>,
    pub read_alarm: bool,
    /// Another account's, reached through its member role.
    pub member: bool,
}

/// The deployment's own configuration and the member clients made so far.
pub struct Members {
    central: SdkConfig,
    home: tokio::sync::OnceCell<Target>,
    /// Per account, region and incident: a member account's session is
    /// named after the incident it serves, so CloudTrail there tells
    /// incidents apart. Bounded: emptied when it grows past
    /// [`MAX_MEMBER_SESSIONS`].
    clients: Mutex<HashMap<(Target, String), Aws>>,
}

impl std::fmt::Debug for Members {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Members").finish_non_exhaustive()
    }
}

/// Why an incident's account cannot be acted in.
#[derive(Clone, Debug, PartialEq)]
pub enum Unreachable {
    /// Refused for good: not allowed, not an account or region code, or
    /// IAM refused the member role.
    Refused(String),
    /// The deployment's own account could not be learned, or the member
    /// role could not be assumed for now (STS throttled or unreachable): a
    /// retry may do.
    Failed(String),
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(w) | Self::Failed(w) => f.write_str(w),
        }
    }
}

/// A member role's credentials, the first of them fetched before its
/// clients are made: IAM's refusal (an account outside `ALLOWED_ORG_ID`,
/// a role that does not trust this one) is then a refusal of the incident
/// before anything is asked of the account, not a failed first call. The
/// clients' cache takes those first credentials once; renewals assume the
/// role again.
#[derive(Debug)]
struct Prefetched {
    first: Mutex<Option<Credentials>>,
    role: AssumeRoleProvider,
}

impl ProvideCredentials for Prefetched {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let first = self.first.lock().unwrap_or_else(|p| p.into_inner()).take();
        match first {
            Some(c) => future::ProvideCredentials::ready(Ok(c)),
            None => self.role.provide_credentials(),
        }
    }
}

/// Why assuming a member role failed: Refused when STS said no for good
/// (AccessDenied: the trust policy, the central role's `aws:ResourceOrgID`
/// or `aws:ResourceAccount` condition; a region not enabled), Failed when a
/// retry may do (throttled, timed out, unreachable).
fn assume_failed(e: &CredentialsError, role: &str, config: &Config) -> Unreachable {
    type AssumeError =
        aws_sdk_sts::error::SdkError<aws_sdk_sts::operation::assume_role::AssumeRoleError>;
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(sdk) = s.downcast_ref::<AssumeError>() {
            let why = sdk_error(sdk);
            return match sdk.code() {
                Some("AccessDenied" | "AccessDeniedException" | "RegionDisabledException") => {
                    let org = config.allowed_org_id.as_deref().map_or(String::new(), |o| {
                        format!(
                            " (with ALLOWED_ORG_ID {o}, IAM lets the responder into that organization's accounts only)"
                        )
                    });
                    Unreachable::Refused(format!(
                        "IAM refused to assume {role}{org}: {why}; refused, nothing was asked of the account"
                    ))
                }
                _ => Unreachable::Failed(format!("AssumeRole {role}: {why}")),
            };
        }
        source = s.source();
    }
    Unreachable::Failed(format!(
        "AssumeRole {role}: {}",
        aws_sdk_sts::error::DisplayErrorContext(e)
    ))
}

/// Member sessions kept at once (a container serving a storm makes one per
/// incident and account; past this many they are made again when needed).
const MAX_MEMBER_SESSIONS: usize = 256;

/// The member role's session name for an incident: `first-responder-<id>`,
/// cut to STS's 64 characters (incident ids are `inc-` and 16 hex digits).
pub fn session_name(incident: &str) -> String {
    let mut name = format!("first-responder-{incident}");
    name.truncate(64);
    name
}

/// The IAM action reaching a member account needs (GetCallerIdentity needs
/// none, and the template sets `HOME_ACCOUNT_ID` so it is not called).
pub const PERMISSIONS: &[&str] = &["sts:AssumeRole"];

impl Members {
    pub fn new(central: &SdkConfig) -> Self {
        Self {
            central: super::ours(central, super::APP_NAME),
            home: tokio::sync::OnceCell::new(),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The deployment's own account (`HOME_ACCOUNT_ID`, else STS once) and
    /// region.
    async fn home(&self, config: &Config) -> Result<Target, String> {
        self.home
            .get_or_try_init(|| async {
                let region = self
                    .central
                    .region()
                    .map(|r| r.as_ref().to_owned())
                    .ok_or("no AWS region configured")?;
                let region = RegionName::parse("AWS_REGION", &region).map_err(|e| e.to_string())?;
                let account = match &config.home_account {
                    Some(a) => a.clone(),
                    None => {
                        let me = aws_sdk_sts::Client::new(&self.central)
                            .get_caller_identity()
                            .send()
                            .await
                            .map_err(|e| format!("GetCallerIdentity: {}", sdk_error(&e)))?;
                        AccountId::parse(
                            "GetCallerIdentity.Account",
                            me.account().unwrap_or_default(),
                        )
                        .map_err(|e| e.to_string())?
                    }
                };
                Ok(Target { account, region })
            })
            .await
            .cloned()
    }
}

impl Engine {
    /// The clients for this incident's account and region (Err: refused,
    /// with why; nothing was asked of that account beyond AssumeRole), and whether its claim
    /// must be checked there first (`target::Resolved::read_alarm`). These
    /// same clients for the deployment's own.
    pub async fn for_incident(
        &self,
        incident: &Incident,
        config: &Config,
    ) -> Result<Where, Unreachable> {
        let a = &incident.alert;
        let Some(m) = &self.members else {
            // One account (tests, the CLI without members): these clients;
            // a message's body is still checked against them.
            return Ok(Where {
                engine: self.clone(),
                target: None,
                read_alarm: a.origin == crate::alert::Origin::SnsMessage,
                member: false,
            });
        };
        let home = m.home(config).await.map_err(Unreachable::Failed)?;
        let resolved = target_of(a, &home, config).map_err(Unreachable::Refused)?;
        let t = &resolved.target;
        let (engine, target) = self
            .for_account(
                Some(t.account.as_str()),
                Some(t.region.as_str()),
                config,
                &incident.id,
            )
            .await?;
        Ok(Where {
            engine,
            target,
            read_alarm: resolved.read_alarm,
            member: t.account != home.account,
        })
    }

    /// The clients for an account and region given as text (an alert's, or
    /// an incident record's), checked against the allow-list; in another
    /// account, a session named after `incident` (see [`session_name`]).
    pub async fn for_account(
        &self,
        account: Option<&str>,
        region: Option<&str>,
        config: &Config,
        incident: &str,
    ) -> Result<(Engine, Option<Target>), Unreachable> {
        let Some(m) = &self.members else {
            return Ok((self.clone(), None));
        };
        let home = m.home(config).await.map_err(Unreachable::Failed)?;
        let t = target_from(account, region, &home, config).map_err(Unreachable::Refused)?;
        if t == home {
            return Ok((self.clone(), Some(t)));
        }
        // The same account's other regions share the session's name, not
        // its clients; the home account needs no session at all.
        let session = match t.account == home.account {
            true => String::new(),
            false => session_name(incident),
        };
        let key = (t.clone(), session.clone());
        if let Some(a) = m
            .clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok((self.in_account(a.clone()), Some(t)));
        }
        let mut b = m.central.to_builder();
        b.set_region(Some(Region::new(t.region.as_str().to_owned())));
        if t.account != home.account {
            let arn = t.role_arn(&config.member_role_name);
            let mut role = AssumeRoleProvider::builder(&arn)
                .session_name(&session)
                .configure(&m.central);
            if let Some(x) = &config.member_external_id {
                role = role.external_id(x);
            }
            let role = role.build().await;
            // Assumed now, so that IAM's refusal refuses the incident
            // before its first call (the clients' cache reuses these).
            let first = role
                .provide_credentials()
                .await
                .map_err(|e| assume_failed(&e, &arn, config))?;
            let provider = Prefetched {
                first: Mutex::new(Some(first)),
                role,
            };
            b.set_credentials_provider(Some(SharedCredentialsProvider::new(provider)));
        }
        let member = &Arc::new(b.build());
        let a = Aws {
            ec2: Lazy::new(member, aws_sdk_ec2::Client::new),
            ssm: Lazy::new(member, aws_sdk_ssm::Client::new),
            autoscaling: Lazy::new(member, aws_sdk_autoscaling::Client::new),
            cloudwatch: Lazy::new(member, aws_sdk_cloudwatch::Client::new),
            // The deployment's own: the topic and the queue.
            sns: self.aws.sns.clone(),
            sqs: self.aws.sqs.clone(),
            poll: self.aws.poll,
        };
        let mut clients = m.clients.lock().unwrap_or_else(|p| p.into_inner());
        if clients.len() >= MAX_MEMBER_SESSIONS {
            clients.clear();
        }
        clients.entry(key).or_insert_with(|| a.clone());
        drop(clients);
        Ok((self.in_account(a), Some(t)))
    }

    /// This engine (its state table, members and key: the deployment's
    /// own) acting through another account's or region's clients.
    fn in_account(&self, aws: Aws) -> Engine {
        Engine {
            aws,
            ..self.clone()
        }
    }
}
