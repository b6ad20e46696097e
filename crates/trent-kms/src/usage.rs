//! GetKeyLastUsage: the last cryptographic use of each key, kept in memory on the hot path and
//! written to the store in batches by the scheduled work, never once per request.

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};

/// The operations whose use is tracked (the model's KeyLastUsageTrackingOperation).
pub const TRACKED_OPERATIONS: &[&str] = &[
    "Decrypt",
    "DeriveSharedSecret",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateMac",
    "ReEncrypt",
    "Sign",
    "Verify",
    "VerifyMac",
    "Encapsulate",
    "Decapsulate",
];

/// One use of a key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastUse {
    pub operation: String,
    /// Epoch seconds.
    pub timestamp: f64,
    #[serde(default)]
    pub request_id: Option<String>,
}

/// The last use of one key, shared by every cached version of the key.
#[derive(Debug, Default)]
pub struct UsageCell {
    last: Mutex<Option<LastUse>>,
    /// Changed since the last flush to the store.
    dirty: AtomicBool,
}

impl UsageCell {
    pub fn from_stored(last: Option<LastUse>) -> Self {
        UsageCell {
            last: Mutex::new(last),
            dirty: AtomicBool::new(false),
        }
    }

    /// Record a use (a short uncontended lock; after a key's first use, no allocation: the
    /// strings' buffers are reused).
    pub fn record(&self, operation: &'static str, timestamp: f64, request_id: Option<&str>) {
        let mut last = self.last.lock();
        // Two requests racing: keep the later one.
        if last.as_ref().is_some_and(|l| l.timestamp > timestamp) {
            return;
        }
        match last.as_mut() {
            Some(l) => {
                l.operation.clear();
                l.operation.push_str(operation);
                l.timestamp = timestamp;
                match (&mut l.request_id, request_id) {
                    (Some(id), Some(new)) => {
                        id.clear();
                        id.push_str(new);
                    }
                    (id, new) => *id = new.map(str::to_string),
                }
            }
            None => {
                *last = Some(LastUse {
                    operation: operation.to_string(),
                    timestamp,
                    request_id: request_id.map(str::to_string),
                })
            }
        }
        self.dirty.store(true, Ordering::Release);
    }

    pub fn last(&self) -> Option<LastUse> {
        self.last.lock().clone()
    }

    /// The last use, if it changed since the previous call (marking it flushed).
    pub fn take_dirty(&self) -> Option<LastUse> {
        if self.dirty.swap(false, Ordering::AcqRel) {
            self.last()
        } else {
            None
        }
    }

    /// Put the dirty mark back after a failed flush.
    pub fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_later_use_wins_and_dirtiness_is_taken_once() {
        let c = UsageCell::default();
        assert_eq!(c.take_dirty(), None);
        c.record("Encrypt", 10.0, Some("r1"));
        c.record("Decrypt", 5.0, Some("r0"));
        let last = c.take_dirty().unwrap();
        assert_eq!((last.operation.as_str(), last.timestamp), ("Encrypt", 10.0));
        assert_eq!(last.request_id.as_deref(), Some("r1"));
        assert_eq!(c.take_dirty(), None);
        c.record("Sign", 11.0, None);
        assert_eq!(c.take_dirty().unwrap().operation, "Sign");
        c.mark_dirty();
        assert!(c.take_dirty().is_some());
    }
}
