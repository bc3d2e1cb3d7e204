//! The `observer` binary: parse the command line, set up logging and signals, run.

use std::{
    io,
    process::ExitCode,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use clap::Parser;
use observer::{
    agent,
    cli::{Cli, Command, InventoryFormat, OutputArgs},
    coverage, findings,
    inventory::commands,
    summary::Summary,
};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_env_filter(
            EnvFilter::try_from_env("OBSERVER_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    match &cli.command {
        Command::Run(args) => finish(
            stop_on_signals().and_then(|stop| agent::run(args, stop)),
            &args.output,
        ),
        Command::Replay(args) => finish(agent::replay(args), &args.output),
        Command::Inventory(args) => exit(commands::inventory(args)),
        Command::Openapi(args) => exit(commands::openapi(args)),
        Command::Diff(args) => exit(commands::diff(args)),
        Command::Coverage(args) => exit(coverage::command(args)),
        Command::Findings(args) => {
            let json = args.format == InventoryFormat::Json;
            let written = findings::report::write(&args.state.state_dir, json, &mut io::stdout());
            exit(written.map(|()| ExitCode::SUCCESS).map_err(Into::into))
        }
    }
}

/// Print the summary of a run or replay (and write it as JSON if asked).
fn finish(result: anyhow::Result<Summary>, output: &OutputArgs) -> ExitCode {
    let summary = match result {
        Ok(summary) => summary,
        Err(error) => {
            eprintln!("observer: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    eprint!("{summary}");
    if let Some(path) = &output.stats_file {
        if let Err(error) = std::fs::write(path, summary.to_json().to_string()) {
            eprintln!(
                "observer: cannot write the stats file {}: {error}",
                path.display()
            );
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// The exit status of a command that prints its own result.
fn exit(result: anyhow::Result<ExitCode>) -> ExitCode {
    result.unwrap_or_else(|error| {
        eprintln!("observer: {error:#}");
        ExitCode::FAILURE
    })
}

/// A flag set by SIGINT or SIGTERM; a second signal exits at once.
fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            runtime.block_on(async move {
                let mut terminate =
                    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    {
                        Ok(signal) => signal,
                        Err(error) => {
                            tracing::error!("cannot watch SIGTERM: {error}");
                            return;
                        }
                    };
                for _ in 0..2 {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = terminate.recv() => {}
                    }
                    if flag.swap(true, Ordering::Relaxed) {
                        eprintln!("observer: second signal, exiting without cleanup");
                        std::process::exit(130);
                    }
                    tracing::info!("stopping: detaching probes and flushing");
                }
            });
        })?;
    Ok(stop)
}
