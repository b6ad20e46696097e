//! The work the service does by itself, on schedule: automatic and on-demand rotation, expiry
//! of imported material, the end of deletion windows, replicas that finish creating, and the
//! flush of last-use records.
//!
//! Several nodes may share one store (the cluster). Scheduled work must then run exactly once:
//! a node runs it only while it holds the store's `scheduler` lease ([`Store::try_lease`]), and
//! every change it makes is written with the key's optimistic version, so a node whose view is
//! stale fails the write (and reloads) instead of doing the work a second time.
//!
//! [`Store::try_lease`]: trent_store::Store::try_lease

use crate::error::KmsError;
use crate::model::{KeyRecord, KeyState, MaterialInfo, RotationSchedule, RotationType};
use crate::service::{CachedKey, KeyChange, Kms, Material, Materials};
use crate::usage::LastUse;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use trent_crypto::{KeyMaterial, MaterialId};
use trent_store::{KeyUsageRow, Transaction, Write};

pub const SECONDS_PER_DAY: f64 = 86_400.0;

/// The name of the lease scheduled work runs under.
pub const SCHEDULER_LEASE: &str = "scheduler";

/// What one run of the scheduled work did (ARNs), for logs and tests.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ScheduleReport {
    /// Whether this node held the lease and did the work (otherwise only its own last-use
    /// records were flushed).
    pub leader: bool,
    pub destroyed: Vec<String>,
    pub rotated: Vec<String>,
    pub expired: Vec<String>,
    pub replicas_created: Vec<String>,
    pub deletion_windows_started: Vec<String>,
    pub usage_flushed: usize,
}

fn real_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Round epoch seconds to milliseconds (the precision AWS timestamps have).
pub fn round_ms(t: f64) -> f64 {
    (t * 1000.0).round() / 1000.0
}

impl Kms {
    /// Run every piece of scheduled work that is due, if this node holds the scheduler lease.
    /// Each key's failure is logged and does not hold up the others.
    pub async fn run_scheduled(&self) -> Result<ScheduleReport, KmsError> {
        let mut report = ScheduleReport {
            usage_flushed: self.flush_usage().await?,
            ..ScheduleReport::default()
        };
        // Another node sharing the store may have changed keys: catch up first, so that work
        // asked for there (or due on keys made there) is seen here.
        self.catch_up_with_store().await?;
        let leader = self
            .store
            .try_lease(
                SCHEDULER_LEASE,
                &self.node_id,
                real_now_ms(),
                self.lease_ttl.as_millis() as i64,
            )
            .await?;
        if !leader {
            return Ok(report);
        }
        report.leader = true;
        report.replicas_created = self.finish_replicas().await;
        report.rotated = self.rotate_due_keys().await;
        report.expired = self.expire_imported_material().await;
        report.deletion_windows_started = self.start_primary_deletion_windows().await;
        report.destroyed = self.destroy_due_keys().await?;
        Ok(report)
    }

    /// Reload the view if the store holds keys, versions or aliases this node has not seen
    /// (writes made by another node). Compares versions only: nothing is unwrapped unless a
    /// reload is needed.
    pub async fn catch_up_with_store(&self) -> Result<bool, KmsError> {
        let _guard = self.writer.lock().await;
        let snapshot = self.store.load_all().await?;
        let stale = {
            let view = self.view.read();
            // Rows left out as unreadable count as known, at the version they had.
            let mut known = view.left_out.len();
            let mut aliases = 0usize;
            for s in view.all_scopes() {
                known += s.keys.len();
                aliases += s.aliases.len();
            }
            known != snapshot.keys.len()
                || aliases != snapshot.aliases.len()
                || snapshot.keys.iter().any(|row| {
                    let seen = view
                        .scope(&row.scope.account, &row.scope.region)
                        .and_then(|s| s.keys.get(&row.key_id))
                        .map(|k| k.version)
                        .or_else(|| {
                            view.left_out
                                .get(&(
                                    row.scope.account.clone(),
                                    row.scope.region.clone(),
                                    row.key_id.clone(),
                                ))
                                .copied()
                        });
                    seen != Some(row.version)
                })
                || snapshot.aliases.iter().any(|a| {
                    view.scope(&a.scope.account, &a.scope.region)
                        .and_then(|s| s.aliases.get(&a.alias_name))
                        .is_none_or(|mine| mine.key_id != a.key_id)
                })
        };
        if stale {
            tracing::info!("the store holds changes made elsewhere: reloading");
            self.reload()
                .await
                .map_err(|e| KmsError::Internal(e.to_string()))?;
        }
        Ok(stale)
    }

    /// Give up the scheduler lease (a node shutting down), so another node takes over at once.
    pub async fn release_scheduler(&self) {
        if let Err(e) = self
            .store
            .release_lease(SCHEDULER_LEASE, &self.node_id)
            .await
        {
            tracing::warn!(error = %e, "could not release the scheduler lease");
        }
    }

    /// Every key matching `due`, from the view.
    pub(crate) fn keys_where(&self, due: impl Fn(&KeyRecord) -> bool) -> Vec<Arc<CachedKey>> {
        self.view
            .read()
            .all_keys()
            .filter(|k| due(&k.record))
            .cloned()
            .collect()
    }

    /// The cached key `key` still is (same version), under the writer lock: work decided from
    /// an older view is skipped.
    pub(crate) fn still_current(&self, key: &CachedKey) -> bool {
        self.view
            .read()
            .scope(&key.record.account, &key.record.region)
            .and_then(|s| s.keys.get(&key.record.key_id))
            .is_some_and(|k| k.version == key.version)
    }

    /// Do `work` on each key `due` picks, one at a time under the writer lock, logging
    /// failures.
    async fn for_each_due(&self, work: Work, due: impl Fn(&KeyRecord) -> bool) -> Vec<String> {
        let now = self.clock.now();
        let mut done = Vec::new();
        for key in self.keys_where(&due) {
            let _guard = self.writer.lock().await;
            if !self.still_current(&key) {
                continue;
            }
            match self.do_work(work, &key, now).await {
                Ok(true) => {
                    tracing::info!(key = %key.arn, "{}", work.describe());
                    done.push(key.arn.clone());
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(key = %key.arn, error = %e, "{}: failed", work.describe())
                }
            }
        }
        done
    }

    async fn do_work(&self, work: Work, key: &Arc<CachedKey>, now: f64) -> Result<bool, KmsError> {
        match work {
            Work::Rotate => {
                let kind = if key.record.on_demand_rotation_start.is_some() {
                    RotationType::OnDemand
                } else {
                    RotationType::Automatic
                };
                self.rotate_locked(key, kind, now).await?;
            }
            Work::Expire => {
                let gone: Vec<String> = key
                    .record
                    .materials
                    .iter()
                    .filter(|m| expired(m, now))
                    .map(|m| m.id.clone())
                    .collect();
                self.delete_materials_locked(key, &gone).await?;
            }
            Work::FinishReplica => {
                let mut record = key.record.clone();
                record.state = KeyState::Enabled;
                self.commit_record(key, record, None).await?;
            }
            Work::StartPrimaryWindow => {
                if !self.replicas_of(&key.record).is_empty() {
                    return Ok(false);
                }
                let mut record = key.record.clone();
                let days = record.pending_window_days.unwrap_or(30);
                record.state = KeyState::PendingDeletion;
                record.deletion_date = Some(round_ms(now + days as f64 * SECONDS_PER_DAY));
                self.commit_record(key, record, None).await?;
            }
        }
        Ok(true)
    }

    /// Automatic rotations that are due, and on-demand rotations asked for. A disabled key is
    /// not rotated; it is rotated once it is enabled again if its date has passed meanwhile.
    async fn rotate_due_keys(&self) -> Vec<String> {
        let now = self.clock.now();
        self.for_each_due(Work::Rotate, |r| {
            r.state == KeyState::Enabled
                && !r.is_replica()
                && (r.on_demand_rotation_start.is_some()
                    || r.rotation.as_ref().is_some_and(|s| s.next <= now))
        })
        .await
    }

    /// Rotate `key` now (the writer lock held): a new material becomes current, or for an
    /// imported key the material waiting for rotation does. A multi-Region primary's replicas
    /// get the same material in the same transaction.
    pub(crate) async fn rotate_locked(
        &self,
        key: &Arc<CachedKey>,
        kind: RotationType,
        now: f64,
    ) -> Result<Arc<CachedKey>, KmsError> {
        let mut record = key.record.clone();
        let now = round_ms(now);
        if kind == RotationType::OnDemand {
            record.on_demand_rotation_start = None;
        } else if let Some(s) = record.rotation.as_mut() {
            // From the rotation itself: a key that was down or disabled past its date starts
            // its next period now.
            *s = RotationSchedule::starting(now, s.period_days);
        }
        if record.origin == "EXTERNAL" {
            let Some(pending) = record.materials.iter_mut().find(|m| m.pending_rotation) else {
                // Nothing to rotate to: the request is dropped (it was checked when asked).
                return self.commit_record(key, record, None).await;
            };
            pending.pending_rotation = false;
            pending.rotation = Some((kind, now));
            record.current_material = Some(pending.id.clone());
            return self.commit_record(key, record, None).await;
        }
        let material = KeyMaterial::generate_symmetric()?;
        let id = MaterialId::generate()?;
        let id_hex = id.to_hex();
        let info = MaterialInfo {
            id: id_hex.clone(),
            created: now,
            rotation: Some((kind, now)),
            import: None,
            pending_rotation: false,
        };
        let loaded = Arc::new(Material::load(&record.key_spec, id, &material)?);
        let mut tx = Transaction::new();
        let mut changes = Vec::new();
        let replicas = self.replicas_of(&record);
        for (target, mut rec) in std::iter::once((key.clone(), record))
            .chain(replicas.into_iter().map(|r| (r.clone(), r.record.clone())))
        {
            rec.materials.push(info.clone());
            rec.current_material = Some(id_hex.clone());
            tx.writes.push(Write::PutMaterial(
                self.wrap_material(&rec, &id_hex, &material, now)?,
            ));
            let materials = with_material(&target.materials, id, loaded.clone());
            changes.push((target, rec, materials));
        }
        let changes = changes
            .iter()
            .map(|(t, rec, m)| KeyChange::of(t, rec.clone(), Some(m.clone())))
            .collect();
        let mut done = self.commit_keys(changes, tx).await?;
        Ok(done.remove(0))
    }

    /// Write `record` over `key` (the writer lock held), with `materials` if they changed.
    pub(crate) async fn commit_record(
        &self,
        key: &CachedKey,
        record: KeyRecord,
        materials: Option<Materials>,
    ) -> Result<Arc<CachedKey>, KmsError> {
        let mut done = self
            .commit_keys(
                vec![KeyChange::of(key, record, materials)],
                Transaction::new(),
            )
            .await?;
        Ok(done.remove(0))
    }

    /// Imported material whose ValidTo has passed is deleted; the key waits for it to be
    /// imported again (PendingImport).
    async fn expire_imported_material(&self) -> Vec<String> {
        let now = self.clock.now();
        self.for_each_due(Work::Expire, |r| {
            r.materials.iter().any(|m| expired(m, now))
        })
        .await
    }

    /// Delete imported materials of `key` (the writer lock held): their bytes go, their ids
    /// stay for a reimport, and the key becomes PendingImport (AWS makes a key with any
    /// material missing unusable until it is imported again).
    pub(crate) async fn delete_materials_locked(
        &self,
        key: &CachedKey,
        ids: &[String],
    ) -> Result<Arc<CachedKey>, KmsError> {
        let mut record = key.record.clone();
        let mut materials: HashMap<MaterialId, Arc<Material>> = (*key.materials).clone();
        let mut tx = Transaction::new();
        for id in ids {
            if let Some(info) = record.materials.iter_mut().find(|m| &m.id == id)
                && let Some(import) = info.import.as_mut()
            {
                import.imported = false;
                import.valid_to = None;
            }
            if let Some(mid) = MaterialId::from_hex(id) {
                materials.remove(&mid);
            }
            tx.writes.push(Write::DeleteMaterial {
                scope: record.scope(),
                key_id: record.key_id.clone(),
                material_id: id.clone(),
            });
        }
        if matches!(record.state, KeyState::Enabled | KeyState::Disabled) {
            record.state = KeyState::PendingImport;
        }
        let mut done = self
            .commit_keys(
                vec![KeyChange::of(key, record, Some(Arc::new(materials)))],
                tx,
            )
            .await?;
        Ok(done.remove(0))
    }

    /// Replicas made by ReplicateKey are Creating until this runs; then Enabled.
    async fn finish_replicas(&self) -> Vec<String> {
        self.for_each_due(Work::FinishReplica, |r| r.state == KeyState::Creating)
            .await
    }

    /// A primary key waiting for its replicas to be deleted starts its own waiting period once
    /// the last replica is gone.
    async fn start_primary_deletion_windows(&self) -> Vec<String> {
        self.for_each_due(Work::StartPrimaryWindow, |r| {
            r.state == KeyState::PendingReplicaDeletion
        })
        .await
    }

    /// The other keys of a multi-Region primary's set (none for other keys).
    pub(crate) fn replicas_of(&self, record: &KeyRecord) -> Vec<Arc<CachedKey>> {
        if !record.multi_region || record.is_replica() {
            return Vec::new();
        }
        self.related_keys(record)
    }

    /// Every other key of a multi-Region key's set, primary or replica.
    pub(crate) fn related_keys(&self, record: &KeyRecord) -> Vec<Arc<CachedKey>> {
        if !record.multi_region {
            return Vec::new();
        }
        let view = self.view.read();
        let mut keys: Vec<Arc<CachedKey>> = view
            .regions()
            .filter(|r| *r != record.region)
            .filter_map(|r| view.scope(&record.account, r)?.keys.get(&record.key_id))
            .cloned()
            .collect();
        keys.sort_by(|a, b| a.record.region.cmp(&b.record.region));
        keys
    }

    /// Write every key's unflushed last use to the store, in one transaction.
    pub async fn flush_usage(&self) -> Result<usize, KmsError> {
        let dirty: Vec<(Arc<CachedKey>, LastUse)> = self
            .view
            .read()
            .all_keys()
            .filter_map(|k| Some((k.clone(), k.usage.take_dirty()?)))
            .collect();
        if dirty.is_empty() {
            return Ok(0);
        }
        let mut tx = Transaction::new();
        for (k, last) in &dirty {
            tx.writes.push(Write::PutKeyUsage(KeyUsageRow {
                scope: k.record.scope(),
                key_id: k.record.key_id.clone(),
                doc: serde_json::to_string(last).map_err(|e| KmsError::Internal(e.to_string()))?,
            }));
        }
        if let Err(e) = self.store.apply(tx).await {
            for (k, _) in &dirty {
                k.usage.mark_dirty();
            }
            return Err(e.into());
        }
        Ok(dirty.len())
    }
}

/// The kinds of scheduled work done key by key.
#[derive(Debug, Clone, Copy)]
enum Work {
    Rotate,
    Expire,
    FinishReplica,
    StartPrimaryWindow,
}

impl Work {
    fn describe(self) -> &'static str {
        match self {
            Work::Rotate => "key material rotated",
            Work::Expire => "imported key material expired",
            Work::FinishReplica => "replica key created",
            Work::StartPrimaryWindow => "replicas deleted: the primary key's waiting period starts",
        }
    }
}

/// Imported material present whose ValidTo has passed.
fn expired(m: &MaterialInfo, now: f64) -> bool {
    m.import
        .as_ref()
        .is_some_and(|i| i.imported && i.valid_to.is_some_and(|t| t <= now))
}

/// `materials` with one more.
pub(crate) fn with_material(
    materials: &Materials,
    id: MaterialId,
    material: Arc<Material>,
) -> Materials {
    let mut all: HashMap<MaterialId, Arc<Material>> = (**materials).clone();
    all.insert(id, material);
    Arc::new(all)
}
