//! Policies in the IAM policy language, key policies and identity policies alike: parsed once
//! into values ready to evaluate, or refused with `MalformedPolicyDocumentException` saying what
//! is wrong. Deciding a request against them is [`crate::access`]'s work.

use crate::condition::{self, Condition};
use crate::error::KmsError;
use crate::ids::is_account_id;
use serde_json::{Map, Value};

/// Largest key policy KMS accepts, in bytes.
pub const MAX_POLICY_BYTES: usize = 32 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// An element (`Action`, `Resource`) or its negation (`NotAction`, `NotResource`).
#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub negated: bool,
    /// Patterns with `*` and `?`. Actions are kept in lowercase (they match case-insensitively).
    pub patterns: Vec<String>,
}

impl Clause {
    /// Whether the clause covers `subject`, given how one pattern matches it.
    pub fn covers(&self, matches: impl Fn(&str) -> bool) -> bool {
        self.patterns.iter().any(|p| matches(p)) != self.negated
    }
}

/// `Principal` or `NotPrincipal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principals {
    pub negated: bool,
    /// `"*"` or `{"AWS": "*"}`: every principal of every account.
    pub anyone: bool,
    /// AWS principals as ARNs; an account id is kept as its root ARN, `arn:aws:iam::<id>:root`.
    pub aws: Vec<String>,
    /// `Service`, `Federated` and `CanonicalUser` principals: kept, but no trent caller is one.
    pub other: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    /// Key policies name whom a statement is about; identity policies never do.
    pub principal: Option<Principals>,
    pub action: Clause,
    pub resource: Clause,
    pub conditions: Vec<Condition>,
}

/// A parsed policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub version: Option<String>,
    pub id: Option<String>,
    pub statements: Vec<Statement>,
}

/// The two places a policy lives, which differ in what a statement must and must not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Attached to a KMS key: every statement names a principal.
    Key,
    /// Attached to a principal: no statement names one, and every statement names resources.
    Identity,
}

pub(crate) fn malformed(msg: impl Into<String>) -> KmsError {
    KmsError::MalformedPolicyDocument(msg.into())
}

/// The account root ARN of an account id, in the partition served.
pub fn account_root(account: &str) -> String {
    format!("{}root", crate::ids::iam_prefix(account))
}

/// The default key policy AWS attaches when CreateKey is given none.
pub fn default_policy(account: &str) -> String {
    let root = account_root(account);
    format!(
        "{{\n  \"Version\" : \"2012-10-17\",\n  \"Id\" : \"key-default-1\",\n  \"Statement\" : [ {{\n    \"Sid\" : \"Enable IAM User Permissions\",\n    \"Effect\" : \"Allow\",\n    \"Principal\" : {{\n      \"AWS\" : \"{root}\"\n    }},\n    \"Action\" : \"kms:*\",\n    \"Resource\" : \"*\"\n  }} ]\n}}"
    )
}

fn string_or_list(v: &Value, what: &str) -> Result<Vec<String>, KmsError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                _ => Err(malformed(format!(
                    "{what} must be a string or a list of strings."
                ))),
            })
            .collect(),
        _ => Err(malformed(format!(
            "{what} must be a string or a non-empty list of strings."
        ))),
    }
}

/// An AWS principal in its canonical form (an account id becomes its root ARN), if valid.
fn aws_principal(p: &str) -> Option<String> {
    if is_account_id(p) {
        return Some(account_root(p));
    }
    // arn:aws:iam::<account>:root | user/<path/name> | role/<path/name>, or an STS assumed role.
    // A principal of another partition is no principal here.
    let parts: Vec<&str> = p.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[1] != crate::ids::partition() {
        return None;
    }
    let named = |prefix: &str| parts[5].strip_prefix(prefix).is_some_and(|n| !n.is_empty());
    let valid = match parts[2] {
        "iam" => {
            is_account_id(parts[4]) && (parts[5] == "root" || named("user/") || named("role/"))
        }
        "sts" => is_account_id(parts[4]) && named("assumed-role/"),
        _ => false,
    };
    valid.then(|| p.to_string())
}

fn principals(v: &Value, negated: bool) -> Result<Principals, KmsError> {
    const INVALID: &str = "Policy contains a statement with one or more invalid principals.";
    let mut out = Principals {
        negated,
        anyone: false,
        aws: Vec::new(),
        other: Vec::new(),
    };
    match v {
        Value::String(s) if s == "*" => out.anyone = true,
        Value::Object(map) if !map.is_empty() => {
            for (kind, vals) in map {
                let vals = string_or_list(vals, "Principal").map_err(|_| malformed(INVALID))?;
                for val in vals {
                    match kind.as_str() {
                        "AWS" if val == "*" => out.anyone = true,
                        "AWS" => out
                            .aws
                            .push(aws_principal(&val).ok_or_else(|| malformed(INVALID))?),
                        "Service" if !val.is_empty() && !val.contains(char::is_whitespace) => {
                            out.other.push(val)
                        }
                        "Federated" | "CanonicalUser" if !val.is_empty() => out.other.push(val),
                        _ => return Err(malformed(INVALID)),
                    }
                }
            }
        }
        _ => return Err(malformed(INVALID)),
    }
    Ok(out)
}

fn actions(v: &Value) -> Result<Vec<String>, KmsError> {
    let list = string_or_list(v, "Action")?;
    list.into_iter()
        .map(|a| {
            let ok = a == "*"
                || a.split_once(':').is_some_and(|(svc, name)| {
                    !svc.is_empty()
                        && !name.is_empty()
                        && svc.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'*' || b == b'?')
                });
            if ok {
                Ok(a.to_ascii_lowercase())
            } else {
                Err(malformed(format!(
                    "Policy contains a statement with one or more invalid actions: {a}"
                )))
            }
        })
        .collect()
}

/// An element given either as itself or as its `Not` form, exactly one of the two.
fn clause(
    m: &Map<String, Value>,
    name: &str,
    parse: impl Fn(&Value) -> Result<Vec<String>, KmsError>,
) -> Result<Option<Clause>, KmsError> {
    let not_name = format!("Not{name}");
    match (m.get(name), m.get(&not_name)) {
        (Some(_), Some(_)) => Err(malformed(format!(
            "A statement cannot have both {name} and {not_name}."
        ))),
        (Some(v), None) => Ok(Some(Clause {
            negated: false,
            patterns: parse(v)?,
        })),
        (None, Some(v)) => Ok(Some(Clause {
            negated: true,
            patterns: parse(v)?,
        })),
        (None, None) => Ok(None),
    }
}

fn statement(v: &Value, kind: Kind) -> Result<Statement, KmsError> {
    let Value::Object(m) = v else {
        return Err(malformed("Each policy statement must be an object."));
    };
    const KNOWN: &[&str] = &[
        "Sid",
        "Effect",
        "Principal",
        "NotPrincipal",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
    ];
    if let Some(k) = m.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(malformed(format!(
            "Policy statement contains an unknown element: {k}"
        )));
    }
    let sid = match m.get("Sid") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(malformed("Sid must be a string.")),
    };
    let effect = match m.get("Effect") {
        Some(Value::String(s)) if s == "Allow" => Effect::Allow,
        Some(Value::String(s)) if s == "Deny" => Effect::Deny,
        Some(_) => return Err(malformed("Effect must be Allow or Deny.")),
        None => return Err(malformed("Policy statement is missing the Effect element.")),
    };
    let principal = match (m.get("Principal"), m.get("NotPrincipal")) {
        (Some(_), Some(_)) => {
            return Err(malformed(
                "A statement cannot have both Principal and NotPrincipal.",
            ));
        }
        (Some(p), None) => Some(principals(p, false)?),
        (None, Some(p)) => Some(principals(p, true)?),
        (None, None) => None,
    };
    match (kind, &principal) {
        (Kind::Key, None) => {
            return Err(malformed("Policy contains a statement with no principal."));
        }
        (Kind::Identity, Some(_)) => {
            return Err(malformed(
                "An identity policy statement cannot name a Principal or NotPrincipal.",
            ));
        }
        _ => {}
    }
    // A key policy statement without Action or Resource is accepted and has no effect, as in
    // AWS; an identity policy needs both.
    let none = || Clause {
        negated: false,
        patterns: Vec::new(),
    };
    let action = match clause(m, "Action", actions)? {
        Some(c) => c,
        None if kind == Kind::Key => none(),
        None => return Err(malformed("Policy contains a statement with no action.")),
    };
    let resource = match clause(m, "Resource", |v| string_or_list(v, "Resource"))? {
        Some(c) => c,
        None if kind == Kind::Key => none(),
        None => return Err(malformed("Policy contains a statement with no resource.")),
    };
    let conditions = match m.get("Condition") {
        Some(v) => condition::parse(v)?,
        None => Vec::new(),
    };
    Ok(Statement {
        sid,
        effect,
        principal,
        action,
        resource,
        conditions,
    })
}

/// Parse and check a key policy document.
pub fn parse(text: &str) -> Result<Policy, KmsError> {
    parse_kind(text, Kind::Key)
}

/// Parse and check a policy document of either kind.
pub fn parse_kind(text: &str, kind: Kind) -> Result<Policy, KmsError> {
    if text.len() > MAX_POLICY_BYTES {
        return Err(KmsError::LimitExceeded(format!(
            "Policy exceeds the maximum size of {MAX_POLICY_BYTES} bytes."
        )));
    }
    let doc: Value =
        serde_json::from_str(text).map_err(|_| malformed("The policy is not valid JSON."))?;
    let Value::Object(top) = doc else {
        return Err(malformed("The policy must be a JSON object."));
    };
    if let Some(k) = top
        .keys()
        .find(|k| !["Version", "Id", "Statement"].contains(&k.as_str()))
    {
        return Err(malformed(format!(
            "Policy contains an unknown element: {k}"
        )));
    }
    let version = match top.get("Version") {
        None => None,
        Some(Value::String(v)) if v == "2012-10-17" || v == "2008-10-17" => Some(v.clone()),
        Some(_) => {
            return Err(malformed(
                "The policy Version must be 2012-10-17 or 2008-10-17.",
            ));
        }
    };
    let id = match top.get("Id") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(malformed("Id must be a string.")),
    };
    let statements = match top.get("Statement") {
        Some(v @ Value::Object(_)) => vec![statement(v, kind)?],
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|s| statement(s, kind))
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(malformed(
                "Statement must be an object or a non-empty list.",
            ));
        }
        None => return Err(malformed("The policy has no Statement.")),
    };
    Ok(Policy {
        version,
        id,
        statements,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        match parse(text) {
            Err(KmsError::MalformedPolicyDocument(m)) => m,
            other => panic!("expected MalformedPolicyDocumentException, got {other:?}"),
        }
    }

    #[test]
    fn the_default_policy_parses() {
        let p = parse(&default_policy("111122223333")).unwrap();
        assert_eq!(p.id.as_deref(), Some("key-default-1"));
        assert_eq!(p.statements.len(), 1);
        assert_eq!(
            p.statements[0].principal,
            Some(Principals {
                negated: false,
                anyone: false,
                aws: vec!["arn:aws:iam::111122223333:root".into()],
                other: vec![],
            })
        );
        assert_eq!(p.statements[0].action.patterns, vec!["kms:*".to_string()]);
    }

    #[test]
    fn grammar_errors_say_what_is_wrong() {
        let stmt = |body: &str| format!(r#"{{"Statement":{{{body}}}}}"#);
        let cases: &[(String, &str)] = &[
            ("{".into(), "The policy is not valid JSON."),
            ("[]".into(), "The policy must be a JSON object."),
            (
                r#"{"Statement":[]}"#.into(),
                "Statement must be an object or a non-empty list.",
            ),
            (
                stmt(r#""Effect":"Maybe","Principal":"*","Action":"kms:*","Resource":"*""#),
                "Effect must be Allow or Deny.",
            ),
            (
                stmt(r#""Effect":"Allow","Action":"kms:*","Resource":"*""#),
                "Policy contains a statement with no principal.",
            ),
            (
                stmt(r#""Effect":"Allow","Principal":{"AWS":"bob"},"Action":"kms:*","Resource":"*""#),
                "Policy contains a statement with one or more invalid principals.",
            ),
            (
                stmt(r#""Effect":"Allow","Principal":"*","Action":"encrypt","Resource":"*""#),
                "Policy contains a statement with one or more invalid actions: encrypt",
            ),
            (
                stmt(
                    r#""Effect":"Allow","Principal":"*","Action":"kms:*","NotAction":"kms:Encrypt","Resource":"*""#,
                ),
                "A statement cannot have both Action and NotAction.",
            ),
            (
                stmt(
                    r#""Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringSorta":{"a":"b"}}"#,
                ),
                "Policy contains a statement with an invalid condition operator: StringSorta",
            ),
            (
                r#"{"Version":"2020-01-01","Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}}"#.into(),
                "The policy Version must be 2012-10-17 or 2008-10-17.",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(err(text), *message, "{text}");
        }
    }

    #[test]
    fn the_full_grammar_is_accepted() {
        let p = parse(r#"{"Version":"2012-10-17","Statement":[
            {"Sid":"a","Effect":"Deny","NotPrincipal":{"AWS":["111122223333","arn:aws:iam::111122223333:role/r"]},
             "NotAction":["kms:Encrypt","kms:Gen*"],"NotResource":"*",
             "Condition":{"ForAnyValue:StringLikeIfExists":{"kms:EncryptionContextKeys":["a*"]},"Bool":{"aws:SecureTransport":false},"NumericLessThan":{"kms:ScheduleKeyDeletionPendingWindowInDays":10}}},
            {"Effect":"Allow","Principal":{"Service":"logs.amazonaws.com"},"Action":"*","Resource":["*"]}]}"#).unwrap();
        assert_eq!(p.statements.len(), 2);
        let first = &p.statements[0];
        assert_eq!(first.conditions.len(), 3);
        assert!(first.action.negated && first.resource.negated);
        assert_eq!(
            first.action.patterns,
            vec!["kms:encrypt".to_string(), "kms:gen*".to_string()]
        );
        let np = first.principal.as_ref().unwrap();
        assert!(np.negated);
        assert_eq!(
            np.aws,
            vec![
                "arn:aws:iam::111122223333:root".to_string(),
                "arn:aws:iam::111122223333:role/r".to_string()
            ]
        );
        assert_eq!(
            p.statements[1].principal.as_ref().unwrap().other,
            vec!["logs.amazonaws.com".to_string()]
        );
    }

    #[test]
    fn identity_policies_name_no_principal() {
        let ok = parse_kind(
            r#"{"Statement":{"Effect":"Allow","Action":"kms:Encrypt","Resource":"arn:aws:kms:*:111122223333:key/*"}}"#,
            Kind::Identity,
        )
        .unwrap();
        assert!(ok.statements[0].principal.is_none());
        assert_eq!(
            parse_kind(
                r#"{"Statement":{"Effect":"Allow","Action":"kms:*"}}"#,
                Kind::Identity
            )
            .unwrap_err(),
            malformed("Policy contains a statement with no resource.")
        );
        // In a key policy, a statement without Action or Resource is accepted and does nothing.
        let idle = parse(r#"{"Statement":{"Effect":"Allow","Principal":"*"}}"#).unwrap();
        assert!(!idle.statements[0].action.covers(|_| true));
        assert!(!idle.statements[0].resource.covers(|_| true));
        assert_eq!(
            parse_kind(
                r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}}"#,
                Kind::Identity,
            )
            .unwrap_err(),
            malformed("An identity policy statement cannot name a Principal or NotPrincipal.")
        );
    }

    #[test]
    fn oversized_policies_exceed_the_limit() {
        let big = format!(
            r#"{{"Id":"{}","Statement":{{}}}}"#,
            "x".repeat(MAX_POLICY_BYTES)
        );
        assert!(matches!(parse(&big), Err(KmsError::LimitExceeded(_))));
    }
}
