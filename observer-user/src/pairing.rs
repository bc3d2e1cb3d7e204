//! The pairing stage: turns one connection's requests and responses into exchanges (API calls).
//!
//! ```text
//! capture ──> events ──> conn ──> protocol ──> [pairing] ──> inventory / detect ──> export
//! ```
//!
//! [`Pairing`] takes what the two HTTP/1 parsers of a connection report and matches each
//! request with the response that answers it, first in first out (HTTP/1.1 pipelining answers
//! in order), collecting interim (1xx) statuses on the way. It is the only place that knows
//! both directions: latency is measured here, and requests that were never answered (or
//! answers whose request was never seen) are reported as such rather than dropped.
//!
//! [`Http1Session`] is the convenience most callers want: both parsers and the pairing for one
//! connection, wired together (each request head is passed to the response parser, a tunnel
//! seen in responses stops the request parser too), still as separate stages inside.
//!
//! Order is kept by time where it cannot be kept by count: a response never answers a request
//! that began after it, and after the response direction lost sync the next response answers
//! the latest request that began before it (see [`answered_request`]). The response parser
//! follows the same rule to frame bodies, so the two never disagree about which request a
//! response answers.

use std::collections::VecDeque;
use std::mem;

use crate::protocol::http1::{
    answered_request, Message, ParseError, ParserLimits, ParserOutput, ParserStats, RequestHead,
    RequestOutput, RequestParser, RequestStart, ResponseHead, ResponseOutput, ResponseParser,
    ResponseStart, TunnelStart, MAX_PIPELINED_REQUESTS,
};
use crate::protocol::Segment;

/// Interim statuses kept for one exchange. Servers send one or two (100 Continue, 103 Early
/// Hints); a peer sending more says nothing new, and must not make an exchange grow forever.
pub const MAX_INTERIM_STATUSES: usize = 8;

/// How much of an exchange was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExchangeStatus {
    /// A request and its final response. Either may still be incomplete or truncated: see
    /// [`Message::complete`] and [`Body::is_truncated`](crate::protocol::http1::Body::is_truncated).
    Complete,
    /// A request without an answer: the connection closed, or the answer was lost (with sync,
    /// or because too many requests were waiting).
    RequestOnly,
    /// A response whose request was not seen.
    ResponseOnly,
}

/// One request and its response, as far as they were seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpExchange {
    pub request: Option<Message<RequestHead>>,
    /// Interim (1xx) statuses received before the final response, in order (the first
    /// [`MAX_INTERIM_STATUSES`]).
    pub interim: Vec<u16>,
    pub response: Option<Message<ResponseHead>>,
    pub status: ExchangeStatus,
}

impl HttpExchange {
    /// Time from the request's last byte to the response's first byte: how long the server
    /// took. `None` without both messages, or when the response began before the request ended
    /// (an early answer, such as a 413 to an upload).
    pub fn latency_ns(&self) -> Option<u64> {
        let (request, response) = (self.request.as_ref()?, self.response.as_ref()?);
        response
            .first_byte_ts_ns
            .checked_sub(request.last_byte_ts_ns)
    }

    /// Time from the request's first byte to the response's last byte: the whole exchange.
    pub fn total_ns(&self) -> Option<u64> {
        let (request, response) = (self.request.as_ref()?, self.response.as_ref()?);
        response
            .last_byte_ts_ns
            .checked_sub(request.first_byte_ts_ns)
    }
}

/// Where a request stands with its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// No final response head yet.
    Waiting,
    /// A final response head was seen; its message follows.
    Answering,
    /// The final response was delivered.
    Answered,
    /// Its response was lost with sync: the request is reported unanswered once it is complete.
    Abandoned,
}

/// A request whose exchange is not finished.
#[derive(Debug)]
struct Pending {
    id: u64,
    /// Kernel time of the request's first byte.
    since_ns: u64,
    /// `None` while the request's body is still being read.
    request: Option<Message<RequestHead>>,
    interim: Vec<u16>,
    response: Option<Message<ResponseHead>>,
    answer: Answer,
}

/// The request the response being read answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Pending {
        id: u64,
    },
    /// Its request was not seen.
    Missed,
}

/// Matches one connection's requests and responses.
///
/// Callers report request heads and response heads as the parsers see them (`Started`
/// outputs), then the messages; heads matter because a response can begin (and even end)
/// before its request has been fully read, and because a request's place is decided when its
/// response's head arrives, exactly as the response parser decides it.
#[derive(Debug, Default)]
pub struct Pairing {
    /// Requests not yet reported, oldest first.
    pending: VecDeque<Pending>,
    next_id: u64,
    /// The request the response being read answers, from its head until its message.
    answering: Option<Target>,
    /// Sync was lost in the response direction since the last response head.
    after_lost_sync: bool,
    /// Interim statuses of a request that was not seen, for the response that finishes it.
    unclaimed_interim: Vec<u16>,
    /// Requests reported unanswered because too many were waiting.
    overflowed: u64,
}

impl Pairing {
    /// The pairing of a new connection.
    pub fn new() -> Pairing {
        Pairing::default()
    }

    /// A request head was parsed. Past [`MAX_PIPELINED_REQUESTS`] requests waiting for an
    /// answer, the oldest is reported unanswered (the response parser forgets the same one).
    pub fn on_request_started(&mut self, start: &RequestStart, out: &mut Vec<HttpExchange>) {
        let waiting = self.waiting().count();
        if waiting >= MAX_PIPELINED_REQUESTS {
            self.overflowed += 1;
            let oldest = self.waiting().next();
            if let Some(oldest) = oldest {
                self.abandon(oldest, out);
            }
        }
        self.push_pending(start.ts_ns, None);
    }

    /// A request message was delivered (complete or not).
    pub fn on_request(&mut self, request: Message<RequestHead>, out: &mut Vec<HttpExchange>) {
        let Some(index) = self.pending.iter().position(|p| p.request.is_none()) else {
            // Its head was not reported: it joins the queue now.
            self.push_pending(request.first_byte_ts_ns, Some(request));
            return;
        };
        self.pending[index].request = Some(request);
        if matches!(
            self.pending[index].answer,
            Answer::Answered | Answer::Abandoned
        ) {
            self.finish(index, out);
        }
    }

    /// A response head was parsed: decides which request it answers.
    pub fn on_response_started(&mut self, start: &ResponseStart, out: &mut Vec<HttpExchange>) {
        let target = self.choose_request(start.ts_ns, out);
        if !is_interim(start.status) {
            if let Target::Pending { id } = target {
                if let Some(pending) = self.pending.iter_mut().find(|p| p.id == id) {
                    pending.answer = Answer::Answering;
                }
            }
        }
        self.answering = Some(target);
    }

    /// A response message was delivered (complete or not).
    pub fn on_response(&mut self, response: Message<ResponseHead>, out: &mut Vec<HttpExchange>) {
        let status = response.head.status;
        let target = match self.answering.take() {
            Some(target) => target,
            // Its head was not reported: place it now.
            None => {
                let start = ResponseStart {
                    status,
                    stream_offset: response.stream_offset,
                    ts_ns: response.first_byte_ts_ns,
                };
                self.on_response_started(&start, out);
                self.answering.take().unwrap_or(Target::Missed)
            }
        };
        let index = match target {
            Target::Pending { id } => self.pending.iter().position(|p| p.id == id),
            Target::Missed => None,
        };
        match (index, is_interim(status)) {
            (Some(index), true) => keep_interim(&mut self.pending[index].interim, status),
            (None, true) => keep_interim(&mut self.unclaimed_interim, status),
            (Some(index), false) => {
                let pending = &mut self.pending[index];
                pending.response = Some(response);
                pending.answer = Answer::Answered;
                if pending.request.is_some() {
                    self.finish(index, out);
                }
            }
            (None, false) => out.push(HttpExchange {
                request: None,
                interim: mem::take(&mut self.unclaimed_interim),
                response: Some(response),
                status: ExchangeStatus::ResponseOnly,
            }),
        }
    }

    /// The response parser lost sync: responses may have been lost, so the next one is placed
    /// by time rather than by order.
    pub fn on_response_lost_sync(&mut self) {
        self.after_lost_sync = true;
    }

    /// The connection closed: reports every exchange still open.
    pub fn on_close(&mut self, out: &mut Vec<HttpExchange>) {
        self.answering = None;
        self.unclaimed_interim.clear();
        while !self.pending.is_empty() {
            self.finish(0, out);
        }
    }

    /// Requests reported unanswered because too many were waiting.
    pub fn overflowed(&self) -> u64 {
        self.overflowed
    }

    fn push_pending(&mut self, since_ns: u64, request: Option<Message<RequestHead>>) {
        self.pending.push_back(Pending {
            id: self.next_id,
            since_ns,
            request,
            interim: Vec::new(),
            response: None,
            answer: Answer::Waiting,
        });
        self.next_id += 1;
    }

    /// Ids of the requests waiting for a response head, oldest first.
    fn waiting(&self) -> impl DoubleEndedIterator<Item = u64> + '_ {
        self.pending
            .iter()
            .filter(|p| p.answer == Answer::Waiting)
            .map(|p| p.id)
    }

    /// Which request a response that began at `ts` answers, by the rule the response parser
    /// follows; requests passed over are reported unanswered.
    fn choose_request(&mut self, ts: u64, out: &mut Vec<HttpExchange>) -> Target {
        let since = self
            .pending
            .iter()
            .filter(|p| p.answer == Answer::Waiting)
            .map(|p| p.since_ns);
        let after_lost_sync = mem::take(&mut self.after_lost_sync);
        let Some(chosen) = answered_request(since, ts, after_lost_sync) else {
            return Target::Missed;
        };
        let passed_over: Vec<u64> = self.waiting().take(chosen).collect();
        for id in passed_over {
            self.abandon(id, out);
        }
        self.waiting()
            .next()
            .map_or(Target::Missed, |id| Target::Pending { id })
    }

    /// The request `id` will get no answer: reports it now if it is complete, or once it is.
    fn abandon(&mut self, id: u64, out: &mut Vec<HttpExchange>) {
        let Some(index) = self.pending.iter().position(|p| p.id == id) else {
            return;
        };
        self.pending[index].answer = Answer::Abandoned;
        if self.pending[index].request.is_some() {
            self.finish(index, out);
        }
    }

    /// Reports the exchange at `index` as far as it got and forgets it.
    fn finish(&mut self, index: usize, out: &mut Vec<HttpExchange>) {
        let Some(pending) = self.pending.remove(index) else {
            return;
        };
        let status = match (&pending.request, &pending.response) {
            (Some(_), Some(_)) => ExchangeStatus::Complete,
            (Some(_), None) => ExchangeStatus::RequestOnly,
            (None, Some(_)) => ExchangeStatus::ResponseOnly,
            // A head whose message never came (the parser always delivers one): nothing to say.
            (None, None) => return,
        };
        out.push(HttpExchange {
            request: pending.request,
            interim: pending.interim,
            response: pending.response,
            status,
        });
    }
}

/// Adds an interim status to `statuses`, up to [`MAX_INTERIM_STATUSES`].
fn keep_interim(statuses: &mut Vec<u16>, status: u16) {
    if statuses.len() < MAX_INTERIM_STATUSES {
        statuses.push(status);
    }
}

/// Whether a status is interim: 1xx except 101, after which HTTP stops.
fn is_interim(status: u16) -> bool {
    (100..200).contains(&status) && status != 101
}

/// Which direction of a connection something came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The direction carrying requests (the client's writes, the server's reads).
    Request,
    /// The direction carrying responses.
    Response,
}

/// What a session reports, in the order it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "nearly every event is an exchange; boxing it would add an allocation to each"
)]
pub enum SessionEvent {
    Exchange(HttpExchange),
    Error {
        side: Side,
        error: ParseError,
    },
    /// HTTP stopped in one direction (each direction reports it once).
    Tunnel {
        side: Side,
        tunnel: TunnelStart,
    },
}

/// Counts of one session's work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    pub requests: ParserStats,
    pub responses: ParserStats,
    /// Requests reported unanswered because too many were waiting.
    pub unanswered_overflow: u64,
}

/// One HTTP/1 connection: a request parser, a response parser and the pairing, wired together.
///
/// Push each direction's segments as `conn` delivers them. Across the two directions, push in
/// the order things happened, or at least push a request's head before the response bytes
/// that answer it (HEAD and CONNECT answers are framed by their request), and tunnelled
/// request bytes after the response that opened the tunnel.
pub struct Http1Session {
    requests: RequestParser,
    responses: ResponseParser,
    pairing: Pairing,
    request_outputs: Vec<RequestOutput>,
    response_outputs: Vec<ResponseOutput>,
    exchanges: Vec<HttpExchange>,
}

impl Http1Session {
    /// A session for a new connection; both parsers work within `limits`.
    pub fn new(limits: ParserLimits) -> Http1Session {
        Http1Session {
            requests: RequestParser::new(limits),
            responses: ResponseParser::new(limits),
            pairing: Pairing::new(),
            request_outputs: Vec::new(),
            response_outputs: Vec::new(),
            exchanges: Vec::new(),
        }
    }

    /// Reads a segment of the direction that carries requests.
    pub fn push_request_side(&mut self, segment: Segment<'_>, out: &mut Vec<SessionEvent>) {
        let mut outputs = mem::take(&mut self.request_outputs);
        self.requests.push(segment, &mut outputs);
        self.route_request_outputs(&mut outputs, out);
        self.request_outputs = outputs;
    }

    /// Reads a segment of the direction that carries responses.
    pub fn push_response_side(&mut self, segment: Segment<'_>, out: &mut Vec<SessionEvent>) {
        let mut outputs = mem::take(&mut self.response_outputs);
        self.responses.push(segment, &mut outputs);
        for output in outputs.drain(..) {
            match output {
                ParserOutput::Started(start) => {
                    self.pairing
                        .on_response_started(&start, &mut self.exchanges);
                }
                ParserOutput::Message(message) => {
                    self.pairing.on_response(message, &mut self.exchanges);
                }
                ParserOutput::Error(error) => {
                    if error.loses_sync() {
                        self.pairing.on_response_lost_sync();
                    }
                    out.push(SessionEvent::Error {
                        side: Side::Response,
                        error,
                    });
                }
                ParserOutput::Tunnel(tunnel) => {
                    out.push(SessionEvent::Tunnel {
                        side: Side::Response,
                        tunnel,
                    });
                    let mut request_outputs = mem::take(&mut self.request_outputs);
                    self.requests
                        .start_tunnel(tunnel.cause, &mut request_outputs);
                    self.route_request_outputs(&mut request_outputs, out);
                    self.request_outputs = request_outputs;
                }
            }
            out.extend(self.exchanges.drain(..).map(SessionEvent::Exchange));
        }
        self.response_outputs = outputs;
    }

    /// Where one direction's bytes ahead will be passed over unread, relative to its next byte.
    pub fn unread_ahead(&self, side: Side) -> Option<std::ops::Range<u64>> {
        match side {
            Side::Request => self.requests.unread_ahead(),
            Side::Response => self.responses.unread_ahead(),
        }
    }

    /// The connection closed at `ts_ns`: ends both directions and reports every exchange
    /// still open.
    pub fn close(&mut self, ts_ns: u64, out: &mut Vec<SessionEvent>) {
        self.push_request_side(Segment::End { ts_ns }, out);
        self.push_response_side(Segment::End { ts_ns }, out);
        self.pairing.on_close(&mut self.exchanges);
        out.extend(self.exchanges.drain(..).map(SessionEvent::Exchange));
    }

    /// Counts of what the session has seen so far.
    pub fn stats(&self) -> SessionStats {
        SessionStats {
            requests: self.requests.stats(),
            responses: self.responses.stats(),
            unanswered_overflow: self.pairing.overflowed(),
        }
    }

    fn route_request_outputs(
        &mut self,
        outputs: &mut Vec<RequestOutput>,
        out: &mut Vec<SessionEvent>,
    ) {
        for output in outputs.drain(..) {
            match output {
                ParserOutput::Started(start) => {
                    self.responses.request_sent(&start);
                    self.pairing.on_request_started(&start, &mut self.exchanges);
                }
                ParserOutput::Message(message) => {
                    self.pairing.on_request(message, &mut self.exchanges);
                }
                ParserOutput::Error(error) => out.push(SessionEvent::Error {
                    side: Side::Request,
                    error,
                }),
                ParserOutput::Tunnel(tunnel) => out.push(SessionEvent::Tunnel {
                    side: Side::Request,
                    tunnel,
                }),
            }
            out.extend(self.exchanges.drain(..).map(SessionEvent::Exchange));
        }
    }
}

impl Default for Http1Session {
    fn default() -> Self {
        Http1Session::new(ParserLimits::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::http1::{Body, BodyFraming, Headers, Method, Version};

    /// A complete message without body, seen between the two times.
    fn message<H>(head: H, first_ns: u64, last_ns: u64) -> Message<H> {
        Message {
            head,
            body: Body::new(BodyFraming::NoBody),
            stream_offset: 0,
            first_byte_ts_ns: first_ns,
            last_byte_ts_ns: last_ns,
            complete: true,
        }
    }

    fn request(target: &str, first_ns: u64, last_ns: u64) -> Message<RequestHead> {
        let head = RequestHead {
            method: Method::Get,
            target: target.to_owned(),
            version: Version::Http11,
            headers: Headers::default(),
        };
        message(head, first_ns, last_ns)
    }

    fn response(status: u16, first_ns: u64, last_ns: u64) -> Message<ResponseHead> {
        let head = ResponseHead {
            version: Version::Http11,
            status,
            reason: Vec::new(),
            headers: Headers::default(),
        };
        message(head, first_ns, last_ns)
    }

    fn started(message: &Message<RequestHead>) -> RequestStart {
        RequestStart {
            method: message.head.method.clone(),
            stream_offset: message.stream_offset,
            ts_ns: message.first_byte_ts_ns,
        }
    }

    /// A request reported as the session reports it: head, then message.
    fn send(pairing: &mut Pairing, message: Message<RequestHead>, out: &mut Vec<HttpExchange>) {
        pairing.on_request_started(&started(&message), out);
        pairing.on_request(message, out);
    }

    /// A response reported as the session reports it: head, then message.
    fn answer(pairing: &mut Pairing, message: Message<ResponseHead>, out: &mut Vec<HttpExchange>) {
        let start = ResponseStart {
            status: message.head.status,
            stream_offset: message.stream_offset,
            ts_ns: message.first_byte_ts_ns,
        };
        pairing.on_response_started(&start, out);
        pairing.on_response(message, out);
    }

    fn summary(exchanges: &[HttpExchange]) -> Vec<(ExchangeStatus, Option<&str>, Option<u16>)> {
        exchanges
            .iter()
            .map(|exchange| {
                (
                    exchange.status,
                    exchange.request.as_ref().map(|m| m.head.target.as_str()),
                    exchange.response.as_ref().map(|m| m.head.status),
                )
            })
            .collect()
    }

    #[test]
    fn pipelined_requests_are_answered_in_order() {
        let mut pairing = Pairing::new();
        let mut out = Vec::new();
        for target in ["/a", "/b", "/c"] {
            send(&mut pairing, request(target, 10, 10), &mut out);
        }
        for status in [200, 404, 500] {
            answer(&mut pairing, response(status, 20, 20), &mut out);
        }
        use ExchangeStatus::Complete;
        assert_eq!(
            summary(&out),
            [
                (Complete, Some("/a"), Some(200)),
                (Complete, Some("/b"), Some(404)),
                (Complete, Some("/c"), Some(500))
            ]
        );
    }

    #[test]
    fn interim_statuses_belong_to_the_request_they_precede() {
        let mut pairing = Pairing::new();
        let mut out = Vec::new();
        let upload = request("/upload", 10, 30);
        pairing.on_request_started(&started(&upload), &mut out);
        answer(&mut pairing, response(100, 20, 20), &mut out);
        pairing.on_request(upload, &mut out);
        answer(&mut pairing, response(103, 40, 40), &mut out);
        answer(&mut pairing, response(200, 50, 60), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].interim, [100, 103]);
        assert_eq!(out[0].latency_ns(), Some(20));
        assert_eq!(out[0].total_ns(), Some(50));
    }

    #[test]
    fn an_early_answer_waits_for_its_request_to_end() {
        let mut pairing = Pairing::new();
        let mut out = Vec::new();
        let upload = request("/big-upload", 10, 90);
        pairing.on_request_started(&started(&upload), &mut out);
        answer(&mut pairing, response(413, 20, 20), &mut out);
        assert!(out.is_empty());
        pairing.on_request(upload, &mut out);
        assert_eq!(
            summary(&out),
            [(ExchangeStatus::Complete, Some("/big-upload"), Some(413))]
        );
        assert_eq!(
            out[0].latency_ns(),
            None,
            "the answer began before the request ended"
        );
    }

    #[test]
    fn closing_reports_unanswered_requests() {
        let mut pairing = Pairing::new();
        let mut out = Vec::new();
        send(&mut pairing, request("/a", 10, 10), &mut out);
        send(&mut pairing, request("/b", 11, 11), &mut out);
        answer(&mut pairing, response(200, 20, 20), &mut out);
        pairing.on_close(&mut out);
        assert_eq!(
            summary(&out),
            [
                (ExchangeStatus::Complete, Some("/a"), Some(200)),
                (ExchangeStatus::RequestOnly, Some("/b"), None)
            ]
        );
    }

    #[test]
    fn an_answer_older_than_every_waiting_request_answers_one_not_seen() {
        let mut pairing = Pairing::new();
        let mut out = Vec::new();
        send(&mut pairing, request("/late", 50, 50), &mut out);
        answer(&mut pairing, response(100, 10, 10), &mut out);
        answer(&mut pairing, response(200, 20, 20), &mut out);
        answer(&mut pairing, response(204, 60, 60), &mut out);
        assert_eq!(
            summary(&out),
            [
                (ExchangeStatus::ResponseOnly, None, Some(200)),
                (ExchangeStatus::Complete, Some("/late"), Some(204))
            ]
        );
        assert_eq!(out[0].interim, [100]);
    }

    #[test]
    fn after_lost_sync_the_requests_passed_over_are_reported_unanswered() {
        let mut pairing = Pairing::new();
        let mut out = Vec::new();
        send(&mut pairing, request("/one", 10, 10), &mut out);
        send(&mut pairing, request("/two", 30, 30), &mut out);
        pairing.on_response_lost_sync();
        answer(&mut pairing, response(200, 40, 40), &mut out);
        assert_eq!(
            summary(&out),
            [
                (ExchangeStatus::RequestOnly, Some("/one"), None),
                (ExchangeStatus::Complete, Some("/two"), Some(200))
            ]
        );
    }

    #[test]
    fn too_many_waiting_requests_report_the_oldest_unanswered() {
        let mut pairing = Pairing::new();
        let mut out = Vec::new();
        for index in 0..=MAX_PIPELINED_REQUESTS {
            send(
                &mut pairing,
                request(&format!("/{index}"), 10, 10),
                &mut out,
            );
        }
        assert_eq!(
            summary(&out),
            [(ExchangeStatus::RequestOnly, Some("/0"), None)]
        );
        assert_eq!(pairing.overflowed(), 1);
        answer(&mut pairing, response(200, 20, 20), &mut out);
        assert_eq!(
            out[1].request.as_ref().map(|m| m.head.target.as_str()),
            Some("/1")
        );
    }

    #[test]
    fn endless_interim_statuses_are_kept_only_up_to_the_bound() {
        let mut pairing = Pairing::new();
        let mut out = Vec::new();
        for _ in 0..1000 {
            answer(&mut pairing, response(100, 5, 5), &mut out);
        }
        send(&mut pairing, request("/a", 10, 10), &mut out);
        for _ in 0..1000 {
            answer(&mut pairing, response(100, 20, 20), &mut out);
        }
        answer(&mut pairing, response(200, 30, 30), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].interim.len(), MAX_INTERIM_STATUSES);
        assert!(pairing.unclaimed_interim.len() <= MAX_INTERIM_STATUSES);
    }

    #[test]
    fn messages_reported_without_their_heads_still_pair() {
        let mut pairing = Pairing::new();
        let mut out = Vec::new();
        pairing.on_request(request("/a", 10, 10), &mut out);
        pairing.on_response(response(200, 20, 20), &mut out);
        assert_eq!(
            summary(&out),
            [(ExchangeStatus::Complete, Some("/a"), Some(200))]
        );
    }

    #[test]
    fn a_session_wires_the_parsers_and_the_pairing_together() {
        let mut session = Http1Session::default();
        let mut events = Vec::new();
        let data = |bytes, ts_ns| Segment::Data { bytes, ts_ns };
        session.push_request_side(
            data(
                &b"HEAD /a HTTP/1.1\r\n\r\nGET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"[..],
                10,
            ),
            &mut events,
        );
        session.push_response_side(
            data(&b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nHTTP/1.1 101 Switching Protocols\r\n\r\n\x81\x00"[..], 20),
            &mut events,
        );
        session.push_request_side(data(&b"\x81\x80abcd"[..], 30), &mut events);
        session.close(40, &mut events);
        let described: Vec<String> = events
            .iter()
            .map(|event| match event {
                SessionEvent::Exchange(exchange) => format!(
                    "{:?} {:?}",
                    exchange.status,
                    exchange.response.as_ref().map(|m| m.head.status)
                ),
                SessionEvent::Error { side, error } => format!("{side:?} error {error}"),
                SessionEvent::Tunnel { side, tunnel } => {
                    format!("{side:?} tunnel at {}", tunnel.stream_offset)
                }
            })
            .collect();
        assert_eq!(
            described,
            [
                "Complete Some(200)",
                "Complete Some(101)",
                "Response tunnel at 75",
                "Request tunnel at 60",
            ]
        );
        assert_eq!(session.stats().requests.tunnel_bytes, 6);
        assert_eq!(session.stats().responses.tunnel_bytes, 2);
    }
}
