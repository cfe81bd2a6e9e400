//! `hostnaming-bench registry`: what operators' features cost. Allocations per second with
//! and without metadata at one client (alternating blocks in one run, so both see the same
//! machine); then on a registry grown to `--names` names, the time to the first page of a
//! filtered search, and a complete CSV export: its time, size, and the service's memory
//! while it streams, compared with an export of a tenth as many names (a streamed export's
//! memory does not grow with the registry).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde::Serialize;
use serde_json::{json, Value};

use crate::load::{client, HttpClient};
use crate::procs::OwnStack;
use crate::report::write_json;
use hostnaming_testkit::Storage;

/// Allocation rate with and without metadata, then search and export on a large registry.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Names in the registry for the search and export figures.
    #[arg(long, default_value_t = 10_000)]
    names: usize,
    /// Allocations per variant (with and without metadata) at one client.
    #[arg(long, default_value_t = 1_000)]
    allocations: usize,
    #[arg(long, value_enum, default_value = "dev")]
    storage: Storage,
    #[arg(long, default_value = "target/bench/registry.json")]
    json: PathBuf,
    #[arg(long, default_value = "spin.toml")]
    manifest: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub struct Export {
    pub names: usize,
    pub seconds: f64,
    pub bytes: usize,
    /// The service's resident memory just before the export, and its peak while it ran
    /// (VmRSS sampled every 5 ms).
    pub rss_before_mib: f64,
    pub rss_peak_mib: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub allocations: usize,
    pub plain_per_second: f64,
    pub metadata_per_second: f64,
    /// How much slower allocations with metadata were, in percent of the plain rate.
    pub metadata_cost_percent: f64,
    pub names: usize,
    /// `GET /names?tag=tier:gold&limit=50` (one name in ten carries the tag), following
    /// cursors until the page is full: milliseconds, and the requests it took.
    pub first_page_ms: f64,
    pub first_page_requests: usize,
    /// The first page of an unfiltered search of the whole registry.
    pub unfiltered_page_ms: f64,
    pub small_export: Export,
    pub export: Export,
}

async fn send(
    http: &HttpClient,
    method: &str,
    url: &str,
    body: Option<Value>,
) -> Result<(u16, Bytes)> {
    let mut req = hyper::Request::builder().method(method).uri(url);
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let resp = http.request(req.body(Full::new(body))?).await?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await?.to_bytes();
    Ok((status, bytes))
}

async fn generate(http: &HttpClient, url: &str, body: Value) -> Result<()> {
    let (status, bytes) = send(http, "POST", &format!("{url}/generate-name"), Some(body)).await?;
    if status != 200 {
        bail!(
            "generate answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    Ok(())
}

fn tuple(application: &str) -> Value {
    json!({"application": application, "role": "app", "environment": "prod"})
}

/// Allocations at one client, alternating blocks of `block` with and without metadata;
/// the seconds each variant took in all.
async fn rates(http: &HttpClient, url: &str, allocations: usize) -> Result<(f64, f64)> {
    let block = 50.min(allocations).max(1);
    let metadata = json!({"owner": "team-bench", "description": "a name for the benchmark",
                          "tags": {"tier": "gold", "cost-center": "4242", "team": "bench"}});
    let (mut plain, mut with) = (Duration::ZERO, Duration::ZERO);
    let mut done = 0;
    while done < allocations {
        let n = block.min(allocations - done);
        for (variant, spent) in [(false, &mut plain), (true, &mut with)] {
            let start = Instant::now();
            for _ in 0..n {
                let mut body = tuple(if variant { "meta" } else { "plain" });
                if variant {
                    for (k, v) in metadata.as_object().unwrap() {
                        body[k] = v.clone();
                    }
                }
                generate(http, url, body).await?;
            }
            *spent += start.elapsed();
        }
        done += n;
    }
    Ok((
        allocations as f64 / plain.as_secs_f64(),
        allocations as f64 / with.as_secs_f64(),
    ))
}

/// Adds `batches` batches of ten names, one batch in ten tagged `tier=gold`, spread over
/// ten applications.
async fn seed(http: &HttpClient, url: &str, batches: std::ops::Range<usize>) -> Result<()> {
    for batch in batches {
        let mut body = tuple(&format!("app{}", batch % 10));
        body["count"] = json!(10);
        body["owner"] = json!(format!("team-{}", batch % 7));
        if batch % 10 == 3 {
            body["tags"] = json!({"tier": "gold"});
        }
        generate(http, url, body).await?;
    }
    Ok(())
}

/// Follows cursors until `limit` names have come (or the search ends); the time and the
/// requests it took.
async fn first_page(
    http: &HttpClient,
    url: &str,
    query: &str,
    limit: usize,
) -> Result<(f64, usize)> {
    let start = Instant::now();
    let (mut found, mut requests, mut cursor) = (0, 0, None::<String>);
    loop {
        let mut page_url = format!("{url}/names?{query}&limit={}", limit - found);
        if let Some(c) = &cursor {
            page_url.push_str(&format!("&cursor={c}"));
        }
        let (status, bytes) = send(http, "GET", &page_url, None).await?;
        requests += 1;
        if status != 200 {
            bail!(
                "search answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        let page: Value = serde_json::from_slice(&bytes)?;
        found += page["names"].as_array().map_or(0, Vec::len);
        cursor = page["next_cursor"].as_str().map(String::from);
        if found >= limit || cursor.is_none() {
            return Ok((start.elapsed().as_secs_f64() * 1e3, requests));
        }
    }
}

/// A whole CSV export, read as it streams (its bytes counted, not kept), with the
/// service's memory sampled meanwhile.
async fn export(http: &HttpClient, url: &str, stack: &OwnStack, names: usize) -> Result<Export> {
    let rss = || stack.service.rss_mib().unwrap_or(0.0);
    let rss_before_mib = rss();
    let running = Arc::new(AtomicBool::new(true));
    let pid = stack.service.pid();
    let sampler = {
        let running = running.clone();
        tokio::task::spawn_blocking(move || {
            let mut peak = 0.0f64;
            while running.load(Ordering::Relaxed) {
                if let Some(mib) = crate::procs::rss_of(pid) {
                    peak = peak.max(mib);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        })
    };
    let start = Instant::now();
    let req = hyper::Request::get(format!("{url}/names/export?format=csv"))
        .body(Full::new(Bytes::new()))?;
    let resp = http.request(req).await?;
    if resp.status() != 200 {
        bail!("export answered {}", resp.status());
    }
    let mut body = resp.into_body();
    let (mut bytes, mut lines) = (0, 0);
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            bytes += data.len();
            lines += data.iter().filter(|b| **b == b'\n').count();
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    running.store(false, Ordering::Relaxed);
    let rss_peak_mib = sampler.await?.max(rss_before_mib);
    if lines != names + 1 {
        bail!(
            "the export held {} rows, not {names}",
            lines.saturating_sub(1)
        );
    }
    Ok(Export {
        names,
        seconds,
        bytes,
        rss_before_mib,
        rss_peak_mib,
    })
}

pub async fn execute(args: Args) -> Result<()> {
    let Args {
        names,
        allocations,
        storage,
        json,
        manifest,
    } = args;
    if names < 100 || allocations == 0 {
        bail!("--names must be at least 100 and --allocations at least 1");
    }
    eprintln!("registry: starting OpenBao ({storage:?}) and the service");
    let stack = OwnStack::start(storage, &manifest).await?;
    let (http, url) = (client(), stack.service.url.clone());
    let (plain, with) = rates(&http, &url, allocations)
        .await
        .context("allocating")?;
    let cost = (plain - with) / plain * 100.0;
    println!(
        "allocations at 1 client: {plain:.0}/s plain, {with:.0}/s with metadata ({cost:+.1}% cost)"
    );

    // The registry now holds the rate's names; exports count them too.
    let base = 2 * allocations;
    let batches = |n: usize| n.saturating_sub(base).div_ceil(10);
    let (small, all) = (batches(names / 10).max(1), batches(names).max(2));
    eprintln!("registry: seeding {} names", 10 * small);
    seed(&http, &url, 0..small).await.context("seeding")?;
    let small_export = export(&http, &url, &stack, base + 10 * small).await?;
    eprintln!("registry: seeding {} names more", 10 * (all - small));
    seed(&http, &url, small..all).await.context("seeding")?;
    eprintln!("registry: searching and exporting");
    let total = base + 10 * all;
    let (first_page_ms, first_page_requests) = first_page(&http, &url, "tag=tier:gold", 50).await?;
    let (unfiltered_page_ms, _) = first_page(&http, &url, "status=issued", 50).await?;
    let export = export(&http, &url, &stack, total).await?;
    println!(
        "registry of {total}: first page of tag=tier:gold in {first_page_ms:.1} ms ({first_page_requests} \
         requests), unfiltered {unfiltered_page_ms:.1} ms"
    );
    for e in [&small_export, &export] {
        println!(
            "CSV export of {} names: {:.2} s, {} bytes, service memory {:.1} MiB before, {:.1} MiB peak",
            e.names, e.seconds, e.bytes, e.rss_before_mib, e.rss_peak_mib
        );
    }
    let report = Report {
        allocations,
        plain_per_second: plain,
        metadata_per_second: with,
        metadata_cost_percent: cost,
        names: total,
        first_page_ms,
        first_page_requests,
        unfiltered_page_ms,
        small_export,
        export,
    };
    write_json(&json, &report)
}
