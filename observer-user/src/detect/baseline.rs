//! What normal looks like: online statistics per endpoint and per caller, robust to the
//! outliers they exist to find.
//!
//! Two kinds of estimate, each where it fits:
//!
//! - **Over time, for one subject** ([`Ewma`]): an exponentially weighted mean and variance of
//!   a stream (calls per minute for one caller, an endpoint's latency). Values beyond
//!   [`CLIP_SIGMAS`] standard deviations are clipped before they are learnt (winsorized), so a
//!   burst moves the baseline a little instead of becoming it, yet a lasting change is still
//!   adopted: the baseline adapts as the API does.
//! - **Across subjects, at one time** ([`Spread`]): the median and the median absolute
//!   deviation of a set (calls per hour of every caller of an endpoint). Half the callers
//!   would have to misbehave together to move it, which is why "far above the endpoint's
//!   callers" is judged with it.
//!
//! [`Threshold`] turns either into the one number a detector compares with.

use serde::{Deserialize, Serialize};

use super::window::{Rolled, WINDOW_COUNT};

/// Deviations beyond which a value is clipped before it is learnt.
pub const CLIP_SIGMAS: f64 = 4.0;

/// Samples before an [`Ewma`]'s variance means anything: below this it is still learning.
pub const MIN_SAMPLES: u64 = 8;

/// Principals an endpoint's spread ([`Spread`]) must come from before detectors compare with
/// it instead of their floors: the median of three callers says little.
pub const MIN_PEERS: u32 = 5;

/// Before an endpoint is learnt, or with fewer than [`MIN_PEERS`] principals, a detector's
/// floor is raised by this much: there is nothing to compare with yet.
pub const UNLEARNED_FACTOR: f64 = 2.0;

/// The scale that makes a MAD estimate a standard deviation for normal data.
const MAD_TO_SIGMA: f64 = 1.4826;

/// Empty periods folded into a per-window baseline at once: after this many the mean is
/// already ~0, and folding more would only cost time after a long silence.
const MAX_EMPTY_PERIODS_FOLDED: u64 = 64;

/// An exponentially weighted mean and variance (West's incremental form), winsorized.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Ewma {
    pub mean: f64,
    pub var: f64,
    /// Samples learnt (saturating).
    pub n: u64,
}

impl Ewma {
    /// Learn `x` with weight `alpha` (0 < alpha ≤ 1: larger forgets faster).
    pub fn update(&mut self, x: f64, alpha: f64) {
        if !x.is_finite() {
            return;
        }
        if self.n == 0 {
            self.mean = x;
            self.var = 0.0;
            self.n = 1;
            return;
        }
        let x = if self.n >= MIN_SAMPLES {
            // A floor on the width, like a count's Poisson spread: a stream that was constant
            // while learning (variance 0) must still be able to move.
            let limit = CLIP_SIGMAS * self.sigma().max(self.mean.abs().sqrt()).max(1.0);
            x.clamp(self.mean - limit, self.mean + limit)
        } else {
            x
        };
        // Early samples weigh as a plain average would, so the first few do not swing it.
        let alpha = alpha.max(1.0 / (self.n + 1) as f64);
        let diff = x - self.mean;
        let increment = alpha * diff;
        self.mean += increment;
        self.var = (1.0 - alpha) * (self.var + diff * increment);
        self.n = self.n.saturating_add(1);
    }

    /// Learn `x`, then `zeros` samples of 0 (periods with nothing in them).
    pub fn update_with_gap(&mut self, x: f64, zeros: u64, alpha: f64) {
        self.update(x, alpha);
        for _ in 0..zeros.min(MAX_EMPTY_PERIODS_FOLDED) {
            self.update(0.0, alpha);
        }
    }

    pub fn sigma(&self) -> f64 {
        self.var.max(0.0).sqrt()
    }

    pub fn learned(&self) -> bool {
        self.n >= MIN_SAMPLES
    }
}

/// How quickly each window's per-caller baseline forgets: a sample per period, so the short
/// windows see many and can forget fast, the day sees one a day and must remember.
pub const WINDOW_ALPHA: [f64; WINDOW_COUNT] = [0.02, 0.05, 0.1, 0.15, 0.3];

/// Counts per period for every window (calls per 10 s, per minute... for one caller).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PerWindow(pub [Ewma; WINDOW_COUNT]);

impl PerWindow {
    /// Learn from a period of window `i` that ended.
    pub fn learn(&mut self, i: usize, rolled: Rolled) {
        self.0[i].update_with_gap(f64::from(rolled.count), rolled.empty_after, WINDOW_ALPHA[i]);
    }
}

/// Median and MAD of a set of values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub median: f64,
    pub mad: f64,
    /// How many values it was computed from.
    pub n: u32,
}

impl Spread {
    /// The spread of `values` (reordered in place).
    pub fn of(values: &mut [f64]) -> Spread {
        if values.is_empty() {
            return Spread::default();
        }
        let median = median_of(values);
        let mut deviations: Vec<f64> = values.iter().map(|v| (v - median).abs()).collect();
        let mad = median_of(&mut deviations);
        Spread {
            median,
            mad,
            n: u32::try_from(values.len()).unwrap_or(u32::MAX),
        }
    }

    /// A robust standard deviation: MAD scaled, with a floor so a set of identical values
    /// (every caller made exactly one call) does not make any difference look infinite.
    pub fn sigma(&self) -> f64 {
        (self.mad * MAD_TO_SIGMA).max(self.median.sqrt()).max(1.0)
    }
}

fn median_of(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mid = values.len() / 2;
    let (_, upper, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    let upper = *upper;
    if values.len() % 2 == 1 {
        return upper;
    }
    let lower = values[..mid].iter().copied().fold(f64::MIN, f64::max);
    (lower + upper) / 2.0
}

/// How far above normal is too far: `sigmas` deviations and `ratio` times the centre, never
/// below `floor`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    pub sigmas: f64,
    pub ratio: f64,
    pub floor: f64,
}

impl Threshold {
    /// The limit for a subject whose own history is `ewma`.
    pub fn over_time(&self, ewma: &Ewma) -> f64 {
        (ewma.mean + self.sigmas * ewma.sigma())
            .max(self.ratio * ewma.mean)
            .max(self.floor)
    }

    /// The limit for one of a set whose spread is `spread`.
    pub fn across(&self, spread: &Spread) -> f64 {
        (spread.median + self.sigmas * spread.sigma())
            .max(self.ratio * spread.median)
            .max(self.floor)
    }

    /// The limit among peers whose spread is `peers`: [`Threshold::across`] once there are
    /// enough of them to trust, the floor raised by [`UNLEARNED_FACTOR`] until then.
    pub fn among_peers(&self, peers: &Spread) -> f64 {
        if peers.n >= MIN_PEERS {
            self.across(peers)
        } else {
            self.floor * UNLEARNED_FACTOR
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ewma_learns_mean_and_spread() {
        let mut e = Ewma::default();
        for i in 0..1_000 {
            e.update(if i % 2 == 0 { 9.0 } else { 11.0 }, 0.05);
        }
        assert!((e.mean - 10.0).abs() < 0.2, "{e:?}");
        assert!((e.sigma() - 1.0).abs() < 0.2, "{e:?}");
        assert!(e.learned());
    }

    #[test]
    fn one_outlier_is_clipped_not_learnt() {
        let mut e = Ewma::default();
        for i in 0..200 {
            e.update(if i % 2 == 0 { 9.0 } else { 11.0 }, 0.05);
        }
        let before = e.mean;
        e.update(10_000.0, 0.05);
        // Clipped to mean + 4 × max(σ, √mean) ≈ 22.6: the mean moves by 5% of that step, not
        // of 10,000.
        assert!(e.mean - before < 1.0, "{before} -> {e:?}");
    }

    #[test]
    fn a_lasting_change_is_adopted() {
        let mut e = Ewma::default();
        for _ in 0..200 {
            e.update(10.0, 0.1);
        }
        for _ in 0..300 {
            e.update(50.0, 0.1);
        }
        assert!((e.mean - 50.0).abs() < 1.0, "{e:?}");
    }

    #[test]
    fn gaps_pull_the_mean_down() {
        let mut e = Ewma::default();
        for _ in 0..20 {
            e.update(10.0, 0.1);
        }
        e.update_with_gap(10.0, 1_000_000, 0.1);
        assert!(e.mean < 0.1, "{e:?}");
    }

    #[test]
    fn spread_ignores_a_minority_of_outliers() {
        let mut values: Vec<f64> = (0..100).map(|i| f64::from(i % 5) + 3.0).collect();
        values.extend([10_000.0; 10]);
        let spread = Spread::of(&mut values);
        assert_eq!(spread.median, 5.0);
        assert!(spread.mad <= 2.0, "{spread:?}");
        let limit = Threshold {
            sigmas: 6.0,
            ratio: 3.0,
            floor: 0.0,
        }
        .across(&spread);
        assert!((15.0..30.0).contains(&limit), "{limit}");
    }

    #[test]
    fn even_sets_take_the_middle_pair() {
        assert_eq!(Spread::of(&mut [1.0, 2.0, 3.0, 10.0]).median, 2.5);
        assert_eq!(Spread::of(&mut []).n, 0);
    }

    #[test]
    fn thresholds_never_fall_below_their_floor() {
        let t = Threshold {
            sigmas: 6.0,
            ratio: 5.0,
            floor: 30.0,
        };
        assert_eq!(t.over_time(&Ewma::default()), 30.0);
    }
}
