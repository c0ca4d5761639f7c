"""Packaging: the Helm chart, Manifests/ and the Dockerfile, checked with the real tools.

- `helm lint` and `helm template` (real helm, from ../shared/tools/install-helm) for the default
  values and each documented variant; values the schema or the chart refuse are refused with the
  field named;
- Manifests/ is exactly the chart's rendering (scripts/render-manifests.py --check);
- every manifest and every rendered template passes `kubernetes-validate --strict` (Kubernetes'
  own OpenAPI schemas; cert-manager objects are checked against their CRD's required fields);
- yamllint on everything hand-written or generated, hadolint on the Dockerfile;
- the configurations the chart renders are accepted by the real binaries' --check-config, and the
  sidecar's reaches the proxy through the environment the injector sets.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import BIN_DIR, REPO

CHART = REPO / "Helm" / "chaperone"
VENV_BIN = Path(sys.executable).parent
NAMESPACE = "chaperone-system"


def helm_path() -> str:
    for candidate in (os.environ.get("HELM"), shutil.which("helm"), str(Path.home() / ".local/bin/helm")):
        if candidate and Path(candidate).exists():
            return candidate
    installer = REPO.parent / "shared" / "tools" / "install-helm"
    return subprocess.run([str(installer)], check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]


HELM = helm_path()

# Value sets every test renders: name -> helm arguments.
VARIANTS = {
    "default": [],
    "manifests": ["--set", "namespace.create=true"],
    "postgresql": ["--values", str(CHART / "examples" / "postgresql-values.yaml")],
    "cert-manager": ["--values", str(CHART / "examples" / "cert-manager-values.yaml")],
    "cert-manager-cluster-issuer": ["--set", "certificates.mode=cert-manager", "--set", "certificates.certManager.issuerName=corp-ca",
                                    "--set", "certificates.certManager.issuerKind=ClusterIssuer"],
    "files": ["--set", "certificates.mode=files", "--set", "certificates.caBundle=LS0tLS1CRUdJTg=="],
    "token-review-classic": ["--set", "collector.authentication.mode=token-review", "--set", "sidecar.native=false",
                             "--set", "networkPolicy.enabled=false", "--set", "cluster=prod-eu-1"],
    "rules": ["--set-json", 'sidecar.policy.rules=[{"id":"no-kubeconfig","match":{"keywords":["kubeconfig"]},'
              '"action":"deny","message":"no cluster credentials","severity":"high"}]'],
    "approvals": ["--values", str(CHART / "examples" / "approvals-values.yaml")],
}


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([HELM, *args], capture_output=True, text=True, check=check)


def render(variant: str) -> list[dict]:
    text = helm("template", "chaperone", str(CHART), "--namespace", NAMESPACE, *VARIANTS[variant]).stdout
    return [doc for doc in yaml.safe_load_all(text) if doc]


def objects(docs: list[dict], kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_helm_lint(variant):
    result = helm("lint", "--strict", str(CHART), "--namespace", NAMESPACE, *VARIANTS[variant], check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_manifests_are_the_charts_rendering():
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "render-manifests.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    # And the default rendering is Manifests/ without the Namespace object.
    default = render("default")
    manifests = render("manifests")
    assert [d for d in manifests if d["kind"] != "Namespace"] == default
    namespace = objects(manifests, "Namespace")[NAMESPACE]
    assert namespace["metadata"]["labels"]["chaperone.io/inject"] == "disabled"
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def kubernetes_validate(paths: list[Path]) -> None:
    result = subprocess.run([str(VENV_BIN / "kubernetes-validate"), "--strict", "--quiet", *map(str, paths)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_manifests_and_examples_validate():
    paths = sorted((REPO / "Manifests").rglob("*.yaml"))
    assert any("examples" in p.parts for p in paths) and any("postgresql" in p.parts for p in paths)
    kubernetes_validate(paths)


# cert-manager is not part of Kubernetes, so kubernetes-validate has no schema for it: its
# objects are checked here against the fields cert-manager's CRDs require.
CERT_MANAGER_REQUIRED = {"Certificate": ["secretName", "issuerRef"], "Issuer": []}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_rendered_templates_validate(variant, tmp_path):
    docs = render(variant)
    core, extra = [], []
    for doc in docs:
        (extra if doc["apiVersion"].startswith("cert-manager.io/") else core).append(doc)
    for doc in extra:
        assert doc["kind"] in CERT_MANAGER_REQUIRED, doc["kind"]
        for field in CERT_MANAGER_REQUIRED[doc["kind"]]:
            assert field in doc["spec"], (doc["metadata"]["name"], field)
    if variant.startswith("cert-manager"):
        certificates = objects(extra, "Certificate")
        assert certificates["chaperone-injector"]["spec"]["secretName"] == "chaperone-injector-tls"
        assert "chaperone-collector.chaperone-system.svc" in certificates["chaperone-collector"]["spec"]["dnsNames"]
    path = tmp_path / f"{variant}.yaml"
    path.write_text(yaml.safe_dump_all(core))
    kubernetes_validate([path])


def test_webhook_configuration_is_safe():
    docs = render("default")
    webhook = objects(docs, "MutatingWebhookConfiguration")["chaperone-injector"]["webhooks"][0]
    assert webhook["failurePolicy"] == "Fail" and webhook["sideEffects"] == "None"
    assert webhook["timeoutSeconds"] <= 10 and webhook["reinvocationPolicy"] == "Never"
    assert webhook["clientConfig"]["service"] == {"name": "chaperone-injector", "namespace": NAMESPACE, "path": "/mutate", "port": 443}
    assert "caBundle" not in webhook["clientConfig"]  # self-signed: the injector patches it in
    selector = {e["key"]: e for e in webhook["namespaceSelector"]["matchExpressions"]}
    assert selector["chaperone.io/inject"]["values"] == ["enabled"]
    assert NAMESPACE in selector["kubernetes.io/metadata.name"]["values"]
    assert webhook["objectSelector"]["matchExpressions"] == [{"key": "chaperone.io/inject", "operator": "NotIn", "values": ["false"]}]
    service = objects(docs, "Service")["chaperone-injector"]
    assert service["spec"]["ports"][0]["port"] == 443


def test_least_privilege_rbac():
    docs = render("default")
    roles = objects(docs, "ClusterRole")
    # The injector may touch its own webhook configuration and nothing else cluster-wide.
    assert roles["chaperone-injector"]["rules"] == [{
        "apiGroups": ["admissionregistration.k8s.io"], "resources": ["mutatingwebhookconfigurations"],
        "resourceNames": ["chaperone-injector"], "verbs": ["get", "patch"]}]
    role = objects(docs, "Role")["chaperone-injector"]
    named = [r for r in role["rules"] if "resourceNames" in r]
    assert named == [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["chaperone-injector-tls", "chaperone-collector-tls"], "verbs": ["get", "update"]}]
    assert all(r["verbs"] in (["get", "update"], ["create"]) for r in role["rules"])
    assert "chaperone-collector-token-review" not in roles  # jwks mode needs no TokenReviews
    # token-review mode: exactly `create tokenreviews`.
    review = objects(render("token-review-classic"), "ClusterRole")["chaperone-collector-token-review"]
    assert review["rules"] == [{"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]}]
    # Without self-signed certificates the injector needs no API access at all.
    files = render("files")
    assert "chaperone-injector" not in objects(files, "ClusterRole") and not objects(files, "Role")
    injector_pod = objects(files, "Deployment")["chaperone-injector"]["spec"]["template"]["spec"]
    assert injector_pod["automountServiceAccountToken"] is False


def test_workloads_are_hardened():
    docs = render("default")
    deployments = objects(docs, "Deployment")
    injector = deployments["chaperone-injector"]
    assert injector["spec"]["replicas"] == 2
    assert injector["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert objects(docs, "PodDisruptionBudget")["chaperone-injector"]["spec"]["minAvailable"] == 1
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False and security["readOnlyRootFilesystem"] is True, name
            assert security["capabilities"] == {"drop": ["ALL"]}, name
            assert container["readinessProbe"] and container["livenessProbe"] and container["resources"]["requests"], name
            assert container["command"][0].startswith("/usr/local/bin/chaperone-"), name
    collector = deployments["chaperone-collector"]
    assert collector["spec"]["strategy"]["type"] == "Recreate"
    volumes = {v["name"]: v for v in collector["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == "chaperone-collector-data"
    assert volumes["readers"]["secret"]["optional"] is True
    postgres = objects(render("postgresql"), "Deployment")["chaperone-collector"]
    assert postgres["spec"]["replicas"] == 2 and "strategy" not in postgres["spec"]
    assert "chaperone-collector-data" not in objects(render("postgresql"), "PersistentVolumeClaim")


@pytest.mark.parametrize("arguments, message", [
    (["--set", "injector.timeoutSeconds=30"], "/injector/timeoutSeconds"),
    (["--set", "injector.failurePolicy=Maybe"], "/injector/failurePolicy"),
    (["--set", "sidecar.spool.overflow=ignore"], "/sidecar/spool/overflow"),
    (["--set", "collector.replicas=2"], "collector.replicas > 1 needs collector.storage.backend: postgres"),
    (["--set", "collector.storage.backend=postgres"], "collector.storage.postgres.host is required"),
    (["--set", "certificates.mode=files"], "certificates.caBundle"),
    (["--set", "injector.unknownKey=1"], "unknownKey"),
    (["--set", "collector.approvals.oidc.issuer=https://idp"], "collector.approvals.oidc.audience is required"),
    (["--set", "collector.approvals.notifications.format=teams"], "/collector/approvals/notifications/format"),
])
def test_bad_values_are_refused_with_the_field_named(arguments, message):
    result = helm("template", "chaperone", str(CHART), *arguments, check=False)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_yamllint():
    paths = ["Manifests", "Helm/chaperone/values.yaml", "Helm/chaperone/Chart.yaml", "Helm/chaperone/examples", ".yamllint.yaml"]
    result = subprocess.run([str(VENV_BIN / "yamllint"), "--strict", *paths], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint():
    result = subprocess.run([str(VENV_BIN / "hadolint"), "Dockerfile"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    text = (REPO / "Dockerfile").read_text()
    assert "--static-swift-stdlib" in (REPO / "scripts" / "build-release.sh").read_text()
    assert "scripts/build-release.sh" in text and "USER 65532:65532" in text
    assert "org.opencontainers.image.source" in text


def config_map(docs: list[dict], name: str) -> dict[str, str]:
    return objects(docs, "ConfigMap")[name]["data"]


@pytest.mark.parametrize("variant", ["manifests", "postgresql", "cert-manager", "rules", "approvals"])
def test_rendered_configurations_are_accepted_by_the_binaries(variant, tmp_path):
    docs = render(variant)
    sidecar = config_map(docs, "chaperone-sidecar")
    (tmp_path / "proxy.yaml").write_text(sidecar["proxy.yaml"])
    (tmp_path / "policy.yaml").write_text(sidecar["policy.yaml"])

    # The injector, with the sidecar files where its Deployment mounts them (here: tmp_path).
    injector = yaml.safe_load(config_map(docs, "chaperone-injector")["injector.yaml"])
    assert injector["sidecar"]["config_file"] == "/etc/chaperone/sidecar/proxy.yaml"
    injector["sidecar"]["config_file"] = str(tmp_path / "proxy.yaml")
    injector["sidecar"]["policy_file"] = str(tmp_path / "policy.yaml")
    if "collector_ca_file" in injector["sidecar"]:
        assert variant == "cert-manager"
        from injector_support import make_ca
        ca, _ = make_ca(tmp_path)
        injector["sidecar"]["collector_ca_file"] = str(ca)
    (tmp_path / "injector.yaml").write_text(yaml.safe_dump(injector))
    checked = subprocess.run([str(BIN_DIR / "chaperone-injector"), "--config", str(tmp_path / "injector.yaml"), "--check-config"],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    assert "sidecar configuration: " + str(tmp_path / "proxy.yaml") in checked.stdout

    # The proxy, configured as the injector configures a sidecar: through its environment.
    env = dict(os.environ, CHAPERONE_CONFIG=sidecar["proxy.yaml"], CHAPERONE_POLICY=sidecar["policy.yaml"])
    checked = subprocess.run([str(BIN_DIR / "chaperone-proxy"), "--check-config"], capture_output=True, text=True, env=env)
    assert checked.returncode == 0, checked.stderr
    assert "collector https://chaperone-collector.chaperone-system.svc:8080" in checked.stdout
    rules = 1 if variant in ("rules", "approvals") else 0
    assert f"policy ok: {rules + builtin_rule_count()} rules" in checked.stdout

    collector = tmp_path / "collector.yaml"
    collector.write_text(config_map(docs, "chaperone-collector")["collector.yaml"])
    checked = subprocess.run([str(BIN_DIR / "chaperone-collector"), "--config", str(collector), "--check-config"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    if variant == "approvals":
        approvals = yaml.safe_load(collector.read_text())["approvals"]
        assert approvals["oidc"]["approver_groups"] == ["platform-oncall"]
        assert approvals["notifications"]["webhook_url_file"] == "/etc/chaperone/collector/webhook/url"
        assert yaml.safe_load(sidecar["proxy.yaml"])["approvals"]["timeout"] == "15m"
        mounts = objects(docs, "Deployment")["chaperone-collector"]["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
        assert {"name": "approvals-webhook", "mountPath": "/etc/chaperone/collector/webhook", "readOnly": True} in mounts


def builtin_rule_count() -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAPERONE_")}
    out = subprocess.run([str(BIN_DIR / "chaperone-proxy"), "--check-config"], capture_output=True, text=True, env=env, check=True).stdout
    return int(out.split("policy ok: ")[1].split(" ")[0])


def test_a_bad_sidecar_configuration_stops_the_injector_and_the_proxy(tmp_path):
    (tmp_path / "proxy.yaml").write_text("collector:\n  url: https://c.example:8080\n  batch_events: lots\n")
    (tmp_path / "injector.yaml").write_text(f"sidecar:\n  config_file: {tmp_path / 'proxy.yaml'}\n")
    checked = subprocess.run([str(BIN_DIR / "chaperone-injector"), "--config", str(tmp_path / "injector.yaml"), "--check-config"],
                             capture_output=True, text=True)
    assert checked.returncode != 0
    assert f"{tmp_path / 'proxy.yaml'}: collector.batch_events" in checked.stderr
    env = dict(os.environ, CHAPERONE_CONFIG="collector:\n  url: https://c.example:8080\n  batch_events: lots\n")
    checked = subprocess.run([str(BIN_DIR / "chaperone-proxy"), "--check-config"], capture_output=True, text=True, env=env)
    assert checked.returncode != 0 and "$CHAPERONE_CONFIG: collector.batch_events" in checked.stderr
    env = dict(os.environ, CHAPERONE_POLICY="rules:\n  - id: x\n    action: explode\n")
    checked = subprocess.run([str(BIN_DIR / "chaperone-proxy"), "--check-config"], capture_output=True, text=True, env=env)
    assert checked.returncode != 0 and "$CHAPERONE_POLICY" in checked.stderr
    # A policy.file in the sidecar's configuration cannot work (the sidecar cannot see it).
    (tmp_path / "proxy.yaml").write_text("policy:\n  file: /etc/policy.yaml\n")
    checked = subprocess.run([str(BIN_DIR / "chaperone-injector"), "--config", str(tmp_path / "injector.yaml"), "--check-config"],
                             capture_output=True, text=True)
    assert checked.returncode != 0 and "policy.file" in checked.stderr and "sidecar.policy_file" in checked.stderr
