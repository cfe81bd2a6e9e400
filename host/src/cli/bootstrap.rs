//! `hostnaming bootstrap`: the KV v2 mount and the service's policy, created if missing.

use anyhow::Result;

use crate::vault::{bootstrap, Bootstrapped, VaultClient, SERVICE_POLICY_NAME};

/// Create the KV v2 mount (cas_required) if missing, and the service's policy. Safe to
/// repeat.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[arg(long, env = "VAULT_ADDR")]
    pub vault_addr: String,
    #[arg(long, env = "VAULT_TOKEN", hide_env_values = true)]
    pub vault_token: String,
    #[arg(long, default_value = "hostnaming")]
    pub mount: String,
}

pub async fn execute(args: Args) -> Result<()> {
    let Args {
        vault_addr,
        vault_token,
        mount,
    } = args;
    // Any node of a cluster will do: standbys forward to the active node.
    let first = vault_addr.split(',').next().unwrap_or_default().trim();
    let vault = VaultClient::new(first, &vault_token)?;
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
