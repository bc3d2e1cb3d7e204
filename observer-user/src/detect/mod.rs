//! Attack and anomaly detection: an [`Analyzer`] that learns what normal looks like for every
//! endpoint and caller and reports what attacks an API or drifts from normal.
//!
//! ```text
//!                 ┌─> request (fields, decode, signatures) ─────────────────────────────┐
//! ApiCall ─> caller (source, principal, user, JWT)                                       ├─> report
//!   (after the    └─> subjects (endpoint, principal, source, pair) ─> bola, auth,        │   (suppress,
//!    inventory,        baselines + windows                           properties,          │    dedupe)
//!    sensitive)                                                      consumption, admin,  │   ─> api.finding
//!                                                                    inventory ──────────┘   ─> state dir
//! ```
//!
//! It runs after the inventory (which sets `http.route`, and reports shadow and zombie
//! endpoints) and the sensitive-data analyzer, on every call before redaction. Signatures need
//! no history and fire from the first call; the behaviour detectors compare with baselines
//! learnt per endpoint and per caller (`baseline`, `window`, `subjects`) once those have been
//! watched for the learning period. Every finding names its OWASP API Top 10 (2023) category,
//! endpoint, caller, redacted evidence, severity and reason (`report`), is deduplicated per
//! (detector, endpoint, caller, window), and is stored with the baselines in the state
//! directory (`store`), so `observer findings` lists it and a restart does not relearn.
//!
//! A call between two local processes is seen from both sides; only the server's side is
//! analysed (the client's is the same request), except for calls to services off this host,
//! which only the client side sees and which feed the third-party detector.

pub mod admin;
pub mod auth;
pub mod baseline;
pub mod bola;
pub mod caller;
pub mod config;
pub mod consumption;
pub mod decode;
pub mod inventory;
pub mod kind;
pub mod properties;
pub mod report;
pub mod request;
pub mod scenario;
pub mod signatures;
pub mod ssrf;
pub mod store;
pub mod subjects;
pub mod third_party;
pub mod window;

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use thiserror::Error;

use self::{
    admin::AdminRoutes,
    baseline::{Ewma, MIN_PEERS},
    caller::{stable_hash, Identities, Identity},
    config::DetectConfig,
    kind::Kind,
    properties::Properties,
    report::{Alert, ReportStats, Reporter, Scope, Target},
    request::{Reader, RequestFacts},
    signatures::{SignatureError, Signatures},
    store::{Batch, Store},
    subjects::{
        Endpoint, EndpointBaseline, EndpointName, Principal, PrincipalBaseline, SubjectStats,
        Subjects, MAX_ENDPOINTS, MAX_PRINCIPALS, MAX_SOURCES,
    },
    third_party::ThirdParties,
};
use crate::{
    conn::Role,
    findings::{Evidence, Location, MessageSide, Severity},
    model::{ApiCall, CallStatus},
    output::Output,
    pipeline::Analyzer,
    redact::Redactor,
    sensitive::keyed::HashKey,
    state::{State, StateError},
};

/// How often (kernel time) findings are written: the sensitive-data detectors' interval, so
/// `observer findings` is as fresh for attacks as for data.
pub const FINDINGS_FLUSH_INTERVAL_NS: u64 = 2_000_000_000;

/// How often (kernel time) changed baselines are written. Baselines move a little with every
/// call; losing half a minute of learning to a crash costs nothing, writing every endpoint
/// every two seconds would.
pub const BASELINE_FLUSH_INTERVAL_NS: u64 = 30_000_000_000;

/// Baselines written per tick in a round: ticks run on the thread that reads the ring buffer,
/// which fills in ~30 ms at this machine's saturation, and writing 20,000 principals and
/// 10,000 endpoints in one transaction took 110-350 ms here; 1,000 principals take 3-4 ms (and
/// about 45 ms when the write-ahead log is checkpointed, every few MB).
pub const BASELINE_SLICE: usize = 1_000;

/// The keys of the baselines a round of writes has yet to write.
#[derive(Debug, Default)]
struct BaselineRound {
    endpoints: Vec<u64>,
    principals: Vec<u64>,
    /// The round's first slice is still to go: the third parties and the start time go
    /// with it.
    first_slice: bool,
}

/// The keys of `map`'s entries that are `dirty`.
fn dirty_keys<V, S>(map: &HashMap<u64, V, S>, dirty: impl Fn(&V) -> bool) -> Vec<u64> {
    map.iter()
        .filter(|(_, value)| dirty(value))
        .map(|(key, _)| *key)
        .collect()
}

/// Up to `count` keys taken from the end of `keys`.
fn take_slice(keys: &mut Vec<u64>, count: usize) -> Vec<u64> {
    keys.split_off(keys.len().saturating_sub(count))
}

/// How often (traffic time) the endpoints' spreads across callers are recomputed and idle
/// counters forgotten: spreads move slowly, and recomputing walks every pair.
pub const MAINTENANCE_SECS: u64 = 900;

/// Local servers remembered (address, port) to recognise the client side of local calls.
const MAX_SERVED: usize = 4_096;

/// Weight of one call in an endpoint's size, latency and status baselines: about the last few
/// hundred calls.
const ENDPOINT_ALPHA: f64 = 0.01;

/// An endpoint that fails this rarely makes a 5xx answer to an attack payload telling: the
/// payload probably reached something it broke.
const RARE_ERROR_SHARE: f64 = 0.02;

#[derive(Debug, Error)]
pub enum DetectError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot encode detection state: {0}")]
    Encode(#[source] serde_json::Error),
    #[error(transparent)]
    Signatures(#[from] SignatureError),
}

/// What detection counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DetectStats {
    pub calls: u64,
    /// The client side of calls whose server side is analysed.
    pub local_client_side: u64,
    /// Calls without a request, or without a route (the inventory left them out).
    pub without_route: u64,
    pub report: ReportStats,
    pub subjects: SubjectStats,
    pub flushes: u64,
    pub store_errors: u64,
    /// Maintenance runs and the time they took: periodic work that grows with the number of
    /// callers tracked, not with the call rate.
    pub maintenance_runs: u64,
    pub maintenance_ns: u64,
}

/// The detection analyzer.
pub struct Detector {
    config: DetectConfig,
    reader: Reader,
    properties: Properties,
    admin_routes: AdminRoutes,
    identities: Identities,
    subjects: Subjects,
    third_parties: ThirdParties,
    reporter: Reporter,
    redactor: Option<Redactor>,
    store: Option<Store>,
    /// When (traffic time, seconds) the agent first saw traffic: learning ends a learning
    /// period later. Persisted.
    started: Option<u64>,
    started_stored: bool,
    /// Local servers seen serving ([`service_key`]).
    served: HashSet<u64>,
    last_maintenance: u64,
    last_findings_flush_ns: Option<u64>,
    last_baseline_flush_ns: Option<u64>,
    /// The baselines the round of writes under way has left to write.
    baseline_round: Option<BaselineRound>,
    newest: String,
    alerts: Vec<Alert>,
    stats: DetectStats,
}

/// What is known about one call while the detectors look at it.
struct Seen<'a> {
    call: &'a ApiCall,
    now: u64,
    identity: &'a Identity,
    request: &'a RequestFacts,
}

impl Detector {
    /// A detector with `config`, keying credential principals with `key` (the installation's
    /// redaction key), hiding evidence with `redactor`, persisting to `state` if given (and
    /// starting from what it holds).
    pub fn new(
        config: DetectConfig,
        key: HashKey,
        redactor: Option<Redactor>,
        state: Option<State>,
    ) -> Result<Detector, DetectError> {
        let mut detector = Detector {
            reader: Reader::new(Signatures::new()?, &config),
            properties: Properties::new(&config.properties),
            admin_routes: AdminRoutes::new(&config.admin.segments),
            identities: Identities::new(key),
            subjects: Subjects::default(),
            third_parties: ThirdParties::default(),
            reporter: Reporter::default(),
            redactor,
            store: None,
            started: None,
            started_stored: false,
            served: HashSet::new(),
            last_maintenance: 0,
            last_findings_flush_ns: None,
            last_baseline_flush_ns: None,
            baseline_round: None,
            newest: String::new(),
            alerts: Vec::new(),
            stats: DetectStats::default(),
            config,
        };
        if let Some(state) = state {
            let store = Store::open(state)?;
            let loaded = store.load()?;
            for (key, base) in loaded.endpoints {
                let admin = detector.admin_routes.is_admin(&base.name.route);
                detector.subjects.endpoints.insert(
                    key,
                    Endpoint {
                        base,
                        dirty: false,
                        admin,
                    },
                );
            }
            for (key, base) in loaded.principals {
                detector
                    .subjects
                    .principals
                    .insert(key, Principal::new(base, false));
            }
            detector.third_parties = ThirdParties::load(loaded.third_parties);
            detector.started = loaded.started;
            detector.started_stored = loaded.started.is_some();
            detector.store = Some(store);
        }
        Ok(detector)
    }

    pub fn stats(&self) -> DetectStats {
        let mut stats = self.stats.clone();
        stats.report = self.reporter.stats.clone();
        stats.subjects = self.subjects.stats.clone();
        stats
    }

    /// The client side of a call whose server this host serves (and so analyses).
    fn is_local_server(&self, call: &ApiCall) -> bool {
        let Some(address) = call.server_address.as_deref() else {
            return false;
        };
        let loopback = address
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback());
        loopback || self.served.contains(&service_key(call))
    }

    /// A call this host served (or whose role is unknown): every detector but the
    /// third-party one. Returns the endpoint's key.
    fn served_call(&mut self, seen: &Seen<'_>, out: &[Output], learning_ends: u64) -> u64 {
        let Seen {
            call,
            now,
            identity,
            request,
        } = *seen;
        let method = call.method.as_deref().unwrap_or("");
        let Some(route) = call.route.as_deref() else {
            // The inventory did not template it (a cap): signatures only.
            note_served(&mut self.served, call);
            self.stats.without_route += 1;
            signature_alerts(seen, None, &mut self.alerts);
            return endpoint_key(call);
        };
        let key = endpoint_key(call);
        let config = &self.config;
        let enabled = |kind: Kind| config.is_enabled(kind);
        let alerts = &mut self.alerts;
        let Subjects {
            endpoints,
            principals,
            sources,
            pairs,
            stats,
        } = &mut self.subjects;
        let served = &mut self.served;
        let admin_routes = &self.admin_routes;
        let Some(endpoint) = subjects::tracked(
            endpoints,
            key,
            MAX_ENDPOINTS,
            &mut stats.endpoints_capped,
            || {
                // A new endpoint: its server serves here (the client side of its calls is skipped).
                note_served(served, call);
                Endpoint {
                    base: EndpointBaseline {
                        name: EndpointName {
                            method: method.to_string(),
                            route: route.to_string(),
                            server_address: call.server_address.clone(),
                            server_port: call.server_port,
                        },
                        first_seen: now,
                        ..EndpointBaseline::default()
                    },
                    dirty: true,
                    admin: admin_routes.is_admin(route),
                }
            },
        ) else {
            note_served(served, call);
            signature_alerts(seen, None, alerts);
            return key;
        };
        endpoint.dirty = true;
        let admin = endpoint.admin;
        let base = &mut endpoint.base;
        let learned = base.learned(now, config.learning_period.0, config.learning_min_calls);
        signature_alerts(seen, Some(base.errors), alerts);

        if let Some(status) = inventory::status_from_outputs(out, call) {
            base.inventory = Some(status);
        }
        alerts.extend(inventory::check(base.inventory, call).filter(|a| enabled(a.kind)));
        let mut flagged_anonymous = false;
        if let Some(status) = call.status_code {
            if enabled(Kind::UnauthenticatedAccess) {
                let alert =
                    auth::unauthenticated_success(&config.auth, base, learned, identity, status);
                if alert.is_some() {
                    // Not learnt as the endpoint being public, unless many sources do it.
                    flagged_anonymous = true;
                    if base.anonymous_sources.note(
                        "success",
                        identity.source,
                        subjects::ADOPT_PUBLIC_AFTER_SOURCES,
                    ) {
                        base.successes_anonymous = base.successes_authenticated;
                    }
                }
                alerts.extend(alert);
            }
            if enabled(Kind::WeakToken) {
                alerts.extend(auth::weak_token(&config.auth, identity, status, now));
            }
        }
        if enabled(Kind::MassAssignment) {
            alerts.extend(properties::mass_assignment(
                &self.properties,
                &config.properties,
                base,
                learned,
                identity.principal,
                &request.body_fields,
                call.status_code,
            ));
        }
        if enabled(Kind::SensitiveFieldExposure) {
            let fields: Vec<(String, &'static str)> = inventory::new_response_fields(out, call)
                .iter()
                .map(|path| decode::field_name(path))
                .filter_map(|field| properties::sensitive_label_of(&field).map(|l| (field, l)))
                .collect();
            if !fields.is_empty() {
                alerts.extend(properties::exposure(base, learned, &fields));
            }
        }
        if enabled(Kind::ExpensiveRequest) {
            alerts.extend(consumption::page_size(
                &config.cost,
                base,
                learned,
                &request.page_sizes,
            ));
            alerts.extend(consumption::response_cost(
                &config.cost,
                base,
                learned,
                call.response_body.as_ref().map(|b| b.size),
                call.latency_ms,
            ));
        }
        if admin && enabled(Kind::FunctionLevelAuthz) {
            // Time alone: who calls an administrative endpoint is what is learnt, not how often.
            let watched = now >= base.first_seen.saturating_add(config.learning_period.0);
            alerts.extend(admin::check(
                base,
                watched,
                identity.principal,
                call.status_code,
            ));
        }
        learn_endpoint(base, call, identity, now, flagged_anonymous);

        // Detectors that fire on every call of an attack ask first whether it was reported
        // in this window: a repeat is counted, not rebuilt.
        let reporter = &mut self.reporter;
        let mut repeat = |kind: Kind, caller: u64| {
            reporter.repeat(config, kind, key, caller, now, &call.timestamp)
        };

        // The principal: its calls in all, its own history if that may excuse it, and what it
        // does on this endpoint.
        let principal = subjects::tracked(
            principals,
            identity.principal,
            MAX_PRINCIPALS,
            &mut stats.principals_capped,
            || Principal::new(PrincipalBaseline::default(), true),
        );
        let (own, pair) = match principal {
            Some(principal) => {
                principal.count(now);
                let Principal {
                    base,
                    pairs: own_pairs,
                    ..
                } = principal;
                let trusted = base.first_seen < learning_ends
                    || now >= base.first_seen.saturating_add(config.caller_probation.0);
                let pair = subjects::pair_of(own_pairs, key, pairs, &mut stats.pairs_capped);
                (trusted.then_some(&*base), pair)
            }
            None => (None, None),
        };

        // The source: refused credentials.
        let login = request.login_attempt.is_some();
        if call
            .status_code
            .is_some_and(|s| auth::is_auth_failure(s, login))
            && enabled(Kind::AuthFailureBurst)
        {
            if let Some(source) = subjects::tracked(
                sources,
                identity.source,
                MAX_SOURCES,
                &mut stats.sources_capped,
                Default::default,
            ) {
                source.last_seen = now;
                auth::count_failure(source, request.login_attempt.or(identity.credential), now);
                if !repeat(Kind::AuthFailureBurst, identity.source) {
                    alerts.extend(auth::failure_burst(&config.auth, source, now));
                }
            }
        }

        // The principal on this endpoint: its rate, and the objects it walks.
        let Some(pair) = pair else {
            return key;
        };
        pair.last_seen = now;
        pair.calls.add(now, 1, |_, _| {});
        if enabled(Kind::RateAnomaly) && !repeat(Kind::RateAnomaly, identity.principal) {
            alerts.extend(consumption::rate(
                &config.rate,
                &endpoint.base,
                learned,
                own,
                &pair.calls.estimates(now),
                now,
            ));
        }
        if enabled(Kind::Bola) && bola::applies(&endpoint.base, learned) {
            if let Some(id) = bola::object_id(route, call.path.as_deref().unwrap_or("")) {
                let refused = matches!(call.status_code, Some(403 | 404));
                if repeat(Kind::Bola, identity.principal) {
                    bola::count(pair, id, refused, now);
                } else {
                    alerts.extend(bola::check(
                        &config.bola,
                        &endpoint.base,
                        learned,
                        pair,
                        id,
                        refused,
                        now,
                    ));
                }
            }
        }
        key
    }

    /// A call this host made to a service elsewhere: signatures, and the third-party
    /// detector. Returns the key of the service it called.
    fn outgoing_call(&mut self, seen: &Seen<'_>, learning: bool) -> u64 {
        signature_alerts(seen, None, &mut self.alerts);
        let host = ThirdParties::host(seen.call);
        if self.config.is_enabled(Kind::NewThirdPartyApi) && !host.is_empty() {
            let source = caller::source_of(seen.call);
            let process = source.strip_prefix("process:").unwrap_or(&source);
            let alert = self
                .third_parties
                .check(process, &host, learning, seen.call);
            self.alerts.extend(alert);
        }
        stable_hash(&[b"third_party", host.as_bytes()])
    }

    /// Write new findings every [`FINDINGS_FLUSH_INTERVAL_NS`], and the baselines that
    /// changed every [`BASELINE_FLUSH_INTERVAL_NS`] in a round of slices, one per call, of
    /// [`BASELINE_SLICE`] each. `None` (the end): everything at once.
    fn flush(&mut self, now_ns: Option<u64>) {
        let findings_due = match now_ns {
            None => true,
            Some(now) => {
                let last = *self.last_findings_flush_ns.get_or_insert(now);
                now.saturating_sub(last) >= FINDINGS_FLUSH_INTERVAL_NS
            }
        };
        let baselines_due = match now_ns {
            None => true,
            Some(now) => {
                let last = *self.last_baseline_flush_ns.get_or_insert(now);
                now.saturating_sub(last) >= BASELINE_FLUSH_INTERVAL_NS
            }
        };
        if let Some(now) = now_ns {
            if findings_due {
                self.last_findings_flush_ns = Some(now);
            }
            if baselines_due {
                self.last_baseline_flush_ns = Some(now);
            }
        }
        if baselines_due {
            // The baselines dirty now; those dirtied later wait for the next round.
            self.baseline_round = Some(BaselineRound {
                endpoints: dirty_keys(&self.subjects.endpoints, |e| e.dirty),
                principals: dirty_keys(&self.subjects.principals, |p| p.dirty),
                first_slice: true,
            });
        }
        if !findings_due && self.baseline_round.is_none() {
            return;
        }
        let Some(store) = &mut self.store else {
            // Nowhere to write: drop what would have been written, keep memory bounded.
            let _ = self.reporter.take_pending();
            self.baseline_round = None;
            return;
        };
        let slice = if now_ns.is_some() {
            BASELINE_SLICE
        } else {
            usize::MAX
        };
        let mut batch = Batch {
            findings: if findings_due {
                self.reporter.take_pending()
            } else {
                Vec::new()
            },
            updated: self.newest.clone(),
            ..Batch::default()
        };
        let (mut endpoints, mut principals) = (Vec::new(), Vec::new());
        if let Some(round) = &mut self.baseline_round {
            endpoints = take_slice(&mut round.endpoints, slice);
            principals = take_slice(&mut round.principals, slice - endpoints.len());
            batch.endpoints = endpoints
                .iter()
                .filter_map(|key| Some((*key, &self.subjects.endpoints.get(key)?.base)))
                .collect();
            batch.principals = principals
                .iter()
                .filter_map(|key| Some((*key, &self.subjects.principals.get(key)?.base)))
                .collect();
            if std::mem::take(&mut round.first_slice) {
                batch.third_parties = self.third_parties.take_new();
                if !self.started_stored {
                    batch.started = self.started;
                }
            }
            if round.endpoints.is_empty() && round.principals.is_empty() {
                self.baseline_round = None;
            }
        }
        if batch.findings.is_empty()
            && batch.endpoints.is_empty()
            && batch.principals.is_empty()
            && batch.third_parties.is_empty()
            && batch.started.is_none()
        {
            return;
        }
        let stored_started = batch.started.is_some();
        match store.save(&batch) {
            Ok(()) => {
                drop(batch);
                self.stats.flushes += 1;
                self.started_stored |= stored_started;
                for key in &endpoints {
                    if let Some(endpoint) = self.subjects.endpoints.get_mut(key) {
                        endpoint.dirty = false;
                    }
                }
                for key in &principals {
                    if let Some(principal) = self.subjects.principals.get_mut(key) {
                        principal.dirty = false;
                    }
                }
            }
            Err(error) => {
                // What failed stays dirty (findings are lost): the next round tries again.
                self.baseline_round = None;
                self.stats.store_errors += 1;
                tracing::warn!("cannot store detection state: {error}");
            }
        }
    }
}

/// Fold one call into its endpoint's baseline (after the detectors compared with it). An
/// anonymous success that was flagged does not count as one: attacks must not teach the
/// endpoint that it is public.
fn learn_endpoint(
    base: &mut EndpointBaseline,
    call: &ApiCall,
    identity: &Identity,
    now: u64,
    flagged_anonymous: bool,
) {
    base.calls += 1;
    base.last_seen = base.last_seen.max(now);
    if let Some(ms) = call.latency_ms {
        base.latency
            .update((1.0 + ms.max(0.0)).ln(), ENDPOINT_ALPHA);
    }
    if let Some(body) = &call.request_body {
        base.request_size
            .update((1.0 + body.size as f64).ln(), ENDPOINT_ALPHA);
    }
    if let Some(body) = &call.response_body {
        base.response_size
            .update((1.0 + body.size as f64).ln(), ENDPOINT_ALPHA);
    }
    if let Some(status) = call.status_code {
        base.errors
            .update(f64::from(u8::from(status >= 500)), ENDPOINT_ALPHA);
        if (200..300).contains(&status) {
            if identity.authenticated {
                base.successes_authenticated += 1;
            } else if !flagged_anonymous {
                base.successes_anonymous += 1;
            }
        }
    }
}

/// The signatures' alerts for a request. A payload the endpoint answered with a 5xx, where it
/// rarely fails (`errors`, its baseline), is worse: it probably reached what it was aimed at.
fn signature_alerts(seen: &Seen<'_>, errors: Option<Ewma>, alerts: &mut Vec<Alert>) {
    let status = seen.call.status_code;
    let broke = status.is_some_and(|s| s >= 500)
        && errors.is_some_and(|e| e.learned() && e.mean < RARE_ERROR_SHARE);
    for hit in &seen.request.hits {
        let location = match &hit.name {
            Some(name) => format!("{} `{name}`", hit.part.name()),
            None => format!("the {}", hit.part.name()),
        };
        let mut reason = format!(
            "{} in {location} ({})",
            describe_signature(hit.kind),
            hit.rule.replace('_', " ")
        );
        let mut alert = if broke {
            reason.push_str(&format!(
                "; the endpoint answered {}, which it rarely does: the payload may have reached \
                 its target",
                status.unwrap_or(500)
            ));
            Alert::new(hit.kind, hit.rule, reason, Scope::Principal).severity(Severity::Critical)
        } else {
            Alert::new(hit.kind, hit.rule, reason, Scope::Principal)
        };
        alert.evidence.push(Evidence {
            location: Location {
                side: MessageSide::Request,
                part: hit.part.name().to_string(),
                name: hit.name.clone(),
            },
            value: hit.snippet.clone(),
        });
        alerts.push(alert);
    }
}

fn note_served(served: &mut HashSet<u64>, call: &ApiCall) {
    if served.len() < MAX_SERVED {
        served.insert(service_key(call));
    }
}

/// The key of a call's server (address and port). Stable across restarts: baselines are
/// persisted under keys made from it.
fn service_key(call: &ApiCall) -> u64 {
    stable_hash(&[
        call.server_address.as_deref().unwrap_or("").as_bytes(),
        &call.server_port.unwrap_or(0).to_le_bytes(),
    ])
}

/// The key of a call's endpoint: its server, method and route (the path without one).
fn endpoint_key(call: &ApiCall) -> u64 {
    stable_hash(&[
        &service_key(call).to_le_bytes(),
        call.method.as_deref().unwrap_or("").as_bytes(),
        call.route
            .as_deref()
            .or(call.path.as_deref())
            .unwrap_or("")
            .as_bytes(),
    ])
}

fn describe_signature(kind: Kind) -> &'static str {
    match kind {
        Kind::SqlInjection => "SQL injection",
        Kind::Xss => "cross-site scripting",
        Kind::PathTraversal => "path traversal",
        Kind::CommandInjection => "command injection",
        Kind::Ssrf => "a URL pointing the server at an internal address",
        Kind::TemplateInjection => "template injection",
        Kind::JndiInjection => "a JNDI lookup (Log4Shell)",
        _ => "an attack",
    }
}

impl Analyzer for Detector {
    fn analyze(&mut self, call: &mut ApiCall, out: &mut Vec<Output>) {
        if !self.config.enabled {
            return;
        }
        self.stats.calls += 1;
        if call.status == CallStatus::NoRequest || call.method.is_none() {
            self.stats.without_route += 1;
            return;
        }
        let outgoing = call.role == Some(Role::Client);
        if outgoing && self.is_local_server(call) {
            self.stats.local_client_side += 1;
            return;
        }
        // Traffic time: windows and learning follow the calls, so a replay detects what the
        // live agent did.
        let now = call.realtime_ns / 1_000_000_000;
        let started = *self.started.get_or_insert(now);
        let learning_ends = started.saturating_add(self.config.learning_period.0);
        self.newest.clone_from(&call.timestamp);
        let identity = self.identities.identify(call);
        let request = self.reader.read(call, self.redactor.as_ref());
        let seen = Seen {
            call,
            now,
            identity: &identity,
            request: &request,
        };
        let endpoint = if outgoing {
            self.outgoing_call(&seen, now < learning_ends)
        } else {
            self.served_call(&seen, out, learning_ends)
        };
        if !self.alerts.is_empty() {
            let target = Target {
                call,
                now,
                endpoint,
                identity: &identity,
            };
            for alert in self.alerts.drain(..) {
                self.reporter
                    .report(&self.config, self.redactor.as_ref(), alert, &target, out);
            }
        }
        if now >= self.last_maintenance.saturating_add(MAINTENANCE_SECS) {
            self.last_maintenance = now;
            let started = std::time::Instant::now();
            self.subjects.maintain(now, MIN_PEERS);
            self.stats.maintenance_runs += 1;
            self.stats.maintenance_ns +=
                u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        }
    }

    fn tick(&mut self, now_ns: u64, _out: &mut Vec<Output>) {
        self.flush(Some(now_ns));
    }

    fn finish(&mut self, _out: &mut Vec<Output>) {
        self.flush(None);
        let stats = self.stats();
        tracing::info!(
            "detection: {} calls, {} findings reported ({} repeats deduplicated, {} suppressed); \
             {} endpoints, {} principals tracked",
            stats.calls,
            stats.report.reported,
            stats.report.deduplicated,
            stats.report.suppressed,
            self.subjects.endpoints.len(),
            self.subjects.principals.len(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baselines_are_written_a_slice_per_tick() {
        let dir = crate::state::test_dir("detect-slices");
        let key = HashKey::from_bytes([7; 32]);
        let state = State::open(&dir).unwrap();
        let mut detector = Detector::new(DetectConfig::default(), key, None, Some(state)).unwrap();
        let count = 2 * BASELINE_SLICE + 10;
        for key in 0..count as u64 {
            let base = PrincipalBaseline {
                calls: key,
                ..PrincipalBaseline::default()
            };
            detector
                .subjects
                .principals
                .insert(key, Principal::new(base, true));
        }
        let dirty = |detector: &Detector| {
            let principals = detector.subjects.principals.values();
            principals.filter(|p| p.dirty).count()
        };
        let mut out = Vec::new();
        detector.tick(1, &mut out);
        assert_eq!(dirty(&detector), count);
        let slices = [count - BASELINE_SLICE, count - 2 * BASELINE_SLICE, 0];
        // The round starts at the tick an interval after the first; the next ticks go on.
        for (now, left) in (1 + BASELINE_FLUSH_INTERVAL_NS..).zip(slices) {
            detector.tick(now, &mut out);
            assert_eq!(dirty(&detector), left);
        }
        drop(detector);
        let stored = Store::open(State::open(&dir).unwrap())
            .unwrap()
            .load()
            .unwrap();
        assert_eq!(stored.principals.len(), count);
        let _ = std::fs::remove_dir_all(dir);
    }
}
