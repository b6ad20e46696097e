//! Model constraints checked with AWS's (Coral) wording:
//! `1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024`.
//!
//! Member paths are lowerCamelCase; values of sensitive members are left out.
//!
//! An enum constraint lists the allowed values in AWS's order, which is not the model's: see
//! [`aws_order`].

use crate::error::KmsError;

/// Collects constraint violations of one request.
#[derive(Default)]
pub struct Violations {
    errors: Vec<String>,
}

fn camel(path: &str) -> String {
    // Paths are written PascalCase, as the members are; the message uses lowerCamelCase for each
    // segment ("Tags.1.member.TagKey" -> "tags.1.member.tagKey").
    path.split('.')
        .map(|seg| {
            let mut c = seg.chars();
            match c.next() {
                Some(f) => f.to_lowercase().chain(c).collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, value: Option<&str>, path: &str, constraint: &str) {
        let value = match value {
            Some(v) => format!("Value '{v}' at"),
            None => "Value at".to_string(),
        };
        self.errors.push(format!(
            "{value} '{}' failed to satisfy constraint: {constraint}",
            camel(path)
        ));
    }

    /// A member whose value (left out) breaks `constraint`.
    pub fn constraint(&mut self, path: &str, constraint: &str) -> &mut Self {
        self.push(None, path, constraint);
        self
    }

    /// A required member that is missing.
    pub fn required<T>(&mut self, path: &str, v: &Option<T>) -> &mut Self {
        if v.is_none() {
            self.errors.push(format!(
                "Value null at '{}' failed to satisfy constraint: Member must not be null",
                camel(path)
            ));
        }
        self
    }

    /// String length in characters, as the model counts.
    pub fn str_len(&mut self, path: &str, v: Option<&str>, min: usize, max: usize) -> &mut Self {
        if let Some(s) = v {
            let n = s.chars().count();
            if n < min {
                self.push(
                    Some(s),
                    path,
                    &format!("Member must have length greater than or equal to {min}"),
                );
            } else if n > max {
                self.push(
                    Some(s),
                    path,
                    &format!("Member must have length less than or equal to {max}"),
                );
            }
        }
        self
    }

    /// String length of a sensitive member (`len` characters), its value never shown.
    pub fn str_len_hidden(&mut self, path: &str, len: usize, min: usize, max: usize) -> &mut Self {
        if len < min {
            self.push(
                None,
                path,
                &format!("Member must have length greater than or equal to {min}"),
            );
        } else if len > max {
            self.push(
                None,
                path,
                &format!("Member must have length less than or equal to {max}"),
            );
        }
        self
    }

    /// Blob length in bytes; blob values are never shown.
    pub fn blob_len(&mut self, path: &str, v: Option<&[u8]>, min: usize, max: usize) -> &mut Self {
        if let Some(b) = v {
            if b.len() < min {
                self.push(
                    None,
                    path,
                    &format!("Member must have length greater than or equal to {min}"),
                );
            } else if b.len() > max {
                self.push(
                    None,
                    path,
                    &format!("Member must have length less than or equal to {max}"),
                );
            }
        }
        self
    }

    /// List length. The values are never shown: lists such as GrantTokens carry secrets.
    pub fn list_len<T>(
        &mut self,
        path: &str,
        v: Option<&[T]>,
        min: usize,
        max: usize,
    ) -> &mut Self {
        if let Some(items) = v {
            if items.len() < min {
                self.push(
                    None,
                    path,
                    &format!("Member must have length greater than or equal to {min}"),
                );
            } else if items.len() > max {
                self.push(
                    None,
                    path,
                    &format!("Member must have length less than or equal to {max}"),
                );
            }
        }
        self
    }

    /// Integer range.
    pub fn range(&mut self, path: &str, v: Option<i64>, min: i64, max: i64) -> &mut Self {
        if let Some(n) = v {
            let shown = n.to_string();
            if n < min {
                self.push(
                    Some(&shown),
                    path,
                    &format!("Member must have value greater than or equal to {min}"),
                );
            } else if n > max {
                self.push(
                    Some(&shown),
                    path,
                    &format!("Member must have value less than or equal to {max}"),
                );
            }
        }
        self
    }

    /// Enumerated string: `allowed` in the model's order, listed in AWS's ([`aws_order`]).
    pub fn one_of(&mut self, path: &str, v: Option<&str>, allowed: &[&str]) -> &mut Self {
        self.one_of_listed(path, v, allowed, &aws_order(allowed))
    }

    /// Enumerated string whose values AWS lists in an order of its own (`listed`), which
    /// [`aws_order`] does not give.
    pub fn one_of_listed(
        &mut self,
        path: &str,
        v: Option<&str>,
        allowed: &[&str],
        listed: &[&str],
    ) -> &mut Self {
        if let Some(s) = v
            && !allowed.contains(&s)
        {
            self.push(
                Some(s),
                path,
                &format!(
                    "Member must satisfy enum value set: [{}]",
                    listed.join(", ")
                ),
            );
        }
        self
    }

    /// A pattern, checked by `ok`, shown as `pattern`.
    pub fn pattern(
        &mut self,
        path: &str,
        v: Option<&str>,
        ok: impl Fn(&str) -> bool,
        pattern: &str,
    ) -> &mut Self {
        if let Some(s) = v
            && !ok(s)
        {
            self.push(
                Some(s),
                path,
                &format!("Member must satisfy regular expression pattern: {pattern}"),
            );
        }
        self
    }

    /// The collected violations as one `ValidationException`, or `Ok` if there are none.
    pub fn finish(&mut self) -> Result<(), KmsError> {
        match self.errors.len() {
            0 => Ok(()),
            1 => Err(KmsError::Validation(format!(
                "1 validation error detected: {}",
                self.errors[0]
            ))),
            n => Err(KmsError::Validation(format!(
                "{n} validation errors detected: {}",
                self.errors.join("; ")
            ))),
        }
    }
}

/// Values of the model's enums that only the China Regions offer: AWS's messages elsewhere do not
/// list them (its keySpec answer in us-east-1 has no SM2).
const CHINA_ONLY: &[&str] = &["SM2", "SM2PKE", "SM2DSA"];

/// The values of an enum (given in the model's order) in the order AWS lists them in a
/// validation message, as far as AWS's recorded answers show it: the order of a hash table of the
/// names (not exactly Java 8's `HashSet`, which spreads the hash and keeps a bucket in insertion
/// order; see docs/key-specs.md). Buckets by
/// `String.hashCode()` modulo the table size (the power of two a `HashSet` built from `n`
/// values has: at least 16 and at least `n / 0.75 + 1`), in ascending order; within a bucket,
/// the value later in the model first; values only the China Regions offer are left out. This
/// gives AWS's recorded answers exactly: keySpec's twelve values
/// (`[RSA_2048, ECC_NIST_P384, ECC_NIST_P256, ECC_NIST_P521, HMAC_384, RSA_3072, ...]`) and
/// macAlgorithm's (`[HMAC_SHA_384, HMAC_SHA_256, HMAC_SHA_224, HMAC_SHA_512]`), neither of which
/// is in the model's order. (keyUsage's recorded answer follows neither: see `KEY_USAGES`.)
pub fn aws_order<'a>(model: &[&'a str]) -> Vec<&'a str> {
    let values: Vec<&'a str> = model
        .iter()
        .copied()
        .filter(|v| !CHINA_ONLY.contains(v))
        .collect();
    let wanted = (values.len() as f32 / 0.75) as usize + 1;
    let buckets = wanted.max(16).next_power_of_two();
    let java_hash = |s: &str| {
        s.encode_utf16()
            .fold(0u32, |h, c| h.wrapping_mul(31).wrapping_add(u32::from(c)))
    };
    let mut keyed: Vec<(usize, usize, &'a str)> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (java_hash(v) as usize & (buckets - 1), usize::MAX - i, *v))
        .collect();
    keyed.sort_unstable();
    keyed.into_iter().map(|(_, _, v)| v).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(r: Result<(), KmsError>) -> String {
        match r {
            Err(KmsError::Validation(m)) => m,
            other => panic!("expected ValidationException, got {other:?}"),
        }
    }

    #[test]
    fn coral_wording_for_a_range() {
        assert_eq!(
            msg(Violations::new()
                .range("NumberOfBytes", Some(1025), 1, 1024)
                .finish()),
            "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"
        );
    }

    #[test]
    fn sensitive_blobs_hide_their_value() {
        assert_eq!(
            msg(Violations::new()
                .blob_len("Plaintext", Some(&[0u8; 4097]), 1, 4096)
                .finish()),
            "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096"
        );
    }

    #[test]
    fn several_errors_are_counted_and_joined() {
        let m = msg(Violations::new()
            .one_of(
                "KeyUsage",
                Some("RANDOM"),
                &["ENCRYPT_DECRYPT", "SIGN_VERIFY"],
            )
            .required::<String>("KeyId", &None)
            .finish());
        assert_eq!(
            m,
            "2 validation errors detected: Value 'RANDOM' at 'keyUsage' failed to satisfy constraint: Member must satisfy enum value set: [ENCRYPT_DECRYPT, SIGN_VERIFY]; Value null at 'keyId' failed to satisfy constraint: Member must not be null"
        );
    }

    #[test]
    fn nested_paths_are_camel_cased() {
        let m = msg(Violations::new()
            .str_len("Tags.1.member.TagKey", Some(""), 1, 128)
            .finish());
        assert_eq!(
            m,
            "1 validation error detected: Value '' at 'tags.1.member.tagKey' failed to satisfy constraint: Member must have length greater than or equal to 1"
        );
    }

    #[test]
    fn enums_are_listed_in_the_order_aws_lists_them() {
        // AWS's recorded answers (keySpec before SM2 and the newer specs were offered).
        let key_specs_2023 = [
            "RSA_2048",
            "RSA_3072",
            "RSA_4096",
            "ECC_NIST_P256",
            "ECC_NIST_P384",
            "ECC_NIST_P521",
            "ECC_SECG_P256K1",
            "SYMMETRIC_DEFAULT",
            "HMAC_224",
            "HMAC_256",
            "HMAC_384",
            "HMAC_512",
            "SM2",
        ];
        assert_eq!(
            aws_order(&key_specs_2023).join(", "),
            "RSA_2048, ECC_NIST_P384, ECC_NIST_P256, ECC_NIST_P521, HMAC_384, RSA_3072, ECC_SECG_P256K1, RSA_4096, SYMMETRIC_DEFAULT, HMAC_256, HMAC_224, HMAC_512"
        );
        assert_eq!(
            aws_order(&[
                "HMAC_SHA_224",
                "HMAC_SHA_256",
                "HMAC_SHA_384",
                "HMAC_SHA_512"
            ]),
            [
                "HMAC_SHA_384",
                "HMAC_SHA_256",
                "HMAC_SHA_224",
                "HMAC_SHA_512"
            ]
        );
        assert_eq!(aws_order(&["AES_256", "AES_128"]), ["AES_256", "AES_128"]);
    }

    #[test]
    fn nothing_wrong_is_ok() {
        assert!(
            Violations::new()
                .range("Limit", Some(5), 1, 10)
                .str_len("KeyId", Some("k"), 1, 2048)
                .finish()
                .is_ok()
        );
    }
}
