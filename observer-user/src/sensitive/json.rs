//! A tolerant JSON walker: every scalar of a document with its key path, without building a
//! tree.
//!
//! The detectors want each value with the field name that gives it meaning (`$.user.ssn`),
//! over bodies that are often cut short (captures and previews stop at a limit) or not quite
//! JSON. So this walker never fails: it reads what it can, reports every string and number it
//! sees with its path and position, and treats bytes it does not understand as a bare scalar.
//! Each byte is looked at a bounded number of times, so hostile documents cost linear time, and
//! nesting deeper than [`MAX_DEPTH`] stops the walk (the caller scans the rest as raw text).

use std::ops::Range;

use super::bytes::{byte_table, bytes_equal_to, count_marked, le_word, DECIMAL_DIGITS};

/// Containers deeper than this end the walk: real API documents nest a few levels; a deeper one
/// is more likely an attack on parsers than data worth key paths.
pub const MAX_DEPTH: usize = 64;

/// Key paths longer than this are cut (their scalars are still reported): the path only names
/// a location, and a bound keeps one deep document from costing memory per value.
pub const MAX_PATH_BYTES: usize = 256;

/// One scalar of a document.
#[derive(Debug)]
pub struct Scalar<'a> {
    /// `$.user.emails[1]` from [`walk`]; empty from [`walk_unnamed`], where [`Scalar::path_on_demand`]
    /// builds it.
    pub path: &'a str,
    /// The containers the scalar is in, outermost first.
    frames: &'a [Frame<'a>],
    /// The nearest object key above the value (an array's elements take their array's key).
    pub key: Option<&'a str>,
    /// The key above that one, for generic keys (`{"card": {"number": ...}}`).
    pub parent_key: Option<&'a str>,
    /// Where the value lies in the text: inside the quotes for strings.
    pub raw: Range<usize>,
    /// A string (as opposed to a number or another bare token).
    pub is_string: bool,
    /// The string holds backslash escapes: its raw text is not its value.
    pub escaped: bool,
    /// An object's key rather than a value: reported when it may hold data
    /// ([`key_may_hold_data`]), as maps keyed by emails or ids do. Its own key is none, and its
    /// path ends in `*`.
    pub is_key: bool,
}

/// An array element's place among its siblings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArrayPlace {
    /// Where its array opened in the text, which tells one array's elements from another's.
    pub array: usize,
    pub index: usize,
    /// Its array is itself an element of an array (`[["name", "value"], ...]`).
    pub in_array: bool,
}

/// How far a walk got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkEnd {
    /// Bytes read; less than the text's length only when nesting passed [`MAX_DEPTH`].
    pub consumed: usize,
}

impl Scalar<'_> {
    /// Where the object this scalar is a member of opened in the text, which tells members of
    /// one object from those of the next (`[{"name": ...}, {"name": ...}]`); `None` for an
    /// array's element.
    pub fn object_start(&self) -> Option<usize> {
        self.frames
            .last()
            .filter(|frame| frame.object)
            .map(|frame| frame.opened_at)
    }

    /// Where this scalar stands among the elements of the array it is in; `None` for an
    /// object's member or key, and for a scalar outside any container.
    pub fn array_place(&self) -> Option<ArrayPlace> {
        let (array, outer) = self.frames.split_last()?;
        (!array.object && !self.is_key).then(|| ArrayPlace {
            array: array.opened_at,
            index: array.index,
            in_array: outer.last().is_some_and(|frame| !frame.object),
        })
    }

    /// `$.user.emails[1]`, built from the containers: for walks that did not build paths.
    pub fn path_on_demand(&self) -> String {
        self.path_naming(|_| false)
    }

    /// [`Scalar::path_on_demand`] with the keys `is_data` says are data written `*` too (the
    /// scanner's judgement, beyond [`is_data_key`]'s shape).
    pub fn path_naming(&self, is_data: impl Fn(&str) -> bool) -> String {
        if !self.path.is_empty() {
            return self.path.to_string();
        }
        // Sized once: grown from `$` a segment at a time, a path was reallocated several
        // times, which cost more than writing it.
        let last = self.frames.len().saturating_sub(1);
        let bound: usize = self
            .frames
            .iter()
            .enumerate()
            .map(|(index, frame)| segment_bound(frame, self.is_key && index == last))
            .sum();
        let mut path =
            String::with_capacity((1 + bound).min(MAX_PATH_BYTES + MAX_INDEX_SEGMENT_BYTES));
        path.push('$');
        for (index, frame) in self.frames.iter().enumerate() {
            push_segment(
                &mut path,
                Some(frame),
                self.is_key && index == last,
                &is_data,
            );
        }
        path
    }
}

/// The longest array segment: `[`, the digits of the largest index, `]`. One may start just
/// short of [`MAX_PATH_BYTES`].
const MAX_INDEX_SEGMENT_BYTES: usize = 2 + usize::MAX.ilog10() as usize + 1;

/// The most bytes [`push_segment`] writes for `frame`: exact unless the path is cut, or a key is
/// data only by the caller's judgement (`is_data`), which is not asked twice: `*` is never longer
/// than the key it stands for.
fn segment_bound(frame: &Frame<'_>, key_itself: bool) -> usize {
    if frame.object {
        1 + shown_key(frame, key_itself, &|_| false).len()
    } else {
        2 + frame
            .index
            .checked_ilog10()
            .map_or(1, |digits| digits as usize + 1)
    }
}

#[derive(Debug, Clone)]
struct Frame<'a> {
    object: bool,
    /// Path length before this container's own segments.
    path_len: usize,
    /// Next array index, or whether an object expects a key.
    index: usize,
    expect_key: bool,
    /// The key this container is the value of.
    key: Option<&'a str>,
    /// The current member's key, in objects.
    member_key: Option<&'a str>,
    /// Where the container opened in the text: tells one object from the next.
    opened_at: usize,
}

impl<'a> Frame<'a> {
    /// The key of this container's current value (its member's, or for an array's elements
    /// the array's own) and, for a member, the key above it.
    fn names(&self) -> (Option<&'a str>, Option<&'a str>) {
        match self.member_key {
            Some(member) => (Some(member), self.key),
            None => (self.key, None),
        }
    }
}

/// Walks `text`, calling `visit` for every string and number, with its path.
pub fn walk(text: &str, visit: impl FnMut(&Scalar<'_>)) -> WalkEnd {
    walk_inner::<true>(text, visit)
}

/// Like [`walk`] without building each scalar's path (`path` is empty): for callers that name
/// few scalars, which ask [`Scalar::path_on_demand`]. Building every path costs more than
/// scanning most values.
pub fn walk_unnamed(text: &str, visit: impl FnMut(&Scalar<'_>)) -> WalkEnd {
    walk_inner::<false>(text, visit)
}

/// The walk, with each scalar's path built (`PATHS`) or not: a constant, so the walk without
/// paths carries no code for them.
fn walk_inner<'t, const PATHS: bool>(text: &'t str, mut visit: impl FnMut(&Scalar<'_>)) -> WalkEnd {
    let bytes = text.as_bytes();
    let mut path = if PATHS {
        String::from("$")
    } else {
        String::new()
    };
    let mut stack: Vec<Frame<'t>> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        match byte {
            b' ' | b'\t' | b'\r' | b'\n' | b':' => i += 1,
            b'{' | b'[' => {
                if stack.len() >= MAX_DEPTH {
                    return WalkEnd { consumed: i };
                }
                let key = stack.last().and_then(|f| f.names().0);
                let path_len = path.len();
                if PATHS {
                    push_segment(&mut path, stack.last(), false, &|_| false);
                }
                if let Some(parent) = stack.last_mut() {
                    parent.expect_key = false;
                }
                stack.push(Frame {
                    object: byte == b'{',
                    path_len,
                    index: 0,
                    expect_key: byte == b'{',
                    key,
                    member_key: None,
                    opened_at: i,
                });
                i += 1;
            }
            b'}' | b']' => {
                if let Some(frame) = stack.pop() {
                    path.truncate(frame.path_len);
                }
                i += 1;
            }
            b',' => {
                next_value(&mut stack);
                i += 1;
            }
            b'"' => {
                // Strings follow strings (a key its string value, a value the next key after
                // its comma): each next one is read here, as the loop would read it, without a
                // trip through its dispatch.
                loop {
                    let (end, escaped) = string_end(bytes, i);
                    let inner = i + 1..end.min(bytes.len());
                    i = (end + 1).min(bytes.len());
                    let emitted = match stack.last_mut() {
                        Some(frame) if frame.object && frame.expect_key => {
                            // Both ends are at quotes (or the text's end): `get` always succeeds.
                            frame.member_key = text.get(inner.clone());
                            frame.expect_key = false;
                            // The colon and spaces after a key, skipped as the loop would.
                            i += skippable(&bytes[i..]);
                            key_at_may_hold_data(bytes, inner.clone())
                                .then_some(Emitted::Key { escaped })
                        }
                        _ => Some(Emitted::String { escaped }),
                    };
                    if let Some(emitted) = emitted {
                        emit(
                            PATHS.then_some(&mut path),
                            &stack,
                            inner,
                            emitted,
                            &mut visit,
                        );
                        if !matches!(emitted, Emitted::Key { .. }) {
                            i += after_value(&bytes[i..], &mut stack);
                        }
                    }
                    if bytes.get(i) != Some(&b'"') {
                        break;
                    }
                }
            }
            _ => {
                // A bare token: read to its end, noting whether it could be a number. Every
                // byte that ends a token (TOKEN_END) has an arm above, so this one starts on a
                // token byte and always advances: a document is read in one pass.
                let start = i;
                let mut numeric = true;
                while let Some(&byte) = bytes.get(i) {
                    let class = TOKEN_BYTE_CLASS[usize::from(byte)];
                    if class == TOKEN_END {
                        break;
                    }
                    numeric &= class == TOKEN_NUMBER;
                    i += 1;
                }
                let word = !numeric && !matches!(&bytes[start..i], b"true" | b"false" | b"null");
                if word || followed_by_token(&bytes[i..]) {
                    // JSON has no other bare words, nor two bare tokens in a row: this is
                    // text under a JSON content type (an error message, an unquoted value),
                    // read whole up to JSON's next structure byte, so that what it holds is
                    // seen whole (a sentence with an email, a card number's groups).
                    i += text_len(&bytes[i..]);
                    let end = start + bytes[start..i].trim_ascii_end().len();
                    let text = Emitted::String { escaped: false };
                    emit(
                        PATHS.then_some(&mut path),
                        &stack,
                        start..end,
                        text,
                        &mut visit,
                    );
                } else if numeric {
                    emit(
                        PATHS.then_some(&mut path),
                        &stack,
                        start..i,
                        Emitted::Number,
                        &mut visit,
                    );
                }
                i += after_value(&bytes[i..], &mut stack);
            }
        }
    }
    WalkEnd {
        consumed: bytes.len(),
    }
}

/// Moves the innermost container on to its next value, at a comma: an object expects a key,
/// an array counts an element.
fn next_value(stack: &mut [Frame<'_>]) {
    if let Some(frame) = stack.last_mut() {
        if frame.object {
            frame.expect_key = true;
            frame.member_key = None;
        } else {
            frame.index += 1;
        }
    }
}

/// How many of `rest`'s first bytes are spaces and colons, which the walk skips. After a key
/// that is most often a lone colon: told at once, inline.
#[inline(always)]
fn skippable(rest: &[u8]) -> usize {
    match rest {
        [b':', next, ..] if !is_skippable(*next) => 1,
        _ => skippable_run(rest),
    }
}

fn is_skippable(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n' | b':')
}

fn skippable_run(rest: &[u8]) -> usize {
    rest.iter().take_while(|&&byte| is_skippable(byte)).count()
}

/// Bytes taken after a value, as the walk's loop would take them: the comma that usually
/// follows, read here without a trip through the loop's dispatch (whose jump mispredicts on
/// most tokens of a document).
fn after_value(rest: &[u8], stack: &mut [Frame<'_>]) -> usize {
    if rest.first() == Some(&b',') {
        next_value(stack);
        return 1;
    }
    0
}

/// Whether another bare token follows the one `rest` comes after, past spaces.
fn followed_by_token(rest: &[u8]) -> bool {
    rest.iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .is_some_and(|&b| TOKEN_BYTE_CLASS[usize::from(b)] != TOKEN_END)
}

/// Bytes of text up to JSON's next structure byte (or a string's quote).
fn text_len(rest: &[u8]) -> usize {
    rest.iter()
        .position(|b| b"{}[],\"".contains(b))
        .unwrap_or(rest.len())
}

/// [`TOKEN_BYTE_CLASS`]' classes; other bytes are 0.
const TOKEN_END: u8 = 1;
const TOKEN_NUMBER: u8 = 2;

/// What each byte is to a bare token (a number, `true`, or anything unquoted): a byte that
/// ends it (structure, space, or the start of a string), one numbers are written with, or
/// another. One load per byte, where a list of comparisons cost two passes.
const TOKEN_BYTE_CLASS: [u8; 256] = byte_table([
    (b",}] \t\r\n\":{[", TOKEN_END),
    (b"0123456789-+.eE", TOKEN_NUMBER),
]);

/// Appends the segment naming the next value of `frame` to `path`: its key, or `*` for a key
/// that is data ([`is_data_key`], or `is_data`) or when `key_itself` (the scalar is the key): a
/// path names where a value is, and is shown in findings, so it never carries a value itself.
fn push_segment(
    path: &mut String,
    frame: Option<&Frame<'_>>,
    key_itself: bool,
    is_data: &dyn Fn(&str) -> bool,
) {
    let Some(frame) = frame else {
        return;
    };
    if path.len() >= MAX_PATH_BYTES {
        return;
    }
    if frame.object {
        let key = shown_key(frame, key_itself, is_data);
        path.push('.');
        let room = MAX_PATH_BYTES.saturating_sub(path.len());
        path.push_str(truncate_at_char(key, room));
    } else {
        path.push('[');
        push_decimal(path, frame.index);
        path.push(']');
    }
}

/// `write!` without the formatting machinery, which costs more than the rest of a scalar.
fn push_decimal(path: &mut String, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in digits[..len].iter().rev() {
        path.push(char::from(d));
    }
}

fn truncate_at_char(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// An object frame's current key as a path shows it: `?` when it could not be read, `*` when
/// it is data (by its shape or `is_data`) or `key_itself` (the scalar is the key).
fn shown_key<'a>(frame: &Frame<'a>, key_itself: bool, is_data: &dyn Fn(&str) -> bool) -> &'a str {
    match frame.member_key {
        None => "?",
        Some(key) if key_itself || is_data_key(key) || is_data(key) => DATA_KEY,
        Some(key) => key,
    }
}

/// What [`emit`] reports.
#[derive(Clone, Copy)]
enum Emitted {
    String { escaped: bool },
    Number,
    Key { escaped: bool },
}

#[inline(always)]
fn emit<'a>(
    path: Option<&mut String>,
    stack: &'a [Frame<'a>],
    raw: Range<usize>,
    emitted: Emitted,
    visit: &mut impl FnMut(&Scalar<'_>),
) {
    let is_key = matches!(emitted, Emitted::Key { .. });
    // A key is named by nothing above it: the names that give a value its meaning (a
    // `password` member) say nothing of the keys beside it.
    let (key, parent_key) = match stack.last() {
        Some(frame) if !is_key => frame.names(),
        _ => (None, None),
    };
    let (is_string, escaped) = match emitted {
        Emitted::String { escaped } | Emitted::Key { escaped } => (true, escaped),
        Emitted::Number => (false, false),
    };
    let scalar = |path| Scalar {
        path,
        frames: stack,
        key,
        parent_key,
        raw,
        is_string,
        escaped,
        is_key,
    };
    match path {
        Some(path) => {
            let before = path.len();
            push_segment(path, stack.last(), is_key, &|_| false);
            visit(&scalar(path));
            path.truncate(before);
        }
        None => visit(&scalar("")),
    }
}

/// Keys longer than this are looked at as data whatever their bytes: tokens are this long,
/// field names rarely are.
const LONG_KEY_BYTES: usize = 16;

/// Whether an object key may hold something the scanner finds, so that the walk reports it:
/// everything the scanner knows holds a digit or an `@` (numbers, dates, addresses, emails)
/// or is long (tokens, keys, JWTs). Most keys are short names of letters and fail at once.
pub fn key_may_hold_data(key: &[u8]) -> bool {
    key_at_may_hold_data(key, 0..key.len())
}

/// [`key_may_hold_data`] of the key at `key` in `bytes`. Every key of every document passes
/// here, and most are short: one of up to eight bytes is read as the word it starts, loaded
/// whole from the text (a key is followed by at least its quote and colon) and cut to its
/// length; longer ones byte by byte.
#[inline(always)]
fn key_at_may_hold_data(bytes: &[u8], key: Range<usize>) -> bool {
    let len = key.len();
    if len <= 8 {
        if let Some(word) = bytes.get(key.start..).and_then(<[u8]>::first_chunk::<8>) {
            // The key's bytes, the rest zeroed (an empty key keeps none).
            let kept = u64::MAX.checked_shr(8 * (8 - len) as u32).unwrap_or(0);
            return digits_to_at(u64::from_le_bytes(*word) & kept) != 0;
        }
    }
    len >= LONG_KEY_BYTES
        || bytes
            .get(key)
            .unwrap_or_default()
            .iter()
            .any(|&byte| (b'0'..=b'@').contains(&byte))
}

/// The high bit of each byte of `word` from `0` to `@` (the digits, `:;<=>?` and `@`; the six
/// between only make a key looked at for nothing), exact for every byte: Bit Twiddling Hacks'
/// `hasbetween`. Bytes of 0x80 and above, and the zero padding of [`le_word`], are never marked.
fn digits_to_at(word: u64) -> u64 {
    const ONES: u64 = u64::MAX / 255;
    const LOW_SEVEN_BITS: u64 = ONES * 0x7f;
    const HIGH_BITS: u64 = ONES * 0x80;
    // Per byte, with no carry or borrow between bytes: 0xc0 - low is above 0x80 for low below
    // 0x41 (up to `@`), and low + 0x50 reaches 0x80 for low from 0x30 (`0`).
    let low = word & LOW_SEVEN_BITS;
    ((ONES * (0x7f + 0x41) - low) & !word & (low + ONES * (0x7f - 0x2f))) & HIGH_BITS
}

/// Fewest digits in a key taken for data (ids, phone numbers, dates), where names with a
/// digit or two (`line1`, `sha256`, `x509`) are common.
const MIN_DATA_KEY_DIGITS: usize = 4;

/// Whether an object key is data rather than a field name (a map keyed by emails, ids, dates,
/// phone numbers or tokens): such a key is written `*` in paths, which are shown in findings
/// and never carry a value. Names begin with a letter, `_` or `$`, hold no `@`, few digits,
/// and are not long.
pub fn is_data_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    let named_start = bytes
        .first()
        .is_some_and(|&b| b.is_ascii_alphabetic() || b == b'_' || b == b'$');
    !named_start
        || bytes.len() > MAX_NAME_KEY_BYTES
        || bytes.contains(&b'@')
        || count_marked(&DECIMAL_DIGITS, bytes) >= MIN_DATA_KEY_DIGITS
}

/// How a key that is data is written where keys name fields: in paths, and for parameter and
/// cookie names.
pub const DATA_KEY: &str = "*";

/// Longest key taken for a name: longer ones are tokens or text.
const MAX_NAME_KEY_BYTES: usize = 40;

/// Index of the quote closing the string opening at `start` (the text's length if it never
/// closes), and whether the string holds escapes. Most keys and many values close within
/// their first word: that case is one load and a few operations, inline in the walk.
#[inline]
pub fn string_end(bytes: &[u8], start: usize) -> (usize, bool) {
    // The first two words, each one load: keys and short values end in them.
    let mut searched = start;
    for _ in 0..INLINE_STRING_WORDS {
        let Some(&word) = bytes.get(searched + 1..).and_then(<[u8]>::first_chunk::<8>) else {
            break;
        };
        let found = quotes_or_backslashes(u64::from_le_bytes(word));
        if found != 0 {
            let at = searched + 1 + (found.trailing_zeros() / 8) as usize;
            if bytes[at] == b'"' {
                return (at, false);
            }
            break;
        }
        // The search goes on after the word, which holds neither.
        searched += 8;
    }
    string_end_searched(bytes, searched)
}

/// Words of a string [`string_end`] reads inline before it calls the search.
const INLINE_STRING_WORDS: usize = 2;

/// [`string_end`] for strings longer than a word or holding escapes, searched from after
/// `start` (the opening quote, or the last byte known to be neither `"` nor `\`).
fn string_end_searched(bytes: &[u8], start: usize) -> (usize, bool) {
    let mut i = start + 1;
    let mut escaped = false;
    while i < bytes.len() {
        match quote_or_backslash(&bytes[i..]) {
            Some(offset) => {
                i += offset;
                if bytes[i] == b'\\' {
                    escaped = true;
                    i += 2;
                } else {
                    return (i, escaped);
                }
            }
            None => return (bytes.len(), escaped),
        }
    }
    (bytes.len(), escaped)
}

/// The first bytes of a string are searched a word at a time: most keys and values are this
/// short, and memchr's vector search costs more to set up than it saves on them.
const WORD_SEARCHED_BYTES: usize = 32;

/// The high bit of each `"` or `\` byte of `word` (little-endian), exact up to the first one (a
/// borrow can only flag bytes above a true match), which is all a search needs.
fn quotes_or_backslashes(word: u64) -> u64 {
    bytes_equal_to(word, b'"') | bytes_equal_to(word, b'\\')
}

/// Where the first `"` or `\` in `haystack` is.
fn quote_or_backslash(haystack: &[u8]) -> Option<usize> {
    let head = &haystack[..haystack.len().min(WORD_SEARCHED_BYTES)];
    let mut words = head.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut words {
        let found = quotes_or_backslashes(le_word(chunk));
        if found != 0 {
            return Some(offset + (found.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    if let Some(at) = words
        .remainder()
        .iter()
        .position(|&b| b == b'"' || b == b'\\')
    {
        return Some(offset + at);
    }
    let searched = head.len();
    memchr::memchr2(b'"', b'\\', &haystack[searched..]).map(|at| searched + at)
}

/// The value of a JSON string's inside (`a\"b\u00e9` → `a"bé`). Bad escapes are kept as
/// written; lone surrogates become U+FFFD.
pub fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some((decoded, written_len)) = first_unit(rest) {
        out.push(decoded);
        rest = &rest[written_len..];
    }
    out
}

/// The character at the start of `raw`, a JSON string's text, as [`unescape`] reads it, and
/// how many bytes write it: one character, or one escape (`\n`, `\"`, `\u00e9`; a broken
/// `\u` stands for U+FFFD). `None` at the end.
fn first_unit(raw: &str) -> Option<(char, usize)> {
    let mut chars = raw.chars();
    let c = chars.next()?;
    if c != '\\' {
        return Some((c, c.len_utf8()));
    }
    let Some(escaped) = chars.next() else {
        return Some(('\\', 1));
    };
    let decoded = match escaped {
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        'b' => '\u{8}',
        'f' => '\u{c}',
        'u' => {
            let hex: String = chars.take(4).collect();
            let unit = u32::from_str_radix(&hex, 16).ok();
            let decoded = unit.and_then(char::from_u32).unwrap_or('\u{fffd}');
            return Some((decoded, 2 + hex.len()));
        }
        other => other,
    };
    Some((decoded, 1 + escaped.len_utf8()))
}

/// Where `decoded[span]` is written in `written`, the JSON string text `decoded` unescapes:
/// from the unit that writes its first character to the end of the unit that writes its
/// last, so that replacing it leaves every other escape whole and the string valid. `None`
/// when `decoded` is not the unescaping of `written` as far as `span` reaches (another
/// decoding of the same text), or `span` does not fall on characters.
pub fn written_span(written: &str, decoded: &str, span: Range<usize>) -> Option<Range<usize>> {
    let (mut written_at, mut decoded_at) = (0, 0);
    let mut start = None;
    while decoded_at < span.end {
        if decoded_at == span.start {
            start = Some(written_at);
        }
        let (c, written_len) = first_unit(&written[written_at..])?;
        let mut expected = [0; 4];
        let expected = c.encode_utf8(&mut expected).as_bytes();
        if decoded
            .as_bytes()
            .get(decoded_at..decoded_at + expected.len())
            != Some(expected)
        {
            return None;
        }
        written_at += written_len;
        decoded_at += expected.len();
    }
    (decoded_at == span.end && span.start < span.end).then_some(start?..written_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalars(text: &str) -> Vec<(String, Option<String>, String)> {
        let mut out = Vec::new();
        walk(text, |s| {
            out.push((
                s.path.to_string(),
                s.key.map(str::to_string),
                text[s.raw.clone()].to_string(),
            ))
        });
        out
    }

    #[test]
    fn text_that_is_not_json_is_reported_whole() {
        let raw = |text: &str| -> Vec<String> { scalars(text).into_iter().map(|s| s.2).collect() };
        // An error message under a JSON content type, and text after a document.
        assert_eq!(
            raw("Internal error: no user ann@example.com"),
            ["Internal error: no user ann@example.com"]
        );
        assert_eq!(
            raw(r#"{"a":1} then ann@example.com"#),
            ["1", "then ann@example.com"]
        );
        // Unquoted values, whole up to the next member; numbers in a row are text too.
        assert_eq!(
            raw(r#"{"card": 4111 1111 1111 1111, "to": ann@example.com }"#),
            ["4111 1111 1111 1111", "ann@example.com"]
        );
        assert_eq!(scalars(r#"{"to": ann@x.io}"#)[0].1.as_deref(), Some("to"));
        // JSON's own words and numbers are as they were.
        assert_eq!(raw(r#"[true, false, null, 12, -1.5]"#), ["12", "-1.5"]);
    }

    #[test]
    fn scalars_come_with_their_paths() {
        let got = scalars(r#"{"user":{"email":"a@b.io","tags":["x",2]},"n":-1.5e3,"ok":true}"#);
        let want = [
            ("$.user.email", Some("email"), "a@b.io"),
            ("$.user.tags[0]", Some("tags"), "x"),
            ("$.user.tags[1]", Some("tags"), "2"),
            ("$.n", Some("n"), "-1.5e3"),
        ];
        assert_eq!(got.len(), want.len(), "{got:?}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!((g.0.as_str(), g.1.as_deref(), g.2.as_str()), w);
        }
    }

    #[test]
    fn parent_keys_name_generic_members() {
        let mut parents = Vec::new();
        walk(r#"{"card":{"number":"4111"}}"#, |s| {
            parents.push((s.key.map(str::to_string), s.parent_key.map(str::to_string)))
        });
        assert_eq!(parents, [(Some("number".into()), Some("card".into()))]);
    }

    #[test]
    fn cut_and_broken_documents_still_yield_values() {
        let got = scalars(r#"{"a":"x\"y","ssn":"123-45-67"#);
        assert_eq!(got[0].2, r#"x\"y"#);
        assert_eq!(
            got[1],
            ("$.ssn".into(), Some("ssn".into()), "123-45-67".into())
        );
        assert_eq!(scalars("{{{:::,,,]]]").len(), 0);
        assert_eq!(unescape(r#"a\"b\u00e9\n"#), "a\"bé\n");
    }

    #[test]
    fn every_span_of_an_unescaped_string_maps_to_the_escapes_that_write_it() {
        let mut rng = crate::sensitive::corpus::Rng::new(0x3_5ca9e);
        let units = [
            "a", "a", "é", "\\\"", "\\\\", "\\n", "\\/", "\\u0040", "\\u00e9", "\\ud83d", "\\u12",
            "\\é", "\\",
        ];
        for _ in 0..2_000 {
            let len = rng.below(12) as usize;
            let written: String = (0..len).map(|_| *rng.pick(&units)).collect();
            let decoded = unescape(&written);
            let boundaries: Vec<usize> = (0..=decoded.len())
                .filter(|&i| decoded.is_char_boundary(i))
                .collect();
            for (i, &start) in boundaries.iter().enumerate() {
                for &end in &boundaries[i + 1..] {
                    let span = written_span(&written, &decoded, start..end)
                        .unwrap_or_else(|| panic!("{written:?} {start}..{end}"));
                    assert_eq!(
                        unescape(&written[span]),
                        decoded[start..end],
                        "{written:?} {start}..{end}"
                    );
                }
            }
            // Another text than the string's unescaping maps nowhere past where they part.
            let mut other = decoded.clone();
            if other.pop().is_some() {
                other.push('#');
                assert_eq!(written_span(&written, &other, 0..other.len()), None);
            }
        }
    }

    #[test]
    fn separators_read_after_keys_and_values_count_as_the_loop_reads_them() {
        let got = scalars("{\"a\" : :\t\"x\" ,\"b\":1,,\"c\":[1,,2 , \"y\"],\"d\" \"z\"}");
        let paths: Vec<_> = got
            .iter()
            .map(|(path, _, raw)| format!("{path}={raw}"))
            .collect();
        assert_eq!(
            paths,
            ["$.a=x", "$.b=1", "$.c[0]=1", "$.c[2]=2", "$.c[3]=y", "$.d=z"]
        );
    }

    #[test]
    fn paths_built_on_demand_match_paths_built_while_walking() {
        let text = r#"{"a":[{"b":1},{"c":[2,{"d":"x"}]}],"e":"y"}"#;
        let mut built = Vec::new();
        walk(text, |s| built.push(s.path.to_string()));
        let mut on_demand = Vec::new();
        walk_unnamed(text, |s| {
            assert!(s.path.is_empty());
            on_demand.push(s.path_on_demand());
        });
        assert_eq!(built, on_demand);
        assert_eq!(built, ["$.a[0].b", "$.a[1].c[0]", "$.a[1].c[1].d", "$.e"]);
        // Each path is allocated once, at its length: too small a guess would have grown it
        // (to twice its size), too large would show too.
        for path in &on_demand {
            assert_eq!(path.capacity(), path.len(), "{path}");
        }
    }

    #[test]
    fn string_ends_are_found_at_every_offset() {
        // A quote or backslash in each position of the word-at-a-time head, in its last
        // partial word, and past it, with other bytes that could fool a word search around it.
        for len in 0..3 * WORD_SEARCHED_BYTES {
            for special in [b'"', b'\\'] {
                let mut haystack = vec![0x21u8; len];
                haystack.push(special);
                haystack.extend_from_slice(b"\x00\xa2\x5c\x22");
                assert_eq!(quote_or_backslash(&haystack), Some(len), "{len}");
                assert_eq!(quote_or_backslash(&haystack[..len]), None, "{len}");
            }
        }
    }

    #[test]
    fn string_ends_match_a_byte_by_byte_reading() {
        // Strings of letters, quotes, backslashes and a two-byte character, cut at every
        // length: ends within the first word (found inline), past it, after escapes, and
        // strings the text cuts short.
        fn by_byte(bytes: &[u8], start: usize) -> (usize, bool) {
            let (mut i, mut escaped) = (start + 1, false);
            while i < bytes.len() {
                match bytes[i] {
                    b'\\' => {
                        escaped = true;
                        i += 2;
                    }
                    b'"' => return (i, escaped),
                    _ => i += 1,
                }
            }
            (bytes.len(), escaped)
        }
        let mut rng = crate::sensitive::corpus::Rng::new(0x5_7e4d);
        for _ in 0..2_000 {
            let len = rng.below(3 * WORD_SEARCHED_BYTES as u64) as usize;
            let text: String = std::iter::once("\"")
                .chain((0..len).map(|_| *rng.pick(&["a", "a", "a", "\"", "\\", "é"])))
                .collect();
            let bytes = text.as_bytes();
            for cut in 1..=bytes.len() {
                assert_eq!(
                    string_end(&bytes[..cut], 0),
                    by_byte(&bytes[..cut], 0),
                    "{:?}",
                    String::from_utf8_lossy(&bytes[..cut])
                );
            }
        }
    }

    #[test]
    fn keys_are_looked_at_when_they_hold_a_digit_or_an_at_or_are_long() {
        let by_byte = |key: &[u8]| {
            key.len() >= LONG_KEY_BYTES || key.iter().any(|&b| (b'0'..=b'@').contains(&b))
        };
        let mut rng = crate::sensitive::corpus::Rng::new(0x6b_e75);
        for _ in 0..20_000 {
            let len = rng.below(LONG_KEY_BYTES as u64 + 2) as usize;
            // Mostly letters, with every other byte value now and then.
            let key: Vec<u8> = (0..len)
                .map(|_| match rng.below(8) {
                    0 => rng.below(256) as u8,
                    _ => b'a' + rng.below(26) as u8,
                })
                .collect();
            assert_eq!(key_may_hold_data(&key), by_byte(&key), "{key:?}");
        }
        for name in ["id", "email", "created_at", "owner", "description"] {
            assert!(!key_may_hold_data(name.as_bytes()), "{name}");
        }
        for data in [
            "ann@example.com",
            "42",
            "2024-05-01",
            "a_key_as_long_as_a_token",
        ] {
            assert!(key_may_hold_data(data.as_bytes()), "{data}");
        }
    }

    #[test]
    fn data_keys_are_starred_in_paths_and_keys_holding_data_are_reported() {
        let text =
            r#"{"users":{"ann@example.com":{"ssn":"1"},"line1":"x","2024-05-01":2,"sha256":"y"}}"#;
        let mut got = Vec::new();
        walk(text, |s| {
            got.push((
                s.path.to_string(),
                s.is_key,
                text[s.raw.clone()].to_string(),
            ))
        });
        let mut on_demand = Vec::new();
        walk_unnamed(text, |s| on_demand.push(s.path_on_demand()));
        for path in &on_demand {
            assert_eq!(path.capacity(), path.len(), "{path}");
        }
        let want = [
            ("$.users.*", true, "ann@example.com"),
            ("$.users.*.ssn", false, "1"),
            ("$.users.*", true, "line1"),
            ("$.users.line1", false, "x"),
            ("$.users.*", true, "2024-05-01"),
            ("$.users.*", false, "2"),
            ("$.users.*", true, "sha256"),
            ("$.users.sha256", false, "y"),
        ];
        assert_eq!(got.len(), want.len(), "{got:?}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!((g.0.as_str(), g.1, g.2.as_str()), w);
        }
        assert_eq!(
            on_demand,
            got.iter().map(|g| g.0.clone()).collect::<Vec<_>>()
        );
        for name in ["id", "line1", "sha256", "x509_cert", "_links", "$ref"] {
            assert!(!is_data_key(name), "{name}");
        }
        for data in [
            "ann@example.com",
            "42",
            "2024-05-01",
            "+1 555 0100",
            "user12345",
        ] {
            assert!(is_data_key(data), "{data}");
        }
    }

    #[test]
    fn deep_nesting_stops_the_walk() {
        let deep = "[".repeat(MAX_DEPTH + 10);
        assert_eq!(walk(&deep, |_| {}).consumed, MAX_DEPTH);
    }
}
