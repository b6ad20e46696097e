//! The hash chain: each line carries its sequence number and the SHA-256 of the line before it.

use serde::Deserialize;
use trent_crypto::primitives::sha256;

/// The `previousHash` of the very first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash a line passes on to the next: SHA-256 of its bytes (without the newline), in hex.
pub fn hash_line(line: &[u8]) -> String {
    hex::encode(sha256(line))
}

/// The record (a serialized JSON object, `{...}`) as one line, with
/// `"trentChain":{"sequence":..,"previousHash":..}` as its last member.
pub fn seal(object_json: &str, sequence: u64, previous_hash: &str) -> String {
    let body = object_json
        .trim()
        .strip_prefix('{')
        .and_then(|b| b.strip_suffix('}'))
        .unwrap_or("")
        .trim();
    let mut line = String::with_capacity(body.len() + 128);
    line.push('{');
    line.push_str(body);
    if !body.is_empty() {
        line.push(',');
    }
    line.push_str("\"trentChain\":{\"sequence\":");
    line.push_str(&sequence.to_string());
    line.push_str(",\"previousHash\":\"");
    line.push_str(previous_hash);
    line.push_str("\"}}");
    line
}

#[derive(Deserialize)]
struct Chained {
    #[serde(rename = "trentChain")]
    chain: ChainMember,
}

#[derive(Deserialize)]
struct ChainMember {
    sequence: u64,
    #[serde(rename = "previousHash")]
    previous_hash: String,
}

/// The sequence number and previous hash a line carries, if it is a sealed record.
pub fn read_chain(line: &[u8]) -> Option<(u64, String)> {
    let c: Chained = serde_json::from_slice(line).ok()?;
    let h = c.chain.previous_hash;
    (h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())).then_some((c.chain.sequence, h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_sealed_line_reads_back() {
        let line = seal(
            &json!({"eventName": "Encrypt"}).to_string(),
            7,
            GENESIS_HASH,
        );
        assert_eq!(
            line,
            format!(
                r#"{{"eventName":"Encrypt","trentChain":{{"sequence":7,"previousHash":"{GENESIS_HASH}"}}}}"#
            )
        );
        assert_eq!(read_chain(line.as_bytes()), Some((7, GENESIS_HASH.into())));
        let empty = seal("{}", 1, GENESIS_HASH);
        assert_eq!(read_chain(empty.as_bytes()).unwrap().0, 1);
        assert!(read_chain(b"{\"eventName\":\"x\"}").is_none());
        assert!(read_chain(b"not json").is_none());
    }

    #[test]
    fn the_hash_is_sha256_of_the_line() {
        assert_eq!(
            hash_line(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
