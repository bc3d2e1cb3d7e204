//! Go's crypto/tls: the plaintext of `(*tls.Conn).Write` and `(*tls.Conn).Read`.
//!
//! Go code follows its own register ABI (ABIInternal): the receiver in rax, a `[]byte` argument
//! as pointer, length and capacity in rbx, rcx and rdi; results in rax (n) then rbx and rcx (the
//! error interface); and the current goroutine's `g` in r14 at all times. Return probes are
//! never used on Go code: a uretprobe replaces the return address on the stack, and Go moves
//! goroutine stacks when they grow and reads return addresses to unwind them, which a replaced
//! one breaks. Instead the agent disassembles each function and puts a plain uprobe on every
//! `ret` instruction (observer-user/src/capture/go.rs). Between entry and return the goroutine
//! may move to another thread (it blocks in the netpoller, or is preempted), so the arguments
//! are kept by goroutine, not by thread.
//!
//! The connection is found through the fd behind the `net.Conn` the `tls.Conn` wraps, not
//! through the syscall underneath: a Read is often answered from bytes an earlier read already
//! buffered, and after a block in the netpoller the read syscall runs wherever the goroutine was
//! resumed. The path is `tls.Conn.conn` (an interface: type word, then data pointer) →
//! `*net.TCPConn` → its `*netFD` → `poll.FD.Sysfd`, at offsets unchanged since Go 1.9 (the agent
//! only attaches to Go 1.17 and later, the first with the register ABI). A `tls.Conn` over
//! something other than a TCP connection would give a wrong number, so the fd is only believed
//! if it is a socket this process was seen sending or receiving TLS records on.
//!
//! A Write is reported at its entry when the socket is already known to carry TLS: net/http
//! writes requests from one goroutine and reads responses from another, so the response can be
//! read (and reported) while the writing goroutine still waits to run its `ret`, and a request
//! reported at the return would then arrive after its own response. Go's Write sends the whole
//! buffer or fails, so the length is known at entry. A Write that runs the handshake itself (the
//! socket has no TLS records yet) is still reported at its return.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_user},
    programs::ProbeContext,
};
use observer_common::{
    limits::MAX_GO_FD, Counter, Direction, Hook, TlsLibrary, GO_CONN_DATA_OFFSET,
    GO_NETFD_SYSFD_OFFSET, GO_TCPCONN_FD_OFFSET,
};

use crate::{
    conn::{self, DataCall},
    counters,
    inflight::{GoTlsArgs, GoroutineKey, Payload},
    maps::GO_TLS_ARGS,
    syscalls::watched_process,
};

fn goroutine(ctx: &ProbeContext, tgid: u32) -> GoroutineKey {
    GoroutineKey {
        // SAFETY: the probe's context is the user registers at the probed instruction.
        goroutine: unsafe { (*ctx.regs).r14 },
        tgid,
        _pad: 0,
    }
}

/// Entry of `(*tls.Conn).Write(b []byte)` or `(*tls.Conn).Read(b []byte)`.
pub fn enter(ctx: &ProbeContext, hook: Hook) -> Result<(), i64> {
    let Some((_, tgid, _)) = watched_process() else {
        return Ok(());
    };
    // SAFETY: the probe's context is the user registers at the function's first instruction.
    let (conn, buf, len) = unsafe { ((*ctx.regs).rax, (*ctx.regs).rbx, (*ctx.regs).rcx) };
    if hook == Hook::GoTlsWrite {
        if let Some(fd) = fd_of(conn).filter(|&fd| conn::is_tls_socket(tgid, fd)) {
            emit(
                bpf_get_current_pid_tgid(),
                fd,
                buf,
                len as i64,
                hook as u8,
                Direction::Egress,
            );
            return Ok(());
        }
    }
    let args = GoTlsArgs {
        conn,
        buf,
        hook: hook as u8,
    };
    if GO_TLS_ARGS.insert(goroutine(ctx, tgid), args, 0).is_err() {
        counters::add(Counter::DropArgsTableFull, 1);
    }
    Ok(())
}

/// A `ret` of the function: rax holds n, the bytes written from or read into `b`.
pub fn exit(ctx: &ProbeContext, direction: Direction) -> Result<(), i64> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    let key = goroutine(ctx, tgid);
    // SAFETY: value copied out before removal.
    let Some(args) = GO_TLS_ARGS.get_ptr(key).map(|p| unsafe { *p }) else {
        return Ok(());
    };
    let _ = GO_TLS_ARGS.remove(key);
    // Arguments left by a call of the other function that never returned (the goroutine
    // panicked out of it) must not be taken for this one's.
    if (args.hook == Hook::GoTlsWrite as u8) != (direction == Direction::Egress) {
        return Ok(());
    }
    // SAFETY: the probe's context is the user registers at the return.
    let n = unsafe { (*ctx.regs).rax } as i64;
    match fd_of(args.conn).filter(|&fd| conn::is_tls_socket(tgid, fd)) {
        Some(fd) => emit(pid_tgid, fd, args.buf, n, args.hook, direction),
        None if n > 0 => counters::add(Counter::TlsCallsNotOnTlsSocket, 1),
        None => {}
    }
    Ok(())
}

/// Reports `n` plaintext bytes at `buf` on the TLS socket `fd`; nothing for an empty or failed call.
// Inlined: BPF calls take at most five arguments.
#[inline(always)]
fn emit(pid_tgid: u64, fd: u32, buf: u64, n: i64, hook: u8, direction: Direction) {
    if n <= 0 {
        return;
    }
    let call = DataCall::tls_plaintext(pid_tgid, fd, direction, hook, TlsLibrary::Go);
    conn::on_data(&call, &Payload::buffer(buf, n as u64), n as u64);
}

/// The fd behind a `*tls.Conn`, if the walk reads a plausible one.
fn fd_of(tls_conn: u64) -> Option<u32> {
    // SAFETY: helper reads of user memory, which fail safely on a bad address.
    unsafe {
        let tcp_conn: u64 =
            bpf_probe_read_user((tls_conn + GO_CONN_DATA_OFFSET) as *const u64).ok()?;
        let net_fd: u64 =
            bpf_probe_read_user((tcp_conn + GO_TCPCONN_FD_OFFSET) as *const u64).ok()?;
        let sysfd: i64 =
            bpf_probe_read_user((net_fd + GO_NETFD_SYSFD_OFFSET) as *const i64).ok()?;
        (0..MAX_GO_FD).contains(&sysfd).then_some(sysfd as u32)
    }
}
