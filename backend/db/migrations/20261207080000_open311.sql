-- migrate:up

-- Open311 GeoReport v2 facade over tickets (decision 030). Tenant-owned, RLS forced.

-- The services a town accepts Open311 requests for: LeiKa-keyed, with an optional service
-- definition (attributes the client asks the citizen; `metadata` is true when there are any).
CREATE TABLE open311_services (
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    service_code  text NOT NULL CHECK (service_code ~ '^[0-9]{1,14}$'),
    service_name  text NOT NULL CHECK (length(btrim(service_name)) BETWEEN 1 AND 200),
    description   text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    keywords      text[] NOT NULL DEFAULT '{}',
    service_group text NOT NULL DEFAULT '' CHECK (length(service_group) <= 200),
    department_id uuid,
    attributes    jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(attributes) = 'array'),
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, service_code),
    FOREIGN KEY (tenant_id, department_id) REFERENCES departments (tenant_id, id)
);

-- An api_key per partner system: only its SHA-256 is kept (the key is shown once).
CREATE TABLE open311_api_keys (
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    id          uuid NOT NULL,
    key_hash    bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    key_prefix  text NOT NULL CHECK (length(key_prefix) BETWEEN 4 AND 12),
    description text NOT NULL CHECK (length(btrim(description)) BETWEEN 1 AND 200),
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    last_used_at timestamptz,
    PRIMARY KEY (tenant_id, id)
);

-- What a request brought beyond the ticket: where, the token, which key. The citizen's text and
-- contact live in the ticket's personal data (consent, audit, retention as every ticket's).
CREATE TABLE open311_requests (
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    ticket_id      uuid NOT NULL,
    number         bigint NOT NULL,
    service_code   text NOT NULL,
    token          uuid NOT NULL,
    address_string text CHECK (length(address_string) <= 500),
    address_id     text CHECK (length(address_id) <= 200),
    lat            numeric(9, 6) CHECK (lat BETWEEN -90 AND 90),
    long           numeric(9, 6) CHECK (long BETWEEN -180 AND 180),
    media_url      text CHECK (length(media_url) <= 2000),
    api_key_id     uuid,
    requested_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, ticket_id),
    UNIQUE (tenant_id, number),
    UNIQUE (tenant_id, token),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id),
    FOREIGN KEY (tenant_id, api_key_id) REFERENCES open311_api_keys (tenant_id, id)
);
CREATE INDEX open311_requests_requested ON open311_requests (tenant_id, requested_at);

ALTER TABLE open311_services ENABLE ROW LEVEL SECURITY;
ALTER TABLE open311_services FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON open311_services
    USING (tenant_id = ANY (app_tenant_ids())) WITH CHECK (tenant_id = ANY (app_tenant_ids()));
ALTER TABLE open311_api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE open311_api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON open311_api_keys
    USING (tenant_id = ANY (app_tenant_ids())) WITH CHECK (tenant_id = ANY (app_tenant_ids()));
ALTER TABLE open311_requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE open311_requests FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON open311_requests
    USING (tenant_id = ANY (app_tenant_ids())) WITH CHECK (tenant_id = ANY (app_tenant_ids()));

-- The owner reads past the tenant policy only for the two lookups below (as sign-in's and routing's).
CREATE POLICY open311_lookup ON open311_services FOR SELECT TO CURRENT_USER USING (true);
CREATE POLICY open311_lookup ON open311_api_keys FOR SELECT TO CURRENT_USER USING (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON open311_services, open311_api_keys TO bs_app;
GRANT SELECT, INSERT ON open311_requests TO bs_app;

-- Before any tenant is known (an Open311 call names its town by slug or brings a key), the
-- town is found past RLS, as sign-in finds an issuer's tenants. Only towns that offer Open311
-- services are found (NULL: every such town, to tell whether the slug may be left out); scoped
-- sessions get their own tenants only (decision 015).
CREATE FUNCTION open311_jurisdiction(p_slug text)
    RETURNS TABLE (tenant_id uuid, tenant_slug text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT t.id, t.slug FROM tenants t
        WHERE (p_slug IS NULL OR t.slug = p_slug) AND t.status <> 'offboarded'
          AND EXISTS (SELECT 1 FROM open311_services s WHERE s.tenant_id = t.id)
          AND (NOT app_tenant_scoped() OR t.id = ANY (app_tenant_ids()))
    $$;

CREATE FUNCTION open311_api_key(p_hash bytea)
    RETURNS TABLE (key_id uuid, tenant_id uuid, tenant_slug text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT k.id, t.id, t.slug FROM open311_api_keys k JOIN tenants t ON t.id = k.tenant_id
        WHERE k.key_hash = p_hash AND k.revoked_at IS NULL AND t.status <> 'offboarded'
          AND (NOT app_tenant_scoped() OR t.id = ANY (app_tenant_ids()))
    $$;

REVOKE ALL ON FUNCTION open311_jurisdiction(text), open311_api_key(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION open311_jurisdiction(text), open311_api_key(bytea) TO bs_app;

-- migrate:down
DROP FUNCTION open311_api_key(bytea);
DROP FUNCTION open311_jurisdiction(text);
DROP TABLE open311_requests;
DROP TABLE open311_api_keys;
DROP TABLE open311_services;
