-- migrate:up
-- Either party gives notice (issue 17 §3): who did, and when, stays on the agreement.
ALTER TABLE agreements
    ADD COLUMN noticed_on       date,
    ADD COLUMN noticed_by_party text CHECK (noticed_by_party IN ('operator', 'client')),
    ADD COLUMN noticed_by       text;

-- migrate:down
ALTER TABLE agreements DROP COLUMN noticed_on, DROP COLUMN noticed_by_party, DROP COLUMN noticed_by;
