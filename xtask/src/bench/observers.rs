//! What watches the server during an observed run: observer itself, or a classic alternative
//! (tcpdump writing every packet on lo, a bpftrace script copying payloads from the same hooks).
//! Each is started, waited for until it really watches, and stopped with its CPU time, peak
//! memory and what it lost.

use std::{
    fs,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

use super::load::pinned;

/// How long an observer gets to attach and say it is watching.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long it gets to stop, flush and print its account after SIGINT.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The agent's lock file, held while an agent runs (see observer-user's capture/preflight.rs).
const AGENT_LOCK: &str = "/run/observer/agent.lock";

/// The OpenSSL library nginx and wrk use here; bpftrace needs its path.
const LIBSSL: &str = "/usr/lib/x86_64-linux-gnu/libssl.so.3";

/// Bytes bpftrace copies per call: its `buf()` is bounded by this setting.
const BPFTRACE_MAX_STRLEN: &str = "1024";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObserverKind {
    Agent,
    Tcpdump,
    Bpftrace,
}

/// A program's kernel run time (`kernel.bpf_stats_enabled`) over a run.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgramTime {
    pub name: String,
    pub runs: u64,
    pub ns_per_run: f64,
}

/// What an observer cost and lost during one run.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// CPU seconds it used per wall second while watching.
    pub cpu_share: f64,
    pub peak_rss_kib: u64,
    /// Events (or packets) it says it lost.
    pub lost: u64,
    /// For the agent: API calls it reported.
    pub calls: u64,
    /// For the agent: of those, the calls it reported without their bodies because it was
    /// falling behind (its ring half full).
    pub bodies_shed: u64,
    /// For the agent: its stats file, for the micro benchmarks to read program run times.
    pub stats: Option<serde_json::Value>,
}

impl Outcome {
    /// The agent's programs that ran, most runs first (empty for the other observers).
    pub fn program_times(&self) -> Vec<ProgramTime> {
        let mut programs: Vec<ProgramTime> = self
            .stats
            .as_ref()
            .and_then(|stats| stats["programs"].as_object())
            .into_iter()
            .flatten()
            .filter_map(|(name, stats)| {
                let runs = stats["runs"].as_u64()?;
                let time = stats["run_time_ns"].as_u64()?;
                (runs > 0).then(|| ProgramTime {
                    name: name.clone(),
                    runs,
                    ns_per_run: time as f64 / runs as f64,
                })
            })
            .collect();
        programs.sort_by_key(|program| std::cmp::Reverse(program.runs));
        programs
    }
}

pub struct Running {
    kind: ObserverKind,
    child: Child,
    started: Instant,
    cpu_at_start: f64,
    stats_file: PathBuf,
    output_file: PathBuf,
    /// A state directory of its own (agents run beside another), removed at the end.
    state_dir: Option<PathBuf>,
    stderr: mpsc::Receiver<String>,
}

/// Whether an agent holds the lock now.
pub fn agent_running() -> bool {
    let Ok(file) = fs::File::open(AGENT_LOCK) else {
        return false;
    };
    use std::os::fd::AsRawFd;
    // SAFETY: valid fd; a non-blocking shared lock attempt, released when the file closes.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) != 0 }
}

pub fn start(kind: ObserverKind, agent: &Path, port: u16, cpu: Option<usize>) -> Result<Running> {
    launch(kind, agent, port, cpu, None)
}

/// An agent that runs beside another (`instance` tells them apart): in a mount namespace of its
/// own whose /run is empty, so that the single-agent lock of each is its own, and with its own
/// state directory, output and stats. Only for comparing two agents' kernel sides, which then
/// see the same calls at the same moments; on a real host two agents double every count.
pub fn start_beside(
    agent: &Path,
    port: u16,
    cpu: Option<usize>,
    instance: &str,
) -> Result<Running> {
    launch(ObserverKind::Agent, agent, port, cpu, Some(instance))
}

fn launch(
    kind: ObserverKind,
    agent: &Path,
    port: u16,
    cpu: Option<usize>,
    instance: Option<&str>,
) -> Result<Running> {
    let dir = std::env::temp_dir();
    let id = format!("{}{}", std::process::id(), instance.unwrap_or_default());
    let stats_file = dir.join(format!("observer-bench-stats-{id}.json"));
    let output_file = dir.join(format!("observer-bench-output-{id}"));
    let _ = fs::remove_file(&stats_file);
    let _ = fs::remove_file(&output_file);
    let state_dir = instance.map(|_| dir.join(format!("observer-bench-state-{id}")));
    let mut command = match kind {
        ObserverKind::Agent => {
            let mut command = match instance {
                Some(_) => {
                    let mut command = pinned(cpu, "unshare");
                    command.args([
                        "--mount",
                        "--propagation",
                        "private",
                        "sh",
                        "-c",
                        "mount -t tmpfs observer-bench /run && exec \"$0\" \"$@\"",
                    ]);
                    command.arg(agent);
                    command
                }
                None => pinned(cpu, &agent.display().to_string()),
            };
            command
                .args(["run", "--port", &port.to_string(), "--output"])
                .arg(&output_file)
                .arg("--stats-file")
                .arg(&stats_file);
            if let Some(state_dir) = &state_dir {
                command.arg("--state-dir").arg(state_dir);
            }
            command
        }
        ObserverKind::Tcpdump => {
            let mut command = pinned(cpu, "tcpdump");
            command
                .args(["-i", "lo", "-s", "0", "-w"])
                .arg(&output_file)
                .args(["tcp", "port", &port.to_string()]);
            command
        }
        ObserverKind::Bpftrace => {
            let script = dir.join(format!("observer-bench-{id}.bt"));
            fs::write(&script, bpftrace_script())?;
            let mut command = pinned(cpu, "bpftrace");
            command
                .env("BPFTRACE_MAX_STRLEN", BPFTRACE_MAX_STRLEN)
                .arg("-o")
                .arg(&output_file)
                .arg(&script);
            command
        }
    };
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {kind:?}"))?;
    let pipe = child.stderr.take().context("observer's stderr")?;
    let (lines, stderr) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut running = Running {
        kind,
        child,
        started: Instant::now(),
        cpu_at_start: 0.0,
        stats_file,
        output_file,
        state_dir,
        stderr,
    };
    running.wait_until_ready()?;
    running.cpu_at_start = cpu_seconds(running.child.id())?;
    running.started = Instant::now();
    Ok(running)
}

impl Running {
    fn wait_until_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{:?} exited ({status}) before it was ready:\n{}",
                    self.kind,
                    seen.join("\n")
                );
            }
            while let Ok(line) = self.stderr.try_recv() {
                let ready = match self.kind {
                    ObserverKind::Agent => line.contains("observer is watching"),
                    ObserverKind::Tcpdump => line.contains("listening on"),
                    ObserverKind::Bpftrace => false,
                };
                seen.push(line);
                if ready {
                    return Ok(());
                }
            }
            if self.kind == ObserverKind::Bpftrace
                && fs::read_to_string(&self.output_file).is_ok_and(|out| out.contains("Attaching"))
            {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        bail!(
            "{:?} was not ready within {} s:\n{}",
            self.kind,
            READY_TIMEOUT.as_secs(),
            seen.join("\n")
        )
    }

    /// SIGINT, wait, and account.
    pub fn stop(mut self) -> Result<Outcome> {
        let pid = self.child.id();
        let cpu = cpu_seconds(pid)? - self.cpu_at_start;
        let wall = self.started.elapsed().as_secs_f64();
        let peak_rss_kib = peak_rss_kib(pid).unwrap_or(0);
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid as i32, libc::SIGINT) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!(
                    "{:?} did not stop within {} s of SIGINT",
                    self.kind,
                    STOP_TIMEOUT.as_secs()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
        let stderr: Vec<String> = self.stderr.try_iter().collect();
        let mut outcome = Outcome {
            cpu_share: cpu / wall.max(f64::EPSILON),
            peak_rss_kib,
            ..Outcome::default()
        };
        match self.kind {
            ObserverKind::Agent => {
                let stats: serde_json::Value = serde_json::from_str(
                    &fs::read_to_string(&self.stats_file)
                        .context("reading the agent's stats file")?,
                )?;
                outcome.lost = stats["events_lost"]
                    .as_object()
                    .map_or(0, |lost| lost.values().filter_map(|v| v.as_u64()).sum());
                outcome.calls = stats["pipeline"]["api_calls"].as_u64().unwrap_or(0);
                outcome.bodies_shed = stats["pipeline"]["calls_bodies_shed"].as_u64().unwrap_or(0);
                outcome.stats = Some(stats);
            }
            ObserverKind::Tcpdump => {
                // "N packets dropped by kernel"
                outcome.lost = stderr
                    .iter()
                    .find_map(|line| line.strip_suffix(" packets dropped by kernel"))
                    .and_then(|n| n.trim().parse().ok())
                    .unwrap_or(0);
            }
            ObserverKind::Bpftrace => {
                // "Lost N events"
                outcome.lost = fs::read_to_string(&self.output_file)
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|line| {
                        line.strip_prefix("Lost ")?
                            .split(' ')
                            .next()?
                            .parse::<u64>()
                            .ok()
                    })
                    .sum();
            }
        }
        let _ = fs::remove_file(&self.output_file);
        let _ = fs::remove_file(&self.stats_file);
        if let Some(state_dir) = &self.state_dir {
            let _ = fs::remove_dir_all(state_dir);
        }
        Ok(outcome)
    }
}

/// Payload copies from the same hooks observer uses: socket reads and writes, and OpenSSL's
/// SSL_read/SSL_write. bpftrace's own writes are excluded so it does not trace its output.
fn bpftrace_script() -> String {
    let mut script = String::new();
    for (syscall, buffer) in [("read", "buf"), ("recvfrom", "ubuf")] {
        script.push_str(&format!(
            "tracepoint:syscalls:sys_enter_{syscall} /comm != \"bpftrace\"/ {{ @in[tid] = args->{buffer}; }}\n\
             tracepoint:syscalls:sys_exit_{syscall} /@in[tid]/ {{ if (args->ret > 0) {{ printf(\"%r\\n\", buf(@in[tid], args->ret)); }} delete(@in[tid]); }}\n"
        ));
    }
    for (syscall, buffer, length) in [("write", "buf", "count"), ("sendto", "buff", "len")] {
        script.push_str(&format!(
            "tracepoint:syscalls:sys_enter_{syscall} /comm != \"bpftrace\"/ {{ printf(\"%r\\n\", buf(args->{buffer}, args->{length})); }}\n"
        ));
    }
    script.push_str(
        "tracepoint:syscalls:sys_enter_writev /comm != \"bpftrace\"/ { $iov = (struct iovec *)args->vec; printf(\"%r\\n\", buf($iov->iov_base, $iov->iov_len)); }\n",
    );
    script.push_str(&format!(
        "uprobe:{LIBSSL}:SSL_write {{ printf(\"%r\\n\", buf(arg1, arg2)); }}\n\
         uprobe:{LIBSSL}:SSL_read {{ @ssl[tid] = arg1; }}\n\
         uretprobe:{LIBSSL}:SSL_read /@ssl[tid]/ {{ if (retval > 0) {{ printf(\"%r\\n\", buf(@ssl[tid], retval)); }} delete(@ssl[tid]); }}\n"
    ));
    script
}

/// User plus system CPU seconds of a process so far.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces; the fields after it are fixed.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("unreadable /proc/pid/stat")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    // SAFETY: plain sysconf query.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks / per_second)
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches(" kB")
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_times_come_from_the_stats_file_most_runs_first() {
        // The shape the agent's --stats-file writes (observer-user's summary.rs).
        let outcome = Outcome {
            stats: Some(serde_json::json!({
                "programs": {
                    "syscall_exit_read": { "runs": 10, "run_time_ns": 5000 },
                    "syscall_exit_write": { "runs": 40, "run_time_ns": 8000 },
                    "process_exit": { "runs": 0, "run_time_ns": 0 },
                    "unreadable": { "runs": "many" },
                }
            })),
            ..Outcome::default()
        };
        let times = outcome.program_times();
        let names: Vec<&str> = times.iter().map(|t| t.name.as_str()).collect();
        // Not the map's (alphabetical) order: the one with more runs first.
        assert_eq!(names, ["syscall_exit_write", "syscall_exit_read"]);
        assert_eq!((times[0].runs, times[0].ns_per_run), (40, 200.0));
        assert_eq!((times[1].runs, times[1].ns_per_run), (10, 500.0));
        assert!(Outcome::default().program_times().is_empty());
    }
}
