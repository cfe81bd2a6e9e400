//! What the host tells operators about each request: a request id, one log line on stderr
//! and the metrics ([`crate::metrics`]). Both are recorded when the answer's body is done
//! (sent, or dropped with its connection), so durations and Vault call counts include a
//! body the component was still writing after its head.

use std::io::Write as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use serde_json::{json, Map, Value};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::Error as BodyError;

use crate::admission::CONFLICTS_HEADER;
use crate::metrics::Metrics;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The most of an answer's body kept to read its hostname or problem type.
const TEE_LIMIT: usize = 16 << 10;

/// How request lines are written on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object a line, for log shippers.
    Json,
    /// `key=value` pairs after the time, status, method and path, for a terminal.
    Text,
    /// No request lines.
    Off,
}

/// The caller's `X-Request-Id` when it is 1 to 128 of `[A-Za-z0-9._-]`, else a new UUID v4:
/// anything else could forge log lines or carry a secret into them.
pub fn request_id(given: Option<&http::HeaderValue>) -> String {
    match given.and_then(|v| v.to_str().ok()) {
        Some(id) if hostnaming::api::problem::valid_request_id(id) => id.to_string(),
        _ => uuid::Uuid::new_v4().to_string(),
    }
}

/// The route template a path is served under (the component's routes, and `/livez`), or
/// `other`: a label value from a fixed set, whatever paths clients send.
pub fn route_template(path: &str) -> &'static str {
    match path {
        "/generate-name" => "/generate-name",
        "/names" => "/names",
        "/names/export" => "/names/export",
        "/healthz" => "/healthz",
        "/livez" => "/livez",
        "/openapi.json" => "/openapi.json",
        "/session" => "/session",
        "/suggestions" => "/suggestions",
        "/" => "/",
        p if one_segment_under(p, "/names/") => "/names/{hostname}",
        p if one_segment_under(p, "/ui/") => "/ui/{asset}",
        _ => "other",
    }
}

fn one_segment_under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
}

/// The method as a label value from a fixed set.
pub fn method_label(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::HEAD => "HEAD",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::PATCH => "PATCH",
        http::Method::DELETE => "DELETE",
        http::Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// What is known of a request when it arrives.
pub struct Arrival {
    pub started: Instant,
    pub id: String,
    pub method: &'static str,
    pub path: String,
    pub route: &'static str,
    pub user_agent: Option<String>,
}

impl Arrival {
    pub fn new(req: &hyper::Request<hyper::body::Incoming>, id: String) -> Self {
        let path = req.uri().path().to_string();
        Self {
            started: Instant::now(),
            id,
            method: method_label(req.method()),
            route: route_template(&path),
            path,
            user_agent: req
                .headers()
                .get(http::header::USER_AGENT)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
        }
    }
}

/// Where request lines and metrics go; shared by every request of an App.
pub struct Telemetry {
    pub metrics: Arc<Metrics>,
    pub format: LogFormat,
}

impl Telemetry {
    /// Adds the request id to `resp` and wraps its body so that the request is logged and
    /// counted when the body is done. `calls` counts the instance's Vault calls.
    pub fn observe(
        self: &Arc<Self>,
        arrival: Arrival,
        mut resp: hyper::Response<HyperOutgoingBody>,
        calls: Option<Arc<AtomicU32>>,
    ) -> hyper::Response<HyperOutgoingBody> {
        if let Ok(v) = http::HeaderValue::from_str(&arrival.id) {
            resp.headers_mut().insert(REQUEST_ID_HEADER, v);
        }
        let headers = resp.headers();
        let status = resp.status().as_u16();
        let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
        let conflicts = header(CONFLICTS_HEADER).and_then(|v| v.parse::<u64>().ok());
        let replayed = header("idempotent-replayed") == Some("true");
        // The hostname, or the problem type, is only in the body. The body is not held
        // back for it: the bytes are copied as they pass to the client, and only for small
        // uncompressed JSON answers that carry one (never an export, which streams).
        let json_body = matches!(
            header("content-type").map(|t| t.split(';').next().unwrap_or("").trim()),
            Some("application/json" | "application/problem+json")
        ) && headers.get(http::header::CONTENT_ENCODING).is_none();
        let wanted = arrival.route == "/generate-name" || status >= 400;
        let tee = (json_body && wanted).then(Vec::new);
        let finish = Finish {
            telemetry: self.clone(),
            arrival,
            status,
            conflicts,
            replayed,
            calls,
        };
        resp.map(|inner| {
            Observed {
                inner,
                tee,
                ended: false,
                finish: Some(finish),
            }
            .boxed_unsync()
        })
    }
}

struct Finish {
    telemetry: Arc<Telemetry>,
    arrival: Arrival,
    status: u16,
    conflicts: Option<u64>,
    replayed: bool,
    calls: Option<Arc<AtomicU32>>,
}

impl Finish {
    fn record(self, body: Option<Vec<u8>>) {
        let took = self.arrival.started.elapsed();
        let a = &self.arrival;
        let body: Option<Value> = body.and_then(|b| serde_json::from_slice(&b).ok());
        let field = |k| body.as_ref().and_then(|b| b.get(k));
        let ok = (200..300).contains(&self.status);
        let m = &self.telemetry.metrics;
        m.request_finished(a.route, a.method, self.status, took);
        if let Some(n) = self.conflicts {
            m.cas_races_lost(n);
        }
        let dry_run = field("dry_run") == Some(&Value::Bool(true));
        if ok && a.route == "/generate-name" && a.method == "POST" && !self.replayed && !dry_run {
            m.allocation();
        }
        if ok && a.route == "/names/{hostname}" && a.method == "DELETE" {
            m.release();
        }
        if self.telemetry.format == LogFormat::Off {
            return;
        }
        let mut line = Map::new();
        line.insert("time".into(), json!(rfc3339(SystemTime::now())));
        line.insert("request_id".into(), json!(a.id));
        line.insert("method".into(), json!(a.method));
        line.insert("path".into(), json!(a.path));
        line.insert("route".into(), json!(a.route));
        line.insert("status".into(), json!(self.status));
        line.insert(
            "duration_ms".into(),
            json!((took.as_secs_f64() * 1e4).round() / 10.0),
        );
        if let Some(calls) = &self.calls {
            line.insert("vault_calls".into(), json!(calls.load(Relaxed)));
        }
        if let Some(n) = self.conflicts {
            line.insert("cas_races_lost".into(), json!(n));
        }
        if self.replayed {
            line.insert("replayed".into(), json!(true));
        }
        if ok {
            if let Some(h) = field("hostname").filter(|h| h.is_string()) {
                line.insert("hostname".into(), h.clone());
            }
            match field("hostnames").and_then(Value::as_array) {
                Some(names) if names.len() > 1 => {
                    line.insert("hostnames".into(), json!(names));
                }
                _ => {}
            }
            if dry_run {
                line.insert("dry_run".into(), json!(true));
            }
        } else if let Some(t) = field("type").filter(|t| t.is_string()) {
            line.insert("problem".into(), t.clone());
        }
        if let Some(ua) = &a.user_agent {
            line.insert("user_agent".into(), json!(ua));
        }
        let mut text = match self.telemetry.format {
            LogFormat::Json => Value::Object(line).to_string(),
            _ => text_line(&line),
        };
        text.push('\n');
        // One write per line, so lines from concurrent requests never interleave.
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
}

/// `time status method path key=value...`, strings quoted only when they need it.
fn text_line(line: &Map<String, Value>) -> String {
    let plain = |v: &Value| match v {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let mut out = ["time", "status", "method", "path"]
        .iter()
        .filter_map(|k| line.get(*k).map(plain))
        .collect::<Vec<_>>()
        .join(" ");
    for (k, v) in line {
        if ["time", "status", "method", "path"].contains(&k.as_str()) {
            continue;
        }
        let v = match v {
            Value::String(s)
                if !s.is_empty()
                    && s.bytes()
                        .all(|c| c.is_ascii_graphic() && c != b'"' && c != b'\\') =>
            {
                s.clone()
            }
            v => v.to_string(),
        };
        out.push_str(&format!(" {k}={v}"));
    }
    out
}

/// An answer's body on its way to the client, recorded when done.
struct Observed {
    inner: HyperOutgoingBody,
    /// The bytes so far, while the body fits [`TEE_LIMIT`].
    tee: Option<Vec<u8>>,
    /// The inner body said it had no more frames.
    ended: bool,
    finish: Option<Finish>,
}

impl Body for Observed {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        this.ended |= matches!(polled, Poll::Ready(None));
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let (Some(data), Some(tee)) = (frame.data_ref(), this.tee.as_mut()) {
                if tee.len() + data.len() <= TEE_LIMIT {
                    tee.extend_from_slice(data);
                } else {
                    this.tee = None;
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        if let Some(finish) = self.finish.take() {
            // A body dropped before its end was cut off: what was seen is not a document.
            let complete = self.ended || self.inner.is_end_stream();
            finish.record(self.tee.take().filter(|_| complete));
        }
    }
}

/// `t` as RFC 3339 in UTC with milliseconds, e.g. `2024-05-01T12:00:00.123Z`: the records'
/// format (`core::time`), to the millisecond.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let whole = hostnaming::core::time::rfc3339(d.as_secs());
    format!("{}.{:03}Z", whole.trim_end_matches('Z'), d.subsec_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_789);
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56.789Z");
    }

    #[test]
    fn a_request_id_is_kept_only_when_valid() {
        let v = |s: &str| http::HeaderValue::from_str(s).unwrap();
        assert_eq!(request_id(Some(&v("abc.DEF_1-2"))), "abc.DEF_1-2");
        for bad in ["", "a b", "x\"y", "é", &"a".repeat(129)] {
            let given = http::HeaderValue::from_bytes(bad.as_bytes()).unwrap();
            let id = request_id(Some(&given));
            assert_eq!(id.len(), 36, "{bad:?} kept as {id}");
        }
        assert_eq!(request_id(Some(&v(&"a".repeat(128)))).len(), 128);
    }

    #[test]
    fn paths_map_to_a_bounded_set_of_templates() {
        assert_eq!(
            route_template("/names/web-app-prod-vm1"),
            "/names/{hostname}"
        );
        assert_eq!(route_template("/names/export"), "/names/export");
        assert_eq!(route_template("/names/a/b"), "other");
        assert_eq!(route_template("/ui/app.js"), "/ui/{asset}");
        assert_eq!(route_template("/wp-admin"), "other");
    }

    #[test]
    fn a_text_line_leads_with_time_status_method_and_path() {
        let line = json!({"time": "T", "request_id": "r1", "method": "GET", "path": "/x",
                          "status": 200, "user_agent": "curl/8 (x)"});
        let text = text_line(line.as_object().unwrap());
        assert_eq!(text, "T 200 GET /x request_id=r1 user_agent=\"curl/8 (x)\"");
    }
}
