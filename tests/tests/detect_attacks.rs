//! Attack detection end to end, as root: the real agent watches a real API (a few lines of
//! Python's http.server with JWT logins and per-user items) while benign users teach it what
//! normal looks like, then three attackers strike from their own addresses:
//!
//! - a BOLA walk: mallory reads item ids 1..N in order, a mix of 200 (hers) and 403;
//! - a brute-force burst: logins as `admin` with a new password each time, all 401;
//! - an SQL injection probe in a search parameter.
//!
//! Each must be reported exactly once on the output stream as `api.finding`, with its OWASP
//! category, the attacker's address as the caller and the route as the endpoint; no benign
//! user may be reported; and `observer findings` must list the three from the state directory.
//!
//! The config file shortens the learning period to seconds (the default is an hour); waits are
//! on what the agent wrote, with timeouts, never on sleeps.

use std::{collections::BTreeMap, process::Command, time::Duration};

use anyhow::{ensure, Context, Result};
use observer_tests::{
    agent::{command, Agent},
    calls::{parse_events, Call},
    process::Spawned,
    python,
    tempdir::TempDir,
};
use serde_json::Value;

const SERVER_SCRIPT: &str = include_str!("../src/python/detect_api.py");
const CLIENT_SCRIPT: &str = include_str!("../src/python/detect_client.py");

/// The route the walk is on: given to the agent with `--route` so templating does not depend
/// on how many ids the warm-up happened to use.
const ITEMS_ROUTE: &str = "/api/items/{id}";

/// How long endpoints are watched before the behaviour detectors compare with them: the
/// config file's `learning_period`, instead of the default hour.
const LEARNING_SECS: u64 = 2;

/// Benign traffic lasts past the learning period, so every endpoint is learnt (in traffic
/// time, which is what the detector counts) before the first attack.
const WARMUP: Duration = Duration::from_secs(LEARNING_SECS + 2);

/// Ids the walk reads: past the BOLA floor for one minute (15 distinct ids, doubled while an
/// endpoint has fewer than five callers to compare with), below the rate detector's floor
/// for ten seconds (40 calls), so the walk is a walk and not also a flood.
const WALK_IDS: usize = 36;

/// Refused logins: past the burst limit for one minute (10, with at least 5 distinct
/// credentials).
const BRUTE_FORCE_ATTEMPTS: usize = 20;

/// A phase of the client: warm-up takes WARMUP; an attack is a few dozen calls on loopback.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// `observer findings`, reading the state directory.
const FINDINGS_TIMEOUT: Duration = Duration::from_secs(10);

const BENIGN: [&str; 3] = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];
const BOLA_CALLER: &str = "127.0.0.5";
const BRUTE_FORCE_CALLER: &str = "127.0.0.6";
const SQLI_CALLER: &str = "127.0.0.7";

/// What one finding must say.
struct Expected {
    kind: &'static str,
    owasp: &'static str,
    caller: &'static str,
    route: &'static str,
}

const EXPECTED: [Expected; 3] = [
    Expected {
        kind: "bola",
        owasp: "API1:2023",
        caller: BOLA_CALLER,
        route: ITEMS_ROUTE,
    },
    Expected {
        kind: "auth_failure_burst",
        owasp: "API2:2023",
        caller: BRUTE_FORCE_CALLER,
        route: "/api/login",
    },
    Expected {
        kind: "sql_injection",
        owasp: "API8:2023",
        caller: SQLI_CALLER,
        route: "/api/search",
    },
];

/// Run one phase of `detect_client.py`; the statuses it got, by caller address.
fn client(port: u16, phase: &str, extra: &[&str]) -> Result<BTreeMap<String, Value>> {
    let python = python()?;
    let finished = Spawned::run(
        &format!("detect client ({phase})"),
        Command::new(&python.path)
            .args([
                "-c",
                CLIENT_SCRIPT,
                "--port",
                &port.to_string(),
                "--phase",
                phase,
            ])
            .args(extra),
        CLIENT_TIMEOUT,
    )?;
    serde_json::from_str(finished.stdout.trim())
        .with_context(|| format!("the client said {:?}", finished.stdout))
}

/// Calls the client made, all callers together.
fn calls_made(made: &BTreeMap<String, Value>) -> u64 {
    made.values()
        .filter_map(Value::as_object)
        .flat_map(|statuses| statuses.values())
        .filter_map(Value::as_u64)
        .sum()
}

/// Server-side calls the agent reported from `address`.
fn served_from(events: &[Call], address: &str) -> u64 {
    events
        .iter()
        .filter(|e| e.str("event.name") == Some("api.call"))
        .filter(|e| e.role() == Some("server") && e.str("client.address") == Some(address))
        .count() as u64
}

/// Attack detection's findings (sensitive-data findings, about the tokens and passwords these
/// calls carry over plaintext, share the stream and are left out).
fn attack_findings(events: &[Call]) -> Vec<&Call> {
    events
        .iter()
        .filter(|e| e.str("event.name") == Some("api.finding"))
        .filter(|e| e.str("finding.kind") != Some("sensitive_data"))
        .collect()
}

#[test]
fn bola_walk_brute_force_and_sql_injection_are_each_reported_once() -> Result<()> {
    let python = python()?;
    let mut server = Spawned::start(
        "detect api",
        Command::new(&python.path).args(["-c", SERVER_SCRIPT]),
    )?;
    let line = server.next_line(observer_tests::servers::SERVER_START_TIMEOUT)?;
    let port: u16 = line
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("the API said {line:?} instead of its port"))?;

    let dir = TempDir::new("detect")?;
    let config = dir.write(
        "observer.yaml",
        format!("detect:\n  learning_period: {LEARNING_SECS}s\n  learning_min_calls: 20\n"),
    )?;
    let state = dir.join("state");
    let port_arg = port.to_string();
    let (config, state) = (config.display().to_string(), state.display().to_string());
    let mut agent = Agent::start(&[
        "--port",
        &port_arg,
        "--config",
        &config,
        "--state-dir",
        &state,
        "--route",
        ITEMS_ROUTE,
    ])?;

    // Benign users first, until the agent has seen every call they made.
    let warmup = client(
        port,
        "warmup",
        &["--seconds", &WARMUP.as_secs().to_string()],
    )?;
    for address in BENIGN {
        let made = warmup.get(address).map_or(0, |s| {
            s.as_object()
                .map_or(0, |s| s.values().filter_map(Value::as_u64).sum())
        });
        ensure!(
            made > 20,
            "the warm-up made only {made} calls from {address}"
        );
    }
    let warmup_calls = calls_made(&warmup);
    agent.wait_until_events("the warm-up's calls, served", |events| {
        BENIGN.iter().map(|a| served_from(events, a)).sum::<u64>() >= warmup_calls
    })?;

    // Then the attacks, each from its own address; wait until the agent served them all, so
    // every finding they could cause is written.
    let walk = client(port, "bola", &["--count", &WALK_IDS.to_string()])?;
    let burst = client(
        port,
        "brute-force",
        &["--count", &BRUTE_FORCE_ATTEMPTS.to_string()],
    )?;
    let probe = client(port, "sqli", &[])?;
    let attacks = [
        (BOLA_CALLER, calls_made(&walk)),
        (BRUTE_FORCE_CALLER, calls_made(&burst)),
        (SQLI_CALLER, calls_made(&probe)),
    ];
    ensure!(
        walk[BOLA_CALLER].get("403").is_some() && walk[BOLA_CALLER].get("200").is_some(),
        "the walk should mix 200 and 403: {walk:?}"
    );
    let events = agent.wait_until_events("the attacks' calls, served", |events| {
        attacks
            .iter()
            .all(|(address, made)| served_from(events, address) >= *made)
    })?;

    let findings = attack_findings(&events);
    let listing = || {
        findings
            .iter()
            .map(|f| format!("  {f}\n"))
            .collect::<String>()
    };
    for expected in &EXPECTED {
        let reported: Vec<&&Call> = findings
            .iter()
            .filter(|f| f.str("finding.kind") == Some(expected.kind))
            .collect();
        ensure!(
            reported.len() == 1,
            "{} should be reported exactly once, not {} times; the attack findings:\n{}",
            expected.kind,
            reported.len(),
            listing()
        );
        let finding = reported[0];
        for (field, want) in [
            ("owasp.category", expected.owasp),
            ("client.address", expected.caller),
            ("http.route", expected.route),
            ("http.request.method", "GET"),
            ("server.address", "127.0.0.1"),
        ] {
            ensure!(
                finding.str(field) == Some(want),
                "{}: {field} should be {want}: {finding}",
                expected.kind
            );
        }
        ensure!(
            finding.u64("server.port") == Some(u64::from(port)),
            "{}: the server's port should be {port}: {finding}",
            expected.kind
        );
        ensure!(
            !finding.str("finding.reason").unwrap_or("").is_empty(),
            "{}: a finding says why it fired: {finding}",
            expected.kind
        );
    }
    let bola = findings
        .iter()
        .find(|f| f.str("finding.kind") == Some("bola"))
        .context("bola")?;
    ensure!(
        bola.str("enduser.id") == Some("mallory"),
        "the walk's finding should name the token's subject: {bola}"
    );
    let about_benign: Vec<&&Call> = findings
        .iter()
        .filter(|f| BENIGN.contains(&f.str("client.address").unwrap_or("")))
        .collect();
    ensure!(
        about_benign.is_empty(),
        "benign users were reported: {about_benign:?}"
    );
    let sqli = findings
        .iter()
        .find(|f| f.str("finding.kind") == Some("sql_injection"))
        .context("sql_injection")?;
    ensure!(
        sqli.0["evidence"].to_string().contains("UNION SELECT"),
        "the probe's finding should show the payload: {sqli}"
    );

    // The state directory has them too, for `observer findings`, once the agent has stopped
    // (it writes what is pending as it stops).
    agent.stop()?;
    let listed = Spawned::run(
        "observer findings",
        command()?.args(["findings", "--format", "json", "--state-dir", &state]),
        FINDINGS_TIMEOUT,
    )?;
    let stored = parse_events(&listed.stdout)?;
    for expected in &EXPECTED {
        let rows: Vec<&Call> = stored
            .iter()
            .filter(|f| f.str("finding.kind") == Some(expected.kind))
            .collect();
        ensure!(
            rows.len() == 1 && rows[0].str("client.address") == Some(expected.caller),
            "`observer findings` should list {} once, from {}: {}",
            expected.kind,
            expected.caller,
            listed.stdout
        );
    }
    let table = Spawned::run(
        "observer findings",
        command()?.args(["findings", "--state-dir", &state]),
        FINDINGS_TIMEOUT,
    )?;
    ensure!(
        table.stdout.contains("Attacks and anomalies") && table.stdout.contains("API1:2023"),
        "the table should list the attacks under their heading: {}",
        table.stdout
    );
    Ok(())
}
