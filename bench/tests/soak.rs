//! `hostnaming-bench soak` end to end, small: its own OpenBao and service, one counter, blocks
//! reported, every number accounted for, and the counter's Vault metadata bounded.

use std::process::Command;

use serde_json::Value;

#[test]
fn a_short_soak_accounts_for_every_number_and_keeps_the_metadata_bounded() {
    let dir = std::env::temp_dir().join(format!("hostnaming-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("soak.json");
    let out = Command::new(env!("CARGO_BIN_EXE_hostnaming-bench"))
        .args(["soak", "--count", "600", "--block", "150", "--clients", "4"])
        .arg("--manifest")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../spin.toml"))
        .arg("--json")
        .arg(&json)
        .env_remove("VAULT_ADDR")
        .env_remove("VAULT_TOKEN")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let blocks = report["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 4, "{stdout}");
    assert_eq!(report["duplicates"], 0);
    assert_eq!(report["missing"], 0);
    assert_eq!(report["final_counter"], 601);
    for b in blocks {
        assert_eq!(b["failures"], 0, "{b}");
        assert!(b["p50_ms"].as_f64().unwrap() > 0.0, "{b}");
        assert!(b["service_rss_mib"].as_f64().unwrap() > 1.0, "{b}");
        // KV v2 keeps a bounded number of versions, so the key's metadata stops growing.
        assert!(b["versions_kept"].as_u64().unwrap() <= 10, "{b}");
    }
    let bytes: Vec<u64> = blocks
        .iter()
        .map(|b| b["metadata_bytes"].as_u64().unwrap())
        .collect();
    assert!(
        bytes.iter().max().unwrap() - bytes.iter().min().unwrap() < 64,
        "metadata grew: {bytes:?}"
    );
    assert!(
        stdout.contains("0 duplicates, 0 numbers missing"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
