//! The benches' global allocator: the system's, counting live bytes,
//! calls and bytes asked for (relaxed atomics), so that a bench can say
//! what a structure holds and what a stream allocates.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// The system allocator, counting live bytes and calls.
pub struct Counting;

pub static ALLOCATED: AtomicI64 = AtomicI64::new(0);
pub static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
/// Bytes asked for by allocation calls (not net of frees).
pub static REQUESTED: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; it only
// adds relaxed counter updates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(l.size() as i64, Relaxed);
        REQUESTED.fetch_add(l.size() as u64, Relaxed);
        ALLOCATIONS.fetch_add(1, Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(l.size() as i64, Relaxed);
        REQUESTED.fetch_add(l.size() as u64, Relaxed);
        ALLOCATIONS.fetch_add(1, Relaxed);
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        ALLOCATED.fetch_sub(l.size() as i64, Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new as i64 - l.size() as i64, Relaxed);
        REQUESTED.fetch_add(new as u64, Relaxed);
        ALLOCATIONS.fetch_add(1, Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;
