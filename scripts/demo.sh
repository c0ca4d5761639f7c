#!/usr/bin/env bash
# make demo: run chaperone-proxy locally in front of the bundled mock LLM upstream (or a real
# provider when OPENAI_API_KEY / ANTHROPIC_API_KEY is set), send a few exchanges the way an agent
# would (with a fake key), and show the audit trail they produced.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${CHAPERONE_BIN_DIR:-.build/debug}
demo=.demo
rm -rf "$demo" && mkdir -p "$demo"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_for() { # url, what
  for _ in $(seq 1 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "demo: $2 did not become ready; its log:" >&2; cat "$demo"/*.log >&2; exit 1
}

proxy_port=$(free_port); admin_port=$(free_port)
mode=mock
if [[ -n "${OPENAI_API_KEY:-}" || -n "${ANTHROPIC_API_KEY:-}" ]]; then mode=real; fi

if [[ $mode == mock ]]; then
  mock_port=$(free_port)
  printf 'sk-demo-real-provider-key\n' > "$demo/openai-key"
  cp "$demo/openai-key" "$demo/anthropic-key"
  "$bin/chaperone-mock-upstream" --port "$mock_port" --expect-key sk-demo-real-provider-key \
      --record "$demo/upstream-saw.jsonl" > "$demo/mock.log" 2>&1 &
  pids+=($!)
  openai_url="http://127.0.0.1:$mock_port"; anthropic_url="http://127.0.0.1:$mock_port"
  openai_model=gpt-4o-mini; anthropic_model=claude-sonnet-4-5
  for _ in $(seq 1 100); do grep -q listening "$demo/mock.log" 2>/dev/null && break; sleep 0.1; done
  grep -q listening "$demo/mock.log" || { echo "demo: the mock upstream did not start:" >&2; cat "$demo/mock.log" >&2; exit 1; }
else
  printf '%s\n' "${OPENAI_API_KEY:-}" > "$demo/openai-key"
  printf '%s\n' "${ANTHROPIC_API_KEY:-}" > "$demo/anthropic-key"
  openai_url=https://api.openai.com; anthropic_url=https://api.anthropic.com
  openai_model=${DEMO_OPENAI_MODEL:-gpt-4o-mini}; anthropic_model=${DEMO_ANTHROPIC_MODEL:-claude-haiku-4-5}
fi
chmod 600 "$demo"/*-key

cat > "$demo/proxy.yaml" <<YAML
listen: { host: 127.0.0.1, port: $proxy_port }
admin: { host: 127.0.0.1, port: $admin_port }
upstreams:
  openai:
    base_url: $openai_url
    provider: openai
    credential: { file: $PWD/$demo/openai-key }
  anthropic:
    base_url: $anthropic_url
    provider: anthropic
    credential: { file: $PWD/$demo/anthropic-key }
audit:
  file: $PWD/$demo/audit.jsonl
  stdout: true
YAML
"$bin/chaperone-proxy" --config "$demo/proxy.yaml" > "$demo/proxy-stdout.jsonl" 2> "$demo/proxy.log" &
pids+=($!)
wait_for "http://127.0.0.1:$admin_port/readyz" "chaperone-proxy"

base="http://127.0.0.1:$proxy_port"
say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
say "chaperone-proxy is listening on $base (mode: $mode). The agent holds only a fake key."

if [[ $mode == mock || -n "${OPENAI_API_KEY:-}" ]]; then
  say "1) OpenAI chat completion, as an agent would send it (Authorization: Bearer sk-agent-fake):"
  curl -sS "$base/openai/v1/chat/completions" -H 'authorization: Bearer sk-agent-fake' \
    -H 'content-type: application/json' -H 'x-chaperone-session: demo-session' \
    -d "{\"model\":\"$openai_model\",\"messages\":[{\"role\":\"system\",\"content\":\"You are a coding agent.\"},{\"role\":\"user\",\"content\":\"Write a hello world in Go.\"}]}"
  echo
  say "2) The same, streamed (server-sent events forwarded as they arrive):"
  curl -sSN "$base/openai/v1/chat/completions" -H 'authorization: Bearer sk-agent-fake' \
    -H 'content-type: application/json' -H 'x-chaperone-session: demo-session' \
    -d "{\"model\":\"$openai_model\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"Say hello.\"}]}" > "$demo/stream.txt"
  head -c 700 "$demo/stream.txt"; echo "... ($(grep -c '^data:' "$demo/stream.txt") events)"
fi
if [[ $mode == mock || -n "${ANTHROPIC_API_KEY:-}" ]]; then
  say "3) Anthropic message with a tool (x-api-key: sk-ant-agent-fake):"
  curl -sS "$base/anthropic/v1/messages" -H 'x-api-key: sk-ant-agent-fake' -H 'anthropic-version: 2023-06-01' \
    -H 'content-type: application/json' -H 'x-chaperone-session: demo-session' \
    -d "{\"model\":\"$anthropic_model\",\"max_tokens\":200,\"tools\":[{\"name\":\"get_weather\",\"description\":\"Weather for a city\",\"input_schema\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}],\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Paris?\"}]}"
  echo
fi
say "4) A request for an upstream that is not configured gets a clear, provider-shaped error:"
curl -sS "$base/gemini/v1/models"; echo

# The trail is complete once the last exchange's event is on disk.
for _ in $(seq 1 50); do grep -q '"path":"/gemini/v1/models"' "$demo/audit.jsonl" 2>/dev/null && break; sleep 0.1; done

say "The audit trail ($demo/audit.jsonl; the proxy also prints it on stdout):"
python3 - "$demo/audit.jsonl" <<'PY'
import hashlib, json, sys
lines = open(sys.argv[1], "rb").read().splitlines()
prev = "0" * 64
for raw in lines:
    e = json.loads(raw)
    chain = "ok" if e["prev_hash"] == prev else "BROKEN"
    prev = hashlib.sha256(raw).hexdigest()
    g, h, c = e.get("gen_ai", {}), e.get("http", {}), e.get("content", {})
    model = g.get("response", {}).get("model") or g.get("request", {}).get("model") or "-"
    print(f"#{e['seq']:<2} {e['kind']:<13} {h.get('method','')} {('/' + h['upstream']) if h.get('upstream') else ''}{h.get('path','')}  model={model}  "
          f"status={h.get('status','-')}  outcome={e.get('outcome','-')}  session={e['session_id']}  chain={chain}")
    for m in c.get("messages", []):
        print(f"      {m['role']:>9}: {m['content'][:90]}")
    if c.get("response_text"):
        print(f"     answer: {c['response_text'][:90]}")
    for t in c.get("tool_calls", []):
        print(f"  tool call: {t['name']}({t['arguments']}) id={t.get('id')}")
    u = g.get("usage")
    if u or h.get("ttfb_us"):
        print(f"     tokens: in={u and u.get('input_tokens')} out={u and u.get('output_tokens')}  ttfb={h.get('ttfb_us',0)/1000:.1f} ms  total={h.get('duration_us',0)/1000:.1f} ms")
    if e.get("error"):
        print(f"      error: {e['error']['type']}: {e['error']['message'][:100]}")
PY
if [[ $mode == mock ]]; then
  say "What the upstream received (from the mock's own record):"
  python3 - "$demo/upstream-saw.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    cred = r["headers"].get("authorization") or r["headers"].get("x-api-key")
    fake = any("fake" in v for v in r["headers"].values())
    print(f"  {r['method']} {r['path']:<22} credential={cred!r}  agent's fake key present: {fake}")
PY
fi
say "One full event: python3 -m json.tool < <(sed -n 2p $demo/audit.jsonl). Prometheus metrics (sample):"
curl -sS "http://127.0.0.1:$admin_port/metrics" | grep -E '^chaperone_proxy_(requests_total|audit_events_total)' | head -8
