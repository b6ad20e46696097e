//! Request quotas: AWS KMS's throttling, per account, Region and quota class.
//!
//! Each (account, Region, class) has a token bucket holding one second of its rate (at least one
//! request), full when first used, refilled continuously: kept as the GCRA's one "theoretical
//! arrival time" in an atomic, so that a request takes no lock once its scope's buckets exist.
//! A request counts once, against its caller's account and the Region it signed for (as AWS
//! counts a cross-account request against the caller), after authentication and before the
//! operation; a throttled request takes no token. See docs/quotas.md.

use crate::dispatch::{ALL_OPERATIONS, Named};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;
use trent_crypto::asymmetric::AsymmetricSpec;
use trent_kms::keyspec::KeyKind;
use trent_kms::{Caller, Kms};

/// The quota classes shared by several operations, by the names configuration uses; every other
/// class is one operation's own quota, named by the operation.
const SHARED: [&str; 9] = [
    "symmetric",
    "rsa",
    "ecc",
    "ml-dsa",
    "ml-kem",
    "data-key-pair-ecc",
    "data-key-pair-rsa-2048",
    "data-key-pair-rsa-3072",
    "data-key-pair-rsa-4096",
];

/// Every class: the shared ones, then one per operation of [`ALL_OPERATIONS`].
const CLASSES: usize = SHARED.len() + ALL_OPERATIONS.len();

/// What a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QuotaClass(u8);

impl QuotaClass {
    /// Cryptographic operations with symmetric keys (and HMAC keys, and GenerateRandom).
    pub const SYMMETRIC: QuotaClass = QuotaClass(0);
    /// Cryptographic operations with RSA keys.
    pub const RSA: QuotaClass = QuotaClass(1);
    /// Cryptographic operations with elliptic-curve keys, and DeriveSharedSecret.
    pub const ECC: QuotaClass = QuotaClass(2);
    /// Sign and Verify with ML-DSA keys.
    pub const ML_DSA: QuotaClass = QuotaClass(3);
    /// Encapsulate and Decapsulate (ML-KEM keys).
    pub const ML_KEM: QuotaClass = QuotaClass(4);
    /// GenerateDataKeyPair(WithoutPlaintext) of every KeyPairSpec but RSA's.
    pub const DATA_KEY_PAIR_ECC: QuotaClass = QuotaClass(5);
    pub const DATA_KEY_PAIR_RSA_2048: QuotaClass = QuotaClass(6);
    pub const DATA_KEY_PAIR_RSA_3072: QuotaClass = QuotaClass(7);
    pub const DATA_KEY_PAIR_RSA_4096: QuotaClass = QuotaClass(8);

    /// The quota of one operation of its own.
    fn own(op: &str) -> Option<QuotaClass> {
        let i = ALL_OPERATIONS.iter().position(|o| *o == op)?;
        Some(QuotaClass((SHARED.len() + i) as u8))
    }

    fn index(self) -> usize {
        self.0 as usize
    }

    /// The class's name: a shared class's (`symmetric`, `rsa`, ...) or the operation's.
    pub fn name(self) -> &'static str {
        let i = self.index();
        SHARED
            .get(i)
            .or_else(|| ALL_OPERATIONS.get(i - SHARED.len()))
            .copied()
            .unwrap_or("unknown")
    }

    /// The class a configuration names: a shared class, or an operation with a quota of its own
    /// (an operation that counts against a shared class has no class of its own to set).
    pub fn from_name(name: &str) -> Option<QuotaClass> {
        match SHARED.iter().position(|s| *s == name) {
            Some(i) => Some(QuotaClass(i as u8)),
            None if matches!(rule(name), Rule::Own(_)) => QuotaClass::own(name),
            None => None,
        }
    }

    /// Every class a request can count against.
    #[cfg(test)]
    fn all() -> impl Iterator<Item = QuotaClass> {
        (0..CLASSES)
            .map(|i| QuotaClass(i as u8))
            .filter(|c| c.index() < SHARED.len() || matches!(rule(c.name()), Rule::Own(_)))
    }
}

/// How an operation's requests find their class: the one table of it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Rule {
    /// Its own quota, with AWS's default rate.
    Own(f64),
    /// A shared class whatever the request.
    Shared(QuotaClass),
    /// The shared class of the key's kind (`KeyId`; ReEncrypt: either key, an asymmetric one
    /// first); `unknown` when the caller's own account has no such key (another account's key
    /// is never looked at, so that the class says nothing about it).
    ByKey { unknown: QuotaClass },
    /// GenerateDataKeyPair(WithoutPlaintext): by the `KeyPairSpec` asked for.
    ByKeyPairSpec,
}

/// The quota class of every operation, as AWS's "Request quotas" table sorts them.
fn rule(op: &str) -> Rule {
    use Rule::*;
    match op {
        "Decrypt" | "Encrypt" | "ReEncrypt" => ByKey {
            unknown: QuotaClass::SYMMETRIC,
        },
        "Sign" | "Verify" => ByKey {
            unknown: QuotaClass::ECC,
        },
        "GenerateDataKey"
        | "GenerateDataKeyWithoutPlaintext"
        | "GenerateMac"
        | "VerifyMac"
        | "GenerateRandom" => Shared(QuotaClass::SYMMETRIC),
        "DeriveSharedSecret" => Shared(QuotaClass::ECC),
        "Encapsulate" | "Decapsulate" => Shared(QuotaClass::ML_KEM),
        "GenerateDataKeyPair" | "GenerateDataKeyPairWithoutPlaintext" => ByKeyPairSpec,
        "DescribeKey" | "GetPublicKey" | "ListResourceTags" => Own(2000.0),
        "GetKeyPolicy" | "GetKeyRotationStatus" => Own(1000.0),
        "ListAliases" | "ListKeys" => Own(500.0),
        "ListGrants" | "ListKeyPolicies" | "ListKeyRotations" | "ListRetirableGrants" => Own(100.0),
        "CreateGrant" | "RetireGrant" | "RevokeGrant" => Own(50.0),
        "DeleteAlias"
        | "DeleteImportedKeyMaterial"
        | "EnableKeyRotation"
        | "ImportKeyMaterial"
        | "PutKeyPolicy"
        | "ScheduleKeyDeletion" => Own(15.0),
        "TagResource" => Own(10.0),
        "GetParametersForImport" => Own(1.0),
        // CreateKey, CreateAlias, RotateKeyOnDemand, ReplicateKey, GetKeyLastUsage and every
        // other control operation, the custom key store ones included.
        _ => Own(5.0),
    }
}

/// The shared classes an operation's requests may count against, for a message.
fn shared_class_of(op: &str) -> Option<&'static str> {
    match rule(op) {
        _ if !ALL_OPERATIONS.contains(&op) => None,
        Rule::Own(_) => None,
        Rule::Shared(class) => Some(class.name()),
        Rule::ByKey { .. } => Some("symmetric, rsa, ecc or ml-dsa, by the key"),
        Rule::ByKeyPairSpec => Some("data-key-pair-ecc or data-key-pair-rsa-*, by the KeyPairSpec"),
    }
}

/// AWS's default rate of `class` in `region`, requests per second.
pub fn aws_rate(class: QuotaClass, region: &str) -> f64 {
    match class {
        QuotaClass::SYMMETRIC => match region {
            "us-east-1" | "us-west-2" | "eu-west-1" => 100_000.0,
            "us-east-2" | "ap-southeast-1" | "ap-southeast-2" | "ap-northeast-1"
            | "eu-central-1" | "eu-west-2" => 20_000.0,
            _ => 10_000.0,
        },
        QuotaClass::RSA | QuotaClass::ECC | QuotaClass::ML_DSA | QuotaClass::ML_KEM => 1000.0,
        QuotaClass::DATA_KEY_PAIR_ECC => 100.0,
        QuotaClass::DATA_KEY_PAIR_RSA_2048 => 20.0,
        QuotaClass::DATA_KEY_PAIR_RSA_3072 => 4.0,
        QuotaClass::DATA_KEY_PAIR_RSA_4096 => 1.0,
        own => match rule(own.name()) {
            Rule::Own(rate) => rate,
            _ => f64::INFINITY,
        },
    }
}

/// trent's default rates are AWS's standard figures (10,000 symmetric, whatever the Region)
/// times this.
pub const DEFAULT_FACTOR: f64 = 100.0;

/// The table every rule starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QuotaBase {
    /// AWS's table times [`DEFAULT_FACTOR`].
    #[default]
    Default,
    /// AWS's own default table, with its per-Region symmetric figures.
    Aws,
    /// No quota.
    Off,
}

impl QuotaBase {
    pub fn from_name(name: &str) -> Option<QuotaBase> {
        match name {
            "default" => Some(QuotaBase::Default),
            "aws" => Some(QuotaBase::Aws),
            "off" => Some(QuotaBase::Off),
            _ => None,
        }
    }

    fn rate(self, class: QuotaClass, region: &str) -> Rate {
        match self {
            QuotaBase::Default => Rate::PerSecond(aws_rate(class, "") * DEFAULT_FACTOR),
            QuotaBase::Aws => Rate::PerSecond(aws_rate(class, region)),
            QuotaBase::Off => Rate::Unlimited,
        }
    }
}

/// A rate: requests per second (fractions allowed, 0 refuses every request), or no limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    PerSecond(f64),
    Unlimited,
}

impl Rate {
    pub fn parse(text: &str) -> Result<Rate, String> {
        if text == "unlimited" {
            return Ok(Rate::Unlimited);
        }
        match text.parse::<f64>() {
            Ok(r) if r.is_finite() && r >= 0.0 => Ok(Rate::PerSecond(r)),
            _ => Err(format!(
                "'{text}' is not a rate: requests per second (0 or more) or unlimited"
            )),
        }
    }
}

/// One configured rate: for a class (or every class), in an account, a Region, both or
/// everywhere.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaRule {
    pub account: Option<String>,
    pub region: Option<String>,
    /// None: every class.
    pub class: Option<QuotaClass>,
    pub rate: Rate,
}

impl QuotaRule {
    /// `[ACCOUNT[/REGION]:]CLASS=RATE`, `*/REGION:` for a Region in every account, `*` as CLASS
    /// for every class.
    pub fn parse(text: &str) -> Result<QuotaRule, String> {
        let bad =
            |why: &str| format!("'{text}': {why} (the form is [ACCOUNT[/REGION]:]CLASS=RATE)");
        let (scope, setting) = match text.rsplit_once(':') {
            Some((scope, setting)) => (Some(scope), setting),
            None => (None, text),
        };
        let (class, rate) = setting
            .split_once('=')
            .ok_or_else(|| bad("no '=' between the class and its rate"))?;
        let (account, region) = match scope {
            None => (None, None),
            Some(scope) => match scope.split_once('/') {
                Some((account, region)) => (Some(account), Some(region)),
                None => (Some(scope), None),
            },
        };
        let rule = QuotaRule {
            account: account.filter(|a| *a != "*").map(str::to_owned),
            region: region.filter(|r| *r != "*").map(str::to_owned),
            class: match class.trim() {
                "*" => None,
                name => Some(QuotaClass::from_name(name).ok_or_else(|| {
                    match shared_class_of(name) {
                        Some(shared) => bad(&format!(
                            "{name} counts against a shared class ({shared}): set that one"
                        )),
                        None => bad(&format!(
                            "'{name}' is not a quota class (see docs/quotas.md)"
                        )),
                    }
                })?),
            },
            rate: Rate::parse(rate.trim()).map_err(|e| bad(&e))?,
        };
        rule.check().map_err(|e| bad(&e))?;
        Ok(rule)
    }

    /// Whether the account and Region it names are such names.
    pub fn check(&self) -> Result<(), String> {
        if let Some(a) = &self.account
            && !trent_kms::ids::is_account_id(a)
        {
            return Err(format!("'{a}' is not a 12-digit account id"));
        }
        if let Some(r) = &self.region
            && (r.is_empty()
                || !r
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
        {
            return Err(format!("'{r}' is not a Region name"));
        }
        Ok(())
    }

    fn applies(&self, account: &str, region: &str, class: QuotaClass) -> bool {
        self.account.as_deref().is_none_or(|a| a == account)
            && self.region.as_deref().is_none_or(|r| r == region)
            && self.class.is_none_or(|c| c == class)
    }

    /// Which of two rules that apply wins: the one naming more (an account over a Region over
    /// neither, then a class over every class).
    fn specificity(&self) -> u8 {
        (self.account.is_some() as u8) << 2
            | (self.region.is_some() as u8) << 1
            | self.class.is_some() as u8
    }
}

/// The quotas a server applies: a base table and rules over it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuotaConfig {
    pub base: QuotaBase,
    /// In order: of two equally specific rules, the later wins.
    pub rules: Vec<QuotaRule>,
}

impl QuotaConfig {
    /// The rate of `class` for `account` in `region`.
    pub fn rate(&self, account: &str, region: &str, class: QuotaClass) -> Rate {
        let mut best: Option<&QuotaRule> = None;
        for rule in self
            .rules
            .iter()
            .filter(|r| r.applies(account, region, class))
        {
            if best.is_none_or(|b| rule.specificity() >= b.specificity()) {
                best = Some(rule);
            }
        }
        best.map_or_else(|| self.base.rate(class, region), |r| r.rate)
    }

    /// Whether no request can ever be throttled.
    fn unlimited(&self) -> bool {
        self.base == QuotaBase::Off && self.rules.iter().all(|r| r.rate == Rate::Unlimited)
    }
}

/// One bucket: the GCRA's theoretical arrival time, nanoseconds since the quotas' epoch.
#[derive(Debug)]
pub struct Bucket {
    tat: AtomicU64,
    /// Nanoseconds per token; 0 for a rate of 0 (nothing passes).
    interval: u64,
    /// How far ahead of now the arrival time may run: the burst beyond one request.
    tolerance: u64,
}

impl Bucket {
    /// A full bucket for `rate` requests per second, holding one second of it (at least one).
    pub fn new(rate: f64) -> Bucket {
        if rate <= 0.0 {
            return Bucket {
                tat: AtomicU64::new(0),
                interval: 0,
                tolerance: 0,
            };
        }
        let interval = (1e9 / rate).clamp(1.0, u64::MAX as f64 / 4.0) as u64;
        let burst = rate.floor().max(1.0);
        Bucket {
            tat: AtomicU64::new(0),
            interval,
            tolerance: ((burst - 1.0) * interval as f64).min(u64::MAX as f64 / 4.0) as u64,
        }
    }

    /// Take one token at `now` (nanoseconds since the epoch), if there is one.
    pub fn try_take(&self, now: u64) -> bool {
        if self.interval == 0 {
            return false;
        }
        let mut tat = self.tat.load(Relaxed);
        loop {
            let start = tat.max(now);
            if start - now > self.tolerance {
                return false;
            }
            match self
                .tat
                .compare_exchange_weak(tat, start + self.interval, Relaxed, Relaxed)
            {
                Ok(_) => return true,
                Err(current) => tat = current,
            }
        }
    }
}

/// The buckets of one account in one Region, by class (None: no limit).
struct ScopeBuckets {
    buckets: Box<[Option<Bucket>]>,
}

/// FNV-1a: the scope map's keys are account ids of configured principals and Region names of the
/// served list, never a caller's free choice, so a fast hash that is not flood-resistant fits.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

type FnvState = BuildHasherDefault<Fnv>;

/// account -> Region -> buckets.
type Scopes = HashMap<Box<str>, HashMap<Box<str>, ScopeBuckets, FnvState>, FnvState>;

/// Shards of the scope map, so that accounts do not share one lock word.
const SHARDS: usize = 16;

/// The quotas of a server: the configuration, and the buckets made as scopes are first used.
pub struct Quotas {
    config: QuotaConfig,
    /// Nothing is ever throttled: the check is skipped.
    unlimited: bool,
    /// (operation, its rule), sorted by operation.
    rules: Box<[(&'static str, Rule)]>,
    scopes: Box<[RwLock<Scopes>]>,
    epoch: Instant,
}

impl std::fmt::Debug for Quotas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quotas")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas::new(QuotaConfig::default())
    }
}

/// The shared class of cryptographic operations with a key of `kind`.
fn class_of_kind(kind: KeyKind) -> QuotaClass {
    use AsymmetricSpec as A;
    match kind {
        KeyKind::Symmetric | KeyKind::Hmac(_) => QuotaClass::SYMMETRIC,
        KeyKind::Asymmetric(A::Rsa2048 | A::Rsa3072 | A::Rsa4096) => QuotaClass::RSA,
        KeyKind::Asymmetric(A::MlDsa44 | A::MlDsa65 | A::MlDsa87) => QuotaClass::ML_DSA,
        KeyKind::Asymmetric(A::MlKem512 | A::MlKem768 | A::MlKem1024) => QuotaClass::ML_KEM,
        KeyKind::Asymmetric(_) => QuotaClass::ECC,
    }
}

impl Quotas {
    pub fn new(config: QuotaConfig) -> Quotas {
        let mut rules: Vec<(&'static str, Rule)> =
            ALL_OPERATIONS.iter().map(|op| (*op, rule(op))).collect();
        rules.sort_unstable_by_key(|(op, _)| *op);
        Quotas {
            unlimited: config.unlimited(),
            config,
            rules: rules.into(),
            scopes: (0..SHARDS).map(|_| RwLock::default()).collect(),
            epoch: Instant::now(),
        }
    }

    pub fn config(&self) -> &QuotaConfig {
        &self.config
    }

    /// The class a request of `op` by `caller`, naming `named`, counts against.
    pub fn class(&self, kms: &Kms, caller: &Caller, op: &str, named: Named<'_>) -> QuotaClass {
        let rule = match self.rules.binary_search_by_key(&op, |(o, _)| *o) {
            Ok(i) => self.rules[i].1,
            Err(_) => Rule::Own(f64::INFINITY),
        };
        match rule {
            Rule::Own(_) => QuotaClass::own(op).unwrap_or(QuotaClass::SYMMETRIC),
            Rule::Shared(class) => class,
            Rule::ByKey { unknown } => {
                let kinds = named
                    .keys
                    .into_iter()
                    .flatten()
                    .filter_map(|id| kms.own_key_kind(caller, id))
                    .map(class_of_kind);
                let mut found = None;
                for class in kinds {
                    if found.is_none() || class != QuotaClass::SYMMETRIC {
                        found = Some(class);
                    }
                }
                found.unwrap_or(unknown)
            }
            Rule::ByKeyPairSpec => match named.key_pair_spec {
                Some("RSA_2048") => QuotaClass::DATA_KEY_PAIR_RSA_2048,
                Some("RSA_3072") => QuotaClass::DATA_KEY_PAIR_RSA_3072,
                Some("RSA_4096") => QuotaClass::DATA_KEY_PAIR_RSA_4096,
                _ => QuotaClass::DATA_KEY_PAIR_ECC,
            },
        }
    }

    /// Count a request of `op` by `caller`, naming `named`: `Err` with its class when it is over
    /// the quota.
    pub fn check(
        &self,
        kms: &Kms,
        caller: &Caller,
        op: &str,
        named: Named<'_>,
    ) -> Result<(), QuotaClass> {
        if self.unlimited {
            return Ok(());
        }
        let class = self.class(kms, caller, op, named);
        let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX / 2);
        let taken = self.with_scope(&caller.account, &caller.region, |scope| {
            scope.buckets[class.index()]
                .as_ref()
                .is_none_or(|bucket| bucket.try_take(now))
        });
        if taken { Ok(()) } else { Err(class) }
    }

    /// Run `f` on the buckets of `account` in `region`, made on first use.
    fn with_scope<R>(&self, account: &str, region: &str, f: impl FnOnce(&ScopeBuckets) -> R) -> R {
        let shard = &self.scopes[FnvState::default().hash_one(account) as usize % SHARDS];
        if let Some(s) = shard.read().get(account).and_then(|r| r.get(region)) {
            return f(s);
        }
        let mut map = shard.write();
        let scope = map
            .entry(account.into())
            .or_default()
            .entry(region.into())
            .or_insert_with(|| ScopeBuckets {
                buckets: (0..CLASSES)
                    .map(|i| QuotaClass(i as u8))
                    .map(|class| match self.config.rate(account, region, class) {
                        Rate::Unlimited => None,
                        Rate::PerSecond(r) if r.is_infinite() => None,
                        Rate::PerSecond(r) => Some(Bucket::new(r)),
                    })
                    .collect(),
            });
        f(scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn a_bucket_holds_one_second_and_refills_at_its_rate() {
        let b = Bucket::new(5.0);
        let t0 = 10 * S;
        assert_eq!((0..10).filter(|_| b.try_take(t0)).count(), 5);
        // One token every 200 ms.
        assert!(!b.try_take(t0 + S / 5 - 1));
        assert!(b.try_take(t0 + S / 5));
        assert!(!b.try_take(t0 + S / 5));
        // A second later it is full again, and never holds more than a second's worth.
        assert_eq!((0..10).filter(|_| b.try_take(t0 + 10 * S)).count(), 5);
    }

    #[test]
    fn a_rate_below_one_lets_one_request_through_then_waits() {
        let b = Bucket::new(0.25);
        assert!(b.try_take(S));
        assert!(!b.try_take(S));
        assert!(!b.try_take(S + 4 * S - 1));
        assert!(b.try_take(S + 4 * S));
        let never = Bucket::new(0.0);
        assert!(!never.try_take(0));
        assert!(!never.try_take(1000 * S));
    }

    #[test]
    fn a_bucket_counts_right_from_many_threads() {
        let b = Bucket::new(1000.0);
        let taken = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        if b.try_take(S) {
                            taken.fetch_add(1, Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(taken.load(Relaxed), 1000);
    }

    #[test]
    fn class_names_read_back() {
        for class in QuotaClass::all() {
            assert_eq!(QuotaClass::from_name(class.name()), Some(class));
        }
        assert_eq!(
            QuotaClass::from_name("CreateKey").unwrap().name(),
            "CreateKey"
        );
        assert_eq!(QuotaClass::from_name("Nope"), None);
    }

    #[test]
    fn aws_table() {
        let own = |op| QuotaClass::from_name(op).unwrap();
        assert_eq!(aws_rate(QuotaClass::SYMMETRIC, "us-east-1"), 100_000.0);
        assert_eq!(aws_rate(QuotaClass::SYMMETRIC, "eu-west-2"), 20_000.0);
        assert_eq!(aws_rate(QuotaClass::SYMMETRIC, "sa-east-1"), 10_000.0);
        assert_eq!(aws_rate(QuotaClass::RSA, "us-east-1"), 1000.0);
        assert_eq!(aws_rate(own("CreateKey"), "us-east-1"), 5.0);
        assert_eq!(aws_rate(own("TagResource"), "us-east-1"), 10.0);
        assert_eq!(aws_rate(own("PutKeyPolicy"), "us-east-1"), 15.0);
        assert_eq!(aws_rate(own("CreateGrant"), "us-east-1"), 50.0);
        assert_eq!(aws_rate(own("ListGrants"), "us-east-1"), 100.0);
        assert_eq!(aws_rate(own("ListKeys"), "us-east-1"), 500.0);
        assert_eq!(aws_rate(own("GetKeyPolicy"), "us-east-1"), 1000.0);
        assert_eq!(aws_rate(own("DescribeKey"), "us-east-1"), 2000.0);
        assert_eq!(aws_rate(own("GetParametersForImport"), "us-east-1"), 1.0);
        assert_eq!(
            aws_rate(QuotaClass::DATA_KEY_PAIR_RSA_4096, "us-east-1"),
            1.0
        );
        // Every operation has a class with a finite rate.
        for op in ALL_OPERATIONS {
            if let Rule::Own(rate) = rule(op) {
                assert!(rate.is_finite() && rate > 0.0, "{op}");
            }
        }
    }

    #[test]
    fn rules_parse_and_the_most_specific_wins() {
        let config = QuotaConfig {
            base: QuotaBase::Aws,
            rules: [
                "CreateKey=50",
                "*/eu-west-1:CreateKey=40",
                "111122223333:CreateKey=30",
                "111122223333:*=unlimited",
                "111122223333/eu-west-1:CreateKey=0.5",
                "symmetric=7",
            ]
            .iter()
            .map(|r| QuotaRule::parse(r).unwrap())
            .collect(),
        };
        let create = QuotaClass::from_name("CreateKey").unwrap();
        let rate = |a, r, c| config.rate(a, r, c);
        assert_eq!(
            rate("444455556666", "us-east-1", create),
            Rate::PerSecond(50.0)
        );
        assert_eq!(
            rate("444455556666", "eu-west-1", create),
            Rate::PerSecond(40.0)
        );
        assert_eq!(
            rate("111122223333", "us-east-1", create),
            Rate::PerSecond(30.0)
        );
        assert_eq!(
            rate("111122223333", "eu-west-1", create),
            Rate::PerSecond(0.5)
        );
        assert_eq!(
            rate("111122223333", "us-east-1", QuotaClass::SYMMETRIC),
            Rate::Unlimited
        );
        assert_eq!(
            rate("444455556666", "us-east-1", QuotaClass::SYMMETRIC),
            Rate::PerSecond(7.0)
        );
        assert_eq!(
            rate("444455556666", "us-east-1", QuotaClass::RSA),
            Rate::PerSecond(1000.0)
        );
        for bad in [
            "CreateKey",
            "Nope=5",
            "CreateKey=-1",
            "CreateKey=fast",
            "12345:CreateKey=5",
            "111122223333/EU:CreateKey=5",
        ] {
            assert!(QuotaRule::parse(bad).is_err(), "{bad}");
        }
        let off = QuotaConfig {
            base: QuotaBase::Off,
            rules: vec![],
        };
        assert!(off.unlimited());
        assert_eq!(
            off.rate("111122223333", "us-east-1", create),
            Rate::Unlimited
        );
        let default = QuotaConfig::default();
        assert_eq!(
            default.rate("111122223333", "us-east-1", create),
            Rate::PerSecond(500.0)
        );
        assert_eq!(
            default.rate("111122223333", "us-east-1", QuotaClass::SYMMETRIC),
            Rate::PerSecond(1_000_000.0)
        );
    }

    #[tokio::test]
    async fn each_request_counts_against_its_own_class_bucket() {
        let store = std::sync::Arc::new(trent_store::SqliteStore::open_in_memory().unwrap());
        let root = std::sync::Arc::new(trent_crypto::LocalRootKey::ephemeral().unwrap());
        let kms = Kms::open(store, root).await.unwrap();
        let alice = Caller::new(
            "111122223333",
            "us-east-1",
            "arn:aws:iam::111122223333:root",
        );
        let bob = Caller::new(
            "444455556666",
            "us-east-1",
            "arn:aws:iam::444455556666:root",
        );
        let q = Quotas::new(QuotaConfig {
            base: QuotaBase::Aws,
            rules: vec![QuotaRule::parse("symmetric=0.001").unwrap()],
        });
        let named = Named::default();
        let passed = |caller: &Caller, op: &str| {
            (0..10)
                .filter(|_| q.check(&kms, caller, op, named).is_ok())
                .count()
        };
        // AWS's figures, each operation its own bucket, each account its own.
        assert_eq!(passed(&alice, "CreateKey"), 5);
        assert_eq!(passed(&alice, "GetParametersForImport"), 1);
        assert_eq!(passed(&alice, "TagResource"), 10);
        assert_eq!(passed(&alice, "CreateAlias"), 5);
        assert_eq!(passed(&bob, "CreateKey"), 5);
        // Encrypt, Decrypt and GenerateRandom share one class.
        assert_eq!(passed(&alice, "Encrypt"), 1);
        assert_eq!(
            q.check(&kms, &alice, "GenerateRandom", named),
            Err(QuotaClass::SYMMETRIC)
        );
        assert_eq!(
            q.check(&kms, &alice, "Decrypt", named),
            Err(QuotaClass::SYMMETRIC)
        );
        // A data key pair by its spec.
        let pair = |spec| Named {
            keys: [None, None],
            key_pair_spec: Some(spec),
        };
        assert_eq!(
            q.class(&kms, &alice, "GenerateDataKeyPair", pair("RSA_4096")),
            QuotaClass::DATA_KEY_PAIR_RSA_4096
        );
        assert_eq!(
            q.class(
                &kms,
                &alice,
                "GenerateDataKeyPairWithoutPlaintext",
                pair("ECC_NIST_P256")
            ),
            QuotaClass::DATA_KEY_PAIR_ECC
        );
        // Sign with a key that names nothing of the caller's counts against ecc.
        let other = Named {
            keys: [
                Some("arn:aws:kms:us-east-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
                None,
            ],
            key_pair_spec: None,
        };
        assert_eq!(q.class(&kms, &alice, "Sign", other), QuotaClass::ECC);
    }
}
