//! observer's kernel side: thin programs on syscall tracepoints and TLS library uprobes (OpenSSL,
//! BoringSSL, GnuTLS, NSS, Go's crypto/tls) that ship the bytes of HTTP connections, bounded,
//! through one ring buffer.
//!
//! Each program is a one-line entry point over a `Result`-returning function in the module for
//! its area; errors only mean "nothing to report" (a failed read of the tracepoint record), and
//! every loss that matters is counted in `COUNTERS`.
#![no_std]
#![no_main]

mod conn;
mod counters;
mod emit;
mod go_tls;
mod inflight;
mod maps;
mod process;
mod socket;
mod syscalls;
mod tls;

use aya_ebpf::{
    macros::{tracepoint, uprobe, uretprobe},
    programs::{ProbeContext, RetProbeContext, TracePointContext},
};
use observer_common::{Direction, Hook, TlsLibrary};

use crate::inflight::PayloadKind;

/// Log a program's unexpected failure (a tracepoint record or user structure that could not be
/// read). These are rare by nature; losses that happen under load are counted instead, since a
/// log line per event would itself be a flood.
macro_rules! report {
    ($ctx:expr, $program:literal, $result:expr) => {
        if let Err(code) = $result {
            aya_log_ebpf::warn!($ctx, "{} failed: {}", $program, code);
        }
    };
}

/// The exit program of a data syscall: the only program it runs (see syscalls.rs).
macro_rules! data_syscall {
    ($exit:ident, $hook:expr, $kind:expr, $direction:expr) => {
        #[tracepoint]
        pub fn $exit(ctx: TracePointContext) -> u32 {
            report!(
                &ctx,
                "syscalls::exit_data",
                syscalls::exit_data(&ctx, $hook, $kind, $direction)
            );
            0
        }
    };
}

data_syscall!(
    syscall_exit_read,
    Hook::Read,
    PayloadKind::Buffer,
    Direction::Ingress
);
data_syscall!(
    syscall_exit_write,
    Hook::Write,
    PayloadKind::Buffer,
    Direction::Egress
);
data_syscall!(
    syscall_exit_readv,
    Hook::Readv,
    PayloadKind::Vector,
    Direction::Ingress
);
data_syscall!(
    syscall_exit_writev,
    Hook::Writev,
    PayloadKind::Vector,
    Direction::Egress
);
data_syscall!(
    syscall_exit_recvfrom,
    Hook::Recvfrom,
    PayloadKind::Buffer,
    Direction::Ingress
);
data_syscall!(
    syscall_exit_sendto,
    Hook::Sendto,
    PayloadKind::Buffer,
    Direction::Egress
);
data_syscall!(
    syscall_exit_recvmsg,
    Hook::Recvmsg,
    PayloadKind::Vector,
    Direction::Ingress
);
data_syscall!(
    syscall_exit_sendmsg,
    Hook::Sendmsg,
    PayloadKind::Vector,
    Direction::Egress
);

#[tracepoint]
pub fn syscall_exit_connect(ctx: TracePointContext) -> u32 {
    report!(&ctx, "syscalls::exit_connect", syscalls::exit_connect(&ctx));
    0
}

/// Attached to both accept and accept4: their first three arguments are the same.
#[tracepoint]
pub fn syscall_exit_accept(ctx: TracePointContext) -> u32 {
    report!(&ctx, "syscalls::exit_accept", syscalls::exit_accept(&ctx));
    0
}

#[tracepoint]
pub fn syscall_enter_close(ctx: TracePointContext) -> u32 {
    report!(&ctx, "syscalls::enter_close", syscalls::enter_close(&ctx));
    0
}

#[tracepoint]
pub fn syscall_exit_sendfile(ctx: TracePointContext) -> u32 {
    report!(
        &ctx,
        "syscalls::exit_sendfile",
        syscalls::exit_sendfile(&ctx)
    );
    0
}

#[tracepoint]
pub fn process_exec(_ctx: TracePointContext) -> u32 {
    process::on_exec();
    0
}

#[tracepoint]
pub fn process_exit(_ctx: TracePointContext) -> u32 {
    process::on_exit();
    0
}

/// Entry of a C TLS library's (session, buffer, count) function, probed at its symbol.
macro_rules! tls_enter_at_symbol {
    ($program:ident, $hook:expr, $library:expr) => {
        #[uprobe]
        pub fn $program(ctx: ProbeContext) -> u32 {
            report!(
                &ctx,
                "tls::enter_at_symbol",
                tls::enter_at_symbol(&ctx, $hook, $library)
            );
            0
        }
    };
}

tls_enter_at_symbol!(openssl_enter_ssl_read, Hook::SslRead, TlsLibrary::OpenSsl);
tls_enter_at_symbol!(openssl_enter_ssl_write, Hook::SslWrite, TlsLibrary::OpenSsl);
tls_enter_at_symbol!(
    openssl_enter_ssl_read_ex,
    Hook::SslReadEx,
    TlsLibrary::OpenSsl
);
tls_enter_at_symbol!(
    openssl_enter_ssl_write_ex,
    Hook::SslWriteEx,
    TlsLibrary::OpenSsl
);
tls_enter_at_symbol!(
    boringssl_enter_ssl_read,
    Hook::SslRead,
    TlsLibrary::BoringSsl
);
tls_enter_at_symbol!(
    boringssl_enter_ssl_write,
    Hook::SslWrite,
    TlsLibrary::BoringSsl
);
tls_enter_at_symbol!(
    gnutls_enter_record_recv,
    Hook::GnutlsRecordRecv,
    TlsLibrary::GnuTls
);
tls_enter_at_symbol!(
    gnutls_enter_record_send,
    Hook::GnutlsRecordSend,
    TlsLibrary::GnuTls
);
tls_enter_at_symbol!(nss_enter_pr_read, Hook::PrRead, TlsLibrary::Nss);
tls_enter_at_symbol!(nss_enter_pr_write, Hook::PrWrite, TlsLibrary::Nss);
tls_enter_at_symbol!(nss_enter_pr_recv, Hook::PrRecv, TlsLibrary::Nss);
tls_enter_at_symbol!(nss_enter_pr_send, Hook::PrSend, TlsLibrary::Nss);

/// Entry of the internal function every wrapper of one direction calls, placed there by the
/// agent only where it recognised the wrappers' code (observer-user/src/capture/placement.rs).
#[uprobe]
pub fn openssl_enter_internal_read(ctx: ProbeContext) -> u32 {
    report!(
        &ctx,
        "tls::enter_internal",
        tls::enter_internal(&ctx, Hook::SslReadInternal)
    );
    0
}

#[uprobe]
pub fn openssl_enter_internal_write(ctx: ProbeContext) -> u32 {
    report!(
        &ctx,
        "tls::enter_internal",
        tls::enter_internal(&ctx, Hook::SslWriteInternal)
    );
    0
}

/// Return of whichever C library function an entry probe above was on.
#[uretprobe]
pub fn tls_exit_read(ctx: RetProbeContext) -> u32 {
    report!(&ctx, "tls::exit", tls::exit(&ctx, Direction::Ingress));
    0
}

#[uretprobe]
pub fn tls_exit_write(ctx: RetProbeContext) -> u32 {
    report!(&ctx, "tls::exit", tls::exit(&ctx, Direction::Egress));
    0
}

/// Entry of Go's `(*tls.Conn).Read` and `.Write`.
#[uprobe]
pub fn go_tls_enter_read(ctx: ProbeContext) -> u32 {
    report!(&ctx, "go_tls::enter", go_tls::enter(&ctx, Hook::GoTlsRead));
    0
}

#[uprobe]
pub fn go_tls_enter_write(ctx: ProbeContext) -> u32 {
    report!(&ctx, "go_tls::enter", go_tls::enter(&ctx, Hook::GoTlsWrite));
    0
}

/// A `ret` instruction of Go's `(*tls.Conn).Read` or `.Write` (plain uprobes: see go_tls.rs
/// for why never uretprobes).
#[uprobe]
pub fn go_tls_exit_read(ctx: ProbeContext) -> u32 {
    report!(&ctx, "go_tls::exit", go_tls::exit(&ctx, Direction::Ingress));
    0
}

#[uprobe]
pub fn go_tls_exit_write(ctx: ProbeContext) -> u32 {
    report!(&ctx, "go_tls::exit", go_tls::exit(&ctx, Direction::Egress));
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
