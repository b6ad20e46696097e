//! Sign, Verify, GetPublicKey, GenerateMac, VerifyMac, DeriveSharedSecret, Encapsulate,
//! Decapsulate, GenerateDataKeyPair, GenerateDataKeyPairWithoutPlaintext. Like the symmetric
//! operations they read only the in-memory view, and use keys parsed when they were loaded.

use super::*;
use crate::api::*;
use crate::ids::Caller;
use crate::keyspec::{self, KeyKind};
use crate::service::{CachedKey, Kms};
use crate::validate::Violations;
use std::sync::Arc;
use trent_crypto::PrivateKey;
use trent_crypto::asymmetric::{MessageKind, SignError, check_message};

/// The private key of an asymmetric key; an internal error if it is missing (it never is).
pub(super) fn private_key(key: &CachedKey) -> Result<&PrivateKey, KmsError> {
    key.private_key().ok_or_else(no_material)
}

/// The key of an HMAC key; an internal error if it is missing (it never is).
fn hmac_key(key: &CachedKey) -> Result<&trent_crypto::HmacKey, KmsError> {
    key.hmac_key().ok_or_else(no_material)
}

fn no_material() -> KmsError {
    KmsError::Internal("The key has no key material.".into())
}

/// What Sign and Verify share: validated inputs, and the key after every check.
struct SigningRequest {
    key: Arc<CachedKey>,
    algorithm: String,
    scheme: trent_crypto::asymmetric::SigningScheme,
    kind: MessageKind,
}

/// What GenerateMac and VerifyMac (`op`) authorize on the key.
fn mac_access<'a>(op: &'static str, algorithm: &'a Option<String>) -> Access<'a> {
    Access::with(
        op,
        Facts {
            mac_algorithm: algorithm.as_deref(),
            ..Facts::default()
        },
    )
}

impl Kms {
    /// The checks of Sign and Verify, in AWS's order: members, key, state, usage, algorithm,
    /// message type and digest length.
    #[allow(clippy::too_many_arguments)]
    async fn signing_request(
        &self,
        caller: &Caller,
        v: &mut Violations,
        key_id: &Option<String>,
        message: &Option<Blob>,
        message_type: &Option<String>,
        algorithm: &Option<String>,
        grant_tokens: &Option<Vec<String>>,
        op: &'static str,
    ) -> Result<SigningRequest, KmsError> {
        check_key_id(v, "KeyId", key_id);
        v.required("Message", message)
            .blob_len("Message", message.as_ref().map(Blob::as_slice), 1, 4096)
            .one_of("MessageType", message_type.as_deref(), MESSAGE_TYPES)
            .required("SigningAlgorithm", algorithm)
            .one_of("SigningAlgorithm", algorithm.as_deref(), SIGNING_ALGORITHMS);
        check_grant_tokens(v, grant_tokens);
        v.finish()?;
        let type_name = message_type.as_deref().unwrap_or("RAW");
        let access = Access::with(
            op,
            Facts {
                signing_algorithm: algorithm.as_deref(),
                message_type: Some(type_name),
                ..Facts::default()
            },
        );
        let key = self
            .key_for_use(caller, grant_tokens, key_id, &access)
            .await?;
        require_enabled(&key)?;
        require_usable(&key)?;
        require_usage(&key, keyspec::SIGN_VERIFY, op)?;
        let algorithm = algorithm.clone().unwrap_or_default();
        if !keyspec::signing_algorithms(&key.record.key_spec).contains(&algorithm.as_str()) {
            return Err(incompatible_algorithm(&algorithm, &key));
        }
        let scheme = keyspec::signing_scheme(&algorithm)
            .ok_or_else(|| incompatible_algorithm(&algorithm, &key))?;
        let kind = keyspec::message_kind(type_name);
        let bytes = message.as_ref().map(Blob::as_slice).unwrap_or_default();
        match check_message(scheme, kind, bytes) {
            Ok(()) => {}
            Err(SignError::DigestLength) => return Err(digest_length(&algorithm)),
            Err(_) => {
                return Err(KmsError::Validation(format!(
                    "MessageType {type_name} is not supported with signing algorithm {algorithm}."
                )));
            }
        }
        Ok(SigningRequest {
            key,
            algorithm,
            scheme,
            kind,
        })
    }

    pub async fn sign(&self, caller: &Caller, req: SignRequest) -> Result<SignResponse, KmsError> {
        let mut v = Violations::new();
        let s = self
            .signing_request(
                caller,
                &mut v,
                &req.key_id,
                &req.message,
                &req.message_type,
                &req.signing_algorithm,
                &req.grant_tokens,
                "Sign",
            )
            .await?;
        dry_run(req.dry_run)?;
        let message = req.message.unwrap_or_default();
        let signature = private_key(&s.key)?
            .sign(s.scheme, s.kind, message.as_slice())
            .map_err(sign_error)?;
        self.record_use(&s.key, "Sign", caller);
        Ok(SignResponse {
            key_id: Some(s.key.arn.clone()),
            signature: Some(Blob::new(signature)),
            signing_algorithm: Some(s.algorithm),
        })
    }

    pub async fn verify(
        &self,
        caller: &Caller,
        req: VerifyRequest,
    ) -> Result<VerifyResponse, KmsError> {
        let mut v = Violations::new();
        v.required("Signature", &req.signature).blob_len(
            "Signature",
            req.signature.as_ref().map(Blob::as_slice),
            1,
            6144,
        );
        let s = self
            .signing_request(
                caller,
                &mut v,
                &req.key_id,
                &req.message,
                &req.message_type,
                &req.signing_algorithm,
                &req.grant_tokens,
                "Verify",
            )
            .await?;
        dry_run(req.dry_run)?;
        let message = req.message.unwrap_or_default();
        let signature = req.signature.unwrap_or_default();
        let valid = private_key(&s.key)?
            .verify(s.scheme, s.kind, message.as_slice(), signature.as_slice())
            .map_err(sign_error)?;
        if !valid {
            return Err(KmsError::InvalidKmsSignature);
        }
        self.record_use(&s.key, "Verify", caller);
        Ok(VerifyResponse {
            key_id: s.key.arn.clone(),
            signature_valid: true,
            signing_algorithm: s.algorithm,
        })
    }

    pub async fn get_public_key(
        &self,
        caller: &Caller,
        req: GetPublicKeyRequest,
    ) -> Result<GetPublicKeyResponse, KmsError> {
        let mut v = Violations::new();
        check_key_id(&mut v, "KeyId", &req.key_id);
        check_grant_tokens(&mut v, &req.grant_tokens);
        v.finish()?;
        let access = Access::new("GetPublicKey");
        let key = self
            .key_for_use(caller, &req.grant_tokens, &req.key_id, &access)
            .await?;
        require_enabled(&key)?;
        require_usable(&key)?;
        let Some(private) = key.private_key() else {
            return Err(KmsError::UnsupportedOperation(format!(
                "{} key spec {} has no public key.",
                key.arn, key.record.key_spec
            )));
        };
        let algorithms = key.record.algorithms();
        Ok(GetPublicKeyResponse {
            key_id: Some(key.arn.clone()),
            public_key: Some(Blob::new(private.public_key_der().to_vec())),
            customer_master_key_spec: Some(key.record.key_spec.clone()),
            key_spec: Some(key.record.key_spec.clone()),
            key_usage: Some(key.record.key_usage.clone()),
            encryption_algorithms: algorithms.encryption,
            signing_algorithms: algorithms.signing,
            key_agreement_algorithms: algorithms.key_agreement,
            encapsulation_algorithms: algorithms.encapsulation,
        })
    }

    /// The checks of GenerateMac and VerifyMac; `access` is [`mac_access`]'s.
    fn mac_key(
        &self,
        caller: &Caller,
        key_id: &Option<String>,
        algorithm: &Option<String>,
        access: &Access<'_>,
    ) -> Result<Arc<CachedKey>, KmsError> {
        let op = access.action;
        let key = self.resolve_any(caller, key_id.as_deref().unwrap_or_default(), access)?;
        require_enabled(&key)?;
        require_usable(&key)?;
        require_usage(&key, keyspec::GENERATE_VERIFY_MAC, op)?;
        let algorithm = algorithm.as_deref().unwrap_or_default();
        let matches = key
            .hmac_key()
            .is_some_and(|k| keyspec::mac_algorithm(k.spec()) == algorithm);
        if !matches {
            return Err(incompatible_algorithm(algorithm, &key));
        }
        Ok(key)
    }

    pub async fn generate_mac(
        &self,
        caller: &Caller,
        req: GenerateMacRequest,
    ) -> Result<GenerateMacResponse, KmsError> {
        let mut v = Violations::new();
        check_mac_members(&mut v, &req.message, &req.key_id, &req.mac_algorithm);
        check_grant_tokens(&mut v, &req.grant_tokens);
        v.finish()?;
        let access = mac_access("GenerateMac", &req.mac_algorithm);
        self.before_using(caller, &req.grant_tokens, &req.key_id, &access)
            .await?;
        let key = self.mac_key(caller, &req.key_id, &req.mac_algorithm, &access)?;
        dry_run(req.dry_run)?;
        let hmac = hmac_key(&key)?;
        self.record_use(&key, "GenerateMac", caller);
        Ok(GenerateMacResponse {
            mac: Some(Blob::new(
                hmac.sign(req.message.unwrap_or_default().as_slice()),
            )),
            mac_algorithm: req.mac_algorithm,
            key_id: Some(key.arn.clone()),
        })
    }

    pub async fn verify_mac(
        &self,
        caller: &Caller,
        req: VerifyMacRequest,
    ) -> Result<VerifyMacResponse, KmsError> {
        let mut v = Violations::new();
        check_mac_members(&mut v, &req.message, &req.key_id, &req.mac_algorithm);
        v.required("Mac", &req.mac)
            .blob_len("Mac", req.mac.as_ref().map(Blob::as_slice), 1, 6144);
        check_grant_tokens(&mut v, &req.grant_tokens);
        v.finish()?;
        let access = mac_access("VerifyMac", &req.mac_algorithm);
        self.before_using(caller, &req.grant_tokens, &req.key_id, &access)
            .await?;
        let key = self.mac_key(caller, &req.key_id, &req.mac_algorithm, &access)?;
        dry_run(req.dry_run)?;
        let hmac = hmac_key(&key)?;
        if !hmac.verify(
            req.message.unwrap_or_default().as_slice(),
            req.mac.unwrap_or_default().as_slice(),
        ) {
            return Err(KmsError::InvalidMac);
        }
        self.record_use(&key, "VerifyMac", caller);
        Ok(VerifyMacResponse {
            key_id: key.arn.clone(),
            mac_valid: true,
            mac_algorithm: req.mac_algorithm.unwrap_or_default(),
        })
    }

    pub async fn derive_shared_secret(
        &self,
        caller: &Caller,
        req: DeriveSharedSecretRequest,
    ) -> Result<DeriveSharedSecretResponse, KmsError> {
        let mut v = Violations::new();
        check_key_id(&mut v, "KeyId", &req.key_id);
        v.required("KeyAgreementAlgorithm", &req.key_agreement_algorithm)
            .one_of(
                "KeyAgreementAlgorithm",
                req.key_agreement_algorithm.as_deref(),
                KEY_AGREEMENT_ALGORITHMS,
            )
            .required("PublicKey", &req.public_key)
            .blob_len(
                "PublicKey",
                req.public_key.as_ref().map(Blob::as_slice),
                1,
                8192,
            );
        check_grant_tokens(&mut v, &req.grant_tokens);
        v.finish()?;
        refuse_recipient(&req.recipient)?;
        let access = Access::with(
            "DeriveSharedSecret",
            Facts {
                key_agreement_algorithm: req.key_agreement_algorithm.as_deref(),
                ..Facts::default()
            },
        );
        let key = self
            .key_for_use(caller, &req.grant_tokens, &req.key_id, &access)
            .await?;
        require_enabled(&key)?;
        require_usable(&key)?;
        require_usage(&key, keyspec::KEY_AGREEMENT, "DeriveSharedSecret")?;
        // A PublicKey that is not a DER SubjectPublicKeyInfo on the key's curve: AWS answers
        // ValidationException with an empty message.
        let secret = private_key(&key)?
            .ecdh(req.public_key.unwrap_or_default().as_slice())?
            .ok_or_else(|| KmsError::Validation(String::new()))?;
        dry_run(req.dry_run)?;
        self.record_use(&key, "DeriveSharedSecret", caller);
        Ok(DeriveSharedSecretResponse {
            key_id: Some(key.arn.clone()),
            shared_secret: Some(Blob(secret)),
            key_agreement_algorithm: req.key_agreement_algorithm,
            key_origin: Some(key.record.origin.clone()),
        })
    }

    /// The checks of Encapsulate and Decapsulate.
    fn kem_key(
        &self,
        caller: &Caller,
        key_id: &Option<String>,
        access: &Access<'_>,
    ) -> Result<Arc<CachedKey>, KmsError> {
        let key = self.resolve_any(caller, key_id.as_deref().unwrap_or_default(), access)?;
        require_enabled(&key)?;
        require_usable(&key)?;
        require_usage(&key, keyspec::ENCAPSULATE_DECAPSULATE, access.action)?;
        Ok(key)
    }

    pub async fn encapsulate(
        &self,
        caller: &Caller,
        req: EncapsulateRequest,
    ) -> Result<EncapsulateResponse, KmsError> {
        let mut v = Violations::new();
        check_key_id(&mut v, "KeyId", &req.key_id);
        v.required("EncapsulationAlgorithm", &req.encapsulation_algorithm)
            .one_of(
                "EncapsulationAlgorithm",
                req.encapsulation_algorithm.as_deref(),
                ENCAPSULATION_ALGORITHMS,
            );
        check_grant_tokens(&mut v, &req.grant_tokens);
        v.finish()?;
        let access = Access::new("Encapsulate");
        self.before_using(caller, &req.grant_tokens, &req.key_id, &access)
            .await?;
        let key = self.kem_key(caller, &req.key_id, &access)?;
        dry_run(req.dry_run)?;
        let (ciphertext, secret) = private_key(&key)?.encapsulate()?;
        self.record_use(&key, "Encapsulate", caller);
        Ok(EncapsulateResponse {
            key_id: Some(key.arn.clone()),
            shared_secret: Some(Blob(secret)),
            shared_secret_ciphertext_blob: Some(Blob::new(ciphertext)),
            encapsulation_algorithm: req.encapsulation_algorithm,
        })
    }

    pub async fn decapsulate(
        &self,
        caller: &Caller,
        req: DecapsulateRequest,
    ) -> Result<DecapsulateResponse, KmsError> {
        let mut v = Violations::new();
        check_key_id(&mut v, "KeyId", &req.key_id);
        v.required(
            "SharedSecretCiphertextBlob",
            &req.shared_secret_ciphertext_blob,
        )
        .blob_len(
            "SharedSecretCiphertextBlob",
            req.shared_secret_ciphertext_blob
                .as_ref()
                .map(Blob::as_slice),
            1,
            6144,
        )
        .required("EncapsulationAlgorithm", &req.encapsulation_algorithm)
        .one_of(
            "EncapsulationAlgorithm",
            req.encapsulation_algorithm.as_deref(),
            ENCAPSULATION_ALGORITHMS,
        );
        check_grant_tokens(&mut v, &req.grant_tokens);
        v.finish()?;
        let access = Access::new("Decapsulate");
        self.before_using(caller, &req.grant_tokens, &req.key_id, &access)
            .await?;
        let key = self.kem_key(caller, &req.key_id, &access)?;
        let private = private_key(&key)?;
        let ciphertext = req.shared_secret_ciphertext_blob.unwrap_or_default();
        if Some(ciphertext.as_slice().len()) != private.kem_ciphertext_len() {
            return Err(KmsError::InvalidCiphertext);
        }
        dry_run(req.dry_run)?;
        let secret = private.decapsulate(ciphertext.as_slice())?;
        self.record_use(&key, "Decapsulate", caller);
        Ok(DecapsulateResponse {
            key_id: Some(key.arn.clone()),
            shared_secret: Some(Blob(secret)),
            encapsulation_algorithm: req.encapsulation_algorithm,
        })
    }

    /// The shared body of GenerateDataKeyPair and GenerateDataKeyPairWithoutPlaintext.
    async fn generate_data_key_pair_inner(
        &self,
        caller: &Caller,
        req: GenerateDataKeyPairRequest,
        op: &'static str,
    ) -> Result<GenerateDataKeyPairResponse, KmsError> {
        let mut v = Violations::new();
        check_key_id(&mut v, "KeyId", &req.key_id);
        v.required("KeyPairSpec", &req.key_pair_spec).one_of(
            "KeyPairSpec",
            req.key_pair_spec.as_deref(),
            DATA_KEY_PAIR_SPECS,
        );
        check_grant_tokens(&mut v, &req.grant_tokens);
        v.finish()?;
        let pair_spec = req.key_pair_spec.unwrap_or_default();
        let Some(KeyKind::Asymmetric(spec)) = keyspec::kind(&pair_spec) else {
            return Err(KmsError::Validation(format!(
                "KeyPairSpec {pair_spec} is only available in the China Regions."
            )));
        };
        refuse_recipient(&req.recipient)?;
        let context = req.encryption_context.unwrap_or_default();
        let access = Access::with(
            op,
            Facts {
                encryption_context: some_context(&context),
                encryption_algorithm: Some(super::crypto::SYMMETRIC_DEFAULT),
                data_key_pair_spec: Some(&pair_spec),
                ..Facts::default()
            },
        );
        let key = self
            .key_for_use(caller, &req.grant_tokens, &req.key_id, &access)
            .await?;
        require_enabled(&key)?;
        require_usable(&key)?;
        super::crypto::require_symmetric_encryption(&key, None, op)?;
        dry_run(req.dry_run)?;
        let private = self.keypool.take(spec).await?;
        let public = trent_crypto::asymmetric::public_key_der(spec, &private)?;
        let (blob, material) = self.seal(&key, &context, &private)?;
        self.record_use(&key, op, caller);
        Ok(GenerateDataKeyPairResponse {
            private_key_ciphertext_blob: Some(blob),
            private_key_plaintext: Some(Blob(private)),
            public_key: Some(Blob::new(public)),
            key_id: Some(key.arn.clone()),
            key_pair_spec: Some(pair_spec),
            key_material_id: Some(material),
        })
    }

    pub async fn generate_data_key_pair(
        &self,
        caller: &Caller,
        req: GenerateDataKeyPairRequest,
    ) -> Result<GenerateDataKeyPairResponse, KmsError> {
        self.generate_data_key_pair_inner(caller, req, "GenerateDataKeyPair")
            .await
    }

    pub async fn generate_data_key_pair_without_plaintext(
        &self,
        caller: &Caller,
        mut req: GenerateDataKeyPairRequest,
    ) -> Result<GenerateDataKeyPairResponse, KmsError> {
        // Recipient is not a member of this operation: ignored like any unknown member.
        req.recipient = None;
        let mut out = self
            .generate_data_key_pair_inner(caller, req, "GenerateDataKeyPairWithoutPlaintext")
            .await?;
        out.private_key_plaintext = None;
        Ok(out)
    }
}

/// Message, KeyId and MacAlgorithm of GenerateMac and VerifyMac, in the model's member order.
fn check_mac_members(
    v: &mut Violations,
    message: &Option<Blob>,
    key_id: &Option<String>,
    algorithm: &Option<String>,
) {
    v.required("Message", message).blob_len(
        "Message",
        message.as_ref().map(Blob::as_slice),
        1,
        4096,
    );
    check_key_id(v, "KeyId", key_id);
    v.required("MacAlgorithm", algorithm).one_of(
        "MacAlgorithm",
        algorithm.as_deref(),
        MAC_ALGORITHMS,
    );
}

fn digest_length(algorithm: &str) -> KmsError {
    KmsError::Validation(format!(
        "Digest is invalid length for algorithm {algorithm}."
    ))
}

fn sign_error(e: SignError) -> KmsError {
    match e {
        SignError::Crypto(c) => c.into(),
        other => {
            tracing::error!(error = %other, "a signing request passed validation but the key refused it");
            KmsError::Internal("An internal error occurred. Retry the request.".into())
        }
    }
}
