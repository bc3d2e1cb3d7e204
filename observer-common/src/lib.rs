//! The contract between observer's eBPF programs and its agent.
//!
//! Everything the kernel side writes into the ring buffer or a map, and everything the agent writes
//! into a map for the kernel to read, is defined here once. The types are boring on purpose:
//! `#[repr(C)]`, fixed-width integers, explicit padding, and a size assertion beside each one, so
//! both sides agree on the layout without a compiler in the loop (see `tests/layout.rs`).
//!
//! Every ring-buffer event starts with [`EventHeader`]; readers check `size`, then dispatch on
//! `kind` before trusting anything else. Event kinds are stable: never renumber one, leave a hole.
#![no_std]

pub mod limits;

use core::mem::size_of;

/// Version of the event layouts in this file. Bumped on any incompatible change so that a
/// recording made by an older agent is refused with a clear message instead of misread.
/// (Turning a zeroed padding byte into a field whose zero means what it always meant, as
/// `ConnOpenEvent::flags` did, is compatible and keeps the version.)
pub const EVENT_VERSION: u16 = 2;

/// Names of the maps and programs, shared so the agent never spells one differently.
pub mod names {
    pub const EVENTS: &str = "EVENTS";
    pub const COUNTERS: &str = "COUNTERS";
    pub const CONNS: &str = "CONNS";
    pub const IGNORED: &str = "IGNORED";
    pub const FILTER_PIDS: &str = "FILTER_PIDS";
    pub const FILTER_PORTS: &str = "FILTER_PORTS";
    /// Globals the agent sets at load time (see `limits` for what each bounds).
    pub const GLOBAL_AGENT_TGID: &str = "AGENT_TGID";
    pub const GLOBAL_CHUNK_SIZE: &str = "CHUNK_SIZE";
    pub const GLOBAL_MAX_BYTES_PER_CALL: &str = "MAX_BYTES_PER_CALL";
    pub const GLOBAL_FILTER_BY_PID: &str = "FILTER_BY_PID";
    pub const GLOBAL_FILTER_BY_PORT: &str = "FILTER_BY_PORT";
    pub const GLOBAL_KERNEL_LAYOUT: &str = "KERNEL_LAYOUT";
    pub const GLOBAL_WAKEUP_BYTES: &str = "WAKEUP_BYTES";
    /// Go `crypto/tls` call arguments between entry and return, by goroutine.
    pub const GO_TLS_ARGS: &str = "GO_TLS_ARGS";
}

/// What an event is. Stable numbers: recorded streams outlive agent versions.
#[repr(u16)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A chunk of bytes a process sent or received: [`DataEvent`].
    Data = 1,
    /// A connection became interesting (first HTTP-looking bytes): [`ConnOpenEvent`].
    ConnOpen = 2,
    /// A tracked connection was closed: [`ConnCloseEvent`].
    ConnClose = 3,
    /// A process called execve: [`ProcessExecEvent`]. The agent looks for TLS libraries in it.
    ProcessExec = 4,
    /// A process (thread-group leader) exited: [`ProcessExitEvent`].
    ProcessExit = 5,
    /// A process read bytes its host-local peer's end shipped already: [`EchoEvent`].
    Echo = 6,
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [
        EventKind::Data,
        EventKind::ConnOpen,
        EventKind::ConnClose,
        EventKind::ProcessExec,
        EventKind::ProcessExit,
        EventKind::Echo,
    ];

    /// Dense index for per-kind counters (`COUNTERS` is indexed by it).
    pub const fn index(self) -> usize {
        self as usize - 1
    }
}

impl TryFrom<u16> for EventKind {
    type Error = u16;

    fn try_from(value: u16) -> Result<Self, u16> {
        match value {
            1 => Ok(EventKind::Data),
            2 => Ok(EventKind::ConnOpen),
            3 => Ok(EventKind::ConnClose),
            4 => Ok(EventKind::ProcessExec),
            5 => Ok(EventKind::ProcessExit),
            6 => Ok(EventKind::Echo),
            other => Err(other),
        }
    }
}

/// The first 16 bytes of every ring-buffer event.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventHeader {
    /// An [`EventKind`] value.
    pub kind: u16,
    /// [`EVENT_VERSION`] of the program that wrote the event.
    pub version: u16,
    /// Meaningful bytes in this event, header included. Ring-buffer entries can be larger
    /// (payloads are reserved in fixed size classes); readers ignore the rest.
    pub size: u32,
    /// `bpf_ktime_get_ns()`: CLOCK_MONOTONIC, nanoseconds since boot.
    pub timestamp_ns: u64,
}

/// One connection as seen by one process. A socket fd is reused as soon as it is closed, so the
/// generation (the kernel time the connection was first seen) keeps two connections that shared
/// a (tgid, fd) from ever being merged.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "user", derive(serde::Serialize, serde::Deserialize))]
pub struct ConnId {
    pub tgid: u32,
    pub fd: u32,
    pub generation: u64,
}

/// Key of the kernel's connection table: the process and the fd, without generation.
pub const fn conn_key(tgid: u32, fd: u32) -> u64 {
    ((tgid as u64) << 32) | fd as u64
}

/// Which way bytes went, from the observed process's point of view.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// The process wrote the bytes (write, send*, SSL_write).
    Egress = 0,
    /// The process read the bytes (read, recv*, SSL_read).
    Ingress = 1,
}

impl Direction {
    pub const fn index(self) -> usize {
        self as usize
    }

    pub const fn from_u8(value: u8) -> Option<Direction> {
        match value {
            0 => Some(Direction::Egress),
            1 => Some(Direction::Ingress),
            _ => None,
        }
    }
}

/// Where the bytes were captured.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// Socket syscalls: the bytes on the wire.
    Syscall = 0,
    /// A TLS library's read/write functions: the plaintext inside TLS. Which library is in
    /// [`DataHeader::tls_library`].
    Tls = 1,
}

impl Source {
    /// Number of sources; each has its own byte positions per direction.
    pub const COUNT: usize = 2;

    pub const fn index(self) -> usize {
        self as usize
    }

    pub const fn from_u8(value: u8) -> Option<Source> {
        match value {
            0 => Some(Source::Syscall),
            1 => Some(Source::Tls),
            _ => None,
        }
    }
}

/// The TLS library whose hooks captured a [`Source::Tls`] event.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TlsLibrary {
    /// Not a TLS event.
    None = 0,
    /// OpenSSL (libssl, or a program that links it statically and exports its symbols).
    OpenSsl = 1,
    /// Go's `crypto/tls`, in any Go binary with a symbol table.
    Go = 2,
    /// GnuTLS (libgnutls): wget and many system tools.
    GnuTls = 3,
    /// NSS, through NSPR's I/O functions (libnspr4).
    Nss = 4,
    /// BoringSSL, OpenSSL's fork: the same SSL_read/SSL_write, linked statically into programs.
    BoringSsl = 5,
}

impl TlsLibrary {
    pub const fn from_u8(value: u8) -> Option<TlsLibrary> {
        match value {
            0 => Some(TlsLibrary::None),
            1 => Some(TlsLibrary::OpenSsl),
            2 => Some(TlsLibrary::Go),
            3 => Some(TlsLibrary::GnuTls),
            4 => Some(TlsLibrary::Nss),
            5 => Some(TlsLibrary::BoringSsl),
            _ => None,
        }
    }
}

/// Which syscall or library function produced a data event; kept for diagnostics.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    Read = 1,
    Write = 2,
    Readv = 3,
    Writev = 4,
    Recvfrom = 5,
    Sendto = 6,
    Recvmsg = 7,
    Sendmsg = 8,
    SslRead = 9,
    SslWrite = 10,
    SslReadEx = 11,
    SslWriteEx = 12,
    /// OpenSSL's internal read or write function, which the four wrappers above call.
    SslReadInternal = 13,
    SslWriteInternal = 14,
    /// Go's `crypto/tls.(*Conn).Read` and `.Write`.
    GoTlsRead = 15,
    GoTlsWrite = 16,
    /// GnuTLS's record functions.
    GnutlsRecordRecv = 17,
    GnutlsRecordSend = 18,
    /// NSPR's I/O functions, which NSS's SSL layer serves for TLS sockets.
    PrRead = 19,
    PrWrite = 20,
    PrRecv = 21,
    PrSend = 22,
}

impl Hook {
    pub const fn from_u8(value: u8) -> Option<Hook> {
        Some(match value {
            1 => Hook::Read,
            2 => Hook::Write,
            3 => Hook::Readv,
            4 => Hook::Writev,
            5 => Hook::Recvfrom,
            6 => Hook::Sendto,
            7 => Hook::Recvmsg,
            8 => Hook::Sendmsg,
            9 => Hook::SslRead,
            10 => Hook::SslWrite,
            11 => Hook::SslReadEx,
            12 => Hook::SslWriteEx,
            13 => Hook::SslReadInternal,
            14 => Hook::SslWriteInternal,
            15 => Hook::GoTlsRead,
            16 => Hook::GoTlsWrite,
            17 => Hook::GnutlsRecordRecv,
            18 => Hook::GnutlsRecordSend,
            19 => Hook::PrRead,
            20 => Hook::PrWrite,
            21 => Hook::PrRecv,
            22 => Hook::PrSend,
            _ => return None,
        })
    }
}

/// How the kernel learned about a connection.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnOrigin {
    /// The process called connect(): it is the client.
    Connect = 1,
    /// The process accepted it: it is the server.
    Accept = 2,
    /// The connection predates the agent (or its connect was missed); the role is inferred from
    /// the first bytes, and the agent resolves addresses through /proc.
    Inferred = 3,
}

impl ConnOrigin {
    pub const fn from_u8(value: u8) -> Option<ConnOrigin> {
        match value {
            1 => Some(ConnOrigin::Connect),
            2 => Some(ConnOrigin::Accept),
            3 => Some(ConnOrigin::Inferred),
            _ => None,
        }
    }
}

/// Role hint the kernel derives from the first bytes of an inferred connection.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleHint {
    Unknown = 0,
    Client = 1,
    Server = 2,
}

impl RoleHint {
    pub const fn from_u8(value: u8) -> Option<RoleHint> {
        match value {
            0 => Some(RoleHint::Unknown),
            1 => Some(RoleHint::Client),
            2 => Some(RoleHint::Server),
            _ => None,
        }
    }
}

/// [`SockAddr::family`] of IPv4 and IPv6 addresses (Linux's `AF_INET` and `AF_INET6`).
pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;

/// A socket address as the kernel saw it in connect()/accept(). `family` is AF_INET (2) or
/// AF_INET6 (10); other families (AF_UNIX, ...) leave the address zeroed.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SockAddr {
    pub family: u16,
    /// Host byte order.
    pub port: u16,
    pub _pad: u32,
    /// IPv4 in the first four bytes, or IPv6.
    pub addr: [u8; 16],
}

/// Header of a [`EventKind::Data`] event; `captured_size` payload bytes follow it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataHeader {
    pub header: EventHeader,
    pub conn: ConnId,
    /// Position of the first payload byte in this (connection, direction, source) stream: the
    /// number of bytes that went before it, captured or not. Gaps show up as jumps.
    pub position: u64,
    /// Bytes the whole call moved (its return value), possibly more than this chunk.
    pub call_size: u32,
    /// Payload bytes in this event.
    pub captured_size: u32,
    /// Thread that made the call.
    pub tid: u32,
    /// A [`Direction`].
    pub direction: u8,
    /// A [`Source`].
    pub source: u8,
    /// A [`Hook`].
    pub hook: u8,
    /// `DATA_FLAG_*` bits.
    pub flags: u8,
    /// A [`TlsLibrary`].
    pub tls_library: u8,
    pub _pad: [u8; 3],
    /// Offset of this chunk's first byte within its call: the call began at
    /// `position - call_offset` and ended at that plus `call_size`, so the bytes a truncated
    /// call did not ship are a known gap at once.
    pub call_offset: u32,
}

/// This chunk is the last one of its call.
pub const DATA_FLAG_LAST_CHUNK: u8 = 1 << 0;
/// The call moved more than the per-call cap; bytes past the cap were not captured.
pub const DATA_FLAG_CALL_TRUNCATED: u8 = 1 << 1;
/// The connection's other end is tracked on this host and may read these bytes without shipping
/// them again (it sends an [`EchoEvent`] instead): the agent keeps them until it does.
pub const DATA_FLAG_KEPT_FOR_PEER: u8 = 1 << 2;
/// Bytes of this stream right before this event's were lost (the ring was full, or their
/// memory unreadable): the hole before it will not be filled, and the agent need not hold this
/// chunk waiting for it as it would for a reordering.
pub const DATA_FLAG_AFTER_LOSS: u8 = 1 << 3;

/// A data event with room for `N` payload bytes. The kernel reserves ring-buffer space in a few
/// fixed size classes (the verifier needs a constant size) and fills the payload in place.
#[repr(C)]
pub struct DataEvent<const N: usize> {
    pub header: DataHeader,
    pub payload: [u8; N],
}

/// A read of bytes the connection's other end, tracked on the same host, wrote and shipped (with
/// [`DATA_FLAG_KEPT_FOR_PEER`]) before: both ends of a host-local connection move the same bytes,
/// and copying them twice into the ring doubled the cost in both processes' paths. The agent takes
/// the payload from the peer's stream at the same position: a writer's egress position is its
/// reader's ingress position, since both ends are tracked from their first byte.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EchoEvent {
    /// As for a data event, with `captured_size` 0 and the whole call in one event.
    pub data: DataHeader,
    /// The end whose egress stream holds the bytes.
    pub peer: ConnId,
}

/// Emitted once per connection, just before its first data event.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnOpenEvent {
    pub header: EventHeader,
    pub conn: ConnId,
    /// The peer: the server for `Connect`, the client for `Accept`. Read from the socket when the
    /// kernel layout is known, else from connect()/accept(); zero if neither.
    pub remote: SockAddr,
    /// This end of the connection, read from the socket (zero when the layout is unknown).
    pub local: SockAddr,
    /// For `Accept`: the listening fd, so the agent can find the local port once per listener.
    pub listen_fd: u32,
    /// Thread that opened (or first used) the connection.
    pub tid: u32,
    /// A [`ConnOrigin`].
    pub origin: u8,
    /// A [`RoleHint`].
    pub role_hint: u8,
    /// `CONN_FLAG_*` bits.
    pub flags: u8,
    pub _pad: [u8; 5],
    /// `comm` of the thread, NUL-padded: kept because short-lived processes may be gone from
    /// /proc before the agent looks.
    pub comm: [u8; 16],
}

/// The connection carries TLS records on the wire: announced for its ciphertext, so that the
/// agent counts its bytes even when no TLS hook sees its plaintext.
pub const CONN_FLAG_TLS: u8 = 1 << 0;

/// Emitted when a connection that had a [`ConnOpenEvent`] is closed.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnCloseEvent {
    pub header: EventHeader,
    pub conn: ConnId,
    /// Bytes moved over the life of the connection, by [`Direction`] then [`Source`], captured
    /// or not: the agent compares them with what it received to report loss.
    pub bytes: [[u64; Source::COUNT]; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessExecEvent {
    pub header: EventHeader,
    pub tgid: u32,
    pub _pad: u32,
    pub comm: [u8; 16],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessExitEvent {
    pub header: EventHeader,
    pub tgid: u32,
    pub _pad: u32,
}

/// What the kernel knows about the protocol of one stream of a connection.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Nothing seen yet.
    Unknown = 0,
    /// HTTP/1.x: shipped.
    Http1 = 1,
    /// TLS records: ciphertext, not shipped; the plaintext comes through the TLS hooks.
    Tls = 2,
    /// Something else (a database protocol, a file, a pipe): never shipped.
    Other = 3,
    /// HTTP/2 connection preface seen: shipped for the agent's future HTTP/2 parser.
    Http2 = 4,
}

/// Value of the kernel's connection table (`CONNS`), keyed by [`conn_key`]. (The agent moves fds
/// that turned out not to be sockets from `CONNS` to `IGNORED`.)
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnState {
    pub generation: u64,
    /// Bytes moved so far, by [`Direction`] then [`Source`]: the next event's position.
    pub bytes: [[u64; Source::COUNT]; 2],
    pub remote: SockAddr,
    pub local: SockAddr,
    pub listen_fd: u32,
    /// A [`Protocol`] per [`Source`].
    pub protocol: [u8; Source::COUNT],
    /// A [`ConnOrigin`].
    pub origin: u8,
    /// 1 once the [`ConnOpenEvent`] went out.
    pub announced: u8,
    /// Calls left in which an inferred connection may still show its first HTTP bytes.
    pub peeks_left: u8,
    /// A [`RoleHint`] from the first classified bytes.
    pub role_hint: u8,
    /// Whether the other end is tracked on this host: [`PEER_FOUND`], or lookups left
    /// (0: not host-local, or not found in time).
    pub peer_lookups: u8,
    /// 1 when this end is in `LOCAL_ENDS`, for its peer to find.
    pub local_end: u8,
    /// 1 once `tcp_read_base` is known (see there).
    pub tcp_read_base_known: u8,
    /// Streams whose last call lost bytes (ring full, unreadable memory), one bit each at
    /// `direction * Source::COUNT + source`: their next event carries [`DATA_FLAG_AFTER_LOSS`].
    pub lost_streams: u8,
    pub _pad: [u8; 2],
    /// The network namespace (its `struct net` address) the socket is in: the same addresses
    /// name different connections in different namespaces.
    pub net: u64,
    /// The other end, once found: its `conn_key` and generation.
    pub peer: u64,
    pub peer_generation: u64,
    /// Egress stream bytes `[kept_from, kept_to)` were shipped whole with
    /// [`DATA_FLAG_KEPT_FOR_PEER`]: the peer may echo reads inside it.
    pub kept_from: u64,
    pub kept_to: u64,
    /// The socket (its `struct sock` address) when it is TCP, 0 otherwise. A host-local end's
    /// sequence numbers tell whether its positions are the stream's.
    pub tcp_sock: u64,
    /// Sequence numbers less these are stream positions (modulo 2^32). `write_seq` when the
    /// connection was opened, before the application wrote a byte; `copied_seq` likewise for
    /// an accepted one, but a connecting end learns where its peer's bytes start only once the
    /// connection is established (a non-blocking connect returns before), so it counts from
    /// its first read.
    pub tcp_read_base: u32,
    pub tcp_write_base: u32,
}

/// `ConnState::peer_lookups` once the other end is known.
pub const PEER_FOUND: u8 = u8::MAX;

/// Key of the kernel's table of host-local connection ends (`LOCAL_ENDS`): an end's namespace
/// and its two addresses. The other end is found under the same namespace with the addresses
/// swapped.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LocalEndKey {
    pub net: u64,
    pub local: SockAddr,
    pub remote: SockAddr,
}

/// Where Go keeps the fd behind a `*tls.Conn` (Go 1.9 and later, on 64-bit targets): the data
/// word of the `tls.Conn.conn` interface (its first field; an interface is a type word then a
/// data word), which points to a `net.TCPConn`, whose first word is its `*netFD`, whose first
/// field is a `poll.FD`, whose `Sysfd int` follows its 16-byte `fdMutex`.
pub const GO_CONN_DATA_OFFSET: u64 = 8;
pub const GO_TCPCONN_FD_OFFSET: u64 = 0;
pub const GO_NETFD_SYSFD_OFFSET: u64 = 16;

/// Where this kernel keeps what the programs read to go from an fd to its socket's addresses:
/// byte offsets of struct members, found by the agent in the kernel's BTF at start-up (they
/// differ between kernel builds). `available == 0`: unknown, the programs do not look.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct KernelLayout {
    pub available: u32,
    pub task_files: u32,
    pub files_fdt: u32,
    pub fdtable_max_fds: u32,
    pub fdtable_fd: u32,
    /// `file.f_inode` and `inode.i_mode`: the file type tells a socket from a file or a pipe.
    pub file_inode: u32,
    pub inode_mode: u32,
    pub file_private_data: u32,
    pub socket_sk: u32,
    /// Offsets within `struct sock` (its `sock_common` comes first).
    pub sock_family: u32,
    pub sock_num: u32,
    pub sock_dport: u32,
    pub sock_daddr: u32,
    pub sock_rcv_saddr: u32,
    pub sock_v6_daddr: u32,
    pub sock_v6_rcv_saddr: u32,
    /// `sock_common.skc_net`: the socket's network namespace.
    pub sock_net: u32,
    /// `sock.sk_protocol`: the sequence numbers below are read only from TCP sockets.
    pub sock_protocol: u32,
    /// Offsets within `struct tcp_sock` (which begins with its `struct sock`): the sequence
    /// numbers of the next byte the application reads and of the byte after the last it wrote,
    /// whatever calls moved them.
    pub tcp_copied_seq: u32,
    pub tcp_write_seq: u32,
}

/// Per-CPU counters, indexed densely. Stable numbers, like event kinds.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Events the programs tried to send, per kind: `EventsAttempted + kind.index()`.
    EventsAttempted = 0,
    /// Events lost because the ring buffer was full, per kind: `DropRingFull + kind.index()`.
    DropRingFull = 8,
    /// Data chunks lost because user memory could not be read (page not present).
    DropReadUserFailed = 16,
    /// Calls that moved more than the per-call cap (bytes past it are not captured).
    CallsTruncated = 17,
    /// Bytes not captured because of the per-call cap.
    BytesTruncated = 18,
    /// Connections not tracked because the connection table was full.
    DropConnTableFull = 19,
    /// TLS calls whose socket could not be found (no syscall underneath, no earlier mapping).
    TlsWithoutFd = 20,
    /// Syscall bytes skipped because the stream is TLS ciphertext.
    TlsCiphertextBytes = 21,
    /// Calls skipped because the stream is not a protocol the agent parses.
    CallsOtherProtocol = 22,
    /// TLS calls lost because the map of their arguments between entry and return was full (more
    /// live threads making TLS calls than it holds: a thread keeps its entry until it exits).
    DropArgsTableFull = 23,
    /// fds that looked like HTTP but the socket check found were files or pipes.
    NotSockets = 24,
    /// Connections left out by the port filter.
    ConnsFilteredByPort = 25,
    /// TLS library calls skipped because their fd is not a socket seen carrying TLS records:
    /// NSPR's PR_Read/PR_Write on files and pipes, Go's crypto/tls over something other than a
    /// TCP connection.
    TlsCallsNotOnTlsSocket = 26,
    /// Bytes read on a host-local connection that were not copied again because the other end
    /// shipped them (see [`EchoEvent`]), counted once the echo is submitted: an echo lost to a
    /// full ring is a drop, not an echo.
    EchoedBytes = 27,
}

/// Slots in the counters array (with room for kinds and reasons still to come).
pub const COUNTER_SLOTS: u32 = 32;

impl Counter {
    pub const fn slot(self) -> u32 {
        self as u32
    }
}

// Layout assertions: these sizes are the ABI. A change here is a change to EVENT_VERSION.
const _: () = assert!(size_of::<EventHeader>() == 16);
const _: () = assert!(size_of::<ConnId>() == 16);
const _: () = assert!(size_of::<SockAddr>() == 24);
const _: () = assert!(size_of::<DataHeader>() == 64);
const _: () = assert!(size_of::<DataEvent<1>>() == 72);
const _: () = assert!(size_of::<EchoEvent>() == 80);
const _: () = assert!(size_of::<LocalEndKey>() == 56);
const _: () = assert!(size_of::<ConnOpenEvent>() == 112);
const _: () = assert!(size_of::<ConnCloseEvent>() == 64);
const _: () = assert!(size_of::<ProcessExecEvent>() == 40);
const _: () = assert!(size_of::<ProcessExitEvent>() == 24);
const _: () = assert!(size_of::<ConnState>() == 160);
const _: () = assert!(size_of::<KernelLayout>() == 80);
const _: () = assert!(EventKind::ALL.len() <= (Counter::DropRingFull as usize));
const _: () = assert!(
    Counter::DropRingFull as usize + EventKind::ALL.len() <= Counter::DropReadUserFailed as usize
);

#[cfg(feature = "user")]
mod pod {
    use super::*;

    // SAFETY: all of these are repr(C), contain only integers and arrays of integers, and have
    // no implicit padding (the size assertions above pin every byte).
    unsafe impl aya::Pod for EventHeader {}
    unsafe impl aya::Pod for ConnId {}
    unsafe impl aya::Pod for SockAddr {}
    unsafe impl aya::Pod for DataHeader {}
    unsafe impl aya::Pod for EchoEvent {}
    unsafe impl aya::Pod for LocalEndKey {}
    unsafe impl aya::Pod for ConnOpenEvent {}
    unsafe impl aya::Pod for ConnCloseEvent {}
    unsafe impl aya::Pod for ProcessExecEvent {}
    unsafe impl aya::Pod for ProcessExitEvent {}
    unsafe impl aya::Pod for ConnState {}
    unsafe impl aya::Pod for KernelLayout {}
}
