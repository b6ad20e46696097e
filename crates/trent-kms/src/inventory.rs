//! What the metrics endpoint reads at scrape time: how many keys there are in each state and of
//! each spec, when imported material expires, and whether the store answers.

use crate::service::{CachedKey, Kms};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The keys of every account and region, counted, as one scrape sees them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inventory {
    /// `((state, key spec), number of keys)`, sorted by state then spec; only pairs with keys.
    pub keys_by_state_and_spec: Vec<((String, String), u64)>,
    /// `(key ARN, material id, seconds until it expires)` for every imported material present
    /// with an expiry, sorted by ARN then material id. Never negative: material past its expiry
    /// that the scheduled work has not deleted yet shows 0.
    pub imported_expiries: Vec<(String, String, f64)>,
    /// Keys whose stored material could not be loaded: every use of them fails.
    pub unusable_keys: u64,
    /// Stored rows the last load of the view left out because they do not parse.
    pub skipped: crate::service::LoadReport,
}

/// The setting every store has once a service opened it (the root key's check value): reading
/// it is one indexed row.
const PROBE_SETTING: &str = "root-key-check";

impl Kms {
    /// Count the keys of the in-memory view (no store access).
    pub fn inventory(&self) -> Inventory {
        let now = self.clock.now();
        // Only Arc clones under the read lock: a writer waiting behind a long scrape would stop
        // the requests queued behind it.
        let keys: Vec<Arc<CachedKey>> = self.view.read().all_keys().cloned().collect();
        let mut counts: BTreeMap<(&'static str, &str), u64> = BTreeMap::new();
        let mut imported_expiries = Vec::new();
        let mut unusable_keys = 0;
        for key in &keys {
            let record = &key.record;
            unusable_keys += u64::from(key.unusable);
            *counts
                .entry((record.state.as_str(), record.key_spec.as_str()))
                .or_default() += 1;
            for m in &record.materials {
                let Some(import) = m.import.as_ref().filter(|i| i.imported) else {
                    continue;
                };
                if let Some(valid_to) = import.valid_to {
                    imported_expiries.push((
                        key.arn.clone(),
                        m.id.clone(),
                        (valid_to - now).max(0.0),
                    ));
                }
            }
        }
        imported_expiries.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        Inventory {
            keys_by_state_and_spec: counts
                .into_iter()
                .map(|((state, spec), n)| ((state.to_string(), spec.to_string()), n))
                .collect(),
            imported_expiries,
            unusable_keys,
            skipped: self.load_report(),
        }
    }

    /// Whether the store answers a read (one small indexed row): what readiness checks.
    pub async fn store_reachable(&self) -> bool {
        match self.store.get_setting(PROBE_SETTING).await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(error = %e, "store unreachable");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::CreateKeyRequest;
    use crate::ids::Caller;
    use crate::model::MaterialInfo;
    use trent_crypto::{LocalRootKey, RootKey};
    use trent_store::{Scope, SqliteStore, Store};

    fn caller() -> Caller {
        let mut c = Caller::new(
            "111122223333",
            "us-east-1",
            "arn:aws:iam::111122223333:user/test",
        );
        let admin = r#"{"Statement":{"Effect":"Allow","Action":"kms:*","Resource":"*"}}"#;
        c.identity = Arc::from(vec![
            crate::policy::parse_kind(admin, crate::policy::Kind::Identity).unwrap(),
        ]);
        c
    }

    async fn service() -> Kms {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
        let root: Arc<dyn RootKey> = Arc::new(LocalRootKey::ephemeral().unwrap());
        Kms::open(store, root).await.unwrap()
    }

    async fn create(kms: &Kms, req: CreateKeyRequest) -> String {
        kms.create_key(&caller(), req)
            .await
            .unwrap()
            .key_metadata
            .unwrap()
            .key_id
    }

    /// Give the key `key_id` the materials `materials` (JSON) in the view only.
    fn set_materials(kms: &Kms, key_id: &str, materials: serde_json::Value) {
        let mut view = kms.view.write();
        let scope = view.scope_mut(&Scope {
            account: "111122223333".into(),
            region: "us-east-1".into(),
        });
        let old = scope.keys.get(key_id).unwrap().clone();
        let mut record = old.record.clone();
        record.materials = serde_json::from_value::<Vec<MaterialInfo>>(materials).unwrap();
        let key = CachedKey::new(
            record,
            old.version,
            old.materials.clone(),
            old.policy.clone(),
            old.usage.clone(),
        );
        scope.keys.insert(key_id.to_string(), Arc::new(key));
    }

    #[tokio::test]
    async fn counts_keys_by_state_and_spec_and_lists_expiring_material() {
        let kms = service().await;
        assert_eq!(kms.inventory(), Inventory::default());
        create(&kms, CreateKeyRequest::default()).await;
        create(&kms, CreateKeyRequest::default()).await;
        let hmac = CreateKeyRequest {
            key_usage: Some("GENERATE_VERIFY_MAC".into()),
            key_spec: Some("HMAC_256".into()),
            ..Default::default()
        };
        create(&kms, hmac).await;
        let external = CreateKeyRequest {
            origin: Some("EXTERNAL".into()),
            ..Default::default()
        };
        let ext = create(&kms, external).await;
        let now = kms.clock.now();
        let (a, b, c) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));
        set_materials(
            &kms,
            &ext,
            serde_json::json!([
                {"id": a, "created": now, "import": {"imported": true,
                    "expiration_model": "KEY_MATERIAL_EXPIRES", "valid_to": now + 3600.0}},
                {"id": b, "created": now, "import": {"imported": true,
                    "expiration_model": "KEY_MATERIAL_EXPIRES", "valid_to": now - 10.0}},
                {"id": c, "created": now, "import": {"imported": false,
                    "expiration_model": "KEY_MATERIAL_EXPIRES", "valid_to": now + 10.0}},
                {"id": "d".repeat(64), "created": now, "import": {"imported": true,
                    "expiration_model": "KEY_MATERIAL_DOES_NOT_EXPIRE"}},
            ]),
        );

        let inv = kms.inventory();
        let pair = |s: &str, k: &str, n| ((s.to_string(), k.to_string()), n);
        assert_eq!(
            inv.keys_by_state_and_spec,
            vec![
                pair("Enabled", "HMAC_256", 1),
                pair("Enabled", "SYMMETRIC_DEFAULT", 2),
                pair("PendingImport", "SYMMETRIC_DEFAULT", 1),
            ]
        );
        let arn = format!("arn:aws:kms:us-east-1:111122223333:key/{ext}");
        assert_eq!(
            inv.imported_expiries.len(),
            2,
            "{:?}",
            inv.imported_expiries
        );
        assert_eq!(
            (&inv.imported_expiries[0].0, &inv.imported_expiries[0].1),
            (&arn, &a)
        );
        let left = inv.imported_expiries[0].2;
        assert!((3590.0..=3600.0).contains(&left), "{left}");
        // Past its expiry, not yet deleted by the scheduled work: 0, never negative.
        assert_eq!(inv.imported_expiries[1], (arn, b, 0.0));
    }

    #[tokio::test]
    async fn the_store_is_reachable() {
        assert!(service().await.store_reachable().await);
    }
}
