//! The `trent` binary: `serve`, `principal` (admin of access keys on a data directory),
//! `audit` (verify an audit log) and `bench` (a SigV4-signing load generator).

#![forbid(unsafe_code)]

mod audit;
mod bench;
mod config;
mod principal;
mod serve;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "trent",
    version,
    about = "A self-hosted key management service that speaks the AWS KMS API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the AWS KMS API.
    Serve(Box<config::ServeArgs>),
    /// Create, list and delete principals (access keys) on a data directory.
    Principal(principal::PrincipalArgs),
    /// Verify an audit log; print the public key that checks it.
    Audit(audit::AuditArgs),
    /// Load-test a running trent (or any KMS endpoint) with SigV4-signed requests.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("trent: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(*args).await,
            Command::Principal(args) => principal::run(args).await,
            Command::Bench(args) => bench::run(args).await,
            Command::Audit(args) => audit::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trent: {e}");
            ExitCode::from(2)
        }
    }
}
