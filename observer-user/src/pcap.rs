//! Packet captures as an input: `observer replay` of a pcap or pcapng file of plaintext HTTP.
//!
//! The classic passive source, for hosts where eBPF is not possible (or traffic captured
//! elsewhere). It sits where `capture` and `events` sit for live traffic:
//!
//! ```text
//! pcap/pcapng ─> link layer ─> IPv4/IPv6 ─> TCP ─> flows ─> events (ConnOpen, Data, ConnClose)
//!                                                    └────> facts (socket addresses) ─> Pipeline
//! ```
//!
//! Each TCP flow becomes one connection seen from its server's side: the client's bytes are
//! what the server read, the server's what it wrote, and each chunk's stream position is its
//! TCP sequence number relative to the flow's first (so `conn` puts retransmitted and reordered
//! segments back in order and reports holes as gaps, exactly as for kernel events). Which end
//! is the server comes from the handshake (`SYN` is sent by the client), else from the first
//! bytes (a request or a status line), else from the ports (the lower one serves).
//!
//! Nothing here trusts the file: every header is length-checked, undecodable packets are
//! counted and skipped, and the flow table is bounded.

use std::{
    collections::HashMap,
    fs::File,
    io::{self, Read},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::Path,
};

use observer_common::{ConnId, ConnOrigin, Direction, Hook, RoleHint, Source, TlsLibrary};
use pcap_parser::{pcapng::Block, Linktype, PcapBlockOwned, PcapError as ParserError};
use thiserror::Error;

use crate::{
    events::{ConnClose, ConnOpen, Data, Event},
    facts::{ClockSync, Fact, SocketInfo},
    pipeline::Pipeline,
};

/// Buffer of the capture reader: the largest block it can hold. Loopback captures carry
/// segments up to 64 KiB (offloads coalesce them), plus block headers.
const READER_BUFFER_BYTES: usize = 256 * 1024;

/// Bytes per data event fed to the pipeline, as the kernel side would chunk them.
const CHUNK_BYTES: usize = 16 * 1024;

/// TCP flows followed at once (as many as `conn` tracks). Past it, the least recently active
/// flow is closed to make room.
pub const MAX_FLOWS: usize = 100_000;

/// The process id given to connections from a capture: no process was observed.
const CAPTURE_TGID: u32 = 0;

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

const PCAP_MAGICS: [[u8; 4]; 4] = [
    [0xd4, 0xc3, 0xb2, 0xa1],
    [0xa1, 0xb2, 0xc3, 0xd4],
    [0x4d, 0x3c, 0xb2, 0xa1],
    [0xa1, 0xb2, 0x3c, 0x4d],
];
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

#[derive(Debug, Error)]
pub enum PcapError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{path}: not a readable pcap or pcapng file: {message}")]
    Format { path: String, message: String },
    #[error("writing the output: {0}")]
    Output(#[source] io::Error),
}

/// Whether `path` starts like a pcap or pcapng file (its magic bytes).
pub fn is_capture(path: &Path) -> Result<bool, PcapError> {
    let mut magic = [0u8; 4];
    let read = File::open(path)
        .and_then(|mut f| f.read(&mut magic))
        .map_err(|source| PcapError::Io {
            path: path.display().to_string(),
            source,
        })?;
    Ok(read == 4 && (PCAP_MAGICS.contains(&magic) || magic == PCAPNG_MAGIC))
}

/// What a capture held, besides what the pipeline counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureStats {
    pub packets: u64,
    pub tcp_segments: u64,
    /// Not IP, not TCP, or a link type this reader does not know.
    pub skipped: u64,
    /// Headers cut short or inconsistent.
    pub malformed: u64,
    /// IP fragments (not reassembled).
    pub fragments: u64,
    pub flows: u64,
    /// Flows closed early because the table was full.
    pub flows_evicted: u64,
}

/// One TCP segment, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    pub payload: &'a [u8],
}

/// Why a packet was not a TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    NotTcp,
    Malformed,
    Fragment,
}

/// Decode a packet of `linktype` down to its TCP segment.
pub fn decode_packet(linktype: Linktype, packet: &[u8]) -> Result<Segment<'_>, Skip> {
    let ip = match linktype {
        Linktype::ETHERNET => {
            let mut ethertype = u16::from_be_bytes([
                *packet.get(12).ok_or(Skip::Malformed)?,
                *packet.get(13).ok_or(Skip::Malformed)?,
            ]);
            let mut offset = 14;
            // 802.1Q / 802.1ad tags.
            while ethertype == 0x8100 || ethertype == 0x88a8 {
                let tag = packet.get(offset + 2..offset + 4).ok_or(Skip::Malformed)?;
                ethertype = u16::from_be_bytes([tag[0], tag[1]]);
                offset += 4;
            }
            match ethertype {
                0x0800 | 0x86dd => &packet[offset..],
                _ => return Err(Skip::NotTcp),
            }
        }
        Linktype::LINUX_SLL => packet.get(16..).ok_or(Skip::Malformed)?,
        Linktype::LINUX_SLL2 => packet.get(20..).ok_or(Skip::Malformed)?,
        Linktype::NULL | Linktype::LOOP => packet.get(4..).ok_or(Skip::Malformed)?,
        Linktype::RAW | Linktype::IPV4 | Linktype::IPV6 => packet,
        _ => return Err(Skip::NotTcp),
    };
    let version = ip.first().ok_or(Skip::Malformed)? >> 4;
    let (src_ip, dst_ip, tcp) = match version {
        4 => {
            let header_len = usize::from(ip[0] & 0x0f) * 4;
            if ip.len() < 20 || header_len < 20 || ip.len() < header_len {
                return Err(Skip::Malformed);
            }
            if ip[9] != 6 {
                return Err(Skip::NotTcp);
            }
            let flags_fragment = u16::from_be_bytes([ip[6], ip[7]]);
            if flags_fragment & 0x3fff != 0 {
                return Err(Skip::Fragment);
            }
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            // Total 0 is what segmentation offload leaves in captured headers: trust the
            // capture's length then. Otherwise, the header's (Ethernet pads short frames).
            let end = if total == 0 {
                ip.len()
            } else {
                total.min(ip.len())
            };
            if end < header_len {
                return Err(Skip::Malformed);
            }
            let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
            let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
            (IpAddr::V4(src), IpAddr::V4(dst), &ip[header_len..end])
        }
        6 => {
            if ip.len() < 40 {
                return Err(Skip::Malformed);
            }
            let payload_len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            let end = if payload_len == 0 {
                ip.len()
            } else {
                (40 + payload_len).min(ip.len())
            };
            let mut next = ip[6];
            let mut offset = 40;
            // Hop-by-hop, routing and destination options headers before TCP.
            while matches!(next, 0 | 43 | 60) {
                let ext = ip.get(offset..offset + 2).ok_or(Skip::Malformed)?;
                next = ext[0];
                offset += (usize::from(ext[1]) + 1) * 8;
            }
            if next == 44 {
                return Err(Skip::Fragment);
            }
            if next != 6 {
                return Err(Skip::NotTcp);
            }
            let mut src = [0u8; 16];
            let mut dst = [0u8; 16];
            src.copy_from_slice(&ip[8..24]);
            dst.copy_from_slice(&ip[24..40]);
            let tcp = ip.get(offset..end).ok_or(Skip::Malformed)?;
            (
                IpAddr::V6(Ipv6Addr::from(src)),
                IpAddr::V6(Ipv6Addr::from(dst)),
                tcp,
            )
        }
        _ => return Err(Skip::NotTcp),
    };
    if tcp.len() < 20 {
        return Err(Skip::Malformed);
    }
    let data_offset = usize::from(tcp[12] >> 4) * 4;
    if data_offset < 20 || data_offset > tcp.len() {
        return Err(Skip::Malformed);
    }
    let flags = tcp[13];
    Ok(Segment {
        src: SocketAddr::new(src_ip, u16::from_be_bytes([tcp[0], tcp[1]])),
        dst: SocketAddr::new(dst_ip, u16::from_be_bytes([tcp[2], tcp[3]])),
        seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
        fin: flags & 0x01 != 0,
        syn: flags & 0x02 != 0,
        rst: flags & 0x04 != 0,
        ack: flags & 0x10 != 0,
        payload: &tcp[data_offset..],
    })
}

/// One direction of a flow: where its byte stream starts in sequence space.
#[derive(Debug, Clone, Default)]
struct Stream {
    /// Sequence number of stream position 0.
    base: Option<u32>,
    /// One past the highest position seen (also the bytes the direction carried).
    end: u64,
    fin: bool,
}

impl Stream {
    /// The stream position of `seq`, unwrapping 32-bit sequence numbers around the highest
    /// position seen; `None` for bytes before the stream's start.
    fn position(&self, seq: u32) -> Option<u64> {
        let base = self.base?;
        let relative = seq.wrapping_sub(base);
        let epoch = self.end & !0xffff_ffff;
        let mut position = epoch | u64::from(relative);
        if position + (1 << 31) < self.end {
            position += 1 << 32;
        } else if position > self.end + (1 << 31) {
            position = position.checked_sub(1 << 32)?;
        }
        Some(position)
    }
}

struct Flow {
    conn: ConnId,
    client: SocketAddr,
    server: SocketAddr,
    /// Client to server, server to client.
    streams: [Stream; 2],
    /// Open event sent (the roles are known).
    opened: bool,
    last_ts_ns: u64,
}

/// Flows by their two ends, in a canonical order.
type FlowKey = (SocketAddr, SocketAddr);

fn flow_key(a: SocketAddr, b: SocketAddr) -> FlowKey {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

const HTTP_METHODS: &[&[u8]] = &[
    b"GET ",
    b"POST ",
    b"PUT ",
    b"DELETE ",
    b"PATCH ",
    b"HEAD ",
    b"OPTIONS ",
    b"TRACE ",
    b"CONNECT ",
];

/// Feeds TCP segments into a pipeline as the kernel events a server-side agent would have sent.
pub struct FlowTable {
    flows: HashMap<FlowKey, Flow>,
    next_fd: u32,
    pub stats: CaptureStats,
}

impl Default for FlowTable {
    fn default() -> Self {
        FlowTable {
            flows: HashMap::new(),
            next_fd: 1,
            stats: CaptureStats::default(),
        }
    }
}

impl FlowTable {
    pub fn segment(&mut self, ts_ns: u64, segment: &Segment<'_>, pipeline: &mut Pipeline) {
        self.stats.tcp_segments += 1;
        let key = flow_key(segment.src, segment.dst);
        if !self.flows.contains_key(&key) {
            if segment.payload.is_empty() && !segment.syn {
                // A bare ACK or FIN of a flow that ended or started before the capture.
                return;
            }
            if self.flows.len() >= MAX_FLOWS {
                self.evict_oldest(pipeline);
            }
            let Some((client, server)) = roles(segment) else {
                return;
            };
            let fd = self.next_fd;
            self.next_fd = self.next_fd.wrapping_add(1).max(1);
            self.stats.flows += 1;
            self.flows.insert(
                key,
                Flow {
                    conn: ConnId {
                        tgid: CAPTURE_TGID,
                        fd,
                        generation: ts_ns,
                    },
                    client,
                    server,
                    streams: [Stream::default(), Stream::default()],
                    opened: false,
                    last_ts_ns: ts_ns,
                },
            );
        }
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        flow.last_ts_ns = flow.last_ts_ns.max(ts_ns);
        let from_client = segment.src == flow.client;
        let stream = &mut flow.streams[usize::from(!from_client)];
        if segment.syn {
            stream.base = Some(segment.seq.wrapping_add(1));
        } else if stream.base.is_none() && !segment.payload.is_empty() {
            stream.base = Some(segment.seq);
        }
        if !flow.opened {
            flow.opened = true;
            pipeline.push_event(&Event::ConnOpen(ConnOpen {
                timestamp_ns: ts_ns,
                conn: flow.conn,
                origin: ConnOrigin::Accept,
                role_hint: RoleHint::Server,
                remote: Some(flow.client),
                local: None,
                family: if flow.client.is_ipv4() {
                    AF_INET
                } else {
                    AF_INET6
                },
                listen_fd: Some(0),
                tid: CAPTURE_TGID,
                comm: String::new(),
                tls: false,
            }));
            pipeline.push_fact(Fact::Socket(SocketInfo {
                conn: flow.conn,
                is_socket: true,
                local: Some(flow.server),
                remote: Some(flow.client),
            }));
        }
        let stream = &mut flow.streams[usize::from(!from_client)];
        if !segment.payload.is_empty() {
            if let Some(position) = stream.position(segment.seq) {
                // The server's view: it reads what the client sent, writes what it answers.
                let (direction, hook) = if from_client {
                    (Direction::Ingress, Hook::Read)
                } else {
                    (Direction::Egress, Hook::Write)
                };
                let size = u32::try_from(segment.payload.len()).unwrap_or(u32::MAX);
                for (i, chunk) in segment.payload.chunks(CHUNK_BYTES).enumerate() {
                    let offset = i * CHUNK_BYTES;
                    pipeline.push_event(&Event::Data(Data {
                        timestamp_ns: ts_ns,
                        conn: flow.conn,
                        position: position + offset as u64,
                        call_size: size,
                        call_offset: offset as u32,
                        tid: CAPTURE_TGID,
                        direction,
                        source: Source::Syscall,
                        hook,
                        tls_library: TlsLibrary::None,
                        last_chunk: offset + chunk.len() == segment.payload.len(),
                        call_truncated: false,
                        kept_for_peer: false,
                        after_loss: false,
                        payload: chunk,
                    }));
                }
                stream.end = stream.end.max(position + segment.payload.len() as u64);
            }
        }
        stream.fin |= segment.fin;
        if segment.rst || (flow.streams[0].fin && flow.streams[1].fin) {
            if let Some(flow) = self.flows.remove(&key) {
                close(&flow, ts_ns, pipeline);
            }
        }
    }

    fn evict_oldest(&mut self, pipeline: &mut Pipeline) {
        let oldest = self
            .flows
            .iter()
            .min_by_key(|(_, flow)| flow.last_ts_ns)
            .map(|(key, _)| *key);
        if let Some(flow) = oldest.and_then(|key| self.flows.remove(&key)) {
            self.stats.flows_evicted += 1;
            close(&flow, flow.last_ts_ns, pipeline);
        }
    }

    /// Close every flow still open (the capture ended).
    pub fn finish(&mut self, pipeline: &mut Pipeline) {
        let mut flows: Vec<Flow> = self.flows.drain().map(|(_, f)| f).collect();
        flows.sort_by_key(|f| f.last_ts_ns);
        for flow in flows {
            close(&flow, flow.last_ts_ns, pipeline);
        }
    }
}

fn close(flow: &Flow, ts_ns: u64, pipeline: &mut Pipeline) {
    if !flow.opened {
        return;
    }
    let mut bytes = [[0u64; Source::COUNT]; 2];
    bytes[Direction::Ingress.index()][Source::Syscall.index()] = flow.streams[0].end;
    bytes[Direction::Egress.index()][Source::Syscall.index()] = flow.streams[1].end;
    pipeline.push_event(&Event::ConnClose(ConnClose {
        timestamp_ns: ts_ns,
        conn: flow.conn,
        bytes,
    }));
}

/// (client, server) of a new flow, from its first segment.
fn roles(segment: &Segment<'_>) -> Option<(SocketAddr, SocketAddr)> {
    let forward = (segment.src, segment.dst);
    let backward = (segment.dst, segment.src);
    if segment.syn {
        return Some(if segment.ack { backward } else { forward });
    }
    let payload = segment.payload;
    if HTTP_METHODS.iter().any(|m| payload.starts_with(m)) {
        return Some(forward);
    }
    if payload.starts_with(b"HTTP/") {
        return Some(backward);
    }
    Some(if segment.dst.port() <= segment.src.port() {
        forward
    } else {
        backward
    })
}

/// Feed every packet of the capture at `path` into `pipeline`, calling `each` after every
/// packet so outputs can be written as they come.
pub fn replay(
    path: &Path,
    pipeline: &mut Pipeline,
    mut each: impl FnMut(&mut Pipeline) -> io::Result<()>,
) -> Result<CaptureStats, PcapError> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|source| PcapError::Io {
        path: name.clone(),
        source,
    })?;
    let format_error = |message: String| PcapError::Format {
        path: name.clone(),
        message,
    };
    let mut reader = pcap_parser::create_reader(READER_BUFFER_BYTES, file)
        .map_err(|e| format_error(format!("{e:?}")))?;
    // Capture timestamps are wall-clock: kernel time and wall time are one clock here.
    pipeline.push_fact(Fact::Clock(ClockSync {
        monotonic_ns: 0,
        realtime_ns: 0,
    }));
    let mut flows = FlowTable::default();
    let mut legacy_linktype = Linktype::ETHERNET;
    let mut legacy_nanos = false;
    // pcapng interfaces: link type, timestamp resolution (units per second), offset.
    let mut interfaces: Vec<(Linktype, u64, u64)> = Vec::new();
    loop {
        match reader.next() {
            Ok((offset, block)) => {
                let packet: Option<(Linktype, u64, &[u8])> = match &block {
                    PcapBlockOwned::LegacyHeader(header) => {
                        legacy_linktype = header.network;
                        legacy_nanos = header.is_nanosecond_precision();
                        None
                    }
                    PcapBlockOwned::Legacy(b) => {
                        let fraction = u64::from(b.ts_usec) * if legacy_nanos { 1 } else { 1_000 };
                        let ts = u64::from(b.ts_sec) * 1_000_000_000 + fraction;
                        let len = (b.caplen as usize).min(b.data.len());
                        Some((legacy_linktype, ts, &b.data[..len]))
                    }
                    PcapBlockOwned::NG(Block::SectionHeader(_)) => {
                        interfaces.clear();
                        None
                    }
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        interfaces.push((
                            idb.linktype,
                            idb.ts_resolution().unwrap_or(1_000_000),
                            u64::try_from(idb.ts_offset()).unwrap_or(0),
                        ));
                        None
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        match interfaces.get(epb.if_id as usize) {
                            Some(&(linktype, resolution, ts_offset)) => {
                                let (secs, fraction) = epb.decode_ts(ts_offset, resolution);
                                let ts = u64::from(secs) * 1_000_000_000
                                    + u64::from(fraction) * 1_000_000_000 / resolution.max(1);
                                let len = (epb.caplen as usize).min(epb.data.len());
                                Some((linktype, ts, &epb.data[..len]))
                            }
                            None => {
                                flows.stats.malformed += 1;
                                None
                            }
                        }
                    }
                    PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                        // No timestamp: the previous packet's time will do.
                        let linktype = interfaces.first().map_or(Linktype::ETHERNET, |i| i.0);
                        let len = (spb.origlen as usize).min(spb.data.len());
                        Some((linktype, pipeline.latest_ns(), &spb.data[..len]))
                    }
                    PcapBlockOwned::NG(_) => None,
                };
                if let Some((linktype, ts, data)) = packet {
                    flows.stats.packets += 1;
                    match decode_packet(linktype, data) {
                        Ok(segment) => flows.segment(ts, &segment, pipeline),
                        Err(Skip::NotTcp) => flows.stats.skipped += 1,
                        Err(Skip::Malformed) => flows.stats.malformed += 1,
                        Err(Skip::Fragment) => flows.stats.fragments += 1,
                    }
                    pipeline.replay_tick();
                    each(pipeline).map_err(PcapError::Output)?;
                }
                reader.consume(offset);
            }
            Err(ParserError::Eof) => break,
            Err(ParserError::Incomplete(_)) => {
                if let Err(e) = reader.refill() {
                    tracing::warn!("{name}: capture ends in the middle of a packet: {e:?}");
                    break;
                }
            }
            Err(ParserError::UnexpectedEof) => {
                tracing::warn!("{name}: capture ends in the middle of a packet");
                break;
            }
            Err(e) => return Err(format_error(format!("{e:?}"))),
        }
    }
    flows.finish(pipeline);
    let s = &flows.stats;
    tracing::info!(
        "{name}: {} packets, {} TCP segments in {} flows ({} skipped, {} malformed, {} IP fragments)",
        s.packets,
        s.tcp_segments,
        s.flows,
        s.skipped,
        s.malformed,
        s.fragments
    );
    Ok(flows.stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{model::ApiCall, output::Output, pipeline::PipelineConfig};

    /// An Ethernet + IPv4 + TCP frame.
    fn frame(src: u16, dst: u16, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; 12];
        out.extend_from_slice(&[0x08, 0x00]);
        let total = (20 + 20 + payload.len()) as u16;
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
        ];
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        out.extend_from_slice(&ip);
        let mut tcp = vec![0u8; 20];
        tcp[0..2].copy_from_slice(&src.to_be_bytes());
        tcp[2..4].copy_from_slice(&dst.to_be_bytes());
        tcp[4..8].copy_from_slice(&seq.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = flags;
        out.extend_from_slice(&tcp);
        out.extend_from_slice(payload);
        // Ethernet padding, which the IP length must cut off.
        out.extend_from_slice(&[0xee; 6]);
        out
    }

    /// A classic pcap file of `frames` (microsecond timestamps, one per millisecond).
    fn pcap_file(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&65535u32.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        for (i, f) in frames.iter().enumerate() {
            out.extend_from_slice(&1_700_000_000u32.to_le_bytes());
            out.extend_from_slice(&(i as u32 * 1000).to_le_bytes());
            out.extend_from_slice(&(f.len() as u32).to_le_bytes());
            out.extend_from_slice(&(f.len() as u32).to_le_bytes());
            out.extend_from_slice(f);
        }
        out
    }

    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    const PSH_ACK: u8 = 0x18;
    const FIN_ACK: u8 = 0x11;

    fn conversation() -> Vec<Vec<u8>> {
        let request = b"GET /users/42?x=1 HTTP/1.1\r\nHost: a\r\n\r\n";
        let response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let (c, s) = (40000u16, 8080u16);
        let (ci, si) = (1000u32, u32::MAX - 10); // the server's sequence numbers wrap
        vec![
            frame(c, s, ci, SYN, b""),
            frame(s, c, si, SYN | ACK, b""),
            frame(c, s, ci + 1, ACK, b""),
            // The request in two segments, the second retransmitted.
            frame(c, s, ci + 1, PSH_ACK, &request[..10]),
            frame(c, s, ci + 11, PSH_ACK, &request[10..]),
            frame(c, s, ci + 11, PSH_ACK, &request[10..]),
            frame(s, c, si.wrapping_add(1), PSH_ACK, &response[..20]),
            frame(s, c, si.wrapping_add(21), PSH_ACK, &response[20..]),
            frame(c, s, ci + 1 + request.len() as u32, FIN_ACK, b""),
            frame(
                s,
                c,
                si.wrapping_add(1 + response.len() as u32),
                FIN_ACK,
                b"",
            ),
        ]
    }

    fn replay_bytes(bytes: &[u8]) -> (Vec<ApiCall>, CaptureStats) {
        let path = std::env::temp_dir().join(format!(
            "observer-pcap-{}-{}.pcap",
            std::process::id(),
            bytes.len()
        ));
        std::fs::write(&path, bytes).unwrap();
        assert!(is_capture(&path).unwrap());
        let mut pipeline = Pipeline::new(PipelineConfig::default());
        let mut calls = Vec::new();
        let stats = replay(&path, &mut pipeline, |p| {
            calls.extend(p.take_calls());
            Ok(())
        })
        .unwrap();
        pipeline.finish();
        calls.extend(pipeline.take_outputs().filter_map(|o| match o {
            Output::Call(c) => Some(c),
            _ => None,
        }));
        let _ = std::fs::remove_file(path);
        (calls, stats)
    }

    #[test]
    fn a_tcp_conversation_becomes_a_server_side_call() {
        let (calls, stats) = replay_bytes(&pcap_file(&conversation()));
        assert_eq!(calls.len(), 1, "{calls:#?}");
        let call = &calls[0];
        assert_eq!(call.method.as_deref(), Some("GET"));
        assert_eq!(call.path.as_deref(), Some("/users/42"));
        assert_eq!(call.status_code, Some(200));
        assert_eq!(call.server_port, Some(8080));
        assert_eq!(call.client_port, Some(40000));
        assert_eq!(call.role, Some(crate::conn::Role::Server));
        assert!(call.incomplete.is_empty(), "{:?}", call.incomplete);
        assert_eq!(call.timestamp, "2023-11-14T22:13:20.003000Z");
        assert_eq!(stats.flows, 1);
        assert_eq!(stats.packets, 10);
    }

    /// The same frames as a pcapng file: section header, interface (Ethernet, microseconds),
    /// enhanced packet blocks.
    fn pcapng_file(frames: &[Vec<u8>]) -> Vec<u8> {
        fn block(kind: u32, body: &[u8]) -> Vec<u8> {
            let mut padded = body.to_vec();
            padded.resize(body.len().div_ceil(4) * 4, 0);
            let len = (12 + padded.len()) as u32;
            let mut out = Vec::new();
            out.extend_from_slice(&kind.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&padded);
            out.extend_from_slice(&len.to_le_bytes());
            out
        }
        let mut shb = Vec::new();
        shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        let mut out = block(0x0a0d_0d0a, &shb);
        let mut idb = Vec::new();
        idb.extend_from_slice(&1u16.to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&65535u32.to_le_bytes());
        out.extend(block(1, &idb));
        for (i, f) in frames.iter().enumerate() {
            let ts = 1_700_000_000_000_000u64 + i as u64 * 1000;
            let mut epb = Vec::new();
            epb.extend_from_slice(&0u32.to_le_bytes());
            epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
            epb.extend_from_slice(&(ts as u32).to_le_bytes());
            epb.extend_from_slice(&(f.len() as u32).to_le_bytes());
            epb.extend_from_slice(&(f.len() as u32).to_le_bytes());
            epb.extend_from_slice(f);
            out.extend(block(6, &epb));
        }
        out
    }

    #[test]
    fn pcapng_reads_like_pcap() {
        let bytes = pcapng_file(&conversation());
        assert_eq!(bytes[..4], PCAPNG_MAGIC);
        let (calls, stats) = replay_bytes(&bytes);
        assert_eq!(calls.len(), 1, "{calls:#?}");
        assert_eq!(calls[0].path.as_deref(), Some("/users/42"));
        assert_eq!(calls[0].timestamp, "2023-11-14T22:13:20.003000Z");
        assert_eq!(stats.packets, 10);
    }

    #[test]
    fn a_capture_that_starts_mid_flow_still_reads_the_next_request() {
        let frames = conversation();
        // No handshake, no first request: only the response tail, then nothing.
        let (calls, _) = replay_bytes(&pcap_file(&frames[6..]));
        assert!(calls.iter().all(|c| c.method.is_none()));
    }

    #[test]
    fn garbage_never_panics() {
        let mut state = 0x1234_5678_9abc_def0u64;
        for linktype in [
            Linktype::ETHERNET,
            Linktype::RAW,
            Linktype::LINUX_SLL2,
            Linktype::NULL,
        ] {
            for len in 0..200 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        state as u8
                    })
                    .collect();
                let _ = decode_packet(linktype, &bytes);
                let mut ipv4 = bytes.clone();
                if !ipv4.is_empty() {
                    ipv4[0] = 0x45;
                    let _ = decode_packet(Linktype::RAW, &ipv4);
                    ipv4[0] = 0x60;
                    let _ = decode_packet(Linktype::RAW, &ipv4);
                }
            }
        }
    }

    #[test]
    fn sequence_numbers_unwrap() {
        let mut stream = Stream {
            base: Some(u32::MAX - 1),
            end: 0,
            fin: false,
        };
        assert_eq!(stream.position(u32::MAX - 1), Some(0));
        assert_eq!(stream.position(3), Some(5));
        stream.end = (1 << 32) + 100;
        assert_eq!(
            stream.position((u32::MAX - 1).wrapping_add(50)),
            Some((1 << 32) + 50)
        );
    }

    #[test]
    fn other_files_are_not_captures() {
        let path = std::env::temp_dir().join(format!("observer-notpcap-{}", std::process::id()));
        std::fs::write(&path, b"OBSREC\0\x01").unwrap();
        assert!(!is_capture(&path).unwrap());
        let _ = std::fs::remove_file(path);
    }
}
