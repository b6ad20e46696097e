//! The canonical, unambiguous encoding of an encryption context, used as AAD.
//!
//! `u32` big-endian pair count, then for each pair in byte order of the key: `u32` key length,
//! key bytes, `u32` value length, value bytes. Length prefixes make `{"ab":"c"}` and `{"a":"bc"}`
//! encode differently; sorting makes the order a client sent irrelevant.

use std::collections::BTreeMap;

/// An encryption context as the service holds it: sorted by key.
pub type EncryptionContext = BTreeMap<String, String>;

/// Encode `context` canonically.
pub fn canonical(context: &EncryptionContext) -> Vec<u8> {
    let size = 4 + context
        .iter()
        .map(|(k, v)| 8 + k.len() + v.len())
        .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(context.len() as u32).to_be_bytes());
    for (k, v) in context {
        out.extend_from_slice(&(k.len() as u32).to_be_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&(v.len() as u32).to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn empty_context_is_a_zero_count() {
        assert_eq!(canonical(&ctx(&[])), vec![0, 0, 0, 0]);
    }

    #[test]
    fn shifted_boundaries_encode_differently() {
        assert_ne!(
            canonical(&ctx(&[("ab", "c")])),
            canonical(&ctx(&[("a", "bc")]))
        );
    }

    #[test]
    fn insertion_order_does_not_matter() {
        let mut a = EncryptionContext::new();
        a.insert("z".into(), "1".into());
        a.insert("a".into(), "2".into());
        let mut b = EncryptionContext::new();
        b.insert("a".into(), "2".into());
        b.insert("z".into(), "1".into());
        assert_eq!(canonical(&a), canonical(&b));
    }

    #[test]
    fn exact_bytes() {
        assert_eq!(
            canonical(&ctx(&[("k", "vv")])),
            vec![0, 0, 0, 1, 0, 0, 0, 1, b'k', 0, 0, 0, 2, b'v', b'v']
        );
    }
}
