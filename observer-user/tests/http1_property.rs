//! Property test: random valid HTTP/1.1 conversations, cut into random segments, read the same
//! as when fed whole, and read as what was written.
//!
//! A small seeded generator writes conversations (pipelined requests with and without bodies,
//! Content-Length and chunked framing with extensions and trailers, HEAD, 204 and 304, interim
//! responses, a last response read until close) together with what a correct reader must find
//! in them. Each conversation is fed three ways: each direction in one segment; each direction
//! cut at random places (single bytes included); and exchange by exchange, request then
//! response, cut at random places. The failing seed is printed, so a failure replays exactly.

use observer::pairing::{ExchangeStatus, Http1Session, HttpExchange, SessionEvent};
use observer::protocol::http1::{ParserLimits, DEFAULT_MAX_BODY_CAPTURE};
use observer::protocol::Segment;

/// Conversations tried. Each is fed several ways; a run takes about a second.
const CONVERSATIONS: u64 = 400;

/// Random cuttings tried per conversation and feeding order.
const CUTTINGS: usize = 4;

/// SplitMix64: small, seedable, and good enough to vary test input.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound`.
    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Up to `max_len` random bytes.
    fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        let len = self.below(max_len + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// A token of `min_len` to `max_len` characters.
    fn token(&mut self, min_len: usize, max_len: usize) -> String {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-";
        let len = min_len + self.below(max_len - min_len + 1);
        (0..len).map(|_| char::from(*self.pick(CHARS))).collect()
    }
}

/// What a correct reader must find in one exchange.
#[derive(Debug, PartialEq, Eq)]
struct Expected {
    method: String,
    target: String,
    request_body: Vec<u8>,
    interim: Vec<u16>,
    status: u16,
    response_body: Vec<u8>,
}

/// One generated conversation: the bytes of each exchange, and what they hold.
struct Conversation {
    /// Per exchange: request bytes, response bytes.
    exchanges: Vec<(Vec<u8>, Vec<u8>)>,
    expected: Vec<Expected>,
}

fn conversation(rng: &mut Rng) -> Conversation {
    let count = 1 + rng.below(6);
    let mut exchanges = Vec::new();
    let mut expected = Vec::new();
    for index in 0..count {
        let last = index + 1 == count;
        let method = *rng.pick(&[
            "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "PURGE",
        ]);
        let target = format!("/{}?n={index}", rng.token(1, 12));
        let mut request =
            format!("{method} {target} HTTP/1.1\r\nHost: example.test\r\n").into_bytes();
        add_fields(rng, &mut request);
        let request_body = if matches!(method, "POST" | "PUT" | "PATCH") || rng.chance(10) {
            let body = rng.bytes(299);
            write_body(rng, &mut request, &body, false);
            body
        } else {
            request.extend_from_slice(b"\r\n");
            Vec::new()
        };

        let mut response = Vec::new();
        let mut interim = Vec::new();
        for _ in 0..rng.below(3) {
            let status = *rng.pick(&[100u16, 102, 103]);
            interim.push(status);
            response.extend_from_slice(format!("HTTP/1.1 {status} Interim\r\n").as_bytes());
            add_fields(rng, &mut response);
            response.extend_from_slice(b"\r\n");
        }
        let status = *rng.pick(&[200u16, 201, 204, 301, 304, 404, 500]);
        response.extend_from_slice(
            format!("HTTP/1.1 {status} Reason {}\r\n", rng.token(3, 3)).as_bytes(),
        );
        add_fields(rng, &mut response);
        let bodiless = method == "HEAD" || status == 204 || status == 304;
        let response_body = if bodiless {
            // A length may still be announced; no body follows.
            if rng.chance(50) {
                let announced = rng.below(5000);
                response.extend_from_slice(format!("Content-Length: {announced}\r\n").as_bytes());
            }
            response.extend_from_slice(b"\r\n");
            Vec::new()
        } else {
            let body = rng.bytes(1999);
            write_body(rng, &mut response, &body, last);
            body
        };
        exchanges.push((request, response));
        expected.push(Expected {
            method: method.to_owned(),
            target,
            request_body,
            interim,
            status,
            response_body,
        });
    }
    Conversation {
        exchanges,
        expected,
    }
}

/// A few header fields of random names and values.
fn add_fields(rng: &mut Rng, head: &mut Vec<u8>) {
    for _ in 0..rng.below(4) {
        let field = format!("X-{}: {}\r\n", rng.token(1, 8), rng.token(0, 19));
        head.extend_from_slice(field.as_bytes());
    }
}

/// Ends a head and writes `body` after it, framed by length, chunked, or (for the last
/// response only) by the end of the connection.
fn write_body(rng: &mut Rng, message: &mut Vec<u8>, body: &[u8], may_read_until_close: bool) {
    match rng.below(if may_read_until_close { 3 } else { 2 }) {
        0 => {
            message.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
            message.extend_from_slice(body);
        }
        1 => {
            message.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            let mut rest = body;
            while !rest.is_empty() {
                let size = (1 + rng.below(400)).min(rest.len());
                let extension = if rng.chance(20) { ";ext=1" } else { "" };
                message.extend_from_slice(format!("{size:x}{extension}\r\n").as_bytes());
                message.extend_from_slice(&rest[..size]);
                message.extend_from_slice(b"\r\n");
                rest = &rest[size..];
            }
            message.extend_from_slice(b"0\r\n");
            if rng.chance(30) {
                message.extend_from_slice(b"X-Checksum: 1\r\n");
            }
            message.extend_from_slice(b"\r\n");
        }
        _ => {
            message.extend_from_slice(b"\r\n");
            message.extend_from_slice(body);
        }
    }
}

/// One direction's bytes cut at random places (single bytes included), or not at all.
fn cut<'a>(rng: &mut Rng, bytes: &'a [u8], whole: bool) -> Vec<&'a [u8]> {
    if whole {
        return vec![bytes];
    }
    let mut pieces = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let len = match rng.below(4) {
            0 => 1,
            1 => 1 + rng.below(8),
            _ => 1 + rng.below(400),
        }
        .min(rest.len());
        pieces.push(&rest[..len]);
        rest = &rest[len..];
    }
    pieces
}

/// Feeds a conversation. With `by_exchange`, each exchange's request then response, one turn
/// each; otherwise all requests, then all responses. Each turn is one segment when `whole`,
/// else cut at random places; every piece of a turn has the turn's time.
fn feed(
    rng: &mut Rng,
    conversation: &Conversation,
    by_exchange: bool,
    whole: bool,
) -> Vec<SessionEvent> {
    let limits = ParserLimits {
        max_body_capture: 4 * DEFAULT_MAX_BODY_CAPTURE,
        ..ParserLimits::default()
    };
    let mut session = Http1Session::new(limits);
    let mut events = Vec::new();
    let mut turns: Vec<(bool, Vec<u8>)> = Vec::new();
    if by_exchange {
        for (request, response) in &conversation.exchanges {
            turns.push((true, request.clone()));
            turns.push((false, response.clone()));
        }
    } else {
        turns.push((
            true,
            conversation
                .exchanges
                .iter()
                .flat_map(|(r, _)| r.clone())
                .collect(),
        ));
        turns.push((
            false,
            conversation
                .exchanges
                .iter()
                .flat_map(|(_, r)| r.clone())
                .collect(),
        ));
    }
    for (index, (is_request, bytes)) in turns.iter().enumerate() {
        let ts_ns = 1000 * (index as u64 + 1);
        for piece in cut(rng, bytes, whole) {
            let segment = Segment::Data {
                bytes: piece,
                ts_ns,
            };
            if *is_request {
                session.push_request_side(segment, &mut events);
            } else {
                session.push_response_side(segment, &mut events);
            }
        }
    }
    session.close(1000 * (turns.len() as u64 + 1), &mut events);
    events
}

/// What the session found, in the generator's terms; `Err` if it found anything but
/// complete exchanges.
fn found(events: &[SessionEvent]) -> Result<Vec<Expected>, String> {
    events
        .iter()
        .map(|event| match event {
            SessionEvent::Exchange(exchange) => describe(exchange),
            other => Err(format!("unexpected event {other:?}")),
        })
        .collect()
}

fn describe(exchange: &HttpExchange) -> Result<Expected, String> {
    let (Some(request), Some(response), ExchangeStatus::Complete) =
        (&exchange.request, &exchange.response, exchange.status)
    else {
        return Err(format!("incomplete exchange {exchange:?}"));
    };
    if !request.complete || !response.complete {
        return Err(format!("message cut short in {exchange:?}"));
    }
    Ok(Expected {
        method: request.head.method.to_string(),
        target: request.head.target.clone(),
        request_body: request.body.captured.clone(),
        interim: exchange.interim.clone(),
        status: response.head.status,
        response_body: response.body.captured.clone(),
    })
}

#[test]
fn random_conversations_cut_anywhere_read_as_written() {
    for seed in 0..CONVERSATIONS {
        let mut rng = Rng(seed);
        let conversation = conversation(&mut rng);
        for by_exchange in [false, true] {
            let whole = feed(&mut rng, &conversation, by_exchange, true);
            let found_whole = found(&whole).unwrap_or_else(|error| panic!("seed {seed}: {error}"));
            assert_eq!(found_whole, conversation.expected, "seed {seed}, fed whole");
            for _ in 0..CUTTINGS {
                let cut = feed(&mut rng, &conversation, by_exchange, false);
                assert!(
                    cut == whole,
                    "seed {seed}: cutting the input changed the output"
                );
            }
        }
    }
}
