//! Key material, the symmetric ciphertext blob, and root-key wrapping for trent, all over aws-lc-rs.
//!
//! Nothing here knows of HTTP, storage or the AWS JSON protocol. Plaintext key material only ever
//! lives in types that zeroize on drop and whose `Debug` output is redacted.

#![forbid(unsafe_code)]

pub mod blob;
pub mod context;
pub mod material;
pub mod primitives;
pub mod root;

pub use blob::{BlobHeader, SymmetricKey};
pub use material::{KeyMaterial, MaterialId};
pub use root::{LocalRootKey, RootKey};

/// What can go wrong in this crate. Messages never carry secret bytes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoError {
    /// A ciphertext blob that is malformed, truncated, tampered with, of another key, or opened
    /// with the wrong encryption context. Deliberately says nothing more.
    #[error("invalid ciphertext")]
    InvalidCiphertext,
    /// A root key file or passphrase that cannot be used.
    #[error("root key: {0}")]
    RootKey(String),
    /// The crypto library refused an operation that should not fail (for example the CSPRNG).
    #[error("cryptographic operation failed")]
    Unspecified,
}

impl From<aws_lc_rs::error::Unspecified> for CryptoError {
    fn from(_: aws_lc_rs::error::Unspecified) -> Self {
        CryptoError::Unspecified
    }
}
