//! `hostnaming serve` runs the component from spin.toml; `hostnaming bootstrap` prepares
//! Vault; `hostnaming token` makes an API token. Each lives in [`hostnaming_host::cli`].

use anyhow::Result;
use clap::{Parser, Subcommand};
use hostnaming_host::cli::{bootstrap, serve, token};

#[derive(Parser)]
#[command(name = "hostnaming", version, about = "Hostnames as a service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Serve(serve::Args),
    Token(token::Args),
    Bootstrap(bootstrap::Args),
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Serve(args) => serve::execute(args).await,
        Command::Token(args) => token::execute(args),
        Command::Bootstrap(args) => bootstrap::execute(args).await,
    }
}
