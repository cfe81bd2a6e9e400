//! The web page: served by the component with its security headers, the two routes it
//! relies on (`/session`, `/suggestions`), and the browser tests (tests/browser, headless
//! Chromium driven by Playwright) against the real host, component and OpenBao.

use std::io::Read;

use hostnaming::api::auth::token_hash;
use hostnaming_testkit as common;
use serde_json::{json, Value};

use common::{request_with, Bao, Service};

fn entry(name: &str, token: &str, scopes: &str) -> String {
    format!("{name}={}:{scopes}", token_hash(token))
}

#[tokio::test]
async fn the_page_and_its_files_are_served_with_their_types_tags_and_security_headers() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    let page = svc.request("GET", "/", "").await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    // Sent gzip-compressed, as embedded.
    assert_eq!(page.header("content-encoding"), Some("gzip"));
    let mut html = String::new();
    flate2::read::GzDecoder::new(&page.body[..])
        .read_to_string(&mut html)
        .unwrap();
    assert!(html.contains(r#"<script type="module" src="/ui/app.js">"#));
    // A client that refuses gzip is told so.
    let identity = request_with("GET", &svc.url, "", &[("accept-encoding", "identity")]).await;
    assert_eq!(identity.status, 406);
    assert_eq!(
        identity.json["type"],
        "urn:hostnaming:problem:not-acceptable"
    );
    let csp = page.header("content-security-policy").unwrap();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    // A browser that has the page revalidates it and gets no body back.
    let tag = page.header("etag").unwrap().to_string();
    let again = request_with("GET", &svc.url, "", &[("if-none-match", &tag)]).await;
    assert_eq!((again.status, again.text.as_str()), (304, ""));

    for (file, kind) in [
        ("app.js", "text/javascript"),
        ("style.css", "text/css"),
        ("icon.svg", "image/svg+xml"),
    ] {
        let r = svc.request("GET", &format!("/ui/{file}"), "").await;
        assert_eq!(r.status, 200, "{file}");
        assert!(
            r.header("content-type").unwrap().starts_with(kind),
            "{file}"
        );
    }
    let missing = svc.request("GET", "/ui/missing.js", "").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json["type"], "urn:hostnaming:problem:not-found");
    // The API's answers carry the same headers: a browser renders nothing from them.
    let health = svc.request("GET", "/healthz", "").await;
    assert_eq!(health.header("x-content-type-options"), Some("nosniff"));
    assert!(health.header("content-security-policy").is_some());
}

#[tokio::test]
async fn the_page_is_served_even_when_the_service_cannot_reach_vault() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[("vault_addr", "http://127.0.0.1:1")]).await;
    assert_eq!(svc.request("GET", "/", "").await.status, 200);
    assert_eq!(svc.request("GET", "/healthz", "").await.status, 503);
}

#[tokio::test]
async fn a_session_says_how_callers_authenticate_who_they_are_and_their_scopes() {
    let bao = Bao::start().await;
    let open = Service::start(&bao, &[]).await;
    let r = open.request("GET", "/session", "").await;
    assert_eq!(
        r.json,
        json!({"auth": "open", "actor": "anonymous", "scopes": ["generate", "read", "annotate", "admin"]})
    );

    let spec = [
        entry("ci", "hn_ci", "generate,read"),
        entry("ops", "hn_ops", "read,annotate,admin"),
    ]
    .join(";");
    let svc = Service::start(&bao, &[("api_tokens", &spec)]).await;
    let ask = |token: &'static str| {
        let url = format!("{}/session", svc.url);
        async move {
            let bearer = format!("Bearer {token}");
            request_with("GET", &url, "", &[("authorization", &bearer)]).await
        }
    };
    let ci = ask("hn_ci").await;
    assert_eq!(
        ci.json,
        json!({"auth": "tokens", "actor": "ci", "scopes": ["generate", "read"]})
    );
    assert_eq!(
        ask("hn_ops").await.json["scopes"],
        json!(["read", "annotate", "admin"])
    );
    let unknown = ask("hn_nope").await;
    assert_eq!(unknown.status, 401);
    let none = svc.request("GET", "/session", "").await;
    assert_eq!(none.status, 401);
    assert!(none
        .header("www-authenticate")
        .unwrap()
        .starts_with("Bearer"));
    let bad = svc.request("GET", "/session?who=me", "").await;
    assert_eq!((bad.status, &bad.json["field"]), (400, &json!("who")));
}

const NAMES_READER: &str = r#"
path "hostnaming/data/names/*" { capabilities = ["read"] }
path "hostnaming/metadata/names/*" { capabilities = ["list"] }
path "hostnaming/metadata/applications/*" { capabilities = ["list"] }
path "sys/capabilities-self" { capabilities = ["update"] }
path "auth/token/lookup-self" { capabilities = ["read"] }
"#;

const ONE_NAME_EDITOR: &str = r#"
path "hostnaming/data/names/web-app-prod-vm1" { capabilities = ["read", "update"] }
"#;

/// A Vault token holding `policies`, made from policy texts.
async fn vault_token(bao: &Bao, policies: &[(&str, &str)]) -> String {
    let root = bao.client();
    for (name, text) in policies {
        let (status, _) = root
            .call(
                "PUT",
                &format!("sys/policies/acl/{name}"),
                Some(json!({ "policy": text })),
            )
            .await
            .unwrap();
        assert_eq!(status, 204);
    }
    let names: Vec<&str> = policies.iter().map(|(n, _)| *n).collect();
    root.create_token(&names).await.unwrap()
}

#[tokio::test]
async fn in_pass_through_mode_a_sessions_scopes_are_the_tokens_vault_capabilities() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[("auth_mode", "vault")]).await;
    let reader = vault_token(&bao, &[("names-reader", NAMES_READER)]).await;
    let editor = vault_token(
        &bao,
        &[
            ("names-reader", NAMES_READER),
            ("one-name-editor", ONE_NAME_EDITOR),
        ],
    )
    .await;
    let session = |token: String, query: &'static str| {
        let url = format!("{}/session{query}", svc.url);
        async move { request_with("GET", &url, "", &[("x-vault-token", &token)]).await }
    };
    let r = session(reader.clone(), "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["auth"], "vault");
    assert_eq!(r.json["scopes"], json!(["read"]));
    assert!(
        r.json["actor"].as_str().unwrap().starts_with("token"),
        "{}",
        r.text
    );
    // A policy on one name shows when the page asks about that name.
    let general = session(editor.clone(), "").await;
    assert_eq!(general.json["scopes"], json!(["read"]));
    let that_one = session(editor.clone(), "?hostname=web-app-prod-vm1").await;
    assert_eq!(
        that_one.json["scopes"],
        json!(["read", "annotate", "admin"])
    );
    let root = session(bao.token.clone(), "").await;
    assert_eq!(
        root.json["scopes"],
        json!(["generate", "read", "annotate", "admin"])
    );
    let none = svc.request("GET", "/session", "").await;
    assert_eq!(none.status, 401);
    assert!(none
        .header("www-authenticate")
        .unwrap()
        .starts_with("X-Vault-Token"));
    let refused = session("s.not-a-token".into(), "").await;
    assert_eq!(refused.status, 403, "{}", refused.text);
}

#[tokio::test]
async fn suggestions_list_the_values_used_level_by_level() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    assert_eq!(
        svc.request("GET", "/suggestions", "").await.json,
        json!({"field": "application", "values": []})
    );
    for (a, r, e) in [
        ("web", "app", "prod"),
        ("web", "app", "dev"),
        ("web", "db", "prod"),
        ("api", "app", "prod"),
    ] {
        svc.generate(a, r, e).await.hostname();
    }
    let values = |path: &'static str| {
        let svc = &svc;
        async move {
            let r = svc.request("GET", path, "").await;
            assert_eq!(r.status, 200, "{}", r.text);
            r.json
        }
    };
    assert_eq!(
        values("/suggestions").await,
        json!({"field": "application", "values": ["api", "web"]})
    );
    assert_eq!(
        values("/suggestions?application=web").await,
        json!({"field": "role", "values": ["app", "db"]})
    );
    assert_eq!(
        values("/suggestions?application=web&role=app").await["values"],
        json!(["dev", "prod"])
    );
    assert_eq!(
        values("/suggestions?application=nope").await["values"],
        json!([])
    );
    let before = bao.snapshot().await;
    for (query, field) in [("role=app", "role"), ("application=Web", "application")] {
        let r = svc
            .request("GET", &format!("/suggestions?{query}"), "")
            .await;
        assert_eq!(
            (r.status, &r.json["field"]),
            (400, &json!(field)),
            "{query}"
        );
    }
    assert_eq!(bao.snapshot().await, before);
}

/// Runs tests/browser with pytest against services on one OpenBao: open, with API tokens,
/// in pass-through mode, one whose Vault does not answer and one whose mount is missing. Screenshots and page weights
/// go to target/browser-artifacts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_page_works_in_a_real_browser() {
    let bao = Bao::start().await;
    let open = Service::start(&bao, &[]).await;
    let spec = [
        entry("full", "hn_full_token", "generate,read,annotate,admin"),
        entry("reader", "hn_reader_token", "read"),
    ]
    .join(";");
    let tokens = Service::start(&bao, &[("api_tokens", &spec)]).await;
    let vault = Service::start(&bao, &[("auth_mode", "vault")]).await;
    let vault_reader = vault_token(&bao, &[("names-reader", NAMES_READER)]).await;
    let down = Service::start(&bao, &[("vault_addr", "http://127.0.0.1:1")]).await;
    let misconfigured = Service::start(&bao, &[("vault_mount", "missing")]).await;
    let workspace = common::workspace();
    let artifacts = workspace.join("target/browser-artifacts");
    let out = tokio::process::Command::new("python3")
        .args([
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-v",
            "-s",
            "tests/browser",
        ])
        .current_dir(&workspace)
        .env("HOSTNAMING_OPEN_URL", &open.url)
        .env("HOSTNAMING_TOKENS_URL", &tokens.url)
        .env("HOSTNAMING_FULL_TOKEN", "hn_full_token")
        .env("HOSTNAMING_READER_TOKEN", "hn_reader_token")
        .env("HOSTNAMING_VAULT_URL", &vault.url)
        .env("HOSTNAMING_VAULT_READER_TOKEN", &vault_reader)
        .env("HOSTNAMING_DOWN_URL", &down.url)
        .env("HOSTNAMING_MISCONFIGURED_URL", &misconfigured.url)
        .env("HOSTNAMING_ARTIFACTS", &artifacts)
        .output()
        .await
        .expect("python3 runs (scripts/test installs pytest, Playwright and Chromium)");
    let report = String::from_utf8_lossy(&out.stdout);
    println!("{report}");
    assert!(
        out.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let weights: Value = serde_json::from_str(
        &std::fs::read_to_string(artifacts.join("page-weights.json")).unwrap(),
    )
    .unwrap();
    println!("page weights: {weights}");
}
