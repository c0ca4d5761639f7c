-- wrk script for the Chaperone benchmark: POSTs one fixed, small OpenAI chat request and,
-- when the run ends, prints one JSON line (prefixed BENCH_JSON) with the latency
-- percentiles in microseconds, the request count, throughput and every error counter.
--
-- Environment: BENCH_STREAM=1 asks for a streamed (SSE) answer; BENCH_AUTH is the
-- Authorization header value sent (the proxies replace it with the configured key).

local stream = os.getenv("BENCH_STREAM") == "1"
local auth = os.getenv("BENCH_AUTH") or "Bearer agent-placeholder"

local body = '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello"}]'
if stream then
  body = body .. ',"stream":true'
end
body = body .. '}'

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = auth

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  local parts = {
    string.format('"requests":%d', summary.requests),
    string.format('"duration_us":%d', summary.duration),
    string.format('"bytes":%d', summary.bytes),
    string.format('"rps":%.2f', summary.requests / secs),
    string.format('"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}',
      latency.min, latency.mean, latency.stdev,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
      latency.max),
    string.format('"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}',
      e.connect, e.read, e.write, e.status, e.timeout),
  }
  io.write("BENCH_JSON {" .. table.concat(parts, ",") .. "}\n")
end
