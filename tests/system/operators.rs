//! What operators need of a name, against a real OpenBao through the real component: who
//! asked for it and what for, changing that later without losing a concurrent change, its
//! history, searching the whole registry, exporting it, previews, and the typed interface
//! agreeing with HTTP.

use hostnaming_testkit as common;

use std::sync::Arc;

use common::{Bao, Resp, Service, MOUNT};
use hostnaming::api::auth::token_hash;
use hostnaming_host::server::{MetadataPatch, NameStatus, NamingError, SearchQuery};
use serde_json::{json, Value};

const MERGE_PATCH: (&str, &str) = ("content-type", "application/merge-patch+json");

async fn call(
    svc: &Service,
    method: &str,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> Resp {
    common::request_with(method, &format!("{}{path}", svc.url), body, headers).await
}

async fn patch(svc: &Service, hostname: &str, body: Value, headers: &[(&str, &str)]) -> Resp {
    let headers: Vec<(&str, &str)> = [MERGE_PATCH]
        .into_iter()
        .chain(headers.iter().copied())
        .collect();
    call(
        svc,
        "PATCH",
        &format!("/names/{hostname}"),
        &body.to_string(),
        &headers,
    )
    .await
}

async fn generate(svc: &Service, body: Value) -> Resp {
    call(svc, "POST", "/generate-name", &body.to_string(), &[]).await
}

fn tuple(app: &str) -> Value {
    json!({"application": app, "role": "app", "environment": "prod"})
}

fn with(mut body: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

fn actions(record: &Value) -> Vec<(String, String)> {
    record["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().into(),
                e["actor"].as_str().unwrap().into(),
            )
        })
        .collect()
}

#[tokio::test]
async fn two_named_tokens_are_the_actors_of_their_names_and_of_what_they_change() {
    let bao = Bao::start().await;
    let tokens = format!(
        "ci-prod={}:generate,read; ops@team={}:generate,read,annotate,admin",
        token_hash("hn_ci"),
        token_hash("hn_ops")
    );
    let svc = Service::start(&bao, &[("api_tokens", &tokens)]).await;
    let ci_h = [("authorization", "Bearer hn_ci")];
    let ops_h = [("authorization", "Bearer hn_ops")];

    let by_ci = call(
        &svc,
        "POST",
        "/generate-name",
        &tuple("web").to_string(),
        &ci_h,
    )
    .await;
    let by_ops = call(
        &svc,
        "POST",
        "/generate-name",
        &tuple("web").to_string(),
        &ops_h,
    )
    .await;
    let (first, second) = (by_ci.hostname().to_string(), by_ops.hostname().to_string());
    let read = |h: &str| format!("/names/{h}");
    let r1 = call(&svc, "GET", &read(&first), "", &ci_h).await;
    let r2 = call(&svc, "GET", &read(&second), "", &ci_h).await;
    assert_eq!(
        (r1.json["created_by"].clone(), r2.json["created_by"].clone()),
        (json!("ci-prod"), json!("ops@team"))
    );
    // Neither the token nor its hash is stored anywhere.
    let stored = bao.snapshot().await;
    let everything = serde_json::to_string(&stored).unwrap();
    for secret in [
        "hn_ci",
        "hn_ops",
        &token_hash("hn_ci"),
        &token_hash("hn_ops"),
    ] {
        assert!(!everything.contains(secret), "{secret} is in Vault");
    }
    // The ci token may not annotate; ops may, and is recorded.
    let refused = patch(&svc, &first, json!({"owner": "x"}), &ci_h).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    let changed = patch(&svc, &first, json!({"owner": "team-web"}), &ops_h).await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    let released = call(&svc, "DELETE", &read(&first), "", &ops_h).await;
    assert_eq!(released.json["released_by"], "ops@team");
    assert_eq!(
        actions(&released.json),
        [
            ("issued".into(), "ci-prod".into()),
            ("annotated".into(), "ops@team".into()),
            ("released".into(), "ops@team".into())
        ]
    );
}

#[tokio::test]
async fn an_open_service_records_anonymous() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    let name = generate(&svc, tuple("web")).await.hostname().to_string();
    let record = svc.request("GET", &format!("/names/{name}"), "").await;
    assert_eq!(record.json["created_by"], "anonymous");
}

#[tokio::test]
async fn pass_through_mode_records_the_callers_vault_identity() {
    let bao = Bao::start().await;
    let root = bao.client();
    let policy = r#"
path "hostnaming/data/*" { capabilities = ["create", "read", "update"] }
path "hostnaming/metadata/*" { capabilities = ["list", "read"] }
path "auth/token/lookup-self" { capabilities = ["read"] }
"#;
    let (status, _) = root
        .call(
            "PUT",
            "sys/policies/acl/namer",
            Some(json!({"policy": policy})),
        )
        .await
        .unwrap();
    assert_eq!(status, 204);
    let body = json!({"policies": ["namer"], "no_default_policy": true, "display_name": "alice", "ttl": "1h"});
    let (status, made) = root
        .call("POST", "auth/token/create", Some(body))
        .await
        .unwrap();
    assert_eq!(status, 200, "{made}");
    let alice = made["auth"]["client_token"].as_str().unwrap().to_string();
    let svc = Service::start(&bao, &[("auth_mode", "vault")]).await;
    let h = [("x-vault-token", alice.as_str())];
    let issued = call(
        &svc,
        "POST",
        "/generate-name",
        &tuple("web").to_string(),
        &h,
    )
    .await;
    let name = issued.hostname().to_string();
    let record = call(&svc, "GET", &format!("/names/{name}"), "", &h).await;
    // OpenBao names a token created with display_name `alice` `token-alice`.
    assert_eq!(record.json["created_by"], "token-alice", "{}", record.text);
    assert!(!record.text.contains(&alice));

    // A token that may not look itself up cannot write: nothing is recorded as nobody.
    let (status, blind) = root
        .call(
            "POST",
            "auth/token/create",
            Some(json!({"policies": ["namer"], "no_default_policy": true})),
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    let root_policy = r#"path "hostnaming/data/*" { capabilities = ["create", "read", "update"] }"#;
    root.call(
        "PUT",
        "sys/policies/acl/namer",
        Some(json!({"policy": root_policy})),
    )
    .await
    .unwrap();
    let before = bao.snapshot().await;
    let blind = blind["auth"]["client_token"].as_str().unwrap();
    let refused = call(
        &svc,
        "POST",
        "/generate-name",
        &tuple("web").to_string(),
        &[("x-vault-token", blind)],
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(refused.json["detail"]
        .as_str()
        .unwrap()
        .contains("lookup-self"));
    assert_eq!(bao.snapshot().await, before);
}

#[tokio::test]
async fn metadata_is_recorded_with_the_name_and_bad_metadata_gets_400_writing_nothing() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    let meta = json!({"owner": "team-web", "description": "edge proxy\nfor EU", "tags": {"cost-center": "42", "tier": "gold"}});
    let issued = generate(&svc, with(tuple("web"), meta.clone())).await;
    let name = issued.hostname().to_string();
    let stored = bao
        .client()
        .kv_get(MOUNT, &format!("names/{name}"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (&stored["owner"], &stored["description"], &stored["tags"]),
        (&meta["owner"], &meta["description"], &meta["tags"])
    );
    let record = svc.request("GET", &format!("/names/{name}"), "").await;
    assert_eq!(record.json["tags"], meta["tags"]);
    // The claim wrote the record once: version 1, metadata and all.
    assert_eq!(record.header("etag"), Some("\"1\""));

    let before = bao.snapshot().await;
    let too_many: serde_json::Map<String, Value> =
        (0..33).map(|i| (format!("k{i}"), json!("v"))).collect();
    for (bad, field) in [
        (json!({"owner": 7}), "owner"),
        (json!({"owner": "  "}), "owner"),
        (json!({"owner": "x".repeat(257)}), "owner"),
        (json!({"description": "d".repeat(1025)}), "description"),
        (json!({"tags": {"Upper": "x"}}), "tags"),
        (json!({"tags": {"_lead": "x"}}), "tags"),
        (json!({"tags": {"k": "line\nbreak"}}), "tags.k"),
        (json!({"tags": {"k": "v".repeat(257)}}), "tags.k"),
        (json!({"tags": Value::Object(too_many.clone())}), "tags"),
        (json!({"tags": "a=b"}), "tags"),
    ] {
        let r = generate(&svc, with(tuple("web"), bad.clone())).await;
        assert_eq!(
            (r.status, r.json["field"].clone()),
            (400, json!(field)),
            "{bad}: {}",
            r.text
        );
    }
    assert_eq!(bao.snapshot().await, before, "bad metadata wrote to Vault");
}

#[tokio::test]
async fn thirty_two_concurrent_patches_each_adding_one_tag_leave_all_thirty_two() {
    let bao = Bao::start().await;
    let svc = Arc::new(Service::start(&bao, &[]).await);
    let name = generate(&svc, tuple("web")).await.hostname().to_string();
    let patches: Vec<_> = (0..32)
        .map(|i| {
            let (svc, name) = (svc.clone(), name.clone());
            tokio::spawn(async move {
                patch(
                    &svc,
                    &name,
                    json!({"tags": {format!("t{i}"): format!("{i}")}}),
                    &[],
                )
                .await
            })
        })
        .collect();
    for p in patches {
        let r = p.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let record = svc.request("GET", &format!("/names/{name}"), "").await;
    let tags = record.json["tags"].as_object().unwrap();
    assert_eq!(tags.len(), 32, "{}", record.text);
    assert!((0..32).all(|i| tags[&format!("t{i}")] == json!(format!("{i}"))));
    assert_eq!(record.json["history"].as_array().unwrap().len(), 33);
}

#[tokio::test]
async fn a_patch_with_a_stale_if_match_gets_412_and_changes_nothing() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    let name = generate(&svc, tuple("web")).await.hostname().to_string();
    let read = svc.request("GET", &format!("/names/{name}"), "").await;
    let etag = read.header("etag").unwrap().to_string();
    let first = patch(&svc, &name, json!({"owner": "a"}), &[("if-match", &etag)]).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let newer = first.header("etag").unwrap().to_string();
    assert_ne!(newer, etag);
    let stale = patch(&svc, &name, json!({"owner": "b"}), &[("if-match", &etag)]).await;
    assert_eq!(stale.status, 412, "{}", stale.text);
    assert_eq!(stale.header("etag"), Some(newer.as_str()));
    let now = svc.request("GET", &format!("/names/{name}"), "").await;
    assert_eq!(now.json["owner"], "a");
    // Removing with null, and the media type and body checked.
    let removed = patch(&svc, &name, json!({"owner": null}), &[("if-match", &newer)]).await;
    assert_eq!(removed.json["owner"], Value::Null);
    let json_type = call(
        &svc,
        "PATCH",
        &format!("/names/{name}"),
        r#"{"owner":"c"}"#,
        &[("content-type", "application/json")],
    )
    .await;
    assert_eq!(
        (json_type.status, json_type.header("accept-patch")),
        (415, Some("application/merge-patch+json"))
    );
    let unknown = patch(&svc, &name, json!({"status": "issued"}), &[]).await;
    assert_eq!(
        (unknown.status, unknown.json["field"].clone()),
        (400, json!("status"))
    );
    let missing = patch(&svc, "web-app-prod-vm99", json!({"owner": "x"}), &[]).await;
    assert_eq!(missing.status, 404);
}

async fn seed(svc: &Service) {
    for (app, meta) in [
        (
            "web",
            json!({"owner": "team-web", "tags": {"env": "prod", "tier": "gold"}}),
        ),
        ("web", json!({"owner": "team-web", "tags": {"env": "prod"}})),
        (
            "db",
            json!({"owner": "team-db", "tags": {"env": "prod", "tier": "gold"}}),
        ),
        ("api", json!({})),
    ] {
        generate(svc, with(tuple(app), meta)).await.hostname();
    }
}

fn hostnames(r: &Resp) -> Vec<String> {
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["hostname"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_search_without_application_filters_the_whole_registry_and_pages_by_hostname() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    seed(&svc).await;
    svc.request("DELETE", "/names/web-app-prod-vm2", "").await;
    let all = svc.request("GET", "/names?limit=3", "").await;
    assert_eq!(
        hostnames(&all),
        ["api-app-prod-vm1", "db-app-prod-vm1", "web-app-prod-vm1"]
    );
    let cursor = all.json["next_cursor"].as_str().unwrap().to_string();
    let rest = svc
        .request("GET", &format!("/names?limit=3&cursor={cursor}"), "")
        .await;
    assert_eq!(
        (hostnames(&rest), rest.json["next_cursor"].clone()),
        (vec!["web-app-prod-vm2".to_string()], Value::Null)
    );
    for (query, expected) in [
        ("tag=tier:gold", vec!["db-app-prod-vm1", "web-app-prod-vm1"]),
        (
            "tag=tier:gold&tag=env:prod&owner=team-web",
            vec!["web-app-prod-vm1"],
        ),
        ("status=released", vec!["web-app-prod-vm2"]),
        (
            "created_by=anonymous&prefix=we",
            vec!["web-app-prod-vm1", "web-app-prod-vm2"],
        ),
        (
            "created_after=2000-01-01T00:00:00Z&created_before=2000-01-02T00:00:00Z",
            vec![],
        ),
        (
            "application=web&tag=env:prod&status=issued",
            vec!["web-app-prod-vm1"],
        ),
    ] {
        assert_eq!(
            hostnames(&svc.request("GET", &format!("/names?{query}"), "").await),
            expected,
            "{query}"
        );
    }
    let bad = svc.request("GET", "/names?tag=tier", "").await;
    assert_eq!((bad.status, bad.json["field"].clone()), (400, json!("tag")));
}

#[tokio::test]
async fn an_export_streams_every_match_as_csv_or_ndjson_with_formulas_neutralised() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    seed(&svc).await;
    let evil = with(
        tuple("web"),
        json!({"description": "=HYPERLINK(\"http://x\",\"y\")", "owner": "@evil"}),
    );
    let evil = generate(&svc, evil).await.hostname().to_string();
    let csv = svc
        .request("GET", "/names/export?format=csv&prefix=web", "")
        .await;
    assert_eq!(csv.status, 200, "{}", csv.text);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    let lines: Vec<&str> = csv.text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert!(lines[0]
        .starts_with("hostname,application,role,environment,number,status,owner,description,tags"));
    assert_eq!(lines.len(), 4, "{}", csv.text);
    let row = lines.iter().find(|l| l.starts_with(&evil)).unwrap();
    assert!(
        row.contains(",'@evil,\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\","),
        "{row}"
    );
    let ndjson = svc
        .request("GET", "/names/export?format=ndjson&tag=tier:gold", "")
        .await;
    assert_eq!(ndjson.header("content-type"), Some("application/x-ndjson"));
    let records: Vec<Value> = ndjson
        .text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = records
        .iter()
        .map(|r| r["hostname"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["db-app-prod-vm1", "web-app-prod-vm1"]);
    assert_eq!(
        records[1],
        svc.request("GET", "/names/web-app-prod-vm1", "").await.json
    );
    let bad = svc.request("GET", "/names/export?format=xlsx", "").await;
    assert_eq!(
        (bad.status, bad.json["field"].clone()),
        (400, json!("format"))
    );
}

#[tokio::test]
async fn a_dry_run_answers_the_next_names_and_writes_nothing() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    generate(&svc, tuple("web")).await.hostname();
    // Another tuple already holds what would be web's vm3, so a preview skips it as
    // allocation would.
    bao.client()
        .kv_put(MOUNT, "names/web-app-prod-vm3", 0, json!({"hostname": "web-app-prod-vm3", "application": "web-app", "role": "prod", "environment": "x", "number": 3, "status": "issued", "created_at": "2026-01-01T00:00:00Z"}))
        .await
        .unwrap();
    let before = bao.snapshot().await;
    let preview = generate(
        &svc,
        with(
            tuple("web"),
            json!({"count": 2, "dry_run": true, "owner": "x"}),
        ),
    )
    .await;
    assert_eq!(preview.status, 200, "{}", preview.text);
    assert_eq!(
        (
            preview.json["dry_run"].clone(),
            preview.json["hostnames"].clone()
        ),
        (json!(true), json!(["web-app-prod-vm2", "web-app-prod-vm4"]))
    );
    assert_eq!(bao.snapshot().await, before, "a dry run wrote to Vault");
    let real = generate(&svc, with(tuple("web"), json!({"count": 2}))).await;
    assert_eq!(
        (real.json["dry_run"].clone(), real.json["hostnames"].clone()),
        (json!(false), preview.json["hostnames"].clone())
    );
    let bad = generate(
        &svc,
        with(tuple("web"), json!({"dry_run": true, "tags": {"X": "y"}})),
    )
    .await;
    assert_eq!(bad.json["field"], "tags");
}

#[tokio::test]
async fn records_written_before_metadata_read_list_and_export_unchanged() {
    let bao = Bao::start().await;
    let client = bao.client();
    let old = json!({"hostname": "web-app-prod-vm1", "application": "web", "role": "app", "environment": "prod",
                     "number": 1, "status": "released", "created_at": "2026-11-01T10:00:00Z",
                     "idempotency_key": null, "released_at": "2026-11-02T10:00:00Z"});
    client
        .kv_put(MOUNT, "names/web-app-prod-vm1", 0, old)
        .await
        .unwrap();
    client
        .kv_put(
            MOUNT,
            "applications/web/app/prod/counter",
            0,
            json!({"counter": 2}),
        )
        .await
        .unwrap();
    let svc = Service::start(&bao, &[]).await;
    let record = svc.request("GET", "/names/web-app-prod-vm1", "").await;
    assert_eq!(record.status, 200, "{}", record.text);
    assert_eq!(
        (
            record.json["created_by"].clone(),
            record.json["owner"].clone(),
            record.json["tags"].clone()
        ),
        (Value::Null, Value::Null, json!({}))
    );
    assert_eq!(
        actions(&record.json),
        [
            ("issued".into(), "unknown".into()),
            ("released".into(), "unknown".into())
        ]
    );
    for query in ["application=web", "status=released", ""] {
        assert_eq!(
            hostnames(&svc.request("GET", &format!("/names?{query}"), "").await),
            ["web-app-prod-vm1"],
            "{query}"
        );
    }
    let csv = svc.request("GET", "/names/export", "").await;
    assert!(csv.text.contains("\r\nweb-app-prod-vm1,web,app,prod,1,released,,,,2026-11-01T10:00:00Z,,2026-11-02T10:00:00Z,\r\n"), "{}", csv.text);
    // And the next name follows on.
    assert_eq!(
        generate(&svc, tuple("web")).await.hostname(),
        "web-app-prod-vm2"
    );
}

/// A typed call in a fresh instance, as the host makes them (an instance's last read
/// holds its path's gate until the instance ends, so one is not kept across calls).
macro_rules! typed {
    ($svc:expr, $call:ident($($arg:expr),* $(,)?)) => {{
        let (mut store, instance) = $svc.app.typed().await.unwrap();
        instance
            .hostnaming_naming_allocator()
            .$call(&mut store, $($arg),*)
            .await
            .unwrap()
    }};
}

#[tokio::test]
async fn the_typed_interface_agrees_with_http() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    seed(&svc).await;
    let looked = typed!(svc, call_look_up("web-app-prod-vm1")).unwrap();
    let http = svc.request("GET", "/names/web-app-prod-vm1", "").await;
    assert_eq!(
        looked.metadata.owner.as_deref(),
        http.json["owner"].as_str(),
        "{}",
        http.text
    );
    assert_eq!(
        format!("\"{}\"", looked.version),
        http.header("etag").unwrap()
    );
    assert_eq!(
        looked.history.len(),
        http.json["history"].as_array().unwrap().len()
    );

    let query = SearchQuery {
        application: None,
        role: None,
        environment: None,
        status: None,
        owner: None,
        created_by: None,
        tags: vec![("tier".into(), "gold".into())],
        created_after: None,
        created_before: None,
        prefix: None,
        limit: 10,
        cursor: None,
    };
    let page = typed!(svc, call_search(&query)).unwrap();
    let typed: Vec<String> = page.names.iter().map(|n| n.hostname.clone()).collect();
    assert_eq!(
        typed,
        hostnames(
            &svc.request("GET", "/names?tag=tier:gold&limit=10", "")
                .await
        )
    );
    let bad = SearchQuery {
        tags: vec![("Bad".into(), "x".into())],
        ..query
    };
    match typed!(svc, call_search(&bad)) {
        Err(NamingError::InvalidInput(e)) => assert_eq!(
            e.field,
            svc.request("GET", "/names?tag=Bad:x", "").await.json["field"]
        ),
        other => panic!("{other:?}"),
    }

    let change = MetadataPatch {
        owner: Some(Some("typed-owner".into())),
        description: None,
        tags: vec![("tier".into(), None)],
    };
    let stale = typed!(
        svc,
        call_annotate(
            "web-app-prod-vm1",
            &change,
            Some(looked.version + 5),
            Some("tf"),
        )
    );
    assert!(matches!(stale, Err(NamingError::PreconditionFailed(v)) if v == looked.version));
    let changed = typed!(
        svc,
        call_annotate(
            "web-app-prod-vm1",
            &change,
            Some(looked.version),
            Some("tf"),
        )
    )
    .unwrap();
    let http = svc.request("GET", "/names/web-app-prod-vm1", "").await;
    assert_eq!(
        (http.json["owner"].clone(), http.json["tags"].clone()),
        (json!("typed-owner"), json!({"env": "prod"}))
    );
    assert_eq!(
        http.json["history"].as_array().unwrap().last().unwrap()["actor"],
        "tf"
    );
    assert_eq!(
        changed.metadata.tags,
        vec![("env".to_string(), "prod".to_string())]
    );

    let request = hostnaming_host::server::NameRequest {
        application: "web".into(),
        role: "app".into(),
        environment: "prod".into(),
        count: 1,
        idempotency_key: None,
    };
    let preview = typed!(svc, call_preview(&request)).unwrap();
    let http_preview = generate(&svc, with(tuple("web"), json!({"dry_run": true}))).await;
    assert_eq!(json!(preview[0].hostname), http_preview.json["hostname"]);
    let released = typed!(svc, call_release("web-app-prod-vm1", None)).unwrap();
    assert_eq!(
        (released.status, released.released_by.as_deref()),
        (NameStatus::Released, Some("typed-interface"))
    );
    assert_eq!(
        svc.request("GET", "/names/web-app-prod-vm1", "").await.json["status"],
        "released"
    );
    let missing = typed!(svc, call_look_up("web-app-prod-vm99"));
    assert!(matches!(missing, Err(NamingError::NotFound(_))));
}
