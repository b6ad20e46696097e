//! `trent serve`: open the store, make the admin principal on first start, listen, and run the
//! background work (deletion windows, principal changes made by admin commands).

use crate::config::{ServeArgs, Settings, early_passphrase, open_store};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use trent_kms::{Kms, Principals};
use trent_server::{App, ConnLimits, DevMode, ServerOptions};

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TRENT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a terminal: a log file or collector gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// The AWS shared-credentials file for the admin principal (profile `trent`) and an AWS config
/// file naming its region and endpoint, both 0600.
fn write_client_files(
    dir: &std::path::Path,
    p: &trent_kms::Principal,
    endpoint: &str,
) -> Result<(), String> {
    let creds = zeroize::Zeroizing::new(format!(
        "[trent]\naws_access_key_id = {}\naws_secret_access_key = {}\nregion = us-east-1\n",
        p.access_key_id,
        p.secret.as_str()
    ));
    let config = zeroize::Zeroizing::new(format!(
        "[profile trent]\nregion = us-east-1\nendpoint_url = {endpoint}\n"
    ));
    for (name, text) in [("credentials", creds), ("aws-config", config)] {
        let path = dir.join(name);
        let _ = std::fs::remove_file(&path);
        trent_crypto::root::write_private_file(&path, text.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// The identity policy of the admin principal made on first start: every KMS action.
const ADMIN_POLICY_NAME: &str = "AdministratorAccess";
const ADMIN_POLICY: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#;

/// Make the config file's principals exist as it says: their access keys, and exactly their
/// identity policies.
async fn apply_config_principals(
    principals: &Principals,
    wanted: &[crate::config::ConfigPrincipal],
    now: i64,
) -> Result<(), String> {
    let fail = |arn: &str, e: String| format!("config principal {arn}: {e}");
    let existing = principals
        .list_policies()
        .await
        .map_err(|e| e.to_string())?;
    for p in wanted {
        match (&p.access_key_id, &p.secret_access_key) {
            (Some(id), Some(secret)) => principals
                .import(&p.arn, id, secret, now)
                .await
                .map_err(|e| fail(&p.arn, e.to_string()))?,
            (None, None) => {}
            _ => {
                return Err(fail(
                    &p.arn,
                    "access_key_id and secret_access_key go together".into(),
                ));
            }
        }
        if p.arn.ends_with(":root") && !p.policies.is_empty() {
            return Err(fail(
                &p.arn,
                "an account's root user takes no identity policies".into(),
            ));
        }
        for old in &existing {
            if old.arn == p.arn && !p.policies.contains_key(&old.name) {
                principals
                    .delete_policy(&p.arn, &old.name)
                    .await
                    .map_err(|e| fail(&p.arn, e.to_string()))?;
            }
        }
        for (name, document) in &p.policies {
            principals
                .put_policy(&p.arn, name, document, now)
                .await
                .map_err(|e| fail(&p.arn, format!("policy {name}: {e}")))?;
        }
    }
    Ok(())
}

pub async fn run(args: ServeArgs) -> Result<(), String> {
    let settings = Settings::resolve(args)?;
    init_logging(&settings.log_format);
    for w in crate::datadir::protect_process(&settings.store)? {
        tracing::warn!("{w}");
    }
    // In this order, so that a failed passphrase read leaves nothing behind and a second server
    // on the same directories is refused before it opens anything.
    let passphrase = early_passphrase(&settings.store)?;
    let _locks = crate::datadir::lock_for_serve(&settings)?;
    for w in crate::datadir::check_permissions(&settings.store)? {
        tracing::warn!("{w}");
    }
    let (store, root) = open_store(&settings.store, passphrase).await?;
    // The root key first: a wrong one is named as such, before the audit signing key it seals.
    trent_kms::service::check_root_key(store.as_ref(), root.as_ref())
        .await
        .map_err(|e| e.to_string())?;
    let audit = match &settings.audit {
        Some(a) => Some(Arc::new(open_audit(a, &root, &node_id(&settings))?)),
        None => None,
    };
    // With the audit log on, the service's writes wait for it: nothing takes effect that the
    // log could not record.
    let kms_store: Arc<dyn trent_store::Store> = match &audit {
        Some(a) => Arc::new(trent_server::AuditGatedStore::new(store.clone(), a.clone())),
        None => store.clone(),
    };
    let kms = Arc::new(
        Kms::open(kms_store, root.clone())
            .await
            .map_err(|e| e.to_string())?
            .with_key_pool(settings.key_pool_size)
            .with_node_id(node_id(&settings))
            .with_regions(settings.regions.iter().map(str::to_owned)),
    );
    kms.clock.advance(settings.dev_clock_offset_secs);
    let principals = Arc::new(Principals::new(store, root.clone()));
    principals.refresh().await.map_err(|e| e.to_string())?;
    // Decided before the config file's principals are added: a new data directory gets its
    // admin whatever principals the file names.
    let first_start = principals
        .list()
        .await
        .map_err(|e| e.to_string())?
        .is_empty();
    apply_config_principals(&principals, &settings.principals, kms.clock.now() as i64).await?;
    for w in crate::datadir::secret_memory_warnings() {
        tracing::warn!("{w}");
    }

    let tls = match &settings.tls {
        Some((cert, key)) => Some(trent_server::tls_acceptor(cert, key)?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let endpoint = format!("{}://{addr}", if tls.is_some() { "https" } else { "http" });

    if !settings.dev && first_start {
        let arn = format!(
            "{}user/admin",
            trent_kms::ids::iam_prefix(&settings.admin_account)
        );
        let now = kms.clock.now() as i64;
        let admin = principals
            .create(&arn, now)
            .await
            .map_err(|e| e.to_string())?;
        principals
            .put_policy(&arn, ADMIN_POLICY_NAME, ADMIN_POLICY, now)
            .await
            .map_err(|e| e.to_string())?;
        println!("Created the admin principal {arn}. Its secret is shown once:");
        println!("  aws_access_key_id = {}", admin.access_key_id);
        println!("  aws_secret_access_key = {}", admin.secret.as_str());
        if !settings.store.in_memory {
            write_client_files(&settings.store.data_dir, &admin, &endpoint)?;
            let dir = settings.store.data_dir.display();
            println!("Saved as profile 'trent' in {dir}/credentials (and {dir}/aws-config):");
            println!(
                "  AWS_SHARED_CREDENTIALS_FILE={dir}/credentials AWS_CONFIG_FILE={dir}/aws-config aws --profile trent kms list-keys"
            );
        }
    }

    // Work that fell due while the server was down (deletion windows, rotations, expiry) is
    // done now, before serving.
    run_scheduled(&kms, audit.as_deref()).await;
    let (stop_scheduler, mut stopping) = tokio::sync::watch::channel(false);
    let scheduler = {
        let kms = kms.clone();
        let audit = audit.clone();
        let every = Duration::from_secs(settings.deletion_check_secs);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = kms.wake.notified() => {}
                    _ = stopping.changed() => return,
                }
                // A run is never cut short: its work and its audit records stay together.
                run_scheduled(&kms, audit.as_deref()).await;
            }
        })
    };
    let refresher = (!settings.dev).then(|| {
        let principals = principals.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if let Err(e) = principals.refresh().await {
                    tracing::error!(error = %e, "principal refresh failed");
                }
            }
        })
    });

    let connections = ConnLimits {
        max_connections: settings.max_connections,
        max_per_source: settings.max_connections_per_source,
        header_timeout: Duration::from_secs(settings.header_timeout_secs),
        idle_timeout: Duration::from_secs(settings.idle_timeout_secs),
    };
    let options = ServerOptions {
        max_body_bytes: settings.max_body_bytes,
        request_timeout: Duration::from_secs(settings.request_timeout_secs),
        dev: settings.dev.then(|| DevMode {
            account: settings.dev_account.clone(),
        }),
        connections,
        quotas: settings.quotas.clone(),
        regions: settings.regions.clone(),
    };
    let metrics = Arc::new(trent_server::Metrics::new().with_per_key(settings.metrics_per_key));
    let app = Arc::new(
        App::new(kms.clone(), principals, options)
            .with_audit(audit.clone())
            .with_metrics(metrics),
    );
    let admin = match settings.admin_listen {
        Some(addr) => {
            let a = &settings.admin;
            let token = a
                .token_file
                .as_deref()
                .map(crate::config::read_admin_token)
                .transpose()?;
            let admin_tls = match &a.tls {
                Some((cert, key)) => Some(trent_server::tls_acceptor_for_clients(
                    cert,
                    key,
                    a.client_ca.as_deref(),
                )?),
                None => None,
            };
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr} (--admin-listen): {e}"))?;
            let bound = listener.local_addr().map_err(|e| e.to_string())?;
            if !bound.ip().is_loopback() && a.insecure && a.client_ca.is_none() && token.is_none() {
                tracing::warn!(%bound, "the admin listener serves beyond loopback without authentication (--admin-insecure)");
            }
            let state = Arc::new(trent_server::AdminState {
                kms: kms.clone(),
                metrics: app.metrics.clone(),
                audit: audit.clone(),
                auth: trent_server::AdminAuth {
                    token,
                    client_cert: a.client_ca.is_some(),
                },
            });
            let scheme = if admin_tls.is_some() { "https" } else { "http" };
            println!("trent admin listening on {scheme}://{bound}");
            Some(tokio::spawn(trent_server::serve_admin(
                listener,
                state,
                admin_tls,
                trent_server::admin::limits(&connections),
                std::future::pending(),
            )))
        }
        None => None,
    };
    println!("trent listening on {endpoint}");
    let _ = std::io::stdout().flush();
    tracing::info!(%endpoint, dev = settings.dev, in_memory = settings.store.in_memory, "serving");
    trent_server::serve(listener, app, tls, shutdown_signal()).await;
    let _ = stop_scheduler.send(true);
    let _ = scheduler.await;
    if let Some(a) = admin {
        a.abort();
    }
    // Uses seen since the last run are not lost on a clean stop.
    if let Err(e) = kms.flush_usage().await {
        tracing::error!(error = %e, "could not flush last-use records");
    }
    kms.release_scheduler().await;
    if let Some(r) = refresher {
        r.abort();
    }
    if let Some(a) = &audit {
        // The open file is signed: a clean stop leaves nothing to repair.
        a.close().await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// This server's name as a holder of the scheduler lease: its host and data directory, the same
/// across restarts, so that a server killed while holding the lease takes it back at start.
fn node_id(settings: &Settings) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}:{}", settings.store.data_dir.display())
}

/// Open the audit log: its signing key (sealed under the root key in the data directory, or made
/// for this run only with an in-memory store), its directory, and the writer.
fn open_audit(
    a: &crate::config::AuditSettings,
    root: &Arc<dyn trent_crypto::RootKey>,
    node: &str,
) -> Result<trent_audit::AuditLog, String> {
    let signer = match &a.signing_key_file {
        Some(path) => trent_audit::load_or_create_signer(path, root.as_ref(), a.signing_key_spec)?,
        None => trent_audit::AuditSigner::generate(a.signing_key_spec)?.0,
    };
    let mut config = trent_audit::AuditConfig::new(a.dir.clone(), node);
    config.max_file_bytes = a.max_file_bytes;
    config.max_file_age = Duration::from_secs(a.max_file_age_secs);
    config.digest_interval = Duration::from_secs(a.digest_interval_secs);
    config.retention = trent_audit::Retention {
        max_total_bytes: a.max_total_bytes,
        max_age: a
            .max_age_days
            .map(|d| Duration::from_secs(d.saturating_mul(86_400))),
    };
    config.stdout = a.stdout;
    config.socket = a.socket.clone();
    tracing::info!(dir = %a.dir.display(), key_id = signer.key_id(), algorithm = signer.spec().name(), "audit log");
    trent_audit::AuditLog::open(config, signer).map_err(|e| format!("audit log: {e}"))
}

/// One run of the scheduled work, recorded in the audit log and logged.
async fn run_scheduled(kms: &Kms, audit: Option<&trent_audit::AuditLog>) {
    match trent_server::run_scheduled_audited(kms, audit).await {
        Ok(r) => tracing::debug!(
            leader = r.leader,
            destroyed = r.destroyed.len(),
            rotated = r.rotated.len(),
            expired = r.expired.len(),
            "scheduled work done"
        ),
        Err(e) => tracing::error!(error = %e, "scheduled work failed"),
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
