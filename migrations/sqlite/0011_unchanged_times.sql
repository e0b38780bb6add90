-- A message stamps its ticket's times only when they change. SQLite
-- rewrites every index holding a column an UPDATE sets, whether its value
-- changed or not: the ticket's first message, written in the same
-- transaction and at the same time as the ticket, moved it in the eight
-- indexes that end on `updated_at` for nothing. The count still goes up
-- (one index).
DROP TRIGGER message_counted;

CREATE TRIGGER message_counted AFTER INSERT ON messages BEGIN
    UPDATE tickets SET message_count = message_count + 1 WHERE id = NEW.ticket_id;
    UPDATE tickets SET last_message_at = NEW.created_at, updated_at = NEW.created_at
    WHERE id = NEW.ticket_id
      AND (last_message_at <> NEW.created_at OR updated_at <> NEW.created_at);
END;
