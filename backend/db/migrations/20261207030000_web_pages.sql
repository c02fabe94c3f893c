-- migrate:up

-- The towns' own web pages (issue 14 §2, decision 025): a site a town (or the operator) has
-- registered, and the pages the background worker fetched from it. Pages are searchable next to
-- articles but never published as articles themselves.
CREATE TABLE web_sites (
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    id             uuid NOT NULL,
    base_url       text NOT NULL CHECK (base_url ~ '^https?://' AND length(base_url) <= 2000),
    sitemap_url    text CHECK (sitemap_url ~ '^https?://' AND length(sitemap_url) <= 2000),
    start_urls     text[] NOT NULL DEFAULT '{}' CHECK (cardinality(start_urls) <= 50),
    allowed_hosts  text[] NOT NULL CHECK (cardinality(allowed_hosts) BETWEEN 1 AND 20),
    recrawl_hours  integer NOT NULL DEFAULT 24 CHECK (recrawl_hours BETWEEN 1 AND 720),
    active         boolean NOT NULL DEFAULT true,
    -- The worker claims a site by moving next_crawl_at on (a lease): no lock is held while it fetches.
    next_crawl_at  timestamptz NOT NULL,
    last_crawl_at  timestamptz,
    last_report    jsonb,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CHECK (sitemap_url IS NOT NULL OR cardinality(start_urls) > 0)
);
CREATE UNIQUE INDEX web_sites_base_url ON web_sites (tenant_id, base_url);
CREATE INDEX web_sites_due ON web_sites (next_crawl_at) WHERE active;

CREATE TABLE web_pages (
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    id             uuid NOT NULL,
    site_id        uuid NOT NULL,
    url            text NOT NULL CHECK (length(url) <= 2000),
    title          text NOT NULL DEFAULT '' CHECK (length(title) <= 500),
    text           text NOT NULL DEFAULT '',
    content_hash   text NOT NULL CHECK (content_hash ~ '^[0-9a-f]{64}$'),
    etag           text CHECK (length(etag) <= 500),
    last_modified  text CHECK (length(last_modified) <= 100),
    fetched_at     timestamptz NOT NULL,   -- last answer from the site (200 or 304)
    changed_at     timestamptz NOT NULL,   -- when the text last changed
    gone_at        timestamptz,            -- 404/410: marked, out of search, kept
    article_id     uuid,                   -- the draft an editor made from it
    search         tsvector GENERATED ALWAYS AS (
                       setweight(to_tsvector('kb_german', title), 'A') || setweight(to_tsvector('kb_german', text), 'B')
                   ) STORED,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, site_id) REFERENCES web_sites (tenant_id, id) ON DELETE CASCADE,
    UNIQUE (tenant_id, site_id, url)
);
CREATE INDEX web_pages_search ON web_pages USING gin (search) WHERE gone_at IS NULL;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['web_sites', 'web_pages'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I
                            USING (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]))
                            WITH CHECK (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]))', t);
    END LOOP;
END $$;
-- An operator's pages are read by the towns it serves, like its shared articles.
CREATE POLICY shared_read ON web_pages FOR SELECT
    USING (tenant_id = ANY ((SELECT app_shared_owner_ids())::uuid[]));

GRANT SELECT, INSERT, UPDATE, DELETE ON web_sites, web_pages TO bs_app;

-- migrate:down
DROP TABLE web_pages;
DROP TABLE web_sites;
