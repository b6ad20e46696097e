//! Principals: access key ids mapped to IAM-style ARNs, with secrets kept under the root key, and
//! the identity policies of each ARN.

use crate::error::KmsError;
use crate::policy::{self, Kind, Policy};
use base64::Engine;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use trent_crypto::{RootKey, SecretString, primitives};
use trent_store::{IdentityPolicyRow, PrincipalRow, Store};
use zeroize::Zeroizing;

/// An authenticated identity, its secret unwrapped for SigV4 (in secret memory: out of core
/// dumps and swap).
pub struct Principal {
    pub access_key_id: String,
    pub arn: String,
    pub account: String,
    pub secret: SecretString,
    pub created_at: i64,
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Principal")
            .field("access_key_id", &self.access_key_id)
            .field("arn", &self.arn)
            .field("secret", &"[REDACTED]")
            .finish()
    }
}

fn secret_aad(access_key_id: &str) -> Vec<u8> {
    format!("trent/v1/principal-secret|{access_key_id}").into_bytes()
}

/// The account of a principal ARN (`arn:<partition>:iam::<account>:root|user/..|role/..`, in the
/// partition served), if valid.
pub fn principal_account(arn: &str) -> Option<&str> {
    let rest = arn
        .strip_prefix("arn:")?
        .strip_prefix(crate::ids::partition())?
        .strip_prefix(":iam::")?;
    let (account, resource) = rest.split_once(':')?;
    let valid_account = crate::ids::is_account_id(account);
    let valid_name = |n: &str| {
        !n.is_empty()
            && n.len() <= 512
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b))
    };
    let valid_resource = resource == "root"
        || resource.strip_prefix("user/").is_some_and(valid_name)
        || resource.strip_prefix("role/").is_some_and(valid_name);
    (valid_account && valid_resource).then_some(account)
}

/// Store look-ups for access key ids missing from the cache, at most this many per second: the
/// cache is refreshed every few seconds anyway, and unauthenticated requests with random ids must
/// not be able to keep the store busy.
const MISS_LOOKUPS_PER_SECOND: u32 = 20;

/// Every principal, cached; the store is read only on a refresh or a (rate-limited) miss.
pub struct Principals {
    store: Arc<dyn Store>,
    root: Arc<dyn RootKey>,
    cache: RwLock<HashMap<String, Arc<Principal>>>,
    /// principal ARN -> its identity policies, parsed.
    policies: RwLock<HashMap<String, Arc<[Policy]>>>,
    misses: parking_lot::Mutex<(std::time::Instant, u32)>,
    /// Access key ids whose stored secret does not unwrap (a damaged row): left out, and logged
    /// once rather than at every refresh.
    unreadable: parking_lot::Mutex<std::collections::HashSet<(String, i64)>>,
}

/// The ARNs identity policies may be attached to: IAM users and roles (an account's root user
/// holds every permission of its account already).
fn check_policy_holder(arn: &str) -> Result<(), KmsError> {
    if principal_account(arn).is_none() || arn.ends_with(":root") {
        return Err(not_a_principal(
            arn,
            "a user or role ARN",
            ":user/<name> or :role/<name>",
        ));
    }
    Ok(())
}

/// ValidationException for an ARN that is not a principal of the partition served: `what` it
/// should be and the `forms` it may take after `arn:<partition>:iam::<12 digits>`. An ARN of
/// another partition is told so.
fn not_a_principal(arn: &str, what: &str, forms: &str) -> KmsError {
    let served = crate::ids::partition();
    let other = arn
        .strip_prefix("arn:")
        .and_then(|r| r.split_once(':'))
        .filter(|(p, rest)| *p != served && rest.starts_with("iam:"))
        .map(|(p, _)| p);
    KmsError::Validation(match other {
        Some(p) => format!(
            "'{arn}' is in partition {p}, and this trent serves partition {served} (--partition)"
        ),
        None => format!("'{arn}' is not {what} (arn:{served}:iam::<12 digits>{forms})"),
    })
}

/// The account of a principal ARN an access key may be given to, or ValidationException.
fn access_key_account(arn: &str) -> Result<String, KmsError> {
    principal_account(arn).map(str::to_string).ok_or_else(|| {
        not_a_principal(
            arn,
            "a principal ARN",
            ":root, :user/<name> or :role/<name>",
        )
    })
}

/// Identity policy names: 1 to 128 of `[\w+=,.@-]`, as IAM's.
fn check_policy_name(name: &str) -> Result<(), KmsError> {
    let ok = (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b));
    if !ok {
        return Err(KmsError::Validation(format!(
            "'{name}' is not a policy name (1 to 128 of letters, digits and _+=,.@-)"
        )));
    }
    Ok(())
}

impl Principals {
    pub fn new(store: Arc<dyn Store>, root: Arc<dyn RootKey>) -> Self {
        Self {
            store,
            root,
            cache: RwLock::new(HashMap::new()),
            policies: RwLock::new(HashMap::new()),
            misses: parking_lot::Mutex::new((std::time::Instant::now(), 0)),
            unreadable: parking_lot::Mutex::new(std::collections::HashSet::new()),
        }
    }

    /// The principal of a stored row, or `None` (logged once per row) if its secret does not
    /// unwrap under the root key: one damaged row costs its access key, not every principal.
    fn readable(&self, row: PrincipalRow) -> Option<Principal> {
        let (id, arn, created_at) = (row.access_key_id.clone(), row.arn.clone(), row.created_at);
        match self.unwrap_row(row) {
            Ok(p) => Some(p),
            Err(_) => {
                if self.unreadable.lock().insert((id.clone(), created_at)) {
                    tracing::error!(
                        access_key_id = %id,
                        arn = %arn,
                        "stored secret access key does not unwrap under the root key: this access key cannot sign requests"
                    );
                }
                None
            }
        }
    }

    /// Whether another miss may go to the store in this second.
    fn allow_miss_lookup(&self) -> bool {
        let mut m = self.misses.lock();
        if m.0.elapsed() >= std::time::Duration::from_secs(1) {
            *m = (std::time::Instant::now(), 0);
        }
        m.1 += 1;
        m.1 <= MISS_LOOKUPS_PER_SECOND
    }

    fn unwrap_row(&self, row: PrincipalRow) -> Result<Principal, KmsError> {
        let secret = self
            .root
            .unwrap(&secret_aad(&row.access_key_id), &row.wrapped_secret)?;
        let secret = std::str::from_utf8(&secret)
            .map_err(|_| KmsError::Internal("a stored secret is not UTF-8".into()))?;
        Ok(Principal {
            access_key_id: row.access_key_id,
            arn: row.arn,
            account: row.account,
            secret: SecretString::new(secret),
            created_at: row.created_at,
        })
    }

    /// Reload every principal and identity policy from the store (picks up changes an admin
    /// command made). A principal that did not change keeps its entry, and with it its cached
    /// signing keys.
    pub async fn refresh(&self) -> Result<(), KmsError> {
        self.refresh_policies().await?;
        let rows = self.store.list_principals().await?;
        let mut map = HashMap::with_capacity(rows.len());
        for row in rows {
            let unchanged = self
                .get(&row.access_key_id)
                .filter(|p| p.arn == row.arn && p.created_at == row.created_at);
            let p = match unchanged {
                Some(p) => p,
                None => match self.readable(row) {
                    Some(p) => Arc::new(p),
                    None => continue,
                },
            };
            map.insert(p.access_key_id.clone(), p);
        }
        *self.cache.write() = map;
        Ok(())
    }

    async fn refresh_policies(&self) -> Result<(), KmsError> {
        let mut by_arn: HashMap<String, Vec<Policy>> = HashMap::new();
        for row in self.store.list_identity_policies().await? {
            match policy::parse_kind(&row.document, Kind::Identity) {
                Ok(p) => by_arn.entry(row.arn).or_default().push(p),
                // Checked when written; one that no longer parses allows nothing.
                Err(e) => {
                    tracing::error!(arn = %row.arn, name = %row.name, error = %e, "identity policy does not parse")
                }
            }
        }
        *self.policies.write() = by_arn
            .into_iter()
            .map(|(arn, list)| (arn, Arc::from(list)))
            .collect();
        Ok(())
    }

    /// The identity policies of a principal ARN.
    pub fn policies_of(&self, arn: &str) -> Arc<[Policy]> {
        self.policies
            .read()
            .get(arn)
            .cloned()
            .unwrap_or_else(|| Arc::from(Vec::new()))
    }

    /// Attach (or replace) the identity policy `name` of a user or role ARN.
    pub async fn put_policy(
        &self,
        arn: &str,
        name: &str,
        document: &str,
        now: i64,
    ) -> Result<(), KmsError> {
        check_policy_holder(arn)?;
        check_policy_name(name)?;
        policy::parse_kind(document, Kind::Identity)?;
        self.store
            .put_identity_policy(IdentityPolicyRow {
                arn: arn.to_string(),
                name: name.to_string(),
                document: document.to_string(),
                updated_at: now,
            })
            .await?;
        self.refresh_policies().await
    }

    /// Detach an identity policy. Returns whether it existed.
    pub async fn delete_policy(&self, arn: &str, name: &str) -> Result<bool, KmsError> {
        let existed = self.store.delete_identity_policy(arn, name).await?;
        self.refresh_policies().await?;
        Ok(existed)
    }

    /// Every identity policy, as stored.
    pub async fn list_policies(&self) -> Result<Vec<IdentityPolicyRow>, KmsError> {
        Ok(self.store.list_identity_policies().await?)
    }

    /// The principal of an access key id, from the cache.
    pub fn get(&self, access_key_id: &str) -> Option<Arc<Principal>> {
        self.cache.read().get(access_key_id).cloned()
    }

    /// The principal of an access key id: the cache, else the store.
    pub async fn lookup(&self, access_key_id: &str) -> Result<Option<Arc<Principal>>, KmsError> {
        if let Some(p) = self.get(access_key_id) {
            return Ok(Some(p));
        }
        if !self.allow_miss_lookup() {
            return Ok(None);
        }
        let Some(row) = self.store.get_principal(access_key_id).await? else {
            return Ok(None);
        };
        let Some(p) = self.readable(row) else {
            return Ok(None);
        };
        let p = Arc::new(p);
        self.cache
            .write()
            .insert(p.access_key_id.clone(), p.clone());
        Ok(Some(p))
    }

    /// Create a principal with a new access key. Returns it, secret included: show it once.
    pub async fn create(&self, arn: &str, now: i64) -> Result<Arc<Principal>, KmsError> {
        let account = access_key_account(arn)?;
        let access_key_id = new_access_key_id()?;
        let secret = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .encode(primitives::random_bytes(30)?.as_slice()),
        );
        let wrapped_secret = self
            .root
            .wrap(&secret_aad(&access_key_id), secret.as_bytes())?;
        self.store
            .put_principal(PrincipalRow {
                access_key_id: access_key_id.clone(),
                arn: arn.to_string(),
                account: account.clone(),
                wrapped_secret,
                created_at: now,
            })
            .await?;
        let p = Arc::new(Principal {
            access_key_id,
            arn: arn.to_string(),
            account,
            secret: SecretString::new(&secret),
            created_at: now,
        });
        self.cache
            .write()
            .insert(p.access_key_id.clone(), p.clone());
        Ok(p)
    }

    /// Give `arn` the access key `access_key_id` with `secret` (from the config file): nothing
    /// to do if it has it already; a key id held by another ARN or secret is replaced.
    pub async fn import(
        &self,
        arn: &str,
        access_key_id: &str,
        secret: &str,
        now: i64,
    ) -> Result<(), KmsError> {
        let account = access_key_account(arn)?;
        let id_ok = (16..=128).contains(&access_key_id.len())
            && access_key_id.bytes().all(|b| b.is_ascii_alphanumeric());
        if !id_ok || secret.is_empty() {
            return Err(KmsError::Validation(
                "an access key id is 16 to 128 letters and digits, and its secret is not empty"
                    .into(),
            ));
        }
        if let Some(existing) = self.lookup(access_key_id).await? {
            if existing.arn == arn
                && trent_crypto::primitives::constant_time_eq(
                    existing.secret.as_bytes(),
                    secret.as_bytes(),
                )
            {
                return Ok(());
            }
            self.delete(access_key_id).await?;
        } else if self.store.get_principal(access_key_id).await?.is_some() {
            // Stored but unreadable: the file has the secret, so its row replaces the damaged one.
            self.delete(access_key_id).await?;
        }
        let wrapped_secret = self
            .root
            .wrap(&secret_aad(access_key_id), secret.as_bytes())?;
        self.store
            .put_principal(PrincipalRow {
                access_key_id: access_key_id.to_string(),
                arn: arn.to_string(),
                account,
                wrapped_secret,
                created_at: now,
            })
            .await?;
        self.refresh().await
    }

    /// Delete a principal's access key. Returns whether it existed.
    pub async fn delete(&self, access_key_id: &str) -> Result<bool, KmsError> {
        let existed = self.store.delete_principal(access_key_id).await?;
        self.cache.write().remove(access_key_id);
        Ok(existed)
    }

    /// Every principal in the store, secrets left wrapped.
    pub async fn list(&self) -> Result<Vec<PrincipalRow>, KmsError> {
        Ok(self.store.list_principals().await?)
    }
}

/// `AKIA` and 16 characters of the base32 alphabet, like an AWS access key id.
fn new_access_key_id() -> Result<String, KmsError> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let bytes: [u8; 16] = primitives::random_array()?;
    Ok(std::iter::once("AKIA".to_string())
        .chain(
            bytes
                .iter()
                .map(|b| (ALPHABET[(*b & 31) as usize] as char).to_string()),
        )
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_arns() {
        assert_eq!(
            principal_account("arn:aws:iam::111122223333:user/alice"),
            Some("111122223333")
        );
        assert_eq!(
            principal_account("arn:aws:iam::111122223333:role/ops/deployer"),
            Some("111122223333")
        );
        assert_eq!(
            principal_account("arn:aws:iam::111122223333:root"),
            Some("111122223333")
        );
        assert_eq!(
            principal_account("arn:aws:iam::11112222333:user/alice"),
            None
        );
        assert_eq!(principal_account("arn:aws:iam::111122223333:group/x"), None);
        assert_eq!(principal_account("arn:aws:iam::111122223333:user/"), None);
    }

    #[tokio::test]
    async fn a_damaged_secret_costs_its_access_key_only() {
        let store: Arc<dyn Store> = Arc::new(trent_store::SqliteStore::open_in_memory().unwrap());
        let root: Arc<dyn RootKey> = Arc::new(trent_crypto::LocalRootKey::ephemeral().unwrap());
        let principals = Principals::new(store.clone(), root.clone());
        let good = principals
            .create("arn:aws:iam::111122223333:user/good", 1)
            .await
            .unwrap();
        store
            .put_principal(PrincipalRow {
                access_key_id: "AKIADAMAGED000000000".into(),
                arn: "arn:aws:iam::111122223333:user/damaged".into(),
                account: "111122223333".into(),
                wrapped_secret: vec![1; 60],
                created_at: 1,
            })
            .await
            .unwrap();
        // A fresh cache (as at start): the damaged row is left out, the other principal serves.
        let principals = Principals::new(store.clone(), root);
        principals.refresh().await.unwrap();
        assert!(principals.get(&good.access_key_id).is_some());
        assert!(principals.get("AKIADAMAGED000000000").is_none());
        assert!(
            principals
                .lookup("AKIADAMAGED000000000")
                .await
                .unwrap()
                .is_none()
        );
        // The config file's secret for that access key replaces the damaged row.
        principals
            .import(
                "arn:aws:iam::111122223333:user/damaged",
                "AKIADAMAGED000000000",
                "the secret from the file",
                2,
            )
            .await
            .unwrap();
        let repaired = principals.get("AKIADAMAGED000000000").unwrap();
        assert_eq!(repaired.secret.as_str(), "the secret from the file");
    }

    #[test]
    fn access_key_ids_look_like_aws_ones() {
        let id = new_access_key_id().unwrap();
        assert_eq!(id.len(), 20);
        assert!(id.starts_with("AKIA"));
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let p = Principal {
            access_key_id: "AKIAEXAMPLE".into(),
            arn: "arn:aws:iam::111122223333:user/a".into(),
            account: "111122223333".into(),
            secret: SecretString::new("very-secret-value"),
            created_at: 0,
        };
        let shown = format!("{p:?}");
        assert!(!shown.contains("very-secret-value"));
        assert!(shown.contains("[REDACTED]"));
    }
}
