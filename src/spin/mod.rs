//! The wasm side: Spin's HTTP trigger and the typed `allocator` export, both thin layers
//! over [`crate::core::allocate`]. Vault is reached with wasi:http outbound requests; settings
//! come from Spin variables on every call (a fresh instance serves each request).

use std::future::poll_fn;
use std::task::Poll;
use std::time::Duration;

use futures::StreamExt;
use spin_sdk::http::{ErrorCode, Fields, IncomingRequest, OutgoingResponse, ResponseOutparam};
use wasi::clocks::{monotonic_clock, wall_clock};

use crate::api::auth::{self, Scope, VaultToken};
use crate::api::problem::ApiError;
use crate::api::request::{self, MAX_BODY};
use crate::api::response::{self, Answer};
use crate::api::routes::{self, Route};
use crate::core::allocate::{self, Allocation, Env, Order};
use crate::core::error::NamingError;
use crate::core::failover::Nodes;
use crate::core::idempotency::IdempotencyKey;
use crate::core::names;
use crate::core::registry;
use crate::core::retry::RetryPolicy;
use crate::core::template::{self, Template};
use crate::core::validate::{FieldError, NameRequest};
use crate::core::vault::{self, Call, Reply, VaultConfig};

wit_bindgen::generate!({
    path: "wit",
    world: "hostnaming:naming/allocator-component",
    with: {
        "fermyon:spin/variables@2.0.0": spin_sdk::wit::v2::variables,
    },
});

use exports::hostnaming::naming::allocator as wit;

/// The service's settings, read from Spin variables.
struct Settings {
    vault: VaultConfig,
    token: String,
    /// No single Vault call may take longer: a slow or black-holed Vault must still get
    /// the caller an answer.
    call_timeout: Duration,
    allocation: allocate::Settings,
    auth: auth::Mode,
}

/// A variable the manifest may leave out: its default when undefined.
fn optional_variable(name: &str, default: &str) -> Result<String, NamingError> {
    match spin_sdk::variables::get(name) {
        Ok(v) => Ok(v),
        Err(spin_sdk::variables::Error::Undefined(_)) => Ok(default.to_string()),
        Err(e) => Err(NamingError::Misconfigured(format!(
            "the Spin variable `{name}` is not usable: {e}"
        ))),
    }
}

fn variable(name: &str) -> Result<String, NamingError> {
    spin_sdk::variables::get(name).map_err(|e| {
        NamingError::Misconfigured(format!("the Spin variable `{name}` is not usable: {e}"))
    })
}

impl Settings {
    fn load() -> Result<Self, NamingError> {
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
            allocation: allocate::Settings {
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
    fn env(&self) -> SpinEnv {
        self.env_with(self.token.clone())
    }

    fn env_with(&self, token: String) -> SpinEnv {
        SpinEnv {
            token,
            timeout: self.call_timeout,
            budget: self.allocation.retry.deadline,
            started: monotonic_clock::now(),
            addrs: self.vault.nodes.clone(),
            nodes: Nodes::new(self.vault.nodes.len()),
        }
    }
}

/// Admits the request for `scope` and opens Vault access with the token that gets.
fn authenticate(
    settings: &Settings,
    req: &IncomingRequest,
    scope: Scope,
) -> Result<(SpinEnv, VaultToken), ApiError> {
    let token = settings.auth.admit(scope, |name| header(req, name))?;
    let env = match &token {
        VaultToken::Service => settings.env(),
        VaultToken::Caller(own) => settings.env_with(own.clone()),
    };
    Ok((env, token))
}

/// Waits until the monotonic clock reaches `deadline` (nanoseconds), yielding to Spin's
/// executor so other futures (an outbound request) progress meanwhile.
async fn sleep_until(deadline: u64) {
    poll_fn(|cx| {
        if monotonic_clock::now() >= deadline {
            return Poll::Ready(());
        }
        spin_executor::push_waker(
            monotonic_clock::subscribe_instant(deadline),
            cx.waker().clone(),
        );
        Poll::Pending
    })
    .await
}

/// [`Env`] over wasi:http and wasi clocks/random.
struct SpinEnv {
    token: String,
    timeout: Duration,
    /// The whole request's time for Vault (`allocation_deadline_ms`): per-call timeouts
    /// alone would let a request making several calls, each over several slow nodes, hold
    /// its caller for many times `timeout`.
    budget: Duration,
    started: u64,
    /// Vault's nodes, tried in order; `nodes` remembers which one answered last.
    addrs: Vec<String>,
    nodes: Nodes,
}

impl SpinEnv {
    /// Prefixes an error with its node when there are several to tell apart.
    fn which(&self, node: &str) -> String {
        if self.addrs.len() > 1 {
            format!("{node}: ")
        } else {
            String::new()
        }
    }

    /// One call to one node; errors name the node (never the token).
    ///
    /// Written against wasi:http directly rather than `spin_sdk::http::send`: one request
    /// is one header list, one body write and one wait on the reply or the deadline, about
    /// half the host calls of the general path, which showed in the host overhead.
    async fn send_to(&self, node: &str, call: &Call) -> Result<Reply, String> {
        let left = self.budget.saturating_sub(self.elapsed());
        if left.is_zero() {
            return Err(format!(
                "{}not asked: the request's deadline (`allocation_deadline_ms`, {:?}) had passed",
                self.which(node),
                self.budget
            ));
        }
        let limit = self.timeout.min(left);
        let deadline = monotonic_clock::now() + limit.as_nanos() as u64;
        match self.exchange(node, call, deadline) {
            Ok(reply) => Ok(reply),
            Err(Failure::Denied) => Err(format!(
                "{}the runtime refused the request: the address is not covered by \
                 allowed_outbound_hosts (the Spin variable `vault_allowed_host`)",
                self.which(node)
            )),
            Err(Failure::Other(e)) => Err(format!("{}{e}", self.which(node))),
            Err(Failure::Timeout) if limit < self.timeout => Err(format!(
                "{}no answer before the request's deadline (`allocation_deadline_ms`, {:?})",
                self.which(node),
                self.budget
            )),
            Err(Failure::Timeout) => Err(format!(
                "{}no answer within {:?}",
                self.which(node),
                self.timeout
            )),
        }
    }

    /// Sends `call` and reads the whole reply, giving up at `deadline` (monotonic ns).
    fn exchange(&self, node: &str, call: &Call, deadline: u64) -> Result<Reply, Failure> {
        use spin_sdk::wit::wasi::http0_2_0::{outgoing_handler, types as http};
        let (scheme, authority) = match node.split_once("://") {
            Some(("https", rest)) => (http::Scheme::Https, rest),
            Some((_, rest)) => (http::Scheme::Http, rest),
            None => (http::Scheme::Http, node),
        };
        let mut headers = vec![("x-vault-token".to_string(), self.token.as_bytes().to_vec())];
        if call.body.is_some() {
            headers.push(("content-type".into(), b"application/json".to_vec()));
        }
        let fields = http::Fields::from_list(&headers)
            .map_err(|e| Failure::Other(format!("the request headers are not valid: {e:?}")))?;
        let request = http::OutgoingRequest::new(fields);
        let invalid = |what: &str| Failure::Other(format!("the request's {what} is not valid"));
        request
            .set_method(match call.method {
                vault::Method::Get => &http::Method::Get,
                vault::Method::Post => &http::Method::Post,
            })
            .map_err(|()| invalid("method"))?;
        request
            .set_scheme(Some(&scheme))
            .map_err(|()| invalid("scheme"))?;
        request
            .set_authority(Some(authority))
            .map_err(|()| invalid("authority"))?;
        request
            .set_path_with_query(Some(&call.path))
            .map_err(|()| invalid("path"))?;
        // A request without a body never takes one: the host then sends no body at all.
        let body = match call.body {
            Some(_) => Some(request.body().map_err(|()| invalid("body"))?),
            None => None,
        };
        // No request-options: the deadline below covers the whole exchange, and giving up
        // drops the future, which cancels the host's work on it.
        let future = outgoing_handler::handle(request, None).map_err(Failure::from)?;
        let timer = monotonic_clock::subscribe_instant(deadline);
        // Every wait races the deadline, sending the body included: a Vault that never
        // takes the body must not hold the caller past it, whatever the host buffers.
        let wait = |pollable: &wasi::io::poll::Pollable| {
            if monotonic_clock::now() >= deadline {
                return Err(Failure::Timeout);
            }
            wasi::io::poll::poll(&[pollable, &timer]);
            Ok(())
        };
        if let (Some(body), Some(bytes)) = (body, &call.body) {
            let stream = body.write().map_err(|()| invalid("body"))?;
            let failed = |e| Failure::Other(format!("sending the body failed: {e}"));
            let mut rest = bytes.as_slice();
            while !rest.is_empty() {
                match stream.check_write().map_err(failed)? {
                    0 => wait(&stream.subscribe())?,
                    room => {
                        let n = rest.len().min(room as usize);
                        stream.write(&rest[..n]).map_err(failed)?;
                        rest = &rest[n..];
                    }
                }
            }
            // A flush is done when the stream takes writes again.
            stream.flush().map_err(failed)?;
            while stream.check_write().map_err(failed)? == 0 {
                wait(&stream.subscribe())?;
            }
            drop(stream);
            http::OutgoingBody::finish(body, None).map_err(Failure::from)?;
        }

        // Declared after `future`, so dropped before it: a pollable must not outlive its
        // parent resource.
        let ready = future.subscribe();
        let response = loop {
            if let Some(outcome) = future.get() {
                break outcome
                    .map_err(|()| Failure::Other("the reply was taken twice".into()))?
                    .map_err(Failure::from)?;
            }
            wait(&ready)?;
        };
        let status = response.status();
        let incoming = response
            .consume()
            .map_err(|()| Failure::Other("the reply body was taken twice".into()))?;
        let stream = incoming
            .stream()
            .map_err(|()| Failure::Other("the reply body was taken twice".into()))?;
        let mut bytes = Vec::new();
        loop {
            match stream.read(64 * 1024) {
                Ok(chunk) if !chunk.is_empty() => bytes.extend_from_slice(&chunk),
                Ok(_) => wait(&stream.subscribe())?,
                Err(wasi::io::streams::StreamError::Closed) => break,
                Err(wasi::io::streams::StreamError::LastOperationFailed(e)) => {
                    return Err(Failure::Other(format!(
                        "reading the reply failed: {}",
                        e.to_debug_string()
                    )))
                }
            }
        }
        drop(stream);
        http::IncomingBody::finish(incoming);
        Ok(Reply {
            status,
            body: bytes,
        })
    }
}

/// Why one exchange with one node produced no reply.
enum Failure {
    /// The runtime's allowed_outbound_hosts refused the address.
    Denied,
    Timeout,
    /// Anything else, as the message to give.
    Other(String),
}

impl From<ErrorCode> for Failure {
    fn from(e: ErrorCode) -> Self {
        match e {
            ErrorCode::HttpRequestDenied => Self::Denied,
            e => Self::Other(e.to_string()),
        }
    }
}

impl Env for SpinEnv {
    async fn send(&mut self, call: Call) -> Result<Reply, String> {
        // Copied out so the closure can borrow the rest of `self`; two words.
        let mut nodes = self.nodes.clone();
        let this = &*self;
        let outcome = nodes
            .send(|node| this.send_to(&this.addrs[node], &call))
            .await;
        self.nodes = nodes;
        outcome
    }

    async fn sleep(&mut self, duration: Duration) {
        sleep_until(monotonic_clock::now() + duration.as_nanos() as u64).await
    }

    fn elapsed(&self) -> Duration {
        Duration::from_nanos(monotonic_clock::now().saturating_sub(self.started))
    }

    fn random(&mut self) -> u64 {
        wasi::random::random::get_random_u64()
    }

    fn unix_millis(&self) -> u64 {
        let now = wall_clock::now();
        now.seconds * 1000 + u64::from(now.nanoseconds / 1_000_000)
    }

    fn stale_read(&mut self) {
        self.nodes.skip();
    }

    async fn read_fresh(&mut self) {
        let mut nodes = self.nodes.clone();
        let (this, probe) = (&*self, vault::active_health());
        nodes
            .find_active(|node| {
                let probe = &probe;
                async move {
                    let reply = this.send_to(&this.addrs[node], probe).await;
                    reply.ok().map(|r| r.status)
                }
            })
            .await;
        self.nodes = nodes;
    }
}

/// The one allocation path behind both the typed export and HTTP.
async fn generate(
    settings: &Settings,
    env: &mut SpinEnv,
    order: Order<'_>,
) -> Result<Allocation, NamingError> {
    order.request.check_fits(&settings.allocation.template)?;
    allocate::allocate(env, &settings.vault, &settings.allocation, order).await
}

struct Component;

impl wit::Guest for Component {
    fn generate(request: wit::NameRequest) -> Result<wit::Allocation, wit::NamingError> {
        let result = (|| {
            let tuple =
                NameRequest::parse(&request.application, &request.role, &request.environment)?;
            if !(1..=allocate::MAX_COUNT).contains(&request.count) {
                return Err(NamingError::InvalidInput(FieldError::new(
                    "count",
                    format!("must be a whole number from 1 to {}", allocate::MAX_COUNT),
                )));
            }
            let key = match &request.idempotency_key {
                Some(k) => Some(IdempotencyKey::parse(k)?),
                None => None,
            };
            let order = Order {
                request: &tuple,
                count: request.count,
                key: key.as_ref(),
            };
            let settings = Settings::load()?;
            let mut env = settings.env();
            spin_sdk::http::run(generate(&settings, &mut env, order))
        })();
        result
            .map(|g| wit::Allocation {
                names: g
                    .names
                    .into_iter()
                    .map(|a| wit::IssuedName {
                        hostname: a.hostname,
                        number: a.number,
                    })
                    .collect(),
                replayed: g.replayed,
            })
            .map_err(|e| match e {
                NamingError::InvalidInput(f) => wit::NamingError::InvalidInput(wit::FieldError {
                    field: f.field,
                    reason: f.reason,
                }),
                NamingError::NameTooLong { length } => wit::NamingError::NameTooLong(length as u32),
                NamingError::VaultUnavailable(m) => wit::NamingError::VaultUnavailable(m),
                NamingError::VaultDenied(m) => wit::NamingError::VaultDenied(m),
                NamingError::ContentionExhausted { attempts } => {
                    wit::NamingError::ContentionExhausted(attempts)
                }
                NamingError::Misconfigured(m) => wit::NamingError::Misconfigured(m),
                NamingError::IdempotencyMismatch => wit::NamingError::IdempotencyKeyReused,
                NamingError::InFlight => wit::NamingError::InFlight,
                // `generate` never looks a name up.
                NamingError::NotFound(m) => wit::NamingError::VaultUnavailable(m),
            })
    }
}

export!(Component);

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

fn header(req: &IncomingRequest, name: &str) -> Option<String> {
    let values = req.headers().get(name);
    values
        .first()
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

async fn serve(req: IncomingRequest) -> Result<Answer, ApiError> {
    let path_and_query = req.path_with_query().unwrap_or_default();
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query.as_str(), ""));
    let method = req.method().to_string();
    let route = routes::route(&method, path)?;
    if route == Route::OpenApi {
        return Ok(response::openapi());
    }
    let settings = Settings::load()?;
    match route {
        Route::OpenApi => unreachable!("answered above"),
        Route::Healthz => {
            names::health(&mut settings.env(), &settings.vault).await?;
            Ok(response::healthy(&settings.vault.mount))
        }
        Route::Generate => {
            let (mut env, token) = authenticate(&settings, &req, Scope::Generate)?;
            let key = match header(&req, "idempotency-key") {
                Some(h) => Some(IdempotencyKey::parse(&h)?),
                None => None,
            };
            let body = read_body(req).await?;
            let (request, count) = request::parse_generate(&body)?;
            let order = Order {
                request: &request,
                count,
                key: key.as_ref(),
            };
            let what = format!("application '{}'", request.application.as_str());
            let allocation = generate(&settings, &mut env, order)
                .await
                .map_err(token.refusal(&what))?;
            Ok(response::generated(&request, &allocation))
        }
        Route::ListNames => {
            let (mut env, token) = authenticate(&settings, &req, Scope::Read)?;
            let query = request::parse_list_query(query)?;
            let what = format!("application '{}'", query.application.as_str());
            let template = &settings.allocation.template;
            let page = names::list(&mut env, &settings.vault, template, &query)
                .await
                .map_err(token.refusal(&what))?;
            Ok(response::listing(&page))
        }
        Route::GetName(hostname) => {
            let (mut env, token) = authenticate(&settings, &req, Scope::Read)?;
            let hostname = registry::parse_hostname(hostname)?;
            let record = names::get(&mut env, &settings.vault, hostname)
                .await
                .map_err(token.refusal(&format!("name '{hostname}'")))?;
            Ok(response::record(&record))
        }
        Route::ReleaseName(hostname) => {
            let (mut env, token) = authenticate(&settings, &req, Scope::Admin)?;
            let hostname = registry::parse_hostname(hostname)?;
            let record = names::release(&mut env, &settings.vault, hostname)
                .await
                .map_err(token.refusal(&format!("name '{hostname}'")))?;
            Ok(response::record(&record))
        }
    }
}

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let (status, headers, body) = response::finish(serve(req).await);
    if status >= 500 {
        // The detail is built without secrets (see `vault`), so it is safe to log.
        eprintln!("hostnaming: {} {}", status, body["detail"]);
    }
    let fields: Vec<(String, Vec<u8>)> = headers
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into_bytes()))
        .collect();
    let response = OutgoingResponse::new(Fields::from_list(&fields).expect("static header names"));
    response.set_status_code(status).expect("valid status");
    if let Err(e) = out
        .set_with_body(response, body.to_string().into_bytes())
        .await
    {
        eprintln!("hostnaming: writing the response failed: {e}");
    }
}
