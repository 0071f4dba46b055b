//! CPU time of the calling thread, for the run report's split of a run's work
//! between decoding and the detectors. Wall time on a shared machine counts other
//! tenants' work too, and a process's CPU time does not say which part took it.

use std::time::Duration;

/// CPU time the calling thread has used so far.
pub fn thread_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    let secs = u64::try_from(t.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(t.tv_nsec).unwrap_or(0).min(999_999_999);
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
