//! Live lookups that turn kernel events into [`Fact`]s: processes from /proc, socket addresses
//! from the sockets themselves.
//!
//! Used only by live capture (a replay reads the facts from its recording). Each lookup happens
//! once per process or connection, right when its first event arrives, because short-lived
//! processes and connections are soon gone.

use std::{
    collections::{HashMap, HashSet},
    fs,
    mem::{size_of, zeroed},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

use observer_common::ConnId;

use crate::{
    events::{Data, Echo, Event},
    facts::{Fact, ProcessInfo, SocketInfo},
    redact::WINDOW_CONTEXT_BYTES,
    sensitive::scan::cut_before_values,
};

/// Arguments kept from a command line: enough to tell processes apart, bounded because some
/// command lines are megabytes long.
pub const MAX_CMDLINE_ARGS: usize = 64;
pub const MAX_CMDLINE_ARG_BYTES: usize = 1024;

/// Remembers what was already looked up, so each process is read once (again after exec).
#[derive(Debug, Default)]
pub struct Enricher {
    known_processes: HashSet<u32>,
    /// Bound address of each listening socket seen accepting, by (tgid, fd): the local address
    /// of its connections when they are gone before the agent looks at them.
    listeners: HashMap<(u32, u32), Option<SocketAddr>>,
}

impl Enricher {
    /// Facts the pipeline needs before `event`, looked up now.
    pub fn facts_for(&mut self, event: &Event<'_>) -> Vec<Fact> {
        let mut facts = Vec::new();
        match event {
            Event::ConnOpen(open) => {
                if self.known_processes.insert(open.conn.tgid) {
                    facts.extend(read_process(open.conn.tgid).map(Fact::Process));
                }
                let mut socket = match (open.local, open.remote) {
                    // The kernel read both ends from the socket itself.
                    (Some(local), Some(remote)) => SocketInfo {
                        conn: open.conn,
                        is_socket: true,
                        local: Some(local),
                        remote: Some(remote),
                    },
                    _ => resolve_socket(open.conn, open.remote),
                };
                if let (None, Some(listen_fd)) = (socket.local, open.listen_fd) {
                    // Short connections are often closed before we look; the listener is not.
                    socket.local = *self
                        .listeners
                        .entry((open.conn.tgid, listen_fd))
                        .or_insert_with(|| listener_address(open.conn.tgid, listen_fd));
                }
                facts.push(Fact::Socket(socket));
            }
            Event::Data(Data { conn, .. })
            | Event::Echo(Echo {
                read: Data { conn, .. },
                ..
            }) => {
                // Data for a connection whose open event was lost: the process may be new.
                if self.known_processes.insert(conn.tgid) {
                    facts.extend(read_process(conn.tgid).map(Fact::Process));
                }
            }
            Event::ProcessExec(exec) => {
                // A new program image: what we knew of the pid is stale.
                self.known_processes.insert(exec.tgid);
                facts.extend(read_process(exec.tgid).map(Fact::Process));
            }
            Event::ProcessExit(exit) => {
                self.known_processes.remove(&exit.tgid);
                self.listeners.retain(|(tgid, _), _| *tgid != exit.tgid);
            }
            Event::ConnClose(_) => {}
        }
        facts
    }
}

/// Read what /proc says about `pid`; `None` if it is already gone.
pub fn read_process(pid: u32) -> Option<ProcessInfo> {
    let base = format!("/proc/{pid}");
    let comm = fs::read_to_string(format!("{base}/comm"))
        .ok()?
        .trim_end()
        .to_string();
    let exe = fs::read_link(format!("{base}/exe")).ok().map(|p| {
        p.to_string_lossy()
            .trim_end_matches(" (deleted)")
            .to_string()
    });
    let cmdline = fs::read(format!("{base}/cmdline"))
        .map(|raw| split_cmdline(&raw).into())
        .unwrap_or_default();
    let cgroup = fs::read_to_string(format!("{base}/cgroup")).unwrap_or_default();
    let (container_id, pod_uid) = container_of(&cgroup);
    Some(ProcessInfo {
        pid,
        comm,
        exe,
        cmdline,
        container_id,
        pod_uid,
    })
}

fn split_cmdline(raw: &[u8]) -> Vec<String> {
    raw.split(|&b| b == 0)
        .filter(|arg| !arg.is_empty())
        .take(MAX_CMDLINE_ARGS)
        .map(|arg| {
            // Read past the cut, so that a value it runs through is left out whole.
            let read = &arg[..arg.len().min(MAX_CMDLINE_ARG_BYTES + WINDOW_CONTEXT_BYTES)];
            cut_before_values(&String::from_utf8_lossy(read), MAX_CMDLINE_ARG_BYTES).to_string()
        })
        .collect()
}

/// The container id and pod UID in a /proc/<pid>/cgroup file, for the runtimes in use:
/// Docker (`docker-<id>.scope`, `/docker/<id>`), containerd (`cri-containerd-<id>.scope`),
/// CRI-O (`crio-<id>.scope`), Podman (`libpod-<id>.scope`), and Kubernetes pod slices
/// (`kubepods-...-pod<uid>.slice`, `/kubepods/.../pod<uid>/<id>`).
pub fn container_of(cgroup: &str) -> (Option<String>, Option<String>) {
    let mut container = None;
    let mut pod = None;
    for line in cgroup.lines() {
        let path = line.splitn(3, ':').nth(2).unwrap_or("");
        for segment in path.split('/') {
            if let Some(uid) = pod_uid_in(segment) {
                pod = Some(uid);
            }
            if let Some(id) = container_id_in(segment) {
                container = Some(id);
            }
        }
    }
    (container, pod)
}

fn container_id_in(segment: &str) -> Option<String> {
    let name = segment.strip_suffix(".scope").unwrap_or(segment);
    let id = name.rsplit(['-', ':']).next().unwrap_or(name);
    (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_ascii_lowercase())
}

fn pod_uid_in(segment: &str) -> Option<String> {
    let name = segment.strip_suffix(".slice").unwrap_or(segment);
    let start = name.rfind("pod")? + 3;
    let uid = name[start..].replace('_', "-");
    let looks_like_uid = uid.len() == 36 && uid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    looks_like_uid.then_some(uid)
}

/// Look at the socket behind `conn` through a duplicate of its fd (pidfd_getfd): whether it is
/// a socket at all, and its local and remote addresses. `kernel_remote` is what connect() or
/// accept() reported; if the socket's peer disagrees, the fd was already reused for another
/// socket, and its addresses are not used.
pub fn resolve_socket(conn: ConnId, kernel_remote: Option<SocketAddr>) -> SocketInfo {
    let unknown = SocketInfo {
        conn,
        is_socket: true,
        local: None,
        remote: kernel_remote,
    };
    let Some(fd) = duplicate_fd(conn.tgid, conn.fd) else {
        return unknown;
    };
    // SAFETY: fstat on an fd we own, into a zeroed struct.
    let mut stat: libc::stat = unsafe { zeroed() };
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut stat) } != 0 {
        return unknown;
    }
    if stat.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return SocketInfo {
            conn,
            is_socket: false,
            local: None,
            remote: None,
        };
    }
    let local = socket_name(&fd, libc::getsockname);
    let peer = socket_name(&fd, libc::getpeername);
    match (kernel_remote, peer) {
        (Some(expected), Some(actual)) if !same_endpoint(expected, actual) => unknown,
        _ => SocketInfo {
            conn,
            is_socket: true,
            local,
            remote: peer.or(kernel_remote),
        },
    }
}

/// The address a listening socket is bound to (its IP may be the wildcard).
fn listener_address(tgid: u32, fd: u32) -> Option<SocketAddr> {
    socket_name(&duplicate_fd(tgid, fd)?, libc::getsockname)
}

fn same_endpoint(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && canonical_ip(a.ip()) == canonical_ip(b.ip())
}

fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn duplicate_fd(pid: u32, fd: u32) -> Option<OwnedFd> {
    // SAFETY: raw syscalls with integer arguments; results checked before use.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::c_int, 0) };
    if pidfd < 0 {
        return None;
    }
    // SAFETY: a fresh fd returned by the kernel.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
    let dup = unsafe {
        libc::syscall(
            libc::SYS_pidfd_getfd,
            pidfd.as_raw_fd(),
            fd as libc::c_int,
            0,
        )
    };
    if dup < 0 {
        return None;
    }
    // SAFETY: a fresh fd returned by the kernel.
    Some(unsafe { OwnedFd::from_raw_fd(dup as i32) })
}

type SockNameFn =
    unsafe extern "C" fn(libc::c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> libc::c_int;

fn socket_name(fd: &OwnedFd, call: SockNameFn) -> Option<SocketAddr> {
    // SAFETY: the kernel writes at most `len` bytes into the zeroed storage.
    let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let rc = unsafe {
        call(
            fd.as_raw_fd(),
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return None;
    }
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let v4 =
                unsafe { *(&storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr));
            Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be(v4.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let v6 = unsafe {
                *(&storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            let ip = Ipv6Addr::from(v6.sin6_addr.s6_addr);
            Some(SocketAddr::new(
                canonical_ip(IpAddr::V6(ip)),
                u16::from_be(v6.sin6_port),
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, TcpStream};

    use super::*;

    #[test]
    fn container_ids_from_each_runtime() {
        let id = "4c0a7d9e2b1f3a5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e";
        for cgroup in [
            format!("0::/system.slice/docker-{id}.scope"),
            format!("12:cpu:/docker/{id}"),
            format!("0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1f2e3d4c_5b6a_7980_1a2b_3c4d5e6f7a8b.slice/cri-containerd-{id}.scope"),
            format!("0::/machine.slice/libpod-{id}.scope/container"),
            format!("0::/kubepods/burstable/pod1f2e3d4c-5b6a-7980-1a2b-3c4d5e6f7a8b/{id}"),
            format!("0::/system.slice/crio-{id}.scope"),
        ] {
            assert_eq!(container_of(&cgroup).0.as_deref(), Some(id), "{cgroup}");
        }
        let k8s = format!("0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1f2e3d4c_5b6a_7980_1a2b_3c4d5e6f7a8b.slice/cri-containerd-{id}.scope");
        assert_eq!(
            container_of(&k8s).1.as_deref(),
            Some("1f2e3d4c-5b6a-7980-1a2b-3c4d5e6f7a8b")
        );
    }

    #[test]
    fn host_processes_have_no_container() {
        assert_eq!(
            container_of("0::/user.slice/user-0.slice/session-1.scope"),
            (None, None)
        );
        assert_eq!(container_of("0::/init.scope\n"), (None, None));
        assert_eq!(container_of(""), (None, None));
    }

    #[test]
    fn command_lines_are_split_and_bounded() {
        assert_eq!(
            split_cmdline(b"curl\0-s\0http://x/\0"),
            ["curl", "-s", "http://x/"]
        );
        let long = vec![b'a'; 5000];
        assert_eq!(split_cmdline(&long)[0].len(), MAX_CMDLINE_ARG_BYTES);
        // A value the cut runs through is left out whole: alone, its start would be shown.
        let token = "ghp_Z8rT5vQ2wX9yB4nM7kL1pJ6hG3fD0sA2eC5u";
        let payload = format!("{{\"pad\":\"{}\",\"ref\":\"{token}\"}}", "p".repeat(990));
        let kept = &split_cmdline(payload.as_bytes())[0];
        assert!(kept.ends_with(r#","ref":""#), "{kept}");
        let cut_inside = payload.find(token).unwrap() + 8;
        assert!(cut_inside <= MAX_CMDLINE_ARG_BYTES && payload.len() > MAX_CMDLINE_ARG_BYTES);
        let many: Vec<u8> = (0..500).flat_map(|_| *b"x\0").collect();
        assert_eq!(split_cmdline(&many).len(), MAX_CMDLINE_ARGS);
    }

    #[test]
    fn this_process_can_be_read() {
        let info = read_process(std::process::id()).expect("own /proc entry");
        assert!(!info.comm.is_empty());
        assert!(info.exe.is_some());
        assert!(!info.cmdline.is_empty());
    }

    #[test]
    fn sockets_resolve_to_their_addresses_and_files_do_not() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let server = listener.local_addr().expect("addr");
        let client = TcpStream::connect(server).expect("connect");
        let conn = ConnId {
            tgid: std::process::id(),
            fd: client.as_raw_fd() as u32,
            generation: 1,
        };
        let info = resolve_socket(conn, Some(server));
        assert!(info.is_socket);
        assert_eq!(info.remote, Some(server));
        assert_eq!(info.local, client.local_addr().ok());

        // A reused fd: the kernel's remote disagrees with the socket's peer.
        let stale = resolve_socket(conn, Some("10.9.9.9:1".parse().expect("literal")));
        assert_eq!(stale.local, None);

        let file = fs::File::open("/proc/self/status").expect("open");
        let conn = ConnId {
            fd: file.as_raw_fd() as u32,
            ..conn
        };
        assert!(!resolve_socket(conn, None).is_socket);
    }
}
