//! Load from wrk: saturation throughput, and latency at a fixed rate.

use std::{fs, process::Command};

use anyhow::{Context as _, Result};

use crate::cmd;

/// wrk's threads: one, beside the server on its CPU when pinned.
const WRK_THREADS: &str = "1";

/// Connections for the fixed-rate run: each waits between requests, so the rate is
/// connections × 1000 / delay; this many keep the delay above wrk's 1 ms granularity.
const FIXED_RATE_CONNECTIONS: u32 = 50;

/// The fixed-rate script: each request waits a random delay, uniform between none and twice
/// the mean. A constant delay keeps the connections in step (they all start at once and each
/// round takes as long), so requests came in bursts of fifty: the latency measured was mostly
/// the queue of each burst (a p50 of 0.55-0.73 ms for a request served in about 20 us), any
/// added cost showed once per request ahead in that queue, and the rate fell short of the one
/// asked for (8,100-8,400 of 10,000 per second). Random delays spread the requests: p50
/// 0.10-0.15 ms, and 9,500-9,600 per second.
fn fixed_rate_script(mean_delay_ms: f64) -> String {
    let longest = (2.0 * mean_delay_ms).round().max(1.0);
    format!("function delay()\n  return math.random(0, {longest:.0})\nend\n")
}

/// `program` run under `taskset -c cpu` when a CPU is given.
pub fn pinned(cpu: Option<usize>, program: &str) -> Command {
    match cpu {
        Some(cpu) => {
            let mut command = Command::new("taskset");
            command.args(["-c", &cpu.to_string(), program]);
            command
        }
        None => Command::new(program),
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Throughput {
    pub requests_per_second: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Latency {
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Latency {
    /// The mean of each figure over `runs`.
    pub fn mean(runs: &[Latency]) -> Latency {
        let count = runs.len().max(1) as f64;
        let mean = |figure: fn(&Latency) -> f64| runs.iter().map(figure).sum::<f64>() / count;
        Latency {
            requests_per_second: mean(|run| run.requests_per_second),
            p50_ms: mean(|run| run.p50_ms),
            p99_ms: mean(|run| run.p99_ms),
        }
    }
}

/// As many requests as the server answers, for `seconds`.
pub fn saturate(
    url: &str,
    connections: u32,
    seconds: u32,
    close: bool,
    cpu: Option<usize>,
) -> Result<Throughput> {
    let mut command = pinned(cpu, "wrk");
    command.args([
        "-t",
        WRK_THREADS,
        "-c",
        &connections.to_string(),
        "-d",
        &format!("{seconds}s"),
    ]);
    if close {
        command.args(["-H", "Connection: close"]);
    }
    command.arg(url);
    let output = cmd::stdout_of(&mut command).context("running wrk (Debian package wrk)")?;
    Ok(Throughput {
        requests_per_second: requests_per_second(&output)?,
    })
}

/// About `rate` requests per second for `seconds`, with the latency distribution.
pub fn fixed_rate(url: &str, rate: f64, seconds: u32, cpu: Option<usize>) -> Result<Latency> {
    let delay_ms = (f64::from(FIXED_RATE_CONNECTIONS) * 1000.0 / rate).max(1.0);
    let script =
        std::env::temp_dir().join(format!("observer-bench-rate-{}.lua", std::process::id()));
    // wrk calls delay() before each request on a connection.
    fs::write(&script, fixed_rate_script(delay_ms))?;
    let mut command = pinned(cpu, "wrk");
    command
        .args([
            "-t",
            WRK_THREADS,
            "-c",
            &FIXED_RATE_CONNECTIONS.to_string(),
            "-d",
            &format!("{seconds}s"),
        ])
        .args(["--latency", "-s"])
        .arg(&script)
        .arg(url);
    let output = cmd::stdout_of(&mut command).context("running wrk (Debian package wrk)");
    let _ = fs::remove_file(&script);
    let output = output?;
    Ok(Latency {
        requests_per_second: requests_per_second(&output)?,
        p50_ms: percentile_ms(&output, "50%")?,
        p99_ms: percentile_ms(&output, "99%")?,
    })
}

fn requests_per_second(output: &str) -> Result<f64> {
    output
        .lines()
        .find_map(|line| line.trim().strip_prefix("Requests/sec:"))
        .and_then(|value| value.trim().parse().ok())
        .with_context(|| format!("no Requests/sec in wrk's output:\n{output}"))
}

/// A line of wrk's `--latency` distribution, e.g. `     99%    2.31ms`, in milliseconds.
fn percentile_ms(output: &str, label: &str) -> Result<f64> {
    let value = output
        .lines()
        .find_map(|line| line.trim().strip_prefix(label))
        .map(str::trim)
        .with_context(|| format!("no {label} latency in wrk's output:\n{output}"))?;
    parse_duration_ms(value).with_context(|| format!("unreadable latency {value:?}"))
}

fn parse_duration_ms(value: &str) -> Option<f64> {
    let split = value.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().ok()?;
    Some(match unit {
        "us" => number / 1000.0,
        "ms" => number,
        "s" => number * 1000.0,
        "m" => number * 60_000.0,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK_OUTPUT: &str = "Running 3s test @ http://127.0.0.1:8080/1k.txt
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.30ms  310.75us   8.02ms   92.86%
  Latency Distribution
     50%    1.24ms
     75%    1.36ms
     90%    1.52ms
     99%  812.00us
  36544 requests in 3.00s, 41.51MB read
Requests/sec:  12177.31
Transfer/sec:     13.83MB
";

    #[test]
    fn wrk_output_is_read() {
        assert_eq!(requests_per_second(WRK_OUTPUT).unwrap(), 12177.31);
        assert_eq!(percentile_ms(WRK_OUTPUT, "50%").unwrap(), 1.24);
        assert_eq!(percentile_ms(WRK_OUTPUT, "99%").unwrap(), 0.812);
        assert!(requests_per_second("garbage").is_err());
    }

    #[test]
    fn latencies_are_averaged_figure_by_figure() {
        let run = |rps, p50, p99| Latency {
            requests_per_second: rps,
            p50_ms: p50,
            p99_ms: p99,
        };
        assert_eq!(
            Latency::mean(&[run(100.0, 1.0, 3.0), run(300.0, 2.0, 5.0)]),
            run(200.0, 1.5, 4.0)
        );
        assert_eq!(Latency::mean(&[]), Latency::default());
    }

    #[test]
    fn random_delays_average_to_the_rate_asked_for() {
        for mean in [1.0, 5.0, 12.5, 50.0] {
            let script = fixed_rate_script(mean);
            let upper: f64 = script
                .split("math.random(0, ")
                .nth(1)
                .and_then(|rest| rest.split(')').next())
                .and_then(|n| n.parse().ok())
                .unwrap();
            // Uniform over the whole milliseconds 0..=upper.
            assert!((upper / 2.0 - mean).abs() <= 0.5, "{mean} ms: {script}");
        }
    }

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(parse_duration_ms("2.00s"), Some(2000.0));
        assert_eq!(parse_duration_ms("10us"), Some(0.01));
        assert_eq!(parse_duration_ms("1.5m"), Some(90_000.0));
        assert_eq!(parse_duration_ms("5x"), None);
    }
}
