//! Programs that speak TLS through stacks other than the system's OpenSSL, for the TLS stack
//! and coverage tests: a Go HTTPS server and client built from a few lines of standard-library
//! Go (and the client again without its symbol table), wget (GnuTLS), a pycurl client (the
//! libssl its wheel bundles), a Java client (JSSE), and `observer coverage` to read the report.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
    time::Duration,
};

use anyhow::{bail, Context};
use serde_json::Value;

use crate::{
    clients::CLIENT_TIMEOUT,
    process::{Finished, Spawned},
    programs::{observer_binary, python, require},
    servers::{Certificate, SERVER_START_TIMEOUT},
    tempdir::TempDir,
};

pub const GO: (&str, &str) = ("go", "golang-go");
pub const WGET: (&str, &str) = ("wget", "wget");
pub const JAVA: (&str, &str) = ("java", "default-jdk-headless");

/// Building one small Go program with the standard library already compiled by Debian's
/// package takes a few seconds; the first build of a run fills the build cache.
const GO_BUILD_TIMEOUT: Duration = Duration::from_secs(180);

/// Java starts a JVM and compiles the source file in memory before it runs: a few seconds.
const JAVA_TIMEOUT: Duration = Duration::from_secs(60);

/// `observer coverage` reads a small SQLite table.
const COVERAGE_TIMEOUT: Duration = Duration::from_secs(10);

const GO_SERVER: &str = include_str!("go/server.go");
const GO_CLIENT: &str = include_str!("go/client.go");
const JAVA_CLIENT: &str = include_str!("java/Client.java");
const PYCURL_CLIENT: &str = include_str!("python/pycurl_client.py");

/// The Go test programs, built once per test run.
pub struct GoPrograms {
    pub server: PathBuf,
    pub client: PathBuf,
    /// The client built with `-ldflags=-s -w`: no symbol table, no DWARF.
    pub stripped_client: PathBuf,
}

/// Build the Go programs, once per test process. They live for the whole run in a temporary
/// directory named after the test process (a static is never dropped, so it stays behind: a
/// few megabytes that never mix with another run's).
pub fn go_programs() -> anyhow::Result<&'static GoPrograms> {
    static PROGRAMS: OnceLock<Result<GoPrograms, String>> = OnceLock::new();
    PROGRAMS
        .get_or_init(|| build_go_programs().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow::anyhow!("{e}"))
}

fn build_go_programs() -> anyhow::Result<GoPrograms> {
    let go = require(GO)?;
    let dir = env::temp_dir().join(format!("observer-tests-{}-go", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for (sub, source) in [("server", GO_SERVER), ("client", GO_CLIENT)] {
        std::fs::create_dir_all(dir.join(sub))?;
        std::fs::write(dir.join(sub).join("main.go"), source)?;
    }
    std::fs::write(dir.join("go.mod"), "module observertest\n\ngo 1.19\n")?;
    let build = |package: &str, output: &str, flags: &[&str]| -> anyhow::Result<PathBuf> {
        let path = dir.join(output);
        Spawned::run(
            "go build",
            Command::new(&go)
                .current_dir(&dir)
                .env("GOCACHE", dir.join("cache"))
                .env("GOPATH", dir.join("gopath"))
                .env("GOFLAGS", "-mod=mod")
                // Standard library only: nothing to download, and nothing may be.
                .env("GOPROXY", "off")
                .env("GO111MODULE", "on")
                .arg("build")
                .args(flags)
                .arg("-o")
                .arg(&path)
                .arg(package),
            GO_BUILD_TIMEOUT,
        )?;
        Ok(path)
    };
    Ok(GoPrograms {
        server: build("./server", "go-server", &[])?,
        client: build("./client", "go-client", &[])?,
        stripped_client: build("./client", "go-client-stripped", &["-ldflags=-s -w"])?,
    })
}

/// The Go HTTPS server, answering `hello from go <path>` to every GET.
pub struct GoServer {
    process: Spawned,
    port: u16,
}

impl GoServer {
    pub fn start(certificate: &Certificate) -> anyhow::Result<GoServer> {
        let programs = go_programs()?;
        let mut process = Spawned::start(
            "go server",
            Command::new(&programs.server)
                .arg(&certificate.cert)
                .arg(&certificate.key),
        )?;
        let line = process.next_line(SERVER_START_TIMEOUT)?;
        let port = line
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("the go server said {line:?} instead of its port"))?;
        Ok(GoServer { process, port })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// Whether the server process is still running.
    pub fn running(&mut self) -> bool {
        self.process.try_status().is_none()
    }
}

/// What the body of every answer of [`GoServer`] is.
pub fn go_server_body(path: &str) -> String {
    format!("hello from go {path}\n")
}

/// A client driven line by line: one URL in, one JSON line out (`{"status":..,"body":..}`).
/// Both the Go client and the pycurl client speak this way.
pub struct LineClient {
    process: Spawned,
    pub program: PathBuf,
}

impl LineClient {
    /// The Go client (`stripped`: the one without symbols), on one keep-alive connection.
    pub fn go(stripped: bool) -> anyhow::Result<LineClient> {
        let programs = go_programs()?;
        let program = if stripped {
            programs.stripped_client.clone()
        } else {
            programs.client.clone()
        };
        Ok(LineClient {
            process: Spawned::start("go client", Command::new(&program).arg("get"))?,
            program,
        })
    }

    /// The pycurl client; returns once it has imported pycurl (and so mapped its libssl).
    pub fn pycurl() -> anyhow::Result<LineClient> {
        let python = python()?;
        let mut process = Spawned::start(
            "pycurl client",
            Command::new(&python.path).args(["-c", PYCURL_CLIENT]),
        )?;
        let line = process.next_line(SERVER_START_TIMEOUT).context(
            "the pycurl client did not start: is pycurl installed? (`cargo xtask setup` \
             installs it: pip install pycurl)",
        )?;
        if line != "READY" {
            bail!("the pycurl client said {line:?}: {}", process.describe());
        }
        Ok(LineClient {
            process,
            program: python.path,
        })
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// GET `url` and return (status, body).
    pub fn get(&mut self, url: &str) -> anyhow::Result<(u64, String)> {
        self.process.send_line(url)?;
        let line = self.process.next_line(CLIENT_TIMEOUT)?;
        let value: Value =
            serde_json::from_str(&line).with_context(|| format!("the client said {line:?}"))?;
        if let Some(error) = value.get("error").and_then(Value::as_str) {
            bail!("the client failed to GET {url}: {error}");
        }
        Ok((
            value.get("status").and_then(Value::as_u64).unwrap_or(0),
            value
                .get("body")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        ))
    }

    /// Close its input and wait for it to exit.
    pub fn finish(mut self) -> anyhow::Result<Finished> {
        self.process.close_stdin();
        self.process.wait(CLIENT_TIMEOUT)
    }
}

/// The Go client in load mode: `workers` goroutines GET `url` until [`GoLoad::finish`] (or for
/// `max_seconds` at most), then it prints how many answers were right and how many were not.
/// The stripped build: no probe lands on it, so the agent's work is on the server alone.
pub struct GoLoad {
    process: Spawned,
}

impl GoLoad {
    pub fn start(url: &str, max_seconds: u64, workers: u32) -> anyhow::Result<GoLoad> {
        let programs = go_programs()?;
        Ok(GoLoad {
            process: Spawned::start(
                "go load client",
                Command::new(&programs.stripped_client).args([
                    "load",
                    url,
                    &max_seconds.to_string(),
                    &workers.to_string(),
                ]),
            )?,
        })
    }

    /// Whether it still runs: it stops early only if it failed.
    pub fn running(&mut self) -> bool {
        self.process.try_status().is_none()
    }

    /// Stop it and return (right answers, wrong answers or errors, the first error).
    pub fn finish(mut self) -> anyhow::Result<(u64, u64, String)> {
        self.process.close_stdin();
        let finished = self.process.wait(CLIENT_TIMEOUT)?;
        let value: Value = serde_json::from_str(finished.stdout.trim())
            .with_context(|| format!("the load client said {:?}", finished))?;
        let number = |field| value.get(field).and_then(Value::as_u64).unwrap_or(0);
        let first_error = value
            .get("first_error")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        Ok((number("ok"), number("failed"), first_error))
    }
}

/// `wget` (GnuTLS) GETting `url` without checking the certificate; fails if wget does.
pub fn wget(url: &str) -> anyhow::Result<Finished> {
    let wget = require(WGET)?;
    Spawned::run(
        "wget",
        Command::new(wget).args([
            "--quiet",
            "--no-check-certificate",
            "--output-document=-",
            "--tries=1",
            url,
        ]),
        CLIENT_TIMEOUT,
    )
}

/// The Java client (JSSE) GETting `url`; returns when it exited.
pub fn java_get(url: &str) -> anyhow::Result<Finished> {
    let java = require(JAVA)?;
    let dir = TempDir::new("java")?;
    let source = dir.write("Client.java", JAVA_CLIENT)?;
    Spawned::run(
        "java client",
        Command::new(java).arg(&source).arg(url),
        JAVA_TIMEOUT,
    )
}

/// `observer coverage --format json --state-dir DIR`, parsed.
pub fn coverage_report(state_dir: &Path) -> anyhow::Result<Value> {
    let finished = Spawned::run(
        "observer coverage",
        Command::new(observer_binary()?)
            .args(["coverage", "--format", "json", "--state-dir"])
            .arg(state_dir),
        COVERAGE_TIMEOUT,
    )?;
    serde_json::from_str(&finished.stdout)
        .with_context(|| format!("observer coverage printed {:?}", finished.stdout))
}

/// The report's row for process `pid`.
pub fn process_row(report: &Value, pid: u32) -> Option<&Value> {
    report
        .get("processes")?
        .as_array()?
        .iter()
        .find(|row| row.get("pid").and_then(Value::as_u64) == Some(u64::from(pid)))
}

/// From a change to the coverage being in the state directory: the agent saves it every 2 s
/// when it changed; the rest is slack for a loaded machine.
pub const COVERAGE_WAIT: Duration = Duration::from_secs(15);

/// Poll `observer coverage` until `done` holds for the report; the error names `what` and
/// shows the last report.
pub fn wait_for_coverage(
    state_dir: &Path,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let deadline = std::time::Instant::now() + COVERAGE_WAIT;
    loop {
        let last = match coverage_report(state_dir) {
            Ok(report) if done(&report) => return Ok(report),
            Ok(report) => serde_json::to_string_pretty(&report).unwrap_or_default(),
            Err(error) => format!("{error:#}"),
        };
        if std::time::Instant::now() >= deadline {
            bail!("waited {COVERAGE_WAIT:?} for the coverage report to show {what}; the last one:\n{last}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
