//! The scanner's recent results, per thread.
//!
//! The agent reads each call's texts twice: the sensitive-data analyzer scans the call as
//! captured, then redaction scans what will be serialized, which is mostly the same texts (every
//! header, the path, the query, a body that fits its preview). A scan is a function of the
//! scanner, the source, the text and the time alone, so a result remembered for the same four is
//! exactly what scanning again would give: the second pass becomes a lookup. Texts are kept and
//! compared whole, never by hash, so no crafted text can borrow another text's result.
//!
//! Header fields are handed over more cheaply still: the analyzer scans a header map's fields
//! as a set and keeps the results under the map's stamp, a number that stands for exactly those
//! fields (`model::HeaderMap::stamp`), so redaction takes them without keying or comparing any
//! text.

use std::{
    cell::RefCell,
    collections::{HashMap, VecDeque},
    hash::{BuildHasherDefault, Hasher},
};

use super::{bytes::le_word, fields::Source, scan::Found};

/// Scans remembered per thread: more than one call's texts (a path, a query, a few dozen headers
/// and two bodies), so the analyzer's results are still there when redaction asks.
pub const REMEMBERED_SCANS: usize = 64;

/// Longer texts are scanned again rather than copied: bounds what a thread keeps to
/// [`REMEMBERED_SCANS`] times this, and covers body previews (1 KiB by default) many times over.
pub const MAX_REMEMBERED_TEXT_BYTES: usize = 16 * 1024;

/// What a source is, owned: its kind and the header name or content type it carries.
#[derive(Debug, Default, PartialEq, Eq)]
struct SourceKey {
    kind: u8,
    name: String,
}

impl SourceKey {
    fn parts<'a>(source: &Source<'a>) -> (u8, &'a str) {
        match *source {
            Source::Path => (0, ""),
            Source::Query => (1, ""),
            Source::Header(name) => (2, name),
            Source::Body(Some(content_type)) => (3, content_type),
            Source::Body(None) => (4, ""),
            Source::Argument => (5, ""),
        }
    }

    fn is(&self, source: &Source<'_>) -> bool {
        let (kind, name) = SourceKey::parts(source);
        self.kind == kind && same_text(&self.name, name)
    }

    fn set(&mut self, source: &Source<'_>) {
        let (kind, name) = SourceKey::parts(source);
        self.kind = kind;
        self.name.clear();
        self.name.push_str(name);
    }
}

#[derive(Debug, Default)]
struct Remembered {
    /// Its [`quick_key`], to unlink it from the index when it is overwritten.
    quick: u64,
    scanner: u64,
    now_secs: u64,
    source: SourceKey,
    text: String,
    found: Vec<Found>,
}

/// A ring of recent scans; entries are overwritten in place, reusing their buffers.
#[derive(Debug, Default)]
struct RecentScans {
    /// Which entry holds the newest scan of each [`quick_key`]: a lookup (and every scan first
    /// misses one) is one probe and, on a match, one whole-text compare. An older entry whose
    /// quick key a newer one took is no longer found and its text is scanned again, as if
    /// forgotten. (A walk over all the keys was a twelfth of the agent's instructions.)
    by_quick_key: HashMap<u64, usize, BuildHasherDefault<QuickKeyHasher>>,
    entries: Vec<Remembered>,
    next: usize,
}

/// Quick keys are mixed already: the index uses them as their own hash.
#[derive(Debug, Default)]
struct QuickKeyHasher(u64);

impl Hasher for QuickKeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, key: u64) {
        self.0 = key;
    }
}

/// A cheap summary of a scan's key: what tells most different texts apart at once (length,
/// ends, source and its name, scanner, time), not a hash to trust: equal keys are then compared
/// whole. The source's name counts: the same value under two headers (`Accept` and
/// `Content-Type` both `application/json`) are two scans, and the index keeps one per key.
fn quick_key(scanner: u64, source: &Source<'_>, text: &str, now_secs: u64) -> u64 {
    let bytes = text.as_bytes();
    // `le_word` reads a longer text's first 8 bytes.
    let head = le_word(bytes);
    let tail = le_word(&bytes[bytes.len().saturating_sub(8)..]);
    let (kind, name) = SourceKey::parts(source);
    let name = le_word(name.as_bytes()) ^ (name.len() as u64).rotate_left(48);
    let mut key = (bytes.len() as u64) ^ (u64::from(kind) << 56) ^ scanner.rotate_left(40);
    for part in [head, tail, name, now_secs] {
        key = (key ^ part)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
    }
    key
}

/// Whether two texts are equal. Most compared are header names and values of a few dozen bytes
/// at most: up to 16 bytes are compared as two overlapping fixed-size pieces, without a call
/// into `memcmp` (which had been a sixth of a recall's instructions).
fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    // The two ends as fixed-size pieces, which overlap in the middle and cover the text.
    fn ends<const N: usize>(a: &[u8], b: &[u8]) -> Option<bool> {
        let (a_head, a_tail) = (a.first_chunk::<N>()?, a.last_chunk::<N>()?);
        let (b_head, b_tail) = (b.first_chunk::<N>()?, b.last_chunk::<N>()?);
        Some(a_head == b_head && a_tail == b_tail)
    }
    match a.len() {
        0..=3 => a == b,
        4..=7 => ends::<4>(a, b).unwrap_or(false),
        8..=16 => ends::<8>(a, b).unwrap_or(false),
        _ => a == b,
    }
}

thread_local! {
    static RECENT: RefCell<RecentScans> = RefCell::new(RecentScans::default());
}

/// Appends to `out` what scanner `scanner` found in `text` read as `source` at `now_secs`, if
/// that scan is remembered; returns whether it was.
pub fn recall(
    scanner: u64,
    source: &Source<'_>,
    text: &str,
    now_secs: u64,
    out: &mut Vec<Found>,
) -> bool {
    if text.len() > MAX_REMEMBERED_TEXT_BYTES {
        return false;
    }
    let quick = quick_key(scanner, source, text, now_secs);
    RECENT.with(|recent| {
        let recent = recent.borrow();
        let remembered = recent
            .by_quick_key
            .get(&quick)
            .map(|&at| &recent.entries[at])
            .filter(|entry| {
                entry.scanner == scanner
                    && entry.now_secs == now_secs
                    && entry.source.is(source)
                    && same_text(&entry.text, text)
            });
        match remembered {
            Some(entry) => {
                // Most texts hold nothing: an empty extend still cost a clone loop's set-up.
                if !entry.found.is_empty() {
                    out.extend_from_slice(&entry.found);
                }
                true
            }
            None => false,
        }
    })
}

/// Remembers that scanner `scanner` found `found` in `text` read as `source` at `now_secs`.
pub fn remember(scanner: u64, source: &Source<'_>, text: &str, now_secs: u64, found: &[Found]) {
    if text.len() > MAX_REMEMBERED_TEXT_BYTES {
        return;
    }
    let quick = quick_key(scanner, source, text, now_secs);
    RECENT.with(|recent| {
        let mut recent = recent.borrow_mut();
        let at = recent.next;
        recent.next = (at + 1) % REMEMBERED_SCANS;
        if recent.entries.len() <= at {
            recent.entries.push(Remembered::default());
        } else {
            let forgotten = recent.entries[at].quick;
            if recent.by_quick_key.get(&forgotten) == Some(&at) {
                recent.by_quick_key.remove(&forgotten);
            }
        }
        recent.by_quick_key.insert(quick, at);
        let entry = &mut recent.entries[at];
        entry.quick = quick;
        entry.scanner = scanner;
        entry.now_secs = now_secs;
        entry.source.set(source);
        entry.text.clear();
        entry.text.push_str(text);
        entry.found.clear();
        entry.found.extend_from_slice(found);
    });
}

/// Sets of field scans kept per thread: the two header maps of the call in hand, which
/// redaction takes right after the analyzer scanned them, and room for two more, so that sets
/// nobody takes (redaction off) are pushed out before the newest.
pub const REMEMBERED_FIELD_SETS: usize = 4;

/// What one scanner found, at one time, in each field of a set stamped `stamp`.
#[derive(Debug)]
pub struct FieldScans {
    scanner: u64,
    stamp: u64,
    now_secs: u64,
    /// What was found, with the index of the field it was found in, in field order. Most
    /// fields hold nothing, so most sets are empty and allocate nothing.
    found: Vec<(usize, Found)>,
}

impl FieldScans {
    pub fn new(scanner: u64, stamp: u64, now_secs: u64) -> FieldScans {
        FieldScans {
            scanner,
            stamp,
            now_secs,
            found: Vec::new(),
        }
    }

    /// Adds what was found in the field at `index`; fields are added in order.
    pub fn add(&mut self, index: usize, found: &[Found]) {
        self.found.extend(found.iter().map(|f| (index, f.clone())));
    }

    /// What was found in the field at `index`.
    #[inline]
    pub fn in_field(&self, index: usize) -> impl Iterator<Item = &Found> {
        let start = self.found.partition_point(|&(at, _)| at < index);
        self.found[start..]
            .iter()
            .take_while(move |&&(at, _)| at == index)
            .map(|(_, found)| found)
    }
}

thread_local! {
    static FIELD_SCANS: RefCell<VecDeque<FieldScans>> = const { RefCell::new(VecDeque::new()) };
}

/// Keeps `scans` for [`take_fields`], forgetting the oldest set beyond
/// [`REMEMBERED_FIELD_SETS`].
pub fn remember_fields(scans: FieldScans) {
    FIELD_SCANS.with(|kept| {
        let mut kept = kept.borrow_mut();
        if kept.len() >= REMEMBERED_FIELD_SETS {
            kept.pop_front();
        }
        kept.push_back(scans);
    });
}

/// The scans scanner `scanner` made at `now_secs` of the fields stamped `stamp`, if this thread
/// still keeps them; they are handed over once.
pub fn take_fields(scanner: u64, stamp: u64, now_secs: u64) -> Option<FieldScans> {
    FIELD_SCANS.with(|kept| {
        let mut kept = kept.borrow_mut();
        let at = kept.iter().rposition(|scans| {
            scans.scanner == scanner && scans.stamp == stamp && scans.now_secs == now_secs
        })?;
        kept.remove(at)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensitive::{fields::Part, scan::HitFlags, types::DataType};

    fn found(value: &str) -> Found {
        Found {
            kind: DataType::Email.into(),
            part: Part::Header,
            name: Some("x-user".to_string()),
            raw: 0..value.len(),
            value: value.to_string(),
            bare: false,
            flags: HitFlags::default(),
        }
    }

    #[test]
    fn a_scan_is_recalled_only_for_the_same_scanner_source_text_and_time() {
        let text = "ann@example.com";
        let source = Source::Header("x-user");
        remember(7, &source, text, 100, &[found(text)]);
        let mut out = Vec::new();
        assert!(recall(7, &source, text, 100, &mut out));
        assert_eq!(out, vec![found(text)]);
        for (scanner, source, text, now) in [
            (8, source, text, 100),
            (7, Source::Header("x-other"), text, 100),
            (7, Source::Query, text, 100),
            (7, source, "bob@example.com", 100),
            (7, source, text, 101),
        ] {
            let mut out = Vec::new();
            assert!(
                !recall(scanner, &source, text, now, &mut out),
                "{source:?} {text} {now}"
            );
            assert!(out.is_empty());
        }
    }

    #[test]
    fn field_scans_are_taken_once_by_scanner_stamp_and_time() {
        let mut scans = FieldScans::new(7, 40, 100);
        scans.add(0, &[]);
        scans.add(1, &[found("a@example.com"), found("b@example.com")]);
        scans.add(2, &[]);
        scans.add(3, &[found("c@example.com")]);
        remember_fields(scans);
        for (scanner, stamp, now) in [(8, 40, 100), (7, 41, 100), (7, 40, 101)] {
            assert!(take_fields(scanner, stamp, now).is_none());
        }
        let scans = take_fields(7, 40, 100).expect("kept");
        let values = |index| {
            scans
                .in_field(index)
                .map(|f| f.value.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(values(0), Vec::<&str>::new());
        assert_eq!(values(1), ["a@example.com", "b@example.com"]);
        assert_eq!(values(2), Vec::<&str>::new());
        assert_eq!(values(3), ["c@example.com"]);
        assert_eq!(values(4), Vec::<&str>::new());
        assert!(take_fields(7, 40, 100).is_none(), "handed over once");
    }

    #[test]
    fn only_the_newest_field_sets_are_kept() {
        for stamp in 0..=REMEMBERED_FIELD_SETS as u64 {
            remember_fields(FieldScans::new(9, stamp, 0));
        }
        assert!(take_fields(9, 0, 0).is_none());
        for stamp in 1..=REMEMBERED_FIELD_SETS as u64 {
            assert!(take_fields(9, stamp, 0).is_some(), "{stamp}");
        }
    }

    #[test]
    fn texts_are_the_same_only_byte_for_byte() {
        let texts = [
            "",
            "a",
            "b",
            "ab",
            "ba",
            "abc",
            "abcd",
            "abce",
            "abcdefg",
            "abcdefgh",
            "abcdefgi",
            "xbcdefgh",
            "abcdefghi",
            "abcdefghj",
            "abcdefgXi",
            "abcdefghijklmnop",
            "abcdefghijklmnoq",
            "abcdefghiXklmnop",
            "abcdefghijklmnopq",
            "abcdefghijklmnopr",
            "abcdefghXjklmnopq",
        ];
        for a in texts {
            for b in texts {
                assert_eq!(same_text(a, b), a == b, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn texts_alike_in_length_and_ends_are_told_apart_whole() {
        let source = Source::Query;
        let (kept, other) = ("grace.hopper@example.com", "grace.hoppXr@example.com");
        assert_eq!(
            quick_key(3, &source, kept, 0),
            quick_key(3, &source, other, 0)
        );
        remember(3, &source, kept, 0, &[found(kept)]);
        let mut out = Vec::new();
        assert!(!recall(3, &source, other, 0, &mut out));
        assert!(recall(3, &source, kept, 0, &mut out));
    }

    /// `Accept` and `Content-Type` are both `application/json` in most API calls: when the two
    /// shared a quick key, each scan shadowed the other's and every call scanned both again.
    #[test]
    fn one_value_under_two_header_names_is_recalled_for_each() {
        let text = "application/json";
        let (accept, content_type) = (Source::Header("accept"), Source::Header("content-type"));
        remember(5, &accept, text, 0, &[]);
        remember(5, &content_type, text, 0, &[found(text)]);
        let mut out = Vec::new();
        assert!(recall(5, &accept, text, 0, &mut out));
        assert!(out.is_empty());
        assert!(recall(5, &content_type, text, 0, &mut out));
        assert_eq!(out, vec![found(text)]);
    }

    #[test]
    fn the_newest_of_texts_sharing_a_quick_key_outlives_the_older_ones_slot() {
        let source = Source::Query;
        let (older, newer) = ("ada.lovelace@example.com", "ada.lovelaXe@example.com");
        assert_eq!(
            quick_key(4, &source, older, 0),
            quick_key(4, &source, newer, 0)
        );
        remember(4, &source, older, 0, &[found(older)]);
        remember(4, &source, newer, 0, &[found(newer)]);
        let mut out = Vec::new();
        assert!(!recall(4, &source, older, 0, &mut out), "shadowed");
        // Enough other scans to overwrite the older one's slot, not the newer one's.
        for i in 0..REMEMBERED_SCANS - 1 {
            remember(4, &source, &format!("/filler/{i}"), 0, &[]);
        }
        assert!(recall(4, &source, newer, 0, &mut out));
        assert_eq!(out, vec![found(newer)]);
    }

    #[test]
    fn the_oldest_scans_are_forgotten_and_long_texts_never_kept() {
        let source = Source::Path;
        let texts: Vec<String> = (0..=REMEMBERED_SCANS).map(|i| format!("/t/{i}")).collect();
        for text in &texts {
            remember(1, &source, text, 0, &[]);
        }
        let mut out = Vec::new();
        assert!(!recall(1, &source, &texts[0], 0, &mut out));
        assert!(recall(1, &source, &texts[1], 0, &mut out));
        assert!(recall(1, &source, &texts[REMEMBERED_SCANS], 0, &mut out));
        let long = "a".repeat(MAX_REMEMBERED_TEXT_BYTES + 1);
        remember(1, &source, &long, 0, &[]);
        assert!(!recall(1, &source, &long, 0, &mut out));
    }
}
