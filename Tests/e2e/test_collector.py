"""chaperone-collector end to end, against both storage backends: real HTTP, real tokens signed
like the kubelet's, a real SQLite file and a real PostgreSQL server, and chaperonectl as the
operator runs it."""

from __future__ import annotations

import json
import sqlite3
import ssl
import subprocess
import time

import httpx
import jsonschema
import pytest

from collector_support import AUDIENCE, Collector, Issuer, Stream, jsonl, pg_sql
from conftest import REPO, binary, poll

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def collector(request, tmp_path):
    c = Collector(tmp_path, backend=request.param).start()
    yield c
    c.stop()


def sql(collector: Collector, statement: str) -> list[tuple]:
    """Runs SQL directly on the collector's database, behind its back."""
    if collector.backend == "sqlite":
        db = sqlite3.connect(collector.data / "chaperone.db", timeout=10)
        try:
            rows = db.execute(statement).fetchall()
            db.commit()
            return rows
        finally:
            db.close()
    out = pg_sql(collector.database, statement)
    return [tuple(line.split("|")) for line in out.splitlines() if line]


def test_batches_are_stored_once_and_bad_lines_refused_alone(collector):
    stream = Stream()
    events = stream.events(5)
    first = collector.send(events)
    assert first["accepted"] == [e["event_id"] for e in events]
    assert first["duplicates"] == [] and first["rejected"] == []

    # The shipper retries a batch it never saw acknowledged: everything is a duplicate.
    again = collector.send(events)
    assert again["accepted"] == [] and again["duplicates"] == [e["event_id"] for e in events]

    # One malformed line, one without a required field, one too large: refused one by one; the rest stored.
    good = stream.events(2)
    body = jsonl([good[0]]) + b"{not json\n" + json.dumps({"event_id": "x"}).encode() + b"\n" + jsonl([good[1]])
    answer = collector.post(body, token=collector.issuer.token(), gzip_body=True).json()
    assert answer["accepted"] == [good[0]["event_id"], good[1]["event_id"]]
    assert [r["line"] for r in answer["rejected"]] == [2, 3]
    assert "not valid JSON" in answer["rejected"][0]["error"]
    assert "missing field" in answer["rejected"][1]["error"]
    stored = collector.get("/v1/events", limit=100)["events"]
    assert len(stored) == 7
    assert len({e["event"]["event_id"] for e in stored}) == 7


def test_whole_batch_refusals_are_clear(collector):
    token = collector.issuer.token()
    response = collector.post(jsonl(Stream().events(1)), token=token, content_type="text/plain")
    assert response.status_code == 415 and "application/x-ndjson" in response.json()["error"]["message"]
    response = collector.post(b"\n\n", token=token)
    assert response.status_code == 400 and response.json()["error"]["code"] == "empty_batch"
    response = collector.post(b"\x1f\x8b\x08\x00garbage", token=token, gzip_body=False, content_type="application/x-ndjson")
    assert response.status_code == 200 and response.json()["rejected"]  # not declared as gzip: just a bad line
    response = httpx.post(collector.url + "/v1/events", content=b"\x1f\x8b\x08\x00garbage",
                          headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_gzip"


def test_only_valid_projected_tokens_get_in(tmp_path):
    issuer = Issuer()
    c = Collector(tmp_path, issuer=issuer).start()
    try:
        body = jsonl(Stream().events(1))
        other = Issuer(kid="e2e-key-1")  # same key id, different key: a forged signature
        cases = {
            "missing": None,
            "malformed": "not.a.jwt",
            "expired": issuer.token(issued=int(time.time()) - 7200, lifetime=600),
            "wrong_audience": issuer.token(audience="https://kubernetes.default.svc"),
            "wrong_issuer": issuer.token(issuer="https://evil.example"),
            "bad_signature": other.token(),
            "unknown_key": issuer.token(kid="rotated-away"),
            "not_a_pod": issuer.token(pod_claim=False),
        }
        for reason, token in cases.items():
            response = c.post(body, token=token)
            assert response.status_code == 401, (reason, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer")
        metrics = c.metrics()
        for reason in cases:
            assert f'chaperone_collector_rejected_tokens_total{{reason="{reason}"}} 1' in metrics, reason
        assert c.get("/v1/events")["events"] == []
        # Readers need their own token.
        assert httpx.get(c.url + "/v1/events", headers={"Authorization": f"Bearer {issuer.token()}"}).status_code == 401
    finally:
        c.stop()


def test_verified_identity_is_stamped_and_lies_are_recorded(collector):
    stream = Stream(source={"namespace": "kube-system", "pod": "pretend", "self_reported": True})
    collector.send(stream.events(2), token=collector.issuer.token(namespace="agents", pod="agent-1", service_account="coder"))
    events = collector.get("/v1/events", namespace="agents")["events"]
    assert len(events) == 2
    for e in events:
        assert e["identity"]["namespace"] == "agents" and e["identity"]["pod"] == "agent-1"
        assert e["identity"]["service_account"] == "coder" and e["identity"]["authenticated_by"] == "jwks"
    assert collector.get("/v1/events", namespace="kube-system")["events"] == []
    findings = collector.get("/v1/events", kind="integrity.*")["events"]
    assert [f["event"]["kind"] for f in findings] == ["integrity.identity_mismatch"]
    detail = findings[0]["event"]["integrity"]
    assert detail["fields"] == ["namespace", "pod"]
    assert detail["claimed"]["namespace"] == "kube-system" and detail["verified"]["namespace"] == "agents"


def test_gaps_and_broken_chains_become_integrity_events(collector):
    stream = Stream()
    events = stream.events(6)
    collector.send(events[:2])
    collector.send(events[4:])  # 3 and 4 never arrive
    forged = stream.event()
    forged["prev_hash"] = "f" * 64  # seq 7 claims a different predecessor
    collector.send([forged])
    kinds = {e["event"]["kind"]: e["event"]["integrity"] for e in collector.get("/v1/events", kind="integrity.*")["events"]}
    assert kinds["integrity.gap"]["missing_from"] == 3 and kinds["integrity.gap"]["missing_to"] == 4
    assert kinds["integrity.chain_break"]["received_seq"] == 7
    assert kinds["integrity.chain_break"]["received_prev_hash"] == "f" * 64
    assert 'chaperone_collector_integrity_findings_total{kind="integrity.gap"} 1' in collector.metrics()
    # The collector's own events follow the published event schema.
    schema = json.loads((REPO / "docs" / "audit-event.schema.json").read_text())
    for e in collector.get("/v1/events", limit=100)["events"]:
        jsonschema.validate(e["event"], schema)
    # The collector's own events form a chain too, and verify knows the gap was recorded at arrival.
    collector.wait_checkpoint(5 + 2)
    result = collector.ctl("verify", "--key", collector.verifier_key(), "--output", "json", check=False)
    report = json.loads(result.stdout)
    assert any("3...4" in gap for gap in report["known_gaps"])
    assert report["problems"] == [], report


def test_live_tail_prints_one_line_per_stored_event_and_each_checkpoint(tmp_path):
    c = Collector(tmp_path, extra_config="tail:\n  max_content_chars: 12\n").start()
    try:
        stream = Stream()
        events = [stream.event(text="please refactor the billing module carefully")] + stream.events(2, kind="llm.response", text="ok")
        c.send(events)
        c.wait_checkpoint(3)
        lines = c.stdout_lines()
        stored = [l for l in lines if l.get("kind") != "log.checkpoint"]
        assert [l["event_id"] for l in stored] == [e["event_id"] for e in events]
        assert stored[0]["text"] == "please refac…"
        assert stored[0]["namespace"] == "agents" and stored[0]["model"] == "gpt-4o-mini"
        checkpoint = next(l for l in lines if l.get("kind") == "log.checkpoint")
        assert checkpoint["tree_size"] == 3 and "\n\n\u2014 e2e.chaperone.test/collector " in checkpoint["checkpoint"]
    finally:
        c.stop()


def test_search_sessions_and_replay_from_chaperonectl(collector):
    a, b = Stream(), Stream()
    collector.send([
        a.event(session="fix-login", text="why does the login test fail?"),
        a.event(kind="llm.response", session="fix-login", text="the session cookie is not secure",
                findings=[{"detector": "aws_access_key", "direction": "response", "fingerprint": "hmac-sha256:abc123abc123abc123"}]),
    ], token=collector.issuer.token(namespace="agents", pod="agent-a"))
    collector.send([b.event(session="docs", text="write the changelog")], token=collector.issuer.token(namespace="docs-bots", pod="agent-b"))

    assert len(collector.get("/v1/events", namespace="agents")["events"]) == 2
    assert [e["event"]["session_id"] for e in collector.get("/v1/events", pod="agent-b")["events"]] == ["docs"]
    assert len(collector.get("/v1/events", detector="aws_access_key")["events"]) == 1
    assert len(collector.get("/v1/events", q="session cookie")["events"]) == 1
    assert collector.get("/v1/events", q="nothing like this")["events"] == []
    assert len(collector.get("/v1/events", model="gpt-4o-mini", since="2000-01-01T00:00:00Z")["events"]) == 3
    assert collector.get("/v1/events", until="2000-01-01T00:00:00Z")["events"] == []

    table = collector.ctl("events", "--namespace", "agents").stdout
    assert "agents/agent-a" in table and "aws_access_key" in table and "docs-bots" not in table
    json_lines = collector.ctl("events", "--session", "docs", "--output", "json").stdout.splitlines()
    assert json.loads(json_lines[0])["event"]["content"]["messages"][0]["content"] == "write the changelog"
    sessions = collector.ctl("sessions", "--since", "1h").stdout
    assert "fix-login" in sessions and "docs" in sessions
    replay = collector.ctl("replay", "fix-login").stdout
    assert "turn 1" in replay and "user: why does the login test fail?" in replay
    assert "assistant: the session cookie is not secure" in replay and "finding: aws_access_key" in replay
    bad = collector.ctl("events", "--since", "yesterday", check=False)
    assert bad.returncode != 0 and "--since" in bad.stderr


def test_chaperonectl_tail_follows_new_events(collector):
    token_file = collector.directory / "reader-token"
    token_file.write_text("reader-token-for-e2e-0123456789\n")
    follower = subprocess.Popen(
        [str(binary("chaperonectl")), "tail", "--count", "3", "--output", "json", "--namespace", "agents",
         "--collector", collector.url, "--token-file", str(token_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    stream = Stream()
    events = stream.events(3)
    collector.send(events)
    out, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err
    assert [json.loads(l)["event"]["event_id"] for l in out.splitlines()] == [e["event_id"] for e in events]


def test_verify_names_every_altered_deleted_and_inserted_row(collector):
    stream = Stream()
    events = stream.events(8)
    collector.send(events)
    collector.wait_checkpoint(8)
    key = collector.verifier_key()
    ok = collector.ctl("verify", "--key", key)
    assert "OK: every stored event is in the signed log" in ok.stdout

    def verify_problems() -> list[str]:
        result = collector.ctl("verify", "--key", key, "--output", "json", check=False)
        assert result.returncode in (0, 1), result.stderr
        return json.loads(result.stdout)["problems"]

    # Altered: a prompt rewritten in place.
    victim = events[2]["event_id"]
    original = sql(collector, f"SELECT line FROM events WHERE event_id = '{victim}'")[0][0]
    sql(collector, f"UPDATE events SET line = replace(line, 'hello', 'HELLO') WHERE event_id = '{victim}'")
    problems = verify_problems()
    assert any(p.startswith("altered:") and victim in p for p in problems), problems
    sql(collector, "UPDATE events SET line = '" + original.replace("'", "''") + f"' WHERE event_id = '{victim}'")
    assert verify_problems() == []

    # Altered identity: the stamp says another namespace.
    stamp = sql(collector, f"SELECT stamp FROM events WHERE event_id = '{victim}'")[0][0]
    sql(collector, f"UPDATE events SET stamp = replace(stamp, 'agents', 'trusted'), namespace = 'trusted' WHERE event_id = '{victim}'")
    problems = verify_problems()
    assert any("does not hash to its leaf" in p and victim in p for p in problems), problems
    sql(collector, "UPDATE events SET stamp = '" + stamp.replace("'", "''") + f"', namespace = 'agents' WHERE event_id = '{victim}'")
    assert verify_problems() == []

    # Deleted: a row removed.
    gone = events[5]["event_id"]
    saved = sql(collector, f"SELECT leaf_index FROM events WHERE event_id = '{gone}'")[0][0]
    sql(collector, f"DELETE FROM events WHERE event_id = '{gone}'")
    problems = verify_problems()
    assert any(p.startswith("deleted:") and gone in p and f"leaf {saved}" in p for p in problems), problems
    assert any("lacks seq 6...6" in p for p in problems), problems

    # Inserted: a forged row with its own leaf index.
    sql(collector, f"INSERT INTO events (leaf_index, event_id, stream_id, seq, prev_hash, line_hash, time_us, received_us, kind, session_id, stamp, line) "
                   f"SELECT 900, 'forged-event', stream_id, 99, prev_hash, line_hash, time_us, received_us, kind, session_id, stamp, line "
                   f"FROM events WHERE event_id = '{events[0]['event_id']}'")
    problems = verify_problems()
    assert any(p.startswith("inserted:") and "forged-event" in p for p in problems), problems

    # The log itself rewritten: a leaf hash changed no longer reproduces the signed root.
    sql(collector, "UPDATE log_leaves SET leaf_hash = log_leaves.leaf_hash WHERE leaf_index = 0")  # no-op keeps types honest
    if collector.backend == "sqlite":
        sql(collector, "UPDATE log_leaves SET leaf_hash = zeroblob(32) WHERE leaf_index = 1")
    else:
        sql(collector, "UPDATE log_leaves SET leaf_hash = decode(repeat('00', 32), 'hex') WHERE leaf_index = 1")
    problems = verify_problems()
    assert any("do not reproduce signed checkpoint" in p for p in problems), problems


def test_restart_continues_the_log_and_checkpoints_stay_consistent(collector):
    stream = Stream()
    collector.send(stream.events(4))
    first = collector.wait_checkpoint(4)
    collector.stop()
    collector.start()
    collector.send(stream.events(3))
    collector.wait_checkpoint(7)
    checkpoints = collector.get("/v1/log/checkpoints")["checkpoints"]
    assert [c["tree_size"] for c in checkpoints][-1] == 4 and checkpoints[0]["tree_size"] == 7
    assert first["root_hash"] in [c["root_hash"] for c in checkpoints]
    report = json.loads(collector.ctl("verify", "--key", collector.verifier_key(), "--output", "json").stdout)
    assert report["passed"] and report["checkpoints"] >= 2 and report["records"] == 7


def test_retention_drops_content_but_the_log_still_verifies(tmp_path):
    c = Collector(tmp_path, extra_config="retention:\n  content_days: 1\n  interval: 1s\n").start()
    try:
        stream = Stream()
        old = stream.event()
        old["time"] = "2020-01-01T00:00:00.000000Z"
        stream.prev = __import__("hashlib").sha256(__import__("collector_support").canonical(old)).hexdigest()
        recent = stream.event()
        c.send([old, recent])
        poll(lambda: any(e["event"] is None for e in c.get("/v1/events", limit=10)["events"]), timeout=10, what="retention")
        c.wait_checkpoint(2)
        report = json.loads(c.ctl("verify", "--key", c.verifier_key(), "--output", "json").stdout)
        assert report["passed"] and report["pruned"] == 1, report
        assert c.get("/v1/events", q="hello")["events"][0]["event"]["event_id"] == recent["event_id"]
    finally:
        c.stop()


def test_collector_help_and_config_errors(tmp_path):
    out = subprocess.run([str(binary("chaperone-collector")), "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "projected" in out.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("storage:\n  backend: mysql\n")
    result = subprocess.run([str(binary("chaperone-collector")), "--config", str(bad), "--check-config"], capture_output=True, text=True)
    assert result.returncode != 0 and "storage.backend" in result.stderr and "sqlite, postgres" in result.stderr


def test_token_review_mode_asks_the_api_server(tmp_path):
    from injector_support import FakeKubernetesAPI

    api = FakeKubernetesAPI(tmp_path / "api", token="collector-sa-token")
    try:
        pod_token = "opaque-projected-token-of-agent-9"
        api.state.reviews[pod_token] = {
            "audience": AUDIENCE, "username": "system:serviceaccount:agents:coder", "uid": "sa-uid",
            "groups": ["system:serviceaccounts", "system:serviceaccounts:agents"],
            "extra": {"authentication.kubernetes.io/pod-name": ["agent-9"], "authentication.kubernetes.io/pod-uid": ["pod-uid-9"],
                      "authentication.kubernetes.io/node-name": ["node-b"]},
        }
        api.state.reviews["token-for-another-audience"] = {"audience": "vault", "username": "system:serviceaccount:agents:coder"}
        api.state.reviews["token-of-a-user"] = {"audience": AUDIENCE, "username": "alice@example.com"}
        (tmp_path / "collector").mkdir()
        c = Collector(tmp_path / "collector")
        c.config_path.write_text(c.config_path.read_text().replace(
            f"  mode: jwks\n  jwks_file: {c.jwks_path}\n",
            f"  mode: token-review\n  kubernetes:\n    api_url: {api.url}\n    token_file: {api.token_file}\n    ca_file: {api.ca[0]}\n"))
        c.start()
        try:
            events = Stream().events(2)
            answer = c.send(events, token=pod_token)
            assert len(answer["accepted"]) == 2
            stored = c.get("/v1/events", kind="llm.request")["events"]
            assert {e["identity"]["pod"] for e in stored} == {"agent-9"}
            assert stored[0]["identity"]["authenticated_by"] == "token-review" and stored[0]["identity"]["node"] == "node-b"
            # Cached: the second batch does not ask again.
            c.send(Stream().events(1), token=pod_token)
            assert api.count("POST", "tokenreviews") == 1
            assert c.post(jsonl(Stream().events(1)), token="token-for-another-audience").status_code == 401
            assert c.post(jsonl(Stream().events(1)), token="token-of-a-user").status_code == 401
            assert c.post(jsonl(Stream().events(1)), token="unknown").status_code == 401
            metrics = c.metrics()
            assert 'reason="review_denied"} 2' in metrics and 'reason="not_a_pod"} 1' in metrics
        finally:
            c.stop()
    finally:
        api.close()


def test_certificate_renewal_and_readers_need_no_restart(tmp_path):
    """What Kubernetes does to mounted Secrets: the serving certificate is renewed (the injector
    or cert-manager rewrites chaperone-collector-tls) and the readers Secret is created after the
    collector started. Both take effect without a restart."""
    from collector_support import READER_TOKEN, TLSFiles
    from injector_support import peer_certificate_der

    first = TLSFiles.make(tmp_path / "tls-1")
    served = tmp_path / "served"
    served.mkdir()
    (served / "tls.crt").write_bytes(first.cert.read_bytes())
    (served / "tls.key").write_bytes(first.key.read_bytes())
    live = TLSFiles(ca=first.ca, cert=served / "tls.crt", key=served / "tls.key")
    (tmp_path / "collector").mkdir()
    collector = Collector(tmp_path / "collector", tls=live)
    # Reload quickly, and name a readers file that does not exist yet (the Secret is optional).
    config = collector.config_path.read_text().replace(f"key_file: {live.key}\n", f"key_file: {live.key}\n  reload_interval: 1s\n")
    collector.readers_path.unlink()
    collector.config_path.write_text(config)
    collector.start()
    try:
        assert "readers.tokens_file_missing" in collector.stderr_path.read_text()
        answer = httpx.get(collector.url + "/v1/events", headers={"Authorization": f"Bearer {READER_TOKEN}"}, verify=collector.verify)
        assert answer.status_code == 401 and "create the file it names" in answer.text
        collector.readers_path.write_text(f"e2e: {READER_TOKEN}\n")
        poll(lambda: httpx.get(collector.url + "/v1/events", headers={"Authorization": f"Bearer {READER_TOKEN}"},
                               verify=collector.verify).status_code == 200, timeout=15, what="reading once the readers file exists")

        before = peer_certificate_der(collector.port, first.ca, "127.0.0.1")
        second = TLSFiles.make(tmp_path / "tls-2")
        (served / "tls.key").write_bytes(second.key.read_bytes())
        (served / "tls.crt").write_bytes(second.cert.read_bytes())
        def renewed() -> bool:
            try:
                return peer_certificate_der(collector.port, second.ca, "127.0.0.1") != before
            except ssl.SSLError:
                return False  # still the first certificate, which the second CA does not trust

        poll(renewed, timeout=15, what="the renewed certificate")
        assert "tls.certificate_loaded" in collector.stderr_path.read_text()
    finally:
        assert collector.stop() == 0
