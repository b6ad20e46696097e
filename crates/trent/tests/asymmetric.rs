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
use aws_sdk_kms::error::{DisplayErrorContext, SdkError};
use aws_sdk_kms::operation::create_key::builders::CreateKeyFluentBuilder;
use aws_sdk_kms::operation::decapsulate::DecapsulateError;
use aws_sdk_kms::operation::decapsulate::builders::DecapsulateFluentBuilder;
use aws_sdk_kms::operation::decrypt::builders::DecryptFluentBuilder;
use aws_sdk_kms::operation::derive_shared_secret::builders::DeriveSharedSecretFluentBuilder;
use aws_sdk_kms::operation::encapsulate::builders::EncapsulateFluentBuilder;
use aws_sdk_kms::operation::encrypt::builders::EncryptFluentBuilder;
use aws_sdk_kms::operation::generate_mac::builders::GenerateMacFluentBuilder;
use aws_sdk_kms::operation::get_public_key::GetPublicKeyOutput;
use aws_sdk_kms::operation::sign::builders::SignFluentBuilder;
use aws_sdk_kms::operation::verify::VerifyError;
use aws_sdk_kms::operation::verify::builders::VerifyFluentBuilder;
use aws_sdk_kms::operation::verify_mac::VerifyMacError;
use aws_sdk_kms::operation::verify_mac::builders::VerifyMacFluentBuilder;
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
const INCORRECT_KEY: &str = "IncorrectKeyException";
const INCORRECT_KEY_MSG: &str =
    "The key ID in the request does not identify a CMK that can perform this operation.";
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

fn message_type_msg(message_type: &MessageType, algorithm: &str) -> String {
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

/// The messages of the wrong length for Sign, Verify, GenerateMac and VerifyMac (1 to 4096
/// bytes), each with its error message.
fn bad_length_messages() -> [(Vec<u8>, &'static str); 2] {
    [
        (vec![1; 4097], MESSAGE_TOO_LONG),
        (Vec::new(), MESSAGE_EMPTY),
    ]
}

/// Sends `$request`, which must fail with a service error the SDK reads as the modeled error
/// `$modeled`.
macro_rules! assert_modeled_error {
    ($request:expr, $modeled:pat) => {{
        let err = $request.send().await.expect_err("a service error");
        let err = err.into_service_error();
        assert!(matches!(err, $modeled), "{err:?}");
    }};
}

/// `sig` with one bit flipped in the middle.
fn damaged(sig: &[u8]) -> Vec<u8> {
    let mut sig = sig.to_vec();
    let at = sig.len() / 2;
    sig[at] ^= 0x01;
    sig
}

/// `bytes` with a zero byte appended.
fn longer(bytes: &[u8]) -> Vec<u8> {
    [bytes, &[0]].concat()
}

fn digest_of(hash: &'static digest::Algorithm, data: &[u8]) -> Vec<u8> {
    digest::digest(hash, data).as_ref().to_vec()
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
    oid: Vec<u8>,
    params: Vec<u8>,
    raw_len: Option<usize>,
}

/// rsaEncryption, 1.2.840.113549.1.1.1
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// id-ecPublicKey, 1.2.840.10045.2.1
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// id-Ed25519, 1.3.101.112
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
/// prime256v1, 1.2.840.10045.3.1.7
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

fn shape(spec: &str) -> Shape {
    // An EC key: the named curve's OID as the parameters, an uncompressed point.
    let ec = |curve: &[u8], raw_len: usize| Shape {
        oid: OID_EC_PUBLIC_KEY.to_vec(),
        params: [&[0x06, curve.len() as u8][..], curve].concat(),
        raw_len: Some(raw_len),
    };
    // The SECG curves: 1.3.132.0.`leaf` (P-384 is 34, P-521 35, secp256k1 10).
    let secg = |leaf: u8, raw_len: usize| ec(&[0x2b, 0x81, 0x04, 0x00, leaf], raw_len);
    // ML-DSA and ML-KEM: 2.16.840.1.101.3.4.`arc`.`leaf`, without parameters.
    let nist = |arc: u8, leaf: u8, raw_len: usize| Shape {
        oid: vec![0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, arc, leaf],
        params: Vec::new(),
        raw_len: Some(raw_len),
    };
    match spec {
        "RSA_2048" | "RSA_3072" | "RSA_4096" => Shape {
            oid: OID_RSA.to_vec(),
            params: vec![0x05, 0x00],
            raw_len: None,
        },
        "ECC_NIST_P256" => ec(OID_P256, 65),
        "ECC_NIST_P384" => secg(0x22, 97),
        "ECC_NIST_P521" => secg(0x23, 133),
        "ECC_SECG_P256K1" => secg(0x0a, 65),
        "ECC_NIST_EDWARDS25519" => Shape {
            oid: OID_ED25519.to_vec(),
            params: Vec::new(),
            raw_len: Some(32),
        },
        "ML_DSA_44" => nist(3, 0x11, 1312),
        "ML_DSA_65" => nist(3, 0x12, 1952),
        "ML_DSA_87" => nist(3, 0x13, 2592),
        "ML_KEM_512" => nist(4, 0x01, 800),
        "ML_KEM_768" => nist(4, 0x02, 1184),
        "ML_KEM_1024" => nist(4, 0x03, 1568),
        other => panic!("no public key for key spec {other}"),
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

/// The first documented signing algorithm of a signing key spec.
fn first_signing_algorithm(spec: &KeySpec) -> SigningAlgorithmSpec {
    documented_algorithms(spec, &KeyUsageType::SignVerify).signing[0].clone()
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
    let accepted = match spec {
        "RSA_2048" | "RSA_3072" | "RSA_4096" => rsa::PublicEncryptingKey::from_der(der)
            .map(|key| assert_eq!(key.key_size_bits().to_string(), spec[4..]))
            .map_err(|e| e.to_string()),
        "ML_KEM_512" | "ML_KEM_768" | "ML_KEM_1024" => {
            kem::EncapsulationKey::new(kem_algorithm(spec), &spki.key)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        // The signing specs (EC keys for key agreement too): the key of their verification.
        _ => {
            let key_spec = KeySpec::from(spec);
            let alg = verification_algorithm(&key_spec, &first_signing_algorithm(&key_spec));
            signature::ParsedPublicKey::new(alg, der)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
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
    let key_spec = KeySpec::from(spec);
    // (the private key's public key, its signature of `msg`, the algorithm of that signature)
    let (pair_public, sig, alg) = match spec {
        "RSA_2048" | "RSA_3072" | "RSA_4096" => {
            let pair = signature::RsaKeyPair::from_pkcs8(pkcs8)
                .unwrap_or_else(|e| panic!("{spec} PKCS #8: {e}"));
            assert_eq!(
                (pair.public_modulus_len() * 8).to_string(),
                spec[4..],
                "{spec}: modulus"
            );
            let mut sig = vec![0; pair.public_modulus_len()];
            pair.sign(&signature::RSA_PSS_SHA256, &rng, msg, &mut sig)
                .unwrap();
            let der = pair.public_key().as_der().unwrap().as_ref().to_vec();
            (der, sig, SigningAlgorithmSpec::RsassaPssSha256)
        }
        "ECC_NIST_P256" | "ECC_NIST_P384" | "ECC_NIST_P521" | "ECC_SECG_P256K1" => {
            let signing = match spec {
                "ECC_NIST_P256" => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                "ECC_NIST_P384" => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                "ECC_NIST_P521" => &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
                _ => &signature::ECDSA_P256K1_SHA256_ASN1_SIGNING,
            };
            let pair = signature::EcdsaKeyPair::from_pkcs8(signing, pkcs8)
                .unwrap_or_else(|e| panic!("{spec} PKCS #8: {e}"));
            let der = pair.public_key().as_der().unwrap().as_ref().to_vec();
            let sig = pair.sign(&rng, msg).unwrap().as_ref().to_vec();
            (der, sig, first_signing_algorithm(&key_spec))
        }
        "ECC_NIST_EDWARDS25519" => {
            let pair = signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
                .unwrap_or_else(|e| panic!("{spec} PKCS #8: {e}"));
            let der = pair.public_key().as_der().unwrap().as_ref().to_vec();
            (
                der,
                pair.sign(msg).as_ref().to_vec(),
                SigningAlgorithmSpec::Ed25519Sha512,
            )
        }
        // aws-lc-rs reads no ML-KEM PKCS #8: the algorithm check above and the Decrypt round
        // trip are what is checked.
        "ML_KEM_512" | "ML_KEM_768" | "ML_KEM_1024" => return,
        other => panic!("{other} is not a data key pair spec"),
    };
    assert_eq!(pair_public, public, "{spec}: the private key's public key");
    signature::UnparsedPublicKey::new(verification_algorithm(&key_spec, &alg), public)
        .verify(msg, &sig)
        .expect("the data key pair's public key verifies its private key's signature");
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
// keys

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

/// The output of a request that must succeed; on an error, panics with `what` and the error.
fn succeeded<O, E>(result: Result<O, SdkError<E>>, what: impl std::fmt::Display) -> O
where
    E: std::error::Error + Send + Sync + 'static,
{
    result.unwrap_or_else(|e| panic!("{what}: {}", DisplayErrorContext(&e)))
}

/// CreateKey with `spec` and `usage`; checks the metadata CreateKey and DescribeKey return.
async fn new_key(kms: &Client, spec: KeySpec, usage: KeyUsageType) -> String {
    let request = create_key_request(kms, Some(spec.clone()), None, Some(usage.clone()));
    let out = succeeded(request.send().await, format!("CreateKey {spec} {usage}"));
    let md = out.key_metadata.expect("KeyMetadata");
    check_metadata(&md, &spec, &usage);
    let id = md.key_id().to_owned();
    let described = describe(kms, &id).await;
    check_metadata(&described, &spec, &usage);
    assert_eq!(described, md, "DescribeKey shows what CreateKey returned");
    id
}

/// A SYMMETRIC_DEFAULT key (see [`new_key`]).
async fn new_symmetric_key(kms: &Client) -> String {
    new_key(kms, KeySpec::SymmetricDefault, KeyUsageType::EncryptDecrypt).await
}

/// GetPublicKey of a `spec` / `usage` key: checks the response and the SubjectPublicKeyInfo;
/// returns the DER.
#[allow(deprecated)]
async fn public_key(kms: &Client, key_id: &str, spec: &KeySpec, usage: &KeyUsageType) -> Vec<u8> {
    let out = kms.get_public_key().key_id(key_id).send().await;
    let out = succeeded(out, format!("GetPublicKey {spec}"));
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

/// An asymmetric key of `spec` and `usage` (see [`new_key`]) and its public key (see
/// [`public_key`]).
async fn new_key_with_public_key(
    kms: &Client,
    spec: &KeySpec,
    usage: &KeyUsageType,
) -> (String, Vec<u8>) {
    let id = new_key(kms, spec.clone(), usage.clone()).await;
    let spki = public_key(kms, &id, spec, usage).await;
    (id, spki)
}

/// A key of every usage, for the tests of what each operation refuses: a symmetric and an
/// RSA_2048 ENCRYPT_DECRYPT key, an ECC_NIST_P256 signing key, an HMAC_256 key, and a
/// KEY_AGREEMENT and an ML-KEM key of the specs asked for.
struct KeysOfEveryUsage {
    sym: String,
    rsa: String,
    sign: String,
    mac: String,
    agree: String,
    kem: String,
    /// A peer's public key (DER SubjectPublicKeyInfo) on the curve of `agree`.
    peer_spki: Vec<u8>,
}

impl KeysOfEveryUsage {
    async fn create(kms: &Client, agree: KeySpec, kem: KeySpec) -> KeysOfEveryUsage {
        use KeyUsageType as U;
        KeysOfEveryUsage {
            sym: new_symmetric_key(kms).await,
            rsa: new_key(kms, KeySpec::Rsa2048, U::EncryptDecrypt).await,
            sign: new_key(kms, KeySpec::EccNistP256, U::SignVerify).await,
            mac: new_key(kms, KeySpec::Hmac256, U::GenerateVerifyMac).await,
            peer_spki: peer(ecdh_curve(&agree)).1,
            agree: new_key(kms, agree, U::KeyAgreement).await,
            kem: new_key(kms, kem, U::EncapsulateDecapsulate).await,
        }
    }

    /// Every key, in creation order.
    fn all(&self) -> [&String; 6] {
        [
            &self.sym,
            &self.rsa,
            &self.sign,
            &self.mac,
            &self.agree,
            &self.kem,
        ]
    }
}

// ---------------------------------------------------------------------------------------------
// requests: each operation's request is built here, once

fn sign_request(
    kms: &Client,
    key_id: &str,
    msg: &[u8],
    message_type: Option<MessageType>,
    alg: &SigningAlgorithmSpec,
) -> SignFluentBuilder {
    kms.sign()
        .key_id(key_id)
        .message(Blob::new(msg))
        .set_message_type(message_type)
        .signing_algorithm(alg.clone())
}

fn verify_request(
    kms: &Client,
    key_id: &str,
    msg: &[u8],
    message_type: Option<MessageType>,
    alg: &SigningAlgorithmSpec,
    sig: &[u8],
) -> VerifyFluentBuilder {
    kms.verify()
        .key_id(key_id)
        .message(Blob::new(msg))
        .set_message_type(message_type)
        .signing_algorithm(alg.clone())
        .signature(Blob::new(sig))
}

fn encrypt_request(
    kms: &Client,
    key_id: &str,
    alg: Option<EncryptionAlgorithmSpec>,
    plaintext: &[u8],
) -> EncryptFluentBuilder {
    kms.encrypt()
        .key_id(key_id)
        .set_encryption_algorithm(alg)
        .plaintext(Blob::new(plaintext))
}

/// A Decrypt, with KeyId `key_id` when there is one.
fn decrypt_request(
    kms: &Client,
    key_id: Option<&str>,
    alg: Option<EncryptionAlgorithmSpec>,
    ciphertext: &[u8],
) -> DecryptFluentBuilder {
    kms.decrypt()
        .set_key_id(key_id.map(str::to_owned))
        .set_encryption_algorithm(alg)
        .ciphertext_blob(Blob::new(ciphertext))
}

fn generate_mac_request(
    kms: &Client,
    key_id: &str,
    msg: &[u8],
    alg: &MacAlgorithmSpec,
) -> GenerateMacFluentBuilder {
    kms.generate_mac()
        .key_id(key_id)
        .message(Blob::new(msg))
        .mac_algorithm(alg.clone())
}

fn verify_mac_request(
    kms: &Client,
    key_id: &str,
    msg: &[u8],
    alg: &MacAlgorithmSpec,
    mac: &[u8],
) -> VerifyMacFluentBuilder {
    kms.verify_mac()
        .key_id(key_id)
        .message(Blob::new(msg))
        .mac_algorithm(alg.clone())
        .mac(Blob::new(mac))
}

/// A DeriveSharedSecret (ECDH) with the peer's DER SubjectPublicKeyInfo.
fn derive_request(kms: &Client, key_id: &str, peer_spki: &[u8]) -> DeriveSharedSecretFluentBuilder {
    kms.derive_shared_secret()
        .key_id(key_id)
        .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
        .public_key(Blob::new(peer_spki))
}

fn encapsulate_request(kms: &Client, key_id: &str) -> EncapsulateFluentBuilder {
    kms.encapsulate()
        .key_id(key_id)
        .encapsulation_algorithm(EncapsulationAlgorithmSpec::MlKem)
}

fn decapsulate_request(kms: &Client, key_id: &str, ciphertext: &[u8]) -> DecapsulateFluentBuilder {
    kms.decapsulate()
        .key_id(key_id)
        .encapsulation_algorithm(EncapsulationAlgorithmSpec::MlKem)
        .shared_secret_ciphertext_blob(Blob::new(ciphertext))
}

// ---------------------------------------------------------------------------------------------
// refusals: the tests' tables of requests that must fail are lists of `Call`s

/// A request of one operation naming a key, with what it sends (the key is given when it is
/// sent, by [`assert_fails`]).
#[derive(Clone)]
enum Call<'a> {
    Encrypt {
        alg: Option<EncryptionAlgorithmSpec>,
        plaintext: &'a [u8],
    },
    Decrypt {
        alg: Option<EncryptionAlgorithmSpec>,
        ciphertext: &'a [u8],
    },
    /// ReEncrypt of a symmetric `ciphertext` to the key.
    ReEncryptTo {
        ciphertext: &'a [u8],
    },
    /// GenerateDataKey of an AES_256 data key.
    GenerateDataKey,
    GenerateDataKeyPair {
        spec: DataKeyPairSpec,
    },
    GenerateDataKeyPairWithoutPlaintext {
        spec: DataKeyPairSpec,
    },
    Sign {
        msg: &'a [u8],
        message_type: Option<MessageType>,
        alg: &'a SigningAlgorithmSpec,
    },
    Verify {
        msg: &'a [u8],
        message_type: Option<MessageType>,
        alg: &'a SigningAlgorithmSpec,
        sig: &'a [u8],
    },
    GenerateMac {
        msg: &'a [u8],
        alg: &'a MacAlgorithmSpec,
    },
    VerifyMac {
        msg: &'a [u8],
        alg: &'a MacAlgorithmSpec,
        mac: &'a [u8],
    },
    /// ECDH with the peer's DER SubjectPublicKeyInfo.
    DeriveSharedSecret {
        peer_spki: &'a [u8],
    },
    Encapsulate,
    Decapsulate {
        ciphertext: &'a [u8],
    },
    GetPublicKey,
}

impl Call<'_> {
    /// The operation, as error messages name it.
    fn operation(&self) -> &'static str {
        match self {
            Call::Encrypt { .. } => "Encrypt",
            Call::Decrypt { .. } => "Decrypt",
            Call::ReEncryptTo { .. } => "ReEncrypt",
            Call::GenerateDataKey => "GenerateDataKey",
            Call::GenerateDataKeyPair { .. } => "GenerateDataKeyPair",
            Call::GenerateDataKeyPairWithoutPlaintext { .. } => {
                "GenerateDataKeyPairWithoutPlaintext"
            }
            Call::Sign { .. } => "Sign",
            Call::Verify { .. } => "Verify",
            Call::GenerateMac { .. } => "GenerateMac",
            Call::VerifyMac { .. } => "VerifyMac",
            Call::DeriveSharedSecret { .. } => "DeriveSharedSecret",
            Call::Encapsulate => "Encapsulate",
            Call::Decapsulate { .. } => "Decapsulate",
            Call::GetPublicKey => "GetPublicKey",
        }
    }
}

/// Sends `call` naming `key_id`, with DryRun `dry_run` (GetPublicKey has no DryRun: `None`
/// only), and asserts it fails with HTTP 400 and `code`, and with exactly `message` if given.
async fn assert_fails(
    kms: &Client,
    key_id: &str,
    call: Call<'_>,
    dry_run: Option<bool>,
    code: &str,
    message: Option<&str>,
) {
    macro_rules! refused {
        (without DryRun: $request:expr) => {{
            let result = $request.send().await;
            match message {
                Some(message) => assert_error(result, code, message),
                None => assert_code(result, code),
            }
        }};
        ($request:expr) => {
            refused!(without DryRun: $request.set_dry_run(dry_run))
        };
    }
    match call {
        Call::Encrypt { alg, plaintext } => refused!(encrypt_request(kms, key_id, alg, plaintext)),
        Call::Decrypt { alg, ciphertext } => {
            refused!(decrypt_request(kms, Some(key_id), alg, ciphertext))
        }
        Call::ReEncryptTo { ciphertext } => refused!(
            kms.re_encrypt()
                .ciphertext_blob(Blob::new(ciphertext))
                .destination_key_id(key_id)
        ),
        Call::GenerateDataKey => refused!(
            kms.generate_data_key()
                .key_id(key_id)
                .key_spec(DataKeySpec::Aes256)
        ),
        Call::GenerateDataKeyPair { spec } => {
            refused!(
                kms.generate_data_key_pair()
                    .key_id(key_id)
                    .key_pair_spec(spec)
            )
        }
        Call::GenerateDataKeyPairWithoutPlaintext { spec } => refused!(
            kms.generate_data_key_pair_without_plaintext()
                .key_id(key_id)
                .key_pair_spec(spec)
        ),
        Call::Sign {
            msg,
            message_type,
            alg,
        } => refused!(sign_request(kms, key_id, msg, message_type, alg)),
        Call::Verify {
            msg,
            message_type,
            alg,
            sig,
        } => refused!(verify_request(kms, key_id, msg, message_type, alg, sig)),
        Call::GenerateMac { msg, alg } => refused!(generate_mac_request(kms, key_id, msg, alg)),
        Call::VerifyMac { msg, alg, mac } => {
            refused!(verify_mac_request(kms, key_id, msg, alg, mac))
        }
        Call::DeriveSharedSecret { peer_spki } => refused!(derive_request(kms, key_id, peer_spki)),
        Call::Encapsulate => refused!(encapsulate_request(kms, key_id)),
        Call::Decapsulate { ciphertext } => refused!(decapsulate_request(kms, key_id, ciphertext)),
        Call::GetPublicKey => {
            assert_eq!(dry_run, None, "GetPublicKey has no DryRun");
            refused!(without DryRun: kms.get_public_key().key_id(key_id))
        }
    };
}

/// `call` naming `key_id` fails with HTTP 400, `code` and exactly `message` (`""` for none).
async fn assert_refused(kms: &Client, key_id: &str, call: Call<'_>, code: &str, message: &str) {
    assert_fails(kms, key_id, call, None, code, Some(message)).await;
}

/// `call` naming `key_id` fails with HTTP 400 and `code`, whatever the message.
async fn assert_refused_code(kms: &Client, key_id: &str, call: Call<'_>, code: &str) {
    assert_fails(kms, key_id, call, None, code, None).await;
}

// ---------------------------------------------------------------------------------------------
// Sign and Verify

async fn sign(
    kms: &Client,
    key_id: &str,
    msg: &[u8],
    message_type: MessageType,
    alg: &SigningAlgorithmSpec,
) -> Vec<u8> {
    let request = sign_request(kms, key_id, msg, Some(message_type.clone()), alg);
    let out = succeeded(request.send().await, format!("Sign {alg} {message_type}"));
    assert_eq!(out.key_id(), Some(arn(key_id).as_str()));
    assert_eq!(out.signing_algorithm(), Some(alg));
    out.signature.expect("Signature").into_inner()
}

/// What trent's Verify must answer: that the signature is valid, or KMSInvalidSignatureException
/// and no message.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Verdict {
    Valid,
    Invalid,
}

/// trent's Verify of `sig` over `msg` (of `message_type`) with `alg` answers `verdict`.
async fn assert_verify(
    kms: &Client,
    key_id: &str,
    msg: &[u8],
    message_type: MessageType,
    alg: &SigningAlgorithmSpec,
    sig: &[u8],
    verdict: Verdict,
) {
    let request = verify_request(kms, key_id, msg, Some(message_type.clone()), alg, sig);
    if verdict == Verdict::Invalid {
        assert_error(request.send().await, INVALID_SIGNATURE, "");
        return;
    }
    let out = succeeded(request.send().await, format!("Verify {alg} {message_type}"));
    assert!(out.signature_valid());
    assert_eq!(out.key_id(), Some(arn(key_id).as_str()));
    assert_eq!(out.signing_algorithm(), Some(alg));
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
    let message_type = Some(message_type);
    let sign = Call::Sign {
        msg,
        message_type: message_type.clone(),
        alg,
    };
    let verify = Call::Verify {
        msg,
        message_type,
        alg,
        sig: &[0x30; 64],
    };
    for call in [sign, verify] {
        assert_refused(kms, key_id, call, code, message).await;
    }
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

/// Signs `input` (a message of `message_type`) with `alg`; checks the signature's shape and that
/// trent verifies it.
async fn sign_checked(
    kms: &Client,
    key_id: &str,
    spec: &KeySpec,
    input: &[u8],
    message_type: MessageType,
    alg: &SigningAlgorithmSpec,
) -> Vec<u8> {
    let sig = sign(kms, key_id, input, message_type.clone(), alg).await;
    check_signature_shape(spec, &sig);
    assert_verify(kms, key_id, input, message_type, alg, &sig, Verdict::Valid).await;
    sig
}

/// What a signing algorithm is checked with once it signed: Verify of each (input, type,
/// signature) answers its verdict, and Sign and Verify of each (input, type) are refused with
/// ValidationException and the message.
struct SigningChecks {
    verify: Vec<(Vec<u8>, MessageType, Vec<u8>, Verdict)>,
    refused: Vec<(Vec<u8>, MessageType, String)>,
}

/// Every signing algorithm of a new `spec` key with every message type it accepts: Sign, Verify
/// in trent, offline verification of each signature against the key's SubjectPublicKeyInfo, and
/// the refusals (another message, a damaged signature, a wrong message type or digest length,
/// `unlisted`, an algorithm the key does not list). Returns the key id and its public key.
async fn exercise_signing(
    kms: &Client,
    spec: &KeySpec,
    unlisted: SigningAlgorithmSpec,
) -> (String, Vec<u8>) {
    use MessageType::{Digest, ExternalMu, Raw};
    use Verdict::{Invalid, Valid};
    let (id, spki) = new_key_with_public_key(kms, spec, &KeyUsageType::SignVerify).await;
    let key_id = id.as_str();
    let raw_key = parse_spki(&spki).key;
    let algorithms = documented_algorithms(spec, &KeyUsageType::SignVerify).signing;
    for (n, alg) in algorithms.iter().enumerate() {
        let n = n as u64;
        let msg = test_bytes(100 + n, 200 + n as usize);
        let other = test_bytes(900 + n, 200 + n as usize);
        let name = alg.as_str();
        let wrong_type = |input: &[u8], message_type: MessageType| {
            let message = message_type_msg(&message_type, name);
            (input.to_vec(), message_type, message)
        };
        let wrong_length = |input: &[u8], message_type: MessageType| {
            (input.to_vec(), message_type, digest_length_msg(name))
        };
        let checks = match alg {
            SigningAlgorithmSpec::Ed25519Sha512 => {
                // Pure Ed25519 over RAW messages only.
                let sig = sign_checked(kms, key_id, spec, &msg, Raw, alg).await;
                assert_verifies_offline(spec, alg, &spki, &msg, &sig);
                let digest = digest_of(&digest::SHA512, &msg);
                SigningChecks {
                    verify: vec![
                        (other, Raw, sig.clone(), Invalid),
                        (msg, Raw, damaged(&sig), Invalid),
                    ],
                    refused: vec![wrong_type(&digest, Digest), wrong_type(&digest, ExternalMu)],
                }
            }
            SigningAlgorithmSpec::Ed25519PhSha512 => {
                // HashEdDSA over the 64-byte digest given: the message is hashed twice.
                let digest = digest_of(&digest::SHA512, &msg);
                let sig = sign_checked(kms, key_id, spec, &digest, Digest, alg).await;
                assert!(
                    ed25519ph_verifies(&digest, &sig, &raw_key),
                    "AWS-LC's Ed25519ph does not verify the signature over the digest as message"
                );
                assert!(
                    !ed25519ph_verifies(&msg, &sig, &raw_key),
                    "the ED25519_PH_SHA_512 signature is Ed25519ph of the original message: hashed once, not twice"
                );
                assert!(
                    signature::UnparsedPublicKey::new(&signature::ED25519, &spki)
                        .verify(&digest, &sig)
                        .is_err(),
                    "ED25519_PH_SHA_512 made a pure Ed25519 signature"
                );
                SigningChecks {
                    verify: vec![
                        (
                            digest_of(&digest::SHA512, &other),
                            Digest,
                            sig.clone(),
                            Invalid,
                        ),
                        (digest.clone(), Digest, damaged(&sig), Invalid),
                    ],
                    refused: vec![
                        wrong_type(&msg, Raw),
                        wrong_type(&digest, ExternalMu),
                        wrong_length(&digest[..32], Digest),
                        wrong_length(&longer(&digest), Digest),
                    ],
                }
            }
            SigningAlgorithmSpec::MlDsaShake256 => {
                // Pure ML-DSA (empty context) over RAW messages, and over μ given as EXTERNAL_MU.
                let mu = ml_dsa_mu(&raw_key, &msg);
                let sig = sign_checked(kms, key_id, spec, &msg, Raw, alg).await;
                let sig_mu = sign_checked(kms, key_id, spec, &mu, ExternalMu, alg).await;
                for sig in [&sig, &sig_mu] {
                    assert_verifies_offline(spec, alg, &spki, &msg, sig);
                }
                SigningChecks {
                    verify: vec![
                        (mu.clone(), ExternalMu, sig.clone(), Valid),
                        (msg.clone(), Raw, sig_mu.clone(), Valid),
                        (ml_dsa_mu(&raw_key, &other), ExternalMu, sig_mu, Invalid),
                        (other, Raw, sig.clone(), Invalid),
                        (msg, Raw, damaged(&sig), Invalid),
                    ],
                    refused: vec![
                        wrong_type(&mu, Digest),
                        wrong_length(&mu[..32], ExternalMu),
                        wrong_length(&longer(&mu), ExternalMu),
                    ],
                }
            }
            _ => {
                // RSA and ECDSA: RAW, or DIGEST with the hash of the message.
                let hash = hash_of(alg);
                let digest = digest_of(hash, &msg);
                let sig = sign_checked(kms, key_id, spec, &msg, Raw, alg).await;
                let sig_digest = sign_checked(kms, key_id, spec, &digest, Digest, alg).await;
                for sig in [&sig, &sig_digest] {
                    assert_verifies_offline(spec, alg, &spki, &msg, sig);
                }
                if name.starts_with("RSASSA_PKCS1") {
                    assert_eq!(sig, sig_digest, "PKCS #1 v1.5 signatures are deterministic");
                }
                SigningChecks {
                    verify: vec![
                        (digest.clone(), Digest, sig.clone(), Valid),
                        (msg.clone(), Raw, sig_digest, Valid),
                        (other.clone(), Raw, sig.clone(), Invalid),
                        (digest_of(hash, &other), Digest, sig.clone(), Invalid),
                        // The digest sent as a RAW message is another message.
                        (digest.clone(), Raw, sig.clone(), Invalid),
                        (msg.clone(), Raw, damaged(&sig), Invalid),
                        (msg, Raw, sig[..sig.len() - 1].to_vec(), Invalid),
                    ],
                    refused: vec![
                        wrong_length(&digest[1..], Digest),
                        wrong_length(&longer(&digest), Digest),
                        wrong_type(&[7u8; 64], ExternalMu),
                    ],
                }
            }
        };
        for (input, message_type, sig, verdict) in checks.verify {
            assert_verify(kms, key_id, &input, message_type, alg, &sig, verdict).await;
        }
        for (input, message_type, message) in checks.refused {
            assert_sign_verify_refused(
                kms,
                key_id,
                &input,
                message_type,
                alg,
                VALIDATION,
                &message,
            )
            .await;
        }
    }

    // MessageType defaults to RAW.
    let first = &algorithms[0];
    let msg = b"no message type";
    let out = sign_request(kms, key_id, msg, None, first)
        .send()
        .await
        .expect("Sign without MessageType");
    let sig = out.signature.unwrap().into_inner();
    assert_verify(kms, key_id, msg, Raw, first, &sig, Valid).await;
    let out = verify_request(kms, key_id, msg, None, first, &sig)
        .send()
        .await
        .expect("Verify without MessageType");
    assert!(out.signature_valid());

    // An algorithm the key does not list.
    let refused = algorithm_msg(unlisted.as_str(), spec.as_str());
    assert_sign_verify_refused(
        kms,
        key_id,
        b"unlisted",
        Raw,
        &unlisted,
        INVALID_KEY_USAGE,
        &refused,
    )
    .await;
    (id, spki)
}

// ---------------------------------------------------------------------------------------------
// the other operations

/// Encrypt with `alg`: the ciphertext.
async fn encrypt(
    kms: &Client,
    key_id: &str,
    alg: &EncryptionAlgorithmSpec,
    plaintext: &[u8],
) -> Vec<u8> {
    let request = encrypt_request(kms, key_id, Some(alg.clone()), plaintext);
    let what = format!("Encrypt {alg} of {} bytes", plaintext.len());
    let out = succeeded(request.send().await, what);
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
    let request = decrypt_request(kms, Some(key_id), Some(alg.clone()), ciphertext);
    let out = succeeded(request.send().await, format!("Decrypt {alg}"));
    assert_eq!(out.key_id(), Some(arn(key_id).as_str()));
    assert_eq!(out.encryption_algorithm(), Some(alg));
    assert_eq!(out.key_material_id(), None, "no KeyMaterialId for RSA");
    out.plaintext.expect("Plaintext").into_inner()
}

async fn generate_mac(kms: &Client, key_id: &str, msg: &[u8], alg: &MacAlgorithmSpec) -> Vec<u8> {
    let request = generate_mac_request(kms, key_id, msg, alg);
    let out = succeeded(request.send().await, format!("GenerateMac {alg}"));
    assert_eq!(out.key_id(), Some(arn(key_id).as_str()));
    assert_eq!(out.mac_algorithm(), Some(alg));
    out.mac.expect("Mac").into_inner()
}

/// trent's VerifyMac of `mac` over `msg` answers that it is valid.
async fn assert_mac_valid(
    kms: &Client,
    key_id: &str,
    msg: &[u8],
    alg: &MacAlgorithmSpec,
    mac: &[u8],
) {
    let request = verify_mac_request(kms, key_id, msg, alg, mac);
    let out = succeeded(request.send().await, format!("VerifyMac {alg}"));
    assert!(out.mac_valid());
    assert_eq!(out.key_id(), Some(arn(key_id).as_str()));
    assert_eq!(out.mac_algorithm(), Some(alg));
}

/// trent's VerifyMac of `mac` over `msg` fails with KMSInvalidMacException and no message.
async fn assert_mac_invalid(
    kms: &Client,
    key_id: &str,
    msg: &[u8],
    alg: &MacAlgorithmSpec,
    mac: &[u8],
) {
    let call = Call::VerifyMac { msg, alg, mac };
    assert_refused(kms, key_id, call, INVALID_MAC, "").await;
}

async fn derive(kms: &Client, key_id: &str, peer_spki: &[u8]) -> Vec<u8> {
    let out = derive_request(kms, key_id, peer_spki).send().await;
    let out = succeeded(out, "DeriveSharedSecret");
    assert_eq!(out.key_id(), Some(arn(key_id).as_str()));
    assert_eq!(
        out.key_agreement_algorithm(),
        Some(&KeyAgreementAlgorithmSpec::Ecdh)
    );
    assert_eq!(out.key_origin(), Some(&OriginType::AwsKms));
    assert!(out.ciphertext_for_recipient().is_none());
    out.shared_secret.expect("SharedSecret").into_inner()
}

/// Checks the KeyId and EncapsulationAlgorithm of an Encapsulate or Decapsulate answer; returns
/// its SharedSecret, of 32 bytes.
fn ml_kem_answer(
    key_id: &str,
    answer_key_id: Option<&str>,
    alg: Option<&EncapsulationAlgorithmSpec>,
    secret: Option<&Blob>,
) -> Vec<u8> {
    assert_eq!(answer_key_id, Some(arn(key_id).as_str()));
    assert_eq!(alg, Some(&EncapsulationAlgorithmSpec::MlKem));
    let secret = secret.expect("SharedSecret").as_ref().to_vec();
    assert_eq!(secret.len(), 32);
    secret
}

/// Encapsulate: (ciphertext, shared secret).
async fn encapsulate(kms: &Client, key_id: &str) -> (Vec<u8>, Vec<u8>) {
    let out = succeeded(encapsulate_request(kms, key_id).send().await, "Encapsulate");
    let secret = ml_kem_answer(
        key_id,
        out.key_id(),
        out.encapsulation_algorithm(),
        out.shared_secret(),
    );
    let ciphertext = out
        .shared_secret_ciphertext_blob()
        .expect("SharedSecretCiphertextBlob");
    (ciphertext.as_ref().to_vec(), secret)
}

/// Decapsulate of `ciphertext`: the shared secret.
async fn decapsulate(kms: &Client, key_id: &str, ciphertext: &[u8]) -> Vec<u8> {
    let out = decapsulate_request(kms, key_id, ciphertext).send().await;
    let out = succeeded(out, "Decapsulate");
    ml_kem_answer(
        key_id,
        out.key_id(),
        out.encapsulation_algorithm(),
        out.shared_secret(),
    )
}

/// The aws-lc-rs ECDH algorithm of a KEY_AGREEMENT key spec.
fn ecdh_curve(spec: &KeySpec) -> &'static agreement::Algorithm {
    match spec {
        KeySpec::EccNistP256 => &agreement::ECDH_P256,
        KeySpec::EccNistP384 => &agreement::ECDH_P384,
        KeySpec::EccNistP521 => &agreement::ECDH_P521,
        other => panic!("{other} is not a key agreement spec"),
    }
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

/// A CreateKey with these members (`None`: left out).
#[allow(deprecated)]
fn create_key_request(
    kms: &Client,
    key_spec: Option<KeySpec>,
    customer_master_key_spec: Option<CustomerMasterKeySpec>,
    key_usage: Option<KeyUsageType>,
) -> CreateKeyFluentBuilder {
    kms.create_key()
        .set_key_spec(key_spec)
        .set_customer_master_key_spec(customer_master_key_spec)
        .set_key_usage(key_usage)
}

#[tokio::test]
#[allow(deprecated)]
async fn create_key_spec_and_usage_rules() {
    use CustomerMasterKeySpec as C;
    use KeySpec as S;
    use KeyUsageType as U;
    let server = Server::dev();
    let kms = server.client();

    // (KeySpec, CustomerMasterKeySpec, KeyUsage) that CreateKey refuses with ValidationException,
    // and the message (`None`: not documented).
    let mut refused = Vec::new();
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
        let message = format!("KeyUsage {usage} is not compatible with KeySpec {spec}");
        refused.push(((Some(spec), None, Some(usage)), Some(message)));
    }
    let no_usage =
        "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.";
    for spec in [
        S::Rsa2048,
        S::EccNistP256,
        S::Hmac256,
        S::MlDsa44,
        S::MlKem768,
    ] {
        refused.push(((Some(spec), None, None), Some(no_usage.to_owned())));
    }
    let china = "KeySpec SM2 is only available in the China Regions.";
    refused.push((
        (Some(S::Sm2), None, Some(U::SignVerify)),
        Some(china.to_owned()),
    ));
    // KeySpec and its deprecated synonym together.
    let both = (
        Some(S::EccNistP256),
        Some(C::EccNistP256),
        Some(U::SignVerify),
    );
    refused.push((both, None));
    for ((key_spec, cmk_spec, key_usage), message) in refused {
        let result = create_key_request(&kms, key_spec, cmk_spec, key_usage)
            .send()
            .await;
        match message {
            Some(message) => assert_error(result, VALIDATION, &message),
            None => assert_code(result, VALIDATION),
        };
    }
    assert!(
        kms.list_keys().send().await.unwrap().keys().is_empty(),
        "a refused CreateKey created a key"
    );

    // CustomerMasterKeySpec alone is a synonym of KeySpec; SYMMETRIC_DEFAULT keeps its defaults,
    // and its CurrentKeyMaterialId. (KeySpec, CustomerMasterKeySpec, KeyUsage) sent, and the
    // spec and usage of the key made.
    let created = [
        (
            (None, Some(C::EccNistP384), Some(U::SignVerify)),
            S::EccNistP384,
            U::SignVerify,
        ),
        (
            (None, Some(C::Hmac384), Some(U::GenerateVerifyMac)),
            S::Hmac384,
            U::GenerateVerifyMac,
        ),
        (
            (Some(S::SymmetricDefault), None, None),
            S::SymmetricDefault,
            U::EncryptDecrypt,
        ),
    ];
    for ((key_spec, cmk_spec, key_usage), spec, usage) in created {
        let request = create_key_request(&kms, key_spec, cmk_spec, key_usage);
        let out = succeeded(request.send().await, format!("CreateKey of {spec}"));
        check_metadata(&out.key_metadata.unwrap(), &spec, &usage);
    }
    assert_eq!(kms.list_keys().send().await.unwrap().keys().len(), 3);
}

// ---------------------------------------------------------------------------------------------
// Sign and Verify

#[tokio::test]
async fn rsa_signing_every_algorithm_and_message_type() {
    let server = Server::dev();
    let kms = server.client();
    for spec in [KeySpec::Rsa2048, KeySpec::Rsa3072] {
        exercise_signing(&kms, &spec, SigningAlgorithmSpec::EcdsaSha256).await;
    }
}

#[tokio::test]
async fn ecdsa_signing_on_every_curve() {
    use MessageType::Raw;
    let server = Server::dev();
    let kms = server.client();
    let curves = [
        (KeySpec::EccNistP256, SigningAlgorithmSpec::EcdsaSha384),
        (KeySpec::EccNistP384, SigningAlgorithmSpec::EcdsaSha256),
        (KeySpec::EccNistP521, SigningAlgorithmSpec::EcdsaSha384),
        (KeySpec::EccSecgP256K1, SigningAlgorithmSpec::EcdsaSha512),
    ];
    let rsa_pss = SigningAlgorithmSpec::RsassaPssSha256;
    let mut p256 = None;
    for (spec, unlisted) in curves {
        let (id, spki) = exercise_signing(&kms, &spec, unlisted).await;
        // An RSA algorithm on an EC key.
        let refused = algorithm_msg(rsa_pss.as_str(), spec.as_str());
        assert_sign_verify_refused(&kms, &id, b"x", Raw, &rsa_pss, INVALID_KEY_USAGE, &refused)
            .await;
        if spec == KeySpec::EccNistP256 {
            p256 = Some((id, spki));
        }
    }

    // Message: 1..4096 bytes.
    let (id, spki) = p256.unwrap();
    let (spec, alg) = (KeySpec::EccNistP256, SigningAlgorithmSpec::EcdsaSha256);
    let long = test_bytes(4096, 4096);
    let sig = sign(&kms, &id, &long, Raw, &alg).await;
    assert_verify(&kms, &id, &long, Raw, &alg, &sig, Verdict::Valid).await;
    assert_verifies_offline(&spec, &alg, &spki, &long, &sig);
    let one = sign(&kms, &id, b"1", Raw, &alg).await;
    assert_verifies_offline(&spec, &alg, &spki, b"1", &one);
    for (message, error) in bad_length_messages() {
        assert_sign_verify_refused(&kms, &id, &message, Raw, &alg, VALIDATION, error).await;
    }
    // A signature that is not DER at all.
    assert_verify(
        &kms,
        &id,
        b"1",
        Raw,
        &alg,
        b"not a signature",
        Verdict::Invalid,
    )
    .await;
    // The SDK reads the code as the modeled error.
    assert_modeled_error!(
        verify_request(&kms, &id, b"1", Some(Raw), &alg, &damaged(&one)),
        VerifyError::KmsInvalidSignatureException(_)
    );
}

#[tokio::test]
async fn ed25519_pure_and_prehashed_signing() {
    use MessageType::{Digest, Raw};
    use SigningAlgorithmSpec::{Ed25519PhSha512, Ed25519Sha512};
    let server = Server::dev();
    let kms = server.client();
    let spec = KeySpec::EccNistEdwards25519;
    let (id, _) = exercise_signing(&kms, &spec, SigningAlgorithmSpec::EcdsaSha256).await;

    // The two algorithms do not accept each other's signatures: (signed as, verified as).
    let digest = digest_of(&digest::SHA512, b"pure or prehashed");
    let crossed = [
        ((Ed25519Sha512, Raw), (Ed25519PhSha512, Digest)),
        ((Ed25519PhSha512, Digest), (Ed25519Sha512, Raw)),
    ];
    for ((alg, message_type), (other_alg, other_type)) in crossed {
        let sig = sign(&kms, &id, &digest, message_type, &alg).await;
        assert_verify(
            &kms,
            &id,
            &digest,
            other_type,
            &other_alg,
            &sig,
            Verdict::Invalid,
        )
        .await;
    }
}

#[tokio::test]
async fn ml_dsa_signing_raw_and_external_mu() {
    let server = Server::dev();
    let kms = server.client();
    for spec in [KeySpec::MlDsa44, KeySpec::MlDsa65, KeySpec::MlDsa87] {
        exercise_signing(&kms, &spec, SigningAlgorithmSpec::Ed25519Sha512).await;
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
        let (id, spki) = new_key_with_public_key(&kms, &spec, &KeyUsageType::EncryptDecrypt).await;
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
                let ct = encrypt(&kms, &id, &alg, &pt).await;
                assert_eq!(
                    ct.len(),
                    modulus,
                    "{spec}: the ciphertext is the raw OAEP output"
                );
                assert_eq!(rsa_decrypt(&kms, &id, &alg, &ct).await, pt);
                let again = encrypt(&kms, &id, &alg, &pt).await;
                assert_ne!(again, ct, "OAEP is randomized");
            }
            let plaintext = vec![1; max + 1];
            let too_long = Call::Encrypt {
                alg: Some(alg.clone()),
                plaintext: &plaintext,
            };
            let refused = format!(
                "Algorithm {alg} and key spec {spec} cannot encrypt data larger than {max} bytes."
            );
            assert_refused(&kms, &id, too_long, VALIDATION, &refused).await;
            // Encrypted offline with the public key, decrypted by trent.
            let pt = test_bytes(max as u64 + 7, max);
            let mut buf = vec![0; offline.ciphertext_size()];
            let ct = offline.encrypt(oaep, &pt, &mut buf, None).unwrap().to_vec();
            assert_eq!(rsa_decrypt(&kms, &id, &alg, &ct).await, pt);
        }
        // Each algorithm's ciphertexts are not the other's.
        let ct = encrypt(&kms, &id, &RsaesOaepSha1, b"sha-1").await;
        let call = Call::Decrypt {
            alg: Some(RsaesOaepSha256),
            ciphertext: &ct,
        };
        assert_refused_code(&kms, &id, call, INVALID_CIPHERTEXT).await;
        keys.push(id);
    }

    let (rsa2048, rsa3072) = (&keys[0], &keys[1]);
    let ct = encrypt(&kms, rsa2048, &RsaesOaepSha256, b"rsa 2048").await;
    // EncryptionAlgorithm omitted means SYMMETRIC_DEFAULT, which RSA keys refuse.
    let refused_default = algorithm_msg("SYMMETRIC_DEFAULT", "RSA_2048");
    for call in [
        Call::Encrypt {
            alg: None,
            plaintext: b"x",
        },
        Call::Encrypt {
            alg: Some(EncryptionAlgorithmSpec::SymmetricDefault),
            plaintext: b"x",
        },
        Call::Decrypt {
            alg: None,
            ciphertext: &ct,
        },
    ] {
        assert_refused(&kms, rsa2048, call, INVALID_KEY_USAGE, &refused_default).await;
    }
    // No encryption context with RSA.
    let no_context = "EncryptionContext is not supported with asymmetric KMS keys.";
    let encrypt = encrypt_request(&kms, rsa2048, Some(RsaesOaepSha256), b"x");
    let result = encrypt.encryption_context("k", "v").send().await;
    assert_error(result, VALIDATION, no_context);
    let decrypt = decrypt_request(&kms, Some(rsa2048), Some(RsaesOaepSha256), &ct);
    let result = decrypt.encryption_context("k", "v").send().await;
    assert_error(result, VALIDATION, no_context);
    // Without KeyId the blob is read as a symmetric ciphertext.
    for alg in [None, Some(RsaesOaepSha256)] {
        let result = decrypt_request(&kms, None, alg, &ct).send().await;
        assert_code(result, INVALID_CIPHERTEXT);
    }
    // Ciphertexts that do not decrypt under the key.
    let undecryptable = [
        (rsa2048, test_bytes(5, 256)),
        (rsa2048, ct[..255].to_vec()),
        (rsa2048, damaged(&ct)),
        (rsa2048, longer(&ct)),
        (rsa3072, ct.clone()),
    ];
    for (key_id, ciphertext) in &undecryptable {
        let call = Call::Decrypt {
            alg: Some(RsaesOaepSha256),
            ciphertext,
        };
        assert_refused_code(&kms, key_id, call, INVALID_CIPHERTEXT).await;
    }
    // A symmetric key refuses the RSA algorithms.
    let sym = new_symmetric_key(&kms).await;
    let call = Call::Encrypt {
        alg: Some(RsaesOaepSha256),
        plaintext: b"x",
    };
    let refused = algorithm_msg("RSAES_OAEP_SHA_256", "SYMMETRIC_DEFAULT");
    assert_refused(&kms, &sym, call, INVALID_KEY_USAGE, &refused).await;
    // GenerateDataKey needs a symmetric key, not any ENCRYPT_DECRYPT key (the message is not
    // documented).
    assert_refused_code(&kms, rsa2048, Call::GenerateDataKey, INVALID_KEY_USAGE).await;

    // ReEncrypt from RSA to symmetric and back.
    let out = kms
        .re_encrypt()
        .ciphertext_blob(Blob::new(ct.clone()))
        .source_key_id(rsa2048)
        .source_encryption_algorithm(RsaesOaepSha256)
        .destination_key_id(&sym)
        .send()
        .await;
    let out = succeeded(out, "ReEncrypt RSA -> symmetric");
    assert_eq!(out.source_key_id(), Some(arn(rsa2048).as_str()));
    assert_eq!(out.key_id(), Some(arn(&sym).as_str()));
    assert_eq!(out.source_encryption_algorithm(), Some(&RsaesOaepSha256));
    assert_eq!(
        out.destination_encryption_algorithm(),
        Some(&EncryptionAlgorithmSpec::SymmetricDefault)
    );
    let sym_blob = out.ciphertext_blob.unwrap().into_inner();
    let back = decrypt_request(&kms, None, None, &sym_blob)
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
        .await;
    let out = succeeded(out, "ReEncrypt symmetric -> RSA");
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
        let no_public_key = no_public_key_msg(&id, spec.as_str());
        assert_refused(&kms, &id, Call::GetPublicKey, UNSUPPORTED, &no_public_key).await;
        let mac = generate_mac(&kms, &id, &msg, &alg).await;
        assert_eq!(mac.len(), len, "{spec}");
        assert_eq!(
            generate_mac(&kms, &id, &msg, &alg).await,
            mac,
            "a MAC is deterministic"
        );
        assert_ne!(generate_mac(&kms, &id, &other, &alg).await, mac);
        assert_mac_valid(&kms, &id, &msg, &alg, &mac).await;
        let invalid = [
            (&other, mac.clone()),
            (&msg, damaged(&mac)),
            (&msg, mac[..len - 1].to_vec()),
            (&msg, longer(&mac)),
        ];
        for (message, bad_mac) in invalid {
            assert_mac_invalid(&kms, &id, message, &alg, &bad_mac).await;
        }
        // An algorithm the key does not list.
        let refused = algorithm_msg(wrong.as_str(), spec.as_str());
        for call in [
            Call::GenerateMac {
                msg: &msg,
                alg: &wrong,
            },
            Call::VerifyMac {
                msg: &msg,
                alg: &wrong,
                mac: &mac,
            },
        ] {
            assert_refused(&kms, &id, call, INVALID_KEY_USAGE, &refused).await;
        }
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
    assert_modeled_error!(
        verify_mac_request(&kms, &second, &msg, &alg, &mac),
        VerifyMacError::KmsInvalidMacException(_)
    );

    // Message: 1..4096 bytes.
    for message in [test_bytes(7, 4096), b"1".to_vec()] {
        let message_mac = generate_mac(&kms, &id, &message, &alg).await;
        assert_mac_valid(&kms, &id, &message, &alg, &message_mac).await;
    }
    for (message, error) in bad_length_messages() {
        let generate = Call::GenerateMac {
            msg: &message,
            alg: &alg,
        };
        let verify = Call::VerifyMac {
            msg: &message,
            alg: &alg,
            mac: &mac,
        };
        for call in [generate, verify] {
            assert_refused(&kms, &id, call, VALIDATION, error).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// DeriveSharedSecret

#[tokio::test]
async fn ecdh_derive_shared_secret_on_every_curve() {
    let server = Server::dev();
    let kms = server.client();
    // (spec, secret length)
    let curves = [
        (KeySpec::EccNistP256, 32),
        (KeySpec::EccNistP384, 48),
        (KeySpec::EccNistP521, 66),
    ];
    let peers: Vec<_> = curves
        .iter()
        .map(|(spec, _)| peer(ecdh_curve(spec)))
        .collect();
    for (i, (spec, len)) in curves.into_iter().enumerate() {
        let curve = ecdh_curve(&spec);
        let (id, spki) = new_key_with_public_key(&kms, &spec, &KeyUsageType::KeyAgreement).await;
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

        // Anything but a DER SubjectPublicKeyInfo on the key's curve: AWS's answer (recorded) is
        // ValidationException with an empty message.
        let raw_point = parse_spki(peer_spki).key;
        let other_curve = &peers[(i + 1) % peers.len()].1;
        let refused = "";
        for bad in [
            raw_point,
            other_curve.clone(),
            b"garbage".to_vec(),
            peer_spki[..peer_spki.len() - 1].to_vec(),
            spki_of_rsa(),
        ] {
            let call = Call::DeriveSharedSecret { peer_spki: &bad };
            assert_refused(&kms, &id, call, VALIDATION, refused).await;
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
        let (id, spki) = new_key_with_public_key(&kms, &spec, &usage).await;
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
        for bad in [ct[..ct_len - 1].to_vec(), longer(&ct), vec![9]] {
            let call = Call::Decapsulate { ciphertext: &bad };
            assert_refused_code(&kms, &id, call, INVALID_CIPHERTEXT).await;
        }
        assert_modeled_error!(
            decapsulate_request(&kms, &id, &ct[1..]),
            DecapsulateError::InvalidCiphertextException(_)
        );
        keys.push((id, ct));
    }
    // Another level's ciphertext has another length.
    for (i, (id, _)) in keys.iter().enumerate() {
        let (_, other_ct) = &keys[(i + 1) % keys.len()];
        let call = Call::Decapsulate {
            ciphertext: other_ct,
        };
        assert_refused_code(&kms, id, call, INVALID_CIPHERTEXT).await;
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
    // The two operations take the same request and answer with the same members, but
    // PrivateKeyPlaintext: sends the request of `$operation` and checks the answer; gives
    // (PublicKey, PrivateKeyCiphertextBlob, the answer).
    macro_rules! generate {
        ($operation:ident, $what:literal) => {{
            let request = kms
                .$operation()
                .key_id(wrapping)
                .key_pair_spec(spec.clone())
                .encryption_context("purpose", "data key pair")
                .encryption_context("spec", &name);
            let out = succeeded(request.send().await, format!("{} {name}", $what));
            assert_eq!(out.key_id(), Some(arn(wrapping).as_str()));
            assert_eq!(out.key_pair_spec(), Some(&spec));
            assert_eq!(out.key_material_id(), Some(material));
            let public = out.public_key().expect("PublicKey").as_ref().to_vec();
            let sealed = out
                .private_key_ciphertext_blob()
                .expect("PrivateKeyCiphertextBlob");
            let sealed = sealed.as_ref().to_vec();
            (public, sealed, out)
        }};
    }
    let (public, sealed, plaintext) = if with_plaintext {
        let (public, sealed, out) = generate!(generate_data_key_pair, "GenerateDataKeyPair");
        assert!(out.ciphertext_for_recipient().is_none());
        let plaintext = out.private_key_plaintext.expect("PrivateKeyPlaintext");
        (public, sealed, Some(plaintext.into_inner()))
    } else {
        let (public, sealed, _) = generate!(
            generate_data_key_pair_without_plaintext,
            "GenerateDataKeyPairWithoutPlaintext"
        );
        (public, sealed, None)
    };
    check_spki(&name, &public);

    let request = decrypt_request(kms, None, None, &sealed)
        .encryption_context("spec", &name)
        .encryption_context("purpose", "data key pair");
    let what = format!("Decrypt of the {name} PrivateKeyCiphertextBlob");
    let out = succeeded(request.send().await, what);
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
    let without_context = decrypt_request(kms, None, None, &sealed).send().await;
    assert_code(without_context, INVALID_CIPHERTEXT);
    public
}

#[tokio::test]
async fn generate_data_key_pair_every_spec() {
    use DataKeyPairSpec as D;
    let server = Server::dev();
    let kms = server.client();
    let wrapping = new_symmetric_key(&kms).await;
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
    for call in [
        Call::GenerateDataKeyPair { spec: D::Sm2 },
        Call::GenerateDataKeyPairWithoutPlaintext { spec: D::Sm2 },
    ] {
        assert_refused(&kms, &wrapping, call, VALIDATION, china).await;
    }
}

// ---------------------------------------------------------------------------------------------
// usages and key states

#[tokio::test]
async fn every_operation_refuses_a_key_of_another_usage() {
    use DataKeyPairSpec::EccNistP256;
    let server = Server::dev();
    let kms = server.client();
    let keys = KeysOfEveryUsage::create(&kms, KeySpec::EccNistP256, KeySpec::MlKem512).await;
    let sym_blob = encrypt(
        &kms,
        &keys.sym,
        &EncryptionAlgorithmSpec::SymmetricDefault,
        b"symmetric",
    )
    .await;
    let (rsa_ciphertext, kem_ciphertext) = (test_bytes(1, 256), test_bytes(2, 768));
    let (ecdsa, hmac) = (
        SigningAlgorithmSpec::EcdsaSha256,
        MacAlgorithmSpec::HmacSha256,
    );
    let raw = || Some(MessageType::Raw);

    // The requests of each usage, which keys of every other usage refuse.
    let requests = [
        (
            "ENCRYPT_DECRYPT",
            vec![
                Call::Encrypt {
                    alg: None,
                    plaintext: b"x",
                },
                Call::Decrypt {
                    alg: Some(EncryptionAlgorithmSpec::RsaesOaepSha256),
                    ciphertext: &rsa_ciphertext,
                },
                // A symmetric ciphertext named with this key: the usage is checked first.
                Call::Decrypt {
                    alg: None,
                    ciphertext: &sym_blob,
                },
                Call::ReEncryptTo {
                    ciphertext: &sym_blob,
                },
                Call::GenerateDataKey,
                Call::GenerateDataKeyPair { spec: EccNistP256 },
                Call::GenerateDataKeyPairWithoutPlaintext { spec: EccNistP256 },
            ],
        ),
        (
            "SIGN_VERIFY",
            vec![
                Call::Sign {
                    msg: b"x",
                    message_type: raw(),
                    alg: &ecdsa,
                },
                Call::Verify {
                    msg: b"x",
                    message_type: raw(),
                    alg: &ecdsa,
                    sig: &[0x30; 70],
                },
            ],
        ),
        (
            "GENERATE_VERIFY_MAC",
            vec![
                Call::GenerateMac {
                    msg: b"x",
                    alg: &hmac,
                },
                Call::VerifyMac {
                    msg: b"x",
                    alg: &hmac,
                    mac: &[0; 32],
                },
            ],
        ),
        (
            "KEY_AGREEMENT",
            vec![Call::DeriveSharedSecret {
                peer_spki: &keys.peer_spki,
            }],
        ),
        (
            "ENCAPSULATE_DECAPSULATE",
            vec![
                Call::Encapsulate,
                Call::Decapsulate {
                    ciphertext: &kem_ciphertext,
                },
            ],
        ),
    ];
    let usages = [
        "ENCRYPT_DECRYPT",
        "ENCRYPT_DECRYPT",
        "SIGN_VERIFY",
        "GENERATE_VERIFY_MAC",
        "KEY_AGREEMENT",
        "ENCAPSULATE_DECAPSULATE",
    ];
    for (id, usage) in keys.all().into_iter().zip(usages) {
        for (calls_usage, calls) in &requests {
            if *calls_usage == usage {
                continue;
            }
            for call in calls {
                // An HMAC key is a symmetric key, as AWS counts them: Decrypt reads the blob as a
                // symmetric ciphertext, which names another key (IncorrectKeyException, AWS's
                // recorded answer) or is not one at all.
                if usage == "GENERATE_VERIFY_MAC"
                    && let Call::Decrypt { alg, .. } = call
                {
                    match alg {
                        None => {
                            assert_refused(&kms, id, call.clone(), INCORRECT_KEY, INCORRECT_KEY_MSG)
                                .await
                        }
                        Some(_) => {
                            assert_refused_code(&kms, id, call.clone(), INVALID_CIPHERTEXT).await
                        }
                    }
                    continue;
                }
                let refused = usage_msg(id, usage, call.operation());
                assert_refused(&kms, id, call.clone(), INVALID_KEY_USAGE, &refused).await;
            }
        }
    }

    // No public key for symmetric and HMAC keys.
    for (id, spec) in [(&keys.sym, "SYMMETRIC_DEFAULT"), (&keys.mac, "HMAC_256")] {
        let refused = no_public_key_msg(id, spec);
        assert_refused(&kms, id, Call::GetPublicKey, UNSUPPORTED, &refused).await;
    }
    // Data key pairs need a symmetric wrapping key, not any ENCRYPT_DECRYPT key.
    for call in [
        Call::GenerateDataKeyPair { spec: EccNistP256 },
        Call::GenerateDataKeyPairWithoutPlaintext { spec: EccNistP256 },
    ] {
        assert_refused_code(&kms, &keys.rsa, call, INVALID_KEY_USAGE).await;
    }
}

/// Every `(key, call)` of `calls` fails with `code` and the message `message_of(key)`; with
/// DryRun `dry_run` when it is set, which leaves GetPublicKey (it has no DryRun) out.
async fn assert_all_refused(
    kms: &Client,
    calls: &[(&String, Call<'_>)],
    dry_run: Option<bool>,
    code: &str,
    message_of: impl Fn(&str) -> String,
) {
    for (id, call) in calls {
        if dry_run.is_some() && matches!(call, Call::GetPublicKey) {
            continue;
        }
        let message = message_of(id.as_str());
        assert_fails(kms, id, call.clone(), dry_run, code, Some(&message)).await;
    }
}

#[tokio::test]
async fn disabled_and_pending_deletion_keys() {
    use EncryptionAlgorithmSpec::RsaesOaepSha256;
    let server = Server::dev();
    let kms = server.client();
    let keys = KeysOfEveryUsage::create(&kms, KeySpec::EccNistP384, KeySpec::MlKem768).await;
    let ecdsa = SigningAlgorithmSpec::EcdsaSha256;
    let hmac = MacAlgorithmSpec::HmacSha256;
    let msg: &[u8] = b"key states";
    let sig = sign(&kms, &keys.sign, msg, MessageType::Raw, &ecdsa).await;
    let mac = generate_mac(&kms, &keys.mac, msg, &hmac).await;
    let (kem_ct, kem_secret) = encapsulate(&kms, &keys.kem).await;
    let rsa_ct = encrypt(&kms, &keys.rsa, &RsaesOaepSha256, msg).await;
    let secret = derive(&kms, &keys.agree, &keys.peer_spki).await;

    // Every operation of every key.
    let data_key_pair = DataKeyPairSpec::EccNistP256;
    let calls = [
        (
            &keys.sign,
            Call::Sign {
                msg,
                message_type: None,
                alg: &ecdsa,
            },
        ),
        (
            &keys.sign,
            Call::Verify {
                msg,
                message_type: Some(MessageType::Raw),
                alg: &ecdsa,
                sig: &sig,
            },
        ),
        (&keys.mac, Call::GenerateMac { msg, alg: &hmac }),
        (
            &keys.mac,
            Call::VerifyMac {
                msg,
                alg: &hmac,
                mac: &mac,
            },
        ),
        (
            &keys.agree,
            Call::DeriveSharedSecret {
                peer_spki: &keys.peer_spki,
            },
        ),
        (&keys.kem, Call::Encapsulate),
        (
            &keys.kem,
            Call::Decapsulate {
                ciphertext: &kem_ct,
            },
        ),
        (
            &keys.rsa,
            Call::Encrypt {
                alg: Some(RsaesOaepSha256),
                plaintext: msg,
            },
        ),
        (
            &keys.rsa,
            Call::Decrypt {
                alg: Some(RsaesOaepSha256),
                ciphertext: &rsa_ct,
            },
        ),
        (
            &keys.sym,
            Call::GenerateDataKeyPair {
                spec: data_key_pair.clone(),
            },
        ),
        (
            &keys.sym,
            Call::GenerateDataKeyPairWithoutPlaintext {
                spec: data_key_pair,
            },
        ),
        (&keys.rsa, Call::GetPublicKey),
        (&keys.sign, Call::GetPublicKey),
        (&keys.agree, Call::GetPublicKey),
        (&keys.kem, Call::GetPublicKey),
    ];

    for id in keys.all() {
        kms.disable_key().key_id(id).send().await.unwrap();
    }
    assert_all_refused(&kms, &calls, None, DISABLED, disabled_msg).await;
    // The key state is checked before the DryRun answer.
    assert_all_refused(&kms, &calls, Some(true), DISABLED, disabled_msg).await;

    for id in keys.all() {
        kms.enable_key().key_id(id).send().await.unwrap();
    }
    assert_all_refused(&kms, &calls, Some(true), DRY_RUN, |_| {
        DRY_RUN_MSG.to_owned()
    })
    .await;
    // Enabled again, everything works as before.
    assert_verify(
        &kms,
        &keys.sign,
        msg,
        MessageType::Raw,
        &ecdsa,
        &sig,
        Verdict::Valid,
    )
    .await;
    assert_mac_valid(&kms, &keys.mac, msg, &hmac, &mac).await;
    assert_eq!(decapsulate(&kms, &keys.kem, &kem_ct).await, kem_secret);
    assert_eq!(
        rsa_decrypt(&kms, &keys.rsa, &RsaesOaepSha256, &rsa_ct).await,
        msg
    );
    assert_eq!(derive(&kms, &keys.agree, &keys.peer_spki).await, secret);

    for id in keys.all() {
        kms.schedule_key_deletion()
            .key_id(id)
            .pending_window_in_days(7)
            .send()
            .await
            .unwrap();
    }
    assert_all_refused(&kms, &calls, None, INVALID_STATE, pending_deletion_msg).await;
}

// ---------------------------------------------------------------------------------------------
// restart

#[tokio::test]
async fn asymmetric_and_hmac_keys_survive_a_restart() {
    use EncryptionAlgorithmSpec::RsaesOaepSha256;
    use KeySpec as S;
    use KeyUsageType as U;
    use SigningAlgorithmSpec as A;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut server = Server::on_dir(&dir);
    let kms = server.client();

    let signing = [
        (S::Rsa2048, A::RsassaPssSha256),
        (S::EccNistP256, A::EcdsaSha256),
        (S::EccSecgP256K1, A::EcdsaSha256),
        (S::EccNistEdwards25519, A::Ed25519Sha512),
        (S::MlDsa44, A::MlDsaShake256),
    ];
    let msg = b"signed before the restart";
    // (spec, algorithm, key id, public key, signature)
    let mut signed = Vec::new();
    for (spec, alg) in signing {
        let (id, spki) = new_key_with_public_key(&kms, &spec, &U::SignVerify).await;
        let sig = sign(&kms, &id, msg, MessageType::Raw, &alg).await;
        signed.push((spec, alg, id, spki, sig));
    }
    let (rsa, rsa_spki) = new_key_with_public_key(&kms, &S::Rsa2048, &U::EncryptDecrypt).await;
    let rsa_ct = encrypt(&kms, &rsa, &RsaesOaepSha256, msg).await;
    let hmacs = [
        (S::Hmac224, MacAlgorithmSpec::HmacSha224),
        (S::Hmac512, MacAlgorithmSpec::HmacSha512),
    ];
    let mut macs = Vec::new();
    for (spec, alg) in hmacs {
        let id = new_key(&kms, spec, U::GenerateVerifyMac).await;
        let mac = generate_mac(&kms, &id, msg, &alg).await;
        macs.push((id, alg, mac));
    }
    let (agree_key, agree_spki) =
        new_key_with_public_key(&kms, &S::EccNistP521, &U::KeyAgreement).await;
    let (peer_private, peer_spki) = peer(&agreement::ECDH_P521);
    let secret = derive(&kms, &agree_key, &peer_spki).await;
    let (kem_key, kem_spki) =
        new_key_with_public_key(&kms, &S::MlKem1024, &U::EncapsulateDecapsulate).await;
    let (kem_ct, kem_secret) = encapsulate(&kms, &kem_key).await;

    // (key id, spec, usage, public key) of every asymmetric key.
    let mut public_keys = vec![
        (rsa.clone(), S::Rsa2048, U::EncryptDecrypt, rsa_spki),
        (
            agree_key.clone(),
            S::EccNistP521,
            U::KeyAgreement,
            agree_spki.clone(),
        ),
        (
            kem_key.clone(),
            S::MlKem1024,
            U::EncapsulateDecapsulate,
            kem_spki,
        ),
    ];
    for (spec, _, id, spki, _) in &signed {
        public_keys.push((id.clone(), spec.clone(), U::SignVerify, spki.clone()));
    }
    let mut ids: Vec<String> = public_keys.iter().map(|k| k.0.clone()).collect();
    ids.extend(macs.iter().map(|m| m.0.clone()));
    let mut before = Vec::new();
    for id in &ids {
        before.push(describe(&kms, id).await);
    }

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
    for (id, spec, usage, spki) in &public_keys {
        assert_eq!(
            &public_key(&kms, id, spec, usage).await,
            spki,
            "{spec}: same public key after restart"
        );
    }
    for (spec, alg, id, spki, sig) in &signed {
        assert_verify(&kms, id, msg, MessageType::Raw, alg, sig, Verdict::Valid).await;
        let new_sig = sign(&kms, id, b"after", MessageType::Raw, alg).await;
        assert_verifies_offline(spec, alg, spki, b"after", &new_sig);
    }
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
    assert_eq!(derive(&kms, &agree_key, &peer_spki).await, secret);
    assert_eq!(
        agree_locally(&agreement::ECDH_P521, &peer_private, &agree_spki),
        secret
    );
    assert_eq!(decapsulate(&kms, &kem_key, &kem_ct).await, kem_secret);
}
