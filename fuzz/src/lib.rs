//! The parsers under fuzzing, compiled from observer-user's own sources.
//!
//! The HTTP/1 stages (`protocol`, `pairing`) depend on nothing but httparse, memchr and
//! thiserror; building the whole agent crate (aya, tokio, SQLite...) with sanitizers took longer
//! than the fuzzing itself. Including the two modules' files here builds exactly the code that
//! is fuzzed, from the same sources, under the same crate-relative paths.

#[path = "../../observer-user/src/protocol/mod.rs"]
pub mod protocol;

#[path = "../../observer-user/src/pairing.rs"]
pub mod pairing;
