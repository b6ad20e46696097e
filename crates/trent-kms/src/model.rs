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
}

impl KeyRecord {
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
            // AWS shows a material id only for symmetric encryption keys.
            current_key_material_id: self
                .current_material
                .clone()
                .filter(|_| self.is_symmetric_encryption()),
        }
    }
}
