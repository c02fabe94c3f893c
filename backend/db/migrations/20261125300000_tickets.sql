-- migrate:up

-- Tickets (Anliegen / Rückrufbitte): what an agent cannot settle goes to the town's department.
-- Every table is owned by a tenant (the town the ticket is for), leads its key with tenant_id and
-- is guarded by row-level security. Calls and knowledge articles are linked by plain columns
-- (call_id, article_id, leika_key) without foreign keys: those domains live on their own.

-- Per-tenant settings of the ticket domain (a row is optional: absent means the defaults).
CREATE TABLE ticket_settings (
    tenant_id        uuid PRIMARY KEY REFERENCES tenants (id),
    deadline_rule    text NOT NULL DEFAULT 'working_days_24h'
                     CHECK (deadline_rule IN ('working_days_24h', 'service_hours_24h')),
    retention_days   integer NOT NULL DEFAULT 90 CHECK (retention_days BETWEEN 1 AND 3650),
    due_soon_minutes integer NOT NULL DEFAULT 120 CHECK (due_soon_minutes BETWEEN 1 AND 1440),
    version          integer NOT NULL DEFAULT 1,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Responsibility table: LeiKa key or key prefix (group) → department; key_prefix NULL is the
-- default department. The longest matching prefix wins.
CREATE TABLE ticket_routes (
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    id            uuid NOT NULL,
    key_prefix    text CHECK (key_prefix ~ '^[0-9]{1,14}$'),
    department_id uuid NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, department_id) REFERENCES departments (tenant_id, id)
);
CREATE UNIQUE INDEX ticket_routes_prefix ON ticket_routes (tenant_id, coalesce(key_prefix, ''));

-- One row per tenant: ticket numbers and the change sequence. Every change to a tenant's tickets
-- takes this row's lock last and bumps last_change_seq, so change numbers are handed out in
-- commit order: a reader of "changes since N" never skips a change that commits later.
CREATE TABLE ticket_counters (
    tenant_id       uuid PRIMARY KEY REFERENCES tenants (id),
    last_number     bigint NOT NULL DEFAULT 0,
    last_change_seq bigint NOT NULL DEFAULT 0
);

CREATE TABLE tickets (
    tenant_id               uuid NOT NULL REFERENCES tenants (id),
    id                      uuid NOT NULL,
    number                  bigint NOT NULL,
    department_id           uuid NOT NULL,
    status                  text NOT NULL DEFAULT 'new'
                            CHECK (status IN ('new', 'forwarded', 'in_progress', 'answered', 'closed')),
    priority                text NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    subject                 text NOT NULL CHECK (length(subject) <= 200),
    leika_key               text CHECK (leika_key ~ '^[0-9]{1,14}$'),
    article_id              uuid,            -- knowledge domain, no foreign key by design
    call_id                 uuid,            -- telephony domain, no foreign key by design
    source                  text NOT NULL CHECK (source IN ('agent', 'partner', 'staff')),
    assignee                text CHECK (length(assignee) BETWEEN 1 AND 255),
    created_by              text NOT NULL,   -- pseudonymous subject id of the creator
    created_by_tenant_id    uuid NOT NULL,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    -- The callback deadline, with the rule and calendar version it was computed with.
    deadline_started_at     timestamptz NOT NULL,
    due_at                  timestamptz NOT NULL,
    deadline_rule           text NOT NULL CHECK (deadline_rule IN ('working_days_24h', 'service_hours_24h')),
    calendar_version        text NOT NULL,
    deadline_seq            integer NOT NULL DEFAULT 1,   -- bumped when a reopen sets a new deadline
    answered_at             timestamptz,
    closed_at               timestamptz,
    reopened_at             timestamptz,
    personal_data_erased_at timestamptz,
    change_seq              bigint NOT NULL,
    version                 integer NOT NULL DEFAULT 1,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, number),
    FOREIGN KEY (tenant_id, department_id) REFERENCES departments (tenant_id, id),
    CHECK (due_at > deadline_started_at)
);
CREATE INDEX tickets_changes ON tickets (tenant_id, change_seq);
CREATE INDEX tickets_due ON tickets (tenant_id, due_at, id);
CREATE INDEX tickets_open_due ON tickets (due_at) WHERE status IN ('new', 'forwarded', 'in_progress');
CREATE INDEX tickets_closed ON tickets (closed_at) WHERE status = 'closed' AND personal_data_erased_at IS NULL;

-- The citizen's personal data, apart from the ticket so that listing never touches it and the
-- retention purge can delete it in one place. Every read is recorded in ticket_audit.
CREATE TABLE ticket_personal_data (
    tenant_id         uuid NOT NULL,
    ticket_id         uuid NOT NULL,
    concern           text NOT NULL CHECK (length(concern) <= 10000),
    citizen_name      text CHECK (length(citizen_name) <= 200),
    callback_number   text CHECK (length(callback_number) <= 40),
    email             text CHECK (length(email) <= 254),
    preferred_channel text NOT NULL CHECK (preferred_channel IN ('phone', 'email', 'letter', 'none')),
    consent           boolean NOT NULL,
    consent_at        timestamptz,
    PRIMARY KEY (tenant_id, ticket_id),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id)
);

-- Workflow and everything else that happened to a ticket: who (pseudonymous subject) and when.
-- No free text here, so the history survives the retention purge without personal data.
CREATE TABLE ticket_events (
    tenant_id       uuid NOT NULL,
    id              uuid NOT NULL,
    ticket_id       uuid NOT NULL,
    change_seq      bigint NOT NULL,
    kind            text NOT NULL,
    from_status     text,
    to_status       text,
    actor_kind      text NOT NULL CHECK (actor_kind IN ('person', 'machine', 'system')),
    actor_subject   text,
    actor_tenant_id uuid,
    details         jsonb NOT NULL DEFAULT '{}',
    at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id)
);
CREATE INDEX ticket_events_ticket ON ticket_events (tenant_id, ticket_id, change_seq);

CREATE TABLE ticket_comments (
    tenant_id       uuid NOT NULL,
    id              uuid NOT NULL,
    ticket_id       uuid NOT NULL,
    body            text NOT NULL CHECK (length(body) <= 5000),
    author_subject  text NOT NULL,
    author_tenant_id uuid NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    erased          boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id)
);
CREATE INDEX ticket_comments_ticket ON ticket_comments (tenant_id, ticket_id, created_at);

CREATE TABLE ticket_callback_attempts (
    tenant_id       uuid NOT NULL,
    id              uuid NOT NULL,
    ticket_id       uuid NOT NULL,
    channel         text NOT NULL CHECK (channel IN ('phone', 'email', 'letter')),
    attempted_at    timestamptz NOT NULL,
    reached         boolean NOT NULL,
    note            text CHECK (length(note) <= 2000),
    recorded_by     text NOT NULL,
    recorded_by_tenant_id uuid NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id)
);
CREATE INDEX ticket_callback_attempts_ticket ON ticket_callback_attempts (tenant_id, ticket_id, attempted_at);

-- Append-only record of every read of a ticket's personal data (who, when, which ticket, what).
CREATE TABLE ticket_audit (
    tenant_id       uuid NOT NULL,
    id              uuid NOT NULL,
    ticket_id       uuid NOT NULL,
    actor_subject   text NOT NULL,
    actor_issuer    text NOT NULL,
    actor_tenant_id uuid NOT NULL,
    via             text NOT NULL CHECK (via IN ('rest', 'graphql')),
    what            text NOT NULL CHECK (what IN ('contact', 'comments', 'callback_notes')),
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX ticket_audit_at ON ticket_audit (tenant_id, at, id);
CREATE INDEX ticket_audit_ticket ON ticket_audit (tenant_id, ticket_id, at);

CREATE FUNCTION ticket_audit_is_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ticket_audit is append-only';
END $$;
CREATE TRIGGER ticket_audit_append_only BEFORE UPDATE OR DELETE ON ticket_audit
    FOR EACH ROW EXECUTE FUNCTION ticket_audit_is_append_only();
CREATE TRIGGER ticket_audit_no_truncate BEFORE TRUNCATE ON ticket_audit
    FOR EACH STATEMENT EXECUTE FUNCTION ticket_audit_is_append_only();

-- Transactional outbox: written in the same transaction as the change. Payloads carry ids,
-- statuses and times only, never personal data. dedupe_key makes "due soon" and "overdue"
-- happen once per ticket and deadline, however many app instances look at the same moment.
CREATE TABLE ticket_outbox (
    tenant_id  uuid NOT NULL,
    id         uuid NOT NULL,
    ticket_id  uuid NOT NULL,
    change_seq bigint NOT NULL,
    kind       text NOT NULL,
    payload    jsonb NOT NULL,
    dedupe_key text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id)
);
CREATE UNIQUE INDEX ticket_outbox_once ON ticket_outbox (tenant_id, ticket_id, dedupe_key);
CREATE INDEX ticket_outbox_ticket ON ticket_outbox (tenant_id, ticket_id, change_seq);

-- A town's registered webhook endpoints and their signing secrets (several during a rotation).
CREATE TABLE ticket_webhook_endpoints (
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    id          uuid NOT NULL,
    url         text NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2000),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE ticket_webhook_secrets (
    tenant_id   uuid NOT NULL,
    id          uuid NOT NULL,
    endpoint_id uuid NOT NULL,
    secret      text NOT NULL CHECK (secret ~ '^whsec_'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,          -- set when a newer secret replaces it (grace period)
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, endpoint_id) REFERENCES ticket_webhook_endpoints (tenant_id, id) ON DELETE CASCADE
);

-- One delivery per (event, endpoint). Delivered in change order per ticket and endpoint.
CREATE TABLE ticket_webhook_deliveries (
    tenant_id        uuid NOT NULL,
    id               uuid NOT NULL,
    event_id         uuid NOT NULL,
    endpoint_id      uuid NOT NULL,
    ticket_id        uuid NOT NULL,
    change_seq       bigint NOT NULL,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'cancelled')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_attempt_at  timestamptz,
    last_status_code integer,
    last_error       text,
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, event_id, endpoint_id),
    FOREIGN KEY (tenant_id, event_id) REFERENCES ticket_outbox (tenant_id, id),
    FOREIGN KEY (tenant_id, endpoint_id) REFERENCES ticket_webhook_endpoints (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX ticket_webhook_deliveries_pending ON ticket_webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX ticket_webhook_deliveries_order ON ticket_webhook_deliveries (tenant_id, endpoint_id, ticket_id, change_seq)
    WHERE status = 'pending';
CREATE INDEX ticket_webhook_deliveries_log ON ticket_webhook_deliveries (tenant_id, endpoint_id, created_at);

-- The delivery log: every attempt with its outcome (status code or error class, never a body).
CREATE TABLE ticket_webhook_attempts (
    tenant_id    uuid NOT NULL,
    id           uuid NOT NULL,
    delivery_id  uuid NOT NULL,
    attempt      integer NOT NULL,
    attempted_at timestamptz NOT NULL,
    status_code  integer,
    error        text,
    duration_ms  integer NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, delivery_id) REFERENCES ticket_webhook_deliveries (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX ticket_webhook_attempts_delivery ON ticket_webhook_attempts (tenant_id, delivery_id, attempt);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['ticket_settings', 'ticket_routes', 'ticket_counters', 'tickets',
                             'ticket_personal_data', 'ticket_events', 'ticket_comments',
                             'ticket_callback_attempts', 'ticket_audit', 'ticket_outbox',
                             'ticket_webhook_endpoints', 'ticket_webhook_secrets',
                             'ticket_webhook_deliveries', 'ticket_webhook_attempts'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I
                            USING (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]))
                            WITH CHECK (tenant_id = ANY ((SELECT app_tenant_ids())::uuid[]))', t);
    END LOOP;
END $$;

GRANT SELECT, INSERT, UPDATE ON ticket_settings, ticket_counters, tickets TO bs_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ticket_routes, ticket_personal_data TO bs_app;
GRANT SELECT, INSERT ON ticket_events, ticket_outbox, ticket_webhook_attempts TO bs_app;
GRANT SELECT, INSERT, UPDATE ON ticket_comments, ticket_callback_attempts, ticket_webhook_deliveries TO bs_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ticket_webhook_endpoints, ticket_webhook_secrets TO bs_app;
-- The audit table is append-only for the application: no UPDATE, no DELETE.
GRANT SELECT, INSERT ON ticket_audit TO bs_app;

-- migrate:down
DROP TABLE ticket_webhook_attempts;
DROP TABLE ticket_webhook_deliveries;
DROP TABLE ticket_webhook_secrets;
DROP TABLE ticket_webhook_endpoints;
DROP TABLE ticket_outbox;
DROP TABLE ticket_audit;
DROP FUNCTION ticket_audit_is_append_only();
DROP TABLE ticket_callback_attempts;
DROP TABLE ticket_comments;
DROP TABLE ticket_events;
DROP TABLE ticket_personal_data;
DROP TABLE tickets;
DROP TABLE ticket_counters;
DROP TABLE ticket_routes;
DROP TABLE ticket_settings;
