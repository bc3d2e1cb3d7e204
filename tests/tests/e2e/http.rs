//! Plaintext HTTP/1.1 between real programs on loopback: every exchange is reported once by
//! the client process and once by the server process, with the right method, path, status,
//! process and body.

use anyhow::{ensure, Context};
use std::{process::Command, time::Duration};

use observer_tests::{
    agent::count,
    calls::{self, Call},
    clients::pipeline_read_after,
    curl, pipeline,
    process::{Finished, Spawned},
    python, Agent, Expect, KeepAliveClient, Nginx, PythonServer, Site,
};

const HELLO: &str = "hello from observer's end-to-end tests\n";
const AFTER: &str = "sent after the agent started\n";

/// Exactly 1 MiB: big enough to take many reads and writes, and far past the body preview.
const LARGE_SIZE: usize = 1 << 20;
const LARGE_PATTERN: &[u8] = b"observer large body 0123456789abcdefghijklmnopqrstuvwxyz\n";

fn large_body() -> Vec<u8> {
    LARGE_PATTERN
        .iter()
        .copied()
        .cycle()
        .take(LARGE_SIZE)
        .collect()
}

/// The paths of `calls`, in output order.
fn paths<'a>(calls: &[&'a Call]) -> Vec<&'a str> {
    calls.iter().map(|c| c.path().unwrap_or("?")).collect()
}

/// All of `calls` are on one connection; returns it.
fn one_connection<'a>(calls: &[&'a Call], side: &str, all: &[Call]) -> anyhow::Result<&'a str> {
    let first = calls
        .first()
        .and_then(|c| c.connection())
        .with_context(|| format!("no {side} calls"))?;
    ensure!(
        calls.iter().all(|c| c.connection() == Some(first)),
        "the {side} calls should share one observer.connection; all calls:\n{}",
        calls::list(all)
    );
    Ok(first)
}

#[test]
fn plaintext_get_is_seen_from_both_sides() -> anyhow::Result<()> {
    let python = python()?;
    let server = PythonServer::start(Site::new()?.file("hello.txt", HELLO)?)?;
    let mut agent = Agent::start(&["--port", &server.port().to_string()])?;

    let client = curl(&[&server.url("/hello.txt?lang=en")])?;
    ensure!(
        client.stdout == HELLO,
        "curl got {:?}, not the file",
        client.stdout
    );

    let server_side = Expect::server()
        .get("/hello.txt", 200)
        .process(&python.executable_name, server.pid())
        .body_prefix(HELLO)
        .plaintext()
        .server_port(server.port());
    let client_side = Expect::client()
        .get("/hello.txt", 200)
        .process("curl", client.pid)
        .body_prefix(HELLO)
        .plaintext()
        .server_port(server.port());
    agent.wait_for(&[&server_side, &client_side])?;
    let stopped = agent.stop()?;

    let (s, c) = (
        server_side.find(&stopped.calls)?,
        client_side.find(&stopped.calls)?,
    );
    let all = calls::list(&stopped.calls);
    // The client's ephemeral port is known to the server side from accept(); the client side
    // may lack it when curl is gone before the agent looks at its socket.
    ensure!(
        s.client_port().is_some(),
        "the server side should name the client's port:\n{all}"
    );
    if let Some(port) = c.client_port() {
        ensure!(
            s.client_port() == Some(port),
            "both sides should name the same client port:\n{all}"
        );
    }
    ensure!(
        c.str("url.query") == Some("lang=en"),
        "url.query should be lang=en:\n{all}"
    );
    ensure!(
        c.str("network.protocol.version") == Some("1.1"),
        "the protocol version should be 1.1:\n{all}"
    );
    ensure!(
        c.request_header("user-agent")
            .iter()
            .any(|ua| ua.starts_with("curl/")),
        "the client call should carry curl's user-agent header: {c}"
    );
    ensure!(
        server_side.find_all(&stopped.calls).len() == 1
            && client_side.find_all(&stopped.calls).len() == 1,
        "one exchange must be reported once per side, not more:\n{all}"
    );
    Ok(())
}

#[test]
fn keep_alive_requests_share_one_connection() -> anyhow::Result<()> {
    let python = python()?;
    let files = [
        ("a.txt", "first file, alpha\n"),
        ("b.txt", "second file, beta\n"),
        ("c.txt", "third file, gamma\n"),
    ];
    let mut site = Site::new()?;
    for (name, body) in files {
        site = site.file(name, body)?;
    }
    let server = PythonServer::start(site)?;
    let mut agent = Agent::start(&["--port", &server.port().to_string()])?;

    // curl reuses its connection for several URLs of one host on one command line.
    let urls: Vec<String> = files
        .iter()
        .map(|(name, _)| server.url(&format!("/{name}")))
        .collect();
    let client = curl(&urls.iter().map(String::as_str).collect::<Vec<_>>())?;
    ensure!(
        client.stderr.is_empty(),
        "curl complained: {}",
        client.stderr
    );

    let mut expected = Vec::new();
    for (name, body) in files {
        let path = format!("/{name}");
        expected.push(
            Expect::client()
                .get(&path, 200)
                .process("curl", client.pid)
                .body_prefix(body),
        );
        expected.push(
            Expect::server()
                .get(&path, 200)
                .process(&python.executable_name, server.pid())
                .body_prefix(body),
        );
    }
    agent.wait_for(&expected.iter().collect::<Vec<_>>())?;
    let stopped = agent.stop()?;

    for role in [
        Expect::client().process("curl", client.pid),
        Expect::server().process(&python.executable_name, server.pid()),
    ] {
        let side = role.find_all(&stopped.calls);
        ensure!(
            paths(&side) == ["/a.txt", "/b.txt", "/c.txt"],
            "expected the three requests in order from {role}; all calls:\n{}",
            calls::list(&stopped.calls)
        );
        one_connection(&side, "same-process", &stopped.calls)?;
    }
    Ok(())
}

#[test]
fn pipelined_requests_are_paired_in_order() -> anyhow::Result<()> {
    let python = python()?;
    let routes = [
        ("/first", "first answer\n"),
        ("/second", "second answer\n"),
        ("/third", "third answer\n"),
    ];
    let nginx = Nginx::start(&routes)?;
    let mut agent = Agent::start(&["--port", &nginx.port().to_string()])?;

    let client = pipeline(nginx.port(), &routes.map(|(path, _)| path))?;
    let answered = client.received.matches("HTTP/1.1 200 OK").count();
    ensure!(
        answered == 3,
        "nginx should answer all three pipelined requests, got {answered}:\n{}",
        client.received
    );

    let mut expected = Vec::new();
    for (path, body) in routes {
        expected.push(
            Expect::client()
                .get(path, 200)
                .process(&python.executable_name, client.pid)
                .body_prefix(body),
        );
        expected.push(
            Expect::server()
                .get(path, 200)
                .process("nginx", nginx.pid())
                .client_port(client.local_port)
                .body_prefix(body),
        );
    }
    agent.wait_for(&expected.iter().collect::<Vec<_>>())?;
    let stopped = agent.stop()?;

    for side in [
        Expect::client().process(&python.executable_name, client.pid),
        Expect::server().process("nginx", nginx.pid()),
    ] {
        let found = side.find_all(&stopped.calls);
        ensure!(
            paths(&found) == ["/first", "/second", "/third"],
            "expected exactly the three pipelined calls in order from {side}; all calls:\n{}",
            calls::list(&stopped.calls)
        );
        one_connection(&found, "pipelined", &stopped.calls)?;
    }
    Ok(())
}

#[test]
fn chunked_response_body_is_decoded() -> anyhow::Result<()> {
    let python = python()?;
    let server = PythonServer::start(Site::new()?)?;
    let mut agent = Agent::start(&["--port", &server.port().to_string()])?;

    let client = curl(&[&server.url("/chunked")])?;
    // The body as the server's three chunks carry it, without the chunk framing.
    let body = "chunked body starts here; then a second piece; and the third, last piece\n";
    ensure!(client.stdout == body, "curl got {:?}", client.stdout);

    let size = body.len() as u64;
    let server_side = Expect::server()
        .get("/chunked", 200)
        .process(&python.executable_name, server.pid())
        .body_prefix(body)
        .body_size(size);
    let client_side = Expect::client()
        .get("/chunked", 200)
        .process("curl", client.pid)
        .body_prefix(body)
        .body_size(size);
    agent.wait_for(&[&server_side, &client_side])?;
    let stopped = agent.stop()?;

    let c = client_side.find(&stopped.calls)?;
    ensure!(
        c.response_header("transfer-encoding") == ["chunked"],
        "the response header should say chunked: {c}"
    );
    server_side.find(&stopped.calls)?;
    Ok(())
}

#[test]
fn large_response_reports_full_size_and_a_truncated_preview() -> anyhow::Result<()> {
    let python = python()?;
    let body = large_body();
    let server = PythonServer::start(Site::new()?.file("large.bin", &body)?)?;
    let mut agent = Agent::start(&["--port", &server.port().to_string()])?;

    let client = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{size_download}",
        &server.url("/large.bin"),
    ])?;
    ensure!(
        client.stdout.trim() == LARGE_SIZE.to_string(),
        "curl downloaded {} bytes",
        client.stdout
    );

    let prefix = std::str::from_utf8(&body[..200])?;
    let server_side = Expect::server()
        .get("/large.bin", 200)
        .process(&python.executable_name, server.pid())
        .body_size(LARGE_SIZE as u64)
        .body_truncated(true)
        .body_prefix(prefix);
    let client_side = Expect::client()
        .get("/large.bin", 200)
        .process("curl", client.pid)
        .body_size(LARGE_SIZE as u64)
        .body_truncated(true)
        .body_prefix(prefix);
    agent.wait_for(&[&server_side, &client_side])?;
    let stopped = agent.stop()?;

    for side in [&server_side, &client_side] {
        let call = side.find(&stopped.calls)?;
        let preview = call.response_body_preview().unwrap_or_default().len();
        ensure!(
            preview < LARGE_SIZE,
            "the preview should be capped, it has {preview} bytes: {call}"
        );
    }
    Ok(())
}

/// Both ends of a loopback connection are traced, so the kernel ships each byte at one end: the
/// writer's, while the reader's reads echo it. What the agent reports is the same: each side's
/// calls, whole, as when both ends shipped.
#[test]
fn a_loopback_connection_is_shipped_at_one_end_and_reported_at_both() -> anyhow::Result<()> {
    let python = python()?;
    // Larger than one write of Python's server (64 KiB) and than one read of its client.
    let body = &large_body()[..200 * 1024];
    let server = PythonServer::start(
        Site::new()?
            .file("hello.txt", HELLO)?
            .file("large.bin", body)?,
    )?;
    let mut agent = Agent::start(&["--port", &server.port().to_string()])?;

    // Keep-alive: the first request is written before the server accepts (the client cannot
    // know its other end yet, so it ships it); the server's answer and everything after are
    // shipped once. The first two responses are read as they arrive, so reads race the writes
    // of their bytes (a read of bytes whose write has not returned yet ships them again); the
    // last two only once the server has written them whole, so every byte read is echoed.
    let mut client = KeepAliveClient::start(server.port(), false)?;
    let paths = [
        ("/hello.txt", false),
        ("/large.bin", false),
        ("/hello.txt", true),
        ("/large.bin", true),
    ];
    for (path, late) in paths {
        let response = if late {
            client.get_late(path)?
        } else {
            client.get(path)?
        };
        ensure!(
            response.status == 200,
            "{path}: the server answered {}",
            response.status
        );
    }
    let finished = client.finish()?;

    let prefix = std::str::from_utf8(&body[..200])?;
    let mut expected = Vec::new();
    for (side, pid, name) in [
        (
            Expect::server(),
            server.pid(),
            python.executable_name.as_str(),
        ),
        (
            Expect::client(),
            finished.pid,
            python.executable_name.as_str(),
        ),
    ] {
        expected.push(
            side.clone()
                .get("/hello.txt", 200)
                .process(name, pid)
                .body_prefix(HELLO),
        );
        expected.push(
            side.get("/large.bin", 200)
                .process(name, pid)
                .body_size(body.len() as u64)
                .body_prefix(prefix),
        );
    }
    agent.wait_for(&expected.iter().collect::<Vec<_>>())?;
    let stopped = agent.stop()?;
    let all = calls::list(&stopped.calls);
    for expect in &expected {
        ensure!(
            expect.find_all(&stopped.calls).len() == 2,
            "each request once per side:\n{all}"
        );
    }

    let stats = &stopped.stats;
    let kernel_echoed = count(&stats["kernel"]["echoed_bytes"]);
    let echo = &stats["pipeline"]["echo"];
    // The late large response is all written, within a window of its reader, before its reads.
    ensure!(
        kernel_echoed >= body.len() as u64,
        "the reads of bytes the other end shipped should have been echoed, not copied again\nstats: {stats:#}"
    );
    ensure!(
        count(&echo["bytes_echoed"]) == kernel_echoed && count(&echo["bytes_missing"]) == 0,
        "every echo should find its bytes\nstats: {stats:#}"
    );
    // Of each large body, what the parse passes over (past its 16 KiB capture) is kept for the
    // reader as a length, not as bytes.
    ensure!(
        count(&echo["bytes_unread"]) >= body.len() as u64 / 2,
        "the large bodies past their capture should have been echoed unread\nstats: {stats:#}"
    );
    ensure!(
        count(&stats["pipeline"]["connections"]["gaps"]) == 0,
        "no stream should have a gap\nstats: {stats:#}"
    );
    Ok(())
}

/// A server that answers and closes before its client reads. The kernel echoes a read only
/// while the writer's connection is tracked, which ends at its close: the client's read ships
/// the bytes itself, and what the agent kept from the server is left unread (counted apart,
/// not as missing bytes) and let go at once rather than held for a reader that never comes.
#[test]
fn a_loopback_response_read_after_its_server_closed_is_whole_at_both_ends() -> anyhow::Result<()> {
    /// Long enough for the server to answer and close, and for the agent to let the server's
    /// kept bytes go (a tenth of a second after the close), before the client reads.
    const READ_AFTER: Duration = Duration::from_millis(500);
    let python = python()?;
    let server = PythonServer::start(Site::new()?.file("hello.txt", HELLO)?)?;
    let mut agent = Agent::start(&["--port", &server.port().to_string()])?;
    let client = pipeline_read_after(server.port(), &["/hello.txt"], READ_AFTER)?;
    ensure!(
        client.received.starts_with("HTTP/1.") && client.received.ends_with(HELLO),
        "the server should have answered, the client got {:?}",
        client.received
    );
    let name = python.executable_name.as_str();
    let expected = [
        Expect::server()
            .get("/hello.txt", 200)
            .process(name, server.pid())
            .body_prefix(HELLO),
        Expect::client()
            .get("/hello.txt", 200)
            .process(name, client.pid)
            .body_prefix(HELLO),
    ];
    agent.wait_for(&expected.iter().collect::<Vec<_>>())?;
    let stats = agent.stop()?.stats;
    let echo = &stats["pipeline"]["echo"];
    ensure!(
        count(&echo["bytes_missing"]) == 0 && count(&stats["pipeline"]["connections"]["gaps"]) == 0,
        "no bytes should be missing\nstats: {stats:#}"
    );
    ensure!(
        count(&echo["bytes_left_at_close"]) > 0 && count(&echo["bytes_dropped"]) == 0,
        "the server's kept response should have been let go as it closed\nstats: {stats:#}"
    );
    Ok(())
}

/// `src/python/netns_pair.py` (after `http_response.py`): a server and its client in one process,
/// on a network namespace of its own, with fixed ports.
const NETNS_PAIR_SCRIPT: &str = concat!(
    include_str!("../../src/python/http_response.py"),
    include_str!("../../src/python/netns_pair.py")
);

/// The same address pair in two network namespaces at once: host-local ends are found by their
/// namespace and addresses, so each client's reads echo its own server's bytes, never the other
/// namespace's (whose connection has the same addresses and ports).
#[test]
fn the_same_addresses_in_two_network_namespaces_never_mix() -> anyhow::Result<()> {
    const PORT: &str = "18090";
    const SOURCE_PORT: &str = "18091";
    const REQUESTS: usize = 20;
    let python = python()?;
    let mut agent = Agent::start(&["--port", PORT])?;

    // Both run at once: each holds its connection for the ~1 s of its requests.
    let requests = REQUESTS.to_string();
    let start = |label: &str| {
        let python_path = python.path.display().to_string();
        Spawned::start(
            label,
            Command::new("unshare").args([
                "--net",
                python_path.as_str(),
                "-c",
                NETNS_PAIR_SCRIPT,
                "--label",
                label,
                "--port",
                PORT,
                "--source-port",
                SOURCE_PORT,
                "--requests",
                &requests,
            ]),
        )
    };
    let pairs = [start("A")?, start("B")?];
    let mut pids = Vec::new();
    for pair in pairs {
        pids.push(answered_all(pair, REQUESTS)?.pid);
    }

    let expected: Vec<Expect> = pids
        .iter()
        .zip(["A", "B"])
        .map(|(&pid, label)| {
            Expect::client()
                .get(&format!("/ns/{}", REQUESTS - 1), 200)
                .process(&python.executable_name, pid)
                .body_prefix(&format!("namespace {label} "))
        })
        .collect();
    agent.wait_for(&expected.iter().collect::<Vec<_>>())?;
    let stopped = agent.stop()?;
    for (&pid, label) in pids.iter().zip(["A", "B"]) {
        let own = format!("namespace {label} ");
        each_holds_its_own_answer(
            &stopped.calls,
            pid,
            REQUESTS,
            &format!("namespace {label}"),
            |_| Some(own.clone()),
        )?;
    }
    let stats = &stopped.stats;
    ensure!(
        count(&stats["kernel"]["echoed_bytes"]) > 0,
        "the clients' reads should have been echoed\nstats: {stats:#}"
    );
    Ok(())
}

/// Process `pid`'s client calls, which the pair scripts check: `expected` of them, each with
/// a response body that starts with what `own` says the call's answer starts with (`None`: the
/// call does not say). `who` names the client in errors.
fn each_holds_its_own_answer(
    calls: &[Call],
    pid: u32,
    expected: usize,
    who: &str,
    own: impl Fn(&Call) -> Option<String>,
) -> anyhow::Result<()> {
    let all = calls::list(calls);
    let clients = calls::client_calls_of(calls, pid);
    ensure!(
        clients.len() == expected,
        "{who}: {} client calls, not {expected}:\n{all}",
        clients.len()
    );
    for call in clients {
        let answer = own(call);
        ensure!(
            answer.is_some_and(|answer| call
                .response_body_preview()
                .is_some_and(|body| body.starts_with(&answer))),
            "{who}'s call does not hold its own answer: {call}\n{all}"
        );
    }
    Ok(())
}

/// `src/python/spliced_pair.py` (after `http_response.py`): a server and its client in one process,
/// the server moving half of one answer with splice(2).
const SPLICED_PAIR_SCRIPT: &str = concat!(
    include_str!("../../src/python/http_response.py"),
    include_str!("../../src/python/spliced_pair.py")
);

/// A host-local writer whose bytes partly move through a call the programs do not see (splice)
/// is no longer where they count it; its reader's echoes would then name the wrong bytes. TCP's
/// own counts of what each end wrote and read tell, and the reader ships its reads itself: its
/// answers, two of them written before it read either, are still its own.
#[test]
fn a_host_local_writer_whose_bytes_move_unseen_is_no_longer_echoed() -> anyhow::Result<()> {
    const PORT: &str = "18095";
    const REQUESTS: usize = 8;
    let python = python()?;
    let mut agent = Agent::start(&["--port", PORT])?;

    let requests = REQUESTS.to_string();
    let python_path = python.path.display().to_string();
    let pair = Spawned::start(
        "spliced",
        Command::new(python_path.as_str()).args([
            "-c",
            SPLICED_PAIR_SCRIPT,
            "--port",
            PORT,
            "--requests",
            &requests,
        ]),
    )?;
    let finished = answered_all(pair, REQUESTS)?;
    let last = Expect::client()
        .get(&format!("/answers/{}", REQUESTS - 1), 200)
        .process(&python.executable_name, finished.pid);
    agent.wait_for(&[&last])?;
    let stopped = agent.stop()?;
    each_holds_its_own_answer(
        &stopped.calls,
        finished.pid,
        REQUESTS,
        "the client",
        |call| {
            let i = call.path()?.strip_prefix("/answers/")?;
            Some(format!("answer {i} "))
        },
    )?;
    // The answers before the splice were echoed: the check is what stopped it after.
    let stats = &stopped.stats;
    ensure!(
        count(&stats["kernel"]["echoed_bytes"]) > 0,
        "the client's first reads should have been echoed\nstats: {stats:#}"
    );
    Ok(())
}

/// How long a pair script may run: its requests take about a second (20 of them 50 ms apart,
/// or 8 with two pauses), so this is slack for a loaded CI machine.
const PAIR_TIMEOUT: Duration = Duration::from_secs(20);

/// A pair script's run, once it has exited saying its client got all `requests` answers right
/// (`OK <requests>`).
fn answered_all(mut pair: Spawned, requests: usize) -> anyhow::Result<Finished> {
    let finished = pair.wait(PAIR_TIMEOUT)?;
    ensure!(
        finished.status.success() && finished.stdout.trim() == format!("OK {requests}"),
        "the pair's client failed: {finished:?}"
    );
    Ok(finished)
}

/// A server, and a keep-alive client whose connection carried one request before any agent
/// ran. Returns the client's local port.
fn connection_from_before_the_agent() -> anyhow::Result<(PythonServer, KeepAliveClient, u16)> {
    let site = Site::new()?
        .file("before.txt", "sent before the agent\n")?
        .file("after.txt", AFTER)?;
    let server = PythonServer::start(site)?;
    let mut client = KeepAliveClient::start(server.port(), false)?;
    let before = client.get("/before.txt")?;
    ensure!(before.status == 200, "the first request failed: {before:?}");
    Ok((server, client, before.local_port))
}

/// `GET /after.txt` on that connection, as `side` sees it from process `pid`.
fn after_request(
    side: Expect,
    pid: u32,
    server: &PythonServer,
    local_port: u16,
) -> anyhow::Result<Expect> {
    Ok(side
        .get("/after.txt", 200)
        .process(&python()?.executable_name, pid)
        .client_port(local_port)
        .server_port(server.port())
        .body_prefix(AFTER))
}

/// A keep-alive connection that was open, and had carried a request, before the agent started.
/// The client is kept running (and its connection open) until the calls are reported: a
/// long-lived connection, as between services.
#[test]
fn connection_opened_before_the_agent_started_is_still_reported() -> anyhow::Result<()> {
    let (server, mut client, local_port) = connection_from_before_the_agent()?;
    let mut agent = Agent::start(&["--port", &server.port().to_string()])?;
    let after = client.get("/after.txt")?;
    ensure!(
        after.status == 200 && after.local_port == local_port,
        "the second request should reuse the connection from port {local_port}: {after:?}"
    );

    let client_side = after_request(Expect::client(), client.pid(), &server, local_port)?;
    let server_side = after_request(Expect::server(), server.pid(), &server, local_port)?;
    agent
        .wait_for(&[&client_side])
        .context("the client side of the connection")?;
    agent
        .wait_for(&[&server_side])
        .context("the server side of the connection")?;
    client.finish()?;
    let stopped = agent.stop()?;

    ensure!(
        !stopped
            .calls
            .iter()
            .any(|c| c.path() == Some("/before.txt")),
        "a request made before the agent started cannot have been seen, yet it is reported:\n{}",
        calls::list(&stopped.calls)
    );
    Ok(())
}

/// Like the test above, but the client closes its connection right after its request, as a
/// short-lived client does: the call must still carry its addresses, so a `--port` filter
/// keeps it.
#[test]
fn connection_opened_before_the_agent_and_closed_at_once_keeps_its_ports() -> anyhow::Result<()> {
    let (server, mut client, local_port) = connection_from_before_the_agent()?;
    let mut agent = Agent::start(&["--port", &server.port().to_string()])?;
    client.get("/after.txt")?;
    let client_pid = client.pid();
    client.finish()?;

    let client_side = after_request(Expect::client(), client_pid, &server, local_port)?;
    agent.wait_for(&[&client_side])?;
    agent.stop()?;
    Ok(())
}
