//! TagResource, UntagResource, ListResourceTags, and the tag rules CreateKey shares.

use super::*;
use crate::api::*;
use crate::ids::Caller;
use crate::service::Kms;
use crate::validate::Violations;

/// Most tags one key may carry.
pub const MAX_TAGS: usize = 50;

/// Model constraints of a tag list: both members required, key 1..128, value 0..256.
pub(crate) fn check_tag_shapes(v: &mut Violations, tags: &Option<Vec<Tag>>) {
    for (i, t) in tags.iter().flatten().enumerate() {
        let key_path = format!("Tags.{}.member.TagKey", i + 1);
        let value_path = format!("Tags.{}.member.TagValue", i + 1);
        v.required(&key_path, &t.tag_key)
            .str_len(&key_path, t.tag_key.as_deref(), 1, 128)
            .required(&value_path, &t.tag_value)
            .str_len(&value_path, t.tag_value.as_deref(), 0, 256);
    }
}

/// Tag keys beginning with `aws:`, in any case, belong to AWS.
fn is_reserved(key: &str) -> bool {
    key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:"))
}

/// `existing` with `new` applied (a key already present gets the new value), under the tag rules.
pub(crate) fn merge_tags(
    existing: &[(String, String)],
    new: &[Tag],
) -> Result<Vec<(String, String)>, KmsError> {
    let mut seen = std::collections::HashSet::new();
    for t in new {
        let key = t.tag_key.as_deref().unwrap_or_default();
        if !seen.insert(key) {
            return Err(KmsError::Tag("Duplicate tag keys".into()));
        }
        if is_reserved(key) {
            return Err(KmsError::Tag(
                "Tags beginning with aws: are reserved".into(),
            ));
        }
    }
    let mut out = existing.to_vec();
    for t in new {
        let key = t.tag_key.clone().unwrap_or_default();
        let value = t.tag_value.clone().unwrap_or_default();
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => out.push((key, value)),
        }
    }
    if out.len() > MAX_TAGS {
        return Err(KmsError::Tag("Too many tags".into()));
    }
    Ok(out)
}

impl Kms {
    pub async fn tag_resource(
        &self,
        caller: &Caller,
        req: TagResourceRequest,
    ) -> Result<Empty, KmsError> {
        let mut v = Violations::new();
        check_key_id(&mut v, "KeyId", &req.key_id);
        v.required("Tags", &req.tags);
        check_tag_shapes(&mut v, &req.tags);
        v.finish()?;
        let tags = req.tags.unwrap_or_default();
        self.write_key(
            caller,
            req.key_id.as_deref().unwrap_or_default(),
            &Access::with(
                "TagResource",
                Facts {
                    request_tags: Some(&tags),
                    ..Facts::default()
                },
            ),
            |r, arn| {
                refuse_pending_deletion(r.state, arn)?;
                r.tags = merge_tags(&r.tags, &tags)?;
                Ok(())
            },
        )
        .await?;
        Ok(Empty {})
    }

    pub async fn untag_resource(
        &self,
        caller: &Caller,
        req: UntagResourceRequest,
    ) -> Result<Empty, KmsError> {
        let mut v = Violations::new();
        check_key_id(&mut v, "KeyId", &req.key_id);
        v.required("TagKeys", &req.tag_keys);
        for (i, k) in req.tag_keys.iter().flatten().enumerate() {
            v.str_len(&format!("TagKeys.{}.member", i + 1), Some(k), 1, 128);
        }
        v.finish()?;
        let keys = req.tag_keys.unwrap_or_default();
        self.write_key(
            caller,
            req.key_id.as_deref().unwrap_or_default(),
            &Access::with(
                "UntagResource",
                Facts {
                    tag_keys: Some(&keys),
                    ..Facts::default()
                },
            ),
            |r, arn| {
                refuse_pending_deletion(r.state, arn)?;
                if keys.iter().any(|k| is_reserved(k)) {
                    return Err(KmsError::Tag(
                        "Tags beginning with aws: are reserved".into(),
                    ));
                }
                r.tags.retain(|(k, _)| !keys.contains(k));
                Ok(())
            },
        )
        .await?;
        Ok(Empty {})
    }

    pub async fn list_resource_tags(
        &self,
        caller: &Caller,
        req: ListResourceTagsRequest,
    ) -> Result<ListResourceTagsResponse, KmsError> {
        let mut v = Violations::new();
        check_key_id(&mut v, "KeyId", &req.key_id);
        check_paging(&mut v, req.limit, &req.marker, 50);
        v.finish()?;
        let key = self.resolve_key(
            caller,
            req.key_id.as_deref().unwrap_or_default(),
            &Access::new("ListResourceTags"),
        )?;
        let mut tags: Vec<Tag> = key
            .record
            .tags
            .iter()
            .map(|(k, v)| Tag {
                tag_key: Some(k.clone()),
                tag_value: Some(v.clone()),
            })
            .collect();
        tags.sort_by(|a, b| a.tag_key.cmp(&b.tag_key));
        let (tags, next_marker) = page(
            tags,
            |t| t.tag_key.as_deref().unwrap_or_default(),
            &req.marker,
            req.limit.unwrap_or(50) as usize,
        )?;
        Ok(ListResourceTagsResponse {
            tags,
            truncated: next_marker.is_some(),
            next_marker,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            tag_key: Some(k.into()),
            tag_value: Some(v.into()),
        }
    }

    #[test]
    fn tagging_an_existing_key_replaces_its_value() {
        let merged =
            merge_tags(&[("a".into(), "1".into())], &[tag("a", "2"), tag("b", "3")]).unwrap();
        assert_eq!(
            merged,
            vec![("a".into(), "2".into()), ("b".into(), "3".into())]
        );
    }

    #[test]
    fn tag_rules() {
        assert_eq!(
            merge_tags(&[], &[tag("a", "1"), tag("a", "2")]),
            Err(KmsError::Tag("Duplicate tag keys".into()))
        );
        assert_eq!(
            merge_tags(&[], &[tag("AWS:x", "1")]),
            Err(KmsError::Tag(
                "Tags beginning with aws: are reserved".into()
            ))
        );
        let fifty: Vec<Tag> = (0..50).map(|i| tag(&format!("k{i}"), "v")).collect();
        let full = merge_tags(&[], &fifty).unwrap();
        assert_eq!(
            merge_tags(&full, &[tag("k0", "changed")]).unwrap().len(),
            50
        );
        assert_eq!(
            merge_tags(&full, &[tag("one-more", "v")]),
            Err(KmsError::Tag("Too many tags".into()))
        );
    }
}
