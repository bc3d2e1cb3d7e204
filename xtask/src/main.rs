//! `cargo xtask`: the one entry point for developers and CI.
//!
//! The README's two commands, `cargo xtask run` and `cargo xtask test`, must work on a fresh Debian
//! machine, so both first install what is missing (`setup`), then build the eBPF object with
//! nightly and the agent with stable (`build`), then do their job. Each subcommand lives in its own
//! module; adding one means one enum variant, one match arm and one module.

mod bench;
mod build;
mod cmd;
mod compare;
mod host;
mod run;
mod setup;
mod test;
mod toolchain;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    bin_name = "cargo xtask",
    about = "Set up, build, run and test observer"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install what is missing: nightly's rust-src, bpf-linker, Debian packages, cargo-fuzz,
    /// Python packages; mount tracefs. Fast when everything is present.
    Setup(setup::SetupArgs),
    /// Build the eBPF object (nightly, bpf-linker), then the agent that embeds it.
    Build(build::BuildArgs),
    /// Set up, build, then replace this process with `observer run <ARGS>` (needs root).
    Run(run::RunArgs),
    /// Set up, build, then lint, unit tests, brief fuzzing and the privileged end-to-end tests.
    Test(test::TestArgs),
    /// Set up, build, then measure what observing costs and print the table (needs root).
    Bench(bench::BenchArgs),
    /// Measure the working tree's sensitive-data scanner against a revision's, in one process
    /// (this VM's drift makes separate runs differ by more than most changes).
    CompareScanner(compare::CompareArgs),
}

fn main() -> ExitCode {
    host::put_cargo_bin_on_path();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup(args) => setup::setup(&args.into()),
        Command::Build(args) => build::build(args.profile()).map(|built| built.print()),
        Command::Run(args) => run::run(args),
        Command::Test(args) => test::test(&args),
        Command::Bench(args) => bench::bench(&args),
        Command::CompareScanner(args) => compare::compare_scanner(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
