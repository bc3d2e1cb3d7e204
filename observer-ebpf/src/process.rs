//! Process lifecycle: exec tells the agent to look for TLS libraries in a new program image;
//! exit lets it forget the process and close its connections (the kernel closes a dying
//! process's fds without close() calls we could see).

use aya_ebpf::helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid};
use observer_common::{EventKind, ProcessExecEvent, ProcessExitEvent};

use crate::{emit, maps::agent_tgid, tls};

pub fn on_exec() {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    if tgid == agent_tgid() {
        return;
    }
    let comm = bpf_get_current_comm().unwrap_or([0; 16]);
    emit::emit::<ProcessExecEvent>(EventKind::ProcessExec, |event| {
        event.header = emit::header(
            EventKind::ProcessExec,
            core::mem::size_of::<ProcessExecEvent>(),
        );
        event.tgid = tgid;
        event.comm = comm;
    });
}

pub fn on_exit() {
    let pid_tgid = bpf_get_current_pid_tgid();
    tls::thread_exited(pid_tgid);
    let tgid = (pid_tgid >> 32) as u32;
    // Threads exit one by one; the process is gone when its leader goes.
    if tgid != pid_tgid as u32 || tgid == agent_tgid() {
        return;
    }
    emit::emit::<ProcessExitEvent>(EventKind::ProcessExit, |event| {
        event.header = emit::header(
            EventKind::ProcessExit,
            core::mem::size_of::<ProcessExitEvent>(),
        );
        event.tgid = tgid;
    });
}
