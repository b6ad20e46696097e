//! Retention: which closed files are removed from the start of the log, and the signed
//! statement (`pruned.json`) that says what was removed, so that what remains still verifies.
//!
//! The statement is cumulative: every record up to `lastSequence` is gone, and `lastHash` is the
//! hash of that last one, the `previousHash` the first record left must carry. It also names the
//! files its own prune removed. It is written, durably, before any file is removed, so that a
//! prune cut short leaves files the statement already covers (removed on the next try), never
//! files removed that no statement covers.

use crate::attest::{Attestation, open_statement, sign_statement};
use crate::signer::{AuditPublicKey, AuditSigner};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The signed statement of what retention removed from the start of the log.
pub const PRUNE_FILE: &str = "pruned.json";

/// What the log keeps: past either bound, the oldest closed files are removed. `None` is no
/// bound (everything is kept).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// The log files together (as signed, and the open file as written) may take this many
    /// bytes.
    pub max_total_bytes: Option<u64>,
    /// A closed file is removed once it was closed this long ago.
    pub max_age: Option<Duration>,
}

impl Retention {
    pub fn is_off(&self) -> bool {
        self.max_total_bytes.is_none() && self.max_age.is_none()
    }
}

/// Why a file was removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PruneReason {
    /// The log was larger than `max_total_bytes`.
    #[serde(rename = "max-total-bytes")]
    MaxTotalBytes,
    /// The file was closed longer ago than `max_age`.
    #[serde(rename = "max-age-days")]
    MaxAge,
}

impl PruneReason {
    /// The setting that removed it, as `trent serve` names it.
    pub fn setting(self) -> &'static str {
        match self {
            PruneReason::MaxTotalBytes => "--audit-max-total-bytes",
            PruneReason::MaxAge => "--audit-max-age-days",
        }
    }
}

/// One file a prune removed, as its signature file described it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemovedFile {
    pub file: String,
    pub first_sequence: u64,
    pub last_sequence: u64,
    pub bytes: u64,
    /// SHA-256 of the file, hex: a copy shipped elsewhere can be matched with it.
    pub sha256: String,
    /// When it was closed (its signature's time).
    pub closed: String,
    pub reason: PruneReason,
}

/// `pruned.json`: every record up to `last_sequence` has been removed from the directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneStatement {
    /// Always `prune`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The last record removed: records 1 to this one are gone.
    pub last_sequence: u64,
    /// The hash of that record: the `previousHash` of the first record left.
    pub last_hash: String,
    /// Files and bytes removed by every prune so far.
    pub files: u64,
    pub bytes: u64,
    /// Where the prunes before this one had reached (0: this is the first).
    pub previous_last_sequence: u64,
    /// The files this prune removed, oldest first: records `previous_last_sequence + 1` to
    /// `last_sequence`.
    pub removed: Vec<RemovedFile>,
    pub time: String,
    pub node: String,
    pub algorithm: String,
    pub key_id: String,
}

impl PruneStatement {
    pub fn sign(&self, signer: &AuditSigner) -> Result<Vec<u8>, String> {
        sign_statement(self, signer)
    }

    /// Read `pruned.json`; `Ok(None)` when its signature does not verify with `key`.
    pub fn open(bytes: &[u8], key: &AuditPublicKey) -> Result<Option<PruneStatement>, String> {
        let statement: Option<PruneStatement> = open_statement(bytes, key)?;
        match statement {
            Some(s) if s.kind != "prune" => Err("not a prune statement".into()),
            other => Ok(other),
        }
    }

    /// What is wrong with the statement itself, if anything: its removed files must be the
    /// records after the previous prune's, one after the other, up to `last_sequence`.
    pub fn inconsistency(&self) -> Option<String> {
        let mut expected = self.previous_last_sequence + 1;
        for f in &self.removed {
            if f.first_sequence != expected || f.last_sequence < f.first_sequence {
                return Some(format!(
                    "it lists {} with records {}..{} where record {expected} comes next",
                    f.file, f.first_sequence, f.last_sequence
                ));
            }
            expected = f.last_sequence + 1;
        }
        (self.removed.is_empty() || expected != self.last_sequence + 1).then(|| {
            format!(
                "its files do not add up to records {}..{}",
                self.previous_last_sequence + 1,
                self.last_sequence
            )
        })
    }
}

/// Where the log begins now: every record up to `last_sequence` is gone.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Anchor {
    pub last_sequence: u64,
    pub last_hash: String,
    pub files: u64,
    pub bytes: u64,
}

impl Anchor {
    /// A log nothing was removed from.
    pub fn genesis() -> Self {
        Anchor {
            last_sequence: 0,
            last_hash: crate::chain::GENESIS_HASH.into(),
            files: 0,
            bytes: 0,
        }
    }

    pub fn of(s: &PruneStatement) -> Self {
        Anchor {
            last_sequence: s.last_sequence,
            last_hash: s.last_hash.clone(),
            files: s.files,
            bytes: s.bytes,
        }
    }
}

/// A closed log file, as the writer knows it from the signature it wrote.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ClosedFile {
    pub name: String,
    pub first_sequence: u64,
    /// What its signature says, or why the file cannot be pruned (no signature, or one that does
    /// not verify): the file was changed behind the node's back.
    pub signed: Result<Signed, String>,
    /// Its length: as signed, or as found when unsigned.
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Signed {
    pub last_sequence: u64,
    pub last_hash: String,
    pub sha256: String,
    pub closed: OffsetDateTime,
    pub closed_text: String,
}

impl ClosedFile {
    /// The entry for a file closed with signature `a`.
    pub fn from_attestation(a: &Attestation) -> Self {
        let signed = OffsetDateTime::parse(&a.time, &Rfc3339)
            .map(|closed| Signed {
                last_sequence: a.last_sequence,
                last_hash: a.last_hash.clone(),
                sha256: a.sha256.clone(),
                closed,
                closed_text: a.time.clone(),
            })
            .map_err(|_| format!("its signature's time '{}' cannot be read", a.time));
        ClosedFile {
            name: a.file.clone(),
            first_sequence: a.first_sequence,
            signed,
            bytes: a.bytes,
        }
    }

    /// The entry for log file `name` (starting at `first_sequence`) in `dir`, from its
    /// signature file checked with `key`.
    pub fn read(dir: &Path, name: &str, first_sequence: u64, key: &AuditPublicKey) -> Self {
        let problem = match std::fs::read(dir.join(format!("{name}.sig"))) {
            Ok(bytes) => match Attestation::open(&bytes, key) {
                Ok(Some(a)) if a.kind == "file" && a.file == name => {
                    return Self::from_attestation(&a);
                }
                Ok(Some(_)) => "its signature file is about another file".to_string(),
                Ok(None) => "its signature file does not verify".to_string(),
                Err(e) => format!("its signature file: {e}"),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "it is not signed".to_string(),
            Err(e) => format!("its signature file: {e}"),
        };
        let bytes = std::fs::metadata(dir.join(name)).map_or(0, |m| m.len());
        ClosedFile {
            name: name.to_string(),
            first_sequence,
            signed: Err(problem),
            bytes,
        }
    }
}

/// What one prune is to remove: a run of the oldest closed files, each with why. `blocked` says
/// why it stops short of what retention asks, when it does.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Plan {
    pub remove: Vec<(usize, PruneReason)>,
    pub blocked: Option<String>,
}

/// Which of `closed` (oldest first) to remove now: from the oldest, while the log is larger than
/// the total allowed or the file was closed longer ago than the age allowed. Never a file at or
/// after `keep_from` (the file the head names, and the open file), and never across a file whose
/// signature is missing or does not verify, or a gap in the sequence: those stop retention, so
/// that a prune never covers what was removed or changed behind the node's back.
pub(crate) fn plan(
    closed: &[ClosedFile],
    anchor: &Anchor,
    keep_from: u64,
    open_bytes: u64,
    retention: &Retention,
    now: OffsetDateTime,
) -> Plan {
    let mut total: u64 = closed.iter().map(|f| f.bytes).sum::<u64>() + open_bytes;
    let mut expected = anchor.last_sequence + 1;
    let mut out = Plan::default();
    for (i, f) in closed.iter().enumerate() {
        if f.first_sequence >= keep_from {
            break;
        }
        let over = retention.max_total_bytes.is_some_and(|max| total > max);
        let old = |s: &Signed| {
            retention.max_age.is_some_and(|age| {
                now - s.closed >= time::Duration::try_from(age).unwrap_or(time::Duration::MAX)
            })
        };
        let due = over || f.signed.as_ref().is_ok_and(old);
        if !due {
            break;
        }
        let signed = match &f.signed {
            Ok(s) => s,
            Err(problem) => {
                out.blocked = Some(format!("{}: {problem}", f.name));
                break;
            }
        };
        if f.first_sequence != expected {
            out.blocked = Some(if f.first_sequence > expected {
                format!(
                    "records {expected}..{} are missing before {}",
                    f.first_sequence - 1,
                    f.name
                )
            } else {
                format!(
                    "{} starts at record {}, which {PRUNE_FILE} says was removed",
                    f.name, f.first_sequence
                )
            });
            break;
        }
        let reason = if old(signed) {
            PruneReason::MaxAge
        } else {
            PruneReason::MaxTotalBytes
        };
        out.remove.push((i, reason));
        total -= f.bytes;
        expected = signed.last_sequence + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000 + day * 86_400).unwrap()
    }

    /// Files of 100 bytes with 10 records each, closed on days 0, 1, 2, ...
    fn files(n: u64) -> Vec<ClosedFile> {
        (0..n)
            .map(|i| ClosedFile {
                name: crate::log_file_name(i * 10 + 1),
                first_sequence: i * 10 + 1,
                signed: Ok(Signed {
                    last_sequence: i * 10 + 10,
                    last_hash: format!("{:064}", i),
                    sha256: String::new(),
                    closed: at(i as i64),
                    closed_text: String::new(),
                }),
                bytes: 100,
            })
            .collect()
    }

    fn days(n: u64) -> Option<Duration> {
        Some(Duration::from_secs(n * 86_400))
    }

    #[test]
    fn the_oldest_files_go_while_the_log_is_too_large() {
        let closed = files(5);
        let r = Retention {
            max_total_bytes: Some(350),
            max_age: None,
        };
        // 500 closed + 20 open: two files must go to get to 320.
        let p = plan(&closed, &Anchor::genesis(), 1000, 20, &r, at(10));
        assert_eq!(
            p.remove,
            vec![
                (0, PruneReason::MaxTotalBytes),
                (1, PruneReason::MaxTotalBytes)
            ]
        );
        assert_eq!(p.blocked, None);
        // Exactly at the bound is within it.
        let r = Retention {
            max_total_bytes: Some(520),
            max_age: None,
        };
        assert_eq!(
            plan(&closed, &Anchor::genesis(), 1000, 20, &r, at(10)),
            Plan::default()
        );
    }

    #[test]
    fn files_closed_longer_ago_than_the_age_go() {
        let closed = files(5);
        let r = Retention {
            max_total_bytes: None,
            max_age: days(2),
        };
        // On day 3, the files closed on days 0 and 1 are 2 days old or more.
        let p = plan(&closed, &Anchor::genesis(), 1000, 0, &r, at(3));
        assert_eq!(
            p.remove,
            vec![(0, PruneReason::MaxAge), (1, PruneReason::MaxAge)]
        );
        // A second short of two days, the file closed on day 1 stays.
        let p = plan(
            &closed,
            &Anchor::genesis(),
            1000,
            0,
            &r,
            at(3) - time::Duration::seconds(1),
        );
        assert_eq!(p.remove, vec![(0, PruneReason::MaxAge)]);
        assert!(
            plan(
                &closed,
                &Anchor::genesis(),
                1000,
                0,
                &Retention::default(),
                at(99)
            )
            .remove
            .is_empty()
        );
    }

    #[test]
    fn the_head_file_and_what_follows_are_kept_whatever_the_bounds() {
        let closed = files(5);
        let r = Retention {
            max_total_bytes: Some(0),
            max_age: Some(Duration::ZERO),
        };
        // The head names the file starting at 31.
        let p = plan(&closed, &Anchor::genesis(), 31, 0, &r, at(10));
        assert_eq!(p.remove.len(), 3);
        assert_eq!(p.blocked, None);
    }

    #[test]
    fn retention_stops_at_a_file_changed_or_removed_behind_the_nodes_back() {
        let r = Retention {
            max_total_bytes: Some(0),
            max_age: None,
        };
        let mut closed = files(5);
        closed[2].signed = Err("its signature file does not verify".into());
        let p = plan(&closed, &Anchor::genesis(), 1000, 0, &r, at(10));
        assert_eq!(p.remove.len(), 2);
        assert_eq!(
            p.blocked.as_deref(),
            Some("audit-000000000021.jsonl: its signature file does not verify")
        );
        // A file gone from the middle (records 11..20).
        let mut closed = files(5);
        closed.remove(1);
        let p = plan(&closed, &Anchor::genesis(), 1000, 0, &r, at(10));
        assert_eq!(p.remove.len(), 1);
        assert_eq!(
            p.blocked.as_deref(),
            Some("records 11..20 are missing before audit-000000000021.jsonl")
        );
        // The oldest file does not follow what an earlier prune removed.
        let closed = files(5);
        let anchor = Anchor {
            last_sequence: 5,
            ..Anchor::genesis()
        };
        let p = plan(&closed, &anchor, 1000, 0, &r, at(10));
        assert!(p.remove.is_empty());
        assert_eq!(
            p.blocked.as_deref(),
            Some("audit-000000000001.jsonl starts at record 1, which pruned.json says was removed")
        );
    }

    #[test]
    fn a_statement_must_add_up() {
        let file = |first, last| RemovedFile {
            file: crate::log_file_name(first),
            first_sequence: first,
            last_sequence: last,
            bytes: 1,
            sha256: String::new(),
            closed: String::new(),
            reason: PruneReason::MaxAge,
        };
        let mut s = PruneStatement {
            kind: "prune".into(),
            last_sequence: 30,
            last_hash: String::new(),
            files: 2,
            bytes: 2,
            previous_last_sequence: 10,
            removed: vec![file(11, 20), file(21, 30)],
            time: String::new(),
            node: String::new(),
            algorithm: String::new(),
            key_id: String::new(),
        };
        assert_eq!(s.inconsistency(), None);
        s.last_sequence = 40;
        assert_eq!(
            s.inconsistency().as_deref(),
            Some("its files do not add up to records 11..40")
        );
        s.last_sequence = 30;
        s.removed[1] = file(22, 30);
        assert_eq!(
            s.inconsistency().as_deref(),
            Some(
                "it lists audit-000000000022.jsonl with records 22..30 where record 21 comes next"
            )
        );
    }
}
