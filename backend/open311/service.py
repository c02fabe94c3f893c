"""The rules of the Open311 facade (decision 030): who calls, the town's services and keys, and
requests handed to the tickets service — which keeps its own rules for the citizen's data
(consent, audit, retention); nothing of them is repeated here.

Callers: a partner system's `api_key` (a machine principal of the key's town, allowed to create
and read tickets there), a partner's OAuth bearer token (its own principal), or nobody — then only
the town's non-personal data is read (services, requests without description or contact).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

import msgspec

from auth.errors import Forbidden
from auth.permissions import Operation
from auth.principal import Principal
from auth.roles import Scope
from backend import clock
from backend.db.tenancy import tenant_transaction
from backend.errors import NotFound, ValidationFailed
from backend.i18n import N_, Message, _l, validation_message
from backend.open311 import repository
from backend.open311.schemas import (
    ApiKey,
    ApiKeyInput,
    ApiKeyIssued,
    Datatype,
    GeoReportAttribute,
    GeoReportAttributeValue,
    GeoReportCreated,
    GeoReportRequest,
    GeoReportService,
    GeoReportServiceDefinition,
    GeoReportToken,
    Open311Service,
    Open311ServiceInput,
    RequestQuery,
    RequestRecord,
    Status,
    Submission,
)
from backend.state import AppState, UnitOfWork
from backend.structs import control_character_problem
from backend.tenants import reach
from backend.tickets import service as tickets_service
from backend.tickets.schemas import OPEN_STATUSES, Channel, Citizen, Ticket, TicketCreate, TicketStatus

KEY_ISSUER = "open311:api-key"
PUBLIC_ISSUER = "open311:public"
KEY_PREFIX = "o311_"
DEFAULT_DAYS = 90  # the specification's default window for GET requests
MAX_RESULTS = 1000  # the specification's default page
MAX_CANDIDATES = 5000  # requests read for one answer before the status filter


@dataclass(frozen=True, slots=True)
class Caller:
    """Who an Open311 call acts as, and for which town."""

    principal: Principal
    tenant_slug: str
    api_key_id: UUID | None = None
    public: bool = False


def key_hash(key: str) -> bytes:
    """Keys are 256 random bits, not passwords: one SHA-256 is enough to keep them unreadable."""
    return hashlib.sha256(key.encode()).digest()


def _machine(issuer: str, subject: str, tenant_id: UUID, slug: str, scopes: frozenset[Scope]) -> Principal:
    return Principal(
        issuer=issuer,
        subject=subject,
        tenant_id=tenant_id,
        tenant_slug=slug,
        scopes=scopes,
        acting_tenant_ids=frozenset({tenant_id}),
        client_id=subject,
    )


async def caller(
    app: AppState, *, api_key: str | None, jurisdiction_id: str | None, principal: Principal | None
) -> Caller:
    """The caller, found before the unit of work (as sign-in is, on a connection of its own)."""
    if principal is not None:  # a partner's bearer token: its own grants decide
        return Caller(principal, jurisdiction_id or principal.tenant_slug)
    if api_key is not None:
        if len(api_key) > 200 or control_character_problem(api_key):
            raise Forbidden(N_("the api_key is not valid"))
        async with tenant_transaction(app.pool, [], readonly=True) as conn:
            found = await repository.key_by_hash(conn, key_hash(api_key))
        if found is None:
            raise Forbidden(N_("the api_key is not valid"))
        key_id, tenant_id, slug = found
        if jurisdiction_id is not None and jurisdiction_id != slug:
            raise NotFound(_l("jurisdiction not found"))
        scopes = frozenset({Scope.TICKETS_READ, Scope.TICKETS_WRITE})
        return Caller(_machine(KEY_ISSUER, f"open311-key:{key_id}", tenant_id, slug, scopes), slug, key_id)
    if jurisdiction_id is not None and (len(jurisdiction_id) > 100 or control_character_problem(jurisdiction_id)):
        raise NotFound(_l("jurisdiction not found"))  # cannot exist; and NUL never reaches SQL
    async with tenant_transaction(app.pool, [], readonly=True) as conn:
        towns = await repository.jurisdiction(conn, jurisdiction_id)
    if not towns:
        raise NotFound(_l("jurisdiction not found"))
    if len(towns) > 1:
        raise ValidationFailed(_l("jurisdiction_id is required: several towns offer Open311 here"))
    tenant_id, slug = towns[0]
    public = _machine(PUBLIC_ISSUER, "open311-public", tenant_id, slug, frozenset({Scope.TICKETS_READ}))
    return Caller(public, slug, public=True)


# --- services -------------------------------------------------------------------------------


async def services(uow: UnitOfWork, slug: str) -> list[Open311Service]:
    tenant = await reach.reach(uow, slug, Operation.TICKET_READ)
    return await repository.list_services(uow.conn, tenant.id)


async def service_definition(uow: UnitOfWork, slug: str, service_code: str) -> Open311Service:
    tenant = await reach.reach(uow, slug, Operation.TICKET_READ)
    found = await repository.find_service(uow.conn, tenant.id, service_code)
    if found is None:
        raise NotFound(_l("service_code not found"))
    return found


async def configured_services(uow: UnitOfWork, slug: str) -> list[Open311Service]:
    tenant = await reach.reach(uow, slug, Operation.OPEN311_CONFIGURE)
    return await repository.list_services(uow.conn, tenant.id)


async def put_service(
    uow: UnitOfWork, slug: str, service_code: str, data: Open311ServiceInput, now: datetime | None = None
) -> Open311Service:
    tenant = await reach.reach(uow, slug, Operation.OPEN311_CONFIGURE)
    if not service_code.isdigit() or len(service_code) > 14:
        raise ValidationFailed(_l("the service code must be a LeiKa key (up to 14 digits)"), field="serviceCode")
    if not data.service_name.strip():
        raise ValidationFailed(_l("the service name must not be blank"), field="serviceName")
    codes = [a.code for a in data.attributes]
    if len(codes) != len(set(codes)):
        raise ValidationFailed(_l("each attribute code may appear only once"), field="attributes")
    for attribute in data.attributes:
        listed = attribute.datatype in (Datatype.SINGLEVALUELIST, Datatype.MULTIVALUELIST)
        if listed != bool(attribute.values):
            raise ValidationFailed(_l("list attributes need values, other attributes none"), field="attributes")
    if data.department_id is not None and not await tickets_service.department_accepts_tickets(
        uow, tenant.id, data.department_id, Operation.OPEN311_CONFIGURE
    ):
        raise ValidationFailed(_l("no active department with this id in the town"), field="departmentId")
    service = Open311Service(
        tenant_id=tenant.id,
        service_code=service_code,
        service_name=data.service_name.strip(),
        description=data.description,
        keywords=data.keywords,
        group=data.group,
        department_id=data.department_id,
        attributes=data.attributes,
        updated_at=now or clock.now(),
    )
    return await repository.save_service(uow.conn, service)


async def remove_service(uow: UnitOfWork, slug: str, service_code: str) -> None:
    tenant = await reach.reach(uow, slug, Operation.OPEN311_CONFIGURE)
    if not await repository.delete_service(uow.conn, tenant.id, service_code):
        raise NotFound(_l("service_code not found"))


# --- api keys -------------------------------------------------------------------------------


async def api_keys(uow: UnitOfWork, slug: str) -> list[ApiKey]:
    tenant = await reach.reach(uow, slug, Operation.OPEN311_CONFIGURE)
    return await repository.list_keys(uow.conn, tenant.id)


async def issue_api_key(uow: UnitOfWork, slug: str, data: ApiKeyInput, now: datetime | None = None) -> ApiKeyIssued:
    tenant = await reach.reach(uow, slug, Operation.OPEN311_CONFIGURE)
    if not data.description.strip():
        raise ValidationFailed(_l("the description must not be blank"), field="description")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    issued = await repository.insert_key(
        uow.conn,
        tenant.id,
        uuid4(),
        key_hash(key),
        key[: len(KEY_PREFIX) + 4],
        data.description.strip(),
        uow.principal.subject,
        now or clock.now(),
    )
    return ApiKeyIssued(api_key=issued, key=key)


async def revoke_api_key(uow: UnitOfWork, slug: str, key_id: UUID, now: datetime | None = None) -> ApiKey:
    tenant = await reach.reach(uow, slug, Operation.OPEN311_CONFIGURE)
    revoked = await repository.revoke_key(uow.conn, tenant.id, key_id, now or clock.now())
    if revoked is None:
        raise NotFound(_l("api key not found"))
    return revoked


# --- requests -------------------------------------------------------------------------------


def _check_text(data: Submission) -> None:
    """The house text rule (decision 019): nothing XML, PostgreSQL or a screen reader cannot take."""
    for name in data.__struct_fields__:
        value = getattr(data, name)
        texts = [value] if isinstance(value, str) else []
        if isinstance(value, dict):
            texts = [*value, *(v for item in value.values() for v in ([item] if isinstance(item, str) else item))]
        for text in texts:
            if problem := control_character_problem(text, lines=name in ("description", "attribute")):
                message = (
                    _l("{field} must be a single line (no line breaks or tabs)", field=name)
                    if "single line" in problem
                    else _l("{field} must not contain control characters", field=name)
                )
                raise ValidationFailed(message, field=name)


def _is_number(value: str) -> bool:
    """GeoReport's `number`: a decimal number; a German comma is taken as the decimal point."""
    try:
        return Decimal(value.strip().replace(",", ".")).is_finite()
    except ArithmeticError:
        return False


def _is_datetime(value: str) -> bool:
    """GeoReport's `datetime`: "must be able to transform into a valid ISO 8601 date"."""
    try:
        datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _answers(service: Open311Service, given: dict[str, str | list[str]]) -> list[str]:
    """The attribute answers as lines of the concern; required ones present, list values known.
    Attributes the definition does not ask are left out (clients send what other towns ask)."""
    known = {a.code: a for a in service.attributes if a.variable}
    lines = []
    for attribute in sorted(known.values(), key=lambda a: a.order):
        value = given.get(attribute.code)
        values = [value] if isinstance(value, str) else list(value or [])
        values = [v for v in values if v.strip()]
        if not values:
            if attribute.required:
                raise ValidationFailed(_l("attribute {code} is required", code=attribute.code), field="attribute")
            continue
        if attribute.datatype is not Datatype.MULTIVALUELIST and len(values) > 1:
            raise ValidationFailed(_l("attribute {code} takes one value", code=attribute.code), field="attribute")
        if attribute.datatype is Datatype.NUMBER and not all(_is_number(v) for v in values):
            raise ValidationFailed(_l("attribute {code} must be a number", code=attribute.code), field="attribute")
        if attribute.datatype is Datatype.DATETIME and not all(_is_datetime(v) for v in values):
            raise ValidationFailed(
                _l("attribute {code} must be an ISO 8601 date and time", code=attribute.code), field="attribute"
            )
        if attribute.values:
            names = {v.key: v.name for v in attribute.values}
            if any(v not in names for v in values):
                raise ValidationFailed(
                    _l("attribute {code} has a value that is not offered", code=attribute.code), field="attribute"
                )
            values = [names[v] for v in values]
        lines.append(f"{attribute.description}: {', '.join(values)}")
    return lines


def _concern(service: Open311Service, data: Submission) -> str:
    parts = [data.description.strip() if data.description and data.description.strip() else service.service_name]
    where = [w for w in (data.address_string, data.address_id and f"ID {data.address_id}") if w]
    if data.lat is not None and data.long is not None:
        where.append(f"{_degrees(data.lat)}, {_degrees(data.long)}")
    parts.append("Ort: " + "; ".join(where))
    parts.extend(_answers(service, data.attribute))
    if data.media_url:
        parts.append(f"Foto: {data.media_url}")
    return "\n\n".join(parts)[:10000]


def _citizen(data: Submission) -> Citizen:
    """Contact data given to a partner system for this request is taken as given with the
    citizen's consent (the key's terms oblige the partner to ask; decision 030)."""
    name = " ".join(n.strip() for n in (data.first_name, data.last_name) if n and n.strip()) or None
    channel = Channel.EMAIL if data.email else Channel.PHONE if data.phone else Channel.NONE
    given = any(v is not None for v in (name, data.email, data.phone))
    return Citizen(consent=given, preferred_channel=channel, name=name, callback_number=data.phone, email=data.email)


def _notice(ticket: Ticket) -> Message:
    due = ticket.due_at.astimezone(clock.BERLIN).strftime("%d.%m.%Y %H:%M")
    return _l("{department} answers by {due}", department=ticket.department_name, due=due)


def _status(ticket: Ticket) -> Status:
    return Status.OPEN if ticket.status in OPEN_STATUSES else Status.CLOSED


def _status_notes(ticket: Ticket) -> Message:
    notes = {
        TicketStatus.NEW: _l("received"),
        TicketStatus.FORWARDED: _l("forwarded to {department}", department=ticket.department_name),
        TicketStatus.IN_PROGRESS: _l("in progress at {department}", department=ticket.department_name),
        TicketStatus.ANSWERED: _l("answered by {department}", department=ticket.department_name),
        TicketStatus.CLOSED: _l("done"),
    }
    return notes[ticket.status]


def _degrees(value: float | None) -> Decimal | None:
    """Six decimals (about 10 cm) are all a report needs and all the column keeps."""
    return None if value is None else Decimal(f"{value:.6f}")


def _stamp(at: datetime) -> str:
    """W3C date and time with the offset, as the specification's examples show."""
    return at.astimezone(clock.BERLIN).isoformat(timespec="seconds")


async def submit(
    uow: UnitOfWork, slug: str, data: Submission, api_key_id: UUID | None, locale: str, now: datetime | None = None
) -> GeoReportCreated:
    """A citizen's report from a partner client becomes a ticket for the town's department."""
    now = now or clock.now()
    tenant = await reach.reach(uow, slug, Operation.TICKET_CREATE)
    _check_text(data)
    service = await repository.find_service(uow.conn, tenant.id, data.service_code)
    if service is None:  # the specification: 404 for a service_code not found, 400 for none given
        raise NotFound(_l("service_code not found"), field="service_code")
    if (data.lat is None) != (data.long is None):
        raise ValidationFailed(_l("lat and long go together"), field="lat")
    if data.lat is None and data.address_string is None and data.address_id is None:
        raise ValidationFailed(_l("a location is required: lat and long, address_string or address_id"), field="lat")
    try:
        create = TicketCreate(
            tenant_slug=slug,
            subject=service.service_name,
            concern=_concern(service, data),
            citizen=_citizen(data),
            department_id=service.department_id,
            leika_key=service.service_code,
        )
    except (ValueError, msgspec.ValidationError) as refused:
        raise ValidationFailed(validation_message(str(refused))) from None
    if api_key_id is not None:
        await repository.touch_key(uow.conn, tenant.id, api_key_id, now)
    ticket = await tickets_service.create_ticket(uow, create, now)
    token = uuid4()
    record = RequestRecord(
        tenant_id=tenant.id,
        ticket_id=ticket.id,
        number=ticket.number,
        service_code=service.service_code,
        token=token,
        address_string=data.address_string,
        address_id=data.address_id,
        lat=_degrees(data.lat),
        long=_degrees(data.long),
        media_url=data.media_url,
        requested_at=now,
    )
    await repository.insert_request(uow.conn, record, api_key_id)
    return GeoReportCreated(str(ticket.number), str(token), _notice(ticket).render(locale), data.account_id)


def _wire(record: RequestRecord, ticket: Ticket, names: dict[str, str], locale: str) -> GeoReportRequest:
    return GeoReportRequest(
        service_request_id=str(record.number),
        status=_status(ticket),
        status_notes=_status_notes(ticket).render(locale),
        service_name=names.get(record.service_code, ticket.subject),
        service_code=record.service_code,
        agency_responsible=ticket.department_name,
        service_notice=_notice(ticket).render(locale),
        requested_datetime=_stamp(record.requested_at),
        updated_datetime=_stamp(ticket.updated_at),
        expected_datetime=_stamp(ticket.due_at),
        address=record.address_string,
        address_id=record.address_id,
        lat=float(record.lat) if record.lat is not None else None,
        long=float(record.long) if record.long is not None else None,
        media_url=record.media_url,
        token=str(record.token),
    )


async def requests(
    uow: UnitOfWork, slug: str, query: RequestQuery, locale: str, now: datetime | None = None
) -> list[GeoReportRequest]:
    """Requests of the town, the newest first; by ids, or by service, status and dates (the
    last 90 days by default), at most 1000."""
    tenant = await reach.reach(uow, slug, Operation.TICKET_READ)
    if query.ids:
        records = await repository.requests_by_numbers(uow.conn, tenant.id, query.ids)
    else:
        end = query.end or now or clock.now()
        start = query.start or end - timedelta(days=DEFAULT_DAYS)
        if start > end:
            raise ValidationFailed(_l("start_date must not be after end_date"), field="start_date")
        records = await repository.requests_between(
            uow.conn, tenant.id, start, end, query.service_codes, MAX_CANDIDATES
        )
    tickets = await tickets_service.tickets_by_ids(uow, [r.ticket_id for r in records])
    names = {s.service_code: s.service_name for s in await repository.list_services(uow.conn, tenant.id)}
    found: list[GeoReportRequest] = []
    for record in records:
        ticket = tickets.get(record.ticket_id)
        if ticket is None or (query.statuses and not query.ids and _status(ticket) not in query.statuses):
            continue
        found.append(_wire(record, ticket, names, locale))
        if len(found) == MAX_RESULTS:
            break
    return found


async def token(uow: UnitOfWork, slug: str, value: str) -> GeoReportToken:
    tenant = await reach.reach(uow, slug, Operation.TICKET_READ)
    try:
        wanted = UUID(value)
    except ValueError:
        raise NotFound(_l("token not found")) from None
    record = await repository.request_by_token(uow.conn, tenant.id, wanted)
    if record is None:
        raise NotFound(_l("token not found"))
    return GeoReportToken(service_request_id=str(record.number), token=str(record.token))


def service_list_entry(service: Open311Service) -> GeoReportService:
    """A `services` entry, as the specification names its fields."""
    return GeoReportService(
        service_code=service.service_code,
        service_name=service.service_name,
        description=service.description,
        metadata=bool(service.attributes),
        type="realtime",
        keywords=",".join(service.keywords),
        group=service.group,
    )


def definition_entry(service: Open311Service) -> GeoReportServiceDefinition:
    return GeoReportServiceDefinition(
        service_code=service.service_code,
        attributes=[
            GeoReportAttribute(
                variable=a.variable,
                code=a.code,
                datatype=a.datatype.value,
                required=a.required,
                datatype_description=a.datatype_description,
                order=a.order,
                description=a.description,
                values=[GeoReportAttributeValue(key=v.key, name=v.name) for v in a.values],
            )
            for a in sorted(service.attributes, key=lambda a: a.order)
        ],
    )
