-- migrate:up

-- Which call figures the telephony system reported and which the service computed from the
-- times (decision 006). `wait_derived`: the wait was computed (or none is known yet), so a later
-- time recomputes it and a reported wait replaces it; false: the system reported it, a set-once
-- fact. Talk seconds are always computed; an outcome is an agent's when `outcome_at` is set,
-- else the computed 'abandoned'. A wait stored before this (or by another writer) counts as
-- reported: the safe side, a wait the system may have measured is never overwritten. (No wait
-- at all is never a reported one, whatever the flag says.)
ALTER TABLE calls ADD COLUMN wait_derived boolean NOT NULL DEFAULT false;

-- migrate:down
ALTER TABLE calls DROP COLUMN wait_derived;
