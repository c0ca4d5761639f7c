"""Lossless delivery from the sidecar's spool to the collector, under the faults the issue names:
the collector down while the agent keeps 50 requests/s flowing, the collector killed mid-batch,
the proxy killed mid-stream and restarted on its spool, the spool full and the disk full, and a
collector that answers 500 or times out now and then. Every test ends with the same accounting
(`delivery_support.account`): events produced vs stored, 0 lost, 0 duplicated, chains intact,
`chaperonectl verify` passing. `make chaos` runs the long forms (CHAPERONE_CHAOS=1)."""

from __future__ import annotations

import json
import threading
import time

import httpx
import openai
import pytest

from collector_support import Collector, TLSFiles
from conftest import poll
from delivery_support import (CHAOS, Agent, FaultyFront, account, assert_answered_exchanges_stored, kill, metric, start_shipping_proxy,
                              stored_events, stop, tmpfs, unmount, wait_drained)


def requests_until_refused(client: openai.OpenAI, limit: int) -> openai.APIStatusError | None:
    """Sends ~4 KB prompts until the proxy refuses one; returns the refusal (None if none was)."""
    for i in range(limit):
        try:
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"{i} " + "x" * 4000}])
        except openai.APIStatusError as error:
            return error
    return None


def recovers_once_the_collector_is_back(proxy, collector: Collector, client: openai.OpenAI) -> None:
    """Starts the collector; the spool drains, readiness returns, a new request is accepted and
    shipped, and the proxy stops cleanly."""
    collector.start()
    wait_drained(proxy)
    poll(lambda: proxy.readyz() == 200, timeout=10, interval=0.1, what="readiness once the spool drained")
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "accepted again"}])
    wait_drained(proxy)
    assert stop(proxy) == 0


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> TLSFiles:
    return TLSFiles.make(tmp_path_factory.mktemp("collector-tls"))


@pytest.fixture
def collector(tmp_path, tls):
    (tmp_path / "collector").mkdir()
    instance = Collector(tmp_path / "collector", tls=tls)
    instance.start()
    yield instance
    instance.stop()


@pytest.mark.parametrize("as_injected", [False, True], ids=["config-file", "injector-handover"])
def test_events_reach_the_collector_over_https_and_leave_the_spool(tmp_path, mock, collector, as_injected):
    proxy = start_shipping_proxy(tmp_path / "proxy", mock, collector, as_injected=as_injected)
    try:
        client = proxy.openai()
        for i in range(5):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"hello {i}"}])
        wait_drained(proxy)
        assert metric(proxy.admin_url, "chaperone_proxy_shipped_events_total") == 10
        assert metric(proxy.admin_url, "chaperone_proxy_ship_attempts_total") >= 1
        # The collector stamped the verified identity from the token onto each event.
        stored = collector.get("/v1/events", namespace="agents")["events"]
        assert len(stored) == 10
        assert all(e["identity"]["pod"] == "agent-7f9c" and e["identity"]["authenticated_by"] == "jwks" for e in stored)
        spool = tmp_path / "proxy" / "spool"
        assert (spool / "acknowledged").read_text().split()[1] == "10"
    finally:
        assert stop(proxy) == 0
    account(collector, proxy.audit)


def test_collector_down_while_the_agent_keeps_50_requests_per_second(tmp_path, mock, collector):
    down = 30 if CHAOS else 3
    proxy = start_shipping_proxy(tmp_path / "proxy", mock, collector)
    agent = Agent(proxy, rate=50).start()
    try:
        time.sleep(1)
        collector.stop()
        time.sleep(down)
        backlog = metric(proxy.admin_url, "chaperone_proxy_spool_events")
        assert backlog > 0, "events pile up in the spool while the collector is down"
        assert metric(proxy.admin_url, "chaperone_proxy_spool_oldest_unshipped_age_seconds") >= down - 1
        assert metric(proxy.admin_url, "chaperone_proxy_ship_failures_total") > 0
        collector.start()
        time.sleep(1)
    finally:
        results = agent.stop()
    wait_drained(proxy)
    assert stop(proxy) == 0
    ok = [r for r in results if r["status"] == 200]
    assert len(ok) == len(results), f"the spool absorbs the outage: no request fails ({[r for r in results if r['status'] != 200][:3]})"
    assert len(results) >= 50 * (down + 2) * 0.8, f"the agent kept its rate: {len(results)} requests in {down + 2}s"
    accounting = account(collector, proxy.audit)
    assert accounting.produced == 2 * len(results)
    assert_answered_exchanges_stored(results, stored_events(collector))


def test_collector_killed_mid_batch_then_restarted(tmp_path, mock, collector):
    proxy = start_shipping_proxy(tmp_path / "proxy", mock, collector)
    agent = Agent(proxy, rate=50).start()
    rounds = 10 if CHAOS else 3
    try:
        for i in range(rounds):
            # Build a backlog, then kill the collector while it is taking it in.
            collector.stop()
            time.sleep(1)
            collector.start()
            time.sleep(0.05 + 0.1 * (i % 3))
            collector.stop(kill=True)
            collector.start()
    finally:
        results = agent.stop()
    wait_drained(proxy)
    assert stop(proxy) == 0
    assert all(r["status"] == 200 for r in results)
    account(collector, proxy.audit)


def test_proxy_killed_mid_stream_restarts_on_its_spool(tmp_path, mock, collector):
    directory = tmp_path / "proxy"
    proxy = start_shipping_proxy(directory, mock, collector)
    client = proxy.openai()
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "before"}])
    stream_id = json.loads(proxy.audit.raw_lines()[0])["stream_id"]
    # Keep the collector from emptying the spool, so the restart finds it non-empty.
    collector.stop()
    chunks: list[str] = []
    cut = threading.Event()

    def slow_stream():
        try:
            stream = client.chat.completions.create(model="mock-slow", stream=True, messages=[{"role": "user", "content": "a long answer please"}])
            for chunk in stream:
                chunks.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
                if len(chunks) == 3:
                    cut.set()
        except (openai.APIError, httpx.HTTPError):
            pass
        cut.set()

    reader = threading.Thread(target=slow_stream, daemon=True)
    reader.start()
    assert cut.wait(20), "the slow stream started"
    kill(proxy)
    reader.join(10)
    assert 0 < len(chunks) < 100, "the stream was cut part-way"

    restarted = start_shipping_proxy(directory, mock, collector)
    try:
        restarted.openai().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "after"}])
        events = [json.loads(line) for line in restarted.audit.raw_lines()]
        after = events[-1]
        assert after["stream_id"] == stream_id, "the restarted sidecar continues its stream"
        collector.start()
        wait_drained(restarted)
    finally:
        assert stop(restarted) == 0
    accounting = account(collector, restarted.audit, proxy_kills=1)
    assert len(accounting.streams) == 1
    assert len(accounting.incomplete) == 1
    incomplete = accounting.incomplete[0]
    assert incomplete["kind"] == "llm.response" and incomplete["error"]["type"] == "proxy_stopped"
    assert incomplete["gen_ai"]["request"]["model"] == "mock-slow"


def test_spool_full_fails_closed_then_recovers(tmp_path, mock, collector):
    proxy = start_shipping_proxy(tmp_path / "proxy", mock, collector, max_size="1MiB", segment_size="64KiB")
    collector.stop()
    client = proxy.openai()
    refused = requests_until_refused(client, 2000)
    assert refused is not None, "the spool filled up"
    assert refused.status_code == 503 and "audit spool is full" in refused.message
    assert refused.response.headers["x-chaperone-error"] == "audit_backlog"
    assert refused.response.headers["retry-after"] == "5"
    assert proxy.readyz() == 503, "not ready above the high-water mark"
    assert metric(proxy.admin_url, "chaperone_proxy_audit_backlog_refusals_total") >= 1
    recovers_once_the_collector_is_back(proxy, collector, client)
    accounting = account(collector, proxy.audit)
    assert accounting.produced > 300


def test_drop_oldest_records_exactly_what_it_dropped(tmp_path, mock, collector):
    proxy = start_shipping_proxy(tmp_path / "proxy", mock, collector, max_size="1MiB", segment_size="64KiB", overflow="drop-oldest")
    collector.stop()
    client = proxy.openai()
    big = "y" * 4000
    for i in range(400):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"{i} {big}"}])
    assert metric(proxy.admin_url, "chaperone_proxy_spool_bytes") <= 1 << 20
    collector.start()
    wait_drained(proxy)
    assert stop(proxy) == 0
    accounting = account(collector, proxy.audit, expect_gaps=True)
    assert accounting.proxy_gaps, "the proxy declared what it dropped"
    declared = set()
    for gap in accounting.proxy_gaps:
        declared.update(range(gap["missing_from"], gap["missing_to"] + 1))
    assert accounting.stored + len(declared) == accounting.produced, "every produced event is either stored or declared dropped"
    # The newest report covers every earlier one that was itself dropped: no gap goes unexplained.
    assert max(g["missing_to"] for g in accounting.proxy_gaps) == max(declared)
    assert accounting.collector_gaps, "the collector saw the same gaps"


def test_spool_disk_full_holds_events_and_refuses_new_requests(tmp_path, mock, collector):
    mount = tmp_path / "small-disk"
    if not tmpfs(mount, "256k"):
        pytest.skip("cannot mount a tmpfs here (needs root): the disk-full test needs a small filesystem")
    try:
        proxy = start_shipping_proxy(tmp_path / "proxy", mock, collector, spool_dir=mount / "spool", max_size="64MiB", segment_size="32KiB")
        collector.stop()
        client = proxy.openai()
        refused = requests_until_refused(client, 500)
        assert refused is not None and refused.status_code == 503 and "disk" in refused.message
        assert metric(proxy.admin_url, "chaperone_proxy_spool_held_events") >= 1
        assert proxy.readyz() == 503
        recovers_once_the_collector_is_back(proxy, collector, client)
    finally:
        unmount(mount)
    account(collector, proxy.audit)


def test_intermittent_500s_and_timeouts_lose_and_duplicate_nothing(tmp_path, mock, collector, tls):
    front = FaultyFront(collector, tls, hang_seconds=2)
    proxy = start_shipping_proxy(tmp_path / "proxy", mock, collector, url=front.url, timeout="1s")
    agent = Agent(proxy, rate=50).start()
    try:
        time.sleep(20 if CHAOS else 4)
    finally:
        results = agent.stop()
    try:
        wait_drained(proxy)
    finally:
        front.close()
    print(f"faults injected: {front.counts}")
    assert front.counts["fail"] > 0 and front.counts["hang"] > 0 and front.counts["drop_answer"] > 0
    assert metric(proxy.admin_url, "chaperone_proxy_shipped_duplicate_events_total") > 0, "answers lost after a commit come back as duplicates"
    assert metric(proxy.admin_url, "chaperone_proxy_ship_failures_total") > 0
    assert stop(proxy) == 0
    assert all(r["status"] == 200 for r in results)
    account(collector, proxy.audit)
