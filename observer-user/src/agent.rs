//! `observer run` and `observer replay`: drive the pipeline from the kernel or from a recording.
//!
//! The live loop runs on one thread: wait for the ring buffer (or the poll interval), decode each
//! event, look up the facts it needs, record both if asked, feed the pipeline, write the calls.
//! Everything heavy after decoding is in `pipeline`; this module only orders the I/O.

use std::{
    collections::VecDeque,
    fs::{self, File},
    io::{self, BufWriter, Write},
    path::Path,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use observer_common::limits;

use crate::{
    capture::{self, Capture, CaptureConfig, POLL_INTERVAL},
    cli::{OutputArgs, ReplayArgs, RunArgs},
    coverage::{self, store::CoverageStore, ProcessTlsStack},
    detect::{config::DetectConfig, Detector},
    enrich::{self, Enricher},
    events::{self, Event},
    export::{self, Sink},
    facts::{self, ClockSync, Fact},
    inventory::{commands::inventory_analyzer, Labeler},
    metrics::{self, MetricsServer, Snapshot},
    pcap,
    pipeline::Pipeline,
    record::{Record, RecordReader, RecordWriter},
    sensitive::{self, SetupError},
    state::State,
    summary::Summary,
};

/// How often every process is looked at again for TLS libraries it loaded since (dlopen).
const FULL_TLS_RESCAN: Duration = Duration::from_secs(10);

/// After an exec, the dynamic linker maps the program's libraries within milliseconds, and
/// interpreters load theirs (Python's `ssl`) at import time: look again after each delay.
const EXEC_RESCAN_DELAYS: [Duration; 2] = [Duration::from_millis(100), Duration::from_secs(1)];

/// Time the live loop gives looks at processes' TLS libraries between two reads of the ring
/// buffer. A look reads the process's /proc maps (tens to hundreds of µs): a sweep over a host
/// of 1,166 processes took 184 ms in one piece, while the ring buffer fills in ~30 ms at this
/// machine's 64 KiB saturation (~1 GB/s into the default 32 MiB). 2 ms is 2 MB of it.
const TLS_SCAN_SLICE: Duration = Duration::from_millis(2);

/// A recording's buffered events are flushed to disk at least this often, so a crash loses
/// only the last moments.
const RECORD_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// How often the TLS coverage is written to the state directory when it changed: often enough
/// that `observer coverage` run beside the agent is current, rare enough to cost nothing.
const COVERAGE_SAVE_INTERVAL: Duration = Duration::from_secs(2);

/// How often the agent logs its one-line TLS coverage summary.
const COVERAGE_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// The ring's fill at which the agent starts reporting calls without their bodies (see
/// `Pipeline::set_shedding_bodies`), and the fill it must fall under to stop. Half leaves the
/// other half for the time the cheaper calls take to catch up (at 1 KiB HTTP saturation here
/// the kernel ships about 150 MB/s, which fills the default 32 MiB ring in about a fifth of a
/// second with nothing reading it); stopping only at a quarter keeps it from flapping at the
/// threshold.
const SHED_BODIES_AT_FILL: f64 = 0.5;
const KEEP_BODIES_UNDER_FILL: f64 = 0.25;

/// The agent says it started shedding bodies at most this often: under a sustained overload it
/// may start and stop many times a second.
const SHEDDING_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Whether calls are reported without their bodies, decided from the ring's fill between
/// [`SHED_BODIES_AT_FILL`] and [`KEEP_BODIES_UNDER_FILL`].
#[derive(Debug, Default)]
struct BodyShedding {
    on: bool,
}

impl BodyShedding {
    /// The new decision when `fill` changes it.
    fn update(&mut self, fill: f64) -> Option<bool> {
        let threshold = if self.on {
            KEEP_BODIES_UNDER_FILL
        } else {
            SHED_BODIES_AT_FILL
        };
        let on = fill >= threshold;
        (on != self.on).then(|| {
            self.on = on;
            on
        })
    }
}

fn open_sink(output: &OutputArgs) -> anyhow::Result<Box<dyn Sink + Send>> {
    let writer: Box<dyn Write + Send> = match &output.output {
        Some(path) => {
            Box::new(BufWriter::new(File::create(path).with_context(|| {
                format!("cannot create output file {}", path.display())
            })?))
        }
        None => Box::new(BufWriter::new(io::stdout())),
    };
    Ok(export::sink(output.format, writer))
}

/// The detectors, after the inventory (which sets `http.route`, so findings and labels name
/// routes): the sensitive-data analyzer, then attack detection. Both read the same config file
/// (`--config`), keep their findings (and detection its baselines) in `state_dir`, see each
/// call before it is redacted, and share the installation's key with the redactor, which
/// hides what they found in the calls and in detection's evidence. The endpoints' sensitive
/// types (`returns:email`) go to the inventory through its labeler.
fn add_detectors(
    pipeline: &mut Pipeline,
    output: &OutputArgs,
    state_dir: Option<&Path>,
    labeler: Labeler,
) -> anyhow::Result<()> {
    let config_path = output.config.as_deref();
    let detect_config = match config_path {
        Some(path) => DetectConfig::load(path).with_context(|| {
            format!(
                "cannot start: the config file {} is not right (fix the `detect:` section, \
                 whose keys the README's Detection section lists, or leave it out for the \
                 defaults)",
                path.display()
            )
        })?,
        None => DetectConfig::default(),
    };
    let mut detectors =
        sensitive::detectors(config_path, state_dir, output.redact).map_err(|error| {
            match (&error, config_path) {
                (SetupError::Policy(_), Some(path)) => anyhow::Error::new(error).context(format!(
                    "cannot start: the sensitive-data policy in the config file {} is not right \
                     (the README's Sensitive data section lists its keys)",
                    path.display()
                )),
                _ => error.into(),
            }
        })?;
    detectors
        .analyzer
        .set_label_sink(Box::new(move |call, label| labeler.label(call, label)));
    let state = state_dir.map(State::open).transpose()?;
    let detector = Detector::new(
        detect_config,
        detectors.key,
        Some(detectors.redactor.clone()),
        state,
    )
    .context("cannot start attack detection")?;
    pipeline.set_redactor(detectors.redactor);
    pipeline.add_analyzer(Box::new(detectors.analyzer));
    pipeline.add_analyzer(Box::new(detector));
    Ok(())
}

/// Everything the live loop feeds, so that events read before and after the programs are
/// detached go through the same code.
struct Live {
    pipeline: Pipeline,
    enricher: Enricher,
    recorder: Option<RecordWriter>,
    sink: Box<dyn Sink + Send>,
    /// Processes that exec'd since the last look, for TLS library discovery.
    execs: Vec<u32>,
    /// Processes that exited since the last look, whose TLS scan state is forgotten.
    exits: Vec<u32>,
    /// Facts saying an fd is not a socket: the kernel is told to stop looking at it.
    not_sockets: Vec<(u32, u32)>,
}

impl Live {
    /// Feed one ring-buffer entry. `capture` is there while the programs are attached: a
    /// process exit then reads what the kernel still holds of the process's connections.
    fn event(&mut self, bytes: &[u8], mut capture: Option<&mut Capture>) {
        let event = match events::decode(bytes) {
            Ok(event) => event,
            Err(_) => {
                // Counted by the pipeline, and recorded so a replay counts it too.
                self.record(|r| r.kernel_event(bytes));
                self.pipeline.push_kernel_event(bytes);
                return;
            }
        };
        for fact in self.enricher.facts_for(&event) {
            if let Fact::Socket(socket) = &fact {
                if !socket.is_socket {
                    self.not_sockets.push((socket.conn.tgid, socket.conn.fd));
                }
            }
            self.fact(fact);
        }
        match &event {
            Event::ProcessExec(exec) => self.execs.push(exec.tgid),
            Event::ConnOpen(open) if open.tls => {
                // It speaks TLS: if nothing is known of its TLS yet (its library was mapped
                // after the look at its exec), look now, while it is still there.
                if let Some(stack) = capture
                    .as_deref_mut()
                    .and_then(|capture| capture.attach_tls_for_speaker(open.conn.tgid))
                {
                    self.tls_stack(stack);
                }
            }
            Event::ProcessExit(exit) => {
                self.exits.push(exit.tgid);
                if let Some(capture) = capture.as_deref_mut() {
                    // The kernel closes a dying process's fds without close() calls the
                    // programs see: its connections' byte counts are only in the table now.
                    for conn in self.pipeline.open_connections_of(exit.tgid) {
                        if let Some(totals) = capture.take_conn_totals(conn) {
                            self.fact(Fact::ConnTotals(totals));
                        }
                    }
                }
            }
            _ => {}
        }
        self.record(|r| r.kernel_event(bytes));
        self.pipeline.push_event(&event);
        if let (Event::ProcessExec(exec), Some(capture)) = (&event, capture) {
            // At once rather than after the batch: a short-lived client may be gone by then.
            // After the exec event, which makes the pipeline forget the old program's stack.
            capture.forget_tls_process(exec.tgid);
            self.scan_tls(capture, exec.tgid);
        }
    }

    fn fact(&mut self, fact: Fact) {
        self.record(|r| r.fact(&fact));
        self.pipeline.push_fact(fact);
    }

    fn record(&mut self, write: impl FnOnce(&mut RecordWriter) -> io::Result<()>) {
        if let Some(recorder) = &mut self.recorder {
            if let Err(error) = write(recorder) {
                tracing::error!("recording stopped: cannot write to it: {error}");
                self.recorder = None;
            }
        }
    }

    /// Look at `pid`'s TLS libraries (attaching new ones), and record what changed as a fact.
    fn scan_tls(&mut self, capture: &mut Capture, pid: u32) {
        if let Some(stack) = capture.attach_tls_in_process(pid) {
            self.tls_stack(stack);
        }
    }

    /// Record what was found of a process's TLS, with what /proc says of the process.
    fn tls_stack(&mut self, stack: ProcessTlsStack) {
        let pid = stack.pid;
        let stack = ProcessTlsStack {
            process: enrich::read_process(pid),
            ..stack
        };
        if let Some(dark) = &stack.dark {
            let exe = stack.process.as_ref().and_then(|p| p.exe.as_deref());
            tracing::info!(pid, exe, "its TLS would stay dark: {}", dark.explain());
        }
        self.fact(Fact::TlsStack(stack));
    }

    fn save_coverage(&mut self, store: &mut Option<CoverageStore>) {
        if self.pipeline.coverage().take_changed() {
            self.save_coverage_now(store);
        }
    }

    fn save_coverage_now(&mut self, store: &mut Option<CoverageStore>) {
        let Some(writer) = store else { return };
        if let Err(error) = writer.save(&self.pipeline.coverage().rows()) {
            tracing::error!("TLS coverage is no longer saved: {error}");
            *store = None;
        }
    }

    fn log_coverage(&mut self) {
        let report = coverage::report::report(&self.pipeline.coverage().rows());
        tracing::info!("{}", coverage::report::log_line(&report));
    }

    fn write_outputs(&mut self) -> io::Result<()> {
        for output in self.pipeline.take_outputs() {
            self.sink.write(&output)?;
        }
        self.sink.flush()
    }
}

/// Live capture until `stop` is set, the duration passes, or an error.
pub fn run(args: &RunArgs, stop: Arc<AtomicBool>) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let config = CaptureConfig {
        chunk_size: args.chunk_size,
        max_bytes_per_call: args.max_bytes_per_call,
        ring_buffer_bytes: args.ring_buffer_size,
        wakeup_bytes: args
            .wakeup_bytes
            .unwrap_or_else(|| limits::default_wakeup_bytes(args.ring_buffer_size)),
        pids: args.output.pid.clone(),
        ports: args.output.port.clone(),
        tls_placement: args.tls_probe_placement,
    };
    let mut capture = Capture::start(&config)?;
    let mut ring = capture.ring()?;

    let recorder = match &args.record {
        Some(path) => Some(
            RecordWriter::create(path)
                .with_context(|| format!("cannot create recording {}", path.display()))?,
        ),
        None => None,
    };
    let mut pipeline = Pipeline::new(args.output.pipeline_config());
    let inventory = inventory_analyzer(
        &args.inventory,
        Some(Path::new(crate::state::DEFAULT_STATE_DIR)),
    )?;
    let labeler = inventory.labeler();
    pipeline.add_analyzer(Box::new(inventory));
    let state_dir = args.inventory.state_dir.as_deref();
    add_detectors(
        &mut pipeline,
        &args.output,
        Some(state_dir.unwrap_or(Path::new(crate::state::DEFAULT_STATE_DIR))),
        labeler,
    )?;
    let mut live = Live {
        pipeline,
        enricher: Enricher::default(),
        recorder,
        sink: open_sink(&args.output)?,
        execs: Vec::new(),
        exits: Vec::new(),
        not_sockets: Vec::new(),
    };
    let mut coverage_store = open_coverage_store(args);
    // After the capture started: it holds the host-wide lock, so an address in use here is
    // not another observer's.
    let metrics = args
        .metrics_listen
        .map(|addr| MetricsServer::start(addr, started))
        .transpose()?;
    live.fact(Fact::Clock(ClockSync::now()));

    for path in capture::tls::system_libraries() {
        capture.attach_tls_file(&path);
    }

    let deadline = args
        .duration
        .map(|secs| started + Duration::from_secs_f64(secs.max(0.0)));
    // The first sweep over every process starts at once, taken in slices between reads of the
    // ring like the later ones (on a large host it takes longer than the ring takes to fill);
    // the agent says it watches once it has ended, when every TLS process is covered.
    let mut tls_scans = TlsScans::new(Instant::now());
    let mut watching = false;
    let mut next_record_flush = Instant::now() + RECORD_FLUSH_INTERVAL;
    let mut next_coverage_save = Instant::now() + COVERAGE_SAVE_INTERVAL;
    let mut next_coverage_log = Instant::now() + COVERAGE_LOG_INTERVAL;
    let mut next_metrics = Instant::now() + metrics::PUBLISH_INTERVAL;
    let mut shedding = BodyShedding::default();
    let mut next_shedding_log = Instant::now();

    while !stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
        // Looks at processes waiting: read what the ring holds without waiting for more.
        let wait = if tls_scans.due(Instant::now()) {
            Duration::ZERO
        } else {
            POLL_INTERVAL
        };
        ring.wait(wait).context("waiting for the ring buffer")?;
        // Decided after the wait, before the read: the events it reads are those the fill
        // counts (the ring may have filled during a long wait, or while the agent was stopped).
        let fill = ring.fill();
        if let Some(shed) = shedding.update(fill) {
            live.pipeline.set_shedding_bodies(shed);
            if shed && Instant::now() >= next_shedding_log {
                tracing::warn!(
                    "the agent is falling behind the kernel (its ring buffer is {:.0} % full): \
                     calls are reported without their bodies (flagged bodies_shed) until it \
                     catches up; the summary and metrics count them. A larger \
                     --ring-buffer-size absorbs longer bursts",
                    fill * 100.0
                );
                next_shedding_log = Instant::now() + SHEDDING_LOG_INTERVAL;
            }
        }
        ring.read(|bytes| live.event(bytes, Some(&mut capture)));
        live.pipeline.tick(facts::monotonic_now_ns());
        live.write_outputs().context("writing API calls")?;
        capture.flush_logs();

        for (tgid, fd) in live.not_sockets.drain(..) {
            if let Err(error) = capture.ignore_fd(tgid, fd) {
                tracing::debug!("cannot tell the kernel to ignore fd {fd} of {tgid}: {error}");
            }
        }
        let now = Instant::now();
        for pid in std::mem::take(&mut live.exits) {
            capture.forget_tls_process(pid);
        }
        for pid in std::mem::take(&mut live.execs) {
            // Looked at once already, as its exec event went by.
            tls_scans.exec(pid, now);
        }
        let slice_ends = now + TLS_SCAN_SLICE;
        loop {
            let now = Instant::now();
            if now >= slice_ends {
                break;
            }
            let Some(pid) = tls_scans.next(now, all_pids) else {
                break;
            };
            live.scan_tls(&mut capture, pid);
        }
        if !watching && tls_scans.first_sweep_ended() {
            announce_watching(metrics.as_ref(), &mut live.pipeline, &capture);
            watching = true;
        }
        if now >= next_coverage_save {
            live.save_coverage(&mut coverage_store);
            next_coverage_save = now + COVERAGE_SAVE_INTERVAL;
        }
        if now >= next_coverage_log {
            live.log_coverage();
            next_coverage_log = now + COVERAGE_LOG_INTERVAL;
        }
        if let Some(metrics) = metrics.as_ref().filter(|_| now >= next_metrics) {
            let kernel = capture
                .counters()
                .inspect_err(|error| tracing::debug!("metrics: kernel counters: {error}"))
                .ok();
            metrics.publish(Snapshot::take(&mut live.pipeline, kernel));
            next_metrics = now + metrics::PUBLISH_INTERVAL;
        }
        if now >= next_record_flush {
            live.record(RecordWriter::flush);
            next_record_flush = now + RECORD_FLUSH_INTERVAL;
        }
    }

    // Detach first, then read what is still in the ring: after this nothing new arrives, so
    // the counters and what we received can be compared exactly.
    let stopping = Instant::now();
    let kernel = capture.stop()?;
    tracing::debug!("programs detached in {:?}", stopping.elapsed());
    ring.drain(&mut |bytes| live.event(bytes, None));
    tracing::debug!("ring buffer drained after {:?}", stopping.elapsed());
    live.pipeline.finish();
    tracing::debug!("pipeline finished after {:?}", stopping.elapsed());
    live.write_outputs().context("writing API calls")?;
    live.record(RecordWriter::flush);
    live.pipeline.coverage().take_changed();
    live.save_coverage_now(&mut coverage_store);
    live.log_coverage();
    Ok(Summary {
        elapsed: started.elapsed(),
        pipeline: live.pipeline.stats(),
        kernel: Some(kernel),
    })
}

/// Says the agent watches: every process it found at start has had its TLS libraries looked at.
fn announce_watching(metrics: Option<&MetricsServer>, pipeline: &mut Pipeline, capture: &Capture) {
    if let Some(metrics) = metrics {
        // Before saying it watches: a scrape from then on sees every counter.
        metrics.publish(Snapshot::take(pipeline, capture.counters().ok()));
        tracing::info!(
            "metrics at http://{}{}",
            metrics.local_addr(),
            metrics::server::METRICS_PATH
        );
    }
    tracing::info!("observer is watching; Ctrl-C to stop");
}

/// The coverage section of the state directory, or `None` (with a warning) when it cannot be
/// opened: coverage then lives in the log lines only.
fn open_coverage_store(args: &RunArgs) -> Option<CoverageStore> {
    let dir = args
        .inventory
        .state_dir
        .clone()
        .unwrap_or_else(|| crate::state::DEFAULT_STATE_DIR.into());
    let run = i64::try_from(ClockSync::now().realtime_ns).unwrap_or(i64::MAX);
    match State::open(&dir)
        .map_err(coverage::store::CoverageStoreError::from)
        .and_then(|state| CoverageStore::open(state, run))
    {
        Ok(store) => Some(store),
        Err(error) => {
            tracing::warn!(
                "TLS coverage will not be saved in {}: {error}",
                dir.display()
            );
            None
        }
    }
}

/// The processes waiting for a look at their TLS libraries: each that exec'd, at each of
/// [`EXEC_RESCAN_DELAYS`], before the rest of the sweep over every process that starts at
/// once and then every [`FULL_TLS_RESCAN`]. The live loop takes them a [`TLS_SCAN_SLICE`] at a
/// time.
#[derive(Debug)]
struct TlsScans {
    after_exec: Vec<(Instant, u32)>,
    sweep: VecDeque<u32>,
    next_sweep: Instant,
    /// A sweep has started (the first: the rest only follow it).
    swept: bool,
}

impl TlsScans {
    /// Scans whose first sweep is due at `now`.
    fn new(now: Instant) -> TlsScans {
        TlsScans {
            after_exec: Vec::new(),
            sweep: VecDeque::new(),
            next_sweep: now,
            swept: false,
        }
    }

    /// Whether the first sweep has handed out every process it listed.
    fn first_sweep_ended(&self) -> bool {
        self.swept && self.sweep.is_empty()
    }

    /// `pid` exec'd at `now`.
    fn exec(&mut self, pid: u32, now: Instant) {
        self.after_exec
            .extend(EXEC_RESCAN_DELAYS.iter().map(|delay| (now + *delay, pid)));
    }

    /// Whether a look is due at `now`.
    fn due(&self, now: Instant) -> bool {
        !self.sweep.is_empty()
            || now >= self.next_sweep
            || self.after_exec.iter().any(|(due, _)| *due <= now)
    }

    /// The next process to look at, if one is due at `now`. A sweep starts, over the
    /// processes `all_pids` lists, when it is due and the last one has ended: on a host whose
    /// sweep takes longer than the period, sweeps follow each other.
    fn next(&mut self, now: Instant, all_pids: impl FnOnce() -> Vec<u32>) -> Option<u32> {
        if let Some(index) = self.after_exec.iter().position(|(due, _)| *due <= now) {
            return Some(self.after_exec.swap_remove(index).1);
        }
        if self.sweep.is_empty() && now >= self.next_sweep {
            self.sweep.extend(all_pids());
            self.next_sweep = now + FULL_TLS_RESCAN;
            self.swept = true;
        }
        self.sweep.pop_front()
    }
}

/// Every pid in /proc.
fn all_pids() -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Run the pipeline over a recording.
pub fn replay(args: &ReplayArgs) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let mut pipeline = Pipeline::new(args.output.pipeline_config());
    let inventory = inventory_analyzer(&args.inventory, None)?;
    let labeler = inventory.labeler();
    pipeline.add_analyzer(Box::new(inventory));
    add_detectors(
        &mut pipeline,
        &args.output,
        args.inventory.state_dir.as_deref(),
        labeler,
    )?;
    let mut sink = open_sink(&args.output)?;
    if pcap::is_capture(&args.recording)? {
        // A packet capture: the same pipeline, fed from TCP flows instead of kernel events.
        pcap::replay(&args.recording, &mut pipeline, |pipeline| {
            for output in pipeline.take_outputs() {
                sink.write(&output)?;
            }
            Ok(())
        })?;
        pipeline.finish();
        for output in pipeline.take_outputs() {
            sink.write(&output)?;
        }
        sink.flush()?;
        return Ok(Summary {
            elapsed: started.elapsed(),
            pipeline: pipeline.stats(),
            kernel: None,
        });
    }
    let reader = RecordReader::open(Path::new(&args.recording))?;
    let mut damaged = 0u64;
    for record in reader {
        match record {
            Ok(Record::KernelEvent(bytes)) => pipeline.push_kernel_event(&bytes),
            Ok(Record::Fact(fact)) => pipeline.push_fact(fact),
            Err(error) => {
                damaged += 1;
                tracing::warn!("{}: {error}", args.recording.display());
                continue;
            }
        }
        pipeline.replay_tick();
        for output in pipeline.take_outputs() {
            sink.write(&output)?;
        }
    }
    pipeline.finish();
    for output in pipeline.take_outputs() {
        sink.write(&output)?;
    }
    sink.flush()?;
    if damaged > 0 {
        tracing::warn!(
            "{damaged} damaged records skipped in {}",
            args.recording.display()
        );
    }
    Ok(Summary {
        elapsed: started.elapsed(),
        pipeline: pipeline.stats(),
        kernel: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take_due(scans: &mut TlsScans, now: Instant, pids: &[u32]) -> Vec<u32> {
        std::iter::from_fn(|| scans.next(now, || pids.to_vec())).collect()
    }

    /// Scans whose first sweep (over no process) has ended at `start`.
    fn after_first_sweep(start: Instant) -> TlsScans {
        let mut scans = TlsScans::new(start);
        assert_eq!(take_due(&mut scans, start, &[]), Vec::<u32>::new());
        scans
    }

    #[test]
    fn the_first_sweep_starts_at_once_and_says_when_it_ended() {
        let start = Instant::now();
        let mut scans = TlsScans::new(start);
        assert!(scans.due(start));
        assert!(!scans.first_sweep_ended());
        assert_eq!(scans.next(start, || vec![1, 2]), Some(1));
        assert!(!scans.first_sweep_ended());
        // The exec'd process comes first, and is not part of the sweep.
        scans.exec(7, start);
        let first = start + EXEC_RESCAN_DELAYS[0];
        assert_eq!(scans.next(first, || vec![1, 2]), Some(7));
        assert!(!scans.first_sweep_ended());
        assert_eq!(scans.next(first, || vec![1, 2]), Some(2));
        assert!(scans.first_sweep_ended());
        assert!(!scans.due(first));
        // It stays ended through the next sweeps.
        let swept = start + FULL_TLS_RESCAN;
        assert_eq!(take_due(&mut scans, swept, &[3]), [7, 3]);
        assert!(scans.first_sweep_ended());
    }

    #[test]
    fn processes_that_execd_are_looked_at_after_each_delay_before_the_sweep() {
        let start = Instant::now();
        let mut scans = after_first_sweep(start);
        scans.exec(7, start);
        assert!(!scans.due(start));
        assert_eq!(take_due(&mut scans, start, &[1, 2]), Vec::<u32>::new());
        let first = start + EXEC_RESCAN_DELAYS[0];
        assert!(scans.due(first));
        assert_eq!(take_due(&mut scans, first, &[1, 2]), [7]);
        // The second look and a due sweep: the process that exec'd comes first.
        let later = start + FULL_TLS_RESCAN.max(EXEC_RESCAN_DELAYS[1]);
        assert_eq!(take_due(&mut scans, later, &[1, 2]), [7, 1, 2]);
        assert!(!scans.due(later));
    }

    #[test]
    fn a_sweep_is_taken_in_pieces_and_the_next_waits_for_its_period() {
        let start = Instant::now();
        let mut scans = after_first_sweep(start);
        let swept = start + FULL_TLS_RESCAN;
        assert_eq!(scans.next(swept, || vec![1, 2, 3]), Some(1));
        // Mid-sweep, the list is not read again, however late it is.
        fn not_read() -> Vec<u32> {
            panic!("the process list was read again mid-sweep")
        }
        let late = swept + FULL_TLS_RESCAN * 2;
        assert!(scans.due(swept));
        assert_eq!(scans.next(late, not_read), Some(2));
        assert_eq!(scans.next(late, not_read), Some(3));
        // Ended, and due again: it started a period before `late`.
        assert_eq!(scans.next(late, || vec![9]), Some(9));
        let after = late + Duration::from_millis(1);
        assert!(!scans.due(after));
        assert_eq!(scans.next(after, || vec![10]), None);
    }

    #[test]
    fn bodies_are_shed_from_half_full_until_a_quarter() {
        let mut shedding = BodyShedding::default();
        assert_eq!(shedding.update(0.3), None);
        assert_eq!(shedding.update(0.5), Some(true));
        // Between the two thresholds the decision stays as it is.
        assert_eq!(shedding.update(0.3), None);
        assert_eq!(shedding.update(0.2), Some(false));
        assert_eq!(shedding.update(0.4), None);
    }
}
