"""The audit file as a whole: a hash chain with no gaps, well-formed events, and every exchange
told completely. Named to run last, so it checks the events of the whole suite."""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from datetime import datetime

import jsonschema

from conftest import REPO, exchange_id_of

SCHEMA = json.loads((REPO / "docs" / "audit-event.schema.json").read_text())

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
KINDS = {"llm.request", "llm.response", "http.egress"}
OUTCOMES = {"completed", "rejected", "upstream_error", "timeout", "client_disconnected"}


def test_audit_chain_and_events(proxy, oai, ant):
    # Make sure there is something of both providers in the file, even when run alone.
    last = exchange_id_of(oai.chat.completions.with_raw_response.create(
        model="gpt-e2e", messages=[{"role": "user", "content": "chain"}]).headers)
    proxy.audit.wait_event(last, "llm.response")
    last = exchange_id_of(ant.messages.with_raw_response.create(
        model="claude-e2e", max_tokens=8, messages=[{"role": "user", "content": "chain"}]).headers)
    proxy.audit.wait_event(last, "llm.response")

    data = proxy.audit.path.read_bytes()
    assert data.endswith(b"\n")
    lines = data[:-1].split(b"\n")
    assert len(lines) >= 4
    events = [json.loads(line) for line in lines]

    # Every event the suite produced matches the published JSON Schema (docs/audit-event.schema.json).
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for index, event in enumerate(events):
        problems = [f"{'/'.join(map(str, error.path))}: {error.message}" for error in validator.iter_errors(event)]
        assert not problems, f"line {index + 1} ({event.get('kind')}) does not match the schema: {problems}"

    # The chain: seq 1, 2, 3… and each prev_hash is the sha256 of the previous line as written.
    previous_hash = "0" * 64
    for index, (line, event) in enumerate(zip(lines, events)):
        assert event["seq"] == index + 1, f"line {index + 1}: seq {event['seq']}"
        assert event["prev_hash"] == previous_hash, f"line {index + 1} (seq {event['seq']}): chain broken"
        previous_hash = hashlib.sha256(line).hexdigest()

    stream_id = events[0]["stream_id"]
    assert UUID7.match(stream_id)
    event_ids = set()
    times = []
    by_exchange: dict[str, list[dict]] = defaultdict(list)
    for event in events:
        where = f"seq {event['seq']}"
        assert event["schema_version"] == "1.0", where
        assert event["stream_id"] == stream_id, where
        assert UUID7.match(event["event_id"]), where
        assert event["event_id"] not in event_ids, f"{where}: duplicate event_id"
        event_ids.add(event["event_id"])
        assert HEX64.match(event["prev_hash"]), where
        assert RFC3339_UTC.match(event["time"]), where
        times.append(datetime.fromisoformat(event["time"].replace("Z", "+00:00")))
        assert event["kind"] in KINDS, where
        assert event["session_id"], where
        assert event["source"]["self_reported"] is True, where
        assert UUID7.match(event["exchange_id"]), where
        # Canonical form: keys sorted at every level.
        assert list(event) == sorted(event), where
        by_exchange[event["exchange_id"]].append(event)
        if event["kind"] in ("llm.response", "http.egress"):
            assert event["outcome"] in OUTCOMES, where
            assert isinstance(event["http"]["status"], int), where
            assert event["http"]["duration_us"] > 0, where
        if event["kind"].startswith("llm."):
            gen = event["gen_ai"]
            assert gen["operation"]["name"] in ("chat", "generate_content", "embeddings"), where
            assert gen["provider"]["name"] in ("openai", "anthropic"), where
    assert times == sorted(times), "event times go backwards"
    # A UUIDv7 starts with its Unix milliseconds: the event's own time.
    for event in events:
        millis = int(event["event_id"][:8] + event["event_id"][9:13], 16)
        stamped = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
        assert 0 <= stamped.timestamp() * 1000 - millis < 1.001, f"seq {event['seq']}: event_id and time disagree"

    # Every exchange is told completely: request then response, or one egress event, or (for a
    # request refused, or abandoned by the agent, before its body was read) a response alone.
    for exchange, group in by_exchange.items():
        kinds = [e["kind"] for e in group]
        if kinds == ["llm.request", "llm.response"]:
            request, response = group
            assert request["session_id"] == response["session_id"]
            assert request["gen_ai"]["request"] == response["gen_ai"]["request"]
            assert request["http"]["request_sha256"] == response["http"]["request_sha256"]
        elif kinds == ["llm.response"]:
            assert group[0]["outcome"] in ("rejected", "client_disconnected"), f"exchange {exchange}: response without request"
        else:
            assert kinds == ["http.egress"], f"exchange {exchange}: {kinds}"
