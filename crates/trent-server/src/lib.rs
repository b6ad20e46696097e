//! trent's HTTP front: the awsJson1_1 codec and dispatch table, SigV4 verification, request ids,
//! body limits, connection limits, request quotas, timeouts and TLS. Knows nothing of SQL.

#![forbid(unsafe_code)]

pub mod admin;
pub mod conn;
pub mod dispatch;
pub mod gate;
pub mod http;
pub mod metrics;
pub mod quota;
pub mod regions;
pub mod sigv4;
pub mod trail;

pub use admin::{AdminAuth, AdminState, AdminToken, Readiness, serve_admin};
pub use conn::ConnLimits;
pub use gate::AuditGatedStore;
pub use http::{
    App, DevMode, ServerOptions, run_scheduled_audited, serve, tls_acceptor,
    tls_acceptor_for_clients,
};
pub use metrics::{Metrics, Scrape};
pub use quota::{QuotaBase, QuotaConfig, QuotaRule, Quotas};
pub use regions::Regions;
