"""The agreement governs the service (issue 17 §3): a town whose agreement has ended is refused
by routing with its own reason and its calls are no longer a client's (they are the centre's
own, never rated under the town's tariff); a new agreement resumes. Either party gives notice,
and the notice deadline shown belongs to the term end shown with it. A service number may
answer on the town's own closing days (Rosenmontag), public holidays stay closed."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest

from auth.principal import Principal
from auth.roles import Role, Scope
from backend.errors import NotFound
from backend.state import AppState, unit_of_work
from backend.telephony import calls
from backend.telephony import service as telephony
from backend.telephony.schemas import CallRecordInput, RoutingWindow, ServiceNumberCreate, ServiceNumberUpdate
from backend.tenants import service as tenants_service
from backend.tenants.schemas import (
    AgreementCreate,
    AgreementTermination,
    ClosingDay,
    NoticeParty,
    TenantKind,
    notice_deadline_before,
)
from tests.support.world import World, make_tenant, system_principal
from tests.telephony.helpers import unique_number

BERLIN = ZoneInfo("Europe/Berlin")


def at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=BERLIN)


class Centre:
    def __init__(self, state: AppState, operator: UUID, town: UUID, slug: str, number: str) -> None:
        self.state, self.operator, self.town, self.slug, self.number = state, operator, town, slug, number

    def telephony(self, *, with_town: bool) -> Principal:
        """The operator's telephone system; its acting set holds the town only while a client."""
        acting = {self.operator, self.town} if with_town else {self.operator}
        return Principal(
            issuer="test",
            subject="pbx",
            tenant_id=self.operator,
            tenant_slug="op",
            scopes=frozenset({Scope.ROUTING_READ, Scope.CALLS_WRITE}),
            acting_tenant_ids=frozenset(acting),
            client_id="pbx",
        )

    def town_admin(self) -> Principal:
        return Principal(
            issuer="test",
            subject="town-admin",
            tenant_id=self.town,
            tenant_slug=self.slug,
            roles=frozenset({Role.TOWN_ADMIN}),
            acting_tenant_ids=frozenset({self.town}),
        )

    def admin(self) -> Principal:
        return system_principal(self.operator, {self.operator, self.town})


async def make_centre(state: AppState, *, window: RoutingWindow = RoutingWindow.ALWAYS) -> Centre:
    suffix = uuid.uuid4().hex[:6]
    operator = await make_tenant(state, f"op-{suffix}", kind=TenantKind.DISTRICT, is_operator=True, ags="05974")
    town = await make_tenant(state, f"town-{suffix}", name=f"Stadt {suffix}", ags="05974020")
    centre = Centre(state, operator, town, f"town-{suffix}", unique_number())
    async with unit_of_work(state, centre.admin()) as uow:
        await tenants_service.create_agreement(uow, AgreementCreate(client_tenant_id=town, starts_on=date(2018, 1, 1)))
        await telephony.create_service_number(
            uow,
            ServiceNumberCreate(
                tenant_id=town, number=centre.number, valid_from=date(2016, 1, 1), routing_window=window
            ),
        )
    return centre


async def decide(centre: Centre, when: datetime, *, with_town: bool, number: str | None = None) -> object:
    return await telephony.routing_decision(
        centre.state, centre.telephony(with_town=with_town), number or centre.number, None, when
    )


async def test_an_ended_agreement_stops_routing_and_a_new_one_resumes(world: World) -> None:
    centre = await make_centre(world.state)
    before = await decide(centre, at(date(2026, 12, 30)), with_town=True)
    assert (before.takes_call, before.reason.value) == (True, "always_open")  # type: ignore[attr-defined]
    # The town's own admin gives notice on 1 March 2026: the agreement ends with the year.
    async with unit_of_work(world.state, centre.town_admin()) as uow:
        agreements = await tenants_service.list_agreements(uow, date(2026, 3, 1))
        ended = await tenants_service.terminate_agreement(
            uow, agreements[0].agreement.id, AgreementTermination(noticed_on=date(2026, 3, 1))
        )
    assert ended.agreement.ends_on == date(2026, 12, 31)
    assert (ended.agreement.noticed_on, ended.agreement.noticed_by_party) == (date(2026, 3, 1), NoticeParty.CLIENT)
    for with_town in (True, False):  # a platform admin still acts for the town; the telephone system no longer
        after = await decide(centre, at(date(2027, 1, 4)), with_town=with_town)
        assert (after.ours, after.takes_call, after.reason.value, after.reason_detail) == (  # type: ignore[attr-defined]
            False,
            False,
            "agreement_ended",
            "2026-12-31",
        )
        assert after.tenant.id == centre.town  # type: ignore[attr-defined]
    still = await decide(centre, at(date(2026, 12, 31)), with_town=True)
    assert still.takes_call is True  # type: ignore[attr-defined]
    # A call that reaches the centre anyway is the centre's own, not the town's (never rated as its).
    async with unit_of_work(world.state, centre.telephony(with_town=False)) as uow:
        call = await calls.record_call(
            uow,
            CallRecordInput(external_id=uuid.uuid4().hex, dialled=centre.number, offered_at=at(date(2027, 1, 4))),
        )
    assert (call.tenant_id, call.resolved_by.value) == (centre.operator, "agreement_ended")
    # A new agreement from March 2027 resumes the service.
    async with unit_of_work(world.state, centre.admin()) as uow:
        await tenants_service.create_agreement(
            uow, AgreementCreate(client_tenant_id=centre.town, starts_on=date(2027, 3, 1))
        )
    gap = await decide(centre, at(date(2027, 2, 26)), with_town=True)
    assert gap.reason.value == "agreement_ended"  # type: ignore[attr-defined]
    resumed = await decide(centre, at(date(2027, 3, 1)), with_town=True)
    assert (resumed.takes_call, resumed.reason.value) == (True, "always_open")  # type: ignore[attr-defined]


async def test_a_town_admin_gives_notice_only_for_its_own_town(world: World) -> None:
    centre, other = await make_centre(world.state), await make_centre(world.state)
    async with unit_of_work(world.state, other.admin(), readonly=True) as uow:
        foreign = (await tenants_service.list_agreements(uow))[0].agreement.id

    with pytest.raises(NotFound):
        async with unit_of_work(world.state, centre.town_admin()) as uow:
            await tenants_service.terminate_agreement(uow, foreign, AgreementTermination(noticed_on=date(2026, 3, 1)))
    async with unit_of_work(world.state, other.admin()) as uow:
        view = await tenants_service.terminate_agreement(
            uow, foreign, AgreementTermination(noticed_on=date(2026, 3, 1))
        )
    assert view.agreement.noticed_by_party is NoticeParty.OPERATOR


async def test_the_notice_deadline_belongs_to_the_term_end_shown_with_it(world: World) -> None:
    centre = await make_centre(world.state)
    async with unit_of_work(world.state, centre.admin(), readonly=True) as uow:
        early = (await tenants_service.list_agreements(uow, date(2026, 3, 1)))[0]
        late = (await tenants_service.list_agreements(uow, date(2026, 8, 1)))[0]
    # Before 30 June notice still reaches this year's end; after it, only next year's.
    assert (early.current_term_end, early.notice_term_end, early.notice_deadline) == (
        date(2026, 12, 31),
        date(2026, 12, 31),
        date(2026, 6, 30),
    )
    assert (late.current_term_end, late.notice_term_end, late.notice_deadline) == (
        date(2026, 12, 31),
        date(2027, 12, 31),
        date(2027, 6, 30),
    )
    assert late.notice_term_end is not None
    assert late.notice_deadline == notice_deadline_before(late.notice_term_end, 6)


async def test_a_number_may_answer_on_the_towns_closing_days(world: World) -> None:
    centre = await make_centre(world.state, window=RoutingWindow.SERVICE_HOURS)
    rosenmontag = date(2027, 2, 8)
    async with unit_of_work(world.state, centre.admin()) as uow:
        await tenants_service.set_closing_day(uow, centre.slug, ClosingDay(day=rosenmontag, name="Rosenmontag"))
    shut = await decide(centre, at(rosenmontag), with_town=True)
    assert (shut.takes_call, shut.reason.value, shut.reason_detail) == (False, "closing_day", "Rosenmontag")  # type: ignore[attr-defined]
    async with unit_of_work(world.state, centre.admin()) as uow:
        numbers = await telephony.list_service_numbers(uow, centre.slug, None)
        updated = await telephony.update_service_number(
            uow, numbers[0].id, ServiceNumberUpdate(answer_on_closing_days=True)
        )
    assert updated.answer_on_closing_days is True
    answered = await decide(centre, at(rosenmontag), with_town=True)
    assert (answered.takes_call, answered.reason.value, answered.reason_detail) == (  # type: ignore[attr-defined]
        True,
        "closing_day_answered",
        "Rosenmontag",
    )
    evening = await decide(centre, at(rosenmontag, 20), with_town=True)  # its usual hours still count
    assert (evening.takes_call, evening.reason.value) == (False, "outside_service_hours")  # type: ignore[attr-defined]
    holiday = await decide(centre, at(date(2027, 5, 27)), with_town=True)  # Fronleichnam: a public holiday
    assert (holiday.takes_call, holiday.reason.value) == (False, "public_holiday")  # type: ignore[attr-defined]
