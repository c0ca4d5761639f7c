#!/usr/bin/env python3
"""Open-loop AdmissionReview load for chaperone-injector (Python standard library only).

Subcommands (bench/injector/run.sh drives them; each prints --help):

  sanity       one request per fixture over TLS; checks the answers; writes them to a file
               (the echo server's canned answers)
  echo-server  a minimal single-threaded TLS HTTP/1.1 server that answers every POST with the
               injector's own answer for that fixture (uid swapped in): the client-overhead floor
  run          the load: requests scheduled every 1/rate s, whether or not earlier answers came
               back, over a few persistent keep-alive TLS connections; latency is measured from
               each request's *scheduled* send time, so a stall of the client or of the server
               counts against every request it delayed (no coordinated omission)
  noisy        exit 0 when a result file shows that other processes used more than a threshold
               of CPU during its measured window
  report       the final JSON (meta, idle figures, echo and injector runs) and markdown tables

How one request's latency is taken (`run`):
  scheduled  t0 + i / rate (perf_counter_ns)
  sent       when its bytes were handed to the TLS socket; later than scheduled when the
             client woke late or every connection was still busy (the wait is counted)
  done       right after the recv() that completed the HTTP response (head + Content-Length
             bytes); the JSON check of the answer runs after this timestamp
  latency    done - scheduled; "service" is done - sent; "lag" is sent - scheduled

The client is one thread with select() (microsecond timeouts) and non-blocking sockets, with the
garbage collector off during a phase. Timer wake-ups on a small VM come 100-200 µs late, so it
sleeps until --spin-us before each send and polls from there (this polling is part of the CPU
time it reports). Its own cost is measured in the same way against the echo server.
"""

from __future__ import annotations

import argparse
import base64
import collections
import gc
import gzip
import http.client
import json
import math
import os
import random
import re
import select
import socket
import ssl
import sys
import time
import urllib.request
from array import array
from pathlib import Path

UID_RE = re.compile(rb'"uid"\s*:\s*"([0-9a-f]{8}-be0c-4000-8000-([0-9a-f]{12}))"')
UID_PLACEHOLDER = "@@UID@@"
HISTOGRAM = "chaperone_injector_admission_duration_seconds"


def make_uid(seq: int, fixture: int) -> str:
    return f"{seq & 0xFFFFFFFF:08x}-be0c-4000-8000-{fixture:012x}"


# ------------------------------------------------------------------------------------ requests
class Fixtures:
    """The AdmissionReview bodies, serialized once, with a slot for the uid."""

    def __init__(self, directory: Path, names: list[str], host_header: str):
        self.names = names
        self.parts: list[tuple[bytes, bytes, bytes]] = []  # head, body-before-uid, body-after-uid
        self.body_sizes: list[int] = []
        for index, name in enumerate(names):
            review = json.loads((directory / f"{name}.json").read_text())
            review["request"]["uid"] = UID_PLACEHOLDER
            # Compact, as the API server's encoder writes it.
            body = json.dumps(review, separators=(",", ":")).encode()
            before, after = body.split(UID_PLACEHOLDER.encode())
            length = len(body) - len(UID_PLACEHOLDER) + len(make_uid(0, index))
            head = (
                "POST /mutate?timeout=10s HTTP/1.1\r\n"
                f"Host: {host_header}\r\n"
                "User-Agent: kube-apiserver-admission\r\n"
                "Accept: application/json, */*\r\n"
                "Content-Type: application/json\r\n"
                "Accept-Encoding: gzip\r\n"
                f"Content-Length: {length}\r\n\r\n"
            ).encode()
            self.parts.append((head, before, after))
            self.body_sizes.append(length)

        # The mix: a fixed pseudo-random order (seeded, so every run sends the same sequence), not
        # a plain rotation, which would tie each fixture to the same connections.
        rng = random.Random(20261122)
        self.order = [rng.randrange(len(names)) for _ in range(100_003)]

    def request(self, seq: int, index: int | None = None) -> tuple[int, str, bytes]:
        if index is None:
            index = self.order[seq % len(self.order)]
        uid = make_uid(seq, index)
        head, before, after = self.parts[index]
        return index, uid, head + before + uid.encode() + after


def parse_response(buffer: bytearray):
    """(status, headers, body, consumed) for one complete HTTP/1.1 response, or None."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    start = end + 4
    if "content-length" in headers:
        length = int(headers["content-length"])
        if len(buffer) < start + length:
            return None
        return status, headers, bytes(buffer[start:start + length]), start + length
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        position = start
        while True:
            line_end = buffer.find(b"\r\n", position)
            if line_end < 0:
                return None
            size = int(bytes(buffer[position:line_end]).split(b";")[0], 16)
            position = line_end + 2
            if size == 0:
                trailer_end = buffer.find(b"\r\n", position)
                if trailer_end < 0:
                    return None
                return status, headers, bytes(body), trailer_end + 2
            if len(buffer) < position + size + 2:
                return None
            body += buffer[position:position + size]
            position += size + 2
    raise ValueError("response with neither Content-Length nor chunked encoding")


def check_answer(status: int, headers: dict, body: bytes, uid: str) -> str | None:
    """None when the answer is a 200 AdmissionReview for `uid`, else what is wrong."""
    if status != 200:
        return f"status {status}: {body[:200]!r}"
    if headers.get("content-encoding", "").lower() == "gzip":
        body = gzip.decompress(body)
    try:
        answer = json.loads(body)
        response = answer["response"]
    except (ValueError, KeyError, TypeError) as error:
        return f"not an AdmissionReview: {error}"
    if answer.get("kind") != "AdmissionReview" or response.get("uid") != uid:
        return f"uid {response.get('uid')!r} for request {uid}"
    if "allowed" not in response:
        return "no allowed field"
    return None


def client_context(ca_file: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


# ------------------------------------------------------------------------------------ /proc
CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def proc_status(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def system_busy_ticks() -> int:
    with open("/proc/stat") as handle:
        fields = handle.readline().split()
    # user nice system idle iowait irq softirq steal: busy = all but idle and iowait
    return sum(int(fields[i]) for i in (1, 2, 3, 6, 7, 8))


def self_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


# ------------------------------------------------------------------------------------ metrics
def scrape(url: str) -> dict:
    """The admission histogram: cumulative bucket counts by upper bound, count and sum."""
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    buckets, count, total = {}, 0.0, 0.0
    for line in text.splitlines():
        if line.startswith(HISTOGRAM + "_bucket"):
            le = re.search(r'le="([^"]+)"', line).group(1)
            buckets[le] = float(line.rsplit(None, 1)[1])
        elif line.startswith(HISTOGRAM + "_count"):
            count = float(line.rsplit(None, 1)[1])
        elif line.startswith(HISTOGRAM + "_sum"):
            total = float(line.rsplit(None, 1)[1])
    return {"buckets": buckets, "count": count, "sum": total}


def histogram_delta(before: dict, after: dict) -> dict:
    bounds = sorted(after["buckets"], key=lambda le: math.inf if le == "+Inf" else float(le))
    cumulative = [(le, after["buckets"][le] - before["buckets"].get(le, 0.0)) for le in bounds]
    return {
        "buckets": [{"le": le, "cumulative": int(c)} for le, c in cumulative],
        "count": int(after["count"] - before["count"]),
        "sum_s": after["sum"] - before["sum"],
    }


def histogram_quantile(delta: dict, q: float) -> float | None:
    """Prometheus' histogram_quantile: linear inside the bucket that holds the rank."""
    count = delta["count"]
    if count == 0:
        return None
    rank = q * count
    lower, below = 0.0, 0
    for bucket in delta["buckets"]:
        upper = math.inf if bucket["le"] == "+Inf" else float(bucket["le"])
        if bucket["cumulative"] >= rank:
            if upper == math.inf:
                return lower
            inside = bucket["cumulative"] - below
            return lower + (upper - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = upper, bucket["cumulative"]
    return lower


# ------------------------------------------------------------------------------------ client
class Connection:
    def __init__(self, index: int, host: str, port: int, context: ssl.SSLContext, server_name: str):
        self.index = index
        raw = socket.create_connection((host, port), timeout=10)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = context.wrap_socket(raw, server_hostname=server_name)  # verifies the chain and name
        self.sock.setblocking(False)
        self.pending = None  # (seq, fixture, uid, scheduled_ns, sent_ns)
        self.unsent = b""
        self.buffer = bytearray()
        self.requests = 0
        self.last_used = 0

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def percentile(sorted_values, p: float):
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize_us(values_ns) -> dict:
    values = sorted(values_ns)
    out = {"n": len(values)}
    for name, p in (("p50", 50), ("p90", 90), ("p99", 99), ("p99_9", 99.9)):
        value = percentile(values, p)
        out[name] = None if value is None else round(value / 1000.0, 1)
    out["max"] = round(values[-1] / 1000.0, 1) if values else None
    out["mean"] = round(sum(values) / len(values) / 1000.0, 1) if values else None
    return out


class ServerGone(Exception):
    pass


class LoadClient:
    def __init__(self, args, fixtures: Fixtures):
        self.args = args
        self.fixtures = fixtures
        self.context = client_context(args.ca)
        self.connections = [self.connect(i) for i in range(args.connections)]
        self.next_connection = 0
        self.seq = 0
        self.errors: collections.Counter = collections.Counter()
        self.error_examples: list[str] = []
        self.reconnects = 0
        self.rss_samples: list[int] = []
        self.last_done = 0
        self.raw_rows: list[tuple[int, int, int, int, int]] = []

    def connect(self, index: int) -> Connection:
        return Connection(index, self.args.host, self.args.port, self.context, self.args.server_name)

    def fail(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if len(self.error_examples) < 10:
            self.error_examples.append(f"{kind}: {detail}")

    def reset(self, connection: Connection) -> None:
        connection.close()
        self.reconnects += 1
        try:
            self.connections[connection.index] = self.connect(connection.index)
        except OSError as error:
            raise ServerGone(f"cannot reconnect: {error}") from error

    def pick_idle(self):
        count = len(self.connections)
        if self.args.pick == "lifo":  # what Go's http.Transport does: the most recently used idle one
            idle = [c for c in self.connections if c.pending is None]
            return max(idle, key=lambda c: c.last_used) if idle else None
        for step in range(count):
            connection = self.connections[(self.next_connection + step) % count]
            if connection.pending is None:
                self.next_connection = (connection.index + 1) % count
                return connection
        return None

    def phase(self, rate: float, duration: float, pid: int | None, record: bool) -> dict:
        """Schedules rate*duration requests at fixed intervals; returns the phase's figures."""
        total = int(round(rate * duration))
        interval = 1e9 / rate
        latency, service, lag, fixture_of = array("q"), array("q"), array("q"), array("b")
        queue: collections.deque = collections.deque()
        blocked: set[int] = set()
        clock = time.perf_counter_ns
        for connection in self.connections:
            connection.last_used = 0
        self.raw_rows = []
        rss_every = 100_000_000
        spin_s = self.args.spin_us / 1e6
        next_rss = 0
        gc.collect()
        gc.disable()
        try:
            t0 = clock() + 2_000_000
            wall0, cpu0 = time.time(), self_cpu_seconds()
            server0 = proc_cpu_ticks(pid) if pid else 0
            busy0 = system_busy_ticks()
            issued = 0
            deadline_ns = 10_000_000_000  # a request unanswered for 10 s is an error
            while issued < total or queue or any(c.pending for c in self.connections):
                now = clock()
                while issued < total and t0 + int(issued * interval) <= now:
                    queue.append((self.seq, t0 + int(issued * interval)))
                    self.seq += 1
                    issued += 1
                while queue:
                    connection = self.pick_idle()
                    if connection is None:
                        # Every connection is waiting for an answer: these requests queue in the
                        # client (server-caused delay, counted in their latency).
                        blocked.update(seq for seq, _ in queue)
                        break
                    seq, scheduled = queue.popleft()
                    fixture, uid, data = self.fixtures.request(seq)
                    sent = clock()
                    try:
                        written = connection.sock.send(data)
                        connection.unsent = data[written:]
                    except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                        connection.unsent = data
                    except OSError as error:
                        self.fail("send", str(error))
                        self.reset(connection)
                        continue
                    connection.pending = (seq, fixture, uid, scheduled, sent)
                    connection.requests += 1
                    connection.last_used = sent
                # Sleep until the next scheduled send or an answer; select() takes microseconds.
                now = clock()
                if issued < total:
                    timeout = max(0.0, (t0 + int(issued * interval) - now) / 1e9)
                else:
                    timeout = 0.05
                # Timer wake-ups come late (about 100-200 µs on a small VM): sleep until
                # spin_s before the next send, then poll (select with no timeout) until it is due.
                sleep_for = timeout - spin_s if timeout > spin_s else 0.0
                if pid and record and now >= next_rss and timeout > 0.001:
                    self.rss_samples.append(proc_status(pid, "VmRSS"))
                    next_rss = now + rss_every
                    continue
                readers = [c for c in self.connections if c.pending is not None and not c.unsent]
                writers = [c for c in self.connections if c.unsent]
                readable, writable, _ = select.select(readers, writers, [], sleep_for)
                for connection in writable:
                    try:
                        written = connection.sock.send(connection.unsent)
                        connection.unsent = connection.unsent[written:]
                    except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                        pass
                    except OSError as error:
                        self.fail("send", str(error))
                        self.reset(connection)
                for connection in readable:
                    self.receive(connection, latency, service, lag, fixture_of, clock)
                now = clock()
                for connection in list(self.connections):
                    if connection.pending and now - connection.pending[4] > deadline_ns:
                        self.fail("timeout", f"request {connection.pending[2]} unanswered after 10 s")
                        self.reset(connection)
            wall1, cpu1 = time.time(), self_cpu_seconds()
            server1 = proc_cpu_ticks(pid) if pid else 0
            busy1 = system_busy_ticks()
        finally:
            gc.enable()
        wall = wall1 - wall0
        result = {
            "scheduled": total,
            "completed": len(latency),
            "wall_s": round(wall, 3),
            # answers over the time from the first scheduled send to the last answer
            "achieved_rps": round(len(latency) * 1e9 / (self.last_done - t0), 1) if self.last_done > t0 else None,
            "latency_us": summarize_us(latency),
            "service_us": summarize_us(service),
            "lag_us": summarize_us(lag),
            "waited_for_connection": len(blocked),
            "per_fixture": {
                name: summarize_us([latency[i] for i in range(len(latency)) if fixture_of[i] == index])
                for index, name in enumerate(self.fixtures.names)
            },
            "client_cpu_s": round(cpu1 - cpu0, 3),
            "client_cores": round((cpu1 - cpu0) / wall, 3),
            "client_cpu_us_per_req": round((cpu1 - cpu0) * 1e6 / max(1, len(latency)), 1),
            "system_busy_cores": round((busy1 - busy0) / CLK_TCK / wall, 3),
        }
        if pid:
            server_s = (server1 - server0) / CLK_TCK
            result["server_cpu_s"] = round(server_s, 3)
            result["server_cores"] = round(server_s / wall, 3)
            result["server_cpu_us_per_req"] = round(server_s * 1e6 / max(1, len(latency)), 1)
        # What the rest of the machine used: all busy time minus this client and the server.
        others = (busy1 - busy0) / CLK_TCK - (cpu1 - cpu0) - (result.get("server_cpu_s") or 0.0)
        result["others_cores"] = round(max(0.0, others) / wall, 3)
        return result

    def receive(self, connection, latency, service, lag, fixture_of, clock) -> None:
        done = None
        try:
            while True:
                chunk = connection.sock.recv(65536)
                if not chunk:
                    self.fail("closed", f"connection {connection.index} closed by the server")
                    self.reset(connection)
                    return
                connection.buffer += chunk
                if not connection.sock.pending():
                    parsed = parse_response(connection.buffer)
                    if parsed is not None:
                        done = clock()
                        break
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            parsed = parse_response(connection.buffer)
            if parsed is None:
                return
            done = clock()
        except (OSError, ValueError) as error:
            self.fail("read", str(error))
            self.reset(connection)
            return
        status, headers, body, consumed = parsed
        del connection.buffer[:consumed]
        seq, fixture, uid, scheduled, sent = connection.pending
        connection.pending = None
        self.last_done = done
        latency.append(done - scheduled)
        service.append(done - sent)
        lag.append(sent - scheduled)
        fixture_of.append(fixture)
        self.raw_rows.append((scheduled, sent, done, fixture, connection.index))
        problem = check_answer(status, headers, body, uid)
        if problem:
            self.fail("answer", problem)
        if headers.get("connection", "").lower() == "close":
            self.reset(connection)


def command_run(args) -> int:
    try:
        return run_load(args)
    except ServerGone as error:
        print(f"[admission-load] {args.label}: {error}; no result written", file=sys.stderr)
        return 2


def run_load(args) -> int:
    fixtures = Fixtures(Path(args.fixtures), args.names.split(","), f"{args.server_name}:{args.port}")
    client = LoadClient(args, fixtures)
    pid = args.pid
    log = lambda message: print(f"[admission-load] {message}", file=sys.stderr, flush=True)
    log(f"{args.label}: {args.connections} TLS connections to {args.host}:{args.port}; warm-up {args.warmup:g} s, "
        f"then {args.duration:g} s at {args.rate:g} req/s")
    if args.warmup > 0:
        warm = client.phase(args.rate, args.warmup, pid, record=False)
        log(f"{args.label}: warm-up p50 {warm['latency_us']['p50']} µs, p99 {warm['latency_us']['p99']} µs, "
            f"errors {sum(client.errors.values())}")
    client.errors.clear()
    client.error_examples.clear()
    warm_errors = client.reconnects
    before = scrape(args.metrics_url) if args.metrics_url else None
    requests0 = [c.requests for c in client.connections]
    result = client.phase(args.rate, args.duration, pid, record=True)
    after = scrape(args.metrics_url) if args.metrics_url else None
    result.update({
        "label": args.label,
        "rate": args.rate,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "connections": args.connections,
        "pick": args.pick,
        "spin_us": args.spin_us,
        "fixtures": fixtures.names,
        "request_body_bytes": dict(zip(fixtures.names, fixtures.body_sizes)),
        "requests_per_connection": [c.requests - r for c, r in zip(client.connections, requests0)],
        "tls": {"version": client.connections[0].sock.version(), "cipher": client.connections[0].sock.cipher()[0]},
        "errors": dict(client.errors),
        "error_count": sum(client.errors.values()),
        "error_examples": client.error_examples,
        "reconnects": client.reconnects - warm_errors,
    })
    if pid:
        result["rss_max_kb"] = max(client.rss_samples) if client.rss_samples else proc_status(pid, "VmRSS")
        result["rss_end_kb"] = proc_status(pid, "VmRSS")
        result["hwm_kb"] = proc_status(pid, "VmHWM")
        result["threads"] = proc_status(pid, "Threads")
    if before is not None and after is not None:
        delta = histogram_delta(before, after)
        delta["quantiles_us"] = {
            name: (None if (v := histogram_quantile(delta, q)) is None else round(v * 1e6, 1))
            for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99_9", 0.999))
        }
        delta["mean_us"] = round(delta["sum_s"] / delta["count"] * 1e6, 1) if delta["count"] else None
        result["server_histogram"] = delta
    for connection in client.connections:
        connection.close()
    if args.raw:
        # One line per answer: when it was scheduled (Unix time, s), latency, service and lag (µs).
        offset = time.time_ns() - time.perf_counter_ns()
        with open(args.raw, "w") as handle:
            handle.write("scheduled_unix_s,latency_us,service_us,lag_us,fixture,connection\n")
            for scheduled, sent, done, fixture, index in client.raw_rows:
                handle.write(f"{(scheduled + offset) / 1e9:.6f},{(done - scheduled) / 1e3:.1f},{(done - sent) / 1e3:.1f},"
                             f"{(sent - scheduled) / 1e3:.1f},{fixtures.names[fixture]},{index}\n")
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    lat = result["latency_us"]
    log(f"{args.label}: {result['completed']} answers at {result['achieved_rps']} req/s; p50 {lat['p50']} µs, "
        f"p99 {lat['p99']} µs, p99.9 {lat['p99_9']} µs, max {lat['max']} µs; errors {result['error_count']}; "
        f"others used {result['others_cores']} cores")
    return 1 if result["error_count"] else 0


# ------------------------------------------------------------------------------------ sanity
def command_sanity(args) -> int:
    names = args.names.split(",")
    fixtures = Fixtures(Path(args.fixtures), names, f"{args.server_name}:{args.port}")
    context = client_context(args.ca)
    canned, summary = {}, {}
    # http.client verifies the name it connects to, so connect by the server name.
    connection = http.client.HTTPSConnection(args.server_name, args.port, context=context, timeout=10)
    for round_ in range(args.rounds):
        for index, name in enumerate(names):
            _, uid, data = fixtures.request(round_ * len(names) + index, index)
            body = data.split(b"\r\n\r\n", 1)[1]
            connection.request("POST", "/mutate?timeout=10s", body=body,
                               headers={"Content-Type": "application/json", "Accept": "application/json"})
            response = connection.getresponse()
            payload = response.read()
            problem = check_answer(response.status, {k.lower(): v for k, v in response.getheaders()}, payload, uid)
            if problem:
                print(f"[admission-load] sanity: {name}: {problem}", file=sys.stderr)
                return 1
            answer = json.loads(payload)["response"]
            if round_ == 0:
                operations = json.loads(base64.b64decode(answer["patch"])) if answer.get("patch") else []
                summary[name] = {
                    "request_bytes": len(body),
                    "response_bytes": len(payload),
                    "allowed": answer["allowed"],
                    "patch_operations": len(operations),
                    "warnings": len(answer.get("warnings") or []),
                }
                canned[str(index)] = payload.decode().replace(uid, UID_PLACEHOLDER)
    connection.close()
    Path(args.out).write_text(json.dumps({"canned": canned, "summary": summary}, indent=2) + "\n")
    for name, info in summary.items():
        print(f"[admission-load] sanity: {name}: {info}", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------------------ echo server
def command_echo_server(args) -> int:
    """Answers each AdmissionReview with the injector's recorded answer for that fixture."""
    canned = {int(k): v for k, v in json.loads(Path(args.canned).read_text())["canned"].items()}
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(args.cert, args.key)
    listener = socket.create_server(("127.0.0.1", args.port), backlog=64)
    print(f"echo server listening on 127.0.0.1:{listener.getsockname()[1]}", file=sys.stderr, flush=True)
    clients: dict[socket.socket, bytearray] = {}
    while True:
        readable, _, _ = select.select([listener, *clients], [], [])
        for sock in readable:
            if sock is listener:
                raw, _ = listener.accept()
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                try:
                    tls = context.wrap_socket(raw, server_side=True)
                except (ssl.SSLError, OSError):
                    raw.close()
                    continue
                tls.setblocking(False)
                clients[tls] = bytearray()
                continue
            buffer = clients[sock]
            try:
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise ConnectionError
                    buffer += chunk
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
            except (OSError, ConnectionError):
                sock.close()
                del clients[sock]
                continue
            while True:
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    break
                match = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", bytes(buffer[:end + 2]))
                length = int(match.group(1)) if match else 0
                if len(buffer) < end + 4 + length:
                    break
                body = bytes(buffer[end + 4:end + 4 + length])
                del buffer[:end + 4 + length]
                found = UID_RE.search(body)
                if found:
                    uid, fixture = found.group(1).decode(), int(found.group(2), 16)
                    payload = canned.get(fixture, canned[0]).replace(UID_PLACEHOLDER, uid).encode()
                    status = "200 OK"
                else:
                    payload, status = b'{"error":"no uid"}', "400 Bad Request"
                head = (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(payload)}\r\n\r\n").encode()
                sock.setblocking(True)  # answers are a few KB: one blocking send
                sock.sendall(head + payload)
                sock.setblocking(False)


# ------------------------------------------------------------------------------------ hiccups
def command_hiccup(args) -> int:
    """How late 1 ms sleeps wake up on this machine: the floor under every thread wake-up."""
    late = array("q")
    busy0, end = system_busy_ticks(), time.perf_counter_ns() + int(args.seconds * 1e9)
    wall0 = time.time()
    while time.perf_counter_ns() < end:
        start = time.perf_counter_ns()
        time.sleep(0.001)
        late.append(time.perf_counter_ns() - start - 1_000_000)
    busy = (system_busy_ticks() - busy0) / CLK_TCK / (time.time() - wall0)
    result = {"seconds": args.seconds, "sleeps": len(late), "late_us": summarize_us(late),
              "over_1ms": sum(1 for v in late if v > 1_000_000), "over_2ms": sum(1 for v in late if v > 2_000_000),
              "over_5ms": sum(1 for v in late if v > 5_000_000), "system_busy_cores": round(busy, 3)}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    figures = result["late_us"]
    print(f"[admission-load] 1 ms sleeps wake late by p50 {figures['p50']} µs, p99 {figures['p99']} µs, "
          f"p99.9 {figures['p99_9']} µs, max {figures['max']} µs; {result['over_2ms']} of {len(late)} over 2 ms",
          file=sys.stderr)
    return 0


# ------------------------------------------------------------------------------------ report
def command_noisy(args) -> int:
    result = json.loads(Path(args.result).read_text())
    return 0 if result["others_cores"] > args.threshold else 1


def fmt(value, digits=0) -> str:
    if value is None:
        return "–"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def command_report(args) -> int:
    meta = dict(item.split("=", 1) for item in args.meta)
    sanity = json.loads(Path(args.sanity).read_text())["summary"]
    injector = json.loads(Path(args.injector).read_text())
    echo = json.loads(Path(args.echo).read_text()) if args.echo and Path(args.echo).exists() else None
    idle = json.loads(Path(args.idle).read_text())
    hiccup = json.loads(Path(args.hiccup).read_text()) if args.hiccup and Path(args.hiccup).exists() else None
    target_p99 = float(meta.get("target_p99_us", 2000))
    out = {
        "meta": meta,
        "fixtures": sanity,
        "idle": idle,
        "injector": injector,
        "echo": echo,
        "hiccup": hiccup,
        "target": {"p99_us": target_p99, "rate": injector["rate"]},
        "met": injector["latency_us"]["p99"] is not None and injector["latency_us"]["p99"] <= target_p99
        and injector["error_count"] == 0,
    }
    if args.injector_log and Path(args.injector_log).exists():
        # The injector logs each admission with its handler time (duration_us, the same interval
        # as the histogram); the measured window is the last `completed` of them (the echo run
        # sends the injector nothing).
        durations = []
        with open(args.injector_log) as handle:
            for line in handle:
                if '"admission"' in line:
                    try:
                        durations.append(int(json.loads(line)["duration_us"]) * 1000)
                    except (ValueError, KeyError):
                        pass
        if len(durations) >= injector["completed"]:
            out["server_log_us"] = summarize_us(durations[-injector["completed"]:])
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")

    lines = []
    rate = injector["rate"]
    lat = injector["latency_us"]
    lines.append(f"## chaperone-injector at {rate:g} req/s ({injector['connections']} connections, "
                 f"{injector['duration_s']:g} s measured) — p99 target {target_p99:,.0f} µs: "
                 f"**{'met' if out['met'] else 'missed'}**\n")
    lines.append("Latency from the scheduled send time; \"from send\" starts when the client actually sent (it "
                 "leaves out the client's late wake-ups, \"lag\").\n")
    lines.append("| run | answers | req/s | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | p99 from send µs | lag p99 µs | "
                 "waited for a connection | errors | others' cores |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for run in ([echo] if echo else []) + [injector]:
        l = run["latency_us"]
        lines.append(f"| {run['label']} | {run['completed']:,} | {fmt(run['achieved_rps'], 1)} | {fmt(l['p50'])} | "
                     f"{fmt(l['p90'])} | {fmt(l['p99'])} | {fmt(l['p99_9'])} | {fmt(l['max'])} | {fmt(run['service_us']['p99'])} | "
                     f"{fmt(run['lag_us']['p99'])} | {run.get('waited_for_connection', '–')} | {run['error_count']} | "
                     f"{fmt(run['others_cores'], 2)} |")
    lines.append("")
    hist = injector.get("server_histogram")
    if hist:
        lines.append(f"Server-side `{HISTOGRAM}` over the measured window: {hist['count']:,} observations, "
                     f"mean {fmt(hist['mean_us'], 1)} µs; interpolated p50 {fmt(hist['quantiles_us']['p50'])} µs, "
                     f"p99 {fmt(hist['quantiles_us']['p99'])} µs\n")
        if "server_log_us" in out:
            figures = out["server_log_us"]
            lines.append(f"The same interval from the injector's own log lines (`duration_us`, exact): p50 {fmt(figures['p50'])} µs, "
                         f"p90 {fmt(figures['p90'])} µs, p99 {fmt(figures['p99'])} µs, p99.9 {fmt(figures['p99_9'])} µs, "
                         f"max {fmt(figures['max'])} µs\n")
        lines.append("| ≤ le | observations | cumulative % |")
        lines.append("|---|---:|---:|")
        below = 0
        for bucket in hist["buckets"]:
            share = 100.0 * bucket["cumulative"] / hist["count"] if hist["count"] else 0.0
            label = bucket["le"] if bucket["le"] == "+Inf" else f"{float(bucket['le']) * 1e3:g} ms"
            lines.append(f"| {label} | {bucket['cumulative'] - below:,} | {share:.2f} |")
            below = bucket["cumulative"]
        lines.append("")
    lines.append("| per fixture | request bytes | answer bytes | patch ops | p50 µs | p99 µs | max µs |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|")
    for name, figures in injector["per_fixture"].items():
        info = sanity.get(name, {})
        lines.append(f"| {name} | {fmt(info.get('request_bytes'))} | {fmt(info.get('response_bytes'))} | "
                     f"{info.get('patch_operations', '–')} | {fmt(figures['p50'])} | {fmt(figures['p99'])} | {fmt(figures['max'])} |")
    lines.append("")
    lines.append("| process | CPU µs/req | cores | RSS idle MiB | RSS max MiB | VmHWM MiB | threads |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|")
    lines.append(f"| chaperone-injector | {fmt(injector.get('server_cpu_us_per_req'), 1)} | {fmt(injector.get('server_cores'), 3)} | "
                 f"{fmt(idle.get('rss_kb', 0) / 1024, 1)} | {fmt(injector.get('rss_max_kb', 0) / 1024, 1)} | "
                 f"{fmt(injector.get('hwm_kb', 0) / 1024, 1)} | {injector.get('threads', '–')} |")
    if echo:
        lines.append(f"| echo server (Python) | {fmt(echo.get('server_cpu_us_per_req'), 1)} | {fmt(echo.get('server_cores'), 3)} | – | – | – | 1 |")
    lines.append(f"| load client (Python), injector run | {fmt(injector['client_cpu_us_per_req'], 1)} | {fmt(injector['client_cores'], 3)} | – | – | – | 1 |")
    lines.append("")
    if hiccup:
        h = hiccup["late_us"]
        lines.append(f"Timer noise ({hiccup['seconds']:g} s of 1 ms sleeps before the runs): wake-ups late by p50 "
                     f"{fmt(h['p50'])} µs, p99 {fmt(h['p99'])} µs, p99.9 {fmt(h['p99_9'])} µs, max {fmt(h['max'])} µs; "
                     f"{hiccup['over_2ms']} of {hiccup['sleeps']:,} over 2 ms.\n")
    if injector["error_count"]:
        lines.append(f"**Errors**: {injector['errors']}; e.g. {injector['error_examples'][:3]}\n")
    print("\n".join(lines))
    return 0


# ------------------------------------------------------------------------------------ main
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def target(p):
        p.add_argument("--host", default="127.0.0.1", help="address to connect to")
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--server-name", default="localhost", help="TLS server name (SNI and verification)")
        p.add_argument("--ca", required=True, help="CA certificate that must have signed the server's")
        p.add_argument("--fixtures", required=True, help="directory of AdmissionReview JSON files")
        p.add_argument("--names", required=True, help="comma-separated fixture names, mixed in about equal shares in a fixed pseudo-random order")

    p = sub.add_parser("run", help="open-loop load")
    target(p)
    p.add_argument("--rate", type=float, default=200.0, help="requests per second (default 200)")
    p.add_argument("--duration", type=float, default=30.0, help="measured seconds (default 30)")
    p.add_argument("--warmup", type=float, default=5.0, help="warm-up seconds, same rate, not reported (default 5)")
    p.add_argument("--connections", type=int, default=4, help="persistent TLS connections (default 4)")
    p.add_argument("--pick", choices=["round-robin", "lifo"], default="round-robin",
                   help="which idle connection takes the next request (default round-robin; lifo is Go's choice)")
    p.add_argument("--spin-us", type=float, default=500.0,
                   help="wake this long before each scheduled send and poll until it is due, as timer "
                        "wake-ups come late (default 500; 0 sleeps until the send time)")
    p.add_argument("--pid", type=int, help="server process: CPU time and RSS are read from /proc")
    p.add_argument("--metrics-url", help="Prometheus endpoint scraped before and after the measured window")
    p.add_argument("--raw", help="CSV of every measured answer (scheduled time, latency, service, lag)")
    p.add_argument("--label", default="injector")
    p.add_argument("--out", required=True)
    p.set_defaults(func=command_run)

    p = sub.add_parser("sanity", help="one request per fixture; records the answers")
    target(p)
    p.add_argument("--rounds", type=int, default=1, help="times through the fixtures (default 1)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=command_sanity)

    p = sub.add_parser("echo-server", help="TLS server replaying recorded answers")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--canned", required=True, help="the file `sanity --out` wrote")
    p.set_defaults(func=command_echo_server)

    p = sub.add_parser("noisy", help="exit 0 when others used more than --threshold cores")
    p.add_argument("result")
    p.add_argument("--threshold", type=float, default=0.3)
    p.set_defaults(func=command_noisy)

    p = sub.add_parser("hiccup", help="how late 1 ms sleeps wake up (the machine's timer noise)")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--out", required=True)
    p.set_defaults(func=command_hiccup)

    p = sub.add_parser("report", help="final JSON and markdown")
    p.add_argument("--injector", required=True)
    p.add_argument("--echo")
    p.add_argument("--sanity", required=True)
    p.add_argument("--idle", required=True)
    p.add_argument("--hiccup", help="the file `hiccup --out` wrote")
    p.add_argument("--injector-log", help="the injector's JSON log (admission lines carry duration_us)")
    p.add_argument("--meta", action="append", default=[])
    p.add_argument("--out", required=True)
    p.set_defaults(func=command_report)

    args = parser.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
