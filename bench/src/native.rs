//! The ceiling: the component's own allocation code (`hostnaming::core::allocate`) run natively
//! over a pooled HTTP client, making exactly the Vault calls the component makes, with no
//! HTTP server, no host and no wasm in front.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hostnaming::core::allocate::{self, Env, NameRequest, Settings};
use hostnaming::core::metadata::Metadata;
use hostnaming::core::validate::Tuple;
use hostnaming::core::vault::{Call, Method, Reply, VaultConfig};
use http_body_util::{BodyExt, Full};

use crate::load::{client, drive, tuple_app, HttpClient, Issued, Load, Samples, ENVIRONMENT, ROLE};

/// [`Env`] over a native pooled HTTP client: the ceiling makes the component's exact calls.
pub struct NativeEnv {
    http: HttpClient,
    /// The ceiling measures one node, the first.
    node: String,
    token: String,
    started: Instant,
    seed: u64,
}

impl Env for NativeEnv {
    async fn send(&mut self, call: Call) -> std::result::Result<Reply, String> {
        let method = match call.method {
            Method::Get => "GET",
            Method::Post => "POST",
        };
        let req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{}", self.node, call.path))
            .header("x-vault-token", &self.token)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(call.body.unwrap_or_default())))
            .map_err(|e| e.to_string())?;
        let resp = self.http.request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok(Reply {
            status,
            body: body.to_vec(),
        })
    }

    async fn sleep(&mut self, duration: Duration) {
        tokio::time::sleep(duration).await
    }

    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn random(&mut self) -> u64 {
        // xorshift: jitter needs spread, not secrecy.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        self.seed
    }

    fn unix_millis(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

/// One allocation for `request` from native Rust: the component's own code over [`NativeEnv`].
pub async fn allocate_natively(
    env: &mut NativeEnv,
    vault: &VaultConfig,
    request: &Tuple,
) -> std::result::Result<Issued, String> {
    let order = NameRequest {
        tuple: request,
        count: 1,
        key: None,
        metadata: &Metadata::default(),
        actor: "bench",
    };
    let grant = allocate::allocate(env, vault, &Settings::default(), order)
        .await
        .map_err(|_| "503".to_string())?;
    let name = &grant.names[0];
    Ok((name.number, name.hostname.clone(), Some(grant.conflicts)))
}

/// A fresh [`NativeEnv`]: each allocation starts its own clock, as the component's do.
pub fn native_env(http: &HttpClient, vault: &VaultConfig, token: &str, seed: usize) -> NativeEnv {
    NativeEnv {
        http: http.clone(),
        node: vault.nodes[0].clone(),
        token: token.to_string(),
        started: Instant::now(),
        seed: 0x9e37_79b9_7f4a_7c15 ^ seed as u64,
    }
}

/// The ceiling: the allocation's Vault calls from native Rust, no HTTP server, no wasm.
pub async fn load_native(
    vault: &VaultConfig,
    token: &str,
    run: &str,
    label: String,
    load: Load,
) -> Samples {
    let http = client();
    let (vault, token, run) = (vault.clone(), token.to_string(), run.to_string());
    let seeds = Arc::new(AtomicUsize::new(1));
    drive(label, load, move |tuple| {
        let mut env = native_env(&http, &vault, &token, seeds.fetch_add(1, Ordering::Relaxed));
        let (vault, app) = (vault.clone(), tuple_app(&run, tuple));
        async move {
            let request = Tuple::parse(&app, ROLE, ENVIRONMENT).map_err(|e| e.to_string())?;
            allocate_natively(&mut env, &vault, &request).await
        }
    })
    .await
}
