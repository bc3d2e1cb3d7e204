//! The parsers and the scanner under fuzzing, compiled from observer-user's own sources.
//!
//! The HTTP/1 stages (`protocol`, `pairing`) depend on nothing but httparse, memchr,
//! thiserror and the decompressors, and the sensitive-data scanner on its pattern crates and `findings::Severity`;
//! building the whole agent crate (aya, tokio, SQLite...) with sanitizers took longer than the
//! fuzzing itself. Including those modules' files here builds exactly the code that is fuzzed,
//! from the same sources, under the same crate-relative paths.

#[path = "../../observer-user/src/protocol/mod.rs"]
pub mod protocol;

#[path = "../../observer-user/src/pairing.rs"]
pub mod pairing;

/// The scanner's modules, without the analyzer, policy and store around them. (The path on the
/// inline module names the directory its file modules are read from.)
#[path = "../../observer-user/src/sensitive"]
pub mod sensitive {
    pub mod bytes;
    pub mod delimited;
    pub mod fields;
    pub mod hints;
    pub mod json;
    pub mod markup;
    pub mod recent;
    pub mod scan;
    pub mod types;
    pub mod validate;
}

/// `findings::Severity` alone: the scanner names a default severity per type.
#[path = "../../observer-user/src/findings"]
pub mod findings {
    mod severity;
    pub use severity::Severity;
}
