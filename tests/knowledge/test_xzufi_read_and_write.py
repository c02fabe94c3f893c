"""A message of services only is written in parts while it is read (`xzufi_bulk._Ahead`,
decision 024, branch importspeed5): it leaves what the same message taken in one go leaves
(compared in two operator worlds), a bad service is reported with its line and id while the rest
goes in, a part the database refuses sends the message's new services one by one, and a message
with offices or deletions, or an id twice, is taken in one go as before."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from auth.principal import Principal
from backend.db import together
from backend.knowledge import service, xzufi, xzufi_bulk, xzufi_import
from backend.knowledge.schemas import ArticleInput
from backend.knowledge.xzufi_schemas import XzufiReport
from backend.state import AppState, unit_of_work
from tests.knowledge.test_xzufi_bulk import GESEKE_AGS, KEYS, SOEST_AGS, _neutral, _operator_world, _snapshot
from tests.knowledge.xzufi_messages import leistung, message, office, suffix
from tests.support.world import World

ONE_GO = 10**9  # parts larger than any message: the message is read, then written


async def _upload(state: AppState, admin: Principal, text: str) -> XzufiReport:
    async with unit_of_work(state, admin) as uow:
        return await xzufi_import.import_upload(uow, text.encode(), "m.xml")


def _services(s: str) -> str:
    """Nine services, read in parts of two: shared ones, a town's own one carrying its office,
    one in another town's area, two the parser cannot read (no LeiKa key, no name) and one the
    article checks refuse (an area that is no municipal key)."""
    return message(
        leistung(f"P1-{s}", f"Hundesteuer {s}", key=KEYS[0], terms=("Hund", "Hundemarke"), fees=(("120", "Hund"),)),
        leistung(f"P2-{s}", f"Sperrmüll {s}", key=KEYS[1], areas=(SOEST_AGS,), terms=("Sperrgut",)),
        leistung(f"P3-{s}", f"Gewerbe {s}", key=KEYS[2], summary="Anmelden."),
        leistung(f"BAD-{s}", "kaputt", key="nope"),
        leistung(f"P4-{s}", "", key=KEYS[3]),
        leistung(f"P5-{s}", f"Fundsachen {s}", key=KEYS[3], terms=("Fundbüro",)),
        leistung(f"P6-{s}", f"Bewohnerparken {s}", key=KEYS[4], areas=(GESEKE_AGS,)),
        leistung(f"P7-{s}", f"Parken {s}", key=KEYS[4], deadline="keine"),
        leistung(f"AREA-{s}", f"Falsches Gebiet {s}", key=KEYS[4], areas=("abc",)),
    )


async def test_a_message_written_while_read_leaves_what_one_go_leaves(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    written_ahead = []
    write = xzufi_bulk._Ahead.write

    async def counted(*args: Any) -> xzufi_bulk._Ahead:
        written_ahead.append(args[1])
        return await write(*args)

    monkeypatch.setattr(xzufi_bulk._Ahead, "write", counted)
    s = suffix()
    # An office first (a message with offices is read, then written): the town's own service in
    # the second message carries it.
    offices = message(
        office(
            f"O1-{s}", f"Bürgerbüro Soest {s}", ags=SOEST_AGS, email="b@soest.de", responsible=((f"P2-{s}", SOEST_AGS),)
        )
    )
    reports: dict[int, list[Any]] = {}
    snapshots: dict[int, dict[str, list[str]]] = {}
    for chunk in (2, ONE_GO):
        ids, admin = await _operator_world(world.state)
        monkeypatch.setattr(xzufi_bulk, "CHUNK", ONE_GO)
        done = [await _upload(world.state, admin, offices)]
        monkeypatch.setattr(xzufi_bulk, "CHUNK", chunk)
        done += [await _upload(world.state, admin, _services(s)) for _ in range(2)]  # then again: all unchanged
        reports[chunk] = [_neutral(msgspec.to_builtins(r), {}, s) for r in done]
        snapshots[chunk] = await _snapshot(world.state, admin, ids, s)
    assert written_ahead == ["m.xml", "m.xml"]  # the services, first and again, in parts; nothing in one go
    _, first, again = reports[2]
    assert (first["created"], first["updated"], first["unchanged"]) == (6, 0, 0), first
    assert [(e["xzufiId"], e["kind"]) for e in first["errors"]] == [
        ("BAD-<s>", "leistung"),
        ("P4-<s>", "leistung"),
        ("AREA-<s>", "leistung"),  # the article checks' (an area that is no municipal key), after the parser's
    ]
    assert all(e["line"] > 1 for e in first["errors"])
    assert (again["created"], again["unchanged"], len(again["errors"])) == (0, 6, 3), again
    assert reports[2] == reports[ONE_GO]
    for what, rows in snapshots[2].items():
        assert rows == snapshots[ONE_GO][what], what
    assert any("Bürgerbüro Soest" in row for row in snapshots[2]["articles"])  # the town's own, with its office
    assert len(snapshots[2]["terms"]) == 4 and len(snapshots[2]["routes"]) == 1


async def test_when_the_database_refuses_a_later_part_the_new_services_go_one_by_one(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An article already holds the external id of a service in the message's second part: the
    first part's rows, written while the second was read, go back with it (one savepoint for the
    lot), and one by one names that service while the others go in."""
    monkeypatch.setattr(xzufi_bulk, "CHUNK", 2)
    ids, admin = await _operator_world(world.state)
    s = suffix()
    async with unit_of_work(world.state, admin) as uow:
        taken = ArticleInput(title=f"Von Hand {s}", summary="", leika_key=KEYS[3])
        await service.create_article(uow, taken, shared=True, tenant_slug=None, external_id=f"xzufi:HAND-{s}")
    text = message(
        leistung(f"A-{s}", f"Hundesteuer {s}", key=KEYS[0]),
        leistung(f"B-{s}", f"Gewerbe {s}", key=KEYS[2]),
        leistung(f"HAND-{s}", f"Fundsachen {s}", key=KEYS[3]),
        leistung(f"C-{s}", f"Parken {s}", key=KEYS[4]),
    )
    report = await _upload(world.state, admin, text)
    assert report.created == 3 and [(e.xzufi_id, e.kind) for e in report.errors] == [(f"HAND-{s}", "leistung")]
    async with unit_of_work(world.state, admin, readonly=True) as uow:
        rows = await uow.conn.fetch(
            "SELECT external_id, published_version FROM articles WHERE tenant_id = $1 AND external_id LIKE $2",
            ids["kreis"],
            f"xzufi:%-{s}",
        )
        objects = await uow.conn.fetchval(
            "SELECT count(*) FROM xzufi_objects WHERE tenant_id = $1 AND xzufi_id LIKE $2", ids["kreis"], f"%-{s}"
        )
    found = {r["external_id"].split(":")[1].split("-")[0]: r["published_version"] for r in rows}
    # One by one publishes at version 3 (draft, review, published): the first part went back too.
    assert found == {"A": 3, "B": 3, "C": 3, "HAND": None}, found  # the hand-made one a draft still
    assert objects == 3


def test_only_a_message_of_services_each_once_is_written_while_read() -> None:
    s = suffix()

    def ids(text: str) -> list[str] | None:
        _, root = xzufi.open_message(text.encode(), "m.xml")
        return xzufi.service_ids_alone(root)

    services = [leistung(f"X{n}-{s}", f"Leistung {n}") for n in range(3)]
    assert ids(message(*services)) == [f"X0-{s}", f"X1-{s}", f"X2-{s}"]
    assert ids(message(*services, leistung("", "ohne Kennung"))) == [f"X0-{s}", f"X1-{s}", f"X2-{s}"]
    assert ids(message(*services, office(f"O-{s}", "Amt", ags=SOEST_AGS))) is None  # offices go first
    assert ids(message(*services, deletions=[("leistung", f"X9-{s}")])) is None
    assert ids(message(*services, leistung(f"X1-{s}", "noch einmal"))) is None  # the parser reports the second
    # What the reading ahead finds is what the reading yields.
    parsed = xzufi.parse_message(message(*services).encode(), "m.xml")
    assert [d.xzufi_id for d in parsed.services] == ids(message(*services))


def test_statements_together_number_their_parameters_in_turn() -> None:
    sql, arguments = together.combined(
        [("INSERT INTO a (x, y) SELECT $1, $2", [1, 2]), ("INSERT INTO b (z) SELECT $1::text || $1", ["v"])]
    )
    assert sql == (
        "WITH part0 AS (INSERT INTO a (x, y) SELECT $1, $2),\n"
        "part1 AS (INSERT INTO b (z) SELECT $3::text || $3)\nSELECT 1"
    )
    assert arguments == [1, 2, "v"]


async def test_statements_together_write_rows_that_reference_each_other(world: World) -> None:
    """A row may reference a row another part inserts (foreign keys are checked at the end of the
    statement); a failing part leaves nothing of any part."""
    async with world.state.pool.acquire() as conn, conn.transaction():
        await conn.execute("CREATE TEMPORARY TABLE parent (id int PRIMARY KEY) ON COMMIT DROP")
        await conn.execute("CREATE TEMPORARY TABLE kid (id int REFERENCES parent) ON COMMIT DROP")
        await together.execute(
            conn,
            [
                ("INSERT INTO kid SELECT unnest($1::int[])", [[1, 2]]),
                None,
                ("INSERT INTO parent VALUES ($1), ($2)", [1, 2]),
            ],
        )
        assert await conn.fetchval("SELECT count(*) FROM kid") == 2
        with pytest.raises(Exception, match="foreign key"):
            async with conn.transaction():
                await together.execute(
                    conn, [("INSERT INTO parent VALUES ($1)", [3]), ("INSERT INTO kid VALUES ($1)", [4])]
                )
        assert await conn.fetchval("SELECT count(*) FROM parent") == 2
