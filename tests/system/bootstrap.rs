//! `hostnaming bootstrap` against a real OpenBao.

use hostnaming_testkit as common;

use common::{Bao, MOUNT};
use hostnaming_host::vault::{bootstrap, Bootstrapped};
use serde_json::json;

#[tokio::test]
async fn bootstrap_is_idempotent_and_requires_check_and_set() {
    let bao = Bao::start().await; // bootstraps once
    let vault = bao.client();
    assert_eq!(
        bootstrap(&vault, MOUNT).await.unwrap(),
        Bootstrapped::AlreadyThere
    );
    let (status, config) = vault
        .call("GET", &format!("{MOUNT}/config"), None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(config["data"]["cas_required"], true);
    // With cas_required, a write that names no version is refused by Vault itself.
    let (status, _) = vault
        .call(
            "POST",
            &format!("{MOUNT}/data/x"),
            Some(json!({"data": {"counter": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(status, 400);
}

#[tokio::test]
async fn bootstrap_creates_a_missing_mount_and_refuses_a_mount_of_another_kind() {
    let bao = Bao::start().await;
    let vault = bao.client();
    assert_eq!(
        bootstrap(&vault, "fresh").await.unwrap(),
        Bootstrapped::Created
    );
    let body = json!({"type": "kv", "options": {"version": "1"}});
    let (status, _) = vault
        .call("POST", "sys/mounts/old", Some(body))
        .await
        .unwrap();
    assert_eq!(status, 204);
    let e = bootstrap(&vault, "old").await.unwrap_err().to_string();
    assert!(e.contains("not kv version 2"), "{e}");
}
