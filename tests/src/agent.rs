//! The agent under test: `observer run` as a child process writing JSON to a file.
//!
//! [`Agent::start`] returns once the agent says it is watching, so traffic made afterwards is
//! seen; [`Agent::wait_for`] polls the output file until the expected calls are there (and
//! [`Agent::wait_until_events`] until findings are);
//! [`Agent::stop`] sends SIGINT, as Ctrl-C does, and returns every call, the summary and the
//! counters the agent wrote to its `--stats-file`.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    sync::{Mutex, MutexGuard},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};

use crate::{
    calls::{self, parse_calls, parse_events, Call, Expect},
    process::Spawned,
    programs::{observer_binary, require_root},
    tempdir::TempDir,
};

/// What the agent logs once every probe is attached.
pub const READY_MESSAGE: &str = "observer is watching";

/// From start to READY_MESSAGE: loading ~30 programs and scanning every process's mappings for
/// OpenSSL takes a second or two on a small VM; this leaves room for a loaded CI machine.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);

/// From the last byte of a response to its call in the output file: the agent polls the ring
/// buffer every 20 ms and writes each call at once, so this is slack for a loaded machine.
pub const CALLS_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the output file is read while waiting for calls.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// From SIGINT to exit: detaching ~70 programs and probes and draining the ring buffer.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// What the agent says when another agent holds the host-wide lock.
pub const ALREADY_RUNNING: &str = "already running";

/// How long to wait for an agent this suite did not start (a developer's, on a shared
/// machine) to release the lock before failing. CI machines run none.
const FOREIGN_AGENT_TIMEOUT: Duration = Duration::from_secs(30);
const FOREIGN_AGENT_RETRY: Duration = Duration::from_millis(500);

/// What the agent prints on standard error when it stops.
const SUMMARY_HEADING: &str = "observer summary";

/// One agent at a time: the agent takes a host-wide lock, so a second would fail. Tests in one
/// binary run one after another (`--test-threads=1`); this makes that hold even without the flag.
static ONE_AGENT: Mutex<()> = Mutex::new(());

pub struct Agent {
    process: Spawned,
    output: PathBuf,
    stats: PathBuf,
    _dir: TempDir,
    _turn: MutexGuard<'static, ()>,
}

/// What a stopped agent reported.
#[derive(Debug)]
pub struct Stopped {
    pub pid: u32,
    pub calls: Vec<Call>,
    /// Everything on standard error: the log and the summary.
    pub stderr: String,
    /// What the agent counted, as its `--stats-file` holds it.
    pub stats: serde_json::Value,
}

impl Agent {
    /// Start `observer run --format json --output <file> --stats-file <file> <args>` and wait
    /// until it watches; with a state directory of its own unless `args` name one.
    pub fn start(args: &[&str]) -> anyhow::Result<Agent> {
        require_root()?;
        let turn = ONE_AGENT
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let dir = TempDir::new("agent")?;
        let output = dir.join("calls.jsonl");
        let stats = dir.join("stats.json");
        let lock_deadline = Instant::now() + FOREIGN_AGENT_TIMEOUT;
        loop {
            let mut command = command()?;
            command
                .args(["run", "--format", "json", "--output"])
                .arg(&output)
                .arg("--stats-file")
                .arg(&stats)
                .args(args);
            if !args.contains(&"--state-dir") {
                // Tests stay apart from the host's inventory (and from each other's).
                command.arg("--state-dir").arg(dir.join("state"));
            }
            let mut process = Spawned::start("observer run", &mut command)?;
            if process.wait_for_stderr(READY_MESSAGE, START_TIMEOUT) {
                return Ok(Agent {
                    process,
                    output,
                    stats,
                    _dir: dir,
                    _turn: turn,
                });
            }
            // The refusal is the agent's last word; it may not be reaped yet (dropping the
            // process reaps it).
            let refused = process.stderr_text().contains(ALREADY_RUNNING);
            if refused && Instant::now() < lock_deadline {
                // Not one of ours (those are stopped before the next starts): someone else's
                // agent on a shared machine. Wait for it rather than fail.
                thread::sleep(FOREIGN_AGENT_RETRY);
                continue;
            }
            bail!(
                "the agent did not say {READY_MESSAGE:?} within {START_TIMEOUT:?} (args {args:?}); {}",
                process.describe()
            );
        }
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Wait at most `timeout` for a line of the agent's log (its standard error) containing
    /// `needle`: what it says when it attached probes to a program the test started.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        self.process.wait_for_stderr(needle, timeout)
    }

    /// Everything the agent logged so far.
    pub fn log(&self) -> String {
        self.process.stderr_text()
    }

    /// Stop the agent's process (SIGSTOP): its programs keep running in the kernel, but nothing
    /// reads the ring buffer until [`Agent::resume`].
    pub fn pause(&self) -> anyhow::Result<()> {
        self.process.signal("STOP")
    }

    pub fn resume(&self) -> anyhow::Result<()> {
        self.process.signal("CONT")
    }

    /// Calls written so far.
    pub fn calls(&self) -> anyhow::Result<Vec<Call>> {
        read_calls(&self.output)
    }

    /// Wait until every expectation matches some call; return the calls seen by then. The
    /// error says which expectation is unmet and lists every call.
    pub fn wait_for(&mut self, expected: &[&Expect]) -> anyhow::Result<Vec<Call>> {
        let unmet = |calls: &[Call]| expected.iter().position(|e| e.find_all(calls).is_empty());
        match self.poll(read_calls, |calls| unmet(calls).is_none())? {
            Ok(calls) => Ok(calls),
            Err(calls) => {
                let first_unmet = unmet(&calls).unwrap_or(0);
                let error = expected[first_unmet].find(&calls).expect_err("unmet");
                let summary = self.stop_for_diagnosis();
                Err(error.context(format!(
                    "after waiting {CALLS_TIMEOUT:?} for the agent to report it\n{summary}"
                )))
            }
        }
    }

    /// Wait until `done` holds for the calls written so far; `what` says what was awaited.
    pub fn wait_until(
        &mut self,
        what: &str,
        done: impl Fn(&[Call]) -> bool,
    ) -> anyhow::Result<Vec<Call>> {
        self.wait_until_in(read_calls, what, done)
    }

    /// Wait until `done` holds for everything written so far, whatever its `event.name`:
    /// calls, findings, inventory changes.
    pub fn wait_until_events(
        &mut self,
        what: &str,
        done: impl Fn(&[Call]) -> bool,
    ) -> anyhow::Result<Vec<Call>> {
        self.wait_until_in(read_events, what, done)
    }

    fn wait_until_in(
        &mut self,
        read: fn(&Path) -> anyhow::Result<Vec<Call>>,
        what: &str,
        done: impl Fn(&[Call]) -> bool,
    ) -> anyhow::Result<Vec<Call>> {
        match self.poll(read, done)? {
            Ok(calls) => Ok(calls),
            Err(calls) => bail!(
                "waited {CALLS_TIMEOUT:?} for {what}; the {} events seen:\n{}{}",
                calls.len(),
                calls::list(&calls),
                self.stop_for_diagnosis()
            ),
        }
    }

    /// `Ok(events)` once `done` holds for what `read` reads, `Err(events)` if the time ran out
    /// first; an error if the agent died or wrote something that is not JSON.
    fn poll(
        &mut self,
        read: fn(&Path) -> anyhow::Result<Vec<Call>>,
        done: impl Fn(&[Call]) -> bool,
    ) -> anyhow::Result<Result<Vec<Call>, Vec<Call>>> {
        let deadline = Instant::now() + CALLS_TIMEOUT;
        loop {
            let calls = read(&self.output)?;
            if done(&calls) {
                return Ok(Ok(calls));
            }
            if self.process.try_status().is_some() {
                bail!(
                    "the agent exited while calls were awaited; {}",
                    self.process.describe()
                );
            }
            if Instant::now() >= deadline {
                return Ok(Err(calls));
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Stop the agent after a failed wait and return its log and summary: what it received,
    /// lost and left out by filters tells where an expected call went.
    fn stop_for_diagnosis(&mut self) -> String {
        if self.process.try_status().is_none() && self.process.signal("INT").is_ok() {
            let _ = self.process.wait(STOP_TIMEOUT);
        }
        format!(
            "the agent's log and summary:\n{}",
            self.process.stderr_text()
        )
    }

    /// Ctrl-C: SIGINT, then wait for a clean exit with its summary.
    pub fn stop(mut self) -> anyhow::Result<Stopped> {
        let pid = self.pid();
        if self.process.try_status().is_some() {
            bail!(
                "the agent exited before it was stopped; {}",
                self.process.describe()
            );
        }
        self.process.signal("INT")?;
        let finished = self
            .process
            .wait(STOP_TIMEOUT)
            .context("stopping the agent with SIGINT")?;
        if !finished.status.success() {
            bail!(
                "the agent exited with {} after SIGINT; stderr:\n{}",
                finished.status,
                finished.stderr
            );
        }
        if !finished.stderr.contains(SUMMARY_HEADING) {
            bail!(
                "the agent printed no summary ({SUMMARY_HEADING:?}) after SIGINT; stderr:\n{}",
                finished.stderr
            );
        }
        let calls = read_calls(&self.output)?;
        let stats = fs::read_to_string(&self.stats)
            .with_context(|| format!("cannot read the agent's stats {}", self.stats.display()))?;
        Ok(Stopped {
            pid,
            calls,
            stderr: finished.stderr,
            stats: serde_json::from_str(&stats)
                .with_context(|| format!("the agent's stats are not JSON: {stats}"))?,
        })
    }
}

impl Drop for Agent {
    /// A test that failed midway still stops its agent the way a user would, so the next test
    /// finds the lock free and no probes behind. (Spawned's own drop kills it if this fails.)
    fn drop(&mut self) {
        if self.process.try_status().is_none() && self.process.signal("INT").is_ok() {
            let _ = self.process.wait(STOP_TIMEOUT);
        }
    }
}

/// A counter of the stats the agent wrote, 0 when it is absent (counters that stayed at zero
/// may be left out).
pub fn count(value: &serde_json::Value) -> u64 {
    value.as_u64().unwrap_or(0)
}

/// `observer` with a readable log: no colours in the captured standard error.
pub fn command() -> anyhow::Result<Command> {
    let mut command = Command::new(observer_binary()?);
    command.env("NO_COLOR", "1").env_remove("OBSERVER_LOG");
    Ok(command)
}

fn read_calls(path: &Path) -> anyhow::Result<Vec<Call>> {
    read_output(path, parse_calls)
}

fn read_events(path: &Path) -> anyhow::Result<Vec<Call>> {
    read_output(path, parse_events)
}

fn read_output(
    path: &Path,
    parse: fn(&str) -> anyhow::Result<Vec<Call>>,
) -> anyhow::Result<Vec<Call>> {
    match fs::read_to_string(path) {
        Ok(text) => {
            parse(&text).with_context(|| format!("reading the agent's output {}", path.display()))
        }
        // The agent creates the file while it starts.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(error) => {
            Err(error).with_context(|| format!("cannot read the agent's output {}", path.display()))
        }
    }
}
