"""The scale-out deployment files (SCALING.md): Kubernetes manifests validated against the
Kubernetes schemas (offline, kubernetes-validate), and the `cluster` compose profile checked
for what Thiqa needs. No container engine runs here, so these are read, not run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from service.settings import Settings
from service.store.connection import parse_redis_url

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES = ROOT / "deploy" / "kubernetes"
COMPOSE = ROOT / "deploy" / "compose" / "cluster.yml"
#: The Kubernetes version the manifests are checked against.
KUBERNETES_VERSION = "1.30.0"


def _documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text("utf-8")):
            if doc:
                found.append((path.name, doc))
    return found


def _one(kind: str) -> dict[str, Any]:
    (doc,) = [d for _, d in _documents() if d["kind"] == kind]
    return doc


@pytest.mark.parametrize(
    ("name", "doc"), _documents(), ids=lambda v: v if isinstance(v, str) else v["kind"]
)
def test_each_manifest_is_valid_kubernetes(name: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    assert doc["metadata"].get("namespace", "thiqa") == "thiqa" or doc["kind"] == "Namespace"


def test_the_manifests_hold_the_required_kinds() -> None:
    kinds = sorted(d["kind"] for _, d in _documents())
    assert kinds == [
        "Deployment",
        "Namespace",
        "PodDisruptionBudget",
        "Secret",
        "Secret",
        "Secret",
        "Service",
    ]


def test_deployment_is_ready_on_ready_alive_on_health_and_hardened() -> None:
    pod = _one("Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert pod["automountServiceAccountToken"] is False


def test_deployment_takes_its_secrets_from_the_secrets_declared() -> None:
    secrets = {d["metadata"]["name"]: d for _, d in _documents() if d["kind"] == "Secret"}
    pod = _one("Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    from_secrets = {
        e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e
    }
    assert set(from_secrets) == {"THIQA_KEY_PASSPHRASE", "THIQA_REDIS_URL"}
    for ref in from_secrets.values():
        assert ref["key"] in secrets[ref["name"]]["stringData"]
    (keys,) = [v for v in pod["volumes"] if v["name"] == "keys"]
    assert keys["secret"]["secretName"] in secrets
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "keys"]
    assert mount["readOnly"] is True


def test_deployment_environment_is_real_settings() -> None:
    (container,) = _one("Deployment")["spec"]["template"]["spec"]["containers"]
    secrets = {d["metadata"]["name"]: d for _, d in _documents() if d["kind"] == "Secret"}
    environ = {}
    for entry in container["env"]:
        if "value" in entry:
            environ[entry["name"]] = entry["value"]
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            environ[entry["name"]] = secrets[ref["name"]]["stringData"][ref["key"]]
    assert Settings.unknown_variables(environ) == []
    settings = Settings(**{k.removeprefix("THIQA_").lower(): v for k, v in environ.items()})
    assert settings.redis_url is not None
    assert parse_redis_url(settings.redis_url.get_secret_value()).kind == "cluster"
    assert settings.redis_min_replicas == 1
    assert settings.demo_ui is False
    assert container["volumeMounts"][0]["mountPath"] == str(settings.keys_dir)


def test_service_and_budget_select_the_deployments_pods() -> None:
    labels = _one("Deployment")["spec"]["template"]["metadata"]["labels"]
    for kind in ("Service", "PodDisruptionBudget"):
        doc = _one(kind)
        selector = doc["spec"]["selector"]
        selector = selector.get("matchLabels", selector)
        assert selector.items() <= labels.items(), kind
    assert _one("Service")["spec"]["ports"][0]["targetPort"] == "http"


# -- the `cluster` compose profile ----------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text("utf-8"))


def _command(service: dict[str, Any]) -> dict[str, str]:
    args = service["command"][1:]
    return {args[i].removeprefix("--"): args[i + 1] for i in range(0, len(args), 2)}


def test_every_service_is_in_the_cluster_profile(compose: dict[str, Any]) -> None:
    assert all(s["profiles"] == ["cluster"] for s in compose["services"].values())
    assert "version" not in compose


def test_six_durable_never_evicting_cluster_nodes(compose: dict[str, Any]) -> None:
    nodes = {
        n: s for n, s in compose["services"].items() if n.startswith("redis-") and n[-1].isdigit()
    }
    assert len(nodes) == 6
    for name, service in nodes.items():
        options = _command(service)
        assert options["cluster-enabled"] == "yes"
        assert options["maxmemory-policy"] == "noeviction"
        assert (options["appendonly"], options["appendfsync"]) == ("yes", "always")
        assert f"{name}-data" in compose["volumes"]
        assert "ports" not in service  # Redis stays on the project network
    init = compose["services"]["redis-cluster-init"]["command"][-1]
    assert "--cluster-replicas 1" in init
    assert all(f"{n}:6379" in init for n in nodes)


def test_several_api_replicas_on_the_cluster_behind_the_proxy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    api = services["api"]
    assert api["deploy"]["replicas"] >= 2
    environ = {
        k: v.split(":-")[-1].rstrip("}") if "${" in v else v for k, v in api["environment"].items()
    }
    assert Settings.unknown_variables(environ) == []
    settings = Settings(**{k.removeprefix("THIQA_").lower(): v for k, v in environ.items()})
    assert settings.redis_url is not None
    topology = parse_redis_url(settings.redis_url.get_secret_value())
    assert topology.kind == "cluster"
    assert {host for host, _ in topology.nodes} <= set(services)
    assert "ports" not in api  # reached through the proxy only
    proxy = services["proxy"]
    assert "api" in proxy["depends_on"]
    nginx = (COMPOSE.parent / "nginx.conf").read_text("utf-8")
    assert "server api:8000" in nginx
    assert "location = /metrics { return 404; }" in nginx


def test_the_schema_check_is_real_a_misspelt_field_is_refused() -> None:
    broken = yaml.safe_load((KUBERNETES / "deployment.yaml").read_text("utf-8"))
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
