"""SQL for the search index (one row per published or working article and per LeiKa entry,
with its lexemes counted in `search_lexicon`) and the search itself; the LeiKa catalogue is in
`catalogue_repository`.

Explicit columns, $n parameters, the tenant always given; "visible" as in `repository`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from uuid import UUID

import asyncpg

from backend.knowledge.repository import VISIBLE


async def rebuild_lexicon(conn: asyncpg.Connection, tenant_id: UUID, shared: bool) -> None:
    """Recount the lexemes of a tenant's published documents (after a catalogue import)."""
    await conn.execute("DELETE FROM search_lexicon WHERE tenant_id = $1 AND shared = $2", tenant_id, shared)
    inner = (
        "SELECT tsv FROM knowledge_search WHERE tenant_id = "
        + _literal_uuid(tenant_id)
        + " AND view = 'published' AND shared = "
        + ("true" if shared else "false")
    )
    await conn.execute(
        """INSERT INTO search_lexicon (tenant_id, shared, lexeme, ndoc)
           SELECT $1::uuid, $2::boolean, word, ndoc FROM ts_stat($3)
           UNION ALL
           SELECT $1::uuid, $2::boolean, '', count(*) FROM knowledge_search
           WHERE tenant_id = $1::uuid AND view = 'published' AND shared = $2::boolean""",
        tenant_id,
        shared,
        inner,
    )


def _literal_uuid(value: UUID) -> str:
    return "'" + str(UUID(str(value))) + "'::uuid"


# ---------------------------------------------------------------------------------- search index


@dataclass(frozen=True, slots=True)
class SearchDocument:
    tenant_id: UUID
    view: str
    doc_id: UUID
    shared: bool
    article_kind: str
    leika_key: str | None
    status: str
    version: int
    title: str
    summary: str
    body: str
    terms: str  # search terms and compound parts
    context: str
    valid_from: date | None
    valid_until: date | None


_UPSERT_DOCUMENT = """
    INSERT INTO knowledge_search AS k (tenant_id, view, doc_id, source, shared, article_kind, leika_key, status,
                                       version, title, summary, body, title_words, valid_from, valid_until,
                                       tsv_a, tsv_b, tsv_c, tsv_d, tsv, updated_at)
    SELECT $1, $2, $3, 'article', $4, $5, $6, $7, $8, $9, $10, $11,
           greatest(1, length(t.a)), $14, $15, t.a, t.b, t.c, t.d,
           setweight(t.a, 'A') || setweight(t.b, 'B') || setweight(t.c, 'C') || setweight(t.d, 'D'), now()
    FROM (SELECT to_tsvector('kb_german', $9) AS a, to_tsvector('kb_german', $12) AS b,
                 to_tsvector('kb_german', $10 || ' ' || $13) AS c, to_tsvector('kb_german', $11) AS d) t
    ON CONFLICT (tenant_id, view, doc_id) DO UPDATE
        SET shared = EXCLUDED.shared, article_kind = EXCLUDED.article_kind, leika_key = EXCLUDED.leika_key,
            status = EXCLUDED.status, version = EXCLUDED.version, title = EXCLUDED.title, summary = EXCLUDED.summary,
            body = EXCLUDED.body, title_words = EXCLUDED.title_words, valid_from = EXCLUDED.valid_from,
            valid_until = EXCLUDED.valid_until, tsv_a = EXCLUDED.tsv_a, tsv_b = EXCLUDED.tsv_b, tsv_c = EXCLUDED.tsv_c,
            tsv_d = EXCLUDED.tsv_d, tsv = EXCLUDED.tsv, updated_at = now()"""


async def _lexicon_count(conn: asyncpg.Connection, tenant_id: UUID, view: str, doc_id: UUID, delta: int) -> None:
    """Add (+1) or remove (-1) one published document's lexemes from the lexicon."""
    if view != "published":
        return
    await conn.execute(
        """WITH doc AS (SELECT shared, tsv FROM knowledge_search WHERE tenant_id = $1 AND view = 'published'
                                                                  AND doc_id = $2),
                words AS (SELECT doc.shared, u.lexeme FROM doc, unnest(doc.tsv) u
                          UNION ALL SELECT doc.shared, '' FROM doc)
           INSERT INTO search_lexicon AS l (tenant_id, shared, lexeme, ndoc)
           SELECT $1, words.shared, words.lexeme, greatest($3, 0) FROM words
           ON CONFLICT (tenant_id, shared, lexeme) DO UPDATE SET ndoc = greatest(l.ndoc + $3, 0)""",
        tenant_id,
        doc_id,
        delta,
    )


async def upsert_document(conn: asyncpg.Connection, doc: SearchDocument) -> None:
    await _lexicon_count(conn, doc.tenant_id, doc.view, doc.doc_id, -1)
    await conn.execute(
        _UPSERT_DOCUMENT,
        doc.tenant_id,
        doc.view,
        doc.doc_id,
        doc.shared,
        doc.article_kind,
        doc.leika_key,
        doc.status,
        doc.version,
        doc.title,
        doc.summary,
        doc.body,
        doc.terms,
        doc.context,
        doc.valid_from,
        doc.valid_until,
    )
    await _lexicon_count(conn, doc.tenant_id, doc.view, doc.doc_id, +1)


async def add_published_documents(conn: asyncpg.Connection, docs: Sequence[SearchDocument]) -> None:
    """Search rows of new, published documents in one statement (the XZuFi bulk import): the
    published rows analysed as `_UPSERT_DOCUMENT` analyses one, the working rows copied from them
    (a published version's working row is the same but for the view and never shared: its words
    are not analysed twice), and their lexemes counted into the lexicon as `upsert_document`
    counts them one by one (the documents are new: nothing of theirs was counted before). One
    statement with the rows as arrays, not one execution per row: measured, the per-row
    executions and the three round trips per tenant cost more than the analysis itself. A
    document that exists already fails the lot (the caller then goes one by one)."""
    if not docs:
        return
    await conn.execute(
        """WITH d AS (
               SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::boolean[], $4::text[], $5::text[], $6::text[],
                                    $7::integer[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],
                                    $13::date[], $14::date[])
                   AS d (tenant_id, doc_id, shared, article_kind, leika_key, status, version, title, summary,
                         body, terms, context, valid_from, valid_until)),
           published AS (
               INSERT INTO knowledge_search (tenant_id, view, doc_id, source, shared, article_kind, leika_key, status,
                                             version, title, summary, body, title_words, valid_from, valid_until,
                                             tsv_a, tsv_b, tsv_c, tsv_d, tsv, updated_at)
               SELECT d.tenant_id, 'published', d.doc_id, 'article', d.shared, d.article_kind, d.leika_key, d.status,
                      d.version, d.title, d.summary, d.body, greatest(1, length(t.a)), d.valid_from, d.valid_until,
                      t.a, t.b, t.c, t.d,
                      setweight(t.a, 'A') || setweight(t.b, 'B') || setweight(t.c, 'C') || setweight(t.d, 'D'), now()
               FROM d CROSS JOIN LATERAL (
                   SELECT to_tsvector('kb_german', d.title) AS a, to_tsvector('kb_german', d.terms) AS b,
                          to_tsvector('kb_german', d.summary || ' ' || d.context) AS c,
                          to_tsvector('kb_german', d.body) AS d) t
               RETURNING tenant_id, doc_id, source, shared, article_kind, leika_key, status, version, title, summary,
                         body, title_words, valid_from, valid_until, tsv_a, tsv_b, tsv_c, tsv_d, tsv, updated_at),
           working AS (
               INSERT INTO knowledge_search (tenant_id, view, doc_id, source, shared, article_kind, leika_key, status,
                                             version, title, summary, body, title_words, valid_from, valid_until,
                                             tsv_a, tsv_b, tsv_c, tsv_d, tsv, updated_at)
               SELECT tenant_id, 'working', doc_id, source, false, article_kind, leika_key, status, version, title,
                      summary, body, title_words, valid_from, valid_until, tsv_a, tsv_b, tsv_c, tsv_d, tsv, updated_at
               FROM published),
           words AS (SELECT p.tenant_id, p.shared, u.lexeme FROM published p, unnest(p.tsv) u
                     UNION ALL SELECT p.tenant_id, p.shared, '' FROM published p)
           -- In lexeme order, as the one-by-one count takes them, so concurrent counts lock alike.
           INSERT INTO search_lexicon AS l (tenant_id, shared, lexeme, ndoc)
           SELECT tenant_id, shared, lexeme, count(*) FROM words
           GROUP BY tenant_id, shared, lexeme ORDER BY tenant_id, shared, lexeme
           ON CONFLICT (tenant_id, shared, lexeme) DO UPDATE SET ndoc = l.ndoc + EXCLUDED.ndoc""",
        [d.tenant_id for d in docs],
        [d.doc_id for d in docs],
        [d.shared for d in docs],
        [d.article_kind for d in docs],
        [d.leika_key for d in docs],
        [d.status for d in docs],
        [d.version for d in docs],
        [d.title for d in docs],
        [d.summary for d in docs],
        [d.body for d in docs],
        [d.terms for d in docs],
        [d.context for d in docs],
        [d.valid_from for d in docs],
        [d.valid_until for d in docs],
    )


async def delete_document(conn: asyncpg.Connection, tenant_id: UUID, view: str, doc_id: UUID) -> None:
    await _lexicon_count(conn, tenant_id, view, doc_id, -1)
    await conn.execute(
        "DELETE FROM knowledge_search WHERE tenant_id = $1 AND view = $2 AND doc_id = $3", tenant_id, view, doc_id
    )


async def lexicon_lookup(
    conn: asyncpg.Connection, town_id: UUID, owner_ids: Sequence[UUID], words: Sequence[str]
) -> tuple[dict[str, list[tuple[str, int]]], int]:
    """Each word's lexemes (as the index stems it) with their document frequency, and the
    number of documents, counted over what the town sees."""
    rows = await conn.fetch(
        f"""WITH input AS (SELECT w.word, u.lexeme FROM unnest($3::text[]) AS w(word)
                           LEFT JOIN LATERAL unnest(to_tsvector('kb_german', w.word)) AS u ON true),
                 lex AS (SELECT lexeme, sum(ndoc)::int AS ndoc FROM search_lexicon
                         WHERE {VISIBLE} AND lexeme IN (SELECT lexeme FROM input UNION ALL SELECT '')
                         GROUP BY lexeme)
            SELECT input.word, input.lexeme, coalesce(lex.ndoc, 0) AS ndoc FROM input
            LEFT JOIN lex ON lex.lexeme = input.lexeme
            UNION ALL
            SELECT NULL, '', coalesce((SELECT ndoc FROM lex WHERE lexeme = ''), 0)""",
        town_id,
        list(owner_ids),
        list(words),
    )
    found: dict[str, list[tuple[str, int]]] = {}
    documents = 0
    for row in rows:
        if row["word"] is None:
            documents = int(row["ndoc"])
            continue
        entries = found.setdefault(row["word"], [])
        if row["lexeme"] is not None:
            entries.append((row["lexeme"], int(row["ndoc"])))
    return found, documents


async def similar_lexemes(
    conn: asyncpg.Connection,
    town_id: UUID,
    owner_ids: Sequence[UUID],
    lexemes: Sequence[str],
    minimum: float,
    per_word: int = 2,
) -> dict[str, list[tuple[str, float, int]]]:
    """Known lexemes that look like each given one (trigram similarity): typo corrections."""
    rows = await conn.fetch(
        f"""SELECT q.lexeme AS input, c.lexeme, c.similarity, c.ndoc
            FROM unnest($3::text[]) AS q(lexeme)
            CROSS JOIN LATERAL (
                SELECT lexeme, similarity(lexeme, q.lexeme) AS similarity, sum(ndoc)::int AS ndoc
                FROM search_lexicon
                WHERE {VISIBLE} AND lexeme % q.lexeme AND lexeme <> '' AND ndoc > 0
                GROUP BY lexeme ORDER BY similarity(lexeme, q.lexeme) DESC, sum(ndoc) DESC LIMIT $5) c
            WHERE c.similarity >= $4""",
        town_id,
        list(owner_ids),
        list(lexemes),
        minimum,
        per_word,
    )
    found: dict[str, list[tuple[str, float, int]]] = {}
    for row in rows:
        found.setdefault(row["input"], []).append((row["lexeme"], float(row["similarity"]), int(row["ndoc"])))
    return found


# Typo candidates: the lexicon rows nearest by trigram distance (GiST, migration 20261208020000),
# then grouped over the town's tenants. A lexeme has a row per tenant that has it (a town sees 2-4),
# so 50 rows hold the nearest dozen lexemes; only more than that many equally near ones could make
# this differ from comparing all (which cost ~150 ms a word at 10^5 articles).
NEAREST_ROWS = 50


@dataclass(frozen=True, slots=True)
class Lexemes:
    found: dict[str, list[tuple[str, int]]]  # each word's lexemes with their document frequency
    documents: int  # documents the town sees
    similar: dict[str, list[tuple[str, float, int]]]  # typo candidates of the unknown lexemes


async def lexicon_with_typos(
    conn: asyncpg.Connection,
    town_id: UUID,
    owner_ids: Sequence[UUID],
    words: Sequence[str],
    minimum: float,
    min_length: int,
    per_word: int = 2,
) -> Lexemes:
    """`lexicon_lookup` and, in the same round trip, `similar_lexemes` of the lexemes of every word
    of `min_length` characters or more that has a lexeme no document has: the typo look-up was a
    statement of its own after the lexicon's. The search corrects fewer words (those whose concept
    no alternative finds), a subset of these. Nearest first by the trigram index (NEAREST_ROWS)."""
    rows = await conn.fetch(
        f"""WITH input AS (SELECT w.word, u.lexeme FROM unnest($3::text[]) AS w(word)
                           LEFT JOIN LATERAL unnest(to_tsvector('kb_german', w.word)) AS u ON true),
                 lex AS (SELECT lexeme, sum(ndoc)::int AS ndoc FROM search_lexicon
                         WHERE {VISIBLE} AND lexeme IN (SELECT lexeme FROM input UNION ALL SELECT '')
                         GROUP BY lexeme),
                 looked AS (SELECT input.word, input.lexeme, coalesce(lex.ndoc, 0) AS ndoc
                            FROM input LEFT JOIN lex ON lex.lexeme = input.lexeme),
                 unknown AS (SELECT DISTINCT l.lexeme FROM looked l
                             WHERE l.lexeme IS NOT NULL AND char_length(l.word) >= $5
                               AND EXISTS (SELECT 1 FROM looked m
                                           WHERE m.word = l.word AND m.lexeme IS NOT NULL AND m.ndoc <= 0))
            SELECT word, lexeme, ndoc, NULL::real AS similarity, NULL::text AS input FROM looked
            UNION ALL
            SELECT NULL, '', coalesce((SELECT ndoc FROM lex WHERE lexeme = ''), 0), NULL, NULL
            UNION ALL
            SELECT NULL, c.lexeme, c.ndoc, c.similarity, q.lexeme
            FROM unknown q
            CROSS JOIN LATERAL (
                SELECT n.lexeme, similarity(n.lexeme, q.lexeme) AS similarity, sum(n.ndoc)::int AS ndoc
                FROM (SELECT lexeme, ndoc FROM search_lexicon
                      WHERE {VISIBLE} AND lexeme <> '' AND ndoc > 0
                      ORDER BY lexeme <-> q.lexeme LIMIT $7) n
                WHERE similarity(n.lexeme, q.lexeme) >= $4
                GROUP BY n.lexeme ORDER BY similarity(n.lexeme, q.lexeme) DESC, sum(n.ndoc) DESC LIMIT $6) c""",
        town_id,
        list(owner_ids),
        list(words),
        minimum,
        min_length,
        per_word,
        NEAREST_ROWS,
    )
    found: dict[str, list[tuple[str, int]]] = {}
    similar: dict[str, list[tuple[str, float, int]]] = {}
    documents = 0
    for row in rows:
        if row["input"] is not None:
            similar.setdefault(row["input"], []).append((row["lexeme"], float(row["similarity"]), int(row["ndoc"])))
        elif row["word"] is None:
            documents = int(row["ndoc"])
        else:
            entries = found.setdefault(row["word"], [])
            if row["lexeme"] is not None:
                entries.append((row["lexeme"], int(row["ndoc"])))
    return Lexemes(found, documents, similar)


@dataclass(frozen=True, slots=True)
class SearchParams:
    town_id: UUID
    owner_ids: list[UUID]
    view: str
    exact: list[str | None]  # per concept: tsquery text of what the caller said (and its spellings)
    synonym: list[str | None]  # per concept: its synonyms
    weights: list[float]
    any_query: str | None  # union of every concept's alternatives (None: the meaning retriever's only)
    lexemes: list[str]  # every lexeme searched for (to count the title words found)
    today: date
    leika_group: str | None
    status: str | None
    sources: list[str]
    limit: int  # lexical hits wanted (one per service), in lexical order
    meaning_docs: list[UUID]  # the meaning retriever's candidates: searched whatever their words
    meaning_groups: list[str]  # their services (LeiKa key, or the document id): each gets a row
    # A bounded search (decision 035's amendment): the documents with a rare concept anywhere
    # (`rare_query`) and those with a common one in the title or search terms (`title_query`);
    # the services on the page are then completed with their other documents. Without
    # `title_query`, `rare_query` is `any_query` and the search reads every document it finds.
    rare_query: str | None = None
    title_query: str | None = None


def _field_factor(doc: str, query: str, a: float, b: float, c: float, d: float) -> str:
    return (
        f"CASE WHEN {query} IS NULL THEN 0 WHEN {doc}.tsv_a @@ {query} THEN {a} WHEN {doc}.tsv_b @@ {query} THEN {b} "
        f"WHEN {doc}.tsv_c @@ {query} THEN {c} WHEN {doc}.tsv_d @@ {query} THEN {d} ELSE 0 END::float8"
    )


def _factors(doc: str) -> str:
    """Per concept of the question (a row of `q`): where document `doc` has it, as a factor."""
    return f"""SELECT {_field_factor(doc, "q.exact", 1.0, 0.8, 0.45, 0.25)} AS exact,
                   {_field_factor(doc, "q.synonym", 1.0, 0.8, 0.45, 0.25)} AS synonym"""


# What a concept found only in the summary, the context or the body earns at most (the factors
# above: 0.45 said or 0.9 × 0.45 as a synonym), and the most a hit's own score is
# raised (a town's own article: 1.15 in `weighed` below). A document without a rare concept and
# without a common one in its title or search terms ranks at most at
# MAX_BOOST × OUTSIDE_TITLE_FACTOR × the common concepts' weights.
OUTSIDE_TITLE_FACTOR = 0.45
MAX_BOOST = 1.15

_CANDIDATE_COLUMNS = """s.tenant_id, s.doc_id, s.source, s.leika_key, s.title_words, length(s.title) AS title_length,
           s.tsv_a, s.tsv_b, s.tsv_c, s.tsv_d"""
_CANDIDATE_FILTER = f"""{VISIBLE.replace("tenant_id", "s.tenant_id").replace("shared", "s.shared")}
      AND s.view = $9
      AND (s.valid_from IS NULL OR s.valid_from <= $7) AND (s.valid_until IS NULL OR s.valid_until >= $7)
      AND ($8::text IS NULL OR s.leika_group = $8)
      AND ($10::text IS NULL OR s.status = $10)
      AND s.source = ANY($11::text[])"""
_TITLE_TERMS = "s.tsv_title_terms"  # title and search terms (migration 20261209040000, GIN)


def _scored(candidates: str) -> str:
    """The candidates' scores (narrow rows: what ranks them, not their text)."""
    return f"""
    SELECT c.tenant_id, c.doc_id, c.source, c.leika_key, c.title_words, c.title_length, m.score,
           (SELECT count(*) FROM unnest(c.tsv_a) u WHERE u.lexeme = ANY($15::text[]))::int AS title_found,
           (c.tenant_id = $1 AND c.source = 'article') AS own_article,
           EXISTS (SELECT 1 FROM articles lv
                   WHERE lv.tenant_id = $1 AND lv.kind = 'local_version' AND lv.published_version IS NOT NULL
                     AND lv.base_tenant_id = c.tenant_id AND lv.base_article_id = c.doc_id) AS has_local_version
    FROM {candidates} c
    CROSS JOIN LATERAL (
        SELECT coalesce(sum(q.w * greatest(f.exact, 0.9 * f.synonym)), 0) AS score
        FROM q CROSS JOIN LATERAL ({_factors("c")}) f
    ) m
    WHERE m.score > 0 OR c.doc_id = ANY($12::uuid[])"""


def _own_final(s: str) -> str:
    return f"""{s}.score
             * CASE WHEN {s}.own_article THEN {MAX_BOOST} WHEN {s}.has_local_version THEN 1.1
                    WHEN {s}.source = 'article' THEN 1.05 ELSE 1.0 END
             / (1.0 + 0.08 * greatest({s}.title_words - {s}.title_found, 0))
             * (1.0 - 0.0001 * least({s}.title_length, 300))"""


# Scoring: each concept counts its weight (IDF) times where it was found — title 1.0, search terms
# and compound parts of the title 0.8, summary/context 0.45, body 0.25; a synonym, a compound's
# parts or a verb's noun 0.9 of that. A town's own article counts more, then a shared
# article with the town's local version, then other articles, then catalogue entries; title words
# the question did not ask about count against a hit. One hit per LeiKa key: the town's own
# version wins, and an article ranks as well as the best entry of its key. Ties: the shorter title.
SEARCH_SQL = f"""
WITH q AS (
    SELECT c.ord, c.exact_text::tsquery AS exact, c.synonym_text::tsquery AS synonym, c.w
    FROM unnest($3::text[], $4::text[], $5::float8[]) WITH ORDINALITY AS c(exact_text, synonym_text, w, ord)
),
candidates AS (
    -- The documents with a rare word of the question (all words when the search is not bounded;
    -- the GIN index on tsv), those with a common one in the title or search terms (the GIN index
    -- on them), and the meaning retriever's candidates that have neither (the primary key):
    -- branches, since one condition "words OR candidate" can use no index (measured: a parallel
    -- sequential scan of every search row, ~300 ms at 10^5 articles).
    SELECT {_CANDIDATE_COLUMNS}
    FROM knowledge_search s
    WHERE {_CANDIDATE_FILTER} AND s.tsv @@ $16::tsquery
    UNION ALL
    SELECT {_CANDIDATE_COLUMNS}
    FROM knowledge_search s
    WHERE {_CANDIDATE_FILTER} AND {_TITLE_TERMS} @@ $17::tsquery AND NOT coalesce(s.tsv @@ $16::tsquery, false)
    UNION ALL
    SELECT {_CANDIDATE_COLUMNS}
    FROM knowledge_search s
    WHERE {_CANDIDATE_FILTER} AND s.doc_id = ANY($12::uuid[]) AND NOT coalesce(s.tsv @@ $16::tsquery, false)
      AND NOT coalesce({_TITLE_TERMS} @@ $17::tsquery, false)
),
found AS MATERIALIZED (
    -- Narrow rows from here on (a common word finds ~10^4 documents at 10^5 articles when the
    -- search is not bounded); materialised, so the title words found are counted once a row.
    {_scored("candidates")}
),
head_groups AS (
    -- A bounded search: the services of the lexical window and the meaning retriever's ...
    SELECT coalesce(f.leika_key, f.doc_id::text) AS group_key FROM found f
    GROUP BY 1 HAVING max(f.score) > 0
    ORDER BY max({_own_final("f")}) DESC FETCH FIRST ($14) ROWS WITH TIES
),
completion AS (
    -- ... with their other documents that have any word of the question, so that each service
    -- is represented and scored as an unbounded search would (the town's own article of a
    -- service may have only the common word).
    SELECT {_CANDIDATE_COLUMNS}
    FROM knowledge_search s
    WHERE $17::tsquery IS NOT NULL AND {_CANDIDATE_FILTER} AND s.tsv @@ $6::tsquery
      AND s.leika_key = ANY(ARRAY(SELECT group_key FROM head_groups UNION SELECT unnest($13::text[])))
      AND NOT EXISTS (SELECT 1 FROM found f WHERE f.tenant_id = s.tenant_id AND f.doc_id = s.doc_id)
),
scored AS (
    SELECT * FROM found
    UNION ALL
    {_scored("completion")}
),
weighed AS (
    SELECT s.*, {_own_final("s")} AS own_final
    FROM scored s
),
ranked AS (
    -- An article stands for its service: it ranks as well as the best document of its key.
    SELECT w.*, coalesce(w.leika_key, w.doc_id::text) AS group_key,
           max(w.score) OVER (PARTITION BY coalesce(w.leika_key, w.doc_id::text)) AS group_score,
           max(w.own_final) OVER (PARTITION BY coalesce(w.leika_key, w.doc_id::text)) AS final,
           row_number() OVER (
               PARTITION BY coalesce(w.leika_key, w.doc_id::text)
               ORDER BY w.own_article DESC, w.has_local_version DESC, (w.source = 'article') DESC, w.own_final DESC,
                        w.doc_id) AS rank_in_key
    FROM weighed w
),
numbered AS (
    -- Ties by the service's key, not by a random id: the same question ranks the same in every
    -- database, and a service comes before its own Verrichtungen (…000000 before …012000).
    SELECT r.*, row_number() OVER (ORDER BY r.group_score > 0 DESC, r.final DESC, r.group_key, r.doc_id) AS lexical_rank
    FROM ranked r WHERE r.rank_in_key = 1
),
page AS (
    -- The lexical hits wanted and the meaning retriever's services, nothing more: what explains a
    -- hit (factors per concept), its text and its snippet are worked out for these rows only.
    SELECT n.*, k.article_kind, k.status, k.title, k.summary, k.body, k.tsv_a, k.tsv_b, k.tsv_c, k.tsv_d
    FROM numbered n
    JOIN knowledge_search k ON k.tenant_id = n.tenant_id AND k.view = $9 AND k.doc_id = n.doc_id
    WHERE (n.group_score > 0 AND n.lexical_rank <= $14) OR n.group_key = ANY($13::text[])
)
SELECT p.tenant_id, p.doc_id, p.source, p.article_kind, p.leika_key, p.status, p.title, p.summary, p.final,
       x.strong_factors, p.title_words, p.title_found, p.has_local_version,
       p.group_key, (p.group_score > 0) AS lexical, p.lexical_rank,
       coalesce(ts_headline('kb_german', CASE WHEN p.body <> '' THEN p.body ELSE p.summary END, $6::tsquery,
                   'StartSel=' || chr(2) || ', StopSel=' || chr(3)
                   || ', MaxWords=30, MinWords=12, ShortWord=3, MaxFragments=1, FragmentDelimiter=" … "'),
                left(CASE WHEN p.body <> '' THEN p.body ELSE p.summary END, 200)) AS snippet
FROM page p
CROSS JOIN LATERAL (
    SELECT array_agg(greatest(f.exact, f.synonym) ORDER BY q.ord) AS strong_factors
    FROM q CROSS JOIN LATERAL ({_factors("p")}) f
) x
ORDER BY p.lexical_rank
"""


async def search(conn: asyncpg.Connection, p: SearchParams) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            SEARCH_SQL,
            p.town_id,
            p.owner_ids,
            p.exact,
            p.synonym,
            p.weights,
            p.any_query,
            p.today,
            p.leika_group,
            p.view,
            p.status,
            p.sources,
            p.meaning_docs,
            p.meaning_groups,
            p.limit,
            p.lexemes,
            p.rare_query if p.title_query is not None else p.any_query,
            p.title_query,
        )
    )


async def search_by_key(
    conn: asyncpg.Connection,
    town_id: UUID,
    owner_ids: Sequence[UUID],
    view: str,
    prefix: str,
    today: date,
    status: str | None,
    sources: Sequence[str],
    offset: int,
    limit: int,
) -> list[asyncpg.Record]:
    """Documents whose LeiKa key starts with `prefix` (a whole key: exactly that service)."""
    return list(
        await conn.fetch(
            f"""WITH hits AS (
                SELECT s.tenant_id, s.doc_id, s.source, s.article_kind, s.leika_key, s.status, s.title, s.summary,
                       s.body,
                       (s.tenant_id = $1 AND s.source = 'article') AS own_article,
                       EXISTS (SELECT 1 FROM articles lv
                               WHERE lv.tenant_id = $1 AND lv.kind = 'local_version'
                                 AND lv.published_version IS NOT NULL
                                 AND lv.base_tenant_id = s.tenant_id AND lv.base_article_id = s.doc_id)
                           AS has_local_version
                FROM knowledge_search s
                WHERE {VISIBLE.replace("tenant_id", "s.tenant_id").replace("shared", "s.shared")}
                  AND s.view = $3 AND s.leika_key LIKE $4 || '%'
                  AND (s.valid_from IS NULL OR s.valid_from <= $5) AND (s.valid_until IS NULL OR s.valid_until >= $5)
                  AND ($6::text IS NULL OR s.status = $6) AND s.source = ANY($7::text[])),
            ranked AS (
                SELECT h.*, row_number() OVER (PARTITION BY h.leika_key
                                                ORDER BY h.own_article DESC, h.has_local_version DESC,
                                                         (h.source = 'article') DESC, h.doc_id) AS rank_in_key
                FROM hits h)
            SELECT tenant_id, doc_id, source, article_kind, leika_key, status, title, summary, has_local_version,
                   left(CASE WHEN body <> '' THEN body ELSE summary END, 200) AS snippet
            FROM ranked WHERE rank_in_key = 1
            ORDER BY length(leika_key) - length(rtrim(leika_key, '0')) DESC, leika_key
            OFFSET $8 LIMIT $9""",
            town_id,
            list(owner_ids),
            view,
            prefix,
            today,
            status,
            list(sources),
            offset,
            limit,
        )
    )
