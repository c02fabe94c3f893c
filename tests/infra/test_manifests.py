"""Static checks of the deployment artefacts under ``infra/``.

Nothing here needs Docker or a cluster: the Kubernetes manifests are validated
against the OpenAPI schemas bundled with ``kubernetes-validate`` (strict mode,
so unknown fields fail), ``compose.yaml`` and the realm export are parsed, and
the Dockerfile is read instruction by instruction. Beyond schema validity the
tests check the properties the platform relies on: probes on /readyz and
/healthz, non-root execution, env wiring from ConfigMap/Secret only, two API
replicas in compose, least privilege for the database credentials.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions, major_minor

from backend.db.roles import APP_ROLE, OWNER_ROLE
from backend.settings import SettingsError, load_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA = REPO_ROOT / "infra"
K8S = INFRA / "k8s"
DOCKERFILE = INFRA / "Dockerfile"
COMPOSE = INFRA / "compose.yaml"
REALM = INFRA / "keycloak" / "realm-kreis-soest.json"
NGINX_CONF = INFRA / "nginx" / "nginx.conf"

# Oldest Kubernetes minor we document as supported, and the newest schema
# bundled with kubernetes-validate.
K8S_VERSIONS = ("1.30", major_minor(kubernetes_validate.latest_version()))

# Everything the API process reads from its environment (see the app's settings).
APP_RUNTIME_ENV = frozenset(
    {
        "APP_ENV",
        "APP_DATABASE_URL",
        "DB_POOL_MIN",
        "DB_POOL_MAX",
        "REDIS_URL",
        "SECRETS_KEY",
        "LOG_LEVEL",
        "LOG_FORMAT",
        "PUBLIC_BASE_URL",
        "GRAPHQL_INTROSPECTION",
        "GRAPHIQL_ENABLED",
        "DEV_SIGNIN_ENABLED",
        "JWT_LEEWAY_SECONDS",
        "JWKS_CACHE_SECONDS",
        "METRICS_PORT",
    }
)
# Only the migration may hold the privileged connection and the role password.
MIGRATION_ONLY_ENV = frozenset({"DATABASE_URL", "DB_APP_PASSWORD"})
MIGRATION_ENV = frozenset({"DATABASE_URL", "DB_APP_PASSWORD"})


# --------------------------------------------------------------------------
# loaders
# --------------------------------------------------------------------------


def _load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc is not None]


@functools.cache
def _kustomization() -> dict[str, Any]:
    docs = _load_yaml_docs(K8S / "kustomization.yaml")
    assert len(docs) == 1
    return docs[0]


@functools.cache
def _k8s_resources() -> tuple[tuple[str, dict[str, Any]], ...]:
    """(file name, document) for every resource the kustomization renders."""
    out: list[tuple[str, dict[str, Any]]] = []
    for name in _kustomization()["resources"]:
        for doc in _load_yaml_docs(K8S / name):
            out.append((name, doc))
    return tuple(out)


def _manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.y*ml") if p.name != "kustomization.yaml")


def _of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in _k8s_resources() if doc["kind"] == kind]


def _one(kind: str) -> dict[str, Any]:
    docs = _of_kind(kind)
    assert len(docs) == 1, f"expected exactly one {kind}, found {len(docs)}"
    return docs[0]


def _pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = _pod_spec(workload)["containers"]
    assert len(containers) == 1, "one application container per pod"
    return containers[0]


def _named(kind: str, name: str) -> dict[str, Any] | None:
    for doc in _of_kind(kind):
        if doc["metadata"]["name"] == name:
            return doc
    return None


def _data_keys(doc: dict[str, Any]) -> set[str]:
    return set(doc.get("data") or {}) | set(doc.get("stringData") or {})


def _data(doc: dict[str, Any]) -> dict[str, str]:
    return {**(doc.get("data") or {}), **(doc.get("stringData") or {})}


@functools.cache
def _compose() -> dict[str, Any]:
    with COMPOSE.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    assert isinstance(data, dict)
    return data


def _service(name: str) -> dict[str, Any]:
    services = _compose()["services"]
    assert name in services, f"compose service {name!r} missing"
    return services[name]


def _env_map(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


# --------------------------------------------------------------------------
# Dockerfile parsing
# --------------------------------------------------------------------------


@functools.cache
def _dockerfile() -> tuple[tuple[str, str], ...]:
    """(INSTRUCTION, arguments) with comments dropped and continuations joined."""
    instructions: list[tuple[str, str]] = []
    buf = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not buf):
            continue
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        line = (buf + stripped).strip()
        buf = ""
        if not line:
            continue
        keyword, _, args = line.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    assert not buf, "Dockerfile ends inside a line continuation"
    return tuple(instructions)


def _stages() -> list[list[tuple[str, str]]]:
    """Instructions grouped per build stage; the FROM line starts each group."""
    stages: list[list[tuple[str, str]]] = []
    for ins in _dockerfile():
        if ins[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(ins)
    return stages


def _global_args() -> dict[str, str]:
    args: dict[str, str] = {}
    for keyword, value in _dockerfile():
        if keyword == "FROM":
            break
        if keyword == "ARG" and "=" in value:
            name, default = value.split("=", 1)
            args[name.strip()] = default.strip().strip('"')
    return args


def _from_image(from_args: str) -> str:
    words = [w for w in from_args.split() if not w.startswith("--")]
    image = words[0]
    return re.sub(
        r"\$\{(\w+)\}|\$(\w+)",
        lambda m: _global_args()[m.group(1) or m.group(2)],
        image,
    )


def _env_pairs(value: str) -> dict[str, str]:
    # `ENV A=1 B="x y"` (the legacy `ENV A 1` form is not used here)
    return {k: v.strip('"') for k, v in re.findall(r'(\w+)=("[^"]*"|\S+)', value)}


def _final_stage() -> list[tuple[str, str]]:
    return _stages()[-1]


def _dockerfile_uid() -> int:
    users = [v for k, v in _final_stage() if k == "USER"]
    assert users, "final stage sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "USER must be numeric so that runAsNonRoot can be verified by the kubelet"
    return int(uid)


# --------------------------------------------------------------------------
# Kubernetes: schema validation
# --------------------------------------------------------------------------


def test_kustomization_lists_every_manifest() -> None:
    listed = _kustomization()["resources"]
    assert len(listed) == len(set(listed)), "duplicate entries in kustomization resources"
    assert sorted(listed) == [p.name for p in _manifest_files()]
    assert "namespace" not in _kustomization(), "manifests are namespace-less by design"
    for _, doc in _k8s_resources():
        assert "namespace" not in doc["metadata"], f"{doc['kind']} hard-codes a namespace"


def test_k8s_versions_are_bundled() -> None:
    bundled = {major_minor(v) for v in all_versions()}
    for version in K8S_VERSIONS:
        assert version in bundled, f"kubernetes-validate has no schemas for {version}"


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", _manifest_files(), ids=lambda p: p.name)
def test_manifest_is_valid(path: Path, version: str) -> None:
    docs = _load_yaml_docs(path)
    assert docs, f"{path.name} is empty"
    for doc in docs:
        # Any exception (ValidationError, SchemaNotFoundError for an unknown
        # kind/apiVersion, ...) fails the test.
        kubernetes_validate.validate(doc, version, strict=True)


def test_validation_rejects_broken_manifest() -> None:
    """Guard against a validator that silently accepts everything."""
    deployment = copy.deepcopy(_one("Deployment"))
    _container(deployment)["readinesProbe"] = {"httpGet": {"path": "/readyz", "port": 8000}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)

    hpa = copy.deepcopy(_one("HorizontalPodAutoscaler"))
    hpa["spec"]["maxReplicas"] = "ten"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(hpa, K8S_VERSIONS[-1], strict=True)


def test_expected_kinds_present() -> None:
    kinds = sorted(doc["kind"] for _, doc in _k8s_resources())
    for kind in (
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Job",
        "PodDisruptionBudget",
        "Secret",
        "Service",
    ):
        assert kind in kinds, f"no {kind} in the kustomization"
    names = [(doc["kind"], doc["metadata"]["name"]) for _, doc in _k8s_resources()]
    assert len(names) == len(set(names)), "duplicate kind/name"


# --------------------------------------------------------------------------
# Kubernetes: Deployment
# --------------------------------------------------------------------------


def _container_port(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        declared = {p["containerPort"] for p in container["ports"]}
        assert port in declared, f"port {port} not declared by the container"
        return port
    by_name = {p.get("name"): p["containerPort"] for p in container["ports"]}
    assert port in by_name, f"named port {port!r} not declared by the container"
    return by_name[port]


def test_deployment_probes() -> None:
    deployment = _one("Deployment")
    container = _container(deployment)
    expected = {
        "readinessProbe": "/readyz",
        "livenessProbe": "/healthz",
        "startupProbe": "/healthz",
    }
    for probe_name, path in expected.items():
        probe = container.get(probe_name)
        assert probe, f"{probe_name} missing"
        http = probe.get("httpGet")
        assert http, f"{probe_name} must be an httpGet probe"
        assert http["path"] == path
        assert _container_port(container, http["port"]) == 8000
    # a liveness probe must not depend on the database: restarting pods does
    # not fix an unreachable PostgreSQL.
    assert container["livenessProbe"]["httpGet"]["path"] != "/readyz"


def test_deployment_replicas_and_rollout() -> None:
    deployment = _one("Deployment")
    # the HPA owns the count: a fixed one would reset it on every apply
    assert "replicas" not in deployment["spec"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items(), "selector must match the pod template labels"
    rolling = deployment["spec"]["strategy"]["rollingUpdate"]
    assert rolling["maxUnavailable"] == 0


def _effective_security(workload: dict[str, Any]) -> dict[str, Any]:
    pod = _pod_spec(workload).get("securityContext") or {}
    ctr = _container(workload).get("securityContext") or {}
    return {**pod, **ctr}


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_workload_security_context(kind: str) -> None:
    workload = _one(kind)
    sec = _effective_security(workload)
    assert sec.get("runAsNonRoot") is True
    assert sec.get("runAsUser", _dockerfile_uid()) != 0
    ctr = _container(workload)["securityContext"]
    assert ctr.get("readOnlyRootFilesystem") is True
    assert ctr.get("allowPrivilegeEscalation") is False
    assert ctr.get("privileged", False) is False
    assert "ALL" in ctr["capabilities"]["drop"]
    assert not ctr["capabilities"].get("add")
    assert _pod_spec(workload).get("automountServiceAccountToken") is False
    # a read-only root needs a writable /tmp
    mounts = {m["mountPath"] for m in _container(workload).get("volumeMounts", [])}
    assert "/tmp" in mounts


def test_deployment_uid_matches_image() -> None:
    sec = _effective_security(_one("Deployment"))
    assert sec["runAsUser"] == _dockerfile_uid()


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_workload_resources(kind: str) -> None:
    resources = _container(_one(kind))["resources"]
    for section in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            assert resources.get(section, {}).get(resource), f"{kind}: {section}.{resource} missing"


def _env_sources(workload: dict[str, Any], *, literals_allowed: bool) -> dict[str, str]:
    """Every env var the container reads -> 'Kind/name' it comes from.

    Fails if a referenced ConfigMap/Secret (or key) is not rendered by the
    kustomization.
    """
    container = _container(workload)
    provided: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert "prefix" not in source
        if "configMapRef" in source:
            kind, name = "ConfigMap", source["configMapRef"]["name"]
        elif "secretRef" in source:
            kind, name = "Secret", source["secretRef"]["name"]
        else:  # pragma: no cover - schema allows nothing else
            raise AssertionError(f"unexpected envFrom {source}")
        doc = _named(kind, name)
        assert doc is not None, f"envFrom references {kind}/{name}, which is not in the kustomization"
        for key in _data_keys(doc):
            provided[key] = f"{kind}/{name}"
    for var in container.get("env", []):
        value_from = var.get("valueFrom")
        if value_from is None:
            assert literals_allowed, f"{var['name']} is a literal; use the ConfigMap/Secret"
            provided[var["name"]] = "literal"
            continue
        if "configMapKeyRef" in value_from:
            kind, ref = "ConfigMap", value_from["configMapKeyRef"]
        elif "secretKeyRef" in value_from:
            kind, ref = "Secret", value_from["secretKeyRef"]
        else:
            raise AssertionError(f"{var['name']} must come from a ConfigMap or Secret, not {value_from}")
        doc = _named(kind, ref["name"])
        assert doc is not None, f"{var['name']} references {kind}/{ref['name']}, not in the kustomization"
        assert ref["key"] in _data_keys(doc), f"{kind}/{ref['name']} has no key {ref['key']}"
        provided[var["name"]] = f"{kind}/{ref['name']}"
    return provided


def test_deployment_env_comes_from_configmap_and_secret() -> None:
    provided = _env_sources(_one("Deployment"), literals_allowed=False)
    missing = APP_RUNTIME_ENV - provided.keys()
    assert not missing, f"Deployment does not provide {sorted(missing)}"
    leaked = MIGRATION_ONLY_ENV & provided.keys()
    assert not leaked, f"API pods must not receive {sorted(leaked)} (migration-only credentials)"
    for secret_var in ("APP_DATABASE_URL", "REDIS_URL", "SECRETS_KEY"):
        assert provided[secret_var].startswith("Secret/"), f"{secret_var} must come from a Secret"
    for var, origin in provided.items():
        if origin.startswith("ConfigMap/"):
            assert not re.search(r"PASSWORD|SECRET|TOKEN|_URL$", var) or var == "PUBLIC_BASE_URL", (
                f"{var} looks like a credential but comes from a ConfigMap"
            )


def test_production_configuration() -> None:
    provided = _env_sources(_one("Deployment"), literals_allowed=False)
    config_name = provided["APP_ENV"].split("/", 1)[1]
    config = _data(_named("ConfigMap", config_name) or {})
    assert config["APP_ENV"] == "production"
    assert config["DEV_SIGNIN_ENABLED"] == "false"
    assert config["GRAPHIQL_ENABLED"] == "false"
    assert config["LOG_FORMAT"] in {"json", "console"}
    assert config["LOG_FORMAT"] == "json"
    assert int(config["DB_POOL_MIN"]) <= int(config["DB_POOL_MAX"])


def test_app_database_url_uses_the_application_role() -> None:
    deployment_env = _env_sources(_one("Deployment"), literals_allowed=False)
    secret = _data(_named("Secret", deployment_env["APP_DATABASE_URL"].split("/", 1)[1]) or {})
    url = urlsplit(secret["APP_DATABASE_URL"])
    assert url.scheme in {"postgres", "postgresql"}
    assert url.username == APP_ROLE, "APP_DATABASE_URL must log in as the application role"
    assert url.username not in {OWNER_ROLE, "postgres"}


def test_secrets_are_marked_placeholders() -> None:
    secrets = _of_kind("Secret")
    assert secrets
    for secret in secrets:
        annotations = secret["metadata"].get("annotations") or {}
        assert any(k.endswith("/placeholder") and v == "true" for k, v in annotations.items()), (
            f"Secret {secret['metadata']['name']} is not annotated as placeholder"
        )
        assert "stringData" in secret
        for key, value in secret["stringData"].items():
            assert "CHANGE-ME" in value, f"{secret['metadata']['name']}.{key} is not an obvious placeholder"
    assert "PLACEHOLDER" in (K8S / "secret.yaml").read_text(encoding="utf-8")


# --------------------------------------------------------------------------
# Kubernetes: Service, HPA, PDB, Job
# --------------------------------------------------------------------------


def test_service_targets_the_api_pods() -> None:
    deployment = _one("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = _named("Service", "buergerservice-api")
    assert service is not None
    assert service["spec"]["selector"].items() <= labels.items()
    container = _container(deployment)
    for port in service["spec"]["ports"]:
        assert _container_port(container, port["targetPort"]) == 8000


def test_metrics_have_a_port_of_their_own_that_the_api_service_does_not_forward() -> None:
    """Decision 015: Prometheus scrapes the pods' metrics port; the ingress' Service has none."""
    deployment = _one("Deployment")
    container = _container(deployment)
    env = _rendered_env(deployment)
    port = int(env["METRICS_PORT"])
    assert _container_port(container, "metrics") == port != 8000
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port)
    api = _named("Service", "buergerservice-api")
    metrics = _named("Service", "buergerservice-metrics")
    assert api is not None and metrics is not None
    assert all(_container_port(container, p["targetPort"]) == 8000 for p in api["spec"]["ports"])
    assert [p["targetPort"] for p in metrics["spec"]["ports"]] == ["metrics"]
    monitor = _load_yaml_docs(K8S / "components" / "monitoring" / "servicemonitor.yaml")[0]
    assert monitor["kind"] == "ServiceMonitor"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= metrics["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    assert _env_map(_service("api-1"))["METRICS_PORT"] == "9464"


def test_hpa() -> None:
    deployment = _one("Deployment")
    hpa = _one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        "apps/v1",
        "Deployment",
        deployment["metadata"]["name"],
    )
    assert hpa["spec"]["minReplicas"] == 2
    assert hpa["spec"]["maxReplicas"] == 10
    cpu = [
        m["resource"]["target"]
        for m in hpa["spec"]["metrics"]
        if m["type"] == "Resource" and m["resource"]["name"] == "cpu"
    ]
    assert cpu == [{"type": "Utilization", "averageUtilization": 70}]
    # utilisation is relative to the request: without one the HPA cannot work
    assert _container(deployment)["resources"]["requests"]["cpu"]


def test_pdb() -> None:
    deployment = _one("Deployment")
    pdb = _one("PodDisruptionBudget")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    min_available = pdb["spec"].get("minAvailable")
    assert isinstance(min_available, int), "use an absolute minAvailable"
    # the fewest pods there are is the HPA's minimum (the Deployment leaves the count to it)
    fewest = _one("HorizontalPodAutoscaler")["spec"]["minReplicas"]
    assert 1 <= min_available < fewest, "PDB would block every node drain"


def test_migration_job() -> None:
    job = _one("Job")
    container = _container(job)
    command = container.get("command", []) + container.get("args", [])
    assert command[-3:] == ["-m", "backend.cli", "migrate"]
    assert _pod_spec(job)["restartPolicy"] == "Never"
    assert container["image"] == _container(_one("Deployment"))["image"]
    provided = _env_sources(job, literals_allowed=True)
    missing = MIGRATION_ENV - provided.keys()
    assert not missing, f"migration Job does not provide {sorted(missing)}"
    assert provided["DATABASE_URL"].startswith("Secret/")
    assert provided["DB_APP_PASSWORD"].startswith("Secret/")


def test_migration_stage_is_self_contained() -> None:
    """README step 1 applies only component in (config, migrate): the Job must
    find everything it references in that subset."""
    stage = {"config", "migrate"}
    job = _one("Job")
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] in stage
    for source in _container(job).get("envFrom", []):
        kind, ref = (
            ("ConfigMap", source["configMapRef"]) if "configMapRef" in source else ("Secret", source["secretRef"])
        )
        doc = _named(kind, ref["name"])
        assert doc is not None
        assert doc["metadata"]["labels"]["app.kubernetes.io/component"] in stage, f"{kind}/{ref['name']}"
    deployment = _one("Deployment")
    assert deployment["metadata"]["labels"]["app.kubernetes.io/component"] not in stage


def test_kustomization_image_override_matches_workloads() -> None:
    images = {i["name"] for i in _kustomization().get("images", [])}
    for kind in ("Deployment", "Job"):
        image = _container(_one(kind))["image"]
        assert image.rsplit(":", 1)[0] in images


# --------------------------------------------------------------------------
# Dockerfile
# --------------------------------------------------------------------------


def test_dockerfile_is_multi_stage() -> None:
    froms = [v for k, v in _dockerfile() if k == "FROM"]
    assert len(froms) >= 2
    assert _from_image(froms[-1].split(" AS ")[0].split(" as ")[0]).startswith("python:3.11-slim")
    builder = [s for s in _stages() if re.search(r"\bAS builder\b", s[0][1], re.IGNORECASE)]
    assert builder, "no stage named builder"
    runs = " ".join(v for k, v in builder[0] if k == "RUN")
    assert "uv sync --frozen --no-dev" in runs
    assert "/app/.venv" in " ".join(v for k, v in builder[0] if k == "ENV")
    copies = [v for k, v in _final_stage() if k == "COPY"]
    assert any("--from=builder" in c and "/app" in c for c in copies), "runtime does not copy /app from builder"
    # the runtime stage must not install build tooling
    assert not any(k == "RUN" and "build-essential" in v for k, v in _final_stage())


def test_dockerfile_copy_sources_exist() -> None:
    """Every file the build context must provide exists in the repository."""
    for keyword, value in _dockerfile():
        if keyword in {"COPY", "ADD"} and "--from=" not in value:
            words = [w for w in value.split() if not w.startswith("--")]
            for src in words[:-1]:
                assert (REPO_ROOT / src).exists(), f"{keyword} source {src} missing from the build context"
        if keyword == "RUN":
            for src in re.findall(r"type=bind,source=([^,\s]+)", value):
                assert (REPO_ROOT / src).exists(), f"bind-mount source {src} missing"


def test_dockerfile_runtime_user() -> None:
    assert _dockerfile_uid() >= 10000
    users = [v for k, v in _final_stage() if k == "USER"]
    assert users[-1].split(":")[0] not in {"0", "root"}
    # USER must come before CMD so the server does not start as root
    keywords = [k for k, _ in _final_stage()]
    assert max(i for i, k in enumerate(keywords) if k == "USER") < keywords.index("CMD")


def test_dockerfile_runtime_settings() -> None:
    stage = _final_stage()
    env: dict[str, str] = {}
    for k, v in stage:
        if k == "ENV":
            env.update(_env_pairs(v))
    assert env.get("APP_ENV") == "production"
    assert env.get("PATH", "").startswith("/app/.venv/bin")
    exposed = " ".join(v for k, v in stage if k == "EXPOSE").split()
    assert "8000" in exposed or "8000/tcp" in exposed

    healthchecks = [v for k, v in stage if k == "HEALTHCHECK"]
    assert len(healthchecks) == 1
    check = healthchecks[0]
    assert "/healthz" in check and "urllib" in check
    assert "curl" not in check and "wget" not in check

    cmds = [v for k, v in stage if k == "CMD"]
    assert len(cmds) == 1
    cmd = json.loads(cmds[0])  # exec form: PID 1 is uvicorn and gets SIGTERM
    assert cmd[:3] == ["uvicorn", "backend.main:create_app", "--factory"]
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    assert cmd[cmd.index("--port") + 1] == "8000"


# --------------------------------------------------------------------------
# compose.yaml
# --------------------------------------------------------------------------

API_REPLICAS = ("api-1", "api-2")


def _has_healthcheck(service: dict[str, Any]) -> bool:
    check = service.get("healthcheck") or {}
    return bool(check.get("test")) and not check.get("disable", False)


def test_compose_services_present() -> None:
    services = _compose()["services"]
    api = sorted(name for name in services if re.fullmatch(r"api-\d+", name))
    assert api == list(API_REPLICAS)
    assert _service("db")["image"].startswith("postgres:16")
    assert _service("redis")["image"].startswith("redis:7")
    idp = [s for s in services.values() if "keycloak" in str(s.get("image", ""))]
    assert len(idp) == 1, "exactly one identity provider (Keycloak) expected"


@pytest.mark.parametrize("name", ["db", "redis", "keycloak", *API_REPLICAS])
def test_compose_healthchecks(name: str) -> None:
    assert _has_healthcheck(_service(name)), f"{name} has no healthcheck"


@pytest.mark.parametrize("name", API_REPLICAS)
def test_compose_api_replica(name: str) -> None:
    service = _service(name)
    build = service["build"]
    assert build["context"] == ".."
    assert (INFRA / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE.resolve()
    deps = service["depends_on"]
    assert deps["migrate"]["condition"] == "service_completed_successfully"
    assert deps["db"]["condition"] == "service_healthy"
    assert deps["redis"]["condition"] == "service_healthy"
    probe = " ".join(service["healthcheck"]["test"])
    assert "/readyz" in probe or "/healthz" in probe

    env = _env_map(service)
    missing = APP_RUNTIME_ENV - env.keys()
    assert not missing, f"{name} lacks {sorted(missing)}"
    assert not (MIGRATION_ONLY_ENV & env.keys()), "API replicas must not get migration credentials"
    url = urlsplit(env["APP_DATABASE_URL"])
    assert url.hostname == "db" and url.username == APP_ROLE
    assert urlsplit(env["REDIS_URL"]).hostname == "redis"


def test_compose_replicas_share_one_image_and_config() -> None:
    first, second = (_service(n) for n in API_REPLICAS)
    assert first["image"] == second["image"] == _service("migrate")["image"]
    assert _env_map(first) == _env_map(second), "stateless replicas must be configured identically"


def test_compose_migrate_one_shot() -> None:
    migrate = _service("migrate")
    assert migrate["command"] == ["python", "-m", "backend.cli", "migrate"]
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"
    env = _env_map(migrate)
    assert env.keys() >= MIGRATION_ENV
    assert urlsplit(env["DATABASE_URL"]).hostname == "db"
    assert str(migrate.get("restart", "no")) == "no"
    # the role password the migration sets is the one the replicas log in with
    for name in API_REPLICAS:
        assert urlsplit(_env_map(_service(name))["APP_DATABASE_URL"]).password == env["DB_APP_PASSWORD"]


def test_compose_keycloak_imports_realm() -> None:
    keycloak = _service("keycloak")
    assert "--import-realm" in keycloak["command"]
    mounts = [v.split(":") for v in keycloak["volumes"]]
    imports = [(src, dst) for src, dst, *_ in mounts if dst == "/opt/keycloak/data/import"]
    assert imports, "realm import directory not mounted"
    assert (INFRA / imports[0][0] / REALM.name).resolve() == REALM.resolve()


def test_realm_has_partner_client() -> None:
    realm = json.loads(REALM.read_text(encoding="utf-8"))
    assert realm["realm"] == "kreis-soest"
    assert realm["enabled"] is True
    partners = [c for c in realm["clients"] if c.get("serviceAccountsEnabled") and c.get("publicClient") is False]
    assert partners, "no confidential client with client-credentials (service account)"
    client = partners[0]
    assert client["clientAuthenticatorType"] == "client-secret"
    assert client.get("secret")
    claims = {m["config"].get("claim.name") for m in client.get("protocolMappers", [])}
    assert "organization" in claims
    service_users = [u for u in realm.get("users", []) if u.get("serviceAccountClientId") == client["clientId"]]
    assert service_users
    group_names = {"/" + g["name"] for g in realm.get("groups", [])}
    for user in service_users:
        assert set(user.get("groups", [])) <= group_names


def test_load_balancer_balances_all_replicas() -> None:
    lb = _service("lb")
    assert any(str(v).startswith("./nginx/nginx.conf:") for v in lb["volumes"])
    conf = NGINX_CONF.read_text(encoding="utf-8")
    upstream = set(re.findall(r"^\s*server\s+([\w-]+):8000\b", conf, re.MULTILINE))
    assert upstream == set(API_REPLICAS)
    for name in API_REPLICAS:
        assert lb["depends_on"][name]["condition"] == "service_healthy"


def _rendered_env(workload: dict[str, Any]) -> dict[str, str]:
    """The environment the container starts with (envFrom data, then literal env entries)."""
    container = _container(workload)
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        kind, ref = (
            ("ConfigMap", source["configMapRef"]) if "configMapRef" in source else ("Secret", source["secretRef"])
        )
        env.update(_data(_named(kind, ref["name"]) or {}))
    env.update({v["name"]: v["value"] for v in container.get("env", []) if "value" in v})
    return env


def test_the_migration_job_environment_passes_the_settings_check() -> None:
    """The Job has the database credentials only (no Redis, no sealing key): enough to migrate."""
    env = _rendered_env(_one("Job"))
    assert "REDIS_URL" not in env and "SECRETS_KEY" not in env
    settings = load_settings(env, serving=False)
    assert settings.is_production and settings.database_url
    with pytest.raises(SettingsError):
        load_settings(env)  # serving needs more: the API Deployment gets it


def test_the_api_environment_passes_once_the_placeholders_are_replaced() -> None:
    env = _rendered_env(_one("Deployment"))
    with pytest.raises(SettingsError) as placeholder:
        load_settings(env)
    assert "SECRETS_KEY" in str(placeholder.value)  # CHANGE-ME is refused, not used
    real = {**env, "SECRETS_KEY": base64.b64encode(bytes(range(32))).decode()}
    assert load_settings(real).is_production


def test_compose_bootstraps_an_operator_the_realm_user_signs_in_to() -> None:
    """`docker compose up` ends with Keycloak's `operator` able to sign in as platform admin:
    the bootstrap service's arguments parse as the CLI parses them, name the issuer Keycloak
    puts in its tokens, the audience its CLI client's mapper adds and a realm role the user
    has; the API replicas wait for it. (Docker cannot run here: checked statically.)"""
    from auth.claims import parse_claim_path
    from backend.cli import build_parser

    bootstrap = _service("bootstrap")
    command = bootstrap["command"]
    assert command[:4] == ["python", "-m", "backend.cli", "bootstrap-operator"]
    parsed = vars(build_parser().parse_args(command[3:]))  # as the command line reads them
    assert bootstrap["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    env = _env_map(bootstrap)
    assert not (MIGRATION_ONLY_ENV & env.keys()), "bootstrap needs only the application role"
    assert urlsplit(env["APP_DATABASE_URL"]).username == APP_ROLE
    for name in API_REPLICAS:
        assert _service(name)["depends_on"]["bootstrap"]["condition"] == "service_completed_successfully"

    keycloak_env = _env_map(_service("keycloak"))
    realm = json.loads(REALM.read_text(encoding="utf-8"))
    assert parsed["issuer"] == f"{keycloak_env['KC_HOSTNAME']}/realms/{realm['realm']}"
    assert urlsplit(parsed["issuer"]).hostname == "keycloak"  # what the replicas reach it as
    assert parse_claim_path(parsed["role_claim"]) == ("realm_access", "roles")
    realm_roles = {r["name"] for r in realm["roles"]["realm"]}
    assert parsed["admin_value"] in realm_roles
    people = [c for c in realm["clients"] if c.get("directAccessGrantsEnabled") and c.get("publicClient")]
    assert people, "no client a person can get a token from"
    audiences = {
        m["config"]["included.custom.audience"]
        for m in people[0]["protocolMappers"]
        if m["protocolMapper"] == "oidc-audience-mapper"
    }
    assert parsed["audience"] in audiences
    assert "roles" in people[0]["defaultClientScopes"] and people[0]["fullScopeAllowed"] is True
    operator = next(u for u in realm["users"] if u["username"] == "operator")
    assert parsed["admin_value"] in operator["realmRoles"] and operator["enabled"] is True
    assert operator["credentials"][0]["type"] == "password" and operator["requiredActions"] == []
