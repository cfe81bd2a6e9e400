//! An HTTP proxy in front of Vault that holds or delays calls, so tests can put a Vault
//! write in a known state (sent or not, answered or not) or make Vault slow.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

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
