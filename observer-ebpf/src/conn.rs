//! The connection table: which fds are worth shipping, their byte positions, and the cheap look
//! at the first bytes that decides it.

use aya_ebpf::helpers::{bpf_get_current_comm, bpf_probe_read_user};
use observer_common::{
    conn_key,
    limits::{ECHO_WINDOW_BYTES, INFERRED_PEEK_CALLS, PEER_LOOKUP_CALLS},
    ConnCloseEvent, ConnId, ConnOpenEvent, ConnOrigin, ConnState, Counter, Direction, EventKind,
    LocalEndKey, Protocol, RoleHint, SockAddr, Source, TlsLibrary, AF_INET, AF_INET6,
    CONN_FLAG_TLS, DATA_FLAG_AFTER_LOSS, DATA_FLAG_KEPT_FOR_PEER, PEER_FOUND,
};

use crate::{
    counters,
    emit::{self, emit_call, emit_echo, CallMeta},
    inflight::{Payload, PayloadKind},
    maps::{filter_by_port, CONNS, FILTER_PORTS, IGNORED, LOCAL_ENDS},
    socket::{self, FdKind},
};

/// Bytes a call must move for its stream to be classified by them: the method tokens and the
/// TLS record header are told apart by their first four bytes.
const MIN_CLASSIFY_BYTES: u64 = 4;

/// What the first bytes of a stream look like.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FirstBytes {
    HttpRequest,
    HttpResponse,
    Http2Preface,
    TlsRecord,
    Unrecognised,
}

/// Look at the first 8 bytes a call moved. Method tokens are matched on their first four bytes
/// (with the space where the token is shorter): enough to tell HTTP from other protocols and
/// from files, and cheap enough to run on every unknown fd's first calls.
fn peek(payload: &Payload, size: u64) -> FirstBytes {
    if size < 4 {
        return FirstBytes::Unrecognised;
    }
    let mut first = payload.ptr;
    if payload.kind == PayloadKind::Vector {
        // SAFETY: helper read of user memory.
        match unsafe { bpf_probe_read_user(payload.ptr as *const u64) } {
            Ok(base) => first = base,
            Err(_) => return FirstBytes::Unrecognised,
        }
    }
    // SAFETY: helper read of user memory; a short buffer at the end of a mapping fails safely.
    let bytes: [u8; 8] = match unsafe { bpf_probe_read_user(first as *const [u8; 8]) } {
        Ok(bytes) => bytes,
        Err(_) => match unsafe { bpf_probe_read_user(first as *const [u8; 4]) } {
            Ok(b) => [b[0], b[1], b[2], b[3], 0, 0, 0, 0],
            Err(_) => return FirstBytes::Unrecognised,
        },
    };
    classify(&bytes)
}

fn classify(b: &[u8; 8]) -> FirstBytes {
    match [b[0], b[1], b[2], b[3]] {
        [b'G', b'E', b'T', b' ']
        | [b'P', b'U', b'T', b' ']
        | [b'P', b'O', b'S', b'T']
        | [b'H', b'E', b'A', b'D']
        | [b'D', b'E', b'L', b'E']
        | [b'P', b'A', b'T', b'C']
        | [b'O', b'P', b'T', b'I']
        | [b'C', b'O', b'N', b'N']
        | [b'T', b'R', b'A', b'C'] => FirstBytes::HttpRequest,
        [b'H', b'T', b'T', b'P'] if b[4] == b'/' && b[5] == b'1' => FirstBytes::HttpResponse,
        [b'P', b'R', b'I', b' '] if b[4] == b'*' => FirstBytes::Http2Preface,
        // A TLS record header: content type 20..=23, then major version 3.
        [20..=23, 3, 0..=4, _] => FirstBytes::TlsRecord,
        _ => FirstBytes::Unrecognised,
    }
}

fn protocol_of(first: FirstBytes) -> Protocol {
    match first {
        FirstBytes::HttpRequest | FirstBytes::HttpResponse => Protocol::Http1,
        FirstBytes::Http2Preface => Protocol::Http2,
        FirstBytes::TlsRecord => Protocol::Tls,
        FirstBytes::Unrecognised => Protocol::Other,
    }
}

fn role_hint(first: FirstBytes, direction: Direction) -> RoleHint {
    match (first, direction) {
        (FirstBytes::HttpRequest | FirstBytes::Http2Preface, Direction::Egress) => RoleHint::Client,
        (FirstBytes::HttpRequest | FirstBytes::Http2Preface, Direction::Ingress) => {
            RoleHint::Server
        }
        (FirstBytes::HttpResponse, Direction::Egress) => RoleHint::Server,
        (FirstBytes::HttpResponse, Direction::Ingress) => RoleHint::Client,
        _ => RoleHint::Unknown,
    }
}

/// Start tracking a connection the process just opened with connect() or accept().
pub fn track_new(tgid: u32, fd: u32, origin: ConnOrigin, remote: SockAddr, listen_fd: u32) {
    let key = conn_key(tgid, fd);
    if let Some(state) = insert_fresh(key, origin, &remote, listen_fd) {
        // SAFETY: map value pointer from a successful lookup.
        let state = unsafe { &mut *state };
        // The socket knows both ends, including the local port connect() just picked.
        let _ = socket::inspect_into(fd, state);
        // Tracked from its first byte, like its other end if that is tracked too: the two
        // ends' positions then name the same bytes.
        if is_host_local(state)
            && learn_sequence_bases(state, origin)
            && LOCAL_ENDS.insert(local_end_key(state), key, 0).is_ok()
        {
            state.local_end = 1;
            state.peer_lookups = PEER_LOOKUP_CALLS;
        }
    }
    // The fd may have been a file we ignored before it was closed and reused.
    let _ = IGNORED.remove(key);
}

/// A connection first seen now: every field zero (no bytes, protocol and role unknown,
/// nothing announced, no peer) but those [`insert_fresh`] sets.
// SAFETY: every field of `ConnState` is an integer or an array of integers, for which all
// zeroes is a valid value.
static NEW_CONN: ConnState = unsafe { core::mem::zeroed() };

/// Starts tracking `key` with a fresh state, built in its map slot rather than on the stack:
/// uprobe programs run without a private stack, so their whole call chain shares 512 bytes,
/// and a state on the stack took a third of them. Inserted zeroed, then filled. `None` when
/// the table refused it (counted).
fn insert_fresh(
    key: u64,
    origin: ConnOrigin,
    remote: &SockAddr,
    listen_fd: u32,
) -> Option<*mut ConnState> {
    // By reference: by value, the template would be copied to the stack to be borrowed.
    #[expect(
        clippy::needless_borrows_for_generic_args,
        reason = "a copy would take the stack this avoids"
    )]
    let inserted = CONNS.insert(key, &NEW_CONN, 0);
    if inserted.is_err() {
        counters::add(Counter::DropConnTableFull, 1);
        return None;
    }
    let slot = CONNS.get_ptr_mut(key)?;
    // SAFETY: map value pointer from a successful lookup.
    let state = unsafe { &mut *slot };
    state.generation = emit::now();
    state.remote = *remote;
    state.listen_fd = listen_fd;
    state.origin = origin as u8;
    state.peeks_left = INFERRED_PEEK_CALLS;
    Some(slot)
}

/// Where a host-local end's sequence numbers start, read as it opens, before the application
/// moved a byte (see `ConnState::tcp_read_base`). Only these ends need them: other connections
/// never read a sequence number. `false` when they could not be read.
fn learn_sequence_bases(state: &mut ConnState, origin: ConnOrigin) -> bool {
    let Some(write_base) = socket::tcp_write_seq(state.tcp_sock) else {
        return false;
    };
    state.tcp_write_base = write_base;
    if origin == ConnOrigin::Accept {
        if let Some(read_base) = socket::tcp_read_seq(state.tcp_sock) {
            state.tcp_read_base = read_base;
            state.tcp_read_base_known = 1;
        }
    }
    true
}

/// Both ends of the connection are on this host (a loopback address, or the same address at
/// both ends), in a namespace the socket named, over TCP (whose counters check positions).
fn is_host_local(state: &ConnState) -> bool {
    let (local, remote) = (&state.local, &state.remote);
    if state.tcp_sock == 0 || state.net == 0 || local.family == 0 || local.family != remote.family {
        return false;
    }
    let [_, high, low] = words(remote);
    let loopback = match remote.family {
        AF_INET => remote.addr[0] == 127,
        AF_INET6 => high == 0 && low == IPV6_LOOPBACK_LOW_WORD,
        _ => false,
    };
    let [_, local_high, local_low] = words(local);
    loopback || (high == local_high && low == local_low)
}

/// The second half of `::1` as a little-endian word.
const IPV6_LOOPBACK_LOW_WORD: u64 = 1 << 56;

/// A socket address as words (family and port, then the address in two halves): compared
/// without a `memcmp` call, which programs cannot make.
#[inline(always)]
fn words(addr: &SockAddr) -> [u64; 3] {
    // SAFETY: SockAddr is 24 bytes of plain integers.
    unsafe { core::mem::transmute::<SockAddr, [u64; 3]>(*addr) }
}

#[inline(always)]
fn same_end(a: &SockAddr, b: &SockAddr) -> bool {
    let (a, b) = (words(a), words(b));
    a[0] == b[0] && a[1] == b[1] && a[2] == b[2]
}

fn local_end_key(state: &ConnState) -> LocalEndKey {
    LocalEndKey {
        net: state.net,
        local: state.local,
        remote: state.remote,
    }
}

/// The connection's other end, if it is tracked on this host. Looked up by address for a few
/// calls (a client's first write usually comes before the server's accept), then remembered.
#[inline(always)]
fn peer_of(state: &mut ConnState) -> Option<*const ConnState> {
    if state.peer_lookups == PEER_FOUND {
        let peer = CONNS.get_ptr(state.peer);
        // SAFETY: map value pointer from a successful lookup, read only.
        return match peer {
            Some(peer) if unsafe { (*peer).generation } == state.peer_generation => Some(peer),
            _ => {
                state.peer_lookups = 0;
                None
            }
        };
    }
    if state.peer_lookups == 0 {
        return None;
    }
    state.peer_lookups -= 1;
    let other_end = LocalEndKey {
        net: state.net,
        local: state.remote,
        remote: state.local,
    };
    // SAFETY: plain lookup, value copied.
    let key = *unsafe { LOCAL_ENDS.get(other_end) }?;
    let peer = CONNS.get_ptr(key)?;
    // SAFETY: map value pointer from a successful lookup, read only. The fd behind an entry may
    // have been reused since it was added: the addresses must still be the swapped ones.
    let found = unsafe {
        (*peer).net == state.net
            && same_end(&(*peer).local, &state.remote)
            && same_end(&(*peer).remote, &state.local)
    };
    if !found {
        return None;
    }
    state.peer = key;
    // SAFETY: as above.
    state.peer_generation = unsafe { (*peer).generation };
    state.peer_lookups = PEER_FOUND;
    Some(peer)
}

/// Whether the bytes a read of `size` at `position` moved are all in its peer's kept range,
/// recently enough for the agent to still hold them.
#[inline(always)]
fn kept_by(peer: *const ConnState, position: u64, size: u64) -> bool {
    // SAFETY: map value pointer from a successful lookup, read only. The peer's CPU may be
    // updating the range: a torn read can only name bytes the agent checks it holds.
    let (from, to) = unsafe { ((*peer).kept_from, (*peer).kept_to) };
    from <= position && position + size <= to && to - position <= ECHO_WINDOW_BYTES
}

/// Whether this end has read exactly `position` bytes of its stream, as TCP's sequence numbers
/// count them (modulo 2^32: one read each time): its positions are the stream's, so a peer's
/// bytes at the same positions are the ones it read. Not so once bytes moved through calls the
/// programs do not see (io_uring, splice), or while another thread reads the same socket.
#[inline(always)]
fn read_in_step(state: &ConnState, position: u64) -> bool {
    state.tcp_read_base_known != 0
        && socket::tcp_read_seq(state.tcp_sock)
            .is_some_and(|seq| seq.wrapping_sub(state.tcp_read_base) == position as u32)
}

/// A connecting end's first read, which leaves it at stream `position`: its read positions
/// count from here (see `ConnState::tcp_read_base`).
#[inline(always)]
fn learn_read_base(state: &mut ConnState, position: u64) {
    if let Some(seq) = socket::tcp_read_seq(state.tcp_sock) {
        state.tcp_read_base = seq.wrapping_sub(position as u32);
        state.tcp_read_base_known = 1;
    }
}

/// Whether this end has written exactly `position` bytes of its stream (see [`read_in_step`]).
#[inline(always)]
fn written_in_step(state: &ConnState, position: u64) -> bool {
    socket::tcp_write_seq(state.tcp_sock)
        .is_some_and(|seq| seq.wrapping_sub(state.tcp_write_base) == position as u32)
}

/// Forget a connection when its fd is closed, telling the agent if it knew about it.
pub fn close(tgid: u32, fd: u32) {
    let key = conn_key(tgid, fd);
    // Most closed fds are in neither map: a lookup is lock-free, a delete locks its bucket even
    // when the key is absent, and this runs on every close on the host.
    if IGNORED.get_ptr(key).is_some() {
        let _ = IGNORED.remove(key);
    }
    let Some(state) = CONNS.get_ptr(key) else {
        return;
    };
    // SAFETY: map value pointer from a successful lookup.
    let state = unsafe { *state };
    let _ = CONNS.remove(key);
    if state.local_end != 0 {
        let _ = LOCAL_ENDS.remove(local_end_key(&state));
    }
    if state.announced == 0 {
        return;
    }
    emit::emit::<ConnCloseEvent>(EventKind::ConnClose, |event| {
        event.header = emit::header(EventKind::ConnClose, core::mem::size_of::<ConnCloseEvent>());
        event.conn = ConnId {
            tgid,
            fd,
            generation: state.generation,
        };
        event.bytes = state.bytes;
    });
}

/// Who made a data call, and how.
#[derive(Clone, Copy)]
pub struct DataCall {
    pub tgid: u32,
    pub tid: u32,
    pub fd: u32,
    pub direction: Direction,
    pub source: Source,
    /// An `observer_common::Hook`.
    pub hook: u8,
    /// An `observer_common::TlsLibrary`.
    pub tls_library: u8,
}

impl DataCall {
    /// Plaintext a TLS library moved on `fd` for the current thread `pid_tgid`.
    #[inline(always)]
    pub fn tls_plaintext(
        pid_tgid: u64,
        fd: u32,
        direction: Direction,
        hook: u8,
        library: TlsLibrary,
    ) -> DataCall {
        DataCall {
            tgid: (pid_tgid >> 32) as u32,
            tid: pid_tgid as u32,
            fd,
            direction,
            source: Source::Tls,
            hook,
            tls_library: library as u8,
        }
    }
}

/// A call moved `size` bytes (`size` > 0) on its fd: classify the stream if needed, advance its
/// position, and ship the bytes if the stream is one the agent parses.
#[inline(always)]
pub fn on_data(call: &DataCall, payload: &Payload, size: u64) {
    let DataCall {
        tgid,
        tid,
        fd,
        direction,
        source,
        hook,
        tls_library,
    } = *call;
    let key = conn_key(tgid, fd);
    let state = match CONNS.get_ptr_mut(key) {
        Some(state) => state,
        None => match start_inferred(key, fd, payload, size) {
            Some(state) => state,
            None => return,
        },
    };
    // SAFETY: map value pointer from a successful lookup; only this CPU's program touches this
    // thread's connection state at a time in practice, and a torn counter is harmless.
    let state = unsafe { &mut *state };

    let s = source as usize;
    let d = direction as usize;
    if s >= Source::COUNT || d >= 2 {
        return;
    }
    let position = state.bytes[d][s];
    state.bytes[d][s] = position + size;

    if state.protocol[s] == Protocol::Unknown as u8 {
        if size < MIN_CLASSIFY_BYTES {
            // Too few bytes to tell anything: wait for a call that moves more.
            return;
        }
        let first = peek(payload, size);
        let protocol = protocol_of(first);
        if protocol == Protocol::Other {
            if state.origin == ConnOrigin::Inferred as u8 && state.peeks_left > 1 {
                // First seen mid-stream: the next call may start a message.
                state.peeks_left -= 1;
                return;
            }
            if source == Source::Syscall {
                // Not a protocol we parse: stop looking at this fd until it is closed.
                let _ = CONNS.remove(key);
                let _ = IGNORED.insert(key, 0, 0);
                return;
            }
        }
        state.protocol[s] = protocol as u8;
        if state.role_hint == RoleHint::Unknown as u8 {
            state.role_hint = role_hint(first, direction) as u8;
        }
    }

    let conn = ConnId {
        tgid,
        fd,
        generation: state.generation,
    };
    let protocol = state.protocol[s];
    if protocol == Protocol::Tls as u8 {
        // Ciphertext: never shipped, but the connection is announced so that the agent knows
        // it exists and counts its bytes at close, whether or not a TLS hook sees inside it.
        counters::add(Counter::TlsCiphertextBytes, size);
        announce_once(key, state, conn, tid, source);
        return;
    }
    if protocol != Protocol::Http1 as u8 && protocol != Protocol::Http2 as u8 {
        counters::add(Counter::CallsOtherProtocol, 1);
        return;
    }
    if !announce_once(key, state, conn, tid, source) {
        return;
    }
    // The stream's last call lost bytes: this one says so, so that the agent does not hold it
    // waiting for them (it would, for a reordering). Cleared once this call's events are out.
    let lost_bit = 1u8 << (d * Source::COUNT + s);
    let mut meta = CallMeta {
        conn,
        position,
        call_size: size,
        timestamp_ns: emit::now(),
        tid,
        direction: direction as u8,
        source: source as u8,
        hook,
        tls_library,
        flags: if state.lost_streams & lost_bit != 0 {
            DATA_FLAG_AFTER_LOSS
        } else {
            0
        },
    };
    // A host-local connection: what one end writes, the other reads. The reader echoes bytes
    // its writer shipped already instead of copying them again. (Syscall bytes only: TLS
    // plaintext is shipped by each end's library hooks, and ciphertext is never shipped.)
    if source == Source::Syscall && state.peer_lookups != 0 {
        if direction == Direction::Ingress && state.tcp_read_base_known == 0 {
            learn_read_base(state, position + size);
        }
        if let Some(peer) = peer_of(state) {
            if direction == Direction::Ingress {
                if kept_by(peer, position, size) && read_in_step(state, position + size) {
                    let peer = ConnId {
                        tgid: (state.peer >> 32) as u32,
                        fd: state.peer as u32,
                        generation: state.peer_generation,
                    };
                    let echoed = emit_echo(&meta, peer);
                    remember_loss(state, lost_bit, !echoed);
                    // A lost echo is counted as a drop (ring full), not as echoed bytes.
                    if echoed {
                        counters::add(Counter::EchoedBytes, size);
                    }
                    return;
                }
            } else {
                meta.flags |= DATA_FLAG_KEPT_FOR_PEER;
            }
        }
    }
    let shipped = emit_call(&meta, payload);
    remember_loss(state, lost_bit, shipped.lost);
    if meta.flags & DATA_FLAG_KEPT_FOR_PEER != 0 {
        // After the events are submitted: a reader that sees the range extended reserves its
        // echo after them, so the agent always has the bytes first.
        let end = position + size;
        if !shipped.whole() || !written_in_step(state, end) {
            state.kept_from = end;
        } else if state.kept_to != position {
            state.kept_from = position;
        }
        state.kept_to = end;
    }
}

/// Whether the stream's last call (`stream_bit` of `ConnState::lost_streams`) lost bytes, for
/// its next event to say so.
#[inline(always)]
fn remember_loss(state: &mut ConnState, stream_bit: u8, lost: bool) {
    if lost {
        state.lost_streams |= stream_bit;
    } else {
        state.lost_streams &= !stream_bit;
    }
}

/// An fd the kernel has not seen opened: a connection older than the agent, or a file, pipe or
/// socket of another protocol. Files and pipes are ignored at once when the socket check can
/// tell; sockets are tracked once their bytes look like HTTP or TLS.
fn start_inferred(key: u64, fd: u32, payload: &Payload, size: u64) -> Option<*mut ConnState> {
    let peeks_left = match IGNORED.get_ptr_mut(key) {
        // SAFETY: map value pointer from a successful lookup.
        Some(peeks) => unsafe { &mut *peeks },
        None => {
            let _ = IGNORED.insert(key, INFERRED_PEEK_CALLS, 0);
            IGNORED.get_ptr_mut(key).map(|p| unsafe { &mut *p })?
        }
    };
    if *peeks_left == 0 {
        return None;
    }
    let first = peek(payload, size);
    if first == FirstBytes::Unrecognised {
        *peeks_left -= 1;
        return None;
    }
    let state = insert_fresh(key, ConnOrigin::Inferred, &SockAddr::default(), 0)?;
    // SAFETY: map value pointer from a successful lookup.
    if socket::inspect_into(fd, unsafe { &mut *state }) == FdKind::NotSocket {
        // A file or pipe whose bytes looked like HTTP.
        let _ = CONNS.remove(key);
        *peeks_left = 0;
        counters::add(Counter::NotSockets, 1);
        return None;
    }
    let _ = IGNORED.remove(key);
    Some(state)
}

/// With a port filter set, whether either end of the connection is on a wanted port. Ends the
/// kernel could not read pass: the agent filters again once it knows them.
fn wanted_ports(state: &ConnState) -> bool {
    if !filter_by_port() || (state.local.family == 0 && state.remote.family == 0) {
        return true;
    }
    // SAFETY: plain lookups.
    unsafe {
        FILTER_PORTS.get(state.local.port).is_some()
            || FILTER_PORTS.get(state.remote.port).is_some()
    }
}

/// Send the connection's open event unless it went out already. False when the port filter
/// leaves the connection out: it is forgotten, and its fd ignored until closed.
#[inline(always)]
fn announce_once(key: u64, state: &mut ConnState, conn: ConnId, tid: u32, source: Source) -> bool {
    if state.announced != 0 {
        return true;
    }
    if !wanted_ports(state) {
        counters::add(Counter::ConnsFilteredByPort, 1);
        let _ = CONNS.remove(key);
        let _ = IGNORED.insert(key, 0, 0);
        return false;
    }
    state.announced = 1;
    let tls =
        source == Source::Tls || state.protocol[Source::Syscall as usize] == Protocol::Tls as u8;
    announce(conn, state, tid, if tls { CONN_FLAG_TLS } else { 0 });
    true
}

/// Whether `fd` of `tgid` is a connection whose bytes on the wire are TLS records: the only fds
/// a TLS library's plaintext is believed for when the library's fd could be something else.
#[inline(always)]
pub fn is_tls_socket(tgid: u32, fd: u32) -> bool {
    match CONNS.get_ptr(conn_key(tgid, fd)) {
        // SAFETY: map value pointer from a successful lookup.
        Some(state) => unsafe {
            (*state).protocol[Source::Syscall as usize] == Protocol::Tls as u8
        },
        None => false,
    }
}

fn announce(conn: ConnId, state: &ConnState, tid: u32, flags: u8) {
    let comm = bpf_get_current_comm().unwrap_or([0; 16]);
    let remote = state.remote;
    let local = state.local;
    let listen_fd = state.listen_fd;
    let origin = state.origin;
    let role_hint = state.role_hint;
    emit::emit::<ConnOpenEvent>(EventKind::ConnOpen, |event| {
        event.header = emit::header(EventKind::ConnOpen, core::mem::size_of::<ConnOpenEvent>());
        event.conn = conn;
        event.remote = remote;
        event.local = local;
        event.listen_fd = listen_fd;
        event.tid = tid;
        event.origin = origin;
        event.role_hint = role_hint;
        event.flags = flags;
        event.comm = comm;
    });
}

/// Whether calls on this fd need their arguments kept until exit.
#[inline(always)]
pub fn worth_watching(tgid: u32, fd: u32) -> bool {
    match IGNORED.get_ptr(conn_key(tgid, fd)) {
        // SAFETY: map value pointer from a successful lookup.
        Some(peeks) => (unsafe { *peeks }) > 0,
        None => true,
    }
}

/// Advance a tracked stream's position over bytes no hook can see (sendfile).
pub fn skip_bytes(tgid: u32, fd: u32, direction: Direction, size: u64) {
    let Some(state) = CONNS.get_ptr_mut(conn_key(tgid, fd)) else {
        return;
    };
    // SAFETY: map value pointer from a successful lookup.
    let state = unsafe { &mut *state };
    let d = direction as usize;
    if d < 2 {
        state.bytes[d][Source::Syscall as usize] += size;
    }
}
