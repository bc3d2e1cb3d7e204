//! From a detector's alert to a finding: suppression, deduplication, the shared finding shape,
//! and the counts kept for the state directory.
//!
//! An attack is many calls; it is reported once per (detector, endpoint, caller, window of
//! `dedupe_window`), and every further call it makes in that window only raises the stored
//! finding's count. Each window's finding is its own row (`finding.first_seen`/`last_seen`
//! bound it), so a slow attack that goes on for days shows as one finding a window, not one
//! finding forever.

use std::collections::HashMap;

use super::{
    caller::{stable_hash, Identity},
    config::{DetectConfig, Subject},
    kind::Kind,
    request::MAX_EVIDENCE_BYTES,
};
use crate::{
    findings::{Evidence, Finding, Location, MessageSide, Severity},
    model::ApiCall,
    redact::{is_secret_name, Redactor, REDACTED},
    sensitive::fields::Source,
};

/// Attacks remembered for deduplication. Past this the table is cleared of finished windows,
/// then of everything: at worst an attack is reported a second time in its window.
pub const MAX_TRACKED_ATTACKS: usize = 200_000;

/// Distinct findings waiting for the next write. Past this, new ones are still reported on
/// the output stream but counted as not stored.
pub const MAX_PENDING_FINDINGS: usize = 50_000;

/// Whose attack an alert is about, for deduplication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The user or token (object walks, rates, privileged fields).
    Principal,
    /// The client address or process (failure bursts, which rotate credentials).
    Source,
    /// The endpoint, whoever calls it (a response exposing a field is the endpoint's fault),
    /// once per thing it is about (the first evidence's name: the field).
    Endpoint,
}

/// What a detector concluded about one call.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub kind: Kind,
    /// The finer type (`finding.type`): the rule or the variant that fired.
    pub rule: String,
    /// Set when the detector knows better than the default (an attack that succeeded).
    pub severity: Option<Severity>,
    /// Why it fired, with the numbers that made it fire.
    pub reason: String,
    pub evidence: Vec<Evidence>,
    pub scope: Scope,
}

impl Alert {
    pub fn new(kind: Kind, rule: impl Into<String>, reason: String, scope: Scope) -> Alert {
        Alert {
            kind,
            rule: rule.into(),
            severity: None,
            reason,
            evidence: Vec::new(),
            scope,
        }
    }

    pub fn severity(mut self, severity: Severity) -> Alert {
        self.severity = Some(severity);
        self
    }

    /// Evidence that is a fact about the traffic (a count, a field name), not a value.
    pub fn fact(mut self, part: &str, name: Option<&str>, value: String) -> Alert {
        self.evidence.push(Evidence {
            location: Location {
                side: MessageSide::Request,
                part: part.to_string(),
                name: name.map(str::to_string),
            },
            value,
        });
        self
    }
}

/// What reporting counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReportStats {
    pub alerts: u64,
    pub reported: u64,
    pub deduplicated: u64,
    pub suppressed: u64,
    pub not_stored: u64,
}

/// Turns alerts into findings. (Its tables hash with the default, keyed hasher: their keys
/// derive from what traffic chose.)
#[derive(Default)]
pub struct Reporter {
    /// Attack fingerprint → the window it was last reported in.
    reported: HashMap<u64, u64>,
    /// (Attack fingerprint, window) → finding and calls since the last write.
    pending: HashMap<(u64, u64), (Finding, u64)>,
    pub stats: ReportStats,
}

/// What an alert is about besides itself.
pub struct Target<'a> {
    pub call: &'a ApiCall,
    pub now: u64,
    pub endpoint: u64,
    pub identity: &'a Identity,
}

impl Reporter {
    /// Report `alert` (once per window) to `out`, and count it for the store.
    pub fn report(
        &mut self,
        config: &DetectConfig,
        redactor: Option<&Redactor>,
        alert: Alert,
        target: &Target<'_>,
        out: &mut Vec<crate::output::Output>,
    ) {
        self.stats.alerts += 1;
        let call = target.call;
        let user = target.identity.user.as_deref();
        let subject = Subject {
            kind: alert.kind,
            method: call.method.as_deref(),
            route: call.route.as_deref().or(call.path.as_deref()),
            server_address: call.server_address.as_deref(),
            server_port: call.server_port,
            caller_address: call.client_address.as_deref(),
            caller_user: user,
            caller_process: (call.role == Some(crate::conn::Role::Client))
                .then_some(call.executable_name.as_deref())
                .flatten(),
        };
        if config.suppressed(&subject) {
            self.stats.suppressed += 1;
            return;
        }
        let caller = match alert.scope {
            Scope::Principal => target.identity.principal,
            Scope::Source => target.identity.source,
            Scope::Endpoint => {
                let about = alert
                    .evidence
                    .first()
                    .and_then(|e| e.location.name.as_deref());
                stable_hash(&[about.unwrap_or("").as_bytes()])
            }
        };
        let attack = attack_key(alert.kind, target.endpoint, caller);
        let window = target.now / config.dedupe_window.0.max(1);
        if self.count_repeat(attack, window, &call.timestamp) {
            return;
        }
        if self.reported.get(&attack) == Some(&window) {
            // Reported in this window and written since: later sightings add to its count.
            self.stats.deduplicated += 1;
            if self.pending.len() < MAX_PENDING_FINDINGS {
                let finding = self.finding(config, redactor, alert, target);
                self.pending.insert((attack, window), (finding, 1));
            }
            return;
        }
        if self.reported.len() >= MAX_TRACKED_ATTACKS {
            self.reported.retain(|_, w| *w == window);
            if self.reported.len() >= MAX_TRACKED_ATTACKS {
                self.reported.clear();
            }
        }
        self.reported.insert(attack, window);
        let finding = self.finding(config, redactor, alert, target);
        self.stats.reported += 1;
        out.push(crate::output::Output::Finding(finding.clone()));
        if self.pending.len() < MAX_PENDING_FINDINGS {
            self.pending.insert((attack, window), (finding, 1));
        } else {
            self.stats.not_stored += 1;
        }
    }

    /// If `kind`'s attack on `endpoint` by `caller` was reported in the window holding `now`,
    /// count this call as a repeat of it and return true: the detector need not build the
    /// alert again. Detectors that fire on every call of an attack (rates, walks, bursts)
    /// ask first.
    pub fn repeat(
        &mut self,
        config: &DetectConfig,
        kind: Kind,
        endpoint: u64,
        caller: u64,
        now: u64,
        timestamp: &str,
    ) -> bool {
        let window = now / config.dedupe_window.0.max(1);
        self.count_repeat(attack_key(kind, endpoint, caller), window, timestamp)
    }

    fn count_repeat(&mut self, attack: u64, window: u64, timestamp: &str) -> bool {
        if self.reported.get(&attack) != Some(&window) {
            return false;
        }
        let Some((finding, count)) = self.pending.get_mut(&(attack, window)) else {
            return false;
        };
        self.stats.deduplicated += 1;
        finding.timestamp.clear();
        finding.timestamp.push_str(timestamp);
        *count += 1;
        true
    }

    fn finding(
        &self,
        config: &DetectConfig,
        redactor: Option<&Redactor>,
        alert: Alert,
        target: &Target<'_>,
    ) -> Finding {
        let severity = alert
            .severity
            .unwrap_or_else(|| config.severity_of(alert.kind));
        let mut finding = Finding::about(target.call, alert.kind.name(), severity, alert.reason);
        finding.detail_type = Some(alert.rule);
        finding.owasp_category = Some(alert.kind.owasp().to_string());
        finding.caller.user = target.identity.user.as_deref().map(str::to_string);
        finding.evidence = alert
            .evidence
            .into_iter()
            .map(|e| redact_evidence(e, redactor))
            .collect();
        if let (Some(route), Some(redactor)) = (&finding.endpoint.route, redactor) {
            if let Some(redacted) = redactor.redact_values(Source::Path, route) {
                finding.endpoint.route = Some(redacted);
            }
        }
        finding
    }

    /// Findings and counts gathered since the last call, to write, each under its stored
    /// fingerprint (`kind:attack:window`: one row per attack and window).
    pub fn take_pending(&mut self) -> Vec<(String, Finding, u64)> {
        self.pending
            .drain()
            .map(|((attack, window), (finding, count))| {
                (
                    format!("{}:{attack:016x}:{window}", finding.kind),
                    finding,
                    count,
                )
            })
            .collect()
    }
}

/// What an attack is, for deduplication: detector, endpoint, caller.
fn attack_key(kind: Kind, endpoint: u64, caller: u64) -> u64 {
    stable_hash(&[
        kind.name().as_bytes(),
        &endpoint.to_le_bytes(),
        &caller.to_le_bytes(),
    ])
}

/// How the scanner reads evidence from `part` (a `Part`'s name): a decoded value, where no
/// field name vouches for anything.
pub(super) fn evidence_source(part: &str) -> Source<'static> {
    match part {
        "path" => Source::Path,
        "query" => Source::Query,
        _ => Source::Body(Some("text/plain")),
    }
}

/// Evidence as it may be shown: a value under a secret name is hidden whole; any other value
/// loses what the sensitive-data detectors recognise in it; all of it is bounded.
fn redact_evidence(mut evidence: Evidence, redactor: Option<&Redactor>) -> Evidence {
    if evidence
        .location
        .name
        .as_deref()
        .is_some_and(is_secret_name)
    {
        evidence.value = REDACTED.to_string();
        return evidence;
    }
    if let Some(redactor) = redactor {
        let source = evidence_source(&evidence.location.part);
        if let Some(redacted) = redactor.redact_values(source, &evidence.value) {
            evidence.value = redacted;
        }
    }
    if evidence.value.len() > MAX_EVIDENCE_BYTES {
        let cut = super::decode::prefix(&evidence.value, MAX_EVIDENCE_BYTES).len();
        evidence.value.truncate(cut);
    }
    evidence
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::Output;

    fn target<'a>(call: &'a ApiCall, identity: &'a Identity, now: u64) -> Target<'a> {
        Target {
            call,
            now,
            endpoint: 7,
            identity,
        }
    }

    #[test]
    fn one_finding_per_window_and_the_rest_counted() {
        let config = DetectConfig::default();
        let mut reporter = Reporter::default();
        let call = crate::inventory::tests::call("GET", "/users/1", 200);
        let identity = Identity {
            principal: 1,
            source: 2,
            user: Some("mallory".into()),
            ..Identity::default()
        };
        let mut out = Vec::new();
        let alert = || Alert::new(Kind::Bola, "walk", "walked".into(), Scope::Principal);
        let hour = 1_800_000_000;
        for i in 0..10 {
            reporter.report(
                &config,
                None,
                alert(),
                &target(&call, &identity, hour + i),
                &mut out,
            );
        }
        assert_eq!(out.len(), 1);
        let Output::Finding(finding) = &out[0] else {
            panic!("{out:?}");
        };
        assert_eq!(finding.owasp_category.as_deref(), Some("API1:2023"));
        assert_eq!(finding.caller.user.as_deref(), Some("mallory"));
        let pending = reporter.take_pending();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].2, 10);
        // The next window is a new finding; another principal is too.
        reporter.report(
            &config,
            None,
            alert(),
            &target(&call, &identity, hour + 3_600),
            &mut out,
        );
        let other = Identity {
            principal: 3,
            ..identity.clone()
        };
        reporter.report(
            &config,
            None,
            alert(),
            &target(&call, &other, hour + 3_600),
            &mut out,
        );
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn suppressed_alerts_are_counted_not_reported() {
        let config = DetectConfig::parse(
            "detect: { suppress: [ { detectors: [bola], endpoints: ['GET /users/*'] } ] }",
        )
        .unwrap();
        let mut reporter = Reporter::default();
        let mut call = crate::inventory::tests::call("GET", "/users/1", 200);
        call.route = Some("/users/{id}".into());
        let identity = Identity::default();
        let mut out = Vec::new();
        let alert = Alert::new(Kind::Bola, "walk", "walked".into(), Scope::Principal);
        reporter.report(&config, None, alert, &target(&call, &identity, 1), &mut out);
        assert!(out.is_empty());
        assert_eq!(reporter.stats.suppressed, 1);
    }

    #[test]
    fn evidence_under_secret_names_is_hidden() {
        let evidence = Evidence {
            location: Location {
                side: MessageSide::Request,
                part: "json".into(),
                name: Some("$.password".into()),
            },
            value: "' or '1'='1".into(),
        };
        assert_eq!(redact_evidence(evidence, None).value, REDACTED);
    }
}
