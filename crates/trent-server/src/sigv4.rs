//! AWS Signature Version 4, verified: the canonical request rebuilt from what arrived, the string
//! to sign, the derived signing key (cached per access key, date and region), and a constant-time
//! comparison. Errors carry AWS's names and wording.

use http::HeaderMap;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use time::{
    OffsetDateTime, PrimitiveDateTime, format_description::FormatItem, macros::format_description,
};
use trent_crypto::primitives::{constant_time_eq, hmac_sha256, sha256};
use trent_kms::{KmsError, Principal};
use zeroize::Zeroizing;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const SERVICE: &str = "kms";
/// Largest allowed difference between the request time and the server's.
pub const MAX_SKEW_SECONDS: i64 = 15 * 60;
/// Headers every signature must cover.
const REQUIRED_SIGNED_HEADERS: &[&str] = &["host", "x-amz-date", "x-amz-target"];
const AMZ_DATE: &[FormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

fn incomplete(msg: impl Into<String>) -> KmsError {
    KmsError::IncompleteSignature(msg.into())
}

/// Parse the Authorization header. A missing header is `MissingAuthenticationToken`.
pub fn parse_authorization(headers: &HeaderMap) -> Result<Authorization, KmsError> {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Err(KmsError::MissingAuthenticationToken(
            "Missing Authentication Token".into(),
        ));
    };
    let value = value
        .to_str()
        .map_err(|_| incomplete("Authorization header is not valid ASCII."))?;
    let (algorithm, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
    if algorithm != ALGORITHM {
        return Err(incomplete(format!(
            "Unsupported AWS 'algorithm': '{algorithm}'."
        )));
    }
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let mut missing = Vec::new();
    for (name, v) in [
        ("Credential", credential),
        ("Signature", signature),
        ("SignedHeaders", signed),
    ] {
        if v.is_none_or(str::is_empty) {
            missing.push(format!("Authorization header requires '{name}' parameter."));
        }
    }
    if !missing.is_empty() {
        return Err(incomplete(format!(
            "{} Authorization={value}",
            missing.join(" ")
        )));
    }
    let credential = credential.unwrap_or_default();
    let scope: Vec<&str> = credential.split('/').collect();
    if scope.len() != 5 || scope.iter().any(|s| s.is_empty()) || scope[4] != "aws4_request" {
        return Err(incomplete(format!(
            "Credential should be scoped to a valid region, not '{}'. ",
            scope.get(2).copied().unwrap_or_default()
        )));
    }
    if scope[3] != SERVICE {
        return Err(KmsError::InvalidSignature(format!(
            "Credential should be scoped to correct service: '{SERVICE}'. "
        )));
    }
    if scope[1].len() != 8 || !scope[1].bytes().all(|b| b.is_ascii_digit()) {
        return Err(incomplete(format!(
            "Credential date '{}' is not in the form YYYYMMDD.",
            scope[1]
        )));
    }
    let signed_headers: Vec<String> = signed
        .unwrap_or_default()
        .split(';')
        .map(str::to_string)
        .collect();
    // What decides the meaning of a request must be signed, or a signature could be replayed
    // as another operation within the skew window.
    for required in REQUIRED_SIGNED_HEADERS {
        if !signed_headers.iter().any(|h| h == required) {
            return Err(KmsError::InvalidSignature(format!(
                "The request signature must cover the '{required}' header; SignedHeaders={}",
                signed.unwrap_or_default()
            )));
        }
    }
    Ok(Authorization {
        access_key_id: scope[0].to_string(),
        date: scope[1].to_string(),
        region: scope[2].to_string(),
        service: scope[3].to_string(),
        signed_headers,
        signature: signature.unwrap_or_default().to_string(),
    })
}

fn format_amz(t: OffsetDateTime) -> String {
    t.format(AMZ_DATE).unwrap_or_default()
}

/// Check the request time against `now`: present, well-formed, the credential's date, and
/// within 15 minutes.
pub fn check_time(
    auth: &Authorization,
    headers: &HeaderMap,
    now: OffsetDateTime,
) -> Result<String, KmsError> {
    let Some(raw) = headers.get("x-amz-date").and_then(|v| v.to_str().ok()) else {
        return Err(incomplete(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        ));
    };
    let parsed = PrimitiveDateTime::parse(raw, AMZ_DATE)
        .map_err(|_| {
            incomplete(format!(
                "Date must be in ISO-8601 'basic format'. Got '{raw}'."
            ))
        })?
        .assume_utc();
    if raw.get(..8) != Some(auth.date.as_str()) {
        return Err(KmsError::InvalidSignature(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{raw}'.",
            auth.date,
            &raw[..8.min(raw.len())]
        )));
    }
    let skew = time::Duration::seconds(MAX_SKEW_SECONDS);
    if parsed < now - skew {
        return Err(KmsError::InvalidSignature(format!(
            "Signature expired: {raw} is now earlier than {} ({} - 15 min.)",
            format_amz(now - skew),
            format_amz(now)
        )));
    }
    if parsed > now + skew {
        return Err(KmsError::InvalidSignature(format!(
            "Signature not yet current: {raw} is still later than {} ({} + 15 min.)",
            format_amz(now + skew),
            format_amz(now)
        )));
    }
    Ok(raw.to_string())
}

/// URI-encode as SigV4 wants: unreserved characters kept, everything else %XX.
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    fn hex_val(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex_val(bytes[i + 1]), hex_val(bytes[i + 2]))
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn canonical_query(query: Option<&str>) -> String {
    let Some(q) = query.filter(|q| !q.is_empty()) else {
        return String::new();
    };
    let mut pairs: Vec<(String, String)> = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k), false),
                uri_encode(&percent_decode(v), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The canonical request of SigV4 for what arrived.
pub fn canonical_request(
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    signed_headers: &[String],
    payload_hash: &str,
) -> Result<String, KmsError> {
    let mut out = String::with_capacity(512);
    out.push_str(method);
    out.push('\n');
    out.push_str(&uri_encode(&percent_decode(path), true));
    out.push('\n');
    out.push_str(&canonical_query(query));
    out.push('\n');
    for name in signed_headers {
        let values: Vec<String> = headers
            .get_all(name.as_str())
            .iter()
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        if values.is_empty() && name != "host" {
            return Err(KmsError::InvalidSignature(format!(
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details. Signed header '{name}' is missing from the request."
            )));
        }
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    out.push_str(payload_hash);
    Ok(out)
}

/// (access key id, date, region): what a signing key is derived for.
type SigningScope = (String, String, String);

/// A derived signing key and the principal it was derived for.
type CachedSigningKey = (Arc<Principal>, Zeroizing<[u8; 32]>);

/// Caches derived signing keys: (access key id, date, region) -> key, tied to the principal it was
/// derived for so that a replaced secret never matches a stale entry.
#[derive(Default)]
pub struct SigningKeyCache {
    entries: Mutex<HashMap<SigningScope, CachedSigningKey>>,
}

const CACHE_LIMIT: usize = 10_000;

impl SigningKeyCache {
    fn signing_key(
        &self,
        principal: &Arc<Principal>,
        date: &str,
        region: &str,
    ) -> Zeroizing<[u8; 32]> {
        let id = (
            principal.access_key_id.clone(),
            date.to_string(),
            region.to_string(),
        );
        if let Some((p, k)) = self.entries.lock().get(&id)
            && Arc::ptr_eq(p, principal)
        {
            return k.clone();
        }
        let mut secret = Zeroizing::new(Vec::with_capacity(4 + principal.secret.len()));
        secret.extend_from_slice(b"AWS4");
        secret.extend_from_slice(principal.secret.as_bytes());
        let k_date = Zeroizing::new(hmac_sha256(&secret, date.as_bytes()));
        let k_region = Zeroizing::new(hmac_sha256(k_date.as_ref(), region.as_bytes()));
        let k_service = Zeroizing::new(hmac_sha256(k_region.as_ref(), SERVICE.as_bytes()));
        let key = Zeroizing::new(hmac_sha256(k_service.as_ref(), b"aws4_request"));
        let mut entries = self.entries.lock();
        if entries.len() >= CACHE_LIMIT {
            entries.clear();
        }
        entries.insert(id, (principal.clone(), key.clone()));
        key
    }

    /// Verify the request's signature with `principal`'s secret.
    #[allow(clippy::too_many_arguments)]
    pub fn verify(
        &self,
        principal: &Arc<Principal>,
        auth: &Authorization,
        amz_date: &str,
        method: &str,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), KmsError> {
        let body_hash = hex::encode(sha256(body));
        if let Some(claimed) = headers
            .get("x-amz-content-sha256")
            .and_then(|v| v.to_str().ok())
            && claimed != body_hash
            && claimed != "UNSIGNED-PAYLOAD"
        {
            return Err(KmsError::InvalidSignature(
                "The provided 'x-amz-content-sha256' header does not match what was computed."
                    .into(),
            ));
        }
        let canonical = canonical_request(
            method,
            path,
            query,
            headers,
            &auth.signed_headers,
            &body_hash,
        )?;
        let scope = format!(
            "{}/{}/{}/aws4_request",
            auth.date, auth.region, auth.service
        );
        let string_to_sign = format!(
            "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
            hex::encode(sha256(canonical.as_bytes()))
        );
        let key = self.signing_key(principal, &auth.date, &auth.region);
        let expected = hex::encode(hmac_sha256(key.as_ref(), string_to_sign.as_bytes()));
        if !constant_time_eq(expected.as_bytes(), auth.signature.as_bytes()) {
            return Err(KmsError::InvalidSignature(
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    // The example of the AWS SigV4 documentation's test suite ("get-vanilla"), adapted to kms.
    fn principal(secret: &str) -> Arc<Principal> {
        Arc::new(Principal {
            access_key_id: "AKIDEXAMPLE".into(),
            arn: "arn:aws:iam::111122223333:user/test".into(),
            account: "111122223333".into(),
            secret: trent_crypto::SecretString::new(secret),
            created_at: 0,
        })
    }

    fn signed_headers_map(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("example.amazonaws.com"));
        h.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_str(auth).unwrap(),
        );
        h
    }

    #[test]
    fn aws_test_suite_get_vanilla() {
        // From the AWS SigV4 test suite: GET / with host and x-amz-date, service "service".
        let canonical = canonical_request(
            "GET",
            "/",
            None,
            &signed_headers_map("x"),
            &["host".into(), "x-amz-date".into()],
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        )
        .unwrap();
        assert_eq!(
            canonical,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let k_date = hmac_sha256(b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", b"20150830");
        let k_region = hmac_sha256(&k_date, b"us-east-1");
        let k_service = hmac_sha256(&k_region, b"service");
        let key = hmac_sha256(&k_service, b"aws4_request");
        let sts = format!(
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n{}",
            hex::encode(sha256(canonical.as_bytes()))
        );
        assert_eq!(
            hex::encode(hmac_sha256(&key, sts.as_bytes())),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn parse_reports_what_is_missing() {
        let mut h = HeaderMap::new();
        assert!(matches!(
            parse_authorization(&h),
            Err(KmsError::MissingAuthenticationToken(_))
        ));
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKID/20261123/us-east-1/kms/aws4_request",
            ),
        );
        match parse_authorization(&h) {
            Err(KmsError::IncompleteSignature(m)) => {
                assert!(m.starts_with("Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter."), "{m}")
            }
            other => panic!("{other:?}"),
        }
        h.insert(http::header::AUTHORIZATION, HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=AKID/20261123/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00"));
        assert!(matches!(
            parse_authorization(&h),
            Err(KmsError::InvalidSignature(_))
        ));
    }

    #[test]
    fn the_target_date_and_host_must_be_signed() {
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=AKID/20261123/us-east-1/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"));
        match parse_authorization(&h) {
            Err(KmsError::InvalidSignature(m)) => assert_eq!(
                m,
                "The request signature must cover the 'x-amz-target' header; SignedHeaders=host;x-amz-date"
            ),
            other => panic!("{other:?}"),
        }
        h.insert(http::header::AUTHORIZATION, HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=AKID/2026/us-east-1/kms/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=00"));
        assert!(matches!(
            parse_authorization(&h),
            Err(KmsError::IncompleteSignature(_))
        ));
    }

    #[test]
    fn skew_window_is_fifteen_minutes() {
        let auth = Authorization {
            access_key_id: "A".into(),
            date: "20150830".into(),
            region: "us-east-1".into(),
            service: "kms".into(),
            signed_headers: vec![],
            signature: String::new(),
        };
        let h = signed_headers_map("x");
        let at = |s: &str| PrimitiveDateTime::parse(s, AMZ_DATE).unwrap().assume_utc();
        assert!(check_time(&auth, &h, at("20150830T125000Z")).is_ok());
        match check_time(&auth, &h, at("20150830T125200Z")) {
            Err(KmsError::InvalidSignature(m)) => assert_eq!(
                m,
                "Signature expired: 20150830T123600Z is now earlier than 20150830T123700Z (20150830T125200Z - 15 min.)"
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            check_time(&auth, &h, at("20150830T122000Z")),
            Err(KmsError::InvalidSignature(_))
        ));
    }

    #[test]
    fn verify_accepts_the_right_secret_only() {
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        let body = br#"{"KeyId":"k"}"#;
        let mut h = signed_headers_map("x");
        h.insert(
            "x-amz-target",
            HeaderValue::from_static("TrentService.DescribeKey"),
        );
        let signed = vec![
            "host".to_string(),
            "x-amz-date".into(),
            "x-amz-target".into(),
        ];
        let canonical =
            canonical_request("POST", "/", None, &h, &signed, &hex::encode(sha256(body))).unwrap();
        let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), b"20150830");
        let key = hmac_sha256(
            &hmac_sha256(&hmac_sha256(&k_date, b"us-east-1"), b"kms"),
            b"aws4_request",
        );
        let sts = format!(
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/kms/aws4_request\n{}",
            hex::encode(sha256(canonical.as_bytes()))
        );
        let auth = Authorization {
            access_key_id: "AKIDEXAMPLE".into(),
            date: "20150830".into(),
            region: "us-east-1".into(),
            service: "kms".into(),
            signed_headers: signed,
            signature: hex::encode(hmac_sha256(&key, sts.as_bytes())),
        };
        let cache = SigningKeyCache::default();
        let good = principal(secret);
        let verify = |p: &Arc<Principal>, body: &[u8]| {
            cache.verify(p, &auth, "20150830T123600Z", "POST", "/", None, &h, body)
        };
        assert!(verify(&good, body).is_ok());
        // Again, with the signing key now taken from the cache.
        assert!(verify(&good, body).is_ok());
        assert!(verify(&principal("wrong"), body).is_err());
        assert!(verify(&good, b"{}").is_err());
    }
}
