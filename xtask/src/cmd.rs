//! Running other programs.
//!
//! Every command that changes something is echoed as a shell line before it runs, so a log says
//! exactly what to re-run by hand, and every failure names the command. Probes (version checks and
//! the like) run silently and return their output or the reason they failed.

use std::{
    collections::{HashMap, HashSet},
    ffi::OsStr,
    fs,
    process::{Command, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

/// How often a command with a deadline is checked for having finished: often enough that a
/// finished stage costs no noticeable wait, rarely enough to cost nothing.
const DEADLINE_POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Echoes `cmd`, runs it with our stdin/stdout/stderr and fails unless it exits with 0.
pub fn run(cmd: &mut Command) -> Result<()> {
    let line = echo(cmd);
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{line}`"))?;
    check(&line, status)
}

/// Like [`run`], but kills the command and everything it started if it has not finished within
/// `deadline`, so a hung test cannot hold a terminal or CI until its own limit.
pub fn run_with_deadline(cmd: &mut Command, deadline: Duration) -> Result<()> {
    let line = echo(cmd);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("could not start `{line}`"))?;
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().context("waiting for a child process")? {
            return check(&line, status);
        }
        if started.elapsed() >= deadline {
            kill_process_tree(child.id());
            // Reap it; the kill above makes this return at once.
            let _ = child.wait();
            bail!(
                "`{line}` did not finish within {} s: killed it and every process it started",
                deadline.as_secs()
            );
        }
        thread::sleep(DEADLINE_POLL_INTERVAL);
    }
}

/// Runs `cmd` silently and returns its standard output, or an error carrying its standard error.
pub fn stdout_of(cmd: &mut Command) -> Result<String> {
    let line = shell_line(cmd);
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not start `{line}`"))?;
    if !output.status.success() {
        bail!(
            "`{line}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    String::from_utf8(output.stdout).with_context(|| format!("`{line}` printed non-UTF-8 output"))
}

/// Echoes `cmd` and returns the line it echoed.
pub fn echo(cmd: &Command) -> String {
    let line = shell_line(cmd);
    eprintln!("$ {line}");
    line
}

/// Fails unless `status` is a success, naming the command.
pub fn check(line: &str, status: ExitStatus) -> Result<()> {
    if status.success() {
        Ok(())
    } else {
        bail!("`{line}` failed ({status})")
    }
}

/// `cmd` as a line a POSIX shell would run the same way: working directory, environment changes,
/// program and arguments.
fn shell_line(cmd: &Command) -> String {
    let mut words = Vec::new();
    if let Some(dir) = cmd.get_current_dir() {
        words.push(format!("cd {} &&", quote(dir.as_os_str())));
    }
    let mut envs: Vec<_> = cmd.get_envs().collect();
    envs.sort();
    // `env` wants its `-u NAME` options before any `NAME=value`.
    let removed: Vec<_> = envs.iter().filter(|(_, value)| value.is_none()).collect();
    if !removed.is_empty() {
        words.push("env".to_owned());
        words.extend(removed.iter().map(|(key, _)| format!("-u {}", quote(key))));
    }
    for (key, value) in &envs {
        if let Some(value) = value {
            words.push(format!("{}={}", key.to_string_lossy(), quote(value)));
        }
    }
    words.push(quote(cmd.get_program()));
    words.extend(cmd.get_args().map(quote));
    words.join(" ")
}

/// Quotes one word for a POSIX shell, and shows control characters (the `\x1f` separators of
/// `CARGO_ENCODED_RUSTFLAGS`) as bash `$'\x1f'` escapes instead of printing them raw.
fn quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        return word.into_owned();
    }
    if word.chars().any(char::is_control) {
        let mut quoted = String::from("$'");
        for c in word.chars() {
            match c {
                '\'' | '\\' => quoted.extend(['\\', c]),
                c if c.is_control() => quoted.push_str(&format!("\\x{:02x}", u32::from(c))),
                c => quoted.push(c),
            }
        }
        quoted.push('\'');
        return quoted;
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// Sends SIGKILL to `root` and to all its descendants.
///
/// The descendants are found first, from each process's parent in `/proc/<pid>/stat`, because once
/// `root` dies its children are re-parented and can no longer be told apart.
fn kill_process_tree(root: u32) {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (pid, parent) in all_processes_with_parent() {
        children.entry(parent).or_default().push(pid);
    }
    let mut tree = vec![root];
    let mut seen = HashSet::from([root]);
    let mut next = 0;
    while let Some(&pid) = tree.get(next) {
        for &child in children.get(&pid).map(Vec::as_slice).unwrap_or_default() {
            if seen.insert(child) {
                tree.push(child);
            }
        }
        next += 1;
    }
    for pid in tree {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            continue;
        };
        // SAFETY: kill takes plain integers and touches no memory of ours. A process that has
        // exited meanwhile just makes it fail with ESRCH, which is what we want anyway.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

/// Every process on the machine with its parent, read from `/proc/<pid>/stat`.
fn all_processes_with_parent() -> Vec<(u32, u32)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read from the
            // last ')'.
            let after_comm = &stat[stat.rfind(')')? + 1..];
            let parent = after_comm.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, parent))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_line_shows_directory_environment_and_quoting() {
        let mut cmd = Command::new("cargo");
        cmd.current_dir("/repo/observer-ebpf")
            .args(["+nightly", "build", "it's"])
            .env(
                "CARGO_ENCODED_RUSTFLAGS",
                "-Cdebuginfo=2\x1f-Clink-arg=--btf",
            )
            .env_remove("RUSTC");
        assert_eq!(
            shell_line(&cmd),
            "cd /repo/observer-ebpf && env -u RUSTC CARGO_ENCODED_RUSTFLAGS=$'-Cdebuginfo=2\\x1f-Clink-arg=--btf' \
             cargo +nightly build 'it'\\''s'"
        );
    }

    #[test]
    fn a_command_past_its_deadline_is_killed_with_its_children() {
        let pid_file = std::env::temp_dir().join(format!("xtask-deadline-{}", std::process::id()));
        let mut cmd = Command::new("sh");
        // A grandchild that would outlive the test by far unless the whole tree is killed.
        cmd.arg("-c").arg(format!(
            "sleep 600 & echo $! > {}; wait",
            pid_file.display()
        ));
        let started = Instant::now();
        let result = run_with_deadline(&mut cmd, Duration::from_secs(1));
        assert!(result.is_err_and(|err| err.to_string().contains("did not finish within 1 s")));
        assert!(started.elapsed() < Duration::from_secs(10));
        let grandchild = fs::read_to_string(&pid_file).expect("the shell wrote its child's pid");
        let _ = fs::remove_file(&pid_file);
        // SIGKILL takes effect asynchronously, so give it a moment. Then the grandchild is gone, or
        // a zombie waiting for whoever adopted it to reap it: either way no longer running.
        let state = || {
            let stat = fs::read_to_string(format!("/proc/{}/stat", grandchild.trim())).ok()?;
            stat.rsplit_once(')')?.1.trim_start().chars().next()
        };
        let stopped = |state: Option<char>| matches!(state, None | Some('Z'));
        let waited = Instant::now();
        while !stopped(state()) && waited.elapsed() < Duration::from_secs(5) {
            thread::sleep(Duration::from_millis(10));
        }
        assert!(stopped(state()), "grandchild state {:?}", state());
    }
}
