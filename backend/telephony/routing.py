"""The compiled routing table and the decision made from it: pure, no I/O.

A `RoutingTable` holds every service number, the routing facts of every tenant (calendar,
departments, absences of the town's operator) and the operators' 115 area codes. It is built
from PostgreSQL, cached in Redis and in process (see `cache`), and answers "for whom, and does
the centre take this call now?" without touching the database.

Numbers are matched most-specific first: the full number, then the longest block prefix. The
database refuses overlapping numbers of two tenants in one period, so all matches on a day
belong to one tenant; a match outside the caller's tenants is "not ours", like no match.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
from cachetools import LRUCache

from backend.telephony.numbers import is_domestic
from backend.telephony.schemas import (
    Candidate,
    DepartmentRef,
    MatchedNumber,
    NumberKind,
    Purpose,
    ResolvedBy,
    RoutingDecision,
    RoutingReason,
    RoutingWindow,
    TenantRef,
)
from backend.tenants.calendar import ClosedReason, WorkingCalendar
from backend.tenants.schemas import ServiceInterval

BERLIN = ZoneInfo("Europe/Berlin")  # service numbers' validity days are Berlin days
MEMO_SIZE = 50_000


class NumberEntry(msgspec.Struct, frozen=True, array_like=True):
    tenant_id: UUID
    id: UUID
    number: str
    kind: NumberKind
    purpose: Purpose
    department_id: UUID | None
    greeting: str | None
    window: RoutingWindow
    valid_from: date
    valid_until: date | None  # exclusive; None: open-ended
    answer_on_closing_days: bool = False  # last: tables cached before it decode with the default

    def valid_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_until is None or day < self.valid_until)


class WeeklySpan(msgspec.Struct, frozen=True, array_like=True):
    weekday: int
    starts: time
    ends: time


class DatedSpan(msgspec.Struct, frozen=True, array_like=True):
    starts: datetime
    ends: datetime


class AgreementSpan(msgspec.Struct, frozen=True, array_like=True):
    """An agreement under which the tenant is a client of `operator`: its days, last one inclusive."""

    operator: UUID
    starts: date
    ends: date | None


class TenantEntry(msgspec.Struct, frozen=True):
    id: UUID
    slug: str
    name: str
    is_operator: bool
    federal_state: str
    time_zone: str
    service_hours: list[ServiceInterval]
    closing_days: dict[date, str]
    departments: list[DepartmentRef]
    absence_weekly: list[WeeklySpan]
    absence_dated: list[DatedSpan]
    agreements: list[AgreementSpan] = msgspec.field(default_factory=list)

    def ref(self) -> TenantRef:
        return TenantRef(id=self.id, slug=self.slug, name=self.name)

    def operator_absent(self, at: datetime, local: datetime) -> bool:
        if any(span.starts <= at < span.ends for span in self.absence_dated):
            return True
        weekday, clock = local.isoweekday(), local.time().replace(tzinfo=None)
        return any(s.weekday == weekday and s.starts <= clock < s.ends for s in self.absence_weekly)

    def lapsed(self, day: date) -> tuple[RoutingReason, AgreementSpan] | None:
        """Why the centre does not serve this client on `day`: its agreements (it has some) are
        all over, or none has started yet. None: an agreement is in force, or the tenant is an
        operator, or it never had one (then only its own staff reach its numbers)."""
        if self.is_operator or not self.agreements:
            return None
        if any(a.starts <= day and (a.ends is None or day <= a.ends) for a in self.agreements):
            return None
        ended = [a for a in self.agreements if a.ends is not None and a.ends < day]
        if ended:
            return RoutingReason.AGREEMENT_ENDED, max(ended, key=lambda a: a.starts)
        return RoutingReason.AGREEMENT_NOT_STARTED, min(self.agreements, key=lambda a: a.starts)


class AreaEntry(msgspec.Struct, frozen=True, array_like=True):
    ags: str
    municipality: str
    client_tenant_id: UUID | None


class RoutingTable(msgspec.Struct):
    compiled_at: float  # epoch seconds, to bound the age of a cached copy
    numbers: dict[str, list[NumberEntry]] = msgspec.field(default_factory=dict)
    tenants: dict[UUID, TenantEntry] = msgspec.field(default_factory=dict)
    # operator tenant id → area code (E.164 prefix) → municipalities
    area_codes: dict[UUID, dict[str, list[AreaEntry]]] = msgspec.field(default_factory=dict)


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(RoutingTable)


def encode_table(table: RoutingTable) -> bytes:
    return _ENCODER.encode(table)


def decode_table(blob: bytes) -> RoutingTable:
    return _DECODER.decode(blob)


def _clock(value: str) -> time:
    return time.fromisoformat(value)


def _instant(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def compile_table(
    numbers: Iterable[Any],
    tenants: Iterable[Any],
    area_codes: Iterable[Any],
    compiled_at: float,
) -> RoutingTable:
    """Rows of `routing_numbers`, `routing_tenants` and `routing_area_codes` → a table."""
    table = RoutingTable(compiled_at=compiled_at)
    for row in numbers:
        entry = NumberEntry(
            tenant_id=row["tenant_id"],
            id=row["id"],
            number=row["number"],
            kind=NumberKind(row["kind"]),
            purpose=Purpose(row["purpose"]),
            department_id=row["department_id"],
            greeting=row["greeting"],
            window=RoutingWindow(row["routing_window"]),
            valid_from=row["valid_from"],
            valid_until=row["valid_until"],
            answer_on_closing_days=row.get("answer_on_closing_days", False),
        )
        table.numbers.setdefault(entry.number, []).append(entry)
    for row in tenants:
        table.tenants[row["id"]] = TenantEntry(
            id=row["id"],
            slug=row["slug"],
            name=row["name"],
            is_operator=row["is_operator"],
            federal_state=row["federal_state"],
            time_zone=row["time_zone"],
            service_hours=msgspec.convert(row["service_hours"], list[ServiceInterval]),
            closing_days={date.fromisoformat(c["day"]): c["name"] for c in row["closing_days"]},
            departments=[
                DepartmentRef(id=UUID(d["id"]), name=d["name"], phone=d.get("phone"), email=d.get("email"))
                for d in row["departments"]
            ],
            absence_weekly=[
                WeeklySpan(weekday=w["weekday"], starts=_clock(w["starts"]), ends=_clock(w["ends"]))
                for w in row["absence_weekly"]
            ],
            absence_dated=[
                DatedSpan(starts=_instant(a["starts"]), ends=_instant(a["ends"])) for a in row["absence_dated"]
            ],
            agreements=[
                AgreementSpan(
                    operator=UUID(a["operator"]),
                    starts=date.fromisoformat(a["starts"]),
                    ends=date.fromisoformat(a["ends"]) if a["ends"] else None,
                )
                for a in row.get("agreements", ())
            ],
        )
    for row in area_codes:
        by_code = table.area_codes.setdefault(row["tenant_id"], {})
        by_code.setdefault(row["area_code"], []).append(
            AreaEntry(
                ags=row["ags"],
                municipality=row["municipality"],
                client_tenant_id=row["client_tenant_id"],
            )
        )
    return table


@dataclass
class CompiledRouting:
    """A routing table plus what is derived from it once: each tenant's working calendar."""

    table: RoutingTable
    _calendars: dict[UUID, WorkingCalendar] = field(default_factory=dict)
    # Decisions by (dialled, caller, UTC minute, tenants): every boundary a decision depends on
    # (service hours, weekly and dated absences, days, DST changes) falls on a whole minute.
    # Least recently used go first when full (a full memo that emptied itself made every caller
    # of that moment recompute at once); past minutes age out on their own.
    _decisions: LRUCache[tuple[str, str | None, int, frozenset[UUID]], RoutingDecision] = field(
        default_factory=lambda: LRUCache(maxsize=MEMO_SIZE)
    )

    def calendar(self, tenant: TenantEntry) -> WorkingCalendar:
        calendar = self._calendars.get(tenant.id)
        if calendar is None:
            calendar = WorkingCalendar(
                federal_state=tenant.federal_state,
                time_zone=tenant.time_zone,
                service_hours=tuple(tenant.service_hours),
                closing_days=dict(tenant.closing_days),
            )
            self._calendars[tenant.id] = calendar
        return calendar

    def match(self, dialled: str, day: date) -> NumberEntry | None:
        """Most specific first: the full number, then the longest block prefix."""
        numbers = self.table.numbers
        for entry in numbers.get(dialled, ()):
            if entry.kind is NumberKind.NUMBER and entry.valid_on(day):
                return entry
        for length in range(len(dialled), 2, -1):
            for entry in numbers.get(dialled[:length], ()):
                if entry.kind is NumberKind.BLOCK and entry.valid_on(day):
                    return entry
        return None

    def owner_of(self, dialled: str, at: datetime, acting: frozenset[UUID]) -> tuple[NumberEntry, TenantEntry] | None:
        entry = self.match(dialled, at.astimezone(BERLIN).date())
        if entry is None or entry.tenant_id not in acting:
            return None
        tenant = self.table.tenants.get(entry.tenant_id)
        return (entry, tenant) if tenant is not None else None

    def lapsed_owner(
        self, dialled: str, at: datetime, acting: frozenset[UUID]
    ) -> tuple[NumberEntry, TenantEntry, RoutingReason, AgreementSpan] | None:
        """The number's owner when it is a client of one of `acting`'s operators (or one of
        `acting` itself) without an agreement in force at `at`: the centre does not serve it."""
        day = at.astimezone(BERLIN).date()
        entry = self.match(dialled, day)
        tenant = self.table.tenants.get(entry.tenant_id) if entry is not None else None
        if entry is None or tenant is None:
            return None
        lapsed = tenant.lapsed(day)
        if lapsed is None:
            return None
        reason, agreement = lapsed
        if tenant.id not in acting and agreement.operator not in acting:
            return None
        return entry, tenant, reason, agreement

    def resolve_115(
        self, operator: TenantEntry, caller: str | None, acting: frozenset[UUID]
    ) -> tuple[ResolvedBy, list[tuple[TenantEntry, AreaEntry | None]]]:
        """Which town a 115 call is for, by the caller's area code; the operator otherwise."""
        fallback: tuple[ResolvedBy, list[tuple[TenantEntry, AreaEntry | None]]] = (
            ResolvedBy.OPERATOR_FALLBACK,
            [(operator, None)],
        )
        if caller is None or not is_domestic(caller):
            return fallback
        codes = self.table.area_codes.get(operator.id, {})
        entries: list[AreaEntry] = []
        for length in range(len(caller) - 1, 3, -1):
            entries = codes.get(caller[:length], [])
            if entries:
                break
        if not entries:
            return fallback
        found: list[tuple[TenantEntry, AreaEntry | None]] = []
        for area in sorted(entries, key=lambda a: a.municipality):
            tenant = operator
            if area.client_tenant_id and area.client_tenant_id in acting:
                tenant = self.table.tenants.get(area.client_tenant_id, operator)
            found.append((tenant, area))
        if len({t.id for t, _ in found}) == 1:
            return ResolvedBy.CALLER_AREA_CODE, found[:1]
        return ResolvedBy.AMBIGUOUS_AREA_CODE, found

    def window(
        self, owner: TenantEntry, window: RoutingWindow, at: datetime, answer_on_closing_days: bool = False
    ) -> tuple[bool, RoutingReason, str | None]:
        calendar = self.calendar(owner)
        local = calendar.local(at)
        closed = calendar.day_closed_reason(local.date())
        if closed is not None:
            holiday = closed.reason is ClosedReason.PUBLIC_HOLIDAY
            if not holiday and answer_on_closing_days:
                # The town hall is shut, the centre answers for it: in its usual hours (the
                # weekday's service hours) or always, whatever the town's operator does.
                usual = window is RoutingWindow.ALWAYS or calendar.within_weekly_hours(at)
                if usual:
                    return True, RoutingReason.CLOSING_DAY_ANSWERED, closed.detail
                return False, RoutingReason.OUTSIDE_SERVICE_HOURS, None
            reason = RoutingReason.PUBLIC_HOLIDAY if holiday else RoutingReason.CLOSING_DAY
            return False, reason, closed.detail
        if window is RoutingWindow.ALWAYS:
            return True, RoutingReason.ALWAYS_OPEN, None
        if not calendar.openness(at).open:
            return False, RoutingReason.OUTSIDE_SERVICE_HOURS, None
        if window is RoutingWindow.SERVICE_HOURS:
            return True, RoutingReason.WITHIN_SERVICE_HOURS, None
        if owner.operator_absent(at, local):
            return True, RoutingReason.OPERATOR_ABSENT, None
        return False, RoutingReason.OPERATOR_PRESENT, None

    def decide(self, dialled: str, caller: str | None, at: datetime, acting: frozenset[UUID]) -> RoutingDecision:
        key = (dialled, caller, int(at.timestamp() // 60), acting)
        decision = self._decisions.get(key)
        if decision is None:
            decision = self._decisions[key] = self._decide(dialled, caller, at, acting)
        return decision if decision.at == at else msgspec.structs.replace(decision, at=at)

    def _decide(self, dialled: str, caller: str | None, at: datetime, acting: frozenset[UUID]) -> RoutingDecision:
        lapsed = self.lapsed_owner(dialled, at, acting)
        if lapsed is not None:
            entry, owner, reason, agreement = lapsed
            last = agreement.ends if reason is RoutingReason.AGREEMENT_ENDED else agreement.starts
            return RoutingDecision(
                dialled=dialled,
                at=at,
                ours=False,
                resolved_by=ResolvedBy.NOT_OURS,
                takes_call=False,
                reason=reason,
                reason_detail=last.isoformat() if last else None,
                tenant=owner.ref(),
            )
        owned = self.owner_of(dialled, at, acting)
        if owned is None:
            return RoutingDecision(
                dialled=dialled,
                at=at,
                ours=False,
                resolved_by=ResolvedBy.NOT_OURS,
                takes_call=False,
                reason=RoutingReason.NOT_OURS,
            )
        entry, owner = owned
        takes, reason, detail = self.window(owner, entry.window, at, entry.answer_on_closing_days)
        matched = MatchedNumber(
            id=entry.id,
            number=entry.number,
            kind=entry.kind,
            purpose=entry.purpose,
            routing_window=entry.window,
            valid_from=entry.valid_from,
            valid_to=date.fromordinal(entry.valid_until.toordinal() - 1) if entry.valid_until else None,
        )
        resolved_by = ResolvedBy.DIALLED_NUMBER
        resolved: list[tuple[TenantEntry, AreaEntry | None]] = [(owner, None)]
        if entry.purpose is Purpose.ONE_ONE_FIVE:
            resolved_by, resolved = self.resolve_115(owner, caller, acting)
        decision = RoutingDecision(
            dialled=dialled,
            at=at,
            ours=True,
            resolved_by=resolved_by,
            takes_call=takes,
            reason=reason,
            reason_detail=detail,
            service_number=matched,
        )
        if resolved_by is ResolvedBy.AMBIGUOUS_AREA_CODE:
            candidates = [Candidate(tenant=t.ref(), municipality=a.municipality, ags=a.ags) for t, a in resolved if a]
            return msgspec.structs.replace(decision, candidates=candidates, greeting=entry.greeting or owner.name)
        tenant = resolved[0][0]
        department = None
        if entry.department_id is not None:
            department = next((d for d in tenant.departments if d.id == entry.department_id), None)
        greeting = entry.greeting or (f"{tenant.name}, {department.name}" if department else tenant.name)
        return msgspec.structs.replace(
            decision,
            tenant=tenant.ref(),
            greeting=greeting,
            department=department,
            departments=list(tenant.departments),
            service_hours=list(tenant.service_hours),
        )

    def tenant_of_call(
        self, dialled: str, caller: str | None, at: datetime, acting: frozenset[UUID]
    ) -> tuple[NumberEntry, UUID, ResolvedBy] | None:
        """The tenant a call belongs to, from the dialled number at its start (115: the caller's
        area; when that leaves a choice, the number's owner until an agent reassigns it)."""
        lapsed = self.lapsed_owner(dialled, at, acting)
        if lapsed is not None:
            # Not a client's call any more: the centre's own (its operator's), never rated as the town's.
            entry, _, _, agreement = lapsed
            if agreement.operator not in acting:
                return None
            return entry, agreement.operator, ResolvedBy.AGREEMENT_ENDED
        owned = self.owner_of(dialled, at, acting)
        if owned is None:
            return None
        entry, owner = owned
        if entry.purpose is not Purpose.ONE_ONE_FIVE:
            return entry, owner.id, ResolvedBy.DIALLED_NUMBER
        resolved_by, resolved = self.resolve_115(owner, caller, acting)
        tenant = owner if resolved_by is ResolvedBy.AMBIGUOUS_AREA_CODE else resolved[0][0]
        return entry, tenant.id, resolved_by
