//! The user-side pipeline, from raw kernel events and facts to redacted API calls.
//!
//! ```text
//! kernel event bytes ─> events::decode ─> conn::ConnTable ─> Http1Session ─> ApiCall ─> redact
//!        facts ───────────────────────────────┘ (processes, socket addresses, clock)
//! ```
//!
//! A pure function of its inputs: live capture and `observer replay` feed it the same way, so
//! what a recording replays is what the agent reported live. Nothing here panics on bad input;
//! every problem is counted in [`PipelineStats`].

use std::{collections::BTreeMap, ops::Range};

use observer_common::{ConnId, Direction, EventKind, Source};
use serde::Serialize;

use crate::{
    capture::{kind_name, POLL_INTERVAL},
    conn::{CloseReason, ConnInfo, ConnStats, ConnTable, IdMap, Role, StreamHandler},
    coverage::CoverageTracker,
    detect::kind::Kind as DetectorKind,
    echo::{EchoStats, KeptStreams},
    events::{self, Data, Event},
    facts::{ClockSync, Fact, ProcessInfo, SocketInfo},
    findings::Finding,
    inventory::InventoryStats,
    model::{ApiCall, CallContext, DEFAULT_BODY_PREVIEW_BYTES},
    output::Output,
    pairing::{Http1Session, SessionEvent, Side},
    protocol::{http1::ParserLimits, Segment},
    redact::{RedactionMode, Redactor},
    sensitive::analyzer::{SensitiveStats, FINDING_KIND},
};

/// A stage that looks at every API call before it is redacted: the inventory, the detectors.
/// It may fill in fields (the inventory sets `http.route`) and add findings or inventory changes
/// to the output. Analyzers run in the order they were added.
pub trait Analyzer {
    fn analyze(&mut self, call: &mut ApiCall, out: &mut Vec<Output>);

    /// Time passes (kernel time): flush what is due, persist.
    fn tick(&mut self, _now_ns: u64, _out: &mut Vec<Output>) {}

    /// The pipeline is finishing: flush and persist everything.
    fn finish(&mut self, _out: &mut Vec<Output>) {}

    /// Add what this analyzer counted, for the metrics. Called about once a second on the
    /// pipeline's thread: it must only copy counters it already keeps.
    fn stats(&self, _out: &mut AnalyzerStats) {}
}

/// What the analyzers counted, each filling in its part (`None`: no such analyzer runs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnalyzerStats {
    pub inventory: Option<InventoryTotals>,
    pub sensitive: Option<SensitiveStats>,
}

/// The inventory's size now, and what it counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InventoryTotals {
    pub services: u64,
    pub endpoints: u64,
    pub stats: InventoryStats,
}

/// Which calls to report (all when empty).
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    pub pids: Vec<u32>,
    /// Calls whose server or client port is one of these.
    pub ports: Vec<u16>,
    /// Calls made or served by processes whose comm or executable name is one of these.
    pub comms: Vec<String>,
}

impl CallFilter {
    fn accepts(&self, call: &ApiCall, comm: &str) -> bool {
        (self.pids.is_empty() || self.pids.contains(&call.pid))
            && (self.ports.is_empty()
                || call.server_port.is_some_and(|p| self.ports.contains(&p))
                || call.client_port.is_some_and(|p| self.ports.contains(&p)))
            && (self.comms.is_empty()
                || self
                    .comms
                    .iter()
                    .any(|c| c == comm || call.executable_name.as_deref() == Some(c)))
    }
}

#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub parser_limits: ParserLimits,
    pub body_preview_bytes: usize,
    pub redaction: RedactionMode,
    pub filter: CallFilter,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            parser_limits: ParserLimits::default(),
            body_preview_bytes: DEFAULT_BODY_PREVIEW_BYTES,
            redaction: RedactionMode::default(),
            filter: CallFilter::default(),
        }
    }
}

/// What the pipeline has seen and lost, for the summary and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PipelineStats {
    /// Events decoded, by kind.
    pub events: BTreeMap<&'static str, u64>,
    /// Events that could not be decoded, by reason.
    pub decode_errors: BTreeMap<&'static str, u64>,
    /// Payload bytes received from the kernel.
    pub bytes_captured: u64,
    /// API calls reported (after filters).
    pub api_calls: u64,
    /// The same calls by the observed process's role (`client`, `server`, `unknown`), then by
    /// how much of the exchange was seen (`complete`, `no_response`, `no_request`).
    pub api_calls_by_role: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
    /// API calls the filters left out.
    pub api_calls_filtered: u64,
    /// HTTP parse errors, by kind.
    pub parse_errors: BTreeMap<&'static str, u64>,
    /// Bodies read through their content coding, by coding (`gzip`, `deflate`, `br`, `zstd`).
    pub bodies_decoded: BTreeMap<&'static str, u64>,
    /// Bodies in a content coding left as sent, by why (`unsupported`, `stacked`, `invalid`).
    pub bodies_not_decoded: BTreeMap<&'static str, u64>,
    /// Findings the analyzers reported, by kind (a detector's name, `sensitive_data`, or
    /// `other`), then severity.
    pub findings: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
    /// Connections that stopped speaking HTTP (upgrade, CONNECT).
    pub tunnels: u64,
    /// Connections dropped because their fd turned out not to be a socket.
    pub not_sockets: u64,
    /// Data that arrived before anything said which direction carries requests, and was dropped.
    pub segments_without_role: u64,
    pub connections: ConnStats,
    /// Host-local connections' bytes shipped at one end (see `echo`).
    pub echo: EchoStats,
    /// Calls reported without their bodies because the agent was falling behind the kernel
    /// (see [`Pipeline::set_shedding_bodies`]); each is flagged `bodies_shed`.
    pub calls_bodies_shed: u64,
}

/// Per-connection state of the HTTP stage.
pub struct HttpConn {
    /// One session per source: a TLS connection is parsed from its plaintext.
    /// Boxed: a connection uses one source, and a session is large (two parsers and the
    /// pairing), so an idle connection should not carry room for two.
    sessions: [Option<Box<Http1Session>>; Source::COUNT],
    /// The direction that carries requests, once known.
    request_direction: Option<Direction>,
    /// Time of the newest segment, to close sessions at.
    last_ts_ns: u64,
}

/// The HTTP stage and everything the calls it builds need.
struct HttpStage {
    limits: ParserLimits,
    body_preview_bytes: usize,
    redactor: Redactor,
    filter: CallFilter,
    processes: IdMap<u32, ProcessInfo>,
    clock: Option<ClockSync>,
    analyzers: Vec<Box<dyn Analyzer>>,
    outputs: Vec<Output>,
    events: Vec<SessionEvent>,
    stats: PipelineStats,
    /// TLS connections, decrypted or not, per process.
    coverage: CoverageTracker,
    /// Calls are reported without their bodies while set.
    shedding_bodies: bool,
}

pub struct Pipeline {
    conns: ConnTable<HttpConn>,
    http: HttpStage,
    /// Writers' bytes their host-local readers will echo.
    kept: KeptStreams,
    /// Socket facts come just before the open event they describe; they wait here for it.
    sockets: IdMap<ConnId, SocketInfo>,
    latest_ns: u64,
    /// Recording time of the last [`Pipeline::replay_tick`] that ticked.
    last_replay_tick_ns: u64,
}

/// A data event into the connection table, followed by `unread` stream bytes that are not here
/// because parsing them reads nothing (see [`Segment::Unread`]).
fn push_data(conns: &mut ConnTable<HttpConn>, http: &mut HttpStage, data: &Data<'_>, unread: u64) {
    http.stats.bytes_captured += data.payload.len() as u64;
    if data.source == Source::Tls {
        http.coverage.decrypted(data.conn, data.timestamp_ns);
    }
    conns.data_then_unread(data, unread, http);
}

/// Recording time between two ticks of a replay: the live loop's poll interval.
pub const REPLAY_TICK_NS: u64 = POLL_INTERVAL.as_nanos() as u64;

/// Socket facts waiting for their connection's open event. They are looked up for the very
/// next event, so only a handful wait at once; the bound keeps a broken stream from piling
/// them up.
const MAX_WAITING_SOCKET_FACTS: usize = 4096;

impl Pipeline {
    pub fn new(config: PipelineConfig) -> Pipeline {
        Pipeline {
            conns: ConnTable::default(),
            kept: KeptStreams::default(),
            sockets: IdMap::default(),
            http: HttpStage {
                limits: config.parser_limits,
                body_preview_bytes: config.body_preview_bytes,
                redactor: Redactor::new(config.redaction),
                filter: config.filter,
                processes: IdMap::default(),
                clock: None,
                analyzers: Vec::new(),
                outputs: Vec::new(),
                events: Vec::new(),
                stats: PipelineStats::default(),
                coverage: CoverageTracker::default(),
                shedding_bodies: false,
            },
            latest_ns: 0,
            last_replay_tick_ns: 0,
        }
    }

    /// Feed one ring-buffer entry. A bad entry is counted and skipped.
    pub fn push_kernel_event(&mut self, bytes: &[u8]) {
        match events::decode(bytes) {
            Ok(event) => self.push_event(&event),
            Err(error) => {
                *self
                    .http
                    .stats
                    .decode_errors
                    .entry(error.label())
                    .or_default() += 1
            }
        }
    }

    pub fn push_event(&mut self, event: &Event<'_>) {
        *self
            .http
            .stats
            .events
            .entry(kind_name(event.kind()))
            .or_default() += 1;
        self.latest_ns = self.latest_ns.max(event.timestamp_ns());
        match event {
            Event::Data(data) => {
                if data.kept_for_peer {
                    // Asked before the writer's own parse moves on: where its parse will pass
                    // over bytes unread, so will the reader's, and those need not be kept.
                    let unread = self.conns.unread_ahead(data, &self.http);
                    self.kept.keep(data, unread);
                }
                push_data(&mut self.conns, &mut self.http, data, 0);
            }
            Event::Echo(echo) => {
                // Read where they are kept: the reader's stream copies what it needs.
                if let Some(pieces) = self.kept.take(echo) {
                    for piece in pieces {
                        let data = echo.with_payload(piece.position, piece.bytes);
                        push_data(&mut self.conns, &mut self.http, &data, piece.unread);
                    }
                }
            }
            Event::ConnOpen(open) => {
                if open.tls {
                    let process = self.http.processes.get(&open.conn.tgid);
                    self.http.coverage.tls_conn_opened(
                        open.conn,
                        open.remote,
                        &open.comm,
                        process,
                        open.timestamp_ns,
                    );
                }
                self.conns.open(open, &mut self.http);
                if let Some(socket) = self.sockets.remove(&open.conn) {
                    self.apply_socket(socket);
                }
            }
            Event::ConnClose(close) => {
                self.http
                    .coverage
                    .conn_closed(close.conn, &close.bytes, close.timestamp_ns);
                self.kept.closed(close.conn, close.timestamp_ns);
                self.conns.close(close, &mut self.http)
            }
            Event::ProcessExec(exec) => self.http.coverage.process_exec(exec.tgid),
            Event::ProcessExit(exit) => {
                self.conns.process_exited(exit.tgid, &mut self.http);
                self.http.processes.remove(&exit.tgid);
                self.http
                    .coverage
                    .process_exited(exit.tgid, exit.timestamp_ns);
            }
        }
    }

    pub fn push_fact(&mut self, fact: Fact) {
        match fact {
            Fact::Process(info) => {
                self.http.coverage.process_info(&info);
                self.http.processes.insert(info.pid, info);
            }
            Fact::TlsStack(stack) => self.http.coverage.stack(stack, self.latest_ns),
            Fact::ConnTotals(totals) => {
                self.http
                    .coverage
                    .conn_closed(totals.conn, &totals.bytes, self.latest_ns)
            }
            Fact::Socket(socket) if self.conns.info(&socket.conn).is_some() => {
                self.apply_socket(socket)
            }
            Fact::Socket(socket) => {
                if self.sockets.len() >= MAX_WAITING_SOCKET_FACTS {
                    self.sockets.clear();
                }
                self.sockets.insert(socket.conn, socket);
            }
            Fact::Clock(clock) => self.http.clock = Some(clock),
        }
    }

    fn apply_socket(&mut self, socket: SocketInfo) {
        if !socket.is_socket {
            if self.conns.forget(&socket.conn) {
                self.http.stats.not_sockets += 1;
            }
            return;
        }
        self.conns
            .set_addresses(&socket.conn, socket.local, socket.remote);
    }

    /// While `shed` holds, every call leaves its bodies behind before any analyzer sees it:
    /// the sizes stay, the previews and captured bytes go, and the call says `bodies_shed`.
    /// For a live agent falling behind the kernel: bodies are about a quarter of what a call
    /// costs the agent once parsed (scanned for sensitive data and attacks, their schema
    /// learned, redacted, written: 68,784 instructions per call in the replay bench, 52,403
    /// shed), and an event lost to a full ring costs the whole call. Nothing unscanned is ever
    /// shown: what is shed is never read.
    pub fn set_shedding_bodies(&mut self, shed: bool) {
        self.http.shedding_bodies = shed;
    }

    /// Redact with `redactor` (the installation's key, the policy's custom types) instead of
    /// the default one built from `PipelineConfig::redaction`.
    pub fn set_redactor(&mut self, redactor: Redactor) {
        self.http.redactor = redactor;
    }

    /// Add a stage that sees every call before redaction (after those already added).
    pub fn add_analyzer(&mut self, analyzer: Box<dyn Analyzer>) {
        self.http.analyzers.push(analyzer);
    }

    /// Let time pass: deliver reordered bytes whose wait is over, close idle connections.
    /// `now_ns` is kernel time; live, the monotonic clock, in a replay the newest event's time.
    pub fn tick(&mut self, now_ns: u64) {
        let now_ns = now_ns.max(self.latest_ns);
        self.conns.tick(now_ns, &mut self.http);
        self.kept.tick(now_ns);
        for analyzer in &mut self.http.analyzers {
            analyzer.tick(now_ns, &mut self.http.outputs);
        }
    }

    /// A tick in a replay, where time is the recording's (the latest event's): reordering
    /// windows and idle timeouts then behave as they did live. At most one per
    /// [`REPLAY_TICK_NS`] of recording time, as live, where the loop ticks once per poll of the
    /// ring.
    pub fn replay_tick(&mut self) {
        let now_ns = self.latest_ns();
        if now_ns.saturating_sub(self.last_replay_tick_ns) >= REPLAY_TICK_NS {
            self.tick(now_ns);
            self.last_replay_tick_ns = now_ns;
        }
    }

    /// Kernel time of the newest event seen.
    pub fn latest_ns(&self) -> u64 {
        self.latest_ns
    }

    /// Close every connection: the end of a replay, or the agent stopping.
    pub fn finish(&mut self) {
        self.conns.close_all(&mut self.http);
        for analyzer in &mut self.http.analyzers {
            analyzer.finish(&mut self.http.outputs);
        }
    }

    /// What the pipeline produced since the last call: calls in the order they completed, each
    /// preceded by what the analyzers made of it.
    pub fn take_outputs(&mut self) -> std::vec::Drain<'_, Output> {
        self.http.count_findings();
        self.http.outputs.drain(..)
    }

    /// Only the API calls produced since the last call (other outputs are dropped): for callers
    /// that want calls alone.
    pub fn take_calls(&mut self) -> impl Iterator<Item = ApiCall> + '_ {
        self.http.count_findings();
        self.http
            .outputs
            .drain(..)
            .filter_map(|output| match output {
                Output::Call(call) => Some(call),
                _ => None,
            })
    }

    pub fn stats(&self) -> PipelineStats {
        let mut stats = self.http.stats.clone();
        stats.connections = self.conns.stats().clone();
        stats.echo = self.kept.stats();
        stats
    }

    /// What the analyzers counted.
    pub fn analyzer_stats(&self) -> AnalyzerStats {
        let mut stats = AnalyzerStats::default();
        for analyzer in &self.http.analyzers {
            analyzer.stats(&mut stats);
        }
        stats
    }

    /// Connections currently tracked.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// TLS coverage per process, so far.
    pub fn coverage(&mut self) -> &mut CoverageTracker {
        &mut self.http.coverage
    }

    /// Connections of `tgid` still open, for what the kernel holds of them when it exits.
    pub fn open_connections_of(&self, tgid: u32) -> Vec<ConnId> {
        self.conns.ids_of(tgid)
    }
}

impl HttpStage {
    fn handle_session_events(&mut self, conn: &ConnInfo, role: Option<Role>) {
        for event in std::mem::take(&mut self.events) {
            match event {
                SessionEvent::Exchange(exchange) => {
                    let process = self.processes.get(&conn.id.tgid);
                    let context = CallContext {
                        conn,
                        role,
                        process,
                        clock: self.clock.as_ref(),
                        body_preview_bytes: self.body_preview_bytes,
                        body_capture_bytes: self.limits.max_body_capture,
                    };
                    let mut call = ApiCall::from_exchange(exchange, &context);
                    for body in [&call.request_body, &call.response_body]
                        .into_iter()
                        .flatten()
                    {
                        if let Some(coding) = body.decoded_from {
                            *self.stats.bodies_decoded.entry(coding).or_default() += 1;
                        }
                        if let Some(error) = body.not_decoded {
                            *self
                                .stats
                                .bodies_not_decoded
                                .entry(error.label())
                                .or_default() += 1;
                        }
                    }
                    let comm = process.map_or(conn.comm.as_str(), |p| p.comm.as_str());
                    if !self.filter.accepts(&call, comm) {
                        self.stats.api_calls_filtered += 1;
                        continue;
                    }
                    if let Some(library) = conn.tls_library {
                        self.coverage
                            .decrypted_call(conn.id.tgid, library, call.start_ns);
                    }
                    if self.shedding_bodies && shed_bodies(&mut call) {
                        self.stats.calls_bodies_shed += 1;
                    }
                    for analyzer in &mut self.analyzers {
                        analyzer.analyze(&mut call, &mut self.outputs);
                    }
                    self.redactor.redact_call(&mut call);
                    self.stats.api_calls += 1;
                    let role = call.role.map_or("unknown", Role::as_str);
                    *self
                        .stats
                        .api_calls_by_role
                        .entry(role)
                        .or_default()
                        .entry(call.status.as_str())
                        .or_default() += 1;
                    self.outputs.push(Output::Call(call));
                }
                SessionEvent::Error { error, .. } => {
                    *self
                        .stats
                        .parse_errors
                        .entry(parse_error_label(&error))
                        .or_default() += 1;
                }
                SessionEvent::Tunnel { .. } => self.stats.tunnels += 1,
            }
        }
    }
}

/// Drops what `call` carries of its bodies (see [`Pipeline::set_shedding_bodies`]); returns
/// whether it had any (an empty body, `Content-Length: 0`, has nothing to shed).
fn shed_bodies(call: &mut ApiCall) -> bool {
    let had_bodies = [&call.request_body, &call.response_body]
        .into_iter()
        .flatten()
        .any(|body| body.size > 0 || body.preview.is_some())
        || !call.request_body_bytes.is_empty()
        || !call.response_body_bytes.is_empty();
    if !had_bodies {
        return false;
    }
    for body in [&mut call.request_body, &mut call.response_body]
        .into_iter()
        .flatten()
    {
        body.preview = None;
        body.truncated = body.size > 0;
    }
    call.request_body_bytes = Vec::new();
    call.response_body_bytes = Vec::new();
    call.incomplete.push("bodies_shed");
    true
}

impl HttpStage {
    /// Count the findings among the outputs not yet taken, as they are taken.
    fn count_findings(&mut self) {
        for output in &self.outputs {
            if let Output::Finding(finding) = output {
                *self
                    .stats
                    .findings
                    .entry(finding_kind_label(finding))
                    .or_default()
                    .entry(finding.severity.as_str())
                    .or_default() += 1;
            }
        }
    }
}

/// A finding's kind as one of a fixed set of names, so that a label made from it can take only
/// values the agent defines: every detector's name, the sensitive-data analyzer's, or `other`.
pub fn finding_kind_label(finding: &Finding) -> &'static str {
    if finding.kind == FINDING_KIND {
        return FINDING_KIND;
    }
    DetectorKind::from_name(&finding.kind).map_or("other", DetectorKind::name)
}

fn parse_error_label(error: &crate::protocol::http1::ParseError) -> &'static str {
    use crate::protocol::http1::ParseError as E;
    match error {
        E::HeadTooLarge { .. } => "head_too_large",
        E::TooManyHeaders { .. } => "too_many_headers",
        E::InvalidHead(_) => "invalid_head",
        E::InvalidContentLength => "invalid_content_length",
        E::ConflictingContentLength => "conflicting_content_length",
        E::UnframedRequestBody => "unframed_request_body",
        E::InvalidChunkSize => "invalid_chunk_size",
        E::ChunkLineTooLong { .. } => "chunk_line_too_long",
        E::MissingChunkLineEnd => "missing_chunk_line_end",
        E::TrailersTooLarge { .. } => "trailers_too_large",
        E::InvalidTrailers(_) => "invalid_trailers",
        E::LostSync { .. } => "lost_sync",
        E::EndedInHead => "ended_in_head",
    }
}

fn role_of(request_direction: Option<Direction>) -> Option<Role> {
    request_direction.map(|d| match d {
        Direction::Egress => Role::Client,
        Direction::Ingress => Role::Server,
    })
}

fn opposite(direction: Direction) -> Direction {
    match direction {
        Direction::Egress => Direction::Ingress,
        Direction::Ingress => Direction::Egress,
    }
}

impl StreamHandler<HttpConn> for HttpStage {
    fn open(&mut self, conn: &ConnInfo) -> HttpConn {
        HttpConn {
            sessions: [None, None],
            request_direction: conn.role.map(Role::request_direction),
            last_ts_ns: conn.opened_ns,
        }
    }

    fn segment(
        &mut self,
        conn: &ConnInfo,
        state: &mut HttpConn,
        direction: Direction,
        source: Source,
        segment: Segment<'_>,
    ) {
        let ts_ns = match segment {
            Segment::Data { ts_ns, .. }
            | Segment::Gap { ts_ns, .. }
            | Segment::Unread { ts_ns, .. } => ts_ns,
            // Both directions end together when the connection closes (see `close`).
            Segment::End { .. } => return,
        };
        state.last_ts_ns = state.last_ts_ns.max(ts_ns);
        if state.request_direction.is_none() {
            // No role from the kernel: the first bytes say which way requests go.
            match segment {
                Segment::Data { bytes, .. } if bytes.starts_with(b"HTTP/") => {
                    state.request_direction = Some(opposite(direction));
                }
                Segment::Data { .. } => state.request_direction = Some(direction),
                _ => {
                    self.stats.segments_without_role += 1;
                    return;
                }
            }
        }
        let limits = self.limits;
        let session = state.sessions[source.index()]
            .get_or_insert_with(|| Box::new(Http1Session::new(limits)));
        if Some(direction) == state.request_direction {
            session.push_request_side(segment, &mut self.events);
        } else {
            session.push_response_side(segment, &mut self.events);
        }
        self.handle_session_events(conn, role_of(state.request_direction));
    }

    fn unread_ahead(
        &self,
        state: &HttpConn,
        direction: Direction,
        source: Source,
    ) -> Option<Range<u64>> {
        let session = state.sessions[source.index()].as_ref()?;
        let side = if direction == state.request_direction? {
            Side::Request
        } else {
            Side::Response
        };
        session.unread_ahead(side)
    }

    fn close(&mut self, conn: &ConnInfo, mut state: HttpConn, _reason: CloseReason) {
        for session in state.sessions.iter_mut().flatten() {
            session.close(state.last_ts_ns, &mut self.events);
        }
        self.handle_session_events(conn, role_of(state.request_direction));
    }
}

impl PipelineStats {
    /// Kinds in the order they are reported.
    pub fn event_count(&self, kind: EventKind) -> u64 {
        self.events.get(kind_name(kind)).copied().unwrap_or(0)
    }
}
