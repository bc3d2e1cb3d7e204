//! The sensitive-data analyzer: scans every call before redaction, applies the policy, and
//! reports findings and endpoint labels.
//!
//! ```text
//! ApiCall (raw) ─> scan request (path, query, headers, body) and response (headers, body)
//!               ─> policy: allow (label only) or report (finding, once per fingerprint)
//!               ─> api.finding on the output stream; counts to the state database every
//!                  FLUSH_INTERVAL_NS; labels to the inventory's labeler
//! ```
//!
//! A finding is reported the first time its fingerprint (type, endpoint, direction, location,
//! caller, plaintext or not) is seen, and counted every time after, so a busy endpoint returning
//! emails yields one finding, not one per call. Evidence is masked (`mask`) before the finding
//! exists, and endpoint routes are templated and scrubbed of recognised values, so no finding
//! holds a raw value.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Arc,
};

use sha2::{Digest, Sha256};

use super::{
    fields::Source,
    keyed::{hex, HashKey},
    labels::{self, LabelKey},
    mask::mask,
    policy::{Decision, Policy, Subject},
    scan::{Found, Scanner},
    types::{Category, TypeRef},
};
use crate::{
    conn::Role,
    findings::{self, Evidence, Finding, Location, MessageSide, Severity},
    model::ApiCall,
    output::Output,
    pipeline::{Analyzer, AnalyzerStats},
    state::{State, StateError},
};

/// The `finding.kind` of every sensitive-data finding (attack detection's are named by
/// `detect::kind`).
pub const FINDING_KIND: &str = "sensitive_data";

/// How often (kernel time) counts are written to the state database: at most this much is lost
/// when the agent is killed.
pub const FLUSH_INTERVAL_NS: u64 = 2_000_000_000;

/// Distinct findings remembered (to report each once). A fingerprint costs ~100 bytes; past
/// this, new findings are counted as dropped rather than growing memory without bound.
pub const MAX_TRACKED_FINDINGS: usize = 100_000;

/// Fingerprints remembered by their key (see [`FingerprintMemo`]); past this the memo starts
/// over. A key is ~150 bytes, so this is well under a MiB, and a busy host repeats far fewer
/// distinct findings between two of its clears.
const MAX_MEMOIZED_FINGERPRINTS: usize = 4096;

/// Distinct endpoint labels counted between two flushes.
pub const MAX_PENDING_LABELS: usize = 100_000;

/// Evidence items per finding: one location per finding, plus a few repeats of it in arrays.
const MAX_EVIDENCE: usize = 3;

/// Something that attaches labels to the endpoint of a call: the inventory's labeler.
pub type LabelSink = Box<dyn FnMut(&ApiCall, &str) + Send>;

/// What the analyzer counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SensitiveStats {
    pub values_found: u64,
    /// The same values by type: a built-in type's name or a custom type's from the policy,
    /// so a fixed set the agent and its config define.
    pub values_by_type: BTreeMap<String, u64>,
    pub findings_reported: u64,
    pub findings_dropped: u64,
    pub store_errors: u64,
}

pub struct SensitiveAnalyzer {
    scanner: Arc<Scanner>,
    policy: Arc<Policy>,
    key: HashKey,
    state: Option<State>,
    reported: HashSet<[u8; 16]>,
    /// Findings to write at the next flush: fingerprint → (finding, sightings).
    pending_findings: HashMap<[u8; 16], (Finding, u64)>,
    pending_labels: HashMap<LabelKey, (String, u64)>,
    label_sink: Option<LabelSink>,
    last_flush_ns: u64,
    found: Vec<(MessageSide, Found)>,
    fingerprints: FingerprintMemo,
    stats: SensitiveStats,
}

impl SensitiveAnalyzer {
    /// An analyzer scanning with `scanner` (which must know the policy's custom types), masking
    /// with `key`, persisting to `state` if given.
    pub fn new(
        scanner: Arc<Scanner>,
        policy: Arc<Policy>,
        key: HashKey,
        state: Option<State>,
    ) -> Result<SensitiveAnalyzer, StateError> {
        let mut state = state;
        if let Some(state) = &mut state {
            findings::store::migrate(state)?;
            labels::migrate(state)?;
        }
        Ok(SensitiveAnalyzer {
            scanner,
            policy,
            key,
            state,
            reported: HashSet::new(),
            pending_findings: HashMap::new(),
            pending_labels: HashMap::new(),
            label_sink: None,
            last_flush_ns: 0,
            found: Vec::new(),
            fingerprints: FingerprintMemo::default(),
            stats: SensitiveStats::default(),
        })
    }

    /// Send endpoint labels (`accepts:email`, `returns:ssn`) here too.
    pub fn set_label_sink(&mut self, sink: LabelSink) {
        self.label_sink = Some(sink);
    }

    pub fn stats(&self) -> &SensitiveStats {
        &self.stats
    }

    /// Writes pending counts in one transaction. Errors are logged and counted: losing counts
    /// must not stop the agent.
    fn flush(&mut self) {
        let findings = std::mem::take(&mut self.pending_findings);
        let labels = std::mem::take(&mut self.pending_labels);
        let Some(state) = &mut self.state else {
            return;
        };
        if findings.is_empty() && labels.is_empty() {
            return;
        }
        let result = (|| -> Result<(), StateError> {
            let transaction = state.connection_mut().transaction()?;
            for (fingerprint, (finding, count)) in &findings {
                findings::store::record(&transaction, &hex(fingerprint), finding, *count)?;
            }
            for (key, (seen, count)) in &labels {
                labels::record(&transaction, key, seen, *count)?;
            }
            transaction.commit()?;
            Ok(())
        })();
        if let Err(error) = result {
            self.stats.store_errors += 1;
            tracing::warn!("cannot store sensitive-data findings: {error}");
        }
    }

    fn scan(&mut self, call: &ApiCall) {
        let now = call.realtime_ns / 1_000_000_000;
        let scanner = &self.scanner;
        let found = &mut self.found;
        found.clear();
        let mut scratch = Vec::new();
        let mut scan = |found: &mut Vec<_>, side: MessageSide, source: Source<'_>, text: &str| {
            scratch.clear();
            scanner.scan_source(source, text, now, &mut scratch);
            found.extend(scratch.drain(..).map(|f| (side, f)));
        };
        if let Some(path) = &call.path {
            scan(found, MessageSide::Request, Source::Path, path);
        }
        if let Some(query) = &call.query {
            scan(found, MessageSide::Request, Source::Query, query);
        }
        for (side, headers, body) in [
            (
                MessageSide::Request,
                &call.request_headers,
                &call.request_body_bytes,
            ),
            (
                MessageSide::Response,
                &call.response_headers,
                &call.response_body_bytes,
            ),
        ] {
            let body_text = || match side {
                MessageSide::Request => call.request_body_text(),
                MessageSide::Response => call.response_body_text(),
            };
            // Scanned as a set kept under the map's stamp, for redaction to take.
            scanner.scan_header_fields(headers.stamp(), headers.fields(), now, |in_field| {
                found.extend(in_field.iter().map(|f| (side, f.clone())));
            });
            if !body.is_empty() {
                let content_type = headers.first("content-type");
                scan(found, side, Source::Body(content_type), &body_text());
            }
        }
    }

    /// The endpoint's route, safe to show: the inventory's template when there is one, else the
    /// path with id-like segments templated; recognised values become `{type}` either way.
    fn safe_route(&self, call: &ApiCall) -> Option<String> {
        let route = call.route.as_deref().or(call.path.as_deref())?;
        let mut found = Vec::new();
        self.scanner.scan_source(Source::Path, route, 0, &mut found);
        let mut out = String::with_capacity(route.len());
        let mut at = 0;
        for f in &found {
            if f.raw.start < at {
                continue;
            }
            out.push_str(&route[at..f.raw.start]);
            out.push('{');
            out.push_str(self.scanner.type_name(f.kind));
            out.push('}');
            at = f.raw.end;
        }
        out.push_str(&route[at..]);
        if call.route.is_some() {
            return Some(out);
        }
        Some(
            out.split('/')
                .map(|segment| if is_id_like(segment) { "{id}" } else { segment })
                .collect::<Vec<_>>()
                .join("/"),
        )
    }
}

impl Analyzer for SensitiveAnalyzer {
    fn analyze(&mut self, call: &mut ApiCall, out: &mut Vec<Output>) {
        self.scan(call);
        if self.found.is_empty() {
            return;
        }
        self.stats.values_found += self.found.len() as u64;
        let route = self.safe_route(call);
        let service = match (&call.server_address, call.server_port) {
            // Joined without the formatting machinery: most calls with findings (a bearer token
            // in every request) come here, and `format!` cost more than the rest of the label.
            (Some(address), Some(port)) => {
                [address.as_str(), ":", itoa::Buffer::new().format(port)].concat()
            }
            (Some(address), None) => address.clone(),
            _ => "unknown".to_string(),
        };
        let method = call.method.clone().unwrap_or_default();
        let server_name = (call.role == Some(Role::Server))
            .then_some(call.executable_name.as_deref())
            .flatten();
        let caller_name = (call.role == Some(Role::Client))
            .then_some(call.executable_name.as_deref())
            .flatten();

        // Group one call's values by finding: the same type at the same location (array
        // elements included) is one finding with a few pieces of evidence.
        let mut groups: Vec<(Vec<u8>, Finding)> = Vec::new();
        // Fingerprints of repeated findings already counted for this call.
        let mut counted: Vec<[u8; 16]> = Vec::new();
        // A call finds a few types: a list searched whole costs less than hashing into a set.
        let mut labelled: Vec<(MessageSide, TypeRef)> = Vec::new();
        let found = std::mem::take(&mut self.found);
        for (side, f) in &found {
            let type_name = self.scanner.type_name(f.kind).to_string();
            match self.stats.values_by_type.get_mut(&type_name) {
                Some(n) => *n += 1,
                None => {
                    self.stats.values_by_type.insert(type_name.clone(), 1);
                }
            }
            let category = self.scanner.category(f.kind);
            if !labelled.contains(&(*side, f.kind)) {
                labelled.push((*side, f.kind));
                self.label(call, &service, &method, route.as_deref(), *side, &type_name);
            }
            let severity = match f.kind {
                TypeRef::Builtin(t) => t.default_severity(),
                TypeRef::Custom(i) => self
                    .scanner
                    .custom_types()
                    .get(usize::from(i))
                    .map_or(Severity::Medium, |c| c.severity),
            };
            let subject = Subject {
                type_name: &type_name,
                category,
                severity,
                side: *side,
                part: f.part,
                plaintext: !call.tls,
                method: call.method.as_deref(),
                route: route.as_deref(),
                server: call
                    .server_address
                    .as_deref()
                    .map(|a| (a, call.server_port)),
                server_name,
                caller_address: call.client_address.as_deref(),
                caller_name,
            };
            let decision = self.policy.decide(&subject);
            let Decision::Report { severity, reason } = decision else {
                continue;
            };
            let location = Location {
                side: *side,
                part: f.part.name().to_string(),
                name: f.name.as_deref().map(normalize_location),
            };
            let mut variants = vec![(type_name.clone(), severity, reason, category)];
            if f.flags.jwt_alg_none {
                variants.push((
                    "jwt_alg_none".to_string(),
                    Severity::High,
                    Some(
                        "a JWT with `alg: none` carries no signature: anyone can forge one".into(),
                    ),
                    Category::Secret,
                ));
            }
            if f.flags.jwt_expired {
                variants.push((
                    "jwt_expired".to_string(),
                    Severity::Low,
                    Some("an expired JWT was sent: the client is not refreshing its tokens".into()),
                    Category::Secret,
                ));
            }
            // Most values on a busy endpoint repeat findings already reported and waiting to be
            // counted: when every finding this value makes is one, count the sightings (once
            // per call) without building them. Either all are counted here or none: a value
            // half counted here would be counted again below.
            let fingerprints: Vec<[u8; 16]> = variants
                .iter()
                .map(|(detail, ..)| {
                    self.fingerprints.of(&FindingKey::about(
                        call,
                        detail,
                        route.as_deref(),
                        &location,
                    ))
                })
                .collect();
            if fingerprints
                .iter()
                .all(|fingerprint| self.pending_findings.contains_key(fingerprint))
            {
                for fingerprint in fingerprints {
                    if counted.contains(&fingerprint) {
                        continue;
                    }
                    counted.push(fingerprint);
                    if let Some(entry) = self.pending_findings.get_mut(&fingerprint) {
                        entry.0.timestamp.clone_from(&call.timestamp);
                        entry.1 += 1;
                    }
                }
                continue;
            }
            let evidence = Evidence {
                location: location.clone(),
                value: mask(&self.key, f.kind, &type_name, &f.value),
            };
            for (detail, severity, reason, category) in variants {
                let group_key = format!(
                    "{detail}|{:?}|{}|{:?}",
                    location.side, location.part, location.name
                )
                .into_bytes();
                if let Some((_, finding)) = groups.iter_mut().find(|(k, _)| *k == group_key) {
                    if finding.evidence.len() < MAX_EVIDENCE {
                        finding.evidence.push(evidence.clone());
                    }
                    finding.severity = finding.severity.max(severity);
                    continue;
                }
                let what = describe(&detail, *side, &location);
                let reason = match reason {
                    Some(reason) => format!("{what}: {reason}"),
                    None => what,
                };
                let mut finding = Finding::about(call, FINDING_KIND, severity, reason);
                finding.detail_type = Some(detail);
                finding.owasp_category = owasp(category, *side, &finding).map(str::to_string);
                finding.endpoint.route = route.clone();
                finding.evidence.push(evidence.clone());
                groups.push((group_key, finding));
            }
        }
        self.found = found;

        for (_, finding) in groups {
            let fingerprint = self.fingerprints.of(&FindingKey::of(&finding));
            let new = !self.reported.contains(&fingerprint);
            if new {
                if self.reported.len() >= MAX_TRACKED_FINDINGS {
                    self.stats.findings_dropped += 1;
                    continue;
                }
                self.reported.insert(fingerprint);
                self.stats.findings_reported += 1;
                out.push(Output::Finding(finding.clone()));
            }
            let timestamp = finding.timestamp.clone();
            let entry = self
                .pending_findings
                .entry(fingerprint)
                .or_insert((finding, 0));
            entry.0.timestamp = timestamp;
            entry.1 += 1;
        }
    }

    fn tick(&mut self, now_ns: u64, _out: &mut Vec<Output>) {
        if now_ns.saturating_sub(self.last_flush_ns) >= FLUSH_INTERVAL_NS {
            self.last_flush_ns = now_ns;
            self.flush();
        }
    }

    fn finish(&mut self, _out: &mut Vec<Output>) {
        self.flush();
    }

    fn stats(&self, out: &mut AnalyzerStats) {
        out.sensitive = Some(self.stats.clone());
    }
}

impl SensitiveAnalyzer {
    fn label(
        &mut self,
        call: &ApiCall,
        service: &str,
        method: &str,
        route: Option<&str>,
        side: MessageSide,
        type_name: &str,
    ) {
        let verb = match side {
            MessageSide::Request => "accepts",
            MessageSide::Response => "returns",
        };
        if let Some(sink) = &mut self.label_sink {
            sink(call, &[verb, ":", type_name].concat());
        }
        let key = LabelKey {
            service: service.to_string(),
            method: method.to_string(),
            route: route.unwrap_or("").to_string(),
            side,
            data_type: type_name.to_string(),
        };
        if self.pending_labels.len() >= MAX_PENDING_LABELS
            && !self.pending_labels.contains_key(&key)
        {
            return;
        }
        let entry = self.pending_labels.entry(key).or_default();
        // Into the buffer the entry holds already: most labels are counted again and again.
        entry.0.clone_from(&call.timestamp);
        entry.1 += 1;
    }
}

/// `$.users[3].email` → `$.users[*].email`: one location for every element of an array.
fn normalize_location(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_index = false;
    for c in name.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push_str("[*]");
            }
            ']' if in_index => in_index = false,
            _ if in_index => {}
            c => out.push(c),
        }
    }
    out
}

fn describe(detail: &str, side: MessageSide, location: &Location) -> String {
    let side = labels::side_name(side);
    match &location.name {
        Some(name) => format!("{detail} in the {side} {} `{name}`", location.part),
        None => format!("{detail} in the {side} {}", location.part),
    }
}

/// OWASP API Security Top 10 (2023): credentials exposed in transit or in URLs are a security
/// misconfiguration (API8); personal data in responses is excessive data exposure (API3).
fn owasp(category: Category, side: MessageSide, finding: &Finding) -> Option<&'static str> {
    match (category, side) {
        (Category::Secret, _) if finding.detail_type.as_deref() == Some("jwt_alg_none") => {
            Some("API2:2023")
        }
        (Category::Secret, _) => Some("API8:2023"),
        (_, MessageSide::Response) => Some("API3:2023"),
        _ => None,
    }
}

/// What makes two findings the same: type, endpoint, location, caller, and plaintext or not.
/// Borrowed, so that a call can be told to repeat a known finding before one is built for it.
#[derive(Debug, Clone, Copy)]
struct FindingKey<'a> {
    kind: &'a str,
    detail: Option<&'a str>,
    method: Option<&'a str>,
    route: Option<&'a str>,
    server_address: Option<&'a str>,
    server_port: Option<u16>,
    location: Option<&'a Location>,
    caller_address: Option<&'a str>,
    caller_executable: Option<&'a str>,
    caller_container: Option<&'a str>,
    plaintext: bool,
}

impl<'a> FindingKey<'a> {
    fn of(finding: &'a Finding) -> FindingKey<'a> {
        FindingKey {
            kind: &finding.kind,
            detail: finding.detail_type.as_deref(),
            method: finding.endpoint.method.as_deref(),
            route: finding.endpoint.route.as_deref(),
            server_address: finding.endpoint.server_address.as_deref(),
            server_port: finding.endpoint.server_port,
            location: finding.evidence.first().map(|e| &e.location),
            caller_address: finding.caller.address.as_deref(),
            caller_executable: finding.caller.executable_name.as_deref(),
            caller_container: finding.caller.container_id.as_deref(),
            plaintext: finding.plaintext,
        }
    }

    /// The key of the finding [`Finding::about`] makes of `call` (the analyzer then sets its
    /// detail type, route and first evidence's location), without making it.
    fn about(
        call: &'a ApiCall,
        detail: &'a str,
        route: Option<&'a str>,
        location: &'a Location,
    ) -> FindingKey<'a> {
        let caller_is_observed = call.role == Some(Role::Client);
        FindingKey {
            kind: FINDING_KIND,
            detail: Some(detail),
            method: call.method.as_deref(),
            route,
            server_address: call.server_address.as_deref(),
            server_port: call.server_port,
            location: Some(location),
            caller_address: call.client_address.as_deref(),
            caller_executable: caller_is_observed
                .then_some(call.executable_name.as_deref())
                .flatten(),
            caller_container: caller_is_observed
                .then_some(call.container_id.as_deref())
                .flatten(),
            plaintext: !call.tls,
        }
    }

    /// Every part of the key as one byte string, each part tagged (present or not) and
    /// length-prefixed, so that two keys have the same bytes only if they are the same key.
    fn write_exact(&self, out: &mut Vec<u8>) {
        let mut text = |text: Option<&str>| match text {
            Some(text) => {
                out.push(1);
                out.extend_from_slice(&(text.len() as u64).to_le_bytes());
                out.extend_from_slice(text.as_bytes());
            }
            None => out.push(0),
        };
        text(Some(self.kind));
        text(self.detail);
        text(self.method);
        text(self.route);
        text(self.server_address);
        text(self.caller_address);
        text(self.caller_executable);
        text(self.caller_container);
        match self.location {
            Some(location) => {
                text(Some(match location.side {
                    MessageSide::Request => "request",
                    MessageSide::Response => "response",
                }));
                text(Some(&location.part));
                text(location.name.as_deref());
            }
            None => text(None),
        }
        match self.server_port {
            Some(port) => {
                out.push(1);
                out.extend_from_slice(&port.to_le_bytes());
            }
            None => out.push(0),
        }
        out.push(u8::from(self.plaintext));
    }

    /// The fingerprint stored with the finding: the text hashed is the same as it has always
    /// been (Debug of the optional parts), so findings stored by earlier versions still match.
    fn fingerprint(&self) -> [u8; 16] {
        let mut hasher = Sha256::new();
        let text = format!(
            "{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{}",
            self.kind,
            self.detail,
            self.method,
            self.route,
            self.server_address,
            self.server_port,
            self.location,
            self.caller_address,
            self.caller_executable,
            self.caller_container,
            self.plaintext
        );
        hasher.update(text.as_bytes());
        let digest = hasher.finalize();
        let mut out = [0u8; 16];
        out.copy_from_slice(&digest[..16]);
        out
    }
}

/// Fingerprints by their key's exact bytes ([`FindingKey::write_exact`]). A call to an endpoint
/// repeats the findings of the calls before it (a bearer token in every request), and formatting
/// and hashing the key for each of them cost more than scanning the call: building its bytes
/// and looking them up is a few copies and one hash.
#[derive(Default)]
struct FingerprintMemo {
    fingerprints: HashMap<Vec<u8>, [u8; 16]>,
    /// The key being looked up, reused.
    key: Vec<u8>,
}

impl FingerprintMemo {
    fn of(&mut self, key: &FindingKey<'_>) -> [u8; 16] {
        self.key.clear();
        key.write_exact(&mut self.key);
        if let Some(fingerprint) = self.fingerprints.get(&self.key) {
            return *fingerprint;
        }
        if self.fingerprints.len() >= MAX_MEMOIZED_FINGERPRINTS {
            self.fingerprints.clear();
        }
        let fingerprint = key.fingerprint();
        self.fingerprints.insert(self.key.clone(), fingerprint);
        fingerprint
    }
}

/// Path segments that are ids, not names: numbers, UUIDs, long hex, long mixed tokens.
fn is_id_like(segment: &str) -> bool {
    let len = segment.len();
    let digits = segment.bytes().filter(u8::is_ascii_digit).count();
    let hex = segment.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    len > 0
        && (digits == len
            || (hex && len >= 16)
            || (len >= 20
                && digits > 0
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_is_counted_per_call_and_last_seen_at_its_latest_call() {
        let mut analyzer = SensitiveAnalyzer::new(
            Scanner::builtin(),
            Arc::new(Policy::default()),
            HashKey::from_bytes([7; 32]),
            None,
        )
        .unwrap();
        let mut call = crate::inventory::tests::call("GET", "/users/7", 200);
        for (timestamp, side) in [
            ("2026-11-30T20:00:00Z", MessageSide::Response),
            ("2026-11-30T20:00:01Z", MessageSide::Response),
            ("2026-11-30T20:00:02Z", MessageSide::Request),
        ] {
            call.timestamp = timestamp.into();
            analyzer.label(
                &call,
                "10.0.0.1:80",
                "GET",
                Some("/users/{id}"),
                side,
                "email",
            );
        }
        let mut labels: Vec<_> = analyzer
            .pending_labels
            .iter()
            .map(|(key, (seen, count))| (key.side, seen.as_str(), *count))
            .collect();
        labels.sort_by_key(|label| label.1);
        assert_eq!(
            labels,
            [
                (MessageSide::Response, "2026-11-30T20:00:01Z", 2),
                (MessageSide::Request, "2026-11-30T20:00:02Z", 1),
            ]
        );
    }

    #[test]
    fn a_finding_is_known_by_the_same_fingerprint_before_it_is_built() {
        for role in [Role::Server, Role::Client] {
            let mut call = crate::inventory::tests::call("POST", "/users/7", 200);
            call.role = Some(role);
            call.container_id = Some("c0ffee".into());
            let location = Location {
                side: MessageSide::Response,
                part: "json".into(),
                name: Some("$.users[*].email".into()),
            };
            let mut finding = Finding::about(&call, FINDING_KIND, Severity::Low, "why".into());
            finding.detail_type = Some("email".into());
            finding.endpoint.route = Some("/users/{id}".into());
            finding.evidence.push(Evidence {
                location: location.clone(),
                value: "[REDACTED:email:0]".into(),
            });
            let before = FindingKey::about(&call, "email", Some("/users/{id}"), &location);
            let built = FindingKey::of(&finding).fingerprint();
            assert_eq!(before.fingerprint(), built, "{role:?}");
            let elsewhere = FindingKey::about(&call, "email", Some("/users/{id}/x"), &location);
            assert_ne!(elsewhere.fingerprint(), built);
        }
    }

    #[test]
    fn remembered_fingerprints_are_the_computed_ones_and_keys_are_told_apart_exactly() {
        let location = Location {
            side: MessageSide::Request,
            part: "header".into(),
            name: Some("authorization".into()),
        };
        let other_side = Location {
            side: MessageSide::Response,
            ..location.clone()
        };
        let base = FindingKey {
            kind: FINDING_KIND,
            detail: Some("bearer_token"),
            method: Some("GET"),
            route: Some("/a"),
            server_address: Some("10.0.0.1"),
            server_port: Some(80),
            location: Some(&location),
            caller_address: Some("10.0.0.2"),
            caller_executable: None,
            caller_container: None,
            plaintext: true,
        };
        // Each differs from `base` in a part or two. The third and fourth would have the same
        // bytes if parts were only tagged, not length-prefixed.
        let keys = [
            base,
            FindingKey {
                detail: Some("jwt"),
                ..base
            },
            FindingKey {
                route: Some("/a\u{1}"),
                ..base
            },
            FindingKey {
                method: Some("GET\u{1}/a"),
                route: Some(""),
                ..base
            },
            FindingKey {
                route: None,
                ..base
            },
            FindingKey {
                server_port: None,
                ..base
            },
            FindingKey {
                server_port: Some(8080),
                ..base
            },
            FindingKey {
                location: Some(&other_side),
                ..base
            },
            FindingKey {
                location: None,
                ..base
            },
            FindingKey {
                caller_executable: Some(""),
                ..base
            },
            FindingKey {
                plaintext: false,
                ..base
            },
        ];
        let mut memo = FingerprintMemo::default();
        for _ in 0..2 {
            for key in &keys {
                assert_eq!(memo.of(key), key.fingerprint(), "{key:?}");
            }
        }
        assert_eq!(memo.fingerprints.len(), keys.len());
        let routes: Vec<String> = (0..=MAX_MEMOIZED_FINGERPRINTS)
            .map(|i| format!("/r/{i}"))
            .collect();
        for route in &routes {
            memo.of(&FindingKey {
                route: Some(route),
                ..base
            });
        }
        assert!(memo.fingerprints.len() <= MAX_MEMOIZED_FINGERPRINTS);
    }

    #[test]
    fn locations_fold_array_indices() {
        assert_eq!(
            normalize_location("$.users[12].emails[0]"),
            "$.users[*].emails[*]"
        );
    }

    #[test]
    fn id_like_segments() {
        assert!(is_id_like("12345"));
        assert!(is_id_like("3f2a9c1b-8d4e-4f6a-9b2c-1d3e5f7a9b0c"));
        assert!(!is_id_like("users"));
        assert!(!is_id_like("v1"));
    }
}
