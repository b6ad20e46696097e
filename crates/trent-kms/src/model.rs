//! The key model: what a KMS key is, as stored (a JSON document owned by this crate) and as shown.

use crate::api::KeyMetadata;
use crate::ids;
use crate::keyspec;
use serde::{Deserialize, Serialize};

/// Key states, named as AWS names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyState {
    Creating,
    Enabled,
    Disabled,
    PendingDeletion,
    PendingImport,
    PendingReplicaDeletion,
    Unavailable,
    Updating,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Creating => "Creating",
            KeyState::Enabled => "Enabled",
            KeyState::Disabled => "Disabled",
            KeyState::PendingDeletion => "PendingDeletion",
            KeyState::PendingImport => "PendingImport",
            KeyState::PendingReplicaDeletion => "PendingReplicaDeletion",
            KeyState::Unavailable => "Unavailable",
            KeyState::Updating => "Updating",
        }
    }
}

/// How a material became current (ListKeyRotations' RotationType).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RotationType {
    #[serde(rename = "AUTOMATIC")]
    Automatic,
    #[serde(rename = "ON_DEMAND")]
    OnDemand,
}

impl RotationType {
    pub fn as_str(self) -> &'static str {
        match self {
            RotationType::Automatic => "AUTOMATIC",
            RotationType::OnDemand => "ON_DEMAND",
        }
    }
}

/// What an imported material carries besides its bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportInfo {
    /// False once the material was deleted or expired (PENDING_IMPORT): its id stays, so the
    /// same material can be imported again.
    pub imported: bool,
    /// `KEY_MATERIAL_EXPIRES` or `KEY_MATERIAL_DOES_NOT_EXPIRE`.
    pub expiration_model: String,
    #[serde(default)]
    pub valid_to: Option<f64>,
    #[serde(default)]
    pub description: Option<String>,
}

/// One key material of a key, as the record knows it (never the material itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaterialInfo {
    /// 64 lowercase hex characters.
    pub id: String,
    /// When it was made or first imported (epoch seconds).
    pub created: f64,
    /// How and when it became current; none for a key's first material.
    #[serde(default)]
    pub rotation: Option<(RotationType, f64)>,
    /// Imported material (keys of origin EXTERNAL).
    #[serde(default)]
    pub import: Option<ImportInfo>,
    /// Imported as NEW_KEY_MATERIAL and not yet made current by RotateKeyOnDemand.
    #[serde(default)]
    pub pending_rotation: bool,
}

impl MaterialInfo {
    /// Whether its bytes are present (not deleted or expired).
    pub fn present(&self) -> bool {
        self.import.as_ref().is_none_or(|i| i.imported)
    }
}

/// Automatic rotation, when enabled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RotationSchedule {
    pub period_days: i64,
    /// When the next automatic rotation is due (epoch seconds).
    pub next: f64,
}

impl RotationSchedule {
    /// A schedule of `period_days` whose first rotation is one period after `now`.
    pub fn starting(now: f64, period_days: i64) -> Self {
        RotationSchedule {
            period_days,
            next: crate::lifecycle::round_ms(
                now + period_days as f64 * crate::lifecycle::SECONDS_PER_DAY,
            ),
        }
    }
}

/// The stored document of a key. Versioned by the store, never holds plaintext material.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub key_id: String,
    pub account: String,
    pub region: String,
    pub creation_date: f64,
    pub description: String,
    pub key_usage: String,
    pub key_spec: String,
    pub origin: String,
    pub key_manager: String,
    pub state: KeyState,
    #[serde(default)]
    pub deletion_date: Option<f64>,
    #[serde(default)]
    pub pending_window_days: Option<i64>,
    pub policy: String,
    /// In the order they were first added.
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    /// Hex id of the material new ciphertexts use.
    #[serde(default)]
    pub current_material: Option<String>,
    #[serde(default)]
    pub multi_region: bool,
    /// Every material of the key, oldest first (current or not, present or not).
    #[serde(default)]
    pub materials: Vec<MaterialInfo>,
    #[serde(default)]
    pub rotation: Option<RotationSchedule>,
    /// When an on-demand rotation was asked for and not yet done.
    #[serde(default)]
    pub on_demand_rotation_start: Option<f64>,
    /// On-demand rotations done so far (AWS allows a limited number per key).
    #[serde(default)]
    pub on_demand_rotations: u32,
    /// Multi-Region keys: the region of the primary key of the set.
    #[serde(default)]
    pub primary_region: Option<String>,
}

impl KeyRecord {
    pub fn scope(&self) -> trent_store::Scope {
        trent_store::Scope {
            account: self.account.clone(),
            region: self.region.clone(),
        }
    }

    pub fn arn(&self) -> String {
        ids::key_arn(&self.region, &self.account, &self.key_id)
    }

    /// The algorithm lists of this key's spec and usage.
    pub fn algorithms(&self) -> keyspec::Algorithms {
        keyspec::algorithms(&self.key_spec, &self.key_usage)
    }

    /// A symmetric encryption key (SYMMETRIC_DEFAULT); HMAC keys, symmetric too, are not.
    pub fn is_symmetric_encryption(&self) -> bool {
        self.key_spec == "SYMMETRIC_DEFAULT"
    }

    /// The material new ciphertexts use, as the record knows it.
    pub fn current_info(&self) -> Option<&MaterialInfo> {
        let id = self.current_material.as_deref()?;
        self.materials.iter().find(|m| m.id == id)
    }

    /// A record written before materials were listed knows only its current material.
    pub fn fill_in_materials(&mut self) {
        if self.materials.is_empty()
            && let Some(id) = &self.current_material
        {
            self.materials.push(MaterialInfo {
                id: id.clone(),
                created: self.creation_date,
                rotation: None,
                import: None,
                pending_rotation: false,
            });
        }
    }

    /// A multi-Region key that is not the primary of its set.
    pub fn is_replica(&self) -> bool {
        self.primary_region
            .as_deref()
            .is_some_and(|p| p != self.region)
    }

    /// An AWS managed key (the key behind a predefined `alias/aws/<service>` alias).
    pub fn is_aws_managed(&self) -> bool {
        self.key_manager == crate::managed::AWS_KEY_MANAGER
    }

    pub fn metadata(&self) -> KeyMetadata {
        let algorithms = self.algorithms();
        KeyMetadata {
            aws_account_id: self.account.clone(),
            key_id: self.key_id.clone(),
            arn: self.arn(),
            creation_date: self.creation_date,
            enabled: self.state == KeyState::Enabled,
            description: self.description.clone(),
            key_usage: self.key_usage.clone(),
            key_state: self.state.as_str().to_string(),
            deletion_date: self.deletion_date,
            origin: self.origin.clone(),
            key_manager: self.key_manager.clone(),
            customer_master_key_spec: self.key_spec.clone(),
            key_spec: self.key_spec.clone(),
            encryption_algorithms: algorithms.encryption,
            signing_algorithms: algorithms.signing,
            mac_algorithms: algorithms.mac,
            key_agreement_algorithms: algorithms.key_agreement,
            encapsulation_algorithms: algorithms.encapsulation,
            multi_region: self.multi_region,
            pending_deletion_window_in_days: self.pending_window_days,
            // AWS shows a material id only for symmetric encryption keys, and not for a replica
            // still being created.
            current_key_material_id: self
                .current_material
                .clone()
                .filter(|_| self.is_symmetric_encryption() && self.state != KeyState::Creating),
            // Shown only while material is imported (AWS omits it after deletion or expiry).
            expiration_model: (self.origin == "EXTERNAL")
                .then(|| {
                    self.current_info()
                        .and_then(|m| m.import.as_ref())
                        .filter(|i| i.imported)
                        .map(|i| i.expiration_model.clone())
                })
                .flatten(),
            // The earliest expiry of any material permanently part of the key.
            valid_to: self
                .materials
                .iter()
                .filter(|m| !m.pending_rotation)
                .filter_map(|m| m.import.as_ref())
                .filter(|i| i.imported)
                .filter_map(|i| i.valid_to)
                .reduce(f64::min),
            multi_region_configuration: None,
        }
    }
}
