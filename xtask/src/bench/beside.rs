//! `cargo xtask bench --against AGENT`: the kernel side of the agent just built against another
//! agent binary's, with both attached at once.
//!
//! On these VMs the same program's run time moves by a quarter between runs minutes apart, more
//! than most kernel-side changes. Attached together, the two agents' programs run on the same
//! syscalls at the same moments, one after the other, so the drift slows both alike; which one
//! attaches first (and runs first, on caches the other has not warmed) alternates by round. Each
//! round serves a fixed rate of HTTP and then HTTPS requests, low enough that neither agent's
//! ring fills, so every call takes the full path; then it sends non-HTTP bytes over a socket
//! pair with sendmsg and recvmsg, which nothing else here uses, so that their exits show what an
//! ignored fd costs (most calls on a real host are on files, pipes and eventfds, and a change
//! that helps connections can move cost onto those).

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    os::fd::AsRawFd as _,
    os::unix::net::UnixStream,
    path::Path,
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

use super::{
    load, micro,
    nginx::{self, Nginx},
    observers::{self, ProgramTime},
    report::median,
    OBSERVER_CPU, SERVER_CPU,
};

/// Rounds, half with each agent attached first: three per order give each order's median a
/// middle value; with them two runs of one pair of binaries agreed within about 1 %.
const ROUNDS: usize = 6;
/// Seconds of load per workload per round: ~12,000 requests, some 100,000 program runs, so the
/// agents' start-up calls are a negligible share of the counts.
const LOAD_SECONDS: u32 = 4;
/// Requests per second: about a third of what one CPU serves here with two agents attached
/// (each agent then uses a fraction of the other CPU, and neither ring fills).
const REQUESTS_PER_SECOND: f64 = 3_000.0;
/// Seconds of the ignored-fd loop per round (~300,000 calls), and its message: the size of a
/// small request, in bytes no protocol check takes for HTTP or TLS.
const IGNORED_FD_SECONDS: u64 = 2;
const IGNORED_FD_MESSAGE: [u8; 100] = [b'#'; 100];
/// Message round trips between looks at the clock, so the clock reads stay a small share of
/// the loop.
const ROUND_TRIPS_PER_CLOCK_READ: u32 = 1000;

/// One program's run time in one round: the other agent's and this one's.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Pair {
    runs: u64,
    against_ns: f64,
    built_ns: f64,
    /// Whether this build attached (and ran) first in the round.
    built_first: bool,
}

impl Pair {
    fn ratio(&self) -> f64 {
        self.built_ns / self.against_ns.max(f64::MIN_POSITIVE)
    }
}

/// A program's figures over the rounds.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    name: String,
    runs: u64,
    against_ns: f64,
    built_ns: f64,
    /// The median ratio of the rounds where this build ran first, and of those where it ran
    /// second: the program that runs second finds caches the first warmed.
    ratio_first: f64,
    ratio_second: f64,
}

impl Row {
    /// The order effect cancelled: the geometric mean of the two orders' ratios.
    fn ratio(&self) -> f64 {
        (self.ratio_first * self.ratio_second).sqrt()
    }
}

pub fn compare(built: &Path, against: &Path, pinned: bool) -> Result<String> {
    if !against.is_file() {
        bail!(
            "{} is not a file: give --against the path of an agent binary (copy \
             target/release/observer aside before the change)",
            against.display()
        );
    }
    let observer_cpu = pinned.then_some(OBSERVER_CPU);
    let load_cpu = pinned.then_some(SERVER_CPU);
    let server = Nginx::start(false, load_cpu)?;
    let rounds = micro::with_bpf_stats(|| {
        let mut rounds = Vec::new();
        for round in 0..ROUNDS {
            let against_first = round.is_multiple_of(2);
            eprintln!(
                "bench: side by side, round {} of {ROUNDS} ({} attached first)",
                round + 1,
                if against_first {
                    "--against"
                } else {
                    "the build"
                }
            );
            let order = if against_first {
                [against, built]
            } else {
                [built, against]
            };
            // Either port: each agent filters to one, the other's calls still run its programs.
            let port = server.port(false);
            let first = observers::start_beside(order[0], port, observer_cpu, "first")?;
            let second = observers::start_beside(order[1], port, observer_cpu, "second")?;
            for tls in [false, true] {
                let url = server.url(tls, nginx::File::OneKib);
                load::fixed_rate(&url, REQUESTS_PER_SECOND, LOAD_SECONDS, load_cpu)?;
            }
            ignored_fd_loop(load_cpu)?;
            let (first, second) = (first.stop()?, second.stop()?);
            let (against_times, built_times) = if against_first {
                (first.program_times(), second.program_times())
            } else {
                (second.program_times(), first.program_times())
            };
            rounds.push(pair_up(&against_times, &built_times, !against_first));
        }
        Ok(rounds)
    })?;
    Ok(render(&rounds, against))
}

/// Non-HTTP messages over a socket pair, each sent with sendmsg and received with recvmsg, for
/// [`IGNORED_FD_SECONDS`]: after their first few calls the kernel side ignores both fds.
fn ignored_fd_loop(cpu: Option<usize>) -> Result<()> {
    thread::scope(|scope| {
        scope
            .spawn(|| -> Result<()> {
                if let Some(cpu) = cpu {
                    micro::pin_this_thread(cpu);
                }
                let (sender, receiver) = UnixStream::pair().context("creating a socket pair")?;
                let mut message = IGNORED_FD_MESSAGE;
                let mut buffer = [0u8; IGNORED_FD_MESSAGE.len()];
                let deadline = Instant::now() + Duration::from_secs(IGNORED_FD_SECONDS);
                while Instant::now() < deadline {
                    for _ in 0..ROUND_TRIPS_PER_CLOCK_READ {
                        message_call(sender.as_raw_fd(), &mut message, true)?;
                        message_call(receiver.as_raw_fd(), &mut buffer, false)?;
                    }
                }
                Ok(())
            })
            .join()
            .map_err(|_| anyhow::anyhow!("the ignored-fd loop panicked"))?
    })
}

/// One sendmsg (`send`) or recvmsg of `buffer` on `fd`.
fn message_call(fd: i32, buffer: &mut [u8], send: bool) -> Result<()> {
    let mut iov = libc::iovec {
        iov_base: buffer.as_mut_ptr().cast(),
        iov_len: buffer.len(),
    };
    // SAFETY: a zeroed msghdr is valid (no name, no control data); its one iovec points into
    // `buffer`, which outlives the call.
    let result = unsafe {
        let mut message: libc::msghdr = std::mem::zeroed();
        message.msg_iov = &mut iov;
        message.msg_iovlen = 1;
        if send {
            libc::sendmsg(fd, &message, 0)
        } else {
            libc::recvmsg(fd, &mut message, 0)
        }
    };
    if result != buffer.len() as isize {
        bail!(
            "{} on a socket pair moved {result} bytes of {}: {}",
            if send { "sendmsg" } else { "recvmsg" },
            buffer.len(),
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// Programs both agents ran, by name.
fn pair_up(
    against: &[ProgramTime],
    built: &[ProgramTime],
    built_first: bool,
) -> BTreeMap<String, Pair> {
    against
        .iter()
        .filter_map(|theirs| {
            let ours = built.iter().find(|ours| ours.name == theirs.name)?;
            Some((
                theirs.name.clone(),
                Pair {
                    runs: ours.runs,
                    against_ns: theirs.ns_per_run,
                    built_ns: ours.ns_per_run,
                    built_first,
                },
            ))
        })
        .collect()
}

/// Per program seen in every round: median runs and run times, and the median ratio in each
/// order, most runs first.
fn summarize(rounds: &[BTreeMap<String, Pair>]) -> Vec<Row> {
    let Some(first) = rounds.first() else {
        return Vec::new();
    };
    let mut rows: Vec<Row> = first
        .keys()
        .filter_map(|name| {
            let pairs: Vec<Pair> = rounds
                .iter()
                .map(|round| round.get(name).copied())
                .collect::<Option<_>>()?;
            let ratios = |built_first: bool| {
                let ratios: Vec<f64> = pairs
                    .iter()
                    .filter(|p| p.built_first == built_first)
                    .map(Pair::ratio)
                    .collect();
                median(&ratios)
            };
            Some(Row {
                name: name.clone(),
                runs: median(&pairs.iter().map(|p| p.runs as f64).collect::<Vec<_>>()) as u64,
                against_ns: median(&pairs.iter().map(|p| p.against_ns).collect::<Vec<_>>()),
                built_ns: median(&pairs.iter().map(|p| p.built_ns).collect::<Vec<_>>()),
                ratio_first: ratios(true),
                ratio_second: ratios(false),
            })
        })
        .collect();
    rows.sort_by_key(|row| std::cmp::Reverse(row.runs));
    rows
}

fn render(rounds: &[BTreeMap<String, Pair>], against: &Path) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "## Kernel run time per program: this build against {}\n",
        against.display()
    );
    let _ = writeln!(
        text,
        "Both attached at once, {} rounds alternating which attached first, each {LOAD_SECONDS} s of \
         1 KiB HTTP then HTTPS at {REQUESTS_PER_SECOND:.0} requests/s, then {IGNORED_FD_SECONDS} s \
         of non-HTTP messages over a socket pair (sendmsg, recvmsg: what an ignored fd costs) \
         (kernel.bpf_stats_enabled). \
         Ratio: this build's ns per run over the other's; the median of the rounds where this \
         build ran first, of those where it ran second, and their geometric mean, which cancels \
         the advantage of running second.\n",
        rounds.len()
    );
    let _ = writeln!(
        text,
        "| program | runs | against ns | this build ns | ratio, first | ratio, second | ratio |"
    );
    let _ = writeln!(text, "|---|---|---|---|---|---|---|");
    for row in summarize(rounds) {
        let _ = writeln!(
            text,
            "| {} | {} | {:.0} | {:.0} | {:.3} | {:.3} | **{:.3}** |",
            row.name,
            row.runs,
            row.against_ns,
            row.built_ns,
            row.ratio_first,
            row.ratio_second,
            row.ratio()
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(name: &str, runs: u64, ns_per_run: f64) -> ProgramTime {
        ProgramTime {
            name: name.into(),
            runs,
            ns_per_run,
        }
    }

    #[test]
    fn only_programs_both_ran_are_paired() {
        let against = [time("a", 10, 100.0), time("only_theirs", 5, 50.0)];
        let built = [time("a", 10, 80.0), time("only_ours", 5, 50.0)];
        let pairs = pair_up(&against, &built, true);
        assert_eq!(pairs.len(), 1);
        assert_eq!(
            pairs["a"],
            Pair {
                runs: 10,
                against_ns: 100.0,
                built_ns: 80.0,
                built_first: true,
            }
        );
    }

    #[test]
    fn each_order_has_its_median_and_the_ratio_cancels_the_order() {
        // Running second saves a fifth in every round; this build is otherwise 10 % cheaper.
        let rounds: Vec<_> = [
            (100.0, 90.0 / 0.8, true),
            (100.0, 90.0 * 0.8, false),
            (200.0, 180.0 / 0.8, true),
            (200.0, 180.0 * 0.8, false),
        ]
        .into_iter()
        .map(|(theirs, ours, built_first)| {
            pair_up(
                &[time("read", 1000, theirs), time("rare", 3, 1.0)],
                &[time("read", 1000, ours)],
                built_first,
            )
        })
        .collect();
        let rows = summarize(&rounds);
        assert_eq!(rows.len(), 1, "a program only one agent ran is left out");
        let row = &rows[0];
        assert_eq!((row.name.as_str(), row.runs), ("read", 1000));
        assert!((row.ratio_first - 0.9 / 0.8).abs() < 1e-9, "{row:?}");
        assert!((row.ratio_second - 0.9 * 0.8).abs() < 1e-9, "{row:?}");
        assert!((row.ratio() - 0.9).abs() < 1e-9, "{row:?}");
    }

    #[test]
    fn a_program_missing_from_a_round_is_left_out() {
        let full = pair_up(&[time("x", 1, 1.0)], &[time("x", 1, 1.0)], true);
        let rows = summarize(&[full, BTreeMap::new()]);
        assert!(rows.is_empty());
    }
}
