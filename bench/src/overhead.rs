//! The host's own cost per request: the component instantiated and run by the host's
//! [`App`], every Vault call answered in-process.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use hostnaming_host::outbound::{Outbound, Stub};
use hostnaming_host::server::NameRequest;
use hostnaming_host::{App, Manifest, Runtime};

/// Host overhead per request: instantiate the component and run an allocation with every
/// Vault call answered in-process (no network), `iterations` times.
///
/// With a nonzero `idle`, each request follows a pause at least that long, as a live
/// request's work follows every wait on Vault: the caches it finds are then cold. The
/// thread sleeps rather than the runtime, whose timer rounds up to whole milliseconds.
pub async fn host_overhead(
    manifest: &Manifest,
    iterations: usize,
    idle: Duration,
) -> Result<Overhead> {
    let runtime = Runtime::load(&manifest.source)?;
    let stub: Stub = Arc::new(|method, _uri| match *method {
        hyper::Method::GET => (404, r#"{"errors":[]}"#),
        _ => (200, r#"{"data":{"version":1}}"#),
    });
    let outbound = Outbound::stubbed(manifest.allowed_outbound_hosts.clone(), stub);
    let app = App::with_outbound(&runtime, manifest.clone(), outbound)?;
    let request = NameRequest {
        application: "web".into(),
        role: "app".into(),
        environment: "prod".into(),
        count: 1,
        idempotency_key: None,
    };
    let mut times = Vec::with_capacity(iterations);
    let mut paused = Duration::ZERO;
    for i in 0..iterations + 100 {
        if !idle.is_zero() {
            let t0 = Instant::now();
            std::thread::sleep(idle);
            paused += t0.elapsed();
        }
        let t0 = Instant::now();
        app.generate(&request)
            .await?
            .map_err(|e| anyhow!("{e:?}"))?;
        if i >= 100 {
            times.push(t0.elapsed()); // the first 100 warm caches and the pool
        }
    }
    times.sort();
    Ok(Overhead {
        p50_us: times[times.len() / 2].as_secs_f64() * 1e6,
        mean_pause_us: paused.as_secs_f64() * 1e6 / (iterations + 100) as f64,
    })
}

/// What [`host_overhead`] measured.
pub struct Overhead {
    pub p50_us: f64,
    /// How long each request's pause really lasted, on average (0 without pauses).
    pub mean_pause_us: f64,
}
