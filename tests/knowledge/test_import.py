"""Imports: the LeiKa catalogue (re-importing updates, never duplicates) and articles from
another system as JSON (bad rows reported by line, re-import idempotent)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import httpx

from auth.principal import Principal
from auth.roles import Role
from backend.db.tenancy import tenant_transaction
from backend.knowledge import importing
from backend.knowledge.demo import catalogue_path
from backend.knowledge.schemas import CatalogueReport
from backend.state import unit_of_work
from tests.knowledge.conftest import GESEKE, KREIS, SOEST, gql, payload, search, unique
from tests.support.world import World, make_tenant

Client = httpx.AsyncClient
CSV_HEADER = (
    "leika_key,name,typisierung,leistungsgruppierung,kennung,verrichtung,verrichtungsdetail,ozg_leistung,"
    "ozg_id,ozg_lebenslage,rechtsgrundlage\n"
)


async def _counts(db: asyncpg.Pool, world: World) -> tuple[int, int, int]:
    kreis = world.tenant_ids[KREIS]
    async with tenant_transaction(db, [kreis], readonly=True) as conn:
        services = await conn.fetchval("SELECT count(*) FROM leika_services WHERE tenant_id = $1", kreis)
        distinct = await conn.fetchval(
            "SELECT count(DISTINCT leika_key) FROM leika_services WHERE tenant_id = $1", kreis
        )
        documents = await conn.fetchval(
            "SELECT count(*) FROM knowledge_search WHERE tenant_id = $1 AND source = 'service'", kreis
        )
    return services, distinct, documents


async def test_the_whole_catalogue_loads_and_reimporting_changes_nothing(
    db: asyncpg.Pool, client: Client, world: World, catalogue: dict[str, Any]
) -> None:
    assert catalogue["rows"] == 4813 and catalogue["errors"] == []
    assert catalogue["inserted"] + catalogue["updated"] + catalogue["unchanged"] == 4813
    before = await _counts(db, world)
    assert before == (4813, 4813, 4813)
    again = await client.post(
        "/v1/leika-catalogue",
        content=catalogue_path().read_bytes(),
        headers={**world.headers(KREIS, "platform-admin"), "Content-Type": "text/csv"},
    )
    assert again.status_code == 200, again.text
    assert again.json() | {"errors": []} == {
        "rows": 4813,
        "inserted": 0,
        "updated": 0,
        "unchanged": 4813,
        "deactivated": 0,
        "errors": [],
    }
    assert await _counts(db, world) == before


async def test_a_changed_catalogue_updates_entries_and_reports_bad_rows(db: asyncpg.Pool, world: World) -> None:
    # A separate operator of its own, so the world's catalogue stays as it is.
    operator = await make_tenant(world.state, f"betreiber-{uuid.uuid4().hex[:8]}", is_operator=True)
    admin = Principal(
        issuer="test",
        subject="admin",
        tenant_id=operator,
        tenant_slug="betreiber",
        roles=frozenset({Role.PLATFORM_ADMIN}),
        acting_tenant_ids=frozenset({operator}),
    )

    async def load(text: str) -> CatalogueReport:
        async with unit_of_work(world.state, admin) as uow:
            return await importing.import_catalogue(uow, text)

    async def state() -> dict[str, tuple[str, bool]]:
        async with tenant_transaction(db, [operator], readonly=True) as conn:
            rows = await conn.fetch("SELECT leika_key, name, active FROM leika_services WHERE tenant_id = $1", operator)
            searchable = {
                r["doc_id"]
                for r in await conn.fetch("SELECT doc_id FROM knowledge_search WHERE tenant_id = $1", operator)
            }
            ids = {
                r["leika_key"]: r["id"]
                for r in await conn.fetch("SELECT leika_key, id FROM leika_services WHERE tenant_id = $1", operator)
            }
        return {r["leika_key"]: (r["name"], ids[r["leika_key"]] in searchable) for r in rows if r["active"]}

    first = await load(
        CSV_HEADER
        + "99102013000000,Hundesteuer,5,102,013,000,000,Hundehaltung,,Tierhaltung,\n"
        + "99102013002000,Hundesteuer Festsetzung,5,102,013,002,000,Hundehaltung,,Tierhaltung,\n"
        + "99102013,Kaputt,5,,,,,,,,\n"
        + "99102013010000,Hundesteuer Befreiung,5,102,013,010,000,Hundehaltung,,Tierhaltung,\n"
    )
    assert (first.rows, first.inserted, first.updated, first.unchanged) == (3, 3, 0, 0)
    assert [(e.line, e.field) for e in first.errors] == [(4, "leika_key")]
    assert await state() == {
        "99102013000000": ("Hundesteuer", True),
        "99102013002000": ("Hundesteuer Festsetzung", True),
        "99102013010000": ("Hundesteuer Befreiung", True),
    }
    second = await load(
        CSV_HEADER
        + "99102013000000,Hundesteuer,5,102,013,000,000,Hundehaltung,,Tierhaltung,\n"
        + "99102013002000,Hundesteuer Bescheid,5,102,013,002,000,Hundehaltung,,Tierhaltung,\n"
    )
    assert (second.inserted, second.updated, second.unchanged, second.deactivated) == (0, 1, 1, 1)
    assert await state() == {"99102013000000": ("Hundesteuer", True), "99102013002000": ("Hundesteuer Bescheid", True)}
    empty = await load("leika_key,name\n")
    assert empty.rows == 0 and empty.errors and await state() != {}  # an empty file deactivates nothing


async def test_only_an_operators_platform_admin_imports_the_catalogue(client: Client, world: World) -> None:
    csv = (CSV_HEADER + "99102013000000,Hundesteuer,5,,,,,,,,\n").encode()
    editor = await client.post(
        "/v1/leika-catalogue", content=csv, headers={**world.headers(KREIS, "editor"), "Content-Type": "text/csv"}
    )
    assert editor.status_code == 403
    town = await client.post(
        "/v1/leika-catalogue",
        content=csv,
        headers={**world.headers(GESEKE, "town-admin"), "Content-Type": "text/csv"},
    )
    assert town.status_code == 403
    # A town's issuer cannot make anyone a platform admin (tests/auth/test_operator_only_roles.py).
    forged = await client.post(
        "/v1/leika-catalogue",
        content=csv,
        headers={**world.headers(GESEKE, "platform-admin"), "Content-Type": "text/csv"},
    )
    assert forged.status_code == 401


def _rows(prefix: str) -> list[dict[str, Any]]:
    return [
        {
            "externalId": f"{prefix}-1",
            "title": "Sperrmüll anmelden",
            "summary": "Abholung auf Anmeldung.",
            "leikaKey": "99001009004002",
            "sections": {"fees": "kostenlos", "contacts": [{"label": "Abfall", "phone": "02942 500-0"}]},
        },
        {"externalId": f"{prefix}-2", "title": "Hundesteuer", "summary": "Hunde anmelden.", "leikaKey": "9910201300"},
        {"externalId": f"{prefix}-3", "title": "Fundbüro", "summary": "Fundsachen.", "sections": {"fee": "x"}},
        {
            "externalId": f"{prefix}-4",
            "title": "Osterfeuer",
            "summary": "Anmelden.",
            "leikaKey": "99063010006000",
            "sections": {"contacts": [{"label": "Ordnungsamt", "phone": "123"}]},
        },
        {
            "externalId": f"{prefix}-5",
            "title": "Wahlhelfer werden",
            "summary": "Melden Sie sich.",
            "leikaKey": "99128008000000",
        },
    ]


async def _import(client: Client, world: World, text: str, publish: bool = True) -> dict[str, Any]:
    response = await client.post(
        "/v1/articles/import",
        params={"publish": str(publish).lower()},
        content=text.encode(),
        headers={**world.headers(GESEKE, "editor"), "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


async def test_json_import_reports_bad_rows_and_reimporting_never_duplicates(
    db: asyncpg.Pool, client: Client, world: World
) -> None:
    prefix = unique("legacy").replace(" ", "-")
    text = "\n".join(json.dumps(r) for r in _rows(prefix))
    report = await _import(client, world, text)
    assert (report["created"], report["updated"], report["unchanged"]) == (2, 0, 0)
    assert [(e["line"], e["field"]) for e in report["errors"]] == [
        (2, "leikaKey"),
        (3, "sections"),
        (4, "sections.contacts"),
    ]
    assert "unknown field `fee`" in report["errors"][1]["message"]
    assert "not a valid German phone number" in report["errors"][2]["message"]
    again = await _import(client, world, text)
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 2)
    changed = text.replace("Abholung auf Anmeldung.", "Abholung auf Anmeldung, zweimal im Jahr.")
    third = await _import(client, world, changed)
    assert (third["created"], third["updated"], third["unchanged"]) == (0, 1, 1)
    geseke = world.tenant_ids[GESEKE]
    async with tenant_transaction(db, [geseke], readonly=True) as conn:
        rows = await conn.fetch(
            "SELECT external_id, status, latest_version, published_version FROM articles "
            "WHERE tenant_id = $1 AND external_id LIKE $2 ORDER BY external_id",
            geseke,
            f"{prefix}%",
        )
    assert [(r["external_id"], r["status"], r["published_version"]) for r in rows] == [
        (f"{prefix}-1", "published", 6),
        (f"{prefix}-5", "published", 3),
    ]
    found = await search(client, world, (GESEKE, "agent"), "Sperrmüll anmelden zweimal")
    assert found["nodes"][0]["tenantId"] == str(geseke) and found["nodes"][0]["kind"] == "LOCAL"


async def test_json_array_import_over_graphql_counts_lines(client: Client, world: World) -> None:
    prefix = unique("array").replace(" ", "-")
    rows = _rows(prefix)
    text = "[\n" + ",\n".join(json.dumps(r) for r in rows) + "\n]"
    body = await gql(
        client,
        world.headers(SOEST, "editor"),
        "mutation($t: String!) { importArticles(text: $t) { report { created updated unchanged "
        "errors { line field message } } errors { code } } }",
        t=text,
    )
    result = payload(body, "importArticles")
    assert result["report"]["created"] == 2 and [e["line"] for e in result["report"]["errors"]] == [3, 4, 5]
    agent = await gql(
        client,
        world.headers(SOEST, "agent"),
        "mutation($t: String!) { importArticles(text: $t) { errors { code } } }",
        t=text,
    )
    assert agent["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_imported_drafts_are_not_published_unless_asked(db: asyncpg.Pool, client: Client, world: World) -> None:
    prefix = unique("draft").replace(" ", "-")
    report = await _import(client, world, json.dumps(_rows(prefix)[0]), publish=False)
    assert report["created"] == 1
    async with tenant_transaction(db, [world.tenant_ids[GESEKE]], readonly=True) as conn:
        status = await conn.fetchval("SELECT status FROM articles WHERE external_id = $1", f"{prefix}-1")
    assert status == "draft"
