//! `hostnaming-testkit`: the kit's OpenBao servers for people and scripts, started by the
//! same code the tests use.
//!
//! - `openbao [--storage dev|raft]`: one server, bootstrapped; prints `VAULT_ADDR`,
//!   `VAULT_ROOT_TOKEN`, `VAULT_TOKEN` (the service's least-privilege token), `BAO_LOG` and
//!   `BAO_PID`,
//!   then leaves it running (scripts/run stops it by its pid).
//! - `raft-cluster start DIR`: a 3-node Raft cluster whose state stays in DIR; prints
//!   `ADDR1..3`, `ROOT_TOKEN`, `UNSEAL_KEY`. `raft-cluster stop|kill N|restart N DIR`
//!   act on it.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use hostnaming_testkit::{Bao, Cluster, Storage};

#[derive(Parser)]
#[command(
    name = "hostnaming-testkit",
    about = "OpenBao for hostnaming's tests and scripts"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start one OpenBao server on a free loopback port, bootstrapped, and leave it running.
    Openbao {
        #[arg(long, value_enum, default_value = "dev")]
        storage: Storage,
    },
    /// A 3-node OpenBao Raft cluster on loopback, its state in DIR.
    RaftCluster {
        #[command(subcommand)]
        action: ClusterAction,
    },
}

#[derive(Subcommand)]
enum ClusterAction {
    /// Start, initialise, unseal and join three nodes, and bootstrap the mount.
    Start {
        dir: PathBuf,
        /// Make standbys forward reads to the active node (linearizable, one more hop).
        #[arg(long)]
        no_standby_reads: bool,
    },
    /// Stop every node started in DIR.
    Stop { dir: PathBuf },
    /// SIGKILL node N (1 to 3).
    Kill {
        dir: PathBuf,
        #[arg(value_parser = clap::value_parser!(u8).range(1..=3))]
        node: u8,
    },
    /// Start node N again, unseal it, and wait until some node is active.
    Restart {
        dir: PathBuf,
        #[arg(value_parser = clap::value_parser!(u8).range(1..=3))]
        node: u8,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Openbao { storage } => {
            let bao = Bao::try_start(storage).await?;
            println!("VAULT_ADDR={}", bao.addr);
            println!("VAULT_ROOT_TOKEN={}", bao.token);
            println!("VAULT_TOKEN={}", bao.service_token);
            if let Some(log) = bao.log() {
                println!("BAO_LOG={}", log.display());
            }
            println!("BAO_PID={}", bao.detach().unwrap_or_default());
        }
        Command::RaftCluster { action } => match action {
            ClusterAction::Start {
                dir,
                no_standby_reads,
            } => {
                let cluster = Cluster::start(&dir, !no_standby_reads).await?;
                print!("{}", cluster.env());
                cluster.detach();
            }
            ClusterAction::Stop { dir } => Cluster::open(&dir)?.stop(),
            ClusterAction::Kill { dir, node } => Cluster::open(&dir)?.kill(node.into()),
            ClusterAction::Restart { dir, node } => {
                Cluster::open(&dir)?.restart(node.into()).await?
            }
        },
    }
    Ok(())
}
