//! The protocol stage: frames and parses the messages in one connection's byte streams.
//!
//! ```text
//! capture ──> events ──> conn ──> [protocol] ──> pairing ──> ...
//! ```
//!
//! `conn` reassembles each direction of a connection into an ordered byte stream and hands it
//! here as [`Segment`]s: bytes, holes where bytes were lost, and the end of the stream. The
//! parsers in this stage turn that stream into messages (a head and a captured body prefix),
//! typed errors, and the point where HTTP stops (an upgrade or a CONNECT tunnel). They never
//! see a connection id or a process: that context stays with `conn` and joins again later.
//!
//! Everything here reads untrusted bytes from every process on the host, so every parser is
//! incremental (a message may arrive one byte at a time without being rescanned), bounded in
//! memory (see [`http1::ParserLimits`]), and returns errors instead of panicking.

pub mod coding;
pub mod http1;

/// One step of a reassembled byte stream, in stream order: the protocol stage's input.
///
/// Timestamps are the kernel's monotonic clock (`CLOCK_MONOTONIC`, nanoseconds) at the call
/// that moved the bytes. Every byte of a segment shares its segment's timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segment<'a> {
    /// Contiguous bytes that follow what came before.
    Data { bytes: &'a [u8], ts_ns: u64 },
    /// `len` bytes of the stream were not captured (lost, or past the kernel's per-call cap).
    Gap { len: u64, ts_ns: u64 },
    /// `len` bytes of the stream that are not here because parsing them reads nothing: body
    /// past the capture limit, as parsing the same bytes at the connection's other end on this
    /// host showed. A parser that would have read them takes them as a gap.
    Unread { len: u64, ts_ns: u64 },
    /// The stream ended (the connection closed); a body read until close ends here.
    End { ts_ns: u64 },
}
