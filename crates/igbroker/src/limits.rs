//! Request limits of one broker process: token buckets per API key, a slowdown for
//! failed API-key attempts per client address, a global in-flight cap, and JSON depth.
//!
//! These are per replica (the buckets live in memory): with N replicas behind a balancer
//! a key gets up to N times its rate, which the README says.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `[limits]` as the process uses it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimitSettings {
    pub per_key_per_second: f64,
    pub per_key_burst: f64,
    /// Failed API-key attempts one client address may make at once…
    pub failed_auth_burst: f64,
    /// …and how fast that allowance comes back.
    pub failed_auth_per_second: f64,
    pub max_in_flight: usize,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            per_key_per_second: 200.0,
            per_key_burst: 400.0,
            failed_auth_burst: 20.0,
            failed_auth_per_second: 1.0,
            max_in_flight: 1024,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
    rate: f64,
    burst: f64,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        self.last = now;
    }

    /// Time until one token is there.
    fn wait(&self) -> Duration {
        if self.rate <= 0.0 {
            return Duration::from_secs(3600);
        }
        Duration::from_secs_f64(((1.0 - self.tokens) / self.rate).max(0.0))
    }
}

/// Token buckets by key, each with its own rate and burst.
#[derive(Debug)]
struct Buckets<K> {
    map: Mutex<HashMap<K, Bucket>>,
}

/// Above this many buckets, full ones (which hold no state worth keeping) are dropped.
const PRUNE_ABOVE: usize = 10_000;

impl<K: Eq + Hash + Clone> Buckets<K> {
    fn new() -> Self {
        Buckets {
            map: Mutex::new(HashMap::new()),
        }
    }

    fn with<T>(
        &self,
        key: &K,
        rate: f64,
        burst: f64,
        now: Instant,
        f: impl FnOnce(&mut Bucket) -> T,
    ) -> T {
        let mut map = match self.map.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if map.len() > PRUNE_ABOVE {
            map.retain(|_, b| {
                b.refill(now);
                b.tokens < b.burst
            });
        }
        let b = map.entry(key.clone()).or_insert(Bucket {
            tokens: burst,
            last: now,
            rate,
            burst,
        });
        // A changed limit (a new override) applies from now on.
        b.rate = rate;
        b.burst = burst;
        b.refill(now);
        f(b)
    }
}

/// Takes one token from `bucket`, or says how long until one is there.
fn take(b: &mut Bucket) -> Result<(), Duration> {
    if b.tokens >= 1.0 {
        b.tokens -= 1.0;
        Ok(())
    } else {
        Err(b.wait())
    }
}

/// Whole seconds for `Retry-After`, never 0.
pub fn retry_after_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0).max(u64::from(d.as_secs() == 0))
}

pub struct Limiter {
    settings: LimitSettings,
    keys: Buckets<String>,
    failures: Buckets<IpAddr>,
    in_flight: Arc<tokio::sync::Semaphore>,
}

impl Limiter {
    pub fn new(settings: LimitSettings) -> Self {
        Limiter {
            settings,
            keys: Buckets::new(),
            failures: Buckets::new(),
            in_flight: Arc::new(tokio::sync::Semaphore::new(settings.max_in_flight.max(1))),
        }
    }

    pub fn settings(&self) -> &LimitSettings {
        &self.settings
    }

    /// One request by `key_id`; `per_second` is the key's own rate when it has one, and
    /// its burst keeps the configured ratio.
    pub fn check_key(
        &self,
        key_id: &str,
        per_second: Option<f64>,
        now: Instant,
    ) -> Result<(), Duration> {
        let s = &self.settings;
        let rate = per_second.unwrap_or(s.per_key_per_second).max(0.0);
        let ratio = if s.per_key_per_second > 0.0 {
            s.per_key_burst / s.per_key_per_second
        } else {
            1.0
        };
        let burst = match per_second {
            Some(r) => (r * ratio).max(1.0),
            None => s.per_key_burst.max(1.0),
        };
        self.keys.with(&key_id.to_string(), rate, burst, now, take)
    }

    /// Whether `ip` has used up its failed attempts; checked before a key is looked up.
    pub fn auth_blocked(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let s = &self.settings;
        self.failures.with(
            &ip,
            s.failed_auth_per_second,
            s.failed_auth_burst.max(1.0),
            now,
            |b| (b.tokens < 1.0).then(|| b.wait()),
        )
    }

    /// Counts one failed attempt by `ip`.
    pub fn auth_failed(&self, ip: IpAddr, now: Instant) {
        let s = &self.settings;
        self.failures.with(
            &ip,
            s.failed_auth_per_second,
            s.failed_auth_burst.max(1.0),
            now,
            |b| {
                let _ = take(b);
            },
        );
    }

    /// A slot for one request, or `None` when `max_in_flight` are already running.
    pub fn enter(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.in_flight.clone().try_acquire_owned().ok()
    }
}

/// Whether a JSON text nests arrays and objects deeper than `max` (strings are skipped,
/// so brackets inside them do not count). Checked before parsing.
pub fn json_too_deep(bytes: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn limiter() -> Limiter {
        Limiter::new(LimitSettings {
            per_key_per_second: 10.0,
            per_key_burst: 20.0,
            failed_auth_burst: 3.0,
            failed_auth_per_second: 0.5,
            max_in_flight: 2,
        })
    }

    #[test]
    fn a_key_gets_its_burst_then_its_rate() {
        let l = limiter();
        let t0 = Instant::now();
        for _ in 0..20 {
            assert!(l.check_key("key_a", None, t0).is_ok());
        }
        let wait = l.check_key("key_a", None, t0).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(100));
        assert_eq!(retry_after_secs(wait), 1);
        // Another key is not affected.
        assert!(l.check_key("key_b", None, t0).is_ok());
        // A tenth of a second later, one more request fits.
        let t1 = t0 + Duration::from_millis(100);
        assert!(l.check_key("key_a", None, t1).is_ok());
        assert!(l.check_key("key_a", None, t1).is_err());
    }

    #[test]
    fn a_key_override_sets_rate_and_burst() {
        let l = limiter();
        let t0 = Instant::now();
        let ok = (0..60)
            .filter(|_| l.check_key("slow", Some(5.0), t0).is_ok())
            .count();
        assert_eq!(ok, 10, "burst keeps the configured 2x ratio");
        let wait = l.check_key("slow", Some(5.0), t0).unwrap_err();
        assert!(wait <= Duration::from_millis(200));
    }

    #[test]
    fn failed_attempts_slow_an_address_down() {
        let l = limiter();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.auth_blocked(ip, t0).is_none());
            l.auth_failed(ip, t0);
        }
        let wait = l.auth_blocked(ip, t0).unwrap();
        assert_eq!(retry_after_secs(wait), 2);
        assert!(l.auth_blocked(other, t0).is_none());
        assert!(l.auth_blocked(ip, t0 + Duration::from_secs(2)).is_none());
    }

    #[test]
    fn in_flight_is_capped() {
        let l = limiter();
        let a = l.enter().unwrap();
        let _b = l.enter().unwrap();
        assert!(l.enter().is_none());
        drop(a);
        assert!(l.enter().is_some());
    }

    #[test]
    fn json_depth_counts_structure_not_strings() {
        assert!(!json_too_deep(br#"{"a":[1,{"b":2}]}"#, 3));
        assert!(json_too_deep(br#"{"a":[1,{"b":[2]}]}"#, 3));
        assert!(!json_too_deep(br#"{"a":"[[[[[[[[\"[[["}"#, 1));
        let deep = "[".repeat(10_000);
        assert!(json_too_deep(deep.as_bytes(), 64));
    }
}
