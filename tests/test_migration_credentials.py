"""The owner's password reaches the migration (compose and Kubernetes), and only the migration."""

from __future__ import annotations

from tests.infra.test_manifests import _env_map, _one, _rendered_env, _service


def test_compose_gives_the_owner_password_to_the_migration_only() -> None:
    assert _env_map(_service("migrate")).get("DB_OWNER_PASSWORD")
    for name in ("api-1", "api-2", "seed"):
        assert "DB_OWNER_PASSWORD" not in _env_map(_service(name))


def test_kubernetes_gives_the_owner_password_to_the_job_only() -> None:
    assert _rendered_env(_one("Job")).get("DB_OWNER_PASSWORD")
    assert "DB_OWNER_PASSWORD" not in _rendered_env(_one("Deployment"))
