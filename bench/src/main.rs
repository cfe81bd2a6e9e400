//! `hostnaming-bench`: measures the hostnaming service. `bench` sets its throughput and
//! latency beside a native ceiling, `soak` shows that nothing drifts over many allocations,
//! `registry` measures what operators' features cost (metadata, search, export).
//! Each starts its own OpenBao and its own service, a child process of this binary
//! running the host's `serve` command (`bench` and `soak` can be given a running one).

mod bench;
mod hop;
mod load;
mod native;
mod overhead;
mod plot;
mod procs;
mod registry;
mod report;
mod soak;

use anyhow::Result;
use clap::{Parser, Subcommand};
use hostnaming_host::cli::serve;

#[derive(Parser)]
#[command(
    name = "hostnaming-bench",
    version,
    about = "Measures the hostnaming service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Bench(bench::Args),
    Soak(soak::Args),
    Registry(registry::Args),
    /// `hostnaming serve`, run by `bench` and `soak` as their service.
    #[command(hide = true)]
    Serve(serve::Args),
    #[command(hide = true)]
    HopServe(hop::Args),
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Bench(args) => bench::execute(args).await,
        Command::Soak(args) => soak::execute(args).await,
        Command::Registry(args) => registry::execute(args).await,
        Command::Serve(args) => serve::execute(args).await,
        Command::HopServe(args) => hop::execute(args).await,
    }
}
