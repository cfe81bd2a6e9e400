//! Who may ask (API tokens, Vault-token pass-through) and what names look like (templates),
//! against a real OpenBao through the host.

use hostnaming_testkit as common;

use common::{Bao, Service, MOUNT};
use hostnaming::api::auth::token_hash;
use serde_json::json;

const ALPHA: &str = "hn_alpha_generate_read_5d1f";
const BETA: &str = "hn_beta_admin_77c2";

fn tokens() -> String {
    format!(
        "{}:generate,read; {}:admin",
        token_hash(ALPHA),
        token_hash(BETA)
    )
}

fn body(app: &str) -> String {
    json!({"application": app, "role": "app", "environment": "prod"}).to_string()
}

async fn call(
    svc: &Service,
    method: &str,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> common::Resp {
    common::request_with(method, &format!("{}{path}", svc.url), body, headers).await
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn api_tokens_gate_each_route_by_scope() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[("api_tokens", &tokens())]).await;
    let before = bao.snapshot().await;

    let none = call(&svc, "POST", "/generate-name", &body("web"), &[]).await;
    assert_eq!(none.status, 401, "{}", none.text);
    assert_eq!(
        none.header("www-authenticate"),
        Some(r#"Bearer realm="hostnaming""#)
    );
    assert_eq!(
        none.header("content-type"),
        Some("application/problem+json")
    );
    let unknown = call(
        &svc,
        "POST",
        "/generate-name",
        &body("web"),
        &[("authorization", "Bearer hn_not_a_token")],
    )
    .await;
    assert_eq!(unknown.status, 401);
    assert!(unknown
        .header("www-authenticate")
        .unwrap()
        .contains(r#"error="invalid_token""#));
    let beta_generates = call(
        &svc,
        "POST",
        "/generate-name",
        &body("web"),
        &[("authorization", &bearer(BETA))],
    )
    .await;
    assert_eq!(beta_generates.status, 403);
    assert!(beta_generates.json["detail"]
        .as_str()
        .unwrap()
        .contains("`generate`"));
    assert_eq!(
        bao.snapshot().await,
        before,
        "refused requests wrote to Vault"
    );

    let alpha = [("authorization", bearer(ALPHA))];
    let alpha: Vec<(&str, &str)> = alpha.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let made = call(&svc, "POST", "/generate-name", &body("web"), &alpha).await;
    assert_eq!(made.hostname(), "web-app-prod-vm1");
    assert_eq!(
        call(&svc, "GET", "/names/web-app-prod-vm1", "", &alpha)
            .await
            .status,
        200
    );
    assert_eq!(
        call(&svc, "GET", "/names?application=web", "", &alpha)
            .await
            .status,
        200
    );
    assert_eq!(
        call(&svc, "GET", "/names/web-app-prod-vm1", "", &[])
            .await
            .status,
        401
    );
    let alpha_releases = call(&svc, "DELETE", "/names/web-app-prod-vm1", "", &alpha).await;
    assert_eq!(alpha_releases.status, 403);
    assert!(alpha_releases.json["detail"]
        .as_str()
        .unwrap()
        .contains("`admin`"));
    let beta = [("authorization", bearer(BETA))];
    let beta: Vec<(&str, &str)> = beta.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        call(&svc, "GET", "/names/web-app-prod-vm1", "", &beta)
            .await
            .status,
        403
    );
    let released = call(&svc, "DELETE", "/names/web-app-prod-vm1", "", &beta).await;
    assert_eq!(
        (released.status, released.json["status"].clone()),
        (200, json!("released"))
    );

    // Health and the API description stay open.
    assert_eq!(call(&svc, "GET", "/healthz", "", &[]).await.status, 200);
    assert_eq!(
        call(&svc, "GET", "/openapi.json", "", &[]).await.status,
        200
    );
}

const TEAM_WEB_POLICY: &str = r#"
path "hostnaming/data/applications/web/*" { capabilities = ["create", "read", "update"] }
path "hostnaming/data/names/web-*" { capabilities = ["create", "read", "update"] }
path "hostnaming/data/idempotency/*" { capabilities = ["create", "read", "update"] }
path "auth/token/lookup-self" { capabilities = ["read"] }
"#;

#[tokio::test]
async fn in_pass_through_mode_vault_policies_decide_who_may_name_what() {
    let bao = Bao::start().await;
    let root = bao.client();
    let (status, _) = root
        .call(
            "PUT",
            "sys/policies/acl/team-web",
            Some(json!({"policy": TEAM_WEB_POLICY})),
        )
        .await
        .unwrap();
    assert_eq!(status, 204);
    let team_web = root.create_token(&["team-web"]).await.unwrap();
    let svc = Service::start(&bao, &[("auth_mode", "vault")]).await;
    let before = bao.snapshot().await;

    let none = call(&svc, "POST", "/generate-name", &body("web"), &[]).await;
    assert_eq!(none.status, 401, "{}", none.text);
    assert!(none
        .header("www-authenticate")
        .unwrap()
        .contains("X-Vault-Token"));
    let refused = call(
        &svc,
        "POST",
        "/generate-name",
        &body("db"),
        &[("x-vault-token", &team_web)],
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(
        refused.json["detail"]
            .as_str()
            .unwrap()
            .contains("application 'db'"),
        "{}",
        refused.text
    );
    assert!(!refused.text.contains(&team_web));
    assert_eq!(
        bao.snapshot().await,
        before,
        "a refused application wrote to Vault"
    );

    let made = call(
        &svc,
        "POST",
        "/generate-name",
        &body("web"),
        &[("x-vault-token", &team_web)],
    )
    .await;
    assert_eq!(made.hostname(), "web-app-prod-vm1");
    assert_eq!(
        call(
            &svc,
            "GET",
            "/names/web-app-prod-vm1",
            "",
            &[("x-vault-token", &team_web)]
        )
        .await
        .status,
        200
    );
    // The service's own (broader) token is not what did the work: a bogus caller token fails.
    let bogus = call(
        &svc,
        "POST",
        "/generate-name",
        &body("web"),
        &[("x-vault-token", "s.bogus")],
    )
    .await;
    assert_eq!(bogus.status, 403, "{}", bogus.text);
}

#[tokio::test]
async fn a_name_template_shapes_names_and_keys_the_counter_by_the_fields_it_uses() {
    let bao = Bao::start().await;
    let svc = Service::start(
        &bao,
        &[("name_template", "{environment}-{application}-{counter:03}")],
    )
    .await;
    let first = call(&svc, "POST", "/generate-name", &body("web"), &[]).await;
    assert_eq!(first.hostname(), "prod-web-001");
    let other_role = json!({"application": "web", "role": "db", "environment": "prod"}).to_string();
    assert_eq!(
        call(&svc, "POST", "/generate-name", &other_role, &[])
            .await
            .hostname(),
        "prod-web-002"
    );
    let counter = bao
        .client()
        .kv_get(MOUNT, "applications/web/_/prod/counter")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(counter["counter"], 3);
    let record = call(&svc, "GET", "/names/prod-web-002", "", &[]).await;
    assert_eq!(
        (record.json["role"].clone(), record.json["number"].clone()),
        (json!("db"), json!(2))
    );
    let listed = call(&svc, "GET", "/names?application=web&role=db", "", &[]).await;
    assert_eq!(
        listed.json["names"][0]["hostname"], "prod-web-002",
        "{}",
        listed.text
    );

    // The default template keeps the proof of concept's path.
    let plain = Service::start(&bao, &[]).await;
    assert_eq!(
        call(&plain, "POST", "/generate-name", &body("web"), &[])
            .await
            .hostname(),
        "web-app-prod-vm1"
    );
    assert_eq!(bao.counter("web", "app", "prod").await, Some(json!(2)));
}

#[tokio::test]
async fn a_template_that_would_exceed_63_characters_is_a_400_naming_the_limit() {
    let bao = Bao::start().await;
    let long = format!("{}-{{application}}-{{counter}}", "x".repeat(55));
    let svc = Service::start(&bao, &[("name_template", &long)]).await;
    let before = bao.snapshot().await;
    let r = call(&svc, "POST", "/generate-name", &body("webapp"), &[]).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        r.json["detail"].as_str().unwrap().contains("63"),
        "{}",
        r.text
    );
    assert_eq!(bao.snapshot().await, before);
}
