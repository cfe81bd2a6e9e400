//! `hostnaming serve`: the component from spin.toml over HTTP, as Spin's HTTP trigger would
//! serve it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::server::{self, App};
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
}

/// Checks the manifest's settings, then serves until the listener fails or Ctrl-C.
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
        .queue_timeout(queue_timeout);
    if args.no_gates {
        app = app.without_gates();
    }
    let app = Arc::new(app);
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    eprintln!(
        "hostnaming: serving on http://{} (Vault at {vault})",
        listener.local_addr()?
    );
    tokio::select! {
        r = app.serve(listener) => r,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}
