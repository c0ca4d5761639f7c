#!/usr/bin/env python3
"""Load for chaperone-collector: sidecar-like streams posting gzip'd JSON-lines batches with
projected-token-shaped JWTs, measured end to end (a batch counts when the collector has
committed it and answered). Also times filtered searches over what was stored.

  collector_load.py keys  --dir D                      # RSA issuer key, JWKS file, tokens
  collector_load.py ingest --dir D --url U --events N --size BYTES [--streams K --batch B]
  collector_load.py query  --dir D --url U --reader-token T [--rounds R]

Prints one JSON object with the measurements on stdout."""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import http.client
import json
import os
import random
import statistics
import threading
import time
import urllib.parse
import uuid

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

NAMESPACES = [f"team-{i}" for i in range(10)]
MODELS = ["gpt-4o-mini", "gpt-4.1", "claude-sonnet-4"]
WORDS = ("refactor billing module login cookie secure deploy key rotate changelog database migration index query cache "
         "kubernetes pod service ingress secret token review function test failure retry timeout latency budget "
         "python swift rust golang typescript compile build release version dependency library package upgrade").split()
ZERO = "0" * 64


def b64url(value: int) -> str:
    return base64.urlsafe_b64encode(value.to_bytes((value.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()


def keys(directory: str) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = key.public_key().public_numbers()
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "jwks.json"), "w") as f:
        json.dump({"keys": [{"kty": "RSA", "alg": "RS256", "kid": "bench", "n": b64url(numbers.n), "e": b64url(numbers.e)}]}, f)
    now = int(time.time())
    tokens = {}
    for ns in NAMESPACES:
        claims = {"aud": ["chaperone-collector"], "exp": now + 86400, "iat": now, "nbf": now, "iss": "https://kubernetes.default.svc.cluster.local",
                  "sub": f"system:serviceaccount:{ns}:agent",
                  "kubernetes.io": {"namespace": ns, "serviceaccount": {"name": "agent", "uid": str(uuid.uuid4())},
                                    "pod": {"name": f"agent-{ns}", "uid": str(uuid.uuid4())}, "node": {"name": "node-a", "uid": str(uuid.uuid4())}}}
        tokens[ns] = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "bench"})
    with open(os.path.join(directory, "tokens.json"), "w") as f:
        json.dump(tokens, f)


def uuid7(ms: int) -> str:
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms << 80) | (0x7 << 76) | ((rand >> 64) & 0xFFF) << 64 | (0b10 << 62) | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def stream_batches(stream_index: int, count: int, size: int, batch: int, rng: random.Random, base_ms: int) -> list[tuple[str, bytes, int]]:
    """One sidecar's events, chained, in gzip'd batches: [(namespace, body, events)]."""
    ns = NAMESPACES[stream_index % len(NAMESPACES)]
    stream_id = uuid7(base_ms)
    prev = ZERO
    out = []
    lines: list[bytes] = []
    for seq in range(1, count + 1):
        session = f"{ns}-session-{rng.randrange(50)}"
        model = MODELS[rng.randrange(len(MODELS))]
        text = []
        length = 0
        while length < size - 700:
            word = WORDS[rng.randrange(len(WORDS))]
            text.append(word)
            length += len(word) + 1
        when = base_ms + seq  # spread over time: one millisecond per event and stream
        event = {
            "content": {"messages": [{"content": " ".join(text), "role": "user"}], "tool_calls": [], "truncated": False},
            "event_id": uuid7(when), "exchange_id": uuid7(when), "findings": [], "kind": "llm.request",
            "gen_ai": {"operation": {"name": "chat"}, "provider": {"name": "openai"}, "request": {"model": model}},
            "http": {"bytes_in": size, "bytes_out": 0, "method": "POST", "path": "/v1/chat/completions", "upstream": "openai"},
            "prev_hash": prev, "schema_version": "1.0", "seq": seq, "session_id": session,
            "source": {"namespace": ns, "pod": f"agent-{ns}", "self_reported": True}, "stream_id": stream_id,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when / 1000)) + f".{(when % 1000) * 1000:06d}Z",
        }
        if rng.random() < 0.01:
            event["findings"] = [{"detector": "aws_access_key", "direction": "request", "fingerprint": "hmac-sha256:" + os.urandom(8).hex()}]
        line = json.dumps(event, sort_keys=True, separators=(",", ":")).encode()
        prev = hashlib.sha256(line).hexdigest()
        lines.append(line)
        if len(lines) == batch or seq == count:
            out.append((ns, gzip.compress(b"\n".join(lines) + b"\n", compresslevel=1), len(lines)))
            lines = []
    return out


def ingest(args) -> None:
    tokens = json.load(open(os.path.join(args.dir, "tokens.json")))
    url = urllib.parse.urlparse(args.url)
    rng = random.Random(args.seed)
    per_stream = args.events // args.streams
    base_ms = int(time.time() * 1000) - per_stream - 3_600_000
    started = time.monotonic()
    plans = [stream_batches(i, per_stream, args.size, args.batch, random.Random(rng.random()), base_ms) for i in range(args.streams)]
    prepared = time.monotonic() - started
    raw_bytes = sum(len(body) for plan in plans for _, body, _ in plan)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def sender(plan):
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
        for ns, body, n in plan:
            t0 = time.monotonic()
            conn.request("POST", "/v1/events", body=body, headers={
                "Authorization": f"Bearer {tokens[ns]}", "Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"})
            response = conn.getresponse()
            answer = response.read()
            elapsed = time.monotonic() - t0
            with lock:
                latencies.append(elapsed)
                if response.status != 200:
                    errors.append(f"{response.status}: {answer[:200]!r}")
                else:
                    doc = json.loads(answer)
                    if len(doc["accepted"]) != n:
                        errors.append(f"accepted {len(doc['accepted'])} of {n}: {doc['rejected'][:1]}")
        conn.close()

    threads = [threading.Thread(target=sender, args=(plan,)) for plan in plans]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    total = per_stream * args.streams
    latencies.sort()
    print(json.dumps({
        "events": total, "event_bytes": args.size, "streams": args.streams, "batch": args.batch, "seconds": round(wall, 3),
        "events_per_second": round(total / wall), "gzip_megabytes": round(raw_bytes / 1e6, 1), "prepare_seconds": round(prepared, 1),
        "batch_p50_ms": round(latencies[len(latencies) // 2] * 1000, 1), "batch_p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1),
        "errors": errors[:5], "error_count": len(errors),
    }))


def query(args) -> None:
    url = urllib.parse.urlparse(args.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
    rng = random.Random(args.seed)
    now_us = int(time.time() * 1e6)

    def timed(params: dict) -> tuple[float, int]:
        t0 = time.monotonic()
        conn.request("GET", "/v1/events?" + urllib.parse.urlencode(params), headers={"Authorization": f"Bearer {args.reader_token}"})
        response = conn.getresponse()
        body = response.read()
        elapsed = time.monotonic() - t0
        if response.status != 200:
            raise SystemExit(f"query failed {response.status}: {body[:300]!r}")
        return elapsed, len(json.loads(body)["events"])

    shapes = {
        "namespace + last 24h, newest 100": lambda: {"namespace": rng.choice(NAMESPACES), "since": now_us - 86_400_000_000, "limit": 100},
        "namespace + model + 2h window": lambda: {"namespace": rng.choice(NAMESPACES), "model": rng.choice(MODELS),
                                                 "since": now_us - 3_600_000_000 - rng.randrange(7_200_000_000), "limit": 100},
        "session": lambda: {"session": f"{rng.choice(NAMESPACES)}-session-{rng.randrange(50)}", "limit": 100},
        "detector (1% of events)": lambda: {"detector": "aws_access_key", "limit": 100},
        "free text, two words": lambda: {"q": " ".join(rng.sample(WORDS, 2)), "limit": 100},
        "free text + namespace": lambda: {"q": rng.choice(WORDS), "namespace": rng.choice(NAMESPACES), "limit": 100},
    }
    results = {}
    for name, make in shapes.items():
        timed(make())  # warm
        samples = []
        rows = 0
        for _ in range(args.rounds):
            elapsed, n = timed(make())
            samples.append(elapsed * 1000)
            rows += n
        samples.sort()
        results[name] = {"p50_ms": round(statistics.median(samples), 1), "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 1),
                         "max_ms": round(samples[-1], 1), "mean_rows": round(rows / args.rounds, 1)}
    print(json.dumps(results))


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    k = sub.add_parser("keys")
    k.add_argument("--dir", required=True)
    i = sub.add_parser("ingest")
    i.add_argument("--dir", required=True)
    i.add_argument("--url", required=True)
    i.add_argument("--events", type=int, default=100_000)
    i.add_argument("--size", type=int, default=1024)
    i.add_argument("--streams", type=int, default=4)
    i.add_argument("--batch", type=int, default=500)
    i.add_argument("--seed", type=int, default=7)
    q = sub.add_parser("query")
    q.add_argument("--dir", required=True)
    q.add_argument("--url", required=True)
    q.add_argument("--reader-token", required=True)
    q.add_argument("--rounds", type=int, default=100)
    q.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    {"keys": lambda: keys(args.dir), "ingest": lambda: ingest(args), "query": lambda: query(args)}[args.command]()


if __name__ == "__main__":
    main()
