-- A ticket's reference number is drawn inside its INSERT
-- (`(SELECT value + 1 FROM counters WHERE name = 'ticket_ref')`, read under
-- the write lock the INSERT takes) and the counter follows it here: one
-- statement per new ticket instead of two, a round trip less to the
-- database on the ingest path. The counter never goes back, so a number is
-- never drawn twice, even after deletes.
CREATE TRIGGER ticket_ref_counted AFTER INSERT ON tickets BEGIN
    UPDATE counters SET value = NEW.number WHERE name = 'ticket_ref' AND value < NEW.number;
END;
