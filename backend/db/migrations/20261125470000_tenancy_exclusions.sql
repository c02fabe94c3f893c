-- migrate:up

-- Rows the constraints below would refuse (made before they existed) stop the migration with a
-- message naming what to clean up, rather than PostgreSQL's generic constraint error.
DO $$
DECLARE overlapping integer; mixed integer;
BEGIN
    SELECT count(*) INTO overlapping FROM agreements a JOIN agreements b
        ON a.tenant_id = b.tenant_id AND a.operator_tenant_id = b.operator_tenant_id AND a.id < b.id
       AND daterange(a.starts_on, a.ends_on, '[]') && daterange(b.starts_on, b.ends_on, '[]');
    SELECT count(*) INTO mixed FROM (SELECT issuer FROM identity_issuers GROUP BY issuer
                                     HAVING count(DISTINCT coalesce(org_claim, '')) > 1) i;
    IF overlapping > 0 OR mixed > 0 THEN
        RAISE EXCEPTION 'end or remove overlapping agreements (% pairs) and give every tenant of a shared issuer the same organisation claim (% issuers) first', overlapping, mixed;
    END IF;
END $$;

-- One agreement per client and operator at a time: the service checks first, this holds under
-- concurrency (two admins, a double click). An open end (NULL) runs to infinity.
ALTER TABLE agreements ADD CONSTRAINT agreements_no_overlap
    EXCLUDE USING gist (tenant_id WITH =, operator_tenant_id WITH =, daterange(starts_on, ends_on, '[]') WITH &&);

-- Tenants sharing an issuer are told apart by the same organisation claim. With another claim
-- (say `iss`) a town could make every token of the issuer match two tenants, and sign-in refuses
-- an ambiguous token: one town's admin would lock the others out.
ALTER TABLE identity_issuers ADD CONSTRAINT identity_issuers_one_org_claim
    EXCLUDE USING gist (issuer WITH =, (coalesce(org_claim, '')) WITH <>);

-- migrate:down
ALTER TABLE identity_issuers DROP CONSTRAINT identity_issuers_one_org_claim;
ALTER TABLE agreements DROP CONSTRAINT agreements_no_overlap;
