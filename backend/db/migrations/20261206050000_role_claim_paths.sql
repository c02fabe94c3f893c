-- migrate:up
-- Role claims are claim paths now (decision 016): `realm_access.roles` reads a nested claim.
-- A role claim stored before that names one top-level claim, and the only such names with a
-- dot that worked are namespaced URLs (`https://example.org/roles`, as Auth0 requires): keep
-- them meaning the same claim by escaping their backslashes and dots. Any other dotted name
-- never matched a real token, so it is read as the path it was meant to be.
-- Row-level security is forced on the table, also for its owner: lift it for this statement
-- (the whole migration is one transaction, so no one sees the table without it).
ALTER TABLE identity_issuers NO FORCE ROW LEVEL SECURITY;
UPDATE identity_issuers
   SET role_claim = replace(replace(role_claim, '\', '\\'), '.', '\.')
 WHERE role_claim LIKE '%://%';
ALTER TABLE identity_issuers FORCE ROW LEVEL SECURITY;

-- migrate:down
ALTER TABLE identity_issuers NO FORCE ROW LEVEL SECURITY;
UPDATE identity_issuers
   SET role_claim = replace(replace(role_claim, '\.', '.'), '\\', '\')
 WHERE role_claim LIKE '%://%';
ALTER TABLE identity_issuers FORCE ROW LEVEL SECURITY;
