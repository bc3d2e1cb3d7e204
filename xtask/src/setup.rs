//! `cargo xtask setup`: installs whatever building and testing observer needs and is missing.
//!
//! Idempotent and fast when all is there (a few probes, well under a second), so `run` and `test`
//! call it every time. Each component prints one line, `ok` or `installing`; quiet callers
//! (`run`) only see the `installing` lines.

mod apt;
mod bpf_linker;
mod python;

pub use bpf_linker::BPF_LINKER_BIN;

use std::{path::Path, process::Command};

use anyhow::{Context as _, Result};

use crate::{
    cmd, host,
    toolchain::{Nightly, NIGHTLY},
};

/// Where the kernel's tracing events live; the agent's tracepoints are found through it.
const TRACEFS_DIR: &str = "/sys/kernel/tracing";

#[derive(Debug, clap::Args)]
pub struct SetupArgs {
    /// Also install what the benchmarks need.
    #[arg(long)]
    bench: bool,
}

#[derive(Debug, Default)]
pub struct SetupOptions {
    /// Add the benchmark-only Debian packages.
    pub bench: bool,
    /// Print only what gets installed.
    pub quiet: bool,
}

impl From<SetupArgs> for SetupOptions {
    fn from(args: SetupArgs) -> Self {
        Self {
            bench: args.bench,
            quiet: false,
        }
    }
}

/// Prints one line per component.
pub struct Progress {
    quiet: bool,
}

impl Progress {
    /// The component is present and working; `what` says which version or why we believe it.
    pub fn ok(&self, component: &str, what: &str) {
        if !self.quiet {
            eprintln!("setup: {component:<18} ok ({what})");
        }
    }

    /// The component is missing or broken and is being installed; `why` says which.
    pub fn installing(&self, component: &str, why: &str) {
        eprintln!("setup: {component:<18} installing ({why})");
    }
}

pub fn setup(options: &SetupOptions) -> Result<()> {
    let progress = Progress {
        quiet: options.quiet,
    };
    let nightly = ensure_rust_src(&progress)?;
    // Debian packages come first: a fresh machine may lack what later steps call.
    apt::ensure(&progress, options.bench)?;
    bpf_linker::ensure(&progress, &nightly)?;
    ensure_cargo_fuzz(&progress)?;
    python::ensure(&progress)?;
    ensure_tracefs(&progress)
}

/// `-Z build-std=core` compiles `core` for the BPF target from nightly's `rust-src` component.
fn ensure_rust_src(progress: &Progress) -> Result<Nightly> {
    const COMPONENT: &str = "nightly rust-src";
    let nightly = Nightly::detect().with_context(|| {
        format!(
            "the eBPF object is built with a nightly toolchain and none answered; \
             install one with `rustup toolchain install {NIGHTLY} --profile minimal --component rust-src`"
        )
    })?;
    if nightly.rust_src_dir().join("core").is_dir() {
        progress.ok(COMPONENT, &format!("LLVM {}", nightly.llvm_version));
    } else {
        progress.installing(COMPONENT, "no standard library source for -Z build-std");
        cmd::run(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            NIGHTLY,
        ]))?;
    }
    Ok(nightly)
}

/// `cargo fuzz` drives the brief fuzz runs of `cargo xtask test`.
fn ensure_cargo_fuzz(progress: &Progress) -> Result<()> {
    const COMPONENT: &str = "cargo-fuzz";
    match cmd::stdout_of(Command::new("cargo").args(["fuzz", "--version"])) {
        Ok(version) => progress.ok(COMPONENT, version.trim()),
        Err(_) => {
            progress.installing(COMPONENT, "`cargo fuzz` is not installed");
            cmd::run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
        }
    }
    Ok(())
}

/// The agent attaches to syscall tracepoints, which it finds under tracefs; some machines (and
/// containers) boot without it mounted.
fn ensure_tracefs(progress: &Progress) -> Result<()> {
    const COMPONENT: &str = "tracefs";
    let events = Path::new(TRACEFS_DIR).join("events");
    if events.is_dir() {
        progress.ok(COMPONENT, &format!("{} exists", events.display()));
        return Ok(());
    }
    progress.installing(
        COMPONENT,
        &format!("{} is missing: mounting", events.display()),
    );
    host::ensure_root("mounting tracefs")?;
    cmd::run(Command::new("mount").args(["-t", "tracefs", "tracefs", TRACEFS_DIR]))
}
