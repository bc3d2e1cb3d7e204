//! The only module that touches the kernel: load the eBPF object, attach the syscall tracepoints
//! and the TLS uprobes (OpenSSL, BoringSSL, GnuTLS, NSS, Go), read the ring buffer, the counters
//! and what the connection table still holds of connections whose process died.
//!
//! First stage of the pipeline. It hands raw event bytes to `events` and knows nothing about
//! HTTP. Dropping [`Capture`] detaches every program and frees every map.

pub mod binary;
pub mod go;
pub mod kernel_layout;
pub mod libraries;
pub mod placement;
mod preflight;
mod ring;
pub mod tls;

use std::{collections::BTreeMap, time::Duration};

use aya::{
    maps::{HashMap as BpfHashMap, MapData, PerCpuArray},
    programs::{TracePoint, UProbe},
    Ebpf, EbpfLoader,
};
use observer_common::{
    conn_key, limits, names, ConnId, ConnState, Counter, EventKind, KernelLayout, COUNTER_SLOTS,
};
use thiserror::Error;

use crate::coverage::{ConnTotals, ProcessTlsStack};

pub use preflight::{ensure_tracefs, in_process_root, AgentLock, PreflightError};
pub use ring::RingReader;

/// The eBPF object `cargo xtask build` compiled, embedded by build.rs (empty if it was not built).
static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/observer.bpf.o"));

/// Syscall tracepoints and the program serving each. Calls are handled at their exit, where the
/// result says whether there is anything to do and the arguments are read from the thread's saved
/// registers; only close is hooked at entry, since once it returns its fd may name another file.
/// accept and accept4 share their first three arguments, so one program serves both.
const SYSCALL_TRACEPOINTS: &[(&str, &str)] = &[
    ("syscall_exit_read", "sys_exit_read"),
    ("syscall_exit_write", "sys_exit_write"),
    ("syscall_exit_readv", "sys_exit_readv"),
    ("syscall_exit_writev", "sys_exit_writev"),
    ("syscall_exit_recvfrom", "sys_exit_recvfrom"),
    ("syscall_exit_sendto", "sys_exit_sendto"),
    ("syscall_exit_recvmsg", "sys_exit_recvmsg"),
    ("syscall_exit_sendmsg", "sys_exit_sendmsg"),
    ("syscall_exit_connect", "sys_exit_connect"),
    ("syscall_exit_accept", "sys_exit_accept"),
    ("syscall_exit_accept", "sys_exit_accept4"),
    ("syscall_enter_close", "sys_enter_close"),
    ("syscall_exit_sendfile", "sys_exit_sendfile64"),
];

const SCHED_TRACEPOINTS: &[(&str, &str)] = &[
    ("process_exec", "sched_process_exec"),
    ("process_exit", "sched_process_exit"),
];

/// What the operator can tune at load time. Defaults come from `observer_common::limits`.
#[derive(Debug, Clone)]
pub struct CaptureConfig {
    pub chunk_size: u32,
    pub max_bytes_per_call: u32,
    pub ring_buffer_bytes: u32,
    /// Bytes a CPU submits between wake-ups of the agent (0: whenever it has caught up).
    pub wakeup_bytes: u32,
    /// Watch only these processes (empty: all).
    pub pids: Vec<u32>,
    /// Ship only connections with an end on one of these ports (empty: all).
    pub ports: Vec<u16>,
    pub tls_placement: placement::PlacementPolicy,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            chunk_size: limits::DEFAULT_CHUNK_SIZE,
            max_bytes_per_call: limits::DEFAULT_MAX_BYTES_PER_CALL,
            ring_buffer_bytes: limits::DEFAULT_RING_BUFFER_BYTES,
            wakeup_bytes: limits::default_wakeup_bytes(limits::DEFAULT_RING_BUFFER_BYTES),
            pids: Vec::new(),
            ports: Vec::new(),
            tls_placement: placement::PlacementPolicy::Auto,
        }
    }
}

#[derive(Debug, Error)]
pub enum CaptureError {
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    #[error(
        "this observer binary was built without its eBPF programs: build it with \
         `cargo xtask build` (or run `cargo xtask run`)"
    )]
    NoEbpfObject,
    #[error("invalid setting: {0}")]
    Config(String),
    #[error("loading the eBPF object failed: {0}")]
    Load(#[source] Box<aya::EbpfError>),
    #[error("the eBPF object has no program or map named {0}: the binary and its eBPF object disagree; rebuild with `cargo xtask build`")]
    Missing(String),
    #[error("the kernel refused program {program}: {source}")]
    Program {
        program: String,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    #[error("attaching {program} to tracepoint {category}/{name} failed: {source}")]
    Attach {
        program: String,
        category: String,
        name: String,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    #[error("cannot watch the ring buffer: {0}")]
    Epoll(#[source] std::io::Error),
    #[error("map {map}: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: Box<aya::maps::MapError>,
    },
}

/// Loaded and attached programs, and the maps the agent reads.
pub struct Capture {
    ebpf: Ebpf,
    _lock: AgentLock,
    logger: Option<aya_log::EbpfLogger<&'static dyn log::Log>>,
    counters: PerCpuArray<MapData, u64>,
    tls: tls::TlsProbes,
}

impl Capture {
    /// Check prerequisites, load the programs with `config`, and attach the syscall and process
    /// tracepoints. TLS libraries are attached afterwards with [`Capture::tls`].
    pub fn start(config: &CaptureConfig) -> Result<Capture, CaptureError> {
        if EBPF_OBJECT.is_empty() {
            return Err(CaptureError::NoEbpfObject);
        }
        validate(config)?;
        let lock = preflight::check()?;

        let agent_tgid = std::process::id();
        let filter_by_pid = u32::from(!config.pids.is_empty());
        let filter_by_port = u32::from(!config.ports.is_empty());
        let layout = kernel_layout::read().unwrap_or_else(|error| {
            tracing::warn!(
                "socket addresses will be looked up from user space, which misses connections that \
                 close within milliseconds: {error}"
            );
            KernelLayout::default()
        });
        let mut ebpf = EbpfLoader::new()
            .override_global(names::GLOBAL_AGENT_TGID, &agent_tgid, true)
            .override_global(names::GLOBAL_CHUNK_SIZE, &config.chunk_size, true)
            .override_global(
                names::GLOBAL_MAX_BYTES_PER_CALL,
                &config.max_bytes_per_call,
                true,
            )
            .override_global(names::GLOBAL_FILTER_BY_PID, &filter_by_pid, true)
            .override_global(names::GLOBAL_FILTER_BY_PORT, &filter_by_port, true)
            .override_global(names::GLOBAL_KERNEL_LAYOUT, &layout, true)
            .override_global(names::GLOBAL_WAKEUP_BYTES, &config.wakeup_bytes, true)
            .map_max_entries(names::EVENTS, config.ring_buffer_bytes)
            .load(EBPF_OBJECT)
            .map_err(|e| CaptureError::Load(Box::new(e)))?;

        // The logger must exist before programs load (they reference its map) and live as
        // long as they do: dropping it closes the map.
        let logger = match aya_log::EbpfLogger::init(&mut ebpf) {
            Ok(logger) => Some(logger),
            Err(error) => {
                tracing::debug!("no eBPF log map: {error}");
                None
            }
        };

        if !config.pids.is_empty() {
            let mut pids: BpfHashMap<_, u32, u8> = BpfHashMap::try_from(
                ebpf.map_mut(names::FILTER_PIDS)
                    .ok_or_else(|| CaptureError::Missing(names::FILTER_PIDS.into()))?,
            )
            .map_err(map_error(names::FILTER_PIDS))?;
            for pid in &config.pids {
                pids.insert(pid, 1, 0)
                    .map_err(map_error(names::FILTER_PIDS))?;
            }
        }

        if !config.ports.is_empty() {
            let mut ports: BpfHashMap<_, u16, u8> = BpfHashMap::try_from(
                ebpf.map_mut(names::FILTER_PORTS)
                    .ok_or_else(|| CaptureError::Missing(names::FILTER_PORTS.into()))?,
            )
            .map_err(map_error(names::FILTER_PORTS))?;
            for port in &config.ports {
                ports
                    .insert(port, 1, 0)
                    .map_err(map_error(names::FILTER_PORTS))?;
            }
        }

        for (program, tracepoint) in SYSCALL_TRACEPOINTS {
            attach_tracepoint(&mut ebpf, program, "syscalls", tracepoint)?;
        }
        for (program, tracepoint) in SCHED_TRACEPOINTS {
            attach_tracepoint(&mut ebpf, program, "sched", tracepoint)?;
        }
        for program in libraries::C_LIBRARY_PROGRAMS.iter().chain(&go::GO_PROGRAMS) {
            load_uprobe(&mut ebpf, program)?;
        }

        let counters = PerCpuArray::try_from(
            ebpf.take_map(names::COUNTERS)
                .ok_or_else(|| CaptureError::Missing(names::COUNTERS.into()))?,
        )
        .map_err(map_error(names::COUNTERS))?;

        Ok(Capture {
            ebpf,
            _lock: lock,
            logger,
            counters,
            tls: tls::TlsProbes::new(config.tls_placement),
        })
    }

    /// The ring buffer reader. Call once.
    pub fn ring(&mut self) -> Result<RingReader, CaptureError> {
        let map = self
            .ebpf
            .take_map(names::EVENTS)
            .ok_or_else(|| CaptureError::Missing(names::EVENTS.into()))?;
        RingReader::new(map)
    }

    /// Attach the TLS uprobes to the libraries and executables in `pid` not yet attached, and
    /// say what the process's TLS is when that changed since the last look.
    pub fn attach_tls_in_process(&mut self, pid: u32) -> Option<ProcessTlsStack> {
        self.tls.scan_process(&mut self.ebpf, pid)
    }

    /// Look at `pid` again because it was seen speaking TLS (see [`tls::TlsProbes::scan_speaker`]).
    pub fn attach_tls_for_speaker(&mut self, pid: u32) -> Option<ProcessTlsStack> {
        self.tls.scan_speaker(&mut self.ebpf, pid)
    }

    /// The process exited or exec'd: look at it afresh next time.
    pub fn forget_tls_process(&mut self, pid: u32) {
        self.tls.forget_process(pid);
    }

    /// What the kernel's connection table still holds of `conn`: its byte counts, when its
    /// process died without closing it (the kernel closes a dying process's fds without the
    /// close() calls the programs see). The entry is removed: nothing will use it again.
    pub fn take_conn_totals(&mut self, conn: ConnId) -> Option<ConnTotals> {
        let map = self.ebpf.map_mut(names::CONNS)?;
        let mut conns: BpfHashMap<_, u64, ConnState> = BpfHashMap::try_from(map).ok()?;
        let key = conn_key(conn.tgid, conn.fd);
        let state = conns.get(&key, 0).ok()?;
        if state.generation != conn.generation {
            return None;
        }
        let _ = conns.remove(&key);
        Some(ConnTotals {
            conn,
            bytes: state.bytes,
        })
    }

    /// Attach the TLS uprobes to a library file by path (as seen from the agent).
    pub fn attach_tls_file(&mut self, path: &std::path::Path) -> Option<tls::AttachReport> {
        self.tls.attach_file(&mut self.ebpf, path, None)
    }

    pub fn tls_probes(&self) -> &tls::TlsProbes {
        &self.tls
    }

    /// Forget a connection the kernel thinks may be HTTP but the agent found is not a socket
    /// (a file or pipe whose bytes looked like HTTP): stop the kernel from shipping it.
    pub fn ignore_fd(&mut self, tgid: u32, fd: u32) -> Result<(), CaptureError> {
        let key = conn_key(tgid, fd);
        if let Some(map) = self.ebpf.map_mut(names::CONNS) {
            let mut conns: BpfHashMap<_, u64, ConnState> =
                BpfHashMap::try_from(map).map_err(map_error(names::CONNS))?;
            let _ = conns.remove(&key);
        }
        let map = self
            .ebpf
            .map_mut(names::IGNORED)
            .ok_or_else(|| CaptureError::Missing(names::IGNORED.into()))?;
        let mut ignored: BpfHashMap<_, u64, u8> =
            BpfHashMap::try_from(map).map_err(map_error(names::IGNORED))?;
        ignored.insert(key, 0, 0).map_err(map_error(names::IGNORED))
    }

    /// Hand the eBPF programs' log records to the log (call regularly: their buffer is small).
    pub fn flush_logs(&mut self) {
        if let Some(logger) = &mut self.logger {
            logger.flush();
        }
    }

    /// Detach every program and probe, then read the final counters: after this the kernel
    /// sends nothing more, so what the ring buffer still holds is all there is.
    pub fn stop(self) -> Result<KernelCounters, CaptureError> {
        let Capture {
            ebpf,
            _lock,
            logger,
            counters,
            tls: _,
        } = self;
        let programs = program_stats(&ebpf);

        drop(ebpf);
        drop(logger);
        let mut kernel = read_counters(&counters)?;
        kernel.programs = programs;
        Ok(kernel)
    }

    /// The kernel's counters, summed over CPUs.
    pub fn counters(&self) -> Result<KernelCounters, CaptureError> {
        read_counters(&self.counters)
    }
}

/// Run counts and times of every program that ran, as the kernel keeps them while
/// `kernel.bpf_stats_enabled` is 1 (it costs a clock read per run, so it is off by default).
fn program_stats(ebpf: &Ebpf) -> BTreeMap<String, ProgramStats> {
    ebpf.programs()
        .filter_map(|(name, program)| {
            let info = program.info().ok()?;
            (info.run_count() > 0).then(|| {
                let stats = ProgramStats {
                    runs: info.run_count(),
                    run_time_ns: info.run_time().as_nanos() as u64,
                };
                (name.to_string(), stats)
            })
        })
        .collect()
}

fn read_counters(counters: &PerCpuArray<MapData, u64>) -> Result<KernelCounters, CaptureError> {
    let mut slots = [0u64; COUNTER_SLOTS as usize];
    for (slot, total) in slots.iter_mut().enumerate() {
        let values = counters
            .get(&(slot as u32), 0)
            .map_err(map_error(names::COUNTERS))?;
        *total = values.iter().sum();
    }
    Ok(KernelCounters {
        slots,
        programs: BTreeMap::new(),
    })
}

fn map_error(map: &'static str) -> impl FnOnce(aya::maps::MapError) -> CaptureError {
    move |source| CaptureError::Map {
        map,
        source: Box::new(source),
    }
}

fn program_error(program: &str) -> impl FnOnce(aya::programs::ProgramError) -> CaptureError + '_ {
    move |source| CaptureError::Program {
        program: program.to_string(),
        source: Box::new(source),
    }
}

fn validate(config: &CaptureConfig) -> Result<(), CaptureError> {
    if config.chunk_size == 0 || config.chunk_size as usize > limits::MAX_CHUNK_SIZE {
        return Err(CaptureError::Config(format!(
            "chunk size {} must be between 1 and {}",
            config.chunk_size,
            limits::MAX_CHUNK_SIZE
        )));
    }
    let max_per_call = u64::from(config.chunk_size) * u64::from(limits::MAX_CHUNKS_PER_CALL);
    if u64::from(config.max_bytes_per_call) > max_per_call {
        return Err(CaptureError::Config(format!(
            "per-call cap {} exceeds {} chunks of {} bytes ({max_per_call}); raise the chunk size \
             or lower the cap",
            config.max_bytes_per_call,
            limits::MAX_CHUNKS_PER_CALL,
            config.chunk_size
        )));
    }
    let ring = config.ring_buffer_bytes;
    if !ring.is_power_of_two() || (ring as usize) < 4 * limits::MAX_CHUNK_SIZE {
        return Err(CaptureError::Config(format!(
            "ring buffer size {ring} must be a power of two of at least {} bytes",
            4 * limits::MAX_CHUNK_SIZE
        )));
    }
    if config.wakeup_bytes > ring / 2 {
        return Err(CaptureError::Config(format!(
            "wake-up threshold {} is over half the ring buffer ({ring} bytes): the ring would \
             fill before the agent is woken; lower --wakeup-bytes or raise --ring-buffer-size",
            config.wakeup_bytes
        )));
    }
    Ok(())
}

fn attach_tracepoint(
    ebpf: &mut Ebpf,
    program: &str,
    category: &str,
    name: &str,
) -> Result<(), CaptureError> {
    let missing = || CaptureError::Missing(program.to_string());
    let tracepoint: &mut TracePoint = ebpf
        .program_mut(program)
        .ok_or_else(missing)?
        .try_into()
        .map_err(program_error(program))?;
    // A program serving two tracepoints is loaded once.
    if tracepoint.fd().is_err() {
        tracepoint.load().map_err(program_error(program))?;
    }
    tracepoint
        .attach(category, name)
        .map_err(|source| CaptureError::Attach {
            program: program.to_string(),
            category: category.to_string(),
            name: name.to_string(),
            source: Box::new(source),
        })?;
    Ok(())
}

fn load_uprobe(ebpf: &mut Ebpf, program: &str) -> Result<(), CaptureError> {
    let probe: &mut UProbe = ebpf
        .program_mut(program)
        .ok_or_else(|| CaptureError::Missing(program.to_string()))?
        .try_into()
        .map_err(program_error(program))?;
    probe.load().map_err(program_error(program))
}

/// Kernel counters, summed over CPUs, in `observer_common::Counter` slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelCounters {
    slots: [u64; COUNTER_SLOTS as usize],
    /// Per program, when the kernel's statistics were on (filled in by [`Capture::stop`]).
    pub programs: BTreeMap<String, ProgramStats>,
}

/// How often a program ran and for how long in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ProgramStats {
    pub runs: u64,
    pub run_time_ns: u64,
}

impl KernelCounters {
    pub fn get(&self, counter: Counter) -> u64 {
        self.slots[counter.slot() as usize]
    }

    pub fn attempted(&self, kind: EventKind) -> u64 {
        self.slots[Counter::EventsAttempted.slot() as usize + kind.index()]
    }

    pub fn ring_full(&self, kind: EventKind) -> u64 {
        self.slots[Counter::DropRingFull.slot() as usize + kind.index()]
    }

    /// Named, non-zero counters, for the summary and the metrics.
    pub fn named(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for kind in EventKind::ALL {
            out.insert(
                format!("events_attempted.{}", kind_name(kind)),
                self.attempted(kind),
            );
            out.insert(
                format!("dropped_ring_full.{}", kind_name(kind)),
                self.ring_full(kind),
            );
        }
        for (counter, name) in [
            (Counter::DropReadUserFailed, "dropped_read_user_failed"),
            (Counter::CallsTruncated, "calls_truncated"),
            (Counter::BytesTruncated, "bytes_truncated"),
            (Counter::DropConnTableFull, "dropped_conn_table_full"),
            (Counter::TlsWithoutFd, "tls_calls_without_fd"),
            (Counter::TlsCiphertextBytes, "tls_ciphertext_bytes"),
            (Counter::CallsOtherProtocol, "calls_other_protocol"),
            (Counter::DropArgsTableFull, "dropped_args_table_full"),
            (Counter::NotSockets, "not_sockets"),
            (Counter::ConnsFilteredByPort, "connections_filtered_by_port"),
            (
                Counter::TlsCallsNotOnTlsSocket,
                "tls_calls_not_on_tls_socket",
            ),
            (Counter::EchoedBytes, "echoed_bytes"),
        ] {
            out.insert(name.to_string(), self.get(counter));
        }
        out
    }
}

pub fn kind_name(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Data => "data",
        EventKind::ConnOpen => "conn_open",
        EventKind::ConnClose => "conn_close",
        EventKind::ProcessExec => "process_exec",
        EventKind::ProcessExit => "process_exit",
        EventKind::Echo => "echo",
    }
}

/// How long the reader waits for a wake-up before looking anyway: events are submitted without
/// waking the reader (see `limits::WAKEUP_RING_FRACTION`), so stragglers wait at most this long.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        validate(&CaptureConfig::default()).expect("defaults must validate");
    }

    #[test]
    fn bad_settings_say_what_is_wrong() {
        let rejection = |config: CaptureConfig| {
            validate(&config)
                .expect_err("the setting should be refused")
                .to_string()
        };
        let defaults = CaptureConfig::default;
        assert!(rejection(CaptureConfig {
            chunk_size: 0,
            ..defaults()
        })
        .contains("chunk size 0"));
        assert!(rejection(CaptureConfig {
            ring_buffer_bytes: 3 << 20,
            ..defaults()
        })
        .contains("power of two"));
        assert!(rejection(CaptureConfig {
            chunk_size: 1024,
            ..defaults()
        })
        .contains("per-call cap"));
        assert!(rejection(CaptureConfig {
            ring_buffer_bytes: 1 << 20,
            wakeup_bytes: 1 << 20,
            ..defaults()
        })
        .contains("--wakeup-bytes"));
    }
}
