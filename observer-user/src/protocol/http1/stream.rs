//! The state machine one direction of a connection goes through, shared by both parsers:
//! heads, bodies, holes, resync, and the end of HTTP.
//!
//! What differs between requests and responses (how a head is parsed, how its body is framed,
//! what a response answers) is behind the [`Side`] trait; everything else is here, once.
//!
//! ```text
//!            head complete, framing known                body ended
//!   Heads ───────────────────────────────────> Body ─────────────────> Heads (next message)
//!     │ ^                                        │                  └─> Tunnel (101, CONNECT 2xx)
//!     │ └── error or hole: report, resync ───────┘
//!     └── End ──> Ended
//! ```

use std::mem;
use std::ops::Range;

use super::body::{BodyReader, Decoded, GapInBody};
use super::head::{HeadEvent, HeadReader};
use super::message::len_u64;
use super::resync::MessageKind;
use super::{
    Body, BodyFraming, Message, ParseError, ParserLimits, ParserOutput, ParserStats, SyncLoss,
    TunnelCause, TunnelStart,
};
use crate::protocol::Segment;

/// Steps in a row that may take no bytes (each changes state instead) before the parser decides
/// it is stuck. Every step that takes nothing moves to a state that does, so two is already
/// more than happens; the guard turns a bug into dropped bytes rather than a hung agent.
const MAX_STEPS_WITHOUT_PROGRESS: u32 = 4;

/// Where and when a head began.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HeadStart {
    pub(crate) stream_offset: u64,
    pub(crate) ts_ns: u64,
}

/// What follows a message once it has ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AfterMessage {
    NextMessage,
    Tunnel(TunnelCause),
}

/// What a side decided about a parsed head.
#[derive(Debug)]
pub(crate) struct Plan<S> {
    /// Reported at once, before the body.
    pub(crate) start: S,
    /// How the body is framed, or why that cannot be known.
    pub(crate) framing: Result<BodyFraming, ParseError>,
    pub(crate) then: AfterMessage,
}

/// What makes a direction a request or a response direction.
pub(crate) trait Side {
    type Head;
    type Start;

    /// Which messages this side carries: what resync looks for.
    const KIND: MessageKind;

    /// Parses a complete head.
    fn parse_head(&self, head: &[u8], limits: &ParserLimits) -> Result<Self::Head, ParseError>;

    /// Decides how the message's body is framed and what follows it.
    fn plan(&mut self, head: &Self::Head, start: HeadStart) -> Plan<Self::Start>;

    /// The parser lost its place: messages may have been lost with it.
    fn lost_sync(&mut self) {}
}

enum State<H> {
    /// Reading a head, or looking for one.
    Heads,
    Body(Box<InBody<H>>),
    Tunnel,
    /// The stream has ended; anything more is counted as discarded.
    Ended,
}

/// A message whose head is parsed and whose body is being read.
struct InBody<H> {
    message: Message<H>,
    reader: BodyReader,
    then: AfterMessage,
}

/// One direction of a connection, read as a sequence of messages.
pub(crate) struct MessageStream<S: Side> {
    side: S,
    limits: ParserLimits,
    /// Stream position of the next byte.
    position: u64,
    heads: HeadReader,
    state: State<S::Head>,
    stats: ParserStats,
}

type Output<S> = ParserOutput<<S as Side>::Head, <S as Side>::Start>;

impl<S: Side> MessageStream<S> {
    pub(crate) fn new(side: S, limits: ParserLimits) -> MessageStream<S> {
        let limits = limits.clamped();
        MessageStream {
            side,
            limits,
            position: 0,
            heads: HeadReader::new(S::KIND, limits.max_head_bytes),
            state: State::Heads,
            stats: ParserStats::default(),
        }
    }

    pub(crate) fn side(&self) -> &S {
        &self.side
    }

    pub(crate) fn side_mut(&mut self) -> &mut S {
        &mut self.side
    }

    pub(crate) fn stats(&self) -> ParserStats {
        ParserStats {
            bytes_discarded: self
                .stats
                .bytes_discarded
                .saturating_add(self.heads.discarded()),
            ..self.stats
        }
    }

    pub(crate) fn push(&mut self, segment: Segment<'_>, out: &mut Vec<Output<S>>) {
        match segment {
            Segment::Data { bytes, ts_ns } => self.push_data(bytes, ts_ns, out),
            Segment::Gap { len, ts_ns } => self.push_gap(len, ts_ns, out),
            Segment::Unread { len, ts_ns } => self.push_unread(len, ts_ns, out),
            Segment::End { .. } => self.push_end(out),
        }
    }

    /// HTTP stops on this direction once the message being read has ended (at once if none is).
    pub(crate) fn start_tunnel(&mut self, cause: TunnelCause, out: &mut Vec<Output<S>>) {
        match &mut self.state {
            State::Body(in_body) => in_body.then = AfterMessage::Tunnel(cause),
            State::Heads => self.enter_tunnel(cause, out),
            State::Tunnel | State::Ended => {}
        }
    }

    fn push_data(&mut self, bytes: &[u8], ts: u64, out: &mut Vec<Output<S>>) {
        let mut used = 0;
        let mut steps_without_progress = 0;
        while used < bytes.len() {
            let rest = &bytes[used..];
            let taken = match self.state {
                State::Heads => self.read_head(rest, ts, out),
                State::Body(_) => self.read_body(rest, ts, out),
                State::Tunnel => {
                    self.stats.tunnel_bytes =
                        self.stats.tunnel_bytes.saturating_add(len_u64(rest.len()));
                    self.advance(rest.len())
                }
                State::Ended => {
                    self.stats.bytes_discarded = self
                        .stats
                        .bytes_discarded
                        .saturating_add(len_u64(rest.len()));
                    self.advance(rest.len())
                }
            };
            used += taken;
            if taken > 0 {
                steps_without_progress = 0;
                continue;
            }
            steps_without_progress += 1;
            if steps_without_progress > MAX_STEPS_WITHOUT_PROGRESS {
                debug_assert!(false, "parser stuck in a state that takes no bytes");
                let rest = bytes.len() - used;
                self.stats.bytes_discarded =
                    self.stats.bytes_discarded.saturating_add(len_u64(rest));
                self.advance(rest);
                self.heads.resync();
                self.state = State::Heads;
                return;
            }
        }
    }

    /// Moves the stream position past `taken` bytes; returns `taken`.
    fn advance(&mut self, taken: usize) -> usize {
        self.position = self.position.saturating_add(len_u64(taken));
        taken
    }

    fn read_head(&mut self, rest: &[u8], ts: u64, out: &mut Vec<Output<S>>) -> usize {
        let (taken, event) = self.heads.push(rest, ts, self.position);
        self.advance(taken);
        match event {
            HeadEvent::NeedMore => {}
            HeadEvent::Failed(error) => self.report(error, out),
            HeadEvent::Complete => self.head_complete(ts, out),
        }
        taken
    }

    fn head_complete(&mut self, ts: u64, out: &mut Vec<Output<S>>) {
        let start = HeadStart {
            stream_offset: self.heads.head_offset(),
            ts_ns: self.heads.head_ts(),
        };
        match self.side.parse_head(self.heads.head(), &self.limits) {
            Ok(head) => {
                self.heads.finish_head();
                self.begin_message(head, start, ts, out);
            }
            Err(error) => {
                self.heads.drop_head();
                self.report(error, out);
            }
        }
    }

    fn begin_message(
        &mut self,
        head: S::Head,
        start: HeadStart,
        ts: u64,
        out: &mut Vec<Output<S>>,
    ) {
        let plan = self.side.plan(&head, start);
        out.push(ParserOutput::Started(plan.start));
        let framing = plan
            .framing
            .as_ref()
            .map_or(BodyFraming::NoBody, |framing| *framing);
        let mut message = Message {
            head,
            body: Body::new(framing),
            stream_offset: start.stream_offset,
            first_byte_ts_ns: start.ts_ns,
            last_byte_ts_ns: ts,
            complete: false,
        };
        match plan.framing {
            Err(error) => {
                self.deliver(message, out);
                self.report(error, out);
                self.heads.resync();
            }
            Ok(framing) => match BodyReader::new(framing, &self.limits) {
                None => {
                    message.complete = true;
                    self.deliver(message, out);
                    self.after_message(plan.then, out);
                }
                Some(reader) => {
                    self.state = State::Body(Box::new(InBody {
                        message,
                        reader,
                        then: plan.then,
                    }));
                }
            },
        }
    }

    fn read_body(&mut self, rest: &[u8], ts: u64, out: &mut Vec<Output<S>>) -> usize {
        let State::Body(in_body) = &mut self.state else {
            return 0;
        };
        let cap = self.limits.max_body_capture;
        let (taken, decoded) = in_body.reader.read(rest, &mut in_body.message.body, cap);
        if taken > 0 {
            in_body.message.last_byte_ts_ns = ts;
        }
        self.advance(taken);
        match decoded {
            Decoded::NeedMore => {}
            Decoded::Done => self.end_body(true, out),
            Decoded::Failed(error) => {
                self.end_body(false, out);
                self.report(error, out);
                self.heads.resync();
            }
        }
        taken
    }

    /// Delivers the message being read; if its body ended normally, moves on to what follows.
    fn end_body(&mut self, complete: bool, out: &mut Vec<Output<S>>) {
        let State::Body(in_body) = mem::replace(&mut self.state, State::Heads) else {
            return;
        };
        let InBody {
            mut message,
            mut reader,
            then,
        } = *in_body;
        message.complete = complete;
        let mut trailer_error = None;
        if complete {
            match reader.take_trailers() {
                Ok(trailers) => message.body.trailers = trailers,
                Err(error) => trailer_error = Some(ParseError::InvalidTrailers(error)),
            }
        }
        self.deliver(message, out);
        if let Some(error) = trailer_error {
            self.report(error, out);
        }
        if complete {
            self.after_message(then, out);
        }
    }

    fn push_gap(&mut self, len: u64, ts: u64, out: &mut Vec<Output<S>>) {
        self.stats.bytes_lost = self.stats.bytes_lost.saturating_add(len);
        match &mut self.state {
            State::Heads => {
                if let Some(error) = self.heads.settle() {
                    self.report(error, out);
                }
                if let Some(at) = self.heads.gap() {
                    self.report(ParseError::LostSync { len, at }, out);
                }
            }
            State::Body(in_body) => {
                in_body.message.last_byte_ts_ns = ts;
                match in_body.reader.skip_gap(len, &mut in_body.message.body) {
                    GapInBody::Inside => {}
                    GapInBody::OverEnd { past_end } => {
                        self.position = self.position.saturating_add(len - past_end);
                        self.end_body(true, out);
                        self.gap_after_body(past_end, out);
                        return;
                    }
                    GapInBody::LosesFraming => {
                        self.end_body(false, out);
                        let at = SyncLoss::InChunkFraming;
                        self.report(ParseError::LostSync { len, at }, out);
                        self.heads.resync();
                    }
                }
            }
            State::Tunnel => self.stats.tunnel_bytes = self.stats.tunnel_bytes.saturating_add(len),
            State::Ended => {}
        }
        self.position = self.position.saturating_add(len);
    }

    /// Bytes the stream says parsing would not read. Inside a body whose capture is done they
    /// are counted as read; anywhere else (this parser's place differs from the one that
    /// found them unread) they are a hole.
    fn push_unread(&mut self, len: u64, ts: u64, out: &mut Vec<Output<S>>) {
        let cap = self.limits.max_body_capture;
        if let State::Body(in_body) = &mut self.state {
            if let Some(decoded) = in_body
                .reader
                .pass_unread(len, &mut in_body.message.body, cap)
            {
                in_body.message.last_byte_ts_ns = ts;
                self.stats.bytes_unread = self.stats.bytes_unread.saturating_add(len);
                self.position = self.position.saturating_add(len);
                if decoded == Decoded::Done {
                    self.end_body(true, out);
                }
                return;
            }
        }
        self.push_gap(len, ts, out);
    }

    /// Where, from the next byte on, this direction's bytes will be passed over unread: the
    /// rest of a body (or of a chunk's data) past its capture. A range relative to the next
    /// byte; `None` when the next bytes may all be read.
    pub(crate) fn unread_ahead(&self) -> Option<Range<u64>> {
        let State::Body(in_body) = &self.state else {
            return None;
        };
        let from = in_body
            .message
            .body
            .capture_room(self.limits.max_body_capture);
        let to = in_body.reader.data_left();
        (from < to).then_some(from..to)
    }

    /// The part of a hole that ran past the end of a body of known length.
    fn gap_after_body(&mut self, past_end: u64, out: &mut Vec<Output<S>>) {
        if past_end > 0 {
            match self.state {
                State::Tunnel => {
                    self.stats.tunnel_bytes = self.stats.tunnel_bytes.saturating_add(past_end);
                }
                _ => {
                    self.heads.resync();
                    let at = SyncLoss::PastBodyEnd;
                    self.report(ParseError::LostSync { len: past_end, at }, out);
                }
            }
        }
        self.position = self.position.saturating_add(past_end);
    }

    fn push_end(&mut self, out: &mut Vec<Output<S>>) {
        match &self.state {
            State::Heads => {
                if let Some(error) = self.heads.settle() {
                    self.report(error, out);
                }
                if let Some(error) = self.heads.end() {
                    self.report(error, out);
                }
            }
            State::Body(in_body) => {
                let complete = in_body.reader.ends_at_close();
                self.end_body(complete, out);
            }
            State::Tunnel | State::Ended => {}
        }
        self.state = State::Ended;
    }

    fn after_message(&mut self, then: AfterMessage, out: &mut Vec<Output<S>>) {
        match then {
            AfterMessage::NextMessage => self.state = State::Heads,
            AfterMessage::Tunnel(cause) => self.enter_tunnel(cause, out),
        }
    }

    /// HTTP stops here. Bytes the head reader held belong to the tunnel.
    fn enter_tunnel(&mut self, cause: TunnelCause, out: &mut Vec<Output<S>>) {
        let held = len_u64(self.heads.buffered());
        self.heads.finish_head();
        self.stats.tunnel_bytes = self.stats.tunnel_bytes.saturating_add(held);
        self.state = State::Tunnel;
        out.push(ParserOutput::Tunnel(TunnelStart {
            cause,
            stream_offset: self.position.saturating_sub(held),
        }));
    }

    fn deliver(&mut self, message: Message<S::Head>, out: &mut Vec<Output<S>>) {
        self.stats.messages += 1;
        out.push(ParserOutput::Message(message));
    }

    fn report(&mut self, error: ParseError, out: &mut Vec<Output<S>>) {
        self.stats.errors += 1;
        if error.loses_sync() {
            self.side.lost_sync();
        }
        out.push(ParserOutput::Error(error));
    }
}
