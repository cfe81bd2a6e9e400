//! The provider block: where the service is, the token, timeouts. Configuring it builds
//! the one HTTP client that the resource and the data source share.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tf_provider::schema::{Attribute, AttributeConstraint, AttributeType, Block, Schema};
use tf_provider::value::{Value, ValueEmpty};
use tf_provider::{map, AttributePath, Diagnostics, DynamicDataSource, DynamicResource, Provider};

use crate::client::{self, Client, Settings};
use crate::record::RecordDataSource;
use crate::resource::NamingResource;
use crate::search::SearchDataSource;

pub const ENV_ENDPOINT: &str = "HOSTNAMING_URL";
pub const ENV_TOKEN: &str = "HOSTNAMING_TOKEN";
pub const ENV_VAULT_TOKEN: &str = "HOSTNAMING_VAULT_TOKEN";

/// The client, once Terraform has configured the provider.
#[derive(Clone, Default)]
pub struct Shared(Arc<RwLock<Option<Arc<Client>>>>);

impl Shared {
    pub fn client(&self, diags: &mut Diagnostics) -> Option<Arc<Client>> {
        let client = self.0.read().unwrap().clone();
        if client.is_none() {
            diags.root_error_short("The naming provider was used before it was configured");
        }
        client
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub endpoint: Value<String>,
    pub token: Value<String>,
    pub vault_token: Value<String>,
    pub request_timeout_seconds: Value<i64>,
    pub retry_timeout_seconds: Value<i64>,
}

/// The settings a configuration means: its values, else the environment, else defaults.
/// Errors name the attribute at fault.
pub fn settings(
    config: &Config,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Settings, Vec<(&'static str, String)>> {
    let mut errors = Vec::new();
    let mut out = Settings::default();
    let nonempty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());

    let endpoint = match &config.endpoint {
        Value::Value(v) => Some(v.clone()),
        Value::Null => nonempty(env(ENV_ENDPOINT)),
        Value::Unknown => {
            errors.push(("endpoint", "must be known before apply".to_string()));
            None
        }
    };
    if let Some(endpoint) = endpoint {
        match client::parse_endpoint(&endpoint) {
            Ok(e) => out.endpoint = e,
            Err(e) => errors.push(("endpoint", e)),
        }
    }
    out.token = match &config.token {
        Value::Value(v) => nonempty(Some(v.clone())),
        Value::Null => nonempty(env(ENV_TOKEN)),
        Value::Unknown => {
            errors.push(("token", "must be known before apply".to_string()));
            None
        }
    };
    out.vault_token = match &config.vault_token {
        Value::Value(v) => nonempty(Some(v.clone())),
        Value::Null => nonempty(env(ENV_VAULT_TOKEN)),
        Value::Unknown => {
            errors.push(("vault_token", "must be known before apply".to_string()));
            None
        }
    };
    if out.token.is_some() && out.vault_token.is_some() {
        errors.push((
            "vault_token",
            "set either `token` (a service with API tokens) or `vault_token` (a service in \
             Vault pass-through mode), not both (HOSTNAMING_TOKEN and HOSTNAMING_VAULT_TOKEN \
             count too)"
                .to_string(),
        ));
    }
    let mut seconds =
        |value: &Value<i64>, name: &'static str, min: i64, default: Duration| match value {
            Value::Value(n) if *n >= min => Duration::from_secs(*n as u64),
            Value::Value(n) => {
                errors.push((name, format!("must be at least {min}, not {n}")));
                default
            }
            Value::Null => default,
            Value::Unknown => {
                errors.push((name, "must be known before apply".to_string()));
                default
            }
        };
    out.request_timeout = seconds(
        &config.request_timeout_seconds,
        "request_timeout_seconds",
        1,
        client::DEFAULT_REQUEST_TIMEOUT,
    );
    out.retry_budget = seconds(
        &config.retry_timeout_seconds,
        "retry_timeout_seconds",
        0,
        client::DEFAULT_RETRY_BUDGET,
    );
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// A schema of version 1 whose root block has `description` and `attributes`: the
/// provider's, the resource's or the data source's.
pub fn root_schema(description: &str, attributes: HashMap<String, Attribute>) -> Schema {
    Schema {
        version: 1,
        block: Block {
            description: description.into(),
            attributes,
            ..Default::default()
        },
    }
}

/// One attribute of a schema: the provider's, the resource's or the data source's.
pub fn attribute(
    attr_type: AttributeType,
    constraint: AttributeConstraint,
    description: &str,
) -> Attribute {
    Attribute {
        attr_type,
        description: description.into(),
        constraint,
        ..Default::default()
    }
}

#[derive(Default, Clone)]
pub struct NamingProvider {
    shared: Shared,
}

#[async_trait]
impl Provider for NamingProvider {
    type Config<'a> = Config;
    type MetaState<'a> = ValueEmpty;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        use AttributeConstraint::Optional;
        use AttributeType::{Number, String};
        Some(root_schema(
            "Hostnames from the hostnaming service.",
            map! {
                "endpoint" => attribute(String, Optional,
                    "Base URL of the service. Default: $HOSTNAMING_URL, else http://127.0.0.1:3000."),
                "token" => Attribute {
                    sensitive: true,
                    ..attribute(String, Optional,
                        "Bearer token sent as `Authorization: Bearer`. Default: $HOSTNAMING_TOKEN.")
                },
                "vault_token" => Attribute {
                    sensitive: true,
                    ..attribute(String, Optional,
                        "For a service in Vault pass-through mode (`auth_mode = vault`): your \
                         own Vault token, sent as `X-Vault-Token`; Vault's policies decide what \
                         it may do. Default: $HOSTNAMING_VAULT_TOKEN. Not with `token`.")
                },
                "request_timeout_seconds" => attribute(Number, Optional,
                    "How long one HTTP request may take. Default: 30."),
                "retry_timeout_seconds" => attribute(Number, Optional,
                    "How long one operation may keep retrying when the service is unreachable, \
                     busy (409) or unavailable (503). Default: 60."),
            },
        ))
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: Self::Config<'a>) -> Option<()> {
        // Unknown values may still become valid; only what is known can be judged now.
        let known = Config {
            endpoint: known_or_null(config.endpoint),
            token: known_or_null(config.token),
            vault_token: known_or_null(config.vault_token),
            request_timeout_seconds: known_or_null(config.request_timeout_seconds),
            retry_timeout_seconds: known_or_null(config.retry_timeout_seconds),
        };
        if let Err(errors) = settings(&known, |_| None) {
            report(diags, errors);
        }
        Some(())
    }

    async fn configure<'a>(
        &self,
        diags: &mut Diagnostics,
        terraform_version: String,
        config: Self::Config<'a>,
    ) -> Option<()> {
        match settings(&config, |name| std::env::var(name).ok()) {
            Ok(mut settings) => match Client::new({
                settings.user_agent = client::user_agent(&terraform_version);
                settings
            }) {
                Ok(client) => *self.shared.0.write().unwrap() = Some(Arc::new(client)),
                Err(e) => diags.root_error("Cannot build the HTTP client", e),
            },
            Err(errors) => report(diags, errors),
        }
        Some(())
    }

    fn get_resources(
        &self,
        _diags: &mut Diagnostics,
    ) -> Option<HashMap<String, Box<dyn DynamicResource>>> {
        // The empty name is the provider's own: `resource "naming"` (see vendor/tf-provider/PATCHES.md).
        Some(map! { "" => NamingResource::new(self.shared.clone()) })
    }

    fn get_data_sources(
        &self,
        _diags: &mut Diagnostics,
    ) -> Option<HashMap<String, Box<dyn DynamicDataSource>>> {
        Some(map! {
            "record" => RecordDataSource::new(self.shared.clone()),
            "names" => SearchDataSource::new(self.shared.clone()),
        })
    }
}

fn known_or_null<T>(value: Value<T>) -> Value<T> {
    match value {
        Value::Unknown => Value::Null,
        other => other,
    }
}

fn report(diags: &mut Diagnostics, errors: Vec<(&'static str, String)>) {
    for (name, message) in errors {
        diags.error(
            format!("Invalid provider setting `{name}`"),
            message,
            AttributePath::new(name),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let s = settings(&Config::default(), env(&[])).unwrap();
        assert_eq!(s, Settings::default());
        assert_eq!(s.endpoint, "http://127.0.0.1:3000");
        assert_eq!(s.token, None);
    }

    #[test]
    fn the_environment_fills_what_the_configuration_leaves_out() {
        let s = settings(
            &Config::default(),
            env(&[
                (ENV_ENDPOINT, "https://names.example.com/"),
                (ENV_TOKEN, "t0k"),
            ]),
        )
        .unwrap();
        assert_eq!(s.endpoint, "https://names.example.com");
        assert_eq!(s.token.as_deref(), Some("t0k"));

        let config = Config {
            endpoint: Value::Value("http://10.0.0.1:3000".into()),
            token: Value::Value("mine".into()),
            request_timeout_seconds: Value::Value(5),
            retry_timeout_seconds: Value::Value(0),
            ..Config::default()
        };
        let s = settings(
            &config,
            env(&[(ENV_ENDPOINT, "http://other"), (ENV_TOKEN, "other")]),
        )
        .unwrap();
        assert_eq!(s.endpoint, "http://10.0.0.1:3000");
        assert_eq!(s.token.as_deref(), Some("mine"));
        assert_eq!(s.request_timeout, Duration::from_secs(5));
        assert_eq!(s.retry_budget, Duration::ZERO);
    }

    #[test]
    fn a_vault_token_comes_from_the_configuration_or_the_environment_but_not_with_a_token() {
        let s = settings(&Config::default(), env(&[(ENV_VAULT_TOKEN, "s.v")])).unwrap();
        assert_eq!((s.vault_token.as_deref(), s.token), (Some("s.v"), None));
        let both = settings(
            &Config::default(),
            env(&[(ENV_VAULT_TOKEN, "s.v"), (ENV_TOKEN, "t")]),
        )
        .unwrap_err();
        assert_eq!(both[0].0, "vault_token");
        assert!(both[0].1.contains("not both"), "{}", both[0].1);
        assert_eq!(
            client::user_agent("1.11.4"),
            format!(
                "terraform-provider-naming/{} terraform/1.11.4",
                env!("CARGO_PKG_VERSION")
            )
        );
    }

    #[test]
    fn an_empty_environment_variable_counts_as_unset() {
        let s = settings(
            &Config::default(),
            env(&[(ENV_ENDPOINT, ""), (ENV_TOKEN, " ")]),
        )
        .unwrap();
        assert_eq!(s.endpoint, client::DEFAULT_ENDPOINT);
        assert_eq!(s.token, None);
    }

    #[test]
    fn bad_values_name_their_attribute() {
        let config = Config {
            endpoint: Value::Value("localhost:3000".into()),
            request_timeout_seconds: Value::Value(0),
            retry_timeout_seconds: Value::Unknown,
            ..Config::default()
        };
        let errors = settings(&config, env(&[])).unwrap_err();
        let names: Vec<_> = errors.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "endpoint",
                "request_timeout_seconds",
                "retry_timeout_seconds"
            ]
        );
    }
}
