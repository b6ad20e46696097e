//! Asymmetric, HMAC, key-agreement and ML-KEM keys end to end through `aws-sdk-kms`, as
//! docs/key-specs.md describes them: the metadata and public key of every key spec, every signing
//! algorithm with every message type it accepts, RSA encryption and its limits, MACs, ECDH,
//! ML-KEM, data key pairs, the errors of each family (exact code and message), key states and a
//! restart. What trent signs, encrypts, derives and encapsulates is also checked offline with
//! aws-lc-rs from the public key GetPublicKey returns. Every test runs its own server.

mod common;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{self, KeyPair as _, VerificationAlgorithm};
use aws_lc_rs::{agreement, digest, kem, rand, rsa};
use aws_sdk_kms::Client;
use aws_sdk_kms::error::DisplayErrorContext;
use aws_sdk_kms::operation::decapsulate::DecapsulateError;
use aws_sdk_kms::operation::get_public_key::GetPublicKeyOutput;
use aws_sdk_kms::operation::verify::VerifyError;
use aws_sdk_kms::operation::verify::builders::VerifyFluentBuilder;
use aws_sdk_kms::operation::verify_mac::VerifyMacError;
use aws_sdk_kms::primitives::Blob;
// CustomerMasterKeySpec is deprecated in the model, but clients still send and read it.
#[allow(deprecated)]
use aws_sdk_kms::types::CustomerMasterKeySpec;
use aws_sdk_kms::types::{
    DataKeyPairSpec, DataKeySpec, EncapsulationAlgorithmSpec, EncryptionAlgorithmSpec,
    KeyAgreementAlgorithmSpec, KeyManagerType, KeyMetadata, KeySpec, KeyState, KeyUsageType,
    MacAlgorithmSpec, MessageType, OriginType, SigningAlgorithmSpec,
};
use common::*;

// ---------------------------------------------------------------------------------------------
// codes and messages (docs/key-specs.md)

const VALIDATION: &str = "ValidationException";
const INVALID_KEY_USAGE: &str = "InvalidKeyUsageException";
const INVALID_CIPHERTEXT: &str = "InvalidCiphertextException";
const INVALID_SIGNATURE: &str = "KMSInvalidSignatureException";
const INVALID_MAC: &str = "KMSInvalidMacException";
const UNSUPPORTED: &str = "UnsupportedOperationException";
const DISABLED: &str = "DisabledException";
const INVALID_STATE: &str = "KMSInvalidStateException";
const DRY_RUN: &str = "DryRunOperationException";
const DRY_RUN_MSG: &str = "The request would have succeeded, but the DryRun option is set.";
const MESSAGE_TOO_LONG: &str = "1 validation error detected: Value at 'message' failed to satisfy constraint: Member must have length less than or equal to 4096";
const MESSAGE_EMPTY: &str = "1 validation error detected: Value at 'message' failed to satisfy constraint: Member must have length greater than or equal to 1";

fn arn(key_id: &str) -> String {
    key_arn(REGION, ACCOUNT, key_id)
}

fn usage_msg(key_id: &str, usage: &str, operation: &str) -> String {
    format!(
        "{} key usage is {usage} which is not valid for {operation}.",
        arn(key_id)
    )
}

fn algorithm_msg(algorithm: &str, spec: &str) -> String {
    format!("Algorithm {algorithm} is incompatible with key spec {spec}.")
}

fn digest_length_msg(algorithm: &str) -> String {
    format!("Digest is invalid length for algorithm {algorithm}.")
}

fn message_type_msg(message_type: &str, algorithm: &str) -> String {
    format!("MessageType {message_type} is not supported with signing algorithm {algorithm}.")
}

fn no_public_key_msg(key_id: &str, spec: &str) -> String {
    format!("{} key spec {spec} has no public key.", arn(key_id))
}

fn disabled_msg(key_id: &str) -> String {
    format!("{} is disabled.", arn(key_id))
}

fn pending_deletion_msg(key_id: &str) -> String {
    format!("{} is pending deletion.", arn(key_id))
}

/// `sig` with one bit flipped in the middle.
fn damaged(sig: &[u8]) -> Vec<u8> {
    let mut sig = sig.to_vec();
    let at = sig.len() / 2;
    sig[at] ^= 0x01;
    sig
}

// ---------------------------------------------------------------------------------------------
// the documented algorithm lists

#[derive(Debug, Default, PartialEq)]
struct Algorithms {
    encryption: Vec<EncryptionAlgorithmSpec>,
    signing: Vec<SigningAlgorithmSpec>,
    mac: Vec<MacAlgorithmSpec>,
    key_agreement: Vec<KeyAgreementAlgorithmSpec>,
    encapsulation: Vec<EncapsulationAlgorithmSpec>,
}

impl Algorithms {
    fn of_metadata(md: &KeyMetadata) -> Algorithms {
        Algorithms {
            encryption: md.encryption_algorithms().to_vec(),
            signing: md.signing_algorithms().to_vec(),
            mac: md.mac_algorithms().to_vec(),
            key_agreement: md.key_agreement_algorithms().to_vec(),
            encapsulation: md.encapsulation_algorithms().to_vec(),
        }
    }

    fn of_public_key(out: &GetPublicKeyOutput) -> Algorithms {
        Algorithms {
            encryption: out.encryption_algorithms().to_vec(),
            signing: out.signing_algorithms().to_vec(),
            mac: Vec::new(),
            key_agreement: out.key_agreement_algorithms().to_vec(),
            encapsulation: out.encapsulation_algorithms().to_vec(),
        }
    }
}

/// The table of docs/key-specs.md: the algorithm lists of a key of `spec` and `usage`.
fn documented_algorithms(spec: &KeySpec, usage: &KeyUsageType) -> Algorithms {
    use EncryptionAlgorithmSpec as E;
    use KeySpec as S;
    use KeyUsageType as U;
    use SigningAlgorithmSpec as A;
    let mut lists = Algorithms::default();
    match (spec, usage) {
        (S::SymmetricDefault, U::EncryptDecrypt) => lists.encryption = vec![E::SymmetricDefault],
        (S::Rsa2048 | S::Rsa3072 | S::Rsa4096, U::EncryptDecrypt) => {
            lists.encryption = vec![E::RsaesOaepSha1, E::RsaesOaepSha256]
        }
        (S::Rsa2048 | S::Rsa3072 | S::Rsa4096, U::SignVerify) => {
            lists.signing = vec![
                A::RsassaPkcs1V15Sha256,
                A::RsassaPkcs1V15Sha384,
                A::RsassaPkcs1V15Sha512,
                A::RsassaPssSha256,
                A::RsassaPssSha384,
                A::RsassaPssSha512,
            ]
        }
        (S::EccNistP256 | S::EccSecgP256K1, U::SignVerify) => lists.signing = vec![A::EcdsaSha256],
        (S::EccNistP384, U::SignVerify) => lists.signing = vec![A::EcdsaSha384],
        (S::EccNistP521, U::SignVerify) => lists.signing = vec![A::EcdsaSha512],
        (S::EccNistP256 | S::EccNistP384 | S::EccNistP521, U::KeyAgreement) => {
            lists.key_agreement = vec![KeyAgreementAlgorithmSpec::Ecdh]
        }
        (S::EccNistEdwards25519, U::SignVerify) => {
            lists.signing = vec![A::Ed25519Sha512, A::Ed25519PhSha512]
        }
        (S::Hmac224, U::GenerateVerifyMac) => lists.mac = vec![MacAlgorithmSpec::HmacSha224],
        (S::Hmac256, U::GenerateVerifyMac) => lists.mac = vec![MacAlgorithmSpec::HmacSha256],
        (S::Hmac384, U::GenerateVerifyMac) => lists.mac = vec![MacAlgorithmSpec::HmacSha384],
        (S::Hmac512, U::GenerateVerifyMac) => lists.mac = vec![MacAlgorithmSpec::HmacSha512],
        (S::MlDsa44 | S::MlDsa65 | S::MlDsa87, U::SignVerify) => {
            lists.signing = vec![A::MlDsaShake256]
        }
        (S::MlKem512 | S::MlKem768 | S::MlKem1024, U::EncapsulateDecapsulate) => {
            lists.encapsulation = vec![EncapsulationAlgorithmSpec::MlKem]
        }
        other => panic!("not a documented key spec and usage: {other:?}"),
    }
    lists
}

// ---------------------------------------------------------------------------------------------
// DER: SubjectPublicKeyInfo and PKCS #8, read just enough to check their algorithm

/// Splits one DER TLV off `input`: (tag, content, rest).
fn der_tlv(input: &[u8]) -> (u8, &[u8], &[u8]) {
    assert!(input.len() >= 2, "truncated DER: {input:02x?}");
    let tag = input[0];
    let (len, header) = match input[1] {
        n if n < 0x80 => (usize::from(n), 2),
        0x81 => (usize::from(input[2]), 3),
        0x82 => ((usize::from(input[2]) << 8) | usize::from(input[3]), 4),
        n => panic!("unexpected DER length byte {n:#04x}"),
    };
    assert!(
        input.len() >= header + len,
        "truncated DER TLV (tag {tag:#04x}, length {len}, {} bytes left)",
        input.len()
    );
    (tag, &input[header..header + len], &input[header + len..])
}

/// An AlgorithmIdentifier's OID (content bytes) and parameters (whole TLVs, empty if absent).
fn algorithm_identifier(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (tag, oid, params) = der_tlv(der);
    assert_eq!(tag, 0x06, "AlgorithmIdentifier does not start with an OID");
    (oid.to_vec(), params.to_vec())
}

struct Spki {
    oid: Vec<u8>,
    params: Vec<u8>,
    /// The content of the subjectPublicKey BIT STRING.
    key: Vec<u8>,
}

fn parse_spki(der: &[u8]) -> Spki {
    let (tag, body, rest) = der_tlv(der);
    assert!(
        tag == 0x30 && rest.is_empty(),
        "SubjectPublicKeyInfo is not exactly one SEQUENCE"
    );
    let (tag, alg, rest) = der_tlv(body);
    assert_eq!(tag, 0x30, "AlgorithmIdentifier is not a SEQUENCE");
    let (oid, params) = algorithm_identifier(alg);
    let (tag, bits, rest) = der_tlv(rest);
    assert!(
        tag == 0x03 && rest.is_empty(),
        "subjectPublicKey is not the final BIT STRING"
    );
    assert_eq!(bits.first(), Some(&0), "BIT STRING with unused bits");
    Spki {
        oid,
        params,
        key: bits[1..].to_vec(),
    }
}

/// The algorithm OID and parameters of a PKCS #8 PrivateKeyInfo (or OneAsymmetricKey).
fn parse_pkcs8(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (tag, body, rest) = der_tlv(der);
    assert!(
        tag == 0x30 && rest.is_empty(),
        "PKCS #8 is not exactly one SEQUENCE"
    );
    let (tag, version, rest) = der_tlv(body);
    assert!(
        tag == 0x02 && (version == [0] || version == [1]),
        "PKCS #8 version {version:?}"
    );
    let (tag, alg, rest) = der_tlv(rest);
    assert_eq!(tag, 0x30, "PKCS #8 AlgorithmIdentifier is not a SEQUENCE");
    let (tag, _, _) = der_tlv(rest);
    assert_eq!(tag, 0x04, "PKCS #8 privateKey is not an OCTET STRING");
    algorithm_identifier(alg)
}

/// What the public key (and PKCS #8) of a key spec holds: the algorithm OID, the
/// AlgorithmIdentifier parameters, the raw key length (None for RSA, whose key is an
/// RSAPublicKey structure).
struct Shape {
    oid: &'static [u8],
    params: &'static [u8],
    raw_len: Option<usize>,
}

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

fn shape(spec: &str) -> Shape {
    let (oid, params, raw_len): (&'static [u8], &'static [u8], Option<usize>) = match spec {
        "RSA_2048" | "RSA_3072" | "RSA_4096" => (OID_RSA, &[0x05, 0x00], None),
        "ECC_NIST_P256" => (
            OID_EC_PUBLIC_KEY,
            &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
            Some(65),
        ),
        "ECC_NIST_P384" => (
            OID_EC_PUBLIC_KEY,
            &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22],
            Some(97),
        ),
        "ECC_NIST_P521" => (
            OID_EC_PUBLIC_KEY,
            &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23],
            Some(133),
        ),
        "ECC_SECG_P256K1" => (
            OID_EC_PUBLIC_KEY,
            &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a],
            Some(65),
        ),
        "ECC_NIST_EDWARDS25519" => (OID_ED25519, &[], Some(32)),
        "ML_DSA_44" => (
            &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x11],
            &[],
            Some(1312),
        ),
        "ML_DSA_65" => (
            &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x12],
            &[],
            Some(1952),
        ),
        "ML_DSA_87" => (
            &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x13],
            &[],
            Some(2592),
        ),
        "ML_KEM_512" => (
            &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x04, 0x01],
            &[],
            Some(800),
        ),
        "ML_KEM_768" => (
            &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x04, 0x02],
            &[],
            Some(1184),
        ),
        "ML_KEM_1024" => (
            &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x04, 0x03],
            &[],
            Some(1568),
        ),
        other => panic!("no public key for key spec {other}"),
    };
    Shape {
        oid,
        params,
        raw_len,
    }
}

fn kem_algorithm(spec: &str) -> &'static kem::Algorithm {
    match spec {
        "ML_KEM_512" => &kem::ML_KEM_512,
        "ML_KEM_768" => &kem::ML_KEM_768,
        "ML_KEM_1024" => &kem::ML_KEM_1024,
        other => panic!("{other} is not an ML-KEM spec"),
    }
}

/// Checks that `der` is the DER SubjectPublicKeyInfo of a `spec` key (algorithm, parameters,
/// key length) and that aws-lc-rs takes it; returns the raw public key (the BIT STRING content).
fn check_spki(spec: &str, der: &[u8]) -> Vec<u8> {
    let shape = shape(spec);
    let spki = parse_spki(der);
    assert_eq!(
        spki.oid, shape.oid,
        "{spec}: SubjectPublicKeyInfo algorithm"
    );
    assert_eq!(
        spki.params, shape.params,
        "{spec}: SubjectPublicKeyInfo algorithm parameters"
    );
    if let Some(len) = shape.raw_len {
        assert_eq!(spki.key.len(), len, "{spec}: raw public key length");
    }
    let parsed = |alg: &'static dyn VerificationAlgorithm| {
        signature::ParsedPublicKey::new(alg, der)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let accepted = match spec {
        "RSA_2048" | "RSA_3072" | "RSA_4096" => rsa::PublicEncryptingKey::from_der(der)
            .map(|key| assert_eq!(key.key_size_bits().to_string(), spec[4..]))
            .map_err(|e| e.to_string()),
        "ECC_NIST_P256" => parsed(&signature::ECDSA_P256_SHA256_ASN1),
        "ECC_NIST_P384" => parsed(&signature::ECDSA_P384_SHA384_ASN1),
        "ECC_NIST_P521" => parsed(&signature::ECDSA_P521_SHA512_ASN1),
        "ECC_SECG_P256K1" => parsed(&signature::ECDSA_P256K1_SHA256_ASN1),
        "ECC_NIST_EDWARDS25519" => parsed(&signature::ED25519),
        "ML_DSA_44" => parsed(&signature::ML_DSA_44),
        "ML_DSA_65" => parsed(&signature::ML_DSA_65),
        "ML_DSA_87" => parsed(&signature::ML_DSA_87),
        "ML_KEM_512" | "ML_KEM_768" | "ML_KEM_1024" => {
            kem::EncapsulationKey::new(kem_algorithm(spec), &spki.key)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        other => panic!("no public key for key spec {other}"),
    };
    if let Err(e) = accepted {
        panic!("aws-lc-rs refuses the {spec} public key: {e}");
    }
    if spec.starts_with("ECC_") && spec != "ECC_NIST_EDWARDS25519" {
        assert_eq!(spki.key[0], 0x04, "{spec}: an uncompressed point");
    }
    spki.key
}

/// Checks a data key pair's private key: PKCS #8 of the right algorithm, that aws-lc-rs reads
/// (ML-KEM aside), whose public key is `public` and whose signatures `public` verifies.
fn check_pkcs8(spec: &str, pkcs8: &[u8], public: &[u8]) {
    let shape = shape(spec);
    let (oid, params) = parse_pkcs8(pkcs8);
    assert_eq!(oid, shape.oid, "{spec}: PKCS #8 algorithm");
    assert_eq!(params, shape.params, "{spec}: PKCS #8 algorithm parameters");
    let rng = rand::SystemRandom::new();
    let msg = b"signed with a data key pair";
    match spec {
        "RSA_2048" | "RSA_3072" | "RSA_4096" => {
            let pair = signature::RsaKeyPair::from_pkcs8(pkcs8)
                .unwrap_or_else(|e| panic!("{spec} PKCS #8: {e}"));
            assert_eq!(
                (pair.public_modulus_len() * 8).to_string(),
                spec[4..],
                "{spec}: modulus"
            );
            assert_eq!(pair.public_key().as_der().unwrap().as_ref(), public);
            let mut sig = vec![0; pair.public_modulus_len()];
            pair.sign(&signature::RSA_PSS_SHA256, &rng, msg, &mut sig)
                .unwrap();
            signature::UnparsedPublicKey::new(&signature::RSA_PSS_2048_8192_SHA256, public)
                .verify(msg, &sig)
                .expect("the data key pair's public key verifies its private key's signature");
        }
        "ECC_NIST_P256" | "ECC_NIST_P384" | "ECC_NIST_P521" | "ECC_SECG_P256K1" => {
            let (signing, verification) = match spec {
                "ECC_NIST_P256" => (
                    &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                    &signature::ECDSA_P256_SHA256_ASN1,
                ),
                "ECC_NIST_P384" => (
                    &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                    &signature::ECDSA_P384_SHA384_ASN1,
                ),
                "ECC_NIST_P521" => (
                    &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
                    &signature::ECDSA_P521_SHA512_ASN1,
                ),
                _ => (
                    &signature::ECDSA_P256K1_SHA256_ASN1_SIGNING,
                    &signature::ECDSA_P256K1_SHA256_ASN1,
                ),
            };
            let pair = signature::EcdsaKeyPair::from_pkcs8(signing, pkcs8)
                .unwrap_or_else(|e| panic!("{spec} PKCS #8: {e}"));
            assert_eq!(pair.public_key().as_der().unwrap().as_ref(), public);
            let sig = pair.sign(&rng, msg).unwrap();
            signature::UnparsedPublicKey::new(verification, public)
                .verify(msg, sig.as_ref())
                .expect("the data key pair's public key verifies its private key's signature");
        }
        "ECC_NIST_EDWARDS25519" => {
            let pair = signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
                .unwrap_or_else(|e| panic!("{spec} PKCS #8: {e}"));
            assert_eq!(pair.public_key().as_der().unwrap().as_ref(), public);
            let sig = pair.sign(msg);
            signature::UnparsedPublicKey::new(&signature::ED25519, public)
                .verify(msg, sig.as_ref())
                .expect("the data key pair's public key verifies its private key's signature");
        }
        // aws-lc-rs reads no ML-KEM PKCS #8: the algorithm check above and the Decrypt round
        // trip are what is checked.
        "ML_KEM_512" | "ML_KEM_768" | "ML_KEM_1024" => {}
        other => panic!("{other} is not a data key pair spec"),
    }
}

// ---------------------------------------------------------------------------------------------
// SHAKE256 (FIPS 202), for ML-DSA's external μ: neither aws-lc-rs nor the workspace exposes it.

const KECCAK_RC: [u64; 24] = [
    0x0000_0000_0000_0001,
    0x0000_0000_0000_8082,
    0x8000_0000_0000_808a,
    0x8000_0000_8000_8000,
    0x0000_0000_0000_808b,
    0x0000_0000_8000_0001,
    0x8000_0000_8000_8081,
    0x8000_0000_0000_8009,
    0x0000_0000_0000_008a,
    0x0000_0000_0000_0088,
    0x0000_0000_8000_8009,
    0x0000_0000_8000_000a,
    0x0000_0000_8000_808b,
    0x8000_0000_0000_008b,
    0x8000_0000_0000_8089,
    0x8000_0000_0000_8003,
    0x8000_0000_0000_8002,
    0x8000_0000_0000_0080,
    0x0000_0000_0000_800a,
    0x8000_0000_8000_000a,
    0x8000_0000_8000_8081,
    0x8000_0000_0000_8080,
    0x0000_0000_8000_0001,
    0x8000_0000_8000_8008,
];
const KECCAK_ROTC: [u32; 24] = [
    1, 3, 6, 10, 15, 21, 28, 36, 45, 55, 2, 14, 27, 41, 56, 8, 25, 43, 62, 18, 39, 61, 20, 44,
];
const KECCAK_PILN: [usize; 24] = [
    10, 7, 11, 17, 18, 3, 5, 16, 8, 21, 24, 4, 15, 23, 19, 13, 12, 2, 20, 14, 22, 9, 6, 1,
];

fn keccak_f1600(st: &mut [u64; 25]) {
    for rc in KECCAK_RC {
        let mut bc = [0u64; 5];
        for (i, c) in bc.iter_mut().enumerate() {
            *c = st[i] ^ st[i + 5] ^ st[i + 10] ^ st[i + 15] ^ st[i + 20];
        }
        for i in 0..5 {
            let t = bc[(i + 4) % 5] ^ bc[(i + 1) % 5].rotate_left(1);
            for j in (0..25).step_by(5) {
                st[j + i] ^= t;
            }
        }
        let mut t = st[1];
        for (&j, &rot) in KECCAK_PILN.iter().zip(KECCAK_ROTC.iter()) {
            let next = st[j];
            st[j] = t.rotate_left(rot);
            t = next;
        }
        for j in (0..25).step_by(5) {
            let row = [st[j], st[j + 1], st[j + 2], st[j + 3], st[j + 4]];
            for i in 0..5 {
                st[j + i] = row[i] ^ (!row[(i + 1) % 5] & row[(i + 2) % 5]);
            }
        }
        st[0] ^= rc;
    }
}

fn shake256(data: &[u8], out_len: usize) -> Vec<u8> {
    const RATE: usize = 136;
    let mut st = [0u64; 25];
    let absorb = |st: &mut [u64; 25], block: &[u8]| {
        for (lane, word) in st.iter_mut().zip(block.chunks_exact(8)) {
            *lane ^= u64::from_le_bytes(word.try_into().unwrap());
        }
        keccak_f1600(st);
    };
    let mut blocks = data.chunks_exact(RATE);
    for block in &mut blocks {
        absorb(&mut st, block);
    }
    let tail = blocks.remainder();
    let mut last = [0u8; RATE];
    last[..tail.len()].copy_from_slice(tail);
    last[tail.len()] ^= 0x1f;
    last[RATE - 1] ^= 0x80;
    absorb(&mut st, &last);
    let mut out = Vec::with_capacity(out_len + RATE);
    loop {
        for lane in &st[..RATE / 8] {
            out.extend_from_slice(&lane.to_le_bytes());
        }
        if out.len() >= out_len {
            out.truncate(out_len);
            return out;
        }
        keccak_f1600(&mut st);
    }
}

/// ML-DSA's μ of `message` under the raw public key `pk` with an empty context (FIPS 204,
/// algorithms 2 and 7): SHAKE256(SHAKE256(pk, 64) || 0x00 || 0x00 || message, 64).
fn ml_dsa_mu(pk: &[u8], message: &[u8]) -> Vec<u8> {
    let mut input = shake256(pk, 64);
    input.extend_from_slice(&[0, 0]);
    input.extend_from_slice(message);
    shake256(&input, 64)
}

#[test]
fn shake256_matches_fips_202() {
    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
    assert_eq!(
        hex(&shake256(b"", 64)),
        "46b9dd2b0ba88d13233b3feb743eeb243fcd52ea62b81b82b50c27646ed5762f\
         d75dc4ddd8c0f200cb05019d67b592f6fc821c49479ab48640292eacb3b7c4be"
    );
    // Several blocks in and out.
    let long = shake256(&[0xa3; 200], 300);
    assert_eq!(
        hex(&long[..32]),
        "cd8a920ed141aa0407a22d59288652e9d9f1a7ee0c1e7c1ca699424da84a904d"
    );
}

/// Ed25519ph (RFC 8032 HashEdDSA, empty context) verification by AWS-LC, which hashes `message`
/// with SHA-512 itself. aws-lc-rs does not expose it.
fn ed25519ph_verifies(message: &[u8], sig: &[u8], raw_public_key: &[u8]) -> bool {
    assert_eq!((sig.len(), raw_public_key.len()), (64, 32));
    let no_context: &[u8] = &[];
    // SAFETY: AWS-LC reads `message.len()` bytes of `message`, 64 of `sig`, 32 of
    // `raw_public_key` and none of the empty context: all are live slices at least that long.
    unsafe {
        aws_lc_sys::ED25519ph_verify(
            message.as_ptr(),
            message.len(),
            sig.as_ptr(),
            raw_public_key.as_ptr(),
            no_context.as_ptr(),
            0,
        ) == 1
    }
}

// ---------------------------------------------------------------------------------------------
// requests

/// Checks the metadata of a key just created with `spec` and `usage` against the table.
#[allow(deprecated)]
#[track_caller]
fn check_metadata(md: &KeyMetadata, spec: &KeySpec, usage: &KeyUsageType) {
    let what = format!("{spec} / {usage}");
    let id = md.key_id();
    assert!(is_uuid_v4(id), "{what}: key id {id:?}");
    assert_eq!(md.arn(), Some(arn(id).as_str()), "{what}");
    assert_eq!(md.aws_account_id(), Some(ACCOUNT), "{what}");
    assert_eq!(md.key_spec(), Some(spec), "{what}");
    assert_eq!(
        md.customer_master_key_spec().map(|s| s.as_str()),
        Some(spec.as_str()),
        "{what}: CustomerMasterKeySpec equals KeySpec"
    );
    assert_eq!(md.key_usage(), Some(usage), "{what}");
    assert_eq!(
        Algorithms::of_metadata(md),
        documented_algorithms(spec, usage),
        "{what}: algorithm lists"
    );
    assert!(md.enabled(), "{what}");
    assert_eq!(md.key_state(), Some(&KeyState::Enabled), "{what}");
    assert_eq!(md.origin(), Some(&OriginType::AwsKms), "{what}");
    assert_eq!(md.key_manager(), Some(&KeyManagerType::Customer), "{what}");
    assert_eq!(md.multi_region(), Some(false), "{what}");
    if *spec == KeySpec::SymmetricDefault {
        assert!(
            md.current_key_material_id().is_some_and(is_hex64),
            "{what}: CurrentKeyMaterialId {:?}",
            md.current_key_material_id()
        );
    } else {
        assert_eq!(
            md.current_key_material_id(),
            None,
            "{what}: CurrentKeyMaterialId is for symmetric encryption keys only"
        );
    }
}

async fn describe(kms: &Client, key_id: &str) -> KeyMetadata {
    kms.describe_key()
        .key_id(key_id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeKey {key_id}: {}", DisplayErrorContext(&e)))
        .key_metadata
        .expect("KeyMetadata")
}

/// CreateKey with `spec` and `usage`; checks the metadata CreateKey and DescribeKey return.
async fn new_key(kms: &Client, spec: KeySpec, usage: KeyUsageType) -> String {
    let md = kms
        .create_key()
        .key_spec(spec.clone())
        .key_usage(usage.clone())
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateKey {spec} {usage}: {}", DisplayErrorContext(&e)))
        .key_metadata
        .expect("KeyMetadata");
    check_metadata(&md, &spec, &usage);
    let id = md.key_id().to_owned();
    let described = describe(kms, &id).await;
    check_metadata(&described, &spec, &usage);
    assert_eq!(described, md, "DescribeKey shows what CreateKey returned");
    id
}

/// GetPublicKey of a `spec` / `usage` key: checks the response and the SubjectPublicKeyInfo;
/// returns the DER.
#[allow(deprecated)]
async fn public_key(kms: &Client, key_id: &str, spec: &KeySpec, usage: &KeyUsageType) -> Vec<u8> {
    let out = kms
        .get_public_key()
        .key_id(key_id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetPublicKey {spec}: {}", DisplayErrorContext(&e)));
    assert_eq!(out.key_id(), Some(arn(key_id).as_str()), "{spec}");
    assert_eq!(out.key_spec(), Some(spec), "{spec}");
    if let Some(cmks) = out.customer_master_key_spec() {
        assert_eq!(cmks.as_str(), spec.as_str(), "CustomerMasterKeySpec");
    }
    assert_eq!(out.key_usage(), Some(usage), "{spec}");
    assert_eq!(
        Algorithms::of_public_key(&out),
        documented_algorithms(spec, usage),
        "{spec} / {usage}: GetPublicKey algorithm lists"
    );
    let der = out.public_key().expect("PublicKey").as_ref().to_vec();
    check_spki(spec.as_str(), &der);
    der
}

async fn sign(
    kms: &Client,
    key_id: &str,
    msg: &[u8],
    message_type: MessageType,
    alg: &SigningAlgorithmSpec,
) -> Vec<u8> {
    let out = kms
        .sign()
        .key_id(key_id)
        .message(Blob::new(msg))
        .message_type(message_type.clone())
        .signing_algorithm(alg.clone())
        .send()
        .await
        .unwrap_or_else(|e| panic!("Sign {alg} {message_type}: {}", DisplayErrorContext(&e)));
    assert_eq!(out.key_id(), Some(arn(key_id).as_str()));
    assert_eq!(out.signing_algorithm(), Some(alg));
    out.signature.expect("Signature").into_inner()
}

fn verify_request(
    kms: &Client,
    key_id: &str,
    msg: &[u8],
    message_type: MessageType,
    alg: &SigningAlgorithmSpec,
    sig: &[u8],
) -> VerifyFluentBuilder {
    kms.verify()
        .key_id(key_id)
        .message(Blob::new(msg))
        .message_type(message_type)
        .signing_algorithm(alg.clone())
        .signature(Blob::new(sig))
}

/// trent's Verify accepts `sig`.
async fn assert_verifies(
    kms: &Client,
    key_id: &str,
    msg: &[u8],
    message_type: MessageType,
    alg: &SigningAlgorithmSpec,
    sig: &[u8],
) {
    let out = verify_request(kms, key_id, msg, message_type.clone(), alg, sig)
        .send()
        .await
        .unwrap_or_else(|e| panic!("Verify {alg} {message_type}: {}", DisplayErrorContext(&e)));
    assert!(out.signature_valid());
    assert_eq!(out.key_id(), Some(arn(key_id).as_str()));
    assert_eq!(out.signing_algorithm(), Some(alg));
}

/// trent's Verify refuses `sig` with KMSInvalidSignatureException and no message.
async fn assert_not_verified(
    kms: &Client,
    key_id: &str,
    msg: &[u8],
    message_type: MessageType,
    alg: &SigningAlgorithmSpec,
    sig: &[u8],
) {
    assert_error(
        verify_request(kms, key_id, msg, message_type, alg, sig)
            .send()
            .await,
        INVALID_SIGNATURE,
        "",
    );
}

/// Sign of `msg` and Verify of it with any signature both fail with `code` and `message`.
async fn assert_sign_verify_refused(
    kms: &Client,
    key_id: &str,
    msg: &[u8],
    message_type: MessageType,
    alg: &SigningAlgorithmSpec,
    code: &str,
    message: &str,
) {
    assert_error(
        kms.sign()
            .key_id(key_id)
            .message(Blob::new(msg))
            .message_type(message_type.clone())
            .signing_algorithm(alg.clone())
            .send()
            .await,
        code,
        message,
    );
    assert_error(
        verify_request(kms, key_id, msg, message_type, alg, &[0x30; 64])
            .send()
            .await,
        code,
        message,
    );
}

/// The hash of an RSA, ECDSA or Ed25519ph signing algorithm.
fn hash_of(alg: &SigningAlgorithmSpec) -> &'static digest::Algorithm {
    use SigningAlgorithmSpec as A;
    match alg {
        A::RsassaPkcs1V15Sha256 | A::RsassaPssSha256 | A::EcdsaSha256 => &digest::SHA256,
        A::RsassaPkcs1V15Sha384 | A::RsassaPssSha384 | A::EcdsaSha384 => &digest::SHA384,
        A::RsassaPkcs1V15Sha512 | A::RsassaPssSha512 | A::EcdsaSha512 | A::Ed25519PhSha512 => {
            &digest::SHA512
        }
        other => panic!("{other} signs no digest"),
    }
}

/// aws-lc-rs's verification of `alg` with a `spec` key (Ed25519ph has none).
fn verification_algorithm(
    spec: &KeySpec,
    alg: &SigningAlgorithmSpec,
) -> &'static dyn VerificationAlgorithm {
    use SigningAlgorithmSpec as A;
    match (spec, alg) {
        (_, A::RsassaPkcs1V15Sha256) => &signature::RSA_PKCS1_2048_8192_SHA256,
        (_, A::RsassaPkcs1V15Sha384) => &signature::RSA_PKCS1_2048_8192_SHA384,
        (_, A::RsassaPkcs1V15Sha512) => &signature::RSA_PKCS1_2048_8192_SHA512,
        (_, A::RsassaPssSha256) => &signature::RSA_PSS_2048_8192_SHA256,
        (_, A::RsassaPssSha384) => &signature::RSA_PSS_2048_8192_SHA384,
        (_, A::RsassaPssSha512) => &signature::RSA_PSS_2048_8192_SHA512,
        (KeySpec::EccNistP256, A::EcdsaSha256) => &signature::ECDSA_P256_SHA256_ASN1,
        (KeySpec::EccSecgP256K1, A::EcdsaSha256) => &signature::ECDSA_P256K1_SHA256_ASN1,
        (KeySpec::EccNistP384, A::EcdsaSha384) => &signature::ECDSA_P384_SHA384_ASN1,
        (KeySpec::EccNistP521, A::EcdsaSha512) => &signature::ECDSA_P521_SHA512_ASN1,
        (_, A::Ed25519Sha512) => &signature::ED25519,
        (KeySpec::MlDsa44, A::MlDsaShake256) => &signature::ML_DSA_44,
        (KeySpec::MlDsa65, A::MlDsaShake256) => &signature::ML_DSA_65,
        (KeySpec::MlDsa87, A::MlDsaShake256) => &signature::ML_DSA_87,
        other => panic!("no offline verification of {other:?}"),
    }
}

/// aws-lc-rs verifies `sig` over `msg` with the SubjectPublicKeyInfo `spki`, and not over
/// another message.
#[track_caller]
fn assert_verifies_offline(
    spec: &KeySpec,
    alg: &SigningAlgorithmSpec,
    spki: &[u8],
    msg: &[u8],
    sig: &[u8],
) {
    let key = signature::UnparsedPublicKey::new(verification_algorithm(spec, alg), spki);
    if key.verify(msg, sig).is_err() {
        panic!("aws-lc-rs does not verify trent's {alg} signature with a {spec} key");
    }
    assert!(key.verify(b"another message", sig).is_err());
}

/// The signature's size and encoding for its key spec.
#[track_caller]
fn check_signature_shape(spec: &KeySpec, sig: &[u8]) {
    let len = sig.len();
    match spec {
        KeySpec::Rsa2048 => assert_eq!(len, 256),
        KeySpec::Rsa3072 => assert_eq!(len, 384),
        KeySpec::Rsa4096 => assert_eq!(len, 512),
        KeySpec::EccNistEdwards25519 => assert_eq!(len, 64),
        KeySpec::MlDsa44 => assert_eq!(len, 2420),
        KeySpec::MlDsa65 => assert_eq!(len, 3309),
        KeySpec::MlDsa87 => assert_eq!(len, 4627),
        KeySpec::EccNistP256
        | KeySpec::EccSecgP256K1
        | KeySpec::EccNistP384
        | KeySpec::EccNistP521 => {
            // ASN.1 DER: SEQUENCE { INTEGER r, INTEGER s }
            assert_eq!(sig[0], 0x30, "ECDSA signatures are DER");
            let max = match spec {
                KeySpec::EccNistP384 => 104,
                KeySpec::EccNistP521 => 139,
                _ => 72,
            };
            assert!(len <= max, "{spec} signature of {len} bytes");
        }
        other => panic!("{other} does not sign"),
    }
}

/// Every signing algorithm of the `spec` key `key_id` with every message type it accepts: Sign,
/// Verify in trent, offline verification of each signature against the SubjectPublicKeyInfo
/// `spki`, and the refusals (another message, a damaged signature, a wrong message type or
/// digest length, `unlisted`, an algorithm the key does not list).
async fn exercise_signing(
    kms: &Client,
    key_id: &str,
    spec: &KeySpec,
    spki: &[u8],
    unlisted: SigningAlgorithmSpec,
) {
    use MessageType::{Digest, ExternalMu, Raw};
    let raw_key = parse_spki(spki).key;
    let algorithms = documented_algorithms(spec, &KeyUsageType::SignVerify).signing;
    for (n, alg) in algorithms.iter().enumerate() {
        let n = n as u64;
        let msg = test_bytes(100 + n, 200 + n as usize);
        let other = test_bytes(900 + n, 200 + n as usize);
        let name = alg.as_str();
        match alg {
            SigningAlgorithmSpec::Ed25519Sha512 => {
                // Pure Ed25519 over RAW messages only.
                let sig = sign(kms, key_id, &msg, Raw, alg).await;
                check_signature_shape(spec, &sig);
                assert_verifies(kms, key_id, &msg, Raw, alg, &sig).await;
                assert_verifies_offline(spec, alg, spki, &msg, &sig);
                assert_not_verified(kms, key_id, &other, Raw, alg, &sig).await;
                assert_not_verified(kms, key_id, &msg, Raw, alg, &damaged(&sig)).await;
                let digest = digest::digest(&digest::SHA512, &msg);
                assert_sign_verify_refused(
                    kms,
                    key_id,
                    digest.as_ref(),
                    Digest,
                    alg,
                    VALIDATION,
                    &message_type_msg("DIGEST", name),
                )
                .await;
                assert_sign_verify_refused(
                    kms,
                    key_id,
                    digest.as_ref(),
                    ExternalMu,
                    alg,
                    VALIDATION,
                    &message_type_msg("EXTERNAL_MU", name),
                )
                .await;
            }
            SigningAlgorithmSpec::Ed25519PhSha512 => {
                // HashEdDSA over the 64-byte digest given: the message is hashed twice.
                let digest = digest::digest(&digest::SHA512, &msg).as_ref().to_vec();
                let sig = sign(kms, key_id, &digest, Digest, alg).await;
                check_signature_shape(spec, &sig);
                assert_verifies(kms, key_id, &digest, Digest, alg, &sig).await;
                assert!(
                    ed25519ph_verifies(&digest, &sig, &raw_key),
                    "AWS-LC's Ed25519ph does not verify the signature over the digest as message"
                );
                assert!(
                    !ed25519ph_verifies(&msg, &sig, &raw_key),
                    "the ED25519_PH_SHA_512 signature is Ed25519ph of the original message: hashed once, not twice"
                );
                assert!(
                    signature::UnparsedPublicKey::new(&signature::ED25519, spki)
                        .verify(&digest, &sig)
                        .is_err(),
                    "ED25519_PH_SHA_512 made a pure Ed25519 signature"
                );
                let other_digest = digest::digest(&digest::SHA512, &other);
                assert_not_verified(kms, key_id, other_digest.as_ref(), Digest, alg, &sig).await;
                assert_not_verified(kms, key_id, &digest, Digest, alg, &damaged(&sig)).await;
                assert_sign_verify_refused(
                    kms,
                    key_id,
                    &msg,
                    Raw,
                    alg,
                    VALIDATION,
                    &message_type_msg("RAW", name),
                )
                .await;
                assert_sign_verify_refused(
                    kms,
                    key_id,
                    &digest,
                    ExternalMu,
                    alg,
                    VALIDATION,
                    &message_type_msg("EXTERNAL_MU", name),
                )
                .await;
                for bad in [&digest[..32], [digest.as_slice(), &[0]].concat().as_slice()] {
                    assert_sign_verify_refused(
                        kms,
                        key_id,
                        bad,
                        Digest,
                        alg,
                        VALIDATION,
                        &digest_length_msg(name),
                    )
                    .await;
                }
            }
            SigningAlgorithmSpec::MlDsaShake256 => {
                // Pure ML-DSA (empty context) over RAW messages, and over μ given as EXTERNAL_MU.
                let sig = sign(kms, key_id, &msg, Raw, alg).await;
                check_signature_shape(spec, &sig);
                assert_verifies(kms, key_id, &msg, Raw, alg, &sig).await;
                assert_verifies_offline(spec, alg, spki, &msg, &sig);
                let mu = ml_dsa_mu(&raw_key, &msg);
                assert_verifies(kms, key_id, &mu, ExternalMu, alg, &sig).await;
                let sig_mu = sign(kms, key_id, &mu, ExternalMu, alg).await;
                check_signature_shape(spec, &sig_mu);
                assert_verifies(kms, key_id, &mu, ExternalMu, alg, &sig_mu).await;
                assert_verifies(kms, key_id, &msg, Raw, alg, &sig_mu).await;
                assert_verifies_offline(spec, alg, spki, &msg, &sig_mu);
                assert_not_verified(kms, key_id, &other, Raw, alg, &sig).await;
                let other_mu = ml_dsa_mu(&raw_key, &other);
                assert_not_verified(kms, key_id, &other_mu, ExternalMu, alg, &sig_mu).await;
                assert_not_verified(kms, key_id, &msg, Raw, alg, &damaged(&sig)).await;
                assert_sign_verify_refused(
                    kms,
                    key_id,
                    &mu,
                    Digest,
                    alg,
                    VALIDATION,
                    &message_type_msg("DIGEST", name),
                )
                .await;
                for bad in [&mu[..32], [mu.as_slice(), &[0]].concat().as_slice()] {
                    assert_sign_verify_refused(
                        kms,
                        key_id,
                        bad,
                        ExternalMu,
                        alg,
                        VALIDATION,
                        &digest_length_msg(name),
                    )
                    .await;
                }
            }
            _ => {
                // RSA and ECDSA: RAW, or DIGEST with the hash of the message.
                let hash = hash_of(alg);
                let digest = digest::digest(hash, &msg).as_ref().to_vec();
                let other_digest = digest::digest(hash, &other).as_ref().to_vec();
                let sig = sign(kms, key_id, &msg, Raw, alg).await;
                check_signature_shape(spec, &sig);
                assert_verifies(kms, key_id, &msg, Raw, alg, &sig).await;
                assert_verifies(kms, key_id, &digest, Digest, alg, &sig).await;
                assert_verifies_offline(spec, alg, spki, &msg, &sig);
                let sig_digest = sign(kms, key_id, &digest, Digest, alg).await;
                check_signature_shape(spec, &sig_digest);
                assert_verifies(kms, key_id, &digest, Digest, alg, &sig_digest).await;
                assert_verifies(kms, key_id, &msg, Raw, alg, &sig_digest).await;
                assert_verifies_offline(spec, alg, spki, &msg, &sig_digest);
                if name.starts_with("RSASSA_PKCS1") {
                    assert_eq!(sig, sig_digest, "PKCS #1 v1.5 signatures are deterministic");
                }
                assert_not_verified(kms, key_id, &other, Raw, alg, &sig).await;
                assert_not_verified(kms, key_id, &other_digest, Digest, alg, &sig).await;
                // The digest sent as a RAW message is another message.
                assert_not_verified(kms, key_id, &digest, Raw, alg, &sig).await;
                assert_not_verified(kms, key_id, &msg, Raw, alg, &damaged(&sig)).await;
                assert_not_verified(kms, key_id, &msg, Raw, alg, &sig[..sig.len() - 1]).await;
                for bad in [&digest[1..], [digest.as_slice(), &[0]].concat().as_slice()] {
                    assert_sign_verify_refused(
                        kms,
                        key_id,
                        bad,
                        Digest,
                        alg,
                        VALIDATION,
                        &digest_length_msg(name),
                    )
                    .await;
                }
                assert_sign_verify_refused(
                    kms,
                    key_id,
                    &[7; 64],
                    ExternalMu,
                    alg,
                    VALIDATION,
                    &message_type_msg("EXTERNAL_MU", name),
                )
                .await;
            }
        }
    }

    // MessageType defaults to RAW.
    let first = &algorithms[0];
    let out = kms
        .sign()
        .key_id(key_id)
        .message(Blob::new("no message type"))
        .signing_algorithm(first.clone())
        .send()
        .await
        .expect("Sign without MessageType");
    let sig = out.signature.unwrap().into_inner();
    assert_verifies(kms, key_id, b"no message type", Raw, first, &sig).await;
    let out = kms
        .verify()
        .key_id(key_id)
        .message(Blob::new("no message type"))
        .signing_algorithm(first.clone())
        .signature(Blob::new(sig))
        .send()
        .await
        .expect("Verify without MessageType");
    assert!(out.signature_valid());

    // An algorithm the key does not list.
    assert_sign_verify_refused(
        kms,
        key_id,
        b"unlisted",
        Raw,
        &unlisted,
        INVALID_KEY_USAGE,
        &algorithm_msg(unlisted.as_str(), spec.as_str()),
    )
    .await;
}

async fn rsa_encrypt(
    kms: &Client,
    key_id: &str,
    alg: &EncryptionAlgorithmSpec,
    plaintext: &[u8],
) -> Vec<u8> {
    let out = kms
        .encrypt()
        .key_id(key_id)
        .encryption_algorithm(alg.clone())
        .plaintext(Blob::new(plaintext))
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "Encrypt {alg} of {} bytes: {}",
                plaintext.len(),
                DisplayErrorContext(&e)
            )
        });
    assert_eq!(out.key_id(), Some(arn(key_id).as_str()));
    assert_eq!(out.encryption_algorithm(), Some(alg));
    out.ciphertext_blob.expect("CiphertextBlob").into_inner()
}

async fn rsa_decrypt(
    kms: &Client,
    key_id: &str,
    alg: &EncryptionAlgorithmSpec,
    ciphertext: &[u8],
) -> Vec<u8> {
    let out = kms
        .decrypt()
        .key_id(key_id)
        .encryption_algorithm(alg.clone())
        .ciphertext_blob(Blob::new(ciphertext))
        .send()
        .await
        .unwrap_or_else(|e| panic!("Decrypt {alg}: {}", DisplayErrorContext(&e)));
    assert_eq!(out.key_id(), Some(arn(key_id).as_str()));
    assert_eq!(out.encryption_algorithm(), Some(alg));
    assert_eq!(out.key_material_id(), None, "no KeyMaterialId for RSA");
    out.plaintext.expect("Plaintext").into_inner()
}

async fn generate_mac(kms: &Client, key_id: &str, msg: &[u8], alg: &MacAlgorithmSpec) -> Vec<u8> {
    let out = kms
        .generate_mac()
        .key_id(key_id)
        .message(Blob::new(msg))
        .mac_algorithm(alg.clone())
        .send()
        .await
        .unwrap_or_else(|e| panic!("GenerateMac {alg}: {}", DisplayErrorContext(&e)));
    assert_eq!(out.key_id(), Some(arn(key_id).as_str()));
    assert_eq!(out.mac_algorithm(), Some(alg));
    out.mac.expect("Mac").into_inner()
}

async fn assert_mac_valid(
    kms: &Client,
    key_id: &str,
    msg: &[u8],
    alg: &MacAlgorithmSpec,
    mac: &[u8],
) {
    let out = kms
        .verify_mac()
        .key_id(key_id)
        .message(Blob::new(msg))
        .mac_algorithm(alg.clone())
        .mac(Blob::new(mac))
        .send()
        .await
        .unwrap_or_else(|e| panic!("VerifyMac {alg}: {}", DisplayErrorContext(&e)));
    assert!(out.mac_valid());
    assert_eq!(out.key_id(), Some(arn(key_id).as_str()));
    assert_eq!(out.mac_algorithm(), Some(alg));
}

async fn assert_mac_invalid(
    kms: &Client,
    key_id: &str,
    msg: &[u8],
    alg: &MacAlgorithmSpec,
    mac: &[u8],
) {
    assert_error(
        kms.verify_mac()
            .key_id(key_id)
            .message(Blob::new(msg))
            .mac_algorithm(alg.clone())
            .mac(Blob::new(mac))
            .send()
            .await,
        INVALID_MAC,
        "",
    );
}

async fn derive(kms: &Client, key_id: &str, peer_spki: &[u8]) -> Vec<u8> {
    let out = kms
        .derive_shared_secret()
        .key_id(key_id)
        .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
        .public_key(Blob::new(peer_spki))
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeriveSharedSecret: {}", DisplayErrorContext(&e)));
    assert_eq!(out.key_id(), Some(arn(key_id).as_str()));
    assert_eq!(
        out.key_agreement_algorithm(),
        Some(&KeyAgreementAlgorithmSpec::Ecdh)
    );
    assert_eq!(out.key_origin(), Some(&OriginType::AwsKms));
    assert!(out.ciphertext_for_recipient().is_none());
    out.shared_secret.expect("SharedSecret").into_inner()
}

/// (ciphertext, shared secret)
async fn encapsulate(kms: &Client, key_id: &str) -> (Vec<u8>, Vec<u8>) {
    let out = kms
        .encapsulate()
        .key_id(key_id)
        .encapsulation_algorithm(EncapsulationAlgorithmSpec::MlKem)
        .send()
        .await
        .unwrap_or_else(|e| panic!("Encapsulate: {}", DisplayErrorContext(&e)));
    assert_eq!(out.key_id(), Some(arn(key_id).as_str()));
    assert_eq!(
        out.encapsulation_algorithm(),
        Some(&EncapsulationAlgorithmSpec::MlKem)
    );
    let secret = out.shared_secret.expect("SharedSecret").into_inner();
    assert_eq!(secret.len(), 32);
    let ciphertext = out
        .shared_secret_ciphertext_blob
        .expect("SharedSecretCiphertextBlob")
        .into_inner();
    (ciphertext, secret)
}

async fn decapsulate(kms: &Client, key_id: &str, ciphertext: &[u8]) -> Vec<u8> {
    let out = kms
        .decapsulate()
        .key_id(key_id)
        .encapsulation_algorithm(EncapsulationAlgorithmSpec::MlKem)
        .shared_secret_ciphertext_blob(Blob::new(ciphertext))
        .send()
        .await
        .unwrap_or_else(|e| panic!("Decapsulate: {}", DisplayErrorContext(&e)));
    assert_eq!(out.key_id(), Some(arn(key_id).as_str()));
    assert_eq!(
        out.encapsulation_algorithm(),
        Some(&EncapsulationAlgorithmSpec::MlKem)
    );
    let secret = out.shared_secret.expect("SharedSecret").into_inner();
    assert_eq!(secret.len(), 32);
    secret
}

/// A fresh peer on `curve`: its private key and its public key as DER SubjectPublicKeyInfo.
fn peer(curve: &'static agreement::Algorithm) -> (agreement::PrivateKey, Vec<u8>) {
    let private = agreement::PrivateKey::generate(curve).unwrap();
    let der = private
        .compute_public_key()
        .unwrap()
        .as_der()
        .unwrap()
        .as_ref()
        .to_vec();
    (private, der)
}

/// The ECDH secret of `private` with the peer public key `spki`, computed by aws-lc-rs.
fn agree_locally(
    curve: &'static agreement::Algorithm,
    private: &agreement::PrivateKey,
    spki: &[u8],
) -> Vec<u8> {
    agreement::agree(
        private,
        agreement::UnparsedPublicKey::new(curve, spki),
        "aws-lc-rs refuses the public key",
        |secret| Ok(secret.to_vec()),
    )
    .unwrap()
}

// ---------------------------------------------------------------------------------------------
// CreateKey

#[tokio::test]
#[allow(deprecated)]
async fn create_key_spec_and_usage_rules() {
    let server = Server::dev();
    let kms = server.client();
    use KeySpec as S;
    use KeyUsageType as U;

    let incompatible = [
        (S::SymmetricDefault, U::SignVerify),
        (S::SymmetricDefault, U::GenerateVerifyMac),
        (S::Rsa2048, U::KeyAgreement),
        (S::Rsa2048, U::GenerateVerifyMac),
        (S::Rsa3072, U::EncapsulateDecapsulate),
        (S::EccNistP256, U::EncryptDecrypt),
        (S::EccNistP521, U::GenerateVerifyMac),
        (S::EccSecgP256K1, U::KeyAgreement),
        (S::EccNistEdwards25519, U::KeyAgreement),
        (S::EccNistEdwards25519, U::EncryptDecrypt),
        (S::Hmac256, U::SignVerify),
        (S::Hmac512, U::EncryptDecrypt),
        (S::MlDsa44, U::EncryptDecrypt),
        (S::MlDsa65, U::KeyAgreement),
        (S::MlKem512, U::KeyAgreement),
        (S::MlKem1024, U::EncryptDecrypt),
    ];
    for (spec, usage) in incompatible {
        assert_error(
            kms.create_key()
                .key_spec(spec.clone())
                .key_usage(usage.clone())
                .send()
                .await,
            VALIDATION,
            &format!("KeyUsage {usage} is not compatible with KeySpec {spec}"),
        );
    }
    for spec in [
        S::Rsa2048,
        S::EccNistP256,
        S::Hmac256,
        S::MlDsa44,
        S::MlKem768,
    ] {
        assert_error(
            kms.create_key().key_spec(spec).send().await,
            VALIDATION,
            "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.",
        );
    }
    assert_error(
        kms.create_key()
            .key_spec(S::Sm2)
            .key_usage(U::SignVerify)
            .send()
            .await,
        VALIDATION,
        "KeySpec SM2 is only available in the China Regions.",
    );
    // KeySpec and its deprecated synonym together.
    assert_code(
        kms.create_key()
            .key_spec(S::EccNistP256)
            .customer_master_key_spec(CustomerMasterKeySpec::EccNistP256)
            .key_usage(U::SignVerify)
            .send()
            .await,
        VALIDATION,
    );
    assert!(
        kms.list_keys().send().await.unwrap().keys().is_empty(),
        "a refused CreateKey created a key"
    );

    // CustomerMasterKeySpec alone is a synonym of KeySpec.
    let md = kms
        .create_key()
        .customer_master_key_spec(CustomerMasterKeySpec::EccNistP384)
        .key_usage(U::SignVerify)
        .send()
        .await
        .expect("CreateKey with CustomerMasterKeySpec")
        .key_metadata
        .unwrap();
    check_metadata(&md, &S::EccNistP384, &U::SignVerify);
    let md = kms
        .create_key()
        .customer_master_key_spec(CustomerMasterKeySpec::Hmac384)
        .key_usage(U::GenerateVerifyMac)
        .send()
        .await
        .expect("CreateKey with CustomerMasterKeySpec")
        .key_metadata
        .unwrap();
    check_metadata(&md, &S::Hmac384, &U::GenerateVerifyMac);

    // SYMMETRIC_DEFAULT keeps its defaults, and its CurrentKeyMaterialId.
    let md = kms
        .create_key()
        .key_spec(S::SymmetricDefault)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    check_metadata(&md, &S::SymmetricDefault, &U::EncryptDecrypt);
    assert_eq!(kms.list_keys().send().await.unwrap().keys().len(), 3);
}

// ---------------------------------------------------------------------------------------------
// Sign and Verify

#[tokio::test]
async fn rsa_signing_every_algorithm_and_message_type() {
    let server = Server::dev();
    let kms = server.client();
    for spec in [KeySpec::Rsa2048, KeySpec::Rsa3072] {
        let id = new_key(&kms, spec.clone(), KeyUsageType::SignVerify).await;
        let spki = public_key(&kms, &id, &spec, &KeyUsageType::SignVerify).await;
        exercise_signing(&kms, &id, &spec, &spki, SigningAlgorithmSpec::EcdsaSha256).await;
    }
}

#[tokio::test]
async fn ecdsa_signing_on_every_curve() {
    let server = Server::dev();
    let kms = server.client();
    let curves = [
        (KeySpec::EccNistP256, SigningAlgorithmSpec::EcdsaSha384),
        (KeySpec::EccNistP384, SigningAlgorithmSpec::EcdsaSha256),
        (KeySpec::EccNistP521, SigningAlgorithmSpec::EcdsaSha384),
        (KeySpec::EccSecgP256K1, SigningAlgorithmSpec::EcdsaSha512),
    ];
    let mut p256 = None;
    for (spec, unlisted) in curves {
        let id = new_key(&kms, spec.clone(), KeyUsageType::SignVerify).await;
        let spki = public_key(&kms, &id, &spec, &KeyUsageType::SignVerify).await;
        exercise_signing(&kms, &id, &spec, &spki, unlisted).await;
        // An RSA algorithm on an EC key.
        assert_sign_verify_refused(
            &kms,
            &id,
            b"x",
            MessageType::Raw,
            &SigningAlgorithmSpec::RsassaPssSha256,
            INVALID_KEY_USAGE,
            &algorithm_msg("RSASSA_PSS_SHA_256", spec.as_str()),
        )
        .await;
        if spec == KeySpec::EccNistP256 {
            p256 = Some((id, spki));
        }
    }

    // Message: 1..4096 bytes.
    let (id, spki) = p256.unwrap();
    let alg = SigningAlgorithmSpec::EcdsaSha256;
    let long = test_bytes(4096, 4096);
    let sig = sign(&kms, &id, &long, MessageType::Raw, &alg).await;
    assert_verifies(&kms, &id, &long, MessageType::Raw, &alg, &sig).await;
    assert_verifies_offline(&KeySpec::EccNistP256, &alg, &spki, &long, &sig);
    let one = sign(&kms, &id, b"1", MessageType::Raw, &alg).await;
    assert_verifies_offline(&KeySpec::EccNistP256, &alg, &spki, b"1", &one);
    assert_sign_verify_refused(
        &kms,
        &id,
        &[1; 4097],
        MessageType::Raw,
        &alg,
        VALIDATION,
        MESSAGE_TOO_LONG,
    )
    .await;
    assert_sign_verify_refused(
        &kms,
        &id,
        &[],
        MessageType::Raw,
        &alg,
        VALIDATION,
        MESSAGE_EMPTY,
    )
    .await;
    // A signature that is not DER at all.
    assert_not_verified(&kms, &id, b"1", MessageType::Raw, &alg, b"not a signature").await;
    // The SDK reads the code as the modeled error.
    let err = verify_request(&kms, &id, b"1", MessageType::Raw, &alg, &damaged(&one))
        .send()
        .await
        .expect_err("a damaged signature");
    let err = err.into_service_error();
    assert!(
        matches!(err, VerifyError::KmsInvalidSignatureException(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn ed25519_pure_and_prehashed_signing() {
    let server = Server::dev();
    let kms = server.client();
    let spec = KeySpec::EccNistEdwards25519;
    let id = new_key(&kms, spec.clone(), KeyUsageType::SignVerify).await;
    let spki = public_key(&kms, &id, &spec, &KeyUsageType::SignVerify).await;
    exercise_signing(&kms, &id, &spec, &spki, SigningAlgorithmSpec::EcdsaSha256).await;

    // The two algorithms do not accept each other's signatures.
    let msg = b"pure or prehashed";
    let digest = digest::digest(&digest::SHA512, msg);
    let pure = sign(
        &kms,
        &id,
        digest.as_ref(),
        MessageType::Raw,
        &SigningAlgorithmSpec::Ed25519Sha512,
    )
    .await;
    assert_not_verified(
        &kms,
        &id,
        digest.as_ref(),
        MessageType::Digest,
        &SigningAlgorithmSpec::Ed25519PhSha512,
        &pure,
    )
    .await;
    let prehashed = sign(
        &kms,
        &id,
        digest.as_ref(),
        MessageType::Digest,
        &SigningAlgorithmSpec::Ed25519PhSha512,
    )
    .await;
    assert_not_verified(
        &kms,
        &id,
        digest.as_ref(),
        MessageType::Raw,
        &SigningAlgorithmSpec::Ed25519Sha512,
        &prehashed,
    )
    .await;
}

#[tokio::test]
async fn ml_dsa_signing_raw_and_external_mu() {
    let server = Server::dev();
    let kms = server.client();
    for spec in [KeySpec::MlDsa44, KeySpec::MlDsa65, KeySpec::MlDsa87] {
        let id = new_key(&kms, spec.clone(), KeyUsageType::SignVerify).await;
        let spki = public_key(&kms, &id, &spec, &KeyUsageType::SignVerify).await;
        exercise_signing(&kms, &id, &spec, &spki, SigningAlgorithmSpec::Ed25519Sha512).await;
    }
}

// ---------------------------------------------------------------------------------------------
// RSA encryption

#[tokio::test]
async fn rsa_encryption_with_both_oaep_algorithms() {
    use EncryptionAlgorithmSpec::{RsaesOaepSha1, RsaesOaepSha256};
    let server = Server::dev();
    let kms = server.client();
    let sizes = [
        (KeySpec::Rsa2048, 214, 190),
        (KeySpec::Rsa3072, 342, 318),
        (KeySpec::Rsa4096, 470, 446),
    ];
    let mut keys = Vec::new();
    for (spec, sha1_max, sha256_max) in sizes {
        let id = new_key(&kms, spec.clone(), KeyUsageType::EncryptDecrypt).await;
        let spki = public_key(&kms, &id, &spec, &KeyUsageType::EncryptDecrypt).await;
        let offline =
            rsa::OaepPublicEncryptingKey::new(rsa::PublicEncryptingKey::from_der(&spki).unwrap())
                .unwrap();
        let modulus = offline.key_size_bytes();
        let algorithms = [
            (RsaesOaepSha1, &rsa::OAEP_SHA1_MGF1SHA1, sha1_max),
            (RsaesOaepSha256, &rsa::OAEP_SHA256_MGF1SHA256, sha256_max),
        ];
        for (alg, oaep, max) in algorithms {
            assert_eq!(offline.max_plaintext_size(oaep), max, "{spec} {alg}");
            for len in [1, max] {
                let pt = test_bytes(len as u64, len);
                let ct = rsa_encrypt(&kms, &id, &alg, &pt).await;
                assert_eq!(
                    ct.len(),
                    modulus,
                    "{spec}: the ciphertext is the raw OAEP output"
                );
                assert_eq!(rsa_decrypt(&kms, &id, &alg, &ct).await, pt);
                let again = rsa_encrypt(&kms, &id, &alg, &pt).await;
                assert_ne!(again, ct, "OAEP is randomized");
            }
            assert_error(
                kms.encrypt()
                    .key_id(&id)
                    .encryption_algorithm(alg.clone())
                    .plaintext(Blob::new(vec![1; max + 1]))
                    .send()
                    .await,
                VALIDATION,
                &format!(
                    "Algorithm {alg} and key spec {spec} cannot encrypt data larger than {max} bytes."
                ),
            );
            // Encrypted offline with the public key, decrypted by trent.
            let pt = test_bytes(max as u64 + 7, max);
            let mut buf = vec![0; offline.ciphertext_size()];
            let ct = offline.encrypt(oaep, &pt, &mut buf, None).unwrap().to_vec();
            assert_eq!(rsa_decrypt(&kms, &id, &alg, &ct).await, pt);
        }
        // Each algorithm's ciphertexts are not the other's.
        let ct = rsa_encrypt(&kms, &id, &RsaesOaepSha1, b"sha-1").await;
        assert_code(
            kms.decrypt()
                .key_id(&id)
                .encryption_algorithm(RsaesOaepSha256)
                .ciphertext_blob(Blob::new(ct))
                .send()
                .await,
            INVALID_CIPHERTEXT,
        );
        keys.push(id);
    }

    let (rsa2048, rsa3072) = (&keys[0], &keys[1]);
    let ct = rsa_encrypt(&kms, rsa2048, &RsaesOaepSha256, b"rsa 2048").await;
    let refused_default = algorithm_msg("SYMMETRIC_DEFAULT", "RSA_2048");
    // EncryptionAlgorithm omitted means SYMMETRIC_DEFAULT, which RSA keys refuse.
    assert_error(
        kms.encrypt()
            .key_id(rsa2048)
            .plaintext(Blob::new("x"))
            .send()
            .await,
        INVALID_KEY_USAGE,
        &refused_default,
    );
    assert_error(
        kms.encrypt()
            .key_id(rsa2048)
            .encryption_algorithm(EncryptionAlgorithmSpec::SymmetricDefault)
            .plaintext(Blob::new("x"))
            .send()
            .await,
        INVALID_KEY_USAGE,
        &refused_default,
    );
    assert_error(
        kms.decrypt()
            .key_id(rsa2048)
            .ciphertext_blob(Blob::new(ct.clone()))
            .send()
            .await,
        INVALID_KEY_USAGE,
        &refused_default,
    );
    // No encryption context with RSA.
    let no_context = "EncryptionContext is not supported with asymmetric KMS keys.";
    assert_error(
        kms.encrypt()
            .key_id(rsa2048)
            .encryption_algorithm(RsaesOaepSha256)
            .encryption_context("k", "v")
            .plaintext(Blob::new("x"))
            .send()
            .await,
        VALIDATION,
        no_context,
    );
    assert_error(
        kms.decrypt()
            .key_id(rsa2048)
            .encryption_algorithm(RsaesOaepSha256)
            .encryption_context("k", "v")
            .ciphertext_blob(Blob::new(ct.clone()))
            .send()
            .await,
        VALIDATION,
        no_context,
    );
    // Without KeyId the blob is read as a symmetric ciphertext.
    assert_code(
        kms.decrypt()
            .ciphertext_blob(Blob::new(ct.clone()))
            .send()
            .await,
        INVALID_CIPHERTEXT,
    );
    assert_code(
        kms.decrypt()
            .ciphertext_blob(Blob::new(ct.clone()))
            .encryption_algorithm(RsaesOaepSha256)
            .send()
            .await,
        INVALID_CIPHERTEXT,
    );
    // Ciphertexts that do not decrypt under the key.
    for bad in [
        test_bytes(5, 256),
        ct[..255].to_vec(),
        damaged(&ct),
        [ct.as_slice(), &[0]].concat(),
    ] {
        assert_code(
            kms.decrypt()
                .key_id(rsa2048)
                .encryption_algorithm(RsaesOaepSha256)
                .ciphertext_blob(Blob::new(bad))
                .send()
                .await,
            INVALID_CIPHERTEXT,
        );
    }
    assert_code(
        kms.decrypt()
            .key_id(rsa3072)
            .encryption_algorithm(RsaesOaepSha256)
            .ciphertext_blob(Blob::new(ct.clone()))
            .send()
            .await,
        INVALID_CIPHERTEXT,
    );
    // A symmetric key refuses the RSA algorithms.
    let sym = new_key(
        &kms,
        KeySpec::SymmetricDefault,
        KeyUsageType::EncryptDecrypt,
    )
    .await;
    assert_error(
        kms.encrypt()
            .key_id(&sym)
            .encryption_algorithm(RsaesOaepSha256)
            .plaintext(Blob::new("x"))
            .send()
            .await,
        INVALID_KEY_USAGE,
        &algorithm_msg("RSAES_OAEP_SHA_256", "SYMMETRIC_DEFAULT"),
    );
    // GenerateDataKey needs a symmetric key, not any ENCRYPT_DECRYPT key (the message is not
    // documented).
    assert_code(
        kms.generate_data_key()
            .key_id(rsa2048)
            .key_spec(DataKeySpec::Aes256)
            .send()
            .await,
        INVALID_KEY_USAGE,
    );

    // ReEncrypt from RSA to symmetric and back.
    let out = kms
        .re_encrypt()
        .ciphertext_blob(Blob::new(ct.clone()))
        .source_key_id(rsa2048)
        .source_encryption_algorithm(RsaesOaepSha256)
        .destination_key_id(&sym)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ReEncrypt RSA -> symmetric: {}", DisplayErrorContext(&e)));
    assert_eq!(out.source_key_id(), Some(arn(rsa2048).as_str()));
    assert_eq!(out.key_id(), Some(arn(&sym).as_str()));
    assert_eq!(out.source_encryption_algorithm(), Some(&RsaesOaepSha256));
    assert_eq!(
        out.destination_encryption_algorithm(),
        Some(&EncryptionAlgorithmSpec::SymmetricDefault)
    );
    let sym_blob = out.ciphertext_blob.unwrap().into_inner();
    let back = kms
        .decrypt()
        .ciphertext_blob(Blob::new(sym_blob.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref(), b"rsa 2048");
    let out = kms
        .re_encrypt()
        .ciphertext_blob(Blob::new(sym_blob))
        .destination_key_id(rsa3072)
        .destination_encryption_algorithm(RsaesOaepSha1)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ReEncrypt symmetric -> RSA: {}", DisplayErrorContext(&e)));
    assert_eq!(out.key_id(), Some(arn(rsa3072).as_str()));
    assert_eq!(out.destination_encryption_algorithm(), Some(&RsaesOaepSha1));
    let rsa_blob = out.ciphertext_blob.unwrap().into_inner();
    assert_eq!(rsa_blob.len(), 384);
    assert_eq!(
        rsa_decrypt(&kms, rsa3072, &RsaesOaepSha1, &rsa_blob).await,
        b"rsa 2048"
    );
}

// ---------------------------------------------------------------------------------------------
// MACs

#[tokio::test]
async fn hmac_every_spec() {
    use MacAlgorithmSpec as M;
    let server = Server::dev();
    let kms = server.client();
    let specs = [
        (KeySpec::Hmac224, M::HmacSha224, 28, M::HmacSha256),
        (KeySpec::Hmac256, M::HmacSha256, 32, M::HmacSha384),
        (KeySpec::Hmac384, M::HmacSha384, 48, M::HmacSha512),
        (KeySpec::Hmac512, M::HmacSha512, 64, M::HmacSha224),
    ];
    let msg = test_bytes(42, 1000);
    let other = test_bytes(43, 1000);
    let mut hmac256 = None;
    for (spec, alg, len, wrong) in specs {
        let id = new_key(&kms, spec.clone(), KeyUsageType::GenerateVerifyMac).await;
        assert_error(
            kms.get_public_key().key_id(&id).send().await,
            UNSUPPORTED,
            &no_public_key_msg(&id, spec.as_str()),
        );
        let mac = generate_mac(&kms, &id, &msg, &alg).await;
        assert_eq!(mac.len(), len, "{spec}");
        assert_eq!(
            generate_mac(&kms, &id, &msg, &alg).await,
            mac,
            "a MAC is deterministic"
        );
        assert_ne!(generate_mac(&kms, &id, &other, &alg).await, mac);
        assert_mac_valid(&kms, &id, &msg, &alg, &mac).await;
        assert_mac_invalid(&kms, &id, &other, &alg, &mac).await;
        assert_mac_invalid(&kms, &id, &msg, &alg, &damaged(&mac)).await;
        assert_mac_invalid(&kms, &id, &msg, &alg, &mac[..len - 1]).await;
        assert_mac_invalid(&kms, &id, &msg, &alg, &[mac.as_slice(), &[0]].concat()).await;
        // An algorithm the key does not list.
        let refused = algorithm_msg(wrong.as_str(), spec.as_str());
        assert_error(
            kms.generate_mac()
                .key_id(&id)
                .message(Blob::new(msg.clone()))
                .mac_algorithm(wrong.clone())
                .send()
                .await,
            INVALID_KEY_USAGE,
            &refused,
        );
        assert_error(
            kms.verify_mac()
                .key_id(&id)
                .message(Blob::new(msg.clone()))
                .mac_algorithm(wrong)
                .mac(Blob::new(mac.clone()))
                .send()
                .await,
            INVALID_KEY_USAGE,
            &refused,
        );
        if spec == KeySpec::Hmac256 {
            hmac256 = Some((id, mac));
        }
    }

    // Another key of the same spec has another secret.
    let (id, mac) = hmac256.unwrap();
    let alg = M::HmacSha256;
    let second = new_key(&kms, KeySpec::Hmac256, KeyUsageType::GenerateVerifyMac).await;
    assert_ne!(generate_mac(&kms, &second, &msg, &alg).await, mac);
    assert_mac_invalid(&kms, &second, &msg, &alg, &mac).await;
    // The SDK reads the code as the modeled error.
    let err = kms
        .verify_mac()
        .key_id(&second)
        .message(Blob::new(msg.clone()))
        .mac_algorithm(alg.clone())
        .mac(Blob::new(mac.clone()))
        .send()
        .await
        .expect_err("another key's MAC")
        .into_service_error();
    assert!(
        matches!(err, VerifyMacError::KmsInvalidMacException(_)),
        "{err:?}"
    );

    // Message: 1..4096 bytes.
    let long = test_bytes(7, 4096);
    let long_mac = generate_mac(&kms, &id, &long, &alg).await;
    assert_mac_valid(&kms, &id, &long, &alg, &long_mac).await;
    let one = generate_mac(&kms, &id, b"1", &alg).await;
    assert_mac_valid(&kms, &id, b"1", &alg, &one).await;
    for (message, error) in [(vec![1; 4097], MESSAGE_TOO_LONG), (vec![], MESSAGE_EMPTY)] {
        assert_error(
            kms.generate_mac()
                .key_id(&id)
                .message(Blob::new(message.clone()))
                .mac_algorithm(alg.clone())
                .send()
                .await,
            VALIDATION,
            error,
        );
        assert_error(
            kms.verify_mac()
                .key_id(&id)
                .message(Blob::new(message))
                .mac_algorithm(alg.clone())
                .mac(Blob::new(mac.clone()))
                .send()
                .await,
            VALIDATION,
            error,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// DeriveSharedSecret

#[tokio::test]
async fn ecdh_derive_shared_secret_on_every_curve() {
    let server = Server::dev();
    let kms = server.client();
    let curves = [
        (KeySpec::EccNistP256, &agreement::ECDH_P256, 32),
        (KeySpec::EccNistP384, &agreement::ECDH_P384, 48),
        (KeySpec::EccNistP521, &agreement::ECDH_P521, 66),
    ];
    let peers: Vec<_> = curves.iter().map(|&(_, curve, _)| peer(curve)).collect();
    for (i, (spec, curve, len)) in curves.into_iter().enumerate() {
        let id = new_key(&kms, spec.clone(), KeyUsageType::KeyAgreement).await;
        let spki = public_key(&kms, &id, &spec, &KeyUsageType::KeyAgreement).await;
        let (peer_private, peer_spki) = &peers[i];

        let secret = derive(&kms, &id, peer_spki).await;
        assert_eq!(secret.len(), len, "{spec}: the x-coordinate");
        assert_eq!(
            secret,
            agree_locally(curve, peer_private, &spki),
            "{spec}: trent and the peer agree"
        );
        assert_eq!(derive(&kms, &id, peer_spki).await, secret);
        let (another, another_spki) = peer(curve);
        let second = derive(&kms, &id, &another_spki).await;
        assert_ne!(second, secret);
        assert_eq!(second, agree_locally(curve, &another, &spki));

        // Anything but a DER SubjectPublicKeyInfo on the key's curve.
        let raw_point = parse_spki(peer_spki).key;
        let other_curve = &peers[(i + 1) % peers.len()].1;
        let refused = format!(
            "PublicKey is not a valid DER-encoded SubjectPublicKeyInfo for key spec {spec}."
        );
        for bad in [
            raw_point,
            other_curve.clone(),
            b"garbage".to_vec(),
            peer_spki[..peer_spki.len() - 1].to_vec(),
            spki_of_rsa(),
        ] {
            assert_error(
                kms.derive_shared_secret()
                    .key_id(&id)
                    .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
                    .public_key(Blob::new(bad))
                    .send()
                    .await,
                VALIDATION,
                &refused,
            );
        }
    }
}

/// A valid DER SubjectPublicKeyInfo that is not an EC key (a fixed RSA-2048 public key).
fn spki_of_rsa() -> Vec<u8> {
    // SEQUENCE { SEQUENCE { rsaEncryption, NULL }, BIT STRING { RSAPublicKey { n, e } } } with
    // n = 2^2047 + 1 (odd, 2048 bits) and e = 65537: not a real key, a well-formed one.
    let mut n = vec![0x00, 0x80];
    n.extend(std::iter::repeat_n(0, 254));
    n.push(0x01);
    let mut rsa_public_key = vec![0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01];
    rsa_public_key.extend(&n);
    rsa_public_key.extend([0x02, 0x03, 0x01, 0x00, 0x01]);
    let mut der = vec![
        0x30, 0x82, 0x01, 0x22, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01,
        0x01, 0x01, 0x05, 0x00, 0x03, 0x82, 0x01, 0x0f, 0x00,
    ];
    der.extend(rsa_public_key);
    assert_eq!(der.len(), 0x126);
    der
}

// ---------------------------------------------------------------------------------------------
// ML-KEM

#[tokio::test]
async fn ml_kem_encapsulate_and_decapsulate() {
    let server = Server::dev();
    let kms = server.client();
    let levels = [
        (KeySpec::MlKem512, 768),
        (KeySpec::MlKem768, 1088),
        (KeySpec::MlKem1024, 1568),
    ];
    let mut keys = Vec::new();
    for (spec, ct_len) in levels {
        let usage = KeyUsageType::EncapsulateDecapsulate;
        let alg = kem_algorithm(spec.as_str());
        let id = new_key(&kms, spec.clone(), usage.clone()).await;
        let spki = public_key(&kms, &id, &spec, &usage).await;
        let raw = parse_spki(&spki).key;

        let (ct, secret) = encapsulate(&kms, &id).await;
        assert_eq!(ct.len(), ct_len, "{spec}");
        assert_eq!(decapsulate(&kms, &id, &ct).await, secret);
        let (ct2, secret2) = encapsulate(&kms, &id).await;
        assert_ne!((&ct2, &secret2), (&ct, &secret));
        assert_eq!(decapsulate(&kms, &id, &ct2).await, secret2);

        // Encapsulated offline to the public key, decapsulated by trent.
        let offline = kem::EncapsulationKey::new(alg, &raw).unwrap();
        let (offline_ct, offline_secret) = offline.encapsulate().unwrap();
        assert_eq!(
            decapsulate(&kms, &id, offline_ct.as_ref()).await,
            offline_secret.as_ref()
        );

        // Implicit rejection: an altered ciphertext, or one made for another key, gives a
        // pseudo-random secret, the same each time, never an error.
        let altered = damaged(&ct);
        let rejected = decapsulate(&kms, &id, &altered).await;
        assert_ne!(rejected, secret);
        assert_eq!(decapsulate(&kms, &id, &altered).await, rejected);
        let foreign = kem::DecapsulationKey::generate(alg).unwrap();
        let (foreign_ct, foreign_secret) =
            foreign.encapsulation_key().unwrap().encapsulate().unwrap();
        assert_ne!(
            decapsulate(&kms, &id, foreign_ct.as_ref()).await,
            foreign_secret.as_ref()
        );

        // The wrong length.
        for bad in [
            &ct[..ct_len - 1],
            [ct.as_slice(), &[0]].concat().as_slice(),
            &[9u8][..],
        ] {
            assert_code(
                kms.decapsulate()
                    .key_id(&id)
                    .encapsulation_algorithm(EncapsulationAlgorithmSpec::MlKem)
                    .shared_secret_ciphertext_blob(Blob::new(bad))
                    .send()
                    .await,
                INVALID_CIPHERTEXT,
            );
        }
        let err = kms
            .decapsulate()
            .key_id(&id)
            .encapsulation_algorithm(EncapsulationAlgorithmSpec::MlKem)
            .shared_secret_ciphertext_blob(Blob::new(&ct[1..]))
            .send()
            .await
            .expect_err("a short ciphertext")
            .into_service_error();
        assert!(
            matches!(err, DecapsulateError::InvalidCiphertextException(_)),
            "{err:?}"
        );
        keys.push((id, ct));
    }
    // Another level's ciphertext has another length.
    for (i, (id, _)) in keys.iter().enumerate() {
        let (_, other_ct) = &keys[(i + 1) % keys.len()];
        assert_code(
            kms.decapsulate()
                .key_id(id)
                .encapsulation_algorithm(EncapsulationAlgorithmSpec::MlKem)
                .shared_secret_ciphertext_blob(Blob::new(other_ct.clone()))
                .send()
                .await,
            INVALID_CIPHERTEXT,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// GenerateDataKeyPair

/// GenerateDataKeyPair (or WithoutPlaintext) of `spec` under the symmetric key `wrapping`, whose
/// current material is `material`: checks the response, the public key, the private key it
/// seals and that Decrypt with the same encryption context gives it back. Returns the public key.
async fn check_data_key_pair(
    kms: &Client,
    wrapping: &str,
    material: &str,
    spec: DataKeyPairSpec,
    with_plaintext: bool,
) -> Vec<u8> {
    let name = spec.as_str().to_owned();
    let (public, sealed, plaintext) = if with_plaintext {
        let out = kms
            .generate_data_key_pair()
            .key_id(wrapping)
            .key_pair_spec(spec.clone())
            .encryption_context("purpose", "data key pair")
            .encryption_context("spec", &name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GenerateDataKeyPair {name}: {}", DisplayErrorContext(&e)));
        assert_eq!(out.key_id(), Some(arn(wrapping).as_str()));
        assert_eq!(out.key_pair_spec(), Some(&spec));
        assert_eq!(out.key_material_id(), Some(material));
        assert!(out.ciphertext_for_recipient().is_none());
        (
            out.public_key.expect("PublicKey").into_inner(),
            out.private_key_ciphertext_blob
                .expect("PrivateKeyCiphertextBlob")
                .into_inner(),
            Some(
                out.private_key_plaintext
                    .expect("PrivateKeyPlaintext")
                    .into_inner(),
            ),
        )
    } else {
        let out = kms
            .generate_data_key_pair_without_plaintext()
            .key_id(wrapping)
            .key_pair_spec(spec.clone())
            .encryption_context("purpose", "data key pair")
            .encryption_context("spec", &name)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "GenerateDataKeyPairWithoutPlaintext {name}: {}",
                    DisplayErrorContext(&e)
                )
            });
        assert_eq!(out.key_id(), Some(arn(wrapping).as_str()));
        assert_eq!(out.key_pair_spec(), Some(&spec));
        assert_eq!(out.key_material_id(), Some(material));
        (
            out.public_key.expect("PublicKey").into_inner(),
            out.private_key_ciphertext_blob
                .expect("PrivateKeyCiphertextBlob")
                .into_inner(),
            None,
        )
    };
    check_spki(&name, &public);

    let out = kms
        .decrypt()
        .ciphertext_blob(Blob::new(sealed.clone()))
        .encryption_context("spec", &name)
        .encryption_context("purpose", "data key pair")
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "Decrypt of the {name} PrivateKeyCiphertextBlob: {}",
                DisplayErrorContext(&e)
            )
        });
    assert_eq!(out.key_id(), Some(arn(wrapping).as_str()));
    assert_eq!(out.key_material_id(), Some(material));
    let pkcs8 = out.plaintext.expect("Plaintext").into_inner();
    if let Some(plaintext) = plaintext {
        assert_eq!(
            pkcs8, plaintext,
            "{name}: PrivateKeyCiphertextBlob seals PrivateKeyPlaintext"
        );
    }
    check_pkcs8(&name, &pkcs8, &public);
    assert_code(
        kms.decrypt()
            .ciphertext_blob(Blob::new(sealed))
            .send()
            .await,
        INVALID_CIPHERTEXT,
    );
    public
}

#[tokio::test]
async fn generate_data_key_pair_every_spec() {
    use DataKeyPairSpec as D;
    let server = Server::dev();
    let kms = server.client();
    let wrapping = new_key(
        &kms,
        KeySpec::SymmetricDefault,
        KeyUsageType::EncryptDecrypt,
    )
    .await;
    let material = describe(&kms, &wrapping)
        .await
        .current_key_material_id()
        .unwrap()
        .to_owned();

    let specs = [
        D::Rsa2048,
        D::Rsa3072,
        D::EccNistP256,
        D::EccNistP384,
        D::EccNistP521,
        D::EccSecgP256K1,
        D::EccNistEdwards25519,
        D::MlKem512,
        D::MlKem768,
        D::MlKem1024,
    ];
    for spec in specs {
        let public = check_data_key_pair(&kms, &wrapping, &material, spec.clone(), true).await;
        let again = check_data_key_pair(&kms, &wrapping, &material, spec.clone(), false).await;
        assert_ne!(public, again, "{spec}: every call makes a new key pair");
    }
    // RSA_4096 once: its key generation is slow.
    check_data_key_pair(&kms, &wrapping, &material, D::Rsa4096, true).await;

    // An ML-KEM data key pair's public key works offline.
    let public = check_data_key_pair(&kms, &wrapping, &material, D::MlKem768, true).await;
    let raw = parse_spki(&public).key;
    kem::EncapsulationKey::new(&kem::ML_KEM_768, &raw)
        .unwrap()
        .encapsulate()
        .unwrap();

    let china = "KeyPairSpec SM2 is only available in the China Regions.";
    assert_error(
        kms.generate_data_key_pair()
            .key_id(&wrapping)
            .key_pair_spec(D::Sm2)
            .send()
            .await,
        VALIDATION,
        china,
    );
    assert_error(
        kms.generate_data_key_pair_without_plaintext()
            .key_id(&wrapping)
            .key_pair_spec(D::Sm2)
            .send()
            .await,
        VALIDATION,
        china,
    );
}

// ---------------------------------------------------------------------------------------------
// usages and key states

#[tokio::test]
async fn every_operation_refuses_a_key_of_another_usage() {
    let server = Server::dev();
    let kms = server.client();
    let sym = new_key(
        &kms,
        KeySpec::SymmetricDefault,
        KeyUsageType::EncryptDecrypt,
    )
    .await;
    let rsa = new_key(&kms, KeySpec::Rsa2048, KeyUsageType::EncryptDecrypt).await;
    let sign_key = new_key(&kms, KeySpec::EccNistP256, KeyUsageType::SignVerify).await;
    let mac_key = new_key(&kms, KeySpec::Hmac256, KeyUsageType::GenerateVerifyMac).await;
    let agree_key = new_key(&kms, KeySpec::EccNistP256, KeyUsageType::KeyAgreement).await;
    let kem_key = new_key(
        &kms,
        KeySpec::MlKem512,
        KeyUsageType::EncapsulateDecapsulate,
    )
    .await;
    let (_, peer_spki) = peer(&agreement::ECDH_P256);
    let sym_blob = kms
        .encrypt()
        .key_id(&sym)
        .plaintext(Blob::new("symmetric"))
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap()
        .into_inner();

    let keys = [
        (&sym, "ENCRYPT_DECRYPT"),
        (&rsa, "ENCRYPT_DECRYPT"),
        (&sign_key, "SIGN_VERIFY"),
        (&mac_key, "GENERATE_VERIFY_MAC"),
        (&agree_key, "KEY_AGREEMENT"),
        (&kem_key, "ENCAPSULATE_DECAPSULATE"),
    ];
    for (id, usage) in keys {
        let refused = |operation: &str| usage_msg(id, usage, operation);
        if usage != "ENCRYPT_DECRYPT" {
            assert_error(
                kms.encrypt()
                    .key_id(id)
                    .plaintext(Blob::new("x"))
                    .send()
                    .await,
                INVALID_KEY_USAGE,
                &refused("Encrypt"),
            );
            assert_error(
                kms.decrypt()
                    .key_id(id)
                    .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
                    .ciphertext_blob(Blob::new(test_bytes(1, 256)))
                    .send()
                    .await,
                INVALID_KEY_USAGE,
                &refused("Decrypt"),
            );
            // A symmetric ciphertext named with this key: the usage is checked first.
            assert_error(
                kms.decrypt()
                    .key_id(id)
                    .ciphertext_blob(Blob::new(sym_blob.clone()))
                    .send()
                    .await,
                INVALID_KEY_USAGE,
                &refused("Decrypt"),
            );
            assert_error(
                kms.re_encrypt()
                    .ciphertext_blob(Blob::new(sym_blob.clone()))
                    .destination_key_id(id)
                    .send()
                    .await,
                INVALID_KEY_USAGE,
                &refused("ReEncrypt"),
            );
            assert_error(
                kms.generate_data_key()
                    .key_id(id)
                    .key_spec(DataKeySpec::Aes256)
                    .send()
                    .await,
                INVALID_KEY_USAGE,
                &refused("GenerateDataKey"),
            );
            assert_error(
                kms.generate_data_key_pair()
                    .key_id(id)
                    .key_pair_spec(DataKeyPairSpec::EccNistP256)
                    .send()
                    .await,
                INVALID_KEY_USAGE,
                &refused("GenerateDataKeyPair"),
            );
            assert_error(
                kms.generate_data_key_pair_without_plaintext()
                    .key_id(id)
                    .key_pair_spec(DataKeyPairSpec::EccNistP256)
                    .send()
                    .await,
                INVALID_KEY_USAGE,
                &refused("GenerateDataKeyPairWithoutPlaintext"),
            );
        }
        if usage != "SIGN_VERIFY" {
            assert_sign_verify_refused_each(&kms, id, &refused("Sign"), &refused("Verify")).await;
        }
        if usage != "GENERATE_VERIFY_MAC" {
            assert_error(
                kms.generate_mac()
                    .key_id(id)
                    .message(Blob::new("x"))
                    .mac_algorithm(MacAlgorithmSpec::HmacSha256)
                    .send()
                    .await,
                INVALID_KEY_USAGE,
                &refused("GenerateMac"),
            );
            assert_error(
                kms.verify_mac()
                    .key_id(id)
                    .message(Blob::new("x"))
                    .mac_algorithm(MacAlgorithmSpec::HmacSha256)
                    .mac(Blob::new(vec![0; 32]))
                    .send()
                    .await,
                INVALID_KEY_USAGE,
                &refused("VerifyMac"),
            );
        }
        if usage != "KEY_AGREEMENT" {
            assert_error(
                kms.derive_shared_secret()
                    .key_id(id)
                    .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
                    .public_key(Blob::new(peer_spki.clone()))
                    .send()
                    .await,
                INVALID_KEY_USAGE,
                &refused("DeriveSharedSecret"),
            );
        }
        if usage != "ENCAPSULATE_DECAPSULATE" {
            assert_error(
                kms.encapsulate()
                    .key_id(id)
                    .encapsulation_algorithm(EncapsulationAlgorithmSpec::MlKem)
                    .send()
                    .await,
                INVALID_KEY_USAGE,
                &refused("Encapsulate"),
            );
            assert_error(
                kms.decapsulate()
                    .key_id(id)
                    .encapsulation_algorithm(EncapsulationAlgorithmSpec::MlKem)
                    .shared_secret_ciphertext_blob(Blob::new(test_bytes(2, 768)))
                    .send()
                    .await,
                INVALID_KEY_USAGE,
                &refused("Decapsulate"),
            );
        }
    }

    // No public key for symmetric and HMAC keys.
    assert_error(
        kms.get_public_key().key_id(&sym).send().await,
        UNSUPPORTED,
        &no_public_key_msg(&sym, "SYMMETRIC_DEFAULT"),
    );
    assert_error(
        kms.get_public_key().key_id(&mac_key).send().await,
        UNSUPPORTED,
        &no_public_key_msg(&mac_key, "HMAC_256"),
    );
    // Data keys and data key pairs need a symmetric wrapping key, not any ENCRYPT_DECRYPT key.
    assert_code(
        kms.generate_data_key_pair()
            .key_id(&rsa)
            .key_pair_spec(DataKeyPairSpec::EccNistP256)
            .send()
            .await,
        INVALID_KEY_USAGE,
    );
    assert_code(
        kms.generate_data_key_pair_without_plaintext()
            .key_id(&rsa)
            .key_pair_spec(DataKeyPairSpec::EccNistP256)
            .send()
            .await,
        INVALID_KEY_USAGE,
    );
}

/// Sign and Verify with an ECDSA algorithm on `key_id` fail with InvalidKeyUsageException and
/// `sign_message` / `verify_message`.
async fn assert_sign_verify_refused_each(
    kms: &Client,
    key_id: &str,
    sign_message: &str,
    verify_message: &str,
) {
    assert_error(
        kms.sign()
            .key_id(key_id)
            .message(Blob::new("x"))
            .message_type(MessageType::Raw)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await,
        INVALID_KEY_USAGE,
        sign_message,
    );
    assert_error(
        verify_request(
            kms,
            key_id,
            b"x",
            MessageType::Raw,
            &SigningAlgorithmSpec::EcdsaSha256,
            &[0x30; 70],
        )
        .send()
        .await,
        INVALID_KEY_USAGE,
        verify_message,
    );
}

#[tokio::test]
async fn disabled_and_pending_deletion_keys() {
    use EncryptionAlgorithmSpec::RsaesOaepSha256;
    let server = Server::dev();
    let kms = server.client();
    let sym = new_key(
        &kms,
        KeySpec::SymmetricDefault,
        KeyUsageType::EncryptDecrypt,
    )
    .await;
    let rsa = new_key(&kms, KeySpec::Rsa2048, KeyUsageType::EncryptDecrypt).await;
    let sign_key = new_key(&kms, KeySpec::EccNistP256, KeyUsageType::SignVerify).await;
    let mac_key = new_key(&kms, KeySpec::Hmac256, KeyUsageType::GenerateVerifyMac).await;
    let agree_key = new_key(&kms, KeySpec::EccNistP384, KeyUsageType::KeyAgreement).await;
    let kem_key = new_key(
        &kms,
        KeySpec::MlKem768,
        KeyUsageType::EncapsulateDecapsulate,
    )
    .await;
    let (_, peer_spki) = peer(&agreement::ECDH_P384);
    let ecdsa = SigningAlgorithmSpec::EcdsaSha256;
    let hmac = MacAlgorithmSpec::HmacSha256;
    let msg = b"key states";
    let sig = sign(&kms, &sign_key, msg, MessageType::Raw, &ecdsa).await;
    let mac = generate_mac(&kms, &mac_key, msg, &hmac).await;
    let (kem_ct, kem_secret) = encapsulate(&kms, &kem_key).await;
    let rsa_ct = rsa_encrypt(&kms, &rsa, &RsaesOaepSha256, msg).await;
    let secret = derive(&kms, &agree_key, &peer_spki).await;

    // Every operation of every key, `dry_run` set or not, fails with `code` and the message
    // `message_of(key)`.
    macro_rules! assert_all_refused {
        ($dry_run:expr, $code:expr, $message_of:expr) => {{
            let dry_run: Option<bool> = $dry_run;
            let code: &str = $code;
            let message_of = $message_of;
            assert_error(
                kms.sign()
                    .key_id(&sign_key)
                    .message(Blob::new(&msg[..]))
                    .signing_algorithm(ecdsa.clone())
                    .set_dry_run(dry_run)
                    .send()
                    .await,
                code,
                &message_of(&sign_key),
            );
            assert_error(
                verify_request(&kms, &sign_key, msg, MessageType::Raw, &ecdsa, &sig)
                    .set_dry_run(dry_run)
                    .send()
                    .await,
                code,
                &message_of(&sign_key),
            );
            assert_error(
                kms.generate_mac()
                    .key_id(&mac_key)
                    .message(Blob::new(&msg[..]))
                    .mac_algorithm(hmac.clone())
                    .set_dry_run(dry_run)
                    .send()
                    .await,
                code,
                &message_of(&mac_key),
            );
            assert_error(
                kms.verify_mac()
                    .key_id(&mac_key)
                    .message(Blob::new(&msg[..]))
                    .mac_algorithm(hmac.clone())
                    .mac(Blob::new(mac.clone()))
                    .set_dry_run(dry_run)
                    .send()
                    .await,
                code,
                &message_of(&mac_key),
            );
            assert_error(
                kms.derive_shared_secret()
                    .key_id(&agree_key)
                    .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
                    .public_key(Blob::new(peer_spki.clone()))
                    .set_dry_run(dry_run)
                    .send()
                    .await,
                code,
                &message_of(&agree_key),
            );
            assert_error(
                kms.encapsulate()
                    .key_id(&kem_key)
                    .encapsulation_algorithm(EncapsulationAlgorithmSpec::MlKem)
                    .set_dry_run(dry_run)
                    .send()
                    .await,
                code,
                &message_of(&kem_key),
            );
            assert_error(
                kms.decapsulate()
                    .key_id(&kem_key)
                    .encapsulation_algorithm(EncapsulationAlgorithmSpec::MlKem)
                    .shared_secret_ciphertext_blob(Blob::new(kem_ct.clone()))
                    .set_dry_run(dry_run)
                    .send()
                    .await,
                code,
                &message_of(&kem_key),
            );
            assert_error(
                kms.encrypt()
                    .key_id(&rsa)
                    .encryption_algorithm(RsaesOaepSha256)
                    .plaintext(Blob::new(&msg[..]))
                    .set_dry_run(dry_run)
                    .send()
                    .await,
                code,
                &message_of(&rsa),
            );
            assert_error(
                kms.decrypt()
                    .key_id(&rsa)
                    .encryption_algorithm(RsaesOaepSha256)
                    .ciphertext_blob(Blob::new(rsa_ct.clone()))
                    .set_dry_run(dry_run)
                    .send()
                    .await,
                code,
                &message_of(&rsa),
            );
            assert_error(
                kms.generate_data_key_pair()
                    .key_id(&sym)
                    .key_pair_spec(DataKeyPairSpec::EccNistP256)
                    .set_dry_run(dry_run)
                    .send()
                    .await,
                code,
                &message_of(&sym),
            );
            assert_error(
                kms.generate_data_key_pair_without_plaintext()
                    .key_id(&sym)
                    .key_pair_spec(DataKeyPairSpec::EccNistP256)
                    .set_dry_run(dry_run)
                    .send()
                    .await,
                code,
                &message_of(&sym),
            );
        }};
    }

    let all = [&sym, &rsa, &sign_key, &mac_key, &agree_key, &kem_key];
    for id in all {
        kms.disable_key().key_id(id).send().await.unwrap();
    }
    assert_all_refused!(None, DISABLED, disabled_msg);
    // The key state is checked before the DryRun answer.
    assert_all_refused!(Some(true), DISABLED, disabled_msg);
    for id in [&rsa, &sign_key, &agree_key, &kem_key] {
        assert_error(
            kms.get_public_key().key_id(id).send().await,
            DISABLED,
            &disabled_msg(id),
        );
    }

    for id in all {
        kms.enable_key().key_id(id).send().await.unwrap();
    }
    assert_all_refused!(Some(true), DRY_RUN, |_: &String| DRY_RUN_MSG.to_owned());
    // Enabled again, everything works as before.
    assert_verifies(&kms, &sign_key, msg, MessageType::Raw, &ecdsa, &sig).await;
    assert_mac_valid(&kms, &mac_key, msg, &hmac, &mac).await;
    assert_eq!(decapsulate(&kms, &kem_key, &kem_ct).await, kem_secret);
    assert_eq!(
        rsa_decrypt(&kms, &rsa, &RsaesOaepSha256, &rsa_ct).await,
        msg
    );
    assert_eq!(derive(&kms, &agree_key, &peer_spki).await, secret);

    for id in all {
        kms.schedule_key_deletion()
            .key_id(id)
            .pending_window_in_days(7)
            .send()
            .await
            .unwrap();
    }
    assert_all_refused!(None, INVALID_STATE, pending_deletion_msg);
    for id in [&rsa, &sign_key, &agree_key, &kem_key] {
        assert_error(
            kms.get_public_key().key_id(id).send().await,
            INVALID_STATE,
            &pending_deletion_msg(id),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// restart

#[tokio::test]
async fn asymmetric_and_hmac_keys_survive_a_restart() {
    use EncryptionAlgorithmSpec::RsaesOaepSha256;
    use SigningAlgorithmSpec as A;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut server = Server::on_dir(&dir);
    let kms = server.client();

    let signing = [
        (KeySpec::Rsa2048, A::RsassaPssSha256),
        (KeySpec::EccNistP256, A::EcdsaSha256),
        (KeySpec::EccSecgP256K1, A::EcdsaSha256),
        (KeySpec::EccNistEdwards25519, A::Ed25519Sha512),
        (KeySpec::MlDsa44, A::MlDsaShake256),
    ];
    let msg = b"signed before the restart";
    // (spec, algorithm, key id, public key, signature)
    let mut signed = Vec::new();
    for (spec, alg) in signing {
        let id = new_key(&kms, spec.clone(), KeyUsageType::SignVerify).await;
        let spki = public_key(&kms, &id, &spec, &KeyUsageType::SignVerify).await;
        let sig = sign(&kms, &id, msg, MessageType::Raw, &alg).await;
        signed.push((spec, alg, id, spki, sig));
    }
    let rsa = new_key(&kms, KeySpec::Rsa2048, KeyUsageType::EncryptDecrypt).await;
    let rsa_spki = public_key(&kms, &rsa, &KeySpec::Rsa2048, &KeyUsageType::EncryptDecrypt).await;
    let rsa_ct = rsa_encrypt(&kms, &rsa, &RsaesOaepSha256, msg).await;
    let hmacs = [
        (KeySpec::Hmac224, MacAlgorithmSpec::HmacSha224),
        (KeySpec::Hmac512, MacAlgorithmSpec::HmacSha512),
    ];
    let mut macs = Vec::new();
    for (spec, alg) in hmacs {
        let id = new_key(&kms, spec, KeyUsageType::GenerateVerifyMac).await;
        let mac = generate_mac(&kms, &id, msg, &alg).await;
        macs.push((id, alg, mac));
    }
    let agree_key = new_key(&kms, KeySpec::EccNistP521, KeyUsageType::KeyAgreement).await;
    let (peer_private, peer_spki) = peer(&agreement::ECDH_P521);
    let secret = derive(&kms, &agree_key, &peer_spki).await;
    let kem_key = new_key(
        &kms,
        KeySpec::MlKem1024,
        KeyUsageType::EncapsulateDecapsulate,
    )
    .await;
    let (kem_ct, kem_secret) = encapsulate(&kms, &kem_key).await;

    let mut ids: Vec<String> = signed.iter().map(|s| s.2.clone()).collect();
    ids.extend([rsa.clone(), agree_key.clone(), kem_key.clone()]);
    ids.extend(macs.iter().map(|m| m.0.clone()));
    let mut before = Vec::new();
    for id in &ids {
        before.push(describe(&kms, id).await);
    }
    let agree_spki = kms
        .get_public_key()
        .key_id(&agree_key)
        .send()
        .await
        .unwrap()
        .public_key
        .unwrap()
        .into_inner();
    let kem_spki = kms
        .get_public_key()
        .key_id(&kem_key)
        .send()
        .await
        .unwrap()
        .public_key
        .unwrap()
        .into_inner();

    server.kill9();
    drop(kms);
    let server = Server::on_dir(&dir);
    let kms = server.client();

    for (id, md) in ids.iter().zip(&before) {
        assert_eq!(
            &describe(&kms, id).await,
            md,
            "{id}: metadata after restart"
        );
    }
    for (spec, alg, id, spki, sig) in &signed {
        assert_eq!(
            &public_key(&kms, id, spec, &KeyUsageType::SignVerify).await,
            spki,
            "{spec}: same public key after restart"
        );
        assert_verifies(&kms, id, msg, MessageType::Raw, alg, sig).await;
        let new_sig = sign(&kms, id, b"after", MessageType::Raw, alg).await;
        assert_verifies_offline(spec, alg, spki, b"after", &new_sig);
    }
    assert_eq!(
        public_key(&kms, &rsa, &KeySpec::Rsa2048, &KeyUsageType::EncryptDecrypt).await,
        rsa_spki
    );
    assert_eq!(
        rsa_decrypt(&kms, &rsa, &RsaesOaepSha256, &rsa_ct).await,
        msg
    );
    for (id, alg, mac) in &macs {
        assert_eq!(
            &generate_mac(&kms, id, msg, alg).await,
            mac,
            "same MAC after restart"
        );
        assert_mac_valid(&kms, id, msg, alg, mac).await;
    }
    assert_eq!(
        public_key(
            &kms,
            &agree_key,
            &KeySpec::EccNistP521,
            &KeyUsageType::KeyAgreement
        )
        .await,
        agree_spki
    );
    assert_eq!(derive(&kms, &agree_key, &peer_spki).await, secret);
    assert_eq!(
        agree_locally(&agreement::ECDH_P521, &peer_private, &agree_spki),
        secret
    );
    assert_eq!(
        public_key(
            &kms,
            &kem_key,
            &KeySpec::MlKem1024,
            &KeyUsageType::EncapsulateDecapsulate
        )
        .await,
        kem_spki
    );
    assert_eq!(decapsulate(&kms, &kem_key, &kem_ct).await, kem_secret);
}
