"""Responsibilities the feed sends apart from their office (decision 024, amendment 2026-12-07).

PVOG pages carry a `zustaendigkeitTransferObjekt` per responsibility (`uebergeordnetesObjektID`
names the office) and delete one by `loesche klasse="Zustaendigkeit"` with its id. A received
office keeps its responsibilities in `xzufi_objects.data` (what `xzufi_import` reads to make the
towns' routes), so one sent apart is added there — marked `sent`, so that the office's own next
version, which lists only its own, does not drop it — and a deletion takes it out again.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from backend.knowledge import xzufi
from backend.knowledge import xzufi_repository as store
from backend.knowledge.xzufi_schemas import XzufiProblem


def entry(duty: xzufi.Responsibility, sent: bool = False) -> dict[str, Any]:
    """A responsibility as an office's `data` holds it."""
    value: dict[str, Any] = {"leistung": duty.leistung_id, "areas": list(duty.area_ids)}
    if duty.role:
        value["role"] = duty.role
    if duty.xzufi_id:
        value["id"] = duty.xzufi_id
    if sent:
        value["sent"] = True
    return value


def kept_apart(stored: store.StoredObject | None, own: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The responsibilities sent apart that an office's new version keeps (unless it names them itself)."""
    if stored is None:
        return []
    mine = {(e["leistung"], tuple(e["areas"])) for e in own}
    return [
        e
        for e in stored.data.get("responsibilities", [])
        if e.get("sent") and (e["leistung"], tuple(e["areas"])) not in mine
    ]


def _with(data: dict[str, Any], responsibilities: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        **data,
        "responsibilities": responsibilities,
        "leistungen": sorted({e["leistung"] for e in responsibilities}),
    }


async def attach(
    conn: asyncpg.Connection, operator: UUID, now: datetime, name: str, sent: list[xzufi.SentResponsibility]
) -> tuple[set[str], list[XzufiProblem]]:
    """Add the responsibilities to their offices; the services they name (for the routes), and
    the ones whose office was never received (reported: the feed sends offices first)."""
    offices = await store.objects_by_ids(conn, operator, "organisationseinheit", sorted({s.office_id for s in sent}))
    touched: set[str] = set()
    problems = []
    changed: dict[str, store.StoredObject] = {}
    for item in sent:
        office = changed.get(item.office_id) or offices.get(item.office_id)
        duty = item.responsibility
        if office is None or office.status != "active":
            problems.append(
                XzufiProblem(
                    name,
                    item.line,
                    "zustaendigkeit",
                    duty.xzufi_id or None,
                    f"the office {item.office_id!r} is not known",
                )
            )
            continue
        new = entry(duty, sent=True)
        old = office.data.get("responsibilities", [])
        if new in old:
            continue  # sent again unchanged
        current = [e for e in old if not (duty.xzufi_id and e.get("id") == duty.xzufi_id)]
        changed[item.office_id] = dataclasses.replace(office, data=_with(office.data, [*current, new]))
        touched.add(duty.leistung_id)
    await store.save_objects(conn, operator, list(changed.values()), now)
    return touched, problems


async def detach(conn: asyncpg.Connection, operator: UUID, now: datetime, responsibility_id: str) -> bool:
    """`loesche` of a responsibility: the office no longer lists it (False: none does). The
    town's route stays until an editor changes it: other offices may still serve the service."""
    office = await store.office_with_responsibility(conn, operator, responsibility_id)
    if office is None:
        return False
    kept = [e for e in office.data.get("responsibilities", []) if e.get("id") != responsibility_id]
    await store.save_object(conn, operator, dataclasses.replace(office, data=_with(office.data, kept)), now)
    return True
