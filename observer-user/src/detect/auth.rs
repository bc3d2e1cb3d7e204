//! Broken authentication (API2): endpoints that answer without credentials when they never
//! used to, bursts of refused credentials from one source, and weak tokens the API accepts.
//!
//! - **Unauthenticated success.** An endpoint whose successful answers have (nearly) all gone
//!   to calls with credentials "requires" them; a success without any is a gap in its auth.
//! - **Failure bursts.** 401/403 answers (and 400/422 answers to login bodies) per source and
//!   window, reported only when the source tried several *distinct* credentials: stuffing and
//!   guessing rotate them; a client retrying one stale token is broken, not attacking.
//! - **Weak tokens.** A JWT with `alg: none` or one expired long ago that the API still
//!   answered with a success. (The sensitive-data detector reports such tokens when they are
//!   *sent*; this reports that the server *accepted* them.)

use super::{
    caller::Identity,
    config::AuthConfig,
    kind::Kind,
    report::{Alert, Scope},
    subjects::{EndpointBaseline, Source, MAX_CREDENTIALS_PER_SOURCE},
    window::{WINDOWS, WINDOW_COUNT},
};
use crate::findings::Severity;

/// A success without credentials where the endpoint always saw them.
pub fn unauthenticated_success(
    config: &AuthConfig,
    endpoint: &EndpointBaseline,
    learned: bool,
    identity: &Identity,
    status: u16,
) -> Option<Alert> {
    if identity.authenticated || !(200..300).contains(&status) || !learned {
        return None;
    }
    let with = endpoint.successes_authenticated;
    let total = with + endpoint.successes_anonymous;
    if with < config.min_authenticated_successes
        || (with as f64) < config.authenticated_share * total as f64
    {
        return None;
    }
    let reason = format!(
        "answered {status} to a call without credentials, where {with} of its {total} \
         successful calls carried them"
    );
    Some(
        Alert::new(
            Kind::UnauthenticatedAccess,
            "no_credentials",
            reason,
            Scope::Source,
        )
        .fact("header", Some("authorization"), "none".to_string()),
    )
}

/// Whether `status` refuses credentials: 401 and 403 always, 400 and 422 when the request was
/// a login (`login` set).
pub fn is_auth_failure(status: u16, login: bool) -> bool {
    matches!(status, 401 | 403) || (login && matches!(status, 400 | 422))
}

/// Count a refused call (and the credential it tried) for its source.
pub fn count_failure(source: &mut Source, credential: Option<u64>, now: u64) {
    source.failures.add(now, 1, |_, _| {});
    if let Some(credential) = credential {
        source
            .credentials
            .insert(credential, now, false, MAX_CREDENTIALS_PER_SOURCE);
    }
}

/// An alert when a source's refused calls add up to a burst with enough distinct credentials
/// behind it.
pub fn failure_burst(config: &AuthConfig, source: &Source, now: u64) -> Option<Alert> {
    let failures = source.failures.estimates(now);
    let credentials = source.credentials.counts(now);
    for w in 0..WINDOW_COUNT {
        let Some(limit) = config.failures.get(w) else {
            continue;
        };
        let distinct = credentials[w].0;
        if failures[w] < limit || distinct < config.min_distinct_credentials {
            continue;
        }
        let window = WINDOWS[w].name;
        let reason = format!(
            "{:.0} refused authentication attempts in {window} from one source, with {distinct} \
             distinct credentials (limit {limit:.0} attempts, {} credentials)",
            failures[w], config.min_distinct_credentials
        );
        let rule = if distinct >= failures[w] as u32 / 2 {
            "credential_stuffing"
        } else {
            "brute_force"
        };
        return Some(
            Alert::new(Kind::AuthFailureBurst, rule, reason, Scope::Source).fact(
                "header",
                None,
                format!(
                    "{:.0} refusals, {distinct} credentials in {window}",
                    failures[w]
                ),
            ),
        );
    }
    None
}

/// A JWT the server should have refused, answered with a success.
pub fn weak_token(
    config: &AuthConfig,
    identity: &Identity,
    status: u16,
    now: u64,
) -> Option<Alert> {
    let claims = identity.jwt.as_ref()?;
    if !(200..300).contains(&status) {
        return None;
    }
    if claims.alg.eq_ignore_ascii_case("none") {
        let reason = format!(
            "answered {status} to a JWT with `alg: none`: unsigned tokens are accepted, so \
             anyone can forge one"
        );
        return Some(
            Alert::new(Kind::WeakToken, "alg_none", reason, Scope::Principal)
                .severity(Severity::Critical)
                .fact("header", Some("authorization"), "JWT alg none".to_string()),
        );
    }
    let expired_for = now.saturating_sub(claims.exp?);
    if claims.exp? >= now || expired_for < config.expired_grace.0 {
        return None;
    }
    let reason = format!(
        "answered {status} to a JWT that expired {} ago: expiry is not enforced",
        human_duration(expired_for)
    );
    Some(
        Alert::new(Kind::WeakToken, "expired_token", reason, Scope::Principal).fact(
            "header",
            Some("authorization"),
            format!(
                "JWT alg {}, expired {}",
                claims.alg,
                human_duration(expired_for)
            ),
        ),
    )
}

fn human_duration(secs: u64) -> String {
    match secs {
        0..=119 => format!("{secs} s"),
        120..=7_199 => format!("{} min", secs / 60),
        7_200..=172_799 => format!("{} h", secs / 3_600),
        _ => format!("{} days", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::inventory::auth::JwtClaims;

    const NOW: u64 = 1_800_000_000;

    fn endpoint(with: u64, without: u64) -> EndpointBaseline {
        EndpointBaseline {
            successes_authenticated: with,
            successes_anonymous: without,
            ..EndpointBaseline::default()
        }
    }

    #[test]
    fn anonymous_success_where_credentials_were_always_used() {
        let config = AuthConfig::default();
        let anonymous = Identity::default();
        assert!(
            unauthenticated_success(&config, &endpoint(500, 0), true, &anonymous, 200).is_some()
        );
        // Refused: the endpoint did its job.
        assert!(
            unauthenticated_success(&config, &endpoint(500, 0), true, &anonymous, 401).is_none()
        );
        // A public endpoint, and one too new to say.
        assert!(
            unauthenticated_success(&config, &endpoint(500, 300), true, &anonymous, 200).is_none()
        );
        assert!(
            unauthenticated_success(&config, &endpoint(10, 0), true, &anonymous, 200).is_none()
        );
        assert!(
            unauthenticated_success(&config, &endpoint(500, 0), false, &anonymous, 200).is_none()
        );
        let authenticated = Identity {
            authenticated: true,
            ..Identity::default()
        };
        assert!(
            unauthenticated_success(&config, &endpoint(500, 0), true, &authenticated, 200)
                .is_none()
        );
    }

    #[test]
    fn a_burst_of_distinct_credentials_is_reported() {
        let config = AuthConfig::default();
        let mut source = Source::default();
        let mut reported = None;
        for i in 0..40u64 {
            count_failure(&mut source, Some(i), NOW + i);
            if let Some(alert) = failure_burst(&config, &source, NOW + i) {
                reported = Some((i, alert));
                break;
            }
        }
        let (at, alert) = reported.expect("burst reported");
        assert!(at < 15, "after {at}");
        assert_eq!(alert.rule, "credential_stuffing");
    }

    #[test]
    fn one_stale_token_retried_is_not_an_attack() {
        let config = AuthConfig::default();
        let mut source = Source::default();
        for i in 0..2_000u64 {
            count_failure(&mut source, Some(42), NOW + i * 5);
            assert!(failure_burst(&config, &source, NOW + i * 5).is_none());
        }
    }

    #[test]
    fn a_slow_guessing_campaign_adds_up_over_the_day() {
        let config = AuthConfig::default();
        let mut source = Source::default();
        // One guess every ten minutes: 6 an hour, 144 a day.
        let at = (0..200u64)
            .position(|i| {
                count_failure(&mut source, Some(i), NOW + i * 600);
                failure_burst(&config, &source, NOW + i * 600).is_some()
            })
            .expect("slow campaign reported");
        assert!((70..150).contains(&at), "after {at}");
    }

    fn jwt(alg: &str, exp: Option<u64>) -> Identity {
        Identity {
            authenticated: true,
            jwt: Some(Arc::new(JwtClaims {
                alg: alg.into(),
                sub: Some("alice".into()),
                exp,
            })),
            ..Identity::default()
        }
    }

    #[test]
    fn weak_tokens_accepted() {
        let config = AuthConfig::default();
        let none = weak_token(&config, &jwt("none", None), 200, NOW).unwrap();
        assert_eq!(
            (none.rule.as_str(), none.severity),
            ("alg_none", Some(Severity::Critical))
        );
        let expired = weak_token(&config, &jwt("HS256", Some(NOW - 3 * 86_400)), 200, NOW).unwrap();
        assert!(expired.reason.contains("3 days"), "{}", expired.reason);
        // Refused, recently expired (clock skew), or valid: nothing to say.
        assert!(weak_token(&config, &jwt("none", None), 401, NOW).is_none());
        assert!(weak_token(&config, &jwt("HS256", Some(NOW - 60)), 200, NOW).is_none());
        assert!(weak_token(&config, &jwt("HS256", Some(NOW + 600)), 200, NOW).is_none());
        assert!(weak_token(&config, &Identity::default(), 200, NOW).is_none());
    }
}
