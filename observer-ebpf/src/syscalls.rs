//! Socket syscalls, handled at their exit: by then the call's result says whether there is
//! anything to do, and its arguments are still in the registers the thread saved on entering the
//! kernel.
//!
//! Reading the arguments there, rather than keeping them from an entry program, halves the
//! programs each call runs and needs no map write per call: an entry program cost a second
//! tracepoint hit (the classic syscall tracepoint builds a record of the arguments before any
//! program runs) plus a hash-map insert, lookup and delete to carry the arguments across. It
//! also serves calls begun before the programs were attached (a server thread blocked in read()
//! on an idle keep-alive connection), whose entry no program saw.
//!
//! x86-64 only: the syscall ABI passes arguments in rdi, rsi, rdx, r10, and the handlers of these
//! calls leave them untouched (the result goes to rax). The exit tracepoint's record holds the
//! return value at offset 16 (see `/sys/kernel/tracing/events/syscalls/sys_exit_read/format`).

use aya_ebpf::{
    bindings::pt_regs,
    helpers::{
        bpf_get_current_pid_tgid, bpf_probe_read_user,
        generated::{bpf_get_current_task_btf, bpf_task_pt_regs},
    },
    programs::TracePointContext,
};
use observer_common::{
    ConnOrigin, Direction, Hook, SockAddr, Source, TlsLibrary, AF_INET, AF_INET6,
};

use crate::{
    conn::{self, DataCall},
    inflight::{Payload, PayloadKind},
    maps::{agent_tgid, filter_by_pid, FILTER_PIDS, TLS_ARGS},
};

const ARGS_OFFSET: usize = 16;
const RET_OFFSET: usize = 16;
/// connect() on a non-blocking socket returns this and completes later.
const EINPROGRESS: i64 = 115;
/// Peeked bytes are read again by the next call: shipping them would count them twice (nginx
/// peeks one byte of every new connection to tell TLS from plaintext).
const MSG_PEEK: u64 = 2;

/// An argument of a syscall entry's tracepoint record (close is the one entry still hooked:
/// after it returns, its fd may already name another file).
fn arg(ctx: &TracePointContext, index: usize) -> Result<u64, i64> {
    // SAFETY: reading the tracepoint record within its documented layout.
    unsafe { ctx.read_at::<u64>(ARGS_OFFSET + index * 8) }.map_err(i64::from)
}

fn ret(ctx: &TracePointContext) -> Result<i64, i64> {
    // SAFETY: reading the tracepoint record within its documented layout.
    unsafe { ctx.read_at::<i64>(RET_OFFSET) }.map_err(i64::from)
}

/// The calling process, unless it is one we must not watch.
#[inline(always)]
pub fn watched_process() -> Option<(u64, u32, u32)> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    if tgid == agent_tgid() {
        return None;
    }
    // SAFETY: plain lookup.
    if filter_by_pid() && unsafe { FILTER_PIDS.get(tgid) }.is_none() {
        return None;
    }
    Some((pid_tgid, tgid, pid_tgid as u32))
}

/// The current syscall's first four arguments, from the user registers the thread saved on
/// entering the kernel.
#[inline(always)]
fn saved_arguments() -> [u64; 4] {
    // SAFETY: `bpf_task_pt_regs` returns a BTF-typed pointer to the current task's saved
    // registers, which the verifier lets the program load from directly (each load guarded
    // like a probe read), without a helper call.
    unsafe {
        let task = bpf_get_current_task_btf();
        let regs = bpf_task_pt_regs(task) as *const pt_regs;
        [(*regs).rdi, (*regs).rsi, (*regs).rdx, (*regs).r10]
    }
}

/// The fd and the payload of a data syscall from its first four arguments; `None` for a peek,
/// whose bytes the next read takes again (nginx peeks one byte of every new connection).
#[inline(always)]
fn data_call(hook: Hook, kind: PayloadKind, args: [u64; 4]) -> Result<Option<(u32, Payload)>, i64> {
    let fd = args[0] as u32;
    let payload = match hook {
        // recvmsg(fd, msg, flags), sendmsg(fd, msg, flags): the payload is the msghdr's iovecs,
        // whose pointer and count the kernel leaves as the caller set them.
        Hook::Recvmsg | Hook::Sendmsg => {
            if hook == Hook::Recvmsg && args[2] & MSG_PEEK != 0 {
                return Ok(None);
            }
            let msghdr = args[1];
            // struct user_msghdr: msg_iov at offset 16, msg_iovlen at 24, read in one call.
            // SAFETY: helper read of user memory.
            let [iov, iovlen] = unsafe { bpf_probe_read_user((msghdr + 16) as *const [u64; 2]) }
                .map_err(i64::from)?;
            Payload {
                ptr: iov,
                len: iovlen,
                kind: PayloadKind::Vector,
            }
        }
        // recvfrom(fd, buf, len, flags, ...)
        Hook::Recvfrom if args[3] & MSG_PEEK != 0 => return Ok(None),
        _ => Payload {
            ptr: args[1],
            len: args[2],
            kind,
        },
    };
    Ok(Some((fd, payload)))
}

/// Exit of read/write/readv/writev/recvfrom/sendto/recvmsg/sendmsg.
pub fn exit_data(
    ctx: &TracePointContext,
    hook: Hook,
    kind: PayloadKind,
    direction: Direction,
) -> Result<(), i64> {
    // Most failed calls are a non-blocking socket with nothing to read: the cheapest check first.
    let size = ret(ctx)?;
    if size <= 0 {
        return Ok(());
    }
    let Some((pid_tgid, tgid, tid)) = watched_process() else {
        return Ok(());
    };
    let Some((fd, payload)) = data_call(hook, kind, saved_arguments())? else {
        return Ok(());
    };
    // The ignored map first: most calls on the host are on files, pipes and eventfds, which one
    // lookup there dismisses (looking in the connection table first saved tracked connections
    // that lookup, but cost every ignored fd a second one).
    if !conn::worth_watching(tgid, fd) {
        return Ok(());
    }
    // A TLS call in progress on this thread: this syscall carried its ciphertext, and tells
    // which socket the TLS session uses.
    if let Some(args) = TLS_ARGS.get_ptr_mut(pid_tgid) {
        // SAFETY: map value pointer from a successful lookup, private to this thread.
        unsafe {
            if (*args).in_call != 0 && (*args).fd < 0 {
                (*args).fd = i64::from(fd);
            }
        }
    }
    let call = DataCall {
        tgid,
        tid,
        fd,
        direction,
        source: Source::Syscall,
        hook: hook as u8,
        tls_library: TlsLibrary::None as u8,
    };
    conn::on_data(&call, &payload, size as u64);
    Ok(())
}

/// Exit of connect(fd, addr, len): a connection made, or under way on a non-blocking socket.
pub fn exit_connect(ctx: &TracePointContext) -> Result<(), i64> {
    let result = ret(ctx)?;
    if result != 0 && result != -EINPROGRESS {
        return Ok(());
    }
    let Some((_, tgid, _)) = watched_process() else {
        return Ok(());
    };
    let [fd, addr, _, _] = saved_arguments();
    conn::track_new(tgid, fd as u32, ConnOrigin::Connect, read_sockaddr(addr), 0);
    Ok(())
}

/// Exit of accept/accept4(fd, addr, addrlen, ...): the new fd, and the peer's address the call
/// wrote into `addr`.
pub fn exit_accept(ctx: &TracePointContext) -> Result<(), i64> {
    let new_fd = ret(ctx)?;
    if new_fd < 0 {
        return Ok(());
    }
    let Some((_, tgid, _)) = watched_process() else {
        return Ok(());
    };
    let [listen_fd, addr, _, _] = saved_arguments();
    conn::track_new(
        tgid,
        new_fd as u32,
        ConnOrigin::Accept,
        read_sockaddr(addr),
        listen_fd as u32,
    );
    Ok(())
}

/// Read an AF_INET/AF_INET6 sockaddr; anything else (or a NULL pointer) gives the family only.
fn read_sockaddr(ptr: u64) -> SockAddr {
    let mut out = SockAddr::default();
    if ptr == 0 {
        return out;
    }
    // SAFETY: helper reads of user memory.
    let Ok(family) = (unsafe { bpf_probe_read_user(ptr as *const u16) }) else {
        return out;
    };
    out.family = family;
    let Ok(port) = (unsafe { bpf_probe_read_user((ptr + 2) as *const u16) }) else {
        return out;
    };
    out.port = u16::from_be(port);
    match family {
        // sockaddr_in: address at offset 4.
        AF_INET => {
            if let Ok(addr) = unsafe { bpf_probe_read_user((ptr + 4) as *const [u8; 4]) } {
                out.addr[..4].copy_from_slice(&addr);
            }
        }
        // sockaddr_in6: flowinfo at 4, address at 8.
        AF_INET6 => {
            if let Ok(addr) = unsafe { bpf_probe_read_user((ptr + 8) as *const [u8; 16]) } {
                out.addr = addr;
            }
        }
        _ => out.port = 0,
    }
    out
}

pub fn enter_close(ctx: &TracePointContext) -> Result<(), i64> {
    let Some((_, tgid, _)) = watched_process() else {
        return Ok(());
    };
    let fd = arg(ctx, 0)? as u32;
    conn::close(tgid, fd);
    Ok(())
}

/// Exit of sendfile(out_fd, in_fd, ...), which moves file bytes the kernel never shows us:
/// advancing the stream position keeps the agent's framing in step (it sees a gap of the right
/// size inside the body).
pub fn exit_sendfile(ctx: &TracePointContext) -> Result<(), i64> {
    let size = ret(ctx)?;
    if size <= 0 {
        return Ok(());
    }
    let Some((_, tgid, _)) = watched_process() else {
        return Ok(());
    };
    let [out_fd, _, _, _] = saved_arguments();
    conn::skip_bytes(tgid, out_fd as u32, Direction::Egress, size as u64);
    Ok(())
}
