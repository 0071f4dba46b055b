//! End-to-end scan cost on one core: `cargo bench -p flowlens-detectors --bench scan`.
//!
//! The same in-memory gzip text objects (the generator's traffic, v5 custom order: the
//! fields every detector reads) are decoded alone, then decoded and fed to all five
//! detectors (registry, the flow detectors' one-pass aggregations, flush). Prints
//! records/s (best of several runs, one thread: polars, which the WAF detector uses, is
//! limited to one thread too) and the peak heap used on top
//! of the input (a counting allocator wrapper: exact, independent of the allocator's
//! resident memory), for N records and for 4 × N records over the same hosts.
//!
//! A second scenario does the same with WAF logs (gzip JSON lines, the generator's
//! request shapes): N and 4 × N requests over one day from the same clients (a fixed
//! pool of browsers, crawlers, credential stuffers and scanners), so the scraping
//! detector's state per client and window is the same and only the records grow.
// Setting POLARS_MAX_THREADS before polars starts is `unsafe` in edition 2024.
#![allow(unsafe_code)]
//!
//! Environment: `FLOWLENS_BENCH_RECORDS` (flow records, default 2,000,000),
//! `FLOWLENS_BENCH_WAF_RECORDS` (WAF requests, default 250,000), `FLOWLENS_BENCH_RUNS`
//! (3). An argument (`flows` or `waf`) runs that scenario only.

use std::io::Write;
use std::time::Instant;

use flowlens_detectors::{Config, Registry};
use flowlens_engine::decode::ObjectContext;
use flowlens_engine::decode::object::{DecodeOptions, ObjectDecoder};
use flowlens_samples::bench::{Peak, PeakAlloc, env_usize};
use flowlens_samples::flow::V5_CUSTOM_FORMAT;

#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;

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

/// `n` WAF requests over one day (2025-06-02) from a fixed pool of clients, as gzip
/// JSON-lines objects of one 5-minute delivery window each (as AWS delivers them).
/// Whatever `n`, the clients and windows are the same: only the requests per client
/// grow. The mix follows the generator's baseline: browsers (150 IPv4 and 10 IPv6
/// addresses, each with any of three browser fingerprints), a verified crawler (20
/// addresses), credential stuffers (10, blocked) and scanners probing paths (20,
/// blocked). The pools are small enough that at the default N nearly every client
/// is seen in every window already (a larger pool would make 4 × N meet clients
/// that N did not, and measure more entities, not more records).
fn waf_objects(n: usize) -> Vec<Vec<u8>> {
    use flowlens_samples::waf::{Kind, request};
    use rand::{Rng, SeedableRng, rngs::SmallRng};
    const DAY_START: u64 = 1_748_858_400; // 2025-06-02T10:00:00Z
    const WINDOWS: usize = 288;
    let mut rng = SmallRng::seed_from_u64(7);
    let browsers: Vec<String> = (0..150)
        .map(|i| {
            format!(
                "{}.{}.{}.{}",
                [198, 203, 81, 92, 151][i % 5],
                51 + i % 7,
                i / 5,
                1 + i
            )
        })
        .chain((0..10).map(|i| format!("2001:db8:{:x}::{:x}", 0x100 + i, 1 + i)))
        .collect();
    let mut out = Vec::with_capacity(WINDOWS);
    for w in 0..WINDOWS {
        let per = n / WINDOWS + usize::from(w < n % WINDOWS);
        let start_ms = (DAY_START + w as u64 * 300) * 1000;
        let mut lines: Vec<(u64, String)> = (0..per)
            .map(|_| {
                let ts = start_ms + rng.random_range(0..300_000);
                let line = match rng.random_range(0..93) {
                    0..=79 => {
                        let ip = &browsers[rng.random_range(0..browsers.len())];
                        request(&mut rng, Kind::Browse, ip, ts)
                    }
                    80..=82 => {
                        let ip = format!("66.249.66.{}", rng.random_range(1..21));
                        request(&mut rng, Kind::Crawler, &ip, ts)
                    }
                    83..=88 => {
                        let ip = format!("185.220.101.{}", rng.random_range(1..11));
                        request(&mut rng, Kind::CredentialStuffing, &ip, ts)
                    }
                    _ => {
                        let ip = format!("45.155.205.{}", rng.random_range(1..21));
                        request(&mut rng, Kind::Probe, &ip, ts)
                    }
                };
                (ts, line)
            })
            .collect();
        lines.sort_by_key(|(ts, _)| *ts);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        for (_, l) in &lines {
            writeln!(gz, "{l}").unwrap();
        }
        out.push(gz.finish().unwrap());
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
    let peak = Peak::start();
    for _ in 0..runs {
        let mut registry = detect.then(|| Registry::new(Config::default()));
        let started = Instant::now();
        let (rows, f) = scan(objects, registry.as_mut());
        best = best.min(started.elapsed().as_secs_f64());
        assert_eq!(rows, n);
        findings = f;
    }
    let peak = peak.mib();
    (best, peak, findings)
}

/// Runs one scenario (N and 4 × N records) and prints its lines.
fn scenario(name: &str, n: usize, runs: usize, objects: impl Fn(usize) -> Vec<Vec<u8>>) {
    let mut peaks = Vec::new();
    for (label, records) in [("N", n), ("4N", 4 * n)] {
        let objs = objects(records);
        let mb: usize = objs.iter().map(Vec::len).sum();
        let (t_decode, m_decode, _) = measure(&objs, false, runs, records);
        let (t_scan, m_scan, findings) = measure(&objs, true, runs, records);
        println!(
            "{name} {label:>2} = {:>5}k records ({:.0} MB gz): decode {:.2} M/s (+{m_decode:.0} MiB) | scan {:.2} M/s (+{m_scan:.0} MiB, {findings} findings) | detectors {:.0} % of decode time",
            records / 1000,
            mb as f64 / 1e6,
            records as f64 / t_decode / 1e6,
            records as f64 / t_scan / 1e6,
            (t_scan - t_decode) / t_decode * 100.0
        );
        peaks.push(m_scan);
    }
    println!(
        "{name}: scan peak memory, 4N vs N over the same hosts: {:.2}x",
        peaks[1] / peaks[0].max(1e-9)
    );
}

fn main() {
    // As the flowlens binaries do (fewer page faults per batch).
    flowlens_engine::malloc::tune();
    // One core: polars' thread pool too (read once, when polars starts).
    // SAFETY: no other thread exists yet.
    unsafe { std::env::set_var("POLARS_MAX_THREADS", "1") };
    // `cargo bench` passes `--bench`; a filter argument selects a scenario.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let runs = env_usize("FLOWLENS_BENCH_RUNS", 3);
    println!("flowlens scan benchmark: one thread, best of {runs} runs");
    if wanted("flows") {
        println!("flows: v5 custom-order gz, 500k records/object");
        let n = env_usize("FLOWLENS_BENCH_RECORDS", 2_000_000);
        scenario("flows", n, runs, |records| objects(records, 500_000));
    }
    if wanted("waf") {
        println!("waf: gzip JSON lines, one object per 5-minute window of one day");
        let n = env_usize("FLOWLENS_BENCH_WAF_RECORDS", 250_000);
        scenario("waf", n, runs, waf_objects);
    }
}
