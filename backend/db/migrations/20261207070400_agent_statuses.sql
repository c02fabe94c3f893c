-- migrate:up
-- The centre live (issue 17 §5): each agent's client says whether its agent is available, in
-- wrap-up or away; talking is read from the calls (answered, not ended). Keyed by the agent id
-- the telephone system reports on call events, under the tenant the agent works for (its home).
CREATE TABLE agent_statuses (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    agent     text NOT NULL CHECK (length(agent) BETWEEN 1 AND 100),
    status    text NOT NULL CHECK (status IN ('available', 'wrap_up', 'away', 'signed_out')),
    since     timestamptz NOT NULL,
    set_by    text NOT NULL,
    PRIMARY KEY (tenant_id, agent)
);
ALTER TABLE agent_statuses ENABLE ROW LEVEL SECURITY;
ALTER TABLE agent_statuses FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON agent_statuses
    USING (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]))
    WITH CHECK (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]));
GRANT SELECT, INSERT, UPDATE ON agent_statuses TO bs_app;

-- Calls still waiting or talking, found without reading the day's finished calls.
CREATE INDEX calls_open ON calls (tenant_id, offered_at) WHERE ended_at IS NULL;

-- migrate:down
DROP INDEX calls_open;
DROP TABLE agent_statuses;
