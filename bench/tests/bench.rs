//! The `hostnaming-bench bench` command end to end: its own OpenBao and service, every
//! allocation accounted for, the floor served through the same host, and its flags.

use std::process::Command;

/// The benchmark, blind to any Vault or Spin variable of the caller's: it must start and
/// configure everything itself.
fn bench() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hostnaming-bench"));
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text.starts_with("VAULT_") || text.starts_with("SPIN_VARIABLE_") {
            cmd.env_remove(&name);
        }
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

/// Runs `bench` with `args` on the component of `manifest` (a path below this package),
/// its JSON report in a folder of its own named after `tag`; returns its standard output
/// and the report.
fn bench_report(tag: &str, manifest: &str, args: &[&str]) -> (String, serde_json::Value) {
    let dir = std::env::temp_dir().join(format!("hostnaming-{tag}-test-{}", std::process::id()));
    let json = dir.join("results.json");
    let manifest = format!("{}/{manifest}", env!("CARGO_MANIFEST_DIR"));
    let stdout = succeeds(
        bench()
            .arg("bench")
            .args(args)
            .args(["--manifest", &manifest, "--json"])
            .arg(&json),
    );
    let report = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(dir);
    (stdout, report)
}

#[test]
fn bench_runs_its_own_openbao_and_service_and_reports_every_allocation() {
    let (stdout, report) = bench_report(
        "bench",
        "../spin.toml",
        &[
            "--clients",
            "4",
            "--requests",
            "40",
            "--tuples",
            "2",
            "--hop",
        ],
    );
    assert!(
        stdout.contains("ratio") && stdout.contains("host overhead"),
        "{stdout}"
    );
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
}

#[test]
fn bench_loads_the_floor_component_through_the_same_host() {
    // The floor exports only wasi:http, as any Spin component may: the host serves it like
    // the service, and the benchmark reports what it can and says what it cannot.
    let (stdout, report) = bench_report(
        "floor",
        "floor/spin.toml",
        &["--clients", "1", "--requests", "12", "--rounds", "2"],
    );
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
}

#[test]
fn bench_measures_the_host_overhead_after_idle_pauses_when_asked() {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../spin.toml");
    let stdout = succeeds(bench().args([
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
        let out = bench().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} ran");
        assert!(stderr.contains("--overhead-only"), "{args:?}: {stderr}");
    }
}

#[test]
fn the_registry_bench_measures_metadata_search_and_a_streamed_export() {
    let dir = std::env::temp_dir().join(format!("hostnaming-registry-test-{}", std::process::id()));
    let json = dir.join("registry.json");
    let manifest = format!("{}/../spin.toml", env!("CARGO_MANIFEST_DIR"));
    let stdout = succeeds(
        bench()
            .arg("registry")
            .args([
                "--names",
                "400",
                "--allocations",
                "20",
                "--manifest",
                &manifest,
                "--json",
            ])
            .arg(&json),
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(dir);
    assert!(stdout.contains("with metadata"), "{stdout}");
    assert!(report["plain_per_second"].as_f64().unwrap() > 0.0);
    assert!(report["metadata_per_second"].as_f64().unwrap() > 0.0);
    // 40 from the rates, then batches of ten up to 400.
    assert_eq!(report["names"], 400);
    assert_eq!(report["export"]["names"], 400);
    assert!(report["export"]["bytes"].as_u64().unwrap() > 400 * 40);
    assert!(
        report["export"]["rss_peak_mib"].as_f64().unwrap()
            >= report["export"]["rss_before_mib"].as_f64().unwrap()
    );
    assert!(report["first_page_requests"].as_u64().unwrap() >= 1);
}
