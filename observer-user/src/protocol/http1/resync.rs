//! Spotting where a message may start, for a parser that lost its place in the stream.
//!
//! After a hole or bytes that are not HTTP, a parser drops bytes until it sees what looks like
//! the start of a message: a known method and a space for requests, `HTTP/1.` for responses.
//! This module only spots candidates, cheaply (one `memchr` pass, each byte looked at once);
//! the head reader then checks each candidate's start line with `httparse` and refuses the ones
//! that are not HTTP, so text inside a body that happens to say `GET ` costs a few bytes of
//! checking, not a false message.

use memchr::memchr_iter;

use super::Method;

/// Which kind of message a direction carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MessageKind {
    Request,
    Response,
}

/// What every response starts with: `httparse` accepts no other version.
const RESPONSE_START: &[u8] = b"HTTP/1.";

/// The longest candidate pattern: `OPTIONS ` and `CONNECT `. A parser keeps one byte less than
/// this from the end of a segment, which is all that can begin a candidate finished by the next.
pub(crate) const MAX_START_PATTERN: usize = 8;

/// Where the first candidate that lies wholly inside `haystack` begins.
pub(crate) fn find_start(kind: MessageKind, haystack: &[u8]) -> Option<usize> {
    match kind {
        MessageKind::Request => find_request_start(haystack),
        MessageKind::Response => find_response_start(haystack),
    }
}

/// A named method followed by a space. Found from the space, so that only spaces (and not every
/// letter) cost a comparison.
fn find_request_start(haystack: &[u8]) -> Option<usize> {
    memchr_iter(b' ', haystack).find_map(|space| {
        Method::NAMED.iter().find_map(|(_, name)| {
            let start = space.checked_sub(name.len())?;
            (haystack.get(start..space)? == name.as_bytes()).then_some(start)
        })
    })
}

/// `HTTP/1.`, found from its first letter.
fn find_response_start(haystack: &[u8]) -> Option<usize> {
    memchr_iter(b'H', haystack).find(|&at| {
        haystack
            .get(at..)
            .is_some_and(|rest| rest.starts_with(RESPONSE_START))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_candidates_are_named_methods_followed_by_a_space() {
        assert_eq!(
            find_start(MessageKind::Request, b"xxGET / HTTP/1.1"),
            Some(2)
        );
        assert_eq!(
            find_start(MessageKind::Request, b"OPTIONS * HTTP/1.1"),
            Some(0)
        );
        assert_eq!(
            find_start(MessageKind::Request, b"\0\0CONNECT a:1"),
            Some(2)
        );
        assert_eq!(find_start(MessageKind::Request, b"FETCH / HTTP/1.1"), None);
        assert_eq!(find_start(MessageKind::Request, b"GET"), None);
        assert_eq!(find_start(MessageKind::Request, b"get / HTTP/1.1"), None);
    }

    #[test]
    fn the_first_candidate_wins() {
        assert_eq!(
            find_start(MessageKind::Request, b"a b PUT x GET y"),
            Some(4)
        );
    }

    #[test]
    fn response_candidates_start_with_the_version() {
        assert_eq!(
            find_start(MessageKind::Response, b"..HTTP/1.1 200 OK"),
            Some(2)
        );
        assert_eq!(find_start(MessageKind::Response, b"HTTP/2 200"), None);
        assert_eq!(find_start(MessageKind::Response, b"HHTTP/1."), Some(1));
        assert_eq!(find_start(MessageKind::Response, b"HTTP/1"), None);
    }

    #[test]
    fn no_pattern_is_longer_than_the_bound() {
        let longest = Method::NAMED
            .iter()
            .map(|(_, name)| name.len() + 1)
            .max()
            .unwrap_or(0);
        assert_eq!(longest.max(RESPONSE_START.len()), MAX_START_PATTERN);
    }
}
