//! One pass over a request: every value through the signatures, and the facts the behaviour
//! detectors need from it (body fields, credentials tried, page sizes asked for).
//!
//! The request is cut into fields by `sensitive::fields` (the same structure the sensitive-data
//! detectors and redaction use), each field decoded further (`decode`), then scanned
//! (`signatures`). Credential headers are never scanned: tokens are not input the application
//! interprets, and their bytes are random enough to look like anything.

use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};

use super::{
    config::DetectConfig,
    decode,
    kind::Kind,
    report::evidence_source,
    signatures::{Hit, Place, Signatures},
};
use crate::{
    inventory::template::FastHasher,
    model::ApiCall,
    redact::{is_secret_name, unfinished_value_start, Redactor, WINDOW_CONTEXT_BYTES},
    sensitive::{
        fields::{self, Field, Part, Source},
        json,
        scan::is_data_name,
    },
};

/// Bytes of context kept around a match for evidence (before redaction).
const EVIDENCE_CONTEXT: usize = 24;

/// Longest evidence snippet: enough to see the payload's shape, too short to carry a body.
pub const MAX_EVIDENCE_BYTES: usize = 160;

/// Body fields recorded per request: a body with more is a document, not a form.
const MAX_BODY_FIELDS: usize = 256;

/// Headers never scanned: credentials (see the module doc), and framing or negotiation
/// headers whose values the application does not interpret.
const UNSCANNED_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "content-length",
    "content-type",
    "content-encoding",
    "transfer-encoding",
    "host",
    "connection",
    "keep-alive",
    "accept",
    "accept-encoding",
    "accept-language",
    "cache-control",
    "pragma",
    "if-none-match",
    "if-modified-since",
    "if-match",
    "te",
    "expect",
    "upgrade",
    "upgrade-insecure-requests",
    "dnt",
    "priority",
    "traceparent",
    "tracestate",
    "x-request-id",
];

/// Parameters that set how many items a call returns.
const PAGE_SIZE_PARAMETERS: &[&str] = &[
    "limit",
    "page_size",
    "pagesize",
    "page[size]",
    "per_page",
    "perpage",
    "size",
    "count",
    "max",
    "max_results",
    "maxresults",
    "max_items",
    "top",
    "$top",
    "take",
    "first",
    "last",
    "rows",
    "batch_size",
    "batchsize",
];

/// Names of the account a login body tries.
const LOGIN_NAMES: &[&str] = &["username", "user", "login", "email", "user_name", "account"];

/// A signature that matched, where, with a snippet of the decoded value (not yet redacted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHit {
    pub kind: Kind,
    pub rule: &'static str,
    pub part: Part,
    pub name: Option<String>,
    pub snippet: String,
}

/// What one request holds for the detectors.
#[derive(Debug, Default)]
pub struct RequestFacts {
    pub hits: Vec<SignatureHit>,
    /// Field names of the body (`role`, `items[].sku`), for write requests.
    pub body_fields: Vec<String>,
    /// A hash of the account and secret a login body tries, to count distinct ones.
    pub login_attempt: Option<u64>,
    /// Page sizes asked for: parameter name (lowercased) and value.
    pub page_sizes: Vec<(String, f64)>,
}

/// Reads requests; holds what is reused from one to the next.
pub struct Reader {
    pub signatures: Signatures,
    scratch: String,
    hits: Vec<Hit>,
    hasher: std::hash::RandomState,
    /// Lowercased.
    page_parameters: std::collections::HashSet<String, BuildHasherDefault<FastHasher>>,
    ssrf_ignored: Vec<String>,
    scan_headers: bool,
    enabled: [bool; 7],
    /// Keyed hashes (`hasher`) of (header, value) pairs that matched nothing: already
    /// unpredictable, so the set itself can use a fast hasher.
    clean_headers: std::collections::HashSet<u64, BuildHasherDefault<FastHasher>>,
}

/// The signature kinds, in the order of `Reader::enabled`.
const SIGNATURE_KINDS: [Kind; 7] = [
    Kind::SqlInjection,
    Kind::Xss,
    Kind::PathTraversal,
    Kind::CommandInjection,
    Kind::Ssrf,
    Kind::TemplateInjection,
    Kind::JndiInjection,
];

impl Reader {
    pub fn new(signatures: Signatures, config: &DetectConfig) -> Reader {
        let page_parameters = PAGE_SIZE_PARAMETERS
            .iter()
            .map(|p| p.to_string())
            .chain(
                config
                    .cost
                    .page_parameters
                    .iter()
                    .map(|p| p.to_ascii_lowercase()),
            )
            .collect();
        Reader {
            signatures,
            scratch: String::new(),
            hits: Vec::new(),
            hasher: std::hash::RandomState::new(),
            page_parameters,
            ssrf_ignored: config.signatures.ssrf_ignore_parameters.clone(),
            scan_headers: config.signatures.scan_headers,
            enabled: SIGNATURE_KINDS.map(|k| config.is_enabled(k)),
            clean_headers: Default::default(),
        }
    }

    /// What `call`'s request holds for the detectors; evidence is hidden with `redactor`, which
    /// sees the whole value a snippet is cut from.
    pub fn read(&mut self, call: &ApiCall, redactor: Option<&Redactor>) -> RequestFacts {
        let mut facts = RequestFacts::default();
        let scan_signatures = self.enabled.iter().any(|&e| e);
        if scan_signatures {
            if let Some(path) = &call.path {
                let decoded = decode::decode(path);
                let place = (Place::Path, Part::Path, None);
                self.scan(&decoded, place, false, redactor, &mut facts);
            }
        }
        if let Some(query) = &call.query {
            fields::fields(Source::Query, query, &mut |field| {
                let read = FieldRead {
                    body: false,
                    scan: scan_signatures,
                    unfinished: false,
                };
                self.field(field, read, redactor, &mut facts);
            });
        }
        if scan_signatures && self.scan_headers {
            for (name, values) in call.request_headers.iter() {
                if UNSCANNED_HEADERS.contains(&name) || name.starts_with("sec-") {
                    continue;
                }
                for value in values {
                    let seen = self.hasher.hash_one((name, value));
                    if self.clean_headers.contains(&seen) {
                        continue;
                    }
                    // Cookies are read as cookies; other headers naming a secret are
                    // credentials.
                    if name != "cookie" && is_secret_name(name) {
                        continue;
                    }
                    // Clean only if nothing matched: a hit the request had already is a
                    // match all the same.
                    let mut matched = false;
                    fields::fields(Source::Header(name), value, &mut |field| {
                        if field.part == Part::Cookie && field.name.is_some_and(is_secret_name) {
                            return;
                        }
                        let decoded = decode::decode(field.text);
                        let name = field.name.or(Some(name));
                        let place = (Place::Header, field.part, name);
                        matched |= self.scan(&decoded, place, false, redactor, &mut facts);
                    });
                    if !matched {
                        if self.clean_headers.len() >= MAX_CLEAN_HEADERS {
                            self.clean_headers.clear();
                        }
                        self.clean_headers.insert(seen);
                    }
                }
            }
        }
        if !call.request_body_bytes.is_empty() {
            let content_type = call.request_headers.first("content-type");
            if content_type.is_some_and(|c| c.to_ascii_lowercase().starts_with("multipart/")) {
                // Uploads: parts are files as often as fields; not parsed (see the README).
                return facts;
            }
            let write = matches!(call.method.as_deref(), Some("POST" | "PUT" | "PATCH"));
            let text = call.request_body_text();
            // Where the body's unfinished last value starts, if its capture stopped early.
            let unfinished = call
                .request_body
                .as_ref()
                .is_some_and(|b| b.capture_ends_early)
                .then(|| unfinished_value_start(&text));
            if write {
                // Every field, whatever its value: scalars are not all a mass assignment sends.
                decode::json_fields(&text, MAX_BODY_FIELDS, &mut facts.body_fields);
            }
            let mut login = LoginAttempt::default();
            fields::fields(Source::Body(content_type), &text, &mut |field| {
                if write && field.part == Part::Form && facts.body_fields.len() < MAX_BODY_FIELDS {
                    if let Some(name) = field.name {
                        // As JSON keys are: a name that is data is kept as `*`.
                        let name = if is_data_name(name) {
                            json::DATA_KEY
                        } else {
                            name
                        };
                        if !facts.body_fields.iter().any(|f| f == name) {
                            facts.body_fields.push(name.to_string());
                        }
                    }
                }
                login.note(field, &self.hasher);
                let read = FieldRead {
                    body: true,
                    scan: scan_signatures,
                    unfinished: unfinished.is_some_and(|start| field.raw.end > start),
                };
                self.field(field, read, redactor, &mut facts);
            });
            facts.login_attempt = login.finish();
        }
        facts
    }

    /// A query or body field: signatures, and page sizes.
    fn field(
        &mut self,
        field: &Field<'_>,
        read: FieldRead,
        redactor: Option<&Redactor>,
        facts: &mut RequestFacts,
    ) {
        let FieldRead {
            body,
            scan,
            unfinished,
        } = read;
        let key = field.key.unwrap_or("");
        if !key.is_empty() && facts.page_sizes.len() < MAX_PAGE_SIZES_PER_REQUEST {
            let lower: std::borrow::Cow<'_, str> = if key.bytes().any(|b| b.is_ascii_uppercase()) {
                key.to_ascii_lowercase().into()
            } else {
                key.into()
            };
            if self.page_parameters.contains(lower.as_ref()) {
                if let Ok(value) = field.text.trim().parse::<f64>() {
                    if value.is_finite() {
                        facts.page_sizes.push((lower.into_owned(), value));
                    }
                }
            }
        }
        if !scan || (body && field.bare) {
            // Numbers and literals in JSON cannot carry a payload.
            return;
        }
        let decoded = decode::decode(field.text);
        let name = field.name;
        let ssrf_ignored = self.ssrf_ignored.iter().any(|p| p == key);
        let before = facts.hits.len();
        self.scan(
            &decoded,
            (Place::Parameter, field.part, name),
            unfinished,
            redactor,
            facts,
        );
        if ssrf_ignored {
            let mut i = before;
            while i < facts.hits.len() {
                if facts.hits[i].kind == Kind::Ssrf {
                    facts.hits.remove(i);
                } else {
                    i += 1;
                }
            }
        }
    }

    /// Scans `value` and adds its hits to `facts`; returns whether any signature matched it,
    /// whether or not its hits were new to the request.
    fn scan(
        &mut self,
        value: &str,
        (place, part, name): (Place, Part, Option<&str>),
        unfinished: bool,
        redactor: Option<&Redactor>,
        facts: &mut RequestFacts,
    ) -> bool {
        self.hits.clear();
        self.signatures
            .scan(value, place, &mut self.scratch, &mut self.hits);
        let matched = !self.hits.is_empty();
        for hit in self.hits.drain(..) {
            let enabled = SIGNATURE_KINDS
                .iter()
                .position(|&k| k == hit.kind)
                .is_some_and(|i| self.enabled[i]);
            // One hit per kind per request is all a finding needs.
            if !enabled || facts.hits.iter().any(|h| h.kind == hit.kind) {
                continue;
            }
            facts.hits.push(SignatureHit {
                kind: hit.kind,
                rule: hit.rule,
                part,
                name: name.map(str::to_string),
                snippet: snippet(value, hit.span, part, unfinished, redactor),
            });
        }
        matched
    }
}

/// How a query or body field is read.
#[derive(Clone, Copy)]
struct FieldRead {
    /// From the body (whose JSON numbers and literals carry no payload).
    body: bool,
    /// Signatures are scanned.
    scan: bool,
    /// The field runs into the unfinished last value of a body whose capture stopped early.
    unfinished: bool,
}

/// Page-size parameters read per request.
const MAX_PAGE_SIZES_PER_REQUEST: usize = 8;

/// Header values remembered as clean: a client sends the same `User-Agent` (and cookies, and
/// custom headers) on every call, so most header values were scanned before. Cleared whole
/// when full; only clean values are remembered, so a hit is never skipped.
const MAX_CLEAN_HEADERS: usize = 16_384;

/// The account and secret fields of a login body, hashed as they go by.
#[derive(Default)]
struct LoginAttempt {
    hasher: Option<std::hash::DefaultHasher>,
    has_secret: bool,
}

impl LoginAttempt {
    fn note(&mut self, field: &Field<'_>, state: &std::hash::RandomState) {
        let Some(key) = field.key else {
            return;
        };
        // Computed each time: a name's check costs less than a lookup in a map of names that
        // traffic fills, which would have to hash with a keyed hasher.
        let secret = is_secret_name(key);
        let account = LOGIN_NAMES.iter().any(|n| key.eq_ignore_ascii_case(n));
        if !(secret || account) {
            return;
        }
        self.has_secret |= secret;
        let hasher = self.hasher.get_or_insert_with(|| state.build_hasher());
        key.hash(hasher);
        field.text.hash(hasher);
    }

    fn finish(self) -> Option<u64> {
        if !self.has_secret {
            return None;
        }
        self.hasher.map(|h| h.finish())
    }
}

/// The decoded value around a match, cut to characters and to [`MAX_EVIDENCE_BYTES`], with
/// what `redactor` hides hidden. A value the snippet's edge runs through is hidden whole, so
/// the redactor reads [`WINDOW_CONTEXT_BYTES`] past each edge; if `value` is `unfinished` (a
/// capture stopped inside it), its last value is hidden as the body preview's is.
fn snippet(
    value: &str,
    span: std::ops::Range<usize>,
    part: Part,
    unfinished: bool,
    redactor: Option<&Redactor>,
) -> String {
    let start = value.floor_char_boundary(span.start.saturating_sub(EVIDENCE_CONTEXT));
    let wanted = (span.end.saturating_sub(start) + EVIDENCE_CONTEXT).min(MAX_EVIDENCE_BYTES);
    let end = start + decode::prefix(&value[start..], wanted).len();
    let Some(redactor) = redactor else {
        return value[start..end].to_string();
    };
    let context_start = value.floor_char_boundary(start.saturating_sub(WINDOW_CONTEXT_BYTES));
    let context_end = value.ceil_char_boundary(end.saturating_add(WINDOW_CONTEXT_BYTES));
    redactor.redact_window_of_capture(
        evidence_source(part.name()),
        &value[context_start..context_end],
        start - context_start..end - context_start,
        unfinished && context_end == value.len(),
        0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(config: &DetectConfig) -> Reader {
        Reader::new(Signatures::new().unwrap(), config)
    }

    fn request(method: &str, target: &str, headers: &[(&str, &str)], body: &str) -> ApiCall {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut call = crate::inventory::tests::call(method, path, 200);
        call.query = (!query.is_empty()).then(|| query.to_string());
        for (name, value) in headers {
            call.request_headers.append(name, value);
        }
        call.request_body_bytes = body.as_bytes().to_vec();
        call
    }

    #[test]
    fn every_part_of_a_request_is_scanned() {
        let config = DetectConfig::default();
        let mut reader = reader(&config);
        let cases = [
            (
                request("GET", "/items?q=1%27%20or%20%271%27%3D%271", &[], ""),
                Kind::SqlInjection,
                Part::Query,
            ),
            (
                request("GET", "/files/..%2f..%2f..%2fetc%2fpasswd", &[], ""),
                Kind::PathTraversal,
                Part::Path,
            ),
            (
                request(
                    "GET",
                    "/",
                    &[("user-agent", "${jndi:ldap://x.example/a}")],
                    "",
                ),
                Kind::JndiInjection,
                Part::Header,
            ),
            (
                request(
                    "GET",
                    "/",
                    &[("cookie", "theme=<script>alert(1)</script>")],
                    "",
                ),
                Kind::Xss,
                Part::Cookie,
            ),
            (
                request(
                    "POST",
                    "/hooks",
                    &[("content-type", "application/json")],
                    r#"{"url":"http://169.254.169.254/latest/"}"#,
                ),
                Kind::Ssrf,
                Part::Json,
            ),
            (
                request(
                    "POST",
                    "/render",
                    &[("content-type", "application/x-www-form-urlencoded")],
                    "tpl=%7B%7B7*7%7D%7D",
                ),
                Kind::TemplateInjection,
                Part::Form,
            ),
        ];
        for (call, kind, part) in cases {
            let facts = reader.read(&call, None);
            assert!(
                facts.hits.iter().any(|h| h.kind == kind && h.part == part),
                "{kind:?} in {part:?}: {:?}",
                facts.hits
            );
        }
    }

    /// A value whose hit was dropped only because the request had one of that kind already is
    /// not clean: remembered as clean, the same value alone in a later request went unread.
    #[test]
    fn a_value_is_remembered_clean_only_when_nothing_matched_it() {
        let config = DetectConfig::default();
        let mut reader = reader(&config);
        let payload = "1' or '1'='1";
        let target = format!("/items?q={}", payload.replace(' ', "%20"));
        for (target, part) in [(target.as_str(), Part::Query), ("/items", Part::Header)] {
            let call = request("GET", target, &[("x-search", payload)], "");
            let facts = reader.read(&call, None);
            assert!(
                facts
                    .hits
                    .iter()
                    .any(|h| h.kind == Kind::SqlInjection && h.part == part),
                "{target}: {:?}",
                facts.hits
            );
        }
        let body = format!(r#"{{"a":"{payload}","b":"{payload}"}}"#);
        for body in [body.as_str(), &format!(r#"{{"b":"{payload}"}}"#)] {
            let call = request(
                "POST",
                "/items",
                &[("content-type", "application/json")],
                body,
            );
            let facts = reader.read(&call, None);
            assert!(
                facts.hits.iter().any(|h| h.kind == Kind::SqlInjection),
                "{body}: {:?}",
                facts.hits
            );
        }
    }

    #[test]
    fn credentials_and_secret_fields_are_never_evidence() {
        let config = DetectConfig::default();
        let mut reader = reader(&config);
        // A token that happens to contain a payload-like run is not scanned.
        let call = request(
            "GET",
            "/",
            &[
                ("authorization", "Bearer ' or '1'='1"),
                ("x-api-key", "<script>"),
                (
                    "cookie",
                    "theme=dark; session_token=<script>alert(1)</script>",
                ),
            ],
            "",
        );
        assert!(reader.read(&call, None).hits.is_empty());
        // The same payload in a cookie whose name says nothing is read.
        let call = request(
            "GET",
            "/",
            &[("cookie", "theme=<script>alert(1)</script>")],
            "",
        );
        assert_eq!(reader.read(&call, None).hits.len(), 1);
    }

    #[test]
    fn ordinary_requests_have_no_hits_and_give_their_facts() {
        let config = DetectConfig::default();
        let mut reader = reader(&config);
        let call = request(
            "POST",
            "/api/v1/orders?limit=50&q=O%27Reilly+books",
            &[
                ("content-type", "application/json"),
                ("referer", "http://localhost:3000/cart"),
            ],
            r#"{"items":[{"sku":"A-1","qty":2}],"note":"Leave it by the door; don't ring","callback":"https://hooks.example.com/x"}"#,
        );
        let facts = reader.read(&call, None);
        assert_eq!(facts.hits, []);
        assert_eq!(
            facts.body_fields,
            ["items", "items[].sku", "items[].qty", "note", "callback"]
        );
        assert_eq!(facts.page_sizes, [("limit".to_string(), 50.0)]);
        assert_eq!(facts.login_attempt, None);
    }

    #[test]
    fn form_field_names_that_are_data_are_kept_as_a_star() {
        let config = DetectConfig::default();
        let mut reader = reader(&config);
        let call = request(
            "POST",
            "/api/v1/votes",
            &[("content-type", "application/x-www-form-urlencoded")],
            "AKIAQWERTYUIOPASDFGH=1&ann%40example.com=2&choice=yes",
        );
        let facts = reader.read(&call, None);
        assert_eq!(facts.body_fields, ["*", "choice"]);
    }

    #[test]
    fn login_attempts_are_told_apart_without_being_kept() {
        let config = DetectConfig::default();
        let mut reader = reader(&config);
        let login = |password: &str| {
            request(
                "POST",
                "/login",
                &[("content-type", "application/json")],
                &format!(r#"{{"username":"alice","password":"{password}"}}"#),
            )
        };
        let one = reader.read(&login("hunter2"), None).login_attempt;
        let two = reader.read(&login("letmein"), None).login_attempt;
        assert!(one.is_some() && two.is_some() && one != two);
        assert_eq!(reader.read(&login("hunter2"), None).login_attempt, one);
    }

    #[test]
    fn disabled_signatures_and_ignored_parameters_stay_quiet() {
        let config = DetectConfig::parse("detect: { disabled: [sql_injection] }").unwrap();
        let mut reader = reader(&config);
        assert!(reader
            .read(&request("GET", "/?q=1%27%20or%201=1--", &[], ""), None)
            .hits
            .is_empty());
        let config = DetectConfig::default();
        let mut reader = Reader::new(Signatures::new().unwrap(), &config);
        let oauth = request(
            "GET",
            "/authorize?redirect_uri=http://127.0.0.1:8123/cb",
            &[],
            "",
        );
        assert!(reader.read(&oauth, None).hits.is_empty());
    }

    #[test]
    fn a_value_a_snippet_cuts_through_is_hidden_whole() {
        // The snippet ends 24 bytes past the match, inside the key; alone, the cut key is no
        // longer a key.
        let target = "/search?q=%27%20or%20%271%27=%271%20--%20see%20AKIAZ7QW3ERT5YUIOP2L";
        let call = request("GET", target, &[], "");
        let mut reader = reader(&DetectConfig::default());
        let unredacted = &reader.read(&call, None).hits[0].snippet;
        assert!(
            unredacted.contains(" -- see AKIAZ7") && !unredacted.contains("AKIAZ7QW3ERT5YUIOP2L"),
            "{unredacted}"
        );
        let redactor = Redactor::new(crate::redact::RedactionMode::Pii);
        let hidden = &reader.read(&call, Some(&redactor)).hits[0].snippet;
        assert!(
            hidden.starts_with("' or '1'='1 -- see [REDACTED:aws_access_key:")
                && !hidden.contains("AKIA"),
            "{hidden}"
        );
    }

    #[test]
    fn a_snippet_hides_the_unfinished_end_of_a_body_whose_capture_stopped_early() {
        // The capture stopped inside the key, 24 bytes past the match: alone, the cut key is
        // no longer a key, and nothing past it can tell.
        let body = "q=%27%20or%20%271%27=%271%20--%20see%20AKIAZ7QW3ER";
        let form = [("content-type", "application/x-www-form-urlencoded")];
        let mut call = request("POST", "/search", &form, body);
        let mut reader = reader(&DetectConfig::default());
        let redactor = Redactor::new(crate::redact::RedactionMode::Pii);
        let mut snippet = |ends_early: bool| {
            call.request_body = Some(crate::model::BodyView {
                size: body.len() as u64 + 100,
                preview: None,
                truncated: true,
                decoded_from: None,
                not_decoded: None,
                capture_ends_early: ends_early,
            });
            reader.read(&call, Some(&redactor)).hits[0].snippet.clone()
        };
        assert_eq!(snippet(false), "' or '1'='1 -- see AKIAZ7QW3ER");
        // Hidden from the last byte that may end a value: the payload's last quote.
        assert_eq!(snippet(true), "' or '1'='[REDACTED]");
    }

    #[test]
    fn snippets_are_bounded_and_whole_characters() {
        let value = format!("{}é' or '1'='1{}", "x".repeat(300), "y".repeat(300));
        let at = value.find('\'').unwrap();
        let snippet = snippet(&value, at..at + 12, Part::Query, false, None);
        assert!(
            snippet.len() <= MAX_EVIDENCE_BYTES && snippet.contains("' or '1'='1"),
            "{snippet}"
        );
    }
}
