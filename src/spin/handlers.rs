//! One function per route: admit the caller, read the request, ask the core, shape the
//! answer. Parsing, admission and bodies are [`crate::api`]'s; what is left here is
//! reading the incoming request and the Vault access it gets.

use futures::StreamExt;
use spin_sdk::http::IncomingRequest;

use crate::api::auth::{Scope, VaultToken};
use crate::api::problem::ApiError;
use crate::api::request::{self, MAX_BODY};
use crate::api::response::{self, Answer};
use crate::core::allocate::NameRequest;
use crate::core::error::NamingError;
use crate::core::idempotency::IdempotencyKey;
use crate::core::names;
use crate::core::registry::{self, NameRecord};
use crate::core::vault::VaultConfig;
use crate::spin::outbound::SpinEnv;
use crate::spin::settings::Config;

/// `GET /healthz`: no credentials; Vault is asked with the service's token.
pub(super) async fn health(config: &Config) -> Result<Answer, ApiError> {
    names::health(&mut config.env(), &config.vault).await?;
    Ok(response::healthy(&config.vault.mount))
}

/// `POST /generate-name`.
pub(super) async fn generate(config: &Config, req: IncomingRequest) -> Result<Answer, ApiError> {
    let (mut env, token) = authenticate(config, &req, Scope::Generate)?;
    let key = header(&req, "idempotency-key")
        .as_deref()
        .map(IdempotencyKey::parse)
        .transpose()?;
    let body = read_body(req).await?;
    let (request, count) = request::parse_generate(&body)?;
    let order = NameRequest {
        tuple: &request,
        count,
        key: key.as_ref(),
    };
    let what = format!("application '{}'", request.application.as_str());
    let allocation = super::generate(config, &mut env, order)
        .await
        .map_err(token.refusal(&what))?;
    Ok(response::generated(&request, &allocation))
}

/// `GET /names`.
pub(super) async fn list_names(
    config: &Config,
    req: &IncomingRequest,
    query: &str,
) -> Result<Answer, ApiError> {
    let (mut env, token) = authenticate(config, req, Scope::Read)?;
    let query = request::parse_list_query(query)?;
    let what = format!("application '{}'", query.application.as_str());
    let template = &config.allocation.template;
    let page = names::list(&mut env, &config.vault, template, &query)
        .await
        .map_err(token.refusal(&what))?;
    Ok(response::listing(&page))
}

/// `GET /names/{hostname}`.
pub(super) async fn get_name(
    config: &Config,
    req: &IncomingRequest,
    hostname: &str,
) -> Result<Answer, ApiError> {
    on_record(config, req, Scope::Read, hostname, names::get).await
}

/// `DELETE /names/{hostname}`.
pub(super) async fn release_name(
    config: &Config,
    req: &IncomingRequest,
    hostname: &str,
) -> Result<Answer, ApiError> {
    on_record(config, req, Scope::Admin, hostname, names::release).await
}

/// A route on one name's record: admitted for `scope`, `op` reads or changes the record,
/// and the answer is the record as it then stands.
async fn on_record(
    config: &Config,
    req: &IncomingRequest,
    scope: Scope,
    hostname: &str,
    op: impl AsyncFnOnce(&mut SpinEnv, &VaultConfig, &str) -> Result<NameRecord, NamingError>,
) -> Result<Answer, ApiError> {
    let (mut env, token) = authenticate(config, req, scope)?;
    let hostname = registry::parse_hostname(hostname)?;
    let record = op(&mut env, &config.vault, hostname)
        .await
        .map_err(token.refusal(&format!("name '{hostname}'")))?;
    Ok(response::record(&record))
}

/// Admits the request for `scope` and opens Vault access with the token that gets.
fn authenticate(
    config: &Config,
    req: &IncomingRequest,
    scope: Scope,
) -> Result<(SpinEnv, VaultToken), ApiError> {
    let token = config.auth.admit(scope, |name| header(req, name))?;
    Ok((config.env_for(&token), token))
}

fn header(req: &IncomingRequest, name: &str) -> Option<String> {
    let values = req.headers().get(name);
    values
        .first()
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Reads the body, refusing it as soon as it exceeds [`MAX_BODY`].
async fn read_body(req: IncomingRequest) -> Result<Vec<u8>, ApiError> {
    let too_large = ApiError::PayloadTooLarge { limit: MAX_BODY };
    let declared = req.headers().get("content-length");
    if let Some(len) = declared.first() {
        let len = std::str::from_utf8(len)
            .ok()
            .and_then(|s| s.parse::<usize>().ok());
        if len.is_some_and(|len| len > MAX_BODY) {
            return Err(too_large);
        }
    }
    let mut body = Vec::new();
    let mut stream = req.into_body_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::MalformedJson(format!("reading the body failed: {e}")))?;
        if body.len() + chunk.len() > MAX_BODY {
            return Err(too_large);
        }
        body.extend(chunk);
    }
    Ok(body)
}
