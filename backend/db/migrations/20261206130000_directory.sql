-- migrate:up

-- The directory of a town (decision 023): its contact persons, what each is responsible for,
-- their substitutes in order, and whether they are reachable now. Employees' personal data:
-- tenant-owned like everything else, RLS forced.
CREATE TABLE directory_people (
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    id            uuid NOT NULL,
    salutation    text NOT NULL DEFAULT '' CHECK (salutation IN ('', 'Frau', 'Herr')),
    given_name    text NOT NULL DEFAULT '' CHECK (length(given_name) <= 100),
    family_name   text NOT NULL CHECK (length(btrim(family_name)) BETWEEN 1 AND 100),
    function      text NOT NULL DEFAULT '' CHECK (length(function) <= 200),
    department_id uuid,
    phone         text CHECK (phone ~ '^\+[1-9][0-9]{1,14}$'),
    email         text CHECK (length(email) <= 254),
    room          text NOT NULL DEFAULT '' CHECK (length(room) <= 50),
    languages     text[] NOT NULL DEFAULT '{}',
    -- Who the person is elsewhere: the SCIM userName / externalId of the town's identity
    -- provider, and the OIDC subject with which they sign in here (their own presence switch).
    user_name     text CHECK (length(user_name) BETWEEN 1 AND 254),
    external_id   text CHECK (length(external_id) BETWEEN 1 AND 254),
    subject       text CHECK (length(subject) BETWEEN 1 AND 255),
    active        boolean NOT NULL DEFAULT true,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, department_id) REFERENCES departments (tenant_id, id)
);
CREATE UNIQUE INDEX directory_people_user_name ON directory_people (tenant_id, lower(user_name));
CREATE UNIQUE INDEX directory_people_subject ON directory_people (tenant_id, subject);
CREATE UNIQUE INDEX directory_people_phone ON directory_people (tenant_id, phone);

-- What a person is responsible for: a LeiKa service (key or key prefix) or a topic, optionally
-- only for citizens whose surname falls in [surname_from, surname_to] (compared on the
-- folded initial letters, "A"–"K") and/or for an area (a municipal key or district name).
CREATE TABLE directory_responsibilities (
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    id           uuid NOT NULL,
    person_id    uuid NOT NULL,
    leika_key    text CHECK (leika_key ~ '^[0-9]{1,14}$'),
    topic        text CHECK (length(btrim(topic)) BETWEEN 1 AND 200),
    surname_from text CHECK (surname_from ~ '^[A-Z]{1,3}$'),
    surname_to   text CHECK (surname_to ~ '^[A-Z]{1,3}$'),
    area         text CHECK (length(btrim(area)) BETWEEN 1 AND 100),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, person_id) REFERENCES directory_people (tenant_id, id) ON DELETE CASCADE,
    CHECK ((leika_key IS NULL) <> (topic IS NULL)),
    CHECK ((surname_from IS NULL) = (surname_to IS NULL) AND (surname_from IS NULL OR surname_from <= surname_to))
);
CREATE INDEX directory_responsibilities_key ON directory_responsibilities (tenant_id, leika_key);

-- A person's substitutes (Vertretung), in order.
CREATE TABLE directory_substitutes (
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    person_id     uuid NOT NULL,
    position      smallint NOT NULL CHECK (position BETWEEN 1 AND 10),
    substitute_id uuid NOT NULL,
    PRIMARY KEY (tenant_id, person_id, position),
    UNIQUE (tenant_id, person_id, substitute_id),
    FOREIGN KEY (tenant_id, person_id) REFERENCES directory_people (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, substitute_id) REFERENCES directory_people (tenant_id, id) ON DELETE CASCADE,
    CHECK (person_id <> substitute_id)
);

-- Presence, from the person's own switch (until a moment) …
CREATE TABLE directory_presence_switch (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    person_id uuid NOT NULL,
    state     text NOT NULL CHECK (state IN ('available', 'away', 'in_meeting')),
    until     timestamptz NOT NULL,
    set_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, person_id),
    FOREIGN KEY (tenant_id, person_id) REFERENCES directory_people (tenant_id, id) ON DELETE CASCADE
);

-- … and from the telephone system's events (the latest per person; each expires).
CREATE TABLE directory_presence_phone (
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    person_id  uuid NOT NULL,
    state      text NOT NULL CHECK (state IN ('busy', 'ringing', 'idle', 'logged_off')),
    at         timestamptz NOT NULL,
    expires_at timestamptz NOT NULL CHECK (expires_at > at),
    PRIMARY KEY (tenant_id, person_id),
    FOREIGN KEY (tenant_id, person_id) REFERENCES directory_people (tenant_id, id) ON DELETE CASCADE
);

-- The absence calendar is the one the town's operator already has (absence_weekly,
-- absence_dated): a row with a person belongs to that person, a row without one to the town's
-- operator, as before. One model, not two.
ALTER TABLE absence_weekly ADD COLUMN person_id uuid;
ALTER TABLE absence_weekly ADD FOREIGN KEY (tenant_id, person_id) REFERENCES directory_people (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE absence_dated ADD COLUMN person_id uuid;
ALTER TABLE absence_dated ADD FOREIGN KEY (tenant_id, person_id) REFERENCES directory_people (tenant_id, id) ON DELETE CASCADE;
CREATE INDEX absence_weekly_person ON absence_weekly (tenant_id, person_id) WHERE person_id IS NOT NULL;
CREATE INDEX absence_dated_person ON absence_dated (tenant_id, person_id) WHERE person_id IS NOT NULL;

-- A department's general line keeps its own hours (null: the town's service hours).
ALTER TABLE departments ADD COLUMN hours jsonb CHECK (hours IS NULL OR jsonb_typeof(hours) = 'array');

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['directory_people', 'directory_responsibilities', 'directory_substitutes',
                             'directory_presence_switch', 'directory_presence_phone'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I
                            USING (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]))
                            WITH CHECK (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]))', t);
    END LOOP;
END $$;

GRANT SELECT, INSERT, UPDATE, DELETE ON directory_people, directory_responsibilities, directory_substitutes,
    directory_presence_switch, directory_presence_phone TO bs_app;

-- Routing's view of a tenant keeps only the town operator's absences (person_id IS NULL).
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
                         FROM absence_weekly w WHERE w.tenant_id = t.id AND w.person_id IS NULL), '[]'),
               coalesce((SELECT jsonb_agg(jsonb_build_object('starts', lower(a.during), 'ends', upper(a.during))
                                          ORDER BY lower(a.during))
                         FROM absence_dated a WHERE a.tenant_id = t.id AND a.person_id IS NULL), '[]')
        FROM tenants t
        WHERE (v_tenants IS NULL OR t.id = ANY (v_tenants)) AND t.status <> 'offboarded';
END $$;

-- migrate:down
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
ALTER TABLE departments DROP COLUMN hours;
DELETE FROM absence_weekly WHERE person_id IS NOT NULL;
DELETE FROM absence_dated WHERE person_id IS NOT NULL;
ALTER TABLE absence_weekly DROP COLUMN person_id;
ALTER TABLE absence_dated DROP COLUMN person_id;
DROP TABLE directory_presence_phone;
DROP TABLE directory_presence_switch;
DROP TABLE directory_substitutes;
DROP TABLE directory_responsibilities;
DROP TABLE directory_people;
