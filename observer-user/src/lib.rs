//! observer's agent, as a library: one module per pipeline stage.
//!
//! ```text
//! capture ──> events ──> conn ──> protocol ──> pairing ──> model ──> analyzers ──> redact ──> export
//!                          facts (enrich) ─┘          (inventory, sensitive data, detection)
//! ```
//!
//! Only `capture` touches the kernel. Everything after it is plain Rust over recorded bytes, so
//! `observer replay` runs the same code as live capture and every stage is testable without root.

/// mimalloc (see `allocator`). In the library so that the benchmarks measure what the agent
/// runs.
#[global_allocator]
static ALLOCATOR: allocator::Allocator = allocator::Allocator;

pub mod agent;
pub mod allocator;
pub mod capture;
pub mod cli;
pub mod conn;
pub mod coverage;
pub mod detect;
pub mod echo;
pub mod enrich;
pub mod events;
pub mod export;
pub mod facts;
pub mod findings;
pub mod inventory;
pub mod metrics;
pub mod model;
pub mod output;
pub mod pairing;
pub mod pcap;
pub mod pipeline;
pub mod protocol;
pub mod record;
pub mod redact;
pub mod sensitive;
pub mod state;
pub mod summary;
