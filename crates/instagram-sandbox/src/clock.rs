//! The sandbox clock: wall time plus an offset that tests and demos move forward, so token
//! lifetimes (1 h, 24 h, 60 days) can be crossed without waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;

/// A cheap, shareable handle: every clone sees and moves the same offset, which is how the
/// broker's demo and the sandbox agree on "now".
#[derive(Clone, Debug, Default)]
pub struct SandboxClock {
    offset: Arc<AtomicI64>,
}

impl SandboxClock {
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn with_offset(offset_secs: i64) -> Self {
        Self {
            offset: Arc::new(AtomicI64::new(offset_secs)),
        }
    }

    /// System time plus the offset, in whole seconds since the Unix epoch.
    pub fn now_unix(&self) -> i64 {
        let wall = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            // A clock before 1970 is a broken host; treat it as the epoch rather than panic.
            Err(_) => 0,
        };
        wall.saturating_add(self.offset_secs())
    }

    /// System time plus the offset, with sub-second precision.
    pub fn now(&self) -> OffsetDateTime {
        let now = OffsetDateTime::now_utc();
        now.checked_add(time::Duration::seconds(self.offset_secs()))
            .unwrap_or(now)
    }

    pub fn offset_secs(&self) -> i64 {
        self.offset.load(Ordering::SeqCst)
    }

    /// Moves the clock by `secs` (negative values move it back, which tests of skew may want).
    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_is_shared_by_clones() {
        let a = SandboxClock::new();
        let b = a.clone();
        let before = b.now_unix();
        a.advance(3600);
        assert_eq!(b.offset_secs(), 3600);
        let after = b.now_unix();
        assert!(
            (3600..3610).contains(&(after - before)),
            "{before} -> {after}"
        );
        assert!((b.now().unix_timestamp() - after).abs() <= 1);
    }
}
