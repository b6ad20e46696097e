//! `trent_kms::policy::parse` never panics, what it accepts or refuses is consistent, and deciding
//! a request against whatever it accepts never panics either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;
use trent_kms::KmsError;
use trent_kms::access::{Question, decide};
use trent_kms::policy::{self, Kind, MAX_POLICY_BYTES};

/// Decide a few requests against `p` as a key policy and as an identity policy.
fn decide_some(p: &policy::Policy, text: &str) {
    // Condition values from the input itself, so conditions meet strings the fuzzer chose.
    let fuzzed: String = text.chars().take(64).collect();
    let context: HashMap<String, Vec<String>> = [
        ("kms:encryptioncontext:dept", vec![fuzzed.clone()]),
        (
            "kms:encryptioncontextkeys",
            vec!["dept".into(), fuzzed.clone()],
        ),
        ("aws:sourceip", vec!["192.0.2.7".into()]),
        ("aws:currenttime", vec!["2026-11-23T12:00:00Z".into()]),
        ("kms:schedulekeydeletionpendingwindowindays", vec![fuzzed]),
        ("aws:securetransport", vec!["true".into()]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    for principal in [
        "arn:aws:iam::111122223333:user/alice",
        "arn:aws:iam::111122223333:root",
        "arn:aws:iam::444455556666:role/app",
    ] {
        let account = &principal[13..25];
        for action in ["kms:Encrypt", "kms:PutKeyPolicy", "kms:CreateGrant"] {
            let _ = decide(&Question {
                principal,
                account,
                action,
                resource: key,
                key: Some((p, "111122223333")),
                identity: std::slice::from_ref(p),
                grants: &[],
                encryption_context: None,
                context: &context,
                grant_check: None,
            });
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match policy::parse(text) {
        Ok(p) => {
            assert!(text.len() <= MAX_POLICY_BYTES);
            assert!(!p.statements.is_empty());
            assert!(p.statements.iter().all(|s| s.principal.is_some()));
            assert!(matches!(
                p.version.as_deref(),
                None | Some("2012-10-17" | "2008-10-17")
            ));
            assert_eq!(policy::parse(text), Ok(p.clone()), "parse is deterministic");
            decide_some(&p, text);
        }
        Err(KmsError::MalformedPolicyDocument(m)) => {
            assert!(text.len() <= MAX_POLICY_BYTES && !m.is_empty());
        }
        Err(KmsError::LimitExceeded(_)) => assert!(text.len() > MAX_POLICY_BYTES),
        Err(e) => panic!("neither malformed nor oversized: {e:?}"),
    }
    // As an identity policy: no statement names a principal.
    if let Ok(p) = policy::parse_kind(text, Kind::Identity) {
        assert!(p.statements.iter().all(|s| s.principal.is_none()));
    }
});
