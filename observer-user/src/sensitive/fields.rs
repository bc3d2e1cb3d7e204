//! Structure first: a message part cut into named fields before any detector looks at it.
//!
//! A query string becomes its parameters, a cookie header its cookies, a JSON body its scalars
//! with their key paths, a form body its fields; other text is one field. Each field carries its
//! name, so a detector can let the name confirm or refute a weak match, and its position in the
//! text it came from, so redaction can replace exactly what was found. Values that had to be
//! decoded (percent-encoding, JSON escapes) say so: their decoded text does not line up with the
//! source, and redaction replaces them whole.

use std::{borrow::Cow, ops::Range};

use super::{
    bytes::{bytes_equal_to, le_word},
    delimited,
    hints::MAX_NAME_BYTES,
    json, markup,
};

/// Where in a message a field was: the names findings use (`findings::Location::part`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    Path,
    Query,
    Header,
    Cookie,
    Json,
    Form,
    /// An XML or HTML body's element text or attribute value.
    Markup,
    /// A cell of a delimited body (CSV, TSV), named by its column.
    Column,
    /// Text that is neither JSON, a form nor markup.
    Body,
    /// A process's command-line argument (redaction only: it is not traffic).
    Argument,
}

impl Part {
    pub fn name(self) -> &'static str {
        match self {
            Part::Path => "path",
            Part::Query => "query",
            Part::Header => "header",
            Part::Cookie => "cookie",
            Part::Json => "json",
            Part::Form => "form",
            Part::Markup => "markup",
            Part::Column => "column",
            Part::Body => "body",
            Part::Argument => "argument",
        }
    }
}

/// One field of a message part.
#[derive(Debug)]
pub struct Field<'a> {
    pub part: Part,
    /// Parameter, header or cookie name (JSON fields name themselves through `json`).
    pub name: Option<&'a str>,
    /// The scalar a JSON field is, which knows its path.
    pub json: Option<&'a json::Scalar<'a>>,
    /// The name that says what the value is: the last key of a JSON path, else `name`.
    pub key: Option<&'a str>,
    /// The key above `key` in JSON, for generic members (`card.number`).
    pub parent_key: Option<&'a str>,
    /// The value, decoded.
    pub text: &'a str,
    /// Where the value lies in the source text.
    pub raw: Range<usize>,
    /// `text` is a decoding of `raw`, not a copy: offsets in one are not offsets in the other.
    pub decoded: bool,
    /// The JSON string as written, when `text` is its unescaping: offsets in `text` map back
    /// through its escapes ([`Field::source_span`]). Other decodings do not map.
    pub escaped: Option<&'a str>,
    /// A JSON value that was not a string (a number): replacing it needs quotes.
    pub bare: bool,
}

impl Field<'_> {
    /// Where `text[span]` lies in the source: in `raw` at the same offsets when `text` is a
    /// copy, at the escapes that write it when `text` unescapes a JSON string (so that a
    /// GraphQL query's `password: \"...\"` is hidden alone, not with the whole query), and
    /// all of `raw` for other decodings, whose offsets do not map back.
    pub fn source_span(&self, span: Range<usize>) -> Range<usize> {
        if !self.decoded {
            return self.raw.start + span.start..self.raw.start + span.end;
        }
        self.escaped
            .and_then(|written| json::written_span(written, self.text, span))
            .map_or(self.raw.clone(), |written| {
                self.raw.start + written.start..self.raw.start + written.end
            })
    }

    /// Parameter, header or cookie name, or JSON path (`$.user.email`), built on demand.
    pub fn name_string(&self) -> Option<String> {
        self.name_string_naming(|_| false)
    }

    /// [`Field::name_string`] with the names and keys `is_data` says are data written `*`, as
    /// [`json::is_data_key`] has those of their shape written: a name shown in a finding.
    pub fn name_string_naming(&self, is_data: impl Fn(&str) -> bool) -> Option<String> {
        match self.json {
            Some(scalar) => Some(scalar.path_naming(is_data)),
            None => self
                .name
                .map(|name| if is_data(name) { json::DATA_KEY } else { name })
                .map(str::to_string),
        }
    }
}

/// What kind of text a source is, which decides how it is cut into fields.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// The URL path (scanned as text: ids, emails and tokens turn up in paths).
    Path,
    /// A query string, `a=1&b=2`.
    Query,
    /// A header's value, with the header's name.
    Header(&'a str),
    /// A message body, with its `Content-Type`.
    Body(Option<&'a str>),
    /// A command-line argument.
    Argument,
}

/// Calls `visit` with every field of `text` read as `source`.
pub fn fields(source: Source<'_>, text: &str, visit: &mut impl FnMut(&Field<'_>)) {
    match source {
        Source::Path => visit(&whole(Part::Path, None, text)),
        Source::Argument => visit(&whole(Part::Argument, None, text)),
        Source::Query => pairs(text, Part::Query, visit),
        Source::Header(name) => header(name, text, visit),
        Source::Body(content_type) => body(content_type, text, visit),
    }
}

fn whole<'a>(part: Part, name: Option<&'a str>, text: &'a str) -> Field<'a> {
    Field {
        part,
        name,
        json: None,
        key: name,
        parent_key: None,
        text,
        raw: 0..text.len(),
        decoded: false,
        escaped: None,
        bare: false,
    }
}

fn header(name: &str, value: &str, visit: &mut impl FnMut(&Field<'_>)) {
    if name.eq_ignore_ascii_case("cookie") || name.eq_ignore_ascii_case("set-cookie") {
        let set_cookie = name.eq_ignore_ascii_case("set-cookie");
        let mut offset = 0;
        for (index, piece) in value.split(';').enumerate() {
            let start = offset;
            offset += piece.len() + 1;
            // In Set-Cookie only the first pair is the cookie; the rest are its attributes.
            if set_cookie && index > 0 {
                continue;
            }
            let Some((written_name, cookie_value)) = piece.split_once('=') else {
                continue;
            };
            let name_start = start + written_name.len() - written_name.trim_start().len();
            let trimmed_name = written_name.trim();
            let name_raw = name_start..name_start + trimmed_name.len();
            let cookie = name_field(Part::Cookie, trimmed_name, name_raw, false, visit);
            let value_start = start + written_name.len() + 1;
            let trimmed = cookie_value.trim();
            let lead = cookie_value.len() - cookie_value.trim_start().len();
            let raw = value_start + lead..value_start + lead + trimmed.len();
            visit(&Field {
                part: Part::Cookie,
                name: Some(cookie),
                json: None,
                key: Some(cookie),
                parent_key: None,
                text: trimmed,
                raw,
                decoded: false,
                escaped: None,
                bare: false,
            });
        }
        return;
    }
    visit(&whole(Part::Header, Some(name), value));
}

fn body(content_type: Option<&str>, text: &str, visit: &mut impl FnMut(&Field<'_>)) {
    let content_type = content_type.unwrap_or("");
    let looks_like_json = text.trim_start().starts_with(['{', '[']);
    if contains_ignore_case(content_type, "json") || (content_type.is_empty() && looks_like_json) {
        json_fields(text, visit);
    } else if contains_ignore_case(content_type, "x-www-form-urlencoded") {
        pairs(text, Part::Form, visit);
    } else if let Some(boundary) = multipart_boundary(content_type) {
        multipart_fields(text, boundary, visit);
    } else if contains_ignore_case(content_type, "event-stream") {
        event_stream_fields(text, visit);
    } else if let Some(separator) = delimited::separator(content_type, text) {
        delimited::fields(text, separator, visit);
    } else if contains_ignore_case(content_type, "xml")
        || contains_ignore_case(content_type, "html")
        // Property lists (`application/x-plist`), and any body that declares itself XML
        // whatever its label says: markup hands out every text plain text would.
        || contains_ignore_case(content_type, "plist")
        || (content_type.is_empty() && text.trim_start().starts_with('<'))
        || text.trim_start().starts_with("<?xml")
    {
        markup::fields(text, visit);
    } else {
        visit(&whole(Part::Body, None, text));
    }
}

/// The boundary of a `multipart/...` content type, quoted or not.
fn multipart_boundary(content_type: &str) -> Option<&str> {
    if !contains_ignore_case(content_type, "multipart/") {
        return None;
    }
    let at = content_type.to_ascii_lowercase().find("boundary=")?;
    let boundary = content_type[at + "boundary=".len()..]
        .split(';')
        .next()?
        .trim()
        .trim_matches('"');
    (!boundary.is_empty()).then_some(boundary)
}

/// The parts of a multipart body (`multipart/form-data`: uploads, and forms that carry them):
/// each part's content under the `name` its `Content-Disposition` gives, as a form field;
/// its header block, which may name a file, as a field without a name. Text before the first
/// boundary and after the last is a field too, so every byte is read.
// Out of line, as `markup::fields` is: inlined beside the JSON walk, they changed how it
// compiled, and JSON bodies paid 1.4 % more for text they never reach.
#[inline(never)]
fn multipart_fields(text: &str, boundary: &str, visit: &mut impl FnMut(&Field<'_>)) {
    let delimiter = format!("--{boundary}");
    let bytes = text.as_bytes();
    let finder = memchr::memmem::Finder::new(delimiter.as_bytes());
    let mut starts = finder.find_iter(bytes).peekable();
    let mut emit = |span: Range<usize>, name: Option<&str>| {
        let Some(value) = text.get(span.clone()) else {
            return;
        };
        let value = value.trim_end_matches(['\r', '\n']);
        if value.trim().is_empty() {
            return;
        }
        visit(&Field {
            part: Part::Form,
            name,
            json: None,
            key: name,
            parent_key: None,
            text: value,
            raw: span.start..span.start + value.len(),
            decoded: false,
            escaped: None,
            bare: false,
        });
    };
    let Some(&first) = starts.peek() else {
        emit(0..bytes.len(), None);
        return;
    };
    emit(0..first, None);
    while let Some(start) = starts.next() {
        let part_start = start + delimiter.len();
        let part_end = starts.peek().copied().unwrap_or(bytes.len());
        let part = &text[part_start..part_end];
        // The header block ends at the first blank line; a part without one is all content.
        let (head_len, content_start) = match part.find("\r\n\r\n").map(|i| (i, i + 4)) {
            Some(found) => found,
            None => part.find("\n\n").map_or((0, 0), |i| (i, i + 2)),
        };
        let head = &part[..head_len];
        let name = head
            .lines()
            .find(|line| contains_ignore_case(line, "content-disposition"))
            .and_then(|line| disposition_name(line));
        emit(part_start..part_start + head_len, None);
        emit(part_start + content_start..part_end, name);
    }
}

/// The `name` parameter of a `Content-Disposition` line (not `filename`).
fn disposition_name(line: &str) -> Option<&str> {
    line.split(';').find_map(|parameter| {
        let (key, value) = parameter.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("name")
            .then(|| value.trim().trim_matches('"'))
    })
}

/// Whether `needle` (ASCII) is in `haystack`, in any case: content types, which are
/// case-insensitive.
pub fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

fn json_fields(text: &str, visit: &mut impl FnMut(&Field<'_>)) {
    let end = json::walk_unnamed(text, |scalar| {
        let raw_text = text.get(scalar.raw.clone()).unwrap_or("");
        let unescaped;
        let value: &str = if scalar.escaped {
            unescaped = json::unescape(raw_text);
            &unescaped
        } else {
            raw_text
        };
        visit(&Field {
            part: Part::Json,
            name: None,
            json: Some(scalar),
            key: scalar.key,
            parent_key: scalar.parent_key,
            text: value,
            raw: scalar.raw.clone(),
            decoded: scalar.escaped,
            escaped: scalar.escaped.then_some(raw_text),
            bare: !scalar.is_string,
        });
    });
    // Past the nesting limit the rest is plain text: still scanned, without key paths.
    if end.consumed < text.len() {
        let rest = &text[end.consumed..];
        visit(&Field {
            raw: end.consumed..text.len(),
            ..whole(Part::Json, None, rest)
        });
    }
}

/// A stream of server-sent events (`text/event-stream`, as streaming APIs answer): the payload
/// of each `data:` line read as JSON where it is JSON (a model API streams an object per
/// event), as text elsewhere, and the other lines (`event:`, `id:`) as text. Read as one text,
/// the JSON's member names vouched for nothing (`data: {"password": "..."}` went out as sent).
// Out of line, as `multipart_fields` is.
#[inline(never)]
fn event_stream_fields(text: &str, visit: &mut impl FnMut(&Field<'_>)) {
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        let at = line_start;
        line_start += line.len();
        let content = line.trim_end_matches(['\r', '\n']);
        if content.trim().is_empty() {
            continue;
        }
        let payload = content
            .strip_prefix("data:")
            .map(|rest| rest.strip_prefix(' ').unwrap_or(rest))
            .filter(|rest| rest.trim_start().starts_with(['{', '[']));
        match payload {
            Some(payload) => {
                let offset = at + content.len() - payload.len();
                json_fields(payload, &mut |field| {
                    visit(&Field {
                        raw: field.raw.start + offset..field.raw.end + offset,
                        ..*field
                    })
                });
            }
            None => visit(&Field {
                raw: at..at + content.len(),
                ..whole(Part::Body, None, content)
            }),
        }
    }
}

/// `name=value` pairs separated by `&`, percent-decoded.
fn pairs(text: &str, part: Part, visit: &mut impl FnMut(&Field<'_>)) {
    let mut offset = 0;
    for pair in text.split('&') {
        let start = offset;
        offset += pair.len() + 1;
        let (name, value, value_start) = match pair.split_once('=') {
            Some((name, value)) => (name, value, start + name.len() + 1),
            None => ("", pair, start),
        };
        let decoded_name = percent_decode(name);
        let name = name_field(
            part,
            &decoded_name,
            start..start + name.len(),
            matches!(decoded_name, Cow::Owned(_)),
            visit,
        );
        if value.is_empty() {
            continue;
        }
        let decoded = percent_decode(value);
        let name = (!name.is_empty()).then_some(name);
        visit(&Field {
            part,
            name,
            json: None,
            key: name,
            parent_key: None,
            text: &decoded,
            raw: value_start..value_start + value.len(),
            decoded: matches!(decoded, Cow::Owned(_)),
            escaped: None,
            bare: false,
        });
    }
}

/// A parameter's or cookie's name as its value's field names it: the name itself, or `*` when
/// the name is data (`?ann@example.com=1`, a cookie named by a user id), which a finding's
/// location must not show. A name that may hold data ([`json::key_may_hold_data`]) is a field
/// of its own too, scanned without hints, so that what it holds is found and redacted.
fn name_field<'a>(
    part: Part,
    name: &'a str,
    raw: Range<usize>,
    decoded: bool,
    visit: &mut impl FnMut(&Field<'_>),
) -> &'a str {
    if !json::key_may_hold_data(name.as_bytes()) {
        return name;
    }
    visit(&Field {
        part,
        name: Some(json::DATA_KEY),
        json: None,
        key: None,
        parent_key: None,
        text: name,
        raw,
        decoded,
        escaped: None,
        bare: false,
    });
    if json::is_data_key(name) {
        json::DATA_KEY
    } else {
        name
    }
}

/// The fewest bytes an assignment ([`assignments`]) worth reading takes: a short name, its
/// mark and a value as long as a PIN (`pin=1234`). Most values in API bodies are shorter
/// (statuses, names, currencies, tags) and are passed over unread.
pub const MIN_ASSIGNMENT_BYTES: usize = 8;

/// Whether `text` may hold an assignment: the look every field gets, which tells the colons
/// of URLs and times from a name's, so that only fields with a mark that may follow a name
/// are read further.
#[inline]
pub fn may_hold_assignments(text: &str, flags: Flags) -> bool {
    // A copy of the look for each setting: a setting asked at every word had cost the
    // scanner 2 % on API-like bodies, which have no flags.
    match flags {
        Flags::Read => may_hold_assignments_reading::<true>(text.as_bytes()),
        Flags::Ignored => may_hold_assignments_reading::<false>(text.as_bytes()),
    }
}

/// [`may_hold_assignments`], reading flags or not.
#[inline]
fn may_hold_assignments_reading<const FLAGS: bool>(bytes: &[u8]) -> bool {
    if bytes.len() < MIN_ASSIGNMENT_BYTES {
        return false;
    }
    let mut from = 0;
    while let Some(mark) = next_assignment_mark::<FLAGS>(bytes, from) {
        let sets = if bytes[mark] == b'-' {
            flag_at(bytes, mark).is_some()
        } else {
            value_start(bytes, mark).is_some()
        };
        if sets {
            return true;
        }
        from = mark + 1;
    }
    false
}

/// Whether a search for assignments reads flags (`--password ...`) too: a text without `--`
/// holds none, and most API bodies have none, so their fields are spared the look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flags {
    Read,
    Ignored,
}

/// Where the first `=`, `:` or, when `FLAGS` are read, `--` at or after `from` is, a word at a
/// time: most values are short, and a vector search costs more to set up than it saves on them
/// (it had cost the scanner 5 % on API-like bodies). Single dashes (dates, ids, UUIDs) are
/// passed over in the word rather than each handed to the look for a flag.
#[inline]
fn next_assignment_mark<const FLAGS: bool>(bytes: &[u8], mut from: usize) -> Option<usize> {
    const LAST_BYTE_HIGH: u64 = 0x80 << 56;
    while let Some(rest) = bytes.get(from..).filter(|rest| !rest.is_empty()) {
        let word = le_word(rest);
        let mut double_dashes = 0;
        if FLAGS {
            let dashes = bytes_equal_to(word, b'-');
            // A dash whose next byte is one too, in the word or, for its last byte, past it.
            double_dashes = dashes & (dashes >> 8);
            if dashes & LAST_BYTE_HIGH != 0 && rest.get(8) == Some(&b'-') {
                double_dashes |= LAST_BYTE_HIGH;
            }
        }
        let marks = bytes_equal_to(word, b'=') | bytes_equal_to(word, b':') | double_dashes;
        if marks != 0 {
            let at = from + marks.trailing_zeros() as usize / 8;
            // Each search's lowest mark is exact, but a pair's may be a true dash paired with
            // a byte flagged above it, or a byte flagged above a true dash with no pair.
            let exact = match bytes[at] {
                b'=' | b':' => true,
                b'-' => bytes.get(at + 1) == Some(&b'-'),
                _ => false,
            };
            if exact {
                return Some(at);
            }
            from = at + 1;
            continue;
        }
        from += 8;
    }
    None
}

/// Names set to values in running text, the way programs write them where no structure
/// says so: `DB_PASSWORD=...` in an environment entry or a line of text, `--password=...` and
/// `--password ...` in a command line,
/// `password: "..."` among a GraphQL query's arguments, `password: ...` in YAML,
/// `'password': '...'` in a printed dictionary, `"password" => "..."` in a printed Ruby hash.
/// Calls `visit` with each name and where its value lies in `text`.
///
/// A name is letters, digits, `_`, `-` and `.`, quoted or not, and starts with a letter or `_`
/// once leading dashes are dropped. A value is quoted (to its closing quote, or to the line's
/// end), or runs to a space or to a mark that ends values in these forms after `=`, and to
/// the line's end after `:` (YAML's plain values hold spaces). Nothing spans lines: a quote
/// left open on one line does not take the next line's names into its value, and no search
/// runs past its line. Reading resumes after each value and a name is read back at most
/// [`MAX_NAME_BYTES`], so the work is linear.
pub fn assignments<'a>(text: &'a str, flags: Flags, visit: &mut impl FnMut(&'a str, Range<usize>)) {
    let mut line_start = 0;
    while line_start < text.len() {
        let line_end = memchr::memchr2(b'\r', b'\n', &text.as_bytes()[line_start..])
            .map_or(text.len(), |at| line_start + at);
        // Line breaks are ASCII: the line lies on character boundaries.
        let line = &text[line_start..line_end];
        assignments_in_line(line, flags, &mut |name, value| {
            visit(name, line_start + value.start..line_start + value.end);
        });
        line_start = line_end + 1;
    }
}

/// [`assignments`] in one line of text.
fn assignments_in_line<'a>(
    line: &'a str,
    flags: Flags,
    visit: &mut impl FnMut(&'a str, Range<usize>),
) {
    let bytes = line.as_bytes();
    let mut from = 0;
    let next_mark = |from| match flags {
        Flags::Read => next_assignment_mark::<true>(bytes, from),
        Flags::Ignored => next_assignment_mark::<false>(bytes, from),
    };
    while let Some(mark) = next_mark(from) {
        from = mark + 1;
        if bytes[mark] == b'-' {
            if let Some((name, value)) = flag_at(bytes, mark) {
                from = value.end;
                // Only ASCII bytes make a flag's name: it lies on character boundaries.
                visit(&line[name], value);
            }
            continue;
        }
        let Some(after) = value_start(bytes, mark) else {
            continue;
        };
        let Some(name) = name_before(line, mark) else {
            continue;
        };
        let Some(value) = value_after(bytes, after, bytes[mark] == b':') else {
            continue;
        };
        from = value.end.max(from);
        visit(name, value);
    }
}

/// Where the value after the mark at `mark` would start, or `None` for marks that set nothing.
fn value_start(bytes: &[u8], mark: usize) -> Option<usize> {
    match (bytes[mark], bytes.get(mark + 1)) {
        // Ruby's `=>`.
        (b'=', Some(b'>')) => Some(mark + 2),
        // `==` compares; `://` starts a URL, `::` a path in code or an IPv6 address.
        (b'=', Some(b'=')) | (b':', Some(b'/' | b':')) => None,
        // A time (`10:20`), a port, a ratio: told at once, as most colons in values are.
        (b':', Some(b'0'..=b'9')) if mark > 0 && bytes[mark - 1].is_ascii_digit() => None,
        _ => Some(mark + 1),
    }
}

/// Whether `byte` may be part of a name written in running text or as a flag: letters,
/// digits, `_`, `-` and `.` (`db.password`, `DB_PASSWORD`, `db-password`).
pub fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.')
}

/// The name an assignment's mark at `mark` follows, if one does.
fn name_before(text: &str, mark: usize) -> Option<&str> {
    let bytes = text.as_bytes();
    let floor = mark.saturating_sub(MAX_NAME_BYTES);
    let mut end = mark;
    while end > floor && matches!(bytes[end - 1], b' ' | b'\t') {
        end -= 1;
    }
    let quote = match end.checked_sub(1).map(|at| bytes[at]) {
        Some(q @ (b'"' | b'\'')) => {
            end -= 1;
            Some(q)
        }
        _ => None,
    };
    let mut start = end;
    while start > floor && is_name_byte(bytes[start - 1]) {
        start -= 1;
    }
    let bounded = match quote {
        Some(q) => start > 0 && bytes[start - 1] == q,
        // Stopped by a byte that is not a name's, not by the bound.
        None => start == 0 || !is_name_byte(bytes[start - 1]),
    };
    // Only ASCII bytes were passed over: `start..end` lies on character boundaries.
    let name = text[start..end].trim_start_matches(['-', '.']);
    let starts_as_name = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    (bounded && starts_as_name).then_some(name)
}

/// The name and the value of a flag that starts at the `-` at `mark` and takes its value after
/// a space (`--password s3cret`), if one does: two dashes at a word's start, a name, spaces,
/// and a value that is no other flag. One dash is not enough (`-u root` is as often a
/// switch followed by an operand as a name and its value).
fn flag_at(line: &[u8], mark: usize) -> Option<(Range<usize>, Range<usize>)> {
    let at_word_start = mark == 0 || matches!(line[mark - 1], b' ' | b'\t' | b'"' | b'\'');
    if !at_word_start || line.get(mark + 1) != Some(&b'-') {
        return None;
    }
    let start = mark + 2;
    let name_len = line[start..]
        .iter()
        .take(MAX_NAME_BYTES + 1)
        .take_while(|&&b| is_name_byte(b))
        .count();
    if name_len > MAX_NAME_BYTES || !line.get(start).is_some_and(u8::is_ascii_alphabetic) {
        return None;
    }
    let end = start + name_len;
    let spaces = line[end..]
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t'))
        .count();
    if spaces == 0 || line.get(end + spaces) == Some(&b'-') {
        return None;
    }
    Some((start..end, value_after(line, end + spaces, false)?))
}

/// Where the value after an assignment's mark lies in its line (its first byte at or after
/// `at`); `None` if it is empty or holds no letter or digit (YAML's `|`, an empty `""`).
fn value_after(line: &[u8], mut at: usize, to_line_end: bool) -> Option<Range<usize>> {
    while at < line.len() && matches!(line[at], b' ' | b'\t') {
        at += 1;
    }
    let value = match line.get(at)? {
        &quote @ (b'"' | b'\'') => {
            let start = at + 1;
            let mut end = start;
            loop {
                match memchr::memchr(quote, &line[end..]) {
                    // Escaped (`\"`): part of the value.
                    Some(i) if end + i > start && line[end + i - 1] == b'\\' => end += i + 1,
                    Some(i) => break start..end + i,
                    None => break start..line.len(),
                }
            }
        }
        _ if to_line_end => at..at + line[at..].trim_ascii_end().len(),
        _ => {
            let end = line[at..]
                .iter()
                .position(|b| BARE_VALUE_ENDS.contains(b))
                .map_or(line.len(), |i| at + i);
            at..end
        }
    };
    line[value.clone()]
        .iter()
        .any(u8::is_ascii_alphanumeric)
        .then_some(value)
}

/// Bytes that end a value written bare after `=`: spaces, and what separates entries or closes
/// a list, a call or a string around it.
const BARE_VALUE_ENDS: &[u8] = b" \t\r\n,;&)}]\"'<>`";

/// `%XX` and `+` decoded; invalid escapes kept as written; invalid UTF-8 replaced.
pub fn percent_decode(text: &str) -> Cow<'_, str> {
    if !text.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(text);
    }
    Cow::Owned(decode_percent(text, true))
}

/// `text` with its `%XX` escapes decoded (`+` kept: outside forms and queries it is a plus),
/// if it has one. URLs anywhere are written so: a path, a `Referer`, a link in a JSON string
/// (`?email=ann%40example.com`), where the value is plain to a reader but not to a pattern.
pub fn escapes_decoded(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let is_hex = |at: usize| bytes.get(at).is_some_and(u8::is_ascii_hexdigit);
    memchr::memchr_iter(b'%', bytes)
        .any(|at| is_hex(at + 1) && is_hex(at + 2))
        .then(|| decode_percent(text, false))
}

/// Values shorter than this are not read as base64: the shortest text worth decoding, an
/// email like `a@b.co`, takes 8 characters, and shorter runs of letters are mostly words.
pub const MIN_BASE64_BYTES: usize = 12;

/// `text` decoded from base64 (standard or URL-safe alphabet, padded or not), if all of it is
/// base64 and it decodes to text: printable UTF-8, line breaks and tabs allowed. Gateways pass
/// the caller's identity on so (`X-Userinfo`, `X-Ms-Client-Principal`: base64 of JSON claims),
/// links carry an address so (`?u=YW5uQGV4YW1wbGUuY29t`): plain to anyone who decodes it,
/// invisible to a pattern. Random tokens, hashes, ids and words fail at once: the first four
/// characters must decode to three printable ASCII bytes before anything else is looked at.
pub fn base64_decoded(text: &str) -> Option<String> {
    use base64::{
        alphabet,
        engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
        Engine,
    };
    const CONFIG: GeneralPurposeConfig = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, CONFIG);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, CONFIG);
    if !may_be_base64(text) {
        return None;
    }
    let unpadded = text.trim_end_matches('=');
    if text.len() - unpadded.len() > 2 || unpadded.len() % 4 == 1 {
        return None;
    }
    let (mut standard, mut url_safe) = (false, false);
    for &byte in unpadded.as_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => {}
            b'+' | b'/' => standard = true,
            b'-' | b'_' => url_safe = true,
            _ => return None,
        }
    }
    let engine = match (standard, url_safe) {
        (true, true) => return None,
        (false, true) => &URL_SAFE,
        _ => &STANDARD,
    };
    let decoded = String::from_utf8(engine.decode(unpadded).ok()?).ok()?;
    let is_text = |c: char| !c.is_control() || matches!(c, '\n' | '\r' | '\t');
    decoded.chars().all(is_text).then_some(decoded)
}

/// Whether `text` is long enough to be read as base64 and starts as base64 of text: the look
/// every field gets, which nearly all fail.
#[inline]
pub fn may_be_base64(text: &str) -> bool {
    text.len() >= MIN_BASE64_BYTES
        && text
            .as_bytes()
            .first_chunk::<4>()
            .is_some_and(starts_as_text)
}

/// Whether four base64 characters decode to three printable ASCII bytes (or line breaks and
/// tabs): the start of text, which random bytes are one time in twenty.
fn starts_as_text(head: &[u8; 4]) -> bool {
    // The first character alone gives the first byte's top six bits, which most fields fail
    // (digits, most lower-case letters): 0x20-0x7F are 8-31, tabs and line breaks 2-3.
    if !matches!(BASE64_VALUES[usize::from(head[0])], 2..=3 | 8..=31) {
        return false;
    }
    let values = head.map(|byte| BASE64_VALUES[usize::from(byte)]);
    if values.contains(&NOT_BASE64) {
        return false;
    }
    let bits = values
        .iter()
        .fold(0u32, |bits, &value| bits << 6 | u32::from(value));
    bits.to_be_bytes()[1..]
        .iter()
        .all(|&b| matches!(b, b' '..=b'~' | b'\t' | b'\n' | b'\r'))
}

/// What each byte stands for in base64, either alphabet; [`NOT_BASE64`] for the others.
const BASE64_VALUES: [u8; 256] = {
    let mut values = [NOT_BASE64; 256];
    let mut value = 0;
    while value < 26 {
        values[(b'A' + value) as usize] = value;
        values[(b'a' + value) as usize] = value + 26;
        if value < 10 {
            values[(b'0' + value) as usize] = value + 52;
        }
        value += 1;
    }
    values[b'+' as usize] = 62;
    values[b'-' as usize] = 62;
    values[b'/' as usize] = 63;
    values[b'_' as usize] = 63;
    values
};

const NOT_BASE64: u8 = 0xFF;

fn decode_percent(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
        match bytes[i] {
            b'%' => match (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assigned(text: &str) -> Vec<(&str, &str)> {
        let mut got = Vec::new();
        assignments(text, Flags::Read, &mut |name, value| {
            got.push((name, value))
        });
        got.into_iter()
            .map(|(name, value)| (name, &text[value]))
            .collect()
    }

    #[test]
    fn assignment_marks_are_every_equals_colon_and_double_dash() {
        // Texts of the bytes that meet in the word-at-a-time search, at every alignment:
        // a dash before a comma (which the search for dashes flags too: `-` XOR `,` is 1,
        // which borrows), pairs across the word's end.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // The high bits: xorshift's low ones repeat each other.
            state >> 40
        };
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let text: Vec<u8> = (0..len)
                .map(|_| b"--,=:;a "[(next() % 8) as usize])
                .collect();
            let mut found = Vec::new();
            let mut from = 0;
            while let Some(mark) = next_assignment_mark::<true>(&text, from) {
                found.push(mark);
                from = mark + 1;
            }
            let expected: Vec<usize> = (0..text.len())
                .filter(|&at| match text[at] {
                    b'=' | b':' => true,
                    b'-' => text.get(at + 1) == Some(&b'-'),
                    _ => false,
                })
                .collect();
            assert_eq!(found, expected, "{:?}", String::from_utf8_lossy(&text));
        }
    }

    #[test]
    fn assignments_in_running_text_are_read_with_their_names() {
        for (text, expected) in [
            ("DB_PASSWORD=s3cret", vec![("DB_PASSWORD", "s3cret")]),
            (
                "--db-password=s3cret --verbose",
                vec![("db-password", "s3cret")],
            ),
            (
                r#"login(user: "ann", password: "s3 cr\"et") { token }"#,
                vec![("user", "ann"), ("password", r#"s3 cr\"et"#)],
            ),
            (
                "db:\n  password: s3 cret # old\n  port: 5432\n",
                vec![("password", "s3 cret # old"), ("port", "5432")],
            ),
            (
                "{'password': 's3cret', \"api_key\" => \"k3y\"}",
                vec![("password", "s3cret"), ("api_key", "k3y")],
            ),
            (
                "token = abc; path=/x",
                vec![("token", "abc"), ("path", "/x")],
            ),
            // A quote left open runs to the line's end, not into the next line's names.
            ("password: \"s3cret\nnext", vec![("password", "s3cret")]),
            (
                "note: \"it's\npassword: \"s3cret\"\n",
                vec![("note", "it's"), ("password", "s3cret")],
            ),
            // Flags and their values, in a command line written as one string; a switch
            // before an operand reads as a name and its value too, one that says nothing.
            (
                "mysqldump --password s3cret --user=root --single-transaction db",
                vec![
                    ("password", "s3cret"),
                    ("user", "root"),
                    ("single-transaction", "db"),
                ],
            ),
            ("sh -c '--token  \"a b\" -v'", vec![("token", "a b")]),
        ] {
            assert_eq!(assigned(text), expected, "{text}");
        }
        // Not assignments: URLs, times, comparisons, names that do not start as names, values
        // with nothing in them, a name longer than any name (read back no further).
        for text in [
            "https://api.test/v1",
            "2024-05-01T10:20:30Z",
            "a == b",
            "std::mem",
            "1password=x",
            "password=\"\"",
            "mode: |",
            &format!("{}=x", "n".repeat(MAX_NAME_BYTES + 1)),
            // Not flags with values: a flag followed by a flag, one dash, dashes inside a
            // word, a name that starts with a digit, a flag at the line's end, a name longer
            // than any name.
            "--password --verbose",
            "-p s3cret",
            "a--password s3cret",
            "--1password s3cret",
            "echo --password",
            &format!("--{} x", "n".repeat(MAX_NAME_BYTES + 1)),
        ] {
            assert_eq!(assigned(text), vec![], "{text}");
        }
    }

    #[test]
    fn a_multipart_body_names_its_parts() {
        let text = "preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\n\
                    hunter2\r\n--XyZ\r\nContent-Disposition: form-data; name=\"doc\"; \
                    filename=\"ann@example.com.pdf\"\r\nContent-Type: application/pdf\r\n\r\n\
                    %PDF-1.4\r\n--XyZ--\r\n";
        let content_type = "multipart/form-data; boundary=\"XyZ\"";
        let mut got = Vec::new();
        fields(Source::Body(Some(content_type)), text, &mut |field| {
            assert_eq!(&text[field.raw.clone()], field.text);
            got.push((field.key.map(str::to_string), field.text.to_string()));
        });
        let named = |key: Option<&str>, text: &str| (key.map(str::to_string), text.to_string());
        assert_eq!(
            got,
            vec![
                named(None, "preamble"),
                named(
                    None,
                    "\r\nContent-Disposition: form-data; name=\"password\""
                ),
                named(Some("password"), "hunter2"),
                named(
                    None,
                    "\r\nContent-Disposition: form-data; name=\"doc\"; \
                     filename=\"ann@example.com.pdf\"\r\nContent-Type: application/pdf"
                ),
                named(Some("doc"), "%PDF-1.4"),
                named(None, "--"),
            ]
        );
        assert_eq!(
            multipart_boundary("multipart/mixed; boundary=ab; x=y"),
            Some("ab")
        );
        assert_eq!(multipart_boundary("multipart/form-data"), None);
        assert_eq!(multipart_boundary("text/plain; boundary=ab"), None);
    }

    #[test]
    fn base64_of_text_is_decoded_and_nothing_else() {
        for (text, decoded) in [
            // Standard, padded; URL-safe, unpadded; JSON with a line break.
            ("YW5uLmxlZUBleGFtcGxlLmNvbQ==", "ann.lee@example.com"),
            ("YW5uLmxlZUBleGFtcGxlLmNvbQ", "ann.lee@example.com"),
            ("eyJhIjoiPz8_In0", r#"{"a":"???"}"#),
            ("eyJhIjoiPz8/In0=", r#"{"a":"???"}"#),
            ("ewogICJhIjogMQp9", "{\n  \"a\": 1\n}"),
        ] {
            assert_eq!(base64_decoded(text).as_deref(), Some(decoded), "{text}");
        }
        for text in [
            // Too short; not all base64; both alphabets; a length no encoding has; too much
            // padding.
            "YW5uQGIuaW8",
            "YW5uLmxlZUBleGFtcGxlLmNvbQ==&x",
            "eyJhIjoiPz8_In0+",
            "YW5uLmxlZUBleGFtcGxlLmNvbQxyz",
            "YW5uLmxlZUBleGFtcGxlLmNvbQ===",
            // Bytes, not text: a hash, random bytes, control characters.
            "9f86d081884c7d659a2feaa0c55ad015",
            "q83vASNFZ4mrze8BI0VniQ",
            "YWJjAGRlZmdoaWprbA",
            // Words, numbers, ids.
            "applicationjson",
            "12345678901234",
            "550e8400-e29b-41d4-a716-446655440000",
        ] {
            assert_eq!(base64_decoded(text), None, "{text}");
        }
    }

    fn collect(source: Source<'_>, text: &str) -> Vec<(Part, Option<String>, String, String)> {
        let mut out = Vec::new();
        fields(source, text, &mut |f| {
            out.push((
                f.part,
                f.name_string(),
                f.text.to_string(),
                text[f.raw.clone()].to_string(),
            ))
        });
        out
    }

    #[test]
    fn queries_and_forms_are_pairs_with_decoded_values() {
        let got = collect(Source::Query, "q=a%40b.io&page=2&flag&x=");
        assert_eq!(
            got,
            [
                (
                    Part::Query,
                    Some("q".into()),
                    "a@b.io".into(),
                    "a%40b.io".into()
                ),
                (Part::Query, Some("page".into()), "2".into(), "2".into()),
                (Part::Query, None, "flag".into(), "flag".into()),
            ]
        );
        let form = collect(
            Source::Body(Some("application/x-www-form-urlencoded")),
            "password=p+w",
        );
        assert_eq!(form[0].0, Part::Form);
        assert_eq!(form[0].2, "p w");
    }

    #[test]
    fn cookies_are_named_and_set_cookie_attributes_skipped() {
        let got = collect(Source::Header("Cookie"), "sid=abc; theme=dark");
        assert_eq!(got[0].1.as_deref(), Some("sid"));
        assert_eq!(got[0].3, "abc");
        assert_eq!(got[1].3, "dark");
        let set = collect(Source::Header("set-cookie"), "sid=abc; Path=/; Domain=x.io");
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn bodies_are_read_by_content_type() {
        let json = collect(
            Source::Body(Some("application/json")),
            r#"{"a":{"b":"c\"d"}}"#,
        );
        assert_eq!(json[0].1.as_deref(), Some("$.a.b"));
        assert_eq!(json[0].2, "c\"d");
        assert_eq!(json[0].3, r#"c\"d"#);
        let sniffed = collect(Source::Body(None), r#" [1]"#);
        assert_eq!(sniffed[0].0, Part::Json);
        let text = collect(Source::Body(Some("text/plain")), "hello");
        assert_eq!(text[0].0, Part::Body);
        let plist = "<plist><dict><key>password</key><string>x</string></dict></plist>";
        for (content_type, text) in [
            ("application/x-plist", plist),
            ("text/plain", &format!("<?xml version=\"1.0\"?>{plist}")),
        ] {
            let fields = collect(Source::Body(Some(content_type)), text);
            assert!(
                fields.iter().all(|field| field.0 == Part::Markup),
                "{content_type}: {fields:?}"
            );
        }
    }
}
