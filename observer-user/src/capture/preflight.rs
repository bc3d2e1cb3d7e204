//! Checks before loading anything: privileges, kernel features, tracefs, and a single agent per
//! host. Each failure says what is missing and what to do about it.

use std::{
    fs::{self, File, OpenOptions},
    io::{Read, Seek, Write},
    os::fd::AsRawFd,
    path::{Path, PathBuf},
};

use thiserror::Error;

/// Capabilities the agent uses: load programs and maps (BPF), attach to tracepoints and uprobes
/// (PERFMON), read other processes' /proc entries and sockets (SYS_PTRACE, DAC_READ_SEARCH).
const REQUIRED_CAPABILITIES: &[(u32, &str)] = &[
    (39, "CAP_BPF"),
    (38, "CAP_PERFMON"),
    (19, "CAP_SYS_PTRACE"),
    (2, "CAP_DAC_READ_SEARCH"),
];
/// CAP_SYS_ADMIN implies BPF and PERFMON on every kernel we support.
const CAP_SYS_ADMIN: u32 = 21;

/// BPF ring buffers arrived in Linux 5.8.
const MIN_KERNEL: (u32, u32) = (5, 8);

const TRACEFS: &str = "/sys/kernel/tracing";
const LOCK_FILE: &str = "/run/observer/agent.lock";

#[derive(Debug, Error)]
pub enum PreflightError {
    #[error(
        "observer needs root, or the capabilities {missing}: run it with sudo, or grant them \
         (e.g. `setcap cap_bpf,cap_perfmon,cap_sys_ptrace,cap_dac_read_search+ep`)"
    )]
    MissingCapabilities { missing: String },
    #[error(
        "this kernel ({release}) is too old: observer needs Linux {}.{} or newer for BPF ring \
         buffers",
        MIN_KERNEL.0,
        MIN_KERNEL.1
    )]
    KernelTooOld { release: String },
    #[error(
        "tracefs is not mounted at {TRACEFS} and mounting it failed ({reason}): mount it with \
         `mount -t tracefs tracefs {TRACEFS}` and try again"
    )]
    NoTracefs { reason: String },
    #[error(
        "this kernel has no syscall tracepoints ({path} is missing): observer needs a kernel \
         built with CONFIG_FTRACE_SYSCALLS"
    )]
    NoSyscallTracepoints { path: String },
    #[error(
        "another observer agent is already running on this host{pid}: stop it first (two agents \
         would each capture the other's traffic and double every count)"
    )]
    AlreadyRunning { pid: String },
    #[error("cannot create the agent lock file {path}: {source}")]
    LockFile {
        path: String,
        source: std::io::Error,
    },
}

/// Held for the agent's lifetime: an exclusive lock on the lock file.
#[derive(Debug)]
pub struct AgentLock {
    _file: File,
}

/// Run every check and take the single-agent lock.
pub fn check() -> Result<AgentLock, PreflightError> {
    check_capabilities()?;
    check_kernel()?;
    ensure_tracefs()?;
    raise_memlock_limit();
    take_lock(Path::new(LOCK_FILE))
}

fn check_capabilities() -> Result<(), PreflightError> {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let effective = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    let has = |cap: u32| effective & (1u64 << cap) != 0;
    let missing: Vec<&str> = REQUIRED_CAPABILITIES
        .iter()
        .filter(|(cap, _)| !has(*cap) && !(has(CAP_SYS_ADMIN) && (*cap == 39 || *cap == 38)))
        .map(|(_, name)| *name)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(PreflightError::MissingCapabilities {
            missing: missing.join(", "),
        })
    }
}

fn check_kernel() -> Result<(), PreflightError> {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let release = release.trim().to_string();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse().ok());
    let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if version < MIN_KERNEL {
        return Err(PreflightError::KernelTooOld { release });
    }
    Ok(())
}

/// Mount tracefs if it is missing: aya attaches tracepoints by reading their ids there.
pub fn ensure_tracefs() -> Result<(), PreflightError> {
    let events = Path::new(TRACEFS).join("events");
    if !events.exists() {
        let target = std::ffi::CString::new(TRACEFS).expect("no NUL in constant");
        let fstype = c"tracefs";
        // SAFETY: valid NUL-terminated strings; no data argument.
        let rc = unsafe {
            libc::mount(
                fstype.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        if rc != 0 {
            return Err(PreflightError::NoTracefs {
                reason: std::io::Error::last_os_error().to_string(),
            });
        }
    }
    let probe = events.join("syscalls/sys_enter_read");
    if !probe.exists() {
        return Err(PreflightError::NoSyscallTracepoints {
            path: probe.display().to_string(),
        });
    }
    Ok(())
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; lift it so a 32 MiB ring fits.
fn raise_memlock_limit() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain syscall with a valid struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } != 0 {
        tracing::debug!(
            "could not raise RLIMIT_MEMLOCK: {}",
            std::io::Error::last_os_error()
        );
    }
}

fn take_lock(path: &Path) -> Result<AgentLock, PreflightError> {
    let lock_error = |source| PreflightError::LockFile {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(lock_error)?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(lock_error)?;
    // SAFETY: valid fd; non-blocking exclusive lock released when the file closes.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        let holder = holder.trim();
        let pid = if holder.is_empty() {
            String::new()
        } else {
            format!(" (pid {holder})")
        };
        return Err(PreflightError::AlreadyRunning { pid });
    }
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = write!(file, "{}", std::process::id());
    Ok(AgentLock { _file: file })
}

/// Where a path inside another process's mount namespace can be opened from here.
pub fn in_process_root(pid: u32, path: &Path) -> PathBuf {
    let relative = path.strip_prefix("/").unwrap_or(path);
    PathBuf::from(format!("/proc/{pid}/root")).join(relative)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_holder_is_refused_with_the_first_ones_pid() {
        let dir = std::env::temp_dir().join(format!("observer-lock-test-{}", std::process::id()));
        let path = dir.join("agent.lock");
        let first = take_lock(&path).expect("first lock");
        let second = take_lock(&path).expect_err("second lock must fail");
        let message = second.to_string();
        assert!(message.contains("already running"), "{message}");
        assert!(
            message.contains(&std::process::id().to_string()),
            "{message}"
        );
        drop(first);
        // Another test forking a child at this moment briefly shares the lock's file
        // description (until the child's exec closes it), so allow it a moment.
        let freed = (0..100).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(10));
            take_lock(&path).is_ok()
        });
        assert!(freed, "lock is free again after the holder goes");
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn paths_in_other_mount_namespaces_go_through_proc_root() {
        assert_eq!(
            in_process_root(42, Path::new("/usr/lib/libssl.so.3")),
            PathBuf::from("/proc/42/root/usr/lib/libssl.so.3")
        );
    }
}
