-- migrate:up

-- XZuFi import (decision 024). Everything here belongs to a tenant and has RLS forced.

-- What the operator has received from the 115 network / PVOG, object by object: the XZuFi id,
-- the version and a fingerprint of the content last taken (a re-import of the same content is
-- "unchanged" without touching the article), and what it became (an article of the operator or
-- of one town; a department of a town).
CREATE TABLE xzufi_objects (
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    kind             text NOT NULL CHECK (kind IN ('leistung', 'organisationseinheit')),
    xzufi_id         text NOT NULL CHECK (length(xzufi_id) BETWEEN 1 AND 200),
    version          text NOT NULL DEFAULT '',
    content_hash     text NOT NULL,
    target_tenant_id uuid NOT NULL REFERENCES tenants (id),
    article_id       uuid,
    department_id    uuid,
    leika_key        text CHECK (leika_key IS NULL OR leika_key ~ '^99[0-9]{12}$'),
    data             jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(data) = 'object'),
    status           text NOT NULL CHECK (status IN ('active', 'archived')),
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, kind, xzufi_id)
);
CREATE INDEX xzufi_objects_article ON xzufi_objects (tenant_id, article_id) WHERE article_id IS NOT NULL;

-- Where each section of an article came from, and when: the XZuFi object and its version, an
-- editor, or a town's web page. `imported_hash` is the section as the source last sent it,
-- `written_hash` as the import wrote it into the article: when the article's text no longer
-- matches `written_hash`, an editor has taken the section over, and a later change of the source
-- only raises `source_changed_at` ("source changed since your override") until an editor
-- confirms. Rows of a town's local version record the town's overrides of a shared article.
CREATE TABLE article_section_sources (
    tenant_id         uuid NOT NULL REFERENCES tenants (id),
    article_id        uuid NOT NULL,
    section           text NOT NULL CHECK (section ~ '^[a-z_]{1,40}$'),
    origin            text NOT NULL CHECK (origin IN ('xzufi', 'editor', 'web_page')),
    reference         text CHECK (length(reference) <= 1000),
    reference_version text CHECK (length(reference_version) <= 100),
    imported_hash     text,
    written_hash      text,
    changed_at        timestamptz NOT NULL,
    changed_by        text NOT NULL DEFAULT '',
    source_changed_at timestamptz,
    PRIMARY KEY (tenant_id, article_id, section),
    FOREIGN KEY (tenant_id, article_id) REFERENCES articles (tenant_id, id)
);
CREATE INDEX article_section_sources_changed ON article_section_sources (tenant_id)
    WHERE source_changed_at IS NOT NULL;

-- Search terms per service from the source (modulBegriffImKontext), kept apart from what
-- editors type so that search can weigh and show them per article and LeiKa key.
CREATE TABLE article_search_terms (
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
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

-- The operator's PVOG-style transfer: where to fetch, how to sign in (OAuth2 client
-- credentials; the secret sealed like webhook secrets), how often, and the cursor the next run
-- resumes from.
CREATE TABLE xzufi_transfers (
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    url              text NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 1000),
    token_url        text NOT NULL CHECK (token_url ~ '^https?://' AND length(token_url) <= 1000),
    client_id        text NOT NULL CHECK (length(client_id) BETWEEN 1 AND 200),
    client_secret    text NOT NULL CHECK (client_secret LIKE 'sealed:%'),
    scope            text NOT NULL DEFAULT '' CHECK (length(scope) <= 500),
    interval_minutes integer NOT NULL CHECK (interval_minutes BETWEEN 5 AND 10080),
    enabled          boolean NOT NULL DEFAULT true,
    cursor_url       text CHECK (length(cursor_url) <= 2000),
    next_index       bigint,
    next_run_at      timestamptz NOT NULL,
    last_run_at      timestamptz,
    last_outcome     text NOT NULL DEFAULT '' CHECK (length(last_outcome) <= 2000),
    last_report      jsonb,
    version          integer NOT NULL DEFAULT 1,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (tenant_id)
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['xzufi_objects', 'article_section_sources', 'article_search_terms',
                             'xzufi_transfers'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I
                            USING (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]))
                            WITH CHECK (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]))', t);
    END LOOP;
END $$;

-- A town reads where the sections of its operator's shared articles came from, and their terms.
CREATE POLICY shared_read ON article_section_sources FOR SELECT
    USING (tenant_id = ANY ((SELECT app_shared_owner_ids())::uuid[])
           AND EXISTS (SELECT 1 FROM articles a
                       WHERE a.tenant_id = article_section_sources.tenant_id
                         AND a.id = article_section_sources.article_id AND a.shared
                         AND a.published_version IS NOT NULL));
CREATE POLICY shared_read ON article_search_terms FOR SELECT
    USING (shared AND tenant_id = ANY ((SELECT app_shared_owner_ids())::uuid[]));

GRANT SELECT, INSERT, UPDATE ON xzufi_objects, article_section_sources TO bs_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON article_search_terms, xzufi_transfers TO bs_app;

-- migrate:down
DROP TABLE xzufi_transfers;
DROP TABLE article_search_terms;
DROP TABLE article_section_sources;
DROP TABLE xzufi_objects;
