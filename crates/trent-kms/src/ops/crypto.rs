//! Encrypt, Decrypt, ReEncrypt, GenerateDataKey, GenerateDataKeyWithoutPlaintext, GenerateRandom.
//! These read only the in-memory view: no storage on the hot path.

use super::*;
use crate::api::*;
use crate::ids::Caller;
use crate::keyspec;
use crate::service::{CachedKey, Kms};
use crate::validate::Violations;
use std::sync::Arc;
use trent_crypto::asymmetric::OaepHash;
use trent_crypto::blob::BlobHeader;
use trent_crypto::primitives;

pub(super) const SYMMETRIC_DEFAULT: &str = "SYMMETRIC_DEFAULT";

/// What Decrypt (`Decrypt`) and ReEncrypt's source (`ReEncryptFrom`) authorize on the key.
fn open_access<'a>(
    action: &'static str,
    context: &'a EncryptionContext,
    algorithm: Option<&'a str>,
) -> Access<'a> {
    Access::with(
        action,
        Facts {
            encryption_context: some_context(context),
            encryption_algorithm: Some(algorithm.unwrap_or(SYMMETRIC_DEFAULT)),
            ..Facts::default()
        },
    )
}

fn incorrect_key() -> KmsError {
    KmsError::IncorrectKey(
        "The key ID in the request does not identify a CMK that can perform this operation.".into(),
    )
}

/// The usage and algorithm rules of symmetric encryption (Encrypt and Decrypt of symmetric
/// ciphertexts, GenerateDataKey*, GenerateDataKeyPair*): an ENCRYPT_DECRYPT key of spec
/// SYMMETRIC_DEFAULT, and the SYMMETRIC_DEFAULT algorithm.
pub(super) fn require_symmetric_encryption(
    key: &CachedKey,
    algorithm: Option<&str>,
    op: &str,
) -> Result<(), KmsError> {
    require_usage(key, keyspec::ENCRYPT_DECRYPT, op)?;
    let algorithm = algorithm.unwrap_or(SYMMETRIC_DEFAULT);
    if algorithm != SYMMETRIC_DEFAULT || !key.record.is_symmetric_encryption() {
        return Err(incompatible_algorithm(algorithm, key));
    }
    Ok(())
}

/// How a key encrypts, once every check has passed.
enum Encryption {
    Symmetric,
    Rsa(OaepHash),
}

/// The usage, algorithm, context and size rules of encryption under `key`.
fn encryption_plan(
    key: &CachedKey,
    algorithm: Option<&str>,
    context: &EncryptionContext,
    plaintext_len: usize,
    op: &str,
) -> Result<Encryption, KmsError> {
    let Some(private) = key.private_key() else {
        require_symmetric_encryption(key, algorithm, op)?;
        return Ok(Encryption::Symmetric);
    };
    let hash = rsa_algorithm(key, algorithm, op)?;
    no_context(context)?;
    let name = algorithm.unwrap_or_default();
    match private.oaep_max_plaintext(hash) {
        Some(max) if plaintext_len <= max => Ok(Encryption::Rsa(hash)),
        Some(max) => Err(KmsError::Validation(format!(
            "Algorithm {name} and key spec {} cannot encrypt data larger than {max} bytes.",
            key.record.key_spec
        ))),
        None => Err(incompatible_algorithm(name, key)),
    }
}

/// The OAEP variant an RSA ENCRYPT_DECRYPT key is asked to use.
fn rsa_algorithm(key: &CachedKey, algorithm: Option<&str>, op: &str) -> Result<OaepHash, KmsError> {
    require_usage(key, keyspec::ENCRYPT_DECRYPT, op)?;
    let algorithm = algorithm.unwrap_or(SYMMETRIC_DEFAULT);
    keyspec::oaep_hash(algorithm).ok_or_else(|| incompatible_algorithm(algorithm, key))
}

/// Asymmetric encryption takes no encryption context.
fn no_context(context: &EncryptionContext) -> Result<(), KmsError> {
    if !context.is_empty() {
        return Err(KmsError::Validation(
            "EncryptionContext is not supported with asymmetric KMS keys.".into(),
        ));
    }
    Ok(())
}

/// CiphertextBlob: required, 1..6144 bytes.
fn check_ciphertext(v: &mut Violations, blob: &Option<Blob>) {
    v.required("CiphertextBlob", blob).blob_len(
        "CiphertextBlob",
        blob.as_ref().map(Blob::as_slice),
        1,
        6144,
    );
}

/// A key opened from a ciphertext: the key, the plaintext, the algorithm, and for symmetric
/// ciphertexts the material that sealed it.
struct Opened {
    key: Arc<CachedKey>,
    plaintext: Blob,
    algorithm: String,
    material_id: Option<String>,
}

/// A ciphertext sealed by [`Kms::encrypt_with`].
struct Sealed {
    blob: Blob,
    algorithm: String,
    material_id: Option<String>,
}

impl Kms {
    /// Seal `plaintext` under `key`'s current material.
    pub(super) fn seal(
        &self,
        key: &CachedKey,
        context: &EncryptionContext,
        plaintext: &[u8],
    ) -> Result<(Blob, String), KmsError> {
        let material = key
            .current_material()
            .ok_or_else(|| KmsError::Internal("The key has no current key material.".into()))?;
        let blob = material.seal(&key.record.account, &key.record.key_id, context, plaintext)?;
        Ok((Blob::new(blob), material.material_id().to_hex()))
    }

    /// Encrypt under `key` as `plan` says.
    fn encrypt_with(
        &self,
        key: &CachedKey,
        plan: Encryption,
        context: &EncryptionContext,
        plaintext: &[u8],
    ) -> Result<Sealed, KmsError> {
        match plan {
            Encryption::Symmetric => {
                let (blob, material) = self.seal(key, context, plaintext)?;
                Ok(Sealed {
                    blob,
                    algorithm: SYMMETRIC_DEFAULT.into(),
                    material_id: Some(material),
                })
            }
            Encryption::Rsa(hash) => {
                let private = super::asymmetric::private_key(key)?;
                Ok(Sealed {
                    blob: Blob::new(private.oaep_encrypt(hash, plaintext)?),
                    algorithm: keyspec::oaep_name(hash).into(),
                    material_id: None,
                })
            }
        }
    }

    /// Open a ciphertext. An RSA ciphertext needs `key_id` (and an RSAES_OAEP algorithm); a
    /// symmetric one names its key, and `key_id`, if given, must name that key.
    fn open_blob(
        &self,
        caller: &Caller,
        blob: &[u8],
        context: &EncryptionContext,
        key_id: Option<&str>,
        algorithm: Option<&str>,
        action: &'static str,
    ) -> Result<Opened, KmsError> {
        let access = open_access(action, context, algorithm);
        let expected = key_id
            .map(|k| self.resolve_any(caller, k, &access))
            .transpose()?;
        // `action` is the IAM action (ReEncryptFrom); usage messages name the operation.
        let op = if action == "ReEncryptFrom" {
            "ReEncrypt"
        } else {
            action
        };
        // An asymmetric key given: its state and usage rules come first (a signing key is
        // refused for its usage); an RSA key decrypts OAEP. A symmetric key (HMAC keys are
        // symmetric too, as AWS counts them) reads the blob as a symmetric ciphertext, which names
        // another key: IncorrectKeyException, as AWS answers for an HMAC key.
        if let Some(key) = expected.as_ref().filter(|k| {
            matches!(
                keyspec::kind(&k.record.key_spec),
                Some(keyspec::KeyKind::Asymmetric(_))
            )
        }) {
            require_enabled(key)?;
            require_usable(key)?;
            let hash = rsa_algorithm(key, algorithm, op)?;
            no_context(context)?;
            let plaintext = super::asymmetric::private_key(key)?.oaep_decrypt(hash, blob)?;
            return Ok(Opened {
                key: key.clone(),
                plaintext: Blob(plaintext),
                algorithm: algorithm.unwrap_or_default().to_string(),
                material_id: None,
            });
        }
        let (header, _) = BlobHeader::parse(blob)?;
        if let Some(expected) = &expected
            && (expected.record.key_id != header.key_id
                || expected.record.account != header.account)
        {
            return Err(incorrect_key());
        }
        let key = match expected {
            Some(k) => k,
            None => {
                let named = crate::ids::KeyRef::KeyArn {
                    account: header.account.clone(),
                    key_id: header.key_id.clone(),
                };
                match self.resolve(caller, &named, &access) {
                    Ok(k) => k,
                    Err(KmsError::NotFound(_)) => return Err(KmsError::InvalidCiphertext),
                    Err(e) => return Err(e),
                }
            }
        };
        require_enabled(&key)?;
        require_usable(&key)?;
        require_symmetric_encryption(&key, algorithm, op)?;
        let material = key
            .symmetric_material(&header.material_id)
            .ok_or(KmsError::InvalidCiphertext)?;
        let plaintext = material.open(blob, context)?;
        Ok(Opened {
            material_id: Some(header.material_id.to_hex()),
            key,
            plaintext: Blob(plaintext),
            algorithm: SYMMETRIC_DEFAULT.into(),
        })
    }

    pub async fn encrypt(
        &self,
        caller: &Caller,
        req: EncryptRequest,
    ) -> Result<EncryptResponse, KmsError> {
        let mut v = Violations::new();
        check_key_id(&mut v, "KeyId", &req.key_id);
        v.required("Plaintext", &req.plaintext)
            .blob_len(
                "Plaintext",
                req.plaintext.as_ref().map(Blob::as_slice),
                1,
                4096,
            )
            .one_of(
                "EncryptionAlgorithm",
                req.encryption_algorithm.as_deref(),
                ENCRYPTION_ALGORITHMS,
            );
        check_grant_tokens(&mut v, &req.grant_tokens);
        v.finish()?;
        let context = req.encryption_context.unwrap_or_default();
        let access = Access::with(
            "Encrypt",
            Facts {
                encryption_context: some_context(&context),
                encryption_algorithm: Some(
                    req.encryption_algorithm
                        .as_deref()
                        .unwrap_or(SYMMETRIC_DEFAULT),
                ),
                ..Facts::default()
            },
        );
        let key = self
            .key_for_use(caller, &req.grant_tokens, &req.key_id, &access)
            .await?;
        require_enabled(&key)?;
        require_usable(&key)?;
        let plaintext = req.plaintext.unwrap_or_default();
        let plan = encryption_plan(
            &key,
            req.encryption_algorithm.as_deref(),
            &context,
            plaintext.as_slice().len(),
            "Encrypt",
        )?;
        dry_run(req.dry_run)?;
        let sealed = self.encrypt_with(&key, plan, &context, plaintext.as_slice())?;
        self.record_use(&key, "Encrypt", caller);
        Ok(EncryptResponse {
            ciphertext_blob: Some(sealed.blob),
            key_id: Some(key.arn.clone()),
            encryption_algorithm: Some(sealed.algorithm),
        })
    }

    pub async fn decrypt(
        &self,
        caller: &Caller,
        req: DecryptRequest,
    ) -> Result<DecryptResponse, KmsError> {
        let mut v = Violations::new();
        check_ciphertext(&mut v, &req.ciphertext_blob);
        v.str_len("KeyId", req.key_id.as_deref(), 1, 2048).one_of(
            "EncryptionAlgorithm",
            req.encryption_algorithm.as_deref(),
            ENCRYPTION_ALGORITHMS,
        );
        check_grant_tokens(&mut v, &req.grant_tokens);
        v.finish()?;
        refuse_recipient(&req.recipient)?;
        let context = req.encryption_context.unwrap_or_default();
        let access = open_access("Decrypt", &context, req.encryption_algorithm.as_deref());
        self.before_using(caller, &req.grant_tokens, &req.key_id, &access)
            .await?;
        let opened = self.open_blob(
            caller,
            req.ciphertext_blob.unwrap_or_default().as_slice(),
            &context,
            req.key_id.as_deref(),
            req.encryption_algorithm.as_deref(),
            "Decrypt",
        )?;
        dry_run(req.dry_run)?;
        self.record_use(&opened.key, "Decrypt", caller);
        Ok(DecryptResponse {
            key_id: Some(opened.key.arn.clone()),
            plaintext: Some(opened.plaintext),
            encryption_algorithm: Some(opened.algorithm),
            key_material_id: opened.material_id,
        })
    }

    pub async fn re_encrypt(
        &self,
        caller: &Caller,
        req: ReEncryptRequest,
    ) -> Result<ReEncryptResponse, KmsError> {
        let mut v = Violations::new();
        check_ciphertext(&mut v, &req.ciphertext_blob);
        v.str_len("SourceKeyId", req.source_key_id.as_deref(), 1, 2048);
        check_key_id(&mut v, "DestinationKeyId", &req.destination_key_id);
        v.one_of(
            "SourceEncryptionAlgorithm",
            req.source_encryption_algorithm.as_deref(),
            ENCRYPTION_ALGORITHMS,
        )
        .one_of(
            "DestinationEncryptionAlgorithm",
            req.destination_encryption_algorithm.as_deref(),
            ENCRYPTION_ALGORITHMS,
        );
        check_grant_tokens(&mut v, &req.grant_tokens);
        v.finish()?;
        let context = req.destination_encryption_context.unwrap_or_default();
        let to = Access::with(
            "ReEncryptTo",
            Facts {
                encryption_context: some_context(&context),
                encryption_algorithm: Some(
                    req.destination_encryption_algorithm
                        .as_deref()
                        .unwrap_or(SYMMETRIC_DEFAULT),
                ),
                ..Facts::default()
            },
        );
        let source_context = req.source_encryption_context.unwrap_or_default();
        let from = open_access(
            "ReEncryptFrom",
            &source_context,
            req.source_encryption_algorithm.as_deref(),
        );
        self.before_key_use(
            caller,
            &req.grant_tokens,
            &[
                (req.source_key_id.as_deref(), &from),
                (req.destination_key_id.as_deref(), &to),
            ],
        )
        .await?;
        let destination = self.resolve_any(
            caller,
            req.destination_key_id.as_deref().unwrap_or_default(),
            &to,
        )?;
        let opened = self.open_blob(
            caller,
            req.ciphertext_blob.unwrap_or_default().as_slice(),
            &source_context,
            req.source_key_id.as_deref(),
            req.source_encryption_algorithm.as_deref(),
            "ReEncryptFrom",
        )?;
        require_enabled(&destination)?;
        require_usable(&destination)?;
        let plan = encryption_plan(
            &destination,
            req.destination_encryption_algorithm.as_deref(),
            &context,
            opened.plaintext.as_slice().len(),
            "ReEncrypt",
        )?;
        dry_run(req.dry_run)?;
        let sealed =
            self.encrypt_with(&destination, plan, &context, opened.plaintext.as_slice())?;
        self.record_use(&opened.key, "ReEncrypt", caller);
        self.record_use(&destination, "ReEncrypt", caller);
        Ok(ReEncryptResponse {
            ciphertext_blob: Some(sealed.blob),
            source_key_id: Some(opened.key.arn.clone()),
            key_id: Some(destination.arn.clone()),
            source_encryption_algorithm: Some(opened.algorithm),
            destination_encryption_algorithm: Some(sealed.algorithm),
            source_key_material_id: opened.material_id,
            destination_key_material_id: sealed.material_id,
        })
    }

    /// The shared body of GenerateDataKey and GenerateDataKeyWithoutPlaintext.
    async fn generate_data_key_inner(
        &self,
        caller: &Caller,
        req: GenerateDataKeyRequest,
        action: &'static str,
    ) -> Result<GenerateDataKeyResponse, KmsError> {
        let mut v = Violations::new();
        check_key_id(&mut v, "KeyId", &req.key_id);
        v.range("NumberOfBytes", req.number_of_bytes, 1, 1024)
            .one_of("KeySpec", req.key_spec.as_deref(), DATA_KEY_SPECS);
        check_grant_tokens(&mut v, &req.grant_tokens);
        v.finish()?;
        let len = match (req.key_spec.as_deref(), req.number_of_bytes) {
            (Some(_), Some(_)) => {
                return Err(KmsError::Validation(
                    "Please specify either number of bytes or key spec, not both.".into(),
                ));
            }
            (None, None) => {
                return Err(KmsError::Validation(
                    "Please specify either number of bytes or key spec.".into(),
                ));
            }
            (Some("AES_128"), None) => 16,
            (Some(_), None) => 32,
            (None, Some(n)) => n as usize,
        };
        refuse_recipient(&req.recipient)?;
        let context = req.encryption_context.unwrap_or_default();
        let access = Access::with(
            action,
            Facts {
                encryption_context: some_context(&context),
                encryption_algorithm: Some(SYMMETRIC_DEFAULT),
                ..Facts::default()
            },
        );
        let key = self
            .key_for_use(caller, &req.grant_tokens, &req.key_id, &access)
            .await?;
        require_enabled(&key)?;
        require_usable(&key)?;
        require_symmetric_encryption(&key, None, action)?;
        dry_run(req.dry_run)?;
        let plaintext = primitives::random_bytes(len)?;
        let (blob, material) = self.seal(&key, &context, &plaintext)?;
        self.record_use(&key, action, caller);
        Ok(GenerateDataKeyResponse {
            ciphertext_blob: Some(blob),
            plaintext: Some(Blob(plaintext)),
            key_id: Some(key.arn.clone()),
            key_material_id: Some(material),
        })
    }

    pub async fn generate_data_key(
        &self,
        caller: &Caller,
        req: GenerateDataKeyRequest,
    ) -> Result<GenerateDataKeyResponse, KmsError> {
        self.generate_data_key_inner(caller, req, "GenerateDataKey")
            .await
    }

    pub async fn generate_data_key_without_plaintext(
        &self,
        caller: &Caller,
        req: GenerateDataKeyRequest,
    ) -> Result<GenerateDataKeyResponse, KmsError> {
        let mut out = self
            .generate_data_key_inner(caller, req, "GenerateDataKeyWithoutPlaintext")
            .await?;
        out.plaintext = None;
        Ok(out)
    }

    pub async fn generate_random(
        &self,
        caller: &Caller,
        req: GenerateRandomRequest,
    ) -> Result<GenerateRandomResponse, KmsError> {
        let mut v = Violations::new();
        v.range("NumberOfBytes", req.number_of_bytes, 1, 1024)
            .str_len(
                "CustomKeyStoreId",
                req.custom_key_store_id.as_deref(),
                1,
                64,
            );
        v.finish()?;
        let Some(n) = req.number_of_bytes else {
            return Err(KmsError::Validation("NumberOfBytes is required.".into()));
        };
        self.authorize_identity(caller, &Access::new("GenerateRandom"), "*")?;
        if let Some(id) = req.custom_key_store_id {
            return Err(custom_key_store_not_found(&id));
        }
        refuse_recipient(&req.recipient)?;
        Ok(GenerateRandomResponse {
            plaintext: Some(Blob(primitives::random_bytes(n as usize)?)),
        })
    }
}
