//! The `hostnaming` binary's start-up contract.

use std::process::Command;

fn hostnaming() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hostnaming"));
    for var in [
        "VAULT_ADDR",
        "VAULT_TOKEN",
        "SPIN_VARIABLE_VAULT_ADDR",
        "SPIN_VARIABLE_VAULT_TOKEN",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

#[test]
fn serve_without_a_required_variable_fails_at_start_naming_it() {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../spin.toml");
    let out = hostnaming()
        .args(["serve", "--listen", "127.0.0.1:0", "--manifest", manifest])
        .env("VAULT_ADDR", "http://127.0.0.1:8200")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`vault_token`"), "{stderr}");
    assert!(
        stderr.contains("SPIN_VARIABLE_VAULT_TOKEN or VAULT_TOKEN"),
        "{stderr}"
    );
}

#[test]
fn bootstrap_against_an_unreachable_vault_fails_with_the_address() {
    let out = hostnaming()
        .args([
            "bootstrap",
            "--vault-addr",
            "http://127.0.0.1:1",
            "--vault-token",
            "tok-secret-1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("http://127.0.0.1:1"), "{stderr}");
    assert!(!stderr.contains("tok-secret-1"), "{stderr}");
}
