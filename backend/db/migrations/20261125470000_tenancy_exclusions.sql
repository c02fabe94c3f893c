-- migrate:up

-- One agreement per client and operator at a time: the service checks first, this holds under
-- concurrency (two admins, a double click). An open end (NULL) runs to infinity.
ALTER TABLE agreements ADD CONSTRAINT agreements_no_overlap
    EXCLUDE USING gist (tenant_id WITH =, operator_tenant_id WITH =, daterange(starts_on, ends_on, '[]') WITH &&);

-- Tenants sharing an issuer are told apart by the same organisation claim. With another claim
-- (say `iss`) a town could make every token of the issuer match two tenants, and sign-in refuses
-- an ambiguous token: one town's admin would lock the others out.
ALTER TABLE identity_issuers ADD CONSTRAINT identity_issuers_one_org_claim
    EXCLUDE USING gist (issuer WITH =, org_claim WITH <>);

-- migrate:down
ALTER TABLE identity_issuers DROP CONSTRAINT identity_issuers_one_org_claim;
ALTER TABLE agreements DROP CONSTRAINT agreements_no_overlap;
