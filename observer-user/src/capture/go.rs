//! Where the Go `crypto/tls` probes go in one Go executable: the entry of `(*tls.Conn).Write`
//! and `(*tls.Conn).Read`, and every `ret` instruction inside them.
//!
//! Part of `capture`'s TLS discovery; the kernel side is observer-ebpf/src/go_tls.rs, which
//! explains why Go functions get a probe on each return instruction and never a uretprobe.
//! The functions are found by name in the symbol table, with their sizes; their machine code is
//! decoded from the first byte to the last with iced-x86. Go's compiler emits no data inside
//! function bodies on amd64 (jump tables go to read-only data), so a linear decode finds every
//! instruction boundary, and a probe on a `ret` can never land inside another instruction: a
//! byte that does not decode refuses the whole function rather than risk one.

use iced_x86::{Code, Decoder, DecoderOptions};
use object::{Object, ObjectSymbol};

use super::binary::{GoBinary, GoVersion, MIN_GO_VERSION};

/// Bytes of one hooked function decoded at most. `(*tls.Conn).Write` and `.Read` are about a
/// kilobyte each; a symbol claiming more than this is not the function we know.
const MAX_GO_FUNCTION_BYTES: u64 = 64 * 1024;

/// `ret` instructions probed per function at most: the compiler emits one per return path,
/// a handful in these functions. More would mean a misread, and each costs a probe.
const MAX_RETURNS_PER_FUNCTION: usize = 32;

/// A Go function the agent hooks, with its programs.
#[derive(Debug, PartialEq, Eq)]
pub struct GoFunction {
    pub symbol: &'static str,
    pub enter_program: &'static str,
    pub return_program: &'static str,
}

pub static GO_FUNCTIONS: [GoFunction; 2] = [
    GoFunction {
        symbol: "crypto/tls.(*Conn).Write",
        enter_program: "go_tls_enter_write",
        return_program: "go_tls_exit_write",
    },
    GoFunction {
        symbol: "crypto/tls.(*Conn).Read",
        enter_program: "go_tls_enter_read",
        return_program: "go_tls_exit_read",
    },
];

/// Every Go program in the eBPF object, for loading.
pub const GO_PROGRAMS: [&str; 4] = [
    "go_tls_enter_write",
    "go_tls_exit_write",
    "go_tls_enter_read",
    "go_tls_exit_read",
];

/// Why a Go executable's crypto/tls cannot be hooked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoPlanError {
    #[error("Go {version} predates the register calling convention the probes read (Go 1.17)")]
    TooOld { version: String },
    #[error(
        "the Go version is not recorded in .go.buildinfo, so the calling convention is unknown"
    )]
    UnknownVersion,
    #[error("{symbol} has a size of {size} bytes, which is not the function the probes know")]
    OddSize { symbol: &'static str, size: u64 },
    #[error("{symbol}'s code is not in a section of the file")]
    NoCode { symbol: &'static str },
    #[error("{symbol} does not decode as x86-64 at {address:#x}")]
    Undecodable { symbol: &'static str, address: u64 },
    #[error("{symbol} has {returns} return instructions, more than the {MAX_RETURNS_PER_FUNCTION} expected")]
    TooManyReturns {
        symbol: &'static str,
        returns: usize,
    },
    #[error("{symbol} has no return instruction")]
    NoReturn { symbol: &'static str },
}

/// One function's probe sites, as virtual addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoSites {
    pub function: &'static GoFunction,
    pub entry: u64,
    pub returns: Vec<u64>,
}

/// The probe sites of the crypto/tls functions `elf` defines; empty when it has none (a Go
/// program without TLS, or one whose symbols were stripped: see [`GoBinary::has_symbols`]).
/// `code_at(address, length)` gives the bytes at a virtual address.
pub fn plan<'data, R: object::ReadRef<'data>>(
    elf: &object::File<'data, R>,
    go: &GoBinary,
    code_at: impl Fn(u64, u64) -> Option<&'data [u8]>,
) -> Result<Vec<GoSites>, GoPlanError> {
    let mut found = Vec::new();
    for symbol in elf.symbols() {
        let Ok(name) = symbol.name() else { continue };
        let Some(function) = GO_FUNCTIONS.iter().find(|f| f.symbol == name) else {
            continue;
        };
        let function: &'static GoFunction = function;
        if !symbol.is_definition() || found.iter().any(|(f, _, _)| *f == function) {
            continue;
        }
        found.push((function, symbol.address(), symbol.size()));
    }
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let version = go.version.as_deref().ok_or(GoPlanError::UnknownVersion)?;
    if GoVersion::parse(version).is_none_or(|v| v < MIN_GO_VERSION) {
        return Err(GoPlanError::TooOld {
            version: version.to_string(),
        });
    }
    found
        .into_iter()
        .map(|(function, address, size)| {
            if size == 0 || size > MAX_GO_FUNCTION_BYTES {
                return Err(GoPlanError::OddSize {
                    symbol: function.symbol,
                    size,
                });
            }
            let code = code_at(address, size).ok_or(GoPlanError::NoCode {
                symbol: function.symbol,
            })?;
            Ok(GoSites {
                function,
                entry: address,
                returns: return_sites(function.symbol, code, address)?,
            })
        })
        .collect()
}

/// Addresses of every `ret` in a function's code, decoded from its first byte.
pub fn return_sites(
    symbol: &'static str,
    code: &[u8],
    address: u64,
) -> Result<Vec<u64>, GoPlanError> {
    let mut decoder = Decoder::with_ip(64, code, address, DecoderOptions::NONE);
    let mut returns = Vec::new();
    while decoder.can_decode() {
        let instruction = decoder.decode();
        if instruction.is_invalid() {
            return Err(GoPlanError::Undecodable {
                symbol,
                address: instruction.ip(),
            });
        }
        if matches!(instruction.code(), Code::Retnq | Code::Retnq_imm16) {
            returns.push(instruction.ip());
        }
    }
    if returns.is_empty() {
        return Err(GoPlanError::NoReturn { symbol });
    }
    if returns.len() > MAX_RETURNS_PER_FUNCTION {
        return Err(GoPlanError::TooManyReturns {
            symbol,
            returns: returns.len(),
        });
    }
    Ok(returns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_return_is_found_and_nothing_inside_an_instruction() {
        // cmp 0x10(%r14),%rsp; jbe +N; ...; ret; mov $0xc3,%eax (a c3 byte inside an
        // immediate, which must not be taken for a ret); ret; int3 padding.
        let code = [
            0x49, 0x3b, 0x66, 0x10, // cmp 0x10(%r14),%rsp
            0x76, 0x08, // jbe
            0x48, 0x89, 0xc3, // mov %rax,%rbx (c3 as a ModRM byte)
            0xc3, // ret
            0xb8, 0xc3, 0x00, 0x00, 0x00, // mov $0xc3,%eax
            0xc3, // ret
            0xcc, 0xcc, // int3 padding
        ];
        let returns = return_sites("f", &code, 0x1000).expect("decodes");
        assert_eq!(returns, vec![0x1009, 0x100f]);
    }

    #[test]
    fn code_that_does_not_decode_is_refused() {
        // A truncated instruction at the end.
        let code = [0xc3, 0x48, 0x8b];
        assert!(matches!(
            return_sites("f", &code, 0),
            Err(GoPlanError::Undecodable { .. })
        ));
        assert!(matches!(
            return_sites("f", &[0x90, 0x90], 0),
            Err(GoPlanError::NoReturn { .. })
        ));
    }
}
