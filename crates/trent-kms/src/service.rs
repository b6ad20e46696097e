//! The service: the in-memory view of every key and alias, kept in step with the store.
//!
//! Crypto requests read only this view (a read lock and an `Arc` clone); they never touch storage.
//! Every change goes through [`Kms::write_key`] and friends: one writer at a time, the store first
//! (durably), then the view, so the node that made a change sees it before the call returns.

use crate::access::{self, Context, Denied, Facts, Question};
use crate::clock::Clock;
use crate::error::KmsError;
use crate::grant::{Grant, GrantTokens};
use crate::ids::{self, Caller, KeyRef};
use crate::keypool::KeyPairPool;
use crate::keyspec::{self, KeyKind};
use crate::model::{KeyRecord, KeyState, MaterialInfo};
use crate::policy::{self, Policy};
use crate::usage::{LastUse, UsageCell};
use parking_lot::RwLock;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use trent_crypto::{
    CryptoError, HmacKey, KeyMaterial, MaterialId, PrivateKey, RootKey, SymmetricKey,
};
use trent_store::{AliasRow, GrantRow, KeyRow, MaterialRow, Scope, Store, Transaction, Write};

/// Unwrapped key material, parsed once into what its operations use.
#[derive(Debug)]
pub enum Material {
    Symmetric(SymmetricKey),
    Private(Box<PrivateKey>),
    Hmac(Box<HmacKey>),
}

impl Material {
    /// Parse the plaintext material of a key of `spec` (PKCS#8 DER for asymmetric keys).
    pub fn load(spec: &str, id: MaterialId, bytes: &KeyMaterial) -> Result<Material, CryptoError> {
        match keyspec::kind(spec) {
            Some(KeyKind::Symmetric) => Ok(Material::Symmetric(SymmetricKey::new(id, bytes)?)),
            Some(KeyKind::Asymmetric(a)) => Ok(Material::Private(Box::new(
                PrivateKey::from_pkcs8(a, bytes.expose())?,
            ))),
            Some(KeyKind::Hmac(m)) => {
                Ok(Material::Hmac(Box::new(HmacKey::new(m, bytes.expose())?)))
            }
            None => Err(CryptoError::BadKeyMaterial("unknown key spec")),
        }
    }
}

/// The materials of a key, by id.
pub type Materials = Arc<HashMap<MaterialId, Arc<Material>>>;

/// A key as the hot path sees it: its record and its unwrapped materials, ready to use.
#[derive(Debug)]
pub struct CachedKey {
    pub record: KeyRecord,
    pub version: i64,
    pub arn: String,
    pub materials: Materials,
    /// The key policy, parsed.
    pub policy: Arc<Policy>,
    /// The key's last cryptographic use, carried from version to version of the key.
    pub usage: Arc<UsageCell>,
    /// A material the record counts as present was not loaded (its stored row does not unwrap
    /// under the root key or does not parse): every cryptographic use of the key fails with
    /// KMSInternalException, while it can still be described and managed.
    pub unusable: bool,
}

impl CachedKey {
    /// A cached key of `record` with `materials`, its ARN and usability derived from them.
    pub fn new(
        record: KeyRecord,
        version: i64,
        materials: Materials,
        policy: Arc<Policy>,
        usage: Arc<UsageCell>,
    ) -> CachedKey {
        let unusable = record
            .materials
            .iter()
            .filter(|m| m.present())
            .any(|m| MaterialId::from_hex(&m.id).is_none_or(|id| !materials.contains_key(&id)));
        CachedKey {
            arn: record.arn(),
            record,
            version,
            materials,
            policy,
            usage,
            unusable,
        }
    }

    fn current(&self) -> Option<&Material> {
        let id = MaterialId::from_hex(self.record.current_material.as_deref()?)?;
        self.materials.get(&id).map(|m| &**m)
    }

    /// The symmetric material new ciphertexts use.
    pub fn current_material(&self) -> Option<&SymmetricKey> {
        match self.current()? {
            Material::Symmetric(k) => Some(k),
            _ => None,
        }
    }

    /// The symmetric material a ciphertext names.
    pub fn symmetric_material(&self, id: &MaterialId) -> Option<&SymmetricKey> {
        match &**self.materials.get(id)? {
            Material::Symmetric(k) => Some(k),
            _ => None,
        }
    }

    /// The private key of an asymmetric key.
    pub fn private_key(&self) -> Option<&PrivateKey> {
        match self.current()? {
            Material::Private(k) => Some(k),
            _ => None,
        }
    }

    /// The key of an HMAC key.
    pub fn hmac_key(&self) -> Option<&HmacKey> {
        match self.current()? {
            Material::Hmac(k) => Some(k),
            _ => None,
        }
    }
}

/// The grants of one key, by id and by grantee (what authorization looks up).
#[derive(Debug, Default)]
pub(crate) struct KeyGrants {
    pub by_id: HashMap<String, Arc<Grant>>,
    pub by_grantee: HashMap<String, Vec<Arc<Grant>>>,
}

impl KeyGrants {
    pub fn insert(&mut self, g: Arc<Grant>) {
        self.by_grantee
            .entry(g.grantee_principal.clone())
            .or_default()
            .push(g.clone());
        self.by_id.insert(g.grant_id.clone(), g);
    }

    pub fn remove(&mut self, grant_id: &str) -> Option<Arc<Grant>> {
        let g = self.by_id.remove(grant_id)?;
        if let Some(list) = self.by_grantee.get_mut(&g.grantee_principal) {
            list.retain(|x| x.grant_id != grant_id);
            if list.is_empty() {
                self.by_grantee.remove(&g.grantee_principal);
            }
        }
        Some(g)
    }
}

#[derive(Debug, Default)]
pub(crate) struct ScopeView {
    pub keys: HashMap<String, Arc<CachedKey>>,
    pub aliases: BTreeMap<String, AliasRow>,
    /// key id -> its grants.
    pub grants: HashMap<String, KeyGrants>,
}

/// region -> account -> resources.
#[derive(Debug, Default)]
pub(crate) struct View {
    scopes: HashMap<String, HashMap<String, ScopeView>>,
    /// Key rows the load left out because their record does not parse: (account, region, key
    /// id) -> the row's version, so that catching up with the store does not take them for
    /// changes made elsewhere.
    pub left_out: HashMap<(String, String, String), i64>,
}

impl View {
    pub(crate) fn scope(&self, account: &str, region: &str) -> Option<&ScopeView> {
        self.scopes.get(region)?.get(account)
    }

    pub(crate) fn scope_mut(&mut self, scope: &Scope) -> &mut ScopeView {
        self.scopes
            .entry(scope.region.clone())
            .or_default()
            .entry(scope.account.clone())
            .or_default()
    }

    /// Every account's resources in one region.
    pub(crate) fn scopes_in(&self, region: &str) -> impl Iterator<Item = &ScopeView> {
        self.scopes.get(region).into_iter().flat_map(|a| a.values())
    }

    /// Every scope's resources.
    pub(crate) fn all_scopes(&self) -> impl Iterator<Item = &ScopeView> {
        self.scopes.values().flat_map(|a| a.values())
    }

    /// Every region with resources.
    pub(crate) fn regions(&self) -> impl Iterator<Item = &str> {
        self.scopes.keys().map(String::as_str)
    }

    pub(crate) fn all_keys(&self) -> impl Iterator<Item = &Arc<CachedKey>> {
        self.scopes
            .values()
            .flat_map(|accounts| accounts.values())
            .flat_map(|s| s.keys.values())
    }
}

/// The key management service.
pub struct Kms {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) root: Arc<dyn RootKey>,
    pub(crate) view: RwLock<View>,
    pub(crate) writer: tokio::sync::Mutex<()>,
    pub clock: Clock,
    /// This node's name as a holder of the scheduler lease.
    pub(crate) node_id: String,
    /// How long the scheduler lease lasts unless renewed.
    pub(crate) lease_ttl: std::time::Duration,
    /// Wakes the scheduled work early (a replica to finish, a rotation asked for).
    pub wake: tokio::sync::Notify,
    pub(crate) keypool: KeyPairPool,
    pub(crate) grant_tokens: GrantTokens,
    /// What the last load of the view left out.
    pub(crate) load_report: parking_lot::Mutex<LoadReport>,
    /// The Regions a replica or primary may move to (ReplicateKey, UpdatePrimaryRegion); None:
    /// any Region name.
    pub(crate) regions: Option<Arc<[String]>>,
}

/// Rows of the store the last load of the view could not read, and so left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Key records that do not parse.
    pub skipped_keys: u64,
    /// Grants that do not parse.
    pub skipped_grants: u64,
}

/// What a request asks to do, for authorization: the IAM action and the request's condition
/// values.
pub struct Access<'a> {
    /// The IAM action without `kms:` (`Encrypt`, `ReEncryptFrom`).
    pub action: &'static str,
    pub facts: Facts<'a>,
    /// A further test for a grant to count (CreateGrant through a grant).
    pub grant_check: Option<&'a (dyn Fn(&Grant) -> bool + Sync)>,
}

impl<'a> Access<'a> {
    pub fn new(action: &'static str) -> Self {
        Self::with(action, Facts::default())
    }

    pub fn with(action: &'static str, facts: Facts<'a>) -> Self {
        Access {
            action,
            facts,
            grant_check: None,
        }
    }
}

/// The actions AWS allows on another account's key (by key ARN or alias ARN).
const CROSS_ACCOUNT_ACTIONS: &[&str] = &[
    "CreateGrant",
    "Decapsulate",
    "Decrypt",
    "DeriveSharedSecret",
    "DescribeKey",
    "Encapsulate",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateMac",
    "GetKeyRotationStatus",
    "GetPublicKey",
    "ListGrants",
    "ReEncryptFrom",
    "ReEncryptTo",
    "RetireGrant",
    "RevokeGrant",
    "Sign",
    "Verify",
    "VerifyMac",
];

/// AccessDeniedException for another account's key: the same words whether the key exists,
/// whatever the reason, as AWS says it.
pub(crate) fn hidden_key(caller: &Caller, action: &str) -> KmsError {
    KmsError::AccessDenied(format!(
        "User: {} is not authorized to perform: kms:{action} on this resource because the resource does not exist in this Region, no resource-based policies allow access, or a resource-based policy explicitly denies access",
        caller.principal_arn
    ))
}

/// Parse a stored key policy. One that no longer parses (written by an older, laxer build)
/// allows nothing rather than stopping the service.
fn stored_policy(arn: &str, text: &str) -> Arc<Policy> {
    Arc::new(policy::parse(text).unwrap_or_else(|e| {
        tracing::error!(key = %arn, error = %e, "stored key policy does not parse: it allows nothing");
        Policy {
            version: None,
            id: None,
            statements: Vec::new(),
        }
    }))
}

/// `NotFoundException` for an alias that does not exist.
pub(crate) fn alias_not_found(alias_arn: &str) -> KmsError {
    KmsError::NotFound(format!("Alias {alias_arn} is not found."))
}

/// The AAD binding a wrapped material to its key and material id.
pub(crate) fn material_aad(arn: &str, material_id: &str) -> Vec<u8> {
    format!("trent/v1/material|{arn}|{material_id}").into_bytes()
}

pub const ROOT_CHECK_SETTING: &str = "root-key-check";
const ROOT_CHECK_AAD: &[u8] = b"trent/v1/root-key-check";
const ROOT_CHECK_VALUE: &[u8] = b"trent root key check";

impl Kms {
    /// Open the service over a store: check that `root` is the root key this store was made
    /// with (or record it, on first use), then load and unwrap every key.
    pub async fn open(store: Arc<dyn Store>, root: Arc<dyn RootKey>) -> Result<Kms, OpenError> {
        check_root_key(store.as_ref(), root.as_ref()).await?;
        check_partition(store.as_ref()).await?;
        let grant_tokens = GrantTokens::new(grant_token_key(store.as_ref(), root.as_ref()).await?);
        let kms = Kms {
            store,
            root,
            view: RwLock::new(View::default()),
            writer: tokio::sync::Mutex::new(()),
            clock: Clock::new(),
            node_id: format!(
                "node-{}",
                hex::encode(
                    trent_crypto::primitives::random_array::<8>()
                        .map_err(|e| OpenError(e.to_string()))?
                )
            ),
            lease_ttl: std::time::Duration::from_secs(60),
            wake: tokio::sync::Notify::new(),
            keypool: KeyPairPool::new(crate::keypool::DEFAULT_CAPACITY),
            grant_tokens,
            load_report: parking_lot::Mutex::new(LoadReport::default()),
            regions: None,
        };
        kms.reload().await?;
        Ok(kms)
    }

    /// Keep up to `capacity` pre-generated RSA key pairs per RSA spec (see [`KeyPairPool`]).
    pub fn with_key_pool(mut self, capacity: usize) -> Self {
        self.keypool = KeyPairPool::new(capacity);
        self
    }

    /// Serve only `regions`: ReplicateKey and UpdatePrimaryRegion refuse any other.
    pub fn with_regions(mut self, regions: impl IntoIterator<Item = String>) -> Self {
        self.regions = Some(regions.into_iter().collect());
        self
    }

    /// Whether `region` is one this service serves.
    pub(crate) fn serves_region(&self, region: &str) -> bool {
        self.regions
            .as_ref()
            .is_none_or(|r| r.iter().any(|n| n == region))
    }

    /// Hold the scheduler lease for `ttl` at a time (it is renewed on every run).
    pub fn with_lease_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// Name this node for the scheduler lease. A name that stays the same across restarts lets a
    /// node killed while holding the lease take it back at once instead of waiting for it to
    /// expire.
    pub fn with_node_id(mut self, id: String) -> Self {
        self.node_id = id;
        self
    }

    /// This node's name as a holder of the scheduler lease.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Rebuild the whole view from the store.
    pub async fn reload(&self) -> Result<(), OpenError> {
        let snapshot = self
            .store
            .load_all()
            .await
            .map_err(|e| OpenError(e.to_string()))?;
        let mut materials: HashMap<(Scope, String), Vec<MaterialRow>> = HashMap::new();
        for m in snapshot.materials {
            materials
                .entry((m.scope.clone(), m.key_id.clone()))
                .or_default()
                .push(m);
        }
        let mut usage: HashMap<(Scope, String), LastUse> = snapshot
            .usage
            .into_iter()
            .filter_map(|u| Some(((u.scope, u.key_id), serde_json::from_str(&u.doc).ok()?)))
            .collect();
        // A reload keeps uses this node saw but has not flushed yet.
        let unflushed: HashMap<(Scope, String), Arc<UsageCell>> = self
            .view
            .read()
            .all_keys()
            .map(|k| ((k.record.scope(), k.record.key_id.clone()), k.usage.clone()))
            .collect();
        // One unreadable row costs its key or grant, never the service: a record or grant that
        // does not parse is left out, a material that does not unwrap makes its key unusable
        // (see `CachedKey::unusable`). Each is logged once per load and counted.
        let mut report = LoadReport::default();
        let mut view = View::default();
        for row in snapshot.keys {
            let mut record: KeyRecord = match serde_json::from_str(&row.doc) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(
                        account = %row.scope.account,
                        region = %row.scope.region,
                        key_id = %row.key_id,
                        error = %e,
                        "stored key record is unreadable: the key is left out"
                    );
                    report.skipped_keys += 1;
                    view.left_out.insert(
                        (
                            row.scope.account.clone(),
                            row.scope.region.clone(),
                            row.key_id.clone(),
                        ),
                        row.version,
                    );
                    continue;
                }
            };
            record.fill_in_materials();
            let cell = unflushed
                .get(&(row.scope.clone(), row.key_id.clone()))
                .cloned()
                .unwrap_or_else(|| {
                    Arc::new(UsageCell::from_stored(
                        usage.remove(&(row.scope.clone(), row.key_id.clone())),
                    ))
                });
            let rows = materials
                .remove(&(row.scope.clone(), row.key_id.clone()))
                .unwrap_or_default();
            let arn = record.arn();
            let mut unwrapped = HashMap::new();
            let mut unreadable = Vec::new();
            for m in rows {
                match self.load_material(&record, &arn, &m) {
                    Some((id, material)) => {
                        unwrapped.insert(id, Arc::new(material));
                    }
                    None => unreadable.push(m.material_id),
                }
            }
            let policy = stored_policy(&arn, &record.policy);
            let key = CachedKey::new(record, row.version, Arc::new(unwrapped), policy, cell);
            if key.unusable || !unreadable.is_empty() {
                // The material ids and the ARN only: nothing secret.
                tracing::error!(
                    key = %key.arn,
                    materials = ?unreadable,
                    "key material does not unwrap under the root key or does not parse: the key is unusable"
                );
            }
            view.scope_mut(&row.scope)
                .keys
                .insert(row.key_id.clone(), Arc::new(key));
        }
        for alias in snapshot.aliases {
            view.scope_mut(&alias.scope.clone())
                .aliases
                .insert(alias.alias_name.clone(), alias);
        }
        for row in snapshot.grants {
            let grant: Grant = match serde_json::from_str(&row.doc) {
                Ok(g) => g,
                Err(e) => {
                    tracing::error!(
                        account = %row.scope.account,
                        region = %row.scope.region,
                        key_id = %row.key_id,
                        grant_id = %row.grant_id,
                        error = %e,
                        "stored grant is unreadable: it is left out"
                    );
                    report.skipped_grants += 1;
                    continue;
                }
            };
            view.scope_mut(&row.scope)
                .grants
                .entry(row.key_id)
                .or_default()
                .insert(Arc::new(grant));
        }
        *self.view.write() = view;
        *self.load_report.lock() = report;
        Ok(())
    }

    /// One stored material of `record`, unwrapped under the root key and parsed; `None` if it
    /// does not unwrap (a damaged row, or one wrapped for another key) or does not parse.
    fn load_material(
        &self,
        record: &KeyRecord,
        arn: &str,
        row: &MaterialRow,
    ) -> Option<(MaterialId, Material)> {
        let id = MaterialId::from_hex(&row.material_id)?;
        let plain = self
            .root
            .unwrap(&material_aad(arn, &row.material_id), &row.wrapped)
            .ok()?;
        let material =
            Material::load(&record.key_spec, id, &KeyMaterial::from_bytes(plain)).ok()?;
        Some((id, material))
    }

    /// How many keys are unusable (material that does not unwrap or parse), in every scope.
    pub fn unusable_keys(&self) -> usize {
        self.view.read().all_keys().filter(|k| k.unusable).count()
    }

    /// What the last load of the view left out because it did not parse.
    pub fn load_report(&self) -> LoadReport {
        *self.load_report.lock()
    }

    /// Find the key a request names, and check that the caller may do `access` with it.
    pub fn resolve(
        &self,
        caller: &Caller,
        key: &KeyRef,
        access: &Access<'_>,
    ) -> Result<Arc<CachedKey>, KmsError> {
        let view = self.view.read();
        let (found, alias) = self.find(&view, caller, key, access.action)?;
        // AWS managed keys are never used across accounts, whatever a grant says.
        if found.record.is_aws_managed() && found.record.account != caller.account {
            return Err(hidden_key(caller, access.action));
        }
        self.decide_key(&view, caller, &found, alias, access)
            .map_err(|denied| {
                if found.record.account != caller.account {
                    hidden_key(caller, access.action)
                } else {
                    denied_error(denied, caller, access.action, &found.arn)
                }
            })?;
        Ok(found)
    }

    /// Find the key a request names, without authorizing anything (for an action that only
    /// identity policies govern, such as ListAliases with a KeyId). Only the caller's account.
    pub fn find_key(
        &self,
        caller: &Caller,
        key_id: &str,
        action: &'static str,
    ) -> Result<Arc<CachedKey>, KmsError> {
        let key = ids::parse_key_only(caller, key_id)?;
        let view = self.view.read();
        self.find(&view, caller, &key, action).map(|(k, _)| k)
    }

    /// The key `key` names and the alias it was named by; another account's key only for the
    /// actions that allow it, and never saying whether it exists.
    fn find<'k>(
        &self,
        view: &View,
        caller: &Caller,
        key: &'k KeyRef,
        action: &'static str,
    ) -> Result<(Arc<CachedKey>, Option<&'k str>), KmsError> {
        let (account, alias) = match key {
            KeyRef::Id(_) => (caller.account.as_str(), None),
            KeyRef::KeyArn { account, .. } => (account.as_str(), None),
            KeyRef::AliasName(name) => (caller.account.as_str(), Some(name.as_str())),
            KeyRef::AliasArn {
                account,
                alias_name,
            } => (account.as_str(), Some(alias_name.as_str())),
        };
        let foreign = account != caller.account;
        if foreign && !CROSS_ACCOUNT_ACTIONS.contains(&action) {
            return Err(hidden_key(caller, action));
        }
        let scope = view.scope(account, &caller.region);
        let key_id = match (key, alias) {
            (KeyRef::Id(id) | KeyRef::KeyArn { key_id: id, .. }, _) => id.as_str(),
            (_, Some(name)) => match scope.and_then(|s| s.aliases.get(name)) {
                Some(a) => a.key_id.as_str(),
                None if foreign => return Err(hidden_key(caller, action)),
                // Not foreign: the caller's own alias, named in the partition served.
                None => return Err(alias_not_found(&caller.alias_arn(name))),
            },
            (_, None) => unreachable!("an alias reference always has an alias name"),
        };
        match scope.and_then(|s| s.keys.get(key_id)) {
            Some(k) => Ok((k.clone(), alias)),
            None if foreign => Err(hidden_key(caller, action)),
            None => Err(KmsError::NotFound(format!(
                "Key '{}' does not exist",
                ids::key_arn(&caller.region, account, key_id)
            ))),
        }
    }

    /// Decide `access` to `key` for `caller`, the view read-locked.
    fn decide_key(
        &self,
        view: &View,
        caller: &Caller,
        key: &CachedKey,
        request_alias: Option<&str>,
        access: &Access<'_>,
    ) -> access::Decision {
        let scope = view.scope(&key.record.account, &key.record.region);
        let grants = scope
            .and_then(|s| s.grants.get(&key.record.key_id))
            .and_then(|g| g.by_grantee.get(&caller.principal_arn))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let aliases = || {
            scope
                .map(|s| {
                    s.aliases
                        .values()
                        .filter(|a| a.key_id == key.record.key_id)
                        .map(|a| a.alias_name.clone())
                        .collect()
                })
                .unwrap_or_default()
        };
        let on_key = OnKey {
            policy: &key.policy,
            record: &key.record,
            arn: &key.arn,
            grants,
            request_alias,
            aliases: &aliases,
        };
        self.decide(caller, access, &key.arn, Some(on_key))
    }

    /// The one call into [`access::decide`]: `access` by `caller` on `resource`, a key or not.
    fn decide(
        &self,
        caller: &Caller,
        access: &Access<'_>,
        resource: &str,
        key: Option<OnKey<'_>>,
    ) -> access::Decision {
        let action = format!("kms:{}", access.action);
        let no_aliases = Vec::new;
        let context = Context {
            caller,
            key: key.as_ref().map(|k| k.record),
            request_alias: key.as_ref().and_then(|k| k.request_alias),
            resource_aliases: key.as_ref().map_or(&no_aliases, |k| k.aliases),
            facts: &access.facts,
            now: self.clock.now(),
        };
        access::decide(&Question {
            principal: &caller.principal_arn,
            account: &caller.account,
            action: &action,
            resource: key.as_ref().map_or(resource, |k| k.arn),
            key: key.as_ref().map(|k| (k.policy, k.record.account.as_str())),
            identity: &caller.identity,
            grants: key.as_ref().map_or(&[], |k| k.grants),
            encryption_context: access.facts.encryption_context,
            context: &context,
            grant_check: access.grant_check,
        })
    }

    /// Check an action on no key (`resource` is `*` or an alias ARN): the caller's identity
    /// policies decide.
    pub fn authorize_identity(
        &self,
        caller: &Caller,
        access: &Access<'_>,
        resource: &str,
    ) -> Result<(), KmsError> {
        self.identity_decision(caller, access, resource)
            .map(|_| ())
            .map_err(|d| denied_error(d, caller, access.action, resource))
    }

    /// What the caller's identity policies alone say about `access` on `resource`.
    pub(crate) fn identity_decision(
        &self,
        caller: &Caller,
        access: &Access<'_>,
        resource: &str,
    ) -> access::Decision {
        self.decide(caller, access, resource, None)
    }

    /// Decide `access` by `caller` on a key that is not stored (yet, or in this form): `record`
    /// under `policy`, with no grants, named by `request_alias` if given (then its only alias).
    pub(crate) fn decide_unstored(
        &self,
        caller: &Caller,
        access: &Access<'_>,
        policy: &Policy,
        record: &KeyRecord,
        request_alias: Option<&str>,
    ) -> access::Decision {
        let arn = record.arn();
        let aliases = || request_alias.map(str::to_string).into_iter().collect();
        let on_key = OnKey {
            policy,
            record,
            arn: &arn,
            grants: &[],
            request_alias,
            aliases: &aliases,
        };
        self.decide(caller, access, &arn, Some(on_key))
    }

    /// The key policy lockout safety check: refuse a policy that would not let the caller call
    /// PutKeyPolicy on the key afterwards.
    pub(crate) fn check_lockout(
        &self,
        caller: &Caller,
        policy: &Policy,
        record: &KeyRecord,
    ) -> Result<(), KmsError> {
        self.decide_unstored(caller, &Access::new("PutKeyPolicy"), policy, record, None)
            .map(|_| ())
            .map_err(|_| {
                KmsError::MalformedPolicyDocument(
                    "The new key policy will not allow you to update the key policy in the future."
                        .into(),
                )
            })
    }

    /// Resolve a key id, key ARN, alias name or alias ARN.
    pub fn resolve_any(
        &self,
        caller: &Caller,
        key_id: &str,
        access: &Access<'_>,
    ) -> Result<Arc<CachedKey>, KmsError> {
        self.resolve(caller, &ids::parse_key_or_alias(caller, key_id)?, access)
    }

    /// Resolve a key id or key ARN (operations that take no alias).
    pub fn resolve_key(
        &self,
        caller: &Caller,
        key_id: &str,
        access: &Access<'_>,
    ) -> Result<Arc<CachedKey>, KmsError> {
        self.resolve(caller, &ids::parse_key_only(caller, key_id)?, access)
    }

    /// Change a key's record under the writer lock: `change` sees the current record and may
    /// refuse; the new record is written with an optimistic version check, then cached.
    pub async fn write_key<R>(
        &self,
        caller: &Caller,
        key_id: &str,
        access: &Access<'_>,
        change: impl FnOnce(&mut KeyRecord, &str) -> Result<R, KmsError>,
    ) -> Result<(R, Arc<CachedKey>), KmsError> {
        let _guard = self.writer.lock().await;
        let current = self.resolve_key(caller, key_id, access)?;
        let mut record = current.record.clone();
        let out = change(&mut record, &current.arn)?;
        let updated = self
            .commit_key(
                Some(&current),
                record,
                current.materials.clone(),
                Transaction::new(),
            )
            .await?;
        Ok((out, updated))
    }

    /// Write `record` over `current` (or as a new key when `current` is `None`), together with
    /// `tx`'s other writes, then cache it with `materials`. The writer lock is held.
    async fn commit_key(
        &self,
        current: Option<&CachedKey>,
        record: KeyRecord,
        materials: Materials,
        tx: Transaction,
    ) -> Result<Arc<CachedKey>, KmsError> {
        let change = KeyChange {
            current: current.map(|c| {
                (
                    c.version,
                    c.record.policy.as_str(),
                    c.policy.clone(),
                    c.usage.clone(),
                )
            }),
            record,
            materials,
        };
        let mut done = self.commit_keys(vec![change], tx).await?;
        Ok(done.remove(0))
    }

    /// Write several keys at once (a multi-Region key and its replicas), each with an optimistic
    /// version check, together with `tx`'s other writes; then cache them. The writer lock is
    /// held. If the store holds another version than the view (a write this node did not make),
    /// the view is reloaded and the request fails as retryable.
    pub(crate) async fn commit_keys(
        &self,
        changes: Vec<KeyChange<'_>>,
        mut tx: Transaction,
    ) -> Result<Vec<Arc<CachedKey>>, KmsError> {
        let mut versions = Vec::with_capacity(changes.len());
        for c in &changes {
            let expected_version = c.current.as_ref().map(|x| x.0);
            let version = expected_version.unwrap_or(0) + 1;
            let doc =
                serde_json::to_string(&c.record).map_err(|e| KmsError::Internal(e.to_string()))?;
            tx.writes.push(Write::PutKey {
                row: KeyRow {
                    scope: c.record.scope(),
                    key_id: c.record.key_id.clone(),
                    version,
                    doc,
                },
                expected_version,
            });
            versions.push(version);
        }
        if let Err(e) = self.store.apply(tx).await {
            match e {
                trent_store::StoreError::Conflict(_) => {
                    tracing::warn!("stored version differs from the cached one: reloading");
                    if let Err(reload) = self.reload().await {
                        tracing::error!(error = %reload, "reload failed");
                    }
                }
                // An alias written with the keys is taken (by another node): for the caller to
                // handle, not a store failure.
                trent_store::StoreError::AliasExists(name) => {
                    return Err(KmsError::AlreadyExists(name));
                }
                _ => {}
            }
            return Err(e.into());
        }
        let mut done = Vec::with_capacity(changes.len());
        let mut view = self.view.write();
        for (c, version) in changes.into_iter().zip(versions) {
            let arn = c.record.arn();
            let (policy, usage) = match c.current {
                Some((_, text, parsed, usage)) if text == c.record.policy => (parsed, usage),
                Some((_, _, _, usage)) => (stored_policy(&arn, &c.record.policy), usage),
                None => (
                    stored_policy(&arn, &c.record.policy),
                    Arc::new(UsageCell::default()),
                ),
            };
            let scope = c.record.scope();
            let updated = Arc::new(CachedKey::new(
                c.record,
                version,
                c.materials,
                policy,
                usage,
            ));
            view.scope_mut(&scope)
                .keys
                .insert(updated.record.key_id.clone(), updated.clone());
            done.push(updated);
        }
        Ok(done)
    }

    /// The store row of `material` of `record`, wrapped under the root key.
    pub(crate) fn wrap_material(
        &self,
        record: &KeyRecord,
        material_id: &str,
        material: &KeyMaterial,
        created_at: f64,
    ) -> Result<MaterialRow, KmsError> {
        let wrapped = self
            .root
            .wrap(&material_aad(&record.arn(), material_id), material.expose())?;
        Ok(MaterialRow {
            scope: record.scope(),
            key_id: record.key_id.clone(),
            material_id: material_id.to_string(),
            wrapped,
            created_at: created_at as i64,
        })
    }

    /// Store a new key with `material` (wrapped under the root key), and cache it.
    pub(crate) async fn insert_key_with(
        &self,
        mut record: KeyRecord,
        material: KeyMaterial,
    ) -> Result<Arc<CachedKey>, KmsError> {
        let (materials, tx) = self.first_material(&mut record, &material)?;
        let _guard = self.writer.lock().await;
        self.commit_key(None, record, materials, tx).await
    }

    /// Make `material` the first and current material of the new key `record`: the loaded
    /// material, and the transaction that stores it wrapped.
    pub(crate) fn first_material(
        &self,
        record: &mut KeyRecord,
        material: &KeyMaterial,
    ) -> Result<(Materials, Transaction), KmsError> {
        let material_id = MaterialId::generate()?;
        let id_hex = material_id.to_hex();
        record.current_material = Some(id_hex.clone());
        record.materials.push(MaterialInfo {
            id: id_hex.clone(),
            created: record.creation_date,
            rotation: None,
            import: None,
            pending_rotation: false,
        });
        let row = self.wrap_material(record, &id_hex, material, record.creation_date)?;
        let materials = Arc::new(HashMap::from([(
            material_id,
            Arc::new(Material::load(&record.key_spec, material_id, material)?),
        )]));
        Ok((materials, Transaction::new().push(Write::PutMaterial(row))))
    }

    /// Store a new key that has no material yet (origin EXTERNAL), and cache it.
    pub(crate) async fn insert_key_without_material(
        &self,
        record: KeyRecord,
    ) -> Result<Arc<CachedKey>, KmsError> {
        let _guard = self.writer.lock().await;
        self.commit_key(None, record, Arc::new(HashMap::new()), Transaction::new())
            .await
    }

    /// KeyMetadata as DescribeKey shows it: the record's, and a multi-Region key's place in its
    /// set.
    pub fn key_metadata(&self, key: &CachedKey) -> crate::api::KeyMetadata {
        let mut m = key.record.metadata();
        if key.record.multi_region {
            // Every key of the set as (entry, is a replica), this one included.
            let entry = |k: &CachedKey| {
                let e = crate::api::MultiRegionKey {
                    arn: k.arn.clone(),
                    region: k.record.region.clone(),
                };
                (e, k.record.is_replica())
            };
            let mut all: Vec<_> = self
                .related_keys(&key.record)
                .iter()
                .map(|k| entry(k))
                .collect();
            all.push(entry(key));
            let primary = all.iter().find(|(_, replica)| !replica).map(|(e, _)| e);
            let mut replicas: Vec<_> = all
                .iter()
                .filter(|(_, replica)| *replica)
                .map(|(e, _)| e.clone())
                .collect();
            replicas.sort_by(|a, b| a.region.cmp(&b.region));
            m.multi_region_configuration = primary.map(|p| crate::api::MultiRegionConfiguration {
                multi_region_key_type: if key.record.is_replica() {
                    "REPLICA"
                } else {
                    "PRIMARY"
                }
                .into(),
                primary_key: p.clone(),
                replica_keys: replicas,
            });
        }
        m
    }

    /// Apply alias writes under the writer lock, after `check` approves them against the view.
    pub async fn write_aliases(
        &self,
        check: impl FnOnce(&Kms) -> Result<Vec<Write>, KmsError>,
    ) -> Result<(), KmsError> {
        let _guard = self.writer.lock().await;
        let writes = check(self)?;
        let tx = Transaction {
            writes: writes.clone(),
        };
        self.store.apply(tx).await.map_err(|e| match e {
            trent_store::StoreError::AliasExists(name) => KmsError::AlreadyExists(name),
            other => other.into(),
        })?;
        let mut view = self.view.write();
        for w in writes {
            match w {
                Write::PutAlias { row, .. } => {
                    let scope = row.scope.clone();
                    view.scope_mut(&scope)
                        .aliases
                        .insert(row.alias_name.clone(), row);
                }
                Write::DeleteAlias { scope, alias_name } => {
                    view.scope_mut(&scope).aliases.remove(&alias_name);
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// A grant of a key, from the view.
    pub(crate) fn grant(&self, key: &CachedKey, grant_id: &str) -> Option<Arc<Grant>> {
        self.view
            .read()
            .scope(&key.record.account, &key.record.region)?
            .grants
            .get(&key.record.key_id)?
            .by_id
            .get(grant_id)
            .cloned()
    }

    /// Apply a grant change under the writer lock, after `plan` decides it against the view:
    /// the store first, then the view.
    pub(crate) async fn write_grants<R>(
        &self,
        plan: impl FnOnce(&Kms) -> Result<(R, Option<GrantWrite>), KmsError>,
    ) -> Result<R, KmsError> {
        let _guard = self.writer.lock().await;
        let (out, change) = plan(self)?;
        let Some(change) = change else {
            return Ok(out);
        };
        let (grant, write) = match &change {
            GrantWrite::Put(g) => {
                let doc = serde_json::to_string(g.as_ref())
                    .map_err(|e| KmsError::Internal(e.to_string()))?;
                let row = GrantRow {
                    scope: grant_scope(g),
                    key_id: g.key_id.clone(),
                    grant_id: g.grant_id.clone(),
                    doc,
                };
                (g, Write::PutGrant(row))
            }
            GrantWrite::Delete(g) => (
                g,
                Write::DeleteGrant {
                    scope: grant_scope(g),
                    key_id: g.key_id.clone(),
                    grant_id: g.grant_id.clone(),
                },
            ),
        };
        self.store.apply(Transaction::new().push(write)).await?;
        let mut view = self.view.write();
        let grants = view
            .scope_mut(&grant_scope(grant))
            .grants
            .entry(grant.key_id.clone())
            .or_default();
        match change {
            GrantWrite::Put(g) => grants.insert(g),
            GrantWrite::Delete(g) => {
                grants.remove(&g.grant_id);
            }
        }
        Ok(out)
    }

    /// Load one grant from the store into the view (named by a grant token this node had not
    /// seen). A grant no longer stored (retired, revoked) stays away.
    pub(crate) async fn load_grant(
        &self,
        account: &str,
        region: &str,
        key_id: &str,
        grant_id: &str,
    ) -> Result<(), KmsError> {
        let _guard = self.writer.lock().await;
        let scope = Scope {
            account: account.to_string(),
            region: region.to_string(),
        };
        let Some(row) = self.store.get_grant(&scope, key_id, grant_id).await? else {
            return Ok(());
        };
        // A grant that does not parse is left out here as at load (which logged it): a token
        // naming it adds nothing, and the request is decided without it.
        let Ok(grant) = serde_json::from_str::<Grant>(&row.doc) else {
            return Ok(());
        };
        self.view
            .write()
            .scope_mut(&scope)
            .grants
            .entry(row.key_id)
            .or_default()
            .insert(Arc::new(grant));
        Ok(())
    }

    /// Destroy every key whose deletion window has ended (with its material and aliases).
    /// Runs at start and periodically, so a window that ended while the server was down is
    /// honoured as soon as it is back. Returns the ARNs destroyed.
    pub async fn destroy_due_keys(&self) -> Result<Vec<String>, KmsError> {
        let now = self.clock.now();
        let due = self.keys_where(|r| {
            r.state == KeyState::PendingDeletion && r.deletion_date.is_some_and(|d| d <= now)
        });
        let mut destroyed = Vec::new();
        for key in due {
            let _guard = self.writer.lock().await;
            // Re-check under the lock: the deletion may have been cancelled meanwhile.
            if !self.still_current(&key) {
                continue;
            }
            let scope = key.record.scope();
            let deleted = self
                .store
                .apply(Transaction::new().push(Write::DeleteKey {
                    scope: scope.clone(),
                    key_id: key.record.key_id.clone(),
                }))
                .await;
            if let Err(e) = deleted {
                // One key that cannot be destroyed now must not hold up the others.
                tracing::error!(key = %key.arn, error = %e, "could not destroy a key whose deletion window ended");
                continue;
            }
            let mut view = self.view.write();
            let s = view.scope_mut(&scope);
            s.keys.remove(&key.record.key_id);
            s.aliases.retain(|_, a| a.key_id != key.record.key_id);
            s.grants.remove(&key.record.key_id);
            tracing::info!(key = %key.arn, "deletion window ended: key destroyed");
            destroyed.push(key.arn.clone());
        }
        Ok(destroyed)
    }

    /// Wipe every key and alias (dev mode's `/moto-api/reset`).
    pub async fn reset(&self) -> Result<(), KmsError> {
        let _guard = self.writer.lock().await;
        self.store.reset().await?;
        *self.view.write() = View::default();
        Ok(())
    }

    /// Number of keys in the view (all scopes).
    pub fn key_count(&self) -> usize {
        self.view.read().all_keys().count()
    }
}

/// The key a decision is about: its policy, record and ARN, the caller's grants on it, the alias
/// the request named it by, and its aliases (computed only if a condition asks).
struct OnKey<'a> {
    policy: &'a Policy,
    record: &'a KeyRecord,
    arn: &'a str,
    grants: &'a [Arc<Grant>],
    request_alias: Option<&'a str>,
    aliases: &'a dyn Fn() -> Vec<String>,
}

/// One key written by [`Kms::commit_keys`]: the cached version it replaces (its version, policy
/// text, parsed policy and usage), or none for a new key.
pub(crate) struct KeyChange<'a> {
    pub current: Option<(i64, &'a str, Arc<Policy>, Arc<UsageCell>)>,
    pub record: KeyRecord,
    pub materials: Materials,
}

impl<'a> KeyChange<'a> {
    /// A change of `current` to `record`, keeping its materials unless given others.
    pub fn of(current: &'a CachedKey, record: KeyRecord, materials: Option<Materials>) -> Self {
        KeyChange {
            current: Some((
                current.version,
                current.record.policy.as_str(),
                current.policy.clone(),
                current.usage.clone(),
            )),
            record,
            materials: materials.unwrap_or_else(|| current.materials.clone()),
        }
    }
}

/// A grant change, for [`Kms::write_grants`].
pub(crate) enum GrantWrite {
    Put(Arc<Grant>),
    Delete(Arc<Grant>),
}

/// The scope of a grant's key, from its key ARN.
fn grant_scope(g: &Grant) -> Scope {
    let mut parts = g.key_arn.split(':').skip(3);
    Scope {
        region: parts.next().unwrap_or_default().to_string(),
        account: parts.next().unwrap_or_default().to_string(),
    }
}

/// AccessDeniedException for a refused request, in AWS's words.
pub(crate) fn denied_error(
    denied: Denied,
    caller: &Caller,
    action: &str,
    resource: &str,
) -> KmsError {
    KmsError::AccessDenied(denied.message(
        &caller.principal_arn,
        &format!("kms:{action}"),
        resource,
    ))
}

const GRANT_TOKEN_SETTING: &str = "grant-token-key";
const GRANT_TOKEN_AAD: &[u8] = b"trent/v1/grant-token-key";

/// The MAC key of grant tokens: made on first use, kept wrapped under the root key.
async fn grant_token_key(
    store: &dyn Store,
    root: &dyn RootKey,
) -> Result<zeroize::Zeroizing<Vec<u8>>, OpenError> {
    let fail = |e: String| OpenError(format!("grant token key: {e}"));
    if let Some(wrapped) = store
        .get_setting(GRANT_TOKEN_SETTING)
        .await
        .map_err(|e| fail(e.to_string()))?
    {
        let key = root
            .unwrap(GRANT_TOKEN_AAD, &wrapped)
            .map_err(|e| fail(e.to_string()))?;
        return Ok(zeroize::Zeroizing::new(key.to_vec()));
    }
    let key = trent_crypto::primitives::random_bytes(32).map_err(|e| fail(e.to_string()))?;
    let wrapped = root
        .wrap(GRANT_TOKEN_AAD, &key)
        .map_err(|e| fail(e.to_string()))?;
    store
        .put_setting(GRANT_TOKEN_SETTING, &wrapped)
        .await
        .map_err(|e| fail(e.to_string()))?;
    Ok(key)
}

/// Why the service could not open.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OpenError(pub String);

const PARTITION_SETTING: &str = "partition";

/// Check that `store` was made for the partition this process serves. A new store has it
/// recorded with its root key check (see [`check_root_key`]); a store that has a root key check
/// but no partition was made before the setting existed, when trent served only
/// [`ids::DEFAULT_PARTITION`], and is of that one. Its key policies, grants and principals name
/// ARNs of its partition, and its key material is wrapped with its key ARNs as context, which
/// another partition would not match.
pub async fn check_partition(store: &dyn Store) -> Result<(), OpenError> {
    let served = ids::partition();
    let setting = |name| async move {
        store
            .get_setting(name)
            .await
            .map_err(|e| OpenError(e.to_string()))
    };
    let made_for = match setting(PARTITION_SETTING).await? {
        Some(p) => String::from_utf8_lossy(&p).into_owned(),
        None => {
            let made_for = match setting(ROOT_CHECK_SETTING).await? {
                Some(_) => ids::DEFAULT_PARTITION,
                None => served,
            };
            record_partition(store, made_for).await?;
            made_for.to_string()
        }
    };
    if made_for != served {
        return Err(OpenError(format!(
            "this data directory serves partition {made_for}, not {served} (--partition)"
        )));
    }
    Ok(())
}

async fn record_partition(store: &dyn Store, partition: &str) -> Result<(), OpenError> {
    store
        .put_setting(PARTITION_SETTING, partition.as_bytes())
        .await
        .map_err(|e| OpenError(e.to_string()))
}

/// Check that `root` is the root key `store` was made with, recording it (and the partition
/// served) on first use.
pub async fn check_root_key(store: &dyn Store, root: &dyn RootKey) -> Result<(), OpenError> {
    match store
        .get_setting(ROOT_CHECK_SETTING)
        .await
        .map_err(|e| OpenError(e.to_string()))?
    {
        Some(check) => match root.unwrap(ROOT_CHECK_AAD, &check) {
            Ok(v) if v.as_slice() == ROOT_CHECK_VALUE => Ok(()),
            _ => Err(OpenError(
                "the root key does not match this data directory (wrong key file or passphrase)"
                    .into(),
            )),
        },
        None => {
            let check = root
                .wrap(ROOT_CHECK_AAD, ROOT_CHECK_VALUE)
                .map_err(|e| OpenError(e.to_string()))?;
            // A new store: it is made for the partition served, recorded first, so that a store
            // with a root key check and no partition is one made before the setting existed.
            if store
                .get_setting(PARTITION_SETTING)
                .await
                .map_err(|e| OpenError(e.to_string()))?
                .is_none()
            {
                record_partition(store, ids::partition()).await?;
            }
            store
                .put_setting(ROOT_CHECK_SETTING, &check)
                .await
                .map_err(|e| OpenError(e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::KeyState;
    use trent_crypto::LocalRootKey;
    use trent_store::SqliteStore;
    use zeroize::Zeroizing;

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    /// A key record of `spec` and `usage` in the test account, with no material yet.
    fn test_record(key_id: &str, spec: &str, usage: &str) -> KeyRecord {
        KeyRecord {
            key_id: key_id.into(),
            account: "111122223333".into(),
            region: "us-east-1".into(),
            creation_date: 0.0,
            description: String::new(),
            key_usage: usage.into(),
            key_spec: spec.into(),
            origin: "AWS_KMS".into(),
            key_manager: "CUSTOMER".into(),
            state: KeyState::Enabled,
            deletion_date: None,
            pending_window_days: None,
            policy: "{}".into(),
            tags: vec![],
            current_material: None,
            multi_region: false,
            materials: Vec::new(),
            rotation: None,
            on_demand_rotation_start: None,
            on_demand_rotations: 0,
            primary_region: None,
        }
    }

    #[tokio::test]
    async fn private_and_hmac_keys_are_never_on_disk_in_the_clear_and_survive_a_reload() {
        use trent_crypto::asymmetric::{AsymmetricSpec, MessageKind, SigningScheme};
        let dir = tempfile::tempdir().unwrap();
        let (root, _) = LocalRootKey::load_or_create_file(&dir.path().join("root.key")).unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("trent.db")).unwrap());
        let root: Arc<dyn RootKey> = Arc::new(root);
        let kms = Kms::open(store.clone(), root.clone()).await.unwrap();
        let pkcs8 = AsymmetricSpec::EccNistP256.generate().unwrap();
        let hmac: Vec<u8> = (0..32u32).map(|i| (i * 53 + 7) as u8).collect();
        let ec = test_record(
            "11111111-1111-4111-8111-111111111111",
            "ECC_NIST_P256",
            "SIGN_VERIFY",
        );
        let mac = test_record(
            "22222222-2222-4222-8222-222222222222",
            "HMAC_256",
            "GENERATE_VERIFY_MAC",
        );
        let signed = {
            let key = kms
                .insert_key_with(ec, KeyMaterial::from_bytes(pkcs8.clone()))
                .await
                .unwrap();
            key.private_key()
                .unwrap()
                .sign(
                    SigningScheme::Ecdsa(trent_crypto::asymmetric::Hash::Sha256),
                    MessageKind::Raw,
                    b"m",
                )
                .unwrap()
        };
        let tag = kms
            .insert_key_with(mac, KeyMaterial::from_bytes(Zeroizing::new(hmac.clone())))
            .await
            .unwrap()
            .hmac_key()
            .unwrap()
            .sign(b"m");
        drop(kms);
        // Neither the HMAC key nor any 16-byte window of the PKCS#8's tail (which holds the
        // private scalar) is in any file.
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !contains(&bytes, &hmac),
                "{} holds the HMAC key",
                path.display()
            );
            for window in pkcs8.windows(16).skip(pkcs8.len() - 100) {
                assert!(
                    !contains(&bytes, window),
                    "{} holds the private key",
                    path.display()
                );
            }
        }
        // Reloaded from the store under the same root key: the same keys.
        let kms = Kms::open(store, root).await.unwrap();
        let view = kms.view.read();
        let scope = view.scope("111122223333", "us-east-1").unwrap();
        let ec = &scope.keys["11111111-1111-4111-8111-111111111111"];
        assert!(
            ec.private_key()
                .unwrap()
                .verify(
                    SigningScheme::Ecdsa(trent_crypto::asymmetric::Hash::Sha256),
                    MessageKind::Raw,
                    b"m",
                    &signed
                )
                .unwrap()
        );
        let mac = &scope.keys["22222222-2222-4222-8222-222222222222"];
        assert_eq!(mac.hmac_key().unwrap().sign(b"m"), tag);
        assert!(ec.record.current_material.is_some() && mac.hmac_key().is_some());
    }

    #[tokio::test]
    async fn one_unreadable_row_costs_its_key_or_grant_not_the_service() {
        use crate::api::{
            CreateGrantRequest, CreateKeyRequest, DescribeKeyRequest, EncryptRequest,
        };
        let dir = tempfile::tempdir().unwrap();
        let (root, _) = LocalRootKey::load_or_create_file(&dir.path().join("root.key")).unwrap();
        let root: Arc<dyn RootKey> = Arc::new(root);
        let store = Arc::new(SqliteStore::open(&dir.path().join("trent.db")).unwrap());
        let kms = Kms::open(store.clone(), root.clone()).await.unwrap();
        let caller = Caller::new(
            "111122223333",
            "us-east-1",
            "arn:aws:iam::111122223333:root",
        );
        let mut ids = Vec::new();
        for _ in 0..3 {
            let md = kms
                .create_key(&caller, CreateKeyRequest::default())
                .await
                .unwrap()
                .key_metadata
                .unwrap();
            ids.push(md.key_id);
        }
        kms.create_grant(
            &caller,
            CreateGrantRequest {
                key_id: Some(ids[0].clone()),
                grantee_principal: Some("arn:aws:iam::111122223333:user/a".into()),
                operations: Some(vec!["Encrypt".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let scope = caller.scope();
        let (damaged, garbled) = {
            let view = kms.view.read();
            let s = view.scope("111122223333", "us-east-1").unwrap();
            (s.keys[&ids[1]].clone(), s.keys[&ids[2]].clone())
        };
        let material_id = damaged.record.current_material.clone().unwrap();
        drop(kms);
        // Key 1's wrapped material damaged, key 2's record not JSON, and a grant that is not JSON.
        store
            .apply(
                Transaction::new()
                    .push(Write::DeleteMaterial {
                        scope: scope.clone(),
                        key_id: ids[1].clone(),
                        material_id: material_id.clone(),
                    })
                    .push(Write::PutMaterial(MaterialRow {
                        scope: scope.clone(),
                        key_id: ids[1].clone(),
                        material_id: material_id.clone(),
                        wrapped: vec![1; 60],
                        created_at: 0,
                    }))
                    .push(Write::PutKey {
                        row: KeyRow {
                            scope: scope.clone(),
                            key_id: ids[2].clone(),
                            version: garbled.version + 1,
                            doc: "{not json".into(),
                        },
                        expected_version: Some(garbled.version),
                    })
                    .push(Write::PutGrant(GrantRow {
                        scope: scope.clone(),
                        key_id: ids[0].clone(),
                        grant_id: "ab".repeat(32),
                        doc: "[".into(),
                    })),
            )
            .await
            .unwrap();

        let kms = Kms::open(store.clone(), root.clone()).await.unwrap();
        assert_eq!(kms.unusable_keys(), 1);
        assert_eq!(
            kms.load_report(),
            LoadReport {
                skipped_keys: 1,
                skipped_grants: 1
            }
        );
        let encrypt = |id: &str| EncryptRequest {
            key_id: Some(id.to_string()),
            plaintext: Some(crate::api::Blob::new(b"x".to_vec())),
            ..Default::default()
        };
        assert_eq!(
            kms.encrypt(&caller, encrypt(&ids[1])).await.unwrap_err(),
            KmsError::Internal(format!(
                "{} is unusable: its key material cannot be read from the store.",
                damaged.arn
            ))
        );
        // The damaged key is still described; the others serve.
        let described = kms
            .describe_key(
                &caller,
                DescribeKeyRequest {
                    key_id: Some(ids[1].clone()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(described.key_metadata.unwrap().key_state, "Enabled");
        kms.encrypt(&caller, encrypt(&ids[0])).await.unwrap();
        assert!(matches!(
            kms.encrypt(&caller, encrypt(&ids[2])).await,
            Err(KmsError::NotFound(_))
        ));
        // The rows left out are not taken for changes made elsewhere.
        assert!(!kms.catch_up_with_store().await.unwrap());
        assert_eq!(kms.load_report().skipped_keys, 1);
        let inventory = kms.inventory();
        assert_eq!(inventory.unusable_keys, 1);
        assert_eq!(inventory.skipped.skipped_grants, 1);
        drop(kms);
        // Another root key is still refused at once.
        let other: Arc<dyn RootKey> = Arc::new(LocalRootKey::ephemeral().unwrap());
        let refused = Kms::open(store, other).await.err().unwrap();
        assert!(
            refused.0.contains("the root key does not match"),
            "{refused}"
        );
    }

    #[tokio::test]
    async fn key_material_is_never_on_disk_in_the_clear() {
        let dir = tempfile::tempdir().unwrap();
        let (root, _) = LocalRootKey::load_or_create_file(&dir.path().join("root.key")).unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("trent.db")).unwrap());
        let kms = Kms::open(store, Arc::new(root)).await.unwrap();
        let known: Vec<u8> = (0..32u32).map(|i| (i * 37 + 11) as u8).collect();
        let record = test_record(
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "SYMMETRIC_DEFAULT",
            "ENCRYPT_DECRYPT",
        );
        let key = kms
            .insert_key_with(
                record,
                KeyMaterial::from_bytes(Zeroizing::new(known.clone())),
            )
            .await
            .unwrap();
        // The material is really in use: what it seals opens with a key built from `known`.
        let blob = key
            .current_material()
            .unwrap()
            .seal(
                "111122223333",
                &key.record.key_id,
                &Default::default(),
                b"x",
            )
            .unwrap();
        let same = SymmetricKey::new(
            key.current_material().unwrap().material_id(),
            &KeyMaterial::from_bytes(Zeroizing::new(known.clone())),
        )
        .unwrap();
        assert_eq!(
            same.open(&blob, &Default::default()).unwrap().as_slice(),
            b"x"
        );
        drop(kms);
        let mut scanned = 0;
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            scanned += bytes.len();
            assert!(
                !contains(&bytes, &known),
                "{} holds the key material",
                path.display()
            );
        }
        assert!(
            scanned > 4096,
            "the store files were read ({scanned} bytes)"
        );
    }
}
