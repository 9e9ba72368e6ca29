//! The approval links' signing key, read when first needed.

use crate::approval::Key;
use crate::config::Config;

/// The signing key: `APPROVAL_KEY` (local runs, already in the
/// configuration) or the SSM SecureString named by `APPROVAL_KEY_PARAMETER`.
/// None when neither is set: held actions then go out without links.
pub async fn load_key(config: &Config, ssm: &aws_sdk_ssm::Client) -> Result<Option<Key>, String> {
    if let Some(k) = &config.approval_key {
        return Ok(Some(k.clone()));
    }
    let Some(name) = &config.approval_key_parameter else {
        return Ok(None);
    };
    let value = crate::aws::secure_parameter(ssm, name).await?;
    Key::new(&format!("SSM parameter {name}"), &value)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// The key, read when first needed and again once it is older than
/// `APPROVAL_KEY_TTL_SECONDS` (so a rotation, `CURRENT PREVIOUS` in the
/// parameter, needs no redeploy, and removing a key revokes its links
/// within that time): `APPROVAL_KEY` as configured, else the SSM
/// SecureString `APPROVAL_KEY_PARAMETER` through the deployment's own SSM.
/// A failed read keeps the key in use (and the next need tries again).
#[derive(Debug)]
pub struct KeyCell {
    ssm: crate::aws::Lazy<aws_sdk_ssm::Client>,
    key: tokio::sync::Mutex<Option<(std::time::Instant, Option<Key>)>>,
}

impl KeyCell {
    pub fn new(ssm: impl Into<crate::aws::Lazy<aws_sdk_ssm::Client>>) -> Self {
        Self {
            ssm: ssm.into(),
            key: tokio::sync::Mutex::new(None),
        }
    }

    pub async fn get(&self, config: &Config) -> Option<Key> {
        let mut held = self.key.lock().await;
        if let Some((at, key)) = held.as_ref()
            && at.elapsed() < config.approval_key_ttl
        {
            return key.clone();
        }
        match load_key(config, &self.ssm).await {
            Ok(key) => {
                *held = Some((std::time::Instant::now(), key.clone()));
                key
            }
            Err(e) => {
                tracing::warn!(error = %e, "approval key not read: keeping the one in use, if any");
                held.as_ref().and_then(|(_, k)| k.clone())
            }
        }
    }
}
