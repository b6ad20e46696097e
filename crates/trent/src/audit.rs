//! `trent audit`: verify an audit log, and show the public key that checks it.

use crate::config::{StoreArgs, load_file, open_store, resolve_store};
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Check an audit directory: the hash chain, every file's signature, the head and what
    /// retention removed (pruned.json). Names the first edited, deleted, reordered or truncated
    /// record and every missing file.
    Verify {
        /// The audit directory (<data-dir>/audit by default on the server).
        dir: PathBuf,
        /// The node's public key (PEM), kept apart from the log. Without it, the key the node
        /// left in the directory is used, which shows only that the log agrees with itself.
        #[arg(long)]
        public_key: Option<PathBuf>,
    },
    /// Print the public key (PEM) of a data directory's audit signing key.
    PublicKey {
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub async fn run(args: AuditArgs) -> Result<(), String> {
    match args.command {
        AuditCommand::Verify { dir, public_key } => verify(&dir, public_key.as_deref()),
        AuditCommand::PublicKey { store } => {
            let file = load_file(store.config.as_deref())?;
            let settings = resolve_store(&store, &file, false);
            let path = settings.data_dir.join("audit-signing-key");
            if !path.exists() {
                return Err(format!(
                    "{}: no audit signing key (it is made when the server first starts)",
                    path.display()
                ));
            }
            crate::datadir::protect_process(&settings)?
                .into_iter()
                .chain(crate::datadir::check_permissions(&settings)?)
                .for_each(|w| eprintln!("trent: warning: {w}"));
            let (_, root) = open_store(&settings, None).await?;
            // The spec is the file's; the one asked for only matters for a new key.
            let signer = trent_audit::load_or_create_signer(
                &path,
                root.as_ref(),
                trent_audit::AuditKeySpec::Ed25519,
            )?;
            print!("{}", signer.public_key_pem());
            Ok(())
        }
    }
}

fn verify(dir: &std::path::Path, public_key: Option<&std::path::Path>) -> Result<(), String> {
    let key = match public_key {
        Some(p) => {
            let pem = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
            Some(
                trent_audit::AuditPublicKey::from_pem(&pem)
                    .map_err(|e| format!("{}: {e}", p.display()))?,
            )
        }
        None => None,
    };
    let report = trent_audit::verify_dir(dir, key.as_ref())?;
    let pruned = report.pruned_summary();
    if report.ok() {
        println!(
            "OK: {} records in {} files, sequence {}..{}, chain intact, {} signatures verified",
            report.records,
            report.files,
            report.first_sequence,
            report.last_sequence,
            report.signatures
        );
        if let Some(line) = &pruned {
            println!("{line}");
        }
        if key.is_none() {
            println!(
                "(checked with the public key found in the directory; give --public-key to check it is the node's)"
            );
        }
        return Ok(());
    }
    for p in &report.problems {
        println!("{p}");
    }
    if let Some(line) = &pruned {
        println!("{line}");
    }
    Err(format!(
        "the audit log in {} has been changed: {} problem(s), the first: {}",
        dir.display(),
        report.problems.len(),
        report.problems[0]
    ))
}
