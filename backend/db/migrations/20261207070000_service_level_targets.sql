-- migrate:up
-- The 115 figures as the standard counts them (issue 17 §4, decision 029): the service level's
-- thresholds and targets per tenant beside its first-contact targets.
ALTER TABLE figure_targets
    ADD COLUMN service_level_target  numeric(5, 4) NOT NULL DEFAULT 0.75 CHECK (service_level_target BETWEEN 0 AND 1),
    ADD COLUMN service_level_seconds integer NOT NULL DEFAULT 30 CHECK (service_level_seconds BETWEEN 1 AND 600),
    ADD COLUMN short_abandon_seconds integer NOT NULL DEFAULT 5 CHECK (short_abandon_seconds BETWEEN 0 AND 60),
    ADD COLUMN callback_target       numeric(5, 4) NOT NULL DEFAULT 0.90 CHECK (callback_target BETWEEN 0 AND 1);

-- migrate:down
ALTER TABLE figure_targets
    DROP COLUMN service_level_target,
    DROP COLUMN service_level_seconds,
    DROP COLUMN short_abandon_seconds,
    DROP COLUMN callback_target;
