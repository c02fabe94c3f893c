"""The centre now, pushed: one hub per app instance listens to the call events and the centre's
own changes on Redis (so an event posted to any instance reaches subscribers on every one) and
recomputes the view once per group of subscribers watching the same tenants, then hands the
result to each of them. Twenty wallboards of the operator cost one computation per event, not
twenty. Bursts coalesce: while a computation runs, further events only mark the view stale, and
the next computation takes them all. Every 30 s the view is recomputed anyway, so waits grow
and callbacks fall due on screen without an event."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from uuid import UUID

import msgspec
import structlog
from redis.asyncio import Redis

from auth.principal import Principal
from backend.centre import events, service
from backend.centre.schemas import CentreNow
from backend.state import AppState, unit_of_work
from backend.telephony import events as call_events

log = structlog.get_logger("centre.live")
REFRESH_SECONDS = 30.0


class _CallTenant(msgspec.Struct, rename="camel"):  # as `Call` is encoded
    tenant_id: UUID


class _CallEvent(msgspec.Struct):
    """The part of a telephony call event the hub needs (msgspec skips the rest unread)."""

    kind: str
    call: _CallTenant


_CALL_EVENT = msgspec.json.Decoder(_CallEvent)


@dataclass(eq=False)
class _Watcher:
    principal: Principal
    tenant_ids: frozenset[UUID]
    latest: asyncio.Queue[CentreNow] = field(default_factory=lambda: asyncio.Queue(maxsize=1))

    def offer(self, now: CentreNow) -> None:
        """Only the newest view matters: a subscriber that has not taken the last one gets this instead."""
        with contextlib.suppress(asyncio.QueueEmpty):
            self.latest.get_nowait()
        self.latest.put_nowait(now)


@dataclass(eq=False)
class _Hub:
    watchers: set[_Watcher] = field(default_factory=set)
    stale: set[UUID] = field(default_factory=set)
    all_stale: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    listening: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


# One hub per app instance (keyed by its Redis client, which lives as long as it).
_HUBS: weakref.WeakKeyDictionary[Redis, _Hub] = weakref.WeakKeyDictionary()


def _hub(app: AppState) -> _Hub:
    hub = _HUBS.get(app.redis)
    if hub is None:
        hub = _HUBS[app.redis] = _Hub()
    return hub


async def watch(app: AppState, principal: Principal, tenant_ids: frozenset[UUID]) -> AsyncGenerator[CentreNow, None]:
    """The centre now for `tenant_ids` at once, then after every change, until the subscriber goes."""
    hub = _hub(app)
    watcher = _Watcher(principal, tenant_ids)
    hub.watchers.add(watcher)
    if hub.task is None or hub.task.done():
        hub.listening.clear()
        hub.task = asyncio.create_task(_run(app, hub))
    try:
        await asyncio.wait_for(hub.listening.wait(), 10)  # listening before the first view: nothing is missed
        async with unit_of_work(app, principal, readonly=True) as uow:
            first = await service.snapshot(uow, tenant_ids)
        yield first
        while True:
            yield await watcher.latest.get()
    finally:
        hub.watchers.discard(watcher)
        if not hub.watchers and hub.task is not None:
            hub.task.cancel()
            hub.task = None


def _mark(hub: _Hub, channel: bytes | str, data: bytes | str) -> None:
    if isinstance(channel, bytes):
        channel = channel.decode()
    try:
        if channel.startswith("centre:"):
            hub.stale.add(UUID(data.decode() if isinstance(data, bytes) else data))
        else:
            event = _CALL_EVENT.decode(data)
            if event.kind == "updated":  # a 115 call may have moved between towns
                hub.all_stale = True
            hub.stale.add(event.call.tenant_id)
    except (ValueError, msgspec.DecodeError):
        return
    hub.wake.set()


async def _listen(app: AppState, hub: _Hub) -> None:
    pubsub = app.redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(call_events.channel(app), events.channel(app))
    hub.listening.set()
    try:
        async for message in pubsub.listen():
            if message.get("type") == "message":
                _mark(hub, message["channel"], message["data"])
    finally:
        with contextlib.suppress(Exception):  # Redis may be gone already (shutdown, outage)
            await pubsub.unsubscribe()
            await pubsub.aclose()  # type: ignore[no-untyped-call]


async def _run(app: AppState, hub: _Hub) -> None:
    listener = asyncio.create_task(_listen(app, hub))
    try:
        while True:
            try:
                await asyncio.wait_for(hub.wake.wait(), REFRESH_SECONDS)
            except TimeoutError:
                hub.all_stale = True
            if listener.done():  # Redis went away: start over (the subscribers keep waiting)
                await asyncio.sleep(1)
                listener = asyncio.create_task(_listen(app, hub))
            hub.wake.clear()
            stale, everything = hub.stale, hub.all_stale
            hub.stale, hub.all_stale = set(), False
            await _refresh(app, hub, stale, everything)
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await listener


async def _refresh(app: AppState, hub: _Hub, stale: set[UUID], everything: bool) -> None:
    groups: dict[frozenset[UUID], list[_Watcher]] = {}
    for watcher in list(hub.watchers):
        if everything or watcher.tenant_ids & stale:
            groups.setdefault(watcher.tenant_ids, []).append(watcher)
    for tenant_ids, watchers in groups.items():
        try:
            async with unit_of_work(app, watchers[0].principal, readonly=True) as uow:
                now = await service.snapshot(uow, tenant_ids)
        except Exception:  # the database may be away for a moment; the next change or tick retries
            log.warning("centre_view_unavailable", exc_info=True)
            continue
        for watcher in watchers:
            watcher.offer(now)
