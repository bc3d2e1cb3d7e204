//! Where the kernel keeps a socket's addresses, read from the kernel's own type information
//! (`/sys/kernel/btf/vmlinux`) when the agent starts.
//!
//! The eBPF programs use these offsets to go from an fd to its socket (task → files → fd table →
//! file → socket → sock) and read the socket's family, ports and addresses in the kernel, at the
//! moment a connection is first seen. Without them, addresses come from user space, which is too
//! late for connections that close within milliseconds. Offsets differ between kernel builds,
//! which is why they are looked up rather than compiled in; when anything is missing the layout
//! says so (`available == 0`) and the programs skip the kernel-side read.

use std::{collections::HashMap, fs};

use observer_common::KernelLayout;
use thiserror::Error;

const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

const BTF_MAGIC: u16 = 0xeb9f;
const BTF_KIND_STRUCT: u32 = 4;
const BTF_KIND_UNION: u32 = 5;

#[derive(Debug, Error)]
pub enum LayoutError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed BTF: {0}")]
    Malformed(&'static str),
    #[error("no {0} in the kernel's BTF")]
    Missing(String),
}

/// One struct or union: its members by name (anonymous members kept for descent).
#[derive(Debug, Default)]
struct Composite {
    /// (name, type id, bit offset)
    members: Vec<(String, u32, u32)>,
}

/// The kernel's structs and unions, by type id, and struct ids by name.
#[derive(Debug, Default)]
struct Types {
    composites: HashMap<u32, Composite>,
    structs_by_name: HashMap<String, u32>,
    /// type id → the type it refers to (typedefs, const, volatile...), to reach anonymous
    /// composites through qualifiers.
    refers_to: HashMap<u32, u32>,
}

fn u32_at(data: &[u8], at: usize) -> Result<u32, LayoutError> {
    data.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(LayoutError::Malformed("truncated"))
}

fn string_at(strings: &[u8], offset: u32) -> String {
    let start = offset as usize;
    let Some(rest) = strings.get(start..) else {
        return String::new();
    };
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    String::from_utf8_lossy(&rest[..end]).into_owned()
}

/// Parse the struct and union definitions out of raw BTF.
fn parse(data: &[u8]) -> Result<Types, LayoutError> {
    if data.len() < 24 || u16::from_le_bytes([data[0], data[1]]) != BTF_MAGIC {
        return Err(LayoutError::Malformed(
            "bad magic (big-endian BTF is not supported)",
        ));
    }
    let header_len = u32_at(data, 4)? as usize;
    let (type_off, type_len) = (u32_at(data, 8)? as usize, u32_at(data, 12)? as usize);
    let (str_off, str_len) = (u32_at(data, 16)? as usize, u32_at(data, 20)? as usize);
    let types = data
        .get(header_len + type_off..header_len + type_off + type_len)
        .ok_or(LayoutError::Malformed("type section out of bounds"))?;
    let strings = data
        .get(header_len + str_off..header_len + str_off + str_len)
        .ok_or(LayoutError::Malformed("string section out of bounds"))?;

    let mut out = Types::default();
    let mut at = 0;
    let mut id = 1u32;
    while at + 12 <= types.len() {
        let name_off = u32_at(types, at)?;
        let info = u32_at(types, at + 4)?;
        let size_or_type = u32_at(types, at + 8)?;
        let kind = (info >> 24) & 0x1f;
        let vlen = (info & 0xffff) as usize;
        let kind_flag = info >> 31 == 1;
        at += 12;
        // Bytes of kind-specific data after the common header (see the kernel's btf.rst).
        let extra = match kind {
            1 | 14 | 17 => 4,     // INT, VAR, DECL_TAG
            3 => 12,              // ARRAY
            4 | 5 => 12 * vlen,   // STRUCT, UNION
            6 | 13 => 8 * vlen,   // ENUM, FUNC_PROTO
            15 | 19 => 12 * vlen, // DATASEC, ENUM64
            2 | 7 | 8 | 9 | 10 | 11 | 12 | 16 | 18 => 0,
            _ => return Err(LayoutError::Malformed("unknown type kind")),
        };
        if matches!(kind, 2 | 8 | 9 | 10 | 11 | 18) {
            out.refers_to.insert(id, size_or_type);
        }
        if kind == BTF_KIND_STRUCT || kind == BTF_KIND_UNION {
            let mut composite = Composite::default();
            for member in 0..vlen {
                let base = at + member * 12;
                let member_name = string_at(strings, u32_at(types, base)?);
                let member_type = u32_at(types, base + 4)?;
                let offset = u32_at(types, base + 8)?;
                let bit_offset = if kind_flag {
                    offset & 0x00ff_ffff
                } else {
                    offset
                };
                composite
                    .members
                    .push((member_name, member_type, bit_offset));
            }
            let name = string_at(strings, name_off);
            if kind == BTF_KIND_STRUCT && !name.is_empty() {
                out.structs_by_name.entry(name).or_insert(id);
            }
            out.composites.insert(id, composite);
        }
        at += extra;
        id += 1;
    }
    Ok(out)
}

impl Types {
    /// Byte offset of `member` in struct `name`, looking inside anonymous structs and unions.
    fn offset(&self, name: &str, member: &str) -> Result<u32, LayoutError> {
        let id = *self
            .structs_by_name
            .get(name)
            .ok_or_else(|| LayoutError::Missing(format!("struct {name}")))?;
        self.find(id, member)
            .map(|bits| bits / 8)
            .ok_or_else(|| LayoutError::Missing(format!("{name}.{member}")))
    }

    fn find(&self, id: u32, member: &str) -> Option<u32> {
        let composite = self.composites.get(&id)?;
        for (name, type_id, bit_offset) in &composite.members {
            if name == member {
                return Some(*bit_offset);
            }
            if name.is_empty() {
                if let Some(inner) = self.find(self.resolve(*type_id), member) {
                    return Some(bit_offset + inner);
                }
            }
        }
        None
    }

    /// Follow typedefs and qualifiers to the type they name.
    fn resolve(&self, mut id: u32) -> u32 {
        for _ in 0..16 {
            match self.refers_to.get(&id) {
                Some(&next) if !self.composites.contains_key(&id) => id = next,
                _ => break,
            }
        }
        id
    }
}

/// The layout of this kernel, or why it is not known.
pub fn read() -> Result<KernelLayout, LayoutError> {
    let data = fs::read(VMLINUX_BTF).map_err(|source| LayoutError::Read {
        path: VMLINUX_BTF,
        source,
    })?;
    layout(&parse(&data)?)
}

fn layout(types: &Types) -> Result<KernelLayout, LayoutError> {
    let sock_common = types.offset("sock", "__sk_common")?;
    let sock = |member: &str| -> Result<u32, LayoutError> {
        Ok(sock_common + types.offset("sock_common", member)?)
    };
    Ok(KernelLayout {
        available: 1,
        task_files: types.offset("task_struct", "files")?,
        files_fdt: types.offset("files_struct", "fdt")?,
        fdtable_max_fds: types.offset("fdtable", "max_fds")?,
        fdtable_fd: types.offset("fdtable", "fd")?,
        file_inode: types.offset("file", "f_inode")?,
        inode_mode: types.offset("inode", "i_mode")?,
        file_private_data: types.offset("file", "private_data")?,
        socket_sk: types.offset("socket", "sk")?,
        sock_family: sock("skc_family")?,
        sock_num: sock("skc_num")?,
        sock_dport: sock("skc_dport")?,
        sock_daddr: sock("skc_daddr")?,
        sock_rcv_saddr: sock("skc_rcv_saddr")?,
        sock_v6_daddr: sock("skc_v6_daddr")?,
        sock_v6_rcv_saddr: sock("skc_v6_rcv_saddr")?,
        // A `possible_net_t`, whose only member is the `struct net` pointer.
        sock_net: sock("skc_net")?,
        sock_protocol: types.offset("sock", "sk_protocol")?,
        tcp_copied_seq: types.offset("tcp_sock", "copied_seq")?,
        tcp_write_seq: types.offset("tcp_sock", "write_seq")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_kernels_layout_is_found() {
        // Every machine observer runs on has BTF (the agent's requirements say so).
        let layout = read().expect("kernel layout");
        assert_eq!(layout.available, 1);
        // struct sock begins with its sock_common, and sock_common with the address pair: these
        // have not moved in fifteen years of kernels.
        assert_eq!(layout.sock_daddr, 0);
        assert_eq!(layout.sock_rcv_saddr, 4);
        assert_eq!(layout.sock_dport, 12);
        assert_eq!(layout.sock_num, 14);
        assert_eq!(layout.sock_family, 16);
        assert!(layout.task_files > 0 && layout.file_private_data > 0 && layout.sock_v6_daddr > 16);
        assert!(
            layout.file_inode > 0 && layout.inode_mode == 0,
            "i_mode opens struct inode"
        );
        // struct tcp_sock extends struct sock: its sequence numbers lie past the socket's fields.
        assert!(layout.sock_protocol > layout.sock_family);
        assert!(layout.tcp_copied_seq > layout.sock_protocol);
        assert!(layout.tcp_write_seq > layout.sock_protocol);
        assert_ne!(layout.tcp_copied_seq, layout.tcp_write_seq);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse(b"").is_err());
        assert!(parse(&[
            0x9f, 0xeb, 1, 0, 24, 0, 0, 0, 0, 0, 0, 0, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
        ])
        .is_err());
        let mut header = vec![0x9f, 0xeb, 1, 0, 24, 0, 0, 0];
        header.extend_from_slice(&[0; 16]);
        assert!(parse(&header)
            .expect("empty BTF parses")
            .structs_by_name
            .is_empty());
    }
}
