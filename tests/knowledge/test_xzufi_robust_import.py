"""Held-out XZuFi messages and hostile uploads through the real REST endpoint and GraphQL, against
the real database (decision 024, amendment "robustness"): what a Geseke agent then sees, the same
message in another encoding is the same message, and bad input answers problem+json, never 500,
and changes nothing."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from backend.state import unit_of_work
from tests.knowledge.conftest import GESEKE, KREIS, SOEST, gql, indexed, payload
from tests.knowledge.xzufi_heldout_messages import NS, gestattung
from tests.knowledge.xzufi_messages import suffix, zipped
from tests.support.world import World, system_principal

Client = httpx.AsyncClient
IMPORT = "/v1/knowledge/xzufi-imports"
SEEN = """
query($id: UUID!, $tenant: String) {
  article(id: $id, tenant: $tenant) {
    kind title speakable html
    sections { description fees deadlines processingTime responsibleOffice forms { title url }
               contacts { label phone } openingHoursNote }
  }
}"""


async def post(client: Client, world: World, body: bytes, content_type: str = "application/xml") -> httpx.Response:
    return await client.post(
        IMPORT, content=body, headers={**world.headers(KREIS, "platform-admin"), "Content-Type": content_type}
    )


async def received(world: World) -> int:
    """The operator's received XZuFi objects: what an import changed."""
    kreis = world.tenant_ids["kreis-soest"]
    admin = system_principal(kreis, set(world.tenant_ids.values()))
    async with unit_of_work(world.state, admin, readonly=True) as uow:
        count: int = await uow.conn.fetchval("SELECT count(*) FROM xzufi_objects WHERE tenant_id = $1", kreis)
    return count


async def article_of(world: World, xzufi_id: str) -> str:
    kreis = world.tenant_ids["kreis-soest"]
    admin = system_principal(kreis, set(world.tenant_ids.values()))
    async with unit_of_work(world.state, admin, readonly=True) as uow:
        article: Any = await uow.conn.fetchval(
            "SELECT article_id FROM xzufi_objects WHERE tenant_id = $1 AND kind = 'leistung' AND xzufi_id = $2",
            kreis,
            xzufi_id,
        )
    assert article is not None
    return str(article)


async def seen(client: Client, world: World, town: str, article_id: str) -> dict[str, Any] | None:
    body = await gql(client, world.headers(town, "agent"), SEEN, id=article_id, tenant=world.slug(town))
    result: dict[str, Any] | None = payload(body, "article")
    return result


async def test_a_held_out_message_gives_a_geseke_agent_a_clean_answer_in_any_encoding(
    client: Client, world: World
) -> None:
    tag = suffix()
    response = await post(client, world, b"\xef\xbb\xbf" + gestattung(tag).encode())
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["created"], report["officesCreated"], report["responsibilities"]) == (1, 1, 1), report
    assert (report["unknownElements"], report["errors"]) == (3, [])
    await indexed(world)

    article_id = await article_of(world, f"L100012.LB.{tag}1")
    shown = await seen(client, world, GESEKE, article_id)
    assert shown is not None
    assert shown["kind"] == "LOCAL"  # valid in Geseke only: its AGS came padded to 12 digits
    assert shown["title"] == "Ausschank beim Schützenfest gestatten lassen"
    sections = shown["sections"]
    assert "Vereine, die beim Schützenfest Getränke ausschenken" in sections["description"]
    assert (
        "### Barrierefreiheit" in sections["description"]
        and "Gültig vom 01.01.2026 bis 31.12.2027." in sections["description"]
    )
    assert "(ab 20 €)" in sections["fees"] and "20,00 € bis 250,00 €" in sections["fees"]
    assert "Stichtag Schützenfest: am 14.05.2027" in sections["deadlines"]
    assert sections["processingTime"].endswith("3 Tage bis 2 Wochen")
    assert sections["forms"] == [
        {"title": "Antrag auf Gestattung (PDF)", "url": "https://www.geseke.de/formulare/gestattung.pdf"}
    ]
    assert sections["contacts"] == [{"label": f"Ordnungsamt Geseke {tag}", "phone": "+49 2942 500-320"}]
    assert sections["responsibleOffice"].startswith(f"Ordnungsamt Geseke {tag}, Bachstraße 3")
    assert sections["openingHoursNote"] == "Mo-Fr 8:30-12:00 Uhr, Do 14:00-17:30 Uhr"  # hours sent as text
    # No markup and none of the script's words in what the agent reads, speaks or renders.
    assert "Sperrzeit ab 1 Uhr" in shown["speakable"]
    for said in (shown["speakable"], sections["description"]):
        assert "<" not in said and "evil" not in said and "document.location" not in said
    assert "<script" not in shown["html"] and "evil.example" not in shown["html"]
    # Forwarding's table proposes the office for the key in Geseke (its area sent as a padded AGS).
    routes = await client.get(
        f"/v1/tenants/{world.slug(GESEKE)}/ticket-routes", headers=world.headers(KREIS, "platform-admin")
    )
    assert routes.status_code == 200, routes.text
    route = next(r for r in routes.json()["routes"] if r["keyPrefix"] == "99025002056000")
    assert route["departmentName"] == f"Ordnungsamt Geseke {tag}"
    # Soest's agents do not see Geseke's imported article.
    assert await seen(client, world, SOEST, article_id) is None

    # The same message in ISO-8859-15 is the same message: nothing changes.
    again = await post(client, world, gestattung(tag, "ISO-8859-15", prefix="").encode("iso-8859-15"))
    assert again.status_code == 200, again.text
    assert (again.json()["unchanged"], again.json()["created"], again.json()["officesUnchanged"]) == (1, 0, 1)


async def test_a_message_in_a_json_field_or_graphql_argument_keeps_its_umlauts(client: Client, world: World) -> None:
    for via in ("json", "graphql"):
        tag = suffix()
        text = gestattung(tag, "ISO-8859-15")  # declared Latin-9, arriving as Unicode text
        if via == "json":
            response = await post(client, world, json.dumps({"message": text}).encode(), "application/json")
            assert response.status_code == 200, response.text
            assert response.json()["created"] == 1
        else:
            body = await gql(
                client,
                world.headers(KREIS, "platform-admin"),
                "mutation($m: String) { importXzufi(message: $m) { report { created } errors { message } } }",
                m=text,
            )
            assert payload(body, "importXzufi") == {"report": {"created": 1}, "errors": []}
        await indexed(world)
        shown = await seen(client, world, GESEKE, await article_of(world, f"L100012.LB.{tag}1"))
        assert shown is not None and shown["title"] == "Ausschank beim Schützenfest gestatten lassen", via
        assert "(ab 20 €)" in shown["sections"]["fees"], via


BOMB = (
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
    f'<x:xzufi.nachricht xmlns:x="{NS}" xzufiVersion="2.2.0">&d;</x:xzufi.nachricht>'
).encode()


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (lambda: gestattung("trunc").encode()[:3000], 422, "not well-formed XML"),
        (lambda: BOMB, 422, "DTD or entities"),
        (lambda: gestattung("big").encode() + b" " * (50 * 1024 * 1024), 413, "at most 8 MB"),
        (lambda: zipped({"../../etc/cron.d/evil.xml": gestattung("zt").encode()}), 422, "outside the archive"),
        (lambda: zipped({"bomb.xml": b"<a>" + b" " * (7 * 1024 * 1024) + b"</a>"}), 422, "suspiciously well"),
        (lambda: zipped({"big.xml": b" " * (9 * 1024 * 1024)}), 413, "more than 64 MB"),
        (lambda: b"PK\x03\x04 not really a zip", 422, "not a readable zip"),
        (
            lambda: gestattung("v").replace(NS, "http://xoev.de/schemata/xzufi/2_3_0").encode(),
            422,
            "XZuFi 2.3.0",
        ),
    ],
    ids=[
        "truncated",
        "entity-bomb",
        "50-mb-message",
        "zip-traversal",
        "zip-bomb",
        "zip-member-over-8-mb",
        "bad-zip",
        "version",
    ],
)
async def test_bad_uploads_answer_problem_json_and_change_nothing(
    client: Client, world: World, body: Any, status: int, says: str
) -> None:
    before = await received(world)
    response = await post(client, world, body())
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("application/problem+json")
    assert says in response.json()["detail"], response.json()
    assert await received(world) == before


async def test_a_body_over_the_upload_limit_is_refused_unread(client: Client, world: World) -> None:
    response = await post(client, world, b"PK" + b"\0" * (65 * 1024 * 1024))
    assert response.status_code == 413, response.text[:300]
    assert response.headers["content-type"].startswith("application/problem+json")
