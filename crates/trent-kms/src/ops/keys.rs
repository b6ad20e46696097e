//! CreateKey, DescribeKey, ListKeys, UpdateKeyDescription, EnableKey, DisableKey,
//! ScheduleKeyDeletion, CancelKeyDeletion.

use super::*;
use crate::api::*;
use crate::ids::{self, Caller};
use crate::keyspec::{self, KeyKind};
use crate::model::{KeyRecord, KeyState};
use crate::policy;
use crate::service::Kms;
use crate::validate::Violations;
use trent_crypto::KeyMaterial;

const SECONDS_PER_DAY: f64 = 86_400.0;

impl Kms {
    pub async fn create_key(
        &self,
        caller: &Caller,
        req: CreateKeyRequest,
    ) -> Result<CreateKeyResponse, KmsError> {
        let mut v = Violations::new();
        v.str_len("Policy", req.policy.as_deref(), 1, 131_072)
            .str_len("Description", req.description.as_deref(), 0, 8192)
            .one_of_listed("KeyUsage", req.key_usage.as_deref(), KEY_USAGES, KEY_USAGES)
            .one_of(
                "CustomerMasterKeySpec",
                req.customer_master_key_spec.as_deref(),
                CUSTOMER_MASTER_KEY_SPECS,
            )
            .one_of("KeySpec", req.key_spec.as_deref(), KEY_SPECS)
            .one_of("Origin", req.origin.as_deref(), ORIGINS)
            .str_len(
                "CustomKeyStoreId",
                req.custom_key_store_id.as_deref(),
                1,
                64,
            )
            .str_len("XksKeyId", req.xks_key_id.as_deref(), 1, 128);
        super::tags::check_tag_shapes(&mut v, &req.tags);
        v.finish()?;

        if req.key_spec.is_some() && req.customer_master_key_spec.is_some() {
            return Err(KmsError::Validation(
                "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec is deprecated.".into(),
            ));
        }
        let spec = req
            .key_spec
            .or(req.customer_master_key_spec)
            .unwrap_or_else(|| "SYMMETRIC_DEFAULT".into());
        if spec == "SM2" {
            return Err(KmsError::Validation(
                "KeySpec SM2 is only available in the China Regions.".into(),
            ));
        }
        let usage = match req.key_usage {
            Some(u) => u,
            None if spec == "SYMMETRIC_DEFAULT" => keyspec::ENCRYPT_DECRYPT.into(),
            None => {
                return Err(KmsError::Validation(
                    "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.".into(),
                ));
            }
        };
        if !keyspec::usages(&spec).contains(&usage.as_str()) {
            return Err(KmsError::Validation(format!(
                "KeyUsage {usage} is not compatible with KeySpec {spec}"
            )));
        }
        let origin = req.origin.unwrap_or_else(|| "AWS_KMS".into());
        let multi_region = req.multi_region == Some(true);
        let external = origin == "EXTERNAL";
        let key_id = if multi_region {
            ids::new_multi_region_key_id()?
        } else {
            ids::new_key_id()?
        };
        let request_tags = req.tags.as_deref().filter(|t| !t.is_empty());
        let facts = Facts {
            key_spec: Some(&spec),
            key_usage: Some(&usage),
            key_origin: Some(&origin),
            multi_region: Some(req.multi_region.unwrap_or(false)),
            bypass_lockout: req.bypass_policy_lockout_safety_check,
            request_tags,
            ..Facts::default()
        };
        self.authorize_identity(caller, &Access::with("CreateKey", facts), "*")?;
        if request_tags.is_some() {
            // Tags given to CreateKey need kms:TagResource too.
            self.authorize_identity(
                caller,
                &Access::with("TagResource", facts),
                &caller.key_arn(&key_id),
            )?;
        }
        if let Some(id) = req.custom_key_store_id {
            return Err(custom_key_store_not_found(&id));
        }
        if origin != "AWS_KMS" && origin != "EXTERNAL" {
            return Err(KmsError::UnsupportedOperation(format!(
                "Origin {origin} needs a custom key store, which trent does not offer."
            )));
        }
        if origin == "EXTERNAL" && spec.starts_with("ML_") {
            return Err(KmsError::UnsupportedOperation(format!(
                "KeySpec {spec} is not supported with Origin EXTERNAL."
            )));
        }
        let given_policy = req.policy.as_deref().map(policy::parse).transpose()?;
        let tags = super::tags::merge_tags(&[], req.tags.as_deref().unwrap_or_default())?;

        let record = KeyRecord {
            key_id,
            account: caller.account.clone(),
            region: caller.region.clone(),
            creation_date: self.clock.now(),
            description: req.description.unwrap_or_default(),
            key_usage: usage,
            key_spec: spec,
            origin,
            key_manager: "CUSTOMER".into(),
            state: if external {
                KeyState::PendingImport
            } else {
                KeyState::Enabled
            },
            deletion_date: None,
            pending_window_days: None,
            policy: req
                .policy
                .unwrap_or_else(|| policy::default_policy(&caller.account)),
            tags,
            current_material: None,
            multi_region,
            materials: Vec::new(),
            rotation: None,
            on_demand_rotation_start: None,
            on_demand_rotations: 0,
            primary_region: multi_region.then(|| caller.region.clone()),
        };
        if let Some(given) = &given_policy
            && req.bypass_policy_lockout_safety_check != Some(true)
        {
            self.check_lockout(caller, given, &record)?;
        }
        if record.origin == "EXTERNAL" {
            // No material until ImportKeyMaterial brings it.
            let key = self.insert_key_without_material(record).await?;
            return Ok(CreateKeyResponse {
                key_metadata: Some(self.key_metadata(&key)),
            });
        }
        let material = match keyspec::kind(&record.key_spec) {
            Some(KeyKind::Asymmetric(a)) => KeyMaterial::from_bytes(self.keypool.take(a).await?),
            Some(KeyKind::Hmac(m)) => KeyMaterial::from_bytes(m.generate()?),
            _ => KeyMaterial::generate_symmetric()?,
        };
        let key = self.insert_key_with(record, material).await?;
        Ok(CreateKeyResponse {
            key_metadata: Some(self.key_metadata(&key)),
        })
    }

    pub async fn describe_key(
        &self,
        caller: &Caller,
        req: DescribeKeyRequest,
    ) -> Result<DescribeKeyResponse, KmsError> {
        let mut v = Violations::new();
        check_key_id(&mut v, "KeyId", &req.key_id);
        check_grant_tokens(&mut v, &req.grant_tokens);
        v.finish()?;
        let access = Access::new("DescribeKey");
        let key = self
            .key_for_use(caller, &req.grant_tokens, &req.key_id, &access)
            .await?;
        Ok(DescribeKeyResponse {
            key_metadata: Some(self.key_metadata(&key)),
        })
    }

    pub async fn list_keys(
        &self,
        caller: &Caller,
        req: ListKeysRequest,
    ) -> Result<ListKeysResponse, KmsError> {
        let mut v = Violations::new();
        check_paging(&mut v, req.limit, &req.marker, 1000);
        v.finish()?;
        self.authorize_identity(caller, &Access::new("ListKeys"), "*")?;
        let mut keys: Vec<KeyListEntry> = self
            .view
            .read()
            .scope(&caller.account, &caller.region)
            .map(|s| {
                s.keys
                    .values()
                    .map(|k| KeyListEntry {
                        key_id: k.record.key_id.clone(),
                        key_arn: k.arn.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        keys.sort_by(|a, b| a.key_id.cmp(&b.key_id));
        let (keys, next_marker) = page(
            keys,
            |k| &k.key_id,
            &req.marker,
            req.limit.unwrap_or(100) as usize,
        )?;
        Ok(ListKeysResponse {
            keys,
            truncated: next_marker.is_some(),
            next_marker,
        })
    }

    pub async fn update_key_description(
        &self,
        caller: &Caller,
        req: UpdateKeyDescriptionRequest,
    ) -> Result<Empty, KmsError> {
        let mut v = Violations::new();
        check_key_id(&mut v, "KeyId", &req.key_id);
        v.required("Description", &req.description).str_len(
            "Description",
            req.description.as_deref(),
            0,
            8192,
        );
        v.finish()?;
        let description = req.description.unwrap_or_default();
        self.write_key(
            caller,
            req.key_id.as_deref().unwrap_or_default(),
            &Access::new("UpdateKeyDescription"),
            |r, arn| {
                refuse_pending_deletion(r.state, arn)?;
                r.description = description;
                Ok(())
            },
        )
        .await?;
        Ok(Empty {})
    }

    async fn set_enabled(
        &self,
        caller: &Caller,
        req: KeyIdRequest,
        enable: bool,
    ) -> Result<Empty, KmsError> {
        let mut v = Violations::new();
        check_key_id(&mut v, "KeyId", &req.key_id);
        v.finish()?;
        let action = if enable { "EnableKey" } else { "DisableKey" };
        self.write_key(
            caller,
            req.key_id.as_deref().unwrap_or_default(),
            &Access::new(action),
            |r, arn| match r.state {
                KeyState::Enabled | KeyState::Disabled => {
                    r.state = if enable {
                        KeyState::Enabled
                    } else {
                        KeyState::Disabled
                    };
                    Ok(())
                }
                other => Err(invalid_state(arn, other)),
            },
        )
        .await?;
        Ok(Empty {})
    }

    pub async fn enable_key(&self, caller: &Caller, req: KeyIdRequest) -> Result<Empty, KmsError> {
        self.set_enabled(caller, req, true).await
    }

    pub async fn disable_key(&self, caller: &Caller, req: KeyIdRequest) -> Result<Empty, KmsError> {
        self.set_enabled(caller, req, false).await
    }

    pub async fn schedule_key_deletion(
        &self,
        caller: &Caller,
        req: ScheduleKeyDeletionRequest,
    ) -> Result<ScheduleKeyDeletionResponse, KmsError> {
        let mut v = Violations::new();
        check_key_id(&mut v, "KeyId", &req.key_id);
        v.range("PendingWindowInDays", req.pending_window_in_days, 7, 30);
        v.finish()?;
        let days = req.pending_window_in_days.unwrap_or(30);
        let deletion_date =
            ((self.clock.now() + days as f64 * SECONDS_PER_DAY) * 1000.0).round() / 1000.0;
        let (_, key) = self
            .write_key(
                caller,
                req.key_id.as_deref().unwrap_or_default(),
                &Access::with(
                    "ScheduleKeyDeletion",
                    Facts {
                        pending_window_days: Some(days),
                        ..Facts::default()
                    },
                ),
                |r, arn| {
                    refuse_pending_deletion(r.state, arn)?;
                    if r.state == KeyState::PendingReplicaDeletion {
                        return Err(invalid_state(arn, r.state));
                    }
                    // A multi-Region primary with replicas waits for them to be deleted; its
                    // own window starts then (scheduled work). Read under the writer lock that
                    // write_key holds, so no replica is made meanwhile.
                    if self.replicas_of(r).is_empty() {
                        r.state = KeyState::PendingDeletion;
                        r.deletion_date = Some(deletion_date);
                    } else {
                        r.state = KeyState::PendingReplicaDeletion;
                        r.deletion_date = None;
                    }
                    r.pending_window_days = Some(days);
                    Ok(())
                },
            )
            .await?;
        Ok(ScheduleKeyDeletionResponse {
            key_id: Some(key.arn.clone()),
            // "If the KMS key is a multi-Region primary key with replica keys, this field does
            // not appear."
            deletion_date: key.record.deletion_date,
            key_state: Some(key.record.state.as_str().into()),
            pending_window_in_days: Some(days),
        })
    }

    pub async fn cancel_key_deletion(
        &self,
        caller: &Caller,
        req: KeyIdRequest,
    ) -> Result<CancelKeyDeletionResponse, KmsError> {
        let mut v = Violations::new();
        check_key_id(&mut v, "KeyId", &req.key_id);
        v.finish()?;
        let (_, key) = self
            .write_key(
                caller,
                req.key_id.as_deref().unwrap_or_default(),
                &Access::new("CancelKeyDeletion"),
                |r, arn| {
                    // PendingReplicaDeletion can be cancelled too, to Disabled as from
                    // PendingDeletion (AWS does not say: unconfirmed).
                    if !matches!(
                        r.state,
                        KeyState::PendingDeletion | KeyState::PendingReplicaDeletion
                    ) {
                        return Err(KmsError::InvalidState(format!(
                            "{arn} is not pending deletion."
                        )));
                    }
                    r.state = KeyState::Disabled;
                    r.deletion_date = None;
                    r.pending_window_days = None;
                    Ok(())
                },
            )
            .await?;
        Ok(CancelKeyDeletionResponse {
            key_id: Some(key.arn.clone()),
        })
    }
}
