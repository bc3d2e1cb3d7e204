//! The agent's allocator: mimalloc, through its plain entry points wherever they suffice.
//!
//! Every reported call allocates (header maps, body previews, process facts, its JSON line),
//! and glibc's malloc and free were a sixth of replay time; mimalloc's per-thread free lists cut
//! the agent's CPU per call by ~12 % for ~25 MiB more resident memory. The `mimalloc` crate's
//! allocator asks for every block by its alignment (`mi_malloc_aligned`), whose fast path needs
//! a free block at hand in the size's page: otherwise a size that is not a power of two goes to
//! a generic path that over-allocates it by its alignment (24 bytes at 8 took a 32-byte block)
//! through the slower general allocation. Every mimalloc block is aligned to a word, and most of
//! the agent's blocks need no more (bytes, strings, vectors of words): those take `mi_malloc`,
//! the rest the aligned calls.

use std::{
    alloc::{GlobalAlloc, Layout},
    ffi::c_void,
};

use libmimalloc_sys::{
    mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned, mi_zalloc,
    mi_zalloc_aligned,
};

/// The alignment every mimalloc block has: blocks come in whole words (mimalloc's own aligned
/// realloc takes its plain path up to this alignment).
const BLOCK_ALIGN: usize = size_of::<usize>();

/// mimalloc as the global allocator (see the module's documentation).
pub struct Allocator;

// SAFETY: each call passes the layout's size, and its alignment whenever a word does not cover
// it, to the mimalloc function for that operation, which returns null on failure as
// `GlobalAlloc` requires; `dealloc` and `realloc` get pointers these functions returned.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl.
        unsafe { by_alignment(layout, mi_malloc, mi_malloc_aligned) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl.
        unsafe { by_alignment(layout, mi_zalloc, mi_zalloc_aligned) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: see the impl.
        unsafe { mi_free(ptr.cast::<c_void>()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: see the impl.
        unsafe {
            if layout.align() <= BLOCK_ALIGN {
                mi_realloc(ptr.cast(), new_size).cast()
            } else {
                mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
            }
        }
    }
}

/// A new block for `layout` from `plain` (by size) when a word's alignment covers it, else from
/// `aligned` (by size and alignment).
///
/// # Safety
///
/// As [`GlobalAlloc::alloc`]: `layout` has a non-zero size.
#[inline(always)]
unsafe fn by_alignment(
    layout: Layout,
    plain: unsafe extern "C" fn(usize) -> *mut c_void,
    aligned: unsafe extern "C" fn(usize, usize) -> *mut c_void,
) -> *mut u8 {
    // SAFETY: both are mimalloc's allocation functions, given the layout's size and alignment.
    unsafe {
        if layout.align() <= BLOCK_ALIGN {
            plain(layout.size()).cast()
        } else {
            aligned(layout.size(), layout.align()).cast()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_have_the_alignment_asked_for_and_keep_their_bytes() {
        // Every size of the small bins (whose sizes are not all powers of two) at every
        // alignment up to a page, allocated, grown and shrunk while others are live, so that
        // pages fill and the allocator leaves its fast paths.
        let mut live = Vec::new();
        for align in (0..=12).map(|shift| 1usize << shift) {
            for size in (1..=520).step_by(7).chain([4096, 70_000]) {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: a non-zero size and a valid layout; each block is freed below with
                // the layout it has then.
                unsafe {
                    let zeroed = Allocator.alloc_zeroed(layout);
                    assert!(!zeroed.is_null());
                    assert_eq!(zeroed as usize % align, 0, "zeroed {size} at {align}");
                    assert!(std::slice::from_raw_parts(zeroed, size)
                        .iter()
                        .all(|&b| b == 0));
                    Allocator.dealloc(zeroed, layout);
                    let block = Allocator.alloc(layout);
                    assert!(!block.is_null());
                    assert_eq!(block as usize % align, 0, "{size} at {align}");
                    block.write_bytes(0xa5, size);
                    let grown = Allocator.realloc(block, layout, size * 3);
                    assert_eq!(grown as usize % align, 0, "grown {size} at {align}");
                    assert!(std::slice::from_raw_parts(grown, size)
                        .iter()
                        .all(|&b| b == 0xa5));
                    let shrunk = Allocator.realloc(grown, layout, size.div_ceil(2));
                    assert_eq!(shrunk as usize % align, 0, "shrunk {size} at {align}");
                    live.push((
                        shrunk,
                        Layout::from_size_align(size.div_ceil(2), align).unwrap(),
                    ));
                }
            }
        }
        for (block, layout) in live {
            // SAFETY: allocated above with this layout.
            unsafe { Allocator.dealloc(block, layout) };
        }
    }
}
