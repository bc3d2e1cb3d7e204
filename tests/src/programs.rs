//! The real programs the tests drive, and the checks that they are there.
//!
//! A missing program fails the test with the Debian package to install: a test that skips
//! silently cannot fail, and these tests exist to fail when observer breaks.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
    time::Duration,
};

use anyhow::{bail, Context};

use crate::process::Spawned;

/// How long asking the interpreter where it lives may take (pyenv shims start a shell first).
const PYTHON_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The programs the suite uses, with the Debian package that provides each. The project's
/// setup (`cargo xtask setup`) installs them; python3 comes with the machine (pyenv 3.11).
pub const CURL: (&str, &str) = ("curl", "curl");
pub const OPENSSL: (&str, &str) = ("openssl", "openssl");
pub const NGINX: (&str, &str) = ("nginx", "nginx");
pub const BPFTOOL: (&str, &str) = ("bpftool", "bpftool");
pub const PYTHON3: (&str, &str) = ("python3", "python3");
pub const PROMETHEUS: (&str, &str) = ("prometheus", "prometheus");
pub const PROMTOOL: (&str, &str) = ("promtool", "prometheus");

/// The path of `program`, or an error naming the Debian package that provides it.
/// `(program, package)` is one of the constants above.
pub fn require((program, package): (&str, &str)) -> anyhow::Result<PathBuf> {
    // Daemons and admin tools live in sbin, which a non-login root shell may not have on PATH.
    let path = env::var_os("PATH").unwrap_or_default();
    let dirs =
        env::split_paths(&path).chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(program);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    bail!(
        "`{program}` is not installed, and this test needs it: install the Debian package `{package}` \
         (apt-get install {package}; `cargo xtask setup` installs every program the tests use)"
    )
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The Python interpreter itself, not a pyenv shim: started directly, its pid is the one that
/// makes the calls, and its executable name is what the agent reports.
#[derive(Debug, Clone)]
pub struct Python {
    pub path: PathBuf,
    /// The file name of the interpreter binary (`python3.11`), as `process.executable.name`.
    pub executable_name: String,
}

/// The machine's `python3`, resolved once.
pub fn python() -> anyhow::Result<Python> {
    static PYTHON: OnceLock<Result<Python, String>> = OnceLock::new();
    PYTHON
        .get_or_init(|| find_python().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn find_python() -> anyhow::Result<Python> {
    let launcher = require(PYTHON3)?;
    let finished = Spawned::run(
        "python3",
        Command::new(&launcher).args([
            "-c",
            "import os, sys; print(os.path.realpath(sys.executable))",
        ]),
        PYTHON_PROBE_TIMEOUT,
    )?;
    let path = PathBuf::from(finished.stdout.trim());
    let executable_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| {
            format!(
                "python3 reported an odd interpreter path {}",
                path.display()
            )
        })?
        .to_string();
    Ok(Python {
        path,
        executable_name,
    })
}

/// The agent loads eBPF programs: fail clearly, not with a permission error deep inside.
pub fn require_root() -> anyhow::Result<()> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("cannot read /proc/self/status")?;
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .context("no Uid line in /proc/self/status")?;
    if euid != "0" {
        bail!(
            "the end-to-end tests load eBPF programs and need root (effective uid is {euid}): \
             run them with `sudo cargo xtask test`"
        );
    }
    Ok(())
}

/// The observer binary under test: `$OBSERVER_BIN` (set by `cargo xtask test`), else the
/// workspace's release build, else its debug build.
pub fn observer_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = env::var_os("OBSERVER_BIN") {
        let path = PathBuf::from(path);
        if !is_executable(&path) {
            bail!(
                "OBSERVER_BIN is {}, which is not an executable file: build it with `cargo xtask build`",
                path.display()
            );
        }
        return Ok(path);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("tests crate has a parent")?;
    let candidates = [
        workspace.join("target/release/observer"),
        workspace.join("target/debug/observer"),
    ];
    match candidates.iter().find(|p| is_executable(p)) {
        Some(path) => Ok(path.clone()),
        None => bail!(
            "no observer binary: OBSERVER_BIN is not set and neither {} nor {} exists; build it with \
             `cargo xtask build` (or run the suite with `cargo xtask test`)",
            candidates[0].display(),
            candidates[1].display()
        ),
    }
}
