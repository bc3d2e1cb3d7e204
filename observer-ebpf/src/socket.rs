//! What socket, if any, is behind an fd of the current process: read in the kernel at the moment
//! a connection is first seen, so short-lived connections keep their addresses.
//!
//! task → files → fd table → file → socket → sock, with the offsets the agent found in the
//! kernel's BTF (`KERNEL_LAYOUT`). Every step is a bounded `bpf_probe_read_kernel`, which fails
//! safely; any failure means "unknown", never a wrong answer.

use aya_ebpf::helpers::{bpf_get_current_task, bpf_probe_read_kernel};
use observer_common::{KernelLayout, SockAddr, AF_INET, AF_INET6};

use crate::maps::kernel_layout;

const S_IFMT: u16 = 0o170000;
const S_IFSOCK: u16 = 0o140000;
const IPPROTO_TCP: u16 = 6;

/// What an fd is.
pub enum FdKind {
    /// A socket, with its two ends (zeroed for families other than IPv4 and IPv6), its
    /// network namespace (0 when unknown), and its address when it is TCP (0 otherwise).
    Socket {
        local: SockAddr,
        remote: SockAddr,
        net: u64,
        tcp: u64,
    },
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

pub fn inspect(fd: u32) -> FdKind {
    let layout = kernel_layout();
    if layout.available == 0 {
        return FdKind::Unknown;
    }
    match socket_of(&layout, fd) {
        Some(Some(sock)) => FdKind::Socket {
            local: local_end(&layout, sock),
            remote: remote_end(&layout, sock),
            net: read(sock + u64::from(layout.sock_net)).unwrap_or(0),
            tcp: match read::<u16>(sock + u64::from(layout.sock_protocol)) {
                Some(IPPROTO_TCP) => sock,
                _ => 0,
            },
        },
        Some(None) => FdKind::NotSocket,
        None => FdKind::Unknown,
    }
}

/// TCP socket `sock`'s sequence number of the next byte the application reads: it moves with
/// every byte read, by whatever call. `None` when the read failed.
pub fn tcp_read_seq(sock: u64) -> Option<u32> {
    read(sock + u64::from(kernel_layout().tcp_copied_seq))
}

/// TCP socket `sock`'s sequence number after the last byte the application wrote: it moves
/// with every byte written, by whatever call. `None` when the read failed.
pub fn tcp_write_seq(sock: u64) -> Option<u32> {
    read(sock + u64::from(kernel_layout().tcp_write_seq))
}

/// `Some(Some(sock))` for a socket, `Some(None)` for an open fd that is not one, `None` when a
/// read failed.
fn socket_of(layout: &KernelLayout, fd: u32) -> Option<Option<u64>> {
    // SAFETY: no preconditions.
    let task = unsafe { bpf_get_current_task() };
    let files: u64 = read(task + u64::from(layout.task_files))?;
    let fdt: u64 = read(files + u64::from(layout.files_fdt))?;
    let max_fds: u32 = read(fdt + u64::from(layout.fdtable_max_fds))?;
    if fd >= max_fds {
        return None;
    }
    let fd_array: u64 = read(fdt + u64::from(layout.fdtable_fd))?;
    let file: u64 = read(fd_array + u64::from(fd) * 8)?;
    if file == 0 {
        return None;
    }
    let inode: u64 = read(file + u64::from(layout.file_inode))?;
    let mode: u16 = read(inode + u64::from(layout.inode_mode))?;
    if mode & S_IFMT != S_IFSOCK {
        return Some(None);
    }
    let socket: u64 = read(file + u64::from(layout.file_private_data))?;
    let sock: u64 = read(socket + u64::from(layout.socket_sk))?;
    (sock != 0).then_some(Some(sock))
}

fn family(layout: &KernelLayout, sock: u64) -> u16 {
    read(sock + u64::from(layout.sock_family)).unwrap_or(0)
}

fn local_end(layout: &KernelLayout, sock: u64) -> SockAddr {
    let family = family(layout, sock);
    // skc_num is the local port in host byte order.
    let port: u16 = read(sock + u64::from(layout.sock_num)).unwrap_or(0);
    end(
        sock,
        family,
        port,
        layout.sock_rcv_saddr,
        layout.sock_v6_rcv_saddr,
    )
}

fn remote_end(layout: &KernelLayout, sock: u64) -> SockAddr {
    let family = family(layout, sock);
    // skc_dport is the remote port in network byte order.
    let port = u16::from_be(read(sock + u64::from(layout.sock_dport)).unwrap_or(0));
    end(sock, family, port, layout.sock_daddr, layout.sock_v6_daddr)
}

fn end(sock: u64, family: u16, port: u16, v4: u32, v6: u32) -> SockAddr {
    let mut out = SockAddr {
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
    out
}
