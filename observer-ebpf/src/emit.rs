//! Writing events into the ring buffer: headers, bounded payload chunks, batched wake-ups.

use aya_ebpf::{
    bindings::{BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::{bpf_ktime_get_ns, generated::bpf_probe_read_user},
};
use observer_common::{
    limits::{CHUNK_CLASSES, MAX_CHUNKS_PER_CALL, MAX_CHUNK_SIZE, MAX_IOVECS},
    ConnId, Counter, DataEvent, DataHeader, EchoEvent, EventHeader, EventKind,
    DATA_FLAG_AFTER_LOSS, DATA_FLAG_CALL_TRUNCATED, DATA_FLAG_LAST_CHUNK, EVENT_VERSION,
};

use crate::{
    counters,
    inflight::{Payload, PayloadKind},
    maps::{chunk_size, max_bytes_per_call, wakeup_bytes, EVENTS, UNANNOUNCED_BYTES},
};

/// The header of an event of `kind` and `size` bytes, stamped now.
pub fn header(kind: EventKind, size: usize) -> EventHeader {
    header_at(kind, size, now())
}

fn header_at(kind: EventKind, size: usize, timestamp_ns: u64) -> EventHeader {
    EventHeader {
        kind: kind as u16,
        version: EVENT_VERSION,
        size: size as u32,
        timestamp_ns,
    }
}

#[inline(always)]
pub fn now() -> u64 {
    // SAFETY: no preconditions.
    unsafe { bpf_ktime_get_ns() }
}

/// Submit flags for an event of `bytes`: wake the consumer once this CPU has submitted
/// `WAKEUP_BYTES` since its last wake-up, and let its timed poll pick up the rest, because a
/// wake-up is an interrupt raised inside the traced process's call (see
/// `limits::WAKEUP_RING_FRACTION`).
#[inline(always)]
pub fn wakeup_flags(bytes: u32) -> u64 {
    let threshold = wakeup_bytes();
    if threshold == 0 {
        return 0;
    }
    let Some(unannounced) = UNANNOUNCED_BYTES.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: per-CPU slot, only this CPU writes it while the program runs.
    unsafe {
        *unannounced = (*unannounced).saturating_add(bytes);
        if *unannounced >= threshold {
            *unannounced = 0;
            BPF_RB_FORCE_WAKEUP as u64
        } else {
            BPF_RB_NO_WAKEUP as u64
        }
    }
}

/// Reserve, fill and submit a fixed-size event, counting the attempt and any drop.
#[inline(always)]
pub fn emit<T: 'static>(kind: EventKind, fill: impl FnOnce(&mut T)) -> bool {
    counters::event_attempted(kind);
    let Some(mut entry) = EVENTS.reserve::<T>(0) else {
        counters::ring_full(kind);
        return false;
    };
    // SAFETY: every event type is plain integers; `fill` writes every field it cares about and
    // the rest is never read past `header.size`... but we still zero it so no kernel memory
    // leaks to user space.
    let event = unsafe {
        core::ptr::write_bytes(entry.as_mut_ptr(), 0, 1);
        &mut *entry.as_mut_ptr()
    };
    fill(event);
    entry.submit(wakeup_flags(core::mem::size_of::<T>() as u32));
    true
}

/// Everything a data chunk shares with the other chunks of its call.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CallMeta {
    pub conn: ConnId,
    /// Stream position of the call's first byte.
    pub position: u64,
    /// The call's return value: bytes it moved.
    pub call_size: u64,
    /// When the call was seen: every chunk of it carries this time, read once.
    pub timestamp_ns: u64,
    pub tid: u32,
    pub direction: u8,
    pub source: u8,
    pub hook: u8,
    pub tls_library: u8,
    /// `DATA_FLAG_*` bits every chunk of the call carries.
    pub flags: u8,
}

/// Where a call's chunking stands: the state `observer_chunk_step` advances one step at a time.
#[repr(C)]
pub struct ChunkCursor {
    pub meta: CallMeta,
    pub payload: Payload,
    /// Bytes per chunk.
    pub chunk: u64,
    /// Bytes of the call to ship: the call size, capped.
    pub cap: u64,
    /// Bytes shipped (or attempted) so far.
    pub done: u64,
    /// Current buffer: next byte to ship and bytes left in it.
    pub cursor: u64,
    pub left_in_buffer: u64,
    /// For iovec payloads: the next entry to read and how many to read at most.
    pub next_iov: u64,
    pub iov_count: u64,
    /// Non-zero once a chunk was lost (ring full, unreadable memory).
    pub lost: u64,
}

/// What [`emit_call`] shipped of a call.
pub struct Shipped {
    /// A chunk was lost (ring full, unreadable memory).
    pub lost: bool,
    /// Bytes past the per-call cap were not shipped (the last chunk says so).
    pub truncated: bool,
}

impl Shipped {
    /// Every byte of the call went out.
    pub fn whole(&self) -> bool {
        !self.lost && !self.truncated
    }
}

/// Ship the bytes a call moved, in chunks of at most `CHUNK_SIZE`, up to `MAX_BYTES_PER_CALL`.
///
/// The loop body is a global BPF function, which the verifier checks once on its own; here it
/// sees only a call and a branch per iteration. With the body inlined, every combination of
/// branches across iterations was explored: "BPF program is too large. Processed 1000001 insn".
#[inline(always)]
pub fn emit_call(meta: &CallMeta, payload: &Payload) -> Shipped {
    let is_vector = payload.kind == PayloadKind::Vector;
    let mut state = ChunkCursor {
        meta: *meta,
        payload: *payload,
        chunk: (chunk_size() as u64).min(MAX_CHUNK_SIZE as u64).max(1),
        cap: meta.call_size.min(max_bytes_per_call() as u64),
        done: 0,
        cursor: if is_vector { 0 } else { payload.ptr },
        left_in_buffer: if is_vector { 0 } else { meta.call_size },
        next_iov: 0,
        iov_count: payload.len.min(MAX_IOVECS as u64),
        lost: 0,
    };
    for _ in 0..(MAX_CHUNKS_PER_CALL + MAX_IOVECS) {
        if observer_chunk_step(&mut state) != 0 {
            break;
        }
    }
    let truncated = meta.call_size > state.done;
    if truncated {
        counters::add(Counter::CallsTruncated, 1);
        counters::add(Counter::BytesTruncated, meta.call_size - state.done);
    }
    Shipped {
        lost: state.lost != 0,
        truncated,
    }
}

/// One step of [`emit_call`]: move to the next iovec, or emit one chunk. Returns non-zero when
/// the call is done.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn observer_chunk_step(state: *mut ChunkCursor) -> i32 {
    // SAFETY: the verifier requires global functions to check pointer arguments for null; the
    // caller passes its own stack struct.
    let Some(state) = (unsafe { state.as_mut() }) else {
        return 1;
    };
    if state.done >= state.cap {
        return 1;
    }
    if state.left_in_buffer == 0 {
        if state.payload.kind != PayloadKind::Vector || state.next_iov >= state.iov_count {
            return 1;
        }
        let iov = state.payload.ptr + state.next_iov * 16;
        state.next_iov += 1;
        // struct iovec { void *iov_base; size_t iov_len; }, read in one helper call.
        // SAFETY: helper read of user memory, which faults safely.
        return match unsafe { aya_ebpf::helpers::bpf_probe_read_user(iov as *const [u64; 2]) } {
            Ok([base, len]) => {
                state.cursor = base;
                state.left_in_buffer = len;
                0
            }
            Err(_) => 1,
        };
    }
    let n = state
        .left_in_buffer
        .min(state.chunk)
        .min(state.cap - state.done);
    let mut flags = state.meta.flags;
    if state.lost != 0 {
        flags |= DATA_FLAG_AFTER_LOSS;
    }
    if state.done + n >= state.cap {
        flags |= DATA_FLAG_LAST_CHUNK;
        if state.meta.call_size > state.cap {
            flags |= DATA_FLAG_CALL_TRUNCATED;
        }
    }
    if !emit_chunk(
        &state.meta,
        state.meta.position + state.done,
        state.cursor,
        n,
        flags,
    ) {
        state.lost = 1;
    }
    state.cursor += n;
    state.left_in_buffer -= n;
    state.done += n;
    0
}

// `emit_chunk` spells out one branch per class.
const _: () = assert!(CHUNK_CLASSES.len() == 4);

/// Emit one chunk in the smallest entry it fits in (see `limits::CHUNK_CLASSES`). False when it
/// was lost.
#[inline(always)]
fn emit_chunk(meta: &CallMeta, position: u64, src: u64, len: u64, flags: u8) -> bool {
    if len <= CHUNK_CLASSES[0] as u64 {
        emit_chunk_sized::<{ CHUNK_CLASSES[0] }>(meta, position, src, len, flags)
    } else if len <= CHUNK_CLASSES[1] as u64 {
        emit_chunk_sized::<{ CHUNK_CLASSES[1] }>(meta, position, src, len, flags)
    } else if len <= CHUNK_CLASSES[2] as u64 {
        emit_chunk_sized::<{ CHUNK_CLASSES[2] }>(meta, position, src, len, flags)
    } else if len <= CHUNK_CLASSES[3] as u64 {
        emit_chunk_sized::<{ CHUNK_CLASSES[3] }>(meta, position, src, len, flags)
    } else {
        emit_chunk_sized::<MAX_CHUNK_SIZE>(meta, position, src, len, flags)
    }
}

#[inline(always)]
fn emit_chunk_sized<const N: usize>(
    meta: &CallMeta,
    position: u64,
    src: u64,
    len: u64,
    flags: u8,
) -> bool {
    counters::event_attempted(EventKind::Data);
    let Some(mut entry) = EVENTS.reserve::<DataEvent<N>>(0) else {
        counters::ring_full(EventKind::Data);
        return false;
    };
    let event = entry.as_mut_ptr();
    // Bound the copy for the verifier: without it, "R2 unbounded memory access" on the read.
    let len = if len > N as u64 { N as u64 } else { len };
    // SAFETY: `len` <= N bytes into the reserved payload; the helper faults safely on bad `src`.
    let read = unsafe {
        bpf_probe_read_user(
            core::ptr::addr_of_mut!((*event).payload).cast(),
            len as u32,
            src as *const _,
        )
    };
    if read != 0 {
        entry.discard(0);
        counters::add(Counter::DropReadUserFailed, 1);
        return false;
    }
    // SAFETY: writing the header of our own reservation.
    unsafe {
        core::ptr::addr_of_mut!((*event).header).write(DataHeader {
            header: header_at(
                EventKind::Data,
                core::mem::size_of::<DataHeader>() + len as usize,
                meta.timestamp_ns,
            ),
            conn: meta.conn,
            position,
            call_size: meta.call_size as u32,
            captured_size: len as u32,
            tid: meta.tid,
            direction: meta.direction,
            source: meta.source,
            hook: meta.hook,
            flags,
            tls_library: meta.tls_library,
            _pad: [0; 3],
            call_offset: (position - meta.position) as u32,
        });
    }
    entry.submit(wakeup_flags(
        (core::mem::size_of::<DataHeader>() as u64 + len) as u32,
    ));
    true
}

/// A read whose bytes the connection's host-local peer shipped already (see `EchoEvent`): one
/// event for the whole call, with no payload. False when it was lost.
#[inline(always)]
pub fn emit_echo(meta: &CallMeta, peer: ConnId) -> bool {
    emit::<EchoEvent>(EventKind::Echo, |event| {
        event.data = DataHeader {
            header: header_at(
                EventKind::Echo,
                core::mem::size_of::<EchoEvent>(),
                meta.timestamp_ns,
            ),
            conn: meta.conn,
            position: meta.position,
            call_size: meta.call_size as u32,
            captured_size: 0,
            tid: meta.tid,
            direction: meta.direction,
            source: meta.source,
            hook: meta.hook,
            flags: DATA_FLAG_LAST_CHUNK | meta.flags,
            tls_library: meta.tls_library,
            _pad: [0; 3],
            call_offset: 0,
        };
        event.peer = peer;
    })
}
