//! Every socket call family the kernel side reads at its exit (its arguments come from the
//! thread's saved registers): one exchange per family, each on its own connection, must be
//! reported whole from both sides. Multi-buffer calls split the messages across iovecs, and a
//! peek before each server read must not make its bytes count twice.

use std::{process::Command, time::Duration};

use anyhow::{ensure, Context};
use observer_tests::{calls, process::Spawned, python, Agent, Expect};

/// How long the script may take to print its port and to finish its exchanges.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(20);

/// The families, by the path each exchange requests.
const FAMILIES: [&str; 4] = ["write-read", "writev-readv", "sendmsg-recvmsg", "send-recv"];

/// Listens, prints its port, waits for a line, then makes one exchange per family (client and
/// server in this one process, on loopback) and prints `done`.
const SCRIPT: &str = r#"
import os, socket, sys

listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(8)
print(listener.getsockname()[1], flush=True)
sys.stdin.readline()

BODY = b"family reached\n"

def request(family):
    return f"GET /{family} HTTP/1.1\r\nHost: syscalls\r\n\r\n".encode()

def response():
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY

def send(sock, data, family):
    half = len(data) // 2
    if family == "write-read":
        os.write(sock.fileno(), data)
    elif family == "writev-readv":
        os.writev(sock.fileno(), [data[:half], data[half:]])
    elif family == "sendmsg-recvmsg":
        sock.sendmsg([data[:half], data[half:]])
    else:
        sock.send(data)

def receive(sock, size, family):
    got = b""
    while len(got) < size:
        # A peek first: its bytes are read again below and must be reported once.
        sock.recv(1, socket.MSG_PEEK)
        want = size - len(got)
        if family == "write-read":
            got += os.read(sock.fileno(), want)
        elif family == "writev-readv":
            first, second = bytearray(want // 2 or 1), bytearray(want)
            n = os.readv(sock.fileno(), [first, second])
            got += (bytes(first) + bytes(second))[:n]
        elif family == "sendmsg-recvmsg":
            first, second = bytearray(want // 2 or 1), bytearray(want)
            n = sock.recvmsg_into([first, second])[0]
            got += (bytes(first) + bytes(second))[:n]
        else:
            got += sock.recv(want)
    return got

for family in sys.argv[1:]:
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    send(client, request(family), family)
    assert receive(server, len(request(family)), family) == request(family)
    send(server, response(), family)
    assert receive(client, len(response()), family) == response()
    client.close()
    server.close()
print("done", flush=True)
"#;

#[test]
fn every_socket_call_family_is_seen_from_both_sides() -> anyhow::Result<()> {
    let python = python()?;
    let mut script = Spawned::start(
        "python syscall families",
        Command::new(&python.path)
            .args(["-c", SCRIPT])
            .args(FAMILIES),
    )?;
    let port: u16 = script
        .next_line(SCRIPT_TIMEOUT)?
        .trim()
        .parse()
        .context("the script should print its port")?;
    let mut agent = Agent::start(&["--port", &port.to_string()])?;
    script.send_line("go")?;
    let done = script.next_line(SCRIPT_TIMEOUT)?;
    ensure!(
        done == "done",
        "the script should finish its exchanges: {done}"
    );

    let expected: Vec<Expect> = FAMILIES
        .iter()
        .flat_map(|family| {
            let path = format!("/{family}");
            [Expect::client(), Expect::server()].map(|side| {
                side.get(&path, 200)
                    .process(&python.executable_name, script.pid())
                    .body_prefix("family reached\n")
                    .body_size(15)
                    .plaintext()
                    .server_port(port)
            })
        })
        .collect();
    agent.wait_for(&expected.iter().collect::<Vec<_>>())?;
    let stopped = agent.stop()?;
    let all = calls::list(&stopped.calls);
    for expect in &expected {
        ensure!(
            expect.find_all(&stopped.calls).len() == 1,
            "each exchange should be reported once per side (a peeked byte counted twice \
             would break the framing):\n{all}"
        );
    }
    Ok(())
}
