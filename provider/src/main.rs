//! terraform-provider-naming: the Terraform provider for the hostnaming service.
//!
//! Terraform starts this binary and speaks the plugin protocol (version 6) to it through
//! the vendored `tf-provider` crate; `resource "naming"` and `data "naming_record"` call
//! the service's HTTP API with `client`.

mod client;
mod provider;
mod record;
mod resource;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    // Started by hand it would wait forever for a Terraform that never connects.
    if std::env::var_os("TF_PLUGIN_MAGIC_COOKIE").is_none() {
        eprintln!(
            "terraform-provider-naming {}: a Terraform provider plugin, started by Terraform, \
             not by hand. See provider/README.md for installing it.",
            env!("CARGO_PKG_VERSION")
        );
        std::process::exit(1);
    }
    tf_provider::serve("naming", provider::NamingProvider::default()).await
}
