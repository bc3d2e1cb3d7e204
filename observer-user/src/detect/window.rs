//! Counting over several windows at once, from seconds to a day, in constant space.
//!
//! Every behaviour detector asks the same question at different time scales: how many calls
//! (failures, distinct ids...) in the last ten seconds, minute, ten minutes, hour, day? A loud
//! attack crosses a threshold in the short windows; a slow one, spread so thin that no minute
//! looks odd, still adds up in the hour or the day. [`Windows`] answers all five with two
//! counters per window (the sliding-window approximation: the current period's count plus the
//! previous period's, weighted by how much of it still overlaps the window), so a caller costs
//! the same whatever its rate.
//!
//! Each period that ends is also a *sample* of "calls per window" that [`Windows::add`] hands
//! back, which is what the baselines (`baseline`) learn from.

use serde::{Deserialize, Serialize};

/// The windows every counter keeps, shortest first.
pub const WINDOWS: [Window; WINDOW_COUNT] = [
    Window {
        name: "10s",
        secs: 10,
    },
    Window {
        name: "1m",
        secs: 60,
    },
    Window {
        name: "10m",
        secs: 600,
    },
    Window {
        name: "1h",
        secs: 3_600,
    },
    Window {
        name: "1d",
        secs: 86_400,
    },
];

pub const WINDOW_COUNT: usize = 5;

/// One time scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// As written in the config file and in findings (`1m`).
    pub name: &'static str,
    pub secs: u64,
}

/// The index of the window called `name`.
pub fn window_index(name: &str) -> Option<usize> {
    WINDOWS.iter().position(|w| w.name == name)
}

/// A count over one sliding window, approximated from two fixed periods.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Sliding {
    /// Start of the current period (seconds), aligned to the window's length.
    start: u64,
    current: u32,
    previous: u32,
}

/// A period that ended: its count, and how many empty periods followed it before `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rolled {
    pub count: u32,
    pub empty_after: u64,
}

impl Sliding {
    /// Move to the period holding `now`; what ended, if anything did.
    fn advance(&mut self, now: u64, len: u64) -> Option<Rolled> {
        let start = now - now % len;
        if start <= self.start {
            // Same period, or a timestamp from the past (calls finish out of order): it counts
            // in the current period.
            return None;
        }
        let periods = (start - self.start) / len;
        let rolled = (self.start != 0 || self.current != 0).then_some(Rolled {
            count: self.current,
            empty_after: periods - 1,
        });
        self.previous = if periods == 1 { self.current } else { 0 };
        self.current = 0;
        self.start = start;
        rolled
    }

    fn add(&mut self, now: u64, len: u64, n: u32) -> Option<Rolled> {
        let rolled = self.advance(now, len);
        self.current = self.current.saturating_add(n);
        rolled
    }

    /// The count over the `len` seconds ending at `now`.
    fn estimate(&self, now: u64, len: u64) -> f64 {
        let start = now - now % len;
        if start > self.start + len {
            return 0.0;
        }
        if start > self.start {
            // `now` is in the period after ours: only our period overlaps.
            let overlap = 1.0 - (now - start) as f64 / len as f64;
            return f64::from(self.current) * overlap;
        }
        let overlap = 1.0 - (now.saturating_sub(self.start)) as f64 / len as f64;
        f64::from(self.current) + f64::from(self.previous) * overlap.max(0.0)
    }
}

/// One count per window in [`WINDOWS`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Windows([Sliding; WINDOW_COUNT]);

impl Windows {
    /// Count `n` events at `now` (seconds); `on_roll(window, rolled)` hears of every period
    /// that ended.
    pub fn add(&mut self, now: u64, n: u32, mut on_roll: impl FnMut(usize, Rolled)) {
        for (i, (sliding, window)) in self.0.iter_mut().zip(WINDOWS).enumerate() {
            if let Some(rolled) = sliding.add(now, window.secs, n) {
                on_roll(i, rolled);
            }
        }
    }

    /// The count over window `i` ending at `now`.
    pub fn estimate(&self, i: usize, now: u64) -> f64 {
        self.0[i].estimate(now, WINDOWS[i].secs)
    }

    /// Counts over every window.
    pub fn estimates(&self, now: u64) -> [f64; WINDOW_COUNT] {
        std::array::from_fn(|i| self.estimate(i, now))
    }
}

/// Distinct values (object ids, credentials) seen lately, each with when it was last seen, so
/// the distinct count over any window is one pass. Bounded: past `cap` values the oldest is
/// forgotten, which only ever lowers counts (never a false alarm).
#[derive(Debug, Clone, Default)]
pub struct Recent {
    entries: Vec<RecentEntry>,
}

#[derive(Debug, Clone, Copy)]
pub struct RecentEntry {
    pub value: u64,
    pub last_seen: u64,
    /// A detector's mark on the value (denied, say).
    pub flag: bool,
}

impl Recent {
    /// Note `value` at `now`; true if it was not among the values remembered.
    pub fn insert(&mut self, value: u64, now: u64, flag: bool, cap: usize) -> bool {
        if let Some(entry) = self.entries.iter_mut().find(|e| e.value == value) {
            entry.last_seen = entry.last_seen.max(now);
            entry.flag |= flag;
            return false;
        }
        if self.entries.len() >= cap {
            if let Some(oldest) = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.last_seen)
                .map(|(i, _)| i)
            {
                self.entries.swap_remove(oldest);
            }
        }
        self.entries.push(RecentEntry {
            value,
            last_seen: now,
            flag,
        });
        true
    }

    /// Values seen within the last `secs` before `now`.
    pub fn within(&self, now: u64, secs: u64) -> impl Iterator<Item = &RecentEntry> {
        let since = now.saturating_sub(secs);
        self.entries.iter().filter(move |e| e.last_seen >= since)
    }

    /// Distinct values (and how many of them are flagged) in each window.
    pub fn counts(&self, now: u64) -> [(u32, u32); WINDOW_COUNT] {
        let mut out = [(0u32, 0u32); WINDOW_COUNT];
        for entry in &self.entries {
            let age = now.saturating_sub(entry.last_seen);
            for (count, window) in out.iter_mut().zip(WINDOWS) {
                if age < window.secs {
                    count.0 += 1;
                    count.1 += u32::from(entry.flag);
                }
            }
        }
        out
    }

    /// Forget values not seen for `secs`.
    pub fn expire(&mut self, now: u64, secs: u64) {
        let since = now.saturating_sub(secs);
        self.entries.retain(|e| e.last_seen >= since);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 1_800_000_000;

    #[test]
    fn a_burst_shows_in_every_window_and_fades_from_the_short_ones() {
        let mut w = Windows::default();
        for _ in 0..50 {
            w.add(DAY + 5, 1, |_, _| {});
        }
        let now = w.estimates(DAY + 6);
        assert!(now.iter().all(|&c| (c - 50.0).abs() < 1e-9), "{now:?}");
        // Two minutes later the 10 s and 1 min windows have forgotten it; the rest have not.
        let later = w.estimates(DAY + 125);
        assert_eq!(later[0], 0.0);
        assert_eq!(later[1], 0.0);
        assert!(later[3] > 49.0 && later[4] > 49.0, "{later:?}");
    }

    #[test]
    fn a_slow_trickle_adds_up_only_in_the_long_windows() {
        let mut w = Windows::default();
        let start = DAY - DAY % 86_400;
        // One event every five minutes for ten hours.
        for i in 0..120 {
            w.add(start + i * 300, 1, |_, _| {});
        }
        let at = start + 119 * 300;
        let counts = w.estimates(at);
        assert!(counts[1] <= 1.0, "{counts:?}");
        assert!((10.0..=14.0).contains(&counts[3]), "{counts:?}");
        assert!((119.0..=121.0).contains(&counts[4]), "{counts:?}");
    }

    #[test]
    fn periods_that_end_are_reported_with_the_empty_ones_after_them() {
        let mut w = Windows::default();
        let mut rolled = Vec::new();
        w.add(DAY, 3, |i, r| rolled.push((i, r)));
        assert!(rolled.is_empty());
        // 35 s later: the 10 s period that held the 3 ended, followed by two empty ones.
        w.add(DAY + 35, 1, |i, r| rolled.push((i, r)));
        assert_eq!(
            rolled[0],
            (
                0,
                Rolled {
                    count: 3,
                    empty_after: 2
                }
            )
        );
    }

    #[test]
    fn times_from_the_past_do_not_move_windows_back() {
        let mut w = Windows::default();
        w.add(DAY + 100, 1, |_, _| {});
        w.add(DAY + 50, 1, |_, _| {});
        assert_eq!(w.estimate(1, DAY + 100), 2.0);
    }

    #[test]
    fn recent_values_are_bounded_and_counted_per_window() {
        let mut recent = Recent::default();
        for id in 0..10u64 {
            assert!(recent.insert(id, DAY + id * 100, id % 2 == 0, 8));
        }
        assert!(!recent.insert(9, DAY + 1_000, false, 8));
        assert_eq!(recent.len(), 8);
        let counts = recent.counts(DAY + 1_000);
        // Ids 2..=9 remain; within the last minute only 9 (seen again at +1000).
        assert_eq!(counts[1], (1, 0));
        assert_eq!(counts[3], (8, 4));
        recent.expire(DAY + 1_000, 300);
        assert_eq!(recent.len(), 3);
    }
}
