//! Finding OpenSSL on the host and attaching the TLS uprobes to it.
//!
//! Uprobes attach to a file (an inode), not to a process: once a libssl is attached, every
//! process that maps it, now or later, is covered. So the work is to find each distinct file
//! that carries OpenSSL, once: shared libssl copies (the system's, and private ones such as
//! those bundled in Python wheels), and executables that link OpenSSL statically and export its
//! symbols (node, for one). Files in other mount namespaces are reached through
//! `/proc/<pid>/root`.

use std::{
    collections::HashMap,
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
use object::{Object, ObjectSection, ObjectSymbol};

use super::{
    placement::{
        starts_with_emulated_instruction, wrapper_call, CountSlot, PlacementPolicy, WrapperCall,
        MAX_INSTRUCTION_BYTES, MAX_WRAPPER_BYTES,
    },
    preflight::in_process_root,
};

/// Which way a hooked function moves plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Read,
    Write,
}

impl Way {
    /// The uretprobe program for this direction (it serves every placement).
    fn exit_program(self) -> &'static str {
        match self {
            Way::Read => "openssl_exit_read",
            Way::Write => "openssl_exit_write",
        }
    }

    fn internal_enter_program(self) -> &'static str {
        match self {
            Way::Read => "openssl_enter_internal_read",
            Way::Write => "openssl_enter_internal_write",
        }
    }
}

/// An OpenSSL wrapper the agent hooks, and its entry program on the symbol.
#[derive(Debug)]
struct Wrapper {
    symbol: &'static str,
    way: Way,
    enter_program: &'static str,
    /// The plain variant (int count returned) whose code confirms the internal call's shape.
    plain: bool,
}

const WRAPPERS: [Wrapper; 4] = [
    Wrapper {
        symbol: "SSL_read",
        way: Way::Read,
        enter_program: "openssl_enter_ssl_read",
        plain: true,
    },
    Wrapper {
        symbol: "SSL_write",
        way: Way::Write,
        enter_program: "openssl_enter_ssl_write",
        plain: true,
    },
    Wrapper {
        symbol: "SSL_read_ex",
        way: Way::Read,
        enter_program: "openssl_enter_ssl_read_ex",
        plain: false,
    },
    Wrapper {
        symbol: "SSL_write_ex",
        way: Way::Write,
        enter_program: "openssl_enter_ssl_write_ex",
        plain: false,
    },
];

/// Every OpenSSL program in the eBPF object, for loading.
pub const OPENSSL_PROGRAMS: [&str; 8] = [
    "openssl_enter_ssl_read",
    "openssl_enter_ssl_write",
    "openssl_enter_ssl_read_ex",
    "openssl_enter_ssl_write_ex",
    "openssl_enter_internal_read",
    "openssl_enter_internal_write",
    "openssl_exit_read",
    "openssl_exit_write",
];

/// Where one hooked function's plaintext is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Entry uprobe and uretprobe on the function's own symbol.
    AtSymbol,
    /// On the internal function it calls, at this file offset (shared with the other wrapper of
    /// the same direction).
    Internal { offset: u64 },
}

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
    /// The file has OpenSSL symbols but attaching failed.
    Failed { error: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachReport {
    /// The path as the agent opened it (through `/proc/<pid>/root` for other namespaces).
    pub path: PathBuf,
    /// The process the file was found in, if found in one.
    pub pid: Option<u32>,
    pub outcome: AttachOutcome,
}

/// The files examined so far, so each is looked at once.
#[derive(Debug, Default)]
pub struct TlsProbes {
    examined: HashMap<FileId, Option<AttachReport>>,
    policy: PlacementPolicy,
}

impl TlsProbes {
    pub fn new(policy: PlacementPolicy) -> TlsProbes {
        TlsProbes {
            examined: HashMap::new(),
            policy,
        }
    }

    /// Reports for every file that had OpenSSL symbols.
    pub fn reports(&self) -> impl Iterator<Item = &AttachReport> {
        self.examined.values().flatten()
    }

    /// Look at the executable and the libssl copies `pid` maps.
    pub fn scan_process(&mut self, ebpf: &mut Ebpf, pid: u32) -> Vec<AttachReport> {
        candidate_files(pid)
            .into_iter()
            .filter_map(|path| self.attach_file(ebpf, &in_process_root(pid, &path), Some(pid)))
            .collect()
    }

    /// Attach to `path` if it carries OpenSSL and was not examined before. Returns a report only
    /// the first time a file with OpenSSL symbols is seen.
    pub fn attach_file(
        &mut self,
        ebpf: &mut Ebpf,
        path: &Path,
        pid: Option<u32>,
    ) -> Option<AttachReport> {
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
            return None;
        }
        let plan = match plan_probes(&file, self.policy) {
            Ok(plan) if !plan.functions.is_empty() => plan,
            _ => {
                self.examined.insert(id, None);
                return None;
            }
        };
        let own_path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        let outcome = match attach(ebpf, &own_path, &plan.probes) {
            Ok(()) => AttachOutcome::Attached {
                functions: plan.functions,
            },
            Err(error) => AttachOutcome::Failed { error },
        };
        let report = AttachReport {
            path: path.to_path_buf(),
            pid,
            outcome,
        };
        match &report.outcome {
            AttachOutcome::Attached { functions } => {
                tracing::info!(path = %path.display(), ?functions, "TLS probes attached")
            }
            AttachOutcome::Failed { error } => {
                tracing::warn!(path = %path.display(), %error, "TLS probes failed to attach")
            }
        }
        self.examined.insert(id, Some(report.clone()));
        Some(report)
    }
}

/// Files in `pid` worth examining: mapped libraries named like libssl, and the executable.
fn candidate_files(pid: u32) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) {
        out.push(exe);
    }
    let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else {
        return out;
    };
    for path in maps.lines().filter_map(mapped_path) {
        if is_libssl(path) && !out.iter().any(|p| p == path) {
            out.push(PathBuf::from(path));
        }
    }
    out
}

/// The path column of a /proc/<pid>/maps line, when it names a file.
fn mapped_path(line: &str) -> Option<&str> {
    // address perms offset dev inode path
    let path = line.splitn(6, ' ').nth(5)?.trim_start();
    path.starts_with('/')
        .then_some(path.trim_end_matches(" (deleted)"))
}

fn is_libssl(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.starts_with("libssl") && name.contains(".so")
}

/// System libssl copies the dynamic linker knows about, from `ldconfig -p`: attaching them at
/// start covers short-lived clients that load libssl after exec.
pub fn system_libraries() -> Vec<PathBuf> {
    let Ok(output) = std::process::Command::new("ldconfig").arg("-p").output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split(" => ").nth(1))
        .map(str::trim)
        .filter(|path| is_libssl(path))
        .map(PathBuf::from)
        .collect()
}

/// A wrapper found in a file.
#[derive(Debug, Clone, Copy)]
struct FoundWrapper {
    wrapper: &'static Wrapper,
    /// File offset of its first instruction.
    offset: u64,
    /// Its call to the internal function, when its code has that shape.
    call: Option<WrapperCall>,
}

/// A probe to attach: a program at a file offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Probe {
    program: &'static str,
    offset: u64,
}

/// The hooked functions in a file, where each is read, and the probes that does it.
#[derive(Debug, Default)]
struct Plan {
    functions: Vec<(&'static str, Placement)>,
    probes: Vec<Probe>,
}

/// Find the OpenSSL wrappers `file` defines and plan their probes. Reads only the symbol
/// tables and a few bytes of code.
fn plan_probes(file: &File, policy: PlacementPolicy) -> Result<Plan, String> {
    let cache = object::read::ReadCache::new(file);
    let elf = object::File::parse(&cache).map_err(|e| e.to_string())?;
    let code_at = |address: u64, length: u64| -> Option<(u64, &[u8])> {
        let section = elf
            .sections()
            .find(|s| (s.address()..s.address() + s.size()).contains(&address))?;
        let (section_offset, _) = section.file_range()?;
        let code = section
            .data_range(
                address,
                length.min(section.address() + section.size() - address),
            )
            .ok()??;
        Some((address - section.address() + section_offset, code))
    };

    let mut found: Vec<FoundWrapper> = Vec::new();
    for symbol in elf.dynamic_symbols().chain(elf.symbols()) {
        let Ok(name) = symbol.name() else { continue };
        let Some(wrapper) = WRAPPERS.iter().find(|w| w.symbol == name) else {
            continue;
        };
        if !symbol.is_definition() || found.iter().any(|f| f.wrapper.symbol == wrapper.symbol) {
            continue;
        }
        let length = if symbol.size() > 0 {
            symbol.size()
        } else {
            MAX_WRAPPER_BYTES as u64
        };
        let Some((offset, code)) = code_at(symbol.address(), length.min(MAX_WRAPPER_BYTES as u64))
        else {
            continue;
        };
        let call = (policy == PlacementPolicy::Auto)
            .then(|| wrapper_call(code, symbol.address()))
            .flatten();
        found.push(FoundWrapper {
            wrapper,
            offset,
            call,
        });
    }

    let mut plan = Plan::default();
    for way in [Way::Read, Way::Write] {
        let wrappers: Vec<&FoundWrapper> = found.iter().filter(|f| f.wrapper.way == way).collect();
        // The plain wrapper's code confirms what the internal function takes and returns; the
        // internal function must start with an instruction the kernel emulates.
        let internal = wrappers
            .iter()
            .filter(|f| f.wrapper.plain)
            .filter_map(|f| f.call)
            .find(|call| call.confirmed && call.count == CountSlot::WrapperStack)
            .and_then(|call| {
                code_at(call.target, MAX_INSTRUCTION_BYTES as u64)
                    .map(|(offset, code)| (call.target, offset, code))
            })
            .filter(|(_, _, code)| starts_with_emulated_instruction(code))
            .map(|(target, offset, _)| (target, offset));
        if let Some((_, offset)) = internal {
            plan.probes.push(Probe {
                program: way.internal_enter_program(),
                offset,
            });
            plan.probes.push(Probe {
                program: way.exit_program(),
                offset,
            });
        }
        for found in wrappers {
            let covered = internal
                .filter(|(target, _)| found.call.is_some_and(|call| call.target == *target));
            match covered {
                Some((_, offset)) => plan
                    .functions
                    .push((found.wrapper.symbol, Placement::Internal { offset })),
                None => {
                    plan.probes.push(Probe {
                        program: found.wrapper.enter_program,
                        offset: found.offset,
                    });
                    plan.probes.push(Probe {
                        program: way.exit_program(),
                        offset: found.offset,
                    });
                    plan.functions
                        .push((found.wrapper.symbol, Placement::AtSymbol));
                }
            }
        }
    }
    Ok(plan)
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
    fn libssl_copies_are_recognised_by_name() {
        assert!(is_libssl("/usr/lib/x86_64-linux-gnu/libssl.so.3"));
        assert!(is_libssl(
            "/venv/lib/python3.11/site-packages/pycurl.libs/libssl-8d3b4d3e.so.3"
        ));
        assert!(!is_libssl("/usr/lib/x86_64-linux-gnu/libssl3.a"));
        assert!(!is_libssl("/usr/lib/x86_64-linux-gnu/libcrypto.so.3"));
    }

    #[test]
    fn the_system_libssl_exports_the_hooked_functions() {
        // Every supported distribution ships OpenSSL's libssl; find it the way the agent does.
        // (Names alone are not enough: NSS ships a libssl3.so with none of these functions.)
        let libraries = system_libraries();
        let plan = |path: &PathBuf, policy| {
            File::open(path)
                .map_err(|e| e.to_string())
                .and_then(|f| plan_probes(&f, policy))
                .unwrap_or_default()
        };
        let Some(path) = libraries
            .iter()
            .find(|path| !plan(path, PlacementPolicy::Auto).functions.is_empty())
        else {
            panic!("no OpenSSL libssl among {libraries:?}: install libssl (Debian: libssl3)");
        };

        let auto = plan(path, PlacementPolicy::Auto);
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
        let symbol = plan(path, PlacementPolicy::Symbol);
        assert!(symbol
            .functions
            .iter()
            .all(|(_, placement)| *placement == Placement::AtSymbol));
        assert_eq!(symbol.probes.len(), 8, "{:?}", symbol.probes);
        assert!(symbol.probes.iter().all(|probe| probe.offset > 0));
    }
}
