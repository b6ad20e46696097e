//! The service's clock. Deletion windows (and later rotation periods) are days long, so tests and
//! dev mode can move this clock forward; production never does.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock time plus an offset that only ever grows.
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    pub fn new() -> Self {
        Self::default()
    }

    /// Now, in epoch seconds with millisecond precision (the form AWS timestamps take).
    pub fn now(&self) -> f64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        (real + self.offset_ms.load(Ordering::Relaxed)) as f64 / 1000.0
    }

    /// Move the clock forward by `seconds` (negative values are ignored).
    pub fn advance(&self, seconds: i64) {
        if seconds > 0 {
            self.offset_ms
                .fetch_add(seconds.saturating_mul(1000), Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_now_forward_only() {
        let c = Clock::new();
        let before = c.now();
        c.advance(86_400);
        assert!(c.now() - before >= 86_400.0);
        c.advance(-1_000_000);
        assert!(c.now() - before >= 86_400.0);
    }
}
