//! GetKeyPolicy, PutKeyPolicy, ListKeyPolicies, with the key policy lockout safety check.

use super::*;
use crate::api::*;
use crate::ids::Caller;
use crate::policy;
use crate::service::Kms;
use crate::validate::Violations;

/// The only policy name a KMS key has.
pub const POLICY_NAME: &str = "default";

/// The model constraints of PolicyName.
fn check_policy_name(v: &mut Violations, name: &Option<String>) {
    v.str_len("PolicyName", name.as_deref(), 1, 128).pattern(
        "PolicyName",
        name.as_deref(),
        |s| s.chars().all(|c| c.is_alphanumeric() || c == '_'),
        "[\\w]+",
    );
}

/// A key has one policy, named `default`.
fn require_default_name(name: &Option<String>) -> Result<(), KmsError> {
    match name.as_deref() {
        None | Some(POLICY_NAME) => Ok(()),
        Some(other) => Err(KmsError::NotFound(format!(
            "No such policy exists: {other}"
        ))),
    }
}

impl Kms {
    pub async fn get_key_policy(
        &self,
        caller: &Caller,
        req: GetKeyPolicyRequest,
    ) -> Result<GetKeyPolicyResponse, KmsError> {
        let mut v = Violations::new();
        check_key_id(&mut v, "KeyId", &req.key_id);
        check_policy_name(&mut v, &req.policy_name);
        v.finish()?;
        let key = self.resolve_key(
            caller,
            req.key_id.as_deref().unwrap_or_default(),
            &Access::new("GetKeyPolicy"),
        )?;
        require_default_name(&req.policy_name)?;
        Ok(GetKeyPolicyResponse {
            policy: Some(key.record.policy.clone()),
            policy_name: Some(POLICY_NAME.into()),
        })
    }

    pub async fn put_key_policy(
        &self,
        caller: &Caller,
        req: PutKeyPolicyRequest,
    ) -> Result<Empty, KmsError> {
        let mut v = Violations::new();
        check_key_id(&mut v, "KeyId", &req.key_id);
        v.required("Policy", &req.policy)
            .str_len("Policy", req.policy.as_deref(), 1, 131_072);
        check_policy_name(&mut v, &req.policy_name);
        v.finish()?;
        let text = req.policy.unwrap_or_default();
        let bypass = req.bypass_policy_lockout_safety_check;
        let access = Access::with(
            "PutKeyPolicy",
            Facts {
                bypass_lockout: bypass,
                ..Facts::default()
            },
        );
        self.write_key(
            caller,
            req.key_id.as_deref().unwrap_or_default(),
            &access,
            |r, _| {
                require_default_name(&req.policy_name)?;
                let parsed = policy::parse(&text)?;
                if bypass != Some(true) {
                    self.check_lockout(caller, &parsed, r)?;
                }
                r.policy = text;
                Ok(())
            },
        )
        .await?;
        Ok(Empty {})
    }

    pub async fn list_key_policies(
        &self,
        caller: &Caller,
        req: ListKeyPoliciesRequest,
    ) -> Result<ListKeyPoliciesResponse, KmsError> {
        let mut v = Violations::new();
        check_key_id(&mut v, "KeyId", &req.key_id);
        check_paging(&mut v, req.limit, &req.marker, 1000);
        v.finish()?;
        self.resolve_key(
            caller,
            req.key_id.as_deref().unwrap_or_default(),
            &Access::new("ListKeyPolicies"),
        )?;
        let (policy_names, next_marker) = page(
            vec![POLICY_NAME.to_string()],
            |n| n.as_str(),
            &req.marker,
            req.limit.unwrap_or(100) as usize,
        )?;
        Ok(ListKeyPoliciesResponse {
            policy_names,
            truncated: next_marker.is_some(),
            next_marker,
        })
    }
}
