#!/usr/bin/env bash
# Collector benchmark: sustained ingest of 1 KB and 20 KB events into SQLite and PostgreSQL
# with the shipped durability default (SQLite WAL + synchronous=FULL; PostgreSQL
# synchronous_commit=on, fsync on), then filtered searches over the 1 KB store (1,000,000 events
# by default). Writes bench/results/collector.json and prints markdown tables.
#
# Run it with `make bench-collector` (also part of `make bench`). Not part of the test suite.
# About 10 minutes once the release binary exists. Sends traffic to loopback only.
#
# Environment (all optional):
#   BENCH_EVENTS        1 KB events per backend (default 1000000; the query store)
#   BENCH_LARGE_EVENTS  20 KB events per backend (default 50000)
#   BENCH_STREAMS       concurrent sidecar streams (default 10), each posting batches in turn
#   BENCH_BATCH         events per batch (default 500)
#   BENCH_ROUNDS        queries per query shape (default 100)
#   BENCH_BACKENDS      "sqlite postgres" (default both)
#   BENCH_COLD_STATISTICS  set to query PostgreSQL without running ANALYZE after the load first
#   BENCH_OUT           result file (default bench/results/collector.json)
#   CHAPERONE_BIN_DIR   use chaperone-collector from there instead of building it
#   CHAPERONE_SCRATCH   swift build --scratch-path (default <repo>/.build-release)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/bench/collector"
EVENTS=${BENCH_EVENTS:-1000000}
LARGE=${BENCH_LARGE_EVENTS:-50000}
STREAMS=${BENCH_STREAMS:-10}
BATCH=${BENCH_BATCH:-500}
ROUNDS=${BENCH_ROUNDS:-100}
BACKENDS=${BENCH_BACKENDS:-sqlite postgres}
OUT=${BENCH_OUT:-$ROOT/bench/results/collector.json}
SCRATCH=${CHAPERONE_SCRATCH:-$ROOT/.build-release}
PGPORT=${PGTEST_PORT:-55432}
READER=reader-token-for-the-benchmark-0123

log() { printf '[bench-collector] %s\n' "$*" >&2; }

"$ROOT/scripts/e2e-venv.sh" >/dev/null
PY="$ROOT/.venv/bin/python"
if [[ -n "${CHAPERONE_BIN_DIR:-}" ]]; then
    BIN="$CHAPERONE_BIN_DIR/chaperone-collector"
else
    log "swift build -c release --product chaperone-collector (scratch $SCRATCH)"
    (cd "$ROOT" && swift build -c release --scratch-path "$SCRATCH" --product chaperone-collector) >&2
    BIN="$SCRATCH/release/chaperone-collector"
fi
[[ " $BACKENDS " == *" postgres "* ]] && PGTEST_PORT=$PGPORT "$ROOT/scripts/test-postgres.sh" >/dev/null

WORK=$(mktemp -d /tmp/chaperone-bench-collector.XXXXXX)
trap 'pkill -f "$WORK/collector.yaml" 2>/dev/null || true; rm -rf "$WORK"' EXIT
"$PY" "$HERE/collector_load.py" keys --dir "$WORK"
echo "bench: $READER" > "$WORK/readers"
PORT=18480
ADMIN=18481

start_collector() {  # backend, run name
    local backend=$1 name=$2 storage
    if [[ $backend == sqlite ]]; then
        storage="storage: {backend: sqlite, data_directory: $WORK/$name}"
    else
        psql -h 127.0.0.1 -p "$PGPORT" -U postgres -q -c "DROP DATABASE IF EXISTS bench_$name" -c "CREATE DATABASE bench_$name" >/dev/null
        storage="storage: {backend: postgres, data_directory: $WORK/$name, postgres: {host: 127.0.0.1, port: $PGPORT, user: postgres, database: bench_$name, tls: disable}}"
    fi
    cat > "$WORK/collector.yaml" <<CONF
listen: {host: 127.0.0.1, port: $PORT}
admin: {host: 127.0.0.1, port: $ADMIN}
authentication: {mode: jwks, jwks_file: $WORK/jwks.json}
readers: {tokens_file: $WORK/readers}
$storage
CONF
    "$BIN" --config "$WORK/collector.yaml" --log-level warning >"$WORK/$name.stdout" 2>"$WORK/$name.stderr" &
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$ADMIN/readyz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    log "collector did not start:"; tail -5 "$WORK/$name.stderr" >&2; exit 1
}

stop_collector() {
    pkill -f "$WORK/collector.yaml" || true
    sleep 1
}

storage_bytes() { curl -s "http://127.0.0.1:$ADMIN/metrics" | awk '/^chaperone_collector_storage_bytes /{printf "%.0f", $2}'; }

RESULTS="{}"
for backend in $BACKENDS; do
    for size in 1024 20480; do
        name="${backend}_${size}"
        count=$EVENTS
        [[ $size == 20480 ]] && count=$LARGE
        log "$backend, $size-byte events: ingesting $count over $STREAMS streams, batches of $BATCH"
        start_collector "$backend" "$name"
        ingest=$("$PY" "$HERE/collector_load.py" ingest --dir "$WORK" --url "http://127.0.0.1:$PORT" --events "$count" --size "$size" --streams "$STREAMS" --batch "$BATCH")
        log "  $ingest"
        query='null'
        if [[ $size == 1024 ]]; then
            # A store that has run for a while has planner statistics; one loaded from empty a
            # minute ago may not yet (autovacuum analyses about once a minute). Measure the
            # former; docs/benchmarks.md reports what the first minute looks like.
            if [[ $backend == postgres && -z "${BENCH_COLD_STATISTICS:-}" ]]; then
                psql -h 127.0.0.1 -p "$PGPORT" -U postgres -d "bench_$name" -q -c "ANALYZE" >/dev/null
            fi
            log "  queries over the stored events ($ROUNDS per shape)"
            query=$("$PY" "$HERE/collector_load.py" query --dir "$WORK" --url "http://127.0.0.1:$PORT" --reader-token "$READER" --rounds "$ROUNDS")
            log "  $query"
        fi
        sleep 16  # one storage-size sample
        bytes=$(storage_bytes || echo 0)
        rss=$(ps -o rss= -p "$(pgrep -f "$WORK/collector.yaml" | head -1)" 2>/dev/null | tr -d ' ' || echo 0)
        stop_collector
        RESULTS=$(echo "$RESULTS" | "$PY" -c "import json,sys; r=json.load(sys.stdin); r['$name']={'ingest': json.loads('''$ingest'''), 'query': json.loads('''$query'''), 'storage_bytes': int('${bytes:-0}' or 0), 'rss_kib': int('${rss:-0}' or 0)}; print(json.dumps(r))")
    done
done
mkdir -p "$(dirname "$OUT")"
echo "$RESULTS" | "$PY" -m json.tool > "$OUT"
"$PY" - "$OUT" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("| backend | event size | events | events/s | batch p50 | batch p99 | storage | RSS |")
print("|---|---|---|---|---|---|---|---|")
for name, v in r.items():
    i = v["ingest"]
    print(f"| {name.split('_')[0]} | {i['event_bytes']} B | {i['events']:,} | {i['events_per_second']:,} | {i['batch_p50_ms']} ms | {i['batch_p99_ms']} ms | {v['storage_bytes']/1e6:,.0f} MB | {v['rss_kib']/1024:,.0f} MiB |")
for name, v in r.items():
    if v["query"]:
        print(f"\n{name}: queries over {v['ingest']['events']:,} events\n\n| query | p50 | p95 | max | rows |\n|---|---|---|---|---|")
        for shape, q in v["query"].items():
            print(f"| {shape} | {q['p50_ms']} ms | {q['p95_ms']} ms | {q['max_ms']} ms | {q['mean_rows']} |")
PY
