//! API calls written as JSON by hand, byte for byte what serde_json writes from `ApiCall`'s
//! `Serialize` (the tests below hold the two equal).
//!
//! A call's line is most of the agent's output work: through serde_json it was a quarter of the
//! agent's instructions per call, most of it escaping byte by byte, keys included. Here keys are
//! literals copied as they are and texts are searched for bytes to escape many at a time. Other
//! outputs (findings, inventory changes) are rarer and keep serde_json.

use std::io;

use serde_json::ser::{CompactFormatter, Formatter};

use crate::{
    model::{ApiCall, BodyView, HeaderMap},
    sensitive::bytes::{bytes_below, bytes_equal_to},
};

/// Appends `call` as one JSON object (no newline) to `out`.
pub fn write_call(call: &ApiCall, out: &mut Vec<u8>) -> io::Result<()> {
    let mut object = Object::open(out);
    object.text("event.name", call.event_name);
    object.text("timestamp", &call.timestamp);
    object.text("observer.status", call.status.as_str());
    match call.role {
        Some(role) => object.text("role", role.as_str()),
        None => object.null("role"),
    }
    object.optional_text("http.request.method", call.method.as_deref());
    object.optional_text("url.path", call.path.as_deref());
    object.optional_text("url.query", call.query.as_deref());
    object.optional_text("http.route", call.route.as_deref());
    if let Some(code) = call.status_code {
        object.unsigned("http.response.status_code", code.into())?;
    }
    if !call.interim_status_codes.is_empty() {
        let out = object.key("http.response.interim_status_codes");
        out.push(b'[');
        for (i, &code) in call.interim_status_codes.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            CompactFormatter.write_u16(out, code)?;
        }
        out.push(b']');
    }
    object.text("network.protocol.name", call.protocol_name);
    object.optional_text("network.protocol.version", call.protocol_version);
    object.text("network.transport", call.transport);
    object.optional_text("server.address", call.server_address.as_deref());
    if let Some(port) = call.server_port {
        object.unsigned("server.port", port.into())?;
    }
    object.optional_text("client.address", call.client_address.as_deref());
    if let Some(port) = call.client_port {
        object.unsigned("client.port", port.into())?;
    }
    object.boolean("tls", call.tls);
    object.optional_text("tls.library", call.tls_library);
    if let Some(ms) = call.duration_ms {
        object.float("duration_ms", ms)?;
    }
    if let Some(ms) = call.latency_ms {
        object.float("latency_ms", ms)?;
    }
    object.unsigned("process.pid", call.pid.into())?;
    object.optional_text("process.executable.name", call.executable_name.as_deref());
    object.optional_text("process.executable.path", call.executable_path.as_deref());
    if !call.command_args.is_empty() {
        object.texts("process.command_args", &call.command_args);
    }
    object.optional_text("container.id", call.container_id.as_deref());
    object.optional_text("k8s.pod.uid", call.pod_uid.as_deref());
    if !call.request_headers.is_empty() {
        object.headers("http.request.header", &call.request_headers);
    }
    if !call.response_headers.is_empty() {
        object.headers("http.response.header", &call.response_headers);
    }
    if let Some(body) = &call.request_body {
        object.body("http.request.body", body)?;
    }
    if let Some(body) = &call.response_body {
        object.body("http.response.body", body)?;
    }
    if !call.incomplete.is_empty() {
        object.texts("observer.incomplete", &call.incomplete);
    }
    object.text("observer.connection", &call.connection);
    object.close();
    Ok(())
}

/// A JSON object being written: each field adds its comma, key and value.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> Object<'a> {
    fn open(out: &'a mut Vec<u8>) -> Object<'a> {
        out.push(b'{');
        Object { out, empty: true }
    }

    fn close(self) {
        self.out.push(b'}');
    }

    /// Writes the next key (a literal of ours, which needs no escaping) and returns the buffer
    /// for its value.
    fn key(&mut self, key: &'static str) -> &mut Vec<u8> {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    fn text(&mut self, key: &'static str, value: &str) {
        push_json_string(self.key(key), value);
    }

    fn optional_text(&mut self, key: &'static str, value: Option<&str>) {
        if let Some(value) = value {
            self.text(key, value);
        }
    }

    fn texts(&mut self, key: &'static str, values: &[impl AsRef<str>]) {
        push_json_strings(self.key(key), values);
    }

    fn null(&mut self, key: &'static str) {
        self.key(key).extend_from_slice(b"null");
    }

    fn boolean(&mut self, key: &'static str, value: bool) {
        let value: &[u8] = if value { b"true" } else { b"false" };
        self.key(key).extend_from_slice(value);
    }

    fn unsigned(&mut self, key: &'static str, value: u64) -> io::Result<()> {
        CompactFormatter.write_u64(self.key(key), value)
    }

    /// Like serde_json: `null` for NaN and infinities, which JSON cannot spell.
    fn float(&mut self, key: &'static str, value: f64) -> io::Result<()> {
        let out = self.key(key);
        if value.is_finite() {
            CompactFormatter.write_f64(out, value)
        } else {
            out.extend_from_slice(b"null");
            Ok(())
        }
    }

    fn headers(&mut self, key: &'static str, headers: &HeaderMap) {
        let out = self.key(key);
        out.push(b'{');
        for (i, (name, values)) in headers.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_json_string(out, name);
            out.push(b':');
            push_json_strings(out, values);
        }
        out.push(b'}');
    }

    fn body(&mut self, key: &'static str, body: &BodyView) -> io::Result<()> {
        let mut object = Object::open(self.key(key));
        object.unsigned("size", body.size)?;
        object.optional_text("preview", body.preview.as_deref());
        object.boolean("truncated", body.truncated);
        object.optional_text("decoded_from", body.decoded_from);
        object.close();
        Ok(())
    }
}

fn push_json_strings(out: &mut Vec<u8>, values: impl IntoIterator<Item = impl AsRef<str>>) {
    out.push(b'[');
    for (i, value) in values.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_json_string(out, value.as_ref());
    }
    out.push(b']');
}

/// Appends `text` to `out` as a JSON string, quotes included, escaped as serde_json escapes:
/// `"` and `\` with a backslash, the usual short forms for control characters that have one,
/// `\u00XX` for the others, everything else as is.
fn push_json_string(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    if bytes.len() <= SHORT_TEXT_BYTES && !short_text_needs_escaping(bytes) {
        push_short_quoted(out, bytes);
        return;
    }
    out.reserve(text.len() + 2);
    out.push(b'"');
    // `bytes[..copied]` is in `out`, escaped; `bytes[copied..at]` has nothing to escape.
    let mut copied = 0;
    let mut at = 0;
    while let Some(block) = bytes[at..].first_chunk::<ESCAPE_BLOCK>() {
        let mask = escape_mask(block);
        if mask != 0 {
            if copied < at {
                out.extend_from_slice(&bytes[copied..at]);
            }
            push_escaped_block(out, block, mask);
            copied = at + ESCAPE_BLOCK;
        }
        at += ESCAPE_BLOCK;
    }
    // Less than a block is left.
    while let Some(offset) = first_to_escape_by_words(&bytes[at..]) {
        let escaped = at + offset;
        out.extend_from_slice(&bytes[copied..escaped]);
        let (escape, len) = escape_of(bytes[escaped]);
        out.extend_from_slice(&escape[..len]);
        at = escaped + 1;
        copied = at;
    }
    out.extend_from_slice(&bytes[copied..]);
    out.push(b'"');
}

/// Appends a block with bytes to escape (one bit of `mask` for each), escaped, in one append.
/// A JSON body preview has a quote every few bytes: appending the runs between escapes and each
/// escape on their own cost a call into `memcpy` for each run. Here every run is one copy of a
/// block's size, cut to the run's length by where the next write starts.
fn push_escaped_block(out: &mut Vec<u8>, block: &[u8; ESCAPE_BLOCK], mut mask: u32) {
    // The block then a block of padding, so that a block's size from any offset is there.
    let mut padded = [0u8; 2 * ESCAPE_BLOCK];
    padded[..ESCAPE_BLOCK].copy_from_slice(block);
    // Every byte escaped at its longest, then room for a last whole-block copy.
    let mut escaped = [0u8; ESCAPE_BLOCK * MAX_ESCAPE_BYTES + ESCAPE_BLOCK];
    let mut len = 0;
    let mut from = 0;
    while mask != 0 {
        let at = mask.trailing_zeros() as usize;
        mask &= mask - 1;
        escaped[len..len + ESCAPE_BLOCK].copy_from_slice(&padded[from..from + ESCAPE_BLOCK]);
        len += at - from;
        let (escape, escape_len) = escape_of(block[at]);
        escaped[len..len + MAX_ESCAPE_BYTES].copy_from_slice(&escape);
        len += escape_len;
        from = at + 1;
    }
    escaped[len..len + ESCAPE_BLOCK].copy_from_slice(&padded[from..from + ESCAPE_BLOCK]);
    len += ESCAPE_BLOCK - from;
    out.extend_from_slice(&escaped[..len]);
}

/// The longest escape, `\u00XX`.
const MAX_ESCAPE_BYTES: usize = 6;

/// For each byte, what follows the backslash of its escape: its short form, `u` for one
/// without, 0 for a byte written as is.
const ESCAPES: [u8; 256] = {
    let mut escapes = [0u8; 256];
    let mut byte = 0;
    while byte < 0x20 {
        escapes[byte] = b'u';
        byte += 1;
    }
    escapes[b'"' as usize] = b'"';
    escapes[b'\\' as usize] = b'\\';
    escapes[b'\n' as usize] = b'n';
    escapes[b'\r' as usize] = b'r';
    escapes[b'\t' as usize] = b't';
    escapes[0x08] = b'b';
    escapes[0x0c] = b'f';
    escapes
};

/// The escape of a byte JSON needs escaped, and its length.
fn escape_of(byte: u8) -> ([u8; MAX_ESCAPE_BYTES], usize) {
    const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";
    match ESCAPES[usize::from(byte)] {
        b'u' => (
            [
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX_DIGITS[usize::from(byte >> 4)],
                HEX_DIGITS[usize::from(byte & 0xf)],
            ],
            MAX_ESCAPE_BYTES,
        ),
        short => ([b'\\', short, 0, 0, 0, 0], 2),
    }
}

/// Texts up to this long with nothing to escape are written by [`push_short_quoted`]: header
/// names and values, methods, addresses and most keys' values are this short.
const SHORT_TEXT_BYTES: usize = 16;

/// `"text"` for a text of up to [`SHORT_TEXT_BYTES`] with nothing to escape, built in a
/// fixed-size block with overlapping fixed-size copies, appended whole and cut to length: a
/// copy of a length known only at run time is a call into `memcpy`, which cost more than the
/// copy itself for a text this short, and each push checked capacity once more.
fn push_short_quoted(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = bytes.len();
    let mut block = [b'"'; SHORT_TEXT_BYTES + 2];
    if let (Some(head), Some(tail)) = (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
        block[1..9].copy_from_slice(head);
        block[len - 7..=len].copy_from_slice(tail);
    } else if let (Some(head), Some(tail)) = (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        block[1..5].copy_from_slice(head);
        block[len - 3..=len].copy_from_slice(tail);
    } else if let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) {
        // One to three bytes: the first, middle and last are all of them (a loop over them
        // compiled to a call into `memcpy`).
        block[1] = first;
        block[1 + len / 2] = bytes[len / 2];
        block[len] = last;
    }
    block[len + 1] = b'"';
    let start = out.len();
    out.extend_from_slice(&block);
    out.truncate(start + len + 2);
}

// `escape_mask(block)`: one bit for each byte of a block of `ESCAPE_BLOCK` JSON needs escaped (a
// control character, `"` or `\`), the first byte's lowest: sixteen bytes at a time where SSE2
// is sure to be there, eight elsewhere.
#[cfg(target_arch = "x86_64")]
use sse2::{escape_mask, BLOCK as ESCAPE_BLOCK};
#[cfg(not(target_arch = "x86_64"))]
use words::{escape_mask, BLOCK as ESCAPE_BLOCK};

/// The high bit of each byte of `word` JSON needs escaped (a control character, `"` or `\`),
/// exact up to the lowest one (a borrow only flags bytes above a true match): nonzero exactly
/// when there is one, and its lowest bit marks the first.
fn escape_flags(word: u64) -> u64 {
    bytes_below(word, 0x20) | bytes_equal_to(word, b'"') | bytes_equal_to(word, b'\\')
}

fn needs_escaping(byte: u8) -> bool {
    ESCAPES[usize::from(byte)] != 0
}

/// Whether a text of up to [`SHORT_TEXT_BYTES`] has a byte to escape, read as two overlapping
/// words (four-byte halves below eight bytes) rather than byte by byte, which had been the
/// most of writing the many texts shorter than a word.
fn short_text_needs_escaping(bytes: &[u8]) -> bool {
    let words = if let (Some(head), Some(tail)) = (bytes.first_chunk::<8>(), bytes.last_chunk()) {
        [u64::from_le_bytes(*head), u64::from_le_bytes(*tail)]
    } else if let (Some(head), Some(tail)) = (bytes.first_chunk::<4>(), bytes.last_chunk()) {
        let word =
            u64::from(u32::from_le_bytes(*head)) | u64::from(u32::from_le_bytes(*tail)) << 32;
        [word, word]
    } else {
        return bytes.iter().any(|&byte| needs_escaping(byte));
    };
    (escape_flags(words[0]) | escape_flags(words[1])) != 0
}

/// Where the first byte JSON needs escaped is, eight bytes at a time in a `u64`: the search
/// in what is left of a text after its last whole block.
fn first_to_escape_by_words(bytes: &[u8]) -> Option<usize> {
    let first_in_word = |at: usize| {
        let word = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or_default());
        let found = escape_flags(word);
        (found != 0).then(|| at + (found.trailing_zeros() / 8) as usize)
    };
    if bytes.len() < 8 {
        return bytes.iter().position(|&byte| needs_escaping(byte));
    }
    let mut at = 0;
    while at + 8 <= bytes.len() {
        if let Some(found) = first_in_word(at) {
            return Some(found);
        }
        at += 8;
    }
    // The tail as one last word, overlapping bytes already found clean: most texts (header
    // names and values) are short, and a byte-at-a-time tail was most of their cost.
    if at < bytes.len() {
        return first_in_word(bytes.len() - 8);
    }
    None
}

/// The escape search a word at a time, for architectures without a vector unit this code uses.
#[cfg(not(target_arch = "x86_64"))]
mod words {
    pub(super) const BLOCK: usize = 8;

    pub(super) fn escape_mask(block: &[u8; BLOCK]) -> u32 {
        if super::escape_flags(u64::from_le_bytes(*block)) == 0 {
            return 0;
        }
        // The flags are exact only up to the first byte to escape.
        block.iter().enumerate().fold(0, |mask, (i, &byte)| {
            mask | u32::from(super::needs_escaping(byte)) << i
        })
    }
}

/// The escape search sixteen bytes at a time with SSE2, which every x86-64 CPU has: about half
/// the instructions per byte of the word-at-a-time search.
#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };

    /// Bytes one step looks at: one SSE2 register.
    pub(super) const BLOCK: usize = 16;

    pub(super) fn escape_mask(block: &[u8; BLOCK]) -> u32 {
        // SAFETY: SSE2 is part of the x86-64 baseline, so every CPU this code runs on has it.
        unsafe { mask_of(block) }
    }

    #[target_feature(enable = "sse2")]
    fn mask_of(block: &[u8; BLOCK]) -> u32 {
        // SAFETY: `block` is 16 readable bytes, and an unaligned load may read them from any
        // address.
        let bytes = unsafe { _mm_loadu_si128(block.as_ptr().cast()) };
        // A byte is a control character when it is its own minimum with 0x1f.
        let controls = _mm_cmpeq_epi8(_mm_min_epu8(bytes, _mm_set1_epi8(0x1f)), bytes);
        let quotes = _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'"' as i8));
        let backslashes = _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'\\' as i8));
        // One bit per byte: the sign bits of sixteen bytes, in the low half of an i32.
        _mm_movemask_epi8(_mm_or_si128(controls, _mm_or_si128(quotes, backslashes))) as u32
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        conn::Role,
        model::{call_time, CallStatus},
    };

    /// A call with every field set, texts that need escaping included. A struct literal, so a
    /// new field cannot be added to `ApiCall` without being set (and so checked) here.
    fn full_call() -> ApiCall {
        let headers = |name: &str| {
            HeaderMap::from_iter([
                (name, "a\"b"),
                (name, "c\\d"),
                ("x-ünïcode", "\u{1}\u{7f}\u{2028}é"),
            ])
        };
        // 2026-11-29T01:54:40.411433Z
        let (timestamp, realtime_ns) = call_time(1_795_917_280_411_433_000);
        ApiCall {
            event_name: "api.call",
            timestamp,
            status: CallStatus::NoResponse,
            role: Some(Role::Client),
            method: Some("GET".into()),
            path: Some("/api/\"users\"/42".into()),
            query: Some("q=a\tb&x=\u{0}".into()),
            route: Some("/api/users/{id}".into()),
            status_code: Some(503),
            interim_status_codes: vec![100, 103],
            protocol_name: "http",
            protocol_version: Some("1.1"),
            transport: "tcp",
            server_address: Some("10.0.0.1".into()),
            server_port: Some(8080),
            client_address: Some("::1".into()),
            client_port: Some(40000),
            tls: true,
            tls_library: Some("openssl"),
            duration_ms: Some(0.149),
            latency_ms: Some(1e21),
            pid: 4_000_000_000,
            executable_name: Some("nginx".into()),
            executable_path: Some("/usr/sbin/nginx".into()),
            command_args: Arc::from(vec!["nginx: worker\nprocess".to_string(), String::new()]),
            container_id: Some("0123abcd".into()),
            pod_uid: Some("pod-uid".into()),
            request_headers: headers("authorization"),
            response_headers: headers("set-cookie"),
            request_body: Some(BodyView {
                size: 17,
                preview: Some("{\"k\":\"v\\n\"}\r\n".into()),
                truncated: true,
                decoded_from: Some("gzip"),
                not_decoded: None,
                capture_ends_early: false,
            }),
            response_body: Some(BodyView {
                size: 0,
                preview: None,
                truncated: false,
                decoded_from: None,
                not_decoded: None,
                capture_ends_early: false,
            }),
            incomplete: vec!["request_gap", "response_cut"],
            connection: "9167:5:27469790762620".into(),
            start_ns: 1,
            realtime_ns,
            request_body_bytes: b"not written".to_vec(),
            response_body_bytes: b"not written".to_vec(),
        }
    }

    fn assert_written_as_serde_json_writes_it(call: &ApiCall) {
        let mut ours = Vec::new();
        write_call(call, &mut ours).unwrap();
        let theirs = serde_json::to_vec(call).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs)
        );
    }

    #[test]
    fn a_call_with_every_field_is_written_as_serde_json_writes_it() {
        assert_written_as_serde_json_writes_it(&full_call());
    }

    #[test]
    fn each_field_left_out_or_emptied_is_written_as_serde_json_writes_it() {
        let changes: Vec<fn(&mut ApiCall)> = vec![
            |c| c.role = None,
            |c| c.role = Some(Role::Server),
            |c| c.status = CallStatus::Complete,
            |c| c.method = None,
            |c| c.path = None,
            |c| c.query = None,
            |c| c.route = None,
            |c| c.status_code = None,
            |c| c.interim_status_codes.clear(),
            |c| c.interim_status_codes = vec![101],
            |c| c.protocol_version = None,
            |c| c.server_address = None,
            |c| c.server_port = None,
            |c| c.client_address = None,
            |c| c.client_port = None,
            |c| c.tls = false,
            |c| c.tls_library = None,
            |c| c.duration_ms = None,
            |c| c.latency_ms = None,
            |c| c.executable_name = None,
            |c| c.executable_path = None,
            |c| c.command_args = Arc::from(Vec::<String>::new()),
            |c| c.container_id = None,
            |c| c.pod_uid = None,
            |c| c.request_headers = HeaderMap::default(),
            |c| c.response_headers = HeaderMap::default(),
            |c| c.request_body = None,
            |c| c.response_body = None,
            |c| c.incomplete.clear(),
        ];
        for change in changes {
            let mut call = full_call();
            change(&mut call);
            assert_written_as_serde_json_writes_it(&call);
        }
    }

    #[test]
    fn durations_are_written_as_serde_json_writes_them() {
        for ms in [
            0.0,
            -0.0,
            0.1,
            1e-7,
            123_456.789,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            let mut call = full_call();
            call.duration_ms = Some(ms);
            assert_written_as_serde_json_writes_it(&call);
        }
    }

    fn assert_escaped_as_serde_json_escapes(text: &str) {
        let mut ours = Vec::new();
        push_json_string(&mut ours, text);
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            serde_json::to_string(text).unwrap(),
            "{text:?}"
        );
    }

    #[test]
    fn every_ascii_byte_is_escaped_as_serde_json_escapes_it_at_every_offset() {
        // Offsets across three 16-byte blocks and texts that end anywhere after the byte, so
        // that it falls in a full block, in the tail after the last one (read a word at a
        // time), and in texts too short for a block.
        for byte in 0u8..0x80 {
            for offset in 0..48 {
                for after in [0, 1, 4, 15, 16, 17] {
                    let mut text = "a".repeat(offset);
                    text.push(char::from(byte));
                    text.push_str(&"t".repeat(after));
                    assert_escaped_as_serde_json_escapes(&text);
                }
            }
        }
    }

    #[test]
    fn short_texts_are_written_whole_at_every_length() {
        // Distinct bytes, so that a piece copied to the wrong place or left out shows.
        for len in 0..=SHORT_TEXT_BYTES + 1 {
            let text: String = ('a'..).take(len).collect();
            assert_escaped_as_serde_json_escapes(&text);
            let mut out = b"[".to_vec();
            push_json_string(&mut out, &text);
            assert_eq!(out, format!("[\"{text}\"").into_bytes());
        }
    }

    /// Texts of every length up to 64 from a small xorshift, mixing ASCII and multi-byte
    /// characters with escapes, which are rare in most of them so that clean blocks and tails
    /// come before and between the escapes.
    fn pseudo_random_texts() -> impl Iterator<Item = String> {
        let clean = ['a', 'é', '\u{1F600}', ' ', '\u{7f}', '~'];
        let escaped = ['"', '\\', '\n', '\u{1}', '\u{1f}'];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let pick = |from: &[char], random: u64| from[(random % from.len() as u64) as usize];
        (0..4_000u64).map(move |round| {
            let length = round % 65;
            // One escape in every 2, 4, 8 ... 64 characters, by round.
            let escape_odds = 2 << (round / 65 % 6);
            (0..length)
                .map(|_| {
                    let from = if next() % escape_odds == 0 {
                        &escaped[..]
                    } else {
                        &clean[..]
                    };
                    pick(from, next())
                })
                .collect()
        })
    }

    #[test]
    fn pseudo_random_texts_are_escaped_as_serde_json_escapes_them() {
        for text in pseudo_random_texts() {
            assert_escaped_as_serde_json_escapes(&text);
        }
    }

    /// JSON documents as body previews carry them: a quote every few bytes, runs of every
    /// length between escapes, at every offset from a block's start.
    #[test]
    fn json_documents_are_escaped_as_serde_json_escapes_them() {
        let mut document = String::from("{");
        for i in 0..40 {
            let key = "k".repeat(i % 19);
            let value = "v\\".repeat(i % 7) + &"w".repeat(i % 23);
            document.push_str(&format!("\"{key}\":\"{value}\",\"n{i}\":{i},\n"));
        }
        for start in 0..2 * ESCAPE_BLOCK {
            assert_escaped_as_serde_json_escapes(&document[start..]);
        }
    }

    #[test]
    fn short_texts_need_escaping_exactly_when_a_byte_does() {
        for text in pseudo_random_texts() {
            let bytes = text.as_bytes();
            if bytes.len() <= SHORT_TEXT_BYTES {
                let expected = bytes.iter().any(|&b| needs_escaping(b));
                assert_eq!(short_text_needs_escaping(bytes), expected, "{text:?}");
            }
        }
    }

    /// The word-at-a-time search is what other architectures use; on x86-64 it only sees texts
    /// shorter than a block, so it is held to a plain search here at every length.
    #[test]
    fn the_word_at_a_time_search_finds_the_first_byte_to_escape() {
        for text in pseudo_random_texts() {
            let bytes = text.as_bytes();
            let expected = bytes
                .iter()
                .position(|&b| b < 0x20 || b == b'"' || b == b'\\');
            assert_eq!(first_to_escape_by_words(bytes), expected, "{text:?}");
        }
    }
}
