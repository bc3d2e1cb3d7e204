//! Sensitive data through the whole pipeline, from kernel events to the output stream and the
//! state directory: values are recognised and reported as findings with masked evidence, hidden
//! in every serialized call according to the redaction mode, and never shown by `Debug`.

use std::{fs, os::unix::fs::PermissionsExt, path::PathBuf};

mod common;

use common::{call_events_in_pieces, gzip};
use observer::{
    findings::report,
    output::Output,
    pipeline::{Pipeline, PipelineConfig},
    redact::RedactionMode,
    sensitive::{self, keyed::KEY_FILE},
};
use observer_common::ConnId;

const CLIENT: ConnId = ConnId {
    tgid: 300,
    fd: 9,
    generation: 7,
};

const CARD: &str = "4111 1111 1111 1111";
const SSN: &str = "219-45-6789";
const EMAIL: &str = "grace.hopper@example.com";
const AWS_KEY: &str = "AKIAZ7QW3ERT5YUIOP2L";
const PASSWORD: &str = "Tr0ub4dor&3";

fn request() -> String {
    let body = format!(r#"{{"user":"grace","password":"{PASSWORD}","note":"key {AWS_KEY}"}}"#);
    format!(
        "POST /users/{EMAIL}/profile?ssn={SSN} HTTP/1.1\r\nHost: api.test\r\nX-Contact: {EMAIL}\r\nX-Trace: key {AWS_KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn response() -> String {
    let body = format!(r#"{{"email":"{EMAIL}","card":{{"number":"{CARD}"}},"ssn":"{SSN}"}}"#);
    response_with(&body)
}

fn response_with(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The kernel events of one plaintext call made by a client.
fn events() -> Vec<Vec<u8>> {
    call_events(CLIENT, &request(), &response())
}

/// The kernel events of a plaintext call on connection `conn`.
fn call_events(conn: ConnId, request: &str, response: &str) -> Vec<Vec<u8>> {
    call_events_in_pieces(conn, request.as_bytes(), &[(0, response.as_bytes())])
}

fn state_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("observer-sensitive-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

/// A pipeline with the sensitive-data detectors, redacting in `mode`, keeping its findings in
/// `state` if given.
fn redacting_pipeline(mode: RedactionMode, state: Option<&std::path::Path>) -> Pipeline {
    let mut pipeline = Pipeline::new(PipelineConfig {
        redaction: mode,
        ..PipelineConfig::default()
    });
    let detectors = sensitive::detectors(None, state, mode).expect("detectors");
    pipeline.set_redactor(detectors.redactor);
    pipeline.add_analyzer(Box::new(detectors.analyzer));
    pipeline
}

/// Runs the events through a pipeline with the detectors, returning every output serialized.
fn run(mode: RedactionMode, state: Option<&std::path::Path>) -> (Vec<Output>, String) {
    let mut pipeline = redacting_pipeline(mode, state);
    let mut outputs = Vec::new();
    for event in events() {
        pipeline.push_kernel_event(&event);
        outputs.extend(pipeline.take_outputs());
    }
    pipeline.finish();
    outputs.extend(pipeline.take_outputs());
    let text = outputs
        .iter()
        .map(|o| serde_json::to_string(o).expect("json"))
        .collect::<Vec<_>>()
        .join("\n");
    (outputs, text)
}

fn raw_values() -> [&'static str; 6] {
    [CARD, "4111111111111111", SSN, EMAIL, AWS_KEY, PASSWORD]
}

#[test]
fn values_are_reported_with_masked_evidence_and_hidden_in_every_output() {
    let dir = state_dir("default");
    let (outputs, text) = run(RedactionMode::default(), Some(&dir));
    for value in raw_values() {
        assert!(!text.contains(value), "{value} leaked:\n{text}");
    }
    // Cards keep their first six and last four digits; other values become keyed tags.
    assert!(text.contains("411111******1111"), "{text}");
    assert!(text.contains("[REDACTED:email:"), "{text}");
    assert!(text.contains("[REDACTED:ssn:"), "{text}");

    let findings: Vec<_> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::Finding(f) => Some(f),
            _ => None,
        })
        .collect();
    let types: Vec<&str> = findings
        .iter()
        .filter_map(|f| f.detail_type.as_deref())
        .collect();
    for expected in ["card_number", "ssn", "email", "aws_access_key", "password"] {
        assert!(
            types.contains(&expected),
            "no {expected} finding in {types:?}"
        );
    }
    // Built-in rules: a card number in a response, and a secret over plaintext HTTP, are high.
    let card = findings
        .iter()
        .find(|f| f.detail_type.as_deref() == Some("card_number"))
        .expect("card finding");
    assert_eq!(format!("{:?}", card.severity), "High");
    assert!(card.plaintext);
    assert_eq!(
        card.evidence[0].location.name.as_deref(),
        Some("$.card.number")
    );
    // The endpoint names no raw value either: the email in the path is templated.
    assert_eq!(
        card.endpoint.route.as_deref(),
        Some("/users/{email}/profile")
    );

    // The state directory has the findings and the labels; the key is private.
    let stored = report::read(&dir).expect("report");
    assert!(stored
        .sensitive
        .iter()
        .any(|f| f.finding.detail_type.as_deref() == Some("ssn")));
    let endpoint = stored.endpoints.first().expect("labels");
    assert_eq!(endpoint.service, "10.1.2.3:8080");
    assert!(endpoint.returns.contains_key("card_number"), "{endpoint:?}");
    assert!(endpoint.accepts.contains_key("password"), "{endpoint:?}");
    let mode = fs::metadata(dir.join(KEY_FILE))
        .expect("key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let mut table = Vec::new();
    report::write(&dir, false, &mut table).expect("table");
    let mut json = Vec::new();
    report::write(&dir, true, &mut json).expect("json");
    for bytes in [&table, &json] {
        let shown = String::from_utf8_lossy(bytes);
        for value in raw_values() {
            assert!(!shown.contains(value), "{value} in the report:\n{shown}");
        }
    }
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn modes_decide_what_is_hidden() {
    let (_, secrets_only) = run(RedactionMode::Secrets, None);
    assert!(
        secrets_only.contains(EMAIL),
        "personal data is shown in `secrets` mode"
    );
    assert!(!secrets_only.contains(AWS_KEY) && !secrets_only.contains(PASSWORD));

    let (_, dropped) = run(RedactionMode::DropBodies, None);
    assert!(!dropped.contains("preview"), "{dropped}");
    for value in raw_values() {
        assert!(!dropped.contains(value), "{value} leaked:\n{dropped}");
    }

    let (outputs, off) = run(RedactionMode::Off, None);
    assert!(off.contains(CARD) && off.contains(AWS_KEY), "{off}");
    // Findings never hold raw values, whatever the mode.
    for output in outputs {
        if let Output::Finding(finding) = output {
            let shown = serde_json::to_string(&finding).expect("json");
            for value in raw_values() {
                assert!(!shown.contains(value), "{value} in a finding: {shown}");
            }
        }
    }
}

#[test]
fn debug_output_never_shows_values() {
    let (outputs, _) = run(RedactionMode::Off, None);
    let debug = format!("{outputs:?}");
    for value in raw_values() {
        assert!(!debug.contains(value), "{value} in Debug output: {debug}");
    }
    assert!(debug.contains("ApiCall"), "{debug}");
}

#[test]
fn a_policy_allows_expected_data_and_adds_custom_types() {
    let dir = state_dir("policy");
    fs::create_dir_all(&dir).expect("dir");
    let policy = dir.join("policy.yaml");
    fs::write(
        &policy,
        r#"
rules:
  - action: allow
    types: [email, ssn, card_number, password, aws_access_key]
types:
  - name: grace_user
    pattern: 'grace'
    key: user
    severity: high
"#,
    )
    .expect("policy");
    let mut pipeline = Pipeline::new(PipelineConfig::default());
    let detectors =
        sensitive::detectors(Some(&policy), None, RedactionMode::default()).expect("detectors");
    pipeline.set_redactor(detectors.redactor);
    pipeline.add_analyzer(Box::new(detectors.analyzer));
    let mut findings = Vec::new();
    let mut calls = Vec::new();
    for event in events() {
        pipeline.push_kernel_event(&event);
        for output in pipeline.take_outputs() {
            match output {
                Output::Finding(f) => findings.push(f),
                Output::Call(c) => calls.push(c),
                Output::Inventory(_) => {}
            }
        }
    }
    let types: Vec<_> = findings
        .iter()
        .filter_map(|f| f.detail_type.clone())
        .collect();
    assert!(
        !types.iter().any(|t| t == "email" || t == "card_number"),
        "{types:?}"
    );
    assert!(types.iter().any(|t| t == "grace_user"), "{types:?}");
    // Allowed is not shown: redaction does not depend on the policy's rules.
    let body = serde_json::to_string(&calls).expect("json");
    assert!(
        !body.contains(EMAIL) && body.contains("[REDACTED:grace_user:"),
        "{body}"
    );
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn a_repeated_finding_is_reported_once_and_counted_once_per_call() {
    const CALLS: u64 = 3;
    let dir = state_dir("repeats");
    let mut pipeline = Pipeline::new(PipelineConfig::default());
    let detectors =
        sensitive::detectors(None, Some(&dir), RedactionMode::default()).expect("detectors");
    pipeline.set_redactor(detectors.redactor);
    pipeline.add_analyzer(Box::new(detectors.analyzer));
    // Two emails at the same place (array elements): one finding, one sighting per call.
    let body = format!(r#"{{"users":[{{"email":"{EMAIL}"}},{{"email":"ada@example.org"}}]}}"#);
    let mut findings = Vec::new();
    for generation in 0..CALLS {
        let conn = ConnId {
            generation: CLIENT.generation + generation,
            ..CLIENT
        };
        for event in call_events(conn, &request(), &response_with(&body)) {
            pipeline.push_kernel_event(&event);
            findings.extend(pipeline.take_outputs().filter_map(|o| match o {
                Output::Finding(f) => Some(f),
                _ => None,
            }));
        }
    }
    pipeline.finish();
    let mut reported: Vec<String> = findings
        .iter()
        .map(|f| format!("{:?} at {:?}", f.detail_type, f.evidence[0].location))
        .collect();
    reported.sort_unstable();
    let once = {
        let mut once = reported.clone();
        once.dedup();
        once
    };
    assert_eq!(reported, once, "reported again");

    let stored = report::read(&dir).expect("report");
    assert!(!stored.sensitive.is_empty());
    for finding in &stored.sensitive {
        assert_eq!(
            finding.count, CALLS,
            "{:?} at {:?}",
            finding.finding.detail_type, finding.finding.evidence
        );
    }
    let users = stored
        .sensitive
        .iter()
        .find(|f| f.finding.evidence[0].location.name.as_deref() == Some("$.users[*].email"))
        .expect("the emails in the response");
    assert_eq!(users.finding.evidence.len(), 2, "{users:?}");
    // The endpoint's label counts calls, not values: two emails per call count once.
    let endpoint = stored.endpoints.first().expect("labels");
    assert_eq!(endpoint.returns.get("email"), Some(&CALLS), "{endpoint:?}");
    let _ = fs::remove_dir_all(dir);
}

/// Where a corpus sample goes in a call: its text placed as its kind says (a body in the
/// request or the response, a query string, a header), the rest of the call plain.
fn corpus_call(sample: &sensitive::corpus::Sample, in_response: bool) -> (String, String) {
    use sensitive::corpus::SampleKind;
    let request_with = |content_type: &str, body: &str| {
        format!(
            "POST /samples HTTP/1.1\r\nHost: api.test\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let plain_request = "GET /samples HTTP/1.1\r\nHost: api.test\r\n\r\n".to_string();
    let plain_response = response_with("{}");
    let text = sample.text.as_str();
    match &sample.kind {
        SampleKind::Json | SampleKind::Text => {
            let content_type = if sample.kind == SampleKind::Json {
                "application/json"
            } else {
                "text/plain"
            };
            if in_response {
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{text}",
                    text.len()
                );
                (plain_request, response)
            } else {
                (request_with(content_type, text), plain_response)
            }
        }
        SampleKind::Form => (
            request_with("application/x-www-form-urlencoded", text),
            plain_response,
        ),
        SampleKind::Query => (
            format!("GET /samples?{text} HTTP/1.1\r\nHost: api.test\r\n\r\n"),
            plain_response,
        ),
        SampleKind::Header(name) => (
            format!("GET /samples HTTP/1.1\r\nHost: api.test\r\n{name}: {text}\r\n\r\n"),
            plain_response,
        ),
    }
}

/// The issue's promise over every type the scanner knows, in every place the corpus puts one
/// (JSON and form bodies in either direction, free text, query strings, credential headers,
/// cookies), rather than over a handful of values: with the default redaction, no labelled
/// value of the corpus reaches the serialized output, as written or as JSON escapes it; with
/// `secrets`, no secret does.
#[test]
fn no_labelled_value_of_the_corpus_reaches_any_output() {
    hidden_over_the_corpus(RedactionMode::default(), |_| true);
    hidden_over_the_corpus(RedactionMode::Secrets, sensitive::corpus::is_secret);
}

/// A redacting pipeline that is handed one exchange at a time, each on a connection of its own.
struct Exchanges {
    pipeline: Pipeline,
    count: u32,
}

impl Exchanges {
    fn new(mode: RedactionMode) -> Exchanges {
        Exchanges {
            pipeline: redacting_pipeline(mode, None),
            count: 0,
        }
    }

    /// Everything the exchange's call (exactly one) brings out, serialized.
    fn shown(&mut self, request: &str, response: &str) -> String {
        self.shown_in_pieces(request, &[(0, response.as_bytes())])
    }

    /// [`Exchanges::shown`] for a response in pieces (see [`call_events_in_pieces`]).
    fn shown_in_pieces(&mut self, request: &str, response: &[(u64, &[u8])]) -> String {
        self.count += 1;
        let conn = ConnId {
            fd: 100 + self.count,
            ..CLIENT
        };
        for event in call_events_in_pieces(conn, request.as_bytes(), response) {
            self.pipeline.push_kernel_event(&event);
        }
        let outputs: Vec<Output> = self.pipeline.take_outputs().collect();
        let calls = outputs
            .iter()
            .filter(|o| matches!(o, Output::Call(_)))
            .count();
        assert_eq!(calls, 1, "{calls} calls from {request:?} {response:?}");
        outputs
            .iter()
            .map(|o| serde_json::to_string(o).expect("json"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Whether the scanner finds something in `value` as plain text, where no name vouches for it.
fn found_by_shape_alone(value: &str) -> bool {
    let mut found = Vec::new();
    sensitive::scan::Scanner::builtin().scan_source(
        sensitive::fields::Source::Body(Some("text/plain")),
        value,
        0,
        &mut found,
    );
    !found.is_empty()
}

/// Runs every sample of a corpus through a pipeline redacting in `mode`, and checks that no
/// value of a type `hidden` names is in what comes out. Each value the scanner finds on its
/// shape alone is also sent where names go, as a JSON member's key (maps keyed by emails or
/// ids) and as a query parameter's name.
fn hidden_over_the_corpus(mode: RedactionMode, hidden: fn(sensitive::types::DataType) -> bool) {
    use sensitive::{corpus, types::DataType};
    const SAMPLES_PER_TYPE: usize = 40;
    let samples = corpus::generate(0xC0_4B05, SAMPLES_PER_TYPE * DataType::ALL.len());
    let mut exchanges = Exchanges::new(mode);
    let (mut checked, mut as_names) = (0, 0);
    for (index, sample) in samples.iter().enumerate() {
        let (request, response) = corpus_call(sample, index % 2 == 1);
        let mut shown = vec![exchanges.shown(&request, &response)];
        for (_, value) in sample.labels.iter().filter(|(t, _)| hidden(*t)) {
            if !found_by_shape_alone(value) {
                continue;
            }
            let key = serde_json::to_string(value).expect("json");
            let query_safe = value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"@._~:-".contains(&b));
            let request = if query_safe {
                format!("GET /samples?{value}=1 HTTP/1.1\r\nHost: api.test\r\n\r\n")
            } else {
                "GET /samples HTTP/1.1\r\nHost: api.test\r\n\r\n".to_string()
            };
            let response = response_with(&format!(r#"{{"by_key":{{{key}:1}}}}"#));
            shown.push(exchanges.shown(&request, &response));
            as_names += 1;
        }
        let shown = shown.join("\n");
        for (data_type, value) in sample.labels.iter().filter(|(t, _)| hidden(*t)) {
            let escaped = serde_json::to_string(value).expect("json");
            let escaped = &escaped[1..escaped.len() - 1];
            assert!(
                !shown.contains(value.as_str()) && !shown.contains(escaped),
                "{mode:?}: {} {value:?} leaked from sample {index} ({:?}):\n{shown}",
                data_type.name(),
                sample.kind
            );
            checked += 1;
        }
    }
    assert!(checked >= SAMPLES_PER_TYPE, "{mode:?}: {checked} values");
    assert!(
        as_names >= SAMPLES_PER_TYPE,
        "{mode:?}: {as_names} values as names"
    );
}

/// A value the body preview's cut runs through is hidden whole: scanned alone, the preview's
/// part of it (an email up to its domain, a key's first characters) no longer looks like the
/// value. Every value of the corpus the scanner finds on its shape alone is put at the cut, in a
/// JSON string and in plain text, with the cut at several places in it. The same holds where
/// the capture itself stops inside the value: the connection closed before the body's end, or
/// the bytes after the cut were lost in the kernel.
#[test]
fn values_the_preview_cut_runs_through_are_hidden_whole() {
    use sensitive::corpus::is_secret;
    cut_values_over_the_corpus(RedactionMode::Pii, |_| true);
    cut_values_over_the_corpus(RedactionMode::Secrets, is_secret);
}

fn cut_values_over_the_corpus(mode: RedactionMode, hidden: fn(sensitive::types::DataType) -> bool) {
    use observer::model::DEFAULT_BODY_PREVIEW_BYTES;
    use sensitive::{corpus, types::DataType};
    const SAMPLES_PER_TYPE: usize = 8;
    /// Shorter parts of a value may be shown: a card's mask keeps its first six digits.
    const MIN_SHOWN_PART_BYTES: usize = 8;
    let samples = corpus::generate(0xC0_7C07, SAMPLES_PER_TYPE * DataType::ALL.len());
    let mut exchanges = Exchanges::new(mode);
    let mut shown_by = |content_type: &str, body: &str, capture: Capture| {
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let cut = response.len() - body.len() + DEFAULT_BODY_PREVIEW_BYTES;
        let (head, tail) = response.as_bytes().split_at(cut);
        // A hole of half what follows the cut; the rest arrives.
        let lost = tail.len() / 2;
        let pieces: &[(u64, &[u8])] = match capture {
            Capture::Whole => &[(0, response.as_bytes())],
            Capture::ClosedAtCut => &[(0, head)],
            Capture::LostAfterCut => &[(0, head), ((cut + lost) as u64, &tail[lost..])],
        };
        exchanges.shown_in_pieces("GET /samples HTTP/1.1\r\nHost: api.test\r\n\r\n", pieces)
    };
    let mut checked = 0;
    for sample in &samples {
        for (data_type, value) in sample.labels.iter().filter(|(t, _)| hidden(*t)) {
            if value.len() <= MIN_SHOWN_PART_BYTES || !found_by_shape_alone(value) {
                continue;
            }
            let escaped = serde_json::to_string(value).expect("json");
            let in_json = &escaped[1..escaped.len() - 1];
            for (content_type, written, before, after, tail) in [
                (
                    "application/json",
                    in_json,
                    r#"{"pad":""#,
                    r#"","value":""#,
                    r#""}"#,
                ),
                (
                    "text/plain",
                    value.as_str(),
                    "the value is ",
                    " ",
                    " and more text",
                ),
            ] {
                let len = written.len();
                for shown_part in [MIN_SHOWN_PART_BYTES, len / 2, len - 1] {
                    if shown_part < MIN_SHOWN_PART_BYTES || !written.is_char_boundary(shown_part) {
                        continue;
                    }
                    let pad = DEFAULT_BODY_PREVIEW_BYTES - before.len() - after.len() - shown_part;
                    let body = format!("{before}{}{after}{written}{tail}", "p".repeat(pad));
                    assert_eq!(
                        body.find(written),
                        Some(DEFAULT_BODY_PREVIEW_BYTES - shown_part)
                    );
                    let part = &written[..shown_part];
                    let part_escaped = serde_json::to_string(part).expect("json");
                    let part_escaped = &part_escaped[1..part_escaped.len() - 1];
                    let control_body = body.replace(written, &"q".repeat(len));
                    for capture in [Capture::Whole, Capture::ClosedAtCut, Capture::LostAfterCut] {
                        let control = shown_by(content_type, &control_body, capture);
                        let shown = shown_by(content_type, &body, capture);
                        for part in [part, part_escaped] {
                            assert!(
                                control.contains(part) || !shown.contains(part),
                                "{mode:?} {capture:?}: {} {value:?} cut after {part:?} in \
                                 {content_type}:\n{shown}",
                                data_type.name()
                            );
                        }
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= SAMPLES_PER_TYPE * 4, "{mode:?}: {checked} cuts");
}

/// How much of a response the kernel delivered, for [`cut_values_over_the_corpus`].
#[derive(Debug, Clone, Copy)]
enum Capture {
    Whole,
    /// The connection closed at the preview's cut, before the body's end.
    ClosedAtCut,
    /// Bytes right after the preview's cut were lost; the rest of the body arrived.
    LostAfterCut,
}

/// A response whose body is `body` in `coding`, as raw bytes.
fn encoded_response(coding: &str, body: &[u8]) -> Vec<u8> {
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: {coding}\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(body);
    response
}

#[test]
fn a_compressed_body_is_read_as_what_it_carries_and_hidden_so() {
    let json = format!(
        r#"{{"email":"{EMAIL}","card":{{"number":"{CARD}"}},"orders":[{}]}}"#,
        (0..400)
            .map(|i| format!(r#"{{"id":{i},"total":"{}.50"}}"#, i * 3))
            .collect::<Vec<_>>()
            .join(",")
    );
    let compressed = gzip(json.as_bytes());
    let response = encoded_response("gzip", &compressed);
    let mut exchanges = Exchanges::new(RedactionMode::Pii);
    let shown = exchanges.shown_in_pieces(&request(), &[(0, &response)]);
    // The decoded text is shown (and said to be), with its values hidden and found.
    assert!(shown.contains(r#""decoded_from":"gzip""#), "{shown}");
    assert!(
        shown.contains(r#"{\"email\":\"[REDACTED:email:"#),
        "{shown}"
    );
    assert!(
        shown.contains(
            r#""finding.type":"email","finding.severity":"info","owasp.category":"API3:2023""#
        ),
        "{shown}"
    );
    assert!(shown.contains(r#""name":"$.card.number"}"#), "{shown}");
    for raw in raw_values() {
        assert!(!shown.contains(raw), "{raw} in {shown}");
    }
    // The capture stopped inside the compressed stream: its start is read, values in it
    // hidden as in any body, the value it stops inside too.
    let head = response.len() - compressed.len();
    let closed_inside = &response[..head + compressed.len() / 3];
    let shown = exchanges.shown_in_pieces(&request(), &[(0, closed_inside)]);
    assert!(shown.contains(r#""decoded_from":"gzip""#), "{shown}");
    assert!(shown.contains(r#"\"orders\":[{\"id\":0"#), "{shown}");
    for raw in raw_values() {
        assert!(!shown.contains(raw), "{raw} in {shown}");
    }
    // A coding not undone, or bytes not in their coding: no preview, and the call says why.
    for (coding, body) in [
        ("compress", compressed.as_slice()),
        ("gzip", json.as_bytes()),
    ] {
        let shown = exchanges.shown(
            &request(),
            &String::from_utf8_lossy(&encoded_response(coding, body)),
        );
        assert!(
            shown.contains("response_body_not_decoded"),
            "{coding}: {shown}"
        );
        assert!(
            !shown.contains(r#""preview":"{\"email"#),
            "{coding}: {shown}"
        );
        assert!(!shown.contains(EMAIL), "{coding}: {shown}");
    }
}
