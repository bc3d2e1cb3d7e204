//! The scanner: every detector over one field at a time, cheapest test first.
//!
//! For each field (from `fields`): the field's name gives hints; a keyword prefilter
//! (Aho-Corasick, one pass) and the value's shape (how many digits, capitals, dots, colons) say
//! which detectors could possibly match; only those run their pattern, and every candidate goes
//! through its strict validator (`validate`). Patterns use the `regex` crate, which never
//! backtracks, and the hand-written passes look at each byte a bounded number of times, so a
//! hostile value costs time linear in its length.
//!
//! The scanner is shared, immutable and cheap to call; it allocates only for what it finds.

use std::{
    ops::Range,
    sync::atomic::{AtomicU64, Ordering},
    sync::{Arc, OnceLock},
};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use base64::Engine;
use regex::{Regex, RegexBuilder};

use super::{
    bytes::{byte_table, count_marked, DECIMAL_DIGITS},
    fields::{self, Field, Part, Source},
    hints::{self, HintMemo, Hints, MAX_NAME_BYTES},
    json::{self, ArrayPlace},
    recent,
    types::{Category, DataType, TypeRef},
    validate,
};
use crate::findings::Severity;

/// Digit runs longer than this are not one number: they are read piece by piece (split at
/// spaces), which keeps a hostile run of digits and spaces linear.
const MAX_NUMBER_BYTES: usize = 40;

/// Values shorter than this hold no secret any detector knows (the shortest token pattern, a
/// Slack token, is longer), so the keyword prefilter skips them.
const MIN_KEYWORD_FIELD_BYTES: usize = 6;

/// Numbers with fewer digits are neither cards, SSNs, routing numbers, ids nor phone numbers.
const MIN_NUMBER_DIGITS: usize = 7;

/// A compiled custom type is capped at this size: a policy file must not be able to make the
/// agent build an enormous automaton.
pub const CUSTOM_REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Whether a scan reads what values hold inside them (a text in base64, a query in a URL, a
/// JSON document in a string): the outer scan does; the scans of those insides do not, so
/// hostile nesting costs one level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Depth {
    Outer,
    Inner,
}

/// Bytes that end a query written inside a value (`https://x/cb?token=...` in a header, a JSON
/// string, a line of text): where a URL stops in running text, markup or a `Link` header.
const QUERY_ENDS: &[u8] = b" \t\r\n\"'<>`#";

/// The search for `--` every scanned text gets, built once: building it per text had cost the
/// scanner 1 % on API-like bodies.
fn double_dash_finder() -> &'static memchr::memmem::Finder<'static> {
    static FINDER: OnceLock<memchr::memmem::Finder<'static>> = OnceLock::new();
    FINDER.get_or_init(|| memchr::memmem::Finder::new(b"--"))
}

/// The shortest private member of a JSON Web Key: 256 bits in base64url (an elliptic-curve
/// P-256 `d`, an HS256 `k`). Shorter values under these one-letter names are other things:
/// a page, a query, a count.
const MIN_JWK_PRIVATE_BYTES: usize = 43;

/// Whether `text`, under a name a JSON Web Key gives its private parts ([`Hints::KEY_MEMBER`]),
/// is one: random bytes in base64url, whoever reads which signs as the key's owner. JSON in
/// base64url (`eyJ...`, a page cursor under `p`) is something else.
fn is_jwk_private_member(text: &str) -> bool {
    text.len() >= MIN_JWK_PRIVATE_BYTES
        && !text.starts_with("eyJ")
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The two members of a JSON object that names its own value.
enum PairMember {
    Name,
    Value,
}

/// A JSON member `name` or `key` read before any `value` in its object.
struct PairName {
    /// Where its object opened, which tells its siblings.
    object: usize,
    raw: Range<usize>,
    /// Its own findings in the scan's output.
    found: Range<usize>,
}

/// Whether `out` holds `value` found at a place overlapping `raw`: the same finding reached
/// twice (as written and again inside, or by two readings of a field). The same value at
/// another place is another finding, hidden there too (a password set twice in a file).
fn found_already(out: &[Found], value: &str, raw: &Range<usize>) -> bool {
    out.iter()
        .any(|f| f.value == value && f.raw.start < raw.end && raw.start < f.raw.end)
}

/// Takes out of `out[found]`, a pair's name member's own findings, those its key alone made:
/// `Key` says secret on its own (`{"key": "..."}` holds API keys), but beside a `Value` it
/// names the value (`{"Key": "Environment", "Value": "prod"}`, as AWS writes every tag), and
/// the value is read under that name instead. What its shape makes a secret stays. Returns how
/// many it took out.
fn drop_name_guesses(out: &mut Vec<Found>, found: Range<usize>) -> usize {
    // Only the member's own findings are looked at (a `retain` walked the whole output once
    // per pair, quadratic in a body of many pairs); a member has one or two.
    let guess = TypeRef::from(DataType::SecretField);
    let last = found.end.min(out.len());
    let (mut at, mut end) = (found.start, last);
    while at < end {
        if out[at].kind == guess {
            out.remove(at);
            end -= 1;
        } else {
            at += 1;
        }
    }
    last - end
}

/// A JSON member `value` read before any `name` in its object, as far as reading it under the
/// name a later sibling gives needs: where it is, and how its own findings were placed.
struct UnnamedValue {
    /// Where its object opened, which tells its siblings.
    object: usize,
    /// Its key as written (`value` or `Value`), for its path.
    key: &'static str,
    raw: Range<usize>,
    part: Part,
    bare: bool,
    /// Where the findings from this member on start in the scan's output.
    found_before: usize,
}

/// A JSON array's element that names the element after it.
struct ElementName {
    place: ArrayPlace,
    /// The name, in the scanned text.
    raw: Range<usize>,
    /// Written as a flag (`--password`), which takes no other flag for its value.
    flag: bool,
}

/// The name `element`, a JSON array's string element at `place`, gives the element after it:
/// a flag's (`["--password", "..."]`, as container specs and jobs write a command's
/// arguments), or the first of a pair's (`[["X-Api-Key", "..."], ...]`, as clients write
/// headers and form fields as a list of entries). A list of names alone (`"required":
/// ["password", "email"]`) names nothing: neither flags nor pairs.
fn element_name(element: &str, place: ArrayPlace) -> Option<&str> {
    // Told by the first bytes: most elements are neither (tags, ids, values of a list).
    let name = match element.as_bytes() {
        [b'-', b'-', ..] => &element[2..],
        [b'-', ..] => &element[1..],
        _ if place.in_array && place.index == 0 => element,
        _ => return None,
    };
    let is_name = name.len() <= MAX_NAME_BYTES
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && name.bytes().all(fields::is_name_byte);
    is_name.then_some(name)
}

/// Which member of a name-and-value pair a JSON key makes its value, if any.
fn pair_member(key: &str) -> Option<PairMember> {
    // Every JSON member asks: most keys are told by their length alone.
    let key = key.as_bytes();
    if !(3..=5).contains(&key.len()) {
        return None;
    }
    match key {
        b"name" | b"Name" | b"key" | b"Key" => Some(PairMember::Name),
        b"value" | b"Value" => Some(PairMember::Value),
        _ => None,
    }
}

/// Where what was found in a text inside a field lies in the source text.
enum Inside {
    /// Hidden with this whole span: the text was decoded from it (base64).
    Whole(Range<usize>),
    /// The text starts this many bytes into the field's text (a query after its `?`, the
    /// whole of a JSON document), so a value lies where it was found, offset.
    At(usize),
}

/// Which encodings a field may hold values in, by a look at it.
#[derive(Debug, Clone, Copy)]
struct Encodings {
    escaped: bool,
    base64: bool,
}

/// Flags on a hit, for findings that are worse than the type alone says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct HitFlags {
    /// A JWT whose header says `alg: none`: anyone can forge it.
    pub jwt_alg_none: bool,
    /// A JWT whose `exp` is in the past.
    pub jwt_expired: bool,
}

/// Something found in one field's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub kind: TypeRef,
    /// Where in the field's (decoded) text.
    pub span: Range<usize>,
    pub flags: HitFlags,
}

/// Something found in a source text: what, where in the text, and in which field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub kind: TypeRef,
    pub part: Part,
    /// The field's name (parameter, header, cookie, JSON path), if it has one.
    pub name: Option<String>,
    /// The span of the source text to replace to hide the value: the value itself where the
    /// source holds it as is, the whole field where it had to be decoded.
    pub raw: Range<usize>,
    /// The value as found (decoded). Stays inside the agent: only its masked form leaves.
    pub value: String,
    /// A JSON number: a replacement must be quoted to keep the document valid.
    pub bare: bool,
    pub flags: HitFlags,
}

/// A user-defined type from the policy file.
#[derive(Debug, Clone)]
pub struct CustomType {
    pub name: String,
    pub regex: Regex,
    /// Only fields whose name contains this (lowercased) are scanned, when set.
    pub key_hint: Option<String>,
    pub category: Category,
    pub severity: Severity,
}

/// What a keyword points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyed {
    Email,
    Jwt,
    Bearer,
    Basic,
    Aws,
    Github,
    Gitlab,
    Slack,
    Stripe,
    Google,
    PrivateKey,
    UrlCredentials,
    SignedUrl,
    Mrz,
}

impl Keyed {
    const COUNT: usize = 14;
    const ALL: [Keyed; Keyed::COUNT] = [
        Keyed::Email,
        Keyed::Jwt,
        Keyed::Bearer,
        Keyed::Basic,
        Keyed::Aws,
        Keyed::Github,
        Keyed::Gitlab,
        Keyed::Slack,
        Keyed::Stripe,
        Keyed::Google,
        Keyed::PrivateKey,
        Keyed::UrlCredentials,
        Keyed::SignedUrl,
        Keyed::Mrz,
    ];

    /// This detector's bit in the masks of detectors a text or a field triggers.
    fn bit(self) -> u32 {
        1 << (self as u32)
    }

    /// The detector whose keyword every match of this one holds too, if any: credentials in a
    /// URL sit before an `@`, the email detector's keyword. Where that keyword is missing, this
    /// detector's own is not searched for (`://` is in every URL) and the detector does not run.
    fn needs(self) -> Option<Keyed> {
        match self {
            Keyed::UrlCredentials => Some(Keyed::Email),
            _ => None,
        }
    }

    /// The literal text every match of the detector contains, in every case the detector's
    /// pattern accepts. Matched case-sensitively: that keeps the automaton on its fast,
    /// vectorised prefilter, which case-insensitive matching would turn off.
    fn keywords(self) -> &'static [&'static str] {
        match self {
            Keyed::Email | Keyed::Mrz => &[],
            Keyed::Jwt => &["eyJ"],
            Keyed::Bearer => &["Bearer", "bearer", "BEARER"],
            Keyed::Basic => &["Basic", "basic", "BASIC"],
            Keyed::Aws => &["AKIA", "ASIA", "ABIA", "ACCA"],
            Keyed::Github => &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
            Keyed::Gitlab => &["glpat-", "gldt-", "glrt-", "glptt-", "gloas-"],
            Keyed::Slack => &["xox", "hooks.slack.com"],
            Keyed::Stripe => &["sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_"],
            Keyed::Google => &["AIza"],
            Keyed::PrivateKey => &["-----BEGIN"],
            Keyed::UrlCredentials => &[],
            Keyed::SignedUrl => &[
                "Signature=",
                "signature=",
                "SIGNATURE=",
                "sig=",
                "Sig=",
                "SIG=",
            ],
        }
    }

    /// A keyword searched for on its own (with memchr's searchers) rather than by the
    /// automaton. The automaton's prefilter compares as many leading bytes of every keyword as
    /// its shortest has, so one keyword shorter than [`MIN_AUTOMATON_KEYWORD_BYTES`] would make
    /// it stop at every common pair of letters (`be`, `si`, `gh`) in a text, and a one-byte
    /// keyword would turn it off; and each match stops its vector search, which `://`, in
    /// every URL, would do several times a body (a search of its own costs a fifth as much).
    fn keyword_searched_alone(self) -> Option<&'static str> {
        match self {
            Keyed::Email => Some("@"),
            Keyed::Mrz => Some("<<"),
            Keyed::UrlCredentials => Some("://"),
            _ => None,
        }
    }

    /// The broad pattern. Case-sensitive where the format is.
    fn pattern(self) -> &'static str {
        match self {
            Keyed::Email => r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+",
            Keyed::Jwt => r"eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*",
            Keyed::Bearer => r"(?i:bearer)[ \t]+([A-Za-z0-9\-._~+/]{12,}=*)",
            Keyed::Basic => r"(?i:basic)[ \t]+([A-Za-z0-9+/]{6,}={0,2})",
            Keyed::Aws => r"(?-u:\b)(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}(?-u:\b)",
            Keyed::Github => {
                r"(?-u:\b)(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})(?-u:\b)"
            }
            Keyed::Gitlab => r"(?-u:\b)gl(?:pat|dt|rt|ptt|oas)-[A-Za-z0-9_\-]{20,}",
            Keyed::Slack => {
                r"(?-u:\b)xox[abprse]-[A-Za-z0-9\-]{10,}|https://hooks\.slack\.com/services/T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{20,}"
            }
            Keyed::Stripe => {
                r"(?-u:\b)(?:(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|whsec_[A-Za-z0-9]{24,})"
            }
            Keyed::Google => r"AIza[0-9A-Za-z_\-]{35}",
            Keyed::PrivateKey => {
                // OpenPGP's armour ends its label with `BLOCK`.
                r"-----BEGIN[A-Z ]{0,24}PRIVATE KEY(?: BLOCK)?-----(?s:.*?)(?:-----END[A-Z ]{0,24}PRIVATE KEY(?: BLOCK)?-----|\z)"
            }
            Keyed::UrlCredentials => {
                r#"[A-Za-z][A-Za-z0-9+.\-]{1,15}://[^\s/?#@:"'<>\\]{0,128}:[^\s/?#@"'<>\\]{1,256}@[A-Za-z0-9.\-\[\]:]+"#
            }
            Keyed::SignedUrl => {
                r"(?i)(?:^|[?&])(?:x-amz-signature|x-goog-signature|signature|sig)=[A-Za-z0-9%/+=_\-.~]{16,}"
            }
            Keyed::Mrz => {
                r"[A-Z0-9<]{9}[0-9][A-Z<]{3}[0-9]{6}[0-9][MFX<][0-9]{6}[0-9][A-Z0-9<]{14}[0-9<][0-9]"
            }
        }
    }
}

/// The automaton's keywords are at least this long (shorter ones are
/// [`Keyed::keyword_searched_alone`]): its prefilter then tells candidates apart by three bytes.
const MIN_AUTOMATON_KEYWORD_BYTES: usize = 3;

/// Detectors run on shape rather than keywords.
struct ShapePatterns {
    iban: Regex,
    ipv4: Regex,
    ipv6_token: Regex,
}

/// All detectors, compiled once.
pub struct Scanner {
    /// Tells this scanner's remembered results (`recent`) from another's, whose custom types
    /// may find more.
    id: u64,
    keywords: AhoCorasick,
    /// Keyword pattern index → detector.
    keyword_owner: Vec<Keyed>,
    /// The searchers of the keywords searched alone, and their detectors.
    lone_keywords: Vec<(memchr::memmem::Finder<'static>, Keyed)>,
    keyed: Vec<Regex>,
    shapes: ShapePatterns,
    custom: Vec<CustomType>,
}

impl std::fmt::Debug for Scanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scanner")
            .field("custom", &self.custom.len())
            .finish_non_exhaustive()
    }
}

/// [`Scanner::is_data_name`] of the built-in scanner: for the inventory and detection, which
/// keep names and must keep no values.
pub fn is_data_name(name: &str) -> bool {
    builtin_scanner().is_data_name(name)
}

/// [`Scanner::builtin`] borrowed: the free functions here run per name of every call, where
/// cloning the `Arc` is a shared counter's increment and decrement each time.
fn builtin_scanner() -> &'static Arc<Scanner> {
    static BUILTIN: OnceLock<Arc<Scanner>> = OnceLock::new();
    BUILTIN.get_or_init(|| {
        // The built-in patterns are constants covered by every test: failing here is a bug in
        // this file, not something input can cause.
        #[expect(clippy::expect_used, reason = "constant patterns, tested")]
        Arc::new(Scanner::new(Vec::new()).expect("built-in patterns compile"))
    })
}

/// `text` cut to at most `max` bytes (on a character boundary), and before any value the
/// built-in scanner finds that the cut would run through: a part of a value alone no longer
/// looks like it, and redaction would show it. For texts kept cut before anything redacts
/// them (command-line arguments); pass `max` plus enough for the longest value
/// ([`crate::redact::WINDOW_CONTEXT_BYTES`]) if the text is longer still.
pub fn cut_before_values(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let cut = text.floor_char_boundary(max);
    let mut found = Vec::new();
    builtin_scanner().scan_source(Source::Argument, text, 0, &mut found);
    let end = found
        .iter()
        .filter(|f| f.raw.start < cut && f.raw.end > cut)
        .map(|f| f.raw.start)
        .min()
        .unwrap_or(cut);
    &text[..end]
}

/// The built-in patterns failed to compile: a bug, caught by every test.
#[derive(Debug, thiserror::Error)]
pub enum ScannerError {
    #[error("built-in pattern {name}: {source}")]
    Pattern {
        name: &'static str,
        #[source]
        source: regex::Error,
    },
    #[error("keyword prefilter: {0}")]
    Keywords(#[from] aho_corasick::BuildError),
}

impl Scanner {
    /// The built-in detectors plus `custom` ones.
    pub fn new(custom: Vec<CustomType>) -> Result<Scanner, ScannerError> {
        let mut patterns = Vec::new();
        let mut keyword_owner = Vec::new();
        for keyed in Keyed::ALL {
            for keyword in keyed.keywords() {
                debug_assert!(keyword.len() >= MIN_AUTOMATON_KEYWORD_BYTES, "{keyword}");
                patterns.push(*keyword);
                keyword_owner.push(keyed);
            }
        }
        let lone_keywords = Keyed::ALL
            .into_iter()
            .filter_map(|keyed| {
                Some((
                    memchr::memmem::Finder::new(keyed.keyword_searched_alone()?),
                    keyed,
                ))
            })
            .collect();
        // Which detectors a text triggers is all that matters, not every occurrence, so a
        // leftmost non-overlapping search (which can use the prefilter) is enough: no keyword
        // here is part of another.
        let keywords = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostFirst)
            .build(&patterns)?;
        let compile = |name: &'static str, pattern: &str| {
            RegexBuilder::new(pattern)
                .build()
                .map_err(|source| ScannerError::Pattern { name, source })
        };
        let keyed = Keyed::ALL
            .iter()
            .map(|k| compile("keyword detector", k.pattern()))
            .collect::<Result<Vec<_>, _>>()?;
        let shapes = ShapePatterns {
            iban: compile("iban", r"(?-u:\b)[A-Z]{2}[0-9]{2}(?:[ ]?[A-Z0-9]){11,34}")?,
            ipv4: compile("ipv4", r"(?-u:\b)(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?-u:\b)")?,
            ipv6_token: compile("ipv6", r"[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*")?,
        };
        static SCANNERS: AtomicU64 = AtomicU64::new(0);
        Ok(Scanner {
            id: SCANNERS.fetch_add(1, Ordering::Relaxed),
            keywords,
            keyword_owner,
            lone_keywords,
            keyed,
            shapes,
            custom,
        })
    }

    /// The built-in detectors alone, compiled once per process.
    pub fn builtin() -> Arc<Scanner> {
        builtin_scanner().clone()
    }

    pub fn custom_types(&self) -> &[CustomType] {
        &self.custom
    }

    /// The name of a type this scanner reports.
    pub fn type_name(&self, kind: TypeRef) -> &str {
        match kind {
            TypeRef::Builtin(t) => t.name(),
            TypeRef::Custom(i) => self
                .custom
                .get(usize::from(i))
                .map_or("custom", |c| c.name.as_str()),
        }
    }

    pub fn category(&self, kind: TypeRef) -> Category {
        match kind {
            TypeRef::Builtin(t) => t.category(),
            TypeRef::Custom(i) => self
                .custom
                .get(usize::from(i))
                .map_or(Category::Personal, |c| c.category),
        }
    }

    /// Everything found in `text` read as `source`. `now_secs` (Unix time, 0 if unknown) dates
    /// JWT expiry. The same scan made a moment ago on this thread is recalled, not redone.
    pub fn scan_source(&self, source: Source<'_>, text: &str, now_secs: u64, out: &mut Vec<Found>) {
        if recent::recall(self.id, &source, text, now_secs, out) {
            return;
        }
        let start = out.len();
        self.scan_afresh(source, text, now_secs, out);
        recent::remember(self.id, &source, text, now_secs, &out[start..]);
    }

    /// [`Scanner::scan_source`] of each `(name, value)` field as a header, passing what was
    /// found in each to `found_in` in order, and keeping it all under `stamp` for
    /// [`Scanner::take_field_scans`]. `stamp` must stand for exactly these fields, as a header
    /// map's stamp does.
    pub fn scan_header_fields<'a>(
        &self,
        stamp: u64,
        fields: impl IntoIterator<Item = (&'a str, &'a str)>,
        now_secs: u64,
        mut found_in: impl FnMut(&[Found]),
    ) {
        let mut scans = recent::FieldScans::new(self.id, stamp, now_secs);
        let mut found = Vec::new();
        for (index, (name, value)) in fields.into_iter().enumerate() {
            found.clear();
            self.scan_source(Source::Header(name), value, now_secs, &mut found);
            scans.add(index, &found);
            found_in(&found);
        }
        recent::remember_fields(scans);
    }

    /// What [`Scanner::scan_header_fields`] found at `now_secs` in the fields stamped `stamp`, if this
    /// thread still keeps it; handed over once.
    pub fn take_field_scans(&self, stamp: u64, now_secs: u64) -> Option<recent::FieldScans> {
        recent::take_fields(self.id, stamp, now_secs)
    }

    /// [`Scanner::scan_source`] without recalling or remembering: for measuring the scan.
    pub fn scan_afresh(&self, source: Source<'_>, text: &str, now_secs: u64, out: &mut Vec<Found>) {
        self.scan_text(source, text, now_secs, Depth::Outer, out);
    }

    /// The fields of `text` read as `source`, each scanned with the keywords in its span.
    fn scan_text(
        &self,
        source: Source<'_>,
        text: &str,
        now_secs: u64,
        depth: Depth,
        out: &mut Vec<Found>,
    ) {
        let keywords = self.keyword_spans(text);
        hints::with_memo(|memo| {
            let mut next_keyword = 0;
            let mut hits = Vec::new();
            // Checked once for the text, so that fields are looked at for escapes only if it
            // has one, and for queries inside them only if it has a mark that may start one
            // (`%3F` decodes to a `?`). One pass for all three in the common case, no mark.
            let bytes = text.as_bytes();
            let first_mark = memchr::memchr3(b'%', b'?', b'#', bytes);
            let may_hold_escapes = first_mark.is_some_and(|at| {
                bytes[at] == b'%' || memchr::memchr(b'%', &bytes[at..]).is_some()
            });
            let may_hold_queries = depth == Depth::Outer && first_mark.is_some();
            // Flags (`--password ...`) only where the text has a `--` (a decoded field's may
            // have come from escapes).
            let flags = if double_dash_finder().find(bytes).is_some() {
                fields::Flags::Read
            } else {
                fields::Flags::Ignored
            };
            let authorization_response =
                matches!(source, Source::Query) && is_authorization_response(text);
            // The last `name` member seen, by its object, for a `value` after it there; and
            // the last `value` no name came before, for a `name` after it.
            let mut pair_name: Option<PairName> = None;
            let mut pair_value: Option<UnnamedValue> = None;
            // The last array element that names the element after it.
            let mut element_name: Option<ElementName> = None;
            fields::fields(source, text, &mut |field| {
                hits.clear();
                let triggered = if field.decoded {
                    // Decoding may have made a keyword (`%40` is `@`): look at the decoded text.
                    self.keywords_in(field.text)
                } else {
                    while keywords
                        .get(next_keyword)
                        .is_some_and(|k| k.0 < field.raw.start)
                    {
                        next_keyword += 1;
                    }
                    keywords[next_keyword.min(keywords.len())..]
                        .iter()
                        .take_while(|k| k.0 < field.raw.end)
                        .filter(|k| k.1 <= field.raw.end)
                        .fold(0u32, |mask, k| mask | k.2.bit())
                };
                self.scan_field_with(field, now_secs, triggered, memo, &mut hits);
                if authorization_response
                    && hits.is_empty()
                    && field.name == Some("code")
                    && !is_placeholder(field.text)
                {
                    hits.push(hit(DataType::SecretField.into(), 0..field.text.len()));
                }
                let found_before = out.len();
                if !hits.is_empty() {
                    self.push_found(field, &hits, out);
                }
                // A value written encoded where nothing decodes it: with percent escapes
                // (`ann%40example.com`, or escaped twice), or in base64. Read decoded too, and
                // hidden with its whole field (a path's segment), as decoded fields are.
                let escaped = may_hold_escapes && field.text.contains('%');
                let base64 = depth == Depth::Outer
                    && (field.part == Part::Path || fields::may_be_base64(field.text));
                if escaped || base64 {
                    let encodings = Encodings { escaped, base64 };
                    self.scan_encoded(field, encodings, now_secs, found_before, memo, out);
                }
                if may_hold_queries && memchr::memchr2(b'?', b'#', field.text.as_bytes()).is_some()
                {
                    self.scan_queries_inside(field, now_secs, found_before, out);
                }
                if depth == Depth::Outer && field.part != Part::Body && holds_json(field.text) {
                    self.scan_json_inside(field, now_secs, found_before, out);
                }
                let flags = if field.decoded {
                    fields::Flags::Read
                } else {
                    flags
                };
                if depth == Depth::Outer
                    && !field.bare
                    && fields::may_hold_assignments(field.text, flags)
                {
                    self.scan_assignments_inside(field, flags, now_secs, found_before, memo, out);
                }
                if let Some(scalar) = field.json {
                    match field.key.and_then(pair_member) {
                        // An escaped name is not its raw text: left unread.
                        Some(PairMember::Name) if !field.decoded => {
                            let object = scalar.object_start();
                            match pair_value.take_if(|value| Some(value.object) == object) {
                                Some(value) => {
                                    drop_name_guesses(out, found_before..out.len());
                                    self.scan_named_after(&value, text, field, now_secs, memo, out)
                                }
                                None => {
                                    pair_name = object.map(|object| PairName {
                                        object,
                                        raw: field.raw.clone(),
                                        found: found_before..out.len(),
                                    })
                                }
                            }
                        }
                        Some(PairMember::Value) => {
                            let object = scalar.object_start();
                            if let Some(name) =
                                pair_name.take_if(|name| Some(name.object) == object)
                            {
                                // Before this value's findings: they start that much earlier.
                                let found_before =
                                    found_before - drop_name_guesses(out, name.found);
                                let name = &text[name.raw];
                                self.scan_named_by_sibling(
                                    field,
                                    name,
                                    now_secs,
                                    found_before,
                                    memo,
                                    out,
                                );
                            } else if let Some(object) = object.filter(|_| !field.decoded) {
                                // Kept as the source holds it, to be read once its name comes.
                                pair_value = Some(UnnamedValue {
                                    object,
                                    key: if field.key == Some("Value") {
                                        "Value"
                                    } else {
                                        "value"
                                    },
                                    raw: field.raw.clone(),
                                    part: field.part,
                                    bare: field.bare,
                                    found_before,
                                });
                            }
                        }
                        _ => {}
                    }
                    if let Some(place) = scalar.array_place() {
                        let named = element_name.take_if(|name| {
                            name.place.array == place.array && name.place.index + 1 == place.index
                        });
                        // A flag followed by a flag takes no value (`["--password", "-v"]`).
                        let flag = field.text.starts_with('-');
                        if let Some(name) = named.filter(|name| !(name.flag && flag)) {
                            self.scan_named_by_sibling(
                                field,
                                &text[name.raw],
                                now_secs,
                                found_before,
                                memo,
                                out,
                            );
                        }
                        if !field.decoded && !field.bare {
                            element_name =
                                self::element_name(field.text, place).map(|name| ElementName {
                                    place,
                                    raw: field.raw.end - name.len()..field.raw.end,
                                    flag,
                                });
                        }
                    }
                }
            });
        });
    }

    /// Where `text` holds each detector's keywords, in text order: one keyword pass over the
    /// whole text; each field then looks only at the keywords inside its span (fields come in
    /// text order), instead of a pass per field.
    fn keyword_spans(&self, text: &str) -> Vec<(usize, usize, Keyed)> {
        let mut keywords: Vec<(usize, usize, Keyed)> = self
            .keywords
            .find_iter(text)
            .filter_map(|m| {
                let owner = *self.keyword_owner.get(m.pattern().as_usize())?;
                Some((m.start(), m.end(), owner))
            })
            .collect();
        // Each search finds its keywords in order without overlaps, as the automaton does, and
        // no two searches' keywords share a byte; the lists are merged by position.
        let mut searches_with_keywords = usize::from(!keywords.is_empty());
        // The detectors whose keywords the text holds, so far: a detector that needs another's
        // is searched after it (`Keyed::ALL`'s order).
        let mut found = keywords.iter().fold(0, |mask, k| mask | k.2.bit());
        for (finder, keyed) in &self.lone_keywords {
            if keyed
                .needs()
                .is_some_and(|needed| found & needed.bit() == 0)
            {
                continue;
            }
            let before = keywords.len();
            let len = finder.needle().len();
            keywords.extend(
                finder
                    .find_iter(text.as_bytes())
                    .map(|at| (at, at + len, *keyed)),
            );
            if keywords.len() > before {
                searches_with_keywords += 1;
                found |= keyed.bit();
            }
        }
        if searches_with_keywords > 1 {
            keywords.sort_unstable_by_key(|k| k.0);
        }
        keywords
    }

    /// What `field` holds written in the `encodings` it may hold, decoded: in its text, or in
    /// each of a path's segments. Kept out of the loop over fields, which few of them reach.
    #[inline(never)]
    fn scan_encoded(
        &self,
        field: &Field<'_>,
        encodings: Encodings,
        now_secs: u64,
        found_before: usize,
        memo: &mut HintMemo<'_>,
        out: &mut Vec<Found>,
    ) {
        let mut hits = Vec::new();
        let by_segment = field.part == Part::Path && !field.decoded;
        let mut next_offset = 0;
        let segments = by_segment.then(|| field.text.split('/'));
        let whole = (!by_segment).then_some(field.text);
        for piece in segments.into_iter().flatten().chain(whole) {
            // Pieces are the field's text, or its segments with a `/` after each.
            let offset = next_offset;
            next_offset += piece.len() + 1;
            let raw = if field.decoded {
                field.raw.clone()
            } else {
                field.raw.start + offset..field.raw.start + offset + piece.len()
            };
            if let Some(decoded) = encodings
                .escaped
                .then(|| fields::escapes_decoded(piece))
                .flatten()
            {
                let decoded = Field {
                    text: &decoded,
                    raw: raw.clone(),
                    decoded: true,
                    // Another decoding than the JSON string's.
                    escaped: None,
                    ..*field
                };
                hits.clear();
                let triggered = self.keywords_in(decoded.text);
                self.scan_field_with(&decoded, now_secs, triggered, memo, &mut hits);
                // What the field showed as written is found already.
                hits.retain(|hit| {
                    let value = decoded.text.get(hit.span.clone()).unwrap_or("");
                    !found_already(&out[found_before..], value, &raw)
                });
                self.push_found(&decoded, &hits, out);
            }
            if let Some(decoded) = encodings
                .base64
                .then(|| fields::base64_decoded(piece))
                .flatten()
            {
                self.push_found_in_base64(field, raw, &decoded, now_secs, found_before, out);
            }
        }
    }

    /// What the text `decoded` from base64 in `field` (at `raw` of the source) holds, read as
    /// a body of its own (JSON if it looks it: claims, a state object) and not decoded again:
    /// one level is what gateways and links write, and the bound keeps hostile nesting linear.
    /// Each value is found at the whole of `raw`, under the field's name.
    fn push_found_in_base64(
        &self,
        field: &Field<'_>,
        raw: Range<usize>,
        decoded: &str,
        now_secs: u64,
        found_before: usize,
        out: &mut Vec<Found>,
    ) {
        let content_type = decoded
            .trim_start()
            .starts_with(['{', '['])
            .then_some("application/json");
        let mut inside = Vec::new();
        self.scan_text(
            Source::Body(content_type),
            decoded,
            now_secs,
            Depth::Inner,
            &mut inside,
        );
        self.push_found_inside(field, inside, Inside::Whole(raw), found_before, out);
    }

    /// What the queries written inside `field` hold (a URL in a `Referer` or `Location`, in a
    /// JSON string, in a `redirect_uri` parameter; a fragment such as `#access_token=...`):
    /// each run after a `?` or `#` that holds a `=` is read as a query, so that a parameter
    /// named as a secret is hidden there as in the request's own query. Runs end at
    /// [`QUERY_ENDS`] and do not overlap, so each byte is read once.
    fn scan_queries_inside(
        &self,
        field: &Field<'_>,
        now_secs: u64,
        found_before: usize,
        out: &mut Vec<Found>,
    ) {
        let bytes = field.text.as_bytes();
        let mut from = 0;
        while let Some(mark) = memchr::memchr2(b'?', b'#', &bytes[from..]).map(|at| from + at) {
            let start = mark + 1;
            let end = bytes[start..]
                .iter()
                .position(|b| QUERY_ENDS.contains(b))
                .map_or(bytes.len(), |at| start + at);
            from = end;
            // Both marks are ASCII: the run lies on character boundaries.
            let query = &field.text[start..end];
            if !query.contains('=') {
                continue;
            }
            let mut inside = Vec::new();
            self.scan_text(Source::Query, query, now_secs, Depth::Inner, &mut inside);
            self.push_found_inside(field, inside, Inside::At(start), found_before, out);
        }
    }

    /// What the JSON document `field` holds as its text (a webhook's or a queue message's
    /// `"body": "{\"password\": ...}"`, a form field or header carrying JSON) holds, read as a
    /// JSON body, once: a member's name speaks for its value there as in any body.
    #[inline(never)]
    fn scan_json_inside(
        &self,
        field: &Field<'_>,
        now_secs: u64,
        found_before: usize,
        out: &mut Vec<Found>,
    ) {
        let mut inside = Vec::new();
        let json = Source::Body(Some("application/json"));
        self.scan_text(json, field.text, now_secs, Depth::Inner, &mut inside);
        self.push_found_inside(field, inside, Inside::At(0), found_before, out);
    }

    /// What the names set to values inside `field` say of them ([`fields::assignments`]): a
    /// GraphQL query's `password: "..."`, an environment entry's `DB_PASSWORD=...`, a text
    /// body's `api_key: ...`. Each value is read as a form field under its name, so a name
    /// vouches for its value there as a parameter's does; names that say nothing (most) cost
    /// a look in the memo of hints.
    #[inline(never)]
    fn scan_assignments_inside(
        &self,
        field: &Field<'_>,
        flags: fields::Flags,
        now_secs: u64,
        found_before: usize,
        memo: &mut HintMemo<'_>,
        out: &mut Vec<Found>,
    ) {
        let mut inside = Vec::new();
        // A `name` or `key` set just before a `value` names it (`- name: DB_PASSWORD` then
        // `value: ...`, as Kubernetes manifests in YAML write a container's environment), as
        // sibling members do in JSON: the name, and where its own findings are.
        let mut pair_name: Option<(&str, Range<usize>)> = None;
        fields::assignments(field.text, flags, &mut |name, value| {
            let member = pair_member(name);
            let named_by = pair_name.take();
            let found_before = inside.len();
            if let (Some(PairMember::Value), Some((pair, found))) = (&member, named_by) {
                drop_name_guesses(&mut inside, found);
                self.scan_as_named(pair, field.text, value.clone(), now_secs, memo, &mut inside);
            }
            self.scan_as_named(name, field.text, value.clone(), now_secs, memo, &mut inside);
            if let Some(PairMember::Name) = member {
                pair_name = Some((&field.text[value], found_before..inside.len()));
            }
        });
        if !inside.is_empty() {
            self.push_found_inside(field, inside, Inside::At(0), found_before, out);
        }
    }

    /// What `field`, a JSON member `value`, holds under the name its sibling member gives it:
    /// `{"name": "DB_PASSWORD", "value": "..."}` as Kubernetes writes a container's
    /// environment, `{"Key": ..., "Value": ...}` as AWS writes tags, `[{"name": ..., "value":
    /// ...}]` as a form is serialised. The name vouches for the value as a parameter's does.
    #[inline(never)]
    fn scan_named_by_sibling(
        &self,
        field: &Field<'_>,
        name: &str,
        now_secs: u64,
        found_before: usize,
        memo: &mut HintMemo<'_>,
        out: &mut Vec<Found>,
    ) {
        let mut inside = Vec::new();
        let whole = 0..field.text.len();
        self.scan_as_named(name, field.text, whole, now_secs, memo, &mut inside);
        if !inside.is_empty() {
            self.push_found_inside(field, inside, Inside::At(0), found_before, out);
        }
    }

    /// What `value`, a JSON member `value` read before its sibling `name`, holds under that
    /// name: `{"value": "...", "name": "DB_PASSWORD"}`, members in another order than
    /// [`Scanner::scan_named_by_sibling`] reads.
    #[inline(never)]
    fn scan_named_after(
        &self,
        value: &UnnamedValue,
        text: &str,
        name: &Field<'_>,
        now_secs: u64,
        memo: &mut HintMemo<'_>,
        out: &mut Vec<Found>,
    ) {
        let mut inside = Vec::new();
        self.scan_as_named(
            name.text,
            text,
            value.raw.clone(),
            now_secs,
            memo,
            &mut inside,
        );
        if inside.is_empty() {
            return;
        }
        // The value's path is its sibling's with the last key changed: built only now, since
        // most values are read under no name that vouches for them.
        let sibling_path = name.name_string_naming(|n| self.finds_in_short_text(n));
        let path = sibling_path.map(|path| {
            let parent = path
                .strip_suffix(name.key.unwrap_or_default())
                .unwrap_or(&path);
            format!("{parent}{}", value.key)
        });
        for found in inside {
            // A pair closed in between may have taken findings out before this one's.
            if found_already(
                &out[value.found_before.min(out.len())..],
                &found.value,
                &found.raw,
            ) {
                continue;
            }
            out.push(Found {
                part: value.part,
                name: path.clone(),
                bare: value.bare,
                ..found
            });
        }
    }

    /// What `text[value]` holds read as a form field named `name`, into `out` (placed in
    /// `text`); nothing for names that say nothing of their values (most), at the cost of a
    /// look in the memo of hints.
    fn scan_as_named(
        &self,
        name: &str,
        text: &str,
        value: Range<usize>,
        now_secs: u64,
        memo: &mut HintMemo<'_>,
        out: &mut Vec<Found>,
    ) {
        if memo.hints(Some(name), None) == Hints::default() {
            return;
        }
        let named = Field {
            part: Part::Form,
            name: Some(name),
            json: None,
            key: Some(name),
            parent_key: None,
            text: &text[value.clone()],
            raw: value,
            decoded: false,
            escaped: None,
            bare: false,
        };
        let mut hits = Vec::new();
        let triggered = self.keywords_in(named.text);
        self.scan_field_with(&named, now_secs, triggered, memo, &mut hits);
        self.push_found(&named, &hits, out);
    }

    /// What a scan of something inside `field` found, as found in `field`: under its name, at
    /// the place `at` gives in the source text, leaving out values the field showed as written.
    fn push_found_inside(
        &self,
        field: &Field<'_>,
        inside: Vec<Found>,
        at: Inside,
        found_before: usize,
        out: &mut Vec<Found>,
    ) {
        for found in inside {
            let raw = match &at {
                Inside::Whole(raw) => raw.clone(),
                Inside::At(offset) => {
                    field.source_span(offset + found.raw.start..offset + found.raw.end)
                }
            };
            if found_already(&out[found_before..], &found.value, &raw) {
                continue;
            }
            out.push(Found {
                part: field.part,
                name: field.name_string_naming(|name| self.finds_in_short_text(name)),
                raw,
                bare: field.bare,
                ..found
            });
        }
    }

    /// `hits` in `field` as what the scan found, located in the source text.
    fn push_found(&self, field: &Field<'_>, hits: &[Hit], out: &mut Vec<Found>) {
        for hit in hits {
            let raw = field.source_span(hit.span.clone());
            out.push(Found {
                kind: hit.kind,
                part: field.part,
                // Paths star keys of a data shape themselves.
                name: field.name_string_naming(|name| self.finds_in_short_text(name)),
                raw,
                value: field.text.get(hit.span.clone()).unwrap_or("").to_string(),
                bare: field.bare,
                flags: hit.flags,
            });
        }
    }

    /// Which keyword detectors `text` triggers, as bits by [`Keyed`] index.
    fn keywords_in(&self, text: &str) -> u32 {
        let alone = self
            .lone_keywords
            .iter()
            .filter(|(finder, _)| finder.find(text.as_bytes()).is_some())
            .fold(0, |mask, (_, k)| mask | k.bit());
        self.keywords
            .find_iter(text)
            .filter_map(|m| self.keyword_owner.get(m.pattern().as_usize()))
            .fold(alone, |mask, k| mask | k.bit())
    }

    /// Whether `name` (a JSON key, a parameter's or cookie's name) is data rather than a field
    /// name: by its shape ([`json::is_data_key`]), or because this scanner finds something in
    /// it (a token, which looks like a name). Data names are kept nowhere and shown as `*`.
    pub fn is_data_name(&self, name: &str) -> bool {
        json::is_data_key(name) || self.finds_in_short_text(name)
    }

    /// Whether this scanner finds anything in `text`, a name or a path segment read as a value
    /// without a field name: the part of [`Scanner::is_data_name`] beyond the name's shape.
    /// Texts without a digit or an `@` that are shorter than a token are passed over unread.
    pub fn finds_in_short_text(&self, text: &str) -> bool {
        if !json::key_may_hold_data(text.as_bytes()) {
            return false;
        }
        let mut found = Vec::new();
        self.scan_source(Source::Path, text, 0, &mut found);
        !found.is_empty()
    }

    /// Everything found in one field, without overlaps (the earlier, then longer, match wins).
    pub fn scan_field(&self, field: &Field<'_>, now_secs: u64, out: &mut Vec<Hit>) {
        let triggered = self.keywords_in(field.text);
        hints::with_memo(|memo| self.scan_field_with(field, now_secs, triggered, memo, out));
    }

    fn scan_field_with(
        &self,
        field: &Field<'_>,
        now_secs: u64,
        triggered: u32,
        memo: &mut HintMemo<'_>,
        out: &mut Vec<Hit>,
    ) {
        let text = field.text;
        if text.is_empty() {
            return;
        }
        let hints = match field.part {
            Part::Path | Part::Body | Part::Argument => Hints::default(),
            _ => memo.hints(field.key, field.parent_key),
        };
        let start = out.len();
        if self.by_name(field, hints, out) {
            return;
        }
        if triggered != 0 && text.len() >= MIN_KEYWORD_FIELD_BYTES {
            self.keyed_detectors(text, now_secs, triggered, out);
        }
        self.shape_detectors(text, hints, out);
        if out.len() == start && hints.has(WHOLE_VALUE_HINTS) {
            self.whole_value_by_hint(field, hints, out);
        }
        for (index, custom) in self.custom.iter().enumerate() {
            // The hint is matched against the name that says what the value is: the
            // parameter, header or cookie name, or a JSON member's key.
            let named = custom.key_hint.as_deref().is_none_or(|hint| {
                field
                    .key
                    .is_some_and(|name| name.to_ascii_lowercase().contains(hint))
            });
            if named {
                let kind = TypeRef::Custom(u16::try_from(index).unwrap_or(u16::MAX));
                for m in custom.regex.find_iter(text) {
                    if !m.is_empty() {
                        out.push(hit(kind, m.range()));
                    }
                }
            }
        }
        remove_overlaps(out, start);
    }

    /// Values a name alone vouches for, whole: passwords, session cookies, signatures.
    /// Returns whether the field is done.
    fn by_name(&self, field: &Field<'_>, hints: Hints, out: &mut Vec<Hit>) -> bool {
        let text = field.text;
        let whole = 0..text.len();
        let about = hints.has(Hints::ABOUT_SECRET);
        if field.part == Part::Cookie {
            if hints.has(Hints::SESSION) && text.len() >= 8 && !about && !is_placeholder(text) {
                out.push(hit(DataType::SessionCookie.into(), whole));
                return true;
            }
            return false;
        }
        // A session carried anywhere but a cookie, a header of its own (`X-Session-Id`), a
        // parameter (`?sid=`, as servers that cannot set cookies do) or a login answer's
        // member (`"sessionId"`), is what a session cookie is: whoever holds it is logged in.
        // One token, not a time or a list.
        let one_token = || {
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.~+/=".contains(&b))
        };
        if hints.has(Hints::SESSION) && !about && is_token_like(text) && one_token() {
            out.push(hit(DataType::SecretField.into(), whole));
            return true;
        }
        if matches!(field.part, Part::Query | Part::Form)
            && hints.has(Hints::SIGNATURE)
            && text.len() >= 16
        {
            out.push(hit(DataType::SignedUrl.into(), whole));
            return true;
        }
        if hints.has(Hints::PASSWORD) && !about && !is_placeholder(text) {
            out.push(hit(DataType::Password.into(), whole));
            return true;
        }
        if hints.has(Hints::KEY_MEMBER) && field.json.is_some() && is_jwk_private_member(text) {
            out.push(hit(DataType::PrivateKey.into(), whole));
            return true;
        }
        false
    }

    fn keyed_detectors(&self, text: &str, now_secs: u64, triggered: u32, out: &mut Vec<Hit>) {
        for keyed in Keyed::ALL {
            let needed_missing = keyed
                .needs()
                .is_some_and(|needed| triggered & needed.bit() == 0);
            if triggered & keyed.bit() == 0 || needed_missing {
                continue;
            }
            let regex = &self.keyed[keyed as usize];
            // Only the credential schemes capture a group (the part after the scheme); finding
            // bounds alone is much cheaper than resolving groups.
            let spans: Vec<Range<usize>> = if matches!(keyed, Keyed::Bearer | Keyed::Basic) {
                regex
                    .captures_iter(text)
                    .filter_map(|c| c.get(1).or_else(|| c.get(0)).map(|m| m.range()))
                    .collect()
            } else {
                regex.find_iter(text).map(|m| m.range()).collect()
            };
            for range in spans {
                let value = &text[range.clone()];
                let found =
                    match keyed {
                        Keyed::Email => {
                            let trimmed = value.trim_end_matches(['.', '-']);
                            validate::is_email(trimmed).then(|| {
                                hit(
                                    DataType::Email.into(),
                                    range.start..range.start + trimmed.len(),
                                )
                            })
                        }
                        Keyed::Jwt => jwt(value, now_secs).map(|flags| Hit {
                            kind: DataType::Jwt.into(),
                            span: range,
                            flags,
                        }),
                        Keyed::Bearer => match jwt(value, now_secs) {
                            Some(flags) => Some(Hit {
                                kind: DataType::Jwt.into(),
                                span: range,
                                flags,
                            }),
                            None => is_token_like(value)
                                .then(|| hit(DataType::BearerToken.into(), range)),
                        },
                        Keyed::Basic => is_basic_credentials(value)
                            .then(|| hit(DataType::BasicAuth.into(), range)),
                        Keyed::Aws => Some(hit(DataType::AwsAccessKey.into(), range)),
                        Keyed::Github => Some(hit(DataType::GithubToken.into(), range)),
                        Keyed::Gitlab => Some(hit(DataType::GitlabToken.into(), range)),
                        Keyed::Slack => Some(hit(DataType::SlackToken.into(), range)),
                        Keyed::Stripe => Some(hit(DataType::StripeKey.into(), range)),
                        Keyed::Google => Some(hit(DataType::GoogleApiKey.into(), range)),
                        Keyed::PrivateKey => Some(hit(DataType::PrivateKey.into(), range)),
                        Keyed::UrlCredentials => {
                            url_password(value).then(|| hit(DataType::UrlCredentials.into(), range))
                        }
                        Keyed::SignedUrl => {
                            // Hide the signature, not the `?name=` before it.
                            let offset = value.find('=').map_or(0, |i| i + 1);
                            Some(hit(
                                DataType::SignedUrl.into(),
                                range.start + offset..range.end,
                            ))
                        }
                        Keyed::Mrz => validate::passport_mrz_line(value)
                            .map(|_| hit(DataType::Passport.into(), range)),
                    };
                out.extend(found);
            }
        }
    }

    fn shape_detectors(&self, text: &str, hints: Hints, out: &mut Vec<Hit>) {
        let Shape {
            digits,
            capitals,
            dots,
            colons,
        } = Shape::of(text.as_bytes());
        if digits == 0 {
            return;
        }
        if digits >= MIN_NUMBER_DIGITS && is_uuid_or_timestamp(text.as_bytes()) {
            return;
        }
        if digits >= MIN_NUMBER_DIGITS
            && most_digits_in_a_number(text.as_bytes()) >= MIN_NUMBER_DIGITS
        {
            numbers(text, hints, out);
        }
        if capitals >= 2 && digits >= 8 && text.len() >= 15 && has_iban_country_and_check(text) {
            for m in self.shapes.iban.find_iter(text) {
                if let Some(len) = iban_prefix(m.as_str()) {
                    out.push(hit(DataType::Iban.into(), m.start()..m.start() + len));
                }
            }
        }
        let refuted = hints.has(Hints::NOT_PERSONAL);
        if dots >= 3 && digits >= 4 && !refuted {
            for m in self.shapes.ipv4.find_iter(text) {
                if validate::is_ipv4(m.as_str()) && !is_version_context(text, m.start()) {
                    out.push(hit(DataType::IpAddress.into(), m.range()));
                }
            }
        }
        // An IPv6 address has eight groups (seven colons), six and an IPv4 address (six), or
        // `::` for the groups left out: with none of these no token can be one.
        if (colons >= MIN_UNCOMPRESSED_IPV6_COLONS || (colons >= 2 && text.contains("::")))
            && !refuted
        {
            for m in self.shapes.ipv6_token.find_iter(text) {
                let token = m.as_str();
                if validate::is_ipv6(token) {
                    out.push(hit(DataType::IpAddress.into(), m.range()));
                }
            }
        }
    }

    /// Types a name alone points at, checked on the whole value when no pattern matched (only
    /// for names with one of [`WHOLE_VALUE_HINTS`]).
    fn whole_value_by_hint(&self, field: &Field<'_>, hints: Hints, out: &mut Vec<Hit>) {
        let text = field.text.trim();
        let lead = field.text.len() - field.text.trim_start().len();
        let whole = lead..lead + text.len();
        if text.is_empty() {
            return;
        }
        let kind = if hints.has(Hints::BIRTH) && validate::is_date(date_part(text)) {
            Some(DataType::DateOfBirth)
        } else if hints.has(Hints::PASSPORT) && validate::is_passport_number(text) {
            Some(DataType::Passport)
        } else if hints.has(Hints::NATIONAL_ID) && validate::is_national_id(text) {
            Some(DataType::NationalId)
        } else if hints.has(Hints::ACCOUNT) && is_account_id(text) {
            Some(DataType::AccountId)
        } else if hints.has(Hints::SECRET)
            && !hints.has(Hints::ABOUT_SECRET)
            && text.len() >= 8
            && !is_placeholder(text)
        {
            Some(DataType::SecretField)
        } else {
            None
        };
        out.extend(kind.map(|k| hit(k.into(), whole)));
    }
}

/// The hints that can vouch for a whole value in [`Scanner::whole_value_by_hint`].
const WHOLE_VALUE_HINTS: Hints = Hints::BIRTH
    .union(Hints::PASSPORT)
    .union(Hints::NATIONAL_ID)
    .union(Hints::ACCOUNT)
    .union(Hints::SECRET);

/// The fewest colons in an IPv6 address written without `::`: six groups and an IPv4 address.
const MIN_UNCOMPRESSED_IPV6_COLONS: usize = 6;

/// How many of a text's bytes each shape detector's gate looks at.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Shape {
    digits: usize,
    capitals: usize,
    dots: usize,
    colons: usize,
}

/// Bits of each count in [`SHAPE_COUNTS`]' packed entries.
const SHAPE_COUNTER_BITS: u32 = 16;

/// Bytes counted before the packed counters are unpacked: one more could overflow them.
const SHAPE_BYTES_PER_FLUSH: usize = (1 << SHAPE_COUNTER_BITS) - 1;

/// What each byte adds to the four counts, packed in one word (digits in the low counter, then
/// capitals, dots, colons): a field's shape costs one load and one add per byte, where four
/// separate counts read every field four times and short fields, most of them, never filled a
/// vector.
const SHAPE_COUNTS: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        let counts = [
            b.is_ascii_digit(),
            b.is_ascii_uppercase(),
            b == b'.',
            b == b':',
        ];
        let mut counter = 0;
        while counter < counts.len() {
            if counts[counter] {
                table[byte] |= 1 << (counter as u32 * SHAPE_COUNTER_BITS);
            }
            counter += 1;
        }
        byte += 1;
    }
    table
};

impl Shape {
    fn of(bytes: &[u8]) -> Shape {
        let mut shape = Shape::default();
        for block in bytes.chunks(SHAPE_BYTES_PER_FLUSH) {
            let packed = block
                .iter()
                .fold(0u64, |sum, &byte| sum + SHAPE_COUNTS[usize::from(byte)]);
            let counter = |index: u32| usize::from((packed >> (index * SHAPE_COUNTER_BITS)) as u16);
            shape.digits += counter(0);
            shape.capitals += counter(1);
            shape.dots += counter(2);
            shape.colons += counter(3);
        }
        shape
    }
}

/// Whether `text` is a UUID (`8-4-4-4-12` hex digits) or an ISO 8601 date-time
/// (`2024-05-12T10:22:33`, with an optional fraction and zone): the digit-heavy values APIs
/// carry most, in ids and timestamps of nearly every record. Their digits are structure, never a
/// number, IBAN or address the shape detectors look for, and telling the format costs a fraction
/// of reading the value for numbers (a date of birth is still found by its field's name).
fn is_uuid_or_timestamp(bytes: &[u8]) -> bool {
    if bytes.len() == validate::UUID_BYTES {
        return validate::is_uuid(bytes);
    }
    let Some((date_time, mut rest)) = bytes.split_at_checked(DATE_TIME_BYTES) else {
        return false;
    };
    // Separators first, at fixed places, turn most other values away after a load or two; the
    // digits are then counted without a branch per byte.
    if !DATE_TIME_SEPARATORS
        .iter()
        .all(|&(i, separator)| date_time[i] == separator)
        || count_marked(&DECIMAL_DIGITS, date_time) != DATE_TIME_DIGITS
    {
        return false;
    }
    // A fraction of a second, then `Z` or an offset, each optional.
    if let Some(fraction) = rest.strip_prefix(b".") {
        let digits = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
        if !(1..=MAX_FRACTION_DIGITS).contains(&digits) {
            return false;
        }
        rest = &fraction[digits..];
    }
    match rest {
        [] | [b'Z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] | [b'+' | b'-', h1, h2, m1, m2] => {
            [h1, h2, m1, m2].iter().all(|b| b.is_ascii_digit())
        }
        _ => false,
    }
}

/// `2024-05-12T10:22:33`: fourteen digits, two dashes, a `T` and two colons.
const DATE_TIME_BYTES: usize = 19;
const DATE_TIME_DIGITS: usize = 14;
const DATE_TIME_SEPARATORS: [(usize, u8); 5] =
    [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];

/// Nanoseconds: the finest fraction of a second written.
const MAX_FRACTION_DIGITS: usize = 9;

/// Whether two capitals are followed by two digits somewhere: how every IBAN begins, and
/// what the IBAN pattern needs before it is worth running (a date-time's `T` and `Z` are two
/// capitals too).
fn has_iban_country_and_check(text: &str) -> bool {
    text.as_bytes().windows(4).any(|w| {
        w[0].is_ascii_uppercase()
            && w[1].is_ascii_uppercase()
            && w[2].is_ascii_digit()
            && w[3].is_ascii_digit()
    })
}

/// The bytes a number is read over (`numbers`): digits and the punctuation of written numbers.
fn is_number_byte(byte: u8) -> bool {
    NUMBER_BYTE_CLASS[usize::from(byte)] != NOT_A_NUMBER_BYTE
}

/// The most digits `numbers` could read as one number: per stretch of [`is_number_byte`]
/// bytes, all its digits, or only those before its last space when a word is glued to its end
/// (`numbers` drops the glued token). Every number `numbers` classifies lies in such a part
/// of a stretch, and none with fewer than [`MIN_NUMBER_DIGITS`] digits is anything (national
/// ids included), so this says whether the number reader can find anything before it looks at
/// the text byte by byte, which costs more (and skips date-times, whose date is glued to a
/// `T`).
fn most_digits_in_a_number(bytes: &[u8]) -> usize {
    let alnum = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_alphanumeric);
    let mut most = 0;
    let mut digits = 0;
    let mut digits_before_space = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let class = NUMBER_BYTE_CLASS[usize::from(byte)];
        if class != NOT_A_NUMBER_BYTE {
            if byte == b' ' {
                digits_before_space = digits;
            }
            digits += usize::from(class == NUMBER_DIGIT);
            continue;
        }
        if digits > 0 {
            // An uppercase letter standing alone after a number is read with it (`12345678Z`).
            let letter_read_with_it = byte.is_ascii_uppercase() && !alnum(i + 1);
            let glued = alnum(i) && !letter_read_with_it;
            most = most.max(if glued { digits_before_space } else { digits });
        }
        digits = 0;
        digits_before_space = 0;
    }
    most.max(digits)
}

/// [`NUMBER_BYTE_CLASS`]' classes.
const NOT_A_NUMBER_BYTE: u8 = 0;
const NUMBER_PUNCTUATION: u8 = 1;
const NUMBER_DIGIT: u8 = 2;

/// What each byte is to [`most_digits_in_a_number`], which reads every byte of the fields it
/// is asked about.
const NUMBER_BYTE_CLASS: [u8; 256] = byte_table([
    (b" -.()+", NUMBER_PUNCTUATION),
    (b"0123456789", NUMBER_DIGIT),
]);

fn hit(kind: TypeRef, span: Range<usize>) -> Hit {
    Hit {
        kind,
        span,
        flags: HitFlags::default(),
    }
}

/// Keeps, of overlapping hits from `start` on, the one starting first (the longer on a tie).
fn remove_overlaps(out: &mut Vec<Hit>, start: usize) {
    if out.len() < start + 2 {
        return;
    }
    let mut hits = out.split_off(start);
    hits.sort_by(|a, b| {
        a.span
            .start
            .cmp(&b.span.start)
            .then(b.span.end.cmp(&a.span.end))
    });
    let mut end = None;
    for hit in hits {
        if end.is_none_or(|end| hit.span.start >= end) {
            end = Some(hit.span.end);
            out.push(hit);
        }
    }
}

/// Values that stand for "no value" in forms and configs.
fn is_placeholder(text: &str) -> bool {
    let t = text.trim();
    t.is_empty()
        || t.bytes()
            .all(|b| b == b'*' || b == b'x' || b == b'X' || b == b'.')
        || t.contains("[REDACTED")
        || matches!(
            t,
            "null" | "none" | "None" | "undefined" | "true" | "false" | "<redacted>"
        )
}

/// Whether the query `text` is an OAuth authorization response (`?code=...&state=...`), whose
/// code is a credential (traded for tokens): `code` alone names a country's, a zip's, an
/// error's, and is not read as secret on its own.
fn is_authorization_response(text: &str) -> bool {
    let names = || {
        text.split('&')
            .map(|pair| pair.split('=').next().unwrap_or(""))
    };
    names().any(|name| name == "code") && names().any(|name| name == "state")
}

/// Whether `text` is, by its ends, a JSON object or array. Every field is asked: the first
/// byte tells nearly all of them at once.
#[inline]
fn holds_json(text: &str) -> bool {
    let bytes = text.as_bytes();
    let close = match bytes.first() {
        Some(b'{') => b'}',
        Some(b'[') => b']',
        _ => return false,
    };
    bytes.len() > 2 && text.trim_ascii_end().as_bytes().last() == Some(&close)
}

/// A bearer token, not a word: long enough and with a digit or mixed case.
fn is_token_like(value: &str) -> bool {
    let bytes = value.as_bytes();
    let has = |f: fn(&u8) -> bool| bytes.iter().any(f);
    value.len() >= 12
        && !is_placeholder(value)
        && (has(u8::is_ascii_digit) || (has(u8::is_ascii_uppercase) && has(u8::is_ascii_lowercase)))
}

/// `Basic` credentials: base64 of `user:password`, in UTF-8, with a user.
fn is_basic_credentials(value: &str) -> bool {
    base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .is_some_and(|text| {
            text.split_once(':')
                .is_some_and(|(user, _)| !user.is_empty() && !user.contains(char::is_control))
        })
}

/// A JWT: three base64url parts whose header decodes to a JSON object with an `alg`. Returns
/// the flags (alg `none`, expired) of a real one.
fn jwt(value: &str, now_secs: u64) -> Option<HitFlags> {
    let mut parts = value.split('.');
    let (header, payload) = (parts.next()?, parts.next()?);
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header: serde_json::Value = serde_json::from_slice(&engine.decode(header).ok()?).ok()?;
    let alg = header.get("alg")?.as_str()?;
    let expires = engine
        .decode(payload)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|payload| payload.get("exp").and_then(serde_json::Value::as_u64));
    Some(HitFlags {
        jwt_alg_none: alg.eq_ignore_ascii_case("none"),
        jwt_expired: now_secs > 0 && expires.is_some_and(|exp| exp < now_secs),
    })
}

/// `scheme://user:password@host`, with a password that is not a placeholder.
fn url_password(value: &str) -> bool {
    let Some(rest) = value.split_once("://").map(|(_, rest)| rest) else {
        return false;
    };
    let Some(userinfo) = rest.rsplit_once('@').map(|(userinfo, _)| userinfo) else {
        return false;
    };
    // No user is as good as one: `redis://:password@host` is how Redis takes its password.
    userinfo
        .split_once(':')
        .is_some_and(|(_, password)| !is_placeholder(password))
}

/// How many bytes of an IBAN-shaped match are the IBAN: the country's length of characters
/// (spaces between groups allowed), when they pass the check. Only the prefix of exactly that
/// many characters can be the country's IBAN, so it alone is checked, instead of every
/// prefix of 15 characters or more (each check copying the prefix twice).
fn iban_prefix(candidate: &str) -> Option<usize> {
    let mut characters = candidate.bytes().filter(|&b| b != b' ');
    let country = [characters.next()?, characters.next()?];
    let length = validate::iban_length(&country)?;
    let mut compact = 0;
    for (i, byte) in candidate.bytes().enumerate() {
        if byte == b' ' {
            continue;
        }
        compact += 1;
        if compact == length && validate::is_iban(&candidate[..=i]) {
            let next = candidate.as_bytes().get(i + 1);
            if next.is_none_or(|b| !b.is_ascii_alphanumeric()) {
                return Some(i + 1);
            }
        }
    }
    None
}

/// `v1.2.3.4` or `version 10.0.0.1`: a version number, not an address.
fn is_version_context(text: &str, start: usize) -> bool {
    // Only the few bytes before the match: looking further would cost time per match.
    let before = text.as_bytes()[start.saturating_sub(16)..start].trim_ascii_end();
    let word = "version".as_bytes();
    before.last().is_some_and(|b| matches!(b, b'v' | b'V'))
        || (before.len() >= word.len()
            && before[before.len() - word.len()..].eq_ignore_ascii_case(word))
}

/// The date of a date-time (`1985-04-12T00:00:00Z` → `1985-04-12`).
fn date_part(text: &str) -> &str {
    text.split(['T', ' ']).next().unwrap_or(text)
}

/// An account number or id: 4 to 34 letters and digits, at least 4 of them digits.
fn is_account_id(text: &str) -> bool {
    (4..=34).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && text.bytes().filter(u8::is_ascii_digit).count() >= 4
}

/// Finds runs of digits and number punctuation, and classifies each.
fn numbers(text: &str, hints: Hints, out: &mut Vec<Hit>) {
    let bytes = text.as_bytes();
    let alnum = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_alphanumeric);
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        let starts = byte.is_ascii_digit()
            || (matches!(byte, b'+' | b'(') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit));
        // Not glued to a word before it, directly or through a joiner (`SKU-0852`, `v1.2`).
        let joined = i >= 2 && matches!(bytes[i - 1], b'-' | b'_' | b'.' | b'/') && alnum(i - 2);
        let boundary = i == 0 || !(alnum(i - 1) || joined);
        if !starts {
            i += 1;
            continue;
        }
        if !boundary {
            // Inside an identifier (`a06a6975`, `v1`, `recv(65536)`): skip the rest of it at
            // once, and at least this byte, which may be the `+` or `(` that started it.
            i += 1;
            while alnum(i) {
                i += 1;
            }
            continue;
        }
        let start = i;
        while i < bytes.len() && is_number_byte(bytes[i]) {
            i += 1;
        }
        // A trailing letter belongs to ids such as a DNI (`12345678Z`).
        if i < bytes.len() && bytes[i].is_ascii_uppercase() && !alnum(i + 1) {
            i += 1;
        }
        let mut end = i;
        // Glued to a word after it (`123abc`): that last token is part of an identifier; the
        // numbers before it, up to the last space, still count.
        if alnum(end) {
            match text[start..end].rfind(' ') {
                Some(space) => end = start + space,
                None => continue,
            }
        }
        while end > start && !bytes[end - 1].is_ascii_alphanumeric() {
            end -= 1;
        }
        if end == start {
            continue;
        }
        let whole_field = start == 0 && text[end..].trim().is_empty();
        let run = start..end;
        if run.len() <= MAX_NUMBER_BYTES
            && classify_number(&text[run.clone()], hints, whole_field, run.start, out)
        {
            continue;
        }
        // Not one number: perhaps several, separated by spaces. Try a few pieces at a time
        // (a grouped card is four or five, a phone number two to four), longest first.
        let mut pieces: Vec<Range<usize>> = Vec::new();
        let mut piece_start = run.start;
        for piece in text[run.clone()].split(' ') {
            if !piece.is_empty() {
                pieces.push(piece_start..piece_start + piece.len());
            }
            piece_start += piece.len() + 1;
        }
        let mut first = 0;
        while first < pieces.len() {
            let mut taken = 1;
            for count in (1..=MAX_GROUPED_PIECES.min(pieces.len() - first)).rev() {
                let range = pieces[first].start..pieces[first + count - 1].end;
                let candidate =
                    text[range.clone()].trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
                if range.len() < run.len()
                    && candidate.len() >= MIN_NUMBER_DIGITS
                    && classify_number(candidate, hints, false, range.start, out)
                {
                    taken = count;
                    break;
                }
            }
            first += taken;
        }
    }
}

/// Space-separated pieces tried together as one number: a card in groups of four is at most
/// five pieces (19 digits), an international phone number about as many.
const MAX_GROUPED_PIECES: usize = 5;

/// Decides what a number is, if anything, and records it. `whole_field` says the number is the
/// field's entire value, which is when the field's name speaks for it.
fn classify_number(
    text: &str,
    hints: Hints,
    whole_field: bool,
    offset: usize,
    out: &mut Vec<Hit>,
) -> bool {
    let span = offset..offset + text.len();
    let named = |hint: Hints| whole_field && hints.has(hint);
    let refuted = hints.has(Hints::NOT_PERSONAL);
    let kind = classify_digits(text, &named, refuted);
    match kind {
        Some(kind) => {
            out.push(hit(kind.into(), span));
            true
        }
        None => false,
    }
}

fn classify_digits(text: &str, named: &dyn Fn(Hints) -> bool, refuted: bool) -> Option<DataType> {
    if validate::national_id_is_distinctive(text) && validate::is_national_id(text) {
        return Some(DataType::NationalId);
    }
    let digits = validate::digits_of(text.strip_prefix('+').unwrap_or(text))?;
    let n = digits.len();
    if n < MIN_NUMBER_DIGITS {
        return None;
    }
    let card_separators = text
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b' ' || b == b'-');
    let grouped = text.contains([' ', '-']);
    if card_separators
        && validate::CARD_LENGTHS.contains(&n)
        && validate::is_card_number(&digits)
        && (!refuted || grouped || named(Hints::CARD))
    {
        return Some(DataType::CardNumber);
    }
    if n == 9 && validate::is_ssn(&digits) {
        let formatted = validate::ssn_is_formatted(text);
        if named(Hints::SSN) || (formatted && !refuted) {
            return Some(DataType::Ssn);
        }
    }
    if n == 9 && named(Hints::ROUTING) && validate::is_aba_routing(&digits) {
        return Some(DataType::RoutingNumber);
    }
    if named(Hints::NATIONAL_ID) && validate::is_national_id(text) {
        return Some(DataType::NationalId);
    }
    if named(Hints::BIRTH) && validate::is_date(text) {
        return Some(DataType::DateOfBirth);
    }
    let phone_named = named(Hints::PHONE);
    if (!refuted || text.starts_with('+') || phone_named) && validate::is_phone(text, phone_named) {
        return Some(DataType::Phone);
    }
    if named(Hints::ACCOUNT) && is_account_id(text) {
        return Some(DataType::AccountId);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(source: Source<'_>, text: &str) -> Vec<(String, String)> {
        let scanner = Scanner::builtin();
        let mut out = Vec::new();
        scanner.scan_source(source, text, 1_800_000_000, &mut out);
        out.into_iter()
            .map(|f| {
                (
                    scanner.type_name(f.kind).to_string(),
                    text[f.raw].to_string(),
                )
            })
            .collect()
    }

    /// What a scan of `text` as a JSON body finds: type, value as the text holds it, and name.
    fn located_in_json(text: &str) -> Vec<(String, String, String)> {
        let scanner = Scanner::builtin();
        let mut out = Vec::new();
        scanner.scan_source(Source::Body(Some("application/json")), text, 0, &mut out);
        out.into_iter()
            .map(|f| {
                let name = f.name.unwrap_or_default();
                (
                    scanner.type_name(f.kind).to_string(),
                    text[f.raw].to_string(),
                    name,
                )
            })
            .collect()
    }

    fn owned((kind, value, name): (&str, &str, &str)) -> (String, String, String) {
        (kind.to_string(), value.to_string(), name.to_string())
    }

    #[test]
    fn a_value_named_by_a_later_sibling_is_found_at_its_own_path() {
        let text = r#"{"env":[{"value":"UTC","name":"TZ"},{"Value":"Hunter2-Xk29","Name":"DB_PASSWORD"}]}"#;
        assert_eq!(
            located_in_json(text),
            [("password", "Hunter2-Xk29", "$.env[1].Value")].map(owned)
        );
    }

    #[test]
    fn an_array_element_named_by_the_flag_or_entry_name_before_it_is_found() {
        let text = r#"{"args":["--verbose","--password","Hunter2-Xk29","-v"],
            "headers":[["Accept","json"],["X-Api-Key","k3yV4lu3abc123"]],
            "required":["password","Hunter2-Xk29"],"flags":["--password","--token"],
            "pair":["password","Hunter2-Xk29"],"later":[["password"],"Hunter2-Xk29"]}"#;
        // A list of names, a flag followed by a flag, a pair not in a list, and an element
        // after an array that ends with a name name nothing.
        assert_eq!(
            located_in_json(text),
            [
                ("password", "Hunter2-Xk29", "$.args[2]"),
                ("secret_field", "k3yV4lu3abc123", "$.headers[1][1]"),
            ]
            .map(owned)
        );
    }

    #[test]
    fn a_key_beside_a_value_names_it_and_is_no_secret() {
        let scanner = Scanner::builtin();
        let found = |text: &str| {
            let mut out = Vec::new();
            scanner.scan_source(Source::Body(Some("application/json")), text, 0, &mut out);
            out.iter()
                .map(|f| (scanner.type_name(f.kind), text[f.raw.clone()].to_string()))
                .collect::<Vec<_>>()
        };
        // Tags as AWS writes them, in either order; the value under a secret's name is one.
        assert_eq!(
            found(
                r#"{"Tags":[{"Key":"Environment","Value":"production"},{"Value":"Hunter2-Xk29","Key":"DB_PASSWORD"},{"Key":"CostCenter"}]}"#
            ),
            [
                ("password", "Hunter2-Xk29".to_string()),
                ("secret_field", "CostCenter".to_string())
            ]
        );
        // Alone, a `key` holds a key; beside a value, a real one is still found by its shape.
        assert_eq!(
            found(r#"{"key":"Environment"}"#),
            [("secret_field", "Environment".to_string())]
        );
        assert_eq!(
            found(r#"{"Key":"AKIAQWERTYUIOPASDFGH","Value":"x"}"#),
            [("aws_access_key", "AKIAQWERTYUIOPASDFGH".to_string())]
        );
        // Pairs inside pairs, in every order, keep the findings' places straight.
        assert_eq!(
            found(
                r#"[{"Key":"api_token","in":{"Value":"Hunter2-Xk29","Key":"password"},"Value":"Qz81-Xk29sLqP"}]"#
            ),
            [
                ("password", "Hunter2-Xk29".to_string()),
                ("secret_field", "Qz81-Xk29sLqP".to_string())
            ]
        );
    }

    #[test]
    fn names_holding_data_are_found_and_never_shown() {
        let scanner = Scanner::builtin();
        // A token with too few digits to be data by its shape alone.
        let token = "AKIAQWERTYUIOPASDFGH";
        let text =
            format!(r#"{{"tokens":{{"{token}":{{"owner":"ann@example.com"}}}},"line1":"x"}}"#);
        let mut out = Vec::new();
        scanner.scan_source(Source::Body(Some("application/json")), &text, 0, &mut out);
        let located: Vec<(&str, String)> = out
            .iter()
            .map(|f| (&text[f.raw.clone()], f.name.clone().unwrap_or_default()))
            .collect();
        assert_eq!(
            located,
            [
                (token, "$.tokens.*".to_string()),
                ("ann@example.com", "$.tokens.*.owner".to_string())
            ]
        );
        assert!(scanner.is_data_name(token) && scanner.is_data_name("ann@example.com"));
        assert!(!scanner.is_data_name("line1") && !scanner.is_data_name("owner"));
        let query = format!("{token}=1&ann%40example.com=2&page=3");
        let mut out = Vec::new();
        scanner.scan_source(Source::Query, &query, 0, &mut out);
        let names: Vec<_> = out
            .iter()
            .map(|f| f.name.clone().unwrap_or_default())
            .collect();
        assert_eq!(names, ["*", "*"]);
    }

    fn json(text: &str) -> Vec<(String, String)> {
        found(Source::Body(Some("application/json")), text)
    }

    fn pair(kind: &str, value: &str) -> (String, String) {
        (kind.to_string(), value.to_string())
    }

    #[test]
    fn random_texts_of_detector_fragments_are_scanned_to_their_end_within_bounds() {
        // Texts glued together from the pieces the detectors look for, in random order: every
        // scan must end, and every value it reports must be a slice of the text.
        const PIECES: &[&str] = &[
            "0",
            "1234567",
            "4111 1111 1111 1111",
            "+",
            "(",
            ")",
            "-",
            ".",
            " ",
            "@",
            ":",
            "=",
            "&",
            "{",
            "}",
            "[",
            "\"",
            "\\",
            "%",
            "%2",
            "eyJhbGciOiJIUzI1NiJ9",
            "Bearer ",
            "Basic ",
            "AKIA",
            "ghp_",
            "xoxb-",
            "sk_live_",
            "DE89 3704",
            "ssn",
            "password=",
            "card",
            "é",
            "€",
            "a",
            "Z",
            "\n",
            "\\u00",
            "-----BEGIN ",
            "https://u:p@",
            "192.168.",
        ];
        let scanner = Scanner::builtin();
        let mut rng = crate::sensitive::corpus::Rng::new(0x0b5e_12fe);
        let mut out = Vec::new();
        for _ in 0..1_500 {
            let pieces = 1 + rng.below(120) as usize;
            let text: String = (0..pieces).map(|_| *rng.pick(PIECES)).collect();
            for source in [
                Source::Path,
                Source::Query,
                Source::Header("cookie"),
                Source::Header("authorization"),
                Source::Body(Some("application/json")),
                Source::Body(Some("application/x-www-form-urlencoded")),
                Source::Argument,
            ] {
                out.clear();
                scanner.scan_source(source, &text, 1_800_000_000, &mut out);
                for found in &out {
                    assert!(
                        text.get(found.raw.clone()).is_some(),
                        "{:?} is not a slice of {text:?}",
                        found.raw
                    );
                }
            }
        }
    }

    #[test]
    fn every_short_text_is_scanned_to_its_end() {
        // Every text of up to four bytes over the bytes the number reader treats specially,
        // around enough digits to wake it, through every kind of field: a loop that forgets to
        // advance hangs this test.
        const ALPHABET: &[u8] = b"a1+( -.)Z";
        const DIGITS: &str = "1234567890";
        let scanner = Scanner::builtin();
        let sources = [
            Source::Path,
            Source::Query,
            Source::Header("x-note"),
            Source::Body(Some("application/json")),
            Source::Body(Some("application/x-www-form-urlencoded")),
            Source::Body(None),
            Source::Argument,
        ];
        let mut text = Vec::new();
        let mut out = Vec::new();
        for len in 1..=4u32 {
            for mut n in 0..ALPHABET.len().pow(len) {
                text.clear();
                for _ in 0..len {
                    text.push(ALPHABET[n % ALPHABET.len()]);
                    n /= ALPHABET.len();
                }
                let short = std::str::from_utf8(&text).expect("ASCII");
                for text in [
                    format!("{short}{DIGITS}"),
                    format!("{DIGITS}{short}"),
                    format!("{short}{DIGITS}{short}"),
                ] {
                    for source in sources {
                        out.clear();
                        scanner.scan_source(source, &text, 1_800_000_000, &mut out);
                    }
                }
            }
        }
        assert!(found(Source::Argument, "sock.recv(6553612) and a+1234567").is_empty());
    }

    #[test]
    fn field_names_confirm_weak_matches_and_refute_look_alikes() {
        assert_eq!(json(r#"{"ssn":"123456789"}"#), [pair("ssn", "123456789")]);
        assert_eq!(json(r#"{"ref":"123456789"}"#), []);
        assert_eq!(
            json(r#"{"note":"ssn 123-45-6789"}"#),
            [pair("ssn", "123-45-6789")]
        );
        assert_eq!(
            json(r#"{"card":4111111111111111}"#),
            [pair("card_number", "4111111111111111")]
        );
        assert_eq!(json(r#"{"order_id":"4111111111111111"}"#), []);
        assert_eq!(
            json(r#"{"routing_number":"021000021"}"#),
            [pair("routing_number", "021000021")]
        );
        assert_eq!(json(r#"{"n":"021000021"}"#), []);
        assert_eq!(
            json(r#"{"phone":"4155552671"}"#),
            [pair("phone", "4155552671")]
        );
        assert_eq!(json(r#"{"id":"4155552671"}"#), []);
        assert_eq!(
            json(r#"{"dob":"1985-04-12"}"#),
            [pair("date_of_birth", "1985-04-12")]
        );
        assert_eq!(json(r#"{"created":"1985-04-12"}"#), []);
        // A one-time code logs in as a password does; what is said of one is no code.
        assert_eq!(
            json(r#"{"otp":"482916","mfaCode":"482916"}"#),
            [pair("password", "482916"), pair("password", "482916")]
        );
        assert_eq!(json(r#"{"otp_status":"sent","mfa_method":"sms"}"#), []);
        // A password's name in another language, in another script.
        assert_eq!(
            json(r#"{"contraseña":"Hunter2","пароль":"Hunter3"}"#),
            [pair("password", "Hunter2"), pair("password", "Hunter3")]
        );
    }

    #[test]
    fn the_private_members_of_a_json_web_key_are_private_keys() {
        let coordinate = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
        let d = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI";
        let text = format!(
            r#"{{"keys":[{{"kty":"EC","crv":"P-256","x":"{coordinate}","y":"{coordinate}","d":"{d}"}},
            {{"kty":"oct","k":"{d}"}}],"q":"a search","p":"2","d":"2024-05-01",
            "next":{{"p":"eyJhZnRlciI6MTIzNDU2Nzg5MCwic29ydCI6ImNyZWF0ZWRfYXQifQ"}}}}"#
        );
        // The public coordinates, short values under the same names and a page cursor (JSON
        // in base64url) are no keys.
        assert_eq!(
            located_in_json(&text),
            [
                ("private_key", d, "$.keys[0].d"),
                ("private_key", d, "$.keys[1].k"),
            ]
            .map(owned)
        );
    }

    #[test]
    fn secrets_are_found_by_shape() {
        let jwt_none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiIxMjM0NTY3ODkwIn0.";
        let scanner = Scanner::builtin();
        let mut out = Vec::new();
        scanner.scan_source(
            Source::Header("authorization"),
            &format!("Bearer {jwt_none}"),
            0,
            &mut out,
        );
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].kind, DataType::Jwt.into());
        assert!(out[0].flags.jwt_alg_none);
        assert_eq!(
            found(Source::Header("authorization"), "Basic dXNlcjpwYXNz"),
            [pair("basic_auth", "dXNlcjpwYXNz")]
        );
        assert_eq!(
            found(
                Source::Body(Some("text/plain")),
                "key=AKIAIOSFODNN7EXAMPLE and"
            ),
            [pair("aws_access_key", "AKIAIOSFODNN7EXAMPLE")]
        );
        assert_eq!(
            found(Source::Path, "/fetch/https://bob:s3cr3t@db.internal/x"),
            [pair("url_credentials", "https://bob:s3cr3t@db.internal")]
        );
        // A password without a user, as Redis takes it; a placeholder is none.
        let redis = |password: &str| {
            let url = format!("redis://:{password}@cache:6379/0");
            found(Source::Body(Some("text/plain")), &url)
        };
        let url = "redis://:s3cr3t@cache:6379";
        assert_eq!(redis("s3cr3t"), [pair("url_credentials", url)]);
        assert_eq!(redis("***"), []);
        assert_eq!(
            found(
                Source::Query,
                "X-Amz-Signature=0123456789abcdef0123&X-Amz-Date=1"
            ),
            [pair("signed_url", "0123456789abcdef0123")]
        );
        assert_eq!(
            found(
                Source::Header("cookie"),
                "theme=dark; session_id=a1b2c3d4e5f6; .ASPXAUTH=F00DCAFE8B1E2D3C"
            ),
            [
                pair("session_cookie", "a1b2c3d4e5f6"),
                pair("session_cookie", "F00DCAFE8B1E2D3C")
            ]
        );
        assert_eq!(
            found(
                Source::Body(Some("application/x-www-form-urlencoded")),
                "user=ann&password=hunter2"
            ),
            [pair("password", "hunter2")]
        );
    }

    #[test]
    fn keywords_searched_alone_share_no_byte_with_other_keywords() {
        // What lets their matches be merged with the automaton's by position: a match of one
        // can never hide, or be hidden by, a match of another.
        for keyed in Keyed::ALL {
            let Some(alone) = keyed.keyword_searched_alone() else {
                continue;
            };
            for other in Keyed::ALL.into_iter().filter(|other| *other != keyed) {
                let alone_too = other.keyword_searched_alone();
                for keyword in other.keywords().iter().chain(&alone_too) {
                    assert!(
                        !keyword.bytes().any(|b| alone.as_bytes().contains(&b)),
                        "{alone:?} and {keyword:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_needed_keyword_is_known_before_the_search_that_needs_it() {
        // The keyword search skips a detector whose needed keyword it has not found yet: the
        // needed one must be the automaton's (found first) or searched alone earlier.
        let position = |keyed: Keyed| Keyed::ALL.iter().position(|k| *k == keyed);
        for keyed in Keyed::ALL {
            let Some(needed) = keyed.needs() else {
                continue;
            };
            assert!(
                needed.keyword_searched_alone().is_none() || position(needed) < position(keyed),
                "{keyed:?} needs {needed:?}"
            );
        }
    }

    #[test]
    fn uuids_and_timestamps_are_told_by_their_whole_format() {
        for structured in [
            "123e4567-e89b-12d3-a456-426614174000",
            "ABCDEF01-2345-6789-ABCD-EF0123456789",
            "2024-05-12T10:22:33",
            "2024-05-12T10:22:33Z",
            "2024-05-12T10:22:33.123Z",
            "2024-05-12T10:22:33.123456789+05:30",
            "2024-05-12T10:22:33-0800",
        ] {
            assert!(is_uuid_or_timestamp(structured.as_bytes()), "{structured}");
        }
        for other in [
            "123e4567-e89b-12d3-a456-42661417400g",
            "123e4567e89b-12d3-a456-4266141740000",
            "2024-05-12 10:22:33",
            "2024-05-12T10:22:3",
            "2024-05-12T10:22:33.",
            "2024-05-12T10:22:33.1234567890Z",
            "2024-05-12T10:22:33Z 555-123-4567",
            "2024-05-12T10:22:33+5551234567",
            "2024-05-12T10:22:33+05:3",
            "4111-1111-1111-1111",
        ] {
            assert!(!is_uuid_or_timestamp(other.as_bytes()), "{other}");
        }
        // Anything else in the value is still read.
        assert_eq!(
            json(r#"{"note":"2024-05-12T10:22:33Z card 4111 1111 1111 1111"}"#),
            [pair("card_number", "4111 1111 1111 1111")]
        );
        assert_eq!(
            json(r#"{"dob":"1990-05-12T00:00:00Z"}"#),
            [pair("date_of_birth", "1990-05-12T00:00:00Z")]
        );
    }

    #[test]
    fn shape_counts_match_a_count_of_each_class() {
        // Short fields, and texts past the point where the packed counters are unpacked.
        let mut rng = crate::sensitive::corpus::Rng::new(0x5a_a9e);
        for len in [
            0,
            1,
            15,
            33,
            SHAPE_BYTES_PER_FLUSH + 17,
            3 * SHAPE_BYTES_PER_FLUSH,
        ] {
            let mixed: Vec<u8> = (0..len).map(|_| *rng.pick(b"09AZaz.:-\xff \x80")).collect();
            for bytes in [mixed, vec![b'7'; len]] {
                let count = |f: fn(&u8) -> bool| bytes.iter().filter(|b| f(b)).count();
                assert_eq!(
                    Shape::of(&bytes),
                    Shape {
                        digits: count(u8::is_ascii_digit),
                        capitals: count(u8::is_ascii_uppercase),
                        dots: count(|b| *b == b'.'),
                        colons: count(|b| *b == b':'),
                    },
                    "{len} bytes"
                );
            }
        }
    }

    #[test]
    fn iban_prefixes_are_those_every_prefix_checked_finds() {
        // The definition the country-length shortcut must agree with: the first prefix ending
        // in a character that passes the IBAN check and is not glued to more.
        fn every_prefix(candidate: &str) -> Option<usize> {
            (0..candidate.len()).find_map(|i| {
                let byte = candidate.as_bytes()[i];
                let next = candidate.as_bytes().get(i + 1);
                (byte != b' '
                    && validate::is_iban(&candidate[..=i])
                    && next.is_none_or(|b| !b.is_ascii_alphanumeric()))
                .then_some(i + 1)
            })
        }
        const IBANS: &[&str] = &[
            "GB82WEST12345698765432",
            "DE89370400440532013000",
            "FR1420041010050500013M02606",
            "NO9386011117947",
            "MT84MALT011000012345MTLCAST001S",
            "XX82WEST12345698765432",
        ];
        let mut rng = crate::sensitive::corpus::Rng::new(0x1b4e);
        let mut checked_ibans = 0;
        for _ in 0..3_000 {
            // An IBAN (or a near miss: a digit changed), spaced out at random, then glued to
            // more characters or not, and cut anywhere.
            let mut candidate = String::new();
            for (at, c) in rng.pick(IBANS).chars().enumerate() {
                if at >= 4 && rng.chance(20) {
                    candidate.push(' ');
                }
                candidate.push(if c.is_ascii_digit() && rng.chance(2) {
                    '7'
                } else {
                    c
                });
            }
            for _ in 0..rng.below(3) {
                candidate.push(*rng.pick(&[' ', 'A', '0', '-']));
            }
            let cut = 4 + rng.below(candidate.len() as u64 - 3) as usize;
            let candidate = &candidate[..cut];
            let expected = every_prefix(candidate);
            checked_ibans += usize::from(expected.is_some());
            assert_eq!(iban_prefix(candidate), expected, "{candidate:?}");
        }
        assert!(checked_ibans > 100, "{checked_ibans} IBANs found");
    }

    #[test]
    fn a_value_set_twice_is_found_at_each_place_and_once_at_each() {
        let secret = "Zq8xK2mP9wLr4TbN7vYc";
        let text = format!("DB_PASS={secret}\nAPI_TOKEN={secret}\n");
        let got = found(Source::Body(Some("text/plain")), &text);
        assert_eq!(
            got,
            [pair("password", secret), pair("secret_field", secret)]
        );
        let text = format!(r#"{{"script": "DB_PASS={secret} API_TOKEN={secret}"}}"#);
        assert_eq!(json(&text).len(), 2, "{text}");
        let text =
            format!(r#"{{"value": "{secret}", "password": "{secret}", "name": "API_TOKEN"}}"#);
        assert_eq!(json(&text).len(), 2, "{text}");
    }

    #[test]
    fn escaped_values_are_replaced_where_their_escapes_write_them() {
        let text = r#"{"note":"mail \"ann@example.com\""}"#;
        assert_eq!(json(text), [pair("email", "ann@example.com")]);
        // A value holding escapes is replaced with them: `\u0040` writes its `@`.
        let text = r#"{"note":"mail \"ann\u0040example.com\""}"#;
        assert_eq!(json(text), [pair("email", r"ann\u0040example.com")]);
    }
}
