//! The admin listener over a real socket: health, readiness and metrics of a service opened on an
//! in-memory store.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use trent_audit::{AuditConfig, AuditKeySpec, AuditLog, AuditSigner};
use trent_crypto::{LocalRootKey, RootKey};
use trent_kms::api::CreateKeyRequest;
use trent_kms::{Caller, Kms};
use trent_server::{AdminAuth, AdminState, AdminToken, ConnLimits, Metrics, serve_admin};
use trent_store::{SqliteStore, Store};

fn caller() -> Caller {
    let mut c = Caller::new(
        "111122223333",
        "us-east-1",
        "arn:aws:iam::111122223333:user/test",
    );
    let admin = r#"{"Statement":{"Effect":"Allow","Action":"kms:*","Resource":"*"}}"#;
    c.identity = Arc::from(vec![
        trent_kms::policy::parse_kind(admin, trent_kms::policy::Kind::Identity).unwrap(),
    ]);
    c
}

async fn kms() -> Arc<Kms> {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
    let root: Arc<dyn RootKey> = Arc::new(LocalRootKey::ephemeral().unwrap());
    Arc::new(Kms::open(store, root).await.unwrap())
}

fn audit_log(dir: &std::path::Path) -> Arc<AuditLog> {
    let signer = AuditSigner::generate(AuditKeySpec::Ed25519).unwrap().0;
    Arc::new(AuditLog::open(AuditConfig::new(dir.to_path_buf(), "n"), signer).unwrap())
}

struct Admin {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Admin {
    async fn start(state: AdminState) -> Admin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let limits = trent_server::admin::limits(&ConnLimits::default());
        let task = tokio::spawn(serve_admin(
            listener,
            Arc::new(state),
            None,
            limits,
            async {
                let _ = stopped.await;
            },
        ));
        Admin {
            addr,
            stop: Some(stop),
            task,
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("serve_admin returns on shutdown")
            .unwrap();
    }
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on a fresh connection.
async fn request(addr: SocketAddr, method: &str, path: &str) -> Answer {
    request_with(addr, method, path, "").await
}

/// One HTTP/1.1 request with extra header lines (each ending in CRLF).
async fn request_with(addr: SocketAddr, method: &str, path: &str, headers: &str) -> Answer {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap();
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect();
    Answer {
        status: status.parse().unwrap(),
        headers,
        body: body.to_string(),
    }
}

async fn get(addr: SocketAddr, path: &str) -> Answer {
    request(addr, "GET", path).await
}

#[tokio::test]
async fn healthz_readyz_and_unknown_paths() {
    let admin = Admin::start(AdminState {
        kms: kms().await,
        metrics: Arc::new(Metrics::new()),
        audit: None,
        auth: AdminAuth::default(),
    })
    .await;

    let a = get(admin.addr, "/healthz").await;
    assert_eq!((a.status, a.body.as_str()), (200, "ok"));
    assert_eq!(a.header("content-type"), Some("text/plain; charset=utf-8"));

    // The audit log off counts as writable.
    let a = get(admin.addr, "/readyz").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body, r#"{"store":true,"rootKey":true,"audit":true}"#);
    assert_eq!(a.header("content-type"), Some("application/json"));

    let a = get(admin.addr, "/nope").await;
    assert_eq!((a.status, a.body.as_str()), (404, "not found\n"));
    let a = get(admin.addr, "/").await;
    assert_eq!(a.status, 404);
    let a = get(admin.addr, "/metrics/extra").await;
    assert_eq!(a.status, 404);

    let a = request(admin.addr, "POST", "/metrics").await;
    assert_eq!((a.status, a.body.as_str()), (405, "method not allowed\n"));
    assert_eq!(a.header("allow"), Some("GET, HEAD"));

    let a = request(admin.addr, "HEAD", "/healthz").await;
    assert_eq!((a.status, a.body.as_str()), (200, ""));

    // A query string does not change the path.
    let a = get(admin.addr, "/healthz?verbose=1").await;
    assert_eq!((a.status, a.body.as_str()), (200, "ok"));

    admin.stop().await;
}

#[tokio::test]
async fn readyz_with_a_writable_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let audit = audit_log(dir.path());
    let admin = Admin::start(AdminState {
        kms: kms().await,
        metrics: Arc::new(Metrics::new()),
        audit: Some(audit.clone()),
        auth: AdminAuth::default(),
    })
    .await;
    let a = get(admin.addr, "/readyz").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body, r#"{"store":true,"rootKey":true,"audit":true}"#);
    admin.stop().await;
    audit.close().await;
}

#[tokio::test]
async fn metrics_show_requests_keys_and_the_audit_log() {
    let kms = kms().await;
    let c = caller();
    let mut arns = Vec::new();
    for _ in 0..2 {
        let key = kms.create_key(&c, CreateKeyRequest::default()).await;
        arns.push(key.unwrap().key_metadata.unwrap().arn);
    }
    let hmac = CreateKeyRequest {
        key_usage: Some("GENERATE_VERIFY_MAC".into()),
        key_spec: Some("HMAC_384".into()),
        ..Default::default()
    };
    kms.create_key(&c, hmac).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let audit = audit_log(dir.path());
    audit.append(serde_json::Map::new()).await.unwrap();

    let metrics = Arc::new(Metrics::new());
    metrics.observe_request("Encrypt", None, 200, Duration::from_micros(700));
    metrics.observe_request("Encrypt", None, 200, Duration::from_millis(30));
    metrics.observe_request(
        "Decrypt",
        Some("InvalidCiphertextException"),
        400,
        Duration::ZERO,
    );
    metrics.observe_request("-", Some("UnknownOperationException"), 400, Duration::ZERO);
    metrics.observe_key_use(&arns[0], "Encrypt");
    metrics.observe_key_use(&arns[0], "Encrypt");

    let admin = Admin::start(AdminState {
        kms: kms.clone(),
        metrics: metrics.clone(),
        audit: Some(audit.clone()),
        auth: AdminAuth::default(),
    })
    .await;
    let a = get(admin.addr, "/metrics").await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = a.body;
    let has = |line: &str| {
        assert!(
            text.lines().any(|l| l == line),
            "missing: {line}\n---\n{text}"
        )
    };
    has("# TYPE trent_requests_total counter");
    has(r#"trent_requests_total{operation="Encrypt",outcome="success",error_code=""} 2"#);
    has(
        r#"trent_requests_total{operation="Decrypt",outcome="client_error",error_code="InvalidCiphertextException"} 1"#,
    );
    has(
        r#"trent_requests_total{operation="unknown",outcome="client_error",error_code="UnknownOperationException"} 1"#,
    );
    has("# TYPE trent_request_duration_seconds histogram");
    has(r#"trent_request_duration_seconds_bucket{operation="Encrypt",le="0.0005"} 0"#);
    has(r#"trent_request_duration_seconds_bucket{operation="Encrypt",le="0.001"} 1"#);
    has(r#"trent_request_duration_seconds_bucket{operation="Encrypt",le="0.025"} 1"#);
    has(r#"trent_request_duration_seconds_bucket{operation="Encrypt",le="0.05"} 2"#);
    has(r#"trent_request_duration_seconds_bucket{operation="Encrypt",le="+Inf"} 2"#);
    has(r#"trent_request_duration_seconds_sum{operation="Encrypt"} 0.0307"#);
    has(r#"trent_request_duration_seconds_count{operation="Encrypt"} 2"#);
    has(&format!(
        r#"trent_key_operations_total{{key_arn="{}",operation="Encrypt"}} 2"#,
        arns[0]
    ));
    has("# TYPE trent_keys gauge");
    has(r#"trent_keys{state="Enabled",key_spec="HMAC_384"} 1"#);
    has(r#"trent_keys{state="Enabled",key_spec="SYMMETRIC_DEFAULT"} 2"#);
    has("# TYPE trent_imported_material_expiry_seconds gauge");
    has(&format!(
        r#"trent_build_info{{version="{}"}} 1"#,
        env!("CARGO_PKG_VERSION")
    ));
    has("trent_audit_writable 1");
    has("trent_audit_queue_depth 0");
    has("trent_audit_records_total 1");
    has("trent_audit_failed_batches_total 0");
    has(r#"trent_audit_write_duration_seconds_bucket{le="+Inf"} 1"#);
    has("trent_audit_write_duration_seconds_count 1");

    // Counters move between scrapes; key counts follow the service.
    metrics.observe_request("Encrypt", None, 200, Duration::from_micros(700));
    kms.create_key(&c, CreateKeyRequest::default())
        .await
        .unwrap();
    let text = get(admin.addr, "/metrics").await.body;
    assert!(text.contains(
        "trent_requests_total{operation=\"Encrypt\",outcome=\"success\",error_code=\"\"} 3\n"
    ));
    assert!(text.contains("trent_keys{state=\"Enabled\",key_spec=\"SYMMETRIC_DEFAULT\"} 3\n"));

    admin.stop().await;
    audit.close().await;
}

#[tokio::test]
async fn metrics_without_the_audit_log_leave_its_metrics_out() {
    let admin = Admin::start(AdminState {
        kms: kms().await,
        metrics: Arc::new(Metrics::new()),
        audit: None,
        auth: AdminAuth::default(),
    })
    .await;
    let a = get(admin.addr, "/metrics").await;
    assert_eq!(a.status, 200);
    assert!(a.body.contains("# TYPE trent_build_info gauge\n"));
    assert!(!a.body.contains("trent_audit_"), "{}", a.body);
    admin.stop().await;
}

#[tokio::test]
async fn many_requests_on_one_connection() {
    let admin = Admin::start(AdminState {
        kms: kms().await,
        metrics: Arc::new(Metrics::new()),
        audit: None,
        auth: AdminAuth::default(),
    })
    .await;
    let mut s = TcpStream::connect(admin.addr).await.unwrap();
    let one = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let last = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    s.write_all(format!("{one}{one}{last}").as_bytes())
        .await
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    assert_eq!(raw.matches("HTTP/1.1 200 OK").count(), 3, "{raw}");
    admin.stop().await;
}

#[tokio::test]
async fn a_token_guards_metrics_and_readyz_but_not_healthz() {
    const TOKEN: &str = "0123456789abcdef-admin-token";
    let admin = Admin::start(AdminState {
        kms: kms().await,
        metrics: Arc::new(Metrics::new()),
        audit: None,
        auth: AdminAuth {
            token: Some(AdminToken::new(&format!("  {TOKEN}\n")).unwrap()),
            client_cert: false,
        },
    })
    .await;
    let a = get(admin.addr, "/healthz").await;
    assert_eq!((a.status, a.body.as_str()), (200, "ok"));
    for path in ["/metrics", "/readyz"] {
        for sent in [
            String::new(),
            "Authorization: Bearer wrong-token-0123456789\r\n".to_string(),
            format!("Authorization: Bearer {TOKEN}x\r\n"),
            format!("Authorization: Basic {TOKEN}\r\n"),
            format!("Authorization: {TOKEN}\r\n"),
        ] {
            let a = request_with(admin.addr, "GET", path, &sent).await;
            assert_eq!(
                (a.status, a.body.as_str()),
                (401, "unauthorized\n"),
                "{path} {sent:?}"
            );
            assert_eq!(
                a.header("www-authenticate"),
                Some(r#"Bearer realm="trent-admin""#)
            );
        }
        let a = request_with(
            admin.addr,
            "GET",
            path,
            &format!("Authorization: Bearer {TOKEN}\r\n"),
        )
        .await;
        assert_eq!(a.status, 200, "{path}: {}", a.body);
    }
    admin.stop().await;
}

#[test]
fn a_short_token_is_refused_and_never_shown() {
    assert!(AdminToken::new("short").is_err());
    assert!(AdminToken::new("with a space in it, long enough").is_err());
    let t = AdminToken::new("0123456789abcdef-secret").unwrap();
    assert_eq!(format!("{t:?}"), "AdminToken(<redacted>)");
}
