//! The TLS libraries the agent hooks, how each is recognised in a file, and the probes that read
//! its plaintext: which eBPF program goes at which file offset.
//!
//! Part of `capture`'s TLS discovery: `tls.rs` hands each new file here once and attaches the
//! plan. A file is recognised by the symbols it defines, never by its name, so copies at unusual
//! paths (Python wheels' bundled libssl, BoringSSL linked into a program) are found as well:
//!
//! - OpenSSL: `SSL_read`, `SSL_write` and their `_ex` variants, probed on the internal function
//!   they call where the code has that shape (`placement.rs`), else on the symbols;
//! - BoringSSL: the same `SSL_read`/`SSL_write`, in a file that also defines BoringSSL's own
//!   `BORINGSSL_*` functions; probed on the symbols;
//! - GnuTLS: `gnutls_record_recv` and `gnutls_record_send`;
//! - NSS: NSPR's `PR_Read`, `PR_Write`, `PR_Recv` and `PR_Send` (NSS's SSL layer serves them for
//!   TLS sockets; the kernel side ignores calls on anything but a TLS socket);
//! - Go: `crypto/tls.(*Conn).Write` and `.Read` in a Go executable with symbols (`go.rs`).
//!
//! The C functions all take (session, buffer, count) and return the count moved, so they share
//! one return program per direction; each library has its own entry programs, which tell the
//! kernel side which library the plaintext came from.

use std::{collections::HashSet, fs::File};

use object::{Object, ObjectSection, ObjectSymbol};
use observer_common::TlsLibrary;

use super::{
    binary::{self, BinaryTraits},
    go,
    placement::{
        starts_with_emulated_instruction, wrapper_call, CountSlot, PlacementPolicy, WrapperCall,
        MAX_INSTRUCTION_BYTES, MAX_WRAPPER_BYTES,
    },
};

/// Which way a hooked function moves plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Read,
    Write,
}

impl Way {
    /// The uretprobe program for this direction (it serves every C library and placement).
    fn exit_program(self) -> &'static str {
        match self {
            Way::Read => "tls_exit_read",
            Way::Write => "tls_exit_write",
        }
    }

    fn internal_enter_program(self) -> &'static str {
        match self {
            Way::Read => "openssl_enter_internal_read",
            Way::Write => "openssl_enter_internal_write",
        }
    }
}

/// A C library function with the (session, buffer, count) shape, and its entry program.
#[derive(Debug)]
struct Function {
    symbol: &'static str,
    way: Way,
    enter_program: &'static str,
}

/// An OpenSSL wrapper the agent hooks.
#[derive(Debug)]
struct Wrapper {
    function: Function,
    /// The plain variant (int count returned) whose code confirms the internal call's shape.
    plain: bool,
}

static OPENSSL_WRAPPERS: [Wrapper; 4] = [
    Wrapper {
        function: Function {
            symbol: "SSL_read",
            way: Way::Read,
            enter_program: "openssl_enter_ssl_read",
        },
        plain: true,
    },
    Wrapper {
        function: Function {
            symbol: "SSL_write",
            way: Way::Write,
            enter_program: "openssl_enter_ssl_write",
        },
        plain: true,
    },
    Wrapper {
        function: Function {
            symbol: "SSL_read_ex",
            way: Way::Read,
            enter_program: "openssl_enter_ssl_read_ex",
        },
        plain: false,
    },
    Wrapper {
        function: Function {
            symbol: "SSL_write_ex",
            way: Way::Write,
            enter_program: "openssl_enter_ssl_write_ex",
        },
        plain: false,
    },
];

static BORINGSSL_FUNCTIONS: [Function; 2] = [
    Function {
        symbol: "SSL_read",
        way: Way::Read,
        enter_program: "boringssl_enter_ssl_read",
    },
    Function {
        symbol: "SSL_write",
        way: Way::Write,
        enter_program: "boringssl_enter_ssl_write",
    },
];

static GNUTLS_FUNCTIONS: [Function; 2] = [
    Function {
        symbol: "gnutls_record_recv",
        way: Way::Read,
        enter_program: "gnutls_enter_record_recv",
    },
    Function {
        symbol: "gnutls_record_send",
        way: Way::Write,
        enter_program: "gnutls_enter_record_send",
    },
];

static NSS_FUNCTIONS: [Function; 4] = [
    Function {
        symbol: "PR_Read",
        way: Way::Read,
        enter_program: "nss_enter_pr_read",
    },
    Function {
        symbol: "PR_Write",
        way: Way::Write,
        enter_program: "nss_enter_pr_write",
    },
    Function {
        symbol: "PR_Recv",
        way: Way::Read,
        enter_program: "nss_enter_pr_recv",
    },
    Function {
        symbol: "PR_Send",
        way: Way::Write,
        enter_program: "nss_enter_pr_send",
    },
];

/// Symbols only BoringSSL defines (its self-tests and FIPS checks), which tell it from OpenSSL.
const BORINGSSL_MARKER_PREFIX: &str = "BORINGSSL_";

/// The symbols whose definition says which library a file is.
const RECOGNISED: [&str; 6] = [
    "PR_Read",
    "PR_Write",
    "gnutls_record_recv",
    "gnutls_record_send",
    "SSL_read",
    "SSL_write",
];

/// Every C library program in the eBPF object, for loading.
pub const C_LIBRARY_PROGRAMS: [&str; 16] = [
    "openssl_enter_ssl_read",
    "openssl_enter_ssl_write",
    "openssl_enter_ssl_read_ex",
    "openssl_enter_ssl_write_ex",
    "openssl_enter_internal_read",
    "openssl_enter_internal_write",
    "boringssl_enter_ssl_read",
    "boringssl_enter_ssl_write",
    "gnutls_enter_record_recv",
    "gnutls_enter_record_send",
    "nss_enter_pr_read",
    "nss_enter_pr_write",
    "nss_enter_pr_recv",
    "nss_enter_pr_send",
    "tls_exit_read",
    "tls_exit_write",
];

/// Where one hooked function's plaintext is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Entry uprobe and uretprobe on the function's own symbol.
    AtSymbol,
    /// On the internal function it calls, at this file offset (shared with the other wrapper of
    /// the same direction).
    Internal { offset: u64 },
    /// A uprobe at the entry and one on each of its `returns` return instructions (Go).
    EntryAndReturns { returns: usize },
}

/// A probe to attach: a program at a file offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub program: &'static str,
    pub offset: u64,
}

/// The TLS library in a file, its hooked functions and where each is read, and the probes.
#[derive(Debug)]
pub struct Plan {
    pub library: TlsLibrary,
    pub functions: Vec<(&'static str, Placement)>,
    pub probes: Vec<Probe>,
}

/// What one file is.
#[derive(Debug)]
pub struct Examined {
    pub traits: BinaryTraits,
    /// The TLS library it carries and its probes, or why they cannot be planned (for a library
    /// that is there but cannot be hooked, such as a Go program older than Go 1.17).
    pub plan: Option<Result<Plan, String>>,
}

/// Read a file's symbols and traits, and plan the probes for the TLS library it carries.
pub fn examine(file: &File, policy: PlacementPolicy) -> Result<Examined, String> {
    let cache = object::read::ReadCache::new(file);
    let elf = object::File::parse(&cache).map_err(|e| e.to_string())?;
    let traits = binary::traits(&elf);
    let plan = plan(&elf, &traits, policy);
    Ok(Examined { traits, plan })
}

fn plan<'data, R: object::ReadRef<'data>>(
    elf: &object::File<'data, R>,
    traits: &BinaryTraits,
    policy: PlacementPolicy,
) -> Option<Result<Plan, String>> {
    if let Some(go) = &traits.go {
        let sites = match go::plan(elf, go, |address, length| {
            code_at(elf, address, length).map(|(_, code)| code)
        }) {
            Ok(sites) => sites,
            Err(error) => return Some(Err(error.to_string())),
        };
        if sites.is_empty() {
            return None;
        }
        let mut plan = Plan {
            library: TlsLibrary::Go,
            functions: Vec::new(),
            probes: Vec::new(),
        };
        for site in sites {
            let offset = |address| file_offset(elf, address).ok_or("code outside the file");
            let entry = match offset(site.entry) {
                Ok(entry) => entry,
                Err(error) => return Some(Err(format!("{}: {error}", site.function.symbol))),
            };
            plan.probes.push(Probe {
                program: site.function.enter_program,
                offset: entry,
            });
            for address in &site.returns {
                match offset(*address) {
                    Ok(at) => plan.probes.push(Probe {
                        program: site.function.return_program,
                        offset: at,
                    }),
                    Err(error) => return Some(Err(format!("{}: {error}", site.function.symbol))),
                }
            }
            plan.functions.push((
                site.function.symbol,
                Placement::EntryAndReturns {
                    returns: site.returns.len(),
                },
            ));
        }
        return Some(Ok(plan));
    }

    // One pass over the symbols for the names that tell the libraries apart.
    let mut names: HashSet<&str> = HashSet::new();
    let mut boringssl = false;
    for symbol in elf.dynamic_symbols().chain(elf.symbols()) {
        let Ok(name) = symbol.name() else { continue };
        boringssl |= name.starts_with(BORINGSSL_MARKER_PREFIX);
        if symbol.is_definition() && RECOGNISED.contains(&name) {
            names.insert(name);
        }
    }
    let defined = |wanted: &str| names.contains(wanted);
    if defined("PR_Read") && defined("PR_Write") {
        return Some(Ok(plan_at_symbols(elf, TlsLibrary::Nss, &NSS_FUNCTIONS)));
    }
    if defined("gnutls_record_recv") || defined("gnutls_record_send") {
        return Some(Ok(plan_at_symbols(
            elf,
            TlsLibrary::GnuTls,
            &GNUTLS_FUNCTIONS,
        )));
    }
    if !defined("SSL_read") && !defined("SSL_write") {
        return None;
    }
    if boringssl {
        return Some(Ok(plan_at_symbols(
            elf,
            TlsLibrary::BoringSsl,
            &BORINGSSL_FUNCTIONS,
        )));
    }
    let plan = plan_openssl(elf, policy);
    (!plan.functions.is_empty()).then_some(Ok(plan))
}

/// The file offset and bytes (at most `length`, within one section) at a virtual address.
fn code_at<'data, R: object::ReadRef<'data>>(
    elf: &object::File<'data, R>,
    address: u64,
    length: u64,
) -> Option<(u64, &'data [u8])> {
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
}

fn file_offset<'data, R: object::ReadRef<'data>>(
    elf: &object::File<'data, R>,
    address: u64,
) -> Option<u64> {
    code_at(elf, address, 1).map(|(offset, _)| offset)
}

/// Entry and return probes on each function's symbol.
fn plan_at_symbols<'data, R: object::ReadRef<'data>>(
    elf: &object::File<'data, R>,
    library: TlsLibrary,
    functions: &'static [Function],
) -> Plan {
    let mut plan = Plan {
        library,
        functions: Vec::new(),
        probes: Vec::new(),
    };
    for symbol in elf.dynamic_symbols().chain(elf.symbols()) {
        let Ok(name) = symbol.name() else { continue };
        let Some(function) = functions.iter().find(|f| f.symbol == name) else {
            continue;
        };
        if !symbol.is_definition() || plan.functions.iter().any(|(s, _)| *s == function.symbol) {
            continue;
        }
        let Some(offset) = file_offset(elf, symbol.address()) else {
            continue;
        };
        plan.probes.push(Probe {
            program: function.enter_program,
            offset,
        });
        plan.probes.push(Probe {
            program: function.way.exit_program(),
            offset,
        });
        plan.functions.push((function.symbol, Placement::AtSymbol));
    }
    plan
}

/// An OpenSSL wrapper found in a file.
#[derive(Debug, Clone, Copy)]
struct FoundWrapper {
    wrapper: &'static Wrapper,
    /// File offset of its first instruction.
    offset: u64,
    /// Its call to the internal function, when its code has that shape.
    call: Option<WrapperCall>,
}

/// Find the OpenSSL wrappers `elf` defines and plan their probes. Reads only the symbol tables
/// and a few bytes of code.
fn plan_openssl<'data, R: object::ReadRef<'data>>(
    elf: &object::File<'data, R>,
    policy: PlacementPolicy,
) -> Plan {
    let mut found: Vec<FoundWrapper> = Vec::new();
    for symbol in elf.dynamic_symbols().chain(elf.symbols()) {
        let Ok(name) = symbol.name() else { continue };
        let Some(wrapper) = OPENSSL_WRAPPERS.iter().find(|w| w.function.symbol == name) else {
            continue;
        };
        if !symbol.is_definition()
            || found
                .iter()
                .any(|f| f.wrapper.function.symbol == wrapper.function.symbol)
        {
            continue;
        }
        let length = if symbol.size() > 0 {
            symbol.size()
        } else {
            MAX_WRAPPER_BYTES as u64
        };
        let Some((offset, code)) =
            code_at(elf, symbol.address(), length.min(MAX_WRAPPER_BYTES as u64))
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

    let mut plan = Plan {
        library: TlsLibrary::OpenSsl,
        functions: Vec::new(),
        probes: Vec::new(),
    };
    for way in [Way::Read, Way::Write] {
        let wrappers: Vec<&FoundWrapper> = found
            .iter()
            .filter(|f| f.wrapper.function.way == way)
            .collect();
        // The plain wrapper's code confirms what the internal function takes and returns; the
        // internal function must start with an instruction the kernel emulates.
        let internal = wrappers
            .iter()
            .filter(|f| f.wrapper.plain)
            .filter_map(|f| f.call)
            .find(|call| call.confirmed && call.count == CountSlot::WrapperStack)
            .and_then(|call| {
                code_at(elf, call.target, MAX_INSTRUCTION_BYTES as u64)
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
            let symbol = found.wrapper.function.symbol;
            match covered {
                Some((_, offset)) => plan
                    .functions
                    .push((symbol, Placement::Internal { offset })),
                None => {
                    plan.probes.push(Probe {
                        program: found.wrapper.function.enter_program,
                        offset: found.offset,
                    });
                    plan.probes.push(Probe {
                        program: way.exit_program(),
                        offset: found.offset,
                    });
                    plan.functions.push((symbol, Placement::AtSymbol));
                }
            }
        }
    }
    plan
}
