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
//! The kernel echoes only bytes it saw shipped whole, after their events went out, so the
//! bytes are here first. What is not (a writer's event lost after all, bytes held past the
//! limits below) is counted, and the reader's stream gets a gap, as for any lost event.

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

const _: () = assert!(ECHO_RETAINED_BYTES >= 2 * ECHO_WINDOW_BYTES);

/// What this stage counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EchoStats {
    /// Bytes readers took from their writers' kept bytes.
    pub bytes_echoed: u64,
    /// Bytes echoes named that were not kept (a lost writer event, or dropped below).
    pub bytes_missing: u64,
    /// Kept bytes dropped: past a writer's share, past the total, or too old.
    pub bytes_dropped: u64,
}

/// One writer's kept egress bytes: `bytes` starts at stream position `start`.
struct Kept {
    start: u64,
    bytes: BytesMut,
    /// Bytes at the front the last echo took: dropped at the next use, once the reader's stream
    /// has read them where they are.
    taken: usize,
    /// Kernel time of the newest bytes.
    last_ns: u64,
}

impl Kept {
    fn new(start: u64) -> Kept {
        Kept {
            start,
            bytes: BytesMut::new(),
            taken: 0,
            last_ns: 0,
        }
    }

    /// No overflow: `keep` takes only chunks whose end is a position.
    fn end(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }

    /// Drop the first `n` bytes. The buffer stays: a connection's next response reuses it.
    fn drop_front(&mut self, n: usize) {
        self.bytes.advance(n);
        self.start += n as u64;
    }

    /// Drop what the last echo took.
    fn settle(&mut self) {
        let taken = std::mem::take(&mut self.taken);
        self.drop_front(taken);
    }

    /// Start over at `start`: what was kept no longer lines up with what comes.
    fn restart(&mut self, start: u64) -> u64 {
        let dropped = self.bytes.len() as u64;
        self.bytes.clear();
        self.start = start;
        dropped
    }
}

#[derive(Default)]
pub struct KeptStreams {
    writers: IdMap<ConnId, Kept>,
    /// Bytes held across all writers, not counting what echoes took.
    held: u64,
    stats: EchoStats,
}

impl KeptStreams {
    /// Keep a writer's chunk for its reader, if the kernel marked it.
    pub fn keep(&mut self, data: &Data<'_>) {
        let len = data.payload.len() as u64;
        // Positions come from events: a chunk ending past the largest position is not kept.
        if !data.kept_for_peer || len == 0 || data.position.checked_add(len).is_none() {
            return;
        }
        let kept = self
            .writers
            .entry(data.conn)
            .or_insert_with(|| Kept::new(data.position));
        kept.settle();
        if kept.end() != data.position {
            // A gap (a lost event, bytes the writer did not mark).
            let dropped = kept.restart(data.position);
            self.held -= dropped;
            self.stats.bytes_dropped += dropped;
        }
        if self.held + len > MAX_KEPT_BYTES {
            // Not kept, and what was before it no longer leads anywhere.
            let dropped = kept.restart(data.position + len);
            self.held -= dropped;
            self.stats.bytes_dropped += dropped + len;
            return;
        }
        kept.bytes.extend_from_slice(data.payload);
        kept.last_ns = data.timestamp_ns;
        self.held += len;
        let excess = (kept.bytes.len() as u64).saturating_sub(ECHO_RETAINED_BYTES);
        if excess > 0 {
            kept.drop_front(excess as usize);
            self.held -= excess;
            self.stats.bytes_dropped += excess;
        }
    }

    /// The bytes an echo names, from its writer's kept bytes; they and everything before them
    /// are dropped at the writer's next use, since a reader reads its stream in order. `None`
    /// (counted) when they are not all here.
    pub fn take(&mut self, echo: &Echo) -> Option<&[u8]> {
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
        let skipped = position - kept.start;
        kept.drop_front(skipped as usize);
        kept.taken = size as usize;
        self.held -= skipped + size;
        self.stats.bytes_echoed += size;
        Some(&kept.bytes[..kept.taken])
    }

    /// Drop bytes no reader took in time, and the buffers of writers idle with nothing kept: an
    /// idle connection holds no memory here.
    pub fn tick(&mut self, now_ns: u64) {
        let (held, stats) = (&mut self.held, &mut self.stats);
        self.writers.retain(|_, kept| {
            kept.settle();
            let idle_ns = now_ns.saturating_sub(kept.last_ns);
            if idle_ns >= MAX_KEPT_AGE_NS {
                *held -= kept.bytes.len() as u64;
                stats.bytes_dropped += kept.bytes.len() as u64;
                return false;
            }
            !kept.bytes.is_empty() || idle_ns < IDLE_BUFFER_NS
        });
    }

    /// Bytes held now.
    pub fn held(&self) -> u64 {
        self.held
    }

    pub fn stats(&self) -> &EchoStats {
        &self.stats
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
        kept.keep(&written(0, b"HTTP/1.1 200 OK\r\n", true));
        kept.keep(&written(17, b"\r\nbody", true));
        assert_eq!(kept.take(&echo(0, 10)), Some(&b"HTTP/1.1 2"[..]));
        let rest = kept.take(&echo(10, 13)).expect("kept").to_vec();
        assert_eq!(rest, b"00 OK\r\n\r\nbody");
        let data = echo(10, 13).with_payload(&rest);
        assert_eq!(
            (data.conn, data.position, data.payload),
            (READER, 10, &rest[..])
        );
        // All taken: nothing is held; the writer's buffer stays for its next bytes while it is
        // busy, and goes once it is idle.
        assert_eq!(kept.held(), 0);
        kept.tick(1_000 + IDLE_BUFFER_NS - 1);
        assert_eq!(kept.writers.len(), 1);
        kept.tick(1_000 + IDLE_BUFFER_NS);
        assert!(kept.writers.is_empty());
        assert_eq!(kept.stats().bytes_echoed, 23);
    }

    #[test]
    fn bytes_that_were_not_kept_are_counted_missing() {
        let mut kept = KeptStreams::default();
        // Not marked: the kernel would not have echoed them.
        kept.keep(&written(0, b"abcd", false));
        assert!(kept.take(&echo(0, 4)).is_none());
        kept.keep(&written(4, b"efgh", true));
        // Before the kept run, past it, and straddling its end.
        assert!(kept.take(&echo(0, 4)).is_none());
        assert!(kept.take(&echo(8, 1)).is_none());
        assert!(kept.take(&echo(6, 4)).is_none());
        assert_eq!(kept.stats().bytes_missing, 13);
        // A read skipping some kept bytes (the reader shipped those itself) drops them too.
        assert_eq!(kept.take(&echo(6, 2)), Some(&b"gh"[..]));
        assert_eq!(kept.held(), 0);
        // Positions at the end of the range do not overflow.
        kept.keep(&written(u64::MAX - 2, b"abcd", true));
        kept.keep(&written(u64::MAX - 4, b"abcd", true));
        assert!(kept.take(&echo(u64::MAX - 1, u32::MAX)).is_none());
        assert_eq!(kept.take(&echo(u64::MAX - 4, 4)).expect("kept"), b"abcd");
    }

    #[test]
    fn a_gap_in_the_writers_stream_starts_a_new_run() {
        let mut kept = KeptStreams::default();
        kept.keep(&written(0, b"abcd", true));
        kept.keep(&written(10, b"klmn", true));
        assert!(kept.take(&echo(0, 4)).is_none());
        assert_eq!(kept.take(&echo(10, 4)), Some(&b"klmn"[..]));
        assert_eq!(kept.stats().bytes_dropped, 4);
    }

    #[test]
    fn a_writer_keeps_at_most_its_share_and_old_bytes_expire() {
        let mut kept = KeptStreams::default();
        let chunk = vec![b'x'; 64 * 1024];
        let chunks = ECHO_RETAINED_BYTES / chunk.len() as u64 + 3;
        for i in 0..chunks {
            kept.keep(&written(i * chunk.len() as u64, &chunk, true));
        }
        assert_eq!(kept.held(), ECHO_RETAINED_BYTES);
        assert_eq!(kept.stats().bytes_dropped, 3 * chunk.len() as u64);
        // The oldest bytes went: the newest are still there.
        let end = chunks * chunk.len() as u64;
        assert!(kept.take(&echo(0, 1)).is_none());
        assert!(kept.take(&echo(end - 1, 1)).is_some());
        kept.keep(&written(end, b"late", true));
        kept.tick(1_000 + MAX_KEPT_AGE_NS - 1);
        assert_eq!(kept.held(), 4);
        kept.tick(1_000 + MAX_KEPT_AGE_NS);
        assert_eq!(kept.held(), 0);
        assert!(kept.take(&echo(end, 4)).is_none());
    }

    #[test]
    fn the_total_held_is_bounded() {
        let mut kept = KeptStreams::default();
        let chunk = vec![b'x'; 256 * 1024];
        let mut writer = WRITER;
        for _ in 0..(MAX_KEPT_BYTES / chunk.len() as u64 + 10) {
            writer.fd += 1;
            kept.keep(&Data {
                conn: writer,
                ..written(0, &chunk, true)
            });
            assert!(kept.held() <= MAX_KEPT_BYTES);
        }
        assert_eq!(kept.held(), MAX_KEPT_BYTES);
        assert_eq!(kept.stats().bytes_dropped, 10 * chunk.len() as u64);
    }
}
