-- migrate:up
-- The qualified transfer's outcome (issue 16, decision 038): a call transferred from a forwarding
-- decision names the directory person it went to (or only the department, for its general line)
-- and whether the transfer was taken. Only a taken transfer is settled by qualified transfer; one
-- not taken stays recorded when the agent then takes a message (the call becomes "forwarded as
-- ticket"), so the figures can count transfers that failed. The outcome itself keeps its values:
-- every transfer is still `transferred_to_department`, so the first-contact rate and the daily
-- rollups mean what they meant.
ALTER TABLE calls ADD COLUMN outcome_person_id uuid;
ALTER TABLE calls ADD COLUMN transfer_taken boolean;
-- A person who leaves the directory is forgotten by the call, not the call by the figures.
ALTER TABLE calls ADD FOREIGN KEY (tenant_id, outcome_person_id)
    REFERENCES directory_people (tenant_id, id) ON DELETE SET NULL (outcome_person_id);
CREATE INDEX calls_outcome_person ON calls (tenant_id, outcome_person_id) WHERE outcome_person_id IS NOT NULL;

-- migrate:down
ALTER TABLE calls DROP COLUMN transfer_taken;
ALTER TABLE calls DROP COLUMN outcome_person_id;
