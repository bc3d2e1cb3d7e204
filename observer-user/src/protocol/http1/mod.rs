//! HTTP/1.0 and HTTP/1.1 framing and parsing (RFC 9112), one direction of a connection at a time.
//!
//! A connection gets one [`RequestParser`] for the direction that carries requests and one
//! [`ResponseParser`] for the other. Each takes [`Segment`](super::Segment)s and appends
//! [`ParserOutput`]s: a `Started` note as soon as a head is parsed, the [`Message`] once its body
//! has ended, typed [`ParseError`]s, and `Tunnel` once HTTP stops on the connection. Pairing
//! requests with responses is the next stage's job (`crate::pairing`), which also offers a
//! session type that wires two parsers and the pairing together.
//!
//! # How a direction is read
//!
//! - `head` gathers a head: it checks the start line byte by byte as it arrives (`start_line`),
//!   so bytes which cannot be HTTP are refused at the first byte that proves it, and looks for
//!   the empty line that ends the head without ever looking at a byte twice.
//! - The side (request or response) parses the head with `httparse` and decides how the body is
//!   framed (`framing`, RFC 9112 §6.3). Responses need to know what they answer
//!   (`HEAD` has no body, a 2xx to `CONNECT` opens a tunnel), so the caller tells the response
//!   parser about each request head with [`ResponseParser::request_sent`].
//! - `body` and `chunked` read the body, keep a prefix of it up to a cap, and skip holes
//!   inside it.
//! - When sync is lost (a hole where framing was needed, or bytes that are not HTTP), the
//!   parser reports it once and `resync` looks for the next plausible message start; the head
//!   reader then confirms or refuses each candidate.
//!
//! # Bounds
//!
//! A parser holds at most [`ParserLimits::max_head_bytes`] of head or trailer bytes, one
//! chunk-size line, and the captured body prefix of the message in progress. Work is linear in
//! the input however it is split into segments.

mod body;
mod chunked;
mod error;
mod framing;
mod head;
mod message;
mod request;
mod response;
mod resync;
mod start_line;
mod stream;

pub use error::{ParseError, SyncLoss};
pub(crate) use message::HiddenValue;
pub use message::{
    Body, BodyFraming, Headers, Message, Method, ParserOutput, ParserStats, RequestHead,
    RequestOutput, RequestStart, ResponseHead, ResponseOutput, ResponseStart, TunnelCause,
    TunnelStart, Version,
};
pub use request::RequestParser;
pub use response::ResponseParser;

/// Bytes of one head (start line, header fields and the empty line) a parser gathers before
/// giving up on it. Servers refuse far less (nginx 8 KiB a line and 32 KiB in all, Node 16 KiB),
/// so 64 KiB leaves room for cookie-heavy heads while keeping per-connection memory small.
pub const DEFAULT_MAX_HEAD_BYTES: usize = 64 * 1024;

/// Header fields kept from one head. hyper allows 100; real heads rarely carry more than 40.
pub const DEFAULT_MAX_HEADERS: usize = 128;

/// The most header fields [`ParserLimits::max_headers`] may ask for. The parser's field table
/// lives on the stack (32 bytes a field), so this bounds the stack a parse uses to 16 KiB.
pub const MAX_HEADERS_CEILING: usize = 512;

/// Body bytes kept from the start of each message. Detection looks at the start of JSON and
/// form payloads, which are mostly smaller; longer bodies are counted but not kept, so a
/// connection streaming a file costs no more memory than one sending a small request.
pub const DEFAULT_MAX_BODY_CAPTURE: usize = 16 * 1024;

/// Bytes of one chunk-size line, extensions included. A size is at most 16 hex digits and
/// extensions are rare and short in practice; a longer line is an attack or not chunked data.
pub const DEFAULT_MAX_CHUNK_LINE_BYTES: usize = 4 * 1024;

/// Requests whose responses a connection may be waiting for at once (pipelining depth). Clients
/// that pipeline send a handful; past this many unanswered requests the other direction is most
/// likely not being seen at all, and the oldest request is forgotten rather than kept forever.
/// The response parser and the pairing stage both use this bound, so that they forget the same
/// request when it is reached.
pub const MAX_PIPELINED_REQUESTS: usize = 64;

/// The smallest head limit a parser accepts: a start line and a few fields must fit, and resync
/// keeps a few bytes of a possible message start between segments.
const MIN_HEAD_BYTES: usize = 256;

/// The smallest chunk-size line limit a parser accepts: 16 hex digits and CRLF must fit.
const MIN_CHUNK_LINE_BYTES: usize = 32;

/// The limits a parser works within. Values outside what the parser can honour are clamped
/// when a parser is built: the head limit to at least 256 bytes, the field limit to between
/// 1 and [`MAX_HEADERS_CEILING`], the chunk-size line limit to at least 32 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParserLimits {
    /// Bytes of one head, and of one trailer section.
    pub max_head_bytes: usize,
    /// Header fields in one head or trailer section.
    pub max_headers: usize,
    /// Body bytes kept from the start of each message ([`Body::captured`]).
    pub max_body_capture: usize,
    /// Bytes of one chunk-size line.
    pub max_chunk_line_bytes: usize,
}

impl Default for ParserLimits {
    fn default() -> Self {
        ParserLimits {
            max_head_bytes: DEFAULT_MAX_HEAD_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
            max_body_capture: DEFAULT_MAX_BODY_CAPTURE,
            max_chunk_line_bytes: DEFAULT_MAX_CHUNK_LINE_BYTES,
        }
    }
}

impl ParserLimits {
    /// The limits a parser actually uses (see the clamping rules on the type).
    fn clamped(self) -> ParserLimits {
        ParserLimits {
            max_head_bytes: self.max_head_bytes.max(MIN_HEAD_BYTES),
            max_headers: self.max_headers.clamp(1, MAX_HEADERS_CEILING),
            max_body_capture: self.max_body_capture,
            max_chunk_line_bytes: self.max_chunk_line_bytes.max(MIN_CHUNK_LINE_BYTES),
        }
    }
}

/// Which of the requests still waiting for an answer a response answers, given when each of
/// them began (oldest first) and when the response began.
///
/// Responses answer requests in order, so normally the oldest waiting request is the one. Two
/// facts refine that:
///
/// - A response cannot answer a request that began after it: if the oldest waiting request
///   began later than the response, the request it answers was never seen (`None`).
/// - After the response direction lost sync, any number of responses may have been lost with
///   it, so the order no longer says which request comes next. The response then answers the
///   latest request that began before it; the ones before that are taken as answered by lost
///   responses. In the common non-pipelined case this picks exactly the right request.
///
/// The response parser (to frame the body) and the pairing stage (to build exchanges) both
/// follow this rule over the same requests, so they always agree.
pub fn answered_request(
    waiting_since: impl DoubleEndedIterator<Item = u64> + Clone,
    response_ts_ns: u64,
    after_lost_sync: bool,
) -> Option<usize> {
    if after_lost_sync {
        let count = waiting_since.clone().count();
        let from_newest = waiting_since
            .rev()
            .position(|since| since <= response_ts_ns)?;
        Some(count - 1 - from_newest)
    } else {
        let mut waiting_since = waiting_since;
        match waiting_since.next() {
            Some(oldest) if oldest <= response_ts_ns => Some(0),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_request_is_answered_first() {
        assert_eq!(
            answered_request([10, 20, 30].into_iter(), 40, false),
            Some(0)
        );
    }

    #[test]
    fn a_response_older_than_every_waiting_request_answers_a_missed_one() {
        assert_eq!(answered_request([10, 20].into_iter(), 5, false), None);
        assert_eq!(answered_request([].into_iter(), 5, false), None);
    }

    #[test]
    fn after_lost_sync_the_latest_request_begun_before_the_response_is_answered() {
        assert_eq!(
            answered_request([10, 20, 30].into_iter(), 25, true),
            Some(1)
        );
        assert_eq!(
            answered_request([10, 20, 30].into_iter(), 30, true),
            Some(2)
        );
        assert_eq!(answered_request([10, 20, 30].into_iter(), 5, true), None);
    }

    #[test]
    fn limits_are_clamped_to_what_the_parser_can_honour() {
        let limits = ParserLimits {
            max_head_bytes: 0,
            max_headers: 100_000,
            max_body_capture: 0,
            max_chunk_line_bytes: 0,
        }
        .clamped();
        assert_eq!(limits.max_head_bytes, MIN_HEAD_BYTES);
        assert_eq!(limits.max_headers, MAX_HEADERS_CEILING);
        assert_eq!(limits.max_body_capture, 0);
        assert_eq!(limits.max_chunk_line_bytes, MIN_CHUNK_LINE_BYTES);
    }
}
