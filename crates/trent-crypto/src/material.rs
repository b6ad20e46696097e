//! Plaintext key material and material identifiers.

use crate::{CryptoError, primitives};
use std::fmt;
use zeroize::Zeroizing;

/// Plaintext key material. Zeroized on drop; `Debug` never shows the bytes.
#[derive(Clone)]
pub struct KeyMaterial(Zeroizing<Vec<u8>>);

impl KeyMaterial {
    /// Length of symmetric (AES-256) key material.
    pub const SYMMETRIC_LEN: usize = 32;

    /// Fresh symmetric material from the CSPRNG.
    pub fn generate_symmetric() -> Result<Self, CryptoError> {
        Ok(Self(primitives::random_bytes(Self::SYMMETRIC_LEN)?))
    }

    /// Take ownership of bytes (for example just unwrapped from the root key).
    pub fn from_bytes(bytes: Zeroizing<Vec<u8>>) -> Self {
        Self(bytes)
    }

    /// The plaintext bytes. Callers must not copy them into non-zeroizing storage.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyMaterial([REDACTED; {} bytes])", self.0.len())
    }
}

/// Identifies one key material of a key: 32 bytes, shown as 64 lowercase hex characters
/// (the `KeyMaterialId` AWS returns). Random, so it reveals nothing about the material.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MaterialId(pub [u8; 32]);

impl MaterialId {
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self(primitives::random_array()?))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parse 64 hex characters (either case).
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Self(out))
    }
}

impl fmt::Debug for MaterialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MaterialId({})", self.to_hex())
    }
}

impl fmt::Display for MaterialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_material() {
        let m = KeyMaterial::from_bytes(Zeroizing::new(vec![0xAB; 32]));
        let shown = format!("{m:?}");
        assert_eq!(shown, "KeyMaterial([REDACTED; 32 bytes])");
        assert!(!shown.to_lowercase().contains("ab, ab"));
    }

    #[test]
    fn material_id_hex_round_trip() {
        let id = MaterialId::generate().unwrap();
        let hex = id.to_hex();
        assert_eq!(hex.len(), 64);
        assert_eq!(MaterialId::from_hex(&hex), Some(id));
        assert_eq!(MaterialId::from_hex("zz"), None);
        assert_eq!(MaterialId::from_hex(&hex[..62]), None);
    }

    #[test]
    fn generated_symmetric_material_is_32_random_bytes() {
        let a = KeyMaterial::generate_symmetric().unwrap();
        let b = KeyMaterial::generate_symmetric().unwrap();
        assert_eq!(a.expose().len(), 32);
        assert_ne!(a.expose(), b.expose());
    }
}
