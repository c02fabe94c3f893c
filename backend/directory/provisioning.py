"""What every way of keeping the directory has in common — the town admin's forms, the CSV
import and the town's identity provider (SCIM): the input rules for a person and a
responsibility, saving a person, and deprovisioning one (decisions 023, 027).

The functions here take a tenant id the caller got from the door; each checks again that the
principal's grant for the caller's operation reaches it (no query: the grant's tenant set)."""

from __future__ import annotations

import unicodedata
from typing import Any
from uuid import UUID

import asyncpg
import phonenumbers

from auth.permissions import Operation, require
from backend.directory import compiled, repository
from backend.directory.schemas import Person, PersonInput, ResponsibilityInput
from backend.errors import Conflict, NotFound, ValidationFailed
from backend.i18n import _l
from backend.state import UnitOfWork
from backend.tickets import assignees


def normalise_phone(value: str | None, field: str = "phone") -> str | None:
    """Any German way of writing a number ("02921 30-1234", "+49 (0)2921 301234") → E.164."""
    if value is None:
        return None
    try:
        number = phonenumbers.parse(value, "DE")
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise ValidationFailed(_l("not a valid telephone number"), field=field)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def fold_letters(text: str) -> str:
    """Surnames compared as a register sorts them (DIN 5007-1): Ä → A, ß → SS, letters only."""
    plain = unicodedata.normalize("NFKD", text.replace("ß", "ss").replace("ẞ", "SS"))
    return "".join(ch for ch in plain if ch.isascii() and ch.isalpha()).upper()


def in_surname_range(surname: str, low: str, high: str) -> bool:
    folded = fold_letters(surname)
    return low <= folded[: len(low)] and folded[: len(high)] <= high


def responsibility_fields(data: ResponsibilityInput) -> dict[str, Any]:
    """The row of a responsibility, its surname range folded; refused when it cannot mean anything."""
    if (data.leika_key is None) == (data.topic is None or not data.topic.strip()):
        raise ValidationFailed(_l("give either a LeiKa key or a topic"), field="leikaKey")
    if (data.surname_from is None) != (data.surname_to is None):
        raise ValidationFailed(_l("a surname range needs both ends"), field="surnameTo")
    low = fold_letters(data.surname_from) if data.surname_from else None
    high = fold_letters(data.surname_to) if data.surname_to else None
    if low is not None and high is not None and (not low or not high or low > high):
        raise ValidationFailed(_l("the surname range ends before it starts"), field="surnameTo")
    return {
        "person_id": data.person_id,
        "leika_key": data.leika_key,
        "topic": data.topic.strip() if data.topic else None,
        "surname_from": low,
        "surname_to": high,
        "area": data.area.strip() if data.area else None,
    }


def _guard(uow: UnitOfWork, tenant_id: UUID, operation: Operation) -> None:
    if tenant_id not in require(uow.principal, operation):
        raise NotFound(_l("tenant not found"))


def _unique_field(error: asyncpg.UniqueViolationError) -> str:
    name = error.constraint_name or ""
    return {
        "directory_people_user_name": "userName",
        "directory_people_subject": "subject",
        "directory_people_external_id": "externalId",
    }.get(name, "phone")


async def person_fields(
    uow: UnitOfWork, tenant_id: UUID, data: PersonInput, person_id: UUID, operation: Operation
) -> dict[str, Any]:
    """The columns of a person, checked against the town (department, substitutes)."""
    _guard(uow, tenant_id, operation)
    if not data.family_name.strip():
        raise ValidationFailed(_l("the family name must not be blank"), field="familyName")
    if data.department_id is not None and not await repository.department_exists(
        uow.conn, tenant_id, data.department_id
    ):
        raise ValidationFailed(_l("no department with this id in the town"), field="departmentId")
    substitutes = list(data.substitute_ids)
    if person_id in substitutes or len(set(substitutes)) != len(substitutes):
        raise ValidationFailed(_l("a person cannot substitute themselves, nor twice"), field="substituteIds")
    if set(substitutes) - await repository.existing_people(uow.conn, tenant_id, substitutes):
        raise ValidationFailed(_l("no person with this id in the town's directory"), field="substituteIds")
    return {
        "salutation": data.salutation.value,
        "given_name": data.given_name.strip(),
        "family_name": data.family_name.strip(),
        "function": data.function.strip(),
        "department_id": data.department_id,
        "phone": normalise_phone(data.phone),
        "email": data.email,
        "room": data.room.strip(),
        "languages": sorted(set(data.languages)),
        "user_name": data.user_name,
        "external_id": data.external_id,
        "subject": data.subject,
        "active": data.active,
    }


async def save_person(
    uow: UnitOfWork, tenant_id: UUID, person_id: UUID, data: PersonInput, operation: Operation, *, new: bool
) -> Person:
    """Insert or replace a person (and their substitutes). A person saved inactive is
    deprovisioned: out of every responsibility and substitution, their tickets back in the queue."""
    fields = await person_fields(uow, tenant_id, data, person_id, operation)
    compiled.changed(uow)
    try:
        async with uow.conn.transaction():  # a savepoint: a duplicate is a 409, the request goes on
            if new:
                await repository.insert_person(uow.conn, tenant_id, person_id, fields)
            elif not await repository.update_person(uow.conn, tenant_id, person_id, fields):
                raise NotFound(_l("person not found"))
    except asyncpg.UniqueViolationError as error:
        raise Conflict(_l("another person of the town already has this value"), field=_unique_field(error)) from None
    await repository.replace_substitutes(uow.conn, tenant_id, person_id, data.substitute_ids)
    if not data.active and not new:
        await deprovision(uow, tenant_id, person_id, operation)
    return await repository.get_person(uow.conn, tenant_id, person_id)


async def deprovision(
    uow: UnitOfWork, tenant_id: UUID, person_id: UUID, operation: Operation, *, delete: bool = False
) -> int:
    """The person leaves the directory: inactive (or deleted), no longer responsible for
    anything nor anyone's substitute, and their open tickets back in their department's queue,
    each with an event. Returns how many tickets went back. Doing it twice changes nothing."""
    _guard(uow, tenant_id, operation)
    if await repository.find_person(uow.conn, tenant_id, person_id) is None:
        raise NotFound(_l("person not found"))
    compiled.changed(uow)
    # Their tickets, then the person (as an assignment locks a ticket, then its person); then
    # every open ticket of theirs back to the queue, one assigned to them meanwhile included.
    await assignees.hold_open_tickets(uow, tenant_id, person_id, operation)
    await repository.lock_person_to_leave(uow.conn, tenant_id, person_id)
    returned = await assignees.return_to_queue(uow, tenant_id, person_id, operation)
    await repository.release_person(uow.conn, tenant_id, person_id)
    if delete:
        await repository.delete_person(uow.conn, tenant_id, person_id)
    else:
        await repository.set_active(uow.conn, tenant_id, person_id, False)
    return returned
