//! The typed `hostnaming:naming/allocator` export: the same operations as the HTTP API,
//! over the same core, with the core's types converted to the WIT's. Requests are checked
//! by the HTTP API's own parsers (a search becomes the query string `GET /names` reads), so
//! a typed call is refused exactly when its HTTP twin would be.

use serde_json::{json, Map, Value};

use crate::api::request;
use crate::core::allocate::{self, check_count, Allocation, IssuedName, NameRequest};
use crate::core::error::NamingError;
use crate::core::idempotency::IdempotencyKey;
use crate::core::metadata::Metadata;
use crate::core::names::{self, Stored};
use crate::core::registry::{self, Action, Status};
use crate::core::validate::Tuple;
use crate::spin::settings::Config;

wit_bindgen::generate!({
    path: "wit",
    world: "hostnaming:naming/allocator-component",
    with: {
        "fermyon:spin/variables@2.0.0": spin_sdk::wit::v2::variables,
    },
});

use exports::hostnaming::naming::allocator as wit;

/// The actor of a typed write that names none.
const TYPED: &str = "typed-interface";

struct Component;

/// A typed request, checked as HTTP checks it.
struct Order {
    tuple: Tuple,
    count: u32,
    key: Option<IdempotencyKey>,
}

impl Order {
    fn parse(request: &wit::NameRequest) -> Result<Self, NamingError> {
        Ok(Self {
            tuple: Tuple::parse(&request.application, &request.role, &request.environment)?,
            count: check_count(Some(u64::from(request.count)))?,
            key: request
                .idempotency_key
                .as_deref()
                .map(IdempotencyKey::parse)
                .transpose()?,
        })
    }

    fn request<'a>(&'a self, metadata: &'a Metadata, actor: &'a str) -> NameRequest<'a> {
        NameRequest {
            tuple: &self.tuple,
            count: self.count,
            key: self.key.as_ref(),
            metadata,
            actor,
        }
    }
}

fn issue(
    request: wit::NameRequest,
    details: Metadata,
    actor: &str,
) -> Result<Allocation, NamingError> {
    let order = Order::parse(&request)?;
    let config = Config::load()?;
    let mut env = config.env();
    spin_sdk::http::run(super::generate(
        &config,
        &mut env,
        order.request(&details, actor),
    ))
}

/// Runs `op` on Vault with the service's token.
fn with_vault<T>(
    op: impl AsyncFnOnce(&Config, &mut super::SpinEnv) -> Result<T, NamingError>,
) -> Result<T, NamingError> {
    let config = Config::load()?;
    let mut env = config.env();
    spin_sdk::http::run(op(&config, &mut env))
}

fn hostname(value: &str) -> Result<&str, NamingError> {
    Ok(registry::parse_hostname(value)?)
}

impl wit::Guest for Component {
    fn generate(request: wit::NameRequest) -> Result<wit::Allocation, wit::NamingError> {
        issue(request, Metadata::default(), TYPED)
            .map(Into::into)
            .map_err(Into::into)
    }

    fn issue(
        request: wit::NameRequest,
        details: wit::Metadata,
        actor: Option<String>,
    ) -> Result<wit::Allocation, wit::NamingError> {
        (|| {
            let details = metadata(details)?;
            issue(request, details, actor.as_deref().unwrap_or(TYPED))
        })()
        .map(Into::into)
        .map_err(Into::into)
    }

    fn preview(request: wit::NameRequest) -> Result<Vec<wit::IssuedName>, wit::NamingError> {
        (|| {
            let order = Order::parse(&request)?;
            let none = Metadata::default();
            with_vault(async |config, env| {
                order.tuple.check_fits(&config.allocation.template)?;
                let request = order.request(&none, "");
                allocate::preview(env, &config.vault, &config.allocation, request).await
            })
        })()
        .map(|names| names.into_iter().map(Into::into).collect())
        .map_err(Into::into)
    }

    fn look_up(name: String) -> Result<wit::NameRecord, wit::NamingError> {
        (|| {
            let name = hostname(&name)?;
            with_vault(async |config, env| names::get(env, &config.vault, name).await)
        })()
        .map(Into::into)
        .map_err(Into::into)
    }

    fn search(query: wit::SearchQuery) -> Result<wit::SearchPage, wit::NamingError> {
        (|| {
            let query = request::parse_list_query(&query_string(&query), &[])?;
            with_vault(async |config, env| {
                names::list(env, &config.vault, &config.allocation.template, &query).await
            })
        })()
        .map(|page| wit::SearchPage {
            names: page
                .names
                .into_iter()
                .map(|record| Stored { record, version: 0 }.into())
                .collect(),
            next_cursor: page.next_cursor,
        })
        .map_err(Into::into)
    }

    fn annotate(
        name: String,
        patch: wit::MetadataPatch,
        if_match: Option<u64>,
        actor: Option<String>,
    ) -> Result<wit::NameRecord, wit::NamingError> {
        (|| {
            let name = hostname(&name)?;
            let patch = merge_patch(patch);
            let actor = actor.as_deref().unwrap_or(TYPED);
            with_vault(async |config, env| {
                names::annotate(env, &config.vault, name, &patch, if_match, actor).await
            })
        })()
        .map(Into::into)
        .map_err(Into::into)
    }

    fn release(name: String, actor: Option<String>) -> Result<wit::NameRecord, wit::NamingError> {
        (|| {
            let name = hostname(&name)?;
            let actor = actor.as_deref().unwrap_or(TYPED);
            with_vault(async |config, env| names::release(env, &config.vault, name, actor).await)
        })()
        .map(Into::into)
        .map_err(Into::into)
    }
}

export!(Component);

/// Typed metadata, checked as a `POST /generate-name` body's would be.
fn metadata(details: wit::Metadata) -> Result<Metadata, NamingError> {
    let mut body = Map::new();
    if let Some(owner) = details.owner {
        body.insert("owner".into(), json!(owner));
    }
    if let Some(description) = details.description {
        body.insert("description".into(), json!(description));
    }
    if !details.tags.is_empty() {
        let tags: Map<String, Value> = details
            .tags
            .into_iter()
            .map(|(k, v)| (k, json!(v)))
            .collect();
        body.insert("tags".into(), Value::Object(tags));
    }
    Ok(Metadata::from_request(&body)?)
}

/// A typed patch as the JSON merge patch `PATCH /names/{hostname}` takes.
fn merge_patch(patch: wit::MetadataPatch) -> Value {
    let mut body = Map::new();
    if let Some(owner) = patch.owner {
        body.insert("owner".into(), json!(owner));
    }
    if let Some(description) = patch.description {
        body.insert("description".into(), json!(description));
    }
    if !patch.tags.is_empty() {
        let tags: Map<String, Value> = patch.tags.into_iter().map(|(k, v)| (k, json!(v))).collect();
        body.insert("tags".into(), Value::Object(tags));
    }
    Value::Object(body)
}

/// A typed search as the query string `GET /names` reads.
fn query_string(query: &wit::SearchQuery) -> String {
    let status = query.status.map(|s| match s {
        wit::NameStatus::Issued => "issued".to_string(),
        wit::NameStatus::Released => "released".to_string(),
    });
    let mut pairs: Vec<(&str, String)> = [
        ("application", query.application.clone()),
        ("role", query.role.clone()),
        ("environment", query.environment.clone()),
        ("status", status),
        ("owner", query.owner.clone()),
        ("created_by", query.created_by.clone()),
        ("created_after", query.created_after.clone()),
        ("created_before", query.created_before.clone()),
        ("prefix", query.prefix.clone()),
        ("cursor", query.cursor.clone()),
        ("limit", Some(query.limit.to_string())),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    pairs.extend(query.tags.iter().map(|(k, v)| ("tag", format!("{k}:{v}"))));
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes a query-string value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl From<Allocation> for wit::Allocation {
    fn from(allocation: Allocation) -> Self {
        Self {
            names: allocation.names.into_iter().map(Into::into).collect(),
            replayed: allocation.replayed,
        }
    }
}

impl From<IssuedName> for wit::IssuedName {
    fn from(n: IssuedName) -> Self {
        Self {
            hostname: n.hostname,
            number: n.number,
        }
    }
}

impl From<Stored> for wit::NameRecord {
    fn from(stored: Stored) -> Self {
        let r = stored.record;
        let history = r
            .history()
            .into_iter()
            .map(|e| wit::Event {
                action: match e.action {
                    Action::Issued => wit::Action::Issued,
                    Action::Annotated => wit::Action::Annotated,
                    Action::Released => wit::Action::Released,
                },
                at: e.at,
                actor: e.actor,
                changed: e.changed,
            })
            .collect();
        Self {
            hostname: r.hostname,
            application: r.application,
            role: r.role,
            environment: r.environment,
            number: r.number,
            status: match r.status {
                Status::Issued => wit::NameStatus::Issued,
                Status::Released => wit::NameStatus::Released,
            },
            created_at: r.created_at,
            created_by: r.created_by,
            metadata: wit::Metadata {
                owner: r.metadata.owner,
                description: r.metadata.description,
                tags: r.metadata.tags.into_iter().collect(),
            },
            released_at: r.released_at,
            released_by: r.released_by,
            history,
            version: stored.version,
        }
    }
}

impl From<NamingError> for wit::NamingError {
    fn from(e: NamingError) -> Self {
        match e {
            NamingError::InvalidInput(f) => Self::InvalidInput(wit::FieldError {
                field: f.field,
                reason: f.reason,
            }),
            NamingError::NameTooLong { length } => Self::NameTooLong(length as u32),
            NamingError::VaultUnavailable(m) => Self::VaultUnavailable(m),
            NamingError::VaultDenied(m) => Self::VaultDenied(m),
            NamingError::ContentionExhausted { attempts } => Self::ContentionExhausted(attempts),
            NamingError::Misconfigured(m) => Self::Misconfigured(m),
            NamingError::IdempotencyMismatch => Self::IdempotencyKeyReused,
            NamingError::InFlight => Self::InFlight,
            NamingError::NotFound(m) => Self::NotFound(m),
            NamingError::PreconditionFailed { current } => Self::PreconditionFailed(current),
        }
    }
}
