-- migrate:up

-- The search reads the documents that have a common word of the question ("beantragen", "Antrag":
-- ~18,000 of 10^5 articles) only where that word can still put them into the lexical top 30: in
-- the title or the search terms (decision 035's amendment). Elsewhere (summary, body) such a
-- word scores at most 0.45 of its weight, which the search compares with the 30th hit it found.
-- A stored column, not an index on the expression: `tsvector || tsvector` is not leakproof, so
-- under row-level security PostgreSQL would not use such an index (measured: a sequential scan).
ALTER TABLE knowledge_search
    ADD COLUMN tsv_title_terms tsvector GENERATED ALWAYS AS (tsv_a || tsv_b) STORED;
CREATE INDEX knowledge_search_tsv_title_terms ON knowledge_search USING gin (tsv_title_terms);

-- migrate:down
DROP INDEX knowledge_search_tsv_title_terms;
ALTER TABLE knowledge_search DROP COLUMN tsv_title_terms;
