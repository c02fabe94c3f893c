-- migrate:up

-- An article's imported search terms in one row (decision 024, branch importspeed7): `terms` as
-- sent (trimmed, each once, in the source's order) and `lowered`, the same through lower(), which
-- the search compares with the question's words. Three rows a bench service, each with its
-- foreign-key check, RLS check and three index entries, were the dearest part of the XZuFi bulk
-- import's write (scratch table, 100-service statements taken in turn: 58–72 µs a service as rows,
-- 25–30 µs as one row). Two indexes go: (tenant_id, leika_key), which no query used, and
-- lower(term), which the search could not use under row-level security (lower() is not
-- leakproof, so the policy is applied first and every readable row was filtered: EXPLAIN showed
-- a sequential scan of all rows); the search now filters a third of the rows, with one array
-- comparison each. Each term's length (1–100, trimmed) is checked where terms are read
-- (`xzufi_service`) and by the article input (`SearchTerm`); here only the arrays' shape.
ALTER TABLE article_search_terms NO FORCE ROW LEVEL SECURITY;  -- the owner reads every tenant's rows
CREATE TEMPORARY TABLE article_search_terms_before ON COMMIT DROP AS
    SELECT tenant_id, article_id, array_agg(term ORDER BY term) AS terms, min(leika_key) AS leika_key,
           bool_and(shared) AS shared
    FROM article_search_terms GROUP BY tenant_id, article_id;
DROP TABLE article_search_terms;

CREATE TABLE article_search_terms (
    tenant_id  uuid NOT NULL,
    article_id uuid NOT NULL,
    terms      text[] NOT NULL CHECK (cardinality(terms) BETWEEN 1 AND 50 AND array_position(terms, NULL) IS NULL),
    lowered    text[] NOT NULL CHECK (cardinality(lowered) = cardinality(terms)),
    leika_key  text CHECK (leika_key IS NULL OR leika_key ~ '^99[0-9]{12}$'),
    source     text NOT NULL CHECK (source IN ('xzufi')),
    shared     boolean NOT NULL,
    PRIMARY KEY (tenant_id, article_id),
    FOREIGN KEY (tenant_id, article_id) REFERENCES articles (tenant_id, id)
);
INSERT INTO article_search_terms (tenant_id, article_id, terms, lowered, leika_key, source, shared)
    SELECT tenant_id, article_id, terms, lower(terms::text)::text[], leika_key, 'xzufi', shared
    FROM article_search_terms_before;

ALTER TABLE article_search_terms ENABLE ROW LEVEL SECURITY;
ALTER TABLE article_search_terms FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON article_search_terms
    USING (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]))
    WITH CHECK (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]));
CREATE POLICY shared_read ON article_search_terms FOR SELECT
    USING (shared AND tenant_id = ANY ((SELECT app_shared_owner_ids())::uuid[]));
GRANT SELECT, INSERT, UPDATE, DELETE ON article_search_terms TO bs_app;

-- migrate:down
ALTER TABLE article_search_terms NO FORCE ROW LEVEL SECURITY;
CREATE TEMPORARY TABLE article_search_terms_after ON COMMIT DROP AS
    SELECT tenant_id, article_id, unnest(terms) AS term, leika_key, shared FROM article_search_terms;
DROP TABLE article_search_terms;
CREATE TABLE article_search_terms (
    tenant_id  uuid NOT NULL,
    article_id uuid NOT NULL,
    term       text NOT NULL CHECK (length(btrim(term)) BETWEEN 1 AND 100),
    leika_key  text CHECK (leika_key IS NULL OR leika_key ~ '^99[0-9]{12}$'),
    source     text NOT NULL CHECK (source IN ('xzufi')),
    shared     boolean NOT NULL,
    PRIMARY KEY (tenant_id, article_id, term),
    FOREIGN KEY (tenant_id, article_id) REFERENCES articles (tenant_id, id)
);
CREATE INDEX article_search_terms_key ON article_search_terms (tenant_id, leika_key);
CREATE INDEX article_search_terms_term ON article_search_terms (lower(term));
INSERT INTO article_search_terms (tenant_id, article_id, term, leika_key, source, shared)
    SELECT tenant_id, article_id, term, leika_key, 'xzufi', shared FROM article_search_terms_after;
ALTER TABLE article_search_terms ENABLE ROW LEVEL SECURITY;
ALTER TABLE article_search_terms FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON article_search_terms
    USING (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]))
    WITH CHECK (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]));
CREATE POLICY shared_read ON article_search_terms FOR SELECT
    USING (shared AND tenant_id = ANY ((SELECT app_shared_owner_ids())::uuid[]));
GRANT SELECT, INSERT, UPDATE, DELETE ON article_search_terms TO bs_app;
