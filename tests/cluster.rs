//! A 3-node OpenBao Raft cluster (scripts/raft-cluster) losing its active node while two
//! service instances, each pointed at a different node, allocate from 16 clients. Checked
//! in the style of Jepsen's unique-ids: no name is acknowledged twice, every acknowledged
//! name is in the registry, every failure is a 503 with Retry-After, service resumes after
//! the election, and the counter stays above every number issued.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{Service, MOUNT};
use hostnaming_host::vault::{bootstrap, VaultClient, SERVICE_POLICY_NAME};
use serde_json::json;

struct Cluster {
    dir: PathBuf,
    addrs: Vec<String>,
    root: String,
}

fn script(args: &[&str], dir: &Path) -> String {
    let out = Command::new(common::workspace().join("scripts/raft-cluster"))
        .arg(args[0])
        .arg(dir)
        .args(&args[1..])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "raft-cluster {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Cluster {
    fn start() -> Cluster {
        let dir = std::env::temp_dir().join(format!("hostnaming-cluster-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let env = script(&["start"], &dir);
        let get = |k: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .unwrap()
                .to_string()
        };
        Cluster {
            addrs: vec![get("ADDR1"), get("ADDR2"), get("ADDR3")],
            root: get("ROOT_TOKEN"),
            dir,
        }
    }

    async fn active(&self) -> usize {
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
}

impl Drop for Cluster {
    fn drop(&mut self) {
        script(&["stop"], &self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Default)]
struct History {
    acknowledged: Vec<(String, u64)>,
    failed: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn losing_the_active_node_costs_no_uniqueness_and_service_resumes() {
    let cluster = Cluster::start();
    let leader = cluster.active().await;
    let root = VaultClient::new(&cluster.addrs[leader], &cluster.root).unwrap();
    bootstrap(&root, MOUNT).await.unwrap();
    let token = root.create_token(&[SERVICE_POLICY_NAME]).await.unwrap();
    // Two instances, on the two standbys: their requests are forwarded to the active node.
    let standbys: Vec<&String> = cluster
        .addrs
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != leader)
        .map(|(_, a)| a)
        .collect();
    let mut services = Vec::new();
    for addr in &standbys {
        let fake = common::Bao::external(addr, &token);
        services.push(Arc::new(
            Service::start(
                &fake,
                &[
                    ("vault_timeout_ms", "2000"),
                    ("idempotency_lease_ms", "1000"),
                ],
            )
            .await,
        ));
    }
    let history = Arc::new(tokio::sync::Mutex::new(History::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..16)
        .map(|c| {
            let (svc, history, stop) = (services[c % 2].clone(), history.clone(), stop.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let key = format!("c{c}-{i}");
                    let body = json!({"application": "chaos", "role": "app", "environment": if c % 4 == 0 { "a" } else { "b" }}).to_string();
                    let headers: Vec<(&str, &str)> = if c % 3 == 0 { vec![("idempotency-key", &key)] } else { vec![] };
                    let r = common::request_with("POST", &format!("{}/generate-name", svc.url), &body, &headers).await;
                    let mut h = history.lock().await;
                    match r.status {
                        200 => {
                            h.acknowledged.push((r.json["hostname"].as_str().unwrap().to_string(), r.json["number"].as_u64().unwrap()));
                            i += 1;
                        }
                        503 | 409 => {
                            assert!(r.header("retry-after").is_some(), "{}", r.text);
                            h.failed += 1;
                            drop(h);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        other => panic!("{other}: {}", r.text),
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before_kill = history.lock().await.acknowledged.len();
    script(&["kill", &(leader + 1).to_string()], &cluster.dir);
    let new_leader = cluster.active().await;
    assert_ne!(new_leader, leader);
    script(&["restart", &(leader + 1).to_string()], &cluster.dir);
    // Keys left pending by requests cut off during the election expire (1 s lease), then
    // every request succeeds again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (recovered, failed_before) = {
        let h = history.lock().await;
        (h.acknowledged.len(), h.failed)
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let h = history.lock().await;
    assert_eq!(h.failed, failed_before, "requests failed after recovery");
    assert!(
        before_kill > 0 && h.acknowledged.len() > recovered,
        "before {before_kill}, recovered {recovered}, end {}",
        h.acknowledged.len()
    );
    let mut seen = HashSet::new();
    for (name, _) in &h.acknowledged {
        assert!(seen.insert(name.clone()), "{name} was acknowledged twice");
    }
    let vault = VaultClient::new(&cluster.addrs[cluster.active().await], &cluster.root).unwrap();
    for (name, _) in &h.acknowledged {
        assert!(
            vault
                .kv_get(MOUNT, &format!("names/{name}"))
                .await
                .unwrap()
                .is_some(),
            "{name} is not in the registry"
        );
    }
    for env in ["a", "b"] {
        let counter = vault
            .kv_get(MOUNT, &format!("applications/chaos/app/{env}/counter"))
            .await
            .unwrap()
            .unwrap()["counter"]
            .as_u64()
            .unwrap();
        let max = h
            .acknowledged
            .iter()
            .filter(|(n, _)| n.contains(&format!("-{env}-vm")))
            .map(|(_, n)| *n)
            .max()
            .unwrap_or(0);
        assert!(
            counter > max,
            "{env}: counter {counter}, highest issued {max}"
        );
    }
    eprintln!(
        "chaos: {} acknowledged, {} failed (503/409), 0 duplicates",
        h.acknowledged.len(),
        h.failed
    );
}
