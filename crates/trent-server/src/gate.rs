//! The store as the service sees it when the audit log is on: every write waits until the audit
//! log has made durable everything before it and is writable, and is refused otherwise. So no
//! change takes effect while the log cannot record it.

use async_trait::async_trait;
use std::sync::Arc;
use trent_audit::AuditLog;
use trent_store::{
    GrantRow, IdentityPolicyRow, PrincipalRow, Scope, Snapshot, Store, StoreError, Transaction,
};

/// The message a refused write gives the client (a retryable KMSInternalException).
pub const AUDIT_UNAVAILABLE: &str = "The audit log cannot be written. Retry the request.";

pub struct AuditGatedStore {
    inner: Arc<dyn Store>,
    audit: Arc<AuditLog>,
}

impl AuditGatedStore {
    pub fn new(inner: Arc<dyn Store>, audit: Arc<AuditLog>) -> Self {
        Self { inner, audit }
    }

    async fn gate(&self) -> Result<(), StoreError> {
        self.audit
            .barrier()
            .await
            .map_err(|_| StoreError::Refused(AUDIT_UNAVAILABLE.into()))
    }
}

#[async_trait]
impl Store for AuditGatedStore {
    async fn load_all(&self) -> Result<Snapshot, StoreError> {
        self.inner.load_all().await
    }

    async fn apply(&self, tx: Transaction) -> Result<(), StoreError> {
        self.gate().await?;
        self.inner.apply(tx).await
    }

    async fn get_principal(&self, access_key_id: &str) -> Result<Option<PrincipalRow>, StoreError> {
        self.inner.get_principal(access_key_id).await
    }

    async fn list_principals(&self) -> Result<Vec<PrincipalRow>, StoreError> {
        self.inner.list_principals().await
    }

    async fn put_principal(&self, row: PrincipalRow) -> Result<(), StoreError> {
        self.inner.put_principal(row).await
    }

    async fn delete_principal(&self, access_key_id: &str) -> Result<bool, StoreError> {
        self.inner.delete_principal(access_key_id).await
    }

    async fn get_grant(
        &self,
        scope: &Scope,
        key_id: &str,
        grant_id: &str,
    ) -> Result<Option<GrantRow>, StoreError> {
        self.inner.get_grant(scope, key_id, grant_id).await
    }

    async fn list_identity_policies(&self) -> Result<Vec<IdentityPolicyRow>, StoreError> {
        self.inner.list_identity_policies().await
    }

    async fn put_identity_policy(&self, row: IdentityPolicyRow) -> Result<(), StoreError> {
        self.inner.put_identity_policy(row).await
    }

    async fn delete_identity_policy(&self, arn: &str, name: &str) -> Result<bool, StoreError> {
        self.inner.delete_identity_policy(arn, name).await
    }

    async fn get_setting(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get_setting(name).await
    }

    async fn put_setting(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.inner.put_setting(name, value).await
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        self.inner.try_lease(name, holder, now_ms, ttl_ms).await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.inner.release_lease(name, holder).await
    }

    async fn reset(&self) -> Result<(), StoreError> {
        self.gate().await?;
        self.inner.reset().await
    }
}
