//! The real component served by real Spin (spin-lite: Spin v4.0.2's own HTTP trigger,
//! loader and variables providers, from `../shared/spin/`), as a child process on a free
//! loopback port.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use crate::openbao::Bao;
use crate::ports::free_port;
use crate::service::workspace;

/// Loading and compiling the component is most of Spin's start-up: generous on 2 cores.
const START_WITHIN: Duration = Duration::from_secs(180);

/// Where spin-lite is, or where it was looked for (`Err`): `$HOSTNAMING_SPIN`, else what
/// `../shared/spin/install.sh` (next to the repository) prints.
pub fn binary() -> &'static Result<PathBuf, String> {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Some(path) = std::env::var_os("HOSTNAMING_SPIN") {
            let path = PathBuf::from(path);
            return if path.is_file() {
                Ok(path)
            } else {
                Err(path.display().to_string())
            };
        }
        let install = workspace().join("../shared/spin/install.sh");
        if !install.is_file() {
            return Err(install.display().to_string());
        }
        let out = std::process::Command::new(&install)
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("{} ({e})", install.display()))?;
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && path.is_file() {
            Ok(path)
        } else {
            Err(format!("{} (exit {})", install.display(), out.status))
        }
    })
}

/// spin-lite's path; `None` after printing `SKIPPED: ...` when it is absent. CI never
/// skips: there an absent spin-lite is a failure.
pub fn binary_or_skip() -> Option<PathBuf> {
    match binary() {
        Ok(path) => Some(path.clone()),
        Err(looked) if std::env::var_os("CI").is_some() => {
            panic!("spin-lite not found at {looked} (CI runs every Spin test)")
        }
        Err(looked) => {
            eprintln!("SKIPPED: spin-lite not found at {looked}");
            None
        }
    }
}

/// spin.toml with `source` made absolute (Spin resolves it against the manifest's folder,
/// and the copy lives in a temporary one).
pub fn manifest() -> String {
    let text = std::fs::read_to_string(workspace().join("spin.toml")).expect("reading spin.toml");
    let mut replaced = 0;
    let out: Vec<String> = text
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("source = ") {
                replaced += 1;
                format!("source = {:?}", crate::COMPONENT)
            } else {
                line.to_string()
            }
        })
        .collect();
    assert_eq!(replaced, 1, "spin.toml has one component source");
    out.join("\n") + "\n"
}

/// `spin-lite up` serving spin.toml on a free port; stopped (with the trigger process it
/// runs) and its folder removed when dropped.
pub struct SpinService {
    pub url: String,
    child: tokio::process::Child,
    dir: PathBuf,
}

impl SpinService {
    /// Serves spin.toml against `bao` with the least-privilege service token, variables
    /// overridden by `vars`, as [`crate::Service::start`] does; `None` if skipped.
    pub async fn start(bao: &Bao, vars: &[(&str, &str)]) -> Option<SpinService> {
        let mut all = vec![
            ("vault_addr", bao.addr.as_str()),
            ("vault_token", bao.service_token.as_str()),
        ];
        all.extend_from_slice(vars);
        Self::launch(&all, None).await
    }

    /// Serves spin.toml with exactly `vars` (later entries win), plus
    /// `vault_allowed_host = http://127.0.0.1:*` unless given, and `runtime_config` as
    /// `--runtime-config-file` if any. `None` if skipped.
    pub async fn launch(
        vars: &[(&str, &str)],
        runtime_config: Option<&str>,
    ) -> Option<SpinService> {
        Self::try_launch(vars, runtime_config)
            .await
            .map(|r| r.unwrap_or_else(|e| panic!("spin-lite did not start: {e}")))
    }

    /// Like [`SpinService::launch`], with Spin's refusal to start (a missing required
    /// variable, a bad runtime config) as `Err` with what it printed.
    pub async fn try_launch(
        vars: &[(&str, &str)],
        runtime_config: Option<&str>,
    ) -> Option<Result<SpinService, String>> {
        let bin = binary_or_skip()?;
        let dir = scratch();
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        std::fs::write(dir.join("spin.toml"), manifest()).unwrap();
        if let Some(rc) = runtime_config {
            std::fs::write(dir.join("runtime-config.toml"), rc).unwrap();
        }
        let mut tries = 0;
        // A free port may be taken before Spin binds it: then Spin exits, try another.
        let result = loop {
            tries += 1;
            match Self::spawn(&bin, &dir, vars, runtime_config.is_some()).await {
                Err(e) if e.contains("already in use") && tries < 3 => continue,
                other => break other,
            }
        };
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        Some(result)
    }

    async fn spawn(
        bin: &Path,
        dir: &Path,
        vars: &[(&str, &str)],
        runtime_config: bool,
    ) -> Result<SpinService, String> {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut cmd = tokio::process::Command::new(bin);
        cmd.arg("up")
            .arg("-f")
            .arg(dir.join("spin.toml"))
            .args(["--listen", &addr])
            .arg("--log-dir")
            .arg(dir.join("logs"));
        if runtime_config {
            cmd.arg("--runtime-config-file")
                .arg(dir.join("runtime-config.toml"));
        }
        // Only the variables given: a developer's own SPIN_VARIABLE_* must not leak in.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SPIN_VARIABLE_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("SPIN_VARIABLE_VAULT_ALLOWED_HOST", "http://127.0.0.1:*");
        for (k, v) in vars {
            cmd.env(format!("SPIN_VARIABLE_{}", k.to_uppercase()), v);
        }
        let out = std::fs::File::create(dir.join("spin.out")).unwrap();
        cmd.current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            // Its own process group, so dropping stops `up` and the trigger it runs.
            .process_group(0)
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(|e| format!("{}: {e}", bin.display()))?;
        let mut svc = SpinService {
            url: format!("http://{addr}"),
            child,
            dir: dir.to_path_buf(),
        };
        let deadline = tokio::time::Instant::now() + START_WITHIN;
        loop {
            if tokio::net::TcpStream::connect(&addr).await.is_ok() {
                return Ok(svc);
            }
            if let Ok(Some(status)) = svc.child.try_wait() {
                let output = svc.output();
                svc.dir = PathBuf::new(); // keep the folder for the retry
                return Err(format!("exited with {status}: {output}"));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "not listening within {START_WITHIN:?}: {}",
                    svc.output()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What spin-lite printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.dir.join("spin.out")).unwrap_or_default()
    }

    pub async fn request(&self, method: &str, path: &str, body: &str) -> crate::Resp {
        crate::request(method, &format!("{}{path}", self.url), body).await
    }
}

impl Drop for SpinService {
    fn drop(&mut self) {
        // SIGTERM to the group (`up` forwards it, the trigger stops), then wait for `up`
        // to be gone; SIGKILL to the group if it lingers.
        if let Some(pid) = self.child.id() {
            let group = format!("-{pid}");
            let _ = std::process::Command::new("kill")
                .args(["-TERM", "--", &group])
                .status();
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &group])
                .stderr(Stdio::null())
                .status();
            let _ = self.child.start_kill();
        }
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn scratch() -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "hostnaming-spin-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}
