//! Who made a call: the keys behaviour is tracked under, and what a finding says about them.
//!
//! A call has two identities, and detectors need both:
//!
//! - its **source**: the client address when the observed process serves the call, or the
//!   process (executable and container) when it makes the call. Credential stuffing rotates
//!   users and tokens but not its source, so failure bursts are counted per source.
//! - its **principal**: the user or token behind the call when the request shows one (a JWT's
//!   `sub`, a Basic user, else a session cookie, API key or opaque token, hashed), else the
//!   source. Many users share one address behind a proxy or NAT, and one user may come from
//!   several, so object walks and rates are counted per principal.
//!
//! Credentials are read (as `inventory::auth` recognises them) and immediately reduced to a
//! hash and, for JWTs, their claims; nothing here keeps a credential. A principal made from a
//! credential is keyed with the installation's key (`sensitive::keyed`), so it is stable across
//! restarts (baselines are persisted under it) without being a plain hash of the secret.

use std::{hash::BuildHasher, sync::Arc};

use base64::Engine as _;

use crate::{
    conn::Role,
    inventory::{
        auth::{self, AuthScheme, JwtClaims},
        template::FastMap,
    },
    model::ApiCall,
    sensitive::keyed::HashKey,
};

/// Credentials remembered: each user's token repeats on all their calls, so this saves an HMAC
/// and, for JWTs, decoding base64 and JSON on nearly every call. Cleared whole when full.
const MAX_CACHED_CREDENTIALS: usize = 8_192;

/// Longest Basic username shown (the same bound as a JWT subject).
const MAX_BASIC_USER_LEN: usize = 128;

/// What a call's request says about its caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub source: u64,
    pub principal: u64,
    /// The user, when a token or Basic credentials name one (`enduser.id`).
    pub user: Option<Arc<str>>,
    /// The request carried credentials of any kind.
    pub authenticated: bool,
    /// A hash of the credential presented (header, cookie, key), to count distinct ones.
    pub credential: Option<u64>,
    /// The bearer JWT's claims, if it had one.
    pub jwt: Option<Arc<JwtClaims>>,
}

/// Decodes identities, remembering the credentials it has seen.
pub struct Identities {
    key: HashKey,
    /// Credentials by their keyed hash (`hasher`: traffic cannot aim collisions at it).
    credentials: FastMap<u64, Credential>,
    hasher: std::hash::RandomState,
}

/// What one credential value comes to.
#[derive(Clone)]
struct Credential {
    principal: u64,
    claims: Option<Arc<JwtClaims>>,
    user: Option<Arc<str>>,
}

/// A stable 64-bit hash for keys that are persisted: `std`'s hasher is seeded per process, and
/// baselines must find their callers and endpoints again after a restart. Eight bytes at a
/// time, each word mixed in by multiply and rotate (FxHash's step) and the length folded in
/// per part, so ("ab", "c") and ("a", "bc") differ. Never change it: stored keys depend on it.
pub fn stable_hash(parts: &[&[u8]]) -> u64 {
    const SEED: u64 = 0xcbf2_9ce4_8422_2325;
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mix = |hash: u64, word: u64| (hash.rotate_left(5) ^ word).wrapping_mul(K);
    let mut hash = SEED;
    for part in parts {
        let mut chunks = part.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            hash = mix(hash, u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        hash = mix(hash, u64::from_le_bytes(word));
        hash = mix(hash, part.len() as u64);
    }
    // A final avalanche, so keys that differ in one byte differ in every bit.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^ (hash >> 33)
}

impl Identities {
    /// Identities whose credential principals are keyed with `key`.
    pub fn new(key: HashKey) -> Identities {
        Identities {
            key,
            credentials: FastMap::default(),
            hasher: std::hash::RandomState::new(),
        }
    }

    pub fn identify(&mut self, call: &ApiCall) -> Identity {
        let source = source_key(call);
        let mut identity = Identity {
            source,
            principal: source,
            ..Identity::default()
        };
        // The Authorization header is read here (its claims are remembered per token);
        // `inventory::auth` knows the other places credentials hide, and is asked only when
        // there is none: decoding a JWT's header on every call is what the cache avoids.
        let mut principal_credential: Option<u64> = None;
        if let Some(value) = first_header(call, "authorization") {
            let scheme = value.trim().split(' ').next().unwrap_or("");
            let scheme = if scheme.eq_ignore_ascii_case("bearer") {
                AuthScheme::Bearer
            } else if scheme.eq_ignore_ascii_case("basic") {
                AuthScheme::Basic
            } else {
                AuthScheme::Other {
                    name: String::new(),
                }
            };
            self.take(&scheme, value, &mut identity, &mut principal_credential);
        } else {
            for scheme in auth::schemes(call) {
                let value = match &scheme {
                    AuthScheme::ApiKeyHeader { name } => first_header(call, name),
                    AuthScheme::ApiKeyQuery { name } => query_value(call, name),
                    AuthScheme::Cookie { name } => cookie_value(call, name),
                    _ => None,
                };
                if let Some(value) = value {
                    self.take(&scheme, value, &mut identity, &mut principal_credential);
                }
            }
        }
        identity.principal = match (&identity.user, principal_credential) {
            (Some(user), _) => stable_hash(&[b"user", user.as_bytes()]),
            (None, Some(principal)) => principal,
            (None, None) => source,
        };
        identity
    }

    /// Fold one credential the request carried into `identity`.
    fn take(
        &mut self,
        scheme: &AuthScheme,
        value: &str,
        identity: &mut Identity,
        principal_credential: &mut Option<u64>,
    ) {
        identity.authenticated = true;
        let hash = self.hash(value);
        identity.credential.get_or_insert(hash);
        let credential = self.credential(hash, value, scheme);
        if credential.user.is_some() && identity.user.is_none() {
            identity.user = credential.user;
        }
        if credential.claims.is_some() {
            identity.jwt = credential.claims;
        }
        if *scheme != AuthScheme::Basic {
            principal_credential.get_or_insert(credential.principal);
        }
    }

    /// The principal, user and (for a bearer JWT) claims of a credential value whose
    /// per-process hash is `hash`, remembered.
    fn credential(&mut self, hash: u64, value: &str, scheme: &AuthScheme) -> Credential {
        if let Some(known) = self.credentials.get(&hash) {
            return known.clone();
        }
        if self.credentials.len() >= MAX_CACHED_CREDENTIALS {
            self.credentials.clear();
        }
        let tag = self.key.tag("credential", value);
        let claims = match scheme {
            AuthScheme::Bearer => {
                let token = value.trim().split_once(' ').map_or("", |(_, t)| t.trim());
                auth::jwt_claims(token).map(Arc::new)
            }
            _ => None,
        };
        let user = match scheme {
            AuthScheme::Basic => basic_user(value).map(Arc::from),
            _ => claims
                .as_ref()
                .and_then(|c| c.sub.as_deref())
                .map(Arc::from),
        };
        let credential = Credential {
            principal: stable_hash(&[b"credential", tag.as_bytes()]),
            claims,
            user,
        };
        self.credentials.insert(hash, credential.clone());
        credential
    }

    fn hash(&self, value: &str) -> u64 {
        self.hasher.hash_one(value)
    }
}

/// The source key: the client's address, or the calling process (see [`source_of`]).
pub fn source_key(call: &ApiCall) -> u64 {
    match call.role {
        Some(Role::Client) => stable_hash(&[
            b"process",
            call.executable_name.as_deref().unwrap_or("?").as_bytes(),
            call.container_id.as_deref().unwrap_or("host").as_bytes(),
        ]),
        _ => stable_hash(&[
            b"address",
            call.client_address.as_deref().unwrap_or("?").as_bytes(),
        ]),
    }
}

/// The source as text: the client's address, or the calling process.
pub fn source_of(call: &ApiCall) -> String {
    match call.role {
        Some(Role::Client) => format!(
            "process:{}@{}",
            call.executable_name.as_deref().unwrap_or("?"),
            call.container_id.as_deref().unwrap_or("host")
        ),
        _ => format!("address:{}", call.client_address.as_deref().unwrap_or("?")),
    }
}

fn first_header<'a>(call: &'a ApiCall, name: &str) -> Option<&'a str> {
    call.request_headers.first(name)
}

fn query_value<'a>(call: &'a ApiCall, name: &str) -> Option<&'a str> {
    call.query.as_deref()?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.eq_ignore_ascii_case(name).then_some(value)
    })
}

fn cookie_value<'a>(call: &'a ApiCall, name: &str) -> Option<&'a str> {
    call.request_headers.get_all("cookie").find_map(|header| {
        header.split(';').find_map(|cookie| {
            let (key, value) = cookie.split_once('=')?;
            (key.trim() == name).then_some(value.trim())
        })
    })
}

/// The user of `Basic` credentials (the password is never decoded into anything kept).
fn basic_user(value: &str) -> Option<String> {
    let encoded = value.trim().split_once(' ')?.1.trim();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = std::str::from_utf8(&decoded[..colon]).ok()?;
    (!user.is_empty() && user.len() <= MAX_BASIC_USER_LEN && !user.chars().any(char::is_control))
        .then(|| user.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(headers: &[(&str, &str)], address: &str) -> ApiCall {
        let mut call = crate::inventory::tests::call("GET", "/x", 200);
        call.client_address = Some(address.into());
        for (name, value) in headers {
            call.request_headers.append(name, value);
        }
        call
    }

    // {"alg":"HS256","typ":"JWT"} . {"sub":"alice","exp":1700000000} . signature
    const ALICE: &str = "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTcwMDAwMDAwMH0.c2ln";

    #[test]
    fn a_token_subject_is_the_principal_wherever_it_comes_from() {
        let mut identities = Identities::new(HashKey::from_bytes([7; 32]));
        let a = identities.identify(&call(&[("authorization", ALICE)], "10.0.0.1"));
        let b = identities.identify(&call(&[("authorization", ALICE)], "10.0.0.2"));
        assert_eq!(a.user.as_deref(), Some("alice"));
        assert!(a.authenticated);
        assert_eq!(a.principal, b.principal);
        assert_ne!(a.source, b.source);
        assert_eq!(a.jwt.as_ref().and_then(|c| c.exp), Some(1_700_000_000));
    }

    #[test]
    fn without_credentials_the_source_is_the_principal() {
        let mut identities = Identities::new(HashKey::from_bytes([7; 32]));
        let anonymous = identities.identify(&call(&[], "10.0.0.1"));
        assert!(!anonymous.authenticated);
        assert_eq!(anonymous.principal, anonymous.source);
        assert_eq!(anonymous.user, None);
    }

    #[test]
    fn basic_users_are_named_and_credentials_told_apart() {
        let mut identities = Identities::new(HashKey::from_bytes([7; 32]));
        // alice:one and alice:two
        let one = identities.identify(&call(
            &[("authorization", "Basic YWxpY2U6b25l")],
            "10.0.0.1",
        ));
        let two = identities.identify(&call(
            &[("authorization", "Basic YWxpY2U6dHdv")],
            "10.0.0.1",
        ));
        assert_eq!(one.user.as_deref(), Some("alice"));
        assert_eq!(one.principal, two.principal);
        assert_ne!(one.credential, two.credential);
    }

    #[test]
    fn opaque_credentials_key_the_principal_by_their_hash() {
        let mut identities = Identities::new(HashKey::from_bytes([7; 32]));
        let key = identities.identify(&call(&[("x-api-key", "k-123")], "10.0.0.1"));
        let other = identities.identify(&call(&[("x-api-key", "k-456")], "10.0.0.1"));
        let session =
            identities.identify(&call(&[("cookie", "theme=x; sessionid=abc")], "10.0.0.1"));
        assert!(key.authenticated && session.authenticated);
        assert_ne!(key.principal, other.principal);
        assert_ne!(key.principal, key.source);
        assert_eq!(key.user, None);
    }

    #[test]
    fn client_side_calls_are_sourced_by_process() {
        let mut outgoing = call(&[], "10.0.0.1");
        outgoing.role = Some(Role::Client);
        outgoing.executable_name = Some("billing".into());
        assert_eq!(source_of(&outgoing), "process:billing@host");
    }

    #[test]
    fn stable_hashes_separate_parts_and_never_change() {
        assert_ne!(stable_hash(&[b"ab", b"c"]), stable_hash(&[b"a", b"bc"]));
        assert_ne!(stable_hash(&[b"a\0"]), stable_hash(&[b"a"]));
        assert_eq!(stable_hash(&[b"x"]), stable_hash(&[b"x"]));
        // Persisted keys depend on this value: a change here orphans every stored baseline.
        assert_eq!(stable_hash(&[b"user", b"alice"]), 0xfd96_56c2_d345_8d77);
    }
}
