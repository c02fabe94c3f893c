"""The PVOG-style transfer against a real local transfer server (token endpoint and paged JSON
envelopes over HTTP): pages applied with their cursor, a broken-off run resumed by the worker
where it stopped, refusals of a wrong secret and of a next page on another server."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from backend import clock
from backend.knowledge.xzufi_worker import XzufiWorker, run_transfer, transfer_principal
from tests.knowledge.conftest import GESEKE, KREIS, indexed, nonsense_word, search
from tests.knowledge.xzufi_messages import NS, leistung, office, suffix
from tests.support.world import World

Client = httpx.AsyncClient
SECRET = "s3cr3t-transfer"


def _alone(xml: str) -> str:
    """One object as the transfer sends it: its own element with the namespace declared."""
    tag = xml.split(">", 1)[0]
    return xml.replace(tag, tag + f' xmlns:x="{NS}"', 1)


@dataclass
class TransferServer:
    pages: dict[int, dict[str, Any]] = field(default_factory=dict)
    fail_once: set[int] = field(default_factory=set)
    requests: list[str] = field(default_factory=list)
    foreign_next: bool = False
    delay: float = 0.0  # seconds each page takes (the third sweep's runs overlap)
    port: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def server() -> Iterator[TransferServer]:
    state = TransferServer()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # the token endpoint (client credentials, HTTP Basic)
            length = int(self.headers.get("Content-Length", "0"))
            form = parse_qs(self.rfile.read(length).decode())
            expected = "Basic " + base64.b64encode(f"pvog-client:{SECRET}".encode()).decode()
            if self.path != "/token" or form.get("grant_type") != ["client_credentials"]:
                self._send(400, {"error": "unsupported_grant_type"})
            elif self.headers.get("Authorization") != expected:
                self._send(401, {"error": "invalid_client"})
            else:
                self._send(200, {"access_token": "pvog-token", "token_type": "Bearer", "expires_in": 300})

        def do_GET(self) -> None:
            state.requests.append(self.path)
            time.sleep(state.delay)
            if self.headers.get("Authorization") != "Bearer pvog-token":
                self._send(401, {"error": "invalid_token"})
                return
            index = int(parse_qs(urlsplit(self.path).query).get("index", ["0"])[0])
            if index in state.fail_once:
                state.fail_once.discard(index)
                self._send(503, {"error": "busy"})
                return
            page = dict(state.pages[index])
            following = page.pop("next", None)
            if following is not None:
                host = "http://transfer.invalid" if state.foreign_next else state.base
                page["naechsterIndex"] = following
                page["naechsteAnfrageUrl"] = f"{host}/transfer?index={following}"
            self._send(200, page)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


async def configure(
    client: Client, world: World, server: TransferServer, secret: str = SECRET, path: str = "/transfer"
) -> httpx.Response:
    return await client.put(
        "/v1/knowledge/xzufi-transfer",
        json={
            "url": f"{server.base}{path}",
            "tokenUrl": f"{server.base}/token",
            "clientId": "pvog-client",
            "clientSecret": secret,
            "intervalMinutes": 60,
            "restart": True,
        },
        headers=world.headers(KREIS, "platform-admin"),
    )


async def test_pages_are_applied_with_their_cursor_and_a_broken_run_resumes(
    client: Client, world: World, server: TransferServer
) -> None:
    s, w = suffix(), nonsense_word()
    sperr = f"TR-SP-{s}"
    server.pages = {
        0: {
            "xzufiObjekte": [
                {"schreibe": _alone(leistung(sperr, f"Sperrmüll Geseke {s}", areas=("05974020",), terms=(w,)))},
                {"schreibe": _alone(leistung(f"TR-PA-{s}", f"Personalausweis {s}", key="99008001012000"))},
            ],
            "vollstaendig": False,
            "next": 1,
        },
        1: {
            "xzufiObjekte": [
                {
                    "schreibe": _alone(
                        office(f"TR-OE-{s}", f"Abfallberatung {s}", ags="05974020", responsible=((sperr, "05974020"),))
                    )
                },
                {"loesche": {"typ": "leistung", "id": f"TR-NEVER-{s}"}},
                {"weder": "noch"},
            ],
            "vollstaendig": False,
            "next": 2,
        },
        2: {"xzufiObjekte": [{"loesche": {"typ": "leistung", "id": sperr}}], "vollstaendig": True, "next": 3},
    }
    server.fail_once = {2}
    assert (await configure(client, world, server)).status_code == 200
    first = await client.post("/v1/knowledge/xzufi-transfer/run", headers=world.headers(KREIS, "platform-admin"))
    assert first.status_code == 200, first.text
    report = first.json()
    assert (report["created"], report["officesCreated"], report["deletesUnknown"]) == (2, 1, 1), report
    assert [e["kind"] for e in report["errors"]] == ["entry"]
    await indexed(world)  # the new services' search rows: the background worker's, seconds later
    found = await search(client, world, (GESEKE, "agent"), w, tenant=GESEKE)
    assert any(hit["title"] == f"Sperrmüll Geseke {s}" for hit in found["nodes"])
    settings = (await client.get("/v1/knowledge/xzufi-transfer", headers=world.headers(KREIS, "platform-admin"))).json()
    assert settings["cursorUrl"] == f"{server.base}/transfer?index=2"  # page 2 broke off: not taken
    assert settings["lastOutcome"].startswith("failed: page 3") and "503" in settings["lastOutcome"]
    assert "clientSecret" not in settings

    # The worker's next round: the transfer is due (pretend an hour passed), claimed once, resumed at page 2.
    worker = XzufiWorker(world.state)
    later = clock.now() + timedelta(hours=2)
    claimed = [c for c in await worker.claim(later) if c[0] == world.tenant_ids[KREIS]]
    assert len(claimed) == 1 and [c for c in await worker.claim(later) if c[0] == world.tenant_ids[KREIS]] == []
    tenant_id, slug, acting = claimed[0]
    server.requests.clear()
    second = await run_transfer(world.state, transfer_principal(tenant_id, slug, acting))
    assert server.requests == ["/transfer?index=2"]
    assert (second.archived, second.created) == (1, 0)
    found = await search(client, world, (GESEKE, "agent"), w, tenant=GESEKE)
    assert not any(hit["title"] == f"Sperrmüll Geseke {s}" for hit in found["nodes"])
    settings = (await client.get("/v1/knowledge/xzufi-transfer", headers=world.headers(KREIS, "platform-admin"))).json()
    assert (settings["cursorUrl"], settings["lastOutcome"]) == (f"{server.base}/transfer?index=3", "ok")


async def test_a_wrong_secret_and_a_foreign_next_page_fail_the_run_and_keep_the_cursor(
    client: Client, world: World, server: TransferServer
) -> None:
    server.pages = {0: {"xzufiObjekte": [], "vollstaendig": False, "next": 1}}
    admin = world.headers(KREIS, "platform-admin")
    assert (await configure(client, world, server, secret="falsch")).status_code == 200
    run = await client.post("/v1/knowledge/xzufi-transfer/run", headers=admin)
    assert run.status_code == 200 and run.json()["messages"] == 0
    settings = (await client.get("/v1/knowledge/xzufi-transfer", headers=admin)).json()
    assert settings["lastOutcome"] == "failed: token endpoint answered 401" and server.requests == []
    server.foreign_next = True
    assert (await configure(client, world, server)).status_code == 200
    await client.post("/v1/knowledge/xzufi-transfer/run", headers=admin)
    settings = (await client.get("/v1/knowledge/xzufi-transfer", headers=admin)).json()
    assert "another server" in settings["lastOutcome"] and settings["cursorUrl"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://x", "tokenUrl": "http://127.0.0.1/t", "clientId": "a", "clientSecret": "b"},
        {
            "url": "http://x/",
            "tokenUrl": "http://127.0.0.1/t",
            "clientId": "a",
            "clientSecret": "b",
            "intervalMinutes": 1,
        },
        {"url": "http://x/", "tokenUrl": "http://127.0.0.1/t", "clientId": "a\u0007", "clientSecret": "b"},
    ],
)
async def test_bad_transfer_settings_are_refused(client: Client, world: World, body: dict[str, Any]) -> None:
    response = await client.put(
        "/v1/knowledge/xzufi-transfer", json=body, headers=world.headers(KREIS, "platform-admin")
    )
    assert response.status_code in (400, 422), response.text


# --- the third sweep (decision 004): runs at once, and settings saved during a run ---------------


def _three_pages(server: TransferServer) -> None:
    s = suffix()
    server.pages = {
        n: {
            "xzufiObjekte": [{"schreibe": _alone(leistung(f"TR-RUN{n}-{s}", f"Laufdienst {n} {s}"))}],
            "vollstaendig": n == 2,
            "next": n + 1,
        }
        for n in range(3)
    }


async def test_two_runs_at_once_fetch_each_page_once(client: Client, world: World, server: TransferServer) -> None:
    """Found by this sweep: two runs at once (the run button twice, or beside the worker) both
    fetched and imported every page, and the slower one's cursor could go back."""
    admin = world.headers(KREIS, "platform-admin")
    _three_pages(server)
    server.delay = 0.15
    assert (await configure(client, world, server)).status_code == 200
    run = "/v1/knowledge/xzufi-transfer/run"
    worker = XzufiWorker(world.state)

    async def worker_claim() -> list[Any]:
        await asyncio.sleep(0.1)  # while a run holds the transfer: not due for the worker
        return [c for c in await worker.claim(clock.now() + timedelta(minutes=1)) if c[0] == world.tenant_ids[KREIS]]

    first, second, claimed = await asyncio.gather(
        client.post(run, headers=admin), client.post(run, headers=admin), worker_claim()
    )
    assert sorted((first.status_code, second.status_code)) == [200, 409], (first.text, second.text)
    refused = first if first.status_code == 409 else second
    assert refused.json()["code"] == "CONFLICT" and claimed == []
    assert server.requests == ["/transfer", "/transfer?index=1", "/transfer?index=2"]
    done = first if first.status_code == 200 else second
    assert done.json()["created"] == 3
    settings = (await client.get("/v1/knowledge/xzufi-transfer", headers=admin)).json()
    assert (settings["cursorUrl"], settings["lastOutcome"]) == (f"{server.base}/transfer?index=3", "ok")
    again = await client.post(run, headers=admin)  # the transfer is free again
    assert again.status_code == 200, again.text


async def test_settings_saved_during_a_run_are_not_overwritten_by_it(
    client: Client, world: World, server: TransferServer
) -> None:
    """Found by this sweep: a new URL (or `restart`) saved while a run was going reset the cursor,
    and the run's next page wrote the old server's next page over it; the next run would have
    sent the new server's token to the old one. Now the run stops, its page not taken."""
    admin = world.headers(KREIS, "platform-admin")
    _three_pages(server)
    server.delay = 0.3
    assert (await configure(client, world, server)).status_code == 200
    running = asyncio.ensure_future(client.post("/v1/knowledge/xzufi-transfer/run", headers=admin))
    for _ in range(100):
        if server.requests:
            break
        await asyncio.sleep(0.01)
    changed = await configure(client, world, server, path="/transfer?neu=1")  # a new URL, while page 0 is fetched
    assert changed.status_code == 200 and changed.json()["cursorUrl"] is None, changed.text
    stopped = await running
    assert stopped.status_code == 200 and stopped.json()["created"] == 0, stopped.text
    settings = (await client.get("/v1/knowledge/xzufi-transfer", headers=admin)).json()
    assert settings["cursorUrl"] is None and settings["url"] == f"{server.base}/transfer?neu=1", settings
    server.requests.clear()
    after = await client.post("/v1/knowledge/xzufi-transfer/run", headers=admin)
    assert after.status_code == 200 and after.json()["created"] == 3, after.text
    assert server.requests[0] == "/transfer?neu=1"
