//! `hostnaming token`: a new API token, and the `api_tokens` entry that admits it.

use anyhow::{Context, Result};
use hostnaming::api::auth;

/// Make a new API token and print it with its `api_tokens` entry (the hash).
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Comma-separated: generate, read, annotate, admin.
    #[arg(long, default_value = "generate,read")]
    pub scopes: String,
    /// Who the token's writes are recorded as (`created_by`, history): 1 to 64 letters,
    /// digits, `_`, `.`, `@`, `-`. Without it the entry is named by its position.
    #[arg(long)]
    pub name: Option<String>,
}

pub fn execute(args: Args) -> Result<()> {
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .context("reading /dev/urandom")?;
    let token: String = std::iter::once("hn_".to_string())
        .chain(bytes.iter().map(|b| format!("{b:02x}")))
        .collect();
    let mut entry = format!("{}:{}", auth::token_hash(&token), args.scopes);
    if let Some(name) = &args.name {
        auth::check_token_name(name).map_err(anyhow::Error::msg)?;
        entry = format!("{name}={entry}");
    }
    auth::ApiTokens::parse(&entry).map_err(anyhow::Error::msg)?;
    println!("token (give to the client, store nowhere else): {token}");
    println!("api_tokens entry (configure the service with it): {entry}");
    Ok(())
}
