//! Reading a message body once its framing is known, and skipping holes inside it.
//!
//! The parser hands every byte after a head to the body reader until the reader says the body
//! has ended; the bytes it did not take belong to the next message. Body bytes are counted and
//! kept only up to the capture limit (see [`Body::take`]), so a large body costs no memory.

use super::chunked::ChunkedReader;
use super::{Body, BodyFraming, Headers, ParserLimits};

/// What a body reader made of the bytes it was given.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// All taken; the body goes on.
    NeedMore,
    /// The body ended; bytes not taken belong to the next message.
    Done,
    /// The framing is broken: the body cannot be followed further.
    Failed(super::ParseError),
}

/// Where a hole in the stream fell relative to the body.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum GapInBody {
    /// Inside the body's data: skipped, and the body goes on.
    Inside,
    /// Over the end of a body of known length, `past_end` bytes beyond it.
    OverEnd { past_end: u64 },
    /// Where framing was needed (a chunk-size line, ...): the body cannot be followed further.
    LosesFraming,
}

/// The reader for one body.
#[derive(Debug)]
pub(crate) enum BodyReader {
    Length { remaining: u64 },
    Chunked(ChunkedReader),
    UntilClose,
}

impl BodyReader {
    /// The reader for a body framed this way; `None` when there is no body.
    pub(crate) fn new(framing: BodyFraming, limits: &ParserLimits) -> Option<BodyReader> {
        match framing {
            BodyFraming::NoBody | BodyFraming::Length(0) => None,
            BodyFraming::Length(length) => Some(BodyReader::Length { remaining: length }),
            BodyFraming::Chunked => Some(BodyReader::Chunked(ChunkedReader::new(limits))),
            BodyFraming::UntilClose => Some(BodyReader::UntilClose),
        }
    }

    /// Reads body bytes from `bytes` into `body` (keeping at most `cap` bytes of it). Returns
    /// how many were taken and whether the body ended.
    pub(crate) fn read(&mut self, bytes: &[u8], body: &mut Body, cap: usize) -> (usize, Decoded) {
        match self {
            BodyReader::Length { remaining } => {
                let taken = usize::try_from(*remaining).map_or(bytes.len(), |r| r.min(bytes.len()));
                body.take(&bytes[..taken], cap);
                *remaining -= super::message::len_u64(taken);
                let decoded = if *remaining == 0 {
                    Decoded::Done
                } else {
                    Decoded::NeedMore
                };
                (taken, decoded)
            }
            BodyReader::Chunked(chunked) => chunked.read(bytes, body, cap),
            BodyReader::UntilClose => {
                body.take(bytes, cap);
                (bytes.len(), Decoded::NeedMore)
            }
        }
    }

    /// A hole of `len` bytes. Counts what of it was body in `body` and says where it fell.
    pub(crate) fn skip_gap(&mut self, len: u64, body: &mut Body) -> GapInBody {
        match self {
            BodyReader::Length { remaining } if len < *remaining => {
                *remaining -= len;
                body.lose(len);
                GapInBody::Inside
            }
            BodyReader::Length { remaining } => {
                body.lose(*remaining);
                let past_end = len - *remaining;
                *remaining = 0;
                GapInBody::OverEnd { past_end }
            }
            BodyReader::Chunked(chunked) => {
                if chunked.skip_data(len) {
                    body.lose(len);
                    GapInBody::Inside
                } else {
                    GapInBody::LosesFraming
                }
            }
            BodyReader::UntilClose => {
                body.lose(len);
                GapInBody::Inside
            }
        }
    }

    /// Body bytes that follow before the body ends or framing is needed (a chunk-size line).
    pub(crate) fn data_left(&self) -> u64 {
        match self {
            BodyReader::Length { remaining } => *remaining,
            BodyReader::Chunked(chunked) => chunked.data_left(),
            BodyReader::UntilClose => u64::MAX,
        }
    }

    /// Passes `len` body bytes that are not here, for a body whose capture is done (they would
    /// only have been counted). `None`, and nothing changes, when they would not all have been
    /// body data: the caller takes them as a hole instead.
    pub(crate) fn pass_unread(&mut self, len: u64, body: &mut Body, cap: usize) -> Option<Decoded> {
        if !body.capture_done(cap) || len > self.data_left() {
            return None;
        }
        body.pass_unread(len);
        match self {
            BodyReader::Length { remaining } => {
                *remaining -= len;
                if *remaining == 0 {
                    return Some(Decoded::Done);
                }
            }
            BodyReader::Chunked(chunked) => {
                chunked.skip_data(len);
            }
            BodyReader::UntilClose => {}
        }
        Some(Decoded::NeedMore)
    }

    /// Whether the end of the stream is this body's normal end.
    pub(crate) fn ends_at_close(&self) -> bool {
        matches!(self, BodyReader::UntilClose)
    }

    /// The trailer section of a chunked body that has ended.
    pub(crate) fn take_trailers(&mut self) -> Result<Option<Headers>, httparse::Error> {
        match self {
            BodyReader::Chunked(chunked) => chunked.take_trailers(),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ParserLimits {
        ParserLimits::default()
    }

    #[test]
    fn a_length_body_takes_exactly_its_length() {
        let mut body = Body::new(BodyFraming::Length(5));
        let mut reader = BodyReader::new(BodyFraming::Length(5), &limits()).expect("a body");
        assert_eq!(reader.read(b"abc", &mut body, 100), (3, Decoded::NeedMore));
        assert_eq!(reader.read(b"deNEXT", &mut body, 100), (2, Decoded::Done));
        assert_eq!(body.captured, b"abcde");
        assert_eq!(body.size, 5);
        assert!(!body.is_truncated());
    }

    #[test]
    fn capture_stops_at_the_cap_but_counting_does_not() {
        let mut body = Body::new(BodyFraming::UntilClose);
        let mut reader = BodyReader::UntilClose;
        reader.read(b"0123456789", &mut body, 4);
        reader.read(b"abc", &mut body, 4);
        assert_eq!(body.captured, b"0123");
        assert_eq!(body.size, 13);
        assert!(body.is_truncated());
    }

    #[test]
    fn a_gap_inside_a_length_body_is_skipped_and_ends_the_capture() {
        let mut body = Body::new(BodyFraming::Length(10));
        let mut reader = BodyReader::new(BodyFraming::Length(10), &limits()).expect("a body");
        reader.read(b"ab", &mut body, 100);
        assert_eq!(reader.skip_gap(3, &mut body), GapInBody::Inside);
        assert_eq!(reader.read(b"fghij", &mut body, 100), (5, Decoded::Done));
        assert_eq!(body.captured, b"ab");
        assert_eq!((body.size, body.lost), (10, 3));
        assert!(body.is_truncated());
    }

    #[test]
    fn a_gap_over_the_end_of_a_length_body_says_how_far() {
        let mut body = Body::new(BodyFraming::Length(4));
        let mut reader = BodyReader::new(BodyFraming::Length(4), &limits()).expect("a body");
        reader.read(b"a", &mut body, 100);
        assert_eq!(
            reader.skip_gap(10, &mut body),
            GapInBody::OverEnd { past_end: 7 }
        );
        assert_eq!((body.size, body.lost), (4, 3));
    }

    #[test]
    fn bodies_of_no_length_need_no_reader() {
        assert!(BodyReader::new(BodyFraming::NoBody, &limits()).is_none());
        assert!(BodyReader::new(BodyFraming::Length(0), &limits()).is_none());
    }

    #[test]
    fn the_capture_buffer_grows_no_larger_than_the_capture() {
        for framing in [BodyFraming::Length(65_536), BodyFraming::UntilClose] {
            let mut body = Body::new(framing);
            let mut reader = BodyReader::new(framing, &limits()).expect("a body");
            for piece in [16_000, 300, 20_000] {
                reader.read(&vec![b'x'; piece], &mut body, 16_384);
            }
            assert_eq!(body.captured.len(), 16_384);
            assert_eq!(body.captured.capacity(), 16_384, "{framing:?}");
        }
        // A short body's buffer grows to its size, and nothing is held ahead of the bytes.
        let mut body = Body::new(BodyFraming::Length(100));
        let mut reader = BodyReader::Length { remaining: 100 };
        reader.read(&[b'x'; 1], &mut body, 16_384);
        assert_eq!(body.captured.capacity(), 1);
        reader.read(&[b'x'; 60], &mut body, 16_384);
        reader.read(&[b'x'; 39], &mut body, 16_384);
        assert_eq!(body.captured.capacity(), 100);
    }
}
