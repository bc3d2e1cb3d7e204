//! Golden tests for the HTTP/1 parsers and the pairing stage, on recorded bytes.
//!
//! Each directory under `tests/fixtures/http1/` is one case:
//!
//! - `request.bin`, `response.bin`: the bytes of each direction, as sent (either may be absent).
//! - `turns` (optional): the order in which `conn` delivers them, one line a segment:
//!   `request 120` (the next 120 bytes of `request.bin`), `response rest`, or
//!   `request gap 40` (the next 40 bytes are lost and delivered as a hole). `#` starts a
//!   comment. Without it, all of the request side comes first, then all of the response side.
//!   Turn `i` (from 1) happens at time `1000 * i`; the connection closes after the last one.
//! - `limits` (optional): `ParserLimits` fields to change, one `name value` a line.
//! - `expected.json`: the events the session reports, in a stable, readable form.
//!
//! Every case is fed as its turns, then with one data turn split in two at every byte
//! boundary, then one byte at a time: all must give the same events. On a mismatch with
//! `expected.json`, the actual output is written beside it as `expected.json.actual`. With
//! `UPDATE_GOLDEN=1`, expected files are rewritten instead (review every change by hand).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use observer::pairing::{ExchangeStatus, Http1Session, HttpExchange, SessionEvent, Side};
use observer::protocol::http1::{Body, Headers, Message, ParserLimits, RequestHead, ResponseHead};
use observer::protocol::Segment;
use serde_json::{json, Value};

/// Streams longer than this are split at sampled positions only (the first and last 4 KiB, and
/// every 4093rd byte between): splitting a 1 MiB body at every byte would take hours.
const SPLIT_EVERY_BYTE_UP_TO: usize = 64 * 1024;

/// Captured body bytes shown in full; longer captures show their start and their length.
const SHOWN_BODY_BYTES: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TurnKind {
    Data,
    Gap,
}

#[derive(Clone, Copy, Debug)]
struct Turn {
    side: Side,
    kind: TurnKind,
    /// Where the turn's bytes begin in its side's file, and how many there are.
    from: usize,
    len: usize,
    /// When the turn happened; the pieces of a split turn keep it.
    ts_ns: u64,
}

struct Case {
    name: String,
    dir: PathBuf,
    request: Vec<u8>,
    response: Vec<u8>,
    turns: Vec<Turn>,
    limits: ParserLimits,
}

#[test]
fn golden_cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/http1");
    let mut dirs: Vec<PathBuf> = fs::read_dir(&root)
        .expect("fixtures directory")
        .map(|entry| entry.expect("fixture entry").path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no fixtures under {}", root.display());

    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|value| value == "1");
    let mut failures = Vec::new();
    for dir in dirs {
        let case = load_case(&dir);
        if let Err(failure) = check_case(&case, update) {
            failures.push(format!("{}: {failure}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn check_case(case: &Case, update: bool) -> Result<(), String> {
    let whole = render(case, &case.turns);
    for (how, turns) in split_feeds(case) {
        let split = render(case, &turns);
        if split != whole {
            let actual = case.dir.join("split.json.actual");
            write_json(&actual, &split);
            write_json(&case.dir.join("expected.json.actual"), &whole);
            return Err(format!(
                "output fed {how} differs from output fed as turns: compare {} with {}",
                actual.display(),
                case.dir.join("expected.json.actual").display()
            ));
        }
    }
    let expected_path = case.dir.join("expected.json");
    if update {
        write_json(&expected_path, &whole);
        return Ok(());
    }
    let expected: Value = fs::read_to_string(&expected_path)
        .map_err(|error| format!("cannot read {}: {error}", expected_path.display()))
        .and_then(|text| {
            serde_json::from_str(&text).map_err(|error| format!("bad expected.json: {error}"))
        })?;
    if expected != whole {
        let actual = case.dir.join("expected.json.actual");
        write_json(&actual, &whole);
        return Err(format!(
            "differs from expected.json; actual output written to {} (diff them, and accept \
             with UPDATE_GOLDEN=1 only if the new output is right)",
            actual.display()
        ));
    }
    Ok(())
}

fn write_json(path: &Path, value: &Value) {
    let mut text = serde_json::to_string_pretty(value).expect("json");
    text.push('\n');
    fs::write(path, text).expect("write json");
}

/// The ways a case is fed besides as its turns, each with a description: split once at every
/// (or every sampled) byte boundary inside a data turn, and one byte at a time.
fn split_feeds(case: &Case) -> Vec<(String, Vec<Turn>)> {
    let mut feeds = Vec::new();
    for (index, turn) in case.turns.iter().enumerate() {
        if turn.kind != TurnKind::Data {
            continue;
        }
        for at in split_points(turn.len) {
            let mut turns = case.turns.clone();
            let first = Turn { len: at, ..*turn };
            let second = Turn {
                from: turn.from + at,
                len: turn.len - at,
                ..*turn
            };
            turns.splice(index..=index, [first, second]);
            feeds.push((
                format!("with turn {} split after {at} bytes", index + 1),
                turns,
            ));
        }
    }
    let bytewise = case
        .turns
        .iter()
        .flat_map(|turn| match turn.kind {
            TurnKind::Gap => vec![*turn],
            TurnKind::Data => (0..turn.len)
                .map(|at| Turn {
                    from: turn.from + at,
                    len: 1,
                    ..*turn
                })
                .collect(),
        })
        .collect();
    feeds.push(("one byte at a time".to_owned(), bytewise));
    feeds
}

fn split_points(len: usize) -> Vec<usize> {
    if len <= SPLIT_EVERY_BYTE_UP_TO {
        return (1..len).collect();
    }
    let edge = 4096;
    (1..edge)
        .chain((edge..len - edge).step_by(4093))
        .chain(len - edge..len)
        .collect()
}

/// Feeds a case to a session, turn by turn, then closes it.
fn render(case: &Case, turns: &[Turn]) -> Value {
    let mut session = Http1Session::new(case.limits);
    let mut events = Vec::new();
    for turn in turns {
        let ts_ns = turn.ts_ns;
        let segment = match turn.kind {
            TurnKind::Gap => Segment::Gap {
                len: turn.len as u64,
                ts_ns,
            },
            TurnKind::Data => {
                let file = match turn.side {
                    Side::Request => &case.request,
                    Side::Response => &case.response,
                };
                Segment::Data {
                    bytes: &file[turn.from..turn.from + turn.len],
                    ts_ns,
                }
            }
        };
        match turn.side {
            Side::Request => session.push_request_side(segment, &mut events),
            Side::Response => session.push_response_side(segment, &mut events),
        }
    }
    session.close(turn_time(case.turns.len()), &mut events);

    let stats = session.stats();
    json!({
        "events": events.iter().map(event_view).collect::<Vec<_>>(),
        "stats": {
            "request": format!("{:?}", stats.requests),
            "response": format!("{:?}", stats.responses),
            "unanswered_overflow": stats.unanswered_overflow,
        },
    })
}

fn event_view(event: &SessionEvent) -> Value {
    match event {
        SessionEvent::Exchange(exchange) => json!({ "exchange": exchange_view(exchange) }),
        SessionEvent::Error { side, error } => json!({
            "error": {
                "side": format!("{side:?}"),
                "kind": format!("{error:?}"),
                "message": error.to_string(),
            }
        }),
        SessionEvent::Tunnel { side, tunnel } => json!({
            "tunnel": {
                "side": format!("{side:?}"),
                "cause": format!("{:?}", tunnel.cause),
                "stream_offset": tunnel.stream_offset,
            }
        }),
    }
}

fn exchange_view(exchange: &HttpExchange) -> Value {
    let status = match exchange.status {
        ExchangeStatus::Complete => "complete",
        ExchangeStatus::RequestOnly => "request only",
        ExchangeStatus::ResponseOnly => "response only",
    };
    json!({
        "status": status,
        "request": exchange.request.as_ref().map(request_view),
        "interim": exchange.interim,
        "response": exchange.response.as_ref().map(response_view),
        "latency_ns": exchange.latency_ns(),
        "total_ns": exchange.total_ns(),
    })
}

fn request_view(message: &Message<RequestHead>) -> Value {
    let head = &message.head;
    let mut view = json!({
        "line": format!("{} {} {}", head.method, head.target, head.version.as_str()),
        "headers": headers_view(&head.headers),
    });
    add_message_fields(&mut view, message);
    view
}

fn response_view(message: &Message<ResponseHead>) -> Value {
    let head = &message.head;
    let mut view = json!({
        "line": format!("{} {} {}", head.version.as_str(), head.status, escape(&head.reason)),
        "headers": headers_view(&head.headers),
    });
    add_message_fields(&mut view, message);
    view
}

fn add_message_fields<H>(view: &mut Value, message: &Message<H>) {
    view["body"] = body_view(&message.body);
    view["complete"] = json!(message.complete);
    view["stream_offset"] = json!(message.stream_offset);
    view["first_byte_ts"] = json!(message.first_byte_ts_ns);
    view["last_byte_ts"] = json!(message.last_byte_ts_ns);
}

fn body_view(body: &Body) -> Value {
    let shown = &body.captured[..body.captured.len().min(SHOWN_BODY_BYTES)];
    let mut view = json!({
        "framing": format!("{:?}", body.framing),
        "size": body.size,
        "lost": body.lost,
        "truncated": body.is_truncated(),
        "captured_len": body.captured.len(),
        "captured": escape(shown),
    });
    if let Some(trailers) = &body.trailers {
        view["trailers"] = headers_view(trailers);
    }
    view
}

fn headers_view(headers: &Headers) -> Value {
    headers
        .iter()
        .map(|(name, value)| format!("{name}: {}", escape(value)))
        .collect()
}

/// Bytes as text: printable ASCII as is, anything else escaped.
fn escape(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    for &byte in bytes {
        match byte {
            b'\\' => text.push_str("\\\\"),
            b'\r' => text.push_str("\\r"),
            b'\n' => text.push_str("\\n"),
            b'\t' => text.push_str("\\t"),
            0x20..=0x7e => text.push(char::from(byte)),
            other => {
                let _ = write!(text, "\\x{other:02x}");
            }
        }
    }
    text
}

fn load_case(dir: &Path) -> Case {
    let name = dir
        .file_name()
        .and_then(|name| name.to_str())
        .expect("fixture name")
        .to_owned();
    let read = |file: &str| fs::read(dir.join(file)).unwrap_or_default();
    let request = read("request.bin");
    let response = read("response.bin");
    let turns = match fs::read_to_string(dir.join("turns")) {
        Ok(text) => parse_turns(&name, &text, request.len(), response.len()),
        Err(_) => [
            (Side::Request, request.len()),
            (Side::Response, response.len()),
        ]
        .into_iter()
        .filter(|&(_, len)| len > 0)
        .enumerate()
        .map(|(index, (side, len))| Turn {
            side,
            kind: TurnKind::Data,
            from: 0,
            len,
            ts_ns: turn_time(index),
        })
        .collect(),
    };
    let limits = match fs::read_to_string(dir.join("limits")) {
        Ok(text) => parse_limits(&name, &text),
        Err(_) => ParserLimits::default(),
    };
    Case {
        name,
        dir: dir.to_owned(),
        request,
        response,
        turns,
        limits,
    }
}

/// When the turn at `index` (from 0) happens.
fn turn_time(index: usize) -> u64 {
    1000 * (index as u64 + 1)
}

fn parse_turns(name: &str, text: &str, request_len: usize, response_len: usize) -> Vec<Turn> {
    let mut next = [0usize; 2];
    let mut turns = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let (side, index, total) = match words[0] {
            "request" => (Side::Request, 0, request_len),
            "response" => (Side::Response, 1, response_len),
            other => panic!("{name}/turns: unknown side {other:?}"),
        };
        let (kind, amount) = match words[1..] {
            ["gap", amount] => (TurnKind::Gap, amount),
            [amount] => (TurnKind::Data, amount),
            _ => panic!("{name}/turns: cannot read {line:?}"),
        };
        let len = match amount {
            "rest" => total - next[index],
            number => number
                .parse()
                .unwrap_or_else(|_| panic!("{name}/turns: bad length in {line:?}")),
        };
        assert!(
            next[index] + len <= total,
            "{name}/turns: {line:?} runs past the end of the file"
        );
        turns.push(Turn {
            side,
            kind,
            from: next[index],
            len,
            ts_ns: turn_time(turns.len()),
        });
        next[index] += len;
    }
    assert_eq!(
        next,
        [request_len, response_len],
        "{name}/turns: every byte must be delivered"
    );
    turns
}

fn parse_limits(name: &str, text: &str) -> ParserLimits {
    let mut limits = ParserLimits::default();
    for line in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
        let (field, value) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("{name}/limits: cannot read {line:?}"));
        let value: usize = value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}/limits: bad value in {line:?}"));
        match field {
            "max_head_bytes" => limits.max_head_bytes = value,
            "max_headers" => limits.max_headers = value,
            "max_body_capture" => limits.max_body_capture = value,
            "max_chunk_line_bytes" => limits.max_chunk_line_bytes = value,
            other => panic!("{name}/limits: unknown limit {other:?}"),
        }
    }
    limits
}
