#!/usr/bin/env bash
# Masking benchmark: throughput, streaming latency and detection quality of the secret-masking
# engine (Sources/ChaperoneMasking), with detect-secrets (PyPI, all default plugins) timed on the
# same corpus files in the same run. Writes bench/results/masking.json and prints markdown tables.
#
# Run it with `make bench-masking` (also part of `make bench`) or `bash bench/masking/run.sh`.
# It is not part of the test suite. About a minute once the release binary exists.
#
# Environment (all optional):
#   BENCH_MASKING_RUNS      measured runs per input size for chaperone (default 7; median reported)
#   BENCH_MASKING_RUN_SECONDS  minimum length of one chaperone run, seconds (default 0.3)
#   BENCH_MASKING_DS_RUNS   measured runs per input size for detect-secrets (default 3)
#   BENCH_MASKING_OUT       result file (default bench/results/masking.json)
#   BENCH_MASKING_VENV      virtualenv that holds detect-secrets (default bench/masking/.venv)
#   BENCH_MASKING_DS_VERSION  detect-secrets version to install (default 1.5.0)
#   BENCH_QUIET_WAIT        seconds to wait, before each phase, for other processes to leave the
#                           CPUs alone (default 60); what they used is reported anyway
#   BENCH_KEEP=1            keep the scratch directory (the corpus files)
#   CHAPERONE_BIN_DIR       use chaperone-masking-bench from there instead of building it
#   CHAPERONE_SCRATCH       swift build --scratch-path (default <repo>/.build-release)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/bench/masking"
RUNS=${BENCH_MASKING_RUNS:-7}
RUN_SECONDS=${BENCH_MASKING_RUN_SECONDS:-0.3}
DS_RUNS=${BENCH_MASKING_DS_RUNS:-3}
OUT=${BENCH_MASKING_OUT:-$ROOT/bench/results/masking.json}
VENV=${BENCH_MASKING_VENV:-$HERE/.venv}
DS_VERSION=${BENCH_MASKING_DS_VERSION:-1.5.0}
QUIET_WAIT=${BENCH_QUIET_WAIT:-60}

log() { printf '[bench-masking] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/chaperone-bench-masking.XXXXXX")
cleanup() {
    local status=$?
    if [[ "${BENCH_KEEP:-0}" == 1 || $status -ne 0 ]]; then log "scratch directory kept: $WORK"; else rm -rf "$WORK"; fi
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------- binary
if [[ -n "${CHAPERONE_BIN_DIR:-}" ]]; then
    BIN="$CHAPERONE_BIN_DIR/chaperone-masking-bench"
else
    SCRATCH=${CHAPERONE_SCRATCH:-$ROOT/.build-release}
    log "swift build -c release --product chaperone-masking-bench (scratch $SCRATCH)"
    (cd "$ROOT" && swift build -c release --product chaperone-masking-bench --scratch-path "$SCRATCH") >"$WORK/build.log" 2>&1 \
        || { tail -40 "$WORK/build.log" >&2; die "release build of chaperone-masking-bench failed"; }
    BIN="$(cd "$ROOT" && swift build -c release --scratch-path "$SCRATCH" --show-bin-path)/chaperone-masking-bench"
fi
[[ -x "$BIN" ]] || die "no chaperone-masking-bench at $BIN"

# ---------------------------------------------------------------------------- detect-secrets
# A virtualenv of its own (idempotent: created once, then reused).
if ! "$VENV/bin/python" -c "import sys; from detect_secrets.__version__ import VERSION; sys.exit(VERSION != '$DS_VERSION')" 2>/dev/null; then
    log "installing detect-secrets==$DS_VERSION into $VENV (pip)"
    python3 -m venv "$VENV" >"$WORK/venv.log" 2>&1 || { cat "$WORK/venv.log" >&2; die "python3 -m venv failed (Debian: apt-get install python3-venv)"; }
    "$VENV/bin/python" -m pip install -q "detect-secrets==$DS_VERSION" >>"$WORK/venv.log" 2>&1 \
        || { tail -20 "$WORK/venv.log" >&2; die "pip install detect-secrets failed"; }
fi

# ---------------------------------------------------------------------------- measure
GIT_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$ROOT" status --porcelain -- Sources bench/masking Package.swift 2>/dev/null) ]]; then
    GIT_COMMIT="$GIT_COMMIT+dirty"
fi
mkdir -p "$(dirname "$OUT")"
"$VENV/bin/python" "$HERE/compare.py" --bin "$BIN" --corpus "$WORK/corpus" --out "$OUT" \
    --runs "$RUNS" --run-seconds "$RUN_SECONDS" --ds-runs "$DS_RUNS" --quiet-wait "$QUIET_WAIT" \
    --meta "commit=$GIT_COMMIT" \
    --meta "swift=$(swift --version 2>&1 | grep -o 'Swift version [^ ]*' | head -1 | awk '{print $3}' || true)"
