"""Personal data a response discloses, noted while the response is built.

The idempotency layer keeps a request's answer for retries (backend/http/idempotency.py). An
answer can hold a citizen's data (a ticket's contact, a comment, a callback note): the layer
then stores which tickets' data it held (ids only, next to the sealed body), audits a replay
like a read, refuses it once that data has been erased, and the retention purge finds the
records by ticket (`index_key`). Domain code notes what it discloses through `note`; outside
a collecting request it costs one context-variable read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import NamedTuple
from uuid import UUID


class Disclosure(NamedTuple):
    tenant_id: UUID
    ticket_id: UUID
    what: str  # backend.tickets.schemas.AuditWhat's value


_noted: ContextVar[list[Disclosure] | None] = ContextVar("disclosures", default=None)


@contextmanager
def collecting() -> Iterator[list[Disclosure]]:
    """Within this block `note` appends here (also from tasks started inside it: they copy
    the context, and with it this very list)."""
    noted: list[Disclosure] = []
    token = _noted.set(noted)
    try:
        yield noted
    finally:
        _noted.reset(token)


def note(disclosures: Iterable[Disclosure]) -> None:
    noted = _noted.get()
    if noted is not None:
        noted.extend(disclosures)


def index_key(ticket_id: UUID) -> str:
    """Redis set of the idempotency records holding this ticket's data (ids are unique across
    deployments sharing a Redis, so no namespace is needed)."""
    return f"idem:pd:{ticket_id}"
