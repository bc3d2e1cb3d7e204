//! The coverage report: the tracker's rows judged (decrypted, partly, dark and why), grouped per
//! process, executable and container, as a table, JSON, or one log line.
//!
//! Read by `observer coverage` from the state directory and by the live agent for its periodic
//! log line; pure functions of the rows.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
};

use serde::Serialize;

use super::{DarkReason, LibraryProbes, ProcessCoverage, UndecryptedConnection};

/// Where a process stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every TLS connection seen was read in plaintext.
    Decrypted,
    /// Some were, some were not.
    Partial,
    /// TLS connections, none read in plaintext.
    Dark,
    /// No TLS connection seen yet (probes may be ready for one).
    NoTlsSeen,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Decrypted => "decrypted",
            Status::Partial => "partial",
            Status::Dark => "dark",
            Status::NoTlsSeen => "no_tls_seen",
        }
    }
}

/// One process in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessRow {
    pub pid: u32,
    pub comm: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executable: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    pub status: Status,
    /// Whether it speaks TLS: TLS records were seen on its sockets.
    pub speaks_tls: bool,
    pub libraries: Vec<LibraryProbes>,
    pub probes_attached: bool,
    pub tls_connections: u64,
    pub decrypted_connections: u64,
    pub undecrypted_connections: u64,
    pub decrypted_calls: u64,
    pub decrypted_calls_by_library: BTreeMap<String, u64>,
    pub decrypted_tls_bytes: u64,
    pub undecrypted_tls_bytes: u64,
    /// Why its TLS stays dark, when some of it does (or, with no TLS seen yet, would).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dark_reason: Option<DarkReason>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recent_undecrypted: Vec<UndecryptedConnection>,
    pub exited: bool,
}

/// Processes grouped by executable or by container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupRow {
    pub key: String,
    pub processes: u64,
    pub tls_connections: u64,
    pub decrypted_calls: u64,
    pub undecrypted_tls_bytes: u64,
    /// The worst status among its processes.
    pub status: Status,
    pub libraries: BTreeSet<String>,
    pub dark_reasons: BTreeSet<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub processes: Vec<ProcessRow>,
    pub executables: Vec<GroupRow>,
    pub containers: Vec<GroupRow>,
}

/// Judge one process.
pub fn judge(row: &ProcessCoverage) -> ProcessRow {
    let calls: u64 = row.decrypted_calls.values().sum();
    let status = status(row);
    let probes_attached = row.libraries.iter().any(|l| l.attached);
    let failed = row
        .libraries
        .iter()
        .find_map(|l| l.error.as_ref())
        .map(|error| DarkReason::ProbesFailed {
            error: error.clone(),
        });
    let dark_reason = match status {
        Status::Dark | Status::Partial => Some(
            failed
                .or_else(|| row.dark_hint.clone())
                .unwrap_or(DarkReason::UnknownLibrary),
        ),
        // Nothing seen yet: say what would stay dark, if anything is known.
        Status::NoTlsSeen => failed.or_else(|| row.dark_hint.clone()),
        Status::Decrypted => None,
    };
    ProcessRow {
        pid: row.pid,
        comm: row.comm.clone(),
        executable: row.executable.clone(),
        container_id: row.container_id.clone(),
        status,
        speaks_tls: row.tls_connections > 0,
        libraries: row.libraries.clone(),
        probes_attached,
        tls_connections: row.tls_connections,
        decrypted_connections: row.decrypted_connections,
        undecrypted_connections: row.undecrypted_connections,
        decrypted_calls: calls,
        decrypted_calls_by_library: row.decrypted_calls.clone(),
        decrypted_tls_bytes: row.decrypted_tls_bytes,
        undecrypted_tls_bytes: row.undecrypted_tls_bytes,
        dark_reason,
        recent_undecrypted: row.recent_undecrypted.iter().cloned().collect(),
        exited: row.exited,
    }
}

/// Where one process stands: the part of [`judge`] the metrics count, without copying the row.
pub fn status(row: &ProcessCoverage) -> Status {
    let decrypted = row.decrypted_connections > 0 || row.decrypted_calls.values().any(|n| *n > 0);
    let open_undecrypted = row
        .tls_connections
        .saturating_sub(row.decrypted_connections + row.undecrypted_connections);
    let undecrypted = row.undecrypted_connections > 0 || (!decrypted && open_undecrypted > 0);
    match (row.tls_connections > 0 || decrypted, decrypted, undecrypted) {
        (false, _, _) => Status::NoTlsSeen,
        (true, true, true) => Status::Partial,
        (true, true, false) => Status::Decrypted,
        (true, false, _) => Status::Dark,
    }
}

/// Whether a row says anything: a process that spoke TLS, carries a TLS library, or would stay
/// dark for a reason particular to it. A Rust or static program that never spoke TLS is most
/// programs on a host, and listing them all would bury the rest.
fn worth_listing(row: &ProcessRow) -> bool {
    row.status != Status::NoTlsSeen
        || !row.libraries.is_empty()
        || !matches!(
            row.dark_reason,
            None | Some(DarkReason::Rustls | DarkReason::StaticWithoutSymbols)
        )
}

/// The whole report over `rows`.
pub fn report(rows: &[ProcessCoverage]) -> Report {
    let processes: Vec<ProcessRow> = rows.iter().map(judge).filter(worth_listing).collect();
    let executables = group(&processes, |p| {
        Some(p.executable.clone().unwrap_or_else(|| p.comm.clone()))
    });
    let containers = group(&processes, |p| p.container_id.clone());
    Report {
        processes,
        executables,
        containers,
    }
}

fn group(processes: &[ProcessRow], key: impl Fn(&ProcessRow) -> Option<String>) -> Vec<GroupRow> {
    let mut groups: BTreeMap<String, GroupRow> = BTreeMap::new();
    for process in processes {
        let Some(key) = key(process) else { continue };
        let group = groups.entry(key.clone()).or_insert_with(|| GroupRow {
            key,
            processes: 0,
            tls_connections: 0,
            decrypted_calls: 0,
            undecrypted_tls_bytes: 0,
            status: Status::NoTlsSeen,
            libraries: BTreeSet::new(),
            dark_reasons: BTreeSet::new(),
        });
        group.processes += 1;
        group.tls_connections += process.tls_connections;
        group.decrypted_calls += process.decrypted_calls;
        group.undecrypted_tls_bytes += process.undecrypted_tls_bytes;
        group.status = worse(group.status, process.status);
        group
            .libraries
            .extend(process.libraries.iter().map(|l| l.library.clone()));
        group
            .dark_reasons
            .extend(process.dark_reason.as_ref().map(DarkReason::label));
    }
    groups.into_values().collect()
}

/// Dark before partial before decrypted before nothing seen.
fn worse(a: Status, b: Status) -> Status {
    let rank = |s: Status| match s {
        Status::Dark => 0,
        Status::Partial => 1,
        Status::Decrypted => 2,
        Status::NoTlsSeen => 3,
    };
    if rank(a) <= rank(b) {
        a
    } else {
        b
    }
}

/// The report as a table for people: one line per process, then per executable.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<8} {:<16} {:<12} {:>6} {:>7} {:>12}  {:<24} why / where",
        "PID", "PROCESS", "STATUS", "TLS", "CALLS", "DARK BYTES", "LIBRARIES"
    );
    for p in &report.processes {
        let libraries: Vec<String> = p
            .libraries
            .iter()
            .map(|l| {
                let state = if l.attached { "" } else { " (failed)" };
                format!("{}{state}", l.library)
            })
            .collect();
        let why = match &p.dark_reason {
            Some(reason) => reason.explain(),
            None => p
                .libraries
                .iter()
                .map(|l| l.path.clone())
                .collect::<Vec<_>>()
                .join(", "),
        };
        let name = p
            .executable
            .as_deref()
            .and_then(|e| e.rsplit('/').next())
            .unwrap_or(&p.comm);
        let _ = writeln!(
            out,
            "{:<8} {:<16} {:<12} {:>6} {:>7} {:>12}  {:<24} {}{}",
            p.pid,
            truncate(name, 16),
            p.status.label(),
            p.tls_connections,
            p.decrypted_calls,
            p.undecrypted_tls_bytes,
            truncate(&libraries.join(","), 24),
            why,
            if p.exited { " (exited)" } else { "" }
        );
    }
    if !report.executables.is_empty() {
        let _ = writeln!(out, "\nby executable:");
        for g in &report.executables {
            let reasons: Vec<&str> = g.dark_reasons.iter().copied().collect();
            let _ = writeln!(
                out,
                "  {} — {} process(es), {}, {} TLS connection(s), {} decrypted call(s), {} undecrypted bytes{}",
                g.key,
                g.processes,
                g.status.label(),
                g.tls_connections,
                g.decrypted_calls,
                g.undecrypted_tls_bytes,
                if reasons.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", reasons.join(", "))
                }
            );
        }
    }
    if !report.containers.is_empty() {
        let _ = writeln!(out, "\nby container:");
        for g in &report.containers {
            let _ = writeln!(
                out,
                "  {} — {} process(es), {}, {} decrypted call(s), {} undecrypted bytes",
                truncate(&g.key, 12),
                g.processes,
                g.status.label(),
                g.decrypted_calls,
                g.undecrypted_tls_bytes
            );
        }
    }
    out
}

/// One line for the agent's log.
pub fn log_line(report: &Report) -> String {
    let mut counts: BTreeMap<Status, u64> = BTreeMap::new();
    let mut reasons: BTreeMap<&'static str, u64> = BTreeMap::new();
    for p in &report.processes {
        *counts.entry(p.status).or_default() += 1;
        if matches!(p.status, Status::Dark | Status::Partial) {
            if let Some(reason) = &p.dark_reason {
                *reasons.entry(reason.label()).or_default() += 1;
            }
        }
    }
    let count = |s| counts.get(&s).copied().unwrap_or(0);
    let dark_bytes: u64 = report
        .processes
        .iter()
        .map(|p| p.undecrypted_tls_bytes)
        .sum();
    let reasons: Vec<String> = reasons.iter().map(|(r, n)| format!("{r} {n}")).collect();
    format!(
        "TLS coverage: {} processes decrypted, {} partly, {} dark{}, {} undecrypted TLS bytes, {} with probes ready and no TLS yet",
        count(Status::Decrypted),
        count(Status::Partial),
        count(Status::Dark),
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", reasons.join(", "))
        },
        dark_bytes,
        count(Status::NoTlsSeen),
    )
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pid: u32) -> ProcessCoverage {
        ProcessCoverage {
            pid,
            comm: format!("p{pid}"),
            executable: Some(format!("/bin/p{pid}")),
            ..ProcessCoverage::default()
        }
    }

    #[test]
    fn statuses_and_reasons() {
        let mut decrypted = row(1);
        decrypted.tls_connections = 1;
        decrypted.decrypted_connections = 1;
        decrypted.decrypted_calls.insert("go".into(), 2);
        decrypted.libraries.push(LibraryProbes {
            library: "go".into(),
            path: "/bin/p1".into(),
            attached: true,
            error: None,
        });
        let mut java = row(2);
        java.tls_connections = 1;
        java.undecrypted_connections = 1;
        java.undecrypted_tls_bytes = 4000;
        java.dark_hint = Some(DarkReason::Java);
        let mut unknown = row(3);
        unknown.tls_connections = 1;
        let mut failed = row(4);
        failed.tls_connections = 2;
        failed.decrypted_connections = 1;
        failed.undecrypted_connections = 1;
        failed.libraries.push(LibraryProbes {
            library: "openssl".into(),
            path: "/lib/libssl.so.3".into(),
            attached: false,
            error: Some("EBUSY".into()),
        });
        let mut ready = row(5);
        ready.libraries.push(LibraryProbes {
            library: "gnutls".into(),
            path: "/lib/libgnutls.so.30".into(),
            attached: true,
            error: None,
        });
        let mut quiet_rust = row(6);
        quiet_rust.dark_hint = Some(DarkReason::Rustls);

        let report = report(&[decrypted, java, unknown, failed, ready, quiet_rust]);
        assert!(report.processes.iter().all(|p| p.pid != 6));
        let by_pid = |pid| report.processes.iter().find(|p| p.pid == pid).unwrap();
        assert_eq!(by_pid(1).status, Status::Decrypted);
        assert_eq!(by_pid(1).dark_reason, None);
        assert!(by_pid(1).probes_attached);
        assert_eq!(by_pid(2).status, Status::Dark);
        assert_eq!(by_pid(2).dark_reason, Some(DarkReason::Java));
        assert_eq!(by_pid(3).status, Status::Dark);
        assert_eq!(by_pid(3).dark_reason, Some(DarkReason::UnknownLibrary));
        assert_eq!(by_pid(4).status, Status::Partial);
        assert_eq!(
            by_pid(4).dark_reason,
            Some(DarkReason::ProbesFailed {
                error: "EBUSY".into()
            })
        );
        assert_eq!(by_pid(5).status, Status::NoTlsSeen);

        let line = log_line(&report);
        assert!(line.contains("1 processes decrypted, 1 partly, 2 dark (java 1, probes_failed 1, unknown_library 1)"), "{line}");
        let table = table(&report);
        assert!(table.contains("JSSE"), "{table}");
        assert_eq!(report.executables.len(), 5);
    }
}
