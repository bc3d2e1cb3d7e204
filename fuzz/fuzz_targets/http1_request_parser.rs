//! Fuzzes `RequestParser` with arbitrary bytes cut in arbitrary ways.
//!
//! Checks: no panic; cutting the stream differently never changes what is read; with holes
//! in the stream, the output is still well formed (see `common::check_outputs`).
#![no_main]

mod common;

use common::{check_parser, feed, LIMITS};
use libfuzzer_sys::fuzz_target;
use observer::protocol::http1::RequestParser;

fuzz_target!(|input: &[u8]| {
    let Some((&control, stream)) = input.split_first() else {
        return;
    };
    check_parser(control, stream, |pieces| {
        let mut parser = RequestParser::new(LIMITS);
        feed(pieces, |segment, out| parser.push(segment, out))
    });
});
