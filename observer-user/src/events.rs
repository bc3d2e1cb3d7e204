//! Decoding the kernel's ring-buffer events into typed values.
//!
//! The second stage of the pipeline (after `capture`, or after reading a recording). Bytes from
//! the kernel are checked before they are trusted: length first, then kind, version and declared
//! size, then every enum field. Anything off is a [`DecodeError`] that the caller counts and skips;
//! nothing here panics on any input.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use observer_common::{
    ConnCloseEvent, ConnId, ConnOpenEvent, ConnOrigin, DataHeader, Direction, EchoEvent,
    EventHeader, EventKind, Hook, ProcessExecEvent, ProcessExitEvent, RoleHint, SockAddr, Source,
    TlsLibrary, AF_INET, AF_INET6, CONN_FLAG_TLS, DATA_FLAG_AFTER_LOSS, DATA_FLAG_CALL_TRUNCATED,
    DATA_FLAG_KEPT_FOR_PEER, DATA_FLAG_LAST_CHUNK, EVENT_VERSION,
};

/// Why a ring-buffer entry could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("event of {len} bytes is shorter than its {need}-byte layout")]
    TooShort { len: usize, need: usize },
    #[error("unknown event kind {0}")]
    UnknownKind(u16),
    #[error("event version {found} is not the {expected} this agent reads")]
    Version { found: u16, expected: u16 },
    #[error("event declares {declared} bytes but {available} are present")]
    SizeMismatch { declared: usize, available: usize },
    #[error("event field {field} has invalid value {value}")]
    InvalidField { field: &'static str, value: u64 },
}

impl DecodeError {
    /// A short stable name for counting errors by kind.
    pub fn label(&self) -> &'static str {
        match self {
            DecodeError::TooShort { .. } => "too_short",
            DecodeError::UnknownKind(_) => "unknown_kind",
            DecodeError::Version { .. } => "version",
            DecodeError::SizeMismatch { .. } => "size_mismatch",
            DecodeError::InvalidField { .. } => "invalid_field",
        }
    }
}

/// One decoded event. Data payloads borrow from the input bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    Data(Data<'a>),
    ConnOpen(ConnOpen),
    ConnClose(ConnClose),
    ProcessExec(ProcessExec),
    ProcessExit(ProcessExit),
    Echo(Echo),
}

impl Event<'_> {
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Data(_) => EventKind::Data,
            Event::ConnOpen(_) => EventKind::ConnOpen,
            Event::ConnClose(_) => EventKind::ConnClose,
            Event::ProcessExec(_) => EventKind::ProcessExec,
            Event::ProcessExit(_) => EventKind::ProcessExit,
            Event::Echo(_) => EventKind::Echo,
        }
    }

    pub fn timestamp_ns(&self) -> u64 {
        match self {
            Event::Data(e) => e.timestamp_ns,
            Event::ConnOpen(e) => e.timestamp_ns,
            Event::ConnClose(e) => e.timestamp_ns,
            Event::ProcessExec(e) => e.timestamp_ns,
            Event::ProcessExit(e) => e.timestamp_ns,
            Event::Echo(e) => e.read.timestamp_ns,
        }
    }
}

/// A chunk of bytes one call moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Data<'a> {
    pub timestamp_ns: u64,
    pub conn: ConnId,
    /// Stream position of `payload[0]`.
    pub position: u64,
    /// Bytes the whole call moved.
    pub call_size: u32,
    /// Offset of this chunk within its call.
    pub call_offset: u32,
    pub tid: u32,
    pub direction: Direction,
    pub source: Source,
    pub hook: Hook,
    pub tls_library: TlsLibrary,
    pub last_chunk: bool,
    pub call_truncated: bool,
    /// The connection's host-local peer may read these bytes without shipping them: they are
    /// kept until it does (see [`Echo`]).
    pub kept_for_peer: bool,
    /// The stream's bytes right before these were lost in the kernel (ring full): the hole
    /// before them will not be filled.
    pub after_loss: bool,
    pub payload: &'a [u8],
}

/// A read of bytes the connection's other end, tracked on the same host, shipped already: the
/// call as a data event without payload, and the end whose egress stream holds its bytes at the
/// same positions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Echo {
    pub read: Data<'static>,
    pub peer: ConnId,
}

impl Echo {
    /// The data event the reader would have shipped for the part of its read at `position`,
    /// with the echoed bytes there as its payload.
    pub fn with_payload<'a>(&self, position: u64, payload: &'a [u8]) -> Data<'a> {
        let into_read = position.saturating_sub(self.read.position);
        Data {
            position,
            call_offset: self
                .read
                .call_offset
                .saturating_add(u32::try_from(into_read).unwrap_or(u32::MAX)),
            payload,
            ..self.read.clone()
        }
    }
}

impl<'a> Data<'a> {
    /// A read or write syscall on `conn` that moved `payload` at `position`, whole, in one
    /// chunk: the common case, spelled once for fixtures and synthetic streams.
    pub fn whole_call(
        conn: ConnId,
        direction: Direction,
        position: u64,
        payload: &'a [u8],
        timestamp_ns: u64,
    ) -> Data<'a> {
        Data {
            timestamp_ns,
            conn,
            position,
            call_size: payload.len() as u32,
            call_offset: 0,
            tid: conn.tgid,
            direction,
            source: Source::Syscall,
            hook: match direction {
                Direction::Egress => Hook::Write,
                Direction::Ingress => Hook::Read,
            },
            tls_library: TlsLibrary::None,
            last_chunk: true,
            call_truncated: false,
            kept_for_peer: false,
            after_loss: false,
            payload,
        }
    }

    /// Stream position one past the call's last byte, captured or not.
    pub fn call_end(&self) -> u64 {
        self.position - u64::from(self.call_offset) + u64::from(self.call_size)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnOpen {
    pub timestamp_ns: u64,
    pub conn: ConnId,
    pub origin: ConnOrigin,
    pub role_hint: RoleHint,
    /// The peer, from the socket (or as connect()/accept() saw it); `None` when unknown and for
    /// non-IP families.
    pub remote: Option<SocketAddr>,
    /// This end, from the socket; `None` when the kernel could not read it.
    pub local: Option<SocketAddr>,
    /// The kernel's address family number (AF_INET, AF_INET6, AF_UNIX, ...), 0 if unknown.
    pub family: u16,
    pub listen_fd: Option<u32>,
    pub tid: u32,
    pub comm: String,
    /// The bytes on the wire are TLS records: announced for its ciphertext (its plaintext may
    /// or may not follow from a TLS hook).
    pub tls: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnClose {
    pub timestamp_ns: u64,
    pub conn: ConnId,
    /// Bytes moved over the connection's life, by direction then source.
    pub bytes: [[u64; Source::COUNT]; 2],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessExec {
    pub timestamp_ns: u64,
    pub tgid: u32,
    pub comm: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessExit {
    pub timestamp_ns: u64,
    pub tgid: u32,
}

/// Read a plain-integer struct from the front of `bytes`.
fn read<T: aya::Pod>(bytes: &[u8]) -> Result<T, DecodeError> {
    let need = size_of::<T>();
    if bytes.len() < need {
        return Err(DecodeError::TooShort {
            len: bytes.len(),
            need,
        });
    }
    // SAFETY: `T: Pod` is plain integers with no invalid bit patterns, and the length is checked;
    // `read_unaligned` needs no alignment.
    Ok(unsafe { bytes.as_ptr().cast::<T>().read_unaligned() })
}

/// Decode one ring-buffer entry.
pub fn decode(bytes: &[u8]) -> Result<Event<'_>, DecodeError> {
    let header: EventHeader = read(bytes)?;
    let kind = EventKind::try_from(header.kind).map_err(DecodeError::UnknownKind)?;
    if header.version != EVENT_VERSION {
        return Err(DecodeError::Version {
            found: header.version,
            expected: EVENT_VERSION,
        });
    }
    let declared = header.size as usize;
    if declared > bytes.len() {
        return Err(DecodeError::SizeMismatch {
            declared,
            available: bytes.len(),
        });
    }
    let bytes = &bytes[..declared];
    let ts = header.timestamp_ns;
    Ok(match kind {
        EventKind::Data => Event::Data(decode_data(bytes)?),
        EventKind::ConnOpen => {
            let e: ConnOpenEvent = read(bytes)?;
            let origin = ConnOrigin::from_u8(e.origin).ok_or(DecodeError::InvalidField {
                field: "origin",
                value: e.origin.into(),
            })?;
            let role_hint = RoleHint::from_u8(e.role_hint).ok_or(DecodeError::InvalidField {
                field: "role_hint",
                value: e.role_hint.into(),
            })?;
            Event::ConnOpen(ConnOpen {
                timestamp_ns: ts,
                conn: e.conn,
                origin,
                role_hint,
                remote: socket_addr(&e.remote),
                local: socket_addr(&e.local),
                family: if e.remote.family != 0 {
                    e.remote.family
                } else {
                    e.local.family
                },
                listen_fd: (origin == ConnOrigin::Accept).then_some(e.listen_fd),
                tid: e.tid,
                comm: comm(&e.comm),
                tls: e.flags & CONN_FLAG_TLS != 0,
            })
        }
        EventKind::ConnClose => {
            let e: ConnCloseEvent = read(bytes)?;
            Event::ConnClose(ConnClose {
                timestamp_ns: ts,
                conn: e.conn,
                bytes: e.bytes,
            })
        }
        EventKind::ProcessExec => {
            let e: ProcessExecEvent = read(bytes)?;
            Event::ProcessExec(ProcessExec {
                timestamp_ns: ts,
                tgid: e.tgid,
                comm: comm(&e.comm),
            })
        }
        EventKind::ProcessExit => {
            let e: ProcessExitEvent = read(bytes)?;
            Event::ProcessExit(ProcessExit {
                timestamp_ns: ts,
                tgid: e.tgid,
            })
        }
        EventKind::Echo => {
            let e: EchoEvent = read(bytes)?;
            let read = decode_data(&bytes[..size_of::<DataHeader>()])?;
            if read.call_offset != 0 {
                return Err(DecodeError::InvalidField {
                    field: "call_offset",
                    value: read.call_offset.into(),
                });
            }
            Event::Echo(Echo {
                read: Data {
                    payload: &[],
                    ..read
                },
                peer: e.peer,
            })
        }
    })
}

fn decode_data(bytes: &[u8]) -> Result<Data<'_>, DecodeError> {
    let h: DataHeader = read(bytes)?;
    let payload = &bytes[size_of::<DataHeader>()..];
    if payload.len() != h.captured_size as usize {
        return Err(DecodeError::SizeMismatch {
            declared: size_of::<DataHeader>() + h.captured_size as usize,
            available: bytes.len(),
        });
    }
    let invalid = |field, value: u8| DecodeError::InvalidField {
        field,
        value: value.into(),
    };
    let call_offset = u64::from(h.call_offset);
    if call_offset > h.position || call_offset + payload.len() as u64 > u64::from(h.call_size) {
        return Err(DecodeError::InvalidField {
            field: "call_offset",
            value: h.call_offset.into(),
        });
    }
    Ok(Data {
        timestamp_ns: h.header.timestamp_ns,
        conn: h.conn,
        position: h.position,
        call_size: h.call_size,
        call_offset: h.call_offset,
        tid: h.tid,
        direction: Direction::from_u8(h.direction).ok_or(invalid("direction", h.direction))?,
        source: Source::from_u8(h.source).ok_or(invalid("source", h.source))?,
        hook: Hook::from_u8(h.hook).ok_or(invalid("hook", h.hook))?,
        tls_library: TlsLibrary::from_u8(h.tls_library)
            .ok_or(invalid("tls_library", h.tls_library))?,
        last_chunk: h.flags & DATA_FLAG_LAST_CHUNK != 0,
        call_truncated: h.flags & DATA_FLAG_CALL_TRUNCATED != 0,
        kept_for_peer: h.flags & DATA_FLAG_KEPT_FOR_PEER != 0,
        after_loss: h.flags & DATA_FLAG_AFTER_LOSS != 0,
        payload,
    })
}

fn socket_addr(addr: &SockAddr) -> Option<SocketAddr> {
    let ip = match addr.family {
        AF_INET => IpAddr::V4(Ipv4Addr::new(
            addr.addr[0],
            addr.addr[1],
            addr.addr[2],
            addr.addr[3],
        )),
        AF_INET6 => {
            let v6 = Ipv6Addr::from(addr.addr);
            v6.to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, addr.port))
}

fn comm(raw: &[u8; 16]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

/// Encoding events back into the kernel's layout: for tests, fixtures and synthetic streams.
pub mod encode {
    use super::*;

    fn bytes_of<T: aya::Pod>(value: &T) -> &[u8] {
        // SAFETY: `T: Pod` has no padding and no invalid bytes; the slice covers exactly `value`.
        unsafe { std::slice::from_raw_parts((value as *const T).cast::<u8>(), size_of::<T>()) }
    }

    fn header(kind: EventKind, size: usize, timestamp_ns: u64) -> EventHeader {
        EventHeader {
            kind: kind as u16,
            version: EVENT_VERSION,
            size: size as u32,
            timestamp_ns,
        }
    }

    fn sock_addr(addr: Option<SocketAddr>, family: u16) -> SockAddr {
        let mut out = SockAddr {
            family,
            ..SockAddr::default()
        };
        match addr {
            Some(SocketAddr::V4(v4)) => {
                out.family = AF_INET;
                out.port = v4.port();
                out.addr[..4].copy_from_slice(&v4.ip().octets());
            }
            Some(SocketAddr::V6(v6)) => {
                out.family = AF_INET6;
                out.port = v6.port();
                out.addr = v6.ip().octets();
            }
            None => {}
        }
        out
    }

    fn comm_bytes(comm: &str) -> [u8; 16] {
        let mut out = [0u8; 16];
        let len = comm.len().min(15);
        out[..len].copy_from_slice(&comm.as_bytes()[..len]);
        out
    }

    fn data_header(kind: EventKind, size: usize, d: &Data<'_>) -> DataHeader {
        let mut flags = 0;
        if d.last_chunk {
            flags |= DATA_FLAG_LAST_CHUNK;
        }
        if d.call_truncated {
            flags |= DATA_FLAG_CALL_TRUNCATED;
        }
        if d.kept_for_peer {
            flags |= DATA_FLAG_KEPT_FOR_PEER;
        }
        if d.after_loss {
            flags |= DATA_FLAG_AFTER_LOSS;
        }
        DataHeader {
            header: header(kind, size, d.timestamp_ns),
            conn: d.conn,
            position: d.position,
            call_size: d.call_size,
            captured_size: d.payload.len() as u32,
            tid: d.tid,
            direction: d.direction as u8,
            source: d.source as u8,
            hook: d.hook as u8,
            flags,
            tls_library: d.tls_library as u8,
            _pad: [0; 3],
            call_offset: d.call_offset,
        }
    }

    /// The bytes the kernel would have written for `event`.
    pub fn event(event: &Event<'_>) -> Vec<u8> {
        match event {
            Event::Data(d) => {
                let size = size_of::<DataHeader>() + d.payload.len();
                let mut out = bytes_of(&data_header(EventKind::Data, size, d)).to_vec();
                out.extend_from_slice(d.payload);
                out
            }
            Event::Echo(e) => bytes_of(&EchoEvent {
                data: data_header(EventKind::Echo, size_of::<EchoEvent>(), &e.read),
                peer: e.peer,
            })
            .to_vec(),
            Event::ConnOpen(o) => bytes_of(&ConnOpenEvent {
                header: header(
                    EventKind::ConnOpen,
                    size_of::<ConnOpenEvent>(),
                    o.timestamp_ns,
                ),
                conn: o.conn,
                remote: sock_addr(o.remote, o.family),
                local: sock_addr(o.local, 0),
                listen_fd: o.listen_fd.unwrap_or(0),
                tid: o.tid,
                origin: o.origin as u8,
                role_hint: o.role_hint as u8,
                flags: if o.tls { CONN_FLAG_TLS } else { 0 },
                _pad: [0; 5],
                comm: comm_bytes(&o.comm),
            })
            .to_vec(),
            Event::ConnClose(c) => bytes_of(&ConnCloseEvent {
                header: header(
                    EventKind::ConnClose,
                    size_of::<ConnCloseEvent>(),
                    c.timestamp_ns,
                ),
                conn: c.conn,
                bytes: c.bytes,
            })
            .to_vec(),
            Event::ProcessExec(p) => bytes_of(&ProcessExecEvent {
                header: header(
                    EventKind::ProcessExec,
                    size_of::<ProcessExecEvent>(),
                    p.timestamp_ns,
                ),
                tgid: p.tgid,
                _pad: 0,
                comm: comm_bytes(&p.comm),
            })
            .to_vec(),
            Event::ProcessExit(p) => bytes_of(&ProcessExitEvent {
                header: header(
                    EventKind::ProcessExit,
                    size_of::<ProcessExitEvent>(),
                    p.timestamp_ns,
                ),
                tgid: p.tgid,
                _pad: 0,
            })
            .to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> ConnId {
        ConnId {
            tgid: 42,
            fd: 7,
            generation: 1_000,
        }
    }

    fn samples() -> Vec<Event<'static>> {
        vec![
            Event::Data(Data {
                timestamp_ns: 5,
                conn: conn(),
                position: 100,
                call_size: 300,
                call_offset: 100,
                tid: 43,
                direction: Direction::Egress,
                source: Source::Tls,
                hook: Hook::SslWriteEx,
                tls_library: TlsLibrary::OpenSsl,
                last_chunk: true,
                call_truncated: true,
                kept_for_peer: false,
                after_loss: true,
                payload: b"GET / HTTP/1.1\r\n",
            }),
            Event::Data(Data {
                kept_for_peer: true,
                ..Data::whole_call(conn(), Direction::Egress, 0, b"ok", 5)
            }),
            Event::ConnOpen(ConnOpen {
                timestamp_ns: 6,
                conn: conn(),
                origin: ConnOrigin::Accept,
                role_hint: RoleHint::Server,
                remote: Some("10.1.2.3:5555".parse().expect("literal")),
                local: Some("10.1.2.4:80".parse().expect("literal")),
                family: AF_INET,
                listen_fd: Some(3),
                tid: 42,
                comm: "nginx".into(),
                tls: false,
            }),
            Event::ConnOpen(ConnOpen {
                timestamp_ns: 6,
                conn: conn(),
                origin: ConnOrigin::Connect,
                role_hint: RoleHint::Client,
                remote: Some("[2001:db8::1]:443".parse().expect("literal")),
                local: None,
                family: AF_INET6,
                listen_fd: None,
                tid: 42,
                comm: "curl".into(),
                tls: true,
            }),
            Event::ConnClose(ConnClose {
                timestamp_ns: 7,
                conn: conn(),
                bytes: [[1, 2], [3, 4]],
            }),
            Event::ProcessExec(ProcessExec {
                timestamp_ns: 8,
                tgid: 9,
                comm: "python3".into(),
            }),
            Event::ProcessExit(ProcessExit {
                timestamp_ns: 9,
                tgid: 9,
            }),
            Event::Echo(Echo {
                read: Data {
                    call_size: 1_024,
                    ..Data::whole_call(conn(), Direction::Ingress, 4_096, &[], 10)
                },
                peer: ConnId {
                    tgid: 43,
                    fd: 9,
                    generation: 2_000,
                },
            }),
        ]
    }

    #[test]
    fn every_kind_round_trips() {
        for event in samples() {
            let bytes = encode::event(&event);
            assert_eq!(decode(&bytes), Ok(event));
        }
    }

    #[test]
    fn trailing_ring_space_is_ignored() {
        // Data entries are reserved in size classes; only `header.size` bytes are meaningful.
        let event = &samples()[0];
        let mut bytes = encode::event(event);
        bytes.extend_from_slice(&[0xAA; 64]);
        assert_eq!(decode(&bytes).as_ref(), Ok(event));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        for event in samples() {
            let bytes = encode::event(&event);
            for len in 0..bytes.len() {
                assert!(decode(&bytes[..len]).is_err(), "{event:?} cut at {len}");
            }
        }
    }

    #[test]
    fn bad_fields_are_typed_errors() {
        let mut bytes = encode::event(&samples()[0]);
        bytes[0] = 99;
        assert_eq!(decode(&bytes), Err(DecodeError::UnknownKind(99)));

        let mut bytes = encode::event(&samples()[0]);
        bytes[2] = 77;
        assert!(matches!(
            decode(&bytes),
            Err(DecodeError::Version { found: 77, .. })
        ));

        let mut bytes = encode::event(&samples()[0]);
        bytes[52] = 9; // direction
        assert!(matches!(
            decode(&bytes),
            Err(DecodeError::InvalidField {
                field: "direction",
                ..
            })
        ));

        let mut bytes = encode::event(&samples()[0]);
        bytes[44..48].copy_from_slice(&5u32.to_ne_bytes()); // captured_size disagrees with size
        assert!(matches!(
            decode(&bytes),
            Err(DecodeError::SizeMismatch { .. })
        ));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 200) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|i| (state >> (i % 56)) as u8).collect();
            if len >= 4 {
                // Make the header plausible so the deeper checks run too.
                bytes[0] = (state % 6) as u8;
                bytes[1] = 0;
                bytes[2] = EVENT_VERSION as u8;
                bytes[3] = 0;
            }
            let _ = decode(&bytes);
        }
    }
}
