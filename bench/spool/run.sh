#!/usr/bin/env bash
# Spool and shipper benchmark (issue P4):
#  1. the latency a Spool.write adds to the proxy's request path, per fsync policy (interval is
#     the default), with the flush and a shipper claiming and acknowledging running beside it;
#  2. shipping throughput: a spool filled with BENCH_SHIP_EVENTS events (about 1.6 KB each) is
#     delivered by a real chaperone-proxy to a real chaperone-collector (SQLite, TLS) on loopback,
#     timed from the proxy's start until the spool is empty.
# Writes bench/results/spool.json. Run it with `make bench-spool` (also part of `make bench`).
#
# Environment (all optional):
#   BENCH_LATENCY_EVENTS  writes timed per policy (default 200000)
#   BENCH_SHIP_EVENTS     events shipped (default 200000)
#   BENCH_DIR             where the spools go (default a temporary directory on the same disk as the repo)
#   CHAPERONE_SCRATCH     swift build --scratch-path (default <repo>/.build-release)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LATENCY_EVENTS=${BENCH_LATENCY_EVENTS:-200000}
SHIP_EVENTS=${BENCH_SHIP_EVENTS:-200000}
SCRATCH=${CHAPERONE_SCRATCH:-$ROOT/.build-release}
OUT=${BENCH_OUT:-$ROOT/bench/results/spool.json}
WORK=${BENCH_DIR:-$(mktemp -d "$ROOT/.bench-spool-XXXX")}
trap 'rm -rf "$WORK"' EXIT

log() { printf '[bench-spool] %s\n' "$*" >&2; }

"$ROOT/scripts/e2e-venv.sh" >/dev/null
for product in chaperone-spool-bench chaperone-proxy chaperone-collector chaperone-mock-upstream; do
    log "building $product (release)"
    swift build -c release --scratch-path "$SCRATCH" --product "$product" >&2
done
BIN=$(swift build -c release --scratch-path "$SCRATCH" --show-bin-path)

latency=()
for sync in interval always never; do
    rm -rf "$WORK/latency"
    log "write latency, sync $sync, $LATENCY_EVENTS events"
    latency+=("$("$BIN/chaperone-spool-bench" latency "$WORK/latency" "$LATENCY_EVENTS" "$sync")")
done

log "shipping $SHIP_EVENTS events"
rm -rf "$WORK/ship"
"$BIN/chaperone-spool-bench" fill "$WORK/ship/spool" "$SHIP_EVENTS" >&2
ship=$(CHAPERONE_BIN_DIR="$BIN" "$ROOT/.venv/bin/python" "$ROOT/bench/spool/ship.py" "$WORK/ship")

mkdir -p "$(dirname "$OUT")"
{
    printf '{"machine":"%s cores, %s","latency":[%s],"shipping":%s}\n' "$(nproc)" "$(uname -r)" "$(IFS=,; echo "${latency[*]}")" "$ship"
} > "$OUT"
"$ROOT/.venv/bin/python" - "$OUT" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("| fsync policy | events | p50 | p90 | p99 | p99.9 | max |")
print("|---|---|---|---|---|---|---|")
for l in r["latency"]:
    print(f"| {l['sync']} | {l['events']:,} | {l['p50_us']} µs | {l['p90_us']} µs | {l['p99_us']} µs | {l['p999_us']} µs | {l['max_us']} µs |")
s = r["shipping"]
print(f"\nshipping: {s['events']:,} events ({s['mb']} MB) in {s['seconds']} s = {s['events_per_second']:,} events/s "
      f"({s['batches']} batches, {s['failures']} failures)")
PY
