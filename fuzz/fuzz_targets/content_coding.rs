//! Content decoding over any bytes said to be in any coding: it must never panic or hang, never
//! give more than its limit, and the start of a stream must decode to the start of what the
//! whole stream decodes to (the agent reads a capture that stopped inside a body so).
//!
//! An input is one control byte, which picks the coding and the limit, and the encoded bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use observer::protocol::coding::{decode, Coding};

const CODINGS: [Coding; 4] = [Coding::Gzip, Coding::Deflate, Coding::Brotli, Coding::Zstd];

fuzz_target!(|input: &[u8]| {
    let Some((&control, encoded)) = input.split_first() else {
        return;
    };
    let coding = CODINGS[usize::from(control) % CODINGS.len()];
    // 1 to ~4 KiB: small enough that bombs reach it.
    let limit = 1 + usize::from(control / 4) * 64;
    let whole = decode(coding, encoded, true, limit);
    if let Ok(whole) = &whole {
        assert!(whole.bytes.len() <= limit);
    }
    let start = decode(coding, &encoded[..encoded.len() / 2], false, limit);
    if let Ok(start) = &start {
        assert!(start.bytes.len() <= limit);
        // Deflate tries two framings, which a stream's start and its whole may each pass.
        if let (Ok(whole), false) = (&whole, coding == Coding::Deflate) {
            assert!(
                whole.bytes.starts_with(&start.bytes),
                "the start decodes to {} bytes that the whole does not begin with",
                start.bytes.len()
            );
        }
    }
});
