-- migrate:up

-- Provisioning (decision 027): a town's CSV import and its identity provider (SCIM) name a person
-- by their external key; one person per key and town.
CREATE UNIQUE INDEX directory_people_external_id ON directory_people (tenant_id, external_id);

-- Tickets are assigned to people of the directory. `assignee` stays as the name shown (and for
-- tickets assigned as free text before); `assignee_person_id` is who it is. Deprovisioning
-- returns a person's open tickets to the department's queue with an event before the person
-- goes; the foreign key only keeps a deleted person's id from dangling.
ALTER TABLE tickets ADD COLUMN assignee_person_id uuid;
ALTER TABLE tickets ADD FOREIGN KEY (tenant_id, assignee_person_id)
    REFERENCES directory_people (tenant_id, id) ON DELETE SET NULL (assignee_person_id);
CREATE INDEX tickets_assignee_person ON tickets (tenant_id, assignee_person_id)
    WHERE assignee_person_id IS NOT NULL;

-- migrate:down
DROP INDEX tickets_assignee_person;
ALTER TABLE tickets DROP COLUMN assignee_person_id;
DROP INDEX directory_people_external_id;
