//! `hostnaming-bench hop-serve`: the HTTP hop alone, for `bench --hop`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use hostnaming::core::validate::Tuple;
use hostnaming::core::vault::VaultConfig;
use hostnaming_host::admission::CONFLICTS_HEADER;
use http_body_util::{BodyExt, Full};
use serde_json::json;

use crate::load::client;
use crate::native::{allocate_natively, native_env, NativeEnv};

/// The native server `bench --hop` loads: the same allocation as the component behind
/// plain hyper, no wasm and no host. For the benchmark only.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long)]
    listen: String,
    #[arg(long, env = "VAULT_ADDR")]
    vault_addr: String,
    #[arg(long, env = "VAULT_TOKEN", hide_env_values = true)]
    vault_token: String,
}

pub async fn execute(args: Args) -> Result<()> {
    let vault = VaultConfig::parse(&args.vault_addr, "hostnaming").map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    serve(listener, vault, args.vault_token).await;
    Ok(())
}

/// The hop server's loop: the HTTP hop alone, a native hyper server (no wasm, no host, no
/// admission) answering `POST /generate-name` with the same allocation, on a
/// single-threaded runtime as the service runs. Loading it as the service is loaded splits
/// the service's gap to the ceiling into what any HTTP service in front of Vault pays and
/// what the component and its host add. Serves until killed.
async fn serve(listener: tokio::net::TcpListener, vault: VaultConfig, token: String) {
    let (http, seeds) = (client(), Arc::new(AtomicUsize::new(1)));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors or an aborted handshake: the next accept may succeed.
                eprintln!("hostnaming-bench hop-serve: accepting failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (http, vault, token, seeds) =
            (http.clone(), vault.clone(), token.clone(), seeds.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let seed = seeds.fetch_add(1, Ordering::Relaxed);
                let mut env = native_env(&http, &vault, &token, seed);
                let vault = vault.clone();
                async move { Ok::<_, std::convert::Infallible>(hop_answer(req, &mut env, &vault).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The hop server's answer: the hostname and number the benchmark reads, 400 for a request
/// the service would refuse, 503 when the allocation fails.
async fn hop_answer(
    req: hyper::Request<hyper::body::Incoming>,
    env: &mut NativeEnv,
    vault: &VaultConfig,
) -> hyper::Response<Full<Bytes>> {
    let respond = |status: u16, body: String| {
        hyper::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("a response")
    };
    let Ok(body) = req.into_body().collect().await else {
        return respond(400, String::new());
    };
    let Ok(fields) = serde_json::from_slice::<serde_json::Value>(&body.to_bytes()) else {
        return respond(400, String::new());
    };
    let field = |name: &str| fields[name].as_str().unwrap_or_default();
    let Ok(request) = Tuple::parse(field("application"), field("role"), field("environment"))
    else {
        return respond(400, String::new());
    };
    match allocate_natively(env, vault, &request).await {
        Ok((number, hostname, conflicts)) => {
            let mut resp = respond(
                200,
                json!({"hostname": hostname, "number": number}).to_string(),
            );
            // As the component does, so the hop's lost races are counted like the service's.
            if let Some(n) = conflicts {
                resp.headers_mut().insert(CONFLICTS_HEADER, n.into());
            }
            resp
        }
        Err(_) => respond(503, String::new()),
    }
}
