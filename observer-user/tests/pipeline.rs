//! The user-side pipeline on synthetic kernel event streams: no root, no kernel.
//!
//! Each test builds the events the kernel would send for a scenario (with `events::encode`), feeds
//! them through `Pipeline`, and checks the API calls that come out.

use observer::{
    events::{encode, ConnClose, ConnOpen, Data, Echo, Event, ProcessExit},
    facts::{ClockSync, Fact, ProcessInfo, SocketInfo},
    model::{ApiCall, CallStatus},
    pipeline::{CallFilter, Pipeline, PipelineConfig, PipelineStats},
    redact::RedactionMode,
};
use observer_common::{ConnId, ConnOrigin, Direction, Hook, RoleHint, Source, TlsLibrary};

const SERVER: ConnId = ConnId {
    tgid: 100,
    fd: 7,
    generation: 1_000,
};
const CLIENT: ConnId = ConnId {
    tgid: 200,
    fd: 5,
    generation: 1_001,
};

/// Builds a stream of encoded kernel events, keeping each direction's position.
struct Scenario {
    events: Vec<Vec<u8>>,
    positions: std::collections::HashMap<(ConnId, Direction, Source), u64>,
    ts: u64,
    /// Mark the bytes of the calls that follow for a host-local peer (`kept_for_peer`).
    keep_for_peer: bool,
}

impl Scenario {
    fn new() -> Scenario {
        Scenario {
            events: Vec::new(),
            positions: Default::default(),
            ts: 1_000_000,
            keep_for_peer: false,
        }
    }

    fn tick(&mut self) -> u64 {
        self.ts += 1_000;
        self.ts
    }

    fn open(&mut self, conn: ConnId, origin: ConnOrigin, remote: &str) -> &mut Self {
        let ts = self.tick();
        self.events.push(encode::event(&Event::ConnOpen(ConnOpen {
            timestamp_ns: ts,
            conn,
            origin,
            role_hint: RoleHint::Unknown,
            remote: Some(remote.parse().expect("address literal")),
            local: None,
            family: 2,
            listen_fd: (origin == ConnOrigin::Accept).then_some(3),
            tid: conn.tgid,
            comm: if conn.tgid == SERVER.tgid {
                "server".into()
            } else {
                "client".into()
            },
            tls: false,
        })));
        self
    }

    /// One call moving `bytes`, split into chunks of at most `chunk` bytes like the kernel does.
    fn call(
        &mut self,
        conn: ConnId,
        direction: Direction,
        source: Source,
        bytes: &[u8],
        chunk: usize,
    ) -> &mut Self {
        let ts = self.tick();
        let position = self.positions.entry((conn, direction, source)).or_default();
        let start = *position;
        *position += bytes.len() as u64;
        let chunks: Vec<&[u8]> = bytes.chunks(chunk.max(1)).collect();
        let mut offset = 0;
        for (i, piece) in chunks.iter().enumerate() {
            self.events.push(encode::event(&Event::Data(Data {
                timestamp_ns: ts,
                conn,
                position: start + offset as u64,
                call_size: bytes.len() as u32,
                call_offset: offset as u32,
                tid: conn.tgid,
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
                last_chunk: i + 1 == chunks.len(),
                call_truncated: false,
                kept_for_peer: self.keep_for_peer,
                after_loss: false,
                payload: piece,
            })));
            offset += piece.len();
        }
        self
    }

    /// A call the kernel capped: only `captured` of `total` bytes shipped.
    fn capped_call(
        &mut self,
        conn: ConnId,
        direction: Direction,
        captured: &[u8],
        total: u64,
    ) -> &mut Self {
        let ts = self.tick();
        let position = self
            .positions
            .entry((conn, direction, Source::Syscall))
            .or_default();
        let start = *position;
        *position += total;
        self.events.push(encode::event(&Event::Data(Data {
            timestamp_ns: ts,
            conn,
            position: start,
            call_size: total as u32,
            call_offset: 0,
            tid: conn.tgid,
            direction,
            source: Source::Syscall,
            hook: Hook::Write,
            tls_library: TlsLibrary::None,
            last_chunk: true,
            call_truncated: true,
            kept_for_peer: false,
            after_loss: false,
            payload: captured,
        })));
        self
    }

    /// A read of `size` bytes that `peer`, the connection's host-local other end, shipped.
    fn echo(&mut self, conn: ConnId, peer: ConnId, size: usize) -> &mut Self {
        let ts = self.tick();
        let position = self
            .positions
            .entry((conn, Direction::Ingress, Source::Syscall))
            .or_default();
        let start = *position;
        *position += size as u64;
        self.events.push(encode::event(&Event::Echo(Echo {
            read: Data {
                call_size: size as u32,
                ..Data::whole_call(conn, Direction::Ingress, start, &[], ts)
            },
            peer,
        })));
        self
    }

    fn close(&mut self, conn: ConnId) -> &mut Self {
        let ts = self.tick();
        let mut bytes = [[0u64; 2]; 2];
        for ((c, direction, source), position) in &self.positions {
            if *c == conn {
                bytes[direction.index()][source.index()] = *position;
            }
        }
        self.events.push(encode::event(&Event::ConnClose(ConnClose {
            timestamp_ns: ts,
            conn,
            bytes,
        })));
        self
    }

    fn run(&self, config: PipelineConfig, facts: Vec<Fact>) -> Vec<ApiCall> {
        self.run_with_stats(config, facts).0
    }

    fn run_with_stats(
        &self,
        config: PipelineConfig,
        facts: Vec<Fact>,
    ) -> (Vec<ApiCall>, PipelineStats) {
        let mut pipeline = Pipeline::new(config);
        for fact in facts {
            pipeline.push_fact(fact);
        }
        let mut calls = Vec::new();
        for event in &self.events {
            pipeline.push_kernel_event(event);
            calls.extend(pipeline.take_calls());
        }
        pipeline.finish();
        calls.extend(pipeline.take_calls());
        (calls, pipeline.stats())
    }
}

fn server_side_get(scenario: &mut Scenario, path: &str, body: &str) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: api.test\r\n\r\n");
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{body}",
        body.len()
    );
    scenario
        .call(
            SERVER,
            Direction::Ingress,
            Source::Syscall,
            request.as_bytes(),
            16 * 1024,
        )
        .call(
            SERVER,
            Direction::Egress,
            Source::Syscall,
            response.as_bytes(),
            16 * 1024,
        );
}

#[test]
fn a_server_side_exchange_becomes_one_call_with_process_and_addresses() {
    let mut scenario = Scenario::new();
    scenario.open(SERVER, ConnOrigin::Accept, "10.0.0.9:40000");
    server_side_get(&mut scenario, "/users/42?verbose=1", "hello");
    scenario.close(SERVER);
    let facts = vec![
        Fact::Clock(ClockSync {
            monotonic_ns: 0,
            realtime_ns: 1_795_000_000_000_000_000,
        }),
        Fact::Process(ProcessInfo {
            pid: SERVER.tgid,
            comm: "api".into(),
            exe: Some("/srv/api".into()),
            cmdline: vec!["/srv/api".to_string(), "--port".into(), "8080".into()].into(),
            container_id: Some("c".repeat(64)),
            pod_uid: None,
        }),
        Fact::Socket(SocketInfo {
            conn: SERVER,
            is_socket: true,
            local: Some("10.0.0.1:8080".parse().expect("literal")),
            remote: Some("10.0.0.9:40000".parse().expect("literal")),
        }),
    ];
    let calls = scenario.run(PipelineConfig::default(), facts);
    assert_eq!(calls.len(), 1, "{calls:#?}");
    let call = &calls[0];
    assert_eq!(call.status, CallStatus::Complete);
    assert_eq!(call.method.as_deref(), Some("GET"));
    assert_eq!(call.path.as_deref(), Some("/users/42"));
    assert_eq!(call.query.as_deref(), Some("verbose=1"));
    assert_eq!(call.status_code, Some(200));
    assert_eq!(call.server_address.as_deref(), Some("10.0.0.1"));
    assert_eq!(call.server_port, Some(8080));
    assert_eq!(call.client_address.as_deref(), Some("10.0.0.9"));
    assert_eq!(call.client_port, Some(40000));
    assert_eq!(call.executable_name.as_deref(), Some("api"));
    assert_eq!(call.container_id.as_deref(), Some("c".repeat(64).as_str()));
    assert_eq!(
        call.response_body
            .as_ref()
            .and_then(|b| b.preview.as_deref()),
        Some("hello")
    );
    assert!(
        call.timestamp.starts_with("2026-11-18T11:06:40"),
        "{}",
        call.timestamp
    );
    assert_eq!(call.duration_ms, Some(0.001));
}

#[test]
fn output_does_not_depend_on_how_the_kernel_chunked_the_bytes() {
    let build = |chunk: usize| {
        let mut scenario = Scenario::new();
        scenario.open(CLIENT, ConnOrigin::Connect, "127.0.0.1:8080");
        for i in 0..3 {
            let request =
                format!("POST /orders/{i} HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world");
            let response =
                "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n0\r\n\r\n";
            scenario
                .call(
                    CLIENT,
                    Direction::Egress,
                    Source::Syscall,
                    request.as_bytes(),
                    chunk,
                )
                .call(
                    CLIENT,
                    Direction::Ingress,
                    Source::Syscall,
                    response.as_bytes(),
                    chunk,
                );
        }
        scenario.close(CLIENT);
        let calls = scenario.run(PipelineConfig::default(), Vec::new());
        serde_json::to_string(&calls).expect("serialize")
    };
    let whole = build(16 * 1024);
    assert_eq!(whole.matches("\"api.call\"").count(), 3, "{whole}");
    for chunk in [1, 2, 3, 7, 64] {
        assert_eq!(build(chunk), whole, "chunk size {chunk}");
    }
}

#[test]
fn a_host_local_connection_shipped_at_one_end_is_reported_as_if_shipped_at_both() {
    // The same keep-alive exchanges between a client and a server on this host, either with each
    // end shipping what it moved, or with each byte shipped once by its writer and echoed by
    // its reader (the first request written before the client knew its other end). Bodies past
    // the capture limit, framed by length and chunked, in both directions: of those only the
    // length is kept for the reader.
    let chunk = |data: &str| format!("{:x}\r\n{data}\r\n", data.len());
    let mut exchanges = Vec::new();
    for i in 0..3 {
        let body = "y".repeat(20_000 * i + 10);
        exchanges.push((
            format!("GET /items/{i} HTTP/1.1\r\nHost: x\r\n\r\n"),
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        ));
    }
    let upload = "u".repeat(50_000);
    exchanges.push((
        format!(
            "POST /uploads HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{upload}",
            upload.len()
        ),
        format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{}{}{}0\r\n\r\n",
            chunk(&"a".repeat(30_000)),
            chunk("short"),
            chunk(&"b".repeat(30_000)),
        ),
    ));
    let build = |echoed: bool| {
        let mut scenario = Scenario::new();
        scenario
            .open(CLIENT, ConnOrigin::Connect, "127.0.0.1:8080")
            .open(SERVER, ConnOrigin::Accept, "127.0.0.1:40000");
        for (i, (request, response)) in exchanges.iter().enumerate() {
            let (request, response) = (request.as_bytes(), response.as_bytes());
            scenario.keep_for_peer = echoed && i > 0;
            scenario.call(
                CLIENT,
                Direction::Egress,
                Source::Syscall,
                request,
                16 * 1024,
            );
            if echoed && i > 0 {
                scenario.echo(SERVER, CLIENT, request.len());
            } else {
                scenario.call(
                    SERVER,
                    Direction::Ingress,
                    Source::Syscall,
                    request,
                    16 * 1024,
                );
            }
            scenario.keep_for_peer = echoed;
            scenario.call(
                SERVER,
                Direction::Egress,
                Source::Syscall,
                response,
                16 * 1024,
            );
            // Read in two calls, as a client reading into a buffer smaller than the response.
            let (first, second) = response.split_at(response.len() / 2);
            for half in [first, second] {
                if echoed {
                    scenario.echo(CLIENT, SERVER, half.len());
                } else {
                    scenario.call(CLIENT, Direction::Ingress, Source::Syscall, half, 16 * 1024);
                }
            }
        }
        scenario.close(CLIENT).close(SERVER);
        let (calls, stats) = scenario.run_with_stats(PipelineConfig::default(), Vec::new());
        (serde_json::to_string(&calls).expect("serialize"), stats)
    };
    let (both_ends, _) = build(false);
    assert_eq!(both_ends.matches("\"api.call\"").count(), 8, "{both_ends}");
    let (one_end, stats) = build(true);
    assert_eq!(one_end, both_ends);
    // The large bodies past their capture were never copied for their readers (about 97 KB
    // of their 16 KiB chunks after the one the capture ended in), and nothing was lost.
    let echo = &stats.echo;
    assert_eq!((echo.bytes_missing, echo.bytes_dropped), (0, 0), "{echo:?}");
    assert_eq!(stats.connections.gaps, 0, "{:?}", stats.connections);
    assert!(echo.bytes_unread > 90_000, "{echo:?}");
}

#[test]
fn a_host_local_server_that_closes_before_its_client_reads_still_answers_it() {
    // `Connection: close`: the server writes its response and closes before the client has
    // read it; the client's echo comes after the server's close.
    let request = "GET /bye HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let response = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    let mut scenario = Scenario::new();
    scenario
        .open(CLIENT, ConnOrigin::Connect, "127.0.0.1:8080")
        .open(SERVER, ConnOrigin::Accept, "127.0.0.1:40000");
    scenario.keep_for_peer = true;
    scenario
        .call(
            CLIENT,
            Direction::Egress,
            Source::Syscall,
            request.as_bytes(),
            16 * 1024,
        )
        .echo(SERVER, CLIENT, request.len())
        .call(
            SERVER,
            Direction::Egress,
            Source::Syscall,
            response.as_bytes(),
            16 * 1024,
        )
        .close(SERVER)
        .echo(CLIENT, SERVER, response.len())
        .close(CLIENT);
    let (calls, stats) = scenario.run_with_stats(PipelineConfig::default(), Vec::new());
    assert_eq!(calls.len(), 2, "{calls:#?}");
    for call in &calls {
        assert_eq!(call.status_code, Some(200), "{call:#?}");
        assert_eq!(call.status, CallStatus::Complete, "{call:#?}");
    }
    let echo = &stats.echo;
    assert_eq!((echo.bytes_missing, echo.bytes_dropped), (0, 0), "{echo:?}");
    assert_eq!(echo.bytes_echoed, (request.len() + response.len()) as u64);
    // The client's buffer went as it closed (its request was read); the server's, closed while
    // its response waited, goes at the next look, not a second later as an open one's would.
    assert_eq!(echo.writers, 1, "{echo:?}");
}

#[test]
fn tls_plaintext_is_parsed_and_marked() {
    let mut scenario = Scenario::new();
    scenario
        .open(CLIENT, ConnOrigin::Connect, "127.0.0.1:443")
        .call(
            CLIENT,
            Direction::Egress,
            Source::Tls,
            b"GET /secure HTTP/1.1\r\nHost: x\r\n\r\n",
            16384,
        )
        .call(
            CLIENT,
            Direction::Ingress,
            Source::Tls,
            b"HTTP/1.1 204 No Content\r\n\r\n",
            16384,
        )
        .close(CLIENT);
    let calls = scenario.run(PipelineConfig::default(), Vec::new());
    assert_eq!(calls.len(), 1);
    assert!(calls[0].tls);
    assert_eq!(calls[0].tls_library, Some("openssl"));
    assert_eq!(calls[0].status_code, Some(204));
    assert_eq!(calls[0].server_port, Some(443));
}

#[test]
fn bytes_past_the_per_call_cap_leave_framing_intact() {
    let head = "HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n";
    let mut captured = head.as_bytes().to_vec();
    captured.extend_from_slice(&[b'x'; 1000]);
    let mut scenario = Scenario::new();
    scenario
        .open(CLIENT, ConnOrigin::Connect, "127.0.0.1:80")
        .call(
            CLIENT,
            Direction::Egress,
            Source::Syscall,
            b"GET /big HTTP/1.1\r\n\r\n",
            16384,
        )
        .capped_call(
            CLIENT,
            Direction::Ingress,
            &captured,
            (head.len() + 1_048_576) as u64,
        )
        .call(
            CLIENT,
            Direction::Egress,
            Source::Syscall,
            b"GET /next HTTP/1.1\r\n\r\n",
            16384,
        )
        .call(
            CLIENT,
            Direction::Ingress,
            Source::Syscall,
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            16384,
        )
        .close(CLIENT);
    let calls = scenario.run(PipelineConfig::default(), Vec::new());
    assert_eq!(calls.len(), 2, "{calls:#?}");
    let big = calls[0].response_body.as_ref().expect("body");
    assert_eq!(big.size, 1_048_576);
    assert!(big.truncated);
    assert!(calls[0].incomplete.contains(&"response_bytes_lost"));
    assert_eq!(calls[1].path.as_deref(), Some("/next"));
    assert_eq!(
        calls[1]
            .response_body
            .as_ref()
            .and_then(|b| b.preview.as_deref()),
        Some("ok")
    );
}

#[test]
fn unanswered_requests_are_reported_when_the_process_exits() {
    let mut scenario = Scenario::new();
    scenario
        .open(CLIENT, ConnOrigin::Connect, "127.0.0.1:80")
        .call(
            CLIENT,
            Direction::Egress,
            Source::Syscall,
            b"GET /slow HTTP/1.1\r\n\r\n",
            16384,
        );
    let exit = encode::event(&Event::ProcessExit(ProcessExit {
        timestamp_ns: u64::MAX / 2,
        tgid: CLIENT.tgid,
    }));
    scenario.events.push(exit);
    let calls = scenario.run(PipelineConfig::default(), Vec::new());
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].status, CallStatus::NoResponse);
}

#[test]
fn secrets_are_redacted_unless_the_operator_turns_redaction_off() {
    let mut scenario = Scenario::new();
    scenario
        .open(CLIENT, ConnOrigin::Connect, "127.0.0.1:80")
        .call(
            CLIENT,
            Direction::Egress,
            Source::Syscall,
            b"POST /login?api_key=K1 HTTP/1.1\r\nAuthorization: Bearer T0K3N\r\nContent-Type: application/json\r\nContent-Length: 34\r\n\r\n{\"user\":\"ann\",\"password\":\"hunter2\"}",
            16384,
        )
        .call(CLIENT, Direction::Ingress, Source::Syscall, b"HTTP/1.1 200 OK\r\nSet-Cookie: sid=S3SS; Path=/\r\nContent-Length: 0\r\n\r\n", 16384)
        .close(CLIENT);
    let redacted =
        serde_json::to_string(&scenario.run(PipelineConfig::default(), Vec::new())).expect("json");
    for secret in ["K1", "T0K3N", "hunter2", "S3SS"] {
        assert!(!redacted.contains(secret), "{secret} leaked: {redacted}");
    }
    assert!(redacted.contains("Bearer [REDACTED]"), "{redacted}");
    let config = PipelineConfig {
        redaction: RedactionMode::Off,
        ..PipelineConfig::default()
    };
    let raw = serde_json::to_string(&scenario.run(config, Vec::new())).expect("json");
    assert!(raw.contains("hunter2") && raw.contains("T0K3N"), "{raw}");
}

#[test]
fn calls_made_while_shedding_bodies_keep_everything_but_their_bodies() {
    const SHED_BODY: &str = "the first body, never shown";
    let mut scenario = Scenario::new();
    scenario.open(SERVER, ConnOrigin::Accept, "10.0.0.9:40000");
    server_side_get(&mut scenario, "/shed", SHED_BODY);
    // An empty body has nothing to shed: the call is reported as it is.
    server_side_get(&mut scenario, "/empty", "");
    let shedding_events = scenario.events.len();
    server_side_get(&mut scenario, "/kept", "the second body");
    scenario.close(SERVER);
    let mut pipeline = Pipeline::new(PipelineConfig::default());
    let mut calls = Vec::new();
    for (index, event) in scenario.events.iter().enumerate() {
        pipeline.set_shedding_bodies(index < shedding_events);
        pipeline.push_kernel_event(event);
        calls.extend(pipeline.take_calls());
    }
    pipeline.finish();
    calls.extend(pipeline.take_calls());

    assert_eq!(calls.len(), 3, "{calls:#?}");
    let (shed, empty, kept) = (&calls[0], &calls[1], &calls[2]);
    assert_eq!(shed.path.as_deref(), Some("/shed"));
    assert_eq!(shed.status, CallStatus::Complete);
    assert_eq!(shed.status_code, Some(200));
    let body = shed
        .response_body
        .as_ref()
        .expect("a shed body keeps its size");
    assert_eq!(body.size, SHED_BODY.len() as u64);
    assert_eq!(body.preview, None);
    assert!(body.truncated);
    assert!(shed.response_body_bytes.is_empty());
    assert_eq!(shed.incomplete, ["bodies_shed"]);
    let json = serde_json::to_string(shed).expect("json");
    assert!(!json.contains("never shown"), "{json}");
    assert!(json.contains("bodies_shed"), "{json}");

    assert_eq!(
        kept.response_body
            .as_ref()
            .and_then(|b| b.preview.as_deref()),
        Some("the second body")
    );
    assert!(kept.incomplete.is_empty(), "{:?}", kept.incomplete);
    assert_eq!(empty.path.as_deref(), Some("/empty"));
    assert!(empty.incomplete.is_empty(), "{:?}", empty.incomplete);
    assert_eq!(pipeline.stats().calls_bodies_shed, 1);
}

#[test]
fn filters_keep_only_matching_calls() {
    let mut scenario = Scenario::new();
    scenario.open(SERVER, ConnOrigin::Accept, "10.0.0.9:40000");
    server_side_get(&mut scenario, "/a", "x");
    scenario.close(SERVER);
    let by_port = |ports: Vec<u16>| {
        let config = PipelineConfig {
            filter: CallFilter {
                ports,
                ..CallFilter::default()
            },
            ..PipelineConfig::default()
        };
        scenario.run(config, Vec::new()).len()
    };
    assert_eq!(by_port(vec![40000]), 1);
    assert_eq!(by_port(vec![1234]), 0);
    let by_comm = |comms: Vec<String>| {
        let config = PipelineConfig {
            filter: CallFilter {
                comms,
                ..CallFilter::default()
            },
            ..PipelineConfig::default()
        };
        scenario.run(config, Vec::new()).len()
    };
    assert_eq!(by_comm(vec!["server".into()]), 1);
    assert_eq!(by_comm(vec!["curl".into()]), 0);
}

#[test]
fn a_non_socket_fd_is_dropped_without_output() {
    let mut scenario = Scenario::new();
    scenario.open(SERVER, ConnOrigin::Inferred, "0.0.0.0:0");
    server_side_get(&mut scenario, "/file", "x");
    let not_a_socket = Fact::Socket(SocketInfo {
        conn: SERVER,
        is_socket: false,
        local: None,
        remote: None,
    });
    let mut pipeline = Pipeline::new(PipelineConfig::default());
    // The fact arrives right before the open event, as live capture orders them.
    pipeline.push_fact(not_a_socket);
    for event in &scenario.events {
        pipeline.push_kernel_event(event);
    }
    pipeline.finish();
    assert_eq!(pipeline.take_calls().count(), 0);
    assert_eq!(pipeline.stats().not_sockets, 1);
}

#[test]
fn garbage_events_are_counted_not_fatal() {
    let mut pipeline = Pipeline::new(PipelineConfig::default());
    for junk in [
        &b""[..],
        b"\x01\x00",
        &[0xFFu8; 100][..],
        &[1, 0, 1, 0, 255, 255, 255, 255][..],
    ] {
        pipeline.push_kernel_event(junk);
    }
    let stats = pipeline.stats();
    assert_eq!(stats.decode_errors.values().sum::<u64>(), 4, "{stats:?}");
}
