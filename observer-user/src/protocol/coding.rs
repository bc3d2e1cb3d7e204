//! Content codings undone: a body sent with `Content-Encoding: gzip` (or `deflate`, `br`,
//! `zstd`) is read as the JSON or form it carries.
//!
//! Most HTTP clients ask for compressed answers (Go's and Python's by default, every browser),
//! and servers compress JSON: read as sent, such a body is noise to every stage after this one.
//! The inventory learns no schema from it, detection reads no payload and the sensitive-data
//! scanner finds nothing in it. Decoding happens once per message, on the captured prefix of the
//! body, into at most the capture limit: a body that decodes to more (a decompression bomb
//! among them) is kept to that bound, as a long plain body is, and costs time linear in what
//! was captured.

use std::io::Read;

use super::http1::Headers;

/// A content coding this stage undoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    /// zlib-wrapped DEFLATE, as RFC 9110 says; raw DEFLATE, which some servers send under the
    /// same name, is read too.
    Deflate,
    Brotli,
    Zstd,
}

impl Coding {
    pub fn as_str(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Brotli => "br",
            Coding::Zstd => "zstd",
        }
    }
}

/// Why a body was left as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodingError {
    /// A coding this stage does not undo (`compress`, a private one).
    #[error("content coding not supported")]
    Unsupported,
    /// More than one coding applied in turn (`gzip, br`): rare, and not undone.
    #[error("several content codings applied in turn")]
    Stacked,
    /// The bytes are not in the coding the header names, or not from its start.
    #[error("body is not in its declared content coding")]
    Invalid,
}

impl CodingError {
    /// The label counters and calls carry.
    pub fn label(self) -> &'static str {
        match self {
            CodingError::Unsupported => "unsupported",
            CodingError::Stacked => "stacked",
            CodingError::Invalid => "invalid",
        }
    }
}

/// The coding `headers` say the body is in: `None` for none (or `identity`).
pub fn coding_of(headers: &Headers) -> Result<Option<Coding>, CodingError> {
    let mut found = None;
    for value in headers.get_all("content-encoding") {
        for name in value.split(|&b| b == b',') {
            let name = name.trim_ascii();
            let coding =
                if name.eq_ignore_ascii_case(b"gzip") || name.eq_ignore_ascii_case(b"x-gzip") {
                    Coding::Gzip
                } else if name.eq_ignore_ascii_case(b"deflate") {
                    Coding::Deflate
                } else if name.eq_ignore_ascii_case(b"br") {
                    Coding::Brotli
                } else if name.eq_ignore_ascii_case(b"zstd") {
                    Coding::Zstd
                } else if name.is_empty() || name.eq_ignore_ascii_case(b"identity") {
                    continue;
                } else {
                    return Err(CodingError::Unsupported);
                };
            if found.replace(coding).is_some() {
                return Err(CodingError::Stacked);
            }
        }
    }
    Ok(found)
}

/// A body decoded: as much of it as its captured bytes held, up to the limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub bytes: Vec<u8>,
    /// The coded stream's end was reached: `bytes` is the whole body. Not so when the capture
    /// stopped inside the stream (a long body, a lost byte) or the limit cut the decoding.
    pub whole: bool,
}

/// Brotli's reader works through a buffer of this size; the captured input is in memory.
const BROTLI_BUFFER_BYTES: usize = 4096;

/// The largest zstd window a body may ask for: what RFC 9659 lets HTTP senders use, so that a
/// frame cannot make the decoder allocate more (the format allows gigabytes).
const MAX_ZSTD_WINDOW_BYTES: u64 = 8 << 20;

/// `encoded`, a body in `coding` (all of it if `encoded_whole`, else its start), decoded into
/// at most `limit` bytes.
pub fn decode(
    coding: Coding,
    encoded: &[u8],
    encoded_whole: bool,
    limit: usize,
) -> Result<Decoded, CodingError> {
    let read = |decoder: &mut dyn Read| read_limited(decoder, encoded_whole, limit);
    match coding {
        Coding::Gzip => read(&mut flate2::read::GzDecoder::new(encoded)),
        Coding::Deflate => read(&mut flate2::read::ZlibDecoder::new(encoded))
            .or_else(|_| read(&mut flate2::read::DeflateDecoder::new(encoded))),
        Coding::Brotli => read(&mut brotli_decompressor::Decompressor::new(
            encoded,
            BROTLI_BUFFER_BYTES,
        )),
        Coding::Zstd => {
            // The frame header is read at once: a capture too short to hold one has nothing.
            let mut decoder = ruzstd::decoding::StreamingDecoder::new_with_max_window_size(
                encoded,
                MAX_ZSTD_WINDOW_BYTES,
            )
            .map_err(|_| CodingError::Invalid)?;
            read(&mut decoder)
        }
    }
}

/// Reads `decoder` to its end or to `limit` bytes. When the input is only the start of the
/// stream, the error its end brings keeps what came before it; otherwise an error means the
/// bytes are not in the coding (a body mislabelled, whose first bytes may decode to noise).
fn read_limited(
    decoder: &mut dyn Read,
    encoded_whole: bool,
    limit: usize,
) -> Result<Decoded, CodingError> {
    let mut bytes = Vec::new();
    // One byte past the limit tells a body of exactly `limit` bytes from a longer one.
    let mut reader = decoder.take(limit as u64 + 1);
    let whole = match reader.read_to_end(&mut bytes) {
        Ok(_) => bytes.len() <= limit,
        Err(_) if !encoded_whole && !bytes.is_empty() => false,
        Err(_) => return Err(CodingError::Invalid),
    };
    bytes.truncate(limit);
    Ok(Decoded { bytes, whole })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const BODY: &[u8] =
        br#"{"users":[{"id":1,"email":"ann@example.com"},{"id":2,"email":"bo@example.com"}]}"#;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn headers(fields: &[(&str, &str)]) -> Headers {
        Headers::from_fields(fields.iter().map(|(n, v)| (*n, v.as_bytes())))
    }

    #[test]
    fn the_coding_is_read_from_the_header() {
        for (value, coding) in [
            ("gzip", Some(Coding::Gzip)),
            ("X-GZIP", Some(Coding::Gzip)),
            (" deflate ", Some(Coding::Deflate)),
            ("br", Some(Coding::Brotli)),
            ("zstd", Some(Coding::Zstd)),
            ("identity", None),
            ("identity, gzip", Some(Coding::Gzip)),
        ] {
            assert_eq!(
                coding_of(&headers(&[("Content-Encoding", value)])),
                Ok(coding),
                "{value}"
            );
        }
        assert_eq!(
            coding_of(&headers(&[("Content-Type", "text/plain")])),
            Ok(None)
        );
        assert_eq!(
            coding_of(&headers(&[("content-encoding", "compress")])),
            Err(CodingError::Unsupported)
        );
        assert_eq!(
            coding_of(&headers(&[
                ("content-encoding", "gzip"),
                ("content-encoding", "br")
            ])),
            Err(CodingError::Stacked)
        );
    }

    #[test]
    fn every_coding_decodes_to_the_body() {
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        zlib.write_all(BODY).unwrap();
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        raw.write_all(BODY).unwrap();
        let mut brotli = Vec::new();
        // A brotli stream of one uncompressed meta-block: the decoder's own format, by hand,
        // since this crate decodes only. Header: WBITS 16 (one 0 bit); then ISLAST=0,
        // MNIBBLES=4, MLEN-1 (16 bits), ISUNCOMPRESSED=1; padding to the byte; the bytes; then
        // an empty last meta-block (ISLAST=1, ISLASTEMPTY=1).
        let mut bits = BitWriter::default();
        bits.put(0, 1);
        bits.put(0, 1);
        bits.put(0, 2);
        bits.put(BODY.len() as u64 - 1, 16);
        bits.put(1, 1);
        bits.align();
        bits.bytes.extend_from_slice(BODY);
        bits.put(1, 1);
        bits.put(1, 1);
        bits.align();
        brotli.extend(bits.bytes);
        for (coding, encoded) in [
            (Coding::Gzip, gzip(BODY)),
            (Coding::Deflate, zlib.finish().unwrap()),
            (Coding::Deflate, raw.finish().unwrap()),
            (Coding::Brotli, brotli),
            (
                Coding::Zstd,
                ruzstd::encoding::compress_to_vec(
                    BODY,
                    ruzstd::encoding::CompressionLevel::Fastest,
                ),
            ),
        ] {
            let decoded = decode(coding, &encoded, true, 1 << 20).unwrap();
            assert_eq!(decoded.bytes, BODY, "{coding:?}");
            assert!(decoded.whole, "{coding:?}");
        }
    }

    /// Bits written least significant first, as brotli reads them.
    #[derive(Default)]
    struct BitWriter {
        bytes: Vec<u8>,
        used: u32,
    }

    impl BitWriter {
        fn put(&mut self, value: u64, count: u32) {
            for bit in 0..count {
                if self.used == 0 {
                    self.bytes.push(0);
                }
                let last = self.bytes.len() - 1;
                self.bytes[last] |= (((value >> bit) & 1) as u8) << self.used;
                self.used = (self.used + 1) % 8;
            }
        }

        fn align(&mut self) {
            self.used = 0;
        }
    }

    #[test]
    fn a_cut_stream_gives_its_start_and_a_limit_bounds_the_rest() {
        let long: Vec<u8> = BODY.iter().copied().cycle().take(200_000).collect();
        let encoded = gzip(&long);
        // The capture stopped inside the stream: the start, not whole.
        let start = &encoded[..encoded.len() / 2];
        let cut = decode(Coding::Gzip, start, false, 1 << 20).unwrap();
        assert!(!cut.whole && !cut.bytes.is_empty() && long.starts_with(&cut.bytes));
        // The same bytes said to be the whole body are not in the coding: it ends early.
        assert_eq!(
            decode(Coding::Gzip, start, true, 1 << 20),
            Err(CodingError::Invalid)
        );
        // A body that decodes to more than the limit (a bomb among them) is kept to it.
        let bounded = decode(Coding::Gzip, &encoded, true, 1000).unwrap();
        assert_eq!((bounded.bytes.len(), bounded.whole), (1000, false));
        assert_eq!(bounded.bytes, long[..1000]);
        // Exactly the limit is whole.
        let exact = decode(Coding::Gzip, &gzip(BODY), true, BODY.len()).unwrap();
        assert!(exact.whole);
    }

    #[test]
    fn a_zstd_frame_asking_for_a_larger_window_than_http_allows_is_refused() {
        // Magic, a frame header descriptor saying only that a window descriptor follows, the
        // window (2^(10 + exponent) bytes), then one empty last block: a valid, empty frame.
        let frame = |exponent: u8| {
            [
                0x28,
                0xb5,
                0x2f,
                0xfd,
                0x00,
                exponent << 3,
                0x01,
                0x00,
                0x00,
            ]
        };
        // 8 MiB, what HTTP allows, then 16 MiB, which the format's own limit would let by.
        assert_eq!(
            decode(Coding::Zstd, &frame(13), true, 1 << 20).map(|d| d.bytes),
            Ok(Vec::new())
        );
        assert_eq!(
            decode(Coding::Zstd, &frame(14), true, 1 << 20),
            Err(CodingError::Invalid)
        );
    }

    #[test]
    fn bytes_not_in_the_coding_are_refused() {
        for coding in [Coding::Gzip, Coding::Deflate, Coding::Brotli, Coding::Zstd] {
            assert_eq!(
                decode(
                    coding,
                    b"\xff\xfe{\"id\":1} not compressed at all",
                    true,
                    1 << 20
                ),
                Err(CodingError::Invalid),
                "{coding:?}"
            );
            assert_eq!(
                decode(coding, b"", false, 1 << 20),
                Err(CodingError::Invalid),
                "{coding:?}"
            );
        }
    }
}
