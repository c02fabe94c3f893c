-- migrate:up

-- An endpoint that has failed every attempt for days is paused rather than retried forever: its
-- deliveries keep being recorded (nothing is lost) but are not attempted until the town admin
-- resumes it. Without this one dead receiver's growing backlog, each attempt waiting for its
-- timeout, held up every other town's deliveries. `failing_since`: the first failure after the
-- last success (or resume); NULL while the endpoint answers.
ALTER TABLE ticket_webhook_endpoints
    ADD COLUMN failing_since timestamptz,
    ADD COLUMN paused_at     timestamptz,
    ADD COLUMN paused_reason text CHECK (length(paused_reason) <= 500),
    ADD CONSTRAINT ticket_webhook_endpoints_pause_complete CHECK ((paused_at IS NULL) = (paused_reason IS NULL));

-- migrate:down
ALTER TABLE ticket_webhook_endpoints
    DROP CONSTRAINT ticket_webhook_endpoints_pause_complete,
    DROP COLUMN paused_reason,
    DROP COLUMN paused_at,
    DROP COLUMN failing_since;
