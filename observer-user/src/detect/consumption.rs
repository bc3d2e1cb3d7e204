//! Unrestricted resource consumption (API4): a caller's rate far above its own baseline or
//! above the endpoint's other callers, and requests far more expensive than the endpoint's
//! usual: page sizes, response sizes, latencies.
//!
//! **Rates.** For each window, a principal's calls to an endpoint are compared with the
//! endpoint's other principals (median + MAD of theirs). Heavy callers exist (batch jobs,
//! integrations), so a principal whose *own* history is known and trusted is excused while it
//! stays within that history; a principal is trusted once it has been watched since the
//! agent's learning period or for `caller_probation`, so an attacker cannot teach the baseline
//! that its flood is normal. A trusted principal far above its own history is reported too,
//! once its calls pass the window's floor.
//!
//! **Expensive requests.** `limit`, `page_size`, `per_page`... above both an absolute ceiling
//! and [`CostConfig::page_factor`] times the largest the endpoint answered before; and
//! responses whose size or latency is [`CostConfig::sigmas`] deviations above the endpoint's
//! (in logarithms: both spread over orders of magnitude) and above an absolute floor, so a
//! cheap endpoint answering slightly slower is never news.

use super::{
    baseline::{Ewma, Threshold},
    config::{CostConfig, RateConfig},
    kind::Kind,
    report::{Alert, Scope},
    subjects::{EndpointBaseline, PrincipalBaseline, MAX_PAGE_PARAMETERS},
    window::{WINDOWS, WINDOW_COUNT},
};

/// How far past its busiest recent period a trusted principal may go before its own history
/// stops excusing it.
pub const PEAK_FACTOR: f64 = 2.0;

/// The limit a principal's own history sets on its calls in window `w`, if it has one: from
/// the window's own baseline when learnt, else scaled up from the longest shorter window
/// that is (an hour of history says what to expect of a day); and never below
/// [`PEAK_FACTOR`] times its busiest recent period, so routine bursts are not outliers.
pub fn own_limit(config: &RateConfig, principal: &PrincipalBaseline, w: usize) -> Option<f64> {
    let threshold = Threshold {
        sigmas: config.sigmas,
        ratio: config.ratio,
        floor: 0.0,
    };
    let rate = &principal.rate.0;
    let from_baseline = if rate[w].learned() {
        Some(threshold.over_time(&rate[w]))
    } else {
        (0..w).rev().find(|&s| rate[s].learned()).map(|shorter| {
            let scale = WINDOWS[w].secs as f64 / WINDOWS[shorter].secs as f64;
            threshold.over_time(&Ewma {
                mean: rate[shorter].mean * scale,
                // Independent periods: variances add.
                var: rate[shorter].var * scale,
                n: rate[shorter].n,
            })
        })
    };
    let from_peak = (principal.peaks[w] > 0.0).then(|| PEAK_FACTOR * principal.peaks[w]);
    match (from_baseline, from_peak) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Whether a principal's calls to an endpoint (`pair`, per window) are too many. Its own
/// history (`principal`, with its calls in all) counts only if it is `trusted`.
pub fn rate(
    config: &RateConfig,
    endpoint: &EndpointBaseline,
    endpoint_learned: bool,
    principal: Option<&PrincipalBaseline>,
    pair: &[f64; WINDOW_COUNT],
    now: u64,
) -> Option<Alert> {
    if !endpoint_learned {
        return None;
    }
    for w in 0..WINDOW_COUNT {
        let Some(floor) = config.floor.get(w) else {
            continue;
        };
        if pair[w] < floor {
            continue;
        }
        let peers = &endpoint.peer_calls[w];
        let endpoint_limit = Threshold {
            sigmas: config.sigmas,
            ratio: config.ratio,
            floor,
        }
        .among_peers(peers);
        let own = principal.and_then(|p| own_limit(config, p, w));
        let total = principal.map_or(0.0, |p| p.windows.estimate(w, now));
        let above_own = own.is_some_and(|limit| total > limit);
        let above_endpoint = pair[w] > endpoint_limit;
        let window = WINDOWS[w].name;
        let reason = match (above_endpoint, own) {
            (true, None) => format!(
                "{:.0} calls in {window} from one caller, where its callers typically make {:.0} \
                 (limit {endpoint_limit:.0})",
                pair[w], peers.median
            ),
            (true, Some(limit)) if above_own => format!(
                "{:.0} calls in {window} from one caller, above its callers (limit \
                 {endpoint_limit:.0}) and its own history ({total:.0} calls in all, limit {limit:.0})",
                pair[w]
            ),
            (false, Some(limit)) if above_own => format!(
                "{:.0} calls in {window} from one caller, far above its own history ({total:.0} \
                 calls in all, limit {limit:.0})",
                pair[w]
            ),
            _ => continue,
        };
        let rule = if above_endpoint {
            "above_endpoint_callers"
        } else {
            "above_own_history"
        };
        return Some(
            Alert::new(Kind::RateAnomaly, rule, reason, Scope::Principal).fact(
                "rate",
                Some(window),
                format!("{:.0} calls", pair[w]),
            ),
        );
    }
    None
}

/// Deviation of a logarithm below which nothing counts as spread: a constant-size endpoint
/// would otherwise call one more byte an outlier.
const MIN_LOG_SIGMA: f64 = 0.5;

/// Learn the page sizes an endpoint answers; an alert for one far above them.
pub fn page_size(
    config: &CostConfig,
    endpoint: &mut EndpointBaseline,
    learned: bool,
    sizes: &[(String, f64)],
) -> Option<Alert> {
    let mut alert = None;
    for (name, value) in sizes {
        let largest = endpoint.page_sizes.get(name).copied();
        let limit = config
            .max_page_size
            .max(config.page_factor * largest.unwrap_or(0.0));
        // While learning, only an absurd size is reported: the endpoint's own sizes are
        // still being found out.
        let too_large = if learned {
            *value > limit
        } else {
            *value > limit * config.page_factor
        };
        if too_large {
            if alert.is_none() {
                let reason = match largest {
                    Some(largest) => format!(
                        "asked for a page of {value} with `{name}`, where this endpoint never \
                         answered more than {largest} (limit {limit})"
                    ),
                    None => format!("asked for a page of {value} with `{name}` (limit {limit})"),
                };
                alert = Some(
                    Alert::new(
                        Kind::ExpensiveRequest,
                        "page_size",
                        reason,
                        Scope::Principal,
                    )
                    .fact("query", Some(name), value.to_string()),
                );
            }
            continue;
        }
        if largest.is_some() || endpoint.page_sizes.len() < MAX_PAGE_PARAMETERS {
            let entry = endpoint.page_sizes.entry(name.clone()).or_insert(*value);
            *entry = entry.max(*value);
        }
    }
    alert
}

/// A response far larger or slower than the endpoint's usual. Call before the endpoint learns
/// this call.
pub fn response_cost(
    config: &CostConfig,
    endpoint: &EndpointBaseline,
    learned: bool,
    response_bytes: Option<u64>,
    latency_ms: Option<f64>,
) -> Option<Alert> {
    if !learned {
        return None;
    }
    let far_above = |baseline: &Ewma, value: f64, floor: f64| {
        let limit = baseline.mean + config.sigmas * baseline.sigma().max(MIN_LOG_SIGMA);
        baseline.learned() && value >= floor && (1.0 + value).ln() > limit
    };
    let typical = |baseline: &Ewma| baseline.mean.exp() - 1.0;
    if let Some(bytes) = response_bytes.map(|b| b as f64) {
        if far_above(&endpoint.response_size, bytes, config.min_response_bytes) {
            let reason = format!(
                "a response of {bytes:.0} bytes, where this endpoint's are typically {:.0}",
                typical(&endpoint.response_size)
            );
            return Some(
                Alert::new(
                    Kind::ExpensiveRequest,
                    "oversized_response",
                    reason,
                    Scope::Principal,
                )
                .fact("response", None, format!("{bytes:.0} bytes")),
            );
        }
    }
    let ms = latency_ms?;
    if far_above(&endpoint.latency, ms, config.min_latency_ms) {
        let reason = format!(
            "a call that took the server {ms:.0} ms, where this endpoint typically takes {:.0} ms",
            typical(&endpoint.latency)
        );
        return Some(
            Alert::new(
                Kind::ExpensiveRequest,
                "slow_response",
                reason,
                Scope::Principal,
            )
            .fact("response", None, format!("{ms:.0} ms")),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::baseline::Spread;

    fn endpoint(median: f64, mad: f64) -> EndpointBaseline {
        let spread = Spread {
            median,
            mad,
            n: 100,
        };
        EndpointBaseline {
            peer_calls: [spread; WINDOW_COUNT],
            ..EndpointBaseline::default()
        }
    }

    const NOW: u64 = 1_800_000_000;

    /// A principal that has made `per_second` calls every second for a day, with baselines
    /// learnt from that.
    fn steady(per_second: u32) -> PrincipalBaseline {
        let mut principal = PrincipalBaseline::default();
        for t in NOW - 86_400..=NOW {
            let rate = &mut principal.rate;
            principal
                .windows
                .add(t, per_second, |i, rolled| rate.learn(i, rolled));
        }
        principal
    }

    #[test]
    fn a_flood_from_a_new_caller_is_above_the_endpoint() {
        let config = RateConfig::default();
        let calls = [100.0, 400.0, 600.0, 600.0, 600.0];
        let alert =
            rate(&config, &endpoint(3.0, 2.0), true, None, &calls, NOW).expect("flood reported");
        assert_eq!(alert.rule, "above_endpoint_callers");
        assert!(alert.reason.contains("10s"), "{}", alert.reason);
        // Not before the endpoint is learnt.
        assert!(rate(&config, &endpoint(3.0, 2.0), false, None, &calls, NOW).is_none());
    }

    #[test]
    fn a_trusted_heavy_caller_at_its_usual_rate_is_excused() {
        let config = RateConfig::default();
        let heavy = steady(1);
        // One call a second, as always: far above the endpoint's other callers.
        let usual = heavy.windows.estimates(NOW);
        assert!(rate(
            &config,
            &endpoint(3.0, 2.0),
            true,
            Some(&heavy),
            &usual,
            NOW
        )
        .is_none());
        // Untrusted (no history to excuse it), the same rate is reported.
        assert!(rate(&config, &endpoint(3.0, 2.0), true, None, &usual, NOW).is_some());
        // A minute at ten times its own rate is reported even though trusted.
        let mut surging = heavy;
        for t in NOW + 1..NOW + 60 {
            surging.windows.add(t, 10, |_, _| {});
        }
        let surge = surging.windows.estimates(NOW + 59);
        let alert = rate(
            &config,
            &endpoint(3.0, 2.0),
            true,
            Some(&surging),
            &surge,
            NOW + 59,
        )
        .expect("surge reported");
        assert!(alert.reason.contains("own history"), "{}", alert.reason);
    }

    #[test]
    fn an_hour_of_history_sets_the_day_limit() {
        let config = RateConfig::default();
        let mut principal = PrincipalBaseline::default();
        for _ in 0..20 {
            principal.rate.0[3].update(60.0, 0.1);
        }
        let day = own_limit(&config, &principal, 4).unwrap();
        assert!((1_440.0 * 6.0..=1_440.0 * 7.0).contains(&day), "{day}");
        assert_eq!(own_limit(&config, &PrincipalBaseline::default(), 4), None);
    }

    #[test]
    fn a_routine_burst_sets_the_limit_the_average_would_not() {
        let config = RateConfig::default();
        let mut principal = PrincipalBaseline::default();
        // Mostly idle minutes, with an hourly burst of 300.
        for i in 0..600 {
            principal.rate.0[1].update(if i % 60 == 0 { 300.0 } else { 0.0 }, 0.05);
        }
        principal.peaks[1] = 300.0;
        let limit = own_limit(&config, &principal, 1).unwrap();
        assert!(limit >= 600.0, "{limit}");
    }

    #[test]
    fn a_slow_flood_shows_in_the_day_window() {
        let config = RateConfig::default();
        // Two calls a minute for a day, where callers make ~40 a day.
        let calls = [1.0, 2.0, 20.0, 120.0, 2_880.0];
        let alert = rate(&config, &endpoint(40.0, 25.0), true, None, &calls, NOW)
            .expect("slow flood reported");
        assert!(alert.reason.contains("1d"), "{}", alert.reason);
    }

    #[test]
    fn page_sizes_far_above_the_learnt_ones() {
        let config = CostConfig::default();
        let mut endpoint = EndpointBaseline::default();
        let size = |v: f64| vec![("limit".to_string(), v)];
        for v in [10.0, 20.0, 50.0, 100.0] {
            assert!(page_size(&config, &mut endpoint, false, &size(v)).is_none());
        }
        assert!(page_size(&config, &mut endpoint, true, &size(500.0)).is_none());
        let alert = page_size(&config, &mut endpoint, true, &size(100_000.0)).expect("huge page");
        assert!(alert.reason.contains("500"), "{}", alert.reason);
        // The huge size was not learnt.
        assert_eq!(endpoint.page_sizes["limit"], 500.0);
        // While learning only absurd sizes are reported.
        let mut fresh = EndpointBaseline::default();
        assert!(page_size(&config, &mut fresh, false, &size(5_000.0)).is_none());
        assert!(page_size(&config, &mut fresh, false, &size(1_000_000.0)).is_some());
    }

    #[test]
    fn responses_far_larger_or_slower_than_usual() {
        let config = CostConfig::default();
        let mut endpoint = EndpointBaseline::default();
        for i in 0..500 {
            let bytes = 2_000.0 + f64::from(i % 7) * 300.0;
            endpoint.response_size.update((1.0f64 + bytes).ln(), 0.01);
            endpoint
                .latency
                .update((1.0f64 + 20.0 + f64::from(i % 5)).ln(), 0.01);
        }
        let check = |bytes: u64, ms: f64| {
            response_cost(&config, &endpoint, true, Some(bytes), Some(ms)).map(|a| a.rule)
        };
        assert_eq!(check(2_500, 22.0), None);
        // Far above, but cheap in absolute terms: not news.
        assert_eq!(check(200_000, 400.0), None);
        assert_eq!(
            check(50_000_000, 22.0).as_deref(),
            Some("oversized_response")
        );
        assert_eq!(check(2_500, 30_000.0).as_deref(), Some("slow_response"));
        assert!(response_cost(&config, &endpoint, false, Some(50_000_000), None).is_none());
    }
}
