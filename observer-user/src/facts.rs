//! Facts the agent learns outside the ring buffer: who a process is, what a socket's addresses
//! are, how kernel time maps to wall time.
//!
//! The pipeline is a pure function of kernel events and these facts. Live, the `enrich` module
//! looks them up in /proc and the sockets themselves and feeds them in just before the event that
//! needed them; a recording stores them in the same place, so a replay produces the same output
//! without the host it was recorded on.

use std::{net::SocketAddr, sync::Arc};

use observer_common::ConnId;
use serde::{Deserialize, Serialize};

use crate::coverage::{ConnTotals, ProcessTlsStack};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fact", rename_all = "snake_case")]
pub enum Fact {
    Process(ProcessInfo),
    Socket(SocketInfo),
    Clock(ClockSync),
    /// What the agent found of a process's TLS libraries (see `coverage`).
    TlsStack(ProcessTlsStack),
    /// A connection's byte counts, read from the kernel when its process died without closing
    /// it (see `coverage`).
    ConnTotals(ConnTotals),
}

/// A process, as /proc described it when the agent first needed it.
/// For `skip_serializing_if` on a shared argument list.
pub fn no_args(args: &Arc<[String]>) -> bool {
    args.is_empty()
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub pid: u32,
    /// The kernel's 15-byte name of the main thread.
    pub comm: String,
    /// Path of the executable, as seen inside the process's mount namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    /// Shared: every call the process makes carries it (see `model::ApiCall::command_args`).
    #[serde(default, skip_serializing_if = "no_args")]
    pub cmdline: Arc<[String]>,
    /// Container runtime id (64 hex digits) from the cgroup path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// Kubernetes pod UID from the cgroup path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
}

impl ProcessInfo {
    /// The executable's file name, or the comm when the executable is unknown.
    pub fn executable_name(&self) -> &str {
        self.exe
            .as_deref()
            .and_then(|exe| exe.rsplit('/').next())
            .filter(|name| !name.is_empty())
            .unwrap_or(&self.comm)
    }
}

/// A connection's socket, looked at from the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketInfo {
    pub conn: ConnId,
    /// False when the fd turned out not to be a socket (a file or pipe whose bytes looked like
    /// HTTP): the connection is dropped.
    pub is_socket: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<SocketAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<SocketAddr>,
}

/// Kernel timestamps are CLOCK_MONOTONIC; this pairs one with the wall clock read at the same
/// moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockSync {
    pub monotonic_ns: u64,
    pub realtime_ns: u64,
}

impl ClockSync {
    /// Wall-clock nanoseconds since the Unix epoch for a kernel timestamp.
    pub fn to_realtime_ns(&self, monotonic_ns: u64) -> u64 {
        let ns =
            i128::from(self.realtime_ns) + i128::from(monotonic_ns) - i128::from(self.monotonic_ns);
        u64::try_from(ns).unwrap_or(0)
    }

    /// Both clocks, now.
    pub fn now() -> ClockSync {
        ClockSync {
            monotonic_ns: clock_ns(libc::CLOCK_MONOTONIC),
            realtime_ns: clock_ns(libc::CLOCK_REALTIME),
        }
    }
}

/// Nanoseconds on `clock` (`CLOCK_MONOTONIC`, `CLOCK_THREAD_CPUTIME_ID`...), now.
pub fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid clock id and output struct.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Kernel time now: what `bpf_ktime_get_ns()` would return.
pub fn monotonic_now_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_round_trip_through_json() {
        let facts = [
            Fact::Process(ProcessInfo {
                pid: 7,
                comm: "nginx".into(),
                exe: Some("/usr/sbin/nginx".into()),
                cmdline: vec!["nginx: worker process".to_string()].into(),
                container_id: Some("a".repeat(64)),
                pod_uid: None,
            }),
            Fact::Socket(SocketInfo {
                conn: ConnId {
                    tgid: 7,
                    fd: 3,
                    generation: 11,
                },
                is_socket: true,
                local: Some("127.0.0.1:80".parse().expect("literal")),
                remote: None,
            }),
            Fact::Clock(ClockSync {
                monotonic_ns: 5,
                realtime_ns: 1_700_000_000_000_000_000,
            }),
        ];
        for fact in facts {
            let json = serde_json::to_string(&fact).expect("serialize");
            assert_eq!(
                serde_json::from_str::<Fact>(&json).expect("parse"),
                fact,
                "{json}"
            );
        }
    }

    #[test]
    fn kernel_time_maps_to_wall_time() {
        let clock = ClockSync {
            monotonic_ns: 1_000,
            realtime_ns: 1_000_000,
        };
        assert_eq!(clock.to_realtime_ns(1_500), 1_000_500);
        assert_eq!(clock.to_realtime_ns(500), 999_500);
    }

    #[test]
    fn executable_name_falls_back_to_comm() {
        let mut info = ProcessInfo {
            pid: 1,
            comm: "python3".into(),
            ..ProcessInfo::default()
        };
        assert_eq!(info.executable_name(), "python3");
        info.exe = Some("/usr/bin/python3.11".into());
        assert_eq!(info.executable_name(), "python3.11");
    }
}
