//! `hostnaming serve` runs the component from spin.toml; `hostnaming bootstrap` prepares
//! Vault.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use hostnaming_host::vault::{bootstrap, Bootstrapped, VaultClient, SERVICE_POLICY_NAME};
use hostnaming_host::{bench, App, Manifest};

#[derive(Parser)]
#[command(name = "hostnaming", version, about = "Hostnames as a service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the component over HTTP as Spin's HTTP trigger would.
    Serve {
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: String,
        #[arg(long, default_value = "spin.toml")]
        manifest: PathBuf,
        /// The most requests that run at once; more wait for a turn. Below it the limit
        /// adapts: answers reporting lost check-and-set races halve it (down to two per
        /// core, at least 4), a run of clean ones raises it by one. Default: eight per
        /// core, at least 16.
        #[arg(long, env = "HOSTNAMING_MAX_CONCURRENT")]
        max_concurrent: Option<usize>,
        /// How long a request may wait for a turn before it gets a 503 with Retry-After
        /// (default 5000): while Vault stalls each turn can last the allocation deadline.
        #[arg(long, env = "HOSTNAMING_QUEUE_TIMEOUT_MS")]
        queue_timeout_ms: Option<u64>,
        /// Let instances read and write a counter at once, losing check-and-set races to
        /// each other, as under Spin; by default this host's instances take turns on each
        /// path between a read and its write.
        #[arg(long, env = "HOSTNAMING_NO_GATES")]
        no_gates: bool,
    },
    /// Measure allocations/s and latency of the service beside its native ceiling. Starts
    /// its own OpenBao and service unless --url is given.
    Bench {
        /// A running service to load (then VAULT_ADDR / VAULT_TOKEN serve the ceiling).
        #[arg(long)]
        url: Option<String>,
        #[arg(long, value_enum, default_value = "dev")]
        storage: hostnaming_host::bench::Storage,
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
    },
    /// The native server `bench --hop` loads: the same allocation as the component behind
    /// plain hyper, no wasm and no host. For the benchmark only.
    #[command(hide = true)]
    HopServe {
        #[arg(long)]
        listen: String,
        #[arg(long, env = "VAULT_ADDR")]
        vault_addr: String,
        #[arg(long, env = "VAULT_TOKEN", hide_env_values = true)]
        vault_token: String,
    },
    /// Allocate many names from one counter and report latency, the service's memory and
    /// the counter's Vault metadata every block: all should stay flat. Starts its own
    /// OpenBao and service unless --url is given (then VAULT_ADDR / VAULT_TOKEN, a token
    /// that may read the mount's metadata, are used for the metadata).
    Soak {
        #[arg(long)]
        url: Option<String>,
        #[arg(long, value_enum, default_value = "dev")]
        storage: hostnaming_host::bench::Storage,
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
    },
    /// Make a new API token and print it with its `api_tokens` entry (the hash).
    Token {
        /// Comma-separated: generate, read, admin.
        #[arg(long, default_value = "generate,read")]
        scopes: String,
    },
    /// Create the KV v2 mount (cas_required) if missing, and the service's policy. Safe to
    /// repeat.
    Bootstrap {
        #[arg(long, env = "VAULT_ADDR")]
        vault_addr: String,
        #[arg(long, env = "VAULT_TOKEN", hide_env_values = true)]
        vault_token: String,
        #[arg(long, default_value = "hostnaming")]
        mount: String,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Serve {
            listen,
            manifest,
            max_concurrent,
            queue_timeout_ms,
            no_gates,
        } => {
            let manifest = Manifest::load(&manifest, &HashMap::new(), |n| std::env::var(n).ok())?;
            let vault = manifest
                .variables
                .get("vault_addr")
                .cloned()
                .unwrap_or_default();
            hostnaming_host::server::check_vault_reachable(&manifest)?;
            if let Some(warning) = hostnaming_host::server::open_access_warning(&manifest) {
                eprintln!("hostnaming: {warning}");
            }
            let max =
                max_concurrent.unwrap_or_else(hostnaming_host::server::default_max_concurrency);
            let queue_timeout = queue_timeout_ms.map_or(
                hostnaming_host::server::DEFAULT_QUEUE_TIMEOUT,
                std::time::Duration::from_millis,
            );
            let mut app = App::load(manifest)?
                .adapt_concurrency(max)
                .queue_timeout(queue_timeout);
            if no_gates {
                app = app.without_gates();
            }
            let app = Arc::new(app);
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            eprintln!(
                "hostnaming: serving on http://{} (Vault at {vault})",
                listener.local_addr()?
            );
            tokio::select! {
                r = app.serve(listener) => r,
                _ = tokio::signal::ctrl_c() => Ok(()),
            }
        }
        Command::Bench {
            url,
            storage,
            clients,
            requests,
            tuples,
            sweep,
            rounds,
            json,
            plot,
            manifest,
            overhead_only,
            idle_us,
            hop,
        } => {
            if let Some(iterations) = overhead_only {
                let m = Manifest::load(
                    &manifest,
                    &HashMap::from([("vault_token".into(), "unused".into())]),
                    |_| None,
                )?;
                let idle = std::time::Duration::from_micros(idle_us.unwrap_or(0));
                let o = bench::host_overhead(&m, iterations, idle).await?;
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
            bench(
                url,
                storage,
                (clients, requests, tuples),
                (sweep, rounds, hop),
                &json,
                &plot,
                &manifest,
            )
            .await
        }
        Command::HopServe {
            listen,
            vault_addr,
            vault_token,
        } => {
            let vault = hostnaming::vault::VaultConfig::parse(&vault_addr, "hostnaming")
                .map_err(anyhow::Error::msg)?;
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            bench::hop_serve(listener, vault, vault_token).await;
            Ok(())
        }
        Command::Token { scopes } => {
            let mut bytes = [0u8; 24];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
                .context("reading /dev/urandom")?;
            let token: String = std::iter::once("hn_".to_string())
                .chain(bytes.iter().map(|b| format!("{b:02x}")))
                .collect();
            let entry = format!("{}:{scopes}", hostnaming::auth::token_hash(&token));
            hostnaming::auth::ApiTokens::parse(&entry).map_err(anyhow::Error::msg)?;
            println!("token (give to the client, store nowhere else): {token}");
            println!("api_tokens entry (configure the service with it): {entry}");
            Ok(())
        }
        Command::Soak {
            url,
            storage,
            count,
            block,
            clients,
            json,
            manifest,
            mount,
        } => {
            if count == 0 || block == 0 || clients == 0 {
                anyhow::bail!("--count, --block and --clients must be at least 1");
            }
            let (_bao, svc, url, vault) = match url {
                Some(url) => {
                    let addr = std::env::var("VAULT_ADDR").context("--url needs VAULT_ADDR")?;
                    let token = std::env::var("VAULT_TOKEN").context("--url needs VAULT_TOKEN")?;
                    (None, None, url, VaultClient::new(&addr, &token)?)
                }
                None => {
                    eprintln!("soak: starting OpenBao ({storage:?}) and the service");
                    let bao = bench::OwnBao::start(storage).await?;
                    let token = bench::service_token(&bao).await?;
                    let svc = bench::OwnService::start(&manifest, &bao.addr, &token).await?;
                    let vault = VaultClient::new(&bao.addr, &bao.root)?;
                    let url = svc.url.clone();
                    (Some(bao), Some(svc), url, vault)
                }
            };
            let rss = || svc.as_ref().and_then(|s| s.rss_mib());
            let probe = hostnaming_host::soak::Probe {
                vault: &vault,
                mount: &mount,
                rss: &rss,
            };
            let report = hostnaming_host::soak::run(&url, probe, count, block, clients).await?;
            println!(
                "{} allocations from {} clients: {} duplicates, {} numbers missing, counter now {}",
                report.count,
                report.clients,
                report.duplicates,
                report.missing,
                report.final_counter
            );
            if let Some(dir) = json.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&json, serde_json::to_string_pretty(&report)?)?;
            println!("results: {}", json.display());
            if report.duplicates > 0 {
                anyhow::bail!("{} names were issued twice", report.duplicates);
            }
            Ok(())
        }
        Command::Bootstrap {
            vault_addr,
            vault_token,
            mount,
        } => {
            // Any node of a cluster will do: standbys forward to the active node.
            let first = vault_addr.split(',').next().unwrap_or_default().trim();
            let vault = VaultClient::new(first, &vault_token)?;
            match bootstrap(&vault, &mount).await? {
                Bootstrapped::Created => eprintln!("hostnaming: created KV v2 mount {mount}/"),
                Bootstrapped::AlreadyThere => {
                    eprintln!("hostnaming: KV v2 mount {mount}/ is there")
                }
            }
            eprintln!(
                "hostnaming: {mount}/ requires check-and-set; policy {SERVICE_POLICY_NAME} written \
                 (make the service's token with: bao token create -policy={SERVICE_POLICY_NAME})"
            );
            Ok(())
        }
    }
}

async fn bench(
    url: Option<String>,
    storage: bench::Storage,
    (clients, requests, tuples): (usize, usize, usize),
    (sweep, rounds, hop): (bool, usize, bool),
    json: &std::path::Path,
    plot: &std::path::Path,
    manifest_path: &std::path::Path,
) -> Result<()> {
    let manifest = Manifest::load(
        manifest_path,
        &HashMap::from([("vault_token".to_string(), "unused".to_string())]),
        |_| None,
    )?;
    let (_bao, _svc, svc_url, vault_addr, token) = match url {
        Some(url) => {
            let addr =
                std::env::var("VAULT_ADDR").context("--url needs VAULT_ADDR for the ceiling")?;
            let token =
                std::env::var("VAULT_TOKEN").context("--url needs VAULT_TOKEN for the ceiling")?;
            (None, None, url, addr, token)
        }
        None => {
            eprintln!("bench: starting OpenBao ({storage:?}) and the service");
            let bao = bench::OwnBao::start(storage).await?;
            let token = bench::service_token(&bao).await?;
            let svc = bench::OwnService::start(manifest_path, &bao.addr, &token).await?;
            let (url, addr) = (svc.url.clone(), bao.addr.clone());
            (Some(bao), Some(svc), url, addr, token)
        }
    };
    let vault = hostnaming::vault::VaultConfig::parse(&vault_addr, "hostnaming")
        .map_err(anyhow::Error::msg)?;
    let loads: Vec<bench::Load> = if sweep {
        let mut loads = Vec::new();
        for c in [1, 4, 16, 64] {
            for t in if c == 1 { vec![1] } else { vec![1, c] } {
                loads.push(bench::Load {
                    clients: c,
                    requests: requests.max(c * 20),
                    tuples: t,
                });
            }
        }
        loads
    } else {
        vec![bench::Load {
            clients,
            requests,
            tuples,
        }]
    };
    let hop = if hop {
        Some(bench::OwnService::start_hop(&vault_addr, &token).await?)
    } else {
        None
    };
    let procs = bench::Procs {
        service: _svc.as_ref().map(|s| s.pid()),
        vault: _bao.as_ref().map(|b| b.pid()),
        hop: hop.as_ref().map(|h| h.pid()),
    };
    let hop_url = hop.as_ref().map(|h| h.url.as_str());
    let mut rows = Vec::new();
    for load in loads {
        rows.push(bench::compare(&svc_url, hop_url, &vault, &token, load, rounds, procs).await);
    }
    bench::print_table(storage, &rows);
    let rss = _svc.as_ref().and_then(|s| s.peak_rss_mib());
    let overhead = match bench::host_overhead(&manifest, 2000, std::time::Duration::ZERO).await {
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
    let report = bench::Report {
        storage,
        rows,
        component_bytes,
        service_peak_rss_mib: rss,
        host_overhead_p50_us: overhead,
    };
    if let Some(dir) = json.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(json, serde_json::to_string_pretty(&report)?)?;
    println!("results: {}", json.display());
    if sweep {
        if let Some(dir) = plot.parent() {
            std::fs::create_dir_all(dir)?;
        }
        bench::plot(plot, &format!("{storage:?}"), &report.rows)?;
        println!("plot: {}", plot.display());
    }
    Ok(())
}
