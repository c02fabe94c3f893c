"""The centre now, as a supervisor's screen and the operator's wallboard show it."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated
from uuid import UUID

import msgspec

from backend.structs import Input, Schema


class AgentStatus(StrEnum):
    AVAILABLE = "available"
    WRAP_UP = "wrap_up"
    AWAY = "away"
    SIGNED_OUT = "signed_out"


AgentId = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=100,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="The agent's id as the telephone system reports it on call events",
    ),
]


class AgentStatusInput(Input, frozen=True):
    agent: AgentId
    status: AgentStatus


class AgentStatusView(Schema, frozen=True):
    tenant_id: UUID
    agent: str
    status: AgentStatus
    since: datetime


class CentreTown(Schema, frozen=True):
    """One tenant's part of the centre now; shares are of today so far (its local day)."""

    tenant_id: UUID
    tenant_name: str
    waiting: int
    longest_wait_seconds: int  # 0 when nobody waits
    oldest_waiting_since: datetime | None
    offered_today: int
    service_level: Decimal | None
    service_level_target: Decimal
    first_contact_rate: Decimal | None
    first_contact_target: Decimal
    callbacks_due_next_hour: int
    callbacks_overdue: int


class CentreNow(Schema, frozen=True):
    """Calls waiting and the longest wait, agents talking / available / in wrap-up, today's
    service level and first-contact rate so far, callbacks due in the next hour and overdue:
    in total and per town."""

    at: datetime
    waiting: int
    longest_wait_seconds: int
    agents_talking: int
    agents_available: int
    agents_in_wrap_up: int
    agents_away: int
    service_level: Decimal | None
    first_contact_rate: Decimal | None
    callbacks_due_next_hour: int
    callbacks_overdue: int
    towns: list[CentreTown]
