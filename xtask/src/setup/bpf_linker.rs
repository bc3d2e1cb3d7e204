//! bpf-linker, built against nightly's own libLLVM.
//!
//! rustc hands bpf-linker LLVM bitcode, which only the same (or a newer) LLVM can read, and no
//! prebuilt bpf-linker can be downloaded here. So we build it from crates.io against the libLLVM
//! that ships inside the nightly toolchain. bpf-linker's build script looks for `lib/libLLVM.so`
//! under `LLVM_PREFIX` and bakes that `lib/` directory into the binary's runpath; nightly's sysroot
//! is no such prefix, so we make one: a lasting directory whose `lib/` holds symlinks to nightly's
//! libLLVM files. It must outlive any build, since the installed binary cannot start without it.
//!
//! "Installed" means: `bpf-linker --version` runs and says [`BPF_LINKER_VERSION`], and the libLLVM
//! the dynamic loader gives it is nightly's own file. A nightly update that changes LLVM renames
//! that file (its name carries the LLVM and rustc versions), so the check fails and we rebuild.

use std::{
    fs,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{anyhow, bail, Context as _, Result};

use super::Progress;
use crate::{cmd, host, toolchain::Nightly};

/// The bpf-linker release we build; it can link LLVM 21, 22 or 23 (features `llvm-<major>`).
const BPF_LINKER_VERSION: &str = "0.13.0";

/// The name `cargo install` gives the binary under `$CARGO_HOME/bin`, where rustc finds it.
pub const BPF_LINKER_BIN: &str = "bpf-linker";

pub fn ensure(progress: &Progress, nightly: &Nightly) -> Result<()> {
    const COMPONENT: &str = "bpf-linker";
    let binary = host::cargo_home()?.join("bin").join(BPF_LINKER_BIN);
    match check_installed(&binary, nightly) {
        Ok(()) => {
            let what = format!(
                "{BPF_LINKER_VERSION}, nightly's LLVM {}",
                nightly.llvm_version
            );
            progress.ok(COMPONENT, &what);
            Ok(())
        }
        Err(why) => {
            let why = format!(
                "{why:#}; building {BPF_LINKER_VERSION} against nightly's LLVM {}",
                nightly.llvm_version
            );
            progress.installing(COMPONENT, &why);
            install(nightly)?;
            check_installed(&binary, nightly).context("the bpf-linker just installed does not work")
        }
    }
}

/// Succeeds if `binary` is the bpf-linker we want and loads nightly's libLLVM; otherwise says why
/// not.
fn check_installed(binary: &Path, nightly: &Nightly) -> Result<()> {
    let version = cmd::stdout_of(Command::new(binary).arg("--version"))?;
    let expected = format!("{BPF_LINKER_BIN} {BPF_LINKER_VERSION}");
    if version.trim() != expected {
        bail!(
            "{} is {:?}, not {expected:?}",
            binary.display(),
            version.trim()
        );
    }
    let loaded = loaded_libllvm(binary)?;
    let wanted = nightly.libllvm()?;
    let same_file = |a: &Path, b: &Path| -> Result<bool> {
        Ok(
            fs::canonicalize(a).with_context(|| format!("resolving {}", a.display()))?
                == fs::canonicalize(b).with_context(|| format!("resolving {}", b.display()))?,
        )
    };
    if !same_file(&loaded, &wanted)? {
        bail!(
            "{} loads {}, not nightly's {}",
            binary.display(),
            loaded.display(),
            wanted.display()
        );
    }
    Ok(())
}

/// The libLLVM file the dynamic loader resolves for `binary`, as `ldd` reports it.
fn loaded_libllvm(binary: &Path) -> Result<PathBuf> {
    let ldd = cmd::stdout_of(Command::new("ldd").arg(binary))?;
    // A line looks like "\tlibLLVM.so.22.1-rust-1.97.0-nightly => /path/to/it (0x...)", or
    // "... => not found" once the runpath target is gone.
    let line = ldd
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("libLLVM"))
        .ok_or_else(|| anyhow!("{} does not link libLLVM dynamically", binary.display()))?;
    let resolved = line
        .split_once("=>")
        .map(|(_, rest)| rest.trim())
        .ok_or_else(|| anyhow!("unexpected `ldd` line {line:?}"))?;
    if resolved.starts_with("not found") {
        bail!("{} cannot find its libLLVM ({line})", binary.display());
    }
    let path = resolved
        .rsplit_once(" (")
        .map_or(resolved, |(path, _)| path);
    Ok(PathBuf::from(path))
}

/// Makes the LLVM prefix and runs `cargo install` against it (about 75 s on two cores).
fn install(nightly: &Nightly) -> Result<()> {
    let prefix = make_llvm_prefix(nightly)?;
    cmd::run(
        Command::new("cargo")
            .args(["install", BPF_LINKER_BIN, "--version", BPF_LINKER_VERSION])
            .args(["--no-default-features", "--features"])
            .arg(format!("llvm-{}", nightly.llvm_major))
            // The lock file published with the crate: the dependency versions its release was tested with.
            .arg("--locked")
            // Replaces a bpf-linker that cargo believes is installed but that no longer works.
            .arg("--force")
            .env("LLVM_PREFIX", &prefix),
    )
}

/// Creates (anew) `<lasting data dir>/llvm-prefix/lib` with links to nightly's libLLVM files, plus
/// the unversioned `libLLVM.so` link that the build script and the linker look for.
fn make_llvm_prefix(nightly: &Nightly) -> Result<PathBuf> {
    let prefix = host::lasting_data_dir()?.join("llvm-prefix");
    let lib_dir = prefix.join("lib");
    if lib_dir.exists() {
        // Only our symlinks live here; stale ones would point at an older nightly's files.
        fs::remove_dir_all(&lib_dir).with_context(|| format!("removing {}", lib_dir.display()))?;
    }
    fs::create_dir_all(&lib_dir).with_context(|| format!("creating {}", lib_dir.display()))?;
    let mut links = Vec::new();
    for target in nightly.libllvm_files()? {
        let name = target
            .file_name()
            .context("a libLLVM file without a name")?
            .to_owned();
        links.push((lib_dir.join(name), target));
    }
    links.push((lib_dir.join("libLLVM.so"), nightly.libllvm()?));
    for (link, target) in links {
        symlink(&target, &link)
            .with_context(|| format!("linking {} to {}", link.display(), target.display()))?;
    }
    Ok(prefix)
}
