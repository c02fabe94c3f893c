-- migrate:up

-- Knowledge base: articles with immutable versions, the LeiKa catalogue, and a search index.
--
-- Tenancy. Local articles belong to one tenant. Shared articles, and the operator's copy of the
-- LeiKa catalogue, belong to the operator (tenant_id = the operator) and are also visible to
-- principals acting for a client tenant that has an agreement with that operator active today.
-- Each table therefore has two permissive policies:
--   tenant_isolation  (all commands): tenant_id is one of the transaction's tenants;
--   shared_read       (SELECT only):  the row is shared and its owner operates for one of them.
-- Writes stay confined to the transaction's own tenants: a town can read the operator's shared
-- article but never change or delete it (no UPDATE/DELETE policy covers it).

-- Operators serving any of the given tenants today (same rule as auth_client_tenant_ids).
CREATE FUNCTION knowledge_shared_owner_ids(p_tenants uuid[]) RETURNS uuid[]
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT coalesce(array_agg(DISTINCT a.operator_tenant_id), '{}')
        FROM agreements a JOIN tenants t ON t.id = a.tenant_id
        WHERE a.tenant_id = ANY (p_tenants)
          AND a.starts_on <= (now() AT TIME ZONE 'Europe/Berlin')::date
          AND (a.ends_on IS NULL OR (now() AT TIME ZONE 'Europe/Berlin')::date <= a.ends_on)
          AND t.status <> 'offboarded'
    $$;

-- The operators whose shared knowledge this transaction may read.
CREATE FUNCTION app_shared_owner_ids() RETURNS uuid[]
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT knowledge_shared_owner_ids(app_tenant_ids()) $$;

-- German full text with accents removed before stemming: Straße, Strasse and strasse meet.
CREATE TEXT SEARCH CONFIGURATION kb_german (COPY = german);
ALTER TEXT SEARCH CONFIGURATION kb_german
    ALTER MAPPING FOR asciiword, asciihword, hword_asciipart, word, hword, hword_part WITH unaccent, german_stem;

-- The LeiKa catalogue as the operator holds it; articles attach to its keys.
CREATE TABLE leika_services (
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    leika_key      text NOT NULL CHECK (leika_key ~ '^99[0-9]{12}$'),
    id             uuid NOT NULL,
    name           text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 500),
    typisierung    text NOT NULL DEFAULT '',
    ozg_service    text NOT NULL DEFAULT '',
    ozg_id         text,
    life_situation text NOT NULL DEFAULT '',
    legal_basis    text NOT NULL DEFAULT '',
    active         boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, leika_key),
    UNIQUE (tenant_id, id)
);

CREATE TABLE articles (
    tenant_id         uuid NOT NULL REFERENCES tenants (id),
    id                uuid NOT NULL,
    kind              text NOT NULL CHECK (kind IN ('local', 'shared', 'local_version')),
    shared            boolean GENERATED ALWAYS AS (kind = 'shared') STORED,
    base_tenant_id    uuid,
    base_article_id   uuid,
    external_id       text CHECK (external_id IS NULL OR length(external_id) BETWEEN 1 AND 200),
    status            text NOT NULL CHECK (status IN ('draft', 'in_review', 'published', 'archived')),
    latest_version    integer NOT NULL CHECK (latest_version >= 1),
    published_version integer CHECK (published_version IS NULL OR published_version <= latest_version),
    created_at        timestamptz NOT NULL DEFAULT now(),
    created_by        text NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, external_id),
    CHECK ((kind = 'local_version') = (base_article_id IS NOT NULL AND base_tenant_id IS NOT NULL)),
    FOREIGN KEY (base_tenant_id, base_article_id) REFERENCES articles (tenant_id, id)
);
-- One local version per town and shared article.
CREATE UNIQUE INDEX articles_local_version ON articles (tenant_id, base_tenant_id, base_article_id)
    WHERE kind = 'local_version';
CREATE INDEX articles_base ON articles (base_tenant_id, base_article_id) WHERE kind = 'local_version';

-- Every change is a new row; rows are never updated or deleted (no grant, and a trigger).
CREATE TABLE article_versions (
    tenant_id        uuid NOT NULL,
    article_id       uuid NOT NULL,
    version          integer NOT NULL CHECK (version >= 1),
    status           text NOT NULL CHECK (status IN ('draft', 'in_review', 'published', 'archived')),
    title            text CHECK (title IS NULL OR length(btrim(title)) BETWEEN 1 AND 200),
    summary          text,
    leika_key        text CHECK (leika_key IS NULL OR leika_key ~ '^99[0-9]{12}$'),
    sections         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(sections) = 'object'),
    overrides        jsonb CHECK (overrides IS NULL OR jsonb_typeof(overrides) = 'object'),
    search_terms     text[] NOT NULL DEFAULT '{}',
    review_due       date,
    valid_from       date,
    valid_until      date CHECK (valid_until IS NULL OR valid_from IS NULL OR valid_until >= valid_from),
    change_note      text NOT NULL DEFAULT '',
    author           text NOT NULL,
    author_tenant_id uuid NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, article_id, version),
    FOREIGN KEY (tenant_id, article_id) REFERENCES articles (tenant_id, id)
);

CREATE FUNCTION article_versions_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'article versions are immutable; add a new version instead' USING ERRCODE = 'P0001';
END $$;
CREATE TRIGGER article_versions_immutable BEFORE UPDATE OR DELETE ON article_versions
    FOR EACH ROW EXECUTE FUNCTION article_versions_are_immutable();

-- What search reads: one row per searchable document and view. `published` holds what agents
-- see (the published version of each article, and every active catalogue entry); `working`
-- holds the latest version of each article with its status, for editors.
CREATE TABLE knowledge_search (
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    view         text NOT NULL CHECK (view IN ('published', 'working')),
    doc_id       uuid NOT NULL,
    source       text NOT NULL CHECK (source IN ('article', 'service')),
    shared       boolean NOT NULL,
    article_kind text CHECK (article_kind IS NULL OR article_kind IN ('local', 'shared')),
    leika_key    text,
    leika_group  text GENERATED ALWAYS AS (substr(leika_key, 3, 3)) STORED,
    status       text NOT NULL,
    version      integer,
    title        text NOT NULL,
    summary      text NOT NULL DEFAULT '',
    body         text NOT NULL DEFAULT '',
    title_words  integer NOT NULL DEFAULT 1,
    valid_from   date,
    valid_until  date,
    tsv_a        tsvector NOT NULL,  -- title
    tsv_b        tsvector NOT NULL,  -- search terms, compound parts of the title
    tsv_c        tsvector NOT NULL,  -- summary, catalogue context (OZG service, life situation)
    tsv_d        tsvector NOT NULL,  -- body
    tsv          tsvector NOT NULL,  -- all of them, weighted A-D
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, view, doc_id)
);
CREATE INDEX knowledge_search_tsv ON knowledge_search USING gin (tsv);
CREATE INDEX knowledge_search_key ON knowledge_search (leika_key text_pattern_ops);

-- Words of the published documents with their document frequency, per owner and sharedness:
-- weights rare words higher (IDF) and corrects typos (trigram). The empty lexeme counts documents.
CREATE TABLE search_lexicon (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    shared    boolean NOT NULL,
    lexeme    text NOT NULL,
    ndoc      integer NOT NULL CHECK (ndoc >= 0),
    PRIMARY KEY (tenant_id, shared, lexeme)
);
CREATE INDEX search_lexicon_trgm ON search_lexicon USING gin (lexeme gin_trgm_ops);

-- Synonyms editors add for their tenant (an operator's apply to all its clients).
CREATE TABLE search_synonyms (
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    id         uuid NOT NULL,
    term       text NOT NULL CHECK (length(btrim(term)) BETWEEN 2 AND 100),
    synonyms   text[] NOT NULL CHECK (cardinality(synonyms) BETWEEN 1 AND 30),
    shared     boolean NOT NULL DEFAULT true,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, term)
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['leika_services', 'articles', 'article_versions', 'knowledge_search',
                             'search_lexicon', 'search_synonyms'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I
                            USING (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]))
                            WITH CHECK (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]))', t);
    END LOOP;
END $$;

-- Shared rows: readable by principals acting for a client of the owning operator (published
-- content only: drafts of shared articles, and their `working` search rows, stay the operator's).
CREATE POLICY shared_read ON leika_services FOR SELECT
    USING (tenant_id = ANY ((SELECT app_shared_owner_ids())::uuid[]));
CREATE POLICY shared_read ON articles FOR SELECT
    USING (shared AND published_version IS NOT NULL AND tenant_id = ANY ((SELECT app_shared_owner_ids())::uuid[]));
CREATE POLICY shared_read ON article_versions FOR SELECT
    USING (status IN ('published', 'archived')
           AND tenant_id = ANY ((SELECT app_shared_owner_ids())::uuid[])
           AND EXISTS (SELECT 1 FROM articles a
                       WHERE a.tenant_id = article_versions.tenant_id AND a.id = article_versions.article_id
                         AND a.shared));
CREATE POLICY shared_read ON knowledge_search FOR SELECT
    USING (shared AND tenant_id = ANY ((SELECT app_shared_owner_ids())::uuid[]));
CREATE POLICY shared_read ON search_lexicon FOR SELECT
    USING (shared AND tenant_id = ANY ((SELECT app_shared_owner_ids())::uuid[]));
CREATE POLICY shared_read ON search_synonyms FOR SELECT
    USING (shared AND tenant_id = ANY ((SELECT app_shared_owner_ids())::uuid[]));

REVOKE ALL ON FUNCTION knowledge_shared_owner_ids(uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION knowledge_shared_owner_ids(uuid[]), app_shared_owner_ids() TO bs_app;
GRANT SELECT, INSERT, UPDATE ON leika_services, articles TO bs_app;
GRANT SELECT, INSERT ON article_versions TO bs_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON knowledge_search, search_lexicon, search_synonyms TO bs_app;

-- migrate:down
DROP TABLE search_synonyms;
DROP TABLE search_lexicon;
DROP TABLE knowledge_search;
DROP TABLE article_versions;
DROP FUNCTION article_versions_are_immutable();
DROP TABLE articles;
DROP TABLE leika_services;
DROP TEXT SEARCH CONFIGURATION kb_german;
DROP FUNCTION app_shared_owner_ids();
DROP FUNCTION knowledge_shared_owner_ids(uuid[]);
