"""`python -m backend.cli bootstrap-operator`: from an operator nobody can sign in to, to a
platform admin signed in with a token of the operator's own identity provider (the real OIDC
provider here, Keycloak's realm-role shape), without dev sign-in; run twice, the second run
changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from backend.settings import PROJECT_ROOT, Settings
from tests.support.oidc import ClientSpec, IssuerSpec, OIDCProvider
from tests.support.world import World

AUDIENCE = "buergerservice-ops"


@pytest.fixture(scope="module")
def keycloak_like() -> Iterator[OIDCProvider]:
    clients = [
        ClientSpec("admin", "s", extra_claims={"realm_access": {"roles": ["bs-platform-admin", "offline_access"]}}),
        ClientSpec("someone", "s", extra_claims={"realm_access": {"roles": ["offline_access"]}}),
    ]
    with OIDCProvider([IssuerSpec("buergerservice", AUDIENCE, clients)]) as provider:
        yield provider


def run_cli(settings: Settings, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "APP_DATABASE_URL", "PORT")}
    env.update(
        APP_ENV="test",
        DATABASE_URL=settings.database_url or "",
        REDIS_URL=settings.redis_url or "",
        DATA_DIR=str(tmp),
        DEV_SIGNIN_ENABLED="false",
    )
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", "bootstrap-operator", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_bootstrap_operator_twice_then_a_platform_admin_signs_in(
    client: httpx.AsyncClient, world: World, settings: Settings, keycloak_like: OIDCProvider, tmp_path: Path
) -> None:
    slug = f"kreis-ops-{uuid.uuid4().hex[:6]}"
    issuer = keycloak_like.issuer_url("buergerservice")
    args = [
        "--slug", slug, "--name", "Kreis Ops", "--ags", "05974",
        "--issuer", issuer, "--audience", AUDIENCE,
        "--role-claim", "realm_access.roles", "--admin-value", "bs-platform-admin",
    ]  # fmt: skip
    token = keycloak_like.token("buergerservice", "admin")
    assert (await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})).status_code == 401
    first = run_cli(settings, tmp_path, *args)
    assert first.returncode == 0, first.stderr
    assert f"created operator tenant {slug}" in first.stderr and "registered issuer" in first.stderr
    second = run_cli(settings, tmp_path, *args)
    assert second.returncode == 0, second.stderr
    assert "already" in second.stderr and "created" not in second.stderr and "registered issuer" not in second.stderr

    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["roles"] == ["platform-admin"] and body["tenant"]["slug"] == slug
    assert body["tenant"]["isOperator"] is True
    # A platform admin acts for every tenant, the test world's towns too.
    assert {str(t) for t in world.tenant_ids.values()} <= set(body["actingTenantIds"])
    issuers = await client.get(f"/v1/tenants/{slug}/identity-issuers", headers={"Authorization": f"Bearer {token}"})
    assert [i["issuer"] for i in issuers.json()] == [issuer]
    someone = keycloak_like.token("buergerservice", "someone")
    assert (await client.get("/v1/me", headers={"Authorization": f"Bearer {someone}"})).status_code == 401


async def test_bootstrap_operator_refuses_a_town_and_a_bad_claim_path(
    world: World, settings: Settings, tmp_path: Path
) -> None:
    town = run_cli(
        settings, tmp_path,
        "--slug", world.slug("stadt-soest"), "--name", "x", "--issuer", "https://idp.example/x",
        "--audience", "a", "--admin-value", "admin",
    )  # fmt: skip
    assert town.returncode == 2 and "is not the operator" in town.stderr
    bad = run_cli(
        settings, tmp_path,
        "--slug", f"kreis-bad-{uuid.uuid4().hex[:6]}", "--name", "x", "--issuer", "https://idp.example/y",
        "--audience", "a", "--role-claim", "realm_access..roles", "--admin-value", "admin",
    )  # fmt: skip
    assert bad.returncode == 2 and "roleClaim" in bad.stderr and "Traceback" not in bad.stderr
