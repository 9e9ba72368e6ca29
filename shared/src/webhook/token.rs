//! The webhook's bearer token: one, or two during a rotation, each bound to
//! the accounts its alerts may name; read from SSM at start and re-read now
//! and then ([`TokenRefresh`]).

use subtle::ConstantTimeEq;

use crate::error::ConfigError;

/// The shared bearer token: one, or two while a rotation is under way (the
/// new and the previous), each with the accounts its alerts may name.
/// Compared in constant time; never printed.
pub struct Token(Vec<(Vec<u8>, Binding)>);

/// The accounts a token's alerts may name in their `account_id` label
/// (`TOKEN@ACCOUNT,ACCOUNT` in the token's parameter). None: bound to no
/// account, so it acts only in the deployment's own.
pub type Binding = Option<Vec<crate::ids::AccountId>>;

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// One or two tokens separated by whitespace (`NEW` or `NEW PREVIOUS`):
    /// rotating is writing `NEW OLD` to the parameter, moving Alertmanager
    /// to NEW, then writing `NEW` alone. Each as [`Token::new`] requires.
    pub fn rotating(source: &str, value: &str) -> Result<Self, ConfigError> {
        let parts: Vec<&str> = value.split_whitespace().collect();
        if parts.is_empty() || parts.len() > 2 {
            return Err(ConfigError {
                var: source.into(),
                value: "<redacted>".into(),
                problem: format!(
                    "expected one token, or two (the new and the previous) separated by whitespace; found {}",
                    parts.len()
                ),
            });
        }
        let mut all = Vec::new();
        for p in parts {
            all.extend(Self::new(source, p)?.0);
        }
        Ok(Self(all))
    }

    /// How many tokens are accepted (2 during a rotation).
    pub fn count(&self) -> usize {
        self.0.len()
    }

    /// At least 16 characters, no whitespace or `@` inside; then, after an
    /// `@`, the accounts its alerts may name, comma-separated
    /// (`TOKEN@111111111111,222222222222`).
    pub fn new(source: &str, value: &str) -> Result<Self, ConfigError> {
        let (v, accounts) = match value.trim().split_once('@') {
            Some((t, a)) => (t, Some(a)),
            None => (value.trim(), None),
        };
        let binding =
            match accounts {
                None => None,
                Some(list) => {
                    let mut ids = Vec::new();
                    for a in list.split(',') {
                        ids.push(crate::ids::AccountId::parse("account", a.trim()).map_err(
                            |e| ConfigError {
                                var: source.into(),
                                value: "<redacted>".into(),
                                problem: format!("after the token's `@`: {e}"),
                            },
                        )?);
                    }
                    Some(ids)
                }
            };
        let problem = if v.len() < 16 {
            Some("the token must be at least 16 characters")
        } else if v.chars().any(char::is_whitespace) {
            Some("the token must not contain whitespace")
        } else {
            None
        };
        match problem {
            Some(p) => Err(ConfigError {
                var: source.into(),
                value: "<redacted>".into(),
                problem: p.into(),
            }),
            None => Ok(Self(vec![(v.as_bytes().to_vec(), binding)])),
        }
    }

    pub fn matches(&self, presented: &[u8]) -> bool {
        self.binding(presented).is_some()
    }

    /// The accounts of the token presented, when it is one of ours.
    pub fn binding(&self, presented: &[u8]) -> Option<&Binding> {
        use subtle::ConditionallySelectable;
        // Lengths differ → false at once; the length of the token is not the
        // secret. Every token is compared, so which one matched is not timed.
        let mut found = subtle::Choice::from(0u8);
        let mut index = 0u64;
        for (i, (t, _)) in self.0.iter().enumerate() {
            let eq = t.ct_eq(presented);
            index = u64::conditional_select(&index, &(i as u64), eq);
            found |= eq;
        }
        let index = usize::try_from(index).ok()?;
        if bool::from(found) {
            self.0.get(index).map(|(_, b)| b)
        } else {
            None
        }
    }
}

/// Whether a token bound to `binding` may act where an alert's
/// `account_id` label says (`named`; none: the deployment's own, `home`).
pub fn permits(
    binding: &Binding,
    home: Option<&crate::ids::AccountId>,
    named: Option<&str>,
) -> Result<(), String> {
    let home_text = home.map_or_else(
        || "not known: HOME_ACCOUNT_ID is not set".to_owned(),
        ToString::to_string,
    );
    match (binding, named) {
        (None, None) => Ok(()),
        (None, Some(a)) if home.is_some_and(|h| h.as_str() == a) => Ok(()),
        (None, Some(a)) => Err(format!(
            "the alert names account {}, and this token is bound to no account, so it acts only in the home account ({home_text}): refused",
            crate::text::quoted(a, 40)
        )),
        (Some(list), named) => {
            let Some(a) = named.or(home.map(crate::ids::AccountId::as_str)) else {
                return Err(format!(
                    "the alert names no account_id, and the home account is {home_text}: refused"
                ));
            };
            if list.iter().any(|b| b.as_str() == a) {
                return Ok(());
            }
            let bound: Vec<&str> = list.iter().map(crate::ids::AccountId::as_str).collect();
            Err(format!(
                "the alert names account {}, and this token may act only in {}: refused",
                crate::text::quoted(a, 40),
                bound.join(", ")
            ))
        }
    }
}

/// The SSM parameter holding the token, read again at most every `every`.
#[cfg(feature = "aws")]
pub struct TokenRefresh {
    pub parameter: String,
    pub ssm: aws_sdk_ssm::Client,
    pub every: std::time::Duration,
    pub last: std::sync::Mutex<std::time::Instant>,
}

/// The token: `WEBHOOK_TOKEN` (local runs) or the SSM SecureString named by
/// `WEBHOOK_TOKEN_PARAMETER` (AWS); either may hold the new and the previous
/// token during a rotation.
#[cfg(feature = "aws")]
pub async fn load_token(
    env_token: Option<String>,
    parameter: Option<String>,
    ssm: &aws_sdk_ssm::Client,
) -> Result<Token, String> {
    if let Some(t) = env_token.filter(|t| !t.is_empty()) {
        return Token::rotating("WEBHOOK_TOKEN", &t).map_err(|e| e.to_string());
    }
    let Some(name) = parameter.filter(|p| !p.is_empty()) else {
        return Err(
            "set WEBHOOK_TOKEN_PARAMETER (an SSM SecureString parameter) or WEBHOOK_TOKEN".into(),
        );
    };
    read_token(&name, ssm).await
}

#[cfg(feature = "aws")]
pub(super) async fn read_token(name: &str, ssm: &aws_sdk_ssm::Client) -> Result<Token, String> {
    let value = crate::aws::secure_parameter(ssm, name).await?;
    Token::rotating(&format!("SSM parameter {name}"), &value).map_err(|e| e.to_string())
}
