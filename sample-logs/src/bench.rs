//! What the hand-run benchmarks share (`cargo bench`: the engine's `decode`, the
//! detectors' `scan`): the peak heap of a stretch of work, and settings read from the
//! environment.
//!
//! The peak is counted by a wrapper of the system allocator ([`PeakAlloc`], installed
//! by a bench as its global allocator): exact, and independent of what the allocator
//! keeps resident.
// Implementing GlobalAlloc is unsafe by definition; the wrapper only counts.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting live bytes and their peak. A bench installs it:
/// `#[global_allocator] static ALLOC: PeakAlloc = PeakAlloc;`
pub struct PeakAlloc;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// Adds `n` live bytes and raises the peak to match.
fn grow(n: usize) {
    let live = LIVE.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                grow(new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

/// The peak of the heap from [`Peak::start`] on, above what was live then (0 unless
/// [`PeakAlloc`] is the global allocator).
#[derive(Debug, Clone, Copy)]
pub struct Peak {
    base: usize,
}

impl Peak {
    /// Starts counting the peak anew, from what is live now.
    pub fn start() -> Peak {
        let base = LIVE.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        Peak { base }
    }

    /// The highest the heap has been since [`Peak::start`], above what was live then,
    /// in MiB.
    pub fn mib(&self) -> f64 {
        PEAK.load(Ordering::Relaxed).saturating_sub(self.base) as f64 / (1 << 20) as f64
    }
}

/// The environment variable `name` as a number, else `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unset_or_unreadable_variable_is_the_default() {
        assert_eq!(env_usize("FLOWLENS_TEST_SURELY_UNSET_VARIABLE", 7), 7);
    }

    #[test]
    fn the_peak_is_the_most_live_through_the_wrapper_since_the_start() {
        // (Only this test allocates through the wrapper: the tests' global allocator
        // is the system's.)
        let mib = |n: usize| Layout::from_size_align(n << 20, 8).expect("layout");
        let before = unsafe { PeakAlloc.alloc(mib(2)) };
        let p = Peak::start();
        // SAFETY: each pointer is the live allocation of the layout given with it.
        unsafe {
            let a = PeakAlloc.alloc(mib(3));
            let a = PeakAlloc.realloc(a, mib(3), 4 << 20);
            let a = PeakAlloc.realloc(a, mib(4), 1 << 20);
            PeakAlloc.dealloc(a, mib(1));
            PeakAlloc.dealloc(before, mib(2));
        }
        assert_eq!(p.mib(), 4.0);
        assert_eq!(Peak::start().mib(), 0.0);
    }
}
