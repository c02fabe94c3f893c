-- migrate:up

-- Where an imported article came from when the import created it, one row per article (decision
-- 024's fifth amendment): every section of a new article has the same origin, XZuFi object and
-- version, time and author, and what the import wrote equals what the source sent, so only the
-- hash per section differs (`written_hashes`: section → hash). Eleven rows of
-- article_section_sources a service, each with its foreign-key check and index entry, were the
-- import's dearest statement. A section's own row in article_section_sources, written as soon as
-- anything about it differs (a re-import, an editor's override, a flagged source change), takes
-- precedence over this one; readers see one row per section either way (`section_sources`).
CREATE TABLE article_sources (
    tenant_id         uuid NOT NULL REFERENCES tenants (id),
    article_id        uuid NOT NULL,
    origin            text NOT NULL CHECK (origin IN ('xzufi', 'web_page')),
    reference         text CHECK (length(reference) <= 1000),
    reference_version text CHECK (length(reference_version) <= 100),
    written_hashes    jsonb NOT NULL CHECK (jsonb_typeof(written_hashes) = 'object'),
    changed_at        timestamptz NOT NULL,
    changed_by        text NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, article_id),
    FOREIGN KEY (tenant_id, article_id) REFERENCES articles (tenant_id, id)
);

ALTER TABLE article_sources ENABLE ROW LEVEL SECURITY;
ALTER TABLE article_sources FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON article_sources
    USING (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]))
    WITH CHECK (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]));
-- As for article_section_sources: a town reads where its operator's shared articles came from.
CREATE POLICY shared_read ON article_sources FOR SELECT
    USING (tenant_id = ANY ((SELECT app_shared_owner_ids())::uuid[])
           AND EXISTS (SELECT 1 FROM articles a
                       WHERE a.tenant_id = article_sources.tenant_id
                         AND a.id = article_sources.article_id AND a.shared
                         AND a.published_version IS NOT NULL));

-- Written once, when the import creates the article; later changes go to the section's own row.
GRANT SELECT, INSERT ON article_sources TO bs_app;

-- migrate:down
DROP TABLE article_sources;
