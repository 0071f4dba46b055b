//! End-to-end scan cost on one core: `cargo bench -p flowlens-detectors --bench scan`.
//!
//! The same in-memory gzip text objects (the generator's traffic, v5 custom order: the
//! fields every detector reads) are decoded alone, then decoded and fed to all five
//! detectors (registry, the flow detectors' one-pass aggregations, flush). Prints
//! records/s (best of several runs, one thread: polars, which the WAF detector uses, is
//! limited to one thread too) and the peak heap used on top
//! of the input (a counting allocator wrapper: exact, independent of the allocator's
//! resident memory), for N records and for 4 × N records over the same hosts.
// Implementing GlobalAlloc is unsafe by definition; the wrapper only counts. Setting
// POLARS_MAX_THREADS before polars starts is `unsafe` in edition 2024.
#![allow(unsafe_code)]
//!
//! Environment: `FLOWLENS_BENCH_RECORDS` (default 2,000,000), `FLOWLENS_BENCH_RUNS` (3).

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use flowlens_detectors::{Config, Registry};
use flowlens_engine::decode::ObjectContext;
use flowlens_engine::decode::object::{DecodeOptions, ObjectDecoder};
use flowlens_model::LogKind;
use flowlens_samples::flow::V5_CUSTOM_FORMAT;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
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
                let live = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed)
                    + (new_size - layout.size());
                PEAK.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `n` records of the generator's day (same topology, more conversations with each
/// seed) as gzip v5 text objects of at most `per` records; records are generated one
/// seed at a time and dropped once encoded.
fn objects(n: usize, per: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut pending = Vec::new();
    let mut made = 0;
    let mut seed = 1;
    let flush = |recs: &[flowlens_samples::flow::FlowRecord]| {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        writeln!(gz, "{}", V5_CUSTOM_FORMAT.join(" ")).unwrap();
        for r in recs {
            writeln!(gz, "{}", r.line(V5_CUSTOM_FORMAT, 5)).unwrap();
        }
        gz.finish().unwrap()
    };
    while made < n {
        let cfg = flowlens_samples::Config {
            hours: 24,
            scale: 8.0,
            seed,
            ..Default::default()
        };
        seed += 1;
        for r in flowlens_samples::flow_records(&cfg) {
            if made == n {
                break;
            }
            pending.push(r);
            made += 1;
            if pending.len() == per {
                out.push(flush(&pending));
                pending.clear();
            }
        }
    }
    if !pending.is_empty() {
        out.push(flush(&pending));
    }
    out
}

#[inline(never)]
fn scan(objects: &[Vec<u8>], mut registry: Option<&mut Registry>) -> (usize, usize) {
    let mut rows = 0;
    for object in objects {
        let mut d = ObjectDecoder::new(
            ObjectContext::new("s3://bench/object"),
            DecodeOptions::default(),
        )
        .with_size_hint(object.len() as u64);
        let mut take = |d: &mut ObjectDecoder, rows: &mut usize| {
            while let Some((kind, b)) = d.take_batch() {
                *rows += b.num_rows();
                if let Some(r) = registry.as_deref_mut() {
                    r.observe(kind, &b).expect("canonical batch");
                }
            }
        };
        for chunk in object.chunks(1 << 20) {
            d.push(chunk);
            take(&mut d, &mut rows);
        }
        d.finish().expect("clean input");
        take(&mut d, &mut rows);
        assert!(d.take_late_failure().is_none(), "clean input");
    }
    let findings = registry.map_or(0, |r| r.flush(i64::MAX).expect("flush").len());
    (rows, findings)
}

/// Best time of `runs` and the peak heap above the input, in MiB.
fn measure(objects: &[Vec<u8>], detect: bool, runs: usize, n: usize) -> (f64, f64, usize) {
    let mut best = f64::MAX;
    let mut findings = 0;
    // The inflate buffer kept from the previous measurement would hide this one's.
    flowlens_engine::decode::inflate::release_spares();
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    for _ in 0..runs {
        let mut registry = detect.then(|| Registry::new(Config::default()));
        let started = Instant::now();
        let (rows, f) = scan(objects, registry.as_mut());
        best = best.min(started.elapsed().as_secs_f64());
        assert_eq!(rows, n);
        findings = f;
    }
    let peak = (PEAK.load(Ordering::Relaxed) - base) as f64 / (1 << 20) as f64;
    (best, peak, findings)
}

fn main() {
    // As the flowlens binaries do (fewer page faults per batch).
    flowlens_engine::malloc::tune();
    // One core: polars' thread pool too (read once, when polars starts).
    // SAFETY: no other thread exists yet.
    unsafe { std::env::set_var("POLARS_MAX_THREADS", "1") };
    let n = env("FLOWLENS_BENCH_RECORDS", 2_000_000);
    let runs = env("FLOWLENS_BENCH_RUNS", 3);
    let _ = LogKind::Flows;
    println!(
        "flowlens scan benchmark: one thread, best of {runs} runs, v5 custom-order gz, 500k records/object"
    );
    let mut rows = Vec::new();
    for (label, records) in [("N", n), ("4N", 4 * n)] {
        let objs = objects(records, 500_000);
        let mb: usize = objs.iter().map(Vec::len).sum();
        let (t_decode, m_decode, _) = measure(&objs, false, runs, records);
        let (t_scan, m_scan, findings) = measure(&objs, true, runs, records);
        println!(
            "{label:>2} = {:>5}k records ({:.0} MB gz): decode {:.2} M/s (+{m_decode:.0} MiB) | scan {:.2} M/s (+{m_scan:.0} MiB, {findings} findings) | detectors {:.0} % of decode time",
            records / 1000,
            mb as f64 / 1e6,
            records as f64 / t_decode / 1e6,
            records as f64 / t_scan / 1e6,
            (t_scan - t_decode) / t_decode * 100.0
        );
        rows.push(m_scan);
    }
    println!(
        "scan peak memory, 4N vs N over the same hosts: {:.2}x",
        rows[1] / rows[0].max(1e-9)
    );
}
