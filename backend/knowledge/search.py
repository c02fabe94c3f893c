"""The search agents use while the caller is on the line, for the town the call is for: German
words with synonyms, compound parts and typo correction, ranked in SQL (`search_repository`), paged
by cursors; and the LeiKa catalogue entry behind a key.

Tuning and its measurements: docs/decisions/007-knowledge-base.md, `make eval`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import html
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from auth.permissions import Operation
from backend import clock, generations
from backend.directory import search as directory_search
from backend.errors import NotFound, ValidationFailed
from backend.i18n import _l
from backend.knowledge import (
    analysis,
    catalogue_repository,
    fusion,
    leika,
    meaning,
    reranker,
    search_lexicons,
    search_repository,
)
from backend.knowledge.context import Context, question_context, town_context
from backend.knowledge.cursors import OffsetCursor, check_page_size, decode_cursor, encode_cursor
from backend.knowledge.schemas import (
    ArticleKind,
    ArticleStatus,
    HitSource,
    LeikaService,
    PointsTo,
    SearchHit,
    SearchPage,
)
from backend.state import UnitOfWork
from backend.webpages import search as webpages

MAX_QUERY_LENGTH = 500
# Search tuning (see docs/decisions/007-knowledge-base.md): a typo correction must look this much
# like a known word; a hit is a confident answer when this share of the question's weight is
# found in its title or search terms.
TYPO_SIMILARITY = 0.5
TYPO_MIN_LENGTH = 5  # shorter unknown words are not corrected
CONFIDENT_RELEVANCE = 0.5
MIN_TITLE_COVERAGE = 0.25  # a catalogue title must not be mostly about something else
CONTEXT_WORD_SHARE = 0.5  # a known word of the question the hit does not have counts this much against it
UNKNOWN_WORD_WEIGHT = 0.5  # share of a rare word's weight that an unknown word counts for
NON_NOUN_WEIGHT = 0.7  # a word written in lower case where the caller capitalises nouns: a verb or adjective
ADJUNCT_WEIGHT = 0.8  # a word said after "im", "beim", "auf dem" …: where or when, seldom the service
# A word found only by OpenThesaurus' words for it (thesaurus.py): less sure than a written synonym.
THESAURUS_WEIGHT = 0.8
# Tuning (tests/eval/tune.py) reads what each retriever proposed through this hook; None in service.
EXPLAIN: Callable[[dict[str, Any]], None] | None = None
# Services each retriever proposes for fusion. Fixed, not grown with the page asked for: the fused
# ranking must not depend on the page, or paging would show a service twice. A question thus
# reaches at most 50 services, more than an agent reads on the line.
LEXICAL_CANDIDATES = 30
MEANING_CANDIDATES = 20
# A concept whose words are in more documents than this is common ("beantragen", "Antrag", "neu":
# ~18,000 of 10^5 articles): the search reads its documents only where it is in the title or the
# search terms, and widens to all when that cannot decide the lexical window (decision 035).
COMMON_DOCUMENTS = 1000


async def leika_service(uow: UnitOfWork, leika_key: str, tenant_slug: str | None = None) -> LeikaService:
    problem = leika.leika_key_problem(leika_key)
    if problem:
        raise ValidationFailed(problem, field="leikaKey")
    ctx = await town_context(uow, Operation.ARTICLE_READ, tenant_slug)
    service = await catalogue_repository.find_service(uow.conn, ctx.owner_ids, leika_key)
    if service is None:
        raise NotFound(_l("no such service in the LeiKa catalogue"))
    return service


def _idf(documents: int, frequency: int) -> float:
    return math.log(1 + (documents + 1) / (frequency + 0.5))


PRIMARY_ORIGINS = frozenset({"query", "variant", "synonym"})
# Count 0.9 of what was said:
RELATED_ORIGINS = frozenset({"synonym", "thesaurus", "compound", "derived", "unparticled"})


@dataclass(slots=True)
class _Resolved:
    """A concept ready for SQL: alternatives as lexemes (each alternative's lexemes all match)."""

    label: str
    exact: list[list[str]]  # what was said and its spellings
    synonym: list[list[str]]  # synonyms, its noun, its compound parts
    weight: float
    topic: bool
    shown: list[str]
    typo: bool = False
    known_word: bool = False  # the German dictionary knows it: not a typo, only a word the index lacks
    documents: int = 0  # the most documents its words find (the sum over its alternatives)
    shown_as: dict[tuple[str, ...], str] = dataclasses.field(default_factory=dict)  # lexemes → words shown
    frequency_of: dict[tuple[str, ...], int] = dataclasses.field(default_factory=dict)  # lexemes → documents

    @property
    def strong(self) -> list[list[str]]:
        return self.exact + self.synonym


def _alternative_lexemes(
    alternative: analysis.Alternative, found: dict[str, list[tuple[str, int]]]
) -> tuple[list[str], int] | None:
    """The lexemes of an alternative (all must match) and its frequency; None when a word of it
    does not occur in what the town sees."""
    lexemes: list[str] = []
    frequency: int | None = None
    for word in alternative.words:
        entries = found.get(word, [])  # none: a stop word of the index
        if not entries and alternative.origin == "compound":
            return None  # every part of a compound counts
        for lexeme, ndoc in entries:
            if ndoc <= 0:
                return None
            lexemes.append(lexeme)
            frequency = ndoc if frequency is None else min(frequency, ndoc)
    if not lexemes or frequency is None:
        return None
    return list(dict.fromkeys(lexemes)), frequency


def _resolve(
    concept: analysis.Concept,
    found: dict[str, list[tuple[str, int]]],
    documents: int,
    lexicon: analysis.Lexicon,
    depth: int = 0,
) -> list[_Resolved]:
    exact: list[list[str]] = []
    synonym: list[list[str]] = []
    primary: list[int] = []
    secondary: list[int] = []
    shown: list[str] = []
    shown_as: dict[tuple[str, ...], str] = {}
    frequency_of: dict[tuple[str, ...], int] = {}
    # OpenThesaurus' words stand in for a word the index lacks; for a word it has (in another
    # sense, often: "Garten" → Anlage, "Schlüssel" → Identifikationsnummer) they are noise.
    strong = [a for a in concept.strong if a.origin != "thesaurus"]
    thesaurus = [a for a in concept.strong if a.origin == "thesaurus"]
    by_thesaurus = bool(thesaurus) and not any(_alternative_lexemes(a, found) for a in strong)
    if by_thesaurus:
        strong = thesaurus
    for alternative in strong:
        resolved = _alternative_lexemes(alternative, found)
        if resolved is None:
            continue
        lexemes, frequency = resolved
        (primary if alternative.origin in PRIMARY_ORIGINS else secondary).append(frequency)
        if lexemes not in exact and lexemes not in synonym:
            (synonym if alternative.origin in RELATED_ORIGINS else exact).append(lexemes)
            shown.append(" ".join(alternative.words))
            shown_as[tuple(lexemes)] = shown[-1]
            frequency_of[tuple(lexemes)] = frequency
    if not primary and concept.parts and depth < 2:
        # An unknown compound: its parts, each a concept of its own sharing the compound's weight.
        parts = [
            r
            for part in concept.parts
            for r in _resolve(analysis.word_concept(part, lexicon), found, documents, lexicon, depth + 1)
        ]
        if any(r.strong for r in parts):
            for r in parts:
                r.weight /= len(concept.parts)
            return parts
    # How telling the concept is: as common as its broadest alternative.
    frequencies = primary or secondary
    weight = _idf(documents, max(frequencies)) if frequencies else 0.0
    if not concept.noun:
        weight *= NON_NOUN_WEIGHT
    if concept.adjunct:
        weight *= ADJUNCT_WEIGHT
    if by_thesaurus:
        weight *= THESAURUS_WEIGHT
    return [
        _Resolved(
            concept.label,
            exact,
            synonym,
            weight,
            concept.topic,
            shown,
            known_word=concept.known_word,
            documents=sum(primary) + sum(secondary),
            shown_as=shown_as,
            frequency_of=frequency_of,
        )
    ]


def _query_text(groups: Sequence[Sequence[str]]) -> str | None:
    return analysis.any_of(
        [
            [analysis.tsquery_term(t[:-2], True) if t.endswith(":*") else analysis.tsquery_term(t) for t in group]
            for group in groups
        ]
    )


def _union(texts: Sequence[str | None]) -> str | None:
    return " | ".join(f"({t})" for t in texts if t) or None


def _bounded_queries(
    searchable: Sequence[_Resolved],
    exact: Sequence[str | None],
    synonym: Sequence[str | None],
) -> tuple[str | None, str | None, float]:
    """The search's bound (decision 035): the rare concepts' query (read wherever they are), the
    common concepts' query (read in title and search terms only) and the common concepts' weight;
    (None, None, 0) when no concept is common."""
    common = [r.documents > COMMON_DOCUMENTS for r in searchable]
    if not any(common):
        return None, None, 0.0
    rare: list[str | None] = []
    frequent: list[str | None] = []
    for texts in (exact, synonym):
        for text, is_common in zip(texts, common, strict=True):
            (frequent if is_common else rare).append(text)
    weight = sum(r.weight for r, is_common in zip(searchable, common, strict=True) if is_common)
    return _union(rare), _union(frequent), weight


def _bounded_search_decides(rows: Sequence[asyncpg.Record], limit: int, common_weight: float) -> bool:
    """Whether a bounded search found the lexical window an unbounded one would: `limit` services
    whose final score exceeds the most a document it did not read can reach (a common concept
    outside title and search terms; `search_repository.OUTSIDE_TITLE_FACTOR`)."""
    window = [r["final"] for r in rows if r["lexical"] and r["lexical_rank"] <= limit]
    ceiling = search_repository.MAX_BOOST * search_repository.OUTSIDE_TITLE_FACTOR * common_weight
    return len(window) >= limit and min(window) > ceiling


def _snippet(raw: str | None) -> tuple[str, str]:
    text = raw or ""
    marked = html.escape(text, quote=False).replace("\x02", "<mark>").replace("\x03", "</mark>")
    return marked, text.replace("\x02", "").replace("\x03", "")


@dataclass(frozen=True, slots=True)
class Judgement:
    relevance: float
    confident: bool


def judge(
    concepts: Sequence[_Resolved],
    unknown: float,
    strong: Sequence[float],
    title_words: int,
    title_found: int,
    is_article: bool,
) -> Judgement:
    """How well one hit answers the question.

    relevance: the weight of the question's words found in the hit's title or search terms, over
    that plus the words not found — a known word not found counts half (callers add circumstances:
    "the lamp in front of our house"), a word no document knows counts as `unknown` says.
    confident: a word naming a service (not only "apply", "lost" …) is in the title or search terms
    as said (not only as a guessed correction), relevance reaches CONFIDENT_RELEVANCE,
    and the match is not one word lost in a long catalogue title.
    """
    found = missing = 0.0
    for concept, s in zip(concepts, strong, strict=True):
        if s >= 0.6:
            found += concept.weight
        else:
            missing += concept.weight
    total = found + CONTEXT_WORD_SHARE * missing + unknown
    relevance = found / total if total > 0 else 0.0
    topical = any(c.topic and not c.typo and s >= 0.8 for c, s in zip(concepts, strong, strict=True))
    covered = is_article or title_found / max(title_words, 1) >= MIN_TITLE_COVERAGE
    return Judgement(relevance, topical and covered and relevance >= CONFIDENT_RELEVANCE)


def _twins(by_group: dict[str, asyncpg.Record]) -> Callable[[str, str], bool]:
    """Whether two hits are entries of one catalogue service object."""

    def twins(a: str, b: str) -> bool:
        key_a, key_b = by_group[a]["leika_key"], by_group[b]["leika_key"]
        return bool(key_a and key_b) and leika.service_object(key_a) == leika.service_object(key_b)

    return twins


def _judge_row(concepts: Sequence[_Resolved], unknown: float, row: asyncpg.Record) -> Judgement:
    """`judge` for a row of the search statement."""
    article = row["source"] == HitSource.ARTICLE.value
    return judge(concepts, unknown, row["strong_factors"], int(row["title_words"]), int(row["title_found"]), article)


def _hit(row: asyncpg.Record, judgement: Judgement, score: float) -> SearchHit:
    snippet, snippet_text = _snippet(row["snippet"])
    kind = row["article_kind"]
    return SearchHit(
        source=HitSource(row["source"]),
        id=row["doc_id"],
        tenant_id=row["tenant_id"],
        kind=ArticleKind(kind) if kind else None,
        leika_key=row["leika_key"],
        title=row["title"],
        summary=row["summary"],
        status=ArticleStatus(row["status"]),
        snippet=snippet,
        snippet_text=snippet_text,
        score=round(score, 4),
        relevance=round(judgement.relevance, 3),
        confident=judgement.confident,
        has_local_version=bool(row["has_local_version"]),
    )


async def search(
    uow: UnitOfWork,
    query: str,
    tenant_slug: str | None = None,
    first: int = 10,
    after: str | None = None,
    leika_group: str | None = None,
    status: ArticleStatus | None = None,
    sources: Sequence[HitSource] | None = None,
) -> SearchPage:
    """The search agents use while the caller is on the line: articles and the catalogue
    (`search_articles`), and beside them, on the first page of the published view, the town's web
    pages (decision 025; kept apart until the ranking fuses them) and the people and offices of
    its directory that the question names (decision 038)."""
    page, ctx, plan = await _search_articles(uow, query, tenant_slug, first, after, leika_group, status, sources)
    if status is not None or after is not None:
        return page
    # The town context the articles were searched for (not asked again: two statements fewer).
    return msgspec.structs.replace(
        page,
        web_pages=await webpages.matching_pages(uow.conn, ctx, query, words=analysis.topical_words(plan)),
        directory=await directory_search.entries_for_question(uow, ctx.town, query),
    )


async def search_articles(
    uow: UnitOfWork,
    query: str,
    tenant_slug: str | None = None,
    first: int = 10,
    after: str | None = None,
    leika_group: str | None = None,
    status: ArticleStatus | None = None,
    sources: Sequence[HitSource] | None = None,
) -> SearchPage:
    """The search agents use while the caller is on the line, for the town the call is for.

    Without `status`: published articles valid today and the LeiKa catalogue. With `status`
    (editors only): the tenant's own articles at their latest version in that status.
    """
    page, _, _ = await _search_articles(uow, query, tenant_slug, first, after, leika_group, status, sources)
    return page


async def _search_articles(
    uow: UnitOfWork,
    query: str,
    tenant_slug: str | None = None,
    first: int = 10,
    after: str | None = None,
    leika_group: str | None = None,
    status: ArticleStatus | None = None,
    sources: Sequence[HitSource] | None = None,
) -> tuple[SearchPage, Context, analysis.QueryPlan]:
    check_page_size(first)
    if len(query) > MAX_QUERY_LENGTH:
        raise ValidationFailed(
            _l("the question is longer than {max_query_length} characters", max_query_length=MAX_QUERY_LENGTH),
            field="query",
        )
    if leika_group is not None and not re.fullmatch(r"[0-9]{3}", leika_group):
        raise ValidationFailed(_l("a LeiKa group has three digits"), field="leikaGroup")
    operation = Operation.ARTICLE_DRAFT_READ if status is not None else Operation.ARTICLE_READ
    # The door, then the town's operators with the question's imported search terms in one statement.
    ctx, imported = await question_context(uow, operation, tenant_slug, analysis.question_words(query))
    view = "working" if status is not None else "published"
    wanted = [s.value for s in (sources or list(HitSource))]
    if status is not None:
        wanted = [HitSource.ARTICLE.value]
    today = clock.today()
    # One Redis GET says whether this instance's synonyms and matrices of the town are current.
    generation = await generations.read_one(uow.app, "knowledge")
    town_lexicon = await search_lexicons.town_lexicon(uow.conn, ctx.town_id, ctx.owner_ids, ctx.town.name, generation)
    lexicon = town_lexicon.with_imported([(term, [name]) for term, name in imported])
    plan = analysis.analyse(query, lexicon)

    key = plan.leika_key or (plan.leika_prefix if not plan.concepts else None)
    # Both page by offset: a fused ranking has no single score to continue from.
    cursor = decode_cursor(after, OffsetCursor)
    offset = cursor.o if cursor else 0
    if key:
        rows = await search_repository.search_by_key(
            uow.conn,
            ctx.town_id,
            ctx.owner_ids,
            view,
            key,
            today,
            status.value if status else None,
            wanted,
            offset,
            first + 1,
        )
        items = [_hit(r, Judgement(1.0, True), 1.0) for r in rows[:first]]
        more = encode_cursor(OffsetCursor(o=offset + first)) if len(rows) > first else None
        return (
            SearchPage(
                items=items,
                next_cursor=more,
                confident=bool(items),
                interpreted_as=[f"LeiKa {key}"],
                aspects=plan.aspects,
            ),
            ctx,
            plan,
        )

    lexical_on, meaning_on = _retrievers(uow, status)
    rerank_on = lexical_on and meaning_on and _reranking(uow)
    searchable, unknown, interpreted = await _lexical_plan(uow, ctx, plan, lexicon) if lexical_on else ([], 0.0, [])
    if not searchable and not meaning_on:
        return (
            SearchPage(items=[], next_cursor=None, confident=False, interpreted_as=interpreted, aspects=plan.aspects),
            ctx,
            plan,
        )
    nearest: list[tuple[str, UUID, float]] = []
    best_similarity = 1.0  # without the meaning retriever, nothing says the question is not ours
    elsewhere = 0.0
    if meaning_on:
        scope = await meaning.scope_at(uow.conn, ctx.town_id, ctx.owner_ids, generation)
        vectors = meaning.question_vectors(query, plan)
        nearest, best_similarity = scope.compare(vectors, MEANING_CANDIDATES)
        elsewhere = meaning.elsewhere(vectors.said)
    exact_texts = [_query_text(r.exact) for r in searchable]
    synonym_texts = [_query_text(r.synonym) for r in searchable]
    any_query = _union([*exact_texts, *synonym_texts])
    rare_query, title_query, common_weight = _bounded_queries(searchable, exact_texts, synonym_texts)
    lexemes = sorted({lexeme for r in searchable for group in r.strong for lexeme in group})
    params = search_repository.SearchParams(
        town_id=ctx.town_id,
        owner_ids=ctx.owner_ids,
        view=view,
        exact=exact_texts,
        synonym=synonym_texts,
        weights=[r.weight for r in searchable],
        any_query=any_query or None,
        lexemes=lexemes,
        today=today,
        leika_group=leika_group,
        status=status.value if status else None,
        sources=wanted,
        limit=LEXICAL_CANDIDATES if lexical_on else 0,
        meaning_docs=[doc for _, doc, _ in nearest],
        meaning_groups=[group for group, _, _ in nearest],
        rare_query=rare_query,
        title_query=title_query,
    )
    rows = await search_repository.search(uow.conn, params)
    if title_query is not None and not _bounded_search_decides(rows, params.limit, common_weight):
        # Too few services above what an unread document could reach: read them all.
        rows = await search_repository.search(uow.conn, dataclasses.replace(params, title_query=None))
    by_group = {r["group_key"]: r for r in rows}
    # Only the lexical window ranks lexically (a meaning candidate beyond it counts by its meaning
    # rank alone), so the fused order is the same whatever page is asked for.
    lexical_order = [r["group_key"] for r in rows if r["lexical"] and r["lexical_rank"] <= LEXICAL_CANDIDATES]
    meaning_order = [group for group, _, _ in nearest if group in by_group]
    similarity = {group: cosine for group, _, cosine in nearest}
    # Only the fusion asks whether the words are sure of their first service (lexical alone never does).
    lexical_sure = (
        lexical_on
        and meaning_on
        and bool(lexical_order)
        and _judge_row(searchable, unknown, by_group[lexical_order[0]]).confident
    )
    reranked: list[tuple[str, float]] = []
    if rerank_on and reranker.wanted(lexical_order, meaning_order, lexical_sure):
        # e5 orders the services both retrievers proposed: the third ranking (decision 026). Its
        # pass (~16-30 ms CPU) runs off the event loop; the engine releases the GIL.
        candidates = [_rerank_candidate(by_group[g]) for g in dict.fromkeys([*lexical_order, *meaning_order])]
        text = f"{query} {meaning.content_text(plan)}".strip()
        reranked = reranker.order(await asyncio.to_thread(reranker.embed_query, text), candidates)
    rerank_order = [group for group, _ in reranked]
    rerank_similarity = dict(reranked)
    fused = fusion.reciprocal_rank_fusion(
        [
            (lexical_order, fusion.LEXICAL_WEIGHT),
            (meaning_order, fusion.MEANING_WEIGHT),
            (rerank_order, fusion.RERANK_WEIGHT),
        ]
    )
    found: dict[str, float] = {}  # how well the question's words are found in each hit
    if lexical_on and meaning_on:
        found = {g: _judge_row(searchable, unknown, r).relevance for g, r in by_group.items() if r["lexical"]}
        score_of = dict(fused)
        order = fusion.placed(
            [g for g, _ in fused],
            lexical_order,
            meaning_order,
            rerank_order,
            lexical_sure,
            _twins(by_group),
            lambda g: by_group[g]["source"] == HitSource.ARTICLE.value,
            lambda a, b: found.get(a, 0.0) >= found.get(b, 0.0),
        )
        fused = [(g, score_of[g]) for g in order]
    if EXPLAIN is not None:
        EXPLAIN(
            {
                "query": query,
                "lexical": lexical_order,
                "meaning": meaning_order,
                "rerank": rerank_order,
                "rerank_similarity": rerank_similarity,
                "similarity": similarity,
                "best": best_similarity,
                "elsewhere": elsewhere,
                "keys": {g: r["leika_key"] for g, r in by_group.items()},
                "final": {g: float(r["final"]) for g, r in by_group.items() if r["lexical"]},
                "articles": [g for g, r in by_group.items() if r["source"] == HitSource.ARTICLE.value],
                "relevance": found,
                "content": meaning.content_text(plan),
                "lexical_confident": {
                    g: r["lexical"] and _judge_row(searchable, unknown, r).confident for g, r in by_group.items()
                },
            }
        )
    lexical_rank = {group: n for n, group in enumerate(lexical_order, start=1)}
    meaning_rank = {group: n for n, group in enumerate(meaning_order, start=1)}
    rerank_rank = {group: n for n, group in enumerate(rerank_order, start=1)}
    items, first_words = [], 0.0  # the first hit's share of the question in its title, a town's article
    for group, score in fused[offset : offset + first]:
        row = by_group[group]
        lexical = _judge_row(searchable, unknown, row) if row["lexical"] else Judgement(0.0, False)
        evidence = fusion.Evidence(
            lexical_confident=lexical.confident,
            lexical_rank=lexical_rank.get(group),
            meaning_rank=meaning_rank.get(group),
            rerank_rank=rerank_rank.get(group),
            rerank_similarity=rerank_similarity.get(group, 0.0),
            lexical_found=bool(lexical_order),
            similarity=similarity.get(group, 0.0),
            best_similarity=best_similarity,
            elsewhere=elsewhere,
        )
        relevance = max(lexical.relevance, evidence.similarity)
        if lexical_on and meaning_on:
            sure = fusion.confident(evidence)
        else:  # one retriever alone (SEARCH_RETRIEVERS, to compare them): its own rule
            sure = lexical.confident if lexical_on else fusion.meaning_confident(evidence)
        items.append(_hit(row, Judgement(relevance, sure), score))
        first_words = lexical.relevance if len(items) == 1 and row["source"] == HitSource.ARTICLE else first_words
    next_cursor = encode_cursor(OffsetCursor(o=offset + first)) if len(fused) > offset + first else None
    confident = bool(items) and items[0].confident if offset == 0 else any(i.confident for i in items)
    # A question for a person, or an office's hours or number no town's article is about: the hits
    # may still help, but they are not the answer ("wann hat das Bürgerbüro auf" → Fundbüro).
    person = analysis.asks_for_person(query) or (
        bool(analysis.office_named(plan)) and first_words < CONFIDENT_RELEVANCE
    )
    if person:  # then no hit is sure either: a screen reader must not announce one as the answer
        items = [msgspec.structs.replace(i, confident=False) for i in items]
    return (
        SearchPage(
            items=items,
            next_cursor=next_cursor,
            confident=confident and not person,
            interpreted_as=interpreted,
            aspects=plan.aspects,
            points_to=PointsTo.DIRECTORY if person else None,
        ),
        ctx,
        plan,
    )


def _reranking(uow: UnitOfWork) -> bool:
    return "rerank" in uow.app.settings.search_retrievers


def _rerank_candidate(row: Any) -> reranker.Candidate:
    """A service for e5: a catalogue row with the digest of its text now (a renamed entry has no
    shipped vector that fits); an article stands for its LeiKa key."""
    text_digest = (
        reranker.digest(reranker.document_text(row["title"], row["summary"] or ""))
        if row["source"] == HitSource.SERVICE.value
        else None
    )
    return reranker.Candidate(group=row["group_key"], leika_key=row["leika_key"], text_digest=text_digest)


def _retrievers(uow: UnitOfWork, status: ArticleStatus | None) -> tuple[bool, bool]:
    """Which retrievers run: both unless SEARCH_RETRIEVERS says otherwise; an editor's search by
    status is lexical (working versions have no vectors)."""
    chosen = uow.app.settings.search_retrievers
    lexical = "lexical" in chosen or status is not None
    return lexical, "meaning" in chosen and status is None


async def _lexical_plan(
    uow: UnitOfWork, ctx: Context, plan: analysis.QueryPlan, lexicon: analysis.Lexicon
) -> tuple[list[_Resolved], float, list[str]]:
    """The question's concepts as the index knows them: lexemes, weights, typo corrections."""
    words: set[str] = set()
    for concept in plan.concepts:
        words |= concept.all_words()
        for part in concept.parts:
            words |= analysis.word_concept(part, lexicon).all_words()
    looked_up = await search_repository.lexicon_with_typos(
        uow.conn, ctx.town_id, ctx.owner_ids, sorted(words), TYPO_SIMILARITY, TYPO_MIN_LENGTH
    )
    found, documents = looked_up.found, looked_up.documents
    resolved = [r for concept in plan.concepts for r in _resolve(concept, found, documents, lexicon)]
    _correct_typos(resolved, found, documents, looked_up.similar)
    _one_concept_per_synonym(resolved, documents)

    max_weight = _idf(documents, 0)
    searchable = [r for r in resolved if r.strong]
    unknown = sum(UNKNOWN_WORD_WEIGHT * max_weight for r in resolved if not r.strong)
    interpreted = [
        f"{r.label} → {', '.join(r.shown)}" if r.shown and r.shown != [r.label] else r.label for r in searchable
    ]
    return searchable, unknown, interpreted


def _one_concept_per_synonym(resolved: Sequence[_Resolved], documents: int) -> None:
    """A synonym answers one word of the question: one an earlier word has as a synonym too is
    dropped from the later one, unless it is all that one has. "Auto … abgeschleppt": both had the
    synonym Kraftfahrzeug, and the entry "Kraftfahrzeug" outranked "abgeschleppte Fahrzeuge" by
    counting one title word for two words of the question. A word said as such keeps a synonym
    another word has (dev: "Grabstelle auf dem Friedhof" needs friedhof → grabstelle; dropping it
    there cost a top-1)."""
    taken: set[tuple[str, ...]] = set()
    for r in resolved:
        kept = [g for g in r.synonym if tuple(g) not in taken]
        if kept or r.exact:
            dropped = {r.shown_as.get(tuple(g)) for g in r.synonym if g not in kept}
            if dropped:
                # As telling as its broadest alternative left (Kraftfahrzeug made "abgeschleppt" common).
                before = max((r.frequency_of.get(tuple(g), 0) for g in r.strong), default=0)
                r.synonym = kept
                after = max((r.frequency_of.get(tuple(g), 0) for g in r.strong), default=0)
                if 0 < after < before and r.weight > 0:
                    r.weight *= _idf(documents, after) / _idf(documents, before)
                r.shown = [s for s in r.shown if s not in dropped]
        taken.update(tuple(group) for group in r.synonym)


def _correct_typos(
    resolved: list[_Resolved],
    found: dict[str, list[tuple[str, int]]],
    documents: int,
    similar: dict[str, list[tuple[str, float, int]]],
) -> None:
    """A word nothing knows is compared with the known words (trigram similarity); a close one
    with the same first letter is searched instead, weighted by how close it is."""
    # A word the German dictionary knows is no typo, only a word the index lacks: "Tische" is not
    # "tierisch", "betreiben" not "betreuen" (dev set: both pushed a wrong service up).
    unknown = {
        r.label: lexeme
        for r in resolved
        if not r.strong and len(r.label) >= TYPO_MIN_LENGTH and not r.known_word
        for lexeme, _ in found.get(r.label, [])[:1]
    }
    if not unknown:
        return
    for r in resolved:
        stem = unknown.get(r.label)
        if stem is None:
            continue
        candidates = [
            (lexeme, similarity, ndoc)
            for lexeme, similarity, ndoc in similar.get(stem, [])
            if lexeme[:1] == stem[:1] and abs(len(lexeme) - len(stem)) <= 3
        ]
        if not candidates:
            continue
        lexeme, similarity, ndoc = candidates[0]
        r.exact.append([lexeme])
        r.typo = True
        r.weight = _idf(documents, ndoc) * similarity
        r.shown.append(f"{lexeme}?")
