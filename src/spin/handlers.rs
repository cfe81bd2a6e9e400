//! One function per route: admit the caller, read the request, ask the core, shape the
//! answer. Parsing, admission and bodies are [`crate::api`]'s; what is left here is
//! reading the incoming request, the Vault access it gets, and streaming an export.

use futures::StreamExt;
use spin_sdk::http::{Fields, IncomingRequest, OutgoingResponse, ResponseOutparam};

use crate::api::auth::{self, Actor, Admitted, Caller, Scope, VaultToken};
use crate::api::export::Format;
use crate::api::problem::ApiError;
use crate::api::request::{self, MAX_BODY};
use crate::api::response::{self, Answer};
use crate::core::allocate::{self, NameRequest};
use crate::core::idempotency::IdempotencyKey;
use crate::core::names::{self, Cursor, ListQuery, Page};
use crate::core::registry;
use crate::spin::outbound::SpinEnv;
use crate::spin::settings::Config;

/// `GET /healthz`: no credentials; Vault is asked with the service's token.
pub(super) async fn health(config: &Config) -> Result<Answer, ApiError> {
    names::health(&mut config.env(), &config.vault).await?;
    Ok(response::healthy(&config.vault.mount))
}

/// `POST /generate-name`, or its dry run.
pub(super) async fn generate(config: &Config, req: IncomingRequest) -> Result<Answer, ApiError> {
    let (mut env, admitted) = authenticate(config, &req, Scope::Generate)?;
    let key = header(&req, "idempotency-key")
        .as_deref()
        .map(IdempotencyKey::parse)
        .transpose()?;
    let body = read_body(req).await?;
    let request = request::parse_generate(&body)?;
    let what = format!("application '{}'", request.tuple.application.as_str());
    let refusal = admitted.vault.refusal(&what);
    let mut order = NameRequest {
        tuple: &request.tuple,
        count: request.count,
        key: key.as_ref(),
        metadata: &request.metadata,
        actor: "",
    };
    if request.dry_run {
        request.tuple.check_fits(&config.allocation.template)?;
        let names = allocate::preview(&mut env, &config.vault, &config.allocation, order)
            .await
            .map_err(refusal)?;
        return Ok(response::preview(&request.tuple, &names));
    }
    let actor = actor(config, &mut env, &admitted).await?;
    order.actor = &actor;
    let allocation = super::generate(config, &mut env, order)
        .await
        .map_err(refusal)?;
    Ok(response::generated(&request.tuple, &allocation))
}

/// `GET /names`.
pub(super) async fn list_names(
    config: &Config,
    req: &IncomingRequest,
    query: &str,
) -> Result<Answer, ApiError> {
    let (mut env, admitted) = authenticate(config, req, Scope::Read)?;
    let query = request::parse_list_query(query, &[])?;
    let page = search(config, &mut env, &admitted.vault, &query).await?;
    Ok(response::listing(&page))
}

async fn search(
    config: &Config,
    env: &mut SpinEnv,
    token: &VaultToken,
    query: &ListQuery,
) -> Result<Page, ApiError> {
    let what = match &query.application {
        Some(application) => format!("application '{}'", application.as_str()),
        None => "the registry".to_string(),
    };
    let template = &config.allocation.template;
    names::list(env, &config.vault, template, query)
        .await
        .map_err(token.refusal(&what))
}

/// `GET /session`: who the caller is and what it may do. A passed-through Vault token's
/// scopes are its capabilities, asked of Vault (about `hostname` when the page shows one).
pub(super) async fn session(
    config: &Config,
    req: &IncomingRequest,
    query: &str,
) -> Result<Answer, ApiError> {
    let hostname = request::parse_session_query(query)?;
    let token = match config.auth.introduce(|name| header(req, name))? {
        Caller::Known {
            auth,
            actor,
            scopes,
        } => return Ok(response::session(auth, &actor, &scopes)),
        Caller::Vault(token) => token,
    };
    let mut env = config.env_for(&token);
    let paths = auth::vault_probe_paths(hostname.as_deref());
    let refusal = token.refusal("asking what it may do (sys/capabilities-self)");
    let capabilities = names::capabilities(&mut env, &config.vault, &paths)
        .await
        .map_err(&refusal)?;
    let actor = names::identity(&mut env, &config.vault)
        .await
        .map_err(&refusal)?;
    Ok(response::session(
        "vault",
        &actor,
        &auth::vault_scopes(&capabilities),
    ))
}

/// `GET /suggestions`: the applications, roles or environments already used.
pub(super) async fn suggestions(
    config: &Config,
    req: &IncomingRequest,
    query: &str,
) -> Result<Answer, ApiError> {
    let (mut env, admitted) = authenticate(config, req, Scope::Read)?;
    let (application, role) = request::parse_suggestions_query(query)?;
    let field = match (&application, &role) {
        (None, _) => "application",
        (Some(_), None) => "role",
        (Some(_), Some(_)) => "environment",
    };
    let values = names::used_values(&mut env, &config.vault, application.as_ref(), role.as_ref())
        .await
        .map_err(admitted.vault.refusal("the counters"))?;
    Ok(response::suggestions(field, &values))
}

/// `GET /names/{hostname}`.
pub(super) async fn get_name(
    config: &Config,
    req: &IncomingRequest,
    hostname: &str,
) -> Result<Answer, ApiError> {
    let (mut env, admitted) = authenticate(config, req, Scope::Read)?;
    let hostname = registry::parse_hostname(hostname)?;
    let stored = names::get(&mut env, &config.vault, hostname)
        .await
        .map_err(admitted.vault.refusal(&format!("name '{hostname}'")))?;
    Ok(response::record(&stored))
}

/// `PATCH /names/{hostname}`: a JSON merge patch on its owner, description and tags.
pub(super) async fn annotate_name(
    config: &Config,
    req: IncomingRequest,
    hostname: &str,
) -> Result<Answer, ApiError> {
    let (mut env, admitted) = authenticate(config, &req, Scope::Annotate)?;
    let hostname = registry::parse_hostname(hostname)?;
    let if_match = request::parse_if_match(header(&req, "if-match").as_deref())?;
    let content_type = header(&req, "content-type");
    let body = read_body(req).await?;
    let patch = request::parse_patch(content_type.as_deref(), &body)?;
    // Checked whole before Vault is asked who the caller is.
    crate::core::metadata::Metadata::default().merge(&patch)?;
    let actor = actor(config, &mut env, &admitted).await?;
    let stored = names::annotate(&mut env, &config.vault, hostname, &patch, if_match, &actor)
        .await
        .map_err(admitted.vault.refusal(&format!("name '{hostname}'")))?;
    Ok(response::record(&stored))
}

/// `DELETE /names/{hostname}`.
pub(super) async fn release_name(
    config: &Config,
    req: &IncomingRequest,
    hostname: &str,
) -> Result<Answer, ApiError> {
    let (mut env, admitted) = authenticate(config, req, Scope::Admin)?;
    let hostname = registry::parse_hostname(hostname)?;
    let actor = actor(config, &mut env, &admitted).await?;
    let stored = names::release(&mut env, &config.vault, hostname, &actor)
        .await
        .map_err(admitted.vault.refusal(&format!("name '{hostname}'")))?;
    Ok(response::record(&stored))
}

/// Records an export reads and writes at a time: its memory is about one page, whatever
/// the registry's size.
const EXPORT_PAGE: usize = 1000;

/// An export whose first page has been read: any failure until then is answered as a
/// problem document; after, the rows are on their way.
pub(super) struct Export {
    env: SpinEnv,
    token: VaultToken,
    query: ListQuery,
    format: Format,
    first: Page,
}

/// `GET /names/export`: checks the request and reads the first page.
pub(super) async fn export(
    config: &Config,
    req: &IncomingRequest,
    query: &str,
) -> Result<Export, ApiError> {
    let (mut env, admitted) = authenticate(config, req, Scope::Read)?;
    let format = Format::from_query(query)?;
    let mut query = request::parse_list_query(query, &["format"])?;
    query.limit = EXPORT_PAGE;
    let first = search(config, &mut env, &admitted.vault, &query).await?;
    Ok(Export {
        env,
        token: admitted.vault,
        query,
        format,
        first,
    })
}

impl Export {
    /// Sends the rows, a page at a time, so memory holds one page however many match.
    /// A Vault failure after the first page ends the body unfinished: the client sees a
    /// broken transfer, never a file that looks complete.
    pub(super) async fn send(mut self, config: &Config, out: ResponseOutparam) {
        let headers = [
            ("content-type", self.format.content_type().to_string()),
            (
                "content-disposition",
                format!("attachment; filename=\"{}\"", self.format.file_name()),
            ),
        ]
        .map(|(k, v)| (k.to_string(), v.into_bytes()));
        let response = OutgoingResponse::new(Fields::from_list(&headers).expect("valid headers"));
        response.set_status_code(200).expect("valid status");
        let body = response.body().expect("the body is taken once");
        out.set(response);
        let stream = body.write().expect("the body is written once");
        let write = |text: &str| {
            // `blocking_write_and_flush` takes at most 4096 bytes a call.
            text.as_bytes()
                .chunks(4096)
                .try_for_each(|chunk| stream.blocking_write_and_flush(chunk))
        };
        let mut page = std::mem::replace(
            &mut self.first,
            Page {
                names: Vec::new(),
                next_cursor: None,
            },
        );
        let mut text = self.format.start();
        loop {
            for record in &page.names {
                text.push_str(&self.format.row(record));
            }
            if let Err(e) = write(&text) {
                eprintln!("hostnaming: the export's client went away: {e}");
                return;
            }
            text.clear();
            let Some(cursor) = page.next_cursor.as_deref().and_then(Cursor::parse) else {
                break;
            };
            self.query.after = Some(cursor);
            // Each page has the whole deadline: an export of any size is many pages.
            self.env.restart();
            page = match search(config, &mut self.env, &self.token, &self.query).await {
                Ok(page) => page,
                Err(e) => {
                    let status = e.problem().status;
                    eprintln!("hostnaming: an export stopped part-way ({status}): {e:?}");
                    return; // the body is dropped unfinished
                }
            };
        }
        drop(stream);
        if let Err(e) = spin_sdk::http::OutgoingBody::finish(body, None) {
            eprintln!("hostnaming: finishing the export failed: {e}");
        }
    }
}

/// The actor of a write: the admitted caller's name, or in pass-through mode the
/// identity Vault gives the caller's token.
async fn actor(
    config: &Config,
    env: &mut SpinEnv,
    admitted: &Admitted,
) -> Result<String, ApiError> {
    match &admitted.actor {
        Actor::Named(name) => Ok(name.clone()),
        Actor::VaultIdentity => {
            names::identity(env, &config.vault)
                .await
                .map_err(admitted.vault.refusal(
                    "looking up whose it is (auth/token/lookup-self, which Vault's default policy \
                 grants)",
                ))
        }
    }
}

/// Admits the request for `scope` and opens Vault access with the token that gets.
fn authenticate(
    config: &Config,
    req: &IncomingRequest,
    scope: Scope,
) -> Result<(SpinEnv, Admitted), ApiError> {
    let admitted = config.auth.admit(scope, |name| header(req, name))?;
    Ok((config.env_for(&admitted.vault), admitted))
}

pub(super) fn header(req: &IncomingRequest, name: &str) -> Option<String> {
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
