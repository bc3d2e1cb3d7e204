//! Debian packages: the real servers, clients and tools that the tests and benchmarks drive.
//!
//! Asks dpkg which are installed and installs only the missing ones, running `apt-get update`
//! first only then (package lists on a fresh machine may be empty or stale).

use std::{collections::HashSet, process::Command};

use anyhow::{Context as _, Result};

use super::Progress;
use crate::{cmd, host};

/// What the end-to-end tests (`tests/`) start, call or inspect. Names valid on Debian 12 and 13.
pub const TEST_PACKAGES: &[&str] = &[
    "nginx",     // an HTTP/1.1 server, plain and TLS through the system's libssl (uprobe path)
    "curl",      // a client, plain and TLS through libssl
    "openssl",   // throwaway certificates; `s_server`/`s_client`
    "python3",   // small scripted servers and clients
    "golang-go", // Go HTTPS programs built by the tests: crypto/tls probes, stripped binaries
    "wget",      // a client whose TLS is GnuTLS
    "default-jdk-headless", // a Java client: JSSE, which the coverage report must call dark
    "iproute2",  // `ss`, `ip netns` for test hosts on their own network namespaces
    "procps",    // `ps`/`pgrep` to find and check processes
    "bpftool",   // lists loaded programs and maps, to check attach and detach
    "tcpdump",   // what really crossed the wire, to compare the agent's view with
    "wrk",       // bounded load on loopback, to check that drops under pressure are counted
    "prometheus", // scrapes the agent's metrics endpoint; `promtool` checks the exposition
];

/// Added by `setup --bench`: what only the benchmarks use.
pub const BENCH_PACKAGES: &[&str] = &[
    "bpftrace", // measures probe overhead in the kernel independently of the agent
    "valgrind", // callgrind counts the agent's instructions per call, which host noise cannot move
];

/// `dpkg-query`'s status for a package that is really installed (not removed, not half-done).
const INSTALLED_STATUS: &str = "install ok installed";

pub fn ensure(progress: &Progress, bench: bool) -> Result<()> {
    const COMPONENT: &str = "debian packages";
    let mut wanted: Vec<&str> = TEST_PACKAGES.to_vec();
    if bench {
        wanted.extend(BENCH_PACKAGES);
    }
    let missing = missing(&wanted)?;
    if missing.is_empty() {
        progress.ok(COMPONENT, &format!("{} present", wanted.len()));
        return Ok(());
    }
    progress.installing(COMPONENT, &missing.join(" "));
    install(&missing)
}

/// Installs Debian packages by name (after `apt-get update`); used for the packages above and by
/// other components that need one.
pub fn install(packages: &[&str]) -> Result<()> {
    host::ensure_root(&format!(
        "installing Debian packages ({})",
        packages.join(" ")
    ))?;
    let apt_get = || {
        let mut apt_get = Command::new("apt-get");
        // Never stop to ask a question: CI has no terminal.
        apt_get.env("DEBIAN_FRONTEND", "noninteractive");
        apt_get
    };
    cmd::run(apt_get().args(["update", "-q"]))?;
    cmd::run(
        apt_get()
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(packages),
    )
}

/// The packages of `wanted` that are not installed.
pub fn missing<'a>(wanted: &[&'a str]) -> Result<Vec<&'a str>> {
    // One query for all. dpkg-query exits 1 when some name is unknown to it (never installed) and
    // says so on stderr, so its output is read whatever its exit status.
    let output = Command::new("dpkg-query")
        .args(["--show", "--showformat=${Package}\t${Status}\n"])
        .args(wanted)
        .output()
        .context("could not start dpkg-query: is this Debian?")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let installed: HashSet<&str> = stdout
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .filter(|(_, status)| *status == INSTALLED_STATUS)
        .map(|(package, _)| package)
        .collect();
    Ok(wanted
        .iter()
        .copied()
        .filter(|package| !installed.contains(package))
        .collect())
}
