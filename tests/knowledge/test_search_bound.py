"""The bounded search (decision 035's amendment): a common concept's documents are read only
where it is in the title or the search terms, the services on the page are completed with their
other documents, and the search widens to every document when the bound cannot decide the
lexical window. What it finds must be what the unbounded search finds, hit for hit and score for
score: these tests run the same questions both ways on the catalogue, with every concept counted
as common (the hardest case for the bound) and with a few."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx
import pytest
from asyncpg.connection import LoggedQuery
from litestar import Litestar

from auth.principal import Principal
from auth.roles import Role
from backend.knowledge import search
from backend.knowledge.schemas import SearchPage
from backend.state import unit_of_work
from tests.knowledge.conftest import KREIS, SOEST, nonsense_word, published_article
from tests.support.world import World

pytestmark = pytest.mark.usefixtures("catalogue")

# Caller questions with common words ("beantragen", "neu", "Antrag", "anmelden") next to rare ones,
# one of common words only, a typo, a compound, and one the catalogue does not answer.
QUESTIONS = (
    "Wo kann ich einen neuen Personalausweis beantragen?",
    "Hund anmelden",
    "Antrag stellen",
    "Ich möchte einen Schwerbehindertenausweis beantragen",
    "Unser Baby ist da, wo beantragen wir Elterngeld?",
    "Persnalausweis beantragen",
    "Bewohnerparkausweis verlängern",
    "Gewerbe anmelden neu",
    "Wie wird morgen das Wetter?",
    # Hostile or odd input: the longest question allowed, of common words only; tsquery syntax;
    # SQL; nothing searchable.
    ("Antrag beantragen neu " * 30)[:500],
    "Antrag:* & !beantragen | (neu",
    "' OR 1=1 --",
    "%$&!?",
)
UNBOUNDED = 10**12


async def _search(
    app: Litestar, world: World, query: str, statements: list[str] | None = None, **filters: Any
) -> SearchPage:
    agent = Principal(
        issuer="test",
        subject="bound",
        tenant_id=world.tenant_ids[KREIS],
        tenant_slug=world.slug(KREIS),
        roles=frozenset({Role.AGENT}),
        acting_tenant_ids=frozenset(world.tenant_ids.values()),
    )

    def log(record: LoggedQuery) -> None:
        if statements is not None:
            statements.append(record.query)

    async with unit_of_work(app.state.app_state, agent, readonly=True) as uow:
        uow.conn.add_query_logger(log)
        try:
            return await search.search_articles(uow, query, world.slug(SOEST), 10, **filters)
        finally:
            uow.conn.remove_query_logger(log)


def _hits(page: SearchPage) -> list[tuple[Any, ...]]:
    return [(h.id, h.leika_key, h.title, h.score, h.relevance, h.confident, h.snippet) for h in page.items]


@pytest.mark.parametrize("common_documents", [0, 30])
async def test_a_bounded_search_finds_what_the_unbounded_one_finds(
    app: Litestar, world: World, monkeypatch: pytest.MonkeyPatch, common_documents: int
) -> None:
    unbounded = {}
    monkeypatch.setattr(search, "COMMON_DOCUMENTS", UNBOUNDED)
    for query in QUESTIONS:
        page = await _search(app, world, query)
        unbounded[query] = (_hits(page), page.confident, page.interpreted_as)
    monkeypatch.setattr(search, "COMMON_DOCUMENTS", common_documents)
    for query in QUESTIONS:
        page = await _search(app, world, query)
        assert (_hits(page), page.confident, page.interpreted_as) == unbounded[query], query


async def test_a_bounded_search_pages_and_filters_as_the_unbounded_one(
    app: Litestar, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    question = "Wo kann ich einen neuen Personalausweis beantragen?"
    cases: list[dict[str, Any]] = [{"leika_group": "085"}, {"leika_group": "999"}]
    monkeypatch.setattr(search, "COMMON_DOCUMENTS", UNBOUNDED)
    first = await _search(app, world, question)
    assert first.next_cursor is not None
    cases.append({"after": first.next_cursor})
    unbounded = [_hits(await _search(app, world, question, **case)) for case in cases]
    monkeypatch.setattr(search, "COMMON_DOCUMENTS", 0)
    assert [_hits(await _search(app, world, question, **case)) for case in cases] == unbounded


def _search_statements(statements: list[str]) -> int:
    return sum("FROM unnest($3::text[], $4::text[], $5::float8[])" in s for s in statements)


async def test_the_bound_decides_a_common_word_without_reading_all_its_documents(
    app: Litestar, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "Antrag" is in dozens of catalogue titles: the services whose title has it outrank every
    document that has it elsewhere, so one search statement decides (no widening)."""
    monkeypatch.setattr(search, "COMMON_DOCUMENTS", 0)
    statements: list[str] = []
    page = await _search(app, world, "Antrag", statements)
    assert page.items
    assert _search_statements(statements) == 1, statements


async def test_the_search_widens_when_the_bound_cannot_decide(
    app: Litestar, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A word in fewer than 30 services' titles cannot fill the lexical window from titles alone:
    the search asks again, reading every document with it."""
    monkeypatch.setattr(search, "COMMON_DOCUMENTS", 0)
    statements: list[str] = []
    await _search(app, world, "Hundesteuer", statements)
    assert _search_statements(statements) == 2, statements


async def test_a_service_on_the_page_is_shown_by_the_towns_article_that_has_the_common_word_elsewhere(
    client: httpx.AsyncClient, app: Litestar, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The town's own article of a service stands for it even when it has the common word only in
    its body and its service's name: the bounded search does not read it among the common word's
    documents, but completes the services on its page with their other documents."""
    question = "Antrag"
    monkeypatch.setattr(search, "COMMON_DOCUMENTS", UNBOUNDED)
    service = (await _search(app, world, question)).items[0]
    assert service.leika_key is not None and service.title and "Antrag" in service.title
    article = await published_article(
        client,
        world,
        SOEST,
        f"{nonsense_word()} Merkblatt",
        leikaKey=service.leika_key,
        sections={"description": "Den Antrag stellen Sie formlos im Bürgerbüro."},
    )
    unbounded = await _search(app, world, question)
    assert [h.id for h in unbounded.items if h.leika_key == service.leika_key] == [UUID(article["id"])]
    monkeypatch.setattr(search, "COMMON_DOCUMENTS", 0)
    statements: list[str] = []
    bounded = await _search(app, world, question, statements)
    assert _search_statements(statements) == 1, "the bound decided"
    assert _hits(bounded) == _hits(unbounded)


def _row(final: float, rank: int, lexical: bool = True) -> dict[str, Any]:
    return {"final": final, "lexical_rank": rank, "lexical": lexical}


def test_the_bound_needs_a_full_window_above_what_an_unread_document_reaches() -> None:
    ceiling = search.search_repository.MAX_BOOST * search.search_repository.OUTSIDE_TITLE_FACTOR * 2.0
    full = [_row(5.0 - n * 0.1, n) for n in range(1, 31)]
    assert search._bounded_search_decides(full, 30, 2.0)  # type: ignore[arg-type]
    assert not search._bounded_search_decides(full[:29], 30, 2.0)  # type: ignore[arg-type]
    low = [*full[:29], _row(ceiling, 30)]
    assert not search._bounded_search_decides(low, 30, 2.0)  # type: ignore[arg-type]
    # A meaning candidate beyond the window does not fill it.
    beyond = [*full[:29], _row(4.0, 31), _row(4.0, 40, lexical=False)]
    assert not search._bounded_search_decides(beyond, 30, 2.0)  # type: ignore[arg-type]
