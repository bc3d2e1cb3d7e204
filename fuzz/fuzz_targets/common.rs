//! What the HTTP/1 fuzz targets share: turning a fuzz input into segments, small limits that
//! reach every bound quickly, and the checks every parser output must pass.
//!
//! An input is one control byte and a stream. The control byte seeds a small generator that
//! decides where the stream is cut and where holes go, so the fuzzer explores both the bytes
//! and the ways they arrive while the stream itself stays plain HTTP (good for dictionaries
//! and seed corpora).

#![allow(dead_code, reason = "each target uses only part of this module")]

use std::fmt::Debug;

use observer::protocol::http1::{ParserLimits, ParserOutput};
use observer::protocol::Segment;

/// Limits small enough that inputs of a few hundred bytes reach each of them.
pub const LIMITS: ParserLimits = ParserLimits {
    max_head_bytes: 512,
    max_headers: 8,
    max_body_capture: 64,
    max_chunk_line_bytes: 64,
};

/// SplitMix64, seeded by the control byte.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u8) -> Rng {
        Rng(u64::from(seed))
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// One step of a stream, owning nothing: a piece of the input, a hole, or bytes said to be
/// unread (a parser whose place does not allow it takes them as a hole).
#[derive(Clone, Copy, Debug)]
pub enum Piece<'a> {
    Data(&'a [u8]),
    Gap(u64),
    Unread(u64),
}

impl<'a> Piece<'a> {
    pub fn segment(self, ts_ns: u64) -> Segment<'a> {
        match self {
            Piece::Data(bytes) => Segment::Data { bytes, ts_ns },
            Piece::Gap(len) => Segment::Gap { len, ts_ns },
            Piece::Unread(len) => Segment::Unread { len, ts_ns },
        }
    }
}

/// `stream` cut at random places; with `holes`, holes of random size (now and then huge)
/// go between some pieces, some of them said to be unread.
pub fn cut<'a>(rng: &mut Rng, stream: &'a [u8], holes: bool) -> Vec<Piece<'a>> {
    let mut pieces = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let len = match rng.below(4) {
            0 => 1,
            1 => 1 + rng.below(8),
            _ => 1 + rng.below(256),
        };
        let len = usize::try_from(len).unwrap_or(usize::MAX).min(rest.len());
        pieces.push(Piece::Data(&rest[..len]));
        rest = &rest[len..];
        if holes && rng.below(8) == 0 {
            let len = match rng.below(16) {
                0 => 1 << 40,
                _ => 1 + rng.below(64),
            };
            pieces.push(match rng.below(4) {
                0 => Piece::Unread(len),
                _ => Piece::Gap(len),
            });
        }
    }
    pieces
}

/// What every parser's output must be, whatever the input:
/// - each `Started` is followed by exactly one `Message` before the next `Started`;
/// - no captured body is longer than the capture limit;
/// - a tunnel is reported at most once, and nothing follows it.
pub fn check_outputs<H, S>(outputs: &[ParserOutput<H, S>]) {
    let mut open_message = false;
    let mut tunnel_seen = false;
    for output in outputs {
        assert!(!tunnel_seen, "output after the tunnel began");
        match output {
            ParserOutput::Started(_) => {
                assert!(!open_message, "a message started before the last one ended");
                open_message = true;
            }
            ParserOutput::Message(message) => {
                assert!(open_message, "a message without a start");
                open_message = false;
                assert!(message.body.captured.len() <= LIMITS.max_body_capture);
                assert!(message.body.captured.len() as u64 <= message.body.size);
            }
            ParserOutput::Error(_) => {}
            ParserOutput::Tunnel(_) => tunnel_seen = true,
        }
    }
    assert!(!open_message, "a started message was never delivered");
}

/// Feeds `pieces` (all at one time) and then the end of the stream through `push`; returns
/// what was produced.
pub fn feed<O>(pieces: &[Piece<'_>], mut push: impl FnMut(Segment<'_>, &mut Vec<O>)) -> Vec<O> {
    let mut out = Vec::new();
    for piece in pieces {
        push(piece.segment(1), &mut out);
    }
    push(Segment::End { ts_ns: 2 }, &mut out);
    out
}

/// The checks of a parser target: `parse` reads the pieces with a fresh parser. The stream
/// read whole and cut at random must give the same output; with holes, the output must still
/// be well formed.
pub fn check_parser<H, S>(
    control: u8,
    stream: &[u8],
    parse: impl Fn(&[Piece<'_>]) -> Vec<ParserOutput<H, S>>,
) where
    H: Debug + PartialEq,
    S: Debug + PartialEq,
{
    let mut rng = Rng::new(control);
    let whole = parse(&[Piece::Data(stream)]);
    check_outputs(&whole);
    let cut_output = parse(&cut(&mut rng, stream, false));
    assert_eq!(whole, cut_output, "cutting changed the output");
    check_outputs(&parse(&cut(&mut rng, stream, true)));
}
