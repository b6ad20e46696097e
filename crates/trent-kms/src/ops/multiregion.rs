//! ReplicateKey and UpdatePrimaryRegion: the sets of related multi-Region keys.
//!
//! A set shares its key id, key spec, key usage, origin, materials and rotation; each key of the
//! set has its own policy, description, tags, aliases, grants and state. The materials are the
//! same bytes in every region, each copy wrapped under the root key with its own key's ARN.
//! Rotation settings live on the primary (the scheduler rotates the primary and writes the new
//! material to every replica in the same transaction).
//!
//! Error codes and messages AWS sends here are not published; the ones below are trent's own
//! choice unless a comment says otherwise.

use super::*;
use crate::api::*;
use crate::ids::{Caller, KeyRef};
use crate::model::{KeyRecord, KeyState};
use crate::policy;
use crate::service::material_aad;
use crate::service::{KeyChange, Kms};
use crate::validate::Violations;
use trent_crypto::KeyMaterial;
use trent_store::{Transaction, Write};

/// A region name as the model's pattern `^([a-z]+-){2,3}\d+$` has it.
fn is_region_name(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let Some((last, words)) = parts.split_last() else {
        return false;
    };
    (2..=3).contains(&words.len())
        && words
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        && !last.is_empty()
        && last.bytes().all(|b| b.is_ascii_digit())
}

/// ReplicaRegion / PrimaryRegion: required, 1..32, a region name.
fn check_region(v: &mut Violations, path: &str, region: &Option<String>) {
    v.required(path, region)
        .str_len(path, region.as_deref(), 1, 32)
        .pattern(
            path,
            region.as_deref(),
            is_region_name,
            "^([a-z]+-){2,3}\\d+$",
        );
}

/// `UnsupportedOperationException` for a Region this server does not serve (trent's wording).
fn require_served(kms: &Kms, region: &str) -> Result<(), KmsError> {
    if kms.serves_region(region) {
        Ok(())
    } else {
        Err(KmsError::UnsupportedOperation(format!(
            "{region} is not a Region this server serves."
        )))
    }
}

/// The same caller, asking in another region (the replica's, for authorization there).
fn in_region(caller: &Caller, region: &str) -> Caller {
    Caller {
        region: region.to_string(),
        ..caller.clone()
    }
}

/// `UnsupportedOperationException` unless `record` is a multi-Region primary key.
/// The messages are trent's (unconfirmed against AWS).
fn require_primary(record: &KeyRecord, arn: &str, op: &str) -> Result<(), KmsError> {
    if !record.multi_region {
        return Err(KmsError::UnsupportedOperation(format!(
            "{arn} is not a multi-Region key. {op} applies only to multi-Region primary keys."
        )));
    }
    if record.is_replica() {
        return Err(KmsError::UnsupportedOperation(format!(
            "{arn} is a multi-Region replica key. {op} applies only to the primary key of the set, in {}.",
            record.primary_region.as_deref().unwrap_or_default()
        )));
    }
    Ok(())
}

/// The key-state rule of ReplicateKey and UpdatePrimaryRegion: Enabled (DisabledException when
/// disabled, KMSInvalidStateException in any other state).
fn require_enabled_state(record: &KeyRecord, arn: &str) -> Result<(), KmsError> {
    match record.state {
        KeyState::Enabled => Ok(()),
        KeyState::Disabled => Err(KmsError::Disabled(format!("{arn} is disabled."))),
        other => Err(invalid_state(arn, other)),
    }
}

impl Kms {
    pub async fn replicate_key(
        &self,
        caller: &Caller,
        req: ReplicateKeyRequest,
    ) -> Result<ReplicateKeyResponse, KmsError> {
        let mut v = Violations::new();
        check_key_id(&mut v, "KeyId", &req.key_id);
        check_region(&mut v, "ReplicaRegion", &req.replica_region);
        v.str_len("Policy", req.policy.as_deref(), 1, 131_072)
            .str_len("Description", req.description.as_deref(), 0, 8192);
        super::tags::check_tag_shapes(&mut v, &req.tags);
        v.finish()?;
        let replica_region = req.replica_region.clone().unwrap_or_default();
        require_served(self, &replica_region)?;
        let request_tags = req.tags.as_deref().filter(|t| !t.is_empty());
        let given_policy = req.policy.as_deref().map(policy::parse).transpose()?;
        let tags = super::tags::merge_tags(&[], req.tags.as_deref().unwrap_or_default())?;

        let _guard = self.writer.lock().await;
        let primary = self.resolve_key(
            caller,
            req.key_id.as_deref().unwrap_or_default(),
            &Access::with(
                "ReplicateKey",
                Facts {
                    replica_region: Some(&replica_region),
                    ..Facts::default()
                },
            ),
        )?;
        let p = &primary.record;
        if p.is_replica() {
            // AWS's words (recorded).
            return Err(KmsError::UnsupportedOperation(format!(
                "{} is not a multi-region primary key.",
                primary.arn
            )));
        }
        require_primary(p, &primary.arn, "ReplicateKey")?;
        if p.origin == "EXTERNAL" {
            // A gap: AWS creates the replica with no material (PendingImport) and the same
            // material must then be imported into it; trent does not offer that yet.
            return Err(KmsError::UnsupportedOperation(format!(
                "{} has imported key material. trent does not replicate multi-Region keys with imported key material yet.",
                primary.arn
            )));
        }
        // AWS lists DisabledException for ReplicateKey: a disabled primary is refused
        // (unconfirmed), and a primary pending (replica) deletion too (KMSInvalidStateException).
        require_enabled_state(p, &primary.arn)?;
        // A replica copies the material: a primary whose material cannot be read has none to give.
        require_usable(&primary)?;
        // AlreadyExistsException as the API reference says for a region that already has a
        // replica; also for the primary's own region. The messages are trent's (unconfirmed).
        if replica_region == p.region {
            return Err(KmsError::AlreadyExists(format!(
                "{} is in {replica_region}: a replica must be in another Region than its primary key.",
                primary.arn
            )));
        }
        if let Some(existing) = self
            .related_keys(p)
            .into_iter()
            .find(|k| k.record.region == replica_region)
        {
            return Err(KmsError::AlreadyExists(format!(
                "{} already has a replica in {replica_region}: {}.",
                primary.arn, existing.arn
            )));
        }

        // The replica is a new key in the replica region: CreateKey (and TagResource, for
        // tags) there, as the caller's identity policies say.
        let there = in_region(caller, &replica_region);
        let replica_arn = there.key_arn(&p.key_id);
        let facts = Facts {
            key_spec: Some(&p.key_spec),
            key_usage: Some(&p.key_usage),
            key_origin: Some(&p.origin),
            multi_region: Some(true),
            bypass_lockout: req.bypass_policy_lockout_safety_check,
            request_tags,
            ..Facts::default()
        };
        self.authorize_identity(&there, &Access::with("CreateKey", facts), "*")?;
        if request_tags.is_some() {
            self.authorize_identity(&there, &Access::with("TagResource", facts), &replica_arn)?;
        }

        let now = self.clock.now();
        let record = KeyRecord {
            key_id: p.key_id.clone(),
            account: p.account.clone(),
            region: replica_region.clone(),
            creation_date: now,
            description: req.description.unwrap_or_default(),
            key_usage: p.key_usage.clone(),
            key_spec: p.key_spec.clone(),
            origin: p.origin.clone(),
            key_manager: "CUSTOMER".into(),
            state: KeyState::Creating,
            deletion_date: None,
            pending_window_days: None,
            policy: req
                .policy
                .unwrap_or_else(|| policy::default_policy(&p.account)),
            tags,
            current_material: p.current_material.clone(),
            multi_region: true,
            materials: p.materials.clone(),
            // Rotation is set and done on the primary.
            rotation: None,
            on_demand_rotation_start: None,
            on_demand_rotations: 0,
            primary_region: Some(p.region.clone()),
        };
        if let Some(given) = &given_policy
            && req.bypass_policy_lockout_safety_check != Some(true)
        {
            self.check_lockout(&there, given, &record)?;
        }

        // The same material bytes, wrapped anew under the replica's ARN.
        let mut tx = Transaction::new();
        for (id, material, created_at) in self.material_bytes(&primary.record).await? {
            tx.writes.push(Write::PutMaterial(
                self.wrap_material(&record, &id, &material, created_at)?,
            ));
        }
        let policy_text = record.policy.clone();
        // No ReplicaTags member when the request gave no tags, as AWS answers.
        let replica_tags = request_tags.map(|_| {
            record
                .tags
                .iter()
                .map(|(k, v)| Tag {
                    tag_key: Some(k.clone()),
                    tag_value: Some(v.clone()),
                })
                .collect()
        });
        let changes = vec![
            // The primary, unchanged, is written too: its version check makes sure the materials
            // copied are all it has (another node may have rotated it).
            KeyChange::of(&primary, primary.record.clone(), None),
            KeyChange {
                current: None,
                record,
                materials: primary.materials.clone(),
            },
        ];
        let done = self.commit_keys(changes, tx).await?;
        drop(_guard);
        // The scheduler turns the replica from Creating to Enabled.
        self.wake.notify_one();
        Ok(ReplicateKeyResponse {
            replica_key_metadata: Some(self.key_metadata(&done[1])),
            replica_policy: Some(policy_text),
            replica_tags,
        })
    }

    pub async fn update_primary_region(
        &self,
        caller: &Caller,
        req: UpdatePrimaryRegionRequest,
    ) -> Result<Empty, KmsError> {
        let mut v = Violations::new();
        check_key_id(&mut v, "KeyId", &req.key_id);
        check_region(&mut v, "PrimaryRegion", &req.primary_region);
        v.finish()?;
        let new_region = req.primary_region.clone().unwrap_or_default();
        require_served(self, &new_region)?;
        let facts = Facts {
            primary_region: Some(&new_region),
            ..Facts::default()
        };
        let access = Access::with("UpdatePrimaryRegion", facts);

        let _guard = self.writer.lock().await;
        let primary =
            self.resolve_key(caller, req.key_id.as_deref().unwrap_or_default(), &access)?;
        require_primary(&primary.record, &primary.arn, "UpdatePrimaryRegion")?;
        if new_region == primary.record.region {
            // Unconfirmed: what AWS answers when the region is already the primary's.
            return Err(KmsError::UnsupportedOperation(format!(
                "{} is already the primary key in {new_region}.",
                primary.arn
            )));
        }
        // AWS asks for kms:UpdatePrimaryRegion on the replica too, in its region. A region
        // without a replica answers NotFoundException for the key there (unconfirmed).
        let there = in_region(caller, &new_region);
        let replica = self.resolve(&there, &KeyRef::Id(primary.record.key_id.clone()), &access)?;
        // "Both the primary key and the replica key must be in the Enabled key state."
        require_enabled_state(&primary.record, &primary.arn)?;
        require_enabled_state(&replica.record, &replica.arn)?;

        let old = &primary.record;
        let mut changes = Vec::new();
        let mut set = self.related_keys(old);
        set.push(primary.clone());
        for key in &set {
            let mut record = key.record.clone();
            record.primary_region = Some(new_region.clone());
            if record.region == new_region {
                // Rotation settings belong to the primary: they move with it.
                record.rotation = old.rotation.clone();
                record.on_demand_rotation_start = old.on_demand_rotation_start;
                record.on_demand_rotations = old.on_demand_rotations;
            } else if record.region == old.region {
                record.rotation = None;
                record.on_demand_rotation_start = None;
                record.on_demand_rotations = 0;
            }
            changes.push(KeyChange::of(key, record, None));
        }
        self.commit_keys(changes, Transaction::new()).await?;
        drop(_guard);
        // A rotation asked for before the move is now the new primary's to do.
        if old.on_demand_rotation_start.is_some() {
            self.wake.notify_one();
        }
        Ok(Empty {})
    }

    /// The plaintext bytes of every material `record` lists as present, with their ids and
    /// creation times, read from the store and unwrapped (the view keeps materials only parsed).
    /// The writer lock is held.
    async fn material_bytes(
        &self,
        record: &KeyRecord,
    ) -> Result<Vec<(String, KeyMaterial, f64)>, KmsError> {
        let scope = record.scope();
        let arn = record.arn();
        // The store has no call for one key's materials: the whole snapshot is read, which a
        // rare management operation can afford.
        let snapshot = self.store.load_all().await?;
        let mut out = Vec::new();
        for info in record.materials.iter().filter(|m| m.present()) {
            let row = snapshot
                .materials
                .iter()
                .find(|m| m.scope == scope && m.key_id == record.key_id && m.material_id == info.id)
                .ok_or_else(|| {
                    KmsError::Internal(format!("material {} of {arn} is not stored", info.id))
                })?;
            let plain = self
                .root
                .unwrap(&material_aad(&arn, &row.material_id), &row.wrapped)
                .map_err(|_| KmsError::Internal(format!("material of {arn} does not unwrap")))?;
            out.push((
                info.id.clone(),
                KeyMaterial::from_bytes(plain),
                row.created_at as f64,
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::is_region_name;

    #[test]
    fn region_names() {
        for ok in ["us-east-1", "eu-west-2", "ap-southeast-10", "us-gov-west-1"] {
            assert!(is_region_name(ok), "{ok}");
        }
        for bad in [
            "",
            "us-east",
            "useast1",
            "US-east-1",
            "us--1",
            "a-b-c-d-1",
            "us-east-1a",
            "us-east-",
        ] {
            assert!(!is_region_name(bad), "{bad}");
        }
    }
}
