//! What the provider tells the service about itself, and what it tells users when the
//! service says no: its version and Terraform's in `User-Agent`; errors on the input they
//! are about, with the service's own words; 401s and 403s naming the setting to fix; a 503
//! after retries saying what the service reported.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::*;

const RESOURCE: &str = r#"
terraform {
  required_providers {
    naming = { source = "local/terraform-providers/naming" }
  }
}

resource "naming" "web" {
  application = "web"
  role        = "app"
  environment = "prod"
}
"#;

/// A proxy in front of the service that keeps every request's `User-Agent`: what the
/// service's request log would show.
async fn recording_proxy(upstream: String) -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let kept = seen.clone();
    tokio::spawn(async move {
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (client, kept, upstream) = (client.clone(), kept.clone(), upstream.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let (client, kept, upstream) =
                            (client.clone(), kept.clone(), upstream.clone());
                        async move {
                            let agent = req.headers().get("user-agent");
                            kept.lock().unwrap().push(
                                agent.map_or(String::new(), |v| v.to_str().unwrap().to_string()),
                            );
                            let (mut parts, body) = req.into_parts();
                            let path = parts.uri.path_and_query().unwrap().to_string();
                            parts.uri = format!("{upstream}{path}").parse().unwrap();
                            let body = body.collect().await.unwrap().to_bytes();
                            let answer = client
                                .request(hyper::Request::from_parts(parts, Full::new(body)))
                                .await
                                .unwrap();
                            let (parts, body) = answer.into_parts();
                            let body = body.collect().await.unwrap().to_bytes();
                            Ok::<_, Infallible>(hyper::Response::from_parts(parts, Full::new(body)))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provider_sends_its_version_and_terraforms_in_the_user_agent() {
    let version = std::process::Command::new(PROVIDER)
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("terraform-provider-naming {}", env!("CARGO_PKG_VERSION"))
    );
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    let (url, seen) = recording_proxy(svc.url.clone()).await;
    let tf = Tf::new("proof-of-concept", &[]).env("HOSTNAMING_URL", &url);
    tf.write("main.tf", RESOURCE);
    tf.apply(&[]).await;
    let terraform_version: Value =
        serde_json::from_str(&tf.ok(&["version", "-json"]).await.text).unwrap();
    let expected = format!(
        "terraform-provider-naming/{} terraform/{}",
        env!("CARGO_PKG_VERSION"),
        terraform_version["terraform_version"].as_str().unwrap()
    );
    let seen = seen.lock().unwrap().clone();
    assert!(!seen.is_empty());
    assert!(
        seen.iter().all(|agent| *agent == expected),
        "{expected} != {seen:?}"
    );
}

fn scoped(name: &str, token: &str, scopes: &str) -> String {
    use sha2::{Digest, Sha256};
    let hash: String = Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{name}={hash}:{scopes}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_or_403_names_the_token_setting_to_fix() {
    let bao = Bao::start().await;
    let tokens = [
        scoped("reader", "hn_reader", "read"),
        scoped("ci", "hn_ci", "generate,read,admin"),
    ]
    .join(";");
    let svc = Service::start(&bao, &[("api_tokens", &tokens)]).await;
    let attempt = |env: &[(&str, &str)]| {
        let mut tf = Tf::new("proof-of-concept", &[]).env("HOSTNAMING_URL", &svc.url);
        for (k, v) in env {
            tf = tf.env(k, v);
        }
        tf.write("main.tf", RESOURCE);
        tf
    };
    let refused = |tf: Tf| async move {
        let run = tf.fails(&unattended("apply", &[])).await;
        // Nothing was created: no state at all, or an empty one.
        let state = tf.run(&["state", "list"]).await;
        assert!(
            !state.text.contains("naming."),
            "{}\n{}",
            run.text,
            state.text
        );
        run.flat()
    };
    let none = refused(attempt(&[])).await;
    assert!(
        none.contains("(401)") && none.contains("Set the provider's `token` (or HOSTNAMING_TOKEN)"),
        "{none}"
    );
    assert!(none.contains("with naming.web"), "{none}");
    let unknown = refused(attempt(&[("HOSTNAMING_TOKEN", "hn_unknown")])).await;
    assert!(
        unknown.contains("does not know the API token in the provider's `token`"),
        "{unknown}"
    );
    let reader = refused(attempt(&[("HOSTNAMING_TOKEN", "hn_reader")])).await;
    assert!(
        reader.contains("(403)") && reader.contains("this token lacks the `generate` scope"),
        "{reader}"
    );
    assert!(
        reader.contains("use a token whose `api_tokens` entry has it"),
        "{reader}"
    );
    let both = refused(attempt(&[
        ("HOSTNAMING_TOKEN", "hn_ci"),
        ("HOSTNAMING_VAULT_TOKEN", "s.x"),
    ]))
    .await;
    assert!(
        both.contains("Invalid provider setting `vault_token`"),
        "{both}"
    );

    // A service in pass-through mode asks for a Vault token, and Vault's policies decide.
    let vault = Service::start(&bao, &[("auth_mode", "vault")]).await;
    let attempt = |token: Option<&str>| {
        let mut tf = Tf::new("proof-of-concept", &[]).env("HOSTNAMING_URL", &vault.url);
        if let Some(token) = token {
            tf = tf.env("HOSTNAMING_VAULT_TOKEN", token);
        }
        tf.write("main.tf", RESOURCE);
        tf
    };
    let none = refused(attempt(None)).await;
    assert!(
        none.contains("set the provider's `vault_token` (or HOSTNAMING_VAULT_TOKEN)"),
        "{none}"
    );
    let powerless = bao.client().create_token(&["default"]).await.unwrap();
    let denied = refused(attempt(Some(&powerless))).await;
    assert!(
        denied.contains("(403)")
            && denied.contains(
                "Vault's policies do not let the Vault token in the provider's `vault_token`"
            ),
        "{denied}"
    );
    // The root token may do anything: the name is issued through the caller's own token.
    let tf = attempt(Some(&bao.token));
    tf.apply(&[]).await;
    assert_eq!(tf.state_list().await, vec!["naming.web".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_point_at_the_input_and_a_503_after_retries_says_what_the_service_reported() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    // A tag value over the service's limit: the error is on that tag's line.
    let tf = Tf::new("proof-of-concept", &[]).env("HOSTNAMING_URL", &svc.url);
    let long = "x".repeat(300);
    tf.write(
        "main.tf",
        &RESOURCE.replace(
            "environment = \"prod\"\n",
            &format!("environment = \"prod\"\n  tags = {{\n    team = \"{long}\"\n  }}\n"),
        ),
    );
    let run = tf.fails(&unattended("apply", &[])).await;
    let flat = run.flat();
    assert!(
        flat.contains("`tags.team` is 300 characters long"),
        "{}",
        run.text
    );
    assert!(
        flat.contains("with naming.web") && flat.contains("tags = {"),
        "{}",
        run.text
    );

    // Vault down behind a running service: 503s, retried, then the service's own words.
    let down = Service::start(&bao, &[("vault_addr", "http://127.0.0.1:1")]).await;
    let tf = Tf::new("proof-of-concept", &[]).env("HOSTNAMING_URL", &down.url);
    tf.write("main.tf", RESOURCE);
    tf.write(
        "quick_override.tf",
        "provider \"naming\" {\n  retry_timeout_seconds = 3\n}\n",
    );
    let run = tf.fails(&unattended("apply", &[])).await;
    let flat = run.flat();
    assert!(flat.contains("(503)"), "{}", run.text);
    assert!(
        flat.contains("Vault at http://127.0.0.1:1 is unreachable"),
        "{}",
        run.text
    );
    assert!(flat.contains("attempts over"), "{}", run.text);
    assert!(tf.state_list().await.is_empty());
}
