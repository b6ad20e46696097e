//! Asymmetric keys: RSA, ECC (NIST curves and secp256k1), Ed25519, ML-DSA and ML-KEM.
//!
//! A private key is kept at rest as DER PKCS#8 (wrapped under the root key by the caller) and
//! parsed once, by [`PrivateKey::from_pkcs8`], into ready-to-use aws-lc objects: the signing key,
//! the OAEP decrypting and encrypting keys, the ECDH key, the ML-KEM keys, and a parsed public key
//! for every signing scheme the key can verify. No operation parses a stored key.

use crate::CryptoError;
use crate::lc::{self, Pkey};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::kem::{self, DecapsulationKey, EncapsulationKey};
use aws_lc_rs::rsa::{
    KeySize, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepAlgorithm, OaepPrivateDecryptingKey,
    OaepPublicEncryptingKey, PrivateDecryptingKey,
};
use aws_lc_rs::signature::{self, KeyPair, ParsedPublicKey, VerificationAlgorithm};
use aws_lc_rs::{agreement, digest};
use std::fmt;
use zeroize::Zeroizing;

/// The asymmetric key specs of AWS KMS (outside the China Regions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AsymmetricSpec {
    Rsa2048,
    Rsa3072,
    Rsa4096,
    EccNistP256,
    EccNistP384,
    EccNistP521,
    EccSecgP256k1,
    EccNistEdwards25519,
    MlDsa44,
    MlDsa65,
    MlDsa87,
    MlKem512,
    MlKem768,
    MlKem1024,
}

impl AsymmetricSpec {
    pub const ALL: [AsymmetricSpec; 14] = [
        AsymmetricSpec::Rsa2048,
        AsymmetricSpec::Rsa3072,
        AsymmetricSpec::Rsa4096,
        AsymmetricSpec::EccNistP256,
        AsymmetricSpec::EccNistP384,
        AsymmetricSpec::EccNistP521,
        AsymmetricSpec::EccSecgP256k1,
        AsymmetricSpec::EccNistEdwards25519,
        AsymmetricSpec::MlDsa44,
        AsymmetricSpec::MlDsa65,
        AsymmetricSpec::MlDsa87,
        AsymmetricSpec::MlKem512,
        AsymmetricSpec::MlKem768,
        AsymmetricSpec::MlKem1024,
    ];

    pub fn is_rsa(self) -> bool {
        matches!(
            self,
            AsymmetricSpec::Rsa2048 | AsymmetricSpec::Rsa3072 | AsymmetricSpec::Rsa4096
        )
    }

    fn rsa_size(self) -> Option<KeySize> {
        match self {
            AsymmetricSpec::Rsa2048 => Some(KeySize::Rsa2048),
            AsymmetricSpec::Rsa3072 => Some(KeySize::Rsa3072),
            AsymmetricSpec::Rsa4096 => Some(KeySize::Rsa4096),
            _ => None,
        }
    }

    /// ECDSA: the signing and verification algorithms and the hash of the one scheme of the curve.
    fn ecdsa(
        self,
    ) -> Option<(
        &'static signature::EcdsaSigningAlgorithm,
        &'static signature::EcdsaVerificationAlgorithm,
        Hash,
    )> {
        match self {
            AsymmetricSpec::EccNistP256 => Some((
                &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                &signature::ECDSA_P256_SHA256_ASN1,
                Hash::Sha256,
            )),
            AsymmetricSpec::EccNistP384 => Some((
                &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                &signature::ECDSA_P384_SHA384_ASN1,
                Hash::Sha384,
            )),
            AsymmetricSpec::EccNistP521 => Some((
                &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
                &signature::ECDSA_P521_SHA512_ASN1,
                Hash::Sha512,
            )),
            AsymmetricSpec::EccSecgP256k1 => Some((
                &signature::ECDSA_P256K1_SHA256_ASN1_SIGNING,
                &signature::ECDSA_P256K1_SHA256_ASN1,
                Hash::Sha256,
            )),
            _ => None,
        }
    }

    /// ECDH on the NIST curves (secp256k1 has no key agreement in KMS).
    fn ecdh(self) -> Option<&'static agreement::Algorithm> {
        match self {
            AsymmetricSpec::EccNistP256 => Some(&agreement::ECDH_P256),
            AsymmetricSpec::EccNistP384 => Some(&agreement::ECDH_P384),
            AsymmetricSpec::EccNistP521 => Some(&agreement::ECDH_P521),
            _ => None,
        }
    }

    fn mldsa(
        self,
    ) -> Option<(
        &'static signature::PqdsaSigningAlgorithm,
        &'static signature::PqdsaVerificationAlgorithm,
    )> {
        match self {
            AsymmetricSpec::MlDsa44 => Some((&signature::ML_DSA_44_SIGNING, &signature::ML_DSA_44)),
            AsymmetricSpec::MlDsa65 => Some((&signature::ML_DSA_65_SIGNING, &signature::ML_DSA_65)),
            AsymmetricSpec::MlDsa87 => Some((&signature::ML_DSA_87_SIGNING, &signature::ML_DSA_87)),
            _ => None,
        }
    }

    fn mlkem(self) -> Option<(&'static kem::Algorithm<kem::AlgorithmId>, i32)> {
        match self {
            AsymmetricSpec::MlKem512 => Some((&kem::ML_KEM_512, aws_lc_sys::NID_MLKEM512)),
            AsymmetricSpec::MlKem768 => Some((&kem::ML_KEM_768, aws_lc_sys::NID_MLKEM768)),
            AsymmetricSpec::MlKem1024 => Some((&kem::ML_KEM_1024, aws_lc_sys::NID_MLKEM1024)),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            AsymmetricSpec::Rsa2048 | AsymmetricSpec::Rsa3072 | AsymmetricSpec::Rsa4096 => "RSA",
            AsymmetricSpec::EccNistP256
            | AsymmetricSpec::EccNistP384
            | AsymmetricSpec::EccNistP521
            | AsymmetricSpec::EccSecgP256k1 => "EC",
            AsymmetricSpec::EccNistEdwards25519 => "Ed25519",
            AsymmetricSpec::MlDsa44 | AsymmetricSpec::MlDsa65 | AsymmetricSpec::MlDsa87 => "ML-DSA",
            AsymmetricSpec::MlKem512 | AsymmetricSpec::MlKem768 | AsymmetricSpec::MlKem1024 => {
                "ML-KEM"
            }
        }
    }

    /// Generate a fresh key pair of this spec, as DER PKCS#8. RSA takes a while (about half a
    /// second for 2048 bits): callers on an async runtime run it on a blocking thread.
    pub fn generate(self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let der: Zeroizing<Vec<u8>> = if let Some(size) = self.rsa_size() {
            let pair = signature::RsaKeyPair::generate(size)?;
            let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair)?;
            Zeroizing::new(der.as_ref().to_vec())
        } else if let Some((alg, _, _)) = self.ecdsa() {
            let pair = signature::EcdsaKeyPair::generate(alg)?;
            Zeroizing::new(pair.to_pkcs8v1()?.as_ref().to_vec())
        } else if self == AsymmetricSpec::EccNistEdwards25519 {
            let pair = signature::Ed25519KeyPair::generate()?;
            Zeroizing::new(pair.to_pkcs8v1()?.as_ref().to_vec())
        } else if let Some((alg, _)) = self.mldsa() {
            let pair = signature::PqdsaKeyPair::generate(alg)?;
            Zeroizing::new(pair.to_pkcs8v1()?.as_ref().to_vec())
        } else if let Some((_, nid)) = self.mlkem() {
            Pkey::generate_kem(nid)?.private_der()?
        } else {
            return Err(CryptoError::Unspecified);
        };
        Ok(der)
    }
}

/// A hash of the SHA-2 family, as signing algorithms name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    /// Length of the digest in bytes: what a DIGEST message must be.
    pub fn output_len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }

    fn algorithm(self) -> &'static digest::Algorithm {
        match self {
            Hash::Sha256 => &digest::SHA256,
            Hash::Sha384 => &digest::SHA384,
            Hash::Sha512 => &digest::SHA512,
        }
    }
}

/// A signature scheme: padding or curve family and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningScheme {
    /// RSASSA-PKCS1-v1_5.
    RsaPkcs1(Hash),
    /// RSASSA-PSS, MGF1 with the same hash, salt of the hash's length.
    RsaPss(Hash),
    /// ECDSA with a DER (ASN.1) signature.
    Ecdsa(Hash),
    /// Pure Ed25519 (RFC 8032).
    Ed25519,
    /// Ed25519ph (RFC 8032 HashEdDSA, SHA-512, empty context).
    Ed25519ph,
    /// Pure ML-DSA with an empty context (FIPS 204).
    MlDsa,
}

/// What the message of a Sign or Verify request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// The message itself.
    Raw,
    /// Its hash, computed by the caller.
    Digest,
    /// The 64-byte μ of FIPS 204 (ML-DSA only).
    ExternalMu,
}

/// The two OAEP variants of KMS: the same hash for the label digest and MGF1, no label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OaepHash {
    Sha1,
    Sha256,
}

impl OaepHash {
    fn algorithm(self) -> &'static OaepAlgorithm {
        match self {
            OaepHash::Sha1 => &OAEP_SHA1_MGF1SHA1,
            OaepHash::Sha256 => &OAEP_SHA256_MGF1SHA256,
        }
    }
}

/// Why a signing request cannot be served by a key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignError {
    /// The scheme or message kind is not one of this key's.
    #[error("the key cannot sign or verify with this scheme and message kind")]
    Unsupported,
    /// A DIGEST or EXTERNAL_MU message of the wrong length.
    #[error("the digest has the wrong length")]
    DigestLength,
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

const MU_LEN: usize = 64;

struct RsaKey {
    signing: signature::RsaKeyPair,
    decrypting: OaepPrivateDecryptingKey,
    encrypting: OaepPublicEncryptingKey,
}

struct EcKey {
    signing: signature::EcdsaKeyPair,
    hash: Hash,
    agreement: Option<(agreement::PrivateKey, &'static agreement::Algorithm)>,
}

struct Ed25519Key {
    signing: signature::Ed25519KeyPair,
    /// seed || public key, as Ed25519ph signing takes it.
    expanded: Zeroizing<[u8; 64]>,
}

struct MlDsaKey {
    signing: signature::PqdsaKeyPair,
    /// The same key as an EVP_PKEY, for signing an external μ.
    evp: Pkey,
    signature_len: usize,
}

struct MlKemKey {
    decapsulation: DecapsulationKey<kem::AlgorithmId>,
    encapsulation: EncapsulationKey<kem::AlgorithmId>,
}

enum Inner {
    Rsa(Box<RsaKey>),
    Ec(Box<EcKey>),
    Ed25519(Box<Ed25519Key>),
    MlDsa(Box<MlDsaKey>),
    MlKem(Box<MlKemKey>),
}

/// A parsed private key with everything its operations need.
pub struct PrivateKey {
    spec: AsymmetricSpec,
    inner: Inner,
    public: PublicKey,
}

/// What verifies the signatures of a public key, parsed once per scheme.
enum Verifiers {
    Rsa(Vec<(SigningScheme, ParsedPublicKey)>),
    Ec(ParsedPublicKey, Hash),
    Ed25519(ParsedPublicKey, [u8; 32]),
    MlDsa(ParsedPublicKey, Pkey),
    /// ML-KEM keys sign nothing.
    None,
}

/// A parsed public key: its DER SubjectPublicKeyInfo and its verifiers.
pub struct PublicKey {
    spec: AsymmetricSpec,
    der: Vec<u8>,
    verifiers: Verifiers,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({:?})", self.spec)
    }
}

const RSA_SCHEMES: [(SigningScheme, &signature::RsaParameters); 6] = [
    (
        SigningScheme::RsaPkcs1(Hash::Sha256),
        &signature::RSA_PKCS1_2048_8192_SHA256,
    ),
    (
        SigningScheme::RsaPkcs1(Hash::Sha384),
        &signature::RSA_PKCS1_2048_8192_SHA384,
    ),
    (
        SigningScheme::RsaPkcs1(Hash::Sha512),
        &signature::RSA_PKCS1_2048_8192_SHA512,
    ),
    (
        SigningScheme::RsaPss(Hash::Sha256),
        &signature::RSA_PSS_2048_8192_SHA256,
    ),
    (
        SigningScheme::RsaPss(Hash::Sha384),
        &signature::RSA_PSS_2048_8192_SHA384,
    ),
    (
        SigningScheme::RsaPss(Hash::Sha512),
        &signature::RSA_PSS_2048_8192_SHA512,
    ),
];

impl PublicKey {
    /// Parse the DER SubjectPublicKeyInfo of a key of `spec`.
    pub fn from_spki(spec: AsymmetricSpec, der: &[u8]) -> Result<PublicKey, CryptoError> {
        let evp = Pkey::parse_public(der).map_err(|_| bad(spec))?;
        let verifiers = if spec.is_rsa() {
            let mut all = Vec::new();
            for (scheme, alg) in RSA_SCHEMES {
                all.push((scheme, parsed(alg, der, spec)?));
            }
            Verifiers::Rsa(all)
        } else if let Some((_, alg, hash)) = spec.ecdsa() {
            Verifiers::Ec(parsed(alg, der, spec)?, hash)
        } else if spec == AsymmetricSpec::EccNistEdwards25519 {
            let raw: [u8; 32] = evp
                .raw_public()?
                .as_slice()
                .try_into()
                .map_err(|_| bad(spec))?;
            Verifiers::Ed25519(parsed(&signature::ED25519, der, spec)?, raw)
        } else if let Some((_, alg)) = spec.mldsa() {
            Verifiers::MlDsa(parsed(alg, der, spec)?, evp)
        } else {
            Verifiers::None
        };
        Ok(PublicKey {
            spec,
            der: der.to_vec(),
            verifiers,
        })
    }

    pub fn spec(&self) -> AsymmetricSpec {
        self.spec
    }

    /// DER SubjectPublicKeyInfo.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The raw public key of an ML-DSA key (FIPS 204 `pk`), which μ is computed over.
    pub fn mldsa_raw(&self) -> Option<Vec<u8>> {
        match &self.verifiers {
            Verifiers::MlDsa(_, evp) => evp.raw_public().ok(),
            _ => None,
        }
    }

    /// Verify `signature` of `message` (of `kind`) with `scheme`: `Ok(false)` when it does not verify.
    pub fn verify(
        &self,
        scheme: SigningScheme,
        kind: MessageKind,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, SignError> {
        check_message(scheme, kind, message)?;
        let with = |key: &ParsedPublicKey, hash: Option<Hash>| -> bool {
            match (kind, hash) {
                (MessageKind::Digest, Some(h)) => {
                    digest::Digest::import_less_safe(message, h.algorithm())
                        .map(|d| key.verify_digest_sig(&d, signature).is_ok())
                        .unwrap_or(false)
                }
                _ => key.verify_sig(message, signature).is_ok(),
            }
        };
        match (&self.verifiers, scheme) {
            (Verifiers::Rsa(all), SigningScheme::RsaPkcs1(h) | SigningScheme::RsaPss(h)) => all
                .iter()
                .find(|(s, _)| *s == scheme)
                .map(|(_, key)| with(key, Some(h)))
                .ok_or(SignError::Unsupported),
            (Verifiers::Ec(key, hash), SigningScheme::Ecdsa(h)) if h == *hash => {
                Ok(with(key, Some(h)))
            }
            (Verifiers::Ed25519(key, _), SigningScheme::Ed25519) => Ok(with(key, None)),
            (Verifiers::Ed25519(_, raw), SigningScheme::Ed25519ph) => {
                Ok(lc::ed25519ph_verify(message, signature, raw))
            }
            (Verifiers::MlDsa(key, evp), SigningScheme::MlDsa) => {
                if kind == MessageKind::ExternalMu {
                    Ok(evp.mldsa_verify_mu(message, signature))
                } else {
                    Ok(with(key, None))
                }
            }
            _ => Err(SignError::Unsupported),
        }
    }
}

/// Check a message's length for a DIGEST or EXTERNAL_MU request of `scheme`, and that the scheme
/// takes that kind of message at all (pure Ed25519 only RAW, Ed25519ph only DIGEST, ML-DSA RAW
/// or EXTERNAL_MU, the others RAW or DIGEST).
pub fn check_message(
    scheme: SigningScheme,
    kind: MessageKind,
    message: &[u8],
) -> Result<(), SignError> {
    let expected = match (scheme, kind) {
        (
            SigningScheme::RsaPkcs1(_)
            | SigningScheme::RsaPss(_)
            | SigningScheme::Ecdsa(_)
            | SigningScheme::Ed25519
            | SigningScheme::MlDsa,
            MessageKind::Raw,
        ) => return Ok(()),
        (SigningScheme::Ed25519ph, MessageKind::Digest) => Hash::Sha512.output_len(),
        (
            SigningScheme::RsaPkcs1(h) | SigningScheme::RsaPss(h) | SigningScheme::Ecdsa(h),
            MessageKind::Digest,
        ) => h.output_len(),
        (SigningScheme::MlDsa, MessageKind::ExternalMu) => MU_LEN,
        _ => return Err(SignError::Unsupported),
    };
    if message.len() != expected {
        return Err(SignError::DigestLength);
    }
    Ok(())
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({:?}, [REDACTED])", self.spec)
    }
}

fn bad(spec: AsymmetricSpec) -> CryptoError {
    CryptoError::BadKeyMaterial(spec.name())
}

fn parsed(
    alg: &'static dyn VerificationAlgorithm,
    public: &[u8],
    spec: AsymmetricSpec,
) -> Result<ParsedPublicKey, CryptoError> {
    ParsedPublicKey::new(alg, public).map_err(|_| bad(spec))
}

/// The DER SubjectPublicKeyInfo of a DER PKCS#8 private key of `spec`, without preparing
/// anything else (what GenerateDataKeyPair returns next to a fresh private key).
pub fn public_key_der(spec: AsymmetricSpec, pkcs8: &[u8]) -> Result<Vec<u8>, CryptoError> {
    Pkey::parse_private(pkcs8)
        .map_err(|_| bad(spec))?
        .public_der()
}

impl PrivateKey {
    /// Parse a DER PKCS#8 private key of `spec`, preparing every object its operations use.
    pub fn from_pkcs8(spec: AsymmetricSpec, der: &[u8]) -> Result<PrivateKey, CryptoError> {
        // The key once as an EVP_PKEY: its public half for every spec, and the object the
        // ML-DSA external-mu and ML-KEM paths use.
        let evp = Pkey::parse_private(der).map_err(|_| bad(spec))?;
        let public = PublicKey::from_spki(spec, &evp.public_der()?)?;
        let inner = if spec.is_rsa() {
            let signing = signature::RsaKeyPair::from_pkcs8(der).map_err(|_| bad(spec))?;
            if Some(signing.public_modulus_len()) != spec.rsa_size().map(KeySize::len) {
                return Err(bad(spec));
            }
            let private = PrivateDecryptingKey::from_pkcs8(der).map_err(|_| bad(spec))?;
            let encrypting = OaepPublicEncryptingKey::new(private.public_key())?;
            let decrypting = OaepPrivateDecryptingKey::new(private)?;
            Inner::Rsa(Box::new(RsaKey {
                signing,
                decrypting,
                encrypting,
            }))
        } else if let Some((sign_alg, _, hash)) = spec.ecdsa() {
            let signing =
                signature::EcdsaKeyPair::from_pkcs8(sign_alg, der).map_err(|_| bad(spec))?;
            let agreement = match spec.ecdh() {
                Some(alg) => Some((
                    agreement::PrivateKey::from_private_key_der(alg, der).map_err(|_| bad(spec))?,
                    alg,
                )),
                None => None,
            };
            Inner::Ec(Box::new(EcKey {
                signing,
                hash,
                agreement,
            }))
        } else if spec == AsymmetricSpec::EccNistEdwards25519 {
            let signing = signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                .map_err(|_| bad(spec))?;
            let public: [u8; 32] = signing
                .public_key()
                .as_ref()
                .try_into()
                .map_err(|_| bad(spec))?;
            let seed = aws_lc_rs::encoding::AsBigEndian::<aws_lc_rs::encoding::Curve25519SeedBin>::as_be_bytes(
                &signing.seed()?,
            )?;
            let mut expanded = Zeroizing::new([0u8; 64]);
            if seed.as_ref().len() != 32 {
                return Err(bad(spec));
            }
            expanded[..32].copy_from_slice(seed.as_ref());
            expanded[32..].copy_from_slice(&public);
            Inner::Ed25519(Box::new(Ed25519Key { signing, expanded }))
        } else if let Some((sign_alg, _)) = spec.mldsa() {
            let signing =
                signature::PqdsaKeyPair::from_pkcs8(sign_alg, der).map_err(|_| bad(spec))?;
            Inner::MlDsa(Box::new(MlDsaKey {
                signature_len: sign_alg.signature_len(),
                signing,
                evp,
            }))
        } else if let Some((alg, _)) = spec.mlkem() {
            let raw = evp.raw_private().map_err(|_| bad(spec))?;
            let decapsulation = DecapsulationKey::new(alg, &raw).map_err(|_| bad(spec))?;
            // From the parsed key's own public half: a DecapsulationKey built from raw bytes
            // has none to give.
            let encapsulation =
                EncapsulationKey::new(alg, &evp.raw_public()?).map_err(|_| bad(spec))?;
            Inner::MlKem(Box::new(MlKemKey {
                decapsulation,
                encapsulation,
            }))
        } else {
            return Err(bad(spec));
        };
        Ok(PrivateKey {
            spec,
            inner,
            public,
        })
    }

    pub fn spec(&self) -> AsymmetricSpec {
        self.spec
    }

    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The public key, DER SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> &[u8] {
        self.public.der()
    }

    /// Sign `message` (of `kind`) with `scheme`.
    pub fn sign(
        &self,
        scheme: SigningScheme,
        kind: MessageKind,
        message: &[u8],
    ) -> Result<Vec<u8>, SignError> {
        check_message(scheme, kind, message)?;
        let rng = aws_lc_rs::rand::SystemRandom::new();
        match (&self.inner, scheme) {
            (Inner::Rsa(k), SigningScheme::RsaPkcs1(h) | SigningScheme::RsaPss(h)) => {
                let encoding: &'static dyn signature::RsaEncoding = match scheme {
                    SigningScheme::RsaPkcs1(Hash::Sha256) => &signature::RSA_PKCS1_SHA256,
                    SigningScheme::RsaPkcs1(Hash::Sha384) => &signature::RSA_PKCS1_SHA384,
                    SigningScheme::RsaPkcs1(Hash::Sha512) => &signature::RSA_PKCS1_SHA512,
                    SigningScheme::RsaPss(Hash::Sha256) => &signature::RSA_PSS_SHA256,
                    SigningScheme::RsaPss(Hash::Sha384) => &signature::RSA_PSS_SHA384,
                    SigningScheme::RsaPss(Hash::Sha512) => &signature::RSA_PSS_SHA512,
                    _ => return Err(SignError::Unsupported),
                };
                let mut sig = vec![0u8; k.signing.public_modulus_len()];
                if kind == MessageKind::Digest {
                    let digest = digest::Digest::import_less_safe(message, h.algorithm())
                        .map_err(CryptoError::from)?;
                    k.signing
                        .sign_digest(encoding, &digest, &mut sig)
                        .map_err(CryptoError::from)?;
                } else {
                    k.signing
                        .sign(encoding, &rng, message, &mut sig)
                        .map_err(CryptoError::from)?;
                }
                Ok(sig)
            }
            (Inner::Ec(k), SigningScheme::Ecdsa(h)) if h == k.hash => {
                let sig = if kind == MessageKind::Digest {
                    let digest = digest::Digest::import_less_safe(message, h.algorithm())
                        .map_err(CryptoError::from)?;
                    k.signing.sign_digest(&digest).map_err(CryptoError::from)?
                } else {
                    k.signing.sign(&rng, message).map_err(CryptoError::from)?
                };
                Ok(sig.as_ref().to_vec())
            }
            (Inner::Ed25519(k), SigningScheme::Ed25519) => {
                Ok(k.signing.sign(message).as_ref().to_vec())
            }
            (Inner::Ed25519(k), SigningScheme::Ed25519ph) => {
                Ok(lc::ed25519ph_sign(message, &k.expanded)?.to_vec())
            }
            (Inner::MlDsa(k), SigningScheme::MlDsa) => {
                if kind == MessageKind::ExternalMu {
                    Ok(k.evp.mldsa_sign_mu(message, k.signature_len)?)
                } else {
                    let mut sig = vec![0u8; k.signature_len];
                    let n = k
                        .signing
                        .sign(message, &mut sig)
                        .map_err(CryptoError::from)?;
                    sig.truncate(n);
                    Ok(sig)
                }
            }
            _ => Err(SignError::Unsupported),
        }
    }

    /// Verify `signature` of `message` (of `kind`) with `scheme`: `Ok(false)` when it does not verify.
    pub fn verify(
        &self,
        scheme: SigningScheme,
        kind: MessageKind,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, SignError> {
        self.public.verify(scheme, kind, message, signature)
    }

    /// The largest plaintext RSA OAEP with `hash` takes under this key; `None` for other keys.
    pub fn oaep_max_plaintext(&self, hash: OaepHash) -> Option<usize> {
        match &self.inner {
            Inner::Rsa(k) => Some(k.encrypting.max_plaintext_size(hash.algorithm())),
            _ => None,
        }
    }

    /// RSA OAEP encryption (the caller checks the plaintext length first).
    pub fn oaep_encrypt(&self, hash: OaepHash, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let Inner::Rsa(k) = &self.inner else {
            return Err(CryptoError::Unspecified);
        };
        let mut out = vec![0u8; k.encrypting.ciphertext_size()];
        let n = k
            .encrypting
            .encrypt(hash.algorithm(), plaintext, &mut out, None)?
            .len();
        out.truncate(n);
        Ok(out)
    }

    /// RSA OAEP decryption. A ciphertext that does not decrypt is `InvalidCiphertext`.
    pub fn oaep_decrypt(
        &self,
        hash: OaepHash,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let Inner::Rsa(k) = &self.inner else {
            return Err(CryptoError::Unspecified);
        };
        let mut out = Zeroizing::new(vec![0u8; k.decrypting.min_output_size()]);
        let n = k
            .decrypting
            .decrypt(hash.algorithm(), ciphertext, &mut out, None)
            .map_err(|_| CryptoError::InvalidCiphertext)?
            .len();
        out.truncate(n);
        Ok(out)
    }

    /// ECDH with a peer's DER SubjectPublicKeyInfo on this key's curve: the raw shared secret
    /// (the x-coordinate). `None` when the peer key is not such a key (or this key has no ECDH).
    pub fn ecdh(&self, peer_spki: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, CryptoError> {
        let Inner::Ec(k) = &self.inner else {
            return Ok(None);
        };
        let Some((private, alg)) = &k.agreement else {
            return Ok(None);
        };
        // A SubjectPublicKeyInfo and nothing after it.
        if Pkey::parse_public(peer_spki).is_err() {
            return Ok(None);
        }
        let Ok(peer) =
            agreement::ParsedPublicKey::try_from(agreement::UnparsedPublicKey::new(alg, peer_spki))
        else {
            return Ok(None);
        };
        if peer.format() != agreement::ParsedPublicKeyFormat::X509 {
            return Ok(None);
        }
        match agreement::agree(private, peer, CryptoError::Unspecified, |secret| {
            Ok(Zeroizing::new(secret.to_vec()))
        }) {
            Ok(secret) => Ok(Some(secret)),
            Err(_) => Ok(None),
        }
    }

    /// ML-KEM encapsulation to this key: (ciphertext, 32-byte shared secret).
    pub fn encapsulate(&self) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), CryptoError> {
        let Inner::MlKem(k) = &self.inner else {
            return Err(CryptoError::Unspecified);
        };
        let (ciphertext, secret) = k.encapsulation.encapsulate()?;
        Ok((
            ciphertext.as_ref().to_vec(),
            Zeroizing::new(secret.as_ref().to_vec()),
        ))
    }

    /// Length of this ML-KEM key's ciphertexts.
    pub fn kem_ciphertext_len(&self) -> Option<usize> {
        match self.spec {
            AsymmetricSpec::MlKem512 => Some(768),
            AsymmetricSpec::MlKem768 => Some(1088),
            AsymmetricSpec::MlKem1024 => Some(1568),
            _ => None,
        }
    }

    /// ML-KEM decapsulation. A ciphertext of the wrong length is `InvalidCiphertext`; any other
    /// ciphertext gives 32 bytes (implicit rejection: a pseudo-random secret for a bad one).
    pub fn decapsulate(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let Inner::MlKem(k) = &self.inner else {
            return Err(CryptoError::Unspecified);
        };
        if Some(ciphertext.len()) != self.kem_ciphertext_len() {
            return Err(CryptoError::InvalidCiphertext);
        }
        let secret = k
            .decapsulation
            .decapsulate(ciphertext.into())
            .map_err(|_| CryptoError::InvalidCiphertext)?;
        Ok(Zeroizing::new(secret.as_ref().to_vec()))
    }
}
