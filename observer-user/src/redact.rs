//! Redaction: secrets seen in traffic never leave the agent unless the operator asks.
//!
//! Runs over every [`ApiCall`] before any consumer serializes it. By default it hides
//! credentials wherever the protocol puts them by name: authorization and cookie headers, query
//! parameters, JSON and form fields, and command-line arguments whose names say they hold a
//! secret. Values are replaced, names and structure are kept, so the output still says *that*
//! a call carried a token and where.

use crate::model::{ApiCall, BodyView};

/// What replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

/// How much the operator lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum RedactionMode {
    /// Hide secrets (default).
    #[default]
    Secrets,
    /// Keep no bodies at all, and hide secrets elsewhere.
    DropBodies,
    /// Show everything as captured. Only for debugging on a machine you own.
    Off,
}

/// Headers whose whole value is a credential.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "apikey",
    "x-auth-token",
    "x-access-token",
    "x-amz-security-token",
    "x-csrf-token",
    "x-xsrf-token",
];

/// Headers carrying `name=value` pairs whose values are session secrets.
const COOKIE_HEADERS: &[&str] = &["cookie", "set-cookie"];

/// Name fragments that mark a field, parameter or argument as secret. Matched against the
/// lowercased name with `-` and `.` read as `_`.
const SECRET_NAME_FRAGMENTS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "api_key",
    "access_key",
    "accesskey",
    "private_key",
    "privatekey",
    "credential",
    "session",
    "signature",
    "authorization",
    "client_secret",
];

/// Names that are secret only when they are the whole name (as fragments they are too common).
const SECRET_NAMES: &[&str] = &[
    "pwd", "pass", "auth", "key", "sig", "otp", "pin", "code", "jwt", "sid",
];

/// Whether a field, parameter or argument name says its value is a secret.
pub fn is_secret_name(name: &str) -> bool {
    let normalized: String = name
        .chars()
        .map(|c| match c {
            '-' | '.' | ' ' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    let trimmed = normalized.trim_matches('_');
    SECRET_NAMES.contains(&trimmed) || SECRET_NAME_FRAGMENTS.iter().any(|f| normalized.contains(f))
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Redactor {
    pub mode: RedactionMode,
}

impl Redactor {
    pub fn new(mode: RedactionMode) -> Redactor {
        Redactor { mode }
    }

    /// Hide what `mode` says to hide, in place.
    pub fn redact_call(&self, call: &mut ApiCall) {
        if self.mode == RedactionMode::Off {
            return;
        }
        for (name, values) in call
            .request_headers
            .iter_mut()
            .chain(call.response_headers.iter_mut())
        {
            for value in values.iter_mut() {
                *value = redact_header(name, value);
            }
        }
        if let Some(query) = &mut call.query {
            *query = redact_pairs(query, '&');
        }
        call.command_args = redact_args(&call.command_args);
        let content_types = [
            call.request_headers
                .get("content-type")
                .and_then(|v| v.first())
                .cloned(),
            call.response_headers
                .get("content-type")
                .and_then(|v| v.first())
                .cloned(),
        ];
        for (body, content_type) in [&mut call.request_body, &mut call.response_body]
            .into_iter()
            .zip(content_types)
        {
            match self.mode {
                RedactionMode::DropBodies => {
                    if let Some(body) = body {
                        body.preview = None;
                    }
                }
                _ => redact_body(body, content_type.as_deref()),
            }
        }
        // The raw bodies are for analysis inside the agent; they never leave it, but a mode
        // that drops bodies drops these too.
        if self.mode == RedactionMode::DropBodies {
            call.request_body_bytes.clear();
            call.response_body_bytes.clear();
        }
    }
}

/// A header value with its secret parts hidden.
pub fn redact_header(name: &str, value: &str) -> String {
    let name = name.to_ascii_lowercase();
    if SECRET_HEADERS.contains(&name.as_str()) {
        // Keep the scheme ("Bearer", "Basic"): it says what kind of credential was sent.
        return match value.split_once(' ') {
            Some((scheme, _)) if name.ends_with("authorization") => format!("{scheme} {REDACTED}"),
            _ => REDACTED.to_string(),
        };
    }
    if COOKIE_HEADERS.contains(&name.as_str()) {
        return redact_cookie(value, name == "set-cookie");
    }
    value.to_string()
}

/// `a=1; b=2` → `a=[REDACTED]; b=[REDACTED]`. For Set-Cookie only the first pair is the cookie;
/// the attributes after it (Path, Expires, HttpOnly...) are kept.
fn redact_cookie(value: &str, set_cookie: bool) -> String {
    value
        .split(';')
        .enumerate()
        .map(|(i, part)| {
            if set_cookie && i > 0 {
                return part.to_string();
            }
            match part.split_once('=') {
                Some((name, _)) => format!("{name}={REDACTED}"),
                None => part.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// Redact the values of secret-named `name=value` pairs separated by `separator`.
pub fn redact_pairs(pairs: &str, separator: char) -> String {
    pairs
        .split(separator)
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret_name(&percent_decode_lossy(name)) => {
                format!("{name}={REDACTED}")
            }
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join(&separator.to_string())
}

fn percent_decode_lossy(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' => {
                match (
                    bytes.get(i + 1).copied().and_then(hex),
                    bytes.get(i + 2).copied().and_then(hex),
                ) {
                    (Some(high), Some(low)) => {
                        out.push((high * 16 + low) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Command-line arguments carry secrets as `--password x`, `--token=x`, `name=secret`,
/// `Authorization: Bearer x` (curl -H), or `user:pass@` in URLs.
pub fn redact_args(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut hide_next = false;
    for arg in args {
        if std::mem::take(&mut hide_next) {
            out.push(REDACTED.to_string());
            continue;
        }
        let flag = arg.trim_start_matches('-');
        if arg.starts_with('-') && !flag.is_empty() {
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

fn redact_body(body: &mut Option<BodyView>, content_type: Option<&str>) {
    let Some(preview) = body.as_mut().and_then(|b| b.preview.as_mut()) else {
        return;
    };
    let content_type = content_type.unwrap_or("").to_ascii_lowercase();
    if content_type.contains("json") || preview.trim_start().starts_with(['{', '[']) {
        *preview = redact_json_text(preview);
    } else if content_type.contains("x-www-form-urlencoded") {
        *preview = redact_pairs(preview, '&');
    }
}

/// Hide the values of secret-named JSON members. Works on text, not a parsed tree, because
/// previews are often cut mid-document: `"password": "x"` is found wherever it is.
pub fn redact_json_text(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'"' {
            let next = text[i..].find('"').map_or(bytes.len(), |j| i + j);
            out.push_str(&text[i..next]);
            i = next;
            continue;
        }
        let Some(end) = string_end(bytes, i) else {
            out.push_str(&text[i..]);
            break;
        };
        let key = &text[i + 1..end];
        out.push_str(&text[i..=end]);
        i = end + 1;
        let after = text[i..].trim_start();
        if !after.starts_with(':') || !is_secret_name(key) {
            continue;
        }
        // Copy up to the value, then replace a scalar value (string, number, literal).
        let colon = i + (text[i..].len() - after.len());
        let value_start =
            colon + 1 + (text[colon + 1..].len() - text[colon + 1..].trim_start().len());
        out.push_str(&text[i..value_start]);
        i = value_start;
        match bytes.get(i) {
            Some(b'"') => {
                out.push('"');
                out.push_str(REDACTED);
                out.push('"');
                i = string_end(bytes, i).map_or(bytes.len(), |e| e + 1);
            }
            Some(b'{') | Some(b'[') | None => {}
            Some(_) => {
                let end = text[i..]
                    .find([',', '}', ']', '\n'])
                    .map_or(bytes.len(), |j| i + j);
                out.push('"');
                out.push_str(REDACTED);
                out.push('"');
                i = end;
            }
        }
    }
    out
}

/// Index of the quote that closes the JSON string opening at `start`.
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

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
            redact_header("Content-Type", "application/json"),
            "application/json"
        );
    }

    #[test]
    fn cookies_keep_names_and_attributes() {
        assert_eq!(
            redact_header("Cookie", "sid=abc; theme=dark"),
            "sid=[REDACTED]; theme=[REDACTED]"
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
        assert_eq!(
            redact_pairs("author=me&keyword=x", '&'),
            "author=me&keyword=x"
        );
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
        assert_eq!(
            redact_json_text(r#"["password", "x"]"#),
            r#"["password", "x"]"#
        );
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
        let plain = args(&["python3", "-m", "http.server", "8000", "http://h:80/x"]);
        assert_eq!(redact_args(&plain), plain);
    }
}
