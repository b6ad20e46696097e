//! Typed requests and responses of the KMS operations, in the JSON shape of the AWS model
//! (PascalCase members, base64 blobs, epoch-second timestamps, absent optionals omitted).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use zeroize::Zeroizing;

/// A blob member: base64 on the wire, bytes here. Zeroized on drop, since blobs carry plaintext.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Blob(pub Zeroizing<Vec<u8>>);

impl Blob {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blob([REDACTED; {} bytes])", self.0.len())
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(self.0.as_slice()))
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s: std::borrow::Cow<'de, str> = Deserialize::deserialize(d)?;
        B64.decode(s.as_bytes())
            .map(Blob::new)
            .map_err(|_| serde::de::Error::custom("Base64 encoded value is invalid"))
    }
}

pub type EncryptionContext = BTreeMap<String, String>;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub tag_key: Option<String>,
    pub tag_value: Option<String>,
}

impl<'de> Deserialize<'de> for Tag {
    /// Only from a JSON object: serde's derive would also read `["k", "v"]` as a tag.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map: serde_json::Map<String, serde_json::Value> = Deserialize::deserialize(d)?;
        let member = |name: &str| match map.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(serde::de::Error::custom("a tag member is not a string")),
        };
        Ok(Tag {
            tag_key: member("TagKey")?,
            tag_value: member("TagValue")?,
        })
    }
}

/// KeyMetadata as DescribeKey and CreateKey return it.
#[derive(Debug, Clone, Serialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct KeyMetadata {
    #[serde(rename = "AWSAccountId")]
    pub aws_account_id: String,
    pub key_id: String,
    pub arn: String,
    pub creation_date: f64,
    pub enabled: bool,
    pub description: String,
    pub key_usage: String,
    pub key_state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_date: Option<f64>,
    pub origin: String,
    pub key_manager: String,
    pub customer_master_key_spec: String,
    pub key_spec: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_algorithms: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_algorithms: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_algorithms: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_agreement_algorithms: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encapsulation_algorithms: Option<Vec<String>>,
    pub multi_region: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_deletion_window_in_days: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_key_material_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multi_region_configuration: Option<MultiRegionConfiguration>,
}

/// A multi-Region key's place in its set, as DescribeKey shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MultiRegionConfiguration {
    pub multi_region_key_type: String,
    pub primary_key: MultiRegionKey,
    pub replica_keys: Vec<MultiRegionKey>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MultiRegionKey {
    pub arn: String,
    pub region: String,
}

macro_rules! request {
    ($name:ident { $($field:ident : $ty:ty),* $(,)? }) => {
        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(rename_all = "PascalCase")]
        pub struct $name { $(#[serde(default)] pub $field: Option<$ty>,)* }
    };
}

macro_rules! response {
    ($name:ident { $($field:ident : $ty:ty),* $(,)? }) => {
        #[derive(Debug, Clone, Default, Serialize)]
        #[serde(rename_all = "PascalCase")]
        pub struct $name { $(#[serde(skip_serializing_if = "Option::is_none")] pub $field: Option<$ty>,)* }
    };
}

/// The empty output of operations that return nothing.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Empty {}

request!(CreateKeyRequest {
    policy: String, description: String, key_usage: String, customer_master_key_spec: String,
    key_spec: String, origin: String, custom_key_store_id: String,
    bypass_policy_lockout_safety_check: bool, tags: Vec<Tag>, multi_region: bool, xks_key_id: String,
});
response!(CreateKeyResponse {
    key_metadata: KeyMetadata
});

request!(DescribeKeyRequest { key_id: String, grant_tokens: Vec<String> });
response!(DescribeKeyResponse {
    key_metadata: KeyMetadata
});

request!(ListKeysRequest {
    limit: i64,
    marker: String
});
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyListEntry {
    pub key_id: String,
    pub key_arn: String,
}
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListKeysResponse {
    pub keys: Vec<KeyListEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
    pub truncated: bool,
}

request!(KeyIdRequest { key_id: String });
request!(UpdateKeyDescriptionRequest {
    key_id: String,
    description: String
});

request!(ScheduleKeyDeletionRequest {
    key_id: String,
    pending_window_in_days: i64
});
response!(ScheduleKeyDeletionResponse {
    key_id: String,
    deletion_date: f64,
    key_state: String,
    pending_window_in_days: i64,
});
response!(CancelKeyDeletionResponse { key_id: String });

request!(AliasRequest {
    alias_name: String,
    target_key_id: String
});
request!(DeleteAliasRequest { alias_name: String });
request!(ListAliasesRequest {
    key_id: String,
    limit: i64,
    marker: String
});
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AliasListEntry {
    pub alias_name: String,
    pub alias_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_date: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated_date: Option<f64>,
}
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListAliasesResponse {
    pub aliases: Vec<AliasListEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
    pub truncated: bool,
}

request!(TagResourceRequest { key_id: String, tags: Vec<Tag> });
request!(UntagResourceRequest { key_id: String, tag_keys: Vec<String> });
request!(ListResourceTagsRequest {
    key_id: String,
    limit: i64,
    marker: String
});
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListResourceTagsResponse {
    pub tags: Vec<Tag>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
    pub truncated: bool,
}

request!(GetKeyPolicyRequest {
    key_id: String,
    policy_name: String
});
response!(GetKeyPolicyResponse {
    policy: String,
    policy_name: String
});
request!(PutKeyPolicyRequest {
    key_id: String,
    policy_name: String,
    policy: String,
    bypass_policy_lockout_safety_check: bool,
});
request!(ListKeyPoliciesRequest {
    key_id: String,
    limit: i64,
    marker: String
});
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListKeyPoliciesResponse {
    pub policy_names: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
    pub truncated: bool,
}

request!(EncryptRequest {
    key_id: String, plaintext: Blob, encryption_context: EncryptionContext,
    grant_tokens: Vec<String>, encryption_algorithm: String, dry_run: bool,
});
response!(EncryptResponse {
    ciphertext_blob: Blob,
    key_id: String,
    encryption_algorithm: String
});

request!(DecryptRequest {
    ciphertext_blob: Blob, encryption_context: EncryptionContext, grant_tokens: Vec<String>,
    key_id: String, encryption_algorithm: String, recipient: serde_json::Value, dry_run: bool,
    dry_run_modifiers: Vec<String>,
});
response!(DecryptResponse {
    key_id: String,
    plaintext: Blob,
    encryption_algorithm: String,
    key_material_id: String,
});

request!(ReEncryptRequest {
    ciphertext_blob: Blob, source_encryption_context: EncryptionContext, source_key_id: String,
    destination_key_id: String, destination_encryption_context: EncryptionContext,
    source_encryption_algorithm: String, destination_encryption_algorithm: String,
    grant_tokens: Vec<String>, dry_run: bool, dry_run_modifiers: Vec<String>,
});
response!(ReEncryptResponse {
    ciphertext_blob: Blob,
    source_key_id: String,
    key_id: String,
    source_encryption_algorithm: String,
    destination_encryption_algorithm: String,
    source_key_material_id: String,
    destination_key_material_id: String,
});

request!(GenerateDataKeyRequest {
    key_id: String, encryption_context: EncryptionContext, number_of_bytes: i64,
    key_spec: String, grant_tokens: Vec<String>, recipient: serde_json::Value, dry_run: bool,
});
response!(GenerateDataKeyResponse {
    ciphertext_blob: Blob,
    plaintext: Blob,
    key_id: String,
    key_material_id: String,
});

request!(GenerateRandomRequest {
    number_of_bytes: i64,
    custom_key_store_id: String,
    recipient: serde_json::Value,
});
response!(GenerateRandomResponse { plaintext: Blob });

request!(SignRequest {
    key_id: String, message: Blob, message_type: String, grant_tokens: Vec<String>,
    signing_algorithm: String, dry_run: bool,
});
response!(SignResponse {
    key_id: String,
    signature: Blob,
    signing_algorithm: String
});
request!(VerifyRequest {
    key_id: String, message: Blob, message_type: String, signature: Blob,
    signing_algorithm: String, grant_tokens: Vec<String>, dry_run: bool,
});
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VerifyResponse {
    pub key_id: String,
    pub signature_valid: bool,
    pub signing_algorithm: String,
}

request!(GetPublicKeyRequest { key_id: String, grant_tokens: Vec<String> });
response!(GetPublicKeyResponse {
    key_id: String,
    public_key: Blob,
    customer_master_key_spec: String,
    key_spec: String,
    key_usage: String,
    encryption_algorithms: Vec<String>,
    signing_algorithms: Vec<String>,
    key_agreement_algorithms: Vec<String>,
    encapsulation_algorithms: Vec<String>,
});

request!(GenerateMacRequest {
    message: Blob, key_id: String, mac_algorithm: String, grant_tokens: Vec<String>, dry_run: bool,
});
response!(GenerateMacResponse {
    mac: Blob,
    mac_algorithm: String,
    key_id: String
});
request!(VerifyMacRequest {
    message: Blob, key_id: String, mac_algorithm: String, mac: Blob, grant_tokens: Vec<String>,
    dry_run: bool,
});
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VerifyMacResponse {
    pub key_id: String,
    pub mac_valid: bool,
    pub mac_algorithm: String,
}

request!(DeriveSharedSecretRequest {
    key_id: String, key_agreement_algorithm: String, public_key: Blob, grant_tokens: Vec<String>,
    dry_run: bool, recipient: serde_json::Value,
});
response!(DeriveSharedSecretResponse {
    key_id: String,
    shared_secret: Blob,
    key_agreement_algorithm: String,
    key_origin: String,
});

request!(EncapsulateRequest {
    key_id: String, encapsulation_algorithm: String, grant_tokens: Vec<String>, dry_run: bool,
});
response!(EncapsulateResponse {
    key_id: String,
    shared_secret: Blob,
    shared_secret_ciphertext_blob: Blob,
    encapsulation_algorithm: String,
});
request!(DecapsulateRequest {
    key_id: String, shared_secret_ciphertext_blob: Blob, encapsulation_algorithm: String,
    grant_tokens: Vec<String>, dry_run: bool,
});
response!(DecapsulateResponse {
    key_id: String,
    shared_secret: Blob,
    encapsulation_algorithm: String,
});

request!(GenerateDataKeyPairRequest {
    encryption_context: EncryptionContext, key_id: String, key_pair_spec: String,
    grant_tokens: Vec<String>, recipient: serde_json::Value, dry_run: bool,
});
response!(GenerateDataKeyPairResponse {
    private_key_ciphertext_blob: Blob,
    private_key_plaintext: Blob,
    public_key: Blob,
    key_id: String,
    key_pair_spec: String,
    key_material_id: String,
});

/// Grant constraints: the encryption context a grant's operations must have.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GrantConstraints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_context_subset: Option<EncryptionContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_context_equals: Option<EncryptionContext>,
}

request!(CreateGrantRequest {
    key_id: String, grantee_principal: String, retiring_principal: String,
    operations: Vec<String>, constraints: GrantConstraints, grant_tokens: Vec<String>,
    name: String, dry_run: bool,
});
response!(CreateGrantResponse {
    grant_token: String,
    grant_id: String
});

request!(ListGrantsRequest {
    limit: i64,
    marker: String,
    key_id: String,
    grant_id: String,
    grantee_principal: String,
});
request!(ListRetirableGrantsRequest {
    limit: i64,
    marker: String,
    retiring_principal: String
});
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GrantListEntry {
    pub key_id: String,
    pub grant_id: String,
    pub name: Option<String>,
    pub creation_date: f64,
    pub grantee_principal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retiring_principal: Option<String>,
    pub issuing_account: String,
    pub operations: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraints: Option<GrantConstraints>,
}
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListGrantsResponse {
    pub grants: Vec<GrantListEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
    pub truncated: bool,
}

request!(RetireGrantRequest {
    grant_token: String,
    key_id: String,
    grant_id: String,
    dry_run: bool
});
request!(RevokeGrantRequest {
    key_id: String,
    grant_id: String,
    dry_run: bool
});

// Rotation.
request!(EnableKeyRotationRequest {
    key_id: String,
    rotation_period_in_days: i64
});
request!(GetKeyRotationStatusRequest { key_id: String });
response!(GetKeyRotationStatusResponse {
    key_rotation_enabled: bool,
    key_id: String,
    rotation_period_in_days: i64,
    next_rotation_date: f64,
    on_demand_rotation_start_date: f64,
});
response!(RotateKeyOnDemandResponse { key_id: String });
request!(ListKeyRotationsRequest {
    key_id: String,
    include_key_material: String,
    limit: i64,
    marker: String,
});
response!(RotationsListEntry {
    key_id: String,
    key_material_id: String,
    key_material_description: String,
    import_state: String,
    key_material_state: String,
    expiration_model: String,
    valid_to: f64,
    rotation_date: f64,
    rotation_type: String,
});
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListKeyRotationsResponse {
    pub rotations: Vec<RotationsListEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
    pub truncated: bool,
}

// Imported key material.
request!(GetParametersForImportRequest {
    key_id: String,
    wrapping_algorithm: String,
    wrapping_key_spec: String,
});
response!(GetParametersForImportResponse {
    key_id: String,
    import_token: Blob,
    public_key: Blob,
    parameters_valid_to: f64,
});
request!(ImportKeyMaterialRequest {
    key_id: String,
    import_token: Blob,
    encrypted_key_material: Blob,
    valid_to: f64,
    expiration_model: String,
    import_type: String,
    key_material_description: String,
    key_material_id: String,
});
response!(ImportKeyMaterialResponse {
    key_id: String,
    key_material_id: String
});
request!(DeleteImportedKeyMaterialRequest {
    key_id: String,
    key_material_id: String
});
response!(DeleteImportedKeyMaterialResponse {
    key_id: String,
    key_material_id: String
});

// Multi-Region keys.
request!(ReplicateKeyRequest {
    key_id: String, replica_region: String, policy: String,
    bypass_policy_lockout_safety_check: bool, description: String, tags: Vec<Tag>,
});
response!(ReplicateKeyResponse {
    replica_key_metadata: KeyMetadata,
    replica_policy: String,
    replica_tags: Vec<Tag>,
});
request!(UpdatePrimaryRegionRequest {
    key_id: String,
    primary_region: String
});

// Last use.
request!(GetKeyLastUsageRequest { key_id: String });
response!(KeyLastUsage {
    operation: String,
    timestamp: f64,
    cloud_trail_event_id: String,
    kms_request_id: String,
});
response!(GetKeyLastUsageResponse {
    key_id: String,
    key_last_usage: KeyLastUsage,
    tracking_start_date: f64,
    key_creation_date: f64,
});
