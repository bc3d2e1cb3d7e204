//! Reading the ring buffer: wait for a wake-up or a short timeout, then read what is there, a
//! bounded batch at a time.

use std::{io, os::fd::AsRawFd, time::Duration};

use aya::maps::{Map, MapData, RingBuf};

use super::{map_error, CaptureError};

/// Events read per [`RingReader::poll`] at most. While traffic outpaces the agent, the ring
/// never empties; an unbounded read would then never return, and the loop around it would stop
/// writing calls, ticking timers and attaching probes to new processes. The ring's poll is
/// level-triggered, so the next call returns at once while events remain.
const MAX_EVENTS_PER_POLL: usize = 16_384;

/// Owns the ring buffer map and an epoll instance watching it.
pub struct RingReader {
    ring: RingBuf<MapData>,
    epoll: std::os::fd::OwnedFd,
}

impl RingReader {
    pub(super) fn new(map: Map) -> Result<RingReader, CaptureError> {
        let ring = RingBuf::try_from(map).map_err(map_error(observer_common::names::EVENTS))?;
        // SAFETY: plain syscall; the result is checked.
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epoll < 0 {
            return Err(CaptureError::Epoll(io::Error::last_os_error()));
        }
        // SAFETY: `epoll` is a fresh fd we own.
        let epoll = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(epoll) };
        let mut interest = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: 0,
        };
        // SAFETY: valid fds and event struct.
        let rc = unsafe {
            libc::epoll_ctl(
                epoll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                ring.as_raw_fd(),
                &mut interest,
            )
        };
        if rc != 0 {
            return Err(CaptureError::Epoll(io::Error::last_os_error()));
        }
        Ok(RingReader { ring, epoll })
    }

    /// Wait until the kernel wakes us or `timeout` passes, then hand the available events, at
    /// most [`MAX_EVENTS_PER_POLL`], to `on_event`. Returns how many events were read.
    ///
    /// Each event is a borrow of ring memory, released when `on_event` returns: keep the work
    /// per event short, or copy.
    pub fn poll(
        &mut self,
        timeout: Duration,
        mut on_event: impl FnMut(&[u8]),
    ) -> io::Result<usize> {
        let mut ready = libc::epoll_event { events: 0, u64: 0 };
        let millis = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: valid epoll fd and one-element output buffer.
        let rc = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), &mut ready, 1, millis) };
        if rc < 0 {
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
        let mut count = 0;
        while count < MAX_EVENTS_PER_POLL {
            let Some(item) = self.ring.next() else { break };
            on_event(&item);
            count += 1;
        }
        Ok(count)
    }

    /// Hand every event available now to `on_event`.
    pub fn drain(&mut self, on_event: &mut impl FnMut(&[u8])) -> usize {
        let mut count = 0;
        while let Some(item) = self.ring.next() {
            on_event(&item);
            count += 1;
        }
        count
    }
}
