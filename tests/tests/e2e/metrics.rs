//! The metrics endpoint (`observer run --metrics-listen ADDR`): scraped with a plain HTTP GET
//! while real calls go by, its call counters move by exactly the calls made, its loss counters
//! are there, other paths get 404, garbage does not hurt it, and a taken address stops the
//! agent with an error naming it. Prometheus itself (Debian's package) scrapes the endpoint and
//! reads the same counts, and its `promtool` passes the exposition.

use std::{
    fs,
    net::TcpListener,
    process::Command,
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context};
use observer_tests::{
    agent::{self, CALLS_TIMEOUT, STOP_TIMEOUT},
    curl,
    metrics::{self, value, PUBLISH_INTERVAL},
    process::Spawned,
    programs::{require, require_root, PROMETHEUS, PROMTOOL},
    servers::free_port,
    tempdir::TempDir,
    Agent, PythonServer, Site,
};

const HELLO: &str = "hello from the metrics test\n";

/// Calls made: a few, so that "exactly" is tested on more than one.
const CALLS: usize = 3;

const CLIENT_COMPLETE: &str = r#"observer_api_calls_total{role="client",status="complete"}"#;
const SERVER_COMPLETE: &str = r#"observer_api_calls_total{role="server",status="complete"}"#;

/// Series that must be there from the first scrape on: every place an event can be lost.
const LOSS_SERIES: &[&str] = &[
    r#"observer_events_lost_total{side="kernel",reason="ring_buffer_full"}"#,
    r#"observer_events_lost_total{side="kernel",reason="read_user_failed"}"#,
    r#"observer_events_lost_total{side="kernel",reason="args_table_full"}"#,
    r#"observer_events_lost_total{side="kernel",reason="conn_table_full"}"#,
    r#"observer_events_lost_total{side="kernel",reason="tls_without_fd"}"#,
    r#"observer_events_lost_total{side="agent",reason="undecodable_event"}"#,
    r#"observer_kernel_ring_buffer_full_total{kind="data"}"#,
    r#"observer_kernel_events_attempted_total{kind="data"}"#,
];

/// A server to call, and an agent watching only its port (so that scrapes and Prometheus's
/// own traffic move no count) with its metrics endpoint on a free port.
fn observed_server() -> anyhow::Result<(PythonServer, Agent, u16)> {
    let server = PythonServer::start(Site::new()?.file("hello.txt", HELLO)?)?;
    let port = free_port()?;
    let agent = Agent::start(&[
        "--port",
        &server.port().to_string(),
        "--metrics-listen",
        &metrics::address(port).to_string(),
    ])?;
    Ok((server, agent, port))
}

fn required(exposition: &str, series: &str) -> anyhow::Result<f64> {
    value(exposition, series).with_context(|| format!("no {series} in:\n{exposition}"))
}

#[test]
fn metrics_count_the_calls_made() -> anyhow::Result<()> {
    let (server, agent, port) = observed_server()?;

    let before = metrics::scrape(port)?;
    for line in [
        "# TYPE observer_api_calls_total counter",
        "# HELP observer_",
    ] {
        ensure!(before.contains(line), "no {line:?} in:\n{before}");
    }
    for series in LOSS_SERIES {
        required(&before, series)?;
    }
    let (client_before, server_before) = (
        required(&before, CLIENT_COMPLETE)?,
        required(&before, SERVER_COMPLETE)?,
    );

    for _ in 0..CALLS {
        let client = curl(&[&server.url("/hello.txt")])?;
        ensure!(client.stdout == HELLO, "curl got {:?}", client.stdout);
    }

    // Both sides of each call are on this host: the client (curl) and the server (Python).
    let moved = |exposition: &str| -> anyhow::Result<(f64, f64)> {
        Ok((
            required(exposition, CLIENT_COMPLETE)? - client_before,
            required(exposition, SERVER_COMPLETE)? - server_before,
        ))
    };
    let expected = CALLS as f64;
    let deadline = Instant::now() + CALLS_TIMEOUT;
    loop {
        let (client, served) = moved(&metrics::scrape(port)?)?;
        if client >= expected && served >= expected {
            break;
        }
        if Instant::now() >= deadline {
            bail!(
                "after {CALLS_TIMEOUT:?} the call counters moved by {client} (client) and {served} \
                 (server), not {CALLS}; the agent's log:\n{}",
                agent.log()
            );
        }
        thread::sleep(PUBLISH_INTERVAL / 4);
    }
    // Two more publications: nothing more may come, a call counted twice would show now.
    thread::sleep(PUBLISH_INTERVAL * 2);
    let after = metrics::scrape(port)?;
    let (client, served) = moved(&after)?;
    ensure!(
        client == expected && served == expected,
        "the call counters moved by {client} (client) and {served} (server), not exactly \
         {CALLS}:\n{after}"
    );
    for series in [
        r#"observer_events_received_total{kind="data"}"#,
        "observer_captured_bytes_total",
        "observer_connections_opened_total",
    ] {
        let grown = required(&after, series)? - required(&before, series)?;
        ensure!(
            grown > 0.0,
            "{series} did not grow with the calls:\n{after}"
        );
    }
    ensure!(
        !after.contains("hello"),
        "a path from the traffic is in the metrics:\n{after}"
    );

    // Elsewhere: 404. Garbage: 400, and the endpoint still serves.
    let other = metrics::get(port, "/")?;
    ensure!(other.status == 404, "GET / answered {}", other.status);
    let garbage = metrics::request(port, b"\x16\x03\x01\x00\xff not http at all\r\n\r\n")?;
    ensure!(garbage.status == 400, "garbage answered {}", garbage.status);
    metrics::scrape(port)?;

    let stopped = agent.stop()?;
    let reported = stopped
        .calls
        .iter()
        .filter(|c| c.path() == Some("/hello.txt"))
        .count();
    ensure!(
        reported == 2 * CALLS,
        "the output has {reported} calls to /hello.txt, the metrics {} (both sides)",
        2 * CALLS
    );
    Ok(())
}

#[test]
fn a_taken_metrics_address_stops_the_agent_naming_it() -> anyhow::Result<()> {
    require_root()?;
    let taken = TcpListener::bind(metrics::address(0))?;
    let listen = taken.local_addr()?.to_string();
    let state = TempDir::new("agent")?;
    let mut command = agent::command()?;
    command
        .args(["run", "--duration", "5", "--metrics-listen", &listen])
        .arg("--state-dir")
        .arg(state.join("state"));
    let mut process = Spawned::start("observer run", &mut command)?;
    process.close_stdin();
    let finished = process.wait(STOP_TIMEOUT)?;
    ensure!(
        !finished.status.success(),
        "the agent started although {listen} is taken; it said:\n{}",
        finished.stderr
    );
    ensure!(
        finished
            .stderr
            .contains(&format!("cannot serve metrics on {listen}")),
        "the agent's error does not name {listen}:\n{}",
        finished.stderr
    );
    Ok(())
}

/// Prometheus starts, scrapes once a second and answers queries within seconds here; this is
/// slack for a loaded machine.
const PROMETHEUS_TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn prometheus_scrapes_the_agent_and_reads_the_same_counts() -> anyhow::Result<()> {
    let promtool = require(PROMTOOL)?;
    let prometheus = require(PROMETHEUS)?;
    let (server, agent, port) = observed_server()?;
    let listen = metrics::address(port).to_string();
    for _ in 0..CALLS {
        let client = curl(&[&server.url("/hello.txt")])?;
        ensure!(client.stdout == HELLO, "curl got {:?}", client.stdout);
    }
    let deadline = Instant::now() + CALLS_TIMEOUT;
    let exposition = loop {
        let exposition = metrics::scrape(port)?;
        if required(&exposition, SERVER_COMPLETE)? >= CALLS as f64 {
            break exposition;
        }
        if Instant::now() >= deadline {
            bail!(
                "after {CALLS_TIMEOUT:?} the metrics do not count {CALLS} served calls:\n{exposition}\nthe agent's log:\n{}",
                agent.log()
            );
        }
        thread::sleep(PUBLISH_INTERVAL / 4);
    };

    // Prometheus's own linter on the exposition as scraped.
    let mut check = Spawned::start(
        "promtool check metrics",
        Command::new(&promtool).args(["check", "metrics"]),
    )?;
    for line in exposition.lines() {
        check.send_line(line)?;
    }
    check.close_stdin();
    let checked = check.wait(STOP_TIMEOUT)?;
    ensure!(
        checked.status.success() && checked.stdout.trim().is_empty(),
        "promtool finds fault with the exposition ({}):\n{}{}",
        checked.status,
        checked.stdout,
        checked.stderr
    );

    // Prometheus scraping the agent, queried through its HTTP API.
    let dir = TempDir::new("prometheus")?;
    let config = dir.join("prometheus.yml");
    fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: observer\n    \
             static_configs:\n      - targets: ['{listen}']\n"
        ),
    )?;
    let web_port = free_port()?;
    let mut command = Command::new(&prometheus);
    command
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{web_port}"));
    let mut running = Spawned::start("prometheus", &mut command)?;
    let expected = required(&exposition, SERVER_COMPLETE)?;
    let deadline = Instant::now() + PROMETHEUS_TIMEOUT;
    loop {
        let up = query(web_port, r#"up{job="observer"}"#);
        let served = query(web_port, SERVER_COMPLETE);
        if let (Ok(Some(1.0)), Ok(Some(served))) = (&up, &served) {
            ensure!(
                *served == expected,
                "Prometheus reads {served} served calls, the endpoint said {expected}"
            );
            break;
        }
        if Instant::now() >= deadline {
            bail!(
                "after {PROMETHEUS_TIMEOUT:?} Prometheus has not scraped the agent: up {up:?}, \
                 served calls {served:?}; Prometheus said:\n{}",
                running.describe()
            );
        }
        thread::sleep(PUBLISH_INTERVAL / 2);
    }
    drop(running);
    agent.stop()?;
    Ok(())
}

/// The value of an instant `expression` in Prometheus on `port`: `None` while it has no sample.
fn query(port: u16, expression: &str) -> anyhow::Result<Option<f64>> {
    let encoded: String = expression
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    // HTTP/1.0: Prometheus then answers without chunks and closes, and the answer is read to
    // its end.
    let response = metrics::request(
        port,
        format!("GET /api/v1/query?query={encoded} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n")
            .as_bytes(),
    )?;
    ensure!(
        response.status == 200,
        "Prometheus answered {} to {expression}: {}",
        response.status,
        response.body
    );
    let answer: serde_json::Value = serde_json::from_str(&response.body)
        .with_context(|| format!("Prometheus's answer is not JSON: {}", response.body))?;
    let Some(sample) = answer["data"]["result"].get(0) else {
        return Ok(None);
    };
    let value = sample["value"][1]
        .as_str()
        .with_context(|| format!("no value in {sample}"))?;
    Ok(Some(value.parse()?))
}
