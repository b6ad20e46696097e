//! The one error enum of the service. Each variant is one AWS error name; [`KmsError::name`],
//! [`KmsError::message`] and [`KmsError::status`] are the single mapping to the wire.

/// Every error a KMS request can end in, named as AWS names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KmsError {
    #[error("NotFoundException: {0}")]
    NotFound(String),
    #[error("DisabledException: {0}")]
    Disabled(String),
    #[error("KMSInvalidStateException: {0}")]
    InvalidState(String),
    /// Sent with no message, as AWS does.
    #[error("InvalidCiphertextException")]
    InvalidCiphertext,
    #[error("IncorrectKeyException: {0}")]
    IncorrectKey(String),
    /// A signature that does not verify. Sent with no message, as AWS does.
    #[error("KMSInvalidSignatureException")]
    InvalidKmsSignature,
    /// A MAC that does not verify. Sent with no message, as AWS does.
    #[error("KMSInvalidMacException")]
    InvalidMac,
    #[error("InvalidKeyUsageException: {0}")]
    InvalidKeyUsage(String),
    #[error("ValidationException: {0}")]
    Validation(String),
    #[error("AlreadyExistsException: {0}")]
    AlreadyExists(String),
    #[error("InvalidAliasNameException: {0}")]
    InvalidAliasName(String),
    #[error("NotAuthorizedException")]
    NotAuthorized,
    #[error("TagException: {0}")]
    Tag(String),
    #[error("UnsupportedOperationException: {0}")]
    UnsupportedOperation(String),
    #[error("MalformedPolicyDocumentException: {0}")]
    MalformedPolicyDocument(String),
    #[error("LimitExceededException: {0}")]
    LimitExceeded(String),
    #[error("InvalidMarkerException: {0}")]
    InvalidMarker(String),
    #[error("CustomKeyStoreNotFoundException: {0}")]
    CustomKeyStoreNotFound(String),
    #[error("DryRunOperationException")]
    DryRun,
    #[error("AccessDeniedException: {0}")]
    AccessDenied(String),
    #[error("InvalidGrantTokenException: {0}")]
    InvalidGrantToken(String),
    #[error("InvalidGrantIdException: {0}")]
    InvalidGrantId(String),
    #[error("SerializationException: {0}")]
    Serialization(String),
    #[error("UnknownOperationException")]
    UnknownOperation,
    #[error("MissingAuthenticationTokenException: {0}")]
    MissingAuthenticationToken(String),
    #[error("IncompleteSignatureException: {0}")]
    IncompleteSignature(String),
    #[error("InvalidSignatureException: {0}")]
    InvalidSignature(String),
    #[error("UnrecognizedClientException")]
    UnrecognizedClient,
    #[error("RequestEntityTooLargeException")]
    RequestEntityTooLarge,
    #[error("RequestTimeoutException")]
    RequestTimeout,
    /// A request over its account's quota for its Region and quota class.
    #[error("ThrottlingException")]
    Throttling,
    #[error("ConflictException: {0}")]
    Conflict(String),
    #[error("ExpiredImportTokenException: {0}")]
    ExpiredImportToken(String),
    #[error("InvalidImportTokenException: {0}")]
    InvalidImportToken(String),
    #[error("IncorrectKeyMaterialException: {0}")]
    IncorrectKeyMaterial(String),
    /// A failure inside trent (storage, crypto library). Retryable.
    #[error("KMSInternalException: {0}")]
    Internal(String),
}

impl KmsError {
    /// The AWS error name, sent as `__type` and `X-Amzn-ErrorType`.
    pub fn name(&self) -> &'static str {
        use KmsError::*;
        match self {
            NotFound(_) => "NotFoundException",
            Disabled(_) => "DisabledException",
            InvalidState(_) => "KMSInvalidStateException",
            InvalidCiphertext => "InvalidCiphertextException",
            IncorrectKey(_) => "IncorrectKeyException",
            InvalidKmsSignature => "KMSInvalidSignatureException",
            InvalidMac => "KMSInvalidMacException",
            InvalidKeyUsage(_) => "InvalidKeyUsageException",
            Validation(_) => "ValidationException",
            AlreadyExists(_) => "AlreadyExistsException",
            InvalidAliasName(_) => "InvalidAliasNameException",
            NotAuthorized => "NotAuthorizedException",
            Tag(_) => "TagException",
            UnsupportedOperation(_) => "UnsupportedOperationException",
            MalformedPolicyDocument(_) => "MalformedPolicyDocumentException",
            LimitExceeded(_) => "LimitExceededException",
            InvalidMarker(_) => "InvalidMarkerException",
            CustomKeyStoreNotFound(_) => "CustomKeyStoreNotFoundException",
            DryRun => "DryRunOperationException",
            AccessDenied(_) => "AccessDeniedException",
            InvalidGrantToken(_) => "InvalidGrantTokenException",
            InvalidGrantId(_) => "InvalidGrantIdException",
            Serialization(_) => "SerializationException",
            UnknownOperation => "UnknownOperationException",
            MissingAuthenticationToken(_) => "MissingAuthenticationTokenException",
            IncompleteSignature(_) => "IncompleteSignatureException",
            InvalidSignature(_) => "InvalidSignatureException",
            UnrecognizedClient => "UnrecognizedClientException",
            RequestEntityTooLarge => "RequestEntityTooLargeException",
            RequestTimeout => "RequestTimeoutException",
            Throttling => "ThrottlingException",
            Conflict(_) => "ConflictException",
            ExpiredImportToken(_) => "ExpiredImportTokenException",
            InvalidImportToken(_) => "InvalidImportTokenException",
            IncorrectKeyMaterial(_) => "IncorrectKeyMaterialException",
            Internal(_) => "KMSInternalException",
        }
    }

    /// The message sent to the client, if any. Never carries a secret. An empty message (AWS
    /// answers some errors "with an empty message") is sent as no message at all, the shape AWS
    /// gives its message-less errors (InvalidCiphertextException, KMSInvalidSignatureException:
    /// no `message` member); boto3 shows `Message: ""` for both.
    pub fn message(&self) -> Option<String> {
        self.message_text().filter(|m| !m.is_empty())
    }

    fn message_text(&self) -> Option<String> {
        use KmsError::*;
        match self {
            InvalidCiphertext | InvalidKmsSignature | InvalidMac | NotAuthorized
            | UnknownOperation => None,
            DryRun => {
                Some("The request would have succeeded, but the DryRun option is set.".into())
            }
            UnrecognizedClient => {
                Some("The security token included in the request is invalid.".into())
            }
            RequestEntityTooLarge => Some("Request body too large.".into()),
            RequestTimeout => Some("The request timed out.".into()),
            // AWS's words (developer guide, "Request quotas").
            Throttling => Some(
                "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls."
                    .into(),
            ),
            NotFound(m)
            | Disabled(m)
            | InvalidState(m)
            | IncorrectKey(m)
            | InvalidKeyUsage(m)
            | Validation(m)
            | AlreadyExists(m)
            | InvalidAliasName(m)
            | Tag(m)
            | UnsupportedOperation(m)
            | MalformedPolicyDocument(m)
            | LimitExceeded(m)
            | InvalidMarker(m)
            | CustomKeyStoreNotFound(m)
            | AccessDenied(m)
            | InvalidGrantToken(m)
            | InvalidGrantId(m)
            | Serialization(m)
            | MissingAuthenticationToken(m)
            | IncompleteSignature(m)
            | InvalidSignature(m)
            | Conflict(m)
            | ExpiredImportToken(m)
            | InvalidImportToken(m)
            | IncorrectKeyMaterial(m)
            | Internal(m) => Some(m.clone()),
        }
    }

    /// The HTTP status: 400 for every client error (authentication failures included), as KMS
    /// sends; 413 for a body over the limit, 408 for a request that timed out, 500 for internal
    /// errors.
    pub fn status(&self) -> u16 {
        match self {
            KmsError::Internal(_) => 500,
            KmsError::RequestTimeout => 408,
            KmsError::RequestEntityTooLarge => 413,
            _ => 400,
        }
    }
}

impl From<trent_store::StoreError> for KmsError {
    fn from(e: trent_store::StoreError) -> Self {
        if let trent_store::StoreError::Refused(message) = e {
            return KmsError::Internal(message);
        }
        tracing::error!(error = %e, "store failure");
        KmsError::Internal("An internal error occurred. Retry the request.".into())
    }
}

impl From<trent_crypto::CryptoError> for KmsError {
    fn from(e: trent_crypto::CryptoError) -> Self {
        match e {
            trent_crypto::CryptoError::InvalidCiphertext => KmsError::InvalidCiphertext,
            other => {
                tracing::error!(error = %other, "crypto failure");
                KmsError::Internal("An internal error occurred. Retry the request.".into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dry_run_has_the_aws_message() {
        assert_eq!(KmsError::DryRun.name(), "DryRunOperationException");
        assert_eq!(
            KmsError::DryRun.message().unwrap(),
            "The request would have succeeded, but the DryRun option is set."
        );
        assert_eq!(KmsError::DryRun.status(), 400);
    }

    #[test]
    fn invalid_ciphertext_has_no_message() {
        assert_eq!(KmsError::InvalidCiphertext.message(), None);
        assert_eq!(KmsError::InvalidCiphertext.status(), 400);
    }

    #[test]
    fn an_empty_message_is_no_message() {
        assert_eq!(
            KmsError::UnsupportedOperation(String::new()).message(),
            None
        );
        assert_eq!(KmsError::Validation(String::new()).message(), None);
        assert_eq!(
            KmsError::Validation("x".into()).message().as_deref(),
            Some("x")
        );
    }

    #[test]
    fn internal_is_a_500() {
        let e = KmsError::Internal("x".into());
        assert_eq!((e.name(), e.status()), ("KMSInternalException", 500));
    }
}
