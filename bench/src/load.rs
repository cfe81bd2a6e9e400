//! The closed-loop load: `clients` callers, each sending its next request as soon as the
//! last is answered, and what they measured (rates, latency quantiles, statuses, names
//! issued twice, numbers skipped, races lost).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hostnaming_host::admission::CONFLICTS_HEADER;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde_json::json;

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// The load's HTTP client: keep-alive, no Nagle delay.
pub fn client() -> HttpClient {
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
pub fn quantile(sorted: &[Duration], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

/// Everything a load recorded, before it is summarised; rounds of one side add up.
#[derive(Default)]
pub struct Samples {
    elapsed: Duration,
    latencies: Vec<Duration>,
    statuses: BTreeMap<String, usize>,
    /// (tuple, number, hostname) of every name issued.
    pub names: Vec<(usize, u64, String)>,
    /// Races lost, summed over the answers that reported them, and how many did.
    lost: (u64, usize),
}

impl Samples {
    pub fn add(&mut self, other: Samples) {
        self.elapsed += other.elapsed;
        self.latencies.extend(other.latencies);
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        self.names.extend(other.names);
        self.lost = (self.lost.0 + other.lost.0, self.lost.1 + other.lost.1);
    }
}

/// What `samples` come to.
pub fn stats(samples: Samples) -> Stats {
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
pub type Issued = (u64, String, Option<u32>);

/// Drives `load` with `work(tuple) -> Result<Issued, status>` per request.
pub async fn drive<F, Fut>(label: String, load: Load, work: F) -> Samples
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
pub const ROLE: &str = "app";
pub const ENVIRONMENT: &str = "bench";

/// Tuples are fresh per run, so every run starts its counters at 1.
pub fn tuple_app(run: &str, tuple: usize) -> String {
    format!("b{run}t{tuple}")
}

/// The service under load, over HTTP with keep-alive connections.
pub async fn load_service(url: &str, run: &str, label: String, load: Load) -> Samples {
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
