//! `hostnaming-bench soak`: many allocations on one counter, reported per block, to show
//! that nothing drifts with age: latency, the service's memory, and the size of Vault's
//! metadata for the counter key (KV v2 keeps a bounded number of versions) stay flat.
//! Every number is checked at the end: exactly 1..=count, none twice.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use hostnaming_host::vault::VaultClient;
use http_body_util::{BodyExt, Full};
use serde::Serialize;
use serde_json::{json, Value};

use crate::load::{client, quantile};
use crate::procs::OwnStack;
use crate::report::write_json;
use hostnaming_testkit::Storage;

/// Allocate many names from one counter and report latency, the service's memory and
/// the counter's Vault metadata every block: all should stay flat. Starts its own
/// OpenBao and service unless --url is given (then VAULT_ADDR / VAULT_TOKEN, a token
/// that may read the mount's metadata, are used for the metadata).
#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long)]
    url: Option<String>,
    #[arg(long, value_enum, default_value = "dev")]
    storage: Storage,
    #[arg(long, default_value_t = 100_000)]
    count: usize,
    #[arg(long, default_value_t = 10_000)]
    block: usize,
    #[arg(long, default_value_t = 4)]
    clients: usize,
    #[arg(long, default_value = "target/soak/results.json")]
    json: PathBuf,
    #[arg(long, default_value = "spin.toml")]
    manifest: PathBuf,
    #[arg(long, default_value = "hostnaming")]
    mount: String,
}

pub async fn execute(args: Args) -> Result<()> {
    let Args {
        url,
        storage,
        count,
        block,
        clients,
        json,
        manifest,
        mount,
    } = args;
    if count == 0 || block == 0 || clients == 0 {
        bail!("--count, --block and --clients must be at least 1");
    }
    let (stack, url, vault) = match url {
        Some(url) => {
            let addr = std::env::var("VAULT_ADDR").context("--url needs VAULT_ADDR")?;
            let token = std::env::var("VAULT_TOKEN").context("--url needs VAULT_TOKEN")?;
            (None, url, VaultClient::new(&addr, &token)?)
        }
        None => {
            eprintln!("soak: starting OpenBao ({storage:?}) and the service");
            let stack = OwnStack::start(storage, &manifest).await?;
            let vault = VaultClient::new(&stack.bao.addr, &stack.bao.token)?;
            let url = stack.service.url.clone();
            (Some(stack), url, vault)
        }
    };
    let rss = || stack.as_ref().and_then(|s| s.service.rss_mib());
    let probe = Probe {
        vault: &vault,
        mount: &mount,
        rss: &rss,
    };
    let report = run(&url, probe, count, block, clients).await?;
    println!(
        "{} allocations from {} clients: {} duplicates, {} numbers missing, counter now {}",
        report.count, report.clients, report.duplicates, report.missing, report.final_counter
    );
    write_json(&json, &report)?;
    if report.duplicates > 0 {
        bail!("{} names were issued twice", report.duplicates);
    }
    Ok(())
}

/// One block of allocations and what was measured right after it.
#[derive(Debug, Clone, Serialize)]
pub struct Block {
    /// Allocations done so far, this block included.
    pub done: usize,
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Answers other than 200 in this block.
    pub failures: usize,
    /// The service's resident memory now (VmRSS), when it runs as our child.
    pub service_rss_mib: Option<f64>,
    /// The counter key's metadata as Vault returns it: bytes of JSON, versions kept.
    pub metadata_bytes: usize,
    pub versions_kept: usize,
    pub current_version: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub count: usize,
    pub clients: usize,
    pub blocks: Vec<Block>,
    pub duplicates: usize,
    /// Numbers in 1..=count that nobody got.
    pub missing: usize,
    pub final_counter: u64,
}

/// What the soak needs to look at besides the service.
struct Probe<'a> {
    /// A token that may read the mount's metadata (the service's policy may not).
    pub vault: &'a VaultClient,
    pub mount: &'a str,
    /// The service's current RSS in MiB, if known.
    pub rss: &'a (dyn Fn() -> Option<f64> + Sync),
}

/// Runs `count` allocations of one fresh tuple through the service at `url`, from
/// `clients` concurrent callers, reporting every `block` allocations.
async fn run(
    url: &str,
    probe: Probe<'_>,
    count: usize,
    block: usize,
    clients: usize,
) -> Result<Report> {
    let http = client();
    let app = format!("soak{}", std::process::id());
    let body = json!({"application": app, "role": "app", "environment": "soak"}).to_string();
    let url = format!("{url}/generate-name");
    let counter = format!("applications/{app}/app/soak/counter");
    let mut numbers = HashSet::new();
    let mut duplicates = 0;
    let mut blocks = Vec::new();
    let mut done = 0;
    println!(
        "{:>8} {:>9} {:>8} {:>8} {:>8} {:>6} {:>11} {:>14} {:>9}",
        "done",
        "alloc/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "fail",
        "svc RSS MiB",
        "metadata bytes",
        "versions"
    );
    while done < count {
        let this = block.min(count - done);
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let (http, url, body, next) =
                    (http.clone(), url.clone(), body.clone(), next.clone());
                tokio::spawn(async move {
                    let mut out = Vec::new();
                    while next.fetch_add(1, Ordering::Relaxed) < this {
                        let t0 = Instant::now();
                        let req = hyper::Request::post(&url)
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from(body.clone())))
                            .expect("a request");
                        let answer = match http.request(req).await {
                            Ok(resp) if resp.status() == 200 => resp
                                .into_body()
                                .collect()
                                .await
                                .ok()
                                .and_then(|b| serde_json::from_slice::<Value>(&b.to_bytes()).ok())
                                .and_then(|v| v["number"].as_u64()),
                            _ => None,
                        };
                        out.push((t0.elapsed(), answer));
                    }
                    out
                })
            })
            .collect();
        let mut latencies = Vec::with_capacity(this);
        let mut failures = 0;
        for t in tasks {
            for (latency, answer) in t.await.context("a soak client")? {
                latencies.push(latency);
                match answer {
                    Some(n) if !numbers.insert(n) => duplicates += 1,
                    Some(_) => {}
                    None => failures += 1,
                }
            }
        }
        let elapsed = started.elapsed();
        done += this;
        latencies.sort();
        let (status, meta) = probe
            .vault
            .call("GET", &format!("{}/metadata/{counter}", probe.mount), None)
            .await?;
        if status != 200 {
            bail!("reading the counter's metadata answered {status}: {meta}");
        }
        let b = Block {
            done,
            rate: this as f64 / elapsed.as_secs_f64(),
            p50_ms: quantile(&latencies, 0.5),
            p99_ms: quantile(&latencies, 0.99),
            max_ms: quantile(&latencies, 1.0),
            failures,
            service_rss_mib: (probe.rss)(),
            metadata_bytes: meta.to_string().len(),
            versions_kept: meta["data"]["versions"].as_object().map_or(0, |v| v.len()),
            current_version: meta["data"]["current_version"].as_u64().unwrap_or(0),
        };
        println!(
            "{:>8} {:>9.0} {:>8.2} {:>8.2} {:>8.1} {:>6} {:>11} {:>14} {:>9}",
            b.done,
            b.rate,
            b.p50_ms,
            b.p99_ms,
            b.max_ms,
            b.failures,
            b.service_rss_mib
                .map_or("n/a".into(), |r| format!("{r:.1}")),
            b.metadata_bytes,
            b.versions_kept,
        );
        blocks.push(b);
    }
    let final_counter = probe
        .vault
        .kv_get(probe.mount, &counter)
        .await?
        .and_then(|d| match &d["counter"] {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        })
        .unwrap_or(0);
    let missing = (1..=count as u64).filter(|n| !numbers.contains(n)).count();
    Ok(Report {
        count,
        clients,
        blocks,
        duplicates,
        missing,
        final_counter,
    })
}
