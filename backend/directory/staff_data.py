"""A person's private number and the audit of its reads (decision 037). Staff data is
employees' personal data: the private number is not part of the person's record (lists,
search, SCIM and the forwarding decision never carry it); it is read one person at a time,
and every read writes its audit row in the same transaction — no read without its record, and
one INSERT (~0.2 ms) is cheaper than any queue that would have to be made as durable."""

from __future__ import annotations

from uuid import UUID

from auth.permissions import Operation
from backend import cursors
from backend.directory import audit_repository, repository
from backend.directory.provisioning import normalise_phone
from backend.directory.schemas import PrivateNumber, PrivateNumberInput, PrivateNumberReadPage
from backend.errors import ValidationFailed
from backend.i18n import _l
from backend.state import UnitOfWork
from backend.tenants.reach import reach

MAX_PAGE = 100


async def private_number(uow: UnitOfWork, tenant_slug: str, person_id: UUID, via: str) -> PrivateNumber:
    """The person's private number, for those who may read the town's directory; the read is
    audited (who, when, which person, `via`: the route), also when the person has none."""
    tenant = await reach(uow, tenant_slug, Operation.DIRECTORY_READ)
    await repository.get_person(uow.conn, tenant.id, person_id)
    principal = uow.principal
    await audit_repository.insert_read(
        uow.conn,
        tenant.id,
        person_id,
        actor_subject=principal.subject,
        actor_issuer=principal.issuer,
        actor_tenant_id=principal.tenant_id,
        via=via[:200],
    )
    return PrivateNumber(
        person_id=person_id, number=await audit_repository.find_private_number(uow.conn, tenant.id, person_id)
    )


async def set_private_number(
    uow: UnitOfWork, tenant_slug: str, person_id: UUID, data: PrivateNumberInput
) -> PrivateNumber:
    """The town admin sets (or with null removes) a person's private number. The answer repeats
    what the admin sent, so it is not a read."""
    tenant = await reach(uow, tenant_slug, Operation.DIRECTORY_WRITE)
    await repository.get_person(uow.conn, tenant.id, person_id)
    number = normalise_phone(data.number, field="number")
    await audit_repository.set_private_number(uow.conn, tenant.id, person_id, number)
    return PrivateNumber(person_id=person_id, number=number)


async def private_number_reads(
    uow: UnitOfWork,
    tenant_slug: str,
    person_id: UUID | None = None,
    first: int = 50,
    after: str | None = None,
) -> PrivateNumberReadPage:
    """The audit of private-number reads, oldest first (the town admin)."""
    tenant = await reach(uow, tenant_slug, Operation.DIRECTORY_AUDIT_READ)
    if not 1 <= first <= MAX_PAGE:
        raise ValidationFailed(_l("first must be between 1 and {max_page_size}", max_page_size=MAX_PAGE), field="first")
    rows = await audit_repository.list_reads(uow.conn, tenant.id, person_id, cursors.decode(after), first + 1)
    items = rows[:first]
    more = len(rows) > first
    return PrivateNumberReadPage(items=items, next_cursor=cursors.encode(items[-1].at, items[-1].id) if more else None)
