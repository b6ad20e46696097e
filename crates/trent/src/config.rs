//! Configuration: flags, `TRENT_*` environment variables and a TOML file, in that order of
//! precedence, over defaults that work with no file at all.

use clap::Args;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use trent_crypto::{LocalRootKey, RootKey};
use trent_store::{SqliteStore, Store};

/// Options shared by every command that opens a data directory.
#[derive(Args, Debug, Clone, Default)]
pub struct StoreArgs {
    /// TOML configuration file.
    #[arg(long, env = "TRENT_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Data directory (embedded store, root key file, credentials). Default ./trent-data.
    #[arg(long, env = "TRENT_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Root key file. Default <data-dir>/root.key, created on first start.
    #[arg(long, env = "TRENT_ROOT_KEY_FILE", global = true)]
    pub root_key_file: Option<PathBuf>,
    /// Derive the root key from a passphrase (Argon2id) instead of a key file. The passphrase is
    /// read from TRENT_ROOT_PASSPHRASE, or asked for at the terminal.
    #[arg(long, env = "TRENT_PASSPHRASE", global = true, num_args = 0..=1, default_missing_value = "true")]
    pub passphrase: Option<bool>,
    /// The AWS partition served: every ARN is arn:<partition>:..., and ARNs of another are
    /// refused. Default aws.
    #[arg(long, env = "TRENT_PARTITION", global = true)]
    pub partition: Option<String>,
    /// UNSAFE, for debugging only: let the kernel write a core dump of this process (it would
    /// hold key schedules and keys AWS-LC keeps). Default false: no core dump is written.
    #[arg(long, env = "TRENT_ALLOW_CORE_DUMPS", global = true, num_args = 0..=1, default_missing_value = "true")]
    pub allow_core_dumps: Option<bool>,
    /// Start even when the data directory, root key file or credentials file is open to group
    /// or others, with a warning instead of a refusal. Default false.
    #[arg(long, env = "TRENT_ALLOW_INSECURE_PERMISSIONS", global = true, num_args = 0..=1, default_missing_value = "true")]
    pub allow_insecure_permissions: Option<bool>,
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on. Default 127.0.0.1:8080.
    #[arg(long, env = "TRENT_LISTEN")]
    pub listen: Option<String>,
    /// Dev mode: accept any credentials, mapped to --dev-account. Loopback only.
    #[arg(long, env = "TRENT_DEV", num_args = 0..=1, default_missing_value = "true")]
    pub dev: Option<bool>,
    /// The account dev mode maps every caller to. Default 111122223333.
    #[arg(long, env = "TRENT_DEV_ACCOUNT")]
    pub dev_account: Option<String>,
    /// Keep no files: an in-memory store and an ephemeral root key.
    #[arg(long, env = "TRENT_IN_MEMORY", num_args = 0..=1, default_missing_value = "true")]
    pub in_memory: Option<bool>,
    /// Dev mode only: start with the service clock this many seconds ahead (to test what
    /// happens to deletion windows that ended while the server was down).
    #[arg(long, env = "TRENT_DEV_CLOCK_OFFSET_SECS")]
    pub dev_clock_offset_secs: Option<i64>,
    /// PEM certificate chain for HTTPS.
    #[arg(long, env = "TRENT_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS.
    #[arg(long, env = "TRENT_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Account of the admin principal created on first start. Default 111122223333.
    #[arg(long, env = "TRENT_ADMIN_ACCOUNT")]
    pub admin_account: Option<String>,
    /// Largest request body accepted, in bytes. Default 65536.
    #[arg(long, env = "TRENT_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Seconds a request may take, body included. Default 30.
    #[arg(long, env = "TRENT_REQUEST_TIMEOUT_SECS")]
    pub request_timeout_secs: Option<u64>,
    /// Connections served at once. Default 4096.
    #[arg(long, env = "TRENT_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Connections served at once from one source address (an IPv6 /64), 0 for no cap.
    /// Default 512.
    #[arg(long, env = "TRENT_MAX_CONNECTIONS_PER_SOURCE")]
    pub max_connections_per_source: Option<usize>,
    /// Seconds a new connection has for its first request's headers (and its TLS handshake),
    /// and a later request for its headers from its first byte. Default 5.
    #[arg(long, env = "TRENT_HEADER_TIMEOUT_SECS")]
    pub header_timeout_secs: Option<u64>,
    /// Seconds a keep-alive connection may stay without a request after its last answer.
    /// Default 20.
    #[arg(long, env = "TRENT_IDLE_TIMEOUT_SECS")]
    pub idle_timeout_secs: Option<u64>,
    /// Request quotas: default (AWS's table times 100), aws (AWS's own default table) or off.
    #[arg(long, env = "TRENT_QUOTAS")]
    pub quotas: Option<String>,
    /// A quota rate, over the --quotas table: [ACCOUNT[/REGION]:]CLASS=RATE, RATE in requests
    /// per second or `unlimited`; repeatable (comma-separated in TRENT_QUOTA_RATE).
    #[arg(long, env = "TRENT_QUOTA_RATE", value_delimiter = ',')]
    pub quota_rate: Vec<String>,
    /// The Regions requests may be signed for, comma-separated. Default: every AWS commercial
    /// Region.
    #[arg(long, env = "TRENT_REGIONS")]
    pub regions: Option<String>,
    /// Seconds between checks for keys whose deletion window ended. Default 10.
    #[arg(long, env = "TRENT_DELETION_CHECK_SECS")]
    pub deletion_check_secs: Option<u64>,
    /// Pre-generated RSA key pairs kept per RSA key size, 0 for none. Default 2.
    #[arg(long, env = "TRENT_KEY_POOL_SIZE")]
    pub key_pool_size: Option<usize>,
    /// Log format: text or json. Default text.
    #[arg(long, env = "TRENT_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Write the audit log. Default true (false with --in-memory unless --audit-dir is given).
    #[arg(long, env = "TRENT_AUDIT", num_args = 0..=1, default_missing_value = "true")]
    pub audit: Option<bool>,
    /// Audit log directory. Default <data-dir>/audit.
    #[arg(long, env = "TRENT_AUDIT_DIR")]
    pub audit_dir: Option<PathBuf>,
    /// An audit file is closed and signed once it holds this many bytes. Default 67108864.
    #[arg(long, env = "TRENT_AUDIT_MAX_FILE_BYTES")]
    pub audit_max_file_bytes: Option<u64>,
    /// ...or once it has been open this many seconds. Default 3600.
    #[arg(long, env = "TRENT_AUDIT_MAX_FILE_AGE_SECS")]
    pub audit_max_file_age_secs: Option<u64>,
    /// Retention: remove the oldest closed audit files (with a signed statement of what went)
    /// once the log files take more than this many bytes. Default: no bound.
    #[arg(long, env = "TRENT_AUDIT_MAX_TOTAL_BYTES")]
    pub audit_max_total_bytes: Option<u64>,
    /// Retention: remove closed audit files closed more than this many days ago. Default: no
    /// bound.
    #[arg(long, env = "TRENT_AUDIT_MAX_AGE_DAYS")]
    pub audit_max_age_days: Option<u64>,
    /// Seconds between signed digests of the open audit file while records come in. Default 300.
    #[arg(long, env = "TRENT_AUDIT_DIGEST_INTERVAL_SECS")]
    pub audit_digest_interval_secs: Option<u64>,
    /// Also write every audit record to standard output. Default false.
    #[arg(long, env = "TRENT_AUDIT_STDOUT", num_args = 0..=1, default_missing_value = "true")]
    pub audit_stdout: Option<bool>,
    /// Also send every audit record, once durable, to a socket: unix:/path or tcp:host:port.
    /// Best effort: when it is gone or slow, records are dropped from the copy (never from the
    /// files) and counted.
    #[arg(long, env = "TRENT_AUDIT_SOCKET")]
    pub audit_socket: Option<String>,
    /// Algorithm of the audit signing key made on first start: ED25519 or ECDSA_P256.
    #[arg(long, env = "TRENT_AUDIT_SIGNING_KEY_SPEC")]
    pub audit_signing_key_spec: Option<String>,
    /// Address of the admin listener (metrics and health), or "off". Default 127.0.0.1:9464.
    #[arg(long, env = "TRENT_ADMIN_LISTEN")]
    pub admin_listen: Option<String>,
    /// PEM certificate chain for the admin listener (HTTPS).
    #[arg(long, env = "TRENT_ADMIN_TLS_CERT")]
    pub admin_tls_cert: Option<PathBuf>,
    /// PEM private key for the admin listener.
    #[arg(long, env = "TRENT_ADMIN_TLS_KEY")]
    pub admin_tls_key: Option<PathBuf>,
    /// PEM CA certificates: /metrics and /readyz then need a client certificate one signed.
    #[arg(long, env = "TRENT_ADMIN_CLIENT_CA")]
    pub admin_client_ca: Option<PathBuf>,
    /// File holding a bearer token (mode 0600): /metrics and /readyz then need
    /// `Authorization: Bearer <token>`.
    #[arg(long, env = "TRENT_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Serve the admin listener beyond loopback without a client certificate or token.
    #[arg(long, env = "TRENT_ADMIN_INSECURE", num_args = 0..=1, default_missing_value = "true")]
    pub admin_insecure: Option<bool>,
    /// Metrics that name key ARNs (per-key operation counts, imported material expiry per key).
    /// Default true.
    #[arg(long, env = "TRENT_METRICS_PER_KEY", num_args = 0..=1, default_missing_value = "true")]
    pub metrics_per_key: Option<bool>,
}

/// The TOML file: every setting, by the flag's name with underscores.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub root_key_file: Option<PathBuf>,
    pub passphrase: Option<bool>,
    pub partition: Option<String>,
    pub allow_core_dumps: Option<bool>,
    pub allow_insecure_permissions: Option<bool>,
    pub listen: Option<String>,
    pub dev: Option<bool>,
    pub dev_account: Option<String>,
    pub in_memory: Option<bool>,
    pub dev_clock_offset_secs: Option<i64>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub admin_account: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub request_timeout_secs: Option<u64>,
    pub max_connections: Option<usize>,
    pub max_connections_per_source: Option<usize>,
    pub header_timeout_secs: Option<u64>,
    pub idle_timeout_secs: Option<u64>,
    pub quotas: Option<String>,
    /// `[quota_rate]`: "[ACCOUNT[/REGION]:]CLASS" = rate (a number, or "unlimited").
    #[serde(default)]
    pub quota_rate: std::collections::BTreeMap<String, FileRate>,
    pub regions: Option<Vec<String>>,
    pub deletion_check_secs: Option<u64>,
    pub key_pool_size: Option<usize>,
    pub log_format: Option<String>,
    pub audit: Option<bool>,
    pub audit_dir: Option<PathBuf>,
    pub audit_max_file_bytes: Option<u64>,
    pub audit_max_file_age_secs: Option<u64>,
    pub audit_max_total_bytes: Option<u64>,
    pub audit_max_age_days: Option<u64>,
    pub audit_digest_interval_secs: Option<u64>,
    pub audit_stdout: Option<bool>,
    pub audit_socket: Option<String>,
    pub audit_signing_key_spec: Option<String>,
    pub admin_listen: Option<String>,
    pub admin_tls_cert: Option<PathBuf>,
    pub admin_tls_key: Option<PathBuf>,
    pub admin_client_ca: Option<PathBuf>,
    pub admin_token_file: Option<PathBuf>,
    pub admin_insecure: Option<bool>,
    pub metrics_per_key: Option<bool>,
    /// Principals the server makes sure exist at start, with their access keys and policies.
    #[serde(default)]
    pub principals: Vec<ConfigPrincipal>,
}

/// A rate in the `[quota_rate]` table: requests per second, or "unlimited".
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum FileRate {
    Number(f64),
    Text(String),
}

impl FileRate {
    fn text(&self) -> String {
        match self {
            FileRate::Number(n) => n.to_string(),
            FileRate::Text(t) => t.clone(),
        }
    }
}

/// A `[[principals]]` entry of the TOML file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigPrincipal {
    /// `arn:aws:iam::<account>:user/<name>`, `:role/<name>` or `:root`.
    pub arn: String,
    /// An access key to give it (both or neither of these two).
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Identity policies by name: the policy documents (JSON text). These replace whatever
    /// policies the ARN had.
    #[serde(default)]
    pub policies: std::collections::BTreeMap<String, String>,
}

/// The admin listener's bearer token from its file, which must be readable by its owner only.
pub fn read_admin_token(path: &Path) -> Result<trent_server::AdminToken, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("--admin-token-file {shown}: {e}"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "--admin-token-file {shown}: group or others may read it (mode {mode:o}); chmod 600 {shown}"
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| format!("--admin-token-file {shown}: {e}"))?,
    );
    trent_server::AdminToken::new(&text).map_err(|e| format!("--admin-token-file {shown}: {e}"))
}

pub fn load_file(path: Option<&Path>) -> Result<FileConfig, String> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Where the data lives and how the root key is had.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub data_dir: PathBuf,
    pub root_key_file: PathBuf,
    pub passphrase: bool,
    pub in_memory: bool,
    pub partition: String,
    pub allow_core_dumps: bool,
    pub allow_insecure_permissions: bool,
}

/// Every serve setting, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub store: StoreSettings,
    pub listen: SocketAddr,
    pub dev: bool,
    pub dev_account: String,
    pub dev_clock_offset_secs: i64,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub admin_account: String,
    pub max_body_bytes: usize,
    pub request_timeout_secs: u64,
    pub max_connections: usize,
    pub max_connections_per_source: usize,
    pub header_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    pub quotas: trent_server::QuotaConfig,
    pub regions: trent_server::Regions,
    pub deletion_check_secs: u64,
    pub key_pool_size: usize,
    pub log_format: String,
    pub principals: Vec<ConfigPrincipal>,
    /// None: no audit log.
    pub audit: Option<AuditSettings>,
    /// None: no admin listener.
    pub admin_listen: Option<SocketAddr>,
    pub admin: AdminSettings,
    pub metrics_per_key: bool,
}

/// How the admin listener is protected.
#[derive(Debug, Clone, Default)]
pub struct AdminSettings {
    /// Its certificate chain and key: it serves HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Clients must present a certificate one of these signed (for /metrics and /readyz).
    pub client_ca: Option<PathBuf>,
    /// Clients must send this file's token (for /metrics and /readyz).
    pub token_file: Option<PathBuf>,
    /// Beyond loopback without either.
    pub insecure: bool,
}

/// Where and how the audit log is written.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    pub dir: PathBuf,
    /// The sealed signing key; None with an in-memory store (a key for this run only).
    pub signing_key_file: Option<PathBuf>,
    pub signing_key_spec: trent_audit::AuditKeySpec,
    pub max_file_bytes: u64,
    pub max_file_age_secs: u64,
    /// Retention (None: no bound).
    pub max_total_bytes: Option<u64>,
    pub max_age_days: Option<u64>,
    pub digest_interval_secs: u64,
    pub stdout: bool,
    pub socket: Option<trent_audit::AuditSocket>,
}

pub fn resolve_store(args: &StoreArgs, file: &FileConfig, in_memory: bool) -> StoreSettings {
    let data_dir = args
        .data_dir
        .clone()
        .or_else(|| file.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from("./trent-data"));
    let root_key_file = args
        .root_key_file
        .clone()
        .or_else(|| file.root_key_file.clone())
        .unwrap_or_else(|| data_dir.join("root.key"));
    StoreSettings {
        passphrase: args.passphrase.or(file.passphrase).unwrap_or(false),
        allow_core_dumps: args
            .allow_core_dumps
            .or(file.allow_core_dumps)
            .unwrap_or(false),
        allow_insecure_permissions: args
            .allow_insecure_permissions
            .or(file.allow_insecure_permissions)
            .unwrap_or(false),
        data_dir,
        root_key_file,
        in_memory,
        partition: args
            .partition
            .clone()
            .or_else(|| file.partition.clone())
            .unwrap_or_else(|| trent_kms::ids::DEFAULT_PARTITION.into()),
    }
}

impl Settings {
    pub fn resolve(args: ServeArgs) -> Result<Settings, String> {
        let file = load_file(args.store.config.as_deref())?;
        let in_memory = args.in_memory.or(file.in_memory).unwrap_or(false);
        let store = resolve_store(&args.store, &file, in_memory);
        let listen_text = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            format!("--listen: '{listen_text}' is not an address such as 127.0.0.1:8080")
        })?;
        let dev = args.dev.or(file.dev).unwrap_or(false);
        let dev_account = args
            .dev_account
            .or(file.dev_account)
            .unwrap_or_else(|| "111122223333".into());
        let admin_account = args
            .admin_account
            .or(file.admin_account)
            .unwrap_or_else(|| "111122223333".into());
        for (name, v) in [
            ("--dev-account", &dev_account),
            ("--admin-account", &admin_account),
        ] {
            if !trent_kms::ids::is_account_id(v) {
                return Err(format!("{name}: '{v}' is not a 12-digit account id"));
            }
        }
        let tls = match (
            args.tls_cert.or(file.tls_cert),
            args.tls_key.or(file.tls_key),
        ) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => return Err("--tls-cert and --tls-key go together".into()),
        };
        if dev && !listen.ip().is_loopback() {
            return Err(format!(
                "dev mode accepts any credentials, so it refuses to listen beyond loopback ({listen})"
            ));
        }
        if tls.is_none() && !listen.ip().is_loopback() {
            return Err(format!(
                "without --tls-cert and --tls-key trent listens on loopback only, not {listen}"
            ));
        }
        let dev_clock_offset_secs = args
            .dev_clock_offset_secs
            .or(file.dev_clock_offset_secs)
            .unwrap_or(0);
        if dev_clock_offset_secs != 0 && !dev {
            return Err("--dev-clock-offset-secs is for dev mode only".into());
        }
        let log_format = args
            .log_format
            .or(file.log_format)
            .unwrap_or_else(|| "text".into());
        if log_format != "text" && log_format != "json" {
            return Err(format!(
                "--log-format: '{log_format}' is neither text nor json"
            ));
        }
        let audit_dir = args.audit_dir.or(file.audit_dir);
        let audit_on = args
            .audit
            .or(file.audit)
            .unwrap_or(!store.in_memory || audit_dir.is_some());
        let spec_name = args
            .audit_signing_key_spec
            .or(file.audit_signing_key_spec)
            .unwrap_or_else(|| "ED25519".into());
        let signing_key_spec =
            trent_audit::AuditKeySpec::from_name(&spec_name).ok_or_else(|| {
                format!("--audit-signing-key-spec: '{spec_name}' is neither ED25519 nor ECDSA_P256")
            })?;
        // Checked even when the audit log is off, so that a mistake is not silently ignored.
        let audit_socket = args
            .audit_socket
            .or(file.audit_socket)
            .map(|s| s.parse().map_err(|e| format!("--audit-socket: {e}")))
            .transpose()?;
        let retention = |flag: &str, value: Option<u64>| match value {
            Some(0) => Err(format!(
                "{flag}: 0 would remove every closed file at once; give a bound above 0, or leave it out to keep everything"
            )),
            v => Ok(v),
        };
        let audit_max_total_bytes = retention(
            "--audit-max-total-bytes",
            args.audit_max_total_bytes.or(file.audit_max_total_bytes),
        )?;
        let audit_max_age_days = retention(
            "--audit-max-age-days",
            args.audit_max_age_days.or(file.audit_max_age_days),
        )?;
        let audit = match (audit_on, audit_dir) {
            (false, _) => None,
            (true, None) if store.in_memory => {
                return Err("--in-memory keeps no files: give --audit-dir for the audit log, or --audit false".into());
            }
            (true, dir) => Some(AuditSettings {
                dir: dir.unwrap_or_else(|| store.data_dir.join("audit")),
                signing_key_file: (!store.in_memory)
                    .then(|| store.data_dir.join("audit-signing-key")),
                signing_key_spec,
                max_file_bytes: args
                    .audit_max_file_bytes
                    .or(file.audit_max_file_bytes)
                    .unwrap_or(64 * 1024 * 1024)
                    .max(1),
                max_file_age_secs: args
                    .audit_max_file_age_secs
                    .or(file.audit_max_file_age_secs)
                    .unwrap_or(3600)
                    .max(1),
                max_total_bytes: audit_max_total_bytes,
                max_age_days: audit_max_age_days,
                digest_interval_secs: args
                    .audit_digest_interval_secs
                    .or(file.audit_digest_interval_secs)
                    .unwrap_or(300)
                    .max(1),
                stdout: args.audit_stdout.or(file.audit_stdout).unwrap_or(false),
                socket: audit_socket,
            }),
        };
        let admin_text = args
            .admin_listen
            .or(file.admin_listen)
            .unwrap_or_else(|| "127.0.0.1:9464".into());
        let admin_listen = if admin_text == "off" {
            None
        } else {
            Some(admin_text.parse::<SocketAddr>().map_err(|_| {
                format!("--admin-listen: '{admin_text}' is neither an address such as 127.0.0.1:9464 nor off")
            })?)
        };
        let admin = AdminSettings {
            tls: match (
                args.admin_tls_cert.or(file.admin_tls_cert),
                args.admin_tls_key.or(file.admin_tls_key),
            ) {
                (Some(c), Some(k)) => Some((c, k)),
                (None, None) => None,
                _ => return Err("--admin-tls-cert and --admin-tls-key go together".into()),
            },
            client_ca: args.admin_client_ca.or(file.admin_client_ca),
            token_file: args.admin_token_file.or(file.admin_token_file),
            insecure: args.admin_insecure.or(file.admin_insecure).unwrap_or(false),
        };
        if admin.client_ca.is_some() && admin.tls.is_none() {
            return Err(
                "--admin-client-ca needs --admin-tls-cert and --admin-tls-key: client certificates come with TLS".into(),
            );
        }
        if let Some(addr) = admin_listen
            && !addr.ip().is_loopback()
            && admin.client_ca.is_none()
            && admin.token_file.is_none()
            && !admin.insecure
        {
            return Err(format!(
                "--admin-listen {addr} is beyond loopback, and the admin listener names every account's keys: \
                 give it client certificates (--admin-tls-cert, --admin-tls-key and --admin-client-ca) \
                 or a bearer token (--admin-token-file), or serve it without either with --admin-insecure"
            ));
        }
        let quotas = {
            let base_name = args
                .quotas
                .or(file.quotas)
                .unwrap_or_else(|| "default".into());
            let base = trent_server::QuotaBase::from_name(&base_name).ok_or_else(|| {
                format!("--quotas: '{base_name}' is none of default, aws and off")
            })?;
            // The file's rates first, the flags' after: of two alike, the flag's wins.
            let mut rules = Vec::new();
            for (target, rate) in &file.quota_rate {
                let text = format!("{target}={}", rate.text());
                rules.push(
                    trent_server::QuotaRule::parse(&text)
                        .map_err(|e| format!("quota_rate: {e}"))?,
                );
            }
            for text in &args.quota_rate {
                rules.push(
                    trent_server::QuotaRule::parse(text)
                        .map_err(|e| format!("--quota-rate: {e}"))?,
                );
            }
            trent_server::QuotaConfig { base, rules }
        };
        let regions = match (args.regions, file.regions) {
            (Some(text), _) => {
                trent_server::Regions::parse(&text).map_err(|e| format!("--regions: {e}"))?
            }
            (None, Some(list)) => trent_server::Regions::parse(&list.join(","))
                .map_err(|e| format!("regions: {e}"))?,
            (None, None) => trent_server::Regions::default(),
        };
        Ok(Settings {
            audit,
            admin_listen,
            admin,
            metrics_per_key: args
                .metrics_per_key
                .or(file.metrics_per_key)
                .unwrap_or(true),
            quotas,
            regions,
            store,
            listen,
            dev,
            dev_account,
            dev_clock_offset_secs,
            tls,
            admin_account,
            max_body_bytes: args
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(64 * 1024),
            request_timeout_secs: args
                .request_timeout_secs
                .or(file.request_timeout_secs)
                .unwrap_or(30),
            max_connections: args
                .max_connections
                .or(file.max_connections)
                .unwrap_or(4096),
            max_connections_per_source: args
                .max_connections_per_source
                .or(file.max_connections_per_source)
                .unwrap_or(512),
            header_timeout_secs: args
                .header_timeout_secs
                .or(file.header_timeout_secs)
                .unwrap_or(5)
                .max(1),
            idle_timeout_secs: args
                .idle_timeout_secs
                .or(file.idle_timeout_secs)
                .unwrap_or(20)
                .max(1),
            deletion_check_secs: args
                .deletion_check_secs
                .or(file.deletion_check_secs)
                .unwrap_or(10)
                .max(1),
            key_pool_size: args
                .key_pool_size
                .or(file.key_pool_size)
                .unwrap_or(trent_kms::keypool::DEFAULT_CAPACITY)
                .min(64),
            log_format,
            principals: file.principals,
        })
    }
}

/// Open the store and the root key a data directory is configured with. The caller has taken
/// the directory's lock (`trent serve`) and checked its permissions (see [`crate::datadir`]).
/// `passphrase` is one read before anything was created (see [`early_passphrase`]); otherwise it
/// is read here, once the store says the directory was made with one.
pub async fn open_store(
    s: &StoreSettings,
    passphrase: Option<zeroize::Zeroizing<String>>,
) -> Result<(Arc<dyn Store>, Arc<dyn RootKey>), String> {
    // The partition is the process's from here on: every ARN made or accepted is in it.
    trent_kms::ids::set_partition(&s.partition).map_err(|e| format!("--partition: {e}"))?;
    if s.in_memory {
        let store = SqliteStore::open_in_memory().map_err(|e| e.to_string())?;
        let root = LocalRootKey::ephemeral().map_err(|e| e.to_string())?;
        return Ok((Arc::new(store), Arc::new(root)));
    }
    crate::datadir::create_private_dir(&s.data_dir)?;
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&s.data_dir.join("trent.db")).map_err(|e| e.to_string())?);
    let salt = store
        .get_setting(PASSPHRASE_SALT_SETTING)
        .await
        .map_err(|e| e.to_string())?;
    // The root key's check value: written the first time a root key opened this store.
    let has_keys = store
        .get_setting(trent_kms::service::ROOT_CHECK_SETTING)
        .await
        .map_err(|e| e.to_string())?
        .is_some();
    let dir = s.data_dir.display();
    let root: Arc<dyn RootKey> = if s.passphrase {
        if salt.is_none() && has_keys {
            return Err(format!(
                "{dir} was made with a root key file, not a passphrase: start it without --passphrase"
            ));
        }
        let passphrase = match passphrase {
            Some(p) => p,
            None => read_passphrase()?,
        };
        let salt = match salt {
            Some(salt) => salt,
            None => {
                let salt =
                    trent_crypto::primitives::random_bytes(trent_crypto::root::PASSPHRASE_SALT_LEN)
                        .map_err(|e| e.to_string())?
                        .to_vec();
                store
                    .put_setting(PASSPHRASE_SALT_SETTING, &salt)
                    .await
                    .map_err(|e| e.to_string())?;
                salt
            }
        };
        Arc::new(
            LocalRootKey::from_passphrase(passphrase.as_bytes(), &salt)
                .map_err(|e| e.to_string())?,
        )
    } else if salt.is_some() {
        return Err(format!(
            "{dir} was made with a passphrase: start it with --passphrase (the passphrase from TRENT_ROOT_PASSPHRASE or the terminal)"
        ));
    } else if s.root_key_file.exists() {
        Arc::new(LocalRootKey::load_file(&s.root_key_file).map_err(|e| e.to_string())?)
    } else if has_keys {
        return Err(format!(
            "the root key file {} is missing, and {dir} holds data sealed under it: restore the file from your backup (or point --root-key-file at it); trent does not make a new one",
            s.root_key_file.display()
        ));
    } else {
        let key = LocalRootKey::create_file(&s.root_key_file).map_err(|e| e.to_string())?;
        eprintln!("trent: created root key file {}", s.root_key_file.display());
        Arc::new(key)
    };
    Ok((store, root))
}

/// Where the store keeps the salt of a passphrase-derived root key.
const PASSPHRASE_SALT_SETTING: &str = "root-key-salt";

/// With `--passphrase` on a data directory that has no store yet: the passphrase, read before
/// anything is created, so that a failed read leaves nothing behind.
pub fn early_passphrase(s: &StoreSettings) -> Result<Option<zeroize::Zeroizing<String>>, String> {
    if s.in_memory || !s.passphrase || s.data_dir.join("trent.db").exists() {
        return Ok(None);
    }
    read_passphrase().map(Some)
}

fn read_passphrase() -> Result<zeroize::Zeroizing<String>, String> {
    if let Ok(p) = std::env::var("TRENT_ROOT_PASSPHRASE") {
        return Ok(zeroize::Zeroizing::new(p));
    }
    rpassword::prompt_password("trent root key passphrase: ")
        .map(zeroize::Zeroizing::new)
        .map_err(|e| format!("cannot read the passphrase (set TRENT_ROOT_PASSPHRASE): {e}"))
}
