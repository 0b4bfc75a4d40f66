//! Reconnect delays: exponential backoff with full jitter, capped.
//!
//! Each attempt waits a random time between zero and `min(cap, base · 2^attempt)`, so clients
//! that lost the same server at the same moment spread their reconnects over the whole window
//! instead of arriving together.

use std::time::Duration;

use rand::RngExt;

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff {
            base,
            cap,
            attempt: 0,
        }
    }

    /// The ceiling of the next delay, before jitter.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The next delay, and one more attempt counted.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(0..=millis))
    }

    /// How many attempts have failed since the last success.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// A connection succeeded: start again from `base`.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

impl Default for Backoff {
    /// 500 ms doubling up to 30 s.
    fn default() -> Backoff {
        Backoff::new(Duration::from_millis(500), Duration::from_secs(30))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_and_stay_within_it() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let ceilings: Vec<u128> = (0..8)
            .map(|_| {
                let ceiling = b.ceiling();
                let delay = b.next_delay();
                assert!(delay <= ceiling, "{delay:?} > {ceiling:?}");
                ceiling.as_millis()
            })
            .collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_millis(100));
    }

    #[test]
    fn jitter_spreads_clients_over_the_window() {
        // 1000 clients at the same attempt: their delays should cover the window, not cluster.
        let delays: Vec<u128> = (0..1000)
            .map(|_| {
                let mut b = Backoff::new(Duration::from_millis(1000), Duration::from_secs(30));
                b.next_delay().as_millis()
            })
            .collect();
        let low = delays.iter().filter(|d| **d < 250).count();
        let high = delays.iter().filter(|d| **d > 750).count();
        assert!(low > 150 && high > 150, "low {low}, high {high}");
    }

    #[test]
    fn huge_attempt_counts_do_not_overflow() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        for _ in 0..100 {
            assert!(b.next_delay() <= Duration::from_secs(60));
        }
    }
}
