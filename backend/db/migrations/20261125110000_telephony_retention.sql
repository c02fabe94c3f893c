-- migrate:up

-- Per-tenant telephony settings. Caller numbers are personal data: the background worker erases
-- them from a tenant's calls once they are older than the tenant's retention (no row: 90 days).
CREATE TABLE telephony_settings (
    tenant_id             uuid NOT NULL REFERENCES tenants (id),
    caller_retention_days integer NOT NULL DEFAULT 90 CHECK (caller_retention_days BETWEEN 1 AND 3650),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    updated_by            text,
    PRIMARY KEY (tenant_id)
);

ALTER TABLE telephony_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE telephony_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON telephony_settings
    USING (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]))
    WITH CHECK (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]));

GRANT SELECT, INSERT, UPDATE ON telephony_settings TO bs_app;

-- 115 with an ambiguous caller area: the call is stored under the operator until an agent picks
-- one of the candidate towns; the move is recorded on the call (from whom, by whom, when).
ALTER TABLE calls
    ADD COLUMN tenant_assigned_from uuid REFERENCES tenants (id),
    ADD COLUMN tenant_assigned_by   text,
    ADD COLUMN tenant_assigned_at   timestamptz,
    ADD CONSTRAINT calls_tenant_assignment_complete
        CHECK ((tenant_assigned_from IS NULL) = (tenant_assigned_at IS NULL)
               AND (tenant_assigned_from IS NULL) = (tenant_assigned_by IS NULL));

-- migrate:down
ALTER TABLE calls
    DROP CONSTRAINT calls_tenant_assignment_complete,
    DROP COLUMN tenant_assigned_at,
    DROP COLUMN tenant_assigned_by,
    DROP COLUMN tenant_assigned_from;
DROP TABLE telephony_settings;
