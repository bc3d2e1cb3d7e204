//! `cargo xtask test`: everything CI checks, in the order that fails fastest.
//!
//! After `setup` and `build`: lint (rustfmt, clippy), unit and golden tests (no privileges), brief
//! fuzz runs of every fuzz target, then the privileged end-to-end tests, which start the agent
//! built here. It stops at the first failure and always ends with a summary of every stage, its
//! outcome and its time. `.ci/run` runs exactly this.

mod fuzz;

use std::{
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{anyhow, bail, Result};
use clap::ValueEnum;

use crate::{
    build::{self, Built, Profile, EBPF_CRATE_DIR},
    cmd, host,
    setup::{self, SetupOptions},
};

/// The end-to-end tests start real servers and the agent; if one hangs, this kills the stage (and
/// everything it started) long before CI's own limit, and inside the 30 minutes a run may take.
const E2E_DEADLINE: Duration = Duration::from_secs(15 * 60);

/// The privileged end-to-end tests' package; outside the default workspace members.
const E2E_PACKAGE: &str = "observer-tests";

/// Read by the end-to-end tests: the agent binary to start.
const AGENT_BIN_ENV: &str = "OBSERVER_BIN";

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Run only this stage (repeat for several); setup and build always run first.
    #[arg(long, value_enum, conflicts_with = "skip_fuzz")]
    only: Vec<Stage>,
    /// Leave out the fuzz runs.
    #[arg(long)]
    skip_fuzz: bool,
}

/// The test stages, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Stage {
    /// `cargo fmt --check` and `cargo clippy -D warnings`, on the workspace and the eBPF crate.
    Lint,
    /// Unprivileged unit and golden tests.
    Unit,
    /// A short run of every fuzz target.
    Fuzz,
    /// The privileged end-to-end tests (root).
    E2e,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Self::Lint => "lint",
            Self::Unit => "unit",
            Self::Fuzz => "fuzz",
            Self::E2e => "e2e",
        }
    }

    /// Runs the stage; the `Ok` string is a note for the summary.
    fn run(self, built: &Built) -> Result<String> {
        match self {
            Self::Lint => lint(built),
            Self::Unit => unit(built),
            Self::Fuzz => fuzz::run(built),
            Self::E2e => end_to_end(built),
        }
    }
}

pub fn test(args: &TestArgs) -> Result<()> {
    let stages: Vec<Stage> = Stage::value_variants()
        .iter()
        .copied()
        .filter(|stage| args.only.is_empty() || args.only.contains(stage))
        .filter(|stage| !(args.skip_fuzz && *stage == Stage::Fuzz))
        .collect();
    if stages.contains(&Stage::E2e) {
        // Checked first: the other stages take minutes, and this one would fail at the end.
        if !host::is_root() {
            bail!(
                "the end-to-end tests need root (they load eBPF programs): run them as root, or run \
                 the other stages alone with `--only lint --only unit --only fuzz`"
            );
        }
    }
    let mut summary = Summary::default();
    let result = run_all(&stages, &mut summary);
    summary.print(&stages);
    result
}

fn run_all(stages: &[Stage], summary: &mut Summary) -> Result<()> {
    summary.step("setup", || {
        setup::setup(&SetupOptions::default())?;
        Ok(String::new())
    })?;
    let built = summary.step_with(
        "build",
        || build::build(Profile::Release),
        |_| String::new(),
    )?;
    for stage in stages {
        summary.step(stage.name(), || stage.run(&built))?;
    }
    Ok(())
}

fn lint(built: &Built) -> Result<String> {
    // The eBPF crate is outside the workspace, so the workspace commands do not reach it; it gets
    // its own, its clippy for the BPF target it builds for. Formatting first: it takes a second.
    let root = host::repo_root();
    let ebpf_dir = root.join(EBPF_CRATE_DIR);
    for dir in [root, &ebpf_dir] {
        cmd::run(
            Command::new("cargo")
                .current_dir(dir)
                .args(["fmt", "--all", "--check"]),
        )?;
    }
    // `--workspace` includes the members left out of the default set (the end-to-end tests).
    let deny_warnings = ["--", "-D", "warnings"];
    cmd::run(
        build::cargo(root, built)
            .args(["clippy", "--workspace", "--all-targets"])
            .args(deny_warnings),
    )?;
    cmd::run(build::ebpf_cargo("clippy").args(deny_warnings))?;
    Ok(String::new())
}

fn unit(built: &Built) -> Result<String> {
    cmd::run(build::cargo(host::repo_root(), built).args([
        "test",
        "--workspace",
        "--exclude",
        E2E_PACKAGE,
    ]))?;
    Ok(String::new())
}

fn end_to_end(built: &Built) -> Result<String> {
    host::ensure_root("the end-to-end tests (they load eBPF programs)")?;
    cmd::run_with_deadline(
        build::cargo(host::repo_root(), built)
            .args(["test", "--package", E2E_PACKAGE, "--", "--test-threads=1"])
            .env(AGENT_BIN_ENV, &built.agent),
        E2E_DEADLINE,
    )?;
    Ok(String::new())
}

/// What ran, how it ended and how long it took.
#[derive(Default)]
struct Summary {
    rows: Vec<(&'static str, Result<String, String>, Duration)>,
}

impl Summary {
    /// Runs one step, timing it and recording its outcome; an error stops the caller.
    fn step(&mut self, name: &'static str, step: impl FnOnce() -> Result<String>) -> Result<()> {
        self.step_with(name, step, String::clone).map(drop)
    }

    /// Like [`Self::step`] for a step that returns a value; `note` describes it for the summary.
    fn step_with<T>(
        &mut self,
        name: &'static str,
        step: impl FnOnce() -> Result<T>,
        note: impl FnOnce(&T) -> String,
    ) -> Result<T> {
        eprintln!("\n==> {name}");
        let started = Instant::now();
        let result = step();
        let elapsed = started.elapsed();
        let outcome = match &result {
            Ok(value) => Ok(note(value)),
            Err(err) => Err(format!("{err:#}")),
        };
        eprintln!(
            "<== {name}: {} in {}",
            if outcome.is_ok() { "passed" } else { "FAILED" },
            seconds(elapsed)
        );
        self.rows.push((name, outcome, elapsed));
        result.map_err(|err| anyhow!("`{name}` failed: {err:#}"))
    }

    /// Prints every step, including those that did not run because an earlier one failed.
    fn print(&self, stages: &[Stage]) {
        let planned = ["setup", "build"]
            .into_iter()
            .chain(stages.iter().map(|stage| stage.name()));
        eprintln!("\ntest summary:");
        let mut total = Duration::ZERO;
        for name in planned {
            let Some((_, outcome, elapsed)) = self.rows.iter().find(|(row, ..)| *row == name)
            else {
                eprintln!("  {name:<6} not run");
                continue;
            };
            total += *elapsed;
            let (word, note) = match outcome {
                Ok(note) => ("passed", note),
                Err(err) => ("FAILED", err),
            };
            let line = format!("  {name:<6} {word:<7} {:>8}  {note}", seconds(*elapsed));
            eprintln!("{}", line.trim_end());
        }
        eprintln!("  {:<14} {:>8}", "total", seconds(total));
    }
}

fn seconds(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}
