//! Key specs as AWS names them, and what each allows: usages, algorithms, key-pair specs.
//! The one table mapping AWS's names to trent-crypto's types.

use trent_crypto::asymmetric::{AsymmetricSpec, Hash, MessageKind, OaepHash, SigningScheme};
use trent_crypto::mac::MacSpec;

/// What kind of key a KeySpec names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Symmetric,
    Asymmetric(AsymmetricSpec),
    Hmac(MacSpec),
}

pub const ENCRYPT_DECRYPT: &str = "ENCRYPT_DECRYPT";
pub const SIGN_VERIFY: &str = "SIGN_VERIFY";
pub const GENERATE_VERIFY_MAC: &str = "GENERATE_VERIFY_MAC";
pub const KEY_AGREEMENT: &str = "KEY_AGREEMENT";
pub const ENCAPSULATE_DECAPSULATE: &str = "ENCAPSULATE_DECAPSULATE";

/// The key kind of a KeySpec (or KeyPairSpec) name; `None` for SM2 and unknown names.
pub fn kind(spec: &str) -> Option<KeyKind> {
    use AsymmetricSpec as A;
    Some(match spec {
        "SYMMETRIC_DEFAULT" => KeyKind::Symmetric,
        "RSA_2048" => KeyKind::Asymmetric(A::Rsa2048),
        "RSA_3072" => KeyKind::Asymmetric(A::Rsa3072),
        "RSA_4096" => KeyKind::Asymmetric(A::Rsa4096),
        "ECC_NIST_P256" => KeyKind::Asymmetric(A::EccNistP256),
        "ECC_NIST_P384" => KeyKind::Asymmetric(A::EccNistP384),
        "ECC_NIST_P521" => KeyKind::Asymmetric(A::EccNistP521),
        "ECC_SECG_P256K1" => KeyKind::Asymmetric(A::EccSecgP256k1),
        "ECC_NIST_EDWARDS25519" => KeyKind::Asymmetric(A::EccNistEdwards25519),
        "ML_DSA_44" => KeyKind::Asymmetric(A::MlDsa44),
        "ML_DSA_65" => KeyKind::Asymmetric(A::MlDsa65),
        "ML_DSA_87" => KeyKind::Asymmetric(A::MlDsa87),
        "ML_KEM_512" => KeyKind::Asymmetric(A::MlKem512),
        "ML_KEM_768" => KeyKind::Asymmetric(A::MlKem768),
        "ML_KEM_1024" => KeyKind::Asymmetric(A::MlKem1024),
        "HMAC_224" => KeyKind::Hmac(MacSpec::Hmac224),
        "HMAC_256" => KeyKind::Hmac(MacSpec::Hmac256),
        "HMAC_384" => KeyKind::Hmac(MacSpec::Hmac384),
        "HMAC_512" => KeyKind::Hmac(MacSpec::Hmac512),
        _ => return None,
    })
}

/// The usages CreateKey accepts for a spec.
pub fn usages(spec: &str) -> &'static [&'static str] {
    match spec {
        "SYMMETRIC_DEFAULT" => &[ENCRYPT_DECRYPT],
        "RSA_2048" | "RSA_3072" | "RSA_4096" => &[ENCRYPT_DECRYPT, SIGN_VERIFY],
        "ECC_NIST_P256" | "ECC_NIST_P384" | "ECC_NIST_P521" => &[SIGN_VERIFY, KEY_AGREEMENT],
        "ECC_SECG_P256K1" | "ECC_NIST_EDWARDS25519" | "ML_DSA_44" | "ML_DSA_65" | "ML_DSA_87" => {
            &[SIGN_VERIFY]
        }
        "ML_KEM_512" | "ML_KEM_768" | "ML_KEM_1024" => &[ENCAPSULATE_DECAPSULATE],
        "HMAC_224" | "HMAC_256" | "HMAC_384" | "HMAC_512" => &[GENERATE_VERIFY_MAC],
        _ => &[],
    }
}

/// The algorithm lists KeyMetadata and GetPublicKey show for a key.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Algorithms {
    pub encryption: Option<Vec<String>>,
    pub signing: Option<Vec<String>>,
    pub mac: Option<Vec<String>>,
    pub key_agreement: Option<Vec<String>>,
    pub encapsulation: Option<Vec<String>>,
}

fn list(names: &[&str]) -> Option<Vec<String>> {
    Some(names.iter().map(|s| s.to_string()).collect())
}

pub const RSA_SIGNING: &[&str] = &[
    "RSASSA_PKCS1_V1_5_SHA_256",
    "RSASSA_PKCS1_V1_5_SHA_384",
    "RSASSA_PKCS1_V1_5_SHA_512",
    "RSASSA_PSS_SHA_256",
    "RSASSA_PSS_SHA_384",
    "RSASSA_PSS_SHA_512",
];
pub const RSA_ENCRYPTION: &[&str] = &["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"];

/// The signing algorithms a SIGN_VERIFY key of `spec` lists.
pub fn signing_algorithms(spec: &str) -> &'static [&'static str] {
    match spec {
        "RSA_2048" | "RSA_3072" | "RSA_4096" => RSA_SIGNING,
        "ECC_NIST_P256" | "ECC_SECG_P256K1" => &["ECDSA_SHA_256"],
        "ECC_NIST_P384" => &["ECDSA_SHA_384"],
        "ECC_NIST_P521" => &["ECDSA_SHA_512"],
        "ECC_NIST_EDWARDS25519" => &["ED25519_SHA_512", "ED25519_PH_SHA_512"],
        "ML_DSA_44" | "ML_DSA_65" | "ML_DSA_87" => &["ML_DSA_SHAKE_256"],
        _ => &[],
    }
}

/// The MAC algorithm of an HMAC spec.
pub fn mac_algorithm(spec: MacSpec) -> &'static str {
    match spec {
        MacSpec::Hmac224 => "HMAC_SHA_224",
        MacSpec::Hmac256 => "HMAC_SHA_256",
        MacSpec::Hmac384 => "HMAC_SHA_384",
        MacSpec::Hmac512 => "HMAC_SHA_512",
    }
}

/// The algorithm lists of a key of `spec` and `usage`.
pub fn algorithms(spec: &str, usage: &str) -> Algorithms {
    let mut out = Algorithms::default();
    match (kind(spec), usage) {
        (Some(KeyKind::Symmetric), _) => out.encryption = list(&["SYMMETRIC_DEFAULT"]),
        (Some(KeyKind::Hmac(m)), _) => out.mac = list(&[mac_algorithm(m)]),
        (Some(KeyKind::Asymmetric(_)), ENCRYPT_DECRYPT) => out.encryption = list(RSA_ENCRYPTION),
        (Some(KeyKind::Asymmetric(_)), SIGN_VERIFY) => out.signing = list(signing_algorithms(spec)),
        (Some(KeyKind::Asymmetric(_)), KEY_AGREEMENT) => out.key_agreement = list(&["ECDH"]),
        (Some(KeyKind::Asymmetric(_)), ENCAPSULATE_DECAPSULATE) => {
            out.encapsulation = list(&["ML_KEM"])
        }
        _ => {}
    }
    out
}

/// The signature scheme of a signing algorithm name.
pub fn signing_scheme(algorithm: &str) -> Option<SigningScheme> {
    Some(match algorithm {
        "RSASSA_PKCS1_V1_5_SHA_256" => SigningScheme::RsaPkcs1(Hash::Sha256),
        "RSASSA_PKCS1_V1_5_SHA_384" => SigningScheme::RsaPkcs1(Hash::Sha384),
        "RSASSA_PKCS1_V1_5_SHA_512" => SigningScheme::RsaPkcs1(Hash::Sha512),
        "RSASSA_PSS_SHA_256" => SigningScheme::RsaPss(Hash::Sha256),
        "RSASSA_PSS_SHA_384" => SigningScheme::RsaPss(Hash::Sha384),
        "RSASSA_PSS_SHA_512" => SigningScheme::RsaPss(Hash::Sha512),
        "ECDSA_SHA_256" => SigningScheme::Ecdsa(Hash::Sha256),
        "ECDSA_SHA_384" => SigningScheme::Ecdsa(Hash::Sha384),
        "ECDSA_SHA_512" => SigningScheme::Ecdsa(Hash::Sha512),
        "ED25519_SHA_512" => SigningScheme::Ed25519,
        "ED25519_PH_SHA_512" => SigningScheme::Ed25519ph,
        "ML_DSA_SHAKE_256" => SigningScheme::MlDsa,
        _ => return None,
    })
}

pub fn message_kind(name: &str) -> MessageKind {
    match name {
        "DIGEST" => MessageKind::Digest,
        "EXTERNAL_MU" => MessageKind::ExternalMu,
        _ => MessageKind::Raw,
    }
}

/// The name of an OAEP variant: the one mapping between the two.
pub fn oaep_name(hash: OaepHash) -> &'static str {
    match hash {
        OaepHash::Sha1 => "RSAES_OAEP_SHA_1",
        OaepHash::Sha256 => "RSAES_OAEP_SHA_256",
    }
}

/// The OAEP hash of an RSA encryption algorithm name.
pub fn oaep_hash(algorithm: &str) -> Option<OaepHash> {
    [OaepHash::Sha1, OaepHash::Sha256]
        .into_iter()
        .find(|h| oaep_name(*h) == algorithm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spec_but_sm2_has_a_kind_and_usages() {
        for spec in crate::ops::KEY_SPECS {
            if *spec == "SM2" {
                assert!(kind(spec).is_none());
                continue;
            }
            assert!(kind(spec).is_some(), "{spec}");
            assert!(!usages(spec).is_empty(), "{spec}");
            for usage in usages(spec) {
                let a = algorithms(spec, usage);
                let lists = [
                    &a.encryption,
                    &a.signing,
                    &a.mac,
                    &a.key_agreement,
                    &a.encapsulation,
                ];
                assert_eq!(
                    lists.iter().filter(|l| l.is_some()).count(),
                    1,
                    "{spec} {usage}"
                );
            }
        }
    }

    #[test]
    fn every_listed_signing_algorithm_has_a_scheme() {
        for spec in crate::ops::KEY_SPECS {
            for alg in signing_algorithms(spec) {
                assert!(signing_scheme(alg).is_some(), "{alg}");
            }
        }
    }
}
