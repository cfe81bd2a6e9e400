//! One-shot HTTP requests, answered as tests look at them.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// A response as tests look at it.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: http::HeaderMap,
    /// The body as sent (compressed when the answer says so).
    pub body: Bytes,
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
    let mut req = hyper::Request::builder().method(method).uri(url);
    // JSON unless the caller says otherwise (a merge patch, a wrong type on purpose).
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        req = req.header("content-type", "application/json");
    }
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
        body: bytes,
        text,
        json,
    })
}
