-- migrate:up

-- One queue for the search indexing the XZuFi import's bulk path leaves to the background
-- worker (decision 024's third amendment): the vector queue of the second amendment becomes the
-- knowledge index queue. A row with `words` still needs its article's search rows and lexicon
-- counts (the worker writes them, then clears `words`); a row without needs only the sentence
-- vector. Rows queued before this migration were queued for vectors alone (their words were
-- written by the import), hence the default false. Still append-only for writers: queueing never
-- waits on the worker's row locks.
ALTER TABLE knowledge_vector_queue RENAME TO knowledge_index_queue;
ALTER INDEX knowledge_vector_queue_pkey RENAME TO knowledge_index_queue_pkey;
ALTER INDEX knowledge_vector_queue_order RENAME TO knowledge_index_queue_order;
ALTER SEQUENCE knowledge_vector_queue_id_seq RENAME TO knowledge_index_queue_id_seq;
ALTER TABLE knowledge_index_queue ADD COLUMN words boolean NOT NULL DEFAULT false;
-- The words come first: the worker takes the oldest rows that still need them.
CREATE INDEX knowledge_index_queue_words ON knowledge_index_queue (id) WHERE words;
-- UPDATE is used now: the worker clears `words` of the rows it indexed.
GRANT SELECT, INSERT, UPDATE, DELETE ON knowledge_index_queue TO bs_app;

-- migrate:down
DROP INDEX knowledge_index_queue_words;
ALTER TABLE knowledge_index_queue DROP COLUMN words;
ALTER SEQUENCE knowledge_index_queue_id_seq RENAME TO knowledge_vector_queue_id_seq;
ALTER INDEX knowledge_index_queue_order RENAME TO knowledge_vector_queue_order;
ALTER INDEX knowledge_index_queue_pkey RENAME TO knowledge_vector_queue_pkey;
ALTER TABLE knowledge_index_queue RENAME TO knowledge_vector_queue;
