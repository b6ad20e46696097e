//! The AWS KMS service of trent: typed requests and responses, the key model and its states,
//! validation with AWS's wording, key policies, principals, and the one error enum that maps 1:1
//! to AWS error names. Knows nothing of HTTP or SQL.

#![forbid(unsafe_code)]

pub mod access;
pub mod api;
pub mod clock;
pub mod condition;
pub mod error;
pub mod grant;
pub mod identity;
pub mod ids;
pub mod inventory;
pub mod keypool;
pub mod keyspec;
pub mod lifecycle;
pub mod managed;
pub mod model;
mod ops;
mod peek;
pub mod policy;
pub mod service;
pub mod usage;
pub mod validate;

pub use error::KmsError;
pub use identity::{Principal, Principals};
pub use ids::Caller;
pub use ops::{KEY_SPECS, KEY_USAGES};
pub use service::{Kms, OpenError};
