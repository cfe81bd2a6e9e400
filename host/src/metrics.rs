//! Prometheus metrics, by hand: atomics and fixed-bucket histograms, so that the hot path
//! costs a few relaxed atomic adds (and one short lock for the labelled request counter),
//! and the text exposition format 0.0.4 is rendered only when scraped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use tokio::net::TcpListener;
use wasmtime_wasi_http::io::TokioIo;

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds (seconds) of the latency buckets: a Vault call is milliseconds on a
/// loopback or sidecar Vault, and the allocation deadline is 10 s by default.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A histogram of durations with [`BUCKETS`]; the sum is kept in microseconds.
#[derive(Default)]
pub struct Histogram {
    /// Per bucket, not cumulative; the last is +Inf.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[i].fetch_add(1, Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros().min(u64::MAX as u128) as u64, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Relaxed);
            let le = BUCKETS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
    }
}

/// Every metric the host keeps. Label values come from fixed sets (route templates, known
/// methods, status codes), so the series stay bounded whatever the clients send.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, &'static str, u16), u64>>,
    allocations: AtomicU64,
    releases: AtomicU64,
    cas_races_lost: AtomicU64,
    vault_ok: AtomicU64,
    vault_error: AtomicU64,
    request_duration: Histogram,
    vault_duration: Histogram,
    in_flight: AtomicI64,
}

/// Values read when scraped, from state the metrics do not own.
pub struct Gauges {
    pub admission_running: usize,
    pub admission_limit: usize,
    pub admission_max: usize,
    pub connections_open: usize,
    pub connections_max: usize,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    pub fn request_started(&self) {
        self.in_flight.fetch_add(1, Relaxed);
    }

    /// One request answered (its body sent or abandoned).
    pub fn request_finished(
        &self,
        route: &'static str,
        method: &'static str,
        status: u16,
        took: Duration,
    ) {
        self.in_flight.fetch_sub(1, Relaxed);
        self.request_duration.observe(took);
        *self
            .requests
            .lock()
            .expect("metrics lock")
            .entry((route, method, status))
            .or_default() += 1;
    }

    pub fn allocation(&self) {
        self.allocations.fetch_add(1, Relaxed);
    }

    pub fn release(&self) {
        self.releases.fetch_add(1, Relaxed);
    }

    pub fn cas_races_lost(&self, n: u64) {
        self.cas_races_lost.fetch_add(n, Relaxed);
    }

    /// One outgoing Vault call: `ok` when Vault answered with other than a 5xx.
    pub fn vault_call(&self, ok: bool, took: Duration) {
        if ok {
            &self.vault_ok
        } else {
            &self.vault_error
        }
        .fetch_add(1, Relaxed);
        self.vault_duration.observe(took);
    }

    /// The text exposition format.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(4096);
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        let gauge = |out: &mut String, name: &str, help: &str, v: i64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        let name = "hostnaming_http_requests_total";
        let _ = writeln!(
            out,
            "# HELP {name} HTTP requests answered, by route template, method and status.\n\
             # TYPE {name} counter"
        );
        for ((route, method, status), n) in self.requests.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "{name}{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}"
            );
        }
        counter(
            &mut out,
            "hostnaming_allocations_total",
            "Successful POST /generate-name requests (not replays, not dry runs).",
            self.allocations.load(Relaxed),
        );
        counter(
            &mut out,
            "hostnaming_releases_total",
            "Successful DELETE /names/{hostname} requests.",
            self.releases.load(Relaxed),
        );
        counter(
            &mut out,
            "hostnaming_cas_races_lost_total",
            "Check-and-set races lost on counters (the Hostnaming-Conflicts answers).",
            self.cas_races_lost.load(Relaxed),
        );
        let name = "hostnaming_vault_calls_total";
        let _ = writeln!(
            out,
            "# HELP {name} Calls to Vault; error: no answer, or a 5xx.\n# TYPE {name} counter\n\
             {name}{{outcome=\"ok\"}} {}\n{name}{{outcome=\"error\"}} {}",
            self.vault_ok.load(Relaxed),
            self.vault_error.load(Relaxed)
        );
        self.request_duration.render(
            &mut out,
            "hostnaming_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer.",
        );
        self.vault_duration.render(
            &mut out,
            "hostnaming_vault_call_duration_seconds",
            "Time from sending a Vault call to its answer's head.",
        );
        gauge(
            &mut out,
            "hostnaming_http_requests_in_flight",
            "Requests arrived and not yet answered, waiting for a turn or running.",
            self.in_flight.load(Relaxed),
        );
        for (name, help, v) in [
            (
                "hostnaming_instances_running",
                "Requests running in a component instance now.",
                gauges.admission_running,
            ),
            (
                "hostnaming_instances_limit",
                "How many requests may run in an instance at once now (adaptive).",
                gauges.admission_limit,
            ),
            (
                "hostnaming_instances_max",
                "The most requests that may ever run at once (--max-concurrent).",
                gauges.admission_max,
            ),
            (
                "hostnaming_connections_open",
                "Client connections open now.",
                gauges.connections_open,
            ),
            (
                "hostnaming_connections_max",
                "The most client connections served at once (--max-connections).",
                gauges.connections_max,
            ),
        ] {
            gauge(&mut out, name, help, v as i64);
        }
        out
    }
}

/// Serves `GET /metrics` with what `render` returns, until the listener fails.
pub async fn serve<F>(listener: TcpListener, render: F) -> Result<()>
where
    F: Fn() -> String + Send + Sync + 'static,
{
    let render = Arc::new(render);
    loop {
        let (stream, _) = listener.accept().await?;
        let render = render.clone();
        tokio::task::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                let render = render.clone();
                async move {
                    let resp = if req.uri().path() == "/metrics"
                        && matches!(*req.method(), http::Method::GET | http::Method::HEAD)
                    {
                        hyper::Response::builder()
                            .header("content-type", CONTENT_TYPE)
                            .body(Full::new(Bytes::from(render())))
                    } else {
                        hyper::Response::builder()
                            .status(404)
                            .body(Full::new(Bytes::from_static(b"only GET /metrics\n")))
                    };
                    Ok::<_, std::convert::Infallible>(resp.expect("a valid response"))
                }
            });
            let _ = http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_renders_cumulative_buckets_sum_and_count() {
        let h = Histogram::default();
        h.observe(Duration::from_millis(2));
        h.observe(Duration::from_millis(40));
        h.observe(Duration::from_secs(60));
        let mut out = String::new();
        h.render(&mut out, "x_seconds", "help");
        assert!(out.contains("# TYPE x_seconds histogram\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"0.001\"} 0\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"0.0025\"} 1\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"0.05\"} 2\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"30\"} 2\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_seconds_sum 60.042\n"), "{out}");
        assert!(out.contains("x_seconds_count 3\n"), "{out}");
    }
}
