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
    let (conn, buf) = unsafe { ((*ctx.regs).rax, (*ctx.regs).rbx) };
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
    // SAFETY: the probe's context is the user registers at the return.
    let n = unsafe { (*ctx.regs).rax } as i64;
    if n <= 0 {
        return Ok(());
    }
    let Some(fd) = fd_of(args.conn) else {
        counters::add(Counter::TlsCallsNotOnTlsSocket, 1);
        return Ok(());
    };
    if !conn::is_tls_socket(tgid, fd) {
        counters::add(Counter::TlsCallsNotOnTlsSocket, 1);
        return Ok(());
    }
    let call = DataCall::tls_plaintext(pid_tgid, fd, direction, args.hook, TlsLibrary::Go);
    conn::on_data(&call, &Payload::buffer(args.buf, n as u64), n as u64);
    Ok(())
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
