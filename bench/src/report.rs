//! What a benchmark found: the rows of a run, printed as tables and written as JSON.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::load::{Load, Stats};
use crate::procs::Cpu;
use hostnaming_testkit::Storage;

/// One row of the results: a load, the service, the ceiling, and their ratio.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub load: Load,
    pub service: Stats,
    pub ceiling: Stats,
    pub ratio: f64,
    /// CPU spent per allocation while the service ran, by process.
    pub service_cpu: Cpu,
    /// CPU spent per allocation while the ceiling ran, by process.
    pub ceiling_cpu: Cpu,
    /// The HTTP hop alone ([`crate::hop`]), when asked for: its figures, its rate over the
    /// ceiling's, and its CPU (the hop server's in the `service_ms` field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hop: Option<Stats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hop_ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hop_cpu: Option<Cpu>,
}

/// Everything one `bench` run found, as written to JSON.
#[derive(Debug, Serialize)]
pub struct Report {
    pub storage: Storage,
    pub rows: Vec<Row>,
    pub component_bytes: u64,
    pub service_peak_rss_mib: Option<f64>,
    pub host_overhead_p50_us: Option<f64>,
}

/// Writes `report` to `path` as pretty JSON (making its folder), and says where.
pub fn write_json(path: &Path, report: &impl Serialize) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, serde_json::to_string_pretty(report)?)?;
    println!("results: {}", path.display());
    Ok(())
}

/// The tables on stdout: service beside ceiling, CPU per allocation, races lost, and the
/// hop server when it ran.
pub fn print_table(storage: Storage, rows: &[Row]) {
    println!("\nstorage: {storage:?}");
    println!(
        "{:>7} {:>6} {:>8} | {:>9} {:>7} {:>7} {:>7} {:>7} {:>6} {:>4} | {:>9} {:>7} {:>7} | {:>6}",
        "clients",
        "tuples",
        "requests",
        "svc /s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "non2xx",
        "dups",
        "ceil /s",
        "p50 ms",
        "p99 ms",
        "ratio"
    );
    for r in rows {
        let non2xx = non_2xx(&r.service);
        println!(
            "{:>7} {:>6} {:>8} | {:>9.0} {:>7.2} {:>7.2} {:>7.2} {:>7.2} {:>6} {:>4} | {:>9.0} {:>7.2} {:>7.2} | {:>6.2}",
            r.load.clients, r.load.tuples, r.load.requests,
            r.service.rate, r.service.p50_ms, r.service.p90_ms, r.service.p99_ms, r.service.max_ms, non2xx, r.service.duplicates,
            r.ceiling.rate, r.ceiling.p50_ms, r.ceiling.p99_ms, r.ratio
        );
    }
    let opt = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.2}"));
    println!(
        "\nCPU per allocation, ms (client = this process: the HTTP load, or the whole ceiling)"
    );
    println!(
        "{:>7} {:>6} | {:>7} {:>7} {:>7} {:>7} | {:>7} {:>7} {:>7} | {:>9}",
        "clients",
        "tuples",
        "client",
        "service",
        "vault",
        "total",
        "client",
        "vault",
        "total",
        "cpu ratio"
    );
    for r in rows {
        let (s, c) = (&r.service_cpu, &r.ceiling_cpu);
        println!(
            "{:>7} {:>6} | {:>7.2} {:>7} {:>7} {:>7.2} | {:>7.2} {:>7} {:>7.2} | {:>9.2}",
            r.load.clients,
            r.load.tuples,
            s.client_ms,
            opt(s.service_ms),
            opt(s.vault_ms),
            s.total_ms(),
            c.client_ms,
            opt(c.vault_ms),
            c.total_ms(),
            c.total_ms() / s.total_ms().max(f64::MIN_POSITIVE)
        );
    }
    println!("\nCheck-and-set races lost per name issued (each lost race costs Vault a read and a write)");
    println!(
        "{:>7} {:>6} | {:>7} {:>7} {:>7}",
        "clients", "tuples", "service", "ceiling", "hop"
    );
    for r in rows {
        println!(
            "{:>7} {:>6} | {:>7} {:>7} {:>7}",
            r.load.clients,
            r.load.tuples,
            opt(r.service.lost_races),
            opt(r.ceiling.lost_races),
            opt(r.hop.as_ref().and_then(|h| h.lost_races)),
        );
    }
    if rows.iter().any(|r| r.hop.is_some()) {
        println!("\nThe HTTP hop alone: a native HTTP server making the same allocation (no wasm, no host)");
        println!(
            "{:>7} {:>6} | {:>9} {:>7} {:>7} {:>6} {:>4} | {:>9} | {:>7} {:>7} {:>7} {:>7} | {:>10}",
            "clients",
            "tuples",
            "hop /s",
            "p50 ms",
            "p99 ms",
            "non2xx",
            "dups",
            "hop ratio",
            "client",
            "hop",
            "vault",
            "total",
            "svc vs hop"
        );
        for r in rows {
            let (Some(h), Some(ratio), Some(cpu)) = (&r.hop, r.hop_ratio, &r.hop_cpu) else {
                continue;
            };
            println!(
                "{:>7} {:>6} | {:>9.0} {:>7.2} {:>7.2} {:>6} {:>4} | {:>9.2} | {:>7.2} {:>7} {:>7} {:>7.2} | {:>10.2}",
                r.load.clients,
                r.load.tuples,
                h.rate,
                h.p50_ms,
                h.p99_ms,
                non_2xx(h),
                h.duplicates,
                ratio,
                cpu.client_ms,
                opt(cpu.service_ms),
                opt(cpu.vault_ms),
                cpu.total_ms(),
                r.service.rate / h.rate.max(f64::MIN_POSITIVE)
            );
        }
    }
}

/// Answers other than 200 OK.
fn non_2xx(stats: &Stats) -> usize {
    stats
        .statuses
        .iter()
        .filter(|(k, _)| *k != "200")
        .map(|(_, v)| v)
        .sum()
}
