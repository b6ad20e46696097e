//! The root key: it wraps every KMS key's material (and every principal's secret) at rest.
//!
//! A wrapped value is `version (1) || IV (12) || AES-256-GCM ciphertext || tag (16)`, with an AAD
//! chosen by the caller that binds the value to where it belongs (for key material: the key ARN
//! and material id), so a wrapped value moved to another row fails to unwrap.
//!
//! [`RootKey`] is a trait so that an HSM-held root key (PKCS#11) can stand in for the local one.

use crate::secret::SecretBytes;
use crate::{CryptoError, primitives};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use std::fmt;
use std::io::{Read, Write};
use std::path::Path;
use zeroize::Zeroizing;

const WRAP_VERSION: u8 = 1;
const TAG_LEN: usize = 16;
const ROOT_KEY_LEN: usize = 32;
/// Salt length for passphrase-derived root keys.
pub const PASSPHRASE_SALT_LEN: usize = 16;

/// Wraps and unwraps secrets for storage.
pub trait RootKey: Send + Sync + fmt::Debug {
    /// Encrypt `plaintext`, bound to `aad`.
    fn wrap(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError>;
    /// Decrypt a value made by [`RootKey::wrap`] with the same `aad`.
    fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError>;
}

/// A root key held in this process's memory: from a key file or a passphrase. The key's bytes
/// live in [`SecretBytes`] (out of core dumps and swap); each wrap and unwrap expands them into a
/// fresh AES-GCM context, which AWS-LC zeroes when it frees it, so no key schedule outlives the
/// call.
pub struct LocalRootKey {
    key: SecretBytes,
    source: &'static str,
}

impl fmt::Debug for LocalRootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalRootKey(from {}, [REDACTED])", self.source)
    }
}

impl LocalRootKey {
    fn new(key: SecretBytes, source: &'static str) -> Result<Self, CryptoError> {
        let root = Self { key, source };
        root.aead()?;
        Ok(root)
    }

    fn aead(&self) -> Result<LessSafeKey, CryptoError> {
        let key = UnboundKey::new(&AES_256_GCM, self.key.expose())
            .map_err(|_| CryptoError::RootKey("a root key is 32 bytes".into()))?;
        Ok(LessSafeKey::new(key))
    }

    /// Load the key file at `path`: exactly 32 bytes, read straight into secret memory. Its
    /// permissions are the caller's to check (the binary refuses a file others may read).
    pub fn load_file(path: &Path) -> Result<Self, CryptoError> {
        let fail = |e: std::io::Error| {
            CryptoError::RootKey(format!("cannot read {}: {e}", path.display()))
        };
        let mut file = std::fs::File::open(path).map_err(fail)?;
        let wrong_length = || {
            CryptoError::RootKey(format!(
                "{} must hold exactly {ROOT_KEY_LEN} bytes",
                path.display()
            ))
        };
        if file.metadata().map_err(fail)?.len() != ROOT_KEY_LEN as u64 {
            return Err(wrong_length());
        }
        let key = SecretBytes::fill(ROOT_KEY_LEN, |buf| {
            file.read_exact(buf).map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => wrong_length(),
                _ => fail(e),
            })
        })?;
        if file.read(&mut [0u8; 1]).map_err(fail)? != 0 {
            return Err(wrong_length());
        }
        Self::new(key, "key file")
    }

    /// Create a key file at `path` (32 random bytes, mode 0600); fails if it exists.
    pub fn create_file(path: &Path) -> Result<Self, CryptoError> {
        let key = SecretBytes::fill(ROOT_KEY_LEN, primitives::fill_random)?;
        write_private_file(path, key.expose())
            .map_err(|e| CryptoError::RootKey(format!("cannot create {}: {e}", path.display())))?;
        Self::new(key, "key file")
    }

    /// Load the key file at `path`, or create it if it does not exist. Returns the key and
    /// whether it was created.
    pub fn load_or_create_file(path: &Path) -> Result<(Self, bool), CryptoError> {
        if path.exists() {
            Ok((Self::load_file(path)?, false))
        } else {
            Ok((Self::create_file(path)?, true))
        }
    }

    /// A random root key that lives only as long as this process (for `--in-memory`).
    pub fn ephemeral() -> Result<Self, CryptoError> {
        let key = SecretBytes::fill(ROOT_KEY_LEN, primitives::fill_random)?;
        Self::new(key, "memory")
    }

    /// Derive the root key from a passphrase with Argon2id (m = 64 MiB, t = 3, p = 1).
    pub fn from_passphrase(passphrase: &[u8], salt: &[u8]) -> Result<Self, CryptoError> {
        if passphrase.is_empty() {
            return Err(CryptoError::RootKey("the passphrase is empty".into()));
        }
        let params = argon2::Params::new(64 * 1024, 3, 1, Some(ROOT_KEY_LEN))
            .map_err(|e| CryptoError::RootKey(format!("argon2 parameters: {e}")))?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let key = SecretBytes::fill(ROOT_KEY_LEN, |buf| {
            argon
                .hash_password_into(passphrase, salt, buf)
                .map_err(|e| CryptoError::RootKey(format!("argon2: {e}")))
        })?;
        Self::new(key, "passphrase")
    }
}

impl RootKey for LocalRootKey {
    fn wrap(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let iv: [u8; NONCE_LEN] = primitives::random_array()?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
        out.push(WRAP_VERSION);
        out.extend_from_slice(&iv);
        out.extend_from_slice(plaintext);
        let tag = self.aead()?.seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(aad),
            &mut out[1 + NONCE_LEN..],
        )?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if wrapped.len() < 1 + NONCE_LEN + TAG_LEN || wrapped[0] != WRAP_VERSION {
            return Err(CryptoError::InvalidCiphertext);
        }
        let mut iv = [0u8; NONCE_LEN];
        iv.copy_from_slice(&wrapped[1..1 + NONCE_LEN]);
        let mut body = Zeroizing::new(wrapped[1 + NONCE_LEN..].to_vec());
        let len = self
            .aead()?
            .open_in_place(
                Nonce::assume_unique_for_key(iv),
                Aad::from(aad),
                body.as_mut_slice(),
            )
            .map_err(|_| CryptoError::InvalidCiphertext)?
            .len();
        body.truncate(len);
        Ok(body)
    }
}

/// Write `bytes` to a new file readable by its owner only (0600). Fails if the file exists.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root.key");
        let (a, created) = LocalRootKey::load_or_create_file(&path).unwrap();
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let (b, created) = LocalRootKey::load_or_create_file(&path).unwrap();
        assert!(!created);
        let wrapped = a.wrap(b"aad", b"material").unwrap();
        assert_eq!(b.unwrap(b"aad", &wrapped).unwrap().as_slice(), b"material");
    }

    #[test]
    fn a_key_file_of_the_wrong_length_is_refused_and_create_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root.key");
        for len in [0, 31, 33] {
            std::fs::write(&path, vec![1u8; len]).unwrap();
            let err = LocalRootKey::load_file(&path).unwrap_err();
            assert!(
                matches!(&err, CryptoError::RootKey(m) if m.contains("exactly 32 bytes")),
                "{err:?}"
            );
        }
        std::fs::write(&path, [1u8; 32]).unwrap();
        assert!(LocalRootKey::create_file(&path).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), [1u8; 32]);
        let err = LocalRootKey::load_file(&dir.path().join("missing")).unwrap_err();
        assert!(matches!(err, CryptoError::RootKey(m) if m.contains("cannot read")));
    }

    #[test]
    fn wrong_aad_or_tampering_fails() {
        let dir = tempfile::tempdir().unwrap();
        let (k, _) = LocalRootKey::load_or_create_file(&dir.path().join("k")).unwrap();
        let wrapped = k.wrap(b"arn:a|m1", b"material").unwrap();
        assert_eq!(
            k.unwrap(b"arn:a|m2", &wrapped),
            Err(CryptoError::InvalidCiphertext)
        );
        for i in 0..wrapped.len() {
            let mut t = wrapped.clone();
            t[i] ^= 0x01;
            assert!(k.unwrap(b"arn:a|m1", &t).is_err());
        }
        assert!(k.unwrap(b"arn:a|m1", &wrapped[..10]).is_err());
    }

    #[test]
    fn passphrase_derivation_is_deterministic_per_salt() {
        let a = LocalRootKey::from_passphrase(b"correct horse", b"0123456789abcdef").unwrap();
        let b = LocalRootKey::from_passphrase(b"correct horse", b"0123456789abcdef").unwrap();
        let c = LocalRootKey::from_passphrase(b"wrong horse", b"0123456789abcdef").unwrap();
        let wrapped = a.wrap(b"x", b"y").unwrap();
        assert_eq!(b.unwrap(b"x", &wrapped).unwrap().as_slice(), b"y");
        assert!(c.unwrap(b"x", &wrapped).is_err());
        assert!(LocalRootKey::from_passphrase(b"", b"0123456789abcdef").is_err());
        assert_eq!(
            format!("{a:?}"),
            "LocalRootKey(from passphrase, [REDACTED])"
        );
    }
}
