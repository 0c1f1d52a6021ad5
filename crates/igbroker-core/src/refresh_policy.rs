//! When a token is due, as pure functions of `now` (Instagram: a long-lived token
//! may be refreshed once it is 24 hours old and until it expires).

use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshPolicy {
    /// Refresh when less than this remains before expiry (seconds).
    pub window: i64,
    /// Instagram refuses to refresh younger tokens (seconds).
    pub min_age: i64,
    /// Spread accounts connected together over this much time (seconds).
    pub jitter: i64,
    /// A token read this close to expiry refreshes first (seconds).
    pub read_refresh_within: i64,
    /// First retry delay after a transient failure; doubles per attempt (seconds).
    pub backoff_base: i64,
    /// Longest delay between transient retries (seconds).
    pub backoff_max: i64,
    /// Delay after a failure that is neither transient nor a re-auth (seconds).
    pub failing_backoff: i64,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        RefreshPolicy {
            window: 20 * 86_400,
            min_age: 86_400,
            jitter: 12 * 3_600,
            read_refresh_within: 86_400,
            backoff_base: 60,
            backoff_max: 6 * 3_600,
            failing_backoff: 12 * 3_600,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshCheck {
    Allowed,
    TooYoung { ready_at: i64 },
    Expired,
}

impl RefreshPolicy {
    /// The time the scheduler should refresh a token issued (or last refreshed)
    /// at `issued_at` that expires at `expires_at`. Deterministic per token
    /// version, so replicas agree and a restart does not reshuffle.
    pub fn next_refresh_at(&self, seed: &str, issued_at: i64, expires_at: i64) -> i64 {
        let base = expires_at - self.window;
        let spread = if self.jitter > 0 {
            let digest = Sha256::digest(format!("{seed}:{issued_at}").as_bytes());
            let mut n = [0u8; 8];
            n.copy_from_slice(&digest[..8]);
            (u64::from_be_bytes(n) % self.jitter as u64) as i64
        } else {
            0
        };
        let earliest = issued_at + self.min_age;
        (base - spread).max(earliest)
    }

    /// On-demand refresh ignores the window but never the minimum age.
    pub fn check(&self, now: i64, issued_at: i64, expires_at: i64) -> RefreshCheck {
        if now >= expires_at {
            RefreshCheck::Expired
        } else if now < issued_at + self.min_age {
            RefreshCheck::TooYoung {
                ready_at: issued_at + self.min_age,
            }
        } else {
            RefreshCheck::Allowed
        }
    }

    /// When to try again after the `attempts`-th failure: exponential with jitter
    /// (so a burst of failures does not retry in lockstep), and never past the
    /// last minute before expiry, so that a token gets every chance it has. At or
    /// after expiry the answer is `expires_at`, where the scheduler marks it expired.
    pub fn retry_at(
        &self,
        seed: &str,
        now: i64,
        attempts: i64,
        expires_at: i64,
        transient: bool,
    ) -> i64 {
        let delay = if transient {
            let exp = attempts.clamp(0, 30) as u32;
            let raw = self
                .backoff_base
                .saturating_mul(1i64 << exp.min(20))
                .min(self.backoff_max);
            // Up to a quarter of the delay as jitter, derived from the seed and attempt.
            let digest = Sha256::digest(format!("{seed}:retry:{attempts}").as_bytes());
            let mut n = [0u8; 8];
            n.copy_from_slice(&digest[..8]);
            let quarter = (raw / 4).max(1);
            raw - (u64::from_be_bytes(n) % quarter as u64) as i64
        } else {
            self.failing_backoff
        };
        let wanted = now + delay.max(1);
        let last_chance = expires_at - 60;
        if wanted < last_chance {
            wanted
        } else if now < last_chance {
            last_chance
        } else {
            expires_at.max(now + 1)
        }
    }

    /// Whether a token read should refresh first.
    pub fn read_should_refresh(&self, now: i64, issued_at: i64, expires_at: i64) -> bool {
        expires_at - now <= self.read_refresh_within
            && self.check(now, issued_at, expires_at) == RefreshCheck::Allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn due_inside_the_window_with_bounded_jitter() {
        let p = RefreshPolicy::default();
        let issued = 1_000_000;
        let expires = issued + 60 * DAY;
        for i in 0..200 {
            let due = p.next_refresh_at(&format!("acc_{i}"), issued, expires);
            assert!(due <= expires - p.window);
            assert!(due > expires - p.window - p.jitter);
        }
        let a = p.next_refresh_at("acc_a", issued, expires);
        assert_eq!(a, p.next_refresh_at("acc_a", issued, expires));
    }

    #[test]
    fn never_before_min_age() {
        let p = RefreshPolicy {
            window: 59 * DAY,
            ..Default::default()
        };
        let due = p.next_refresh_at("x", 0, 60 * DAY);
        assert_eq!(due, DAY);
    }

    #[test]
    fn retries_back_off_and_stop_at_expiry() {
        let p = RefreshPolicy::default();
        let expires = 60 * DAY;
        let a1 = p.retry_at("a", 0, 0, expires, true);
        let a5 = p.retry_at("a", 0, 5, expires, true);
        assert!((45..=60).contains(&a1), "{a1}");
        assert!(a5 > a1 * 16, "{a5}");
        assert!(p.retry_at("a", 0, 30, expires, true) <= p.backoff_max);
        assert_eq!(p.retry_at("a", 0, 0, expires, false), p.failing_backoff);
        // Close to expiry: one last try a minute before, then expiry itself.
        let near = expires - 120;
        assert_eq!(p.retry_at("a", near, 3, expires, true), expires - 60);
        assert_eq!(p.retry_at("a", expires - 30, 3, expires, true), expires);
    }

    #[test]
    fn on_demand_checks_age_and_expiry() {
        let p = RefreshPolicy::default();
        assert_eq!(
            p.check(10, 0, 60 * DAY),
            RefreshCheck::TooYoung { ready_at: DAY }
        );
        assert_eq!(p.check(DAY, 0, 60 * DAY), RefreshCheck::Allowed);
        assert_eq!(p.check(60 * DAY, 0, 60 * DAY), RefreshCheck::Expired);
        assert!(p.read_should_refresh(59 * DAY + 1, 0, 60 * DAY));
        assert!(!p.read_should_refresh(30 * DAY, 0, 60 * DAY));
    }
}
