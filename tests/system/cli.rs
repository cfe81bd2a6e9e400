//! The `hostnaming` binary's start-up contract.

use std::process::Command;

fn hostnaming() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hostnaming"));
    for var in [
        "VAULT_ADDR",
        "VAULT_TOKEN",
        "SPIN_VARIABLE_VAULT_ADDR",
        "SPIN_VARIABLE_VAULT_TOKEN",
        "SPIN_VARIABLE_VAULT_ALLOWED_HOST",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// `hostnaming serve` of the repository's spin.toml, on a port of its choosing.
fn serve() -> Command {
    let mut cmd = hostnaming();
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../spin.toml");
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--manifest", manifest]);
    cmd
}

/// Runs `cmd`, which must fail, and returns what it wrote to standard error.
fn failure(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn serve_without_a_required_variable_fails_at_start_naming_it() {
    let stderr = failure(serve().env("VAULT_ADDR", "http://127.0.0.1:8200"));
    assert!(stderr.contains("`vault_token`"), "{stderr}");
    assert!(
        stderr.contains("SPIN_VARIABLE_VAULT_TOKEN or VAULT_TOKEN"),
        "{stderr}"
    );
}

#[test]
fn serve_refuses_vault_nodes_that_allowed_outbound_hosts_would_block() {
    let start = |allowed: Option<&str>| {
        let mut cmd = serve();
        cmd.env("VAULT_ADDR", "http://127.0.0.1:8200, http://10.9.0.2:8200")
            .env("VAULT_TOKEN", "t")
            .stderr(std::process::Stdio::piped());
        if let Some(a) = allowed {
            cmd.env("SPIN_VARIABLE_VAULT_ALLOWED_HOST", a);
        }
        cmd.spawn().unwrap()
    };
    let out = start(None).wait_with_output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("http://10.9.0.2:8200"), "{stderr}");
    assert!(
        !stderr.contains("127.0.0.1:8200,"),
        "only the refused node: {stderr}"
    );
    assert!(stderr.contains("vault_allowed_host"), "{stderr}");

    // A network pattern covering both nodes is accepted: serve gets as far as listening.
    use std::io::{BufRead, BufReader};
    let mut child = start(Some("http://0.0.0.0/0:8200"));
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let serving = lines.find_map(|l| l.ok().filter(|l| l.contains("serving on")));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(serving.is_some(), "serve did not start");
}

#[test]
fn bootstrap_against_an_unreachable_vault_fails_with_the_address() {
    let stderr = failure(hostnaming().args([
        "bootstrap",
        "--vault-addr",
        "http://127.0.0.1:1",
        "--vault-token",
        "tok-secret-1",
    ]));
    assert!(stderr.contains("http://127.0.0.1:1"), "{stderr}");
    assert!(!stderr.contains("tok-secret-1"), "{stderr}");
}

#[test]
fn a_bad_name_template_stops_serve_at_start_pointing_at_the_problem() {
    let stderr = failure(serve().env("VAULT_TOKEN", "t").env(
        "SPIN_VARIABLE_NAME_TEMPLATE",
        "{application}-{rol}-{counter}",
    ));
    assert!(stderr.contains("unknown placeholder {rol}"), "{stderr}");
    assert!(stderr.contains("at character 15"), "{stderr}");
    assert!(
        stderr.contains(&format!("\n  {}^", " ".repeat(14))),
        "{stderr}"
    );
}

#[test]
fn api_tokens_given_in_clear_stop_serve_at_start() {
    let stderr = failure(
        serve()
            .env("VAULT_TOKEN", "t")
            .env("SPIN_VARIABLE_API_TOKENS", "hn_cleartext_token:generate"),
    );
    assert!(stderr.contains("SHA-256"), "{stderr}");
    assert!(!stderr.contains("hn_cleartext_token"), "{stderr}");
}

#[test]
fn serving_with_no_api_tokens_warns_loudly_at_start() {
    use std::io::{BufRead, BufReader};
    let mut child = serve()
        .env("VAULT_TOKEN", "t")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        first.contains("WARNING") && first.contains("ANYONE"),
        "{first}"
    );
}

#[test]
fn the_token_command_prints_a_token_and_its_named_hash_entry() {
    let out = hostnaming()
        .args(["token", "--name", "ci-prod", "--scopes", "generate,admin"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let token = stdout.lines().next().unwrap().rsplit(' ').next().unwrap();
    let entry = stdout.lines().nth(1).unwrap().rsplit(' ').next().unwrap();
    assert!(token.starts_with("hn_") && token.len() == 51, "{stdout}");
    assert_eq!(
        entry,
        format!(
            "ci-prod={}:generate,admin",
            hostnaming::api::auth::token_hash(token)
        )
    );
    let tokens = hostnaming::api::auth::ApiTokens::parse(entry).unwrap();
    let header = format!("Bearer {token}");
    assert_eq!(
        tokens.authorize(Some(&header), hostnaming::api::auth::Scope::Admin),
        Ok("ci-prod".to_string())
    );
    let refused = hostnaming()
        .args(["token", "--name", "ci prod"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("token name"));
}
