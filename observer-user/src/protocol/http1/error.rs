//! The closed set of things that can go wrong while reading an HTTP/1 stream.
//!
//! Errors are outputs, not failures: a parser reports one, drops what it could not frame, and
//! goes on looking for the next message. The message in progress, if its head was complete, is
//! delivered before the error, marked incomplete.

use std::fmt;

/// Where a hole in the stream fell when it cost the parser its place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncLoss {
    /// Between messages: whole messages, or the start of one, may be gone.
    BetweenMessages,
    /// Inside a head.
    InHead,
    /// In chunked framing: a chunk-size line, the line end after chunk data, the trailer
    /// section, or a hole running past the end of a chunk.
    InChunkFraming,
    /// A hole that began inside a body of known length and ran past its end.
    PastBodyEnd,
}

impl fmt::Display for SyncLoss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SyncLoss::BetweenMessages => "between messages",
            SyncLoss::InHead => "inside a message head",
            SyncLoss::InChunkFraming => "inside chunked framing",
            SyncLoss::PastBodyEnd => "past the end of a body",
        })
    }
}

/// Something wrong in an HTTP/1 stream.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// No end of head within the head limit.
    #[error("message head longer than {limit} bytes")]
    HeadTooLarge { limit: usize },
    /// More header fields than the field limit.
    #[error("more than {limit} header fields")]
    TooManyHeaders { limit: usize },
    /// The head is not HTTP/1 (as `httparse` sees it).
    #[error("invalid message head: {0}")]
    InvalidHead(#[source] httparse::Error),
    /// A `Content-Length` that is not a decimal number, or is larger than 2^64 - 1.
    #[error("invalid Content-Length")]
    InvalidContentLength,
    /// Several `Content-Length` values that differ.
    #[error("conflicting Content-Length values")]
    ConflictingContentLength,
    /// A request whose `Transfer-Encoding` does not end in `chunked`: its length cannot be known
    /// (RFC 9112 §6.3, rule 4).
    #[error("request Transfer-Encoding does not end in chunked")]
    UnframedRequestBody,
    /// A chunk-size line that is not a hexadecimal size below 2^64 (with optional extensions).
    #[error("invalid chunk size line")]
    InvalidChunkSize,
    /// A chunk-size line longer than the line limit.
    #[error("chunk size line longer than {limit} bytes")]
    ChunkLineTooLong { limit: usize },
    /// Chunk data not followed by a line end.
    #[error("chunk data not followed by a line end")]
    MissingChunkLineEnd,
    /// A trailer section longer than the head limit.
    #[error("trailer section longer than {limit} bytes")]
    TrailersTooLarge { limit: usize },
    /// A trailer section that is not header fields. The body itself was framed correctly, so
    /// the parser keeps its place; the message is delivered without trailers.
    #[error("invalid trailer section: {0}")]
    InvalidTrailers(#[source] httparse::Error),
    /// Bytes lost where the parser needed them to find the next message.
    #[error("{len} bytes lost {at}")]
    LostSync { len: u64, at: SyncLoss },
    /// The stream ended inside a head.
    #[error("stream ended inside a message head")]
    EndedInHead,
}

impl ParseError {
    /// Whether the parser lost its place in the stream: it dropped bytes and resumed at the next
    /// plausible message start, so messages may be missing. Every error but an invalid trailer
    /// section does; the pairing stage uses this to know when order can no longer be trusted.
    pub fn loses_sync(&self) -> bool {
        !matches!(self, ParseError::InvalidTrailers(_))
    }
}
