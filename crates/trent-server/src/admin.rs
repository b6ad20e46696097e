//! The admin listener: metrics and health for operators, apart from the API (loopback by
//! default, no authentication, no TLS).
//!
//! - `GET /metrics`: every metric in the Prometheus text format (see [`crate::metrics`]).
//! - `GET /healthz`: 200 `ok` while the process serves at all.
//! - `GET /readyz`: 200 when the store answers, the root key is loaded and the audit log is
//!   writable (or off), else 503; the body says which: `{"store":true,"rootKey":true,"audit":true}`.
//!
//! `HEAD` is answered like `GET`; another method on these paths gets 405, any other path 404.

use crate::metrics::{self, Metrics, Scrape};
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use trent_audit::AuditLog;
use trent_kms::Kms;

/// Connections the admin listener serves at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 64;

/// How long readiness waits for the store before calling it unreachable.
const STORE_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the admin endpoints read.
pub struct AdminState {
    pub kms: Arc<Kms>,
    pub metrics: Arc<Metrics>,
    /// None when the audit log is off.
    pub audit: Option<Arc<AuditLog>>,
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

/// Answer one admin request.
pub async fn handle<B>(state: Arc<AdminState>, req: Request<B>) -> Response<Body> {
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

/// Serve the admin endpoints on `listener` (plain HTTP/1.1) until `shutdown` completes.
pub async fn serve_admin(
    listener: TcpListener,
    state: Arc<AdminState>,
    shutdown: impl Future<Output = ()>,
) {
    crate::http::accept_loop(
        listener,
        MAX_CONNECTIONS,
        shutdown,
        |stream, remote, permit| {
            let state = state.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let svc = service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(handle(state, req).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), svc);
                if let Err(e) = conn.await {
                    tracing::debug!(%remote, error = %e, "admin connection ended with an error");
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
