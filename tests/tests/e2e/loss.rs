//! Loss accounting under stress: with a small ring buffer and the agent paused, the kernel drops
//! events, and every one is accounted for: delivered + dropped = attempted, per event kind and per
//! reason, exactly.

use observer_tests::{
    agent::{count, Agent},
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

#[test]
fn every_event_is_delivered_or_counted_as_dropped() -> anyhow::Result<()> {
    let server = PythonServer::start(Site::new()?.file("payload", "x".repeat(BODY_BYTES))?)?;
    let port = server.port().to_string();
    let agent = Agent::start(&["--port", &port, "--ring-buffer-size", SMALL_RING_BYTES])?;

    agent.pause()?;
    let mut client = KeepAliveClient::start(server.port(), false)?;
    for _ in 0..REQUESTS_WHILE_PAUSED {
        let response = client.get("/payload")?;
        anyhow::ensure!(
            response.status == 200,
            "the server answered {}",
            response.status
        );
    }
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
