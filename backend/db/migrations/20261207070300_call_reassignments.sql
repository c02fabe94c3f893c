-- migrate:up
-- A 115 call assigned to the wrong town moves again until it is invoiced (issue 17 §3): each
-- assignment after the first is an event naming who moved it, from where, to where and why.
-- Kept under the tenant whose centre recorded the call (calls.source_tenant_id, the operator).
CREATE TABLE call_reassignments (
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    id             uuid NOT NULL,
    call_id        uuid NOT NULL,
    from_tenant_id uuid NOT NULL REFERENCES tenants (id),
    to_tenant_id   uuid NOT NULL REFERENCES tenants (id),
    reassigned_by  text NOT NULL,
    reason         text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    reassigned_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX call_reassignments_call ON call_reassignments (tenant_id, call_id, reassigned_at);

ALTER TABLE call_reassignments ENABLE ROW LEVEL SECURITY;
ALTER TABLE call_reassignments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON call_reassignments
    USING (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]))
    WITH CHECK (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]));
GRANT SELECT, INSERT ON call_reassignments TO bs_app;

-- migrate:down
DROP TABLE call_reassignments;
