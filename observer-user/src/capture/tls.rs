//! Finding the TLS libraries on the host, attaching the TLS uprobes to them, and telling for
//! each process which TLS it speaks through, or what keeps it dark.
//!
//! Uprobes attach to a file (an inode), not to a process: once a library is attached, every
//! process that maps it, now or later, is covered. So the work is to find each distinct file
//! that carries a TLS library, once: shared libraries (libssl, libgnutls, libnspr4, and private
//! copies such as the libssl bundled in Python wheels), and executables that link a library
//! statically and keep its symbols (node with OpenSSL, programs with BoringSSL) or are Go
//! programs. Files in other mount namespaces are reached through `/proc/<pid>/root`. What each
//! library is and how it is probed is in `libraries.rs`.
//!
//! Per process, the agent also notes what no probe reaches: Java (libjvm), stripped Go
//! programs, Rust programs without OpenSSL (rustls), static programs without symbols. Those
//! become [`ProcessTlsStack`] facts for the coverage report.

use std::{
    collections::{HashMap, HashSet},
    fs::File,
    os::{fd::AsRawFd, unix::fs::MetadataExt},
    path::{Path, PathBuf},
};

use aya::{
    programs::{
        uprobe::{UProbeAttachLocation, UProbeScope},
        UProbe,
    },
    Ebpf,
};
use observer_common::TlsLibrary;

pub use super::libraries::Placement;
use super::{
    binary::{BinaryTraits, GoVersion, MIN_GO_VERSION},
    libraries::{self, Plan, Probe},
    placement::PlacementPolicy,
    preflight::in_process_root,
};
use crate::{
    coverage::{DarkReason, LibraryProbes, ProcessTlsStack},
    model::tls_library_name,
};

/// A file on the host: device and inode, so hard links and bind mounts count once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FileId {
    dev: u64,
    ino: u64,
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachOutcome {
    /// The probes are on these functions, placed as said.
    Attached {
        functions: Vec<(&'static str, Placement)>,
    },
    /// The file carries the library but it could not be hooked.
    Failed { error: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachReport {
    /// The path as the agent opened it (through `/proc/<pid>/root` for other namespaces).
    pub path: PathBuf,
    /// The process the file was found in, if found in one.
    pub pid: Option<u32>,
    pub library: TlsLibrary,
    pub outcome: AttachOutcome,
}

/// What is known of one file, once examined.
#[derive(Debug, Default)]
struct FileFacts {
    traits: BinaryTraits,
    report: Option<AttachReport>,
}

/// The files examined so far, so each is looked at once, and the TLS stack last reported for
/// each process, so a fact is only made when it changes.
#[derive(Debug, Default)]
pub struct TlsProbes {
    examined: HashMap<FileId, FileFacts>,
    stacks: HashMap<u32, ProcessTlsStack>,
    /// Processes looked at because they spoke TLS, since they started (or exec'd).
    speakers: HashSet<u32>,
    policy: PlacementPolicy,
}

impl TlsProbes {
    pub fn new(policy: PlacementPolicy) -> TlsProbes {
        TlsProbes {
            policy,
            ..TlsProbes::default()
        }
    }

    /// Reports for every file that carries a TLS library.
    pub fn reports(&self) -> impl Iterator<Item = &AttachReport> {
        self.examined.values().filter_map(|f| f.report.as_ref())
    }

    /// Attach to `path` if it carries a TLS library and was not examined before. Returns a
    /// report only the first time such a file is seen.
    pub fn attach_file(
        &mut self,
        ebpf: &mut Ebpf,
        path: &Path,
        pid: Option<u32>,
    ) -> Option<AttachReport> {
        let (id, new) = self.examine(ebpf, path, pid)?;
        if !new {
            return None;
        }
        self.examined.get(&id)?.report.clone()
    }

    /// Look at the executable and the TLS libraries `pid` maps, attach to those not yet
    /// attached, and say what the process's TLS is: `Some` only when that changed since the
    /// last look (or is the first worth telling).
    pub fn scan_process(&mut self, ebpf: &mut Ebpf, pid: u32) -> Option<ProcessTlsStack> {
        if pid == std::process::id() {
            // The agent's own traffic is never captured; its TLS is nobody's concern.
            return None;
        }
        let exe = match std::fs::read_link(format!("/proc/{pid}/exe")) {
            Ok(exe) => exe,
            Err(error) => {
                tracing::debug!(pid, %error, "gone before its TLS libraries were looked at");
                return None;
            }
        };
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
        let mapped: Vec<&str> = maps.lines().filter_map(mapped_path).collect();

        let mut libraries = Vec::new();
        let mut exe_traits = BinaryTraits::default();
        let mut candidates = vec![exe.clone()];
        for path in &mapped {
            let path = PathBuf::from(path);
            if is_tls_library(&path) && !candidates.contains(&path) {
                candidates.push(path);
            }
        }
        for (index, path) in candidates.iter().enumerate() {
            let Some((id, _)) = self.examine(ebpf, &in_process_root(pid, path), Some(pid)) else {
                continue;
            };
            let Some(facts) = self.examined.get(&id) else {
                continue;
            };
            if index == 0 {
                exe_traits = facts.traits.clone();
            }
            if let Some(report) = &facts.report {
                libraries.push(LibraryProbes {
                    library: tls_library_name(report.library).to_string(),
                    path: path.display().to_string(),
                    attached: matches!(report.outcome, AttachOutcome::Attached { .. }),
                    error: match &report.outcome {
                        AttachOutcome::Failed { error } => Some(error.clone()),
                        AttachOutcome::Attached { .. } => None,
                    },
                });
            }
        }
        let java = file_name(&exe) == "java"
            || mapped
                .iter()
                .any(|p| file_name(Path::new(p)).starts_with("libjvm.so"));
        let stack = ProcessTlsStack {
            pid,
            process: None,
            dark: dark_hint(java, &exe_traits, &libraries),
            libraries,
        };
        tracing::debug!(pid, exe = %exe.display(), ?exe_traits, ?stack, "TLS stack");
        if stack.libraries.is_empty() && stack.dark.is_none() {
            return None;
        }
        if self.stacks.get(&pid) == Some(&stack) {
            return None;
        }
        self.stacks.insert(pid, stack.clone());
        Some(stack)
    }

    /// Look at `pid` again because it speaks TLS, unless what it uses is known already or it
    /// was looked at for this reason before: a short-lived client may have mapped its TLS
    /// library only after the look at its exec, and be gone by the next.
    pub fn scan_speaker(&mut self, ebpf: &mut Ebpf, pid: u32) -> Option<ProcessTlsStack> {
        if self.stacks.contains_key(&pid) || !self.speakers.insert(pid) {
            return None;
        }
        self.scan_process(ebpf, pid)
    }

    /// The process exited or exec'd: its next look starts afresh.
    pub fn forget_process(&mut self, pid: u32) {
        self.stacks.remove(&pid);
        self.speakers.remove(&pid);
    }

    /// Examine `path` once: its traits, and its TLS library's probes attached. Returns the
    /// file's id and whether this was the first look.
    fn examine(
        &mut self,
        ebpf: &mut Ebpf,
        path: &Path,
        pid: Option<u32>,
    ) -> Option<(FileId, bool)> {
        // Work through our own open file: a path under /proc/<pid>/root vanishes when the
        // process exits, and a file opened once is the same inode for the stat, the symbol
        // read and the attach.
        let file = File::open(path).ok()?;
        let metadata = file.metadata().ok()?;
        let id = FileId {
            dev: metadata.dev(),
            ino: metadata.ino(),
        };
        if self.examined.contains_key(&id) {
            return Some((id, false));
        }
        let examined = match libraries::examine(&file, self.policy) {
            Ok(examined) => examined,
            Err(error) => {
                tracing::debug!(path = %path.display(), %error, "not an ELF file the agent reads");
                self.examined.insert(id, FileFacts::default());
                return Some((id, true));
            }
        };
        let report = examined.plan.map(|plan| {
            let (library, outcome) = match plan {
                Ok(plan) => {
                    let own_path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
                    (plan.library, attach_plan(ebpf, &own_path, plan))
                }
                Err(error) => (
                    library_of(&examined.traits),
                    AttachOutcome::Failed { error },
                ),
            };
            let report = AttachReport {
                path: path.to_path_buf(),
                pid,
                library,
                outcome,
            };
            match &report.outcome {
                AttachOutcome::Attached { functions } => tracing::info!(
                    path = %path.display(),
                    library = tls_library_name(library),
                    ?functions,
                    "TLS probes attached"
                ),
                AttachOutcome::Failed { error } => tracing::warn!(
                    path = %path.display(),
                    library = tls_library_name(library),
                    %error,
                    "TLS probes failed to attach"
                ),
            }
            report
        });
        self.examined.insert(
            id,
            FileFacts {
                traits: examined.traits,
                report,
            },
        );
        Some((id, true))
    }
}

/// The library a file that could not be planned carries, as far as its traits say.
fn library_of(traits: &BinaryTraits) -> TlsLibrary {
    if traits.go.is_some() {
        TlsLibrary::Go
    } else {
        TlsLibrary::None
    }
}

fn attach_plan(ebpf: &mut Ebpf, path: &Path, plan: Plan) -> AttachOutcome {
    match attach(ebpf, path, &plan.probes) {
        Ok(()) => AttachOutcome::Attached {
            functions: plan.functions,
        },
        Err(error) => AttachOutcome::Failed { error },
    }
}

/// What keeps a process's TLS out of reach, as far as its executable and mappings tell.
fn dark_hint(java: bool, exe: &BinaryTraits, libraries: &[LibraryProbes]) -> Option<DarkReason> {
    if java {
        return Some(DarkReason::Java);
    }
    if let Some(go) = &exe.go {
        if !go.has_symbols {
            return Some(DarkReason::StrippedGo);
        }
        if let Some(version) = &go.version {
            if GoVersion::parse(version).is_some_and(|v| v < MIN_GO_VERSION) {
                return Some(DarkReason::GoTooOld {
                    version: version.clone(),
                });
            }
        }
        return None;
    }
    let has_openssl = libraries
        .iter()
        .any(|l| l.library == "openssl" || l.library == "boringssl");
    if exe.rust && !has_openssl {
        return Some(DarkReason::Rustls);
    }
    if exe.static_without_symbols && libraries.is_empty() {
        return Some(DarkReason::StaticWithoutSymbols);
    }
    None
}

fn file_name(path: &Path) -> &str {
    path.file_name().and_then(|n| n.to_str()).unwrap_or("")
}

/// The path column of a /proc/<pid>/maps line, when it names a file.
fn mapped_path(line: &str) -> Option<&str> {
    // address perms offset dev inode path
    let path = line.splitn(6, ' ').nth(5)?.trim_start();
    path.starts_with('/')
        .then_some(path.trim_end_matches(" (deleted)"))
}

/// Shared libraries worth examining by name: OpenSSL's libssl (and private copies, which keep
/// the prefix), GnuTLS, and NSPR (NSS's I/O layer). Whether one really carries the library is
/// decided by its symbols.
fn is_tls_library(path: &Path) -> bool {
    let name = file_name(path);
    let shared = name.contains(".so");
    shared
        && (name.starts_with("libssl")
            || name.starts_with("libgnutls.so")
            || name.starts_with("libnspr4"))
}

/// System TLS libraries the dynamic linker knows about, from `ldconfig -p`: attaching them at
/// start covers short-lived clients that load them after exec, before the agent looks at them
/// (curl with libssl, wget with GnuTLS). NSPR is left for when a process maps it: its users are
/// long-lived (browsers, mail clients), and every probe costs the agent about 0.1 s at stop,
/// when the kernel removes it.
pub fn system_libraries() -> Vec<PathBuf> {
    known_tls_libraries()
        .into_iter()
        .filter(|path| !file_name(path).starts_with("libnspr4"))
        .collect()
}

/// Every TLS library `ldconfig -p` lists.
fn known_tls_libraries() -> Vec<PathBuf> {
    let Ok(output) = std::process::Command::new("ldconfig").arg("-p").output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split(" => ").nth(1))
        .map(|path| PathBuf::from(path.trim()))
        .filter(|path| is_tls_library(path))
        .collect()
}

fn attach(ebpf: &mut Ebpf, path: &Path, probes: &[Probe]) -> Result<(), String> {
    for probe in probes {
        let program: &mut UProbe = ebpf
            .program_mut(probe.program)
            .ok_or_else(|| format!("program {} missing", probe.program))?
            .try_into()
            .map_err(|e| format!("{}: {e}", probe.program))?;
        program
            .attach(
                UProbeAttachLocation::AbsoluteOffset(probe.offset),
                path,
                UProbeScope::AllProcesses,
            )
            .map_err(|e| format!("{} at offset {:#x}: {e}", probe.program, probe.offset))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_give_their_file_paths() {
        let line = "7f1c2a000000-7f1c2a021000 r-xp 00000000 fe:01 1234   /usr/lib/x86_64-linux-gnu/libssl.so.3";
        assert_eq!(
            mapped_path(line),
            Some("/usr/lib/x86_64-linux-gnu/libssl.so.3")
        );
        assert_eq!(mapped_path("7f00-7f01 rw-p 00000000 00:00 0 "), None);
        assert_eq!(
            mapped_path("7f00-7f01 rw-p 00000000 00:00 0   [heap]"),
            None
        );
        let deleted = "7f00-7f01 r-xp 00000000 fe:01 99 /opt/app/libssl.so.1.1 (deleted)";
        assert_eq!(mapped_path(deleted), Some("/opt/app/libssl.so.1.1"));
    }

    #[test]
    fn tls_libraries_are_recognised_by_name() {
        for path in [
            "/usr/lib/x86_64-linux-gnu/libssl.so.3",
            "/venv/lib/python3.11/site-packages/pycurl.libs/libssl-8b66dd34.so.3",
            "/usr/lib/x86_64-linux-gnu/libgnutls.so.30",
            "/usr/lib/x86_64-linux-gnu/libnspr4.so",
        ] {
            assert!(is_tls_library(Path::new(path)), "{path}");
        }
        for path in [
            "/usr/lib/x86_64-linux-gnu/libssl3.a",
            "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
            "/usr/lib/x86_64-linux-gnu/libgnutls-openssl.so.27",
        ] {
            assert!(!is_tls_library(Path::new(path)), "{path}");
        }
    }

    fn examine_path(path: &Path, policy: PlacementPolicy) -> Option<Plan> {
        let file = File::open(path).ok()?;
        libraries::examine(&file, policy).ok()?.plan?.ok()
    }

    /// The first system library (as the agent finds them) that plans as `library`.
    fn system_plan(library: TlsLibrary, policy: PlacementPolicy) -> (PathBuf, Plan) {
        let libraries = known_tls_libraries();
        libraries
            .iter()
            .find_map(|path| {
                examine_path(path, policy)
                    .filter(|plan| plan.library == library)
                    .map(|plan| (path.clone(), plan))
            })
            .unwrap_or_else(|| {
                panic!(
                    "no {} among {libraries:?}: install it (Debian: libssl3, libgnutls30, libnspr4)",
                    tls_library_name(library)
                )
            })
    }

    #[test]
    fn the_system_libssl_exports_the_hooked_functions() {
        // Names alone are not enough: NSS ships a libssl3.so with none of these functions.
        let (path, auto) = system_plan(TlsLibrary::OpenSsl, PlacementPolicy::Auto);
        let names: Vec<_> = auto.functions.iter().map(|(name, _)| *name).collect();
        for expected in ["SSL_read", "SSL_write", "SSL_read_ex", "SSL_write_ex"] {
            assert!(
                names.contains(&expected),
                "{expected} missing from {}: {names:?}",
                path.display()
            );
        }
        // Debian's OpenSSL 3 has the shape the cheaper probes need: all four wrappers are read
        // through two internal functions, one entry and one return probe each.
        assert!(
            auto.functions
                .iter()
                .all(|(_, placement)| matches!(placement, Placement::Internal { .. })),
            "{}: {:?}",
            path.display(),
            auto.functions
        );
        assert_eq!(auto.probes.len(), 4, "{:?}", auto.probes);

        // On the symbols: an entry and a return probe per wrapper.
        let symbol = examine_path(&path, PlacementPolicy::Symbol).expect("planned");
        assert!(symbol
            .functions
            .iter()
            .all(|(_, placement)| *placement == Placement::AtSymbol));
        assert_eq!(symbol.probes.len(), 8, "{:?}", symbol.probes);
        assert!(symbol.probes.iter().all(|probe| probe.offset > 0));
    }

    #[test]
    fn gnutls_and_nspr_are_planned_on_their_record_functions() {
        let (_, gnutls) = system_plan(TlsLibrary::GnuTls, PlacementPolicy::Auto);
        let names: Vec<_> = gnutls.functions.iter().map(|(name, _)| *name).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names.contains(&"gnutls_record_recv") && names.contains(&"gnutls_record_send"));
        assert_eq!(gnutls.probes.len(), 4);

        let (_, nss) = system_plan(TlsLibrary::Nss, PlacementPolicy::Auto);
        let mut names: Vec<_> = nss.functions.iter().map(|(name, _)| *name).collect();
        names.sort_unstable();
        assert_eq!(names, ["PR_Read", "PR_Recv", "PR_Send", "PR_Write"]);
        assert!(nss
            .probes
            .iter()
            .all(|p| p.program.starts_with("nss_enter_") || p.program.starts_with("tls_exit_")));
    }

    #[test]
    fn what_keeps_a_process_dark() {
        let go = |has_symbols, version: &str| BinaryTraits {
            go: Some(super::super::binary::GoBinary {
                version: Some(version.into()),
                has_symbols,
            }),
            ..BinaryTraits::default()
        };
        let rust = BinaryTraits {
            rust: true,
            ..BinaryTraits::default()
        };
        let openssl = [LibraryProbes {
            library: "openssl".into(),
            path: "/lib/libssl.so.3".into(),
            attached: true,
            error: None,
        }];
        assert_eq!(
            dark_hint(true, &BinaryTraits::default(), &[]),
            Some(DarkReason::Java)
        );
        assert_eq!(
            dark_hint(false, &go(false, "go1.19.8"), &[]),
            Some(DarkReason::StrippedGo)
        );
        assert_eq!(
            dark_hint(false, &go(true, "go1.16.2"), &[]),
            Some(DarkReason::GoTooOld {
                version: "go1.16.2".into()
            })
        );
        assert_eq!(dark_hint(false, &go(true, "go1.19.8"), &[]), None);
        assert_eq!(dark_hint(false, &rust, &[]), Some(DarkReason::Rustls));
        assert_eq!(dark_hint(false, &rust, &openssl), None);
        let static_binary = BinaryTraits {
            static_without_symbols: true,
            ..BinaryTraits::default()
        };
        assert_eq!(
            dark_hint(false, &static_binary, &[]),
            Some(DarkReason::StaticWithoutSymbols)
        );
    }
}
