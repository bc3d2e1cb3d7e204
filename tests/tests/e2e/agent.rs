//! The agent as a program: it does not watch itself, cleans up after Ctrl-C, refuses to run
//! twice, replays its recordings faithfully, and filters by process name.

use std::{collections::BTreeSet, time::Duration};

use anyhow::{ensure, Context};
use observer_tests::{
    agent::{self, ALREADY_RUNNING},
    bpf::{self, Snapshot},
    calls::{self, parse_calls},
    curl,
    process::Spawned,
    python,
    tempdir::TempDir,
    Agent, Expect, PythonServer, Site,
};

const HELLO: &str = "hello from observer's end-to-end tests\n";

/// A second agent fails in its preflight checks, before loading anything.
const SECOND_AGENT_TIMEOUT: Duration = Duration::from_secs(15);

/// Replaying a recording of a few calls takes milliseconds.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(15);

fn hello_server() -> anyhow::Result<PythonServer> {
    PythonServer::start(Site::new()?.file("hello.txt", HELLO)?)
}

/// Without any filter the agent sees every process on the host but its own, and after Ctrl-C
/// no program, link, map or uprobe of its remains in the kernel.
#[test]
fn agent_ignores_itself_and_leaves_nothing_behind() -> anyhow::Result<()> {
    let server = hello_server()?;
    let before = Snapshot::take()?;
    let uprobes_before = bpf::uprobe_events()?;

    let mut agent = Agent::start(&[])?;
    let agent_pid = agent.pid();
    let during = Snapshot::take()?;
    let programs = during.new_agent_programs(&before);
    let names: BTreeSet<&str> = programs.iter().map(|p| p.name.as_str()).collect();
    // Without these the checks after stopping would prove nothing.
    for wanted in ["syscall_exit_read", "openssl_enter_ssl_read"] {
        ensure!(
            names.iter().any(|n| wanted.starts_with(n) && n.len() >= wanted.len().min(15)),
            "while the agent runs, bpftool should list its program {wanted}; new programs named like ours: {names:?}"
        );
    }
    let links = during.links_to(&programs);
    ensure!(
        !links.is_empty(),
        "while the agent runs, bpftool should list links to its programs: {programs:?}"
    );
    let map_ids: BTreeSet<u64> = programs
        .iter()
        .flat_map(|p| p.map_ids.iter().copied())
        .collect();

    let client = curl(&[&server.url("/hello.txt")])?;
    agent.wait_for(&[&Expect::client()
        .get("/hello.txt", 200)
        .process("curl", client.pid)])?;
    let stopped = agent.stop()?;

    let own: Vec<_> = stopped
        .calls
        .iter()
        .filter(|c| c.pid() == Some(u64::from(agent_pid)))
        .collect();
    ensure!(
        own.is_empty()
            && !stopped
                .calls
                .iter()
                .any(|c| c.executable_name() == Some("observer")),
        "the agent (pid {agent_pid}) reported its own traffic; all calls:\n{}",
        calls::list(&stopped.calls)
    );

    let after = Snapshot::take()?;
    let ids: BTreeSet<u64> = programs.iter().map(|p| p.id).collect();
    let left: Vec<_> = after
        .programs
        .iter()
        .filter(|p| ids.contains(&p.id))
        .collect();
    ensure!(
        left.is_empty(),
        "programs left loaded after Ctrl-C: {left:?}"
    );
    let named = after.new_agent_programs(&before);
    ensure!(
        named.is_empty(),
        "programs named like the agent's are loaded after Ctrl-C: {named:?}"
    );
    let left_links = after.links_to(&programs);
    ensure!(
        left_links.is_empty(),
        "links left after Ctrl-C: {left_links:?}"
    );
    let left_maps: Vec<_> = map_ids.intersection(&after.map_ids).collect();
    ensure!(
        left_maps.is_empty(),
        "maps of the agent's programs left after Ctrl-C: ids {left_maps:?}"
    );
    let uprobes_after = bpf::uprobe_events()?;
    let new_uprobes: Vec<_> = uprobes_after.difference(&uprobes_before).collect();
    ensure!(
        new_uprobes.is_empty(),
        "uprobes left in {} after Ctrl-C: {new_uprobes:?}",
        bpf::UPROBE_EVENTS
    );
    Ok(())
}

#[test]
fn a_second_agent_is_refused_and_the_first_keeps_working() -> anyhow::Result<()> {
    let server = hello_server()?;
    let port = server.port().to_string();
    let mut first = Agent::start(&["--port", &port])?;

    let dir = TempDir::new("second-agent")?;
    let mut command = agent::command()?;
    command
        .args(["run", "--port", &port, "--output"])
        .arg(dir.join("calls.jsonl"));
    let mut second = Spawned::start("second observer run", &mut command)?;
    second.close_stdin();
    let finished = second
        .wait(SECOND_AGENT_TIMEOUT)
        .context("a second agent should refuse to start, and exit")?;
    ensure!(
        !finished.status.success(),
        "a second agent should fail, it exited with {}",
        finished.status
    );
    ensure!(
        finished.stderr.contains(ALREADY_RUNNING) && finished.stderr.contains(&first.pid().to_string()),
        "the second agent should say another is {ALREADY_RUNNING:?} and name its pid {}; it said:\n{}",
        first.pid(),
        finished.stderr
    );

    let client = curl(&[&server.url("/hello.txt")])?;
    first.wait_for(&[&Expect::client()
        .get("/hello.txt", 200)
        .process("curl", client.pid)
        .body_prefix(HELLO)])?;
    first.stop()?;
    Ok(())
}

#[test]
fn a_replayed_recording_gives_the_live_calls() -> anyhow::Result<()> {
    let python = python()?;
    let server = hello_server()?;
    let port = server.port().to_string();
    let dir = TempDir::new("recording")?;
    let recording = dir.join("events.rec");
    let recording_arg = recording.to_str().context("temporary paths are UTF-8")?;
    let mut agent = Agent::start(&["--port", &port, "--record", recording_arg])?;

    let found = curl(&[&server.url("/hello.txt")])?;
    let missing = curl(&[&server.url("/missing.txt")])?;
    let expected = [
        Expect::client()
            .get("/hello.txt", 200)
            .process("curl", found.pid)
            .body_prefix(HELLO),
        Expect::server()
            .get("/hello.txt", 200)
            .process(&python.executable_name, server.pid())
            .body_prefix(HELLO),
        Expect::client()
            .get("/missing.txt", 404)
            .process("curl", missing.pid),
        Expect::server()
            .get("/missing.txt", 404)
            .process(&python.executable_name, server.pid()),
    ];
    agent.wait_for(&expected.iter().collect::<Vec<_>>())?;
    let live = agent.stop()?.calls;

    let replayed_path = dir.join("replayed.jsonl");
    let mut command = agent::command()?;
    command
        .arg("replay")
        .arg(&recording)
        .args(["--format", "json", "--port", &port, "--output"])
        .arg(&replayed_path);
    Spawned::run("observer replay", &mut command, REPLAY_TIMEOUT)?;
    let replayed = parse_calls(
        &std::fs::read_to_string(&replayed_path).context("the replay wrote no output")?,
    )?;

    let mut live_ids: Vec<_> = live.iter().map(|c| c.identity()).collect();
    let mut replayed_ids: Vec<_> = replayed.iter().map(|c| c.identity()).collect();
    live_ids.sort();
    replayed_ids.sort();
    ensure!(
        live_ids == replayed_ids,
        "the replay should give the live calls (method, path, status, role, pid)\nlive:\n{}replayed:\n{}",
        calls::list(&live),
        calls::list(&replayed)
    );
    Ok(())
}

#[test]
fn comm_filter_keeps_only_that_process() -> anyhow::Result<()> {
    let server = hello_server()?;
    // No port filter: the process name alone must exclude the python server's side.
    let mut agent = Agent::start(&["--comm", "curl"])?;

    let client = curl(&[&server.url("/hello.txt")])?;
    agent.wait_for(&[&Expect::client()
        .get("/hello.txt", 200)
        .process("curl", client.pid)
        .body_prefix(HELLO)])?;
    let stopped = agent.stop()?;

    ensure!(
        stopped
            .calls
            .iter()
            .all(|c| c.executable_name() == Some("curl") && c.role() == Some("client")),
        "--comm curl should report only curl's (client-side) calls; all calls:\n{}",
        calls::list(&stopped.calls)
    );
    Ok(())
}
