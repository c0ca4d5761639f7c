"""End-to-end fixtures: the real chaperone-mock-upstream and chaperone-proxy binaries, driven by
the real official `openai` and `anthropic` SDKs.

Binaries come from $CHAPERONE_BIN_DIR (default: <repo>/.build/debug). Every process gets free
loopback ports and its own temporary directory; nothing waits with fixed sleeps: the mock is
ready when it prints its address, the proxy when its admin /readyz answers 200.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import anthropic
import httpx
import openai
import pytest

REPO = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("CHAPERONE_BIN_DIR", str(REPO / ".build" / "debug")))

REAL_KEY = "sk-chaperone-real-key-e2e"
OPENAI_AGENT_KEY = "sk-agent-fake-key"
ANTHROPIC_AGENT_KEY = "sk-ant-agent-fake-key"
AGENT_KEYS = (OPENAI_AGENT_KEY, ANTHROPIC_AGENT_KEY)
ANSWER = "Hello from the mock upstream. This answer arrived in pieces."

# Header the tests add to every request so the mock's record line can be found again; the
# proxy forwards it like any other agent header.
TEST_ID_HEADER = "x-e2e-test-id"

STARTUP_TIMEOUT = 20.0
EVENT_TIMEOUT = 10.0
STOP_TIMEOUT = 30.0


# --------------------------------------------------------------------------------------------
# small helpers


def free_port() -> int:
    """A TCP port nobody listens on right now (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def new_test_id() -> str:
    return uuid.uuid4().hex


def poll(
    probe: Callable[[], Any], *, timeout: float, interval: float = 0.02, what: str = "condition"
) -> Any:
    """Calls `probe` until it returns something truthy, or fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


def binary(name: str) -> Path:
    path = BIN_DIR / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"{path} is missing: build it first (swift build) or set CHAPERONE_BIN_DIR",
            pytrace=False,
        )
    return path


def stop_process(proc: subprocess.Popen, timeout: float = STOP_TIMEOUT) -> int:
    """SIGTERM, wait up to `timeout`, then SIGKILL. Returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode


def tail(path: Path, limit: int = 8000) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return "(no log)"
    text = data[-limit:].decode("utf-8", "replace")
    return ("…\n" if len(data) > limit else "") + text


# --------------------------------------------------------------------------------------------
# JSON-lines files written by the processes


class JSONLinesFile:
    """A JSON-lines file another process appends to. Incomplete last lines are ignored."""

    def __init__(self, path: Path):
        self.path = path

    def raw_lines(self) -> list[bytes]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        lines = data.split(b"\n")
        return [line for line in lines[:-1] if line]  # the last piece has no newline yet

    def entries(self) -> list[dict]:
        return [json.loads(line) for line in self.raw_lines()]

    def wait_for(
        self, predicate: Callable[[dict], bool], *, timeout: float = EVENT_TIMEOUT, what: str = "a matching line"
    ) -> dict:
        def probe():
            for entry in self.entries():
                if predicate(entry):
                    return entry
            return None

        return poll(probe, timeout=timeout, what=f"{what} in {self.path.name}")


class AuditLog(JSONLinesFile):
    """The proxy's audit file."""

    def events(self) -> list[dict]:
        return self.entries()

    def for_exchange(self, exchange_id: str) -> list[dict]:
        return [e for e in self.events() if e.get("exchange_id") == exchange_id]

    def wait_event(self, exchange_id: str, kind: str, *, timeout: float = EVENT_TIMEOUT) -> dict:
        return self.wait_for(
            lambda e: e.get("exchange_id") == exchange_id and e.get("kind") == kind,
            timeout=timeout,
            what=f"{kind} event of exchange {exchange_id}",
        )

    def wait_exchange(self, exchange_id: str, *, timeout: float = EVENT_TIMEOUT) -> tuple[dict, dict]:
        """The `llm.request` and `llm.response` events of one LLM exchange."""
        response = self.wait_event(exchange_id, "llm.response", timeout=timeout)
        request = self.wait_event(exchange_id, "llm.request", timeout=timeout)
        return request, response


class MockRecord(JSONLinesFile):
    """The mock upstream's record file: one line per exchange it served."""

    def wait_test_id(self, test_id: str, *, timeout: float = EVENT_TIMEOUT) -> dict:
        return self.wait_for(
            lambda e: e.get("headers", {}).get(TEST_ID_HEADER) == test_id,
            timeout=timeout,
            what=f"mock record of test id {test_id}",
        )

    def with_test_id(self, test_id: str) -> list[dict]:
        return [e for e in self.entries() if e.get("headers", {}).get(TEST_ID_HEADER) == test_id]


# --------------------------------------------------------------------------------------------
# processes


@dataclass
class MockUpstream:
    proc: subprocess.Popen
    port: int
    directory: Path
    record: MockRecord
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __repr__(self) -> str:
        return f"MockUpstream(pid={self.proc.pid}, port={self.port})"


def start_mock(directory: Path) -> MockUpstream:
    directory.mkdir(parents=True, exist_ok=True)
    record = directory / "mock.jsonl"
    log = directory / "mock.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                str(binary("chaperone-mock-upstream")),
                "--host", "127.0.0.1",
                "--port", "0",
                "--chunk-delay-ms", "2",
                "--expect-key", REAL_KEY,
                "--record", str(record),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    pattern = re.compile(rb"chaperone-mock-upstream listening on http://127\.0\.0\.1:(\d+)")

    def listening():
        if proc.poll() is not None:
            raise AssertionError(f"mock upstream exited with {proc.returncode}:\n{tail(log)}")
        match = pattern.search(log.read_bytes())
        return int(match.group(1)) if match else None

    try:
        port = poll(listening, timeout=STARTUP_TIMEOUT, what="the mock upstream to listen")
    except BaseException:
        stop_process(proc, timeout=5)
        raise
    return MockUpstream(proc=proc, port=port, directory=directory, record=MockRecord(record), log=log)


@dataclass
class Proxy:
    proc: subprocess.Popen
    port: int
    admin_port: int
    directory: Path
    config_path: Path
    audit: AuditLog
    log: Path
    extra: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __repr__(self) -> str:
        return f"Proxy(pid={self.proc.pid}, port={self.port}, admin_port={self.admin_port}, dir={self.directory})"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def openai(self, **kwargs) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=f"{self.url}/openai/v1", api_key=OPENAI_AGENT_KEY, max_retries=0, timeout=30.0, **kwargs
        )

    def anthropic(self, **kwargs) -> anthropic.Anthropic:
        return anthropic.Anthropic(
            base_url=f"{self.url}/anthropic", api_key=ANTHROPIC_AGENT_KEY, max_retries=0, timeout=30.0, **kwargs
        )

    def readyz(self) -> int | None:
        """Status of GET /readyz, or None when nothing answers."""
        try:
            return httpx.get(f"{self.admin_url}/readyz", timeout=2.0).status_code
        except httpx.TransportError:
            return None

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        return stop_process(self.proc, timeout)


def yaml_mapping(name: str, values: dict) -> str:
    """A block mapping `name:` with one `key: value` line per entry; values are written as JSON,
    which YAML reads as the same scalars, lists and maps (True → true, "x" → "x")."""
    return f"{name}:\n" + "".join(f"  {key}: {json.dumps(value)}\n" for key, value in values.items())


def proxy_config(
    directory: Path, *, port: int, admin_port: int, mock_port: int, dead_port: int,
    timeouts: str = "{ connect: 2s, idle: 10s, total: 60s }", limits: str | None = "{ max_request_body: 1MiB }",
    policy_file: Path | None = None, masking: dict | None = None, extra: str = "",
) -> str:
    key = directory / "key"
    text = f"""\
listen: {{ host: 127.0.0.1, port: {port} }}
admin: {{ host: 127.0.0.1, port: {admin_port} }}
upstreams:
  openai:
    base_url: http://127.0.0.1:{mock_port}
    provider: openai
    credential: {{ file: {key} }}
  anthropic:
    base_url: http://127.0.0.1:{mock_port}
    provider: anthropic
    credential: {{ file: {key} }}
  dead:                       # nothing listens there: for the unreachable-upstream test
    base_url: http://127.0.0.1:{dead_port}
    provider: openai
timeouts: {timeouts}
audit:
  file: {directory / "audit.jsonl"}
  stdout: false
"""
    if limits:
        text += f"limits: {limits}\n"
    if policy_file is not None:
        text += yaml_mapping("policy", {"file": str(policy_file)})
    if masking is not None:
        text += yaml_mapping("masking", masking)
    return text + extra


def start_proxy(directory: Path, mock: MockUpstream, *, policy: str | None = None, handover: dict | None = None, **config_options) -> Proxy:
    """Starts chaperone-proxy in front of `mock`. `policy` is the text of a policy file, written to
    policy.yaml next to the config; other options go to proxy_config (e.g. `masking={...}`).
    With `handover` (extra environment), the configuration goes in as chaperone-injector hands it
    to a sidecar: in $CHAPERONE_CONFIG, without --config."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "key").write_text(REAL_KEY + "\n")
    os.chmod(directory / "key", 0o600)
    if policy is not None:
        (directory / "policy.yaml").write_text(policy)
        config_options["policy_file"] = directory / "policy.yaml"
    last_error = ""
    for _attempt in range(3):  # a picked port can be taken in between; try fresh ones
        port, admin_port, dead_port = free_port(), free_port(), free_port()
        config = directory / "proxy.yaml"
        config.write_text(
            proxy_config(directory, port=port, admin_port=admin_port, mock_port=mock.port, dead_port=dead_port, **config_options)
        )
        log = directory / "proxy.log"
        with open(log, "ab") as err, open(directory / "proxy.stdout", "ab") as out:
            arguments = ["--config", str(config)] if handover is None else []
            env = None if handover is None else dict(os.environ, CHAPERONE_CONFIG=config.read_text(), **handover)
            proc = subprocess.Popen(
                [str(binary("chaperone-proxy")), *arguments],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        proxy = Proxy(
            proc=proc, port=port, admin_port=admin_port, directory=directory, config_path=config,
            audit=AuditLog(directory / "audit.jsonl"), log=log, extra={"dead_port": dead_port},
        )

        def ready():
            if proc.poll() is not None:
                return "exited"
            return proxy.readyz() == 200

        try:
            state = poll(ready, timeout=STARTUP_TIMEOUT, interval=0.05, what="the proxy's /readyz to answer 200")
        except BaseException:
            stop_process(proc, timeout=5)
            raise
        if state is True:
            return proxy
        last_error = tail(log)
        if "Address already in use" not in last_error:
            break
    raise AssertionError(f"chaperone-proxy did not start:\n{last_error}")


# --------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="session")
def workdir():
    base = os.environ.get("CHAPERONE_E2E_DIR")
    if base:
        path = Path(base)
        path.mkdir(parents=True, exist_ok=True)
        yield Path(tempfile.mkdtemp(prefix="run-", dir=path))
    else:
        with tempfile.TemporaryDirectory(prefix="chaperone-e2e-") as path:
            yield Path(path)


@pytest.fixture(scope="session")
def mock(workdir) -> Iterable[MockUpstream]:
    server = start_mock(workdir / "mock")
    _RUNNING["mock"] = server
    yield server
    _RUNNING.pop("mock", None)
    stop_process(server.proc, timeout=10)


@pytest.fixture(scope="session")
def proxy(workdir, mock) -> Iterable[Proxy]:
    instance = start_proxy(workdir / "proxy", mock)
    _RUNNING["proxy"] = instance
    yield instance
    _RUNNING.pop("proxy", None)
    code = instance.stop()
    if code != 0:
        print(f"\nchaperone-proxy exited with {code}; its log:\n{tail(instance.log)}")


@pytest.fixture(scope="session")
def oai(proxy) -> openai.OpenAI:
    return proxy.openai()


@pytest.fixture(scope="session")
def ant(proxy) -> anthropic.Anthropic:
    return proxy.anthropic()


@pytest.fixture
def test_id() -> str:
    return new_test_id()


# Running processes, so a failing test's report can carry the proxy's log.
_RUNNING: dict[str, Any] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.when in ("setup", "call"):
        processes = list(_RUNNING.items())
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, Proxy) and value is not _RUNNING.get("proxy"):
                processes.append(("test's own proxy", value))
        for name, process in processes:
            report.sections.append((f"{name} log (tail)", tail(process.log, 6000)))
            if isinstance(process, Proxy):
                report.sections.append((f"{name} audit file (tail)", tail(process.audit.path, 4000)))


# --------------------------------------------------------------------------------------------
# assertions shared by the tests


def exchange_id_of(headers) -> str:
    value = headers.get("x-chaperone-exchange")
    assert value, f"no x-chaperone-exchange header in {dict(headers)}"
    return value


def assert_upstream_headers(entry: dict, provider: str) -> None:
    """The upstream saw the real key in the provider's header, never the agent's key, and no
    x-chaperone-* header."""
    headers = entry["headers"]
    if provider == "openai":
        assert headers.get("authorization") == f"Bearer {REAL_KEY}", headers
        assert "x-api-key" not in headers, headers
    else:
        assert headers.get("x-api-key") == REAL_KEY, headers
        assert "authorization" not in headers, headers
    for name, value in headers.items():
        assert not name.startswith("x-chaperone-"), f"{name} reached the upstream"
        for key in AGENT_KEYS:
            assert key not in value, f"the agent's key leaked upstream in {name}: {value}"
            assert key not in name


def sse_event_types(body: bytes) -> list[str]:
    types = []
    for block in body.decode().split("\n\n"):
        for line in block.splitlines():
            if line.startswith("event:"):
                types.append(line[6:].strip())
            elif line.startswith("data:") and not types[-1:]:
                types.append("message")
    return types


def assert_common_response(
    request_event: dict, response_event: dict, record: dict, *, body: bytes, upstream: str, path: str, status: int = 200
) -> None:
    """The facts both events must agree on with the mock's record and the bytes the client got."""
    assert record["status"] == status
    assert record["completed"] is True
    assert response_event["http"]["response_sha256"] == record["response_sha256"], "the audit hashes the upstream's exact bytes"
    if body.startswith(b"event:") or body.startswith(b"data:"):
        # Streams are re-encoded by the masking redactor: text may regroup across deltas (a word
        # is held until it is complete), but the events and the assembled text are the same.
        assert sse_event_types(body), "no events reached the client"
    else:
        assert sha256_hex(body) == record["response_sha256"], "the client did not get the upstream's exact bytes"

    for event in (request_event, response_event):
        assert event["schema_version"] == "1.0"
        assert event["http"]["method"] == "POST"
        assert event["http"]["upstream"] == upstream
        assert event["http"]["path"] == path
        assert event["http"]["request_sha256"] == record["request_sha256"]
        assert event["source"]["self_reported"] is True
    assert request_event["seq"] < response_event["seq"]
    assert request_event["http"]["bytes_in"] > 0

    http = response_event["http"]
    assert http["status"] == status
    assert http["response_sha256"] == record["response_sha256"]
    assert http["bytes_out"] == len(body)
    assert http["bytes_in"] == request_event["http"]["bytes_in"]
    assert http["ttfb_us"] > 0
    assert http["duration_us"] >= http["ttfb_us"]
    assert response_event["outcome"] == "completed"
