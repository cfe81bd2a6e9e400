//! `hostnaming-bench bench`: allocation throughput and latency of the service (HTTP, host,
//! wasm, Vault) beside its ceiling, a native loop making exactly the same Vault calls (the
//! same `hostnaming::core::allocate` code over a native HTTP client), at the same concurrency and
//! tuples, in the same run. Ratios within one run are what to compare: absolute numbers on
//! a shared machine drift.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use hostnaming::core::vault::VaultConfig;
use hostnaming_host::Manifest;

use crate::load::{load_service, stats, Load, Samples};
use crate::native::load_native;
use crate::overhead::host_overhead;
use crate::procs::{add_cpu, cpu_now, per_allocation, OwnService, OwnStack, Procs};
use crate::report::{print_table, write_json, Report, Row};
use hostnaming_testkit::Storage;

/// Measure allocations/s and latency of the service beside its native ceiling. Starts its
/// own OpenBao and service unless --url is given.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A running service to load (then VAULT_ADDR / VAULT_TOKEN serve the ceiling).
    #[arg(long)]
    url: Option<String>,
    #[arg(long, value_enum, default_value = "dev")]
    storage: Storage,
    #[arg(long, default_value_t = 64)]
    clients: usize,
    #[arg(long, default_value_t = 4000)]
    requests: usize,
    #[arg(long, default_value_t = 1)]
    tuples: usize,
    /// Run 1, 4, 16, 64 clients over 1 tuple and over as many tuples as clients.
    #[arg(long)]
    sweep: bool,
    /// Alternate the sides (service, ceiling, hop) this many times per load, the
    /// requests split evenly, so the machine's drift falls on all of them.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    #[arg(long, default_value = "target/bench/results.json")]
    json: PathBuf,
    /// Where the sweep's plot goes.
    #[arg(long, default_value = "target/bench/bench.svg")]
    plot: PathBuf,
    #[arg(long, default_value = "spin.toml")]
    manifest: PathBuf,
    /// Only measure the host overhead (Vault stubbed), this many times; for profiling.
    #[arg(long)]
    overhead_only: Option<usize>,
    /// With --overhead-only: pause this many microseconds before each request, as a
    /// live request pauses while Vault answers, to see what cold caches cost.
    #[arg(long, requires = "overhead_only")]
    idle_us: Option<u64>,
    /// Also load a native HTTP server making the same allocation (no wasm, no host), in
    /// the same rounds: what the HTTP hop alone costs against the ceiling.
    #[arg(long, conflicts_with = "overhead_only")]
    hop: bool,
}

pub async fn execute(args: Args) -> Result<()> {
    // The overhead is measured in this process, with the service's Vault token unused.
    let manifest = Manifest::load(
        &args.manifest,
        &HashMap::from([("vault_token".to_string(), "unused".to_string())]),
        |_| None,
    )?;
    if let Some(iterations) = args.overhead_only {
        let idle = Duration::from_micros(args.idle_us.unwrap_or(0));
        let o = host_overhead(&manifest, iterations, idle).await?;
        let after = if idle.is_zero() {
            String::new()
        } else {
            format!(", each after a pause of mean {:.0} us", o.mean_pause_us)
        };
        println!(
            "host overhead per request (instantiate + run, Vault stubbed{after}): p50 {:.0} us",
            o.p50_us
        );
        return Ok(());
    }
    let storage = args.storage;
    let (stack, svc_url, vault_addr, token) = match &args.url {
        Some(url) => {
            let addr =
                std::env::var("VAULT_ADDR").context("--url needs VAULT_ADDR for the ceiling")?;
            let token =
                std::env::var("VAULT_TOKEN").context("--url needs VAULT_TOKEN for the ceiling")?;
            (None, url.clone(), addr, token)
        }
        None => {
            eprintln!("bench: starting OpenBao ({storage:?}) and the service");
            let stack = OwnStack::start(storage, &args.manifest).await?;
            let (url, addr) = (stack.service.url.clone(), stack.bao.addr.clone());
            let token = stack.token.clone();
            (Some(stack), url, addr, token)
        }
    };
    let vault = VaultConfig::parse(&vault_addr, "hostnaming").map_err(anyhow::Error::msg)?;
    let loads = loads(&args);
    let hop = if args.hop {
        Some(OwnService::start_hop(&vault_addr, &token).await?)
    } else {
        None
    };
    let procs = Procs {
        service: stack.as_ref().map(|s| s.service.pid()),
        vault: stack.as_ref().and_then(|s| s.bao.pid()),
        hop: hop.as_ref().map(|h| h.pid()),
    };
    let hop_url = hop.as_ref().map(|h| h.url.as_str());
    let mut rows = Vec::new();
    for load in loads {
        rows.push(compare(&svc_url, hop_url, &vault, &token, load, args.rounds, procs).await);
    }
    print_table(storage, &rows);
    let rss = stack.as_ref().and_then(|s| s.service.peak_rss_mib());
    let overhead = match host_overhead(&manifest, 2000, Duration::ZERO).await {
        Ok(o) => Some(o.p50_us),
        Err(e) => {
            eprintln!("bench: measuring the host overhead failed: {e:#}");
            None
        }
    };
    let component_bytes = std::fs::metadata(&manifest.source)
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "component {} KiB; service peak RSS {}; host overhead per request (instantiate + run, Vault stubbed) p50 {}",
        component_bytes / 1024,
        rss.map_or("n/a".into(), |r| format!("{r:.1} MiB")),
        overhead.map_or("n/a".into(), |o| format!("{o:.0} us")),
    );
    let report = Report {
        storage,
        rows,
        component_bytes,
        service_peak_rss_mib: rss,
        host_overhead_p50_us: overhead,
    };
    write_json(&args.json, &report)?;
    if args.sweep {
        plot(&args.plot, storage, &report.rows)?;
    }
    Ok(())
}

/// The loads to run: the one asked for, or with `--sweep` 1, 4, 16 and 64 clients over one
/// tuple and over as many tuples as clients.
fn loads(args: &Args) -> Vec<Load> {
    if !args.sweep {
        return vec![Load {
            clients: args.clients,
            requests: args.requests,
            tuples: args.tuples,
        }];
    }
    let mut loads = Vec::new();
    for c in [1, 4, 16, 64] {
        for t in if c == 1 { vec![1] } else { vec![1, c] } {
            loads.push(Load {
                clients: c,
                requests: args.requests.max(c * 20),
                tuples: t,
            });
        }
    }
    loads
}

fn plot(path: &Path, storage: Storage, rows: &[Row]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::plot::plot(path, &format!("{storage:?}"), rows)?;
    println!("plot: {}", path.display());
    Ok(())
}

/// Runs `load` against the service and the ceiling (and the hop server at `hop_url`, if
/// given) in `rounds` rounds (each side on its own fresh tuples, continued across rounds).
/// Each round starts with the next side in turn, so drift in the machine's speed, and
/// whatever a side leaves behind in OpenBao for the next, fall on every side alike.
pub async fn compare(
    svc_url: &str,
    hop_url: Option<&str>,
    vault: &VaultConfig,
    token: &str,
    load: Load,
    rounds: usize,
    procs: Procs,
) -> Row {
    let run = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros())
    );
    let rounds = rounds.clamp(1, load.requests.max(1));
    let (mut service, mut ceiling) = (Samples::default(), Samples::default());
    let (mut service_spent, mut ceiling_spent) = ([Some(0.0); 3], [Some(0.0); 3]);
    let (mut hop, mut hop_spent) = (Samples::default(), [Some(0.0); 3]);
    // The hop server's CPU goes where the service's does on the other sides.
    let hop_procs = Procs {
        service: procs.hop,
        ..procs
    };
    let sides = if hop_url.is_some() { 3 } else { 2 };
    for round in 0..rounds {
        // Split the requests evenly; the first rounds take the remainder.
        let requests = load.requests / rounds + usize::from(round < load.requests % rounds);
        let part = Load { requests, ..load };
        let tag = |side: &str| {
            format!(
                "{side} c={} t={} ({}/{rounds})",
                load.clients,
                load.tuples,
                round + 1
            )
        };
        for turn in 0..sides {
            match (round + turn) % sides {
                0 => {
                    let before = cpu_now(procs);
                    let label = tag("service ");
                    service.add(load_service(svc_url, &format!("{run}s"), label, part).await);
                    add_cpu(&mut service_spent, before, procs);
                }
                1 => {
                    let before = cpu_now(procs);
                    let label = tag("ceiling ");
                    ceiling.add(load_native(vault, token, &format!("{run}n"), label, part).await);
                    add_cpu(&mut ceiling_spent, before, procs);
                }
                _ => {
                    let url = hop_url.expect("a third side only with a hop server");
                    let before = cpu_now(hop_procs);
                    let label = tag("hop     ");
                    hop.add(load_service(url, &format!("{run}h"), label, part).await);
                    add_cpu(&mut hop_spent, before, hop_procs);
                }
            }
        }
    }
    let service_cpu = per_allocation(service_spent, service.names.len());
    let ceiling_cpu = per_allocation(ceiling_spent, ceiling.names.len());
    let hop_cpu = hop_url.map(|_| per_allocation(hop_spent, hop.names.len()));
    let (service, ceiling) = (stats(service), stats(ceiling));
    let hop = hop_url.map(|_| stats(hop));
    let of_ceiling = |rate: f64| rate / ceiling.rate.max(f64::MIN_POSITIVE);
    Row {
        load,
        ratio: of_ceiling(service.rate),
        hop_ratio: hop.as_ref().map(|h| of_ceiling(h.rate)),
        service,
        ceiling,
        service_cpu,
        ceiling_cpu,
        hop,
        hop_cpu,
    }
}
