//! Fuzzes `ResponseParser` with arbitrary bytes cut in arbitrary ways, after being told of a
//! few requests (GET, HEAD, CONNECT, POST in an order the control byte picks).
//!
//! Checks: no panic; cutting the stream differently never changes what is read; with holes
//! in the stream, the output is still well formed (see `common::check_outputs`).
#![no_main]

mod common;

use common::{check_parser, feed, LIMITS};
use libfuzzer_sys::fuzz_target;
use observer::protocol::http1::{Method, RequestStart, ResponseParser};

/// Requests the parser is told of before reading.
const REQUESTS: u32 = 6;

fuzz_target!(|input: &[u8]| {
    let Some((&control, stream)) = input.split_first() else {
        return;
    };
    let methods = [Method::Get, Method::Head, Method::Connect, Method::Post];
    check_parser(control, stream, |pieces| {
        let mut parser = ResponseParser::new(LIMITS);
        for n in 0..REQUESTS {
            // Two bits of the control byte per request, wrapping around.
            let pick = usize::from(control.rotate_right(2 * n) & 3);
            parser.request_sent(&RequestStart {
                method: methods[pick].clone(),
                stream_offset: 0,
                ts_ns: 1,
            });
        }
        feed(pieces, |segment, out| parser.push(segment, out))
    });
});
