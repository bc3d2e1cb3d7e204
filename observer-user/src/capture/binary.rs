//! What an executable's ELF headers say about the TLS it may carry out of reach of the probes:
//! a Go program (its version, and whether it kept its symbol table), a Rust program, a program
//! linked statically without symbols.
//!
//! Part of `capture`'s TLS discovery (`tls.rs` asks for these traits once per executable file).
//! They explain, in the coverage report, why a process that speaks TLS stays dark.

use object::{Object, ObjectSection, ObjectSymbol};

/// Bytes of read-only data searched for the Rust standard library's source paths when a Rust
/// program kept no symbols. Panic messages sit in `.rodata` of every Rust program; 64 MiB
/// covers the largest real binaries while bounding the work per file.
const MAX_RUST_SCAN_BYTES: u64 = 64 * 1024 * 1024;

/// The first Go release with the register-based calling convention (ABIInternal) on amd64,
/// which the Go probes read arguments and results by.
pub const MIN_GO_VERSION: GoVersion = GoVersion {
    major: 1,
    minor: 17,
};

/// `.go.buildinfo`'s header: magic, pointer size, flags, then two pointers or the inline strings.
const BUILDINFO_MAGIC: &[u8] = b"\xff Go buildinf:";
const BUILDINFO_HEADER_BYTES: usize = 32;
/// Flag bit: the version string follows the header inline (Go 1.18 and later).
const BUILDINFO_FLAG_INLINE: u8 = 0x2;
/// Flag bit: pointers are big-endian.
const BUILDINFO_FLAG_BIG_ENDIAN: u8 = 0x1;
/// A Go version string is a few dozen bytes ("go1.22.5", "devel go1.23-abcdef ..."); anything
/// longer is not one.
const MAX_GO_VERSION_BYTES: u64 = 256;

/// A Go release, as `go1.MINOR[.PATCH]` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct GoVersion {
    pub major: u32,
    pub minor: u32,
}

impl GoVersion {
    /// From a Go version string such as `go1.19.8` or `devel go1.23-1a2b3c Tue ...`.
    pub fn parse(text: &str) -> Option<GoVersion> {
        let start = text.find("go1.")? + 2;
        let mut parts = text[start..].split(|c: char| !c.is_ascii_digit());
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(GoVersion { major, minor })
    }
}

/// A Go executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoBinary {
    /// From `.go.buildinfo`, when readable.
    pub version: Option<String>,
    /// `.symtab` is present: functions can be found by name (`go build -ldflags=-s` drops it).
    pub has_symbols: bool,
}

/// What an executable says about the TLS it may carry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BinaryTraits {
    pub go: Option<GoBinary>,
    /// Built by rustc: its TLS, absent OpenSSL, is most likely rustls, which has no stable
    /// symbols to hook.
    pub rust: bool,
    /// No dynamic linker and no symbol table: whatever TLS it carries cannot be found.
    pub static_without_symbols: bool,
}

/// Read the traits of a parsed ELF file.
pub fn traits<'data, R: object::ReadRef<'data>>(elf: &object::File<'data, R>) -> BinaryTraits {
    let has_symbols = elf.section_by_name(".symtab").is_some();
    let go = is_go(elf).then(|| GoBinary {
        version: go_version(elf),
        has_symbols,
    });
    let is_static = elf.section_by_name(".interp").is_none();
    BinaryTraits {
        rust: go.is_none() && is_rust(elf),
        static_without_symbols: go.is_none() && is_static && !has_symbols,
        go,
    }
}

fn is_go<'data, R: object::ReadRef<'data>>(elf: &object::File<'data, R>) -> bool {
    [".go.buildinfo", ".gopclntab", ".note.go.buildid"]
        .iter()
        .any(|name| elf.section_by_name(name).is_some())
}

/// Rust programs define the standard library's panic machinery; without symbols, the paths of
/// its sources (`/rustc/<commit>/library/...`) still sit in the read-only data of panic messages.
fn is_rust<'data, R: object::ReadRef<'data>>(elf: &object::File<'data, R>) -> bool {
    let rust_symbol = |name: &str| {
        name.starts_with("__rust_") || name.contains("rust_begin_unwind") || name == "rust_panic"
    };
    if elf
        .symbols()
        .chain(elf.dynamic_symbols())
        .filter_map(|s| s.name().ok())
        .any(rust_symbol)
    {
        return true;
    }
    let Some(rodata) = elf.section_by_name(".rodata") else {
        return false;
    };
    if rodata.size() > MAX_RUST_SCAN_BYTES {
        return false;
    }
    rodata
        .data()
        .is_ok_and(|data| memchr::memmem::find(data, b"/rustc/").is_some())
}

/// The Go version recorded in `.go.buildinfo` (Go 1.13 and later).
fn go_version<'data, R: object::ReadRef<'data>>(elf: &object::File<'data, R>) -> Option<String> {
    let data = elf.section_by_name(".go.buildinfo")?.data().ok()?;
    let header = data.get(..BUILDINFO_HEADER_BYTES)?;
    if !header.starts_with(BUILDINFO_MAGIC) {
        return None;
    }
    let pointer_size = usize::from(header[14]);
    let flags = header[15];
    let bytes = if flags & BUILDINFO_FLAG_INLINE != 0 {
        inline_string(&data[BUILDINFO_HEADER_BYTES..])?
    } else {
        // Go 1.13 to 1.17: a pointer to a Go string header (data pointer, length).
        let big_endian = flags & BUILDINFO_FLAG_BIG_ENDIAN != 0;
        let string_header = pointer(header.get(16..16 + pointer_size)?, big_endian)?;
        let fields = read_virtual(elf, string_header, 2 * pointer_size as u64)?;
        let address = pointer(&fields[..pointer_size], big_endian)?;
        let length = pointer(&fields[pointer_size..], big_endian)?;
        if length > MAX_GO_VERSION_BYTES {
            return None;
        }
        read_virtual(elf, address, length)?
    };
    String::from_utf8(bytes.to_vec()).ok()
}

/// A uvarint-prefixed string.
fn inline_string(data: &[u8]) -> Option<&[u8]> {
    let mut length: u64 = 0;
    for (i, &byte) in data.iter().enumerate().take(10) {
        length |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if length > MAX_GO_VERSION_BYTES {
                return None;
            }
            let start = i + 1;
            return data.get(start..start + length as usize);
        }
    }
    None
}

fn pointer(bytes: &[u8], big_endian: bool) -> Option<u64> {
    match bytes.len() {
        8 => {
            let array: [u8; 8] = bytes.try_into().ok()?;
            Some(if big_endian {
                u64::from_be_bytes(array)
            } else {
                u64::from_le_bytes(array)
            })
        }
        4 => {
            let array: [u8; 4] = bytes.try_into().ok()?;
            Some(u64::from(if big_endian {
                u32::from_be_bytes(array)
            } else {
                u32::from_le_bytes(array)
            }))
        }
        _ => None,
    }
}

/// `length` bytes at a virtual address, from whichever section holds them.
pub fn read_virtual<'data, R: object::ReadRef<'data>>(
    elf: &object::File<'data, R>,
    address: u64,
    length: u64,
) -> Option<&'data [u8]> {
    let section = elf
        .sections()
        .find(|s| (s.address()..s.address() + s.size()).contains(&address))?;
    section.data_range(address, length).ok()?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_versions_parse_from_what_go_records() {
        assert_eq!(
            GoVersion::parse("go1.19.8"),
            Some(GoVersion {
                major: 1,
                minor: 19
            })
        );
        assert_eq!(
            GoVersion::parse("go1.17"),
            Some(GoVersion {
                major: 1,
                minor: 17
            })
        );
        assert_eq!(
            GoVersion::parse("devel go1.23-1a2b3c4 Tue Jan 1 00:00:00 2024 +0000"),
            Some(GoVersion {
                major: 1,
                minor: 23
            })
        );
        assert!(GoVersion::parse("go1.16.15").unwrap() < MIN_GO_VERSION);
        assert_eq!(GoVersion::parse("gopher"), None);
        assert_eq!(GoVersion::parse(""), None);
    }

    #[test]
    fn inline_strings_are_bounded() {
        assert_eq!(inline_string(b"\x08go1.19.8rest"), Some(&b"go1.19.8"[..]));
        // Longer than the data, or than any version string.
        assert_eq!(inline_string(b"\x20go1"), None);
        assert_eq!(inline_string(b"\xff\xff\xff\xff\x0f"), None);
        assert_eq!(inline_string(b""), None);
    }

    #[test]
    fn the_agent_itself_is_a_rust_program_and_not_go() {
        let path = std::env::current_exe().expect("test binary path");
        let file = std::fs::File::open(path).expect("open test binary");
        let cache = object::read::ReadCache::new(&file);
        let elf = object::File::parse(&cache).expect("ELF");
        let traits = traits(&elf);
        assert!(traits.rust, "{traits:?}");
        assert!(traits.go.is_none(), "{traits:?}");
    }
}
