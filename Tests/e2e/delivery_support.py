"""Helpers for the delivery (spool and shipper) tests: a proxy that ships to a real collector over
HTTPS, an agent that keeps a steady request rate flowing through it, a fault-injecting front for
the collector, and the end-of-test accounting: what the proxy produced against what the
collector stored, checked by `chaperonectl verify`."""

from __future__ import annotations

import json
import os
import random
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from collector_support import Collector, TLSFiles
from conftest import OPENAI_AGENT_KEY, AuditLog, poll, start_proxy, stop_process

# `make chaos` sets this: the long forms of the fault tests.
CHAOS = os.environ.get("CHAPERONE_CHAOS") == "1"


def shipping_config(collector_url: str, directory: Path, ca: Path | None, *, overflow: str = "fail-closed",
                    max_size: str = "64MiB", segment_size: str = "256KiB", timeout: str = "5s", spool_dir: Path | None = None) -> str:
    """The proxy's `collector` and `spool` sections, with quick retries for tests."""
    return (
        "collector:\n"
        f"  url: {collector_url}\n"
        f"  token_file: {directory / 'collector-token'}\n"
        + (f"  ca_bundle: {ca}\n" if ca else "")
        + "  batch_delay: 50ms\n  batch_events: 200\n  retry_initial: 50ms\n  retry_max: 1s\n"
        f"  timeout: {timeout}\n  shutdown_flush: 5s\n"
        "spool:\n"
        f"  directory: {spool_dir or directory / 'spool'}\n"
        f"  max_size: {max_size}\n  segment_size: {segment_size}\n  overflow: {overflow}\n"
    )


def start_shipping_proxy(directory: Path, mock, collector: Collector, *, url: str | None = None, as_injected: bool = False, **spool):
    """With `as_injected`, the proxy is configured the way chaperone-injector configures a sidecar:
    the YAML in $CHAPERONE_CONFIG and the collector's CA as PEM in $CHAPERONE_COLLECTOR_CA."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "collector-token").write_text(collector.issuer.token(lifetime=7200))
    ca = collector.tls.ca if collector.tls else None
    extra = shipping_config(url or collector.url, directory, None if as_injected else ca, **spool)
    handover = {"CHAPERONE_COLLECTOR_CA": ca.read_text()} if as_injected and ca else None
    return start_proxy(directory, mock, extra=extra, timeouts="{ connect: 2s, idle: 30s, total: 120s, shutdown_grace: 2s }",
                       handover=handover)


def metric(admin_url: str, name: str) -> float:
    text = httpx.get(f"{admin_url}/metrics", timeout=5).text
    total = 0.0
    found = False
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
            found = True
    return total if found else 0.0


def wait_drained(proxy, timeout: float = 60) -> None:
    """Until the proxy's spool holds nothing the collector has not acknowledged."""
    poll(lambda: metric(proxy.admin_url, "chaperone_proxy_spool_events") == 0, timeout=timeout, interval=0.1,
         what="the proxy's spool to drain into the collector")


class Agent:
    """Keeps `rate` chat requests per second flowing through the proxy from a few threads, and
    records each answer: status, exchange id, error code."""

    def __init__(self, proxy, rate: float = 50, threads: int = 4, model: str = "gpt-4o-mini"):
        self.proxy = proxy
        self.rate = rate
        self.threads = threads
        self.model = model
        self.results: list[dict] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def start(self) -> "Agent":
        self._stop.clear()
        self._workers = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(self.threads)]
        for worker in self._workers:
            worker.start()
        return self

    def stop(self) -> list[dict]:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=60)
        return self.results

    def _run(self, index: int) -> None:
        interval = self.threads / self.rate
        next_at = time.monotonic() + index * interval / self.threads
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                now = time.monotonic()
                if now < next_at:
                    time.sleep(next_at - now)
                next_at += interval
                body = {"model": self.model, "messages": [{"role": "user", "content": f"request {index}-{next_at:.3f}"}]}
                try:
                    response = client.post(f"{self.proxy.url}/openai/v1/chat/completions", json=body,
                                           headers={"Authorization": f"Bearer {OPENAI_AGENT_KEY}"})
                    result = {"status": response.status_code, "exchange": response.headers.get("x-chaperone-exchange"),
                              "error": response.headers.get("x-chaperone-error")}
                except httpx.HTTPError as error:
                    result = {"status": None, "exchange": None, "error": type(error).__name__}
                with self._lock:
                    self.results.append(result)


def stored_events(collector: Collector) -> list[dict]:
    """Every event the collector stored, in log order, with its exact line."""
    out: list[dict] = []
    start = 0
    while True:
        page = collector.get("/v1/log/records", start=start, limit=20000)["records"]
        if not page:
            return out
        for record in page:
            event = json.loads(record["line"])
            event["_line"] = record["line"]
            out.append(event)
        start = page[-1]["leaf_index"] + 1


@dataclass
class Accounting:
    produced: int
    stored: int
    lost: int
    duplicated: int
    streams: dict = field(default_factory=dict)
    proxy_gaps: list = field(default_factory=list)
    collector_gaps: list = field(default_factory=list)
    incomplete: list = field(default_factory=list)


def account(collector: Collector, audit: AuditLog, *, proxy_kills: int = 0, expect_gaps: bool = False) -> Accounting:
    """Events the proxy produced (its local audit file) against events the collector stored.
    Asserts: nothing produced is missing, nothing is stored twice, every stream is numbered
    1..N with no hole (except ranges the proxy itself declared dropped when `expect_gaps`),
    stored lines are byte-identical to the produced ones, and `chaperonectl verify` passes."""
    produced = [json.loads(line) for line in audit.raw_lines()]
    stored_all = stored_events(collector)
    own_streams = {e["stream_id"] for e in produced}
    stored = [e for e in stored_all if e["stream_id"] in own_streams]
    findings = [e for e in stored_all if e["kind"].startswith("integrity.") and e["stream_id"] not in own_streams]

    ids = [e["event_id"] for e in stored]
    duplicated = len(ids) - len(set(ids))
    by_id = {e["event_id"]: e for e in stored}
    lost = [e for e in produced if e["event_id"] not in by_id]
    for event in produced:
        if event["event_id"] in by_id:
            assert by_id[event["event_id"]]["_line"] == json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False), \
                "the stored line must be the proxy's canonical line, byte for byte"
    # A kill between the spool's write and the local file's may leave an event stored that the
    # local file never saw: at most one per kill.
    produced_ids = {e["event_id"] for e in produced}
    extra = [e for e in stored if e["event_id"] not in produced_ids]
    assert len(extra) <= proxy_kills, f"{len(extra)} stored events the proxy never produced: {extra[:3]}"

    proxy_gaps = [e["integrity"] for e in stored if e["kind"] == "integrity.gap"]
    declared = set()
    for gap in proxy_gaps:
        declared.update(range(gap["missing_from"], gap["missing_to"] + 1))
    streams = {}
    for stream in own_streams:
        seqs = sorted(e["seq"] for e in stored if e["stream_id"] == stream)
        expected = [s for s in range(1, seqs[-1] + 1) if s not in declared] if seqs else []
        assert seqs == expected, f"stream {stream}: stored seqs are not 1..{seqs[-1] if seqs else 0} " \
                                 f"(missing {sorted(set(expected) - set(seqs))[:10]}, extra {sorted(set(seqs) - set(expected))[:10]})"
        streams[stream] = len(seqs)
    if not expect_gaps:
        assert not proxy_gaps, f"the proxy dropped events: {proxy_gaps}"
    collector_gaps = [f["integrity"] for f in findings if f["kind"] == "integrity.gap"]
    unexpected = [f for f in findings if f["kind"] not in ("integrity.gap", "integrity.identity_mismatch")]
    assert not unexpected, f"integrity findings: {unexpected}"
    for gap in collector_gaps:
        assert set(range(gap["missing_from"], gap["missing_to"] + 1)) <= declared, f"a gap the proxy did not declare: {gap}"

    result = collector.ctl("verify", "--key", collector.verifier_key(), "--output", "json", check=False)
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["passed"], f"chaperonectl verify: {report['problems'][:5]}"
    assert len(report["known_gaps"]) == len(collector_gaps)

    incomplete = [e for e in stored if e.get("outcome") == "incomplete"]
    accounting = Accounting(produced=len(produced), stored=len(stored), lost=len(lost), duplicated=duplicated, streams=streams,
                            proxy_gaps=proxy_gaps, collector_gaps=collector_gaps, incomplete=incomplete)
    print(f"\naccounting: produced {accounting.produced}, stored {accounting.stored}, lost {accounting.lost}, "
          f"duplicated {accounting.duplicated}, streams {streams}, declared gaps {len(proxy_gaps)}, incomplete {len(incomplete)}")
    undeclared = [(e["seq"], e["kind"], e["event_id"]) for e in lost if e["seq"] not in declared or e["stream_id"] not in own_streams]
    assert not undeclared, f"{len(undeclared)} produced events never stored and not declared dropped, first: {undeclared[:5]}"
    assert expect_gaps or accounting.lost == 0
    assert accounting.duplicated == 0
    return accounting


def assert_answered_exchanges_stored(results: list[dict], collector_events: list[dict]) -> None:
    """Every exchange the agent got an answer for has its request (if any) and its end stored."""
    ends = {e["exchange_id"] for e in collector_events if e.get("outcome")}
    answered = [r["exchange"] for r in results if r["exchange"]]
    missing = [x for x in answered if x not in ends]
    assert not missing, f"{len(missing)} answered exchanges have no stored end, e.g. {missing[:3]}"


class FaultyFront:
    """A TLS front for the collector that fails on purpose: some requests get 500, some hang past
    the client's timeout, some are forwarded and committed but their answer is dropped (so the
    retry is a duplicate). The rest pass through."""

    def __init__(self, collector: Collector, tls: TLSFiles, *, fail: float = 0.2, hang: float = 0.1, drop_answer: float = 0.15, hang_seconds: float = 3):
        self.collector = collector
        self.fail, self.hang, self.drop_answer, self.hang_seconds = fail, hang, drop_answer, hang_seconds
        self.counts = {"fail": 0, "hang": 0, "drop_answer": 0, "pass": 0}
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(str(tls.cert), str(tls.key))
        self.random = random.Random(4711)
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._stop = True
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, raw: socket.socket) -> None:
        try:
            conn = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            return
        try:
            reader = conn.makefile("rb")
            while True:
                request_line = reader.readline()
                if not request_line:
                    return
                headers = {}
                while True:
                    line = reader.readline()
                    if line in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = line.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = reader.read(int(headers.get("content-length", "0")))
                roll = self.random.random()
                if roll < self.fail:
                    self.counts["fail"] += 1
                    payload = b'{"error":{"code":"injected","message":"fault injected by the test"}}'
                    conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: "
                                 + str(len(payload)).encode() + b"\r\n\r\n" + payload)
                    continue
                if roll < self.fail + self.hang:
                    self.counts["hang"] += 1
                    time.sleep(self.hang_seconds)
                    return
                forwarded = httpx.post(self.collector.url + "/v1/events", content=body, timeout=30, verify=self.collector.verify,
                                       headers={k: v for k, v in headers.items() if k in ("authorization", "content-type", "content-encoding")})
                if roll < self.fail + self.hang + self.drop_answer:
                    self.counts["drop_answer"] += 1
                    return
                self.counts["pass"] += 1
                conn.sendall(f"HTTP/1.1 {forwarded.status_code} OK\r\ncontent-type: application/json\r\ncontent-length: {len(forwarded.content)}\r\n\r\n".encode()
                             + forwarded.content)
        except (OSError, ssl.SSLError, httpx.HTTPError):
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass


def kill(proxy) -> None:
    proxy.proc.kill()
    proxy.proc.wait()


def stop(proxy) -> int:
    return stop_process(proxy.proc)


def tmpfs(path: Path, size: str) -> bool:
    """Mounts a tmpfs of `size` at `path` (root only); False when this machine cannot."""
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)], capture_output=True)
    return result.returncode == 0


def unmount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)
