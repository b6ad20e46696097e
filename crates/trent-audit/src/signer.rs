//! The node's audit signing key: Ed25519 or ECDSA P-256, kept sealed under the root key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use std::fmt;
use std::path::Path;
use trent_crypto::asymmetric::{Hash, MessageKind, SigningScheme};
use trent_crypto::primitives::sha256;
use trent_crypto::{AsymmetricSpec, PrivateKey, PublicKey, RootKey, SecretBytes};

/// The algorithms an audit signing key may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKeySpec {
    Ed25519,
    EcdsaP256,
}

impl AuditKeySpec {
    /// `ED25519` or `ECDSA_P256`, as configuration and signature files name them.
    pub fn name(self) -> &'static str {
        match self {
            AuditKeySpec::Ed25519 => "ED25519",
            AuditKeySpec::EcdsaP256 => "ECDSA_P256",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ED25519" => Some(AuditKeySpec::Ed25519),
            "ECDSA_P256" => Some(AuditKeySpec::EcdsaP256),
            _ => None,
        }
    }

    fn asymmetric(self) -> AsymmetricSpec {
        match self {
            AuditKeySpec::Ed25519 => AsymmetricSpec::EccNistEdwards25519,
            AuditKeySpec::EcdsaP256 => AsymmetricSpec::EccNistP256,
        }
    }

    fn scheme(self) -> SigningScheme {
        match self {
            AuditKeySpec::Ed25519 => SigningScheme::Ed25519,
            AuditKeySpec::EcdsaP256 => SigningScheme::Ecdsa(Hash::Sha256),
        }
    }
}

/// The id of a public key: the first 16 bytes of the SHA-256 of its SubjectPublicKeyInfo, hex.
fn key_id(spki: &[u8]) -> String {
    hex::encode(&sha256(spki)[..16])
}

fn pem(spki: &[u8]) -> String {
    let b64 = B64.encode(spki);
    let mut out = String::from("-----BEGIN PUBLIC KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END PUBLIC KEY-----\n");
    out
}

/// A node's audit signing key. Its PKCS#8 is kept in secret memory (out of core dumps and swap)
/// and parsed for each signature (a few per file), so that AWS-LC holds no parsed copy between
/// signatures.
pub struct AuditSigner {
    spec: AuditKeySpec,
    pkcs8: SecretBytes,
    public_der: Vec<u8>,
    key_id: String,
}

impl fmt::Debug for AuditSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditSigner")
            .field("spec", &self.spec)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl AuditSigner {
    /// A new key of `spec`, and its PKCS#8 for keeping.
    pub fn generate(spec: AuditKeySpec) -> Result<(Self, zeroize::Zeroizing<Vec<u8>>), String> {
        let pkcs8 = spec.asymmetric().generate().map_err(|e| e.to_string())?;
        Ok((Self::from_pkcs8(spec, &pkcs8)?, pkcs8))
    }

    pub fn from_pkcs8(spec: AuditKeySpec, pkcs8: &[u8]) -> Result<Self, String> {
        let key = PrivateKey::from_pkcs8(spec.asymmetric(), pkcs8).map_err(|e| e.to_string())?;
        let public_der = key.public_key_der().to_vec();
        Ok(Self {
            spec,
            pkcs8: SecretBytes::copy_from(pkcs8),
            key_id: key_id(&public_der),
            public_der,
        })
    }

    pub fn spec(&self) -> AuditKeySpec {
        self.spec
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public key as PEM (SubjectPublicKeyInfo), for `trent audit public-key`.
    pub fn public_key_pem(&self) -> String {
        pem(&self.public_der)
    }

    pub fn public_key(&self) -> AuditPublicKey {
        AuditPublicKey::from_pem(&self.public_der).expect("a key's own public key parses")
    }

    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        PrivateKey::from_pkcs8(self.spec.asymmetric(), self.pkcs8.expose())
            .map_err(|e| e.to_string())?
            .sign(self.spec.scheme(), MessageKind::Raw, message)
            .map_err(|e| format!("{e:?}"))
    }
}

/// A public key that checks audit signatures.
pub struct AuditPublicKey {
    spec: AuditKeySpec,
    key: PublicKey,
    key_id: String,
}

impl fmt::Debug for AuditPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditPublicKey")
            .field("spec", &self.spec)
            .field("key_id", &self.key_id)
            .finish()
    }
}

impl AuditPublicKey {
    /// Read a PEM (or DER) SubjectPublicKeyInfo of an Ed25519 or P-256 key.
    pub fn from_pem(text: &[u8]) -> Result<Self, String> {
        let der = match std::str::from_utf8(text) {
            Ok(t) if t.contains("-----BEGIN PUBLIC KEY-----") => {
                let body: String = t
                    .lines()
                    .map(str::trim)
                    .skip_while(|l| *l != "-----BEGIN PUBLIC KEY-----")
                    .skip(1)
                    .take_while(|l| *l != "-----END PUBLIC KEY-----")
                    .collect();
                B64.decode(body)
                    .map_err(|_| "the public key's PEM is not valid base64".to_string())?
            }
            _ => text.to_vec(),
        };
        for spec in [AuditKeySpec::Ed25519, AuditKeySpec::EcdsaP256] {
            if let Ok(key) = PublicKey::from_spki(spec.asymmetric(), &der) {
                return Ok(Self {
                    spec,
                    key,
                    key_id: key_id(&der),
                });
            }
        }
        Err("not an Ed25519 or ECDSA P-256 public key".into())
    }

    pub fn spec(&self) -> AuditKeySpec {
        self.spec
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.key
            .verify(self.spec.scheme(), MessageKind::Raw, message, signature)
            .unwrap_or(false)
    }
}

const KEY_FILE_MAGIC: &str = "trent-audit-signing-key-v1";

fn aad(spec: AuditKeySpec) -> Vec<u8> {
    format!("{KEY_FILE_MAGIC}:{}", spec.name()).into_bytes()
}

/// The node's signing key from `path` (sealed under `root`), or a new one of `spec` written
/// there (mode 0600) when there is none. A key of another spec found there is kept: changing
/// the algorithm needs a new key file.
pub fn load_or_create_signer(
    path: &Path,
    root: &dyn RootKey,
    spec: AuditKeySpec,
) -> Result<AuditSigner, String> {
    let shown = path.display();
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let mut lines = text.lines();
            let header = lines.next().unwrap_or_default();
            let spec = header
                .strip_prefix(KEY_FILE_MAGIC)
                .map(str::trim)
                .and_then(AuditKeySpec::from_name)
                .ok_or_else(|| format!("{shown}: not a trent audit signing key file"))?;
            let wrapped = B64
                .decode(lines.next().unwrap_or_default().trim())
                .map_err(|_| format!("{shown}: damaged"))?;
            let pkcs8 = root
                .unwrap(&aad(spec), &wrapped)
                .map_err(|_| format!("{shown}: cannot be opened with this root key"))?;
            AuditSigner::from_pkcs8(spec, &pkcs8)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let (signer, pkcs8) = AuditSigner::generate(spec)?;
            let wrapped = root
                .wrap(&aad(spec), &pkcs8)
                .map_err(|e| format!("{shown}: {e}"))?;
            let text = format!(
                "{KEY_FILE_MAGIC} {}\n{}\n",
                spec.name(),
                B64.encode(wrapped)
            );
            trent_crypto::root::write_private_file(path, text.as_bytes())
                .map_err(|e| format!("{shown}: {e}"))?;
            Ok(signer)
        }
        Err(e) => Err(format!("{shown}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trent_crypto::LocalRootKey;

    #[test]
    fn signatures_verify_with_the_exported_key_and_only_theirs() {
        for spec in [AuditKeySpec::Ed25519, AuditKeySpec::EcdsaP256] {
            let (signer, _) = AuditSigner::generate(spec).unwrap();
            let public = AuditPublicKey::from_pem(signer.public_key_pem().as_bytes()).unwrap();
            assert_eq!(public.spec(), spec);
            assert_eq!(public.key_id(), signer.key_id());
            let sig = signer.sign(b"digest").unwrap();
            assert!(public.verify(b"digest", &sig));
            assert!(!public.verify(b"digest!", &sig));
            let (other, _) = AuditSigner::generate(spec).unwrap();
            assert!(!other.public_key().verify(b"digest", &sig));
        }
        assert!(
            AuditPublicKey::from_pem(
                b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
            )
            .is_err()
        );
    }

    #[test]
    fn the_key_file_is_sealed_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit-signing-key");
        let root = LocalRootKey::ephemeral().unwrap();
        let a = load_or_create_signer(&path, &root, AuditKeySpec::EcdsaP256).unwrap();
        // The spec of the file wins over the one asked for.
        let b = load_or_create_signer(&path, &root, AuditKeySpec::Ed25519).unwrap();
        assert_eq!(a.key_id(), b.key_id());
        assert_eq!(b.spec(), AuditKeySpec::EcdsaP256);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("PRIVATE"));
        let other_root = LocalRootKey::ephemeral().unwrap();
        let err = load_or_create_signer(&path, &other_root, AuditKeySpec::Ed25519).unwrap_err();
        assert!(
            err.ends_with("cannot be opened with this root key"),
            "{err}"
        );
        assert!(!format!("{a:?}").contains(&text));
    }
}
