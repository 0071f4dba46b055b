//! CPU time of the calling thread, for the run report's split of a run's work
//! between decoding and the detectors. Wall time on a shared machine counts other
//! tenants' work too, and a process's CPU time does not say which part took it.

use std::time::Duration;

/// CPU time the calling thread has used so far.
///
/// Through glibc where the build has it: rustix looks for the kernel's vDSO first,
/// which valgrind does not map (the scan crashed under callgrind, which the detector
/// benchmark uses), and a thread's CPU clock is a system call either way.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn thread_time() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable `timespec` for the call to fill.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) } != 0 {
        return Duration::ZERO;
    }
    duration(t.tv_sec, t.tv_nsec)
}

/// CPU time the calling thread has used so far.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn thread_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    duration(t.tv_sec, t.tv_nsec)
}

fn duration(secs: i64, nanos: i64) -> Duration {
    let secs = u64::try_from(secs).unwrap_or(0);
    let nanos = u32::try_from(nanos).unwrap_or(0).min(999_999_999);
    Duration::new(secs, nanos)
}

/// Runs `f`, adding the CPU time it took on this thread to `total`.
pub fn timed<T>(total: &mut Duration, f: impl FnOnce() -> T) -> T {
    let start = thread_time();
    let out = f();
    *total += thread_time().saturating_sub(start);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_this_threads_work_not_its_sleep() {
        let mut busy = Duration::ZERO;
        let sum = timed(&mut busy, || {
            // Work the optimiser cannot drop, for some milliseconds.
            let mut x = 0u64;
            for i in 0..20_000_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
            x
        });
        std::hint::black_box(sum);
        assert!(busy > Duration::ZERO, "{busy:?}");
        let mut idle = Duration::ZERO;
        timed(&mut idle, || std::thread::sleep(Duration::from_millis(50)));
        assert!(
            idle < Duration::from_millis(40),
            "sleeping took {idle:?} of CPU"
        );
    }
}
