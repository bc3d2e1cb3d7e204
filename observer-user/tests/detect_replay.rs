//! Attack detection wired into `observer replay`, without root: the binary replays a packet
//! capture (written here, one TCP connection carrying an SQL injection probe) with a config
//! file, and the probe must come out as an `api.finding` on the output stream, stored in the
//! state directory for `observer findings`; a config file with a mistake must stop the agent
//! before it starts, saying what is wrong.
//!
//! `tests/tests/detect_attacks.rs` (privileged) does the same live, against a real server,
//! with behaviour detectors too.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use serde_json::Value;

const CLIENT: [u8; 4] = [10, 1, 1, 7];
const SERVER: [u8; 4] = [10, 1, 1, 1];
const CLIENT_PORT: u16 = 40_000;
const SERVER_PORT: u16 = 8080;

/// pcap's link type for packets that start at the IP header.
const LINKTYPE_RAW: u32 = 101;

const TCP_SYN: u8 = 0x02;
const TCP_ACK: u8 = 0x10;
const TCP_PSH_ACK: u8 = 0x18;
const TCP_FIN_ACK: u8 = 0x11;

const PROBE: &str = "GET /api/search?q=1%27%20UNION%20SELECT%20username%2C%20password%20FROM%20users-- HTTP/1.1\r\nHost: shop\r\n\r\n";
const RESPONSE: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]";

fn observer() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_observer"));
    command.env_remove("OBSERVER_LOG");
    command
}

/// A scratch directory holding the capture and a config file with `config` in it: (directory,
/// capture, config file).
fn setup(name: &str, config: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("observer-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("scratch directory");
    let capture = dir.join("probe.pcap");
    write_capture(&capture);
    let config_file = dir.join("observer.yaml");
    fs::write(&config_file, config).expect("config");
    (dir, capture, config_file)
}

/// One IPv4/TCP packet from `from` to `to` (checksums left zero: nothing here checks them).
fn packet(
    from: ([u8; 4], u16),
    to: ([u8; 4], u16),
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let total = u16::try_from(40 + payload.len()).expect("a small packet");
    let mut p = vec![0x45, 0];
    p.extend(total.to_be_bytes());
    p.extend([0, 0, 0x40, 0, 64, 6, 0, 0]);
    p.extend(from.0);
    p.extend(to.0);
    p.extend(from.1.to_be_bytes());
    p.extend(to.1.to_be_bytes());
    p.extend(seq.to_be_bytes());
    p.extend(ack.to_be_bytes());
    p.extend([5 << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
    p.extend(payload);
    p
}

/// A classic pcap file of one connection: handshake, the probe, its answer, the close.
fn write_capture(path: &Path) {
    let client = (CLIENT, CLIENT_PORT);
    let server = (SERVER, SERVER_PORT);
    let (c, s) = (1_000u32, 5_000u32);
    let request_end = c + 1 + PROBE.len() as u32;
    let response_end = s + 1 + RESPONSE.len() as u32;
    let packets = [
        packet(client, server, c, 0, TCP_SYN, b""),
        packet(server, client, s, c + 1, TCP_SYN | TCP_ACK, b""),
        packet(client, server, c + 1, s + 1, TCP_ACK, b""),
        packet(client, server, c + 1, s + 1, TCP_PSH_ACK, PROBE.as_bytes()),
        packet(
            server,
            client,
            s + 1,
            request_end,
            TCP_PSH_ACK,
            RESPONSE.as_bytes(),
        ),
        packet(client, server, request_end, response_end, TCP_FIN_ACK, b""),
        packet(
            server,
            client,
            response_end,
            request_end + 1,
            TCP_FIN_ACK,
            b"",
        ),
    ];
    let mut file = Vec::new();
    file.extend(0xa1b2_c3d4u32.to_le_bytes());
    file.extend(2u16.to_le_bytes());
    file.extend(4u16.to_le_bytes());
    file.extend([0u8; 8]);
    file.extend(65_535u32.to_le_bytes());
    file.extend(LINKTYPE_RAW.to_le_bytes());
    // 2026-11-28T00:00:00Z, a millisecond apart.
    for (i, data) in packets.iter().enumerate() {
        let len = data.len() as u32;
        file.extend(1_795_824_000u32.to_le_bytes());
        file.extend((i as u32 * 1_000).to_le_bytes());
        file.extend(len.to_le_bytes());
        file.extend(len.to_le_bytes());
        file.extend(data);
    }
    fs::write(path, file).expect("write the capture");
}

fn run(command: &mut Command) -> Output {
    command.output().expect("observer runs")
}

fn lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

fn findings_of(events: &[Value], kind: &str) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["event.name"] == "api.finding" && e["finding.kind"] == kind)
        .cloned()
        .collect()
}

#[test]
fn a_replayed_probe_is_reported_stored_and_listed() {
    let (dir, capture, config) = setup("detect-replay", "detect:\n  learning_period: 10m\n");
    let state = dir.join("state");

    let replayed = run(observer()
        .arg("replay")
        .arg(&capture)
        .arg("--config")
        .arg(&config)
        .arg("--state-dir")
        .arg(&state));
    assert!(replayed.status.success(), "{replayed:?}");
    let events = lines(&replayed);
    let probes = findings_of(&events, "sql_injection");
    assert_eq!(probes.len(), 1, "{events:#?}");
    let probe = &probes[0];
    assert_eq!(probe["owasp.category"], "API8:2023", "{probe}");
    assert_eq!(probe["client.address"], "10.1.1.7", "{probe}");
    assert_eq!(probe["http.route"], "/api/search", "{probe}");
    assert!(
        probe["finding.reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{probe}"
    );
    assert!(
        probe["evidence"].to_string().contains("UNION SELECT"),
        "{probe}"
    );
    // The call itself is still on the stream, beside its finding.
    assert!(
        events.iter().any(|e| e["event.name"] == "api.call"),
        "{events:#?}"
    );

    let listed = run(observer()
        .args(["findings", "--format", "json", "--state-dir"])
        .arg(&state));
    assert!(listed.status.success(), "{listed:?}");
    assert_eq!(
        findings_of(&lines(&listed), "sql_injection").len(),
        1,
        "{listed:?}"
    );

    // The older spelling reads the same file: detection off means no finding.
    fs::write(&config, "detect:\n  enabled: false\n").expect("config");
    let off = run(observer()
        .arg("replay")
        .arg(&capture)
        .arg("--policy")
        .arg(&config));
    assert!(off.status.success(), "{off:?}");
    assert!(
        findings_of(&lines(&off), "sql_injection").is_empty(),
        "{off:?}"
    );
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn a_config_mistake_stops_the_agent_and_says_what_to_fix() {
    let (dir, capture, config) = setup("detect-bad-config", "detect:\n  disabled: [bolla]\n");
    let refused = run(observer()
        .arg("replay")
        .arg(&capture)
        .arg("--config")
        .arg(&config));
    assert!(!refused.status.success(), "{refused:?}");
    let said = String::from_utf8_lossy(&refused.stderr);
    for expected in ["observer.yaml", "bolla", "bola", "detect"] {
        assert!(said.contains(expected), "{expected:?} in {said}");
    }
    assert!(refused.stdout.is_empty(), "nothing replayed: {refused:?}");
    let _ = fs::remove_dir_all(dir);
}
