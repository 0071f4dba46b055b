//! Decode throughput on one core: `cargo bench -p flowlens-engine --bench decode`.
//!
//! Prints records/s (best of several runs, one thread; per second of the thread's CPU
//! time, which stays steady on a virtual machine whose neighbours steal cycles, and per
//! second of wall time) and the peak heap memory that
//! decoding used on top of the input (counted by a global allocator wrapper, so it is
//! exact and independent of what the allocator keeps resident). Input is built from the
//! sample generator's traffic and held in memory, so the figures are decoding only:
//! decompression, parsing, Arrow batches.
//!
//! Environment: `FLOWLENS_BENCH_RECORDS` (default 2,000,000), `FLOWLENS_BENCH_RUNS` (5).

use std::io::Write;
use std::time::Instant;

use flowlens_engine::decode::ObjectContext;
use flowlens_engine::decode::object::{DecodeOptions, ObjectDecoder};
use flowlens_samples::bench::{Peak, PeakAlloc, env_usize};
use flowlens_samples::flow::{PARQUET_FORMAT, V2_FORMAT, V5_CUSTOM_FORMAT};
use flowlens_samples::{Config, flow::FlowRecord};

#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;

fn records(n: usize) -> Vec<FlowRecord> {
    let mut out = Vec::with_capacity(n);
    let mut seed = 1;
    while out.len() < n {
        let cfg = Config {
            hours: 24,
            scale: 8.0,
            seed,
            ..Config::default()
        };
        out.extend(flowlens_samples::flow_records(&cfg));
        seed += 1;
    }
    out.truncate(n);
    out
}

fn gz_text(records: &[FlowRecord], format: &[&str], version: u8) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    gz.write_all(format.join(" ").as_bytes()).unwrap();
    gz.write_all(b"\n").unwrap();
    for r in records {
        gz.write_all(r.line(format, version).as_bytes()).unwrap();
        gz.write_all(b"\n").unwrap();
    }
    gz.finish().unwrap()
}

fn parquet(records: &[FlowRecord]) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("flowlens-bench-{}", std::process::id()));
    let path = dir.join("flows.log.parquet");
    flowlens_samples::write::parquet(&path, PARQUET_FORMAT, records).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    bytes
}

#[inline(never)] // a stable symbol for instruction-count profiling (callgrind --toggle-collect)
fn decode_all(objects: &[Vec<u8>]) -> usize {
    let mut rows = 0;
    for object in objects {
        // As the pipeline does: the listed size picks streaming or the fast path.
        let mut d = ObjectDecoder::new(
            ObjectContext::new("s3://bench/object"),
            DecodeOptions::default(),
        )
        .with_size_hint(object.len() as u64);
        for chunk in object.chunks(1 << 20) {
            d.push(chunk);
            while let Some((_, b)) = d.take_batch() {
                rows += b.num_rows();
            }
        }
        d.finish().expect("clean input");
        while let Some((_, b)) = d.take_batch() {
            rows += b.num_rows();
        }
        assert!(d.take_late_failure().is_none(), "clean input");
        assert_eq!(d.stats().malformed, 0);
    }
    rows
}

/// CPU time this thread has run, in seconds (`/proc/thread-self/schedstat`; the kernel
/// leaves out time a hypervisor stole), or `None` where that file does not exist.
fn thread_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 / 1e9)
}

/// Inflates every object with libdeflate and verifies its checksums, nothing else:
/// about the ceiling a gz scenario's decode can reach on one core (the decoder computes
/// the checksums over slices it has just parsed, which are still in the cache; here they
/// are read back after the whole object). Returns `records` (the bytes are not parsed).
#[inline(never)]
fn inflate_all(objects: &[Vec<u8>], records: usize) -> usize {
    let mut out = flowlens_engine::decode::inflate::buffer();
    for object in objects {
        let members =
            flowlens_engine::decode::inflate::gunzip_all(object, &mut out).expect("clean input");
        assert!(out.ends_with(b"\n"));
        flowlens_engine::decode::inflate::Checksums::new(members)
            .verify(&out, out.len())
            .expect("clean input");
    }
    flowlens_engine::decode::inflate::recycle(out);
    records
}

/// What a scenario runs over its objects: full decoding, or inflating only.
#[derive(Clone, Copy)]
enum Work {
    Decode,
    InflateOnly,
}

fn run(name: &str, objects: &[Vec<u8>], work: Work, expected: usize, runs: usize) {
    let (mut best_wall, mut best_cpu) = (f64::MAX, f64::MAX);
    let bytes: usize = objects.iter().map(Vec::len).sum();
    // Each scenario's peak includes the inflate buffers it needs itself.
    flowlens_engine::decode::inflate::release_spares();
    let peak = Peak::start();
    for _ in 0..runs {
        let cpu = thread_cpu_secs();
        let started = Instant::now();
        let rows = match work {
            Work::Decode => decode_all(objects),
            Work::InflateOnly => inflate_all(objects, expected),
        };
        let wall = started.elapsed().as_secs_f64();
        assert_eq!(rows, expected, "{name}");
        best_wall = best_wall.min(wall);
        if let (Some(before), Some(after)) = (cpu, thread_cpu_secs()) {
            best_cpu = best_cpu.min(after - before);
        }
    }
    let peak = peak.mib();
    // (The thread's CPU time advances in scheduler ticks: a run shorter than one can
    // read 0.)
    let cpu = if best_cpu > 0.0 && best_cpu < f64::MAX {
        format!("{:>6.2}", expected as f64 / best_cpu / 1e6)
    } else {
        "     -".to_string()
    };
    println!(
        "{name:<52} {cpu} M records/s per CPU second {:>6.2} M/s wall {:>7.1} MB/s in   peak heap +{peak:.0} MiB",
        expected as f64 / best_wall / 1e6,
        bytes as f64 / best_wall / 1e6
    );
}

/// Splits text records into objects of about `records_per_object` (each with a header).
fn split_objects(records: &[FlowRecord], format: &[&str], version: u8, per: usize) -> Vec<Vec<u8>> {
    records
        .chunks(per)
        .map(|c| gz_text(c, format, version))
        .collect()
}

fn plain_text(records: &[FlowRecord], format: &[&str], version: u8) -> Vec<u8> {
    let mut out = format.join(" ").into_bytes();
    out.push(b'\n');
    for r in records {
        out.extend_from_slice(r.line(format, version).as_bytes());
        out.push(b'\n');
    }
    out
}

fn main() {
    // As the flowlens binaries do (fewer page faults per batch).
    flowlens_engine::malloc::tune();
    // `cargo bench` passes `--bench`; a filter argument selects scenarios by substring.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let n = env_usize("FLOWLENS_BENCH_RECORDS", 2_000_000);
    let runs = env_usize("FLOWLENS_BENCH_RUNS", 5);
    let k = n / 1000;
    let wanted = |name: &str| filter.as_ref().is_none_or(|f| name.contains(f.as_str()));
    // Build every input first, then free the generator's records, so peak memory
    // reflects decoding.
    // (name, objects, whether to also time inflating the same objects alone)
    let mut scenarios: Vec<(String, Vec<Vec<u8>>, bool)> = Vec::new();
    {
        let recs = records(n);
        let mut add = |name: String, ceiling: bool, build: &dyn Fn() -> Vec<Vec<u8>>| {
            if wanted(&name) {
                scenarios.push((name, build(), ceiling));
            }
        };
        // AWS rolls objects every 5 minutes; 500k records is about 6 MB of gzip.
        add(
            format!("decode v2 default gz, {k}k records, 500k/object"),
            true,
            &|| split_objects(&recs, V2_FORMAT, 2, 500_000),
        );
        add(
            format!("decode v5 custom-order gz, {k}k records, 250k/object"),
            true,
            &|| split_objects(&recs, V5_CUSTOM_FORMAT, 5, 250_000),
        );
        add(
            format!("decode v2 default gz, {k}k records, one object"),
            false,
            &|| vec![gz_text(&recs, V2_FORMAT, 2)],
        );
        add(
            format!("decode v5 custom-order gz, {k}k records, one object"),
            false,
            &|| vec![gz_text(&recs, V5_CUSTOM_FORMAT, 5)],
        );
        add(
            format!("decode v2 default plain text, {k}k records"),
            false,
            &|| vec![plain_text(&recs, V2_FORMAT, 2)],
        );
        add(
            format!("decode v5 custom-order plain text, {k}k records"),
            false,
            &|| vec![plain_text(&recs, V5_CUSTOM_FORMAT, 5)],
        );
        add(
            format!("decode parquet (gzip pages), {k}k records"),
            false,
            &|| vec![parquet(&recs)],
        );
    }
    println!(
        "flowlens decode benchmark: one thread, best of {runs} runs (CPU time, which leaves out \
         time stolen by a hypervisor, and wall time)"
    );
    for (name, objects, ceiling) in &scenarios {
        run(name, objects, Work::Decode, n, runs);
        if *ceiling {
            run(
                "  the same objects, inflate only (libdeflate)",
                objects,
                Work::InflateOnly,
                n,
                runs,
            );
        }
    }
}
