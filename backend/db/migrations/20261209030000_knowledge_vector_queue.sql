-- migrate:up

-- Published search documents whose sentence vector the background worker is to make (decision
-- 024's second amendment): the XZuFi import's bulk path commits new articles searchable by
-- words at once and queues them here instead of running the encoder (~15 ms CPU a text) in the
-- import. An append-only queue: a document may be queued twice (a second import, a publish
-- meanwhile) and no insert ever waits on the worker's row locks; the worker claims rows by id
-- (`FOR UPDATE SKIP LOCKED`, so two workers take different rows), makes what is still stale
-- (the vectors' own check: no vector, other encoder, other text) and deletes exactly the rows it
-- claimed, so a row queued while it worked stays for the next round.
CREATE TABLE knowledge_vector_queue (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id        bigint GENERATED ALWAYS AS IDENTITY,
    doc_id    uuid NOT NULL,
    queued_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
-- The worker takes the oldest rows of all tenants first.
CREATE INDEX knowledge_vector_queue_order ON knowledge_vector_queue (id);

ALTER TABLE knowledge_vector_queue ENABLE ROW LEVEL SECURITY;
ALTER TABLE knowledge_vector_queue FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON knowledge_vector_queue
    USING (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]))
    WITH CHECK (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]));
-- UPDATE only for the claim: SELECT … FOR UPDATE needs it; nothing updates a queued row.
GRANT SELECT, INSERT, UPDATE, DELETE ON knowledge_vector_queue TO bs_app;

-- migrate:down
DROP TABLE knowledge_vector_queue;
