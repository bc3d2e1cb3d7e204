//! The sensitive-data scanner over any text read as any source: it must never panic or hang,
//! and every value it reports must be a non-empty span of the text on character boundaries,
//! because redaction replaces exactly those spans (a span off by one leaks or corrupts).
//!
//! An input is one control byte, which picks the source (and the header name or body content
//! type), and the text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use observer::sensitive::{fields::Source, scan::Scanner};

/// Header names whose values are cut into fields their own way, plus one that is not.
const HEADERS: [&str; 4] = ["authorization", "cookie", "set-cookie", "x-api-key"];

/// Content types the scanner reads structurally, plus a fallback to plain text.
const CONTENT_TYPES: [Option<&str>; 10] = [
    Some("application/json"),
    Some("application/x-www-form-urlencoded"),
    Some("text/plain"),
    Some("application/json; charset=utf-8"),
    Some("text/xml"),
    Some("multipart/form-data; boundary=b"),
    Some("text/csv"),
    Some("text/tab-separated-values"),
    Some("text/event-stream"),
    None,
];

/// A fixed "now" so that JWT expiry is judged the same way on every run of an input.
const NOW_SECS: u64 = 1_800_000_000;

fuzz_target!(|input: &[u8]| {
    let Some((&control, text)) = input.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let pick = usize::from(control >> 3);
    let source = match control % 5 {
        0 => Source::Path,
        1 => Source::Query,
        2 => Source::Header(HEADERS[pick % HEADERS.len()]),
        3 => Source::Body(CONTENT_TYPES[pick % CONTENT_TYPES.len()]),
        _ => Source::Argument,
    };
    let mut found = Vec::new();
    Scanner::builtin().scan_source(source, text, NOW_SECS, &mut found);
    for hit in &found {
        let raw = &hit.raw;
        assert!(
            raw.start < raw.end && raw.end <= text.len(),
            "{source:?}: span {raw:?} outside the text ({} bytes)",
            text.len()
        );
        assert!(
            text.is_char_boundary(raw.start) && text.is_char_boundary(raw.end),
            "{source:?}: span {raw:?} cuts a character"
        );
        assert!(!hit.value.is_empty(), "{source:?}: empty value at {raw:?}");
    }
});
