//! How a request authenticates: the scheme, never the credential.
//!
//! The inventory records, per endpoint, which schemes its calls used: none, HTTP Basic, a bearer
//! token (a JWT, with the `alg` its header names, or an opaque token), an API key in a header or
//! in the query, a session cookie, or another `Authorization` scheme. It runs before redaction,
//! so it sees credentials; it keeps only their kind and the name of the header, parameter or
//! cookie that carried them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::ApiCall;

/// One way a request authenticated.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "scheme", rename_all = "snake_case")]
pub enum AuthScheme {
    None,
    Basic,
    /// A bearer token that is not a JWT.
    Bearer,
    /// A bearer JWT; `alg` from its header (`none` is worth a look).
    Jwt {
        alg: String,
    },
    ApiKeyHeader {
        name: String,
    },
    ApiKeyQuery {
        name: String,
    },
    Cookie {
        name: String,
    },
    /// Another `Authorization` scheme (`digest`, `negotiate`, `aws4-hmac-sha256`...).
    Other {
        name: String,
    },
}

impl fmt::Display for AuthScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthScheme::None => f.write_str("none"),
            AuthScheme::Basic => f.write_str("basic"),
            AuthScheme::Bearer => f.write_str("bearer"),
            AuthScheme::Jwt { alg } => write!(f, "jwt({alg})"),
            AuthScheme::ApiKeyHeader { name } => write!(f, "api-key header {name}"),
            AuthScheme::ApiKeyQuery { name } => write!(f, "api-key query {name}"),
            AuthScheme::Cookie { name } => write!(f, "cookie {name}"),
            AuthScheme::Other { name } => f.write_str(name),
        }
    }
}

/// Query parameter names that carry API keys or tokens.
const API_KEY_PARAMS: &[&str] = &[
    "api_key",
    "apikey",
    "api-key",
    "key",
    "access_token",
    "token",
    "auth",
];

/// Cookie names that carry sessions (also any name containing `session` or `sess`).
const SESSION_COOKIES: &[&str] = &[
    "sid",
    "connect.sid",
    "jsessionid",
    "phpsessid",
    "auth",
    "token",
];

/// Longest JWT header decoded: real ones are under 200 bytes.
const MAX_JWT_HEADER_BYTES: usize = 1024;

/// Longest `alg` kept: real ones are five characters; anything longer is not an algorithm.
const MAX_ALG_LEN: usize = 16;

/// Whether the call carries no credentials at all: the cheap check before [`schemes`].
pub fn is_anonymous(call: &ApiCall) -> bool {
    !call.request_headers.contains("authorization")
        && !call.request_headers.contains("cookie")
        && !call.request_headers.names().any(is_api_key_header)
        && !call.query.as_deref().is_some_and(|query| {
            query.split('&').any(|pair| {
                let name = pair.split_once('=').map_or(pair, |(n, _)| n);
                API_KEY_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(name))
            })
        })
}

/// Header names (lowercase, as calls carry them) that carry API keys.
fn is_api_key_header(name: &str) -> bool {
    matches!(
        name,
        "x-api-key"
            | "api-key"
            | "apikey"
            | "x-apikey"
            | "x-api-token"
            | "x-auth-token"
            | "x-access-token"
            | "x-token"
            | "private-token"
    ) || (name.ends_with("-api-key") && name.len() < 40)
}

/// Every scheme the call used (`None` alone when it used none).
pub fn schemes(call: &ApiCall) -> Vec<AuthScheme> {
    let mut out = Vec::new();
    for value in call.request_headers.get_all("authorization") {
        out.push(authorization(value));
    }
    for name in call.request_headers.names() {
        if is_api_key_header(name) {
            out.push(AuthScheme::ApiKeyHeader {
                name: name.to_string(),
            });
        }
    }
    if let Some(query) = &call.query {
        for pair in query.split('&') {
            let name = pair.split_once('=').map_or(pair, |(n, _)| n);
            let lower = name.to_ascii_lowercase();
            if API_KEY_PARAMS.contains(&lower.as_str()) {
                out.push(AuthScheme::ApiKeyQuery { name: lower });
            }
        }
    }
    for header in call.request_headers.get_all("cookie") {
        for cookie in header.split(';') {
            let name = cookie.split_once('=').map_or(cookie, |(n, _)| n).trim();
            let lower = name.to_ascii_lowercase();
            if SESSION_COOKIES.contains(&lower.as_str()) || lower.contains("sess") {
                out.push(AuthScheme::Cookie {
                    name: name.to_string(),
                });
            }
        }
    }
    if out.is_empty() {
        out.push(AuthScheme::None);
    }
    out.sort();
    out.dedup();
    out
}

fn authorization(value: &str) -> AuthScheme {
    let value = value.trim();
    let (scheme, credentials) = value.split_once(' ').unwrap_or((value, ""));
    let scheme = scheme.to_ascii_lowercase();
    match scheme.as_str() {
        "basic" => AuthScheme::Basic,
        "bearer" => match jwt_alg(credentials.trim()) {
            Some(alg) => AuthScheme::Jwt { alg },
            None => AuthScheme::Bearer,
        },
        _ if scheme.len() <= 32 && scheme.bytes().all(|b| b.is_ascii_graphic()) => {
            AuthScheme::Other { name: scheme }
        }
        _ => AuthScheme::Other {
            name: "unknown".into(),
        },
    }
}

/// The `alg` of a JWT (JWS compact form: three base64url parts, the first a JSON header).
pub fn jwt_alg(token: &str) -> Option<String> {
    let mut parts = token.split('.');
    let (header, _payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || header.len() > MAX_JWT_HEADER_BYTES * 4 / 3 + 4 {
        return None;
    }
    let bytes = base64url_decode(header)?;
    let json: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let alg = json.get("alg")?.as_str()?;
    (alg.len() <= MAX_ALG_LEN && alg.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| alg.to_string())
}

/// Longest JWT payload decoded: real ones are a few hundred bytes.
const MAX_JWT_PAYLOAD_BYTES: usize = 8 * 1024;

/// Longest subject kept: user ids and emails are far shorter; the bound keeps a hostile token
/// from putting kilobytes into every finding about its caller.
const MAX_SUBJECT_LEN: usize = 128;

/// What a JWT says about who sent it and until when. Nothing is verified (observer holds no
/// keys): this attributes a call to a subject, it never authenticates one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtClaims {
    pub alg: String,
    /// `sub`, as text (numbers too), printable and bounded.
    pub sub: Option<String>,
    /// `exp`, in seconds since the epoch.
    pub exp: Option<u64>,
}

/// The claims of a JWT (its header must name an `alg`; a payload that cannot be read leaves
/// `sub` and `exp` empty).
pub fn jwt_claims(token: &str) -> Option<JwtClaims> {
    let alg = jwt_alg(token)?;
    let payload = token
        .split('.')
        .nth(1)
        .filter(|p| p.len() <= MAX_JWT_PAYLOAD_BYTES * 4 / 3 + 4)
        .and_then(base64url_decode)
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok());
    let claim = |name: &str| payload.as_ref().and_then(|p| p.get(name));
    let sub = claim("sub")
        .and_then(|sub| match sub {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .filter(|s| {
            !s.is_empty() && s.len() <= MAX_SUBJECT_LEN && !s.chars().any(char::is_control)
        });
    let exp = claim("exp").and_then(|exp| {
        exp.as_u64()
            .or_else(|| exp.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
    });
    Some(JwtClaims { alg, sub, exp })
}

/// Unpadded (or padded) base64url, as JWTs use.
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for b in text.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(headers: &[(&str, &str)], query: Option<&str>) -> ApiCall {
        let mut call = crate::inventory::tests::call("GET", "/x", 200);
        call.request_headers = headers.iter().copied().collect();
        call.query = query.map(String::from);
        call
    }

    #[test]
    fn every_scheme_is_recognised() {
        // {"alg":"HS256","typ":"JWT"} . {"sub":"1"} . signature
        let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIn0.c2ln";
        let none_jwt = "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.";
        for (headers, query, expected) in [
            (vec![], None, vec![AuthScheme::None]),
            (
                vec![("authorization", "Basic YTpi")],
                None,
                vec![AuthScheme::Basic],
            ),
            (
                vec![("authorization", &*format!("Bearer {jwt}"))],
                None,
                vec![AuthScheme::Jwt {
                    alg: "HS256".into(),
                }],
            ),
            (
                vec![("authorization", &*format!("Bearer {none_jwt}"))],
                None,
                vec![AuthScheme::Jwt { alg: "none".into() }],
            ),
            (
                vec![("authorization", "Bearer opaque-token-123")],
                None,
                vec![AuthScheme::Bearer],
            ),
            (
                vec![("x-api-key", "k")],
                None,
                vec![AuthScheme::ApiKeyHeader {
                    name: "x-api-key".into(),
                }],
            ),
            (
                vec![],
                Some("page=2&api_key=abc"),
                vec![AuthScheme::ApiKeyQuery {
                    name: "api_key".into(),
                }],
            ),
            (
                vec![("cookie", "theme=dark; sessionid=abc")],
                None,
                vec![AuthScheme::Cookie {
                    name: "sessionid".into(),
                }],
            ),
            (
                vec![("authorization", "Digest username=\"a\"")],
                None,
                vec![AuthScheme::Other {
                    name: "digest".into(),
                }],
            ),
        ] {
            assert_eq!(
                schemes(&call(&headers, query)),
                expected,
                "{headers:?} {query:?}"
            );
        }
    }

    #[test]
    fn malformed_tokens_are_plain_bearer() {
        for token in ["a.b", "a.b.c.d", "!!!.x.y", "eyJub3QiOiJhbGcifQ.x.y"] {
            assert_eq!(jwt_alg(token), None, "{token}");
        }
        assert_eq!(base64url_decode("aGk"), Some(b"hi".to_vec()));
    }

    #[test]
    fn claims_name_the_subject_and_expiry() {
        // {"alg":"HS256","typ":"JWT"} . {"sub":"alice","exp":1700000000} . signature
        let token =
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTcwMDAwMDAwMH0.c2ln";
        assert_eq!(
            jwt_claims(token),
            Some(JwtClaims {
                alg: "HS256".into(),
                sub: Some("alice".into()),
                exp: Some(1_700_000_000),
            })
        );
        // {"alg":"none"} . {"sub":42} . (no signature)
        let numeric = jwt_claims("eyJhbGciOiJub25lIn0.eyJzdWIiOjQyfQ.").unwrap();
        assert_eq!(
            (numeric.alg.as_str(), numeric.sub.as_deref()),
            ("none", Some("42"))
        );
        // A payload that is not JSON still has its header's alg.
        assert_eq!(jwt_claims("eyJhbGciOiJub25lIn0.bm9wZQ.").unwrap().sub, None);
        assert_eq!(jwt_claims("not.a.jwt"), None);
    }
}
