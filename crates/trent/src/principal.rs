//! `trent principal create|list|delete`: manage access keys on a data directory, with the
//! server running or not (the server picks changes up within a second or two).

use crate::config::{StoreArgs, load_file, open_store, resolve_store};
use clap::{Args, Subcommand};
use std::sync::Arc;
use trent_kms::Principals;

#[derive(Args, Debug)]
pub struct PrincipalArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Create an access key for a principal ARN; prints its secret once.
    Create {
        /// arn:aws:iam::<account>:user/<name>, :role/<name> or :root
        #[arg(long)]
        arn: String,
    },
    /// List access keys (never their secrets).
    List,
    /// Delete an access key.
    Delete {
        /// The access key id.
        access_key_id: String,
    },
}

pub async fn run(args: PrincipalArgs) -> Result<(), String> {
    let file = load_file(args.store.config.as_deref())?;
    let settings = resolve_store(&args.store, &file, false);
    if !settings.data_dir.join("trent.db").exists() {
        return Err(format!(
            "{} holds no trent store; start `trent serve --data-dir {}` once first",
            settings.data_dir.display(),
            settings.data_dir.display()
        ));
    }
    let (store, root) = open_store(&settings).await?;
    trent_kms::service::check_root_key(store.as_ref(), root.as_ref())
        .await
        .map_err(|e| e.to_string())?;
    let principals = Arc::new(Principals::new(store, root));
    match args.action {
        Action::Create { arn } => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            let p = principals
                .create(&arn, now)
                .await
                .map_err(|e| e.to_string())?;
            println!("# {} (the secret is shown once)", p.arn);
            println!("aws_access_key_id = {}", p.access_key_id);
            println!("aws_secret_access_key = {}", p.secret.as_str());
        }
        Action::List => {
            for p in principals.list().await.map_err(|e| e.to_string())? {
                println!("{}\t{}", p.access_key_id, p.arn);
            }
        }
        Action::Delete { access_key_id } => {
            if !principals
                .delete(&access_key_id)
                .await
                .map_err(|e| e.to_string())?
            {
                return Err(format!("no access key {access_key_id}"));
            }
            println!("deleted {access_key_id}");
        }
    }
    Ok(())
}
