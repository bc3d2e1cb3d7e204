//! Per-connection state: who the connection belongs to, and its byte streams put back in order.
//!
//! The third stage of the pipeline, between `events` and `protocol`. The kernel gives every
//! data chunk its position in its (connection, direction, source) stream; this stage turns
//! chunks into [`Segment`]s in stream order: bytes, gaps where bytes were lost or never captured,
//! and the end of the stream. Chunks arrive almost always in order (one ring buffer, positions
//! assigned as calls return); when one arrives early it waits, bounded in bytes and in time,
//! for the bytes before it, and otherwise the hole becomes a gap.
//!
//! The stage knows nothing about HTTP: a [`StreamHandler`] supplied by the caller keeps its own
//! state per connection and receives the segments.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    net::SocketAddr,
    ops::Range,
};

use observer_common::{ConnId, ConnOrigin, Direction, RoleHint, Source, TlsLibrary};

use crate::{
    events::{ConnClose, ConnOpen, Data},
    protocol::Segment,
};

/// Out-of-order bytes one stream may hold while waiting for the bytes before them. Reordering
/// only happens when threads share a socket, and then by a chunk or two; a larger hole is a
/// loss, so holding more would only delay reporting it.
pub const MAX_REORDER_BYTES: usize = 256 * 1024;

/// How long (kernel time) an early chunk waits for the bytes before it.
pub const REORDER_WINDOW_NS: u64 = 20_000_000;

/// Connections tracked at once. Each costs a few hundred bytes plus what its parsers hold;
/// 100,000 stays within the agent's memory budget. Past it, new connections are counted and
/// skipped until others close.
pub const MAX_CONNECTIONS: usize = 100_000;

/// A connection with no event for this long (kernel time) is closed by the agent: the process
/// may have died without us seeing it, or the connection is idle; either way its requests are
/// reported as unanswered rather than held forever.
pub const IDLE_TIMEOUT_NS: u64 = 300_000_000_000;

/// How often [`ConnTable::tick`] looks for idle connections. It is called once per read of the
/// ring (at least fifty times a second), and looking at each of 20,000 idle connections every
/// time took 5 % of a core on a host doing nothing; a connection closed a second past
/// [`IDLE_TIMEOUT_NS`] is closed as surely.
pub const IDLE_CHECK_INTERVAL_NS: u64 = 1_000_000_000;

/// Which side of the calls on this connection the observed process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// It sends requests (it called connect(), or its first bytes out were a request).
    Client,
    /// It answers requests.
    Server,
}

impl Role {
    /// The direction that carries requests, from the observed process's point of view.
    pub fn request_direction(self) -> Direction {
        match self {
            Role::Client => Direction::Egress,
            Role::Server => Direction::Ingress,
        }
    }

    /// As the output and the metrics spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Server => "server",
        }
    }
}

/// What is known about a connection, growing as facts arrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    pub id: ConnId,
    pub origin: ConnOrigin,
    /// `None` until the first bytes tell (inferred connections whose first bytes were unclear).
    pub role: Option<Role>,
    pub local: Option<SocketAddr>,
    pub remote: Option<SocketAddr>,
    /// AF_INET, AF_INET6, AF_UNIX... (0 if unknown).
    pub family: u16,
    /// `comm` of the thread that opened or first used it.
    pub comm: String,
    pub opened_ns: u64,
    /// The TLS library whose plaintext this connection's data came from, if any.
    pub tls_library: Option<TlsLibrary>,
    /// The kernel saw TLS records on the wire: the syscall stream is ciphertext.
    pub tls: bool,
}

/// Why a connection's streams ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The process closed the fd.
    Closed,
    /// The process exited.
    ProcessExited,
    /// No event for [`IDLE_TIMEOUT_NS`].
    Idle,
    /// The agent is stopping.
    Shutdown,
}

/// Receives a connection's segments. `S` is the caller's per-connection state.
pub trait StreamHandler<S> {
    fn open(&mut self, conn: &ConnInfo) -> S;
    fn segment(
        &mut self,
        conn: &ConnInfo,
        state: &mut S,
        direction: Direction,
        source: Source,
        segment: Segment<'_>,
    );
    fn close(&mut self, conn: &ConnInfo, state: S, reason: CloseReason);

    /// Where a direction's bytes ahead will be passed over unread (see [`Segment::Unread`]),
    /// relative to its next byte. A handler that cannot tell reads them all.
    fn unread_ahead(
        &self,
        _state: &S,
        _direction: Direction,
        _source: Source,
    ) -> Option<Range<u64>> {
        None
    }
}

/// Counters of this stage, for the summary and metrics.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConnStats {
    pub connections_opened: u64,
    pub connections_closed: u64,
    /// Data for a connection never announced (its open event was lost): tracked from there on.
    pub connections_without_open: u64,
    pub connections_over_limit: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    /// Bytes that arrived again or overlapped bytes already delivered.
    pub duplicate_bytes: u64,
    pub reordered_chunks: u64,
}

/// One direction of one source of a connection.
#[derive(Debug, Default)]
struct Stream {
    /// Position of the next byte to deliver; `None` until the stream's first chunk.
    next: Option<u64>,
    /// Chunks that arrived before the bytes preceding them, by position.
    early: BTreeMap<u64, EarlyChunk>,
    early_bytes: usize,
    /// A segment went out: the stream gets an `End` when the connection finishes.
    started: bool,
    ended: bool,
}

#[derive(Debug)]
struct EarlyChunk {
    bytes: Vec<u8>,
    ts_ns: u64,
    tail: Option<Tail>,
}

/// Stream bytes right after a chunk's that are known not to come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tail {
    /// The rest of a call the kernel capped, up to where the call ended: lost.
    Lost { until: u64 },
    /// Bytes parsing would not read, up to `until` (see [`Segment::Unread`]).
    Unread { until: u64 },
}

struct Tracked<S> {
    info: ConnInfo,
    state: S,
    /// By direction, then source.
    streams: [[Stream; Source::COUNT]; 2],
    last_event_ns: u64,
}

/// A map keyed by kernel ids (connections, processes), looked up several times for every event:
/// SipHash, the standard map's hasher, was a few percent of the pipeline. foldhash is several
/// times faster and still seeded at random per map, so keys cannot be chosen to collide.
pub type IdMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A set of kernel ids, hashed as [`IdMap`] is and for the same reason.
pub type IdSet<K> = HashSet<K, foldhash::fast::RandomState>;

/// Connections dropped as not being sockets, remembered so the events already on their way
/// for them are dropped too. Ids are never reused (they carry a generation), so forgetting the
/// oldest when this many pile up only lets a few late events through.
const MAX_FORGOTTEN: usize = 4096;

/// Every tracked connection.
pub struct ConnTable<S> {
    conns: IdMap<ConnId, Tracked<S>>,
    /// Connections that may have early chunks waiting (one of their streams had some after its
    /// last push): the only ones a tick looks at for chunks whose wait is over.
    with_early: IdSet<ConnId>,
    /// Kernel time before which a tick does not look for idle connections again.
    next_idle_check_ns: u64,
    forgotten: HashSet<ConnId>,
    stats: ConnStats,
}

impl<S> Default for ConnTable<S> {
    fn default() -> Self {
        ConnTable {
            conns: IdMap::default(),
            with_early: IdSet::default(),
            next_idle_check_ns: 0,
            forgotten: HashSet::new(),
            stats: ConnStats::default(),
        }
    }
}

impl<S> ConnTable<S> {
    pub fn stats(&self) -> &ConnStats {
        &self.stats
    }

    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    pub fn info(&self, id: &ConnId) -> Option<&ConnInfo> {
        self.conns.get(id).map(|t| &t.info)
    }

    /// Fill in addresses learned outside the kernel (from the socket itself).
    pub fn set_addresses(
        &mut self,
        id: &ConnId,
        local: Option<SocketAddr>,
        remote: Option<SocketAddr>,
    ) {
        if let Some(tracked) = self.conns.get_mut(id) {
            tracked.info.local = local.or(tracked.info.local);
            tracked.info.remote = remote.or(tracked.info.remote);
        }
    }

    /// Drop a connection without reporting anything: it turned out not to be one (a file or
    /// pipe whose bytes looked like HTTP). Returns whether it was tracked.
    pub fn forget(&mut self, id: &ConnId) -> bool {
        if self.forgotten.len() >= MAX_FORGOTTEN {
            self.forgotten.clear();
        }
        self.forgotten.insert(*id);
        self.conns.remove(id).is_some()
    }

    pub fn open(&mut self, event: &ConnOpen, handler: &mut impl StreamHandler<S>) {
        if self.forgotten.contains(&event.conn) {
            return;
        }
        if let Some(old) = self.conns.remove(&event.conn) {
            // Same id twice: the kernel re-announced it (its table entry was evicted and the
            // connection rediscovered). Finish the old one rather than mixing their streams.
            self.finish(old, CloseReason::Closed, handler);
        }
        let role = match (event.origin, event.role_hint) {
            (ConnOrigin::Connect, _) => Some(Role::Client),
            (ConnOrigin::Accept, _) => Some(Role::Server),
            (ConnOrigin::Inferred, RoleHint::Client) => Some(Role::Client),
            (ConnOrigin::Inferred, RoleHint::Server) => Some(Role::Server),
            (ConnOrigin::Inferred, RoleHint::Unknown) => None,
        };
        let info = ConnInfo {
            id: event.conn,
            origin: event.origin,
            role,
            local: event.local,
            remote: event.remote,
            family: event.family,
            comm: event.comm.clone(),
            opened_ns: event.timestamp_ns,
            tls_library: None,
            tls: event.tls,
        };
        self.insert(info, event.timestamp_ns, handler);
    }

    fn insert(
        &mut self,
        info: ConnInfo,
        now_ns: u64,
        handler: &mut impl StreamHandler<S>,
    ) -> Option<&mut Tracked<S>> {
        if self.conns.len() >= MAX_CONNECTIONS {
            self.stats.connections_over_limit += 1;
            return None;
        }
        self.stats.connections_opened += 1;
        let state = handler.open(&info);
        // Connections the kernel saw opened start at position 0; a stream first seen mid-way
        // starts wherever its first chunk is.
        let start = match info.origin {
            ConnOrigin::Connect | ConnOrigin::Accept => Some(0),
            ConnOrigin::Inferred => None,
        };
        let stream = || Stream {
            next: start,
            ..Stream::default()
        };
        let id = info.id;
        let tracked = Tracked {
            info,
            state,
            streams: [[stream(), stream()], [stream(), stream()]],
            last_event_ns: now_ns,
        };
        Some(self.conns.entry(id).or_insert(tracked))
    }

    pub fn data(&mut self, data: &Data<'_>, handler: &mut impl StreamHandler<S>) {
        let tail = (data.last_chunk && data.call_truncated).then(|| Tail::Lost {
            until: data.call_end(),
        });
        self.push(data, tail, handler);
    }

    /// A data event followed by `unread` stream bytes that are not here because parsing them
    /// reads nothing (see [`Segment::Unread`]); with none, the same as [`data`](Self::data).
    pub fn data_then_unread(
        &mut self,
        data: &Data<'_>,
        unread: u64,
        handler: &mut impl StreamHandler<S>,
    ) {
        if unread == 0 {
            return self.data(data, handler);
        }
        let end = data.position.saturating_add(data.payload.len() as u64);
        let tail = Tail::Unread {
            until: end.saturating_add(unread),
        };
        self.push(data, Some(tail), handler);
    }

    /// Where the stream a data event belongs to will be passed over unread, as stream
    /// positions, when the event is the stream's next bytes (see
    /// [`StreamHandler::unread_ahead`]).
    pub fn unread_ahead(
        &self,
        data: &Data<'_>,
        handler: &impl StreamHandler<S>,
    ) -> Option<Range<u64>> {
        let tracked = self.conns.get(&data.conn)?;
        let stream = &tracked.streams[data.direction.index()][data.source.index()];
        let next = stream.next.filter(|&next| next == data.position)?;
        if !stream.early.is_empty() || stream.ended {
            return None;
        }
        let ahead = handler.unread_ahead(&tracked.state, data.direction, data.source)?;
        Some(next.saturating_add(ahead.start)..next.saturating_add(ahead.end))
    }

    fn push(&mut self, data: &Data<'_>, tail: Option<Tail>, handler: &mut impl StreamHandler<S>) {
        if !self.conns.contains_key(&data.conn) {
            if self.forgotten.contains(&data.conn) {
                return;
            }
            // The open event was lost (ring buffer full): track it from here, role unknown
            // until the protocol stage sees which way requests go.
            self.stats.connections_without_open += 1;
            let info = ConnInfo {
                id: data.conn,
                origin: ConnOrigin::Inferred,
                role: None,
                local: None,
                remote: None,
                family: 0,
                comm: String::new(),
                opened_ns: data.timestamp_ns,
                tls_library: None,
                tls: data.source == Source::Tls,
            };
            if self.insert(info, data.timestamp_ns, handler).is_none() {
                return;
            }
        }
        let Some(tracked) = self.conns.get_mut(&data.conn) else {
            return;
        };
        tracked.last_event_ns = data.timestamp_ns;
        if data.source == Source::Tls && tracked.info.tls_library.is_none() {
            tracked.info.tls_library = Some(data.tls_library);
        }
        let Tracked {
            info,
            state,
            streams,
            ..
        } = tracked;
        let stream = &mut streams[data.direction.index()][data.source.index()];
        let mut emit = |segment: Segment<'_>| {
            handler.segment(info, state, data.direction, data.source, segment);
        };
        let arrival = Arrival {
            position: data.position,
            ts_ns: data.timestamp_ns,
            tail,
            after_loss: data.after_loss,
        };
        stream.push(arrival, data.payload, &mut self.stats, &mut emit);
        if !stream.early.is_empty() {
            self.with_early.insert(data.conn);
        }
    }

    pub fn close(&mut self, event: &ConnClose, handler: &mut impl StreamHandler<S>) {
        self.forgotten.remove(&event.conn);
        let Some(mut tracked) = self.conns.remove(&event.conn) else {
            return;
        };
        // Bytes the kernel counted but never shipped at the end of a stream (a sendfile body,
        // a truncated last call) are a final gap.
        for direction in [Direction::Egress, Direction::Ingress] {
            for source in [Source::Syscall, Source::Tls] {
                let total = event.bytes[direction.index()][source.index()];
                let stream = &mut tracked.streams[direction.index()][source.index()];
                let mut emit = |segment: Segment<'_>| {
                    handler.segment(
                        &tracked.info,
                        &mut tracked.state,
                        direction,
                        source,
                        segment,
                    )
                };
                stream.flush_early(&mut self.stats, &mut emit);
                let Some(next) = stream.next else { continue };
                if total > next && source_in_use(&tracked.info, source) {
                    stream.skip(total, event.timestamp_ns, &mut self.stats, &mut emit);
                }
            }
        }
        tracked.last_event_ns = event.timestamp_ns;
        self.finish(tracked, CloseReason::Closed, handler);
    }

    /// Ids of the connections of one process.
    pub fn ids_of(&self, tgid: u32) -> Vec<ConnId> {
        self.conns
            .keys()
            .filter(|id| id.tgid == tgid)
            .copied()
            .collect()
    }

    /// Close every connection of a process that exited.
    pub fn process_exited(&mut self, tgid: u32, handler: &mut impl StreamHandler<S>) {
        let mut ids: Vec<ConnId> = self
            .conns
            .keys()
            .filter(|id| id.tgid == tgid)
            .copied()
            .collect();
        // In a fixed order (the table's is random), so that a replay reports what it reports in
        // the same order every time.
        ids.sort_unstable();
        for id in ids {
            if let Some(tracked) = self.conns.remove(&id) {
                self.finish(tracked, CloseReason::ProcessExited, handler);
            }
        }
    }

    /// Deliver early chunks whose wait is over, and close connections idle since too long (at
    /// most once per [`IDLE_CHECK_INTERVAL_NS`]). `now_ns` is kernel time (the newest event's
    /// timestamp, or the clock when idle).
    pub fn tick(&mut self, now_ns: u64, handler: &mut impl StreamHandler<S>) {
        // Connections with work due are taken in a fixed order (the table's is random), so that
        // a replay reports what it reports in the same order every time.
        let mut idle = Vec::new();
        if now_ns >= self.next_idle_check_ns {
            self.next_idle_check_ns = now_ns.saturating_add(IDLE_CHECK_INTERVAL_NS);
            idle.extend(
                self.conns
                    .iter()
                    .filter(|(_, tracked)| {
                        now_ns.saturating_sub(tracked.last_event_ns) > IDLE_TIMEOUT_NS
                    })
                    .map(|(id, _)| *id),
            );
        }
        let mut waited = Vec::new();
        let conns = &self.conns;
        self.with_early.retain(|id| {
            let Some(tracked) = conns.get(id) else {
                return false;
            };
            let mut streams = tracked.streams.iter().flatten();
            if streams.clone().any(|stream| stream.early_overdue(now_ns)) {
                // Flushed below; kept until a tick finds none of its streams with early chunks.
                waited.push(*id);
                return true;
            }
            streams.any(|stream| !stream.early.is_empty())
        });
        waited.sort_unstable();
        for id in waited {
            let Some(Tracked {
                info,
                state,
                streams,
                ..
            }) = self.conns.get_mut(&id)
            else {
                continue;
            };
            for direction in [Direction::Egress, Direction::Ingress] {
                for source in [Source::Syscall, Source::Tls] {
                    let stream = &mut streams[direction.index()][source.index()];
                    if stream.early_overdue(now_ns) {
                        stream.flush_early(&mut self.stats, &mut |segment| {
                            handler.segment(info, state, direction, source, segment)
                        });
                    }
                }
            }
        }
        idle.sort_unstable();
        for id in idle {
            if let Some(tracked) = self.conns.remove(&id) {
                self.finish(tracked, CloseReason::Idle, handler);
            }
        }
    }

    /// Close everything (the agent is stopping, or a replay reached its end).
    pub fn close_all(&mut self, handler: &mut impl StreamHandler<S>) {
        let mut ids: Vec<ConnId> = self.conns.keys().copied().collect();
        ids.sort();
        for id in ids {
            if let Some(tracked) = self.conns.remove(&id) {
                self.finish(tracked, CloseReason::Shutdown, handler);
            }
        }
    }

    fn finish(
        &mut self,
        mut tracked: Tracked<S>,
        reason: CloseReason,
        handler: &mut impl StreamHandler<S>,
    ) {
        self.stats.connections_closed += 1;
        for direction in [Direction::Egress, Direction::Ingress] {
            for source in [Source::Syscall, Source::Tls] {
                let stream = &mut tracked.streams[direction.index()][source.index()];
                if stream.ended {
                    continue;
                }
                stream.flush_early(&mut self.stats, &mut |segment| {
                    handler.segment(
                        &tracked.info,
                        &mut tracked.state,
                        direction,
                        source,
                        segment,
                    )
                });
                if !stream.started {
                    continue;
                }
                stream.ended = true;
                handler.segment(
                    &tracked.info,
                    &mut tracked.state,
                    direction,
                    source,
                    Segment::End {
                        ts_ns: tracked.last_event_ns,
                    },
                );
            }
        }
        handler.close(&tracked.info, tracked.state, reason);
    }
}

/// Whether a source carries this connection's parsed bytes: TLS connections are parsed from
/// the plaintext, and their syscall stream (ciphertext, never shipped) has no gaps to report.
fn source_in_use(info: &ConnInfo, source: Source) -> bool {
    match source {
        Source::Syscall => !info.tls && info.tls_library.is_none(),
        Source::Tls => info.tls_library.is_some(),
    }
}

/// Where a chunk comes in its stream, as its data event tells.
#[derive(Clone, Copy)]
struct Arrival {
    position: u64,
    ts_ns: u64,
    tail: Option<Tail>,
    /// The kernel lost the stream's bytes right before it (see [`Data::after_loss`]).
    after_loss: bool,
}

impl Stream {
    fn push(
        &mut self,
        arrival: Arrival,
        bytes: &[u8],
        stats: &mut ConnStats,
        emit: &mut impl FnMut(Segment<'_>),
    ) {
        if self.ended {
            return;
        }
        let Arrival {
            position,
            ts_ns,
            tail,
            after_loss,
        } = arrival;
        let next = *self.next.get_or_insert(position);
        if position > next {
            if !after_loss || !self.early.is_empty() {
                self.hold(position, bytes, ts_ns, tail, stats, emit);
                return;
            }
            // The hole will not fill: holding the chunk for the reorder window would only copy
            // it and delay the report: under a full ring, when losses come, holding took a fifth
            // of the agent's time.
            self.skip(position, ts_ns, stats, emit);
        }
        self.deliver(position, bytes, ts_ns, tail, stats, emit);
        self.deliver_waiting(stats, emit);
    }

    /// Deliver a chunk that starts at or before the next expected byte.
    fn deliver(
        &mut self,
        position: u64,
        bytes: &[u8],
        ts_ns: u64,
        tail: Option<Tail>,
        stats: &mut ConnStats,
        emit: &mut impl FnMut(Segment<'_>),
    ) {
        let next = self.next.unwrap_or(position);
        let already = (next - position).min(bytes.len() as u64) as usize;
        stats.duplicate_bytes += already as u64;
        let fresh = &bytes[already..];
        let next = next.max(position + bytes.len() as u64);
        if !fresh.is_empty() {
            emit(Segment::Data {
                bytes: fresh,
                ts_ns,
            });
        }
        if !fresh.is_empty() {
            self.started = true;
        }
        self.next = Some(next);
        match tail {
            // The kernel capped this call: its remaining bytes will never come.
            Some(Tail::Lost { until }) => self.skip(until, ts_ns, stats, emit),
            Some(Tail::Unread { until }) => self.pass_unread(until, ts_ns, emit),
            None => {}
        }
    }

    /// Pass the bytes from the next expected position up to `to` as unread.
    fn pass_unread(&mut self, to: u64, ts_ns: u64, emit: &mut impl FnMut(Segment<'_>)) {
        let Some(next) = self.next.filter(|&next| to > next) else {
            return;
        };
        self.started = true;
        emit(Segment::Unread {
            len: to - next,
            ts_ns,
        });
        self.next = Some(to);
    }

    /// Report the bytes from the next expected position up to `to` as lost.
    fn skip(
        &mut self,
        to: u64,
        ts_ns: u64,
        stats: &mut ConnStats,
        emit: &mut impl FnMut(Segment<'_>),
    ) {
        let Some(next) = self.next.filter(|&next| to > next) else {
            return;
        };
        stats.gaps += 1;
        stats.gap_bytes += to - next;
        self.started = true;
        emit(Segment::Gap {
            len: to - next,
            ts_ns,
        });
        self.next = Some(to);
    }

    fn hold(
        &mut self,
        position: u64,
        bytes: &[u8],
        ts_ns: u64,
        tail: Option<Tail>,
        stats: &mut ConnStats,
        emit: &mut impl FnMut(Segment<'_>),
    ) {
        stats.reordered_chunks += 1;
        self.early_bytes += bytes.len();
        self.early.insert(
            position,
            EarlyChunk {
                bytes: bytes.to_vec(),
                ts_ns,
                tail,
            },
        );
        // Holding too much, or too long: the hole is a loss, not a reordering.
        while self.early_bytes > MAX_REORDER_BYTES || self.early_overdue(ts_ns) {
            if !self.skip_to_first_early(stats, emit) {
                break;
            }
            self.deliver_waiting(stats, emit);
        }
    }

    /// Declare the hole before the first early chunk a gap.
    fn skip_to_first_early(
        &mut self,
        stats: &mut ConnStats,
        emit: &mut impl FnMut(Segment<'_>),
    ) -> bool {
        let (Some(next), Some((&first, chunk))) = (self.next, self.early.first_key_value()) else {
            return false;
        };
        let ts_ns = chunk.ts_ns;
        if first > next {
            self.skip(first, ts_ns, stats, emit);
        }
        true
    }

    /// Whether the oldest early chunk has waited longer than the reorder window.
    fn early_overdue(&self, now_ns: u64) -> bool {
        self.early
            .first_key_value()
            .is_some_and(|(_, chunk)| now_ns.saturating_sub(chunk.ts_ns) > REORDER_WINDOW_NS)
    }

    /// Deliver early chunks that now follow on.
    fn deliver_waiting(&mut self, stats: &mut ConnStats, emit: &mut impl FnMut(Segment<'_>)) {
        while let Some(entry) = self.early.first_entry() {
            let next = self.next.unwrap_or(*entry.key());
            if *entry.key() > next {
                break;
            }
            let position = *entry.key();
            let chunk = entry.remove();
            self.early_bytes -= chunk.bytes.len();
            self.deliver(position, &chunk.bytes, chunk.ts_ns, chunk.tail, stats, emit);
        }
    }

    /// Give up waiting: every hole before an early chunk becomes a gap.
    fn flush_early(&mut self, stats: &mut ConnStats, emit: &mut impl FnMut(Segment<'_>)) {
        while !self.early.is_empty() {
            if !self.skip_to_first_early(stats, emit) {
                break;
            }
            self.deliver_waiting(stats, emit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what it receives, as text, so tests read like the stream they expect.
    #[derive(Default)]
    struct Recorder {
        log: Vec<String>,
    }

    impl StreamHandler<u32> for Recorder {
        fn open(&mut self, conn: &ConnInfo) -> u32 {
            self.log
                .push(format!("open {} {:?}", conn.id.fd, conn.role));
            0
        }

        fn segment(
            &mut self,
            _conn: &ConnInfo,
            state: &mut u32,
            direction: Direction,
            source: Source,
            segment: Segment<'_>,
        ) {
            *state += 1;
            let what = match segment {
                Segment::Data { bytes, .. } => format!("data {:?}", String::from_utf8_lossy(bytes)),
                Segment::Gap { len, .. } => format!("gap {len}"),
                Segment::Unread { len, .. } => format!("unread {len}"),
                Segment::End { .. } => "end".to_string(),
            };
            self.log.push(format!("{direction:?}/{source:?} {what}"));
        }

        fn close(&mut self, _conn: &ConnInfo, state: u32, reason: CloseReason) {
            self.log
                .push(format!("close {reason:?} after {state} segments"));
        }
    }

    const CONN: ConnId = ConnId {
        tgid: 10,
        fd: 4,
        generation: 99,
    };

    fn open(origin: ConnOrigin) -> ConnOpen {
        ConnOpen {
            timestamp_ns: 1,
            conn: CONN,
            origin,
            role_hint: RoleHint::Unknown,
            remote: None,
            local: None,
            family: 2,
            listen_fd: None,
            tid: 10,
            comm: "test".into(),
            tls: false,
        }
    }

    fn chunk(position: u64, bytes: &'static [u8], ts_ns: u64) -> Data<'static> {
        Data {
            tid: 10,
            ..Data::whole_call(CONN, Direction::Egress, position, bytes, ts_ns)
        }
    }

    fn run(origin: ConnOrigin, chunks: &[Data<'static>]) -> Vec<String> {
        let mut table = ConnTable::default();
        let mut recorder = Recorder::default();
        table.open(&open(origin), &mut recorder);
        for data in chunks {
            table.data(data, &mut recorder);
        }
        table.close_all(&mut recorder);
        recorder.log
    }

    /// Which connection each gap and close was for, by fd.
    #[derive(Default)]
    struct OrderRecorder {
        log: Vec<String>,
    }

    impl StreamHandler<()> for OrderRecorder {
        fn open(&mut self, _conn: &ConnInfo) {}

        fn segment(
            &mut self,
            conn: &ConnInfo,
            _state: &mut (),
            _direction: Direction,
            _source: Source,
            segment: Segment<'_>,
        ) {
            if let Segment::Gap { .. } = segment {
                self.log.push(format!("gap {}", conn.id.fd));
            }
        }

        fn close(&mut self, conn: &ConnInfo, _state: (), reason: CloseReason) {
            self.log.push(format!("close {} {reason:?}", conn.id.fd));
        }
    }

    #[test]
    fn ticks_take_connections_in_a_fixed_order() {
        const CONNECTIONS: u32 = 32;
        let mut table = ConnTable::default();
        let mut recorder = OrderRecorder::default();
        for fd in 0..CONNECTIONS {
            let conn = ConnId { fd, ..CONN };
            table.open(
                &ConnOpen {
                    conn,
                    ..open(ConnOrigin::Connect)
                },
                &mut recorder,
            );
            // A hole before the second chunk: it waits, then becomes a gap.
            for data in [chunk(0, b"AA", 1), chunk(10, b"BB", 2)] {
                table.data(&Data { conn, ..data }, &mut recorder);
            }
        }
        table.tick(REORDER_WINDOW_NS + 10, &mut recorder);
        table.tick(IDLE_TIMEOUT_NS + 10, &mut recorder);
        let expected: Vec<String> = (0..CONNECTIONS)
            .map(|fd| format!("gap {fd}"))
            .chain((0..CONNECTIONS).map(|fd| format!("close {fd} Idle")))
            .collect();
        assert_eq!(recorder.log, expected);
    }

    #[test]
    fn in_order_chunks_pass_straight_through() {
        let log = run(
            ConnOrigin::Connect,
            &[chunk(0, b"GET ", 5), chunk(4, b"/ HTTP/1.1\r\n", 6)],
        );
        assert_eq!(
            log,
            [
                "open 4 Some(Client)",
                "Egress/Syscall data \"GET \"",
                "Egress/Syscall data \"/ HTTP/1.1\\r\\n\"",
                "Egress/Syscall end",
                "close Shutdown after 3 segments",
            ]
        );
    }

    #[test]
    fn an_early_chunk_waits_for_the_bytes_before_it() {
        let log = run(
            ConnOrigin::Accept,
            &[chunk(4, b"BBBB", 5), chunk(0, b"AAAA", 6)],
        );
        assert_eq!(
            log[1..3],
            [
                "Egress/Syscall data \"AAAA\"",
                "Egress/Syscall data \"BBBB\""
            ]
        );
    }

    #[test]
    fn a_hole_that_outlives_the_reorder_window_is_a_gap() {
        let late = REORDER_WINDOW_NS + 10;
        let log = run(
            ConnOrigin::Connect,
            &[
                chunk(0, b"AA", 1),
                chunk(10, b"BB", 2),
                chunk(12, b"CC", late),
            ],
        );
        assert_eq!(
            log[1..5],
            [
                "Egress/Syscall data \"AA\"",
                "Egress/Syscall gap 8",
                "Egress/Syscall data \"BB\"",
                "Egress/Syscall data \"CC\"",
            ]
        );
    }

    #[test]
    fn a_connection_seen_opened_reports_bytes_lost_at_its_start() {
        let log = run(ConnOrigin::Connect, &[chunk(3, b"xyz", 1)]);
        // Waiting until the end for the first three bytes, which never come.
        assert_eq!(
            log[1..3],
            ["Egress/Syscall gap 3", "Egress/Syscall data \"xyz\""]
        );
    }

    #[test]
    fn an_inferred_connection_starts_wherever_it_is_first_seen() {
        let log = run(ConnOrigin::Inferred, &[chunk(1000, b"GET /", 1)]);
        assert_eq!(log[1], "Egress/Syscall data \"GET /\"");
    }

    #[test]
    fn the_uncaptured_rest_of_a_truncated_call_is_a_gap_at_once() {
        let mut first = chunk(0, b"HTTP/1.1 200 OK\r\n", 1);
        first.call_size = 1000;
        first.call_truncated = true;
        let log = run(ConnOrigin::Connect, &[first, chunk(1000, b"next", 2)]);
        assert_eq!(
            log[1..4],
            [
                "Egress/Syscall data \"HTTP/1.1 200 OK\\r\\n\"",
                "Egress/Syscall gap 983",
                "Egress/Syscall data \"next\"",
            ]
        );
    }

    #[test]
    fn bytes_known_to_be_unread_follow_their_chunk_in_order_even_when_early() {
        let mut table = ConnTable::default();
        let mut recorder = Recorder::default();
        table.open(&open(ConnOrigin::Connect), &mut recorder);
        // Bytes 10.. (5 of them, then 100 unread) come before bytes 0..10, then the rest.
        table.data_then_unread(&chunk(10, b"body-", 2), 100, &mut recorder);
        table.data(&chunk(0, b"0123456789", 1), &mut recorder);
        table.data_then_unread(&chunk(115, b"", 3), 20, &mut recorder);
        table.data(&chunk(135, b"next", 4), &mut recorder);
        assert_eq!(
            recorder.log[1..6],
            [
                "Egress/Syscall data \"0123456789\"",
                "Egress/Syscall data \"body-\"",
                "Egress/Syscall unread 100",
                "Egress/Syscall unread 20",
                "Egress/Syscall data \"next\"",
            ]
        );
        assert_eq!(table.stats().gaps, 0);
    }

    /// Says the bytes from 3 to 50 past every stream's next byte will be passed over unread.
    struct Ahead;

    impl StreamHandler<()> for Ahead {
        fn open(&mut self, _conn: &ConnInfo) {}
        fn segment(&mut self, _: &ConnInfo, _: &mut (), _: Direction, _: Source, _: Segment<'_>) {}
        fn close(&mut self, _conn: &ConnInfo, _state: (), _reason: CloseReason) {}
        fn unread_ahead(&self, _: &(), _: Direction, _: Source) -> Option<Range<u64>> {
            Some(3..50)
        }
    }

    #[test]
    fn what_is_unread_ahead_is_told_in_stream_positions_for_the_next_bytes_only() {
        let mut table = ConnTable::default();
        table.open(&open(ConnOrigin::Connect), &mut Ahead);
        table.data(&chunk(0, b"0123456789", 1), &mut Ahead);
        assert_eq!(
            table.unread_ahead(&chunk(10, b"x", 2), &Ahead),
            Some(13..60)
        );
        // Not the next bytes (early, or already seen): the handler's place says nothing of them.
        assert_eq!(table.unread_ahead(&chunk(20, b"x", 2), &Ahead), None);
        assert_eq!(table.unread_ahead(&chunk(5, b"x", 2), &Ahead), None);
        table.data(&chunk(20, b"x", 2), &mut Ahead);
        assert_eq!(table.unread_ahead(&chunk(10, b"x", 3), &Ahead), None);
    }

    #[test]
    fn repeated_and_overlapping_bytes_are_delivered_once() {
        let log = run(
            ConnOrigin::Connect,
            &[
                chunk(0, b"abcd", 1),
                chunk(2, b"cdef", 2),
                chunk(0, b"ab", 3),
            ],
        );
        assert_eq!(
            log[1..4],
            [
                "Egress/Syscall data \"abcd\"",
                "Egress/Syscall data \"ef\"",
                "Egress/Syscall end"
            ]
        );
    }

    #[test]
    fn close_reports_bytes_the_kernel_counted_but_never_shipped() {
        let mut table = ConnTable::default();
        let mut recorder = Recorder::default();
        table.open(&open(ConnOrigin::Accept), &mut recorder);
        table.data(&chunk(0, b"HTTP/1.1 200 OK\r\n\r\n", 1), &mut recorder);
        let close = ConnClose {
            timestamp_ns: 9,
            conn: CONN,
            bytes: [[19 + 4096, 0], [0, 0]],
        };
        table.close(&close, &mut recorder);
        assert_eq!(
            recorder.log[2..],
            [
                "Egress/Syscall gap 4096",
                "Egress/Syscall end",
                "close Closed after 3 segments"
            ]
        );
    }

    #[test]
    fn a_process_exit_closes_its_connections_only() {
        let mut table = ConnTable::default();
        let mut recorder = Recorder::default();
        table.open(&open(ConnOrigin::Connect), &mut recorder);
        let other = ConnOpen {
            conn: ConnId { tgid: 11, ..CONN },
            ..open(ConnOrigin::Connect)
        };
        table.open(&other, &mut recorder);
        table.process_exited(10, &mut recorder);
        assert_eq!(table.len(), 1);
        assert!(table.info(&ConnId { tgid: 11, ..CONN }).is_some());
    }

    #[test]
    fn idle_connections_are_closed_by_the_tick() {
        let mut table = ConnTable::default();
        let mut recorder = Recorder::default();
        table.open(&open(ConnOrigin::Connect), &mut recorder);
        table.tick(IDLE_TIMEOUT_NS / 2, &mut recorder);
        assert_eq!(table.len(), 1);
        table.tick(IDLE_TIMEOUT_NS + 2, &mut recorder);
        assert!(table.is_empty());
        assert_eq!(
            recorder.log.last().map(String::as_str),
            Some("close Idle after 0 segments")
        );
    }

    #[test]
    fn idle_connections_are_looked_for_once_per_interval() {
        let mut table = ConnTable::default();
        let mut recorder = Recorder::default();
        table.open(&open(ConnOrigin::Connect), &mut recorder);
        table.tick(IDLE_TIMEOUT_NS, &mut recorder);
        // Idle for long enough now, but the last look was a moment ago.
        table.tick(IDLE_TIMEOUT_NS + 2, &mut recorder);
        assert_eq!(table.len(), 1);
        table.tick(IDLE_TIMEOUT_NS + IDLE_CHECK_INTERVAL_NS, &mut recorder);
        assert!(table.is_empty());
    }

    #[test]
    fn an_early_chunk_is_delivered_when_its_wait_is_over_among_idle_connections() {
        let mut table = ConnTable::default();
        let mut recorder = Recorder::default();
        for tgid in 1..100 {
            let quiet = ConnOpen {
                conn: ConnId { tgid, ..CONN },
                ..open(ConnOrigin::Connect)
            };
            table.open(&quiet, &mut recorder);
        }
        table.open(&open(ConnOrigin::Connect), &mut recorder);
        table.data(&chunk(0, b"ab", 1), &mut recorder);
        // Bytes 2..4 are late; 4..6 wait for them.
        table.data(&chunk(4, b"ef", 2), &mut recorder);
        table.tick(2 + REORDER_WINDOW_NS, &mut recorder);
        assert!(
            !recorder.log.iter().any(|line| line.contains("gap")),
            "{:?}",
            recorder.log
        );
        table.tick(3 + REORDER_WINDOW_NS, &mut recorder);
        assert!(
            recorder.log.iter().any(|line| line.contains("gap")),
            "{:?}",
            recorder.log
        );
        // Nothing early is left: the next tick looks at no connection for it.
        table.tick(4 + REORDER_WINDOW_NS, &mut recorder);
        assert!(table.with_early.is_empty());
    }

    #[test]
    fn a_chunk_after_bytes_the_kernel_lost_is_delivered_at_once_after_a_gap() {
        let mut table = ConnTable::default();
        let mut recorder = Recorder::default();
        table.open(&open(ConnOrigin::Connect), &mut recorder);
        table.data(&chunk(0, b"ab", 1), &mut recorder);
        // Bytes 2..4 were lost in the kernel, and it says so.
        let after = Data {
            after_loss: true,
            ..chunk(4, b"ef", 2)
        };
        table.data(&after, &mut recorder);
        assert_eq!(
            recorder.log[1..],
            [
                "Egress/Syscall data \"ab\"",
                "Egress/Syscall gap 2",
                "Egress/Syscall data \"ef\""
            ]
        );
        assert_eq!(table.stats().reordered_chunks, 0);
        // Without the word, the same chunk waits for its reorder window.
        table.data(&chunk(10, b"kl", 3), &mut recorder);
        assert_eq!(recorder.log.len(), 4);
        assert_eq!(table.stats().reordered_chunks, 1);
    }

    #[test]
    fn reorder_memory_is_bounded() {
        let mut table = ConnTable::default();
        let mut recorder = Recorder::default();
        table.open(&open(ConnOrigin::Connect), &mut recorder);
        static BIG: [u8; 64 * 1024] = [b'x'; 64 * 1024];
        // Position 0 never arrives; everything after it is early.
        for i in 0..10u64 {
            let mut data = chunk(1 + i * BIG.len() as u64, &BIG, 1);
            data.call_size = BIG.len() as u32;
            table.data(&data, &mut recorder);
        }
        assert!(
            recorder.log.iter().any(|l| l == "Egress/Syscall gap 1"),
            "{:?}",
            &recorder.log[..3]
        );
        assert!(table.stats().gaps >= 1);
    }
}
