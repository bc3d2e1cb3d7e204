//! Fuzzes `Http1Session`: the input holds both directions, and the control byte decides how
//! they interleave, where they are cut and where holes fall.
//!
//! Checks: no panic; cutting each turn further (keeping the order of turns and their times)
//! never changes what the session reports; every exchange holds what its status says.
#![no_main]

mod common;

use common::{cut, Piece, Rng, LIMITS};
use libfuzzer_sys::fuzz_target;
use observer::pairing::{ExchangeStatus, Http1Session, SessionEvent};

/// A turn: which direction, and what arrives.
type Turn<'a> = (bool, Piece<'a>);

/// Splits the stream at a place the control byte picks into a request side and a response
/// side, and interleaves their pieces (holes included) into turns.
fn turns<'a>(rng: &mut Rng, stream: &'a [u8]) -> Vec<Turn<'a>> {
    let split = usize::try_from(rng.below(stream.len() as u64 + 1)).unwrap_or(0);
    let (requests, responses) = stream.split_at(split);
    let mut requests = cut(rng, requests, true).into_iter().peekable();
    let mut responses = cut(rng, responses, true).into_iter().peekable();
    let mut turns = Vec::new();
    loop {
        let request_first = rng.below(3) != 0;
        match (requests.peek(), responses.peek()) {
            (None, None) => break,
            (Some(_), None) => turns.push((true, requests.next())),
            (None, Some(_)) => turns.push((false, responses.next())),
            (Some(_), Some(_)) if request_first => turns.push((true, requests.next())),
            (Some(_), Some(_)) => turns.push((false, responses.next())),
        }
    }
    turns
        .into_iter()
        .filter_map(|(is_request, piece)| piece.map(|piece| (is_request, piece)))
        .collect()
}

/// Feeds turns; turn `i` happens at time `i`. With `recut`, each data turn is cut again into
/// smaller pieces that keep its time.
fn run(rng: &mut Rng, turns: &[Turn<'_>], recut: bool) -> Vec<SessionEvent> {
    let mut session = Http1Session::new(LIMITS);
    let mut events = Vec::new();
    for (ts_ns, &(is_request, piece)) in (1..).zip(turns) {
        let pieces = match piece {
            Piece::Data(bytes) if recut => cut(rng, bytes, false),
            other => vec![other],
        };
        for piece in pieces {
            if is_request {
                session.push_request_side(piece.segment(ts_ns), &mut events);
            } else {
                session.push_response_side(piece.segment(ts_ns), &mut events);
            }
        }
    }
    session.close(u64::MAX, &mut events);
    events
}

fuzz_target!(|input: &[u8]| {
    let Some((&control, stream)) = input.split_first() else {
        return;
    };
    let mut rng = Rng::new(control);
    let turns = turns(&mut rng, stream);
    let events = run(&mut rng, &turns, false);
    for event in &events {
        if let SessionEvent::Exchange(exchange) = event {
            let has = (exchange.request.is_some(), exchange.response.is_some());
            let expected = match exchange.status {
                ExchangeStatus::Complete => (true, true),
                ExchangeStatus::RequestOnly => (true, false),
                ExchangeStatus::ResponseOnly => (false, true),
            };
            assert_eq!(has, expected, "exchange status does not match its messages");
        }
    }
    assert_eq!(
        events,
        run(&mut rng, &turns, true),
        "cutting turns changed the output"
    );
});
