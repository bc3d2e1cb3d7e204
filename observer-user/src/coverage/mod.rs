//! TLS coverage: for every process that speaks TLS or carries a TLS library, whether the agent
//! sees inside its TLS, and when it does not, why.
//!
//! A side stage of the pipeline. The kernel announces every connection whose bytes on the wire
//! are TLS records, with its byte counts at close; the TLS hooks' plaintext says which of those
//! the agent decrypted; `capture` looks at each process's executable and libraries and says
//! which TLS library it found and whether the probes attached, or what makes the process dark
//! (a [`ProcessTlsStack`] fact). [`CoverageTracker`] joins the three per process; `report`
//! turns it into rows grouped per process, executable and container; `store` keeps them in the
//! state directory for `observer coverage`.
//!
//! Like the rest of the pipeline it is a pure function of kernel events and facts, so a replay
//! of a recording gives the report the live agent had.

pub mod report;
pub mod store;

use std::{
    collections::{BTreeMap, VecDeque},
    io::Write as _,
    net::SocketAddr,
    process::ExitCode,
};

use observer_common::{ConnId, Direction, Source, TlsLibrary};
use serde::{Deserialize, Serialize};

use crate::{
    cli::{CoverageArgs, InventoryFormat},
    conn::IdMap,
    facts::ProcessInfo,
    model::tls_library_name,
};

/// `observer coverage`: the newest run's report from the state directory, as a table or JSON.
pub fn command(args: &CoverageArgs) -> anyhow::Result<ExitCode> {
    let rows = store::load(&args.state.state_dir)?;
    let report = report::report(&rows);
    let text = match args.format {
        InventoryFormat::Table => report::table(&report),
        InventoryFormat::Json => serde_json::to_string_pretty(&report)? + "\n",
    };
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// Processes the tracker keeps rows for. A row costs a few hundred bytes; hosts run a few
/// thousand processes. Past this, rows of exited processes go first, oldest first.
pub const MAX_PROCESSES: usize = 10_000;

/// TLS connections followed at once (those open, by id). Each is a few dozen bytes; past this,
/// new TLS connections are counted per process but not followed to their close.
pub const MAX_CONNECTIONS: usize = 100_000;

/// Undecrypted connections listed per process, newest last: enough to see where a dark
/// process's TLS goes, bounded because a busy client makes thousands.
pub const MAX_LISTED_CONNECTIONS: usize = 8;

/// What `capture` found of one process's TLS: a fact, recorded like the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessTlsStack {
    pub pid: u32,
    /// The process as /proc showed it when the agent looked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessInfo>,
    /// TLS libraries found in its executable or mappings, and whether their probes attached.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub libraries: Vec<LibraryProbes>,
    /// What its executable or mappings say about TLS no probe can reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dark: Option<DarkReason>,
}

/// One TLS library in one process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LibraryProbes {
    /// `openssl`, `boringssl`, `gnutls`, `nss` or `go`.
    pub library: String,
    /// The file, as seen inside the process's mount namespace.
    pub path: String,
    pub attached: bool,
    /// Why attaching failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Why a process's TLS stays dark.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum DarkReason {
    /// A Go program without its symbol table (`go build -ldflags=-s`): crypto/tls cannot be
    /// found by name.
    StrippedGo,
    /// A Go program older than the register calling convention the probes read.
    GoTooOld { version: String },
    /// Java: JSSE runs as JIT-compiled code, out of reach of uprobes.
    Java,
    /// A Rust program without OpenSSL: rustls most likely, which has no stable symbols.
    Rustls,
    /// A statically linked program without symbols: its TLS library cannot be found.
    StaticWithoutSymbols,
    /// TLS through a library the agent does not know or did not find.
    UnknownLibrary,
    /// The probes on its TLS library failed to attach.
    ProbesFailed { error: String },
}

impl DarkReason {
    /// A short stable name.
    pub fn label(&self) -> &'static str {
        match self {
            DarkReason::StrippedGo => "stripped_go",
            DarkReason::GoTooOld { .. } => "go_too_old",
            DarkReason::Java => "java",
            DarkReason::Rustls => "rustls",
            DarkReason::StaticWithoutSymbols => "static_without_symbols",
            DarkReason::UnknownLibrary => "unknown_library",
            DarkReason::ProbesFailed { .. } => "probes_failed",
        }
    }

    /// What it means, for people.
    pub fn explain(&self) -> String {
        match self {
            DarkReason::StrippedGo => {
                "stripped Go binary: crypto/tls cannot be found without its symbol table".into()
            }
            DarkReason::GoTooOld { version } => {
                format!("{version} predates Go 1.17's register calling convention the probes read")
            }
            DarkReason::Java => {
                "Java: JSSE runs in JIT-compiled code, out of reach of uprobes".into()
            }
            DarkReason::Rustls => {
                "Rust program without OpenSSL: rustls, which has no hookable symbols".into()
            }
            DarkReason::StaticWithoutSymbols => {
                "statically linked without symbols: its TLS library cannot be found".into()
            }
            DarkReason::UnknownLibrary => "TLS through a library the agent does not hook".into(),
            DarkReason::ProbesFailed { error } => format!("probes failed to attach: {error}"),
        }
    }
}

/// Bytes a connection moved over its life, read from the kernel's connection table when its
/// process exited without closing it (the kernel closes a dying process's fds without the
/// close() calls the programs see): a fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnTotals {
    pub conn: ConnId,
    /// By direction, then source, as in the close event.
    pub bytes: [[u64; Source::COUNT]; 2],
}

/// One undecrypted TLS connection of a process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndecryptedConnection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<SocketAddr>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

/// Everything known about one process's TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessCoverage {
    pub pid: u32,
    #[serde(default)]
    pub comm: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executable: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// Connections that carried TLS records.
    pub tls_connections: u64,
    /// Of those, connections whose plaintext a TLS hook delivered.
    pub decrypted_connections: u64,
    /// Connections closed (or whose process exited) without any plaintext delivered.
    pub undecrypted_connections: u64,
    /// API calls read from plaintext, by library.
    pub decrypted_calls: BTreeMap<String, u64>,
    /// Ciphertext bytes of connections the agent saw inside, and of those it did not.
    pub decrypted_tls_bytes: u64,
    pub undecrypted_tls_bytes: u64,
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    pub recent_undecrypted: VecDeque<UndecryptedConnection>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub libraries: Vec<LibraryProbes>,
    /// What `capture` found that no probe reaches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dark_hint: Option<DarkReason>,
    pub exited: bool,
    /// Kernel time of the last change, to evict the oldest rows first.
    #[serde(skip)]
    pub last_change_ns: u64,
}

/// A TLS connection followed until it closes.
#[derive(Debug, Clone)]
struct TlsConn {
    remote: Option<SocketAddr>,
    decrypted: bool,
}

/// Joins TLS connections, decrypted plaintext and library facts per process.
#[derive(Debug, Default)]
pub struct CoverageTracker {
    processes: IdMap<u32, ProcessCoverage>,
    conns: IdMap<ConnId, TlsConn>,
    /// Something changed since [`CoverageTracker::take_changed`].
    changed: bool,
    /// TLS connections not followed because [`MAX_CONNECTIONS`] were open.
    pub connections_over_limit: u64,
}

impl CoverageTracker {
    fn row(&mut self, pid: u32, now_ns: u64) -> &mut ProcessCoverage {
        if !self.processes.contains_key(&pid) && self.processes.len() >= MAX_PROCESSES {
            self.evict();
        }
        self.changed = true;
        let row = self
            .processes
            .entry(pid)
            .or_insert_with(|| ProcessCoverage {
                pid,
                ..ProcessCoverage::default()
            });
        row.last_change_ns = now_ns;
        row
    }

    /// Make room: the oldest exited process goes, or the oldest of all if none exited.
    fn evict(&mut self) {
        let oldest = self
            .processes
            .values()
            .min_by_key(|row| (!row.exited, row.last_change_ns))
            .map(|row| row.pid);
        if let Some(pid) = oldest {
            self.processes.remove(&pid);
        }
    }

    /// A connection carrying TLS records was announced.
    /// `comm` is the opening thread's, from the kernel: the name of a process gone before the
    /// agent could read more about it.
    pub fn tls_conn_opened(
        &mut self,
        conn: ConnId,
        remote: Option<SocketAddr>,
        comm: &str,
        process: Option<&ProcessInfo>,
        now_ns: u64,
    ) {
        let row = self.row(conn.tgid, now_ns);
        row.tls_connections += 1;
        if let Some(process) = process {
            describe(row, process);
        } else if row.comm.is_empty() {
            row.comm = comm.to_string();
        }
        if self.conns.len() >= MAX_CONNECTIONS {
            self.connections_over_limit += 1;
            return;
        }
        self.conns.insert(
            conn,
            TlsConn {
                remote,
                decrypted: false,
            },
        );
    }

    /// Plaintext arrived from a TLS hook for `conn`.
    pub fn decrypted(&mut self, conn: ConnId, now_ns: u64) {
        match self.conns.get_mut(&conn) {
            Some(tls) if tls.decrypted => return,
            Some(tls) => tls.decrypted = true,
            // Its open event was lost, or it was not followed: count it from here.
            None => {
                self.row(conn.tgid, now_ns).tls_connections += 1;
                if self.conns.len() < MAX_CONNECTIONS {
                    self.conns.insert(
                        conn,
                        TlsConn {
                            remote: None,
                            decrypted: true,
                        },
                    );
                }
            }
        }
        self.row(conn.tgid, now_ns).decrypted_connections += 1;
    }

    /// An API call was read from `library`'s plaintext in process `pid`.
    pub fn decrypted_call(&mut self, pid: u32, library: TlsLibrary, now_ns: u64) {
        *self
            .row(pid, now_ns)
            .decrypted_calls
            .entry(tls_library_name(library).to_string())
            .or_default() += 1;
    }

    /// A connection ended with these byte totals (by direction, then source). Connections that
    /// are not TLS ones are ignored.
    pub fn conn_closed(&mut self, conn: ConnId, bytes: &[[u64; Source::COUNT]; 2], now_ns: u64) {
        let Some(tls) = self.conns.remove(&conn) else {
            return;
        };
        let sent = bytes[Direction::Egress.index()][Source::Syscall.index()];
        let received = bytes[Direction::Ingress.index()][Source::Syscall.index()];
        let row = self.row(conn.tgid, now_ns);
        if tls.decrypted {
            row.decrypted_tls_bytes += sent + received;
            return;
        }
        row.undecrypted_connections += 1;
        row.undecrypted_tls_bytes += sent + received;
        if row.recent_undecrypted.len() >= MAX_LISTED_CONNECTIONS {
            row.recent_undecrypted.pop_front();
        }
        row.recent_undecrypted.push_back(UndecryptedConnection {
            remote: tls.remote,
            bytes_sent: sent,
            bytes_received: received,
        });
    }

    /// A process exited: connections still open end with what is known of them (their byte
    /// totals came first, as [`ConnTotals`] facts, when the kernel still had them).
    pub fn process_exited(&mut self, pid: u32, now_ns: u64) {
        let open: Vec<ConnId> = self
            .conns
            .keys()
            .filter(|id| id.tgid == pid)
            .copied()
            .collect();
        for conn in open {
            self.conn_closed(conn, &[[0; Source::COUNT]; 2], now_ns);
        }
        if let Some(row) = self.processes.get_mut(&pid) {
            row.exited = true;
            row.last_change_ns = now_ns;
            self.changed = true;
        }
    }

    /// The process exec'd a new program: what was found of the old one no longer applies.
    pub fn process_exec(&mut self, pid: u32) {
        if let Some(row) = self.processes.get_mut(&pid) {
            row.libraries.clear();
            row.dark_hint = None;
            self.changed = true;
        }
    }

    /// What `capture` found of a process's TLS libraries.
    pub fn stack(&mut self, stack: ProcessTlsStack, now_ns: u64) {
        let row = self.row(stack.pid, now_ns);
        if let Some(process) = &stack.process {
            describe(row, process);
        }
        row.libraries = stack.libraries;
        row.dark_hint = stack.dark;
    }

    /// Newer facts about a process the tracker has a row for.
    pub fn process_info(&mut self, process: &ProcessInfo) {
        if let Some(row) = self.processes.get_mut(&process.pid) {
            describe(row, process);
        }
    }

    /// Every row, by pid.
    pub fn rows(&self) -> Vec<ProcessCoverage> {
        let mut rows: Vec<ProcessCoverage> = self.processes.values().cloned().collect();
        rows.sort_by_key(|row| row.pid);
        rows
    }

    /// Processes still running, by where they stand (processes with no TLS seen included).
    pub fn running_by_status(&self) -> BTreeMap<report::Status, u64> {
        let mut counts = BTreeMap::new();
        for row in self.processes.values().filter(|row| !row.exited) {
            *counts.entry(report::status(row)).or_default() += 1;
        }
        counts
    }

    /// Whether anything changed since the last call.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }
}

fn describe(row: &mut ProcessCoverage, process: &ProcessInfo) {
    row.comm.clone_from(&process.comm);
    if process.exe.is_some() {
        row.executable.clone_from(&process.exe);
    }
    if process.container_id.is_some() {
        row.container_id.clone_from(&process.container_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(tgid: u32, fd: u32) -> ConnId {
        ConnId {
            tgid,
            fd,
            generation: u64::from(fd),
        }
    }

    fn bytes(sent: u64, received: u64) -> [[u64; Source::COUNT]; 2] {
        [[sent, 0], [received, 0]]
    }

    #[test]
    fn decrypted_and_undecrypted_connections_are_told_apart() {
        let mut tracker = CoverageTracker::default();
        tracker.tls_conn_opened(conn(1, 3), None, "p", None, 1);
        tracker.tls_conn_opened(
            conn(1, 4),
            Some("10.0.0.1:443".parse().unwrap()),
            "p",
            None,
            1,
        );
        tracker.decrypted(conn(1, 3), 2);
        tracker.decrypted(conn(1, 3), 3);
        tracker.decrypted_call(1, TlsLibrary::Go, 3);
        tracker.conn_closed(conn(1, 3), &bytes(100, 200), 4);
        tracker.conn_closed(conn(1, 4), &bytes(10, 20), 4);
        let row = &tracker.rows()[0];
        assert_eq!(row.tls_connections, 2);
        assert_eq!(row.decrypted_connections, 1);
        assert_eq!(row.undecrypted_connections, 1);
        assert_eq!(row.decrypted_tls_bytes, 300);
        assert_eq!(row.undecrypted_tls_bytes, 30);
        assert_eq!(row.decrypted_calls.get("go"), Some(&1));
        assert_eq!(
            row.recent_undecrypted,
            [UndecryptedConnection {
                remote: Some("10.0.0.1:443".parse().unwrap()),
                bytes_sent: 10,
                bytes_received: 20
            }]
        );
    }

    #[test]
    fn connections_of_an_exited_process_end_with_their_totals() {
        let mut tracker = CoverageTracker::default();
        tracker.tls_conn_opened(conn(7, 3), None, "p", None, 1);
        // The totals fact comes before the exit.
        tracker.conn_closed(conn(7, 3), &bytes(5, 6), 2);
        tracker.tls_conn_opened(conn(7, 4), None, "p", None, 2);
        tracker.process_exited(7, 3);
        let row = &tracker.rows()[0];
        assert!(row.exited);
        assert_eq!(row.undecrypted_connections, 2);
        assert_eq!(row.undecrypted_tls_bytes, 11);
    }

    #[test]
    fn rows_are_bounded_and_exited_processes_go_first() {
        let mut tracker = CoverageTracker::default();
        for pid in 0..MAX_PROCESSES as u32 {
            tracker.tls_conn_opened(conn(pid, 3), None, "p", None, u64::from(pid) + 10);
        }
        tracker.process_exited(500, 20_000);
        tracker.tls_conn_opened(conn(1_000_000, 3), None, "p", None, 30_000);
        assert_eq!(tracker.rows().len(), MAX_PROCESSES);
        assert!(tracker.rows().iter().all(|row| row.pid != 500));
    }

    #[test]
    fn a_stack_fact_describes_the_process() {
        let mut tracker = CoverageTracker::default();
        tracker.stack(
            ProcessTlsStack {
                pid: 9,
                process: Some(ProcessInfo {
                    pid: 9,
                    comm: "java".into(),
                    exe: Some("/usr/lib/jvm/bin/java".into()),
                    ..ProcessInfo::default()
                }),
                libraries: Vec::new(),
                dark: Some(DarkReason::Java),
            },
            1,
        );
        let row = &tracker.rows()[0];
        assert_eq!(row.executable.as_deref(), Some("/usr/lib/jvm/bin/java"));
        assert_eq!(row.dark_hint, Some(DarkReason::Java));
        let json = serde_json::to_string(&DarkReason::ProbesFailed { error: "x".into() }).unwrap();
        assert_eq!(json, r#"{"reason":"probes_failed","error":"x"}"#);
    }
}
