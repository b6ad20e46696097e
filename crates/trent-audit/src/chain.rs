//! The hash chain: each line carries its sequence number and the SHA-256 of the line before it.

use serde::Deserialize;
use serde_json::{Map, Value};
use trent_crypto::primitives::sha256;

/// The `previousHash` of the very first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash a line passes on to the next: SHA-256 of its bytes (without the newline), in hex.
pub fn hash_line(line: &[u8]) -> String {
    hex::encode(sha256(line))
}

/// The record as one line, with `"trentChain":{"sequence":..,"previousHash":..}` as its last
/// member.
pub fn seal(record: &Map<String, Value>, sequence: u64, previous_hash: &str) -> String {
    // A map of strings to values always serializes.
    let mut line = serde_json::to_string(record).unwrap_or_else(|_| "{}".into());
    let chain = format!(
        "\"trentChain\":{{\"sequence\":{sequence},\"previousHash\":\"{previous_hash}\"}}}}"
    );
    line.pop(); // the closing brace
    if !record.is_empty() {
        line.push(',');
    }
    line.push_str(&chain);
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
        let obj = |v: Value| v.as_object().unwrap().clone();
        let line = seal(&obj(json!({"eventName": "Encrypt"})), 7, GENESIS_HASH);
        assert_eq!(
            line,
            format!(
                r#"{{"eventName":"Encrypt","trentChain":{{"sequence":7,"previousHash":"{GENESIS_HASH}"}}}}"#
            )
        );
        assert_eq!(read_chain(line.as_bytes()), Some((7, GENESIS_HASH.into())));
        let empty = seal(&Map::new(), 1, GENESIS_HASH);
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
