//! A 3-node OpenBao Raft cluster (scripts/raft-cluster) losing its active node while two
//! service instances, each listing the nodes from a different first one, allocate from 64
//! clients. Checked in the style of Jepsen's unique-ids: no name is acknowledged twice,
//! every acknowledged name is in the registry, every failure is a 503 with Retry-After (or
//! a 409 for a key in flight) and none hangs, nothing fails once a leader is elected even
//! while the dead node heads an instance's list, and the counters stay above every number
//! issued.
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
    attempted: usize,
    /// Name, number, and which service instance answered.
    acknowledged: Vec<(String, u64, usize)>,
    failed: usize,
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `addrs` rotated to start at `first`: that node is tried first, the others on failover.
fn starting_at(addrs: &[String], first: usize) -> String {
    (0..addrs.len())
        .map(|i| addrs[(first + i) % addrs.len()].clone())
        .collect::<Vec<_>>()
        .join(",")
}

/// Allocations per second through `svc` from 8 clients, each on its own tuple, for `time`.
async fn alone(svc: &Service, app: &str, time: Duration) -> f64 {
    let until = std::time::Instant::now() + time;
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let url = format!("{}/generate-name", svc.url);
            let body = json!({"application": app, "role": "r", "environment": format!("e{c}")})
                .to_string();
            tokio::spawn(async move {
                let mut n = 0u32;
                while std::time::Instant::now() < until {
                    let r = common::request("POST", &url, &body).await;
                    assert_eq!(r.status, 200, "{}", r.text);
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for c in clients {
        total += c.await.unwrap();
    }
    f64::from(total) / time.as_secs_f64()
}

/// CI runs one short round; by hand, `HOSTNAMING_CHAOS_ROUNDS=5 HOSTNAMING_CHAOS_CLIENTS=64`
/// (and `HOSTNAMING_CHAOS_QUIET_SECS`) make it longer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn losing_the_active_node_costs_no_uniqueness_and_service_resumes() {
    let rounds = env_number("HOSTNAMING_CHAOS_ROUNDS", 1);
    let clients = env_number("HOSTNAMING_CHAOS_CLIENTS", 64) as usize;
    let quiet = Duration::from_secs(env_number("HOSTNAMING_CHAOS_QUIET_SECS", 2));
    let cluster = Cluster::start();
    let leader = cluster.active().await;
    let root = VaultClient::new(&cluster.addrs[leader], &cluster.root).unwrap();
    // scripts/raft-cluster bootstrapped already; doing it again must change nothing.
    bootstrap(&root, MOUNT).await.unwrap();
    let token = root.create_token(&[SERVICE_POLICY_NAME]).await.unwrap();
    // Two instances pointed at different nodes: the first tries the active node first (so
    // killing it exercises failover), the second a standby (which forwards to the active).
    let standby = (leader + 1) % 3;
    let mut services = Vec::new();
    for first in [leader, standby] {
        let fake = common::Bao::external(&cluster.addrs[first], &token);
        let nodes = starting_at(&cluster.addrs, first);
        services.push(Arc::new(
            Service::start(
                &fake,
                &[
                    ("vault_addr", &nodes),
                    ("vault_timeout_ms", "2000"),
                    ("idempotency_lease_ms", "1000"),
                ],
            )
            .await,
        ));
    }
    // Each instance alone, 8 clients on tuples of their own (no check-and-set races between
    // clients): what a standby's forwarding and its stale reads cost.
    for (which, svc) in services.iter().enumerate() {
        let rate = alone(svc, &format!("calib{which}"), quiet).await;
        eprintln!(
            "chaos: alone, 8 clients on 8 tuples: {rate:.0}/s through the instance listing {} first",
            if which == 0 { "the active node" } else { "a standby" }
        );
    }
    let history = Arc::new(tokio::sync::Mutex::new(History::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (which, history, stop) = (c % 2, history.clone(), stop.clone());
            let svc = services[which].clone();
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let key = format!("c{c}-{i}");
                    let body = json!({"application": "chaos", "role": "app", "environment": if c % 4 == 0 { "a" } else { "b" }}).to_string();
                    let headers: Vec<(&str, &str)> = if c % 3 == 0 { vec![("idempotency-key", &key)] } else { vec![] };
                    let url = format!("{}/generate-name", svc.url);
                    let r = tokio::time::timeout(
                        Duration::from_secs(20),
                        common::request_with("POST", &url, &body, &headers),
                    )
                    .await
                    .expect("a request hung for 20 s");
                    let mut h = history.lock().await;
                    h.attempted += 1;
                    match r.status {
                        200 => {
                            h.acknowledged.push((r.json["hostname"].as_str().unwrap().to_string(), r.json["number"].as_u64().unwrap(), which));
                            i += 1;
                        }
                        503 | 409 => {
                            assert!(r.header("retry-after").is_some(), "{}", r.text);
                            h.failed += 1;
                            drop(h);
                            // The same key again, as a client honouring Retry-After would.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        other => panic!("{other}: {}", r.text),
                    }
                }
            })
        })
        .collect();
    let snapshot = || async {
        let h = history.lock().await;
        (h.acknowledged.len(), h.failed)
    };
    // Throughput through each instance while all is well: the active node first, or a
    // standby that forwards everything.
    let (acks0, failed0) = snapshot().await;
    tokio::time::sleep(quiet).await;
    let (acks1, failed1) = snapshot().await;
    assert_eq!(failed1, failed0, "requests failed before any fault");
    let per_service = |h: &History| {
        let mut n = [0usize; 2];
        for (_, _, w) in &h.acknowledged[acks0..acks1] {
            n[*w] += 1;
        }
        n.map(|x| x as f64 / quiet.as_secs_f64())
    };
    let rates = per_service(&*history.lock().await);
    eprintln!(
        "chaos: healthy, {clients} clients: {:.0}/s through the instance on the active node, \
         {:.0}/s through the one on a standby",
        rates[0], rates[1]
    );
    // Requests cut off by a fault may hold a pending key (1 s lease) or wait out a 2 s call
    // timeout; 3 s later nothing may fail for a whole quiet period, and names flow.
    let settled = async |what: String| {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (acks, failed) = snapshot().await;
        tokio::time::sleep(quiet).await;
        let (acks_after, failed_after) = snapshot().await;
        assert_eq!(failed_after, failed, "requests failed {what}");
        assert!(acks_after > acks, "no progress {what}");
        failed_after
    };
    let (mut leader, mut failed_before) = (leader, failed1);
    for round in 1..=rounds {
        script(&["kill", &(leader + 1).to_string()], &cluster.dir);
        let killed_at = std::time::Instant::now();
        let new_leader = cluster.active().await;
        assert_ne!(new_leader, leader);
        let elected = killed_at.elapsed();
        settled(format!("in round {round} while the dead node led a list")).await;
        script(&["restart", &(leader + 1).to_string()], &cluster.dir);
        let failed = settled(format!("in round {round} after the node came back")).await;
        eprintln!(
            "chaos: round {round}: killed node {}, node {} active after {elected:.1?}; \
             {} failed (503/409) in the round, none once recovered",
            leader + 1,
            new_leader + 1,
            failed - failed_before,
        );
        (leader, failed_before) = (new_leader, failed);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let h = history.lock().await;
    let mut seen = HashSet::new();
    let duplicates = h
        .acknowledged
        .iter()
        .filter(|(name, _, _)| !seen.insert(name.clone()))
        .count();
    assert_eq!(duplicates, 0, "names acknowledged twice");
    let vault = VaultClient::new(&cluster.addrs[cluster.active().await], &cluster.root).unwrap();
    for (name, _, _) in &h.acknowledged {
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
            .filter(|(n, _, _)| n.contains(&format!("-{env}-vm")))
            .map(|(_, n, _)| *n)
            .max()
            .unwrap_or(0);
        assert!(
            counter > max,
            "{env}: counter {counter}, highest issued {max}"
        );
    }
    eprintln!(
        "chaos: {} attempted, {} acknowledged, {} failed (503/409), {duplicates} duplicates, \
         all acknowledged names in the registry, counters above every issued number",
        h.attempted,
        h.acknowledged.len(),
        h.failed,
    );
}
