//! Pipeline benchmark: API calls per second per core through the whole user-side pipeline
//! (decode, reassembly, HTTP/1 parsing, pairing, call building, redaction), alone and with the
//! sensitive-data analyzer the agent runs before redaction, on a replayed stream of mixed
//! traffic, and memory with many live idle connections. Prints figures; asserts nothing
//! about time (machines differ).
//!
//! `cargo bench -p observer-user --bench pipeline` (run by `cargo xtask bench`).
//! `... --bench pipeline -- --write-recording PATH CALLS` writes the same traffic as a recording
//! for `observer replay` instead (see `write_recording`).
//!
//! The stream is a few hundred thousand calls over keep-alive connections: small JSON GETs,
//! POSTs with bodies, chunked responses, 64 KiB responses in 16 KiB chunks, a third of it TLS
//! plaintext. Each call's events are encoded once as templates; replaying patches the connection
//! id, position and time into a scratch buffer (a copy and a few stores, like reading the ring).

use std::{hint::black_box, io, path::Path, time::Instant};

use observer::{
    conn::MAX_CONNECTIONS,
    events::{encode, ConnClose, ConnOpen, Data, Event},
    facts::{Fact, ProcessInfo},
    pipeline::{Pipeline, PipelineConfig},
    protocol::{
        coding::{self, Coding},
        http1::DEFAULT_MAX_BODY_CAPTURE,
    },
    record::RecordWriter,
    redact::RedactionMode,
};
use observer_common::{
    ConnId, ConnOrigin, DataHeader, Direction, Hook, RoleHint, Source, TlsLibrary,
};

/// Calls in the throughput run.
const CALLS: usize = 300_000;
/// Connections they are spread over (keep-alive: each carries CALLS / CONNECTIONS calls).
const CONNECTIONS: usize = 1_000;
/// Kernel chunk size: large bodies arrive in pieces of this size.
const CHUNK: usize = 16 * 1024;

/// Idle connections for the memory figures: the target's 10,000, and a tenth more than the cap
/// holds, so the figure shows the memory the cap bounds and the refusals it counts.
const IDLE_CONNECTIONS: [usize; 2] = [10_000, MAX_CONNECTIONS + MAX_CONNECTIONS / 10];

/// Byte offsets inside an encoded data event, from the shared layout.
const CONN_OFFSET: usize = 16;
const POSITION_OFFSET: usize = 32;
const TIMESTAMP_OFFSET: usize = 8;

/// One call's events, encoded with connection 0, position 0 and time 0.
struct Template {
    /// (bytes, direction index, source index, payload length)
    events: Vec<(Vec<u8>, usize, usize, u64)>,
    tls: bool,
}

fn data_event(
    direction: Direction,
    source: Source,
    payload: &[u8],
    call_size: u32,
    call_offset: u32,
) -> Vec<u8> {
    encode::event(&Event::Data(Data {
        timestamp_ns: 0,
        conn: ConnId {
            tgid: 0,
            fd: 0,
            generation: 0,
        },
        position: u64::from(call_offset),
        call_size,
        call_offset,
        tid: 1,
        direction,
        source,
        hook: if direction == Direction::Egress {
            Hook::Write
        } else {
            Hook::Read
        },
        tls_library: if source == Source::Tls {
            TlsLibrary::OpenSsl
        } else {
            TlsLibrary::None
        },
        last_chunk: u64::from(call_offset) + payload.len() as u64 == u64::from(call_size),
        call_truncated: false,
        kept_for_peer: false,
        after_loss: false,
        payload,
    }))
}

fn template(request: &[u8], response: &[u8], tls: bool) -> Template {
    let source = if tls { Source::Tls } else { Source::Syscall };
    let mut events = Vec::new();
    // Server side: the request comes in, the response goes out.
    for (direction, message) in [(Direction::Ingress, request), (Direction::Egress, response)] {
        for (i, chunk) in message.chunks(CHUNK).enumerate() {
            let bytes = data_event(
                direction,
                source,
                chunk,
                message.len() as u32,
                (i * CHUNK) as u32,
            );
            events.push((bytes, direction.index(), source.index(), chunk.len() as u64));
        }
    }
    Template { events, tls }
}

fn templates() -> Vec<Template> {
    let json = |n: usize| {
        format!(
            "{{\"items\":[{}]}}",
            vec!["{\"id\":12345,\"name\":\"widget\"}"; n].join(",")
        )
    };
    let get = |path: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: api.local\r\nAccept: application/json\r\nAuthorization: Bearer abc.def.ghi\r\n\r\n")
    };
    let ok = |body: &str| {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let small = json(8);
    let post_body = json(16);
    let post = format!("POST /api/orders HTTP/1.1\r\nHost: api.local\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{post_body}", post_body.len());
    let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n100\r\n".to_string()
        + &"x".repeat(256)
        + "\r\n100\r\n"
        + &"y".repeat(256)
        + "\r\n0\r\n\r\n";
    let large = "z".repeat(64 * 1024);
    let mut out = Vec::new();
    for tls in [false, true] {
        out.push(template(
            get("/api/users/42").as_bytes(),
            ok(&small).as_bytes(),
            tls,
        ));
        out.push(template(
            get("/api/users/42/orders?page=2").as_bytes(),
            ok(&small).as_bytes(),
            tls,
        ));
        out.push(template(
            post.as_bytes(),
            b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
            tls,
        ));
        out.push(template(
            get("/api/feed").as_bytes(),
            chunked.as_bytes(),
            tls,
        ));
        out.push(template(
            get("/static/bundle.js").as_bytes(),
            ok(&large).as_bytes(),
            tls,
        ));
    }
    out
}

/// Which template the i-th call uses: mostly small calls, some bodies, few large responses,
/// a third of them TLS.
fn pick(i: usize) -> usize {
    let kind = match i % 20 {
        0..=8 => 0,
        9..=13 => 1,
        14..=16 => 2,
        17..=18 => 3,
        _ => 4,
    };
    if i.is_multiple_of(3) {
        kind + 5
    } else {
        kind
    }
}

/// Processes the connections belong to.
const TRACED_PROCESSES: u32 = 16;
const FIRST_TGID: u32 = 1000;

fn conn(i: usize) -> ConnId {
    ConnId {
        tgid: FIRST_TGID + i as u32 % TRACED_PROCESSES,
        fd: 10 + i as u32,
        generation: 1 + i as u64,
    }
}

fn open_event(conn: ConnId, ts: u64) -> Vec<u8> {
    encode::event(&Event::ConnOpen(ConnOpen {
        timestamp_ns: ts,
        conn,
        origin: ConnOrigin::Accept,
        role_hint: RoleHint::Server,
        remote: Some("10.0.0.2:40000".parse().expect("literal")),
        local: Some("10.0.0.1:8080".parse().expect("literal")),
        family: 2,
        listen_fd: Some(3),
        tid: conn.tgid,
        comm: "api".into(),
        tls: false,
    }))
}

fn patch(scratch: &mut Vec<u8>, template: &[u8], conn: ConnId, position: u64, ts: u64) {
    scratch.clear();
    scratch.extend_from_slice(template);
    scratch[TIMESTAMP_OFFSET..TIMESTAMP_OFFSET + 8].copy_from_slice(&ts.to_ne_bytes());
    scratch[CONN_OFFSET..CONN_OFFSET + 4].copy_from_slice(&conn.tgid.to_ne_bytes());
    scratch[CONN_OFFSET + 4..CONN_OFFSET + 8].copy_from_slice(&conn.fd.to_ne_bytes());
    scratch[CONN_OFFSET + 8..CONN_OFFSET + 16].copy_from_slice(&conn.generation.to_ne_bytes());
    // The template's position is the chunk's offset in its call; add the call's start.
    let offset = u64::from_ne_bytes(
        scratch[POSITION_OFFSET..POSITION_OFFSET + 8]
            .try_into()
            .expect("8 bytes"),
    );
    scratch[POSITION_OFFSET..POSITION_OFFSET + 8]
        .copy_from_slice(&(position + offset).to_ne_bytes());
}

/// The pipeline as the agent runs it: the sensitive-data analyzer reads every call as
/// captured, then redaction reads what will be serialized.
fn with_sensitive_analyzer() -> Pipeline {
    let mut pipeline = Pipeline::new(PipelineConfig::default());
    #[expect(
        clippy::expect_used,
        reason = "a benchmark: built-in policy, no state directory"
    )]
    let detectors = observer::sensitive::detectors(None, None, RedactionMode::default())
        .expect("built-in detectors");
    pipeline.set_redactor(detectors.redactor);
    pipeline.add_analyzer(Box::new(detectors.analyzer));
    pipeline
}

/// The bench's traffic as kernel events, call by call: the templates replayed over the
/// connections with their positions and time advancing.
struct Traffic {
    templates: Vec<Template>,
    positions: Vec<[[u64; 2]; 2]>,
    scratch: Vec<u8>,
    ts: u64,
}

/// One call's worth of traffic.
struct CallSent {
    tls: bool,
    payload_bytes: u64,
}

impl Traffic {
    fn new() -> Traffic {
        Traffic {
            templates: templates(),
            positions: vec![[[0u64; 2]; 2]; CONNECTIONS],
            scratch: Vec::with_capacity(CHUNK + size_of::<DataHeader>()),
            ts: 1_000,
        }
    }

    fn open_connections(&mut self, mut push: impl FnMut(&[u8])) {
        for i in 0..CONNECTIONS {
            push(&open_event(conn(i), self.ts));
        }
    }

    /// The `i`-th call's events.
    fn call(&mut self, i: usize, mut push: impl FnMut(&[u8])) -> CallSent {
        let c = i % CONNECTIONS;
        let template = &self.templates[pick(i)];
        let call_start = self.positions[c];
        let mut payload_bytes = 0;
        for (event, direction, source, len) in &template.events {
            self.ts += 1_000;
            let start = call_start[*direction][*source];
            patch(&mut self.scratch, event, conn(c), start, self.ts);
            push(&self.scratch);
            payload_bytes += len;
        }
        // Advance each stream by what this call moved.
        let mut next = call_start;
        for (_, direction, source, len) in &template.events {
            next[*direction][*source] += len;
        }
        self.positions[c] = next;
        CallSent {
            tls: template.tls,
            payload_bytes,
        }
    }

    fn close_connections(&mut self, mut push: impl FnMut(&[u8])) {
        for (i, bytes) in self.positions.iter().enumerate() {
            self.ts += 1_000;
            let close = ConnClose {
                timestamp_ns: self.ts,
                conn: conn(i),
                bytes: *bytes,
            };
            push(&encode::event(&Event::ConnClose(close)));
        }
    }
}

fn throughput(label: &str, mut pipeline: Pipeline) {
    let mut traffic = Traffic::new();
    let mut bytes = 0u64;
    let mut calls = 0u64;
    let mut tls_calls = 0u64;
    traffic.open_connections(|event| pipeline.push_kernel_event(event));
    let started = Instant::now();
    for i in 0..CALLS {
        let sent = traffic.call(i, |event| pipeline.push_kernel_event(event));
        tls_calls += u64::from(sent.tls);
        bytes += sent.payload_bytes;
        calls += pipeline.take_calls().count() as u64;
    }
    traffic.close_connections(|event| pipeline.push_kernel_event(event));
    pipeline.finish();
    calls += pipeline.take_calls().count() as u64;
    let elapsed = started.elapsed();
    let stats = pipeline.stats();
    black_box(&stats);
    println!("pipeline, {label}: {CALLS} calls ({tls_calls} TLS) over {CONNECTIONS} keep-alive connections, {:.1} MB of payload", bytes as f64 / 1e6);
    println!(
        "pipeline, {label}: {calls} API calls out in {:.2} s: {:.0} calls/s on one core (target ≥ 500,000), {:.0} MB/s of payload",
        elapsed.as_secs_f64(),
        calls as f64 / elapsed.as_secs_f64(),
        bytes as f64 / 1e6 / elapsed.as_secs_f64()
    );
    let errors: u64 =
        stats.parse_errors.values().sum::<u64>() + stats.decode_errors.values().sum::<u64>();
    println!(
        "pipeline, {label}: parse or decode errors: {errors}; peak RSS so far {} MiB",
        peak_rss_kib() / 1024
    );
}

/// Write the first `calls` calls of the traffic as a recording for `observer replay`, with a
/// process fact per traced process as the agent records them: `cargo xtask bench` replays it
/// under callgrind to count the agent's instructions per call, a figure the host's speed
/// cannot move.
fn write_recording(path: &Path, calls: usize) -> io::Result<()> {
    let mut recording = RecordWriter::create(path)?;
    for pid in FIRST_TGID..FIRST_TGID + TRACED_PROCESSES {
        recording.fact(&Fact::Process(ProcessInfo {
            pid,
            comm: "api".into(),
            exe: Some("/usr/local/bin/api".into()),
            cmdline: ["api", "--listen", "10.0.0.1:8080"]
                .map(String::from)
                .into(),
            ..ProcessInfo::default()
        }))?;
    }
    let mut failed = None;
    let mut write = |event: &[u8]| {
        if let Err(error) = recording.kernel_event(event) {
            failed.get_or_insert(error);
        }
    };
    let mut traffic = Traffic::new();
    traffic.open_connections(&mut write);
    for i in 0..calls {
        traffic.call(i, &mut write);
    }
    traffic.close_connections(&mut write);
    if let Some(error) = failed {
        return Err(error);
    }
    recording.flush()
}

/// Memory with `count` live connections, each mid-request (a request head seen, no response):
/// the state a busy server's idle keep-alive connections leave behind.
fn idle_connections(count: usize) {
    let mut pipeline = Pipeline::new(PipelineConfig::default());
    let before = current_rss_kib();
    let request = b"GET /api/users/42 HTTP/1.1\r\nHost: api.local\r\n\r\n";
    for i in 0..count {
        let c = ConnId {
            tgid: 5000 + (i % 64) as u32,
            fd: i as u32,
            generation: i as u64 + 1,
        };
        pipeline.push_kernel_event(&open_event(c, i as u64));
        let mut event = data_event(
            Direction::Ingress,
            Source::Syscall,
            request,
            request.len() as u32,
            0,
        );
        event[CONN_OFFSET..CONN_OFFSET + 4].copy_from_slice(&c.tgid.to_ne_bytes());
        event[CONN_OFFSET + 4..CONN_OFFSET + 8].copy_from_slice(&c.fd.to_ne_bytes());
        event[CONN_OFFSET + 8..CONN_OFFSET + 16].copy_from_slice(&c.generation.to_ne_bytes());
        pipeline.push_kernel_event(&event);
    }
    let after = current_rss_kib();
    let stats = pipeline.stats();
    println!(
        "idle connections: {count} opened, {} tracked, {} events refused at the cap (an open and a request each past it; counted as lost); RSS grew by {} MiB ({:.0} bytes per connection); process RSS {} MiB (target ≤ 128 MiB at 10,000)",
        pipeline.connections(),
        stats.connections.connections_over_limit,
        after.saturating_sub(before) / 1024,
        after.saturating_sub(before) as f64 * 1024.0 / pipeline.connections().max(1) as f64,
        after / 1024,
    );
    black_box(pipeline);
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(field))
                .map(|v| v.trim().trim_end_matches(" kB").parse().unwrap_or(0))
        })
        .unwrap_or(0)
}

fn current_rss_kib() -> u64 {
    status_kib("VmRSS:")
}

fn peak_rss_kib() -> u64 {
    status_kib("VmHWM:")
}

fn main() {
    // `cargo bench` passes `--bench` to every bench binary.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| arg != "--bench")
        .collect();
    match args.as_slice() {
        [] => measure_all(),
        [flag, path, calls] if flag == "--write-recording" => {
            let Ok(calls) = calls.parse() else {
                eprintln!(
                    "--write-recording: the number of calls must be a whole number, not {calls:?}"
                );
                std::process::exit(2);
            };
            if let Err(error) = write_recording(Path::new(path), calls) {
                eprintln!("writing the recording {path}: {error}");
                std::process::exit(1);
            }
        }
        _ => {
            eprintln!("usage: pipeline [--write-recording PATH CALLS]\n  without arguments: measure and print the figures");
            std::process::exit(2);
        }
    }
}

fn measure_all() {
    throughput(
        "decode to redaction",
        Pipeline::new(PipelineConfig::default()),
    );
    throughput(
        "with the sensitive-data analyzer (as the agent)",
        with_sensitive_analyzer(),
    );
    for count in IDLE_CONNECTIONS {
        idle_connections(count);
    }
    content_decoding();
}

/// Decoding rounds per coding: a few hundred milliseconds each on this VM.
const DECODING_ROUNDS: usize = 2_000;

/// What undoing a content coding costs per body: a JSON answer that decodes to the capture
/// limit (16 KiB, what the agent decodes at most), compressed as servers do, decoded as the
/// agent decodes it.
fn content_decoding() {
    use std::io::Write;
    let record = |i: usize| {
        format!(
            r#"{{"id":{i},"name":"customer {i}","plan":"pro","seats":{},"active":true}}"#,
            i % 50
        )
    };
    let mut json = String::from("[");
    for i in 0.. {
        if json.len() >= DEFAULT_MAX_BODY_CAPTURE {
            break;
        }
        json.push_str(&record(i));
        json.push(',');
    }
    let json = json.as_bytes();
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(json).expect("gzip");
    let zstd = ruzstd::encoding::compress_to_vec(json, ruzstd::encoding::CompressionLevel::Fastest);
    for (coding, encoded) in [
        (Coding::Gzip, gzip.finish().expect("gzip")),
        (Coding::Zstd, zstd),
    ] {
        let started = Instant::now();
        let mut decoded = 0usize;
        for _ in 0..DECODING_ROUNDS {
            let body = coding::decode(coding, black_box(&encoded), false, DEFAULT_MAX_BODY_CAPTURE)
                .expect("the body decodes");
            decoded += body.bytes.len();
        }
        let elapsed = started.elapsed().as_secs_f64();
        println!(
            "content decoding, {}: a {} KiB JSON answer ({} bytes compressed) decoded in {:.1} µs on one core, {:.0} MB/s of decoded body",
            coding.as_str(),
            DEFAULT_MAX_BODY_CAPTURE / 1024,
            encoded.len(),
            elapsed * 1e6 / DECODING_ROUNDS as f64,
            decoded as f64 / 1e6 / elapsed
        );
    }
}
