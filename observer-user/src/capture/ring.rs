//! Reading the ring buffer: wait for a wake-up or a short timeout, then read what is there, a
//! bounded batch at a time; and how full it is, which the wait says nothing of.

use std::{
    io,
    os::fd::AsRawFd,
    ptr::NonNull,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use aya::maps::{Map, MapData, RingBuf};

use super::{map_error, CaptureError};

/// Events read per [`RingReader::read`] at most. While traffic outpaces the agent, the ring
/// never empties; an unbounded read would then never return, and the loop around it would stop
/// writing calls, ticking timers and attaching probes to new processes. The ring's poll is
/// level-triggered, so the next call returns at once while events remain.
const MAX_EVENTS_PER_POLL: usize = 16_384;

/// Owns the ring buffer map and an epoll instance watching it.
pub struct RingReader {
    ring: RingBuf<MapData>,
    epoll: std::os::fd::OwnedFd,
    /// `None` when the positions could not be mapped: the ring then reads as empty.
    positions: Option<RingPositions>,
}

impl RingReader {
    pub(super) fn new(map: Map) -> Result<RingReader, CaptureError> {
        let capacity = match &map {
            Map::RingBuf(data) => data.info().ok().map(|info| info.max_entries()),
            _ => None,
        };
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
        let positions = match capacity {
            Some(capacity) => RingPositions::map(ring.as_raw_fd(), capacity),
            None => Err(io::Error::other(
                "the kernel did not say the ring buffer's size",
            )),
        };
        // Every kernel that has ring buffers maps these pages to their reader; if one does
        // not, the agent still works, but cannot tell that it is falling behind.
        let positions = positions
            .inspect_err(|error| {
                tracing::warn!(
                    "cannot read how full the ring buffer is ({error}): while the agent falls \
                     behind it will not shed bodies to catch up, so more events may be lost \
                     (they are still counted); a larger --ring-buffer-size absorbs longer bursts"
                )
            })
            .ok();
        Ok(RingReader {
            ring,
            epoll,
            positions,
        })
    }

    /// How full the ring is, from 0 (empty) to 1: bytes the kernel has reserved that the agent
    /// has not read yet, over the ring's size.
    pub fn fill(&self) -> f64 {
        self.positions.as_ref().map_or(0.0, RingPositions::fill)
    }

    /// Wait until the kernel wakes us or `timeout` passes.
    pub fn wait(&self, timeout: Duration) -> io::Result<()> {
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
        Ok(())
    }

    /// Hand the available events, at most [`MAX_EVENTS_PER_POLL`], to `on_event`. Returns how
    /// many events were read.
    ///
    /// Each event is a borrow of ring memory, released when `on_event` returns: keep the work
    /// per event short, or copy.
    pub fn read(&mut self, mut on_event: impl FnMut(&[u8])) -> usize {
        let mut count = 0;
        while count < MAX_EVENTS_PER_POLL {
            let Some(item) = self.ring.next() else { break };
            on_event(&item);
            count += 1;
        }
        count
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

/// The ring's two positions, read where the kernel keeps them: the consumer's (written by aya
/// as it releases each event) in the ring's first page and the producer's in its second. aya
/// maps them privately; this is a second, read-only mapping of those two pages.
struct RingPositions {
    consumer: NonNull<libc::c_void>,
    producer: NonNull<libc::c_void>,
    page_bytes: usize,
    capacity: u32,
}

impl RingPositions {
    fn map(fd: std::os::fd::RawFd, capacity: u32) -> io::Result<RingPositions> {
        // SAFETY: plain sysconf query.
        let page_bytes = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
            .map_err(|_| io::Error::other("no page size"))?;
        let map_page = |index: usize| -> io::Result<NonNull<libc::c_void>> {
            let offset = libc::off_t::try_from(index * page_bytes)
                .map_err(|_| io::Error::other("page offset out of range"))?;
            // SAFETY: a fresh read-only shared mapping of one page of the ring map's fd; the
            // kernel allows read-only mappings of any of its pages.
            let address = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    page_bytes,
                    libc::PROT_READ,
                    libc::MAP_SHARED,
                    fd,
                    offset,
                )
            };
            if address == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            NonNull::new(address).ok_or_else(|| io::Error::other("mmap returned null"))
        };
        let consumer = map_page(0)?;
        let producer = match map_page(1) {
            Ok(producer) => producer,
            Err(error) => {
                // SAFETY: unmapping the page just mapped, which nothing else refers to.
                unsafe { libc::munmap(consumer.as_ptr(), page_bytes) };
                return Err(error);
            }
        };
        Ok(RingPositions {
            consumer,
            producer,
            page_bytes,
            capacity,
        })
    }

    fn fill(&self) -> f64 {
        // SAFETY: each page starts with its position, a u64 the kernel (or aya) updates with
        // atomic stores; the pages stay mapped while `self` lives.
        let (consumer, producer) = unsafe {
            (
                (*self.consumer.as_ptr().cast::<AtomicU64>()).load(Ordering::Acquire),
                (*self.producer.as_ptr().cast::<AtomicU64>()).load(Ordering::Acquire),
            )
        };
        ring_fill(consumer, producer, self.capacity)
    }
}

impl Drop for RingPositions {
    fn drop(&mut self) {
        // SAFETY: both pages were mapped by `map` with this length and are used by no one else.
        unsafe {
            libc::munmap(self.consumer.as_ptr(), self.page_bytes);
            libc::munmap(self.producer.as_ptr(), self.page_bytes);
        }
    }
}

/// The share of a ring of `capacity` bytes between the two positions, at most 1 (a position
/// read a moment before the other may be older).
fn ring_fill(consumer: u64, producer: u64, capacity: u32) -> f64 {
    if capacity == 0 {
        return 0.0;
    }
    (producer.saturating_sub(consumer) as f64 / f64::from(capacity)).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fill_is_the_unread_share_of_the_ring() {
        assert_eq!(ring_fill(0, 0, 1 << 20), 0.0);
        assert_eq!(ring_fill(1 << 30, (1 << 30) + (1 << 19), 1 << 20), 0.5);
        // The consumer read after the producer moved on and caught up with it.
        assert_eq!(ring_fill(2_000, 1_000, 1 << 20), 0.0);
        assert_eq!(ring_fill(0, 3 << 20, 1 << 20), 1.0);
        assert_eq!(ring_fill(0, 10, 0), 0.0);
    }
}
