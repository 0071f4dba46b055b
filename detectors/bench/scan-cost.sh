#!/usr/bin/env bash
# Detector cost through the real CLI (run by hand, never in CI): generates a few million
# flow records (default-format v2 gz objects, as AWS delivers them), then runs the release
# `flowlens scan` over them on one core — with every detector disabled (decode only)
# and with the defaults (all five) — and prints the CPU time (user + system) of each,
# best of FLOWLENS_BENCH_RUNS (5), records/s and the detectors' share of decode time.
# CPU time rather than wall time: the pipeline decodes on one task and detects on
# another, so wall time would hide the work on a 2-core machine. CPU time is read
# from the kernel's per-child accounting in microseconds (`/usr/bin/time` rounds to
# 10 ms, a tenth of the detectors' time on two hours of traffic), and the runs
# alternate between the two configurations, so a slow spell of a shared machine
# does not land on one of them only.
# Environment: FLOWLENS_BENCH_SCALE (traffic multiplier, default 300), FLOWLENS_BENCH_HOURS
# (6: 3.7 M default-format records, 2.5 M v5 ones), FLOWLENS_BENCH_DIR,
# FLOWLENS_BENCH_RUNS; FLOWLENS_BENCH_SET: all (default: the
# generator's three flow logs), v2 (default-format gz text), v5 (custom-order gz text) or
# parquet; FLOWLENS_BENCH_PIN=1 runs every scan on one CPU (taskset -c 0), so decoding
# and detecting share one core's caches and time as on a one-vCPU Lambda.
# FLOWLENS_BENCH_STAGES: `--stages` of every scan (auto, the default, is inline when
# pinned: each batch detected on the task that decoded it; see the README's `scan`).
# FLOWLENS_BENCH_PERF=1 then also records FLOWLENS_BENCH_RUNS scans with the defaults under
# `perf record` (Debian's linux-perf) and prints, for each, the detecting thread's samples
# against the decoding threads' (the job's sink runs on the main thread, named after the
# binary; decoding on tokio's workers): a split within one run, which a slow spell of a
# shared machine affects alike, but which leaves out what detection costs the decoder in
# its caches (so it reads lower than the CPU-time share).
# FLOWLENS_BENCH_CALLGRIND=1 then also runs one scan of each configuration under
# valgrind's callgrind and prints the instructions each executed: a count that does not
# move with the machine's load (CPU time here varies by ±5 % from run to run, as much as
# most single changes save), but that leaves out the processor's stalls — so it ranks
# changes to one loop, while only time tells whether a change pays.
set -euo pipefail
cd "$(dirname "$0")/../.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/flowlens-target}"
SCALE="${FLOWLENS_BENCH_SCALE:-300}"
HOURS="${FLOWLENS_BENCH_HOURS:-6}"
RUNS="${FLOWLENS_BENCH_RUNS:-5}"
WORK="${FLOWLENS_BENCH_DIR:-${TMPDIR:-/tmp}/flowlens-sql-bench}"

cargo build --release --locked --bin flowlens
BIN="$CARGO_TARGET_DIR/release/flowlens"
logs="$WORK/logs-$SCALE-$HOURS"
if [ ! -d "$logs" ]; then
  "$BIN" generate --out "$logs" --hours "$HOURS" --scale "$SCALE" --seed 1
fi
# The flow logs only (the WAF objects have a benchmark of their own in the decoder's).
# The generator writes the v2 log in the default key layout, the v5 and parquet ones in
# the hive-style layout.
case "${FLOWLENS_BENCH_SET:-all}" in
  all) flows=$(find "$logs" -type d -name vpcflowlogs -o -type d -name 'aws-service=vpcflowlogs' | sort) ;;
  v2) flows=$(find "$logs" -path '*/vpcflowlogs/*' -name '*.log.gz' | sort) ;;
  v5) flows=$(find "$logs" -path '*/aws-service=vpcflowlogs/*' -name '*.log.gz' | sort) ;;
  parquet) flows=$(find "$logs" -path '*vpcflowlogs*' -name '*.parquet' | sort) ;;
  *) echo "FLOWLENS_BENCH_SET: all, v2, v5 or parquet" >&2; exit 2 ;;
esac
none="$WORK/no-detectors.toml"
for d in exfiltration_spike lateral_movement cross_az_cost scraping_bot public_exposure; do
  printf '[%s]\nenabled = false\n' "$d"
done >"$none"

defaults="$WORK/default-detectors.toml"
: >"$defaults" # an empty configuration: every detector with its defaults
# Best user + system CPU seconds of each configuration over $RUNS alternating runs.
# shellcheck disable=SC2086
STAGES="${FLOWLENS_BENCH_STAGES:-auto}"
times=$(python3 - "$RUNS" "$none" "$defaults" "$WORK/scan-report.json" "$BIN" "${FLOWLENS_BENCH_PIN:-0}" "$STAGES" $flows <<'PY'
import os, sys
runs, none, defaults, report, binary, pinned, stages = sys.argv[1:8]
files = sys.argv[8:]
pin = ["taskset", "-c", "0"] if pinned == "1" else []
best = {none: float("inf"), defaults: float("inf")}
splits = []
for _ in range(int(runs)):
    for config in (none, defaults):
        cmd = pin + ["env", "POLARS_MAX_THREADS=1", binary, "scan", *files, "--concurrency", "1", "--stages", stages,
                     "--quiet", "--config", config, "--report", report]
        pid = os.fork()
        if pid == 0:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.execvp(cmd[0], cmd)
        _, status, usage = os.wait4(pid, 0)
        if status != 0:
            sys.exit(f"scan failed ({status}) with {config}")
        best[config] = min(best[config], usage.ru_utime + usage.ru_stime)
        if config == defaults:
            # The run's own split: the detectors' CPU against decoding's, both
            # measured on their threads in this run (the report's CPU figures).
            import json
            r = json.load(open(report))
            parts = r["detector_cpu_secs"]
            splits.append((sum(parts.values()) / r["decode_cpu_secs"], parts))
splits.sort(key=lambda s: s[0])
mid = splits[len(splits) // 2]
with open(report + ".split", "w") as f:
    f.write(f"in-run split (the report's CPU: detectors / decoding), {len(splits)} scans: "
            + " ".join(f"{s * 100:.1f}" for s, _ in splits) + " %; the median run by part: "
            + ", ".join(f"{k} {v:.3f} s" for k, v in sorted(mid[1].items(), key=lambda kv: -kv[1]))
            + "\n")
print(best[none], best[defaults])
PY
)
read -r decode scan <<<"$times"
records=$(python3 -c "import json; print(json.load(open('$WORK/scan-report.json'))['flow_records'])")
python3 - "$records" "$decode" "$scan" <<'PY'
import sys
n, decode, scan = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
print(f"{n} flow records, one core (POLARS_MAX_THREADS=1, --concurrency 1), CPU seconds, best of the runs")
print(f"decode only (all detectors disabled): {decode:.3f} s = {n / decode / 1e6:.2f} M records/s")
print(f"scan (decode + 5 detectors):          {scan:.3f} s = {n / scan / 1e6:.2f} M records/s")
print(f"detectors: {scan - decode:.3f} s = {(scan - decode) / decode * 100:.0f} % of decode time (target < 33 %)")
PY
cat "$WORK/scan-report.json.split"

if [ "${FLOWLENS_BENCH_PERF:-0}" = "1" ]; then
  pin=()
  [ "${FLOWLENS_BENCH_PIN:-0}" = "1" ] && pin=(taskset -c 0)
  data="$WORK/scan-perf.data"
  shares=()
  for _ in $(seq 1 "$RUNS"); do
    # Threads: the split is by thread, so decoding and detecting must run on different ones.
    # shellcheck disable=SC2086
    perf record -q -F 4000 -o "$data" -- "${pin[@]}" env POLARS_MAX_THREADS=1 "$BIN" scan $flows \
      --concurrency 1 --stages threads --quiet --config "$defaults" --report "$WORK/scan-report.json" >/dev/null 2>&1
    shares+=("$(perf report -i "$data" --sort comm --stdio 2>/dev/null | python3 -c '
import sys
detect = decode = 0.0
for line in sys.stdin:
    parts = line.split()
    if len(parts) == 2 and parts[0].endswith("%"):
        share = float(parts[0].rstrip("%"))
        if parts[1] == "flowlens":
            detect += share
        elif parts[1].startswith("tokio"):
            decode += share
print(f"{detect / decode * 100:.1f}" if decode else "n/a")
')")
  done
  rm -f "$data"
  echo "perf samples, detecting thread / decoding threads, $RUNS scans: ${shares[*]} %"
fi

if [ "${FLOWLENS_BENCH_CALLGRIND:-0}" = "1" ]; then
  command -v valgrind >/dev/null || { echo "FLOWLENS_BENCH_CALLGRIND=1 needs valgrind (Debian: valgrind)" >&2; exit 2; }
  counts=()
  for config in "$none" "$defaults"; do
    # shellcheck disable=SC2086
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN" scan $flows --concurrency 1 \
      --quiet --config "$config" --report "$WORK/scan-report.json" >/dev/null 2>"$WORK/callgrind.log"
    counts+=("$(sed -n 's/.*Collected : *\([0-9]*\).*/\1/p' "$WORK/callgrind.log")")
  done
  python3 - "$records" "${counts[@]}" <<'PY'
import sys
n, decode, scan = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
print(f"instructions (callgrind): decode only {decode / n:.0f} per record, scan {scan / n:.0f}; "
      f"detectors {(scan - decode) / n:.0f} per record = {(scan - decode) / decode * 100:.1f} % of decoding's")
PY
fi
