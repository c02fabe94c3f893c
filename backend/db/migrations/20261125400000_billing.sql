-- migrate:up

-- Billing and 115 figures. Every table is tenant-owned (tenant_id leads the key, RLS forced):
-- tariffs, invoices and their lines belong to the client town (the buyer), cost bases and the
-- invoice counter to the operator (the seller).

-- Party data for XRechnung (seller: the operator's row, buyer: the client's row).
CREATE TABLE billing_profiles (
    tenant_id            uuid NOT NULL REFERENCES tenants (id),
    legal_name           text NOT NULL CHECK (length(btrim(legal_name)) BETWEEN 1 AND 200),
    street               text NOT NULL CHECK (length(btrim(street)) BETWEEN 1 AND 200),
    postal_code          text NOT NULL CHECK (postal_code ~ '^[0-9A-Za-z -]{3,10}$'),
    city                 text NOT NULL CHECK (length(btrim(city)) BETWEEN 1 AND 100),
    country_code         text NOT NULL DEFAULT 'DE' CHECK (country_code ~ '^[A-Z]{2}$'),
    email                text NOT NULL CHECK (email ~ '^[^@\s]+@[^@\s]+\.[^@\s]+$'),
    phone                text NOT NULL CHECK (length(btrim(phone)) BETWEEN 3 AND 40),
    contact_name         text NOT NULL CHECK (length(btrim(contact_name)) BETWEEN 1 AND 200),
    iban                 text CHECK (iban ~ '^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$'),
    bic                  text CHECK (bic ~ '^[A-Z0-9]{8}([A-Z0-9]{3})?$'),
    payment_days         integer NOT NULL DEFAULT 30 CHECK (payment_days BETWEEN 0 AND 120),
    tax_exemption_reason text NOT NULL DEFAULT 'Nicht steuerbar (§ 2b UStG, öffentlich-rechtliche Vereinbarung)'
                         CHECK (length(btrim(tax_exemption_reason)) BETWEEN 1 AND 500),
    version              integer NOT NULL DEFAULT 1,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id)
);

-- KPI targets per tenant (first-contact rate; 115 calls have their own target).
CREATE TABLE figure_targets (
    tenant_id                uuid NOT NULL REFERENCES tenants (id),
    first_contact_target     numeric(5, 4) NOT NULL DEFAULT 0.60 CHECK (first_contact_target BETWEEN 0 AND 1),
    first_contact_target_115 numeric(5, 4) NOT NULL DEFAULT 0.65 CHECK (first_contact_target_115 BETWEEN 0 AND 1),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id)
);

-- A price per call minute for one agreement over a period of local days (upper bound exclusive,
-- open-ended when unbounded). Periods of an agreement never overlap, and neither do those of a
-- client (a call names its tenant, not its agreement): the tariff of a call's start day is unique.
CREATE TABLE tariffs (
    tenant_id          uuid NOT NULL REFERENCES tenants (id),
    id                 uuid NOT NULL,
    agreement_id       uuid NOT NULL,
    operator_tenant_id uuid NOT NULL REFERENCES tenants (id),
    valid              daterange NOT NULL CHECK (NOT isempty(valid) AND NOT lower_inf(valid)),
    price_per_minute   numeric(12, 4) NOT NULL CHECK (price_per_minute > 0 AND price_per_minute < 1000),
    increment_seconds  integer NOT NULL DEFAULT 60 CHECK (increment_seconds IN (1, 60)),
    minimum_charge     numeric(12, 2) CHECK (minimum_charge > 0),
    note               text NOT NULL DEFAULT '' CHECK (length(note) <= 500),
    cost_base_year     integer,
    version            integer NOT NULL DEFAULT 1,
    created_at         timestamptz NOT NULL DEFAULT now(),
    created_by         text NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, agreement_id) REFERENCES agreements (tenant_id, id),
    CONSTRAINT tariffs_no_overlap_per_agreement EXCLUDE USING gist (agreement_id WITH =, valid WITH &&),
    CONSTRAINT tariffs_no_overlap_per_client EXCLUDE USING gist (tenant_id WITH =, valid WITH &&)
);

-- Each billable call (talk seconds > 0) rated once: raw talk seconds and billable seconds under
-- the tariff of its start day (NULL: no tariff in force, not billed until one is). Written only
-- by the triggers on calls and billing_rebuild() below.
CREATE TABLE call_charges (
    tenant_id        uuid NOT NULL,
    call_id          uuid NOT NULL,
    day              date NOT NULL,
    tariff_id        uuid,
    talk_seconds     integer NOT NULL,
    billable_seconds integer,
    at_minimum       boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, call_id),
    CHECK ((tariff_id IS NULL) = (billable_seconds IS NULL))
);

-- Calls per tenant, local day and purpose, maintained incrementally by statement-level triggers
-- on calls: invoices and figures read these, never the raw calls.
CREATE TABLE call_rollups (
    tenant_id                uuid NOT NULL,
    day                      date NOT NULL,
    purpose                  text NOT NULL,
    tariff_id                uuid,
    offered                  bigint NOT NULL DEFAULT 0,
    answered                 bigint NOT NULL DEFAULT 0,
    abandoned                bigint NOT NULL DEFAULT 0,
    wait_reported            bigint NOT NULL DEFAULT 0,  -- answered calls with a reported wait
    answered_within_30s      bigint NOT NULL DEFAULT 0,
    wait_seconds             bigint NOT NULL DEFAULT 0,
    settled_first_contact    bigint NOT NULL DEFAULT 0,
    forwarded_as_ticket      bigint NOT NULL DEFAULT 0,
    transferred              bigint NOT NULL DEFAULT 0,
    talk_seconds             bigint NOT NULL DEFAULT 0,  -- raw, every call
    unrated_calls            bigint NOT NULL DEFAULT 0,  -- talked, but no tariff in force
    billed_calls             bigint NOT NULL DEFAULT 0,
    billable_seconds         bigint NOT NULL DEFAULT 0,  -- of billed calls, minimum-charged ones included
    minimum_calls            bigint NOT NULL DEFAULT 0,  -- billed calls charged the minimum
    minimum_billable_seconds bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day, purpose)
);

-- Invoice numbers: one gap-free sequence per operator and year (invoices and credit notes).
CREATE TABLE invoice_counters (
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    year        integer NOT NULL CHECK (year BETWEEN 2000 AND 2999),
    last_number integer NOT NULL CHECK (last_number >= 0),
    PRIMARY KEY (tenant_id, year)
);

CREATE TABLE invoices (
    tenant_id          uuid NOT NULL REFERENCES tenants (id),  -- the client town (buyer)
    id                 uuid NOT NULL,
    operator_tenant_id uuid NOT NULL REFERENCES tenants (id),  -- the operator (seller)
    agreement_id       uuid NOT NULL,
    kind               text NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    purpose            text NOT NULL CHECK (purpose IN ('usage', 'cancellation', 'true_up')),
    status             text NOT NULL CHECK (status IN ('draft', 'discarded', 'issued', 'cancelled')),
    period             daterange NOT NULL CHECK (NOT isempty(period) AND NOT lower_inf(period) AND NOT upper_inf(period)),
    period_label       text NOT NULL,
    number             text,
    number_year        integer,
    number_seq         integer,
    issued_on          date,
    due_on             date,
    issued_at          timestamptz,
    issued_by          text,
    cancels_id         uuid,
    cancelled_by_id    uuid,
    cancelled_at       timestamptz,
    reason             text NOT NULL DEFAULT '' CHECK (length(reason) <= 500),
    net_amount         numeric(14, 2) NOT NULL,
    tax_amount         numeric(14, 2) NOT NULL DEFAULT 0,
    gross_amount       numeric(14, 2) NOT NULL,
    currency           text NOT NULL DEFAULT 'EUR' CHECK (currency = 'EUR'),
    unrated_calls      bigint NOT NULL DEFAULT 0,
    seller             jsonb,  -- party data frozen when issued
    buyer              jsonb,
    buyer_reference    text,   -- the buyer's Leitweg-ID (BT-10) when issued
    created_at         timestamptz NOT NULL DEFAULT now(),
    created_by         text NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, agreement_id) REFERENCES agreements (tenant_id, id),
    FOREIGN KEY (tenant_id, cancels_id) REFERENCES invoices (tenant_id, id),
    UNIQUE (operator_tenant_id, number_year, number_seq),
    UNIQUE (operator_tenant_id, number),
    CHECK ((status IN ('issued', 'cancelled')) = (number IS NOT NULL AND number_seq IS NOT NULL AND issued_on IS NOT NULL)),
    CHECK ((status = 'cancelled') = (cancelled_by_id IS NOT NULL)),
    CHECK (kind = 'invoice' OR status IN ('issued', 'draft')),
    CHECK ((purpose = 'cancellation') = (cancels_id IS NOT NULL)),
    CHECK (gross_amount = net_amount + tax_amount),
    -- A period is invoiced at most once (until cancelled), and drafted at most once at a time.
    CONSTRAINT invoices_one_issued_per_period EXCLUDE USING gist (tenant_id WITH =, period WITH &&)
        WHERE (kind = 'invoice' AND purpose = 'usage' AND status = 'issued'),
    CONSTRAINT invoices_one_draft_per_period EXCLUDE USING gist (tenant_id WITH =, period WITH &&)
        WHERE (kind = 'invoice' AND purpose = 'usage' AND status = 'draft')
);
CREATE INDEX invoices_operator_year ON invoices (operator_tenant_id, number_year, number_seq);

CREATE TABLE invoice_lines (
    tenant_id           uuid NOT NULL,
    invoice_id          uuid NOT NULL,
    line_no             integer NOT NULL CHECK (line_no >= 1),
    kind                text NOT NULL CHECK (kind IN ('usage', 'minimum_charge', 'true_up')),
    correction          boolean NOT NULL DEFAULT false,
    corrects_invoice_id uuid,
    tariff_id           uuid,
    covers              daterange NOT NULL,
    description         text NOT NULL,
    calls               bigint NOT NULL,
    billable_seconds    bigint NOT NULL,
    quantity            numeric(18, 4) NOT NULL,
    unit_code           text NOT NULL CHECK (unit_code IN ('MIN', 'SEC', 'C62')),
    unit_price          numeric(12, 4) NOT NULL,
    base_quantity       integer NOT NULL DEFAULT 1 CHECK (base_quantity >= 1),
    amount              numeric(14, 2) NOT NULL,
    PRIMARY KEY (tenant_id, invoice_id, line_no),
    FOREIGN KEY (tenant_id, invoice_id) REFERENCES invoices (tenant_id, id)
);

-- The operator's yearly cost base, from which next year's cost-covering rate is derived.
CREATE TABLE cost_bases (
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    year         integer NOT NULL CHECK (year BETWEEN 2000 AND 2999),
    staff        numeric(14, 2) NOT NULL CHECK (staff >= 0),
    it           numeric(14, 2) NOT NULL CHECK (it >= 0),
    overheads    numeric(14, 2) NOT NULL CHECK (overheads >= 0),
    other        numeric(14, 2) NOT NULL DEFAULT 0 CHECK (other >= 0),
    total        numeric(15, 2) GENERATED ALWAYS AS (staff + it + overheads + other) STORED,
    note         text NOT NULL DEFAULT '' CHECK (length(note) <= 2000),
    adopted_rate numeric(12, 4),
    adopted_at   timestamptz,
    adopted_by   text,
    recorded_by  text NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    version      integer NOT NULL DEFAULT 1,
    PRIMARY KEY (tenant_id, year)
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['billing_profiles', 'figure_targets', 'tariffs', 'call_charges', 'call_rollups',
                             'invoice_counters', 'invoices', 'invoice_lines', 'cost_bases'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I
                            USING (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]))
                            WITH CHECK (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]))', t);
    END LOOP;
END $$;

-- The rating triggers and billing_rebuild() run as the owner (SECURITY DEFINER): they write the
-- charges and rollups, which the application role may only read, and look up tariffs and calls.
CREATE POLICY billing_maintenance ON call_charges TO CURRENT_USER USING (true) WITH CHECK (true);
CREATE POLICY billing_maintenance ON call_rollups TO CURRENT_USER USING (true) WITH CHECK (true);
CREATE POLICY billing_maintenance ON tariffs FOR SELECT TO CURRENT_USER USING (true);
CREATE POLICY billing_maintenance ON calls FOR SELECT TO CURRENT_USER USING (true);

-- Seconds billed for a call: rounded up to the increment (60: per started minute, 1: exact).
CREATE FUNCTION billing_billable_seconds(p_talk integer, p_increment integer) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN p_talk > 0 THEN ((p_talk + p_increment - 1) / p_increment) * p_increment END $$;

-- A call whose minute price is below the tariff's minimum charge is charged the minimum instead.
CREATE FUNCTION billing_at_minimum(p_billable integer, p_price numeric, p_minimum numeric) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT coalesce(p_price * p_billable < p_minimum * 60, false) $$;

-- Rating and rollups take a shared advisory lock per tenant; billing_rebuild() (after a tariff
-- change) the exclusive one. So a call is rated either before a tariff change (and re-rated by
-- the rebuild) or after it commits, never with a tariff that is about to change.
CREATE FUNCTION billing_lock_key(p_tenant uuid) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT hashtext(p_tenant::text) $$;

CREATE FUNCTION billing_calls_inserted() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(1651076204, billing_lock_key(tenant_id))
    FROM (SELECT DISTINCT tenant_id FROM new_calls ORDER BY tenant_id) t;

    WITH rated AS (
        SELECT n.tenant_id, n.id, n.purpose, (n.offered_at AT TIME ZONE tn.time_zone)::date AS day,
               n.answered_at, n.wait_seconds, n.talk_seconds, n.outcome,
               f.id AS tariff_id, f.price_per_minute, f.minimum_charge, f.increment_seconds
        FROM new_calls n
        JOIN tenants tn ON tn.id = n.tenant_id
        LEFT JOIN tariffs f ON f.tenant_id = n.tenant_id AND f.valid @> (n.offered_at AT TIME ZONE tn.time_zone)::date
    ), billed AS (
        SELECT r.*, billing_billable_seconds(r.talk_seconds, r.increment_seconds) AS billable_seconds,
               billing_at_minimum(billing_billable_seconds(r.talk_seconds, r.increment_seconds),
                                  r.price_per_minute, r.minimum_charge) AS at_minimum
        FROM rated r
    ), charges AS (
        INSERT INTO call_charges (tenant_id, call_id, day, tariff_id, talk_seconds, billable_seconds, at_minimum)
        SELECT tenant_id, id, day, tariff_id, talk_seconds, billable_seconds, at_minimum
        FROM billed WHERE talk_seconds > 0
    )
    INSERT INTO call_rollups AS r (tenant_id, day, purpose, tariff_id, offered, answered, abandoned, wait_reported,
                                   answered_within_30s, wait_seconds, settled_first_contact, forwarded_as_ticket,
                                   transferred, talk_seconds, unrated_calls, billed_calls, billable_seconds,
                                   minimum_calls, minimum_billable_seconds)
    SELECT tenant_id, day, purpose, (array_agg(tariff_id) FILTER (WHERE tariff_id IS NOT NULL))[1],
           count(*),
           count(*) FILTER (WHERE answered_at IS NOT NULL),
           count(*) FILTER (WHERE outcome = 'abandoned'),
           count(*) FILTER (WHERE answered_at IS NOT NULL AND wait_seconds IS NOT NULL),
           count(*) FILTER (WHERE answered_at IS NOT NULL AND wait_seconds <= 30),
           coalesce(sum(wait_seconds) FILTER (WHERE answered_at IS NOT NULL), 0),
           count(*) FILTER (WHERE outcome = 'settled_first_contact'),
           count(*) FILTER (WHERE outcome = 'forwarded_as_ticket'),
           count(*) FILTER (WHERE outcome = 'transferred_to_department'),
           coalesce(sum(talk_seconds), 0),
           count(*) FILTER (WHERE talk_seconds > 0 AND tariff_id IS NULL),
           count(*) FILTER (WHERE talk_seconds > 0 AND tariff_id IS NOT NULL),
           coalesce(sum(billable_seconds) FILTER (WHERE tariff_id IS NOT NULL), 0),
           count(*) FILTER (WHERE talk_seconds > 0 AND at_minimum),
           coalesce(sum(billable_seconds) FILTER (WHERE at_minimum), 0)
    FROM billed
    GROUP BY tenant_id, day, purpose
    ORDER BY tenant_id, day, purpose
    ON CONFLICT (tenant_id, day, purpose) DO UPDATE SET
        tariff_id = coalesce(EXCLUDED.tariff_id, r.tariff_id),
        offered = r.offered + EXCLUDED.offered,
        answered = r.answered + EXCLUDED.answered,
        abandoned = r.abandoned + EXCLUDED.abandoned,
        wait_reported = r.wait_reported + EXCLUDED.wait_reported,
        answered_within_30s = r.answered_within_30s + EXCLUDED.answered_within_30s,
        wait_seconds = r.wait_seconds + EXCLUDED.wait_seconds,
        settled_first_contact = r.settled_first_contact + EXCLUDED.settled_first_contact,
        forwarded_as_ticket = r.forwarded_as_ticket + EXCLUDED.forwarded_as_ticket,
        transferred = r.transferred + EXCLUDED.transferred,
        talk_seconds = r.talk_seconds + EXCLUDED.talk_seconds,
        unrated_calls = r.unrated_calls + EXCLUDED.unrated_calls,
        billed_calls = r.billed_calls + EXCLUDED.billed_calls,
        billable_seconds = r.billable_seconds + EXCLUDED.billable_seconds,
        minimum_calls = r.minimum_calls + EXCLUDED.minimum_calls,
        minimum_billable_seconds = r.minimum_billable_seconds + EXCLUDED.minimum_billable_seconds;
    RETURN NULL;
END $$;

-- Updates and deletes: the old rows' contributions (their stored charges) come off, the new
-- rows' go on. Only rows whose counted facts changed are touched (erasing the caller numbers of
-- a whole day changes nothing here and costs one hash join of the transition tables).
CREATE FUNCTION billing_calls_updated() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM old_calls o FULL JOIN new_calls n ON n.tenant_id = o.tenant_id AND n.id = o.id
        WHERE o.id IS NULL OR n.id IS NULL
           OR (o.offered_at, o.purpose, o.answered_at, o.wait_seconds, o.talk_seconds, o.outcome)
              IS DISTINCT FROM (n.offered_at, n.purpose, n.answered_at, n.wait_seconds, n.talk_seconds, n.outcome)
    ) THEN
        RETURN NULL;
    END IF;

    PERFORM pg_advisory_xact_lock_shared(1651076204, billing_lock_key(tenant_id))
    FROM (SELECT tenant_id FROM old_calls UNION SELECT tenant_id FROM new_calls ORDER BY 1) t;

    WITH pairs AS (
        SELECT o.tenant_id AS o_tenant, o.id AS o_id, o.offered_at AS o_offered, o.purpose AS o_purpose,
               o.answered_at AS o_answered, o.wait_seconds AS o_wait, o.talk_seconds AS o_talk, o.outcome AS o_outcome,
               n.tenant_id AS n_tenant, n.id AS n_id, n.offered_at AS n_offered, n.purpose AS n_purpose,
               n.answered_at AS n_answered, n.wait_seconds AS n_wait, n.talk_seconds AS n_talk, n.outcome AS n_outcome
        FROM old_calls o FULL JOIN new_calls n ON n.tenant_id = o.tenant_id AND n.id = o.id
        WHERE o.id IS NULL OR n.id IS NULL
           OR (o.offered_at, o.purpose, o.answered_at, o.wait_seconds, o.talk_seconds, o.outcome)
              IS DISTINCT FROM (n.offered_at, n.purpose, n.answered_at, n.wait_seconds, n.talk_seconds, n.outcome)
    ), old_rows AS (
        SELECT p.o_tenant AS tenant_id, (p.o_offered AT TIME ZONE tn.time_zone)::date AS day, p.o_purpose AS purpose,
               -1 AS sign, p.o_answered AS answered_at, p.o_wait AS wait_seconds, p.o_talk AS talk_seconds,
               p.o_outcome AS outcome, c.tariff_id, c.billable_seconds, coalesce(c.at_minimum, false) AS at_minimum
        FROM pairs p
        JOIN tenants tn ON tn.id = p.o_tenant
        LEFT JOIN call_charges c ON c.tenant_id = p.o_tenant AND c.call_id = p.o_id
        WHERE p.o_id IS NOT NULL
    ), new_rows AS (
        SELECT p.n_tenant, (p.n_offered AT TIME ZONE tn.time_zone)::date, p.n_purpose, 1,
               p.n_answered, p.n_wait, p.n_talk, p.n_outcome,
               CASE WHEN p.n_talk > 0 THEN f.id END,
               billing_billable_seconds(p.n_talk, f.increment_seconds),
               billing_at_minimum(billing_billable_seconds(p.n_talk, f.increment_seconds),
                                  f.price_per_minute, f.minimum_charge)
        FROM pairs p
        JOIN tenants tn ON tn.id = p.n_tenant
        LEFT JOIN tariffs f ON f.tenant_id = p.n_tenant AND f.valid @> (p.n_offered AT TIME ZONE tn.time_zone)::date
        WHERE p.n_id IS NOT NULL
    ), deltas AS (
        SELECT * FROM old_rows UNION ALL SELECT * FROM new_rows
    )
    INSERT INTO call_rollups AS r (tenant_id, day, purpose, tariff_id, offered, answered, abandoned, wait_reported,
                                   answered_within_30s, wait_seconds, settled_first_contact, forwarded_as_ticket,
                                   transferred, talk_seconds, unrated_calls, billed_calls, billable_seconds,
                                   minimum_calls, minimum_billable_seconds)
    SELECT tenant_id, day, purpose, (array_agg(tariff_id) FILTER (WHERE sign > 0 AND tariff_id IS NOT NULL))[1],
           sum(sign),
           coalesce(sum(sign) FILTER (WHERE answered_at IS NOT NULL), 0),
           coalesce(sum(sign) FILTER (WHERE outcome = 'abandoned'), 0),
           coalesce(sum(sign) FILTER (WHERE answered_at IS NOT NULL AND wait_seconds IS NOT NULL), 0),
           coalesce(sum(sign) FILTER (WHERE answered_at IS NOT NULL AND wait_seconds <= 30), 0),
           coalesce(sum(sign * wait_seconds) FILTER (WHERE answered_at IS NOT NULL), 0),
           coalesce(sum(sign) FILTER (WHERE outcome = 'settled_first_contact'), 0),
           coalesce(sum(sign) FILTER (WHERE outcome = 'forwarded_as_ticket'), 0),
           coalesce(sum(sign) FILTER (WHERE outcome = 'transferred_to_department'), 0),
           coalesce(sum(sign * talk_seconds), 0),
           coalesce(sum(sign) FILTER (WHERE talk_seconds > 0 AND tariff_id IS NULL), 0),
           coalesce(sum(sign) FILTER (WHERE talk_seconds > 0 AND tariff_id IS NOT NULL), 0),
           coalesce(sum(sign * billable_seconds) FILTER (WHERE tariff_id IS NOT NULL), 0),
           coalesce(sum(sign) FILTER (WHERE talk_seconds > 0 AND at_minimum), 0),
           coalesce(sum(sign * billable_seconds) FILTER (WHERE at_minimum), 0)
    FROM deltas
    GROUP BY tenant_id, day, purpose
    ORDER BY tenant_id, day, purpose
    ON CONFLICT (tenant_id, day, purpose) DO UPDATE SET
        tariff_id = coalesce(EXCLUDED.tariff_id, r.tariff_id),
        offered = r.offered + EXCLUDED.offered,
        answered = r.answered + EXCLUDED.answered,
        abandoned = r.abandoned + EXCLUDED.abandoned,
        wait_reported = r.wait_reported + EXCLUDED.wait_reported,
        answered_within_30s = r.answered_within_30s + EXCLUDED.answered_within_30s,
        wait_seconds = r.wait_seconds + EXCLUDED.wait_seconds,
        settled_first_contact = r.settled_first_contact + EXCLUDED.settled_first_contact,
        forwarded_as_ticket = r.forwarded_as_ticket + EXCLUDED.forwarded_as_ticket,
        transferred = r.transferred + EXCLUDED.transferred,
        talk_seconds = r.talk_seconds + EXCLUDED.talk_seconds,
        unrated_calls = r.unrated_calls + EXCLUDED.unrated_calls,
        billed_calls = r.billed_calls + EXCLUDED.billed_calls,
        billable_seconds = r.billable_seconds + EXCLUDED.billable_seconds,
        minimum_calls = r.minimum_calls + EXCLUDED.minimum_calls,
        minimum_billable_seconds = r.minimum_billable_seconds + EXCLUDED.minimum_billable_seconds;

    -- The changed calls' charges: the old ones go, the new ones are rated (separate statements,
    -- so the insert sees the delete).
    DELETE FROM call_charges c
    USING old_calls o LEFT JOIN new_calls n ON n.tenant_id = o.tenant_id AND n.id = o.id
    WHERE c.tenant_id = o.tenant_id AND c.call_id = o.id
      AND (n.id IS NULL
           OR (o.offered_at, o.purpose, o.answered_at, o.wait_seconds, o.talk_seconds, o.outcome)
              IS DISTINCT FROM (n.offered_at, n.purpose, n.answered_at, n.wait_seconds, n.talk_seconds, n.outcome));
    INSERT INTO call_charges (tenant_id, call_id, day, tariff_id, talk_seconds, billable_seconds, at_minimum)
    SELECT n.tenant_id, n.id, (n.offered_at AT TIME ZONE tn.time_zone)::date, f.id, n.talk_seconds,
           billing_billable_seconds(n.talk_seconds, f.increment_seconds),
           billing_at_minimum(billing_billable_seconds(n.talk_seconds, f.increment_seconds),
                              f.price_per_minute, f.minimum_charge)
    FROM new_calls n
    LEFT JOIN old_calls o ON o.tenant_id = n.tenant_id AND o.id = n.id
    JOIN tenants tn ON tn.id = n.tenant_id
    LEFT JOIN tariffs f ON f.tenant_id = n.tenant_id AND f.valid @> (n.offered_at AT TIME ZONE tn.time_zone)::date
    WHERE n.talk_seconds > 0
      AND (o.id IS NULL
           OR (o.offered_at, o.purpose, o.answered_at, o.wait_seconds, o.talk_seconds, o.outcome)
              IS DISTINCT FROM (n.offered_at, n.purpose, n.answered_at, n.wait_seconds, n.talk_seconds, n.outcome));
    RETURN NULL;
END $$;

-- Deletes (the application role may not delete calls; an administrator may): contributions off.
CREATE FUNCTION billing_calls_deleted() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(1651076204, billing_lock_key(tenant_id))
    FROM (SELECT DISTINCT tenant_id FROM old_calls ORDER BY 1) t;

    WITH old_rows AS (
        SELECT o.tenant_id, (o.offered_at AT TIME ZONE tn.time_zone)::date AS day, o.purpose,
               o.answered_at, o.wait_seconds, o.talk_seconds, o.outcome,
               c.tariff_id, c.billable_seconds, coalesce(c.at_minimum, false) AS at_minimum
        FROM old_calls o
        JOIN tenants tn ON tn.id = o.tenant_id
        LEFT JOIN call_charges c ON c.tenant_id = o.tenant_id AND c.call_id = o.id
    )
    UPDATE call_rollups r SET
        offered = r.offered - d.offered,
        answered = r.answered - d.answered,
        abandoned = r.abandoned - d.abandoned,
        wait_reported = r.wait_reported - d.wait_reported,
        answered_within_30s = r.answered_within_30s - d.answered_within_30s,
        wait_seconds = r.wait_seconds - d.wait_seconds,
        settled_first_contact = r.settled_first_contact - d.settled_first_contact,
        forwarded_as_ticket = r.forwarded_as_ticket - d.forwarded_as_ticket,
        transferred = r.transferred - d.transferred,
        talk_seconds = r.talk_seconds - d.talk_seconds,
        unrated_calls = r.unrated_calls - d.unrated_calls,
        billed_calls = r.billed_calls - d.billed_calls,
        billable_seconds = r.billable_seconds - d.billable_seconds,
        minimum_calls = r.minimum_calls - d.minimum_calls,
        minimum_billable_seconds = r.minimum_billable_seconds - d.minimum_billable_seconds
    FROM (
        SELECT tenant_id, day, purpose,
               count(*) AS offered,
               count(*) FILTER (WHERE answered_at IS NOT NULL) AS answered,
               count(*) FILTER (WHERE outcome = 'abandoned') AS abandoned,
               count(*) FILTER (WHERE answered_at IS NOT NULL AND wait_seconds IS NOT NULL) AS wait_reported,
               count(*) FILTER (WHERE answered_at IS NOT NULL AND wait_seconds <= 30) AS answered_within_30s,
               coalesce(sum(wait_seconds) FILTER (WHERE answered_at IS NOT NULL), 0) AS wait_seconds,
               count(*) FILTER (WHERE outcome = 'settled_first_contact') AS settled_first_contact,
               count(*) FILTER (WHERE outcome = 'forwarded_as_ticket') AS forwarded_as_ticket,
               count(*) FILTER (WHERE outcome = 'transferred_to_department') AS transferred,
               coalesce(sum(talk_seconds), 0) AS talk_seconds,
               count(*) FILTER (WHERE talk_seconds > 0 AND tariff_id IS NULL) AS unrated_calls,
               count(*) FILTER (WHERE talk_seconds > 0 AND tariff_id IS NOT NULL) AS billed_calls,
               coalesce(sum(billable_seconds) FILTER (WHERE tariff_id IS NOT NULL), 0) AS billable_seconds,
               count(*) FILTER (WHERE talk_seconds > 0 AND at_minimum) AS minimum_calls,
               coalesce(sum(billable_seconds) FILTER (WHERE at_minimum), 0) AS minimum_billable_seconds
        FROM old_rows GROUP BY tenant_id, day, purpose
    ) d
    WHERE r.tenant_id = d.tenant_id AND r.day = d.day AND r.purpose = d.purpose;

    DELETE FROM call_charges c USING old_calls o WHERE c.tenant_id = o.tenant_id AND c.call_id = o.id;
    RETURN NULL;
END $$;

CREATE TRIGGER billing_calls_inserted AFTER INSERT ON calls
    REFERENCING NEW TABLE AS new_calls FOR EACH STATEMENT EXECUTE FUNCTION billing_calls_inserted();
CREATE TRIGGER billing_calls_updated AFTER UPDATE ON calls
    REFERENCING OLD TABLE AS old_calls NEW TABLE AS new_calls FOR EACH STATEMENT EXECUTE FUNCTION billing_calls_updated();
CREATE TRIGGER billing_calls_deleted AFTER DELETE ON calls
    REFERENCING OLD TABLE AS old_calls FOR EACH STATEMENT EXECUTE FUNCTION billing_calls_deleted();

-- Re-rate a tenant's calls on local days [p_from, p_to) (p_to NULL: open-ended) from the raw
-- calls: charges and rollups of those days are rebuilt. Run after a tariff change (only ever for
-- days not yet invoiced); callers must act for the tenant.
CREATE FUNCTION billing_rebuild(p_tenant uuid, p_from date, p_to date) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
DECLARE
    tz text;
    lo timestamptz;
    hi timestamptz;
    rebuilt bigint;
BEGIN
    IF NOT p_tenant = ANY (app_tenant_ids()) THEN
        RAISE EXCEPTION 'not acting for tenant %', p_tenant USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM pg_advisory_xact_lock(1651076204, billing_lock_key(p_tenant));
    SELECT time_zone INTO tz FROM tenants WHERE id = p_tenant;
    lo := p_from::timestamp AT TIME ZONE tz;
    hi := CASE WHEN p_to IS NULL THEN 'infinity'::timestamptz ELSE p_to::timestamp AT TIME ZONE tz END;

    DELETE FROM call_charges WHERE tenant_id = p_tenant AND day >= p_from AND (p_to IS NULL OR day < p_to);
    DELETE FROM call_rollups WHERE tenant_id = p_tenant AND day >= p_from AND (p_to IS NULL OR day < p_to);

    INSERT INTO call_charges (tenant_id, call_id, day, tariff_id, talk_seconds, billable_seconds, at_minimum)
    SELECT c.tenant_id, c.id, (c.offered_at AT TIME ZONE tz)::date, f.id, c.talk_seconds,
           billing_billable_seconds(c.talk_seconds, f.increment_seconds),
           billing_at_minimum(billing_billable_seconds(c.talk_seconds, f.increment_seconds),
                              f.price_per_minute, f.minimum_charge)
    FROM calls c
    LEFT JOIN tariffs f ON f.tenant_id = c.tenant_id AND f.valid @> (c.offered_at AT TIME ZONE tz)::date
    WHERE c.tenant_id = p_tenant AND c.offered_at >= lo AND c.offered_at < hi AND c.talk_seconds > 0;

    INSERT INTO call_rollups (tenant_id, day, purpose, tariff_id, offered, answered, abandoned, wait_reported,
                              answered_within_30s, wait_seconds, settled_first_contact, forwarded_as_ticket,
                              transferred, talk_seconds, unrated_calls, billed_calls, billable_seconds,
                              minimum_calls, minimum_billable_seconds)
    SELECT c.tenant_id, (c.offered_at AT TIME ZONE tz)::date AS day, c.purpose,
           (array_agg(ch.tariff_id) FILTER (WHERE ch.tariff_id IS NOT NULL))[1],
           count(*),
           count(*) FILTER (WHERE c.answered_at IS NOT NULL),
           count(*) FILTER (WHERE c.outcome = 'abandoned'),
           count(*) FILTER (WHERE c.answered_at IS NOT NULL AND c.wait_seconds IS NOT NULL),
           count(*) FILTER (WHERE c.answered_at IS NOT NULL AND c.wait_seconds <= 30),
           coalesce(sum(c.wait_seconds) FILTER (WHERE c.answered_at IS NOT NULL), 0),
           count(*) FILTER (WHERE c.outcome = 'settled_first_contact'),
           count(*) FILTER (WHERE c.outcome = 'forwarded_as_ticket'),
           count(*) FILTER (WHERE c.outcome = 'transferred_to_department'),
           coalesce(sum(c.talk_seconds), 0),
           count(ch.call_id) FILTER (WHERE ch.tariff_id IS NULL),
           count(ch.call_id) FILTER (WHERE ch.tariff_id IS NOT NULL),
           coalesce(sum(ch.billable_seconds), 0),
           count(ch.call_id) FILTER (WHERE ch.at_minimum),
           coalesce(sum(ch.billable_seconds) FILTER (WHERE ch.at_minimum), 0)
    FROM calls c
    LEFT JOIN call_charges ch ON ch.tenant_id = c.tenant_id AND ch.call_id = c.id
    WHERE c.tenant_id = p_tenant AND c.offered_at >= lo AND c.offered_at < hi
    GROUP BY c.tenant_id, 2, c.purpose;
    GET DIAGNOSTICS rebuilt = ROW_COUNT;
    RETURN rebuilt;
END $$;

-- Issued invoices and credit notes are never changed or deleted: the only change an issued
-- invoice may see is its cancellation (status and the credit note that cancels it).
CREATE FUNCTION billing_invoice_guard() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'invoices are never deleted (invoice %)', OLD.id USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF OLD.status = 'draft' THEN
        IF NEW.status NOT IN ('draft', 'discarded', 'issued') THEN
            RAISE EXCEPTION 'a draft is issued or discarded, not %', NEW.status USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        IF (to_jsonb(NEW) - ARRAY['status', 'number', 'number_year', 'number_seq', 'issued_on', 'due_on', 'issued_at',
                                   'issued_by', 'seller', 'buyer', 'buyer_reference'])
           IS DISTINCT FROM
           (to_jsonb(OLD) - ARRAY['status', 'number', 'number_year', 'number_seq', 'issued_on', 'due_on', 'issued_at',
                                   'issued_by', 'seller', 'buyer', 'buyer_reference']) THEN
            RAISE EXCEPTION 'the amounts of a draft are fixed; run it again instead' USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
    END IF;
    IF OLD.status = 'issued' AND OLD.kind = 'invoice' AND NEW.status = 'cancelled'
       AND (to_jsonb(NEW) - ARRAY['status', 'cancelled_by_id', 'cancelled_at'])
           = (to_jsonb(OLD) - ARRAY['status', 'cancelled_by_id', 'cancelled_at']) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'issued invoices are never changed (invoice %, %)', OLD.number, OLD.status
        USING ERRCODE = 'integrity_constraint_violation';
END $$;

CREATE TRIGGER billing_invoice_guard BEFORE UPDATE OR DELETE ON invoices
    FOR EACH ROW EXECUTE FUNCTION billing_invoice_guard();

CREATE FUNCTION billing_invoice_line_guard() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        RAISE EXCEPTION 'invoice lines are never changed or deleted' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM invoices WHERE tenant_id = NEW.tenant_id AND id = NEW.invoice_id AND status = 'draft') THEN
        RAISE EXCEPTION 'lines are added to drafts only' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER billing_invoice_line_guard BEFORE INSERT OR UPDATE OR DELETE ON invoice_lines
    FOR EACH ROW EXECUTE FUNCTION billing_invoice_line_guard();

-- A tariff's price, increment, minimum or days may not change for days already invoiced (by an
-- issued invoice, or by correction lines of one); nor may a new tariff reach into them.
CREATE FUNCTION billing_tariff_guard() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    changed daterange[];
    tenant uuid;
BEGIN
    IF TG_OP = 'INSERT' THEN
        changed := ARRAY[NEW.valid];
        tenant := NEW.tenant_id;
    ELSIF TG_OP = 'DELETE' THEN
        changed := ARRAY[OLD.valid];
        tenant := OLD.tenant_id;
    ELSE
        tenant := OLD.tenant_id;
        IF (NEW.tenant_id, NEW.agreement_id, NEW.price_per_minute, NEW.increment_seconds, NEW.minimum_charge)
           IS DISTINCT FROM (OLD.tenant_id, OLD.agreement_id, OLD.price_per_minute, OLD.increment_seconds, OLD.minimum_charge) THEN
            changed := ARRAY[OLD.valid, NEW.valid];
        ELSIF NEW.valid IS DISTINCT FROM OLD.valid THEN
            -- The days in exactly one of the two periods (at the start and at the end).
            changed := ARRAY[
                daterange(least(lower(OLD.valid), lower(NEW.valid)), greatest(lower(OLD.valid), lower(NEW.valid))),
                daterange(least(coalesce(upper(OLD.valid), 'infinity'), coalesce(upper(NEW.valid), 'infinity')),
                          greatest(coalesce(upper(OLD.valid), 'infinity'), coalesce(upper(NEW.valid), 'infinity')))];
        ELSE
            RETURN NEW;
        END IF;
    END IF;
    IF EXISTS (SELECT 1 FROM invoices i
               WHERE i.tenant_id = tenant AND i.kind = 'invoice' AND i.purpose = 'usage' AND i.status = 'issued'
                 AND i.period && ANY (changed))
       OR EXISTS (SELECT 1 FROM invoice_lines l JOIN invoices i ON i.tenant_id = l.tenant_id AND i.id = l.invoice_id
                  WHERE l.tenant_id = tenant AND l.tariff_id = coalesce(OLD.id, NEW.id)
                    AND i.kind = 'invoice' AND i.status = 'issued' AND l.covers && ANY (changed)) THEN
        RAISE EXCEPTION 'the tariff''s period is already invoiced' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER billing_tariff_guard BEFORE INSERT OR UPDATE OR DELETE ON tariffs
    FOR EACH ROW EXECUTE FUNCTION billing_tariff_guard();

REVOKE ALL ON FUNCTION billing_rebuild(uuid, date, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION billing_rebuild(uuid, date, date) TO bs_app;
GRANT SELECT, INSERT, UPDATE ON billing_profiles, figure_targets, tariffs, invoice_counters, invoices, cost_bases TO bs_app;
GRANT SELECT, INSERT ON invoice_lines TO bs_app;
GRANT SELECT ON call_charges, call_rollups TO bs_app;

-- migrate:down
DROP TRIGGER billing_calls_deleted ON calls;
DROP TRIGGER billing_calls_updated ON calls;
DROP TRIGGER billing_calls_inserted ON calls;
DROP POLICY billing_maintenance ON calls;
DROP FUNCTION billing_rebuild(uuid, date, date);
DROP FUNCTION billing_calls_deleted();
DROP FUNCTION billing_calls_updated();
DROP FUNCTION billing_calls_inserted();
DROP TABLE cost_bases;
DROP TABLE invoice_lines;
DROP TABLE invoices;
DROP FUNCTION billing_invoice_line_guard();
DROP FUNCTION billing_invoice_guard();
DROP TABLE invoice_counters;
DROP TABLE call_rollups;
DROP TABLE call_charges;
DROP TABLE tariffs;
DROP FUNCTION billing_tariff_guard();
DROP TABLE figure_targets;
DROP TABLE billing_profiles;
DROP FUNCTION billing_lock_key(uuid);
DROP FUNCTION billing_at_minimum(integer, numeric, numeric);
DROP FUNCTION billing_billable_seconds(integer, integer);
