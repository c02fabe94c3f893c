"""The PVOG-style paged transfer (decision 024): the operator's settings, and one run.

A run signs in with OAuth2 client credentials, then fetches pages from where the last run
stopped (`naechsteAnfrageUrl`, persisted as the cursor). A page is a JSON envelope:

    {"xzufiObjekte": "<xzufi.transfer …><schreibe><leistung>…</leistung></schreibe><loesche klasse=…>…",
     "vollstaendig": false, "naechsterIndex": 42, "naechsteAnfrageUrl": "https://…?index=42"}

as PVOG serves it, or with `xzufiObjekte` a list of entries (`{"schreibe": "<xml>"}`,
`{"loesche": {"typ": "leistung", "id": "…"}}`), as our first transfer server did.

Each page is applied and its cursor saved in one transaction, so a run that breaks off resumes
at the first page not taken. HTTP happens outside any transaction (decision 013), through the
outbound policy (decision 014); a next-page URL on another origin than the configured one is
refused, so a transfer server cannot send our token elsewhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import httpx
import msgspec

from auth.permissions import Operation
from backend import clock
from backend.errors import Conflict, NotFound, ValidationFailed
from backend.i18n import _l
from backend.knowledge import xzufi, xzufi_import
from backend.knowledge import xzufi_repository as store
from backend.knowledge.xzufi_schemas import TransferSettings, TransferSettingsInput, XzufiProblem, XzufiReport
from backend.state import UnitOfWork
from backend.tenants import reach

MAX_PAGES_PER_RUN = 200
# A run holds its transfer while it works (renewed with each page): another run, the worker's or
# the run button's, is refused meanwhile. A page is fetched within 30 s and applied in far less
# than this; a run whose instance died is taken over after it.
RUN_HELD = timedelta(minutes=30)
MAX_PAGE_BYTES = 32 * 1024 * 1024
MAX_OBJECTS_PER_PAGE = 5000
_DECLARATION = re.compile(r"^\ufeff?\s*<\?xml[^>]*\?>")


class TransferFailed(Exception):
    """The transfer server could not be used this time; the cursor stays where it was."""


def _context(tenant_id: UUID) -> str:
    return f"xzufi-transfer:{tenant_id}"


def _settings(row: Any) -> TransferSettings:
    report = msgspec.convert(row["last_report"], XzufiReport) if row["last_report"] else None
    return TransferSettings(
        url=row["url"],
        token_url=row["token_url"],
        client_id=row["client_id"],
        scope=row["scope"],
        interval_minutes=row["interval_minutes"],
        enabled=row["enabled"],
        cursor_url=row["cursor_url"],
        next_index=row["next_index"],
        next_run_at=row["next_run_at"],
        last_run_at=row["last_run_at"],
        last_outcome=row["last_outcome"],
        last_report=report,
        version=row["version"],
    )


async def transfer_settings(uow: UnitOfWork) -> TransferSettings:
    home = await reach.reach_home(uow, Operation.XZUFI_IMPORT, operator=True)
    row = await store.find_transfer(uow.conn, home.id)
    if row is None:
        raise NotFound(_l("no XZuFi transfer is set up"))
    return _settings(row)


async def set_transfer(uow: UnitOfWork, data: TransferSettingsInput) -> TransferSettings:
    """The operator's transfer: where, how to sign in, how often (the secret is stored sealed)."""
    home = await reach.reach_home(uow, Operation.XZUFI_IMPORT, operator=True)
    fields = {
        "url": data.url,
        "token_url": data.token_url,
        "client_id": data.client_id,
        "client_secret": uow.app.sealer.seal(data.client_secret, _context(home.id)),
        "scope": data.scope,
        "interval_minutes": data.interval_minutes,
        "enabled": data.enabled,
    }
    row = await store.save_transfer(uow.conn, home.id, fields, clock.now(), data.restart)
    return _settings(row)


@dataclass(frozen=True, slots=True)
class Credentials:
    tenant_id: UUID
    url: str
    token_url: str
    client_id: str
    client_secret: str
    scope: str
    cursor_url: str | None
    run_id: UUID


async def begin_run(uow: UnitOfWork) -> Credentials:
    """Take the transfer for one run, with what it needs to sign in and where to resume. One run
    at a time: two at once fetched and imported every page twice and could move the cursor back
    (the third sweep, decision 004)."""
    home = await reach.reach_home(uow, Operation.XZUFI_IMPORT, operator=True)
    run_id = uuid4()
    row = await store.begin_run(uow.conn, home.id, run_id, clock.now(), RUN_HELD)
    if row is None:
        if await store.find_transfer(uow.conn, home.id) is None:
            raise NotFound(_l("no XZuFi transfer is set up"))
        raise Conflict(_l("a run of the XZuFi transfer is in progress; its report will be the transfer's last run"))
    secret = uow.app.sealer.open(row["client_secret"], _context(home.id))
    return Credentials(
        home.id, row["url"], row["token_url"], row["client_id"], secret, row["scope"], row["cursor_url"], run_id
    )


class Page(msgspec.Struct, frozen=True, rename="camel"):
    # PVOG sends the page's objects as one XML document (`schreibe` per object, `loesche` by
    # `klasse`) in a string; a list of entries is the shape our first transfer server used.
    xzufi_objekte: list[Any] | str = msgspec.field(default_factory=list)
    vollstaendig: bool = False
    naechster_index: int | None = None
    naechste_anfrage_url: str | None = None


ReadPage = tuple[list[xzufi.XzufiMessage], list[xzufi.Deletion], list[XzufiProblem], Page]


def read_page(body: bytes, number: int) -> ReadPage:
    """The messages and deletions of one page; a bad entry is a problem, the rest goes in."""
    if len(body) > MAX_PAGE_BYTES:
        raise TransferFailed(f"page {number} is larger than {MAX_PAGE_BYTES} bytes")
    try:
        page = msgspec.json.decode(body, type=Page)
    except msgspec.DecodeError as error:
        raise TransferFailed(f"page {number} is not a transfer envelope: {error}") from None
    messages: list[xzufi.XzufiMessage] = []
    deletions: list[xzufi.Deletion] = []
    problems: list[XzufiProblem] = []
    if isinstance(page.xzufi_objekte, str):
        try:
            messages.append(xzufi.parse_message(_utf8(page.xzufi_objekte), f"page {number}", MAX_PAGE_BYTES))
        except xzufi.XzufiRefused as refused:
            problems.append(XzufiProblem(f"page {number}", 0, "message", None, str(refused.message)))
        read = messages[0] if messages else None
        if read is not None and len(read.services) + len(read.offices) + len(read.deletions) > MAX_OBJECTS_PER_PAGE:
            raise TransferFailed(f"page {number} holds more than {MAX_OBJECTS_PER_PAGE} objects")
        return messages, deletions, problems, page
    if len(page.xzufi_objekte) > MAX_OBJECTS_PER_PAGE:
        raise TransferFailed(f"page {number} holds more than {MAX_OBJECTS_PER_PAGE} objects")
    for position, entry in enumerate(page.xzufi_objekte, start=1):
        name = f"page {number}, entry {position}"
        xml = entry if isinstance(entry, str) else entry.get("schreibe") if isinstance(entry, dict) else None
        gone = entry.get("loesche") if isinstance(entry, dict) else None
        kind = str(gone.get("typ") or gone.get("klasse") or "").lower() if isinstance(gone, dict) else ""
        if isinstance(gone, dict) and kind in ("leistung", "organisationseinheit", "zustaendigkeit"):
            ident = gone.get("id")
            if isinstance(ident, str) and 1 <= len(ident) <= 200:
                deletions.append(xzufi.Deletion(kind=kind, xzufi_id=ident, line=position))
                continue
        if isinstance(xml, str):
            try:
                messages.append(xzufi.parse_message(_utf8(xml), name))
            except xzufi.XzufiRefused as refused:
                problems.append(XzufiProblem(name, 0, "message", None, str(refused.message)))
            continue
        problems.append(XzufiProblem(name, 0, "entry", None, "neither a schreibe nor a loesche entry"))
    return messages, deletions, problems, page


def _utf8(xml: str) -> bytes:
    """A message that arrived as JSON text is UTF-8 now, whatever its declaration says (PVOG
    data is String.Latin, often declared ISO-8859-15): the declaration goes, so lxml reads it right."""
    return _DECLARATION.sub("", xml, count=1).encode("utf-8")


def _same_origin(a: str, b: str) -> bool:
    x, y = urlsplit(a), urlsplit(b)
    return (x.scheme, x.netloc) == (y.scheme, y.netloc)


async def fetch_token(client: httpx.AsyncClient, creds: Credentials) -> str:
    form = {"grant_type": "client_credentials"}
    if creds.scope:
        form["scope"] = creds.scope
    try:
        response = await client.post(creds.token_url, data=form, auth=(creds.client_id, creds.client_secret))
    except httpx.HTTPError as error:
        raise TransferFailed(f"token endpoint: {type(error).__name__}") from None
    if response.status_code != 200:
        raise TransferFailed(f"token endpoint answered {response.status_code}")
    try:
        token = response.json().get("access_token")
    except ValueError:
        token = None
    if not isinstance(token, str) or not token:
        raise TransferFailed("token endpoint sent no access_token")
    return token


async def fetch_page(client: httpx.AsyncClient, url: str, token: str, number: int) -> bytes:
    try:
        response = await client.get(url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
    except httpx.HTTPError as error:
        raise TransferFailed(f"page {number}: {type(error).__name__}") from None
    if response.status_code != 200:
        raise TransferFailed(f"page {number}: the transfer server answered {response.status_code}")
    return response.content


def next_url(creds: Credentials, page: Page) -> str | None:
    if page.naechste_anfrage_url is None:
        return None
    if not _same_origin(page.naechste_anfrage_url, creds.url):
        raise TransferFailed("the next page is on another server than the configured transfer")
    return page.naechste_anfrage_url


async def apply_page(
    uow: UnitOfWork,
    messages: list[xzufi.XzufiMessage],
    deletions: list[xzufi.Deletion],
    problems: list[XzufiProblem],
    cursor: tuple[str | None, int | None],
    run_id: UUID,
) -> XzufiReport:
    """One page in one transaction, with the cursor that follows it. A run that no longer holds
    the transfer (its settings were saved meanwhile: a new URL or `restart` reset the cursor)
    stops here, the page not taken, rather than write the old server's next page over the cursor."""
    run = await xzufi_import.start(uow)
    run.counts.errors.extend(problems)
    for message in messages:
        await xzufi_import.apply_message(run, message)
    if deletions:
        await xzufi_import.apply_message(run, xzufi.XzufiMessage(name="loesche"), deletions)
    if not await store.save_cursor(uow.conn, run.operator.id, run_id, cursor[0], cursor[1], clock.now()):
        raise TransferFailed("the transfer's settings were saved during the run; stopped, the page not taken")
    return run.counts.report()


def add_reports(a: XzufiReport | None, b: XzufiReport) -> XzufiReport:
    if a is None:
        return b
    values = {name: getattr(a, name) + getattr(b, name) for name in XzufiReport.__struct_fields__ if name != "errors"}
    return XzufiReport(**values, errors=[*a.errors, *b.errors][:200])


async def finish(uow: UnitOfWork, run_id: UUID, now: datetime, outcome: str, report: XzufiReport | None) -> None:
    """The run's outcome on the transfer, which it lets go (nothing when it no longer held it)."""
    home = await reach.reach_home(uow, Operation.XZUFI_IMPORT, operator=True)
    report_value = msgspec.to_builtins(report) if report else None
    await store.finish_run(uow.conn, home.id, run_id, now, outcome, report_value)


def refuse_unless_configured(creds: Credentials | None) -> Credentials:
    if creds is None:
        raise ValidationFailed(_l("no XZuFi transfer is set up"))
    return creds
