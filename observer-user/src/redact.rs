//! Redaction: secrets and personal data seen in traffic never leave the agent unless the
//! operator asks.
//!
//! Runs over every [`ApiCall`] before any consumer serializes it, in two layers:
//!
//! 1. **By name.** Credentials wherever the protocol puts them by name: authorization and
//!    cookie headers, query parameters, JSON and form fields, and command-line arguments whose
//!    names say they hold a secret, become `[REDACTED]`.
//! 2. **By value.** The sensitive-data scanner (`sensitive::scan`) reads every header, the path,
//!    the query, the body previews and the command line with the same structure-aware detectors
//!    the findings use, and replaces each value it recognises wherever it is: card numbers are
//!    masked to their first six and last four digits, everything else becomes
//!    `[REDACTED:<type>:<tag>]` with a keyed hash (`sensitive::keyed`), so the same email in two
//!    calls has the same tag and the address itself is never shown.
//!
//! Values are replaced, names and structure are kept, so the output still says *that* a call
//! carried a token or an email address and where.

use std::{borrow::Cow, cell::RefCell, ops::Range, sync::Arc};

use crate::{
    model::{lossy_text, ApiCall, BodyView},
    sensitive::{
        bytes::bytes_equal_to,
        fields::{contains_ignore_case, percent_decode, Source},
        hints::{self, Hints},
        json,
        keyed::HashKey,
        mask::mask,
        scan::{Found, Scanner},
        types::Category,
    },
};

/// What replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

/// Text read past each edge of a window that is shown (a body preview, a finding's evidence),
/// so that a value the edge runs through is read whole and hidden whole
/// ([`Redactor::redact_window`]): the longest values the detectors find, PEM private keys, are
/// under 3.3 KiB at RSA-4096. The parser keeps this much of a body past its preview.
pub const WINDOW_CONTEXT_BYTES: usize = 4 * 1024;

/// How much the operator lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum RedactionMode {
    /// Hide secrets and every personal or financial value the detectors recognise (default).
    #[default]
    Pii,
    /// Hide secrets only (credentials by name and by shape); personal data is shown.
    Secrets,
    /// Keep no bodies at all, and hide secrets and personal data elsewhere.
    DropBodies,
    /// Show full payloads as captured. Only for debugging on a machine you own.
    Off,
}

/// What a header's name says about its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SecretHeader {
    /// The whole value is a credential after an auth scheme ("Bearer", "Basic"), which is kept:
    /// it says what kind of credential was sent.
    Authorization,
    /// The whole value is a credential.
    Credential,
    /// Every cookie's value is one.
    Cookie,
    /// The first pair is the cookie; the attributes after it (Path, Expires...) are not secret.
    SetCookie,
}

/// The kind of secret a header named `lowercase_name` carries. A match on the name compiles to
/// a switch on its length and fixed-size compares with the few names that share it: a walk
/// over lists of names cost ~90 instructions for every header of every call.
fn secret_header(lowercase_name: &str) -> Option<SecretHeader> {
    match lowercase_name {
        "authorization" | "proxy-authorization" => Some(SecretHeader::Authorization),
        "x-api-key"
        | "api-key"
        | "apikey"
        | "x-auth-token"
        | "x-access-token"
        | "x-amz-security-token"
        | "x-csrf-token"
        | "x-xsrf-token" => Some(SecretHeader::Credential),
        "cookie" => Some(SecretHeader::Cookie),
        "set-cookie" => Some(SecretHeader::SetCookie),
        _ => None,
    }
}

/// Whether a field, parameter or argument name says its value is a secret: asked of the
/// scanner's memo of what names say (see [`Hints::SECRET_NAME`]), where most names cost one
/// lookup.
pub fn is_secret_name(name: &str) -> bool {
    hints::hints(Some(name), None).has(Hints::SECRET_NAME)
}

/// Command lines redacted lately, as (the process's shared arguments, their redacted copy).
/// Every call of a process carries the same shared list; redacting it once per process instead of
/// once per call saves a copy and a scan of each argument. Holding the original keeps its
/// address from being reused by another list while it is remembered.
const REMEMBERED_COMMAND_LINES: usize = 32;

/// A process's shared command line and its redacted copy.
type RedactedCommandLine = (Arc<[String]>, Arc<[String]>);

/// Hides what its mode says to hide, with the scanner's detectors and a hashing key.
#[derive(Debug, Clone)]
pub struct Redactor {
    pub mode: RedactionMode,
    scanner: Arc<Scanner>,
    key: HashKey,
    command_lines: RefCell<Vec<RedactedCommandLine>>,
}

impl Default for Redactor {
    fn default() -> Redactor {
        Redactor::new(RedactionMode::default())
    }
}

impl Redactor {
    /// The built-in detectors and a key for this process only: tags correlate within the run.
    /// The agent uses [`Redactor::with_detectors`] with the installation's key.
    pub fn new(mode: RedactionMode) -> Redactor {
        let key = HashKey::random().unwrap_or_else(|error| {
            tracing::warn!("{error}; redaction tags use a key derived from the clock");
            HashKey::from_clock()
        });
        Redactor::with_detectors(mode, Scanner::builtin(), key)
    }

    /// `scanner` (with the policy's custom types) and the installation's `key`.
    pub fn with_detectors(mode: RedactionMode, scanner: Arc<Scanner>, key: HashKey) -> Redactor {
        Redactor {
            mode,
            scanner,
            key,
            command_lines: RefCell::default(),
        }
    }

    /// `args` redacted: recalled when this list was redacted lately, else redacted and
    /// remembered (replacing the oldest when full).
    fn redacted_command_line(&self, args: &Arc<[String]>, now: u64) -> Arc<[String]> {
        if args.is_empty() {
            return args.clone();
        }
        let mut remembered = self.command_lines.borrow_mut();
        if let Some((_, redacted)) = remembered
            .iter()
            .find(|(original, _)| Arc::ptr_eq(original, args))
        {
            return redacted.clone();
        }
        let mut redacted = redact_args(args);
        for arg in &mut redacted {
            // A header given on the command line (`curl -H 'X-Session-Id: ...'`) is read as
            // the header it is, so that its name counts and its value is read as a header's.
            if let Some((name, value_start)) = header_argument(arg) {
                let value = &arg[value_start..];
                if let Some(shown) = self.redact_values_at(Source::Header(name), value, now) {
                    *arg = format!("{}{shown}", &arg[..value_start]);
                }
                continue;
            }
            // Payloads given on the command line (`curl -d '{"password": ...}'`) are read with
            // their structure, so their field names count as they do in bodies.
            let trimmed = arg.trim_start();
            let source = if trimmed.starts_with(['{', '[']) {
                Source::Body(Some("application/json"))
            } else if !arg.contains("://") && arg.contains('=') && !arg.starts_with('-') {
                Source::Body(Some("application/x-www-form-urlencoded"))
            } else {
                Source::Argument
            };
            self.redact_in_place(source, arg, now);
        }
        let redacted: Arc<[String]> = redacted.into();
        if remembered.len() >= REMEMBERED_COMMAND_LINES {
            remembered.remove(0);
        }
        remembered.push((args.clone(), redacted.clone()));
        redacted
    }

    /// Hide what `mode` says to hide, in place.
    pub fn redact_call(&self, call: &mut ApiCall) {
        if self.mode == RedactionMode::Off {
            return;
        }
        // The time the sensitive-data analyzer scanned this call at, so that the scanner
        // recalls its results for every text that is unchanged (`sensitive::recent`).
        let now = call.realtime_ns / 1_000_000_000;
        for headers in [&mut call.request_headers, &mut call.response_headers] {
            // What the sensitive-data analyzer found in these very fields, if it scanned them.
            let scanned = self.scanner.take_field_scans(headers.stamp(), now);
            let mut index = 0;
            headers.rewrite_values(|name, value| {
                let field = index;
                index += 1;
                // Header maps hold names lowercased.
                let hidden = secret_header(name).map(|secret| hide_secret_header(secret, value));
                let redacted = match (&hidden, &scanned) {
                    (None, Some(scanned)) => self.mask_found(value, scanned.in_field(field)),
                    _ => {
                        let shown = hidden.as_deref().unwrap_or(value);
                        self.redact_values_at(Source::Header(name), shown, now)
                    }
                };
                redacted.or(hidden)
            });
        }
        if let Some(query) = &mut call.query {
            if let Cow::Owned(redacted) = redact_pairs(query, '&') {
                *query = redacted;
            }
            self.redact_in_place(Source::Query, query, now);
        }
        if let Some(path) = &mut call.path {
            self.redact_in_place(Source::Path, path, now);
        }
        if let Some(route) = &mut call.route {
            self.redact_in_place(Source::Path, route, now);
        }
        call.command_args = self.redacted_command_line(&call.command_args, now);
        // Borrowed from the headers, which the body redaction below leaves alone.
        let content_types = [
            call.request_headers.first("content-type"),
            call.response_headers.first("content-type"),
        ];
        for ((body, captured), content_type) in [
            (&mut call.request_body, &call.request_body_bytes),
            (&mut call.response_body, &call.response_body_bytes),
        ]
        .into_iter()
        .zip(content_types)
        {
            match self.mode {
                RedactionMode::DropBodies => {
                    if let Some(body) = body {
                        body.preview = None;
                    }
                }
                _ => {
                    let source = Source::Body(content_type);
                    let redacted_as_window = body.as_mut().is_some_and(|body| {
                        let ends_early = body.capture_ends_early;
                        body.preview.as_mut().is_some_and(|preview| {
                            self.redact_preview_window(source, preview, captured, ends_early, now)
                        })
                    });
                    redact_body(body, content_type);
                    if !redacted_as_window {
                        if let Some(preview) = body.as_mut().and_then(|b| b.preview.as_mut()) {
                            self.redact_in_place(source, preview, now);
                        }
                    }
                }
            }
        }
        // The raw bodies are for analysis inside the agent; they never leave it, but a mode
        // that drops bodies drops these too.
        if self.mode == RedactionMode::DropBodies {
            call.request_body_bytes.clear();
            call.response_body_bytes.clear();
        }
    }

    /// A preview that does not end where its value ends, redacted as a window on the whole
    /// capture ([`Redactor::redact_window`]): one cut from a longer capture, or one showing the
    /// end of a capture that stopped before the body's (`capture_ends_early`), whose unfinished
    /// last value is hidden as [`REDACTED`] since there is nothing past it to tell what it
    /// was. The analyzer scanned the same capture, so the scan is recalled, not repeated.
    /// Returns whether `preview` was such a window (else it is left as it is).
    fn redact_preview_window(
        &self,
        source: Source<'_>,
        preview: &mut String,
        captured: &[u8],
        capture_ends_early: bool,
        now_secs: u64,
    ) -> bool {
        let cut = captured.len() > preview.len();
        if self.mode == RedactionMode::Off || !(cut || capture_ends_early) {
            return false;
        }
        let whole = lossy_text(captured);
        let Some(shown) = cut_of(preview, &whole) else {
            return false;
        };
        if !cut && unfinished_value_start(&whole) == shown {
            // All of a capture that ends where a value does.
            return false;
        }
        *preview =
            self.redact_window_of_capture(source, &whole, 0..shown, capture_ends_early, now_secs);
        true
    }

    /// [`Redactor::redact_window`] of a text the capture may have stopped inside
    /// (`ends_early`): its unfinished last value is hidden as [`REDACTED`] where the window
    /// shows it, since there is nothing past it to tell what it was.
    pub fn redact_window_of_capture(
        &self,
        source: Source<'_>,
        whole: &str,
        window: Range<usize>,
        ends_early: bool,
        now_secs: u64,
    ) -> String {
        let unfinished = if ends_early {
            unfinished_value_start(whole)
        } else {
            whole.len()
        };
        if self.mode == RedactionMode::Off || unfinished >= window.end {
            return self.redact_window(source, whole, window, now_secs);
        }
        let shown = window.start.min(unfinished)..unfinished;
        let mut text = self.redact_window(source, whole, shown, now_secs);
        text.push_str(REDACTED);
        text
    }

    /// `whole[window]` with what the detectors find in all of `whole` hidden as the mode says.
    /// Scanned alone, a window shows the part of a value its edge runs through (an email's user
    /// and part of its domain, twelve digits of a card, most of a key), which no longer looks
    /// like the value: such a value is hidden whole, its mask standing at the edge. `window` is
    /// on character boundaries of `whole`.
    pub fn redact_window(
        &self,
        source: Source<'_>,
        whole: &str,
        window: Range<usize>,
        now_secs: u64,
    ) -> String {
        if self.mode == RedactionMode::Off {
            return whole[window].to_string();
        }
        let mut found = Vec::new();
        self.scanner
            .scan_source(source, whole, now_secs, &mut found);
        self.mask_window(whole, found.iter(), window.clone())
            .unwrap_or_else(|| whole[window].to_string())
    }

    /// Whether the mode hides what `found` is.
    fn hides(&self, found: &Found) -> bool {
        self.mode != RedactionMode::Secrets || self.scanner.category(found.kind) == Category::Secret
    }

    fn redact_in_place(&self, source: Source<'_>, text: &mut String, now_secs: u64) {
        if let Some(redacted) = self.redact_values_at(source, text, now_secs) {
            *text = redacted;
        }
    }

    /// `text` with every value the detectors recognise (and the mode hides) replaced by its
    /// masked form; `None` if nothing was.
    pub fn redact_values(&self, source: Source<'_>, text: &str) -> Option<String> {
        self.redact_values_at(source, text, 0)
    }

    /// [`Redactor::redact_values`] scanning as at `now_secs` (which only dates JWT expiry,
    /// nothing redaction looks at, but names the scan the scanner may recall).
    fn redact_values_at(&self, source: Source<'_>, text: &str, now_secs: u64) -> Option<String> {
        if self.mode == RedactionMode::Off || text.is_empty() {
            return None;
        }
        let mut found: Vec<Found> = Vec::new();
        self.scanner.scan_source(source, text, now_secs, &mut found);
        self.mask_found(text, &found)
    }

    /// `text` with `found` (what the mode hides of it) masked; `None` if nothing is. Borrows
    /// the findings: most fields have none, and copying each field's list (a string per
    /// finding) to learn that had cost more than the rest of redacting a header.
    #[inline]
    fn mask_found<'f>(
        &self,
        text: &str,
        found: impl IntoIterator<Item = &'f Found>,
    ) -> Option<String> {
        let mut found = found.into_iter().peekable();
        found.peek()?;
        self.mask_window(text, found, 0..text.len())
    }

    /// `text[window]` with `found` (what the mode hides of it, in `text`'s offsets) masked;
    /// `None` if nothing is. A value an edge of the window runs through is masked whole, its
    /// mask standing at the edge. Out of line: [`Redactor::mask_found`]'s check for nothing is
    /// inlined into every field's redaction.
    fn mask_window<'f>(
        &self,
        text: &str,
        found: impl Iterator<Item = &'f Found>,
        window: Range<usize>,
    ) -> Option<String> {
        let mut hidden: Vec<&Found> = found
            .filter(|f| {
                f.raw.start < window.end
                    && f.raw.end > window.start
                    && f.raw.end <= text.len()
                    && self.hides(f)
            })
            .collect();
        if hidden.is_empty() {
            return None;
        }
        hidden.sort_by_key(|f| (f.raw.start, std::cmp::Reverse(f.raw.end)));
        let mut out = String::with_capacity(window.len());
        let mut at = window.start;
        for f in hidden {
            // Overlapping an earlier one; only the first may begin before the window.
            if f.raw.start < at && at > window.start {
                continue;
            }
            out.push_str(&text[at..f.raw.start.max(at)]);
            out.push_str(&self.masked(f));
            at = f.raw.end;
            if at >= window.end {
                return Some(out);
            }
        }
        out.push_str(&text[at..window.end]);
        Some(out)
    }

    /// What stands for a found value: its mask, quoted if it was a bare JSON number.
    fn masked(&self, found: &Found) -> String {
        let masked = mask(
            &self.key,
            found.kind,
            self.scanner.type_name(found.kind),
            &found.value,
        );
        if found.bare {
            format!("\"{masked}\"")
        } else {
            masked
        }
    }
}

/// A header value with its secret parts hidden.
pub fn redact_header(name: &str, value: &str) -> String {
    match secret_header(&name.to_ascii_lowercase()) {
        Some(secret) => hide_secret_header(secret, value),
        None => value.to_string(),
    }
}

fn hide_secret_header(secret: SecretHeader, value: &str) -> String {
    match secret {
        SecretHeader::Authorization => match value.split_once(' ') {
            // Joined without the formatting machinery, which cost more than the rest of
            // redacting the header.
            Some((scheme, _)) => [scheme, " ", REDACTED].concat(),
            None => REDACTED.to_string(),
        },
        SecretHeader::Credential => REDACTED.to_string(),
        SecretHeader::Cookie => redact_cookie(value, false),
        SecretHeader::SetCookie => redact_cookie(value, true),
    }
}

/// `a=1; b=2` → `a=[REDACTED]; b=[REDACTED]`. For Set-Cookie only the first pair is the cookie;
/// the attributes after it (Path, Expires, HttpOnly...) are kept.
fn redact_cookie(value: &str, set_cookie: bool) -> String {
    let mut out = String::with_capacity(value.len() + REDACTED.len());
    for (i, part) in value.split(';').enumerate() {
        if i > 0 {
            out.push(';');
        }
        match part.split_once('=') {
            Some((name, _)) if !(set_cookie && i > 0) => {
                out.push_str(name);
                out.push('=');
                out.push_str(REDACTED);
            }
            _ => out.push_str(part),
        }
    }
    out
}

/// Redact the values of secret-named `name=value` pairs separated by `separator`. Borrows when
/// there is nothing to hide, which is nearly always.
pub fn redact_pairs(pairs: &str, separator: char) -> Cow<'_, str> {
    let secret = |pair: &str| {
        pair.split_once('=')
            .filter(|(name, _)| is_secret_name(&percent_decode(name)))
            .map(|(name, _)| name.len())
    };
    if !pairs.split(separator).any(|pair| secret(pair).is_some()) {
        return Cow::Borrowed(pairs);
    }
    let mut out = String::with_capacity(pairs.len());
    for (i, pair) in pairs.split(separator).enumerate() {
        if i > 0 {
            out.push(separator);
        }
        match secret(pair) {
            Some(name_len) => {
                out.push_str(&pair[..=name_len]);
                out.push_str(REDACTED);
            }
            None => out.push_str(pair),
        }
    }
    Cow::Owned(out)
}

/// Flags whose next argument is a credential, though their names do not say so.
const CREDENTIAL_FLAGS: &[&str] = &["--oauth2-bearer"];

/// Flags whose next argument is `user:password` (curl), or a user name alone (mysql `-u root`,
/// which is kept).
const USER_FLAGS: &[&str] = &["-u", "--user", "-U", "--proxy-user"];

/// Flags whose next argument is a cookie header's value (`curl -b 'sid=...; theme=dark'`).
const COOKIE_FLAGS: &[&str] = &["-b", "--cookie"];

/// Command-line arguments carry secrets as `--password x`, `--token=x`, `name=secret`,
/// `Authorization: Bearer x` (curl -H), or `user:pass@` in URLs.
/// The name of the header `arg` is written as (`X-Session-Id: abc`, `X-Sid:abc`), and where
/// its value starts; `None` for anything else, a URL (`http://...`) among them.
fn header_argument(arg: &str) -> Option<(&str, usize)> {
    let (name, value) = arg.split_once(':')?;
    let is_token_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    if name.is_empty() || !name.bytes().all(is_token_byte) || value.starts_with("//") {
        return None;
    }
    Some((name, arg.len() - value.trim_start().len()))
}

pub fn redact_args(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut hide_next = false;
    let mut cookies_next = false;
    let mut user_next = false;
    for arg in args {
        if std::mem::take(&mut user_next) {
            match arg.split_once(':') {
                Some((user, _)) => out.push(format!("{user}:{REDACTED}")),
                None => out.push(arg.clone()),
            }
            continue;
        }
        if std::mem::take(&mut hide_next) {
            out.push(REDACTED.to_string());
            continue;
        }
        if std::mem::take(&mut cookies_next) {
            out.push(redact_cookie(arg, false));
            continue;
        }
        let flag = arg.trim_start_matches('-');
        if CREDENTIAL_FLAGS.contains(&arg.as_str()) {
            hide_next = true;
        } else if COOKIE_FLAGS.contains(&arg.as_str()) {
            cookies_next = true;
        } else if USER_FLAGS.contains(&arg.as_str()) {
            user_next = true;
        } else if arg.starts_with('-') && !flag.is_empty() {
            match flag.split_once('=') {
                Some((name, _)) if is_secret_name(name) => {
                    let prefix = &arg[..arg.len() - flag.len() + name.len()];
                    out.push(format!("{prefix}={REDACTED}"));
                    continue;
                }
                None if is_secret_name(flag) => hide_next = true,
                _ => {}
            }
        } else if let Some((name, _)) = arg.split_once('=').filter(|(name, _)| is_secret_name(name))
        {
            out.push(format!("{name}={REDACTED}"));
            continue;
        } else if let Some((name, value)) =
            arg.split_once(':').filter(|(name, _)| !name.contains('/'))
        {
            let redacted = redact_header(name.trim(), value.trim());
            if redacted != value.trim() {
                out.push(format!("{name}: {redacted}"));
                continue;
            }
        }
        out.push(redact_url_userinfo(arg));
    }
    out
}

/// `scheme://user:pass@host` → `scheme://user:[REDACTED]@host`.
fn redact_url_userinfo(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_string();
    };
    let rest = &text[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return text.to_string();
    };
    match rest[..at].split_once(':') {
        Some((user, _)) => format!(
            "{}{user}:{REDACTED}{}",
            &text[..scheme_end + 3],
            &rest[at..]
        ),
        None => text.to_string(),
    }
}

/// Bytes that end a value in the syntaxes the detectors read: JSON strings and structure, form
/// and query pairs, cookies, markup, lines. Not a space: card numbers, phone numbers and
/// credential headers hold spaces.
const VALUE_ENDS: &[u8] = b"\"'&=;,{}[]<>\t\r\n";

/// Where the last value of `text` starts, if `text` was cut inside it: after the last byte
/// that ends a value ([`VALUE_ENDS`]). A cut value, scanned alone, need not look like the value
/// it was (an email up to its domain, twelve digits of a card).
pub fn unfinished_value_start(text: &str) -> usize {
    text.as_bytes()
        .iter()
        .rposition(|b| VALUE_ENDS.contains(b))
        .map_or(0, |end| end + 1)
}

/// How many bytes of `whole` the preview shows, if it is a cut of it: all of it, or all but the
/// replacement character a cut through a multi-byte character leaves.
fn cut_of(preview: &str, whole: &str) -> Option<usize> {
    if whole.starts_with(preview) {
        return Some(preview.len());
    }
    let shown = preview.strip_suffix(char::REPLACEMENT_CHARACTER)?;
    whole.starts_with(shown).then_some(shown.len())
}

fn redact_body(body: &mut Option<BodyView>, content_type: Option<&str>) {
    let Some(preview) = body.as_mut().and_then(|b| b.preview.as_mut()) else {
        return;
    };
    let says = |what: &str| content_type.is_some_and(|c| contains_ignore_case(c, what));
    let redacted = if says("json") || preview.trim_start().starts_with(['{', '[']) {
        redact_json_text(preview)
    } else if says("x-www-form-urlencoded") {
        redact_pairs(preview, '&')
    } else {
        return;
    };
    if let Cow::Owned(redacted) = redacted {
        *preview = redacted;
    }
}

/// Hide the values of secret-named JSON members. Works on text, not a parsed tree, because
/// previews are often cut mid-document: `"password": "x"` is found wherever it is. Borrows
/// when there is nothing to hide.
pub fn redact_json_text(text: &str) -> Cow<'_, str> {
    // One borrow of the memo of names for all the members.
    hints::with_memo(|memo| {
        let bytes = text.as_bytes();
        let mut out = String::new();
        // `text[..copied]` is in `out` (with its secrets replaced).
        let mut copied = 0;
        let mut i = 0;
        while let Some(start) = next_quote(bytes, i) {
            let (end, _) = json::string_end(bytes, start);
            if end == bytes.len() {
                // A string the preview cut.
                break;
            }
            let key = &text[start + 1..end];
            i = end + 1;
            let colon = if bytes.get(i) == Some(&b':') {
                i
            } else {
                let after = text[i..].trim_start();
                if !after.starts_with(':') {
                    continue;
                }
                i + (text[i..].len() - after.len())
            };
            if !memo.hints(Some(key), None).has(Hints::SECRET_NAME) {
                continue;
            }
            // Replace a scalar value (string, number, literal); look inside objects and arrays.
            let value_start =
                colon + 1 + (text[colon + 1..].len() - text[colon + 1..].trim_start().len());
            i = value_start;
            let value_end = match bytes.get(i) {
                Some(b'"') => (json::string_end(bytes, i).0 + 1).min(bytes.len()),
                Some(b'{') | Some(b'[') | None => continue,
                Some(_) => text[i..]
                    .find([',', '}', ']', '\n'])
                    .map_or(bytes.len(), |j| i + j),
            };
            if key.eq_ignore_ascii_case("key") && value_member_follows(bytes, value_end) {
                // `{"Key": "Environment", "Value": "prod"}`: the key names its sibling, which the
                // scanner reads under that name; alone, a `key` holds an API key.
                continue;
            }
            out.push_str(&text[copied..value_start]);
            out.push('"');
            out.push_str(REDACTED);
            out.push('"');
            copied = value_end;
            i = value_end;
        }
        if copied == 0 {
            return Cow::Borrowed(text);
        }
        out.push_str(&text[copied..]);
        Cow::Owned(out)
    })
}

/// How far past a `key` member [`value_member_follows`] looks for its `value` sibling: pairs
/// write it right after (`{"Key": "Environment", "Value": "prod"}`), and the bound keeps a
/// text of many `key` members from being read again for each.
const PAIR_LOOKAHEAD_BYTES: usize = 256;

/// Whether the object a member ends in at `from` has a `value` (or `Value`) member after it,
/// within [`PAIR_LOOKAHEAD_BYTES`].
fn value_member_follows(bytes: &[u8], from: usize) -> bool {
    let end = bytes.len().min(from.saturating_add(PAIR_LOOKAHEAD_BYTES));
    let mut depth = 0usize;
    let mut i = from;
    while i < end {
        match bytes[i] {
            b'"' => {
                // Read no further than the bound, however long the string.
                let (close, _) = json::string_end(&bytes[..end], i);
                let member = &bytes[i + 1..close.min(end)];
                i = close + 1;
                while i < end && bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                if depth == 0
                    && bytes.get(i) == Some(&b':')
                    && member.eq_ignore_ascii_case(b"value")
                {
                    return true;
                }
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => match depth.checked_sub(1) {
                Some(outer) => depth = outer,
                None => return false,
            },
            _ => {}
        }
        i += 1;
    }
    false
}

/// Where the first `"` at or after `from` is. In JSON most are a few bytes on (`":"`, `","`):
/// a look at the next word finds them for less than memchr's vector search costs to set up.
fn next_quote(bytes: &[u8], from: usize) -> Option<usize> {
    let rest = bytes.get(from..)?;
    if let Some(word) = rest.first_chunk::<8>() {
        let quotes = bytes_equal_to(u64::from_le_bytes(*word), b'"');
        if quotes != 0 {
            return Some(from + (quotes.trailing_zeros() / 8) as usize);
        }
        return memchr::memchr(b'"', &rest[8..]).map(|at| from + 8 + at);
    }
    memchr::memchr(b'"', rest).map(|at| from + at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_told_by_fragment_word_or_whole_name() {
        for name in [
            "Password",
            "X-Api-Key",
            "api.key",
            "_pin_",
            "client-secret",
            "SESSION_ID",
            "sig",
            "Passwort",
            "Benutzerpasswort",
            "contraseña",
            "mot-de-passe",
            "PW",
            "user_pw",
            "usuarioSenha",
            "code",
            "key",
            "xsrftoken",
            "mysecret",
            "session_count",
            "password_changed_at",
            "card_pin",
            "mfaCode",
            // A long name is read at its end.
            &format!("{}_token", "a".repeat(128)),
            "com.example.service.configuration.database.connection.primary.password",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in [
            "pinned",
            "id",
            "name",
            "keyboard_layout",
            "",
            "___",
            "passenger",
            "country_code",
            "otp_status",
            "pin_length",
            "sort_key",
            "the_slot",
        ] {
            assert!(!is_secret_name(name), "{name}");
        }
        // Told of the name alone: a parent lends the scanner its hints, not this one.
        let under_session = hints::hints(Some("number"), Some("session"));
        assert!(under_session.has(Hints::SESSION));
        assert!(!under_session.has(Hints::SECRET_NAME));
    }

    #[test]
    fn credential_headers_keep_their_scheme_only() {
        assert_eq!(
            redact_header("Authorization", "Bearer eyJhbGciOi.x.y"),
            "Bearer [REDACTED]"
        );
        assert_eq!(
            redact_header("authorization", "Basic dXNlcjpwYXNz"),
            "Basic [REDACTED]"
        );
        assert_eq!(redact_header("X-Api-Key", "sk_live_123"), "[REDACTED]");
        assert_eq!(
            redact_header("Proxy-AUTHORIZATION", "Basic dXNlcjpwYXNz"),
            "Basic [REDACTED]"
        );
        assert_eq!(
            redact_header("Content-Type", "application/json"),
            "application/json"
        );
    }

    #[test]
    fn credential_headers_are_told_by_whole_name_in_any_case() {
        for name in [
            "X-API-KEY",
            "Api-Key",
            "apikey",
            "X-Auth-Token",
            "x-access-token",
            "X-Amz-Security-Token",
            "X-CSRF-Token",
            "x-xsrf-token",
        ] {
            assert_eq!(redact_header(name, "abc def"), REDACTED, "{name}");
        }
        for name in ["x-api-keys", "authorizatio", "cookies", "x-token", ""] {
            assert_eq!(redact_header(name, "abc def"), "abc def", "{name}");
        }
    }

    #[test]
    fn cookies_keep_names_and_attributes() {
        assert_eq!(
            redact_header("Cookie", "sid=abc; theme=dark"),
            "sid=[REDACTED]; theme=[REDACTED]"
        );
        // A piece without `=` is not a cookie's value: kept as it is.
        assert_eq!(
            redact_header("Cookie", "sid=abc; flag;"),
            "sid=[REDACTED]; flag;"
        );
        assert_eq!(
            redact_header("Set-Cookie", "sid=abc; Path=/; HttpOnly"),
            "sid=[REDACTED]; Path=/; HttpOnly"
        );
    }

    #[test]
    fn secret_query_parameters_are_hidden() {
        assert_eq!(
            redact_pairs("page=2&access_token=abc&q=x", '&'),
            "page=2&access_token=[REDACTED]&q=x"
        );
        assert_eq!(
            redact_pairs("X-Amz-Signature=f00&X-Amz-Date=1", '&'),
            "X-Amz-Signature=[REDACTED]&X-Amz-Date=1"
        );
        assert_eq!(redact_pairs("api%5Fkey=1", '&'), "api%5Fkey=[REDACTED]");
        assert!(matches!(
            redact_pairs("author=me&keyword=x", '&'),
            Cow::Borrowed("author=me&keyword=x")
        ));
    }

    #[test]
    fn a_preview_cut_through_a_value_ends_with_the_value_masked() {
        let captured = "reach me at grace.hopper@example.com, or call";
        let cut = "reach me at grace.hop";
        let source = Source::Body(Some("text/plain"));
        let mut preview = cut.to_string();
        let pii = Redactor::new(RedactionMode::Pii);
        assert!(pii.redact_preview_window(source, &mut preview, captured.as_bytes(), false, 0));
        assert!(
            preview.starts_with("reach me at [REDACTED:email:") && preview.ends_with(']'),
            "{preview}"
        );
        // Personal data is shown in `secrets` mode: the cut is left as it was.
        let mut preview = cut.to_string();
        let secrets = Redactor::new(RedactionMode::Secrets);
        assert!(secrets.redact_preview_window(source, &mut preview, captured.as_bytes(), false, 0));
        assert_eq!(preview, cut);
        // ... nor made longer when a secret before it is hidden.
        let captured = "key AKIAZ7QW3ERT5YUIOP2L, mail grace.hopper@example.com, or call";
        let mut preview = captured[..40].to_string();
        assert!(secrets.redact_preview_window(source, &mut preview, captured.as_bytes(), false, 0));
        assert!(
            preview.starts_with("key [REDACTED:aws_access_key:")
                && preview.ends_with("], mail grace.hop"),
            "{preview}"
        );
        // A preview that is not a cut of the capture (or all of it) is not touched.
        for captured in ["reach me at grace.hopper", "reach me at grace"] {
            let mut preview = "reach me at grace.hopper".to_string();
            assert!(!pii.redact_preview_window(
                source,
                &mut preview,
                captured.as_bytes(),
                false,
                0
            ));
            assert_eq!(preview, "reach me at grace.hopper");
        }
    }

    #[test]
    fn a_capture_that_stopped_early_hides_its_unfinished_last_value() {
        let source = Source::Body(Some("application/json"));
        let pii = Redactor::new(RedactionMode::Pii);
        let secrets = Redactor::new(RedactionMode::Secrets);
        for (captured, shown) in [
            (
                r#"{"n":1,"email":"grace.hopper@ex"#,
                r#"{"n":1,"email":"[REDACTED]"#,
            ),
            ("card=4111 1111 1111 ", "card=[REDACTED]"),
            ("id: 7\nnote key AKIAZ7QW3E", "id: 7\n[REDACTED]"),
            ("AKIAZ7QW3E", "[REDACTED]"),
        ] {
            for redactor in [&pii, &secrets] {
                let mut preview = captured.to_string();
                let bytes = captured.as_bytes();
                assert!(redactor.redact_preview_window(source, &mut preview, bytes, true, 0));
                assert_eq!(preview, shown, "{:?}", redactor.mode);
            }
        }
        // Values before the unfinished one are hidden as they are anywhere.
        let captured = r#"{"to":"ann@example.com","card":"4111 1111"#;
        let mut preview = captured.to_string();
        assert!(pii.redact_preview_window(source, &mut preview, captured.as_bytes(), true, 0));
        assert!(
            preview.starts_with(r#"{"to":"[REDACTED:email:"#)
                && preview.ends_with(r#"","card":"[REDACTED]"#),
            "{preview}"
        );
        // A capture ending where a value does, or one that reached the body's end, keeps it.
        let mut preview = r#"{"n":1}"#.to_string();
        assert!(!pii.redact_preview_window(source, &mut preview, b"{\"n\":1}", true, 0));
        let captured = r#"{"note":"grace.hop"#;
        let mut preview = captured.to_string();
        assert!(!pii.redact_preview_window(source, &mut preview, captured.as_bytes(), false, 0));
        assert_eq!(preview, captured);
        // A preview cut before the capture's unfinished end is a cut as any other.
        let captured = r#"{"to":"grace.hopper@example.com","note":"AKIAZ7"#;
        let mut preview = captured[..20].to_string();
        assert!(pii.redact_preview_window(source, &mut preview, captured.as_bytes(), true, 0));
        assert!(
            preview.starts_with(r#"{"to":"[REDACTED:email:"#) && preview.ends_with(']'),
            "{preview}"
        );
        // Not hidden when redaction is off.
        let off = Redactor::new(RedactionMode::Off);
        let mut preview = captured.to_string();
        assert!(!off.redact_preview_window(source, &mut preview, captured.as_bytes(), true, 0));
    }

    #[test]
    fn text_under_a_json_content_type_is_redacted_as_text() {
        let redactor = Redactor::new(RedactionMode::Pii);
        let json = Source::Body(Some("application/json"));
        for text in [
            "Internal error: no user grace.hopper@example.com",
            r#"{"ok":false} card 4111 1111 1111 1111"#,
            r#"{"to": grace.hopper@example.com}"#,
        ] {
            let redacted = redactor.redact_values(json, text).unwrap_or_default();
            assert!(
                redacted.contains("[REDACTED:email:") || redacted.contains("411111******1111"),
                "{text}: {redacted}"
            );
            assert!(
                !redacted.contains("grace.hopper") && !redacted.contains("1111 1111 1111"),
                "{redacted}"
            );
        }
    }

    #[test]
    fn a_session_in_a_header_of_its_own_is_hidden() {
        let redactor = Redactor::new(RedactionMode::Secrets);
        let session = "s3J9xQ2mZp7RtY4vWb8NcLa";
        for name in ["x-session-id", "session-id", "x-sid", "X-SessionId"] {
            let redacted = redactor.redact_values(Source::Header(name), session);
            assert!(
                redacted.is_some_and(|r| r.starts_with("[REDACTED:secret_field:")),
                "{name}"
            );
        }
        // Not what is no token: a count, a date, a placeholder.
        for (name, value) in [
            ("x-session-count", "12"),
            ("x-session-expires", "Wed, 21 Oct 2026 07:28:00 GMT"),
            ("x-session-started", "2026-10-21T07:28:00Z"),
            ("x-session-id", "<session id>"),
        ] {
            assert_eq!(
                redactor.redact_values(Source::Header(name), value),
                None,
                "{name}"
            );
        }
    }

    #[test]
    fn values_written_with_percent_escapes_are_hidden_wherever_they_are() {
        let redactor = Redactor::new(RedactionMode::Pii);
        let json = Source::Body(Some("application/json"));
        for (source, text, shown) in [
            (
                Source::Path,
                "/users/ann.lee%40example.com/orders",
                "/users/[REDACTED:email:",
            ),
            (
                Source::Header("referer"),
                "https://shop.test/a?to=ann.lee%40example.com",
                "[REDACTED:email:",
            ),
            (
                json,
                r#"{"next":"https://x.test/cb?to=ann.lee%40example.com"}"#,
                r#"{"next":"[REDACTED:email:"#,
            ),
            (
                Source::Query,
                "next=%2Fcb%3Fto%3Dann.lee%2540example.com",
                "next=[REDACTED:email:",
            ),
            (
                json,
                r#"{"d":"card 4111%201111%201111%201111"}"#,
                r#"{"d":"411111******1111"#,
            ),
        ] {
            let redacted = redactor.redact_values(source, text).unwrap_or_default();
            assert!(redacted.starts_with(shown), "{text}: {redacted}");
            assert!(
                !redacted.contains("ann.lee") && !redacted.contains("%201111%201111"),
                "{redacted}"
            );
        }
        // Escapes that hide nothing change nothing; a value readable as written is found once.
        let text = "/files/50%25/report%20final";
        assert_eq!(redactor.redact_values(Source::Path, text), None);
        let mut found = Vec::new();
        redactor.scanner.scan_source(
            Source::Header("referer"),
            "https://x.test/?to=ann.lee@example.com&n=%20",
            0,
            &mut found,
        );
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[test]
    fn values_written_in_base64_are_hidden_wherever_they_are() {
        use base64::{engine::general_purpose, Engine};
        let redactor = Redactor::new(RedactionMode::Pii);
        let claims = general_purpose::STANDARD
            .encode(r#"{"sub":"8d1f","email":"ann.lee@example.com","name":"Ann"}"#);
        let address = general_purpose::URL_SAFE_NO_PAD.encode("ann.lee@example.com");
        let secret = general_purpose::URL_SAFE_NO_PAD.encode(r#"{"password":"hunter2-Xq"}"#);
        let json = Source::Body(Some("application/json"));
        for (source, text, shown) in [
            (
                Source::Header("x-ms-client-principal"),
                claims.clone(),
                "[REDACTED:email:".to_string(),
            ),
            (
                Source::Query,
                format!("u={address}&list=news"),
                "u=[REDACTED:email:".to_string(),
            ),
            (
                Source::Path,
                format!("/unsubscribe/{address}/confirm"),
                "/unsubscribe/[REDACTED:email:".to_string(),
            ),
            (
                json,
                format!(r#"{{"state":"{secret}","next":"/home"}}"#),
                r#"{"state":"[REDACTED:password:"#.to_string(),
            ),
        ] {
            let redacted = redactor.redact_values(source, &text).unwrap_or_default();
            assert!(redacted.starts_with(&shown), "{text}: {redacted}");
            for encoded in [&claims, &address, &secret] {
                assert!(!redacted.contains(encoded.as_str()), "{redacted}");
            }
        }
        // Base64 of nothing sensitive, and tokens that are not base64 of text, stay as sent.
        for text in [
            general_purpose::STANDARD.encode(r#"{"theme":"dark","page":2}"#),
            "dGhpcyBpcyBqdXN0IHRleHQ=".to_string(),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b".to_string(),
        ] {
            assert_eq!(
                redactor.redact_values(Source::Header("x-userinfo"), &text),
                None
            );
        }
    }

    #[test]
    fn secret_parameters_of_queries_inside_values_are_hidden() {
        let redactor = Redactor::new(RedactionMode::Secrets);
        let token = "Xk29sLqP0vZ8mN3bR7tY1wQe";
        let json = Source::Body(Some("application/json"));
        for (source, text, shown) in [
            (
                Source::Header("referer"),
                format!("https://shop.test/reset?token={token}&step=2"),
                "https://shop.test/reset?token=[REDACTED:secret_field:",
            ),
            (
                Source::Header("location"),
                format!("https://app.test/cb#access_token={token}&token_type=bearer"),
                "https://app.test/cb#access_token=[REDACTED:secret_field:",
            ),
            (
                Source::Header("link"),
                format!("<https://api.test/items?page=2&api_key={token}>; rel=\"next\""),
                "<https://api.test/items?page=2&api_key=[REDACTED:secret_field:",
            ),
            (
                json,
                format!(r#"{{"next":"/v1/items?cursor=9&access_token={token}","n":1}}"#),
                r#"{"next":"/v1/items?cursor=9&access_token=[REDACTED:secret_field:"#,
            ),
            (
                Source::Query,
                format!("redirect_uri=https%3A%2F%2Fapp.test%2Fcb%3Ftoken%3D{token}&x=1"),
                "redirect_uri=[REDACTED:secret_field:",
            ),
        ] {
            let redacted = redactor.redact_values(source, &text).unwrap_or_default();
            assert!(redacted.starts_with(shown), "{text}: {redacted}");
            assert!(!redacted.contains(token), "{redacted}");
        }
        // An OAuth authorization response's code is a credential; `code` alone is not.
        let redirect = format!("https://app.test/cb?code={token}&state=af0ifjsl");
        let redacted = redactor.redact_values(Source::Header("location"), &redirect);
        assert!(
            redacted.is_some_and(|r| r.starts_with("https://app.test/cb?code=[REDACTED:")),
            "{redirect}"
        );
        // Queries of nothing secret, and question marks that start no query, are left alone.
        for text in [
            "https://shop.test/checkout?code=SUMMER2024SALE&step=2",
            "https://shop.test/search?q=shoes&page=2#reviews",
            "Is this the page? Yes=no",
        ] {
            assert_eq!(
                redactor.redact_values(Source::Header("referer"), text),
                None
            );
        }
    }

    #[test]
    fn names_set_to_values_in_running_text_hide_them() {
        let redactor = Redactor::new(RedactionMode::Secrets);
        let secret = "Hunter2-Xk29sLqP";
        let json = Source::Body(Some("application/json"));
        for (source, text, shown) in [
            // A GraphQL login's arguments, in the JSON a client posts: the password alone is
            // hidden, between the escaped quotes that write it, and the query stays readable.
            (
                json,
                format!(
                    r#"{{"query":"mutation {{ login(user: \"ann\", password: \"{secret}\") {{ token }} }}"}}"#
                ),
                r#"{"query":"mutation { login(user: \"ann\", password: \"[REDACTED:password:"#
                    .to_string(),
            ),
            (
                Source::Body(Some("application/graphql")),
                format!(r#"mutation {{ login(user: "ann", password: "{secret}") {{ token }} }}"#),
                r#"mutation { login(user: "ann", password: "[REDACTED:password:"#.to_string(),
            ),
            // A container's environment, as Docker's API takes it.
            (
                json,
                format!(r#"{{"Image":"db","Env":["MYSQL_ROOT_PASSWORD={secret}","TZ=UTC"]}}"#),
                r#"{"Image":"db","Env":["MYSQL_ROOT_PASSWORD=[REDACTED:password:"#.to_string(),
            ),
            (
                Source::Body(Some("application/yaml")),
                format!("db:\n  host: db.internal\n  client_secret: {secret}\n"),
                "db:\n  host: db.internal\n  client_secret: [REDACTED:secret_field:".to_string(),
            ),
            (
                Source::Body(Some("text/plain")),
                format!("connecting as ann with password={secret} to db"),
                "connecting as ann with password=[REDACTED:password:".to_string(),
            ),
            // A container's environment in a Kubernetes manifest written in YAML: a `name`
            // names the `value` after it.
            (
                Source::Body(Some("application/yaml")),
                format!("env:\n- name: TZ\n  value: UTC\n- name: DB_PASSWORD\n  value: {secret}\n"),
                "env:\n- name: TZ\n  value: UTC\n- name: DB_PASSWORD\n  value: [REDACTED:password:"
                    .to_string(),
            ),
            // A job's command line, written as one string.
            (
                json,
                format!(r#"{{"command":"mysqldump --user ann --password {secret} shop"}}"#),
                r#"{"command":"mysqldump --user ann --password [REDACTED:password:"#.to_string(),
            ),
        ] {
            let redacted = redactor.redact_values(source, &text);
            let shown_text = redacted.as_deref().unwrap_or(&text);
            assert!(shown_text.starts_with(&shown), "{text}: {shown_text}");
            assert!(!shown_text.contains(secret), "{shown_text}");
        }
        // Names that say nothing of their values are left alone.
        for text in [
            "query { items(first: 10, status: \"active\") { id } }",
            "host: db.internal\nport: 5432\n",
            // A tag's name is no secret beside its value, nor a name that says nothing.
            "tags:\n- key: Environment\n  value: production\n- name: colour\n  value: Xk29sLqP0vZ8\n",
            "TZ=UTC LANG=en_US.UTF-8",
        ] {
            assert_eq!(
                redactor.redact_values(Source::Body(Some("text/plain")), text),
                None,
                "{text}"
            );
        }
    }

    #[test]
    fn a_value_named_by_its_sibling_member_is_hidden_by_that_name() {
        let redactor = Redactor::new(RedactionMode::Secrets);
        let secret = "Hunter2-Xk29sLqP";
        let json = Source::Body(Some("application/json"));
        for (text, shown) in [
            // A container's environment, as Kubernetes writes it.
            (
                format!(
                    r#"{{"env":[{{"name":"TZ","value":"UTC"}},{{"name":"DB_PASSWORD","value":"{secret}"}}]}}"#
                ),
                r#"{"env":[{"name":"TZ","value":"UTC"},{"name":"DB_PASSWORD","value":"[REDACTED:password:"#,
            ),
            // The same, its members the other way round.
            (
                format!(r#"{{"env":[{{"value":"{secret}","name":"DB_PASSWORD"}}]}}"#),
                r#"{"env":[{"value":"[REDACTED:password:"#,
            ),
            // A number, named after it.
            (
                r#"{"fields":[{"value":482916,"name":"pin"},{"value":4,"name":"n"}]}"#.to_string(),
                r#"{"fields":[{"value":"[REDACTED:password:"#,
            ),
            // Tags, as AWS writes them.
            (
                format!(r#"{{"Tags":[{{"Key":"api_token","Value":"{secret}"}}]}}"#),
                r#","Value":"[REDACTED:secret_field:"#,
            ),
            // A container's arguments, a flag then its value, as Kubernetes writes them.
            (
                format!(r#"{{"args":["--db-password","{secret}","--port","5432"]}}"#),
                r#"{"args":["--db-password","[REDACTED:password:"#,
            ),
            // Headers as a list of entries, as clients serialise them.
            (
                format!(r#"{{"headers":[["Accept","*/*"],["X-Api-Key","{secret}"]]}}"#),
                r#"["X-Api-Key","[REDACTED:secret_field:"#,
            ),
        ] {
            let redacted = redactor.redact_values(json, &text);
            let shown_text = redacted.as_deref().unwrap_or(&text);
            assert!(shown_text.contains(shown), "{text}: {shown_text}");
            assert!(!shown_text.contains(secret), "{shown_text}");
        }
        // A name that says nothing, and a name in another object, vouch for nothing.
        for text in [
            format!(r#"[{{"name":"colour","value":"{secret}"}}]"#),
            format!(r#"[{{"name":"password"}},{{"value":"{secret}"}}]"#),
            format!(r#"[{{"value":"{secret}"}},{{"name":"password"}}]"#),
            format!(r#"[{{"value":"{secret}","inner":{{"name":"password"}}}}]"#),
            // A list of names, and a flag followed by a flag.
            format!(r#"{{"required":["password","{secret}"]}}"#),
            format!(r#"{{"args":["--password","--{secret}"]}}"#),
        ] {
            assert_eq!(redactor.redact_values(json, &text), None, "{text}");
        }
    }

    #[test]
    fn a_key_beside_a_value_is_shown_and_alone_is_hidden() {
        for (text, expected) in [
            (
                r#"{"Tags":[{"Key":"Environment","Value":"prod"},{"Key":"Team", "n": {"a": 1}, "value": 2}]}"#,
                None,
            ),
            (
                r#"{"key":"Xk29sLqP0vZ8","other":{"value":1}}"#,
                Some(r#"{"key":"[REDACTED]","other":{"value":1}}"#),
            ),
            (
                r#"[{"Key":"Xk29sLqP0vZ8"},{"Value":1}]"#,
                Some(r#"[{"Key":"[REDACTED]"},{"Value":1}]"#),
            ),
        ] {
            assert_eq!(
                redact_json_text(text).as_ref(),
                expected.unwrap_or(text),
                "{text}"
            );
        }
    }

    #[test]
    fn json_in_an_event_stream_is_read_as_json() {
        let redactor = Redactor::new(RedactionMode::Secrets);
        let password = "Hunter2-Xk29sLqP";
        let text = format!(
            "event: login\r\ndata: {{\"user\":\"ann\",\"password\":\"{password}\"}}\r\n\r\n\
             id: 2\ndata: plain words\ndata:[{{\"password\":\"{password}\"}}]\n\n"
        );
        let source = Source::Body(Some("text/event-stream"));
        let redacted = redactor
            .redact_values(source, &text)
            .expect("two passwords");
        assert!(!redacted.contains(password), "{redacted}");
        assert!(
            redacted.starts_with(
                "event: login\r\ndata: {\"user\":\"ann\",\"password\":\"[REDACTED:password:"
            ),
            "{redacted}"
        );
        assert!(redacted
            .contains("id: 2\ndata: plain words\ndata:[{\"password\":\"[REDACTED:password:"));
    }

    #[test]
    fn cells_of_a_delimited_body_are_hidden_by_their_columns() {
        let redactor = Redactor::new(RedactionMode::Pii);
        let password = "Hunter2-Xk29sLqP";
        let ssn = "536228401";
        for (content_type, separator) in [
            ("text/csv; charset=utf-8", ","),
            ("application/csv", ";"),
            ("text/tab-separated-values", "\t"),
        ] {
            let rows = [
                ["id", "name", "ssn", "password", "plan"],
                ["1", "Ann Lee", ssn, password, "pro"],
                ["2", "Bob Ray", "", "\"quoted, too\"", "free"],
            ];
            let text = rows
                .iter()
                .map(|row| row.join(separator))
                .collect::<Vec<_>>()
                .join("\r\n");
            let source = Source::Body(Some(content_type));
            let redacted = redactor.redact_values(source, &text).expect(content_type);
            for value in [ssn, password, "quoted, too"] {
                assert!(!redacted.contains(value), "{content_type}: {redacted}");
            }
            // Names, and values their names do not vouch for, as sent.
            for shown in ["id", "password", "Ann Lee", "pro"] {
                assert!(redacted.contains(shown), "{content_type}: {redacted}");
            }
        }
    }

    #[test]
    fn a_session_named_outside_a_cookie_is_hidden() {
        let redactor = Redactor::new(RedactionMode::Secrets);
        let session = "a8f5f167f44f4964e6c998dee827110c";
        let form = Source::Body(Some("application/x-www-form-urlencoded"));
        let json = Source::Body(Some("application/json"));
        let text = Source::Body(Some("text/plain"));
        for (source, written) in [
            // Servers that cannot set cookies carry the session in the URL.
            (Source::Query, format!("sid={session}&page=2")),
            (form, format!("user=ann&session_id={session}")),
            // A login's answer.
            (
                json,
                format!(r#"{{"sessionId":"{session}","expires_in":3600}}"#),
            ),
            (json, format!(r#"{{"session":{{"id":"{session}"}}}}"#)),
            (text, format!("login ok, session={session} for ann")),
        ] {
            let redacted = redactor.redact_values(source, &written);
            let shown = redacted.as_deref().unwrap_or(&written);
            assert!(!shown.contains(session), "{shown}");
            assert!(shown.contains("[REDACTED:secret_field:"), "{shown}");
        }
        // What a session's name says of it, not the session.
        for written in [
            r#"{"session_count":12,"sessionTimeout":"30 minutes"}"#,
            r#"{"session_expires_at":"2024-05-01T10:00:00Z","session_type":"interactive"}"#,
            r#"{"sessionId":"none","sid":"pending"}"#,
        ] {
            assert_eq!(redactor.redact_values(json, written), None, "{written}");
        }
    }

    #[test]
    fn values_in_markup_and_multipart_bodies_are_hidden_by_their_names() {
        let redactor = Redactor::new(RedactionMode::Secrets);
        let token = "Xk29sLqP0vZ8mN3bR7tY1wQe";
        for (content_type, text) in [
            (
                "text/xml",
                format!(
                    "<soap:Envelope><soap:Body><Login><user>ann</user>\
                     <password>hunter2-Q</password><apiKey>{token}</apiKey></Login>\
                     </soap:Body></soap:Envelope>"
                ),
            ),
            (
                "text/html; charset=utf-8",
                format!(r#"<form><input type="hidden" name="csrf_token" value="{token}"></form>"#),
            ),
            // Settings named by a `key` or `name` attribute, as .NET's configuration, Java's
            // properties and Spring's beans write them.
            (
                "application/xml",
                format!(
                    r#"<appSettings><add key="DbPassword" value="hunter2-Q"/></appSettings>
                    <properties><entry key="api_key">{token}</entry></properties>"#
                ),
            ),
            (
                "application/xml",
                format!(
                    r#"<bean><property name="password">hunter2-Q</property>
                    <secret name="payments">{token}</secret></bean>"#
                ),
            ),
            (
                "multipart/form-data; boundary=b1",
                format!(
                    "--b1\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\n\
                     hunter2-Q\r\n--b1\r\nContent-Disposition: form-data; \
                     name=\"api_key\"\r\n\r\n{token}\r\n--b1--\r\n"
                ),
            ),
        ] {
            let redacted = redactor
                .redact_values(Source::Body(Some(content_type)), &text)
                .unwrap_or_default();
            assert!(
                !redacted.contains("hunter2-Q") && !redacted.contains(token),
                "{content_type}: {redacted}"
            );
            // The structure around the values stays readable.
            assert!(
                redacted.contains("[REDACTED:"),
                "{content_type}: {redacted}"
            );
        }
        // A `key` naming a value or a text is a name, shown; alone it holds a key, hidden.
        let xml = Source::Body(Some("application/xml"));
        let settings = r#"<add key="Environment" value="prod"/><entry key="Timeout">30</entry>"#;
        assert_eq!(redactor.redact_values(xml, settings), None);
        let alone = format!(r#"<item key="{token}"/>"#);
        assert!(!redactor
            .redact_values(xml, &alone)
            .unwrap_or_default()
            .contains(token));
    }

    #[test]
    fn json_written_inside_a_value_is_read_as_json() {
        let redactor = Redactor::new(RedactionMode::Secrets);
        let token = "Xk29sLqP0vZ8mN3bR7tY1wQe";
        for (source, text) in [
            (
                Source::Body(Some("application/json")),
                format!(
                    r#"{{"Type":"Notification","Message":"{{\"user\":\"ann\",\"password\":\"hunter2-Q\",\"api_key\":\"{token}\"}}"}}"#
                ),
            ),
            (
                Source::Body(Some("application/x-www-form-urlencoded")),
                format!(
                    "payload=%7B%22password%22%3A%22hunter2-Q%22%2C%22token%22%3A%22{token}%22%7D"
                ),
            ),
            (
                Source::Header("x-client-context"),
                format!(r#"{{"password": "hunter2-Q", "access_token": "{token}"}}"#),
            ),
        ] {
            // Nothing hidden is the text as it was.
            let redacted = redactor
                .redact_values(source, &text)
                .unwrap_or(text.clone());
            assert!(
                !redacted.contains("hunter2-Q") && !redacted.contains(token),
                "{text}: {redacted}"
            );
        }
        // A value that only starts or ends like JSON is not read so.
        assert_eq!(
            redactor.redact_values(Source::Header("x-note"), "{ see docs }"),
            None
        );
    }

    #[test]
    fn card_security_codes_are_hidden_by_name() {
        // Card rules forbid keeping them after authorisation: never shown, wherever they are.
        let redactor = Redactor::new(RedactionMode::Secrets);
        for (source, text) in [
            (
                Source::Body(Some("application/json")),
                r#"{"card":{"cvv":"123"}}"#,
            ),
            (Source::Body(Some("application/json")), r#"{"cvc2":417}"#),
            (Source::Query, "csc=4821&x=1"),
            (
                Source::Body(Some("text/xml")),
                "<payment><cvv>123</cvv></payment>",
            ),
        ] {
            let redacted = redactor.redact_values(source, text).unwrap_or_default();
            assert!(
                redacted.contains("[REDACTED:password:"),
                "{text}: {redacted}"
            );
        }
        assert_eq!(
            redact_json_text(r#"{"cvv": "123", "ok": true}"#),
            r#"{"cvv": "[REDACTED]", "ok": true}"#
        );
    }

    #[test]
    fn any_window_of_any_capture_keeps_to_what_it_may_show() {
        // Texts of values, their pieces, delimiters and multi-byte characters; windows ending
        // anywhere on a character boundary, captures ending early or not.
        const PIECES: &[&str] = &[
            "grace.hopper@example.com",
            "grace.hop",
            "4111 1111 1111 1111",
            "4111 11",
            "AKIAZ7QW3ERT5YUIOP2L",
            "AKIAZ7",
            "\"",
            "\",",
            "=",
            "&",
            "\n",
            " ",
            "é",
            "日本",
            "x",
            "{",
            "]",
        ];
        let mut rng = crate::sensitive::corpus::Rng::new(0x5EED_0CA7);
        let source = Source::Body(Some("application/json"));
        let redactors = [
            Redactor::new(RedactionMode::Pii),
            Redactor::new(RedactionMode::Secrets),
        ];
        for _ in 0..2_000 {
            let text: String = (0..rng.below(12))
                .map(|_| *rng.pick(PIECES))
                .collect::<Vec<_>>()
                .concat();
            let end = text.floor_char_boundary(rng.below(text.len() as u64 + 1) as usize);
            let ends_early = rng.chance(50);
            let redactor = rng.pick(&redactors);
            let shown = redactor.redact_window_of_capture(source, &text, 0..end, ends_early, 0);
            let unfinished = unfinished_value_start(&text);
            if ends_early && unfinished < end {
                let before = shown.strip_suffix(REDACTED);
                assert!(
                    before.is_some_and(|before| !before.ends_with(&text[unfinished..end])),
                    "{text:?} to {end}: {shown:?}"
                );
            }
        }
    }

    #[test]
    fn a_window_hides_whole_the_values_its_edges_run_through() {
        let whole = "mail grace.hopper@example.com, key AKIAZ7QW3ERT5YUIOP2L today";
        let source = Source::Body(Some("text/plain"));
        let (start, end) = (whole.find("hopper").unwrap(), whole.find("ERT5").unwrap());
        let pii = Redactor::new(RedactionMode::Pii);
        let shown = pii.redact_window(source, whole, start..end, 0);
        assert!(
            shown.starts_with("[REDACTED:email:")
                && shown.contains("], key [REDACTED:aws_access_key:")
                && shown.ends_with(']'),
            "{shown}"
        );
        // Within the window, as the window.
        let shown = pii.redact_window(source, whole, 0..4, 0);
        assert_eq!(shown, "mail");
        let off = Redactor::new(RedactionMode::Off);
        assert_eq!(
            off.redact_window(source, whole, start..end, 0),
            &whole[start..end]
        );
    }

    #[test]
    fn a_cut_through_a_character_shows_the_characters_before_it() {
        let whole = "ééx";
        let preview = lossy_text(&whole.as_bytes()[..3]);
        assert_eq!(preview, "é\u{FFFD}");
        assert_eq!(cut_of(&preview, whole), Some(2));
        assert_eq!(cut_of("éé", whole), Some(4));
        assert_eq!(cut_of("x", whole), None);
        assert_eq!(cut_of("\u{FFFD}", whole), Some(0));
        assert_eq!(cut_of("x\u{FFFD}", whole), None);
    }

    #[test]
    fn secret_json_members_are_hidden_even_in_cut_documents() {
        assert_eq!(
            redact_json_text(r#"{"user":"ann","password":"hunter2","n":1}"#),
            r#"{"user":"ann","password":"[REDACTED]","n":1}"#
        );
        assert_eq!(
            redact_json_text(r#"{"pin": 1234, "ok": true}"#),
            r#"{"pin": "[REDACTED]", "ok": true}"#
        );
        assert_eq!(
            redact_json_text(r#"{"a":{"api_key":"k\"q"}}"#),
            r#"{"a":{"api_key":"[REDACTED]"}}"#
        );
        assert_eq!(
            redact_json_text(r#"{"token":"abc"#),
            r#"{"token":"[REDACTED]""#
        );
        assert!(matches!(
            redact_json_text(r#"["password", "x"]"#),
            Cow::Borrowed(r#"["password", "x"]"#)
        ));
        assert_eq!(
            redact_json_text(r#"{"a":[1,{"secret":{"k":1}},{"passwd":null}],"b":"\"}"#),
            r#"{"a":[1,{"secret":{"k":1}},{"passwd":"[REDACTED]"}],"b":"\"}"#
        );
    }

    /// Runs of every length before the quotes, so that the next quote is in the next word,
    /// past it, or in a tail shorter than a word; space around colons, escaped quotes in keys.
    #[test]
    fn secret_members_are_found_whatever_lies_between_quotes() {
        for pad in 0..24 {
            let filler = "f".repeat(pad);
            for (before_colon, after_colon) in [("", ""), (" ", " "), ("\n\t", "\u{a0}")] {
                let document = format!(
                    r#"{{"{filler}":"{filler}",{filler}"password"{before_colon}:{after_colon}"{filler}x","k\"{filler}":1,{filler}"token":"{filler}y"}}"#
                );
                let expected = document
                    .replace(&format!(r#""{filler}x""#), r#""[REDACTED]""#)
                    .replace(&format!(r#""{filler}y""#), r#""[REDACTED]""#);
                assert_eq!(redact_json_text(&document), expected, "{document}");
                let cut = &document[..document.len() - 1 - pad.min(3)];
                assert!(redact_json_text(cut).contains("[REDACTED]"), "{cut}");
            }
        }
    }

    fn args(line: &[&str]) -> Vec<String> {
        line.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn command_line_secrets_are_hidden() {
        assert_eq!(
            redact_args(&args(&["mysql", "-u", "root", "--password", "hunter2"])),
            args(&["mysql", "-u", "root", "--password", "[REDACTED]"])
        );
        assert_eq!(
            redact_args(&args(&["app", "--api-key=abc", "--port=80", "TOKEN=x"])),
            args(&[
                "app",
                "--api-key=[REDACTED]",
                "--port=80",
                "TOKEN=[REDACTED]"
            ])
        );
        assert_eq!(
            redact_args(&args(&[
                "curl",
                "-H",
                "Authorization: Bearer abc",
                "https://u:p@h/x"
            ])),
            args(&[
                "curl",
                "-H",
                "Authorization: Bearer [REDACTED]",
                "https://u:[REDACTED]@h/x"
            ])
        );
        assert_eq!(
            redact_args(&args(&["curl", "-u", "ann:hunter2", "http://h/"])),
            args(&["curl", "-u", "ann:[REDACTED]", "http://h/"])
        );
        assert_eq!(
            redact_args(&args(&["curl", "-b", "theme=dark; sid=abc"])),
            args(&["curl", "-b", "theme=[REDACTED]; sid=[REDACTED]"])
        );
        let plain = args(&["python3", "-m", "http.server", "8000", "http://h:80/x"]);
        assert_eq!(redact_args(&plain), plain);
    }

    #[test]
    fn a_header_on_a_command_line_is_read_as_the_header_it_is() {
        use base64::{engine::general_purpose, Engine};
        let redactor = Redactor::default();
        let claims = general_purpose::STANDARD.encode(r#"{"email":"ann.lee@example.com"}"#);
        let line: Arc<[String]> = args(&[
            "curl",
            "-H",
            "X-Session-Id: s3J9xQ2mZp7RtY4vWb8NcLa",
            "-H",
            &format!("X-Userinfo:{claims}"),
            "-H",
            "Accept: application/json",
            "http://api.test:8080/v1/me",
        ])
        .into();
        let shown = redactor.redacted_command_line(&line, 0);
        assert!(
            shown[2].starts_with("X-Session-Id: [REDACTED:secret_field:"),
            "{shown:?}"
        );
        assert!(
            shown[4].starts_with("X-Userinfo:[REDACTED:email:"),
            "{shown:?}"
        );
        assert_eq!(shown[6..], line[6..]);
    }

    #[test]
    fn a_process_command_line_is_redacted_once_and_shared_by_its_calls() {
        let redactor = Redactor::default();
        let mysql: Arc<[String]> = args(&["mysql", "--password", "hunter2"]).into();
        let curl: Arc<[String]> = args(&["curl", "-u", "ann:secret1", "http://h/"]).into();
        let first = redactor.redacted_command_line(&mysql, 0);
        assert_eq!(&first[..], args(&["mysql", "--password", "[REDACTED]"]));
        // Another process's list, equal in length, is redacted on its own.
        let other = redactor.redacted_command_line(&curl, 0);
        assert_eq!(
            &other[..],
            args(&["curl", "-u", "ann:[REDACTED]", "http://h/"])
        );
        let again = redactor.redacted_command_line(&mysql.clone(), 0);
        assert!(Arc::ptr_eq(&first, &again));
        // An equal list of another process is a different allocation: redacted afresh, alike.
        let copy: Arc<[String]> = mysql.to_vec().into();
        let fresh = redactor.redacted_command_line(&copy, 0);
        assert!(!Arc::ptr_eq(&first, &fresh));
        assert_eq!(first, fresh);
        // The memory is bounded: the oldest list goes first.
        for n in 0..REMEMBERED_COMMAND_LINES {
            let list: Arc<[String]> = args(&["app", &format!("--n={n}")]).into();
            redactor.redacted_command_line(&list, 0);
        }
        assert_eq!(
            redactor.command_lines.borrow().len(),
            REMEMBERED_COMMAND_LINES
        );
        assert!(!redactor
            .command_lines
            .borrow()
            .iter()
            .any(|(original, _)| Arc::ptr_eq(original, &mysql)));
    }
}
