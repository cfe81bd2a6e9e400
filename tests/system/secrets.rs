//! No secret reaches the service's output: the host and component logs (stdout and
//! stderr of a real `hostnaming serve`) are searched for every token used while requests
//! fail authentication or authorisation in both modes, and Vault refuses the service.

use hostnaming_testkit as common;

use std::path::PathBuf;
use std::process::{Child, Command};

use common::Bao;
use hostnaming::api::auth::token_hash;
use serde_json::json;

struct Served {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn serve(name: &str, env: &[(&str, &str)]) -> Served {
    let listen = format!("127.0.0.1:{}", common::free_port());
    let log = std::env::temp_dir().join(format!(
        "hostnaming-secrets-{}-{name}.log",
        std::process::id()
    ));
    let file = std::fs::File::create(&log).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hostnaming"));
    cmd.args(["serve", "--listen", &listen, "--manifest"])
        .arg(common::workspace().join("spin.toml"))
        .env_remove("VAULT_ADDR")
        .env_remove("VAULT_TOKEN")
        .stdout(file.try_clone().unwrap())
        .stderr(file);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    common::wait_listening(&listen, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    Served {
        child,
        url: format!("http://{listen}"),
        log,
    }
}

#[tokio::test]
async fn no_token_appears_in_logs_or_answers_during_auth_failures() {
    let bao = Bao::start().await;
    let root = bao.client();
    root.call("PUT", "sys/policies/acl/team-web", Some(json!({"policy":
        r#"path "hostnaming/data/applications/web/*" { capabilities = ["create", "read", "update"] }"#})))
        .await
        .unwrap();
    let team_web = root.create_token(&["team-web"]).await.unwrap();
    let api_token = "hn_api_secret_alpha_93ab";
    let wrong_api_token = "hn_wrong_secret_beta_11cd";
    let bogus_service_token = "s.bogus-service-secret-6d2e";
    let body = json!({"application": "db", "role": "app", "environment": "prod"}).to_string();

    let tokens_mode = serve(
        "tokens",
        &[
            ("SPIN_VARIABLE_VAULT_ADDR", &bao.addr),
            ("SPIN_VARIABLE_VAULT_ALLOWED_HOST", &bao.addr),
            ("SPIN_VARIABLE_VAULT_TOKEN", &bao.service_token),
            (
                "SPIN_VARIABLE_API_TOKENS",
                &format!("{}:read", token_hash(api_token)),
            ),
        ],
    )
    .await;
    let pass_through = serve(
        "vault",
        &[
            ("SPIN_VARIABLE_VAULT_ADDR", &bao.addr),
            ("SPIN_VARIABLE_VAULT_ALLOWED_HOST", &bao.addr),
            ("SPIN_VARIABLE_VAULT_TOKEN", &bao.service_token),
            ("SPIN_VARIABLE_AUTH_MODE", "vault"),
        ],
    )
    .await;
    let refused_service = serve(
        "refused",
        &[
            ("SPIN_VARIABLE_VAULT_ADDR", &bao.addr),
            ("SPIN_VARIABLE_VAULT_ALLOWED_HOST", &bao.addr),
            ("SPIN_VARIABLE_VAULT_TOKEN", bogus_service_token),
        ],
    )
    .await;

    let generate = |svc: &Served| format!("{}/generate-name", svc.url);
    let mut answers = Vec::new();
    for (url, headers) in [
        (generate(&tokens_mode), vec![]),
        (
            generate(&tokens_mode),
            vec![("authorization", format!("Bearer {wrong_api_token}"))],
        ),
        (
            generate(&tokens_mode),
            vec![("authorization", format!("Bearer {api_token}"))],
        ),
        (
            generate(&pass_through),
            vec![("x-vault-token", team_web.clone())],
        ),
        (
            generate(&pass_through),
            vec![("x-vault-token", bogus_service_token.to_string())],
        ),
        (generate(&refused_service), vec![]),
        (
            format!("{}/names/db-app-prod-vm1", refused_service.url),
            vec![],
        ),
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = common::request_with("POST", &url, &body, &headers).await;
        assert!(r.status >= 400, "{url}: {}", r.text);
        answers.push(format!("{} {:?} {}", r.status, r.headers, r.text));
    }
    let statuses: Vec<&str> = answers.iter().map(|a| &a[..3]).collect();
    assert_eq!(statuses, ["401", "401", "403", "403", "403", "503", "405"]);

    let mut logs = String::new();
    for svc in [tokens_mode, pass_through, refused_service] {
        drop_and_read(svc, &mut logs);
    }
    assert!(
        logs.contains("Vault refused the service's token"),
        "the refusal is logged: {logs}"
    );
    for secret in [
        api_token,
        wrong_api_token,
        bogus_service_token,
        &team_web,
        &bao.service_token,
        &bao.token,
    ] {
        assert!(!logs.contains(secret), "a token is in the logs:\n{logs}");
        for a in &answers {
            assert!(!a.contains(secret), "a token is in an answer: {a}");
        }
    }
}

fn drop_and_read(svc: Served, logs: &mut String) {
    let path = svc.log.clone();
    drop(svc); // kill first, so the log is complete
    logs.push_str(&std::fs::read_to_string(&path).unwrap());
    let _ = std::fs::remove_file(path);
}
