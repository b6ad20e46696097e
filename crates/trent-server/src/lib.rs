//! trent's HTTP front: the awsJson1_1 codec and dispatch table, SigV4 verification, request ids,
//! body limits, timeouts and TLS. Knows nothing of SQL.

#![forbid(unsafe_code)]

pub mod dispatch;
pub mod http;
pub mod sigv4;

pub use http::{App, DevMode, ServerOptions, serve, tls_acceptor};
