//! EnableKeyRotation, DisableKeyRotation, GetKeyRotationStatus, RotateKeyOnDemand,
//! ListKeyRotations. The rotations themselves are scheduled work (see `lifecycle`).

use super::*;
use crate::api::*;
use crate::ids::Caller;
use crate::lifecycle::round_ms;
use crate::model::{KeyRecord, KeyState, RotationSchedule};
use crate::service::Kms;

/// How many on-demand rotations AWS allows per key.
pub const MAX_ON_DEMAND_ROTATIONS: u32 = 25;
/// RotateKeyOnDemand is refused this close to an automatic rotation.
const AUTOMATIC_ROTATION_GUARD_SECS: f64 = 20.0 * 60.0;
const DEFAULT_ROTATION_PERIOD_DAYS: i64 = 365;

/// `UnsupportedOperationException` for a key that has no rotation: only symmetric encryption
/// keys rotate, automatic rotation only with material KMS made, and only on a primary key.
fn refuse_unrotatable(record: &KeyRecord, arn: &str, automatic: bool) -> Result<(), KmsError> {
    if !record.is_symmetric_encryption() {
        return Err(KmsError::UnsupportedOperation(format!(
            "{arn} key spec is {} which is not valid for this operation.",
            record.key_spec
        )));
    }
    if automatic && record.origin != "AWS_KMS" {
        return Err(KmsError::UnsupportedOperation(format!(
            "{arn} origin is {} which is not valid for this operation.",
            record.origin
        )));
    }
    if record.is_replica() {
        return Err(KmsError::UnsupportedOperation(format!(
            "{arn} is a multi-Region replica key. Rotation is set and done on its primary key in {}.",
            record.primary_region.as_deref().unwrap_or_default()
        )));
    }
    Ok(())
}

/// The key-state rule of the rotation changes: DisabledException for a disabled key,
/// KMSInvalidStateException for any other state but Enabled.
fn require_rotatable_state(record: &KeyRecord, arn: &str) -> Result<(), KmsError> {
    match record.state {
        KeyState::Enabled => Ok(()),
        KeyState::Disabled => Err(KmsError::Disabled(format!("{arn} is disabled."))),
        other => Err(invalid_state(arn, other)),
    }
}

impl Kms {
    pub async fn enable_key_rotation(
        &self,
        caller: &Caller,
        req: EnableKeyRotationRequest,
    ) -> Result<Empty, KmsError> {
        let mut v = Violations::new();
        check_key_id(&mut v, "KeyId", &req.key_id);
        v.range(
            "RotationPeriodInDays",
            req.rotation_period_in_days,
            90,
            2560,
        );
        v.finish()?;
        let period = req
            .rotation_period_in_days
            .unwrap_or(DEFAULT_ROTATION_PERIOD_DAYS);
        let now = self.clock.now();
        self.write_key(
            caller,
            req.key_id.as_deref().unwrap_or_default(),
            &Access::with(
                "EnableKeyRotation",
                Facts {
                    rotation_period_days: Some(period),
                    ..Facts::default()
                },
            ),
            |r, arn| {
                refuse_unrotatable(r, arn, true)?;
                require_rotatable_state(r, arn)?;
                // Enabling (again) starts the period now; so does changing the period.
                let unchanged = r.rotation.as_ref().is_some_and(|s| s.period_days == period);
                if !unchanged {
                    r.rotation = Some(RotationSchedule::starting(now, period));
                }
                Ok(())
            },
        )
        .await?;
        Ok(Empty {})
    }

    pub async fn disable_key_rotation(
        &self,
        caller: &Caller,
        req: KeyIdRequest,
    ) -> Result<Empty, KmsError> {
        let mut v = Violations::new();
        check_key_id(&mut v, "KeyId", &req.key_id);
        v.finish()?;
        self.write_key(
            caller,
            req.key_id.as_deref().unwrap_or_default(),
            &Access::new("DisableKeyRotation"),
            |r, arn| {
                refuse_unrotatable(r, arn, true)?;
                require_rotatable_state(r, arn)?;
                r.rotation = None;
                Ok(())
            },
        )
        .await?;
        Ok(Empty {})
    }

    pub async fn get_key_rotation_status(
        &self,
        caller: &Caller,
        req: GetKeyRotationStatusRequest,
    ) -> Result<GetKeyRotationStatusResponse, KmsError> {
        let key = self.key_of_request(caller, &req.key_id, "GetKeyRotationStatus")?;
        let r = &key.record;
        if !r.is_symmetric_encryption() || r.origin != "AWS_KMS" {
            refuse_unrotatable(r, &key.arn, true)?;
        }
        // A replica shows its primary's rotation; a key pending deletion shows none.
        let primary = if r.is_replica() {
            self.related_keys(r)
                .into_iter()
                .find(|k| !k.record.is_replica())
        } else {
            None
        };
        let settings = primary.as_ref().map_or(r, |p| &p.record);
        let schedule = settings
            .rotation
            .as_ref()
            .filter(|_| r.state != KeyState::PendingDeletion);
        Ok(GetKeyRotationStatusResponse {
            key_rotation_enabled: Some(schedule.is_some()),
            key_id: Some(key.arn.clone()),
            rotation_period_in_days: schedule.map(|s| s.period_days),
            next_rotation_date: schedule.map(|s| s.next),
            on_demand_rotation_start_date: settings.on_demand_rotation_start,
        })
    }

    pub async fn rotate_key_on_demand(
        &self,
        caller: &Caller,
        req: KeyIdRequest,
    ) -> Result<RotateKeyOnDemandResponse, KmsError> {
        let mut v = Violations::new();
        check_key_id(&mut v, "KeyId", &req.key_id);
        v.finish()?;
        let now = self.clock.now();
        let (_, key) = self
            .write_key(
                caller,
                req.key_id.as_deref().unwrap_or_default(),
                &Access::new("RotateKeyOnDemand"),
                |r, arn| {
                    // AWS checks the state before the spec, and refuses a spec that does not
                    // rotate with an empty message.
                    require_rotatable_state(r, arn)?;
                    if !r.is_symmetric_encryption() {
                        return Err(KmsError::UnsupportedOperation(String::new()));
                    }
                    refuse_unrotatable(r, arn, false)?;
                    if r.on_demand_rotation_start.is_some()
                        || r.rotation.as_ref().is_some_and(|s| {
                            s.next - now <= AUTOMATIC_ROTATION_GUARD_SECS
                        })
                    {
                        return Err(KmsError::Conflict(format!(
                            "{arn} cannot be rotated now: a rotation of this key is in progress or an automatic rotation is scheduled to begin within the next 20 minutes."
                        )));
                    }
                    if r.origin == "EXTERNAL" && !r.materials.iter().any(|m| m.pending_rotation) {
                        return Err(KmsError::InvalidState(format!(
                            "No available key material pending rotation for the key: {arn}."
                        )));
                    }
                    if r.on_demand_rotations >= MAX_ON_DEMAND_ROTATIONS {
                        return Err(KmsError::LimitExceeded(format!(
                            "The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be performed for this key: {arn}"
                        )));
                    }
                    r.on_demand_rotation_start = Some(round_ms(now));
                    r.on_demand_rotations += 1;
                    Ok(())
                },
            )
            .await?;
        // The rotation itself is background work, as in AWS: start it now.
        self.wake.notify_one();
        Ok(RotateKeyOnDemandResponse {
            key_id: Some(key.arn.clone()),
        })
    }

    pub async fn list_key_rotations(
        &self,
        caller: &Caller,
        req: ListKeyRotationsRequest,
    ) -> Result<ListKeyRotationsResponse, KmsError> {
        let mut v = Violations::new();
        check_key_id(&mut v, "KeyId", &req.key_id);
        v.one_of(
            "IncludeKeyMaterial",
            req.include_key_material.as_deref(),
            &["ALL_KEY_MATERIAL", "ROTATIONS_ONLY"],
        );
        check_paging(&mut v, req.limit, &req.marker, 1000);
        v.finish()?;
        let key = self.resolve_key(
            caller,
            req.key_id.as_deref().unwrap_or_default(),
            &Access::new("ListKeyRotations"),
        )?;
        let r = &key.record;
        refuse_unrotatable(r, &key.arn, false).or_else(|e| {
            // A replica lists the materials it shares with its primary.
            if r.is_replica() { Ok(()) } else { Err(e) }
        })?;
        let all = req.include_key_material.as_deref() == Some("ALL_KEY_MATERIAL");
        let external = r.origin == "EXTERNAL";
        let entries: Vec<(String, RotationsListEntry)> = r
            .materials
            .iter()
            .enumerate()
            .filter(|(_, m)| all || m.rotation.is_some())
            .map(|(i, m)| {
                let state = if r.current_material.as_deref() == Some(m.id.as_str()) {
                    "CURRENT"
                } else if m.pending_rotation {
                    "PENDING_ROTATION"
                } else {
                    "NON_CURRENT"
                };
                let import = m.import.as_ref().filter(|_| external);
                let entry = RotationsListEntry {
                    key_id: Some(r.key_id.clone()),
                    key_material_id: Some(m.id.clone()),
                    key_material_description: import.and_then(|i| i.description.clone()),
                    import_state: import.map(|i| {
                        if i.imported {
                            "IMPORTED"
                        } else {
                            "PENDING_IMPORT"
                        }
                        .to_string()
                    }),
                    key_material_state: Some(state.to_string()),
                    expiration_model: import.map(|i| i.expiration_model.clone()),
                    valid_to: import.and_then(|i| i.valid_to),
                    rotation_date: m.rotation.map(|(_, at)| at),
                    rotation_type: m.rotation.map(|(t, _)| t.as_str().to_string()),
                };
                (format!("{i:08}"), entry)
            })
            .collect();
        let (page_entries, next_marker) = page(
            entries,
            |(pos, _)| pos.as_str(),
            &req.marker,
            req.limit.unwrap_or(100) as usize,
        )?;
        Ok(ListKeyRotationsResponse {
            rotations: page_entries.into_iter().map(|(_, e)| e).collect(),
            truncated: next_marker.is_some(),
            next_marker,
        })
    }
}
