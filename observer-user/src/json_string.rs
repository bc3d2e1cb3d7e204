//! Long texts (body previews) written into JSON output a word at a time.
//!
//! serde_json escapes a string byte by byte, and a call's body preview is most of the bytes in
//! its JSON line: that loop was a fifth of the agent's instructions per call on a replayed nginx
//! run. Here the text is escaped eight bytes at a time into a reused buffer, checked as JSON, and
//! handed to serde_json as a raw value, which it copies as is. The bytes written are exactly
//! serde_json's own (tested below against it).

use std::cell::RefCell;

use serde::{ser::Error as _, Serialize, Serializer};
use serde_json::value::RawValue;

thread_local! {
    /// The escaped text being handed over, reused for every long text this thread writes.
    static ESCAPED: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Serializes `text` as a JSON string, for `#[serde(serialize_with)]` on long text fields.
///
/// Only for types written with serde_json (the raw value is serde_json's own; another format
/// would print it as a struct). If the buffer is already in use (a serializer calling back into
/// itself), the text goes through the serializer's own escaping instead.
pub fn serialize_long_text<S: Serializer>(text: &str, serializer: S) -> Result<S::Ok, S::Error> {
    ESCAPED.with(|escaped| {
        let Ok(mut escaped) = escaped.try_borrow_mut() else {
            return serializer.serialize_str(text);
        };
        escaped.clear();
        push_json_string(&mut escaped, text);
        let raw: &RawValue = serde_json::from_str(&escaped).map_err(S::Error::custom)?;
        raw.serialize(serializer)
    })
}

/// `serialize_long_text` for an optional field (`None` is `null`).
pub fn serialize_optional_long_text<S: Serializer>(
    text: &Option<String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match text {
        Some(text) => serialize_long_text(text, serializer),
        None => serializer.serialize_none(),
    }
}

/// Appends `text` to `out` as a JSON string, quotes included, escaped as serde_json escapes:
/// `"` and `\` with a backslash, the usual short forms for control characters that have one,
/// `\u00XX` for the others, everything else as is.
pub fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    let bytes = text.as_bytes();
    let mut copied = 0;
    while let Some(offset) = first_to_escape(&bytes[copied..]) {
        let at = copied + offset;
        // Escaped bytes are ASCII, so `at` is on a character boundary.
        out.push_str(&text[copied..at]);
        push_escape(out, bytes[at]);
        copied = at + 1;
    }
    out.push_str(&text[copied..]);
    out.push('"');
}

/// Where the first byte JSON needs escaped is: a control character, `"` or `\`.
fn first_to_escape(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    const SPACES: u64 = u64::from_le_bytes([0x20; 8]);
    const QUOTES: u64 = u64::from_le_bytes([b'"'; 8]);
    const BACKSLASHES: u64 = u64::from_le_bytes([b'\\'; 8]);
    // The high bit of each byte of `word` below `limit`'s bytes (ASCII limits), exact up to the
    // first one (a borrow only flags bytes above a true match), which is all a search needs.
    let below = |word: u64, limit: u64| word.wrapping_sub(limit) & !word & HIGHS;
    let mut words = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut words {
        let word = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).unwrap_or_default());
        let found =
            below(word, SPACES) | below(word ^ QUOTES, ONES) | below(word ^ BACKSLASHES, ONES);
        if found != 0 {
            return Some(offset + (found.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
        .map(|at| offset + at)
}

fn push_escape(out: &mut String, byte: u8) {
    const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";
    match byte {
        b'"' => out.push_str("\\\""),
        b'\\' => out.push_str("\\\\"),
        b'\n' => out.push_str("\\n"),
        b'\r' => out.push_str("\\r"),
        b'\t' => out.push_str("\\t"),
        0x08 => out.push_str("\\b"),
        0x0c => out.push_str("\\f"),
        _ => {
            out.push_str("\\u00");
            out.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
            out.push(char::from(HEX_DIGITS[usize::from(byte & 0xf)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Preview<'a> {
        #[serde(serialize_with = "serialize_long_text")]
        fast: &'a str,
        plain: &'a str,
    }

    /// Both ways of writing `text` must give the same JSON.
    fn assert_same_as_serde_json(text: &str) {
        let json = serde_json::to_string(&Preview {
            fast: text,
            plain: text,
        })
        .unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["fast"], text, "{text:?}");
        let plain = serde_json::to_string(text).unwrap();
        assert_eq!(json, format!("{{\"fast\":{plain},\"plain\":{plain}}}"));
    }

    #[test]
    fn every_ascii_byte_is_escaped_as_serde_json_escapes_it_at_every_offset() {
        for byte in 0u8..0x80 {
            for offset in 0..17 {
                let mut text = "a".repeat(offset);
                text.push(char::from(byte));
                text.push_str("tail");
                assert_same_as_serde_json(&text);
            }
        }
    }

    #[test]
    fn unicode_and_mixed_texts_are_written_as_serde_json_writes_them() {
        for text in [
            "",
            "\"",
            "\\\\\"\"",
            "é\u{2028}\u{1F600}\u{7f}\u{0}",
            "{\"user\":\"ana\\n\",\"bytes\":\"\u{1}\u{1f}\"}",
            "plain text longer than one word, with no escapes at all",
            "\u{fffd}\u{fffd}\t\r\n\u{0c}\u{08}",
        ] {
            assert_same_as_serde_json(text);
        }
    }

    #[test]
    fn pseudo_random_texts_are_written_as_serde_json_writes_them() {
        // A small xorshift: many texts of every length up to 40, mixing escapes, ASCII and
        // multi-byte characters.
        let alphabet = [
            'a',
            '"',
            '\\',
            '\n',
            '\u{1}',
            'é',
            '\u{1F600}',
            ' ',
            '\u{7f}',
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2_000 {
            let mut text = String::new();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            for _ in 0..state % 41 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            assert_same_as_serde_json(&text);
        }
    }

    #[test]
    fn a_reentrant_call_falls_back_to_the_serializers_own_escaping() {
        ESCAPED.with(|escaped| {
            let _held = escaped.borrow_mut();
            let json = serde_json::to_string(&Preview {
                fast: "a\"b",
                plain: "",
            })
            .unwrap();
            assert_eq!(json, r#"{"fast":"a\"b","plain":""}"#);
        });
    }
}
