//! The hostnaming HTTP API as the provider uses it: one endpoint, an optional bearer
//! token, a timeout per request and a bounded budget for retries. Every error carries the
//! URL it concerns and what the service said, so a Terraform diagnostic can be acted on.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde_json::json;

pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:3000";
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_RETRY_BUDGET: Duration = Duration::from_secs(60);

/// The provider's name and version, the start of its User-Agent.
pub const PRODUCT: &str = concat!("terraform-provider-naming/", env!("CARGO_PKG_VERSION"));

/// `terraform-provider-naming/{version} terraform/{version}`: what the service's request
/// log shows of a call from Terraform.
pub fn user_agent(terraform_version: &str) -> String {
    match terraform_version.trim() {
        "" => PRODUCT.to_string(),
        version => format!("{PRODUCT} terraform/{version}"),
    }
}

/// Which credential a request carried, so that a refusal can name the setting to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    None,
    /// An API token (`token`), as `Authorization: Bearer`.
    Token,
    /// A Vault token (`vault_token`), as `X-Vault-Token`, for a service in pass-through mode.
    VaultToken,
}

/// Where and how to reach the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `scheme://host[:port][/prefix]`, without a trailing slash.
    pub endpoint: String,
    pub token: Option<String>,
    pub vault_token: Option<String>,
    pub user_agent: String,
    pub request_timeout: Duration,
    /// How long one call may keep retrying, waits included.
    pub retry_budget: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            endpoint: DEFAULT_ENDPOINT.into(),
            token: None,
            vault_token: None,
            user_agent: PRODUCT.into(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            retry_budget: DEFAULT_RETRY_BUDGET,
        }
    }
}

/// Checks an endpoint and returns it without its trailing slashes.
pub fn parse_endpoint(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim().trim_end_matches('/');
    let uri: http::Uri = trimmed
        .parse()
        .map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(format!("{raw:?} must start with http:// or https://")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("{raw:?} has no host"));
    }
    if uri.query().is_some() {
        return Err(format!("{raw:?} must not have a query string"));
    }
    Ok(trimmed.to_string())
}

/// An RFC 9457 problem document, as far as the provider reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Problem {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub detail: String,
    #[serde(default)]
    pub field: Option<String>,
}

/// The answer to `POST /generate-name`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Generated {
    pub hostname: String,
    #[serde(default)]
    pub replayed: bool,
}

/// A registry record (`GET /names/{hostname}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Record {
    pub hostname: String,
    pub application: String,
    pub role: String,
    pub environment: String,
    pub number: i64,
    pub status: String,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub released_at: Option<String>,
    #[serde(default)]
    pub idempotency_key: Option<String>,
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// One page of `GET /names`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Page {
    pub names: Vec<Record>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

impl Record {
    /// The tags as Terraform holds a map of strings.
    pub fn tag_values(
        &self,
    ) -> tf_provider::value::Value<BTreeMap<String, tf_provider::value::Value<String>>> {
        use tf_provider::value::Value;
        Value::Value(
            self.tags
                .iter()
                .map(|(k, v)| (k.clone(), Value::Value(v.clone())))
                .collect(),
        )
    }

    pub fn is_released(&self) -> bool {
        self.status == "released"
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// No answer (refused, reset, timed out) within the retry budget.
    Unreachable {
        method: Method,
        url: String,
        cause: String,
        attempts: u32,
        elapsed: Duration,
    },
    /// The service answered with an error status.
    Status {
        method: Method,
        url: String,
        status: u16,
        problem: Box<Problem>,
        attempts: u32,
        elapsed: Duration,
        /// What the request carried, and the 401's `WWW-Authenticate`.
        credential: Credential,
        challenge: Option<String>,
    },
    /// A success status whose body is not what the API promises.
    Invalid {
        method: Method,
        url: String,
        why: String,
    },
}

impl Error {
    /// One line for a diagnostic's summary.
    pub fn summary(&self) -> String {
        match self {
            Error::Unreachable { url, .. } => {
                format!("Cannot reach the hostnaming service at {url}")
            }
            Error::Status {
                status, problem, ..
            } => {
                let title = if problem.title.is_empty() {
                    StatusCode::from_u16(*status)
                        .ok()
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or("error")
                        .to_string()
                } else {
                    problem.title.clone()
                };
                format!("hostnaming service: {title} ({status})")
            }
            Error::Invalid { url, .. } => format!("Unexpected answer from {url}"),
        }
    }

    /// What the service said (or why it said nothing), and what to do about it.
    pub fn detail(&self) -> String {
        let tries = |attempts: u32, elapsed: &Duration| {
            if attempts > 1 {
                format!(
                    " after {attempts} attempts over {:.1}s",
                    elapsed.as_secs_f64()
                )
            } else {
                String::new()
            }
        };
        match self {
            Error::Unreachable {
                method,
                url,
                cause,
                attempts,
                elapsed,
            } => format!(
                "{method} {url} failed{}: {cause}.\n\nCheck that the service runs there, or set \
                 the provider's `endpoint` (or HOSTNAMING_URL).",
                tries(*attempts, elapsed)
            ),
            Error::Status {
                method,
                url,
                status,
                problem,
                attempts,
                elapsed,
                credential,
                challenge,
            } => {
                let mut out = if problem.detail.is_empty() {
                    format!("{method} {url} answered {status}")
                } else {
                    problem.detail.clone()
                };
                if let Some(field) = &problem.field {
                    out.push_str(&format!(" (field: {field})"));
                }
                out.push_str(&format!(
                    "\n\n{method} {url} answered {status}{}.",
                    tries(*attempts, elapsed)
                ));
                if let Some(advice) = credential_advice(*status, *credential, challenge.as_deref())
                {
                    out.push(' ');
                    out.push_str(advice);
                }
                out
            }
            Error::Invalid {
                method, url, why, ..
            } => format!("{method} {url}: {why}"),
        }
    }

    /// The request field the service blamed, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Status { problem, .. } => problem.field.as_deref(),
            _ => None,
        }
    }
}

/// Which provider setting a 401 or 403 asks to fix, given what was sent and, for a 401,
/// which kind of token the service asked for.
fn credential_advice(
    status: u16,
    sent: Credential,
    challenge: Option<&str>,
) -> Option<&'static str> {
    let wants_vault = challenge.is_some_and(|c| c.trim_start().starts_with("X-Vault-Token"));
    Some(match (status, sent) {
        (401, _) if wants_vault => {
            "This service passes callers' Vault tokens through to Vault: set the provider's \
             `vault_token` (or HOSTNAMING_VAULT_TOKEN) to your Vault token."
        }
        (401, Credential::Token) => {
            "The service does not know the API token in the provider's `token` (or \
             HOSTNAMING_TOKEN): use one from its `api_tokens` (`hostnaming token` makes them)."
        }
        (401, _) => {
            "Set the provider's `token` (or HOSTNAMING_TOKEN) to an API token the service \
             knows."
        }
        (403, Credential::VaultToken) => {
            "Vault's policies do not let the Vault token in the provider's `vault_token` (or \
             HOSTNAMING_VAULT_TOKEN) do this: ask for a policy that grants it, or use another \
             token."
        }
        (403, Credential::Token) => {
            "The API token in the provider's `token` (or HOSTNAMING_TOKEN) lacks the scope \
             this needs: use a token whose `api_tokens` entry has it."
        }
        _ => return None,
    })
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.summary(), self.detail())
    }
}

/// Statuses that say "not now" rather than "no": the same request may succeed later.
fn retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 409 | 429 | 502 | 503 | 504)
}

/// `Retry-After` in delta-seconds (the service never sends an HTTP date).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Exponential backoff with jitter, so parallel resources do not retry in lockstep.
fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(200).saturating_mul(1 << attempt.min(5).saturating_sub(1));
    let base = base.min(Duration::from_secs(5));
    let jitter = (uuid::Uuid::new_v4().as_u128() % 1000) as u32;
    base / 2 + base * jitter / 2000
}

/// Percent-encodes one path segment: a hostname is safe as it is, an import ID may not be.
fn segment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The error text of a failed exchange, with its causes (hyper's own text is only
/// "client error (Connect)").
fn causes(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

/// The last answer to a request, after any retries.
struct Answer {
    url: String,
    status: StatusCode,
    bytes: Bytes,
    attempts: u32,
    elapsed: Duration,
    credential: Credential,
    challenge: Option<String>,
}

enum Last {
    Answer(StatusCode, Bytes),
    Failure(String),
}

pub struct Client {
    settings: Settings,
    http: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Client {
    pub fn new(settings: Settings) -> Result<Client, String> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| format!("loading the system's trusted certificates: {e}"))?
            .https_or_http()
            .enable_http1()
            .build();
        let http = HyperClient::builder(TokioExecutor::new()).build(https);
        Ok(Client { settings, http })
    }

    pub fn endpoint(&self) -> &str {
        &self.settings.endpoint
    }

    fn credential(&self) -> Credential {
        match (&self.settings.token, &self.settings.vault_token) {
            (_, Some(_)) => Credential::VaultToken,
            (Some(_), None) => Credential::Token,
            (None, None) => Credential::None,
        }
    }

    /// Allocates one name with `details` (owner, description, tags; recorded in the same
    /// write). `key` is the Idempotency-Key, the same on every retry.
    pub async fn generate(
        &self,
        [application, role, environment]: [&str; 3],
        details: &serde_json::Map<String, serde_json::Value>,
        key: &str,
    ) -> Result<Generated, Error> {
        let mut body =
            json!({"application": application, "role": role, "environment": environment});
        for (k, v) in details {
            body[k] = v.clone();
        }
        let answer = self
            .call(
                Method::POST,
                "/generate-name",
                Some(body.to_string()),
                Some(key),
            )
            .await?;
        let url = answer.url.clone();
        let bytes = Self::success(Method::POST, answer, false)?.unwrap_or_default();
        serde_json::from_slice(&bytes).map_err(|e| Error::Invalid {
            method: Method::POST,
            url,
            why: format!("the answer is not a generated name: {e}"),
        })
    }

    /// The record of `hostname`, or `None` if the registry has never heard of it.
    pub async fn get(&self, hostname: &str) -> Result<Option<Record>, Error> {
        self.record(Method::GET, hostname, None).await
    }

    /// Releases `hostname` (idempotent); `None` if the registry has never heard of it.
    pub async fn release(&self, hostname: &str) -> Result<Option<Record>, Error> {
        self.record(Method::DELETE, hostname, None).await
    }

    /// Changes `hostname`'s owner, description and tags with a JSON merge patch (applying
    /// it twice is applying it once, so a retry is safe); `None` if there is no such name.
    pub async fn annotate(
        &self,
        hostname: &str,
        patch: &serde_json::Value,
    ) -> Result<Option<Record>, Error> {
        self.record(Method::PATCH, hostname, Some(patch.to_string()))
            .await
    }

    /// One page of a search: `query` is the filters as query-string pairs.
    pub async fn search(
        &self,
        query: &[(String, String)],
        cursor: Option<&str>,
    ) -> Result<Page, Error> {
        let mut pairs: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", segment(k), segment(v)))
            .collect();
        pairs.push("limit=100".into());
        if let Some(cursor) = cursor {
            pairs.push(format!("cursor={}", segment(cursor)));
        }
        let path = format!("/names?{}", pairs.join("&"));
        let answer = self.call(Method::GET, &path, None, None).await?;
        let url = answer.url.clone();
        let bytes = Self::success(Method::GET, answer, false)?.unwrap_or_default();
        serde_json::from_slice(&bytes).map_err(|e| Error::Invalid {
            method: Method::GET,
            url,
            why: format!("the answer is not a page of names: {e}"),
        })
    }

    async fn record(
        &self,
        method: Method,
        hostname: &str,
        body: Option<String>,
    ) -> Result<Option<Record>, Error> {
        let path = format!("/names/{}", segment(hostname));
        let answer = self.call(method.clone(), &path, body, None).await?;
        let url = answer.url.clone();
        let Some(bytes) = Self::success(method.clone(), answer, true)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Invalid {
                method,
                url,
                why: format!("the answer is not a name record: {e}"),
            })
    }

    /// The body of a 2xx, `None` for a 404 when `absent_ok`, else the service's problem.
    fn success(method: Method, answer: Answer, absent_ok: bool) -> Result<Option<Bytes>, Error> {
        let Answer {
            url,
            status,
            bytes,
            attempts,
            elapsed,
            credential,
            challenge,
        } = answer;
        if status.is_success() {
            return Ok(Some(bytes));
        }
        if absent_ok && status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let problem = serde_json::from_slice::<Problem>(&bytes).unwrap_or_else(|_| Problem {
            detail: String::from_utf8_lossy(&bytes).chars().take(500).collect(),
            ..Problem::default()
        });
        Err(Error::Status {
            method,
            url,
            status: status.as_u16(),
            problem: Box::new(problem),
            attempts,
            elapsed,
            credential,
            challenge,
        })
    }

    /// Sends a request, retrying connection failures, timeouts and "not now" statuses with
    /// the same headers (so the same Idempotency-Key) until the retry budget runs out.
    /// Returns the last answer, whatever its status.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
        key: Option<&str>,
    ) -> Result<Answer, Error> {
        let url = format!("{}{path}", self.settings.endpoint);
        let body = body.map(Bytes::from);
        let start = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let exchange = self.once(&method, &url, body.clone(), key);
            let (last, wait) =
                match tokio::time::timeout(self.settings.request_timeout, exchange).await {
                    Ok(Ok((status, headers, bytes))) if retryable(status) => {
                        let wait = retry_after(&headers).unwrap_or_else(|| backoff(attempts));
                        (Last::Answer(status, bytes), wait)
                    }
                    Ok(Ok((status, headers, bytes))) => {
                        let challenge = headers
                            .get(http::header::WWW_AUTHENTICATE)
                            .and_then(|v| v.to_str().ok())
                            .map(String::from);
                        return Ok(Answer {
                            url,
                            status,
                            bytes,
                            attempts,
                            elapsed: start.elapsed(),
                            credential: self.credential(),
                            challenge,
                        });
                    }
                    Ok(Err(cause)) => (Last::Failure(cause), backoff(attempts)),
                    Err(_) => (
                        Last::Failure(format!(
                            "no answer within {}s (request_timeout_seconds)",
                            self.settings.request_timeout.as_secs_f64()
                        )),
                        backoff(attempts),
                    ),
                };
            if start.elapsed() + wait > self.settings.retry_budget {
                let elapsed = start.elapsed();
                return match last {
                    Last::Answer(status, bytes) => Ok(Answer {
                        url,
                        status,
                        bytes,
                        attempts,
                        elapsed,
                        credential: self.credential(),
                        challenge: None,
                    }),
                    Last::Failure(cause) => Err(Error::Unreachable {
                        method,
                        url,
                        cause,
                        attempts,
                        elapsed,
                    }),
                };
            }
            tokio::time::sleep(wait).await;
        }
    }

    async fn once(
        &self,
        method: &Method,
        url: &str,
        body: Option<Bytes>,
        key: Option<&str>,
    ) -> Result<(StatusCode, HeaderMap, Bytes), String> {
        let mut request = Request::builder()
            .method(method.clone())
            .uri(url)
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::USER_AGENT, &self.settings.user_agent);
        if body.is_some() {
            let media = if *method == Method::PATCH {
                "application/merge-patch+json"
            } else {
                "application/json"
            };
            request = request.header(http::header::CONTENT_TYPE, media);
        }
        if let Some(token) = &self.settings.token {
            request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(token) = &self.settings.vault_token {
            request = request.header("x-vault-token", token);
        }
        if let Some(key) = key {
            // A structured-field string, as draft-ietf-httpapi-idempotency-key-header says.
            request = request.header("idempotency-key", format!("\"{key}\""));
        }
        let request = request
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| e.to_string())?;
        let response = self.http.request(request).await.map_err(|e| causes(&e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| causes(&e))?
            .to_bytes();
        Ok((status, headers, bytes))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    /// A request as the fake service saw it.
    #[derive(Debug, Clone)]
    pub struct Seen {
        pub method: String,
        pub path: String,
        pub headers: HeaderMap,
        pub body: String,
    }

    /// An answer: status, headers, body.
    pub type Step = (u16, Vec<(&'static str, &'static str)>, String);

    /// A scripted HTTP server: answers each request with the next (status, headers, body),
    /// and the last one forever after.
    pub struct Fake {
        pub url: String,
        pub seen: Arc<Mutex<Vec<Seen>>>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    impl Fake {
        pub async fn start(script: Vec<Step>) -> Fake {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let seen = Arc::new(Mutex::new(Vec::new()));
            let script = Arc::new(Mutex::new(VecDeque::from(script)));
            let (seen2, script2) = (seen.clone(), script.clone());
            let task = tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    let (seen, script) = (seen2.clone(), script2.clone());
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(
                            move |req: hyper::Request<hyper::body::Incoming>| {
                                let (seen, script) = (seen.clone(), script.clone());
                                async move {
                                    let (parts, body) = req.into_parts();
                                    let body = body.collect().await.unwrap().to_bytes();
                                    seen.lock().unwrap().push(Seen {
                                        method: parts.method.to_string(),
                                        path: parts.uri.path().to_string(),
                                        headers: parts.headers.clone(),
                                        body: String::from_utf8_lossy(&body).into_owned(),
                                    });
                                    let (status, headers, body) = {
                                        let mut script = script.lock().unwrap();
                                        if script.len() > 1 {
                                            script.pop_front().unwrap()
                                        } else {
                                            script.front().cloned().unwrap()
                                        }
                                    };
                                    let mut resp = hyper::Response::builder().status(status);
                                    for (k, v) in headers {
                                        resp = resp.header(k, v);
                                    }
                                    Ok::<_, std::convert::Infallible>(
                                        resp.body(Full::new(Bytes::from(body))).unwrap(),
                                    )
                                }
                            },
                        );
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
            Fake { url, seen, task }
        }

        pub fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }

    pub fn client(url: &str, budget_ms: u64) -> Client {
        Client::new(Settings {
            endpoint: url.into(),
            token: Some("s3cret".into()),
            request_timeout: Duration::from_millis(500),
            retry_budget: Duration::from_millis(budget_ms),
            ..Settings::default()
        })
        .unwrap()
    }

    pub const PROBLEM_503: &str = r#"{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"vault is sealed"}"#;

    pub fn generated(hostname: &str, replayed: bool) -> String {
        json!({"hostname": hostname, "number": 1, "hostnames": [hostname], "numbers": [1],
               "application": "web", "role": "app", "environment": "prod",
               "replayed": replayed})
        .to_string()
    }

    #[tokio::test]
    async fn not_now_answers_are_retried_with_the_same_key_and_token() {
        let fake = Fake::start(vec![
            (503, vec![("retry-after", "0")], PROBLEM_503.into()),
            (409, vec![("retry-after", "0")], "{}".into()),
            (200, vec![], generated("web-app-prod-vm1", false)),
        ])
        .await;
        let got = client(&fake.url, 10_000)
            .generate(["web", "app", "prod"], &Default::default(), "k-1")
            .await
            .unwrap();
        assert_eq!(got.hostname, "web-app-prod-vm1");
        let seen = fake.seen();
        assert_eq!(seen.len(), 3);
        for s in &seen {
            assert_eq!(s.method, "POST");
            assert_eq!(s.path, "/generate-name");
            assert_eq!(s.headers["idempotency-key"], "\"k-1\"");
            assert_eq!(s.headers["authorization"], "Bearer s3cret");
            let body: serde_json::Value = serde_json::from_str(&s.body).unwrap();
            assert_eq!(
                body,
                json!({"application": "web", "role": "app", "environment": "prod"})
            );
        }
    }

    #[tokio::test]
    async fn a_refusal_is_not_retried_and_keeps_the_service_detail_and_field() {
        let fake = Fake::start(vec![(
            400,
            vec![("content-type", "application/problem+json")],
            r#"{"type":"about:blank","title":"Invalid request","status":400,
                "detail":"application must start with a letter","field":"application"}"#
                .into(),
        )])
        .await;
        let err = client(&fake.url, 10_000)
            .generate(["1web", "app", "prod"], &Default::default(), "k")
            .await
            .unwrap_err();
        assert_eq!(fake.seen().len(), 1);
        assert_eq!(err.field(), Some("application"));
        assert!(err.summary().contains("Invalid request (400)"), "{err}");
        assert!(
            err.detail()
                .starts_with("application must start with a letter (field: application)"),
            "{err}"
        );
        assert!(
            err.detail()
                .contains(&format!("POST {}/generate-name answered 400", fake.url)),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_service_is_named_and_the_retries_stop_within_the_budget() {
        // Bind then drop: nothing listens on the port any more.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        let err = client(&url, 1_500)
            .get("web-app-prod-vm1")
            .await
            .unwrap_err();
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        match &err {
            Error::Unreachable { attempts, .. } => assert!(*attempts > 1, "{err}"),
            other => panic!("{other:?}"),
        }
        assert!(
            err.summary()
                .contains(&format!("Cannot reach the hostnaming service at {url}")),
            "{err}"
        );
        assert!(err.detail().to_lowercase().contains("refused"), "{err}");
    }

    #[tokio::test]
    async fn a_retry_after_beyond_the_budget_gives_up_at_once_with_the_services_words() {
        let fake = Fake::start(vec![(503, vec![("retry-after", "30")], PROBLEM_503.into())]).await;
        let start = Instant::now();
        let err = client(&fake.url, 5_000)
            .release("web-app-prod-vm1")
            .await
            .unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(2));
        assert_eq!(fake.seen().len(), 1);
        assert!(err.detail().starts_with("vault is sealed"), "{err}");
    }

    #[tokio::test]
    async fn a_silent_service_times_out_and_counts_as_unreachable() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        // Accepts connections (the backlog does) but never answers.
        let err = client(&url, 800).get("x").await.unwrap_err();
        drop(listener);
        assert!(matches!(err, Error::Unreachable { .. }), "{err}");
        assert!(err.detail().contains("no answer within 0.5s"), "{err}");
    }

    #[tokio::test]
    async fn records_are_read_and_unknown_names_are_none() {
        let record = json!({"hostname": "web-app-prod-vm1", "application": "web",
            "role": "app", "environment": "prod", "number": 1, "status": "released",
            "created_at": "2026-01-01T00:00:00Z", "released_at": "2026-01-02T00:00:00Z",
            "idempotency_key": null});
        let fake = Fake::start(vec![
            (200, vec![], record.to_string()),
            (404, vec![], r#"{"title":"Not Found","status":404}"#.into()),
        ])
        .await;
        let c = client(&fake.url, 1_000);
        let got = c.release("web-app-prod-vm1").await.unwrap().unwrap();
        assert!(got.is_released());
        assert_eq!(got.released_at.as_deref(), Some("2026-01-02T00:00:00Z"));
        assert_eq!(c.get("a b/c").await.unwrap(), None);
        let seen = fake.seen();
        assert_eq!(seen[0].method, "DELETE");
        assert_eq!(seen[1].path, "/names/a%20b%2Fc");
        assert!(!seen[0].headers.contains_key("idempotency-key"));
    }

    #[test]
    fn endpoints_are_checked_and_trimmed() {
        assert_eq!(
            parse_endpoint("http://127.0.0.1:3000/").unwrap(),
            "http://127.0.0.1:3000"
        );
        assert_eq!(
            parse_endpoint("https://names.example.com/api/").unwrap(),
            "https://names.example.com/api"
        );
        for bad in ["127.0.0.1:3000", "ftp://x", "http://", "http://x/?a=b", ""] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn backoff_grows_then_stays_bounded() {
        assert!(backoff(1) <= Duration::from_millis(200));
        assert!(backoff(1) >= Duration::from_millis(100));
        assert!(backoff(4) >= Duration::from_millis(800));
        for n in 1..40 {
            assert!(backoff(n) <= Duration::from_secs(5));
        }
    }
}
