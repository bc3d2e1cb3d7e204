//! TLS stacks other than the system's OpenSSL, and the coverage report: Go's crypto/tls (client
//! and server), GnuTLS (wget), the OpenSSL a Python wheel bundles (pycurl), and clients no probe
//! can read (a stripped Go binary, Java's JSSE), which must be reported dark with the right
//! reason while their connections still count as encrypted traffic.

use std::time::Duration;

use anyhow::{ensure, Context};
use observer_tests::{
    calls, python,
    tempdir::TempDir,
    tls_stacks::{
        go_server_body, java_get, process_row, wait_for_coverage, wget, GoLoad, GoServer,
        LineClient,
    },
    Agent, Certificate, Expect, PythonServer, Site,
};
use serde_json::Value;

/// From a program's start to the agent's "TLS probes attached" for it: the agent looks at a
/// process when it execs, and again 0.1 s and 1 s later (libraries loaded at import time).
const ATTACH_TIMEOUT: Duration = Duration::from_secs(10);

const HELLO: &str = "hello over TLS\n";

fn u64_of(row: &Value, field: &str) -> u64 {
    row.get(field).and_then(Value::as_u64).unwrap_or(0)
}

fn str_of<'a>(row: &'a Value, field: &str) -> &'a str {
    row.get(field).and_then(Value::as_str).unwrap_or("")
}

/// Whether the row lists `library` with its probes attached.
fn attached(row: &Value, library: &str) -> bool {
    row.get("libraries")
        .and_then(Value::as_array)
        .is_some_and(|libraries| {
            libraries.iter().any(|l| {
                str_of(l, "library") == library && l.get("attached") == Some(&Value::Bool(true))
            })
        })
}

fn decrypted_calls(row: &Value, library: &str) -> u64 {
    row.get("decrypted_calls_by_library")
        .and_then(|by| by.get(library))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

fn file_name(path: &std::path::Path) -> anyhow::Result<String> {
    Ok(path
        .file_name()
        .and_then(|n| n.to_str())
        .context("program path has a file name")?
        .to_string())
}

/// An agent watching `port` that keeps its coverage in a state directory of its own.
fn agent_with_state_dir(port: u16) -> anyhow::Result<(Agent, TempDir)> {
    let state = TempDir::new("state")?;
    let agent = Agent::start(&[
        "--port",
        &port.to_string(),
        "--state-dir",
        &state.path().display().to_string(),
    ])?;
    Ok((agent, state))
}

#[test]
fn go_client_and_server_are_seen_through_crypto_tls() -> anyhow::Result<()> {
    let certificate = Certificate::self_signed()?;
    let server = GoServer::start(&certificate)?;
    let (mut agent, state) = agent_with_state_dir(server.port())?;

    let mut client = LineClient::go(false)?;
    let client_name = file_name(&client.program)?;
    ensure!(
        agent.wait_for_log(&client.program.display().to_string(), ATTACH_TIMEOUT)
            && agent.log().contains("TLS probes attached"),
        "the agent did not attach to the Go client; its log:\n{}",
        agent.log()
    );
    // Two requests on one keep-alive connection.
    for path in ["/first", "/second"] {
        let (status, body) = client.get(&server.url(path))?;
        ensure!(
            status == 200 && body == go_server_body(path),
            "GET {path}: {status} {body:?}"
        );
    }
    let client_pid = client.pid();

    let mut expected = Vec::new();
    for path in ["/first", "/second"] {
        expected.push(
            Expect::client()
                .get(path, 200)
                .process(&client_name, client_pid)
                .tls("go")
                .body_prefix(&go_server_body(path))
                .server_port(server.port()),
        );
        expected.push(
            Expect::server()
                .get(path, 200)
                .process("go-server", server.pid())
                .tls("go")
                .body_prefix(&go_server_body(path))
                .server_port(server.port()),
        );
    }
    agent.wait_for(&expected.iter().collect::<Vec<_>>())?;

    let report = wait_for_coverage(state.path(), "both Go processes decrypted", |report| {
        [client_pid, server.pid()].iter().all(|&pid| {
            process_row(report, pid).is_some_and(|row| {
                str_of(row, "status") == "decrypted"
                    && attached(row, "go")
                    && decrypted_calls(row, "go") >= 2
            })
        })
    })?;
    let row = process_row(&report, client_pid).context("client row")?;
    ensure!(
        str_of(row, "executable").ends_with(&client_name)
            && row.get("speaks_tls") == Some(&Value::Bool(true)),
        "the coverage row should name the Go client's executable: {row}"
    );
    client.finish()?;
    let stopped = agent.stop()?;
    let ours = stopped
        .calls
        .iter()
        .filter(|c| c.server_port() == Some(u64::from(server.port())))
        .count();
    ensure!(
        ours == 4,
        "expected one call per side for each of two requests; all calls:\n{}",
        calls::list(&stopped.calls)
    );
    Ok(())
}

#[test]
fn wget_is_seen_through_gnutls() -> anyhow::Result<()> {
    let python = python()?;
    let certificate = Certificate::self_signed()?;
    let server = PythonServer::start_tls(Site::new()?.file("hello.txt", HELLO)?, &certificate)?;
    let (mut agent, state) = agent_with_state_dir(server.port())?;
    // wget is short-lived: the system's libgnutls is attached when the agent starts.
    ensure!(
        agent.log().contains("library=\"gnutls\""),
        "the agent should attach to the system's GnuTLS at start; its log:\n{}",
        agent.log()
    );
    let client = wget(&server.https_url("/hello.txt"))?;
    ensure!(client.stdout == HELLO, "wget got {:?}", client.stdout);

    let client_side = Expect::client()
        .get("/hello.txt", 200)
        .process("wget", client.pid)
        .tls("gnutls")
        .body_prefix(HELLO)
        .server_port(server.port());
    let server_side = Expect::server()
        .get("/hello.txt", 200)
        .process(&python.executable_name, server.pid())
        .tls("openssl")
        .body_prefix(HELLO);
    agent.wait_for(&[&client_side, &server_side])?;
    wait_for_coverage(state.path(), "wget decrypted through GnuTLS", |report| {
        process_row(report, client.pid).is_some_and(|row| {
            str_of(row, "status") == "decrypted"
                && decrypted_calls(row, "gnutls") == 1
                && attached(row, "gnutls")
        })
    })?;
    agent.stop()?;
    Ok(())
}

#[test]
fn pycurl_is_seen_through_the_libssl_its_wheel_bundles() -> anyhow::Result<()> {
    let python = python()?;
    let certificate = Certificate::self_signed()?;
    let server = GoServer::start(&certificate)?;
    let (mut agent, state) = agent_with_state_dir(server.port())?;
    let mut client = LineClient::pycurl()?;
    ensure!(
        agent.wait_for_log("pycurl.libs/libssl", ATTACH_TIMEOUT),
        "the agent did not find the libssl pycurl bundles; its log:\n{}",
        agent.log()
    );
    let (status, body) = client.get(&server.url("/wheel"))?;
    ensure!(
        status == 200 && body == go_server_body("/wheel"),
        "{status} {body:?}"
    );
    let client_pid = client.pid();
    let client_side = Expect::client()
        .get("/wheel", 200)
        .process(&python.executable_name, client_pid)
        .tls("openssl")
        .body_prefix(&go_server_body("/wheel"))
        .server_port(server.port());
    agent.wait_for(&[&client_side])?;
    let report = wait_for_coverage(state.path(), "the pycurl client decrypted", |report| {
        process_row(report, client_pid).is_some_and(|row| {
            str_of(row, "status") == "decrypted" && decrypted_calls(row, "openssl") == 1
        })
    })?;
    let row = process_row(&report, client_pid).context("pycurl row")?;
    let libraries = row
        .get("libraries")
        .cloned()
        .unwrap_or_default()
        .to_string();
    ensure!(
        libraries.contains("pycurl.libs/libssl") && attached(row, "openssl"),
        "the coverage row should name the wheel's libssl as attached: {row}"
    );
    client.finish()?;
    agent.stop()?;
    Ok(())
}

/// A stripped Go client and a Java client: no probe reads them, so the report calls them dark
/// with the reason, and their connections still count, with their bytes.
#[test]
fn clients_out_of_reach_are_reported_dark_with_their_encrypted_bytes() -> anyhow::Result<()> {
    let certificate = Certificate::self_signed()?;
    let server = GoServer::start(&certificate)?;
    let (mut agent, state) = agent_with_state_dir(server.port())?;

    let mut stripped = LineClient::go(true)?;
    // A client that makes one request and exits can be gone before the agent looks at its
    // executable; this one waits until the agent has said what it found.
    let stripped_path = stripped.program.display().to_string();
    ensure!(
        agent.wait_for_log("stripped Go binary", ATTACH_TIMEOUT)
            && agent
                .log()
                .lines()
                .any(|l| l.contains("stripped Go binary") && l.contains(&stripped_path)),
        "the agent should say the stripped Go client stays dark; its log:\n{}",
        agent.log()
    );
    let (status, body) = stripped.get(&server.url("/stripped"))?;
    ensure!(
        status == 200 && body == go_server_body("/stripped"),
        "{status} {body:?}"
    );
    let stripped_pid = stripped.pid();
    // It exits without closing its connection: the bytes come from the kernel's table.
    stripped.finish()?;
    let java = java_get(&server.url("/java"))?;
    ensure!(java.stdout.trim() == "200", "java said {:?}", java.stdout);

    // The server side is decrypted all the same.
    agent.wait_for(&[
        &Expect::server()
            .get("/stripped", 200)
            .process("go-server", server.pid())
            .tls("go"),
        &Expect::server()
            .get("/java", 200)
            .process("go-server", server.pid())
            .tls("go"),
    ])?;
    let dark = |row: &Value, reason: &str| {
        str_of(row, "status") == "dark"
            && row
                .get("dark_reason")
                .and_then(|r| r.get("reason"))
                .and_then(Value::as_str)
                == Some(reason)
            && u64_of(row, "undecrypted_connections") >= 1
            && u64_of(row, "undecrypted_tls_bytes") > 0
            && u64_of(row, "decrypted_calls") == 0
    };
    let report = wait_for_coverage(
        state.path(),
        "the stripped Go and Java clients dark",
        |report| {
            process_row(report, stripped_pid).is_some_and(|row| dark(row, "stripped_go"))
                && process_row(report, java.pid).is_some_and(|row| dark(row, "java"))
        },
    )
    .with_context(|| format!("the agent's log:\n{}", agent.log()))?;
    // Their bytes: at least a handshake and one request and answer each way.
    for pid in [stripped_pid, java.pid] {
        let row = process_row(&report, pid).context("row")?;
        let listed = row
            .get("recent_undecrypted")
            .and_then(Value::as_array)
            .context("recent_undecrypted")?;
        ensure!(
            listed.iter().any(|c| u64_of(c, "bytes_sent") > 100
                && u64_of(c, "bytes_received") > 100
                && str_of(c, "remote").ends_with(&format!(":{}", server.port()))),
            "the dark connection should be listed with its bytes and server: {row}"
        );
    }
    let stopped = agent.stop()?;
    ensure!(
        !stopped
            .calls
            .iter()
            .any(|c| c.pid() == Some(u64::from(stripped_pid))
                || c.pid() == Some(u64::from(java.pid))),
        "no call can come from a dark client; all calls:\n{}",
        calls::list(&stopped.calls)
    );
    ensure!(
        stopped.stderr.contains("TLS coverage:") && stopped.stderr.contains("java 1"),
        "the agent's log should end with a coverage line naming the Java client:\n{}",
        stopped.stderr
    );
    Ok(())
}

/// Probes on a Go program under load, attached and detached again and again: the program must
/// keep answering every request right (a misplaced probe would corrupt or kill it).
#[test]
fn a_go_server_under_load_survives_the_agent_coming_and_going() -> anyhow::Result<()> {
    /// Start/stop cycles of the agent while the load runs.
    const CYCLES: usize = 4;
    /// The load stops when the test is done; this bounds it if the test dies first.
    const MAX_LOAD_SECONDS: u64 = 300;
    /// Concurrent requests: enough to keep a goroutine inside a probed function at every
    /// moment, few enough to leave the agent a CPU on a two-CPU machine.
    const WORKERS: u32 = 2;
    /// Go calls each agent must report before it is stopped: proof its probes fired.
    const CALLS_PER_CYCLE: usize = 100;

    let certificate = Certificate::self_signed()?;
    let mut server = GoServer::start(&certificate)?;
    let mut load = GoLoad::start(&server.url("/load"), MAX_LOAD_SECONDS, WORKERS)?;
    for cycle in 0..CYCLES {
        let mut agent = Agent::start(&["--port", &server.port().to_string()])?;
        agent.wait_until("Go calls under load", |calls| {
            calls
                .iter()
                .filter(|c| c.tls_library() == Some("go") && c.status_code() == Some(200))
                .count()
                >= CALLS_PER_CYCLE
        })?;
        agent.stop()?;
        ensure!(
            server.running() && load.running(),
            "after cycle {cycle}, the Go server is running: {}, the load: {}",
            server.running(),
            load.running()
        );
    }
    let (ok, failed, first_error) = load.finish()?;
    ensure!(
        ok > 0 && failed == 0,
        "under load with the agent coming and going, {ok} answers were right and {failed} not (first: {first_error})"
    );
    ensure!(server.running(), "the Go server died");
    Ok(())
}
