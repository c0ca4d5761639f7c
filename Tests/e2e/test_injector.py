"""chaperone-injector, the real binary over TLS, answering the admission fixtures in
Tests/Fixtures/admission exactly as the API server would call it. Every returned patch is
applied with the independent `jsonpatch` library and the resulting Pod validated against the
Kubernetes schema with `kubernetes-validate --strict`.
"""

from __future__ import annotations

import base64
import copy
import json
import shutil
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import jsonpatch
import kubernetes_validate
import pytest

from conftest import poll
from injector_support import (
    FakeKubernetesAPI, issue, load_review, make_ca, peer_certificate_der, start_injector, webhook_configuration,
)

KUBERNETES_VERSION = "1.37.0"
SIDECAR = "chaperone-proxy"
AGENT_ENV = {
    "OPENAI_BASE_URL": "http://127.0.0.1:15080/openai/v1",
    "ANTHROPIC_BASE_URL": "http://127.0.0.1:15080/anthropic",
    "OPENAI_API_KEY": "chaperone-managed-placeholder",
    "ANTHROPIC_API_KEY": "chaperone-managed-placeholder",
}

# fixture -> what the injector must do with it
INJECTED = {
    "deployment-pod": {"mode": "native", "agent": "agent"},
    "job-pod": {"mode": "native", "agent": "refactor"},
    "cronjob-pod": {"mode": "native", "agent": "triage"},
    "init-containers": {"mode": "native", "agent": "agent"},
    "multi-container": {"mode": "native", "agent": "agent"},
    "existing-env": {"mode": "native", "agent": "agent", "warns": ["sets OPENAI_BASE_URL itself", "envFrom"]},
    "existing-volumes": {"mode": "native", "agent": "agent"},
    "tricky-annotation-keys": {"mode": "native", "agent": "agent"},
    "bare-pod": {"mode": "native", "agent": "agent"},
    "istio-pod": {"mode": "native", "agent": "agent", "warns": ["Istio proxy present"], "admin_port": 15190},
    "classic-sidecar-job": {"mode": "container", "agent": "agent", "warns": ["will not exit on its own"]},
}
SKIPPED = {
    "already-injected": [],
    "host-network": ["hostNetwork pods are not injected"],
    "opt-out": [],
    "kube-system-pod": [],
    "update": [],
}
DENIED = {
    "provider-key-reader": (403, "only the chaperone-proxy sidecar may read provider keys"),
    "bad-annotation": (400, "chaperone.io/proxy-memory-limit: 'lots' is not a Kubernetes quantity"),
}


@pytest.fixture(scope="module")
def certs(workdir):
    directory = workdir / "injector-certs"
    ca = make_ca(directory)
    return {"ca": ca, "dir": directory, "serving": issue(directory, ca, "serving", ["localhost"])}


def files_config(cert, key, extra: str = "") -> str:
    return f"tls:\n  mode: files\n  cert_file: {cert}\n  key_file: {key}\n  reload_interval: 1s\n{extra}"


@pytest.fixture(scope="module")
def injector(workdir, certs):
    instance = start_injector(workdir / "injector", files_config(*certs["serving"]), certs["ca"][0])
    yield instance
    assert instance.stop() == 0, instance.log.read_text()


def patched_pod(review: dict, response: dict) -> dict:
    assert response["patchType"] == "JSONPatch"
    operations = json.loads(base64.b64decode(response["patch"]))
    assert all(op["op"] == "add" for op in operations), operations
    return jsonpatch.JsonPatch(operations).apply(copy.deepcopy(review["request"]["object"]))


def validate(pod: dict) -> None:
    # The API server fills metadata.namespace before admission; validate the Pod as stored.
    kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)


def containers(pod: dict) -> list[dict]:
    return pod["spec"]["containers"] + pod["spec"].get("initContainers", [])


@pytest.mark.parametrize("name", sorted(INJECTED))
def test_injected_pods(injector, name):
    expected = INJECTED[name]
    review = load_review(name)
    answer = injector.admit(review)
    assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
    response = answer["response"]
    assert response["uid"] == review["request"]["uid"]
    assert response["allowed"] is True
    before = review["request"]["object"]
    pod = patched_pod(review, response)
    validate(pod)

    # The sidecar: native (first init container, restartPolicy Always, startup probe) or classic.
    if expected["mode"] == "native":
        sidecar = pod["spec"]["initContainers"][0]
        assert sidecar["restartPolicy"] == "Always"
        assert sidecar["startupProbe"]["httpGet"]["path"] == "/readyz"
        assert "lifecycle" not in sidecar
        assert [c["name"] for c in pod["spec"]["initContainers"][1:]] == [c["name"] for c in before["spec"].get("initContainers", [])]
    else:
        sidecar = pod["spec"]["containers"][0]
        assert "restartPolicy" not in sidecar
        assert sidecar["lifecycle"]["postStart"]["exec"]["command"][1] == "wait-ready"
    assert sidecar["name"] == SIDECAR
    admin_port = expected.get("admin_port", 15090)
    assert sidecar["args"] == ["--listen", "127.0.0.1:15080", "--admin", f"0.0.0.0:{admin_port}"]
    assert sidecar["readinessProbe"]["httpGet"]["port"] == admin_port
    security = sidecar["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] == 15080 and security["runAsGroup"] == 15080
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]} and security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sidecar["resources"]["requests"] == {"cpu": "50m", "memory": "64Mi"} or name == "classic-sidecar-job"
    sidecar_env = {e["name"]: e for e in sidecar["env"]}
    assert sidecar_env["CHAPERONE_POD_UID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.uid"
    assert sidecar_env["CHAPERONE_AGENT_CONTAINER"]["value"] == expected["agent"]

    # Volumes: provider keys, fingerprint key, collector token and pod metadata in one projected
    # volume mounted only into the sidecar; an emptyDir spool.
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    sources = volumes["chaperone-credentials"]["projected"]["sources"]
    token = next(s["serviceAccountToken"] for s in sources if "serviceAccountToken" in s)
    assert token["audience"] == "chaperone-collector"
    keys = next(s["secret"] for s in sources if s.get("secret", {}).get("name") == "chaperone-provider-keys")
    assert keys["items"] == [{"key": "openai", "path": "openai/api-key"}, {"key": "anthropic", "path": "anthropic/api-key"}]
    assert "emptyDir" in volumes["chaperone-spool"]
    for container in containers(pod):
        mounts = {m["name"] for m in container.get("volumeMounts", [])}
        if container["name"] == SIDECAR:
            assert {"chaperone-credentials", "chaperone-spool"} <= mounts
        else:
            assert not mounts & {"chaperone-credentials", "chaperone-spool"}, container["name"]
            assert not any(e["name"].startswith("CHAPERONE_") for e in container.get("env", []))

    # Env in every app container, never overwriting what the user set.
    original = {c["name"]: c for c in before["spec"]["containers"]}
    for container in pod["spec"]["containers"]:
        if container["name"] == SIDECAR:
            continue
        env = {e["name"]: e.get("value") for e in container["env"]}
        user = {e["name"]: e.get("value") for e in original[container["name"]].get("env") or []}
        for variable, value in AGENT_ENV.items():
            assert env[variable] == user.get(variable, value), (container["name"], variable)
        assert list(env)[: len(user)] == list(user), "the user's env keeps its order, ours is appended"

    # Nothing the pod had is lost: volumes, annotations (keys with / and ~ included), labels.
    assert [v["name"] for v in pod["spec"]["volumes"][: len(before["spec"]["volumes"])]] == [v["name"] for v in before["spec"]["volumes"]]
    annotations = pod["metadata"]["annotations"]
    for key, value in (before["metadata"].get("annotations") or {}).items():
        assert annotations[key] == value
    assert pod["metadata"].get("labels") == before["metadata"].get("labels")
    status = json.loads(annotations["chaperone.io/status"])
    assert status["mode"] == expected["mode"] and status["agent"] == expected["agent"] and status["sidecar"] == SIDECAR
    assert annotations["kubectl.kubernetes.io/default-container"] == expected["agent"]

    warnings = response.get("warnings", [])
    for fragment in expected.get("warns", []):
        assert any(fragment in w for w in warnings), warnings

    # Idempotent: the injected pod sent again (a reinvocation) is left as it is.
    again = copy.deepcopy(review)
    again["request"]["object"] = pod
    second = injector.admit(again)["response"]
    assert second["allowed"] is True and "patch" not in second


def test_native_sidecar_comes_before_existing_init_containers(injector):
    pod = patched_pod(load_review("init-containers"), injector.admit(load_review("init-containers"))["response"])
    assert [c["name"] for c in pod["spec"]["initContainers"]] == [SIDECAR, "clone"]


def test_classic_sidecar_is_first_and_annotation_resources_apply(injector):
    review = load_review("classic-sidecar-job")
    pod = patched_pod(review, injector.admit(review)["response"])
    assert [c["name"] for c in pod["spec"]["containers"]] == [SIDECAR, "agent"]
    assert "initContainers" not in pod["spec"]
    assert pod["spec"]["containers"][0]["resources"]["limits"] == {"cpu": "1", "memory": "512Mi"}


def test_tricky_annotation_keys_are_escaped(injector):
    review = load_review("tricky-annotation-keys")
    response = injector.admit(review)["response"]
    paths = [op["path"] for op in json.loads(base64.b64decode(response["patch"]))]
    assert "/metadata/annotations/chaperone.io~1status" in paths
    assert "/metadata/annotations/kubectl.kubernetes.io~1default-container" in paths


def test_missing_arrays_are_added_whole(injector):
    review = load_review("bare-pod")
    response = injector.admit(review)["response"]
    operations = json.loads(base64.b64decode(response["patch"]))
    by_path = {op["path"]: op for op in operations}
    assert isinstance(by_path["/spec/initContainers"]["value"], list)
    assert isinstance(by_path["/metadata/annotations"]["value"], dict)
    # The fixture's container has no env: one whole-array add, not a pointer into a missing array.
    assert isinstance(by_path["/spec/containers/0/env"]["value"], list)


@pytest.mark.parametrize("name", sorted(SKIPPED))
def test_skipped_pods(injector, name):
    review = load_review(name)
    response = injector.admit(review)["response"]
    assert response["uid"] == review["request"]["uid"]
    assert response["allowed"] is True
    assert "patch" not in response and "patchType" not in response
    for fragment in SKIPPED[name]:
        assert any(fragment in w for w in response.get("warnings", [])), response


@pytest.mark.parametrize("name", sorted(DENIED))
def test_denied_pods(injector, name):
    code, message = DENIED[name]
    review = load_review(name)
    response = injector.admit(review)["response"]
    assert response["allowed"] is False and "patch" not in response
    assert response["status"]["code"] == code
    assert message in response["status"]["message"]


def test_bad_requests_get_clear_errors(injector):
    with injector.client() as client:
        garbage = client.post(injector.url, content=b"{not json", headers={"Content-Type": "application/json"})
        assert garbage.status_code == 400 and "not an AdmissionReview" in garbage.json()["error"]
        wrong_type = client.post(injector.url, content=b"<xml/>", headers={"Content-Type": "application/xml"})
        assert wrong_type.status_code == 415
        old = load_review("deployment-pod")
        old["apiVersion"] = "admission.k8s.io/v1beta1"
        outdated = client.post(injector.url, json=old)
        assert outdated.status_code == 400 and "admissionReviewVersions" in outdated.json()["error"]
        missing_uid = load_review("deployment-pod")
        del missing_uid["request"]["uid"]
        no_uid = client.post(injector.url, json=missing_uid)
        assert no_uid.status_code == 400 and "uid" in no_uid.json()["error"]
        huge = client.post(injector.url, content=b"{" + b" " * (5 * 1024 * 1024) + b"}", headers={"Content-Type": "application/json"})
        assert huge.status_code == 413
    metrics = injector.metrics()
    assert 'chaperone_injector_rejected_requests_total{reason="malformed"}' in metrics
    assert 'chaperone_injector_rejected_requests_total{reason="too_large"}' in metrics


def test_metrics_and_health(injector):
    injector.admit(load_review("deployment-pod"))
    metrics = injector.metrics()
    assert 'chaperone_injector_admissions_total{outcome="injected"}' in metrics
    assert "chaperone_injector_admission_duration_seconds_bucket" in metrics
    assert "chaperone_injector_certificate_not_after_timestamp_seconds" in metrics
    assert httpx.get(f"http://127.0.0.1:{injector.admin_port}/healthz").status_code == 200
    assert injector.readyz() == 200
    lines = [json.loads(line) for line in injector.log.read_text().splitlines() if line.startswith("{")]
    admissions = [line for line in lines if line.get("message") == "admission"]
    assert admissions and all("uid" in line.get("metadata", line) or "uid" in line for line in admissions)


@pytest.mark.parametrize("mode,allowed", [("deny", False), ("allow", True)])
def test_failure_mode(workdir, certs, mode, allowed):
    instance = start_injector(workdir / f"injector-failure-{mode}", files_config(*certs["serving"], f"failure_mode: {mode}\n"), certs["ca"][0])
    try:
        review = load_review("bare-pod")
        review["request"]["object"]["spec"]["containers"] = "not-a-list"
        response = instance.admit(review)["response"]
        assert response["allowed"] is allowed and "patch" not in response
        if allowed:
            assert any("WITHOUT the audit sidecar" in w for w in response["warnings"])
        else:
            assert response["status"]["code"] == 500 and "spec.containers" in response["status"]["message"]
        assert 'chaperone_injector_admissions_total{outcome="failed"} 1' in instance.metrics()
    finally:
        assert instance.stop() == 0


def test_certificate_files_are_reloaded(workdir, certs):
    directory = workdir / "injector-reload"
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "tls.crt", directory / "tls.key"
    first = issue(certs["dir"], certs["ca"], "first", ["localhost"])
    shutil.copy(first[0], cert)
    shutil.copy(first[1], key)
    instance = start_injector(directory / "run", files_config(cert, key), certs["ca"][0])
    try:
        before = peer_certificate_der(instance.port, certs["ca"][0])
        # Rotate the way kubelet updates a Secret volume: new files in place.
        second = issue(certs["dir"], certs["ca"], "second", ["localhost"])
        shutil.copy(second[1], key)
        shutil.copy(second[0], cert)
        after = poll(lambda: (der := peer_certificate_der(instance.port, certs["ca"][0])) != before and der,
                     timeout=15, interval=0.2, what="the rotated certificate")
        assert after != before
        assert instance.admit(load_review("deployment-pod"))["response"]["allowed"] is True
    finally:
        assert instance.stop() == 0


def test_missing_certificate_fails_start_clearly(workdir):
    directory = workdir / "injector-nocert"
    instance = start_injector(directory, files_config(directory / "absent.crt", directory / "absent.key"), None, wait_ready=False)
    code = instance.proc.wait(timeout=20)
    assert code != 0
    assert "cannot load the webhook certificate" in instance.log.read_text() or "absent.crt" in instance.log.read_text()


def self_signed_config(api: FakeKubernetesAPI) -> str:
    return (
        "namespace: chaperone-system\n"
        "tls:\n  mode: self-signed\n  reload_interval: 1s\n"
        f"kubernetes:\n  api_url: {api.url}\n  token_file: {api.token_file}\n  ca_file: {api.ca[0]}\n"
    )


def test_self_signed_mode_publishes_its_ca(workdir):
    directory = workdir / "injector-self-signed"
    api = FakeKubernetesAPI(directory / "api")
    api.state.webhooks["chaperone-injector"] = webhook_configuration("chaperone-injector", ["pods.chaperone.io", "pods-dry.chaperone.io"])
    api.state.fail_next = 10**6  # the API server is unavailable at first
    try:
        instance = start_injector(directory / "first", self_signed_config(api), None, wait_ready=False)
        try:
            # Alive (liveness holds) but not ready while no certificate can be obtained; retried.
            poll(lambda: instance.readyz() == 503, timeout=20, what="/readyz 503 while the API is down")
            assert httpx.get(f"http://127.0.0.1:{instance.admin_port}/healthz").status_code == 200
            poll(lambda: api.count("GET", "/secrets/") >= 3, timeout=20, what="retries")
            with api.state.lock:
                api.state.fail_next = 0
            poll(lambda: instance.readyz() == 200, timeout=30, what="/readyz once the API answers")
            material = api.secret_data("chaperone-system", "chaperone-injector-tls")
            assert material is not None and set(material) == {"ca.crt", "ca.key", "tls.crt", "tls.key"}
            ca_file = directory / "published-ca.crt"
            ca_file.write_bytes(material["ca.crt"])
            bundles = api.ca_bundle("chaperone-injector")
            assert bundles == [base64.b64encode(material["ca.crt"]).decode()] * 2
            # The serving certificate chains to the published CA under the Service's DNS name.
            instance.ca_file = ca_file
            for name in ("chaperone-injector.chaperone-system.svc", "chaperone-injector.chaperone-system.svc.cluster.local"):
                peer_certificate_der(instance.port, ca_file, name)
            patches = api.count("PATCH", "mutatingwebhookconfigurations")
            assert patches == 1
            # The collector's serving certificate, from the same CA, without the CA's key.
            collector = api.secret_data("chaperone-system", "chaperone-collector-tls")
            assert collector is not None and set(collector) == {"ca.crt", "tls.crt", "tls.key"}
            assert collector["ca.crt"] == material["ca.crt"]
            (directory / "collector.crt").write_bytes(collector["tls.crt"])
            for name in ("chaperone-collector.chaperone-system.svc", "chaperone-collector.chaperone-system.svc.cluster.local", "localhost"):
                verified = subprocess.run(["openssl", "verify", "-CAfile", str(ca_file), "-verify_hostname", name, "-purpose", "sslserver",
                                           str(directory / "collector.crt")], capture_output=True, text=True)
                assert verified.returncode == 0, verified.stdout + verified.stderr
            # Every sidecar is handed that CA, so it can verify the collector.
            review = load_review("deployment-pod")
            context = ssl.create_default_context(cafile=str(ca_file))
            context.check_hostname = False  # the names were checked above; this is about the patch
            answer = httpx.post(instance.url, json=review, verify=context, timeout=10).json()
            pod = patched_pod(review, answer["response"])
            env = {e["name"]: e.get("value") for e in pod["spec"]["initContainers"][0]["env"]}
            assert env["CHAPERONE_COLLECTOR_CA"] == material["ca.crt"].decode()
            assert "CHAPERONE_CONFIG" not in env and "CHAPERONE_POLICY" not in env
        finally:
            assert instance.stop() == 0
        # A restart (or a second replica) reuses the Secret and leaves an identical caBundle alone.
        again = start_injector(directory / "second", self_signed_config(api), None)
        try:
            assert api.secret_data("chaperone-system", "chaperone-injector-tls") == material
            assert api.secret_data("chaperone-system", "chaperone-collector-tls") == collector
            assert api.count("POST", "/secrets") == 2 and api.count("PUT", "/secrets") == 0
            assert api.count("PATCH", "mutatingwebhookconfigurations") == 1
            assert 'chaperone_injector_ca_bundle_syncs_total{outcome="unchanged"}' in again.metrics()
        finally:
            assert again.stop() == 0
        # Someone resets the caBundle (a re-applied manifest): the next start puts it back.
        with api.state.lock:
            for hook in api.state.webhooks["chaperone-injector"]["webhooks"]:
                hook["clientConfig"].pop("caBundle", None)
        third = start_injector(directory / "third", self_signed_config(api), None)
        try:
            assert api.ca_bundle("chaperone-injector") == [base64.b64encode(material["ca.crt"]).decode()] * 2
            assert api.state.unauthorized == 0
        finally:
            assert third.stop() == 0
    finally:
        api.close()


def test_classic_sidecar_hook_waits_for_the_proxy(proxy):
    """The command the classic sidecar's postStart hook runs: exits 0 once /readyz answers,
    1 with a message when nothing becomes ready in time."""
    import subprocess

    from conftest import binary, free_port

    ready = subprocess.run([str(binary("chaperone-proxy")), "wait-ready", "--admin", f"127.0.0.1:{proxy.admin_port}", "--timeout", "10s"],
                           capture_output=True, timeout=30)
    assert ready.returncode == 0, ready.stderr
    absent = subprocess.run([str(binary("chaperone-proxy")), "wait-ready", "--admin", f"127.0.0.1:{free_port()}", "--timeout", "1s"],
                            capture_output=True, timeout=30)
    assert absent.returncode == 1 and b"did not answer 200 within 1s" in absent.stderr


def test_sidecar_handover_reaches_the_sidecar_and_follows_edits(workdir, certs):
    """The installation's sidecar configuration, policy and collector CA (the chaperone-sidecar
    ConfigMap and the CA, mounted into the injector) are handed to every new sidecar as env, and
    an edit reaches the next pod without a restart; a bad edit is refused and the last good
    configuration stays."""
    directory = workdir / "injector-handover"
    directory.mkdir(parents=True)
    proxy = directory / "proxy.yaml"
    policy = directory / "policy.yaml"
    proxy.write_text("collector:\n  url: https://chaperone-collector.chaperone-system.svc:8080\n")
    policy.write_text("rules:\n  - id: no-kubeconfig\n    match: {keywords: [kubeconfig]}\n    action: deny\n")
    extra = f"sidecar:\n  config_file: {proxy}\n  policy_file: {policy}\n  collector_ca_file: {certs['ca'][0]}\n"
    instance = start_injector(directory, files_config(*certs["serving"], extra), certs["ca"][0])
    try:
        def sidecar_env() -> dict:
            review = load_review("deployment-pod")
            pod = patched_pod(review, instance.admit(review)["response"])
            validate(pod)
            return {e["name"]: e.get("value") for e in pod["spec"]["initContainers"][0]["env"]}

        env = sidecar_env()
        assert env["CHAPERONE_CONFIG"] == proxy.read_text()
        assert env["CHAPERONE_POLICY"] == policy.read_text()
        assert env["CHAPERONE_COLLECTOR_CA"] == Path(certs["ca"][0]).read_text()
        # The agent container gets none of it.
        review = load_review("deployment-pod")
        pod = patched_pod(review, instance.admit(review)["response"])
        for container in pod["spec"]["containers"]:
            assert not {e["name"] for e in container.get("env", [])} & {"CHAPERONE_CONFIG", "CHAPERONE_POLICY", "CHAPERONE_COLLECTOR_CA"}

        # An edit (as the kubelet swaps a ConfigMap) reaches the next pod.
        policy.write_text("rules:\n  - id: no-env-dump\n    match: {keywords: [printenv]}\n    action: deny\n")
        poll(lambda: sidecar_env()["CHAPERONE_POLICY"] == policy.read_text(), timeout=15, what="the new policy")
        assert '"message":"sidecar.handover_changed"' in instance.log.read_text()
        # A broken edit is refused; pods keep getting the last good one.
        good = policy.read_text()
        policy.write_text("rules:\n  - id: broken\n    action: explode\n")
        poll(lambda: "sidecar.handover_reload_failed" in instance.log.read_text(), timeout=15, what="the refusal")
        assert sidecar_env()["CHAPERONE_POLICY"] == good
    finally:
        assert instance.stop() == 0
