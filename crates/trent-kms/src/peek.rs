//! What the front end may learn of a request's key before the request runs: the kind of key it
//! names in the caller's own account, from the in-memory view, authorizing nothing (the request
//! quota of a cryptographic operation depends on it).

use crate::ids::Caller;
use crate::keyspec::{self, KeyKind};
use crate::service::Kms;

impl Kms {
    /// The kind of the key that `key_id` (a key id, key ARN, alias name or alias ARN) names in
    /// the caller's own account and Region. `None` for a name that names no key there, and for
    /// any reference to another account's key, so that the answer (and whatever the caller sees
    /// of it) says nothing about other accounts' keys.
    ///
    /// It runs on every cryptographic request, so it reads the name in place (no allocation);
    /// a name the operation would refuse as malformed simply names no key here.
    pub fn own_key_kind(&self, caller: &Caller, key_id: &str) -> Option<KeyKind> {
        // arn:<partition>:kms:<region>:<account>:<key/id or alias/name>, or the bare resource.
        let (account, resource) = match key_id.strip_prefix("arn:") {
            Some(rest) => {
                let mut parts = rest.splitn(5, ':');
                let (_partition, service, region) = (parts.next()?, parts.next()?, parts.next()?);
                let (account, resource) = (parts.next()?, parts.next()?);
                if service != "kms" || region != caller.region {
                    return None;
                }
                (account, resource.strip_prefix("key/").unwrap_or(resource))
            }
            None => (caller.account.as_str(), key_id),
        };
        if account != caller.account {
            return None;
        }
        let view = self.view.read();
        let scope = view.scope(&caller.account, &caller.region)?;
        let id = if resource.starts_with("alias/") {
            scope.aliases.get(resource)?.key_id.as_str()
        } else {
            resource
        };
        keyspec::kind(&scope.keys.get(id)?.record.key_spec)
    }
}

#[cfg(test)]
mod tests {
    use crate::ids::Caller;
    use crate::keyspec::KeyKind;
    use crate::{Kms, api};
    use std::sync::Arc;
    use trent_crypto::asymmetric::AsymmetricSpec;

    async fn kms() -> Kms {
        let store = Arc::new(trent_store::SqliteStore::open_in_memory().unwrap());
        let root = Arc::new(trent_crypto::LocalRootKey::ephemeral().unwrap());
        Kms::open(store, root).await.unwrap()
    }

    #[tokio::test]
    async fn the_kind_of_own_keys_only() {
        let kms = kms().await;
        let alice = Caller::new(
            "111122223333",
            "us-east-1",
            "arn:aws:iam::111122223333:root",
        );
        let req: api::CreateKeyRequest =
            serde_json::from_str(r#"{"KeySpec":"ECC_NIST_P256","KeyUsage":"SIGN_VERIFY"}"#)
                .unwrap();
        let ecc = kms
            .create_key(&alice, req)
            .await
            .unwrap()
            .key_metadata
            .unwrap();
        let sym = kms
            .create_key(&alice, api::CreateKeyRequest::default())
            .await
            .unwrap()
            .key_metadata
            .unwrap();
        let alias: api::AliasRequest = serde_json::from_value(serde_json::json!({
            "AliasName": "alias/signing", "TargetKeyId": ecc.key_id
        }))
        .unwrap();
        kms.create_alias(&alice, alias).await.unwrap();

        let p256 = Some(KeyKind::Asymmetric(AsymmetricSpec::EccNistP256));
        assert_eq!(kms.own_key_kind(&alice, &ecc.key_id), p256);
        assert_eq!(kms.own_key_kind(&alice, &ecc.arn), p256);
        assert_eq!(kms.own_key_kind(&alice, "alias/signing"), p256);
        assert_eq!(
            kms.own_key_kind(&alice, "arn:aws:kms:us-east-1:111122223333:alias/signing"),
            p256
        );
        assert_eq!(
            kms.own_key_kind(&alice, &sym.key_id),
            Some(KeyKind::Symmetric)
        );
        assert_eq!(kms.own_key_kind(&alice, "alias/none"), None);
        assert_eq!(kms.own_key_kind(&alice, "not a key"), None);
        assert_eq!(kms.own_key_kind(&alice, "arn:aws:kms:us-east-1"), None);
        assert_eq!(
            kms.own_key_kind(&alice, &ecc.arn.replace(":kms:", ":iam:")),
            None
        );

        // Another account, or another Region, learns nothing, even naming the key exactly.
        let bob = Caller::new(
            "444455556666",
            "us-east-1",
            "arn:aws:iam::444455556666:root",
        );
        assert_eq!(kms.own_key_kind(&bob, &ecc.arn), None);
        assert_eq!(
            kms.own_key_kind(&bob, "arn:aws:kms:us-east-1:111122223333:alias/signing"),
            None
        );
        assert_eq!(kms.own_key_kind(&bob, &ecc.key_id), None);
        let west = Caller::new(
            "111122223333",
            "eu-west-1",
            "arn:aws:iam::111122223333:root",
        );
        assert_eq!(kms.own_key_kind(&west, &ecc.key_id), None);
    }
}
