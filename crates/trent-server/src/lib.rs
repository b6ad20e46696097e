//! trent's HTTP front: the awsJson1_1 codec and dispatch table, SigV4 verification, request ids,
//! body limits, timeouts and TLS. Knows nothing of SQL.

#![forbid(unsafe_code)]

pub mod admin;
pub mod dispatch;
pub mod gate;
pub mod http;
pub mod metrics;
pub mod sigv4;
pub mod trail;

pub use admin::{AdminState, Readiness, serve_admin};
pub use gate::AuditGatedStore;
pub use http::{App, DevMode, ServerOptions, run_scheduled_audited, serve, tls_acceptor};
pub use metrics::{Metrics, Scrape};
