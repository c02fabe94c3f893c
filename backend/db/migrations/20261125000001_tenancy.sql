-- migrate:up

-- Row-level security reads the tenants a transaction may touch from one transaction-local
-- setting, written only by backend.db.tenancy.tenant_transaction(). The sub-select in each
-- policy makes PostgreSQL evaluate it once per query, not once per row.
CREATE FUNCTION app_tenant_ids() RETURNS uuid[]
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT coalesce(nullif(current_setting('app.tenant_ids', true), ''), '{}')::uuid[] $$;

-- Tenants are the root of tenancy: a tenant row is visible to the tenant itself and to the
-- principals acting for it. (Citus: a reference table.)
CREATE TABLE tenants (
    id            uuid PRIMARY KEY,
    slug          text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(slug) <= 63),
    name          text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    kind          text NOT NULL CHECK (kind IN ('district', 'town', 'municipality', 'federal', 'other')),
    is_operator   boolean NOT NULL DEFAULT false,
    ags           text CHECK (ags ~ '^[0-9]{8}$' OR ags ~ '^[0-9]{5}$'),
    federal_state text NOT NULL CHECK (federal_state ~ '^[A-Z]{2}$'),
    time_zone     text NOT NULL DEFAULT 'Europe/Berlin',
    service_hours jsonb NOT NULL,
    leitweg_id    text,
    status        text NOT NULL DEFAULT 'onboarding' CHECK (status IN ('onboarding', 'active', 'offboarded')),
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (id = ANY ((SELECT app_tenant_ids())::uuid[]))
    WITH CHECK (id = ANY ((SELECT app_tenant_ids())::uuid[]));

CREATE TABLE closing_days (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    day       date NOT NULL,
    name      text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    PRIMARY KEY (tenant_id, day)
);

CREATE TABLE departments (
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    id         uuid NOT NULL,
    name       text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    email      text,
    phone      text,
    active     boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);

-- Identity settings: which OIDC issuers a tenant trusts, and how their claims map to our roles.
CREATE TABLE identity_issuers (
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    id           uuid NOT NULL,
    issuer       text NOT NULL CHECK (issuer ~ '^https?://'),
    audience     text NOT NULL CHECK (length(audience) BETWEEN 1 AND 500),
    org_claim    text,
    org_value    text,
    role_claim   text NOT NULL DEFAULT 'roles',
    role_mapping jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(role_mapping) = 'object'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CHECK ((org_claim IS NULL) = (org_value IS NULL))
);
-- One (issuer, organisation) pair names exactly one tenant.
CREATE UNIQUE INDEX identity_issuers_issuer_org ON identity_issuers (issuer, coalesce(org_value, ''));

-- Agreement between the operator and a client tenant; owned by the client (tenant_id).
CREATE TABLE agreements (
    tenant_id            uuid NOT NULL REFERENCES tenants (id),
    id                   uuid NOT NULL,
    operator_tenant_id   uuid NOT NULL REFERENCES tenants (id),
    starts_on            date NOT NULL,
    initial_term_months  integer NOT NULL DEFAULT 24 CHECK (initial_term_months BETWEEN 1 AND 240),
    renewal_term_months  integer NOT NULL DEFAULT 12 CHECK (renewal_term_months BETWEEN 1 AND 120),
    notice_period_months integer NOT NULL DEFAULT 6 CHECK (notice_period_months BETWEEN 0 AND 24),
    ends_on              date CHECK (ends_on IS NULL OR ends_on >= starts_on),
    scope_notes          text NOT NULL DEFAULT '',
    version              integer NOT NULL DEFAULT 1,
    created_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CHECK (tenant_id <> operator_tenant_id)
);
CREATE INDEX agreements_operator ON agreements (operator_tenant_id, starts_on);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['closing_days', 'departments', 'identity_issuers'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I
                            USING (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]))
                            WITH CHECK (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]))', t);
    END LOOP;
END $$;

ALTER TABLE agreements ENABLE ROW LEVEL SECURITY;
ALTER TABLE agreements FORCE ROW LEVEL SECURITY;
-- Both parties see an agreement; only principals acting for the client may change it.
CREATE POLICY tenant_isolation ON agreements
    USING (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]) OR operator_tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]))
    WITH CHECK (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]));

-- Sign-in must find the tenant of an issuer before any tenant is known. These functions run
-- as the owner (SECURITY DEFINER) and the owner alone gets a read-only policy for them.
CREATE POLICY sign_in_lookup ON tenants FOR SELECT TO CURRENT_USER USING (true);
CREATE POLICY sign_in_lookup ON identity_issuers FOR SELECT TO CURRENT_USER USING (true);
CREATE POLICY sign_in_lookup ON agreements FOR SELECT TO CURRENT_USER USING (true);

CREATE FUNCTION auth_issuer_bindings(p_issuer text)
    RETURNS TABLE (tenant_id uuid, tenant_slug text, audience text, org_claim text, org_value text,
                   role_claim text, role_mapping jsonb)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT i.tenant_id, t.slug, i.audience, i.org_claim, i.org_value, i.role_claim, i.role_mapping
        FROM identity_issuers i JOIN tenants t ON t.id = i.tenant_id
        WHERE i.issuer = p_issuer AND t.status <> 'offboarded'
    $$;

-- Client tenants an operator acts for on a day: the agreement is active (the same rule as
-- backend.tenants.schemas.Agreement.is_active_on) and the client is not offboarded.
CREATE FUNCTION auth_client_tenant_ids(p_operator uuid, p_on date) RETURNS uuid[]
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT coalesce(array_agg(DISTINCT a.tenant_id), '{}')
        FROM agreements a JOIN tenants t ON t.id = a.tenant_id
        WHERE a.operator_tenant_id = p_operator
          AND a.starts_on <= p_on AND (a.ends_on IS NULL OR p_on <= a.ends_on)
          AND t.status <> 'offboarded'
    $$;

-- Platform admins act for every tenant.
CREATE FUNCTION auth_all_tenant_ids() RETURNS uuid[]
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$ SELECT coalesce(array_agg(id), '{}') FROM tenants $$;

REVOKE ALL ON FUNCTION auth_issuer_bindings(text), auth_client_tenant_ids(uuid, date), auth_all_tenant_ids() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth_issuer_bindings(text), auth_client_tenant_ids(uuid, date), auth_all_tenant_ids() TO bs_app;
GRANT EXECUTE ON FUNCTION app_tenant_ids() TO bs_app;
GRANT SELECT, INSERT, UPDATE ON tenants TO bs_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON closing_days, departments, identity_issuers TO bs_app;
GRANT SELECT, INSERT, UPDATE ON agreements TO bs_app;

-- migrate:down
DROP FUNCTION auth_all_tenant_ids();
DROP FUNCTION auth_client_tenant_ids(uuid, date);
DROP FUNCTION auth_issuer_bindings(text);
DROP TABLE agreements;
DROP TABLE identity_issuers;
DROP TABLE departments;
DROP TABLE closing_days;
DROP TABLE tenants;
DROP FUNCTION app_tenant_ids();
