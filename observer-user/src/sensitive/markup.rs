//! XML and HTML bodies cut into named fields: an element's text under the element's name, an
//! attribute's value under the attribute's, and a form control's value under its `name`
//! (`<input name="csrf_token" value="...">`). SOAP and XML APIs carry `<password>` and
//! `<apiKey>` as JSON carries members, and a field's name must speak for the value there too.
//!
//! Not a parser: one pass that looks at tags, never fails, and hands out every text and value
//! in some field (comments, CDATA, declarations and text outside elements included, without a
//! name), and every element or attribute name that may hold data (`Contact: <ann@x.io>` reads
//! as a tag), so nothing is scanned less than as plain text. Character references (`&#64;`,
//! `&amp;`) are decoded: a text that needs it is a decoded field, replaced whole.

use std::{borrow::Cow, ops::Range};

use super::{
    fields::{Field, Part},
    json,
};

/// The longest character reference read, between `&` and `;` (`&#x10FFFF;` is 8).
const MAX_REFERENCE_BYTES: usize = 10;

/// Attributes of one tag looked at for a form control's name and value; a tag with more is
/// read attribute by attribute all the same, the rest without the pairing.
const MAX_PAIRED_ATTRIBUTES: usize = 16;

/// The name a field is read under, with the name that lends it what it says.
#[derive(Debug, Clone, Copy)]
struct FieldName<'t> {
    key: &'t str,
    parent: Option<&'t str>,
}

impl<'t> FieldName<'t> {
    fn of(key: &'t str) -> FieldName<'t> {
        FieldName { key, parent: None }
    }
}

/// Elements whose text names the value in the element after them: a property list's
/// `<key>password</key><string>...</string>` (Apple's plists, as APIs return them) and an
/// XML-RPC struct's `<name>password</name><value>...</value>`.
const LABEL_ELEMENTS: [&str; 2] = ["key", "name"];

/// Elements a label's value is written in: XML-RPC's `value` (its text, or its type
/// element's: `<value><string>...</string></value>`) and a property list's scalars. A label
/// followed by anything else (`<name>Ann</name><email>...`, a person's name in a record)
/// names nothing.
const LABELLED_ELEMENTS: [&str; 6] = ["value", "string", "integer", "real", "data", "date"];

/// A label's text, waiting for the value it names.
#[derive(Clone, Copy)]
enum Label<'t> {
    /// Read in a label element, not yet closed.
    Read(&'t str),
    /// Closed: names the text of a labelled element if that is the next element.
    Closed(&'t str),
    /// Inside the labelled element: names its next text.
    Naming(&'t str),
}

/// Calls `visit` with every field of `text`, read as XML or HTML.
/// Out of line: see `fields::multipart_fields`.
#[inline(never)]
pub fn fields(text: &str, visit: &mut impl FnMut(&Field<'_>)) {
    let bytes = text.as_bytes();
    // The name of the text that comes next: the last start tag's, until an end tag.
    let mut element: Option<FieldName<'_>> = None;
    let mut label: Option<Label<'_>> = None;
    let mut at = 0;
    while at < bytes.len() {
        let Some(open) = memchr::memchr(b'<', &bytes[at..]).map(|i| at + i) else {
            emit(text, at..bytes.len(), element, visit);
            break;
        };
        let between = text[at..open].trim();
        if !between.is_empty() {
            label = match (label, element) {
                (Some(Label::Naming(name)), Some(value)) => {
                    let named = FieldName {
                        key: name,
                        parent: Some(value.key),
                    };
                    emit(text, at..open, Some(named), visit);
                    None
                }
                (_, Some(FieldName { key, parent: None }))
                    if LABEL_ELEMENTS.iter().any(|l| l.eq_ignore_ascii_case(key)) =>
                {
                    emit(text, at..open, element, visit);
                    Some(Label::Read(between))
                }
                _ => {
                    emit(text, at..open, element, visit);
                    None
                }
            };
        }
        let rest = &bytes[open..];
        if rest.starts_with(b"<!--") {
            let end = find(bytes, open + 4, b"-->");
            emit(text, open + 4..end, None, visit);
            at = (end + 3).min(bytes.len());
        } else if rest.starts_with(b"<![CDATA[") {
            let end = find(bytes, open + 9, b"]]>");
            emit(text, open + 9..end, element, visit);
            at = (end + 3).min(bytes.len());
        } else if rest
            .get(1)
            .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
        {
            let end = tag_end(bytes, open + 1);
            let (text_name, self_closing) = start_tag(text, open + 1..end, visit);
            element = (!self_closing).then_some(text_name);
            label = match label {
                Some(Label::Closed(name) | Label::Naming(name))
                    if !self_closing
                        && LABELLED_ELEMENTS
                            .iter()
                            .any(|l| l.eq_ignore_ascii_case(text_name.key)) =>
                {
                    Some(Label::Naming(name))
                }
                _ => None,
            };
            at = (end + 1).min(bytes.len());
        } else if rest.get(1) == Some(&b'/') {
            // An end tag names an element, nothing else.
            let end = tag_end(bytes, open + 2);
            let name_end = (open + 2..end)
                .find(|&i| bytes[i].is_ascii_whitespace())
                .unwrap_or(end);
            name_holding_data(text, open + 2..name_end, visit);
            element = None;
            label = match label {
                Some(Label::Read(name)) => Some(Label::Closed(name)),
                _ => None,
            };
            at = end + 1;
        } else if rest.get(1).is_some_and(|b| matches!(b, b'!' | b'?')) {
            // A declaration or processing instruction: read as text, without a name.
            let end = tag_end(bytes, open + 1);
            emit(text, open..end, None, visit);
            at = end + 1;
        } else {
            // A `<` that opens nothing (`a < b`): text.
            emit(text, open..open + 1, element, visit);
            at = open + 1;
        }
    }
}

/// Where `needle` starts at or after `from`, or the text's end.
fn find(bytes: &[u8], from: usize, needle: &[u8]) -> usize {
    memchr::memmem::find(&bytes[from.min(bytes.len())..], needle).map_or(bytes.len(), |i| from + i)
}

/// The `>` ending a tag whose name starts at `from`, outside quoted attribute values; the
/// text's end if there is none.
fn tag_end(bytes: &[u8], from: usize) -> usize {
    let mut quote = None;
    for (i, &byte) in bytes.iter().enumerate().skip(from) {
        match (quote, byte) {
            (None, b'"' | b'\'') => quote = Some(byte),
            (Some(q), _) if byte == q => quote = None,
            (None, b'>') => return i,
            _ => {}
        }
    }
    bytes.len()
}

/// Reads the start tag in `span` (after its `<`): visits its attribute values, returns the
/// name the element's text is read under and whether the tag closes itself.
fn start_tag<'t>(
    text: &'t str,
    span: Range<usize>,
    visit: &mut impl FnMut(&Field<'_>),
) -> (FieldName<'t>, bool) {
    let bytes = text.as_bytes();
    let is_name_byte = |b: u8| !b.is_ascii_whitespace() && !matches!(b, b'=' | b'/' | b'>');
    let name_end = (span.start..span.end)
        .find(|&i| !is_name_byte(bytes[i]))
        .unwrap_or(span.end);
    name_holding_data(text, span.start..name_end, visit);
    let name = local(&text[span.start..name_end]);
    let self_closing = span.end > span.start && bytes[span.end - 1] == b'/';
    // (attribute name, value span) of the first few, to pair a control's name and value.
    let mut attributes: Vec<(&str, Range<usize>)> = Vec::new();
    let mut i = name_end;
    while i < span.end {
        if !is_name_byte(bytes[i]) {
            i += 1;
            continue;
        }
        let attribute_start = i;
        while i < span.end && is_name_byte(bytes[i]) {
            i += 1;
        }
        name_holding_data(text, attribute_start..i, visit);
        let attribute = local(&text[attribute_start..i]);
        while i < span.end && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= span.end || bytes[i] != b'=' {
            continue;
        }
        i += 1;
        while i < span.end && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let value = match bytes.get(i) {
            Some(&quote @ (b'"' | b'\'')) if i < span.end => {
                let end =
                    memchr::memchr(quote, &bytes[i + 1..span.end]).map_or(span.end, |e| i + 1 + e);
                let value = i + 1..end;
                i = end + 1;
                value
            }
            _ => {
                let start = i;
                while i < span.end && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' {
                    i += 1;
                }
                start..i
            }
        };
        if attributes.len() < MAX_PAIRED_ATTRIBUTES {
            attributes.push((attribute, value));
        } else {
            emit(text, value, Some(FieldName::of(attribute)), visit);
        }
    }
    // A form control's value is named by its `name` (or `id`): `<input name="pin" value=..>`,
    // a setting's by its `key` (`<add key="DbPassword" value=..>`, as .NET's configuration
    // is written); a password control's by its type, whatever its name says (`name="field_3"`,
    // or none).
    let attribute_text = |wanted: &str| {
        attributes
            .iter()
            .find(|(attribute, _)| attribute.eq_ignore_ascii_case(wanted))
            .and_then(|(_, span)| text.get(span.clone()))
    };
    let password_control =
        attribute_text("type").is_some_and(|kind| kind.trim().eq_ignore_ascii_case("password"));
    let control = if password_control {
        Some("password")
    } else {
        ["name", "id", "key"].into_iter().find_map(attribute_text)
    };
    // A `key` that names a value or the element's text is a name, not a secret, though
    // alone it is one (`<item key="..."/>`, as `{"key": "..."}` holds API keys): read by its
    // shape only, it no longer hid every setting's name (`<add key="Environment" ...>`).
    let names_by_key = attribute_text("value").is_some() || !self_closing;
    for (attribute, value) in &attributes {
        let name = match control {
            Some(control) if attribute.eq_ignore_ascii_case("value") => Some(control),
            _ if names_by_key && attribute.eq_ignore_ascii_case("key") => None,
            _ => Some(*attribute),
        };
        emit(text, value.clone(), name.map(FieldName::of), visit);
    }
    // An element's text is named by its `name` or `key` (`<entry key="password">`, as Java's
    // properties and .NET's settings are written), its own name lending what it says
    // (`<password name="db">`). An `id` names nothing: it is the element's, not its text's.
    let text_name = match ["name", "key"].into_iter().find_map(attribute_text) {
        Some(key) => FieldName {
            key,
            parent: Some(name),
        },
        None => FieldName::of(name),
    };
    (text_name, self_closing)
}

/// Visits the name at `span` as a field without a name when it may hold data (a digit, an `@`,
/// a token's length), as JSON keys are read: a name is text a sender chose too. Judged
/// without its namespace prefix, whose colon would make every `soap:Body` a candidate.
fn name_holding_data(text: &str, span: Range<usize>, visit: &mut impl FnMut(&Field<'_>)) {
    if text
        .get(span.clone())
        .is_some_and(|name| json::key_may_hold_data(local(name).as_bytes()))
    {
        emit(text, span, None, visit);
    }
}

/// A name without its namespace prefix (`soap:Body` is `Body`).
fn local(name: &str) -> &str {
    name.rsplit_once(':').map_or(name, |(_, local)| local)
}

/// Visits `text[span]` as a field under `name`, unless it is only white space; character
/// references decoded.
fn emit(
    text: &str,
    span: Range<usize>,
    name: Option<FieldName<'_>>,
    visit: &mut impl FnMut(&Field<'_>),
) {
    let Some(raw) = text.get(span.clone()) else {
        return;
    };
    let lead = raw.len() - raw.trim_start().len();
    let value = raw.trim();
    if value.is_empty() {
        return;
    }
    let raw = span.start + lead..span.start + lead + value.len();
    let decoded = decode_references(value);
    let key = name.map(|name| name.key);
    visit(&Field {
        part: Part::Markup,
        name: key,
        json: None,
        key,
        parent_key: name.and_then(|name| name.parent),
        text: &decoded,
        raw,
        decoded: matches!(decoded, Cow::Owned(_)),
        escaped: None,
        bare: false,
    });
}

/// `text` with its character references (`&amp;`, `&#64;`, `&#x40;`) decoded; unknown ones
/// kept as written.
fn decode_references(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        // A reference is short: looking no further keeps a run of `&` linear.
        let end = rest.as_bytes()[1..]
            .iter()
            .take(MAX_REFERENCE_BYTES + 1)
            .position(|&b| b == b';');
        let decoded = end.and_then(|end| {
            let reference = &rest[1..1 + end];
            let character = match reference {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "commat" => Some('@'),
                "period" => Some('.'),
                _ => reference
                    .strip_prefix("#x")
                    .or_else(|| reference.strip_prefix("#X"))
                    .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                    .or_else(|| reference.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            }?;
            Some((character, end + 2))
        });
        match decoded {
            Some((character, len)) => {
                out.push(character);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    if out == text {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(text: &str) -> Vec<(Option<String>, String, bool)> {
        let mut got = Vec::new();
        fields(text, &mut |field| {
            if !field.decoded {
                assert_eq!(&text[field.raw.clone()], field.text, "raw span");
            }
            got.push((
                field.key.map(str::to_string),
                field.text.to_string(),
                field.decoded,
            ));
        });
        got
    }

    fn field(key: Option<&str>, text: &str, decoded: bool) -> (Option<String>, String, bool) {
        (key.map(str::to_string), text.to_string(), decoded)
    }

    #[test]
    fn elements_attributes_and_controls_name_their_values() {
        let text = r#"<?xml version="1.0"?><soap:Envelope xmlns:soap="urn:x"><soap:Body>
            <Login><user id="7">ann</user><password>hunter2</password></Login>
            <!-- key AKIAZ7QW3ERT5YUIOP2L --><note><![CDATA[a < b]]></note></soap:Body>
            </soap:Envelope><form><input type="hidden" name="csrf_token" value='Xk29sLq'/>
            <a href="mailto:ann&#64;example.com">mail</a></form> tail"#;
        assert_eq!(
            collect(text),
            vec![
                field(None, r#"<?xml version="1.0"?"#, false),
                field(Some("soap"), "urn:x", false),
                field(Some("id"), "7", false),
                field(Some("user"), "ann", false),
                field(Some("password"), "hunter2", false),
                field(None, "key AKIAZ7QW3ERT5YUIOP2L", false),
                field(Some("note"), "a < b", false),
                field(Some("type"), "hidden", false),
                field(Some("name"), "csrf_token", false),
                field(Some("csrf_token"), "Xk29sLq", false),
                field(Some("href"), "mailto:ann@example.com", true),
                field(Some("a"), "mail", false),
                field(None, "tail", false),
            ]
        );
    }

    #[test]
    fn a_name_or_key_attribute_names_its_elements_text() {
        let text = r#"<entry key="password">a</entry><secret name="db">b</secret>
            <user id="7">c</user><add key="token" value="d"/>"#;
        let mut got = Vec::new();
        fields(text, &mut |field| {
            let names = (
                field.key.map(str::to_string),
                field.parent_key.map(str::to_string),
            );
            got.push((names, field.text.to_string()));
        });
        let named = |key: &str, parent: Option<&str>, text: &str| {
            (
                (Some(key.to_string()), parent.map(str::to_string)),
                text.to_string(),
            )
        };
        assert_eq!(
            got,
            [
                ((None, None), "password".to_string()),
                named("password", Some("entry"), "a"),
                named("name", None, "db"),
                named("db", Some("secret"), "b"),
                named("id", None, "7"),
                named("user", None, "c"),
                ((None, None), "token".to_string()),
                named("token", None, "d"),
            ]
        );
    }

    #[test]
    fn a_label_element_names_the_value_after_it() {
        let plist = "<dict><key>password</key><string>a</string><key>enabled</key><true/>\
            <key>user</key> <string>b</string><key>n</key><integer>3</integer></dict>";
        let rpc = "<struct><member><name>password</name><value><string>c</string></value>\
            </member><member><name>pin</name><value>d</value></member></struct>";
        // A label followed by anything else, or by nothing, names nothing.
        let record = "<user><name>Ann</name><email>e</email><key>k</key><value></value>\
            <string>g</string></user>";
        let named = |text: &str| {
            let mut got = Vec::new();
            fields(text, &mut |field| {
                got.push((field.key.map(str::to_string), field.text.to_string()));
            });
            got
        };
        let pair = |key: &str, text: &str| (Some(key.to_string()), text.to_string());
        assert_eq!(
            named(plist),
            [
                pair("key", "password"),
                pair("password", "a"),
                pair("key", "enabled"),
                pair("key", "user"),
                pair("user", "b"),
                pair("key", "n"),
                pair("n", "3"),
            ]
        );
        assert_eq!(
            named(rpc),
            [
                pair("name", "password"),
                pair("password", "c"),
                pair("name", "pin"),
                pair("pin", "d"),
            ]
        );
        assert_eq!(
            named(record),
            [
                pair("name", "Ann"),
                pair("email", "e"),
                pair("key", "k"),
                pair("string", "g"),
            ]
        );
    }

    #[test]
    fn a_password_controls_value_is_named_by_its_type() {
        for text in [
            r#"<input type="password" value="Hunter2-Xk29">"#,
            r#"<input name="field_3" TYPE=Password value='Hunter2-Xk29'/>"#,
        ] {
            assert!(
                collect(text).contains(&field(Some("password"), "Hunter2-Xk29", false)),
                "{text}"
            );
        }
    }

    #[test]
    fn broken_markup_still_hands_out_every_value() {
        for text in [
            "<a",
            "<a href=\"x",
            "</",
            "<!-- open",
            "a < b and ann@example.com",
            "<<<>>>&#;&#xZZ;&amp",
            "<p>é &eacute; 日本</p>",
        ] {
            // No panic, and every field's span is its text (checked in `collect`); an address
            // in running text beside a stray `<` is in a field.
            let got = collect(text);
            if text.contains("ann@example.com") {
                assert!(
                    got.iter().any(|(_, t, _)| t.contains("ann@example.com")),
                    "{got:?}"
                );
            }
        }
        // Names that may hold data are read too; short names of letters are not.
        assert_eq!(
            collect(r#"Contact: <ann@example.com> <x n2="1"></ann@example.com>"#),
            vec![
                field(None, "Contact:", false),
                field(None, "ann@example.com", false),
                field(None, "n2", false),
                field(Some("n2"), "1", false),
                field(None, "ann@example.com", false),
            ]
        );
        assert_eq!(
            collect("<p>&lt;ann&commat;x.io&gt; &unknown; &#x1F600;</p>"),
            vec![field(Some("p"), "<ann@x.io> &unknown; \u{1F600}", true)]
        );
    }
}
