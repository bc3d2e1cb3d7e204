//! Instructions per API call through the whole agent, counted by callgrind.
//!
//! Timings on these VMs swing by more than most changes to the user-side code (the same binary
//! has measured 1.7x apart an hour later); an instruction count does not move with the host. The
//! pipeline bench's traffic is written as a recording and replayed by `observer replay` as the
//! agent processes it (decode, reassembly, HTTP parsing, pairing, inventory, detection,
//! sensitive-data analysis, redaction, JSON lines) under `valgrind --tool=callgrind`. A second
//! replay of the same connections without calls gives the start-up (mostly compiling the
//! detectors' patterns), which is taken off.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context as _, Result};

use crate::{
    build::{self, Built},
    cmd, host,
};

/// Calls in the measured recording: the traffic's mix repeats every 60 calls, and each call
/// costs a few milliseconds under callgrind here: the two replays take under a minute.
const RECORDED_CALLS: u64 = 10_000;

/// What the measured replay reports each call as.
const CALL_LINE_MARKER: &str = r#""event.name":"api.call""#;

pub struct Instructions {
    pub calls: u64,
    pub per_call: f64,
    pub start_up: u64,
    /// The measured replay's callgrind profile, for `callgrind_annotate`.
    pub profile: PathBuf,
}

pub fn measure(built: &Built) -> Result<Instructions> {
    eprintln!("bench: instructions per call (callgrind)");
    let dir = host::repo_root().join("target/bench/instructions");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let start_up = replay_under_callgrind(built, &dir, 0)?;
    let measured = replay_under_callgrind(built, &dir, RECORDED_CALLS)?;
    Ok(Instructions {
        calls: RECORDED_CALLS,
        per_call: measured.instructions.saturating_sub(start_up.instructions) as f64
            / RECORDED_CALLS as f64,
        start_up: start_up.instructions,
        profile: measured.profile,
    })
}

struct Replayed {
    instructions: u64,
    profile: PathBuf,
}

fn replay_under_callgrind(built: &Built, dir: &Path, calls: u64) -> Result<Replayed> {
    let recording = dir.join(format!("traffic-{calls}.rec"));
    cmd::run(
        build::cargo(host::repo_root(), built)
            .args([
                "bench",
                "--quiet",
                "-p",
                "observer-user",
                "--bench",
                "pipeline",
                "--",
            ])
            .arg("--write-recording")
            .arg(&recording)
            .arg(calls.to_string()),
    )?;
    let profile = dir.join(format!("callgrind-{calls}.out"));
    let output = dir.join(format!("replay-{calls}.jsonl"));
    let state = dir.join(format!("state-{calls}"));
    // A fresh state directory: an inventory left by an earlier run would change the work.
    if state.exists() {
        fs::remove_dir_all(&state).with_context(|| format!("removing {}", state.display()))?;
    }
    cmd::stdout_of(
        Command::new("valgrind")
            .arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", profile.display()))
            .arg(&built.agent)
            .arg("replay")
            .arg(&recording)
            .arg("--state-dir")
            .arg(&state)
            .arg("--output")
            .arg(&output),
    )
    .context("replaying under callgrind (valgrind comes with `cargo xtask setup --bench`)")?;
    let reported = fs::read_to_string(&output)
        .with_context(|| format!("reading {}", output.display()))?
        .lines()
        .filter(|line| line.contains(CALL_LINE_MARKER))
        .count() as u64;
    if reported != calls {
        bail!(
            "the replay of {} reported {reported} API calls, not the {calls} recorded: the figure \
             per call would be wrong; look at {}",
            recording.display(),
            output.display()
        );
    }
    Ok(Replayed {
        instructions: total_instructions(&profile)?,
        profile,
    })
}

/// The `totals:` line of a callgrind profile (instructions, the only event collected).
fn total_instructions(profile: &Path) -> Result<u64> {
    let text =
        fs::read_to_string(profile).with_context(|| format!("reading {}", profile.display()))?;
    text.lines()
        .find_map(|line| line.strip_prefix("totals:"))
        .and_then(|total| total.trim().parse().ok())
        .with_context(|| format!("{} has no `totals:` line", profile.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_are_read_from_a_callgrind_profile() {
        let dir = std::env::temp_dir().join(format!("xtask-callgrind-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let profile = dir.join("callgrind.out");
        // The shape callgrind writes: a `summary:` near the top, `totals:` at the end.
        fs::write(
            &profile,
            "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nsummary: 5766282780\n\nfn=(1) main\n3 12\n\ntotals: 5766282780\n",
        )
        .unwrap();
        assert_eq!(total_instructions(&profile).unwrap(), 5_766_282_780);
        fs::write(&profile, "events: Ir\nfn=(1) main\n3 12\n").unwrap();
        assert!(total_instructions(&profile).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
