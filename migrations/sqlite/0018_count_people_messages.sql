-- A ticket's message count is what people wrote (replies and notes), not
-- the system's notes of status changes and the like: the console's Messages
-- column said 5 for a ticket with two replies.
DROP TRIGGER message_counted;

CREATE TRIGGER message_counted AFTER INSERT ON messages BEGIN
    UPDATE tickets SET message_count = message_count + 1
    WHERE id = NEW.ticket_id AND NEW.kind <> 'system';
    UPDATE tickets SET last_message_at = NEW.created_at, updated_at = NEW.created_at
    WHERE id = NEW.ticket_id
      AND (last_message_at <> NEW.created_at OR updated_at <> NEW.created_at);
END;

UPDATE tickets SET message_count =
    (SELECT COUNT(*) FROM messages m WHERE m.ticket_id = tickets.id AND m.kind <> 'system');
