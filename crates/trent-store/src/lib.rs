//! trent's storage: one trait every backend implements, and the embedded SQLite backend.
//!
//! The store knows nothing of cryptography or of the AWS API. It keeps opaque documents (a key's
//! metadata as JSON written by the service), wrapped key material (bytes already encrypted under
//! the root key), aliases, principals and a few named settings, all scoped by account and region.
//! Writes are applied in atomic [`Transaction`]s; keys carry an optimistic version so that two
//! writers (two nodes of a cluster, later) cannot silently overwrite each other.

#![forbid(unsafe_code)]

mod sqlite;

pub use sqlite::SqliteStore;

use async_trait::async_trait;

/// Errors a backend reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A key's stored version is not the one the write expected, or an insert found the row present.
    #[error("conflict: {0}")]
    Conflict(String),
    /// An alias insert found the alias name already taken in that account and region.
    #[error("alias already exists: {0}")]
    AliasExists(String),
    /// The backend failed (I/O, corruption, connection). Retryable from the caller's point of view.
    #[error("storage backend: {0}")]
    Backend(String),
    /// The write was refused before it was made (the audit log cannot record it); the message
    /// is for the client, and the request may be retried.
    #[error("refused: {0}")]
    Refused(String),
}

/// The scope every KMS resource lives in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    pub account: String,
    pub region: String,
}

/// A KMS key's document. `doc` is owned by the service (JSON); the store never looks inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    pub scope: Scope,
    pub key_id: String,
    /// Incremented by the service on each write; the first version is 1.
    pub version: i64,
    pub doc: String,
}

/// One key material of a key, already wrapped under the root key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaterialRow {
    pub scope: Scope,
    pub key_id: String,
    /// 64 lowercase hex characters.
    pub material_id: String,
    pub wrapped: Vec<u8>,
    /// Epoch seconds.
    pub created_at: i64,
}

/// An alias (`alias/...`) pointing at a key id in the same scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasRow {
    pub scope: Scope,
    /// The full name, including the `alias/` prefix.
    pub alias_name: String,
    pub key_id: String,
    /// Epoch milliseconds (aliases carry AWS timestamps with fractions).
    pub created_at: i64,
    /// Epoch milliseconds.
    pub updated_at: i64,
}

/// An authenticated identity: an access key id, its ARN and account, and its secret access key
/// already encrypted under the root key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalRow {
    pub access_key_id: String,
    pub arn: String,
    pub account: String,
    pub wrapped_secret: Vec<u8>,
    /// Epoch seconds.
    pub created_at: i64,
}

/// A grant on a key. `doc` is owned by the service (JSON); the store never looks inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRow {
    pub scope: Scope,
    pub key_id: String,
    /// 64 lowercase hex characters.
    pub grant_id: String,
    pub doc: String,
}

/// A named identity policy of a principal ARN (any of its access keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityPolicyRow {
    pub arn: String,
    pub name: String,
    /// The policy document, as given (already checked by the service).
    pub document: String,
    /// Epoch seconds.
    pub updated_at: i64,
}

/// The last cryptographic use of a key. `doc` is owned by the service (JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUsageRow {
    pub scope: Scope,
    pub key_id: String,
    pub doc: String,
}

/// One write inside a [`Transaction`].
#[derive(Debug, Clone)]
pub enum Write {
    /// Insert (`expected_version: None`, conflict if the key exists) or update a key whose stored
    /// version equals `expected_version` (conflict otherwise). The row's own `version` is stored.
    PutKey {
        row: KeyRow,
        expected_version: Option<i64>,
    },
    /// Delete a key, all its materials, grants and usage and every alias pointing at it. Deleting a
    /// missing key is not an error.
    DeleteKey { scope: Scope, key_id: String },
    /// Insert a material (conflict if that material id exists for the key).
    PutMaterial(MaterialRow),
    /// Insert an alias (`AliasExists` if the name is taken in the scope) or, with
    /// `replace: true`, point an existing alias at another key (updating `key_id` and
    /// `updated_at`; conflict if it does not exist).
    PutAlias { row: AliasRow, replace: bool },
    /// Delete an alias; deleting a missing alias is not an error.
    DeleteAlias { scope: Scope, alias_name: String },
    /// Delete one material of a key (imported material deleted or expired); deleting a missing
    /// material is not an error.
    DeleteMaterial {
        scope: Scope,
        key_id: String,
        material_id: String,
    },
    /// Insert or replace a key's last use; ignored if the key no longer exists.
    PutKeyUsage(KeyUsageRow),
    /// Insert a grant (conflict if that grant id exists for the key).
    PutGrant(GrantRow),
    /// Delete a grant; deleting a missing grant is not an error.
    DeleteGrant {
        scope: Scope,
        key_id: String,
        grant_id: String,
    },
}

/// Writes applied all together or not at all, durably before `apply` returns.
#[derive(Debug, Clone, Default)]
pub struct Transaction {
    pub writes: Vec<Write>,
}

impl Transaction {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn push(mut self, write: Write) -> Self {
        self.writes.push(write);
        self
    }
}

/// Every KMS resource, as loaded at start to warm the service's caches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub keys: Vec<KeyRow>,
    pub materials: Vec<MaterialRow>,
    pub aliases: Vec<AliasRow>,
    pub grants: Vec<GrantRow>,
    pub usage: Vec<KeyUsageRow>,
}

/// The storage trait. Every method is durable on return: what it acknowledged survives `kill -9`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// All keys, materials, aliases, grants and key usage of every scope.
    async fn load_all(&self) -> Result<Snapshot, StoreError>;
    /// Apply a transaction atomically.
    async fn apply(&self, tx: Transaction) -> Result<(), StoreError>;

    async fn get_principal(&self, access_key_id: &str) -> Result<Option<PrincipalRow>, StoreError>;
    async fn list_principals(&self) -> Result<Vec<PrincipalRow>, StoreError>;
    /// Insert a principal; conflict if the access key id exists.
    async fn put_principal(&self, row: PrincipalRow) -> Result<(), StoreError>;
    /// Returns whether a principal was deleted.
    async fn delete_principal(&self, access_key_id: &str) -> Result<bool, StoreError>;

    /// One grant (a node reading a grant token for a grant it has not loaded yet).
    async fn get_grant(
        &self,
        scope: &Scope,
        key_id: &str,
        grant_id: &str,
    ) -> Result<Option<GrantRow>, StoreError>;

    /// Every identity policy of every principal ARN, sorted by ARN and name.
    async fn list_identity_policies(&self) -> Result<Vec<IdentityPolicyRow>, StoreError>;
    /// Insert or replace the policy of that ARN and name.
    async fn put_identity_policy(&self, row: IdentityPolicyRow) -> Result<(), StoreError>;
    /// Returns whether a policy was deleted.
    async fn delete_identity_policy(&self, arn: &str, name: &str) -> Result<bool, StoreError>;

    /// A named setting (for example the root key's check value).
    async fn get_setting(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;
    async fn put_setting(&self, name: &str, value: &[u8]) -> Result<(), StoreError>;

    /// Take or renew the lease `name` for `holder` until `now_ms + ttl_ms` (epoch milliseconds).
    /// True if `holder` now holds it: it was free, expired, or already `holder`'s. Several
    /// nodes sharing a store run scheduled work only while holding its lease.
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError>;
    /// Give the lease up if `holder` holds it.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;

    /// Wipe every key, material, alias and grant (dev mode's reset). Principals, identity
    /// policies and settings stay.
    async fn reset(&self) -> Result<(), StoreError>;
}
