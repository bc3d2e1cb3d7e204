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
    placement::{place, Placement, PlacementPolicy, MAX_WRAPPER_BYTES},
    preflight::in_process_root,
};

/// An OpenSSL function hooked, and its programs: entry and return on the symbol, and the pair
/// placed around the internal call where the function has that shape (see `placement`).
struct Hooked {
    symbol: &'static str,
    enter: &'static str,
    exit: &'static str,
    around_call: Option<(&'static str, &'static str)>,
}

const OPENSSL_FUNCTIONS: [Hooked; 4] = [
    Hooked {
        symbol: "SSL_read",
        enter: "openssl_enter_ssl_read",
        exit: "openssl_exit_ssl_read",
        around_call: Some(("openssl_enter_call_read", "openssl_exit_call_read")),
    },
    Hooked {
        symbol: "SSL_write",
        enter: "openssl_enter_ssl_write",
        exit: "openssl_exit_ssl_write",
        around_call: Some(("openssl_enter_call_write", "openssl_exit_call_write")),
    },
    Hooked {
        symbol: "SSL_read_ex",
        enter: "openssl_enter_ssl_read_ex",
        exit: "openssl_exit_ssl_read_ex",
        around_call: None,
    },
    Hooked {
        symbol: "SSL_write_ex",
        enter: "openssl_enter_ssl_write_ex",
        exit: "openssl_exit_ssl_write_ex",
        around_call: None,
    },
];

/// Every OpenSSL program in the eBPF object, for loading.
pub const OPENSSL_PROGRAMS: [&str; 12] = [
    "openssl_enter_ssl_read",
    "openssl_exit_ssl_read",
    "openssl_enter_ssl_write",
    "openssl_exit_ssl_write",
    "openssl_enter_ssl_read_ex",
    "openssl_exit_ssl_read_ex",
    "openssl_enter_ssl_write_ex",
    "openssl_exit_ssl_write_ex",
    "openssl_enter_call_read",
    "openssl_exit_call_read",
    "openssl_enter_call_write",
    "openssl_exit_call_write",
];

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
        let functions = match openssl_functions(&file, self.policy) {
            Ok(functions) if !functions.is_empty() => functions,
            _ => {
                self.examined.insert(id, None);
                return None;
            }
        };
        let own_path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        let outcome = match attach(ebpf, &own_path, &functions) {
            Ok(attached) => AttachOutcome::Attached {
                functions: attached,
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

/// A hooked function found in a file: its name, file offset, and where its probes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FunctionOffset {
    name: &'static str,
    offset: u64,
    placement: Placement,
}

/// Which OpenSSL functions `path` defines, and where. Reads only the symbol tables.
fn openssl_functions(file: &File, policy: PlacementPolicy) -> Result<Vec<FunctionOffset>, String> {
    let cache = object::read::ReadCache::new(file);
    let elf = object::File::parse(&cache).map_err(|e| e.to_string())?;
    let mut found = Vec::new();
    for symbol in elf.dynamic_symbols().chain(elf.symbols()) {
        if !symbol.is_definition() {
            continue;
        }
        let Ok(name) = symbol.name() else { continue };
        let Some(function) = OPENSSL_FUNCTIONS
            .iter()
            .find(|f| f.symbol == name)
            .map(|f| f.symbol)
        else {
            continue;
        };
        if found.iter().any(|f: &FunctionOffset| f.name == function) {
            continue;
        }
        let Some(section) = symbol
            .section_index()
            .and_then(|i| elf.section_by_index(i).ok())
        else {
            continue;
        };
        let Some((section_offset, _)) = section.file_range() else {
            continue;
        };
        let Ok(UProbeAttachLocation::AbsoluteOffset(offset)) =
            UProbeAttachLocation::from_virtual_address(
                symbol.address(),
                section.address(),
                section_offset,
            )
        else {
            continue;
        };
        let length = if symbol.size() > 0 {
            symbol.size().min(MAX_WRAPPER_BYTES as u64)
        } else {
            MAX_WRAPPER_BYTES as u64
        };
        let placement = section
            .data_range(symbol.address(), length)
            .ok()
            .flatten()
            .filter(|_| policy == PlacementPolicy::Auto)
            .map_or(Placement::AtSymbol, |code| place(code, symbol.address()));
        found.push(FunctionOffset {
            name: function,
            offset,
            placement,
        });
    }
    Ok(found)
}

fn attach(
    ebpf: &mut Ebpf,
    path: &Path,
    functions: &[FunctionOffset],
) -> Result<Vec<(&'static str, Placement)>, String> {
    let mut attached = Vec::new();
    for function in functions {
        let Some(hooked) = OPENSSL_FUNCTIONS.iter().find(|f| f.symbol == function.name) else {
            continue;
        };
        let probes = match (function.placement, hooked.around_call) {
            (Placement::AroundInternalCall { call, exit }, Some((enter_program, exit_program))) => {
                [
                    (enter_program, function.offset + call),
                    (exit_program, function.offset + exit),
                ]
            }
            _ => [
                (hooked.enter, function.offset),
                (hooked.exit, function.offset),
            ],
        };
        for (program, offset) in probes {
            let probe: &mut UProbe = ebpf
                .program_mut(program)
                .ok_or_else(|| format!("program {program} missing"))?
                .try_into()
                .map_err(|e| format!("{program}: {e}"))?;
            probe
                .attach(
                    UProbeAttachLocation::AbsoluteOffset(offset),
                    path,
                    UProbeScope::AllProcesses,
                )
                .map_err(|e| format!("{program} on {}: {e}", function.name))?;
        }
        let placement = if hooked.around_call.is_some() {
            function.placement
        } else {
            Placement::AtSymbol
        };
        attached.push((function.name, placement));
    }
    Ok(attached)
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
        let openssl = libraries
            .iter()
            .map(|path| {
                let functions = File::open(path)
                    .map_err(|e| e.to_string())
                    .and_then(|f| openssl_functions(&f, PlacementPolicy::Auto));
                (path, functions.unwrap_or_default())
            })
            .find(|(_, functions)| !functions.is_empty());
        let Some((path, functions)) = openssl else {
            panic!("no OpenSSL libssl among {libraries:?}: install libssl (Debian: libssl3)");
        };
        let names: Vec<_> = functions.iter().map(|f| f.name).collect();
        for expected in ["SSL_read", "SSL_write", "SSL_read_ex", "SSL_write_ex"] {
            assert!(
                names.contains(&expected),
                "{expected} missing from {}: {names:?}",
                path.display()
            );
        }
        assert!(functions.iter().all(|f| f.offset > 0));
        // Debian's OpenSSL 3 has the wrapper shape the cheaper probes need.
        for function in functions
            .iter()
            .filter(|f| f.name == "SSL_read" || f.name == "SSL_write")
        {
            assert!(
                matches!(function.placement, Placement::AroundInternalCall { .. }),
                "{} in {}: {:?}",
                function.name,
                path.display(),
                function.placement
            );
        }
    }
}
