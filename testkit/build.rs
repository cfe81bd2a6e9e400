//! Builds the wasm components the tests serve, so that a plain `cargo test` works on a
//! fresh clone: the naming component (`hostnaming`) and the benchmark's floor component
//! (`hostnaming-floor`), with the `component` profile, into the workspace's own target
//! folder, where spin.toml and bench/floor/spin.toml look for them.
//!
//! The nested cargo shares the target folder: it locks `target/wasm32-wasip2/component`
//! and `target/component`, never the folder of the profile that runs this script.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.parent().unwrap().to_path_buf();
    for watched in ["src", "wit", "Cargo.toml", "Cargo.lock", "bench/floor"] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    let target_dir = target_dir();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        .args([
            "build",
            "--target",
            "wasm32-wasip2",
            "--profile",
            "component",
        ])
        .args(["-p", "hostnaming", "-p", "hostnaming-floor"])
        .arg("--target-dir")
        .arg(&target_dir);
    // What the outer cargo set for this build script must not leak into the wasm build:
    // its rustflags, clippy's wrapper, and the package-specific variables.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let outer = key.starts_with("CARGO_")
            && key != "CARGO_HOME"
            && key != "CARGO_MAKEFLAGS"
            && !key.starts_with("CARGO_REGISTRIES_")
            && !key.starts_with("CARGO_NET_")
            && !key.starts_with("CARGO_HTTP_");
        if outer || key.starts_with("RUSTC_") || key == "RUSTFLAGS" {
            cmd.env_remove(key.as_ref());
        }
    }
    let status = cmd.status().expect("running cargo for the wasm components");
    assert!(
        status.success(),
        "building the wasm components failed (rustup target add wasm32-wasip2?)"
    );
    let out = target_dir.join("wasm32-wasip2/component");
    for (var, file) in [
        ("HOSTNAMING_COMPONENT", "hostnaming.wasm"),
        ("HOSTNAMING_FLOOR", "hostnaming_floor.wasm"),
    ] {
        let path = out.join(file);
        assert!(path.exists(), "{} was not built", path.display());
        println!("cargo:rustc-env={var}={}", path.display());
    }
}

/// The target folder this build runs in: OUT_DIR is `{target}/{profile}/build/{pkg}/out`.
fn target_dir() -> PathBuf {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    out.ancestors()
        .nth(4)
        .map(Path::to_path_buf)
        .expect("OUT_DIR is {target}/{profile}/build/{pkg}/out")
}
