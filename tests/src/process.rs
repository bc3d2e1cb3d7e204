//! Child processes the tests start: servers, clients and the agent itself.
//!
//! Each child's standard output and error are read by a thread into a line buffer that the test
//! can wait on with a deadline, so a test synchronises on what a program says ("PORT 4242",
//! "observer is watching") instead of sleeping. A [`Spawned`] is killed when dropped, so a
//! failing test leaves nothing running.

use std::{
    io::{BufRead, BufReader, Read, Write},
    process::{Child, ChildStdin, Command, ExitStatus, Stdio},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};

/// How long a killed child gets to be reaped before the test gives up on it.
const REAP_TIMEOUT: Duration = Duration::from_secs(5);

/// The lines one output stream of a child printed so far.
#[derive(Default)]
struct Lines {
    state: Mutex<LinesState>,
    changed: Condvar,
}

#[derive(Default)]
struct LinesState {
    lines: Vec<String>,
    /// The stream reached its end: the child closed it or exited.
    closed: bool,
}

impl Lines {
    fn lock(&self) -> MutexGuard<'_, LinesState> {
        // A reader thread cannot panic while holding the lock; recover anyway.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Read `stream` to its end, line by line, on a thread of its own.
    fn collect(stream: impl Read + Send + 'static) -> Arc<Lines> {
        let lines = Arc::new(Lines::default());
        let writer = lines.clone();
        thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf)
                            .trim_end_matches(['\n', '\r'])
                            .to_string();
                        writer.lock().lines.push(line);
                        writer.changed.notify_all();
                    }
                }
            }
            writer.lock().closed = true;
            writer.changed.notify_all();
        });
        lines
    }

    /// The first line at or after `from` that `wanted` accepts, with its index, waiting until
    /// `deadline`. `None` if the stream ended or the deadline passed first.
    fn wait_for(
        &self,
        from: usize,
        deadline: Instant,
        wanted: impl Fn(&str) -> bool,
    ) -> Option<(usize, String)> {
        let mut state = self.lock();
        let mut checked = from;
        loop {
            if let Some(offset) = state
                .lines
                .get(checked..)
                .and_then(|new| new.iter().position(|l| wanted(l)))
            {
                let index = checked + offset;
                return Some((index, state.lines[index].clone()));
            }
            checked = state.lines.len().max(from);
            let now = Instant::now();
            if state.closed || now >= deadline {
                return None;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    fn text(&self) -> String {
        let state = self.lock();
        let mut text = state.lines.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        text
    }
}

/// A running child process with its output captured.
pub struct Spawned {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Arc<Lines>,
    stderr: Arc<Lines>,
    /// Stdout lines already handed out by [`Spawned::next_line`].
    stdout_cursor: usize,
    status: Option<ExitStatus>,
}

/// A child that ran to its end.
#[derive(Debug)]
pub struct Finished {
    pub pid: u32,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Spawned {
    /// Start `command` with its standard streams piped. `name` is used in error messages.
    pub fn start(name: &str, command: &mut Command) -> anyhow::Result<Spawned> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {name}: {command:?}"))?;
        let stdout = Lines::collect(child.stdout.take().context("child stdout is piped")?);
        let stderr = Lines::collect(child.stderr.take().context("child stderr is piped")?);
        Ok(Spawned {
            name: name.to_string(),
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr,
            stdout_cursor: 0,
            status: None,
        })
    }

    /// Start `command`, close its input and wait for it to end; fail if it does not end
    /// within `timeout` (it is killed) or exits with an error.
    pub fn run(name: &str, command: &mut Command, timeout: Duration) -> anyhow::Result<Finished> {
        let mut process = Spawned::start(name, command)?;
        process.close_stdin();
        let finished = process.wait(timeout)?;
        if !finished.status.success() {
            bail!(
                "{name} failed ({}): {command:?}\nstdout:\n{}stderr:\n{}",
                finished.status,
                finished.stdout,
                finished.stderr
            );
        }
        Ok(finished)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send one line to the child's standard input.
    pub fn send_line(&mut self, line: &str) -> anyhow::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .with_context(|| format!("{}: standard input already closed", self.name))?;
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .with_context(|| format!("cannot write to {}", self.describe()))
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The next line the child prints on standard output, waiting at most `timeout`.
    pub fn next_line(&mut self, timeout: Duration) -> anyhow::Result<String> {
        match self
            .stdout
            .wait_for(self.stdout_cursor, Instant::now() + timeout, |_| true)
        {
            Some((index, line)) => {
                self.stdout_cursor = index + 1;
                Ok(line)
            }
            None => bail!("no line within {timeout:?} from {}", self.describe()),
        }
    }

    /// Wait at most `timeout` for a line on standard error containing `needle`. False if the
    /// child closed its standard error (it exited) or the time passed first.
    pub fn wait_for_stderr(&self, needle: &str, timeout: Duration) -> bool {
        self.stderr
            .wait_for(0, Instant::now() + timeout, |line| line.contains(needle))
            .is_some()
    }

    pub fn stdout_text(&self) -> String {
        self.stdout.text()
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.text()
    }

    /// The exit status, if the child has ended.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Send a signal by name (`INT`, `TERM`, `KILL`) with kill(1): std has no way to signal.
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args(["-s", signal, &self.pid().to_string()])
            .status()
            .context("cannot run kill(1) (Debian package procps)")?;
        if !status.success() {
            bail!(
                "kill -s {signal} {} ({}) failed: {status}",
                self.pid(),
                self.name
            );
        }
        Ok(())
    }

    /// Wait for the child to end, at most `timeout`; past that it is killed and this fails.
    pub fn wait(&mut self, timeout: Duration) -> anyhow::Result<Finished> {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.try_status() {
                break status;
            }
            if Instant::now() >= deadline {
                let description = self.describe();
                self.kill();
                bail!("did not end within {timeout:?} (so it was killed): {description}");
            }
            thread::sleep(Duration::from_millis(10));
        };
        // The streams close when the child exits; wait for the readers to see their ends.
        let streams_deadline = Instant::now() + REAP_TIMEOUT;
        self.stdout
            .wait_for(usize::MAX, streams_deadline, |_| false);
        self.stderr
            .wait_for(usize::MAX, streams_deadline, |_| false);
        Ok(Finished {
            pid: self.pid(),
            status,
            stdout: self.stdout_text(),
            stderr: self.stderr_text(),
        })
    }

    /// Whether it still runs, and what it printed: for error messages.
    pub fn describe(&mut self) -> String {
        let state = match self.try_status() {
            Some(status) => format!("it exited ({status})"),
            None => "it is still running".to_string(),
        };
        format!(
            "{} (pid {}) {state}\nstdout:\n{}stderr:\n{}",
            self.name,
            self.pid(),
            self.stdout_text(),
            self.stderr_text()
        )
    }

    fn kill(&mut self) {
        if self.try_status().is_some() {
            return;
        }
        let _ = self.child.kill();
        let deadline = Instant::now() + REAP_TIMEOUT;
        while self.try_status().is_none() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.kill();
    }
}
