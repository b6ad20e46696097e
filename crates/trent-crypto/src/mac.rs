//! HMAC keys (HMAC_224/256/384/512), built once and reused for every MAC.

use crate::CryptoError;
use crate::primitives;
use aws_lc_rs::hmac;
use std::fmt;
use zeroize::Zeroizing;

/// The four HMAC key specs. The key length is the hash's output length, as in AWS KMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MacSpec {
    Hmac224,
    Hmac256,
    Hmac384,
    Hmac512,
}

impl MacSpec {
    pub const ALL: [MacSpec; 4] = [
        MacSpec::Hmac224,
        MacSpec::Hmac256,
        MacSpec::Hmac384,
        MacSpec::Hmac512,
    ];

    fn algorithm(self) -> hmac::Algorithm {
        match self {
            MacSpec::Hmac224 => hmac::HMAC_SHA224,
            MacSpec::Hmac256 => hmac::HMAC_SHA256,
            MacSpec::Hmac384 => hmac::HMAC_SHA384,
            MacSpec::Hmac512 => hmac::HMAC_SHA512,
        }
    }

    /// Length of the key and of the tag, in bytes.
    pub fn tag_len(self) -> usize {
        match self {
            MacSpec::Hmac224 => 28,
            MacSpec::Hmac256 => 32,
            MacSpec::Hmac384 => 48,
            MacSpec::Hmac512 => 64,
        }
    }

    /// Fresh key bytes for this spec, from the CSPRNG.
    pub fn generate(self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        primitives::random_bytes(self.tag_len())
    }
}

/// A ready-to-use HMAC key.
#[derive(Clone)]
pub struct HmacKey {
    spec: MacSpec,
    key: hmac::Key,
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HmacKey({:?}, [REDACTED])", self.spec)
    }
}

impl HmacKey {
    /// Build a key from its bytes, which must have the spec's length.
    pub fn new(spec: MacSpec, bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != spec.tag_len() {
            return Err(CryptoError::BadKeyMaterial("HMAC"));
        }
        Ok(Self {
            spec,
            key: hmac::Key::new(spec.algorithm(), bytes),
        })
    }

    pub fn spec(&self) -> MacSpec {
        self.spec
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        hmac::sign(&self.key, message).as_ref().to_vec()
    }

    /// Constant-time check of `tag` against the MAC of `message`.
    pub fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        hmac::verify(&self.key, message, tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_have_the_spec_length_and_verify() {
        for spec in MacSpec::ALL {
            let key = HmacKey::new(spec, &spec.generate().unwrap()).unwrap();
            let tag = key.sign(b"message");
            assert_eq!(tag.len(), spec.tag_len());
            assert!(key.verify(b"message", &tag));
            assert!(!key.verify(b"messagf", &tag));
            assert!(!key.verify(b"message", &tag[..tag.len() - 1]));
        }
    }

    #[test]
    fn wrong_key_length_is_refused_and_debug_is_redacted() {
        assert_eq!(
            HmacKey::new(MacSpec::Hmac256, &[7u8; 31]).unwrap_err(),
            CryptoError::BadKeyMaterial("HMAC")
        );
        let key = HmacKey::new(MacSpec::Hmac256, &[7u8; 32]).unwrap();
        assert_eq!(format!("{key:?}"), "HmacKey(Hmac256, [REDACTED])");
    }
}
