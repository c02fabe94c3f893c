-- migrate:up

-- Clients an operator settles with on a day: every client whose agreement with it has started,
-- running or ended (not offboarded). The operator's finance reaches these with its invoice and
-- tariff grants (Reach.SETTLED), not only today's clients: the last month's invoice, a credit
-- note for an old invoice and the yearly rate (which divides by every client's minutes of the
-- year) all come after an agreement has ended.
CREATE FUNCTION auth_settled_client_tenant_ids(p_operator uuid, p_on date) RETURNS uuid[]
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT coalesce(array_agg(DISTINCT a.tenant_id), '{}')
        FROM agreements a JOIN tenants t ON t.id = a.tenant_id
        WHERE a.operator_tenant_id = p_operator AND a.starts_on <= p_on AND t.status <> 'offboarded'
    $$;
REVOKE ALL ON FUNCTION auth_settled_client_tenant_ids(uuid, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth_settled_client_tenant_ids(uuid, date) TO bs_app;

-- migrate:down
DROP FUNCTION auth_settled_client_tenant_ids(uuid, date);
