//! `cargo xtask build`: the eBPF object, then the agent that embeds it.
//!
//! The eBPF crate is outside the workspace: it builds with nightly for `bpfel-unknown-none`,
//! compiling `core` itself (`-Z build-std`) and linking with bpf-linker. The agent builds with the
//! default (stable) toolchain; observer-user's build script embeds the object named by
//! [`EBPF_OBJECT_ENV`]. Both output paths are read from cargo's own JSON messages, so a
//! `CARGO_TARGET_DIR` or `build.target-dir` setting is honoured.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{bail, Context as _, Result};
use serde_json::Value;

use crate::{cmd, host, setup::BPF_LINKER_BIN, toolchain::NIGHTLY};

/// The eBPF crate's directory, relative to the repository root.
pub const EBPF_CRATE_DIR: &str = "observer-ebpf";

/// Little-endian BPF: the byte order of every host we run on (x86_64, aarch64).
const EBPF_TARGET: &str = "bpfel-unknown-none";

/// The agent's package; its binary and the eBPF crate's are both called [`BIN_NAME`].
const AGENT_PACKAGE: &str = "observer-user";
const BIN_NAME: &str = "observer";

/// Read by observer-user's build script: the eBPF object to embed.
pub const EBPF_OBJECT_ENV: &str = "OBSERVER_EBPF_OBJECT";

/// Settings for the host's compiler that must not reach the eBPF build: a `RUSTC` or wrapper from
/// the stable toolchain, or host `RUSTFLAGS`, would break the nightly BPF build.
const ENV_NOT_FOR_EBPF: &[&str] = &["RUSTC", "RUSTC_WORKSPACE_WRAPPER", "RUSTFLAGS"];

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Build the agent without optimizations (the eBPF object is always optimized: unoptimized
    /// BPF code does not get past the verifier).
    #[arg(long)]
    debug: bool,
}

impl BuildArgs {
    pub fn profile(&self) -> Profile {
        if self.debug {
            Profile::Debug
        } else {
            Profile::Release
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Release,
    Debug,
}

/// What `build` produced, as absolute paths.
#[derive(Debug)]
pub struct Built {
    pub ebpf_object: PathBuf,
    pub agent: PathBuf,
}

impl Built {
    pub fn print(&self) {
        println!("eBPF object: {}", self.ebpf_object.display());
        println!("agent:       {}", self.agent.display());
    }
}

/// `cargo` in `dir`, with the eBPF object set as `build` set it, so no later cargo command sees
/// a changed environment and rebuilds the agent's crate for nothing (its build script reruns
/// when [`EBPF_OBJECT_ENV`] changes).
pub fn cargo(dir: &Path, built: &Built) -> Command {
    let mut cargo = Command::new("cargo");
    cargo
        .current_dir(dir)
        .env(EBPF_OBJECT_ENV, &built.ebpf_object);
    cargo
}

pub fn build(profile: Profile) -> Result<Built> {
    let ebpf_object = build_ebpf()?;
    let agent = build_agent(profile, &ebpf_object)?;
    Ok(Built { ebpf_object, agent })
}

fn build_ebpf() -> Result<PathBuf> {
    // rustc's own error for a missing linker does not say where to get one.
    let bpf_linker = host::cargo_home()?.join("bin").join(BPF_LINKER_BIN);
    if !bpf_linker.is_file() {
        bail!(
            "{} is missing: `cargo xtask setup` installs it",
            bpf_linker.display()
        );
    }
    cargo_build_bin(&mut ebpf_cargo("build"), BIN_NAME)
}

/// `cargo +nightly <subcommand>` on the eBPF crate for the BPF target (`build`, or `clippy` for
/// the lint stage), with the flags and environment that target needs.
pub fn ebpf_cargo(subcommand: &str) -> Command {
    // `bpf_target_arch` tells aya-ebpf which architecture's register layout (pt_regs) the probes
    // read arguments from: the host's, where the object will run. `--btf` makes bpf-linker emit
    // BTF (from the debug info), which the loader and bpftool use to describe maps and programs.
    let rustflags = [
        format!("--cfg=bpf_target_arch=\"{}\"", std::env::consts::ARCH),
        "-Cdebuginfo=2".to_owned(),
        "-Clink-arg=--btf".to_owned(),
    ]
    // cargo's separator for CARGO_ENCODED_RUSTFLAGS, which (unlike RUSTFLAGS) allows spaces.
    .join("\x1f");
    let mut cargo = Command::new("cargo");
    cargo
        .current_dir(host::repo_root().join(EBPF_CRATE_DIR))
        .arg(format!("+{NIGHTLY}"))
        .arg(subcommand)
        .args(["--release", "--target", EBPF_TARGET, "-Z", "build-std=core"])
        .env("CARGO_ENCODED_RUSTFLAGS", rustflags);
    for name in ENV_NOT_FOR_EBPF {
        cargo.env_remove(name);
    }
    cargo
}

fn build_agent(profile: Profile, ebpf_object: &Path) -> Result<PathBuf> {
    let mut cargo = Command::new("cargo");
    cargo
        .current_dir(host::repo_root())
        .args(["build", "--package", AGENT_PACKAGE, "--bin", BIN_NAME])
        .env(EBPF_OBJECT_ENV, ebpf_object);
    if profile == Profile::Release {
        cargo.arg("--release");
    }
    cargo_build_bin(&mut cargo, BIN_NAME)
}

/// Runs a `cargo build` (diagnostics shown as usual) and returns the path of binary `bin_name`
/// from cargo's `compiler-artifact` message.
fn cargo_build_bin(cargo: &mut Command, bin_name: &str) -> Result<PathBuf> {
    cargo
        .arg("--message-format=json-render-diagnostics")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let line = cmd::echo(cargo);
    let output = cargo
        .output()
        .with_context(|| format!("could not start `{line}`"))?;
    cmd::check(&line, output.status)?;
    let messages = String::from_utf8_lossy(&output.stdout);
    let found = messages
        .lines()
        .filter_map(|message| serde_json::from_str::<Value>(message).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter(|message| message["target"]["name"] == bin_name)
        .filter(|message| {
            message["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|kind| kind == "bin"))
        })
        .filter_map(|message| message["executable"].as_str().map(PathBuf::from))
        .next_back();
    match found {
        Some(path) => Ok(path),
        None => bail!("`{line}` succeeded but reported no binary named {bin_name:?}"),
    }
}
