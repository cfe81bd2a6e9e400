//! The Spin adapter, built for wasm32 only: the component's two exports, both thin layers
//! over [`crate::core`] and [`crate::api`]. A fresh instance serves each request, so the
//! configuration is read from Spin variables on every call ([`settings`]); Vault is reached
//! with wasi:http outbound requests ([`outbound`]).
//!
//! - `handle` is the `wasi:http` export (spin-sdk's `#[http_component]`): it matches the
//!   route, runs its handler ([`handlers`]) and writes the answer or problem document.
//! - [`export`] is the typed `hostnaming:naming/allocator` export.

mod export;
mod handlers;
mod outbound;
mod settings;

use spin_sdk::http::{Fields, IncomingRequest, OutgoingResponse, ResponseOutparam};

use crate::api::problem::{self, ApiError};
use crate::api::response::{self, Answer};
use crate::api::routes::{self, Route};
use crate::api::ui;
use crate::core::allocate::{self, Allocation, NameRequest};
use crate::core::error::NamingError;
use crate::spin::outbound::SpinEnv;
use crate::spin::settings::Config;

/// The one allocation path behind both the typed export and HTTP.
async fn generate(
    config: &Config,
    env: &mut SpinEnv,
    order: NameRequest<'_>,
) -> Result<Allocation, NamingError> {
    order.tuple.check_fits(&config.allocation.template)?;
    allocate::allocate(env, &config.vault, &config.allocation, order).await
}

/// What a route answers: a whole JSON body, one of the page's files, or an export that
/// streams its rows.
enum Served {
    Whole(Answer),
    /// A file, with the request's `If-None-Match` and `Accept-Encoding`.
    File(&'static ui::Asset, Option<String>, Option<String>),
    Export(Box<(Config, handlers::Export)>),
}

/// Matches the route and runs its handler. The OpenAPI document and the page are served
/// without reading the configuration, so they answer even when a variable is wrong (the
/// page then shows what `/healthz` says).
async fn serve(req: IncomingRequest) -> Result<Served, ApiError> {
    let path_and_query = req.path_with_query().unwrap_or_default();
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query.as_str(), ""));
    let method = req.method().to_string();
    let route = routes::route(&method, path)?;
    let file = |asset| {
        let if_none_match = handlers::header(&req, "if-none-match");
        let accept_encoding = handlers::header(&req, "accept-encoding");
        Ok(Served::File(asset, if_none_match, accept_encoding))
    };
    match route {
        Route::OpenApi => return Ok(Served::Whole(response::openapi())),
        Route::Page => return file(&ui::PAGE),
        Route::Asset(name) => return file(ui::asset(name).expect("routes checks the name")),
        _ => {}
    }
    let config = Config::load()?;
    let answer = match route {
        Route::OpenApi | Route::Page | Route::Asset(_) => unreachable!("answered above"),
        Route::Session => handlers::session(&config, &req, query).await,
        Route::Suggestions => handlers::suggestions(&config, &req, query).await,
        Route::Healthz => handlers::health(&config).await,
        Route::Generate => handlers::generate(&config, req).await,
        Route::ListNames => handlers::list_names(&config, &req, query).await,
        Route::ExportNames => {
            let export = handlers::export(&config, &req, query).await?;
            return Ok(Served::Export(Box::new((config, export))));
        }
        Route::GetName(hostname) => handlers::get_name(&config, &req, hostname).await,
        Route::AnnotateName(hostname) => handlers::annotate_name(&config, req, hostname).await,
        Route::ReleaseName(hostname) => handlers::release_name(&config, &req, hostname).await,
    };
    answer.map(Served::Whole)
}

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let request_id = handlers::header(&req, "x-request-id");
    let outcome = match serve(req).await {
        Ok(Served::Export(export)) => {
            let (config, export) = *export;
            return export.send(&config, out).await;
        }
        Ok(Served::File(asset, if_none_match, accept_encoding)) => {
            match ui::answer(asset, if_none_match.as_deref(), accept_encoding.as_deref()) {
                Ok((status, headers, body)) => {
                    return send(out, status, headers, body.to_vec()).await
                }
                Err(e) => Err(e),
            }
        }
        Ok(Served::Whole(answer)) => Ok(answer),
        Err(e) => Err(e),
    };
    let (status, headers, mut body) = response::finish(outcome);
    if status >= 400 {
        problem::with_request_id(&mut body, request_id.as_deref());
    }
    if status >= 500 {
        // The detail is built without secrets (see `core::vault`), so it is safe to log.
        eprintln!("hostnaming: {} {}", status, body["detail"]);
    }
    send(out, status, headers, body.to_string().into_bytes()).await;
}

async fn send(
    out: ResponseOutparam,
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
) {
    let fields: Vec<(String, Vec<u8>)> = headers
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into_bytes()))
        .collect();
    let response = OutgoingResponse::new(Fields::from_list(&fields).expect("static header names"));
    response.set_status_code(status).expect("valid status");
    if let Err(e) = out.set_with_body(response, body).await {
        eprintln!("hostnaming: writing the response failed: {e}");
    }
}
