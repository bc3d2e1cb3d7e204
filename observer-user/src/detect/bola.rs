//! Broken object level authorization (API1): one caller walking many object ids on an `{id}`
//! endpoint.
//!
//! Each principal's ids on each templated endpoint are remembered with when they were last
//! asked for and whether they were refused (`Pair::ids`). A new id re-counts the distinct ids
//! in every window and compares them with the endpoint's other principals (median + MAD of
//! their distinct ids in that window) and with a floor: a user reads a few of their own
//! objects, a catalog browser a few dozen, an enumeration hundreds, quickly or over a day.
//!
//! Only endpoints whose objects are not public: where anonymous callers succeed too (a
//! catalog), reading many objects is browsing, whoever does it. And only once the endpoint is
//! learnt, like every detector that compares with a baseline.
//!
//! Two signs make a walk an attack rather than heavy use: ids that were **refused** (403/404
//! mixed with 200s is a caller trying objects that are not theirs) and ids that are
//! **sequential** (`/orders/1001`, `/orders/1002`...). Without either sign a walk must go
//! [`BolaConfig::plain_factor`] times past the limit.

use super::{
    baseline::{Threshold, MIN_PEERS},
    caller::stable_hash,
    config::BolaConfig,
    kind::Kind,
    report::{Alert, Scope},
    subjects::{EndpointBaseline, Pair, MAX_IDS_PER_PAIR},
    window::{RecentEntry, WINDOWS, WINDOW_COUNT},
};
use crate::findings::Severity;

/// Numeric ids in a window before "sequential" is judged: three in a row is chance.
const MIN_IDS_FOR_SEQUENCE: usize = 6;

/// Neighbouring ids at most this far apart count as a sequence (walks skip deleted ids).
const SEQUENCE_GAP: u64 = 2;

/// A walk's refused share must be this many times its endpoint's callers' usual one (where
/// callers are refused a third of their objects, refusals are no sign at all). The usual
/// share is the median across principals, so attackers' own refusals do not raise it.
const REFUSAL_CONTRAST: f64 = 3.0;

/// The share of an endpoint's successes that went to anonymous callers above which its
/// objects are public.
const PUBLIC_SHARE: f64 = 0.01;

/// Marks an id that is a hash of a non-numeric value: numeric ids are kept as themselves (for
/// the sequence check) and never have this bit.
const HASHED: u64 = 1 << 63;

/// The id a call on `route` addresses in `path`: the last `{parameter}` segment. Numbers are
/// kept as numbers; anything else is hashed.
pub fn object_id(route: &str, path: &str) -> Option<u64> {
    let mut id = None;
    let mut path_segments = path.split('/');
    for template in route.split('/') {
        let segment = path_segments.next()?;
        if template.starts_with('{') && template.ends_with('}') && !segment.is_empty() {
            id = Some(segment);
        }
    }
    let id = id?;
    match id.parse::<u64>() {
        Ok(n) if n & HASHED == 0 && id.len() <= 18 => Some(n),
        _ => Some(stable_hash(&[id.as_bytes()]) | HASHED),
    }
}

/// Whether object walks on `endpoint` mean anything: learnt, and its objects not public.
pub fn applies(endpoint: &EndpointBaseline, learned: bool) -> bool {
    let successes = endpoint.successes_authenticated + endpoint.successes_anonymous;
    learned && endpoint.successes_anonymous as f64 <= PUBLIC_SHARE * successes as f64
}

/// Count `id` for the pair; true if the pair had not asked for it lately (only then can a
/// walk have grown).
pub fn count(pair: &mut Pair, id: u64, refused: bool, now: u64) -> bool {
    pair.ids.insert(id, now, refused, MAX_IDS_PER_PAIR)
}

/// Count `id` for the pair; an alert when the walk it belongs to crosses a limit.
pub fn check(
    config: &BolaConfig,
    endpoint: &EndpointBaseline,
    learned: bool,
    pair: &mut Pair,
    id: u64,
    refused: bool,
    now: u64,
) -> Option<Alert> {
    if !applies(endpoint, learned) || !count(pair, id, refused, now) {
        return None;
    }
    let counts = pair.ids.counts(now);
    for w in 0..WINDOW_COUNT {
        let Some(floor) = config.min_distinct_ids.get(w) else {
            continue;
        };
        let peers = &endpoint.peer_ids[w];
        let limit = Threshold {
            sigmas: config.sigmas,
            ratio: config.ratio,
            floor,
        }
        .among_peers(peers);
        let (distinct, denied) = counts[w];
        let distinct_f = f64::from(distinct);
        if distinct_f < limit {
            continue;
        }
        let denied_share = f64::from(denied) / distinct_f;
        let usual_refused = if endpoint.peer_refused.n >= MIN_PEERS {
            endpoint.peer_refused.median
        } else {
            0.0
        };
        let denied_needed = config.denied_share.max(REFUSAL_CONTRAST * usual_refused);
        let refused_walk = denied_share >= denied_needed;
        let sequential = sequential_share(pair.ids.within(now, WINDOWS[w].secs));
        let signs = refused_walk || sequential.is_some_and(|s| s >= config.sequential_share);
        if !signs && distinct_f < config.plain_factor * limit {
            continue;
        }
        let window = WINDOWS[w].name;
        let mut why = Vec::new();
        if refused_walk {
            why.push(format!(
                "{:.0}% of them refused, where its callers are typically refused {:.0}%",
                denied_share * 100.0,
                usual_refused * 100.0
            ));
        }
        if let Some(share) = sequential.filter(|&s| s >= config.sequential_share) {
            why.push(format!("{:.0}% sequential", share * 100.0));
        }
        if why.is_empty() {
            why.push(format!("{:.1}× the limit", distinct_f / limit));
        }
        let reason = format!(
            "one caller requested {distinct} distinct objects in {window} on an object endpoint \
             ({}), where its callers typically request {:.0} (limit {limit:.0})",
            why.join(", "),
            peers.median
        );
        // Every id refused means authorization held: a probe, not a breach.
        let severity = if denied == distinct {
            Severity::Medium
        } else {
            Severity::High
        };
        let rule = if sequential.is_some_and(|s| s >= config.sequential_share) {
            "sequential_walk"
        } else if refused_walk {
            "refused_mix"
        } else {
            "wide_walk"
        };
        let mut alert = Alert::new(Kind::Bola, rule, reason, Scope::Principal)
            .severity(severity)
            .fact(
                "path",
                None,
                format!("{distinct} distinct ids in {window}, {denied} refused"),
            );
        if let Some((low, high)) = numeric_range(pair.ids.within(now, WINDOWS[w].secs)) {
            alert = alert.fact("path", None, format!("ids {low}..{high}"));
        }
        return Some(alert);
    }
    None
}

/// The share of neighbouring numeric ids (sorted) that are at most [`SEQUENCE_GAP`] apart.
fn sequential_share<'a>(entries: impl Iterator<Item = &'a RecentEntry>) -> Option<f64> {
    let mut numbers: Vec<u64> = entries
        .filter(|e| e.value & HASHED == 0)
        .map(|e| e.value)
        .collect();
    if numbers.len() < MIN_IDS_FOR_SEQUENCE {
        return None;
    }
    numbers.sort_unstable();
    let adjacent = numbers
        .windows(2)
        .filter(|w| w[1] - w[0] <= SEQUENCE_GAP)
        .count();
    Some(adjacent as f64 / (numbers.len() - 1) as f64)
}

fn numeric_range<'a>(entries: impl Iterator<Item = &'a RecentEntry>) -> Option<(u64, u64)> {
    entries
        .filter(|e| e.value & HASHED == 0)
        .fold(None, |range, e| match range {
            None => Some((e.value, e.value)),
            Some((low, high)) => Some((low.min(e.value), high.max(e.value))),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::baseline::Spread;

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn ids_come_from_the_last_parameter() {
        assert_eq!(object_id("/users/{id}", "/users/42"), Some(42));
        assert_eq!(
            object_id("/users/{id}/orders/{orderId}", "/users/7/orders/1001"),
            Some(1001)
        );
        let hashed = object_id("/files/{name}", "/files/report.pdf").unwrap();
        assert_ne!(hashed & HASHED, 0);
        assert_eq!(object_id("/users", "/users"), None);
        assert_eq!(object_id("/users/{id}", "/users"), None);
    }

    fn endpoint(median: f64, mad: f64) -> EndpointBaseline {
        let spread = Spread { median, mad, n: 50 };
        EndpointBaseline {
            peer_ids: [spread; WINDOW_COUNT],
            ..EndpointBaseline::default()
        }
    }

    fn walk(
        endpoint: &EndpointBaseline,
        ids: impl Iterator<Item = (u64, bool, u64)>,
    ) -> Option<(usize, Alert)> {
        let config = BolaConfig::default();
        let mut pair = Pair::default();
        for (i, (id, refused, at)) in ids.enumerate() {
            if let Some(alert) = check(&config, endpoint, true, &mut pair, id, refused, at) {
                return Some((i, alert));
            }
        }
        None
    }

    #[test]
    fn a_fast_sequential_walk_with_refusals_is_caught_within_the_floor() {
        let owned = endpoint(2.0, 1.0);
        let (at, alert) = walk(
            &owned,
            (1000..1100).map(|id| (id, id % 3 != 0, NOW + (id - 1000))),
        )
        .expect("walk reported");
        assert!(at < 20, "reported after {at} ids");
        assert_eq!(alert.kind, Kind::Bola);
        assert_eq!(alert.severity, Some(Severity::High));
        assert!(alert.reason.contains("refused"), "{}", alert.reason);
    }

    #[test]
    fn a_slow_walk_adds_up_over_the_day() {
        let owned = endpoint(3.0, 2.0);
        // One id every ten minutes: never two in a minute, 60+ in a day.
        let found = walk(&owned, (0..200).map(|i| (5_000 + i, false, NOW + i * 600)));
        let (at, alert) = found.expect("slow walk reported");
        assert!((55..150).contains(&at), "after {at}");
        assert!(
            alert.reason.contains("1d") || alert.reason.contains("1h"),
            "{}",
            alert.reason
        );
    }

    #[test]
    fn browsing_many_random_objects_that_exist_is_not_a_walk() {
        // A catalog where callers typically open 20 products an hour.
        let catalog = endpoint(20.0, 10.0);
        let mut state = 12_345u64;
        let ids = (0..60).map(|i| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            ((state >> 33) % 50_000, false, NOW + i * 60)
        });
        assert!(walk(&catalog, ids).is_none());
    }

    #[test]
    fn refusals_alone_make_it_a_probe_not_a_breach() {
        let owned = endpoint(2.0, 1.0);
        let mut state = 99u64;
        let ids = (0..100).map(|i| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            ((state >> 20) % 1_000_000_000, true, NOW + i)
        });
        let (_, alert) = walk(&owned, ids).expect("probe reported");
        assert_eq!(alert.severity, Some(Severity::Medium));
        assert_eq!(alert.rule, "refused_mix");
    }

    #[test]
    fn public_objects_and_unlearnt_endpoints_are_not_walked() {
        let config = BolaConfig::default();
        let mut catalog = endpoint(2.0, 1.0);
        catalog.successes_authenticated = 500;
        catalog.successes_anonymous = 500;
        let mut pair = Pair::default();
        assert!((0..500)
            .all(|id| check(&config, &catalog, true, &mut pair, id, false, NOW + id).is_none()));
        let owned = endpoint(2.0, 1.0);
        let mut pair = Pair::default();
        assert!((0..500)
            .all(|id| check(&config, &owned, false, &mut pair, id, true, NOW + id).is_none()));
    }

    #[test]
    fn refusals_are_no_sign_where_the_endpoint_refuses_often() {
        let mut lookups = endpoint(2.0, 1.0);
        lookups.peer_refused = Spread {
            median: 0.33,
            mad: 0.1,
            n: 40,
        };
        // Random ids, 40% refused: below three times the endpoint's third.
        let mut state = 7u64;
        let ids = (0..40).map(|i| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            ((state >> 20) % 1_000_000_000, i % 5 < 2, NOW + i)
        });
        assert!(walk(&lookups, ids).is_none());
    }

    #[test]
    fn the_same_few_ids_again_and_again_are_not_a_walk() {
        let owned = endpoint(2.0, 1.0);
        assert!(walk(&owned, (0..1_000).map(|i| (i % 5, i % 2 == 0, NOW + i))).is_none());
    }
}
