//! Usage anomalies: each account's hourly use (token reads and Graph calls) compared with that
//! account's own history.
//!
//! The history is an exponentially weighted mean and mean absolute deviation of the hourly
//! count, so it costs two numbers per account and adapts as an account's use grows. An hour is
//! a spike when its count exceeds `factor × (mean + deviation)` and `min_per_hour`. A spike is
//! folded into the history only up to that threshold, so that a sustained attack does not
//! become the new normal within a few hours. Empty hours count as zeros (decayed in closed
//! steps when the next use arrives), so an account that falls silent and then bursts is seen.

/// The unit the counts are kept in.
pub const INTERVAL_SECS: i64 = 3600;

/// Empty intervals decayed one by one at most; beyond this the history is zero to within
/// floating-point noise anyway (0.95^2000 < 1e-44).
const MAX_DECAY_STEPS: i64 = 2000;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnomalyPolicy {
    /// A spike is more than this many times the account's usual hourly use.
    pub factor: f64,
    /// …and more than this many uses in the hour, so that quiet accounts do not alarm.
    pub min_per_hour: u64,
    /// Weight of the newest hour in the history (0 < alpha ≤ 1).
    pub alpha: f64,
    /// Hours of history an account needs before its use is judged.
    pub warmup_intervals: i64,
}

impl Default for AnomalyPolicy {
    fn default() -> Self {
        AnomalyPolicy {
            factor: 10.0,
            min_per_hour: 100,
            // About a day's worth of memory: an hour's weight halves in ~14 hours.
            alpha: 0.05,
            warmup_intervals: 24,
        }
    }
}

/// The interval a unix time falls in.
pub fn interval_of(unix: i64) -> i64 {
    unix.div_euclid(INTERVAL_SECS)
}

/// One account's history, as stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Baseline {
    /// EWMA of the hourly count over the folded intervals.
    pub mean: f64,
    /// EWMA of the absolute difference between an hour's count and the mean.
    pub dev: f64,
    /// The interval of the account's first recorded use.
    pub first_interval: i64,
    /// The last interval folded into `mean` and `dev`.
    pub folded_through: i64,
    /// The interval being counted now, and its count so far.
    pub current_interval: i64,
    pub current_count: u64,
    /// The last interval a spike was raised for: one alarm per account per hour.
    pub flagged_interval: Option<i64>,
}

/// A spike: the count so far in `interval` passed `threshold`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spike {
    pub interval: i64,
    pub count: u64,
    pub threshold: f64,
    pub mean: f64,
}

impl Baseline {
    /// A new account's history, starting with the interval of its first use.
    pub fn new(interval: i64) -> Baseline {
        Baseline {
            mean: 0.0,
            dev: 0.0,
            first_interval: interval,
            folded_through: interval - 1,
            current_interval: interval,
            current_count: 0,
            flagged_interval: None,
        }
    }

    /// The count above which an hour is a spike.
    pub fn threshold(&self, policy: &AnomalyPolicy) -> f64 {
        (policy.factor * self.usual(policy)).max(policy.min_per_hour as f64)
    }

    /// The top of the usual band, `mean + dev`, corrected for the zeros both start from (as
    /// if every interval since the first use had been seen), so that a young history is not
    /// biased low.
    pub fn usual(&self, policy: &AnomalyPolicy) -> f64 {
        let folded = (self.folded_through - self.first_interval + 1).clamp(0, MAX_DECAY_STEPS);
        let weight = 1.0 - (1.0 - policy.alpha).powi(i32::try_from(folded).unwrap_or(i32::MAX));
        if weight <= 0.0 {
            return 0.0;
        }
        (self.mean + self.dev) / weight
    }

    /// Whether the account has enough history for its use to be judged in `interval`.
    pub fn judged_in(&self, interval: i64, policy: &AnomalyPolicy) -> bool {
        interval - self.first_interval >= policy.warmup_intervals
    }

    fn step(&mut self, count: f64, alpha: f64) {
        self.dev = (1.0 - alpha) * self.dev + alpha * (count - self.mean).abs();
        self.mean = (1.0 - alpha) * self.mean + alpha * count;
    }

    /// Folds every closed interval before `interval` into the history: the counted one,
    /// and zeros for the empty ones around it.
    fn close_through(&mut self, interval: i64, policy: &AnomalyPolicy) {
        if self.current_interval >= interval {
            return;
        }
        // A spike enters the history only as the top of the usual band: growth the account
        // really has is learned hour by hour, a burst is not.
        let counted = if self.flagged_interval == Some(self.current_interval) {
            self.usual(policy)
        } else {
            self.current_count as f64
        };
        self.step(counted, policy.alpha);
        let empty_after = (interval - self.current_interval - 1).clamp(0, MAX_DECAY_STEPS);
        for _ in 0..empty_after {
            self.step(0.0, policy.alpha);
        }
        self.folded_through = interval - 1;
        self.current_interval = interval;
        self.current_count = 0;
    }

    /// Records `n` uses at a time in `interval` and says whether the hour is now a spike.
    /// Uses from an interval already closed (entries that committed late) count in the
    /// current one: the difference is an hour's boundary, never a lost use.
    pub fn observe(&mut self, interval: i64, n: u64, policy: &AnomalyPolicy) -> Option<Spike> {
        self.close_through(interval, policy);
        self.current_count = self.current_count.saturating_add(n);
        let now = self.current_interval;
        let threshold = self.threshold(policy);
        if self.judged_in(now, policy)
            && self.current_count as f64 > threshold
            && self.flagged_interval != Some(now)
        {
            self.flagged_interval = Some(now);
            return Some(Spike {
                interval: now,
                count: self.current_count,
                threshold,
                mean: self.mean,
            });
        }
        None
    }
}

/// Whether a read by a key that never read this account before is itself a signal: once the
/// account is past its warm-up (its usual readers are known), yes.
pub fn new_reader_is_signal(
    baseline: Option<&Baseline>,
    interval: i64,
    policy: &AnomalyPolicy,
) -> bool {
    baseline.is_some_and(|b| b.judged_in(interval, policy))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> AnomalyPolicy {
        AnomalyPolicy {
            min_per_hour: 20,
            ..AnomalyPolicy::default()
        }
    }

    /// Feeds `per_hour(h)` uses in each hour from `start` for `hours`, one at a time.
    fn run(b: &mut Baseline, start: i64, hours: i64, per_hour: impl Fn(i64) -> u64) -> Vec<Spike> {
        let p = policy();
        let mut spikes = Vec::new();
        for h in start..start + hours {
            for _ in 0..per_hour(h) {
                spikes.extend(b.observe(h, 1, &p));
            }
        }
        spikes
    }

    #[test]
    fn steady_use_for_a_week_never_spikes_then_a_50x_burst_does() {
        let mut b = Baseline::new(0);
        assert!(run(&mut b, 0, 24 * 7, |_| 4).is_empty());
        assert!((b.mean - 4.0).abs() < 0.5, "{b:?}");
        let spikes = run(&mut b, 24 * 7, 1, |_| 200);
        assert_eq!(spikes.len(), 1, "one alarm per hour, not one per use");
        let s = spikes[0];
        assert_eq!(s.interval, 24 * 7);
        assert_eq!(s.count, (s.threshold.floor() as u64) + 1);
    }

    #[test]
    fn a_daily_rhythm_is_not_a_spike() {
        let mut b = Baseline::new(0);
        // Quiet nights, busy days: 1 to 30 an hour.
        let rhythm = |h: i64| if (8..20).contains(&(h % 24)) { 30 } else { 1 };
        assert!(run(&mut b, 0, 24 * 14, rhythm).is_empty(), "{b:?}");
    }

    #[test]
    fn nothing_is_judged_during_warm_up_or_below_the_floor() {
        let mut b = Baseline::new(0);
        assert!(run(&mut b, 0, 23, |h| if h == 5 { 500 } else { 1 }).is_empty());
        // Past warm-up, 10× of a tiny baseline is still under min_per_hour.
        let mut b = Baseline::new(0);
        assert!(run(&mut b, 0, 48, |h| if h == 40 { 20 } else { 1 }).is_empty());
        let mut b = Baseline::new(0);
        assert_eq!(
            run(&mut b, 0, 48, |h| if h == 40 { 21 } else { 1 }).len(),
            1
        );
    }

    #[test]
    fn silence_decays_the_history() {
        let mut b = Baseline::new(0);
        assert!(run(&mut b, 0, 48, |_| 50).is_empty());
        // A week of silence, then the old busy rate is a spike again (the threshold fell).
        let spikes = run(&mut b, 48 + 24 * 7, 1, |_| 50);
        assert_eq!(spikes.len(), 1, "{b:?}");
        assert!(b.mean < 1.0);
    }

    #[test]
    fn a_sustained_attack_stays_above_the_threshold_for_hours() {
        let mut b = Baseline::new(0);
        assert!(run(&mut b, 0, 48, |_| 5).is_empty());
        let spikes = run(&mut b, 48, 6, |_| 1000);
        assert_eq!(spikes.len(), 6, "{spikes:?}");
    }

    #[test]
    fn late_entries_count_in_the_current_interval_and_long_gaps_are_bounded() {
        let p = policy();
        let mut b = Baseline::new(0);
        b.observe(10, 3, &p);
        b.observe(9, 2, &p);
        assert_eq!((b.current_interval, b.current_count), (10, 5));
        b.observe(i64::MAX / 2, 1, &p);
        assert!(b.mean.is_finite() && b.dev.is_finite());
    }

    #[test]
    fn new_readers_count_once_the_history_is_established() {
        let p = policy();
        assert!(!new_reader_is_signal(None, 100, &p));
        let b = Baseline::new(0);
        assert!(!new_reader_is_signal(Some(&b), 23, &p));
        assert!(new_reader_is_signal(Some(&b), 24, &p));
        assert_eq!(interval_of(7199), 1);
        assert_eq!(interval_of(-1), -1);
    }

    proptest::proptest! {
        /// Any sequence of uses keeps the history finite and non-negative, and raises at most
        /// one spike per interval.
        #[test]
        fn histories_stay_sane(steps in proptest::collection::vec((0i64..200, 0u64..100_000), 0..300)) {
            let p = policy();
            let mut b = Baseline::new(0);
            let mut interval = 0;
            let mut flagged = std::collections::HashSet::new();
            for (gap, n) in steps {
                interval += gap;
                if let Some(s) = b.observe(interval, n, &p) {
                    proptest::prop_assert!(flagged.insert(s.interval));
                    proptest::prop_assert!(s.count as f64 > s.threshold);
                }
                proptest::prop_assert!(b.mean.is_finite() && b.mean >= 0.0);
                proptest::prop_assert!(b.dev.is_finite() && b.dev >= 0.0);
                proptest::prop_assert!(b.threshold(&p) >= p.min_per_hour as f64);
            }
        }
    }
}
