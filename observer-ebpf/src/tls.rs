//! C TLS libraries: the plaintext of OpenSSL's SSL_read/SSL_write (and their _ex variants),
//! BoringSSL's, GnuTLS's gnutls_record_recv/send and NSPR's PR_Read/PR_Write/PR_Recv/PR_Send.
//!
//! They all take (session, buffer, count) and return the count moved, so one entry and one
//! return program per direction serve them; the entry notes which library it is. The connection
//! is found without struct offsets (they change with every release): the read or write syscall
//! the library makes underneath, on the same thread, names the socket, and `TLS_SESSIONS`
//! remembers it for calls answered from the library's buffer.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_user},
    programs::{ProbeContext, RetProbeContext},
};
use observer_common::{Counter, Direction, Hook, TlsLibrary};

use crate::{
    conn::{self, DataCall},
    counters,
    inflight::{Payload, TlsArgs, TlsSessionKey},
    maps::{TLS_ARGS, TLS_SESSIONS},
    syscalls::watched_process,
};

/// Entry of a (session, buf, num) function probed at its symbol, or of an _ex variant
/// (ssl, buf, num, size_t *n).
pub fn enter_at_symbol(ctx: &ProbeContext, hook: Hook, library: TlsLibrary) -> Result<(), i64> {
    let count_ptr: u64 = match hook {
        Hook::SslReadEx | Hook::SslWriteEx => ctx.arg(3).ok_or(0i64)?,
        _ => 0,
    };
    enter(ctx, hook, library, count_ptr)
}

/// Entry of OpenSSL's internal read or write function (ssl, buf, num, size_t *count), which every
/// wrapper of its direction calls with its own arguments: rcx points where it stores the count.
pub fn enter_internal(ctx: &ProbeContext, hook: Hook) -> Result<(), i64> {
    let count_ptr: u64 = ctx.arg(3).ok_or(0i64)?;
    enter(ctx, hook, TlsLibrary::OpenSsl, count_ptr)
}

fn enter(ctx: &ProbeContext, hook: Hook, library: TlsLibrary, count_ptr: u64) -> Result<(), i64> {
    let Some((pid_tgid, _, _)) = watched_process() else {
        return Ok(());
    };
    let ssl: u64 = ctx.arg(0).ok_or(0i64)?;
    let buf: u64 = ctx.arg(1).ok_or(0i64)?;
    let args = TlsArgs {
        ssl,
        buf,
        count_ptr,
        fd: -1,
        hook: hook as u8,
        library: library as u8,
        in_call: 1,
    };
    match TLS_ARGS.get_ptr_mut(pid_tgid) {
        // SAFETY: map value pointer from a successful lookup, private to this thread.
        Some(slot) => unsafe { *slot = args },
        None => {
            if TLS_ARGS.insert(pid_tgid, args, 0).is_err() {
                counters::add(Counter::DropArgsTableFull, 1);
            }
        }
    }
    Ok(())
}

/// A thread that made TLS calls keeps its entry between them (see `TlsArgs::in_call`): it goes
/// with the thread. Looked up first, since a delete takes a lock even when there is nothing to
/// delete, and most threads never make a TLS call.
pub fn thread_exited(pid_tgid: u64) {
    if TLS_ARGS.get_ptr(pid_tgid).is_some() {
        let _ = TLS_ARGS.remove(pid_tgid);
    }
}

/// The call's result: positive is a byte count (or, with a count pointer, success).
fn result(rax: u64, library: u8) -> i64 {
    if library == TlsLibrary::GnuTls as u8 {
        // gnutls_record_recv/send return ssize_t.
        rax as i64
    } else {
        // The others return a C int (PRInt32 for NSPR): only eax is meaningful (the upper half
        // of rax is garbage or zero, so -1 would otherwise read as 4294967295).
        i64::from(rax as u32 as i32)
    }
}

/// The hooked function returned: the bytes are in `buf` now (for reads), and the count is the
/// return value, or `*count_ptr` when there is one (the _ex variants and the internal functions
/// return 1 on success and store the count).
pub fn exit(ctx: &RetProbeContext, direction: Direction) -> Result<(), i64> {
    let rax = ctx.ret::<u64>();
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(slot) = TLS_ARGS.get_ptr_mut(pid_tgid) else {
        return Ok(());
    };
    // SAFETY: map value pointer from a successful lookup, private to this thread; the value is
    // copied out before the call is marked over.
    let args = unsafe {
        let args = *slot;
        (*slot).in_call = 0;
        args
    };
    if args.in_call == 0 {
        return Ok(());
    }

    let ret = result(rax, args.library);
    if ret <= 0 {
        return Ok(());
    }
    let size = if args.count_ptr != 0 {
        // SAFETY: helper read of user memory.
        unsafe { bpf_probe_read_user(args.count_ptr as *const u64) }.map_err(i64::from)?
    } else {
        ret as u64
    };
    if size == 0 {
        return Ok(());
    }

    let tgid = (pid_tgid >> 32) as u32;
    let session = TlsSessionKey {
        ssl: args.ssl,
        tgid,
        _pad: 0,
    };
    let fd = if args.fd >= 0 {
        let fd = args.fd as u32;
        // Most calls confirm what the map holds: an LRU insert takes a lock and relinks the
        // entry, a lookup only marks it used.
        // SAFETY: plain lookup, value copied.
        if unsafe { TLS_SESSIONS.get(session) }.copied() != Some(fd) {
            let _ = TLS_SESSIONS.insert(session, fd, 0);
        }
        fd
    } else {
        // SAFETY: plain lookup, value copied.
        match unsafe { TLS_SESSIONS.get(session) } {
            Some(fd) => *fd,
            None => {
                counters::add(Counter::TlsWithoutFd, 1);
                return Ok(());
            }
        }
    };
    // NSPR's functions serve files, pipes and plain sockets too: only a socket whose bytes on
    // the wire are TLS records carries plaintext worth shipping from here (a plain socket's
    // bytes are shipped by the syscall hooks already).
    if args.library == TlsLibrary::Nss as u8 && !conn::is_tls_socket(tgid, fd) {
        counters::add(Counter::TlsCallsNotOnTlsSocket, 1);
        return Ok(());
    }

    let Some(library) = TlsLibrary::from_u8(args.library) else {
        return Ok(());
    };
    let call = DataCall::tls_plaintext(pid_tgid, fd, direction, args.hook, library);
    conn::on_data(&call, &Payload::buffer(args.buf, size), size);
    Ok(())
}
