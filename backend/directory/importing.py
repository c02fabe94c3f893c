"""A town's people and what they are responsible for, from a CSV file (decision 027).

One line per person, named by the town's own key (`external_id`): importing the same file twice
changes nothing. A line that cannot go in is reported with its number, column and reason and
changes nothing; the other lines go in. Columns (header on line 1, comma or semicolon):

    external_id, family_name (required); given_name, salutation (Frau/Herr), function,
    department (its name), phone, email, room, languages (de|en), user_name,
    active (yes/no, ja/nein, true/false, 1/0; empty: yes),
    substitutes (external_ids in order, `|` between them),
    responsibilities (`|` between entries; an entry is a LeiKa key or key prefix, or
    `topic:` and a topic, optionally followed by a surname range: `99108012000000 A-K`)

A person marked inactive, and with `prune` every imported person missing from the file, is
deprovisioned: out of responsibilities and substitutions, their open tickets back in the queue.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

import msgspec

from auth.permissions import Operation
from backend.directory import compiled, repository
from backend.directory.provisioning import deprovision, person_fields, responsibility_fields, save_person
from backend.directory.schemas import (
    DirectoryImportProblem,
    DirectoryImportReport,
    Person,
    PersonInput,
    ResponsibilityInput,
)
from backend.errors import DomainError, ValidationFailed
from backend.i18n import _l
from backend.state import UnitOfWork
from backend.structs import error_field
from backend.tenants.reach import reach

MAX_LINES = 20_000
COLUMNS = (
    "external_id",
    "family_name",
    "given_name",
    "salutation",
    "function",
    "department",
    "phone",
    "email",
    "room",
    "languages",
    "user_name",
    "active",
    "substitutes",
    "responsibilities",
)
_CAMEL = {"external_id": "externalId", "family_name": "familyName", "given_name": "givenName", "user_name": "userName"}
_YES = {"", "yes", "ja", "true", "1", "y", "j", "x"}
_NO = {"no", "nein", "false", "0", "n"}
_RANGE = re.compile(r"^(?P<what>.*?)\s+(?P<low>[A-Za-zÄÖÜäöü]{1,3})\s*[-–]\s*(?P<high>[A-Za-zÄÖÜäöü]{1,3})$")


class LineProblem(Exception):
    def __init__(self, column: str | None, message: str) -> None:
        super().__init__(message)
        self.column, self.message = column, message


@dataclass
class _Line:
    number: int
    key: str
    person_id: UUID
    outcome: str  # created, updated, unchanged
    substitutes: list[str] | None  # None: the file has no substitutes column


@dataclass
class _Run:
    problems: list[DirectoryImportProblem] = field(default_factory=list)
    done: list[_Line] = field(default_factory=list)
    deprovisioned: int = 0

    def problem(self, line: int, column: str | None, message: str, key: str | None) -> None:
        self.problems.append(DirectoryImportProblem(line=line, field=column, message=message, external_id=key))


def read_csv(text: str) -> tuple[list[str], list[tuple[int, dict[str, str], bool]]]:
    """The header and the data lines (line number, cells by column, whether it has more cells
    than columns); a header we cannot use is refused as a whole (nothing would go in)."""
    text = text.lstrip("\ufeff")
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        raise ValidationFailed(_l("the file is empty"), field="csv") from None
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        raise ValidationFailed(_l("unknown columns: {names}", names=", ".join(unknown)), field="csv")
    missing = [name for name in ("external_id", "family_name") if name not in header]
    if missing or len(set(header)) != len(header):
        raise ValidationFailed(_l("the header needs external_id and family_name, each column once"), field="csv")
    lines = []
    try:
        for row in reader:
            if reader.line_num > MAX_LINES + 1:
                raise ValidationFailed(_l("at most {limit} lines per file", limit=MAX_LINES), field="csv")
            if not any(cell.strip() for cell in row):
                continue
            extra = any(cell.strip() for cell in row[len(header) :])
            lines.append((reader.line_num, dict(zip(header, row, strict=False)), extra))
    except csv.Error as error:
        raise ValidationFailed(_l("not a readable CSV file: {reason}", reason=str(error)), field="csv") from None
    return header, lines


def _split(cell: str) -> list[str]:
    return [part.strip() for part in cell.split("|") if part.strip()]


def _kept(current: Person | None) -> dict[str, Any]:
    """What a file without some columns leaves as it is: the person as they are."""
    if current is None:
        return {}
    kept = msgspec.to_builtins(current)
    for name in ("tenantId", "id", "version"):
        kept.pop(name)
    return dict(kept)


def _person_input(row: dict[str, str], departments: dict[str, UUID], current: Person | None) -> PersonInput:
    values: dict[str, Any] = _kept(current)
    for column in ("external_id", "family_name", "given_name", "salutation", "function", "room"):
        if column in row:
            values[_CAMEL.get(column, column)] = row[column].strip()
    for column in ("phone", "email", "user_name"):
        if column in row:
            values[_CAMEL.get(column, column)] = row[column].strip() or None
    if "languages" in row:
        values["languages"] = [language.lower() for language in re.split(r"[|\s,]+", row["languages"]) if language]
    if "department" in row:
        name = row["department"].strip()
        if name and name.casefold() not in departments:
            raise LineProblem("department", "no department of the town has this name")
        values["departmentId"] = str(departments[name.casefold()]) if name else None
    active = row.get("active", "").strip().lower()
    if active not in _YES | _NO:
        raise LineProblem("active", "write yes or no")
    values["active"] = active in _YES
    try:
        return msgspec.convert(values, PersonInput)
    except msgspec.ValidationError as error:
        wire = error_field(error)
        wire_column = next((c for c, camel in _CAMEL.items() if camel == wire), wire)
        raise LineProblem(wire_column, str(error).split(" - at ", 1)[0]) from None


def _responsibilities(cell: str, person_id: UUID) -> list[dict[str, Any]]:
    entries = []
    for entry in _split(cell):
        values: dict[str, Any] = {"personId": str(person_id)}
        ranged = _RANGE.match(entry)
        what = ranged.group("what").strip() if ranged else entry
        if ranged:
            values |= {"surnameFrom": ranged.group("low"), "surnameTo": ranged.group("high")}
        if what.lower().startswith(("topic:", "thema:")):
            values["topic"] = what.split(":", 1)[1].strip()
        else:
            values["leikaKey"] = what
        try:
            entries.append(responsibility_fields(msgspec.convert(values, ResponsibilityInput)))
        except msgspec.ValidationError as error:
            raise LineProblem("responsibilities", f"{entry}: {str(error).split(' - at ', 1)[0]}") from None
        except ValidationFailed as error:
            raise LineProblem("responsibilities", f"{entry}: {error.message}") from None
    return entries


def _same(fields: dict[str, Any], person: Person) -> bool:
    return all(getattr(person, name) == value for name, value in fields.items())


async def _import_line(
    uow: UnitOfWork, tenant_id: UUID, row: dict[str, str], current: Person | None, departments: dict[str, UUID]
) -> tuple[UUID, str, bool]:
    """One line, in the caller's savepoint: (person id, outcome, deprovisioned now)."""
    data = _person_input(row, departments, current)
    person_id = current.id if current else uuid4()
    wanted = _responsibilities(row["responsibilities"], person_id) if "responsibilities" in row else None
    fields = await person_fields(uow, tenant_id, data, person_id, Operation.DIRECTORY_WRITE)
    have = None
    if current is not None and wanted is not None:
        have = await repository.list_responsibilities(uow.conn, tenant_id, person_id)
    same_duties = wanted is None or (
        have is not None and sorted(map(_duty, wanted)) == sorted(_duty(_columns(r)) for r in have)
    )
    if current is not None and _same(fields, current) and same_duties:
        return person_id, "unchanged", False
    leaving = current is not None and current.active and not data.active
    await save_person(uow, tenant_id, person_id, data, Operation.DIRECTORY_WRITE, new=current is None)
    if wanted is not None and data.active:
        await repository.replace_responsibilities(uow.conn, tenant_id, person_id, wanted)
    return person_id, "created" if current is None else "updated", leaving


def _columns(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in ("leika_key", "topic", "surname_from", "surname_to", "area")}


def _duty(entry: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(entry.get(name) or "") for name in ("leika_key", "topic", "surname_from", "surname_to", "area"))


async def import_people_csv(
    uow: UnitOfWork, tenant_slug: str, text: str, *, prune: bool = False
) -> DirectoryImportReport:
    tenant = await reach(uow, tenant_slug, Operation.DIRECTORY_WRITE)
    header, lines = read_csv(text)
    compiled.changed(uow)
    departments = await repository.departments_by_name(uow.conn, tenant.id)
    people = {p.external_id: p for p in await repository.list_people(uow.conn, tenant.id) if p.external_id}
    run, seen = _Run(), set()
    for number, row, extra in lines:
        key = row.get("external_id", "").strip()
        if extra:
            run.problem(number, None, "more cells than columns", key or None)
            continue
        if not key:
            run.problem(number, "external_id", "every line needs its external_id", None)
            continue
        if key in seen:
            run.problem(number, "external_id", "this external_id is on an earlier line too", key)
            continue
        seen.add(key)
        try:
            async with uow.conn.transaction():  # a savepoint: a bad line changes nothing
                person_id, outcome, left = await _import_line(uow, tenant.id, row, people.get(key), departments)
        except LineProblem as problem:
            run.problem(number, problem.column, problem.message, key)
            continue
        except DomainError as error:
            column = getattr(error, "field", None)
            run.problem(number, {v: k for k, v in _CAMEL.items()}.get(column or "", column), str(error.message), key)
            continue
        run.deprovisioned += left
        subs = _split(row.get("substitutes", "")) if "substitutes" in header else None
        run.done.append(_Line(number, key, person_id, outcome, subs))
    await _substitutes(uow, tenant.id, run)
    if prune:
        for key, person in people.items():
            if key not in seen and person.active:
                await deprovision(uow, tenant.id, person.id, Operation.DIRECTORY_WRITE)
                run.deprovisioned += 1
    counts = {outcome: sum(1 for line in run.done if line.outcome == outcome) for outcome in ("created", "updated")}
    return DirectoryImportReport(
        created=counts["created"],
        updated=counts["updated"],
        unchanged=len(run.done) - counts["created"] - counts["updated"],
        deprovisioned=run.deprovisioned,
        problems=sorted(run.problems, key=lambda p: p.line),
    )


async def _substitutes(uow: UnitOfWork, tenant_id: UUID, run: _Run) -> None:
    """After every line is in: substitutes named by their keys, in order (a later line may be
    the substitute of an earlier one)."""
    lines = [line for line in run.done if line.substitutes is not None]
    if not lines:
        return
    people = await repository.list_people(uow.conn, tenant_id)
    by_key = {p.external_id: p for p in people if p.external_id}
    by_id = {p.id: p for p in people}
    for line in lines:
        assert line.substitutes is not None
        unknown = [key for key in line.substitutes if key not in by_key or not by_key[key].active]
        if unknown or line.key in line.substitutes or len(set(line.substitutes)) != len(line.substitutes):
            why = f"not in the directory: {', '.join(unknown)}" if unknown else "themselves, or someone twice"
            run.problem(line.number, "substitutes", why, line.key)
            continue
        wanted = [by_key[key].id for key in line.substitutes]
        person = by_id[line.person_id]
        if person.active and wanted != person.substitute_ids:
            await repository.replace_substitutes(uow.conn, tenant_id, line.person_id, wanted)
            if line.outcome == "unchanged":
                line.outcome = "updated"
