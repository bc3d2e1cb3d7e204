//! What the inventory knows about one endpoint (a method and a route of one service): counts,
//! status codes, latency, content types, parameters, auth schemes, body schemas, callers, and the
//! labels detectors attach.
//!
//! Updated in memory for every call ([`EndpointFacts::record`]), which reports what it saw for
//! the first time so the inventory can emit change events; persisted by `store` as JSON. Every
//! collection is capped (the constants below): one endpoint never grows without bound, whatever
//! its callers send.

use std::{
    borrow::Cow,
    collections::{BTreeMap, BTreeSet},
};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    auth::{self, AuthScheme},
    schema::{BodySchema, ScalarType},
    sketch::LatencySketch,
    template::{self, FastMap, Seg},
};
use crate::{
    conn::Role,
    model::{ApiCall, HeaderMap},
};

/// Query parameters and headers tracked per endpoint; past this, new names are counted, not
/// kept. Real endpoints take a handful; more is a client putting data in names.
pub const MAX_PARAMETERS: usize = 64;

/// Distinct content types per endpoint and side.
pub const MAX_CONTENT_TYPES: usize = 16;

/// Distinct status codes per endpoint (the valid range is 100-599, so this rarely binds).
pub const MAX_STATUS_CODES: usize = 64;

/// Distinct auth schemes per endpoint.
pub const MAX_AUTH_SCHEMES: usize = 16;

/// Caller addresses per endpoint, and process names per address. A public endpoint has callers
/// without number; the first ones show who uses it, a count shows how many more there were.
pub const MAX_CALLERS: usize = 64;
pub const MAX_PROCESSES_PER_CALLER: usize = 8;

/// Labels (sensitive-data kinds and the like) per endpoint.
pub const MAX_LABELS: usize = 32;

/// Longest parameter or header name kept: longer ones are data, not names.
const MAX_NAME_LEN: usize = 128;

/// Request headers that every HTTP client sends or that HTTP itself defines: not parameters of
/// an API, so not recorded (credentials are recorded as auth schemes instead). A `match`, which
/// compiles to a switch on length and a compare or two: this runs for every header of every
/// call.
fn is_standard_header(name: &str) -> bool {
    matches!(
        name,
        "accept"
            | "accept-charset"
            | "accept-encoding"
            | "accept-language"
            | "authorization"
            | "cache-control"
            | "connection"
            | "content-encoding"
            | "content-length"
            | "content-type"
            | "cookie"
            | "expect"
            | "host"
            | "if-match"
            | "if-modified-since"
            | "if-none-match"
            | "keep-alive"
            | "origin"
            | "pragma"
            | "proxy-authorization"
            | "proxy-connection"
            | "range"
            | "referer"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "user-agent"
            | "via"
    ) || name.starts_with("sec-")
}

/// A parameter (query or header) as seen: how often, and the type of its values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamFacts {
    /// Calls that carried it.
    pub seen: u64,
    #[serde(rename = "type")]
    pub ty: ScalarType,
}

/// One response status of an endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseFacts {
    pub count: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub content_types: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<BodySchema>,
}

/// Everything known about an endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointFacts {
    /// Wall-clock nanoseconds since the epoch.
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
    pub calls: u64,
    /// Calls whose request was seen but no response (closed, lost, timed out).
    #[serde(default)]
    pub no_response: u64,
    /// By final status code.
    pub responses: BTreeMap<u16, ResponseFacts>,
    /// Request first byte to response last byte, in milliseconds.
    pub latency: LatencySketch,
    #[serde(default)]
    pub request_content_types: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_body: Option<BodySchema>,
    /// Path parameter value types, in path order.
    #[serde(default)]
    pub path_params: Vec<Option<ScalarType>>,
    /// Hash maps (looked up by name for every call); [`sorted`] orders them for output.
    #[serde(default)]
    pub query: FastMap<String, ParamFacts>,
    #[serde(default)]
    pub headers: FastMap<String, ParamFacts>,
    /// Auth schemes and how many calls used each.
    #[serde(default, with = "pairs")]
    pub auth: BTreeMap<AuthScheme, u64>,
    /// Client addresses, and the processes seen calling from each (when the agent saw the
    /// client side).
    #[serde(default)]
    pub callers: FastMap<String, BTreeSet<String>>,
    /// Calls from callers past [`MAX_CALLERS`].
    #[serde(default)]
    pub other_callers: u64,
    /// Labels attached by other stages (sensitive-data kinds...).
    #[serde(default)]
    pub labels: BTreeSet<String>,
    /// Names, types or schemas left out because a cap was reached.
    #[serde(default)]
    pub capped: u64,
}

/// Something an endpoint saw for the first time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Novelty {
    Parameter {
        location: &'static str,
        name: String,
        ty: ScalarType,
    },
    Field {
        side: &'static str,
        status: Option<u16>,
        path: String,
    },
    StatusCode(u16),
    Caller(String),
}

impl Novelty {
    pub fn describe(&self) -> String {
        match self {
            Novelty::Parameter { location, name, ty } => {
                format!("new {location} parameter `{name}` ({})", ty.describe())
            }
            Novelty::Field {
                side,
                status: Some(status),
                path,
            } => format!("new {side} field `{path}` (status {status})"),
            Novelty::Field { side, path, .. } => format!("new {side} field `{path}`"),
            Novelty::StatusCode(code) => format!("new status code {code}"),
            Novelty::Caller(who) => format!("new caller {who}"),
        }
    }
}

/// What a call carries that the endpoint records, beyond the call itself.
pub struct Observation<'a> {
    pub call: &'a ApiCall,
    /// Wall-clock time of the call.
    pub at_ns: u64,
    /// The call's path and the endpoint's template segments: the raw values at the template's
    /// parameters are typed.
    pub path: &'a str,
    pub segs: &'a [Seg],
    /// The call counts toward traffic (the server side of a call seen from both sides counts
    /// once); when false only its caller is recorded.
    pub counts: bool,
}

impl EndpointFacts {
    /// Fold one call in; report what was new. The endpoint's first call reports nothing (the
    /// endpoint itself is the news).
    pub fn record(&mut self, obs: &Observation<'_>, out: &mut Vec<Novelty>) {
        let call = obs.call;
        let first = self.calls == 0 && self.callers.is_empty();
        let mut novelties = Vec::new();
        self.record_caller(call, &mut novelties);
        if !obs.counts {
            if !first {
                out.extend(novelties);
            }
            return;
        }
        if self.first_seen_ns == 0 || obs.at_ns < self.first_seen_ns {
            self.first_seen_ns = obs.at_ns;
        }
        self.last_seen_ns = self.last_seen_ns.max(obs.at_ns);
        self.calls += 1;
        if let Some(ms) = call.duration_ms {
            self.latency.add(ms);
        }
        self.record_path_params(obs.path, obs.segs);
        self.record_query(call, &mut novelties);
        self.record_headers(call, &mut novelties);
        self.record_auth(call);
        self.record_request_body(call, &mut novelties);
        match call.status_code {
            Some(status) => self.record_response(call, status, &mut novelties),
            None => self.no_response += 1,
        }
        if !first {
            out.extend(novelties);
        }
    }

    fn record_caller(&mut self, call: &ApiCall, novelties: &mut Vec<Novelty>) {
        let address = call.client_address.as_deref().unwrap_or("unknown");
        let process = (call.role == Some(Role::Client))
            .then_some(call.executable_name.as_deref())
            .flatten();
        let full = self.callers.len() >= MAX_CALLERS;
        match self.callers.get_mut(address) {
            Some(processes) => {
                if let Some(process) = process {
                    if !processes.contains(process) && processes.len() < MAX_PROCESSES_PER_CALLER {
                        processes.insert(process.to_string());
                        novelties.push(Novelty::Caller(format!("{process} ({address})")));
                    }
                }
            }
            None if full => self.other_callers += 1,
            None => {
                let mut processes = BTreeSet::new();
                if let Some(process) = process {
                    processes.insert(process.to_string());
                }
                novelties.push(Novelty::Caller(match process {
                    Some(process) => format!("{process} ({address})"),
                    None => address.to_string(),
                }));
                self.callers.insert(address.to_string(), processes);
            }
        }
    }

    fn record_path_params(&mut self, path: &str, segs: &[Seg]) {
        let values = template::segments(path)
            .zip(segs)
            .filter(|(_, seg)| **seg == Seg::Param)
            .map(|(value, _)| value);
        for (i, value) in values.enumerate() {
            if self.path_params.len() <= i {
                self.path_params.resize(i + 1, None);
            }
            let ty = ScalarType::of(value);
            let slot = &mut self.path_params[i];
            *slot = Some(slot.map_or(ty, |t| t.merge(ty)));
        }
    }

    fn record_query(&mut self, call: &ApiCall, novelties: &mut Vec<Novelty>) {
        let Some(query) = &call.query else { return };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = percent_decode(name);
            let value = percent_decode(value);
            record_param(
                &mut self.query,
                &mut self.capped,
                &name,
                &value,
                "query",
                novelties,
            );
        }
    }

    fn record_headers(&mut self, call: &ApiCall, novelties: &mut Vec<Novelty>) {
        for (name, mut values) in call.request_headers.iter() {
            if is_standard_header(name) {
                continue;
            }
            let value = values.next().unwrap_or("");
            record_param(
                &mut self.headers,
                &mut self.capped,
                name,
                value,
                "header",
                novelties,
            );
        }
    }

    fn record_auth(&mut self, call: &ApiCall) {
        if auth::is_anonymous(call) {
            // Most calls of most endpoints: counted without building a scheme list.
            if let Some(count) = self.auth.get_mut(&AuthScheme::None) {
                *count += 1;
                return;
            }
        }
        for scheme in auth::schemes(call) {
            let full = self.auth.len() >= MAX_AUTH_SCHEMES;
            match self.auth.get_mut(&scheme) {
                Some(count) => *count += 1,
                None if full => self.capped += 1,
                None => {
                    self.auth.insert(scheme, 1);
                }
            }
        }
    }

    fn record_request_body(&mut self, call: &ApiCall, novelties: &mut Vec<Novelty>) {
        let content_type = content_type(&call.request_headers);
        if let Some(ct) = &content_type {
            count_capped(
                &mut self.request_content_types,
                ct,
                MAX_CONTENT_TYPES,
                &mut self.capped,
            );
        }
        let body = &call.request_body_bytes;
        if let Some(value) = json_body(content_type.as_deref(), body, &mut self.request_body) {
            let schema = self.request_body.get_or_insert_with(BodySchema::default);
            for path in schema.add(&value) {
                novelties.push(Novelty::Field {
                    side: "request",
                    status: None,
                    path,
                });
            }
        }
    }

    fn record_response(&mut self, call: &ApiCall, status: u16, novelties: &mut Vec<Novelty>) {
        if !self.responses.contains_key(&status) {
            if self.responses.len() >= MAX_STATUS_CODES {
                self.capped += 1;
                return;
            }
            novelties.push(Novelty::StatusCode(status));
        }
        let response = self.responses.entry(status).or_default();
        response.count += 1;
        let content_type = content_type(&call.response_headers);
        if let Some(ct) = &content_type {
            count_capped(
                &mut response.content_types,
                ct,
                MAX_CONTENT_TYPES,
                &mut self.capped,
            );
        }
        let body = &call.response_body_bytes;
        if let Some(value) = json_body(content_type.as_deref(), body, &mut response.body) {
            let schema = response.body.get_or_insert_with(BodySchema::default);
            for path in schema.add(&value) {
                novelties.push(Novelty::Field {
                    side: "response",
                    status: Some(status),
                    path,
                });
            }
        }
    }

    /// Fold in another endpoint's facts (the tree learned that both are one route).
    pub fn merge(&mut self, other: &EndpointFacts) {
        self.first_seen_ns = match (self.first_seen_ns, other.first_seen_ns) {
            (0, b) => b,
            (a, 0) => a,
            (a, b) => a.min(b),
        };
        self.last_seen_ns = self.last_seen_ns.max(other.last_seen_ns);
        self.calls += other.calls;
        self.no_response += other.no_response;
        for (status, theirs) in &other.responses {
            let mine = self.responses.entry(*status).or_default();
            mine.count += theirs.count;
            for (ct, n) in &theirs.content_types {
                *mine.content_types.entry(ct.clone()).or_default() += n;
            }
            merge_schema(&mut mine.body, &theirs.body);
        }
        self.latency.merge(&other.latency);
        for (ct, n) in &other.request_content_types {
            *self.request_content_types.entry(ct.clone()).or_default() += n;
        }
        merge_schema(&mut self.request_body, &other.request_body);
        if self.path_params.len() < other.path_params.len() {
            self.path_params.resize(other.path_params.len(), None);
        }
        for (mine, theirs) in self.path_params.iter_mut().zip(&other.path_params) {
            *mine = match (*mine, *theirs) {
                (Some(a), Some(b)) => Some(a.merge(b)),
                (a, b) => a.or(b),
            };
        }
        for (map, theirs) in [
            (&mut self.query, &other.query),
            (&mut self.headers, &other.headers),
        ] {
            for (name, facts) in theirs {
                let room = map.len() < MAX_PARAMETERS;
                match map.get_mut(name) {
                    Some(mine) => {
                        mine.seen += facts.seen;
                        mine.ty = mine.ty.merge(facts.ty);
                    }
                    None if room => {
                        map.insert(name.clone(), facts.clone());
                    }
                    None => self.capped += 1,
                }
            }
        }
        for (scheme, n) in &other.auth {
            *self.auth.entry(scheme.clone()).or_default() += n;
        }
        for (address, processes) in &other.callers {
            let room = self.callers.len() < MAX_CALLERS;
            match self.callers.get_mut(address) {
                Some(mine) => {
                    for p in processes {
                        if mine.len() < MAX_PROCESSES_PER_CALLER {
                            mine.insert(p.clone());
                        }
                    }
                }
                None if room => {
                    self.callers.insert(address.clone(), processes.clone());
                }
                None => self.other_callers += 1,
            }
        }
        self.other_callers += other.other_callers;
        for label in &other.labels {
            if self.labels.len() < MAX_LABELS {
                self.labels.insert(label.clone());
            }
        }
        self.capped += other.capped;
    }

    /// Attach a label; false if it was already there or the cap is reached.
    pub fn label(&mut self, label: &str) -> bool {
        if self.labels.contains(label) || self.labels.len() >= MAX_LABELS {
            return false;
        }
        self.labels.insert(label.to_string())
    }

    /// Response content types over every status.
    pub fn response_content_types(&self) -> BTreeMap<&str, u64> {
        let mut out = BTreeMap::new();
        for response in self.responses.values() {
            for (ct, n) in &response.content_types {
                *out.entry(ct.as_str()).or_default() += n;
            }
        }
        out
    }
}

/// A map with structured keys, stored as a list of pairs (JSON keys are strings only).
mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        map: &BTreeMap<K, V>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter())
    }

    pub fn deserialize<'de, K, V, D>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(deserializer)?
            .into_iter()
            .collect())
    }
}

fn merge_schema(mine: &mut Option<BodySchema>, theirs: &Option<BodySchema>) {
    if let Some(theirs) = theirs {
        match mine {
            Some(mine) => mine.merge(theirs),
            None => *mine = Some(theirs.clone()),
        }
    }
}

/// A hash map's entries in name order, for output that reads the same every time.
pub fn sorted<V>(map: &FastMap<String, V>) -> Vec<(&str, &V)> {
    let mut entries: Vec<(&str, &V)> = map.iter().map(|(k, v)| (k.as_str(), v)).collect();
    entries.sort_unstable_by_key(|(k, _)| *k);
    entries
}

fn record_param(
    map: &mut FastMap<String, ParamFacts>,
    capped: &mut u64,
    name: &str,
    value: &str,
    location: &'static str,
    novelties: &mut Vec<Novelty>,
) {
    // A name that is data (`?ann@example.com=1`) is no parameter of the API, and the
    // inventory, which is kept and exported, holds no values.
    if crate::sensitive::scan::is_data_name(name) {
        return;
    }
    let ty = ScalarType::of(value);
    let full = map.len() >= MAX_PARAMETERS;
    match map.get_mut(name) {
        Some(facts) => {
            facts.seen += 1;
            facts.ty = facts.ty.merge(ty);
        }
        None if full || name.len() > MAX_NAME_LEN || name.is_empty() => *capped += 1,
        None => {
            novelties.push(Novelty::Parameter {
                location,
                name: name.to_string(),
                ty,
            });
            map.insert(name.to_string(), ParamFacts { seen: 1, ty });
        }
    }
}

fn count_capped(map: &mut BTreeMap<String, u64>, key: &str, cap: usize, capped: &mut u64) {
    let full = map.len() >= cap;
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None if full => *capped += 1,
        None => {
            map.insert(key.to_string(), 1);
        }
    }
}

/// The media type of a message (`application/json`), without parameters, lowercased.
pub fn content_type(headers: &HeaderMap) -> Option<Cow<'_, str>> {
    let value = headers.first("content-type")?;
    let media = value.split(';').next()?.trim();
    if media.is_empty() || media.len() > MAX_NAME_LEN {
        return None;
    }
    Some(if media.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(media.to_ascii_lowercase())
    } else {
        Cow::Borrowed(media)
    })
}

/// Whether an observed media type is covered by a declared one (`*/*`, `application/*`, or
/// the same type).
pub fn content_type_matches(declared: &str, observed: &str) -> bool {
    declared == observed
        || declared == "*/*"
        || declared
            .strip_suffix("/*")
            .is_some_and(|kind| observed.split('/').next() == Some(kind))
}

/// Whether a media type carries JSON (`application/json`, `application/problem+json`...).
pub fn is_json(media_type: &str) -> bool {
    media_type == "application/json" || media_type.ends_with("+json")
}

/// The body as JSON, when it says it is JSON (or has no content type and looks like it), was
/// captured whole, and `schema` wants this sample (see [`BodySchema::wants_sample`]).
fn json_body(
    content_type: Option<&str>,
    body: &[u8],
    schema: &mut Option<BodySchema>,
) -> Option<Value> {
    match content_type {
        Some(ct) if !is_json(ct) => return None,
        None if !body.first().is_some_and(|b| *b == b'{' || *b == b'[') => return None,
        _ => {}
    }
    if body.is_empty()
        || !schema
            .get_or_insert_with(BodySchema::default)
            .wants_sample()
    {
        return None;
    }
    // A body cut at the capture limit does not parse; it is skipped, not half-described.
    serde_json::from_slice(body).ok()
}

/// `%20` and `+` decoded, invalid escapes kept as they are.
pub fn percent_decode(text: &str) -> Cow<'_, str> {
    if !text.contains(['%', '+']) {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::tests::call;

    fn observe(facts: &mut EndpointFacts, call: &ApiCall) -> Vec<String> {
        let mut out = Vec::new();
        facts.record(
            &Observation {
                call,
                at_ns: 1_000,
                path: &call.path.clone().unwrap_or_default(),
                segs: &[Seg::Literal("users".into()), Seg::Param],
                counts: true,
            },
            &mut out,
        );
        out.iter().map(Novelty::describe).collect()
    }

    #[test]
    fn facts_accumulate_and_report_what_is_new() {
        let mut facts = EndpointFacts::default();
        let mut first = call("POST", "/users/42", 201);
        first.query = Some("page=1&q=a%20b".into());
        first
            .request_headers
            .insert("content-type", "application/json; charset=utf-8");
        first.request_body_bytes = br#"{"name":"a"}"#.to_vec();
        assert!(observe(&mut facts, &first).is_empty());

        let mut second = first.clone();
        second.query = Some("page=2&limit=10".into());
        second.request_body_bytes = br#"{"name":"b","email":"b@example.com"}"#.to_vec();
        second.status_code = Some(409);
        second.request_headers.insert("x-request-id", "abc");
        second.client_address = Some("10.0.0.9".into());
        assert_eq!(
            observe(&mut facts, &second),
            vec![
                "new caller 10.0.0.9",
                "new query parameter `limit` (integer)",
                "new header parameter `x-request-id` (string)",
                "new request field `$.email`",
                "new status code 409",
            ]
        );
        assert_eq!(facts.calls, 2);
        assert_eq!(facts.query["page"].seen, 2);
        assert_eq!(facts.query["q"].ty, ScalarType::String);
        assert_eq!(facts.request_content_types["application/json"], 2);
        assert_eq!(facts.path_params, vec![Some(ScalarType::Integer)]);
        assert_eq!(facts.auth[&AuthScheme::None], 2);
        let schema = facts.request_body.as_ref().unwrap().to_json_schema();
        assert_eq!(schema["required"], serde_json::json!(["name"]));
    }

    #[test]
    fn names_that_are_data_are_no_parameters() {
        let mut facts = EndpointFacts::default();
        observe(&mut facts, &call("GET", "/users/42", 200));
        let mut c = call("GET", "/users/42", 200);
        c.query = Some("ann%40example.com=1&2024-05-01=x&page=1".into());
        assert_eq!(
            observe(&mut facts, &c),
            ["new query parameter `page` (integer)"]
        );
        assert_eq!(facts.query.keys().collect::<Vec<_>>(), ["page"]);
    }

    #[test]
    fn caps_hold_against_a_client_that_invents_names() {
        let mut facts = EndpointFacts::default();
        for i in 0..500 {
            let mut c = call("GET", "/x", 200);
            c.query = Some(format!("p{i}=1"));
            c.client_address = Some(format!("10.0.{}.{}", i / 250, i % 250));
            c.request_headers.insert(&format!("x-h{i}"), "v");
            observe(&mut facts, &c);
        }
        assert_eq!(facts.query.len(), MAX_PARAMETERS);
        assert_eq!(facts.headers.len(), MAX_PARAMETERS);
        assert_eq!(facts.callers.len(), MAX_CALLERS);
        assert!(facts.capped > 0 && facts.other_callers > 0);
    }

    #[test]
    fn merging_adds_everything() {
        let mut a = EndpointFacts::default();
        let mut b = EndpointFacts::default();
        observe(&mut a, &call("GET", "/x", 200));
        observe(&mut b, &call("GET", "/x", 404));
        observe(&mut b, &call("GET", "/x", 404));
        a.merge(&b);
        assert_eq!(a.calls, 3);
        assert_eq!(a.responses[&404].count, 2);
        assert_eq!(a.latency.count(), 3);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
