#!/usr/bin/env bash
# Injector benchmark: admission latency of chaperone-injector at a fixed request rate (open
# loop), over persistent TLS connections, with real AdmissionReview fixtures. Also runs the same
# load against a minimal Python TLS server that replays the injector's answers, to show what the
# client and the loopback TLS path cost by themselves. Writes bench/results/injector.json and
# prints markdown tables. The target (from the issue): p99 ≤ 2 ms at 200 requests/s.
#
# Run it with `make bench-injector` (also part of `make bench`) or `bash bench/injector/run.sh`.
# It is not part of the test suite. About 2 minutes once the release binary exists.
#
# Environment (all optional):
#   BENCH_RATE         requests per second, scheduled at fixed intervals (default 200)
#   BENCH_DURATION     measured seconds, "30" or "30s" (default 30)
#   BENCH_WARMUP       warm-up seconds at the same rate, not reported (default 5)
#   BENCH_CONNECTIONS  persistent keep-alive TLS connections (default 4)
#   BENCH_PICK         which idle connection takes the next request: round-robin (default) or
#                      lifo (Go's http.Transport, what the API server uses: mostly one connection)
#   BENCH_SPIN_US      the client wakes this many µs before each scheduled send and polls until
#                      it is due, because timer wake-ups come late on a VM (default 500; 0: none)
#   BENCH_FIXTURES     comma-separated names from Tests/Fixtures/admission, mixed in about equal
#                      shares in a fixed pseudo-random order (default
#                      deployment-pod,job-pod,multi-container,existing-env,tricky-annotation-keys,init-containers)
#   BENCH_TARGET_P99_US  the p99 target, µs (default 2000)
#   BENCH_ECHO         1 (default) also measures the client against the echo server; 0 skips it
#   BENCH_HICCUP_SECONDS  seconds of 1 ms sleeps, before the runs, to measure how late this
#                      machine wakes threads up (default 10; 0 skips it)
#   BENCH_LOG_LEVEL    chaperone-injector --log-level (default info, what a deployment gets: one
#                      JSON line per admission on stderr, here to a file)
#   BENCH_QUIET_WAIT   seconds to wait, before each run, for other processes to leave the CPUs
#                      alone (default 60); the CPU they used during each run is reported anyway
#   BENCH_RETRIES      times a run is measured again when other processes used more than 0.3
#                      cores during it (default 2)
#   BENCH_OUT          result file (default bench/results/injector.json)
#   BENCH_KEEP=1       keep the scratch directory (certificates, config, logs, raw results)
#   CHAPERONE_BIN_DIR  use chaperone-injector from there instead of building it
#   CHAPERONE_SCRATCH  swift build --scratch-path (default <repo>/.build-release)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/bench/injector"
seconds() { local v=${1%s}; [[ $v =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "not a number of seconds: $1" >&2; exit 2; }; echo "$v"; }
RATE=${BENCH_RATE:-200}
DURATION=$(seconds "${BENCH_DURATION:-30}")
WARMUP=$(seconds "${BENCH_WARMUP:-5}")
CONNS=${BENCH_CONNECTIONS:-4}
PICK=${BENCH_PICK:-round-robin}
SPIN_US=${BENCH_SPIN_US:-500}
FIXTURES=${BENCH_FIXTURES:-deployment-pod,job-pod,multi-container,existing-env,tricky-annotation-keys,init-containers}
TARGET_P99_US=${BENCH_TARGET_P99_US:-2000}
WITH_ECHO=${BENCH_ECHO:-1}
HICCUP_SECONDS=${BENCH_HICCUP_SECONDS:-10}
LOG_LEVEL=${BENCH_LOG_LEVEL:-info}
QUIET_WAIT=${BENCH_QUIET_WAIT:-60}
RETRIES=${BENCH_RETRIES:-2}
OUT=${BENCH_OUT:-$ROOT/bench/results/injector.json}
LOAD="$HERE/admission_load.py"
FIXTURE_DIR="$ROOT/Tests/Fixtures/admission"

log() { printf '[bench-injector] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/chaperone-bench-injector.XXXXXX")
PIDS=()

cleanup() {
    local status=$?
    set +e
    trap - ERR
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    if [[ "${BENCH_KEEP:-0}" == 1 || $status -ne 0 ]]; then
        log "scratch directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit $status
}
trap cleanup EXIT
set -E
trap 'log "failed (status $?) at line $LINENO: $BASH_COMMAND"' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------- tools
command -v openssl >/dev/null || die "the openssl CLI is needed to make the certificates (apt-get install openssl)"
command -v curl >/dev/null || die "curl is needed to poll /readyz"
IFS=, read -r -a FIXTURE_LIST <<<"$FIXTURES"
for name in "${FIXTURE_LIST[@]}"; do
    [[ -f "$FIXTURE_DIR/$name.json" ]] || die "no fixture $FIXTURE_DIR/$name.json (BENCH_FIXTURES)"
done

# The commit the binary is built from (read now: the tree may move while the benchmark runs).
GIT_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$ROOT" status --porcelain -- Sources Package.swift 2>/dev/null) ]]; then
    GIT_COMMIT="$GIT_COMMIT+dirty"
fi
if [[ -n "${CHAPERONE_BIN_DIR:-}" ]]; then
    GIT_COMMIT="unknown (binary from CHAPERONE_BIN_DIR)"
    BIN_DIR=$CHAPERONE_BIN_DIR
else
    SCRATCH=${CHAPERONE_SCRATCH:-$ROOT/.build-release}
    log "swift build -c release --product chaperone-injector (scratch $SCRATCH)"
    (cd "$ROOT" && swift build -c release --scratch-path "$SCRATCH" --product chaperone-injector) >"$WORK/build.log" 2>&1 \
        || { tail -40 "$WORK/build.log" >&2; die "release build of chaperone-injector failed"; }
    BIN_DIR=$(cd "$ROOT" && swift build -c release --scratch-path "$SCRATCH" --show-bin-path)
fi
[[ -x "$BIN_DIR/chaperone-injector" ]] || die "no chaperone-injector in $BIN_DIR"
# Run a private copy: a rebuild into the same scratch directory while the benchmark runs would
# otherwise replace the binary under the running process.
cp "$BIN_DIR/chaperone-injector" "$WORK/chaperone-injector"
BIN="$WORK/chaperone-injector"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_http() { # url, seconds, pid: waits for a 200
    local url=$1 seconds=$2 pid=$3 i
    for i in $(seq 1 $((seconds * 20))); do
        kill -0 "$pid" 2>/dev/null || return 1
        [[ $(curl -s -o /dev/null -w '%{http_code}' "$url" || true) == 200 ]] && return 0
        sleep 0.05
    done
    return 1
}

proc_field() { # pid, field (VmRSS, VmHWM, Threads): the number, kB for memory
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}

system_busy_ticks() { # all CPUs, non-idle time (user nice system irq softirq steal), in ticks
    awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat
}

TICKS=$(getconf CLK_TCK)
wait_for_quiet() { # up to QUIET_WAIT seconds for the machine to be idle (< 0.2 busy cores over 1 s)
    local deadline=$((SECONDS + QUIET_WAIT)) b0 b1
    while :; do
        b0=$(system_busy_ticks); sleep 1; b1=$(system_busy_ticks)
        (( (b1 - b0) * 5 < TICKS )) && return 0
        if (( SECONDS >= deadline )); then
            log "machine still busy ($(( (b1 - b0) * 100 / TICKS ))% of a core used by others); measuring anyway"
            return 0
        fi
    done
}

# ---------------------------------------------------------------------------- certificates
# A CA and a serving certificate for localhost and 127.0.0.1, EC P-256, as cert-manager would
# issue them; the client verifies the chain and the name.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$WORK/ca.key" -out "$WORK/ca.crt" -days 2 -subj "/CN=chaperone-bench-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" >"$WORK/openssl.log" 2>&1 \
    || { cat "$WORK/openssl.log" >&2; die "openssl: CA"; }
printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "extendedKeyUsage=serverAuth" \
    "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" >"$WORK/tls.ext"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$WORK/tls.key" \
    -out "$WORK/tls.csr" -subj "/CN=localhost" >>"$WORK/openssl.log" 2>&1 || { cat "$WORK/openssl.log" >&2; die "openssl: key"; }
openssl x509 -req -in "$WORK/tls.csr" -CA "$WORK/ca.crt" -CAkey "$WORK/ca.key" -CAcreateserial \
    -out "$WORK/tls.crt" -days 1 -extfile "$WORK/tls.ext" >>"$WORK/openssl.log" 2>&1 \
    || { cat "$WORK/openssl.log" >&2; die "openssl: serving certificate"; }

# ---------------------------------------------------------------------------- injector
PORT=$(free_port); ADMIN_PORT=$(free_port)
cat >"$WORK/injector.yaml" <<EOF
tls:
  mode: files
  cert_file: $WORK/tls.crt
  key_file: $WORK/tls.key
EOF
log "chaperone-injector on 127.0.0.1:$PORT (admin $ADMIN_PORT, log level $LOG_LEVEL)"
"$BIN" --config "$WORK/injector.yaml" --listen "127.0.0.1:$PORT" --admin "127.0.0.1:$ADMIN_PORT" \
    --log-format json --log-level "$LOG_LEVEL" >"$WORK/injector.stdout" 2>"$WORK/injector.log" &
INJECTOR_PID=$!; PIDS+=("$INJECTOR_PID")
wait_http "http://127.0.0.1:$ADMIN_PORT/readyz" 30 "$INJECTOR_PID" \
    || { tail -20 "$WORK/injector.log" >&2; die "chaperone-injector did not become ready"; }
RSS_START=$(proc_field "$INJECTOR_PID" VmRSS)

# Every fixture once must be a 200 AdmissionReview for its uid (the answers are recorded for the
# echo server), then 20 more rounds so lazy state is warm before the idle RSS reading.
TARGET_ARGS=(--host 127.0.0.1 --server-name localhost --ca "$WORK/ca.crt" --fixtures "$FIXTURE_DIR" --names "$FIXTURES")
python3 "$LOAD" sanity "${TARGET_ARGS[@]}" --port "$PORT" --rounds 21 --out "$WORK/sanity.json" \
    || { tail -20 "$WORK/injector.log" >&2; die "sanity requests failed"; }
IDLE_RSS=$(proc_field "$INJECTOR_PID" VmRSS)
printf '{"rss_start_kb": %d, "rss_kb": %d, "threads": %d, "requests_before": %d}\n' "$RSS_START" "$IDLE_RSS" \
    "$(proc_field "$INJECTOR_PID" Threads)" $((21 * ${#FIXTURE_LIST[@]})) >"$WORK/idle.json"
log "idle: $(cat "$WORK/idle.json")"

# ---------------------------------------------------------------------------- echo server
ECHO_PID=""
if [[ "$WITH_ECHO" == 1 ]]; then
    python3 "$LOAD" echo-server --port 0 --cert "$WORK/tls.crt" --key "$WORK/tls.key" --canned "$WORK/sanity.json" \
        2>"$WORK/echo.log" &
    ECHO_PID=$!; PIDS+=("$ECHO_PID")
    for _ in $(seq 1 200); do grep -q "listening on" "$WORK/echo.log" 2>/dev/null && break; kill -0 "$ECHO_PID" || break; sleep 0.05; done
    ECHO_PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$WORK/echo.log" | cut -d: -f2) \
        || { cat "$WORK/echo.log" >&2; die "echo server did not start"; }
fi

# ---------------------------------------------------------------------------- timer noise
# Every request wakes several threads (client, event loop, handler task); on a VM those wake-ups
# can come milliseconds late. Measured on the idle machine, it is the floor under the p99.
if [[ "$HICCUP_SECONDS" != 0 ]]; then
    wait_for_quiet
    python3 "$LOAD" hiccup --seconds "$HICCUP_SECONDS" --out "$WORK/hiccup.json"
fi

# ---------------------------------------------------------------------------- load
ATTEMPTS=()
measure() { # label, port, pid, out, [metrics url]: one run, measured again when others were busy
    local label=$1 port=$2 pid=$3 out=$4 metrics=${5:-} attempt
    local extra=()
    [[ -n "$metrics" ]] && extra+=(--metrics-url "$metrics")
    for attempt in $(seq 0 "$RETRIES"); do
        wait_for_quiet
        rm -f "$out"
        python3 "$LOAD" run "${TARGET_ARGS[@]}" --port "$port" --pid "$pid" --label "$label" \
            --rate "$RATE" --duration "$DURATION" --warmup "$WARMUP" --connections "$CONNS" --pick "$PICK" --spin-us "$SPIN_US" \
            "${extra[@]}" --out "$out" --raw "${out%.json}.csv" || true
        kill -0 "$pid" 2>/dev/null || { tail -5 "$WORK/injector.log" >&2; die "$label died during the run"; }
        [[ -f "$out" ]] || die "$label: the load run wrote no result"
        python3 "$LOAD" noisy "$out" || break
        if (( attempt < RETRIES )); then log "other processes were busy during that run: measuring it again"; fi
    done
    ATTEMPTS+=("$label=$((attempt + 1))")
}

measure chaperone-injector "$PORT" "$INJECTOR_PID" "$WORK/injector-run.json" "http://127.0.0.1:$ADMIN_PORT/metrics"
if [[ -n "$ECHO_PID" ]]; then
    measure echo-server "$ECHO_PORT" "$ECHO_PID" "$WORK/echo-run.json"
fi
curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" >"$WORK/metrics-final.txt" || true
# An admission log line per request is what a deployment writes; check that it was written.
LOGGED=$(grep -c '"admission"' "$WORK/injector.log" || true)
REFUSED=$(grep -c 'admission.refused' "$WORK/injector.log" || true)

# ---------------------------------------------------------------------------- report
SWIFT_VERSION=$(swift --version 2>&1 | grep -o 'Swift version [^ ]*' | head -1 | awk '{print $3}' || true)
mkdir -p "$(dirname "$OUT")"
python3 "$LOAD" report --injector "$WORK/injector-run.json" \
    ${ECHO_PID:+--echo "$WORK/echo-run.json"} --hiccup "$WORK/hiccup.json" --injector-log "$WORK/injector.log" --sanity "$WORK/sanity.json" --idle "$WORK/idle.json" --out "$OUT" \
    --meta "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --meta "nproc=$(nproc)" \
    --meta "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
    --meta "kernel=$(uname -r)" \
    --meta "swift=$SWIFT_VERSION" \
    --meta "python=$(python3 -c 'import sys, ssl; print(sys.version.split()[0], ssl.OPENSSL_VERSION)')" \
    --meta "chaperone_commit=$GIT_COMMIT" \
    --meta "log_level=$LOG_LEVEL" \
    --meta "target_p99_us=$TARGET_P99_US" \
    --meta "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" \
    --meta "attempts=${ATTEMPTS[*]}" \
    --meta "admission_log_lines=$LOGGED" \
    --meta "refused_log_lines=$REFUSED"
log "results: $OUT"
python3 -c 'import json, sys; sys.exit(1 if json.load(open(sys.argv[1]))["injector"]["error_count"] else 0)' "$OUT" \
    || die "the injector run had errors: the benchmark is invalid"
