-- migrate:up

-- Issue 17 §1: the yearly rate "by mutual agreement", items of a cost base the operator declares
-- as its own, and §2: how a town wants caller numbers shown on its itemised call lists.

-- Cost-base items the operator declares as its own (e.g. its own switchboard): part of the
-- totals, left out of what the rate covers. [{"label": "…", "amount": "123.45"}, …]
ALTER TABLE cost_bases ADD COLUMN own_items jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(own_items) = 'array');

-- Itemised call list (Einzelverbindungsnachweis): the caller number shortened by the last
-- `itemised_hidden_digits` digits, or left out.
ALTER TABLE billing_profiles
    ADD COLUMN itemised_caller text NOT NULL DEFAULT 'shortened' CHECK (itemised_caller IN ('shortened', 'omitted')),
    ADD COLUMN itemised_hidden_digits integer NOT NULL DEFAULT 3 CHECK (itemised_hidden_digits BETWEEN 1 AND 10);

-- The operator's proposal of a year's rate to its client towns (the operator's row).
CREATE TABLE rate_proposals (
    tenant_id        uuid NOT NULL REFERENCES tenants (id),  -- the operator
    year             integer NOT NULL CHECK (year BETWEEN 2000 AND 2999),
    rate             numeric(12, 4) NOT NULL CHECK (rate > 0 AND rate < 1000),
    respond_by       date NOT NULL,
    status           text NOT NULL DEFAULT 'proposed' CHECK (status IN ('proposed', 'adopted')),
    proposed_by      text NOT NULL,
    proposed_at      timestamptz NOT NULL DEFAULT now(),
    adopted_by       text,
    adopted_at       timestamptz,
    adoption_reason  text CHECK (length(adoption_reason) <= 2000),
    PRIMARY KEY (tenant_id, year),
    CHECK ((status = 'adopted') = (adopted_at IS NOT NULL))
);

-- Each client town's answer to a proposal (the town's row: it reads and writes its own).
CREATE TABLE rate_consents (
    tenant_id          uuid NOT NULL REFERENCES tenants (id),  -- the client town
    operator_tenant_id uuid NOT NULL REFERENCES tenants (id),
    year               integer NOT NULL CHECK (year BETWEEN 2000 AND 2999),
    rate               numeric(12, 4) NOT NULL,
    respond_by         date NOT NULL,
    decision           text NOT NULL DEFAULT 'pending' CHECK (decision IN ('pending', 'accepted', 'objected')),
    note               text NOT NULL DEFAULT '' CHECK (length(note) <= 2000),
    decided_by         text,
    decided_at         timestamptz,
    adopted_at         timestamptz,  -- the rate was adopted: no more answers
    PRIMARY KEY (tenant_id, operator_tenant_id, year),
    FOREIGN KEY (operator_tenant_id, year) REFERENCES rate_proposals (tenant_id, year),
    CHECK (decision <> 'objected' OR length(btrim(note)) > 0)
);

-- Every step of a consultation, one row per town it concerns, so each town reads its own history.
CREATE TABLE rate_events (
    tenant_id          uuid NOT NULL REFERENCES tenants (id),  -- the client town
    id                 uuid NOT NULL,
    operator_tenant_id uuid NOT NULL REFERENCES tenants (id),
    year               integer NOT NULL,
    kind               text NOT NULL CHECK (kind IN ('proposed', 'accepted', 'objected', 'adopted',
                                                     'adopted_after_deadline')),
    rate               numeric(12, 4) NOT NULL,
    note               text NOT NULL DEFAULT '' CHECK (length(note) <= 2000),
    actor              text NOT NULL,
    at                 timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX rate_events_year ON rate_events (tenant_id, operator_tenant_id, year, at);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['rate_proposals', 'rate_consents', 'rate_events'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I
                            USING (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]))
                            WITH CHECK (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]))', t);
    END LOOP;
END $$;

GRANT SELECT, INSERT, UPDATE ON rate_proposals, rate_consents TO bs_app;
GRANT SELECT, INSERT ON rate_events TO bs_app;

-- migrate:down
DROP TABLE rate_events;
DROP TABLE rate_consents;
DROP TABLE rate_proposals;
ALTER TABLE billing_profiles DROP COLUMN itemised_hidden_digits, DROP COLUMN itemised_caller;
ALTER TABLE cost_bases DROP COLUMN own_items;
