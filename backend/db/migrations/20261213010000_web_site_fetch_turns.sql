-- migrate:up

-- A site is fetched by one worker at a time (second concurrency sweep, decision 025): while a
-- fetch runs (`fetching_since`, set when a worker claims the site, cleared when it stores the
-- result), asking for a fetch no longer moves the site's turn to now, which let another
-- instance's worker start a second crawl of the same site beside the first. The wish is kept
-- (`fetch_asked_at`) and the site is due again as soon as the running fetch is stored.
ALTER TABLE web_sites ADD COLUMN fetching_since timestamptz, ADD COLUMN fetch_asked_at timestamptz;

-- migrate:down
ALTER TABLE web_sites DROP COLUMN fetch_asked_at, DROP COLUMN fetching_since;
