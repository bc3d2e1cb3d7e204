//! HTTPS through OpenSSL: the agent's uprobes on SSL_read/SSL_write (curl) and on
//! SSL_read_ex/SSL_write_ex (Python's ssl module) see the plaintext on both sides.

use anyhow::ensure;
use observer_tests::{
    bpf, calls, curl, python, Agent, Certificate, Expect, KeepAliveClient, PythonServer, Site,
};

const SECRET: &str = "this text only ever crosses the wire encrypted\n";
const HELLO: &str = "hello over TLS\n";

#[test]
fn curl_over_tls13_is_seen_in_plaintext_from_both_sides() -> anyhow::Result<()> {
    let python = python()?;
    let certificate = Certificate::self_signed()?;
    let server = PythonServer::start_tls(Site::new()?.file("secret.txt", SECRET)?, &certificate)?;
    let mut agent = Agent::start(&["--port", &server.port().to_string()])?;

    // curl uses SSL_write and SSL_read; pin TLS 1.3 so a downgrade would fail the handshake.
    let client = curl(&[
        "-k",
        "--tlsv1.3",
        "--tls-max",
        "1.3",
        &server.https_url("/secret.txt"),
    ])?;
    ensure!(client.stdout == SECRET, "curl got {:?}", client.stdout);

    let client_side = Expect::client()
        .get("/secret.txt", 200)
        .process("curl", client.pid)
        .tls("openssl")
        .body_prefix(SECRET)
        .server_port(server.port());
    // Python's ssl module uses SSL_read_ex and SSL_write_ex.
    let server_side = Expect::server()
        .get("/secret.txt", 200)
        .process(&python.executable_name, server.pid())
        .tls("openssl")
        .body_prefix(SECRET)
        .server_port(server.port());
    agent.wait_for(&[&client_side, &server_side])?;
    let stopped = agent.stop()?;

    // The ciphertext must not also be parsed as a (garbled) call.
    let ours: Vec<_> = stopped
        .calls
        .iter()
        .filter(|c| c.server_port() == Some(u64::from(server.port())))
        .collect();
    ensure!(
        ours.len() == 2,
        "expected exactly one call per side for one HTTPS request; all calls:\n{}",
        calls::list(&stopped.calls)
    );
    Ok(())
}

#[test]
fn python_client_over_tls_is_seen_through_the_ex_functions() -> anyhow::Result<()> {
    let python = python()?;
    let certificate = Certificate::self_signed()?;
    let site = Site::new()?
        .file("secret.txt", SECRET)?
        .file("hello.txt", HELLO)?;
    let server = PythonServer::start_tls(site, &certificate)?;
    let mut agent = Agent::start(&["--port", &server.port().to_string()])?;

    // http.client over an unverified ssl context: SSL_write_ex and SSL_read_ex, two requests
    // on one TLS connection.
    let mut client = KeepAliveClient::start(server.port(), true)?;
    let first = client.get("/secret.txt")?;
    let second = client.get("/hello.txt")?;
    ensure!(
        first.status == 200 && first.head == SECRET,
        "the first request failed: {first:?}"
    );
    ensure!(
        second.status == 200 && second.head == HELLO,
        "the second request failed: {second:?}"
    );
    let client_pid = client.pid();
    client.finish()?;

    let mut expected = Vec::new();
    for (path, body) in [("/secret.txt", SECRET), ("/hello.txt", HELLO)] {
        expected.push(
            Expect::client()
                .get(path, 200)
                .process(&python.executable_name, client_pid)
                .tls("openssl")
                .body_prefix(body)
                .server_port(server.port()),
        );
        expected.push(
            Expect::server()
                .get(path, 200)
                .process(&python.executable_name, server.pid())
                .tls("openssl")
                .body_prefix(body)
                .client_port(first.local_port),
        );
    }
    agent.wait_for(&expected.iter().collect::<Vec<_>>())?;
    let stopped = agent.stop()?;

    let client_calls = Expect::client()
        .process(&python.executable_name, client_pid)
        .find_all(&stopped.calls);
    ensure!(
        client_calls.len() == 2 && client_calls[0].connection() == client_calls[1].connection(),
        "the python client's two requests should be two calls on one connection; all calls:\n{}",
        calls::list(&stopped.calls)
    );
    Ok(())
}

/// A thread keeps its entry in the kernel side's map of TLS call arguments between its calls
/// (each call rewrites it in place: inserting and deleting it per call took the bucket's lock
/// twice) and loses it when it exits. Were it kept past the thread, a host whose threads come
/// and go would fill the map, and TLS calls on new threads would no longer be seen.
#[test]
fn a_thread_keeps_its_tls_call_entry_only_while_it_lives() -> anyhow::Result<()> {
    let certificate = Certificate::self_signed()?;
    let server = PythonServer::start_tls(Site::new()?.file("hello.txt", HELLO)?, &certificate)?;
    let agent = Agent::start(&["--port", &server.port().to_string()])?;

    let mut client = KeepAliveClient::start(server.port(), true)?;
    let on_main = client.get("/hello.txt")?;
    let on_worker = client.get_in_new_thread("/hello.txt")?;
    for response in [&on_main, &on_worker] {
        ensure!(
            response.status == 200 && response.head == HELLO,
            "a request failed: {response:?}"
        );
    }
    let pid = client.pid();
    let client_threads = |threads: Vec<(u32, u32)>| -> Vec<u32> {
        threads
            .into_iter()
            .filter(|&(process, _)| process == pid)
            .map(|(_, thread)| thread)
            .collect()
    };
    let alive = client_threads(bpf::tls_call_threads()?);
    ensure!(
        alive.contains(&on_main.thread),
        "the client's main thread, between its TLS calls, should keep its entry; the client's \
         entries are for threads {alive:?}"
    );
    ensure!(
        !alive.contains(&on_worker.thread),
        "the worker thread {} has exited and should have no entry left; the client's entries \
         are for threads {alive:?}",
        on_worker.thread
    );

    client.finish()?;
    let left = client_threads(bpf::tls_call_threads()?);
    ensure!(
        left.is_empty(),
        "the client has exited, yet entries remain for its threads {left:?}"
    );
    agent.stop()?;
    Ok(())
}
