-- migrate:up

-- Tariffs as the trade writes them (issue 17 §2): a first period, then an increment
-- ("60/60" per started minute, "60/1" the first minute then per second, "30/1", "1/1"). A call
-- is billed the first period whole, then each started increment. Existing tariffs get a first
-- period equal to their increment, which bills exactly as before.
ALTER TABLE tariffs NO FORCE ROW LEVEL SECURITY;  -- the owner fills the new column for every tenant
ALTER TABLE tariffs ADD COLUMN first_period_seconds integer;
UPDATE tariffs SET first_period_seconds = increment_seconds;
ALTER TABLE tariffs FORCE ROW LEVEL SECURITY;
ALTER TABLE tariffs ALTER COLUMN first_period_seconds SET NOT NULL;
ALTER TABLE tariffs DROP CONSTRAINT tariffs_increment_seconds_check;
ALTER TABLE tariffs ADD CONSTRAINT tariffs_increment_seconds_check CHECK (increment_seconds IN (1, 10, 30, 60));
ALTER TABLE tariffs ADD CONSTRAINT tariffs_first_period_seconds_check
    CHECK (first_period_seconds BETWEEN 1 AND 600 AND first_period_seconds % increment_seconds = 0);

-- A tariff written without a first period (older clients, scripts) has none: it is the increment.
CREATE FUNCTION billing_tariff_first_period() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    NEW.first_period_seconds := coalesce(NEW.first_period_seconds, NEW.increment_seconds);
    RETURN NEW;
END $$;
-- Named to sort before billing_tariff_guard, which compares the first period.
CREATE TRIGGER billing_tariff_first_period BEFORE INSERT OR UPDATE ON tariffs
    FOR EACH ROW EXECUTE FUNCTION billing_tariff_first_period();

-- Seconds billed for a call: the first period whole, then each started increment; NULL for none.
-- The Python twin is backend.billing.rating.billable_seconds (tests keep both in step).
CREATE FUNCTION billing_billable_seconds(p_talk integer, p_first integer, p_increment integer) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN p_talk > 0 THEN
                     CASE WHEN p_talk <= p_first THEN p_first
                          ELSE p_first + ((p_talk - p_first + p_increment - 1) / p_increment) * p_increment END
                 END $$;

-- The rating triggers, the rebuild and the tariff guard as in 20261125400000_billing.sql, with the
-- first period passed along (and counted as a term of the price by the guard).
CREATE OR REPLACE FUNCTION billing_calls_inserted() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(1651076204, billing_lock_key(tenant_id))
    FROM (SELECT DISTINCT tenant_id FROM new_calls ORDER BY tenant_id) t;

    WITH rated AS (
        SELECT n.tenant_id, n.id, n.purpose, (n.offered_at AT TIME ZONE tn.time_zone)::date AS day,
               n.answered_at, n.wait_seconds, n.talk_seconds, n.outcome,
               f.id AS tariff_id, f.price_per_minute, f.minimum_charge, f.increment_seconds,
               f.first_period_seconds
        FROM new_calls n
        JOIN tenants tn ON tn.id = n.tenant_id
        LEFT JOIN tariffs f ON f.tenant_id = n.tenant_id AND f.valid @> (n.offered_at AT TIME ZONE tn.time_zone)::date
    ), billed AS (
        SELECT r.*, billing_billable_seconds(r.talk_seconds, r.first_period_seconds, r.increment_seconds) AS billable_seconds,
               billing_at_minimum(billing_billable_seconds(r.talk_seconds, r.first_period_seconds, r.increment_seconds),
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

CREATE OR REPLACE FUNCTION billing_calls_updated() RETURNS trigger
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
               billing_billable_seconds(p.n_talk, f.first_period_seconds, f.increment_seconds),
               billing_at_minimum(billing_billable_seconds(p.n_talk, f.first_period_seconds, f.increment_seconds),
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
           billing_billable_seconds(n.talk_seconds, f.first_period_seconds, f.increment_seconds),
           billing_at_minimum(billing_billable_seconds(n.talk_seconds, f.first_period_seconds, f.increment_seconds),
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

CREATE OR REPLACE FUNCTION billing_rebuild(p_tenant uuid, p_from date, p_to date) RETURNS bigint
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
           billing_billable_seconds(c.talk_seconds, f.first_period_seconds, f.increment_seconds),
           billing_at_minimum(billing_billable_seconds(c.talk_seconds, f.first_period_seconds, f.increment_seconds),
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

CREATE OR REPLACE FUNCTION billing_tariff_guard() RETURNS trigger
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
        IF (NEW.tenant_id, NEW.agreement_id, NEW.price_per_minute, NEW.first_period_seconds, NEW.increment_seconds,
            NEW.minimum_charge)
           IS DISTINCT FROM (OLD.tenant_id, OLD.agreement_id, OLD.price_per_minute, OLD.first_period_seconds,
                               OLD.increment_seconds, OLD.minimum_charge) THEN
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

DROP FUNCTION billing_billable_seconds(integer, integer);

-- migrate:down
CREATE FUNCTION billing_billable_seconds(p_talk integer, p_increment integer) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN p_talk > 0 THEN ((p_talk + p_increment - 1) / p_increment) * p_increment END $$;

CREATE OR REPLACE FUNCTION billing_calls_inserted() RETURNS trigger
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

CREATE OR REPLACE FUNCTION billing_calls_updated() RETURNS trigger
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

CREATE OR REPLACE FUNCTION billing_rebuild(p_tenant uuid, p_from date, p_to date) RETURNS bigint
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

CREATE OR REPLACE FUNCTION billing_tariff_guard() RETURNS trigger
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

DROP FUNCTION billing_billable_seconds(integer, integer, integer);
DROP TRIGGER billing_tariff_first_period ON tariffs;
DROP FUNCTION billing_tariff_first_period();
ALTER TABLE tariffs DROP CONSTRAINT tariffs_first_period_seconds_check;
ALTER TABLE tariffs DROP CONSTRAINT tariffs_increment_seconds_check;
ALTER TABLE tariffs ADD CONSTRAINT tariffs_increment_seconds_check CHECK (increment_seconds IN (1, 60));
ALTER TABLE tariffs DROP COLUMN first_period_seconds;
