//! The header fields of one message as an API call holds them: by lowercased name, in name
//! order, the values of one name in the order they arrived.
//!
//! Every call carries two of these and every consumer walks them, so a map keeps all its names
//! and values in one text buffer with an index of spans beside it, sorted by name: building one
//! costs two allocations whatever its number of fields (a map of strings cost three per field,
//! plus a tree insert, ~12 % of a replay), and a message's names and values are copied into the
//! buffer all at once (see [`HeaderMap::from_headers`]).

use std::{
    fmt,
    ops::Range,
    sync::atomic::{AtomicU64, Ordering},
};

use serde::{Serialize, Serializer};

use crate::protocol::http1::{Headers, HiddenValue};

/// Messages with up to this many fields, nearly all, are sorted with their keys on the stack
/// (see [`sort_by_name`]); more are sorted with keys in a vector.
const STACK_SORTED_FIELDS: usize = 32;

/// Maps of up to this many fields are looked up by walking them, comparing names' lengths
/// before their texts: most fields differ in length from the name asked for and cost a compare
/// of two numbers, where a binary search compared texts at every step (~250 instructions a
/// lookup, and every call is looked up a dozen times). Larger maps, which only unusual or
/// hostile messages have, keep the binary search.
const WALKED_LOOKUP_MAX_FIELDS: usize = 16;

/// Header fields by lowercased name, values of a name in arrival order.
///
/// Serializes as the `BTreeMap<String, Vec<String>>` it replaced did: an object with the names
/// in order, each holding the list of its values.
#[derive(Clone, Default)]
pub struct HeaderMap {
    /// Every name and value, lowercased names first, then the values. Replacing or removing
    /// fields leaves their old text behind: it is never read again, and comparisons look at
    /// fields, not at the buffer.
    text: String,
    /// One per field, sorted by name; fields of the same name stay in arrival order and share
    /// one name span, so that telling names apart while walking the map compares two offsets
    /// rather than two strings.
    fields: Vec<FieldSpan>,
    /// Names these contents among all maps' (see [`HeaderMap::stamp`]).
    stamp: u64,
}

/// A stamp no map has had: taken whenever a map is built or changed.
fn fresh_stamp() -> u64 {
    static NEXT_STAMP: AtomicU64 = AtomicU64::new(1);
    NEXT_STAMP.fetch_add(1, Ordering::Relaxed)
}

/// Where one field's name and value lie in [`HeaderMap`]'s text.
#[derive(Clone, Debug, PartialEq)]
struct FieldSpan {
    name: Range<usize>,
    value: Range<usize>,
}

impl HeaderMap {
    /// The fields of a parsed head, names lowercased, values that are not UTF-8 made text as
    /// [`super::lossy_text`] makes it.
    pub fn from_headers(headers: &Headers) -> HeaderMap {
        let (names, values) = headers.buffers();
        let mut text = String::with_capacity(names.len() + values.len());
        text.push_str(names);
        // ASCII lowercasing changes no length, so every span stays in place.
        text.make_ascii_lowercase();
        let mut fields: Vec<FieldSpan> = headers
            .spans()
            .map(|(name, value)| FieldSpan {
                name,
                value: names.len() + value.start..names.len() + value.end,
            })
            .collect();
        match std::str::from_utf8(values) {
            // The whole buffer being text does not make each value text: one may end inside a
            // character the next one finishes. If none does, each value is the text it was.
            Ok(all)
                if headers.spans().all(|(_, value)| {
                    all.is_char_boundary(value.start) && all.is_char_boundary(value.end)
                }) =>
            {
                text.push_str(all)
            }
            _ => {
                for (field, (_, value)) in fields.iter_mut().zip(headers.iter()) {
                    let start = text.len();
                    text.push_str(&super::lossy_text(value));
                    field.value = start..text.len();
                }
            }
        }
        sort_by_name(&text, &mut fields);
        for i in 1..fields.len() {
            if text_at(&text, &fields[i].name) == text_at(&text, &fields[i - 1].name) {
                fields[i].name = fields[i - 1].name.clone();
            }
        }
        HeaderMap {
            text,
            fields,
            stamp: fresh_stamp(),
        }
    }

    /// A number that stands for this map's fields: two maps with the same stamp hold the same
    /// fields (a clone keeps it; building or changing a map takes a new one, and an empty map
    /// made by `default` has stamp 0). What was worked out from a map's fields can be kept under
    /// its stamp and found again later without comparing the texts.
    pub fn stamp(&self) -> u64 {
        self.stamp
    }

    /// Adds a value after those `name` already has (`name` is lowercased).
    pub fn append(&mut self, name: &str, value: &str) {
        let name_start = self.text.len();
        self.text.push_str(name);
        self.text[name_start..].make_ascii_lowercase();
        let mut name = name_start..self.text.len();
        let lowered = text_at(&self.text, &name);
        let at = self
            .fields
            .partition_point(|field| text_at(&self.text, &field.name) <= lowered);
        if let Some(before) = at.checked_sub(1).map(|i| &self.fields[i]) {
            if text_at(&self.text, &before.name) == lowered {
                name = before.name.clone();
                self.text.truncate(name_start);
            }
        }
        let value_start = self.text.len();
        self.text.push_str(value);
        self.stamp = fresh_stamp();
        self.fields.insert(
            at,
            FieldSpan {
                name,
                value: value_start..self.text.len(),
            },
        );
    }

    /// Makes `value` the only value of `name` (`name` is lowercased).
    pub fn insert(&mut self, name: &str, value: &str) {
        let lowered = name.to_ascii_lowercase();
        let text = &self.text;
        self.fields
            .retain(|field| text_at(text, &field.name) != lowered);
        self.append(&lowered, value);
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Whether `name` (lowercase, as every name held is) has a value.
    pub fn contains(&self, name: &str) -> bool {
        self.first(name).is_some()
    }

    /// The first value of `name` (lowercase, as every name held is).
    pub fn first(&self, name: &str) -> Option<&str> {
        self.get_all(name).next()
    }

    /// Every value of `name` (lowercase, as every name held is), in arrival order.
    pub fn get_all(&self, name: &str) -> Values<'_> {
        let start = if self.fields.len() <= WALKED_LOOKUP_MAX_FIELDS {
            self.fields
                .iter()
                .position(|field| field.name.len() == name.len() && self.name(field) == name)
        } else {
            let at = self.fields.partition_point(|field| self.name(field) < name);
            self.fields
                .get(at)
                .is_some_and(|first| self.name(first) == name)
                .then_some(at)
        };
        let same_name = start.map_or(&[][..], |start| same_name(&self.fields[start..]));
        Values {
            text: &self.text,
            fields: same_name.iter(),
        }
    }

    /// Each name, in order, with its values.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            text: &self.text,
            fields: &self.fields,
        }
    }

    /// Each name, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.iter().map(|(name, _)| name)
    }

    /// Every field as (name, value): names in order, the values of a name in arrival order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.fields
            .iter()
            .map(|field| (self.name(field), self.value(field)))
    }

    /// Replaces each value for which `rewrite(name, value)` gives a new one, asking in the
    /// order [`HeaderMap::fields`] yields them. New values are appended to the text, the old
    /// ones left behind: a map lives as long as its call.
    pub fn rewrite_values(&mut self, mut rewrite: impl FnMut(&str, &str) -> Option<String>) {
        for i in 0..self.fields.len() {
            let field = &self.fields[i];
            if let Some(new_value) = rewrite(self.name(field), self.value(field)) {
                let start = self.text.len();
                self.text.push_str(&new_value);
                self.fields[i].value = start..self.text.len();
                self.stamp = fresh_stamp();
            }
        }
    }

    fn name(&self, field: &FieldSpan) -> &str {
        text_at(&self.text, &field.name)
    }

    fn value(&self, field: &FieldSpan) -> &str {
        text_at(&self.text, &field.value)
    }
}

/// Sorts `fields` by name, stably, so that the values of a name keep their order. Each name's
/// key is made once, its first eight bytes as a number, so that most pairs compare as two
/// integers rather than two strings. A message's few fields are sorted by insertion with the
/// keys in an array beside them: `sort_by_cached_key` allocated a vector of keys for every map,
/// and with its sort that was half of building an nginx response's map of eight fields.
fn sort_by_name(text: &str, fields: &mut [FieldSpan]) {
    let key = |field: &FieldSpan| {
        let name = text_at(text, &field.name);
        (name_prefix(name), name)
    };
    if fields.len() > STACK_SORTED_FIELDS {
        fields.sort_by_cached_key(key);
        return;
    }
    let mut prefixes = [0u64; STACK_SORTED_FIELDS];
    for (prefix, field) in prefixes.iter_mut().zip(fields.iter()) {
        *prefix = name_prefix(text_at(text, &field.name));
    }
    for i in 1..fields.len() {
        // Moved down only past greater names: equal names keep their order.
        let mut at = i;
        while at > 0 {
            let (before, here) = (at - 1, at);
            let greater = match prefixes[before].cmp(&prefixes[here]) {
                std::cmp::Ordering::Equal => {
                    text_at(text, &fields[before].name) > text_at(text, &fields[here].name)
                }
                order => order == std::cmp::Ordering::Greater,
            };
            if !greater {
                break;
            }
            prefixes.swap(before, here);
            fields.swap(before, here);
            at = before;
        }
    }
}

/// The first eight bytes of `name` as a big-endian number, zero-padded: where two names' numbers
/// differ, they order the names as the texts do (a name that ends first sorts first, and so
/// does its padding), and where they are equal the texts must be compared.
fn name_prefix(name: &str) -> u64 {
    // Most names are eight bytes or longer: one load. The loop for shorter ones compiles to a
    // `memcpy` call, which every name had paid.
    if let Some(first) = name.as_bytes().first_chunk::<8>() {
        return u64::from_be_bytes(*first);
    }
    let mut prefix = [0u8; 8];
    for (slot, &byte) in prefix.iter_mut().zip(name.as_bytes()) {
        *slot = byte;
    }
    u64::from_be_bytes(prefix)
}

/// The leading fields that share the first one's name.
fn same_name(fields: &[FieldSpan]) -> &[FieldSpan] {
    let Some(first) = fields.first() else {
        return fields;
    };
    let count = fields
        .iter()
        .take_while(|field| field.name == first.name)
        .count();
    &fields[..count]
}

/// The text a span covers. Spans are made from whole strings pushed onto the text, so they
/// always lie on char boundaries and within it; `get` only guards against that changing.
fn text_at<'t>(text: &'t str, span: &Range<usize>) -> &'t str {
    text.get(span.clone()).unwrap_or_default()
}

impl<N: AsRef<str>, V: AsRef<str>> FromIterator<(N, V)> for HeaderMap {
    /// A map of `fields` as [`HeaderMap::append`] adds them.
    fn from_iter<I: IntoIterator<Item = (N, V)>>(fields: I) -> HeaderMap {
        let mut map = HeaderMap::default();
        for (name, value) in fields {
            map.append(name.as_ref(), value.as_ref());
        }
        map
    }
}

/// Equal when they hold the same fields, whatever text replaced fields left behind.
impl PartialEq for HeaderMap {
    fn eq(&self, other: &HeaderMap) -> bool {
        self.fields().eq(other.fields())
    }
}

/// Names and the bytes of their values only: values may hold credentials and personal data, and
/// `Debug` output ends up in logs and test failures.
impl fmt::Debug for HeaderMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.iter()
                    .map(|(name, values)| HiddenValue(name, values.map(str::len).sum())),
            )
            .finish()
    }
}

impl Serialize for HeaderMap {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

/// The names of a [`HeaderMap`] in order, each with its values.
#[derive(Clone)]
pub struct Iter<'a> {
    text: &'a str,
    fields: &'a [FieldSpan],
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, Values<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let name = text_at(self.text, &self.fields.first()?.name);
        let same_name = same_name(self.fields);
        self.fields = &self.fields[same_name.len()..];
        Some((
            name,
            Values {
                text: self.text,
                fields: same_name.iter(),
            },
        ))
    }
}

/// The values of one name, in arrival order.
#[derive(Clone)]
pub struct Values<'a> {
    text: &'a str,
    fields: std::slice::Iter<'a, FieldSpan>,
}

impl<'a> Iterator for Values<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        self.fields
            .next()
            .map(|field| text_at(self.text, &field.value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.fields.size_hint()
    }
}

impl ExactSizeIterator for Values<'_> {}

/// A list of the values, as the `Vec<String>` it replaced serialized.
impl Serialize for Values<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// The map the old code built: lowercased names, values in order, lossy text.
    fn reference(headers: &Headers) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in headers.iter() {
            out.entry(name.to_ascii_lowercase())
                .or_default()
                .push(String::from_utf8_lossy(value).into_owned());
        }
        out
    }

    fn as_btree(map: &HeaderMap) -> BTreeMap<String, Vec<String>> {
        map.iter()
            .map(|(name, values)| (name.to_string(), values.map(String::from).collect()))
            .collect()
    }

    fn heads() -> Vec<Headers> {
        let fields: &[&[(&str, &[u8])]] = &[
            &[],
            &[("Host", b"a"), ("Accept", b"*/*")],
            &[
                ("Set-Cookie", b"a=1"),
                ("x-b", b""),
                ("set-cookie", b"b=2"),
                ("SET-COOKIE", b"c=3"),
                ("Content-Type", "t\u{e9}xt".as_bytes()),
            ],
            // Not UTF-8, alone and in the middle of others.
            &[("X-A", b"ok"), ("X-Bad", b"a\xffb\xc3"), ("x-a", b"\xe9")],
            // Valid as a whole, not value by value: "é" split across two values.
            &[("B", b"x\xc3"), ("A", b"\xa9y")],
            // Names that share their first eight bytes, end within them, or begin one another.
            &[
                ("Content-Type", b"1"),
                ("content-length", b"2"),
                ("Content-", b"3"),
                ("content", b"4"),
                ("Contents", b"5"),
                ("x", b"6"),
                ("X-A-Very-Long-Name", b"7"),
                ("x-a-very-long-name", b"8"),
                ("content-type", b"9"),
                ("a", b"10"),
            ],
        ];
        let mut heads: Vec<Headers> = fields
            .iter()
            .map(|fields| Headers::from_fields(fields.iter().copied()))
            .collect();
        // More fields than are sorted on the stack, names repeated, in no order.
        let many: Vec<(String, Vec<u8>)> = (0..STACK_SORTED_FIELDS + 9)
            .map(|i| {
                let name = format!("X-Field-{}", (i * 7) % 13);
                (name, i.to_string().into_bytes())
            })
            .collect();
        heads.push(Headers::from_fields(
            many.iter()
                .map(|(name, value)| (name.as_str(), value.as_slice())),
        ));
        heads
    }

    #[test]
    fn holds_what_a_map_of_lowercased_names_to_lossy_values_held() {
        for headers in heads() {
            let map = HeaderMap::from_headers(&headers);
            let expected = reference(&headers);
            assert_eq!(as_btree(&map), expected);
            assert_eq!(
                serde_json::to_string(&map).unwrap(),
                serde_json::to_string(&expected).unwrap()
            );
            assert_eq!(map.is_empty(), expected.is_empty());
            for (name, values) in &expected {
                assert_eq!(map.get_all(name).collect::<Vec<_>>(), *values);
                assert_eq!(map.first(name), values.first().map(String::as_str));
            }
            assert!(!map.contains("missing"));
        }
    }

    #[test]
    fn small_and_large_maps_find_every_name_and_no_other() {
        for count in [
            1,
            3,
            WALKED_LOOKUP_MAX_FIELDS,
            WALKED_LOOKUP_MAX_FIELDS + 1,
            60,
        ] {
            // Names of a few lengths, several sharing each length, some repeated.
            let names: Vec<String> = (0..count)
                .map(|i| format!("x-{}", i % 7 * 10 + i / 3))
                .collect();
            let map: HeaderMap = names
                .iter()
                .enumerate()
                .map(|(i, name)| (name.as_str(), i.to_string()))
                .collect();
            for name in &names {
                let expected: Vec<String> = names
                    .iter()
                    .enumerate()
                    .filter(|(_, other)| *other == name)
                    .map(|(i, _)| i.to_string())
                    .collect();
                assert_eq!(
                    map.get_all(name).collect::<Vec<_>>(),
                    expected,
                    "{count} {name}"
                );
            }
            for missing in ["", "x", "x-", "x-999", "y-10", "x-1000"] {
                assert_eq!(map.get_all(missing).count(), 0, "{count} {missing}");
            }
        }
    }

    #[test]
    fn appends_and_inserts_keep_names_sorted_and_values_in_order() {
        let mut map: HeaderMap = [("b", "1"), ("A", "2"), ("b", "3")].into_iter().collect();
        map.append("C", "4");
        map.append("a", "5");
        assert_eq!(
            map.fields().collect::<Vec<_>>(),
            [("a", "2"), ("a", "5"), ("b", "1"), ("b", "3"), ("c", "4")]
        );
        assert_eq!(map.names().collect::<Vec<_>>(), ["a", "b", "c"]);
        map.insert("B", "6");
        assert_eq!(map.get_all("b").collect::<Vec<_>>(), ["6"]);
        assert_eq!(map.get_all("a").collect::<Vec<_>>(), ["2", "5"]);
        assert_eq!(
            map,
            [("a", "2"), ("a", "5"), ("b", "6"), ("c", "4")]
                .into_iter()
                .collect()
        );
    }

    #[test]
    fn rewriting_replaces_only_the_values_given() {
        let mut map: HeaderMap = [("a", "keep"), ("b", "secret"), ("b", "x"), ("c", "")]
            .into_iter()
            .collect();
        map.rewrite_values(|name, value| (name == "b").then(|| format!("<{value}>")));
        assert_eq!(
            map.fields().collect::<Vec<_>>(),
            [("a", "keep"), ("b", "<secret>"), ("b", "<x>"), ("c", "")]
        );
        let before = map.clone();
        map.rewrite_values(|_, _| None);
        assert_eq!(map, before);
    }

    #[test]
    fn a_stamp_stands_for_the_fields_a_map_holds() {
        let heads = heads();
        let [first, second] = [&heads[1], &heads[1]].map(HeaderMap::from_headers);
        assert_eq!(first, second);
        assert_ne!(first.stamp(), second.stamp(), "each build takes its own");
        let mut map = first.clone();
        assert_eq!(map.stamp(), first.stamp(), "a clone holds the same fields");
        let mut stamps = vec![map.stamp()];
        map.append("x-new", "1");
        stamps.push(map.stamp());
        map.insert("x-new", "2");
        stamps.push(map.stamp());
        map.rewrite_values(|_, _| None);
        assert_eq!(map.stamp(), stamps[2], "nothing rewritten");
        map.rewrite_values(|name, _| (name == "host").then(|| "b".to_string()));
        stamps.push(map.stamp());
        stamps.sort_unstable();
        stamps.dedup();
        assert_eq!(stamps.len(), 4, "every change takes a new stamp");
        assert_eq!(HeaderMap::default().stamp(), 0);
    }

    #[test]
    fn debug_shows_names_and_sizes_never_values() {
        let map: HeaderMap = [
            ("Authorization", "Bearer hunter2"),
            ("x-a", "1"),
            ("x-a", "22"),
        ]
        .into_iter()
        .collect();
        let shown = format!("{map:?}");
        assert_eq!(shown, "[authorization: <14 bytes>, x-a: <3 bytes>]");
        assert!(!shown.contains("hunter2"));
    }
}
