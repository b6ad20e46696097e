//! The `Condition` element of a policy: its operators, parsed with their values, and how one
//! condition is decided against the values a request has for its key.

use crate::error::KmsError;
use crate::policy::malformed;
use serde_json::Value;
use std::borrow::Cow;
use std::net::IpAddr;

/// What a request says about itself: the values of a condition key, looked up by its name in
/// lowercase (`kms:encryptioncontext:department`), or `None` when the request has no such key.
pub trait RequestContext {
    fn values(&self, key: &str) -> Option<Vec<Cow<'_, str>>>;

    /// Every reading of a key: one list of values for each way the request can be read. A
    /// single-valued key whose name is case-insensitive can be carried by a request under several
    /// names that differ only in case (an encryption context `{"DEPT":"x","Dept":"Finance"}`
    /// has two values for `kms:EncryptionContext:Dept`): each is a reading of its own, and a
    /// condition is decided with all of them (see [`Condition::holds`]). Every other key has one
    /// reading, its values.
    fn readings(&self, key: &str) -> Option<Vec<Vec<Cow<'_, str>>>> {
        self.values(key).map(|v| vec![v])
    }
}

/// How a condition is decided when a key has several readings: in an Allow statement it holds
/// only if it holds for every reading; in a Deny statement it holds if it holds for any, so that
/// a caller cannot choose the reading a statement sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readings {
    /// An Allow: every reading must satisfy the condition.
    All,
    /// A Deny: one reading satisfying it is enough.
    Any,
}

/// Most combinations of readings one condition is decided over (the condition's key times the
/// policy variables it uses). Beyond, a request is too ambiguous to read: an Allow condition does
/// not hold, a Deny condition does.
const MAX_READINGS: usize = 1024;

/// A request with some keys fixed to one reading each (and, for variables, to its first value).
struct Fixed<'a> {
    inner: &'a dyn RequestContext,
    fixed: Vec<(&'a str, &'a [Cow<'a, str>])>,
}

impl RequestContext for Fixed<'_> {
    fn values(&self, key: &str) -> Option<Vec<Cow<'_, str>>> {
        match self.fixed.iter().find(|(k, _)| *k == key) {
            Some((_, v)) => Some(v.to_vec()),
            None => self.inner.values(key),
        }
    }
}

/// A fixed table of keys and values, for tests and tools.
impl RequestContext for std::collections::HashMap<String, Vec<String>> {
    fn values(&self, key: &str) -> Option<Vec<Cow<'_, str>>> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.iter().map(|s| Cow::Borrowed(s.as_str())).collect())
    }
}

/// `ForAllValues:` and `ForAnyValue:` qualifiers, for keys with several values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOperator {
    None,
    ForAllValues,
    ForAnyValue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Order {
    fn holds(self, request: f64, policy: f64) -> bool {
        match self {
            Order::Eq => request == policy,
            Order::Lt => request < policy,
            Order::Le => request <= policy,
            Order::Gt => request > policy,
            Order::Ge => request >= policy,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Text {
    Exact,
    IgnoreCase,
    Like,
    Arn,
}

/// One operator family with the policy's values, parsed to the type the family compares.
#[derive(Debug, Clone, PartialEq)]
enum Test {
    Text(Text, Vec<String>),
    Numeric(Order, Vec<f64>),
    Date(Order, Vec<f64>),
    Bool(Vec<bool>),
    Ip(Vec<ipnet::IpNet>),
    /// `Null`: true means "the key must be absent".
    Null(bool),
}

/// One condition: an operator applied to one key.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The operator as written, for messages (`ForAnyValue:StringLikeIfExists`).
    pub operator: String,
    /// The key, in lowercase (condition key names are case-insensitive).
    pub key: String,
    set: SetOperator,
    if_exists: bool,
    /// A `Not` operator (`StringNotEquals`, `NotIpAddress`, ...): true when no value matches.
    negated: bool,
    test: Test,
    /// Some text value holds a policy variable (`${aws:username}`), filled in per request.
    variables: bool,
    /// The condition keys those variables name, in lowercase.
    variable_keys: Vec<String>,
}

/// operator name -> (family, negated); the order or text match is filled in by [`parse_test`].
fn base(op: &str) -> Option<(&'static str, bool)> {
    Some(match op {
        "StringEquals" | "StringEqualsIgnoreCase" | "StringLike" => ("string", false),
        "StringNotEquals" | "StringNotEqualsIgnoreCase" | "StringNotLike" => ("string", true),
        "NumericEquals"
        | "NumericLessThan"
        | "NumericLessThanEquals"
        | "NumericGreaterThan"
        | "NumericGreaterThanEquals" => ("numeric", false),
        "NumericNotEquals" => ("numeric", true),
        "DateEquals"
        | "DateLessThan"
        | "DateLessThanEquals"
        | "DateGreaterThan"
        | "DateGreaterThanEquals" => ("date", false),
        "DateNotEquals" => ("date", true),
        "Bool" => ("bool", false),
        "BinaryEquals" => ("string", false),
        "IpAddress" => ("ip", false),
        "NotIpAddress" => ("ip", true),
        "ArnEquals" | "ArnLike" => ("arn", false),
        "ArnNotEquals" | "ArnNotLike" => ("arn", true),
        "Null" => ("null", false),
        _ => return None,
    })
}

fn order(op: &str) -> Order {
    if op.ends_with("LessThanEquals") {
        Order::Le
    } else if op.ends_with("LessThan") {
        Order::Lt
    } else if op.ends_with("GreaterThanEquals") {
        Order::Ge
    } else if op.ends_with("GreaterThan") {
        Order::Gt
    } else {
        Order::Eq
    }
}

/// A number as a policy or a request writes it.
fn number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

/// A date: ISO 8601 (`2026-01-01T00:00:00Z`, `2026-01-01`) or epoch seconds. As epoch seconds.
pub fn date(s: &str) -> Option<f64> {
    use time::format_description::well_known::Rfc3339;
    let s = s.trim();
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp_nanos() as f64 / 1e9);
    }
    if let Ok(d) = time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")) {
        return Some(d.midnight().assume_utc().unix_timestamp() as f64);
    }
    // The other W3C forms of ISO 8601: hours and minutes without seconds, a year and month, a year.
    if let Some((day, rest)) = s.split_once('T')
        && rest.len() > 5
        && rest.as_bytes()[2] == b':'
        && rest.as_bytes()[5] != b':'
        && rest.is_char_boundary(5)
    {
        let (hm, zone) = rest.split_at(5);
        return date(&format!("{day}T{hm}:00{zone}"));
    }
    if s.len() == 7 && s.as_bytes()[4] == b'-' {
        return date(&format!("{s}-01"));
    }
    if s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()) {
        return date(&format!("{s}-01-01"));
    }
    s.parse::<i64>().ok().map(|n| n as f64)
}

fn boolean(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn cidr(s: &str) -> Option<ipnet::IpNet> {
    s.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(ipnet::IpNet::from))
}

fn parse_test(op: &str, family: &str, values: &[String]) -> Option<Test> {
    fn all<T>(values: &[String], f: impl Fn(&str) -> Option<T>) -> Option<Vec<T>> {
        values.iter().map(|v| f(v)).collect()
    }
    Some(match family {
        "string" => {
            let how = if op.contains("IgnoreCase") {
                Text::IgnoreCase
            } else if op.contains("Like") {
                Text::Like
            } else {
                Text::Exact
            };
            let values = match how {
                Text::IgnoreCase => values.iter().map(|v| v.to_lowercase()).collect(),
                _ => values.to_vec(),
            };
            Test::Text(how, values)
        }
        "arn" => Test::Text(Text::Arn, values.to_vec()),
        "numeric" => Test::Numeric(order(op), all(values, number)?),
        "date" => Test::Date(order(op), all(values, date)?),
        "bool" => Test::Bool(all(values, boolean)?),
        "ip" => Test::Ip(all(values, cidr)?),
        "null" => match all(values, boolean)?.as_slice() {
            [one] => Test::Null(*one),
            _ => return None,
        },
        _ => return None,
    })
}

/// Parse a `Condition` element: `{operator: {key: value or [values]}}`.
pub fn parse(v: &Value) -> Result<Vec<Condition>, KmsError> {
    let Value::Object(ops) = v else {
        return Err(malformed("Condition must be an object."));
    };
    let mut out = Vec::new();
    for (written, keys) in ops {
        let (set, rest) = if let Some(r) = written.strip_prefix("ForAllValues:") {
            (SetOperator::ForAllValues, r)
        } else if let Some(r) = written.strip_prefix("ForAnyValue:") {
            (SetOperator::ForAnyValue, r)
        } else {
            (SetOperator::None, written.as_str())
        };
        let (op, if_exists) = match rest.strip_suffix("IfExists") {
            Some(op) if op != "Null" => (op, true),
            _ => (rest, false),
        };
        let Some((family, negated)) = base(op) else {
            return Err(malformed(format!(
                "Policy contains a statement with an invalid condition operator: {written}"
            )));
        };
        let Value::Object(keys) = keys else {
            return Err(malformed(format!(
                "Condition operator {written} must map to an object."
            )));
        };
        for (key, vals) in keys {
            let lower = key.to_ascii_lowercase();
            if set == SetOperator::ForAllValues {
                overly_permissive(&lower)?;
            }
            let scalar = |x: &Value| match x {
                Value::String(s) => Some(s.clone()),
                Value::Bool(b) => Some(b.to_string()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            };
            let list = match vals {
                Value::Array(items) if !items.is_empty() => {
                    items.iter().map(scalar).collect::<Option<Vec<_>>>()
                }
                Value::Array(_) => None,
                other => scalar(other).map(|s| vec![s]),
            };
            let invalid = || {
                malformed(format!(
                    "Policy contains a statement with an invalid value for condition key {key} under {written}."
                ))
            };
            let list = list.ok_or_else(invalid)?;
            let variables =
                matches!(family, "string" | "arn") && list.iter().any(|v| v.contains("${"));
            let mut variable_keys: Vec<String> = if variables {
                list.iter().flat_map(|v| variable_names(v)).collect()
            } else {
                Vec::new()
            };
            variable_keys.sort();
            variable_keys.dedup();
            let test = parse_test(op, family, &list).ok_or_else(invalid)?;
            out.push(Condition {
                operator: written.clone(),
                key: lower,
                set,
                if_exists,
                negated,
                test,
                variables,
                variable_keys,
            });
        }
    }
    Ok(out)
}

/// AWS refuses `ForAllValues` with the single-valued keys whose absence it would let through.
fn overly_permissive(key: &str) -> Result<(), KmsError> {
    let what = if key.starts_with("kms:encryptioncontext:") {
        ("EncryptionContext", "encryption context")
    } else if key.starts_with("aws:requesttag/") {
        ("RequestTag", "tag")
    } else {
        return Ok(());
    };
    Err(malformed(format!(
        "OverlyPermissiveCondition:{}: Using the ForAllValues set operator with a single-valued condition key matches requests without the specified {1} or with an unspecified {1}. To fix, remove ForAllValues.",
        what.0, what.1
    )))
}

/// `*` (any run, maybe empty) and `?` (one character) wildcards; `fold` compares the text in
/// ASCII lowercase (the pattern is then expected in lowercase already).
pub fn glob(pattern: &str, text: &str, fold: bool) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let char_len = |b: u8| match b {
        0xF0.. => 4,
        0xE0.. => 3,
        0xC0.. => 2,
        _ => 1,
    };
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ti));
                pi += 1;
                continue;
            }
            Some(b'?') => {
                pi += 1;
                ti += char_len(t[ti]);
                continue;
            }
            Some(&c)
                if c == if fold {
                    t[ti].to_ascii_lowercase()
                } else {
                    t[ti]
                } =>
            {
                pi += 1;
                ti += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((sp, st)) => {
                let st = st + char_len(t[st]);
                star = Some((sp, st));
                pi = sp + 1;
                ti = st;
            }
            None => return false,
        }
    }
    p[pi.min(p.len())..].iter().all(|b| *b == b'*')
}

/// `ArnLike`: each of the six colon-separated parts matched on its own, so that a wildcard does
/// not run from one part into the next. A pattern of fewer parts matches only itself, but for `*`.
pub fn arn_like(pattern: &str, arn: &str) -> bool {
    let mut ps = pattern.splitn(6, ':');
    let mut ts = arn.splitn(6, ':');
    if pattern.matches(':').count() < 5 || arn.matches(':').count() < 5 {
        return pattern == "*" || pattern == arn;
    }
    (0..6).all(|_| match (ps.next(), ts.next()) {
        (Some(p), Some(t)) => glob(p, t, false),
        _ => false,
    })
}

fn ip(s: &str) -> Option<IpAddr> {
    let ip: IpAddr = s.trim().parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    })
}

impl Test {
    /// Whether one request value matches one of the policy's values.
    fn matches(&self, v: &str) -> bool {
        match self {
            Test::Text(Text::Exact, ps) => ps.iter().any(|p| p == v),
            Test::Text(Text::IgnoreCase, ps) => {
                let v = v.to_lowercase();
                ps.contains(&v)
            }
            Test::Text(Text::Like, ps) => ps.iter().any(|p| glob(p, v, false)),
            Test::Text(Text::Arn, ps) => ps.iter().any(|p| arn_like(p, v)),
            Test::Numeric(o, ps) => number(v).is_some_and(|n| ps.iter().any(|p| o.holds(n, *p))),
            Test::Date(o, ps) => date(v).is_some_and(|d| ps.iter().any(|p| o.holds(d, *p))),
            Test::Bool(ps) => boolean(v).is_some_and(|b| ps.contains(&b)),
            Test::Ip(nets) => ip(v).is_some_and(|a| nets.iter().any(|n| n.contains(&a))),
            Test::Null(_) => false,
        }
    }
}

/// The condition keys the policy variables of a value name, in lowercase (`${*}`, `${?}` and
/// `${$}` name none).
fn variable_names(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        let inner = &rest[start + 2..start + len];
        if !matches!(inner, "*" | "?" | "$") {
            let name = inner.split_once(',').map_or(inner, |(n, _)| n);
            out.push(name.trim().to_ascii_lowercase());
        }
        rest = &rest[start + len + 1..];
    }
    out
}

/// Replace the policy variables of a value with the request's values: `${aws:username}`, any
/// condition key, with an optional default (`${aws:username, 'nobody'}`), and `${*}`, `${?}`,
/// `${$}` for those characters. A variable the request has no value for leaves the value out.
fn substitute(value: &str, ctx: &dyn RequestContext) -> Option<String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}')? + start;
        let inner = &rest[start + 2..end];
        match inner {
            "*" | "?" | "$" => out.push_str(inner),
            _ => {
                let (name, default) = match inner.split_once(',') {
                    Some((n, d)) => (n.trim(), Some(d.trim().trim_matches('\''))),
                    None => (inner.trim(), None),
                };
                let found = ctx
                    .values(&name.to_ascii_lowercase())
                    .and_then(|v| v.into_iter().next().map(|c| c.into_owned()));
                out.push_str(&found.or(default.map(str::to_string))?);
            }
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// A text test with its policy variables filled in for one request.
fn fill_variables(test: &Test, ctx: &dyn RequestContext) -> Test {
    match test {
        Test::Text(how, values) => {
            let filled = values.iter().filter_map(|v| substitute(v, ctx));
            let filled = match how {
                // IgnoreCase values are kept in lowercase; what a variable brings must be too.
                Text::IgnoreCase => filled.map(|v| v.to_lowercase()).collect(),
                _ => filled.collect(),
            };
            Test::Text(*how, filled)
        }
        other => other.clone(),
    }
}

impl Condition {
    /// Whether the condition holds for a request, in a statement that decides as `readings` says
    /// when the request can be read several ways (its key, or a key a policy variable names, has
    /// several readings: see [`RequestContext::readings`]). Each combination of readings is
    /// decided on its own; an Allow needs every one to hold, a Deny any one.
    pub fn holds(&self, ctx: &dyn RequestContext, readings: Readings) -> bool {
        let key_readings = ctx.readings(&self.key);
        let ambiguous_variables: Vec<(&str, Vec<Vec<Cow<'_, str>>>)> = self
            .variable_keys
            .iter()
            .filter(|k| **k != self.key)
            .filter_map(|k| Some((k.as_str(), ctx.readings(k).filter(|r| r.len() > 1)?)))
            .collect();
        let key_count = key_readings.as_ref().map_or(1, |r| r.len().max(1));
        if ambiguous_variables.is_empty() {
            let key_readings = match key_readings {
                None => return self.holds_once(None, ctx),
                Some(mut r) if r.len() <= 1 => return self.holds_once(r.pop(), ctx),
                Some(r) => r,
            };
            let once = |values: &Vec<Cow<'_, str>>| {
                let fixed = Fixed {
                    inner: ctx,
                    fixed: vec![(self.key.as_str(), values.as_slice())],
                };
                self.holds_once(Some(values.clone()), &fixed)
            };
            return match readings {
                Readings::All => key_readings.iter().all(once),
                Readings::Any => key_readings.iter().any(once),
            };
        }
        let combinations = ambiguous_variables
            .iter()
            .try_fold(key_count, |n, (_, r)| n.checked_mul(r.len()))
            .filter(|n| *n <= MAX_READINGS);
        let Some(combinations) = combinations else {
            return readings == Readings::Any;
        };
        let key_readings: Vec<Option<&Vec<Cow<'_, str>>>> = match &key_readings {
            Some(r) if !r.is_empty() => r.iter().map(Some).collect(),
            _ => vec![None],
        };
        let mut outcomes = (0..combinations).map(|mut n| {
            let key_values = key_readings[n % key_readings.len()];
            n /= key_readings.len();
            let mut fixed = Fixed {
                inner: ctx,
                fixed: Vec::with_capacity(ambiguous_variables.len() + 1),
            };
            if let Some(v) = key_values {
                fixed.fixed.push((self.key.as_str(), v.as_slice()));
            }
            for (k, r) in &ambiguous_variables {
                fixed.fixed.push((*k, r[n % r.len()].as_slice()));
                n /= r.len();
            }
            self.holds_once(key_values.cloned(), &fixed)
        });
        match readings {
            Readings::All => outcomes.all(|h| h),
            Readings::Any => outcomes.any(|h| h),
        }
    }

    /// Whether the condition holds for one reading of the request: `values` of its key, `ctx`
    /// for the policy variables.
    fn holds_once(&self, values: Option<Vec<Cow<'_, str>>>, ctx: &dyn RequestContext) -> bool {
        let values = values.filter(|v| !v.is_empty());
        if let Test::Null(absent) = self.test {
            return values.is_none() == absent;
        }
        let Some(values) = values else {
            // A missing key: IfExists passes; "for all values" of nothing is true, "for any" false;
            // a plain operator fails, unless it is a Not operator (nothing matched, as it asks).
            return self.if_exists
                || match self.set {
                    SetOperator::ForAllValues => true,
                    SetOperator::ForAnyValue => false,
                    SetOperator::None => self.negated,
                };
        };
        let filled;
        let test = if self.variables {
            filled = fill_variables(&self.test, ctx);
            &filled
        } else {
            &self.test
        };
        let matched = |v: &Cow<'_, str>| test.matches(v) != self.negated;
        match (self.set, self.negated) {
            (SetOperator::ForAllValues, _) => values.iter().all(matched),
            (SetOperator::ForAnyValue, _) => values.iter().any(matched),
            // A plain Not operator holds when no value matches; a plain one when any does.
            (SetOperator::None, true) => values.iter().all(matched),
            (SetOperator::None, false) => values.iter().any(matched),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_wildcards() {
        for (p, t, fold, want) in [
            ("*", "", false, true),
            ("*", "anything", false, true),
            ("a*c", "abbbc", false, true),
            ("a*c", "abbbd", false, false),
            ("a?c", "abc", false, true),
            ("a?c", "ac", false, false),
            ("a?c", "aéc", false, true),
            ("kms:gen*", "kms:GenerateDataKey", true, true),
            ("kms:gen*", "kms:GenerateDataKey", false, false),
            ("*key*pair*", "GenerateDataKeyPair", true, true),
            ("ab", "abc", false, false),
            ("abc*", "abc", false, true),
        ] {
            assert_eq!(glob(p, t, fold), want, "{p} ~ {t}");
        }
    }

    #[test]
    fn arn_wildcards_stay_in_their_part() {
        assert!(arn_like(
            "arn:aws:kms:*:111122223333:key/*",
            "arn:aws:kms:us-east-1:111122223333:key/1234"
        ));
        assert!(!arn_like(
            "arn:aws:kms:*:111122223333:key/*",
            "arn:aws:kms:us-east-1:444455556666:key/1234"
        ));
        assert!(!arn_like(
            "arn:aws:kms:*",
            "arn:aws:kms:us-east-1:111122223333:key/1"
        ));
        assert!(arn_like("*", "arn:aws:kms:us-east-1:111122223333:key/1"));
    }

    #[test]
    fn dates_in_every_form() {
        assert_eq!(date("2026-01-01T00:00:00Z"), Some(1_767_225_600.0));
        assert_eq!(date("2026-01-01"), Some(1_767_225_600.0));
        assert_eq!(date("1767225600"), Some(1_767_225_600.0));
        assert_eq!(date("next tuesday"), None);
        assert_eq!(date("2026-01-01T00:00Z"), Some(1_767_225_600.0));
        assert_eq!(date("2026-01-01T01:00+01:00"), Some(1_767_225_600.0));
        assert_eq!(date("2026-01"), Some(1_767_225_600.0));
        assert_eq!(date("2026"), Some(1_767_225_600.0));
    }

    #[test]
    fn bad_values_are_malformed() {
        for c in [
            r#"{"NumericLessThan":{"k":"ten"}}"#,
            r#"{"DateLessThan":{"k":"soon"}}"#,
            r#"{"Bool":{"k":"maybe"}}"#,
            r#"{"IpAddress":{"k":"10.0.0.0/33"}}"#,
            r#"{"Null":{"k":["true","false"]}}"#,
            r#"{"StringEquals":{"k":[]}}"#,
            r#"{"StringEquals":{"k":{"x":"y"}}}"#,
        ] {
            let v: Value = serde_json::from_str(c).unwrap();
            assert!(
                matches!(parse(&v), Err(KmsError::MalformedPolicyDocument(_))),
                "{c}"
            );
        }
    }

    /// A request whose keys each have several readings (key -> readings).
    struct Ambiguous(Vec<(&'static str, Vec<String>)>);

    impl RequestContext for Ambiguous {
        fn values(&self, key: &str) -> Option<Vec<Cow<'_, str>>> {
            self.readings(key)?.into_iter().next()
        }
        fn readings(&self, key: &str) -> Option<Vec<Vec<Cow<'_, str>>>> {
            let (_, r) = self.0.iter().find(|(k, _)| *k == key)?;
            Some(r.iter().map(|v| vec![Cow::Borrowed(v.as_str())]).collect())
        }
    }

    fn condition(text: &str) -> Condition {
        parse(&serde_json::from_str(text).unwrap())
            .unwrap()
            .remove(0)
    }

    #[test]
    fn every_reading_decides() {
        let ctx = Ambiguous(vec![("k", vec!["a".into(), "b".into()])]);
        let eq_a = condition(r#"{"StringEquals":{"k":"a"}}"#);
        assert!(!eq_a.holds(&ctx, Readings::All));
        assert!(eq_a.holds(&ctx, Readings::Any));
        let either = condition(r#"{"StringEquals":{"k":["a","b"]}}"#);
        assert!(either.holds(&ctx, Readings::All));
        let neither = condition(r#"{"StringEquals":{"k":"c"}}"#);
        assert!(!neither.holds(&ctx, Readings::Any));
    }

    #[test]
    fn too_many_readings_fail_closed() {
        // 40 readings of the key times 40 of the variable: more combinations than are decided.
        let many: Vec<String> = (0..40).map(|i| format!("v{i}")).collect();
        let ctx = Ambiguous(vec![("k", many.clone()), ("other", many)]);
        let c = condition(r#"{"StringLike":{"k":["*","${other}"]}}"#);
        assert!(!c.holds(&ctx, Readings::All), "an Allow does not hold");
        assert!(c.holds(&ctx, Readings::Any), "a Deny applies");
        // Fewer are decided one by one: this one holds for every reading.
        let few = Ambiguous(vec![
            ("k", vec!["a".into(), "b".into()]),
            ("other", vec!["x".into(), "y".into()]),
        ]);
        assert!(c.holds(&few, Readings::All));
    }

    #[test]
    fn policy_variables_are_filled_per_request() {
        let ctx: std::collections::HashMap<String, Vec<String>> =
            [("aws:username".to_string(), vec!["bob".to_string()])].into();
        assert_eq!(substitute("${aws:username}", &ctx).as_deref(), Some("bob"));
        assert_eq!(
            substitute("home/${aws:UserName}/*", &ctx).as_deref(),
            Some("home/bob/*")
        );
        assert_eq!(substitute("${aws:userid}", &ctx), None);
        assert_eq!(
            substitute("${aws:userid, 'anon'}", &ctx).as_deref(),
            Some("anon")
        );
        assert_eq!(substitute("a${*}b${$}", &ctx).as_deref(), Some("a*b$"));
        assert_eq!(substitute("${unterminated", &ctx), None);
    }
}
