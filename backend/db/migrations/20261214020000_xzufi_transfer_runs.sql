-- migrate:up

-- One run of a transfer at a time (third concurrency sweep, decision 024): a run takes the
-- transfer (`run_id`, `run_seen_at` renewed with each page) and saves each page's cursor only
-- while it holds it. Two runs at once (the run button twice, or beside the worker) fetched and
-- imported every page twice and could move the cursor back; a run going on while the settings
-- were changed wrote the old server's next page over the cursor a new URL or `restart` had reset.
-- Saving the settings ends the running run's hold: it stops before its next page.
ALTER TABLE xzufi_transfers ADD COLUMN run_id uuid, ADD COLUMN run_seen_at timestamptz;

-- migrate:down
ALTER TABLE xzufi_transfers DROP COLUMN run_seen_at, DROP COLUMN run_id;
