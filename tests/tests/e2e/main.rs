//! observer's privileged end-to-end tests, in one binary (as aya's integration tests are) so
//! that one run reports every failure: real servers and clients on loopback, the real agent.
//!
//! Run them with `cargo xtask test` (as root). Each test starts its own servers first, then its
//! own agent filtered to its own port where it can, so host traffic does not interfere.

mod agent;
mod http;
mod loss;
mod metrics;
mod syscalls;
mod tls;
mod tls_stacks;
