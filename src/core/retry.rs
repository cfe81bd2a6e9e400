//! When to try a check-and-set again, and how long to wait first.
//!
//! Full jitter exponential backoff (each wait drawn uniformly from zero to an exponentially
//! growing cap) spreads writers that lost the same race, and an overall deadline bounds the
//! time a caller waits before getting a 503 it can retry on its own.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The cap of the first wait; doubled after each conflict.
    pub base: Duration,
    /// No single wait exceeds this.
    pub max_delay: Duration,
    /// No allocation keeps trying past this, counted from its start.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(2),
            max_delay: Duration::from_millis(200),
            deadline: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait before try `attempt + 1`, given that `attempt` (1-based) tries have
    /// conflicted and `elapsed` has passed; `None` when the deadline leaves no room.
    /// `random` is a uniformly random u64 supplied by the caller.
    pub fn delay(&self, attempt: u32, elapsed: Duration, random: u64) -> Option<Duration> {
        let doubling = attempt.saturating_sub(1).min(20);
        let cap = self.base.saturating_mul(1 << doubling).min(self.max_delay);
        let cap_us = cap.as_micros().max(1) as u64;
        let wait = Duration::from_micros(random % (cap_us + 1));
        (elapsed + wait < self.deadline).then_some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_exponentially_up_to_the_cap() {
        let p = RetryPolicy::default();
        // With the largest random draw the wait equals the cap for that attempt.
        let max = |attempt| p.delay(attempt, Duration::ZERO, u64::MAX - 1).unwrap();
        assert!(max(1) <= Duration::from_millis(2));
        assert!(max(3) <= Duration::from_millis(8));
        assert!(max(30) <= Duration::from_millis(200));
        assert!(max(30) > Duration::from_millis(100), "{:?}", max(30));
    }

    #[test]
    fn waits_are_jittered_by_the_random_draw() {
        let p = RetryPolicy::default();
        let a = p.delay(5, Duration::ZERO, 12_345).unwrap();
        let b = p.delay(5, Duration::ZERO, 6_789).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn no_retry_is_offered_past_the_deadline() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1, Duration::from_secs(10), 0), None);
        assert!(p.delay(1, Duration::from_secs(9), 0).is_some());
    }
}
