//! The inventory survives the agent being killed: run the real agent with a state directory
//! while a real server (Flask) answers calls, `kill -9` it mid-traffic, and check that the
//! inventory on disk holds every call made up to one flush interval (plus the agent's polling
//! delay) before the kill, and none that were never made. Then restart it on the same state
//! directory, make more calls, stop it cleanly, and check that the counts carried on.

use std::{
    env, fs,
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc, Arc, Mutex,
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context, Result};
use observer_tests::programs::observer_binary;
use serde_json::Value;

/// The agent's flush interval (`inventory::FLUSH_INTERVAL_NS`).
const FLUSH_INTERVAL: Duration = Duration::from_secs(2);

/// Time for a completed call to reach the inventory: the agent polls the ring buffer every
/// 20 ms and is woken in batches; a second covers that many times over on a loaded machine.
const PROCESSING_SLACK: Duration = Duration::from_secs(1);

/// Traffic before the kill: several flush intervals, so several flushes happened.
const TRAFFIC_BEFORE_KILL: Duration = Duration::from_secs(7);

/// Calls made after the restart.
const CALLS_AFTER_RESTART: usize = 20;

const START_TIMEOUT: Duration = Duration::from_secs(60);

const ROUTE: &str = "/api/v1/books/{id}";

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start the agent on `state` watching `port`, and wait until it is capturing.
fn start_agent(state: &Path, port: u16, output: &Path) -> Result<Running> {
    let mut agent = Running(
        Command::new(observer_binary()?)
            .args(["run", "--port", &port.to_string(), "--state-dir"])
            .arg(state)
            .arg("--output")
            .arg(output)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start the agent")?,
    );
    let stderr = agent.0.stderr.take().context("agent stderr")?;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("agent: {line}");
            if line.contains("observer is watching") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(START_TIMEOUT)
        .context("the agent did not start capturing")?;
    Ok(agent)
}

/// One call to the server; returns when the whole response has arrived.
fn call(port: u16, id: usize) -> Result<()> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    write!(
        stream,
        "GET /api/v1/books/{id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    // Werkzeug's server answers single-threaded as HTTP/1.0.
    ensure!(
        response.starts_with(b"HTTP/1.") && response.get(8..13) == Some(b" 200 "),
        "unexpected response: {}",
        String::from_utf8_lossy(&response[..response.len().min(80)])
    );
    Ok(())
}

/// Calls recorded for the route in the inventory on disk.
fn inventory_calls(state: &Path, port: u16) -> Result<u64> {
    let output = Command::new(observer_binary()?)
        .args(["inventory", "--format", "json", "--state-dir"])
        .arg(state)
        .output()?;
    ensure!(
        output.status.success(),
        "observer inventory failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let inventory: Value = serde_json::from_slice(&output.stdout)?;
    let service = inventory["services"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["port"] == port && s["kind"] == "local")
        .with_context(|| format!("no service on port {port}: {inventory:#}"))?;
    let endpoint = service["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["method"] == "GET" && e["route"] == ROUTE)
        .with_context(|| format!("no GET {ROUTE}: {service:#}"))?;
    endpoint["calls"].as_u64().context("calls")
}

#[test]
fn the_inventory_survives_kill_9_losing_at_most_one_flush_interval() -> Result<()> {
    let dir = env::temp_dir().join(format!("observer-inventory-restart-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    let state = dir.join("state");
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();

    let app = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../observer-user/tests/fixtures/inventory/apps/flask_bookstore.py");
    let mut server = Running(
        Command::new("python3")
            .arg(app)
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let deadline = Instant::now() + START_TIMEOUT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if server.0.try_wait()?.is_some() || Instant::now() > deadline {
            bail!("the Flask app did not start");
        }
        thread::sleep(Duration::from_millis(100));
    }

    let mut agent = start_agent(&state, port, &dir.join("calls-1.jsonl"))?;

    // Traffic in the background, each completed call timestamped.
    let done: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let (done, stop) = (done.clone(), stop.clone());
        thread::spawn(move || -> Result<()> {
            let mut id = 1;
            while !stop.load(Ordering::Relaxed) {
                call(port, id % 150 + 1)?;
                done.lock()
                    .map_err(|_| anyhow::anyhow!("poisoned"))?
                    .push(Instant::now());
                id += 1;
                thread::sleep(Duration::from_millis(5));
            }
            Ok(())
        })
    };
    thread::sleep(TRAFFIC_BEFORE_KILL);
    // kill -9, mid-traffic.
    agent.0.kill()?;
    let killed = Instant::now();
    agent.0.wait()?;
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    traffic
        .join()
        .map_err(|_| anyhow::anyhow!("traffic thread panicked"))??;

    let times = done
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    let made_before_kill = times.iter().filter(|t| **t <= killed).count() as u64;
    let must_have = times
        .iter()
        .filter(|t| **t + FLUSH_INTERVAL + PROCESSING_SLACK <= killed)
        .count() as u64;
    let persisted = inventory_calls(&state, port)?;
    println!(
        "after kill -9: {persisted} calls in the inventory; {made_before_kill} made before the kill, \
         {must_have} of them more than one flush interval (+{PROCESSING_SLACK:?}) before it"
    );
    ensure!(
        persisted >= must_have,
        "the inventory lost more than one flush interval: {persisted} < {must_have}"
    );
    ensure!(
        persisted <= made_before_kill,
        "the inventory counts calls that were never made: {persisted} > {made_before_kill}"
    );
    ensure!(
        must_have > 50,
        "too little traffic to tell: {must_have} calls"
    );

    // Restart on the same state directory: the counts carry on.
    let agent = start_agent(&state, port, &dir.join("calls-2.jsonl"))?;
    for id in 0..CALLS_AFTER_RESTART {
        call(port, id + 1)?;
    }
    // Let the agent read the last events, then stop it cleanly (it flushes on the way out).
    thread::sleep(Duration::from_millis(500));
    let status = Command::new("kill")
        .args(["-INT", &agent.0.id().to_string()])
        .status()?;
    ensure!(status.success(), "kill -INT failed");
    let mut agent = agent;
    let deadline = Instant::now() + Duration::from_secs(30);
    while agent.0.try_wait()?.is_none() {
        ensure!(
            Instant::now() < deadline,
            "the agent did not stop on SIGINT"
        );
        thread::sleep(Duration::from_millis(100));
    }
    let after = inventory_calls(&state, port)?;
    println!("after a restart and {CALLS_AFTER_RESTART} more calls: {after}");
    ensure!(
        after == persisted + CALLS_AFTER_RESTART as u64,
        "expected {persisted} + {CALLS_AFTER_RESTART} calls after the restart, found {after}"
    );
    drop(server);
    let _ = fs::remove_dir_all(dir);
    Ok(())
}
