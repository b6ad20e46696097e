//! GetKeyLastUsage, and the recording of each successful cryptographic use of a key.
//!
//! Recording is on the hot path: it only updates the key's in-memory [`UsageCell`] (a short lock
//! and the request id's copy); the scheduled work writes changed cells to the store in batches.
//!
//! [`UsageCell`]: crate::usage::UsageCell

use super::*;
use crate::api::*;
use crate::ids::Caller;
use crate::service::Kms;

/// When trent began recording key use (2026-11-23T00:00:00Z, epoch seconds): no build before
/// this one recorded any, so a key created earlier may have been used before tracking began.
pub(crate) const TRACKING_SINCE: f64 = 1_795_392_000.0;

/// The TrackingStartDate of a key created at `creation`: the later of the two, never later
/// than `now` (a clock set before the tracking start).
fn tracking_start(creation: f64, now: f64) -> f64 {
    creation.max(TRACKING_SINCE.min(now))
}

impl Kms {
    /// Record a successful cryptographic use of `key` (after every check and the operation
    /// itself succeeded; never for a dry run). Memory only: no store write.
    pub(crate) fn record_use(&self, key: &CachedKey, operation: &'static str, caller: &Caller) {
        key.usage
            .record(operation, self.clock.now(), caller.request_id.as_deref());
    }

    pub async fn get_key_last_usage(
        &self,
        caller: &Caller,
        req: GetKeyLastUsageRequest,
    ) -> Result<GetKeyLastUsageResponse, KmsError> {
        // Key id or key ARN only; any key state.
        let key = self.key_of_request(caller, &req.key_id, "GetKeyLastUsage")?;
        let last = key.usage.last().map_or_else(KeyLastUsage::default, |l| {
            KeyLastUsage {
                operation: Some(l.operation),
                timestamp: Some(l.timestamp),
                // No audit log yet: there is no CloudTrail event id to give.
                cloud_trail_event_id: None,
                kms_request_id: l.request_id,
            }
        });
        let created = key.record.creation_date;
        Ok(GetKeyLastUsageResponse {
            // "The globally unique identifier for the KMS key": the key id, as in KeyMetadata.
            key_id: Some(key.record.key_id.clone()),
            // A never-used key answers an empty object.
            key_last_usage: Some(last),
            tracking_start_date: Some(tracking_start(created, self.clock.now())),
            key_creation_date: Some(created),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_starts_at_creation_or_when_trent_began_tracking() {
        let later = TRACKING_SINCE + 86_400.0;
        assert_eq!(tracking_start(later, later + 1.0), later);
        assert_eq!(tracking_start(1_600_000_000.0, later), TRACKING_SINCE);
        // A clock before the tracking start never answers a start in the future.
        assert_eq!(
            tracking_start(1_600_000_000.0, 1_700_000_000.0),
            1_700_000_000.0
        );
    }
}
