//! The processes a benchmark starts and watches: its own OpenBao and service (this binary's
//! hidden `serve`, so the service's CPU and memory are its own), the hop server, and what
//! each spends in CPU.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use hostnaming_testkit::{free_port, wait_listening, Bao, Storage};

/// The benchmark's own OpenBao (bootstrapped) and service, with the service's token.
pub struct OwnStack {
    pub bao: Bao,
    pub service: OwnService,
    /// The service's token: least privilege, as an operator would make it.
    pub token: String,
}

impl OwnStack {
    /// Starts OpenBao with `storage`, bootstraps its mount and policy, and serves
    /// `manifest` against it with a token of the service's policy.
    pub async fn start(storage: Storage, manifest: &Path) -> Result<Self> {
        let bao = Bao::try_start(storage).await?;
        let token = bao.service_token.clone();
        let service = OwnService::start(manifest, &bao.addr, &token).await?;
        Ok(Self {
            bao,
            service,
            token,
        })
    }
}

/// A child `hostnaming-bench` process serving HTTP on a free loopback port, killed on drop:
/// the service (`serve`, exactly `hostnaming serve`'s code, in a process of its own so its
/// memory is measured alone) or `--hop`'s native server.
pub struct OwnService {
    child: Child,
    pub url: String,
}

impl Drop for OwnService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl OwnService {
    /// Starts `serve` with `manifest`, its Vault settings in Spin variables.
    pub async fn start(manifest: &Path, vault_addr: &str, token: &str) -> Result<Self> {
        let vars = [
            ("SPIN_VARIABLE_VAULT_ADDR", vault_addr),
            ("SPIN_VARIABLE_VAULT_ALLOWED_HOST", vault_addr),
            ("SPIN_VARIABLE_VAULT_TOKEN", token),
        ];
        let args = [
            "serve".as_ref(),
            "--manifest".as_ref(),
            manifest.as_os_str(),
        ];
        Self::spawn(
            &args,
            &vars,
            Stdio::null(),
            "the service",
            Duration::from_secs(60),
        )
        .await
    }

    /// Starts `hop-serve` against `vault_addr` (see [`crate::hop`]); its accept
    /// errors reach this process's stderr.
    pub async fn start_hop(vault_addr: &str, token: &str) -> Result<Self> {
        let vars = [("VAULT_ADDR", vault_addr), ("VAULT_TOKEN", token)];
        let args = ["hop-serve".as_ref()];
        let within = Duration::from_secs(30);
        Self::spawn(&args, &vars, Stdio::inherit(), "the hop server", within).await
    }

    /// Starts this binary with `args` plus `--listen`, and waits until it listens. The
    /// token goes in `vars`, never on the command line, where `ps` shows it.
    async fn spawn(
        args: &[&std::ffi::OsStr],
        vars: &[(&str, &str)],
        stderr: Stdio,
        what: &str,
        within: Duration,
    ) -> Result<Self> {
        let listen = format!("127.0.0.1:{}", free_port());
        let child = Command::new(std::env::current_exe()?)
            .args(args)
            .args(["--listen", &listen])
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()?;
        // Built before the wait, so a server that never listens is killed on the way out.
        let server = Self {
            child,
            url: format!("http://{listen}"),
        };
        wait_listening(&listen, within)
            .await
            .map_err(|e| e.context(format!("{what} did not start")))?;
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident memory (VmHWM) of the service process, in MiB.
    pub fn peak_rss_mib(&self) -> Option<f64> {
        self.memory_mib("VmHWM:")
    }

    /// Resident memory (VmRSS) of the service process now, in MiB.
    pub fn rss_mib(&self) -> Option<f64> {
        self.memory_mib("VmRSS:")
    }

    fn memory_mib(&self, field: &str) -> Option<f64> {
        memory_of(self.child.id(), field)
    }
}

/// Resident memory (VmRSS) of process `pid` now, in MiB.
pub fn rss_of(pid: u32) -> Option<f64> {
    memory_of(pid, "VmRSS:")
}

fn memory_of(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// The processes besides this one whose CPU the benchmark accounts for: known only when
/// the benchmark started them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Procs {
    pub service: Option<u32>,
    pub vault: Option<u32>,
    pub hop: Option<u32>,
}

/// CPU time per allocation, in ms, of each process taking part (`None`: not ours to see).
/// On a machine where the load saturates the cores, throughput is bounded by the total.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Cpu {
    /// The load generator: the HTTP client for the service, the whole allocation for the
    /// ceiling.
    pub client_ms: f64,
    pub service_ms: Option<f64>,
    pub vault_ms: Option<f64>,
}

impl Cpu {
    pub fn total_ms(&self) -> f64 {
        self.client_ms + self.service_ms.unwrap_or(0.0) + self.vault_ms.unwrap_or(0.0)
    }
}

/// Linux reports process CPU in USER_HZ ticks, 100 per second on every mainstream arch.
const USER_HZ: f64 = 100.0;

/// User plus system CPU seconds of a process (this one when `pid` is `None`).
fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = pid.map_or("/proc/self/stat".to_string(), |p| format!("/proc/{p}/stat"));
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name may hold spaces; the fields after it are fixed: utime and stime
    // are the 12th and 13th after the closing parenthesis.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

/// CPU seconds of (this process, the service, Vault) now.
pub fn cpu_now(procs: Procs) -> [Option<f64>; 3] {
    [
        cpu_seconds(None),
        procs.service.and_then(|p| cpu_seconds(Some(p))),
        procs.vault.and_then(|p| cpu_seconds(Some(p))),
    ]
}

/// Adds what each process spent between `before` and now to `spent`.
pub fn add_cpu(spent: &mut [Option<f64>; 3], before: [Option<f64>; 3], procs: Procs) {
    for ((total, b), a) in spent.iter_mut().zip(before).zip(cpu_now(procs)) {
        *total = match (b, a) {
            (Some(b), Some(a)) => Some(total.unwrap_or(0.0) + (a - b)),
            _ => None,
        };
    }
}

/// What each process spent per allocation, in ms.
pub fn per_allocation(spent: [Option<f64>; 3], allocations: usize) -> Cpu {
    let ms = |s: Option<f64>| s.map(|s| s * 1e3 / allocations.max(1) as f64);
    Cpu {
        client_ms: ms(spent[0]).unwrap_or(0.0),
        service_ms: ms(spent[1]),
        vault_ms: ms(spent[2]),
    }
}
