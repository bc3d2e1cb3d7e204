//! What the HTTP/1 parsers produce: message heads, bodies, and the outputs that carry them.
//!
//! These types are the protocol stage's output contract; the pairing stage and everything after
//! it read them. Values on the wire may be any bytes, so header values and reason phrases stay
//! bytes; only what `httparse` has checked to be a token or a URI is a string.

use std::fmt;
use std::ops::Range;

use super::ParseError;

/// A request method. The methods of RFC 9110 and PATCH are named; any other token is kept as is.
/// Methods are case-sensitive: `get` is an extension method, not `GET`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Connect,
    Options,
    Trace,
    Patch,
    /// Any other method token.
    Other(Box<str>),
}

impl Method {
    /// Every named method with its token, in the order resync tries them.
    pub(crate) const NAMED: [(Method, &'static str); 9] = [
        (Method::Get, "GET"),
        (Method::Post, "POST"),
        (Method::Put, "PUT"),
        (Method::Delete, "DELETE"),
        (Method::Head, "HEAD"),
        (Method::Options, "OPTIONS"),
        (Method::Patch, "PATCH"),
        (Method::Connect, "CONNECT"),
        (Method::Trace, "TRACE"),
    ];

    /// The method a token names.
    pub fn from_token(token: &str) -> Method {
        Method::NAMED
            .iter()
            .find(|(_, name)| *name == token)
            .map_or_else(|| Method::Other(token.into()), |(method, _)| method.clone())
    }

    /// The method's token, as sent.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Other(token) => token,
            named => Method::NAMED
                .iter()
                .find(|(method, _)| method == named)
                .map_or("", |(_, name)| name),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The protocol version of a message. `httparse` accepts only these two.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    /// The version from `httparse`'s minor version number.
    pub(crate) fn from_minor(minor: u8) -> Version {
        if minor == 0 {
            Version::Http10
        } else {
            Version::Http11
        }
    }

    /// The version as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// Header fields in the order they were received, names as sent (not lowercased), values as raw
/// bytes (they may hold anything but CR, LF and NUL, including bytes that are not UTF-8).
///
/// All names share one string and all values one buffer, so a head costs three allocations
/// whatever its number of fields.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers {
    names: String,
    values: Vec<u8>,
    fields: Vec<FieldSpan>,
}

/// Where one field's name and value lie in [`Headers`]' shared buffers.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FieldSpan {
    name: Range<usize>,
    value: Range<usize>,
}

impl Headers {
    /// Headers holding `fields`, in order.
    pub fn from_fields<'a, I>(fields: I) -> Headers
    where
        I: IntoIterator<Item = (&'a str, &'a [u8])>,
        I::IntoIter: Clone,
    {
        // Sized first, so that each buffer is allocated once rather than grown field by field.
        let fields = fields.into_iter();
        let (count, names, values) =
            fields
                .clone()
                .fold((0, 0, 0), |(count, names, values), (name, value)| {
                    (count + 1, names + name.len(), values + value.len())
                });
        let mut headers = Headers {
            names: String::with_capacity(names),
            values: Vec::with_capacity(values),
            fields: Vec::with_capacity(count),
        };
        for (name, value) in fields {
            headers.push(name, value);
        }
        headers
    }

    /// Appends a field.
    pub fn push(&mut self, name: &str, value: &[u8]) {
        let name_start = self.names.len();
        self.names.push_str(name);
        let value_start = self.values.len();
        self.values.extend_from_slice(value);
        self.fields.push(FieldSpan {
            name: name_start..self.names.len(),
            value: value_start..self.values.len(),
        });
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Every field, in order, as (name, value).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        // The spans were made by `push` from whole strings, so they always lie on char
        // boundaries and within the buffers; `get` only guards against that changing.
        self.fields.iter().map(|span| {
            (
                self.names.get(span.name.clone()).unwrap_or_default(),
                self.value(span),
            )
        })
    }

    /// The buffers all names and all values lie in, for copying them at once; [`Headers::spans`]
    /// says where each field lies.
    pub(crate) fn buffers(&self) -> (&str, &[u8]) {
        (&self.names, &self.values)
    }

    /// Where each field's name and value lie in [`Headers::buffers`], in order.
    pub(crate) fn spans(&self) -> impl Iterator<Item = (Range<usize>, Range<usize>)> + '_ {
        self.fields
            .iter()
            .map(|span| (span.name.clone(), span.value.clone()))
    }

    /// The values of every field called `name` (compared ignoring ASCII case), in order.
    pub fn get_all<'h>(&'h self, name: &'h str) -> impl Iterator<Item = &'h [u8]> + 'h {
        self.fields
            .iter()
            .filter(move |span| self.is_named(span, name))
            .map(|span| self.value(span))
    }

    /// The value of the first field called `name` (compared ignoring ASCII case).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|span| self.is_named(span, name))
            .map(|span| self.value(span))
    }

    /// Whether the field at `span` is called `name`, ignoring ASCII case. Lengths first: they
    /// tell most fields apart without slicing a name. Names are compared as bytes, which ASCII
    /// case folding leaves as they are outside ASCII, as it does strings.
    fn is_named(&self, span: &FieldSpan, name: &str) -> bool {
        span.name.len() == name.len()
            && self
                .names
                .as_bytes()
                .get(span.name.clone())
                .is_some_and(|field| field.eq_ignore_ascii_case(name.as_bytes()))
    }

    fn value(&self, span: &FieldSpan) -> &[u8] {
        self.values.get(span.value.clone()).unwrap_or_default()
    }

    /// Whether a field called `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// Names and value lengths only: values may hold credentials and personal data, and `Debug`
/// output ends up in logs and test failures.
impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.iter()
                    .map(|(name, value)| HiddenValue(name, value.len())),
            )
            .finish()
    }
}

/// A named value shown by its length alone.
pub(crate) struct HiddenValue<'a>(pub(crate) &'a str, pub(crate) usize);

impl fmt::Debug for HiddenValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: <{} bytes>", self.0, self.1)
    }
}

/// A request head: the request line and the header fields.
#[derive(Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: Method,
    /// The request target as sent (origin, absolute, authority or asterisk form).
    pub target: String,
    pub version: Version,
    pub headers: Headers,
}

/// The target (whose path and query may carry ids, emails, tokens) is shown by its length.
impl fmt::Debug for RequestHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestHead")
            .field("method", &self.method)
            .field("target_bytes", &self.target.len())
            .field("version", &self.version)
            .field("headers", &self.headers)
            .finish()
    }
}

/// A response head: the status line and the header fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    pub version: Version,
    /// The status code: three digits, so 0 to 999 (anything below 100 is not a real status).
    pub status: u16,
    /// The reason phrase as sent, possibly empty, possibly not UTF-8.
    pub reason: Vec<u8>,
    pub headers: Headers,
}

impl ResponseHead {
    /// Whether this is an interim (1xx) response that another response will follow. 101 is
    /// final: the connection stops speaking HTTP after it.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }
}

/// How a message's body was delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body: a request without length, or a response that cannot have one.
    NoBody,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// A response without length: the body runs until the connection closes.
    UntilClose,
}

/// What the parser kept of a message body.
#[derive(Clone, PartialEq, Eq)]
pub struct Body {
    pub framing: BodyFraming,
    /// The first body bytes, at most the capture limit, as a contiguous prefix: capture stops
    /// at the first hole. Chunked bodies are kept without their chunk framing. Content codings
    /// (gzip, ...) are not undone: see the `Content-Encoding` header.
    pub captured: Vec<u8>,
    /// Body bytes the message carried, including those lost in holes (for chunked bodies, the
    /// chunk data without framing).
    pub size: u64,
    /// Body bytes lost in holes of the stream.
    pub lost: u64,
    /// The trailer section of a chunked body, when it had fields.
    pub trailers: Option<Headers>,
}

/// Sizes only: the captured bytes may hold anything the application sent.
impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Body")
            .field("framing", &self.framing)
            .field("captured_bytes", &self.captured.len())
            .field("size", &self.size)
            .field("lost", &self.lost)
            .field("trailers", &self.trailers)
            .finish()
    }
}

impl Body {
    pub(crate) fn new(framing: BodyFraming) -> Body {
        Body {
            framing,
            captured: Vec::new(),
            size: 0,
            lost: 0,
            trailers: None,
        }
    }

    /// Whether the captured prefix is shorter than the body: the capture limit was reached or
    /// part of the body was lost.
    pub fn is_truncated(&self) -> bool {
        self.lost > 0 || len_u64(self.captured.len()) < self.size
    }

    /// Takes body bytes: counts them and keeps them while the prefix is whole and under `cap`.
    pub(crate) fn take(&mut self, bytes: &[u8], cap: usize) {
        self.size = self.size.saturating_add(len_u64(bytes.len()));
        if !self.capture_done(cap) {
            let keep = (cap - self.captured.len()).min(bytes.len());
            self.reserve_capture(keep, cap);
            self.captured.extend_from_slice(&bytes[..keep]);
        }
    }

    /// Room for `more` captured bytes. The capture doubles as it grows, but never past what it
    /// can hold (the cap, or a shorter body's length): doubling past it (a 16 KiB cap reached
    /// in two pieces grew a 32 KiB buffer) took fresh pages the kernel zeroed, for every large
    /// body, for bytes never kept. Nothing is reserved ahead of the bytes: a message that
    /// announces a large body and sends a byte holds a byte.
    fn reserve_capture(&mut self, more: usize, cap: usize) {
        let len = self.captured.len();
        if self.captured.capacity() - len >= more {
            return;
        }
        let bound = match self.framing {
            BodyFraming::Length(length) => usize::try_from(length).map_or(cap, |n| n.min(cap)),
            _ => cap,
        };
        let want = len.saturating_mul(2).min(bound).max(len + more);
        self.captured.reserve_exact(want - len);
    }

    /// Whether body bytes from here on are only counted: the capture is full or was cut by a hole.
    pub(crate) fn capture_done(&self, cap: usize) -> bool {
        self.lost > 0 || self.captured.len() >= cap
    }

    /// Body bytes from here on that would be captured if they came.
    pub(crate) fn capture_room(&self, cap: usize) -> u64 {
        if self.capture_done(cap) {
            0
        } else {
            len_u64(cap - self.captured.len())
        }
    }

    /// Counts body bytes that are not here but would only have been counted (see
    /// [`capture_done`](Self::capture_done)): unlike lost bytes, they leave the body whole.
    pub(crate) fn pass_unread(&mut self, len: u64) {
        self.size = self.size.saturating_add(len);
    }

    /// Counts body bytes lost in a hole; nothing after them is captured.
    pub(crate) fn lose(&mut self, len: u64) {
        self.size = self.size.saturating_add(len);
        self.lost = self.lost.saturating_add(len);
    }
}

/// A byte count as `u64` (lossless on every target Rust supports).
pub(crate) fn len_u64(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

/// One message: a head, what was seen of its body, and where and when it was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message<H> {
    pub head: H,
    pub body: Body,
    /// Position in its direction's stream (bytes since the stream began, holes included) of
    /// the message's first byte.
    pub stream_offset: u64,
    /// Kernel time of the call that carried the first byte of the head.
    pub first_byte_ts_ns: u64,
    /// Kernel time of the call that carried the last byte seen of the message (a hole's time
    /// when the message ended inside one).
    pub last_byte_ts_ns: u64,
    /// Whether the framing reached the message's end: false when the connection closed early
    /// or sync was lost inside the message.
    pub complete: bool,
}

/// A request head was parsed: what the response parser and the pairing stage need to know
/// before the request's body has been read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestStart {
    pub method: Method,
    /// Stream position of the request's first byte.
    pub stream_offset: u64,
    /// Kernel time of the call that carried the request's first byte.
    pub ts_ns: u64,
}

/// A response head was parsed (its body, if any, follows).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseStart {
    pub status: u16,
    /// Stream position of the response's first byte.
    pub stream_offset: u64,
    /// Kernel time of the call that carried the response's first byte.
    pub ts_ns: u64,
}

/// Why a connection stopped speaking HTTP/1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunnelCause {
    /// A 101 (Switching Protocols) response: WebSocket, h2c, ...
    Upgrade,
    /// A 2xx response to CONNECT: the connection now carries the tunnelled bytes.
    Connect,
}

/// HTTP stopped on this direction of the connection; every later byte is counted, not parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TunnelStart {
    pub cause: TunnelCause,
    /// Stream position of the first byte that is not HTTP.
    pub stream_offset: u64,
}

/// What a parser appends to its output for each thing it finds, in stream order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParserOutput<H, S> {
    /// A head was parsed; its [`Message`] follows once the body has ended. Every `Started` is
    /// followed by exactly one `Message`, complete or not.
    Started(S),
    /// A message ended, or was cut short (see [`Message::complete`]).
    Message(Message<H>),
    /// Something was wrong in the stream. Unless [`ParseError::loses_sync`] says otherwise, the
    /// parser has dropped what it could not frame and is looking for the next message.
    Error(ParseError),
    /// HTTP stopped on this direction; reported once.
    Tunnel(TunnelStart),
}

impl<H, S> ParserOutput<H, S> {
    /// The message, if this output is one.
    pub fn as_message(&self) -> Option<&Message<H>> {
        match self {
            ParserOutput::Message(message) => Some(message),
            _ => None,
        }
    }

    /// The error, if this output is one.
    pub fn as_error(&self) -> Option<&ParseError> {
        match self {
            ParserOutput::Error(error) => Some(error),
            _ => None,
        }
    }

    /// The start of a tunnel, if this output is one.
    pub fn as_tunnel(&self) -> Option<&TunnelStart> {
        match self {
            ParserOutput::Tunnel(tunnel) => Some(tunnel),
            _ => None,
        }
    }
}

/// What a [`RequestParser`](super::RequestParser) produces.
pub type RequestOutput = ParserOutput<RequestHead, RequestStart>;

/// What a [`ResponseParser`](super::ResponseParser) produces.
pub type ResponseOutput = ParserOutput<ResponseHead, ResponseStart>;

/// Running counts of one parser's work, for the agent's loss counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParserStats {
    /// Messages delivered, complete or not.
    pub messages: u64,
    /// Errors reported.
    pub errors: u64,
    /// Bytes dropped while looking for a message start, and heads dropped as invalid.
    pub bytes_discarded: u64,
    /// Bytes reported missing by the stream (holes), wherever they fell.
    pub bytes_lost: u64,
    /// Body bytes passed over unread, as the stream said they could be (see `Segment::Unread`).
    pub bytes_unread: u64,
    /// Bytes counted after HTTP stopped (tunnel or upgraded protocol).
    pub tunnel_bytes: u64,
    /// Requests the response parser stopped waiting for because too many were pending.
    pub requests_forgotten: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_found_by_name_ignoring_ascii_case_in_order() {
        let headers = Headers::from_fields([
            ("Content-Length", &b"5"[..]),
            ("content-lengtH", b"6"),
            ("Content-Lengths", b"7"),
            ("Content_Length", b"8"),
            ("X-Caf\u{e9}", b"9"),
            ("Date", b""),
        ]);
        let all: Vec<&[u8]> = headers.get_all("CONTENT-LENGTH").collect();
        assert_eq!(all, [&b"5"[..], b"6"]);
        assert_eq!(headers.get("content-length"), Some(&b"5"[..]));
        assert_eq!(headers.get("x-caf\u{e9}"), Some(&b"9"[..]));
        assert_eq!(headers.get("x-caf\u{c9}"), None);
        assert_eq!(headers.get("date"), Some(&b""[..]));
        assert!(headers.contains("DATE"));
        assert!(!headers.contains("content-len"));
        assert_eq!(Headers::default().get("date"), None);
    }
}
