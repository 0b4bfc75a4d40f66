//! The rate search: the highest publish rate whose step passes, in a bounded number of steps.
//!
//! Rates double from the start until a step fails, then the search bisects (geometrically)
//! between the best pass and the lowest failure until they are within [`RESOLUTION`] of each
//! other or the steps run out. A failure at the very first rate halves it instead, down to
//! [`MIN_RATE`]. A fan-out run searches twice: first for the most a server can deliver at all
//! ([`Criteria::sustains`]), then, starting from what that search already learnt, for the most
//! it can deliver within the latency bound ([`Criteria::passes`]).

use serde::Serialize;

/// Stop bisecting once the lowest failure is within this factor of the best pass.
pub const RESOLUTION: f64 = 1.15;
/// The lowest publish rate tried, in messages per second.
pub const MIN_RATE: f64 = 1.0;

/// When a step counts as sustained.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Criteria {
    /// Fraction of (published × subscribers) that must arrive.
    pub min_delivered: f64,
    /// Highest acceptable p99 post→received latency.
    pub max_p99_ms: f64,
    /// Fraction of the scheduled messages the publisher must actually get out: a server that
    /// stops reading its publisher has not sustained the rate either.
    pub min_published: f64,
}

impl Default for Criteria {
    fn default() -> Self {
        Criteria {
            min_delivered: 0.99,
            max_p99_ms: 100.0,
            min_published: 0.95,
        }
    }
}

impl Criteria {
    /// Whether the rate was sustained at all: delivered, and the publisher kept up.
    pub fn sustains(&self, scheduled: u64, published: u64, delivery_ratio: f64) -> bool {
        let published_ok = published as f64 >= self.min_published * scheduled as f64;
        published_ok && delivery_ratio >= self.min_delivered
    }

    /// Whether the rate was sustained within the latency bound too.
    pub fn passes(&self, scheduled: u64, published: u64, delivery_ratio: f64, p99_ms: f64) -> bool {
        self.sustains(scheduled, published, delivery_ratio) && p99_ms <= self.max_p99_ms
    }
}

/// Where the search stands.
#[derive(Debug, Clone)]
pub struct RateSearch {
    next: Option<f64>,
    best_pass: Option<f64>,
    lowest_fail: Option<f64>,
    steps: usize,
    max_steps: usize,
}

impl RateSearch {
    pub fn new(start: f64, max_steps: usize) -> RateSearch {
        RateSearch {
            next: (max_steps > 0).then_some(start.max(MIN_RATE)),
            best_pass: None,
            lowest_fail: None,
            steps: 0,
            max_steps,
        }
    }

    /// A search that already knows how some rates fared (`(rate, passed)`): it goes on from the
    /// best pass and the lowest failure among them, or starts at `start` if there are none.
    pub fn resume(
        start: f64,
        max_steps: usize,
        known: impl IntoIterator<Item = (f64, bool)>,
    ) -> RateSearch {
        let mut search = RateSearch::new(start, max_steps);
        let (mut best_pass, mut lowest_fail) = (None::<f64>, None::<f64>);
        for (rate, passed) in known {
            if passed {
                best_pass = Some(best_pass.map_or(rate, |b| b.max(rate)));
            } else {
                lowest_fail = Some(lowest_fail.map_or(rate, |f| f.min(rate)));
            }
        }
        // A pass above a failure (a noisy machine) says the failure was bad luck.
        if let (Some(pass), Some(fail)) = (best_pass, lowest_fail)
            && pass >= fail
        {
            lowest_fail = None;
        }
        search.best_pass = best_pass;
        search.lowest_fail = lowest_fail;
        if max_steps == 0 {
            return search;
        }
        search.next = match (best_pass, lowest_fail) {
            (None, None) => search.next,
            (Some(pass), None) => Some(pass * 2.0),
            (None, Some(fail)) => (fail > MIN_RATE).then(|| (fail / 2.0).max(MIN_RATE)),
            (Some(pass), Some(fail)) => {
                (fail / pass > RESOLUTION).then(|| round_rate((pass * fail).sqrt()))
            }
        };
        search
    }

    /// The rate to try next, or None when the search is over.
    pub fn next_rate(&self) -> Option<f64> {
        self.next
    }

    /// The highest rate that passed.
    pub fn best(&self) -> Option<f64> {
        self.best_pass
    }

    /// Records the outcome of the step at [`next_rate`](Self::next_rate) and picks the next one.
    pub fn record(&mut self, passed: bool) {
        let Some(rate) = self.next else {
            return;
        };
        self.steps += 1;
        if passed {
            self.best_pass = Some(self.best_pass.map_or(rate, |b| b.max(rate)));
        } else {
            self.lowest_fail = Some(self.lowest_fail.map_or(rate, |f| f.min(rate)));
        }
        self.next = if self.steps >= self.max_steps {
            None
        } else {
            match (self.best_pass, self.lowest_fail) {
                (_, None) => Some(rate * 2.0),
                (None, Some(fail)) => (fail > MIN_RATE).then(|| (fail / 2.0).max(MIN_RATE)),
                (Some(pass), Some(fail)) => {
                    (fail / pass > RESOLUTION).then(|| round_rate((pass * fail).sqrt()))
                }
            }
        };
    }
}

/// Rates above ten are whole numbers, so the report reads cleanly.
fn round_rate(rate: f64) -> f64 {
    if rate >= 10.0 { rate.round() } else { rate }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a search against a server that sustains exactly `capacity` messages per second.
    fn run(start: f64, max_steps: usize, capacity: f64) -> (Option<f64>, Vec<f64>) {
        let mut search = RateSearch::new(start, max_steps);
        let mut tried = Vec::new();
        while let Some(rate) = search.next_rate() {
            tried.push(rate);
            search.record(rate <= capacity);
        }
        (search.best(), tried)
    }

    #[test]
    fn doubles_until_a_failure_then_bisects() {
        let (best, tried) = run(10.0, 20, 100.0);
        assert_eq!(&tried[..5], &[10.0, 20.0, 40.0, 80.0, 160.0]);
        let best = best.unwrap();
        assert!(
            best <= 100.0 && best * RESOLUTION >= 100.0 / RESOLUTION,
            "{best} {tried:?}"
        );
    }

    #[test]
    fn never_takes_more_steps_than_allowed() {
        for max_steps in 0..12 {
            let (_, tried) = run(1.0, max_steps, 1e9);
            assert_eq!(tried.len(), max_steps);
        }
    }

    #[test]
    fn stops_once_pass_and_failure_are_close() {
        let (best, tried) = run(100.0, 50, 150.0);
        assert!(tried.len() < 12, "{tried:?}");
        let best = best.unwrap();
        assert!(
            best <= 150.0 && 150.0 / best < RESOLUTION * RESOLUTION,
            "{best}"
        );
    }

    #[test]
    fn a_first_failure_halves_down_to_the_minimum_and_gives_up() {
        let (best, tried) = run(8.0, 20, 0.1);
        assert_eq!(best, None);
        assert_eq!(tried, vec![8.0, 4.0, 2.0, 1.0]);
    }

    #[test]
    fn a_first_failure_then_a_pass_bisects_between_them() {
        let (best, tried) = run(8.0, 20, 3.0);
        assert_eq!(&tried[..3], &[8.0, 4.0, 2.0]);
        let best = best.unwrap();
        assert!((2.0..=3.0).contains(&best), "{best} {tried:?}");
    }

    #[test]
    fn a_resumed_search_goes_on_from_what_is_known() {
        // Known: 10 passed, 40 failed → bisect between them.
        let search = RateSearch::resume(5.0, 4, [(10.0, true), (40.0, false), (20.0, false)]);
        assert_eq!(search.best(), Some(10.0));
        assert_eq!(search.next_rate(), Some(14.0));
        // Only failures → halve the lowest.
        let search = RateSearch::resume(5.0, 4, [(10.0, false), (20.0, false)]);
        assert_eq!(search.next_rate(), Some(5.0));
        // Only passes → double the best.
        let search = RateSearch::resume(5.0, 4, [(10.0, true), (20.0, true)]);
        assert_eq!(search.next_rate(), Some(40.0));
        // Already close enough → nothing left to try.
        let search = RateSearch::resume(5.0, 4, [(10.0, true), (11.0, false)]);
        assert_eq!(search.next_rate(), None);
        assert_eq!(search.best(), Some(10.0));
        // Nothing known → the start.
        let search = RateSearch::resume(5.0, 4, []);
        assert_eq!(search.next_rate(), Some(5.0));
        // No steps → nothing to try.
        assert_eq!(RateSearch::resume(5.0, 0, [(10.0, true)]).next_rate(), None);
    }

    #[test]
    fn a_pass_above_a_failure_discards_the_failure() {
        let search = RateSearch::resume(5.0, 4, [(10.0, false), (20.0, true)]);
        assert_eq!(search.best(), Some(20.0));
        assert_eq!(search.next_rate(), Some(40.0));
    }

    #[test]
    fn criteria_need_delivery_latency_and_the_publisher_keeping_up() {
        let c = Criteria::default();
        assert!(c.passes(100, 100, 0.995, 80.0));
        assert!(!c.passes(100, 100, 0.98, 80.0), "lost too many");
        assert!(!c.passes(100, 100, 1.0, 101.0), "too slow");
        assert!(!c.passes(100, 90, 1.0, 10.0), "publisher held back");
        assert!(c.sustains(100, 100, 1.0), "slow but delivered");
        assert!(!c.sustains(100, 100, 0.98));
        assert!(!c.sustains(100, 90, 1.0));
    }
}
