//! Socket syscalls: arguments kept at entry, bytes and connections handled at exit.
//!
//! Syscall tracepoints lay out their arguments as 8-byte fields from offset 16, and the return
//! value at offset 16 of the exit event (see `/sys/kernel/tracing/events/syscalls/*/format`).

use aya_ebpf::{
    bindings::pt_regs,
    helpers::{
        bpf_get_current_pid_tgid, bpf_probe_read_kernel, bpf_probe_read_user,
        generated::{bpf_get_current_task_btf, bpf_task_pt_regs},
    },
    programs::TracePointContext,
};
use observer_common::{ConnOrigin, Counter, Direction, Hook, SockAddr, Source, TlsLibrary};

use crate::{
    conn::{self, DataCall},
    counters,
    inflight::{Payload, PayloadKind, SyscallArgs, CALL_ACCEPT, CALL_CONNECT, CALL_SENDFILE},
    maps::{agent_tgid, filter_by_pid, CONNS, FILTER_PIDS, SYSCALL_ARGS, TLS_ARGS},
};

const ARGS_OFFSET: usize = 16;
const RET_OFFSET: usize = 16;
/// connect() on a non-blocking socket returns this and completes later.
const EINPROGRESS: i64 = 115;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
/// Peeked bytes are read again by the next call: shipping them would count them twice (nginx
/// peeks one byte of every new connection to tell TLS from plaintext).
const MSG_PEEK: u64 = 2;

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

/// Entry of read/write/readv/writev/recvfrom/sendto/recvmsg/sendmsg.
pub fn enter_data(ctx: &TracePointContext, hook: Hook, kind: PayloadKind) -> Result<(), i64> {
    let Some((pid_tgid, tgid, _)) = watched_process() else {
        return Ok(());
    };
    // Only recvfrom has a fourth argument worth reading (its flags); the records of the others
    // end after their third.
    let flags = if hook == Hook::Recvfrom {
        arg(ctx, 3)?
    } else {
        0
    };
    let args = [arg(ctx, 0)?, arg(ctx, 1)?, arg(ctx, 2)?, flags];
    let Some((fd, payload)) = data_call(hook, kind, args)? else {
        return Ok(());
    };
    remember(pid_tgid, tgid, fd, hook as u8, payload)
}

/// The fd and the payload of a data syscall from its first four arguments; `None` for a peek,
/// whose bytes the next read takes again (nginx peeks one byte of every new connection).
fn data_call(hook: Hook, kind: PayloadKind, args: [u64; 4]) -> Result<Option<(u32, Payload)>, i64> {
    let fd = args[0] as u32;
    let payload = match hook {
        // recvmsg(fd, msg, flags), sendmsg(fd, msg, flags): the payload is the msghdr's iovecs.
        Hook::Recvmsg | Hook::Sendmsg => {
            if hook == Hook::Recvmsg && args[2] & MSG_PEEK != 0 {
                return Ok(None);
            }
            let msghdr = args[1];
            // struct user_msghdr: msg_iov at offset 16, msg_iovlen at 24.
            // SAFETY: helper reads of user memory.
            let iov =
                unsafe { bpf_probe_read_user((msghdr + 16) as *const u64) }.map_err(i64::from)?;
            let iovlen =
                unsafe { bpf_probe_read_user((msghdr + 24) as *const u64) }.map_err(i64::from)?;
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

#[inline(always)]
fn remember(pid_tgid: u64, tgid: u32, fd: u32, hook: u8, payload: Payload) -> Result<(), i64> {
    if !conn::worth_watching(tgid, fd) {
        return Ok(());
    }
    // A TLS call in progress on this thread: this syscall carries its ciphertext, and tells
    // which socket the TLS session uses.
    if let Some(tls) = TLS_ARGS.get_ptr_mut(pid_tgid) {
        // SAFETY: map value pointer from a successful lookup, private to this thread.
        unsafe {
            if (*tls).fd < 0 {
                (*tls).fd = fd as i64;
            }
        }
    }
    let args = SyscallArgs { payload, fd, hook };
    if SYSCALL_ARGS.insert(pid_tgid, args, 0).is_err() {
        counters::add(Counter::DropArgsTableFull, 1);
    }
    Ok(())
}

/// A call whose entry we did not see, because it began before the programs were attached: a
/// server thread blocked in read() on an idle keep-alive connection, whose next request would
/// otherwise be lost. Its arguments are still in the thread's saved user registers (x86-64
/// syscall ABI: rdi, rsi, rdx, r10). Calls skipped on purpose at entry (ignored fds, other
/// processes) are skipped here too, by the same checks.
fn args_of_a_call_begun_before_attach(
    hook: Hook,
    kind: PayloadKind,
) -> Result<Option<SyscallArgs>, i64> {
    let Some((_, tgid, _)) = watched_process() else {
        return Ok(None);
    };
    // SAFETY: the helpers return the current task and its saved user registers; the fields are
    // read through bpf_probe_read_kernel, which faults safely.
    let args = unsafe {
        let task = bpf_get_current_task_btf();
        let regs = bpf_task_pt_regs(task) as *const pt_regs;
        [
            bpf_probe_read_kernel(core::ptr::addr_of!((*regs).rdi)).map_err(i64::from)?,
            bpf_probe_read_kernel(core::ptr::addr_of!((*regs).rsi)).map_err(i64::from)?,
            bpf_probe_read_kernel(core::ptr::addr_of!((*regs).rdx)).map_err(i64::from)?,
            bpf_probe_read_kernel(core::ptr::addr_of!((*regs).r10)).map_err(i64::from)?,
        ]
    };
    let Some((fd, payload)) = data_call(hook, kind, args)? else {
        return Ok(None);
    };
    if !conn::worth_watching(tgid, fd) {
        return Ok(None);
    }
    Ok(Some(SyscallArgs {
        payload,
        fd,
        hook: hook as u8,
    }))
}

fn take_args(pid_tgid: u64) -> Option<SyscallArgs> {
    // SAFETY: value copied out before removal.
    let args = unsafe { *SYSCALL_ARGS.get_ptr(pid_tgid)? };
    let _ = SYSCALL_ARGS.remove(pid_tgid);
    Some(args)
}

/// Exit of every data syscall.
pub fn exit_data(
    ctx: &TracePointContext,
    hook: Hook,
    kind: PayloadKind,
    direction: Direction,
) -> Result<(), i64> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let args = match take_args(pid_tgid) {
        Some(args) => args,
        None => match args_of_a_call_begun_before_attach(hook, kind)? {
            Some(args) => args,
            None => return Ok(()),
        },
    };
    let size = ret(ctx)?;
    if size <= 0 {
        return Ok(());
    }
    let call = DataCall {
        tgid: (pid_tgid >> 32) as u32,
        tid: pid_tgid as u32,
        fd: args.fd,
        direction,
        source: Source::Syscall,
        hook: args.hook,
        tls_library: TlsLibrary::None as u8,
    };
    conn::on_data(&call, &args.payload, size as u64);
    Ok(())
}

/// Entry of connect/accept/accept4: keep the sockaddr pointers for the exit.
pub fn enter_sockaddr_call(ctx: &TracePointContext, call: u8) -> Result<(), i64> {
    let Some((pid_tgid, _, _)) = watched_process() else {
        return Ok(());
    };
    let fd = arg(ctx, 0)? as u32;
    // The sockaddr: read at exit, when accept has filled it in. Its family says how long it is.
    let addr = arg(ctx, 1)?;
    let payload = Payload {
        ptr: addr,
        len: 0,
        kind: PayloadKind::Buffer,
    };
    let args = SyscallArgs {
        payload,
        fd,
        hook: call,
    };
    if SYSCALL_ARGS.insert(pid_tgid, args, 0).is_err() {
        counters::add(Counter::DropArgsTableFull, 1);
    }
    Ok(())
}

pub fn exit_connect(ctx: &TracePointContext) -> Result<(), i64> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(args) = take_args(pid_tgid) else {
        return Ok(());
    };
    let result = ret(ctx)?;
    if args.hook != CALL_CONNECT || (result != 0 && result != -EINPROGRESS) {
        return Ok(());
    }
    let remote = read_sockaddr(args.payload.ptr);
    conn::track_new(
        (pid_tgid >> 32) as u32,
        args.fd,
        ConnOrigin::Connect,
        remote,
        0,
    );
    Ok(())
}

pub fn exit_accept(ctx: &TracePointContext) -> Result<(), i64> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(args) = take_args(pid_tgid) else {
        return Ok(());
    };
    let new_fd = ret(ctx)?;
    if args.hook != CALL_ACCEPT || new_fd < 0 {
        return Ok(());
    }
    let remote = read_sockaddr(args.payload.ptr);
    conn::track_new(
        (pid_tgid >> 32) as u32,
        new_fd as u32,
        ConnOrigin::Accept,
        remote,
        args.fd,
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

/// sendfile moves file bytes the kernel never shows us; advancing the stream position keeps
/// the agent's framing in step (it sees a gap of the right size inside the body).
pub fn enter_sendfile(ctx: &TracePointContext) -> Result<(), i64> {
    let Some((pid_tgid, tgid, _)) = watched_process() else {
        return Ok(());
    };
    let out_fd = arg(ctx, 0)? as u32;
    if CONNS
        .get_ptr(observer_common::conn_key(tgid, out_fd))
        .is_none()
    {
        return Ok(());
    }
    let payload = Payload {
        ptr: 0,
        len: 0,
        kind: PayloadKind::Buffer,
    };
    let args = SyscallArgs {
        payload,
        fd: out_fd,
        hook: CALL_SENDFILE,
    };
    if SYSCALL_ARGS.insert(pid_tgid, args, 0).is_err() {
        counters::add(Counter::DropArgsTableFull, 1);
    }
    Ok(())
}

pub fn exit_sendfile(ctx: &TracePointContext) -> Result<(), i64> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(args) = take_args(pid_tgid) else {
        return Ok(());
    };
    let size = ret(ctx)?;
    if args.hook != CALL_SENDFILE || size <= 0 {
        return Ok(());
    }
    conn::skip_bytes(
        (pid_tgid >> 32) as u32,
        args.fd,
        Direction::Egress,
        size as u64,
    );
    Ok(())
}
