//! `cargo xtask run [-- ARGS]`: set up, build, then become `observer run ARGS`.
//!
//! xtask replaces itself with the agent (`exec`) instead of waiting for it, so Ctrl-C and other
//! signals reach the agent alone, which shuts down cleanly on them; there is no parent left to die
//! first or to outlive it.

use std::{ffi::OsString, os::unix::process::CommandExt as _, process::Command};

use anyhow::Result;

use crate::{
    build::{self, Profile},
    cmd, host,
    setup::{self, SetupOptions},
};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Arguments for `observer run`, e.g. `cargo xtask run -- --help`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<OsString>,
}

pub fn run(args: RunArgs) -> Result<()> {
    // Checked first: no point building for minutes to fail at the end.
    host::ensure_root("`observer run` (it loads eBPF programs)")?;
    setup::setup(&SetupOptions {
        quiet: true,
        ..SetupOptions::default()
    })?;
    let built = build::build(Profile::Release)?;
    let mut agent = Command::new(&built.agent);
    agent.arg("run").args(args.args);
    let line = cmd::echo(&agent);
    // `exec` only returns if it failed.
    let err = agent.exec();
    Err(anyhow::Error::new(err).context(format!("could not start `{line}`")))
}
