//! The bench report: markdown tables, figures next to their targets.

use std::{fmt::Write as _, time::Duration};

use clap::ValueEnum as _;

use super::{
    instructions::Instructions, load::Latency, micro::Micro, observers::ObserverKind,
    observers::Outcome, Comparison, Part, Workload,
};

/// Targets from the performance issue, printed beside the figures.
const TARGET_P99_INCREASE: f64 = 0.05;
const TARGET_AGENT_CPU_AT_10K: f64 = 0.10;
const TARGET_SYSCALL_NS: f64 = 300.0;
const TARGET_TLS_CALL_NS: f64 = 1000.0;

pub struct FixedRate {
    pub workload: &'static str,
    pub rate: f64,
    pub baseline: Latency,
    pub observed: Latency,
    pub observer: Outcome,
}

#[derive(Default)]
pub struct Report {
    header: String,
    overhead: Vec<String>,
    peers: Vec<String>,
    fixed_rate: Option<String>,
    micro: Option<String>,
    userspace: Option<String>,
    instructions: Option<String>,
    footer: String,
}

/// The median of `values` (NaN when there are none).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn ratios(comparison: &Comparison) -> Vec<f64> {
    comparison
        .baseline
        .iter()
        .zip(&comparison.observed)
        .map(|(b, o)| o / b)
        .collect()
}

fn verdict(value: f64, target: Option<f64>, higher_is_better: bool) -> &'static str {
    match target {
        None => "",
        Some(target) if (value >= target) == higher_is_better => "met",
        Some(_) => "MISSED",
    }
}

impl Report {
    pub fn header(&mut self, machine: &str) {
        self.header = format!("# observer benchmark\n\nMachine: {machine}.\n");
    }

    pub fn overhead(&mut self, workload: &Workload, pinned: bool, comparison: Comparison) {
        let ratios = ratios(&comparison);
        let ratio = median(&ratios);
        let target = if pinned { workload.target } else { None };
        let lost: u64 = comparison.observer.iter().map(|o| o.lost).sum();
        let shed: u64 = comparison.observer.iter().map(|o| o.bodies_shed).sum();
        let calls: u64 = comparison.observer.iter().map(|o| o.calls).sum();
        let cpu = median(
            &comparison
                .observer
                .iter()
                .map(|o| o.cpu_share)
                .collect::<Vec<_>>(),
        );
        let rss = comparison
            .observer
            .iter()
            .map(|o| o.peak_rss_kib)
            .max()
            .unwrap_or(0);
        self.overhead.push(format!(
            "| {} | {} | {:.0} | {:.0} | **{ratio:.3}** | {} | {} {} | {:.0} % | {} MiB | {lost} | {shed} of {calls} |",
            workload.name,
            if pinned { "pinned" } else { "unpinned" },
            median(&comparison.baseline),
            median(&comparison.observed),
            ratios
                .iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>()
                .join(" "),
            target.map_or("-".to_string(), |t| format!("≥ {t:.2}")),
            verdict(ratio, target, true),
            cpu * 100.0,
            rss / 1024,
        ));
    }

    pub fn peer(&mut self, workload: &Workload, peer: ObserverKind, comparison: Comparison) {
        let ratio = median(&ratios(&comparison));
        let lost: u64 = comparison.observer.iter().map(|o| o.lost).sum();
        let cpu = median(
            &comparison
                .observer
                .iter()
                .map(|o| o.cpu_share)
                .collect::<Vec<_>>(),
        );
        let (name, sees_tls) = match peer {
            ObserverKind::Tcpdump => ("tcpdump -w on lo", "no (ciphertext)"),
            ObserverKind::Bpftrace => ("bpftrace, payload copies (≤ 1 KiB per call)", "yes"),
            ObserverKind::Agent => ("observer", "yes"),
        };
        self.peers.push(format!(
            "| {} | {name} | **{ratio:.3}** | {:.0} % | {lost} | {sees_tls} |",
            workload.name,
            cpu * 100.0
        ));
    }

    pub fn fixed_rate(&mut self, run: FixedRate) {
        let p99_increase = run.observed.p99_ms / run.baseline.p99_ms - 1.0;
        let cpu = run.observer.cpu_share;
        let mut text = String::new();
        let _ = writeln!(
            text,
            "## Latency and agent CPU at a fixed rate ({}, about {:.0} requests/s)\n",
            run.workload, run.rate
        );
        let _ = writeln!(
            text,
            "Two runs of {} s each, in the order baseline, observer, observer, baseline; the \
             means:\n",
            super::FIXED_RATE_SECONDS
        );
        let _ = writeln!(text, "| | requests/s | p50 | p99 |");
        let _ = writeln!(text, "|---|---|---|---|");
        for (name, latency) in [("baseline", run.baseline), ("observer", run.observed)] {
            let _ = writeln!(
                text,
                "| {name} | {:.0} | {:.3} ms | {:.3} ms |",
                latency.requests_per_second, latency.p50_ms, latency.p99_ms
            );
        }
        let _ = writeln!(
            text,
            "\np99 change: {:+.1} % (target within {:.0} %: {}). Agent CPU: {:.1} % of one core at {:.0} requests/s (target at most {:.0} % at 10,000/s: {}). Events lost: {}. Peak agent memory: {} MiB.",
            p99_increase * 100.0,
            TARGET_P99_INCREASE * 100.0,
            verdict(p99_increase, Some(TARGET_P99_INCREASE), false),
            cpu * 100.0,
            run.observed.requests_per_second,
            TARGET_AGENT_CPU_AT_10K * 100.0,
            verdict(cpu * 10_000.0 / run.observed.requests_per_second.max(1.0), Some(TARGET_AGENT_CPU_AT_10K), false),
            run.observer.lost,
            run.observer.peak_rss_kib / 1024,
        );
        self.fixed_rate = Some(text);
    }

    pub fn micro(&mut self, micro: Micro) {
        let mut text = String::new();
        let _ = writeln!(text, "## Cost per event (in the traced process's path)\n");
        let _ = writeln!(
            text,
            "Each round times the loops without an agent, then with one; the median round's \
             difference, and every round's:\n"
        );
        let _ = writeln!(text, "| event | added time | rounds | target |");
        let _ = writeln!(text, "|---|---|---|---|");
        let rows = [
            (
                "syscall on an HTTP connection (bytes shipped)",
                &micro.syscall_http_ns,
                Some(TARGET_SYSCALL_NS),
            ),
            (
                "syscall on an ignored connection",
                &micro.syscall_other_ns,
                None,
            ),
            (
                "TLS call (SSL_write_ex / SSL_read_ex and its syscall)",
                &micro.tls_call_ns,
                Some(TARGET_TLS_CALL_NS),
            ),
        ];
        for (event, rounds, target) in rows {
            let median = rounds.median();
            let each: Vec<String> = rounds.0.iter().map(|ns| format!("{ns:.0}")).collect();
            let target = target.map_or(String::new(), |target| {
                format!("≤ {target:.0} ns {}", verdict(median, Some(target), false))
            });
            let _ = writeln!(
                text,
                "| {event} | {median:.0} ns | {} | {target} |",
                each.join(", ")
            );
        }
        let _ = writeln!(
            text,
            "\nKernel run time per program (kernel.bpf_stats_enabled, in one more pass of the loops: counting costs each run two clock reads, which the rounds above do not pay):\n"
        );
        let _ = writeln!(text, "| program | runs | ns per run |");
        let _ = writeln!(text, "|---|---|---|");
        for program in &micro.programs {
            let _ = writeln!(
                text,
                "| {} | {} | {:.0} |",
                program.name, program.runs, program.ns_per_run
            );
        }
        self.micro = Some(text);
    }

    pub fn userspace(&mut self, output: String) {
        self.userspace = Some(format!(
            "## Userspace (cargo bench -p observer-user)\n\n```\n{}\n```\n",
            output.trim()
        ));
    }

    pub fn instructions(&mut self, figures: Instructions) {
        let mut text = String::new();
        let _ = writeln!(text, "## Instructions per API call (callgrind)\n");
        let _ = writeln!(
            text,
            "The pipeline bench's traffic as a recording, through `observer replay` as the agent \
             processes it (decode to JSON lines, with inventory, detection, sensitive data and \
             redaction). Unlike the timings above, this figure does not move with the host: \
             compare it across changes.\n"
        );
        let _ = writeln!(text, "| calls | instructions per call | start-up |");
        let _ = writeln!(text, "|---|---|---|");
        let _ = writeln!(
            text,
            "| {} | **{:.0}** | {:.0} M |",
            figures.calls,
            figures.per_call,
            figures.start_up as f64 / 1e6
        );
        let _ = writeln!(
            text,
            "\nWhere they go: `callgrind_annotate --inclusive=yes {}`.",
            figures.profile.display()
        );
        self.instructions = Some(text);
    }

    /// The bench's time, and each part's: what is left went to setup and building.
    pub fn footer(&mut self, elapsed: Duration, parts: &[(Part, Duration)]) {
        let parts: Vec<String> = parts
            .iter()
            .map(|(part, took)| {
                let name = part
                    .to_possible_value()
                    .map_or_else(|| format!("{part:?}"), |v| v.get_name().to_string());
                format!("{name} {:.0} s", took.as_secs_f64())
            })
            .collect();
        self.footer = format!(
            "Bench ran in {:.0} s ({}).\n",
            elapsed.as_secs_f64(),
            parts.join(", ")
        );
    }

    pub fn render(&self) -> String {
        let mut text = self.header.clone();
        if !self.overhead.is_empty() {
            let _ = writeln!(
                text,
                "\n## Throughput kept under saturation (nginx + wrk)\n"
            );
            let _ = writeln!(text, "Pinned: nginx and wrk on CPU 0, the observer on CPU 1. Ratio: median of per-pair observed/baseline.\n");
            let _ = writeln!(text, "| workload | placement | baseline req/s | observed req/s | ratio | pairs | target | agent CPU | agent peak RSS | events lost | calls without bodies |");
            let _ = writeln!(text, "|---|---|---|---|---|---|---|---|---|---|---|");
            for line in &self.overhead {
                let _ = writeln!(text, "{line}");
            }
        }
        if !self.peers.is_empty() {
            let _ = writeln!(text, "\n## The classic alternatives, same runs (pinned)\n");
            let _ = writeln!(
                text,
                "| workload | observer | ratio | its CPU | lost | sees TLS plaintext |"
            );
            let _ = writeln!(text, "|---|---|---|---|---|---|");
            for line in &self.peers {
                let _ = writeln!(text, "{line}");
            }
        }
        for section in [
            &self.fixed_rate,
            &self.micro,
            &self.userspace,
            &self.instructions,
        ]
        .into_iter()
        .flatten()
        {
            let _ = writeln!(text, "\n{section}");
        }
        let _ = writeln!(text, "\n{}", self.footer);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn verdicts_know_which_way_is_better() {
        assert_eq!(verdict(0.95, Some(0.9), true), "met");
        assert_eq!(verdict(0.85, Some(0.9), true), "MISSED");
        assert_eq!(verdict(200.0, Some(300.0), false), "met");
        assert_eq!(verdict(1.0, None, true), "");
    }
}
