//! Host-local connections, shipped at one end: the bytes a writer shipped, kept for its reader.
//!
//! Both ends of a connection on this host move the same bytes, so the kernel ships them once:
//! the writer's data events carry `kept_for_peer`, and the reader's read of them comes as an
//! [`Echo`] without payload, naming the writer. The writer's egress position is the reader's
//! ingress position (both ends are tracked from their first byte), so the reader's bytes are the
//! writer's at the same positions. This stage keeps them from the writer's event until the
//! reader's echo takes them, and gives the echo back as the data event the reader would have
//! shipped: everything after it sees each end's stream as before.
//!
//! Bytes the writer's own parse will pass over unread (body past the capture limit, as it says
//! before each chunk) are kept as a length only: the reader's parse, at the same place in the
//! same bytes, passes over them too, so its stream gets them as [`Segment::Unread`]. Most of a
//! large response is never copied here.
//!
//! [`Segment::Unread`]: crate::protocol::Segment::Unread
//!
//! The kernel echoes only bytes it saw shipped whole, after their events went out, so the
//! bytes are here first. What is not (a writer's event lost after all, bytes held past the
//! limits below) is counted, and the reader's stream gets a gap, as for any lost event.

use std::{collections::VecDeque, iter::Peekable, ops::Range};

use bytes::{Buf, BytesMut};
use observer_common::{
    limits::{ECHO_RETAINED_BYTES, ECHO_WINDOW_BYTES},
    ConnId,
};
use serde::Serialize;

use crate::{
    conn::IdMap,
    events::{Data, Echo},
};

/// Bytes kept for readers across all writers. Readers trail their writers by about a response,
/// so this is reached only when many readers stop reading; past it new bytes are not kept (their
/// echoes become counted gaps) rather than memory growing with the readers' backlog.
pub const MAX_KEPT_BYTES: u64 = 64 * 1024 * 1024;

/// How long kept bytes wait for their reader. A reader reads what it is sent within moments; a
/// reader that never does (it exited, or the echo was lost) must not hold them for good.
pub const MAX_KEPT_AGE_NS: u64 = 10_000_000_000;

/// How long a writer with nothing kept keeps its buffer: a busy connection's next response
/// reuses it (growing a fresh one for every response cost more than copying into it), an idle
/// connection's goes.
pub const IDLE_BUFFER_NS: u64 = 1_000_000_000;

/// How long a closed writer's kept bytes wait for echoes. The kernel echoes a read only while
/// the writer's connection is tracked, and it stops being tracked as it closes: a read after
/// that ships its own bytes. Only an echo whose program found the writer just before the close
/// can still come, within moments; what the writer still holds after this is for no one.
pub const CLOSED_WRITER_WAIT_NS: u64 = 100_000_000;

/// How often [`KeptStreams::tick`] looks at every writer. It is called once per read of the
/// ring, up to thousands of times a second at saturation, and with many short connections it
/// holds tens of thousands of writers: looking at each every time took more than half the
/// agent's time. Its deadlines (above) are a second and more, so a tenth of one late is soon.
pub const SWEEP_INTERVAL_NS: u64 = 100_000_000;

/// Stretches its reader will pass over unread shorter than this are kept as bytes anyway:
/// copying a few KiB costs about what a run's bookkeeping does, and it bounds a writer's runs
/// to a few hundred (its retained span over this).
pub const MIN_UNREAD_RUN_BYTES: u64 = 4096;

const _: () = assert!(ECHO_RETAINED_BYTES >= 2 * ECHO_WINDOW_BYTES);

/// What this stage counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EchoStats {
    /// Bytes readers took from their writers' kept bytes.
    pub bytes_echoed: u64,
    /// Of those, bytes the readers' parses pass over unread (body past the capture limit):
    /// only their length was kept.
    pub bytes_unread: u64,
    /// Bytes echoes named that were not kept (a lost writer event, or dropped below).
    pub bytes_missing: u64,
    /// Kept bytes dropped: past a writer's share, past the total, or too old.
    pub bytes_dropped: u64,
    /// Kept bytes a writer still held when it closed, dropped once its last echoes could have
    /// come: its reader reads them after the close, when the kernel no longer echoes but ships
    /// them from the reader, so nothing is lost (see [`CLOSED_WRITER_WAIT_NS`]).
    pub bytes_left_at_close: u64,
    /// Writers with a buffer here now (holding bytes, or keeping the buffer for a next
    /// response): not a count but what the stage holds when the stats are taken.
    pub writers: u64,
}

/// A stretch of a writer's kept stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    len: u64,
    /// Its bytes are held; otherwise only its length is, since its reader's parse passes it
    /// over unread.
    held: bool,
}

/// One writer's kept egress stream, from stream position `start`.
struct Kept {
    start: u64,
    /// In stream order; neighbours differ in `held` (appending merges).
    runs: VecDeque<Run>,
    /// The held runs' bytes, in order.
    bytes: BytesMut,
    /// Stream bytes the runs cover.
    span: u64,
    /// Stream bytes at the front the last echo took: dropped at the next use, once the
    /// reader's stream has read them where they are.
    taken: u64,
    /// Kernel time of the newest bytes.
    last_ns: u64,
    /// Kernel time the writer's connection closed: no next response will reuse the buffer,
    /// and few echoes will come (see [`CLOSED_WRITER_WAIT_NS`]).
    closed_ns: Option<u64>,
}

impl Kept {
    fn new(start: u64) -> Kept {
        Kept {
            start,
            runs: VecDeque::new(),
            bytes: BytesMut::new(),
            span: 0,
            taken: 0,
            last_ns: 0,
            closed_ns: None,
        }
    }

    /// No overflow: `keep` takes only chunks whose end is a position.
    fn end(&self) -> u64 {
        self.start + self.span
    }

    /// Append `len` stream bytes: `bytes` if held, nothing otherwise.
    fn append(&mut self, len: u64, held: bool, bytes: &[u8]) {
        if len == 0 {
            return;
        }
        if held {
            self.bytes.extend_from_slice(bytes);
        }
        match self.runs.back_mut() {
            Some(last) if last.held == held => last.len += len,
            _ => self.runs.push_back(Run { len, held }),
        }
        self.span += len;
    }

    /// Held bytes among the first `n` stream bytes.
    fn held_within(&self, mut n: u64) -> u64 {
        let mut held = 0;
        for run in &self.runs {
            let part = run.len.min(n);
            if run.held {
                held += part;
            }
            n -= part;
            if n == 0 {
                break;
            }
        }
        held
    }

    /// Drop the first `n` stream bytes (at most `span`); returns how many of them were held.
    /// The buffer stays: a connection's next response reuses it.
    fn drop_front(&mut self, n: u64) -> u64 {
        let held = self.held_within(n);
        let mut left = n;
        while let Some(first) = self.runs.front_mut() {
            if left == 0 {
                break;
            }
            let part = first.len.min(left);
            first.len -= part;
            left -= part;
            if first.len == 0 {
                self.runs.pop_front();
            }
        }
        self.bytes.advance(held as usize);
        self.start += n - left;
        self.span -= n - left;
        held
    }

    /// Drop what the last echo took.
    fn settle(&mut self) {
        let taken = std::mem::take(&mut self.taken);
        self.drop_front(taken);
    }

    /// Start over at `start`: what was kept no longer lines up with what comes. Returns the
    /// stream bytes and the held bytes dropped.
    fn restart(&mut self, start: u64) -> (u64, u64) {
        let span = self.span;
        let held = self.drop_front(span);
        self.start = start;
        (span, held)
    }
}

/// Part of an echoed read, in stream order: held bytes at `position`, then `unread` stream
/// bytes its parse passes over.
#[derive(Debug, PartialEq, Eq)]
pub struct Piece<'a> {
    pub position: u64,
    pub bytes: &'a [u8],
    pub unread: u64,
}

/// The pieces of one echoed read, read where they are kept.
pub struct Echoed<'a> {
    runs: Peekable<std::collections::vec_deque::Iter<'a, Run>>,
    bytes: &'a [u8],
    position: u64,
    left: u64,
}

impl<'a> Echoed<'a> {
    /// Up to `left` stream bytes from the next run of this kind.
    fn next_run(&mut self, held: bool) -> u64 {
        let Some(run) = self.runs.next_if(|run| run.held == held) else {
            return 0;
        };
        let len = run.len.min(self.left);
        self.left -= len;
        len
    }
}

impl<'a> Iterator for Echoed<'a> {
    type Item = Piece<'a>;

    fn next(&mut self) -> Option<Piece<'a>> {
        if self.left == 0 {
            return None;
        }
        let held = self.next_run(true);
        let (bytes, rest) = self.bytes.split_at(held as usize);
        self.bytes = rest;
        let unread = if self.left > 0 {
            self.next_run(false)
        } else {
            0
        };
        if held == 0 && unread == 0 {
            return None;
        }
        let piece = Piece {
            position: self.position,
            bytes,
            unread,
        };
        self.position += held + unread;
        Some(piece)
    }
}

#[derive(Default)]
pub struct KeptStreams {
    writers: IdMap<ConnId, Kept>,
    /// Bytes held across all writers, not counting what echoes took.
    held: u64,
    stats: EchoStats,
    /// Kernel time before which [`KeptStreams::tick`] does not look at the writers again.
    next_sweep_ns: u64,
}

impl KeptStreams {
    /// Keep a writer's chunk for its reader, if the kernel marked it. Of the stream positions
    /// `unread` names (where the writer's own parse will pass its bytes over unread, and so
    /// will its reader's), only the length is kept.
    pub fn keep(&mut self, data: &Data<'_>, unread: Option<Range<u64>>) {
        let len = data.payload.len() as u64;
        // Positions come from events: a chunk ending past the largest position is not kept.
        let Some(to) = data.position.checked_add(len) else {
            return;
        };
        if !data.kept_for_peer || len == 0 {
            return;
        }
        let from = data.position;
        let unread = unread
            .map(|range| range.start.clamp(from, to)..range.end.clamp(from, to))
            .filter(|range| range.end - range.start >= MIN_UNREAD_RUN_BYTES)
            .unwrap_or(to..to);
        let held = len - (unread.end - unread.start);
        let kept = self
            .writers
            .entry(data.conn)
            .or_insert_with(|| Kept::new(from));
        kept.settle();
        if kept.end() != from {
            // A gap (a lost event, bytes the writer did not mark).
            let (span, dropped) = kept.restart(from);
            self.held -= dropped;
            self.stats.bytes_dropped += span;
        }
        if self.held + held > MAX_KEPT_BYTES {
            // Not kept, and what was before it no longer leads anywhere.
            let (span, dropped) = kept.restart(to);
            self.held -= dropped;
            self.stats.bytes_dropped += span + len;
            return;
        }
        let offset = |position: u64| (position - from) as usize;
        let payload = data.payload;
        kept.append(unread.start - from, true, &payload[..offset(unread.start)]);
        kept.append(unread.end - unread.start, false, &[]);
        kept.append(to - unread.end, true, &payload[offset(unread.end)..]);
        kept.last_ns = data.timestamp_ns;
        self.held += held;
        let excess = kept.span.saturating_sub(ECHO_RETAINED_BYTES);
        if excess > 0 {
            self.held -= kept.drop_front(excess);
            self.stats.bytes_dropped += excess;
        }
    }

    /// The bytes an echo names, from its writer's kept stream; they and everything before them
    /// are dropped at the writer's next use, since a reader reads its stream in order. `None`
    /// (counted) when they are not all here.
    pub fn take(&mut self, echo: &Echo) -> Option<Echoed<'_>> {
        let size = u64::from(echo.read.call_size);
        let position = echo.read.position;
        let Some(kept) = self.writers.get_mut(&echo.peer) else {
            self.stats.bytes_missing += size;
            return None;
        };
        kept.settle();
        if position < kept.start
            || position
                .checked_add(size)
                .is_none_or(|end| end > kept.end())
        {
            self.stats.bytes_missing += size;
            return None;
        }
        let skipped = kept.drop_front(position - kept.start);
        let held = kept.held_within(size);
        kept.taken = size;
        self.held -= skipped + held;
        self.stats.bytes_echoed += size;
        self.stats.bytes_unread += size - held;
        Some(Echoed {
            runs: kept.runs.iter().peekable(),
            bytes: &kept.bytes[..held as usize],
            position,
            left: size,
        })
    }

    /// A writer's connection closed at `now_ns`: its buffer goes at once if it holds nothing,
    /// otherwise once its last echoes have had time to come, rather than after the wait for a
    /// next response or for a reader. Short connections close thousands of times a second, and
    /// a response read after its writer closed is shipped by its reader: its writer's copy had
    /// waited here for ten seconds, until the total held was full and bytes that would have been
    /// echoed were no longer kept.
    pub fn closed(&mut self, conn: ConnId, now_ns: u64) {
        let Some(kept) = self.writers.get_mut(&conn) else {
            return;
        };
        kept.settle();
        if kept.span == 0 {
            self.writers.remove(&conn);
        } else {
            kept.closed_ns = Some(now_ns);
        }
    }

    /// Drop bytes no reader took in time (closed writers' sooner), and the buffers of writers
    /// idle with nothing kept (an idle connection holds no memory here) or closed; at most once
    /// per [`SWEEP_INTERVAL_NS`].
    pub fn tick(&mut self, now_ns: u64) {
        if now_ns < self.next_sweep_ns {
            return;
        }
        self.next_sweep_ns = now_ns.saturating_add(SWEEP_INTERVAL_NS);
        let (held, stats) = (&mut self.held, &mut self.stats);
        self.writers.retain(|_, kept| {
            kept.settle();
            let idle_ns = now_ns.saturating_sub(kept.last_ns);
            // How long its bytes may wait here, and what they count as when they no longer may.
            let (waited_out, let_go) = match kept.closed_ns {
                Some(closed_ns) => (
                    now_ns.saturating_sub(closed_ns) >= CLOSED_WRITER_WAIT_NS,
                    &mut stats.bytes_left_at_close,
                ),
                None => (idle_ns >= MAX_KEPT_AGE_NS, &mut stats.bytes_dropped),
            };
            if waited_out {
                *held -= kept.bytes.len() as u64;
                *let_go += kept.span;
                return false;
            }
            kept.span > 0 || (kept.closed_ns.is_none() && idle_ns < IDLE_BUFFER_NS)
        });
    }

    /// Bytes held now.
    pub fn held(&self) -> u64 {
        self.held
    }

    pub fn stats(&self) -> EchoStats {
        EchoStats {
            writers: self.writers.len() as u64,
            ..self.stats.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use observer_common::Direction;

    use super::*;

    const WRITER: ConnId = ConnId {
        tgid: 10,
        fd: 4,
        generation: 1,
    };
    const READER: ConnId = ConnId {
        tgid: 20,
        fd: 5,
        generation: 2,
    };

    fn written(position: u64, payload: &[u8], kept: bool) -> Data<'_> {
        Data {
            kept_for_peer: kept,
            ..Data::whole_call(WRITER, Direction::Egress, position, payload, 1_000)
        }
    }

    /// The held bytes of an echoed read, which must have no unread piece.
    fn held_bytes(taken: Option<Echoed<'_>>) -> Option<Vec<u8>> {
        let mut bytes = Vec::new();
        for piece in taken? {
            assert_eq!(piece.unread, 0, "{piece:?}");
            bytes.extend_from_slice(piece.bytes);
        }
        Some(bytes)
    }

    fn echo(position: u64, size: u32) -> Echo {
        Echo {
            read: Data {
                call_size: size,
                ..Data::whole_call(READER, Direction::Ingress, position, &[], 1_000)
            },
            peer: WRITER,
        }
    }

    #[test]
    fn a_reader_gets_its_writers_bytes_at_the_same_positions() {
        let mut kept = KeptStreams::default();
        kept.keep(&written(0, b"HTTP/1.1 200 OK\r\n", true), None);
        kept.keep(&written(17, b"\r\nbody", true), None);
        assert_eq!(
            held_bytes(kept.take(&echo(0, 10))),
            Some(b"HTTP/1.1 2".to_vec())
        );
        let rest = held_bytes(kept.take(&echo(10, 13))).expect("kept");
        assert_eq!(rest, b"00 OK\r\n\r\nbody");
        let data = echo(10, 13).with_payload(10, &rest);
        assert_eq!(
            (data.conn, data.position, data.payload),
            (READER, 10, &rest[..])
        );
        // All taken: nothing is held; the writer's buffer stays for its next bytes while it is
        // busy, and goes once it is idle.
        assert_eq!(kept.held(), 0);
        kept.tick(1_000 + IDLE_BUFFER_NS - 1);
        assert_eq!(kept.writers.len(), 1);
        kept.tick(1_000 + IDLE_BUFFER_NS - 1 + SWEEP_INTERVAL_NS);
        assert!(kept.writers.is_empty());
        assert_eq!(kept.stats().bytes_echoed, 23);
    }

    #[test]
    fn a_closed_writers_buffer_goes_once_its_reader_took_what_it_holds() {
        let mut kept = KeptStreams::default();
        kept.keep(&written(0, b"HTTP/1.1 200 OK\r\n\r\n", true), None);
        // Closed before its reader read: an echo racing the close still finds the bytes.
        kept.closed(WRITER, 2_000);
        kept.tick(2_000);
        assert_eq!(
            held_bytes(kept.take(&echo(0, 19))).as_deref(),
            Some(&b"HTTP/1.1 200 OK\r\n\r\n"[..])
        );
        // Then it goes at the next sweep, long before an open writer's idle buffer would.
        kept.tick(2_000 + SWEEP_INTERVAL_NS);
        assert!(kept.writers.is_empty());

        // Closed with nothing held: it goes at once.
        kept.keep(&written(0, b"abcd", true), None);
        assert!(held_bytes(kept.take(&echo(0, 4))).is_some());
        kept.closed(WRITER, 2_000);
        assert!(kept.writers.is_empty());
        assert_eq!(kept.held(), 0);
    }

    #[test]
    fn what_a_closed_writer_holds_waits_for_echoes_only_briefly() {
        let mut kept = KeptStreams::default();
        kept.keep(&written(0, b"never read as an echo", true), None);
        kept.closed(WRITER, 2_000);
        kept.tick(2_000 + CLOSED_WRITER_WAIT_NS - 1);
        assert_eq!(kept.held(), 21);
        kept.tick(2_000 + CLOSED_WRITER_WAIT_NS - 1 + SWEEP_INTERVAL_NS);
        assert_eq!(kept.held(), 0);
        assert!(kept.writers.is_empty());
        assert_eq!(kept.stats().bytes_left_at_close, 21);
        assert_eq!(kept.stats().bytes_dropped, 0);
    }

    #[test]
    fn writers_are_looked_at_once_per_sweep_interval() {
        let mut kept = KeptStreams::default();
        kept.keep(&written(0, b"abcd", true), None);
        assert!(held_bytes(kept.take(&echo(0, 4))).is_some());
        kept.tick(1_000 + IDLE_BUFFER_NS - 1);
        // Idle long enough now, but the last sweep was a moment ago.
        kept.tick(1_000 + IDLE_BUFFER_NS);
        assert_eq!(kept.writers.len(), 1);
        kept.tick(1_000 + IDLE_BUFFER_NS - 1 + SWEEP_INTERVAL_NS);
        assert!(kept.writers.is_empty());
    }

    #[test]
    fn bytes_that_were_not_kept_are_counted_missing() {
        let mut kept = KeptStreams::default();
        // Not marked: the kernel would not have echoed them.
        kept.keep(&written(0, b"abcd", false), None);
        assert!(held_bytes(kept.take(&echo(0, 4))).is_none());
        kept.keep(&written(4, b"efgh", true), None);
        // Before the kept run, past it, and straddling its end.
        assert!(held_bytes(kept.take(&echo(0, 4))).is_none());
        assert!(held_bytes(kept.take(&echo(8, 1))).is_none());
        assert!(held_bytes(kept.take(&echo(6, 4))).is_none());
        assert_eq!(kept.stats().bytes_missing, 13);
        // A read skipping some kept bytes (the reader shipped those itself) drops them too.
        assert_eq!(held_bytes(kept.take(&echo(6, 2))), Some(b"gh".to_vec()));
        assert_eq!(kept.held(), 0);
        // Positions at the end of the range do not overflow.
        kept.keep(&written(u64::MAX - 2, b"abcd", true), None);
        kept.keep(&written(u64::MAX - 4, b"abcd", true), None);
        assert!(held_bytes(kept.take(&echo(u64::MAX - 1, u32::MAX))).is_none());
        assert_eq!(
            held_bytes(kept.take(&echo(u64::MAX - 4, 4))).expect("kept"),
            b"abcd"
        );
    }

    #[test]
    fn a_gap_in_the_writers_stream_starts_a_new_run() {
        let mut kept = KeptStreams::default();
        kept.keep(&written(0, b"abcd", true), None);
        kept.keep(&written(10, b"klmn", true), None);
        assert!(held_bytes(kept.take(&echo(0, 4))).is_none());
        assert_eq!(held_bytes(kept.take(&echo(10, 4))), Some(b"klmn".to_vec()));
        assert_eq!(kept.stats().bytes_dropped, 4);
    }

    #[test]
    fn a_writer_keeps_at_most_its_share_and_old_bytes_expire() {
        let mut kept = KeptStreams::default();
        let chunk = vec![b'x'; 64 * 1024];
        let chunks = ECHO_RETAINED_BYTES / chunk.len() as u64 + 3;
        for i in 0..chunks {
            kept.keep(&written(i * chunk.len() as u64, &chunk, true), None);
        }
        assert_eq!(kept.held(), ECHO_RETAINED_BYTES);
        assert_eq!(kept.stats().bytes_dropped, 3 * chunk.len() as u64);
        // The oldest bytes went: the newest are still there.
        let end = chunks * chunk.len() as u64;
        assert!(held_bytes(kept.take(&echo(0, 1))).is_none());
        assert!(held_bytes(kept.take(&echo(end - 1, 1))).is_some());
        kept.keep(&written(end, b"late", true), None);
        kept.tick(1_000 + MAX_KEPT_AGE_NS - 1);
        assert_eq!(kept.held(), 4);
        kept.tick(1_000 + MAX_KEPT_AGE_NS - 1 + SWEEP_INTERVAL_NS);
        assert_eq!(kept.held(), 0);
        assert!(held_bytes(kept.take(&echo(end, 4))).is_none());
    }

    #[test]
    fn the_total_held_is_bounded() {
        let mut kept = KeptStreams::default();
        let chunk = vec![b'x'; 256 * 1024];
        let mut writer = WRITER;
        for _ in 0..(MAX_KEPT_BYTES / chunk.len() as u64 + 10) {
            writer.fd += 1;
            let data = Data {
                conn: writer,
                ..written(0, &chunk, true)
            };
            kept.keep(&data, None);
            assert!(kept.held() <= MAX_KEPT_BYTES);
        }
        assert_eq!(kept.held(), MAX_KEPT_BYTES);
        assert_eq!(kept.stats().bytes_dropped, 10 * chunk.len() as u64);
    }

    #[test]
    fn of_what_the_readers_parse_passes_over_unread_only_the_length_is_kept() {
        let mut kept = KeptStreams::default();
        let chunk: Vec<u8> = (0..3 * MIN_UNREAD_RUN_BYTES).map(|i| i as u8).collect();
        let len = chunk.len() as u64;
        let unread = MIN_UNREAD_RUN_BYTES..2 * MIN_UNREAD_RUN_BYTES;
        kept.keep(&written(0, &chunk, true), Some(unread.clone()));
        // The next chunk's unread stretch begins before it and runs past it: all of it.
        kept.keep(&written(len, &chunk, true), Some(0..u64::MAX));
        // Too short to be worth a run: kept as bytes.
        let short = len * 2 + 10..len * 2 + 10 + MIN_UNREAD_RUN_BYTES - 1;
        kept.keep(&written(2 * len, &chunk, true), Some(short));
        assert_eq!(kept.held(), 2 * MIN_UNREAD_RUN_BYTES + len);

        // A read from inside the first held stretch to inside the third chunk.
        let from = 10;
        let size = 2 * len + 5 - from;
        let pieces: Vec<Piece<'_>> = kept.take(&echo(from, size as u32)).expect("kept").collect();
        let expected = [
            Piece {
                position: from,
                bytes: &chunk[from as usize..unread.start as usize],
                unread: MIN_UNREAD_RUN_BYTES,
            },
            Piece {
                position: unread.end,
                bytes: &chunk[unread.end as usize..],
                unread: len,
            },
            Piece {
                position: 2 * len,
                bytes: &chunk[..5],
                unread: 0,
            },
        ];
        assert_eq!(pieces, expected);
        assert_eq!(kept.stats().bytes_unread, MIN_UNREAD_RUN_BYTES + len);
        assert_eq!(kept.stats().bytes_echoed, size);
        assert_eq!(kept.held(), len - 5);
        // The rest of the third chunk, at once: held bytes only.
        let rest = held_bytes(kept.take(&echo(2 * len + 5, (len - 5) as u32)));
        assert_eq!(rest.as_deref(), Some(&chunk[5..]));
        assert_eq!(kept.held(), 0);
    }

    #[test]
    fn a_writers_runs_are_bounded_by_its_share() {
        let mut kept = KeptStreams::default();
        let chunk = vec![b'x'; 2 * MIN_UNREAD_RUN_BYTES as usize];
        let len = chunk.len() as u64;
        // Alternating held and unread runs, far more than a writer may keep.
        for i in 0..4 * ECHO_RETAINED_BYTES / len {
            let at = i * len;
            kept.keep(&written(at, &chunk, true), Some(at + 1..at + len));
        }
        let writer = kept.writers.get(&WRITER).expect("kept");
        assert_eq!(writer.span, ECHO_RETAINED_BYTES);
        assert_eq!(writer.bytes.len() as u64, kept.held());
        assert_eq!(kept.held(), ECHO_RETAINED_BYTES / len);
        assert_eq!(writer.runs.len() as u64, 2 * ECHO_RETAINED_BYTES / len);
    }
}
