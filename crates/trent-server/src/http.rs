//! The HTTP front: one POST endpoint speaking awsJson1_1, plus dev mode's reset endpoint.
//!
//! Per request: body limit (Content-Length checked before reading, the read itself bounded),
//! target, SigV4, principal, the request quota, then the dispatch table; a request id on every
//! response; a timeout around the whole of it. Connections are bounded by [`crate::conn`].

use crate::conn::{self, Activity, ConnLimits};
use crate::dispatch;
use crate::metrics::{CloseReason, Listener, Metrics};
use crate::quota::{QuotaConfig, Quotas};
use crate::regions::Regions;
use crate::sigv4::{self, SigningKeyCache};
use crate::trail;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tracing::Instrument;
use trent_audit::AuditLog;
use trent_kms::{Caller, Kms, KmsError, Principals};

/// Dev mode: any credentials are accepted and mapped to one account.
#[derive(Debug, Clone)]
pub struct DevMode {
    pub account: String,
}

/// How the front end behaves.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub dev: Option<DevMode>,
    /// Connections: how many, from one address, and how long they may wait.
    pub connections: ConnLimits,
    /// Request quotas per account, Region and class.
    pub quotas: QuotaConfig,
    /// The Regions requests may be signed for.
    pub regions: Regions,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            dev: None,
            connections: ConnLimits::default(),
            quotas: QuotaConfig::default(),
            regions: Regions::default(),
        }
    }
}

/// Everything a request needs.
pub struct App {
    pub kms: Arc<Kms>,
    pub principals: Arc<Principals>,
    pub options: ServerOptions,
    /// Every request is recorded here before it is answered (none: no audit log).
    pub audit: Option<Arc<AuditLog>>,
    pub metrics: Arc<Metrics>,
    pub quotas: Quotas,
    signing_keys: SigningKeyCache,
}

impl App {
    pub fn new(kms: Arc<Kms>, principals: Arc<Principals>, options: ServerOptions) -> Self {
        Self {
            kms,
            principals,
            quotas: Quotas::new(options.quotas.clone()),
            options,
            audit: None,
            metrics: Arc::new(Metrics::new()),
            signing_keys: SigningKeyCache::default(),
        }
    }

    pub fn with_audit(mut self, audit: Option<Arc<AuditLog>>) -> Self {
        self.audit = audit;
        self
    }

    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }
}

/// The answer when the audit log cannot take a record: the request is refused (or, if it was
/// already carried out when its record failed, reported as failed), and the client retries.
fn audit_unavailable() -> KmsError {
    KmsError::Internal("The audit log cannot be written. Retry the request.".into())
}

/// Run the scheduled work and record what it did. While the audit log cannot be written the
/// work waits: nothing happens that would go unrecorded.
pub async fn run_scheduled_audited(
    kms: &Kms,
    audit: Option<&AuditLog>,
) -> Result<trent_kms::lifecycle::ScheduleReport, KmsError> {
    if audit.is_some_and(|a| !a.is_healthy()) {
        return Err(audit_unavailable());
    }
    // Each change it makes waits for the audit log (the store is gated), so a failure stops
    // the work; what was done is recorded, all of it sent at once.
    let report = kms.run_scheduled().await?;
    if let Some(audit) = audit {
        let events = trail::schedule_events(&report, OffsetDateTime::now_utc());
        if audit.append_all(events).await.is_err() {
            tracing::error!("events of the scheduled work could not be recorded in the audit log");
            return Err(audit_unavailable());
        }
    }
    Ok(report)
}

type Body = Full<Bytes>;

fn new_request_id() -> String {
    trent_kms::ids::new_key_id().unwrap_or_else(|_| "00000000-0000-4000-8000-000000000000".into())
}

fn json_response(status: u16, request_id: &str, body: Vec<u8>) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    resp
}

/// The AWS error shape: `{"__type": ..., "message": ...}`, the status, `X-Amzn-ErrorType`.
pub fn error_response(err: &KmsError, request_id: &str) -> Response<Body> {
    let mut body = serde_json::Map::new();
    body.insert("__type".into(), err.name().into());
    if let Some(m) = err.message() {
        body.insert("message".into(), m.into());
    }
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut resp = json_response(err.status(), request_id, bytes);
    resp.headers_mut()
        .insert("x-amzn-errortype", HeaderValue::from_static(err.name()));
    resp
}

fn valid_region(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 32
        && r.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The answer to a signature scoped to a Region this server does not serve: what AWS answers a
/// request signed for another Region than the endpoint's (no endpoint exists for a made-up one).
fn region_not_served(region: &str) -> KmsError {
    KmsError::InvalidSignature(format!(
        "Credential should be scoped to a valid region, not '{region}'. "
    ))
}

/// Whether the request carries a session token (`X-Amz-Security-Token`, as a header or as a
/// presigned query's parameter).
fn has_session_token(parts: &http::request::Parts) -> bool {
    parts.headers.contains_key("x-amz-security-token")
        || parts.uri.query().is_some_and(|q| {
            q.split('&').any(|pair| {
                pair.split('=')
                    .next()
                    .is_some_and(|k| k.eq_ignore_ascii_case("X-Amz-Security-Token"))
            })
        })
}

/// Authenticate the request: who is calling, in which region.
async fn authenticate(
    app: &App,
    parts: &http::request::Parts,
    body: &[u8],
) -> Result<Caller, KmsError> {
    if let Some(dev) = &app.options.dev {
        // Any credentials (a session token too, as moto takes it): take the region from the
        // scope when there is one.
        let region = sigv4::parse_authorization(&parts.headers)
            .map(|a| a.region)
            .ok()
            .filter(|r| valid_region(r))
            .unwrap_or_else(|| "us-east-1".into());
        if !app.options.regions.contains(&region) {
            return Err(region_not_served(&region));
        }
        let root = trent_kms::policy::account_root(&dev.account);
        return Ok(Caller::new(&dev.account, &region, &root));
    }
    let auth = sigv4::parse_authorization(&parts.headers)?;
    if !valid_region(&auth.region) {
        return Err(KmsError::IncompleteSignature(format!(
            "Credential should be scoped to a valid region, not '{}'. ",
            auth.region
        )));
    }
    if !app.options.regions.contains(&auth.region) {
        return Err(region_not_served(&auth.region));
    }
    // trent issues no temporary credentials: a session token is one it cannot know, and is
    // refused as AWS refuses an invalid one, never ignored.
    if has_session_token(parts) {
        return Err(KmsError::UnrecognizedClient);
    }
    let amz_date = sigv4::check_time(&auth, &parts.headers, OffsetDateTime::now_utc())?;
    let principal = app
        .principals
        .lookup(&auth.access_key_id)
        .await?
        .ok_or(KmsError::UnrecognizedClient)?;
    app.signing_keys.verify(
        &principal,
        &auth,
        &amz_date,
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query(),
        &parts.headers,
        body,
    )?;
    let mut caller = Caller::new(&principal.account, &auth.region, &principal.arn);
    caller.identity = app.principals.policies_of(&principal.arn);
    Ok(caller)
}

async fn read_body(app: &App, body: Incoming) -> Result<Bytes, KmsError> {
    Limited::new(body, app.options.max_body_bytes)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                KmsError::RequestEntityTooLarge
            } else {
                KmsError::Serialization("The request body could not be read.".into())
            }
        })
}

/// What a request turned out to be once read and authenticated.
enum Accepted {
    /// An answer ready to send (dev mode's endpoints).
    Done(Vec<u8>),
    /// An operation to run.
    Operation {
        op: &'static str,
        caller: Caller,
        body: Bytes,
    },
}

/// Read, bound and authenticate a request: everything a slow or hostile client controls, and so
/// what the request timeout covers.
async fn accept(
    app: &App,
    req: Request<Incoming>,
    peer: Peer,
    seen_body: &mut Bytes,
) -> Result<Accepted, KmsError> {
    let (parts, body) = req.into_parts();
    let too_large = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > app.options.max_body_bytes as u64);
    if too_large {
        return Err(KmsError::RequestEntityTooLarge);
    }
    if parts.method == Method::POST && app.options.dev.is_some() {
        match parts.uri.path() {
            "/moto-api/reset" => {
                app.kms.reset().await?;
                return Ok(Accepted::Done(br#"{"status":"ok"}"#.to_vec()));
            }
            "/trent-dev/advance-clock" => {
                let body = read_body(app, body).await?;
                let seconds = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("Seconds").and_then(serde_json::Value::as_i64))
                    .filter(|s| *s >= 0)
                    .ok_or_else(|| {
                        KmsError::Validation("Give {\"Seconds\": N} with N >= 0.".into())
                    })?;
                app.kms.clock.advance(seconds);
                // What fell due in the skipped time is done before the answer.
                run_scheduled_audited(&app.kms, app.audit.as_deref()).await?;
                let now = app.kms.clock.now();
                return Ok(Accepted::Done(
                    serde_json::json!({ "Now": now }).to_string().into_bytes(),
                ));
            }
            _ => {}
        }
    }
    if parts.method != Method::POST {
        return Err(KmsError::UnknownOperation);
    }
    let op = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(dispatch::operation)
        .ok_or(KmsError::UnknownOperation)?;
    let body = read_body(app, body).await?;
    *seen_body = body.clone();
    let mut caller = authenticate(app, &parts, &body).await?;
    caller.source_ip = Some(peer.ip);
    caller.secure_transport = peer.tls;
    Ok(Accepted::Operation { op, caller, body })
}

/// Where a connection comes from: the aws:SourceIp and aws:SecureTransport of its requests.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub ip: std::net::IpAddr,
    pub tls: bool,
}

/// Answer one request, whatever happens, once its audit record is durable; count it.
pub async fn handle(app: Arc<App>, req: Request<Incoming>, peer: Peer) -> Response<Body> {
    let started = std::time::Instant::now();
    let request_id = new_request_id();
    // Every log line of the request, in whatever task, carries its id.
    let span = tracing::info_span!("request", request_id = %request_id);
    // The whole request runs as a task of its own: if the client goes away, what the operation
    // did is still recorded, and its store write and the in-memory view stay together.
    let task = {
        let app = app.clone();
        tokio::spawn(async move { answer(&app, req, peer, request_id).await }.instrument(span))
    };
    let (status, error, response, event_name) = match task.await {
        Ok(answered) => answered,
        Err(e) => {
            tracing::error!(error = %e, "request task failed");
            let err = KmsError::Internal("An internal error occurred. Retry the request.".into());
            let resp = error_response(&err, &new_request_id());
            (500, Some(err.name()), resp, "-".to_string())
        }
    };
    app.metrics
        .observe_request(&event_name, error, status, started.elapsed());
    response
}

/// The answer to one request, its status, its error name and what the audit record calls it.
async fn answer(
    app: &Arc<App>,
    req: Request<Incoming>,
    peer: Peer,
    request_id: String,
) -> (u16, Option<&'static str>, Response<Body>, String) {
    let time = OffsetDateTime::now_utc();
    let header = |name: http::header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let target =
        header(http::header::HeaderName::from_static("x-amz-target")).unwrap_or_else(|| "-".into());
    let user_agent = header(http::header::USER_AGENT);
    let signed = sigv4::parse_authorization(req.headers()).ok();
    // What the record calls the request: its operation, a dev endpoint's path, or the target
    // as sent (bounded).
    let event_name: String = match dispatch::operation(&target) {
        Some(op) => op.to_string(),
        None if req.uri().path() != "/" => req.uri().path().chars().take(128).collect(),
        None => target.chars().take(128).collect(),
    };
    let fail = |e: KmsError, event_name: String| {
        let resp = error_response(&e, &request_id);
        (e.status(), Some(e.name()), resp, event_name)
    };
    if app.audit.as_ref().is_some_and(|a| !a.is_healthy()) {
        // Fail closed: nothing is done that could not be recorded.
        return fail(audit_unavailable(), event_name);
    }
    let mut body = Bytes::new();
    let accepted = match tokio::time::timeout(
        app.options.request_timeout,
        accept(app, req, peer, &mut body),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => Err(KmsError::RequestTimeout),
    };
    let (result, caller) = match accepted {
        Ok(Accepted::Done(body)) => (Ok(body), None),
        Ok(Accepted::Operation {
            op,
            mut caller,
            body,
        }) => {
            caller.request_id = Some(request_id.clone());
            // The request quota is checked once the body is decoded, before the operation runs.
            let admit = |named: dispatch::Named<'_>| {
                app.quotas
                    .check(&app.kms, &caller, op, named)
                    .map_err(|class| {
                        app.metrics.observe_throttled(op, class.name());
                        KmsError::Throttling
                    })
            };
            let result = dispatch::dispatch(&app.kms, &caller, op, &body, admit).await;
            (result, Some(caller))
        }
        Err(e) => (Err(e), None),
    };
    let crypto = trail::is_cryptographic(&event_name);
    // The response as JSON, for the audit record and the per-key counters.
    let parsed = match &result {
        Ok(bytes) if !bytes.is_empty() && (app.audit.is_some() || crypto) => {
            serde_json::from_slice(bytes).unwrap_or(serde_json::Value::Null)
        }
        _ => serde_json::Value::Null,
    };
    if let Some(audit) = &app.audit {
        let record = trail::request_record(&trail::RequestEvent {
            request_id: &request_id,
            time,
            event_name: &event_name,
            caller: caller.as_ref(),
            access_key_id: signed.as_ref().map(|a| a.access_key_id.as_str()),
            region: signed.as_ref().map(|a| a.region.as_str()),
            source_ip: peer.ip,
            user_agent: user_agent.as_deref(),
            request_body: &body,
            outcome: result.as_ref().map(|_| &parsed),
        });
        if audit.append_json(record).await.is_err() {
            tracing::error!(target, "the request's audit record could not be written");
            return fail(audit_unavailable(), event_name);
        }
    }
    match result {
        Ok(body) => {
            if crypto {
                count_key_use(&app.metrics, &event_name, &parsed);
            }
            tracing::debug!(target, status = 200, "request");
            (200, None, json_response(200, &request_id, body), event_name)
        }
        Err(e) => {
            tracing::debug!(
                target,
                status = e.status(),
                error = e.name(),
                "request failed"
            );
            fail(e, event_name)
        }
    }
}

/// Count a successful cryptographic operation against the key ARN(s) its response names (never
/// the KeyId the caller sent, so that clients cannot make series at will).
fn count_key_use(metrics: &Metrics, operation: &str, response: &serde_json::Value) {
    let arn = |member: &str| response[member].as_str().filter(|s| s.starts_with("arn:"));
    match dispatch::ALL_OPERATIONS
        .iter()
        .copied()
        .find(|op| *op == operation)
    {
        Some("ReEncrypt") => {
            if let Some(a) = arn("SourceKeyId") {
                metrics.observe_key_use(a, "ReEncryptFrom");
            }
            if let Some(a) = arn("KeyId") {
                metrics.observe_key_use(a, "ReEncryptTo");
            }
        }
        Some(op) => {
            if let Some(a) = arn("KeyId") {
                metrics.observe_key_use(a, op);
            }
        }
        None => {}
    }
}

/// Serve connections from `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    let limits = app.options.connections;
    let metrics = app.metrics.clone();
    conn::accept_loop(
        listener,
        limits,
        metrics,
        Listener::Api,
        shutdown,
        |stream, remote, slot| {
            let _ = stream.set_nodelay(true);
            let app = app.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let _slot = slot;
                // The header deadline runs from here, the TLS handshake included.
                let activity = Arc::new(Activity::new());
                match tls {
                    Some(acceptor) => {
                        let handshake =
                            tokio::time::timeout(limits.header_timeout, acceptor.accept(stream));
                        match handshake.await {
                            Ok(Ok(s)) => serve_connection(s, app, remote, true, activity).await,
                            Ok(Err(e)) => {
                                tracing::debug!(%remote, error = %e, "TLS handshake failed")
                            }
                            Err(_) => {
                                tracing::debug!(%remote, "TLS handshake timed out");
                                app.metrics
                                    .connection_cut(Listener::Api, CloseReason::HeaderTimeout);
                            }
                        }
                    }
                    None => serve_connection(stream, app, remote, false, activity).await,
                }
            });
        },
    )
    .await
}

async fn serve_connection<S>(
    stream: S,
    app: Arc<App>,
    remote: SocketAddr,
    tls: bool,
    activity: Arc<Activity>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let peer = Peer {
        ip: remote.ip(),
        tls,
    };
    let limits = app.options.connections;
    let metrics = app.metrics.clone();
    conn::serve_http1(
        stream,
        remote,
        limits,
        &metrics,
        Listener::Api,
        activity,
        move |req| handle(app.clone(), req, peer),
    )
    .await
}

/// A TLS acceptor from PEM files: a certificate chain and its private key.
pub fn tls_acceptor(
    cert_pem: &std::path::Path,
    key_pem: &std::path::Path,
) -> Result<TlsAcceptor, String> {
    tls_acceptor_for_clients(cert_pem, key_pem, None)
}

fn read_certs(
    pem: &std::path::Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(pem).map_err(|e| format!("{}: {e}", pem.display()))?,
    ))
    .collect::<Result<Vec<_>, _>>()
    .map_err(|e| format!("{}: {e}", pem.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate found", pem.display()));
    }
    Ok(certs)
}

/// A TLS acceptor from PEM files; with `client_ca`, clients may present a certificate that CA
/// signed (one that it did not sign fails the handshake; none at all is let through, for the
/// handler to decide: [`crate::admin`] answers `/healthz` without one).
pub fn tls_acceptor_for_clients(
    cert_pem: &std::path::Path,
    key_pem: &std::path::Path,
    client_ca: Option<&std::path::Path>,
) -> Result<TlsAcceptor, String> {
    let certs = read_certs(cert_pem)?;
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(key_pem).map_err(|e| format!("{}: {e}", key_pem.display()))?,
    ))
    .map_err(|e| format!("{}: {e}", key_pem.display()))?
    .ok_or_else(|| format!("{}: no private key found", key_pem.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in read_certs(ca)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: {e}", ca.display()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .allow_unauthenticated()
            .build()
            .map_err(|e| format!("{}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
