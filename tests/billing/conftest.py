"""Fixtures for billing: a fresh operator with two client towns per test, and the XRechnung
validator (compiled once per session)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import pytest_asyncio

from tests.billing.support import Billing, make_billing
from tests.billing.xrechnung_check import RULES, Validator
from tests.support.world import World


@pytest_asyncio.fixture
async def billing(world: World) -> Billing:
    return await make_billing(world.state)


@pytest.fixture(scope="session")
def validator() -> Iterator[Validator]:
    assert RULES.exists(), f"the KoSIT rules are missing: {RULES}"
    return Validator()
