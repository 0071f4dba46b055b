//! The process allocator's settings for a decoding run (glibc on Linux).
//!
//! Decoded batches are large, short-lived buffers (a 256 KiB view column, a megabyte
//! of text), allocated by the decoding tasks and freed by the detectors. glibc serves
//! allocations above its mmap threshold (128 KiB, raised only as big blocks are freed)
//! with fresh `mmap`s and gives freed heap tops back to the kernel above its trim
//! threshold: every batch then costs a page fault per 4 KiB it touches. Measured on the
//! 2-vCPU machine, `flowlens scan` with the detectors disabled spent about 14 % of its
//! CPU time on those faults (68,000 per 2.4 M records; ~19,000 after this).
//!
//! [`tune`] keeps such blocks in the heap and the heap's free memory in the process: a
//! batch job's resident memory stays at its high-water mark instead of shrinking
//! between batches. Other platforms and allocators are left as they are.

/// Allocations up to this size come from the heap, not from `mmap` (glibc's largest
/// accepted value on 64-bit: `HEAP_MAX_SIZE / 2`).
pub const MMAP_THRESHOLD: usize = 32 << 20;
/// Free memory at the heap's top kept rather than returned to the kernel.
pub const TRIM_THRESHOLD: usize = 256 << 20;

/// Applies [`MMAP_THRESHOLD`] and [`TRIM_THRESHOLD`] to glibc's malloc. Call it at the
/// start of `main`, before any thread starts. Returns whether both were accepted
/// (always false where the allocator is not glibc's).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn tune() -> bool {
    let (mmap, trim) = (
        libc::c_int::try_from(MMAP_THRESHOLD).unwrap_or(libc::c_int::MAX),
        libc::c_int::try_from(TRIM_THRESHOLD).unwrap_or(libc::c_int::MAX),
    );
    // SAFETY: `mallopt` only changes malloc's parameters, and is called before the
    // program starts other threads (see above); both values are in glibc's range.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, mmap) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, trim) == 1
    }
}

/// Applies [`MMAP_THRESHOLD`] and [`TRIM_THRESHOLD`] to glibc's malloc (a no-op here:
/// not glibc).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune() -> bool {
    false
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_accepts_the_settings() {
        assert!(super::tune());
    }
}
