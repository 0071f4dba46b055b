#!/usr/bin/env bash
# The archive and SQL benchmark (run by hand, never in CI): generates a few million flow
# records, archives them with `flowlens archive`, then compares
#   1. bytes per flow record on disk: flowlens' archive vs DuckDB's zstd parquet of the
#      same records;
#   2. the same per-source aggregation by `flowlens sql --threads 1` and by DuckDB with
#      `SET threads = 1`, both timed inside the process: 3 fresh processes (connections)
#      each running the query 5 times, the best of the 15 runs (warm page cache).
# DuckDB comes from PyPI into a cached virtualenv. Environment: FLOWLENS_BENCH_SCALE
# (traffic multiplier, default 300), FLOWLENS_BENCH_HOURS (2), FLOWLENS_BENCH_DIR.
set -euo pipefail
cd "$(dirname "$0")/../.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/flowlens-target}"
SCALE="${FLOWLENS_BENCH_SCALE:-300}"
HOURS="${FLOWLENS_BENCH_HOURS:-2}"
WORK="${FLOWLENS_BENCH_DIR:-${TMPDIR:-/tmp}/flowlens-sql-bench}"
DUCKDB_VERSION="1.5.6"
VENV="${FLOWLENS_BENCH_VENV:-$HOME/.cache/flowlens-bench-venv}"

cargo build --release --locked --bin flowlens
BIN="$CARGO_TARGET_DIR/release/flowlens"
if ! "$VENV/bin/python" -c "import duckdb, sys; sys.exit(duckdb.__version__ != '$DUCKDB_VERSION')" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "duckdb==$DUCKDB_VERSION"
fi

logs="$WORK/logs-$SCALE-$HOURS"
if [ ! -d "$logs" ]; then
  "$BIN" generate --out "$logs" --hours "$HOURS" --scale "$SCALE" --seed 1
fi
rm -rf "$WORK/archive"
/usr/bin/time -v "$BIN" archive "$logs" --to "$WORK/archive" 2>"$WORK/archive.log" || { cat "$WORK/archive.log"; exit 1; }
grep -E "flowlens archive|Maximum resident" "$WORK/archive.log"

QUERY="SELECT srcaddr, sum(bytes) AS bytes, count(*) AS flows FROM flows GROUP BY srcaddr ORDER BY bytes DESC LIMIT 10"
for _ in 1 2 3 4 5; do echo "$QUERY;"; done >"$WORK/query.sql"
times=""
for _ in 1 2 3; do
  times="$times $("$BIN" sql --threads 1 --timing --format csv --data "$WORK/archive" -f "$WORK/query.sql" 2>&1 >/dev/null | sed -n 's/.*(\(.*\) s)/\1/p' | tr '\n' ' ')"
done
best=$(python3 -c "print(min(float(x) for x in '$times'.split()))")
echo "flowlens sql runs (s):$times"

"$VENV/bin/python" - "$WORK" "$best" "$QUERY" <<'PY'
import glob, os, sys, time, duckdb
work, flowlens_secs, query = sys.argv[1], float(sys.argv[2]), sys.argv[3]
files = glob.glob(f"{work}/archive/kind=flows/**/*.parquet", recursive=True)
con = duckdb.connect()
src = f"read_parquet('{work}/archive/kind=flows/**/*.parquet', hive_partitioning = true)"
records = con.execute(f"SELECT count(*) FROM {src}").fetchone()[0]
ours = sum(os.path.getsize(f) for f in files)
duck_file = f"{work}/duckdb-flows.parquet"
con.execute(f"COPY (SELECT * EXCLUDE (account, aws_region, date, hour) FROM {src} ORDER BY start) "
            f"TO '{duck_file}' (FORMAT parquet, COMPRESSION zstd)")
theirs = os.path.getsize(duck_file)
duck_query = query.replace("FROM flows", f"FROM {src}")
runs = []
for _ in range(3):
    con = duckdb.connect()
    con.execute("SET threads = 1")
    for _ in range(5):
        t0 = time.perf_counter()
        con.execute(duck_query).fetchall()
        runs.append(time.perf_counter() - t0)
print("DuckDB runs (s): " + " ".join(f"{t:.3f}" for t in runs))
best = min(runs)
print(f"records: {records} flow records in {len(files)} files")
print(f"bytes/record: flowlens archive {ours / records:.1f}, DuckDB zstd parquet {theirs / records:.1f}")
print(f"per-source aggregation, 1 thread: flowlens sql {flowlens_secs:.3f} s ({records / flowlens_secs / 1e6:.1f} M records/s), "
      f"DuckDB {best:.3f} s ({records / best / 1e6:.1f} M records/s)")
PY
