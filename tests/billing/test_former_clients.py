"""Settling with a town after its agreement ended.

The operator's finance still invoices the last month, cancels old invoices by credit notes and
divides the year's costs by every client's minutes, also after a client left; nothing else
reaches that town any more (not its calls, tickets or figures, not for finance either). The
tenants come from the sign-in registry itself."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from auth.oidc import IssuerBinding
from auth.permissions import Operation, reachable_tenants
from auth.principal import Principal
from auth.roles import Role
from backend.billing import invoices, rates
from backend.billing.schemas import CostBaseInput
from backend.state import unit_of_work
from backend.tenants import service as tenants_service
from backend.tenants.schemas import AgreementTermination
from backend.tenants.signin import DatabaseIssuerRegistry
from tests.billing.support import add_calls, make_billing, talks
from tests.support.world import World, system_principal

pytestmark = pytest.mark.clock  # a former client is one whose agreement ended before today


async def test_finance_settles_with_a_town_whose_agreement_ended(world: World) -> None:
    billing = await make_billing(world.state, towns=("soest", "welver"))
    soest, welver = billing.clients["soest"], billing.clients["welver"]
    admin = system_principal(billing.operator, {billing.operator, soest, welver})
    async with unit_of_work(world.state, admin) as uow:
        ended = await tenants_service.terminate_agreement(
            uow, billing.agreements["welver"], AgreementTermination(noticed_on=date(2024, 5, 1))
        )
    assert ended.agreement.ends_on == date(2024, 12, 31)
    await billing.add_tariff("soest", date(2024, 1, 1), "0.95")
    await billing.add_tariff("welver", date(2024, 1, 1), "0.95", valid_to=date(2024, 12, 31))
    await add_calls(world.state.pool, soest, billing.operator, talks(date(2024, 3, 4), 600))
    await add_calls(world.state.pool, welver, billing.operator, talks(date(2024, 12, 30), 1200))

    registry = DatabaseIssuerRegistry(world.state.pool)
    binding = IssuerBinding(tenant_id=billing.operator, tenant_slug="op", issuer="i", audience="a", operator=True)
    finance_roles = frozenset({Role.FINANCE, Role.SUPERVISOR})
    acting = await registry.acting_tenants(binding, finance_roles, frozenset(), None)
    settled = await registry.settled_tenants(binding, finance_roles, None)
    assert acting == {billing.operator, soest}  # the service centre's work for Welver ended with it
    assert settled == {soest, welver}
    assert await registry.settled_tenants(binding, frozenset({Role.SUPERVISOR}), None) == set()

    finance = Principal(
        issuer="i",
        subject="finance",
        tenant_id=billing.operator,
        tenant_slug="op",
        roles=finance_roles,
        acting_tenant_ids=acting,
        settled_tenant_ids=settled,
    )
    # Invoices and tariffs reach Welver; calls, tickets and figures (personal data) do not.
    assert welver in reachable_tenants(finance, Operation.INVOICE_WRITE)
    for operation in (Operation.CALL_READ, Operation.TICKET_PERSONAL_READ, Operation.FIGURES_READ):
        assert welver not in reachable_tenants(finance, operation), operation
    async with unit_of_work(world.state, finance) as uow:
        last_month = await invoices.run_invoice(uow, welver, "2024-12")
        assert [(line.calls, line.amount) for line in last_month.lines] == [(1, Decimal("19.00"))]
        await rates.record_cost_base(
            uow, CostBaseInput(year=2024, staff=Decimal("30.00"), it=Decimal(0), overheads=Decimal(0))
        )
        proposal = await rates.rate_proposal(uow, 2024)
    # 30 EUR over both towns' 30 minutes: 1.00 EUR/min (without Welver's 20 it would be 3.00).
    assert {c.tenant_id: c.billable_minutes for c in proposal.clients} == {soest: 10, welver: 20}
    assert proposal.proposed_rate == Decimal("1.00")
