//! Values as the application will finally read them, and in the one form signatures match.
//!
//! `sensitive::fields` has already cut a request into named fields and undone the first layer
//! of encoding (percent-encoding of query and form values, JSON string escapes). Attackers add
//! more layers precisely because filters stop at one: `%252e%252e%252f` is `../` after two
//! rounds, `\u003cscript` is `<script` to a JavaScript or JSON consumer, `%c0%ae` is `.` to a
//! lenient UTF-8 decoder, `UNION/**/SELECT` is `UNION SELECT` to MySQL. [`decode`] peels those
//! layers (at most [`MAX_DECODE_ROUNDS`]); [`normalize`] lowercases and blanks comments and NUL
//! bytes *without moving any byte*, so a match in the normalized text points at the same bytes
//! of the decoded one, which is what evidence shows.

use std::borrow::Cow;

use crate::sensitive::json;

/// Percent-decoding rounds after the first: three layers of encoding is already more than any
/// client sends by accident, and each round is a copy.
pub const MAX_DECODE_ROUNDS: usize = 3;

/// Longest value decoded and matched: request bodies are captured up to 16 KiB, and a single
/// field longer than this is data (an upload, a document), not a parameter an injection hides
/// in at its start.
pub const MAX_VALUE_BYTES: usize = 16 * 1024;

/// `text` with every further layer of encoding removed: percent-encoding (including IIS's
/// `%uXXXX` and overlong UTF-8 for `.`, `/` and `\`), and `\uXXXX` / `\xXX` escapes.
pub fn decode(text: &str) -> Cow<'_, str> {
    let mut current = Cow::Borrowed(text);
    for _ in 0..MAX_DECODE_ROUNDS {
        match percent_round(&current) {
            Some(next) => current = Cow::Owned(next),
            None => break,
        }
    }
    match unescape_backslashes(&current) {
        Some(unescaped) => Cow::Owned(unescaped),
        None => current,
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    (byte as char)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// One round of percent-decoding; `None` when there is nothing to decode. `+` is left alone:
/// the first round (in `fields`) already turned form `+` into spaces, and a `+` that survived
/// it was sent as `%2B`.
fn percent_round(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let escape_at = |i: usize| {
        bytes.get(i + 1).copied().and_then(hex_value).is_some()
            && bytes.get(i + 2).copied().and_then(hex_value).is_some()
    };
    let unicode_at = |i: usize| {
        matches!(bytes.get(i + 1), Some(b'u' | b'U'))
            && (2..6).all(|k| bytes.get(i + k).copied().and_then(hex_value).is_some())
    };
    if !bytes
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'%' && (escape_at(i) || unicode_at(i)))
    {
        return None;
    }
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && unicode_at(i) {
            let code = bytes[i + 2..i + 6].iter().fold(0u32, |acc, &b| {
                acc * 16 + u32::from(hex_value(b).unwrap_or(0))
            });
            let c = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
            let mut buffer = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            i += 6;
        } else if bytes[i] == b'%' && escape_at(i) {
            let high = hex_value(bytes[i + 1]).unwrap_or(0);
            let low = hex_value(bytes[i + 2]).unwrap_or(0);
            out.push(high * 16 + low);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    fold_overlong(&mut out);
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Overlong two-byte UTF-8 for the characters traversal needs (`C0 AE` is `.`, `C0 AF` is `/`,
/// `C1 9C` is `\`): invalid, but some decoders accept them, which is why attackers send them.
fn fold_overlong(bytes: &mut Vec<u8>) {
    if !bytes.iter().any(|&b| b == 0xC0 || b == 0xC1) {
        return;
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1)) {
            (0xC0, Some(0xAE)) => out.push(b'.'),
            (0xC0, Some(0xAF)) => out.push(b'/'),
            (0xC1, Some(0x9C)) => out.push(b'\\'),
            (byte, _) => {
                out.push(byte);
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    *bytes = out;
}

/// `\uXXXX` and `\xXX` escapes, as a JSON or JavaScript consumer would read them (a payload
/// escaped inside a query string, or escaped twice in a JSON body). `None` when there are none.
fn unescape_backslashes(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let hex_run = |from: usize, len: usize| {
        (0..len).all(|k| bytes.get(from + k).copied().and_then(hex_value).is_some())
    };
    let escape_len = |i: usize| match bytes.get(i + 1) {
        Some(b'u') if hex_run(i + 2, 4) => Some(6),
        Some(b'x') if hex_run(i + 2, 2) => Some(4),
        _ => None,
    };
    if !bytes
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\\' && escape_len(i).is_some())
    {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if let Some(len) = escape_len(i) {
                let code = bytes[i + 2..i + len].iter().fold(0u32, |acc, &b| {
                    acc * 16 + u32::from(hex_value(b).unwrap_or(0))
                });
                out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
                i += len;
                continue;
            }
        }
        // Copy up to the next backslash at once, keeping UTF-8 sequences whole.
        let next = text[i + 1..].find('\\').map_or(text.len(), |at| i + 1 + at);
        out.push_str(&text[i..next]);
        i = next;
    }
    Some(out)
}

/// Into `out`: `text` lowercased (ASCII), with SQL comments, NUL bytes and other control
/// characters blanked to spaces, byte for byte, so offsets in `out` are offsets in `text`.
/// MySQL's executable comments (`/*!50000UNION*/`) keep their content, which MySQL runs.
pub fn normalize(text: &str, out: &mut String) {
    let mut bytes: Vec<u8> = std::mem::take(out).into_bytes();
    bytes.clear();
    bytes.extend(text.bytes().map(|b| match b {
        0..=8 | 11 | 12 | 14..=31 | 127 => b' ',
        b => b.to_ascii_lowercase(),
    }));
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] != b'/' || bytes[i + 1] != b'*' {
            i += 1;
            continue;
        }
        let close = bytes[i + 2..]
            .windows(2)
            .position(|w| w == b"*/")
            .map(|at| i + 2 + at);
        let end = close.map_or(bytes.len(), |c| c + 2);
        if bytes.get(i + 2) == Some(&b'!') {
            // Blank `/*!` and its version digits, and the closing `*/`; keep the rest.
            let mut j = i + 3;
            while j < end && bytes[j].is_ascii_digit() {
                j += 1;
            }
            bytes[i..j].fill(b' ');
            if let Some(c) = close {
                bytes[c..c + 2].fill(b' ');
            }
        } else {
            // Comments hold whole UTF-8 sequences (they are delimited by ASCII), so blanking
            // them byte by byte leaves valid UTF-8.
            bytes[i..end].fill(b' ');
        }
        i = end;
    }
    *out = String::from_utf8(bytes)
        .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned());
}

/// The first `max` bytes of `text`, cut at a character boundary.
pub fn prefix(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A JSON path as a field name, without array indices and the root: `$.items[3].sku` is
/// `items[].sku`, so every element of an array is one field.
pub fn field_name(path: &str) -> String {
    let path = path
        .strip_prefix("$.")
        .or_else(|| path.strip_prefix('$'))
        .unwrap_or(path);
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push_str("[]");
            }
            ']' if in_index => in_index = false,
            _ if in_index => {}
            c => out.push(c),
        }
    }
    out
}

/// Containers deeper than this stop [`json_fields`]: real request bodies nest a few levels.
pub const MAX_FIELD_DEPTH: usize = 16;

/// Field names of a JSON document, in the form of [`field_name`] (`user.role`,
/// `items[].sku`), whatever their values: `true`, `null`, `{}` and `[]` included, which is
/// what a mass assignment sends (`"isAdmin": true`) and what walkers over scalars never see.
/// Tolerant like the rest: a cut or broken document yields the fields before the break.
pub fn json_fields(text: &str, max: usize, out: &mut Vec<String>) {
    /// An open container: whether it is an object, the path length its members attach at,
    /// and the path length to go back to when it closes.
    struct Frame {
        object: bool,
        base: usize,
        restore: usize,
    }
    let bytes = text.as_bytes();
    let mut stack: Vec<Frame> = Vec::new();
    let mut path = String::new();
    let mut i = 0;
    while i < bytes.len() && out.len() < max {
        match bytes[i] {
            open @ (b'{' | b'[') => {
                if stack.len() >= MAX_FIELD_DEPTH {
                    return;
                }
                let restore = path.len();
                if open == b'[' {
                    path.push_str("[]");
                }
                stack.push(Frame {
                    object: open == b'{',
                    base: path.len(),
                    restore,
                });
            }
            b'}' | b']' => {
                if let Some(frame) = stack.pop() {
                    path.truncate(frame.restore);
                }
            }
            b'"' => {
                let start = i + 1;
                // The scanner's string search, a word at a time: a byte loop here was most of
                // the cost of listing a body's fields.
                let (end, _) = json::string_end(bytes, i);
                i = end;
                let mut next = end + 1;
                while next < bytes.len() && bytes[next].is_ascii_whitespace() {
                    next += 1;
                }
                let Some(frame) = stack.last().filter(|f| f.object) else {
                    i += 1;
                    continue;
                };
                if bytes.get(next) != Some(&b':') {
                    i += 1;
                    continue;
                }
                path.truncate(frame.base);
                if !path.is_empty() {
                    path.push('.');
                }
                let key = text.get(start..end).unwrap_or("");
                let key_at = path.len();
                path.push_str(key);
                // A field listed already had its key judged a name: the elements of an array
                // of objects repeat their keys, and the judgement was a sixth of the listing.
                if !out.contains(&path) {
                    // A key that is data (a map keyed by emails or ids) is written as JSON
                    // paths write it: fields are kept in baselines and shown in findings,
                    // values never.
                    if crate::sensitive::scan::is_data_name(key) {
                        path.truncate(key_at);
                        path.push_str(json::DATA_KEY);
                    }
                    if !out.contains(&path) {
                        out.push(path.clone());
                    }
                }
                i = next;
            }
            _ => {}
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_of_percent_encoding_come_off() {
        assert_eq!(decode("%252e%252e%252fetc%252fpasswd"), "../etc/passwd");
        assert_eq!(decode("%25252e"), ".");
        assert_eq!(decode("%u002e%u002e%u2215"), "..\u{2215}");
        assert_eq!(decode("%c0%ae%c0%ae%c0%af"), "../");
        // Three rounds at most: a fourth layer stays.
        assert_eq!(decode("%2525252e"), "%2e");
    }

    #[test]
    fn backslash_escapes_come_off() {
        assert_eq!(decode(r"\u003cscript\u003e"), "<script>");
        assert_eq!(decode(r"\x3cimg\x3e é\\n"), "<img> é\\\\n");
    }

    #[test]
    fn plain_values_are_not_copied() {
        assert!(matches!(decode("hello world"), Cow::Borrowed(_)));
        assert!(matches!(decode("100%"), Cow::Borrowed(_)));
        assert!(matches!(decode("50% off, 20%z"), Cow::Borrowed(_)));
        assert!(matches!(decode(r"C:\temp\x"), Cow::Borrowed(_)));
    }

    #[test]
    fn normalizing_keeps_offsets() {
        let mut out = String::new();
        let text = "1 UNION/**/SELECT pass/*x*/FROM users\u{0}é";
        normalize(text, &mut out);
        assert_eq!(out.len(), text.len());
        assert_eq!(out, "1 union    select pass     from users é");
        normalize("/*!50000UNION*/ /*!SELECT*/", &mut out);
        assert_eq!(
            out,
            format!("{}union{}select  ", " ".repeat(8), " ".repeat(6))
        );
        normalize("a /* unterminated", &mut out);
        assert_eq!(out, format!("a{}", " ".repeat(16)));
    }

    #[test]
    fn field_names_drop_indices() {
        assert_eq!(field_name("$.items[3].sku"), "items[].sku");
        assert_eq!(field_name("$.role"), "role");
        assert_eq!(field_name("$[0].a"), "[].a");
        assert_eq!(field_name("page"), "page");
    }

    #[test]
    fn json_fields_whatever_their_values() {
        let mut out = Vec::new();
        json_fields(
            r#"{"name":"a","isAdmin":true,"role":null,"perms":{},"tags":[],"user":{"id":1,"roles":["x"]},"items":[{"sku":"a","qty":1},{"sku":"b"}],"q":"x:y"}"#,
            64,
            &mut out,
        );
        assert_eq!(
            out,
            [
                "name",
                "isAdmin",
                "role",
                "perms",
                "tags",
                "user",
                "user.id",
                "user.roles",
                "items",
                "items[].sku",
                "items[].qty",
                "q"
            ]
        );
        out.clear();
        json_fields(r#"[{"a":{"b":{"c":1}}}, {"d": "e\"f"}"#, 64, &mut out);
        assert_eq!(out, ["[].a", "[].a.b", "[].a.b.c", "[].d"]);
        out.clear();
        json_fields(r#"{"cut": "in the mid"#, 64, &mut out);
        assert_eq!(out, ["cut"]);
        out.clear();
        json_fields(&"[".repeat(100), 64, &mut out);
        assert!(out.is_empty());
        // Keys that are data are no field names: a map keyed by emails or ids.
        json_fields(
            r#"{"scores":{"ann@example.com":1,"20240501":{"n":2}},"line1":"x"}"#,
            64,
            &mut out,
        );
        assert_eq!(out, ["scores", "scores.*", "scores.*.n", "line1"]);
        // Repeated in an array's elements, a name and a data key are listed once each.
        out.clear();
        json_fields(
            r#"[{"ann@example.com":1,"id":2},{"bob@example.com":3,"id":4,"*":5}]"#,
            64,
            &mut out,
        );
        assert_eq!(out, ["[].*", "[].id"]);
    }

    #[test]
    fn prefixes_cut_at_characters() {
        assert_eq!(prefix("héllo", 2), "h");
        assert_eq!(prefix("abc", 10), "abc");
    }
}
