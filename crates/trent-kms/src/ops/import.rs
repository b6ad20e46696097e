//! GetParametersForImport, ImportKeyMaterial, DeleteImportedKeyMaterial: keys of origin
//! EXTERNAL, whose material the customer brings.
//!
//! The import token is self-contained: the wrapping private key, the key it is for, the
//! wrapping algorithm and its expiry, sealed under the root key. Nothing is stored until the
//! material arrives, and a token is only good for its own key until it expires.

use super::*;
use crate::api::*;
use crate::ids::Caller;
use crate::keyspec::{self, KeyKind};
use crate::lifecycle::{SECONDS_PER_DAY, round_ms};
use crate::model::{ImportInfo, KeyState, MaterialInfo};
use crate::service::{CachedKey, KeyChange, Kms, Material};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use trent_crypto::import::{WrappingAlgorithm, unwrap_key_material};
use trent_crypto::{AsymmetricSpec, KeyMaterial, MaterialId, PrivateKey};
use trent_store::{Transaction, Write};
use zeroize::Zeroizing;

const IMPORT_TOKEN_AAD: &[u8] = b"trent/v1/import-token";
/// How long a public key and import token are good for.
const PARAMETERS_VALID_SECS: f64 = SECONDS_PER_DAY;
/// How far ahead ValidTo may be.
const MAX_VALID_DAYS: f64 = 365.0;
const EXPIRES: &str = "KEY_MATERIAL_EXPIRES";
const DOES_NOT_EXPIRE: &str = "KEY_MATERIAL_DOES_NOT_EXPIRE";
const NEW_KEY_MATERIAL: &str = "NEW_KEY_MATERIAL";
const EXISTING_KEY_MATERIAL: &str = "EXISTING_KEY_MATERIAL";

/// What an import token carries, sealed under the root key.
#[derive(Serialize, Deserialize)]
struct TokenBody {
    key_arn: String,
    algorithm: String,
    wrapping_key_spec: String,
    valid_to: f64,
    /// The wrapping private key, PKCS#8 DER, hex.
    wrapping_key: String,
}

impl Drop for TokenBody {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.wrapping_key);
    }
}

/// `UnsupportedOperationException` for a key whose material is not imported.
fn require_external(key: &CachedKey) -> Result<(), KmsError> {
    if key.record.origin != "EXTERNAL" {
        return Err(KmsError::UnsupportedOperation(format!(
            "{} origin is {} which is not valid for this operation.",
            key.arn, key.record.origin
        )));
    }
    Ok(())
}

/// Imports are refused only for keys pending deletion (and replicas still being created).
fn require_importable_state(key: &CachedKey) -> Result<(), KmsError> {
    match key.record.state {
        KeyState::Enabled | KeyState::Disabled | KeyState::PendingImport => Ok(()),
        other => Err(invalid_state(&key.arn, other)),
    }
}

fn wrapping_spec(name: &str) -> Option<AsymmetricSpec> {
    match name {
        "RSA_2048" => Some(AsymmetricSpec::Rsa2048),
        "RSA_3072" => Some(AsymmetricSpec::Rsa3072),
        "RSA_4096" => Some(AsymmetricSpec::Rsa4096),
        _ => None,
    }
}

/// The id of imported material: derived from the key id and the material, as AWS does, so that
/// importing the same material again finds the same id (and old ciphertexts decrypt again).
/// An HMAC keyed by the material reveals nothing about it.
fn imported_material_id(key_id: &str, material: &[u8]) -> MaterialId {
    MaterialId(trent_crypto::primitives::hmac_sha256(
        material,
        format!("trent/v1/imported-material-id|{key_id}").as_bytes(),
    ))
}

/// KeyMaterialId: 64 lowercase hex digits.
fn check_key_material_id(v: &mut Violations, id: &Option<String>) {
    v.str_len("KeyMaterialId", id.as_deref(), 64, 64).pattern(
        "KeyMaterialId",
        id.as_deref(),
        |s| s.chars().all(|c| matches!(c, 'a'..='f' | '0'..='9')),
        "^[a-f0-9]+$",
    );
}

fn incorrect_material(message: &str) -> KmsError {
    KmsError::IncorrectKeyMaterial(message.to_string())
}

impl Kms {
    pub async fn get_parameters_for_import(
        &self,
        caller: &Caller,
        req: GetParametersForImportRequest,
    ) -> Result<GetParametersForImportResponse, KmsError> {
        let mut v = Violations::new();
        check_key_id(&mut v, "KeyId", &req.key_id);
        v.required("WrappingAlgorithm", &req.wrapping_algorithm)
            .one_of(
                "WrappingAlgorithm",
                req.wrapping_algorithm.as_deref(),
                &[
                    "RSAES_PKCS1_V1_5",
                    "RSAES_OAEP_SHA_1",
                    "RSAES_OAEP_SHA_256",
                    "RSA_AES_KEY_WRAP_SHA_1",
                    "RSA_AES_KEY_WRAP_SHA_256",
                    "SM2PKE",
                ],
            )
            .required("WrappingKeySpec", &req.wrapping_key_spec)
            .one_of(
                "WrappingKeySpec",
                req.wrapping_key_spec.as_deref(),
                &["RSA_2048", "RSA_3072", "RSA_4096", "SM2"],
            );
        v.finish()?;
        let algorithm_name = req.wrapping_algorithm.unwrap_or_default();
        let spec_name = req.wrapping_key_spec.unwrap_or_default();
        let key = self.resolve_key(
            caller,
            req.key_id.as_deref().unwrap_or_default(),
            &Access::with(
                "GetParametersForImport",
                Facts {
                    wrapping_algorithm: Some(&algorithm_name),
                    wrapping_key_spec: Some(&spec_name),
                    ..Facts::default()
                },
            ),
        )?;
        require_external(&key)?;
        require_importable_state(&key)?;
        let algorithm = WrappingAlgorithm::from_name(&algorithm_name).ok_or_else(|| {
            KmsError::Validation(format!(
                "WrappingAlgorithm {algorithm_name} is not supported. Use RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, RSA_AES_KEY_WRAP_SHA_1 or RSA_AES_KEY_WRAP_SHA_256."
            ))
        })?;
        let spec = wrapping_spec(&spec_name).ok_or_else(|| {
            KmsError::Validation(format!(
                "WrappingKeySpec {spec_name} is only available in the China Regions."
            ))
        })?;
        if key.record.key_spec.starts_with("RSA_") && !algorithm.is_key_wrap() {
            return Err(KmsError::Validation(format!(
                "WrappingAlgorithm {algorithm_name} cannot wrap key material of key spec {}. Use RSA_AES_KEY_WRAP_SHA_1 or RSA_AES_KEY_WRAP_SHA_256.",
                key.record.key_spec
            )));
        }
        let pkcs8 = self.keypool.take(spec).await?;
        let public_key = trent_crypto::asymmetric::public_key_der(spec, &pkcs8)?;
        let valid_to = round_ms(self.clock.now() + PARAMETERS_VALID_SECS);
        let body = TokenBody {
            key_arn: key.arn.clone(),
            algorithm: algorithm_name,
            wrapping_key_spec: spec_name,
            valid_to,
            wrapping_key: hex::encode(&pkcs8[..]),
        };
        let plain = Zeroizing::new(
            serde_json::to_vec(&body).map_err(|e| KmsError::Internal(e.to_string()))?,
        );
        let token = self.root.wrap(IMPORT_TOKEN_AAD, &plain)?;
        Ok(GetParametersForImportResponse {
            key_id: Some(key.arn.clone()),
            import_token: Some(Blob::new(token)),
            public_key: Some(Blob::new(public_key)),
            parameters_valid_to: Some(valid_to),
        })
    }

    /// The wrapping key and algorithm an import token holds, if it is this key's and current.
    fn open_import_token(
        &self,
        key: &CachedKey,
        token: &[u8],
    ) -> Result<(PrivateKey, WrappingAlgorithm), KmsError> {
        let invalid = || {
            KmsError::InvalidImportToken(
                "The import token is invalid or belongs to another KMS key.".into(),
            )
        };
        let plain = self
            .root
            .unwrap(IMPORT_TOKEN_AAD, token)
            .map_err(|_| invalid())?;
        let body: TokenBody = serde_json::from_slice(&plain).map_err(|_| invalid())?;
        if body.key_arn != key.arn {
            return Err(invalid());
        }
        if self.clock.now() > body.valid_to {
            return Err(KmsError::ExpiredImportToken(
                "The import token has expired. Use GetParametersForImport to get a new import token and public key.".into(),
            ));
        }
        let spec = wrapping_spec(&body.wrapping_key_spec).ok_or_else(invalid)?;
        let algorithm = WrappingAlgorithm::from_name(&body.algorithm).ok_or_else(invalid)?;
        let der = Zeroizing::new(hex::decode(&body.wrapping_key).map_err(|_| invalid())?);
        let private = PrivateKey::from_pkcs8(spec, &der).map_err(|_| invalid())?;
        Ok((private, algorithm))
    }

    pub async fn import_key_material(
        &self,
        caller: &Caller,
        req: ImportKeyMaterialRequest,
    ) -> Result<ImportKeyMaterialResponse, KmsError> {
        let mut v = Violations::new();
        check_key_id(&mut v, "KeyId", &req.key_id);
        v.required("ImportToken", &req.import_token)
            .blob_len(
                "ImportToken",
                req.import_token.as_ref().map(Blob::as_slice),
                1,
                6144,
            )
            .required("EncryptedKeyMaterial", &req.encrypted_key_material)
            .blob_len(
                "EncryptedKeyMaterial",
                req.encrypted_key_material.as_ref().map(Blob::as_slice),
                1,
                6144,
            )
            .one_of(
                "ExpirationModel",
                req.expiration_model.as_deref(),
                &[EXPIRES, DOES_NOT_EXPIRE],
            )
            .one_of(
                "ImportType",
                req.import_type.as_deref(),
                &[NEW_KEY_MATERIAL, EXISTING_KEY_MATERIAL],
            )
            .str_len(
                "KeyMaterialDescription",
                req.key_material_description.as_deref(),
                0,
                256,
            )
            .pattern(
                "KeyMaterialDescription",
                req.key_material_description.as_deref(),
                |s| {
                    !s.is_empty()
                        && s.chars().all(|c| {
                            c.is_ascii_alphanumeric() || c.is_whitespace() || ":/_.-".contains(c)
                        })
                },
                "^[a-zA-Z0-9:/_\\s.-]+$",
            );
        check_key_material_id(&mut v, &req.key_material_id);
        v.finish()?;
        let model = req.expiration_model.as_deref().unwrap_or(EXPIRES);
        let now = self.clock.now();
        let valid_to = req.valid_to.map(round_ms);
        match (model, valid_to) {
            (EXPIRES, None) => {
                return Err(KmsError::Validation(
                    "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES"
                        .into(),
                ));
            }
            (DOES_NOT_EXPIRE, Some(_)) => {
                return Err(KmsError::Validation(
                    "A validTo date must not be set if the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE".into(),
                ));
            }
            (_, Some(t)) if t <= now => {
                return Err(KmsError::Validation(
                    "The validTo date must be in the future.".into(),
                ));
            }
            (_, Some(t)) if t > now + MAX_VALID_DAYS * SECONDS_PER_DAY => {
                return Err(KmsError::Validation(
                    "The validTo date must be no more than 365 days from now.".into(),
                ));
            }
            _ => {}
        }
        let facts = Facts {
            expiration_model: Some(model),
            valid_to: valid_to.map(|t| t as i64),
            ..Facts::default()
        };
        let _guard = self.writer.lock().await;
        let key = self.resolve_key(
            caller,
            req.key_id.as_deref().unwrap_or_default(),
            &Access::with("ImportKeyMaterial", facts),
        )?;
        require_external(&key)?;
        require_importable_state(&key)?;
        let (wrapping_key, algorithm) = self.open_import_token(
            &key,
            req.import_token
                .as_ref()
                .map(Blob::as_slice)
                .unwrap_or_default(),
        )?;
        let plain = unwrap_key_material(
            &wrapping_key,
            algorithm,
            req.encrypted_key_material
                .as_ref()
                .map(Blob::as_slice)
                .unwrap_or_default(),
        )?;
        let record = &key.record;
        let symmetric = record.is_symmetric_encryption();
        let id = imported_material_id(&record.key_id, &plain);
        let id_hex = id.to_hex();
        let material = KeyMaterial::from_bytes(plain);
        let loaded = match keyspec::kind(&record.key_spec) {
            Some(KeyKind::Symmetric) if material.expose().len() != KeyMaterial::SYMMETRIC_LEN => {
                None
            }
            _ => Material::load(&record.key_spec, id, &material).ok(),
        }
        .ok_or_else(|| {
            incorrect_material(&format!(
                "The key material is not valid for a key of spec {}.",
                record.key_spec
            ))
        })?;
        let existing = record.materials.iter().position(|m| m.id == id_hex);
        let import_type = req
            .import_type
            .as_deref()
            .unwrap_or(if record.materials.is_empty() {
                NEW_KEY_MATERIAL
            } else {
                EXISTING_KEY_MATERIAL
            });
        if !symmetric
            && req.import_type.is_some()
            && import_type == NEW_KEY_MATERIAL
            && !record.materials.is_empty()
        {
            return Err(incorrect_material(
                "The key material of an asymmetric or HMAC key cannot be changed after the first import.",
            ));
        }
        if import_type == NEW_KEY_MATERIAL && req.key_material_id.is_some() {
            return Err(KmsError::Validation(
                "You cannot specify a key material ID with ImportType set to NEW_KEY_MATERIAL."
                    .into(),
            ));
        }
        let mut record = record.clone();
        let import = ImportInfo {
            imported: true,
            expiration_model: model.to_string(),
            valid_to,
            description: None,
        };
        match (import_type, existing) {
            (NEW_KEY_MATERIAL, Some(_)) => {
                return Err(incorrect_material(
                    "This key material is already associated with the KMS key. Import it with ImportType EXISTING_KEY_MATERIAL.",
                ));
            }
            (NEW_KEY_MATERIAL, None) => {
                if !symmetric && !record.materials.is_empty() {
                    return Err(incorrect_material(
                        "The key material is not the key material previously imported into this KMS key.",
                    ));
                }
                // One new material waits for an on-demand rotation at a time (AWS's words).
                if let Some(pending) = record.materials.iter().find(|m| m.pending_rotation) {
                    return Err(KmsError::InvalidState(format!(
                        "New key material (id: {id_hex}) cannot be imported into KMS key {}, because another key material (id: {}) is pending rotation.",
                        key.arn, pending.id
                    )));
                }
                let first = record.materials.is_empty();
                record.materials.push(MaterialInfo {
                    id: id_hex.clone(),
                    created: round_ms(now),
                    rotation: None,
                    import: Some(ImportInfo {
                        description: req.key_material_description.clone(),
                        ..import
                    }),
                    pending_rotation: !first,
                });
                if first {
                    record.current_material = Some(id_hex.clone());
                }
            }
            (_, None) => {
                return Err(incorrect_material(
                    "The key material is not the key material previously imported into this KMS key.",
                ));
            }
            (_, Some(i)) => {
                if req.key_material_id.as_deref().is_some_and(|m| m != id_hex) {
                    return Err(incorrect_material(
                        "The key material does not match the specified KeyMaterialId.",
                    ));
                }
                let info = &mut record.materials[i];
                let description = req
                    .key_material_description
                    .clone()
                    .or_else(|| info.import.as_ref().and_then(|i| i.description.clone()));
                info.import = Some(ImportInfo {
                    description,
                    ..import
                });
            }
        }
        // Enabled again once every material of the key is present.
        if record.state == KeyState::PendingImport && record.materials.iter().all(|m| m.present()) {
            record.state = KeyState::Enabled;
        }
        let mut tx = Transaction::new();
        let mut materials: HashMap<MaterialId, Arc<Material>> = (*key.materials).clone();
        if let std::collections::hash_map::Entry::Vacant(slot) = materials.entry(id) {
            if existing.is_some() {
                // Material the key lists but that is not loaded: deleted (its row is gone), or
                // stored in a row that does not unwrap (the key is unusable). The same id is the
                // same material, so its row is written anew, which repairs such a key.
                tx.writes.push(Write::DeleteMaterial {
                    scope: record.scope(),
                    key_id: record.key_id.clone(),
                    material_id: id_hex.clone(),
                });
            }
            tx.writes.push(Write::PutMaterial(
                self.wrap_material(&record, &id_hex, &material, now)?,
            ));
            slot.insert(Arc::new(loaded));
        }
        self.commit_keys(
            vec![KeyChange::of(&key, record, Some(Arc::new(materials)))],
            tx,
        )
        .await?;
        Ok(ImportKeyMaterialResponse {
            key_id: Some(key.arn.clone()),
            key_material_id: Some(id_hex),
        })
    }

    pub async fn delete_imported_key_material(
        &self,
        caller: &Caller,
        req: DeleteImportedKeyMaterialRequest,
    ) -> Result<DeleteImportedKeyMaterialResponse, KmsError> {
        let mut v = Violations::new();
        check_key_id(&mut v, "KeyId", &req.key_id);
        check_key_material_id(&mut v, &req.key_material_id);
        v.finish()?;
        let _guard = self.writer.lock().await;
        let key = self.resolve_key(
            caller,
            req.key_id.as_deref().unwrap_or_default(),
            &Access::new("DeleteImportedKeyMaterial"),
        )?;
        require_external(&key)?;
        let target = match &req.key_material_id {
            Some(id) => id.clone(),
            None => key.record.current_material.clone().unwrap_or_default(),
        };
        let Some(info) = key.record.materials.iter().find(|m| m.id == target) else {
            if req.key_material_id.is_some() {
                return Err(KmsError::NotFound(format!(
                    "Key material {target} is not associated with {}.",
                    key.arn
                )));
            }
            // No material was ever imported: nothing to delete.
            return Ok(DeleteImportedKeyMaterialResponse {
                key_id: Some(key.arn.clone()),
                key_material_id: Some(String::new()),
            });
        };
        if info.pending_rotation {
            // Not yet part of the key: it goes entirely, and the key's state is unchanged.
            let mut record = key.record.clone();
            record.materials.retain(|m| m.id != target);
            let mut materials: HashMap<MaterialId, Arc<Material>> = (*key.materials).clone();
            if let Some(mid) = MaterialId::from_hex(&target) {
                materials.remove(&mid);
            }
            let tx = Transaction::new().push(Write::DeleteMaterial {
                scope: record.scope(),
                key_id: record.key_id.clone(),
                material_id: target.clone(),
            });
            self.commit_keys(
                vec![KeyChange::of(&key, record, Some(Arc::new(materials)))],
                tx,
            )
            .await?;
        } else if info.present() {
            self.delete_materials_locked(&key, std::slice::from_ref(&target))
                .await?;
        }
        Ok(DeleteImportedKeyMaterialResponse {
            key_id: Some(key.arn.clone()),
            key_material_id: Some(target),
        })
    }
}
