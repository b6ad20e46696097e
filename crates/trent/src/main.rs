//! The `trent` binary: `serve`, `principal` (admin of access keys on a data directory),
//! `audit` (verify an audit log) and `bench` (a SigV4-signing load generator).

#![forbid(unsafe_code)]

mod audit;
mod bench;
mod config;
mod datadir;
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

/// Parse the command line; clap's own message for a bad value of `--passphrase` (or
/// `TRENT_PASSPHRASE`) would repeat the value, which is likely the passphrase itself.
fn parse() -> Result<Cli, ExitCode> {
    use clap::error::{ContextKind, ErrorKind};
    Cli::try_parse().map_err(|e| {
        let passphrase = e.kind() == ErrorKind::InvalidValue
            && e.get(ContextKind::InvalidArg)
                .is_some_and(|arg| arg.to_string().starts_with("--passphrase"));
        if passphrase {
            eprintln!(
                "error: --passphrase (TRENT_PASSPHRASE) takes no value, or true or false; the value given is not shown. The passphrase itself comes from TRENT_ROOT_PASSPHRASE or the terminal, never from the command line."
            );
            return ExitCode::from(2);
        }
        let _ = e.print();
        ExitCode::from(if e.use_stderr() { 2 } else { 0 })
    })
}

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
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
