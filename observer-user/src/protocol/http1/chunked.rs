//! Reading a `Transfer-Encoding: chunked` body (RFC 9112 §7.1) as it arrives.
//!
//! Chunk data goes straight to the message's [`Body`]; only a chunk-size line (bounded by the
//! line limit) or the trailer section (bounded by the head limit) is ever held. Extensions are
//! accepted and ignored. Line ends may be `\r\n` or a bare `\n`, as for heads.

use memchr::memchr;

use super::body::Decoded;
use super::framing::parse_digits;
use super::{Body, Headers, ParseError, ParserLimits, MAX_HEADERS_CEILING};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChunkState {
    /// Reading a chunk-size line into `line`.
    SizeLine,
    /// Inside chunk data.
    Data { remaining: u64 },
    /// After chunk data, expecting its line end.
    DataEnd,
    /// After chunk data and a `\r`, expecting `\n`.
    DataEndCr,
    /// After the last chunk: reading trailer lines into `line` until an empty one.
    Trailers { line_start: usize },
    /// The body has ended.
    Done,
}

/// The state of one chunked body.
#[derive(Debug)]
pub(crate) struct ChunkedReader {
    state: ChunkState,
    /// The chunk-size line being read, or the trailer section.
    line: Vec<u8>,
    max_line_bytes: usize,
    max_trailer_bytes: usize,
    max_trailer_fields: usize,
    /// The trailer section once read: `Ok(None)` when it had no fields.
    trailers: Result<Option<Headers>, httparse::Error>,
}

impl ChunkedReader {
    pub(crate) fn new(limits: &ParserLimits) -> ChunkedReader {
        ChunkedReader {
            state: ChunkState::SizeLine,
            line: Vec::new(),
            max_line_bytes: limits.max_chunk_line_bytes,
            max_trailer_bytes: limits.max_head_bytes,
            max_trailer_fields: limits.max_headers,
            trailers: Ok(None),
        }
    }

    /// Reads body bytes from `bytes`, giving chunk data to `body` (keeping at most `cap` bytes).
    /// Returns how many bytes were taken and whether the body ended.
    pub(crate) fn read(&mut self, bytes: &[u8], body: &mut Body, cap: usize) -> (usize, Decoded) {
        let mut used = 0;
        while let Some(&next) = bytes.get(used) {
            let rest = &bytes[used..];
            match self.state {
                ChunkState::SizeLine => {
                    let limit = self.max_line_bytes;
                    let (taken, line_done) = match take_line(&mut self.line, rest, limit) {
                        Ok(piece) => piece,
                        Err(taken) => {
                            let error = ParseError::ChunkLineTooLong { limit };
                            return (used + taken, Decoded::Failed(error));
                        }
                    };
                    used += taken;
                    if line_done {
                        let Some(size) = parse_chunk_size(&self.line) else {
                            return (used, Decoded::Failed(ParseError::InvalidChunkSize));
                        };
                        self.line.clear();
                        self.state = if size == 0 {
                            ChunkState::Trailers { line_start: 0 }
                        } else {
                            ChunkState::Data { remaining: size }
                        };
                    }
                }
                ChunkState::Data { remaining } => {
                    let taken =
                        usize::try_from(remaining).map_or(rest.len(), |r| r.min(rest.len()));
                    body.take(&rest[..taken], cap);
                    used += taken;
                    let remaining = remaining - super::message::len_u64(taken);
                    self.state = if remaining == 0 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data { remaining }
                    };
                }
                ChunkState::DataEnd | ChunkState::DataEndCr => {
                    self.state = match (self.state, next) {
                        (ChunkState::DataEnd, b'\r') => ChunkState::DataEndCr,
                        (_, b'\n') => ChunkState::SizeLine,
                        // The offending byte is left: it may begin the next message.
                        _ => return (used, Decoded::Failed(ParseError::MissingChunkLineEnd)),
                    };
                    used += 1;
                }
                ChunkState::Trailers { line_start } => {
                    let limit = self.max_trailer_bytes;
                    let (taken, line_done) = match take_line(&mut self.line, rest, limit) {
                        Ok(piece) => piece,
                        Err(taken) => {
                            let error = ParseError::TrailersTooLarge { limit };
                            return (used + taken, Decoded::Failed(error));
                        }
                    };
                    used += taken;
                    if line_done {
                        if is_empty_line(&self.line[line_start..]) {
                            self.trailers = self.parse_trailers(line_start);
                            self.line = Vec::new();
                            self.state = ChunkState::Done;
                            return (used, Decoded::Done);
                        }
                        self.state = ChunkState::Trailers {
                            line_start: self.line.len(),
                        };
                    }
                }
                ChunkState::Done => return (used, Decoded::Done),
            }
        }
        (used, Decoded::NeedMore)
    }

    /// Chunk data that follows before the next framing: none outside chunk data.
    pub(crate) fn data_left(&self) -> u64 {
        match self.state {
            ChunkState::Data { remaining } => remaining,
            _ => 0,
        }
    }

    /// Passes `len` bytes without reading them (a hole, or bytes known to be unread). Returns
    /// whether they fell wholly inside chunk data; anywhere else nothing changes, and for a hole
    /// the framing is lost with it.
    pub(crate) fn skip_data(&mut self, len: u64) -> bool {
        match self.state {
            ChunkState::Data { remaining } if len <= remaining => {
                self.state = if len == remaining {
                    ChunkState::DataEnd
                } else {
                    ChunkState::Data {
                        remaining: remaining - len,
                    }
                };
                true
            }
            _ => false,
        }
    }

    /// The trailer section, once the body has ended: `Ok(None)` when it had no fields.
    pub(crate) fn take_trailers(&mut self) -> Result<Option<Headers>, httparse::Error> {
        std::mem::replace(&mut self.trailers, Ok(None))
    }

    /// Parses the trailer lines held in `line`, the last of which (from `last_line`) is empty.
    fn parse_trailers(&self, last_line: usize) -> Result<Option<Headers>, httparse::Error> {
        if last_line == 0 {
            return Ok(None);
        }
        // Trailers are rare, so initialising a full table here costs nothing in practice.
        let mut table = [httparse::EMPTY_HEADER; MAX_HEADERS_CEILING];
        let table = &mut table[..self.max_trailer_fields];
        match httparse::parse_headers(&self.line, table)? {
            httparse::Status::Complete((_, fields)) => Ok(Some(Headers::from_fields(
                fields.iter().map(|field| (field.name, field.value)),
            ))),
            // The section ends with the empty line just found, so httparse has all of it; it
            // can only want more if it reads line ends differently, which makes the section
            // malformed.
            httparse::Status::Partial => Err(httparse::Error::NewLine),
        }
    }
}

/// Appends the start of `rest`, up to and including its first `\n`, to `line`. Returns how
/// many bytes were taken and whether the line ended, or, if `line` would grow past `limit`,
/// `Err` with the bytes taken to reach the limit exactly: the error then falls at the same
/// place however the stream was split.
fn take_line(line: &mut Vec<u8>, rest: &[u8], limit: usize) -> Result<(usize, bool), usize> {
    let (taken, line_done) = match memchr(b'\n', rest) {
        Some(at) => (at + 1, true),
        None => (rest.len(), false),
    };
    let room = limit.saturating_sub(line.len());
    if taken > room {
        return Err(room);
    }
    line.extend_from_slice(&rest[..taken]);
    Ok((taken, line_done))
}

/// Whether a line (with its `\n`) is empty: `\n` or `\r\n`.
fn is_empty_line(line: &[u8]) -> bool {
    line == b"\n" || line == b"\r\n"
}

/// The size on a chunk-size line (with its line end): hexadecimal digits, then optional
/// whitespace and `;` extensions, which are ignored. `None` if the line is not one, or the
/// size does not fit in a `u64`.
fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let size = match memchr(b';', line) {
        Some(extensions) => &line[..extensions],
        None => line,
    };
    parse_digits(size.trim_ascii_end(), 16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::http1::BodyFraming;

    fn reader() -> ChunkedReader {
        ChunkedReader::new(&ParserLimits::default())
    }

    /// Reads `pieces` one after the other; returns the body, the bytes taken and the outcome.
    fn read_all(reader: &mut ChunkedReader, pieces: &[&[u8]]) -> (Body, usize, Decoded) {
        let mut body = Body::new(BodyFraming::Chunked);
        let mut taken = 0;
        let mut outcome = Decoded::NeedMore;
        for piece in pieces {
            let (used, decoded) = reader.read(piece, &mut body, 1024);
            taken += used;
            outcome = decoded;
            if outcome != Decoded::NeedMore {
                break;
            }
        }
        (body, taken, outcome)
    }

    #[test]
    fn chunk_sizes_are_hex_with_optional_extensions() {
        assert_eq!(parse_chunk_size(b"1a\r\n"), Some(26));
        assert_eq!(parse_chunk_size(b"1A;name=\"v;x\"\r\n"), Some(26));
        assert_eq!(parse_chunk_size(b"0000000000000000001 ; a\n"), Some(1));
        assert_eq!(parse_chunk_size(b"ffffffffffffffff\r\n"), Some(u64::MAX));
        assert_eq!(parse_chunk_size(b"10000000000000000\r\n"), None);
        assert_eq!(parse_chunk_size(b"\r\n"), None);
        assert_eq!(parse_chunk_size(b";ext\r\n"), None);
        assert_eq!(parse_chunk_size(b" 5\r\n"), None);
        assert_eq!(parse_chunk_size(b"5 5\r\n"), None);
        assert_eq!(parse_chunk_size(b"-1\r\n"), None);
        assert_eq!(parse_chunk_size(b"5"), None);
    }

    #[test]
    fn a_body_split_anywhere_reads_the_same() {
        let whole: &[u8] = b"4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\nExpires: never\r\n\r\nNEXT";
        for split in 0..whole.len() {
            let mut reader = reader();
            let (body, taken, outcome) = read_all(&mut reader, &[&whole[..split], &whole[split..]]);
            assert_eq!(outcome, Decoded::Done, "split at {split}");
            assert_eq!(taken, whole.len() - 4, "split at {split}");
            assert_eq!(body.captured, b"Wikipedia");
            let trailers = reader
                .take_trailers()
                .expect("valid trailers")
                .expect("trailers");
            assert_eq!(trailers.get("expires"), Some(&b"never"[..]));
        }
    }

    #[test]
    fn bare_line_feeds_are_accepted() {
        let mut reader = reader();
        let (body, _, outcome) = read_all(&mut reader, &[b"3\nabc\n0\n\n"]);
        assert_eq!(outcome, Decoded::Done);
        assert_eq!(body.captured, b"abc");
        assert_eq!(reader.take_trailers(), Ok(None));
    }

    #[test]
    fn broken_framing_is_a_typed_error() {
        let mut reader = reader();
        let (_, taken, outcome) = read_all(&mut reader, &[b"3\r\nabcX"]);
        assert_eq!(outcome, Decoded::Failed(ParseError::MissingChunkLineEnd));
        assert_eq!(taken, 6, "the offending byte is left for resync");

        let (_, _, outcome) = read_all(&mut self::reader(), &[b"zz\r\n"]);
        assert_eq!(outcome, Decoded::Failed(ParseError::InvalidChunkSize));

        let long_line = [b'1'; 5000];
        let (_, taken, outcome) = read_all(&mut self::reader(), &[&long_line]);
        let limit = crate::protocol::http1::DEFAULT_MAX_CHUNK_LINE_BYTES;
        assert_eq!(
            outcome,
            Decoded::Failed(ParseError::ChunkLineTooLong { limit })
        );
        assert_eq!(taken, limit);
    }

    #[test]
    fn invalid_trailers_end_the_body_but_are_reported() {
        let mut reader = reader();
        let (_, _, outcome) = read_all(&mut reader, &[b"0\r\nnot a field\r\n\r\n"]);
        assert_eq!(outcome, Decoded::Done);
        assert!(reader.take_trailers().is_err());
    }

    #[test]
    fn a_gap_is_skipped_only_inside_chunk_data() {
        let mut reader = reader();
        let mut body = Body::new(BodyFraming::Chunked);
        reader.read(b"8\r\nab", &mut body, 1024);
        assert!(reader.skip_data(6));
        assert_eq!(
            reader.read(b"\r\n0\r\n\r\n", &mut body, 1024).1,
            Decoded::Done
        );

        let mut reader = self::reader();
        reader.read(b"8\r\nab", &mut body, 1024);
        assert!(!reader.skip_data(7));
    }
}
