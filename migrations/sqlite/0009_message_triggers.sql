-- A new message counts itself on its ticket and records its Message-ID as
-- part of its INSERT: these were two more statements per message, each a
-- round trip to the database on the ingest path.
CREATE TRIGGER message_counted AFTER INSERT ON messages BEGIN
    UPDATE tickets SET message_count = message_count + 1, last_message_at = NEW.created_at,
        updated_at = NEW.created_at
    WHERE id = NEW.ticket_id;
END;

CREATE TRIGGER message_mail_id AFTER INSERT ON messages WHEN NEW.mail_message_id IS NOT NULL BEGIN
    INSERT INTO mail_ids (message_id, ticket_id, direction, created_at)
    VALUES (NEW.mail_message_id, NEW.ticket_id, 'in', NEW.created_at)
    ON CONFLICT (message_id) DO NOTHING;
END;
