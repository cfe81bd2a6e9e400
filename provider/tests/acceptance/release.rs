//! `scripts/release-provider`: archives in the Terraform registry's layout, checked file by
//! file, signed, and installed by the real `terraform` from a packed filesystem mirror the
//! way a private mirror serves them, then applied against the real service.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use sha2::{Digest, Sha256};

use crate::common::{workspace, Bao, Service};
use crate::{platform, record, Tf, PROVIDER};

const NAME: &str = "terraform-provider-naming";
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A throwaway GnuPG home with one signing key; its agent is stopped when dropped.
struct Gpg {
    home: PathBuf,
    fingerprint: String,
}

impl Gpg {
    async fn new(home: PathBuf) -> Gpg {
        std::fs::create_dir_all(&home).unwrap();
        // gpg refuses a home others can read.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
        let mut gpg = Gpg {
            home,
            fingerprint: String::new(),
        };
        succeeds(
            "gpg --quick-gen-key",
            gpg.run(&[
                "--passphrase",
                "",
                "--quick-gen-key",
                "hostnaming test <test@example.invalid>",
                "ed25519",
                "sign",
                "never",
            ])
            .await,
        );
        let keys = succeeds(
            "gpg --list-keys",
            gpg.run(&["--list-keys", "--with-colons"]).await,
        );
        gpg.fingerprint = keys
            .lines()
            .find_map(|line| line.strip_prefix("fpr:"))
            .and_then(|rest| rest.split(':').find(|field| !field.is_empty()))
            .unwrap_or_else(|| panic!("no fingerprint in:\n{keys}"))
            .to_string();
        gpg
    }

    async fn run(&self, args: &[&str]) -> Output {
        tokio::process::Command::new("gpg")
            .arg("--batch")
            .args(args)
            .env("GNUPGHOME", &self.home)
            .output()
            .await
            .expect("running gpg")
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = std::process::Command::new("gpgconf")
            .args(["--kill", "all"])
            .env("GNUPGHOME", &self.home)
            .output();
    }
}

/// The command's stdout and stderr, after asserting it exited 0.
fn succeeds(what: &str, out: Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{text}",
        out.status
    );
    text
}

/// `scripts/release-provider OUTDIR --binary PROVIDER ...`: packages the binary the tests
/// built rather than building a release one.
async fn release(out: &Path, platform: &str, gpg: &Gpg) -> String {
    let script = workspace().join("scripts/release-provider");
    let output = tokio::process::Command::new(&script)
        .arg(out)
        .args(["--binary", PROVIDER, "--platforms", platform])
        .args(["--gpg-key", &gpg.fingerprint])
        .env("GNUPGHOME", &gpg.home)
        .env_remove("GPG_KEY_ID")
        .output()
        .await
        .expect("running scripts/release-provider");
    succeeds("scripts/release-provider", output)
}

fn sha256(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// SHA256SUMS as file name -> hash, checking sha256sum's "HASH  NAME" format.
fn sums(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|line| {
            let (hash, file) = line
                .split_once("  ")
                .unwrap_or_else(|| panic!("not a sha256sum line: {line:?}"));
            assert!(
                hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
                "{line:?}"
            );
            assert!(!file.contains('/'), "names only, no paths: {line:?}");
            (file.to_string(), hash.to_string())
        })
        .collect()
}

/// The zip's entries as (name, Unix mode), read by Python's zipfile (no zip crate here).
async fn zip_entries(zip: &Path) -> Vec<(String, u32)> {
    let out = tokio::process::Command::new("python3")
        .args([
            "-c",
            "import json, sys, zipfile\n\
             print(json.dumps([[i.filename, i.external_attr >> 16]\n\
                               for i in zipfile.ZipFile(sys.argv[1]).infolist()]))",
        ])
        .arg(zip)
        .output()
        .await
        .expect("running python3");
    serde_json::from_str(&succeeds("reading the zip", out)).unwrap()
}

/// The quoted hashes in a lock file.
fn lock_hashes(lock: &str) -> Vec<String> {
    lock.split('"')
        .filter(|s| s.starts_with("h1:") || s.starts_with("zh:"))
        .map(str::to_string)
        .collect()
}

/// Standard base64 with padding, as Terraform writes h1: hashes.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_archives_are_signed_and_install_from_a_packed_mirror() {
    let tf = Tf::new("resources/naming", &["resource.tf"]);
    let platform = platform();
    let gpg = Gpg::new(tf.dir.join("gnupg")).await;
    let out = tf.dir.join("release");
    let printed = release(&out, &platform, &gpg).await;

    let zip = format!("{NAME}_{VERSION}_{platform}.zip");
    let manifest = format!("{NAME}_{VERSION}_manifest.json");
    let sums_file = format!("{NAME}_{VERSION}_SHA256SUMS");
    let sig = format!("{sums_file}.sig");
    let mut written: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    written.sort();
    let mut expected = vec![
        zip.clone(),
        manifest.clone(),
        sums_file.clone(),
        sig.clone(),
    ];
    expected.sort();
    assert_eq!(written, expected);
    for file in &expected {
        assert!(
            printed.contains(file.as_str()),
            "{file} not reported:\n{printed}"
        );
    }

    // One executable, named as Terraform expects to find it in an unpacked package.
    assert_eq!(
        zip_entries(&out.join(&zip)).await,
        [(format!("{NAME}_v{VERSION}"), 0o100755)]
    );
    let manifest_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join(&manifest)).unwrap()).unwrap();
    assert_eq!(
        manifest_json,
        serde_json::json!({"version": 1, "metadata": {"protocol_versions": ["6.0"]}})
    );

    let listed = sums(&out.join(&sums_file));
    assert_eq!(
        listed.keys().collect::<Vec<_>>(),
        {
            let mut files = vec![&zip, &manifest];
            files.sort();
            files
        },
        "SHA256SUMS lists the zips and the manifest"
    );
    for (file, hash) in &listed {
        assert_eq!(hash, &sha256(&out.join(file)), "{file}");
    }

    let sig_path = out.join(&sig).display().to_string();
    let sums_path = out.join(&sums_file).display().to_string();
    let verified = gpg.run(&["--verify", &sig_path, &sums_path]).await;
    let text = succeeds("gpg --verify", verified);
    assert!(text.contains(&gpg.fingerprint), "{text}");
    let tampered = tf.dir.join("tampered_SHA256SUMS");
    std::fs::write(
        &tampered,
        std::fs::read_to_string(out.join(&sums_file))
            .unwrap()
            .replacen(&listed[&zip], &"0".repeat(64), 1),
    )
    .unwrap();
    let rejected = gpg
        .run(&["--verify", &sig_path, &tampered.display().to_string()])
        .await;
    assert!(
        !rejected.status.success(),
        "a tampered SHA256SUMS verified:\n{}",
        String::from_utf8_lossy(&rejected.stderr)
    );

    // The same binary packs to the same bytes, so a rebuild from the same commit keeps
    // users' lock files valid.
    let again = tf.dir.join("release-again");
    release(&again, &platform, &gpg).await;
    assert_eq!(sums(&again.join(&sums_file)), listed);

    // A packed filesystem mirror: HOSTNAME/NAMESPACE/TYPE/ holding the registry's zips.
    let mirror = tf.dir.join("mirror");
    let package_dir = mirror.join("local/terraform-providers/naming");
    std::fs::create_dir_all(&package_dir).unwrap();
    std::fs::copy(out.join(&zip), package_dir.join(&zip)).unwrap();
    tf.use_filesystem_mirror(&mirror);
    tf.write(
        "main.tf",
        "terraform {\n  required_providers {\n    naming = {\n      \
         source  = \"local/terraform-providers/naming\"\n      version = \"~> 0.1\"\n    \
         }\n  }\n}\n\nprovider \"naming\" {}\n",
    );

    let mirror_arg = format!("-fs-mirror={}", mirror.display());
    let platform_arg = format!("-platform={platform}");
    tf.ok(&[
        "providers",
        "lock",
        "-no-color",
        &mirror_arg,
        &platform_arg,
        "local/terraform-providers/naming",
    ])
    .await;
    let lock = std::fs::read_to_string(tf.dir.join(".terraform.lock.hcl")).unwrap();
    assert!(
        lock.contains(&format!(
            "provider \"local/terraform-providers/naming\" {{\n  version     = \"{VERSION}\""
        )),
        "{lock}"
    );
    // From a filesystem mirror Terraform records only the h1: hash, of the unpacked files;
    // zh: hashes (a zip's sha256) come from a registry's or a network mirror's SHA256SUMS.
    let hashes = lock_hashes(&lock);
    let h1 = format!(
        "h1:{}",
        base64(&Sha256::digest(format!(
            "{}  {NAME}_v{VERSION}\n",
            sha256(Path::new(PROVIDER))
        )))
    );
    assert_eq!(hashes, std::slice::from_ref(&h1), "{lock}");

    // A lock file holding SHA256SUMS' line for the zip, as one written from a network
    // mirror does: init installs the packed zip only if that zh: hash is its own.
    let providers = tf.dir.join(".terraform/providers");
    let with = |hash: &str| lock.replace(&h1, hash);
    tf.write(
        ".terraform.lock.hcl",
        &with(&format!("zh:{}", "0".repeat(64))),
    );
    let refused = tf.fails(&["init", "-input=false", "-no-color"]).await;
    assert!(
        refused.flat().contains(
            "doesn't match any of the checksums previously recorded in the dependency lock file"
        ),
        "{}",
        refused.text
    );
    let _ = std::fs::remove_dir_all(&providers);
    let zh = format!("zh:{}", listed[&zip]);
    tf.write(".terraform.lock.hcl", &with(&zh));
    let init = tf.ok(&["init", "-input=false", "-no-color"]).await;
    assert!(
        init.flat().contains(&format!(
            "Installed local/terraform-providers/naming v{VERSION}"
        )),
        "{}",
        init.text
    );
    let installed = providers.join(format!(
        "local/terraform-providers/naming/{VERSION}/{platform}/{NAME}_v{VERSION}"
    ));
    assert_eq!(sha256(&installed), sha256(Path::new(PROVIDER)));
    let mut locked =
        lock_hashes(&std::fs::read_to_string(tf.dir.join(".terraform.lock.hcl")).unwrap());
    locked.sort();
    assert_eq!(locked, [h1, zh], "init adds the h1: hash it checked");

    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    let tf = tf.env("HOSTNAMING_URL", &svc.url);
    tf.apply(&[]).await;
    let hostname = tf.output("hostname").await;
    let hostname = hostname.as_str().expect("a hostname");
    assert!(hostname.starts_with("web-app-prod-vm"), "{hostname}");
    let issued = record(&svc, hostname).await;
    assert_eq!(
        (&issued["status"], &issued["owner"]),
        (&serde_json::json!("issued"), &serde_json::json!("team-web")),
        "{issued}"
    );
}
