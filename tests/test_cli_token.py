"""`make token` signs for the server that is running: `make run` records its base URL (and
process id) under DATA_DIR and `python -m backend.cli token` reads it, so `PORT=8104 make run`
then a plain `make token` gives a token that server accepts (it used to name :8000 → 401)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

from joserfc import jwt

from backend import cli, devidp
from backend.main import create_app
from backend.settings import PROJECT_ROOT, Settings
from backend.state import unit_of_work
from backend.tenants import service
from backend.tenants.schemas import IdentityIssuerInput
from tests.support.asgi import serve
from tests.support.world import World, make_tenant, system_principal

RUNNING = "http://127.0.0.1:8104"


def make_token(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("PORT", "PUBLIC_BASE_URL", "HOST", "APP_ENV")}
    environ.update(DATA_DIR=str(data_dir), **env)
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", "token", *args],
        cwd=PROJECT_ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_plain_make_token_works_against_the_server_on_another_port(
    settings: Settings, world: World, tmp_path: Path
) -> None:
    running = dataclasses.replace(settings, public_base_url=RUNNING, port=8104, data_dir=tmp_path)
    record = cli.record_server(running)  # what `PORT=8104 make run` writes (this process stands in for it)
    made = make_token(tmp_path, "--tenant", "stadt-soest", "--role", "agent")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert f"token for {RUNNING}" in made.stderr
    key = devidp.signing_key(running, "stadt-soest")
    assert jwt.decode(token, key).claims["iss"] == f"{RUNNING}/dev-idp/stadt-soest"

    # The server on :8104 (its dev issuer trusted by a tenant) accepts it.
    tenant_id = await make_tenant(world.state, f"port-{world.suffix}")
    async with unit_of_work(world.state, system_principal(tenant_id, {tenant_id})) as uow:
        await service.add_identity_issuer(
            uow,
            f"port-{world.suffix}",
            IdentityIssuerInput(
                issuer=devidp.issuer_url(running, "stadt-soest"),
                audience=devidp.AUDIENCE,
                role_mapping={"agent": "agent"},
            ),
        )
    async with serve(create_app(running), RUNNING) as server:
        assert (await server.get("/v1/me", headers={"Authorization": f"Bearer {token}"})).status_code == 200
        # Without the record (the server stopped), a token for the default :8000: refused here.
        record.unlink()
        stale = make_token(tmp_path, "--tenant", "stadt-soest", "--role", "agent")
        assert jwt.decode(stale.stdout.strip(), key).claims["iss"] == "http://127.0.0.1:8000/dev-idp/stadt-soest"
        refused = await server.get("/v1/me", headers={"Authorization": f"Bearer {stale.stdout.strip()}"})
        assert refused.status_code == 401


def test_a_record_of_a_stopped_server_is_ignored_and_an_explicit_port_wins(tmp_path: Path) -> None:
    (tmp_path / cli.SERVER_RECORD).write_text('{"public_base_url": "http://127.0.0.1:8104", "pid": 999999999}')
    made = make_token(tmp_path, "--tenant", "stadt-soest", "--role", "agent")
    assert "token for http://127.0.0.1:8000" in made.stderr
    cli.record_server(dataclasses.replace(Settings(), public_base_url=RUNNING, data_dir=tmp_path))
    explicit = make_token(tmp_path, "--tenant", "stadt-soest", "--role", "agent", PORT="8200")
    assert "token for http://127.0.0.1:8200" in explicit.stderr


def test_a_role_the_tenant_cannot_grant_gets_no_token(tmp_path: Path) -> None:
    made = make_token(tmp_path, "--tenant", "stadt-soest", "--role", "platform-admin")
    assert made.returncode == 2 and made.stdout == ""
    assert "stadt-soest cannot grant 'platform-admin'" in made.stderr
    assert make_token(tmp_path, "--tenant", "kreis-soest", "--role", "platform-admin").returncode == 0
