//! Gathering one message head from a stream that arrives in pieces, and finding the next head
//! after the parser lost its place.
//!
//! The head reader sits at the front of each parser: it takes bytes until a head is complete
//! (start line, fields, empty line), then the parser's side parses it and frames the body. It
//! never parses more than it must:
//!
//! - The start line is checked byte by byte as it arrives ([`start_line`](super::start_line)),
//!   so bytes that are not HTTP are refused at the first byte that proves it, wherever the
//!   stream was cut; `httparse` confirms every refusal and checks the whole line when it ends.
//!   A line whose end has arrived goes to `httparse` alone, which is most lines.
//! - The empty line that ends the head is found by a small state machine that carries over
//!   between segments, so no byte is scanned twice; `httparse` then runs once on the whole head.
//! - Only head bytes are copied: the reader stops at the head's end and leaves the body to the
//!   caller.
//!
//! When a start line is refused, the reader looks for the next candidate inside the bytes it
//! already holds before taking more (see [`resync`](super::resync)). A refusal is reported
//! only for a head that began where a message was due; candidates found while resyncing are
//! dropped quietly, since they were only guesses.

use std::mem::MaybeUninit;

use memchr::memchr;

use super::message::len_u64;
use super::resync::{find_start, MessageKind, MAX_START_PATTERN};
use super::start_line::StartLineCheck;
use super::{ParseError, SyncLoss};

/// Runs of bytes of distinct arrival times remembered for the bytes held (see [`Arrivals`]):
/// enough for a start line dribbled over 64 calls, 1 KiB at most.
const MAX_ARRIVAL_RUNS: usize = 64;

/// Buffer capacity kept between heads. Most heads are well under this; after an outlier the
/// buffer shrinks back so an idle connection does not keep a 64 KiB head's memory.
const RETAINED_CAPACITY: usize = 16 * 1024;

/// The `httparse` settings every head is read with: lenient where common servers are (repeated
/// spaces in the start line; in responses, spaces before a field's colon and folded lines), so
/// that the observer sees what the peer accepted.
pub(crate) fn parser_config() -> httparse::ParserConfig {
    let mut config = httparse::ParserConfig::default();
    config
        .allow_multiple_spaces_in_request_line_delimiters(true)
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true);
    config
}

/// An uninitialised field table for `httparse`, sized for the largest limit.
pub(crate) fn field_table<'b>() -> [MaybeUninit<httparse::Header<'b>>; super::MAX_HEADERS_CEILING] {
    [const { MaybeUninit::uninit() }; super::MAX_HEADERS_CEILING]
}

/// What became of the bytes given to [`HeadReader::push`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HeadEvent {
    /// Everything was taken; no head yet.
    NeedMore,
    /// A head is complete: read it with [`HeadReader::head`], then call
    /// [`HeadReader::finish_head`] or [`HeadReader::drop_head`].
    Complete,
    /// A head that began where a message was due is not HTTP, or is too large. The reader is
    /// already looking for the next message.
    Failed(ParseError),
}

/// Whether the head being read began where a message was due, or is a resync candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    Boundary,
    Resync,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Between messages: skipping the empty lines RFC 9112 §2.2 lets a peer send there.
    Idle,
    /// Sync was lost: `buf` holds only the last few bytes seen, which may begin a candidate.
    Seeking,
    /// Reading the start line that begins at `start`, checking each byte with `check` (`None`
    /// once the check and `httparse` disagreed: then `httparse` alone judges, at the line end).
    StartLine {
        origin: Origin,
        check: Option<StartLineCheck>,
    },
    /// The start line was accepted; reading fields until the empty line.
    Fields { scan: HeadEndScan },
    /// `buf[start..end]` is a complete head, waiting to be taken.
    Complete { end: usize },
}

/// Gathers heads for one direction of a connection. Holds at most `max_head_bytes`.
#[derive(Debug)]
pub(crate) struct HeadReader {
    kind: MessageKind,
    config: httparse::ParserConfig,
    max_head_bytes: usize,
    phase: Phase,
    buf: Vec<u8>,
    /// Stream position of `buf[0]`.
    buf_offset: u64,
    /// Where the head being read begins in `buf`; bytes before it are dropped at the next append.
    start: usize,
    /// Kernel time of the head's first byte.
    start_ts: u64,
    /// When the bytes in `buf` arrived: the time given to a head found inside `buf` after
    /// another candidate was refused.
    arrivals: Arrivals,
    /// Bytes dropped while seeking, and heads dropped as invalid.
    discarded: u64,
}

impl HeadReader {
    pub(crate) fn new(kind: MessageKind, max_head_bytes: usize) -> HeadReader {
        HeadReader {
            kind,
            config: parser_config(),
            max_head_bytes,
            phase: Phase::Idle,
            buf: Vec::new(),
            buf_offset: 0,
            start: 0,
            start_ts: 0,
            arrivals: Arrivals::default(),
            discarded: 0,
        }
    }

    /// Takes bytes from `data`, whose first byte is at stream position `offset` and which
    /// arrived at `ts`. Returns how many bytes were taken and what happened; bytes after a
    /// complete or failed head are left for the caller.
    pub(crate) fn push(&mut self, data: &[u8], ts: u64, offset: u64) -> (usize, HeadEvent) {
        let mut used = 0;
        while used < data.len() {
            let rest = &data[used..];
            let rest_offset = offset.saturating_add(len_u64(used));
            let (taken, event) = match self.phase {
                Phase::Idle => self.skip_empty_lines(rest, ts, rest_offset),
                Phase::Seeking => self.seek(rest, ts, rest_offset),
                Phase::StartLine { origin, check } => self.read_start_line(rest, ts, origin, check),
                Phase::Fields { scan } => self.read_fields(rest, ts, scan),
                Phase::Complete { .. } => {
                    // The caller takes every complete head before pushing more; if it did not,
                    // the head is dropped rather than mixed with what follows.
                    debug_assert!(false, "head pushed past without being taken");
                    self.drop_head();
                    (0, None)
                }
            };
            used += taken;
            if let Some(event) = event {
                return (used, event);
            }
        }
        (used, HeadEvent::NeedMore)
    }

    /// The complete head (after [`HeadEvent::Complete`]).
    pub(crate) fn head(&self) -> &[u8] {
        match self.phase {
            Phase::Complete { end } => self.buf.get(self.start..end).unwrap_or_default(),
            _ => &[],
        }
    }

    /// Stream position of the head's first byte.
    pub(crate) fn head_offset(&self) -> u64 {
        self.buf_offset.saturating_add(len_u64(self.start))
    }

    /// Kernel time of the head's first byte.
    pub(crate) fn head_ts(&self) -> u64 {
        self.start_ts
    }

    /// The complete head was taken; the next message is due.
    pub(crate) fn finish_head(&mut self) {
        self.clear();
        self.phase = Phase::Idle;
    }

    /// The complete head could not be used: drop it and look for the next message.
    pub(crate) fn drop_head(&mut self) {
        self.discarded = self
            .discarded
            .saturating_add(len_u64(self.buf.len() - self.start));
        self.clear();
        self.phase = Phase::Seeking;
    }

    /// Sync was lost elsewhere (in a body): look for the next message.
    pub(crate) fn resync(&mut self) {
        self.drop_head();
    }

    /// Checks the start line being read on what has arrived of it. Between checks a line may
    /// have become invalid unnoticed (checks run at doubling lengths); before anything is
    /// decided from the line's state (a hole, the end of the stream) it is checked, so the
    /// decision does not depend on how the stream was cut. Returns the error to report, if
    /// the line began where a message was due and is refused.
    pub(crate) fn settle(&mut self) -> Option<ParseError> {
        let Phase::StartLine { origin, .. } = self.phase else {
            return None;
        };
        let error = self.check_start_line(self.start).err()?;
        match self.refuse_start_line(origin, error) {
            Some(HeadEvent::Failed(error)) => Some(error),
            _ => None,
        }
    }

    /// A hole in the stream (call [`settle`](Self::settle) first). Returns where it cost the
    /// reader its place, if it did; either way the reader now looks for the next message.
    pub(crate) fn gap(&mut self) -> Option<SyncLoss> {
        let loss = match self.phase {
            Phase::Idle => Some(SyncLoss::BetweenMessages),
            Phase::StartLine {
                origin: Origin::Boundary,
                ..
            }
            | Phase::Fields { .. }
            | Phase::Complete { .. } => Some(SyncLoss::InHead),
            Phase::Seeking
            | Phase::StartLine {
                origin: Origin::Resync,
                ..
            } => None,
        };
        self.drop_head();
        loss
    }

    /// The stream ended (call [`settle`](Self::settle) first). Returns an error if a head was
    /// cut short.
    pub(crate) fn end(&mut self) -> Option<ParseError> {
        let cut_short = matches!(
            self.phase,
            Phase::StartLine {
                origin: Origin::Boundary,
                ..
            } | Phase::Fields { .. }
        );
        self.drop_head();
        cut_short.then_some(ParseError::EndedInHead)
    }

    /// Bytes held that belong to no message yet.
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Bytes dropped so far while seeking, and as heads that could not be used.
    pub(crate) fn discarded(&self) -> u64 {
        self.discarded
    }

    fn clear(&mut self) {
        self.buf_offset = self.buf_offset.saturating_add(len_u64(self.buf.len()));
        self.buf.clear();
        self.buf.shrink_to(RETAINED_CAPACITY);
        self.start = 0;
        self.arrivals.runs.clear();
    }

    /// Begins a head at `offset`, with an empty buffer.
    fn begin(&mut self, offset: u64, ts: u64, origin: Origin) {
        self.buf.clear();
        self.buf_offset = offset;
        self.start = 0;
        self.start_ts = ts;
        self.arrivals.reset(offset, ts);
        self.phase = Phase::StartLine {
            origin,
            check: Some(self.new_check()),
        };
    }

    /// Appends bytes of the head being read.
    fn append(&mut self, bytes: &[u8], ts: u64) {
        self.compact();
        let end = self.position_of(self.buf.len());
        self.arrivals.record(end, ts, self.buf_offset);
        self.buf.extend_from_slice(bytes);
    }

    /// Stream position of `buf[index]`.
    fn position_of(&self, index: usize) -> u64 {
        self.buf_offset.saturating_add(len_u64(index))
    }

    /// Drops the bytes before the head being read. `start` only moves when a candidate is
    /// refused, so this moves a head's bytes at most once per refused candidate.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.buf_offset = self.buf_offset.saturating_add(len_u64(self.start));
            self.start = 0;
        }
    }

    /// Bytes the head being read may still grow by.
    fn room(&self) -> usize {
        self.max_head_bytes
            .saturating_sub(self.buf.len() - self.start)
    }

    fn skip_empty_lines(&mut self, rest: &[u8], ts: u64, offset: u64) -> Step {
        let skipped = rest
            .iter()
            .take_while(|&&byte| byte == b'\r' || byte == b'\n')
            .count();
        if skipped < rest.len() {
            self.begin(
                offset.saturating_add(len_u64(skipped)),
                ts,
                Origin::Boundary,
            );
        }
        (skipped, None)
    }

    fn seek(&mut self, rest: &[u8], ts: u64, offset: u64) -> Step {
        // A candidate may begin in the bytes kept from before and end in `rest`.
        if !self.buf.is_empty() {
            let kept = self.buf.len();
            let mut joined = [0u8; 2 * MAX_START_PATTERN];
            let more = rest.len().min(MAX_START_PATTERN);
            joined[..kept].copy_from_slice(&self.buf);
            joined[kept..kept + more].copy_from_slice(&rest[..more]);
            if let Some(at) = find_start(self.kind, &joined[..kept + more]).filter(|&at| at < kept)
            {
                self.discarded = self.discarded.saturating_add(len_u64(at));
                self.start = at;
                self.start_ts = self.arrivals.time_of(self.position_of(at));
                // The kept bytes from `at` are the start of a pattern, which the check accepts.
                let mut check = self.new_check();
                let refused = check.feed(&self.buf[at..]).is_some();
                self.phase = Phase::StartLine {
                    origin: Origin::Resync,
                    check: (!refused).then_some(check),
                };
                return (0, None);
            }
        }
        if let Some(at) = find_start(self.kind, rest) {
            self.discarded = self.discarded.saturating_add(len_u64(self.buf.len() + at));
            self.begin(offset.saturating_add(len_u64(at)), ts, Origin::Resync);
            return (at, None);
        }
        self.keep_possible_start(rest, ts, offset);
        (rest.len(), None)
    }

    /// No candidate in the kept bytes and `rest`: keep only their last bytes, which may begin
    /// one, and drop the others.
    fn keep_possible_start(&mut self, rest: &[u8], ts: u64, offset: u64) {
        let keep = MAX_START_PATTERN - 1;
        let dropped = if rest.len() >= keep {
            let tail_from = rest.len() - keep;
            let dropped = self.buf.len() + tail_from;
            self.buf.clear();
            self.buf.extend_from_slice(&rest[tail_from..]);
            self.buf_offset = offset.saturating_add(len_u64(tail_from));
            self.arrivals.reset(self.buf_offset, ts);
            dropped
        } else {
            if self.buf.is_empty() {
                self.buf_offset = offset;
            }
            let end = self.position_of(self.buf.len());
            self.arrivals.record(end, ts, self.buf_offset);
            self.buf.extend_from_slice(rest);
            let excess = self.buf.len().saturating_sub(keep);
            self.buf.drain(..excess);
            self.buf_offset = self.buf_offset.saturating_add(len_u64(excess));
            excess
        };
        self.discarded = self.discarded.saturating_add(len_u64(dropped));
    }

    fn read_start_line(
        &mut self,
        rest: &[u8],
        ts: u64,
        origin: Origin,
        mut check: Option<StartLineCheck>,
    ) -> Step {
        let window = &rest[..rest.len().min(self.room())];
        let (taken, line_done) = match memchr(b'\n', window) {
            Some(at) => (at + 1, true),
            None => (window.len(), false),
        };
        let piece = &window[..taken];
        self.append(piece, ts);
        // A line that has ended goes to httparse whatever the quick check would say, and the
        // check is not needed after it: only a line still arriving is fed to it.
        let refused = !line_done && check.as_mut().and_then(|check| check.feed(piece)).is_some();
        let too_large = !line_done && self.buf.len() - self.start >= self.max_head_bytes;
        if refused || line_done || too_large {
            if let Err(error) = self.check_start_line(self.start) {
                return (taken, self.refuse_start_line(origin, error));
            }
            if refused {
                // The quick check is stricter than httparse here: leave the line to httparse.
                check = None;
            }
        }
        if too_large {
            return (taken, self.refuse_oversized(origin));
        }
        self.phase = if line_done {
            Phase::Fields {
                scan: HeadEndScan::AfterLineEnd,
            }
        } else {
            Phase::StartLine { origin, check }
        };
        (taken, None)
    }

    /// A fresh byte-by-byte check for this reader's start lines.
    fn new_check(&self) -> StartLineCheck {
        match self.kind {
            MessageKind::Request => StartLineCheck::request(),
            MessageKind::Response => StartLineCheck::response(),
        }
    }

    fn read_fields(&mut self, rest: &[u8], ts: u64, mut scan: HeadEndScan) -> Step {
        let window = &rest[..rest.len().min(self.room())];
        match scan.find_end(window) {
            Some(end) => {
                self.append(&window[..end], ts);
                self.phase = Phase::Complete {
                    end: self.buf.len(),
                };
                (end, Some(HeadEvent::Complete))
            }
            None => {
                self.append(window, ts);
                self.phase = Phase::Fields { scan };
                if self.room() == 0 {
                    // A start line was accepted, so this looked like a real message: report it.
                    return (window.len(), self.refuse_oversized(Origin::Boundary));
                }
                (window.len(), None)
            }
        }
    }

    /// Checks what has arrived of the start line beginning at `buf[from]`.
    fn check_start_line(&self, from: usize) -> Result<(), httparse::Error> {
        let line = self.buf.get(from..).unwrap_or_default();
        // No field slots: the check only ever sees the start line, and a field would not fit.
        let mut no_fields = [];
        let parsed = match self.kind {
            MessageKind::Request => self
                .config
                .parse_request(&mut httparse::Request::new(&mut no_fields), line),
            MessageKind::Response => self
                .config
                .parse_response(&mut httparse::Response::new(&mut no_fields), line),
        };
        parsed.map(drop)
    }

    /// A head grew past the limit: drop it whole (a valid start line followed by 64 KiB without
    /// an empty line is not worth searching for candidates) and look for the next message.
    fn refuse_oversized(&mut self, origin: Origin) -> Option<HeadEvent> {
        self.drop_head();
        (origin == Origin::Boundary).then_some(HeadEvent::Failed(ParseError::HeadTooLarge {
            limit: self.max_head_bytes,
        }))
    }

    /// A start line is not HTTP. Looks for the next candidate in the bytes after its first
    /// byte, which are all held (the reader never reads past a start line's end before
    /// accepting it), and carries on from there.
    fn refuse_start_line(&mut self, origin: Origin, error: httparse::Error) -> Option<HeadEvent> {
        let mut from = self.start + 1;
        loop {
            let Some(found) = find_start(self.kind, self.buf.get(from..).unwrap_or_default())
            else {
                // No candidate: keep only the bytes that may begin one.
                let keep_from = from.max(self.buf.len().saturating_sub(MAX_START_PATTERN - 1));
                self.discarded = self
                    .discarded
                    .saturating_add(len_u64(keep_from - self.start));
                self.start = keep_from;
                self.compact();
                self.phase = Phase::Seeking;
                break;
            };
            let candidate = from + found;
            self.discarded = self
                .discarded
                .saturating_add(len_u64(candidate - self.start));
            self.start = candidate;
            self.start_ts = self.arrivals.time_of(self.position_of(candidate));
            // Judge the candidate on what is held of its line, as if it had just arrived.
            let mut check = self.new_check();
            let refused = check.feed(&self.buf[candidate..]).is_some();
            let line_done = self.buf.last() == Some(&b'\n');
            if (refused || line_done) && self.check_start_line(candidate).is_err() {
                from = candidate + 1;
                continue;
            }
            self.phase = if line_done {
                Phase::Fields {
                    scan: HeadEndScan::AfterLineEnd,
                }
            } else {
                Phase::StartLine {
                    origin: Origin::Resync,
                    check: (!refused).then_some(check),
                }
            };
            break;
        }
        (origin == Origin::Boundary).then_some(HeadEvent::Failed(ParseError::InvalidHead(error)))
    }
}

/// When the bytes a reader holds arrived: one entry per run of bytes that came at one time,
/// by stream position, oldest first. Runs wholly before the bytes still held are forgotten as
/// new ones come. Past [`MAX_ARRIVAL_RUNS`] the two oldest merge (the later bytes take the
/// earlier time), which only a start line spread over more calls than that can notice.
#[derive(Debug, Default)]
struct Arrivals {
    /// (stream position of a run's first byte, its time).
    runs: Vec<(u64, u64)>,
}

impl Arrivals {
    /// Only bytes from `position` on, which arrived at `ts`, are held.
    fn reset(&mut self, position: u64, ts: u64) {
        self.runs.clear();
        self.runs.push((position, ts));
    }

    /// The bytes from `position` on arrived at `ts`; those before `held_from` are gone.
    fn record(&mut self, position: u64, ts: u64, held_from: u64) {
        let gone = self
            .runs
            .windows(2)
            .take_while(|pair| pair[1].0 <= held_from)
            .count();
        self.runs.drain(..gone);
        if self.runs.last().is_some_and(|&(_, last_ts)| last_ts == ts) {
            return;
        }
        if self.runs.len() >= MAX_ARRIVAL_RUNS {
            self.runs.remove(1);
        }
        self.runs.push((position, ts));
    }

    /// When the byte at `position` arrived.
    fn time_of(&self, position: u64) -> u64 {
        self.runs
            .iter()
            .rev()
            .find(|&&(start, _)| start <= position)
            .or(self.runs.first())
            .map_or(0, |&(_, ts)| ts)
    }
}

/// What a phase did with the bytes it was given: how many it took, and whether that is news.
type Step = (usize, Option<HeadEvent>);

/// Looks for the empty line that ends a head, one segment at a time: a line end followed by
/// another line end, each `\n` or `\r\n`, as `httparse` accepts them. It remembers the last
/// bytes it saw, so a terminator split across segments is found without looking back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HeadEndScan {
    /// Inside a line.
    InLine,
    /// Just after a `\n`.
    AfterLineEnd,
    /// After a `\n` and a `\r`.
    AfterLineEndCr,
}

impl HeadEndScan {
    /// The index just past the head's end in `bytes`, if it is there.
    fn find_end(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut at = 0;
        while let Some(&byte) = bytes.get(at) {
            match (*self, byte) {
                (HeadEndScan::InLine, _) => match memchr(b'\n', &bytes[at..]) {
                    Some(line_end) => {
                        at += line_end + 1;
                        *self = HeadEndScan::AfterLineEnd;
                    }
                    None => return None,
                },
                (HeadEndScan::AfterLineEnd | HeadEndScan::AfterLineEndCr, b'\n') => {
                    return Some(at + 1);
                }
                (HeadEndScan::AfterLineEnd, b'\r') => {
                    at += 1;
                    *self = HeadEndScan::AfterLineEndCr;
                }
                (HeadEndScan::AfterLineEnd | HeadEndScan::AfterLineEndCr, _) => {
                    // Not an empty line; look at this byte again as part of a line.
                    *self = HeadEndScan::InLine;
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(kind: MessageKind) -> HeadReader {
        HeadReader::new(kind, 1024)
    }

    /// Pushes `pieces` one after the other; returns the head bytes and the events seen.
    fn feed(reader: &mut HeadReader, pieces: &[&[u8]]) -> (Vec<u8>, Vec<HeadEvent>) {
        let mut events = Vec::new();
        let mut head = Vec::new();
        let mut offset = 0;
        for piece in pieces {
            let mut used = 0;
            while used < piece.len() {
                let (taken, event) = reader.push(&piece[used..], 7, offset);
                used += taken;
                offset += len_u64(taken);
                if event == HeadEvent::Complete {
                    head = reader.head().to_vec();
                    reader.finish_head();
                }
                if event != HeadEvent::NeedMore {
                    events.push(event);
                }
            }
        }
        (head, events)
    }

    #[test]
    fn the_head_end_is_found_across_segments_without_looking_back() {
        let mut scan = HeadEndScan::InLine;
        assert_eq!(scan.find_end(b"Host: a\r"), None);
        assert_eq!(scan.find_end(b"\n"), None);
        assert_eq!(scan.find_end(b"\r"), None);
        assert_eq!(scan.find_end(b"\nbody"), Some(1));

        let mut scan = HeadEndScan::InLine;
        assert_eq!(scan.find_end(b"a\n\nb"), Some(3));
        let mut scan = HeadEndScan::AfterLineEnd;
        assert_eq!(scan.find_end(b"\r\r\n\r\n"), Some(5));
    }

    #[test]
    fn a_head_split_anywhere_is_the_same_head() {
        let whole: &[u8] = b"\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n";
        for split in 0..=whole.len() {
            let mut reader = reader(MessageKind::Request);
            let (head, events) = feed(&mut reader, &[&whole[..split], &whole[split..]]);
            assert_eq!(head, &whole[2..], "split at {split}");
            assert_eq!(events, [HeadEvent::Complete]);
        }
    }

    #[test]
    fn junk_where_a_head_was_due_is_refused_early_and_skipped() {
        let mut reader = reader(MessageKind::Request);
        let (head, events) = feed(
            &mut reader,
            &[b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 junk GET /x HTTP/1.1\r\n\r\n"],
        );
        assert_eq!(head, b"GET /x HTTP/1.1\r\n\r\n");
        assert!(matches!(
            events[..],
            [
                HeadEvent::Failed(ParseError::InvalidHead(_)),
                HeadEvent::Complete
            ]
        ));
    }

    #[test]
    fn junk_without_a_line_end_is_refused_as_it_arrives() {
        // Only the byte-by-byte check can refuse these: no line end comes for httparse.
        for junk in [
            &b"\x16\x03\x01\x02\x00\x01"[..],
            b"GET /a HTTP/2",
            b"HTTP/1.1 2x",
        ] {
            let kind = if junk.starts_with(b"HTTP") {
                MessageKind::Response
            } else {
                MessageKind::Request
            };
            let (_, events) = feed(&mut reader(kind), &[junk]);
            assert!(
                matches!(events[..], [HeadEvent::Failed(ParseError::InvalidHead(_))]),
                "{junk:?}: {events:?}"
            );
        }
    }

    #[test]
    fn a_refused_candidate_is_dropped_quietly() {
        let mut reader = reader(MessageKind::Response);
        reader.resync();
        let (head, events) = feed(
            &mut reader,
            &[b"see HTTP/1.1 spec; HTTP/1.0 404 Not Found\r\n\r\n"],
        );
        assert_eq!(head, b"HTTP/1.0 404 Not Found\r\n\r\n");
        assert_eq!(events, [HeadEvent::Complete]);
    }

    #[test]
    fn a_candidate_split_across_segments_is_found() {
        let stream: &[u8] = b"\x00\x01OPTIONS * HTTP/1.1\r\n\r\n";
        for split in 0..=stream.len() {
            let mut reader = reader(MessageKind::Request);
            reader.resync();
            let (head, events) = feed(&mut reader, &[&stream[..split], &stream[split..]]);
            assert_eq!(head, &stream[2..], "split at {split}");
            assert_eq!(events, [HeadEvent::Complete]);
            assert_eq!(reader.discarded(), 2);
        }
    }

    #[test]
    fn a_head_without_end_is_too_large() {
        let mut reader = reader(MessageKind::Request);
        let mut stream = b"GET / HTTP/1.1\r\n".to_vec();
        stream.extend(std::iter::repeat_n(b'a', 2000));
        let (_, events) = feed(&mut reader, &[&stream]);
        assert_eq!(
            events,
            [HeadEvent::Failed(ParseError::HeadTooLarge { limit: 1024 })]
        );
        assert!(reader.buffered() < MAX_START_PATTERN);
    }

    #[test]
    fn a_gap_between_messages_or_in_a_head_loses_sync() {
        let mut reader = reader(MessageKind::Request);
        assert_eq!(reader.gap(), Some(SyncLoss::BetweenMessages));
        assert_eq!(reader.gap(), None);
        let mut reader = HeadReader::new(MessageKind::Request, 1024);
        feed(&mut reader, &[b"GET / HT"]);
        assert_eq!(reader.gap(), Some(SyncLoss::InHead));
    }

    #[test]
    fn a_start_line_is_refused_at_the_same_byte_however_it_is_cut() {
        let line: &[u8] = b"POSTTTTTTTTTTTTTTTTT\x01TTT GET / HTTP/1.1\r\n\r\n";
        let refused = HeadEvent::Failed(ParseError::InvalidHead(httparse::Error::Token));
        for split in 0..line.len() {
            let mut reader = reader(MessageKind::Request);
            let (head, events) = feed(&mut reader, &[&line[..split], &line[split..]]);
            assert_eq!(
                events,
                [refused.clone(), HeadEvent::Complete],
                "split at {split}"
            );
            assert_eq!(head, b"GET / HTTP/1.1\r\n\r\n");
        }
        let mut bytewise = reader(MessageKind::Request);
        let pieces: Vec<&[u8]> = line.chunks(1).collect();
        let (_, events) = feed(&mut bytewise, &pieces);
        assert_eq!(events, [refused, HeadEvent::Complete]);
    }

    #[test]
    fn what_httparse_alone_refuses_is_settled_before_a_hole_or_the_end() {
        // A target that is not UTF-8 passes the byte-by-byte check; httparse refuses it.
        let mut reader = reader(MessageKind::Request);
        let (_, events) = feed(&mut reader, &[b"GET /\xff "]);
        assert_eq!(events, []);
        assert_eq!(
            reader.settle(),
            Some(ParseError::InvalidHead(httparse::Error::Token))
        );
        assert_eq!(reader.end(), None);
    }

    #[test]
    fn a_head_found_after_a_refused_line_has_the_time_its_first_byte_arrived() {
        let first: &[u8] = b"CONNECT \x07GET /o";
        let second: &[u8] = b"ne HTTP/1.1\r\n\r\n";
        for split in 1..first.len() {
            let mut reader = reader(MessageKind::Request);
            let mut offset = 0;
            let mut complete_at = None;
            for (piece, ts) in [(&first[..split], 1), (&first[split..], 1), (second, 3)] {
                let mut used = 0;
                while used < piece.len() {
                    let (taken, event) = reader.push(&piece[used..], ts, offset);
                    used += taken;
                    offset += len_u64(taken);
                    if event == HeadEvent::Complete {
                        complete_at = Some((reader.head_offset(), reader.head_ts()));
                        reader.finish_head();
                    }
                }
            }
            assert_eq!(complete_at, Some((9, 1)), "split at {split}");
        }
    }

    #[test]
    fn arrival_times_are_kept_by_run_and_bounded() {
        let mut arrivals = Arrivals::default();
        arrivals.reset(100, 1);
        arrivals.record(110, 1, 100);
        arrivals.record(120, 2, 100);
        assert_eq!(arrivals.runs, [(100, 1), (120, 2)]);
        assert_eq!((arrivals.time_of(119), arrivals.time_of(120)), (1, 2));
        arrivals.record(130, 3, 125);
        assert_eq!(arrivals.runs, [(120, 2), (130, 3)]);
        for ts in 4..200 {
            arrivals.record(ts * 10, ts, 0);
        }
        assert_eq!(arrivals.runs.len(), MAX_ARRIVAL_RUNS);
    }

    #[test]
    fn a_stream_ending_inside_a_head_is_reported() {
        let mut reader = reader(MessageKind::Response);
        feed(&mut reader, &[b"HTTP/1.1 200 OK\r\nA: b"]);
        assert_eq!(reader.end(), Some(ParseError::EndedInHead));
        let mut reader = HeadReader::new(MessageKind::Response, 1024);
        feed(&mut reader, &[b"\r\n"]);
        assert_eq!(reader.end(), None);
    }
}
