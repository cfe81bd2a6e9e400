//! The Terraform-safe API against a real OpenBao: the registry, release, listing,
//! idempotency keys, bulk, health and the OpenAPI document.

use hostnaming_testkit as common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use common::{Bao, Resp, Service, MOUNT};
use serde_json::{json, Value};

fn body(app: &str, role: &str, env: &str) -> String {
    json!({"application": app, "role": role, "environment": env}).to_string()
}

async fn keyed(svc: &Service, key: &str, body: &str) -> Resp {
    common::request_with(
        "POST",
        &format!("{}/generate-name", svc.url),
        body,
        &[("idempotency-key", key)],
    )
    .await
}

#[tokio::test]
async fn an_issued_name_has_a_record_and_an_unknown_one_is_404() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    svc.generate("web", "app", "prod").await.hostname();
    let r = svc.request("GET", "/names/web-app-prod-vm1", "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    for (k, v) in [
        ("application", "web"),
        ("role", "app"),
        ("environment", "prod"),
        ("status", "issued"),
    ] {
        assert_eq!(r.json[k], v, "{k}");
    }
    assert_eq!(r.json["number"], 1);
    assert!(r.json["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(r.json["idempotency_key"], Value::Null);

    let missing = svc.request("GET", "/names/web-app-prod-vm9", "").await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.header("content-type"),
        Some("application/problem+json")
    );
    let bad = svc.request("GET", "/names/Web_1", "").await;
    assert_eq!(
        (bad.status, bad.json["field"].clone()),
        (400, json!("hostname"))
    );
}

#[tokio::test]
async fn a_released_name_is_kept_released_twice_harmlessly_and_never_reissued() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    svc.generate("web", "app", "prod").await.hostname();
    let released = svc.request("DELETE", "/names/web-app-prod-vm1", "").await;
    assert_eq!(released.status, 200, "{}", released.text);
    assert_eq!(released.json["status"], "released");
    assert!(released.json["released_at"].is_string());
    let again = svc.request("DELETE", "/names/web-app-prod-vm1", "").await;
    assert_eq!((again.status, &again.json), (200, &released.json));
    assert_eq!(
        svc.request("GET", "/names/web-app-prod-vm1", "").await.json["status"],
        "released"
    );
    assert_eq!(
        svc.generate("web", "app", "prod").await.hostname(),
        "web-app-prod-vm2"
    );
    // Even if the counter is rewound by hand, the released name is not issued again.
    let vault = bao.client();
    let (_, meta) = vault
        .call(
            "GET",
            &format!("{MOUNT}/metadata/applications/web/app/prod/counter"),
            None,
        )
        .await
        .unwrap();
    let version = meta["data"]["current_version"].as_u64().unwrap();
    vault
        .kv_put(
            MOUNT,
            "applications/web/app/prod/counter",
            version,
            json!({"counter": 1}),
        )
        .await
        .unwrap();
    assert_eq!(
        svc.generate("web", "app", "prod").await.hostname(),
        "web-app-prod-vm3"
    );
    assert_eq!(
        svc.request("DELETE", "/names/web-app-prod-vm7", "")
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn names_are_listed_by_number_with_filters_and_a_cursor() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    for (a, r, e) in [
        ("web", "app", "prod"),
        ("web", "db", "prod"),
        ("web", "app", "prod"),
        ("web", "app", "dev"),
        ("other", "app", "prod"),
    ] {
        svc.generate(a, r, e).await.hostname();
    }
    let page = svc
        .request("GET", "/names?application=web&limit=2", "")
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    let names = |r: &Resp| {
        r.json["names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["hostname"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&page), ["web-app-dev-vm1", "web-app-prod-vm1"]);
    let cursor = page.json["next_cursor"].as_str().unwrap().to_string();
    let page = svc
        .request(
            "GET",
            &format!("/names?application=web&limit=2&cursor={cursor}"),
            "",
        )
        .await;
    assert_eq!(names(&page), ["web-db-prod-vm1", "web-app-prod-vm2"]);
    // Nothing is left after the second page, so it has no cursor.
    assert!(page.json["next_cursor"].is_null(), "{}", page.text);

    let filtered = svc
        .request(
            "GET",
            "/names?application=web&role=app&environment=prod",
            "",
        )
        .await;
    assert_eq!(names(&filtered), ["web-app-prod-vm1", "web-app-prod-vm2"]);
    assert_eq!(filtered.json["next_cursor"], Value::Null);
    let none = svc.request("GET", "/names?application=nobody", "").await;
    assert_eq!((none.status, names(&none).len()), (200, 0));
    // Without an application, the whole registry is searched, in hostname order.
    let everywhere = svc.request("GET", "/names?role=app", "").await;
    assert_eq!(
        names(&everywhere),
        [
            "other-app-prod-vm1",
            "web-app-dev-vm1",
            "web-app-prod-vm1",
            "web-app-prod-vm2"
        ]
    );
}

#[tokio::test]
async fn a_bulk_request_returns_count_names_from_one_counter_advance() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    let b =
        json!({"application": "web", "role": "app", "environment": "prod", "count": 5}).to_string();
    let r = svc.request("POST", "/generate-name", &b).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let expected: Vec<String> = (1..=5).map(|n| format!("web-app-prod-vm{n}")).collect();
    assert_eq!(r.json["hostnames"], json!(expected));
    assert_eq!(r.json["hostname"], "web-app-prod-vm1");
    assert_eq!(bao.counter("web", "app", "prod").await, Some(json!(6)));
    let (_, meta) = bao
        .client()
        .call(
            "GET",
            &format!("{MOUNT}/metadata/applications/web/app/prod/counter"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        meta["data"]["current_version"], 1,
        "one counter write for five names"
    );
    for bad in [0, 101] {
        let b = json!({"application": "web", "role": "app", "environment": "prod", "count": bad})
            .to_string();
        let r = svc.request("POST", "/generate-name", &b).await;
        assert_eq!((r.status, r.json["field"].clone()), (400, json!("count")));
    }
}

#[tokio::test]
async fn a_data_source_polling_with_one_key_gets_one_name_forever() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    let first = keyed(&svc, "tf-vm-a", &body("web", "app", "prod")).await;
    assert_eq!(first.hostname(), "web-app-prod-vm1");
    assert_eq!(first.json["replayed"], false);
    assert_eq!(first.header("idempotent-replayed"), None);
    for _ in 0..20 {
        let again = keyed(&svc, "tf-vm-a", &body("web", "app", "prod")).await;
        assert_eq!(again.hostname(), "web-app-prod-vm1");
        assert_eq!(again.json["replayed"], true);
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
    }
    // A structured-field spelling of the same key is the same key.
    assert_eq!(
        keyed(&svc, "\"tf-vm-a\"", &body("web", "app", "prod"))
            .await
            .hostname(),
        "web-app-prod-vm1"
    );
    assert_eq!(bao.counter("web", "app", "prod").await, Some(json!(2)));
    let record = svc.request("GET", "/names/web-app-prod-vm1", "").await;
    assert_eq!(record.json["idempotency_key"], "tf-vm-a");
    // Released or not, the key keeps its answer.
    svc.request("DELETE", "/names/web-app-prod-vm1", "").await;
    assert_eq!(
        keyed(&svc, "tf-vm-a", &body("web", "app", "prod"))
            .await
            .hostname(),
        "web-app-prod-vm1"
    );
}

#[tokio::test]
async fn the_same_key_with_another_payload_is_422_and_writes_nothing() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    keyed(&svc, "k", &body("web", "app", "prod"))
        .await
        .hostname();
    let before = bao.snapshot().await;
    let other = keyed(&svc, "k", &body("web", "app", "dev")).await;
    assert_eq!(other.status, 422, "{}", other.text);
    assert_eq!(
        other.header("content-type"),
        Some("application/problem+json")
    );
    let bad = keyed(&svc, "", &body("web", "app", "prod")).await;
    assert_eq!(
        (bad.status, bad.json["field"].clone()),
        (400, json!("Idempotency-Key"))
    );
    assert_eq!(bao.snapshot().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_requests_with_one_key_make_exactly_one_allocation() {
    let bao = Bao::start().await;
    let svc = Arc::new(Service::start(&bao, &[]).await);
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let svc = svc.clone();
            tokio::spawn(async move { keyed(&svc, "same-key", &body("web", "app", "prod")).await })
        })
        .collect();
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    let mut names = HashSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        *statuses.entry(r.status).or_default() += 1;
        match r.status {
            200 => {
                names.insert(r.hostname().to_string());
            }
            409 => assert_eq!(r.header("retry-after"), Some("1"), "{}", r.text),
            other => panic!("{other}: {}", r.text),
        }
    }
    assert!(
        statuses.get(&200).copied().unwrap_or(0) >= 1,
        "{statuses:?}"
    );
    assert_eq!(names.len(), 1, "{names:?}");
    assert_eq!(bao.counter("web", "app", "prod").await, Some(json!(2)));
    let all = bao.client().kv_list_all(MOUNT, "names/").await.unwrap();
    assert_eq!(all, ["names/web-app-prod-vm1"]);
    assert_eq!(
        keyed(&svc, "same-key", &body("web", "app", "prod"))
            .await
            .hostname(),
        "web-app-prod-vm1"
    );
}

#[tokio::test]
async fn healthz_is_200_when_vault_is_ready_and_503_when_sealed_or_the_mount_is_missing() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    let ok = svc.request("GET", "/healthz", "").await;
    assert_eq!(
        (ok.status, ok.json["status"].clone()),
        (200, json!("ok")),
        "{}",
        ok.text
    );
    let nomount = Service::start(
        &bao,
        &[("vault_mount", "elsewhere"), ("vault_token", &bao.token)],
    )
    .await;
    let r = nomount.request("GET", "/healthz", "").await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(r.json["detail"].as_str().unwrap().contains("elsewhere"));
    bao.client().call("PUT", "sys/seal", None).await.unwrap();
    let sealed = svc.request("GET", "/healthz", "").await;
    assert_eq!(sealed.status, 503);
    assert!(sealed.json["detail"].as_str().unwrap().contains("sealed"));
    assert_eq!(sealed.header("retry-after"), Some("1"));
}

#[tokio::test]
async fn healthz_is_503_when_vault_is_down() {
    let mut bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    bao.stop();
    assert_eq!(svc.request("GET", "/healthz", "").await.status, 503);
}

#[tokio::test]
async fn the_openapi_document_is_served_and_lists_every_route() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    let r = svc.request("GET", "/openapi.json", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["openapi"], "3.1.0");
    for (method, path) in hostnaming::api::routes::ROUTES {
        let op = &r.json["paths"][*path][method.to_ascii_lowercase()];
        assert!(
            op.is_object(),
            "{method} {path} is missing from openapi.json"
        );
        // Every operation documents its success and its problem answers.
        assert!(op["responses"]["200"].is_object(), "{method} {path}");
        assert!(op["responses"]["405"].is_object(), "{method} {path}");
    }
    // And nothing is documented that the component does not serve.
    let documented: usize = r.json["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| {
            p.as_object()
                .unwrap()
                .keys()
                .filter(|k| *k != "parameters")
                .count()
        })
        .sum();
    assert_eq!(documented, hostnaming::api::routes::ROUTES.len());
    // Every route reaches the component under spin.toml's triggers.
    let manifest = svc.app.manifest();
    for (_, path) in hostnaming::api::routes::ROUTES {
        let path = path.replace("{hostname}", "web-app-prod-vm1");
        assert!(
            manifest.route_for(&path).is_some(),
            "{path} is not routed by spin.toml"
        );
    }
}

#[test]
fn the_openapi_document_is_valid_openapi_3_1() {
    let path = common::workspace().join("src/api/openapi.json");
    let out = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&path)
        .output()
        .expect("python3 runs (scripts/test installs openapi-spec-validator)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
