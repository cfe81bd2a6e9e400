//! The service's configuration, read from Spin variables on every call (a fresh instance
//! serves each request). Variables the manifest may leave out get the manifest's defaults;
//! a missing or malformed one is `misconfigured`, naming the variable.

use std::time::Duration;

use crate::api::auth::{self, VaultToken};
use crate::core::allocate::Settings;
use crate::core::error::NamingError;
use crate::core::retry::RetryPolicy;
use crate::core::template::{self, Template};
use crate::core::vault::VaultConfig;
use crate::spin::outbound::SpinEnv;

/// Everything a request needs from the Spin variables: where Vault is and the service's
/// token for it, how long one call may take, how allocations behave, who may call.
pub(super) struct Config {
    pub(super) vault: VaultConfig,
    token: String,
    /// No single Vault call may take longer: a slow or black-holed Vault must still get
    /// the caller an answer.
    call_timeout: Duration,
    pub(super) allocation: Settings,
    pub(super) auth: auth::Mode,
}

fn unusable(name: &str, e: spin_sdk::variables::Error) -> NamingError {
    NamingError::Misconfigured(format!("the Spin variable `{name}` is not usable: {e}"))
}

/// A variable the manifest may leave out: its default when undefined.
fn optional_variable(name: &str, default: &str) -> Result<String, NamingError> {
    match spin_sdk::variables::get(name) {
        Ok(v) => Ok(v),
        Err(spin_sdk::variables::Error::Undefined(_)) => Ok(default.to_string()),
        Err(e) => Err(unusable(name, e)),
    }
}

fn variable(name: &str) -> Result<String, NamingError> {
    spin_sdk::variables::get(name).map_err(|e| unusable(name, e))
}

impl Config {
    pub(super) fn load() -> Result<Self, NamingError> {
        let vault = VaultConfig::parse(&variable("vault_addr")?, &variable("vault_mount")?)
            .map_err(NamingError::Misconfigured)?;
        let token = variable("vault_token")?;
        if !auth::header_safe(&token) {
            return Err(NamingError::Misconfigured(
                "the Spin variable `vault_token` is empty or not a valid header value".into(),
            ));
        }
        let millis = |name: &str, default: &str| -> Result<Duration, NamingError> {
            let value = optional_variable(name, default)?;
            match value.trim().parse::<u64>() {
                Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
                _ => Err(NamingError::Misconfigured(format!(
                    "the Spin variable `{name}` must be a positive whole number of \
                     milliseconds, not {value:?}"
                ))),
            }
        };
        let lease = millis("idempotency_lease_ms", "30000")?;
        let call_timeout = millis("vault_timeout_ms", "5000")?;
        let deadline = millis("allocation_deadline_ms", "10000")?;
        let template = Template::parse(&optional_variable("name_template", template::DEFAULT)?)
            .map_err(|e| NamingError::Misconfigured(e.to_string()))?;
        let auth = auth::Mode::parse(
            &optional_variable("auth_mode", "tokens")?,
            &optional_variable("api_tokens", "")?,
        )
        .map_err(NamingError::Misconfigured)?;
        Ok(Self {
            vault,
            token,
            call_timeout,
            allocation: Settings {
                lease,
                template,
                retry: RetryPolicy {
                    deadline,
                    ..RetryPolicy::default()
                },
            },
            auth,
        })
    }

    /// Vault access with the service's own token.
    pub(super) fn env(&self) -> SpinEnv {
        self.env_for(&VaultToken::Service)
    }

    /// Vault access with the token an admitted request gets.
    pub(super) fn env_for(&self, token: &VaultToken) -> SpinEnv {
        let token = match token {
            VaultToken::Service => &self.token,
            VaultToken::Caller(own) => own,
        };
        SpinEnv::new(
            token.clone(),
            self.call_timeout,
            self.allocation.retry.deadline,
            &self.vault,
        )
    }
}
