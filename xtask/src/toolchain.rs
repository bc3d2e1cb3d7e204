//! The nightly toolchain the eBPF object is built with, and the LLVM inside it.
//!
//! bpf-linker must link the very LLVM that nightly's rustc emits bitcode for: an older LLVM cannot
//! read newer bitcode. So nothing here is hard-coded; it is all read from `rustc +nightly`.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{anyhow, Context as _, Result};

use crate::cmd;

/// The toolchain name given to rustup as `+nightly`.
pub const NIGHTLY: &str = "nightly";

#[derive(Debug)]
pub struct Nightly {
    /// `rustc +nightly --print sysroot`: its `lib/` holds the libLLVM that rustc itself uses.
    pub sysroot: PathBuf,
    /// E.g. "22.1.4", from `rustc +nightly -vV`.
    pub llvm_version: String,
    /// E.g. 22: selects bpf-linker's `llvm-<major>` feature.
    pub llvm_major: u32,
}

impl Nightly {
    /// Asks the installed nightly about itself; fails if there is no nightly toolchain.
    pub fn detect() -> Result<Self> {
        let verbose_version =
            cmd::stdout_of(Command::new("rustc").arg(format!("+{NIGHTLY}")).arg("-vV"))?;
        let llvm_version = llvm_version(&verbose_version)?.to_owned();
        let llvm_major = llvm_version
            .split('.')
            .next()
            .and_then(|major| major.parse().ok())
            .with_context(|| {
                format!("LLVM version {llvm_version:?} does not start with a number")
            })?;
        let sysroot = cmd::stdout_of(
            Command::new("rustc")
                .arg(format!("+{NIGHTLY}"))
                .args(["--print", "sysroot"]),
        )?;
        Ok(Self {
            sysroot: PathBuf::from(sysroot.trim()),
            llvm_version,
            llvm_major,
        })
    }

    /// The directory holding nightly's shared libraries, libLLVM among them.
    pub fn lib_dir(&self) -> PathBuf {
        self.sysroot.join("lib")
    }

    /// The versioned libLLVM shared object itself (`libLLVM.so.22.1-rust-1.97.0-nightly`), the
    /// file that a bpf-linker built against this nightly must load.
    pub fn libllvm(&self) -> Result<PathBuf> {
        self.libllvm_files()?
            .into_iter()
            .find(|path| file_name_starts_with(path, "libLLVM.so."))
            .ok_or_else(|| anyhow!("no libLLVM.so.* in {}", self.lib_dir().display()))
    }

    /// Every `libLLVM*` file in [`Self::lib_dir`]: the versioned shared object and the
    /// `libLLVM-<major>-rust-*.so` linker script that names it.
    pub fn libllvm_files(&self) -> Result<Vec<PathBuf>> {
        let lib_dir = self.lib_dir();
        let entries =
            fs::read_dir(&lib_dir).with_context(|| format!("reading {}", lib_dir.display()))?;
        let mut files = Vec::new();
        for entry in entries {
            let path = entry
                .with_context(|| format!("reading {}", lib_dir.display()))?
                .path();
            if file_name_starts_with(&path, "libLLVM") {
                files.push(path);
            }
        }
        files.sort();
        Ok(files)
    }

    /// Where `-Z build-std` reads the standard library's source from.
    pub fn rust_src_dir(&self) -> PathBuf {
        self.sysroot.join("lib/rustlib/src/rust/library")
    }
}

/// The version from the "LLVM version: 22.1.4" line of `rustc -vV`.
fn llvm_version(verbose_version: &str) -> Result<&str> {
    verbose_version
        .lines()
        .find_map(|line| line.strip_prefix("LLVM version:"))
        .map(str::trim)
        .ok_or_else(|| {
            anyhow!("`rustc +{NIGHTLY} -vV` printed no LLVM version:\n{verbose_version}")
        })
}

fn file_name_starts_with(path: &Path, prefix: &str) -> bool {
    path.file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_llvm_version_from_rustc_verbose_version() {
        let verbose = "rustc 1.97.0-nightly (e50aa6fba 2026-05-19)\nbinary: rustc\n\
                       host: x86_64-unknown-linux-gnu\nrelease: 1.97.0-nightly\nLLVM version: 22.1.4\n";
        assert_eq!(llvm_version(verbose).ok(), Some("22.1.4"));
        assert!(llvm_version("rustc 1.0.0\n").is_err());
    }
}
