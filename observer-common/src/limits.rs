//! Every bound the kernel side works within, with the reason for its value.
//!
//! Compile-time limits size buffers and loops (the verifier needs constants); the `DEFAULT_*`
//! values are what the agent sets at load time, within those limits, unless told otherwise.

/// Payload capacity of the largest ring-buffer data entry. A call that moves more is split into
/// chunks of at most this size. 16 KiB keeps a 64 KiB write at four events while one entry stays
/// a small fraction of the ring, so a full ring drops little at once.
pub const MAX_CHUNK_SIZE: usize = 16 * 1024;

/// Payload sizes a data entry is reserved in, smallest first, below [`MAX_CHUNK_SIZE`] (the
/// largest). The verifier only accepts constant reservation sizes, and a chunk takes the first
/// class it fits in, so no chunk takes more than twice its size of ring: with classes of 1, 4
/// and 16 KiB, a 1.5 KiB response body took 4 KiB and an 8 KiB read (wrk's, and Python's
/// buffered sockets') took 16 KiB, and a ring held a third fewer of them before it filled.
pub const CHUNK_CLASSES: [usize; 4] = [1024, 2 * 1024, 4 * 1024, 8 * 1024];

// The classes must grow, each at most doubling the one before, up to `MAX_CHUNK_SIZE`.
const _: () = {
    let mut class = 0;
    while class < CHUNK_CLASSES.len() {
        let next = if class + 1 < CHUNK_CLASSES.len() {
            CHUNK_CLASSES[class + 1]
        } else {
            MAX_CHUNK_SIZE
        };
        assert!(CHUNK_CLASSES[class] < next && next <= 2 * CHUNK_CLASSES[class]);
        class += 1;
    }
};

/// Upper bound on the chunks one call produces: the loop bound the verifier sees. With 16 KiB
/// chunks this allows 512 KiB per call; the per-call cap below is usually the tighter bound.
pub const MAX_CHUNKS_PER_CALL: u32 = 32;

/// Default chunk size (settable at load, at most [`MAX_CHUNK_SIZE`]).
pub const DEFAULT_CHUNK_SIZE: u32 = MAX_CHUNK_SIZE as u32;

/// Default cap on bytes captured from one call. Headers and a body prefix are what the agent
/// needs; copying all of a 1 MiB write would cost the traced process for bytes nobody reads.
/// Bytes past the cap still advance the stream position, so the agent sees the gap, skips it
/// inside length-delimited bodies, and counts it (`Counter::BytesTruncated`).
pub const DEFAULT_MAX_BYTES_PER_CALL: u32 = 256 * 1024;

/// iovecs looked at per readv/writev/sendmsg/recvmsg call. Servers send a head and a body, or a
/// handful of buffers; 16 covers them. Later iovecs are counted as truncated.
pub const MAX_IOVECS: u32 = 16;

/// Ring buffer size by default: 32 MiB. At ~100k events/s of mostly small entries this holds
/// well over a second of traffic if the consumer stalls. Must be a power of two.
pub const DEFAULT_RING_BUFFER_BYTES: u32 = 32 * 1024 * 1024;

/// Events are submitted without waking the consumer, which polls on a short timer; a CPU wakes
/// it once it has submitted this share of the ring since its last wake-up, so that a burst is
/// drained long before the ring fills. A wake-up is an inter-processor interrupt raised inside
/// the traced process's call: ~7 µs on these VMs, where the interrupt controller is emulated.
pub const WAKEUP_RING_FRACTION: u32 = 16;

/// The default wake-up threshold for a ring of `ring_bytes`: see [`WAKEUP_RING_FRACTION`].
pub const fn default_wakeup_bytes(ring_bytes: u32) -> u32 {
    ring_bytes / WAKEUP_RING_FRACTION
}

/// Connections tracked at once (an LRU map: the oldest idle ones go first).
pub const MAX_CONNS: u32 = 65_536;

/// Host-local connection ends indexed by their addresses, for their other ends to find: an LRU
/// map as large as the connection table (an end evicted early only means its peer ships the
/// bytes again).
pub const MAX_LOCAL_ENDS: u32 = MAX_CONNS;

/// Calls in which a host-local end looks for its other end before giving up: a client's first
/// write usually comes before the server accepts, its next call finds it.
pub const PEER_LOOKUP_CALLS: u8 = 8;

/// How far behind its writer a reader may be and still echo instead of shipping: the agent keeps
/// a writer's kept bytes for twice this long (see `ECHO_RETAINED_BYTES`), so a read this close
/// finds them even if the writer shipped more between the read's check and its event. Readers
/// usually trail by one response; a download the reader lags far behind ships its bytes again.
pub const ECHO_WINDOW_BYTES: u64 = 256 * 1024;

/// Bytes of a writer's kept egress stream the agent holds for its reader.
pub const ECHO_RETAINED_BYTES: u64 = 2 * ECHO_WINDOW_BYTES;

/// Threads whose TLS library calls are followed at once: each keeps its entry (the arguments
/// between a call's entry and return) from its first TLS call until it exits, so that a call
/// rewrites it in place instead of inserting and deleting it. More threads than a server making
/// TLS calls runs; past it, calls on new threads are counted as lost (`DropArgsTableFull`).
pub const MAX_TLS_CALL_THREADS: u32 = 16_384;

/// TLS session to socket mappings kept (an LRU map), for SSL_read calls OpenSSL answers from its
/// buffer without a syscall underneath.
pub const MAX_TLS_SESSIONS: u32 = 65_536;

/// Go `crypto/tls` calls in flight at once, keyed by goroutine. An LRU map: a goroutine that
/// never returns from a hooked call (it panicked through it) leaves an entry nothing removes,
/// and the oldest such entries must make room rather than fill the map for good.
pub const MAX_GO_TLS_CALLS: u32 = 16_384;

/// Largest fd number read from a Go `net.Conn` that is taken as one: Linux's default hard limit
/// on open files is 2^20, so anything larger is a misread, not an fd.
pub const MAX_GO_FD: i64 = 1 << 20;

/// Calls in which a connection first seen mid-stream (older than the agent) may still show the
/// start of an HTTP message before the kernel stops looking at it.
pub const INFERRED_PEEK_CALLS: u8 = 8;

/// Processes in the optional pid filter.
pub const MAX_FILTER_PIDS: u32 = 1024;

/// Ports in the optional port filter.
pub const MAX_FILTER_PORTS: u32 = 256;
