-- migrate:up

-- A service number is a text span in E.164: a full number covers exactly itself ('[n,n]'), a
-- number block covers every string starting with its prefix ('[p,p~)': '~' sorts after every
-- digit in the C collation). So the block +492921 and the number +4929213000 overlap, the
-- blocks +492921 and +4929213 overlap, and +492921300 and +4929213000 (two full numbers) do not.
CREATE TYPE number_span AS RANGE (subtype = text, collation = "C");

CREATE TABLE service_numbers (
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    id             uuid NOT NULL,
    number         text NOT NULL CHECK (number ~ '^\+[1-9][0-9]{1,14}$'),
    kind           text NOT NULL CHECK (kind IN ('number', 'block')),
    purpose        text NOT NULL CHECK (purpose IN ('central', '115', 'department')),
    department_id  uuid,
    greeting       text CHECK (greeting IS NULL OR length(btrim(greeting)) BETWEEN 1 AND 200),
    routing_window text NOT NULL DEFAULT 'service_hours'
                   CHECK (routing_window IN ('always', 'service_hours', 'operator_absent')),
    -- Days in Europe/Berlin, upper bound exclusive; never empty, always with a first day.
    valid          daterange NOT NULL CHECK (NOT isempty(valid) AND NOT lower_inf(valid)),
    span           number_span NOT NULL GENERATED ALWAYS AS (
                       CASE kind WHEN 'block' THEN number_span(number, number || '~', '[)')
                                 ELSE number_span(number, number, '[]') END) STORED,
    version        integer NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, department_id) REFERENCES departments (tenant_id, id),
    CHECK (purpose <> 'department' OR department_id IS NOT NULL),
    -- The database, not only the code, refuses two tenants owning overlapping numbers in
    -- overlapping periods. The check runs on the index, so row-level security hides nothing.
    CONSTRAINT service_numbers_one_owner EXCLUDE USING gist (span WITH &&, valid WITH &&, tenant_id WITH <>),
    -- Within a tenant, one row per number or block at a time (a block and its numbers may nest).
    CONSTRAINT service_numbers_one_row EXCLUDE USING gist (tenant_id WITH =, span WITH =, valid WITH &&)
);

-- The town's own operator (Geseke: the employee at the town hall switchboard) is absent at
-- recurring weekly times (lunch break) and in dated periods (leave); routing windows of kind
-- 'operator_absent' hand calls to the centre only then.
CREATE TABLE absence_weekly (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id        uuid NOT NULL,
    weekday   smallint NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    starts    time NOT NULL,
    ends      time NOT NULL,
    note      text NOT NULL DEFAULT '' CHECK (length(note) <= 200),
    PRIMARY KEY (tenant_id, id),
    CHECK (starts < ends)
);

CREATE TABLE absence_dated (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id        uuid NOT NULL,
    during    tstzrange NOT NULL CHECK (NOT isempty(during) AND NOT lower_inf(during) AND NOT upper_inf(during)),
    note      text NOT NULL DEFAULT '' CHECK (length(note) <= 200),
    PRIMARY KEY (tenant_id, id)
);

-- 115: the caller's area code names the municipality, maintained per operator (tenant_id).
-- A municipality that is no client tenant is answered by the operator itself.
CREATE TABLE area_codes (
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    area_code        text NOT NULL CHECK (area_code ~ '^\+[1-9][0-9]{1,8}$'),
    ags              text NOT NULL CHECK (ags ~ '^[0-9]{8}$'),
    municipality     text NOT NULL CHECK (length(btrim(municipality)) BETWEEN 1 AND 200),
    client_tenant_id uuid REFERENCES tenants (id),
    PRIMARY KEY (tenant_id, area_code, ags)
);

-- One call as the telephony system reports it. The tenant is resolved from the dialled number
-- at the call's start and stored; (source tenant, source system, external id) makes posts
-- idempotent across all tenants (a unique index, so row-level security hides nothing).
CREATE TABLE calls (
    tenant_id             uuid NOT NULL REFERENCES tenants (id),
    id                    uuid NOT NULL,
    source_tenant_id      uuid NOT NULL REFERENCES tenants (id),
    source_system         text NOT NULL CHECK (length(source_system) BETWEEN 1 AND 200),
    external_id           text NOT NULL CHECK (length(external_id) BETWEEN 1 AND 200),
    service_number_id     uuid NOT NULL,
    dialled               text NOT NULL,
    purpose               text NOT NULL CHECK (purpose IN ('central', '115', 'department')),
    resolved_by           text NOT NULL,
    caller                text,            -- personal data: erased after the retention period
    caller_erased_at      timestamptz,
    queue                 text,
    offered_at            timestamptz NOT NULL,
    answered_at           timestamptz CHECK (answered_at >= offered_at),
    ended_at              timestamptz CHECK (ended_at >= offered_at),
    agent                 text,
    wait_seconds          integer CHECK (wait_seconds >= 0),
    talk_seconds          integer CHECK (talk_seconds >= 0),
    outcome               text CHECK (outcome IN ('settled_first_contact', 'forwarded_as_ticket',
                                                  'transferred_to_department', 'abandoned')),
    outcome_department_id uuid,
    ticket_id             uuid,
    outcome_note          text CHECK (length(outcome_note) <= 2000),
    outcome_by            text,
    outcome_at            timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, outcome_department_id) REFERENCES departments (tenant_id, id),
    CHECK (answered_at IS NULL OR ended_at IS NULL OR ended_at >= answered_at),
    CHECK (outcome <> 'transferred_to_department' OR outcome_department_id IS NOT NULL)
);
CREATE UNIQUE INDEX calls_source_external ON calls (source_tenant_id, source_system, external_id);
CREATE INDEX calls_tenant_offered ON calls (tenant_id, offered_at, id);
CREATE INDEX calls_caller_retention ON calls (offered_at) WHERE caller IS NOT NULL;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['service_numbers', 'absence_weekly', 'absence_dated', 'area_codes', 'calls'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I
                            USING (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]))
                            WITH CHECK (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]))', t);
    END LOOP;
END $$;

-- Routing happens before the tenant of a call is known, like sign-in: the lookups below run as
-- the owner (SECURITY DEFINER), and the owner alone gets read-only policies for them. Given
-- p_tenants they return only those tenants (the caller's acting tenants); NULL compiles the
-- shared routing table that is cached in Redis and filtered by the caller's tenants in the app.
CREATE POLICY routing_lookup ON service_numbers FOR SELECT TO CURRENT_USER USING (true);
CREATE POLICY routing_lookup ON absence_weekly FOR SELECT TO CURRENT_USER USING (true);
CREATE POLICY routing_lookup ON absence_dated FOR SELECT TO CURRENT_USER USING (true);
CREATE POLICY routing_lookup ON area_codes FOR SELECT TO CURRENT_USER USING (true);
CREATE POLICY routing_lookup ON departments FOR SELECT TO CURRENT_USER USING (true);
CREATE POLICY routing_lookup ON closing_days FOR SELECT TO CURRENT_USER USING (true);

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

-- Everything a routing decision needs to know about a tenant, as one row per tenant.
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

CREATE FUNCTION routing_area_codes(p_tenants uuid[])
    RETURNS TABLE (tenant_id uuid, area_code text, ags text, municipality text, client_tenant_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT a.tenant_id, a.area_code, a.ags, a.municipality, a.client_tenant_id
        FROM area_codes a
        WHERE p_tenants IS NULL OR a.tenant_id = ANY (p_tenants)
    $$;

REVOKE ALL ON FUNCTION routing_numbers(uuid[], text), routing_tenants(uuid[]), routing_area_codes(uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION routing_numbers(uuid[], text), routing_tenants(uuid[]), routing_area_codes(uuid[]) TO bs_app;
GRANT SELECT, INSERT, UPDATE ON service_numbers, calls TO bs_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON absence_weekly, absence_dated, area_codes TO bs_app;

-- migrate:down
DROP FUNCTION routing_area_codes(uuid[]);
DROP FUNCTION routing_tenants(uuid[]);
DROP FUNCTION routing_numbers(uuid[], text);
DROP POLICY routing_lookup ON closing_days;
DROP POLICY routing_lookup ON departments;
DROP TABLE calls;
DROP TABLE area_codes;
DROP TABLE absence_dated;
DROP TABLE absence_weekly;
DROP TABLE service_numbers;
DROP TYPE number_span;
