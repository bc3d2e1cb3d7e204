//! Every map and load-time global of the kernel side, in one place.
//!
//! Map names are the static names below; the agent refers to them through
//! `observer_common::names`, and its loader test checks that both agree.

use aya_ebpf::{
    macros::map,
    maps::{HashMap, LruHashMap, PerCpuArray, RingBuf},
};
use observer_common::{
    limits::MAX_FILTER_PORTS,
    limits::{
        default_wakeup_bytes, DEFAULT_CHUNK_SIZE, DEFAULT_MAX_BYTES_PER_CALL,
        DEFAULT_RING_BUFFER_BYTES, MAX_CONNS, MAX_FILTER_PIDS, MAX_GO_TLS_CALLS, MAX_LOCAL_ENDS,
        MAX_TLS_CALL_THREADS, MAX_TLS_SESSIONS,
    },
    ConnState, KernelLayout, LocalEndKey, COUNTER_SLOTS,
};

use crate::inflight::{GoTlsArgs, GoroutineKey, TlsArgs, TlsSessionKey};

/// The one ring buffer every event goes through. The agent may resize it at load.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(DEFAULT_RING_BUFFER_BYTES, 0);

/// Per-CPU counters (`observer_common::Counter` slots).
#[map]
pub static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNTER_SLOTS, 0);

/// Bytes of events submitted on this CPU since its last forced wake-up.
#[map]
pub static UNANNOUNCED_BYTES: PerCpuArray<u32> = PerCpuArray::with_max_entries(1, 0);

/// Connections worth watching, by `conn_key(tgid, fd)`: not yet classified, HTTP, or TLS.
#[map]
pub static CONNS: LruHashMap<u64, ConnState> = LruHashMap::with_max_entries(MAX_CONNS, 0);

/// Host-local connection ends (both addresses on this host) by namespace and addresses, with
/// their `conn_key`: each end finds the other under the swapped addresses (see `conn::peer`).
#[map]
pub static LOCAL_ENDS: LruHashMap<LocalEndKey, u64> =
    LruHashMap::with_max_entries(MAX_LOCAL_ENDS, 0);

/// fds known not to carry HTTP (files, pipes, other protocols), by `conn_key`, with the number
/// of calls still allowed to show HTTP bytes (0: skip). A separate LRU map so
/// that a process churning through files evicts only other ignored fds, never a connection.
#[map]
pub static IGNORED: LruHashMap<u64, u8> = LruHashMap::with_max_entries(MAX_CONNS, 0);

/// TLS call arguments between entry and return, by pid_tgid: one entry per live thread that has
/// made a TLS call, rewritten by each call and removed when the thread exits (see
/// `TlsArgs::in_call`). Syscalls made underneath a call on the same thread fill in the fd.
#[map]
pub static TLS_ARGS: HashMap<u64, TlsArgs> = HashMap::with_max_entries(MAX_TLS_CALL_THREADS, 0);

/// The fd behind each TLS session, learned from the syscalls underneath its calls: SSL_read can
/// be answered from OpenSSL's buffer without any syscall.
#[map]
pub static TLS_SESSIONS: LruHashMap<TlsSessionKey, u32> =
    LruHashMap::with_max_entries(MAX_TLS_SESSIONS, 0);

/// Go `crypto/tls` call arguments between entry and return, by goroutine (see `go_tls.rs`).
#[map]
pub static GO_TLS_ARGS: LruHashMap<GoroutineKey, GoTlsArgs> =
    LruHashMap::with_max_entries(MAX_GO_TLS_CALLS, 0);

/// Processes to watch when `FILTER_BY_PID` is set.
#[map]
pub static FILTER_PIDS: HashMap<u32, u8> = HashMap::with_max_entries(MAX_FILTER_PIDS, 0);

/// Ports to watch (either end of a connection) when `FILTER_BY_PORT` is set.
#[map]
pub static FILTER_PORTS: HashMap<u16, u8> = HashMap::with_max_entries(MAX_FILTER_PORTS, 0);

// Load-time globals. `#[no_mangle]` keeps their symbol names for the loader; reads go through
// `read_volatile` so the compiler cannot fold the defaults in.

/// The agent's own process: its traffic is never captured.
#[unsafe(no_mangle)]
static AGENT_TGID: u32 = 0;

#[unsafe(no_mangle)]
static CHUNK_SIZE: u32 = DEFAULT_CHUNK_SIZE;

#[unsafe(no_mangle)]
static MAX_BYTES_PER_CALL: u32 = DEFAULT_MAX_BYTES_PER_CALL;

/// Non-zero: only processes in `FILTER_PIDS` are watched.
#[unsafe(no_mangle)]
static FILTER_BY_PID: u32 = 0;

/// Bytes a CPU submits between forced wake-ups of the agent (0: the kernel's default, a wake-up
/// whenever the agent has caught up).
#[unsafe(no_mangle)]
static WAKEUP_BYTES: u32 = default_wakeup_bytes(DEFAULT_RING_BUFFER_BYTES);

/// Non-zero: only connections with an end on a port in `FILTER_PORTS` are shipped.
#[unsafe(no_mangle)]
static FILTER_BY_PORT: u32 = 0;

/// Offsets to read a socket's addresses (see `socket.rs`); all zero until the agent sets them.
#[unsafe(no_mangle)]
static KERNEL_LAYOUT: KernelLayout = KernelLayout {
    available: 0,
    task_files: 0,
    files_fdt: 0,
    fdtable_max_fds: 0,
    fdtable_fd: 0,
    file_inode: 0,
    inode_mode: 0,
    file_private_data: 0,
    socket_sk: 0,
    sock_family: 0,
    sock_num: 0,
    sock_dport: 0,
    sock_daddr: 0,
    sock_rcv_saddr: 0,
    sock_v6_daddr: 0,
    sock_v6_rcv_saddr: 0,
    sock_net: 0,
    sock_protocol: 0,
    tcp_copied_seq: 0,
    tcp_write_seq: 0,
};

#[inline(always)]
fn global(value: &'static u32) -> u32 {
    // SAFETY: reading a static; volatile so the loader's value is used, not the default.
    unsafe { core::ptr::read_volatile(value) }
}

pub fn agent_tgid() -> u32 {
    global(&AGENT_TGID)
}

pub fn chunk_size() -> u32 {
    global(&CHUNK_SIZE)
}

pub fn max_bytes_per_call() -> u32 {
    global(&MAX_BYTES_PER_CALL)
}

pub fn filter_by_pid() -> bool {
    global(&FILTER_BY_PID) != 0
}

pub fn wakeup_bytes() -> u32 {
    global(&WAKEUP_BYTES)
}

pub fn filter_by_port() -> bool {
    global(&FILTER_BY_PORT) != 0
}

/// One field of the kernel layout the loader wrote, read alone: a copy of the whole layout
/// took 80 bytes of the stack a uprobe's call chain shares (see `socket::inspect_into`).
#[inline(always)]
pub fn layout<T: Copy>(field: impl FnOnce(&KernelLayout) -> &T) -> T {
    // SAFETY: reading a static; volatile so the loader's value is used, not the default.
    unsafe { core::ptr::read_volatile(field(&KERNEL_LAYOUT)) }
}
