//! The parser for the direction of a connection that carries requests.

use super::framing::request_framing;
use super::head::{field_table, parser_config};
use super::resync::MessageKind;
use super::stream::{AfterMessage, HeadStart, MessageStream, Plan, Side};
use super::{
    Headers, Method, ParseError, ParserLimits, ParserStats, RequestHead, RequestOutput,
    RequestStart, TunnelCause, Version,
};
use crate::protocol::Segment;

/// Reads the requests one direction of a connection carries.
///
/// Feed it the direction's [`Segment`]s in order; it appends what it finds to an output vector:
/// [`Started`](super::ParserOutput::Started) as soon as a request head is parsed (pass it to
/// [`ResponseParser::request_sent`](super::ResponseParser::request_sent)), the
/// [`Message`](super::Message) once the body has ended, errors, and the start of a tunnel.
pub struct RequestParser {
    stream: MessageStream<RequestSide>,
}

impl RequestParser {
    /// A parser for a new stream, working within `limits`.
    pub fn new(limits: ParserLimits) -> RequestParser {
        RequestParser {
            stream: MessageStream::new(RequestSide::new(), limits),
        }
    }

    /// Reads one segment of the stream, appending what it finds to `out`.
    pub fn push(&mut self, segment: Segment<'_>, out: &mut Vec<RequestOutput>) {
        self.stream.push(segment, out);
    }

    /// Where the bytes ahead will be passed over unread, relative to the next byte: see
    /// [`Segment::Unread`].
    pub fn unread_ahead(&self) -> Option<std::ops::Range<u64>> {
        self.stream.unread_ahead()
    }

    /// The response direction switched protocols (a 101, or a 2xx answer to CONNECT): HTTP
    /// stops in this direction too, after the request being read if one is (at once otherwise).
    /// Reported once, as a `Tunnel` output.
    ///
    /// Call it as soon as the response parser reports the tunnel, before pushing more request
    /// bytes: a client sends tunnelled bytes only after it has read the answer.
    pub fn start_tunnel(&mut self, cause: TunnelCause, out: &mut Vec<RequestOutput>) {
        self.stream.start_tunnel(cause, out);
    }

    /// Counts of what the parser has seen so far.
    pub fn stats(&self) -> ParserStats {
        self.stream.stats()
    }
}

impl Default for RequestParser {
    fn default() -> Self {
        RequestParser::new(ParserLimits::default())
    }
}

struct RequestSide {
    config: httparse::ParserConfig,
}

impl RequestSide {
    fn new() -> RequestSide {
        RequestSide {
            config: parser_config(),
        }
    }
}

impl Side for RequestSide {
    type Head = RequestHead;
    type Start = RequestStart;

    const KIND: MessageKind = MessageKind::Request;

    fn parse_head(&self, head: &[u8], limits: &ParserLimits) -> Result<RequestHead, ParseError> {
        let mut table = field_table();
        let mut request = httparse::Request::new(&mut []);
        let parsed = self
            .config
            .parse_request_with_uninit_headers(&mut request, head, &mut table[..limits.max_headers])
            .map_err(|error| head_error(error, limits))?;
        complete_head(parsed, head.len())?;
        Ok(RequestHead {
            method: Method::from_token(request.method.unwrap_or_default()),
            target: request.path.unwrap_or_default().to_owned(),
            version: Version::from_minor(request.version.unwrap_or(1)),
            headers: Headers::from_fields(
                request
                    .headers
                    .iter()
                    .map(|field| (field.name, field.value)),
            ),
        })
    }

    fn plan(&mut self, head: &RequestHead, start: HeadStart) -> Plan<RequestStart> {
        Plan {
            start: RequestStart {
                method: head.method.clone(),
                stream_offset: start.stream_offset,
                ts_ns: start.ts_ns,
            },
            framing: request_framing(&head.headers),
            then: AfterMessage::NextMessage,
        }
    }
}

/// The error for a head `httparse` refused.
pub(crate) fn head_error(error: httparse::Error, limits: &ParserLimits) -> ParseError {
    match error {
        httparse::Error::TooManyHeaders => ParseError::TooManyHeaders {
            limit: limits.max_headers,
        },
        other => ParseError::InvalidHead(other),
    }
}

/// Checks that `httparse` read the whole head the head reader found. The reader ends a head at
/// the first empty line, as `httparse` does, so they agree; if line ends were ever read
/// differently, the head is refused rather than split.
pub(crate) fn complete_head(parsed: httparse::Status<usize>, len: usize) -> Result<(), ParseError> {
    match parsed {
        httparse::Status::Complete(parsed_len) if parsed_len == len => Ok(()),
        _ => Err(ParseError::InvalidHead(httparse::Error::NewLine)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::http1::{BodyFraming, Message, ParserOutput, SyncLoss};

    fn data(bytes: &[u8], ts_ns: u64) -> Segment<'_> {
        Segment::Data { bytes, ts_ns }
    }

    /// A fresh parser fed `segments`, and what it produced.
    fn parse(segments: &[Segment<'_>]) -> (RequestParser, Vec<RequestOutput>) {
        let mut parser = RequestParser::default();
        let mut out = Vec::new();
        for segment in segments {
            parser.push(*segment, &mut out);
        }
        (parser, out)
    }

    fn messages(outputs: &[RequestOutput]) -> Vec<&Message<RequestHead>> {
        outputs
            .iter()
            .filter_map(ParserOutput::as_message)
            .collect()
    }

    #[test]
    fn pipelined_requests_in_one_segment_are_read_in_order() {
        let (_, out) = parse(&[data(
            b"GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi\
              OPTIONS * HTTP/1.1\r\n\r\n",
            5,
        )]);
        let kinds: Vec<&str> = out
            .iter()
            .map(|output| match output {
                ParserOutput::Started(_) => "started",
                ParserOutput::Message(_) => "message",
                ParserOutput::Error(_) => "error",
                ParserOutput::Tunnel(_) => "tunnel",
            })
            .collect();
        let expected = [
            "started", "message", "started", "message", "started", "message",
        ];
        assert_eq!(kinds, expected);
        let messages = messages(&out);
        assert_eq!(messages[0].head.target, "/a");
        assert_eq!(messages[1].head.method, Method::Post);
        assert_eq!(messages[1].head.version, Version::Http10);
        assert_eq!(messages[1].body.captured, b"hi");
        assert_eq!(messages[2].head.method, Method::Options);
        assert_eq!(messages[2].stream_offset, 60);
    }

    #[test]
    fn extension_methods_and_raw_header_values_are_kept() {
        let head = b"PROPFIND /d HTTP/1.1\r\nX-Name: caf\xc3\xa9 \xff\r\n\r\n";
        let (_, out) = parse(&[data(head, 1)]);
        let message = messages(&out)[0];
        assert_eq!(message.head.method, Method::Other("PROPFIND".into()));
        let value: &[u8] = b"caf\xc3\xa9 \xff";
        assert_eq!(message.head.headers.get("x-name"), Some(value));
    }

    #[test]
    fn a_chunked_request_body_is_read_with_its_trailers() {
        let (_, out) = parse(&[data(
            b"POST /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n",
            1,
        )]);
        let message = messages(&out)[0];
        assert!(message.complete);
        assert_eq!(message.body.framing, BodyFraming::Chunked);
        assert_eq!(message.body.captured, b"abc");
        let trailers = message.body.trailers.as_ref().expect("trailers");
        assert_eq!(trailers.get("X-Sum"), Some(&b"1"[..]));
    }

    #[test]
    fn a_gap_across_a_chunk_boundary_loses_sync_and_the_next_request_is_found() {
        let (_, out) = parse(&[
            data(
                b"POST /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\na",
                1,
            ),
            Segment::Gap { len: 20, ts_ns: 2 },
            data(b"ab\r\n0\r\n\r\nGET /next HTTP/1.1\r\n\r\n", 3),
        ]);
        let errors: Vec<&ParseError> = out.iter().filter_map(ParserOutput::as_error).collect();
        let at = SyncLoss::InChunkFraming;
        assert_eq!(errors, [&ParseError::LostSync { len: 20, at }]);
        let messages = messages(&out);
        assert!(!messages[0].complete);
        assert_eq!(messages[1].head.target, "/next");
        assert_eq!(messages[1].first_byte_ts_ns, 3);
    }

    #[test]
    fn the_stream_ending_inside_a_body_delivers_it_incomplete() {
        let (_, out) = parse(&[
            data(b"PUT /f HTTP/1.1\r\nContent-Length: 10\r\n\r\n1234", 1),
            Segment::End { ts_ns: 9 },
        ]);
        let message = messages(&out)[0];
        assert!(!message.complete);
        assert_eq!(message.body.size, 4);
        assert_eq!(message.last_byte_ts_ns, 1);
    }

    #[test]
    fn a_hostile_content_length_costs_no_memory() {
        let head = b"POST /f HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n";
        let chunk = [b'x'; 4096];
        let mut segments = vec![data(head, 1)];
        segments.extend(std::iter::repeat_n(data(&chunk, 2), 64));
        segments.push(Segment::End { ts_ns: 3 });
        let (_, out) = parse(&segments);
        let message = messages(&out)[0];
        assert_eq!(message.body.size, 64 * 4096);
        let cap = crate::protocol::http1::DEFAULT_MAX_BODY_CAPTURE;
        assert_eq!(message.body.captured.len(), cap);
    }

    #[test]
    fn a_tunnel_started_during_a_body_begins_after_it() {
        let (mut parser, mut out) =
            parse(&[data(b"POST /ws HTTP/1.1\r\nContent-Length: 4\r\n\r\nab", 1)]);
        parser.start_tunnel(TunnelCause::Upgrade, &mut out);
        parser.push(data(b"cd\x81\x00GET / HTTP/1.1\r\n\r\n", 2), &mut out);
        let tunnel = out.last().and_then(ParserOutput::as_tunnel);
        assert_eq!(tunnel.map(|tunnel| tunnel.stream_offset), Some(44));
        assert_eq!(messages(&out).len(), 1);
        assert_eq!(parser.stats().tunnel_bytes, 20);
    }

    #[test]
    fn bytes_past_the_capture_may_come_unread_and_leave_the_body_whole() {
        let cap = crate::protocol::http1::DEFAULT_MAX_BODY_CAPTURE as u64;
        let head = b"POST /f HTTP/1.1\r\nContent-Length: 40000\r\n\r\n";
        let (mut parser, mut out) = parse(&[data(head, 1), data(&[b'x'; 1000], 2)]);
        // The rest of the capture must come as bytes; the body after it need not.
        assert_eq!(parser.unread_ahead(), Some(cap - 1000..39_000));
        parser.push(data(&vec![b'x'; cap as usize - 1000], 3), &mut out);
        assert_eq!(parser.unread_ahead(), Some(0..40_000 - cap));
        parser.push(
            Segment::Unread {
                len: 40_000 - cap - 10,
                ts_ns: 4,
            },
            &mut out,
        );
        parser.push(data(b"0123456789GET /next HTTP/1.1\r\n\r\n", 5), &mut out);
        let messages = messages(&out);
        assert_eq!(messages.len(), 2, "{out:?}");
        assert!(messages[0].complete);
        assert_eq!((messages[0].body.size, messages[0].body.lost), (40_000, 0));
        assert_eq!(messages[0].body.captured.len() as u64, cap);
        assert_eq!(messages[1].head.target, "/next");
        assert_eq!(parser.stats().bytes_unread, 40_000 - cap - 10);
        assert_eq!(parser.stats().bytes_lost, 0);
        // Between messages nothing is passed over unread.
        assert_eq!(parser.unread_ahead(), None);
    }

    #[test]
    fn unread_bytes_this_parser_would_read_are_a_hole() {
        let head = b"POST /f HTTP/1.1\r\nContent-Length: 40000\r\n\r\n";
        // Inside the capture: the body is cut there, as by any hole.
        let (parser, out) = parse(&[
            data(head, 1),
            Segment::Unread { len: 100, ts_ns: 2 },
            Segment::End { ts_ns: 3 },
        ]);
        let message = messages(&out)[0];
        assert_eq!((message.body.size, message.body.lost), (100, 100));
        assert_eq!(parser.stats().bytes_unread, 0);
        // Over the end of the body, and between messages: the place is lost.
        let (parser, out) = parse(&[
            data(head, 1),
            data(&vec![b'x'; 39_000], 2),
            Segment::Unread {
                len: 1_010,
                ts_ns: 3,
            },
            Segment::Unread { len: 5, ts_ns: 4 },
        ]);
        assert_eq!(messages(&out)[0].body.lost, 1_000);
        assert_eq!(parser.stats().bytes_lost, 1_015);
        assert_eq!(parser.stats().bytes_unread, 0);
    }

    #[test]
    fn chunk_data_past_the_capture_may_come_unread_but_chunk_lines_may_not() {
        let mut stream = b"PUT /f HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        stream.extend_from_slice(format!("{:x}\r\n", 30_000).as_bytes());
        stream.extend_from_slice(&vec![b'x'; 20_000]);
        let (mut parser, mut out) = parse(&[data(&stream, 1)]);
        assert_eq!(parser.unread_ahead(), Some(0..10_000));
        parser.push(
            Segment::Unread {
                len: 10_000,
                ts_ns: 2,
            },
            &mut out,
        );
        // The line end and the next chunk's size are framing: they must come as bytes.
        assert_eq!(parser.unread_ahead(), None);
        parser.push(data(b"\r\n0\r\n\r\n", 3), &mut out);
        let message = messages(&out)[0];
        assert!(message.complete);
        assert_eq!((message.body.size, message.body.lost), (30_000, 0));
    }
}
