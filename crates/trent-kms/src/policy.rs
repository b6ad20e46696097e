//! Key policies in the IAM policy language: parsed into typed values, refused with
//! `MalformedPolicyDocumentException` saying what is wrong. (Evaluation comes with access control.)

use crate::error::KmsError;
use crate::ids::is_account_id;
use serde_json::{Map, Value};

/// Largest key policy KMS accepts, in bytes.
pub const MAX_POLICY_BYTES: usize = 32 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// `Principal` or `NotPrincipal`: `"*"` or a map of kinds (`AWS`, `Service`, ...) to values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principals {
    Any,
    Some(Vec<(String, Vec<String>)>),
}

/// Condition key -> values (strings; numbers and booleans as their text).
pub type ConditionEntries = Vec<(String, Vec<String>)>;
/// Operator (`StringEquals`, `ForAnyValue:StringLikeIfExists`, ...) -> its entries.
pub type Conditions = Vec<(String, ConditionEntries)>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub principal: Option<Principals>,
    pub not_principal: Option<Principals>,
    pub action: Option<Vec<String>>,
    pub not_action: Option<Vec<String>>,
    pub resource: Option<Vec<String>>,
    pub not_resource: Option<Vec<String>>,
    pub condition: Conditions,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPolicy {
    pub version: Option<String>,
    pub id: Option<String>,
    pub statements: Vec<Statement>,
}

fn malformed(msg: impl Into<String>) -> KmsError {
    KmsError::MalformedPolicyDocument(msg.into())
}

/// The default key policy AWS attaches when CreateKey is given none.
pub fn default_policy(account: &str) -> String {
    format!(
        "{{\n  \"Version\" : \"2012-10-17\",\n  \"Id\" : \"key-default-1\",\n  \"Statement\" : [ {{\n    \"Sid\" : \"Enable IAM User Permissions\",\n    \"Effect\" : \"Allow\",\n    \"Principal\" : {{\n      \"AWS\" : \"arn:aws:iam::{account}:root\"\n    }},\n    \"Action\" : \"kms:*\",\n    \"Resource\" : \"*\"\n  }} ]\n}}"
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

fn valid_aws_principal(p: &str) -> bool {
    if p == "*" || is_account_id(p) {
        return true;
    }
    // arn:aws:iam::<account>:root | user/<path/name> | role/<path/name>, or an STS assumed role.
    let parts: Vec<&str> = p.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[1].is_empty() {
        return false;
    }
    match parts[2] {
        "iam" => {
            is_account_id(parts[4])
                && (parts[5] == "root"
                    || parts[5]
                        .strip_prefix("user/")
                        .is_some_and(|n| !n.is_empty())
                    || parts[5]
                        .strip_prefix("role/")
                        .is_some_and(|n| !n.is_empty()))
        }
        "sts" => is_account_id(parts[4]) && parts[5].starts_with("assumed-role/"),
        _ => false,
    }
}

fn principals(v: &Value) -> Result<Principals, KmsError> {
    const INVALID: &str = "Policy contains a statement with one or more invalid principals.";
    match v {
        Value::String(s) if s == "*" => Ok(Principals::Any),
        Value::Object(map) if !map.is_empty() => {
            let mut out = Vec::new();
            for (kind, vals) in map {
                let vals = string_or_list(vals, "Principal").map_err(|_| malformed(INVALID))?;
                let ok = match kind.as_str() {
                    "AWS" => vals.iter().all(|p| valid_aws_principal(p)),
                    "Service" => vals
                        .iter()
                        .all(|s| !s.is_empty() && !s.contains(char::is_whitespace)),
                    "Federated" | "CanonicalUser" => vals.iter().all(|s| !s.is_empty()),
                    _ => false,
                };
                if !ok {
                    return Err(malformed(INVALID));
                }
                out.push((kind.clone(), vals));
            }
            Ok(Principals::Some(out))
        }
        _ => Err(malformed(INVALID)),
    }
}

fn actions(v: &Value) -> Result<Vec<String>, KmsError> {
    let list = string_or_list(v, "Action")?;
    for a in &list {
        let ok = a == "*"
            || a.split_once(':').is_some_and(|(svc, name)| {
                !svc.is_empty()
                    && !name.is_empty()
                    && svc.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'*' || b == b'?')
            });
        if !ok {
            return Err(malformed(format!(
                "Policy contains a statement with one or more invalid actions: {a}"
            )));
        }
    }
    Ok(list)
}

const CONDITION_OPERATORS: &[&str] = &[
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "DateEquals",
    "DateNotEquals",
    "DateLessThan",
    "DateLessThanEquals",
    "DateGreaterThan",
    "DateGreaterThanEquals",
    "Bool",
    "BinaryEquals",
    "IpAddress",
    "NotIpAddress",
    "ArnEquals",
    "ArnLike",
    "ArnNotEquals",
    "ArnNotLike",
    "Null",
];

fn condition_operator_ok(op: &str) -> bool {
    let op = op
        .strip_prefix("ForAllValues:")
        .or_else(|| op.strip_prefix("ForAnyValue:"))
        .unwrap_or(op);
    let op = op.strip_suffix("IfExists").unwrap_or(op);
    CONDITION_OPERATORS.contains(&op)
}

fn condition(v: &Value) -> Result<Conditions, KmsError> {
    let Value::Object(ops) = v else {
        return Err(malformed("Condition must be an object."));
    };
    let mut out = Vec::new();
    for (op, keys) in ops {
        if !condition_operator_ok(op) {
            return Err(malformed(format!(
                "Policy contains a statement with an invalid condition operator: {op}"
            )));
        }
        let Value::Object(keys) = keys else {
            return Err(malformed(format!(
                "Condition operator {op} must map to an object."
            )));
        };
        let mut entries = Vec::new();
        for (key, vals) in keys {
            let scalar = |x: &Value| match x {
                Value::String(s) => Some(s.clone()),
                Value::Bool(b) => Some(b.to_string()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            };
            let list = match vals {
                Value::Array(items) => items.iter().map(scalar).collect::<Option<Vec<_>>>(),
                other => scalar(other).map(|s| vec![s]),
            }
            .ok_or_else(|| malformed(format!("Condition key {key} has an invalid value.")))?;
            entries.push((key.clone(), list));
        }
        out.push((op.clone(), entries));
    }
    Ok(out)
}

fn statement(v: &Value) -> Result<Statement, KmsError> {
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
    let get = |k: &str| m.get(k);
    let sid = match get("Sid") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(malformed("Sid must be a string.")),
    };
    let effect = match get("Effect") {
        Some(Value::String(s)) if s == "Allow" => Effect::Allow,
        Some(Value::String(s)) if s == "Deny" => Effect::Deny,
        Some(_) => return Err(malformed("Effect must be Allow or Deny.")),
        None => return Err(malformed("Policy statement is missing the Effect element.")),
    };
    let principal = get("Principal").map(principals).transpose()?;
    let not_principal = get("NotPrincipal").map(principals).transpose()?;
    match (&principal, &not_principal) {
        (None, None) => return Err(malformed("Policy contains a statement with no principal.")),
        (Some(_), Some(_)) => {
            return Err(malformed(
                "A statement cannot have both Principal and NotPrincipal.",
            ));
        }
        _ => {}
    }
    let action = get("Action").map(actions).transpose()?;
    let not_action = get("NotAction").map(actions).transpose()?;
    match (&action, &not_action) {
        (None, None) => return Err(malformed("Policy contains a statement with no action.")),
        (Some(_), Some(_)) => {
            return Err(malformed(
                "A statement cannot have both Action and NotAction.",
            ));
        }
        _ => {}
    }
    let resource = get("Resource")
        .map(|v| string_or_list(v, "Resource"))
        .transpose()?;
    let not_resource = get("NotResource")
        .map(|v| string_or_list(v, "NotResource"))
        .transpose()?;
    match (&resource, &not_resource) {
        (None, None) => return Err(malformed("Policy contains a statement with no resource.")),
        (Some(_), Some(_)) => {
            return Err(malformed(
                "A statement cannot have both Resource and NotResource.",
            ));
        }
        _ => {}
    }
    let condition = get("Condition")
        .map(condition)
        .transpose()?
        .unwrap_or_default();
    Ok(Statement {
        sid,
        effect,
        principal,
        not_principal,
        action,
        not_action,
        resource,
        not_resource,
        condition,
    })
}

/// Parse and check a key policy document.
pub fn parse(text: &str) -> Result<KeyPolicy, KmsError> {
    if text.len() > MAX_POLICY_BYTES {
        return Err(KmsError::LimitExceeded(format!(
            "Policy exceeds the maximum size of {MAX_POLICY_BYTES} bytes."
        )));
    }
    let doc: Value =
        serde_json::from_str(text).map_err(|_| malformed("The policy is not valid JSON."))?;
    let Value::Object(top): Value = doc else {
        return Err(malformed("The policy must be a JSON object."));
    };
    parse_top(&top)
}

fn parse_top(top: &Map<String, Value>) -> Result<KeyPolicy, KmsError> {
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
        Some(v @ Value::Object(_)) => vec![statement(v)?],
        Some(Value::Array(items)) if !items.is_empty() => {
            items.iter().map(statement).collect::<Result<_, _>>()?
        }
        Some(_) => {
            return Err(malformed(
                "Statement must be an object or a non-empty list.",
            ));
        }
        None => return Err(malformed("The policy has no Statement.")),
    };
    Ok(KeyPolicy {
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
            Some(Principals::Some(vec![(
                "AWS".into(),
                vec!["arn:aws:iam::111122223333:root".into()]
            )]))
        );
    }

    #[test]
    fn grammar_errors_say_what_is_wrong() {
        assert_eq!(err("{"), "The policy is not valid JSON.");
        assert_eq!(err("[]"), "The policy must be a JSON object.");
        assert_eq!(
            err(r#"{"Statement":[]}"#),
            "Statement must be an object or a non-empty list."
        );
        assert_eq!(
            err(
                r#"{"Statement":{"Effect":"Maybe","Principal":"*","Action":"kms:*","Resource":"*"}}"#
            ),
            "Effect must be Allow or Deny."
        );
        assert_eq!(
            err(r#"{"Statement":{"Effect":"Allow","Action":"kms:*","Resource":"*"}}"#),
            "Policy contains a statement with no principal."
        );
        assert_eq!(
            err(
                r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"kms:*","Resource":"*"}}"#
            ),
            "Policy contains a statement with one or more invalid principals."
        );
        assert_eq!(
            err(
                r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"encrypt","Resource":"*"}}"#
            ),
            "Policy contains a statement with one or more invalid actions: encrypt"
        );
        assert_eq!(
            err(
                r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringSorta":{"a":"b"}}}}"#
            ),
            "Policy contains a statement with an invalid condition operator: StringSorta"
        );
        assert_eq!(
            err(
                r#"{"Version":"2020-01-01","Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}}"#
            ),
            "The policy Version must be 2012-10-17 or 2008-10-17."
        );
    }

    #[test]
    fn the_full_grammar_is_accepted() {
        let p = parse(r#"{"Version":"2012-10-17","Statement":[
            {"Sid":"a","Effect":"Deny","NotPrincipal":{"AWS":["111122223333","arn:aws:iam::111122223333:role/r"]},
             "NotAction":["kms:Encrypt","kms:Gen*"],"NotResource":"*",
             "Condition":{"ForAnyValue:StringLikeIfExists":{"kms:EncryptionContextKeys":["a*"]},"Bool":{"aws:SecureTransport":false},"NumericLessThan":{"kms:ScheduleKeyDeletionPendingWindowInDays":10}}},
            {"Effect":"Allow","Principal":{"Service":"logs.amazonaws.com"},"Action":"*","Resource":["*"]}]}"#).unwrap();
        assert_eq!(p.statements.len(), 2);
        assert_eq!(p.statements[0].condition.len(), 3);
        let bool_op = p.statements[0]
            .condition
            .iter()
            .find(|(op, _)| op == "Bool")
            .unwrap();
        assert_eq!(bool_op.1[0].1, vec!["false".to_string()]);
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
