//! `hostnaming serve`: the component from spin.toml over HTTP, as Spin's HTTP trigger would
//! serve it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::server::{self, App, ConnectionLimits};
use crate::telemetry::LogFormat;
use crate::Manifest;

/// Serve the component over HTTP as Spin's HTTP trigger would.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub listen: String,
    #[arg(long, default_value = "spin.toml")]
    pub manifest: PathBuf,
    /// The most requests that run at once; more wait for a turn. Below it the limit
    /// adapts: answers reporting lost check-and-set races halve it (down to two per
    /// core, at least 4), a run of clean ones raises it by one. Default: eight per
    /// core, at least 16.
    #[arg(long, env = "HOSTNAMING_MAX_CONCURRENT")]
    pub max_concurrent: Option<usize>,
    /// How long a request may wait for a turn before it gets a 503 with Retry-After
    /// (default 5000): while Vault stalls each turn can last the allocation deadline.
    #[arg(long, env = "HOSTNAMING_QUEUE_TIMEOUT_MS")]
    pub queue_timeout_ms: Option<u64>,
    /// Let instances read and write a counter at once, losing check-and-set races to
    /// each other, as under Spin; by default this host's instances take turns on each
    /// path between a read and its write.
    #[arg(long, env = "HOSTNAMING_NO_GATES")]
    pub no_gates: bool,
    /// One line per request on stderr: `json` (one object a line, for log shippers),
    /// `text` (for a terminal) or `off`.
    #[arg(long, env = "HOSTNAMING_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    /// Serve Prometheus metrics at `GET /metrics` on this address (off by default): a
    /// listener of its own, so it need not be exposed where the API is.
    #[arg(long, env = "HOSTNAMING_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// The most client connections served at once; more wait in the listen backlog.
    #[arg(long, env = "HOSTNAMING_MAX_CONNECTIONS", default_value_t = ConnectionLimits::default().max_connections)]
    pub max_connections: usize,
    /// How long a connection may take to send a request's line and headers, and how long
    /// a keep-alive connection may sit idle between requests, before it is closed.
    #[arg(
        long,
        env = "HOSTNAMING_HEADER_READ_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub header_read_timeout_ms: u64,
    /// The largest request line and headers accepted, in bytes; larger gets a 431.
    #[arg(long, env = "HOSTNAMING_MAX_HEADER_BYTES", default_value_t = ConnectionLimits::default().max_header_bytes)]
    pub max_header_bytes: usize,
}

/// Checks the manifest's settings, then serves until the listener fails, or SIGTERM or
/// Ctrl-C, after which it finishes the requests in flight.
pub async fn execute(args: Args) -> Result<()> {
    let manifest = Manifest::load(&args.manifest, &HashMap::new(), |n| std::env::var(n).ok())?;
    let vault = manifest
        .variables
        .get("vault_addr")
        .cloned()
        .unwrap_or_default();
    server::check_vault_reachable(&manifest)?;
    if let Some(warning) = server::open_access_warning(&manifest) {
        eprintln!("hostnaming: {warning}");
    }
    let max = args
        .max_concurrent
        .unwrap_or_else(server::default_max_concurrency);
    let queue_timeout = args
        .queue_timeout_ms
        .map_or(server::DEFAULT_QUEUE_TIMEOUT, Duration::from_millis);
    let mut app = App::load(manifest)?
        .adapt_concurrency(max)
        .queue_timeout(queue_timeout)
        .log_format(args.log_format)
        .connection_limits(ConnectionLimits {
            max_connections: args.max_connections,
            header_read_timeout: Duration::from_millis(args.header_read_timeout_ms.max(1)),
            max_header_bytes: args.max_header_bytes,
        });
    if args.no_gates {
        app = app.without_gates();
    }
    let app = Arc::new(app);
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    if let Some(addr) = &args.metrics_listen {
        let metrics = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr} for metrics"))?;
        eprintln!(
            "hostnaming: metrics on http://{}/metrics",
            metrics.local_addr()?
        );
        let app = app.clone();
        tokio::task::spawn(crate::metrics::serve(metrics, move || app.metrics_text()));
    }
    eprintln!(
        "hostnaming: serving on http://{} (Vault at {vault})",
        listener.local_addr()?
    );
    app.serve_until(listener, stop_signal()).await
}

/// SIGTERM (what Kubernetes and systemd send) or Ctrl-C.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
