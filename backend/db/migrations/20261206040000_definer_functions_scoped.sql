-- migrate:up

-- SECURITY DEFINER functions run as the owner, past row-level security. Those the application
-- role may call took tenant ids as arguments and ignored `app.tenant_ids`: inside a request
-- scoped to Geseke, routing_tenants('{<Soest>}') returned Soest's departments and closing days
-- and auth_all_tenant_ids() listed every tenant (issue 12). The rule now (decision 015):
--   * In a tenant-scoped transaction (app.tenant_ids set and not empty: every request's, and
--     background work's all-tenant one) such a function answers for the session's tenants
--     only: arguments outside them contribute nothing; "every tenant" (NULL) is refused.
--   * Unscoped (a connection of its own, no tenant known yet) they answer as before: sign-in
--     finds an issuer's tenants, routing compiles the table shared by all instances.
--   * Trigger functions cannot be called directly; they lose EXECUTE (firing needs none).
-- tests/tenancy/test_definer_functions.py walks pg_proc and fails on a function that is
-- neither listed there with its reason nor behaves so.

CREATE FUNCTION app_tenant_scoped() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT cardinality(app_tenant_ids()) > 0 $$;

-- The tenants a definer function may answer for: unscoped, what it was asked (NULL: all);
-- scoped, the asked ones the session holds (NULL refused: a table of every tenant must not be
-- compiled inside a request and cached as if it were whole).
CREATE FUNCTION app_definer_tenants(p_tenants uuid[], p_function text) RETURNS uuid[]
    LANGUAGE plpgsql STABLE
    AS $$
BEGIN
    IF NOT app_tenant_scoped() THEN
        RETURN p_tenants;
    END IF;
    IF p_tenants IS NULL THEN
        RAISE EXCEPTION '%: every tenant is not readable inside a tenant-scoped transaction', p_function
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN ARRAY(SELECT unnest(p_tenants) INTERSECT SELECT unnest(app_tenant_ids()));
END $$;
GRANT EXECUTE ON FUNCTION app_tenant_scoped(), app_definer_tenants(uuid[], text) TO bs_app;

-- Sign-in: unscoped as before; scoped, only the session's own tenants.
CREATE OR REPLACE FUNCTION auth_issuer_bindings(p_issuer text)
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

CREATE OR REPLACE FUNCTION auth_client_tenant_ids(p_operator uuid, p_on date) RETURNS uuid[]
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT coalesce(array_agg(DISTINCT a.tenant_id), '{}')
        FROM agreements a JOIN tenants t ON t.id = a.tenant_id
        WHERE a.operator_tenant_id = p_operator
          AND a.starts_on <= p_on AND (a.ends_on IS NULL OR p_on <= a.ends_on)
          AND t.status <> 'offboarded'
          AND (NOT app_tenant_scoped() OR a.tenant_id = ANY (app_tenant_ids()))
    $$;

CREATE OR REPLACE FUNCTION auth_settled_client_tenant_ids(p_operator uuid, p_on date) RETURNS uuid[]
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT coalesce(array_agg(DISTINCT a.tenant_id), '{}')
        FROM agreements a JOIN tenants t ON t.id = a.tenant_id
        WHERE a.operator_tenant_id = p_operator AND a.starts_on <= p_on AND t.status <> 'offboarded'
          AND (NOT app_tenant_scoped() OR a.tenant_id = ANY (app_tenant_ids()))
    $$;

-- Scoped (the workers' all-tenant transaction asks again): the session's tenants.
CREATE OR REPLACE FUNCTION auth_all_tenant_ids() RETURNS uuid[]
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT coalesce(array_agg(id), '{}') FROM tenants
        WHERE NOT app_tenant_scoped() OR id = ANY (app_tenant_ids())
    $$;

-- Registering an issuer must know whether other tenants already trust it, and by which
-- organisation claim they are told apart; it runs inside the town admin's request. This tells
-- exactly that and nothing else: no tenant, no audience, no claim value, no role mapping.
CREATE FUNCTION identity_issuer_sharing(p_issuer text)
    RETURNS TABLE (org_claim text, told_apart boolean)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT i.org_claim, i.org_value IS NOT NULL
        FROM identity_issuers i JOIN tenants t ON t.id = i.tenant_id
        WHERE i.issuer = p_issuer AND t.status <> 'offboarded'
    $$;
REVOKE ALL ON FUNCTION identity_issuer_sharing(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION identity_issuer_sharing(text) TO bs_app;

-- Routing: p_tenants through app_definer_tenants (plpgsql, so the check runs once per call
-- whether or not a row matches).
CREATE OR REPLACE FUNCTION routing_numbers(p_tenants uuid[], p_dialled text)
    RETURNS TABLE (tenant_id uuid, id uuid, number text, kind text, purpose text, department_id uuid,
                   greeting text, routing_window text, valid_from date, valid_until date)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
DECLARE
    v_tenants uuid[] := app_definer_tenants(p_tenants, 'routing_numbers');
BEGIN
    RETURN QUERY
        SELECT n.tenant_id, n.id, n.number, n.kind, n.purpose, n.department_id, n.greeting,
               n.routing_window, lower(n.valid), upper(n.valid)
        FROM service_numbers n
        WHERE (v_tenants IS NULL OR n.tenant_id = ANY (v_tenants))
          AND (p_dialled IS NULL OR n.span @> p_dialled);
END $$;

CREATE OR REPLACE FUNCTION routing_tenants(p_tenants uuid[])
    RETURNS TABLE (id uuid, slug text, name text, is_operator boolean, federal_state text,
                   time_zone text, service_hours jsonb, closing_days jsonb, departments jsonb,
                   absence_weekly jsonb, absence_dated jsonb)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
DECLARE
    v_tenants uuid[] := app_definer_tenants(p_tenants, 'routing_tenants');
BEGIN
    RETURN QUERY
        SELECT t.id, t.slug, t.name, t.is_operator, t.federal_state, t.time_zone, t.service_hours,
               coalesce((SELECT jsonb_agg(jsonb_build_object('day', c.day, 'name', c.name) ORDER BY c.day)
                         FROM closing_days c WHERE c.tenant_id = t.id), '[]'),
               coalesce((SELECT jsonb_agg(jsonb_build_object('id', d.id, 'name', d.name, 'phone', d.phone,
                                                             'email', d.email) ORDER BY d.name)
                         FROM departments d WHERE d.tenant_id = t.id AND d.active), '[]'),
               coalesce((SELECT jsonb_agg(jsonb_build_object('weekday', w.weekday, 'starts', w.starts,
                                                             'ends', w.ends) ORDER BY w.weekday, w.starts)
                         FROM absence_weekly w WHERE w.tenant_id = t.id), '[]'),
               coalesce((SELECT jsonb_agg(jsonb_build_object('starts', lower(a.during), 'ends', upper(a.during))
                                          ORDER BY lower(a.during))
                         FROM absence_dated a WHERE a.tenant_id = t.id), '[]')
        FROM tenants t
        WHERE (v_tenants IS NULL OR t.id = ANY (v_tenants)) AND t.status <> 'offboarded';
END $$;

CREATE OR REPLACE FUNCTION routing_area_codes(p_tenants uuid[])
    RETURNS TABLE (tenant_id uuid, area_code text, ags text, municipality text, client_tenant_id uuid)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
DECLARE
    v_tenants uuid[] := app_definer_tenants(p_tenants, 'routing_area_codes');
BEGIN
    RETURN QUERY
        SELECT a.tenant_id, a.area_code, a.ags, a.municipality, a.client_tenant_id
        FROM area_codes a
        WHERE v_tenants IS NULL OR a.tenant_id = ANY (v_tenants);
END $$;

-- Knowledge: the operators serving the given towns; scoped, only towns the session holds (the
-- shared_read policies ask with app_tenant_ids(), which always are).
CREATE OR REPLACE FUNCTION knowledge_shared_owner_ids(p_tenants uuid[]) RETURNS uuid[]
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT coalesce(array_agg(DISTINCT a.operator_tenant_id), '{}')
        FROM agreements a JOIN tenants t ON t.id = a.tenant_id
        WHERE a.tenant_id = ANY (p_tenants)
          AND (NOT app_tenant_scoped() OR a.tenant_id = ANY (app_tenant_ids()))
          AND a.starts_on <= (now() AT TIME ZONE 'Europe/Berlin')::date
          AND (a.ends_on IS NULL OR (now() AT TIME ZONE 'Europe/Berlin')::date <= a.ends_on)
          AND t.status <> 'offboarded'
    $$;

-- Trigger functions: EXECUTE was PUBLIC's by default; a trigger fires without it.
REVOKE ALL ON FUNCTION billing_calls_inserted(), billing_calls_updated(), billing_calls_deleted() FROM PUBLIC;

-- migrate:down
GRANT EXECUTE ON FUNCTION billing_calls_inserted(), billing_calls_updated(), billing_calls_deleted() TO PUBLIC;

CREATE OR REPLACE FUNCTION knowledge_shared_owner_ids(p_tenants uuid[]) RETURNS uuid[]
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT coalesce(array_agg(DISTINCT a.operator_tenant_id), '{}')
        FROM agreements a JOIN tenants t ON t.id = a.tenant_id
        WHERE a.tenant_id = ANY (p_tenants)
          AND a.starts_on <= (now() AT TIME ZONE 'Europe/Berlin')::date
          AND (a.ends_on IS NULL OR (now() AT TIME ZONE 'Europe/Berlin')::date <= a.ends_on)
          AND t.status <> 'offboarded'
    $$;

DROP FUNCTION routing_area_codes(uuid[]);
CREATE FUNCTION routing_area_codes(p_tenants uuid[])
    RETURNS TABLE (tenant_id uuid, area_code text, ags text, municipality text, client_tenant_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT a.tenant_id, a.area_code, a.ags, a.municipality, a.client_tenant_id
        FROM area_codes a
        WHERE p_tenants IS NULL OR a.tenant_id = ANY (p_tenants)
    $$;

DROP FUNCTION routing_tenants(uuid[]);
CREATE FUNCTION routing_tenants(p_tenants uuid[])
    RETURNS TABLE (id uuid, slug text, name text, is_operator boolean, federal_state text,
                   time_zone text, service_hours jsonb, closing_days jsonb, departments jsonb,
                   absence_weekly jsonb, absence_dated jsonb)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT t.id, t.slug, t.name, t.is_operator, t.federal_state, t.time_zone, t.service_hours,
               coalesce((SELECT jsonb_agg(jsonb_build_object('day', c.day, 'name', c.name) ORDER BY c.day)
                         FROM closing_days c WHERE c.tenant_id = t.id), '[]'),
               coalesce((SELECT jsonb_agg(jsonb_build_object('id', d.id, 'name', d.name, 'phone', d.phone,
                                                             'email', d.email) ORDER BY d.name)
                         FROM departments d WHERE d.tenant_id = t.id AND d.active), '[]'),
               coalesce((SELECT jsonb_agg(jsonb_build_object('weekday', w.weekday, 'starts', w.starts,
                                                             'ends', w.ends) ORDER BY w.weekday, w.starts)
                         FROM absence_weekly w WHERE w.tenant_id = t.id), '[]'),
               coalesce((SELECT jsonb_agg(jsonb_build_object('starts', lower(a.during), 'ends', upper(a.during))
                                          ORDER BY lower(a.during))
                         FROM absence_dated a WHERE a.tenant_id = t.id), '[]')
        FROM tenants t
        WHERE (p_tenants IS NULL OR t.id = ANY (p_tenants)) AND t.status <> 'offboarded'
    $$;

DROP FUNCTION routing_numbers(uuid[], text);
CREATE FUNCTION routing_numbers(p_tenants uuid[], p_dialled text)
    RETURNS TABLE (tenant_id uuid, id uuid, number text, kind text, purpose text, department_id uuid,
                   greeting text, routing_window text, valid_from date, valid_until date)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT n.tenant_id, n.id, n.number, n.kind, n.purpose, n.department_id, n.greeting,
               n.routing_window, lower(n.valid), upper(n.valid)
        FROM service_numbers n
        WHERE (p_tenants IS NULL OR n.tenant_id = ANY (p_tenants))
          AND (p_dialled IS NULL OR n.span @> p_dialled)
    $$;
REVOKE ALL ON FUNCTION routing_numbers(uuid[], text), routing_tenants(uuid[]), routing_area_codes(uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION routing_numbers(uuid[], text), routing_tenants(uuid[]), routing_area_codes(uuid[]) TO bs_app;

DROP FUNCTION identity_issuer_sharing(text);

CREATE OR REPLACE FUNCTION auth_all_tenant_ids() RETURNS uuid[]
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$ SELECT coalesce(array_agg(id), '{}') FROM tenants $$;

CREATE OR REPLACE FUNCTION auth_settled_client_tenant_ids(p_operator uuid, p_on date) RETURNS uuid[]
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT coalesce(array_agg(DISTINCT a.tenant_id), '{}')
        FROM agreements a JOIN tenants t ON t.id = a.tenant_id
        WHERE a.operator_tenant_id = p_operator AND a.starts_on <= p_on AND t.status <> 'offboarded'
    $$;

CREATE OR REPLACE FUNCTION auth_client_tenant_ids(p_operator uuid, p_on date) RETURNS uuid[]
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT coalesce(array_agg(DISTINCT a.tenant_id), '{}')
        FROM agreements a JOIN tenants t ON t.id = a.tenant_id
        WHERE a.operator_tenant_id = p_operator
          AND a.starts_on <= p_on AND (a.ends_on IS NULL OR p_on <= a.ends_on)
          AND t.status <> 'offboarded'
    $$;

CREATE OR REPLACE FUNCTION auth_issuer_bindings(p_issuer text)
    RETURNS TABLE (tenant_id uuid, tenant_slug text, is_operator boolean, audience text, org_claim text,
                   org_value text, role_claim text, role_mapping jsonb)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT i.tenant_id, t.slug, t.is_operator, i.audience, i.org_claim, i.org_value, i.role_claim,
               i.role_mapping
        FROM identity_issuers i JOIN tenants t ON t.id = i.tenant_id
        WHERE i.issuer = p_issuer AND t.status <> 'offboarded'
    $$;

DROP FUNCTION app_definer_tenants(uuid[], text);
DROP FUNCTION app_tenant_scoped();
