//! One set of cases run against both runtimes that serve the component: our host
//! (`runtimes::host::*`, in-process) and real Spin (`runtimes::spin::*`, spin-lite, Spin
//! v4.0.2's own trigger and variables providers, as a child process). Each case is written
//! once, as a function of the [`Runtime`]. Then the deployment files: the runtime config
//! with Spin's Vault variables provider, run under spin-lite, and the SpinKube manifests
//! checked against spin.toml.
//!
//! Where Spin legitimately differs (no admission limit, no read-then-write gates: racing
//! requests settle by check-and-set and backoff alone), a case says so and asserts what
//! holds on both. Without spin-lite the Spin runs print `SKIPPED: ...` and pass, except
//! under CI.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use hostnaming::api::auth::token_hash;
use hostnaming_testkit as common;
use serde_json::{json, Value};

use common::{Bao, Resp, Service, SpinService};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Runtime {
    Host,
    Spin,
}

/// A started service, whichever runtime serves it.
enum Served {
    Host(Service),
    Spin(SpinService),
}

impl Runtime {
    /// Serves spin.toml against `bao` with the service token and `vars`; `None` when Spin
    /// is skipped.
    async fn serve(self, bao: &Bao, vars: &[(&str, &str)]) -> Option<Served> {
        match self {
            Runtime::Host => Some(Served::Host(Service::start(bao, vars).await)),
            Runtime::Spin => SpinService::start(bao, vars).await.map(Served::Spin),
        }
    }
}

impl Served {
    fn url(&self) -> String {
        match self {
            Served::Host(s) => s.url.clone(),
            Served::Spin(s) => s.url.clone(),
        }
    }

    async fn call(&self, method: &str, path: &str, body: &str, headers: &[(&str, &str)]) -> Resp {
        common::request_with(method, &format!("{}{path}", self.url()), body, headers).await
    }

    async fn generate(&self, app: &str, role: &str, env: &str) -> Resp {
        self.call("POST", "/generate-name", &body(app, role, env), &[])
            .await
    }
}

fn body(app: &str, role: &str, env: &str) -> String {
    json!({"application": app, "role": role, "environment": env}).to_string()
}

/// Each case twice: `host::<case>` and `spin::<case>`.
macro_rules! on_both_runtimes {
    ($($case:ident),* $(,)?) => {
        mod host {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(super::Runtime::Host).await
                }
            )*
        }
        mod spin {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(super::Runtime::Spin).await
                }
            )*
        }
    };
}

on_both_runtimes!(
    generate_answers_the_hostname_format_and_body,
    sequence_counts_per_tuple,
    concurrent_requests_on_one_tuple_never_share_a_name,
    bad_input_is_a_400_naming_the_field_and_writes_nothing,
    api_tokens_gate_by_scope,
    registry_records_releases_and_lists,
    idempotency_key_replays_and_refuses_another_payload,
    vault_down_is_a_503_with_retry_after,
);

async fn generate_answers_the_hostname_format_and_body(rt: Runtime) {
    let bao = Bao::start().await;
    let Some(svc) = rt.serve(&bao, &[]).await else {
        return;
    };
    let r = svc.generate("web", "app", "prod").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("hostnaming-conflicts"), Some("0"));
    assert_eq!(
        r.json,
        json!({"application": "web", "role": "app", "environment": "prod",
               "hostname": "web-app-prod-vm1", "hostnames": ["web-app-prod-vm1"],
               "number": 1, "numbers": [1], "replayed": false, "dry_run": false})
    );
    assert_eq!(bao.counter("web", "app", "prod").await, Some(json!(2)));
    let health = svc.call("GET", "/healthz", "", &[]).await;
    assert_eq!(health.status, 200, "{}", health.text);
}

async fn sequence_counts_per_tuple(rt: Runtime) {
    let bao = Bao::start().await;
    let Some(svc) = rt.serve(&bao, &[]).await else {
        return;
    };
    for n in 1..=3 {
        assert_eq!(
            svc.generate("web", "app", "prod").await.hostname(),
            format!("web-app-prod-vm{n}")
        );
    }
    assert_eq!(
        svc.generate("web", "app", "dev").await.hostname(),
        "web-app-dev-vm1"
    );
    assert_eq!(
        svc.generate("web", "db", "prod").await.hostname(),
        "web-db-prod-vm1"
    );
    assert_eq!(
        svc.generate("web", "app", "prod").await.hostname(),
        "web-app-prod-vm4"
    );
    assert_eq!(bao.counter("web", "app", "prod").await, Some(json!(5)));
    assert_eq!(bao.counter("web", "app", "dev").await, Some(json!(2)));
}

async fn concurrent_requests_on_one_tuple_never_share_a_name(rt: Runtime) {
    const N: usize = 32;
    let bao = Bao::start().await;
    let Some(svc) = rt.serve(&bao, &[]).await else {
        return;
    };
    let url = svc.url();
    let tasks: Vec<_> = (0..N)
        .map(|_| {
            let url = format!("{url}/generate-name");
            tokio::spawn(
                async move { common::request("POST", &url, &body("web", "app", "prod")).await },
            )
        })
        .collect();
    let (mut names, mut lost, mut refused) = (HashSet::new(), 0u32, 0);
    for t in tasks {
        let r = t.await.unwrap();
        lost += r
            .header("hostnaming-conflicts")
            .map_or(0, |c| c.parse::<u32>().unwrap());
        match r.status {
            200 => assert!(
                names.insert(r.hostname().to_string()),
                "duplicate {}",
                r.text
            ),
            // Under Spin nothing makes racers take turns: a request that keeps losing the
            // check-and-set past allocation_deadline_ms gives up with a 503 and Retry-After.
            503 if rt == Runtime::Spin => {
                assert!(r.header("retry-after").is_some(), "{}", r.text);
                refused += 1;
            }
            s => panic!("{rt:?}: {s} {}", r.text),
        }
    }
    eprintln!(
        "{rt:?}: {} of {N} named, {refused} refused (503), {lost} lost races",
        names.len()
    );
    let counter = bao
        .counter("web", "app", "prod")
        .await
        .unwrap()
        .as_u64()
        .unwrap();
    if rt == Runtime::Host {
        // The host's gates make racers take turns between read and write: no lost race,
        // no gap, every request named.
        assert_eq!(lost, 0);
        let expected: HashSet<String> = (1..=N).map(|n| format!("web-app-prod-vm{n}")).collect();
        assert_eq!(names, expected);
        assert_eq!(counter, N as u64 + 1);
    } else {
        // Spin: lost races are expected (Hostnaming-Conflicts > 0). A request refused after
        // advancing the counter leaves a gap, never a duplicate.
        assert!(!names.is_empty());
        assert!(
            counter > names.len() as u64,
            "counter {counter} behind {} names",
            names.len()
        );
    }
    // Every name handed out is claimed in the registry, once.
    let listed = svc
        .call("GET", "/names?application=web&limit=100", "", &[])
        .await;
    let listed: HashSet<String> = listed.json["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["hostname"].as_str().unwrap().to_string())
        .collect();
    assert!(
        names.is_subset(&listed),
        "names answered but not in the registry"
    );
}

async fn bad_input_is_a_400_naming_the_field_and_writes_nothing(rt: Runtime) {
    let bao = Bao::start().await;
    let Some(svc) = rt.serve(&bao, &[]).await else {
        return;
    };
    svc.generate("web", "app", "prod").await.hostname();
    let before = bao.snapshot().await;
    let cases = [
        (body("Web", "app", "prod"), "application"),
        (body("web", "app app", "prod"), "role"),
        (
            json!({"application": "web", "role": "app"}).to_string(),
            "environment",
        ),
        (
            json!({"application": "web", "role": "app", "environment": "prod", "count": 0})
                .to_string(),
            "count",
        ),
    ];
    for (b, field) in cases {
        let r = svc.call("POST", "/generate-name", &b, &[]).await;
        assert_eq!(
            (r.status, r.json["field"].clone()),
            (400, json!(field)),
            "{b}: {}",
            r.text
        );
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
    }
    let malformed = svc.call("POST", "/generate-name", "{not json", &[]).await;
    assert_eq!(malformed.status, 400, "{}", malformed.text);
    // The request's id, when valid, is in the problem: what a caller quotes to an operator.
    let traced = svc
        .call(
            "POST",
            "/generate-name",
            "{}",
            &[("x-request-id", "trace-42")],
        )
        .await;
    assert_eq!(traced.json["request_id"], "trace-42", "{}", traced.text);
    let forged = svc
        .call("POST", "/generate-name", "{}", &[("x-request-id", "a b")])
        .await;
    assert_ne!(forged.json["request_id"], "a b", "{}", forged.text);
    assert_eq!(bao.snapshot().await, before);
}

async fn api_tokens_gate_by_scope(rt: Runtime) {
    const GEN: &str = "hn_runtime_generate_4b1e";
    const ADMIN: &str = "hn_runtime_admin_9c0d";
    let tokens = format!(
        "{}:generate,read; {}:admin",
        token_hash(GEN),
        token_hash(ADMIN)
    );
    let bao = Bao::start().await;
    let Some(svc) = rt.serve(&bao, &[("api_tokens", &tokens)]).await else {
        return;
    };
    let b = body("web", "app", "prod");
    let none = svc.call("POST", "/generate-name", &b, &[]).await;
    assert_eq!(none.status, 401, "{}", none.text);
    assert!(none.header("www-authenticate").is_some());
    let admin = format!("Bearer {ADMIN}");
    let wrong = svc
        .call("POST", "/generate-name", &b, &[("authorization", &admin)])
        .await;
    assert_eq!(wrong.status, 403, "{}", wrong.text);
    assert_eq!(bao.counter("web", "app", "prod").await, None);
    let gen = format!("Bearer {GEN}");
    let right = svc
        .call("POST", "/generate-name", &b, &[("authorization", &gen)])
        .await;
    assert_eq!(right.hostname(), "web-app-prod-vm1");
    let session = svc
        .call("GET", "/session", "", &[("authorization", &gen)])
        .await;
    assert_eq!(session.status, 200, "{}", session.text);
}

async fn registry_records_releases_and_lists(rt: Runtime) {
    let bao = Bao::start().await;
    let Some(svc) = rt.serve(&bao, &[]).await else {
        return;
    };
    svc.generate("web", "app", "prod").await.hostname();
    svc.generate("web", "app", "prod").await.hostname();
    let r = svc.call("GET", "/names/web-app-prod-vm1", "", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.json["status"].clone(), r.json["number"].clone()),
        (json!("issued"), json!(1))
    );
    assert!(r.header("etag").is_some());
    let released = svc.call("DELETE", "/names/web-app-prod-vm1", "", &[]).await;
    assert_eq!(released.status, 200, "{}", released.text);
    assert_eq!(released.json["status"], "released");
    let missing = svc.call("GET", "/names/web-app-prod-vm9", "", &[]).await;
    assert_eq!(missing.status, 404);
    let list = svc.call("GET", "/names?application=web", "", &[]).await;
    assert_eq!(list.status, 200, "{}", list.text);
    let listed: Vec<(Value, Value)> = list.json["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["hostname"].clone(), n["status"].clone()))
        .collect();
    assert_eq!(
        listed,
        [
            (json!("web-app-prod-vm1"), json!("released")),
            (json!("web-app-prod-vm2"), json!("issued"))
        ]
    );
}

async fn idempotency_key_replays_and_refuses_another_payload(rt: Runtime) {
    let bao = Bao::start().await;
    let Some(svc) = rt.serve(&bao, &[]).await else {
        return;
    };
    let key = [("idempotency-key", "\"vm-a-7f3e\"")];
    let b = body("web", "app", "prod");
    let first = svc.call("POST", "/generate-name", &b, &key).await;
    assert_eq!(first.hostname(), "web-app-prod-vm1");
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = svc.call("POST", "/generate-name", &b, &key).await;
    assert_eq!(again.hostname(), "web-app-prod-vm1");
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json["replayed"], true);
    let before = bao.snapshot().await;
    let other = svc
        .call("POST", "/generate-name", &body("web", "app", "dev"), &key)
        .await;
    assert_eq!(other.status, 422, "{}", other.text);
    assert_eq!(bao.snapshot().await, before);
}

async fn vault_down_is_a_503_with_retry_after(rt: Runtime) {
    let bao = Bao::start().await;
    // Nothing listens there; the kit's vault_allowed_host (http://127.0.0.1:*) covers it.
    let dead = format!("http://127.0.0.1:{}", common::free_port());
    let Some(svc) = rt.serve(&bao, &[("vault_addr", &dead)]).await else {
        return;
    };
    let r = svc.generate("web", "app", "prod").await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(r.header("retry-after").is_some(), "{}", r.text);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert!(
        r.json["detail"].as_str().unwrap().contains("unreachable"),
        "{}",
        r.text
    );
    let health = svc.call("GET", "/healthz", "", &[]).await;
    assert_eq!(health.status, 503, "{}", health.text);
}

/// deploy/runtime-config.toml's Vault variables provider supplies `vault_token` under real
/// Spin: the token is read from OpenBao at `{mount}/{prefix}/vault_token`, field `value`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spin_reads_vault_token_through_the_vault_variables_provider() {
    if common::spin::binary_or_skip().is_none() {
        return;
    }
    let bao = Bao::start().await;
    let example =
        std::fs::read_to_string(common::workspace().join("deploy/runtime-config.toml")).unwrap();
    let mut config: toml::Table = example.parse().unwrap();
    let providers = config["variables_provider"].as_array_mut().unwrap();
    assert_eq!(providers.len(), 1);
    let vault = providers[0].as_table_mut().unwrap();
    assert_eq!(vault["type"].as_str(), Some("vault"));
    let mount = vault["mount"].as_str().unwrap().to_string();
    let prefix = vault
        .get("prefix")
        .and_then(|p| p.as_str())
        .map(String::from);
    vault.insert("url".into(), bao.addr.clone().into());
    // The provider's own token: only Spin sees it, never the component.
    vault.insert("token".into(), bao.token.clone().into());
    let client = bao.client();
    let (status, answer) = client
        .call(
            "POST",
            &format!("sys/mounts/{mount}"),
            Some(json!({"type": "kv", "options": {"version": "2"}})),
        )
        .await
        .unwrap();
    // The dev server already has `secret/`: "path is already in use" is fine.
    assert!(
        status < 300 || answer.to_string().contains("already in use"),
        "{answer}"
    );
    let path = match &prefix {
        Some(p) => format!("{p}/vault_token"),
        None => "vault_token".into(),
    };
    client
        .kv_put(&mount, &path, 0, json!({"value": bao.service_token}))
        .await
        .unwrap();

    // No SPIN_VARIABLE_VAULT_TOKEN: only the provider can supply it. Spin asks Vault for
    // every variable the component reads, on every request (seconds on a busy machine):
    // wide Vault deadlines keep that out of what is tested here.
    let vars = [
        ("vault_addr", bao.addr.as_str()),
        ("vault_timeout_ms", "30000"),
        ("allocation_deadline_ms", "30000"),
        ("idempotency_lease_ms", "60000"),
    ];
    let svc = SpinService::launch(&vars, Some(&config.to_string()))
        .await
        .unwrap();
    let r = svc
        .request("POST", "/generate-name", &body("web", "app", "prod"))
        .await;
    assert_eq!(r.hostname(), "web-app-prod-vm1", "{}", svc.output());
    drop(svc);

    // Without it, Spin refuses to start: vault_token is required (enforced at start).
    let err = SpinService::try_launch(&vars, None).await.unwrap().err();
    let err = err.expect("Spin started without vault_token");
    assert!(err.contains("vault_token"), "{err}");
}

/// spin.toml's variables: name -> required.
fn spin_variables() -> Vec<(String, bool)> {
    let text = std::fs::read_to_string(common::workspace().join("spin.toml")).unwrap();
    let manifest: toml::Table = text.parse().unwrap();
    manifest["variables"]
        .as_table()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.get("required").and_then(|r| r.as_bool()) == Some(true),
            )
        })
        .collect()
}

/// Every YAML document in `path`, as JSON, through python3's `yaml` (no YAML crate in
/// the workspace); `None` (after saying so) without it, except under CI.
fn yaml_documents(path: &Path) -> Option<Vec<Value>> {
    let script = "import json,sys,yaml\n\
                  print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))";
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output();
    match out {
        Ok(out) if out.status.success() => Some(serde_json::from_slice(&out.stdout).unwrap()),
        Ok(out) if String::from_utf8_lossy(&out.stderr).contains("No module named 'yaml'") => {
            assert!(
                std::env::var_os("CI").is_none(),
                "python3 has no yaml module"
            );
            eprintln!("SKIPPED: python3 has no yaml module (pip install pyyaml)");
            None
        }
        Ok(out) => panic!(
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => {
            assert!(std::env::var_os("CI").is_none(), "no python3: {e}");
            eprintln!("SKIPPED: no python3 ({e})");
            None
        }
    }
}

/// The SpinKube manifests supply every variable spin.toml requires and set none it does
/// not declare; each secretKeyRef names a key of a Secret shipped beside them; the runtime
/// config Secret holds deploy/runtime-config.toml's provider.
#[test]
fn spinkube_manifests_agree_with_spin_toml() {
    let dir = common::workspace().join("deploy/spinkube");
    let mut docs = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in {}", dir.display());
    for file in &files {
        let Some(found) = yaml_documents(file) else {
            return;
        };
        docs.extend(found);
    }
    let declared = spin_variables();
    let required: BTreeSet<&str> = declared
        .iter()
        .filter(|(_, r)| *r)
        .map(|(k, _)| k.as_str())
        .collect();
    let declared: BTreeSet<&str> = declared.iter().map(|(k, _)| k.as_str()).collect();
    assert!(required.contains("vault_token"));

    // Secret name -> its keys (data or stringData).
    let secrets: Vec<(String, Value)> = docs
        .iter()
        .filter(|d| d["kind"] == "Secret")
        .map(|d| {
            let mut keys = d["stringData"].as_object().cloned().unwrap_or_default();
            keys.extend(d["data"].as_object().cloned().unwrap_or_default());
            (
                d["metadata"]["name"].as_str().unwrap().to_string(),
                Value::Object(keys),
            )
        })
        .collect();
    let secret = |name: &str| {
        secrets
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, keys)| keys.clone())
            .unwrap_or_else(|| panic!("no Secret {name} in deploy/spinkube"))
    };

    let apps: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "SpinApp").collect();
    assert!(!apps.is_empty(), "no SpinApp in deploy/spinkube");
    for app in apps {
        let name = app["metadata"]["name"].as_str().unwrap_or("?");
        assert_eq!(app["apiVersion"], "core.spinkube.dev/v1alpha1", "{name}");
        assert_eq!(app["spec"]["executor"], "containerd-shim-spin", "{name}");
        assert!(
            app["spec"]["image"].as_str().is_some_and(|i| !i.is_empty()),
            "{name}"
        );
        assert!(
            app["spec"]["replicas"].as_u64().is_some_and(|r| r >= 1),
            "{name}"
        );
        let mut set = BTreeSet::new();
        for var in app["spec"]["variables"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let var_name = var["name"].as_str().unwrap().to_string();
            assert!(
                declared.contains(var_name.as_str()),
                "{name} sets {var_name}, not in spin.toml"
            );
            assert!(set.insert(var_name.clone()), "{name} sets {var_name} twice");
            if let Some(r) = var["valueFrom"]["secretKeyRef"].as_object() {
                let keys = secret(r["name"].as_str().unwrap());
                let key = r["key"].as_str().unwrap();
                assert!(keys.get(key).is_some(), "{name}: Secret has no key {key}");
            } else {
                assert!(var["value"].is_string(), "{name}: {var_name} has no value");
            }
        }
        // A runtime config whose Vault provider holds the secrets supplies them instead.
        let mut supplied = set.clone();
        if let Some(rc) = app["spec"]["runtimeConfig"]["loadFromSecret"].as_str() {
            let keys = secret(rc);
            let toml_text = keys["runtime-config.toml"]
                .as_str()
                .expect("runtime-config.toml");
            let in_secret: toml::Table = toml_text.parse().unwrap();
            let example: toml::Table =
                std::fs::read_to_string(common::workspace().join("deploy/runtime-config.toml"))
                    .unwrap()
                    .parse()
                    .unwrap();
            let provider = |t: &toml::Table| {
                let p = t["variables_provider"][0].as_table().unwrap().clone();
                p.keys().cloned().collect::<Vec<_>>()
            };
            assert_eq!(
                provider(&in_secret),
                provider(&example),
                "{name}: runtime config keys"
            );
            assert_eq!(
                in_secret["variables_provider"][0]["type"].as_str(),
                Some("vault")
            );
            supplied.insert("vault_token".to_string());
        }
        for req in &required {
            assert!(
                supplied.contains(*req),
                "{name} does not supply required {req}"
            );
        }
        // One Vault node: the outbound entry must name it too, or Spin refuses the calls.
        if set.contains("vault_addr") {
            assert!(
                set.contains("vault_allowed_host"),
                "{name}: vault_addr without vault_allowed_host"
            );
        }
    }
}

/// Under Spin a port range in allowed_outbound_hosts excludes its end, as docs/deploy.md
/// says: `P..P+1` lets the component reach Vault on P, `P-1..P` does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spin_port_ranges_exclude_their_end() {
    if common::spin::binary_or_skip().is_none() {
        return;
    }
    let bao = Bao::start().await;
    let port: u16 = bao.addr.rsplit(':').next().unwrap().parse().unwrap();
    let covering = format!("http://127.0.0.1:{port}..{}", port + 1);
    let svc = SpinService::start(&bao, &[("vault_allowed_host", &covering)])
        .await
        .unwrap();
    assert_eq!(
        svc.request("POST", "/generate-name", &body("web", "app", "prod"))
            .await
            .hostname(),
        "web-app-prod-vm1"
    );
    drop(svc);
    let before = bao.snapshot().await;
    let ending = format!("http://127.0.0.1:{}..{port}", port - 1);
    let svc = SpinService::start(&bao, &[("vault_allowed_host", &ending)])
        .await
        .unwrap();
    let r = svc
        .request("POST", "/generate-name", &body("web", "app", "prod"))
        .await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(
        r.json["detail"]
            .as_str()
            .unwrap()
            .contains("allowed_outbound_hosts"),
        "{}",
        r.text
    );
    assert_eq!(bao.snapshot().await, before);
}

/// Spin answers `/.well-known/spin/...` itself: the catch-all route never sees it (our host
/// passes it to the component, which answers 404).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spin_answers_well_known_spin_paths_itself() {
    let bao = Bao::start().await;
    let Some(spin) = SpinService::start(&bao, &[]).await else {
        return;
    };
    let r = spin.request("GET", "/.well-known/spin/health", "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_ne!(r.header("content-type"), Some("application/problem+json"));
    let host = Service::start(&bao, &[]).await;
    let r = host.request("GET", "/.well-known/spin/health", "").await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
}
