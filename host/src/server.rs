//! Serving the component the way Spin's HTTP trigger does: the Engine, Linker and
//! InstancePre are built once, and every request gets a fresh Store and instance from the
//! pooling allocator. The same InstancePre also serves typed calls to the WIT export.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use hyper::server::conn::http1;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::admission::{Admission, Permit, CONFLICTS_HEADER};
use crate::manifest::Manifest;
use crate::metrics::{Gauges, Metrics};
use crate::outbound::{InstanceOutbound, Outbound};
use crate::problem;
use crate::telemetry::{self, Arrival, LogFormat, Telemetry};
use hostnaming::api::auth;
use hostnaming::core::template::Template;

/// Bindings for our own world: the typed allocator export and the Spin variables import.
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "hostnaming:naming/allocator-component",
        exports: { default: async },
    });
}

pub use bindings::exports::hostnaming::naming::allocator::{
    Action, Allocation, Event, IssuedName, Metadata, MetadataPatch, NameRecord, NameRequest,
    NameStatus, NamingError, SearchPage, SearchQuery,
};
use bindings::fermyon::spin::variables;

/// How many instances may be live at once; requests beyond it get a 503.
const MAX_INSTANCES: u32 = 1000;

/// One store's state: WASI, wasi:http, Spin variables and the shared outbound pool.
pub struct State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    outbound: InstanceOutbound,
    variables: Arc<HashMap<String, String>>,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

impl variables::Host for State {
    fn get(&mut self, name: String) -> Result<String, variables::Error> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(variables::Error::InvalidName(name));
        }
        self.variables
            .get(&name)
            .cloned()
            .ok_or(variables::Error::Undefined(name))
    }
}

/// A compiled component, reusable by several [`App`]s (tests build many apps from one).
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    component: Component,
}

impl Runtime {
    pub fn load(source: &Path) -> Result<Self> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(MAX_INSTANCES)
            .total_core_instances(MAX_INSTANCES * 2)
            .total_memories(MAX_INSTANCES * 2)
            .total_tables(MAX_INSTANCES * 2)
            .total_stacks(MAX_INSTANCES)
            .max_memory_size(64 << 20)
            // Resetting a slot by memset instead of madvise keeps its pages mapped, so the
            // next instance does not fault them back in: the largest per-request cost.
            .linear_memory_keep_resident(1 << 20)
            .table_keep_resident(64 << 10)
            .async_stack_keep_resident(256 << 10)
            // Linux 6.7+ can tell which pages a request dirtied, so a reset touches only
            // those, which cuts the host overhead per request (see docs/performance.md).
            // Where unsupported this falls back silently.
            .pagemap_scan(wasmtime::Enabled::Auto);
        let mut config = Config::new();
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        // Without a perf map, `perf` shows the guest as anonymous JIT addresses.
        if std::env::var_os("HOSTNAMING_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config)?;
        let component = Component::from_file(&engine, source)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "loading the component {} (build it with `cargo build --target \
                 wasm32-wasip2 --profile component -p hostnaming`)",
                    source.display()
                )
            })?;
        Ok(Self { engine, component })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn component(&self) -> &Component {
        &self.component
    }
}

/// The component ready to serve: pre-instantiated once, instantiated per request.
pub struct App {
    manifest: Manifest,
    proxy: ProxyPre<State>,
    /// The typed export, which only our own component has; Spin, and so this host, serve
    /// any wasi:http component (the benchmark's floor is one).
    typed: Option<bindings::AllocatorComponentPre<State>>,
    outbound: Outbound,
    variables: Arc<HashMap<String, String>>,
    /// Instances running at once; more requests wait their turn. On one hot counter
    /// more instances only add lost check-and-sets, so the limit follows the races the
    /// component reports.
    admission: Arc<Admission>,
    /// The longest a request waits for its turn before it is refused with a 503: while
    /// Vault stalls, each turn can last the whole allocation deadline, and a queue of
    /// callers would otherwise wait many deadlines in a row.
    queue_timeout: Duration,
    /// Request lines and metrics.
    telemetry: Arc<Telemetry>,
    limits: ConnectionLimits,
    /// One permit per open client connection.
    connections: Arc<Semaphore>,
}

/// What a client connection may take of the host. A connection that has sent no complete
/// request head within `header_read_timeout` is closed: hyper starts that clock whenever
/// it waits for a head, the first on a connection as each next one on a keep-alive
/// connection, so the same limit is the idle keep-alive timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    /// The request line and headers, in bytes; larger gets a 431.
    pub max_header_bytes: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 32 << 10,
        }
    }
}

/// How much longer than a request may take (its wait for a turn, then the allocation
/// deadline) a shutdown waits for in-flight requests.
pub const SHUTDOWN_MARGIN: Duration = Duration::from_secs(5);

/// How long a request may wait for a turn unless `serve --queue-timeout-ms` says otherwise.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(5);

/// How many requests run at once while answers report lost races (and at the start): two
/// per core (at least 4). On one hot counter more racers only lose more check-and-sets,
/// so a small fixed limit beat larger ones there (see docs/performance.md).
pub fn default_concurrency() -> usize {
    cores().saturating_mul(2).max(4)
}

/// The most requests that run at once unless `serve --max-concurrent` says otherwise:
/// eight per core (at least 16). Reached only while answers report no lost races; each
/// instance costs memory, so this also bounds the host's RSS.
pub fn default_max_concurrency() -> usize {
    cores().saturating_mul(8).max(16)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

impl App {
    /// Loads the manifest's component and links it.
    pub fn load(manifest: Manifest) -> Result<Self> {
        let runtime = Runtime::load(&manifest.source)?;
        Self::new(&runtime, manifest)
    }

    pub fn new(runtime: &Runtime, manifest: Manifest) -> Result<Self> {
        let outbound = Outbound::new(manifest.allowed_outbound_hosts.clone());
        Self::with_outbound(runtime, manifest, outbound)
    }

    /// Like [`App::new`], with outgoing requests handled by `outbound`.
    pub fn with_outbound(
        runtime: &Runtime,
        manifest: Manifest,
        outbound: Outbound,
    ) -> Result<Self> {
        check_settings(&manifest)?;
        let metrics = Metrics::new();
        let outbound = outbound.with_metrics(metrics.clone());
        let limits = ConnectionLimits::default();
        let mut linker = Linker::<State>::new(&runtime.engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        variables::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)?;
        let pre = linker.instantiate_pre(&runtime.component)?;
        // Absent is fine; exported but not matching our WIT is an error worth stopping for.
        let exports_typed = runtime
            .component
            .component_type()
            .exports(&runtime.engine)
            .any(|(name, _)| name.starts_with("hostnaming:naming/allocator"));
        let typed = if exports_typed {
            Some(bindings::AllocatorComponentPre::new(pre.clone())?)
        } else {
            None
        };
        Ok(Self {
            proxy: ProxyPre::new(pre)?,
            typed,
            outbound,
            variables: Arc::new(manifest.variables.clone()),
            admission: Admission::adaptive(
                default_concurrency(),
                default_concurrency(),
                default_max_concurrency(),
            ),
            queue_timeout: DEFAULT_QUEUE_TIMEOUT,
            manifest,
            // Quiet unless asked: tests and the benchmark embed many apps.
            telemetry: Arc::new(Telemetry {
                metrics,
                format: LogFormat::Off,
            }),
            connections: Arc::new(Semaphore::new(limits.max_connections)),
            limits,
        })
    }

    /// Writes one line per request on stderr in `format`.
    pub fn log_format(mut self, format: LogFormat) -> Self {
        self.telemetry = Arc::new(Telemetry {
            metrics: self.telemetry.metrics.clone(),
            format,
        });
        self
    }

    /// Limits what each client connection may take ([`ConnectionLimits`]).
    pub fn connection_limits(mut self, limits: ConnectionLimits) -> Self {
        let limits = ConnectionLimits {
            max_connections: limits.max_connections.max(1),
            ..limits
        };
        self.connections = Arc::new(Semaphore::new(limits.max_connections));
        self.limits = limits;
        self
    }

    /// The metrics in Prometheus' text exposition format.
    pub fn metrics_text(&self) -> String {
        self.telemetry.metrics.render(&Gauges {
            admission_running: self.admission.running(),
            admission_limit: self.admission.limit(),
            admission_max: self.admission.ceiling(),
            connections_open: self
                .limits
                .max_connections
                .saturating_sub(self.connections.available_permits()),
            connections_max: self.limits.max_connections,
        })
    }

    /// How long a shutdown waits for requests in flight: a request's wait for a turn, its
    /// allocation deadline (`allocation_deadline_ms`), and a margin.
    pub fn drain_timeout(&self) -> Duration {
        let deadline = self
            .manifest
            .variables
            .get("allocation_deadline_ms")
            .and_then(|v| v.parse().ok())
            .map_or(Duration::from_secs(10), Duration::from_millis);
        self.queue_timeout + deadline + SHUTDOWN_MARGIN
    }

    /// Refuses a request that found no turn within `timeout`.
    pub fn queue_timeout(mut self, timeout: Duration) -> Self {
        self.queue_timeout = timeout;
        self
    }

    /// Requests running in an instance now.
    pub fn running(&self) -> usize {
        self.admission.running()
    }

    /// How many requests may run at once now.
    pub fn concurrency_limit(&self) -> usize {
        self.admission.limit()
    }

    /// Without read-then-write gates ([`crate::gate`]): this host's instances racing on one
    /// counter find out by check-and-set alone, as under Spin.
    pub fn without_gates(mut self) -> Self {
        self.outbound = self.outbound.without_gates();
        self
    }

    /// Lets exactly `n` (at least 1) requests run at once, whatever the answers report.
    pub fn limit_concurrency(mut self, n: usize) -> Self {
        self.admission = Admission::fixed(n);
        self
    }

    /// Lets at most `max` requests run at once: the default concurrency while answers
    /// report lost races, more (up to `max`) while they come back clean.
    pub fn adapt_concurrency(self, max: usize) -> Self {
        self.adapt_concurrency_between(default_concurrency(), max)
    }

    /// Like [`App::adapt_concurrency`], falling no lower than `floor` (capped at `max`).
    pub fn adapt_concurrency_between(mut self, floor: usize, max: usize) -> Self {
        let floor = floor.min(max.max(1));
        self.admission = Admission::adaptive(floor, floor, max);
        self
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    fn store(&self) -> Store<State> {
        let wasi = WasiCtx::builder().inherit_stdout().inherit_stderr().build();
        Store::new(
            self.proxy.engine(),
            State {
                wasi,
                http: WasiHttpCtx::new(),
                table: ResourceTable::new(),
                outbound: self.outbound.for_instance(),
                variables: self.variables.clone(),
            },
        )
    }

    /// A fresh instance for typed calls, and the store it lives in: call any function of
    /// the `hostnaming:naming/allocator` export on `instance.hostnaming_naming_allocator()`.
    /// Use one for one call and drop it, as [`App::generate`] does: an instance's last read
    /// holds its path's gate ([`crate::gate`]) until the instance ends.
    pub async fn typed(&self) -> Result<(Store<State>, bindings::AllocatorComponent)> {
        let typed = self.typed.as_ref().ok_or_else(|| {
            anyhow::anyhow!("the component does not export hostnaming:naming/allocator")
        })?;
        let mut store = self.store();
        let instance = typed.instantiate_async(&mut store).await?;
        Ok((store, instance))
    }

    /// Calls the typed `generate` export in a fresh instance.
    pub async fn generate(&self, request: &NameRequest) -> Result<Result<Allocation, NamingError>> {
        let (mut store, instance) = self.typed().await?;
        instance
            .hostnaming_naming_allocator()
            .call_generate(&mut store, request)
            .await
            .map_err(Into::into)
    }

    /// Serves one HTTP request through a fresh instance (`/livez` in the host), with a
    /// request id in its answer, logged and counted when its answer is done.
    pub async fn handle(
        &self,
        mut req: hyper::Request<hyper::body::Incoming>,
        client: SocketAddr,
    ) -> hyper::Response<HyperOutgoingBody> {
        let id = telemetry::request_id(req.headers().get(telemetry::REQUEST_ID_HEADER));
        // The component sees the id it is answered under.
        if let Ok(v) = http::HeaderValue::from_str(&id) {
            req.headers_mut().insert(telemetry::REQUEST_ID_HEADER, v);
        }
        let arrival = Arrival::new(&req, id.clone());
        self.telemetry.metrics.request_started();
        let (resp, calls) = self.dispatch(req, client, &id).await;
        self.telemetry.observe(arrival, resp, calls)
    }

    async fn dispatch(
        &self,
        mut req: hyper::Request<hyper::body::Incoming>,
        client: SocketAddr,
        id: &str,
    ) -> (hyper::Response<HyperOutgoingBody>, Option<Arc<AtomicU32>>) {
        let path = req.uri().path().to_string();
        // Liveness is the process answering, whatever Vault's state (that is /healthz).
        if path == "/livez" {
            return (problem::alive(), None);
        }
        let Some(route) = self.manifest.route_for(&path) else {
            return (problem::response_for(problem::not_found(&path), id), None);
        };
        // The headers Spin's trigger adds, so the component sees what it would under Spin.
        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost")
            .to_string();
        let full_url = format!(
            "http://{host}{}",
            req.uri().path_and_query().map_or("/", |p| p.as_str())
        );
        for (name, value) in [
            ("spin-full-url", full_url),
            ("spin-path-info", path),
            ("spin-matched-route", route.as_manifest()),
            ("spin-client-addr", client.to_string()),
        ] {
            if let Ok(v) = http::HeaderValue::from_str(&value) {
                req.headers_mut().insert(name, v);
            }
        }
        let Ok(permit) = tokio::time::timeout(self.queue_timeout, self.admission.acquire()).await
        else {
            let detail = format!(
                "no turn to run within {:?}: {} requests are running and more are waiting",
                self.queue_timeout,
                self.admission.running()
            );
            return (
                problem::response_for(problem::overloaded(&detail), id),
                None,
            );
        };
        let store = self.store();
        let calls = store.data().outbound.calls();
        let resp = match self.run_handler(store, req, permit).await {
            Ok(resp) => resp,
            Err(e) => {
                eprintln!("hostnaming host: request {id} failed: {e:#}");
                let problem = if pool_exhausted(&e) {
                    problem::overloaded("too many requests in flight")
                } else {
                    problem::component_failed()
                };
                problem::response_for(problem, id)
            }
        };
        (resp, Some(calls))
    }

    async fn run_handler(
        &self,
        mut store: Store<State>,
        req: hyper::Request<hyper::body::Incoming>,
        permit: Permit,
    ) -> Result<hyper::Response<HyperOutgoingBody>> {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        let pre = self.proxy.clone();
        // The guest may keep writing the body after it has sent the head, so it runs in its
        // own task while this one returns the response.
        let task = tokio::task::spawn(async move {
            let _permit = permit;
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, req, out)
                .await
        });
        match receiver.await {
            Ok(Ok(resp)) => {
                let conflicts = resp.headers().get(CONFLICTS_HEADER);
                if let Some(n) = conflicts.and_then(|v| v.to_str().ok()?.parse().ok()) {
                    self.admission.observe(n);
                }
                Ok(resp)
            }
            Ok(Err(code)) => Err(anyhow::anyhow!(
                "the component answered with an error: {code:?}"
            )),
            Err(_) => match task.await {
                Ok(Ok(())) => Err(anyhow::anyhow!("the component never set a response")),
                Ok(Err(e)) => Err(e.into()),
                Err(e) => Err(e.into()),
            },
        }
    }

    /// Accepts connections until the listener fails; each connection is served in its own
    /// task with HTTP/1.1 keep-alive.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> Result<()> {
        self.serve_until(listener, std::future::pending()).await
    }

    /// Like [`App::serve`] until `shutdown` completes; then stops accepting, lets the
    /// requests in flight finish (closing each connection after its answer), for at most
    /// [`App::drain_timeout`], and returns.
    pub async fn serve_until(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()> {
        let mut shutdown = std::pin::pin!(shutdown);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        // Every connection task holds a sender; when all are gone, all are done.
        let (open, mut all_closed) = tokio::sync::mpsc::channel::<()>(1);
        let limits = self.limits;
        let mut builder = http1::Builder::new();
        builder
            .keep_alive(true)
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_header_size(limits.max_header_bytes)
            // A head that never ends would otherwise grow the buffer to hyper's 400 KB.
            .max_buf_size(limits.max_header_bytes.max(8192));
        loop {
            // Beyond the cap, connections wait in the kernel's backlog, not in memory here.
            let permit = tokio::select! {
                biased;
                _ = &mut shutdown => break,
                p = self.connections.clone().acquire_owned() => p.expect("never closed"),
            };
            let (stream, client) = tokio::select! {
                biased;
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors, or a connection reset before it was
                        // accepted: transient, and no reason to stop serving the others.
                        eprintln!("hostnaming host: accepting a connection: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let app = self.clone();
            let (open, mut stopped, builder) = (open.clone(), stopped.clone(), builder.clone());
            tokio::task::spawn(async move {
                let _held = (permit, open);
                let service = hyper::service::service_fn(move |req| {
                    let app = app.clone();
                    async move { Ok::<_, std::convert::Infallible>(app.handle(req, client).await) }
                });
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                let mut conn = std::pin::pin!(conn);
                let stop = async move {
                    let _ = stopped.wait_for(|s| *s).await;
                };
                let served = tokio::select! {
                    r = conn.as_mut() => r,
                    () = stop => {
                        // Closes an idle connection now, a busy one after its answer.
                        conn.as_mut().graceful_shutdown();
                        conn.await
                    }
                };
                if let Err(e) = served {
                    if !e.is_incomplete_message() && !e.is_timeout() {
                        eprintln!("hostnaming host: connection from {client}: {e}");
                    }
                }
            });
        }
        drop(listener);
        let _ = stop.send(true);
        drop(open);
        let drain = self.drain_timeout();
        eprintln!("hostnaming: shutting down: finishing requests in flight (at most {drain:?})");
        if tokio::time::timeout(drain, all_closed.recv())
            .await
            .is_err()
        {
            eprintln!(
                "hostnaming: connections still busy after {drain:?}: {} open",
                self.limits.max_connections - self.connections.available_permits()
            );
        }
        Ok(())
    }
}

/// Checks the settings the component would otherwise only reject per request, so that a
/// bad one stops the service at start with a message pointing at it.
pub fn check_settings(manifest: &Manifest) -> Result<()> {
    let var = |name: &str| manifest.variables.get(name).map(String::as_str);
    if let Some(template) = var("name_template") {
        Template::parse(template).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    auth::Mode::parse(
        var("auth_mode").unwrap_or(""),
        var("api_tokens").unwrap_or(""),
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    Ok(())
}

/// The `vault_addr` nodes that `allowed_outbound_hosts` would refuse, as an error that
/// names the variable to set. Checked by `serve` so a mismatch stops the start instead of
/// failing every request.
pub fn check_vault_reachable(manifest: &Manifest) -> Result<()> {
    let var = |name: &str| manifest.variables.get(name).map(String::as_str);
    let vault = hostnaming::core::vault::VaultConfig::parse(
        var("vault_addr").unwrap_or_default(),
        var("vault_mount").unwrap_or("hostnaming"),
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    let refused: Vec<&str> = vault
        .nodes
        .iter()
        .filter(|node| {
            !node
                .parse::<http::Uri>()
                .is_ok_and(|uri| manifest.allows(&uri))
        })
        .map(String::as_str)
        .collect();
    if !refused.is_empty() {
        anyhow::bail!(
            "allowed_outbound_hosts does not cover the Vault node(s) {}: set vault_allowed_host \
             (SPIN_VARIABLE_VAULT_ALLOWED_HOST) to the node, or for a cluster to a pattern \
             covering every node such as http://10.0.0.0/24:8200 or https://*.vault.internal:8200",
            refused.join(", ")
        );
    }
    Ok(())
}

/// What an operator must be told at start: an API anyone can call.
pub fn open_access_warning(manifest: &Manifest) -> Option<String> {
    let var = |name: &str| manifest.variables.get(name).map(String::as_str);
    match auth::Mode::parse(
        var("auth_mode").unwrap_or(""),
        var("api_tokens").unwrap_or(""),
    ) {
        Ok(auth::Mode::Tokens(tokens)) if tokens.is_empty() => Some(
            "WARNING: no api_tokens are configured: ANYONE who can reach this service can \
             allocate and release names. Set SPIN_VARIABLE_API_TOKENS (see `hostnaming token`) \
             or SPIN_VARIABLE_AUTH_MODE=vault."
                .into(),
        ),
        _ => None,
    }
}

/// Whether `e` is the pooling allocator refusing an instance because as many as it holds
/// are live: the host is full, not broken.
fn pool_exhausted(e: &anyhow::Error) -> bool {
    e.chain()
        .any(|cause| cause.is::<wasmtime::PoolConcurrencyLimitError>())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An engine whose pool holds one core instance, and the error a second live one gets.
    fn second_instance_error() -> anyhow::Error {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_core_instances(1);
        let mut config = Config::new();
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).unwrap();
        // The smallest valid module: the magic number and version 1.
        let module = wasmtime::Module::new(&engine, b"\0asm\x01\0\0\0").unwrap();
        let mut first = Store::new(&engine, ());
        wasmtime::Instance::new(&mut first, &module, &[]).unwrap();
        let mut second = Store::new(&engine, ());
        wasmtime::Instance::new(&mut second, &module, &[])
            .unwrap_err()
            .into()
    }

    #[test]
    fn a_full_pool_is_recognised_by_its_error_type_through_context() {
        let e = second_instance_error();
        assert!(pool_exhausted(&e), "{e:#}");
        assert!(
            pool_exhausted(&e.context("instantiating")),
            "context hides it"
        );
    }

    #[test]
    fn an_error_that_only_mentions_the_pool_is_a_failure() {
        let e = anyhow::anyhow!("maximum concurrent pooling of something else");
        assert!(!pool_exhausted(&e));
    }
}
