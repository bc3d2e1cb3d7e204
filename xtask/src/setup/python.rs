//! Python packages from PyPI that tests import, installed for the `python3` on PATH (the one the
//! tests run).

use std::process::Command;

use anyhow::Result;

use super::{apt, Progress};
use crate::cmd;

/// PyPI distributions the tests need, by the name pip installs them under. Add one here rather
/// than installing it by hand, so that a fresh machine and CI get it too.
const PYTHON_PACKAGES: &[&str] = &[
    // The real validator the exported OpenAPI documents must pass (inventory tests).
    "openapi-spec-validator",
    // Real API frameworks whose recorded traffic the inventory is tested on.
    "flask",
    "fastapi",
    "uvicorn",
    // A client whose wheel bundles its own libcurl and libssl (TLS stack tests).
    "pycurl",
];

/// Prints, one a line, the distributions named in its arguments that are not installed.
const PRINT_MISSING: &str = "\
import importlib.metadata, sys
for name in sys.argv[1:]:
    try:
        importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        print(name)
";

pub fn ensure(progress: &Progress) -> Result<()> {
    const COMPONENT: &str = "python packages";
    if PYTHON_PACKAGES.is_empty() {
        progress.ok(COMPONENT, "none needed");
        return Ok(());
    }
    let missing = cmd::stdout_of(
        Command::new("python3")
            .args(["-c", PRINT_MISSING])
            .args(PYTHON_PACKAGES),
    )?;
    let missing: Vec<&str> = missing.split_whitespace().collect();
    if missing.is_empty() {
        progress.ok(COMPONENT, &PYTHON_PACKAGES.join(" "));
        return Ok(());
    }
    progress.installing(COMPONENT, &missing.join(" "));
    // Debian's python3 comes without pip.
    if cmd::stdout_of(Command::new("python3").args(["-m", "pip", "--version"])).is_err() {
        apt::install(&["python3-pip"])?;
    }
    cmd::run(
        Command::new("python3")
            .args(["-m", "pip", "install", "--quiet"])
            .args(&missing)
            // Debian's python3 refuses installs outside a virtualenv (PEP 668) unless told this;
            // these are test tools on a machine that exists to run the tests. Older pips ignore it.
            .env("PIP_BREAK_SYSTEM_PACKAGES", "1")
            // Root is who runs the tests here; pip's warning about it is noise in every CI log.
            .env("PIP_ROOT_USER_ACTION", "ignore"),
    )
}
