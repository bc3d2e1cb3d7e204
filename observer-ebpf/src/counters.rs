//! Per-CPU counters: every event attempted and every loss, by reason.

use observer_common::{Counter, EventKind};

use crate::maps::COUNTERS;

#[inline(always)]
fn add_slot(slot: u32, value: u64) {
    if let Some(counter) = COUNTERS.get_ptr_mut(slot) {
        // SAFETY: per-CPU slot, only this CPU writes it while the program runs.
        unsafe { *counter += value };
    }
}

#[inline(always)]
pub fn add(counter: Counter, value: u64) {
    add_slot(counter.slot(), value);
}

#[inline(always)]
pub fn event_attempted(kind: EventKind) {
    add_slot(Counter::EventsAttempted.slot() + kind.index() as u32, 1);
}

#[inline(always)]
pub fn ring_full(kind: EventKind) {
    add_slot(Counter::DropRingFull.slot() + kind.index() as u32, 1);
}
