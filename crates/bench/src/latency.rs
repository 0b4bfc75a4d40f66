//! Latency recording: HdrHistograms of microseconds, sharded so that thousands of subscriber tasks
//! can record at once without queueing on one lock, and the summary the report prints.

use std::sync::{Mutex, MutexGuard, PoisonError};

use hdrhistogram::Histogram;
use serde::Serialize;

/// The largest latency recorded exactly: one minute. Anything slower is recorded as one minute,
/// which every threshold of the suite already counts as a failure.
const HIGHEST_MICROS: u64 = 60_000_000;

/// An empty histogram of microseconds, 1 µs to one minute, three significant figures.
pub fn histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts; a failure here is a bug in this file.
    Histogram::new_with_bounds(1, HIGHEST_MICROS, 3).expect("valid histogram bounds")
}

/// Histograms written by many tasks: each task records into the shard its index picks.
#[derive(Debug)]
pub struct Shards {
    shards: Vec<Mutex<Histogram<u64>>>,
}

impl Shards {
    pub fn new(count: usize) -> Shards {
        Shards {
            shards: (0..count.max(1)).map(|_| Mutex::new(histogram())).collect(),
        }
    }

    fn shard(&self, index: usize) -> MutexGuard<'_, Histogram<u64>> {
        // A panic while recording leaves a histogram that is still a valid histogram.
        self.shards[index % self.shards.len()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Records one latency, in microseconds.
    pub fn record(&self, index: usize, micros: u64) {
        self.shard(index).saturating_record(micros.max(1));
    }

    /// Empties every shard.
    pub fn reset(&self) {
        for index in 0..self.shards.len() {
            self.shard(index).reset();
        }
    }

    /// All shards added up.
    pub fn merged(&self) -> Histogram<u64> {
        let mut all = histogram();
        for index in 0..self.shards.len() {
            // Same bounds on both sides: adding cannot fail.
            let _ = all.add(&*self.shard(index));
        }
        all
    }
}

/// What the report says about a set of latencies, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Summary {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Summary {
    pub fn of(histogram: &Histogram<u64>) -> Summary {
        if histogram.is_empty() {
            return Summary::default();
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Summary {
            count: histogram.len(),
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
        }
    }

    /// The summary of a few samples, in microseconds.
    pub fn of_samples(micros: &[u64]) -> Summary {
        let mut histogram = histogram();
        for &sample in micros {
            histogram.saturating_record(sample.max(1));
        }
        Summary::of(&histogram)
    }
}

/// The median of `values`, ignoring NaNs; the mean of the middle two for an even count.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if !sorted.len().is_multiple_of(2) {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_uniform_spread() {
        let samples: Vec<u64> = (1..=1000).map(|ms| ms * 1000).collect();
        let summary = Summary::of_samples(&samples);
        assert_eq!(summary.count, 1000);
        // Three significant figures: within 0.1 % of the exact order statistic.
        assert!((summary.p50_ms - 500.0).abs() <= 0.5, "{summary:?}");
        assert!((summary.p99_ms - 990.0).abs() <= 1.0, "{summary:?}");
        assert!((summary.max_ms - 1000.0).abs() <= 1.0, "{summary:?}");
    }

    #[test]
    fn one_slow_outlier_moves_the_max_but_not_the_p99() {
        let mut samples = vec![2_000; 999];
        samples.push(5_000_000);
        let summary = Summary::of_samples(&samples);
        assert!((summary.p99_ms - 2.0).abs() < 0.01, "{summary:?}");
        assert!((summary.max_ms - 5000.0).abs() < 5.0, "{summary:?}");
    }

    #[test]
    fn latencies_beyond_a_minute_saturate_instead_of_being_lost() {
        let summary = Summary::of_samples(&[10, 3_600_000_000]);
        assert_eq!(summary.count, 2);
        assert!(summary.max_ms >= 59_000.0, "{summary:?}");
    }

    #[test]
    fn nothing_recorded_is_all_zeros() {
        assert_eq!(Summary::of_samples(&[]), Summary::default());
    }

    #[test]
    fn shards_merge_into_one_histogram() {
        let shards = Shards::new(4);
        for i in 0..100u64 {
            shards.record(i as usize, 1000 + i);
        }
        assert_eq!(shards.merged().len(), 100);
        shards.reset();
        assert!(shards.merged().is_empty());
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN, 1.0]), Some(1.0));
    }
}
