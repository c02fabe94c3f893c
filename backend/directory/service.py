"""The directory's rules: contact persons, responsibilities, department lines, presence, and the
forwarding decision (qualifizierte Vermittlung). Every public function starts at the tenant door.
Decision 023."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from uuid import UUID, uuid4

import msgspec

from auth.permissions import Operation
from auth.principal import Principal
from backend import clock
from backend.directory import compiled, presence_feed, repository
from backend.directory.presence import Sources, department_calendar, presence_of
from backend.directory.provisioning import (
    deprovision,
    fold_letters,
    in_surname_range,
    normalise_phone,
    responsibility_fields,
    save_person,
)
from backend.directory.schemas import (
    DepartmentLine,
    DepartmentLineInput,
    ForwardingDecision,
    ForwardingOption,
    OptionKind,
    Person,
    PersonInput,
    Presence,
    PresenceCause,
    PresenceEventInput,
    PresenceSwitchInput,
    Responsibility,
    ResponsibilityInput,
    SwitchState,
)
from backend.directory.speakable import (
    display_name,
    extension,
    presence_phrase,
    spoken_local_clock,
    spoken_name,
)
from backend.errors import NotFound, ValidationFailed, VersionConflict
from backend.generations import Generations
from backend.i18n import _l
from backend.state import AppState, UnitOfWork
from backend.telephony.schemas import Absences, DatedAbsenceInput, WeeklyAbsenceInput
from backend.tenants.calendar import WorkingCalendar, load_calendar
from backend.tenants.reach import reach, reach_home, reach_id, reachable
from backend.tenants.schemas import ServiceInterval, Tenant

# --- people -------------------------------------------------------------------------------


async def list_people(uow: UnitOfWork, tenant_slug: str) -> list[Person]:
    tenant = await reach(uow, tenant_slug, Operation.DIRECTORY_READ)
    return await repository.list_people(uow.conn, tenant.id)


async def person(uow: UnitOfWork, tenant_slug: str, person_id: UUID) -> Person:
    tenant = await reach(uow, tenant_slug, Operation.DIRECTORY_READ)
    return await repository.get_person(uow.conn, tenant.id, person_id)


async def create_person(uow: UnitOfWork, tenant_slug: str, data: PersonInput) -> Person:
    tenant = await reach(uow, tenant_slug, Operation.DIRECTORY_WRITE)
    return await save_person(uow, tenant.id, uuid4(), data, Operation.DIRECTORY_WRITE, new=True)


async def replace_person(uow: UnitOfWork, tenant_slug: str, person_id: UUID, data: PersonInput) -> Person:
    tenant = await reach(uow, tenant_slug, Operation.DIRECTORY_WRITE)
    # Locked before the version is compared: four saves of one version at once all passed the
    # check and the last overwrote the others (tests/knowledge/test_concurrent_edits.py).
    await repository.lock_person(uow.conn, tenant.id, person_id)
    current = await repository.get_person(uow.conn, tenant.id, person_id)
    if data.version is not None and data.version != current.version:
        raise VersionConflict(_l("the person was changed meanwhile; reload and try again"), field="version")
    return await save_person(uow, tenant.id, person_id, data, Operation.DIRECTORY_WRITE, new=False)


async def remove_person(uow: UnitOfWork, tenant_slug: str, person_id: UUID) -> None:
    tenant = await reach(uow, tenant_slug, Operation.DIRECTORY_WRITE)
    await deprovision(uow, tenant.id, person_id, Operation.DIRECTORY_WRITE, delete=True)


# --- responsibilities ---------------------------------------------------------------------


async def responsibilities(uow: UnitOfWork, tenant_slug: str, person_id: UUID | None = None) -> list[Responsibility]:
    tenant = await reach(uow, tenant_slug, Operation.DIRECTORY_READ)
    return await repository.list_responsibilities(uow.conn, tenant.id, person_id)


async def add_responsibility(uow: UnitOfWork, tenant_slug: str, data: ResponsibilityInput) -> Responsibility:
    tenant = await reach(uow, tenant_slug, Operation.DIRECTORY_WRITE)
    compiled.changed(uow)
    fields = responsibility_fields(data)
    if not await repository.existing_people(uow.conn, tenant.id, [data.person_id]):
        raise ValidationFailed(_l("no person with this id in the town's directory"), field="personId")
    return await repository.insert_responsibility(uow.conn, tenant.id, uuid4(), fields)


async def remove_responsibility(uow: UnitOfWork, tenant_slug: str, responsibility_id: UUID) -> None:
    tenant = await reach(uow, tenant_slug, Operation.DIRECTORY_WRITE)
    compiled.changed(uow)
    if not await repository.delete_responsibility(uow.conn, tenant.id, responsibility_id):
        raise NotFound(_l("responsibility not found"))


# --- department lines ---------------------------------------------------------------------


async def department_lines(uow: UnitOfWork, tenant_slug: str) -> list[DepartmentLine]:
    tenant = await reach(uow, tenant_slug, Operation.DIRECTORY_READ)
    return list((await repository.department_lines(uow.conn, tenant.id)).values())


async def set_department_line(
    uow: UnitOfWork, tenant_slug: str, department_id: UUID, data: DepartmentLineInput
) -> DepartmentLine:
    tenant = await reach(uow, tenant_slug, Operation.DIRECTORY_WRITE)
    compiled.changed(uow)
    hours = None
    if data.hours is not None:
        for interval in data.hours:
            if interval.opens >= interval.closes:
                raise ValidationFailed(_l("an interval opens before it closes"), field="hours")
        hours = [{"weekday": i.weekday, "opens": i.opens, "closes": i.closes} for i in data.hours]
    phone = normalise_phone(data.phone)
    return await repository.update_department_line(uow.conn, tenant.id, department_id, phone, hours)


async def import_department_hours(
    uow: UnitOfWork,
    tenant_id: UUID,
    department_id: UUID,
    phone: str | None,
    hours: Sequence[ServiceInterval | Any] | None,
) -> None:
    """A department's line and hours from an import (an XZuFi office), for the operator's
    platform admin acting for the town; a phone number that cannot be read is left out."""
    tenant = await reach_id(uow, tenant_id, Operation.DEPARTMENT_WRITE)
    try:
        number = normalise_phone(phone)
    except ValidationFailed:
        number = None
    wanted = [{"weekday": i.weekday, "opens": i.opens, "closes": i.closes} for i in hours] if hours else None
    await repository.update_department_line(uow.conn, tenant.id, department_id, number, wanted)


# --- presence -----------------------------------------------------------------------------


_calendar = department_calendar


async def _presences(
    uow: UnitOfWork,
    tenant: Tenant,
    people: Sequence[Person],
    lines: dict[UUID, DepartmentLine],
    calendar: WorkingCalendar,
    at: datetime,
) -> dict[UUID, Presence]:
    return await presence_feed.presences(uow.conn, tenant.id, people, lines, calendar, at)


def held_presences(
    town: compiled.Snapshot, live: compiled.Live, people: Sequence[Person], at: datetime
) -> dict[UUID, Presence]:
    """Presence from the compiled absences and the held switch and telephone rows: no round trip."""
    return {
        p.id: presence_of(
            p.id,
            Sources(
                phone=live.phone_at(p.id, at),
                switch=live.switch_at(p.id, at),
                dated=town.dated_at(p.id, at),
                weekly=town.weekly.get(p.id, ()),
            ),
            town.calendar_of(p.department_id),
            at,
        )
        for p in people
    }


async def presence(uow: UnitOfWork, tenant_slug: str, person_id: UUID, at: datetime | None = None) -> Presence:
    tenant = await reach(uow, tenant_slug, Operation.DIRECTORY_READ)
    at = at or clock.now()
    found = await repository.get_person(uow.conn, tenant.id, person_id)
    lines = await repository.department_lines(uow.conn, tenant.id)
    calendar = await load_calendar(uow.conn, tenant)
    return (await _presences(uow, tenant, [found], lines, calendar, at))[person_id]


async def set_my_presence(uow: UnitOfWork, data: PresenceSwitchInput, now: datetime | None = None) -> Presence:
    """The signed-in person sets their own switch (found in their town's directory by subject)."""
    home = await reach_home(uow, Operation.PRESENCE_SELF_WRITE)
    now = now or clock.now()
    me = await repository.find_person_by(uow.conn, home.id, "subject", uow.principal.subject)
    if me is None:
        raise NotFound(_l("you are not in your town's directory"))
    until = data.until
    if until is None:  # until the end of the local day: yesterday's "available" says nothing today
        local = now.astimezone(clock.BERLIN)
        until = datetime.combine(local.date() + timedelta(days=1), time(0, 0), clock.BERLIN)
    if until.tzinfo is None:
        raise ValidationFailed(_l("give the time with its offset"), field="until")
    if until <= now:
        raise ValidationFailed(_l("the moment lies in the past"), field="until")
    if data.state is not SwitchState.AVAILABLE and until - now > timedelta(days=60):
        raise ValidationFailed(_l("longer absences belong in the absence calendar"), field="until")
    await repository.lock_person(uow.conn, home.id, me.id)
    await repository.upsert_switch(uow.conn, home.id, me.id, data.state.value, until, now)
    compiled.presence_changed(uow)
    lines = await repository.department_lines(uow.conn, home.id)
    calendar = await load_calendar(uow.conn, home)
    answer = (await _presences(uow, home, [me], lines, calendar, now))[me.id]
    presence_feed.announce(uow, presence_feed.change_of(me, answer, lines, calendar, PresenceCause.SWITCH))
    return answer


async def record_presence_event(
    uow: UnitOfWork, tenant_slug: str, data: PresenceEventInput, now: datetime | None = None
) -> Presence:
    """The telephone system reports an extension's state; it expires after `expiresInSeconds`."""
    tenant = await reach(uow, tenant_slug, Operation.PRESENCE_EVENT_WRITE)
    at = data.at or now or clock.now()
    if at.tzinfo is None:
        raise ValidationFailed(_l("give the time with its offset"), field="at")
    number = normalise_phone(data.number, field="number")
    assert number is not None
    found = await repository.find_person_by(uow.conn, tenant.id, "phone", number)
    if found is None:
        raise NotFound(_l("no person of the town has this number"))
    await repository.lock_person(uow.conn, tenant.id, found.id)
    stored = await repository.upsert_phone_state(
        uow.conn, tenant.id, found.id, data.state.value, at, at + timedelta(seconds=data.expires_in_seconds)
    )
    if stored:  # a late event changed nothing: no bump, so its sender does not wait out the leases
        compiled.presence_changed(uow)
    lines = await repository.department_lines(uow.conn, tenant.id)
    calendar = await load_calendar(uow.conn, tenant)
    answer = (await _presences(uow, tenant, [found], lines, calendar, at))[found.id]
    if stored:  # a late event older than the stored one changed nothing: nothing to announce
        presence_feed.announce(uow, presence_feed.change_of(found, answer, lines, calendar, PresenceCause.PHONE))
    return answer


async def absences(uow: UnitOfWork, tenant_slug: str, person_id: UUID) -> Absences:
    tenant = await reach(uow, tenant_slug, Operation.DIRECTORY_READ)
    await repository.get_person(uow.conn, tenant.id, person_id)
    weekly, dated = await repository.list_person_absences(uow.conn, tenant.id, person_id)
    return Absences(weekly=weekly, dated=dated)


async def add_absence(
    uow: UnitOfWork, tenant_slug: str, person_id: UUID, data: WeeklyAbsenceInput | DatedAbsenceInput
) -> Absences:
    tenant = await reach(uow, tenant_slug, Operation.DIRECTORY_WRITE)
    compiled.changed(uow)
    await repository.get_person(uow.conn, tenant.id, person_id)
    await repository.lock_person(uow.conn, tenant.id, person_id)
    if isinstance(data, WeeklyAbsenceInput):
        starts, ends = time.fromisoformat(data.starts), time.fromisoformat(data.ends)
        if starts >= ends:
            raise ValidationFailed(_l("an absence starts before it ends"), field="ends")
        await repository.insert_person_weekly_absence(
            uow.conn, tenant.id, person_id, uuid4(), data.weekday, starts, ends, data.note
        )
    else:
        if data.starts_at.tzinfo is None or data.ends_at.tzinfo is None:
            raise ValidationFailed(_l("give the time with its offset"), field="startsAt")
        if data.starts_at >= data.ends_at:
            raise ValidationFailed(_l("an absence starts before it ends"), field="endsAt")
        await repository.insert_person_dated_absence(
            uow.conn, tenant.id, person_id, uuid4(), data.starts_at, data.ends_at, data.note
        )
    weekly, dated = await repository.list_person_absences(uow.conn, tenant.id, person_id)
    await _announce_now(uow, tenant, person_id)
    return Absences(weekly=weekly, dated=dated)


async def remove_absence(uow: UnitOfWork, tenant_slug: str, person_id: UUID, absence_id: UUID) -> None:
    tenant = await reach(uow, tenant_slug, Operation.DIRECTORY_WRITE)
    compiled.changed(uow)
    await repository.lock_person(uow.conn, tenant.id, person_id)
    if not await repository.delete_person_absence(uow.conn, tenant.id, person_id, absence_id):
        raise NotFound(_l("absence not found"))
    await _announce_now(uow, tenant, person_id)


async def _announce_now(uow: UnitOfWork, tenant: Tenant, person_id: UUID) -> None:
    """The person's presence now, after a change of their calendar, for the subscribers (an
    absence next week changes nothing now; the message says so, which costs one message)."""
    person = await repository.get_person(uow.conn, tenant.id, person_id)
    if not person.active:
        return
    lines = await repository.department_lines(uow.conn, tenant.id)
    calendar = await load_calendar(uow.conn, tenant)
    answer = (await _presences(uow, tenant, [person], lines, calendar, clock.now()))[person_id]
    presence_feed.announce(uow, presence_feed.change_of(person, answer, lines, calendar, PresenceCause.ABSENCE))


async def presence_watch(uow: UnitOfWork, tenant_slug: str | None) -> frozenset[UUID]:
    """The towns whose presence changes this principal may watch: those whose directory they
    may read (the operator's agents and supervisors, the town's own people; partner systems
    get 403, another town 404)."""
    if tenant_slug is None:
        return reachable(uow, Operation.DIRECTORY_READ)
    return frozenset({(await reach(uow, tenant_slug, Operation.DIRECTORY_READ)).id})


# --- the forwarding decision --------------------------------------------------------------


def _responsible(entries: list[Responsibility], surname: str | None, area: str | None) -> list[Responsibility]:
    """The most specific entries for the citizen: the longest key prefix; of those the ones whose
    surname range holds the surname (without a surname: every range, in order); an area entry
    only for that area."""
    fitting = []
    for entry in entries:
        if entry.area is not None and area is not None and entry.area.casefold() != area.casefold():
            continue
        ranged = surname and entry.surname_from and entry.surname_to
        if ranged and not in_surname_range(surname or "", entry.surname_from or "", entry.surname_to or ""):
            continue
        fitting.append(entry)
    if not fitting:
        return []
    longest = max(len(e.leika_key or "") for e in fitting)
    fitting = [e for e in fitting if len(e.leika_key or "") == longest]
    if surname and any(e.surname_from for e in fitting):
        fitting = [e for e in fitting if e.surname_from]
    if area and any(e.area for e in fitting):
        fitting = [e for e in fitting if e.area]
    return sorted(fitting, key=lambda e: (e.surname_from or "", e.id))


async def forwarding_decision(
    app: AppState,
    principal: Principal,
    tenant_slug: str,
    leika_key: str | None,
    surname: str | None = None,
    at: datetime | None = None,
    area: str | None = None,
    read: Generations | None = None,
) -> ForwardingDecision:
    """`read`: the generations the request read at sign-in (the compiled directory's key). The
    hot path: the town, its people's presence and the callback rule are held in process
    (`compiled.town`, which is the door), so a decision in the steady state makes no database
    round trip and needs no unit of work (decision 039)."""
    held = compiled.town_held(app, principal, tenant_slug, read)
    town, live = held if held is not None else await compiled.town(app, principal, tenant_slug, read)
    return _decision(town, live, leika_key, surname, at, area)


async def forwarding_decision_within(
    uow: UnitOfWork,
    tenant_slug: str,
    leika_key: str | None,
    surname: str | None = None,
    at: datetime | None = None,
    area: str | None = None,
) -> ForwardingDecision:
    """The same decision for a request that already holds a unit of work (a message taken from
    it, decision 038): a town not held is read with the connection the request holds, never a
    second one of the pool."""
    tenant = await reach(uow, tenant_slug, Operation.FORWARDING_READ)
    held = await compiled.held(uow, tenant, Operation.FORWARDING_READ)
    return _decision(held.snapshot, held.live, leika_key, surname, at, area)


def _decision(
    town: compiled.Snapshot,
    live: compiled.Live,
    leika_key: str | None,
    surname: str | None,
    at: datetime | None,
    area: str | None,
) -> ForwardingDecision:
    tenant = town.tenant
    at = at or clock.now()
    if at.tzinfo is None:
        raise ValidationFailed(_l("give the time with its offset"), field="at")
    if leika_key is not None and not (leika_key.isascii() and leika_key.isdigit() and len(leika_key) <= 14):
        raise ValidationFailed(_l("a LeiKa key has up to 14 digits"), field="leikaKey")
    # A question already chosen for (`Snapshot.choices`) was checked when it was first asked.
    known = (leika_key, surname, area) in town.choices
    if surname is not None and not known and (len(surname) > 100 or not fold_letters(surname)):
        raise ValidationFailed(_l("not a surname"), field="surname")
    choice = _choice(town, leika_key, surname, area)
    answer = _answer(town, live, choice, (leika_key, surname, area), at)
    # The deadline moves with the moment (to the microsecond under `working_days_24h`): the
    # one part of the answer made per request.
    calendar = town.calendar
    local = calendar.local(at)
    due_at = town.callback.due_at(calendar, at, local)
    message = msgspec.structs.replace(
        answer.message,
        speakable=f"{answer.message.speakable}{spoken_local_clock(calendar.local(due_at), local)}.",
        callback_due_at=due_at,
    )
    if answer.heard is None:  # no option before the message can be taken: the agent hears it too
        speakable = f"{answer.spoken} {message.speakable}" if answer.spoken else message.speakable
    else:
        speakable = answer.heard
    return ForwardingDecision(
        tenant_id=tenant.id,
        at=at,
        leika_key=leika_key,
        surname=surname,
        options=[*answer.options, message],
        speakable=speakable,
    )


@dataclass(frozen=True, slots=True)
class _Answer:
    """A decision's answer but for its moment and deadline, the same for every moment in
    [since, until): the options before the message, and the message without its deadline
    (`speakable` the sentence up to "Rückruf bis ")."""

    snapshot: compiled.Snapshot
    since: datetime
    until: datetime
    options: tuple[ForwardingOption, ...]
    message: ForwardingOption
    spoken: str  # the options' sentences the agent hears before the message
    heard: str | None  # the whole summary when an option before the message can be taken


def _answer(
    town: compiled.Snapshot,
    live: compiled.Live,
    choice: _Choice,
    key: tuple[str | None, str | None, str | None],
    at: datetime,
) -> _Answer:
    """The answer remembered for `key`, if it holds at `at`; else made, and remembered for as
    long as it holds. Presence and hours were judged per decision (~60 µs of CPU in context,
    decision 040's floor); they change only at moments known in advance (`_answer_until`)."""
    known: _Answer | None = live.answers.used(key)
    if known is not None and known.snapshot is town and known.since <= at < known.until:
        return known
    presences = held_presences(town, live, [c[0] for c in choice.candidates], at)
    builder = _Options(town, presences, at)
    for person, kind, entry in choice.candidates:
        builder.person(person, kind, entry)
    if choice.line is not None:
        builder.department(choice.line)
    options = tuple(builder.options)
    builder.message(choice.first, choice.line, nobody=choice.first is None)
    spoken: list[str] = []
    heard: str | None = None
    for option in options:
        spoken.append(option.speakable)
        if option.available:
            heard = " ".join(spoken)
            break
    until = _answer_until(town, live, choice, at)
    made = _Answer(town, at, until or at, options, builder.options[-1], " ".join(spoken), heard)
    if until is not None:
        live.answers.keep(key, made)
    return made


def _answer_until(town: compiled.Snapshot, live: compiled.Live, choice: _Choice, at: datetime) -> datetime | None:
    """The first moment after `at` at which anything the answer says (but its deadline) may
    change: a switch or telephone event of a named person starting or running out, one of their
    dated absences starting or ending, a weekly absence of theirs or their department's hours
    (or the named line's) opening or closing today, or the local midnight (holidays, closing
    days, and "until 14:00" against "until Wednesday 14:00"). Moments that change nothing only
    shorten the span. None: not remembered — on a day whose UTC offset changes (daylight
    saving) local clock times are not one instant each, so that day every answer is made."""
    calendar = town.calendar
    zone = calendar.zone
    today = at.astimezone(zone).date()
    midnight = datetime.combine(today + timedelta(days=1), time(0), zone)
    if datetime.combine(today, time(0), zone).utcoffset() != midnight.utcoffset():
        return None
    moments = [midnight]
    calendars: dict[int, WorkingCalendar] = {}
    weekday = today.isoweekday()
    for person, _, _ in choice.candidates:
        for row in (live.phone.get(person.id), live.switch.get(person.id)):
            if row is not None:
                moments += (row["since"], row["until"])
        for dated in town.dated.get(person.id, ()):
            moments += (dated["starts_at"], dated["ends_at"])
        for weekly in town.weekly.get(person.id, ()):
            if weekly["weekday"] == weekday:
                moments += (
                    datetime.combine(today, weekly["starts"], zone),
                    datetime.combine(today, weekly["ends"], zone),
                )
        own = town.calendar_of(person.department_id)
        calendars[id(own)] = own
    if choice.line is not None:
        own = town.calendar_of(choice.line.department_id)
        calendars[id(own)] = own
    for each in calendars.values():
        if each.time_zone != calendar.time_zone:
            return None  # a department in another zone: its own days; not expected, not remembered
        for opens, closes in each.intervals_on(today):
            moments += (opens, closes)
    return min(m for m in moments if m > at)


@dataclass(frozen=True, slots=True)
class _Choice:
    """Who a decision names for a key, surname and area, from the snapshot alone (no moment)."""

    candidates: tuple[tuple[Person, OptionKind, Responsibility], ...]
    first: Person | None  # the first responsible person; None: nobody is responsible
    line: DepartmentLine | None  # the line of their department, else of the proposed one


# Choices remembered per snapshot (`Snapshot.choices`): one per key, surname and area asked;
# a surname is any text the caller gives, so the memo starts over when full.
_CHOICES_REMEMBERED = 1024


def _choice(town: compiled.Snapshot, leika_key: str | None, surname: str | None, area: str | None) -> _Choice:
    key = (leika_key, surname, area)
    known: _Choice | None = town.choices.get(key)
    if known is None:
        known = _choose(town, leika_key, surname, area)
        if len(town.choices) >= _CHOICES_REMEMBERED:
            town.choices.clear()
        town.choices[key] = known
    return known


def _choose(town: compiled.Snapshot, leika_key: str | None, surname: str | None, area: str | None) -> _Choice:
    by_id = town.people
    entries = town.responsible_for(leika_key) if leika_key else []
    chosen = [e for e in _responsible(entries, surname, area) if e.person_id in by_id]
    # The responsible people first (several when the agent has no surname yet for a split
    # service), then their substitutes in order; nobody twice.
    responsible = list({e.person_id: e for e in reversed(chosen)}.values())[::-1]
    candidates: list[tuple[Person, OptionKind, Responsibility]] = [
        (by_id[e.person_id], OptionKind.PERSON, e) for e in responsible
    ]
    seen = {e.person_id for e in responsible}
    for entry in responsible:
        for substitute_id in by_id[entry.person_id].substitute_ids:
            if substitute_id in by_id and substitute_id not in seen:
                seen.add(substitute_id)
                candidates.append((by_id[substitute_id], OptionKind.SUBSTITUTE, entry))
    first = by_id[chosen[0].person_id] if chosen else None
    department_id = first.department_id if first and first.department_id else town.callback.department_for(leika_key)
    line = town.lines.get(department_id) if department_id is not None else None
    return _Choice(tuple(candidates), first, line)


@dataclass(frozen=True, slots=True)
class _Texts:
    """A person's words in the sentences, from the snapshot alone (`Snapshot.texts`)."""

    spoken: str  # "Frau Müller"
    display: str  # "Anna Müller"
    label: str  # "Frau Müller, Bauordnung"
    line: DepartmentLine | None
    extension: str | None  # what to dial, digit by digit; None without a direct number


def _texts(town: compiled.Snapshot, person: Person) -> _Texts:
    known: _Texts | None = town.texts.get(person.id)
    if known is None:
        line = town.lines.get(person.department_id) if person.department_id else None
        spoken = spoken_name(person)
        what = person.function or (line.name if line else "")
        known = town.texts[person.id] = _Texts(
            spoken=spoken,
            display=display_name(person),
            label=f"{spoken}, {what}" if what else spoken,
            line=line,
            extension=extension(person.phone, line.phone if line else None) if person.phone is not None else None,
        )
    return known


def line_state(calendar: WorkingCalendar, line: DepartmentLine, at: datetime) -> tuple[bool, str]:
    """Whether a department's general line can take a call at `at`, and why (not); `calendar` is
    the line's own (`Snapshot.calendar_of`)."""
    if line.phone is None:
        return False, "the department has no general line"
    openness = calendar.openness(at)
    if not openness.open:
        return False, f"public holiday: {openness.detail}" if openness.detail else "outside the department's hours"
    return True, "the department's line is open"


class _Options:
    """The ordered options and their German sentences, built from presence and the calendar."""

    def __init__(self, town: compiled.Snapshot, presences: dict[UUID, Presence], at: datetime) -> None:
        self.town, self.calendar, self.lines, self.presences, self.at = town, town.calendar, town.lines, presences, at
        self.options: list[ForwardingOption] = []

    def _add(self, **fields: Any) -> None:
        self.options.append(ForwardingOption(rank=len(self.options) + 1, **fields))

    def person(self, person: Person, kind: OptionKind, entry: Responsibility) -> None:
        state = self.presences[person.id]
        texts = _texts(self.town, person)
        line = texts.line
        reason = state.reason
        available = state.reachable and person.phone is not None
        if state.reachable and person.phone is None:
            reason = "no direct number"
        label = texts.spoken if kind is OptionKind.SUBSTITUTE else texts.label
        prefix = "Vertretung: " if kind is OptionKind.SUBSTITUTE else ""
        if available:
            speakable = f"{prefix}{label}, Durchwahl {texts.extension}."
        elif state.reachable:
            speakable = f"{prefix}{label} hat keine Durchwahl."
        else:
            comma = "," if label != texts.spoken else ""  # "Frau Müller, Bauordnung, ist …"
            phrase = presence_phrase(state, self.town.calendar_of(person.department_id))
            speakable = f"{prefix}{label}{comma} {phrase}."
        if entry.surname_from and kind is OptionKind.PERSON:
            reason += f" (surnames {entry.surname_from}–{entry.surname_to})"
        self._add(
            kind=kind,
            available=available,
            person_id=person.id,
            person_name=texts.display,
            department_id=person.department_id,
            department_name=line.name if line else None,
            number=person.phone,
            reason=reason,
            speakable=speakable,
            callback_due_at=None,
        )

    def department(self, line: DepartmentLine) -> None:
        available, reason = line_state(self.town.calendar_of(line.department_id), line, self.at)
        if line.phone is None:
            speakable = f"Der Fachbereich {line.name} hat keine allgemeine Durchwahl."
        elif not available:
            speakable = f"Der Fachbereich {line.name} ist außerhalb seiner Dienstzeit."
        else:
            speakable = f"Fachbereich {line.name}, allgemeine Durchwahl {extension(line.phone, None)}."
        self._add(
            kind=OptionKind.DEPARTMENT,
            available=available,
            person_id=None,
            person_name=None,
            department_id=line.department_id,
            department_name=line.name,
            number=line.phone,
            reason=reason,
            speakable=speakable,
            callback_due_at=None,
        )

    def message(self, person: Person | None, line: DepartmentLine | None, *, nobody: bool) -> None:
        """The message without its deadline: `speakable` up to "Rückruf bis ", completed per
        decision (`_decision`)."""
        if person is not None:
            to, reason = _texts(self.town, person).spoken, "take a message for the responsible person"
        elif line is not None:
            to, reason = f"den Fachbereich {line.name}", "take a message for the department"
        else:
            to, reason = "die Verwaltung", "take a message"
        prefix = ""
        if nobody:
            reason = "no one responsible for this service; " + reason
            prefix = "Für diese Leistung ist niemand zuständig eingetragen. "
        self._add(
            kind=OptionKind.MESSAGE,
            available=True,
            person_id=person.id if person else None,
            person_name=_texts(self.town, person).display if person else None,
            department_id=(person.department_id if person else None) or (line.department_id if line else None),
            department_name=line.name if line else None,
            number=None,
            reason=reason,
            speakable=f"{prefix}Rückrufbitte an {to}, Rückruf bis ",
            callback_due_at=None,
        )
