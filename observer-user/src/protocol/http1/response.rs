//! The parser for the direction of a connection that carries responses, and what it remembers
//! of the requests they answer.

use std::collections::VecDeque;

use super::framing::{response_framing, RequestKind};
use super::head::{field_table, parser_config};
use super::request::{complete_head, head_error};
use super::resync::MessageKind;
use super::stream::{AfterMessage, HeadStart, MessageStream, Plan, Side};
use super::{
    answered_request, Headers, Method, ParseError, ParserLimits, ParserStats, RequestStart,
    ResponseHead, ResponseOutput, ResponseStart, TunnelCause, Version, MAX_PIPELINED_REQUESTS,
};
use crate::protocol::Segment;

/// Reads the responses one direction of a connection carries.
///
/// A response's framing depends on its request: the answer to `HEAD` has no body whatever its
/// headers say, and a 2xx answer to `CONNECT` opens a tunnel. So the caller reports every
/// request head with [`request_sent`](Self::request_sent), before pushing the response bytes
/// that answer it. Final responses answer requests in order (see
/// [`answered_request`](super::answered_request) for how order is recovered after a loss);
/// interim (1xx) responses answer none. A response whose request was not seen is framed by its
/// own headers.
pub struct ResponseParser {
    stream: MessageStream<ResponseSide>,
}

impl ResponseParser {
    /// A parser for a new stream, working within `limits`, waiting for no request yet.
    pub fn new(limits: ParserLimits) -> ResponseParser {
        ResponseParser {
            stream: MessageStream::new(ResponseSide::new(), limits),
        }
    }

    /// A request head was seen in the other direction; a response will answer it. Past
    /// [`MAX_PIPELINED_REQUESTS`] waiting requests, the oldest is forgotten.
    pub fn request_sent(&mut self, request: &RequestStart) {
        let side = self.stream.side_mut();
        if side.waiting.len() >= MAX_PIPELINED_REQUESTS {
            side.waiting.pop_front();
            side.forgotten += 1;
        }
        side.waiting.push_back(WaitingRequest {
            kind: RequestKind::of(&request.method),
            since_ns: request.ts_ns,
        });
    }

    /// Reads one segment of the stream, appending what it finds to `out`.
    pub fn push(&mut self, segment: Segment<'_>, out: &mut Vec<ResponseOutput>) {
        self.stream.push(segment, out);
    }

    /// Where the bytes ahead will be passed over unread, relative to the next byte: see
    /// [`Segment::Unread`].
    pub fn unread_ahead(&self) -> Option<std::ops::Range<u64>> {
        self.stream.unread_ahead()
    }

    /// Counts of what the parser has seen so far.
    pub fn stats(&self) -> ParserStats {
        ParserStats {
            requests_forgotten: self.stream.side().forgotten,
            ..self.stream.stats()
        }
    }
}

impl Default for ResponseParser {
    fn default() -> Self {
        ResponseParser::new(ParserLimits::default())
    }
}

impl RequestKind {
    fn of(method: &Method) -> RequestKind {
        match method {
            Method::Head => RequestKind::Head,
            Method::Connect => RequestKind::Connect,
            _ => RequestKind::Other,
        }
    }
}

/// A request a response has yet to answer.
#[derive(Clone, Copy, Debug)]
struct WaitingRequest {
    kind: RequestKind,
    /// Kernel time of the request's first byte.
    since_ns: u64,
}

struct ResponseSide {
    config: httparse::ParserConfig,
    /// Requests waiting for their final response, oldest first.
    waiting: VecDeque<WaitingRequest>,
    /// Sync was lost since the last response: the next one is placed by time, not order.
    after_lost_sync: bool,
    /// Requests dropped from `waiting` because it was full.
    forgotten: u64,
}

impl ResponseSide {
    fn new() -> ResponseSide {
        ResponseSide {
            config: parser_config(),
            waiting: VecDeque::new(),
            after_lost_sync: false,
            forgotten: 0,
        }
    }

    /// The request a response that began at `ts` answers, if it was seen. Requests older than
    /// that one were answered by responses lost with sync. An interim response leaves its
    /// request waiting for the final one.
    fn answered(&mut self, ts: u64, interim: bool) -> Option<RequestKind> {
        let since = self.waiting.iter().map(|request| request.since_ns);
        let index = answered_request(since, ts, std::mem::take(&mut self.after_lost_sync))?;
        self.waiting.drain(..index);
        if interim {
            self.waiting.front().map(|request| request.kind)
        } else {
            self.waiting.pop_front().map(|request| request.kind)
        }
    }
}

impl Side for ResponseSide {
    type Head = ResponseHead;
    type Start = ResponseStart;

    const KIND: MessageKind = MessageKind::Response;

    fn parse_head(&self, head: &[u8], limits: &ParserLimits) -> Result<ResponseHead, ParseError> {
        let mut table = field_table();
        let mut response = httparse::Response::new(&mut []);
        let parsed = self
            .config
            .parse_response_with_uninit_headers(
                &mut response,
                head,
                &mut table[..limits.max_headers],
            )
            .map_err(|error| head_error(error, limits))?;
        complete_head(parsed, head.len())?;
        Ok(ResponseHead {
            version: Version::from_minor(response.version.unwrap_or(1)),
            status: response.code.unwrap_or_default(),
            reason: reason_phrase(head).to_vec(),
            headers: Headers::from_fields(
                response
                    .headers
                    .iter()
                    .map(|field| (field.name, field.value)),
            ),
        })
    }

    fn plan(&mut self, head: &ResponseHead, start: HeadStart) -> Plan<ResponseStart> {
        let request = self.answered(start.ts_ns, head.is_interim());
        let response_start = ResponseStart {
            status: head.status,
            stream_offset: start.stream_offset,
            ts_ns: start.ts_ns,
        };
        match response_framing(head.status, request, &head.headers) {
            Ok(framing) => Plan {
                start: response_start,
                framing: Ok(framing.body),
                then: if !framing.opens_tunnel {
                    AfterMessage::NextMessage
                } else if head.status == 101 {
                    AfterMessage::Tunnel(TunnelCause::Upgrade)
                } else {
                    AfterMessage::Tunnel(TunnelCause::Connect)
                },
            },
            Err(error) => Plan {
                start: response_start,
                framing: Err(error),
                then: AfterMessage::NextMessage,
            },
        }
    }

    fn lost_sync(&mut self) {
        self.after_lost_sync = true;
    }
}

/// The reason phrase of a status line `httparse` accepted, as raw bytes (`httparse` hands back
/// an empty phrase when it is not ASCII): after the version, the spaces, the three digits and
/// the spaces that follow them, up to the line end.
fn reason_phrase(head: &[u8]) -> &[u8] {
    let line = match memchr::memchr(b'\n', head) {
        Some(end) => &head[..end],
        None => head,
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let after_version = line.get(b"HTTP/1.x".len()..).unwrap_or_default();
    let after_code = skip_spaces(after_version).get(3..).unwrap_or_default();
    skip_spaces(after_code)
}

fn skip_spaces(bytes: &[u8]) -> &[u8] {
    let spaces = bytes.iter().take_while(|&&byte| byte == b' ').count();
    &bytes[spaces..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_phrase_is_kept_as_sent() {
        assert_eq!(reason_phrase(b"HTTP/1.1 200 OK\r\n\r\n"), b"OK");
        assert_eq!(
            reason_phrase(b"HTTP/1.1  404   Not  Found\n\n"),
            b"Not  Found"
        );
        assert_eq!(reason_phrase(b"HTTP/1.1 200\r\n\r\n"), b"");
        assert_eq!(
            reason_phrase(b"HTTP/1.0 200 \xe9t\xe9\r\n\r\n"),
            b"\xe9t\xe9"
        );
    }
}

#[cfg(test)]
mod parser_tests {
    use super::*;
    use crate::protocol::http1::{BodyFraming, Message, ParserOutput, TunnelStart};

    fn data(bytes: &[u8], ts_ns: u64) -> Segment<'_> {
        Segment::Data { bytes, ts_ns }
    }

    /// A fresh parser told of `requests` (method, time), fed `segments`, and what it produced.
    fn parse(
        requests: &[(Method, u64)],
        segments: &[Segment<'_>],
    ) -> (ResponseParser, Vec<ResponseOutput>) {
        let mut parser = ResponseParser::default();
        for (method, ts_ns) in requests {
            parser.request_sent(&RequestStart {
                method: method.clone(),
                stream_offset: 0,
                ts_ns: *ts_ns,
            });
        }
        let mut out = Vec::new();
        for segment in segments {
            parser.push(*segment, &mut out);
        }
        (parser, out)
    }

    fn messages(outputs: &[ResponseOutput]) -> Vec<&Message<ResponseHead>> {
        outputs
            .iter()
            .filter_map(ParserOutput::as_message)
            .collect()
    }

    #[test]
    fn the_answer_to_head_has_no_body_whatever_its_length_says() {
        let (_, out) = parse(
            &[(Method::Head, 1), (Method::Get, 1)],
            &[data(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n\
                  HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                2,
            )],
        );
        let messages = messages(&out);
        assert_eq!(messages[0].body.framing, BodyFraming::NoBody);
        assert_eq!(messages[1].body.captured, b"hello");
    }

    #[test]
    fn interim_responses_leave_their_request_waiting() {
        let (_, out) = parse(
            &[(Method::Head, 1)],
            &[data(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: <a>\r\n\r\n\
                  HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n",
                2,
            )],
        );
        let messages = messages(&out);
        assert_eq!(messages.len(), 3);
        assert!(messages[0].head.is_interim() && messages[1].head.is_interim());
        // Still framed as the answer to HEAD: the interim answers did not use it up.
        assert_eq!(messages[2].body.framing, BodyFraming::NoBody);
        assert!(messages[2].complete);
    }

    #[test]
    fn a_response_older_than_the_waiting_request_is_framed_by_its_headers() {
        let (_, out) = parse(
            &[(Method::Head, 50)],
            &[
                data(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 10),
                data(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", 60),
            ],
        );
        let messages = messages(&out);
        assert_eq!(messages[0].body.captured, b"ok");
        assert_eq!(messages[1].body.framing, BodyFraming::NoBody);
    }

    #[test]
    fn after_lost_sync_the_next_response_answers_the_latest_request_begun_before_it() {
        let (_, out) = parse(
            &[(Method::Get, 10), (Method::Head, 20), (Method::Get, 40)],
            &[
                data(b"HTTP/1.1 200 OK\r\nContent-Len", 11),
                Segment::Gap {
                    len: 100,
                    ts_ns: 12,
                },
                // Answers the HEAD request (began at 20), not the first GET: no body is read.
                data(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", 30),
                data(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", 45),
            ],
        );
        let messages = messages(&out);
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].body.framing, BodyFraming::NoBody);
        assert_eq!(messages[1].body.captured, b"abc");
    }

    #[test]
    fn too_many_waiting_requests_forget_the_oldest() {
        let requests = vec![(Method::Get, 1); MAX_PIPELINED_REQUESTS + 3];
        let (parser, _) = parse(&requests, &[]);
        assert_eq!(parser.stats().requests_forgotten, 3);
    }

    #[test]
    fn a_switch_of_protocols_is_reported_once_and_what_follows_is_counted() {
        let (parser, out) = parse(
            &[(Method::Get, 1)],
            &[
                data(
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
                    2,
                ),
                data(b"\x81\x02hiHTTP/1.1 200 OK\r\n\r\n", 3),
                Segment::Gap { len: 10, ts_ns: 4 },
                Segment::End { ts_ns: 5 },
            ],
        );
        let tunnels: Vec<&TunnelStart> = out.iter().filter_map(ParserOutput::as_tunnel).collect();
        let cause = TunnelCause::Upgrade;
        assert_eq!(
            tunnels,
            [&TunnelStart {
                cause,
                stream_offset: 56
            }]
        );
        assert_eq!(messages(&out).len(), 1);
        assert_eq!(parser.stats().tunnel_bytes, 23 + 10);
    }

    #[test]
    fn a_2xx_answer_to_connect_opens_a_tunnel_but_a_refusal_does_not() {
        let (_, out) = parse(
            &[(Method::Connect, 1), (Method::Connect, 1)],
            &[data(
                b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n\
                  HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n\x16\x03",
                2,
            )],
        );
        let messages = messages(&out);
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[1].body.framing, BodyFraming::NoBody);
        let tunnel = out.last().and_then(ParserOutput::as_tunnel);
        assert_eq!(
            tunnel.map(|tunnel| tunnel.cause),
            Some(TunnelCause::Connect)
        );
    }
}
