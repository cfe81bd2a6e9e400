//! `POST /generate-name` end to end: the real component in the real host against a real
//! OpenBao started by each test.

use hostnaming_testkit as common;

use std::collections::HashSet;

use common::{Bao, Service, MOUNT};
use hostnaming_host::server::{NameRequest, NamingError};
use serde_json::json;

fn tuple(application: &str, role: &str, environment: &str) -> NameRequest {
    NameRequest {
        application: application.into(),
        role: role.into(),
        environment: environment.into(),
        count: 1,
        idempotency_key: None,
    }
}

#[tokio::test]
async fn the_first_name_of_a_tuple_is_vm1_and_the_next_vm2() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    let first = svc.generate("web", "app", "prod").await;
    assert_eq!(first.hostname(), "web-app-prod-vm1");
    assert_eq!(first.header("content-type"), Some("application/json"));
    assert_eq!(first.json["number"], 1);
    assert_eq!(
        svc.generate("web", "app", "prod").await.hostname(),
        "web-app-prod-vm2"
    );
    assert_eq!(bao.counter("web", "app", "prod").await, Some(json!(3)));
    let record = bao
        .client()
        .kv_get(MOUNT, "names/web-app-prod-vm2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record["application"], "web");
    assert_eq!(record["number"], 2);
    assert_eq!(record["status"], "issued");
}

#[tokio::test]
async fn separate_tuples_count_separately() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    assert_eq!(
        svc.generate("web", "app", "prod").await.hostname(),
        "web-app-prod-vm1"
    );
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
        "web-app-prod-vm2"
    );
    assert_eq!(bao.counter("web", "app", "dev").await, Some(json!(2)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_requests_get_fifty_distinct_names_and_leave_the_counter_at_51() {
    let bao = Bao::start().await;
    let svc = std::sync::Arc::new(Service::start(&bao, &[]).await);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let svc = svc.clone();
            tokio::spawn(async move { svc.generate("web", "app", "prod").await })
        })
        .collect();
    let mut names = HashSet::new();
    for t in tasks {
        let resp = t.await.unwrap();
        assert!(
            names.insert(resp.hostname().to_string()),
            "duplicate {}",
            resp.text
        );
    }
    let expected: HashSet<String> = (1..=50).map(|n| format!("web-app-prod-vm{n}")).collect();
    assert_eq!(names, expected);
    assert_eq!(bao.counter("web", "app", "prod").await, Some(json!(51)));
}

/// Sends 32 requests for one tuple at once to `svc`: their names, and the check-and-set
/// races they report losing in all.
async fn thirty_two_at_once(svc: std::sync::Arc<Service>) -> (HashSet<String>, u32) {
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let svc = svc.clone();
            tokio::spawn(async move { svc.generate("web", "app", "prod").await })
        })
        .collect();
    let (mut names, mut lost) = (HashSet::new(), 0);
    for t in tasks {
        let resp = t.await.unwrap();
        lost += resp
            .header("hostnaming-conflicts")
            .expect("every answer reports its lost races")
            .parse::<u32>()
            .unwrap();
        assert!(
            names.insert(resp.hostname().to_string()),
            "duplicate {}",
            resp.text
        );
    }
    (names, lost)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_racing_for_one_counter_in_one_host_take_turns_and_lose_no_race() {
    let bao = Bao::start().await;
    // A slower Vault widens each read-to-write window, so racing is certain, not likely.
    let slow = common::Proxy::delaying(&bao.addr, std::time::Duration::from_millis(10)).await;
    let vars = [("vault_addr", slow.url.as_str())];
    let spin = common::workspace().join("spin.toml");
    let ungated = Service::start_app(&spin, &bao, &vars, |app| app.without_gates()).await;
    let (names, lost) = thirty_two_at_once(std::sync::Arc::new(ungated)).await;
    // The same load without gates does race, so the gated run below proves the gates.
    assert_eq!(names.len(), 32);
    assert!(lost > 0, "32 requests at once on one counter never raced");

    let gated = Service::start(&bao, &vars).await;
    let (names, lost) = thirty_two_at_once(std::sync::Arc::new(gated)).await;
    assert_eq!(lost, 0, "gated requests still lost races");
    let expected: HashSet<String> = (33..=64).map(|n| format!("web-app-prod-vm{n}")).collect();
    assert_eq!(names, expected);
    assert_eq!(bao.counter("web", "app", "prod").await, Some(json!(65)));
}

#[tokio::test]
async fn a_counter_the_old_service_wrote_continues_without_gap_or_repeat() {
    let bao = Bao::start().await;
    let vault = bao.client();
    // The proof of concept stored the next number to hand out, as a number or, when an
    // operator used `vault kv put`, as a string.
    vault
        .kv_put(
            MOUNT,
            "applications/web/app/prod/counter",
            0,
            json!({"counter": 4}),
        )
        .await
        .unwrap();
    vault
        .kv_put(
            MOUNT,
            "applications/web/db/prod/counter",
            0,
            json!({"counter": "7"}),
        )
        .await
        .unwrap();
    let svc = Service::start(&bao, &[]).await;
    assert_eq!(
        svc.generate("web", "app", "prod").await.hostname(),
        "web-app-prod-vm4"
    );
    assert_eq!(
        svc.generate("web", "app", "prod").await.hostname(),
        "web-app-prod-vm5"
    );
    assert_eq!(
        svc.generate("web", "db", "prod").await.hostname(),
        "web-db-prod-vm7"
    );
    assert_eq!(bao.counter("web", "app", "prod").await, Some(json!(6)));
}

#[tokio::test]
async fn tuples_whose_names_collide_never_get_the_same_name() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    assert_eq!(
        svc.generate("a-b", "c", "prod").await.hostname(),
        "a-b-c-prod-vm1"
    );
    assert_eq!(
        svc.generate("a", "b-c", "prod").await.hostname(),
        "a-b-c-prod-vm2"
    );
    assert_eq!(
        svc.generate("a", "b", "c-prod").await.hostname(),
        "a-b-c-prod-vm3"
    );
}

#[tokio::test]
async fn every_kind_of_bad_input_gets_its_4xx_and_leaves_vault_untouched() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    // Something in Vault already, so "untouched" compares real content.
    svc.generate("web", "app", "prod").await.hostname();
    let before = bao.snapshot().await;

    let ok =
        |app: &str| json!({"application": app, "role": "app", "environment": "prod"}).to_string();
    let long = "a".repeat(40);
    let too_long =
        json!({"application": long, "role": "bbbbbbbbbb", "environment": "cccccccccc"}).to_string();
    let huge = format!("{{\"application\":\"{}\"}}", "a".repeat(17 * 1024));
    let cases: Vec<(&str, &str, String, u16, Option<&str>)> = vec![
        (
            "POST",
            "/generate-name",
            ok("Web"),
            400,
            Some("application"),
        ),
        (
            "POST",
            "/generate-name",
            ok("web app"),
            400,
            Some("application"),
        ),
        (
            "POST",
            "/generate-name",
            ok("web.app"),
            400,
            Some("application"),
        ),
        (
            "POST",
            "/generate-name",
            ok("web/app"),
            400,
            Some("application"),
        ),
        ("POST", "/generate-name", ok(""), 400, Some("application")),
        (
            "POST",
            "/generate-name",
            ok("1web"),
            400,
            Some("application"),
        ),
        (
            "POST",
            "/generate-name",
            ok("web-"),
            400,
            Some("application"),
        ),
        (
            "POST",
            "/generate-name",
            r#"{"application":"web","role":"app"}"#.into(),
            400,
            Some("environment"),
        ),
        (
            "POST",
            "/generate-name",
            r#"{"application":"web","role":5,"environment":"prod"}"#.into(),
            400,
            Some("role"),
        ),
        (
            "POST",
            "/generate-name",
            r#"{"application":"web","role":null,"environment":"prod"}"#.into(),
            400,
            Some("role"),
        ),
        (
            "POST",
            "/generate-name",
            r#"{"application":"web","role":"a","environment":"p","x":1}"#.into(),
            400,
            Some("x"),
        ),
        ("POST", "/generate-name", too_long, 400, Some("application")),
        (
            "POST",
            "/generate-name",
            r#"{"application": "web""#.into(),
            400,
            None,
        ),
        ("POST", "/generate-name", "[]".into(), 400, None),
        ("POST", "/generate-name", String::new(), 400, None),
        ("POST", "/generate-name", huge, 413, None),
        ("GET", "/generate-name", String::new(), 405, None),
        ("PUT", "/generate-name", ok("web"), 405, None),
        ("POST", "/generate-names", ok("web"), 404, None),
        ("GET", "/ui/missing.js", String::new(), 404, None),
    ];
    for (method, path, body, status, field) in cases {
        let resp = svc.request(method, path, &body).await;
        let what = format!(
            "{method} {path} {}: {}",
            &body[..body.len().min(80)],
            resp.text
        );
        assert_eq!(resp.status, status, "{what}");
        assert_eq!(
            resp.header("content-type"),
            Some("application/problem+json"),
            "{what}"
        );
        assert_eq!(resp.json["status"], status, "{what}");
        assert!(
            resp.json["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{what}"
        );
        match field {
            Some(f) => {
                assert_eq!(resp.json["field"], f, "{what}");
                assert!(resp.json["detail"].as_str().unwrap().contains(f), "{what}");
            }
            None => assert!(resp.json.get("field").is_none(), "{what}"),
        }
        if status == 405 {
            assert_eq!(resp.header("allow"), Some("POST"), "{what}");
        }
    }
    assert_eq!(bao.snapshot().await, before, "a bad request wrote to Vault");
}

#[tokio::test]
async fn a_number_that_would_make_the_name_too_long_is_a_400_naming_the_limit_and_writes_nothing() {
    let bao = Bao::start().await;
    let (a, r, e) = ("a".repeat(20), "b".repeat(20), "c".repeat(17));
    let path = format!("applications/{a}/{r}/{e}/counter");
    bao.client()
        .kv_put(MOUNT, &path, 0, json!({"counter": 10}))
        .await
        .unwrap();
    let before = bao.snapshot().await;
    let svc = Service::start(&bao, &[]).await;
    let resp = svc.generate(&a, &r, &e).await;
    assert_eq!(resp.status, 400, "{}", resp.text);
    assert_eq!(resp.json["limit"], 63);
    assert!(resp.json["detail"]
        .as_str()
        .unwrap()
        .contains("64 characters"));
    assert_eq!(bao.snapshot().await, before);
}

#[tokio::test]
async fn with_openbao_stopped_the_answer_is_503_with_retry_after() {
    let mut bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    svc.generate("web", "app", "prod").await.hostname();
    bao.stop();
    let resp = svc.generate("web", "app", "prod").await;
    assert_eq!(resp.status, 503, "{}", resp.text);
    assert_eq!(resp.header("retry-after"), Some("1"));
    assert_eq!(
        resp.header("content-type"),
        Some("application/problem+json")
    );
    assert!(
        resp.json["detail"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{}",
        resp.text
    );
}

#[tokio::test]
async fn a_sealed_openbao_gets_a_503_that_says_sealed() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    let (status, _) = bao.client().call("PUT", "sys/seal", None).await.unwrap();
    assert_eq!(status, 204);
    let resp = svc.generate("web", "app", "prod").await;
    assert_eq!(resp.status, 503, "{}", resp.text);
    assert_eq!(resp.header("retry-after"), Some("1"));
    assert!(
        resp.json["detail"].as_str().unwrap().contains("sealed"),
        "{}",
        resp.text
    );
}

#[tokio::test]
async fn a_refused_token_gets_a_5xx_that_says_so_without_showing_the_token() {
    let bao = Bao::start().await;
    let wrong = "s.not-the-right-token-4f9a";
    let svc = Service::start(&bao, &[("vault_token", wrong)]).await;
    let before = bao.snapshot().await;
    let resp = svc.generate("web", "app", "prod").await;
    assert!(resp.status >= 500, "{}", resp.text);
    assert_eq!(resp.json["type"], "urn:hostnaming:problem:vault-denied");
    assert!(resp.json["detail"]
        .as_str()
        .unwrap()
        .contains("refused the service's token"));
    assert!(!resp.text.contains(wrong));
    assert!(!resp.text.contains(&bao.token));
    assert!(!resp.text.contains(&bao.service_token));
    assert!(!format!("{:?}", resp.headers).contains(wrong));
    assert_eq!(bao.snapshot().await, before);
}

#[tokio::test]
async fn a_missing_mount_gets_a_503_that_says_to_bootstrap() {
    let bao = Bao::start().await;
    // The root token: the service's own policy rightly cannot even look at other mounts.
    let svc = Service::start(
        &bao,
        &[("vault_mount", "nowhere"), ("vault_token", &bao.token)],
    )
    .await;
    let resp = svc.generate("web", "app", "prod").await;
    assert_eq!(resp.status, 503, "{}", resp.text);
    let detail = resp.json["detail"].as_str().unwrap();
    assert!(
        detail.contains("nowhere") && detail.contains("bootstrap"),
        "{detail}"
    );
}

#[tokio::test]
async fn requests_to_hosts_outside_allowed_outbound_hosts_are_refused_by_the_host() {
    let bao = Bao::start().await;
    // The same manifest, but allowing only a different port than Vault's.
    let dir = std::env::temp_dir().join(format!("hostnaming-allowed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = std::path::PathBuf::from(common::COMPONENT);
    let manifest = std::fs::read_to_string(common::workspace().join("spin.toml"))
        .unwrap()
        .replace(
            r#"["{{ vault_allowed_host }}"]"#,
            r#"["http://127.0.0.1:1"]"#,
        )
        .replace(
            "target/wasm32-wasip2/component/hostnaming.wasm",
            source.to_str().unwrap(),
        );
    assert!(manifest.contains("http://127.0.0.1:1"));
    let path = dir.join("spin.toml");
    std::fs::write(&path, manifest).unwrap();
    let svc = Service::start_manifest(&path, &bao, &[]).await;
    let before = bao.snapshot().await;
    let resp = svc.generate("web", "app", "prod").await;
    assert_eq!(resp.status, 503, "{}", resp.text);
    assert!(
        resp.json["detail"]
            .as_str()
            .unwrap()
            .contains("allowed_outbound_hosts"),
        "{}",
        resp.text
    );
    assert_eq!(bao.snapshot().await, before);
}

#[tokio::test]
async fn the_typed_wit_call_and_http_share_one_counter_and_one_validation() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    let typed = svc
        .app
        .generate(&tuple("web", "app", "prod"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(typed.names[0].hostname, "web-app-prod-vm1");
    assert_eq!(typed.names[0].number, 1);
    assert!(!typed.replayed);
    let http = svc.generate("web", "app", "prod").await;
    assert_eq!(http.hostname(), "web-app-prod-vm2");
    let typed = svc
        .app
        .generate(&tuple("web", "app", "prod"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(typed.names[0].hostname, "web-app-prod-vm3");

    let mut keyed = tuple("web", "app", "prod");
    keyed.count = 2;
    keyed.idempotency_key = Some("typed-key".into());
    let first = svc.app.generate(&keyed).await.unwrap().unwrap();
    let again = svc.app.generate(&keyed).await.unwrap().unwrap();
    assert_eq!(first.names.len(), 2);
    let names = |a: &hostnaming_host::server::Allocation| {
        a.names
            .iter()
            .map(|n| (n.hostname.clone(), n.number))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&first), names(&again));
    assert!(again.replayed);

    let typed = svc
        .app
        .generate(&tuple("web", "App", "prod"))
        .await
        .unwrap()
        .unwrap_err();
    let http = svc.generate("web", "App", "prod").await;
    match typed {
        NamingError::InvalidInput(e) => {
            assert_eq!(e.field, "role");
            assert_eq!(http.json["field"], "role");
            assert!(http.json["detail"].as_str().unwrap().contains(&e.reason));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_typed_call_reports_an_unreachable_vault_as_vault_unavailable() {
    let mut bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    bao.stop();
    match svc
        .app
        .generate(&tuple("web", "app", "prod"))
        .await
        .unwrap()
    {
        Err(NamingError::VaultUnavailable(m)) => assert!(m.contains(&bao.addr), "{m}"),
        other => panic!("{other:?}"),
    }
}
