-- migrate:up

-- Presence changes by subscription (decision 037): the worker announces a telephone event or an
-- own switch that has run out once, on one instance. The flag says it was announced; a new
-- event or switch clears it.
ALTER TABLE directory_presence_phone ADD COLUMN expiry_announced boolean NOT NULL DEFAULT false;
ALTER TABLE directory_presence_switch ADD COLUMN expiry_announced boolean NOT NULL DEFAULT false;
CREATE INDEX directory_presence_phone_unannounced ON directory_presence_phone (expires_at) WHERE NOT expiry_announced;
CREATE INDEX directory_presence_switch_unannounced ON directory_presence_switch (until) WHERE NOT expiry_announced;

-- A person's private number (a mobile for emergencies): not part of the person's record, read
-- only through its own audited route.
CREATE TABLE directory_private_numbers (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    person_id uuid NOT NULL,
    number    text NOT NULL CHECK (number ~ '^\+[1-9][0-9]{1,14}$'),
    PRIMARY KEY (tenant_id, person_id),
    FOREIGN KEY (tenant_id, person_id) REFERENCES directory_people (tenant_id, id) ON DELETE CASCADE
);

-- Who read which private number, when and how; append-only, and it outlives the person.
CREATE TABLE directory_private_number_reads (
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    id              uuid NOT NULL,
    person_id       uuid NOT NULL,
    actor_subject   text NOT NULL,
    actor_issuer    text NOT NULL,
    actor_tenant_id uuid NOT NULL,
    via             text NOT NULL CHECK (length(via) <= 200),
    at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX directory_private_number_reads_at ON directory_private_number_reads (tenant_id, at, id);

-- Department membership from a group claim of the town's identity provider: which claim, and
-- which group means which department.
CREATE TABLE directory_group_claims (
    tenant_id uuid NOT NULL REFERENCES tenants (id) PRIMARY KEY,
    claim     text NOT NULL CHECK (length(claim) BETWEEN 1 AND 200)
);
CREATE TABLE directory_department_groups (
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    group_name    text NOT NULL CHECK (length(group_name) BETWEEN 1 AND 255),
    department_id uuid NOT NULL,
    PRIMARY KEY (tenant_id, group_name),
    FOREIGN KEY (tenant_id, department_id) REFERENCES departments (tenant_id, id)
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['directory_private_numbers', 'directory_private_number_reads',
                             'directory_group_claims', 'directory_department_groups'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I
                            USING (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]))
                            WITH CHECK (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]))', t);
    END LOOP;
END $$;

-- Sign-in reads a town's group claim before any tenant is known: the owner (the definer
-- function below) may read every row, as for identity_issuers; bs_app stays under isolation.
CREATE POLICY sign_in_lookup ON directory_group_claims FOR SELECT TO CURRENT_USER USING (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON directory_private_numbers, directory_group_claims,
    directory_department_groups TO bs_app;
GRANT SELECT, INSERT ON directory_private_number_reads TO bs_app;

-- Sign-in learns the town's group claim with its issuers (the principal carries its values).
DROP FUNCTION auth_issuer_bindings(text);
CREATE FUNCTION auth_issuer_bindings(p_issuer text)
    RETURNS TABLE (tenant_id uuid, tenant_slug text, is_operator boolean, audience text, org_claim text,
                   org_value text, role_claim text, role_mapping jsonb, group_claim text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT i.tenant_id, t.slug, t.is_operator, i.audience, i.org_claim, i.org_value, i.role_claim,
               i.role_mapping, g.claim
        FROM identity_issuers i JOIN tenants t ON t.id = i.tenant_id
        LEFT JOIN directory_group_claims g ON g.tenant_id = i.tenant_id
        WHERE i.issuer = p_issuer AND t.status <> 'offboarded'
          AND (NOT app_tenant_scoped() OR i.tenant_id = ANY (app_tenant_ids()))
    $$;
REVOKE ALL ON FUNCTION auth_issuer_bindings(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth_issuer_bindings(text) TO bs_app;

-- migrate:down
DROP FUNCTION auth_issuer_bindings(text);
CREATE FUNCTION auth_issuer_bindings(p_issuer text)
    RETURNS TABLE (tenant_id uuid, tenant_slug text, is_operator boolean, audience text, org_claim text,
                   org_value text, role_claim text, role_mapping jsonb)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT i.tenant_id, t.slug, t.is_operator, i.audience, i.org_claim, i.org_value, i.role_claim,
               i.role_mapping
        FROM identity_issuers i JOIN tenants t ON t.id = i.tenant_id
        WHERE i.issuer = p_issuer AND t.status <> 'offboarded'
          AND (NOT app_tenant_scoped() OR i.tenant_id = ANY (app_tenant_ids()))
    $$;
REVOKE ALL ON FUNCTION auth_issuer_bindings(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth_issuer_bindings(text) TO bs_app;
DROP TABLE directory_department_groups, directory_group_claims, directory_private_number_reads,
    directory_private_numbers;
DROP INDEX directory_presence_switch_unannounced, directory_presence_phone_unannounced;
ALTER TABLE directory_presence_switch DROP COLUMN expiry_announced;
ALTER TABLE directory_presence_phone DROP COLUMN expiry_announced;
