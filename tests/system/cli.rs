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

/// Runs `cmd` and returns its standard output, failing with both outputs unless it
/// succeeded.
fn succeeds(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
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
fn serve_refuses_vault_nodes_that_allowed_outbound_hosts_would_block() {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../spin.toml");
    let serve = |allowed: Option<&str>| {
        let mut cmd = hostnaming();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--manifest", manifest])
            .env("VAULT_ADDR", "http://127.0.0.1:8200, http://10.9.0.2:8200")
            .env("VAULT_TOKEN", "t")
            .stderr(std::process::Stdio::piped());
        if let Some(a) = allowed {
            cmd.env("SPIN_VARIABLE_VAULT_ALLOWED_HOST", a);
        }
        cmd.spawn().unwrap()
    };
    let out = serve(None).wait_with_output().unwrap();
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
    let mut child = serve(Some("http://0.0.0.0/0:8200"));
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let serving = lines.find_map(|l| l.ok().filter(|l| l.contains("serving on")));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(serving.is_some(), "serve did not start");
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

#[test]
fn a_bad_name_template_stops_serve_at_start_pointing_at_the_problem() {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../spin.toml");
    let out = hostnaming()
        .args(["serve", "--listen", "127.0.0.1:0", "--manifest", manifest])
        .env("VAULT_TOKEN", "t")
        .env(
            "SPIN_VARIABLE_NAME_TEMPLATE",
            "{application}-{rol}-{counter}",
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown placeholder {rol}"), "{stderr}");
    assert!(stderr.contains("at character 15"), "{stderr}");
    assert!(
        stderr.contains(&format!("\n  {}^", " ".repeat(14))),
        "{stderr}"
    );
}

#[test]
fn api_tokens_given_in_clear_stop_serve_at_start() {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../spin.toml");
    let out = hostnaming()
        .args(["serve", "--listen", "127.0.0.1:0", "--manifest", manifest])
        .env("VAULT_TOKEN", "t")
        .env("SPIN_VARIABLE_API_TOKENS", "hn_cleartext_token:generate")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SHA-256"), "{stderr}");
    assert!(!stderr.contains("hn_cleartext_token"), "{stderr}");
}

#[test]
fn serving_with_no_api_tokens_warns_loudly_at_start() {
    use std::io::{BufRead, BufReader};
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../spin.toml");
    let mut child = hostnaming()
        .args(["serve", "--listen", "127.0.0.1:0", "--manifest", manifest])
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
fn the_token_command_prints_a_token_and_its_hash_entry() {
    let out = hostnaming()
        .args(["token", "--scopes", "generate,admin"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let token = stdout.lines().next().unwrap().rsplit(' ').next().unwrap();
    let entry = stdout.lines().nth(1).unwrap().rsplit(' ').next().unwrap();
    assert!(token.starts_with("hn_") && token.len() == 51, "{stdout}");
    assert_eq!(
        entry,
        format!("{}:generate,admin", hostnaming::auth::token_hash(token))
    );
    let tokens = hostnaming::auth::ApiTokens::parse(entry).unwrap();
    let header = format!("Bearer {token}");
    assert_eq!(
        tokens.authorize(Some(&header), hostnaming::auth::Scope::Admin),
        Ok(())
    );
}

#[test]
fn bench_runs_its_own_openbao_and_service_and_reports_every_allocation() {
    let dir = std::env::temp_dir().join(format!("hostnaming-bench-test-{}", std::process::id()));
    let json = dir.join("results.json");
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../spin.toml");
    let stdout = succeeds(
        hostnaming()
            .args([
                "bench",
                "--clients",
                "4",
                "--requests",
                "40",
                "--tuples",
                "2",
                "--manifest",
                manifest,
                "--hop",
                "--json",
            ])
            .arg(&json),
    );
    assert!(
        stdout.contains("ratio") && stdout.contains("host overhead"),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let row = &report["rows"][0];
    for side in ["service", "ceiling", "hop"] {
        // Three rounds of 14, 13 and 13 requests add up to every allocation.
        assert_eq!(row[side]["statuses"]["200"], 40, "{side}: {row}");
        assert_eq!(row[side]["duplicates"], 0, "{side}");
        assert_eq!(
            row[side]["gaps"], 0,
            "{side}: rounds continue the same tuples"
        );
        assert!(row[side]["rate"].as_f64().unwrap() > 0.0, "{side}");
        // The service and the hop server report their lost races in a header, the ceiling
        // from the allocation itself.
        let lost = row[side]["lost_races"].as_f64();
        assert!(lost.is_some_and(|n| n >= 0.0), "{side}: {row}");
    }
    assert!(stdout.contains("races lost per name issued"), "{stdout}");
    // The benchmark started OpenBao and the service, so it accounts for their CPU too.
    let vault = |side: &str| row[side]["vault_ms"].as_f64().unwrap_or(0.0);
    assert!(
        row["service_cpu"]["service_ms"].as_f64().unwrap_or(0.0) > 0.0,
        "{row}"
    );
    assert!(row["service_cpu"]["vault_ms"].is_number(), "{row}");
    assert!(
        vault("ceiling_cpu") + vault("service_cpu") > 0.0,
        "OpenBao did the work: {row}"
    );
    assert!(row["ceiling_cpu"]["service_ms"].is_number(), "{row}");
    assert!(stdout.contains("CPU per allocation"), "{stdout}");
    // The hop server ran as a process of its own, against the same OpenBao, and its CPU is
    // accounted where the service's is on the other sides.
    assert!(stdout.contains("The HTTP hop alone"), "{stdout}");
    assert!(row["hop_ratio"].as_f64().unwrap() > 0.0, "{row}");
    assert!(row["hop_cpu"]["service_ms"].is_number(), "{row}");
    assert!(report["component_bytes"].as_u64().unwrap() > 0);
    assert!(report["host_overhead_p50_us"].as_f64().unwrap() > 0.0);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bench_loads_the_floor_component_through_the_same_host() {
    // The floor exports only wasi:http, as any Spin component may: the host serves it like
    // the service, and the benchmark reports what it can and says what it cannot.
    let dir = std::env::temp_dir().join(format!("hostnaming-floor-test-{}", std::process::id()));
    let json = dir.join("results.json");
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../bench/floor/spin.toml");
    let stdout = succeeds(
        hostnaming()
            .args([
                "bench",
                "--clients",
                "1",
                "--requests",
                "12",
                "--rounds",
                "2",
                "--manifest",
                manifest,
                "--json",
            ])
            .arg(&json),
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let service = &report["rows"][0]["service"];
    assert_eq!(service["statuses"]["200"], 12, "{service}");
    assert_eq!(service["duplicates"], 0, "{service}");
    assert_eq!(
        service["gaps"], 0,
        "the floor takes every number in turn: {service}"
    );
    // Nor does the floor say how many races it lost: no figure rather than a zero.
    assert!(service["lost_races"].is_null(), "{service}");
    // Only our own component has the typed export the overhead is measured through.
    assert!(report["host_overhead_p50_us"].is_null(), "{report}");
    assert!(stdout.contains("Vault stubbed) p50 n/a"), "{stdout}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bench_measures_the_host_overhead_after_idle_pauses_when_asked() {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../spin.toml");
    let stdout = succeeds(hostnaming().args([
        "bench",
        "--manifest",
        manifest,
        "--overhead-only",
        "20",
        "--idle-us",
        "300",
    ]));
    let line = stdout
        .lines()
        .find(|l| l.starts_with("host overhead"))
        .unwrap_or_else(|| panic!("{stdout}"));
    let figure = |after: &str| -> f64 {
        line.split(after)
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no figure after {after:?}: {line}"))
    };
    // The pause is measured, not just asked for: each request really followed one.
    assert!(figure("a pause of mean ") >= 300.0, "{line}");
    assert!(figure("p50 ") > 0.0, "{line}");
}

#[test]
fn bench_refuses_flags_that_would_do_nothing() {
    for args in [
        &["bench", "--idle-us", "300"][..],
        &["bench", "--overhead-only", "10", "--hop"][..],
    ] {
        let out = hostnaming().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} ran");
        assert!(stderr.contains("--overhead-only"), "{args:?}: {stderr}");
    }
}
