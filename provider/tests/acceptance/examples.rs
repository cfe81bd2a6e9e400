//! The examples in the registry's conventional places (`examples/provider`,
//! `examples/resources/naming`, `examples/data-sources/*`), each applied, imported or
//! planned as a user would, and config-driven import (`import {}` with
//! `-generate-config-out`) producing a configuration that plans no change.

use super::*;

/// A working directory with `examples/provider/provider.tf` (its endpoint pointed at `url`)
/// and the given example files, each copied under its own name.
fn with_examples(url: &str, files: &[(&str, &str)]) -> Tf {
    let tf = Tf::new("provider", &[]);
    let provider = std::fs::read_to_string(example_dir("provider").join("provider.tf")).unwrap();
    assert!(provider.contains("\"http://127.0.0.1:3000\""), "{provider}");
    tf.write(
        "provider.tf",
        &provider.replace("\"http://127.0.0.1:3000\"", &format!("\"{url}\"")),
    );
    for (example, file) in files {
        let text = std::fs::read_to_string(example_dir(example).join(file)).unwrap();
        let name = format!("{}-{file}", example.replace('/', "-"));
        tf.write(&name, &text);
    }
    tf
}

/// The metadata `examples/resources/naming/resource.tf` gives its name, so that a name
/// issued with them is what that configuration describes.
fn resource_example_metadata() -> Value {
    json!({
        "owner": "team-web",
        "description": "Front-end web server",
        "tags": {"cost-center": "42"},
    })
}

async fn issue(svc: &Service, extra: Value) -> String {
    let mut body = json!({"application": "web", "role": "app", "environment": "prod"});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let resp = svc
        .request("POST", "/generate-name", &body.to_string())
        .await;
    resp.hostname().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provider_resource_and_data_source_examples_apply_and_then_plan_no_change() {
    for example in [
        "provider",
        "resources/naming",
        "data-sources/naming_record",
        "data-sources/naming_names",
    ] {
        assert_formatted(example).await;
    }
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    // What the data source examples look for: web-app-prod-vm1, and a gold name.
    let first = issue(&svc, json!({})).await;
    assert_eq!(first, "web-app-prod-vm1");
    let gold = issue(&svc, json!({"tags": {"tier": "gold"}})).await;

    let tf = with_examples(
        &svc.url,
        &[
            ("resources/naming", "resource.tf"),
            ("data-sources/naming_record", "data-source.tf"),
            ("data-sources/naming_names", "data-source.tf"),
        ],
    );
    tf.apply(&[]).await;
    let hostname = tf.output("hostname").await;
    assert_eq!(hostname, json!("web-app-prod-vm3"));
    let stored = record(&svc, "web-app-prod-vm3").await;
    assert_eq!(stored["owner"], "team-web");
    assert_eq!(stored["tags"], json!({"cost-center": "42"}));
    assert_eq!(tf.output("web_status").await, json!("issued"));
    assert_eq!(tf.output("gold_hostnames").await, json!([gold]));
    assert_eq!(tf.plan(&[]).await.code, 0);
    tf.destroy(&[]).await;
    assert_eq!(status(&svc, "web-app-prod-vm3").await, "released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_import_command_example_adopts_a_name_that_then_plans_no_change() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    let hostname = issue(&svc, resource_example_metadata()).await;
    let tf = with_examples(&svc.url, &[("resources/naming", "resource.tf")]);
    // import.sh's command, as written, run in the configuration.
    let script =
        std::fs::read_to_string(example_dir("resources/naming").join("import.sh")).unwrap();
    let command = script
        .lines()
        .find(|l| l.starts_with("terraform import "))
        .expect("import.sh holds a terraform import command");
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    assert_eq!(args.last(), Some(&hostname.as_str()), "{command}");
    let mut run = vec![args[0], "-input=false", "-no-color"];
    run.extend(&args[1..]);
    tf.ok(&run).await;
    // The name's inputs and metadata are the configuration's; only the idempotency key,
    // which a name issued elsewhere cannot have, is set in place.
    let plan = tf.plan(&[]).await;
    assert!(
        plan.code == 0
            || plan
                .flat()
                .contains("Plan: 0 to add, 1 to change, 0 to destroy."),
        "{}",
        plan.text
    );
    tf.apply(&[]).await;
    assert_eq!(tf.plan(&[]).await.code, 0);
    assert_eq!(tf.output("hostname").await, json!(hostname));
    assert_eq!(status(&svc, &hostname).await, "issued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_block_generates_a_configuration_that_plans_no_change() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    let hostname = issue(&svc, resource_example_metadata()).await;
    let tf = with_examples(&svc.url, &[("resources/naming", "import.tf")]);
    let plan = tf
        .run(&[
            "plan",
            "-input=false",
            "-no-color",
            "-generate-config-out=generated.tf",
        ])
        .await;
    assert_eq!(plan.code, 0, "{}", plan.text);
    assert!(
        plan.flat().contains("1 to import"),
        "the plan should import the name:\n{}",
        plan.text
    );
    let generated = std::fs::read_to_string(tf.dir.join("generated.tf")).unwrap();
    for line in [
        r#"resource "naming" "web" {"#,
        r#"application     = "web""#,
        r#"owner           = "team-web""#,
        r#"cost-center = "42""#,
    ] {
        assert!(generated.contains(line), "{line} not in:\n{generated}");
    }
    // Computed attributes are the service's to say, never written into configuration.
    for computed in ["generated_name", "created_at", "created_by", "request_id"] {
        assert!(!generated.contains(computed), "{computed} in:\n{generated}");
    }
    tf.apply(&[]).await;
    let after = tf.plan(&[]).await;
    assert_eq!(after.code, 0, "{}", after.text);
    assert_eq!(
        tf.state_list().await,
        vec!["naming.web".to_string()],
        "the imported name is in state"
    );
    assert_eq!(status(&svc, &hostname).await, "issued");
}
