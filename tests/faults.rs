//! Vault misbehaving in time: slow answers still succeed, and a black-holed Vault gets the
//! caller a 503 within the configured per-call timeout, never a hang.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::time::{Duration, Instant};

use common::{Bao, Cut, Proxy, Service};

#[tokio::test]
async fn a_black_holed_vault_gets_a_503_within_the_configured_timeout() {
    let bao = Bao::start().await;
    // Holds the very first request, and every one after it, forever.
    let hole = Proxy::start(&bao.addr, 1, Cut::Before).await;
    let svc = Service::start(
        &bao,
        &[("vault_addr", &hole.url), ("vault_timeout_ms", "300")],
    )
    .await;
    let started = Instant::now();
    let r = svc.generate("web", "app", "prod").await;
    let took = started.elapsed();
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(
        r.json["detail"]
            .as_str()
            .unwrap()
            .contains("no answer within 300ms"),
        "{}",
        r.text
    );
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    let health = svc.request("GET", "/healthz", "").await;
    assert_eq!(health.status, 503, "{}", health.text);
}

#[tokio::test]
async fn a_slow_vault_still_answers_when_each_call_fits_the_timeout() {
    let bao = Bao::start().await;
    let slow = Proxy::delaying(&bao.addr, Duration::from_millis(150)).await;
    let svc = Service::start(
        &bao,
        &[("vault_addr", &slow.url), ("vault_timeout_ms", "2000")],
    )
    .await;
    let started = Instant::now();
    assert_eq!(
        svc.generate("web", "app", "prod").await.hostname(),
        "web-app-prod-vm1"
    );
    // Three calls of at least 150 ms each: the delay really was in the path.
    assert!(started.elapsed() >= Duration::from_millis(450));
}

#[tokio::test]
async fn a_timeout_that_is_not_a_number_is_a_500_naming_the_variable() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[("vault_timeout_ms", "soon")]).await;
    let r = svc.generate("web", "app", "prod").await;
    assert_eq!(r.status, 500, "{}", r.text);
    assert!(
        r.json["detail"]
            .as_str()
            .unwrap()
            .contains("vault_timeout_ms"),
        "{}",
        r.text
    );
}
