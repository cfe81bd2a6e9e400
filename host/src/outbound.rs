//! Outgoing HTTP for the component: refused unless `allowed_outbound_hosts` permits it, and
//! sent over a connection pool shared by all instances, so each Vault call reuses a warm
//! keep-alive connection instead of paying a TCP handshake.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::manifest::AllowedHost;

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
}

fn classify(e: hyper_util::client::legacy::Error) -> Error {
    if e.is_connect() {
        Error::ConnectionRefused
    } else {
        Error::HttpProtocolError
    }
}

impl WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> SendFuture {
        let allowed = self.allows(request.uri());
        let https = request.uri().scheme() == Some(&http::uri::Scheme::HTTPS);
        let client = self.client.clone();
        let stubbed = self
            .stub
            .as_ref()
            .map(|stub| stub(request.method(), request.uri()));
        let timeout = options
            .and_then(|o| o.first_byte_timeout)
            .unwrap_or(DEFAULT_TIMEOUT);
        Box::new(async move {
            if !allowed {
                return Err(Error::HttpRequestDenied);
            }
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
            if https {
                // TLS goes through wasmtime's own client (rustls, webpki roots); only the
                // plain-HTTP path is pooled, which is what a loopback or sidecar Vault uses.
                let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
                return Ok((res.map(BodyExt::boxed_unsync), Box::new(io) as IoFuture));
            }
            let res = tokio::time::timeout(timeout, client.request(request))
                .await
                .map_err(|_| Error::ConnectionReadTimeout)?
                .map_err(classify)?;
            let res = res.map(|body| body.map_err(Error::Hyper).boxed_unsync());
            Ok((res, Box::new(async { Ok(()) }) as IoFuture))
        })
    }
}
