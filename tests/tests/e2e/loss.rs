//! Loss accounting under stress: with a small ring buffer and the agent paused, the kernel drops
//! events, and every one is accounted for: delivered + dropped = attempted, per event kind and per
//! reason, exactly. And what the agent does to fall behind less: with its ring half full, it
//! reports calls without their bodies until it has caught up.

use observer_tests::{
    agent::{count, Agent},
    calls::{self, Call, Expect},
    clients::KeepAliveClient,
    servers::{PythonServer, Site},
};

/// The smallest ring the agent accepts (four of the largest data entries): it fills fast.
const SMALL_RING_BYTES: &str = "65536";

/// Requests sent while the agent is paused: each response carries a body of [`BODY_BYTES`], so
/// these are many times what the ring holds.
const REQUESTS_WHILE_PAUSED: usize = 200;
const BODY_BYTES: usize = 8 * 1024;

const EVENT_KINDS: [&str; 6] = [
    "data",
    "conn_open",
    "conn_close",
    "process_exec",
    "process_exit",
    "echo",
];

/// Pauses `agent` and gets `/payload` `requests` times over one keep-alive connection to
/// `port`; the agent stays paused, the connection open.
fn requests_while_paused(
    agent: &Agent,
    port: u16,
    requests: usize,
) -> anyhow::Result<KeepAliveClient> {
    agent.pause()?;
    let mut client = KeepAliveClient::start(port, false)?;
    for _ in 0..requests {
        let response = client.get("/payload")?;
        anyhow::ensure!(
            response.status == 200,
            "the server answered {}",
            response.status
        );
    }
    Ok(client)
}

#[test]
fn every_event_is_delivered_or_counted_as_dropped() -> anyhow::Result<()> {
    let server = PythonServer::start(Site::new()?.file("payload", "x".repeat(BODY_BYTES))?)?;
    let port = server.port().to_string();
    let agent = Agent::start(&["--port", &port, "--ring-buffer-size", SMALL_RING_BYTES])?;

    let client = requests_while_paused(&agent, server.port(), REQUESTS_WHILE_PAUSED)?;
    client.finish()?;
    agent.resume()?;
    let stats = agent.stop()?.stats;
    let kernel = &stats["kernel"];
    let decode_errors: u64 = stats["pipeline"]["decode_errors"]
        .as_object()
        .map_or(0, |e| e.values().map(count).sum());
    anyhow::ensure!(
        decode_errors == 0,
        "events that could not be decoded: {}",
        stats["pipeline"]["decode_errors"]
    );

    let mut dropped_in_all = 0;
    for kind in EVENT_KINDS {
        let attempted = count(&kernel[format!("events_attempted.{kind}")]);
        let ring_full = count(&kernel[format!("dropped_ring_full.{kind}")]);
        let unreadable = if kind == "data" {
            count(&kernel["dropped_read_user_failed"])
        } else {
            0
        };
        let delivered = count(&stats["pipeline"]["events"][kind]);
        dropped_in_all += ring_full + unreadable;
        anyhow::ensure!(
            delivered + ring_full + unreadable == attempted,
            "{kind}: delivered {delivered} + ring full {ring_full} + unreadable {unreadable} != attempted {attempted}\nstats: {stats:#}"
        );
    }
    // The test means something only if the ring really overflowed.
    anyhow::ensure!(
        dropped_in_all > 0,
        "nothing was dropped: the ring never filled\nstats: {stats:#}"
    );
    Ok(())
}

/// A ring that the backlog below fills past half without overflowing.
const BACKLOG_RING_BYTES: &str = "1048576";
/// Requests sent while the agent is paused: their responses (each with a body of
/// [`BODY_BYTES`], shipped once on this host-local connection) come to about two thirds of
/// [`BACKLOG_RING_BYTES`].
const BACKLOG_REQUESTS: usize = 80;

#[test]
fn a_backlog_past_half_the_ring_is_read_without_bodies_then_bodies_return() -> anyhow::Result<()> {
    const AFTER: &str = "after the backlog";
    let server = PythonServer::start(
        Site::new()?
            .file("payload", "x".repeat(BODY_BYTES))?
            .file("after", AFTER)?,
    )?;
    let port = server.port().to_string();
    let mut agent = Agent::start(&["--port", &port, "--ring-buffer-size", BACKLOG_RING_BYTES])?;

    let mut client = requests_while_paused(&agent, server.port(), BACKLOG_REQUESTS)?;
    agent.resume()?;
    // Each request shows at both ends (the server's and the client's call).
    agent.wait_until("the backlog's calls", |calls| {
        calls
            .iter()
            .filter(|call| call.path() == Some("/payload"))
            .count()
            >= 2 * BACKLOG_REQUESTS
    })?;
    // The backlog is read: the ring is empty again, and this call keeps its body.
    client.get("/after")?;
    agent.wait_for(&[&Expect::server().get("/after", 200).body_prefix(AFTER)])?;
    client.finish()?;
    let stopped = agent.stop()?;

    let is_shed = |call: &&Call| {
        call.0["observer.incomplete"]
            .as_array()
            .is_some_and(|reasons| reasons.iter().any(|r| r == "bodies_shed"))
    };
    let shed: Vec<&Call> = stopped.calls.iter().filter(is_shed).collect();
    let all = calls::list(&stopped.calls);
    anyhow::ensure!(
        !shed.is_empty(),
        "no call was reported without its body, though the ring was past half full\n{all}"
    );
    anyhow::ensure!(
        shed.len() as u64 == count(&stopped.stats["pipeline"]["calls_bodies_shed"]),
        "{} calls flagged bodies_shed, the agent counted {}\n{all}",
        shed.len(),
        stopped.stats["pipeline"]["calls_bodies_shed"]
    );
    for call in &shed {
        anyhow::ensure!(
            call.path() == Some("/payload")
                && call.response_body_preview().is_none()
                && call.response_body_size() == Some(BODY_BYTES as u64),
            "a shed call should be a backlog call that kept its body's size and nothing of it: {}",
            call.0
        );
    }
    let after: Vec<&Call> = stopped
        .calls
        .iter()
        .filter(|call| call.path() == Some("/after"))
        .collect();
    anyhow::ensure!(
        !after.is_empty() && !after.iter().any(is_shed),
        "the call after the backlog should keep its body\n{all}"
    );
    Ok(())
}
