-- migrate:up

-- What the meaning retriever compares (decision 026): one sentence vector per published search
-- document (article or catalogue entry), made by the encoder named in `encoder` from the text
-- whose md5 is `text_md5`. A row whose encoder or text no longer matches is made again; a search
-- document that goes (archived article, withdrawn catalogue entry) takes its vector with it.
CREATE TABLE knowledge_vectors (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    view      text NOT NULL DEFAULT 'published' CHECK (view = 'published'),
    doc_id    uuid NOT NULL,
    shared    boolean NOT NULL,
    leika_key text,
    encoder   text NOT NULL CHECK (length(encoder) BETWEEN 1 AND 200),
    text_md5  text NOT NULL,
    vector    bytea NOT NULL,  -- float32, little-endian, unit length
    PRIMARY KEY (tenant_id, doc_id),
    FOREIGN KEY (tenant_id, view, doc_id) REFERENCES knowledge_search (tenant_id, view, doc_id) ON DELETE CASCADE
);

ALTER TABLE knowledge_vectors ENABLE ROW LEVEL SECURITY;
ALTER TABLE knowledge_vectors FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON knowledge_vectors
    USING (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]))
    WITH CHECK (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]));
-- Shared catalogue entries and shared articles: readable by the operator's clients, as their
-- search rows are.
CREATE POLICY shared_read ON knowledge_vectors FOR SELECT
    USING (shared AND tenant_id = ANY ((SELECT app_shared_owner_ids())::uuid[]));
GRANT SELECT, INSERT, UPDATE, DELETE ON knowledge_vectors TO bs_app;

-- migrate:down
DROP TABLE knowledge_vectors;
