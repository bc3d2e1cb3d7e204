//! What the detectors know about each endpoint, principal, source, and principal on each
//! endpoint: the baselines (persisted, so a restart does not relearn) and the short-lived
//! counters attacks are measured with (in memory only).
//!
//! ```text
//! Endpoint   (service, method, route)  baseline: sizes, latency, status mix (errors, successes
//!                                      with and without credentials, callers' refused share),
//!                                      fields, page sizes, callers, its callers' spread
//! Principal  (user or token, or source) baseline: calls per window, learnt per period; and
//!   └ Pair   (principal × endpoint)     calls per window, object ids lately (BOLA), kept
//!                                      with the principal: one lookup finds both
//! Source     (client address, process)  failures per window, distinct credentials failing
//! ```
//!
//! Every table has a cap; past it new subjects are counted, not tracked, and idle ones are
//! forgotten at maintenance (`Subjects::maintain`), persisted ones after they were written.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::{
    baseline::{Ewma, PerWindow, Spread},
    window::{Recent, Windows, WINDOWS, WINDOW_COUNT},
};

/// Endpoints tracked: the inventory's own cap, so every inventoried endpoint fits.
pub const MAX_ENDPOINTS: usize = 100_000;

/// Principals tracked: a large consumer API's active users in a day. A principal costs a few
/// hundred bytes.
pub const MAX_PRINCIPALS: usize = 200_000;

/// Sources tracked (addresses, processes).
pub const MAX_SOURCES: usize = 200_000;

/// Principal × endpoint pairs tracked. Most principals use a handful of endpoints; a pair
/// costs ~100 bytes plus its ids.
pub const MAX_PAIRS: usize = 500_000;

/// Endpoints tracked per principal: a person or a service uses a few dozen; a scanner
/// touching thousands is caught by its signatures and rates long before this matters.
pub const MAX_PAIRS_PER_PRINCIPAL: usize = 256;

/// Object ids remembered per pair: above the largest BOLA threshold that matters (a walk past
/// it has been reported), so forgetting the oldest never hides a walk.
pub const MAX_IDS_PER_PAIR: usize = 256;

/// Distinct credentials remembered per source: enough to tell stuffing from one stale token.
pub const MAX_CREDENTIALS_PER_SOURCE: usize = 64;

/// Body fields learnt per endpoint; a body with more distinct fields (a free-form map) stops
/// being learnt and its new fields are not reported.
pub const MAX_FIELDS: usize = 512;

/// Principals remembered per endpoint, for "never used it before". An endpoint used by more
/// is no one's privilege: the function-level check stops for it.
pub const MAX_ENDPOINT_CALLERS: usize = 256;

/// Page-size parameters learnt per endpoint.
pub const MAX_PAGE_PARAMETERS: usize = 16;

/// Principals waiting to adopt one new field (see `Pending`).
pub const MAX_PENDING_FIELDS: usize = 32;

/// Distinct principals that must use a new privileged field before it is taken as the API's
/// new normal: one caller using `isAdmin` is an attack, a
/// release that adds it is used by everyone.
pub const ADOPT_AFTER_PRINCIPALS: usize = 5;

/// Distinct sources that must succeed without credentials on an endpoint that required them
/// before it is taken to be public now. Far more than [`ADOPT_AFTER_PRINCIPALS`]: a broken
/// endpoint is found by many attackers, and each must still be reported; an endpoint made
/// public on purpose is soon called by far more than this.
pub const ADOPT_PUBLIC_AFTER_SOURCES: usize = 50;

/// Principals remembered per pending value: a set no larger than the most any adoption needs.
const MAX_PENDING_PRINCIPALS: usize = ADOPT_PUBLIC_AFTER_SOURCES;

/// Counters idle this long are forgotten: the longest window is a day.
pub const IDLE_SECS: u64 = WINDOWS[WINDOW_COUNT - 1].secs + 3_600;

/// An endpoint as the inventory names it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointName {
    pub method: String,
    pub route: String,
    pub server_address: Option<String>,
    pub server_port: Option<u16>,
}

/// Where the inventory's spec diff put an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InventoryStatus {
    Shadow,
    Zombie,
}

/// New values waiting to be adopted, with the principals seen using them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pending(pub BTreeMap<String, BTreeSet<u64>>);

impl Pending {
    /// Note `principal` using `value`; true when `needed` distinct ones have, and it is
    /// adopted.
    pub fn note(&mut self, value: &str, principal: u64, needed: usize) -> bool {
        if !self.0.contains_key(value) && self.0.len() >= MAX_PENDING_FIELDS {
            return false;
        }
        let principals = self.0.entry(value.to_string()).or_default();
        if principals.len() < MAX_PENDING_PRINCIPALS {
            principals.insert(principal);
        }
        if principals.len() >= needed.min(MAX_PENDING_PRINCIPALS) {
            self.0.remove(value);
            return true;
        }
        false
    }
}

/// A set of names learnt up to a cap.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Learnt {
    pub names: BTreeSet<String>,
    /// The cap was hit: the set is incomplete, so "not in it" means nothing.
    pub full: bool,
}

impl Learnt {
    pub fn contains(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    pub fn learn(&mut self, name: &str) {
        if self.names.contains(name) {
            return;
        }
        if self.names.len() >= MAX_FIELDS {
            self.full = true;
            return;
        }
        self.names.insert(name.to_string());
    }
}

/// An endpoint's persisted baseline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointBaseline {
    pub name: EndpointName,
    pub first_seen: u64,
    pub last_seen: u64,
    pub calls: u64,
    /// ln(1 + milliseconds) and ln(1 + bytes): sizes and latencies spread over orders of
    /// magnitude, and their logarithms are closer to normal.
    pub latency: Ewma,
    pub request_size: Ewma,
    pub response_size: Ewma,
    /// The status mix: the share of 5xx answers, the successful answers to calls with and
    /// without credentials (flagged ones excepted), and the sources whose unauthenticated
    /// successes were flagged (see [`ADOPT_PUBLIC_AFTER_SOURCES`]).
    pub errors: Ewma,
    pub successes_authenticated: u64,
    pub successes_anonymous: u64,
    pub anonymous_sources: Pending,
    pub writes: u64,
    pub request_fields: Learnt,
    pub pending_fields: Pending,
    /// Sensitive field names its responses carry.
    pub response_sensitive: Learnt,
    /// Largest page size answered, by parameter.
    pub page_sizes: BTreeMap<String, f64>,
    pub callers: BTreeSet<u64>,
    pub callers_full: bool,
    /// Across its principals: calls and distinct object ids per window, and the share of
    /// their objects refused over the day (the status mix as each caller sees it).
    pub peer_calls: [Spread; WINDOW_COUNT],
    pub peer_ids: [Spread; WINDOW_COUNT],
    pub peer_refused: Spread,
    pub inventory: Option<InventoryStatus>,
}

impl EndpointBaseline {
    /// Seen long enough, and often enough, for its baseline to mean something.
    pub fn learned(&self, now: u64, period: u64, min_calls: u64) -> bool {
        now >= self.first_seen.saturating_add(period) && self.calls >= min_calls
    }

    pub fn note_caller(&mut self, principal: u64) {
        if self.callers_full || self.callers.contains(&principal) {
            return;
        }
        if self.callers.len() >= MAX_ENDPOINT_CALLERS {
            self.callers_full = true;
            self.callers.clear();
            return;
        }
        self.callers.insert(principal);
    }
}

pub struct Endpoint {
    pub base: EndpointBaseline,
    /// Changed since it was last written.
    pub dirty: bool,
    /// Its route names an administrative function (decided once, from the route).
    pub admin: bool,
}

/// A principal's persisted baseline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PrincipalBaseline {
    pub first_seen: u64,
    pub last_seen: u64,
    pub calls: u64,
    /// Calls per period of each window, learnt as periods end.
    pub rate: PerWindow,
    /// The busiest period of each window lately (halving over a day): what an EWMA calls an
    /// outlier, a client with hourly bursts calls routine.
    pub peaks: [f64; WINDOW_COUNT],
    pub windows: Windows,
}

/// A peak halves over this long, whatever the window.
const PEAK_HALF_LIFE_SECS: f64 = 86_400.0;

pub struct Principal {
    pub base: PrincipalBaseline,
    pub dirty: bool,
    /// Its endpoints (by key) and what it does on each (in memory only).
    pub pairs: Vec<(u64, Pair)>,
}

impl Principal {
    pub fn new(base: PrincipalBaseline, dirty: bool) -> Principal {
        Principal {
            base,
            dirty,
            pairs: Vec::new(),
        }
    }

    /// Count a call at `now`, learning from the periods that ended.
    pub fn count(&mut self, now: u64) {
        let base = &mut self.base;
        base.first_seen = if base.first_seen == 0 {
            now
        } else {
            base.first_seen.min(now)
        };
        base.last_seen = base.last_seen.max(now);
        base.calls += 1;
        let rate = &mut base.rate;
        let peaks = &mut base.peaks;
        base.windows.add(now, 1, |i, rolled| {
            rate.learn(i, rolled);
            let periods = (1 + rolled.empty_after) as f64;
            let decay = 0.5f64.powf(periods * WINDOWS[i].secs as f64 / PEAK_HALF_LIFE_SECS);
            peaks[i] = (peaks[i] * decay).max(f64::from(rolled.count));
        });
        self.dirty = true;
    }
}

/// A principal's pair with `endpoint` among its `pairs`, made if new; `None` past the caps
/// (`total` counts the pairs of every principal). A free function over the principal's pairs
/// alone, so its baseline can be read while the pair is updated.
pub fn pair_of<'a>(
    pairs: &'a mut Vec<(u64, Pair)>,
    endpoint: u64,
    total: &mut usize,
    capped: &mut u64,
) -> Option<&'a mut Pair> {
    if let Some(at) = pairs.iter().position(|(e, _)| *e == endpoint) {
        return Some(&mut pairs[at].1);
    }
    if pairs.len() >= MAX_PAIRS_PER_PRINCIPAL || *total >= MAX_PAIRS {
        *capped += 1;
        return None;
    }
    *total += 1;
    pairs.push((endpoint, Pair::default()));
    pairs.last_mut().map(|(_, pair)| pair)
}

/// A source's failures (in memory only: a burst is minutes to a day).
#[derive(Default)]
pub struct Source {
    pub failures: Windows,
    /// Credentials that failed lately.
    pub credentials: Recent,
    pub last_seen: u64,
}

/// A principal on one endpoint.
#[derive(Default)]
pub struct Pair {
    pub calls: Windows,
    /// Object ids lately, flagged when refused (403, 404).
    pub ids: Recent,
    pub last_seen: u64,
}

/// What caps left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SubjectStats {
    pub endpoints_capped: u64,
    pub principals_capped: u64,
    pub sources_capped: u64,
    pub pairs_capped: u64,
}

/// The tables. Their keys are stable hashes of what traffic chose (addresses, token
/// subjects, which observer never verifies), so the tables hash them again with a per-process
/// key: a client choosing subjects that collide in buckets must not slow every lookup.
#[derive(Default)]
pub struct Subjects {
    pub endpoints: HashMap<u64, Endpoint>,
    pub principals: HashMap<u64, Principal>,
    pub sources: HashMap<u64, Source>,
    /// Pairs across every principal.
    pub pairs: usize,
    pub stats: SubjectStats,
}

/// The entry for `key`, made with `make` if new; `None` past `cap` (counted in `capped`).
/// A free function rather than a method, so one call can hold entries of several tables.
pub fn tracked<'a, K: Eq + std::hash::Hash, V, S: std::hash::BuildHasher>(
    map: &'a mut HashMap<K, V, S>,
    key: K,
    cap: usize,
    capped: &mut u64,
    make: impl FnOnce() -> V,
) -> Option<&'a mut V> {
    let full = map.len() >= cap;
    match map.entry(key) {
        std::collections::hash_map::Entry::Occupied(entry) => Some(entry.into_mut()),
        std::collections::hash_map::Entry::Vacant(_) if full => {
            *capped += 1;
            None
        }
        std::collections::hash_map::Entry::Vacant(entry) => Some(entry.insert(make())),
    }
}

impl Subjects {
    /// Recompute each endpoint's spread across its principals (calls and distinct ids per
    /// window), and forget what has been idle for a day. An endpoint with too few active
    /// principals keeps its previous spread: after a restart its counters are empty, and
    /// the persisted spread is the better estimate until they fill again.
    pub fn maintain(&mut self, now: u64, min_peers: u32) {
        self.sources
            .retain(|_, source| now.saturating_sub(source.last_seen) < IDLE_SECS);
        let mut pairs = 0;
        self.principals.retain(|_, principal| {
            principal
                .pairs
                .retain(|(_, pair)| now.saturating_sub(pair.last_seen) < IDLE_SECS);
            let keep = principal.dirty || now.saturating_sub(principal.base.last_seen) < IDLE_SECS;
            if keep {
                pairs += principal.pairs.len();
            }
            keep
        });
        self.pairs = pairs;
        type Samples = [Vec<f64>; WINDOW_COUNT];
        let mut per_endpoint: HashMap<u64, (Samples, Samples, Vec<f64>)> = HashMap::new();
        for (endpoint, pair) in self.principals.values().flat_map(|p| p.pairs.iter()) {
            let (calls, ids, refused) = per_endpoint.entry(*endpoint).or_default();
            let estimates = pair.calls.estimates(now);
            let distinct = pair.ids.counts(now);
            for w in 0..WINDOW_COUNT {
                if estimates[w] > 0.0 {
                    calls[w].push(estimates[w]);
                }
                if distinct[w].0 > 0 {
                    ids[w].push(f64::from(distinct[w].0));
                }
            }
            let (day, day_refused) = distinct[WINDOW_COUNT - 1];
            if day > 0 {
                refused.push(f64::from(day_refused) / f64::from(day));
            }
        }
        for (key, (mut calls, mut ids, mut refused)) in per_endpoint {
            let Some(endpoint) = self.endpoints.get_mut(&key) else {
                continue;
            };
            let fresh = Spread::of(&mut refused);
            if fresh.n >= min_peers {
                endpoint.base.peer_refused = fresh;
            }
            for w in 0..WINDOW_COUNT {
                for (samples, spread) in [
                    (&mut calls[w], &mut endpoint.base.peer_calls[w]),
                    (&mut ids[w], &mut endpoint.base.peer_ids[w]),
                ] {
                    let fresh = Spread::of(samples);
                    if fresh.n >= min_peers {
                        *spread = fresh;
                        endpoint.dirty = true;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_stop_growing_at_their_cap() {
        let mut map: HashMap<u64, u64> = HashMap::new();
        let mut capped = 0;
        for key in 0..10 {
            tracked(&mut map, key, 4, &mut capped, || key);
        }
        assert_eq!((map.len(), capped), (4, 6));
        assert_eq!(tracked(&mut map, 2, 4, &mut capped, || 0).copied(), Some(2));
    }

    #[test]
    fn adoption_needs_several_principals() {
        let mut pending = Pending::default();
        for principal in 0..ADOPT_AFTER_PRINCIPALS as u64 - 1 {
            assert!(!pending.note("isAdmin", principal, ADOPT_AFTER_PRINCIPALS));
            assert!(!pending.note("isAdmin", principal, ADOPT_AFTER_PRINCIPALS));
        }
        assert!(pending.note("isAdmin", 99, ADOPT_AFTER_PRINCIPALS));
        assert!(pending.0.is_empty());
    }

    #[test]
    fn peaks_remember_bursts_for_about_a_day() {
        let mut principal = Principal::new(PrincipalBaseline::default(), false);
        let hour = 1_800_000_000;
        // 300 calls in one minute, then one call an hour later.
        for i in 0..300 {
            principal.count(hour + i / 5);
        }
        principal.count(hour + 3_600);
        let minute_peak = principal.base.peaks[1];
        assert!((280.0..=300.0).contains(&minute_peak), "{minute_peak}");
        // A day later it has halved.
        principal.count(hour + 3_600 + 86_400);
        assert!(
            (135.0..=150.0).contains(&principal.base.peaks[1]),
            "{:?}",
            principal.base.peaks
        );
    }

    #[test]
    fn learnt_sets_say_when_they_are_incomplete() {
        let mut learnt = Learnt::default();
        for i in 0..=MAX_FIELDS {
            learnt.learn(&format!("f{i}"));
        }
        assert!(learnt.full);
        assert_eq!(learnt.names.len(), MAX_FIELDS);
    }

    #[test]
    fn an_endpoint_used_by_everyone_stops_tracking_its_callers() {
        let mut base = EndpointBaseline::default();
        for principal in 0..=MAX_ENDPOINT_CALLERS as u64 {
            base.note_caller(principal);
        }
        assert!(base.callers_full && base.callers.is_empty());
    }

    #[test]
    fn maintenance_computes_spreads_and_forgets_the_idle() {
        let mut subjects = Subjects::default();
        let now = 1_800_000_000;
        subjects.endpoints.insert(
            1,
            Endpoint {
                base: EndpointBaseline::default(),
                dirty: false,
                admin: false,
            },
        );
        let (mut total, mut capped) = (0, 0);
        for key in 0..10u64 {
            let principal = subjects
                .principals
                .entry(key)
                .or_insert_with(|| Principal::new(PrincipalBaseline::default(), true));
            let pair = pair_of(&mut principal.pairs, 1, &mut total, &mut capped).unwrap();
            pair.calls.add(now, key as u32 + 1, |_, _| {});
            pair.last_seen = now;
            if key == 9 {
                pair_of(&mut principal.pairs, 2, &mut total, &mut capped)
                    .unwrap()
                    .last_seen = now - IDLE_SECS;
            }
        }
        subjects.maintain(now, 5);
        let spread = subjects.endpoints[&1].base.peer_calls[1];
        assert_eq!((spread.median, spread.n), (5.5, 10));
        assert_eq!(subjects.pairs, 10);
        assert!(subjects.principals[&9].pairs.iter().all(|(e, _)| *e == 1));
    }
}
