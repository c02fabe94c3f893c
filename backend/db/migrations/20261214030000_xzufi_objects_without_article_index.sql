-- migrate:up

-- No query reads received objects by the article they became (they are read by kind and XZuFi
-- id, offices by the services they name), no foreign key points at them, and the index was keyed
-- by the operator, not by the article's own tenant, so it could not find a town's article's
-- object either. Every new service paid an index entry for it in the XZuFi bulk import
-- (decision 024, branch importspeed7).
DROP INDEX xzufi_objects_article;

-- migrate:down
CREATE INDEX xzufi_objects_article ON xzufi_objects (tenant_id, article_id) WHERE article_id IS NOT NULL;
