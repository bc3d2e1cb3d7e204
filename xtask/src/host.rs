//! Facts about this machine and this checkout that every command needs: where the repository and
//! cargo's home are, where lasting files go, and whether we are root.

use std::{
    env,
    ffi::OsString,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context as _, Result};

/// The workspace root: xtask lives one level below it.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask's manifest directory has a parent")
}

pub fn home() -> Result<PathBuf> {
    env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(PathBuf::from)
        .context("HOME is not set")
}

/// `$CARGO_HOME`, where `cargo install` puts binaries under `bin/`.
pub fn cargo_home() -> Result<PathBuf> {
    match env::var_os("CARGO_HOME").filter(|dir| !dir.is_empty()) {
        Some(dir) => Ok(PathBuf::from(dir)),
        None => Ok(home()?.join(".cargo")),
    }
}

/// A directory for files that must outlive any build: `$XDG_DATA_HOME/observer`, by default
/// `~/.local/share/observer`. Nothing in `target/` qualifies, since `cargo clean` removes it.
pub fn lasting_data_dir() -> Result<PathBuf> {
    let base = match env::var_os("XDG_DATA_HOME").filter(|dir| !dir.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => home()?.join(".local/share"),
    };
    Ok(base.join("observer"))
}

/// Puts `$CARGO_HOME/bin` first on this process's PATH, which every child inherits.
///
/// Why: `cargo +nightly` needs rustup's proxy, rustc must find the bpf-linker that `setup`
/// installed there (not some other one earlier on PATH), and cargo-fuzz lives there too; under
/// `sudo`, PATH is reset to a `secure_path` that lacks it.
pub fn put_cargo_bin_on_path() {
    let Ok(cargo_bin) = cargo_home().map(|home| home.join("bin")) else {
        return; // Without HOME there is nothing to add; commands report what they cannot find.
    };
    let old_path = env::var_os("PATH").unwrap_or_default();
    if env::split_paths(&old_path).next().as_deref() == Some(cargo_bin.as_path()) {
        return;
    }
    let new_path = env::join_paths(std::iter::once(cargo_bin).chain(env::split_paths(&old_path)))
        .unwrap_or_else(|_| OsString::from(&old_path));
    // Called first thing in `main`, before any thread exists, so nothing reads the environment
    // concurrently.
    env::set_var("PATH", new_path);
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions, touches no memory of ours and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Fails unless we are root, saying that `what` needs it.
pub fn ensure_root(what: &str) -> Result<()> {
    if is_root() {
        Ok(())
    } else {
        bail!("{what} needs root: run it again as root")
    }
}
