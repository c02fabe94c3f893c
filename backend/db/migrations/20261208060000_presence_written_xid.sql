-- migrate:up
-- The forwarding decision holds each town's presence rows in process and, after a presence
-- change, reads only the rows written since its last read (decision 039): the writing
-- transaction's id, compared with the oldest transaction still running at that read
-- (pg_snapshot_xmin), catches every row committed since, in whatever order they commit.
-- A trigger sets it, so no writer can forget it; rows written before this migration keep 0
-- and are read by a full load, as every row is when a town's directory is compiled.
CREATE FUNCTION directory_presence_written() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    NEW.written_xid := pg_current_xact_id();
    RETURN NEW;
END
$$;

ALTER TABLE directory_presence_switch ADD COLUMN written_xid xid8 NOT NULL DEFAULT '0';
ALTER TABLE directory_presence_phone ADD COLUMN written_xid xid8 NOT NULL DEFAULT '0';

CREATE TRIGGER written BEFORE INSERT OR UPDATE ON directory_presence_switch
    FOR EACH ROW EXECUTE FUNCTION directory_presence_written();
CREATE TRIGGER written BEFORE INSERT OR UPDATE ON directory_presence_phone
    FOR EACH ROW EXECUTE FUNCTION directory_presence_written();

-- migrate:down
DROP TRIGGER written ON directory_presence_phone;
DROP TRIGGER written ON directory_presence_switch;
ALTER TABLE directory_presence_phone DROP COLUMN written_xid;
ALTER TABLE directory_presence_switch DROP COLUMN written_xid;
DROP FUNCTION directory_presence_written();
