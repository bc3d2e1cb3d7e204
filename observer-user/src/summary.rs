//! The account printed when the agent stops: what it saw, and everything it lost and why.

use std::{fmt, time::Duration};

use observer_common::{Counter, EventKind};

use crate::{
    capture::{kind_name, KernelCounters},
    pipeline::PipelineStats,
};

pub struct Summary {
    pub elapsed: Duration,
    pub pipeline: PipelineStats,
    /// `None` for a replay: the kernel side was not running.
    pub kernel: Option<KernelCounters>,
}

impl Summary {
    /// Everything in the summary as JSON, for scripts and benchmarks: the pipeline's counters,
    /// the kernel's (attempted and dropped per kind and reason), and the events lost per kind.
    pub fn to_json(&self) -> serde_json::Value {
        let kernel = self.kernel.as_ref().map(KernelCounters::named);
        let lost: std::collections::BTreeMap<&str, u64> = self
            .events_lost()
            .into_iter()
            .map(|(kind, n)| (kind_name(kind), n))
            .collect();
        let programs = self.kernel.as_ref().map(|k| &k.programs);
        serde_json::json!({
            "elapsed_s": self.elapsed.as_secs_f64(),
            "pipeline": self.pipeline,
            "kernel": kernel,
            "programs": programs,
            "events_lost": lost,
        })
    }

    /// Events the kernel tried to send but the agent never received, by kind.
    pub fn events_lost(&self) -> Vec<(EventKind, u64)> {
        let Some(kernel) = &self.kernel else {
            return Vec::new();
        };
        EventKind::ALL
            .into_iter()
            .map(|kind| {
                (
                    kind,
                    kernel
                        .attempted(kind)
                        .saturating_sub(self.pipeline.event_count(kind)),
                )
            })
            .filter(|(_, lost)| *lost > 0)
            .collect()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.pipeline;
        writeln!(
            f,
            "observer summary after {:.1} s",
            self.elapsed.as_secs_f64()
        )?;
        writeln!(
            f,
            "  API calls reported:   {} ({} left out by filters)",
            p.api_calls, p.api_calls_filtered
        )?;
        if p.calls_bodies_shed > 0 {
            writeln!(
                f,
                "  bodies shed:          {} calls reported without bodies while the agent fell behind",
                p.calls_bodies_shed
            )?;
        }
        writeln!(f, "  bytes captured:       {}", p.bytes_captured)?;
        writeln!(
            f,
            "  connections:          {} opened, {} closed",
            p.connections.connections_opened, p.connections.connections_closed
        )?;
        let received: Vec<String> = p
            .events
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect();
        writeln!(
            f,
            "  events received:      {}",
            if received.is_empty() {
                "none".into()
            } else {
                received.join(", ")
            }
        )?;

        if let Some(kernel) = &self.kernel {
            let lost: u64 = self.events_lost().iter().map(|(_, n)| n).sum();
            writeln!(f, "  events lost:          {lost}")?;
            for kind in EventKind::ALL {
                let full = kernel.ring_full(kind);
                if full > 0 {
                    writeln!(
                        f,
                        "    ring buffer full:   {full} {} events",
                        kind_name(kind)
                    )?;
                }
            }
            for (counter, what) in [
                (
                    Counter::DropReadUserFailed,
                    "data chunks whose memory could not be read",
                ),
                (
                    Counter::DropArgsTableFull,
                    "calls lost to a full in-flight table",
                ),
                (
                    Counter::DropConnTableFull,
                    "connections not tracked (table full)",
                ),
                (Counter::TlsWithoutFd, "TLS calls whose socket was unknown"),
            ] {
                let n = kernel.get(counter);
                if n > 0 {
                    writeln!(f, "    {what}: {n}")?;
                }
            }
            let truncated = kernel.get(Counter::CallsTruncated);
            if truncated > 0 {
                writeln!(
                    f,
                    "  calls past the per-call cap: {truncated} ({} bytes counted, not copied)",
                    kernel.get(Counter::BytesTruncated)
                )?;
            }
        }
        if p.connections.gaps > 0 {
            writeln!(
                f,
                "  stream gaps:          {} ({} bytes)",
                p.connections.gaps, p.connections.gap_bytes
            )?;
        }
        if !p.bodies_not_decoded.is_empty() {
            let all: Vec<String> = p
                .bodies_not_decoded
                .iter()
                .map(|(reason, n)| format!("{reason} {n}"))
                .collect();
            writeln!(f, "  bodies not decoded:   {}", all.join(", "))?;
        }
        let errors: u64 =
            p.decode_errors.values().sum::<u64>() + p.parse_errors.values().sum::<u64>();
        if errors > 0 {
            let all: Vec<String> = p
                .decode_errors
                .iter()
                .chain(p.parse_errors.iter())
                .map(|(kind, n)| format!("{kind} {n}"))
                .collect();
            writeln!(f, "  errors:               {}", all.join(", "))?;
        }
        Ok(())
    }
}
