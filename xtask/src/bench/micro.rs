//! The cost of one event: tight loops timed with and without the agent, and the kernel's own
//! run time per program (`kernel.bpf_stats_enabled`), so a regression shows as nanoseconds.

use std::{
    fs,
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::Path,
    process::Command,
    thread,
    time::Instant,
};

use anyhow::{Context as _, Result};

use super::{
    observers::{self, ObserverKind, ProgramTime},
    OBSERVER_CPU, SERVER_CPU,
};
use crate::cmd;

/// Iterations of the syscall loop: long enough that a 100 ns difference is far above the timer.
const SYSCALL_ITERATIONS: u32 = 100_000;
/// Iterations of the TLS loop (Python drives it, so each is slower).
const TLS_ITERATIONS: u32 = 25_000;
/// Rounds of the loops, each timed without an agent and then with one of its own. The cost is
/// taken within each round and the median of the rounds reported: this VM's speed drifts by
/// more than the cost measured within a minute, and timing every baseline loop before every
/// observed one once printed "-910 ns" (the fastest of three runs each; a single run had given
/// "-328 ns"). An outlier round, another process taking the CPU during one loop, is outvoted.
const ROUNDS: usize = 5;

/// Runs of each loop per round, of which the fastest counts: another process taking the CPU
/// only ever slows a run down.
const RUNS_PER_LOOP: usize = 2;
/// A request-sized message: what the kernel side ships.
const HTTP_MESSAGE: &[u8] = b"POST /api/v1/items HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\":1,\"name\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}";
/// The same size, but not HTTP: the kernel side looks once and then ignores the connection.
const OTHER_MESSAGE: &[u8] = &[b'#'; 196];

const BPF_STATS_SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

#[derive(Debug, Default)]
pub struct Micro {
    /// Added time per syscall event on an HTTP connection (its bytes are shipped).
    pub syscall_http_ns: Rounds,
    /// Added time per syscall event on a connection the kernel side ignores.
    pub syscall_other_ns: Rounds,
    /// Added time per TLS call (SSL_write or SSL_read, with the syscall underneath).
    pub tls_call_ns: Rounds,
    /// Kernel run time per run of each program that ran, most runs first.
    pub programs: Vec<ProgramTime>,
}

/// One figure as each round measured it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Rounds(pub Vec<f64>);

impl Rounds {
    pub fn median(&self) -> f64 {
        super::report::median(&self.0)
    }
}

/// Nanoseconds per iteration of each loop.
#[derive(Debug, Clone, Copy)]
struct LoopTimes {
    http: f64,
    other: f64,
    tls: f64,
}

impl LoopTimes {
    fn measure(cpu: Option<usize>) -> Result<LoopTimes> {
        Ok(LoopTimes {
            http: fastest(|| syscall_loop(HTTP_MESSAGE, cpu))?,
            other: fastest(|| syscall_loop(OTHER_MESSAGE, cpu))?,
            tls: fastest(|| tls_loop(cpu))?,
        })
    }
}

/// The fastest of [`RUNS_PER_LOOP`] runs of a timed loop.
fn fastest(mut run: impl FnMut() -> Result<f64>) -> Result<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..RUNS_PER_LOOP {
        best = best.min(run()?);
    }
    Ok(best)
}

pub fn measure(agent: &Path, pinned: bool) -> Result<Micro> {
    eprintln!("bench: cost per event");
    let loop_cpu = pinned.then_some(SERVER_CPU);
    // Any port: the loops' own traffic is what the kernel side works on; the port filter only
    // trims what the agent prints.
    let start_agent = || {
        observers::start(
            ObserverKind::Agent,
            agent,
            1,
            pinned.then_some(OBSERVER_CPU),
        )
    };
    let mut micro = Micro::default();
    for _ in 0..ROUNDS {
        let base = LoopTimes::measure(loop_cpu)?;
        let observer = start_agent()?;
        let observed = LoopTimes::measure(loop_cpu);
        observer.stop()?;
        let observed = observed?;
        // Each syscall iteration is one write and one read: two events. Each TLS iteration is
        // one SSL_write and at least one SSL_read.
        micro
            .syscall_http_ns
            .0
            .push((observed.http - base.http) / 2.0);
        micro
            .syscall_other_ns
            .0
            .push((observed.other - base.other) / 2.0);
        micro.tls_call_ns.0.push((observed.tls - base.tls) / 2.0);
    }
    // The kernel's run time per program in a pass of its own: counting it costs every run two
    // clock reads, which the timed rounds must not pay (agents run without it).
    micro.programs = with_bpf_stats(|| {
        let observer = start_agent()?;
        let ran = syscall_loop(HTTP_MESSAGE, loop_cpu)
            .and_then(|_| syscall_loop(OTHER_MESSAGE, loop_cpu))
            .and_then(|_| tls_loop(loop_cpu));
        let outcome = observer.stop()?;
        ran?;
        Ok(outcome.program_times())
    })?;
    Ok(micro)
}

/// Run `measure` with the kernel counting each BPF program's run time, restoring the setting
/// after (counting costs every program two clock reads).
pub fn with_bpf_stats<T>(measure: impl FnOnce() -> Result<T>) -> Result<T> {
    let previous = fs::read_to_string(BPF_STATS_SYSCTL).unwrap_or_else(|_| "0".into());
    fs::write(BPF_STATS_SYSCTL, "1").context("enabling kernel.bpf_stats_enabled")?;
    let result = measure();
    let _ = fs::write(BPF_STATS_SYSCTL, previous.trim());
    result
}

/// Nanoseconds per iteration of: write `message` on a loopback TCP connection, read it back;
/// on its own thread, pinned to `cpu` when given.
fn syscall_loop(message: &'static [u8], cpu: Option<usize>) -> Result<f64> {
    thread::scope(|scope| {
        scope
            .spawn(|| {
                if let Some(cpu) = cpu {
                    pin_this_thread(cpu);
                }
                time_syscall_loop(message)
            })
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the syscall loop panicked")))
    })
}

fn time_syscall_loop(message: &[u8]) -> Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let mut client = TcpStream::connect(listener.local_addr()?)?;
    let (mut server, _) = listener.accept()?;
    client.set_nodelay(true)?;
    let mut buffer = vec![0u8; message.len()];
    let started = Instant::now();
    for _ in 0..SYSCALL_ITERATIONS {
        client.write_all(message)?;
        server.read_exact(&mut buffer)?;
    }
    Ok(started.elapsed().as_nanos() as f64 / f64::from(SYSCALL_ITERATIONS))
}

/// Nanoseconds per iteration of a TLS 1.3 write and read through OpenSSL, driven by Python's
/// ssl module (SSL_write_ex/SSL_read_ex).
fn tls_loop(cpu: Option<usize>) -> Result<f64> {
    let dir = std::env::temp_dir().join(format!("observer-bench-tls-{}", std::process::id()));
    fs::create_dir_all(&dir)?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    cmd::stdout_of(
        Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "1",
            ])
            .args(["-subj", "/CN=localhost", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert),
    )?;
    let script = dir.join("tls_loop.py");
    fs::write(&script, TLS_LOOP)?;
    let mut command = super::load::pinned(cpu, "python3");
    command
        .arg(&script)
        .arg(TLS_ITERATIONS.to_string())
        .arg(&cert)
        .arg(&key);
    let output = cmd::stdout_of(&mut command).context("running the TLS loop (python3)");
    let _ = fs::remove_dir_all(&dir);
    output?
        .trim()
        .parse::<f64>()
        .context("the TLS loop printed no number")
}

/// The handshake needs both ends at once, so the server's runs on a thread; the loop then runs
/// both ends on one thread (the message fits the socket's buffer), as the syscall loop does: a
/// reader thread made every iteration two handoffs of Python's lock, whose timing swung the
/// loop by more than the cost measured.
const TLS_LOOP: &str = r#"
import socket, ssl, sys, threading, time
n, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
payload = b"POST /api/v1/items HTTP/1.1\r\nHost: bench\r\nContent-Length: 100\r\n\r\n" + b"x" * 100
server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
server_ctx.load_cert_chain(cert, key)
client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
client_ctx.check_hostname = False
client_ctx.verify_mode = ssl.CERT_NONE
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)
server = []
def accept():
    conn, _ = listener.accept()
    server.append(server_ctx.wrap_socket(conn, server_side=True))
thread = threading.Thread(target=accept)
thread.start()
client = client_ctx.wrap_socket(socket.create_connection(listener.getsockname()))
thread.join()
server = server[0]
start = time.perf_counter_ns()
for _ in range(n):
    client.sendall(payload)
    got = 0
    while got < len(payload):
        got += len(server.recv(len(payload) - got))
print((time.perf_counter_ns() - start) / n)
"#;

pub fn pin_this_thread(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t with one CPU set, for the calling thread only.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_round_is_reported() {
        // One round disturbed by another process: the median ignores it where a mean would not.
        assert_eq!(Rounds(vec![120.0, 2_000.0, 100.0]).median(), 120.0);
        assert_eq!(Rounds(vec![-50.0, 100.0, 300.0, 200.0]).median(), 150.0);
        assert!(Rounds::default().median().is_nan());
    }
}
