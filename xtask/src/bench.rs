//! `cargo xtask bench`: what observing costs, printed as one table.
//!
//! Real software under real load: nginx serving 1 KiB and 64 KiB files, plaintext and TLS,
//! keep-alive and `Connection: close`, driven by wrk, with nothing watching (the baseline), with
//! observer, and with the classic alternatives (tcpdump on lo, a bpftrace script copying
//! payloads from the same hooks). Throughput varies 10-14 % between rounds on these VMs even when
//! pinned, so each comparison alternates baseline and observed runs, counterbalanced (A B B A
//! A B B A), and reports medians and pair-by-pair ratios. Pinned runs put nginx and wrk on CPU 0 and the observer on
//! CPU 1, so the ratio measures what lands in the traced application's path.
//!
//! Then the cost per event (tight loops with and without the agent, and the kernel's own run time
//! per program), and the userspace benchmarks (`cargo bench -p observer-user`: the pipeline,
//! sensitive data, the inventory, and detection's recall per OWASP category, false positives
//! and calls per second, each bench's printout copied into the report), and the agent's
//! instructions per API call under callgrind, which the host's speed cannot move. Targets are
//! printed next to the figures; nothing here fails on a missed target: benchmarks report, tests
//! assert.

mod beside;
mod instructions;
mod load;
mod micro;
mod nginx;
mod observers;
mod report;

use std::{path::PathBuf, time::Instant};

use anyhow::{bail, Context as _, Result};
use clap::ValueEnum as _;

use crate::{build, cmd, host, setup};
use load::Latency;
use observers::ObserverKind;
use report::Report;

/// Alternating baseline/observed pairs per comparison: at least four to see through the
/// round-to-round variance.
const PAIRS: usize = 4;
/// Pairs for the peer comparisons and the `--quick` runs.
const QUICK_PAIRS: usize = 2;

/// Seconds of load per run: wrk's numbers settle within a second; two keep the whole bench
/// under ten minutes.
const RUN_SECONDS: u32 = 2;

/// Concurrent connections from wrk: enough to saturate one nginx worker.
const CONNECTIONS: u32 = 16;

/// The CPU for the server and the load, and the one for the observer, when pinned.
const SERVER_CPU: usize = 0;
const OBSERVER_CPU: usize = 1;

/// The fixed-rate run: at half the baseline maximum, but no more than this (the target speaks of
/// agent CPU at 10,000 requests per second).
const FIXED_RATE_MAX: f64 = 10_000.0;
const FIXED_RATE_SECONDS: u32 = 10;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Fewer pairs: a quick look, not figures to publish.
    #[arg(long)]
    quick: bool,
    /// Run only these parts (repeatable).
    #[arg(long, value_enum)]
    only: Vec<Part>,
    /// Instead of the table: attach this agent binary and the one just built at once, under a
    /// fixed rate of requests, and print each kernel program's run time for both (kept apart
    /// from the host's drift, which moves separate runs by more than most kernel changes).
    #[arg(long, value_name = "AGENT", conflicts_with_all = ["only", "quick"])]
    against: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Part {
    /// Saturation throughput with and without the observer, pinned and unpinned.
    Overhead,
    /// The same against tcpdump and bpftrace.
    Peers,
    /// Latency and agent CPU at a fixed request rate.
    FixedRate,
    /// Cost per syscall event and per TLS call; kernel run time per program.
    Micro,
    /// The userspace benchmarks: pipeline, inventory, detectors.
    Userspace,
    /// Instructions per API call through the whole agent, under callgrind: the figure the
    /// host's speed cannot move.
    Instructions,
}

/// One workload: what nginx serves and how wrk asks for it.
#[derive(Debug, Clone, Copy)]
struct Workload {
    name: &'static str,
    tls: bool,
    file: nginx::File,
    close: bool,
    sendfile: bool,
    /// The ratio of baseline throughput the observer must keep here (pinned), if any.
    target: Option<f64>,
}

const WORKLOADS: &[Workload] = &[
    Workload {
        name: "1 KiB HTTP",
        tls: false,
        file: nginx::File::OneKib,
        close: false,
        sendfile: false,
        target: Some(0.90),
    },
    Workload {
        name: "64 KiB HTTP",
        tls: false,
        file: nginx::File::SixtyFourKib,
        close: false,
        sendfile: false,
        target: Some(0.90),
    },
    Workload {
        name: "1 KiB HTTPS",
        tls: true,
        file: nginx::File::OneKib,
        close: false,
        sendfile: false,
        target: Some(0.75),
    },
    Workload {
        name: "64 KiB HTTPS",
        tls: true,
        file: nginx::File::SixtyFourKib,
        close: false,
        sendfile: false,
        target: None,
    },
    Workload {
        name: "1 KiB HTTP, Connection: close",
        tls: false,
        file: nginx::File::OneKib,
        close: true,
        sendfile: false,
        target: None,
    },
    Workload {
        name: "1 KiB HTTPS, Connection: close",
        tls: true,
        file: nginx::File::OneKib,
        close: true,
        sendfile: false,
        target: None,
    },
    Workload {
        name: "64 KiB HTTP, sendfile on",
        tls: false,
        file: nginx::File::SixtyFourKib,
        close: false,
        sendfile: true,
        target: None,
    },
];

/// Workloads repeated unpinned, and compared with the peers.
const UNPINNED: &[usize] = &[0, 2];
const PEER_WORKLOADS: &[usize] = &[0, 1, 2];

pub fn bench(args: &BenchArgs) -> Result<()> {
    host::ensure_root("the benchmarks (they load eBPF programs and pin processes)")?;
    let started = Instant::now();
    setup::setup(&setup::SetupOptions {
        bench: true,
        quiet: true,
    })?;
    let built = build::build(build::Profile::Release)?;
    if observers::agent_running() {
        bail!("an observer agent is already running on this host: stop it, it would skew every figure");
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pinned = cpus >= 2;
    if !pinned {
        eprintln!("bench: one CPU only: pinned runs skipped, everything runs unpinned");
    }
    if let Some(against) = &args.against {
        let text = beside::compare(&built.agent, against, pinned)?;
        println!("{text}");
        return write_to_target_bench("beside.md", &text);
    }
    let pairs = if args.quick { QUICK_PAIRS } else { PAIRS };
    let wanted = |part| args.only.is_empty() || args.only.contains(&part);
    let context = Context {
        agent: built.agent.clone(),
        pairs,
        pinned,
    };
    let mut report = Report::default();
    report.header(&format!("{} CPUs, kernel {}", cpus, kernel_release()));

    // Each part timed: the whole bench must stay under ten minutes here.
    let mut took = Vec::new();
    for &part in Part::value_variants() {
        if !wanted(part) {
            continue;
        }
        let part_started = Instant::now();
        match part {
            Part::Overhead => context.overhead(&mut report)?,
            Part::Peers => context.peers(&mut report)?,
            Part::FixedRate => report.fixed_rate(context.fixed_rate(&WORKLOADS[0])?),
            Part::Micro => report.micro(micro::measure(&context.agent, pinned)?),
            Part::Userspace => report.userspace(userspace_benchmarks(&built)?),
            Part::Instructions => report.instructions(instructions::measure(&built)?),
        }
        took.push((part, part_started.elapsed()));
    }

    report.footer(started.elapsed(), &took);
    let text = report.render();
    println!("{text}");
    write_to_target_bench("report.md", &text)
}

/// Keep what a bench printed in `target/bench/<name>`, and say where.
fn write_to_target_bench(name: &str, text: &str) -> Result<()> {
    let out = host::repo_root().join("target/bench");
    std::fs::create_dir_all(&out).context("creating target/bench")?;
    std::fs::write(out.join(name), text).with_context(|| format!("writing target/bench/{name}"))?;
    eprintln!("bench: written to target/bench/{name}");
    Ok(())
}

/// What every comparison needs.
#[derive(Debug, Clone)]
struct Context {
    agent: PathBuf,
    pairs: usize,
    pinned: bool,
}

/// One comparison: baseline and observed throughput, pair by pair, and what the observer saw.
#[derive(Debug, Default)]
pub struct Comparison {
    pub baseline: Vec<f64>,
    pub observed: Vec<f64>,
    pub observer: Vec<observers::Outcome>,
}

impl Context {
    /// Every workload pinned (when the host has two CPUs), then the unpinned ones.
    fn overhead(&self, report: &mut Report) -> Result<()> {
        for workload in WORKLOADS {
            report.overhead(
                workload,
                self.pinned,
                self.compare(workload, self.pinned, ObserverKind::Agent)?,
            );
        }
        if self.pinned {
            for &index in UNPINNED {
                let workload = &WORKLOADS[index];
                report.overhead(
                    workload,
                    false,
                    self.compare(workload, false, ObserverKind::Agent)?,
                );
            }
        }
        Ok(())
    }

    /// tcpdump and bpftrace on the workloads they are compared on, fewer pairs each.
    fn peers(&self, report: &mut Report) -> Result<()> {
        let peer_context = Context {
            pairs: QUICK_PAIRS,
            ..self.clone()
        };
        for &index in PEER_WORKLOADS {
            let workload = &WORKLOADS[index];
            for peer in [ObserverKind::Tcpdump, ObserverKind::Bpftrace] {
                report.peer(
                    workload,
                    peer,
                    peer_context.compare(workload, self.pinned, peer)?,
                );
            }
        }
        Ok(())
    }

    fn compare(&self, workload: &Workload, pinned: bool, kind: ObserverKind) -> Result<Comparison> {
        let server = nginx::Nginx::start(workload.sendfile, pinned.then_some(SERVER_CPU))?;
        let url = server.url(workload.tls, workload.file);
        let load_cpu = pinned.then_some(SERVER_CPU);
        let observer_cpu = pinned.then_some(OBSERVER_CPU);
        eprintln!(
            "bench: {} ({}, {kind:?})",
            workload.name,
            if pinned { "pinned" } else { "unpinned" }
        );
        // Warm up the server and the page cache once, unmeasured.
        load::saturate(&url, CONNECTIONS, 1, workload.close, load_cpu)?;
        let saturate = || -> Result<f64> {
            Ok(
                load::saturate(&url, CONNECTIONS, RUN_SECONDS, workload.close, load_cpu)?
                    .requests_per_second,
            )
        };
        // A B B A, A B B A...: counterbalanced, so a drift over the rounds does not favour
        // either side, and one observer serves the two observed runs that meet in the middle
        // (starting and stopping one costs seconds: detaching each probe waits for an RCU
        // grace period).
        let mut comparison = Comparison::default();
        let mut observer = None;
        for pair in 0..self.pairs {
            let observed_first = pair % 2 == 1;
            if !observed_first {
                comparison.baseline.push(saturate()?);
            }
            let running = match observer.take() {
                Some(running) => running,
                None => {
                    observers::start(kind, &self.agent, server.port(workload.tls), observer_cpu)?
                }
            };
            comparison.observed.push(saturate()?);
            let last = pair + 1 == self.pairs;
            if observed_first || last {
                comparison.observer.push(running.stop()?);
            } else {
                observer = Some(running);
            }
            if observed_first {
                comparison.baseline.push(saturate()?);
            }
        }
        Ok(comparison)
    }

    fn fixed_rate(&self, workload: &Workload) -> Result<report::FixedRate> {
        let pinned = self.pinned;
        let server = nginx::Nginx::start(workload.sendfile, pinned.then_some(SERVER_CPU))?;
        let url = server.url(workload.tls, workload.file);
        let load_cpu = pinned.then_some(SERVER_CPU);
        eprintln!("bench: fixed rate, {}", workload.name);
        let max =
            load::saturate(&url, CONNECTIONS, RUN_SECONDS, false, load_cpu)?.requests_per_second;
        let rate = (max / 2.0).min(FIXED_RATE_MAX);
        // Counterbalanced like the saturation runs (baseline, observed, observed, baseline): a
        // single pair moved the p99 change between +23 % and +46 % from run to run.
        let first_baseline = load::fixed_rate(&url, rate, FIXED_RATE_SECONDS, load_cpu)?;
        let observer = observers::start(
            ObserverKind::Agent,
            &self.agent,
            server.port(workload.tls),
            pinned.then_some(OBSERVER_CPU),
        )?;
        let observed = [
            load::fixed_rate(&url, rate, FIXED_RATE_SECONDS, load_cpu)?,
            load::fixed_rate(&url, rate, FIXED_RATE_SECONDS, load_cpu)?,
        ];
        let outcome = observer.stop()?;
        let last_baseline = load::fixed_rate(&url, rate, FIXED_RATE_SECONDS, load_cpu)?;
        Ok(report::FixedRate {
            workload: workload.name,
            rate,
            baseline: Latency::mean(&[first_baseline, last_baseline]),
            observed: Latency::mean(&observed),
            observer: outcome,
        })
    }
}

/// `cargo bench -p observer-user`: each bench prints its own figures; they go into the report.
fn userspace_benchmarks(built: &build::Built) -> Result<String> {
    eprintln!("bench: userspace benchmarks");
    let output = cmd::stdout_of(build::cargo(host::repo_root(), built).args([
        "bench",
        "--quiet",
        "-p",
        "observer-user",
        "--benches",
    ]))?;
    Ok(output)
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "?".into(), |s| s.trim().to_string())
}
