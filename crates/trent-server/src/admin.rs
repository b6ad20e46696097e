//! The admin listener: metrics and health for operators, apart from the API (loopback by
//! default; beyond it only with a client certificate or a bearer token, or when told to serve
//! without: see docs/metrics.md).
//!
//! - `GET /metrics`: every metric in the Prometheus text format (see [`crate::metrics`]).
//! - `GET /healthz`: 200 `ok` while the process serves at all. Always open: it says nothing
//!   else, and a load balancer's health check carries no credentials.
//! - `GET /readyz`: 200 when the store answers, the root key is loaded and the audit log is
//!   writable (or off), else 503; the body says which: `{"store":true,"rootKey":true,"audit":true}`.
//!
//! `HEAD` is answered like `GET`; another method on these paths gets 405, any other path 404.
//! With a token, `/metrics` and `/readyz` need `Authorization: Bearer <token>` (else 401 with
//! `WWW-Authenticate`); with a client CA, they need a client certificate it signed (else 403).
//!
//! The admin listener has connection slots of its own (a flood of the API does not reach them)
//! and a cap per source address, so that one client cannot take them all either.

use crate::conn::{self, Activity, ConnLimits};
use crate::metrics::{self, Listener, Metrics, Scrape};
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use trent_audit::AuditLog;
use trent_kms::Kms;
use zeroize::Zeroizing;

/// Connections the admin listener serves at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 64;

/// Connections the admin listener serves at once from one source address.
pub const MAX_CONNECTIONS_PER_SOURCE: usize = 16;

/// The bearer token `/metrics` and `/readyz` ask for. Its Debug output is redacted.
pub struct AdminToken(Zeroizing<String>);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// The shortest token accepted: a guessable one would protect nothing.
pub const MIN_TOKEN_LEN: usize = 16;

impl AdminToken {
    /// A token from the text of a token file (surrounding whitespace dropped).
    pub fn new(text: &str) -> Result<AdminToken, String> {
        let token = text.trim();
        if token.len() < MIN_TOKEN_LEN {
            return Err(format!(
                "the admin token must be at least {MIN_TOKEN_LEN} characters"
            ));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the admin token must be printable ASCII without spaces".into());
        }
        Ok(AdminToken(Zeroizing::new(token.to_owned())))
    }

    /// Whether an `Authorization` header value carries this token, compared in constant time
    /// (of the digests, so that not even the length shows).
    fn admits(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some(given) = authorization
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        use trent_crypto::primitives::{constant_time_eq, sha256};
        constant_time_eq(&sha256(given.trim().as_bytes()), &sha256(self.0.as_bytes()))
    }
}

/// Who may read `/metrics` and `/readyz`.
#[derive(Debug, Default)]
pub struct AdminAuth {
    /// A bearer token, from `--admin-token-file`.
    pub token: Option<AdminToken>,
    /// A client certificate (verified by the TLS handshake against `--admin-client-ca`).
    pub client_cert: bool,
}

/// How long readiness waits for the store before calling it unreachable.
const STORE_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the admin endpoints read.
pub struct AdminState {
    pub kms: Arc<Kms>,
    pub metrics: Arc<Metrics>,
    /// None when the audit log is off.
    pub audit: Option<Arc<AuditLog>>,
    pub auth: AdminAuth,
}

impl AdminState {
    /// What a scrape reads now: the key inventory and the audit log's statistics.
    pub fn scrape(&self) -> Scrape {
        Scrape::collect(&self.kms, self.audit.as_deref())
    }

    /// The metrics text of this moment.
    pub fn render_metrics(&self) -> String {
        self.metrics.render(&self.scrape())
    }

    /// Check the store (one small read, at most [`STORE_PROBE_TIMEOUT`]), the root key and the
    /// audit log.
    pub async fn readiness(&self) -> Readiness {
        let store = tokio::time::timeout(STORE_PROBE_TIMEOUT, self.kms.store_reachable())
            .await
            .unwrap_or(false);
        Readiness {
            store,
            // The service cannot be opened without its root key, and keeps it once open.
            root_key: true,
            audit: self.audit.as_ref().is_none_or(|a| a.is_healthy()),
        }
    }
}

/// What `/readyz` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    pub store: bool,
    pub root_key: bool,
    pub audit: bool,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.store && self.root_key && self.audit
    }

    /// 200 when ready, else 503.
    pub fn status(&self) -> u16 {
        if self.is_ready() { 200 } else { 503 }
    }

    /// `{"store":true,"rootKey":true,"audit":true}`.
    pub fn to_json(&self) -> String {
        format!(
            r#"{{"store":{},"rootKey":{},"audit":{}}}"#,
            self.store, self.root_key, self.audit
        )
    }
}

type Body = Full<Bytes>;

fn response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

const TEXT: &str = "text/plain; charset=utf-8";

/// Answer one admin request; `client_cert`: whether its connection presented a client
/// certificate the client CA signed.
pub async fn handle<B>(
    state: Arc<AdminState>,
    req: Request<B>,
    client_cert: bool,
) -> Response<Body> {
    let path = req.uri().path();
    if !matches!(path, "/metrics" | "/healthz" | "/readyz") {
        return response(StatusCode::NOT_FOUND, TEXT, "not found\n");
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut resp = response(StatusCode::METHOD_NOT_ALLOWED, TEXT, "method not allowed\n");
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return resp;
    }
    if path != "/healthz" {
        if state.auth.client_cert && !client_cert {
            return response(
                StatusCode::FORBIDDEN,
                TEXT,
                "a client certificate is required\n",
            );
        }
        if let Some(token) = &state.auth.token
            && !token.admits(req.headers().get(header::AUTHORIZATION))
        {
            let mut resp = response(StatusCode::UNAUTHORIZED, TEXT, "unauthorized\n");
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"trent-admin\""),
            );
            return resp;
        }
    }
    match path {
        "/healthz" => response(StatusCode::OK, TEXT, "ok"),
        "/readyz" => {
            let r = state.readiness().await;
            let status =
                StatusCode::from_u16(r.status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            if !r.is_ready() {
                tracing::warn!(
                    store = r.store,
                    root_key = r.root_key,
                    audit = r.audit,
                    "not ready"
                );
            }
            response(status, "application/json", r.to_json())
        }
        _ => {
            // Counting every key takes a moment with many: off the async workers.
            match tokio::task::spawn_blocking(move || state.render_metrics()).await {
                Ok(text) => response(StatusCode::OK, metrics::CONTENT_TYPE, text),
                Err(e) => {
                    tracing::error!(error = %e, "rendering metrics failed");
                    response(StatusCode::INTERNAL_SERVER_ERROR, TEXT, "metrics failed\n")
                }
            }
        }
    }
}

/// The admin listener's connection limits: its own slots, a cap per source, and the API's
/// deadlines.
pub fn limits(api: &ConnLimits) -> ConnLimits {
    ConnLimits {
        max_connections: MAX_CONNECTIONS,
        max_per_source: MAX_CONNECTIONS_PER_SOURCE,
        header_timeout: api.header_timeout,
        idle_timeout: api.idle_timeout,
    }
}

/// Serve the admin endpoints on `listener` (HTTP/1.1, over TLS with `tls`) until `shutdown`
/// completes.
pub async fn serve_admin(
    listener: TcpListener,
    state: Arc<AdminState>,
    tls: Option<TlsAcceptor>,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()>,
) {
    let metrics = state.metrics.clone();
    conn::accept_loop(
        listener,
        limits,
        metrics,
        Listener::Admin,
        shutdown,
        move |stream, remote, slot| {
            let state = state.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let _slot = slot;
                let activity = Arc::new(Activity::new());
                let metrics = state.metrics.clone();
                match tls {
                    Some(acceptor) => {
                        let handshake =
                            tokio::time::timeout(limits.header_timeout, acceptor.accept(stream));
                        let stream = match handshake.await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(%remote, error = %e, "admin TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                metrics.connection_cut(
                                    Listener::Admin,
                                    metrics::CloseReason::HeaderTimeout,
                                );
                                return;
                            }
                        };
                        // The verifier admitted only certificates the client CA signed.
                        let client_cert = stream.get_ref().1.peer_certificates().is_some();
                        conn::serve_http1(
                            stream,
                            remote,
                            limits,
                            &metrics,
                            Listener::Admin,
                            activity,
                            move |req| handle(state.clone(), req, client_cert),
                        )
                        .await
                    }
                    None => {
                        conn::serve_http1(
                            stream,
                            remote,
                            limits,
                            &metrics,
                            Listener::Admin,
                            activity,
                            move |req| handle(state.clone(), req, false),
                        )
                        .await
                    }
                }
            });
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_names_what_is_missing() {
        let all = Readiness {
            store: true,
            root_key: true,
            audit: true,
        };
        assert_eq!(all.status(), 200);
        assert_eq!(
            all.to_json(),
            r#"{"store":true,"rootKey":true,"audit":true}"#
        );
        let no_audit = Readiness {
            audit: false,
            ..all
        };
        assert_eq!(no_audit.status(), 503);
        assert_eq!(
            no_audit.to_json(),
            r#"{"store":true,"rootKey":true,"audit":false}"#
        );
        let no_store = Readiness {
            store: false,
            ..all
        };
        assert_eq!(no_store.status(), 503);
        assert_eq!(
            no_store.to_json(),
            r#"{"store":false,"rootKey":true,"audit":true}"#
        );
        let nothing = Readiness {
            store: false,
            root_key: false,
            audit: false,
        };
        assert_eq!(nothing.status(), 503);
        assert_eq!(
            nothing.to_json(),
            r#"{"store":false,"rootKey":false,"audit":false}"#
        );
    }
}
