//! The harness of observer's privileged end-to-end tests.
//!
//! The tests in `tests/` start real servers and clients on loopback, run the real agent
//! (`observer run`) beside them, and check the API calls it reports, from both sides of each
//! connection. They need root and the programs named in [`programs`]; `cargo xtask test` runs
//! them. See README.md in this directory for how to run them and what to do when one fails.

pub mod agent;
pub mod bpf;
pub mod calls;
pub mod clients;
pub mod metrics;
pub mod process;
pub mod programs;
pub mod servers;
pub mod tempdir;
pub mod tls_stacks;

pub use agent::{Agent, Stopped};
pub use calls::{find_call, Call, Expect, Role};
pub use clients::{curl, pipeline, KeepAliveClient};
pub use programs::python;
pub use servers::{Certificate, Nginx, PythonServer, Site};
