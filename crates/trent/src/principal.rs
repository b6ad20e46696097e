//! `trent principal create|list|delete` and `trent principal policy put|delete|list`: manage
//! access keys and identity policies on a data directory, with the server running or not (the
//! server picks changes up within a second or two).

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
        /// arn:<partition>:iam::<account>:user/<name>, :role/<name> or :root
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
    /// Identity policies of users and roles.
    #[command(subcommand)]
    Policy(PolicyAction),
}

#[derive(Subcommand, Debug)]
enum PolicyAction {
    /// Attach (or replace) a named identity policy of a user or role ARN.
    Put {
        #[arg(long)]
        arn: String,
        #[arg(long)]
        name: String,
        /// The policy document (JSON), or @FILE to read it from a file.
        #[arg(long)]
        document: String,
    },
    /// Detach a named identity policy.
    Delete {
        #[arg(long)]
        arn: String,
        #[arg(long)]
        name: String,
    },
    /// List identity policies (of one ARN, or all), with their documents.
    List {
        #[arg(long)]
        arn: Option<String>,
    },
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A policy document given inline or as `@FILE`.
pub fn read_document(arg: &str) -> Result<String, String> {
    match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}")),
        None => Ok(arg.to_string()),
    }
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
    crate::datadir::protect_process(&settings)?
        .into_iter()
        .chain(crate::datadir::check_permissions(&settings)?)
        .for_each(|w| eprintln!("trent: warning: {w}"));
    // No lock: a running server holds the directory's, and the store is safe to share with it.
    let (store, root) = open_store(&settings, None).await?;
    trent_kms::service::check_root_key(store.as_ref(), root.as_ref())
        .await
        .map_err(|e| e.to_string())?;
    trent_kms::service::check_partition(store.as_ref())
        .await
        .map_err(|e| e.to_string())?;
    let principals = Arc::new(Principals::new(store, root));
    match args.action {
        Action::Create { arn } => {
            let p = principals
                .create(&arn, now_secs())
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
        Action::Policy(PolicyAction::Put {
            arn,
            name,
            document,
        }) => {
            let document = read_document(&document)?;
            principals
                .put_policy(&arn, &name, &document, now_secs())
                .await
                .map_err(|e| e.to_string())?;
            println!("attached {name} to {arn}");
        }
        Action::Policy(PolicyAction::Delete { arn, name }) => {
            if !principals
                .delete_policy(&arn, &name)
                .await
                .map_err(|e| e.to_string())?
            {
                return Err(format!("{arn} has no policy {name}"));
            }
            println!("detached {name} from {arn}");
        }
        Action::Policy(PolicyAction::List { arn }) => {
            for p in principals
                .list_policies()
                .await
                .map_err(|e| e.to_string())?
            {
                if arn.as_ref().is_none_or(|a| *a == p.arn) {
                    println!("{}\t{}\t{}", p.arn, p.name, p.document);
                }
            }
        }
    }
    Ok(())
}
