//! A latency sketch: percentiles within a known relative error, in a few hundred bytes, without
//! keeping samples.
//!
//! The DDSketch idea (Masson, Rim, Lee, VLDB 2019): a value `x` goes to bucket
//! `ceil(log_γ x)` with `γ = (1 + α) / (1 − α)`; any quantile read back from its bucket is within
//! relative error `α` of the true one. Buckets are kept sparse and sorted; an endpoint's
//! latencies span a few orders of magnitude, so a sketch holds tens of buckets, at most
//! [`MAX_BUCKETS`]. Sketches merge exactly (bucket counts add), which is what merging two
//! endpoints into one needs.

use serde::{Deserialize, Serialize};

/// Relative accuracy of every quantile: 1 %.
pub const RELATIVE_ACCURACY: f64 = 0.01;

/// Smallest latency told apart from zero, in milliseconds (1 µs): below the clock's resolution
/// for an API call.
const MIN_VALUE_MS: f64 = 0.001;

/// Buckets kept at most. With 1 % accuracy, 1 µs to 1 hour spans about 1,100 buckets; a real
/// endpoint uses far fewer. Past the cap the two lowest buckets merge: low percentiles lose
/// accuracy first, and those matter least for latency.
pub const MAX_BUCKETS: usize = 512;

fn gamma_ln() -> f64 {
    ((1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)).ln()
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySketch {
    /// (bucket index, count), sorted by index.
    #[serde(rename = "b")]
    buckets: Vec<(i32, u64)>,
    /// Values at or below [`MIN_VALUE_MS`].
    #[serde(rename = "z", default)]
    zeros: u64,
    #[serde(rename = "n")]
    count: u64,
    #[serde(rename = "max", default)]
    max: f64,
}

impl LatencySketch {
    pub fn add(&mut self, ms: f64) {
        if !ms.is_finite() || ms < 0.0 {
            return;
        }
        self.count += 1;
        self.max = self.max.max(ms);
        if ms <= MIN_VALUE_MS {
            self.zeros += 1;
            return;
        }
        let index = (ms.ln() / gamma_ln()).ceil() as i32;
        match self.buckets.binary_search_by_key(&index, |(i, _)| *i) {
            Ok(at) => self.buckets[at].1 += 1,
            Err(at) => {
                self.buckets.insert(at, (index, 1));
                self.enforce_cap();
            }
        }
    }

    fn enforce_cap(&mut self) {
        while self.buckets.len() > MAX_BUCKETS {
            let (_, lowest) = self.buckets.remove(0);
            self.buckets[0].1 += lowest;
        }
    }

    pub fn merge(&mut self, other: &LatencySketch) {
        for &(index, count) in &other.buckets {
            match self.buckets.binary_search_by_key(&index, |(i, _)| *i) {
                Ok(at) => self.buckets[at].1 += count,
                Err(at) => self.buckets.insert(at, (index, count)),
            }
        }
        self.enforce_cap();
        self.zeros += other.zeros;
        self.count += other.count;
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }

    /// The `q` quantile (0..=1), in milliseconds.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * (self.count - 1) as f64).round() as u64;
        if rank < self.zeros {
            return Some(0.0);
        }
        let mut seen = self.zeros;
        for &(index, count) in &self.buckets {
            seen += count;
            if seen > rank {
                // The bucket's midpoint in the relative sense: within α of every value in it.
                let gamma = gamma_ln().exp();
                let value = 2.0 * (f64::from(index) * gamma_ln()).exp() / (1.0 + gamma);
                return Some(value.min(self.max));
            }
        }
        Some(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_the_relative_error() {
        let mut sketch = LatencySketch::default();
        let mut values: Vec<f64> = (1..=10_000).map(|i| f64::from(i) * 0.037).collect();
        for v in &values {
            sketch.add(*v);
        }
        values.sort_by(f64::total_cmp);
        for q in [0.5, 0.9, 0.99] {
            let exact = values[((values.len() - 1) as f64 * q).round() as usize];
            let got = sketch.quantile(q).unwrap();
            assert!(
                (got - exact).abs() <= exact * RELATIVE_ACCURACY * 1.01,
                "q{q}: {got} vs {exact}"
            );
        }
        assert!(sketch.buckets.len() < 600);
        assert_eq!(sketch.max(), Some(370.0));
    }

    #[test]
    fn merging_adds_counts() {
        let mut a = LatencySketch::default();
        let mut b = LatencySketch::default();
        for i in 0..100 {
            a.add(1.0 + f64::from(i));
            b.add(1000.0 + f64::from(i));
        }
        b.add(0.0);
        a.merge(&b);
        assert_eq!(a.count(), 201);
        assert!(a.quantile(0.99).unwrap() > 1000.0);
        assert_eq!(a.quantile(0.0), Some(0.0));
    }

    #[test]
    fn the_bucket_count_is_capped() {
        let mut sketch = LatencySketch::default();
        let mut v = 0.002;
        while v < 1e9 {
            sketch.add(v);
            v *= 1.01;
        }
        assert!(sketch.buckets.len() <= MAX_BUCKETS);
        assert!(sketch.quantile(0.999).unwrap() > 1e8);
        sketch.add(f64::NAN);
        sketch.add(-1.0);
    }
}
