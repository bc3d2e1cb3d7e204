//! What socket, if any, is behind an fd of the current process: read in the kernel at the moment
//! a connection is first seen, so short-lived connections keep their addresses.
//!
//! task → files → fd table → file → socket → sock, with the offsets the agent found in the
//! kernel's BTF (`KERNEL_LAYOUT`). Every step is a bounded `bpf_probe_read_kernel`, which fails
//! safely; any failure means "unknown", never a wrong answer.

use aya_ebpf::helpers::{bpf_get_current_task, bpf_probe_read_kernel};
use observer_common::{ConnState, SockAddr, AF_INET, AF_INET6};

use crate::maps::layout;

const S_IFMT: u16 = 0o170000;
const S_IFSOCK: u16 = 0o140000;
const IPPROTO_TCP: u16 = 6;

/// What an fd is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FdKind {
    /// A socket: its ends, network namespace and TCP address are in the state it was
    /// inspected into.
    Socket,
    /// A file, pipe or anything else that is not a socket.
    NotSocket,
    /// The kernel layout is not known, or a read failed.
    Unknown,
}

#[inline(always)]
fn read<T>(address: u64) -> Option<T> {
    // SAFETY: the helper reads kernel memory and fails safely on a bad address.
    unsafe { bpf_probe_read_kernel(address as *const T) }.ok()
}

/// What `fd` is. For a socket, `state` gets its local end, its remote end when the socket
/// knows one (ends of families other than IPv4 and IPv6 hold only their family), its network
/// namespace (0 when unknown) and its address when it is TCP (0 otherwise). Written in place,
/// not returned: uprobe programs run without a private stack, so their whole call chain
/// shares 512 bytes, and a returned copy of both ends sat in two frames of it.
pub fn inspect_into(fd: u32, state: &mut ConnState) -> FdKind {
    if layout(|l| &l.available) == 0 {
        return FdKind::Unknown;
    }
    match socket_of(fd) {
        Some(Some(sock)) => {
            let family: u16 = read(sock + u64::from(layout(|l| &l.sock_family))).unwrap_or(0);
            let local_port: u16 = read(sock + u64::from(layout(|l| &l.sock_num))).unwrap_or(0);
            write_end(
                &mut state.local,
                sock,
                family,
                local_port,
                layout(|l| &l.sock_rcv_saddr),
                layout(|l| &l.sock_v6_rcv_saddr),
            );
            if family != 0 {
                let remote_port =
                    u16::from_be(read(sock + u64::from(layout(|l| &l.sock_dport))).unwrap_or(0));
                write_end(
                    &mut state.remote,
                    sock,
                    family,
                    remote_port,
                    layout(|l| &l.sock_daddr),
                    layout(|l| &l.sock_v6_daddr),
                );
            }
            state.net = read(sock + u64::from(layout(|l| &l.sock_net))).unwrap_or(0);
            state.tcp_sock = match read::<u16>(sock + u64::from(layout(|l| &l.sock_protocol))) {
                Some(IPPROTO_TCP) => sock,
                _ => 0,
            };
            FdKind::Socket
        }
        Some(None) => FdKind::NotSocket,
        None => FdKind::Unknown,
    }
}

/// TCP socket `sock`'s sequence number of the next byte the application reads: it moves with
/// every byte read, by whatever call. `None` when the read failed.
pub fn tcp_read_seq(sock: u64) -> Option<u32> {
    read(sock + u64::from(layout(|l| &l.tcp_copied_seq)))
}

/// TCP socket `sock`'s sequence number after the last byte the application wrote: it moves
/// with every byte written, by whatever call. `None` when the read failed.
pub fn tcp_write_seq(sock: u64) -> Option<u32> {
    read(sock + u64::from(layout(|l| &l.tcp_write_seq)))
}

/// `Some(Some(sock))` for a socket, `Some(None)` for an open fd that is not one, `None` when a
/// read failed.
fn socket_of(fd: u32) -> Option<Option<u64>> {
    // SAFETY: no preconditions.
    let task = unsafe { bpf_get_current_task() };
    let files: u64 = read(task + u64::from(layout(|l| &l.task_files)))?;
    let fdt: u64 = read(files + u64::from(layout(|l| &l.files_fdt)))?;
    let max_fds: u32 = read(fdt + u64::from(layout(|l| &l.fdtable_max_fds)))?;
    if fd >= max_fds {
        return None;
    }
    let fd_array: u64 = read(fdt + u64::from(layout(|l| &l.fdtable_fd)))?;
    let file: u64 = read(fd_array + u64::from(fd) * 8)?;
    if file == 0 {
        return None;
    }
    let inode: u64 = read(file + u64::from(layout(|l| &l.file_inode)))?;
    let mode: u16 = read(inode + u64::from(layout(|l| &l.inode_mode)))?;
    if mode & S_IFMT != S_IFSOCK {
        return Some(None);
    }
    let socket: u64 = read(file + u64::from(layout(|l| &l.file_private_data)))?;
    let sock: u64 = read(socket + u64::from(layout(|l| &l.socket_sk)))?;
    (sock != 0).then_some(Some(sock))
}

/// One end of `sock` (`port` in host byte order), its address read from offset `v4` or `v6`
/// by family; other families keep only their family.
fn write_end(out: &mut SockAddr, sock: u64, family: u16, port: u16, v4: u32, v6: u32) {
    *out = SockAddr {
        family,
        port,
        ..SockAddr::default()
    };
    match family {
        AF_INET => {
            if let Some(addr) = read::<[u8; 4]>(sock + u64::from(v4)) {
                out.addr[..4].copy_from_slice(&addr);
            }
        }
        AF_INET6 => {
            if let Some(addr) = read::<[u8; 16]>(sock + u64::from(v6)) {
                out.addr = addr;
            }
        }
        _ => out.port = 0,
    }
}
