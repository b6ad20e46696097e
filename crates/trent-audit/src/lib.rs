//! The tamper-evident audit log.
//!
//! Every request and every event the server causes itself becomes one JSON line, in the
//! CloudTrail shape the server builds, to which this crate adds a `trentChain` member: the
//! record's sequence number and the SHA-256 of the line before it. Lines are written in batches
//! (group commit): a record is acknowledged once the batch holding it is on disk (`fdatasync`).
//!
//! Files are rolled by size and age. A closed file gets a signature file (`<file>.sig`). The
//! log's head (`head.json`) is a signed digest of the newest file up to its newest record,
//! written at least every `digest_interval` while records come in, and when a file is closed. Both are signed with the
//! node's audit signing key (Ed25519 or ECDSA P-256). [`verify_dir`] checks the chain, the
//! signatures and the digests, and names the first edited, deleted, reordered or truncated
//! record and every missing file.
//!
//! With retention on ([`Retention`]), the oldest closed files are removed once the log is too
//! large or they are too old, after a signed statement of what goes ([`PruneStatement`],
//! `pruned.json`) from which what remains still verifies.

#![deny(unsafe_code)]

mod attest;
mod chain;
mod forward;
mod prune;
mod signer;
mod verify;
mod writer;

pub use attest::Attestation;
pub use chain::{GENESIS_HASH, hash_line, read_chain, seal};
pub use forward::{AuditSocket, SocketQueue, SocketSnapshot};
pub use prune::{PRUNE_FILE, PruneReason, PruneStatement, RemovedFile, Retention};
pub use signer::{AuditKeySpec, AuditPublicKey, AuditSigner, load_or_create_signer};
pub use verify::{Problem, Report, verify_dir};
pub use writer::{
    AuditConfig, AuditError, AuditLog, LATENCY_BUCKETS, PrunedSnapshot, StatsSnapshot,
};

/// The name of the `n`-th log file: sequence numbers start files, so names sort in order.
pub fn log_file_name(first_sequence: u64) -> String {
    format!("audit-{first_sequence:012}.jsonl")
}

/// The first sequence number a log file's name gives, if it is one.
pub fn parse_log_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("audit-")?.strip_suffix(".jsonl")?;
    if digits.len() != 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The signed statement of the log's newest record, rewritten at every digest and file close.
pub const HEAD_FILE: &str = "head.json";

/// The public key file the writer leaves in the audit directory (PEM SubjectPublicKeyInfo).
pub const PUBLIC_KEY_FILE: &str = "audit-public-key.pem";
