//! The cryptography of importing key material (AWS KMS `GetParametersForImport` and
//! `ImportKeyMaterial`): unwrapping `EncryptedKeyMaterial` with the RSA wrapping private key, and,
//! for tests, wrapping material the way a client does.
//!
//! The wrapping key is an RSA key of spec RSA_2048, RSA_3072 or RSA_4096, generated with
//! [`AsymmetricSpec::generate`](crate::AsymmetricSpec::generate) and parsed with
//! [`PrivateKey::from_pkcs8`]; its public half ([`PrivateKey::public_key_der`], DER
//! SubjectPublicKeyInfo) is what GetParametersForImport hands out. The wrapping algorithms
//! ([`WrappingAlgorithm`]):
//!
//! - `RSAES_OAEP_SHA_1`, `RSAES_OAEP_SHA_256`: `EncryptedKeyMaterial` is the key material
//!   encrypted directly with RSA-OAEP (the label hash and MGF1 both SHA-1 or both SHA-256, empty
//!   label). The material can be at most `k - 2·hLen - 2` bytes (`k` the modulus length in bytes):
//!   214 bytes for SHA-1 and 190 for SHA-256 under RSA_2048.
//! - `RSA_AES_KEY_WRAP_SHA_1`, `RSA_AES_KEY_WRAP_SHA_256`: the client draws a random 256-bit AES
//!   key, wraps the material under it with AES Key Wrap with Padding (RFC 5649, "KWP", default
//!   alternative IV `A65959A6`), encrypts the AES key with RSA-OAEP as above, and sends
//!   `RSA ciphertext (exactly k bytes) || KWP ciphertext`. Any material length (≥ 1 byte) fits.
//!
//! `RSAES_PKCS1_V1_5` and `SM2PKE` are not offered: [`WrappingAlgorithm::from_name`] returns
//! `None` for them.
//!
//! Every primitive is aws-lc-rs's: OAEP decryption through [`PrivateKey::oaep_decrypt`], OAEP
//! encryption through `aws_lc_rs::rsa::OaepPublicEncryptingKey`, KWP through
//! `aws_lc_rs::key_wrap::AesKek` (AES-256) and the AES key from `aws_lc_rs::rand`.
//!
//! Errors: whatever is wrong with `EncryptedKeyMaterial` (its length, the OAEP padding, an RSA
//! plaintext that is not a 32-byte AES key, the KWP integrity check) is
//! [`CryptoError::InvalidCiphertext`] and says nothing more. A wrapping key that is not RSA is a
//! caller's bug and gives [`CryptoError::Unspecified`]. Unwrapping does not judge the length of
//! the material it recovers (an `RSAES_OAEP_*` ciphertext may hold zero bytes): checking it
//! against the key spec being imported is the caller's job.
//!
//! In the key-wrap variants, a ciphertext whose RSA part does not decrypt to a 32-byte key is
//! still run through KWP, under a random key (implicit rejection), so that the work done and the
//! error returned do not tell an OAEP failure from a KWP failure.
//!
//! Besides the API of the brief, [`kwp_wrap`] and [`kwp_unwrap`] (the AES-256 KWP step alone) are
//! public so that the Wycheproof KWP vectors can run through the exact code the unwrap path uses,
//! and [`WrappingAlgorithm::ALL`] lists the four algorithms.

use crate::CryptoError;
use crate::asymmetric::{AsymmetricSpec, OaepHash, PrivateKey};
use aws_lc_rs::key_wrap::{AES_256, AesKek, KeyWrapPadded};
use aws_lc_rs::rsa::{
    OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepAlgorithm, OaepPublicEncryptingKey,
    PublicEncryptingKey,
};
use zeroize::Zeroizing;

/// Length of the AES key of the key-wrap variants: AES-256.
pub const AES_KEY_LEN: usize = 32;

/// The KWP block: ciphertexts are whole multiples of it and at least two of it.
const KWP_BLOCK: usize = 8;

/// A wrapping algorithm of GetParametersForImport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WrappingAlgorithm {
    /// `RSAES_OAEP_SHA_1`: RSA-OAEP (SHA-1, MGF1-SHA-1) of the material.
    RsaesOaepSha1,
    /// `RSAES_OAEP_SHA_256`: RSA-OAEP (SHA-256, MGF1-SHA-256) of the material.
    RsaesOaepSha256,
    /// `RSA_AES_KEY_WRAP_SHA_1`: RSA-OAEP (SHA-1) of an AES-256 key || KWP of the material.
    RsaAesKeyWrapSha1,
    /// `RSA_AES_KEY_WRAP_SHA_256`: RSA-OAEP (SHA-256) of an AES-256 key || KWP of the material.
    RsaAesKeyWrapSha256,
}

impl WrappingAlgorithm {
    pub const ALL: [WrappingAlgorithm; 4] = [
        WrappingAlgorithm::RsaesOaepSha1,
        WrappingAlgorithm::RsaesOaepSha256,
        WrappingAlgorithm::RsaAesKeyWrapSha1,
        WrappingAlgorithm::RsaAesKeyWrapSha256,
    ];

    /// The algorithm of an AWS `WrappingAlgorithm` name; `None` for any other name, including
    /// the `RSAES_PKCS1_V1_5` and `SM2PKE` that trent does not offer.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The AWS name.
    pub fn name(self) -> &'static str {
        match self {
            WrappingAlgorithm::RsaesOaepSha1 => "RSAES_OAEP_SHA_1",
            WrappingAlgorithm::RsaesOaepSha256 => "RSAES_OAEP_SHA_256",
            WrappingAlgorithm::RsaAesKeyWrapSha1 => "RSA_AES_KEY_WRAP_SHA_1",
            WrappingAlgorithm::RsaAesKeyWrapSha256 => "RSA_AES_KEY_WRAP_SHA_256",
        }
    }

    /// The OAEP variant of the RSA step.
    pub fn oaep_hash(self) -> OaepHash {
        match self {
            WrappingAlgorithm::RsaesOaepSha1 | WrappingAlgorithm::RsaAesKeyWrapSha1 => {
                OaepHash::Sha1
            }
            WrappingAlgorithm::RsaesOaepSha256 | WrappingAlgorithm::RsaAesKeyWrapSha256 => {
                OaepHash::Sha256
            }
        }
    }

    /// Whether the material is wrapped with AES KWP under an RSA-encrypted AES key.
    pub fn is_key_wrap(self) -> bool {
        matches!(
            self,
            WrappingAlgorithm::RsaAesKeyWrapSha1 | WrappingAlgorithm::RsaAesKeyWrapSha256
        )
    }

    fn oaep_algorithm(self) -> &'static OaepAlgorithm {
        match self.oaep_hash() {
            OaepHash::Sha1 => &OAEP_SHA1_MGF1SHA1,
            OaepHash::Sha256 => &OAEP_SHA256_MGF1SHA256,
        }
    }
}

/// The modulus length in bytes of an RSA wrapping key (checked against the spec by
/// [`PrivateKey::from_pkcs8`]); `None` for other keys.
fn modulus_len(spec: AsymmetricSpec) -> Option<usize> {
    match spec {
        AsymmetricSpec::Rsa2048 => Some(256),
        AsymmetricSpec::Rsa3072 => Some(384),
        AsymmetricSpec::Rsa4096 => Some(512),
        _ => None,
    }
}

/// Decrypt `EncryptedKeyMaterial` with the wrapping private key. Any failure (wrong length, OAEP
/// failure, KWP integrity failure) is [`CryptoError::InvalidCiphertext`]; a wrapping key that is
/// not RSA is [`CryptoError::Unspecified`].
pub fn unwrap_key_material(
    wrapping_key: &PrivateKey,
    algorithm: WrappingAlgorithm,
    encrypted: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let k = modulus_len(wrapping_key.spec()).ok_or(CryptoError::Unspecified)?;
    let hash = algorithm.oaep_hash();
    if !algorithm.is_key_wrap() {
        if encrypted.len() != k {
            return Err(CryptoError::InvalidCiphertext);
        }
        return wrapping_key
            .oaep_decrypt(hash, encrypted)
            .map_err(|_| CryptoError::InvalidCiphertext);
    }
    // RSA ciphertext (k bytes) || KWP ciphertext (at least two blocks, whole blocks).
    if encrypted.len() < k + 2 * KWP_BLOCK || !(encrypted.len() - k).is_multiple_of(KWP_BLOCK) {
        return Err(CryptoError::InvalidCiphertext);
    }
    let (rsa_part, kwp_part) = encrypted.split_at(k);
    let mut kek = Zeroizing::new([0u8; AES_KEY_LEN]);
    let rsa_ok = match wrapping_key.oaep_decrypt(hash, rsa_part) {
        Ok(key) if key.len() == AES_KEY_LEN => {
            kek.copy_from_slice(&key);
            true
        }
        // Implicit rejection: carry on under a random key, so that an OAEP failure costs the
        // same work and gives the same error as a KWP failure.
        _ => {
            aws_lc_rs::rand::fill(&mut kek[..])?;
            false
        }
    };
    let material = kwp_unwrap(&kek, kwp_part);
    if !rsa_ok {
        return Err(CryptoError::InvalidCiphertext);
    }
    material
}

/// What a client does: wrap `material` for the wrapping public key `public_key_der` (DER
/// SubjectPublicKeyInfo of an RSA key) with `algorithm`, drawing the AES key of the key-wrap
/// variants from the aws-lc CSPRNG. Material too long for an `RSAES_OAEP_*` algorithm under the
/// key is refused with [`CryptoError::Library`]; empty material with [`CryptoError::Library`] too
/// for the key-wrap variants (KWP wraps at least one byte).
pub fn wrap_key_material(
    public_key_der: &[u8],
    algorithm: WrappingAlgorithm,
    material: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let public = PublicEncryptingKey::from_der(public_key_der)
        .map_err(|_| CryptoError::Library("not an RSA SubjectPublicKeyInfo".into()))?;
    let key = OaepPublicEncryptingKey::new(public)?;
    let oaep = algorithm.oaep_algorithm();
    let rsa_encrypt = |plaintext: &[u8]| -> Result<Vec<u8>, CryptoError> {
        if plaintext.len() > key.max_plaintext_size(oaep) {
            return Err(CryptoError::Library(format!(
                "{}: plaintext too long for RSA-OAEP under this key",
                algorithm.name()
            )));
        }
        let mut out = vec![0u8; key.ciphertext_size()];
        let n = key.encrypt(oaep, plaintext, &mut out, None)?.len();
        out.truncate(n);
        Ok(out)
    };
    if !algorithm.is_key_wrap() {
        return rsa_encrypt(material);
    }
    let mut kek = Zeroizing::new([0u8; AES_KEY_LEN]);
    aws_lc_rs::rand::fill(&mut kek[..])?;
    let mut out = rsa_encrypt(&kek[..])?;
    out.extend_from_slice(&kwp_wrap(&kek, material)?);
    Ok(out)
}

/// AES-256 Key Wrap with Padding (RFC 5649) of `plaintext` under `kek`. Empty plaintext is
/// refused with [`CryptoError::Library`].
pub fn kwp_wrap(kek: &[u8; AES_KEY_LEN], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let aes = AesKek::new(&AES_256, kek)?;
    // The plaintext rounded up to whole blocks, plus the one block of the integrity check.
    let mut out = vec![0u8; plaintext.len() + 2 * KWP_BLOCK];
    let n = aes
        .wrap_with_padding(plaintext, &mut out)
        .map_err(|_| CryptoError::Library("AES key wrap with padding".into()))?
        .len();
    out.truncate(n);
    Ok(out)
}

/// AES-256 Key Wrap with Padding (RFC 5649) unwrapping of `ciphertext` under `kek`. Any failure
/// is [`CryptoError::InvalidCiphertext`].
pub fn kwp_unwrap(
    kek: &[u8; AES_KEY_LEN],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let aes = AesKek::new(&AES_256, kek)?;
    let mut out = Zeroizing::new(vec![0u8; ciphertext.len()]);
    let n = aes
        .unwrap_with_padding(ciphertext, &mut out)
        .map_err(|_| CryptoError::InvalidCiphertext)?
        .len();
    out.truncate(n);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    const SPECS: [AsymmetricSpec; 3] = [
        AsymmetricSpec::Rsa2048,
        AsymmetricSpec::Rsa3072,
        AsymmetricSpec::Rsa4096,
    ];

    /// One wrapping key per RSA spec, plus a second RSA_2048 key, generated once for all tests.
    fn keys() -> &'static [PrivateKey; 4] {
        static KEYS: OnceLock<[PrivateKey; 4]> = OnceLock::new();
        KEYS.get_or_init(|| {
            let make = |spec: AsymmetricSpec| {
                PrivateKey::from_pkcs8(spec, &spec.generate().unwrap()).unwrap()
            };
            std::thread::scope(|s| {
                let handles = [SPECS[0], SPECS[1], SPECS[2], SPECS[0]]
                    .map(|spec| s.spawn(move || make(spec)));
                handles.map(|h| h.join().unwrap())
            })
        })
    }

    fn key(spec: AsymmetricSpec) -> &'static PrivateKey {
        &keys()[SPECS.iter().position(|s| *s == spec).unwrap()]
    }

    fn other_2048() -> &'static PrivateKey {
        &keys()[3]
    }

    fn material(len: usize) -> Vec<u8> {
        let mut m = vec![0u8; len];
        aws_lc_rs::rand::fill(&mut m).unwrap();
        m
    }

    /// Large materials: a PKCS#8 RSA_2048 private key (about 1.2 KB) and a PKCS#8 P-521 key.
    fn large_materials() -> Vec<Zeroizing<Vec<u8>>> {
        let rsa = keys()[3].spec().generate().unwrap();
        let ec = AsymmetricSpec::EccNistP521.generate().unwrap();
        assert!((1100..1300).contains(&rsa.len()), "{}", rsa.len());
        vec![rsa, ec]
    }

    #[test]
    fn names_round_trip() {
        for a in WrappingAlgorithm::ALL {
            assert_eq!(WrappingAlgorithm::from_name(a.name()), Some(a));
        }
        for name in ["RSAES_PKCS1_V1_5", "SM2PKE", "rsaes_oaep_sha_1", ""] {
            assert_eq!(WrappingAlgorithm::from_name(name), None);
        }
    }

    #[test]
    fn round_trips_32_bytes() {
        for spec in SPECS {
            let key = key(spec);
            let k = modulus_len(spec).unwrap();
            for a in WrappingAlgorithm::ALL {
                let m = material(32);
                let ct = wrap_key_material(key.public_key_der(), a, &m).unwrap();
                let expected_len = if a.is_key_wrap() { k + 40 } else { k };
                assert_eq!(ct.len(), expected_len, "{spec:?} {a:?}");
                let out = unwrap_key_material(key, a, &ct).unwrap();
                assert_eq!(out[..], m[..], "{spec:?} {a:?}");
            }
        }
    }

    #[test]
    fn round_trips_large_material_with_key_wrap() {
        let large = large_materials();
        for spec in SPECS {
            let key = key(spec);
            for a in [
                WrappingAlgorithm::RsaAesKeyWrapSha1,
                WrappingAlgorithm::RsaAesKeyWrapSha256,
            ] {
                for m in &large {
                    let ct = wrap_key_material(key.public_key_der(), a, m).unwrap();
                    let out = unwrap_key_material(key, a, &ct).unwrap();
                    assert_eq!(out[..], m[..], "{spec:?} {a:?}");
                }
            }
        }
    }

    #[test]
    fn odd_lengths_round_trip_with_key_wrap() {
        let key = key(AsymmetricSpec::Rsa2048);
        for len in [1, 7, 8, 9, 15, 16, 17, 63, 64, 65] {
            let m = material(len);
            let ct = wrap_key_material(
                key.public_key_der(),
                WrappingAlgorithm::RsaAesKeyWrapSha256,
                &m,
            )
            .unwrap();
            let out =
                unwrap_key_material(key, WrappingAlgorithm::RsaAesKeyWrapSha256, &ct).unwrap();
            assert_eq!(out[..], m[..], "{len}");
        }
    }

    #[test]
    fn oaep_limits() {
        let large = large_materials();
        for spec in SPECS {
            let key = key(spec);
            for a in [
                WrappingAlgorithm::RsaesOaepSha1,
                WrappingAlgorithm::RsaesOaepSha256,
            ] {
                let max = key.oaep_max_plaintext(a.oaep_hash()).unwrap();
                // The largest material fits and round-trips; one byte more is refused.
                let m = material(max);
                let ct = wrap_key_material(key.public_key_der(), a, &m).unwrap();
                assert_eq!(unwrap_key_material(key, a, &ct).unwrap()[..], m[..]);
                assert!(matches!(
                    wrap_key_material(key.public_key_der(), a, &material(max + 1)),
                    Err(CryptoError::Library(_))
                ));
                for m in large.iter().filter(|m| m.len() > max) {
                    assert!(matches!(
                        wrap_key_material(key.public_key_der(), a, m),
                        Err(CryptoError::Library(_))
                    ));
                }
            }
        }
        assert_eq!(
            key(AsymmetricSpec::Rsa2048).oaep_max_plaintext(OaepHash::Sha1),
            Some(214)
        );
    }

    #[test]
    fn empty_material_is_refused_by_key_wrap() {
        let key = key(AsymmetricSpec::Rsa2048);
        for a in [
            WrappingAlgorithm::RsaAesKeyWrapSha1,
            WrappingAlgorithm::RsaAesKeyWrapSha256,
        ] {
            assert!(wrap_key_material(key.public_key_der(), a, &[]).is_err());
        }
    }

    #[test]
    fn tampering_any_byte_is_invalid() {
        for spec in SPECS {
            let key = key(spec);
            for a in WrappingAlgorithm::ALL {
                let ct = wrap_key_material(key.public_key_der(), a, &material(32)).unwrap();
                // Every byte for RSA_2048, a spread of bytes (both parts) for the larger keys.
                let step = if spec == AsymmetricSpec::Rsa2048 {
                    1
                } else {
                    7
                };
                let mut positions: Vec<usize> = (0..ct.len()).step_by(step).collect();
                positions.push(ct.len() - 1);
                for i in positions {
                    for flip in [0x01u8, 0x80] {
                        let mut bad = ct.clone();
                        bad[i] ^= flip;
                        assert_eq!(
                            unwrap_key_material(key, a, &bad).unwrap_err(),
                            CryptoError::InvalidCiphertext,
                            "{spec:?} {a:?} byte {i}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn truncation_and_extension_are_invalid() {
        for spec in SPECS {
            let key = key(spec);
            for a in WrappingAlgorithm::ALL {
                let ct = wrap_key_material(key.public_key_der(), a, &material(32)).unwrap();
                for len in [0, 1, ct.len() / 2, ct.len() - 8, ct.len() - 1] {
                    assert_eq!(
                        unwrap_key_material(key, a, &ct[..len]).unwrap_err(),
                        CryptoError::InvalidCiphertext,
                        "{spec:?} {a:?} truncated to {len}"
                    );
                }
                for extra in [&[0u8][..], &[0u8; 8][..]] {
                    let mut long = ct.clone();
                    long.extend_from_slice(extra);
                    assert_eq!(
                        unwrap_key_material(key, a, &long).unwrap_err(),
                        CryptoError::InvalidCiphertext,
                        "{spec:?} {a:?} extended by {}",
                        extra.len()
                    );
                }
            }
        }
    }

    #[test]
    fn wrong_wrapping_key_is_invalid() {
        for a in WrappingAlgorithm::ALL {
            let right = key(AsymmetricSpec::Rsa2048);
            let ct = wrap_key_material(right.public_key_der(), a, &material(32)).unwrap();
            for wrong in [
                other_2048(),
                key(AsymmetricSpec::Rsa3072),
                key(AsymmetricSpec::Rsa4096),
            ] {
                assert_eq!(
                    unwrap_key_material(wrong, a, &ct).unwrap_err(),
                    CryptoError::InvalidCiphertext,
                    "{a:?} under {:?}",
                    wrong.spec()
                );
            }
        }
    }

    #[test]
    fn wrong_algorithm_is_invalid() {
        for spec in SPECS {
            let key = key(spec);
            for a in WrappingAlgorithm::ALL {
                let ct = wrap_key_material(key.public_key_der(), a, &material(32)).unwrap();
                for b in WrappingAlgorithm::ALL.into_iter().filter(|b| *b != a) {
                    assert_eq!(
                        unwrap_key_material(key, b, &ct).unwrap_err(),
                        CryptoError::InvalidCiphertext,
                        "{spec:?}: {a:?} unwrapped as {b:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn rsa_part_not_an_aes_256_key_is_invalid() {
        // A well-formed key-wrap ciphertext except that the RSA part holds a 16- or 31-byte key.
        let key = key(AsymmetricSpec::Rsa2048);
        let public = OaepPublicEncryptingKey::new(
            PublicEncryptingKey::from_der(key.public_key_der()).unwrap(),
        )
        .unwrap();
        for len in [16, 31, 33] {
            let kek = material(len);
            let mut rsa = vec![0u8; public.ciphertext_size()];
            public
                .encrypt(&OAEP_SHA256_MGF1SHA256, &kek, &mut rsa, None)
                .unwrap();
            let mut full_kek = [0u8; AES_KEY_LEN];
            let n = len.min(AES_KEY_LEN);
            full_kek[..n].copy_from_slice(&kek[..n]);
            rsa.extend_from_slice(&kwp_wrap(&full_kek, &material(32)).unwrap());
            assert_eq!(
                unwrap_key_material(key, WrappingAlgorithm::RsaAesKeyWrapSha256, &rsa).unwrap_err(),
                CryptoError::InvalidCiphertext,
                "{len}"
            );
        }
    }

    #[test]
    fn non_rsa_wrapping_key_is_refused() {
        let spec = AsymmetricSpec::EccNistP256;
        let ec = PrivateKey::from_pkcs8(spec, &spec.generate().unwrap()).unwrap();
        assert_eq!(
            unwrap_key_material(&ec, WrappingAlgorithm::RsaesOaepSha256, &[0u8; 256]).unwrap_err(),
            CryptoError::Unspecified
        );
        assert!(
            wrap_key_material(
                ec.public_key_der(),
                WrappingAlgorithm::RsaesOaepSha256,
                &[0u8; 32]
            )
            .is_err()
        );
    }

    #[test]
    fn kwp_known_answer() {
        // RFC 5649 section 6 uses a 192-bit KEK, which aws-lc-rs does not offer; the Wycheproof
        // tests (tests/wycheproof_import.rs) hold the AES-256 known answers. Here: the round trip,
        // and the lengths RFC 5649 gives (ceil(n/8)*8 + 8, at least 16).
        let kek: [u8; AES_KEY_LEN] = material(AES_KEY_LEN).try_into().unwrap();
        for (len, ct_len) in [(1, 16), (8, 16), (9, 24), (20, 32), (32, 40)] {
            let m = material(len);
            let ct = kwp_wrap(&kek, &m).unwrap();
            assert_eq!(ct.len(), ct_len, "{len}");
            assert_eq!(kwp_unwrap(&kek, &ct).unwrap()[..], m[..]);
        }
        assert!(kwp_wrap(&kek, &[]).is_err());
        assert_eq!(
            kwp_unwrap(&kek, &[0u8; 8]).unwrap_err(),
            CryptoError::InvalidCiphertext
        );
    }
}
