-- migrate:up

-- Sign-in learns whether an issuer's tenant is an operator: only an operator's issuers grant
-- platform-wide roles (auth.roles.OPERATOR_ONLY_ROLES), whatever a town's role mapping says.
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
    $$;
REVOKE ALL ON FUNCTION auth_issuer_bindings(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth_issuer_bindings(text) TO bs_app;

-- migrate:down
DROP FUNCTION auth_issuer_bindings(text);
CREATE FUNCTION auth_issuer_bindings(p_issuer text)
    RETURNS TABLE (tenant_id uuid, tenant_slug text, audience text, org_claim text, org_value text,
                   role_claim text, role_mapping jsonb)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT i.tenant_id, t.slug, i.audience, i.org_claim, i.org_value, i.role_claim, i.role_mapping
        FROM identity_issuers i JOIN tenants t ON t.id = i.tenant_id
        WHERE i.issuer = p_issuer AND t.status <> 'offboarded'
    $$;
REVOKE ALL ON FUNCTION auth_issuer_bindings(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth_issuer_bindings(text) TO bs_app;
