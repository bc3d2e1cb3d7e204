//! Recordings: the raw inputs of the pipeline (kernel events and facts) written to a file, so
//! `observer replay` can run the same pipeline later, anywhere, without root.
//!
//! Format: the 8-byte magic `OBSREC\0` + format version, then records of
//! `u32 length (little-endian) | u8 type | payload`, where the length covers type and payload.
//! Kernel events are stored byte for byte as they left the ring buffer; facts as JSON.
//!
//! A recording holds captured payloads unredacted (that is its point), so it is created readable
//! by its owner only. Reading one back is defensive like every other parse: a damaged file gives
//! typed errors, never a panic, and what was read before the damage is still used.

use std::{
    fs::{File, OpenOptions},
    io::{self, BufReader, BufWriter, Read, Write},
    os::unix::fs::OpenOptionsExt,
    path::Path,
};

use thiserror::Error;

use crate::facts::Fact;

const MAGIC: &[u8; 7] = b"OBSREC\0";
const FORMAT_VERSION: u8 = 1;

/// Largest record accepted: a data event is at most 16 KiB plus its header, a fact far less.
/// Anything bigger is damage, and allocating it would let a bad file exhaust memory.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

const TYPE_KERNEL_EVENT: u8 = 1;
const TYPE_FACT: u8 = 2;

/// One input of the pipeline, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    KernelEvent(Vec<u8>),
    Fact(Fact),
}

#[derive(Debug, Error)]
pub enum RecordError {
    #[error("{path} is not an observer recording (wrong magic bytes)")]
    NotARecording { path: String },
    #[error(
        "{path} is a recording of format {found}; this observer reads format {FORMAT_VERSION}"
    )]
    UnsupportedVersion { path: String, found: u8 },
    #[error("record at byte {offset} is cut short: the recording was interrupted or damaged")]
    Truncated { offset: u64 },
    #[error("record at byte {offset} claims {len} bytes (more than {MAX_RECORD_BYTES}): damaged recording")]
    TooLarge { offset: u64, len: usize },
    #[error("record at byte {offset} has unknown type {kind}")]
    UnknownType { offset: u64, kind: u8 },
    #[error("fact at byte {offset} is not valid: {source}")]
    BadFact {
        offset: u64,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Writes a recording.
pub struct RecordWriter {
    out: BufWriter<File>,
}

impl RecordWriter {
    /// Create (or truncate) `path`, readable and writable by its owner only.
    pub fn create(path: &Path) -> io::Result<RecordWriter> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        let mut out = BufWriter::new(file);
        out.write_all(MAGIC)?;
        out.write_all(&[FORMAT_VERSION])?;
        Ok(RecordWriter { out })
    }

    pub fn kernel_event(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.record(TYPE_KERNEL_EVENT, bytes)
    }

    pub fn fact(&mut self, fact: &Fact) -> io::Result<()> {
        let json = serde_json::to_vec(fact).map_err(io::Error::other)?;
        self.record(TYPE_FACT, &json)
    }

    fn record(&mut self, kind: u8, payload: &[u8]) -> io::Result<()> {
        let len = u32::try_from(payload.len() + 1).map_err(io::Error::other)?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(&[kind])?;
        self.out.write_all(payload)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Reads a recording, one record at a time.
pub struct RecordReader<R> {
    input: R,
    offset: u64,
    failed: bool,
}

impl RecordReader<BufReader<File>> {
    pub fn open(path: &Path) -> Result<RecordReader<BufReader<File>>, RecordError> {
        let file = File::open(path)?;
        RecordReader::new(BufReader::new(file), &path.display().to_string())
    }
}

impl<R: Read> RecordReader<R> {
    /// Check the header; `name` is used in errors.
    pub fn new(mut input: R, name: &str) -> Result<RecordReader<R>, RecordError> {
        let mut header = [0u8; 8];
        input
            .read_exact(&mut header)
            .map_err(|_| RecordError::NotARecording {
                path: name.to_string(),
            })?;
        if &header[..7] != MAGIC {
            return Err(RecordError::NotARecording {
                path: name.to_string(),
            });
        }
        if header[7] != FORMAT_VERSION {
            return Err(RecordError::UnsupportedVersion {
                path: name.to_string(),
                found: header[7],
            });
        }
        Ok(RecordReader {
            input,
            offset: header.len() as u64,
            failed: false,
        })
    }

    fn read_record(&mut self) -> Result<Option<Record>, RecordError> {
        let offset = self.offset;
        let mut len = [0u8; 4];
        match read_full(&mut self.input, &mut len)? {
            0 => return Ok(None),
            4 => {}
            _ => return Err(RecordError::Truncated { offset }),
        }
        let len = u32::from_le_bytes(len) as usize;
        if len == 0 || len > MAX_RECORD_BYTES {
            return Err(RecordError::TooLarge { offset, len });
        }
        let mut kind = [0u8; 1];
        // Read straight into the payload's own buffer: zeroing a buffer first and splitting
        // the type byte off (a second allocation and a copy) were a tenth of a replay.
        let mut payload = Vec::with_capacity(len - 1);
        if read_full(&mut self.input, &mut kind)? != 1
            || (&mut self.input)
                .take(len as u64 - 1)
                .read_to_end(&mut payload)?
                != len - 1
        {
            return Err(RecordError::Truncated { offset });
        }
        self.offset += 4 + len as u64;
        match kind[0] {
            TYPE_KERNEL_EVENT => Ok(Some(Record::KernelEvent(payload))),
            TYPE_FACT => serde_json::from_slice(&payload)
                .map(|fact| Some(Record::Fact(fact)))
                .map_err(|source| RecordError::BadFact { offset, source }),
            kind => Err(RecordError::UnknownType { offset, kind }),
        }
    }
}

/// Read until `buf` is full or the input ends; returns the bytes read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

impl<R: Read> Iterator for RecordReader<R> {
    type Item = Result<Record, RecordError>;

    /// Records until the end, or until the first error (framing cannot be trusted after it).
    /// A bad fact or unknown record type is skippable: its length was valid.
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.read_record() {
            Ok(record) => record.map(Ok),
            Err(error) => {
                let skippable = matches!(
                    error,
                    RecordError::BadFact { .. } | RecordError::UnknownType { .. }
                );
                // After a skippable error the length was valid and the next record starts where
                // this one ended; after any other, framing is lost.
                self.failed = !skippable;
                Some(Err(error))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{ClockSync, ProcessInfo};

    fn sample() -> Vec<Record> {
        vec![
            Record::Fact(Fact::Clock(ClockSync {
                monotonic_ns: 1,
                realtime_ns: 2,
            })),
            Record::KernelEvent(vec![1, 2, 3, 4]),
            Record::Fact(Fact::Process(ProcessInfo {
                pid: 3,
                comm: "curl".into(),
                ..Default::default()
            })),
            Record::KernelEvent(vec![0xAB; 20_000]),
        ]
    }

    fn write(records: &[Record]) -> Vec<u8> {
        // Tests run in parallel: every call gets its own file.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("observer-record-{}-{n}", std::process::id()));
        let mut writer = RecordWriter::create(&path).expect("create");
        for record in records {
            match record {
                Record::KernelEvent(bytes) => writer.kernel_event(bytes),
                Record::Fact(fact) => writer.fact(fact),
            }
            .expect("write");
        }
        writer.flush().expect("flush");
        let bytes = std::fs::read(&path).expect("read back");
        let mode = std::fs::metadata(&path).expect("stat").permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        let _ = std::fs::remove_file(path);
        bytes
    }

    fn read(bytes: &[u8]) -> Result<Vec<Result<Record, String>>, RecordError> {
        Ok(RecordReader::new(bytes, "test")?
            .map(|r| r.map_err(|e| e.to_string()))
            .collect())
    }

    #[test]
    fn records_round_trip() {
        let records = sample();
        let read = read(&write(&records)).expect("header");
        let read: Vec<Record> = read.into_iter().map(|r| r.expect("record")).collect();
        assert_eq!(read, records);
    }

    #[test]
    fn a_cut_recording_keeps_what_came_before_the_cut() {
        let bytes = write(&sample());
        let cut = &bytes[..bytes.len() - 100];
        let read = read(cut).expect("header");
        assert_eq!(read.len(), 4);
        assert!(read[..3].iter().all(Result::is_ok));
        assert!(read[3].as_ref().unwrap_err().contains("cut short"));
    }

    #[test]
    fn not_a_recording_is_named_as_such() {
        let error = read(b"GET / HTTP/1.1\r\n").unwrap_err().to_string();
        assert!(error.contains("not an observer recording"), "{error}");
        let mut bytes = write(&[]);
        bytes[7] = 9;
        assert!(read(&bytes).unwrap_err().to_string().contains("format 9"));
    }

    #[test]
    fn absurd_lengths_are_refused_without_allocating() {
        let mut bytes = write(&[]);
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.push(TYPE_KERNEL_EVENT);
        let read = read(&bytes).expect("header");
        assert!(read[0].as_ref().unwrap_err().contains("damaged"));
    }

    #[test]
    fn a_bad_fact_is_skipped_and_reading_goes_on() {
        let mut bytes = write(&[]);
        let junk = b"{not json";
        bytes.extend_from_slice(&(junk.len() as u32 + 1).to_le_bytes());
        bytes.push(TYPE_FACT);
        bytes.extend_from_slice(junk);
        bytes.extend_from_slice(&write(&[Record::KernelEvent(vec![7])])[8..]);
        let read = read(&bytes).expect("header");
        assert_eq!(read.len(), 2);
        assert!(read[0].is_err());
        assert_eq!(
            read[1].as_ref().expect("second record"),
            &Record::KernelEvent(vec![7])
        );
    }
}
