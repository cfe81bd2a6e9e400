//! terraform-provider-naming: the Terraform provider for the hostnaming service.
//!
//! Terraform starts this binary and speaks the plugin protocol (version 6) to it through
//! the vendored `tf-provider` crate; `resource "naming"`, `data "naming_record"` and
//! `data "naming_names"` call the service's HTTP API with `client`.

mod client;
mod provider;
mod record;
mod resource;
mod search;

fn main() -> anyhow::Result<()> {
    // `--version` answers what this binary is, for people and release checks.
    if std::env::args()
        .nth(1)
        .is_some_and(|a| a == "--version" || a == "-version")
    {
        println!("terraform-provider-naming {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    // Started by hand it would wait forever for a Terraform that never connects.
    if std::env::var_os("TF_PLUGIN_MAGIC_COOKIE").is_none() {
        eprintln!(
            "terraform-provider-naming {}: a Terraform provider plugin, started by Terraform, \
             not by hand. See provider/README.md for installing it.",
            env!("CARGO_PKG_VERSION")
        );
        std::process::exit(1);
    }
    // tf-provider appends a backtrace to every diagnostic when backtraces are enabled; a
    // user with RUST_BACKTRACE=1 in their shell would see thirty lines of frames under
    // each error. Panics keep theirs: they read RUST_BACKTRACE. Set before any thread
    // exists, as set_var requires.
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(tf_provider::serve(
            "naming",
            provider::NamingProvider::default(),
        ))
}
