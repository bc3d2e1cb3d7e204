//! What the pipeline tests share: kernel events of a call, as the capture sends them.

use std::io::Write;

use observer::events::{encode, ConnClose, ConnOpen, Data, Event};
use observer_common::{ConnId, ConnOrigin, Direction, RoleHint, Source};

/// The kernel events of a plaintext call on connection `conn` whose response comes in pieces at
/// their stream positions: bytes between two pieces were lost in the kernel.
pub fn call_events_in_pieces(
    conn: ConnId,
    request: &[u8],
    response: &[(u64, &[u8])],
) -> Vec<Vec<u8>> {
    let data = |ts: u64, direction: Direction, position: u64, payload: &[u8]| {
        encode::event(&Event::Data(Data::whole_call(
            conn, direction, position, payload, ts,
        )))
    };
    let mut events = vec![
        encode::event(&Event::ConnOpen(ConnOpen {
            timestamp_ns: 1_000,
            conn,
            origin: ConnOrigin::Connect,
            role_hint: RoleHint::Unknown,
            remote: Some("10.1.2.3:8080".parse().expect("address")),
            local: None,
            family: 2,
            listen_fd: None,
            tid: conn.tgid,
            comm: "client".into(),
            tls: false,
        })),
        data(2_000, Direction::Egress, 0, request),
    ];
    for (&(position, piece), ts) in response.iter().zip(3_000..) {
        events.push(data(ts, Direction::Ingress, position, piece));
    }
    events.push(encode::event(&Event::ConnClose(ConnClose {
        timestamp_ns: 4_000,
        conn,
        bytes: [[0; Source::COUNT]; 2],
    })));
    events
}

/// `bytes` compressed as a server's gzip content coding.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}
