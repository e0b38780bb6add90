-- A new message counts itself on its ticket and records its Message-ID as
-- part of its INSERT: these were two more statements per message, each a
-- round trip to the database on the ingest path.
CREATE FUNCTION postdesk_message_added() RETURNS trigger AS $$
BEGIN
    UPDATE tickets SET message_count = message_count + 1, last_message_at = NEW.created_at,
        updated_at = NEW.created_at
    WHERE id = NEW.ticket_id;
    IF NEW.mail_message_id IS NOT NULL THEN
        INSERT INTO mail_ids (message_id, ticket_id, direction, created_at)
        VALUES (NEW.mail_message_id, NEW.ticket_id, 'in', NEW.created_at)
        ON CONFLICT (message_id) DO NOTHING;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER message_added AFTER INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION postdesk_message_added();
