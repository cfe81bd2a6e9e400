//! Prepares what the component embeds: the web page's files gzip-compressed (every browser
//! accepts gzip; the component is smaller and a first load lighter) and the OpenAPI document
//! without its indentation (served re-serialised anyway). Sizes: docs/web.md.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // A directory is watched whole: any file changed under ui/ reruns this.
    println!("cargo:rerun-if-changed=ui");
    println!("cargo:rerun-if-changed=src/api/openapi.json");

    fs::create_dir_all(out.join("ui")).unwrap();
    for entry in fs::read_dir("ui").expect("ui/ holds the web page") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        fs::write(out.join("ui").join(format!("{name}.gz")), gzip(&path)).unwrap();
    }

    let openapi = fs::read_to_string("src/api/openapi.json").unwrap();
    let doc: serde_json::Value =
        serde_json::from_str(&openapi).expect("src/api/openapi.json is valid JSON");
    fs::write(out.join("openapi.json"), doc.to_string()).unwrap();
}

/// The file gzip-compressed, the same bytes on every build (no time stamp, no name).
fn gzip(path: &Path) -> Vec<u8> {
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    encoder.write_all(&fs::read(path).unwrap()).unwrap();
    encoder.finish().unwrap()
}
