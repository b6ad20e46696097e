//! Key material, the symmetric ciphertext blob, and root-key wrapping for trent, all over aws-lc-rs.
//!
//! Nothing here knows of HTTP, storage or the AWS JSON protocol. Plaintext key material only ever
//! lives in types that zeroize on drop and whose `Debug` output is redacted.

#![deny(unsafe_code)]

pub mod asymmetric;
pub mod blob;
pub mod context;
pub mod import;
#[allow(unsafe_code)]
mod lc;
pub mod mac;
pub mod material;
pub mod primitives;
#[allow(unsafe_code)]
pub mod process;
pub mod root;
#[allow(unsafe_code)]
pub mod secret;

pub use asymmetric::{AsymmetricSpec, PrivateKey, PublicKey};
pub use blob::{BlobHeader, SymmetricKey};
pub use mac::{HmacKey, MacSpec};
pub use material::{KeyMaterial, MaterialId};
pub use root::{LocalRootKey, RootKey};
pub use secret::{SecretBytes, SecretString};

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
    /// AWS-LC refused an operation; the text names the operation, never a key.
    #[error("cryptographic library: {0}")]
    Library(String),
    /// Stored key material that does not parse as a key of its spec.
    #[error("key material is not a valid {0} key")]
    BadKeyMaterial(&'static str),
}

impl From<aws_lc_rs::error::Unspecified> for CryptoError {
    fn from(_: aws_lc_rs::error::Unspecified) -> Self {
        CryptoError::Unspecified
    }
}
