//! A service killed (SIGKILL) between two Vault writes of an idempotent allocation: the
//! retry must answer with the same name the dead request reserved, and no key may ever own
//! two names. Every point of the write sequence is tried, with the Vault write both lost
//! and applied-but-unanswered.

use hostnaming_testkit as common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Bao, Cut, Proxy, Service, MOUNT};
use serde_json::json;

/// Vault calls one keyed allocation of a fresh key makes: create the key record, read the
/// counter, advance it, reserve the name, claim it, complete the key.
const CALLS: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_gets_one_name_whatever_write_the_service_was_killed_after() {
    let bao = Bao::start().await;
    let body = json!({"application": "web", "role": "app", "environment": "prod"}).to_string();
    let survivor = Service::start(&bao, &[("idempotency_lease_ms", "300")]).await;
    for hold_at in 1..=CALLS {
        for cut in [Cut::Before, Cut::After] {
            let key = format!("kill-{hold_at}-{cut:?}");
            let proxy = Proxy::start(&bao.addr, hold_at, cut).await;
            let listen = format!("127.0.0.1:{}", common::free_port());
            let mut child = Command::new(env!("CARGO_BIN_EXE_hostnaming"))
                .args(["serve", "--listen", &listen, "--manifest"])
                .arg(common::workspace().join("spin.toml"))
                .env("SPIN_VARIABLE_VAULT_ADDR", &proxy.url)
                .env("SPIN_VARIABLE_VAULT_ALLOWED_HOST", &proxy.url)
                .env("SPIN_VARIABLE_VAULT_TOKEN", &bao.service_token)
                .env("SPIN_VARIABLE_IDEMPOTENCY_LEASE_MS", "300")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            common::wait_listening(&listen, std::time::Duration::from_secs(30))
                .await
                .unwrap();
            let url = format!("http://{listen}/generate-name");
            let (b, k) = (body.clone(), key.clone());
            let doomed = tokio::spawn(async move {
                common::try_request_with("POST", &url, &b, &[("idempotency-key", &k)]).await
            });
            tokio::time::timeout(Duration::from_secs(20), proxy.held.notified())
                .await
                .unwrap_or_else(|_| panic!("{key}: the proxy never held request {hold_at}"));
            child.kill().unwrap(); // SIGKILL, mid-request
            child.wait().unwrap();
            doomed.abort();

            // Retry as Terraform would, until the dead holder's lease runs out.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
            let retry = || {
                let url = format!("{}/generate-name", survivor.url);
                let (body, key) = (body.clone(), key.clone());
                async move {
                    common::request_with("POST", &url, &body, &[("idempotency-key", &key)]).await
                }
            };
            let answer = loop {
                let r = retry().await;
                match r.status {
                    200 => break r,
                    409 if tokio::time::Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(50)).await
                    }
                    _ => panic!("{key}: {} {}", r.status, r.text),
                }
            };
            let hostname = answer.hostname().to_string();
            let again = retry().await;
            assert_eq!(again.hostname(), hostname, "{key}");
            assert_eq!(again.json["replayed"], true, "{key}");

            // The registry holds exactly one name for this key: the one answered.
            let vault = bao.client();
            let mut owned = Vec::new();
            for path in vault.kv_list_all(MOUNT, "names/").await.unwrap() {
                let record = vault.kv_get(MOUNT, &path).await.unwrap().unwrap();
                if record["idempotency_key"] == json!(key) {
                    owned.push(record["hostname"].as_str().unwrap().to_string());
                }
            }
            assert_eq!(owned, std::slice::from_ref(&hostname), "{key}");
        }
    }
    // The counter stays above every number issued from it.
    let counter = bao
        .counter("web", "app", "prod")
        .await
        .unwrap()
        .as_u64()
        .unwrap();
    let vault = bao.client();
    for path in vault.kv_list_all(MOUNT, "names/").await.unwrap() {
        let number = vault.kv_get(MOUNT, &path).await.unwrap().unwrap()["number"]
            .as_u64()
            .unwrap();
        assert!(number < counter, "{path} has {number}, counter {counter}");
    }
}
