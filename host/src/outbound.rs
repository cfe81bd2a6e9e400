//! Outgoing HTTP for the component: refused unless `allowed_outbound_hosts` permits it, and
//! sent over a connection pool shared by all instances, so each Vault call reuses a warm
//! keep-alive connection instead of paying a TCP handshake. Reads take the path's gate
//! ([`crate::gate`]) so this host's instances take turns on a hot counter.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::gate::{Gates, HeldGate, Slot};
use crate::manifest::AllowedHost;
use crate::metrics::Metrics;

/// Used when the guest sets no timeout of its own.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;
type SendFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), Error>> + Send>;

/// Answers outgoing requests in-process, to measure the host and component alone.
pub type Stub = Arc<dyn Fn(&http::Method, &http::Uri) -> (u16, &'static str) + Send + Sync>;

/// Shared by every request's store; cloning is cheap.
#[derive(Clone)]
pub struct Outbound {
    allowed: Arc<Vec<AllowedHost>>,
    client: Client<HttpConnector, WasiBody>,
    stub: Option<Stub>,
    /// Read-then-write gates across instances; `None` turns them off.
    gates: Option<Arc<Gates>>,
    /// Where Vault calls are counted and timed.
    metrics: Option<Arc<Metrics>>,
}

fn classify(e: hyper_util::client::legacy::Error) -> Error {
    if e.is_connect() {
        Error::ConnectionRefused
    } else {
        Error::HttpProtocolError
    }
}

impl Outbound {
    pub fn new(allowed: Vec<AllowedHost>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            .build(connector);
        Self {
            allowed: Arc::new(allowed),
            client,
            stub: None,
            gates: Some(Arc::default()),
            metrics: None,
        }
    }

    /// Counts and times every Vault call in `metrics`.
    pub fn with_metrics(self, metrics: Arc<Metrics>) -> Self {
        Self {
            metrics: Some(metrics),
            ..self
        }
    }

    /// Without read-then-write gates: racing instances find out by check-and-set alone,
    /// as under Spin.
    pub fn without_gates(self) -> Self {
        Self {
            gates: None,
            ..self
        }
    }

    /// Answers every allowed request with `stub` instead of the network.
    pub fn stubbed(allowed: Vec<AllowedHost>, stub: Stub) -> Self {
        Self {
            stub: Some(stub),
            ..Self::new(allowed)
        }
    }

    fn allows(&self, uri: &http::Uri) -> bool {
        self.allowed.iter().any(|h| h.allows(uri))
    }

    /// The hooks for one instance's store: the shared pool, and that instance's own gate.
    pub fn for_instance(&self) -> InstanceOutbound {
        InstanceOutbound {
            shared: self.clone(),
            slot: Slot::default(),
            calls: Arc::default(),
        }
    }

    /// Sends outside any gate: refused, stubbed, over TLS, or over the pool.
    async fn exchange(
        &self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        stubbed: Option<(u16, &'static str)>,
        deadline: tokio::time::Instant,
    ) -> Result<(http::Response<WasiBody>, IoFuture), Error> {
        if let Some((status, body)) = stubbed {
            // Read the request body as a server would; the guest's write fails otherwise.
            let _ = request.into_body().collect().await;
            let body = http_body_util::Full::new(bytes::Bytes::from_static(body.as_bytes()))
                .map_err(|never| match never {})
                .boxed_unsync();
            let res = http::Response::builder()
                .status(status)
                .body(body)
                .map_err(|e| Error::InternalError(Some(e.to_string())))?;
            return Ok((res, Box::new(async { Ok(()) }) as IoFuture));
        }
        if request.uri().scheme() == Some(&http::uri::Scheme::HTTPS) {
            // TLS goes through wasmtime's own client (rustls, webpki roots); only the
            // plain-HTTP path is pooled, which is what a loopback or sidecar Vault uses.
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            return Ok((res.map(BodyExt::boxed_unsync), Box::new(io) as IoFuture));
        }
        let res = tokio::time::timeout_at(deadline, self.client.request(request))
            .await
            .map_err(|_| Error::ConnectionReadTimeout)?
            .map_err(classify)?;
        let res = res.map(|body| body.map_err(Error::Hyper).boxed_unsync());
        Ok((res, Box::new(async { Ok(()) }) as IoFuture))
    }
}

/// One instance's outgoing HTTP (see [`crate::gate`] for its gate).
pub struct InstanceOutbound {
    shared: Outbound,
    slot: Slot,
    /// Calls sent to Vault so far, for the request log.
    calls: Arc<AtomicU32>,
}

impl InstanceOutbound {
    /// The instance's count of calls sent to Vault, readable after the store moves on.
    pub fn calls(&self) -> Arc<AtomicU32> {
        self.calls.clone()
    }
}

/// What an outgoing request does about gates before it is sent.
enum Gate {
    /// Nothing: not a read, or gates are off.
    None,
    /// A read of the path already held (a read again after a lagging answer).
    Held(HeldGate),
    /// A read: wait for the path's gate.
    Enter(Arc<Gates>),
}

impl WasiHttpHooks for InstanceOutbound {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> SendFuture {
        let shared = self.shared.clone();
        let slot = self.slot.clone();
        let calls = self.calls.clone();
        let allowed = shared.allows(request.uri());
        let stubbed = shared
            .stub
            .as_ref()
            .map(|stub| stub(request.method(), request.uri()));
        let timeout = options
            .and_then(|o| o.first_byte_timeout)
            .unwrap_or(DEFAULT_TIMEOUT);
        let path = request.uri().path().to_owned();
        // Whatever this instance held, only a read or write of the same path keeps it.
        let held = slot.take().filter(|h| h.path() == path);
        let (gate, write_held) = match (request.method().clone(), held) {
            (http::Method::GET, Some(h)) => (Gate::Held(h), None),
            (http::Method::GET, None) => match &shared.gates {
                Some(gates) => (Gate::Enter(gates.clone()), None),
                None => (Gate::None, None),
            },
            (http::Method::PUT | http::Method::POST | http::Method::PATCH, held) => {
                (Gate::None, held)
            }
            (_, _) => (Gate::None, None),
        };
        Box::new(async move {
            if !allowed {
                return Err(Error::HttpRequestDenied);
            }
            // The wait for a turn counts against the call's own timeout: to the guest a
            // queue behind a stalled holder is a slow Vault, which it already handles.
            let deadline = tokio::time::Instant::now() + timeout;
            let held = match gate {
                Gate::None => None,
                Gate::Held(h) => Some(h),
                Gate::Enter(gates) => Some(
                    tokio::time::timeout_at(deadline, gates.enter(&path))
                        .await
                        .map_err(|_| Error::ConnectionReadTimeout)?,
                ),
            };
            let sent = Instant::now();
            let answer = shared.exchange(request, options, stubbed, deadline).await;
            calls.fetch_add(1, Relaxed);
            if let Some(metrics) = &shared.metrics {
                let ok = matches!(&answer, Ok((res, _)) if !res.status().is_server_error());
                metrics.vault_call(ok, sent.elapsed());
            }
            if let (Some(held), Ok(_)) = (held, &answer) {
                slot.keep(held);
            }
            // A write's gate goes only now that Vault has decided it.
            drop(write_held);
            answer
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn outbound() -> Outbound {
        let allowed = vec![AllowedHost::parse("http://vault:8200").unwrap()];
        let stub: Stub = Arc::new(|method, _| match *method {
            http::Method::GET => (
                200,
                r#"{"data":{"data":{"counter":1},"metadata":{"version":1}}}"#,
            ),
            _ => (200, r#"{"data":{"version":2}}"#),
        });
        Outbound::stubbed(allowed, stub)
    }

    fn request(method: http::Method, path: &str) -> http::Request<WasiBody> {
        let body = http_body_util::Empty::new()
            .map_err(|never| match never {})
            .boxed_unsync();
        http::Request::builder()
            .method(method)
            .uri(format!("http://vault:8200{path}"))
            .body(body)
            .unwrap()
    }

    fn call(
        instance: &mut InstanceOutbound,
        method: http::Method,
        path: &str,
    ) -> tokio::task::JoinHandle<Result<u16, Error>> {
        let request = request(method, path);
        let future = instance.send_request(request, None, Box::new(async { Ok(()) }));
        tokio::spawn(async move {
            let (res, _) = Box::into_pin(future).await?;
            Ok(res.status().as_u16())
        })
    }

    /// Whether `task` finishes within a short while.
    async fn answered(task: &mut tokio::task::JoinHandle<Result<u16, Error>>) -> bool {
        tokio::time::timeout(Duration::from_millis(50), task)
            .await
            .is_ok()
    }

    const COUNTER: &str = "/v1/hostnaming/data/applications/web/app/prod/counter";

    #[tokio::test]
    async fn a_read_waits_while_another_instance_is_between_its_read_and_its_write() {
        let shared = outbound();
        let (mut a, mut b) = (shared.for_instance(), shared.for_instance());
        assert!(answered(&mut call(&mut a, http::Method::GET, COUNTER)).await);
        let mut b_read = call(&mut b, http::Method::GET, COUNTER);
        assert!(
            !answered(&mut b_read).await,
            "read while a held the counter"
        );
        assert!(answered(&mut call(&mut a, http::Method::PUT, COUNTER)).await);
        assert!(
            answered(&mut b_read).await,
            "a's answered write did not let b in"
        );
    }

    #[tokio::test]
    async fn asking_for_anything_else_or_ending_lets_the_path_go() {
        let shared = outbound();
        let (mut a, mut b) = (shared.for_instance(), shared.for_instance());
        assert!(answered(&mut call(&mut a, http::Method::GET, COUNTER)).await);
        assert!(answered(&mut call(&mut a, http::Method::GET, "/v1/sys/health")).await);
        assert!(answered(&mut call(&mut b, http::Method::GET, COUNTER)).await);
        // b now holds the counter; its instance ends without writing.
        let mut a_read = call(&mut a, http::Method::GET, COUNTER);
        assert!(!answered(&mut a_read).await);
        drop(b);
        assert!(
            answered(&mut a_read).await,
            "an ended instance kept its gate"
        );
    }

    #[tokio::test]
    async fn reading_a_held_path_again_does_not_wait_on_itself() {
        let mut a = outbound().for_instance();
        assert!(answered(&mut call(&mut a, http::Method::GET, COUNTER)).await);
        assert!(answered(&mut call(&mut a, http::Method::GET, COUNTER)).await);
    }

    #[tokio::test]
    async fn the_wait_for_a_gate_counts_against_the_call_timeout() {
        let shared = outbound();
        let (mut a, mut b) = (shared.for_instance(), shared.for_instance());
        assert!(answered(&mut call(&mut a, http::Method::GET, COUNTER)).await);
        let request = request(http::Method::GET, COUNTER);
        let options = RequestOptions {
            first_byte_timeout: Some(Duration::from_millis(30)),
            ..RequestOptions::default()
        };
        let future = b.send_request(request, Some(options), Box::new(async { Ok(()) }));
        let answer = tokio::time::timeout(Duration::from_secs(5), Box::into_pin(future))
            .await
            .expect("waited past its own timeout");
        assert!(matches!(answer, Err(Error::ConnectionReadTimeout)));
    }

    #[tokio::test]
    async fn without_gates_instances_read_at_once() {
        let shared = outbound().without_gates();
        let (mut a, mut b) = (shared.for_instance(), shared.for_instance());
        assert!(answered(&mut call(&mut a, http::Method::GET, COUNTER)).await);
        assert!(answered(&mut call(&mut b, http::Method::GET, COUNTER)).await);
    }
}
