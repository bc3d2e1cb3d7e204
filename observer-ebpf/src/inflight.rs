//! What a call moves, and state carried from a TLS call's entry to its exit. Private to the
//! kernel side.

/// How the payload of a call is laid out in user memory.
#[repr(u8)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    /// One buffer: `ptr`, `len` bytes.
    Buffer = 0,
    /// An iovec array: `ptr`, `len` entries.
    Vector = 1,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Payload {
    pub ptr: u64,
    pub len: u64,
    pub kind: PayloadKind,
}

impl Payload {
    /// One buffer of `len` bytes.
    pub fn buffer(ptr: u64, len: u64) -> Payload {
        Payload {
            ptr,
            len,
            kind: PayloadKind::Buffer,
        }
    }
}

/// A thread's TLS read or write: its arguments from the entry, kept for the return.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct TlsArgs {
    /// The library's session handle (`SSL *`, `gnutls_session_t`, NSPR's `PRFileDesc *`).
    pub ssl: u64,
    pub buf: u64,
    /// For the `_ex` variants: where the library writes the byte count.
    pub count_ptr: u64,
    /// The socket fd, once a syscall underneath revealed it; -1 until then.
    pub fd: i64,
    /// An `observer_common::Hook`.
    pub hook: u8,
    /// An `observer_common::TlsLibrary`: says how wide the return value is, and whether the fd
    /// must be checked to be a TLS socket.
    pub library: u8,
    /// Non-zero between the call's entry and its return. The entry stays in the map after the
    /// return, so that the thread's next call rewrites it in place: an insert and a delete
    /// per call each took the bucket's lock. It goes when the thread exits.
    pub in_call: u8,
}

/// A goroutine of one process: Go's `g` pointer (in r14 under Go's register ABI) is unique per
/// live goroutine within an address space, and stays the goroutine's own however often the
/// scheduler moves it between threads.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct GoroutineKey {
    pub goroutine: u64,
    pub tgid: u32,
    pub _pad: u32,
}

/// A Go `crypto/tls.(*Conn).Read` or `.Write` between entry and return.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct GoTlsArgs {
    /// The `*tls.Conn` receiver.
    pub conn: u64,
    /// The `[]byte` argument's data pointer.
    pub buf: u64,
    /// An `observer_common::Hook`.
    pub hook: u8,
}

/// A TLS session within one process (pointers are only unique per address space).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct TlsSessionKey {
    pub ssl: u64,
    pub tgid: u32,
    pub _pad: u32,
}
