//! Acceptance tests: the real `terraform` binary drives the provider built by this package
//! (through `dev_overrides`, as no registry is reachable) against the real component served
//! by the real host and a real OpenBao, with the configurations in `examples/` as they are.
//! Needs `terraform` (or `$TERRAFORM`), `bao` and `curl`, and the component built.

use hostnaming_testkit as common;

mod diagnostics;
mod docs;
mod examples;
mod release;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicU32, Ordering};

use common::{request, request_with, workspace, Bao, Service};
use serde_json::{json, Value};

const PROVIDER: &str = env!("CARGO_BIN_EXE_terraform-provider-naming");

/// A Terraform working directory holding copies of example files, torn down when dropped
/// (kept if the test fails, for a look).
struct Tf {
    dir: PathBuf,
    env: Vec<(String, String)>,
}

struct Run {
    code: i32,
    /// stdout then stderr, as a person would have seen them.
    text: String,
}

impl Run {
    /// The text with Terraform's box drawing and line wrapping undone.
    fn flat(&self) -> String {
        flatten(&self.text)
    }
}

fn flatten(text: &str) -> String {
    text.replace(['│', '╷', '╵'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

impl Drop for Tf {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Tf {
    /// A fresh directory with `files` copied from `examples/{example}/`.
    fn new(example: &str, files: &[&str]) -> Tf {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "naming-acceptance-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for file in files {
            std::fs::copy(example_dir(example).join(file), dir.join(file))
                .unwrap_or_else(|e| panic!("copying examples/{example}/{file}: {e}"));
        }
        let providers = Path::new(PROVIDER).parent().unwrap();
        let rc = dir.join("terraform.rc");
        std::fs::write(
            &rc,
            format!(
                "provider_installation {{\n  dev_overrides {{\n    \
                 \"local/terraform-providers/naming\" = \"{}\"\n  }}\n  direct {{}}\n}}\n",
                providers.display()
            ),
        )
        .unwrap();
        Tf {
            env: vec![
                ("TF_CLI_CONFIG_FILE".into(), rc.display().to_string()),
                ("TF_IN_AUTOMATION".into(), "1".into()),
                ("CHECKPOINT_DISABLE".into(), "1".into()),
            ],
            dir,
        }
    }

    /// `examples/proof-of-concept`'s main.tf, against the service at `url`.
    fn provider_example(url: &str) -> Tf {
        Tf::new("proof-of-concept", &["main.tf"]).env("HOSTNAMING_URL", url)
    }

    fn env(mut self, name: &str, value: &str) -> Tf {
        self.env.push((name.into(), value.into()));
        self
    }

    fn write(&self, name: &str, content: &str) {
        std::fs::write(self.dir.join(name), content).unwrap();
    }

    /// Installs our provider from the filesystem mirror at `mirror` (unpacked or packed
    /// layout), anything else directly, as a private mirror's users configure Terraform.
    fn use_filesystem_mirror(&self, mirror: &Path) {
        self.write(
            "terraform.rc",
            &format!(
                "provider_installation {{\n  filesystem_mirror {{\n    path    = \"{}\"\n    \
                 include = [\"local/terraform-providers/*\"]\n  }}\n  direct {{\n    \
                 exclude = [\"local/terraform-providers/*\"]\n  }}\n}}\n",
                mirror.display()
            ),
        );
    }

    async fn run(&self, args: &[&str]) -> Run {
        let mut command = tokio::process::Command::new(terraform());
        command
            .args(args)
            .current_dir(&self.dir)
            .env_remove("HOSTNAMING_URL")
            .env_remove("HOSTNAMING_TOKEN")
            .env_remove("TF_LOG")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .kill_on_drop(true);
        let out: Output = command
            .output()
            .await
            .unwrap_or_else(|e| panic!("running {} (install Terraform): {e}", terraform()));
        Run {
            code: out.status.code().unwrap_or(-1),
            text: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }

    /// Runs a command that must succeed (exit 0).
    async fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args).await;
        assert_eq!(
            run.code,
            0,
            "terraform {} failed in {}:\n{}",
            args.join(" "),
            self.dir.display(),
            run.text
        );
        run
    }

    /// Runs a command that must fail (exit 1).
    async fn fails(&self, args: &[&str]) -> Run {
        let run = self.run(args).await;
        assert_eq!(
            run.code,
            1,
            "terraform {} should have failed:\n{}",
            args.join(" "),
            run.text
        );
        run
    }

    async fn apply(&self, extra: &[&str]) -> Run {
        self.ok(&unattended("apply", extra)).await
    }

    async fn destroy(&self, extra: &[&str]) -> Run {
        self.ok(&unattended("destroy", extra)).await
    }

    /// `plan -detailed-exitcode`: 0 no changes, 2 changes.
    async fn plan(&self, extra: &[&str]) -> Run {
        let mut args = vec!["plan", "-detailed-exitcode", "-input=false", "-no-color"];
        args.extend_from_slice(extra);
        let run = self.run(&args).await;
        assert!(
            run.code == 0 || run.code == 2,
            "terraform plan failed:\n{}",
            run.text
        );
        run
    }

    async fn output(&self, name: &str) -> Value {
        let run = self.ok(&["output", "-json", name]).await;
        serde_json::from_str(&run.text).unwrap_or_else(|e| panic!("{e}: {}", run.text))
    }

    async fn state_list(&self) -> Vec<String> {
        let run = self.ok(&["state", "list"]).await;
        run.text.lines().map(str::to_string).collect()
    }
}

/// `terraform {command}` (apply or destroy) with `extra`, asking nothing.
fn unattended<'a>(command: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![command, "-auto-approve", "-input=false", "-no-color"];
    args.extend_from_slice(extra);
    args
}

/// This machine as Terraform names platforms (`linux_amd64`).
fn platform() -> String {
    format!(
        "{}_{}",
        std::env::consts::OS,
        match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        }
    )
}

fn terraform() -> String {
    std::env::var("TERRAFORM").unwrap_or_else(|_| "terraform".into())
}

fn example_dir(example: &str) -> PathBuf {
    workspace().join("examples").join(example)
}

/// `terraform fmt -check` on an example, where it is (fmt reads no provider).
async fn assert_formatted(example: &str) {
    let out = tokio::process::Command::new(terraform())
        .args(["fmt", "-check", "-diff", "-no-color"])
        .current_dir(example_dir(example))
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "examples/{example} is not formatted:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

async fn record(svc: &Service, hostname: &str) -> Value {
    let resp = svc.request("GET", &format!("/names/{hostname}"), "").await;
    assert_eq!(resp.status, 200, "{hostname}: {}", resp.text);
    resp.json
}

async fn status(svc: &Service, hostname: &str) -> String {
    record(svc, hostname).await["status"]
        .as_str()
        .unwrap()
        .to_string()
}

fn names(output: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(output.clone()).unwrap()
}

fn vms(vms: &[(&str, &str, &str, &str)]) -> String {
    let map: serde_json::Map<String, Value> = vms
        .iter()
        .map(|(key, a, r, e)| {
            (
                key.to_string(),
                json!({"application": a, "role": r, "environment": e}),
            )
        })
        .collect();
    json!({ "vms": map }).to_string()
}

/// Example (b), the proof of concept's configuration: apply, no-op plan, replace one,
/// import, destroy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_for_each_configuration_lives_a_whole_life() {
    assert_formatted("proof-of-concept").await;
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    let tf = Tf::provider_example(&svc.url);

    tf.apply(&[]).await;
    let first = names(&tf.output("hostnames").await);
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        ["db-1", "web-1", "web-2"],
        "{first:?}"
    );
    let distinct: std::collections::BTreeSet<_> = first.values().collect();
    assert_eq!(distinct.len(), 3, "{first:?}");
    assert!(first["db-1"].starts_with("web-db-prod-vm"), "{first:?}");
    for key in ["web-1", "web-2"] {
        assert!(first[key].starts_with("web-app-prod-vm"), "{first:?}");
    }
    for name in first.values() {
        assert_eq!(status(&svc, name).await, "issued");
    }

    let again = tf.plan(&[]).await;
    assert_eq!(
        again.code, 0,
        "a second plan must change nothing:\n{}",
        again.text
    );

    // One machine moves to another environment: that one, and only that one, is replaced.
    tf.write(
        "terraform.tfvars.json",
        &vms(&[
            ("web-1", "web", "app", "prod"),
            ("web-2", "web", "app", "dev"),
            ("db-1", "web", "db", "prod"),
        ]),
    );
    let plan = tf.plan(&[]).await;
    assert_eq!(plan.code, 2);
    let flat = plan.flat();
    assert!(
        flat.contains(r#"# naming.vm["web-2"] must be replaced"#),
        "{}",
        plan.text
    );
    assert!(
        flat.contains(r#"~ environment = "prod" -> "dev" # forces replacement"#),
        "{}",
        plan.text
    );
    assert!(
        flat.contains("Plan: 1 to add, 0 to change, 1 to destroy."),
        "{}",
        plan.text
    );
    tf.apply(&[]).await;
    let second = names(&tf.output("hostnames").await);
    assert_eq!(second["web-1"], first["web-1"]);
    assert_eq!(second["db-1"], first["db-1"]);
    assert!(second["web-2"].starts_with("web-app-dev-vm"), "{second:?}");
    assert_eq!(status(&svc, &first["web-2"]).await, "released");
    assert_eq!(status(&svc, &second["web-2"]).await, "issued");

    // Import: forget a name, adopt it again by hostname; nothing is planned afterwards.
    let address = r#"naming.vm["web-1"]"#;
    let before = tf.ok(&["state", "show", "-no-color", address]).await.text;
    tf.ok(&["state", "rm", address]).await;
    assert_eq!(tf.state_list().await.len(), 2);
    tf.ok(&[
        "import",
        "-input=false",
        "-no-color",
        address,
        &second["web-1"],
    ])
    .await;
    let after = tf.ok(&["state", "show", "-no-color", address]).await.text;
    assert_eq!(flatten(&after), flatten(&before));
    let plan = tf.plan(&[]).await;
    assert_eq!(plan.code, 0, "after import:\n{}", plan.text);

    // Importing a name the service never issued says so.
    tf.ok(&["state", "rm", address]).await;
    let bad = tf
        .fails(&[
            "import",
            "-input=false",
            "-no-color",
            address,
            "web-app-prod-vm999",
        ])
        .await;
    assert!(
        bad.flat()
            .contains("Cannot import web-app-prod-vm999: no such name"),
        "{}",
        bad.text
    );
    tf.ok(&[
        "import",
        "-input=false",
        "-no-color",
        address,
        &second["web-1"],
    ])
    .await;

    tf.destroy(&[]).await;
    assert!(tf.state_list().await.is_empty());
    for name in second.values() {
        assert_eq!(status(&svc, name).await, "released", "{name}");
    }
}

/// A service that is down: the error names the endpoint, and a failed destroy keeps the
/// names in the state until a destroy succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_is_down_is_named_and_nothing_is_lost() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    let dead = svc.url.clone();
    // Only the retry budget changes, so the test need not wait the default minute.
    let quick = |url: &str| {
        let tf = Tf::provider_example(url);
        tf.write(
            "quick_override.tf",
            "provider \"naming\" {\n  retry_timeout_seconds = 2\n}\n",
        );
        tf
    };
    let names_the_dead_endpoint = |run: &Run| {
        assert!(
            run.flat()
                .contains(&format!("Cannot reach the hostnaming service at {dead}")),
            "{}",
            run.text
        );
    };

    let tf = quick(&svc.url);
    tf.apply(&[]).await;
    let issued = names(&tf.output("hostnames").await);
    drop(svc);

    names_the_dead_endpoint(&tf.fails(&unattended("destroy", &[])).await);
    assert_eq!(
        tf.state_list().await.len(),
        3,
        "the names must stay in the state"
    );

    let fresh = quick(&dead);
    names_the_dead_endpoint(&fresh.fails(&unattended("apply", &[])).await);
    assert!(fresh.state_list().await.is_empty());

    // Back on another address, the same state is destroyed and every name released.
    let svc = Service::start(&bao, &[]).await;
    let tf = tf.env("HOSTNAMING_URL", &svc.url);
    tf.destroy(&[]).await;
    for name in issued.values() {
        assert_eq!(status(&svc, name).await, "released", "{name}");
    }
}

/// A request the service refuses: Terraform shows the service's own words, on the input
/// they are about, and nothing is allocated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_request_shows_the_services_message() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    let expected = svc.generate("Web", "app", "prod").await;
    assert_eq!(expected.status, 400, "{}", expected.text);
    let detail = expected.json["detail"].as_str().unwrap().to_string();

    let tf = Tf::provider_example(&svc.url);
    tf.write(
        "terraform.tfvars.json",
        &vms(&[("bad", "Web", "app", "prod")]),
    );
    let run = tf.fails(&unattended("apply", &[])).await;
    let flat = run.flat();
    assert!(flat.contains(&flatten(&detail)), "{detail}\n{}", run.text);
    assert!(
        flat.contains(r#"with naming.vm["bad"]"#)
            && flat.contains("application = each.value.application"),
        "the error should point at the application input:\n{}",
        run.text
    );
    assert!(tf.state_list().await.is_empty());
}

/// State written by the proof of concept's provider (schema version 0) for names its
/// service issued before the registry existed: the configuration plans no change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proof_of_concepts_state_is_kept() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    let tf = Tf::provider_example(&svc.url);
    let instance = |key: &str, app: &str, role: &str, n: u32| {
        let name = format!("{app}-{role}-prod-vm{n}");
        json!({"index_key": key, "schema_version": 0, "sensitive_attributes": [],
               "attributes": {"id": name, "application": app, "role": role,
                              "environment": "prod", "generated_name": name}})
    };
    let state = json!({
        "version": 4, "terraform_version": "1.5.7", "serial": 4,
        "lineage": "6b1c5ad8-58a1-4bd2-9d0b-5c7e3b1f9a10",
        "outputs": {"hostnames": {
            "value": {"db-1": "web-db-prod-vm903", "web-1": "web-app-prod-vm901",
                      "web-2": "web-app-prod-vm902"},
            "type": ["object", {"db-1": "string", "web-1": "string", "web-2": "string"}],
        }},
        "resources": [{
            "mode": "managed", "type": "naming", "name": "vm",
            "provider": "provider[\"local/terraform-providers/naming\"]",
            "instances": [instance("web-1", "web", "app", 901),
                          instance("web-2", "web", "app", 902),
                          instance("db-1", "web", "db", 903)],
        }],
        "check_results": null,
    });
    tf.write("terraform.tfstate", &state.to_string());

    let plan = tf.plan(&[]).await;
    assert_eq!(plan.code, 0, "{}", plan.text);
    assert!(
        plan.flat()
            .contains("web-app-prod-vm901 is not in the hostnaming registry"),
        "{}",
        plan.text
    );
    let applied = tf.apply(&[]).await;
    assert!(
        applied.flat().contains("0 added, 0 changed, 0 destroyed"),
        "{}",
        applied.text
    );
    assert_eq!(
        names(&tf.output("hostnames").await)["web-1"],
        "web-app-prod-vm901"
    );
    // The service has no record of these names, so nothing was asked of it but reads.
    let listed = svc
        .request("GET", "/names?application=web&limit=10", "")
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.json["names"], json!([]), "{}", listed.text);
}

/// A service with API tokens: the configured token is sent, and without it the error says
/// what to set. The data source reads the record of the name just made, and
/// `idempotency_key` keeps a lost create on its name but never revives a released one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_the_data_source_and_idempotency_keys_work_end_to_end() {
    use sha2::{Digest, Sha256};
    let token = "acceptance-token-5b0f1c";
    let hash: String = Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let bao = Bao::start().await;
    let svc = Service::start(
        &bao,
        &[("api_tokens", &format!("{hash}:generate,read,admin"))],
    )
    .await;
    let config = r#"
terraform {
  required_providers {
    naming = { source = "local/terraform-providers/naming" }
  }
}

resource "naming" "one" {
  application     = "api"
  role            = "web"
  environment     = "test"
  idempotency_key = "acceptance/one"
}

data "naming_record" "one" {
  hostname = naming.one.generated_name
}

output "record" {
  value = data.naming_record.one
}
"#;
    let anonymous = Tf::new("proof-of-concept", &[]).env("HOSTNAMING_URL", &svc.url);
    anonymous.write("main.tf", config);
    let run = anonymous.fails(&unattended("apply", &[])).await;
    assert!(run.flat().contains("(401)"), "{}", run.text);
    assert!(run.flat().contains("HOSTNAMING_TOKEN"), "{}", run.text);

    let tf = Tf::new("proof-of-concept", &[])
        .env("HOSTNAMING_URL", &svc.url)
        .env("HOSTNAMING_TOKEN", token);
    tf.write("main.tf", config);
    tf.apply(&[]).await;
    let record = tf.output("record").await;
    assert_eq!(record["status"], "issued", "{record}");
    assert_eq!(record["application"], "api");
    assert_eq!(record["number"], 1);
    assert_eq!(record["idempotency_key"], "acceptance/one/api/web/test/1");
    assert_eq!(record["id"], record["hostname"]);
    assert_eq!(record["released_at"], Value::Null);
    let plan = tf.plan(&[]).await;
    assert_eq!(plan.code, 0, "{}", plan.text);
    let hostname = record["hostname"].as_str().unwrap().to_string();

    // An apply whose answer never reached the state (here: the state lost it) gets the
    // same name back rather than a second one.
    tf.ok(&["state", "rm", "naming.one"]).await;
    tf.apply(&[]).await;
    assert_eq!(tf.output("record").await["hostname"], hostname.as_str());

    // Released behind Terraform's back: the refresh drops it, and the create that
    // follows skips the released name its key would replay.
    let bearer = format!("Bearer {token}");
    let released = request_with(
        "DELETE",
        &format!("{}/names/{hostname}", svc.url),
        "",
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(released.status, 200, "{}", released.text);
    let plan = tf.plan(&[]).await;
    assert!(
        plan.flat()
            .contains("Plan: 1 to add, 0 to change, 0 to destroy."),
        "{}",
        plan.text
    );
    tf.apply(&[]).await;
    let again = tf.output("record").await;
    assert_ne!(again["hostname"], hostname.as_str(), "{again}");
    assert_eq!(again["status"], "issued");
    assert_eq!(again["idempotency_key"], "acceptance/one/api/web/test/2");
}

/// The installation the README describes for users: a filesystem mirror and `terraform
/// init`, which records the binary's hash in the lock file. Planning a create asks nothing
/// of the service, so none runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provider_installs_from_a_filesystem_mirror() {
    let tf = Tf::new("proof-of-concept", &["main.tf"]);
    let mirror = tf.dir.join("mirror");
    let package = mirror.join(format!(
        "local/terraform-providers/naming/{}/{}",
        env!("CARGO_PKG_VERSION"),
        platform()
    ));
    std::fs::create_dir_all(&package).unwrap();
    std::fs::copy(PROVIDER, package.join("terraform-provider-naming")).unwrap();
    tf.use_filesystem_mirror(&mirror);
    tf.ok(&["init", "-input=false", "-no-color"]).await;
    let lock = std::fs::read_to_string(tf.dir.join(".terraform.lock.hcl")).unwrap();
    assert!(
        lock.contains(&format!(
            "provider \"local/terraform-providers/naming\" {{\n  version = \"{}\"",
            env!("CARGO_PKG_VERSION")
        )),
        "{lock}"
    );
    let plan = tf.plan(&[]).await;
    assert_eq!(plan.code, 2);
    assert!(
        plan.flat()
            .contains("Plan: 3 to add, 0 to change, 0 to destroy."),
        "{}",
        plan.text
    );
}

/// Example (a): terraform_data and curl, no provider at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_exec_example_outputs_the_name_and_releases_it() {
    assert_formatted("local-exec").await;
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    let tf = Tf::new("local-exec", &["variables.tf", "main.tf"]);
    let endpoint = format!("-var=endpoint={}", svc.url);

    tf.apply(&[&endpoint]).await;
    let hostname = tf.output("hostname").await;
    let hostname = hostname.as_str().expect("a hostname");
    assert!(hostname.starts_with("web-app-dev-vm"), "{hostname}");
    let rec = record(&svc, hostname).await;
    assert_eq!(rec["status"], "issued");
    assert!(
        rec["idempotency_key"]
            .as_str()
            .unwrap()
            .starts_with("terraform-data-"),
        "{rec}"
    );
    let plan = tf.plan(&[&endpoint]).await;
    assert_eq!(plan.code, 0, "{}", plan.text);

    tf.destroy(&[&endpoint]).await;
    assert_eq!(status(&svc, hostname).await, "released");
}

/// Example (c) cannot be applied here (the http provider cannot be downloaded): its
/// request is evaluated from its own file and sent as the data source would, twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_example_request_returns_the_same_name_twice() {
    assert_formatted("http-data-source").await;
    let main = std::fs::read_to_string(example_dir("http-data-source").join("main.tf")).unwrap();
    for line in [
        "url             = local.request.url",
        "method          = local.request.method",
        "request_headers = local.request.headers",
        "request_body    = local.request.body",
    ] {
        assert!(
            main.contains(line),
            "main.tf must send local.request: {line}"
        );
    }

    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    let tf = Tf::new("http-data-source", &["variables.tf", "request.tf"]);
    tf.write(
        "test_outputs.tf",
        "output \"request\" {\n  value     = local.request\n  sensitive = true\n}\n",
    );
    tf.apply(&[
        &format!("-var=endpoint={}/", svc.url),
        "-var=idempotency_key=team/stack/web-1",
    ])
    .await;
    let req = tf.output("request").await;
    assert_eq!(req["url"], format!("{}/generate-name", svc.url));
    assert_eq!(req["method"], "POST");
    let headers: Vec<(String, String)> = req["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    assert!(
        headers.contains(&("Idempotency-Key".into(), "\"team/stack/web-1\"".into())),
        "{headers:?}"
    );
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let url = req["url"].as_str().unwrap();
    let body = req["body"].as_str().unwrap();

    let first = request_with("POST", url, body, &headers).await;
    let second = request_with("POST", url, body, &headers).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(first.json["replayed"], false);
    assert_eq!(second.json["replayed"], true);
    assert_eq!(first.hostname(), second.hostname());
    assert!(first.hostname().starts_with("web-app-dev-vm"));
    // Unlike a plain POST, which allocates every time.
    let plain = request("POST", url, body).await;
    assert_ne!(plain.hostname(), first.hostname());
}

/// Example (d) cannot be applied here either (the vault provider cannot be downloaded):
/// its settings are evaluated from its own file and compared with what `bootstrap` made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vault_example_matches_what_bootstrap_creates() {
    assert_formatted("vault").await;
    let bao = Bao::start().await;
    let vault = |path: String| {
        let url = format!("{}/v1/{path}", bao.addr);
        let token = bao.token.clone();
        async move {
            let resp = request_with("GET", &url, "", &[("X-Vault-Token", &token)]).await;
            assert_eq!(resp.status, 200, "{url}: {}", resp.text);
            resp.json["data"].clone()
        }
    };

    let tf = Tf::new("vault", &["settings.tf", "hostnaming-service.hcl"]);
    tf.write(
        "test_outputs.tf",
        "output \"mount\" {\n  value = local.mount\n}\n\
         output \"kv_config\" {\n  value = local.kv_config\n}\n\
         output \"service_policy\" {\n  value = local.service_policy\n}\n\
         output \"service_policy_name\" {\n  value = local.service_policy_name\n}\n",
    );
    tf.apply(&[]).await;
    let mount = tf.output("mount").await;
    let live = vault(format!("sys/mounts/{}", common::MOUNT)).await;
    assert_eq!(mount["path"], common::MOUNT);
    assert_eq!(mount["type"], live["type"], "{live}");
    assert_eq!(mount["options"], live["options"], "{live}");
    assert_eq!(mount["description"], live["description"], "{live}");
    let config = vault(format!("{}/config", common::MOUNT)).await;
    assert_eq!(
        tf.output("kv_config").await["cas_required"],
        config["cas_required"]
    );
    assert_eq!(config["cas_required"], true);

    let name = tf.output("service_policy_name").await;
    assert_eq!(name, common::vault::SERVICE_POLICY_NAME);
    let installed = vault(format!("sys/policies/acl/{}", name.as_str().unwrap())).await;
    assert_eq!(tf.output("service_policy").await, installed["policy"]);

    // Another mount name is substituted as bootstrap substitutes it.
    tf.apply(&["-var=mount=names-dev"]).await;
    assert_eq!(
        tf.output("service_policy").await,
        common::vault::service_policy("names-dev")
    );
}

/// Owner, description and tags: set at creation, changed in place (an update, never a
/// replacement), a change made elsewhere shown as drift and put back, import bringing
/// them in, and the search data source finding names by them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_is_set_changed_in_place_drift_detected_imported_and_searched() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    let config = |owner: &str, tier: &str| {
        format!(
            r#"
terraform {{
  required_providers {{
    naming = {{ source = "local/terraform-providers/naming" }}
  }}
}}

resource "naming" "vm" {{
  application = "web"
  role        = "app"
  environment = "prod"
  owner       = "{owner}"
  description = "edge proxy"
  tags = {{
    tier = "{tier}"
    cost = "42"
  }}
}}

data "naming_names" "gold" {{
  tags       = {{ tier = "gold" }}
  depends_on = [naming.vm]
}}

output "vm" {{
  value = naming.vm
}}

output "gold" {{
  value = data.naming_names.gold.hostnames
}}
"#
        )
    };
    let tf = Tf::new("proof-of-concept", &[]).env("HOSTNAMING_URL", &svc.url);
    tf.write("main.tf", &config("team-web", "gold"));
    tf.apply(&[]).await;
    let vm = tf.output("vm").await;
    let hostname = vm["generated_name"].as_str().unwrap().to_string();
    assert_eq!(
        (&vm["created_by"], &vm["status"]),
        (&json!("anonymous"), &json!("issued")),
        "{vm}"
    );
    assert!(vm["created_at"].as_str().unwrap().ends_with('Z'));
    let stored = record(&svc, &hostname).await;
    assert_eq!(
        (&stored["owner"], &stored["description"], &stored["tags"]),
        (
            &json!("team-web"),
            &json!("edge proxy"),
            &json!({"tier": "gold", "cost": "42"})
        )
    );
    assert_eq!(tf.output("gold").await, json!([hostname]));
    assert_eq!(tf.plan(&[]).await.code, 0);

    // A tag changed in the configuration: an update in place, the same name.
    tf.write("main.tf", &config("team-web", "silver"));
    let plan = tf.plan(&[]).await;
    assert!(
        plan.flat()
            .contains("Plan: 0 to add, 1 to change, 0 to destroy."),
        "{}",
        plan.text
    );
    assert!(plan.flat().contains("updated in-place"), "{}", plan.text);
    tf.apply(&[]).await;
    let after = record(&svc, &hostname).await;
    assert_eq!(after["tags"], json!({"tier": "silver", "cost": "42"}));
    assert_eq!(
        after["history"].as_array().unwrap().last().unwrap()["changed"],
        json!(["tags.tier"])
    );
    assert_eq!(tf.output("vm").await["generated_name"], hostname.as_str());

    // Changed elsewhere: the plan shows the drift and puts it back, in place.
    let elsewhere = request_with(
        "PATCH",
        &format!("{}/names/{hostname}", svc.url),
        r#"{"owner":"someone-else","tags":{"extra":"x"}}"#,
        &[("content-type", "application/merge-patch+json")],
    )
    .await;
    assert_eq!(elsewhere.status, 200, "{}", elsewhere.text);
    let drift = tf.plan(&[]).await;
    assert_eq!(drift.code, 2, "{}", drift.text);
    assert!(
        drift.flat().contains("\"someone-else\" -> \"team-web\""),
        "{}",
        drift.text
    );
    assert!(
        drift
            .flat()
            .contains("Plan: 0 to add, 1 to change, 0 to destroy."),
        "{}",
        drift.text
    );
    tf.apply(&[]).await;
    let restored = record(&svc, &hostname).await;
    assert_eq!(
        (&restored["owner"], &restored["tags"]),
        (&json!("team-web"), &json!({"tier": "silver", "cost": "42"}))
    );

    // Import brings the metadata: the imported state plans no change.
    tf.ok(&["state", "rm", "naming.vm"]).await;
    tf.ok(&[
        "import",
        "-input=false",
        "-no-color",
        "naming.vm",
        &hostname,
    ])
    .await;
    let imported = tf.plan(&[]).await;
    assert_eq!(imported.code, 0, "{}", imported.text);
    tf.destroy(&[]).await;
    assert_eq!(status(&svc, &hostname).await, "released");
}
