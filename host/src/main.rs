//! `hostnaming serve` runs the component from spin.toml; `hostnaming bootstrap` prepares
//! Vault.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use hostnaming_host::vault::{bootstrap, Bootstrapped, VaultClient, SERVICE_POLICY_NAME};
use hostnaming_host::{App, Manifest};

#[derive(Parser)]
#[command(name = "hostnaming", version, about = "Hostnames as a service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the component over HTTP as Spin's HTTP trigger would.
    Serve {
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: String,
        #[arg(long, default_value = "spin.toml")]
        manifest: PathBuf,
    },
    /// Make a new API token and print it with its `api_tokens` entry (the hash).
    Token {
        /// Comma-separated: generate, read, admin.
        #[arg(long, default_value = "generate,read")]
        scopes: String,
    },
    /// Create the KV v2 mount (cas_required) if missing, and the service's policy. Safe to
    /// repeat.
    Bootstrap {
        #[arg(long, env = "VAULT_ADDR")]
        vault_addr: String,
        #[arg(long, env = "VAULT_TOKEN", hide_env_values = true)]
        vault_token: String,
        #[arg(long, default_value = "hostnaming")]
        mount: String,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Serve { listen, manifest } => {
            let manifest = Manifest::load(&manifest, &HashMap::new(), |n| std::env::var(n).ok())?;
            let vault = manifest
                .variables
                .get("vault_addr")
                .cloned()
                .unwrap_or_default();
            if let Some(warning) = hostnaming_host::server::open_access_warning(&manifest) {
                eprintln!("hostnaming: {warning}");
            }
            let app = Arc::new(App::load(manifest)?);
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            eprintln!(
                "hostnaming: serving on http://{} (Vault at {vault})",
                listener.local_addr()?
            );
            tokio::select! {
                r = app.serve(listener) => r,
                _ = tokio::signal::ctrl_c() => Ok(()),
            }
        }
        Command::Token { scopes } => {
            let mut bytes = [0u8; 24];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
                .context("reading /dev/urandom")?;
            let token: String = std::iter::once("hn_".to_string())
                .chain(bytes.iter().map(|b| format!("{b:02x}")))
                .collect();
            let entry = format!("{}:{scopes}", hostnaming::auth::token_hash(&token));
            hostnaming::auth::ApiTokens::parse(&entry).map_err(anyhow::Error::msg)?;
            println!("token (give to the client, store nowhere else): {token}");
            println!("api_tokens entry (configure the service with it): {entry}");
            Ok(())
        }
        Command::Bootstrap {
            vault_addr,
            vault_token,
            mount,
        } => {
            let vault = VaultClient::new(&vault_addr, &vault_token)?;
            match bootstrap(&vault, &mount).await? {
                Bootstrapped::Created => eprintln!("hostnaming: created KV v2 mount {mount}/"),
                Bootstrapped::AlreadyThere => {
                    eprintln!("hostnaming: KV v2 mount {mount}/ is there")
                }
            }
            eprintln!(
                "hostnaming: {mount}/ requires check-and-set; policy {SERVICE_POLICY_NAME} written \
                 (make the service's token with: bao token create -policy={SERVICE_POLICY_NAME})"
            );
            Ok(())
        }
    }
}
