//! The service: the in-memory view of every key and alias, kept in step with the store.
//!
//! Crypto requests read only this view (a read lock and an `Arc` clone); they never touch storage.
//! Every change goes through [`Kms::write_key`] and friends: one writer at a time, the store first
//! (durably), then the view, so the node that made a change sees it before the call returns.

use crate::clock::Clock;
use crate::error::KmsError;
use crate::ids::{self, Caller, KeyRef};
use crate::keypool::KeyPairPool;
use crate::keyspec::{self, KeyKind};
use crate::model::{KeyRecord, KeyState};
use parking_lot::RwLock;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use trent_crypto::{
    CryptoError, HmacKey, KeyMaterial, MaterialId, PrivateKey, RootKey, SymmetricKey,
};
use trent_store::{AliasRow, KeyRow, MaterialRow, Scope, Store, Transaction, Write};

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
pub type Materials = Arc<HashMap<MaterialId, Material>>;

/// A key as the hot path sees it: its record and its unwrapped materials, ready to use.
#[derive(Debug)]
pub struct CachedKey {
    pub record: KeyRecord,
    pub version: i64,
    pub arn: String,
    pub materials: Materials,
}

impl CachedKey {
    fn current(&self) -> Option<&Material> {
        let id = MaterialId::from_hex(self.record.current_material.as_deref()?)?;
        self.materials.get(&id)
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
        match self.materials.get(id)? {
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

#[derive(Debug, Default)]
pub(crate) struct ScopeView {
    pub keys: HashMap<String, Arc<CachedKey>>,
    pub aliases: BTreeMap<String, AliasRow>,
}

/// region -> account -> resources.
#[derive(Debug, Default)]
pub(crate) struct View {
    scopes: HashMap<String, HashMap<String, ScopeView>>,
}

impl View {
    pub(crate) fn scope(&self, account: &str, region: &str) -> Option<&ScopeView> {
        self.scopes.get(region)?.get(account)
    }

    fn scope_mut(&mut self, scope: &Scope) -> &mut ScopeView {
        self.scopes
            .entry(scope.region.clone())
            .or_default()
            .entry(scope.account.clone())
            .or_default()
    }

    fn all_keys(&self) -> impl Iterator<Item = &Arc<CachedKey>> {
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
    writer: tokio::sync::Mutex<()>,
    pub clock: Clock,
    pub(crate) keypool: KeyPairPool,
}

/// `NotFoundException` for an alias that does not exist.
pub(crate) fn alias_not_found(alias_arn: &str) -> KmsError {
    KmsError::NotFound(format!("Alias {alias_arn} is not found."))
}

/// The AAD binding a wrapped material to its key and material id.
fn material_aad(arn: &str, material_id: &str) -> Vec<u8> {
    format!("trent/v1/material|{arn}|{material_id}").into_bytes()
}

const ROOT_CHECK_SETTING: &str = "root-key-check";
const ROOT_CHECK_AAD: &[u8] = b"trent/v1/root-key-check";
const ROOT_CHECK_VALUE: &[u8] = b"trent root key check";

impl Kms {
    /// Open the service over a store: check that `root` is the root key this store was made
    /// with (or record it, on first use), then load and unwrap every key.
    pub async fn open(store: Arc<dyn Store>, root: Arc<dyn RootKey>) -> Result<Kms, OpenError> {
        check_root_key(store.as_ref(), root.as_ref()).await?;
        let kms = Kms {
            store,
            root,
            view: RwLock::new(View::default()),
            writer: tokio::sync::Mutex::new(()),
            clock: Clock::new(),
            keypool: KeyPairPool::new(crate::keypool::DEFAULT_CAPACITY),
        };
        kms.reload().await?;
        Ok(kms)
    }

    /// Keep up to `capacity` pre-generated RSA key pairs per RSA spec (see [`KeyPairPool`]).
    pub fn with_key_pool(mut self, capacity: usize) -> Self {
        self.keypool = KeyPairPool::new(capacity);
        self
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
        let mut view = View::default();
        for row in snapshot.keys {
            let record: KeyRecord = serde_json::from_str(&row.doc)
                .map_err(|e| OpenError(format!("key {} is unreadable: {e}", row.key_id)))?;
            let rows = materials
                .remove(&(row.scope.clone(), row.key_id.clone()))
                .unwrap_or_default();
            let arn = record.arn();
            let mut unwrapped = HashMap::new();
            for m in rows {
                let id = MaterialId::from_hex(&m.material_id)
                    .ok_or_else(|| OpenError(format!("key {arn} has a malformed material id")))?;
                let plain = self
                    .root
                    .unwrap(&material_aad(&arn, &m.material_id), &m.wrapped)
                    .map_err(|_| {
                        OpenError(format!(
                            "material of {arn} does not unwrap under the root key"
                        ))
                    })?;
                let key = Material::load(&record.key_spec, id, &KeyMaterial::from_bytes(plain))
                    .map_err(|e| OpenError(format!("key {arn}: {e}")))?;
                unwrapped.insert(id, key);
            }
            view.scope_mut(&row.scope).keys.insert(
                row.key_id.clone(),
                Arc::new(CachedKey {
                    record,
                    version: row.version,
                    arn,
                    materials: Arc::new(unwrapped),
                }),
            );
        }
        for alias in snapshot.aliases {
            view.scope_mut(&alias.scope.clone())
                .aliases
                .insert(alias.alias_name.clone(), alias);
        }
        *self.view.write() = view;
        Ok(())
    }

    /// Find the key a request names. `action` is the IAM action, for the access-denied message.
    pub fn resolve(
        &self,
        caller: &Caller,
        key: &KeyRef,
        action: &str,
    ) -> Result<Arc<CachedKey>, KmsError> {
        let (account, resource) = match key {
            KeyRef::Id(id) => (caller.account.as_str(), format!("key/{id}")),
            KeyRef::KeyArn { account, key_id } => (account.as_str(), format!("key/{key_id}")),
            KeyRef::AliasName(name) => (caller.account.as_str(), name.clone()),
            KeyRef::AliasArn {
                account,
                alias_name,
            } => (account.as_str(), alias_name.clone()),
        };
        let arn = format!("arn:aws:kms:{}:{account}:{resource}", caller.region);
        if account != caller.account {
            // Cross-account use needs key policies, which are not enforced yet: refuse it, before
            // looking anything up, so that nothing about the other account shows.
            return Err(KmsError::AccessDenied(format!(
                "User: {} is not authorized to perform: kms:{action} on resource: {arn} because no resource-based policy allows the kms:{action} action",
                caller.principal_arn
            )));
        }
        let view = self.view.read();
        let scope = view.scope(account, &caller.region);
        let key_id = match key {
            KeyRef::Id(id) | KeyRef::KeyArn { key_id: id, .. } => id,
            KeyRef::AliasName(name)
            | KeyRef::AliasArn {
                alias_name: name, ..
            } => {
                &scope
                    .and_then(|s| s.aliases.get(name))
                    .ok_or_else(|| alias_not_found(&arn))?
                    .key_id
            }
        };
        scope
            .and_then(|s| s.keys.get(key_id))
            .cloned()
            .ok_or_else(|| {
                KmsError::NotFound(format!(
                    "Key '{}' does not exist",
                    ids::key_arn(&caller.region, account, key_id)
                ))
            })
    }

    /// Resolve a key id, key ARN, alias name or alias ARN.
    pub fn resolve_any(
        &self,
        caller: &Caller,
        key_id: &str,
        action: &str,
    ) -> Result<Arc<CachedKey>, KmsError> {
        self.resolve(caller, &ids::parse_key_or_alias(caller, key_id)?, action)
    }

    /// Resolve a key id or key ARN (operations that take no alias).
    pub fn resolve_key(
        &self,
        caller: &Caller,
        key_id: &str,
        action: &str,
    ) -> Result<Arc<CachedKey>, KmsError> {
        self.resolve(caller, &ids::parse_key_only(caller, key_id)?, action)
    }

    /// Change a key's record under the writer lock: `change` sees the current record and may
    /// refuse; the new record is written with an optimistic version check, then cached.
    pub async fn write_key<R>(
        &self,
        caller: &Caller,
        key_id: &str,
        action: &str,
        change: impl FnOnce(&mut KeyRecord, &str) -> Result<R, KmsError>,
    ) -> Result<(R, Arc<CachedKey>), KmsError> {
        let _guard = self.writer.lock().await;
        let current = self.resolve_key(caller, key_id, action)?;
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
    /// `tx`'s other writes, then cache it with `materials`. The writer lock is held. If the store
    /// holds another version than the view (a write this node did not make), the view is reloaded
    /// and the request fails as retryable.
    async fn commit_key(
        &self,
        current: Option<&CachedKey>,
        record: KeyRecord,
        materials: Materials,
        tx: Transaction,
    ) -> Result<Arc<CachedKey>, KmsError> {
        let scope = Scope {
            account: record.account.clone(),
            region: record.region.clone(),
        };
        let expected_version = current.map(|c| c.version);
        let version = expected_version.unwrap_or(0) + 1;
        let doc = serde_json::to_string(&record).map_err(|e| KmsError::Internal(e.to_string()))?;
        let tx = tx.push(Write::PutKey {
            row: KeyRow {
                scope: scope.clone(),
                key_id: record.key_id.clone(),
                version,
                doc,
            },
            expected_version,
        });
        if let Err(e) = self.store.apply(tx).await {
            if matches!(e, trent_store::StoreError::Conflict(_)) {
                tracing::warn!(key = %record.arn(), "stored version differs from the cached one: reloading");
                if let Err(reload) = self.reload().await {
                    tracing::error!(error = %reload, "reload failed");
                }
            }
            return Err(e.into());
        }
        let updated = Arc::new(CachedKey {
            arn: record.arn(),
            version,
            materials,
            record,
        });
        self.view
            .write()
            .scope_mut(&scope)
            .keys
            .insert(updated.record.key_id.clone(), updated.clone());
        Ok(updated)
    }

    /// Store a new key with `material` (wrapped under the root key), and cache it.
    pub(crate) async fn insert_key_with(
        &self,
        mut record: KeyRecord,
        material: KeyMaterial,
    ) -> Result<Arc<CachedKey>, KmsError> {
        let material_id = MaterialId::generate()?;
        let id_hex = material_id.to_hex();
        let wrapped = self
            .root
            .wrap(&material_aad(&record.arn(), &id_hex), material.expose())?;
        record.current_material = Some(id_hex.clone());
        let tx = Transaction::new().push(Write::PutMaterial(MaterialRow {
            scope: Scope {
                account: record.account.clone(),
                region: record.region.clone(),
            },
            key_id: record.key_id.clone(),
            material_id: id_hex,
            wrapped,
            created_at: record.creation_date as i64,
        }));
        let materials = Arc::new(HashMap::from([(
            material_id,
            Material::load(&record.key_spec, material_id, &material)?,
        )]));
        let _guard = self.writer.lock().await;
        self.commit_key(None, record, materials, tx).await
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

    /// Destroy every key whose deletion window has ended (with its material and aliases).
    /// Runs at start and periodically, so a window that ended while the server was down is
    /// honoured as soon as it is back. Returns the ARNs destroyed.
    pub async fn destroy_due_keys(&self) -> Result<Vec<String>, KmsError> {
        let now = self.clock.now();
        let due: Vec<Arc<CachedKey>> = self
            .view
            .read()
            .all_keys()
            .filter(|k| {
                k.record.state == KeyState::PendingDeletion
                    && k.record.deletion_date.is_some_and(|d| d <= now)
            })
            .cloned()
            .collect();
        let mut destroyed = Vec::new();
        for key in due {
            let _guard = self.writer.lock().await;
            let scope = Scope {
                account: key.record.account.clone(),
                region: key.record.region.clone(),
            };
            // Re-check under the lock: the deletion may have been cancelled meanwhile.
            let still_due = self
                .view
                .read()
                .scope(&scope.account, &scope.region)
                .and_then(|s| s.keys.get(&key.record.key_id))
                .is_some_and(|k| k.version == key.version);
            if !still_due {
                continue;
            }
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

/// Why the service could not open.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OpenError(pub String);

/// Check that `root` is the root key `store` was made with, recording it on first use.
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
