//! The real component served by the real host, in-process, on a free loopback port.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use hostnaming_host::{App, Manifest, Runtime};

use crate::client::{request, Resp};
use crate::openbao::Bao;

/// The repository root (where spin.toml is).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit/ sits in the workspace")
        .to_path_buf()
}

/// The component compiled once per process: compiling is the slow part.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| Runtime::load(Path::new(crate::COMPONENT)).expect("loading the component"))
}

/// `path` loaded with `vars` over the defaults tests need, the environment ignored (a
/// developer's VAULT_ADDR must not leak into tests), and the component this crate built.
pub fn manifest_with(path: &Path, vars: &HashMap<String, String>) -> Manifest {
    let mut vars = vars.clone();
    vars.entry("vault_addr".into())
        .or_insert_with(|| "http://127.0.0.1:1".into());
    vars.entry("vault_token".into())
        .or_insert_with(|| "unused".into());
    // Every test's OpenBao listens on a free loopback port.
    vars.entry("vault_allowed_host".into())
        .or_insert_with(|| "http://127.0.0.1:*".into());
    let mut manifest = Manifest::load(path, &vars, |_| None).unwrap();
    if manifest.source.ends_with("hostnaming.wasm") {
        manifest.source = PathBuf::from(crate::COMPONENT);
    }
    manifest
}

/// The host serving the component on a free port; stops serving when dropped.
pub struct Service {
    pub url: String,
    pub app: Arc<App>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Service {
    /// Serves spin.toml against `bao` with the least-privilege service token, with
    /// variables overridden by `vars`.
    pub async fn start(bao: &Bao, vars: &[(&str, &str)]) -> Service {
        Self::start_manifest(&workspace().join("spin.toml"), bao, vars).await
    }

    pub async fn start_manifest(path: &Path, bao: &Bao, vars: &[(&str, &str)]) -> Service {
        Self::start_app(path, bao, vars, |app| app).await
    }

    /// Like [`Service::start`], with the App adjusted by `adjust` before it serves.
    pub async fn start_app(
        path: &Path,
        bao: &Bao,
        vars: &[(&str, &str)],
        adjust: impl FnOnce(App) -> App,
    ) -> Service {
        let mut map: HashMap<String, String> = [
            ("vault_addr".to_string(), bao.addr.clone()),
            ("vault_token".to_string(), bao.service_token.clone()),
        ]
        .into();
        for (k, v) in vars {
            map.insert(k.to_string(), v.to_string());
        }
        let manifest = manifest_with(path, &map);
        let app = Arc::new(adjust(App::new(runtime(), manifest).unwrap()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(app.clone().serve(listener));
        Service { url, app, task }
    }

    pub async fn generate(&self, app: &str, role: &str, env: &str) -> Resp {
        let body = serde_json::json!({"application": app, "role": role, "environment": env});
        self.request("POST", "/generate-name", &body.to_string())
            .await
    }

    pub async fn request(&self, method: &str, path: &str, body: &str) -> Resp {
        request(method, &format!("{}{path}", self.url), body).await
    }
}
